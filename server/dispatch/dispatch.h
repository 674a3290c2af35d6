/* The request dispatcher: parleyd's net_handler (see net/conn.h).
 *
 * It turns connections into links (service.h), decodes each binary message with lib/wire, enforces
 * "unauthenticated connections may only use the routes that say so", and hands each request to the
 * route its service registered. It holds no service logic: the services (server/accounts, keys,
 * relay, ...) own their routes and hooks and are passed in as descriptors.
 *
 * Threads: one dispatch is shared by all loop threads; its mutable per-loop state lives in one worker
 * per loop (worker.c), touched only by that loop's thread (its mailbox excepted).
 */
#ifndef PARLEYD_DISPATCH_H
#define PARLEYD_DISPATCH_H
#include <stddef.h>

#include "base/config.h"
#include "cluster/bus.h"
#include "net/conn.h"
#include "store/store.h"

typedef struct dispatch dispatch;
struct service;

/* cfg and the store must outlive the dispatch; `services` (and the descriptors) too. Runs every
 * service's init, registers the per-kind latency metrics (call once, at start-up, before any loop
 * runs). Returns PARLEY_OK, PARLEY_E_NOMEM, PARLEY_E_CONFIG (two routes for one request kind, too many
 * services) or what a service's init returned. */
int dispatch__new(store *s, const parleyd_config *cfg, const struct service *const *services, size_t n_services,
		  dispatch **out);
/* After the net server stopped (every on_worker_stop has run). NULL is a no-op. */
void dispatch__free(dispatch *d);

/* Multi-node (server/cluster): the hooks through which the bus hands this dispatcher what other nodes
 * posted, then, once the bus is open, dispatch__set_bus: from then on worker__post also publishes, and
 * the registry's account edges become the bus's interest and presence (a link's presence edge is then
 * a cluster-wide one). Set it before the loops start; dispatch__set_bus(d, NULL) before closing the
 * bus. */
void dispatch__bus_hooks(dispatch *d, cluster_hooks *out);
void dispatch__set_bus(dispatch *d, cluster *c);

/* The net_handler to pass to the network layer; ctx is the dispatch. */
net_handler dispatch__handler(dispatch *d);

#endif
