/* The cluster bus: the bus thread, its NATS connection, items and subscriptions. See bus.h.
 *
 * The connection runs on libnats' libuv adapter, attached to this module's own loop: the first attach
 * must happen on the loop's thread, so the bus thread itself connects (and retries the first connect
 * with backoff; once connected, libnats reconnects by itself, for ever, with the backoff below).
 * Messages are delivered by libnats' global delivery pool (never a thread per subscription).
 *
 * Interest: a subscription to parley.a.<account> is live while this node holds a connection of it.
 * SUB travels before this node read the account's queue only in the best case; an envelope committed
 * elsewhere in between would wait for the next wake-up. So after each SUB the bus thread publishes to
 * its own subject parley.n.<self>: the server handles a client's messages in order, so when that echo
 * comes back the SUB is in force, and a resync of the account (a store read) then sees everything
 * whose wake-up could have been missed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <parley/error.h>

/* the adapter is a header of function definitions without prototypes: compiled here, once */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wshadow"
#include <nats/adapters/libuv.h>
#pragma GCC diagnostic pop

#include "base/log.h"
#include "base/metrics.h"
#include "cluster/cluster_internal.h"
#include "common/alloc.h"

#define MODULE "cluster"
#define RETRY_MIN_MS 100u
#define RETRY_MAX_MS 2000u
#define SUBJECT_ITEMS "parley.a."
#define CLOSE_WAIT_S 5

void cluster__config_from(cluster_config *cc, const parleyd_config *cfg)
{
	memset(cc, 0, sizeof(*cc));
	snprintf(cc->url, sizeof(cc->url), "%s", cfg->bus);
	cc->heartbeat_ms = (unsigned)cfg->bus_heartbeat_ms;
	cc->node_timeout_ms = (unsigned)cfg->bus_node_timeout_ms;
	cc->max_pending = (unsigned)cfg->bus_max_pending;
	cc->max_item_bytes = (size_t)cfg->bus_max_item_bytes;
	cc->connect_timeout_ms = 2000;
}

/* --- small helpers --- */

uint64_t cluster__now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

void cluster__count(atomic_uint_fast64_t *ctr, enum metric_id id)
{
	atomic_fetch_add(ctr, 1);
	metrics__inc(id);
}

