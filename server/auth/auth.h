/* Customer authentication, the service (docs/protocol.md §14.2, docs/auth.md; design: issue 11).
 *
 * An entity's admins configure authorization request components (components.c); a staff member of a
 * thread sends one to the thread's customer (AuthStart), who is told with an AuthPrompt push and answers
 * at the identity provider (the HTTP start link and callback), with a one-time code, or with a
 * business-signed JWT (AuthAnswer). The store op checks the caller, the request and the binding in its
 * own transaction (store/sqlite/auth.c, auth_requests.c); the verification core is jose.h (sans-I/O).
 * Each answer ends with an AuthResult push to every member of the thread, and a timer on loop 0 expires
 * requests and credentials (the level falls back to the channel's baseline, AuthResult again). */
#ifndef PARLEYD_AUTH_H
#define PARLEYD_AUTH_H

#include <stdint.h>

#include "base/config.h"
#include "dispatch/service.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"

#define AUTH_URL_MAX (CONFIG_STR_MAX + 32) /* auth_public_url, or http://<bind>:<port> */
#define AUTH_SWEEP_MS 1000 /* how often loop 0 expires requests and credentials */

typedef struct auth_config {
	char public_url[AUTH_URL_MAX];  /* auth_public_url, or http://<bind>:<port> */
	uint64_t request_ttl_ms;        /* auth_request_ttl_s */
	unsigned max_open;              /* auth_max_open_per_thread */
	int64_t skew_s;                 /* auth_clock_skew_s */
	unsigned otp_attempts;          /* auth_otp_attempts */
	long http_timeout_ms;           /* auth_http_timeout_ms */
	char ca_file[CONFIG_STR_MAX];   /* auth_ca_file ("" = the system's CAs only) */
	char secrets_dir[CONFIG_STR_MAX]; /* auth_secrets_dir ("" = no client secrets) */
	uint64_t jwks_cache_ms;         /* auth_jwks_cache_s */
	uint64_t jwks_refetch_ms;       /* auth_jwks_refetch_s */
	unsigned jti_cache;             /* auth_jti_cache */
	unsigned components_max;        /* auth_components_max */
	/* the key of the one-time codes' MACs: random per process, never written anywhere, so a copy of
	 * the database does not give a code away (a restart voids the codes in flight: OTP_WRONG) */
	uint8_t otp_key[32];
} auth_config;

extern const service auth__service;

void auth__config_from(auth_config *c, const parleyd_config *cfg);

/* routes.c: AuthResult to every member of t (req NULL: only the level changed, a credential expired).
 * On a loop thread. */
void auth__push_result(worker *w, const auth_config *cfg, const store_thread_info *t, const store_auth_request *req);

/* pages.c: the service's http_get hook, GET /v1/auth/start/<token> and /v1/auth/callback (§14.3). */
int auth__http_get(worker *w, void *state, const char *url, http_reply *reply);

/* --- components.c --- */

/* A component as an admin sent it: PARLEY_E_COMPONENT_INVALID unless the name is 1..64 printable
 * bytes, the type known, every endpoint https (http only to a loopback host: 127.0.0.1, [::1],
 * localhost), oidc/oauth2 with client_id and either a discovery URL or the authorization and token
 * endpoints (oidc: + jwks_uri and issuer; oauth2: + userinfo), jwt with issuer and jwks_uri, secret_ref
 * empty or env:NAME / file:/absolute/path, scopes printable, binding known and meaningful for the type
 * (an otp or jwt identity has no sub/email/phone of a provider... except jwt's sub), credential_ttl_s
 * 1..31536000. */
int auth__component_check(const Parley__Wire__AuthComponent *w);
/* The wire component into the store's (bounded copies; scopes default "openid"). */
void auth__component_from_wire(store_auth_component *c, const Parley__Wire__AuthComponent *w);
/* The store's component onto the wire (pointers into c). */
void auth__component_to_wire(Parley__Wire__AuthComponent *w, const store_auth_component *c, const char *entity);
/* 1 if url is https://..., or http:// to a loopback host. */
int auth__url_ok(const char *url);

#endif
