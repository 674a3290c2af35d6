/* server/auth/jose: the sans-I/O verification core of customer authentication (issue 11).
 *
 * ID tokens (OpenID Connect Core), business-signed JWT assertions (RFC 7519/7523), their JWKS (RFC 7517),
 * PKCE (RFC 7636), one-time codes and the jti replay cache. Nothing here opens a socket or a file or
 * reads a clock: every input is a buffer and `now` is an argument, so all of it is unit-tested and
 * fuzzed (tests/unit/auth, tests/fuzz/auth). docs/protocol.md §14.1 states the rules.
 *
 * Only RS256 (RSASSA-PKCS1-v1_5 SHA-256) and ES256 (ECDSA P-256 SHA-256) are accepted: "none" and every
 * HMAC algorithm are refused outright, which closes the classic algorithm-confusion attacks (a token
 * "signed" with HS256 using the provider's public RSA key as the secret). Errors are parley_err codes. */
#ifndef PARLEY_SERVER_AUTH_JOSE_H
#define PARLEY_SERVER_AUTH_JOSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* --- limits (all inputs come from the network: every size is bounded) --- */
#define JOSE_JWKS_MAX_BYTES (64 * 1024) /* a JWKS document; larger is JWKS_UNAVAILABLE */
#define JOSE_JWKS_MAX_KEYS 32           /* usable keys kept from one document; more is JWKS_UNAVAILABLE */
#define JOSE_JWT_MAX_BYTES (16 * 1024)  /* a compact JWS; larger is ID_TOKEN_INVALID */
#define JOSE_KID_MAX 128                /* bytes of a kid (key id) */
#define JOSE_RSA_MIN_BITS 2048
#define JOSE_RSA_MAX_BITS 8192
#define JOSE_RANDOM_TOKEN_LEN 43 /* base64url of 32 random bytes: state, nonce, PKCE verifier */
#define JOSE_PKCE_VERIFIER_MIN 43
#define JOSE_PKCE_VERIFIER_MAX 128
#define JOSE_PKCE_CHALLENGE_LEN 43 /* base64url of a SHA-256 */
#define JOSE_OTP_DIGITS 6
#define JOSE_OTP_MAC_LEN 32 /* HMAC-SHA256 */

/* Characters base64url needs for n bytes without padding: ceil(4n/3). */
#define JOSE_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* --- base64url (RFC 7515 §2: RFC 4648 §5 alphabet, no padding) --- */

/* Encodes n bytes into out (cap bytes, including a terminating NUL). PARLEY_E_TOO_LARGE if it does not
 * fit; *out_len (may be NULL) gets the length without the NUL. */
int jose__b64url_encode(char *out, size_t cap, size_t *out_len, const uint8_t *in, size_t n);

/* Decodes n characters into out (cap bytes). Refuses (PARLEY_E_INVAL) any character outside the
 * alphabet, '=' padding, a length of 4k+1, and non-zero unused trailing bits (so every byte string has
 * exactly one accepted encoding); PARLEY_E_TOO_LARGE if the result exceeds cap. */
int jose__b64url_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t n);

/* --- JWKS --- */

typedef enum jose_alg {
	JOSE_ALG_RS256 = 1,
	JOSE_ALG_ES256 = 2,
} jose_alg;

typedef struct jose_jwks jose_jwks; /* opaque, immutable once parsed: share it read-only across threads */

/* Parses a JWKS document (RFC 7517 §5). Keeps the signature keys it supports: kty "RSA" (n, e; modulus
 * of JOSE_RSA_MIN_BITS..JOSE_RSA_MAX_BITS) and kty "EC" crv "P-256" (x, y of 32 bytes, a point on the
 * curve), with "use" absent or "sig" and "alg" absent or RS256/ES256 matching the kty. Keys of other
 * types, curves, uses or algorithms are skipped. A document that is not JSON, has no "keys" array, is
 * larger than JOSE_JWKS_MAX_BYTES, holds more than JOSE_JWKS_MAX_KEYS usable keys, or holds a
 * supported key that is malformed or out of policy (short RSA modulus, point off the curve, bad
 * base64url, a kid longer than JOSE_KID_MAX) is refused whole: PARLEY_E_JWKS_UNAVAILABLE. A set with no
 * usable key is valid (every token then fails with the key-unknown flag). */
int jose__jwks_parse(const char *doc, size_t len, jose_jwks **out);
void jose__jwks_free(jose_jwks *set);
size_t jose__jwks_count(const jose_jwks *set);

/* --- JWS compact verification --- */

/* The payload of a verified token. String fields are NULL when the claim is absent and point into
 * `root` (valid until jose__claims_free). Times are seconds since the epoch; has_* says presence.
 * *_verified: -1 absent, 0 false, 1 true. */
typedef struct jose_claims {
	json_t *root; /* the whole payload object: other claims by name with jose__claims_string */
	jose_alg alg; /* the algorithm the signature was verified with */
	const char *iss, *sub, *azp, *nonce, *jti, *email, *phone_number;
	const json_t *aud; /* a string or an array of strings; NULL when absent */
	int64_t exp, iat, nbf;
	int has_exp, has_iat, has_nbf;
	int email_verified, phone_number_verified;
} jose_claims;

