/* Forward bundle and forwarded-history chunks (docs/protocol.md §13.5; proto ForwardBundle,
 * ForwardSenderKey, ForwardHistory, ForwardHistoryEntry). They travel inside pairwise Signal messages
 * (Content kinds 7 and 8), so only the agent's devices read them; this codec checks every bound BEFORE
 * anything is imported, and the client checks who sent them (lib/client/thread_forward.c).
 *
 * Bounds (a decode refuses anything beyond them with PARLEY_E_FORWARD_INVALID and says which):
 *   bundle   forward_id, thread_id nonzero; entity the handle rule; staff_version >= 1;
 *            1..WIRE_FORWARD_MAX_EVENTS events, each 1..WIRE_THREADEV_MAX_BYTES (their signatures are
 *            the thread core's business); 0..WIRE_FORWARD_MAX_KEYS sender keys, each a valid handle,
 *            device >= 1, distribution 1..PARLEY_GROUP_DISTRIBUTION_MAX bytes, no (handle, device)
 *            twice; note <= PARLEY_THREAD_NOTE_MAX bytes of UTF-8 without NUL; history_total <=
 *            PARLEY_THREAD_HISTORY_MAX, history_chunks 0 iff history_total 0, else 1..history_total
 *   chunk    forward_id, thread_id nonzero; 1..PARLEY_THREAD_HISTORY_MAX entries, each a valid sender
 *            handle, device >= 1, body 1..PARLEY_MESSAGE_MAX
 *   both     packed size <= WIRE_FORWARD_MAX_BYTES (the Content payload bound)
 * For SENDING the packed bundle must also fit one pairwise ciphertext under the server's
 * max_content_bytes (32 KiB): WIRE_FORWARD_SEND_MAX; history goes in chunks of at most
 * WIRE_FORWARD_CHUNK_BYTES packed.
 */
#ifndef PARLEY_WIRE_FORWARD_H
#define PARLEY_WIRE_FORWARD_H
#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"

#define WIRE_FORWARD_MAX_EVENTS 100
#define WIRE_FORWARD_MAX_KEYS 500
#define WIRE_FORWARD_MAX_BYTES 60000u /* = the Content payload bound (CONTENT_PAYLOAD_MAX) */
/* 32 KiB minus the Content records and padding (<= 180 bytes) and the Signal envelope (<= 272) */
#define WIRE_FORWARD_SEND_MAX (30u * 1024u)
#define WIRE_FORWARD_CHUNK_BYTES (24u * 1024u)

/* Decodes and checks a packed bundle / chunk. *out is allocated (free with the matching _free) only on
 * PARLEY_OK; otherwise PARLEY_E_FORWARD_INVALID (err says what broke which bound), PARLEY_E_NOMEM.
 * err may be NULL. */
int wire__forward_bundle_decode(const uint8_t *buf, size_t len, Parley__Wire__ForwardBundle **out, char *err,
				size_t errlen);
void wire__forward_bundle_free(Parley__Wire__ForwardBundle *b);
int wire__forward_history_decode(const uint8_t *buf, size_t len, Parley__Wire__ForwardHistory **out, char *err,
				 size_t errlen);
void wire__forward_history_free(Parley__Wire__ForwardHistory *h);

/* The same checks on a message built in memory (the sender checks what it is about to send). */
int wire__forward_bundle_check(const Parley__Wire__ForwardBundle *b, char *err, size_t errlen);
int wire__forward_history_check(const Parley__Wire__ForwardHistory *h, char *err, size_t errlen);

/* The sender's split of n history entries (oldest first) into chunks: starts[i] is the first entry of
 * chunk i, each chunk packs (with forward_id, thread_id and seq) into <= WIRE_FORWARD_CHUNK_BYTES.
 * starts has room for cap chunks (cap >= n suffices: every entry fits a chunk alone). *n_chunks = 0
 * when n = 0. PARLEY_E_FORWARD_INVALID when an entry breaks the chunk rules. */
int wire__forward_history_split(Parley__Wire__ForwardHistoryEntry *const *entries, size_t n, size_t *starts,
				size_t cap, size_t *n_chunks, char *err, size_t errlen);

#endif
