/* `parley-bench fanout --mqtt`: the same fan-out through mosquitto (fanout.h). N subscribers hold a
 * QoS 1 subscription to one topic of this run, each its own client (clean session) on its own
 * connection, PUBACKing every message; one publisher sends each message once at QoS 1, its PUBACK
 * being the ack (mosquitto has it; it writes nothing to disk before answering: docs/benchmarks.md).
 * The MQTT codec is mqtt.c's, the connections relay_tcp.c's, as in the relay benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "fanout.h"
#include "mqtt.h"
#include "relay_tcp.h"
#include "target.h"

#define MQ_MAX_PACKET (64u * 1024u)
#define MQ_ID_WINDOW 65534u /* below the id space: mqtt__seq_of */

struct mq;

typedef struct mconn {
	rtcp t;
	struct mq *m;
	int recv; /* subscriber index, -1 for the publisher */
	int ready;
	char id[48];
} mconn;

typedef struct mq {
	const fo_cfg *cfg;
	uv_loop_t loop;
	bench_target target;
	uint8_t rbuf[64 * 1024];
	mconn *c; /* [0] the publisher, [1..N] the subscribers */
	unsigned nready;
	int all_ready;
	fo_track *cur;
	uint8_t *body;
	char topic[64];
} mq;

static void ready(mconn *c)
{
	mq *m = c->m;
	c->ready = 1;
	m->all_ready = ++m->nready == m->cfg->receivers + 1;
}

static void mq_open(rtcp *t)
{
	mconn *c = t->data;
	if (mqtt__connect(rtcp__out(t), c->id, 60, 1) != PARLEY_OK)
		rtcp__close(t, 0);
	rtcp__flush(t);
}

static int on_packet(mconn *c, const mqtt_packet *p)
{
	mq *m = c->m;
	uint64_t now = uv_hrtime(), seq;
	switch (p->type) {
	case MQTT_CONNACK:
		if (p->rc != 0)
			return -1;
		if (c->recv < 0) {
			ready(c);
			return 0;
		}
		return mqtt__subscribe(rtcp__out(&c->t), 1, m->topic, 1) == PARLEY_OK ? 0 : -1;
	case MQTT_SUBACK:
		if (p->rc != 1) /* granted QoS 1, nothing less */
			return -1;
		ready(c);
		return 0;
	case MQTT_PUBLISH:
		if (c->recv < 0 || m->cur == NULL)
			return -1;
		fanout__track_got(m->cur, (unsigned)c->recv, p->payload, p->payload_len, now);
		return p->qos == 1 ? (mqtt__puback(rtcp__out(&c->t), p->id) == PARLEY_OK ? 0 : -1) : 0;
	case MQTT_PUBACK:
		if (c->recv >= 0 || m->cur == NULL || mqtt__seq_of(p->id, m->cur->sent, MQ_ID_WINDOW, &seq) != 0)
			return -1;
		fanout__track_acked(m->cur, seq, 1, NULL, now);
		return 0;
	default:
		return 0; /* PINGRESP */
	}
}

static long mq_data(rtcp *t, const uint8_t *buf, size_t len)
{
	mconn *c = t->data;
	size_t used = 0;
	for (;;) {
		mqtt_packet p;
		int rc = mqtt__parse(buf + used, len - used, MQ_MAX_PACKET, &p);
		if (rc == PARLEY_E_PROTO_TRUNCATED)
			return (long)used;
		if (rc != PARLEY_OK || on_packet(c, &p) != 0) {
			if (c->m->cur != NULL)
				fanout__track_error(c->m->cur, "mqtt", "unexpected packet or refusal");
			return -1;
		}
		used += p.len;
	}
}

static void mq_close(rtcp *t, const char *why)
{
	mconn *c = t->data;
	if (c->m->cur != NULL && why[0] != '\0')
		fanout__track_error(c->m->cur, "mqtt connection lost", why);
}

static const rtcp_callbacks mq_cb = {.on_open = mq_open, .on_data = mq_data, .on_close = mq_close};

static void publish(void *arg, uint64_t seq)
{
	mq *m = arg;
	rtcp *t = &m->c[0].t;
	fanout__track_sent(m->cur, seq, 1, uv_hrtime(), m->body, m->cfg->size);
	if (mqtt__publish(rtcp__out(t), m->topic, 1, mqtt__id_of(seq), m->body, m->cfg->size) != PARLEY_OK)
		fanout__track_error(m->cur, "publish", "output full");
	rtcp__flush(t);
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int fanout__mqtt(const fo_cfg *cfg, fo_track *t)
{
	mq *m = calloc(1, sizeof(*m));
	const char *why = NULL;
	unsigned n = cfg->receivers + 1;
	int rc = PARLEY_OK;

	if (m == NULL)
		return PARLEY_E_NOMEM;
	m->cfg = cfg;
	m->c = calloc(n, sizeof(*m->c));
	m->body = malloc(cfg->size);
	if (m->c == NULL || m->body == NULL)
		rc = PARLEY_E_NOMEM;
	else if (bench__target_parse(cfg->mqtt, &m->target, &why) != PARLEY_OK)
		rc = PARLEY_E_INVAL;
	else if (uv_loop_init(&m->loop) != 0)
		rc = PARLEY_E_IO;
	if (rc != PARLEY_OK) {
		fanout__track_error(t, "mqtt set-up", why != NULL ? why : parley_strerror(rc));
		free(m->c);
		free(m->body);
		free(m);
		return rc;
	}
	snprintf(m->topic, sizeof(m->topic), "parley-bench/%s/fanout", cfg->tag);
	for (unsigned i = 0; i < n && rc == PARLEY_OK; i++) {
		mconn *c = &m->c[i];
		c->m = m;
		c->recv = (int)i - 1;
		snprintf(c->id, sizeof(c->id), "%s-%s%u", cfg->tag, i == 0 ? "p" : "s", i);
		if (rtcp__connect(&c->t, &m->loop, (const struct sockaddr *)&m->target.addr, m->rbuf, sizeof(m->rbuf),
				  MQ_MAX_PACKET, 16u << 20, &mq_cb, c) != 0)
			rc = PARLEY_E_CONNECT;
	}
	if (rc == PARLEY_OK && fanout__wait(&m->loop, &m->all_ready, cfg->timeout_s) != 0)
		rc = PARLEY_E_TIMEOUT;
	if (rc != PARLEY_OK) {
		fanout__track_error(t, "mqtt set-up", parley_strerror(rc));
	} else {
		m->cur = t;
		fanout__drive(&m->loop, cfg, t, publish, m);
		m->cur = NULL;
	}
	for (unsigned i = 0; i < n; i++)
		rtcp__close(&m->c[i].t, 0);
	uv_run(&m->loop, UV_RUN_DEFAULT);
	uv_walk(&m->loop, on_walk_close, NULL);
	uv_run(&m->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&m->loop);
	free(m->c);
	free(m->body);
	free(m);
	return rc;
}
