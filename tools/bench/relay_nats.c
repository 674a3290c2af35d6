/* `parley-bench relay --peer nats|nats-js`: the relay workload over the NATS protocol, spoken by
 * parley-bench itself on the same loop threads as every other peer (relay_loop.c) over plain TCP
 * (relay_tcp.c), with the sans-I/O codec natsp.c. (`--peer nats-lib|nats-js-lib` runs the same
 * workload with nats.c, as a cross-check of this engine: relay_nats_lib.c.)
 *
 * Subjects (tag = the run's tag): receiver r listens on "<tag>.r.<r>"; sender i publishes there with
 * the reply subject "<tag>.a.<i>.<seq>" and subscribes to "<tag>.a.<i>.*", so an ack names its
 * message by its subject (no lookup table, and an ack for a message not in flight is caught).
 * Set-up: the server's INFO → CONNECT (verbose off, headers and no_responders on) and the SUBs, then
 * PING → PONG: the server has registered everything before it, the connection is ready.
 *
 * nats (core): nothing is stored. The receiver answers every delivery with an empty message to its
 * reply subject, so the "ack" is a round trip sender → server → receiver → server → sender: the
 * closest core NATS comes to "the receiver has it"; read it as an in-memory, no-durability ceiling.
 *
 * nats-js (JetStream): stream "S<tag>" over "<tag>.r.*", file storage, created by the first receiver
 * ("$JS.API.STREAM.CREATE.S<tag>"); once it is confirmed (the others wait, see wait_stream) every
 * receiver asks "$JS.API.CONSUMER.DURABLE.CREATE.S<tag>.d<r>"
 * (requests refused while the stream is being created are repeated, see on_api) for a durable push
 * consumer on its subject, delivering
 * to "<tag>.d.<r>", ack policy "all". The stream's answer to a publish (a PubAck, {"stream":..,
 * "seq":..}, or {"error":..}) arrives on the reply subject: that is the ack. Receivers ack the way the
 * parley engine does: once per socket read (and every ack_batch deliveries), "+ACK" to the reply
 * subject of the last delivery, which under policy "all" acknowledges it and every one before it.
 * At the end, connection 0 publishes "$JS.API.STREAM.DELETE.S<tag>" before it closes.
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "natsp.h"
#include "relay_loop.h"
#include "relay_tcp.h"

#define SID_IN 1u  /* deliveries: "<tag>.r.<i>" (core) or "<tag>.d.<i>" (JetStream) */
#define SID_ACK 2u /* a sender's acks: "<tag>.a.<i>.*" */
#define SID_API 3u /* JetStream API answers: "<tag>.j.<i>" */
#define MAX_LINE 16384u
#define MAX_OUT (64u << 20)

enum nstate { N_CONNECTING = 0, N_INFO, N_STREAM, N_WAIT_STREAM, N_CONSUMER, N_PING, N_READY, N_CLOSED };

/* Per run: set by the receiver that created the JetStream stream, once the server confirmed it. */
typedef struct nrun {
	_Atomic int stream_ready;
} nrun;

typedef struct nconn {
	rl_conn b; /* first: the loop's view of the connection */
	rtcp t;
	enum nstate state;
	unsigned unacked;          /* JetStream receiver: deliveries since its last ack */
	uint64_t api_t0;           /* JetStream receiver: when its set-up requests began */
	char ack_to[160];          /* ... and the reply subject of the last one */
	char subj[64], reply[64];  /* sender: its receiver's subject; its reply subjects' prefix */
} nconn;

static const relay_cfg *cfg_of(const nconn *c)
{
	return c->b.w->e->run.cfg;
}

static relay_run *run_of(const nconn *c)
{
	return &c->b.w->e->run;
}

static int is_js(const nconn *c)
{
	return cfg_of(c)->peer == RELAY_PEER_NATS_JS;
}

static unsigned first_receiver(const relay_cfg *cfg)
{
	return cfg->senders >= cfg->conns ? 0 : cfg->senders;
}

static void fail(nconn *c, const char *why, const char *detail)
{
	relay__loop_failed(&c->b, why, detail);
	c->state = N_CLOSED;
	rtcp__close(&c->t, 0);
}

/* Output errors: during the set-up they fail the connection; later they are counted. */
static int out_ok(nconn *c, int rc, const char *what)
{
	if (rc == PARLEY_OK)
		return 1;
	if (c->state == N_READY) {
		atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
		relay__error(run_of(c), what, parley_strerror(rc));
	} else {
		fail(c, what, parley_strerror(rc));
	}
	return 0;
}

/* ---- sending ---- */

