/* libuv WebSocket client, lifecycle half: URL, resolve -> connect, deadlines, close, and the one
 * on_close, called after every handle and request of the connection has finished (so freeing right
 * after it is safe). The bytes (TLS, upgrade, WebSocket session, writes) are pump.c's.
 */
#include "transport/transport_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <parley/error.h>

#include "common/alloc.h"

/* ---- what went wrong, in words ---- */

/* The first reason is kept: what follows a failure is usually a consequence of it. */
void transport__set_text(transport_conn *c, const char *fmt, ...)
			 {
			 va_list ap;
	if (c->err_text[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->err_text, sizeof(c->err_text), fmt, ap);
	va_end(ap);
}

void transport__fail(transport_conn *c, int err, const char *fmt, ...)
		     {
		     va_list ap;
	if (c->state == T_DONE)
		return;
	if (c->err_text[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(c->err_text, sizeof(c->err_text), fmt, ap);
		va_end(ap);
	}
	transport__finish(c, err);
}

/* host:port as the URL named it ("[::1]:8080" for IPv6 literals). */
const char *transport__endpoint(const transport_conn *c, char *buf, size_t n)
{
	int v6 = strchr(c->host, ':') != NULL;
	snprintf(buf, n, "%s%s%s:%s", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
	return buf;
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
	transport__endpoint(c, hostport, hp_len);
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

void transport__release(transport_conn *c)
{
	if (--c->pending > 0)
		return;
	uint16_t code = c->ws != NULL ? ws__peer_close_code(c->ws) : 0;
	if (code == WS_CLOSE_NO_STATUS)
		code = 0;
	if (c->err != PARLEY_OK)
		transport__set_text(c, "%s", parley_strerror(c->err));
	if (c->cb.on_close != NULL)
		c->cb.on_close(c->cb.ctx, c, c->err, code);
	conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	transport__release(h->data);
}

void transport__finish(transport_conn *c, int err)
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

void transport__on_timer(uv_timer_t *t)
{
	static const char *const doing[] = {"resolving the name", "connecting", "waiting for the handshake"};
	transport_conn *c = t->data;

	if (c->state == T_CLOSING) {
		if (c->err == PARLEY_OK && !ws__close_received(c->ws))
			transport__set_text(c, "the server did not finish the WebSocket close within %d ms", T_CLOSE_GRACE_MS);
		transport__finish(c, c->err != PARLEY_OK ? c->err : ws__close_received(c->ws) ? PARLEY_OK : PARLEY_E_TIMEOUT);
	} else {
		transport__fail(c, PARLEY_E_TIMEOUT, "no WebSocket connection after %u ms (still %s)", c->connect_timeout_ms,
				doing[c->state <= T_HANDSHAKE ? c->state : T_HANDSHAKE]);
	}
}

/* ---- connecting ---- */

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
	rc = uv_tcp_connect(&c->creq, &c->tcp, addr, transport__on_connected);
	if (rc != 0)
		transport__fail(c, PARLEY_E_CONNECT, "cannot connect to %s: %s", transport__endpoint(c, ep, sizeof(ep)),
				uv_strerror(rc));
	else
		c->pending++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	transport_conn *c = req->data;

	if (c->state == T_DONE) {
		uv_freeaddrinfo(res);
		transport__release(c);
		return;
	}
	if (status < 0 || res == NULL) {
		uv_freeaddrinfo(res);
		transport__fail(c, PARLEY_E_CONNECT, "cannot resolve %s: %s", c->host,
				status == UV_EAI_NONAME || res == NULL ? "host not found" : uv_strerror(status));
		transport__release(c);
		return;
	}
	start_tcp(c, res->ai_addr);
	uv_freeaddrinfo(res);
	transport__release(c);
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
	uv_timer_start(&c->timer, transport__on_timer, c->connect_timeout_ms, 0);
	if (opt->addr != NULL)
		start_tcp(c, opt->addr); /* a failure is reported through on_close, like any later one */
	*out = c;
	return PARLEY_OK;
}

void transport__close(transport_conn *c)
{
	if (c->state == T_DONE || c->state == T_CLOSING)
		return;
	if (c->state != T_OPEN) {
		transport__fail(c, PARLEY_E_CLOSED, "closed by the caller before the WebSocket opened");
		return;
	}
	c->state = T_CLOSING;
	ws__close(c->ws, WS_CLOSE_NORMAL, NULL);
	transport__flush(c);
	if (c->state != T_DONE)
		uv_timer_start(&c->timer, transport__on_timer, T_CLOSE_GRACE_MS, 0);
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
