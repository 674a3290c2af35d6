/* `parley-bench relay --peer mosquitto-lib`: the relay workload over MQTT 3.1.1 with libmosquitto, kept
 * as a cross-check of the engine of record (relay_mqtt.c, `--peer mosquitto`, which speaks MQTT on
 * parley-bench's own loop threads). Here the client is libmosquitto's, with its own costs: a thread
 * per connection and every publish handed across threads under a lock.
 *
 * Every connection is a libmosquitto client with its own network thread (mosquitto_loop_start), a
 * persistent session (clean_session false, client id unique per run) and, for receivers, a QoS 1
 * subscription to "<tag>/r<index>". Senders publish QoS 1 to their receiver's topic: the ack is the
 * broker's PUBACK, the delivery is the subscriber's on_message (libmosquitto PUBACKs it after the
 * callback). PUBACK only carries the message id, so each sender keeps the send time and sequence
 * number of every id in flight (ids are 16-bit: two 64 Ki tables).
 */
#include "relay.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"

#ifndef PARLEY_BENCH_HAVE_MOSQUITTO

int relay__engine_mqtt_lib(const relay_cfg *cfg, relay_result *res)
{
	(void)cfg;
	(void)res;
	return PARLEY_E_UNSUPPORTED;
}

#else
#include <mosquitto.h>

typedef struct mq_conn {
	struct mosquitto *m;
	relay_run *run;
	unsigned idx;
	int looping;
	_Atomic int connected, subscribed, failed;
	relay_stats *st;       /* receivers */
	relay_sender *s;       /* senders */
	uint8_t *buf;          /* senders: message being built */
	uint64_t *mid_t, *mid_seq;
	char topic[96];        /* senders: where to publish */
} mq_conn;

typedef struct mq_engine {
	relay_run run;
	mq_conn *c;
	relay_stats **stats;
	unsigned nstats;
} mq_engine;

/* Publishes the next message of c's sender; c->s->mu held. */
static void send_locked(mq_conn *c)
{
	relay_sender *s = c->s;
	uint64_t t = relay__fill(c->buf, c->run->cfg->size, s->idx, s->next_seq);
	int mid = 0, rc;

	relay__seal(c->run->cfg, c->buf, s->receiver);
	rc = mosquitto_publish(c->m, &mid, c->topic, (int)c->run->cfg->size, c->buf, 1, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(c->run, "mosquitto_publish", mosquitto_strerror(rc));
		s->next_seq++;
		atomic_fetch_add_explicit(&s->n_sent, 1, memory_order_relaxed);
		return;
	}
	c->mid_t[mid & 0xffff] = t;
	c->mid_seq[mid & 0xffff] = s->next_seq;
	s->next_seq++;
	s->in_flight++;
	atomic_fetch_add_explicit(&s->n_sent, 1, memory_order_relaxed);
}

static void send_one(void *c)
{
	send_locked(c);
}

