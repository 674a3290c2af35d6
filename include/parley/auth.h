/* parley — customer authentication by the staff of a thread (docs/auth.md, docs/protocol.md §14).
 *
 * An entity's admins configure AUTHORIZATION REQUEST COMPONENTS: an OpenID Connect provider
 * (authorization code + PKCE + nonce, the ID token checked against the provider's keys), an OAuth2
 * provider (identity from its userinfo endpoint), a one-time code sent over the thread's channel, or a
 * JWT signed by the business. A component is a draft until an admin activates it; only active ones are
 * sent. A staff member of a thread sends one to the thread's customer (parley_auth_start, the agent's
 * "Authenticate"); the customer's client (or the gateway of a channel thread) is told with an
 * on_auth_prompt event and signs in (opens the URL), or answers the code / presents the JWT
 * (parley_auth_answer). The server checks the answer, checks that the identity is the thread's customer
 * (the component's binding rule), keeps a credential with its expiry, and tells the thread's members
 * the new verification level (on_auth_result); when the credential expires the level falls back by
 * itself and on_auth_result says so.
 *
 * Calls follow the contract of <parley/client.h>. Statuses: PARLEY_E_NOT_ENTITY_ADMIN,
 * PARLEY_E_NOT_THREAD_MEMBER, PARLEY_E_NO_SUCH_COMPONENT, PARLEY_E_COMPONENT_INVALID,
 * PARLEY_E_COMPONENT_NOT_ACTIVE, PARLEY_E_NO_SUCH_AUTH_REQUEST, PARLEY_E_AUTH_EXPIRED,
 * PARLEY_E_AUTH_ALREADY_ANSWERED, PARLEY_E_OTP_WRONG, PARLEY_E_OTP_ATTEMPTS, PARLEY_E_JWT_REPLAYED,
 * PARLEY_E_ID_TOKEN_*, PARLEY_E_IDENTITY_MISMATCH, PARLEY_E_TOO_MANY_AUTH_REQUESTS, PARLEY_E_THREAD_CLOSED,
 * PARLEY_E_EMAIL_INVALID, PARLEY_E_TOO_MANY_KNOWN_EMAILS.
 */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H
#include <stddef.h>
#include <stdint.h>

#include <parley/client.h>
#include <parley/error.h>
#include <parley/export.h>
#include <parley/thread.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_AUTH_NAME_MAX 64   /* a component's name */
#define PARLEY_AUTH_FIELD_MAX 512 /* URLs, client id, secret reference, scopes */
#define PARLEY_AUTH_OTP_MAX 16
#define PARLEY_AUTH_JWT_MAX 8192
#define PARLEY_AUTH_REQUESTS_MAX 20 /* requests parley_auth_status returns */
#define PARLEY_AUTH_CLAIMS_MAX 8
#define PARLEY_AUTH_EMAIL_MAX 254   /* an email address */
#define PARLEY_AUTH_EMAILS_MAX 32   /* known emails of one customer (parleyd's auth_known_emails_max <= this) */

typedef enum parley_auth_type {
	PARLEY_AUTH_OIDC = 1,
	PARLEY_AUTH_OAUTH2 = 2,
	PARLEY_AUTH_OTP = 3,
	PARLEY_AUTH_JWT = 4,
} parley_auth_type;

typedef enum parley_component_state {
	PARLEY_COMPONENT_DRAFT = 1,
	PARLEY_COMPONENT_ACTIVE = 2,
	PARLEY_COMPONENT_INACTIVE = 3,
} parley_component_state;

/* What ties the signed-in identity to the thread's customer (PARLEY_E_IDENTITY_MISMATCH otherwise). */
typedef enum parley_auth_binding {
	PARLEY_BINDING_NONE = 0,  /* any identity of the provider */
	PARLEY_BINDING_SUB = 1,   /* the customer's linked subject (linked at its first success) */
	PARLEY_BINDING_PHONE = 2, /* a verified phone_number equal to the sms / waba thread's number */
	PARLEY_BINDING_EMAIL = 3, /* a verified email equal to the customer's known email */
} parley_auth_binding;

