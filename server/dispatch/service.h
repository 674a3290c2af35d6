/* The contract between the dispatcher and the services (accounts, keys, relay; later entities, groups,
 * auth, channels). A service never sees a socket, a frame decoder or another service's state.
 *
 * A service is a `service` descriptor (below): its rows of the route table (one handler per request
 * kind, in the service's own routes.c, the way mosquitto has one handle_*.c per packet type) and the
 * hooks it needs. parleyd lists the descriptors once (server/services.c); the dispatcher assembles the
 * route table from them and calls the hooks.
 *
 * The objects a service works with:
 *   request  one request in flight. The route handler ends it exactly once with request__reply or
 *            request__fail, from within the handler or later on the same loop thread.
 *   link     one client connection as the services see it (authenticated or not). Services keep their
 *            per-connection state in the link's slots and send through link__send.
 *   worker   one loop thread's context: its store client, a scratch buffer, its mailbox and the index
 *            of its links. Services reach other loops only through worker__post.
 *
 * Threads: everything here runs on the loop thread that owns the worker / link / request, except
 * worker__post's delivery, which runs on the target loop.
 */
#ifndef PARLEYD_DISPATCH_SERVICE_H
#define PARLEYD_DISPATCH_SERVICE_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/config.h"
#include "base/svc.h"
#include "common/clock.h"
#include "common/dynbuf.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"

typedef struct worker worker;
struct link;
typedef struct request request;
typedef struct service service;

/* --- requests --- */

struct request {
	worker *w;
	struct link *ln;          /* its connection; it may close before the answer (the answer is then dropped) */
	void *svc;         /* the state of the service that owns the route (service.init's result) */
	uint64_t id;
	/* the caller, copied when the request arrived (0 / "" before authentication) */
	uint64_t account;
	uint32_t device;
	char handle[STORE_MAX_HANDLE + 1];
	/* private to the dispatcher */
	int kind_;
	uint32_t bytes_;   /* size of its frame, counted against loop_max_request_bytes */
	uint64_t t0_;
};

/* Encodes and sends the response (id and, for errors, a default message filled in), records the
 * latency, and frees rq. resp stays the caller's. */
void request__reply(request *rq, Parley__Wire__Response *resp);
/* request__reply with status err and no body. */
void request__fail(request *rq, int err);

typedef void (*route_fn)(request *rq, const Parley__Wire__Request *req);

typedef struct route {
	int body_case;     /* PARLEY__WIRE__REQUEST__BODY_* */
	const char *name;  /* metrics label */
	int needs_auth;    /* refused with UNAUTHENTICATED before authentication */
	route_fn fn;
} route;

/* --- links --- */

/* Per-connection state of the services, one slot each (NULL until a service sets it). A service that
 * needs per-connection state appends its slot here. */
enum link_slot { LINK_SLOT_AUTH, LINK_SLOT_RELAY, LINK_SLOT__COUNT };

void **link__slot(struct link *l, enum link_slot s);
worker *link__worker(const struct link *l);
const char *link__peer(const struct link *l);

/* Queues one frame (copied). PARLEY_E_CLOSED once the connection is closing or gone. */
int link__send(struct link *l, const uint8_t *buf, size_t len);
int link__is_open(const struct link *l);
/* Starts closing with a WebSocket close code; a no-op once closed. */
void link__close(struct link *l, uint16_t code, const char *reason);

/* Keeps the link's memory (not the connection) alive across an asynchronous step that is not a
 * request (a request holds its link already). Every hold needs one release. */
void link__hold(struct link *l);
void link__release(struct link *l);

/* The connection is now (account, device) of `handle`: registers it in the worker's index and the
 * process registry, then runs every service's link_auth hook. Call once. */
void link__authenticate(struct link *l, uint64_t account, uint32_t device, const char *handle);
int link__authenticated(const struct link *l);
uint64_t link__account(const struct link *l);
uint32_t link__device(const struct link *l);
const char *link__handle(const struct link *l);
/* In link_auth: 1 if this connection brought its account online (no other device was connected).
 * In link_close: -1 if it was the account's last connected device. 0 otherwise. */
int link__presence_edge(const struct link *l);

/* --- workers --- */

store_client *worker__store(worker *w);
/* A buffer for encoding one frame; link__send copies, so it is free again when the send returns. */
dynbuf *worker__scratch(worker *w);
int worker__index(const worker *w);
uv_loop_t *worker__loop(worker *w);
const parleyd_config *worker__config(const worker *w);
/* The per-loop state a service created in worker_start. */
void *worker__state(worker *w, const service *s);

/* Calls fn(l, arg) for every link of (account, device) on this loop; device 0: every device of the
 * account. O(links of that account), whatever the number of connections on the loop. fn may close the
 * link (it stays valid until fn returns). */
void worker__each_link(worker *w, uint64_t account, uint32_t device, void (*fn)(struct link *l, void *arg), void *arg);
/* Calls fn for every authenticated link of this loop (mailbox overflow recovery only). */
void worker__each_authenticated(worker *w, void (*fn)(struct link *l, void *arg), void *arg);

