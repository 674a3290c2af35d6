/* server/auth/exchange.c: the calls to identity providers (libcurl; blocking: the thread pool only). */
#ifndef PARLEYD_AUTH_EXCHANGE_H
#define PARLEYD_AUTH_EXCHANGE_H

#include "auth/auth.h"

/* One sign-in's code exchange: inputs, then the identity out. */
typedef struct auth_exchange {
	store_auth_component comp;            /* its endpoints filled from discovery by auth__exchange */
	char code[1024];
	char nonce[STORE_AUTH_TOKEN + 1], verifier[STORE_AUTH_TOKEN + 1];
	char redirect_uri[AUTH_URL_MAX + 32];
	store_auth_identity ident;
} auth_exchange;

/* curl's global state and the document cache: at service init / fini (no pool job running). */
int auth__http_init(void);
void auth__http_fini(void);
/* The daemon stops: calls in flight end within about a second with PARLEY_E_SHUTTING_DOWN, and so do
 * new ones. Any thread (an atomic flag). */
void auth__http_stop(void);

/* Fills the component's empty endpoints from its discovery document (cached auth_jwks_cache_s).
 * PARLEY_E_JWKS_UNAVAILABLE when the document cannot be had. Blocking. */
int auth__endpoints(const auth_config *cfg, store_auth_component *c, uint64_t now_ms);

/* The code exchange (client_secret_basic when the component has a secret, PKCE's verifier, the
 * redirect URI), then oidc: the ID token verified (jose.h: the JWKS fetched, cached, refetched once on
 * an unknown kid unless just fetched, at most once per auth_jwks_refetch_s and URL; iss, aud, azp, times
 * with auth_clock_skew_s, the nonce) or oauth2: userinfo with the
 * access token. PARLEY_OK with x->ident, or AUTH_TOKEN_EXCHANGE, JWKS_UNAVAILABLE, ID_TOKEN_*. Blocking. */
int auth__exchange(const auth_config *cfg, auth_exchange *x, uint64_t now_ms);

/* A business-signed assertion (jwt components): the signature under the component's JWKS (as for ID
 * tokens), iss, aud = client_id, exp/nbf/iat with the skew, a jti (its hash and exp into id: the store
 * records it with the credential, JWT_REPLAYED on a live one, SERVER_BUSY beyond auth_jti_cache live
 * ones per entity). Blocking. */
int auth__assertion(const auth_config *cfg, const store_auth_component *c, const char *tok, uint64_t now_ms,
		    store_auth_identity *id);

/* RFC 3986 unreserved characters kept, everything else %XX; truncated to cap. */
void auth__url_encode(char *out, size_t cap, const char *in);
/* A client secret's name (secret_ref "file:NAME"): 1..AUTH_SECRET_NAME_MAX of [A-Za-z0-9_-], starting
 * with a letter or digit. 1 when valid. */
#define AUTH_SECRET_NAME_MAX 64
int auth__secret_name_ok(const char *name);

#endif
