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
 * ack_batch ids each, sent from the transport's on_read_done), which is what a real client does.
 *
 * Phases (relay.h): in `send` the receivers register, upload keys and go offline at once (their
 * device keys are kept for the state file), so every message stays in the server's store; in
 * `verify` only the receivers connect, log in as those devices (AuthRequest) and read their queues
 * until the server's QueueEmpty, checking each body's MAC, sender and sequence number.
 *
 * Connections are lib/transport connections (the client pump libparley uses), with the target
 * address handed over and one read buffer per loop thread. This file is one connection's protocol,
 * run on its loop thread; the threads and the calling thread are relay_parley_run.c's.
 */
#include "relay_parley.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "crypto/crypto.h"

#define REQ_REGISTER 1u
#define REQ_KEYS 2u
#define REQ_AUTH 3u
#define SEND_ID_BASE 1000u /* request ids >= this are messages: id - base = seq */
#define DEVICE_NAME "bench"

static uint32_t regid_of(unsigned idx)
{
	return 1 + idx % WIRE_MAX_REGISTRATION_ID;
}

static int stopping(const pworker *w)
{
	return atomic_load(&w->e->phase) == E_STOP;
}

static void count_failed(pconn *c)
{
	if (!c->counted) {
		c->counted = 1;
		atomic_fetch_add(&c->w->n_conns.failed, 1);
	}
}

/* Gives up on a connection that is not ready (yet): counted as failed, the reason kept. */
static void pconn_fail(pconn *c, const char *why, const char *detail)
{
	count_failed(c);
	if (!stopping(c->w))
		relay__error(&c->w->e->run, why, detail);
	c->state = P_CLOSED;
	if (c->t != NULL)
		transport__close(c->t);
}

static int send_request(pconn *c, Parley__Wire__Request *req)
{
	pworker *w = c->w;
	int rc;

	dynbuf__reset(&w->enc);
	rc = wire__encode_request(req, &w->enc);
	if (rc == PARLEY_OK)
		rc = transport__send(c->t, w->enc.data, w->enc.len);
	return rc;
}

static void set_ready(pconn *c)
{
	c->counted = 1;
	atomic_fetch_add(&c->w->n_conns.ready, 1);
	if (c->w->e->run.cfg->phase == RELAY_PHASE_SEND && !relay__is_sender(c->w->e->run.cfg, c->idx)) {
		/* offline from now on: what is sent to it stays in the store until --phase verify */
		c->state = P_PARKED;
		transport__close(c->t);
		return;
	}
	c->state = P_READY;
}

/* ---- set-up: register and upload keys, or log in ---- */

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
	if (c->device_sk != NULL)
		memcpy(c->device_sk, sk, sizeof(sk));
	crypto__wipe(sk, sizeof(sk));
	if (rc == PARLEY_OK) {
		req.id = REQ_REGISTER;
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
		pconn_fail(c, "register", parley_strerror(rc));
		return;
	}
	c->state = P_REGISTER;
}

/* verify: device 1 of the account --phase send registered, with the key it left in the state. */
static void do_auth(pconn *c, const uint8_t *nonce)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthRequest a = PARLEY__WIRE__AUTH_REQUEST__INIT;
	uint8_t sig[crypto_sign_BYTES];
	dynbuf m;
	int rc;

	dynbuf__init(&m, 4096);
	rc = wire__auth_signed_bytes(nonce, c->handle, 1, &m);
	if (rc == PARLEY_OK)
		crypto_sign_detached(sig, NULL, m.data, m.len, c->device_sk);
	dynbuf__free(&m);
	if (rc == PARLEY_OK) {
		req.id = REQ_AUTH;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
		req.auth = &a;
		a.handle = c->handle;
		a.device_id = 1;
		a.signature.data = sig;
		a.signature.len = sizeof(sig);
		rc = send_request(c, &req);
	}
	if (rc != PARLEY_OK) {
		pconn_fail(c, "login", parley_strerror(rc));
		return;
	}
	c->state = P_AUTH;
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
		req.id = REQ_KEYS;
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
		pconn_fail(c, "upload keys", parley_strerror(rc));
		return;
	}
	c->state = P_KEYS;
}

/* ---- messages ---- */

static void send_one(void *arg)
{
	pconn *c = arg;
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
	if (cfg->have_key)
		relay__seal(cfg, w->msg, c->to_idx);
	om.device_id = 1;
	om.registration_id = regid_of(c->to_idx);
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

/* Sends what the schedule owes, in one write. */
void relay__parley_fill(pconn *c, uint64_t now)
{
	if (c->s == NULL || c->state != P_READY)
		return;
	transport__cork(c->t, 1);
	relay__fill_window(&c->w->e->run, c->s, now, send_one, c);
	transport__cork(c->t, 0);
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
		return;
	}
	c->acks_in_flight++;
}

/* verify: this receiver is done once its stored queue was sent and every ack answered. */
static void check_drained(pconn *c)
{
	if (c->queue_empty && c->nacks == 0 && c->acks_in_flight == 0 && !c->drained) {
		c->drained = 1;
		atomic_fetch_add(&c->w->n_conns.drained, 1);
	}
}

/* Phases: the body must carry a good MAC for this receiver, come from the sender its header names
 * (handle included) and have a sequence number that sender used. */
