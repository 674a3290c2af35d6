/* libuv WebSocket client: resolve -> connect -> [TLS] -> HTTP upgrade -> WebSocket session.
 *
 * All parsing is done by lib/codec (tls_bio, http, ws); this file only moves bytes between them and
 * the socket, keeps the deadlines, says in words what went wrong, and makes sure on_close is called
 * exactly once, after every handle and request of the connection has finished (so freeing right after
 * it is safe).
 */
#include "transport/transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <parley/error.h>

#include "codec/http.h"
#include "codec/tls_bio.h"
#include "codec/ws.h"
#include "common/alloc.h"
#include "common/dynbuf.h"

#define T_READ_BUF 65536
#define T_TLS_CHUNK 16384
#define T_CLOSE_GRACE_MS 3000

enum t_state { T_RESOLVING, T_CONNECTING, T_HANDSHAKE, T_OPEN, T_CLOSING, T_DONE };

struct transport_conn {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_getaddrinfo_t gai;
	uv_write_t wreq;
	transport_callbacks cb;
	unsigned connect_timeout_ms;
	size_t max_message, max_pending;
	int insecure;
	SSL_CTX *ssl_ctx;
	tls_bio *tls;
	dynbuf plain;           /* TLS: plaintext of one read */
	dynbuf request;         /* the upgrade request, built at connect time, freed once sent */
	http_resp_parser *resp; /* until the upgrade is answered */
	ws_session *ws;
	uint8_t *rbuf;
	size_t rbuf_len;
	int own_rbuf;
	uint8_t *wbuf; /* the one uv_write in flight: what the socket did not take at once */
	size_t wlen;
	enum t_state state;
	int err;
	int pending;   /* handles still open + requests still outstanding */
	int tcp_inited;
	int http_sent;
	int paused;
	int in_read;   /* delivering one read: output waits until it is done */
	int corked;
	void *data;
	char host[256];
	char port[8];
	char err_text[200];
};

static void finish(transport_conn *c, int err);
static void flush(transport_conn *c);

/* ---- what went wrong, in words ---- */

/* The first reason is kept: what follows a failure is usually a consequence of it. */
static void __attribute__((format(printf, 2, 3))) set_text(transport_conn *c, const char *fmt, ...)
{
	va_list ap;
	if (c->err_text[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->err_text, sizeof(c->err_text), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4))) fail(transport_conn *c, int err, const char *fmt, ...)
{
	va_list ap;
	if (c->state == T_DONE)
		return;
	if (c->err_text[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(c->err_text, sizeof(c->err_text), fmt, ap);
		va_end(ap);
	}
	finish(c, err);
}

/* host:port as the URL named it, for messages ("[::1]:8080" for IPv6 literals). */
static const char *endpoint(const transport_conn *c, char *buf, size_t n)
{
	int v6 = strchr(c->host, ':') != NULL;
	snprintf(buf, n, "%s%s%s:%s", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
	return buf;
}

/* A read or write error on an established connection: the peer is gone (killed, reset, unplugged). */
static void lost(transport_conn *c, int uverr)
{
	if (uverr == UV_EOF)
		fail(c, PARLEY_E_CLOSED, "connection lost without a WebSocket close frame: the server closed the TCP connection");
	else if (uverr == UV_ECONNRESET || uverr == UV_EPIPE || uverr == UV_ECONNABORTED || uverr == UV_ETIMEDOUT)
		fail(c, PARLEY_E_CLOSED, "connection lost without a WebSocket close frame: %s", uv_strerror(uverr));
	else
		fail(c, PARLEY_E_IO, "socket error: %s", uv_strerror(uverr));
}

/* ---- URL ---- */

/* Fills c->host and c->port, and hostport (Host header) and path; returns 1 for wss, 0 for ws, -1. */
static int parse_url(transport_conn *c, const char *url, char *hostport, size_t hp_len, char *path, size_t path_len)
{
	const char *p, *hs, *he, *pa;
	unsigned long port;
	size_t hl;
	int tls;

	if (strncmp(url, "ws://", 5) == 0) {
		tls = 0;
		p = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		tls = 1;
		p = url + 6;
	} else {
		return -1;
	}
	hs = p;
	if (*p == '[') { /* IPv6 literal */
		hs = p + 1;
		he = strchr(hs, ']');
		if (he == NULL)
			return -1;
		p = he + 1;
	} else {
		he = p + strcspn(p, ":/");
		p = he;
	}
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(c->host))
		return -1;
	memcpy(c->host, hs, hl);
	c->host[hl] = '\0';
	port = tls ? 443 : 80;
	if (*p == ':') {
		char *end;
		port = strtoul(p + 1, &end, 10);
		if (end == p + 1 || port == 0 || port > 65535)
			return -1;
		p = end;
	}
	if (*p != '\0' && *p != '/')
		return -1;
	pa = *p == '/' ? p : "/v1/websocket";
	if (strlen(pa) >= path_len)
		return -1;
	memcpy(path, pa, strlen(pa) + 1);
	snprintf(c->port, sizeof(c->port), "%lu", port);
	endpoint(c, hostport, hp_len);
	return tls;
}

static int make_ssl_ctx(transport_conn *c, const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	if (c->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
					 : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1)
			goto fail;
	}
	c->ssl_ctx = ctx;
	return PARLEY_OK;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return PARLEY_E_TLS;
}

