/* Size and presence checks of the customer-authentication messages (wire_auth.h). */
#include <parley/error.h>

#include "wire/wire_auth.h"
#include "wire/wire_threads.h"

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		int check__rc = (expr);                                                            \
		if (check__rc != PARLEY_OK)                                                        \
			return check__rc;                                                          \
	} while (0)

static int check_component(const Parley__Wire__AuthComponent *c, const wire_limits *l)
{
	const char *const fields[] = {c->name,     c->issuer,           c->discovery_url, c->authorization_endpoint,
				      c->token_endpoint, c->jwks_uri, c->userinfo_endpoint, c->client_id,
				      c->secret_ref, c->scopes};

	CHECK(wire__check_str(c->entity, l->max_handle, 1));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		CHECK(wire__check_str(fields[i], WIRE_AUTH_FIELD_CAP, 0));
	return PARLEY_OK;
}

static int check_request_info(const Parley__Wire__AuthRequestInfo *r)
{
	if (r == NULL)
		return PARLEY_E_PROTO_MISSING_FIELD;
	CHECK(wire__check_str(r->component, WIRE_AUTH_FIELD_CAP, 0));
	return wire__check_str(r->url, WIRE_AUTH_FIELD_CAP, 0);
}

int wire__check_auth_request(const Parley__Wire__Request *r, const wire_limits *l)
{
	switch (r->body_case) {
	case PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT:
		if (r->auth_component_put->component == NULL)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return check_component(r->auth_component_put->component, l);
	case PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE:
		return wire__check_str(r->auth_component_state->entity, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_LIST:
		return wire__check_str(r->auth_component_list->entity, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_AUTH_START:
	case PARLEY__WIRE__REQUEST__BODY_AUTH_STATUS:
		return PARLEY_OK; /* integers only */
	case PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER:
		CHECK(wire__check_str(r->auth_answer->otp, WIRE_AUTH_OTP_CAP, 0));
		return wire__check_str(r->auth_answer->jwt, WIRE_AUTH_JWT_CAP, 0);
	case PARLEY__WIRE__REQUEST__BODY_AUTH_KNOWN_EMAIL:
		/* the frame's bound only: the address rule is the service's (EMAIL_INVALID) */
		return wire__check_str(r->auth_known_email->email, WIRE_AUTH_FIELD_CAP, 0);
	default:
		return PARLEY_E_PROTO_UNKNOWN;
	}
}

int wire__check_auth_push(const Parley__Wire__Push *p, const wire_limits *l)
{
	if (p->body_case == PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT) {
		const Parley__Wire__AuthPrompt *a = p->auth_prompt;
		CHECK(wire__check_str(a->entity, l->max_handle, 1));
		CHECK(wire__check_str(a->entity_name, WIRE_MAX_DISPLAY_NAME, 0));
		CHECK(wire__check_str(a->channel_user, WIRE_AUTH_FIELD_CAP, 0));
		CHECK(wire__check_str(a->otp, WIRE_AUTH_OTP_CAP, 0));
		return check_request_info(a->request);
	}
	if (p->body_case == PARLEY__WIRE__PUSH__BODY_AUTH_RESULT) {
		const Parley__Wire__AuthResult *a = p->auth_result;
		CHECK(wire__check_str(a->verified_by, WIRE_AUTH_FIELD_CAP, 0));
		return a->request != NULL ? check_request_info(a->request) : PARLEY_OK;
	}
	return PARLEY_E_PROTO_UNKNOWN;
}

int wire__auth_email_norm(const char *in, char *out, size_t cap)
{
	size_t n = 0, at = 0;

	if (in == NULL || cap < WIRE_AUTH_EMAIL_MAX + 1)
		return PARLEY_E_INVAL;
	out[0] = '\0';
	for (; in[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)in[n];
		/* printable ASCII without the space: what an ID token's email claim is compared with byte for
		 * byte, so nothing a display could show two ways */
		if (n >= WIRE_AUTH_EMAIL_MAX || ch <= 0x20 || ch >= 0x7f)
			return PARLEY_E_EMAIL_INVALID;
		at += ch == '@';
	}
	if (n < 3 || at != 1 || in[0] == '@' || in[n - 1] == '@')
		return PARLEY_E_EMAIL_INVALID;
	/* one address however the business or the provider cased it (the rule of most providers, though
	 * RFC 5321 leaves the local part's case to the mail host) */
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
	return PARLEY_OK;
}
