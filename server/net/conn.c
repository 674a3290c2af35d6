/* One client connection of parleyd: the state machine from accept to close.
 *
 *   accept -> [TLS handshake] -> HTTP header (handshake timer running) -> plain answer + close
 *                                                                   \-> 101 -> WebSocket session
 *
 * This file moves bytes only: every byte is parsed by lib/net (tls_bio, http, ws). Output is accounted
 * (write_pending + what the ws session still holds) against max_pending_output so a peer that stops
 * reading is cut off instead of growing our memory (slow consumer, closed with 1008).
 *
 * Write coalescing: frames sent from service callbacks (store completions, mailbox pushes) only queue in
 * the ws session; the connection goes on its worker's flush queue, which runs once per loop iteration
 * just before the loop blocks in poll (sched.c) and moves everything queued to the socket in one write
 * (one SSL_write batch with TLS). A store batch completing 100 sends then costs one write(2) per
 * connection, not one per frame (write(2) was half of the loop thread's time). Frames stay in order:
 * they all pass through the one ws output buffer; the slow-consumer bound stays exact because that
 * buffer is part of pending_total.
 *
 * Memory: an idle WebSocket connection is this struct (one uv_tcp_t, list links for the flush queue and
 * the deadlines) plus a ws session without buffers: the HTTP parser is freed at the upgrade, the ws
 * output buffer when it drained, and input is unmasked in place in the worker's read buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "net/net_internal.h"

typedef struct write_req {
	uv_write_t req;
	net_conn *c;
	size_t len;
	uint8_t data[];
} write_req;

static void conn_close(net_conn *c, int hard);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void flush_tls(net_conn *c);

static uint64_t now_ms(net_conn *c)
{
	return uv_now(&c->w->loop);
}

/* ---- lifetime ---- */

void net__conn_ref(net_conn *c)
{
	c->refs++;
}

void net__conn_unref(net_conn *c)
{
	if (--c->refs > 0)
		return;
	ws__session_free(c->ws);
	http__req_parser_free(c->http);
	tls__bio_free(c->tls);
	parley__free(c);
}

size_t net__conn_buffered(const net_conn *c)
{
	return (c->ws != NULL ? ws__buffered_bytes(c->ws) : 0) + (c->tls != NULL ? tls__buffered_bytes(c->tls) : 0);
}

int net__conn_is_open(const net_conn *c)
{
	return c->state == CONN_WS && c->ws != NULL && !ws__close_sent(c->ws) && !c->hard_closing;
}

void net__conn_set_data(net_conn *c, void *data)
{
	c->data = data;
}

void *net__conn_data(const net_conn *c)
{
	return c->data;
}

uv_loop_t *net__conn_loop(const net_conn *c)
{
	return &c->w->loop;
}

int net__conn_worker(const net_conn *c)
{
	return c->w->idx;
}

uint64_t net__conn_id(const net_conn *c)
{
	return c->id;
}

const char *net__conn_peer(const net_conn *c)
{
	return c->peer;
}

static void on_handle_closed(uv_handle_t *h)
{
	net_conn *c = h->data;
	net_worker *w = c->w;
	if (c->opened) {
		metrics__add(METRIC_WS_CONNS_OPEN, -1);
		if (w->srv->h.on_close != NULL)
			w->srv->h.on_close(w->srv->h.ctx, c);
	}
	log_debug("net", "conn %llu %s closed", (unsigned long long)c->id, c->peer);
	if (c->addr_counted)
		net__addr_release(w->srv, c->addr_key);
	if (c->admin)
		atomic_fetch_sub(&w->srv->nadmin, 1);
	net__worker_conn_gone(w, c);
	net__conn_unref(c);
}

static int drain_ws(net_conn *c);