/* ---- teardown ---- */

static void conn_free(transport_conn *c)
{
	ws__session_free(c->ws);
	http__resp_parser_free(c->resp);
	tls__bio_free(c->tls);
	SSL_CTX_free(c->ssl_ctx);
	dynbuf__free(&c->plain);
	dynbuf__free(&c->request);
	if (c->own_rbuf)
		parley__free(c->rbuf);
	parley__free(c);
}

static void release(transport_conn *c)
{
	if (--c->pending > 0)
		return;
	uint16_t code = c->ws != NULL ? ws__peer_close_code(c->ws) : 0;
	if (code == WS_CLOSE_NO_STATUS)
		code = 0;
	if (c->err != PARLEY_OK)
		set_text(c, "%s", parley_strerror(c->err));
	if (c->cb.on_close != NULL)
		c->cb.on_close(c->cb.ctx, c, c->err, code);
	conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	release(h->data);
}

/* Ends the connection with err (the first reason wins); on_close follows once everything is released. */
static void finish(transport_conn *c, int err)
{
	if (c->state == T_DONE)
		return;
	if (c->state == T_RESOLVING)
		uv_cancel((uv_req_t *)&c->gai); /* its callback still runs, with UV_ECANCELED */
	c->state = T_DONE;
	c->err = err;
	if (c->tcp_inited)
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed); /* cancels connect and writes */
	uv_close((uv_handle_t *)&c->timer, on_handle_closed); /* always open until here */
}

static void on_timer(uv_timer_t *t)
{
	static const char *const doing[] = {"resolving the name", "connecting", "waiting for the handshake"};
	transport_conn *c = t->data;

	if (c->state == T_CLOSING) {
		if (c->err == PARLEY_OK && !ws__close_received(c->ws))
			set_text(c, "the server did not finish the WebSocket close within %d ms", T_CLOSE_GRACE_MS);
		finish(c, c->err != PARLEY_OK ? c->err : ws__close_received(c->ws) ? PARLEY_OK : PARLEY_E_TIMEOUT);
	} else {
		fail(c, PARLEY_E_TIMEOUT, "no WebSocket connection after %u ms (still %s)", c->connect_timeout_ms,
		     doing[c->state <= T_HANDSHAKE ? c->state : T_HANDSHAKE]);
	}
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
	transport_conn *c = req->data;

	parley__free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = 0;
	if (status < 0 && c->state != T_DONE)
		lost(c, status);
	else
		flush(c);
	release(c);
}

/* Writes without copying when the socket takes everything (the usual case); otherwise copies the rest
 * for one uv_write. Only while no write is in flight. Returns 0 or a libuv error. */
