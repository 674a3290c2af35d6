/* Test and benchmark kit for server/auth/jose: OpenSSL-generated RSA and P-256 keys, their JWK text, and
 * compact JWS signing (the provider's side, which parleyd never does). Shared by tests/unit/auth and
 * tests/bench/auth so the signing code exists once. */
#ifndef PARLEY_TESTS_JOSE_TESTKIT_H
#define PARLEY_TESTS_JOSE_TESTKIT_H

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "auth/jose.h"

static inline EVP_PKEY *tk_rsa(unsigned bits)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

static inline EVP_PKEY *tk_p256(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* base64url of a BIGNUM parameter, left-padded to pad bytes (0: minimal). */
static inline void tk_bn_b64(EVP_PKEY *k, const char *param, int pad, char *out, size_t cap)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1100];
	out[0] = '\0';
	if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
		return;
	int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n > 0)
		jose__b64url_encode(out, cap, NULL, buf, (size_t)n);
}

/* The public JWK of k as a JSON object; kid and alg may be NULL (member omitted). */
static inline void tk_jwk(EVP_PKEY *k, const char *kid, const char *alg, char *out, size_t cap)
{
	char a[1500], b[1500], kidm[200] = "", algm[64] = "";
	int r;
	if (kid)
		snprintf(kidm, sizeof(kidm), "\"kid\":\"%s\",", kid);
	if (alg)
		snprintf(algm, sizeof(algm), "\"alg\":\"%s\",", alg);
	if (EVP_PKEY_is_a(k, "RSA")) {
		tk_bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0, a, sizeof(a));
		tk_bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0, b, sizeof(b));
		r = snprintf(out, cap, "{%s%s\"kty\":\"RSA\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}", kidm, algm, a, b);
	} else {
		tk_bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, 32, a, sizeof(a));
		tk_bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32, b, sizeof(b));
		r = snprintf(out, cap, "{%s%s\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", kidm, algm, a, b);
	}
	if (r < 0 || (size_t)r >= cap)
		out[0] = '\0'; /* truncated JSON would only confuse the test that reads it */
}

/* base64url(header) "." base64url(payload) into out; returns its length. */
static inline size_t tk_signing_input(const char *header, const char *payload, char *out, size_t cap)
{
	size_t h, p;
	jose__b64url_encode(out, cap, &h, (const uint8_t *)header, strlen(header));
	out[h] = '.';
	jose__b64url_encode(out + h + 1, cap - h - 1, &p, (const uint8_t *)payload, strlen(payload));
	return h + 1 + p;
}

/* Appends "." base64url(sig) to a signing input of length n in out. */
static inline void tk_append_sig(char *out, size_t cap, size_t n, const uint8_t *sig, size_t sig_len)
{
	out[n] = '.';
	jose__b64url_encode(out + n + 1, cap - n - 1, NULL, sig, sig_len);
}

/* Raw signature over in: PKCS#1 v1.5 for RSA, r||s (64 bytes) for P-256. Returns its length, 0 on error. */
static inline size_t tk_raw_sign(EVP_PKEY *k, const char *in, size_t n, uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[1100];
	size_t len = sizeof(der);
	int ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
		 EVP_DigestSign(md, der, &len, (const uint8_t *)in, n) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return 0;
	if (EVP_PKEY_is_a(k, "RSA")) {
		if (len > cap)
			return 0;
		memcpy(sig, der, len);
		return len;
	}
	const uint8_t *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (!es || cap < 64)
		return 0;
	BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
	ECDSA_SIG_free(es);
	return 64;
}

/* A compact JWS of header and payload (JSON texts) signed by k; returns its length, 0 on error. */
static inline size_t tk_sign(EVP_PKEY *k, const char *header, const char *payload, char *out, size_t cap)
{
	uint8_t sig[1100];
	size_t n = tk_signing_input(header, payload, out, cap);
	size_t s = tk_raw_sign(k, out, n, sig, sizeof(sig));
	if (!s)
		return 0;
	tk_append_sig(out, cap, n, sig, s);
	return strlen(out);
}

#endif
