/* 05: slow consumers, SIGHUP reload, SIGTERM drain with 1001, JSON log lines. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static srv s;

static void slow_client(void)
{
	/* A client that keeps sending requests but never reads: its responses pile up in the server
	 * until max_output_bytes, then the server closes it. Others are served meanwhile. */
	uint64_t before = metric_value(s.port, "parley_slow_clients_total");
	int fd = tcp_connect_small_rcvbuf(s.port, 4096);
	const char *req = "GET /v1/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
	send_all(fd, req, strlen(req));
	/* a ping request with a 1000-byte payload, answered with the same payload */
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__PingRequest p = PARLEY__WIRE__PING_REQUEST__INIT;
	uint8_t payload[1000] = {0};
	r.id = 1;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
	r.ping = &p;
	p.payload.data = payload;
	p.payload.len = sizeof payload;
	dynbuf b;
	dynbuf__init(&b, 1 << 16);
	wire__encode_request(&r, &b);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	int closed = 0;
	for (int i = 0; i < 200000 && !closed; i++) {
		if (ws_send_frame(fd, 0x2, 1, 1, b.data, b.len) != 0) {
			if (errno == EAGAIN) {
				usleep(1000);
				if (i % 50 == 0 && metric_value(s.port, "parley_slow_clients_total") > before)
					closed = 1;
				continue;
			}
			closed = 1;
		}
		if (i % 500 == 0) {
			IT_CHECK(server_alive(s.port));
			if (metric_value(s.port, "parley_slow_clients_total") > before)
				closed = 1;
		}
	}
	dynbuf__free(&b);
	close(fd);
	IT_CHECK(closed);
	IT_CHECK(metric_value(s.port, "parley_slow_clients_total") > before);
	IT_CHECK(server_alive(s.port));
}

static void sighup_reload(void)
{
	char path[400];
	snprintf(path, sizeof path, "%s/parleyd.conf", s.dir);
	FILE *f = fopen(path, "w");
	fputs("log_level debug\nworkers 2\n", f); /* workers need a restart: reported, not applied */
	fclose(f);
	IT_EQ(srv_signal(&s, SIGHUP), 0);
	usleep(300000);
	char *log = srv_log(&s);
	IT_CHECK(log && strstr(log, "configuration reloaded") != NULL);
	IT_CHECK(log && strstr(log, "need a restart") != NULL && strstr(log, "workers") != NULL);
	free(log);
	IT_CHECK(server_alive(s.port));

	/* a broken file is refused and the server keeps its configuration */
	f = fopen(path, "w");
	fputs("log_level shouting\n", f);
	fclose(f);
	IT_EQ(srv_signal(&s, SIGHUP), 0);
	usleep(300000);
	log = srv_log(&s);
	IT_CHECK(log && strstr(log, "not reloaded") != NULL);
	free(log);
	IT_CHECK(server_alive(s.port));
	f = fopen(path, "w");
	fputs("log_level info\n", f);
	fclose(f);
}

static void sigterm_drain(void)
{
	int fds[5];
	for (int i = 0; i < 5; i++) {
		fds[i] = pw_connect(s.port, NULL);
		IT_CHECK(fds[i] >= 0);
	}
	IT_EQ(srv_signal(&s, SIGTERM), 0);
	for (int i = 0; i < 5; i++) {
		IT_EQ(ws_expect_close(fds[i], 5000), 1001);
		close(fds[i]);
	}
	IT_EQ(srv_stop(&s), 0); /* reaps: exit status 0 */
	char *log = srv_log(&s);
	IT_CHECK(log && strstr(log, "stopped cleanly") != NULL);
	free(log);
}

static void json_logs(void)
{
	srv j;
	const char *extra[] = {"--log_format=json", NULL};
	srv_start(&j, extra);
	IT_CHECK(server_alive(j.port));
	IT_EQ(srv_stop(&j), 0);
	char *log = srv_log(&j);
	int lines = 0, json = 0;
	for (char *l = log; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl == NULL)
			break;
		lines++;
		json += l[0] == '{' && nl[-1] == '}' && strstr(l, "\"level\":") != NULL && strstr(l, "\"msg\":") < nl;
		l = nl + 1;
	}
	IT_CHECK(lines >= 2);
	IT_EQ(json, lines);
	free(log);
	srv_cleanup(&j);
}

int main(void)
{
	srv_start(&s, NULL);
	/* restart with a config file so SIGHUP has something to re-read */
	IT_EQ(srv_stop(&s), 0);
	char path[400];
	snprintf(path, sizeof path, "%s/parleyd.conf", s.dir);
	FILE *f = fopen(path, "w");
	fputs("max_output_bytes 65536\n", f);
	fclose(f);
	snprintf(s.extra[s.nextra++], sizeof s.extra[0], "--config=%.120s/parleyd.conf", s.dir);
	snprintf(s.extra[s.nextra++], sizeof s.extra[0], "--max_output_bytes=65536");
	srv_restart(&s);
	IT_RUN(slow_client);
	IT_RUN(sighup_reload);
	IT_RUN(sigterm_drain);
	IT_RUN(json_logs);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