static int send_raw(transport_conn *c, const uint8_t *p, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

	if (n == UV_EAGAIN)
		n = 0;
	if (n < 0)
		return n;
	if ((size_t)n == len)
		return 0;
	c->wbuf = parley__malloc(len - (size_t)n);
	if (c->wbuf == NULL)
		return UV_ENOMEM;
	c->wlen = len - (size_t)n;
	memcpy(c->wbuf, p + n, c->wlen);
	b = uv_buf_init((char *)c->wbuf, (unsigned)c->wlen);
	c->wreq.data = c;
	n = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (n < 0) {
		parley__free(c->wbuf);
		c->wbuf = NULL;
		c->wlen = 0;
		return n;
	}
	c->pending++;
	return 0;
}

/* Moves pending output to the socket until it is all written or a write is in flight: TLS records
 * first, then the session's frames (through TLS for wss). What is left waits in the session, which
 * bounds it, and goes out from on_write. */
static void flush_now(transport_conn *c)
{
	uint8_t chunk[T_TLS_CHUNK];
	const uint8_t *p;
	size_t len;
	int rc = 0;

	while (rc == 0 && c->wbuf == NULL && c->state >= T_HANDSHAKE && c->state != T_DONE) {
		if (c->tls != NULL && tls__pending_output(c->tls) > 0) {
			len = tls__take_output(c->tls, chunk, sizeof(chunk));
			rc = send_raw(c, chunk, len);
			continue;
		}
		len = 0;
		p = c->ws != NULL ? ws__pending_output(c->ws, &len) : NULL;
		if (p == NULL || len == 0)
			return;
		if (c->tls == NULL) {
			rc = send_raw(c, p, len);
		} else if (tls__write(c->tls, p, len) != PARLEY_OK) {
			fail(c, PARLEY_E_TLS, "TLS write failed: %s", tls__last_error(c->tls));
			return;
		}
		if (rc == 0)
			ws__consume_output(c->ws, len);
	}
	if (rc == UV_ENOMEM)
		fail(c, PARLEY_E_NOMEM, "out of memory");
	else if (rc < 0)
		lost(c, rc);
}

static void flush(transport_conn *c)
{
	if (!c->in_read && !c->corked)
		flush_now(c);
}

static void send_upgrade(transport_conn *c)
{
	int rc;

	if (c->tls != NULL) {
		rc = tls__write(c->tls, c->request.data, c->request.len);
		if (rc != PARLEY_OK) {
			fail(c, rc, "TLS write failed: %s", tls__last_error(c->tls));
			return;
		}
	} else {
		/* Nothing was written before on a plain connection: no write can be in flight. */
		rc = send_raw(c, c->request.data, c->request.len);
		if (rc < 0) {
			dynbuf__free(&c->request);
			lost(c, rc);
			return;
		}
	}
	dynbuf__free(&c->request);
	c->http_sent = 1;
	flush(c);
}

/* ---- input ---- */

static void on_ws_message(void *ctx, const uint8_t *buf, size_t len)
{
	transport_conn *c = ctx;
	if (c->cb.on_message != NULL && c->state == T_OPEN)
		c->cb.on_message(c->cb.ctx, c, buf, len);
}

/* Keeps the server's close code and reason for the error text (control characters masked: the
 * text may end up on a terminal). A normal closure needs no explanation. */
static void on_ws_peer_close(void *ctx, uint16_t code, const uint8_t *reason, size_t len)
{
	transport_conn *c = ctx;
	char r[124];
	size_t i;

	if (code == WS_CLOSE_NORMAL || code == WS_CLOSE_NO_STATUS)
		return;
	if (len >= sizeof(r))
		len = sizeof(r) - 1;
	for (i = 0; i < len; i++)
		r[i] = reason[i] < 0x20 || reason[i] == 0x7f ? '?' : (char)reason[i];
	r[len] = '\0';
	set_text(c, "server closed the WebSocket with code %u%s%s", (unsigned)code, len ? ": " : "", r);
}

static void feed_ws(transport_conn *c, const uint8_t *buf, size_t len)
{
	int rc = ws__feed(c->ws, buf, len);
	if (c->state == T_DONE)
		return;
	if (rc != PARLEY_OK) {
		/* the session queued the matching close frame; give the server a moment to answer it */
		c->err = rc;
		set_text(c, "the server broke the WebSocket protocol: %s", parley_strerror(rc));
		c->state = T_CLOSING;
		uv_timer_start(&c->timer, on_timer, T_CLOSE_GRACE_MS, 0);
	} else if (ws__close_received(c->ws) && c->state == T_OPEN) {
		/* the server closed; we answered; it closes the TCP connection next (§7.1.1) */
		c->state = T_CLOSING;
		uv_timer_start(&c->timer, on_timer, T_CLOSE_GRACE_MS, 0);
	}
}