int cluster__enter(cluster *c)
{
	pthread_mutex_lock(&c->mu);
	int ok = !atomic_load(&c->stopping);
	if (ok)
		c->in_hooks++;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

void cluster__leave(cluster *c)
{
	pthread_mutex_lock(&c->mu);
	if (--c->in_hooks == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->mu);
}

int cluster__send(cluster *c, const char *subject, const char *reply, const uint8_t *buf, size_t len)
{
	natsConnection *nc = atomic_load(&c->nc);
	if (nc == NULL || atomic_load(&c->stopping))
		return PARLEY_E_CLOSED;
	/* with an event loop, publishing only appends to the connection's buffer: never blocks */
	natsStatus s = reply != NULL ? natsConnection_PublishRequest(nc, subject, reply, buf, (int)len)
				     : natsConnection_Publish(nc, subject, buf, (int)len);
	if (s != NATS_OK) {
		cluster__count(&c->dropped, METRIC_BUS_DROPPED);
		return PARLEY_E_CLOSED;
	}
	cluster__count(&c->published, METRIC_BUS_PUBLISHED);
	return PARLEY_OK;
}

int cluster__ready(const cluster *c)
{
	return c != NULL && atomic_load(&((cluster *)c)->connected);
}

int cluster__ready_check(void *arg, char *reason, size_t cap)
{
	if (cluster__ready(arg))
		return 1;
	snprintf(reason, cap, "not connected to NATS");
	return 0;
}

uint64_t cluster__node_id(const cluster *c)
{
	return c->self;
}

void cluster__stats(cluster *c, cluster_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->published = atomic_load(&c->published);
	out->received = atomic_load(&c->received);
	out->dropped = atomic_load(&c->dropped);
	out->reconnects = atomic_load(&c->reconnects);
	out->resyncs = atomic_load(&c->resyncs);
	pthread_mutex_lock(&c->pmu);
	for (int i = 0; i < CLUSTER_MAX_NODES; i++)
		out->nodes += c->nodes[i].id != 0;
	pthread_mutex_unlock(&c->pmu);
	pthread_mutex_lock(&c->mu);
	out->subscriptions = (unsigned)c->subs.n;
	pthread_mutex_unlock(&c->mu);
}

static void item_subject(char *buf, size_t cap, uint64_t account)
{
	snprintf(buf, cap, SUBJECT_ITEMS "%" PRIu64, account);
}

/* --- items --- */

int cluster__publish(cluster *c, const cluster_item *it)
{
	char subject[CLUSTER_SUBJECT_MAX];
	cluster_item notice;
	if (it->len > c->cfg.max_item_bytes) {
		cluster__count(&c->dropped, METRIC_BUS_DROPPED);
		/* durable: the other node may read it from the store instead */
		if (it->policy != CLUSTER_POLICY_RESYNC)
			return PARLEY_E_TOO_LARGE;
		notice = *it;
		notice.handler = CLUSTER_HANDLER_RESYNC;
		notice.len = 0;
		it = &notice;
	}
	uint8_t *buf = parley__malloc(CLUSTER_ITEM_HEADER + it->len);
	if (buf == NULL)
		return PARLEY_E_NOMEM;
	cluster__item_header(buf, it, c->self, (uint32_t)it->len);
	if (it->len > 0)
		memcpy(buf + CLUSTER_ITEM_HEADER, it->data, it->len);
	item_subject(subject, sizeof(subject), it->account);
	int rc = cluster__send(c, subject, NULL, buf, CLUSTER_ITEM_HEADER + it->len);
	parley__free(buf);
	if (rc == PARLEY_OK && it == &notice)
		return PARLEY_E_TOO_LARGE;
	return rc;
}

/* Parses and checks one item; 0 if it must be dropped. */
static int decode_item(cluster *c, const char *subject, const uint8_t *p, size_t n, cluster_item *it)
{
	char want[CLUSTER_SUBJECT_MAX];
	if (!cluster__item_parse(p, n, c->cfg.max_item_bytes, it))
		return 0;
	/* the subject is what routed it here: an item naming another account is forged or broken */
	item_subject(want, sizeof(want), it->account);
	if (strcmp(want, subject) != 0)
		return 0;
	if (it->handler == CLUSTER_HANDLER_RESYNC)
		return 1;
	return c->hooks.valid(c->hooks.ctx, it->service, it->handler, it->policy);
}

static void on_item_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	cluster *c = closure;
	(void)nc;
	(void)sub;
	if (cluster__enter(c)) {
		cluster_item it;
		const uint8_t *p = (const uint8_t *)natsMsg_GetData(msg);
		size_t n = (size_t)natsMsg_GetDataLength(msg);
		if (n >= CLUSTER_ITEM_HEADER && cluster__get_u64(p + 8) == c->self) {
			/* our own publish, echoed because we hold the account too: delivered locally already */
		} else if (!decode_item(c, natsMsg_GetSubject(msg), p, n, &it)) {
			cluster__count(&c->dropped, METRIC_BUS_DROPPED);
			log_debug(MODULE, "dropped a malformed item on %s (%zu bytes)", natsMsg_GetSubject(msg), n);
		} else {
			cluster__count(&c->received, METRIC_BUS_RECEIVED);
			if (it.handler == CLUSTER_HANDLER_RESYNC) {
				atomic_fetch_add(&c->resyncs, 1);
				c->hooks.on_resync(c->hooks.ctx, it.account);
			} else {
				c->hooks.on_item(c->hooks.ctx, &it);
			}
		}
		cluster__leave(c);
	}
	natsMsg_Destroy(msg);
}

