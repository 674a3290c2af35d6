/* Internal cryptographic primitives of libparley: thin wrappers over libsodium 1.0.18 and OpenSSL 3.
 *
 * Why a wrapper layer: the Signal layer above must not care which library provides a primitive, every
 * failure must surface as a parley_err (never an abort or a print), and the few places where Signal
 * needs something neither library offers directly (XEdDSA, Signal's 33-byte public key encoding) live
 * here, next to their known-answer tests (tests/unit/crypto).
 *
 * Conventions:
 *  - All functions return PARLEY_OK (0) or a parley_err; outputs are written only on success unless a
 *    comment says otherwise.
 *  - Raw X25519 public keys are 32 bytes (the Montgomery u-coordinate, little-endian). The Signal wire
 *    form is 33 bytes: 0x05 || u (CRYPTO_SIGNAL_PUBKEY_LEN).
 *  - Private keys are 32 bytes and always stored clamped (k[0] &= 248, k[31] &= 127, k[31] |= 64),
 *    which is what libsignal stores and what XEdDSA signing hashes.
 *  - Secrets on the stack are wiped with crypto__wipe before returning; callers own their buffers.
 *  - Thread-safe: no mutable global state apart from libsodium's one-time init and OpenSSL's cached
 *    cipher object (both initialised once, thread-safely).
 */
#ifndef PARLEY_CRYPTO_CRYPTO_H
#define PARLEY_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define CRYPTO_KEY_LEN 32           /* X25519 public (raw u) / private key, HMAC/AES key */
#define CRYPTO_SIGNAL_PUBKEY_LEN 33 /* 0x05 || u */
#define CRYPTO_SIGNAL_KEY_TYPE 0x05 /* libsignal's KeyType::Djb */
#define CRYPTO_SIG_LEN 64           /* XEdDSA signature: R || s, sign bit of A in bit 255 */
#define CRYPTO_XEDDSA_RANDOM_LEN 64 /* Z, the signing nonce randomness */
#define CRYPTO_HMAC_LEN 32
#define CRYPTO_AES_BLOCK 16
#define CRYPTO_AES_IV_LEN 16

typedef struct crypto_keypair {
	uint8_t pub[CRYPTO_KEY_LEN];  /* raw u-coordinate */
	uint8_t priv[CRYPTO_KEY_LEN]; /* clamped */
} crypto_keypair;

/* Initialise libsodium (idempotent, thread-safe). Every entry point of the Signal layer that needs
 * randomness calls this; PARLEY_E_CRYPTO if libsodium cannot initialise. */
int crypto__init(void);

/* ---------------------------------------------------------------- randomness, memory helpers */

/* Fill buf with n bytes from the OS CSPRNG (libsodium randombytes_buf). */
void crypto__random(void *buf, size_t n);
/* Zero n bytes in a way the compiler cannot elide (sodium_memzero). NULL-safe when n == 0. */
void crypto__wipe(void *p, size_t n);
/* Constant-time equality of two n-byte buffers: 1 if equal, 0 if not (sodium_memcmp). */
int crypto__ct_equal(const void *a, const void *b, size_t n);

/* ---------------------------------------------------------------- X25519 */

/* Clamp a 32-byte private key in place (libsignal's PrivateKey::deserialize). */
void crypto__clamp(uint8_t k[CRYPTO_KEY_LEN]);
/* Generate a fresh key pair from the CSPRNG. */
int crypto__keypair_generate(crypto_keypair *kp);
/* Build a key pair from 32 private bytes (clamped on load, as libsignal does) and derive its public key. */
int crypto__keypair_from_private(crypto_keypair *kp, const uint8_t priv[CRYPTO_KEY_LEN]);
/* Wipe a key pair. */
void crypto__keypair_wipe(crypto_keypair *kp);
/* X25519(priv, pub) into out. Like libsignal, an all-zero result (low-order peer key) is NOT an error:
 * it is returned as zeros (libsodium's -1 is ignored on purpose to stay byte-compatible). */
int crypto__dh(uint8_t out[CRYPTO_KEY_LEN], const uint8_t priv[CRYPTO_KEY_LEN],
	       const uint8_t pub[CRYPTO_KEY_LEN]);

/* Signal's 33-byte public key form: out = 0x05 || pub. */
void crypto__pubkey_serialize(uint8_t out[CRYPTO_SIGNAL_PUBKEY_LEN], const uint8_t pub[CRYPTO_KEY_LEN]);
/* Parse Signal's public key form. Mirrors libsignal's PublicKey::deserialize: len 0 or len < 33 or a
 * first byte other than 0x05 give PARLEY_E_INVALID_KEY; bytes after the first 33 are ignored (as
 * libsignal does). Callers that parse a length-delimited protobuf field that must be exactly 33 bytes
 * check the length themselves. */
int crypto__pubkey_parse(uint8_t pub[CRYPTO_KEY_LEN], const uint8_t *in, size_t len);

/* ---------------------------------------------------------------- XEdDSA (libsignal flavour) */

/* Sign msg with an X25519 private key (clamped) as libsignal's calculate_signature does: A = k·B,
 * the sign bit of A travels in bit 255 of the signature, r = SHA-512(0xFE||0xFF*31||k||msg||Z).
 * Z comes from the CSPRNG. Constant time with respect to the private key. */