static void upgrade_failed(transport_conn *c, int rc)
{
	int status = http__resp_parser_status(c->resp);
	const char *reason = http__status_reason(status);

	if (rc == PARLEY_E_NOMEM)
		fail(c, rc, "out of memory");
	else if (status != 0 && status != 101)
		fail(c, PARLEY_E_HTTP_UPGRADE_REFUSED, "server answered HTTP %d%s%s to the WebSocket upgrade", status,
		     strcmp(reason, "Unknown") != 0 ? " " : "", strcmp(reason, "Unknown") != 0 ? reason : "");
	else if (status == 101)
		fail(c, PARLEY_E_HTTP_BAD_RESPONSE,
		     "server answered 101 without a valid WebSocket handshake (Upgrade, Connection or Sec-WebSocket-Accept)");
	else
		fail(c, PARLEY_E_HTTP_BAD_RESPONSE, "server did not answer the WebSocket upgrade with HTTP (malformed HTTP response)");
}

static void feed_http(transport_conn *c, const uint8_t *buf, size_t len)
{
	size_t used = 0;
	int complete = 0;
	int rc = http__resp_parser_feed(c->resp, buf, len, &used, &complete);
	if (rc != PARLEY_OK) {
		upgrade_failed(c, rc);
		return;
	}
	if (!complete)
		return;
	http__resp_parser_free(c->resp);
	c->resp = NULL;
	ws_config wcfg = {.max_message = c->max_message, .max_output = c->max_pending};
	ws_callbacks cb = {.ctx = c, .on_message = on_ws_message, .on_peer_close = on_ws_peer_close};
	rc = ws__session_new(&c->ws, WS_ROLE_CLIENT, &wcfg, &cb);
	if (rc != PARLEY_OK) {
		fail(c, rc, "out of memory");
		return;
	}
	c->state = T_OPEN;
	uv_timer_stop(&c->timer);
	if (c->cb.on_open != NULL)
		c->cb.on_open(c->cb.ctx, c);
	if (c->state == T_OPEN && used < len)
		feed_ws(c, buf + used, len - used);
}

static void process_plain(transport_conn *c, const uint8_t *buf, size_t len)
{
	if (c->state == T_HANDSHAKE && c->http_sent)
		feed_http(c, buf, len);
	else if (c->state == T_OPEN || c->state == T_CLOSING)
		feed_ws(c, buf, len);
}

static void process_tls(transport_conn *c, const uint8_t *buf, size_t len)
{
	if (tls__feed(c->tls, buf, len) != PARLEY_OK) {
		fail(c, PARLEY_E_NOMEM, "out of memory");
		return;
	}
	for (;;) {
		int was_done = tls__handshake_done(c->tls);
		dynbuf__reset(&c->plain);
		int rc = tls__read(c->tls, &c->plain);
		if (rc == PARLEY_E_TLS) {
			flush_now(c); /* the alert, if the socket takes it */
			fail(c, PARLEY_E_TLS, "TLS %s failed: %s", was_done ? "session" : "handshake", tls__last_error(c->tls));
			return;
		}
		if (!was_done && tls__handshake_done(c->tls) && !c->http_sent)
			send_upgrade(c);
		if (c->plain.len > 0)
			process_plain(c, c->plain.data, c->plain.len);
		if (c->state == T_DONE)
			return;
		if (rc == PARLEY_E_CLOSED) {
			if (c->ws != NULL && ws__close_received(c->ws))
				finish(c, c->err);
			else
				fail(c, PARLEY_E_CLOSED,
				     "connection lost without a WebSocket close frame: the server ended the TLS session");
			return;
		}
		if (c->plain.len < c->plain.max)
			return;
	}
}

