/* Known-answer tests of lib/crypto: XEdDSA (libsignal's vector, and where verification is stricter),
 * HKDF (RFC 5869, and agreement with OpenSSL's EVP_KDF "HKDF"), AES-256-CBC (NIST SP 800-38A F.2.5),
 * X25519 keys and Signal key encoding. */
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "../test.h"

static size_t unhex(uint8_t *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void test_xeddsa_vector(void)
{
	uint8_t priv[32], pub[32], msg[33], sig[64], kpub[32];
	crypto_keypair kp;

	unhex(priv, "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865");
	unhex(pub, "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64");
	unhex(msg, "05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a");
	unhex(sig, "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfbede82deb9dcd9fae0bfbb82156"
		   "9b3d9001bd8130cd11d486cef047bd60b86e88");
	TEST_EQ_INT(crypto__keypair_from_private(&kp, priv), PARLEY_OK);
	memcpy(kpub, kp.pub, 32);
	TEST_EQ_MEM(kpub, pub, 32);
	TEST_EQ_INT(crypto__xeddsa_verify(pub, msg, sizeof(msg), sig), PARLEY_OK);
	/* every single-bit flip of signature or message must fail */
	for (int i = 0; i < 64 * 8; i += 7) {
		sig[i / 8] ^= (uint8_t)(1u << (i % 8));
		TEST_EQ_INT(crypto__xeddsa_verify(pub, msg, sizeof(msg), sig), PARLEY_E_BAD_KEY_SIGNATURE);
		sig[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	msg[5] ^= 1;
	TEST_EQ_INT(crypto__xeddsa_verify(pub, msg, sizeof(msg), sig), PARLEY_E_BAD_KEY_SIGNATURE);
	msg[5] ^= 1;
	/* signing with the vector's key verifies, with a random Z and with a fixed Z (deterministic) */
	uint8_t sig2[64], sig3[64], z[64];
	TEST_EQ_INT(crypto__xeddsa_sign(sig2, kp.priv, msg, sizeof(msg)), PARLEY_OK);
	TEST_EQ_INT(crypto__xeddsa_verify(pub, msg, sizeof(msg), sig2), PARLEY_OK);
	memset(z, 0x42, sizeof(z));
	TEST_EQ_INT(crypto__xeddsa_sign_z(sig2, kp.priv, msg, sizeof(msg), z), PARLEY_OK);
	TEST_EQ_INT(crypto__xeddsa_sign_z(sig3, kp.priv, msg, sizeof(msg), z), PARLEY_OK);
	TEST_EQ_MEM(sig2, sig3, 64);
	/* the sign bit must equal the vector's (it is A's, independent of Z) */
	TEST_EQ_INT(sig2[63] & 0x80, sig[63] & 0x80);
	/* s with any of the top 3 bits set is refused before the curve check */
	memcpy(sig3, sig, 64);
	sig3[63] |= 0x20;
	TEST_EQ_INT(crypto__xeddsa_verify(pub, msg, sizeof(msg), sig3), PARLEY_E_BAD_KEY_SIGNATURE);
	/* u = p - 1 (= -1) has no Edwards image */
	uint8_t bad[32];
	memset(bad, 0xFF, 32);
	bad[0] = 0xEC;
	bad[31] = 0x7F;
	TEST_EQ_INT(crypto__xeddsa_verify(bad, msg, sizeof(msg), sig), PARLEY_E_BAD_KEY_SIGNATURE);
}

static void test_xeddsa_random(void)
{
	for (int i = 0; i < 64; i++) {
		crypto_keypair kp;
		uint8_t msg[100], sig[64];
		size_t len = (size_t)i;
		crypto__random(msg, sizeof(msg));
		TEST_EQ_INT(crypto__keypair_generate(&kp), PARLEY_OK);
		TEST_EQ_INT(crypto__xeddsa_sign(sig, kp.priv, msg, len), PARLEY_OK);
		TEST_EQ_INT(crypto__xeddsa_verify(kp.pub, msg, len, sig), PARLEY_OK);
		sig[i % 64] ^= 0x10;
		TEST_EQ_INT(crypto__xeddsa_verify(kp.pub, msg, len, sig), PARLEY_E_BAD_KEY_SIGNATURE);
		sig[i % 64] ^= 0x10;
		/* another key does not verify */
		crypto_keypair other;
		TEST_EQ_INT(crypto__keypair_generate(&other), PARLEY_OK);
		TEST_EQ_INT(crypto__xeddsa_verify(other.pub, msg, len, sig), PARLEY_E_BAD_KEY_SIGNATURE);
	}
}

/* Where verification is stricter than libsignal's (which takes s as 253 bits and checks R = s.B - h.A
 * without a cofactor or a key check): a non-canonical s = s + L and forgeries for a small-order key are
 * refused. Positive controls show each refused signature is one the weaker rule accepts. */
static void test_xeddsa_strict(void)
{
	static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
				      0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
	crypto_keypair kp;
	uint8_t msg[40], sig[64], big[64], wide[64] = {0};
	crypto__random(msg, sizeof(msg));
	TEST_EQ_INT(crypto__keypair_generate(&kp), PARLEY_OK);
	TEST_EQ_INT(crypto__xeddsa_sign(sig, kp.priv, msg, sizeof(msg)), PARLEY_OK);
	TEST_EQ_INT(crypto__xeddsa_verify(kp.pub, msg, sizeof(msg), sig), PARLEY_OK);
	/* s + L: the same scalar mod L, still below 2^253 (libsignal's only check on s) */
	memcpy(big, sig, 64);
	big[63] &= 0x7F;
	unsigned carry = 0;
	for (int i = 0; i < 32; i++) {
		unsigned v = big[32 + i] + L[i] + carry;
		big[32 + i] = (uint8_t)v;
		carry = v >> 8;
	}
	TEST_EQ_INT(carry, 0);
	TEST_EQ_INT(big[63] & 0xE0, 0);
	memcpy(wide, big + 32, 32);
	crypto_core_ed25519_scalar_reduce(wide, wide);
	uint8_t s[32];
	memcpy(s, sig + 32, 32);
	s[31] &= 0x7F;
	TEST_EQ_MEM(wide, s, 32); /* control: reduced, it is the valid s */
	big[63] |= (uint8_t)(sig[63] & 0x80);
	TEST_EQ_INT(crypto__xeddsa_verify(kp.pub, msg, sizeof(msg), big), PARLEY_E_BAD_KEY_SIGNATURE);

	/* u = 0 maps to the Edwards point y = -1 (x = 0), of order 2. With R = r.B and s = r, the equation
	 * s.B = R + h.A holds whenever h is even: a forgery, for any message, under a cofactorless rule. */
	uint8_t u0[32] = {0}, a_ed[32], twice[32], ident[32] = {1}, hash[64], h[32];
	memset(a_ed, 0xFF, sizeof(a_ed));
	a_ed[0] = 0xEC;
	a_ed[31] = 0x7F;
	TEST_EQ_INT(crypto_core_ed25519_add(twice, a_ed, a_ed), 0);
	TEST_EQ_MEM(twice, ident, 32); /* control: A + A is the identity */
	int forgeries = 0;
	for (int i = 0; i < 64; i++) {
		uint8_t r[32], fake[64];
		crypto_core_ed25519_scalar_random(r);
		TEST_EQ_INT(crypto_scalarmult_ed25519_base_noclamp(fake, r), 0);
		memcpy(fake + 32, r, 32); /* r < L < 2^253, sign bit 0 (x of A is 0) */
		msg[0] = (uint8_t)i;
		crypto_hash_sha512_state st;
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, fake, 32);
		crypto_hash_sha512_update(&st, a_ed, 32);
		crypto_hash_sha512_update(&st, msg, sizeof(msg));
		crypto_hash_sha512_final(&st, hash);
		crypto_core_ed25519_scalar_reduce(h, hash);
		forgeries += (h[0] & 1) == 0;
		TEST_EQ_INT(crypto__xeddsa_verify(u0, msg, sizeof(msg), fake), PARLEY_E_BAD_KEY_SIGNATURE);
	}
	TEST_CHECK(forgeries >= 8); /* control: about half of them satisfy the cofactorless equation */
}

static void test_hkdf_rfc5869(void)
{
	uint8_t ikm[80], salt[80], info[80], okm[82], want[82];
	size_t ikm_len, salt_len, info_len;


	/* test case 1 */
	ikm_len = unhex(ikm, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
	salt_len = unhex(salt, "000102030405060708090a0b0c");
	info_len = unhex(info, "f0f1f2f3f4f5f6f7f8f9");
	unhex(want, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
	TEST_EQ_INT(crypto__hkdf_sha256(okm, 42, salt, salt_len, ikm, ikm_len, info, info_len), PARLEY_OK);
	TEST_EQ_MEM(okm, want, 42);
	/* test case 2 (long inputs, 82 bytes out) */
	for (int i = 0; i < 80; i++) {
		ikm[i] = (uint8_t)i;
		salt[i] = (uint8_t)(0x60 + i);
		info[i] = (uint8_t)(0xb0 + i);
	}
	unhex(want, "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e"
		    "09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
	TEST_EQ_INT(crypto__hkdf_sha256(okm, 82, salt, 80, ikm, 80, info, 80), PARLEY_OK);
	TEST_EQ_MEM(okm, want, 82);
	/* test case 3: no salt, no info */
	unhex(want, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
	memset(ikm, 0x0b, 22);
	TEST_EQ_INT(crypto__hkdf_sha256(okm, 42, NULL, 0, ikm, 22, NULL, 0), PARLEY_OK);
	TEST_EQ_MEM(okm, want, 42);
	TEST_EQ_INT(crypto__hkdf_sha256(okm, 255 * 32 + 1, NULL, 0, ikm, 1, NULL, 0), PARLEY_E_INVAL);
}

/* Our HKDF (over libsodium HMAC, for speed) must agree with OpenSSL's EVP_KDF "HKDF" everywhere. */
static void test_hkdf_vs_openssl(void)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	TEST_CHECK(kdf != NULL);
	if (kdf == NULL)
		return;
	for (int i = 0; i < 200; i++) {
		uint8_t ikm[100], salt[64], info[40], a[200], b[200];
		size_t ikm_len = (size_t)(i % 100), salt_len = (size_t)(i * 7 % 64), info_len = (size_t)(i % 40);
		size_t out_len = 1 + (size_t)(i * 13 % 199);
		crypto__random(ikm, sizeof(ikm));
		crypto__random(salt, sizeof(salt));
		crypto__random(info, sizeof(info));
		EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
		OSSL_PARAM params[5], *p = params;
		static const uint8_t zero32[32];
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm, ikm_len);
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 salt_len ? (void *)salt : (void *)zero32, salt_len ? salt_len : 32);
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len);
		*p = OSSL_PARAM_construct_end();
		TEST_EQ_INT(EVP_KDF_derive(kctx, a, out_len, params), 1);
		EVP_KDF_CTX_free(kctx);
		TEST_EQ_INT(crypto__hkdf_sha256(b, out_len, salt, salt_len, ikm, ikm_len, info, info_len), PARLEY_OK);
		TEST_EQ_MEM(a, b, out_len);
	}
	EVP_KDF_free(kdf);
}

static void test_hmac(void)
{
	/* RFC 4231 test case 2 */
	uint8_t out[32], want[32];
	crypto_hmac_ctx st;
	unhex(want, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	crypto__hmac_sha256(out, (const uint8_t *)"Jefe", 4, (const uint8_t *)"what do ya want for nothing?", 28);
	TEST_EQ_MEM(out, want, 32);
	crypto__hmac_init(&st, (const uint8_t *)"Jefe", 4);
	crypto__hmac_update(&st, (const uint8_t *)"what do ya ", 11);
	crypto__hmac_update(&st, (const uint8_t *)"want for nothing?", 17);
	crypto__hmac_final(&st, out);
	TEST_EQ_MEM(out, want, 32);
	/* empty key, empty message */
	unhex(want, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	crypto__hmac_sha256(out, (const uint8_t *)"", 0, (const uint8_t *)"", 0);
	TEST_EQ_MEM(out, want, 32);
	/* OpenSSL-backed HMAC agrees with libsodium's for all key lengths, including > block size */
	for (size_t i = 0; i < 150; i++) {
		uint8_t key[150], msg[300], ref[32];
		crypto__random(key, sizeof(key));
		crypto__random(msg, sizeof(msg));
		crypto_auth_hmacsha256_state ref_st;
		crypto_auth_hmacsha256_init(&ref_st, key, i);
		crypto_auth_hmacsha256_update(&ref_st, msg, i * 2);
		crypto_auth_hmacsha256_final(&ref_st, ref);
		crypto__hmac_sha256(out, key, i, msg, i * 2);
		TEST_EQ_MEM(out, ref, 32);
		crypto__hmac_init(&st, key, i);
		crypto__hmac_update(&st, msg, i);
		crypto__hmac_sha256(want, key, 3, msg, 3); /* a one-shot in between must not disturb it */
		crypto__hmac_update(&st, msg + i, i);
		crypto__hmac_final(&st, out);
		TEST_EQ_MEM(out, ref, 32);
	}
}

static void test_aes_cbc(void)
{
	uint8_t key[32], iv[16], pt[64], want[64], ct[80], back[80];
	size_t n = 0, m = 0;
	unhex(key, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
	unhex(iv, "000102030405060708090a0b0c0d0e0f");
	unhex(pt, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52e"
		  "ff69f2445df4f9b17ad2b417be66c3710");
	unhex(want, "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e2630423146"
		    "1b2eb05e2c39be9fcda6c19078c6a9d1b");
	TEST_EQ_INT(crypto__aes256_cbc_encrypt(key, iv, pt, 64, ct, sizeof(ct), &n), PARLEY_OK);
	TEST_EQ_INT(n, 80);
	TEST_EQ_MEM(ct, want, 64);
	TEST_EQ_INT(crypto__aes256_cbc_decrypt(key, iv, ct, n, back, sizeof(back), &m), PARLEY_OK);
	TEST_EQ_INT(m, 64);
	TEST_EQ_MEM(back, pt, 64);
	/* every length 0..33 round-trips with the right padded size */
	for (size_t len = 0; len < 34; len++) {
		TEST_EQ_INT(crypto__aes256_cbc_encrypt(key, iv, pt, len, ct, sizeof(ct), &n), PARLEY_OK);
		TEST_EQ_INT(n, CRYPTO_CBC_CIPHERTEXT_LEN(len));
		TEST_EQ_INT(crypto__aes256_cbc_decrypt(key, iv, ct, n, back, sizeof(back), &m), PARLEY_OK);
		TEST_EQ_INT(m, len);
		TEST_EQ_MEM(back, pt, len);
	}
	TEST_EQ_INT(crypto__aes256_cbc_encrypt(key, iv, pt, 64, ct, 79, &n), PARLEY_E_INVAL);
	TEST_EQ_INT(crypto__aes256_cbc_decrypt(key, iv, ct, 0, back, sizeof(back), &m), PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(crypto__aes256_cbc_decrypt(key, iv, ct, 17, back, sizeof(back), &m), PARLEY_E_INVALID_MESSAGE);
	/* wrong key: padding check fails (with overwhelming probability for this fixed input) */
	TEST_EQ_INT(crypto__aes256_cbc_encrypt(key, iv, pt, 5, ct, sizeof(ct), &n), PARLEY_OK);
	key[0] ^= 1;
	TEST_EQ_INT(crypto__aes256_cbc_decrypt(key, iv, ct, n, back, sizeof(back), &m), PARLEY_E_INVALID_MESSAGE);
}

static void test_keys(void)
{
	uint8_t ser[33], pub[32];
	crypto_keypair a, b;
	uint8_t s1[32], s2[32];
	TEST_EQ_INT(crypto__keypair_generate(&a), PARLEY_OK);
	TEST_EQ_INT(crypto__keypair_generate(&b), PARLEY_OK);
	TEST_EQ_INT(a.priv[0] & 7, 0);
	TEST_EQ_INT(a.priv[31] & 0xC0, 0x40);
	crypto__dh(s1, a.priv, b.pub);
	crypto__dh(s2, b.priv, a.pub);
	TEST_EQ_MEM(s1, s2, 32);
	crypto__pubkey_serialize(ser, a.pub);
	TEST_EQ_INT(ser[0], 5);
	TEST_EQ_INT(crypto__pubkey_parse(pub, ser, 33), PARLEY_OK);
	TEST_EQ_MEM(pub, a.pub, 32);
	TEST_EQ_INT(crypto__pubkey_parse(pub, ser, 32), PARLEY_E_INVALID_KEY);
	TEST_EQ_INT(crypto__pubkey_parse(pub, ser, 0), PARLEY_E_INVALID_KEY);
	ser[0] = 6;
	TEST_EQ_INT(crypto__pubkey_parse(pub, ser, 33), PARLEY_E_INVALID_KEY);
	TEST_CHECK(crypto__ct_equal(s1, s2, 32));
	s1[31] ^= 1;
	TEST_CHECK(!crypto__ct_equal(s1, s2, 32));
}

int main(void)
{
	if (crypto__init() != PARLEY_OK)
		return 1;
	TEST_RUN(test_xeddsa_vector);
	TEST_RUN(test_xeddsa_random);
	TEST_RUN(test_xeddsa_strict);
	TEST_RUN(test_hkdf_rfc5869);
	TEST_RUN(test_hkdf_vs_openssl);
	TEST_RUN(test_hmac);
	TEST_RUN(test_aes_cbc);
	TEST_RUN(test_keys);
	TEST_EXIT();
}