static int intact(pconn *c, const Parley__Wire__Envelope *env, unsigned sender, uint64_t seq)
{
	pengine *e = c->w->e;
	const relay_cfg *cfg = e->run.cfg;
	char h[WIRE_MAX_HANDLE + 1];

	if (!cfg->have_key)
		return 1;
	if (sender >= cfg->senders || relay__receiver_of(cfg, sender) != c->idx)
		return 0;
	snprintf(h, sizeof(h), "%s-%u", cfg->run_tag, sender);
	if (env->sender_handle == NULL || strcmp(env->sender_handle, h) != 0)
		return 0;
	if (cfg->phase == RELAY_PHASE_VERIFY && seq >= e->run.senders[sender].next_seq)
		return 0;
	return relay__mac_ok(cfg, env->content.data, env->content.len, c->idx);
}

static void on_envelope(pconn *c, const Parley__Wire__Envelope *env, uint64_t now)
{
	pworker *w = c->w;
	unsigned sender;
	uint64_t seq, t;

	if (c->st == NULL || env->content.len != w->e->run.cfg->size ||
	    relay__parse(env->content.data, env->content.len, &sender, &seq, &t) != 0) {
		atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
		relay__error(&w->e->run, "unexpected envelope", NULL);
	} else if (!intact(c, env, sender, seq)) {
		atomic_fetch_add_explicit(&w->st.corrupt, 1, memory_order_relaxed);
		relay__error(&w->e->run, "corrupted or misrouted message", env->sender_handle);
	} else {
		relay__delivered(&w->e->run, c->st, sender, seq, t, now);
	}
	c->acks[c->nacks++] = env->server_id;
	if (c->nacks >= w->e->run.cfg->ack_batch)
		flush_acks(c);
}

/* A Response to the set-up request in progress; 0 if r is not one. */
static int setup_response(pconn *c, const Parley__Wire__Response *r)
{
	static const struct {
		uint64_t id;
		enum pstate state;
		const char *refused;
	} steps[] = {{REQ_REGISTER, P_REGISTER, "register refused"},
		     {REQ_KEYS, P_KEYS, "key upload refused"},
		     {REQ_AUTH, P_AUTH, "login refused"}};
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (r->id != steps[i].id || c->state != steps[i].state)
			continue;
		if (r->status != 0)
			pconn_fail(c, steps[i].refused, r->message ? r->message : parley_strerror((int)r->status));
		else if (c->state == P_REGISTER)
			do_upload_keys(c);
		else
			set_ready(c);
		return 1;
	}
	return 0;
}

static void on_response(pconn *c, const Parley__Wire__Response *r, uint64_t now)
{
	pworker *w = c->w;
	relay_sender *s = c->s;
	uint64_t seq;

	if (setup_response(c, r))
		return;
	if (r->id >= UINT64_MAX - c->next_ack_id) {
		c->acks_in_flight--;
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
		relay__parley_fill(c, now);
}

/* ---- transport callbacks ---- */

static void on_open(void *ctx, transport_conn *t)
{
	pconn *c = ctx;

	(void)t;
	if (c->state == P_CONNECTING)
		c->state = P_CHALLENGE; /* parleyd's first frame is a Challenge */
}

static void on_message(void *ctx, transport_conn *t, const uint8_t *buf, size_t len)
{
	pconn *c = ctx;
	pworker *w = c->w;
	uint64_t now = uv_hrtime();
	wire_frame f;
	int rc;

	(void)t;
	if (c->state == P_CLOSED || c->state == P_PARKED)
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
		if (p->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE && c->state == P_CHALLENGE) {
			if (w->e->run.cfg->phase == RELAY_PHASE_VERIFY)
				do_auth(c, p->challenge->nonce.data);
			else
				do_register(c, p->challenge->nonce.data);
		} else if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
			on_envelope(c, p->envelope, now);
		} else if (p->body_case == PARLEY__WIRE__PUSH__BODY_QUEUE_EMPTY) {
			c->queue_empty = 1;
		}
		/* Other pushes (a later challenge, presence) are not part of the measure. */
	} else if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
		on_response(c, f.frame->response, now);
	}
	wire__frame_free(&f);
}

/* Everything one read delivered is acked in one request (Signal clients batch the same way). */
static void on_read_done(void *ctx, transport_conn *t)
{
	pconn *c = ctx;

	(void)t;
	flush_acks(c);
	if (c->w->e->run.cfg->phase == RELAY_PHASE_VERIFY)
		check_drained(c);
}

static void on_close(void *ctx, transport_conn *t, int err, uint16_t ws_code)
{
	pconn *c = ctx;
	pengine *e = c->w->e;
	const char *why = transport__error_text(t);
	enum pstate was = c->state;

	(void)ws_code;
	c->t = NULL;
	c->state = P_CLOSED;
	if (was == P_CLOSED || was == P_PARKED || stopping(c->w))
		return; /* failed already, parked on purpose, or the run is over */
	if (why[0] == '\0')
		why = err != PARLEY_OK ? parley_strerror(err) : "closed by the server";
	if (was == P_READY) {
		/* A ready connection that ends before the stop breaks the run: its messages are lost. */
		relay__conn_lost(&e->run, c->idx);
	} else {
		count_failed(c);
	}
	relay__error(&e->run, why, NULL); /* the transport's text says what and why */
}

void relay__parley_connect(pconn *c)
{
	pworker *w = c->w;
	transport_callbacks cb = {.ctx = c,
				  .on_open = on_open,
				  .on_message = on_message,
				  .on_read_done = on_read_done,
				  .on_close = on_close};
	int rc = transport__connect(&w->lp.loop, w->e->url, &w->topt, &cb, &c->t);

	if (rc != PARLEY_OK) {
		c->t = NULL;
		pconn_fail(c, "connect", parley_strerror(rc));
	}
}
