/* Relay: durable store-and-forward of end-to-end encrypted envelopes. docs/protocol.md §10.
 *
 * relay__send / relay__ack / relay__find_peer / relay__thread_peers are transport-free service calls
 * (callback exactly once, from within the call or later on the same loop thread). The per-connection
 * delivery state machine (backlog streaming with a bounded in-flight window, then live pushes) is
 * relay_dev, driven by the dispatcher. */
#ifndef PARLEYD_RELAY_H
#define PARLEYD_RELAY_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "net/conn.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"

#define RELAY_DEFAULT_MAX_CONTENT 32768u
#define RELAY_DEFAULT_QUEUE_LIMIT 10000u
#define RELAY_DEFAULT_TTL_MS (30ull * 24 * 3600 * 1000)
#define RELAY_DEFAULT_MAX_INFLIGHT 100u
#define RELAY_PURGE_INTERVAL_MS 60000u
#define RELAY_PURGE_BATCH 10000u

typedef struct relay_config {
	size_t max_content;     /* bytes per OutgoingMessage.content -> PARLEY_E_TOO_LARGE */
	unsigned queue_limit;   /* envelopes queued per device -> PARLEY_E_QUEUE_FULL */
	uint64_t ttl_ms;        /* envelopes older than this are purged, never delivered */
	unsigned max_inflight;  /* pushed but unacked envelopes per connection */
} relay_config;

void relay__config_defaults(relay_config *c);

/* The job is valid during the callback only (NULL when the request failed before reaching the store).
 * For SEND, j->relay holds the server ids (msgs[i].server_id) or missing/extra/stale device lists. */
typedef void (*relay_cb)(void *arg, int status, store_job *j);

/* Validates (content size, receipt format, duplicate device ids) and enqueues durably. */
void relay__send(const relay_config *c, store_client *sc, uint64_t account, uint32_t device, const char *handle,
		 const Parley__Wire__SendMessageRequest *req, uint64_t now_ms, relay_cb cb, void *arg);
void relay__ack(store_client *sc, uint64_t account, uint32_t device, const Parley__Wire__AckRequest *req,
		relay_cb cb, void *arg);
/* handle -> account id and whether it shares a thread with `account` (j->relay.recipient_account, .shared). */
void relay__find_peer(store_client *sc, uint64_t account, const char *handle, relay_cb cb, void *arg);
void relay__thread_peers(store_client *sc, uint64_t account, relay_cb cb, void *arg);
void relay__purge(store_client *sc, uint64_t now_ms, relay_cb cb, void *arg);

/* Encodes Push{Envelope} into out (appended). */
int relay__encode_envelope(dynbuf *out, const store_envelope *e, uint64_t recipient_account,
			   uint32_t recipient_device);

/* --- per-connection delivery --- */

typedef struct relay_dev {
	net_conn *conn;
	uint64_t account;
	uint32_t device;
	int active;      /* authenticated and registered; 0 once the connection closed */
	int backlog;     /* streaming from the store; live notices only set `more` */
	int reading;     /* a FETCH_QUEUE job is in flight */
	int more;        /* something arrived since the last read started */
	int sent_empty;  /* QueueEmpty pushed once */
	uint64_t last_pushed;
	unsigned inflight;
	const relay_config *cfg;
	store_client *sc;
	dynbuf *out;     /* the loop's scratch buffer */
	/* keep the owner (the dispatcher's session) alive while a read is in flight */
	void (*hold)(void *owner);
	void (*release)(void *owner);
	void *owner;
} relay_dev;

/* After auth: start streaming the stored queue. */
void relay__dev_start(relay_dev *d);
/* A live envelope (an encoded Push frame) for this device, committed with `server_id`. */
void relay__dev_live(relay_dev *d, uint64_t server_id, const uint8_t *frame, size_t len);
/* The device sent an ack for `ids`: called when the AckRequest arrives, not when its delete commits.
 * The in-flight window bounds what the device has been sent and not yet confirmed; the device has
 * confirmed these ids, so the window reopens at once and the next queue read can share a commit with
 * the delete instead of waiting for it (waiting made deliveries fall behind sends under load). Only
 * ids this connection pushed (<= last_pushed) count, so a client cannot widen its window with made-up
 * ids beyond what it really holds; a lost delete only means a redelivery, which the queue covers. */
void relay__dev_acked(relay_dev *d, const uint64_t *ids, size_t n);
/* The connection closed: no more sends. A read in flight finishes and releases the owner. */
void relay__dev_stop(relay_dev *d);

#endif
