/* server/auth/jose: ID-token and assertion claim checks (OIDC Core 3.1.3.7) on tokens signed here. */
#include <parley/error.h>

#include "crypto/crypto.h"
#include "jose_testkit.h"
#include "test.h"

#define NOW INT64_C(1800000000)
#define SKEW 60

static EVP_PKEY *key;
static jose_jwks *set;
static const char nonce[] = "n-0S6_WzA2Mj";

/* Signs payload, verifies it, then runs the ID-token (assertion = 0) or assertion check. */
static int check(const char *payload, int assertion, const jose_expect *override)
{
	char tok[4096];
	size_t n = tk_sign(key, "{\"alg\":\"ES256\",\"kid\":\"k\"}", payload, tok, sizeof(tok));
	TEST_CHECK(n > 0);
	jose_claims c;
	unsigned flags;
	int rc = jose__jwt_verify(tok, n, set, &c, &flags);
	if (rc != PARLEY_OK)
		return rc;
	jose_expect e = {.issuer = "https://idp.example", .client_id = "c1", .nonce = nonce, .now = NOW,
			 .skew_s = SKEW};
	if (override)
		e = *override;
	rc = assertion ? jose__assertion_check(&c, &e) : jose__idtoken_check(&c, &e);
	jose__claims_free(&c);
	return rc;
}

/* An ID token payload with fields replaced: each argument is a JSON member text or "" to drop it. */
static const char *idt(const char *iss, const char *aud, const char *exp, const char *iat, const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "{\"sub\":\"248289761001\"%s%s%s%s%s%s%s%s%s}", *iss ? "," : "", iss,
		 *aud ? "," : "", aud, *exp ? "," : "", exp, *iat ? "," : "", iat, extra);
	return buf;
}

#define ISS "\"iss\":\"https://idp.example\""
#define AUD "\"aud\":\"c1\""
#define EXP "\"exp\":1800000600"
#define IAT "\"iat\":1800000000"
#define NONCE ",\"nonce\":\"n-0S6_WzA2Mj\""

static void test_idtoken_ok(void)
{
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, NONCE), 0, NULL), PARLEY_OK);
	TEST_EQ_INT(check(idt(ISS, "\"aud\":[\"c1\",\"c2\"]", EXP, IAT, NONCE ",\"azp\":\"c1\""), 0, NULL), PARLEY_OK);
	TEST_EQ_INT(check(idt(ISS, "\"aud\":[\"c1\"]", EXP, IAT, NONCE), 0, NULL), PARLEY_OK);
	/* the skew boundaries: exp just inside, iat and nbf just inside */
	TEST_EQ_INT(check(idt(ISS, AUD, "\"exp\":1799999941", IAT, NONCE), 0, NULL), PARLEY_OK);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, "\"iat\":1800000060", NONCE ",\"nbf\":1800000060"), 0, NULL), PARLEY_OK);
	TEST_EQ_INT(check(idt(ISS, AUD, "\"exp\":1800000600.9", "\"iat\":1799999999.5", NONCE), 0, NULL), PARLEY_OK);
}

