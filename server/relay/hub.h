/* Who is connected where, and cross-loop delivery of pushes.
 *
 * The registry maps (account, device) to the loop threads holding an authenticated connection of that
 * device (a count per loop), and an account to its number of connected devices (presence). One mutex
 * guards it: each operation is a hash lookup, far cheaper than the store round trip around it.
 *
 * Mailboxes: one per loop (uv_async + mutex-guarded list). hub__post hands an already encoded Push
 * frame to a loop; that loop's handler finds the matching sessions and sends it. Mailboxes are not
 * bounded by count: everything posted is backed either by the durable queue (envelopes: a lost
 * notice would only delay delivery until the next backlog read) or is small and ephemeral. */
#ifndef PARLEYD_RELAY_HUB_H
#define PARLEYD_RELAY_HUB_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define HUB_MAX_WORKERS 64

typedef struct hub hub;

enum hub_kind {
	HUB_ENVELOPE = 1, /* to one device; server_id set: goes through the device's delivery state */
	HUB_PUSH,         /* any other push, sent as is to (account, device) or all devices (device 0) */
};

typedef struct hub_item {
	struct hub_item *next;
	int kind;
	uint64_t account;
	uint32_t device; /* 0: every device of the account */
	uint64_t server_id;
	size_t len;
	uint8_t data[]; /* one encoded Frame */
} hub_item;

/* Runs on the loop's thread for each item; the handler must not keep `it`. */
typedef void (*hub_handler)(void *ctx, const hub_item *it);

int hub__new(unsigned n_workers, hub **out);
void hub__free(hub *h);

/* On the loop thread, in on_worker_start / on_worker_stop. Stop drops undelivered items. */
int hub__worker_start(hub *h, int worker, uv_loop_t *loop, hub_handler fn, void *ctx);
void hub__worker_stop(hub *h, int worker);

/* Registry. add returns 1 when the account had no connected device before (came online); remove
 * returns 1 when its last connected device left (went offline). */
int hub__add(hub *h, uint64_t account, uint32_t device, int worker);
int hub__remove(hub *h, uint64_t account, uint32_t device, int worker);
/* Bitmask of loops with a connection of (account, device); device 0: of any device of the account. */
uint64_t hub__workers(hub *h, uint64_t account, uint32_t device);

/* Copies the frame into an item and queues it on every loop of `mask`; `self` (the caller's loop) is
 * handled synchronously through its handler, without a wake-up. Returns PARLEY_OK or PARLEY_E_NOMEM
 * (some loops may then have missed it). */
int hub__post(hub *h, uint64_t mask, int self, int kind, uint64_t account, uint32_t device, uint64_t server_id,
	      const uint8_t *frame, size_t len);

#endif
