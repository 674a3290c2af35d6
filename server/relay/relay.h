/* Relay: durable store-and-forward of end-to-end encrypted envelopes. docs/protocol.md §10.
 *
 * The module, by file:
 *   relay.c     transport-free service calls (send, ack, find_peer, thread_peers, purge): validate,
 *               build the store job, report through the one completion type (base/svc.h) with the
 *               store job as result (NULL when refused before the store).
 *   deliver.c   relay_dev: one connection's delivery state machine (stream the stored queue with a
 *               bounded in-flight window, then live pushes). Sends through a hook, never a socket.
 *   routes.c    the service on the wire: send / ack / typing routes, fan-out of committed envelopes
 *               to the loops holding the recipients, the per-connection relay_dev, the TTL purge.
 *   presence.c  message requests: typing and presence pushes between mutually accepted contacts,
 *               the contact (accept/decline) and presence-setting routes.
 */
#ifndef PARLEYD_RELAY_H
#define PARLEYD_RELAY_H
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/svc.h"
#include "common/dynbuf.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"

#define RELAY_PURGE_BATCH 10000u

typedef struct relay_config {
	size_t max_content;     /* bytes per OutgoingMessage.content -> PARLEY_E_TOO_LARGE */
	unsigned queue_limit;   /* envelopes queued per device -> PARLEY_E_QUEUE_FULL */
	uint64_t ttl_ms;        /* envelopes older than this are purged, never delivered */
	unsigned max_inflight;  /* pushed but unacked envelopes per connection */
	uint64_t contact_ttl_ms;    /* acceptances unused this long are pruned */
	uint64_t purge_interval_ms; /* period of the purge (envelopes, then contacts) */
	int presence_share_default; /* for accounts without a presence setting */
	unsigned max_redeliveries;    /* unacked pushes before an envelope goes to the back (0: never) */
	uint64_t redelivery_grace_ms; /* a connection that acked nothing counts only if it lasted this long */
	unsigned sender_queue_limit;  /* queued envelopes one sender may hold per device (queue share) */
	double rate_burst, rate_per_sec; /* per-account send leaky bucket (burst 0: none) */
} relay_config;

/* From the configuration table (the only place defaults live); _defaults: the table's defaults. */
void relay__config_from(relay_config *c, const parleyd_config *cfg);
void relay__config_defaults(relay_config *c);

/* Every call reports once through cb(arg, status, const store_job *). For SEND the job holds the
 * server ids (msgs[i].server_id) or the missing/extra/stale device lists. */

/* Validates (content size, no cleartext receipt, duplicate device ids) and enqueues durably. */
void relay__send(const relay_config *c, store_client *sc, uint64_t account, uint32_t device, const char *handle,
		 const Parley__Wire__SendMessageRequest *req, uint64_t now_ms, svc_cb cb, void *arg);
void relay__ack(store_client *sc, uint64_t account, uint32_t device, const Parley__Wire__AckRequest *req,
		svc_cb cb, void *arg);
/* Message requests (store/sql/contacts.c). find_peer: handle -> account id and whether it and
 * `account` accepted each other (relay.recipient_account, .shared). thread_peers: the accounts that
 * should see `account`'s presence (mutual contacts; none if it does not share, unless `force`). contact_set: `account`
 * accepts (or, accept = 0, declines) handle. presence_set: the account's presence opt-in/out.
 * prune_contacts: drops acceptances older than contact_ttl_ms. */
void relay__find_peer(store_client *sc, uint64_t account, const char *handle, svc_cb cb, void *arg);
void relay__thread_peers(const relay_config *c, store_client *sc, uint64_t account, int force, svc_cb cb,
			 void *arg);
void relay__contact_set(store_client *sc, uint64_t account, const char *handle, int accept, uint64_t now_ms,
			svc_cb cb, void *arg);
void relay__presence_set(store_client *sc, uint64_t account, int share, svc_cb cb, void *arg);
void relay__prune_contacts(const relay_config *c, store_client *sc, uint64_t now_ms, svc_cb cb, void *arg);
void relay__purge(store_client *sc, uint64_t now_ms, svc_cb cb, void *arg);
/* A connection closed with `ids` pushed and not acknowledged: one more unacked delivery each; those that
 * reach c->max_redeliveries move to the back of the queue (job->relay.n_deleted of them). */
void relay__redelivered(const relay_config *c, store_client *sc, uint64_t account, uint32_t device,
			const uint64_t *ids, size_t n, svc_cb cb, void *arg);

/* Per-loop send rate limit: one leaky bucket per sending account, in a fixed table (an account whose
 * bucket is pushed out by others starts over: bounded memory, the same trade-off as the key server's
 * bundle limit). Not shared between loops: an account spread over N loops gets up to N times the rate. */
