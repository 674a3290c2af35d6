/* Primitive wrappers: randomness, X25519, HMAC/HKDF-SHA256 (libsodium), AES-256-CBC (OpenSSL EVP).
 *
 * HKDF is the RFC 5869 composition of libsodium's HMAC-SHA256 rather than OpenSSL's EVP_KDF: the
 * ratchet runs one HKDF per message and EVP_KDF's provider dispatch and parameter parsing cost several
 * times the hash work for such short inputs. tests/unit/crypto checks it against RFC 5869's vectors and
 * against EVP_KDF "HKDF" on random inputs, so the two cannot drift apart.
 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include <parley/error.h>

int crypto__init(void)
{
	/* sodium_init is idempotent and thread-safe; 1 means "already initialised". */
	return sodium_init() < 0 ? PARLEY_E_CRYPTO : PARLEY_OK;
}

void crypto__random(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

void crypto__wipe(void *p, size_t n)
{
	if (n > 0)
		sodium_memzero(p, n);
}

int crypto__ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

/* ---------------------------------------------------------------- X25519 */

void crypto__clamp(uint8_t k[CRYPTO_KEY_LEN])
{
	k[0] &= 0xF8;
	k[31] &= 0x7F;
	k[31] |= 0x40;
}

int crypto__keypair_from_private(crypto_keypair *kp, const uint8_t priv[CRYPTO_KEY_LEN])
{
	if (priv != kp->priv)
		memcpy(kp->priv, priv, CRYPTO_KEY_LEN);
	crypto__clamp(kp->priv);
	if (crypto_scalarmult_base(kp->pub, kp->priv) != 0) {
		crypto__keypair_wipe(kp);
		return PARLEY_E_CRYPTO;
	}
	return PARLEY_OK;
}

int crypto__keypair_generate(crypto_keypair *kp)
{
	int rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	crypto__random(kp->priv, CRYPTO_KEY_LEN);
	return crypto__keypair_from_private(kp, kp->priv);
}

void crypto__keypair_wipe(crypto_keypair *kp)
{
	crypto__wipe(kp, sizeof(*kp));
}

int crypto__dh(uint8_t out[CRYPTO_KEY_LEN], const uint8_t priv[CRYPTO_KEY_LEN], const uint8_t pub[CRYPTO_KEY_LEN])
{
	/* libsodium returns -1 for an all-zero result (low-order peer key) but still writes the zeros;
	 * libsignal accepts that case, so we do too to stay interoperable byte for byte. */
	int ignored = crypto_scalarmult(out, priv, pub);
	(void)ignored;
	return PARLEY_OK;
}

void crypto__pubkey_serialize(uint8_t out[CRYPTO_SIGNAL_PUBKEY_LEN], const uint8_t pub[CRYPTO_KEY_LEN])
{
	out[0] = CRYPTO_SIGNAL_KEY_TYPE;
	memcpy(out + 1, pub, CRYPTO_KEY_LEN);
}

int crypto__pubkey_parse(uint8_t pub[CRYPTO_KEY_LEN], const uint8_t *in, size_t len)
{
	if (in == NULL || len < CRYPTO_SIGNAL_PUBKEY_LEN || in[0] != CRYPTO_SIGNAL_KEY_TYPE)
		return PARLEY_E_INVALID_KEY;
	memcpy(pub, in + 1, CRYPTO_KEY_LEN);
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- hashes, MAC, KDF */

void crypto__sha512(uint8_t out[64], const uint8_t *in, size_t len)
{
	crypto_hash_sha512(out, in, len);
}

void crypto__hmac_sha256(uint8_t out[CRYPTO_HMAC_LEN], const uint8_t *key, size_t key_len, const uint8_t *msg,
			 size_t msg_len)
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, msg, msg_len);
	crypto_auth_hmacsha256_final(&st, out);
	crypto__wipe(&st, sizeof(st));
}

void crypto__hmac_init(crypto_hmac_ctx *st, const uint8_t *key, size_t key_len)
{
	crypto_auth_hmacsha256_init(st, key, key_len);
}

void crypto__hmac_update(crypto_hmac_ctx *st, const uint8_t *p, size_t n)
{
	crypto_auth_hmacsha256_update(st, p, n);
}

void crypto__hmac_final(crypto_hmac_ctx *st, uint8_t out[CRYPTO_HMAC_LEN])
{
	crypto_auth_hmacsha256_final(st, out);
	crypto__wipe(st, sizeof(*st));
}