/* The socket's end (or error) arrived. */
static void read_ended(transport_conn *c, int uverr)
{
	if (c->err != PARLEY_OK)
		finish(c, c->err); /* we were already closing after a failure */
	else if (c->ws != NULL && ws__close_received(c->ws))
		finish(c, PARLEY_OK);
	else if (c->state == T_OPEN || c->state == T_CLOSING)
		lost(c, uverr);
	else if (c->tls != NULL && !tls__handshake_done(c->tls))
		fail(c, PARLEY_E_TLS, "connection closed during the TLS handshake (%s)", uv_strerror(uverr));
	else
		fail(c, PARLEY_E_HTTP_BAD_RESPONSE, "connection closed before the WebSocket upgrade was answered (%s)",
		     uv_strerror(uverr));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	transport_conn *c = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)c->rbuf, (unsigned)c->rbuf_len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	transport_conn *c = s->data;

	if (nread == 0 || c->state == T_DONE)
		return;
	if (nread < 0) {
		read_ended(c, (int)nread);
		return;
	}
	/* Every byte is consumed (copied by the codecs) before returning: the buffer may be shared. */
	c->in_read = 1;
	if (c->tls == NULL)
		process_plain(c, (const uint8_t *)buf->base, (size_t)nread);
	else
		process_tls(c, (const uint8_t *)buf->base, (size_t)nread);
	if (c->state == T_OPEN && c->cb.on_read_done != NULL)
		c->cb.on_read_done(c->cb.ctx, c);
	c->in_read = 0;
	flush(c);
}

static void on_connected(uv_connect_t *req, int status)
{
	transport_conn *c = req->data;
	char ep[300];

	if (c->state == T_DONE) {
		release(c);
		return;
	}
	if (status < 0) {
		fail(c, PARLEY_E_CONNECT, "cannot connect to %s: %s", endpoint(c, ep, sizeof(ep)), uv_strerror(status));
		release(c);
		return;
	}
	c->state = T_HANDSHAKE;
	uv_tcp_nodelay(&c->tcp, 1);
	if (!c->paused)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (c->ssl_ctx == NULL) {
		send_upgrade(c);
	} else {
		int rc = tls__bio_new(&c->tls, c->ssl_ctx, 0, c->insecure ? NULL : c->host);
		if (rc == PARLEY_OK)
			rc = tls__read(c->tls, &c->plain); /* produces the ClientHello */
		if (rc != PARLEY_OK)
			fail(c, rc, "TLS setup failed: %s", c->tls != NULL ? tls__last_error(c->tls) : parley_strerror(rc));
		else
			flush(c);
	}
	release(c);
}

static void start_tcp(transport_conn *c, const struct sockaddr *addr)
{
	char ep[300];
	int rc;

	c->state = T_CONNECTING;
	uv_tcp_init(c->loop, &c->tcp);
	c->tcp.data = c;
	c->tcp_inited = 1;
	c->pending++; /* the tcp handle */
	c->creq.data = c;
	rc = uv_tcp_connect(&c->creq, &c->tcp, addr, on_connected);
	if (rc != 0)
		fail(c, PARLEY_E_CONNECT, "cannot connect to %s: %s", endpoint(c, ep, sizeof(ep)), uv_strerror(rc));
	else
		c->pending++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	transport_conn *c = req->data;

	if (c->state == T_DONE) {
		uv_freeaddrinfo(res);
		release(c);
		return;
	}
	if (status < 0 || res == NULL) {
		uv_freeaddrinfo(res);
		fail(c, PARLEY_E_CONNECT, "cannot resolve %s: %s", c->host,
		     status == UV_EAI_NONAME || res == NULL ? "host not found" : uv_strerror(status));
		release(c);
		return;
	}
	start_tcp(c, res->ai_addr);
	uv_freeaddrinfo(res);
	release(c);
}

/* ---- API ---- */