#define RELAY_RL_SLOTS 4096
#define RELAY_RL_PROBES 8
typedef struct relay_limiter {
	struct relay_bucket {
		uint64_t account; /* 0: free */
		uint64_t last_ms;
		double level;
	} slots[RELAY_RL_SLOTS];
} relay_limiter;
/* 0 if `account` may send one more message now, else the ms until it may. */
uint64_t relay__rate_take(relay_limiter *l, const relay_config *c, uint64_t account, uint64_t now_ms);
/* routes.c: one send of `account` taken from the limiter of loop w (the relay's per-loop table, so a
 * ThreadSend and a SendMessage draw on the same bucket): PARLEY_OK or PARLEY_E_SEND_RATE_LIMITED
 * (counted as a refused sender). Call on a loop thread. */
struct worker;
int relay__rate_check(struct worker *w, const relay_config *c, uint64_t account);

/* Encodes Push{Envelope} into out (appended). */
int relay__encode_envelope(dynbuf *out, const store_envelope *e, uint64_t recipient_account,
			   uint32_t recipient_device);

/* routes.c, also for server/threads: after the commit of envelope e to (account, device), hands it to
 * the loops where that device is connected (MBOX_RESYNC: never lost, at worst read again from the
 * store). Call on a loop thread. */
struct worker;
void relay__post_envelope(struct worker *w, const store_envelope *e, uint64_t account, uint32_t device);

/* --- per-connection delivery (deliver.c) --- */

/* How a relay_dev reaches its connection. `send` copies the frame (PARLEY_E_CLOSED once gone);
 * hold/release keep the owner alive while a queue read is in flight. */
typedef struct relay_dev_ops {
	int (*send)(void *owner, const uint8_t *buf, size_t len);
	void (*hold)(void *owner);
	void (*release)(void *owner);
} relay_dev_ops;

typedef struct relay_dev {
	const relay_dev_ops *ops;
	void *owner;
	const relay_config *cfg;
	store_client *sc;
	dynbuf *out;     /* the loop's scratch buffer */
	uint64_t account;
	uint32_t device;
	unsigned inflight;  /* pushed and not yet acknowledged: the live ids in pending */
	uint64_t *pending;  /* the in-flight ids (deliver.c); NULL while nothing is in flight */
	unsigned cap, head, tail;
	uint64_t last_pushed;
	uint8_t active;     /* started and not stopped */
	uint8_t backlog;    /* streaming from the store; live notices only set `more` */
	uint8_t reading;    /* a FETCH_QUEUE job is in flight */
	uint8_t more;       /* something arrived since the last read started */
	uint8_t sent_empty; /* QueueEmpty pushed once */
	uint8_t acked_any;  /* this connection acknowledged something it was pushed */
	uint64_t started_ms; /* parley__wall_ms at start: a long connection that acks nothing counts too */
} relay_dev;

/* After auth: start streaming the stored queue. The caller filled ops, owner, cfg, sc, out, account,
 * device; everything else zero. */
void relay__dev_start(relay_dev *d);
/* A live envelope (an encoded Push frame) for this device, committed with `server_id`. */
void relay__dev_live(relay_dev *d, uint64_t server_id, const uint8_t *frame, size_t len);
/* Live notices may have been lost (mailbox overflow): read from the store again. */
void relay__dev_resync(relay_dev *d);
/* The device sent an ack for `ids`: called when the AckRequest arrives, not when its delete commits.
 * The in-flight window bounds what the device has been sent and not yet confirmed; the device has
 * confirmed these ids, so the window reopens at once and the next queue read can share a commit with
 * the delete instead of waiting for it (waiting made deliveries fall behind sends under load). An id
 * counts only if this connection pushed it and it is still in flight, and then once (it leaves the set):
 * repeated ids, ids never pushed here (another device's, made up) and ids already acked do not reopen
 * the window, so a device cannot pull its backlog past max_inflight by acking what it never received. */
void relay__dev_acked(relay_dev *d, const uint64_t *ids, size_t n);
/* The connection closed: no more sends, the in-flight set is freed. A read in flight finishes and
 * releases the owner. What was still in flight counts as one unacknowledged delivery (relay__redelivered)
 * if the connection acknowledged something or lasted redelivery_grace_ms: a device reading its queue
 * that leaves envelopes unacknowledged cannot process them, and on the next connection they would be
 * pushed first again; after max_redeliveries such connections they go to the back of the queue, so
 * they can never hold the window against newer envelopes (security item 1). */
void relay__dev_stop(relay_dev *d);

/* --- the service (routes.c, presence.c) --- */

struct service;
extern const struct service relay__service;

/* presence.c: push the account's online state to its mutual contacts, typing to one of them, and the
 * routes that change who those are. */
struct worker;
void relay__presence_changed(struct worker *w, const relay_config *c, uint64_t account, const char *handle,
			     int online);
struct request;
void relay__route_typing(struct request *rq, const Parley__Wire__Request *req);
void relay__route_contact(struct request *rq, const Parley__Wire__Request *req);
void relay__route_presence_setting(struct request *rq, const Parley__Wire__Request *req);

#endif
