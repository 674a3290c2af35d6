/* 39: live vs ready on a running parleyd. /livez and /readyz answer 200 on both listeners; on SIGTERM
 * /readyz turns 503 "draining" at once while the node still accepts for drain_delay_ms (the load
 * balancer's time to notice), then the public listener closes and the admin one keeps answering 503
 * while a held connection makes the drain last; /healthz keeps its old meaning throughout. SIGINT and
 * a second SIGTERM skip the delay. Under a Type=notify manager ($NOTIFY_SOCKET) parleyd says READY=1
 * once it serves, RELOADING=1 then READY=1 around SIGHUP, and STOPPING=1 at SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define DELAY_MS 1500

static int get(int port, const char *path, const char *want_body)
{
	char resp[4096];
	int st = http_get(port, path, resp, sizeof resp);
	if (want_body != NULL && (st < 0 || strstr(resp, want_body) == NULL)) {
		fprintf(stderr, "# GET %s on %d: %d, body wanted %s\n%s\n", path, port, st, want_body, resp);
		return -2;
	}
	return st;
}

static void ready_then_draining(void)
{
	srv s;
	const char *extra[] = {"--drain_delay_ms=1500", "--drain_timeout_ms=8000", NULL};
	srv_start(&s, extra);
	int admin = srv_admin_port(s.port);
	IT_CHECK(admin > 0);
	int ports[2] = {s.port, admin};
	for (int i = 0; i < 2; i++) {
		IT_EQ(get(ports[i], "/livez", "{\"status\":\"live\"}"), 200);
		IT_EQ(get(ports[i], "/readyz", "{\"status\":\"ready\"}"), 200);
		IT_EQ(get(ports[i], "/healthz", "{\"status\":\"ok\"}"), 200);
	}

	/* a WebSocket that never answers the server's close: the drain lasts until we let go */
	int held = ws_open(s.port);
	IT_CHECK(held >= 0);
	uint64_t t0 = it_now_ms();
	IT_EQ(srv_signal(&s, SIGTERM), 0);
	usleep(150000);
	/* unready at once, and still accepting: this answer came over a new public connection */
	IT_EQ(get(s.port, "/readyz", "{\"status\":\"unready\",\"reason\":\"draining\"}"), 503);
	IT_EQ(get(admin, "/readyz", "\"reason\":\"draining\""), 503);
	IT_EQ(get(s.port, "/livez", "{\"status\":\"live\"}"), 200);
	IT_EQ(get(s.port, "/healthz", "{\"status\":\"ok\"}"), 200);

	/* after the delay the public listener closes */
	int fd;
	while ((fd = tcp_connect(s.port)) >= 0 && it_now_ms() - t0 < 6000) {
		close(fd);
		usleep(20000);
	}
	uint64_t closed_after = it_now_ms() - t0;
	printf("# public listener closed %llu ms after SIGTERM (drain_delay_ms %d)\n",
	       (unsigned long long)closed_after, DELAY_MS);
	IT_CHECK(fd < 0);
	IT_CHECK(closed_after >= DELAY_MS - 100);
	/* draining: the held connection got 1001 and the admin listener still says why the node is out */
	IT_EQ(ws_expect_close(held, 3000), 1001);
	IT_EQ(get(admin, "/readyz", "{\"status\":\"unready\",\"reason\":\"draining\"}"), 503);
	IT_EQ(get(admin, "/livez", "{\"status\":\"live\"}"), 200);
	close(held);
	IT_EQ(srv_stop(&s), 0);
	char *log = srv_log(&s);
	IT_CHECK(log && strstr(log, "stopped cleanly") != NULL);
	free(log);
	srv_cleanup(&s);
}

/* a person's Ctrl-C and an impatient second SIGTERM do not wait out the delay */
static void skip_delay(void)
{
	static const int sigs[2][2] = {{SIGINT, 0}, {SIGTERM, SIGTERM}};
	for (int i = 0; i < 2; i++) {
		srv s;
		const char *extra[] = {"--drain_delay_ms=20000", NULL};
		srv_start(&s, extra);
		uint64_t t0 = it_now_ms();
		IT_EQ(srv_signal(&s, sigs[i][0]), 0);
		if (sigs[i][1]) {
			usleep(200000);
			IT_EQ(get(s.port, "/readyz", "\"reason\":\"draining\""), 503);
			IT_EQ(srv_signal(&s, sigs[i][1]), 0);
		}
		int fd;
		while ((fd = tcp_connect(s.port)) >= 0 && it_now_ms() - t0 < 10000) {
			close(fd);
			usleep(20000);
		}
		IT_CHECK(fd < 0);
		IT_CHECK(it_now_ms() - t0 < 5000);
		IT_EQ(srv_stop(&s), 0);
		srv_cleanup(&s);
	}
}

/* the next datagram on fd (empty string on timeout) */
static void next_notice(int fd, char *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	printf("# notify: %s\n", buf);
}

static void systemd_notify(void)
{
	char dir[] = "/tmp/parley-notify-XXXXXX", want[128], buf[512];
	IT_CHECK(mkdtemp(dir) != NULL);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	IT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	srv s;
	srv_start(&s, NULL);
	unsetenv("NOTIFY_SOCKET");
	next_notice(fd, buf, sizeof buf);
	snprintf(want, sizeof want, "READY=1\nSTATUS=serving on 127.0.0.1 port %d ", s.port);
	IT_CHECK(strncmp(buf, want, strlen(want)) == 0);
	IT_EQ(srv_signal(&s, SIGHUP), 0);
	next_notice(fd, buf, sizeof buf);
	IT_CHECK(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	next_notice(fd, buf, sizeof buf);
	IT_CHECK(strncmp(buf, "READY=1\n", 8) == 0);
	IT_EQ(srv_stop(&s), 0);
	next_notice(fd, buf, sizeof buf);
	IT_CHECK(strncmp(buf, "STOPPING=1\n", 11) == 0);
	close(fd);
	unlink(sa.sun_path);
	rmdir(dir);
	srv_cleanup(&s);
}

int main(void)
{
	IT_RUN(ready_then_draining);
	IT_RUN(skip_delay);
	IT_RUN(systemd_notify);
	return it_failures ? 1 : 0;
}