static void test_idtoken_refusals(void)
{
	/* expired (also exactly at the skew limit), never-expiring, issued in the future, not yet valid */
	TEST_EQ_INT(check(idt(ISS, AUD, "\"exp\":1799999940", IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, "\"exp\":1700000000", IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, "", IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, "\"iat\":1800000061", NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, NONCE ",\"nbf\":1800000061"), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, "", NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	/* issuer: another, a prefix, a trailing slash, absent */
	TEST_EQ_INT(check(idt("\"iss\":\"https://evil.example\"", AUD, EXP, IAT, NONCE), 0, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt("\"iss\":\"https://idp.exampl\"", AUD, EXP, IAT, NONCE), 0, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt("\"iss\":\"https://idp.example/\"", AUD, EXP, IAT, NONCE), 0, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt("", AUD, EXP, IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	/* audience: another client, absent, empty array */
	TEST_EQ_INT(check(idt(ISS, "\"aud\":\"c2\"", EXP, IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, "", EXP, IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, "\"aud\":[]", EXP, IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, "\"aud\":[\"c2\",\"c3\"]", EXP, IAT, NONCE ",\"azp\":\"c1\""), 0, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
	/* several audiences without azp; a wrong azp (with one or several audiences) */
	TEST_EQ_INT(check(idt(ISS, "\"aud\":[\"c1\",\"c2\"]", EXP, IAT, NONCE), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, "\"aud\":[\"c1\",\"c2\"]", EXP, IAT, NONCE ",\"azp\":\"c2\""), 0, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, NONCE ",\"azp\":\"c2\""), 0, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	/* nonce: wrong, a prefix, absent */
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, ",\"nonce\":\"n-0S6_WzA2Mk\""), 0, NULL), PARLEY_E_ID_TOKEN_NONCE);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, ",\"nonce\":\"n-0S6_WzA2M\""), 0, NULL), PARLEY_E_ID_TOKEN_NONCE);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, ""), 0, NULL), PARLEY_E_ID_TOKEN_NONCE);
	/* sub absent */
	TEST_EQ_INT(check("{\"iss\":\"https://idp.example\",\"aud\":\"c1\",\"exp\":1800000600,\"iat\":1800000000,"
			  "\"nonce\":\"n-0S6_WzA2Mj\"}",
			  0, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
}

static void test_max_age_and_expect(void)
{
	jose_expect e = {.issuer = "https://idp.example", .client_id = "c1", .nonce = nonce, .now = NOW,
			 .skew_s = SKEW, .max_age_s = 300};
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, "\"iat\":1799999640", NONCE), 0, &e), PARLEY_OK);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, "\"iat\":1799999639", NONCE), 0, &e), PARLEY_E_ID_TOKEN_CLAIMS);
	/* a caller's mistake is INVAL, never a silent pass */
	e.max_age_s = 0;
	e.skew_s = -1;
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, NONCE), 0, &e), PARLEY_E_INVAL);
	e.skew_s = SKEW;
	e.nonce = NULL;
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, NONCE), 0, &e), PARLEY_E_INVAL);
	e.nonce = nonce;
	e.issuer = NULL;
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, NONCE), 0, &e), PARLEY_E_INVAL);
}

static void test_assertion(void)
{
	/* no nonce needed, jti required; iat optional */
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, "", ",\"jti\":\"a-1\""), 1, NULL), PARLEY_OK);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, ""), 1, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, EXP, IAT, ",\"jti\":\"\""), 1, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, "\"aud\":\"c2\"", EXP, IAT, ",\"jti\":\"a-1\""), 1, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	TEST_EQ_INT(check(idt(ISS, AUD, "\"exp\":1700000000", IAT, ",\"jti\":\"a-1\""), 1, NULL),
		    PARLEY_E_ID_TOKEN_CLAIMS);
}

static void test_claim_fields(void)
{
	char tok[4096];
	size_t n = tk_sign(key, "{\"alg\":\"ES256\",\"kid\":\"k\"}",
			   "{\"email\":\"a@b.example\",\"email_verified\":true,\"phone_number\":\"+15551234567\","
			   "\"phone_number_verified\":\"false\",\"custom\":\"x\"}",
			   tok, sizeof(tok));
	jose_claims c;
	unsigned flags;
	TEST_EQ_INT(jose__jwt_verify(tok, n, set, &c, &flags), PARLEY_OK);
	TEST_CHECK(c.email && strcmp(c.email, "a@b.example") == 0);
	TEST_EQ_INT(c.email_verified, 1);
	TEST_CHECK(c.phone_number && strcmp(c.phone_number, "+15551234567") == 0);
	TEST_EQ_INT(c.phone_number_verified, 0);
	TEST_CHECK(!c.iss && !c.aud && !c.has_exp && !c.has_iat && !c.has_nbf);
	TEST_CHECK(jose__claims_string(&c, "custom") && strcmp(jose__claims_string(&c, "custom"), "x") == 0);
	jose__claims_free(&c);
}

int main(void)
{
	TEST_CHECK(crypto__init() == PARLEY_OK);
	key = tk_p256();
	char jwk[1000], doc[1200];
	tk_jwk(key, "k", NULL, jwk, sizeof(jwk));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", jwk);
	TEST_EQ_INT(jose__jwks_parse(doc, strlen(doc), &set), PARLEY_OK);
	TEST_RUN(test_idtoken_ok);
	TEST_RUN(test_idtoken_refusals);
	TEST_RUN(test_max_age_and_expect);
	TEST_RUN(test_assertion);
	TEST_RUN(test_claim_fields);
	jose__jwks_free(set);
	EVP_PKEY_free(key);
	TEST_EXIT();
}
