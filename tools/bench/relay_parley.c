/* `parley-bench relay --peer parley`: the relay workload against parleyd over WebSocket.
 *
 * Each connection registers its own fresh account (handle "<tag>-<index>", device 1, Ed25519 over
 * wire__register_signed_bytes) and uploads keys (identity key, registration id, a signed prekey with
 * a real XEdDSA signature: the relay only delivers to devices that have keys). No Signal session is
 * set up: the relay never decrypts, so the content is opaque random bytes with the bench header
 * (relay.h) and the type is ENVELOPE_CIPHERTEXT.
 *
 * Senders send SendMessageRequest{recipient, timestamp, [OutgoingMessage{device 1, registration id,
 * content}]}; a status-0 Response means the message is durable (docs/protocol.md §10) and is the ack.
 * Receivers get Push{Envelope}; the server ids of one read are acked together (AckRequest, at most
 * ack_batch ids each), which is what a real client does.
 *
 * Threads: connection i belongs to loop thread i % threads; everything about it (including its
 * sender's window and its receiver's bitmaps) is touched only there. The calling thread runs
 * relay__drive and wakes the loops with uv_async.
 */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "crypto/crypto.h"
#include "codec/http.h"
#include "codec/ws.h"
#include "wire/wire.h"

#define SEND_ID_BASE 1000u /* request ids >= this are messages: id - base = seq */
#define DEVICE_NAME "bench"

enum pstate { P_CONNECTING = 0, P_HANDSHAKE, P_REGISTER, P_KEYS, P_READY, P_CLOSED };

struct pworker;

typedef struct pconn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	struct pworker *w;
	unsigned idx;
	enum pstate state;
	int inited, failed_counted;
	http_resp_parser *hp;
	ws_session *ws;
	char key[HTTP_WS_KEY_LEN + 1];
	char handle[WIRE_MAX_HANDLE + 1];
	char to[WIRE_MAX_HANDLE + 1];  /* sender: recipient handle */
	uint32_t to_regid;
	relay_sender *s;
	uint64_t *sent_t;              /* sender: send time by seq % cap */
	unsigned cap;
	relay_stats *st;               /* receiver */
	uint64_t *acks;                /* receiver: server ids to ack */
	unsigned nacks;
	uint64_t next_ack_id;
	/* Write queue: what the socket did not take at once, written with one uv_write at a time. */
	uv_write_t wreq;
	uint8_t *wbuf;
	int writing;
} pconn;

typedef struct pworker {
	struct pengine *e;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t tick;
	uv_thread_t tid;
	int started, stopped;
	pconn **conns;
	unsigned n;
	dynbuf enc;
	wire_limits limits;
	uint8_t *msg;
	relay_stats st;
	_Atomic unsigned ready, failed;
	char rbuf[64 * 1024];
} pworker;

typedef struct pengine {
	relay_run run;
	pworker *w;
	unsigned nw;
	pconn *c;
	_Atomic int phase; /* 0 connect, 1 send, 2 stop */
	uint64_t ts_base;  /* wall clock (ms) at the start: client timestamps are ts_base + seq */
} pengine;

static void pconn_end(pconn *c, const char *why, const char *detail);
static void flush(pconn *c);

static uint32_t regid_of(unsigned idx)
{
	return 1 + idx % WIRE_MAX_REGISTRATION_ID;
}

static void on_close(uv_handle_t *h)
{
	pconn *c = h->data;

	if (c->hp)
		http__resp_parser_free(c->hp);
	c->hp = NULL;
	if (c->ws)
		ws__session_free(c->ws);
	c->ws = NULL;
}

