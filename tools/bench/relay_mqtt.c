/* `parley-bench relay --peer mosquitto`: the relay workload over MQTT 3.1.1, spoken by parley-bench
 * itself on the same loop threads as every other peer (relay_loop.c) over plain TCP (relay_tcp.c),
 * with the sans-I/O codec mqtt.c. (`--peer mosquitto-lib` runs the same workload with libmosquitto,
 * as a cross-check of this engine: relay_mqtt_lib.c.)
 *
 * Each connection: CONNECT (client id "<tag>-c<index>", clean session off: a persistent session, so
 * the broker queues QoS 1 messages for a receiver as parleyd does for a device) → CONNACK; receivers
 * SUBSCRIBE "<tag>/r<index>" at QoS 1 → SUBACK granting 1; then PINGREQ → PINGRESP: the broker has
 * handled everything before it, the connection is ready.
 *
 * Senders PUBLISH at QoS 1 to their receiver's topic; the broker's PUBACK is the ack. The packet id
 * is the sequence number modulo 65,535 (plus one), and the sequence number is recovered from it within
 * the sender's window (mqtt__seq_of): ids never repeat among messages in flight (at most 4,096).
 * Receivers check every PUBLISH body (relay__loop_delivered: MAC for this receiver, routing) and
 * PUBACK each one (QoS 1 has no batched ack); the PUBACKs of one read leave in one write.
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "mqtt.h"
#include "relay_loop.h"
#include "relay_tcp.h"

#define MQTT_KEEPALIVE_S 60
#define MQTT_SUB_ID 1u
#define MAX_OUT (64u << 20) /* queued output: an open-loop backlog of messages at most */

enum mstate { M_CONNECTING = 0, M_CONNACK, M_SUBACK, M_PING, M_READY, M_CLOSED };

typedef struct mconn {
	rl_conn b; /* first: the loop's view of the connection */
	rtcp t;
	enum mstate state;
	char topic[64]; /* sender: its receiver's topic */
} mconn;

static const relay_cfg *cfg_of(const mconn *c)
{
	return c->b.w->e->run.cfg;
}

static void fail(mconn *c, const char *why, const char *detail)
{
	relay__loop_failed(&c->b, why, detail);
	c->state = M_CLOSED;
	rtcp__close(&c->t, 0);
}

static int out_ok(mconn *c, int rc, const char *what)
{
	if (rc == PARLEY_OK)
		return 1;
	if (c->state == M_READY) {
		atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
		relay__error(&c->b.w->e->run, what, parley_strerror(rc));
	} else {
		fail(c, what, parley_strerror(rc));
	}
	return 0;
}

static void send_one(void *arg)
{
	mconn *c = arg;
	uint64_t seq = relay__loop_next(&c->b);
	int rc = mqtt__publish(rtcp__out(&c->t), c->topic, 1, mqtt__id_of(seq), c->b.w->msg, cfg_of(c)->size);

	if (rc != PARLEY_OK)
		relay__loop_send_failed(&c->b, parley_strerror(rc));
}

static void mqtt_fill(rl_conn *b, uint64_t now)
{
	mconn *c = (mconn *)b;

	if (b->s == NULL || c->state != M_READY)
		return;
	rtcp__cork(&c->t, 1);
	relay__fill_window(&b->w->e->run, b->s, now, send_one, c);
	rtcp__cork(&c->t, 0);
}

static void on_open(rtcp *t)
{
	mconn *c = t->data;
	char id[64];

	snprintf(id, sizeof(id), "%s-c%u", cfg_of(c)->run_tag, c->b.idx);
	if (out_ok(c, mqtt__connect(rtcp__out(t), id, MQTT_KEEPALIVE_S, 0), "mqtt connect"))
		c->state = M_CONNACK;
}

static void on_puback(mconn *c, unsigned id, uint64_t now)
{
	uint64_t seq = UINT64_MAX;

	if (c->b.s == NULL || mqtt__seq_of(id, c->b.s->next_seq, c->b.cap, &seq) != 0)
		seq = UINT64_MAX; /* relay__loop_acked counts it as an ack for nothing in flight */
	relay__loop_acked(&c->b, seq, 1, NULL, now);
}

static void on_publish(mconn *c, const mqtt_packet *p, uint64_t now)
{
	if (c->b.st == NULL || p->qos != 1) {
		atomic_fetch_add_explicit(&c->b.w->st.errors, 1, memory_order_relaxed);
		relay__error(&c->b.w->e->run, "unexpected PUBLISH", c->b.st ? "not QoS 1" : "not a receiver");
	} else {
		relay__loop_delivered(&c->b, p->payload, p->payload_len, now);
	}
	if (p->qos == 1)
		out_ok(c, mqtt__puback(rtcp__out(&c->t), p->id), "puback");
}

