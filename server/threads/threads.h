/* Threads, the group server (docs/protocol.md §13): a customer's conversation with an entity, its
 * member accounts and its signed membership events (lib/wire/threadev.c), and the durable fan-out of a
 * group message (one SenderKeyMessage) to the member devices it is routed to (every member's; a
 * customer's, while an agent handles the thread, that agent's, the admins' and its own) in one store
 * transaction, through the relay's queues and delivery; a group send draws on the relay's per-account
 * send rate like SendMessage.
 *
 * Like the entity registry, the service checks what needs no database (handles, sizes were checked by
 * lib/wire) and hands each call to one store op that checks the caller, the signed event and the rules
 * against the entity's current signed staff list in the op's own transaction
 * (store/sql/threads.c, thread_ops.c). After every committed change, a ThreadChanged push goes to
 * the online devices of every member (and of a removed one). */
#ifndef PARLEYD_THREADS_H
#define PARLEYD_THREADS_H

#include "base/config.h"
#include "dispatch/service.h"
#include "relay/relay.h"

typedef struct threads_config {
	relay_config relay;  /* queue limits and envelope TTL: a group envelope is queued like any other */
	unsigned max_open;   /* thread_max_open_per_customer */
} threads_config;

extern const service threads__service;

void threads__config_from(threads_config *c, const parleyd_config *cfg);

#endif
