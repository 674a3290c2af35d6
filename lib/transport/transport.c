/* libuv WebSocket client: resolve -> connect -> [TLS] -> HTTP upgrade -> WebSocket session.
 *
 * All parsing is done by lib/net (tls_bio, http, ws); this file only moves bytes between them and the
 * socket, keeps the deadlines and makes sure on_close is called exactly once, after every handle and
 * request of the connection has finished (so freeing right after it is safe).
 */
#include "transport/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "codec/http.h"
#include "codec/tls_bio.h"
#include "codec/ws.h"

#define T_READ_BUF 65536
#define T_CLOSE_GRACE_MS 3000

enum t_state { T_RESOLVING, T_CONNECTING, T_HANDSHAKE, T_OPEN, T_CLOSING, T_DONE };

struct transport_conn {
	uv_loop_t *loop;
	uv_getaddrinfo_t gai;
	uv_connect_t creq;
	uv_tcp_t tcp;
	uv_timer_t timer;
	transport_callbacks cb;
	transport_options opt;
	char host[256];
	char hostport[300];
	char port[8];
	char path[1024];
	char key[HTTP_WS_KEY_LEN + 1];
	char origin[256];
	SSL_CTX *ssl_ctx;
	tls_bio *tls;
	http_resp_parser *resp;
	ws_session *ws;
	enum t_state state;
	int err;
	int pending;      /* handles still open + requests still outstanding */
	int tcp_inited;
	int http_sent;
	int paused;
	size_t write_pending;
	void *data;
	dynbuf plain;
	uint8_t readbuf[T_READ_BUF];
	uint8_t tlsout[T_READ_BUF];
};

typedef struct t_write {
	uv_write_t req;
	transport_conn *c;
	size_t len;
	uint8_t data[];
} t_write;

static void finish(transport_conn *c, int err);
static void flush(transport_conn *c);

/* ---- URL ---- */

static int parse_url(transport_conn *c, const char *url)
{
	const char *p;
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
	const char *hs = p, *he;
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
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(c->host))
		return -1;
	memcpy(c->host, hs, hl);
	c->host[hl] = '\0';
	unsigned long port = tls ? 443 : 80;
	if (*p == ':') {
		char *end;
		port = strtoul(p + 1, &end, 10);
		if (end == p + 1 || port == 0 || port > 65535)
			return -1;
		p = end;
	}
	if (*p != '\0' && *p != '/')
		return -1;
	const char *path = *p == '/' ? p : "/v1/websocket";
	if (strlen(path) >= sizeof(c->path))
		return -1;
	memcpy(c->path, path, strlen(path) + 1);
	snprintf(c->port, sizeof(c->port), "%lu", port);
	int bracket = strchr(c->host, ':') != NULL;
	snprintf(c->hostport, sizeof(c->hostport), "%s%s%s:%lu", bracket ? "[" : "", c->host, bracket ? "]" : "",
		 port);
	return tls;
}

static int make_ssl_ctx(transport_conn *c)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	if (c->opt.insecure_skip_verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		int ok = c->opt.ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, c->opt.ca_file, NULL)
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
	parley__free(c);
}

static void release(transport_conn *c)
{
	if (--c->pending > 0)
		return;
	uint16_t code = c->ws != NULL ? ws__peer_close_code(c->ws) : 0;
	if (code == WS_CLOSE_NO_STATUS)
		code = 0;
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
	transport_conn *c = t->data;
	if (c->state == T_CLOSING)
		finish(c, c->err != PARLEY_OK ? c->err : ws__close_received(c->ws) ? PARLEY_OK : PARLEY_E_TIMEOUT);
	else
		finish(c, PARLEY_E_TIMEOUT);
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
	t_write *w = (t_write *)req;
	transport_conn *c = w->c;
	c->write_pending -= w->len;
	parley__free(w);
	if (status < 0 && c->state != T_DONE)
		finish(c, PARLEY_E_IO);
	else if (c->state != T_DONE)
		flush(c);
	release(c);
}

static int write_raw(transport_conn *c, const uint8_t *buf, size_t len)
{
	t_write *w = parley__malloc(sizeof(*w) + len);
	if (w == NULL)
		return PARLEY_E_NOMEM;
	memcpy(w->data, buf, len);
	w->c = c;
	w->len = len;
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
		parley__free(w);
		return PARLEY_E_IO;
	}
	c->pending++;
	c->write_pending += len;
	return PARLEY_OK;
}

