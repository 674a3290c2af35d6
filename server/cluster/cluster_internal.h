/* Internals shared by bus.c (the thread, the connection, items and subscriptions) and presence.c (the
 * cluster-wide presence view, heartbeats, snapshots). */
#ifndef PARLEYD_CLUSTER_INTERNAL_H
#define PARLEYD_CLUSTER_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>

#include <nats/nats.h>
#include <uv.h>

#include "base/metrics.h"
#include "cluster/bus.h"
#include "cluster/map.h"
#include "cluster/wire.h"

#define CLUSTER_MAX_SERVERS 16
#define CLUSTER_SUBJECT_MAX 64

/* the state an account's subscription should reach, queued for the bus thread: one entry per account
 * however many edges it had meanwhile (while NATS is down at start-up nothing runs, and churn must not
 * grow the queue) */
struct bus_want {
	u64map_entry hdr; /* key: the account */
	int subscribe;
};

struct bus_sub {
	u64map_entry hdr; /* key: the account */
	natsSubscription *sub;
};

/* presence: which live remote nodes report the account online (bit = node slot), and whether this
 * node holds a connection of it */
struct pres_entry {
	u64map_entry hdr;
	uint64_t remote;
	uint8_t local;
	char handle[CLUSTER_MAX_HANDLE + 1]; /* the last one an edge or snapshot named ("" if none) */
};

struct bus_node {
	uint64_t id; /* 0: free slot */
	uint64_t last_seen_ms;
};

struct cluster {
	cluster_config cfg;
	cluster_hooks hooks;
	uint64_t self;
	char self_subject[CLUSTER_SUBJECT_MAX]; /* parley.n.<self> */
	char url_buf[CONFIG_STR_MAX];
	const char *servers[CLUSTER_MAX_SERVERS];
	int n_servers;
	natsOptions *opts;

	/* the bus thread and its loop */
	pthread_t thread;
	int thread_started;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t tick, retry;
	unsigned retry_ms;
	natsConnection *_Atomic nc; /* set once by the bus thread; NULL until the first connect */
	atomic_int connected;
	atomic_int stopping;

	/* subscription changes (mu), the subscriptions (changed by the bus thread only, under mu) */
	pthread_mutex_t mu;
	u64map want;
	u64map subs;
	natsSubscription *core[4];

	/* hooks in flight on libnats' threads, subscriptions whose handler may still run, and whether the
	 * connection's last callback ran: cluster__close waits for all three before freeing (mu) */
	pthread_cond_t idle;
	unsigned in_hooks;
	unsigned live_subs;
	int closed;

	/* presence (pmu): presence messages are published under it, so a snapshot and the edges around it
	 * leave in the order the view changed */
	pthread_mutex_t pmu;
	u64map pres;
	struct bus_node nodes[CLUSTER_MAX_NODES];

	atomic_uint_fast64_t published, received, dropped, reconnects, resyncs;
};

uint64_t cluster__now_ms(void);
/* Adds one to a counter of this bus and to its process-wide metric. */
void cluster__count(atomic_uint_fast64_t *ctr, enum metric_id id);
/* The guard of hook calls from libnats' threads: enter returns 0 when closing (then do nothing). */
int cluster__enter(cluster *c);
void cluster__leave(cluster *c);
/* Publishes on the current connection; PARLEY_E_CLOSED when there is none. Counts it. */
int cluster__send(cluster *c, const char *subject, const char *reply, const uint8_t *buf, size_t len);
/* Queues a subscription change (parley.a.<account>) for the bus thread. */
int cluster__queue_interest(cluster *c, uint64_t account, int subscribe);

/* presence.c, on the bus thread: after a connect or reconnect (announce ourselves, ask for the others'
 * online sets), and the periodic tick (heartbeat, expiry of silent nodes). */
void presence__connected(cluster *c);
void presence__tick(cluster *c);
/* presence.c, on libnats' delivery thread: parley.p, parley.p.sync, parley.hb */
void presence__on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);
void presence__free(cluster *c);

#endif
