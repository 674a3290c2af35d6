/* ID-token verification throughput (issue 11, docs/benchmarks.md "ID-token verification"): how many
 * ID tokens per second server/auth/jose verifies with the JWKS already parsed, signature + claim checks
 * (jose__jwt_verify + jose__idtoken_check + jose__claims_free), for RS256 with a 2048-bit key and
 * ES256. Run by tests/bench/run-auth.sh beside `openssl speed`, whose raw verify/s is the ceiling.
 *   auth_bench [SECONDS per algorithm, default 3]
 * Prints one line per algorithm: "idtoken ALG verifications N seconds S per_second R". */
#include <parley/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "crypto/crypto.h"
#include "../../unit/auth/jose_testkit.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A realistic ID token: Google-sized claims, kid, typ. */
static const char payload[] =
	"{\"iss\":\"https://accounts.idp.example\",\"azp\":\"1234987819200.apps.idp.example\","
	"\"aud\":\"1234987819200.apps.idp.example\",\"sub\":\"10769150350006150715113082367\","
	"\"email\":\"jsmith@example.com\",\"email_verified\":true,\"at_hash\":\"HK6E_P6Dh8Y93mRNtsDB1Q\","
	"\"nonce\":\"Q1a3l9n0bKpR3cT4f8G2yVhWmZx6sJdE7uNoLiAkBqC\",\"name\":\"Jane Smith\","
	"\"iat\":1800000000,\"exp\":1800003600}";

static int bench(const char *name, EVP_PKEY *key, const char *header, const jose_jwks *set, double seconds)
{
	char tok[4096];
	size_t n = tk_sign(key, header, payload, tok, sizeof(tok));
	jose_expect e = {.issuer = "https://accounts.idp.example", .client_id = "1234987819200.apps.idp.example",
			 .nonce = "Q1a3l9n0bKpR3cT4f8G2yVhWmZx6sJdE7uNoLiAkBqC", .now = 1800000100, .skew_s = 60,
			 .max_age_s = 600};
	unsigned long count = 0;
	double start = now_s(), elapsed;
	do {
		for (int i = 0; i < 64; i++) {
			jose_claims c;
			unsigned flags;
			if (jose__jwt_verify(tok, n, set, &c, &flags) != PARLEY_OK || jose__idtoken_check(&c, &e) != PARLEY_OK) {
				fprintf(stderr, "auth_bench: %s token did not verify\n", name);
				return 1;
			}
			jose__claims_free(&c);
		}
		count += 64;
		elapsed = now_s() - start;
	} while (elapsed < seconds);
	printf("idtoken %s verifications %lu seconds %.2f per_second %.1f\n", name, count, elapsed,
	       (double)count / elapsed);
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? strtod(argv[1], NULL) : 3.0;
	if (!(seconds > 0) || crypto__init() != PARLEY_OK)
		return 2;
	EVP_PKEY *rsa = tk_rsa(2048), *ec = tk_p256();
	char r[3000], e[1000], doc[5000];
	tk_jwk(rsa, "r1", "RS256", r, sizeof(r));
	tk_jwk(ec, "e1", "ES256", e, sizeof(e));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", r, e);
	jose_jwks *set = NULL;
	if (!rsa || !ec || jose__jwks_parse(doc, strlen(doc), &set) != PARLEY_OK)
		return 2;
	int rc = bench("RS256-2048", rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}", set, seconds) ||
		 bench("ES256", ec, "{\"alg\":\"ES256\",\"kid\":\"e1\",\"typ\":\"JWT\"}", set, seconds);
	jose__jwks_free(set);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	return rc;
}
