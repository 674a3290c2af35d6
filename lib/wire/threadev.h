/* Signed thread membership event (docs/protocol.md §13.2, design: issue 10 §1). Every change of a
 * thread's membership or state is a record signed by the acting device's Ed25519 device key (the key it
 * authenticates with): the server checks it under the key it stores for that device, and every client
 * checks it against the signed staff list (the actor must be authorised there), so a server cannot
 * invent a member or a handling agent that a client would believe.
 *
 *   "parley-thread-event-v1"  22 ASCII bytes
 *   thread_id                 u64be; 0 in an OPEN event (the server assigns the id and stores the
 *                             event as signed), >= 1 in every other kind
 *   entity_len u8, entity     the entity handle (the handle rule)
 *   version                   u64be, the thread's membership version after the event: 1 for OPEN,
 *                             >= 2 otherwise
 *   kind                      u8, WIRE_THREADEV_*
 *   subject                   u64be, the account the event is about: OPEN the customer, ADD / REMOVE /
 *                             HANDLING the member, LOCK the actor itself, HANDBACK the staff member
 *                             taking over (0 = the admins' queue); UNLOCK and CLOSE: 0
 *   actor                     u64be, >= 1, the signing account
 *   actor_device              u32be, >= 1, the signing device
 *   staff_version             u64be, >= 1, the staff list version the actor checked
 *   timestamp_ms              u64be
 *   signature                 64, Ed25519 by the actor device's key over every byte before it
 * Exactly as long as the entity handle implies: WIRE_THREADEV_FIXED + handle length bytes.
 *
 * A channel thread's OPEN (docs/protocol.md §13.6) is the one other form: the magic
 * "parley-thread-event-v2" and, between timestamp_ms and the signature,
 *   channel                   u8, 1..WIRE_CHANNEL_MAX (webchat, sms, waba, byoc)
 *   channel_user_len u8, channel_user   1..WIRE_CHANNEL_USER_MAX bytes, wire__channel_valid
 * so the gateway signs which channel customer the thread is for, and the server that stores it and
 * every client that replays it read the same (channel, channel_user) under the gateway's signature.
 * Only an OPEN takes it, and only with a channel: a native event is always v1 (one encoding per
 * event, and every event signed before channels existed still verifies unchanged). The magic differs
 * so no v1 record can be read as a v2 one or the other way round.
 */
#ifndef PARLEY_WIRE_THREADEV_H
#define PARLEY_WIRE_THREADEV_H
#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"
#include "wire/wire_threads.h"

#define WIRE_THREADEV_MAGIC "parley-thread-event-v1"
#define WIRE_THREADEV_MAGIC_LEN 22
/* every byte but the handle's: magic, thread 8, handle length 1, version 8, kind 1, subject 8, actor 8,
 * device 4, staff version 8, timestamp 8, signature 64 */
#define WIRE_THREADEV_FIXED (WIRE_THREADEV_MAGIC_LEN + 8 + 1 + 8 + 1 + 8 + 8 + 4 + 8 + 8 + 64)
#define WIRE_THREADEV_MAGIC_CHANNEL "parley-thread-event-v2"
/* a channel OPEN's extra bytes: channel 1, channel_user length 1, channel_user */
#define WIRE_THREADEV_CHANNEL_EXTRA(user_len) (2 + (user_len))
#define WIRE_THREADEV_MAX_BYTES (WIRE_THREADEV_FIXED + WIRE_MAX_HANDLE + WIRE_THREADEV_CHANNEL_EXTRA(WIRE_CHANNEL_USER_MAX))

enum {
	WIRE_THREADEV_OPEN = 1,
	WIRE_THREADEV_ADD = 2,
	WIRE_THREADEV_REMOVE = 3,
	WIRE_THREADEV_HANDLING = 4,
	WIRE_THREADEV_LOCK = 5,
	WIRE_THREADEV_UNLOCK = 6,
	WIRE_THREADEV_CLOSE = 7,
	WIRE_THREADEV_HANDBACK = 8,
};

typedef struct wire_threadev {
	uint64_t thread_id;
	char entity[WIRE_MAX_HANDLE + 1];
	uint64_t version;
	uint8_t kind;
	uint64_t subject, actor;
	uint32_t actor_device;
	uint64_t staff_version, timestamp_ms;
	/* a channel OPEN (v2): the channel and its customer; 0 and "" in every native event */
	uint32_t channel;
	char channel_user[WIRE_CHANNEL_USER_MAX + 1];
} wire_threadev;

/* Writes the signed record into out (cap >= WIRE_THREADEV_MAX_BYTES), its length in *len: v2 when
 * ev->channel != 0 (then ev must be an OPEN with a valid channel_user), else v1.
 * PARLEY_E_THREAD_EVENT_INVALID if a field breaks the rules above (nothing signed). sk: libsodium's
 * 64-byte Ed25519 secret key. */
int wire__threadev_sign(const wire_threadev *ev, const uint8_t sk[64], uint8_t *out, size_t cap, size_t *len);
/* Parses buf into out (zeroed on failure) without the signature. PARLEY_E_THREAD_EVENT_INVALID for any
 * malformed, short, trailing byte or broken field rule. */
int wire__threadev_parse(const uint8_t *buf, size_t len, wire_threadev *out);
/* parse, then the signature under device_key (32 bytes, Ed25519); out zeroed on any failure. */
int wire__threadev_verify(const uint8_t *buf, size_t len, const uint8_t device_key[32], wire_threadev *out);
/* The kind's lower-case name ("open", "add", ...), "unknown" otherwise; for logs and error messages. */
const char *wire__threadev_kind_name(unsigned kind);

#endif
