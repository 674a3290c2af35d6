/* The web chat channel: the page and its WebSocket (wslay over http.c's connection take-over).
 *
 * Protocol (JSON text frames):
 *   client -> gateway  {"type":"hello","session":S}      S: a session id it was given before, or ""
 *                      {"type":"message","id":I,"text":T} I: unique per session (the idempotency key)
 *   gateway -> client  {"type":"session","session":S}    the session id to keep (channel_user)
 *                      {"type":"ack","id":I}             T is committed: it will reach the staff
 *                      {"type":"message","text":T}       a staff answer
 *                      {"type":"auth",...}               an auth prompt (byoc__event_json)
 *                      {"type":"error","error":E}
 * A session id is 16 random bytes in hex: it is the customer's only credential, so the gateway makes it
 * and accepts back only that shape.
 * Limits (guard.c, config webchat_*): the upgrade is refused 403 for an Origin not allowed, 429 for a
 * client address with webchat_sessions_per_ip sessions open or webchat_sessions_per_min new ones in the
 * last minute (503 when the table of recent clients is full); a session is closed 1008 (policy
 * violation) past webchat_msgs_per_s messages a second (bucket of webchat_msg_burst), 1009 (wslay) for
 * a message over webchat_max_msg bytes. Staff answers for a session wait in the outbox until it is
 * connected, and are then delivered in order. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "app.h"
#include "page.h"

#define SESSION_HEX 32
#define FLUSH_MS 250

typedef struct wc_sess wc_sess;
struct gw_webchat {
	gw_app *app;
	gw_iplimits *ips;
	wc_sess *list;
	uv_timer_t timer;
};

struct wc_sess {
	gw_webchat *w;
	gw_conn *conn;
	wslay_event_context_ptr ctx;
	wc_sess *prev, *next;
	char session[SESSION_HEX + 1]; /* "" until hello */
	const uint8_t *in;
	size_t in_len;
	int dead;
	char ip[GW_IP_MAX + 1]; /* counted in w->ips until the session closes */
	gw_bucket msgs;
	int want_deliver; /* set inside wslay's callbacks, acted on after them (wslay is not re-entrant) */
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	wc_sess *s = user;
	(void)flags;
	if (s->in_len == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	size_t n = len < s->in_len ? len : s->in_len;
	memcpy(buf, s->in, n);
	s->in += n;
	s->in_len -= n;
	return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	wc_sess *s = user;
	(void)flags;
	if (s->dead || http__conn_write(s->conn, data, len) != PARLEY_OK) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void send_json(wc_sess *s, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return;
	struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)text, .msg_length = strlen(text)};
	wslay_event_queue_msg(s->ctx, &m); /* copies */
	free(text);
}