/* Set in *flags when no key of the set matches the token (an unknown kid, or no kid and no suitable
 * key): the caller refetches the JWKS once and retries, per spec11 flow step 3. */
#define JOSE_VERIFY_KEY_UNKNOWN 1u

/* Verifies a compact JWS (exactly three base64url parts, at most JOSE_JWT_MAX_BYTES) against the set
 * and, on success, fills *out (free it with jose__claims_free). The header must be a JSON object with
 * alg RS256 or ES256 (anything else, including "none" and HS256, is refused), an optional string kid,
 * an optional typ ("JWT" or "application/jwt", any case) and no "crit". The key is the one with the
 * token's kid (or, without a kid, the only key suitable for alg); its kty and its alg, if given, must
 * match the token's alg. Registered claims of the wrong JSON type make the token malformed.
 *   PARLEY_E_ID_TOKEN_INVALID   malformed (parts, base64url, JSON, sizes, header fields, claim types)
 *   PARLEY_E_ID_TOKEN_SIGNATURE refused algorithm, no or ambiguous key, alg/kty mismatch, bad signature
 *                               (ES256: a signature that is not exactly 64 bytes r||s)
 *   PARLEY_E_NOMEM              allocation failure
 * Header members that carry or point at keys (jwk, jku, x5u, x5c) are ignored: keys come only from the
 * set the caller fetched from the component's configured jwks_uri. */
int jose__jwt_verify(const char *token, size_t len, const jose_jwks *jwks, jose_claims *out, unsigned *flags);
void jose__claims_free(jose_claims *c);

/* A string claim by name, NULL when absent or not a string. */
const char *jose__claims_string(const jose_claims *c, const char *name);

/* 1 if aud is the string client_id or an array containing it. */
int jose__claims_aud_contains(const jose_claims *c, const char *client_id);

/* --- claim checks --- */

typedef struct jose_expect {
	const char *issuer;    /* iss must equal it exactly */
	const char *client_id; /* aud must contain it; azp, when present or when aud has several values */
	const char *nonce;     /* ID tokens: the request's nonce (compared in constant time) */
	int64_t now;           /* seconds since the epoch, the caller's clock */
	int64_t skew_s;        /* tolerated clock difference, 0..86400 */
	int64_t max_age_s;     /* > 0: iat may not be older than this (+ skew); 0: no limit */
} jose_expect;

/* An ID token (OIDC Core 3.1.3.7): iss, sub, aud (+ azp), exp > now - skew, iat <= now + skew,
 * nbf <= now + skew when present, iat age (max_age_s) and nonce.
 * PARLEY_E_ID_TOKEN_CLAIMS for the first group, PARLEY_E_ID_TOKEN_NONCE for a missing or different
 * nonce, PARLEY_E_INVAL for an expect without issuer/client_id/nonce or with an out-of-range skew. */
int jose__idtoken_check(const jose_claims *c, const jose_expect *e);

/* A business-signed assertion: the same checks without nonce and sub, with jti required (1..256 bytes);
 * iat optional unless max_age_s is set. expect->nonce is ignored. The caller then records the jti in a
 * jose_jti_cache until exp. */
int jose__assertion_check(const jose_claims *c, const jose_expect *e);

/* --- PKCE (RFC 7636), state and nonce --- */

/* 32 random bytes, base64url: 43 characters + NUL. Used for state, nonce and the PKCE verifier. */
void jose__random_token(char out[JOSE_RANDOM_TOKEN_LEN + 1]);

/* 1 if v is a valid code_verifier: 43..128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1). */
int jose__pkce_verifier_valid(const char *v, size_t n);

/* code_challenge = BASE64URL(SHA256(ASCII(code_verifier))) (S256). PARLEY_E_INVAL for an invalid
 * verifier. */
int jose__pkce_challenge(const char *verifier, size_t n, char out[JOSE_PKCE_CHALLENGE_LEN + 1]);

/* --- one-time codes --- */

/* JOSE_OTP_DIGITS uniformly random decimal digits (leading zeros kept) + NUL. */
void jose__otp_generate(char code[JOSE_OTP_DIGITS + 1]);

/* The only thing stored of a code: HMAC-SHA256(key, u32be(len(request_id)) || request_id || code). The
 * length prefix keeps (request id, code) pairs unambiguous. */
void jose__otp_mac(uint8_t out[JOSE_OTP_MAC_LEN], const uint8_t *key, size_t key_len, const char *request_id,
		   size_t request_id_len, const char *code, size_t code_len);

/* PARLEY_OK if code (exactly JOSE_OTP_DIGITS digits) is the one whose MAC is stored, else
 * PARLEY_E_OTP_WRONG; the MACs are compared in constant time. */
int jose__otp_check(const uint8_t stored[JOSE_OTP_MAC_LEN], const uint8_t *key, size_t key_len,
		    const char *request_id, size_t request_id_len, const char *code, size_t code_len);

/* The longest jti a business-signed assertion may carry (its replay record is the store's: a hash of
 * it in auth_jti, docs/protocol.md §14.4). */
#define JOSE_JTI_MAX_LEN 256

#endif