typedef struct parley_auth_component {
	uint64_t component_id; /* 0: create */
	char entity[PARLEY_HANDLE_MAX + 1];
	char name[PARLEY_AUTH_NAME_MAX + 1];
	parley_auth_type type;
	parley_component_state state; /* set by the server (a create is a draft) */
	char issuer[PARLEY_AUTH_FIELD_MAX + 1];
	char discovery_url[PARLEY_AUTH_FIELD_MAX + 1];
	char authorization_endpoint[PARLEY_AUTH_FIELD_MAX + 1];
	char token_endpoint[PARLEY_AUTH_FIELD_MAX + 1];
	char jwks_uri[PARLEY_AUTH_FIELD_MAX + 1];
	char userinfo_endpoint[PARLEY_AUTH_FIELD_MAX + 1];
	char client_id[PARLEY_AUTH_FIELD_MAX + 1];
	char secret_ref[PARLEY_AUTH_FIELD_MAX + 1]; /* file:NAME (parleyd: <auth_secrets_dir>/<entity>/NAME); "" for non-admins */
	char scopes[PARLEY_AUTH_FIELD_MAX + 1];     /* space-separated; "" = "openid" */
	parley_auth_binding binding;
	uint32_t credential_ttl_s;
	uint64_t created_ms, updated_ms;
} parley_auth_component;

typedef enum parley_auth_request_status {
	PARLEY_AUTH_REQUEST_OPEN = 1,
	PARLEY_AUTH_REQUEST_DONE = 2,    /* authenticated */
	PARLEY_AUTH_REQUEST_FAILED = 3,  /* answered and refused: error says why */
	PARLEY_AUTH_REQUEST_EXPIRED = 4,
} parley_auth_request_status;

typedef struct parley_auth_request {
	uint64_t request_id, thread_id, component_id;
	char component[PARLEY_AUTH_NAME_MAX + 1];
	parley_auth_type type;
	char url[PARLEY_AUTH_FIELD_MAX + 1]; /* oidc / oauth2: where the customer signs in */
	uint64_t expires_ms;
	parley_auth_request_status status;
	parley_err error;                    /* FAILED: why */
} parley_auth_request;

typedef struct parley_auth_claim {
	char name[PARLEY_AUTH_NAME_MAX + 1];
	char value[PARLEY_AUTH_FIELD_MAX + 1];
} parley_auth_claim;

typedef struct parley_auth_status {
	parley_verification verification;
	uint64_t verified_until_ms;
	char verified_by[PARLEY_AUTH_NAME_MAX + 1];
	size_t n_requests; /* newest first */
	parley_auth_request requests[PARLEY_AUTH_REQUESTS_MAX];
	size_t n_claims;   /* staff only: the bound claims of the valid credential */
	parley_auth_claim claims[PARLEY_AUTH_CLAIMS_MAX];
	size_t n_known_emails; /* staff only: the customer's known emails (parley_auth_known_email) */
	char known_emails[PARLEY_AUTH_EMAILS_MAX][PARLEY_AUTH_EMAIL_MAX + 1];
} parley_auth_status;

/* The emails the thread's entity knows for the thread's customer: the email binding accepts a sign-in
 * whose verified email is one of them. Lower-cased, sorted. */
typedef struct parley_auth_emails {
	size_t n;
	char emails[PARLEY_AUTH_EMAILS_MAX][PARLEY_AUTH_EMAIL_MAX + 1];
} parley_auth_emails;

/* To the customer (a channel thread: its gateway): show the prompt, open the URL, or, for a gateway,
 * send the OTP code out over the channel. Pointers valid during the callback only. */
typedef struct parley_auth_prompt {
	const char *entity, *entity_name;
	const parley_auth_request *request;
	parley_channel channel;
	const char *channel_user; /* "" for a native thread */
	const char *otp;          /* an otp request on a channel thread: the code to send; else "" */
} parley_auth_prompt;

/* To the thread's members when a request ends or a credential expires (request NULL then). */
typedef struct parley_auth_result {
	uint64_t thread_id;
	const parley_auth_request *request;
	parley_verification verification;
	uint64_t verified_until_ms;
	const char *verified_by;
} parley_auth_result;

