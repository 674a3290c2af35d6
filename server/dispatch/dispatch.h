/* The request dispatcher: parleyd's net_handler (see net/conn.h).
 *
 * It owns the per-connection session (auth state, challenge nonce), decodes each binary message with
 * lib/wire, enforces "unauthenticated connections may only ping, register or auth", and routes every
 * request kind to its service through one table (dispatch.c: `routes[]`). Services answer through
 * dispatch__reply / dispatch__reply_error, possibly later, after a store job completed.
 *
 * Threads: one dispatch is shared by all loop threads; its mutable per-loop state (store client,
 * session lists) lives in one slot per worker, touched only by that worker's thread.
 */
#ifndef PARLEYD_CORE_DISPATCH_H
#define PARLEYD_CORE_DISPATCH_H
#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "net/conn.h"
#include "relay/relay.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"

typedef struct dispatch dispatch;

typedef struct dispatch_config {
	size_t max_frame_bytes;       /* wire limit for one Frame; default WIRE_DEFAULT_MAX_FRAME */
	size_t max_ping_payload;      /* default WIRE_MAX_PING_PAYLOAD */
	unsigned max_auth_failures;   /* failed auth/register signatures before close; default 3 */
	unsigned max_workers;         /* loop threads that may call on_worker_start; default 64 */
	keys_config keys;             /* key server limits (keys__config_defaults) */
	relay_config relay;           /* relay limits (relay__config_defaults) */
} dispatch_config;

void dispatch__config_defaults(dispatch_config *c);

/* The store must outlive the dispatch. Registers the per-kind latency metrics (call once, at start-up,
 * before any loop runs). Returns PARLEY_OK, PARLEY_E_NOMEM or PARLEY_E_INVAL. */
int dispatch__new(store *s, const dispatch_config *cfg, dispatch **out);
/* After the net server stopped (every on_worker_stop has run). NULL is a no-op. */
void dispatch__free(dispatch *d);

/* The net_handler to pass to the network layer; ctx is the dispatch. */
net_handler dispatch__handler(dispatch *d);

#endif
