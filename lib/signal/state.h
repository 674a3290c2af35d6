/* Double Ratchet session state and session records (libsignal's SessionState / SessionRecord).
 *
 * A record holds the current state for an address plus up to PARLEY_SIGNAL_MAX_ARCHIVED_STATES older
 * ones (a peer may still be sending on a session we replaced). A state holds the root key, our sending
 * chain, up to PARLEY_SIGNAL_MAX_RECEIVER_CHAINS receiving chains (oldest first), each with at most
 * PARLEY_SIGNAL_MAX_MESSAGE_KEYS skipped message-key seeds (oldest first), and the X3DH data that
 * Alice repeats in PreKeySignalMessages until Bob answers.
 *
 * Skipped keys are kept as 32-byte chain seeds (HMAC(CK, 0x01)), not as the 80 derived bytes: the
 * record stays small and the derivation is redone only for the rare late message.
 *
 * Lazy sending chain. libsignal's DH ratchet step on receive does two root steps: one with our old
 * ratchet key (the new receiving chain) and, after generating a new ratchet pair, one for our new
 * sending chain. The second half is only needed when we next send — its public key first appears on
 * the wire in our next message — so we postpone it: after a receive-side step the state keeps the
 * intermediate root key and `sender_lazy` = 1 (no sending ratchet pair, no sending chain key);
 * sig__state_encrypt derives them against the newest receiving chain's ratchet key, which is the key
 * that triggered the step. That saves one key generation and one X25519 on every receive-side step
 * (the responder's first decrypt among them) and moves them to the next encrypt; the bytes on the
 * wire are libsignal's. Invariant: sender_lazy implies has_sender and n_recv >= 1.
 */
#ifndef PARLEY_SIGNAL_STATE_H
#define PARLEY_SIGNAL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "crypto/crypto.h"

typedef struct sig_skipped {
	uint32_t index;
	uint8_t seed[CRYPTO_KEY_LEN];
} sig_skipped;

typedef struct sig_chain {
	uint8_t ratchet_pub[CRYPTO_KEY_LEN]; /* their ratchet key (receiving chains only) */
	uint8_t ck[CRYPTO_KEY_LEN];
	uint32_t index;
	sig_skipped *skipped; /* heap, n_skipped used of cap_skipped */
	uint32_t n_skipped;
	uint32_t cap_skipped;
} sig_chain;

typedef struct sig_state {
	uint8_t version; /* 3 */
	uint8_t local_ik[CRYPTO_SIGNAL_PUBKEY_LEN];
	uint8_t remote_ik[CRYPTO_SIGNAL_PUBKEY_LEN];
	uint32_t local_reg;
	uint32_t remote_reg;
	uint8_t root[CRYPTO_KEY_LEN];
	int has_sender;  /* the state can encrypt (always, once built) */
	int sender_lazy; /* sending chain not derived yet: root is the intermediate root (see above) */
	crypto_keypair sender_ratchet; /* zero while sender_lazy */
	uint8_t sender_ck[CRYPTO_KEY_LEN];
	uint32_t sender_index;
	uint32_t previous_counter;
	sig_chain recv[5]; /* PARLEY_SIGNAL_MAX_RECEIVER_CHAINS */
	uint32_t n_recv;
	/* unacknowledged X3DH (Alice, until a reply decrypts) */
	int has_pending;
	int pending_has_prekey;
	uint32_t pending_prekey_id;
	uint32_t pending_spk_id;
	uint8_t pending_base[CRYPTO_KEY_LEN];
	/* Alice's base key, identifying the X3DH run this state came from (both sides keep it) */
	int has_alice_base;
	uint8_t alice_base[CRYPTO_KEY_LEN];
} sig_state;

typedef struct sig_record {
	int has_current;  /* states[0] is the current state iff has_current */
	sig_state *states; /* current (if any) then archived, newest first */
	uint32_t n_states;
	uint32_t cap_states;
	uint8_t format; /* storage version it was read in (0: new); see sig__record_encode */
} sig_record;

/* ---------------------------------------------------------------- KDFs (ratchet.c) */

/* seed = HMAC(ck, 0x01); next = HMAC(ck, 0x02). Either output may be NULL. */
void sig__chain_step(const uint8_t ck[CRYPTO_KEY_LEN], uint8_t seed[CRYPTO_KEY_LEN], uint8_t next[CRYPTO_KEY_LEN]);
/* HKDF(seed, info "WhisperMessageKeys", 80) = cipher key || MAC key || IV */
typedef struct sig_msg_keys {
	uint8_t cipher[32];
	uint8_t mac[32];
	uint8_t iv[16];
} sig_msg_keys;
int sig__message_keys(sig_msg_keys *k, const uint8_t seed[CRYPTO_KEY_LEN]);
/* HKDF(salt root, DH(our_priv, their_pub), "WhisperRatchet", 64) = new root || new chain key */
int sig__root_step(const uint8_t root[CRYPTO_KEY_LEN], const uint8_t their_pub[CRYPTO_KEY_LEN],
		   const uint8_t our_priv[CRYPTO_KEY_LEN], uint8_t new_root[CRYPTO_KEY_LEN], uint8_t ck[CRYPTO_KEY_LEN]);