static void fill_window_locked(mq_conn *c, uint64_t now)
{
	relay__fill_window(c->run, c->s, now, send_one, c);
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	mq_conn *c = obj;
	int mid;

	if (rc != 0) {
		relay__error(c->run, "mqtt connect refused", mosquitto_connack_string(rc));
		atomic_store(&c->failed, 1);
		return;
	}
	atomic_store(&c->connected, 1);
	if (c->st) {
		char topic[96];
		snprintf(topic, sizeof(topic), "%s/r%u", c->run->cfg->run_tag, c->idx);
		rc = mosquitto_subscribe(m, &mid, topic, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			relay__error(c->run, "mosquitto_subscribe", mosquitto_strerror(rc));
			atomic_store(&c->failed, 1);
		}
	}
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
	mq_conn *c = obj;

	(void)m;
	(void)mid;
	if (n != 1 || granted[0] != 1) {
		relay__error(c->run, "subscription not granted at QoS 1", NULL);
		atomic_store(&c->failed, 1);
		return;
	}
	atomic_store(&c->subscribed, 1);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	mq_conn *c = obj;
	relay_sender *s = c->s;
	uint64_t now = uv_hrtime();

	(void)m;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	relay__acked(c->run, s, c->mid_seq[mid & 0xffff], c->mid_t[mid & 0xffff], now);
	s->in_flight--;
	if (c->run->cfg->rate <= 0)
		fill_window_locked(c, now);
	pthread_mutex_unlock(&s->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	mq_conn *c = obj;

	(void)m;
	if (c->st)
		relay__check_body(c->run, c->st, msg->payload, (size_t)msg->payloadlen, c->idx, uv_hrtime());
}

static void kick(void *ctx)
{
	mq_engine *e = ctx;
	unsigned i;

	for (i = 0; i < e->run.cfg->senders; i++) {
		pthread_mutex_lock(&e->c[i].s->mu);
		fill_window_locked(&e->c[i], uv_hrtime());
		pthread_mutex_unlock(&e->c[i].s->mu);
	}
}

static void tick(void *ctx, uint64_t now)
{
	kick(ctx);
	(void)now;
}

int relay__engine_mqtt_lib(const relay_cfg *cfg, relay_result *res)
{
	mq_engine e;
	char host[INET6_ADDRSTRLEN], id[96];
	unsigned i, n = cfg->conns, ready;
	uint64_t t_open, deadline;
	int rc = PARLEY_OK;
	relay_driver d;

	memset(&e, 0, sizeof(e));
	if (cfg->target.addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&cfg->target.addr)->sin6_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&cfg->target.addr)->sin_addr, host, sizeof(host));
	rc = relay__run_init(&e.run, cfg);
	if (rc != PARLEY_OK)
		return rc;
	mosquitto_lib_init();
	e.c = parley__calloc(n, sizeof(*e.c));
	e.stats = parley__calloc(n, sizeof(*e.stats));
	if (!e.c || !e.stats) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	t_open = uv_hrtime();
	for (i = 0; i < n; i++) {
		mq_conn *c = &e.c[i];
		c->run = &e.run;
		c->idx = i;
		if (relay__is_receiver(cfg, i)) {
			c->st = relay__stats_new(e.stats, &e.nstats);
			if (!c->st) {
				rc = PARLEY_E_NOMEM;
				goto out;
			}
		}
		if (relay__is_sender(cfg, i)) {
			c->s = &e.run.senders[i];
			c->buf = parley__malloc(cfg->size);
			c->mid_t = parley__calloc(65536, sizeof(uint64_t));
			c->mid_seq = parley__calloc(65536, sizeof(uint64_t));
			if (!c->buf || !c->mid_t || !c->mid_seq) {
				rc = PARLEY_E_NOMEM;
				goto out;
			}
			snprintf(c->topic, sizeof(c->topic), "%s/r%u", cfg->run_tag, relay__receiver_of(cfg, i));
		}
		snprintf(id, sizeof(id), "%s-c%u", cfg->run_tag, i);
		c->m = mosquitto_new(id, false, c);
		if (!c->m) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
		mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
		/* No client-side cap: the window (or the open-loop backlog) bounds what is in flight, and a
		 * message queued inside libmosquitto would count client time as broker latency. */
		mosquitto_max_inflight_messages_set(c->m, 0);
		mosquitto_connect_callback_set(c->m, on_connect);
		mosquitto_subscribe_callback_set(c->m, on_subscribe);
		mosquitto_publish_callback_set(c->m, on_publish);
		mosquitto_message_callback_set(c->m, on_message);
		rc = mosquitto_connect(c->m, host, (int)cfg->target.port, 60);
		if (rc != MOSQ_ERR_SUCCESS) {
			relay__error(&e.run, "mqtt connect", mosquitto_strerror(rc));
			atomic_store(&c->failed, 1);
			continue;
		}
		rc = mosquitto_loop_start(c->m);
		if (rc != MOSQ_ERR_SUCCESS) {
			relay__error(&e.run, "mosquitto_loop_start", mosquitto_strerror(rc));
			atomic_store(&c->failed, 1);
			continue;
		}
		c->looping = 1;
	}
	rc = PARLEY_OK;
	deadline = t_open + (uint64_t)(cfg->connect_timeout_s * 1e9);
	for (;;) {
		unsigned failed = 0;
		ready = 0;
		for (i = 0; i < n; i++) {
			if (atomic_load(&e.c[i].failed))
				failed++;
			else if (atomic_load(&e.c[i].connected) && (!e.c[i].st || atomic_load(&e.c[i].subscribed)))
				ready++;
		}
		if (ready + failed == n || uv_hrtime() > deadline)
			break;
		uv_sleep(5);
	}
	d = (relay_driver){
		.kick = kick, .tick = cfg->rate > 0 ? tick : NULL, .ctx = &e, .stats = e.stats, .nstats = e.nstats};
	relay__drive_when_ready(&e.run, &d, res, ready, n, t_open);
out:
	if (e.c) {
		for (i = 0; i < n; i++) {
			mq_conn *c = &e.c[i];
			if (c->m && c->looping) {
				mosquitto_disconnect(c->m);
				mosquitto_loop_stop(c->m, false);
			}
			if (c->m)
				mosquitto_destroy(c->m);
		}
	}
	if (rc == PARLEY_OK)
		relay__collect(&e.run, e.stats, e.nstats, res);
	if (e.c) {
		for (i = 0; i < n; i++) {
			parley__free(e.c[i].st);
			parley__free(e.c[i].buf);
			parley__free(e.c[i].mid_t);
			parley__free(e.c[i].mid_seq);
		}
	}
	parley__free(e.c);
	parley__free(e.stats);
	relay__run_free(&e.run);
	mosquitto_lib_cleanup();
	return rc;
}
#endif