int transport__connect(uv_loop_t *loop, const char *url, const transport_options *opt,
		       const transport_callbacks *cb, transport_conn **out)
{
	static const transport_options defaults;
	char hostport[300], path[1024], key[HTTP_WS_KEY_LEN + 1];
	transport_conn *c;
	int tls, rc;

	if (loop == NULL || url == NULL || cb == NULL || out == NULL)
		return PARLEY_E_INVAL;
	if (opt == NULL)
		opt = &defaults;
	if (opt->read_buf != NULL && opt->read_buf_len == 0)
		return PARLEY_E_INVAL;
	c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	c->loop = loop;
	c->cb = *cb;
	c->insecure = opt->insecure_skip_verify;
	c->connect_timeout_ms = opt->connect_timeout_ms ? opt->connect_timeout_ms : 10000;
	c->max_message = opt->max_message ? opt->max_message : 1u << 20;
	c->max_pending = opt->max_pending_output ? opt->max_pending_output : 4u << 20;
	dynbuf__init(&c->plain, T_READ_BUF);
	dynbuf__init(&c->request, 8192);
	tls = parse_url(c, url, hostport, sizeof(hostport), path, sizeof(path));
	rc = tls < 0 ? PARLEY_E_INVAL : PARLEY_OK;
	if (rc == PARLEY_OK && tls)
		rc = make_ssl_ctx(c, opt->ca_file);
	/* The request is built now: origin and the URL need not outlive this call. */
	if (rc == PARLEY_OK)
		rc = http__ws_build_request(&c->request, hostport, path, opt->origin, NULL, key);
	if (rc == PARLEY_OK)
		rc = http__resp_parser_new(&c->resp, NULL, key);
	if (rc == PARLEY_OK && opt->read_buf != NULL) {
		c->rbuf = opt->read_buf;
		c->rbuf_len = opt->read_buf_len;
	} else if (rc == PARLEY_OK) {
		c->rbuf = parley__malloc(T_READ_BUF);
		c->rbuf_len = T_READ_BUF;
		c->own_rbuf = 1;
		rc = c->rbuf == NULL ? PARLEY_E_NOMEM : PARLEY_OK;
	}
	if (rc == PARLEY_OK && opt->addr == NULL) {
		struct addrinfo hints;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		c->gai.data = c;
		if (uv_getaddrinfo(loop, &c->gai, on_resolved, c->host, c->port, &hints) != 0)
			rc = PARLEY_E_CONNECT;
		else
			c->pending = 1; /* the resolve request */
	}
	if (rc != PARLEY_OK) {
		conn_free(c);
		return rc;
	}
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->pending++;
	uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
	if (opt->addr != NULL)
		start_tcp(c, opt->addr); /* a failure is reported through on_close, like any later one */
	*out = c;
	return PARLEY_OK;
}

int transport__send(transport_conn *c, const uint8_t *buf, size_t len)
{
	int rc;
	if (c->state < T_OPEN)
		return PARLEY_E_STATE;
	if (c->state != T_OPEN)
		return PARLEY_E_CLOSED;
	if (transport__pending_output(c) + len > c->max_pending)
		return PARLEY_E_SLOW_CONSUMER;
	rc = ws__send_binary(c->ws, buf, len);
	if (rc != PARLEY_OK)
		return rc;
	flush(c);
	return PARLEY_OK;
}

void transport__cork(transport_conn *c, int corked)
{
	c->corked = corked;
	if (!corked)
		flush(c);
}

size_t transport__pending_output(const transport_conn *c)
{
	size_t n = c->wlen;
	if (c->ws != NULL)
		n += ws__pending_bytes(c->ws);
	if (c->tls != NULL)
		n += tls__pending_output(c->tls);
	return n;
}

void transport__close(transport_conn *c)
{
	if (c->state == T_DONE || c->state == T_CLOSING)
		return;
	if (c->state != T_OPEN) {
		fail(c, PARLEY_E_CLOSED, "closed by the caller before the WebSocket opened");
		return;
	}
	c->state = T_CLOSING;
	ws__close(c->ws, WS_CLOSE_NORMAL, NULL);
	flush(c);
	if (c->state != T_DONE)
		uv_timer_start(&c->timer, on_timer, T_CLOSE_GRACE_MS, 0);
}

void transport__pause_reading(transport_conn *c, int paused)
{
	c->paused = paused;
	if (c->state == T_DONE || c->state < T_HANDSHAKE)
		return;
	if (paused)
		uv_read_stop((uv_stream_t *)&c->tcp);
	else
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

const char *transport__error_text(const transport_conn *c)
{
	return c->err_text;
}

void transport__set_data(transport_conn *c, void *data)
{
	c->data = data;
}

void *transport__data(const transport_conn *c)
{
	return c->data;
}