static void pconn_end(pconn *c, const char *why, const char *detail)
{
	pworker *w = c->w;

	if (c->state == P_CLOSED)
		return;
	if (c->state != P_READY) {
		atomic_fetch_add(&w->failed, 1);
	} else if (atomic_load(&w->e->phase) != 2) {
		/* A ready connection that ends before the stop breaks the run: its messages are lost. */
		atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
	}
	if (why && atomic_load(&w->e->phase) != 2)
		relay__error(&w->e->run, why, detail);
	c->state = P_CLOSED;
	if (c->inited)
		uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status)
{
	pconn *c = req->data;

	parley__free(c->wbuf);
	c->wbuf = NULL;
	c->writing = 0;
	if (status < 0) {
		if (status != UV_ECANCELED)
			pconn_end(c, "write", uv_strerror(status));
		return;
	}
	flush(c);
}

static int send_raw(pconn *c, const uint8_t *p, size_t len)
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
	if (!c->wbuf)
		return UV_ENOMEM;
	memcpy(c->wbuf, p + n, len - (size_t)n);
	b = uv_buf_init((char *)c->wbuf, (unsigned)(len - (size_t)n));
	c->wreq.data = c;
	c->writing = 1;
	n = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (n < 0) {
		c->writing = 0;
		parley__free(c->wbuf);
		c->wbuf = NULL;
	}
	return n;
}

/* Hands the session's pending output to the socket; the session keeps what is not written yet. */
static void flush(pconn *c)
{
	const uint8_t *p;
	size_t len;
	int rc;

	while (c->ws && !c->writing && c->state != P_CLOSED) {
		p = ws__pending_output(c->ws, &len);
		if (len == 0)
			return;
		rc = send_raw(c, p, len);
		if (rc < 0) {
			pconn_end(c, "write", uv_strerror(rc));
			return;
		}
		ws__consume_output(c->ws, len);
	}
}

static int send_request(pconn *c, Parley__Wire__Request *req)
{
	pworker *w = c->w;
	int rc;

	dynbuf__reset(&w->enc);
	rc = wire__encode_request(req, &w->enc);
	if (rc == PARLEY_OK)
		rc = ws__send_binary(c->ws, w->enc.data, w->enc.len);
	return rc;
}

/* ---- set-up: register, upload keys ---- */

static void do_register(pconn *c, const uint8_t *nonce)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
	dynbuf m;
	int rc;

	crypto_sign_keypair(pk, sk);
	dynbuf__init(&m, 4096);
	rc = wire__register_signed_bytes(nonce, c->handle, pk, DEVICE_NAME, &m);
	if (rc == PARLEY_OK)
		crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	crypto__wipe(sk, sizeof(sk));
	if (rc == PARLEY_OK) {
		req.id = 1;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
		req.register_ = &r;
		r.handle = c->handle;
		r.device_key.data = pk;
		r.device_key.len = sizeof(pk);
		r.device_name = DEVICE_NAME;
		r.signature.data = sig;
		r.signature.len = sizeof(sig);
		rc = send_request(c, &req);
	}
	if (rc != PARLEY_OK) {
		pconn_end(c, "register", parley_strerror(rc));
		return;
	}
	c->state = P_REGISTER;
}

static void do_upload_keys(pconn *c)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__UploadKeysRequest u = PARLEY__WIRE__UPLOAD_KEYS_REQUEST__INIT;
	Parley__Wire__SignedPrekey spk = PARLEY__WIRE__SIGNED_PREKEY__INIT;
	crypto_keypair ik, sk;
	uint8_t ik33[CRYPTO_SIGNAL_PUBKEY_LEN], spk33[CRYPTO_SIGNAL_PUBKEY_LEN], sig[CRYPTO_SIG_LEN];
	int rc;

	rc = crypto__keypair_generate(&ik);
	if (rc == PARLEY_OK)
		rc = crypto__keypair_generate(&sk);
	if (rc == PARLEY_OK) {
		crypto__pubkey_serialize(ik33, ik.pub);
		crypto__pubkey_serialize(spk33, sk.pub);
		rc = crypto__xeddsa_sign(sig, ik.priv, spk33, sizeof(spk33));
	}
	crypto__keypair_wipe(&ik);
	crypto__keypair_wipe(&sk);
	if (rc == PARLEY_OK) {
		req.id = 2;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS;
		req.upload_keys = &u;
		u.identity_key.data = ik33;
		u.identity_key.len = sizeof(ik33);
		u.registration_id = regid_of(c->idx);
		u.signed_prekey = &spk;
		spk.id = 1;
		spk.public_key.data = spk33;
		spk.public_key.len = sizeof(spk33);
		spk.signature.data = sig;
		spk.signature.len = sizeof(sig);
		rc = send_request(c, &req);
	}
	if (rc != PARLEY_OK) {
		pconn_end(c, "upload keys", parley_strerror(rc));
		return;
	}
	c->state = P_KEYS;
}