static void send_one(void *arg)
{
	nconn *c = arg;
	char reply[96];
	uint64_t seq = relay__loop_next(&c->b);
	int rc;

	snprintf(reply, sizeof(reply), "%s.%llu", c->reply, (unsigned long long)seq);
	rc = natsp__pub(rtcp__out(&c->t), c->subj, reply, c->b.w->msg, cfg_of(c)->size);
	if (rc != PARLEY_OK)
		relay__loop_send_failed(&c->b, parley_strerror(rc));
}

static void nats_fill(rl_conn *b, uint64_t now)
{
	nconn *c = (nconn *)b;

	if (b->s == NULL || c->state != N_READY)
		return;
	rtcp__cork(&c->t, 1);
	relay__fill_window(run_of(c), b->s, now, send_one, c);
	rtcp__cork(&c->t, 0);
}

/* ---- set-up ---- */

static int api_request(nconn *c, const char *subject, const char *json)
{
	char inbox[64];

	snprintf(inbox, sizeof(inbox), "%s.j.%u", cfg_of(c)->run_tag, c->b.idx);
	return out_ok(c, natsp__pub(rtcp__out(&c->t), subject, inbox, (const uint8_t *)json, strlen(json)),
		      "jetstream request");
}

static void create_stream(nconn *c)
{
	const char *tag = cfg_of(c)->run_tag;
	char subject[96], json[256];

	snprintf(subject, sizeof(subject), "$JS.API.STREAM.CREATE.S%s", tag);
	snprintf(json, sizeof(json),
		 "{\"name\":\"S%s\",\"subjects\":[\"%s.r.*\"],\"storage\":\"file\",\"retention\":\"limits\","
		 "\"discard\":\"old\",\"num_replicas\":1}",
		 tag, tag);
	if (api_request(c, subject, json))
		c->state = N_STREAM;
}

static void create_consumer(nconn *c)
{
	const char *tag = cfg_of(c)->run_tag;
	unsigned i = c->b.idx;
	char subject[128], json[512];

	snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.DURABLE.CREATE.S%s.d%u", tag, i);
	snprintf(json, sizeof(json),
		 "{\"stream_name\":\"S%s\",\"config\":{\"durable_name\":\"d%u\",\"deliver_subject\":\"%s.d.%u\","
		 "\"deliver_policy\":\"all\",\"ack_policy\":\"all\",\"filter_subject\":\"%s.r.%u\","
		 "\"max_ack_pending\":65536,\"replay_policy\":\"instant\"}}",
		 tag, i, tag, i, tag, i);
	if (api_request(c, subject, json))
		c->state = N_CONSUMER;
}

static void ping(nconn *c)
{
	if (out_ok(c, natsp__ping(rtcp__out(&c->t)), "ping"))
		c->state = N_PING;
}

static void wait_stream(nconn *c);

/* The server's INFO: CONNECT and the subscriptions, then the JetStream requests or the PING. */
static void on_info(nconn *c)
{
	const char *tag = cfg_of(c)->run_tag;
	dynbuf *o = rtcp__out(&c->t);
	char name[64], subject[96];
	int rc;

	snprintf(name, sizeof(name), "%s-c%u", tag, c->b.idx);
	rc = natsp__connect(o, name);
	if (rc == PARLEY_OK && c->b.st != NULL) {
		snprintf(subject, sizeof(subject), "%s.%s.%u", tag, is_js(c) ? "d" : "r", c->b.idx);
		rc = natsp__sub(o, subject, SID_IN);
	}
	if (rc == PARLEY_OK && c->b.s != NULL) {
		snprintf(subject, sizeof(subject), "%s.*", c->reply);
		rc = natsp__sub(o, subject, SID_ACK);
	}
	if (rc == PARLEY_OK && c->b.st != NULL && is_js(c)) {
		snprintf(subject, sizeof(subject), "%s.j.%u", tag, c->b.idx);
		rc = natsp__sub(o, subject, SID_API);
	}
	if (!out_ok(c, rc, "nats connect"))
		return;
	if (c->b.st == NULL || !is_js(c)) {
		ping(c);
		return;
	}
	c->api_t0 = uv_hrtime();
	if (c->b.idx == first_receiver(cfg_of(c)))
		create_stream(c);
	else
		wait_stream(c);
}

#define JS_WAIT_NS 10000000000ull /* how long the set-up requests are repeated */

/* One receiver creates the stream (concurrent creates of one stream race inside nats-server: "subjects
 * overlap", "error creating store for stream"); the others create their consumers at once. nats-server
 * 2.9 also refuses some requests transiently while a stream is being created ("stream not found",
 * "invalid stream" for a consumer; now and then "error creating store for stream" for the stream
 * itself), so a refused request is asked again, for 10 s at most, after which its error fails the
 * connection. */
