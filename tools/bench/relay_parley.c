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
 * run on its loop thread; the threads and the calling thread are relay_loop.c's, the same for every
 * peer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "crypto/crypto.h"
#include "pwire.h"
#include "relay_loop.h"
#include "transport/transport.h"
#include "wire/wire.h"

enum pstate { P_CONNECTING = 0, P_CHALLENGE, P_REGISTER, P_AUTH, P_KEYS, P_READY, P_PARKED, P_CLOSED };

typedef struct pconn {
	rl_conn b;         /* first: the loop's view of the connection */
	transport_conn *t; /* NULL once its on_close ran */
	enum pstate state;
	char handle[WIRE_MAX_HANDLE + 1];
	char to[WIRE_MAX_HANDLE + 1]; /* sender: recipient handle */
	uint64_t *acks;               /* receiver: server ids to ack */
	unsigned nacks, acks_in_flight;
	uint64_t next_ack_id;
	int queue_empty;              /* verify: QueueEmpty seen */
	uint8_t *device_sk;           /* phases, receivers: the device's Ed25519 secret key */
} pconn;

/* Per loop thread. */
typedef struct pworker {
	transport_options topt;
	dynbuf enc;
	wire_limits limits;
} pworker;

/* Per run. */
typedef struct prun {
	uint8_t (*device_sk)[64]; /* phases: per connection */
	char url[RELAY_MAX_NODES][400]; /* per node (relay__node_of) */
	uint64_t ts_base;         /* wall clock (ms) at the start: client timestamps are ts_base + seq */
} prun;

static relay_run *run_of(const pconn *c)
{
	return &c->b.w->e->run;
}

static const relay_cfg *cfg_of(const pconn *c)
{
	return c->b.w->e->run.cfg;
}

static pworker *pw_of(const pconn *c)
{
	return c->b.w->proto;
}

static prun *pr_of(const pconn *c)
{
	return c->b.w->e->data;
}

#define REQ_REGISTER 1u
#define REQ_KEYS 2u
#define REQ_AUTH 3u
#define SEND_ID_BASE 1000u /* request ids >= this are messages: id - base = seq */

static uint32_t regid_of(unsigned idx)
{
	return 1 + idx % WIRE_MAX_REGISTRATION_ID;
}

/* Gives up on a connection that is not ready (yet): counted as failed, the reason kept. */
static void pconn_fail(pconn *c, const char *why, const char *detail)
{
	relay__loop_failed(&c->b, why, detail);
	c->state = P_CLOSED;
	if (c->t != NULL)
		transport__close(c->t);
}

static int send_request(pconn *c, Parley__Wire__Request *req)
{
	pworker *w = pw_of(c);
	int rc;

	dynbuf__reset(&w->enc);
	rc = wire__encode_request(req, &w->enc);
	if (rc == PARLEY_OK)
		rc = transport__send(c->t, w->enc.data, w->enc.len);
	return rc;
}

static void set_ready(pconn *c)
{
	relay__loop_ready(&c->b);
	if (cfg_of(c)->phase == RELAY_PHASE_SEND && !relay__is_sender(cfg_of(c), c->b.idx)) {
		/* offline from now on: what is sent to it stays in the store until --phase verify */
		c->state = P_PARKED;
		transport__close(c->t);
		return;
	}
	c->state = P_READY;
}

/* ---- set-up: register and upload keys, or log in ---- */

/* Sends the set-up request pwire encoded into the worker's buffer (rc: the encoder's status), moving
 * to state `next`; on failure the connection gives up with `what`. */
static void setup_send(pconn *c, int rc, enum pstate next, const char *what)
{
	if (rc == PARLEY_OK)
		rc = transport__send(c->t, pw_of(c)->enc.data, pw_of(c)->enc.len);
	if (rc != PARLEY_OK) {
		pconn_fail(c, what, parley_strerror(rc));
		return;
	}
	c->state = next;
}

