/* Primitive wrappers: randomness, X25519, HMAC/HKDF-SHA256 (libsodium), AES-256-CBC (OpenSSL EVP).
 *
 * HKDF is the RFC 5869 composition of HMAC-SHA256 (OpenSSL EVP_MAC) rather than OpenSSL's EVP_KDF:
 * the ratchet runs one HKDF per message and EVP_KDF's per-call context setup and parameter parsing
 * cost several times the hash work for such short inputs. tests/unit/crypto checks it against RFC 5869's vectors and
 * against EVP_KDF "HKDF" on random inputs, so the two cannot drift apart.
 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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

/* HMAC runs on OpenSSL's SHA-256 through EVP_MAC contexts cached per thread (two: one for one-shot
 * calls and HKDF, one for the streaming API), re-keyed by EVP_MAC_init on each use: no allocation on
 * the hot path. The MAC and digest are fetched once. If anything of that is unavailable we fall back
 * to libsodium's HMAC (same results, slower). */
static EVP_MAC *hmac_alg;
static pthread_key_t hmac_tls[2];
static int hmac_init_ok;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void mac_ctx_destroy(void *p)
{
	EVP_MAC_CTX_free(p);
}

static void hmac_global_init(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (hmac_alg == NULL)
		return;
	if (pthread_key_create(&hmac_tls[0], mac_ctx_destroy) != 0 ||
	    pthread_key_create(&hmac_tls[1], mac_ctx_destroy) != 0)
		return;
	hmac_init_ok = 1;
}

/* The thread's EVP_MAC_CTX number `which` (0 one-shot, 1 streaming), or NULL. */
static EVP_MAC_CTX *thread_mac(int which)
{
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];

	if (pthread_once(&hmac_once, hmac_global_init) != 0 || !hmac_init_ok)
		return NULL;
	ctx = pthread_getspecific(hmac_tls[which]);
	if (ctx != NULL)
		return ctx;
	ctx = EVP_MAC_CTX_new(hmac_alg);
	if (ctx == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(ctx, params) != 1 || pthread_setspecific(hmac_tls[which], ctx) != 0) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Start an HMAC on the thread's context `which`. reuse = 1 means "same key as the previous HMAC on
 * this context": EVP_MAC_init with a NULL key then restarts from the cached inner/outer pads instead
 * of hashing the key again (HKDF-expand blocks and the two chain-key HMACs share a key). */
static void hmac_start(crypto_hmac_ctx *st, int which, const uint8_t *key, size_t key_len, int reuse)
{
	static const uint8_t empty[1];
	st->ossl = thread_mac(which);
	if (st->ossl != NULL) {
		/* a NULL key means "keep the previous key" to EVP_MAC_init: only pass NULL on purpose */
		const uint8_t *k = reuse ? NULL : (key_len > 0 ? key : empty);
		if (EVP_MAC_init(st->ossl, k, reuse ? 0 : key_len, NULL) == 1)
			return;
	}
	st->ossl = NULL;
	crypto_auth_hmacsha256_init(&st->fallback, key, key_len);
}

static void hmac_begin(crypto_hmac_ctx *st, int which, const uint8_t *key, size_t key_len)
{
	hmac_start(st, which, key, key_len, 0);
}

void crypto__hmac_update(crypto_hmac_ctx *st, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	if (st->ossl != NULL) {
		if (EVP_MAC_update(st->ossl, p, n) == 1)
			return;
		/* cannot happen for HMAC-SHA256 short of memory corruption; poison the result */
		st->ossl = NULL;
		crypto_auth_hmacsha256_init(&st->fallback, (const uint8_t *)"", 0);
		return;
	}
	crypto_auth_hmacsha256_update(&st->fallback, p, n);
}

void crypto__hmac_final(crypto_hmac_ctx *st, uint8_t out[CRYPTO_HMAC_LEN])
{
	size_t n = 0;
	if (st->ossl == NULL || EVP_MAC_final(st->ossl, out, &n, CRYPTO_HMAC_LEN) != 1 || n != CRYPTO_HMAC_LEN) {
		if (st->ossl != NULL)
			crypto_auth_hmacsha256_init(&st->fallback, (const uint8_t *)"", 0);
		crypto_auth_hmacsha256_final(&st->fallback, out);
	}
	crypto__wipe(&st->fallback, sizeof(st->fallback));
	st->ossl = NULL;
}

void crypto__scrub_thread(void)
{
	static const uint8_t zero[CRYPTO_HMAC_LEN];
	if (pthread_once(&hmac_once, hmac_global_init) != 0 || !hmac_init_ok)
		return;
	for (int i = 0; i < 2; i++) {
		EVP_MAC_CTX *ctx = pthread_getspecific(hmac_tls[i]);
		if (ctx != NULL)
			(void)EVP_MAC_init(ctx, zero, sizeof(zero), NULL);
	}
}

void crypto__hmac_init(crypto_hmac_ctx *st, const uint8_t *key, size_t key_len)
{
	hmac_begin(st, 1, key, key_len);
}

void crypto__hmac_sha256(uint8_t out[CRYPTO_HMAC_LEN], const uint8_t *key, size_t key_len, const uint8_t *msg,
			 size_t msg_len)
{
	crypto_hmac_ctx st;
	hmac_begin(&st, 0, key, key_len);
	crypto__hmac_update(&st, msg, msg_len);
	crypto__hmac_final(&st, out);
}

void crypto__hmac_sha256_pair(const uint8_t *key, size_t key_len, const uint8_t *m1, size_t n1,
			      uint8_t out1[CRYPTO_HMAC_LEN], const uint8_t *m2, size_t n2, uint8_t out2[CRYPTO_HMAC_LEN])
{
	crypto_hmac_ctx st;
	int keyed;
	hmac_start(&st, 0, key, key_len, 0);
	keyed = st.ossl != NULL; /* only an OpenSSL context that took this key may be reused */
	crypto__hmac_update(&st, m1, n1);
	crypto__hmac_final(&st, out1);
	hmac_start(&st, 0, key, key_len, keyed);
	crypto__hmac_update(&st, m2, n2);
	crypto__hmac_final(&st, out2);
}

int crypto__hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
			size_t ikm_len, const uint8_t *info, size_t info_len)
{
	static const uint8_t zero_salt[CRYPTO_HMAC_LEN];
	uint8_t prk[CRYPTO_HMAC_LEN], t[CRYPTO_HMAC_LEN];
	crypto_hmac_ctx st;
	size_t done = 0;
	uint8_t counter = 1;
	int keyed = 0;

	if (out_len > 255 * CRYPTO_HMAC_LEN || (out_len > 0 && out == NULL))
		return PARLEY_E_INVAL;
	if (salt == NULL || salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	crypto__hmac_sha256(prk, salt, salt_len, ikm, ikm_len);
	while (done < out_len) {
		size_t n = out_len - done < CRYPTO_HMAC_LEN ? out_len - done : CRYPTO_HMAC_LEN;
		/* blocks after the first reuse the PRK-keyed pads, if OpenSSL took the key */
		hmac_start(&st, 0, prk, sizeof(prk), keyed);
		keyed = st.ossl != NULL;
		if (counter > 1)
			crypto__hmac_update(&st, t, sizeof(t));
		crypto__hmac_update(&st, info, info_len);
		crypto__hmac_update(&st, &counter, 1);
		crypto__hmac_final(&st, t);
		memcpy(out + done, t, n);
		done += n;
		counter++;
	}
	crypto__wipe(prk, sizeof(prk));
	crypto__wipe(t, sizeof(t));
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