static void on_api(nconn *c, const natsp_op *op)
{
	char why[160];

	if (natsp__json_error((const char *)op->payload, op->payload_len, why, sizeof(why))) {
		if (uv_hrtime() - c->api_t0 >= JS_WAIT_NS)
			fail(c, c->state == N_STREAM ? "jetstream stream create" : "jetstream consumer create", why);
		else if (c->state == N_STREAM)
			create_stream(c);
		else
			create_consumer(c);
		return;
	}
	if (c->state == N_STREAM) {
		atomic_store(&((nrun *)c->b.w->e->data)->stream_ready, 1);
		create_consumer(c);
	} else if (c->state == N_CONSUMER) {
		ping(c);
	}
}

/* The other receivers wait for the stream before they create their consumers (a consumer made while
 * its stream is being created may never deliver, seen with nats-server 2.9.10); PING → PONG is the
 * poll, so no timer is needed. */
static void wait_stream(nconn *c)
{
	if (atomic_load(&((nrun *)c->b.w->e->data)->stream_ready)) {
		create_consumer(c);
	} else if (uv_hrtime() - c->api_t0 >= JS_WAIT_NS) {
		fail(c, "jetstream", "the stream was not created within 10 s");
	} else if (out_ok(c, natsp__ping(rtcp__out(&c->t)), "ping")) {
		c->state = N_WAIT_STREAM;
	}
}

/* ---- messages ---- */

static void js_ack(nconn *c)
{
	if (c->unacked == 0)
		return;
	c->unacked = 0;
	out_ok(c, natsp__pub(rtcp__out(&c->t), c->ack_to, NULL, (const uint8_t *)"+ACK", 4), "jetstream ack");
}

static void on_delivery(nconn *c, const natsp_op *op, uint64_t now)
{
	if (op->kind == NATSP_HMSG && op->payload_len == 0)
		return; /* a JetStream status message (idle heartbeat, flow control): none is asked for */
	relay__loop_delivered(&c->b, op->payload, op->payload_len, now);
	if (op->reply == NULL)
		return;
	if (!is_js(c)) {
		/* core: the reply is the sender's ack */
		char reply[160];
		if (op->reply_len >= sizeof(reply))
			return;
		memcpy(reply, op->reply, op->reply_len);
		reply[op->reply_len] = '\0';
		out_ok(c, natsp__pub(rtcp__out(&c->t), reply, NULL, NULL, 0), "reply");
		return;
	}
	if (op->reply_len >= sizeof(c->ack_to)) {
		atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
		relay__error(run_of(c), "jetstream ack subject too long", NULL);
		return;
	}
	memcpy(c->ack_to, op->reply, op->reply_len);
	c->ack_to[op->reply_len] = '\0';
	if (++c->unacked >= cfg_of(c)->ack_batch)
		js_ack(c);
}

/* A sender's ack: the sequence number is the subject's last token. */
static void on_ack(nconn *c, const natsp_op *op, uint64_t now)
{
	uint64_t seq = UINT64_MAX;
	char why[160] = "";
	int ok = 1;

	if (natsp__subject_u64(op->subject, op->subject_len, &seq) != 0)
		seq = UINT64_MAX;
	if (op->kind == NATSP_HMSG) {
		ok = 0; /* a status instead of an answer: 503 no responders (no stream), 408 ... */
		snprintf(why, sizeof(why), "%.*s", (int)(op->hdr_len < 40 ? op->hdr_len : 40), (const char *)op->hdr);
	} else if (is_js(c)) {
		uint64_t stored;
		if (natsp__json_error((const char *)op->payload, op->payload_len, why, sizeof(why)) ||
		    natsp__json_u64((const char *)op->payload, op->payload_len, "seq", &stored) != 0)
			ok = 0;
	}
	relay__loop_acked(&c->b, seq, ok, why[0] ? why : "no PubAck", now);
}