static void conn_close(net_conn *c, int hard)
{
	if (c->state == CONN_CLOSED)
		return;
	if (!hard && c->ws != NULL && !c->in_dispatch && drain_ws(c) != PARLEY_OK)
		hard = 1; /* frames queued for the deferred flush go out before the close */
	if (!hard && c->tls != NULL && !c->tls_shutdown_sent) {
		/* close_notify, so the peer can tell our close from a truncation attack */
		c->tls_shutdown_sent = 1;
		tls__shutdown(c->tls);
		flush_tls(c);
		if (c->state == CONN_CLOSED)
			return;
	}
	if (!hard && (c->write_pending > 0 || (c->tls != NULL && tls__pending_output(c->tls) > 0))) {
		/* let the last bytes (error page, close frame) reach the peer first */
		c->close_after_flush = 1;
		c->state = CONN_CLOSING;
		net__sched_deadline(c, NET_DL_CLOSING);
		return;
	}
	c->state = CONN_CLOSED;
	net__sched_deadline(c, NET_DL_NONE);
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void net__conn_pause(net_conn *c, int paused)
{
	if (paused)
		uv_read_stop((uv_stream_t *)&c->tcp);
	else if (c->state != CONN_CLOSED)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
	write_req *wr = (write_req *)req;
	net_conn *c = wr->c;
	c->write_pending -= wr->len;
	parley__free(wr);
	if (status < 0) {
		log_debug("net", "conn %llu write failed: %s", (unsigned long long)c->id, uv_strerror(status));
		conn_close(c, 1);
	} else if (c->state != CONN_CLOSED) {
		net__conn_flush(c);
		if (c->close_after_flush && c->write_pending == 0)
			conn_close(c, 1);
	}
	net__conn_unref(c);
}

static int write_raw(net_conn *c, const uint8_t *buf, size_t len)
{
	if (c->write_pending == 0) {
		/* nothing queued: write straight from the caller's buffer, copy only what the socket did
		 * not take (uv_write would make the same write(2), after a malloc and a copy) */
		uv_buf_t direct = uv_buf_init((char *)buf, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &direct, 1);
		if (n > 0) {
			metrics__add(METRIC_BYTES_OUT, n);
			buf += n;
			len -= (size_t)n;
			if (len == 0)
				return PARLEY_OK;
		} else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
			return PARLEY_E_IO;
		}
	}
	write_req *wr = parley__malloc(sizeof(*wr) + len);
	if (wr == NULL)
		return PARLEY_E_NOMEM;
	memcpy(wr->data, buf, len);
	wr->c = c;
	wr->len = len;
	uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)len);
	int r = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (r < 0) {
		parley__free(wr);
		return PARLEY_E_IO;
	}
	net__conn_ref(c);
	c->write_pending += len;
	metrics__add(METRIC_BYTES_OUT, (int64_t)len);
	return PARLEY_OK;
}

/* Sends plaintext (through TLS when on). */
static int send_plain(net_conn *c, const uint8_t *buf, size_t len)
{
	if (c->tls == NULL)
		return write_raw(c, buf, len);
	int rc = tls__write(c->tls, buf, len);
	if (rc != PARLEY_OK)
		return rc;
	return PARLEY_OK; /* ciphertext goes out in flush_tls */
}

static void flush_tls(net_conn *c)
{
	uint8_t *tmp = c->w->readbuf; /* free here: reading is synchronous and done */
	size_t n;
	if (c->tls == NULL)
		return;
	while ((n = tls__take_output(c->tls, tmp, NET_READ_BUF)) > 0) {
		if (write_raw(c, tmp, n) != PARLEY_OK) {
			conn_close(c, 1);
			return;
		}
	}
}

/* Moves what the ws session holds to the socket (or into TLS). */
static int drain_ws(net_conn *c)
{
	size_t len;
	const uint8_t *p = ws__pending_output(c->ws, &len);
	while (p != NULL && len > 0) {
		if (send_plain(c, p, len) != PARLEY_OK)
			return PARLEY_E_IO;
		ws__consume_output(c->ws, len);
		p = ws__pending_output(c->ws, &len);
	}
	return PARLEY_OK;
}

void net__conn_flush(net_conn *c)
{
	if (c->state == CONN_CLOSED || c->in_dispatch)
		return;
	if (c->ws != NULL && drain_ws(c) != PARLEY_OK) {
		conn_close(c, 1);
		return;
	}
	flush_tls(c);
	if (c->ws != NULL && ws__is_done(c->ws) && c->state != CONN_CLOSED)
		conn_close(c, 0);
}

/* Flush before the loop next blocks, together with whatever else this iteration queues. */
static void schedule_flush(net_conn *c)
{
	if (c->state != CONN_CLOSED)
		net__sched_flush(c);
}

