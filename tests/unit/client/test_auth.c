/* Customer authentication in libparley without a server (lib/client/auth.c, auth_wire.c): the wire
 * conversions copy every string whole or refuse (a field one byte too long is PROTO_MALFORMED, the
 * longest that fits passes), a sign-in URL that is not http(s) printable ASCII never reaches the
 * application, the bounds of a status, the checks of a component before it is sent, the pushes
 * (delivered once, malformed ones dropped, a result about another thread dropped), the entry points'
 * argument checks, and the names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../test.h"
#include "client/auth_internal.h"
#include "wire/wire_auth.h"
#include "client_test.h"

static char root[256];

/* A string of n copies of ch (static buffers: at most 2 alive at once per test). */
static char *str_of(size_t n, char ch)
{
	static char buf[2][PARLEY_AUTH_JWT_MAX + 2];
	static int next;
	char *s = buf[next++ % 2];
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static void wire_comp(Parley__Wire__AuthComponent *w)
{
	parley__wire__auth_component__init(w);
	w->component_id = 3;
	w->entity = (char *)"shop";
	w->name = (char *)"acme-sso";
	w->type = PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC;
	w->state = PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE;
	w->issuer = (char *)"https://id.acme.example";
	w->client_id = (char *)"parley";
	w->binding = PARLEY__WIRE__AUTH_BINDING__BINDING_SUB;
	w->credential_ttl_s = 3600;
}

static void test_component_from_wire(void)
{
	Parley__Wire__AuthComponent w;
	parley_auth_component o;

	wire_comp(&w);
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_OK);
	TEST_EQ_INT(o.component_id, 3);
	TEST_EQ_STR(o.entity, "shop");
	TEST_EQ_STR(o.name, "acme-sso");
	TEST_EQ_STR(o.issuer, "https://id.acme.example");
	TEST_EQ_STR(o.client_id, "parley");
	TEST_EQ_STR(o.secret_ref, "");
	TEST_EQ_INT(o.type, PARLEY_AUTH_OIDC);
	TEST_EQ_INT(o.state, PARLEY_COMPONENT_ACTIVE);
	TEST_EQ_INT(o.binding, PARLEY_BINDING_SUB);
	TEST_EQ_INT(o.credential_ttl_s, 3600);

	/* the longest name and URL fit; one byte more is refused, not cut */
	w.name = str_of(PARLEY_AUTH_NAME_MAX, 'n');
	w.token_endpoint = str_of(PARLEY_AUTH_FIELD_MAX, 't');
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_OK);
	TEST_EQ_INT(strlen(o.name), PARLEY_AUTH_NAME_MAX);
	TEST_EQ_INT(strlen(o.token_endpoint), PARLEY_AUTH_FIELD_MAX);
	w.name = str_of(PARLEY_AUTH_NAME_MAX + 1, 'n');
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_STR(o.name, ""); /* nothing half-filled is left */
	wire_comp(&w);
	w.scopes = str_of(PARLEY_AUTH_FIELD_MAX + 1, 's');
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	wire_comp(&w);
	w.secret_ref = str_of(PARLEY_AUTH_FIELD_MAX + 1, 'r');
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	wire_comp(&w);
	w.entity = (char *)"Not A Handle";
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	wire_comp(&w);
	w.name = (char *)"";
	TEST_EQ_INT(client__auth_component_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(client__auth_component_from_wire(NULL, &o), PARLEY_E_PROTO_MALFORMED);
}

static void wire_req(Parley__Wire__AuthRequestInfo *w)
{
	parley__wire__auth_request_info__init(w);
	w->request_id = 9;
	w->thread_id = 4;
	w->component_id = 3;
	w->component = (char *)"acme-sso";
	w->type = PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC;
	w->url = (char *)"https://auth.shop.example/v1/auth/start/abc";
	w->expires_ms = 1700000600000ull;
	w->status = PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_FAILED;
	w->error = PARLEY_E_OTP_ATTEMPTS;
}