/* ---- messages ---- */

static void send_one(pconn *c)
{
	pworker *w = c->w;
	relay_sender *s = c->s;
	const relay_cfg *cfg = w->e->run.cfg;
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT;
	Parley__Wire__OutgoingMessage *oms[1] = {&om};
	uint64_t t;
	int rc;

	t = relay__fill(w->msg, cfg->size, s->idx, s->next_seq);
	om.device_id = 1;
	om.registration_id = c->to_regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = w->msg;
	om.content.len = cfg->size;
	sm.recipient = c->to;
	/* The client timestamp doubles as the message id: unique per sender, near the wall clock. */
	sm.timestamp = w->e->ts_base + s->next_seq;
	sm.n_messages = 1;
	sm.messages = oms;
	req.id = SEND_ID_BASE + s->next_seq;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	rc = send_request(c, &req);
	c->sent_t[s->next_seq % c->cap] = t;
	s->next_seq++;
	atomic_fetch_add_explicit(&s->n_sent, 1, memory_order_relaxed);
	if (rc != PARLEY_OK) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(&w->e->run, "send", parley_strerror(rc));
		return;
	}
	s->in_flight++;
}

static void fill(pconn *c, uint64_t now)
{
	relay_sender *s = c->s;
	const relay_cfg *cfg = c->w->e->run.cfg;
	uint64_t due;

	if (!s || c->state != P_READY)
		return;
	due = relay__due(&c->w->e->run, s, now);
	if (cfg->rate <= 0) {
		while (s->in_flight < cfg->window && s->next_seq < due)
			send_one(c);
	} else {
		while (s->next_seq + s->skipped < due) {
			if (s->in_flight >= c->cap) {
				s->skipped += due - (s->next_seq + s->skipped);
				break;
			}
			send_one(c);
		}
	}
	flush(c);
}

static void flush_acks(pconn *c)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AckRequest a = PARLEY__WIRE__ACK_REQUEST__INIT;
	int rc;

	if (c->nacks == 0 || c->state != P_READY)
		return;
	a.n_server_ids = c->nacks;
	a.server_ids = c->acks;
	/* Ack request ids count down from the top so they never meet the message ids. */
	req.id = UINT64_MAX - c->next_ack_id++;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
	req.ack = &a;
	rc = send_request(c, &req);
	c->nacks = 0;
	if (rc != PARLEY_OK) {
		atomic_fetch_add_explicit(&c->w->st.errors, 1, memory_order_relaxed);
		relay__error(&c->w->e->run, "ack", parley_strerror(rc));
	}
}

static void on_envelope(pconn *c, const Parley__Wire__Envelope *env, uint64_t now)
{
	pworker *w = c->w;
	unsigned sender;
	uint64_t seq, t;

	if (!c->st || env->content.len != w->e->run.cfg->size ||
	    relay__parse(env->content.data, env->content.len, &sender, &seq, &t) != 0) {
		atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
		relay__error(&w->e->run, "unexpected envelope", NULL);
	} else {
		relay__delivered(&w->e->run, c->st, sender, seq, t, now);
	}
	c->acks[c->nacks++] = env->server_id;
	if (c->nacks >= w->e->run.cfg->ack_batch)
		flush_acks(c);
}

