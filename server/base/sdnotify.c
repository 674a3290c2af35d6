/* sd_notify(3) in a few lines: libsystemd is not among the build's packages, and the protocol is a
 * stable, documented datagram (see sdnotify.h), so depending on a library for it would cost more than
 * it saves. */
#include "base/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <parley/error.h>

int sdnotify__send_to(const char *socket_name, const char *state)
{
	struct sockaddr_un sa;
	size_t n = strlen(socket_name), len = strlen(state);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	/* systemd also knows vsock: addresses (inside VMs); parleyd runs beside its manager */
	if (n < 2 || n >= sizeof sa.sun_path || (socket_name[0] != '/' && socket_name[0] != '@') || len == 0)
		return PARLEY_E_INVAL;
	memcpy(sa.sun_path, socket_name, n);
	/* an abstract name: a leading NUL, and the address length counts exactly its bytes (no trailing NUL) */
	if (socket_name[0] == '@')
		sa.sun_path[0] = '\0';
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (socket_name[0] == '/'));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PARLEY_E_IO;
	ssize_t sent;
	do
		sent = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	while (sent < 0 && errno == EINTR);
	close(fd);
	return sent == (ssize_t)len ? PARLEY_OK : PARLEY_E_IO;
}

int sdnotify__send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	if (name == NULL || name[0] == '\0')
		return PARLEY_OK;
	return sdnotify__send_to(name, state);
}