/* parley.n.<self>: the echo of a SUB (its account) */
static void on_self_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	cluster *c = closure;
	(void)nc;
	(void)sub;
	if (cluster__enter(c)) {
		if (natsMsg_GetDataLength(msg) == 8) {
			atomic_fetch_add(&c->resyncs, 1);
			c->hooks.on_resync(c->hooks.ctx, cluster__get_u64((const uint8_t *)natsMsg_GetData(msg)));
		}
		cluster__leave(c);
	}
	natsMsg_Destroy(msg);
}

/* --- subscriptions (bus thread) --- */

/* libnats may run a subscription's handler once more after it is closed: count it until it says it
 * is done (cluster__close waits) */
static void on_sub_complete(void *closure)
{
	cluster *c = closure;
	pthread_mutex_lock(&c->mu);
	c->live_subs--;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->mu);
}

static void track(cluster *c, natsSubscription *sub)
{
	pthread_mutex_lock(&c->mu);
	if (natsSubscription_SetOnCompleteCB(sub, on_sub_complete, c) == NATS_OK)
		c->live_subs++;
	pthread_mutex_unlock(&c->mu);
}

static int set_limits(cluster *c, natsSubscription *sub)
{
	long long bytes = (long long)c->cfg.max_pending * (long long)(c->cfg.max_item_bytes + CLUSTER_ITEM_HEADER);
	if (bytes > INT_MAX)
		bytes = INT_MAX;
	return natsSubscription_SetPendingLimits(sub, (int)c->cfg.max_pending, (int)bytes) == NATS_OK;
}

static void subscribe_account(cluster *c, natsConnection *nc, uint64_t account)
{
	char subject[CLUSTER_SUBJECT_MAX];
	uint8_t echo[8];
	pthread_mutex_lock(&c->mu);
	struct bus_sub *s = u64map__put(&c->subs, account, sizeof(*s));
	pthread_mutex_unlock(&c->mu);
	if (s == NULL || s->sub != NULL)
		return;
	item_subject(subject, sizeof(subject), account);
	natsStatus st = natsConnection_Subscribe(&s->sub, nc, subject, on_item_msg, c);
	if (st == NATS_OK)
		track(c, s->sub);
	if (st != NATS_OK || !set_limits(c, s->sub)) {
		log_warn(MODULE, "subscribe %s: %s", subject, natsStatus_GetText(st));
		if (s->sub != NULL)
			natsSubscription_Destroy(s->sub);
		pthread_mutex_lock(&c->mu);
		u64map__del(&c->subs, account);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	cluster__put_u64(echo, account);
	(void)cluster__send(c, c->self_subject, NULL, echo, sizeof(echo));
}

static void unsubscribe_account(cluster *c, uint64_t account)
{
	pthread_mutex_lock(&c->mu);
	struct bus_sub *s = u64map__get(&c->subs, account);
	natsSubscription *sub = s != NULL ? s->sub : NULL;
	u64map__del(&c->subs, account);
	pthread_mutex_unlock(&c->mu);
	if (sub != NULL) {
		(void)natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
	}
}

/* Brings one account's subscription to the wanted state. A SUB then UNSUB then SUB that arrive
 * together leave the subscription as it was: it never stopped at the server, so nothing was missed. */
static int apply_want(void *entry, void *arg)
{
	const struct bus_want *w = entry;
	cluster *c = arg;
	natsConnection *nc = atomic_load(&c->nc);
	if (w->subscribe)
		subscribe_account(c, nc, w->hdr.key);
	else
		unsubscribe_account(c, w->hdr.key);
	return 1;
}

/* Runs the queued subscription changes (only once connected: until then they wait). */
static void run_cmds(cluster *c)
{
	if (atomic_load(&c->nc) == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	u64map batch = c->want;
	memset(&c->want, 0, sizeof(c->want));
	pthread_mutex_unlock(&c->mu);
	u64map__each(&batch, apply_want, c);
	u64map__free(&batch);
}

int cluster__queue_interest(cluster *c, uint64_t account, int subscribe)
{
	pthread_mutex_lock(&c->mu);
	struct bus_want *w = u64map__put(&c->want, account, sizeof(*w));
	if (w != NULL)
		w->subscribe = subscribe;
	pthread_mutex_unlock(&c->mu);
	if (w == NULL)
		return PARLEY_E_NOMEM;
	uv_async_send(&c->wake);
	return PARLEY_OK;
}

/* --- the connection --- */

static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	(void)nc;
	(void)closure;
	int64_t ms = RETRY_MIN_MS;
	for (int i = 0; i < attempts && ms < RETRY_MAX_MS; i++)
		ms *= 2;
	return ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	cluster *c = closure;
	(void)nc;
	atomic_store(&c->connected, 0);
	if (!atomic_load(&c->stopping))
		log_warn(MODULE, "disconnected from NATS; reconnecting");
}

/* the connection's last callback (after natsConnection_Close) */
static void on_closed(natsConnection *nc, void *closure)
{
	cluster *c = closure;
	(void)nc;
	pthread_mutex_lock(&c->mu);
	c->closed = 1;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->mu);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	cluster *c = closure;
	(void)nc;
	atomic_store(&c->connected, 1);
	cluster__count(&c->reconnects, METRIC_BUS_RECONNECTS);
	if (!cluster__enter(c))
		return;
	log_info(MODULE, "reconnected to NATS");
	/* wake-ups and presence edges of the outage are lost: announce ourselves again, catch up */
	presence__connected(c);
	c->hooks.on_reconnected(c->hooks.ctx);
	cluster__leave(c);
}