static void do_register(pconn *c, const uint8_t *nonce)
{
	uint8_t sk[64];
	int rc = pwire__register(&pw_of(c)->enc, REQ_REGISTER, c->handle, nonce, sk);
	if (c->device_sk != NULL)
		memcpy(c->device_sk, sk, sizeof(sk));
	crypto__wipe(sk, sizeof(sk));
	setup_send(c, rc, P_REGISTER, "register");
}

/* verify: device 1 of the account --phase send registered, with the key it left in the state. */
static void do_auth(pconn *c, const uint8_t *nonce)
{
	setup_send(c, pwire__auth(&pw_of(c)->enc, REQ_AUTH, c->handle, 1, nonce, c->device_sk), P_AUTH, "login");
}

static void do_upload_keys(pconn *c)
{
	setup_send(c, pwire__keys(&pw_of(c)->enc, REQ_KEYS, regid_of(c->b.idx)), P_KEYS, "upload keys");
}

/* ---- messages ---- */

static void send_one(void *arg)
{
	pconn *c = arg;
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT;
	Parley__Wire__OutgoingMessage *oms[1] = {&om};
	uint64_t seq = relay__loop_next(&c->b);
	int rc;

	om.device_id = 1;
	om.registration_id = regid_of(c->b.to_idx);
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = c->b.w->msg;
	om.content.len = cfg_of(c)->size;
	sm.recipient = c->to;
	/* The client timestamp doubles as the message id: unique per sender, near the wall clock. */
	sm.timestamp = pr_of(c)->ts_base + seq;
	sm.n_messages = 1;
	sm.messages = oms;
	req.id = SEND_ID_BASE + seq;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	rc = send_request(c, &req);
	if (rc != PARLEY_OK)
		relay__loop_send_failed(&c->b, parley_strerror(rc));
}

/* Sends what the schedule owes, in one write. */
static void parley_fill(rl_conn *b, uint64_t now)
{
	pconn *c = (pconn *)b;

	if (b->s == NULL || c->state != P_READY)
		return;
	transport__cork(c->t, 1);
	relay__fill_window(run_of(c), b->s, now, send_one, c);
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
		atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
		relay__error(run_of(c), "ack", parley_strerror(rc));
		return;
	}
	c->acks_in_flight++;
}

/* verify: this receiver is done once its stored queue was sent and every ack answered. */
static void check_drained(pconn *c)
{
	if (c->queue_empty && c->nacks == 0 && c->acks_in_flight == 0)
		relay__loop_drained(&c->b);
}

/* The body is checked as for every peer (relay__check_body: MAC for this receiver, routing, sequence
 * number); parleyd also names the sender, which must be the account the header's sender index has. */
