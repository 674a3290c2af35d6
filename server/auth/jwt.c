/* JWS compact verification (RFC 7515 §5.2) restricted to RS256 and ES256, and the claim checks of ID
 * tokens (OIDC Core 3.1.3.7) and business-signed assertions. The payload JSON is parsed only after the
 * signature verifies: unauthenticated input reaches the JSON parser only through the small header. */
#include <openssl/ecdsa.h>
#include <parley/error.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "auth/jose_keys.h"
#include "common/alloc.h"

#define JWT_SIG_MAX (JOSE_RSA_MAX_BITS / 8)
#define JWT_ES256_SIG 64
/* 9999-12-31T23:59:59Z: NumericDates beyond are refused so that now +/- skew arithmetic cannot overflow */
#define JWT_TIME_MAX INT64_C(253402300799)
#define JWT_SKEW_MAX 86400

/* Decodes a base64url part into a new buffer (*out, *len); PARLEY_E_ID_TOKEN_INVALID if it is not
 * base64url. */
static int jwt_decode_part(const char *p, size_t n, uint8_t **out, size_t *len)
{
	size_t cap = n / 4 * 3 + 3;
	*out = parley__malloc(cap);
	if (!*out)
		return PARLEY_E_NOMEM;
	if (jose__b64url_decode(*out, cap, len, p, n) != PARLEY_OK) {
		parley__free(*out);
		*out = NULL;
		return PARLEY_E_ID_TOKEN_INVALID;
	}
	return PARLEY_OK;
}

/* Parses decoded bytes as a JSON object (duplicate members refused: two parsers must not disagree on
 * which "alg" or "iss" counts); NULL otherwise. */
static json_t *jwt_json_object(const uint8_t *buf, size_t len)
{
	json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* The JOSE header: alg, kid, typ, crit. On success *alg and *kid (NULL if absent, into hdr) are set. */
static int jwt_header(const json_t *hdr, jose_alg *alg, const json_t **kid)
{
	const json_t *a = json_object_get(hdr, "alg"), *typ = json_object_get(hdr, "typ");
	*kid = json_object_get(hdr, "kid");
	if (!json_is_string(a) || (*kid && (!json_is_string(*kid) || json_string_length(*kid) == 0 ||
					    json_string_length(*kid) > JOSE_KID_MAX)))
		return PARLEY_E_ID_TOKEN_INVALID;
	/* explicit typing (RFC 8725 §3.11): a token typed as something else (e.g. an at+jwt access token)
	 * is not accepted in place of an ID token or an assertion */
	if (typ && (!json_is_string(typ) ||
		    (strcasecmp(json_string_value(typ), "JWT") != 0 &&
		     strcasecmp(json_string_value(typ), "application/jwt") != 0)))
		return PARLEY_E_ID_TOKEN_INVALID;
	/* we implement no extension, so any critical one must make us refuse (RFC 7515 §4.1.11) */
	if (json_object_get(hdr, "crit"))
		return PARLEY_E_ID_TOKEN_INVALID;
	if (strcmp(json_string_value(a), "RS256") == 0)
		*alg = JOSE_ALG_RS256;
	else if (strcmp(json_string_value(a), "ES256") == 0)
		*alg = JOSE_ALG_ES256;
	else
		return PARLEY_E_ID_TOKEN_SIGNATURE; /* none, HS256 and everything else: refused, never tried */
	return PARLEY_OK;
}

/* ES256 carries r||s (RFC 7518 §3.4); OpenSSL verifies DER. */
static int jwt_es256_der(const uint8_t rs[JWT_ES256_SIG], uint8_t **der, int *der_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
	if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return PARLEY_E_NOMEM;
	}
	*der = NULL;
	*der_len = i2d_ECDSA_SIG(sig, der);
	ECDSA_SIG_free(sig);
	return *der_len > 0 ? PARLEY_OK : PARLEY_E_NOMEM;
}