/* A subscription over max_pending: libnats dropped messages. An account's items are backed by the
 * store (or ephemeral): read it again. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	cluster *c = closure;
	(void)nc;
	if (err != NATS_SLOW_CONSUMER || sub == NULL || !cluster__enter(c))
		return;
	cluster__count(&c->dropped, METRIC_BUS_DROPPED);
	const char *subject = natsSubscription_GetSubject(sub);
	size_t pre = strlen(SUBJECT_ITEMS);
	if (subject != NULL && strncmp(subject, SUBJECT_ITEMS, pre) == 0) {
		char *end = NULL;
		errno = 0;
		unsigned long long account = strtoull(subject + pre, &end, 10);
		if (errno == 0 && end != NULL && *end == '\0') {
			atomic_fetch_add(&c->resyncs, 1);
			c->hooks.on_resync(c->hooks.ctx, account);
		}
	}
	cluster__leave(c);
}

static int subscribe_core(cluster *c, natsConnection *nc)
{
	static const char *const subjects[] = {"parley.p", "parley.p.sync", "parley.hb"};
	for (size_t i = 0; i < 4; i++) {
		natsStatus st = i < 3 ? natsConnection_Subscribe(&c->core[i], nc, subjects[i], presence__on_msg, c)
				      : natsConnection_Subscribe(&c->core[3], nc, c->self_subject, on_self_msg, c);
		if (st != NATS_OK)
			return PARLEY_E_INTERNAL;
		track(c, c->core[i]);
		if (!set_limits(c, c->core[i]))
			return PARLEY_E_INTERNAL;
	}
	return PARLEY_OK;
}

static void on_retry(uv_timer_t *t);

/* On the bus thread: the first connect (the adapter's first attach must run on the loop's thread). */
static void try_connect(cluster *c)
{
	natsConnection *nc = NULL;
	natsStatus s = natsConnection_Connect(&nc, c->opts);
	if (s != NATS_OK) {
		log_warn(MODULE, "NATS %s: %s; retrying in %u ms", c->cfg.url, natsStatus_GetText(s), c->retry_ms);
		uv_timer_start(&c->retry, on_retry, c->retry_ms, 0);
		c->retry_ms = c->retry_ms * 2 < RETRY_MAX_MS ? c->retry_ms * 2 : RETRY_MAX_MS;
		return;
	}
	atomic_store(&c->nc, nc);
	if (subscribe_core(c, nc) != PARLEY_OK)
		log_error(MODULE, "cannot subscribe to the presence subjects");
	atomic_store(&c->connected, 1);
	log_info(MODULE, "node %016" PRIx64 " connected to NATS %s", c->self, c->cfg.url);
	presence__connected(c);
	run_cmds(c);
}