int crypto__hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
			size_t ikm_len, const uint8_t *info, size_t info_len)
{
	static const uint8_t zero_salt[CRYPTO_HMAC_LEN];
	uint8_t prk[CRYPTO_HMAC_LEN], t[CRYPTO_HMAC_LEN];
	crypto_auth_hmacsha256_state base, st;
	size_t done = 0;
	uint8_t counter = 1;

	if (out_len > 255 * CRYPTO_HMAC_LEN || (out_len > 0 && out == NULL))
		return PARLEY_E_INVAL;
	if (salt == NULL || salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	crypto__hmac_sha256(prk, salt, salt_len, ikm, ikm_len);
	/* Keyed once with PRK; each block resumes from a copy of this state (saves re-hashing the key). */
	crypto_auth_hmacsha256_init(&base, prk, sizeof(prk));
	while (done < out_len) {
		size_t n = out_len - done < CRYPTO_HMAC_LEN ? out_len - done : CRYPTO_HMAC_LEN;
		st = base;
		if (counter > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &counter, 1);
		crypto_auth_hmacsha256_final(&st, t);
		memcpy(out + done, t, n);
		done += n;
		counter++;
	}
	crypto__wipe(prk, sizeof(prk));
	crypto__wipe(t, sizeof(t));
	crypto__wipe(&base, sizeof(base));
	crypto__wipe(&st, sizeof(st));
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- AES-256-CBC */

/* The cipher object is fetched once (an implicit fetch per call costs a provider lookup), and each
 * thread reuses one EVP_CIPHER_CTX (freed by the key destructor at thread exit) so the hot path does
 * not allocate. */
static EVP_CIPHER *aes_cbc;
static pthread_key_t aes_ctx_key;
static int aes_init_ok;
static pthread_once_t aes_once = PTHREAD_ONCE_INIT;

static void aes_ctx_destroy(void *p)
{
	EVP_CIPHER_CTX_free(p);
}

static void aes_init(void)
{
	aes_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (aes_cbc == NULL)
		return;
	if (pthread_key_create(&aes_ctx_key, aes_ctx_destroy) != 0)
		return;
	aes_init_ok = 1;
}

static EVP_CIPHER_CTX *aes_ctx(void)
{
	EVP_CIPHER_CTX *ctx;

	if (pthread_once(&aes_once, aes_init) != 0 || !aes_init_ok)
		return NULL;
	ctx = pthread_getspecific(aes_ctx_key);
	if (ctx == NULL) {
		ctx = EVP_CIPHER_CTX_new();
		if (ctx == NULL)
			return NULL;
		if (pthread_setspecific(aes_ctx_key, ctx) != 0) {
			EVP_CIPHER_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

int crypto__aes256_cbc_encrypt(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t iv[CRYPTO_AES_IV_LEN],
			       const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx;
	int n1 = 0, n2 = 0;

	if (in_len > (size_t)INT32_MAX - CRYPTO_AES_BLOCK || out_cap < CRYPTO_CBC_CIPHERTEXT_LEN(in_len))
		return PARLEY_E_INVAL;
	ctx = aes_ctx();
	if (ctx == NULL)
		return PARLEY_E_CRYPTO;
	if (EVP_EncryptInit_ex2(ctx, aes_cbc, key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, out, &n1, in, (int)in_len) != 1 || EVP_EncryptFinal_ex(ctx, out + n1, &n2) != 1) {
		EVP_CIPHER_CTX_reset(ctx);
		return PARLEY_E_CRYPTO;
	}
	/* reset drops the expanded key schedule so it does not linger in the cached context */
	EVP_CIPHER_CTX_reset(ctx);
	*out_len = (size_t)n1 + (size_t)n2;
	return PARLEY_OK;
}

int crypto__aes256_cbc_decrypt(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t iv[CRYPTO_AES_IV_LEN],
			       const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx;
	int n1 = 0, n2 = 0;

	if (in_len == 0 || in_len % CRYPTO_AES_BLOCK != 0 || in_len > (size_t)INT32_MAX)
		return PARLEY_E_INVALID_MESSAGE;
	if (out_cap < in_len)
		return PARLEY_E_INVAL;
	ctx = aes_ctx();
	if (ctx == NULL)
		return PARLEY_E_CRYPTO;
	if (EVP_DecryptInit_ex2(ctx, aes_cbc, key, iv, NULL) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n1, in, (int)in_len) != 1) {
		EVP_CIPHER_CTX_reset(ctx);
		return PARLEY_E_CRYPTO;
	}
	if (EVP_DecryptFinal_ex(ctx, out + n1, &n2) != 1) {
		/* bad PKCS#7 padding: the peer's fault, not ours */
		EVP_CIPHER_CTX_reset(ctx);
		crypto__wipe(out, in_len);
		return PARLEY_E_INVALID_MESSAGE;
	}
	EVP_CIPHER_CTX_reset(ctx);
	*out_len = (size_t)n1 + (size_t)n2;
	return PARLEY_OK;
}