static int jwt_signature_ok(EVP_PKEY *pkey, jose_alg alg, const uint8_t *sig, size_t sig_len, const char *input,
			    size_t input_len)
{
	uint8_t *der = NULL;
	int der_len = 0;
	if (alg == JOSE_ALG_ES256) {
		if (sig_len != JWT_ES256_SIG)
			return PARLEY_E_ID_TOKEN_SIGNATURE;
		int rc = jwt_es256_der(sig, &der, &der_len);
		if (rc != PARLEY_OK)
			return rc;
		sig = der;
		sig_len = (size_t)der_len;
	} else if (sig_len != (size_t)EVP_PKEY_get_size(pkey)) {
		return PARLEY_E_ID_TOKEN_SIGNATURE; /* RFC 8017 §8.2.2 step 1 */
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		 EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok ? PARLEY_OK : PARLEY_E_ID_TOKEN_SIGNATURE;
}

/* A string claim: absent is fine (*out stays NULL), present must be a string. */
static int jwt_claim_str(const json_t *root, const char *name, const char **out)
{
	const json_t *v = json_object_get(root, name);
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

/* A NumericDate (RFC 7519 §2): a JSON number of seconds, fractions truncated, 0..JWT_TIME_MAX. */
static int jwt_claim_time(const json_t *root, const char *name, int64_t *out, int *has)
{
	const json_t *v = json_object_get(root, name);
	*has = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || i > JWT_TIME_MAX)
			return -1;
		*out = (int64_t)i;
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(d >= 0.0 && d <= (double)JWT_TIME_MAX)) /* also refuses NaN */
			return -1;
		*out = (int64_t)d;
	} else {
		return -1;
	}
	*has = 1;
	return 0;
}

/* A boolean claim: -1 absent, 0/1; some providers send the strings "true"/"false" (Amazon Cognito). */
static int jwt_claim_bool(const json_t *root, const char *name, int *out)
{
	const json_t *v = json_object_get(root, name);
	*out = -1;
	if (!v)
		return 0;
	if (json_is_boolean(v))
		*out = json_is_true(v);
	else if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0)
		*out = 1;
	else if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

static int jwt_claims(json_t *root, jose_claims *c)
{
	c->root = root;
	c->aud = json_object_get(root, "aud");
	if (c->aud && !json_is_string(c->aud)) {
		size_t i;
		const json_t *a;
		if (!json_is_array(c->aud))
			return -1;
		json_array_foreach(c->aud, i, a) {
			if (!json_is_string(a))
				return -1;
		}
	}
	if (jwt_claim_str(root, "iss", &c->iss) || jwt_claim_str(root, "sub", &c->sub) ||
	    jwt_claim_str(root, "azp", &c->azp) || jwt_claim_str(root, "nonce", &c->nonce) ||
	    jwt_claim_str(root, "jti", &c->jti) || jwt_claim_str(root, "email", &c->email) ||
	    jwt_claim_str(root, "phone_number", &c->phone_number) || jwt_claim_time(root, "exp", &c->exp, &c->has_exp) ||
	    jwt_claim_time(root, "iat", &c->iat, &c->has_iat) || jwt_claim_time(root, "nbf", &c->nbf, &c->has_nbf) ||
	    jwt_claim_bool(root, "email_verified", &c->email_verified) ||
	    jwt_claim_bool(root, "phone_number_verified", &c->phone_number_verified))
		return -1;
	return 0;
}

int jose__jwt_verify(const char *token, size_t len, const jose_jwks *jwks, jose_claims *out, unsigned *flags)
{
	memset(out, 0, sizeof(*out));
	if (flags)
		*flags = 0;
	if (!token || len == 0 || len > JOSE_JWT_MAX_BYTES)
		return PARLEY_E_ID_TOKEN_INVALID;
	const char *dot1 = memchr(token, '.', len);
	const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return PARLEY_E_ID_TOKEN_INVALID; /* not exactly three parts */
	const char *pay = dot1 + 1, *sigp = dot2 + 1;
	size_t hdr_len = (size_t)(dot1 - token), pay_len = (size_t)(dot2 - pay), sig_b64_len = len - (size_t)(sigp - token);
	if (hdr_len == 0 || pay_len == 0)
		return PARLEY_E_ID_TOKEN_INVALID;

	uint8_t *hdr_raw = NULL, *pay_raw = NULL;
	size_t hdr_raw_len, pay_raw_len;
	int rc = jwt_decode_part(token, hdr_len, &hdr_raw, &hdr_raw_len);
	if (rc != PARLEY_OK)
		return rc;
	json_t *hdr = jwt_json_object(hdr_raw, hdr_raw_len);
	parley__free(hdr_raw);
	if (!hdr)
		return PARLEY_E_ID_TOKEN_INVALID;
	jose_alg alg;
	const json_t *kid;
	rc = jwt_header(hdr, &alg, &kid);
	EVP_PKEY *pkey = NULL;
	if (rc == PARLEY_OK)
		rc = jose__jwks_select(jwks, kid ? json_string_value(kid) : NULL, kid ? json_string_length(kid) : 0,
				       alg, &pkey, flags);
	json_decref(hdr);
	if (rc != PARLEY_OK)
		return rc;

	uint8_t sig[JWT_SIG_MAX];
	size_t sig_len;
	rc = jose__b64url_decode(sig, sizeof(sig), &sig_len, sigp, sig_b64_len);
	if (rc == PARLEY_E_TOO_LARGE)
		return PARLEY_E_ID_TOKEN_SIGNATURE; /* longer than any key we accept can produce */
	if (rc != PARLEY_OK)
		return PARLEY_E_ID_TOKEN_INVALID;
	/* the payload's encoding is checked before the signature (a malformed token is reported as such),
	 * its JSON only after */
	rc = jwt_decode_part(pay, pay_len, &pay_raw, &pay_raw_len);
	if (rc == PARLEY_OK)
		rc = jwt_signature_ok(pkey, alg, sig, sig_len, token, (size_t)(dot2 - token));
	json_t *root = rc == PARLEY_OK ? jwt_json_object(pay_raw, pay_raw_len) : NULL;
	parley__free(pay_raw);
	if (rc != PARLEY_OK)
		return rc;
	if (!root || jwt_claims(root, out) != 0) {
		json_decref(root);
		memset(out, 0, sizeof(*out));
		return PARLEY_E_ID_TOKEN_INVALID;
	}
	out->alg = alg;
	return PARLEY_OK;
}