static void on_envelope(pconn *c, const Parley__Wire__Envelope *env, uint64_t now)
{
	rl_worker *w = c->b.w;
	char h[WIRE_MAX_HANDLE + 1];
	unsigned sender;
	uint64_t seq, t;

	if (c->b.st == NULL) {
		atomic_fetch_add_explicit(&w->st.errors, 1, memory_order_relaxed);
		relay__error(run_of(c), "envelope on a connection that receives nothing", NULL);
	} else if (relay__parse(env->content.data, env->content.len, &sender, &seq, &t) == 0 &&
		   (snprintf(h, sizeof(h), "%s-%u", cfg_of(c)->run_tag, sender),
		    env->sender_handle == NULL || strcmp(env->sender_handle, h) != 0)) {
		atomic_fetch_add_explicit(&w->st.corrupt, 1, memory_order_relaxed);
		relay__error(run_of(c), "message from another sender than its header names", env->sender_handle);
	} else {
		relay__loop_delivered(&c->b, env->content.data, env->content.len, now);
	}
	c->acks[c->nacks++] = env->server_id;
	if (c->nacks >= cfg_of(c)->ack_batch)
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
	if (setup_response(c, r))
		return;
	if (r->id >= UINT64_MAX - c->next_ack_id) {
		c->acks_in_flight--;
		if (r->status != 0) {
			atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
			relay__error(run_of(c), "ack refused", r->message);
		}
		return;
	}
	relay__loop_acked(&c->b, r->id >= SEND_ID_BASE ? r->id - SEND_ID_BASE : UINT64_MAX, r->status == 0,
			  r->message ? r->message : parley_strerror((int)r->status), now);
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
	uint64_t now = uv_hrtime();
	wire_frame f;
	int rc;

	(void)t;
	if (c->state == P_CLOSED || c->state == P_PARKED)
		return;
	rc = wire__decode_frame(buf, len, &pw_of(c)->limits, &f);
	if (rc != PARLEY_OK) {
		wire__frame_free(&f);
		atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
		relay__error(run_of(c), "undecodable frame", parley_strerror(rc));
		return;
	}
	if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH) {
		const Parley__Wire__Push *p = f.frame->push;
		if (p->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE && c->state == P_CHALLENGE) {
			if (cfg_of(c)->phase == RELAY_PHASE_VERIFY)
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
	if (cfg_of(c)->phase == RELAY_PHASE_VERIFY)
		check_drained(c);
}

static void on_close(void *ctx, transport_conn *t, int err, uint16_t ws_code)
{
	pconn *c = ctx;
	const char *why = transport__error_text(t);
	enum pstate was = c->state;

	(void)ws_code;
	c->t = NULL;
	c->state = P_CLOSED;
	if (was == P_CLOSED || was == P_PARKED)
		return; /* failed already, or parked on purpose */
	if (why[0] == '\0')
		why = err != PARLEY_OK ? parley_strerror(err) : "closed by the server";
	relay__loop_closed(&c->b, was == P_READY, why); /* the transport's text says what and why */
}

static void parley_connect(rl_conn *b)
{
	pconn *c = (pconn *)b;
	pworker *w = pw_of(c);
	transport_callbacks cb = {.ctx = c,
				  .on_open = on_open,
				  .on_message = on_message,
				  .on_read_done = on_read_done,
				  .on_close = on_close};
	unsigned node = relay__node_of(cfg_of(c), b->idx);
	int rc;

	/* transport__connect copies the address: one options struct serves every node */
	w->topt.addr = (const struct sockaddr *)&cfg_of(c)->node[node].addr;
	rc = transport__connect(&b->w->lp.loop, pr_of(c)->url[node], &w->topt, &cb, &c->t);

	if (rc != PARLEY_OK) {
		c->t = NULL;
		pconn_fail(c, "connect", parley_strerror(rc));
	}
}

static void parley_close(rl_conn *b)
{
	pconn *c = (pconn *)b;

	if (c->t != NULL)
		transport__close(c->t);
}

/* ---- set-up on the calling thread ---- */

static int parley_worker_init(rl_worker *w)
{
	const relay_cfg *cfg = w->e->run.cfg;
	pworker *p = parley__calloc(1, sizeof(*p));

	if (p == NULL)
		return PARLEY_E_NOMEM;
	w->proto = p;
	dynbuf__init(&p->enc, cfg->size + 1024);
	wire__limits_default(&p->limits);
	p->topt.read_buf = w->rbuf;
	p->topt.read_buf_len = sizeof(w->rbuf);
	p->topt.connect_timeout_ms = (unsigned)(cfg->connect_timeout_s * 1000.0);
	return PARLEY_OK;
}

static void parley_worker_free(rl_worker *w)
{
	pworker *p = w->proto;

	if (p != NULL)
		dynbuf__free(&p->enc);
	parley__free(p);
	w->proto = NULL;
}

static int parley_conn_init(rl_conn *b)
{
	pconn *c = (pconn *)b;
	const relay_cfg *cfg = cfg_of(c);

	snprintf(c->handle, sizeof(c->handle), "%s-%u", cfg->run_tag, b->idx);
	if (b->st != NULL) {
		c->acks = parley__calloc(cfg->ack_batch, sizeof(uint64_t));
		if (!c->acks)
			return PARLEY_E_NOMEM;
	}
	if (b->s != NULL)
		snprintf(c->to, sizeof(c->to), "%s-%u", cfg->run_tag, b->to_idx);
	return PARLEY_OK;
}

static void parley_conn_free(rl_conn *b)
{
	parley__free(((pconn *)b)->acks);
}

/* verify: what --phase send recorded becomes the senders' state, as if this run had sent it. */
static void load_sent(rl_engine *e, const relay_state *st)
{
	unsigned i;
	uint64_t q;

	for (i = 0; i < st->senders; i++) {
		relay_sender *s = &e->run.senders[i];
		s->next_seq = st->sent[i];
		atomic_store(&s->n_sent, st->sent[i]);
		for (q = 0; q < st->sent[i]; q++)
			if (relay__bits_get(&st->acked[i], q)) {
				relay__bits_set(&s->acked, q);
				atomic_fetch_add(&s->n_acked, 1);
			}
	}
}

static int parley_init(rl_engine *e)
{
	const relay_cfg *cfg = e->run.cfg;
	struct timespec now;
	prun *r;
	unsigned i;
	int rc = crypto__init();

	if (rc != PARLEY_OK)
		return rc;
	r = parley__calloc(1, sizeof(*r));
	if (r == NULL)
		return PARLEY_E_NOMEM;
	e->data = r;
	clock_gettime(CLOCK_REALTIME, &now);
	r->ts_base = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
	for (i = 0; i < cfg->nnodes; i++)
		snprintf(r->url[i], sizeof(r->url[i]), "ws://%s%s", cfg->node[i].host, cfg->node[i].path);
	if (cfg->phase == RELAY_PHASE_RUN)
		return PARLEY_OK;
	r->device_sk = parley__calloc(cfg->conns, sizeof(*r->device_sk));
	if (r->device_sk == NULL)
		return PARLEY_E_NOMEM;
	if (cfg->phase == RELAY_PHASE_VERIFY) {
		load_sent(e, cfg->state);
		memcpy(r->device_sk, cfg->state->device_sk, (size_t)cfg->conns * sizeof(*r->device_sk));
	}
	for (i = 0; i < cfg->conns; i++) {
		pconn *c = (pconn *)relay__loop_conn(e, i);
		if (c->b.w != NULL)
			c->device_sk = r->device_sk[i];
	}
	return PARLEY_OK;
}

/* send: the state file for --phase verify, once every connection was set up. */
static void parley_fini(rl_engine *e, relay_result *res)
{
	const relay_cfg *cfg = e->run.cfg;
	prun *r = e->data;

	if (r == NULL)
		return;
	if (cfg->phase == RELAY_PHASE_SEND && res->connected == e->nactive &&
	    relay__state_save(cfg->state_path, cfg, &e->run, r->device_sk) == PARLEY_OK)
		res->state_saved = 1;
	if (r->device_sk != NULL)
		crypto__wipe(r->device_sk, (size_t)cfg->conns * sizeof(*r->device_sk));
	parley__free(r->device_sk);
	parley__free(r);
	e->data = NULL;
}

static const relay_proto parley_proto = {
	.name = "parley",
	.conn_size = sizeof(pconn),
	.init = parley_init,
	.fini = parley_fini,
	.worker_init = parley_worker_init,
	.worker_free = parley_worker_free,
	.conn_init = parley_conn_init,
	.conn_free = parley_conn_free,
	.connect = parley_connect,
	.fill = parley_fill,
	.close = parley_close,
};

int relay__engine_parley(const relay_cfg *cfg, relay_result *res)
{
	return relay__loop_run(cfg, &parley_proto, res);
}
