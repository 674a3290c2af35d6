/* server/auth/jose: PKCE (RFC 7636 Appendix B), state/nonce tokens, one-time codes, jti replay cache. */
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

static void test_jti_basic(void)
{
	jose_jti_cache *c = NULL;
	TEST_EQ_INT(jose__jti_new(0, &c), PARLEY_E_INVAL);
	TEST_EQ_INT(jose__jti_new(4, &c), PARLEY_OK);
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j1", 2, 200, 100), PARLEY_OK);
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j1", 2, 300, 150), PARLEY_E_JWT_REPLAYED);
	TEST_EQ_INT(jose__jti_insert(c, "comp2", 5, "j1", 2, 300, 150), PARLEY_OK); /* another issuer */
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j1", 2, 300, 199), PARLEY_E_JWT_REPLAYED);
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j1", 2, 300, 200), PARLEY_OK); /* its first token expired */
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j2", 2, 100, 100), PARLEY_E_ID_TOKEN_CLAIMS);
	/* full of live entries: refused, nothing evicted */
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j3", 2, 1000, 200), PARLEY_OK);
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j4", 2, 1000, 200), PARLEY_OK);
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j5", 2, 1000, 200), PARLEY_E_BUSY);
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j3", 2, 1000, 200), PARLEY_E_JWT_REPLAYED);
	/* once comp2/j1 (exp 300) and comp1/j1 (exp 300) expire, room is made */
	TEST_EQ_INT(jose__jti_insert(c, "comp1", 5, "j5", 2, 1000, 300), PARLEY_OK);
	TEST_EQ_INT(jose__jti_purge(c, 300), 3);
	TEST_EQ_INT(jose__jti_purge(c, 1000), 0);
	jose__jti_free(c);
}

/* Many inserts and purges in a small table, checked against a plain list: the backward-shift deletion
 * must never lose a live entry (a lost entry is a replay let through). */
static void test_jti_model(void)
{
	enum { CAP = 16, ROUNDS = 4000 };
	jose_jti_cache *c = NULL;
	TEST_EQ_INT(jose__jti_new(CAP, &c), PARLEY_OK);
	struct {
		char jti[16];
		int64_t exp;
	} live[ROUNDS];
	size_t nlive = 0, busy = 0, lost = 0;
	int64_t now = 1000;
	uint32_t seed = 12345;
	for (int r = 0; r < ROUNDS; r++) {
		seed = seed * 1103515245u + 12345u;
		now += (seed >> 16) % 3;
		int64_t exp = now + 1 + (int64_t)((seed >> 8) % 40);
		char jti[16];
		snprintf(jti, sizeof(jti), "j%d", r);
		size_t alive = 0;
		for (size_t i = 0; i < nlive; i++)
			alive += live[i].exp > now;
		int rc = jose__jti_insert(c, "s", 1, jti, strlen(jti), exp, now);
		if (rc == PARLEY_E_BUSY) {
			busy++;
			TEST_EQ_INT(alive, CAP); /* refused only when really full */
		} else {
			TEST_EQ_INT(rc, PARLEY_OK);
			memcpy(live[nlive].jti, jti, sizeof(jti));
			live[nlive++].exp = exp;
		}
		if (r % 97 == 0)
			jose__jti_purge(c, now);
		if (r % 250 == 0)
			for (size_t i = 0; i < nlive; i++)
				if (live[i].exp > now && jose__jti_insert(c, "s", 1, live[i].jti, strlen(live[i].jti),
									 live[i].exp, now) != PARLEY_E_JWT_REPLAYED)
					lost++;
	}
	TEST_EQ_INT(lost, 0);
	TEST_CHECK(busy > 0); /* the model did reach a full table */
	jose__jti_free(c);
}

int main(void)
{
	TEST_CHECK(crypto__init() == PARLEY_OK);
	TEST_RUN(test_pkce);
	TEST_RUN(test_otp);
	TEST_RUN(test_jti_basic);
	TEST_RUN(test_jti_model);
	TEST_EXIT();
}