/* One packet in the set-up sequence; returns 0, or -1 after failing the connection. */
static int on_setup(mconn *c, const mqtt_packet *p)
{
	char topic[64];
	char rc[16];

	if (p->type == MQTT_CONNACK && c->state == M_CONNACK) {
		if (p->rc != 0) {
			snprintf(rc, sizeof(rc), "code %u", p->rc);
			fail(c, "mqtt connect refused", rc);
			return -1;
		}
		if (c->b.st != NULL) {
			snprintf(topic, sizeof(topic), "%s/r%u", cfg_of(c)->run_tag, c->b.idx);
			if (!out_ok(c, mqtt__subscribe(rtcp__out(&c->t), MQTT_SUB_ID, topic, 1), "subscribe"))
				return -1;
			c->state = M_SUBACK;
			return 0;
		}
	} else if (p->type == MQTT_SUBACK && c->state == M_SUBACK && p->id == MQTT_SUB_ID) {
		if (p->rc != 1) {
			fail(c, "subscription not granted at QoS 1", NULL);
			return -1;
		}
	} else if (p->type == MQTT_PINGRESP && c->state == M_PING) {
		c->state = M_READY;
		relay__loop_ready(&c->b);
		return 0;
	} else {
		fail(c, "unexpected packet during the MQTT set-up", NULL);
		return -1;
	}
	if (!out_ok(c, mqtt__pingreq(rtcp__out(&c->t)), "pingreq"))
		return -1;
	c->state = M_PING;
	return 0;
}

static long on_data(rtcp *t, const uint8_t *buf, size_t len)
{
	mconn *c = t->data;
	uint64_t now = uv_hrtime();
	size_t off = 0;
	mqtt_packet p;
	int rc;

	while (off < len && c->state != M_CLOSED) {
		rc = mqtt__parse(buf + off, len - off, cfg_of(c)->size + 512, &p);
		if (rc == PARLEY_E_PROTO_TRUNCATED)
			break;
		if (rc != PARLEY_OK) {
			relay__error(&c->b.w->e->run, "mqtt: bad packet from the broker", parley_strerror(rc));
			return -1;
		}
		off += p.len;
		if (c->state != M_READY) {
			if (on_setup(c, &p) != 0)
				break;
		} else if (p.type == MQTT_PUBACK) {
			on_puback(c, p.id, now);
		} else if (p.type == MQTT_PUBLISH) {
			on_publish(c, &p, now);
		} /* a PINGRESP while ready: nothing to do */
	}
	return (long)off;
}

static void on_close(rtcp *t, const char *why)
{
	mconn *c = t->data;
	int was_ready = c->state == M_READY;

	c->state = M_CLOSED;
	relay__loop_closed(&c->b, was_ready, why[0] ? why : "connection closed");
}

static const rtcp_callbacks mqtt_cb = {.on_open = on_open, .on_data = on_data, .on_close = on_close};

static void mqtt_connect(rl_conn *b)
{
	mconn *c = (mconn *)b;
	const relay_cfg *cfg = cfg_of(c);
	int rc;

	c->state = M_CONNECTING;
	rc = rtcp__connect(&c->t, &b->w->lp.loop, (const struct sockaddr *)&cfg->target.addr, b->w->rbuf,
			   sizeof(b->w->rbuf), cfg->size + 1024, MAX_OUT, &mqtt_cb, c);
	if (rc != 0) {
		c->state = M_CLOSED;
		relay__loop_failed(b, "connect", uv_strerror(rc));
	}
}

static void mqtt_close(rl_conn *b)
{
	mconn *c = (mconn *)b;

	if (c->state == M_CLOSED)
		return;
	if (c->state == M_READY)
		mqtt__disconnect(rtcp__out(&c->t));
	rtcp__close(&c->t, c->state == M_READY);
}

static int mqtt_conn_init(rl_conn *b)
{
	mconn *c = (mconn *)b;

	c->state = M_CLOSED;
	if (b->s != NULL)
		snprintf(c->topic, sizeof(c->topic), "%s/r%u", b->w->e->run.cfg->run_tag, b->to_idx);
	return PARLEY_OK;
}

static const relay_proto mqtt_proto = {
	.name = "mqtt",
	.conn_size = sizeof(mconn),
	.conn_init = mqtt_conn_init,
	.connect = mqtt_connect,
	.fill = mqtt_fill,
	.close = mqtt_close,
};

int relay__engine_mqtt(const relay_cfg *cfg, relay_result *res)
{
	return relay__loop_run(cfg, &mqtt_proto, res);
}
