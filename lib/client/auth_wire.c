/* Customer authentication: the wire <-> public conversions, the pushes and the names (auth_internal.h).
 *
 * Every string the server sends is copied only if it fits its field whole: a cut URL or name would show
 * the customer or the agent something the server never said, so it is PARLEY_E_PROTO_MALFORMED instead.
 */
#include <string.h>

#include <sodium.h>

#include "client/auth_internal.h"
#include "client/thread_core.h"
#include "client/thread_internal.h"
#include "wire/wire_auth.h"

/* Copies src ("" for NULL) into dst of size bytes; -1 when it does not fit whole. */
static int copy_str(char *dst, size_t size, const char *src)
{
	size_t n = src != NULL ? strnlen(src, size) : 0;

	if (n == size)
		return -1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

#define COPY(dst, src) copy_str((dst), sizeof(dst), (src))
#define STR_(x) #x
#define STR(x) STR_(x)

/* 1 if s is an http(s) URL of printable ASCII without spaces: what a customer may be asked to open. */
static int url_ok(const char *s)
{
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return 0;
	return 1;
}

int client__auth_component_from_wire(const Parley__Wire__AuthComponent *w, parley_auth_component *o)
{
	memset(o, 0, sizeof(*o));
	if (w == NULL || w->entity == NULL || !wire__handle_valid(w->entity) || w->name == NULL || w->name[0] == '\0')
		return PARLEY_E_PROTO_MALFORMED;
	if (COPY(o->entity, w->entity) || COPY(o->name, w->name) || COPY(o->issuer, w->issuer) ||
	    COPY(o->discovery_url, w->discovery_url) || COPY(o->authorization_endpoint, w->authorization_endpoint) ||
	    COPY(o->token_endpoint, w->token_endpoint) || COPY(o->jwks_uri, w->jwks_uri) ||
	    COPY(o->userinfo_endpoint, w->userinfo_endpoint) || COPY(o->client_id, w->client_id) ||
	    COPY(o->secret_ref, w->secret_ref) || COPY(o->scopes, w->scopes)) {
		memset(o, 0, sizeof(*o));
		return PARLEY_E_PROTO_MALFORMED;
	}
	o->component_id = w->component_id;
	o->type = (parley_auth_type)w->type;
	o->state = (parley_component_state)w->state;
	o->binding = (parley_auth_binding)w->binding;
	o->credential_ttl_s = w->credential_ttl_s;
	o->created_ms = w->created_ms;
	o->updated_ms = w->updated_ms;
	return PARLEY_OK;
}

int client__auth_request_from_wire(const Parley__Wire__AuthRequestInfo *w, parley_auth_request *o)
{
	memset(o, 0, sizeof(*o));
	if (w == NULL || w->request_id == 0 || COPY(o->component, w->component) || COPY(o->url, w->url) ||
	    (o->url[0] != '\0' && !url_ok(o->url))) {
		memset(o, 0, sizeof(*o));
		return PARLEY_E_PROTO_MALFORMED;
	}
	o->request_id = w->request_id;
	o->thread_id = w->thread_id;
	o->component_id = w->component_id;
	o->type = (parley_auth_type)w->type;
	o->expires_ms = w->expires_ms;
	o->status = (parley_auth_request_status)w->status;
	o->error = (parley_err)w->error;
	return PARLEY_OK;
}

/* 1 when field (of size bytes) holds its NUL: a caller's struct is not trusted to be terminated. */
#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int client__auth_component_to_wire(const parley_auth_component *in, Parley__Wire__AuthComponent *w, char *err,
				   size_t errlen)
{
	const char *bad = NULL;

	if (!TERMINATED(in->entity) || !wire__handle_valid(in->entity))
		bad = "the entity is no valid handle";
	else if (!TERMINATED(in->name) || in->name[0] == '\0')
		bad = "a component's name has 1 to " STR(PARLEY_AUTH_NAME_MAX) " bytes";
	else if (!TERMINATED(in->issuer) || !TERMINATED(in->discovery_url) ||
		 !TERMINATED(in->authorization_endpoint) || !TERMINATED(in->token_endpoint) ||
		 !TERMINATED(in->jwks_uri) || !TERMINATED(in->userinfo_endpoint) || !TERMINATED(in->client_id) ||
		 !TERMINATED(in->secret_ref) || !TERMINATED(in->scopes))
		bad = "a URL, client id, secret reference or scope list has at most "
		      STR(PARLEY_AUTH_FIELD_MAX) " bytes";
	else if (in->type < PARLEY_AUTH_OIDC || in->type > PARLEY_AUTH_JWT)
		bad = "the type is oidc, oauth2, otp or jwt";
	else if (in->binding < PARLEY_BINDING_NONE || in->binding > PARLEY_BINDING_EMAIL)
		bad = "the binding is none, sub, phone_number or email";
	if (bad != NULL) {
		snprintf(err, errlen, "%s", bad);
		return PARLEY_E_INVAL;
	}
	parley__wire__auth_component__init(w);
	w->component_id = in->component_id;
	/* the casts drop const only: protobuf-c's strings are char *, packing never writes them */
	w->entity = (char *)in->entity;
	w->name = (char *)in->name;
	w->type = (Parley__Wire__AuthType)in->type;
	w->issuer = (char *)in->issuer;
	w->discovery_url = (char *)in->discovery_url;
	w->authorization_endpoint = (char *)in->authorization_endpoint;
	w->token_endpoint = (char *)in->token_endpoint;
	w->jwks_uri = (char *)in->jwks_uri;
	w->userinfo_endpoint = (char *)in->userinfo_endpoint;
	w->client_id = (char *)in->client_id;
	w->secret_ref = (char *)in->secret_ref;
	w->scopes = (char *)in->scopes;
	w->binding = (Parley__Wire__AuthBinding)in->binding;
	w->credential_ttl_s = in->credential_ttl_s;
	return PARLEY_OK;
}