/* ---------------------------------------------------------------- X3DH (ratchet.c) */

/* Alice: st gets root/chains from her identity and base key and Bob's identity, signed prekey and
 * optional one-time prekey (NULL). their_ratchet is Bob's ratchet key (his signed prekey in the real
 * protocol) and sending_ratchet her fresh ratchet pair (parameters so the tests can use libsignal's
 * vectors). The caller fills registration ids and pending/alice_base fields. */
int sig__init_alice(sig_state *st, const crypto_keypair *our_ik, const crypto_keypair *our_base,
		    const uint8_t their_ik[CRYPTO_KEY_LEN], const uint8_t their_spk[CRYPTO_KEY_LEN],
		    const uint8_t *their_opk, const uint8_t their_ratchet[CRYPTO_KEY_LEN],
		    const crypto_keypair *sending_ratchet);
/* Bob: from his identity, signed prekey, optional one-time prekey (NULL) and ratchet pair (his signed
 * prekey in the real protocol), and Alice's identity and base key. */
int sig__init_bob(sig_state *st, const crypto_keypair *our_ik, const crypto_keypair *our_spk,
		  const crypto_keypair *our_opk, const crypto_keypair *our_ratchet, const uint8_t their_ik[CRYPTO_KEY_LEN],
		  const uint8_t their_base[CRYPTO_KEY_LEN]);

/* ---------------------------------------------------------------- per-state operations (ratchet.c) */

struct sig_msg;
/* Encrypt with the sending chain into out (SignalMessage, wrapped in a PreKeySignalMessage while
 * X3DH is unacknowledged); advances the chain. *type = PARLEY_SIGNAL_MSG_WHISPER or _PREKEY. */
int sig__state_encrypt(sig_state *st, const uint8_t *pt, size_t len, uint8_t *out, size_t cap, size_t *out_len,
		       int *type);
/* Decrypt a decoded SignalMessage. Atomic: st is modified only when PARLEY_OK is returned.
 *
 * archived = 0: libsignal's limits (for the state the peer most likely uses). archived = 1 (security
 * item 11): the counter may be at most PARLEY_SIGNAL_MAX_ARCHIVED_JUMP ahead of the chain, and an
 * unknown ratchet key is only tried when the peer could have seen our current ratchet key; both are
 * checked before any work, so a forged message costs an archived state at most one DH step and
 * MAX_ARCHIVED_JUMP chain steps, and usually nothing. */
int sig__state_decrypt(sig_state *st, const struct sig_msg *m, int archived, uint8_t *out, size_t cap,
		       size_t *out_len);

#ifdef PARLEY_TEST_SIGNAL_WORK
/* Test builds only (tests/unit/signal compiles ratchet.c with the macro): what the ratchet computed. */
typedef struct sig_work_counters {
	uint64_t chain_steps;  /* sig__chain_step calls (an HMAC or an HMAC pair) */
	uint64_t scalar_mults; /* X25519 DH or key generations */
} sig_work_counters;
extern sig_work_counters sig__work;
#endif

void sig__state_clear(sig_state *st); /* wipe and free the skipped-key arrays */

/* ---------------------------------------------------------------- records (record.c) */

void sig__record_init(sig_record *r);
void sig__record_free(sig_record *r); /* wipes */
/* Make `st` (moved in: the record takes its heap parts; st is zeroed) the current state, archiving
 * the previous current state at the front and dropping the oldest beyond the limit. */
int sig__record_promote_new(sig_record *r, sig_state *st);
/* Move archived state i (index in r->states) to the front as current. */
void sig__record_promote(sig_record *r, uint32_t i);
/* Versioned, bounded binary form. Decode refuses anything malformed or over the limits with
 * PARLEY_E_INVALID_MESSAGE (a corrupt record is treated like a malformed message, never trusted).
 * Decode reads versions 1 and 2. Encode writes version 2, except that a record read as version 1
 * is written back as version 1 while none of its states has a lazy sending chain (which version 1
 * cannot express): decode-then-encode is the identity, and such records stay readable by builds
 * that predate version 2. */
int sig__record_encode(const sig_record *r, dynbuf *out);
int sig__record_decode(sig_record *r, const uint8_t *buf, size_t len);

#endif
