/* Internals shared by dispatch.c (connections, requests, routing) and worker.c (the per-loop context,
 * its mailbox and link index). Services see none of this: they use service.h. */
#ifndef PARLEYD_DISPATCH_INTERNAL_H
#define PARLEYD_DISPATCH_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>

#include "dispatch/dispatch.h"
#include "dispatch/registry.h"
#include "dispatch/service.h"
#include "net/conn.h"
#include "wire/wire.h"

#define DISPATCH_MAX_SERVICES 16
#define DISPATCH_MAX_CASE 128 /* request oneof field numbers are below this (checked at start-up) */

struct link {
	net_conn *conn;          /* NULL once the connection is gone */
	worker *w;
	struct link *index_next;        /* the worker's index chain (authenticated links only) */
	uint64_t account;
	uint32_t device;
	unsigned refs;           /* the open connection + requests and holds in flight */
	uint8_t authenticated;
	uint8_t closed;
	int8_t presence_edge;    /* +1: its authentication brought the account online; -1: its close took it offline */
	uint8_t paused;          /* reading stopped by backpressure */
	uint8_t waits_loop;      /* on the worker's paused list: waits for the loop to get under its bounds */
	unsigned inflight;       /* its requests not answered yet (conn_max_requests) */
	struct link *pause_prev, *pause_next;
	char handle[STORE_MAX_HANDLE + 1];
	void *slot[LINK_SLOT__COUNT];
};

struct worker {
	dispatch *d;
	uv_loop_t *loop;
	int index;
	store_client *sc;
	dynbuf out;
	void *wstate[DISPATCH_MAX_SERVICES];

	/* The mailbox: the one uv_async of this layer. Woken by other loops (items) and by the store
	 * thread (completions); `running`, the list and `n` are guarded by mu. */
	uv_async_t async;
	pthread_mutex_t mu;
	int running;
	mbox_item *head, *tail;
	size_t n;
	atomic_int resync;       /* MBOX_RESYNC items were refused: catch up from the store */

	/* authenticated links by account: chained hash, grown at load 1 */
	struct link **buckets;
	size_t nbuckets, nlinks;

	/* backpressure: requests in flight on this loop and the links waiting for it to get under them */
	unsigned inflight;
	size_t inflight_bytes;
	struct link *paused;

	/* idle trim: requests served, as seen at the timer's last tick, and whether any came since the
	 * last trim */
	uv_timer_t trim;
	uint64_t served, served_seen;
	int trim_due;
};

struct route_entry {
	const route *r;
	const service *svc;
	void *state;
	int kind; /* metrics histogram */
};

struct dispatch {
	store *store;
	const parleyd_config *cfg;
	wire_limits limits;
	registry *reg;
	const service *const *services;
	size_t n_services;
	void *state[DISPATCH_MAX_SERVICES];
	struct route_entry by_case[DISPATCH_MAX_CASE];
	int kind_unknown;
	unsigned n_workers;
	size_t mailbox_cap;
	unsigned conn_max_requests, loop_max_requests;
	size_t loop_max_bytes;
	worker *workers;
	/* the cluster bus (NULL: one node), and per service whether an unlisted handler was logged */
	struct cluster *_Atomic bus;
	atomic_int unlisted_logged[DISPATCH_MAX_SERVICES];
};

/* worker.c */
int worker__start(dispatch *d, worker *w, int index, uv_loop_t *loop);
void worker__stop(worker *w);
int worker__index_add(worker *w, struct link *l);
void worker__index_remove(worker *w, struct link *l);
int worker__service_index(const dispatch *d, const service *s);
/* worker__post's delivery on this node's loops. w: the calling loop (its items run at once), or NULL
 * from a thread that is no loop (the bus: every loop gets the item through its mailbox). */
int worker__deliver(dispatch *d, worker *w, const service *svc, enum mbox_policy policy, uint64_t account,
		    uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn);
/* The same for one given loop (through its mailbox), whoever is connected there. From any thread. */
int worker__deliver_to(dispatch *d, unsigned index, const service *svc, enum mbox_policy policy, uint64_t account,
		       uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn);

/* remote.c: publishes an item for the other nodes (a no-op without a bus). */
void dispatch__publish(dispatch *d, const service *svc, enum mbox_policy policy, uint64_t account,
		       uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn);
/* remote.c: dispatch__new's check of the services' mailbox lists */
int dispatch__check_mailboxes(const dispatch *d);

#endif
