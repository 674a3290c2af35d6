/* Key server: upload of a device's Signal public keys, prekey count (with the handed-out one-time
 * prekeys the device may now forget), bundle fetch with a per-(requester, target) leaky-bucket rate
 * limit and a per-device one-time-prekey budget kept in the store. docs/protocol.md §9.
 *
 * Transport-free like accounts/: each request function calls `cb` exactly once, either from within the
 * call (validation, rate limit) or later on the same loop thread (store completion).
 */
#ifndef PARLEYD_KEYS_H
#define PARLEYD_KEYS_H
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/ratelimit.h"
#include "base/svc.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"

#define KEYS_RL_SLOTS 8192            /* limiter entries per loop */

typedef struct keys_config {
	unsigned pool_max;      /* one-time prekeys per device */
	unsigned low_threshold; /* PrekeysLow push below this */
	double rl_capacity;     /* 0 disables the limiter */
	double rl_per_sec;
	double budget_capacity; /* one-time prekeys a device hands out in a burst; 0 = no budget */
	double budget_per_ms;
	uint64_t forget_after_ms; /* handed-out prekeys older than this are reported to their device */
} keys_config;

/* How long a handed-out prekey stays reported after it became forgettable: a device that does not
 * connect for this long keeps those private keys (they are still useless to anyone without the
 * recipient's other secrets). Bounds the records kept per device. */
#define KEYS_REPORT_WINDOW_MS (90ull * 24 * 3600 * 1000)

/* From the configuration table (the only place defaults live); _defaults: the table's defaults. */
void keys__config_from(keys_config *c, const parleyd_config *cfg);
void keys__config_defaults(keys_config *c);

/* One loop's leaky buckets (base/ratelimit.h) per (requester, target). Not shared between loops: a
 * requester spread over N loops gets up to N times this rate. What bounds the one-time prekeys any
 * number of requesters can take from a device is its budget, kept in the store (prekey_budget_*). */
typedef struct keys_limiter {
	rl_bucket slots[KEYS_RL_SLOTS];
} keys_limiter;

/* One token for (requester, target). 0 = allowed, else the milliseconds to wait. */
uint64_t keys__limiter_take(keys_limiter *l, const keys_config *c, uint64_t requester, const char *target,
			    uint64_t now_ms);

/* Every call reports once through the one completion type (base/svc.h). Its result is the store
 * job (`const store_job *`: keys.remaining, keys.spk_id_out, account_id + keys.bundles), except a
 * refusal before the store: RATE_LIMITED reports a `const keys_refusal *`, other refusals NULL. */
typedef struct keys_refusal {
	uint64_t retry_after_ms;
} keys_refusal;

/* Every job runs for the authenticated (account, device) given (the requester for bundles): the store
 * refuses it with DEVICE_REMOVED once that device no longer exists (store.h caller_account).
 *
 * Validates keys (0x05 form, XEdDSA signature of the signed prekey by the identity key, distinct
 * one-time ids) and stores them. Errors: INVALID_KEY, BAD_KEY_SIGNATURE, PROTO_MALFORMED (duplicate id),
 * IDENTITY_KEY_SET, NO_KEYS (first upload without signed prekey), PREKEY_POOL_FULL, STORE. */
void keys__upload(const keys_config *c, store_client *sc, uint64_t account, uint32_t device,
		  const Parley__Wire__UploadKeysRequest *req, svc_cb cb, void *arg);
/* Also lists the device's one-time prekeys handed out before now_ms - forget_after_ms (keys.forget_ids). */
void keys__count(const keys_config *c, store_client *sc, uint64_t account, uint32_t device, uint64_t now_ms,
		 svc_cb cb, void *arg);
/* Errors: RATE_LIMITED (retry_after_ms set), NO_SUCH_ACCOUNT, NO_SUCH_DEVICE, NO_KEYS. */
void keys__get_bundles(const keys_config *c, keys_limiter *l, store_client *sc, uint64_t requester,
		       uint32_t requester_device, const Parley__Wire__GetBundlesRequest *req, uint64_t now_ms, svc_cb cb, void *arg);

/* The service descriptor (routes.c). */
struct service;
extern const struct service keys__service;

#endif