static void test_request_from_wire(void)
{
	static const char *const bad_urls[] = {
		"javascript:alert(1)", "file:///etc/passwd", "https://x.example/a b", "https://x.example/\x1b[2J",
		"https://x.example/\xc3\xa9", "ftp://x.example/", "HTTPS://x.example/"};
	Parley__Wire__AuthRequestInfo w;
	parley_auth_request o;
	char url[PARLEY_AUTH_FIELD_MAX + 2];

	wire_req(&w);
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_OK);
	TEST_EQ_INT(o.request_id, 9);
	TEST_EQ_INT(o.thread_id, 4);
	TEST_EQ_INT(o.component_id, 3);
	TEST_EQ_STR(o.component, "acme-sso");
	TEST_EQ_STR(o.url, "https://auth.shop.example/v1/auth/start/abc");
	TEST_EQ_INT(o.expires_ms, 1700000600000ull);
	TEST_EQ_INT(o.status, PARLEY_AUTH_REQUEST_FAILED);
	TEST_EQ_INT(o.error, PARLEY_E_OTP_ATTEMPTS);
	/* otp / jwt requests have no URL */
	w.url = (char *)"";
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_OK);
	w.url = (char *)"http://127.0.0.1:8443/v1/auth/start/x";
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_OK);
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		w.url = (char *)bad_urls[i];
		TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
		TEST_EQ_STR(o.url, "");
	}
	/* the longest URL fits, one byte more does not */
	snprintf(url, sizeof(url), "https://%s", str_of(PARLEY_AUTH_FIELD_MAX - 8, 'u'));
	w.url = url;
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_OK);
	TEST_EQ_INT(strlen(o.url), PARLEY_AUTH_FIELD_MAX);
	snprintf(url, sizeof(url), "https://%s", str_of(PARLEY_AUTH_FIELD_MAX - 7, 'u'));
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	wire_req(&w);
	w.component = str_of(PARLEY_AUTH_NAME_MAX + 1, 'c');
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	wire_req(&w);
	w.request_id = 0;
	TEST_EQ_INT(client__auth_request_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
}