static size_t pending_total(net_conn *c)
{
	return c->write_pending + (c->ws != NULL ? ws__pending_bytes(c->ws) : 0);
}

static void slow_consumer(net_conn *c)
{
	metrics__inc(METRIC_SLOW_CLIENTS);
	log_warn("net", "conn %llu %s: slow consumer (%zu bytes unsent), closing", (unsigned long long)c->id, c->peer,
		 pending_total(c));
	ws__close(c->ws, WS_CLOSE_POLICY, "slow consumer");
	/* the peer is not reading, so the close frame would never get through: cut the connection */
	c->hard_closing = 1;
	conn_close(c, 1);
}

int net__conn_send(net_conn *c, const uint8_t *buf, size_t len)
{
	int rc;
	if (!net__conn_is_open(c))
		return PARLEY_E_CLOSED;
	if (pending_total(c) + len > c->w->srv->cfg.max_pending_output) {
		slow_consumer(c);
		return PARLEY_E_SLOW_CONSUMER;
	}
	rc = ws__send_binary(c->ws, buf, len);
	if (rc != PARLEY_OK) {
		if (rc == PARLEY_E_NOMEM || rc == PARLEY_E_INTERNAL)
			conn_close(c, 1); /* the session may hold half a frame: it cannot continue */
		return rc;
	}
	metrics__inc(METRIC_FRAMES_OUT);
	if (!c->in_dispatch)
		schedule_flush(c); /* inside ws__feed, feed_ws schedules it */
	return PARLEY_OK;
}

void net__conn_close(net_conn *c, uint16_t code, const char *reason)
{
	if (c->state == CONN_CLOSED || c->ws == NULL) {
		conn_close(c, 1);
		return;
	}
	ws__close(c->ws, code, reason);
	net__conn_flush(c);
	if (c->state != CONN_CLOSED) {
		/* the peer has this long to answer the close frame */
		c->state = CONN_CLOSING;
		net__sched_deadline(c, NET_DL_CLOSING);
	}
}

/* ---- timers: handshake deadline, auth and message deadlines, idle/ping, closing grace ---- */

/* The one deadline an open WebSocket waits for: until authenticated, the auth deadline (armed once, at
 * the upgrade: it bounds everything before auth, trickled messages included); then the message
 * deadline while a message is partly in, else the idle tick. Called after every read. */
static void ws_deadline(net_conn *c)
{
	const net_worker *w = c->w;
	enum net_deadline want = NET_DL_TICK;
	if (c->state != CONN_WS)
		return;
	if (!c->authed && w->dl_delay[NET_DL_AUTH] != 0)
		want = NET_DL_AUTH;
	else if (w->dl_delay[NET_DL_MESSAGE] != 0 && ws__receiving(c->ws))
		want = NET_DL_MESSAGE;
	if (c->dl != want)
		net__sched_deadline(c, want);
}

void net__conn_authenticated(net_conn *c)
{
	if (c->authed || c->ws == NULL)
		return;
	c->authed = 1;
	ws__set_max_message(c->ws, c->w->srv->cfg.max_message_bytes);
	ws_deadline(c);
}

void net__conn_deadline(net_conn *c, enum net_deadline dl)
{
	const net_config *cfg = &c->w->srv->cfg;
	switch (c->state) {
	case CONN_HTTP:
		log_debug("net", "conn %llu %s: handshake timeout", (unsigned long long)c->id, c->peer);
		metrics__inc(METRIC_PROTOCOL_ERRORS);
		conn_close(c, 1);
		return;
	case CONN_WS: {
		if (dl == NET_DL_AUTH) {
			log_debug("net", "conn %llu %s: not authenticated within %u ms", (unsigned long long)c->id,
				  c->peer, cfg->auth_timeout_ms);
			metrics__inc(METRIC_AUTH_TIMEOUTS);
			net__conn_close(c, NET_CLOSE_AUTH_TIMEOUT, parley_errname(PARLEY_E_AUTH_TIMEOUT));
			return;
		}
		if (dl == NET_DL_MESSAGE) {
			log_debug("net", "conn %llu %s: message not complete within %u ms", (unsigned long long)c->id,
				  c->peer, cfg->message_timeout_ms);
			metrics__inc(METRIC_MESSAGE_TIMEOUTS);
			net__conn_close(c, WS_CLOSE_POLICY, parley_errname(PARLEY_E_MESSAGE_TIMEOUT));
			return;
		}
		uint64_t idle = now_ms(c) - c->last_rx_ms;
		if (cfg->idle_timeout_ms && idle >= cfg->idle_timeout_ms) {
			log_debug("net", "conn %llu %s: idle for %llu ms", (unsigned long long)c->id, c->peer,
				  (unsigned long long)idle);
			net__conn_close(c, WS_CLOSE_GOING_AWAY, "idle timeout");
			return;
		}
		if (cfg->ping_interval_ms && idle >= cfg->ping_interval_ms) {
			ws__send_ping(c->ws, (const uint8_t *)"p", 1);
			net__conn_flush(c);
		}
		if (c->state == CONN_WS)
			net__sched_deadline(c, NET_DL_TICK); /* the next check */
		return;
	}
	case CONN_CLOSING:
		conn_close(c, 1);
		return;
	case CONN_CLOSED:
		return;
	}
}

