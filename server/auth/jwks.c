/* JWKS (RFC 7517) parsing into OpenSSL public keys. Strict on what we use, tolerant of what we do not:
 * a provider's set routinely carries encryption keys or other curves beside its signing keys, and those
 * are skipped; but a malformed RSA or P-256 signing key means the document is corrupt or forged, and
 * the whole set is refused rather than half-trusted. */
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <parley/error.h>
#include <string.h>

#include "auth/jose_keys.h"
#include "common/alloc.h"

typedef struct jose_key {
	char kid[JOSE_KID_MAX + 1];
	size_t kid_len;
	int has_kid;
	jose_alg alg; /* RS256 for kty RSA, ES256 for kty EC P-256 */
	EVP_PKEY *pkey;
} jose_key;

struct jose_jwks {
	size_t n;
	jose_key keys[JOSE_JWKS_MAX_KEYS];
};

/* Largest modulus we accept, plus one byte for a (tolerated) leading zero. */
#define JWKS_RSA_N_MAX (JOSE_RSA_MAX_BITS / 8 + 1)
#define JWKS_EC_COORD 32

/* Decodes the base64url string member `name` into buf. 0 on success. */
static int jwks_member_b64(const json_t *jwk, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	const json_t *v = json_object_get(jwk, name);
	if (!json_is_string(v))
		return -1;
	return jose__b64url_decode(buf, cap, len, json_string_value(v), json_string_length(v)) == PARLEY_OK ? 0 : -1;
}

/* Builds an EVP_PKEY of key type `type` from params; NULL on failure. */
static EVP_PKEY *jwks_pkey_from_params(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	if (!pkey)
		return NULL;
	/* the EC import already refuses points off the curve; the check makes that a stated property for both
	 * key types instead of an implementation detail of the provider */
	EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int ok = chk && EVP_PKEY_public_check(chk) == 1;
	EVP_PKEY_CTX_free(chk);
	if (!ok) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static EVP_PKEY *jwks_rsa(const json_t *jwk)
{
	uint8_t nb[JWKS_RSA_N_MAX], eb[8];
	size_t nl, el;
	if (jwks_member_b64(jwk, "n", nb, sizeof(nb), &nl) || jwks_member_b64(jwk, "e", eb, sizeof(eb), &el))
		return NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *n = BN_bin2bn(nb, (int)nl, NULL), *e = BN_bin2bn(eb, (int)el, NULL);
	if (!n || !e)
		goto done;
	/* modulus size policy; an even modulus or exponent, or e < 3, is never a real RSA key; e is kept
	 * under 2^32 because huge public exponents only serve to make verification slow */
	int bits = BN_num_bits(n);
	if (bits < JOSE_RSA_MIN_BITS || bits > JOSE_RSA_MAX_BITS || !BN_is_odd(n) || !BN_is_odd(e) ||
	    BN_num_bits(e) < 2 || BN_num_bits(e) > 32)
		goto done;
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		goto done;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (params)
		pkey = jwks_pkey_from_params("RSA", params);
done:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *jwks_ec_p256(const json_t *jwk)
{
	uint8_t pub[1 + 2 * JWKS_EC_COORD];
	size_t xl, yl;
	pub[0] = 0x04; /* SEC 1 uncompressed point */
	if (jwks_member_b64(jwk, "x", pub + 1, JWKS_EC_COORD, &xl) ||
	    jwks_member_b64(jwk, "y", pub + 1 + JWKS_EC_COORD, JWKS_EC_COORD, &yl) || xl != JWKS_EC_COORD ||
	    yl != JWKS_EC_COORD)
		return NULL;
	char group[] = "prime256v1";
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)),
		OSSL_PARAM_END,
	};
	return jwks_pkey_from_params("EC", params);
}