static void on_response(pconn *c, const Parley__Wire__Response *r, uint64_t now)
{
	pworker *w = c->w;
	relay_sender *s = c->s;
	uint64_t seq;

	if (r->id == 1 && c->state == P_REGISTER) {
		if (r->status != 0) {
			pconn_end(c, "register refused", r->message);
			return;
		}
		do_upload_keys(c);
		return;
	}
	if (r->id == 2 && c->state == P_KEYS) {
		if (r->status != 0) {
			pconn_end(c, "key upload refused", r->message);
			return;
		}
		c->state = P_READY;
		atomic_fetch_add(&w->ready, 1);
		return;
	}
	if (r->id >= UINT64_MAX - c->next_ack_id) {
		if (r->status != 0) {
			atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
			relay__error(&w->e->run, "ack refused", r->message);
		}
		return;
	}
	if (!s || r->id < SEND_ID_BASE || r->id - SEND_ID_BASE >= s->next_seq ||
	    s->next_seq - (r->id - SEND_ID_BASE) > c->cap) {
		atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
		relay__error(&w->e->run, "response to an unknown request", NULL);
		return;
	}
	seq = r->id - SEND_ID_BASE;
	s->in_flight--;
	if (r->status != 0) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(&w->e->run, "message refused", r->message ? r->message : parley_strerror((int)r->status));
	} else {
		relay__acked(&w->e->run, s, seq, c->sent_t[seq % c->cap], now);
	}
	if (w->e->run.cfg->rate <= 0)
		fill(c, now);
}

static void on_message(void *ctx, const uint8_t *buf, size_t len)
{
	pconn *c = ctx;
	pworker *w = c->w;
	uint64_t now = uv_hrtime();
	wire_frame f;
	int rc;

	if (c->state == P_CLOSED)
		return;
	rc = wire__decode_frame(buf, len, &w->limits, &f);
	if (rc != PARLEY_OK) {
		wire__frame_free(&f);
		atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
		relay__error(&w->e->run, "undecodable frame", parley_strerror(rc));
		return;
	}
	if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH) {
		const Parley__Wire__Push *p = f.frame->push;
		if (p->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE && c->state == P_HANDSHAKE)
			do_register(c, p->challenge->nonce.data);
		else if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE)
			on_envelope(c, p->envelope, now);
		/* Other pushes (a later challenge, queue empty, presence) are not part of the measure. */
	} else if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
		on_response(c, f.frame->response, now);
	}
	wire__frame_free(&f);
}

/* ---- connection plumbing ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	pconn *c = h->data;

	(void)suggested;
	buf->base = c->w->rbuf;
	buf->len = sizeof(c->w->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	pconn *c = st->data;
	const uint8_t *p = (const uint8_t *)buf->base;
	size_t used = 0;
	int rc, complete = 0;
	ws_callbacks cb = {.ctx = c, .on_message = on_message};

	if (nread == 0)
		return;
	if (nread < 0) {
		pconn_end(c, "connection closed by the server", uv_strerror((int)nread));
		return;
	}
	if (c->state == P_CONNECTING) {
		rc = http__resp_parser_feed(c->hp, p, (size_t)nread, &used, &complete);
		if (rc != PARLEY_OK) {
			pconn_end(c, "upgrade refused", NULL);
			return;
		}
		if (!complete)
			return;
		http__resp_parser_free(c->hp);
		c->hp = NULL;
		rc = ws__session_new(&c->ws, WS_ROLE_CLIENT, NULL, &cb);
		if (rc != PARLEY_OK) {
			pconn_end(c, "session", parley_strerror(rc));
			return;
		}
		c->state = P_HANDSHAKE; /* waiting for the challenge */
		p += used;
		nread -= (ssize_t)used;
		if (nread == 0)
			return;
	}
	rc = ws__feed(c->ws, p, (size_t)nread);
	/* Everything this read delivered is acked in one request (Signal clients batch the same way). */
	if (c->state == P_READY)
		flush_acks(c);
	flush(c);
	if (c->state == P_CLOSED)
		return;
	if (rc != PARLEY_OK)
		pconn_end(c, "websocket", parley_strerror(rc));
	else if (ws__close_received(c->ws))
		pconn_end(c, "server closed the WebSocket", NULL);
}

