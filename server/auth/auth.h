/* Customer authentication, the service (docs/protocol.md §14.2, docs/auth.md; design: issue 11).
 *
 * An entity's admins configure authorization request components (components.c); a staff member of a
 * thread sends one to the thread's customer (AuthStart), who is told with an AuthPrompt push and answers
 * at the identity provider (the HTTP start link and callback), with a one-time code, or with a
 * business-signed JWT (AuthAnswer). The store op checks the caller, the request and the binding in its
 * own transaction (store/sql/auth.c, auth_requests.c); the verification core is jose.h (sans-I/O).
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
#define AUTH_OTP_KEY_LEN 32

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
	int allow_private;              /* auth_allow_private_hosts */
	char allowed_hosts[CONFIG_STR_MAX]; /* auth_allowed_hosts */
	char http_proxy[CONFIG_STR_MAX];    /* auth_http_proxy ("" = direct, never the environment's) */
	/* the key of the one-time codes' MACs: <data_dir>/auth_otp.key (otpkey.c), never in the database,
	 * so a copy of the database does not give a code away, and codes survive a restart */
	unsigned known_emails_max;      /* auth_known_emails_max */
	uint8_t otp_key[AUTH_OTP_KEY_LEN];
} auth_config;

extern const service auth__service;

void auth__config_from(auth_config *c, const parleyd_config *cfg);

/* otpkey.c: the OTP key from <dir>/auth_otp.key, created (O_EXCL, 0600, random) when absent.
 * PARLEY_E_CONFIG when it is a symbolic link, not AUTH_OTP_KEY_LEN bytes, or readable by group or
 * others; PARLEY_E_IO when it cannot be written. */
int auth__otp_key_load(const char *dir, uint8_t key[AUTH_OTP_KEY_LEN]);
/* otpcheck.c: at start-up, after the store opened and before the services start (any thread but a
 * loop's or the store's): the key's fingerprint against the database's (stored when the database has
 * none). A different one: PARLEY_E_CONFIG (logged) with PostgreSQL (cfg->store set: other nodes use
 * the stored key); with SQLite a warning and the stored fingerprint replaced, PARLEY_OK. An unusable
 * key file is left to the auth service's init (PARLEY_OK here). */
int auth__otp_key_check(store *s, const parleyd_config *cfg);

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
/* The host of an http(s) URL (an IPv6 literal keeps its brackets): its length, 0 if none. */
size_t auth__url_host(const char *url, const char **host);
/* PARLEY_E_AUTH_HOST_FORBIDDEN when one of the component's URLs names a non-public address literally
 * (or localhost) and the operator allows neither private hosts nor that host; else PARLEY_OK. */
int auth__component_hosts_check(const auth_config *cfg, const Parley__Wire__AuthComponent *w);

/* --- netguard.c: the addresses providers may be called at (pure) --- */

/* 1 if a global unicast address (see netguard.c for every block refused), a in network order. */
int auth__ip4_public(const uint8_t a[4]);
int auth__ip6_public(const uint8_t a[16]);
/* The same for a socket address (AF_INET / AF_INET6; anything else: 0). */
struct sockaddr;
int auth__sockaddr_public(const struct sockaddr *sa, size_t len);
/* 1 if the host (n bytes) is one of the comma-separated list's names (case-insensitive, exact). */
int auth__host_listed(const char *list, const char *host, size_t n);
/* 0 if the host (n bytes, as in a URL) is a literal non-public address or "localhost"; names: 1. */
int auth__host_literal_public(const char *host, size_t n);
/* 1 if parleyd may connect to non-public addresses for the URL (auth_allow_private_hosts, or its
 * host is in auth_allowed_hosts). */
int auth__private_ok(const auth_config *cfg, const char *url);

#endif
