/* Who is connected where: (account, device) -> the loop threads holding an authenticated connection of
 * that device (a count per loop), and an account -> its number of connected devices (presence).
 *
 * One mutex guards it: each operation is one hash lookup, far cheaper than the store round trip it
 * sits next to. It answers "which loops must I wake for this device"; the loop itself then finds the
 * connections in its own index (worker.h) without a lock.
 */
#ifndef PARLEYD_DISPATCH_REGISTRY_H
#define PARLEYD_DISPATCH_REGISTRY_H
#include <stdint.h>

#define REGISTRY_MAX_WORKERS 64

typedef struct registry registry;

int registry__new(unsigned n_workers, registry **out);
void registry__free(registry *r);

/* add returns 1 when the account had no connected device before (came online); remove returns 1 when
 * its last connected device left (went offline). device is never 0. With an edge hook, each such edge
 * is passed to it under the registry's lock (so edges of one account reach it in order) and add/remove
 * return what it returned. */
int registry__add(registry *r, uint64_t account, uint32_t device, int worker, const char *handle);
int registry__remove(registry *r, uint64_t account, uint32_t device, int worker, const char *handle);
/* Bitmask of loops with a connection of (account, device); device 0: of any device of the account. */
/* Set before any loop runs (the cluster bus: a node's edge is a cluster-wide one only if no other node
 * holds the account). fn must not call back into the registry. handle: the account's, as the caller of
 * add/remove gave it (for the other nodes' presence). */
typedef int (*registry_edge_fn)(void *ctx, uint64_t account, const char *handle, int online);
void registry__set_edge_hook(registry *r, registry_edge_fn fn, void *ctx);
uint64_t registry__workers(registry *r, uint64_t account, uint32_t device);

#endif
