/* server/net + lib/transport over real loopback sockets: echo (plain and TLS), plain HTTP routes,
 * oversized header (431) while other clients keep working, a client that never reads is cut as a slow
 * consumer while others continue, TLS reload, drain with 1001, timeouts, and that a connection holds no
 * buffer once its traffic drained. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <parley/error.h>
#include <uv.h>

#include "common/dynbuf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "codec/http.h"
#include "net/net_internal.h"
#include "net/server.h"
#include "codec/ws.h"
#include "test.h"
#include "transport/transport.h"

/* ---- server side: an echo service ---- */

static atomic_int opened, closed_count, workers_started, workers_stopped;
static atomic_int flood_result;

static int on_worker_start(void *ctx, int worker, uv_loop_t *loop)
{
	workers_started++;
	return 0;
}

static void on_worker_stop(void *ctx, int worker, uv_loop_t *loop)
{
	workers_stopped++;
}

static void srv_open(void *ctx, net_conn *c)
{
	opened++;
}

static void srv_message(void *ctx, net_conn *c, const uint8_t *buf, size_t len)
{
	if (len == 4 && memcmp(buf, "stat", 4) == 0) {
		/* what the connection holds now: the last echo was flushed, this message arrived whole */
		uint64_t held = net__conn_buffered(c);
		net__conn_send(c, (const uint8_t *)&held, sizeof(held));
		return;
	}
	if (len == 5 && memcmp(buf, "flood", 5) == 0) {
		static uint8_t chunk[65536];
		int rc = PARLEY_OK;
		for (int i = 0; i < 4000 && rc == PARLEY_OK; i++)
			rc = net__conn_send(c, chunk, sizeof(chunk));
		flood_result = rc;
		return;
	}
	net__conn_send(c, buf, len);
}

static void srv_close(void *ctx, net_conn *c)
{
	closed_count++;
}

static const net_handler echo_handler = {
	.on_worker_start = on_worker_start,
	.on_worker_stop = on_worker_stop,
	.on_open = srv_open,
	.on_message = srv_message,
	.on_close = srv_close,
};

static net_server *start_server(const char *cert, const char *key)
{
	net_config cfg;
	int err = -1;
	net__config_defaults(&cfg);
	cfg.workers = 2;
	cfg.port = 0;
	cfg.max_message_bytes = 1u << 20; /* the echo tests send messages of several hundred kB */
	cfg.max_pending_output = 1u << 20;
	cfg.auth_timeout_ms = 0;	   /* the echo service never authenticates anyone */
	cfg.max_preauth_message_bytes = 0; /* so the full message size applies from the start */
	cfg.tls_cert_file = cert;
	cfg.tls_key_file = key;
	net_server *s = net__server_new(&cfg, &echo_handler, &err);
	TEST_EQ_INT(err, PARLEY_OK);
	if (s == NULL)
		return NULL;
	TEST_EQ_INT(net__server_start(s), PARLEY_OK);
	TEST_CHECK(net__server_port(s) != 0);
	return s;
}

/* ---- client side: echo checker on the test's own loop ---- */

typedef struct client {
	transport_conn *t;
	int open, done, err;
	uint16_t code;
	int sent, received, mismatches;
	size_t sizes[4];
	int close_after_echo;
	char text[200]; /* transport__error_text at on_close */
} client;

static void fill(uint8_t *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + (size_t)seed);
}

static void send_next(client *cl)
{
	size_t n = cl->sizes[cl->sent];
	uint8_t *buf = malloc(n ? n : 1);
	fill(buf, n, cl->sent);
	TEST_EQ_INT(transport__send(cl->t, buf, n), PARLEY_OK);
	cl->sent++;
	free(buf);
}

static void cl_open(void *ctx, transport_conn *t)
{
	client *cl = ctx;
	cl->open = 1;
	send_next(cl);
}

static void cl_message(void *ctx, transport_conn *t, const uint8_t *buf, size_t len)
{
	client *cl = ctx;
	size_t n = cl->sizes[cl->received];
	uint8_t *want = malloc(n ? n : 1);
	fill(want, n, cl->received);
	if (len != n || memcmp(buf, want, n) != 0)
		cl->mismatches++;
	free(want);
	cl->received++;
	if (cl->sent < 4)
		send_next(cl);
	else if (cl->received == 4 && cl->close_after_echo)
		transport__close(t);
}