void jose__claims_free(jose_claims *c)
{
	if (!c)
		return;
	json_decref(c->root);
	memset(c, 0, sizeof(*c));
}

const char *jose__claims_string(const jose_claims *c, const char *name)
{
	const json_t *v = c && c->root ? json_object_get(c->root, name) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int jose__claims_aud_contains(const jose_claims *c, const char *client_id)
{
	if (!c || !c->aud || !client_id)
		return 0;
	if (json_is_string(c->aud))
		return strcmp(json_string_value(c->aud), client_id) == 0;
	size_t i;
	const json_t *a;
	json_array_foreach(c->aud, i, a) {
		if (strcmp(json_string_value(a), client_id) == 0)
			return 1;
	}
	return 0;
}

/* iss, aud, azp and the times: what ID tokens and assertions share. */
static int jwt_check_common(const jose_claims *c, const jose_expect *e)
{
	if (!c || !e || !e->issuer || !e->client_id || e->now < 0 || e->now > JWT_TIME_MAX || e->skew_s < 0 ||
	    e->skew_s > JWT_SKEW_MAX || e->max_age_s < 0 || e->max_age_s > JWT_TIME_MAX)
		return PARLEY_E_INVAL;
	if (!c->iss || strcmp(c->iss, e->issuer) != 0)
		return PARLEY_E_ID_TOKEN_CLAIMS;
	if (!jose__claims_aud_contains(c, e->client_id))
		return PARLEY_E_ID_TOKEN_CLAIMS;
	/* OIDC Core 3.1.3.7 (4)(5): with several audiences the authorized party must be named, and an azp
	 * that is present must be us, or the token was issued to another client */
	size_t n_aud = json_is_array(c->aud) ? json_array_size(c->aud) : 1;
	if ((n_aud > 1 && !c->azp) || (c->azp && strcmp(c->azp, e->client_id) != 0))
		return PARLEY_E_ID_TOKEN_CLAIMS;
	if (!c->has_exp || c->exp <= e->now - e->skew_s)
		return PARLEY_E_ID_TOKEN_CLAIMS; /* expired (or never expiring) */
	if (c->has_iat && c->iat > e->now + e->skew_s)
		return PARLEY_E_ID_TOKEN_CLAIMS; /* issued in the future */
	if (c->has_nbf && c->nbf > e->now + e->skew_s)
		return PARLEY_E_ID_TOKEN_CLAIMS; /* not yet valid */
	if (e->max_age_s > 0 && (!c->has_iat || c->iat < e->now - e->max_age_s - e->skew_s))
		return PARLEY_E_ID_TOKEN_CLAIMS; /* issued too long ago */
	return PARLEY_OK;
}

int jose__idtoken_check(const jose_claims *c, const jose_expect *e)
{
	if (!e || !e->nonce)
		return PARLEY_E_INVAL;
	int rc = jwt_check_common(c, e);
	if (rc != PARLEY_OK)
		return rc;
	if (!c->sub || !c->sub[0] || !c->has_iat) /* both REQUIRED in an ID token */
		return PARLEY_E_ID_TOKEN_CLAIMS;
	/* the nonce binds the token to this request; its length is public (ours are 43 characters) */
	size_t n = strlen(e->nonce);
	if (!c->nonce || strlen(c->nonce) != n || sodium_memcmp(c->nonce, e->nonce, n) != 0)
		return PARLEY_E_ID_TOKEN_NONCE;
	return PARLEY_OK;
}

int jose__assertion_check(const jose_claims *c, const jose_expect *e)
{
	int rc = jwt_check_common(c, e);
	if (rc != PARLEY_OK)
		return rc;
	if (!c->jti || !c->jti[0] || strlen(c->jti) > JOSE_JTI_MAX_LEN)
		return PARLEY_E_ID_TOKEN_CLAIMS;
	return PARLEY_OK;
}
