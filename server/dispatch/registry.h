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
 * its last connected device left (went offline). device is never 0. */
int registry__add(registry *r, uint64_t account, uint32_t device, int worker);
int registry__remove(registry *r, uint64_t account, uint32_t device, int worker);
/* Bitmask of loops with a connection of (account, device); device 0: of any device of the account. */
uint64_t registry__workers(registry *r, uint64_t account, uint32_t device);

#endif
