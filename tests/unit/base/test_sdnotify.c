/* sdnotify: the datagram reaches a bound AF_UNIX datagram socket, by path and by abstract name ('@'),
 * byte for byte; without $NOTIFY_SOCKET nothing is sent and all is well; names the protocol does not
 * allow are refused; a socket nobody listens on is an I/O error. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <parley/error.h>

#include "base/sdnotify.h"
#include "test.h"

/* A datagram socket bound to name ('/path' or '@abstract'), as systemd's manager holds one. */
static int bind_notify(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	TEST_EQ_INT(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	TEST_CHECK(n >= 0);
	buf[n > 0 ? n : 0] = '\0';
	TEST_EQ_STR(buf, want);
}

static int nothing_waiting(int fd)
{
	char buf[16];
	return recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0;
}

int main(void)
{
	char dir[] = "/tmp/parley-sdnotify-XXXXXX", path[128], abstract[64];
	TEST_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/notify", dir);
	snprintf(abstract, sizeof abstract, "@parley-sdnotify-test-%ld", (long)getpid());

	/* by path, and through $NOTIFY_SOCKET */
	int fd = bind_notify(path);
	TEST_EQ_INT(sdnotify__send_to(path, "READY=1\nSTATUS=serving"), PARLEY_OK);
	expect_datagram(fd, "READY=1\nSTATUS=serving");
	setenv("NOTIFY_SOCKET", path, 1);
	TEST_EQ_INT(sdnotify__send("STOPPING=1"), PARLEY_OK);
	expect_datagram(fd, "STOPPING=1");

	/* not under systemd: nothing sent, no error */
	unsetenv("NOTIFY_SOCKET");
	TEST_EQ_INT(sdnotify__send("READY=1"), PARLEY_OK);
	TEST_CHECK(nothing_waiting(fd));
	setenv("NOTIFY_SOCKET", "", 1);
	TEST_EQ_INT(sdnotify__send("READY=1"), PARLEY_OK);
	TEST_CHECK(nothing_waiting(fd));
	close(fd);

	/* an abstract socket: systemd's usual choice */
	fd = bind_notify(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	TEST_EQ_INT(sdnotify__send("READY=1"), PARLEY_OK);
	expect_datagram(fd, "READY=1");
	close(fd);

	/* names the protocol does not allow, and a socket nobody holds */
	char longname[200];
	memset(longname, 'a', sizeof longname - 1);
	longname[0] = '/';
	longname[sizeof longname - 1] = '\0';
	TEST_EQ_INT(sdnotify__send_to("relative/path", "READY=1"), PARLEY_E_INVAL);
	TEST_EQ_INT(sdnotify__send_to("@", "READY=1"), PARLEY_E_INVAL);
	TEST_EQ_INT(sdnotify__send_to(longname, "READY=1"), PARLEY_E_INVAL);
	TEST_EQ_INT(sdnotify__send_to(path, ""), PARLEY_E_INVAL);
	TEST_EQ_INT(sdnotify__send_to(path, "READY=1"), PARLEY_E_IO); /* bound socket closed: nobody there */
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	TEST_EQ_INT(sdnotify__send("READY=1"), PARLEY_E_INVAL);
	unsetenv("NOTIFY_SOCKET");

	unlink(path);
	rmdir(dir);
	TEST_EXIT();
}
