/* libFuzzer: server/auth/jose on arbitrary bytes. The input is a JWKS document and a compact JWS
 * separated by the first NUL byte (no NUL: the whole input is tried as both). The JWKS parser either
 * refuses or yields a bounded set; the verifier, against that set or the RFC 7515 A.2+A.3 keys, returns
 * only its documented codes, leaves the claims zeroed on failure, and on success yields claims the
 * checks can run on. base64url: whatever decodes re-encodes to the same text (one encoding per value). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "auth/jose.h"
#include "crypto/crypto.h"
#include "../../unit/auth/rfc7515_vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jose_jwks *fixed; /* the A.2 RSA key and the A.3 P-256 key */

static void fuzz_init(void)
{
	char doc[2048];
	size_t a = strlen(rfc7515_a2_jwks), b = strlen(rfc7515_a3_jwks);
	/* {"keys":[A2]} + {"keys":[A3]} -> {"keys":[A2,A3]} */
	memcpy(doc, rfc7515_a2_jwks, a - 2);
	doc[a - 2] = ',';
	memcpy(doc + a - 1, rfc7515_a3_jwks + 9, b - 9);
	if (crypto__init() != PARLEY_OK || jose__jwks_parse(doc, a - 1 + b - 9, &fixed) != PARLEY_OK ||
	    jose__jwks_count(fixed) != 2)
		abort();
}

static void fuzz_b64url(const char *s, size_t n)
{
	uint8_t dec[512];
	char enc[700];
	size_t dl, el;
	if (n > 600 || jose__b64url_decode(dec, sizeof(dec), &dl, s, n) != PARLEY_OK)
		return;
	if (jose__b64url_encode(enc, sizeof(enc), &el, dec, dl) != PARLEY_OK || el != n || memcmp(enc, s, n) != 0)
		abort();
}

static void fuzz_verify(const char *tok, size_t n, const jose_jwks *set)
{
	jose_claims c;
	unsigned flags = 0;
	int rc = jose__jwt_verify(tok, n, set, &c, &flags);
	if (rc != PARLEY_OK) {
		if ((rc != PARLEY_E_ID_TOKEN_INVALID && rc != PARLEY_E_ID_TOKEN_SIGNATURE && rc != PARLEY_E_NOMEM) ||
		    c.root || c.iss || c.aud || (flags & ~JOSE_VERIFY_KEY_UNKNOWN))
			abort();
		return;
	}
	if (!c.root || n > JOSE_JWT_MAX_BYTES || flags)
		abort();
	jose_expect e = {.issuer = "joe", .client_id = "c", .nonce = "n", .now = 1300819000, .skew_s = 60};
	(void)jose__idtoken_check(&c, &e);
	(void)jose__assertion_check(&c, &e);
	jose__claims_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fixed)
		fuzz_init();
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	size_t doc_len = nul ? (size_t)(nul - in) : size;
	const char *tok = nul ? nul + 1 : in;
	size_t tok_len = nul ? size - doc_len - 1 : size;

	jose_jwks *set = NULL;
	int rc = jose__jwks_parse(in, doc_len, &set);
	if ((rc == PARLEY_OK) != (set != NULL) || (rc != PARLEY_OK && rc != PARLEY_E_JWKS_UNAVAILABLE && rc != PARLEY_E_NOMEM))
		abort();
	if (set && jose__jwks_count(set) > JOSE_JWKS_MAX_KEYS)
		abort();
	fuzz_verify(tok, tok_len, set ? set : fixed);
	jose__jwks_free(set);
	fuzz_b64url(tok, tok_len);
	return 0;
}
