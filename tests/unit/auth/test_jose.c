/* server/auth/jose: base64url, JWKS parsing and JWS verification, including RFC 7515 Appendix A.2/A.3
 * and every refusal of spec11 (alg none, HS256 with the RSA public key as secret, alg/kty mismatch,
 * tampering, wrong ES256 length, bad base64url, part count, size, unknown kid). */
#include <openssl/pem.h>
#include <parley/error.h>

#include "crypto/crypto.h"
#include "jose_testkit.h"
#include "rfc7515_vectors.h"
#include "test.h"

static EVP_PKEY *rsa_key, *ec_key;
static jose_jwks *set; /* {r1: rsa_key RS256, e1: ec_key ES256} */
static const char *payload = "{\"iss\":\"https://idp.example\",\"sub\":\"u1\",\"aud\":\"c1\",\"exp\":2000000000}";

static void test_b64url(void)
{
	static const char *vec[][2] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
				       {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
	char enc[32];
	uint8_t dec[32];
	size_t n;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		TEST_EQ_INT(jose__b64url_encode(enc, sizeof(enc), &n, (const uint8_t *)vec[i][0], strlen(vec[i][0])),
			    PARLEY_OK);
		TEST_EQ_STR(enc, vec[i][1]);
		TEST_EQ_INT(n, JOSE_B64URL_LEN(strlen(vec[i][0])));
		TEST_EQ_INT(jose__b64url_decode(dec, sizeof(dec), &n, vec[i][1], strlen(vec[i][1])), PARLEY_OK);
		TEST_EQ_INT(n, strlen(vec[i][0]));
		TEST_EQ_MEM(dec, vec[i][0], n);
	}
	/* refusals: padding, the other alphabet, 4k+1 characters, non-zero trailing bits, too small buffers */
	static const char *bad[] = {"Zg==", "Zm9v+g", "Zm9v/w", "Zm9vY", "Zh", "Zm9", "Zm!v", "Z g"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TEST_EQ_INT(jose__b64url_decode(dec, sizeof(dec), &n, bad[i], strlen(bad[i])), PARLEY_E_INVAL);
	TEST_EQ_INT(jose__b64url_decode(dec, 2, &n, "Zm9v", 4), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(jose__b64url_encode(enc, 4, &n, (const uint8_t *)"foo", 3), PARLEY_E_TOO_LARGE);
	/* every byte value survives a round trip */
	uint8_t all[256], back[256];
	char big[400];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (size_t len = 0; len <= 256; len += 37) {
		TEST_EQ_INT(jose__b64url_encode(big, sizeof(big), &n, all, len), PARLEY_OK);
		TEST_EQ_INT(jose__b64url_decode(back, sizeof(back), &n, big, n), PARLEY_OK);
		TEST_EQ_INT(n, len);
		TEST_EQ_MEM(back, all, len);
	}
}

/* RFC 7515 Appendix A.2 (RS256, 2048-bit key) and A.3 (ES256): the published tokens verify. */
static void test_rfc7515_vectors(void)
{
	const char *docs[2] = {rfc7515_a2_jwks, rfc7515_a3_jwks}, *toks[2] = {rfc7515_a2, rfc7515_a3};
	for (int i = 0; i < 2; i++) {
		jose_jwks *s = NULL;
		jose_claims c;
		unsigned flags = 0;
		TEST_EQ_INT(jose__jwks_parse(docs[i], strlen(docs[i]), &s), PARLEY_OK);
		TEST_EQ_INT(jose__jwks_count(s), 1);
		TEST_EQ_INT(jose__jwt_verify(toks[i], strlen(toks[i]), s, &c, &flags), PARLEY_OK);
		TEST_CHECK(c.iss && strcmp(c.iss, "joe") == 0);
		TEST_EQ_INT(c.exp, 1300819380);
		TEST_EQ_INT(c.alg, i == 0 ? JOSE_ALG_RS256 : JOSE_ALG_ES256);
		TEST_CHECK(json_is_true(json_object_get(c.root, "http://example.com/is_root")));
		jose__claims_free(&c);
		/* one signature bit flipped: refused */
		char t[600];
		snprintf(t, sizeof(t), "%s", toks[i]);
		size_t last = strlen(t) - 2;
		t[last] = t[last] == 'A' ? 'B' : 'A';
		TEST_EQ_INT(jose__jwt_verify(t, strlen(t), s, &c, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
		jose__jwks_free(s);
	}
}

static size_t sign(EVP_PKEY *k, const char *hdr, const char *pl, char *out, size_t cap)
{
	size_t n = tk_sign(k, hdr, pl, out, cap);
	TEST_CHECK(n > 0);
	return n;
}

static int verify(const char *tok, size_t n, unsigned *flags)
{
	jose_claims c;
	int rc = jose__jwt_verify(tok, n, set, &c, flags);
	jose__claims_free(&c);
	return rc;
}

static void test_verify_generated(void)
{
	char tok[4096];
	unsigned flags;
	size_t n = sign(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}", payload, tok, sizeof(tok));
	jose_claims c;
	TEST_EQ_INT(jose__jwt_verify(tok, n, set, &c, &flags), PARLEY_OK);
	TEST_CHECK(c.sub && strcmp(c.sub, "u1") == 0);
	TEST_CHECK(jose__claims_aud_contains(&c, "c1") && !jose__claims_aud_contains(&c, "c2"));
	TEST_CHECK(jose__claims_string(&c, "iss") && !jose__claims_string(&c, "exp"));
	jose__claims_free(&c);
	n = sign(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_OK);
	TEST_EQ_INT(flags, 0);
	/* the signature is over the exact header: re-signed with typ application/jwt is fine too */
	n = sign(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\",\"typ\":\"application/jwt\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_OK);
}

static void test_verify_refusals(void)
{
	char tok[JOSE_JWT_MAX_BYTES + 64], other[4096];
	unsigned flags;
	size_t n;

	/* alg none (RFC 7515 A.5 shape: empty signature) */
	n = tk_signing_input("{\"alg\":\"none\"}", payload, tok, sizeof(tok));
	tok[n++] = '.';
	tok[n] = '\0';
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);

	/* HS256 keyed with the RSA public key's PEM: the algorithm-confusion attack */
	BIO *bio = BIO_new(BIO_s_mem());
	TEST_CHECK(PEM_write_bio_PUBKEY(bio, rsa_key) == 1);
	char *pem;
	long pem_len = BIO_get_mem_data(bio, &pem);
	n = tk_signing_input("{\"alg\":\"HS256\",\"kid\":\"r1\"}", payload, tok, sizeof(tok));
	uint8_t mac[32];
	crypto__hmac_sha256(mac, (const uint8_t *)pem, (size_t)pem_len, (const uint8_t *)tok, n);
	tk_append_sig(tok, sizeof(tok), n, mac, sizeof(mac));
	BIO_free(bio);
	TEST_EQ_INT(verify(tok, strlen(tok), &flags), PARLEY_E_ID_TOKEN_SIGNATURE);

	/* the algorithm list is enforced by itself: headers naming none, HS256 or an algorithm we do not
	 * implement are refused even when the bytes carry a valid RS256 signature by the named key */
	static const char *refused[] = {"{\"alg\":\"none\",\"kid\":\"r1\"}", "{\"alg\":\"HS256\",\"kid\":\"r1\"}",
					"{\"alg\":\"PS256\",\"kid\":\"r1\"}", "{\"alg\":\"RS512\",\"kid\":\"r1\"}",
					"{\"alg\":\"rs256\",\"kid\":\"r1\"}"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n = sign(rsa_key, refused[i], payload, tok, sizeof(tok));
		TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	}

	/* alg/kty mismatch: ES256 naming the RSA key, RS256 naming the EC key; the kid is known, no refetch */
	n = sign(ec_key, "{\"alg\":\"ES256\",\"kid\":\"r1\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	TEST_EQ_INT(flags, 0);
	n = sign(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"e1\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	TEST_EQ_INT(flags, 0);

	/* tampered payload: a valid signature moved onto another payload */
	n = sign(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload, tok, sizeof(tok));
	size_t m = tk_signing_input("{\"alg\":\"RS256\",\"kid\":\"r1\"}",
				    "{\"iss\":\"https://idp.example\",\"sub\":\"u2\",\"aud\":\"c1\",\"exp\":2000000000}",
				    other, sizeof(other));
	snprintf(other + m, sizeof(other) - m, "%s", strrchr(tok, '.'));
	TEST_EQ_INT(verify(other, strlen(other), &flags), PARLEY_E_ID_TOKEN_SIGNATURE);

	/* tampered signature (a middle character changed: still valid base64url) */
	tok[n - 20] = tok[n - 20] == 'A' ? 'B' : 'A';
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);

	/* ES256 signatures of 63 and 65 bytes, and an RSA signature one byte short */
	uint8_t sig[65] = {0};
	for (size_t len = 63; len <= 65; len += 2) {
		n = tk_signing_input("{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload, tok, sizeof(tok));
		size_t s = tk_raw_sign(ec_key, tok, n, sig, sizeof(sig));
		TEST_EQ_INT(s, 64);
		tk_append_sig(tok, sizeof(tok), n, sig, len);
		TEST_EQ_INT(verify(tok, strlen(tok), &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	}
	n = tk_signing_input("{\"alg\":\"RS256\",\"kid\":\"r1\"}", payload, tok, sizeof(tok));
	uint8_t rsig[256];
	TEST_EQ_INT(tk_raw_sign(rsa_key, tok, n, rsig, sizeof(rsig)), 256);
	tk_append_sig(tok, sizeof(tok), n, rsig, 255);
	TEST_EQ_INT(verify(tok, strlen(tok), &flags), PARLEY_E_ID_TOKEN_SIGNATURE);

	/* bad base64url in each part: padding, '+' */
	n = sign(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_OK);
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	size_t cut[3] = {(size_t)(d1 - tok) - 1, (size_t)(d2 - tok) - 1, n - 1};
	for (int i = 0; i < 3; i++) {
		char save = tok[cut[i]];
		tok[cut[i]] = '+';
		TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_INVALID);
		tok[cut[i]] = '=';
		TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_INVALID);
		tok[cut[i]] = save;
	}
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_OK);

	/* 2 parts, 4 parts, empty parts */
	TEST_EQ_INT(verify(tok, (size_t)(d2 - tok), &flags), PARLEY_E_ID_TOKEN_INVALID);
	/* (the length is checked: the debug build's -Wformat-truncation wants the result used) */
	int olen = snprintf(other, sizeof(other), "%s.AAAA", tok);
	TEST_CHECK(olen > 0 && (size_t)olen < sizeof(other));
	TEST_EQ_INT(verify(other, strlen(other), &flags), PARLEY_E_ID_TOKEN_INVALID);
	TEST_EQ_INT(verify("..", 2, &flags), PARLEY_E_ID_TOKEN_INVALID);
	TEST_EQ_INT(verify("", 0, &flags), PARLEY_E_ID_TOKEN_INVALID);

	/* oversize: a (validly signed) token one byte over the limit */
	static char big_payload[JOSE_JWT_MAX_BYTES];
	int pad = (int)(JOSE_JWT_MAX_BYTES / 4 * 3 - 200);
	snprintf(big_payload, sizeof(big_payload), "{\"aud\":\"c1\",\"x\":\"%*s\"}", pad, "");
	n = sign(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", big_payload, tok, sizeof(tok));
	TEST_CHECK(n <= JOSE_JWT_MAX_BYTES);
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_OK);
	pad += (int)(JOSE_JWT_MAX_BYTES - n) / 4 * 3 + 3;
	snprintf(big_payload, sizeof(big_payload), "{\"aud\":\"c1\",\"x\":\"%*s\"}", pad, "");
	n = sign(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", big_payload, tok, sizeof(tok));
	TEST_CHECK(n > JOSE_JWT_MAX_BYTES);
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_INVALID);

	/* unknown kid: refused, and flagged for one JWKS refetch */
	n = sign(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r2\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	TEST_EQ_INT(flags, JOSE_VERIFY_KEY_UNKNOWN);

	/* header shape: typ of another token type, crit, alg not a string, header not an object, bad JSON */
	static const char *hdrs[] = {"{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"at+jwt\"}",
				     "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"],\"exp\":1}",
				     "{\"alg\":256,\"kid\":\"r1\"}", "[\"RS256\"]", "{\"alg\":\"RS256\",\"kid\":\"r1\"",
				     "{\"alg\":\"RS256\",\"kid\":\"r1\",\"alg\":\"RS256\"}", "{\"alg\":\"RS256\",\"kid\":7}"};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		n = sign(rsa_key, hdrs[i], payload, tok, sizeof(tok));
		TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_INVALID);
	}
	/* payload: not JSON, not an object, registered claims of the wrong type */
	static const char *pls[] = {"not json", "[1]", "{\"exp\":\"2000000000\"}", "{\"iss\":1}", "{\"aud\":[1]}",
				    "{\"exp\":-1}", "{\"email_verified\":\"yes\"}", "{\"nbf\":1e300}"};
	for (size_t i = 0; i < sizeof(pls) / sizeof(pls[0]); i++) {
		n = sign(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pls[i], tok, sizeof(tok));
		TEST_EQ_INT(verify(tok, n, &flags), PARLEY_E_ID_TOKEN_INVALID);
	}
}

/* No kid: the only key of the alg is used; with two candidates the token is refused (no guessing). */
static void test_no_kid(void)
{
	char jwk[3000], doc[7000], tok[4096];
	unsigned flags;
	jose_jwks *one = NULL, *two = NULL;
	tk_jwk(ec_key, NULL, NULL, jwk, sizeof(jwk));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", jwk);
	TEST_EQ_INT(jose__jwks_parse(doc, strlen(doc), &one), PARLEY_OK);
	EVP_PKEY *ec2 = tk_p256();
	char jwk2[3000];
	tk_jwk(ec2, NULL, NULL, jwk2, sizeof(jwk2));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", jwk, jwk2);
	TEST_EQ_INT(jose__jwks_parse(doc, strlen(doc), &two), PARLEY_OK);
	size_t n = sign(ec_key, "{\"alg\":\"ES256\"}", payload, tok, sizeof(tok));
	jose_claims c;
	TEST_EQ_INT(jose__jwt_verify(tok, n, one, &c, &flags), PARLEY_OK);
	jose__claims_free(&c);
	TEST_EQ_INT(jose__jwt_verify(tok, n, two, &c, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	TEST_EQ_INT(flags, 0);
	n = sign(rsa_key, "{\"alg\":\"RS256\"}", payload, tok, sizeof(tok));
	TEST_EQ_INT(jose__jwt_verify(tok, n, one, &c, &flags), PARLEY_E_ID_TOKEN_SIGNATURE);
	TEST_EQ_INT(flags, JOSE_VERIFY_KEY_UNKNOWN);
	EVP_PKEY_free(ec2);
	jose__jwks_free(one);
	jose__jwks_free(two);
}

static int parse_keys(const char *keys_json)
{
	char doc[40000];
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", keys_json);
	jose_jwks *s = NULL;
	int rc = jose__jwks_parse(doc, strlen(doc), &s);
	TEST_CHECK((rc == PARLEY_OK) == (s != NULL));
	jose__jwks_free(s);
	return rc;
}

static void test_jwks(void)
{
	char jwk[3000], doc[40000];
	/* RSA under 2048 bits refused; 2048 accepted (the fixture set) */
	EVP_PKEY *weak = tk_rsa(1024);
	tk_jwk(weak, "w", NULL, jwk, sizeof(jwk));
	TEST_EQ_INT(parse_keys(jwk), PARLEY_E_JWKS_UNAVAILABLE);
	EVP_PKEY_free(weak);
	TEST_EQ_INT(jose__jwks_count(set), 2);

	/* EC point off the curve (y + 1), a short coordinate */
	tk_jwk(ec_key, "e", NULL, jwk, sizeof(jwk));
	TEST_EQ_INT(parse_keys(jwk), PARLEY_OK);
	char *y = strstr(jwk, "\"y\":\"") + 5;
	uint8_t yb[32];
	size_t yl;
	TEST_EQ_INT(jose__b64url_decode(yb, sizeof(yb), &yl, y, 43), PARLEY_OK);
	yb[31] ^= 1;
	char yenc[44];
	jose__b64url_encode(yenc, sizeof(yenc), NULL, yb, 32);
	memcpy(y, yenc, 43);
	TEST_EQ_INT(parse_keys(jwk), PARLEY_E_JWKS_UNAVAILABLE);
	TEST_EQ_INT(parse_keys("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}"),
		    PARLEY_E_JWKS_UNAVAILABLE);

	/* skipped, not refused: other kty, other curve, use enc, alg we do not do */
	TEST_EQ_INT(parse_keys("{\"kty\":\"oct\",\"k\":\"AAAA\"},{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"A\"},"
			       "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"!\"},{\"kty\":\"RSA\",\"alg\":\"RS384\"},"
			       "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}"),
		    PARLEY_OK);
	/* alg contradicting kty, bad base64url, wrong member types, an overlong kid */
	tk_jwk(rsa_key, "r", "ES256", jwk, sizeof(jwk));
	TEST_EQ_INT(parse_keys(jwk), PARLEY_E_JWKS_UNAVAILABLE);
	TEST_EQ_INT(parse_keys("{\"kty\":\"RSA\",\"n\":\"a=\",\"e\":\"AQAB\"}"), PARLEY_E_JWKS_UNAVAILABLE);
	TEST_EQ_INT(parse_keys("{\"kty\":7}"), PARLEY_E_JWKS_UNAVAILABLE);
	TEST_EQ_INT(parse_keys("3"), PARLEY_E_JWKS_UNAVAILABLE);
	char longkid[JOSE_KID_MAX + 2];
	memset(longkid, 'k', sizeof(longkid) - 1);
	longkid[sizeof(longkid) - 1] = '\0';
	tk_jwk(ec_key, longkid, NULL, jwk, sizeof(jwk));
	TEST_EQ_INT(parse_keys(jwk), PARLEY_E_JWKS_UNAVAILABLE);

	/* at most JOSE_JWKS_MAX_KEYS usable keys */
	tk_jwk(ec_key, "e", NULL, jwk, sizeof(jwk));
	size_t o = 0;
	for (int i = 0; i < JOSE_JWKS_MAX_KEYS; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o, "%s%s", i ? "," : "", jwk);
	TEST_EQ_INT(parse_keys(doc), PARLEY_OK);
	snprintf(doc + o, sizeof(doc) - o, ",%s", jwk);
	TEST_EQ_INT(parse_keys(doc), PARLEY_E_JWKS_UNAVAILABLE);

	/* document shape and size */
	jose_jwks *s = NULL;
	static const char *bad[] = {"", "{", "[]", "{\"keys\":{}}", "{\"keys\":[],\"keys\":[]}", "{\"nokeys\":[]}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TEST_EQ_INT(jose__jwks_parse(bad[i], strlen(bad[i]), &s), PARLEY_E_JWKS_UNAVAILABLE);
	static char huge[JOSE_JWKS_MAX_BYTES + 2];
	memset(huge, ' ', sizeof(huge));
	memcpy(huge, "{\"keys\":[]}", 11);
	TEST_EQ_INT(jose__jwks_parse(huge, JOSE_JWKS_MAX_BYTES, &s), PARLEY_OK);
	jose__jwks_free(s);
	TEST_EQ_INT(jose__jwks_parse(huge, JOSE_JWKS_MAX_BYTES + 1, &s), PARLEY_E_JWKS_UNAVAILABLE);
}

int main(void)
{
	TEST_CHECK(crypto__init() == PARLEY_OK);
	rsa_key = tk_rsa(2048);
	ec_key = tk_p256();
	TEST_CHECK(rsa_key && ec_key);
	char r[3000], e[1000], doc[5000];
	tk_jwk(rsa_key, "r1", "RS256", r, sizeof(r));
	tk_jwk(ec_key, "e1", "ES256", e, sizeof(e));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", r, e);
	TEST_EQ_INT(jose__jwks_parse(doc, strlen(doc), &set), PARLEY_OK);
	TEST_RUN(test_b64url);
	TEST_RUN(test_rfc7515_vectors);
	TEST_RUN(test_verify_generated);
	TEST_RUN(test_verify_refusals);
	TEST_RUN(test_no_kid);
	TEST_RUN(test_jwks);
	jose__jwks_free(set);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	TEST_EXIT();
}
