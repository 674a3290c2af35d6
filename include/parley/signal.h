/* parley — the Signal protocol (v3, classic X3DH + Double Ratchet) as libsignal 0.24 implements it.
 *
 * Messages produced here are byte-compatible with Signal's libsignal (tested against
 * @signalapp/libsignal-client 0.24.0 in tests/interop), so a libsignal peer can talk to a parley one.
 *
 * Model:
 *  - A parley_signal_ctx binds a store (<parley/signal_store.h>) and caches the local identity. It is
 *    not thread-safe: use one context per thread, or lock around calls.
 *  - Sessions are addressed by (name, device id). Alice calls parley_signal_process_bundle with Bob's
 *    prekey bundle, then parley_signal_encrypt: until Bob answers, her messages are PreKeySignalMessages
 *    (type PARLEY_SIGNAL_MSG_PREKEY). Bob decrypts those with parley_signal_decrypt_prekey, which
 *    builds his session and consumes the one-time prekey. Later messages are SignalMessages
 *    (type PARLEY_SIGNAL_MSG_WHISPER), decrypted with parley_signal_decrypt_signal.
 *  - Output buffers are provided by the caller (no allocation hand-off): encryption needs
 *    PARLEY_SIGNAL_CIPHERTEXT_MAX(plaintext_len) bytes, decryption needs at most ciphertext_len bytes.
 *  - On ANY error, the stored session is unchanged (decryption is atomic: MAC and padding are checked
 *    before any state is written) and output buffers must be ignored.
 *  - Identity trust: the first identity seen for an address is trusted; a different one later makes
 *    process_bundle / encrypt / decrypt fail with PARLEY_E_UNTRUSTED_IDENTITY until the application
 *    accepts it with parley_signal_trust_identity (after showing the user the new safety number).
 *
 * Errors (besides PARLEY_E_INVAL, PARLEY_E_NOMEM and store errors):
 *   PARLEY_E_INVALID_MESSAGE   malformed message (protobuf, lengths, missing fields, bad padding)
 *   PARLEY_E_BAD_VERSION       unknown message version byte
 *   PARLEY_E_BAD_MAC           MAC check failed in every session state tried
 *   PARLEY_E_DUPLICATE_MESSAGE message key already used (replay or duplicate delivery)
 *   PARLEY_E_TOO_FAR_AHEAD     counter more than PARLEY_SIGNAL_MAX_FORWARD_JUMPS ahead of the chain
 *   PARLEY_E_NO_SESSION        no session for the address (encrypt, decrypt_signal)
 *   PARLEY_E_INVALID_KEY_ID    prekey / signed prekey id named by the message is not in the store
 *   PARLEY_E_INVALID_KEY       malformed public key (wrong type byte or length)
 *   PARLEY_E_BAD_KEY_SIGNATURE the bundle's signed-prekey signature does not verify
 *   PARLEY_E_UNTRUSTED_IDENTITY the peer's identity key changed and was not accepted yet
 */
#ifndef PARLEY_SIGNAL_H
#define PARLEY_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include <parley/export.h>
#include <parley/signal_store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CiphertextMessageType values, as libsignal numbers them. */
#define PARLEY_SIGNAL_MSG_WHISPER 2
#define PARLEY_SIGNAL_MSG_PREKEY 3
#define PARLEY_SIGNAL_MSG_SENDERKEY 7

/* Limits (libsignal's consts.rs). */
#define PARLEY_SIGNAL_MAX_FORWARD_JUMPS 25000 /* counter jump refused beyond this */
#define PARLEY_SIGNAL_MAX_MESSAGE_KEYS 2000   /* skipped message keys kept per receiving chain */
#define PARLEY_SIGNAL_MAX_RECEIVER_CHAINS 5   /* old receiving chains kept per session state */
#define PARLEY_SIGNAL_MAX_ARCHIVED_STATES 40  /* previous session states kept per address */
/* Not in libsignal: how far a counter may jump ahead on an ARCHIVED session state (the newest state
 * keeps MAX_FORWARD_JUMPS), so that a forged message costs the 40 archived states at most 40 x 200
 * chain steps instead of 40 x 25,000. An archived state is also tried for a new ratchet key only if
 * the peer could have seen our ratchet key there. docs/signal.md, "Where parley is stricter". */
#define PARLEY_SIGNAL_MAX_ARCHIVED_JUMP 200

/* Largest plaintext accepted by encrypt, and largest message accepted by the decoders: protects
 * against a peer making us allocate or work on unbounded input. */
#define PARLEY_SIGNAL_MAX_PLAINTEXT (1024u * 1024u)
/* Bytes needed to hold the encryption of n plaintext bytes (either message type). */
#define PARLEY_SIGNAL_CIPHERTEXT_MAX(n) ((size_t)(n) + 16u + 256u)
#define PARLEY_SIGNAL_MAX_MESSAGE PARLEY_SIGNAL_CIPHERTEXT_MAX(PARLEY_SIGNAL_MAX_PLAINTEXT)

/* ---------------------------------------------------------------- keys */

/* Generate an identity (or any Curve25519) key pair. */
PARLEY_EXPORT int parley_signal_keypair_generate(parley_keypair *out);
/* Wipe a key pair (NULL-safe). */
PARLEY_EXPORT void parley_signal_keypair_wipe(parley_keypair *kp);
/* A random registration id in 1..16380 (libsignal's KeyHelper range; fits in 14 bits). */
PARLEY_EXPORT int parley_signal_registration_id_generate(uint32_t *out);
/* A one-time prekey with the given id (avoid id 0: libsignal < 0.24 treats it as "no prekey"). */
PARLEY_EXPORT int parley_signal_prekey_generate(parley_prekey *out, uint32_t id);
/* A signed prekey with the given id, signed by `identity` over its 33-byte public key. */
PARLEY_EXPORT int parley_signal_signed_prekey_generate(parley_signed_prekey *out, const parley_keypair *identity,
						       uint32_t id, uint64_t timestamp_ms);

