/* Threads inside lib/client (thread*.c; public API <parley/thread.h>, design docs/threads.md).
 *
 * The contract between the thread core (thread*.c: local thread state, membership verification, sender
 * keys, group send/receive) and the features built on it (thread_forward.c: forward bundles; the bot
 * runner in tools/parley). The core implements every function declared here.
 */
#ifndef PARLEY_CLIENT_THREAD_INTERNAL_H
#define PARLEY_CLIENT_THREAD_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include <parley/thread.h>

#include "client/client_internal.h"

/* The sender-key distribution id of a thread: the first 16 bytes of
 * SHA-256("parley-thread" || thread_id u64be). */
void client__thread_distribution_id(uint64_t thread_id, uint8_t out[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN]);

/* The conversation name of a thread in the local history: "#" and the decimal id. */
void client__thread_conversation(uint64_t thread_id, char out[HISTORY_CONV_MAX + 1]);

/* A thread as this device keeps it (client.db), after verification. */
typedef struct client_thread {
	uint64_t thread_id;
	char entity[PARLEY_HANDLE_MAX + 1];
	char customer[PARLEY_HANDLE_MAX + 1];
	uint64_t customer_account;
	int status;                  /* PARLEY_THREAD_* */
	uint64_t handling_agent;     /* account id, 0 none */
	uint64_t lock_holder;
	uint64_t membership_version;
	int staff;                   /* this account is staff of the entity */
	/* the channel customer the verified OPEN names (signed by the gateway that opened the thread;
	 * docs/protocol.md §13.6): 0 and "" for a native thread */
	uint32_t channel;
	char channel_user[PARLEY_CHANNEL_USER_MAX + 1];
} client_thread;

/* The kept thread: PARLEY_OK, or PARLEY_E_NO_SUCH_THREAD when this device does not know it. */
int client__thread_load(parley_client *c, uint64_t thread_id, client_thread *out);

/* Verifies the signed events of thread_id of entity (oldest first, the whole chain from the OPEN, as
 * ThreadGet returns them or a forward bundle carries them) against the entity's verified staff list
 * (every signature under the actor device's key from a signed device list, every actor authorised for
 * its kind, versions consecutive) and keeps the resulting membership and status. Events at or below the
 * kept version are checked against the kept ones (a different event with the same version:
 * PARLEY_E_THREAD_EVENT_INVALID). Synchronous: the staff list must be known on this device (else
 * PARLEY_E_NO_SUCH_ENTITY: fetch the entity first). Errors: PARLEY_E_THREAD_EVENT_INVALID (errmsg
 * names the event and the rule). */
int client__thread_apply_events(parley_client *c, const char *entity, uint64_t thread_id,
				const uint8_t *const *events, const size_t *lens, size_t n);

/* The kept signed events of thread_id, oldest first, for a forward bundle: *events and each of them are
 * allocated (parley__malloc); release with client__thread_events_free. */
int client__thread_events(parley_client *c, uint64_t thread_id, uint8_t ***events, size_t **lens, size_t *n);
void client__thread_events_free(uint8_t **events, size_t *lens, size_t n);

/* The member devices of the thread whose sender key this device holds (including this device's own
 * key, named by this account's handle and device id), as (handle, device) pairs, at most max. */
typedef struct client_thread_sender {
	char handle[PARLEY_HANDLE_MAX + 1];
	uint32_t device;
} client_thread_sender;
int client__thread_senders(parley_client *c, uint64_t thread_id, client_thread_sender *out, size_t max,
			   size_t *n);

/* Hands a forward to the application (on_thread_forwarded), if it listens. */
void client__thread_emit_forwarded(parley_client *c, const parley_thread_forwarded *f);

/* Messages from a group message or a forwarded history are recorded in the local history of the
 * thread's conversation (client__thread_conversation) through history_api.c. */

#endif
