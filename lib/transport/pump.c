/* libuv WebSocket client, bytes half (the "pump"): socket reads go through TLS (wss), the HTTP
 * upgrade answer and the WebSocket session (lib/codec parses everything) to the callbacks; output goes
 * back with uv_try_write, and only what the socket does not take is copied for one uv_write at a time
 * (the rest waits in the session, which bounds it). While one read is being delivered, output is held
 * and leaves in one write after it.
 */
#include "transport/transport_internal.h"

#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"

/* A read or write error on an established connection: the peer is gone (killed, reset, unplugged). */
static void lost(transport_conn *c, int uverr)
{
	if (uverr == UV_EOF)
		transport__fail(c, PARLEY_E_CLOSED,
				"connection lost without a WebSocket close frame: the server closed the TCP connection");
	else if (uverr == UV_ECONNRESET || uverr == UV_EPIPE || uverr == UV_ECONNABORTED || uverr == UV_ETIMEDOUT)
		transport__fail(c, PARLEY_E_CLOSED, "connection lost without a WebSocket close frame: %s", uv_strerror(uverr));
	else
		transport__fail(c, PARLEY_E_IO, "socket error: %s", uv_strerror(uverr));
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
		transport__flush(c);
	transport__release(c);
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
			transport__fail(c, PARLEY_E_TLS, "TLS write failed: %s", tls__last_error(c->tls));
			return;
		}
		if (rc == 0)
			ws__consume_output(c->ws, len);
	}
	if (rc == UV_ENOMEM)
		transport__fail(c, PARLEY_E_NOMEM, "out of memory");
	else if (rc < 0)
		lost(c, rc);
}

void transport__flush(transport_conn *c)
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
			transport__fail(c, rc, "TLS write failed: %s", tls__last_error(c->tls));
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
	transport__flush(c);
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
	transport__set_text(c, "server closed the WebSocket with code %u%s%s", (unsigned)code, len ? ": " : "", r);
}

static void feed_ws(transport_conn *c, const uint8_t *buf, size_t len)
{
	int rc = ws__feed(c->ws, buf, len);
	if (c->state == T_DONE)
		return;
	if (rc != PARLEY_OK) {
		/* the session queued the matching close frame; give the server a moment to answer it */
		c->err = rc;
		transport__set_text(c, "the server broke the WebSocket protocol: %s", parley_strerror(rc));
		c->state = T_CLOSING;
		uv_timer_start(&c->timer, transport__on_timer, T_CLOSE_GRACE_MS, 0);
	} else if (ws__close_received(c->ws) && c->state == T_OPEN) {
		/* the server closed; we answered; it closes the TCP connection next (§7.1.1) */
		c->state = T_CLOSING;
		uv_timer_start(&c->timer, transport__on_timer, T_CLOSE_GRACE_MS, 0);
	}
}

static void upgrade_failed(transport_conn *c, int rc)
{
	int status = http__resp_parser_status(c->resp);
	const char *reason = http__status_reason(status);

	if (rc == PARLEY_E_NOMEM)
		transport__fail(c, rc, "out of memory");
	else if (status != 0 && status != 101)
		transport__fail(c, PARLEY_E_HTTP_UPGRADE_REFUSED, "server answered HTTP %d%s%s to the WebSocket upgrade", status,
				strcmp(reason, "Unknown") != 0 ? " " : "", strcmp(reason, "Unknown") != 0 ? reason : "");
	else if (status == 101)
		transport__fail(c, PARLEY_E_HTTP_BAD_RESPONSE,
				"server answered 101 without a valid WebSocket handshake (Upgrade, Connection or Sec-WebSocket-Accept)");
	else
		transport__fail(c, PARLEY_E_HTTP_BAD_RESPONSE,
				"server did not answer the WebSocket upgrade with HTTP (malformed HTTP response)");
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
		transport__fail(c, rc, "out of memory");
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
		transport__fail(c, PARLEY_E_NOMEM, "out of memory");
		return;
	}
	for (;;) {
		int was_done = tls__handshake_done(c->tls);
		dynbuf__reset(&c->plain);
		int rc = tls__read(c->tls, &c->plain);
		if (rc == PARLEY_E_TLS) {
			flush_now(c); /* the alert, if the socket takes it */
			transport__fail(c, PARLEY_E_TLS, "TLS %s failed: %s", was_done ? "session" : "handshake", tls__last_error(c->tls));
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
				transport__finish(c, c->err);
			else
				transport__fail(c, PARLEY_E_CLOSED,
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
		transport__finish(c, c->err); /* we were already closing after a failure */
	else if (c->ws != NULL && ws__close_received(c->ws))
		transport__finish(c, PARLEY_OK);
	else if (c->state == T_OPEN || c->state == T_CLOSING)
		lost(c, uverr);
	else if (c->tls != NULL && !tls__handshake_done(c->tls))
		transport__fail(c, PARLEY_E_TLS, "connection closed during the TLS handshake (%s)", uv_strerror(uverr));
	else
		transport__fail(c, PARLEY_E_HTTP_BAD_RESPONSE, "connection closed before the WebSocket upgrade was answered (%s)",
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
	transport__flush(c);
}

void transport__on_connected(uv_connect_t *req, int status)
{
	transport_conn *c = req->data;
	char ep[300];

	if (c->state == T_DONE) {
		transport__release(c);
		return;
	}
	if (status < 0) {
		transport__fail(c, PARLEY_E_CONNECT, "cannot connect to %s: %s", transport__endpoint(c, ep, sizeof(ep)),
				uv_strerror(status));
		transport__release(c);
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
			transport__fail(c, rc, "TLS setup failed: %s", c->tls != NULL ? tls__last_error(c->tls) : parley_strerror(rc));
		else
			transport__flush(c);
	}
	transport__release(c);
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
	transport__flush(c);
	return PARLEY_OK;
}

void transport__cork(transport_conn *c, int corked)
{
	c->corked = corked;
	if (!corked)
		transport__flush(c);
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