typedef struct parley_auth_events {
	void (*on_auth_prompt)(parley_client *c, const parley_auth_prompt *p, void *user);
	void (*on_auth_result)(parley_client *c, const parley_auth_result *r, void *user);
	void *user;
} parley_auth_events;
/* Copied; runs inside parley_client_run like the other events. */
PARLEY_EXPORT void parley_auth_set_events(parley_client *client, const parley_auth_events *events);

/* "oidc", "oauth2", "otp", "jwt"; "draft", "active", "inactive"; "none", "sub", "phone_number", "email"
 * ("unknown" otherwise). */
PARLEY_EXPORT const char *parley_auth_type_name(int type);
PARLEY_EXPORT const char *parley_component_state_name(int state);
PARLEY_EXPORT const char *parley_auth_binding_name(int binding);

typedef void (*parley_auth_component_cb)(parley_client *c, parley_err status, const parley_auth_component *comp,
					 void *user);
typedef void (*parley_auth_request_cb)(parley_client *c, parley_err status, const parley_auth_request *req,
				       void *user);
typedef void (*parley_auth_emails_cb)(parley_client *c, parley_err status, const parley_auth_emails *emails,
				      void *user);

/* ---- asynchronous calls ---- */
/* Admins: create (component_id 0: a draft) or edit a component that is not active. */
PARLEY_EXPORT parley_err parley_auth_component_put_start(parley_client *c, const parley_auth_component *comp,
							 parley_auth_component_cb cb, void *user);
/* Admins: PARLEY_COMPONENT_ACTIVE or PARLEY_COMPONENT_INACTIVE. */
PARLEY_EXPORT parley_err parley_auth_component_set_state_start(parley_client *c, const char *entity,
							       uint64_t component_id, parley_component_state state,
							       parley_auth_component_cb cb, void *user);
/* A staff member of the thread sends an active component to the thread's customer. */
PARLEY_EXPORT parley_err parley_auth_start_start(parley_client *c, uint64_t thread_id, uint64_t component_id,
						 parley_auth_request_cb cb, void *user);
/* The thread's customer (or the gateway of a channel thread) answers an otp (otp set) or jwt (jwt set)
 * request. */
PARLEY_EXPORT parley_err parley_auth_answer_start(parley_client *c, uint64_t request_id, const char *otp,
						  const char *jwt, parley_done_cb cb, void *user);

/* A staff member of the thread (or an admin of its entity) records (email set), removes (remove != 0)
 * or only lists (email NULL or "") the thread's customer's known emails, kept per entity and customer
 * (a channel thread: per channel user). The address: 3..254 printable ASCII bytes, no space, exactly one
 * '@' (PARLEY_E_EMAIL_INVALID, checked before sending); case does not matter. The answer lists them all.
 * PARLEY_E_TOO_MANY_KNOWN_EMAILS at the server's limit. */
PARLEY_EXPORT parley_err parley_auth_known_email_start(parley_client *c, uint64_t thread_id, const char *email,
						       int remove, parley_auth_emails_cb cb, void *user);

/* ---- blocking variants ---- */
PARLEY_EXPORT parley_err parley_auth_component_put(parley_client *c, const parley_auth_component *comp,
						   parley_auth_component *out);
PARLEY_EXPORT parley_err parley_auth_component_set_state(parley_client *c, const char *entity,
							 uint64_t component_id, parley_component_state state,
							 parley_auth_component *out);
/* Admins: every component; other staff: the active ones. Up to max in out; *n filled. */
PARLEY_EXPORT parley_err parley_auth_component_list(parley_client *c, const char *entity,
						    parley_auth_component *out, size_t max, size_t *n);
PARLEY_EXPORT parley_err parley_auth_start(parley_client *c, uint64_t thread_id, uint64_t component_id,
					   parley_auth_request *out);
PARLEY_EXPORT parley_err parley_auth_answer(parley_client *c, uint64_t request_id, const char *otp,
					    const char *jwt);
/* A member of the thread: its level and latest requests. */
PARLEY_EXPORT parley_err parley_auth_status_get(parley_client *c, uint64_t thread_id, parley_auth_status *out);
PARLEY_EXPORT parley_err parley_auth_known_email(parley_client *c, uint64_t thread_id, const char *email, int remove,
						 parley_auth_emails *out);

#ifdef __cplusplus
}
#endif
#endif