static void cl_close(void *ctx, transport_conn *t, int err, uint16_t code)
{
	client *cl = ctx;
	cl->done = 1;
	cl->err = err;
	cl->code = code;
	snprintf(cl->text, sizeof(cl->text), "%s", transport__error_text(t));
}

static const transport_callbacks cl_cb = {.on_open = cl_open, .on_message = cl_message, .on_close = cl_close};

static void client_init(client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->sizes[0] = 5;
	cl->sizes[1] = 0;
	cl->sizes[2] = 70000;
	cl->sizes[3] = 900000;
	cl->close_after_echo = 1;
}

/* Runs the loop until every client is done or 15 s passed. */
static void run_until_done(uv_loop_t *loop, client **cls, int n)
{
	uint64_t deadline = uv_now(loop) + 15000;
	for (;;) {
		int all = 1;
		for (int i = 0; i < n; i++)
			all &= cls[i]->done;
		if (all || uv_now(loop) > deadline)
			break;
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
}

/* A repeating timer keeps UV_RUN_ONCE from blocking forever while we wait. */
static void tick(uv_timer_t *t)
{
}

/* Echoes 4 messages (or expects the connection to fail with expect_err and, if want_text is not
 * NULL, an error text containing it). */
static void echo_text(uv_loop_t *loop, const char *url, const transport_options *opt, int expect_err,
		      const char *want_text)
{
	client cl;
	client *list[1] = {&cl};
	client_init(&cl);
	cl.sizes[3] = 200000;
	int rc = transport__connect(loop, url, opt, &(transport_callbacks){.ctx = &cl, .on_open = cl_cb.on_open,
		.on_message = cl_cb.on_message, .on_close = cl_cb.on_close}, &cl.t);
	TEST_EQ_INT(rc, PARLEY_OK);
	run_until_done(loop, list, 1);
	TEST_CHECK(cl.done);
	TEST_EQ_INT(cl.err, expect_err);
	if (expect_err == PARLEY_OK) {
		TEST_EQ_INT(cl.received, 4);
		TEST_EQ_INT(cl.mismatches, 0);
		TEST_EQ_INT(cl.code, 1000);
		TEST_CHECK(cl.text[0] == '\0');
	} else {
		TEST_EQ_INT(cl.open, 0);
	}
	if (want_text != NULL && strstr(cl.text, want_text) == NULL) {
		fprintf(stderr, "# error text \"%s\" lacks \"%s\"\n", cl.text, want_text);
		TEST_CHECK(strstr(cl.text, want_text) != NULL);
	}
}

static void echo_once(uv_loop_t *loop, const char *url, const transport_options *opt, int expect_err)
{
	echo_text(loop, url, opt, expect_err, NULL);
}

/* All four messages at once while corked: nothing reaches the socket until the cork is lifted. Sent
 * from a timer: inside the transport's callbacks output is held until the read is done anyway. */
static uv_timer_t cork_timer;
static uv_loop_t *cork_loop;

static void corked_burst(uv_timer_t *tm)
{
	client *cl = tm->data;
	size_t queued = 0;
	transport__cork(cl->t, 1);
	while (cl->sent < 4) {
		queued += cl->sizes[cl->sent];
		send_next(cl);
	}
	TEST_CHECK(transport__pending_output(cl->t) >= queued);
	transport__cork(cl->t, 0);
	TEST_CHECK(transport__pending_output(cl->t) < queued);
	uv_close((uv_handle_t *)tm, NULL);
}

static void corked_open(void *ctx, transport_conn *t)
{
	client *cl = ctx;
	cl->open = 1;
	uv_timer_init(cork_loop, &cork_timer);
	cork_timer.data = cl;
	uv_timer_start(&cork_timer, corked_burst, 0, 0);
}

/* Three clients on one loop share one read buffer (the bench's way of holding 10,000 connections):
 * every echo still arrives intact, including 900 kB ones read in many pieces. */
static void test_shared_buffer_and_cork(uv_loop_t *loop, const char *url)
{
	static uint8_t rbuf[4096];
	transport_options opt = {.read_buf = rbuf, .read_buf_len = sizeof(rbuf)};
	client cls[3];
	client *list[3];
	cork_loop = loop;
	for (int i = 0; i < 3; i++) {
		transport_callbacks cb = cl_cb;
		client_init(&cls[i]);
		list[i] = &cls[i];
		cb.ctx = &cls[i];
		if (i == 2)
			cb.on_open = corked_open;
		TEST_EQ_INT(transport__connect(loop, url, &opt, &cb, &cls[i].t), PARLEY_OK);
	}
	run_until_done(loop, list, 3);
	for (int i = 0; i < 3; i++) {
		TEST_EQ_INT(cls[i].err, PARLEY_OK);
		TEST_EQ_INT(cls[i].received, 4);
		TEST_EQ_INT(cls[i].mismatches, 0);
	}
}

/* A large message (reassembled by the server), its echo, then "stat": the server reports the buffer
 * bytes the connection still holds: none without TLS; with TLS only what the "stat" record itself took
 * in a memory BIO, not the 64 KiB reads and the 150 kB echo that went through them. */
typedef struct stat_client {
	transport_conn *t;
	int done, step, err;
	uint64_t held;
} stat_client;

#define STAT_BIG 150000

static void st_open(void *ctx, transport_conn *t)
{
	uint8_t *big = calloc(1, STAT_BIG);
	TEST_EQ_INT(transport__send(t, big, STAT_BIG), PARLEY_OK);
	free(big);
}

static void st_message(void *ctx, transport_conn *t, const uint8_t *buf, size_t len)
{
	stat_client *st = ctx;
	if (st->step++ == 0) {
		TEST_EQ_INT(len, STAT_BIG);
		TEST_EQ_INT(transport__send(t, (const uint8_t *)"stat", 4), PARLEY_OK);
		return;
	}
	TEST_EQ_INT(len, sizeof(st->held));
	if (len == sizeof(st->held))
		memcpy(&st->held, buf, len);
	transport__close(t);
}

static void st_close(void *ctx, transport_conn *t, int err, uint16_t code)
{
	stat_client *st = ctx;
	st->done = 1;
	st->err = err;
}

static void test_drained_holds_nothing(uv_loop_t *loop, const char *url, const transport_options *opt,
				       uint64_t max_held)
{
	stat_client st = {.held = UINT64_MAX};
	transport_callbacks cb = {.ctx = &st, .on_open = st_open, .on_message = st_message, .on_close = st_close};
	TEST_EQ_INT(transport__connect(loop, url, opt, &cb, &st.t), PARLEY_OK);
	uint64_t deadline = uv_now(loop) + 15000;
	while (!st.done && uv_now(loop) < deadline) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
	TEST_CHECK(st.done);
	TEST_EQ_INT(st.err, PARLEY_OK);
	TEST_EQ_INT(st.step, 2);
	if (max_held == 0)
		TEST_EQ_INT(st.held, 0);
	else
		TEST_CHECK(st.held <= max_held);
}

/* ---- raw blocking sockets for what a well-behaved client would never do ---- */

static int raw_connect(uint16_t port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 5};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends req, reads until EOF/error/timeout into out (NUL-terminated, truncated). */
static void raw_exchange(uint16_t port, const void *req, size_t len, char *out, size_t outlen)
{
	int fd = raw_connect(port, 0);
	size_t got = 0;
	out[0] = '\0';
	if (fd < 0)
		return;
	(void)send(fd, req, len, MSG_NOSIGNAL);
	for (;;) {
		ssize_t n = recv(fd, out + got, outlen - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == outlen - 1)
			break;
	}
	out[got] = '\0';
	close(fd);
}

static void test_plain_routes(uint16_t port, uint16_t admin_port)
{
	char resp[65536];
	const char *h = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_exchange(port, h, strlen(h), resp, sizeof(resp));
	TEST_CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	TEST_CHECK(strstr(resp, "{\"status\":\"ok\"}") != NULL);
	/* /metrics is served on the admin listener only */
	const char *m = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_exchange(port, m, strlen(m), resp, sizeof(resp));
	TEST_CHECK(strncmp(resp, "HTTP/1.1 404", 12) == 0);
	raw_exchange(admin_port, m, strlen(m), resp, sizeof(resp));
	TEST_CHECK(strstr(resp, "text/plain; version=0.0.4") != NULL);
	TEST_CHECK(strstr(resp, "parley_connections_accepted_total") != NULL);
	const char *nf = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_exchange(port, nf, strlen(nf), resp, sizeof(resp));
	TEST_CHECK(strncmp(resp, "HTTP/1.1 404", 12) == 0);
	const char *bad = "GET / HTTP/1.1\r\nHost x\r\n\r\n";
	raw_exchange(port, bad, strlen(bad), resp, sizeof(resp));
	TEST_CHECK(strncmp(resp, "HTTP/1.1 400", 12) == 0);
	const char *v8 = "GET /v1/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
	raw_exchange(port, v8, strlen(v8), resp, sizeof(resp));
	TEST_CHECK(strncmp(resp, "HTTP/1.1 426", 12) == 0);
	TEST_CHECK(strstr(resp, "Sec-WebSocket-Version: 13\r\n") != NULL);
}

static void test_oversized_header(uint16_t port)
{
	dynbuf b;
	char resp[4096];
	dynbuf__init(&b, 1 << 16);
	dynbuf__append_str(&b, "GET /v1/websocket HTTP/1.1\r\nHost: x\r\n");
	while (b.len < 9000)
		dynbuf__append_str(&b, "X-Pad: 0123456789012345678901234567890123456789\r\n");
	dynbuf__append_str(&b, "\r\n");
	raw_exchange(port, b.data, b.len, resp, sizeof(resp));
	TEST_CHECK(strncmp(resp, "HTTP/1.1 431", 12) == 0);
	dynbuf__free(&b);
}

/* Connects a raw socket and completes the WebSocket upgrade on it. */
static int raw_upgrade(uint16_t port, int rcvbuf)
{
	int fd = raw_connect(port, rcvbuf);
	dynbuf req;
	char key[HTTP_WS_KEY_LEN + 1];
	char resp[2048];
	size_t got = 0;
	if (fd < 0)
		return -1;
	dynbuf__init(&req, 4096);
	http__ws_build_request(&req, "127.0.0.1", "/v1/websocket", NULL, NULL, key);
	(void)send(fd, req.data, req.len, MSG_NOSIGNAL);
	dynbuf__free(&req);
	while (got < sizeof(resp) - 1) {
		ssize_t n = recv(fd, resp + got, 1, 0); /* byte by byte: stop exactly at the header end */
		if (n <= 0)
			break;
		got += (size_t)n;
		resp[got] = '\0';
		if (got >= 4 && memcmp(resp + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	TEST_CHECK(strncmp(resp, "HTTP/1.1 101", 12) == 0);
	return fd;
}

/* Upgrades a raw socket, asks the server to flood it, and never reads. */
static int start_non_reader(uint16_t port)
{
	int fd = raw_upgrade(port, 4096);
	if (fd < 0)
		return -1;
	uint8_t frame[11] = {0x82, 0x85, 1, 2, 3, 4};
	for (int i = 0; i < 5; i++)
		frame[6 + i] = (uint8_t)("flood"[i] ^ frame[2 + i % 4]);
	(void)send(fd, frame, sizeof(frame), MSG_NOSIGNAL);
	return fd;
}

/* After the server gave up on us, reading drains what the kernel held and then sees the end. */
static int raw_sees_end(int fd)
{
	static char sink[65536];
	for (int i = 0; i < 100000; i++) {
		ssize_t n = recv(fd, sink, sizeof(sink), 0);
		if (n == 0)
			return 1;
		if (n < 0)
			return errno == ECONNRESET;
	}
	return 0;
}

static void test_slow_consumer(uv_loop_t *loop, net_server *s)
{
	int64_t before = metrics__get(METRIC_SLOW_CLIENTS);
	flood_result = -1;
	int fd = start_non_reader(net__server_port(s));
	TEST_CHECK(fd >= 0);
	/* meanwhile a normal client is served */
	char url[128];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", net__server_port(s));
	echo_once(loop, url, NULL, PARLEY_OK);
	for (int i = 0; i < 500 && flood_result == -1; i++)
		usleep(10000);
	TEST_EQ_INT(flood_result, PARLEY_E_SLOW_CONSUMER);
	TEST_EQ_INT(metrics__get(METRIC_SLOW_CLIENTS), before + 1);
	if (fd >= 0) {
		TEST_CHECK(raw_sees_end(fd));
		close(fd);
	}
	echo_once(loop, url, NULL, PARLEY_OK);
}

static int make_cert(char *dir, char *cert, char *key, size_t n)
{
	char cmd[1024];
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, n, "%s/cert.pem", dir);
	snprintf(key, n, "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
		 key, cert);
	return system(cmd);
}

typedef struct drain_arg {
	net_server *s;
	int rc;
	atomic_int done;
} drain_arg;

static void drain_thread(void *p)
{
	drain_arg *a = p;
	a->rc = net__server_drain(a->s, 3000);
	a->done = 1;
}

/* A client that stays connected: drain must close it with 1001 and a clean handshake. */
static void hold_open(void *ctx, transport_conn *t)
{
	client *cl = ctx;
	cl->open = 1;
}

static void test_drain(uv_loop_t *loop, net_server *s)
{
	client cl;
	client *list[1] = {&cl};
	char url[128];
	client_init(&cl);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", net__server_port(s));
	transport_callbacks cb = {.ctx = &cl, .on_open = hold_open, .on_close = cl_close};
	TEST_EQ_INT(transport__connect(loop, url, NULL, &cb, &cl.t), PARLEY_OK);
	for (int i = 0; i < 1000 && !cl.open; i++)
		uv_run(loop, UV_RUN_ONCE);
	TEST_CHECK(cl.open);
	drain_arg a = {.s = s};
	uv_thread_t th;
	uv_thread_create(&th, drain_thread, &a);
	run_until_done(loop, list, 1);
	uv_thread_join(&th);
	TEST_EQ_INT(a.rc, PARLEY_OK);
	TEST_CHECK(cl.done);
	TEST_EQ_INT(cl.err, PARLEY_OK);
	TEST_EQ_INT(cl.code, 1001);
	TEST_CHECK(strncmp(cl.text, "server closed the WebSocket with code 1001", 42) == 0);
	TEST_EQ_INT(workers_stopped, 2);
}

/* Handshake deadline (slowloris) and idle handling (pings, then 1001). */
static void test_timeouts(void)
{
	net_config cfg;
	int err;
	net__config_defaults(&cfg);
	cfg.port = 0;
	cfg.handshake_timeout_ms = 200;
	cfg.ping_interval_ms = 100;
	cfg.idle_timeout_ms = 400;
	cfg.auth_timeout_ms = 0; /* the echo service never authenticates: the idle tick runs from the start */
	net_server *s = net__server_new(&cfg, &echo_handler, &err);
	TEST_CHECK(s != NULL);
	if (s == NULL)
		return;
	TEST_EQ_INT(net__server_start(s), PARLEY_OK);
	uint16_t port = net__server_port(s);

	/* an upgraded client that says nothing, ticking on its worker's deadline list meanwhile */
	int wsfd = raw_upgrade(port, 0);
	uint64_t t0 = uv_hrtime();
	int fd = raw_connect(port, 0);
	const char *partial = "GET /v1/websocket HTTP/1.1\r\nHost: x\r\n";
	(void)send(fd, partial, strlen(partial), MSG_NOSIGNAL);
	char c;
	TEST_EQ_INT(recv(fd, &c, 1, 0), 0); /* closed by the server, without an answer */
	uint64_t ms = (uv_hrtime() - t0) / 1000000;
	TEST_CHECK(ms >= 150 && ms < 3000);
	close(fd);

	/* the silent WebSocket client: pinged, then closed with 1001 */
	fd = wsfd;
	uint8_t buf[4096];
	size_t got = 0, off = 0;
	int pings = 0;
	uint16_t code = 0;
	while (code == 0) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		ws_frame_header h;
		while (ws__frame_header_parse(buf + off, got - off, &h) == PARLEY_OK &&
		       got - off >= h.header_len + h.payload_len) {
			if (h.opcode == WS_OP_PING)
				pings++;
			if (h.opcode == WS_OP_CLOSE && h.payload_len >= 2)
				code = (uint16_t)((buf[off + h.header_len] << 8) | buf[off + h.header_len + 1]);
			off += h.header_len + h.payload_len;
		}
		if (got == sizeof(buf))
			break;
	}
	TEST_CHECK(pings >= 1);
	TEST_EQ_INT(code, 1001);
	close(fd);
	TEST_EQ_INT(net__server_drain(s, 1000), PARLEY_OK);
	net__server_free(s);
}

int main(void)
{
	uv_loop_t loop;
	uv_timer_t t;
	char url[128];
	log__setup(getenv("NET_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, 0, 2);
	uv_loop_init(&loop);
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick, 50, 50);

	net_server *s = start_server(NULL, NULL);
	if (s == NULL)
		return 1;
	TEST_EQ_INT(workers_started, 2);
	uint16_t port = net__server_port(s);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", port);

	/* several clients at once */
	client cls[4];
	client *list[4];
	for (int i = 0; i < 4; i++) {
		client_init(&cls[i]);
		list[i] = &cls[i];
		transport_callbacks cb = cl_cb;
		cb.ctx = &cls[i];
		TEST_EQ_INT(transport__connect(&loop, url, NULL, &cb, &cls[i].t), PARLEY_OK);
	}
	run_until_done(&loop, list, 4);
	for (int i = 0; i < 4; i++) {
		TEST_CHECK(cls[i].done);
		TEST_EQ_INT(cls[i].err, PARLEY_OK);
		TEST_EQ_INT(cls[i].received, 4);
		TEST_EQ_INT(cls[i].mismatches, 0);
	}
	test_shared_buffer_and_cork(&loop, url);
	TEST_CHECK(net__server_admin_port(s) != 0 && net__server_admin_port(s) != port);
	test_plain_routes(port, net__server_admin_port(s));
	test_oversized_header(port);
	echo_once(&loop, url, NULL, PARLEY_OK); /* still serving after the 431 */
	test_drained_holds_nothing(&loop, url, NULL, 0);
	test_slow_consumer(&loop, s);
	/* wrong path, refused upgrade */
	char bad_url[128];
	snprintf(bad_url, sizeof(bad_url), "ws://127.0.0.1:%u/nope", port);
	echo_text(&loop, bad_url, NULL, PARLEY_E_HTTP_UPGRADE_REFUSED,
		  "server answered HTTP 404 Not Found to the WebSocket upgrade");
	test_drain(&loop, s);
	TEST_EQ_INT(opened, closed_count);
	net__server_free(s);

	/* TLS */
	char dir[] = "/tmp/parley-net-XXXXXX", cert[256], key[256];
	TEST_EQ_INT(make_cert(dir, cert, key, sizeof(cert)), 0);
	workers_stopped = 0;
	s = start_server(cert, key);
	if (s != NULL) {
		port = net__server_port(s);
		transport_options opt = {.ca_file = cert};
		snprintf(url, sizeof(url), "wss://localhost:%u/v1/websocket", port);
		echo_once(&loop, url, &opt, PARLEY_OK);
		test_drained_holds_nothing(&loop, url, &opt, 2048);
		/* the system store does not know our certificate */
		echo_text(&loop, url, NULL, PARLEY_E_TLS, "TLS handshake failed: ");
		/* tests-only escape hatch */
		transport_options insecure = {.insecure_skip_verify = 1};
		snprintf(url, sizeof(url), "wss://127.0.0.1:%u/v1/websocket", port);
		echo_once(&loop, url, &insecure, PARLEY_OK);
		/* plain WebSocket against the TLS port fails cleanly */
		snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", port);
		echo_text(&loop, url, NULL, PARLEY_E_HTTP_BAD_RESPONSE, "WebSocket upgrade");
		TEST_EQ_INT(net__server_reload_tls(s, "/nonexistent.pem", key), PARLEY_E_TLS);
		TEST_EQ_INT(net__server_reload_tls(s, NULL, NULL), PARLEY_OK);
		snprintf(url, sizeof(url), "wss://localhost:%u/v1/websocket", port);
		echo_once(&loop, url, &opt, PARLEY_OK);
		net__server_free(s);
	}
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	TEST_EQ_INT(system(cmd), 0);

	test_timeouts();

	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	TEST_EXIT();
}