int client__auth_emails_from_wire(char *const *emails, size_t n, char out[][PARLEY_AUTH_EMAIL_MAX + 1],
				  size_t *n_out)
{
	char norm[PARLEY_AUTH_EMAIL_MAX + 1];

	*n_out = 0;
	if (n > PARLEY_AUTH_EMAILS_MAX)
		return PARLEY_E_PROTO_MALFORMED;
	for (size_t i = 0; i < n; i++) {
		/* an address the server could not have stored (over-long, control bytes, upper case) is its
		 * fault, not something to show an agent as known */
		if (emails[i] == NULL || wire__auth_email_norm(emails[i], norm, sizeof(norm)) != PARLEY_OK ||
		    strcmp(norm, emails[i]) != 0) {
			memset(out, 0, n * sizeof(out[0]));
			return PARLEY_E_PROTO_MALFORMED;
		}
		memcpy(out[i], norm, sizeof(norm));
	}
	*n_out = n;
	return PARLEY_OK;
}

int client__auth_status_from_wire(const Parley__Wire__AuthStatusResponse *w, parley_auth_status *o)
{
	memset(o, 0, sizeof(*o));
	if (w->n_requests > PARLEY_AUTH_REQUESTS_MAX || w->n_claims > PARLEY_AUTH_CLAIMS_MAX ||
	    COPY(o->verified_by, w->verified_by))
		goto malformed;
	o->verification = (parley_verification)w->verification;
	o->verified_until_ms = w->verified_until_ms;
	for (size_t i = 0; i < w->n_requests; i++)
		if (client__auth_request_from_wire(w->requests[i], &o->requests[i]) != PARLEY_OK)
			goto malformed;
	o->n_requests = w->n_requests;
	for (size_t i = 0; i < w->n_claims; i++)
		if (w->claims[i] == NULL || COPY(o->claims[i].name, w->claims[i]->name) ||
		    COPY(o->claims[i].value, w->claims[i]->value))
			goto malformed;
	o->n_claims = w->n_claims;
	if (client__auth_emails_from_wire(w->known_emails, w->n_known_emails, o->known_emails, &o->n_known_emails) !=
	    PARLEY_OK)
		goto malformed;
	return PARLEY_OK;
malformed:
	memset(o, 0, sizeof(*o));
	return PARLEY_E_PROTO_MALFORMED;
}

/* ---- pushes ---- */

void parley_auth_set_events(parley_client *c, const parley_auth_events *events)
{
	if (c == NULL)
		return;
	if (events == NULL)
		memset(&c->aev, 0, sizeof(c->aev));
	else
		c->aev = *events;
}

/* The prompt names a thread and an entity: when this device keeps that thread, the entity must be the
 * thread's (a server cannot dress a prompt up as another business's), and its name is the one the
 * verified staff list gives, not the server's word. Its channel customer is where a gateway sends the
 * code or the link: it must be the one the thread's signed OPEN names (docs/protocol.md §13.6), or a
 * server could have a customer's one-time code texted to a number of its choosing; a channel prompt
 * for a thread this device does not keep cannot be checked and is dropped. */