/* ---- input ---- */

static void on_ws_message(void *ctx, const uint8_t *buf, size_t len)
{
	net_conn *c = ctx;
	net_handler *h = &c->w->srv->h;
	metrics__inc(METRIC_FRAMES_IN);
	/* the message deadline is per message: one that completes ends it, even when the same read
	 * already started the next (a busy stream is never between messages when a read ends) */
	if (c->dl == NET_DL_MESSAGE)
		net__sched_deadline(c, NET_DL_NONE);
	if (h->on_message != NULL && net__conn_is_open(c))
		h->on_message(h->ctx, c, buf, len);
}

static void answer_and_close(net_conn *c, dynbuf *resp)
{
	if (send_plain(c, resp->data, resp->len) != PARLEY_OK) {
		conn_close(c, 1);
		return;
	}
	flush_tls(c);
	conn_close(c, 0);
}

static int start_websocket(net_conn *c, const http_request *r, const uint8_t *rest, size_t rest_len)
{
	net_server *s = c->w->srv;
	dynbuf resp;
	int status = 0, rc;
	dynbuf__init(&resp, 4096);
	rc = http__ws_validate_upgrade(r, &status);
	if (rc != PARLEY_OK) {
		log_debug("net", "conn %llu %s: bad upgrade (%d)", (unsigned long long)c->id, c->peer, status);
		metrics__inc(METRIC_PROTOCOL_ERRORS);
		if (http__build_upgrade_refusal(&resp, status) == PARLEY_OK)
			answer_and_close(c, &resp);
		else
			conn_close(c, 1);
		goto out;
	}
	if (!net__origin_allowed(s, r->origin)) {
		/* a page of another site, riding on the user's browser (cross-site WebSocket hijacking) */
		log_debug("net", "conn %llu %s: origin %s not allowed", (unsigned long long)c->id, c->peer, r->origin);
		metrics__inc(METRIC_ORIGIN_REFUSED);
		static const char body[] = "ORIGIN_REFUSED\n"; /* parley_errname: stable for clients */
		if (http__build_response(&resp, 403, "text/plain", body, sizeof(body) - 1, 1) == PARLEY_OK)
			answer_and_close(c, &resp);
		else
			conn_close(c, 1);
		goto out;
	}
	/* until the service authenticates the connection, only what register/auth/ping need is buffered */
	size_t max_message = s->cfg.max_message_bytes;
	if (s->cfg.max_preauth_message_bytes != 0 && s->cfg.max_preauth_message_bytes < max_message)
		max_message = s->cfg.max_preauth_message_bytes;
	ws_config wcfg = {.max_message = max_message, .max_output = s->cfg.max_pending_output};
	ws_callbacks cb = {.ctx = c, .on_message = on_ws_message};
	rc = ws__session_new(&c->ws, WS_ROLE_SERVER, &wcfg, &cb);
	if (rc == PARLEY_OK)
		rc = http__ws_build_101(&resp, r->ws_key, NULL);
	if (rc == PARLEY_OK)
		rc = send_plain(c, resp.data, resp.len);
	if (rc != PARLEY_OK) {
		conn_close(c, 1);
		goto out;
	}
	c->state = CONN_WS;
	http__req_parser_free(c->http);
	c->http = NULL;
	c->opened = 1;
	metrics__add(METRIC_WS_CONNS_OPEN, 1);
	ws_deadline(c);
	log_debug("net", "conn %llu %s: websocket open", (unsigned long long)c->id, c->peer);
	if (s->h.on_open != NULL)
		s->h.on_open(s->h.ctx, c);
	rc = PARLEY_OK;
	if (rest_len > 0 && c->state == CONN_WS) {
		/* frames the client sent right behind its upgrade request */
		rc = PARLEY_E_STATE; /* tells the caller to feed rest to the session */
	}
out:
	dynbuf__free(&resp);
	return rc;
}