/* Cross-loop work. An item is a frame (or any bytes) plus a few numbers, handed to fn on each loop that
 * holds a connection of (account, device) (device 0: of any device of the account); on the calling loop
 * fn runs at once, inside worker__post. Each loop's mailbox is bounded (config mailbox_items); what
 * happens when it is full depends on the item's policy. */
typedef struct mbox_item {
	struct mbox_item *next;
	void (*fn)(worker *w, const struct mbox_item *it);
	const service *svc;
	uint64_t account;
	uint32_t device;
	uint64_t u64;      /* the poster's number (an envelope's server id) */
	size_t len;
	uint8_t data[];
} mbox_item;

enum mbox_policy {
	/* Ephemeral (typing, presence, prekeys-low): dropped when the target mailbox is full, and counted
	 * (parley_mailbox_dropped_total). */
	MBOX_DROP,
	/* Backed by durable state (a new-envelope notice): when full, the target loop is flagged instead,
	 * and on its next turn every service's `resync` hook re-reads from the store: late, never lost. */
	MBOX_RESYNC,
	/* Must arrive (a device removal closing that device's connections): queued even beyond the
	 * bound. Only committed store writes produce these, so their rate is bounded by the store's. */
	MBOX_MUST,
};

/* A mailbox handler. Between nodes (server/cluster) an item names its handler by its index in its
 * service's `mailbox` list (function pointers do not cross processes): every handler a service posts
 * must be listed there, or its items stay on this node (logged once). */
typedef void (*mbox_fn)(worker *w, const mbox_item *it);

/* Delivers on this node's loops as described above and, on a cluster (bus set), publishes the item for
 * the other nodes' loops (cluster/bus.h); there it arrives with the same policy.
 * Returns PARLEY_OK, or PARLEY_E_NOMEM if some loop could not be given the item (a MBOX_RESYNC item
 * then flags that loop, so even this is recovered). */
int worker__post(worker *w, const service *svc, enum mbox_policy policy, uint64_t account, uint32_t device,
		 uint64_t u64, const uint8_t *data, size_t len, void (*fn)(worker *w, const mbox_item *it));

/* A ready-made mailbox handler: sends it->data as one frame to every open link of (account, device)
 * on the target loop (device 0: every device of the account). For pushes that need no per-link state. */
void worker__send_frame(worker *w, const mbox_item *it);


/* --- plain HTTP pages answered later (the customer-authentication pages, net's NET_ASYNC_PREFIX) --- */

/* One GET a service took; answered exactly once with http_reply__send, on the same loop. Services see
 * no socket: this is the connection as an opaque answer slot. */
typedef struct http_reply http_reply;
/* status, Location (a 302) or NULL, an HTML body (copied). */
void http_reply__send(http_reply *r, int status, const char *location, const char *html);

/* --- the service descriptor --- */

struct service {
	const char *name;
	const route *routes;
	size_t n_routes;
	/* Every hook is optional. init runs once at start-up (before any loop) with the configuration
	 * table; its *state is the `svc` of requests and hooks. */
	int (*init)(const parleyd_config *cfg, void **state);
	void (*fini)(void *state);
	/* On each loop thread, before it accepts connections / after its last one closed. */
	int (*worker_start)(worker *w, void *state, void **wstate);
	void (*worker_stop)(worker *w, void *state, void *wstate);
	/* A connection opened / authenticated / closed (no more sends possible) / is being freed (no
	 * request of it is in flight any more: free what the slots hold). */
	void (*link_open)(struct link *l, void *state);
	void (*link_auth)(struct link *l, void *state);
	void (*link_close)(struct link *l, void *state);
	void (*link_free)(struct link *l, void *state);
	/* This loop's mailbox overflowed and MBOX_RESYNC items were not queued: catch up from the store. */
	void (*resync)(worker *w, void *state);
	/* A GET under /v1/auth/ on the public listener: return 1 when taken (then answer `reply`), 0 when
	 * not this service's. url: path and query, valid during the call only. */
	int (*http_get)(worker *w, void *state, const char *url, http_reply *reply);
	/* Items for this link's account may have been missed (another node's wake-up raced this node's
	 * subscription, or overflowed it): catch up from the store, for this link only. */
	void (*resync_link)(struct link *l, void *state);
	/* On a cluster: another node died holding the last connections of `account` (its handle): push
	 * the "offline" a last link_close would have (runs on one loop of one node). */
	void (*presence_lost)(worker *w, void *state, uint64_t account, const char *handle);
	/* The mailbox handlers this service posts (SERVICE_MAILBOX), for items crossing nodes. */
	const mbox_fn *mailbox;
	size_t n_mailbox;
};

/* Fills a descriptor's route rows from one static array. */
#define SERVICE_ROUTES(rows) .routes = (rows), .n_routes = sizeof(rows) / sizeof((rows)[0])
/* Lists a descriptor's mailbox handlers from one static array. */
#define SERVICE_MAILBOX(fns) .mailbox = (fns), .n_mailbox = sizeof(fns) / sizeof((fns)[0])
/* A fini for services whose state is one parley__malloc'd block. */
void service__free_state(void *state);

/* The process-wide state (init's result) of a service, for mailbox handlers and timers. */
void *worker__service(worker *w, const service *s);

#endif