static int send_plain(transport_conn *c, const uint8_t *buf, size_t len)
{
	if (c->tls == NULL)
		return write_raw(c, buf, len);
	return tls__write(c->tls, buf, len);
}

static void flush(transport_conn *c)
{
	int rc = PARLEY_OK;
	if (c->state == T_DONE)
		return;
	if (c->ws != NULL) {
		size_t len;
		const uint8_t *p = ws__pending_output(c->ws, &len);
		while (rc == PARLEY_OK && p != NULL && len > 0) {
			rc = send_plain(c, p, len);
			ws__consume_output(c->ws, len);
			p = ws__pending_output(c->ws, &len);
		}
	}
	if (c->tls != NULL) {
		size_t n;
		while (rc == PARLEY_OK && (n = tls__take_output(c->tls, c->tlsout, sizeof(c->tlsout))) > 0)
			rc = write_raw(c, c->tlsout, n);
	}
	if (rc != PARLEY_OK)
		finish(c, rc);
}

static void send_upgrade(transport_conn *c)
{
	dynbuf req;
	dynbuf__init(&req, 4096);
	int rc = http__ws_build_request(&req, c->hostport, c->path, c->opt.origin, NULL, c->key);
	if (rc == PARLEY_OK)
		rc = http__resp_parser_new(&c->resp, NULL, c->key);
	if (rc == PARLEY_OK)
		rc = send_plain(c, req.data, req.len);
	dynbuf__free(&req);
	if (rc != PARLEY_OK) {
		finish(c, rc);
		return;
	}
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

static void feed_ws(transport_conn *c, const uint8_t *buf, size_t len)
{
	int rc = ws__feed(c->ws, buf, len);
	flush(c);
	if (c->state == T_DONE)
		return;
	if (rc != PARLEY_OK) {
		c->err = rc;
		c->state = T_CLOSING;
		uv_timer_start(&c->timer, on_timer, T_CLOSE_GRACE_MS, 0);
	} else if (ws__close_received(c->ws) && c->state == T_OPEN) {
		/* the server closed; we answered; it closes the TCP connection next (§7.1.1) */
		c->state = T_CLOSING;
		uv_timer_start(&c->timer, on_timer, T_CLOSE_GRACE_MS, 0);
	}
}

static void feed_http(transport_conn *c, const uint8_t *buf, size_t len)
{
	size_t used = 0;
	int complete = 0;
	int rc = http__resp_parser_feed(c->resp, buf, len, &used, &complete);
	if (rc != PARLEY_OK) {
		finish(c, rc);
		return;
	}
	if (!complete)
		return;
	ws_config wcfg = {.max_message = c->opt.max_message, .max_output = c->opt.max_pending_output};
	ws_callbacks cb = {.ctx = c, .on_message = on_ws_message};
	rc = ws__session_new(&c->ws, WS_ROLE_CLIENT, &wcfg, &cb);
	if (rc != PARLEY_OK) {
		finish(c, rc);
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

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	transport_conn *c = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)c->readbuf, sizeof(c->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	transport_conn *c = s->data;
	if (nread == 0 || c->state == T_DONE)
		return;
	if (nread < 0) {
		int err = PARLEY_E_CLOSED;
		if (c->err != PARLEY_OK)
			err = c->err;
		else if (c->ws != NULL && ws__close_received(c->ws))
			err = PARLEY_OK;
		else if (c->state < T_OPEN)
			err = c->tls != NULL && !tls__handshake_done(c->tls) ? PARLEY_E_TLS : PARLEY_E_HTTP_BAD_RESPONSE;
		finish(c, err);
		return;
	}
	if (c->tls == NULL) {
		process_plain(c, buf->base != NULL ? (const uint8_t *)buf->base : NULL, (size_t)nread);
		return;
	}
	if (tls__feed(c->tls, (const uint8_t *)buf->base, (size_t)nread) != PARLEY_OK) {
		finish(c, PARLEY_E_NOMEM);
		return;
	}
	for (;;) {
		int was_done = tls__handshake_done(c->tls);
		dynbuf__reset(&c->plain);
		int rc = tls__read(c->tls, &c->plain);
		if (rc == PARLEY_E_TLS) {
			flush(c);
			finish(c, PARLEY_E_TLS);
			return;
		}
		if (!was_done && tls__handshake_done(c->tls) && !c->http_sent)
			send_upgrade(c);
		if (c->plain.len > 0)
			process_plain(c, c->plain.data, c->plain.len);
		flush(c);
		if (c->state == T_DONE)
			return;
		if (rc == PARLEY_E_CLOSED) {
			finish(c, c->ws != NULL && ws__close_received(c->ws) ? c->err : PARLEY_E_CLOSED);
			return;
		}
		if (c->plain.len < c->plain.max)
			return;
	}
}

static void on_connected(uv_connect_t *req, int status)
{
	transport_conn *c = req->data;
	if (c->state == T_DONE) {
		release(c);
		return;
	}
	if (status < 0) {
		finish(c, PARLEY_E_CONNECT);
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
		const char *name = c->opt.insecure_skip_verify ? NULL : c->host;
		int rc = tls__bio_new(&c->tls, c->ssl_ctx, 0, name);
		if (rc == PARLEY_OK)
			rc = tls__read(c->tls, &c->plain); /* produces the ClientHello */
		if (rc != PARLEY_OK)
			finish(c, rc);
		else
			flush(c);
	}
	release(c);
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
		finish(c, PARLEY_E_CONNECT);
		release(c);
		return;
	}
	uv_tcp_init(c->loop, &c->tcp);
	c->tcp.data = c;
	c->tcp_inited = 1;
	c->pending++; /* the tcp handle */
	c->state = T_CONNECTING;
	c->creq.data = c;
	if (uv_tcp_connect(&c->creq, &c->tcp, res->ai_addr, on_connected) != 0)
		finish(c, PARLEY_E_CONNECT);
	else
		c->pending++;
	uv_freeaddrinfo(res);
	release(c);
}

/* ---- API ---- */

int transport__connect(uv_loop_t *loop, const char *url, const transport_options *opt,
		       const transport_callbacks *cb, transport_conn **out)
{
	transport_conn *c;
	int tls, rc;
	if (loop == NULL || url == NULL || cb == NULL || out == NULL)
		return PARLEY_E_INVAL;
	c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	c->loop = loop;
	c->cb = *cb;
	if (opt != NULL)
		c->opt = *opt;
	c->opt.ca_file = NULL; /* only used now, not kept */
	c->opt.origin = NULL;
	if (c->opt.connect_timeout_ms == 0)
		c->opt.connect_timeout_ms = 10000;
	if (c->opt.max_message == 0)
		c->opt.max_message = 1u << 20;
	if (c->opt.max_pending_output == 0)
		c->opt.max_pending_output = 4u << 20;
	if (opt != NULL)
		c->opt.ca_file = opt->ca_file;
	dynbuf__init(&c->plain, T_READ_BUF);
	tls = parse_url(c, url);
	if (tls < 0) {
		conn_free(c);
		return PARLEY_E_INVAL;
	}
	if (tls) {
		rc = make_ssl_ctx(c);
		if (rc != PARLEY_OK) {
			conn_free(c);
			return rc;
		}
	}
	c->opt.ca_file = NULL;
	/* the request is built after connecting: keep our own copy of the origin */
	if (opt != NULL && opt->origin != NULL) {
		size_t ol = strlen(opt->origin);
		if (ol >= sizeof(c->origin)) {
			conn_free(c);
			return PARLEY_E_INVAL;
		}
		memcpy(c->origin, opt->origin, ol + 1);
		c->opt.origin = c->origin;
	}
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	c->gai.data = c;
	if (uv_getaddrinfo(loop, &c->gai, on_resolved, c->host, c->port, &hints) != 0) {
		conn_free(c);
		return PARLEY_E_CONNECT;
	}
	c->pending = 1; /* the resolve request */
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->pending++;
	uv_timer_start(&c->timer, on_timer, c->opt.connect_timeout_ms, 0);
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
	if (transport__pending_output(c) + len > c->opt.max_pending_output)
		return PARLEY_E_SLOW_CONSUMER;
	rc = ws__send_binary(c->ws, buf, len);
	if (rc != PARLEY_OK)
		return rc;
	flush(c);
	return PARLEY_OK;
}

size_t transport__pending_output(const transport_conn *c)
{
	size_t n = c->write_pending;
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
		finish(c, PARLEY_E_CLOSED);
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
	if (c->state == T_DONE || !c->tcp_inited || c->state == T_CONNECTING)
		return;
	if (paused)
		uv_read_stop((uv_stream_t *)&c->tcp);
	else
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void transport__set_data(transport_conn *c, void *data)
{
	c->data = data;
}

void *transport__data(const transport_conn *c)
{
	return c->data;
}