/* XEdDSA over arbitrary bytes with a key pair's private key / verification with a 33-byte public key.
 * verify returns PARLEY_OK or PARLEY_E_BAD_KEY_SIGNATURE (PARLEY_E_INVALID_KEY for a malformed key). */
PARLEY_EXPORT int parley_signal_sign(uint8_t sig[PARLEY_SIGNAL_SIGNATURE_LEN], const parley_keypair *key,
				     const uint8_t *msg, size_t len);
PARLEY_EXPORT int parley_signal_verify(const uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN], const uint8_t *msg,
				       size_t len, const uint8_t sig[PARLEY_SIGNAL_SIGNATURE_LEN]);

/* ---------------------------------------------------------------- prekey bundle */

/* What a server hands out for a device. Plain data; has_prekey = 0 when no one-time prekey is left
 * (X3DH then runs without DH4, as libsignal allows). */
typedef struct parley_prekey_bundle {
	uint32_t registration_id;
	uint32_t device_id;
	int has_prekey;
	uint32_t prekey_id;
	uint8_t prekey_pub[PARLEY_SIGNAL_PUBKEY_LEN];
	uint32_t signed_prekey_id;
	uint8_t signed_prekey_pub[PARLEY_SIGNAL_PUBKEY_LEN];
	uint8_t signed_prekey_sig[PARLEY_SIGNAL_SIGNATURE_LEN];
	uint8_t identity_key[PARLEY_SIGNAL_PUBKEY_LEN];
} parley_prekey_bundle;

/* ---------------------------------------------------------------- context */

typedef struct parley_signal_ctx parley_signal_ctx;

/* Create a context over `store`. The struct is copied; store->user stays owned by the caller and must
 * outlive the context. The local identity is read from the store on first use. On error *out = NULL. */
PARLEY_EXPORT int parley_signal_ctx_new(parley_signal_ctx **out, const parley_signal_store *store);
/* Free a context (wipes the cached identity). NULL-safe. Does not free the store. */
PARLEY_EXPORT void parley_signal_ctx_free(parley_signal_ctx *ctx);

/* ---------------------------------------------------------------- sessions */

/* X3DH as initiator: verify the bundle (trust of its identity, signed-prekey signature), build a new
 * session for addr (the previous one, if any, is archived), save the identity. Messages encrypted next
 * are PreKeySignalMessages until the peer's first reply decrypts. */
PARLEY_EXPORT int parley_signal_process_bundle(parley_signal_ctx *ctx, const parley_signal_address *addr,
					       const parley_prekey_bundle *bundle);

/* Encrypt `len` bytes (<= PARLEY_SIGNAL_MAX_PLAINTEXT) for addr into out (out_cap >=
 * PARLEY_SIGNAL_CIPHERTEXT_MAX(len)); sets *out_len and *type (PARLEY_SIGNAL_MSG_WHISPER or
 * PARLEY_SIGNAL_MSG_PREKEY). Advances and stores the session. */
PARLEY_EXPORT int parley_signal_encrypt(parley_signal_ctx *ctx, const parley_signal_address *addr,
					const uint8_t *plaintext, size_t len, uint8_t *out, size_t out_cap,
					size_t *out_len, int *type);

/* Decrypt a SignalMessage (type 2) from addr into out (out_cap >= len suffices); sets *out_len. */
PARLEY_EXPORT int parley_signal_decrypt_signal(parley_signal_ctx *ctx, const parley_signal_address *addr,
					       const uint8_t *msg, size_t len, uint8_t *out, size_t out_cap,
					       size_t *out_len);

/* Decrypt a PreKeySignalMessage (type 3) from addr: trust check, X3DH as responder (or reuse of the
 * session already built from the same base key), decryption; on success the session is stored and
 * the one-time prekey removed from the store. On failure nothing is stored and no prekey removed. */
PARLEY_EXPORT int parley_signal_decrypt_prekey(parley_signal_ctx *ctx, const parley_signal_address *addr,
					       const uint8_t *msg, size_t len, uint8_t *out, size_t out_cap,
					       size_t *out_len);

/* Sets *exists to 1 if addr has a session that can encrypt (current state with a sender chain), else 0. */
PARLEY_EXPORT int parley_signal_session_exists(parley_signal_ctx *ctx, const parley_signal_address *addr,
					       int *exists);
/* Forget the session record of addr (all states). */
PARLEY_EXPORT int parley_signal_session_delete(parley_signal_ctx *ctx, const parley_signal_address *addr);

/* The identity key remembered for addr (PARLEY_E_NOT_FOUND if none). */
PARLEY_EXPORT int parley_signal_remote_identity(parley_signal_ctx *ctx, const parley_signal_address *addr,
						uint8_t out[PARLEY_SIGNAL_PUBKEY_LEN]);
/* Accept `key` as the identity of addr (after the user verified the new safety number): later
 * operations with this key no longer fail with PARLEY_E_UNTRUSTED_IDENTITY. */
PARLEY_EXPORT int parley_signal_trust_identity(parley_signal_ctx *ctx, const parley_signal_address *addr,
					       const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN]);

#ifdef __cplusplus
}
#endif
#endif
