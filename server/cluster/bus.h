/* The cluster bus: the parleyd nodes sharing one PostgreSQL store, linked by NATS.
 *
 * What crosses it (docs/architecture.md, "Several nodes"):
 *   parley.a.<account>  mailbox items (service.h) for the loops of other nodes that hold a connection
 *                       of that account; a node subscribes while it holds one (interest)
 *   parley.n.<node>     this node's private subject: the echo that tells it a subscription is live
 *   parley.p            presence: a node's online/offline edges and snapshots of its online set
 *   parley.p.sync       "send me your online set" (a node that joins, or sees an unknown node)
 *   parley.hb           heartbeats: a node silent for node_timeout_ms is forgotten, its accounts offline
 * NATS drops messages nobody subscribed to, so no directory of "who holds X" is kept anywhere.
 *
 * Threads: one NATS connection per process, driven by a dedicated "bus" thread running its own uv loop
 * (libnats' libuv adapter). Messages arrive on libnats' global delivery thread and reach the caller
 * through the hooks below. Every function here may be called from any thread and never blocks on the
 * network: subscriptions are queued to the bus thread, publishes only append to the connection's buffer.
 *
 * The bus knows nothing of services or loops: the dispatcher (dispatch/remote.c) translates.
 */
#ifndef PARLEYD_CLUSTER_BUS_H
#define PARLEYD_CLUSTER_BUS_H
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"

/* Structural bound of the presence view (one bit per node per online account), like the registry's
 * REGISTRY_MAX_WORKERS: a node beyond it is logged and left out of presence (items still flow). */
#define CLUSTER_MAX_NODES 64
/* An item's handler index reserved for "read the store again for (account, device)": what an item
 * becomes when it is too large to publish but is backed by durable state (MBOX_RESYNC). */
#define CLUSTER_HANDLER_RESYNC 0xffu
#define CLUSTER_ITEM_HEADER 36u
/* the longest handle presence carries (STORE_MAX_HANDLE; remote.c asserts they agree) */
#define CLUSTER_MAX_HANDLE 32u
/* enum mbox_policy's MBOX_RESYNC (dispatch/service.h; remote.c asserts they agree) */
#define CLUSTER_POLICY_RESYNC 1u

typedef struct cluster cluster;

/* One mailbox item as it crosses the bus. data points into the message (valid during the hook only). */
typedef struct cluster_item {
	uint64_t origin;   /* node id of the publisher */
	uint64_t account;
	uint32_t device;   /* 0: every device of the account */
	uint8_t service;   /* index in the process's service list */
	uint8_t handler;   /* index in that service's mailbox list, or CLUSTER_HANDLER_RESYNC */
	uint8_t policy;    /* enum mbox_policy */
	uint64_t u64;
	size_t len;
	const uint8_t *data;
} cluster_item;

/* How the bus reaches its owner. Every hook is called without any lock of the bus held, from libnats'
 * delivery thread (items, resyncs) or its connection threads (reconnected). */
typedef struct cluster_hooks {
	void *ctx;
	/* 1 if (service, handler) names a mailbox handler and policy is known: anything else is dropped */
	int (*valid)(void *ctx, unsigned service, unsigned handler, unsigned policy);
	/* a valid item from another node, for the account this node subscribed to */
	void (*on_item)(void *ctx, const cluster_item *it);
	/* items for `account` may have been missed (just subscribed, or the subscription overflowed):
	 * read the store again for it */
	void (*on_resync)(void *ctx, uint64_t account);
	/* the connection to NATS came back: anything may have been missed while it was down */
	void (*on_reconnected)(void *ctx);
	/* a node was forgotten (silent for node_timeout_ms: it died) and `account` it held is now online
	 * nowhere: tell its contacts. Called on one node only, the live one with the smallest id, from the
	 * bus thread. */
	void (*on_offline)(void *ctx, uint64_t account, const char *handle);
} cluster_hooks;

typedef struct cluster_config {
	char url[CONFIG_STR_MAX];   /* nats://host:port[,nats://host:port...] */
	unsigned heartbeat_ms;
	unsigned node_timeout_ms;
	unsigned max_pending;       /* messages per subscription before libnats drops (slow consumer) */
	size_t max_item_bytes;      /* data of one item */
	unsigned connect_timeout_ms;
} cluster_config;

/* bus_* keys of the configuration table. */
void cluster__config_from(cluster_config *cc, const parleyd_config *cfg);

/* Starts the bus thread, which connects (and keeps reconnecting, with backoff, for ever). Returns
 * PARLEY_OK even when NATS is not reachable yet (cluster__ready says when it is); PARLEY_E_CONFIG for a
 * bad URL list, PARLEY_E_NOMEM, PARLEY_E_INTERNAL. hooks is copied. */
int cluster__open(const cluster_config *cfg, const cluster_hooks *hooks, cluster **out);
/* Stops the thread and closes the connection; no hook runs once it returns. NULL is a no-op. */
void cluster__close(cluster *c);

/* 1 while connected to a NATS server (for /healthz readiness). */
int cluster__ready(const cluster *c);
/* The same as a readiness check of the network layer (net_ready_fn: arg is the cluster): 0 with the
 * reason "not connected to NATS" while the connection is down. Any thread, never blocks. */
int cluster__ready_check(void *arg, char *reason, size_t cap);
uint64_t cluster__node_id(const cluster *c);

/* Publishes an item (its origin is set here) on parley.a.<account>. PARLEY_E_TOO_LARGE beyond
 * max_item_bytes (a MBOX_RESYNC item is then published as a resync notice instead), PARLEY_E_CLOSED
 * when not connected yet. */
int cluster__publish(cluster *c, const cluster_item *it);

/* This process's account edges (its first connection came / its last one left). Queues the
 * subscription change to the bus thread, publishes the edge (with the account's handle, NULL: none) for
 * the other nodes, and returns 1 when the
 * edge is cluster-wide (no live node reports the account online), 0 otherwise. Calls for one account
 * must be serialised by the caller (the registry's lock does it). */
int cluster__local_edge(cluster *c, uint64_t account, const char *handle, int online);
/* 1 if the account has a connection on this node or any live node reports it online. */
int cluster__online(cluster *c, uint64_t account);
/* How many live other nodes report the account online. */
unsigned cluster__remote_nodes(cluster *c, uint64_t account);

typedef struct cluster_stats {
	uint64_t published, received, dropped, reconnects, resyncs;
	unsigned nodes; /* live remote nodes */
	unsigned subscriptions;
} cluster_stats;
void cluster__stats(cluster *c, cluster_stats *out);

#endif