static int session_valid(const char *s)
{
	if (!s || strlen(s) != SESSION_HEX)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static void queue_outbox(wc_sess *s);

static void on_hello(wc_sess *s, json_t *m)
{
	const char *want = json_string_value(json_object_get(m, "session"));
	if (session_valid(want)) {
		memcpy(s->session, want, SESSION_HEX + 1);
	} else {
		uint8_t r[SESSION_HEX / 2];
		randombytes_buf(r, sizeof(r));
		sodium_bin2hex(s->session, sizeof(s->session), r, sizeof(r));
	}
	send_json(s, json_pack("{s:s, s:s}", "type", "session", "session", s->session));
	s->want_deliver = 1;
}

static void on_text(wc_sess *s, json_t *m)
{
	const char *id = json_string_value(json_object_get(m, "id"));
	json_t *jt = json_object_get(m, "text");
	const char *text = json_string_value(jt);
	gw_inbound in;
	memset(&in, 0, sizeof(in));
	if (!s->session[0] || !id || !inbound__user_valid(id) || strlen(id) > 64 || !text ||
	    json_string_length(jt) != strlen(text) || !*text || strlen(text) > PARLEY_MESSAGE_MAX) {
		send_json(s, json_pack("{s:s, s:s}", "type", "error", "error", "malformed message"));
		return;
	}
	snprintf(in.id, sizeof(in.id), "%s:%s", s->session, id);
	memcpy(in.user, s->session, SESSION_HEX + 1);
	in.text = (char *)text;
	in.text_len = strlen(text);
	int rc = store__inbound_add(s->w->app->store, PARLEY_CHANNEL_WEBCHAT, &in, s->w->app->cfg->queue_max);
	if (rc == PARLEY_OK || rc == PARLEY_E_EXISTS)
		send_json(s, json_pack("{s:s, s:s}", "type", "ack", "id", id));
	else
		send_json(s, json_pack("{s:s, s:s, s:s}", "type", "error", "id", id, "error", parley_strerror(rc)));
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	wc_sess *s = user;
	const gw_config *cfg = s->w->app->cfg;
	if (arg->opcode == WSLAY_CONNECTION_CLOSE)
		return;
	/* every message counts, pings and binary too: each costs a wake-up and a parse */
	if (!bucket__take(&s->msgs, cfg->webchat_msgs_per_s, cfg->webchat_msg_burst, store__now_ms())) {
		static const char why[] = "rate limited";
		if (!wslay_event_get_close_sent(ctx)) {
			log__line("webchat: %s: session closed (1008): over webchat_msgs_per_s", s->ip);
			wslay_event_queue_close(ctx, WSLAY_CODE_POLICY_VIOLATION, (const uint8_t *)why, sizeof(why) - 1);
		}
		return;
	}
	if (arg->opcode != WSLAY_TEXT_FRAME)
		return; /* pings are answered by wslay; binary is not part of the protocol */
	json_error_t e;
	json_t *m = json_loadb((const char *)arg->msg, arg->msg_length, JSON_REJECT_DUPLICATES, &e);
	const char *type = json_string_value(json_object_get(m, "type"));
	if (type && strcmp(type, "hello") == 0)
		on_hello(s, m);
	else if (type && strcmp(type, "message") == 0)
		on_text(s, m);
	json_decref(m);
}

static const struct wslay_event_callbacks callbacks = {
	.recv_callback = on_recv,
	.send_callback = on_send,
	.on_msg_recv_callback = on_msg,
};

static void pump(wc_sess *s)
{
	if (s->dead)
		return;
	int rc = wslay_event_recv(s->ctx);
	if (rc == 0 && s->want_deliver) {
		s->want_deliver = 0;
		queue_outbox(s);
	}
	if (rc != 0 || wslay_event_send(s->ctx) != 0 ||
	    (!wslay_event_want_read(s->ctx) && !wslay_event_want_write(s->ctx))) {
		s->dead = 1;
		http__conn_close(s->conn); /* on_close frees s */
	}
}

static void on_data(void *ctx, const uint8_t *buf, size_t len)
{
	wc_sess *s = ctx;
	s->in = buf;
	s->in_len = len;
	pump(s);
}

static void on_close(void *ctx)
{
	wc_sess *s = ctx;
	gw_webchat *w = s->w;
	if (s->prev)
		s->prev->next = s->next;
	else
		w->list = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (w->ips)
		iplimits__close(w->ips, s->ip);
	wslay_event_context_free(s->ctx);
	free(s);
}

/* The due outbox entries of this session, in order; each is marked sent once queued on the socket. */
static void queue_outbox(wc_sess *s)
{
	gw_store *st = s->w->app->store;
	gw_out o;
	if (!s->session[0] || s->dead)
		return;
	while (store__outbox_due_user(st, store__now_ms(), s->session, &o) == PARLEY_OK) {
		gw_buf b;
		gwbuf__init(&b, PARLEY_MESSAGE_MAX * 2 + 4096);
		int rc = byoc__event_json(&o, &b);
		if (rc == PARLEY_OK) {
			struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)b.data,
						    .msg_length = b.len};
			rc = wslay_event_queue_msg(s->ctx, &m) == 0 ? PARLEY_OK : PARLEY_E_NOMEM;
		}
		store__outbox_result(st, o.id, rc == PARLEY_OK ? GW_SENT : GW_DEAD, 0,
				     rc == PARLEY_OK ? "webchat" : parley_strerror(rc));
		gwbuf__free(&b);
		out__free(&o);
		if (rc != PARLEY_OK)
			break;
	}
}

static void deliver(wc_sess *s)
{
	queue_outbox(s);
	s->in_len = 0;
	pump(s);
}

void webchat__flush(gw_webchat *w)
{
	wc_sess *s = w->list;
	while (s) {
		wc_sess *next = s->next; /* deliver may close (and free) s */
		deliver(s);
		s = next;
	}
}

static void on_timer(uv_timer_t *t)
{
	webchat__flush(t->data);
}

/* The upgrade's refusals (answered and logged here: 1 when refused). On 0, the session is counted in
 * w->ips under ip: on_close uncounts it. */
