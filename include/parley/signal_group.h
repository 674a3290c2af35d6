/* parley — Signal sender keys (group messaging), byte-compatible with libsignal 0.24's group_cipher.
 *
 * Model: each member device that speaks in a group owns one sender key per distribution id (a UUID
 * naming the group's distribution list). It sends that key to every other member once, as a
 * SenderKeyDistributionMessage (SKDM) carried inside a pairwise Signal session; afterwards every group
 * message is encrypted ONCE with parley_group_encrypt and the same bytes go to all members, who decrypt
 * with parley_group_decrypt. Integrity comes from an XEdDSA signature by the sender's signing key
 * (there is no MAC); forward secrecy from a hash chain advanced per message.
 *
 * All functions take the application's store (<parley/signal_store.h>): the record for (sender
 * address, distribution id) is loaded, updated and stored back within the call, through the store's
 * load_sender_key / store_sender_key callbacks. Nothing is kept between calls; the store pointer is
 * borrowed. On ANY error the stored record is unchanged and output buffers must be ignored.
 *
 * Distribution ids are 16 raw bytes in RFC 4122 order (what libsignal's Uuid::as_bytes gives).
 *
 * Errors (besides PARLEY_E_INVAL, PARLEY_E_NOMEM and store errors):
 *   PARLEY_E_INVALID_MESSAGE   malformed message (length, protobuf, missing field, bad padding)
 *   PARLEY_E_BAD_VERSION       message version is not 3
 *   PARLEY_E_INVALID_KEY       SKDM signing key is not a type-0x05 public key
 *   PARLEY_E_NO_SENDER_KEY     no record / no state for the message's chain id (SKDM not processed)
 *   PARLEY_E_BAD_SIGNATURE     the message's signature does not verify with the sender's signing key
 *   PARLEY_E_DUPLICATE_MESSAGE iteration already decrypted (replay or duplicate delivery)
 *   PARLEY_E_TOO_FAR_AHEAD     iteration more than PARLEY_SIGNAL_MAX_FORWARD_JUMPS ahead
 *   PARLEY_E_STATE             our own record cannot encrypt (it was received, not created, by us)
 */
#ifndef PARLEY_SIGNAL_GROUP_H
#define PARLEY_SIGNAL_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include <parley/export.h>
#include <parley/signal_store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sender-key states kept per (sender, distribution id) record (libsignal's MAX_SENDER_KEY_STATES);
 * skipped message keys kept per state: PARLEY_SIGNAL_MAX_MESSAGE_KEYS (2000). */
#define PARLEY_GROUP_MAX_STATES 5
/* Largest plaintext accepted (same bound as 1:1 messages). */
#define PARLEY_GROUP_MAX_PLAINTEXT (1024u * 1024u)
/* Bytes needed for a SenderKeyMessage carrying n plaintext bytes. */
#define PARLEY_GROUP_CIPHERTEXT_MAX(n) ((size_t)(n) + 16u + 128u)
/* Largest SenderKeyMessage the decoder accepts. */
#define PARLEY_GROUP_MAX_MESSAGE PARLEY_GROUP_CIPHERTEXT_MAX(PARLEY_GROUP_MAX_PLAINTEXT)
/* Bytes needed for a SenderKeyDistributionMessage. */
#define PARLEY_GROUP_DISTRIBUTION_MAX 128u

/* Our sender key for distribution_id: created on first call (random 31-bit chain id, random chain
 * key, fresh signing key pair), stored under (self, distribution_id). Writes an SKDM carrying the
 * CURRENT chain key and iteration into out (out_cap >= PARLEY_GROUP_DISTRIBUTION_MAX). Later calls
 * return the same key at its current position (members who join late cannot read older messages). */
PARLEY_EXPORT int parley_group_create_distribution(const parley_signal_store *store,
	const parley_signal_address *self, const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN],
	uint8_t *out, size_t out_cap, size_t *out_len);

/* Record a member's SKDM (received over a pairwise session from `sender`). Re-processing the same key
 * keeps the current position (no rewind); a new signing key for the same chain id replaces the state.
 * The distribution id is taken from the message; it is written to distribution_id_out if not NULL. */
PARLEY_EXPORT int parley_group_process_distribution(const parley_signal_store *store,
	const parley_signal_address *sender, const uint8_t *skdm, size_t len,
	uint8_t distribution_id_out[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN]);

/* Encrypt len (<= PARLEY_GROUP_MAX_PLAINTEXT) bytes with our sender key for distribution_id into out
 * (out_cap >= PARLEY_GROUP_CIPHERTEXT_MAX(len)). Errors: PARLEY_E_NO_SENDER_KEY if
 * parley_group_create_distribution was never called for it. Advances the chain. */
PARLEY_EXPORT int parley_group_encrypt(const parley_signal_store *store, const parley_signal_address *self,
	const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t *plaintext, size_t len,
	uint8_t *out, size_t out_cap, size_t *out_len);

/* Decrypt a SenderKeyMessage from `sender` into out (out_cap >= len suffices). Out-of-order messages
 * within PARLEY_SIGNAL_MAX_MESSAGE_KEYS of each other decrypt; each iteration decrypts once. */
PARLEY_EXPORT int parley_group_decrypt(const parley_signal_store *store, const parley_signal_address *sender,
	const uint8_t *msg, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