static void on_op(nconn *c, const natsp_op *op, uint64_t now)
{
	switch (op->kind) {
	case NATSP_INFO:
		if (c->state == N_INFO)
			on_info(c);
		break;
	case NATSP_PING:
		out_ok(c, natsp__pong(rtcp__out(&c->t)), "pong");
		break;
	case NATSP_PONG:
		if (c->state == N_WAIT_STREAM) {
			wait_stream(c);
		} else if (c->state == N_PING) {
			c->state = N_READY;
			relay__loop_ready(&c->b);
		}
		break;
	case NATSP_ERR:
		if (c->state != N_READY) {
			char why[128];
			snprintf(why, sizeof(why), "%.*s", (int)(op->arg_len < 100 ? op->arg_len : 100), op->arg);
			fail(c, "nats -ERR", why);
		} else {
			atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
			relay__error(run_of(c), "nats -ERR", NULL);
		}
		break;
	case NATSP_MSG:
	case NATSP_HMSG:
		if (op->sid == SID_IN && c->b.st != NULL)
			on_delivery(c, op, now);
		else if (op->sid == SID_ACK && c->b.s != NULL)
			on_ack(c, op, now);
		else if (op->sid == SID_API && (c->state == N_STREAM || c->state == N_CONSUMER))
			on_api(c, op);
		else {
			atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
			relay__error(run_of(c), "nats message on an unknown subscription", NULL);
		}
		break;
	case NATSP_OK:
		break;
	}
}

static long on_data(rtcp *t, const uint8_t *buf, size_t len)
{
	nconn *c = t->data;
	uint64_t now = uv_hrtime();
	size_t off = 0;
	natsp_op op;
	int rc;

	while (off < len && c->state != N_CLOSED) {
		rc = natsp__parse(buf + off, len - off, MAX_LINE, cfg_of(c)->size + 4096, &op);
		if (rc == PARLEY_E_PROTO_TRUNCATED)
			break;
		if (rc != PARLEY_OK) {
			relay__error(run_of(c), "nats: bad operation from the server", parley_strerror(rc));
			return -1;
		}
		off += op.len;
		on_op(c, &op, now);
	}
	return (long)off;
}

/* JetStream receivers ack what one read delivered in one ack (as parley's receivers do). */
static void on_read_done(rtcp *t)
{
	nconn *c = t->data;

	if (c->state == N_READY)
		js_ack(c);
}

static void on_open(rtcp *t)
{
	nconn *c = t->data;

	c->state = N_INFO; /* the server speaks first */
}

static void on_close(rtcp *t, const char *why)
{
	nconn *c = t->data;
	int was_ready = c->state == N_READY;

	c->state = N_CLOSED;
	relay__loop_closed(&c->b, was_ready, why[0] ? why : "connection closed");
}

static const rtcp_callbacks nats_cb = {
	.on_open = on_open, .on_data = on_data, .on_read_done = on_read_done, .on_close = on_close};

static void nats_connect(rl_conn *b)
{
	nconn *c = (nconn *)b;
	const relay_cfg *cfg = cfg_of(c);
	int rc;

	c->state = N_CONNECTING;
	rc = rtcp__connect(&c->t, &b->w->lp.loop, (const struct sockaddr *)&cfg->target.addr, b->w->rbuf,
			   sizeof(b->w->rbuf), MAX_LINE + cfg->size + 4096, MAX_OUT, &nats_cb, c);
	if (rc != 0) {
		c->state = N_CLOSED;
		relay__loop_failed(b, "connect", uv_strerror(rc));
	}
}

static void nats_close(rl_conn *b)
{
	nconn *c = (nconn *)b;
	char subject[96];

	if (c->state == N_CLOSED)
		return;
	if (c->state == N_READY && is_js(c) && b->idx == 0) {
		/* no reply subject: nothing to wait for; the graceful close lets the server read it */
		snprintf(subject, sizeof(subject), "$JS.API.STREAM.DELETE.S%s", cfg_of(c)->run_tag);
		natsp__pub(rtcp__out(&c->t), subject, NULL, NULL, 0);
	}
	rtcp__close(&c->t, c->state == N_READY);
}

static int nats_conn_init(rl_conn *b)
{
	nconn *c = (nconn *)b;
	const char *tag = b->w->e->run.cfg->run_tag;

	c->state = N_CLOSED;
	if (b->s != NULL) {
		snprintf(c->subj, sizeof(c->subj), "%s.r.%u", tag, b->to_idx);
		snprintf(c->reply, sizeof(c->reply), "%s.a.%u", tag, b->idx);
	}
	return PARLEY_OK;
}

static int nats_init(rl_engine *e)
{
	e->data = parley__calloc(1, sizeof(nrun));
	return e->data != NULL ? PARLEY_OK : PARLEY_E_NOMEM;
}

static void nats_fini(rl_engine *e, relay_result *res)
{
	(void)res;
	parley__free(e->data);
	e->data = NULL;
}

static const relay_proto nats_proto = {
	.name = "nats",
	.conn_size = sizeof(nconn),
	.init = nats_init,
	.fini = nats_fini,
	.conn_init = nats_conn_init,
	.connect = nats_connect,
	.fill = nats_fill,
	.close = nats_close,
};

int relay__engine_nats(const relay_cfg *cfg, relay_result *res)
{
	return relay__loop_run(cfg, &nats_proto, res);
}