static void on_retry(uv_timer_t *t)
{
	cluster *c = t->data;
	if (!atomic_load(&c->stopping))
		try_connect(c);
}

static void on_tick(uv_timer_t *t)
{
	cluster *c = t->data;
	if (atomic_load(&c->nc) != NULL)
		presence__tick(c);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_wake(uv_async_t *a)
{
	cluster *c = a->data;
	if (!atomic_load(&c->stopping)) {
		run_cmds(c);
		return;
	}
	natsConnection *nc = atomic_load(&c->nc);
	if (nc != NULL) {
		/* on the loop's thread: the adapter detaches at once, and its handles close with this loop */
		natsConnection_Close(nc);
	}
	close_handle((uv_handle_t *)&c->wake);
	close_handle((uv_handle_t *)&c->tick);
	close_handle((uv_handle_t *)&c->retry);
}

static void *bus_main(void *arg)
{
	cluster *c = arg;
	natsLibuv_SetThreadLocalLoop(&c->loop);
	try_connect(c);
	uv_timer_start(&c->tick, on_tick, c->cfg.heartbeat_ms, c->cfg.heartbeat_ms);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* --- open / close --- */

/* Splits the comma-separated URL list into c->servers. */
static int parse_servers(cluster *c)
{
	snprintf(c->url_buf, sizeof(c->url_buf), "%s", c->cfg.url);
	char *p = c->url_buf;
	while (*p != '\0') {
		char *comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		while (*p == ' ')
			p++;
		if (strncmp(p, "nats://", 7) != 0 || c->n_servers == CLUSTER_MAX_SERVERS) {
			log_error(MODULE, "bus: \"%s\" is not a nats:// URL (or more than %d of them)", p,
				  CLUSTER_MAX_SERVERS);
			return PARLEY_E_CONFIG;
		}
		c->servers[c->n_servers++] = p;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return c->n_servers > 0 ? PARLEY_OK : PARLEY_E_CONFIG;
}

static int make_options(cluster *c)
{
	char name[64];
	snprintf(name, sizeof(name), "parleyd-%016" PRIx64, c->self);
	natsOptions *o = NULL;
	if (natsOptions_Create(&o) != NATS_OK)
		return PARLEY_E_NOMEM;
	c->opts = o;
	int ok = natsOptions_SetServers(o, c->servers, c->n_servers) == NATS_OK &&
		 natsOptions_SetName(o, name) == NATS_OK &&
		 natsOptions_SetEventLoop(o, &c->loop, natsLibuv_Attach, natsLibuv_Read, natsLibuv_Write,
					  natsLibuv_Detach) == NATS_OK &&
		 natsOptions_UseGlobalMessageDelivery(o, true) == NATS_OK &&
		 natsOptions_SetAllowReconnect(o, true) == NATS_OK &&
		 natsOptions_SetMaxReconnect(o, -1) == NATS_OK &&
		 natsOptions_SetCustomReconnectDelay(o, reconnect_delay, c) == NATS_OK &&
		 natsOptions_SetTimeout(o, c->cfg.connect_timeout_ms) == NATS_OK &&
		 natsOptions_SetMaxPendingMsgs(o, (int)c->cfg.max_pending) == NATS_OK &&
		 natsOptions_SetDisconnectedCB(o, on_disconnected, c) == NATS_OK &&
		 natsOptions_SetReconnectedCB(o, on_reconnected, c) == NATS_OK &&
		 natsOptions_SetClosedCB(o, on_closed, c) == NATS_OK &&
		 natsOptions_SetErrorHandler(o, on_error, c) == NATS_OK;
	return ok ? PARLEY_OK : PARLEY_E_INTERNAL;
}

int cluster__open(const cluster_config *cfg, const cluster_hooks *hooks, cluster **out)
{
	static uv_once_t once = UV_ONCE_INIT;
	if (cfg == NULL || hooks == NULL || out == NULL || cfg->heartbeat_ms == 0 ||
	    cfg->node_timeout_ms <= cfg->heartbeat_ms || cfg->max_pending == 0)
		return PARLEY_E_INVAL;
	if (sodium_init() < 0)
		return PARLEY_E_CRYPTO;
	uv_once(&once, natsLibuv_Init);
	cluster *c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	c->cfg = *cfg;
	c->hooks = *hooks;
	while (c->self == 0)
		randombytes_buf(&c->self, sizeof(c->self));
	snprintf(c->self_subject, sizeof(c->self_subject), "parley.n.%016" PRIx64, c->self);
	c->retry_ms = RETRY_MIN_MS;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->pmu, NULL);
	pthread_cond_init(&c->idle, NULL);
	int rc = parse_servers(c);
	if (rc == PARLEY_OK)
		rc = make_options(c);
	if (rc == PARLEY_OK && uv_loop_init(&c->loop) != 0)
		rc = PARLEY_E_INTERNAL;
	if (rc != PARLEY_OK) {
		natsOptions_Destroy(c->opts);
		parley__free(c);
		return rc;
	}
	uv_async_init(&c->loop, &c->wake, on_wake);
	uv_timer_init(&c->loop, &c->tick);
	uv_timer_init(&c->loop, &c->retry);
	c->wake.data = c->tick.data = c->retry.data = c;
	if (pthread_create(&c->thread, NULL, bus_main, c) != 0) {
		c->thread_started = 0;
		cluster__close(c);
		return PARLEY_E_INTERNAL;
	}
	c->thread_started = 1;
	*out = c;
	return PARLEY_OK;
}

void cluster__close(cluster *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	atomic_store(&c->stopping, 1);
	while (c->in_hooks > 0)
		pthread_cond_wait(&c->idle, &c->mu);
	pthread_mutex_unlock(&c->mu);
	if (c->thread_started) {
		uv_async_send(&c->wake);
		pthread_join(c->thread, NULL);
	} else {
		on_wake(&c->wake);
		uv_run(&c->loop, UV_RUN_DEFAULT);
	}
	natsConnection *nc = atomic_load(&c->nc);
	/* libnats' threads may still hold c for a last handler or callback: wait for them (bounded; past
	 * the bound c is leaked rather than freed under them) */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLOSE_WAIT_S;
	int waited = 0;
	pthread_mutex_lock(&c->mu);
	while ((c->live_subs > 0 || (nc != NULL && !c->closed)) && waited == 0)
		waited = pthread_cond_timedwait(&c->idle, &c->mu, &until);
	pthread_mutex_unlock(&c->mu);
	if (waited != 0) {
		log_error(MODULE, "libnats did not release the bus within %d s: leaving it allocated", CLOSE_WAIT_S);
		return;
	}
	for (size_t i = 0; i < 4; i++)
		natsSubscription_Destroy(c->core[i]);
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->subs.nbuckets; i++)
		for (u64map_entry *e = c->subs.buckets[i]; e != NULL; e = e->next)
			natsSubscription_Destroy(((struct bus_sub *)e)->sub);
	u64map__free(&c->subs);
	u64map__free(&c->want);
	pthread_mutex_unlock(&c->mu);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(c->opts);
	uv_loop_close(&c->loop);
	presence__free(c);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->pmu);
	pthread_mutex_destroy(&c->mu);
	parley__free(c);
}
