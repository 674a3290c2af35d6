/* PKCE (RFC 7636), state/nonce tokens and one-time codes: the random and hashed secrets of an auth
 * request. Randomness is libsodium's (getrandom); comparisons of secrets are constant-time. */
#include "auth/jose.h"

#include <parley/error.h>
#include <sodium.h>
#include <string.h>

#include "crypto/crypto.h"

void jose__random_token(char out[JOSE_RANDOM_TOKEN_LEN + 1])
{
	uint8_t raw[32];
	crypto__random(raw, sizeof(raw));
	(void)jose__b64url_encode(out, JOSE_RANDOM_TOKEN_LEN + 1, NULL, raw, sizeof(raw)); /* always fits */
	crypto__wipe(raw, sizeof(raw));
}

/* RFC 7636 §4.1: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static int pkce_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

int jose__pkce_verifier_valid(const char *v, size_t n)
{
	if (!v || n < JOSE_PKCE_VERIFIER_MIN || n > JOSE_PKCE_VERIFIER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!pkce_unreserved((unsigned char)v[i]))
			return 0;
	return 1;
}

int jose__pkce_challenge(const char *verifier, size_t n, char out[JOSE_PKCE_CHALLENGE_LEN + 1])
{
	if (!jose__pkce_verifier_valid(verifier, n))
		return PARLEY_E_INVAL;
	uint8_t digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, (const unsigned char *)verifier, n);
	return jose__b64url_encode(out, JOSE_PKCE_CHALLENGE_LEN + 1, NULL, digest, sizeof(digest));
}

void jose__otp_generate(char code[JOSE_OTP_DIGITS + 1])
{
	/* one uniform draw per digit: randombytes_uniform rejects the biased tail, so no modulo bias */
	for (int i = 0; i < JOSE_OTP_DIGITS; i++)
		code[i] = (char)('0' + randombytes_uniform(10));
	code[JOSE_OTP_DIGITS] = '\0';
}

void jose__otp_mac(uint8_t out[JOSE_OTP_MAC_LEN], const uint8_t *key, size_t key_len, const char *request_id,
		   size_t request_id_len, const char *code, size_t code_len)
{
	uint8_t len_be[4] = {(uint8_t)(request_id_len >> 24), (uint8_t)(request_id_len >> 16),
			     (uint8_t)(request_id_len >> 8), (uint8_t)request_id_len};
	crypto_hmac_ctx st;
	crypto__hmac_init(&st, key, key_len);
	crypto__hmac_update(&st, len_be, sizeof(len_be));
	crypto__hmac_update(&st, (const uint8_t *)request_id, request_id_len);
	crypto__hmac_update(&st, (const uint8_t *)code, code_len);
	crypto__hmac_final(&st, out);
}

int jose__otp_check(const uint8_t stored[JOSE_OTP_MAC_LEN], const uint8_t *key, size_t key_len,
		    const char *request_id, size_t request_id_len, const char *code, size_t code_len)
{
	/* the shape is public (6 digits), so refusing a malformed answer early leaks nothing */
	if (!code || code_len != JOSE_OTP_DIGITS)
		return PARLEY_E_OTP_WRONG;
	for (size_t i = 0; i < code_len; i++)
		if (code[i] < '0' || code[i] > '9')
			return PARLEY_E_OTP_WRONG;
	uint8_t mac[JOSE_OTP_MAC_LEN];
	jose__otp_mac(mac, key, key_len, request_id, request_id_len, code, code_len);
	int ok = crypto__ct_equal(mac, stored, JOSE_OTP_MAC_LEN);
	crypto__wipe(mac, sizeof(mac));
	return ok ? PARLEY_OK : PARLEY_E_OTP_WRONG;
}