static int refused(gw_webchat *w, gw_conn *c, const gw_http_req *r, char ip[GW_IP_MAX + 1])
{
	const gw_config *cfg = w->app->cfg;
	const char *why = NULL;
	int status = 0;
	char peer[GW_IP_MAX + 1];
	if (http__conn_peer(c, peer, sizeof(peer)) != PARLEY_OK ||
	    client__key(peer, r->h[GW_H_FORWARDED_FOR], cfg->webchat_trusted_proxies, ip) != PARLEY_OK) {
		static const char bad[] = "no client address (X-Forwarded-For of a trusted proxy malformed)";
		http__respond(c, 400, "text/plain", bad, sizeof(bad) - 1);
		return 1;
	}
	/* a page of another site must not open a chat in its visitor's browser (cross-site WebSocket
	 * hijacking: the browser would send that page's visitor's cookies and address, and read the answers) */
	if (!origin__allowed(r->h[GW_H_ORIGIN], cfg->webchat_origins, cfg->public_url, r->h[GW_H_HOST])) {
		status = 403;
		why = "origin not allowed (webchat_origins)";
	} else {
		int rc = iplimits__open(w->ips, ip, cfg->webchat_sessions_per_min, cfg->webchat_sessions_per_ip,
					store__now_ms());
		status = rc == PARLEY_OK ? 0 : rc == PARLEY_E_BUSY ? 503 : 429;
		why = rc == PARLEY_E_TOO_MANY_CONNECTIONS ? "too many open chat sessions from this address "
							     "(webchat_sessions_per_ip)"
		      : rc == PARLEY_E_RATE_LIMITED ? "too many new chat sessions from this address: wait a minute "
						      "(webchat_sessions_per_min)"
						    : "too many recent chat clients: try again later";
	}
	if (!status)
		return 0;
	log__line("webchat: %s: refused %d: %s", ip, status, why);
	http__respond(c, status, "text/plain", why, strlen(why));
	return 1;
}

static void upgrade(gw_webchat *w, gw_conn *c, const gw_http_req *r)
{
	char ip[GW_IP_MAX + 1];
	const char *key = r->h[GW_H_WS_KEY], *ver = r->h[GW_H_WS_VERSION], *up = r->h[GW_H_UPGRADE];
	unsigned char sha[SHA_DIGEST_LENGTH], b64[64];
	char resp[256];
	if (!up || strcasecmp(up, "websocket") != 0 || !key || strlen(key) != 24 || !ver || strcmp(ver, "13") != 0) {
		http__respond(c, 400, NULL, NULL, 0);
		return;
	}
	if (refused(w, c, r, ip))
		return;
	/* Sec-WebSocket-Accept (RFC 6455 §4.2.2) */
	char cat[24 + 36 + 1];
	snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
	SHA1((const unsigned char *)cat, strlen(cat), sha);
	EVP_EncodeBlock(b64, sha, SHA_DIGEST_LENGTH);
	wc_sess *s = calloc(1, sizeof(*s));
	if (!s || wslay_event_context_server_init(&s->ctx, &callbacks, s) != 0) {
		free(s);
		iplimits__close(w->ips, ip);
		http__respond(c, 503, NULL, NULL, 0);
		return;
	}
	/* wslay closes the session with 1009 (message too big) beyond this */
	wslay_event_config_set_max_recv_msg_length(s->ctx, w->app->cfg->webchat_max_msg);
	memcpy(s->ip, ip, sizeof(s->ip));
	s->w = w;
	s->conn = c;
	s->next = w->list;
	if (w->list)
		w->list->prev = s;
	w->list = s;
	gw_conn_owner owner = {.ctx = s, .on_data = on_data, .on_close = on_close};
	http__conn_upgrade(c, &owner);
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n\r\n",
			 (const char *)b64);
	http__conn_write(c, resp, (size_t)n);
}

void webchat__handle(gw_webchat *w, gw_conn *c, const gw_http_req *r)
{
	if (strcmp(r->path, "/webchat/") == 0)
		http__respond(c, 200, "text/html; charset=utf-8", webchat_page, sizeof(webchat_page) - 1);
	else if (strcmp(r->path, "/webchat/ws") == 0)
		upgrade(w, c, r);
	else
		http__respond(c, 404, NULL, NULL, 0);
}

int webchat__start(gw_app *app, gw_webchat **out)
{
	gw_webchat *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!w)
		return PARLEY_E_NOMEM;
	w->app = app;
	if (iplimits__new(GW_IPLIMITS_CAP, &w->ips) != PARLEY_OK) {
		free(w);
		return PARLEY_E_NOMEM;
	}
	uv_timer_init(app->loop, &w->timer);
	w->timer.data = w;
	/* a slow poll as well as the bridge's wake-up: entries retried after a failure become due by time */
	uv_timer_start(&w->timer, on_timer, FLUSH_MS, FLUSH_MS);
	*out = w;
	return PARLEY_OK;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void webchat__stop(gw_webchat *w)
{
	if (!w)
		return;
	uv_timer_stop(&w->timer);
	iplimits__free(w->ips); /* http__stop closed every session before */
	w->ips = NULL;
	uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}
