/* server/auth/jose: PKCE (RFC 7636 Appendix B), state/nonce tokens, one-time codes. */
#include <parley/error.h>

#include "crypto/crypto.h"
#include "jose_testkit.h"
#include "test.h"

static void test_pkce(void)
{
	/* RFC 7636 Appendix B */
	static const char v[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	char ch[JOSE_PKCE_CHALLENGE_LEN + 1];
	TEST_EQ_INT(jose__pkce_challenge(v, strlen(v), ch), PARLEY_OK);
	TEST_EQ_STR(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	/* verifier rules: 43..128 unreserved characters */
	char buf[130];
	memset(buf, 'a', sizeof(buf));
	TEST_CHECK(!jose__pkce_verifier_valid(buf, 42));
	TEST_CHECK(jose__pkce_verifier_valid(buf, 43));
	TEST_CHECK(jose__pkce_verifier_valid(buf, 128));
	TEST_CHECK(!jose__pkce_verifier_valid(buf, 129));
	memcpy(buf, "-._~AZaz09", 10);
	TEST_CHECK(jose__pkce_verifier_valid(buf, 43));
	static const char badc[] = "+/= %\"\x80";
	for (size_t i = 0; i < sizeof(badc) - 1; i++) {
		buf[20] = badc[i];
		TEST_CHECK(!jose__pkce_verifier_valid(buf, 43));
		TEST_EQ_INT(jose__pkce_challenge(buf, 43, ch), PARLEY_E_INVAL);
	}
	/* generated tokens: 43 characters, valid verifiers, different each time */
	char a[JOSE_RANDOM_TOKEN_LEN + 1], b[JOSE_RANDOM_TOKEN_LEN + 1];
	jose__random_token(a);
	jose__random_token(b);
	TEST_EQ_INT(strlen(a), 43);
	TEST_CHECK(jose__pkce_verifier_valid(a, strlen(a)));
	TEST_CHECK(strcmp(a, b) != 0);
	uint8_t raw[40];
	size_t n;
	TEST_EQ_INT(jose__b64url_decode(raw, sizeof(raw), &n, a, 43), PARLEY_OK);
	TEST_EQ_INT(n, 32);
}

static void test_otp(void)
{
	static const uint8_t key[32] = {1, 2, 3};
	char code[JOSE_OTP_DIGITS + 1];
	int seen[10] = {0};
	for (int i = 0; i < 200; i++) {
		jose__otp_generate(code);
		TEST_EQ_INT(strlen(code), JOSE_OTP_DIGITS);
		for (int j = 0; j < JOSE_OTP_DIGITS; j++) {
			TEST_CHECK(code[j] >= '0' && code[j] <= '9');
			seen[code[j] - '0']++;
		}
	}
	for (int d = 0; d < 10; d++)
		TEST_CHECK(seen[d] > 0); /* 1200 digits: a missing one has probability ~1e-54 */
	jose__otp_generate(code);
	uint8_t mac[JOSE_OTP_MAC_LEN];
	jose__otp_mac(mac, key, sizeof(key), "req-1", 5, code, 6);
	TEST_EQ_INT(jose__otp_check(mac, key, sizeof(key), "req-1", 5, code, 6), PARLEY_OK);
	char wrong[7];
	memcpy(wrong, code, 7);
	wrong[5] = (char)(wrong[5] == '9' ? '0' : wrong[5] + 1);
	TEST_EQ_INT(jose__otp_check(mac, key, sizeof(key), "req-1", 5, wrong, 6), PARLEY_E_OTP_WRONG);
	/* the same code for another request, or under another key, does not match */
	TEST_EQ_INT(jose__otp_check(mac, key, sizeof(key), "req-2", 5, code, 6), PARLEY_E_OTP_WRONG);
	static const uint8_t key2[32] = {9};
	TEST_EQ_INT(jose__otp_check(mac, key2, sizeof(key2), "req-1", 5, code, 6), PARLEY_E_OTP_WRONG);
	/* the length prefix: ("req-1", code) and ("req-", "1" || code[0..5]) are different MAC inputs */
	char shifted[8] = "1";
	memcpy(shifted + 1, code, 6);
	uint8_t mac2[JOSE_OTP_MAC_LEN];
	jose__otp_mac(mac2, key, sizeof(key), "req-", 4, shifted, 7);
	TEST_CHECK(memcmp(mac, mac2, sizeof(mac)) != 0);
	/* shape: 5 or 7 characters, non-digits */
	TEST_EQ_INT(jose__otp_check(mac, key, sizeof(key), "req-1", 5, code, 5), PARLEY_E_OTP_WRONG);
	TEST_EQ_INT(jose__otp_check(mac, key, sizeof(key), "req-1", 5, "12345a", 6), PARLEY_E_OTP_WRONG);
	TEST_EQ_INT(jose__otp_check(mac, key, sizeof(key), "req-1", 5, NULL, 0), PARLEY_E_OTP_WRONG);
}

int main(void)
{
	TEST_CHECK(crypto__init() == PARLEY_OK);
	TEST_RUN(test_pkce);
	TEST_RUN(test_otp);
	TEST_EXIT();
}