static int jwks_str_is(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* One JWK: 1 kept (into *key), 0 skipped, -1 malformed (the document is refused). */
static int jwks_one(const json_t *jwk, jose_key *key)
{
	if (!json_is_object(jwk))
		return -1;
	const json_t *kty = json_object_get(jwk, "kty"), *use = json_object_get(jwk, "use"),
		     *alg = json_object_get(jwk, "alg"), *kid = json_object_get(jwk, "kid");
	if (!json_is_string(kty) || (use && !json_is_string(use)) || (alg && !json_is_string(alg)) ||
	    (kid && !json_is_string(kid)))
		return -1;
	if (use && !jwks_str_is(use, "sig"))
		return 0; /* an encryption key */
	jose_alg a;
	if (jwks_str_is(kty, "RSA"))
		a = JOSE_ALG_RS256;
	else if (jwks_str_is(kty, "EC") && jwks_str_is(json_object_get(jwk, "crv"), "P-256"))
		a = JOSE_ALG_ES256;
	else
		return 0; /* another key type or curve */
	if (alg) {
		if (!jwks_str_is(alg, "RS256") && !jwks_str_is(alg, "ES256"))
			return 0; /* e.g. an RSA key for RS384 or PS256 only: not ours to use */
		if (!jwks_str_is(alg, a == JOSE_ALG_RS256 ? "RS256" : "ES256"))
			return -1; /* alg contradicts kty */
	}
	memset(key, 0, sizeof(*key));
	if (kid) {
		size_t kl = json_string_length(kid);
		if (kl == 0 || kl > JOSE_KID_MAX)
			return -1;
		memcpy(key->kid, json_string_value(kid), kl);
		key->kid_len = kl;
		key->has_kid = 1;
	}
	key->alg = a;
	key->pkey = a == JOSE_ALG_RS256 ? jwks_rsa(jwk) : jwks_ec_p256(jwk);
	return key->pkey ? 1 : -1;
}

int jose__jwks_parse(const char *doc, size_t len, jose_jwks **out)
{
	*out = NULL;
	if (!doc || len == 0 || len > JOSE_JWKS_MAX_BYTES)
		return PARLEY_E_JWKS_UNAVAILABLE;
	json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t *keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys)) {
		json_decref(root);
		return PARLEY_E_JWKS_UNAVAILABLE;
	}
	jose_jwks *set = parley__calloc(1, sizeof(*set));
	if (!set) {
		json_decref(root);
		return PARLEY_E_NOMEM;
	}
	int rc = PARLEY_OK;
	size_t i;
	const json_t *jwk;
	json_array_foreach(keys, i, jwk) {
		jose_key k;
		int r = jwks_one(jwk, &k);
		if (r == 0)
			continue;
		if (r < 0 || set->n == JOSE_JWKS_MAX_KEYS) {
			if (r > 0)
				EVP_PKEY_free(k.pkey);
			rc = PARLEY_E_JWKS_UNAVAILABLE;
			break;
		}
		set->keys[set->n++] = k;
	}
	json_decref(root);
	if (rc != PARLEY_OK) {
		jose__jwks_free(set);
		return rc;
	}
	*out = set;
	return PARLEY_OK;
}

void jose__jwks_free(jose_jwks *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		EVP_PKEY_free(set->keys[i].pkey);
	parley__free(set);
}

size_t jose__jwks_count(const jose_jwks *set)
{
	return set ? set->n : 0;
}

int jose__jwks_select(const jose_jwks *set, const char *kid, size_t kid_len, jose_alg alg, EVP_PKEY **pkey,
		      unsigned *flags)
{
	const jose_key *found = NULL;
	size_t candidates = 0, kid_matches = 0;
	for (size_t i = 0; set && i < set->n; i++) {
		const jose_key *k = &set->keys[i];
		if (kid) {
			if (!k->has_kid || k->kid_len != kid_len || memcmp(k->kid, kid, kid_len) != 0)
				continue;
			kid_matches++;
		}
		if (k->alg != alg)
			continue;
		candidates++;
		if (!found)
			found = k;
	}
	/* with a kid, the first key of that kid and alg wins (kids are meant to be unique); without one,
	 * guessing among several keys would let any of them vouch for the token: only a lone key is used */
	if (found && (kid || candidates == 1)) {
		*pkey = found->pkey;
		return PARLEY_OK;
	}
	if (flags && ((kid && kid_matches == 0) || (!kid && candidates == 0)))
		*flags |= JOSE_VERIFY_KEY_UNKNOWN;
	return PARLEY_E_ID_TOKEN_SIGNATURE;
}