/* buf is scratch (the worker's read or TLS plaintext buffer): the session unmasks in place and hands
 * whole messages to the service without a copy. */
static void feed_ws(net_conn *c, uint8_t *buf, size_t len)
{
	c->in_dispatch = 1;
	net__conn_ref(c);
	int rc = ws__feed_inplace(c->ws, buf, len);
	c->in_dispatch = 0;
	if (rc == PARLEY_E_NOMEM || rc == PARLEY_E_INTERNAL) {
		log_warn("net", "conn %llu %s: %s, dropping", (unsigned long long)c->id, c->peer, parley_errname(rc));
		conn_close(c, 1);
	} else if (rc != PARLEY_OK && rc != PARLEY_E_UNSUPPORTED) {
		metrics__inc(METRIC_PROTOCOL_ERRORS);
		log_debug("net", "conn %llu %s: websocket error %s", (unsigned long long)c->id, c->peer,
			  parley_errname(rc));
	}
	ws_deadline(c);
	if (c->state != CONN_CLOSED) {
		if (pending_total(c) > c->w->srv->cfg.max_pending_output && !c->hard_closing)
			slow_consumer(c);
		else if (c->ws != NULL && ws__pending_bytes(c->ws) > 0)
			schedule_flush(c); /* answers join what store completions add this iteration */
		else
			net__conn_flush(c); /* a close the session completed (ws__is_done) */
	}
	net__conn_unref(c);
}

/* net_handler.on_http: a GET the handler answers later (net__http_answer). 1 if it took it. */
static int hand_over(net_conn *c, const http_request *r)
{
	const net_handler *h = &c->w->srv->h;
	if (c->admin || h->on_http == NULL || r->method != HTTP_GET ||
	    strncmp(r->path, NET_ASYNC_PREFIX, sizeof(NET_ASYNC_PREFIX) - 1) != 0)
		return 0;
	net__conn_ref(c);
	c->http_pending = 1;
	if (h->on_http(h->ctx, c, r->url))
		return 1;
	c->http_pending = 0;
	net__conn_unref(c);
	return 0;
}

static int header_value_ok(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v <= 0x20 || (unsigned char)*v > 0x7e)
			return 0;
	return 1;
}

void net__http_answer(net_conn *c, int status, const char *location, const char *html)
{
	size_t len = strlen(html);
	dynbuf resp;
	int rc;

	if (!c->http_pending)
		return;
	c->http_pending = 0;
	if (c->state == CONN_HTTP) {
		dynbuf__init(&resp, 64u << 10);
		if (location != NULL && !header_value_ok(location))
			status = 500, location = NULL; /* a header injection never leaves the server */
		rc = dynbuf__printf(&resp, "HTTP/1.1 %d %s\r\n", status, http__status_reason(status));
		if (rc == PARLEY_OK && location != NULL)
			rc = dynbuf__printf(&resp, "Location: %s\r\n", location);
		if (rc == PARLEY_OK)
			rc = dynbuf__printf(&resp,
					    "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
					    "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n"
					    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
					    len);
		if (rc == PARLEY_OK)
			rc = dynbuf__append(&resp, html, len);
		if (rc == PARLEY_OK)
			answer_and_close(c, &resp);
		else
			conn_close(c, 1);
		dynbuf__free(&resp);
	}
	net__conn_unref(c);
}