int crypto__xeddsa_sign(uint8_t sig[CRYPTO_SIG_LEN], const uint8_t priv[CRYPTO_KEY_LEN], const uint8_t *msg,
			size_t msg_len);
/* Same, with caller-provided Z (tests reproduce signatures; never reuse Z in production). */
int crypto__xeddsa_sign_z(uint8_t sig[CRYPTO_SIG_LEN], const uint8_t priv[CRYPTO_KEY_LEN], const uint8_t *msg,
			  size_t msg_len, const uint8_t z[CRYPTO_XEDDSA_RANDOM_LEN]);
/* Verify an XEdDSA signature against a raw X25519 public key (u). PARLEY_OK if valid,
 * PARLEY_E_BAD_KEY_SIGNATURE if not (including malformed keys/signatures), PARLEY_E_CRYPTO on an
 * internal library failure. Works on public data only (not constant time, need not be). */
int crypto__xeddsa_verify(const uint8_t pub[CRYPTO_KEY_LEN], const uint8_t *msg, size_t msg_len,
			  const uint8_t sig[CRYPTO_SIG_LEN]);

/* ---------------------------------------------------------------- hashes, MAC, KDF */

void crypto__sha512(uint8_t out[64], const uint8_t *in, size_t len);

/* One-shot HMAC-SHA256 (any key length), OpenSSL-backed like the streaming form below. */
void crypto__hmac_sha256(uint8_t out[CRYPTO_HMAC_LEN], const uint8_t *key, size_t key_len, const uint8_t *msg,
			 size_t msg_len);
/* Two HMACs under the same key (the key is hashed once): out1 = HMAC(key, m1), out2 = HMAC(key, m2). */
void crypto__hmac_sha256_pair(const uint8_t *key, size_t key_len, const uint8_t *m1, size_t n1,
			      uint8_t out1[CRYPTO_HMAC_LEN], const uint8_t *m2, size_t n2, uint8_t out2[CRYPTO_HMAC_LEN]);

/* Streaming HMAC-SHA256, for MACs over several non-contiguous pieces (Signal's IK||IK||version||body)
 * without copying them together. Runs on OpenSSL's SHA-256 (SHA-NI / AVX2 assembly: about 2-3x
 * faster than libsodium's portable C for these short inputs) through one EVP_MAC_CTX cached per
 * thread, so: at most ONE streaming HMAC may be in progress per thread, and it must be finished with
 * crypto__hmac_final (which also wipes the key state). One-shot crypto__hmac_sha256 / HKDF calls in
 * between are fine (they use a different context). Falls back to libsodium if OpenSSL cannot
 * provide HMAC. */
typedef struct crypto_hmac_ctx {
	void *ossl; /* EVP_MAC_CTX borrowed from the thread cache, or NULL for the fallback */
	crypto_auth_hmacsha256_state fallback;
} crypto_hmac_ctx;
void crypto__hmac_init(crypto_hmac_ctx *st, const uint8_t *key, size_t key_len);
void crypto__hmac_update(crypto_hmac_ctx *st, const uint8_t *p, size_t n);
void crypto__hmac_final(crypto_hmac_ctx *st, uint8_t out[CRYPTO_HMAC_LEN]);

/* Re-key this thread's cached HMAC contexts with a zero key, so that the keyed state of the last
 * chain/message key does not linger in memory after a Signal operation (they are otherwise only
 * cleansed at the next HMAC or at thread exit). Cheap (two HMAC key setups); call after each
 * high-level operation. */
void crypto__scrub_thread(void);

/* HKDF-SHA256 (RFC 5869) extract + expand. salt may be NULL/0 (= 32 zero bytes, as RFC 5869 says).
 * out_len <= 255*32 else PARLEY_E_INVAL. Known-answer tested against RFC 5869 and cross-checked
 * against OpenSSL's EVP_KDF "HKDF" in tests/unit/crypto. */
int crypto__hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
			size_t ikm_len, const uint8_t *info, size_t info_len);

/* ---------------------------------------------------------------- AES-256-CBC with PKCS#7 (OpenSSL EVP) */

/* Output size of encrypting n bytes: n rounded up to the next multiple of 16, plus a full block of
 * padding when n is already a multiple of 16. */
#define CRYPTO_CBC_CIPHERTEXT_LEN(n) (((n) / CRYPTO_AES_BLOCK + 1) * CRYPTO_AES_BLOCK)

/* Encrypt in[0..in_len) into out, which must hold CRYPTO_CBC_CIPHERTEXT_LEN(in_len) bytes (out_cap is
 * checked: PARLEY_E_INVAL if too small). in and out must not overlap. *out_len gets the size. */
int crypto__aes256_cbc_encrypt(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t iv[CRYPTO_AES_IV_LEN],
			       const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len);
/* Decrypt; in_len must be a non-zero multiple of 16 and out must hold in_len bytes. Bad length or bad
 * padding: PARLEY_E_INVALID_MESSAGE (out may then hold garbage that the caller must not use; it is
 * wiped). */
int crypto__aes256_cbc_decrypt(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t iv[CRYPTO_AES_IV_LEN],
			       const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len);

#endif
