/* 01: plain HTTP: /healthz, /metrics (admin listener), 404, oversized and malformed headers, slowloris. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static srv s;
static char resp[1 << 20];

static void healthz_and_metrics(void)
{
	IT_EQ(http_get(s.port, "/healthz", resp, sizeof resp), 200);
	IT_CHECK(strstr(resp, "\"status\":\"ok\"") != NULL);
	IT_EQ(http_get(s.port, "/metrics", resp, sizeof resp), 404); /* only on the admin listener */
	IT_EQ(http_get(s.admin_port, "/metrics", resp, sizeof resp), 200);
	IT_CHECK(strstr(resp, "text/plain") != NULL);
	IT_CHECK(strstr(resp, "# TYPE parley_connections_accepted_total counter") != NULL);
	IT_CHECK(strstr(resp, "parley_connections_open ") != NULL);
	IT_CHECK(metric_value(s.port, "parley_connections_accepted_total") >= 2);
	IT_CHECK(metric_value(s.port, "parley_http_requests_total") >= 2);
}

/* metric_value cannot pass vacuously: a metric that is not there records a failure and reads as 0. */
static void missing_metric_is_a_failure(void)
{
	int before = it_failures;
	fprintf(stderr, "# the next 'not ok' line is expected:\n");
	uint64_t v = metric_value(s.port, "parley_no_such_metric_total");
	int recorded = it_failures - before;
	it_failures = before; /* that failure was the point of this test */
	IT_EQ(recorded, 1);
	IT_EQ(v, 0);
}

static void not_found(void)
{
	IT_EQ(http_get(s.port, "/nope", resp, sizeof resp), 404);
}

static void oversized_header(void)
{
	/* 20 KiB of header with a 8 KiB limit */
	size_t n = 20000;
	char *req = malloc(n + 200);
	int off = snprintf(req, 200, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + off, 'a', n);
	memcpy(req + off + n, "\r\n\r\n", 5);
	IT_EQ(http_request(s.port, req, resp, sizeof resp), 431);
	free(req);
	IT_CHECK(server_alive(s.port));
}

static void malformed(void)
{
	IT_EQ(http_request(s.port, "GARBAGE \x01\x02 nonsense\r\n\r\n", resp, sizeof resp), 400);
	IT_EQ(http_request(s.port, "GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n", resp, sizeof resp),
	      400);
	IT_CHECK(server_alive(s.port));
}

static void bad_upgrades(void)
{
	/* wrong version -> 426 with the supported version */
	IT_EQ(http_request(s.port,
			   "GET /v1/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
			   resp, sizeof resp),
	      426);
	IT_CHECK(strcasestr(resp, "Sec-WebSocket-Version: 13") != NULL);
	/* key that is not 16 bytes of base64 -> 400 */
	IT_EQ(http_request(s.port,
			   "GET /v1/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			   "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
			   resp, sizeof resp),
	      400);
	IT_CHECK(server_alive(s.port));
}

static void slowloris(void)
{
	/* half a request, then silence: closed after handshake_timeout_ms (500 here) */
	int fd = tcp_connect(s.port);
	IT_CHECK(fd >= 0);
	send_all(fd, "GET /healthz HTTP/1.1\r\nHost:", 28);
	char b[512];
	ssize_t n = recv_exact(fd, b, sizeof b, 3000); /* returns early on close */
	IT_CHECK(n >= 0);
	/* the socket must be closed by now: a read returns 0 (EOF) immediately */
	IT_EQ(recv_exact(fd, b, 1, 200), 0);
	close(fd);
	IT_CHECK(server_alive(s.port));
}

int main(void)
{
	const char *extra[] = {"--handshake_timeout_ms=500", NULL};
	srv_start(&s, extra);
	IT_RUN(healthz_and_metrics);
	IT_RUN(missing_metric_is_a_failure);
	IT_RUN(not_found);
	IT_RUN(oversized_header);
	IT_RUN(malformed);
	IT_RUN(bad_upgrades);
	IT_RUN(slowloris);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