static void on_connect(uv_connect_t *req, int status)
{
	pconn *c = req->handle->data;
	const relay_cfg *cfg = c->w->e->run.cfg;
	dynbuf d;
	int rc;

	if (status == UV_ECANCELED || c->state != P_CONNECTING)
		return;
	if (status < 0) {
		pconn_end(c, "connect", uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	dynbuf__init(&d, 4096);
	rc = http__ws_build_request(&d, cfg->target.host, cfg->target.path, NULL, NULL, c->key);
	if (rc == PARLEY_OK)
		rc = http__resp_parser_new(&c->hp, NULL, c->key);
	if (rc != PARLEY_OK) {
		dynbuf__free(&d);
		pconn_end(c, "handshake", parley_strerror(rc));
		return;
	}
	rc = send_raw(c, d.data, d.len);
	dynbuf__free(&d);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc != 0)
		pconn_end(c, "handshake", uv_strerror(rc));
}

static void on_tick(uv_timer_t *t)
{
	pworker *w = t->data;
	uint64_t now = uv_hrtime();
	unsigned i;

	for (i = 0; i < w->n; i++)
		fill(w->conns[i], now);
}

static void on_wake(uv_async_t *a)
{
	pworker *w = a->data;
	int ph = atomic_load(&w->e->phase);
	unsigned i;

	if (ph == 1 && !w->started) {
		w->started = 1;
		if (w->e->run.cfg->rate > 0)
			uv_timer_start(&w->tick, on_tick, 1, 1);
		else
			on_tick(&w->tick);
	} else if (ph == 2 && !w->stopped) {
		w->stopped = 1;
		uv_timer_stop(&w->tick);
		for (i = 0; i < w->n; i++) {
			pconn *c = w->conns[i];
			if (c->ws && c->state != P_CLOSED) {
				ws__close(c->ws, WS_CLOSE_GOING_AWAY, "benchmark over");
				flush(c);
			}
			if (c->state != P_CLOSED) {
				c->state = P_CLOSED;
				uv_close((uv_handle_t *)&c->tcp, on_close);
			}
		}
		uv_close((uv_handle_t *)&w->tick, NULL);
		uv_close((uv_handle_t *)&w->wake, NULL);
	}
}

static void worker_main(void *arg)
{
	pworker *w = arg;
	unsigned i;
	int rc;

	for (i = 0; i < w->n; i++) {
		pconn *c = w->conns[i];
		rc = uv_tcp_init(&w->loop, &c->tcp);
		if (rc == 0) {
			c->inited = 1;
			c->tcp.data = c;
			rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&w->e->run.cfg->target.addr,
					    on_connect);
		}
		if (rc != 0)
			pconn_end(c, "connect", uv_strerror(rc));
	}
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void kick(void *ctx)
{
	pengine *e = ctx;
	unsigned i;

	atomic_store(&e->phase, 1);
	for (i = 0; i < e->nw; i++)
		uv_async_send(&e->w[i].wake);
}

int relay__engine_parley(const relay_cfg *cfg, relay_result *res)
{
	pengine e;
	relay_stats **stats = NULL;
	unsigned i, n = cfg->conns, nthreads = 0, ready, failed;
	uint64_t t_open;
	int rc;
	relay_driver d;
	struct timespec now;

	memset(&e, 0, sizeof(e));
	clock_gettime(CLOCK_REALTIME, &now);
	e.ts_base = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	rc = relay__run_init(&e.run, cfg);
	if (rc != PARLEY_OK)
		return rc;
	e.nw = cfg->threads < n ? cfg->threads : n;
	e.w = parley__calloc(e.nw, sizeof(*e.w));
	e.c = parley__calloc(n, sizeof(*e.c));
	stats = parley__calloc(e.nw, sizeof(*stats));
	if (!e.w || !e.c || !stats) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	for (i = 0; i < e.nw; i++) {
		pworker *w = &e.w[i];
		w->e = &e;
		w->conns = parley__calloc(n / e.nw + 1, sizeof(*w->conns));
		w->msg = parley__malloc(cfg->size);
		dynbuf__init(&w->enc, cfg->size + 1024);
		wire__limits_default(&w->limits);
		hist__init(&w->st.e2e);
		stats[i] = &w->st;
		if (!w->conns || !w->msg) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		pconn *c = &e.c[i];
		pworker *w = &e.w[i % e.nw];
		c->w = w;
		c->idx = i;
		w->conns[w->n++] = c;
		snprintf(c->handle, sizeof(c->handle), "%s-%u", cfg->run_tag, i);
		if (relay__is_receiver(cfg, i)) {
			c->st = &w->st;
			c->acks = parley__calloc(cfg->ack_batch, sizeof(uint64_t));
			if (!c->acks) {
				rc = PARLEY_E_NOMEM;
				goto out;
			}
		}
		if (relay__is_sender(cfg, i)) {
			unsigned to = relay__receiver_of(cfg, i);
			c->s = &e.run.senders[i];
			snprintf(c->to, sizeof(c->to), "%s-%u", cfg->run_tag, to);
			c->to_regid = regid_of(to);
			c->cap = cfg->rate > 0 ? cfg->open_backlog : cfg->window;
			c->sent_t = parley__calloc(c->cap, sizeof(uint64_t));
			if (!c->sent_t) {
				rc = PARLEY_E_NOMEM;
				goto out;
			}
		}
	}
	t_open = uv_hrtime();
	for (i = 0; i < e.nw; i++) {
		pworker *w = &e.w[i];
		if (uv_loop_init(&w->loop) != 0) {
			rc = PARLEY_E_IO;
			break;
		}
		uv_async_init(&w->loop, &w->wake, on_wake);
		uv_timer_init(&w->loop, &w->tick);
		w->wake.data = w;
		w->tick.data = w;
		if (uv_thread_create(&w->tid, worker_main, w) != 0) {
			uv_close((uv_handle_t *)&w->wake, NULL);
			uv_close((uv_handle_t *)&w->tick, NULL);
			uv_run(&w->loop, UV_RUN_DEFAULT);
			uv_loop_close(&w->loop);
			rc = PARLEY_E_IO;
			break;
		}
		nthreads++;
	}
	if (rc == PARLEY_OK) {
		for (;;) {
			ready = failed = 0;
			for (i = 0; i < nthreads; i++) {
				ready += atomic_load(&e.w[i].ready);
				failed += atomic_load(&e.w[i].failed);
			}
			if (ready + failed >= n ||
			    (double)(uv_hrtime() - t_open) / 1e9 > cfg->connect_timeout_s)
				break;
			if (cfg->progress)
				fprintf(stderr, "\r\033[Kregistering: %u/%u ready, %u failed", ready, n, failed);
			uv_sleep(20);
		}
		if (cfg->progress)
			fprintf(stderr, "\r\033[K");
		res->connected = ready;
		res->connect_failed = n - ready;
		res->connect_s = (double)(uv_hrtime() - t_open) / 1e9;
		if (ready == n) {
			d.kick = kick;
			d.tick = NULL;
			d.ctx = &e;
			d.stats = stats;
			d.nstats = nthreads;
			relay__drive(&e.run, &d, res);
		}
	}
	atomic_store(&e.phase, 2);
	for (i = 0; i < nthreads; i++)
		uv_async_send(&e.w[i].wake);
	for (i = 0; i < nthreads; i++) {
		uv_thread_join(&e.w[i].tid);
		uv_loop_close(&e.w[i].loop);
	}
	if (rc == PARLEY_OK)
		relay__collect(&e.run, stats, nthreads, res);
out:
	if (e.c)
		for (i = 0; i < n; i++) {
			parley__free(e.c[i].acks);
			parley__free(e.c[i].sent_t);
		}
	if (e.w)
		for (i = 0; i < e.nw; i++) {
			parley__free(e.w[i].conns);
			parley__free(e.w[i].msg);
			dynbuf__free(&e.w[i].enc);
		}
	parley__free(e.c);
	parley__free(e.w);
	parley__free(stats);
	relay__run_free(&e.run);
	return rc;
}
