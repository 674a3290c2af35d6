/* Private to server/auth/jose: how jwt.c reaches the keys jwks.c parsed. Not for other modules. */
#ifndef PARLEY_SERVER_AUTH_JOSE_KEYS_H
#define PARLEY_SERVER_AUTH_JOSE_KEYS_H

#include <openssl/evp.h>

#include "auth/jose.h"

/* The key for a token: by kid when kid != NULL, else the only key of the token's alg. On failure
 * returns PARLEY_E_ID_TOKEN_SIGNATURE and sets JOSE_VERIFY_KEY_UNKNOWN in *flags when no key of the
 * set could have signed it (a refetch of the JWKS may help); a kid that names a key of another type,
 * or several candidate keys without a kid, do not set it. */
int jose__jwks_select(const jose_jwks *set, const char *kid, size_t kid_len, jose_alg alg, EVP_PKEY **pkey,
		      unsigned *flags);

#endif