static void prompt(parley_client *c, const Parley__Wire__AuthPrompt *w)
{
	parley_auth_request req;
	char entity_name[PARLEY_ENTITY_NAME_MAX + 1], channel_user[PARLEY_CHANNEL_USER_MAX + 1];
	char otp[PARLEY_AUTH_OTP_MAX + 1];
	parley_thread_info info;
	parley_auth_prompt p;
	client_thread kept;

	if (c->aev.on_auth_prompt == NULL || w->entity == NULL || !wire__handle_valid(w->entity) ||
	    client__auth_request_from_wire(w->request, &req) != PARLEY_OK || req.thread_id == 0 ||
	    COPY(entity_name, w->entity_name) || COPY(channel_user, w->channel_user) || COPY(otp, w->otp))
		return;
	if (client__thread_ready(c) != PARLEY_OK || client__thread_load(c, req.thread_id, &kept) != PARLEY_OK) {
		if (w->channel != PARLEY_CHANNEL_NATIVE)
			return;
	} else if (kept.channel != w->channel || strcmp(kept.channel_user, channel_user) != 0) {
		return;
	}
	if (client__thread_ready(c) == PARLEY_OK && client__thread_info(c, req.thread_id, &info) == PARLEY_OK) {
		if (strcmp(info.entity, w->entity) != 0)
			return;
		if (info.entity_name[0] != '\0')
			snprintf(entity_name, sizeof(entity_name), "%s", info.entity_name);
	}
	memset(&p, 0, sizeof(p));
	p.entity = w->entity;
	p.entity_name = entity_name;
	p.request = &req;
	p.channel = (parley_channel)w->channel;
	p.channel_user = channel_user;
	p.otp = otp;
	c->aev.on_auth_prompt(c, &p, c->aev.user);
	sodium_memzero(otp, sizeof(otp));
}

/* The kept thread's level follows the result, so the thread's info (parley_thread_get, list) shows it
 * before the next fetch: it is the same server's word as ThreadInfo.verification. A thread this device
 * does not keep is left alone. */
static void keep_level(parley_client *c, const parley_auth_result *r)
{
	sqlite3_stmt *st = NULL;
	int authenticated = r->verification == PARLEY_VERIFICATION_AUTHENTICATED;

	if (client__thread_ready(c) != PARLEY_OK ||
	    client__thread_prep(c,
				"UPDATE threads SET verification = ?2, verified_until_ms = ?3, verified_by = ?4"
				" WHERE thread_id = ?1",
				r->thread_id, &st) != PARLEY_OK)
		return;
	sqlite3_bind_int(st, 2, (int)r->verification);
	sqlite3_bind_int64(st, 3, authenticated ? (sqlite3_int64)r->verified_until_ms : 0);
	sqlite3_bind_text(st, 4, authenticated ? r->verified_by : "", -1, SQLITE_STATIC);
	(void)client__sql_done(c, st);
}

static void result(parley_client *c, const Parley__Wire__AuthResult *w)
{
	parley_auth_request req;
	char by[PARLEY_AUTH_NAME_MAX + 1];
	parley_auth_result r;

	if (w->thread_id == 0 || COPY(by, w->verified_by) ||
	    (unsigned)w->verification > (unsigned)PARLEY_VERIFICATION_AUTHENTICATED)
		return;
	memset(&r, 0, sizeof(r));
	if (w->request != NULL) {
		if (client__auth_request_from_wire(w->request, &req) != PARLEY_OK || req.thread_id != w->thread_id)
			return;
		r.request = &req;
	}
	r.thread_id = w->thread_id;
	r.verification = (parley_verification)w->verification;
	r.verified_until_ms = w->verified_until_ms;
	r.verified_by = by;
	keep_level(c, &r);
	if (c->aev.on_auth_result != NULL)
		c->aev.on_auth_result(c, &r, c->aev.user);
}

void client__auth_push(parley_client *c, const Parley__Wire__Push *p)
{
	if (p->body_case == PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT && p->auth_prompt != NULL)
		prompt(c, p->auth_prompt);
	else if (p->body_case == PARLEY__WIRE__PUSH__BODY_AUTH_RESULT && p->auth_result != NULL)
		result(c, p->auth_result);
}

/* ---- names ---- */

#define NAME_OF(table, v) ((v) >= 0 && (v) < (int)(sizeof(table) / sizeof((table)[0])) && (table)[v] != NULL ? (table)[v] : "unknown")

const char *parley_auth_type_name(int type)
{
	static const char *const names[] = {NULL, "oidc", "oauth2", "otp", "jwt"};
	return NAME_OF(names, type);
}

const char *parley_component_state_name(int state)
{
	static const char *const names[] = {NULL, "draft", "active", "inactive"};
	return NAME_OF(names, state);
}

const char *parley_auth_binding_name(int binding)
{
	static const char *const names[] = {"none", "sub", "phone_number", "email"};
	return NAME_OF(names, binding);
}
