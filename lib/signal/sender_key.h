/* Sender keys, internal: wire codecs (SenderKeyMessage, SenderKeyDistributionMessage) and the sender
 * key record (states, chain, skipped keys) with its storage serialisation.
 *
 * Split: sender_key_wire.c parses/produces the wire bytes (pure, fuzzed); sender_key_record.c holds the
 * state machine over the chain and the record codec (pure, fuzzed); sender_key.c is the public group
 * cipher that ties them to a store.
 */
#ifndef PARLEY_SIGNAL_SENDER_KEY_H
#define PARLEY_SIGNAL_SENDER_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <parley/signal_store.h>

#define SK_VERSION 3 /* SENDERKEY_MESSAGE_CURRENT_VERSION */
#define SK_CHAIN_KEY_LEN 32
#define SK_SIG_LEN 64
#define SK_UUID_LEN 16
#define SK_MAX_STATES 5
#define SK_MAX_MESSAGE_KEYS 2000
#define SK_MAX_FORWARD_JUMPS 25000

/* ---------------------------------------------------------------- wire */

/* A parsed SenderKeyMessage. Pointers borrow the input buffer. */
typedef struct sk_message {
	uint8_t version; /* high nibble of the first byte */
	uint8_t distribution_id[SK_UUID_LEN];
	uint32_t chain_id;
	uint32_t iteration;
	const uint8_t *ciphertext;
	size_t ciphertext_len;
	const uint8_t *signed_part; /* version byte || protobuf: what the signature covers */
	size_t signed_len;
	const uint8_t *signature; /* SK_SIG_LEN bytes */
} sk_message;

/* Parse (no signature check). INVALID_MESSAGE (short, protobuf, missing/oversized field),
 * BAD_VERSION (high nibble != 3). */
int sender_key__message_decode(sk_message *m, const uint8_t *buf, size_t len);
/* Build version byte || protobuf || XEdDSA(signing_priv, both). out_cap is checked (INVAL). */
int sender_key__message_encode(uint8_t *out, size_t out_cap, size_t *out_len,
	const uint8_t distribution_id[SK_UUID_LEN], uint32_t chain_id, uint32_t iteration,
	const uint8_t *ciphertext, size_t ciphertext_len, const uint8_t signing_priv[32]);

typedef struct sk_distribution {
	uint8_t version;
	uint8_t distribution_id[SK_UUID_LEN];
	uint32_t chain_id;
	uint32_t iteration;
	uint8_t chain_key[SK_CHAIN_KEY_LEN];
	uint8_t signing_key[PARLEY_SIGNAL_PUBKEY_LEN]; /* serialized (0x05 || u) */
} sk_distribution;

/* Parse an SKDM. INVALID_MESSAGE, BAD_VERSION, INVALID_KEY (signing key not type 0x05). The chain
 * key is a secret: callers wipe the struct. */
int sender_key__distribution_decode(sk_distribution *d, const uint8_t *buf, size_t len);
int sender_key__distribution_encode(uint8_t *out, size_t out_cap, size_t *out_len, const sk_distribution *d);

/* ---------------------------------------------------------------- rotation (sender_key.c) */

/* Replaces our own record for distribution_id with one holding a NEW state only (new chain id, chain
 * key and signing key): after a member left a group, what we send next is readable only by those who
 * get the new SKDM (parley_group_create_distribution then returns it). */
int sender_key__rotate_own(const parley_signal_store *store, const parley_signal_address *self,
	const uint8_t distribution_id[SK_UUID_LEN]);

/* ---------------------------------------------------------------- export */

/* The sender key this store holds for (sender, distribution_id) -- its newest state, whether this
 * device created it (sender = self) or processed it -- as an SKDM at the CURRENT position: chain id,
 * iteration and chain key as kept, the signing PUBLIC key (never the private one). A store that
 * processes it decrypts the sender's next messages, not earlier ones (the skipped keys are not
 * exported either). For a forward bundle (lib/client/thread_forward.c). out_cap >=
 * PARLEY_GROUP_DISTRIBUTION_MAX. PARLEY_E_NO_SENDER_KEY when the store holds nothing for it. */
int sender_key__export_distribution(const parley_signal_store *store, const parley_signal_address *sender,
	const uint8_t distribution_id[SK_UUID_LEN], uint8_t *out, size_t out_cap, size_t *out_len);

/* ---------------------------------------------------------------- record */

typedef struct sk_msg_key {
	uint32_t iteration;
	uint8_t seed[32];
} sk_msg_key;

typedef struct sk_state {
	uint8_t version;
	uint32_t chain_id;
	uint32_t iteration; /* of chain_key */
	uint8_t chain_key[SK_CHAIN_KEY_LEN];
	uint8_t signing_pub[PARLEY_SIGNAL_PUBKEY_LEN];
	int has_priv;
	uint8_t signing_priv[32];
	sk_msg_key *keys; /* skipped message keys, oldest first; count <= SK_MAX_MESSAGE_KEYS */
	size_t nkeys;
	size_t keys_cap;
} sk_state;

/* Newest state first (index 0 is the one used to encrypt). */
typedef struct sk_record {
	sk_state states[SK_MAX_STATES];
	size_t nstates;
} sk_record;

void sender_key__record_init(sk_record *r);
/* Wipes every secret and frees the key arrays; the record is empty afterwards. */
void sender_key__record_clear(sk_record *r);
/* Storage form (versioned, see sender_key_record.c). decode: INVALID_MESSAGE on anything malformed,
 * never reads past len, never allocates more than the bounded counts allow. */
int sender_key__record_decode(sk_record *r, const uint8_t *buf, size_t len);
/* *out is allocated (parley__malloc); caller wipes and frees it. */
int sender_key__record_encode(const sk_record *r, uint8_t **out, size_t *out_len);

/* libsignal's add_sender_key_state: same chain id + same signing key keeps the existing state (moved to
 * the front), same chain id + other key replaces it, at most SK_MAX_STATES (oldest dropped). */
int sender_key__record_add_state(sk_record *r, uint8_t version, uint32_t chain_id, uint32_t iteration,
	const uint8_t chain_key[SK_CHAIN_KEY_LEN], const uint8_t signing_pub[PARLEY_SIGNAL_PUBKEY_LEN],
	const uint8_t *signing_priv /* NULL for a received key */);
sk_state *sender_key__record_find(sk_record *r, uint32_t chain_id);

/* Message key material for one iteration: HKDF(seed, "WhisperGroup") = iv(16) || cipher key(32). */
typedef struct sk_keys {
	uint32_t iteration;
	uint8_t iv[16];
	uint8_t cipher_key[32];
} sk_keys;

/* Keys for the state's current iteration, advancing the chain by one (encryption). */
int sender_key__state_next_keys(sk_state *s, sk_keys *out);
/* Keys for `iteration` (decryption): a stored skipped key (removed), or the chain advanced to it while
 * storing skipped keys (bounded). DUPLICATE_MESSAGE, TOO_FAR_AHEAD. */
int sender_key__state_keys_for(sk_state *s, uint32_t iteration, sk_keys *out);

#endif