static void test_status_from_wire(void)
{
	static Parley__Wire__AuthRequestInfo reqs[PARLEY_AUTH_REQUESTS_MAX + 1];
	static Parley__Wire__AuthRequestInfo *preqs[PARLEY_AUTH_REQUESTS_MAX + 1];
	static Parley__Wire__AuthClaim claims[PARLEY_AUTH_CLAIMS_MAX + 1];
	static Parley__Wire__AuthClaim *pclaims[PARLEY_AUTH_CLAIMS_MAX + 1];
	static parley_auth_status o;
	Parley__Wire__AuthStatusResponse w;

	for (size_t i = 0; i <= PARLEY_AUTH_REQUESTS_MAX; i++) {
		wire_req(&reqs[i]);
		reqs[i].request_id = 100 - i;
		preqs[i] = &reqs[i];
	}
	for (size_t i = 0; i <= PARLEY_AUTH_CLAIMS_MAX; i++) {
		parley__wire__auth_claim__init(&claims[i]);
		claims[i].name = (char *)"email";
		claims[i].value = (char *)"carol@example.com";
		pclaims[i] = &claims[i];
	}
	parley__wire__auth_status_response__init(&w);
	w.verification = PARLEY__WIRE__VERIFICATION_LEVEL__VERIFICATION_AUTHENTICATED;
	w.verified_until_ms = 1700003600000ull;
	w.verified_by = (char *)"acme-sso";
	w.requests = preqs;
	w.n_requests = PARLEY_AUTH_REQUESTS_MAX;
	w.claims = pclaims;
	w.n_claims = PARLEY_AUTH_CLAIMS_MAX;
	TEST_EQ_INT(client__auth_status_from_wire(&w, &o), PARLEY_OK);
	TEST_EQ_INT(o.verification, PARLEY_VERIFICATION_AUTHENTICATED);
	TEST_EQ_INT(o.verified_until_ms, 1700003600000ull);
	TEST_EQ_STR(o.verified_by, "acme-sso");
	TEST_EQ_INT(o.n_requests, PARLEY_AUTH_REQUESTS_MAX);
	TEST_EQ_INT(o.requests[0].request_id, 100);
	TEST_EQ_INT(o.requests[PARLEY_AUTH_REQUESTS_MAX - 1].request_id, 100 - (PARLEY_AUTH_REQUESTS_MAX - 1));
	TEST_EQ_INT(o.n_claims, PARLEY_AUTH_CLAIMS_MAX);
	TEST_EQ_STR(o.claims[0].value, "carol@example.com");

	/* more than the documented bounds, or one bad entry: the whole answer is refused */
	w.n_requests = PARLEY_AUTH_REQUESTS_MAX + 1;
	TEST_EQ_INT(client__auth_status_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(o.n_requests, 0);
	w.n_requests = 1;
	w.n_claims = PARLEY_AUTH_CLAIMS_MAX + 1;
	TEST_EQ_INT(client__auth_status_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	w.n_claims = 1;
	claims[0].value = str_of(PARLEY_AUTH_FIELD_MAX + 1, 'v');
	TEST_EQ_INT(client__auth_status_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	claims[0].value = (char *)"x";
	reqs[0].url = (char *)"data:text/html,hi";
	TEST_EQ_INT(client__auth_status_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
	reqs[0].url = (char *)"";
	w.verified_by = str_of(PARLEY_AUTH_NAME_MAX + 1, 'b');
	TEST_EQ_INT(client__auth_status_from_wire(&w, &o), PARLEY_E_PROTO_MALFORMED);
}

static void good_comp(parley_auth_component *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->entity, sizeof(p->entity), "shop");
	snprintf(p->name, sizeof(p->name), "acme-sso");
	snprintf(p->issuer, sizeof(p->issuer), "https://id.acme.example");
	snprintf(p->secret_ref, sizeof(p->secret_ref), "env:ACME_SECRET");
	p->type = PARLEY_AUTH_OIDC;
	p->binding = PARLEY_BINDING_EMAIL;
	p->credential_ttl_s = 600;
}

static void test_component_to_wire(void)
{
	Parley__Wire__AuthComponent w;
	parley_auth_component p;
	char err[200];

	good_comp(&p);
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_STR(w.entity, "shop");
	TEST_EQ_STR(w.name, "acme-sso");
	TEST_EQ_STR(w.issuer, "https://id.acme.example");
	TEST_EQ_STR(w.secret_ref, "env:ACME_SECRET");
	TEST_EQ_INT(w.type, PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC);
	TEST_EQ_INT(w.binding, PARLEY__WIRE__AUTH_BINDING__BINDING_EMAIL);
	TEST_EQ_INT(w.credential_ttl_s, 600);
	TEST_EQ_INT(w.component_id, 0);

	/* a field without its NUL (a caller filled it with memcpy) is refused, never read past */
	good_comp(&p);
	memset(p.client_id, 'x', sizeof(p.client_id));
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
	TEST_CHECK(strstr(err, "at most 512 bytes") != NULL);
	good_comp(&p);
	memset(p.name, 'x', sizeof(p.name));
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
	good_comp(&p);
	p.name[0] = '\0';
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
	good_comp(&p);
	p.type = 0;
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
	p.type = 5;
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
	good_comp(&p);
	p.binding = 4;
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
	good_comp(&p);
	snprintf(p.entity, sizeof(p.entity), "Shop!");
	TEST_EQ_INT(client__auth_component_to_wire(&p, &w, err, sizeof(err)), PARLEY_E_INVAL);
}

/* ---- pushes ---- */

static int n_prompts, n_results;
static parley_auth_prompt last_prompt;
static parley_auth_request last_prompt_req;
static char last_otp[PARLEY_AUTH_OTP_MAX + 1], last_entity_name[PARLEY_ENTITY_NAME_MAX + 1];
static parley_auth_result last_result;
static int last_result_has_request;

static void on_prompt(parley_client *c, const parley_auth_prompt *p, void *user)
{
	TEST_CHECK(user == &n_prompts);
	n_prompts++;
	last_prompt = *p;
	last_prompt_req = *p->request;
	snprintf(last_otp, sizeof(last_otp), "%s", p->otp);
	snprintf(last_entity_name, sizeof(last_entity_name), "%s", p->entity_name);
}

static void on_result(parley_client *c, const parley_auth_result *r, void *user)
{
	n_results++;
	last_result = *r;
	last_result_has_request = r->request != NULL;
}

static void test_pushes(void)
{
	parley_client *c = test_client_new(root, "push", "ws://127.0.0.1:1/v1/websocket", 1000);
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	Parley__Wire__AuthPrompt ap = PARLEY__WIRE__AUTH_PROMPT__INIT;
	Parley__Wire__AuthResult ar = PARLEY__WIRE__AUTH_RESULT__INIT;
	Parley__Wire__AuthRequestInfo ri;
	parley_auth_events ev;

	if (c == NULL)
		return;
	wire_req(&ri);
	ri.status = PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_OPEN;
	ri.error = 0;
	ap.entity = (char *)"shop";
	ap.entity_name = (char *)"Shop Inc.";
	ap.request = &ri;
	ap.channel = PARLEY_CHANNEL_NATIVE;
	ap.channel_user = (char *)"";
	ap.otp = (char *)"123456";
	p.body_case = PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT;
	p.auth_prompt = &ap;

	/* no events set: nothing happens */
	client__auth_push(c, &p);
	memset(&ev, 0, sizeof(ev));
	ev.on_auth_prompt = on_prompt;
	ev.on_auth_result = on_result;
	ev.user = &n_prompts;
	parley_auth_set_events(c, &ev);
	client__auth_push(c, &p);
	TEST_EQ_INT(n_prompts, 1);
	TEST_EQ_STR(last_prompt.entity, "shop"); /* ap.entity: alive here */
	TEST_EQ_STR(last_entity_name, "Shop Inc.");
	TEST_EQ_INT(last_prompt_req.request_id, 9);
	TEST_EQ_STR(last_prompt_req.url, "https://auth.shop.example/v1/auth/start/abc");
	TEST_EQ_INT(last_prompt.channel, PARLEY_CHANNEL_NATIVE);
	TEST_EQ_STR(last_otp, "123456");
	/* a channel prompt for a thread this device does not keep: its channel customer (where a gateway
	 * sends the code) cannot be checked against a signed OPEN, so it is dropped (t31 channel_lies: a
	 * kept thread's) */
	ap.channel = PARLEY_CHANNEL_SMS;
	ap.channel_user = (char *)"+15551234567";
	client__auth_push(c, &p);
	TEST_EQ_INT(n_prompts, 1);
	ap.channel = PARLEY_CHANNEL_NATIVE;
	ap.channel_user = (char *)"";

	/* malformed prompts never reach the application */
	ri.url = (char *)"javascript:alert(1)";
	client__auth_push(c, &p);
	ri.url = (char *)"";
	ap.otp = str_of(PARLEY_AUTH_OTP_MAX + 1, '1');
	client__auth_push(c, &p);
	ap.otp = (char *)"";
	ap.entity_name = str_of(PARLEY_ENTITY_NAME_MAX + 1, 'e');
	client__auth_push(c, &p);
	ap.entity_name = (char *)"";
	ap.channel_user = str_of(PARLEY_CHANNEL_USER_MAX + 1, '5');
	client__auth_push(c, &p);
	ap.channel_user = (char *)"";
	ap.entity = (char *)"x";
	client__auth_push(c, &p);
	ap.entity = (char *)"shop";
	ri.thread_id = 0;
	client__auth_push(c, &p);
	ri.thread_id = 4;
	ap.request = NULL;
	client__auth_push(c, &p);
	TEST_EQ_INT(n_prompts, 1);
	ap.request = &ri;
	client__auth_push(c, &p);
	TEST_EQ_INT(n_prompts, 2);

	/* results: about a request, or the credential's expiry (no request) */
	ri.status = PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_DONE;
	ar.thread_id = 4;
	ar.request = &ri;
	ar.verification = PARLEY__WIRE__VERIFICATION_LEVEL__VERIFICATION_AUTHENTICATED;
	ar.verified_until_ms = 1700003600000ull;
	ar.verified_by = (char *)"acme-sso";
	p.body_case = PARLEY__WIRE__PUSH__BODY_AUTH_RESULT;
	p.auth_result = &ar;
	client__auth_push(c, &p);
	TEST_EQ_INT(n_results, 1);
	TEST_EQ_INT(last_result.thread_id, 4);
	TEST_EQ_INT(last_result_has_request, 1);
	TEST_EQ_INT(last_result.verification, PARLEY_VERIFICATION_AUTHENTICATED);
	TEST_EQ_INT(last_result.verified_until_ms, 1700003600000ull);
	/* a request of another thread, an over-long name, thread 0: dropped */
	ri.thread_id = 5;
	client__auth_push(c, &p);
	ri.thread_id = 4;
	ar.verified_by = str_of(PARLEY_AUTH_NAME_MAX + 1, 'b');
	client__auth_push(c, &p);
	ar.verified_by = (char *)"";
	ar.thread_id = 0;
	client__auth_push(c, &p);
	ar.thread_id = 4;
	ar.verification = 3; /* no such level */
	client__auth_push(c, &p);
	ar.verification = PARLEY__WIRE__VERIFICATION_LEVEL__VERIFICATION_AUTHENTICATED;
	TEST_EQ_INT(n_results, 1);
	ar.thread_id = 4;
	ar.request = NULL;
	ar.verification = PARLEY__WIRE__VERIFICATION_LEVEL__VERIFICATION_CHANNEL;
	client__auth_push(c, &p);
	TEST_EQ_INT(n_results, 2);
	TEST_EQ_INT(last_result_has_request, 0);
	TEST_EQ_INT(last_result.verification, PARLEY_VERIFICATION_CHANNEL);

	/* unset: nothing more */
	parley_auth_set_events(c, NULL);
	client__auth_push(c, &p);
	TEST_EQ_INT(n_results, 2);
	parley_client_free(c);
}

static void test_entry_checks(void)
{
	parley_client *c = test_client_new(root, "calls", "ws://127.0.0.1:1/v1/websocket", 1000);
	parley_auth_component comp, out;
	parley_auth_request req;
	static parley_auth_status st;
	static parley_auth_emails emails;
	size_t n = 7;

	if (c == NULL)
		return;
	good_comp(&comp);
	/* the arguments first */
	TEST_EQ_INT(parley_auth_answer(c, 1, "123456", "a.b.c"), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_answer(c, 1, NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_answer(c, 1, "", NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_answer(c, 0, "123456", NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_answer(c, 1, str_of(PARLEY_AUTH_OTP_MAX + 1, '1'), NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_answer(c, 1, NULL, str_of(PARLEY_AUTH_JWT_MAX + 1, 'j')), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_answer_start(c, 1, "1", NULL, NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_component_set_state(c, "shop", 1, PARLEY_COMPONENT_DRAFT, &out), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_component_set_state(c, "shop", 0, PARLEY_COMPONENT_ACTIVE, &out), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_component_set_state(c, "NO", 1, PARLEY_COMPONENT_ACTIVE, &out), PARLEY_E_BAD_HANDLE);
	TEST_EQ_INT(parley_auth_start(c, 0, 1, &req), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_start(c, 1, 0, &req), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_start_start(c, 1, 1, NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_status_get(c, 0, &st), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_status_get(c, 1, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_known_email(c, 0, "a@b.example", 0, &emails), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_known_email_start(c, 1, "a@b.example", 0, NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_known_email(c, 1, "a@b@c", 0, &emails), PARLEY_E_EMAIL_INVALID);
	TEST_CHECK(strstr(parley_client_errmsg(c), "one '@'") != NULL);
	TEST_EQ_INT(parley_auth_known_email(c, 1, "", 1, &emails), PARLEY_E_EMAIL_INVALID); /* remove what? */
	TEST_EQ_INT(parley_auth_component_list(c, "shop", NULL, 1, &n), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_component_list(c, "shop", &out, 1, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_auth_component_put(c, NULL, &out), PARLEY_E_INVAL);
	comp.type = 9;
	TEST_EQ_INT(parley_auth_component_put(c, &comp, &out), PARLEY_E_INVAL);
	TEST_CHECK(strstr(parley_client_errmsg(c), "oidc, oauth2, otp or jwt") != NULL);
	/* then the account: none saved here */
	good_comp(&comp);
	TEST_EQ_INT(parley_auth_component_put(c, &comp, &out), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_auth_component_list(c, "shop", &out, 1, &n), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(n, 0);
	TEST_EQ_INT(parley_auth_start(c, 1, 1, &req), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_auth_answer(c, 1, "123456", NULL), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_auth_status_get(c, 1, &st), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_auth_known_email(c, 1, "a@b.example", 0, &emails), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_auth_start(NULL, 1, 1, &req), PARLEY_E_INVAL);
	parley_client_free(c);
}

/* The known-email rule (wire__auth_email_norm, the server's too) and a list from the server. */
static void test_known_emails(void)
{
	static const char *const bad[] = {"", "a@", "@b", "ab", "a@b@c", "nobody", "a b@c.example", "a@c.example ",
					  "a\t@c.example", "\x7f@c.example", "caf\xc3\xa9@c.example", "a@@c"};
	char out[WIRE_AUTH_EMAIL_MAX + 1], big[WIRE_AUTH_EMAIL_MAX + 2];
	char *list[PARLEY_AUTH_EMAILS_MAX + 1];
	static parley_auth_emails e;

	TEST_EQ_INT(wire__auth_email_norm("Carol.O'Neil+x@Example.COM", out, sizeof(out)), PARLEY_OK);
	TEST_EQ_STR(out, "carol.o'neil+x@example.com");
	TEST_EQ_INT(wire__auth_email_norm("a@b", out, sizeof(out)), PARLEY_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TEST_EQ_INT(wire__auth_email_norm(bad[i], out, sizeof(out)), PARLEY_E_EMAIL_INVALID);
		TEST_EQ_STR(out, "");
	}
	/* 254 bytes fit, 255 do not */
	snprintf(big, sizeof(big), "a@%s", str_of(WIRE_AUTH_EMAIL_MAX - 2, 'd'));
	TEST_EQ_INT(wire__auth_email_norm(big, out, sizeof(out)), PARLEY_OK);
	TEST_EQ_INT(strlen(out), WIRE_AUTH_EMAIL_MAX);
	snprintf(big, sizeof(big), "a@%s", str_of(WIRE_AUTH_EMAIL_MAX - 1, 'd'));
	TEST_EQ_INT(wire__auth_email_norm(big, out, sizeof(out)), PARLEY_E_EMAIL_INVALID);
	TEST_EQ_INT(wire__auth_email_norm("a@b", out, WIRE_AUTH_EMAIL_MAX), PARLEY_E_INVAL); /* too small */

	for (size_t i = 0; i <= PARLEY_AUTH_EMAILS_MAX; i++)
		list[i] = (char *)"bob@example.com";
	TEST_EQ_INT(client__auth_emails_from_wire(list, PARLEY_AUTH_EMAILS_MAX, e.emails, &e.n), PARLEY_OK);
	TEST_EQ_INT(e.n, PARLEY_AUTH_EMAILS_MAX);
	TEST_EQ_INT(client__auth_emails_from_wire(list, PARLEY_AUTH_EMAILS_MAX + 1, e.emails, &e.n),
		    PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(e.n, 0);
	list[1] = (char *)"Bob@example.com"; /* never stored so: the server's fault */
	TEST_EQ_INT(client__auth_emails_from_wire(list, 2, e.emails, &e.n), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_STR(e.emails[0], "");
	list[1] = (char *)"bob@exam ple.com";
	TEST_EQ_INT(client__auth_emails_from_wire(list, 2, e.emails, &e.n), PARLEY_E_PROTO_MALFORMED);
	list[1] = NULL;
	TEST_EQ_INT(client__auth_emails_from_wire(list, 2, e.emails, &e.n), PARLEY_E_PROTO_MALFORMED);
}

static void test_names(void)
{
	TEST_EQ_STR(parley_auth_type_name(PARLEY_AUTH_OIDC), "oidc");
	TEST_EQ_STR(parley_auth_type_name(PARLEY_AUTH_OAUTH2), "oauth2");
	TEST_EQ_STR(parley_auth_type_name(PARLEY_AUTH_OTP), "otp");
	TEST_EQ_STR(parley_auth_type_name(PARLEY_AUTH_JWT), "jwt");
	TEST_EQ_STR(parley_auth_type_name(0), "unknown");
	TEST_EQ_STR(parley_auth_type_name(5), "unknown");
	TEST_EQ_STR(parley_auth_type_name(-1), "unknown");
	TEST_EQ_STR(parley_component_state_name(PARLEY_COMPONENT_DRAFT), "draft");
	TEST_EQ_STR(parley_component_state_name(PARLEY_COMPONENT_ACTIVE), "active");
	TEST_EQ_STR(parley_component_state_name(PARLEY_COMPONENT_INACTIVE), "inactive");
	TEST_EQ_STR(parley_component_state_name(0), "unknown");
	TEST_EQ_STR(parley_component_state_name(4), "unknown");
	TEST_EQ_STR(parley_auth_binding_name(PARLEY_BINDING_NONE), "none");
	TEST_EQ_STR(parley_auth_binding_name(PARLEY_BINDING_SUB), "sub");
	TEST_EQ_STR(parley_auth_binding_name(PARLEY_BINDING_PHONE), "phone_number");
	TEST_EQ_STR(parley_auth_binding_name(PARLEY_BINDING_EMAIL), "email");
	TEST_EQ_STR(parley_auth_binding_name(4), "unknown");
	TEST_EQ_STR(parley_auth_binding_name(-1), "unknown");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(root, sizeof(root), "/tmp/parley-auth-test-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	TEST_RUN(test_component_from_wire);
	TEST_RUN(test_request_from_wire);
	TEST_RUN(test_status_from_wire);
	TEST_RUN(test_component_to_wire);
	TEST_RUN(test_pushes);
	TEST_RUN(test_entry_checks);
	TEST_RUN(test_known_emails);
	TEST_RUN(test_names);
	test_remove_tree(root);
	TEST_EXIT();
}