static void feed_http(net_conn *c, uint8_t *buf, size_t len)
{
	size_t used = 0;
	int complete = 0;
	int rc = http__req_parser_feed(c->http, buf, len, &used, &complete);
	if (rc != PARLEY_OK) {
		dynbuf resp;
		int status = http__status_for_error(rc);
		metrics__inc(METRIC_PROTOCOL_ERRORS);
		log_debug("net", "conn %llu %s: HTTP error %s -> %d", (unsigned long long)c->id, c->peer,
			  parley_errname(rc), status);
		dynbuf__init(&resp, 1024);
		if (http__build_response(&resp, status, NULL, NULL, 0, 1) == PARLEY_OK)
			answer_and_close(c, &resp);
		else
			conn_close(c, 1);
		dynbuf__free(&resp);
		return;
	}
	if (!complete)
		return;
	const http_request *r = http__req_parser_request(c->http);
	if (!c->admin && strcmp(r->path, c->w->srv->ws_path) == 0) {
		if (start_websocket(c, r, buf + used, len - used) == PARLEY_E_STATE)
			feed_ws(c, buf + used, len - used);
		else if (c->state == CONN_WS)
			net__conn_flush(c);
		return;
	}
	if (hand_over(c, r))
		return;
	dynbuf resp;
	dynbuf__init(&resp, 2u << 20);
	if (net__route_plain(c->w->srv, r, c->admin, &resp) == PARLEY_OK)
		answer_and_close(c, &resp);
	else
		conn_close(c, 1);
	dynbuf__free(&resp);
}

static void process_plain(net_conn *c, uint8_t *buf, size_t len)
{
	if (c->http_pending)
		return; /* one request per connection: the rest waits for nothing */
	if (c->state == CONN_HTTP)
		feed_http(c, buf, len);
	else if ((c->state == CONN_WS || c->state == CONN_CLOSING) && c->ws != NULL)
		feed_ws(c, buf, len);
	/* anything after a plain answer is ignored: we are closing */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	net_conn *c = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)c->w->readbuf, NET_READ_BUF);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	net_conn *c = stream->data;
	if (nread == 0)
		return;
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("net", "conn %llu read: %s", (unsigned long long)c->id, uv_strerror((int)nread));
		conn_close(c, 1);
		return;
	}
	if (c->state == CONN_CLOSED)
		return;
	metrics__add(METRIC_BYTES_IN, nread);
	c->last_rx_ms = now_ms(c);
	net__conn_ref(c);
	if (c->tls == NULL) {
		process_plain(c, (uint8_t *)buf->base, (size_t)nread);
		goto out;
	}
	/* The read buffer is reused as TLS output scratch, so copy the ciphertext into OpenSSL first. */
	if (tls__feed(c->tls, (const uint8_t *)buf->base, (size_t)nread) != PARLEY_OK) {
		conn_close(c, 1);
		goto out;
	}
	for (;;) {
		dynbuf *plain = &c->w->plain;
		dynbuf__reset(plain);
		int rc = tls__read(c->tls, plain);
		if (rc == PARLEY_E_TLS) {
			metrics__inc(METRIC_TLS_ERRORS);
			log_debug("net", "conn %llu %s: TLS error: %s", (unsigned long long)c->id, c->peer,
				  tls__last_error(c->tls));
			flush_tls(c); /* the alert */
			conn_close(c, 0);
			goto out;
		}
		if (plain->len > 0)
			process_plain(c, plain->data, plain->len);
		if (c->state == CONN_CLOSED)
			goto out;
		flush_tls(c);
		if (rc == PARLEY_E_CLOSED) {
			conn_close(c, 0);
			goto out;
		}
		if (plain->len < plain->max)
			break; /* OpenSSL had nothing more */
	}
out:
	net__conn_unref(c);
}

void net__conn_start(net_conn *c)
{
	c->last_rx_ms = now_ms(c);
	net__sched_deadline(c, NET_DL_HANDSHAKE);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	log_debug("net", "conn %llu %s accepted on worker %d%s", (unsigned long long)c->id, c->peer, c->w->idx,
		  c->admin ? " (admin)" : "");
}

void net__conn_shutdown(net_conn *c, int hard)
{
	if (c->state == CONN_CLOSED)
		return;
	/* a GET a service still owes its answer (a sign-in page): the service answers it (while stopping:
	 * a 503 page) and the answer closes it; the drain deadline (hard) cuts it otherwise */
	if (!hard && c->http_pending)
		return;
	if (hard || c->state != CONN_WS) {
		conn_close(c, 1);
		return;
	}
	net__conn_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
}
