/* lib/transport's failures, each with its error code and the text a user gets to read: a refused
 * port, a name that does not resolve, a server that answers the upgrade with 404, with something that
 * is not HTTP, with a broken 101, a server that dies mid-session (reset, or FIN without a close frame),
 * one that never answers (connect timeout); and the pre-resolved address option, which must not touch
 * the resolver and must still name the URL's host in the Host header.
 *
 * The "servers" are blocking sockets on a helper thread, one connection each: they do exactly the
 * wrong thing they are told to. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <parley/error.h>
#include <uv.h>

#include "codec/http.h"
#include "test.h"
#include "transport/transport.h"

/* ---- a misbehaving server ---- */

enum fake_mode { F_404, F_GARBAGE, F_BAD101, F_RESET, F_EOF, F_SILENT };

typedef struct fake {
	enum fake_mode mode;
	int lfd;
	uint16_t port;
	struct sockaddr_in addr;
	uv_thread_t th;
	char request[4096]; /* the client's upgrade request, as received */
} fake;

static void send_str(int fd, const char *s)
{
	(void)send(fd, s, strlen(s), MSG_NOSIGNAL);
}

/* Reads until the end of the request header (or 5 s, or the client closing). */
static void read_request(fake *f, int fd)
{
	size_t got = 0;
	while (got < sizeof(f->request) - 1) {
		ssize_t n = recv(fd, f->request + got, 1, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		f->request[got] = '\0';
		if (got >= 4 && memcmp(f->request + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
}

/* A correct 101 for the request's key. */
static void send_101(fake *f, int fd)
{
	char key[HTTP_WS_KEY_LEN + 1] = {0}, acc[HTTP_WS_ACCEPT_LEN + 1], resp[256];
	const char *k = strstr(f->request, "Sec-WebSocket-Key: ");
	if (k != NULL)
		memcpy(key, k + 19, HTTP_WS_KEY_LEN);
	TEST_EQ_INT(http__ws_accept(key, acc), PARLEY_OK);
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: %s\r\n\r\n",
		 acc);
	send_str(fd, resp);
}

static void fake_thread(void *arg)
{
	fake *f = arg;
	struct timeval tv = {.tv_sec = 5};
	uint8_t frame[64];
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	read_request(f, fd);
	switch (f->mode) {
	case F_404: send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); break;
	case F_GARBAGE: send_str(fd, "SSH-2.0-OpenSSH_9.2p1\r\n"); break;
	case F_BAD101:
		send_str(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
		break;
	case F_RESET:
	case F_EOF:
		send_101(f, fd);
		(void)recv(fd, frame, sizeof(frame), 0); /* the client's first message: it is mid-session */
		if (f->mode == F_RESET) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close() sends RST */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		break;
	case F_SILENT:
		(void)recv(fd, frame, sizeof(frame), 0); /* until the client gives up */
		break;
	}
	close(fd);
}

static void fake_start(fake *f, enum fake_mode mode)
{
	socklen_t len = sizeof(f->addr);
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	f->addr.sin_family = AF_INET;
	f->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	TEST_EQ_INT(bind(f->lfd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	TEST_EQ_INT(listen(f->lfd, 4), 0);
	TEST_EQ_INT(getsockname(f->lfd, (struct sockaddr *)&f->addr, &len), 0);
	f->port = ntohs(f->addr.sin_port);
	TEST_EQ_INT(uv_thread_create(&f->th, fake_thread, f), 0);
}

static void fake_join(fake *f)
{
	uv_thread_join(&f->th);
	close(f->lfd);
}

/* ---- the client ---- */

typedef struct outcome {
	int open, done, err;
	uint16_t code;
	char text[200];
} outcome;

static void o_open(void *ctx, transport_conn *t)
{
	outcome *o = ctx;
	o->open = 1;
	TEST_EQ_INT(transport__send(t, (const uint8_t *)"hello", 5), PARLEY_OK);
}

static void o_close(void *ctx, transport_conn *t, int err, uint16_t code)
{
	outcome *o = ctx;
	o->done = 1;
	o->err = err;
	o->code = code;
	snprintf(o->text, sizeof(o->text), "%s", transport__error_text(t));
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* Connects, runs the loop until on_close (15 s at most), checks the code and that the text contains
 * want (printed when it does not). */
static void expect(uv_loop_t *loop, const char *url, const transport_options *opt, int want_err, int want_open,
		   const char *want)
{
	outcome o;
	transport_conn *t = NULL;
	transport_callbacks cb = {.ctx = &o, .on_open = o_open, .on_close = o_close};
	uint64_t deadline = uv_now(loop) + 15000;

	memset(&o, 0, sizeof(o));
	TEST_EQ_INT(transport__connect(loop, url, opt, &cb, &t), PARLEY_OK);
	while (!o.done && uv_now(loop) < deadline) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
	TEST_CHECK(o.done);
	TEST_EQ_INT(o.err, want_err);
	TEST_EQ_INT(o.open, want_open);
	TEST_EQ_INT(o.code, 0);
	if (strstr(o.text, want) == NULL) {
		fprintf(stderr, "# %s: text \"%s\" lacks \"%s\"\n", url, o.text, want);
		TEST_CHECK(strstr(o.text, want) != NULL);
	}
}

static void url_of(char *url, size_t n, const fake *f, const char *path)
{
	snprintf(url, n, "ws://127.0.0.1:%u%s", f->port, path);
}

static void test_refused(uv_loop_t *loop)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char url[128], want[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port that was free a moment ago: nothing listens there */
	TEST_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	TEST_EQ_INT(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", ntohs(sa.sin_port));
	snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%u: connection refused", ntohs(sa.sin_port));
	expect(loop, url, NULL, PARLEY_E_CONNECT, 0, want);
}

static void test_unresolvable(uv_loop_t *loop)
{
	/* .invalid never resolves (RFC 2606); whether the resolver says "no such name" or fails
	 * otherwise (no network), the text names the host and says it did not resolve */
	expect(loop, "ws://nonexistent.invalid:8080/v1/websocket", NULL, PARLEY_E_CONNECT, 0,
	       "cannot resolve nonexistent.invalid: ");
}

static void test_answers(uv_loop_t *loop)
{
	static const struct {
		enum fake_mode mode;
		int err, open;
		const char *text;
	} cases[] = {
		{F_404, PARLEY_E_HTTP_UPGRADE_REFUSED, 0, "server answered HTTP 404 Not Found to the WebSocket upgrade"},
		{F_GARBAGE, PARLEY_E_HTTP_BAD_RESPONSE, 0, "did not answer the WebSocket upgrade with HTTP"},
		{F_BAD101, PARLEY_E_HTTP_BAD_RESPONSE, 0, "101 without a valid WebSocket handshake"},
		{F_RESET, PARLEY_E_CLOSED, 1, "connection lost without a WebSocket close frame: connection reset by peer"},
		{F_EOF, PARLEY_E_CLOSED, 1, "connection lost without a WebSocket close frame: the server closed the TCP"},
	};
	char url[128];
	fake f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_start(&f, cases[i].mode);
		url_of(url, sizeof(url), &f, "/v1/websocket");
		expect(loop, url, NULL, cases[i].err, cases[i].open, cases[i].text);
		fake_join(&f);
	}
}

static void test_timeout(uv_loop_t *loop)
{
	transport_options opt = {.connect_timeout_ms = 200};
	char url[128];
	fake f;

	fake_start(&f, F_SILENT);
	url_of(url, sizeof(url), &f, "/v1/websocket");
	expect(loop, url, &opt, PARLEY_E_TIMEOUT, 0, "no WebSocket connection after 200 ms (still waiting for the handshake)");
	fake_join(&f);
}

/* opt.addr: the name in the URL is never resolved, yet it is what the Host header says; reads land
 * in the caller's buffer. */
static void test_given_address(uv_loop_t *loop)
{
	static uint8_t rbuf[4096];
	transport_options opt = {.read_buf = rbuf, .read_buf_len = sizeof(rbuf)};
	fake f;

	fake_start(&f, F_404);
	opt.addr = (const struct sockaddr *)&f.addr;
	expect(loop, "ws://nonexistent.invalid:4321/custom/path", &opt, PARLEY_E_HTTP_UPGRADE_REFUSED, 0, "HTTP 404");
	fake_join(&f);
	TEST_CHECK(strncmp(f.request, "GET /custom/path HTTP/1.1\r\n", 27) == 0);
	TEST_CHECK(strstr(f.request, "\r\nHost: nonexistent.invalid:4321\r\n") != NULL);
}

static void test_bad_arguments(uv_loop_t *loop)
{
	transport_conn *t;
	transport_callbacks cb = {0};
	uint8_t b[16];
	transport_options opt = {.read_buf = b}; /* a buffer without a length */

	TEST_EQ_INT(transport__connect(loop, "http://127.0.0.1:1/", NULL, &cb, &t), PARLEY_E_INVAL);
	TEST_EQ_INT(transport__connect(loop, "ws://127.0.0.1:0/", NULL, &cb, &t), PARLEY_E_INVAL);
	TEST_EQ_INT(transport__connect(loop, "ws://127.0.0.1:1/", &opt, &cb, &t), PARLEY_E_INVAL);
}

int main(void)
{
	uv_loop_t loop;
	uv_timer_t t;

	uv_loop_init(&loop);
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick, 50, 50); /* UV_RUN_ONCE never blocks for long */
	test_bad_arguments(&loop);
	test_refused(&loop);
	test_unresolvable(&loop);
	test_answers(&loop);
	test_timeout(&loop);
	test_given_address(&loop);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	TEST_EQ_INT(uv_loop_close(&loop), 0);
	TEST_EXIT();
}
