/* t34: customer authentication on the wire (docs/protocol.md §14.2), against a real parleyd driven with
 * raw sockets (staff lists and thread events signed here, as t30/t35 do).
 *
 *   components  admins only (an agent: NOT_ENTITY_ADMIN; a customer: NOT_ENTITY_MEMBER); every
 *               validation refusal (COMPONENT_INVALID): name, plain http to a remote host, a secret that
 *               is not a reference, oidc without a client, otp with a binding, ttl 0, a duplicate name,
 *               auth_components_max; draft -> active -> inactive, no edit while active, never back to
 *               draft; the list: admins all with secret_ref, agents the active ones without it.
 *   start       only a staff member of the thread (the customer: NOT_ENTITY_MEMBER; staff outside the
 *               thread: NOT_THREAD_MEMBER); an inactive component (COMPONENT_NOT_ACTIVE), an unknown one
 *               (NO_SUCH_COMPONENT); the AuthPrompt to the customer with the start link (no code on a
 *               native thread); auth_max_open_per_thread (TOO_MANY_AUTH_REQUESTS).
 *   otp         on an sms thread the gateway's prompt carries the code; a wrong code (OTP_WRONG), an
 *               answer by staff (NOT_THREAD_MEMBER), the right code: AUTHENTICATED in the answer, in the
 *               staff's AuthResult, in ThreadGet and AuthStatus; the same answer again
 *               (AUTH_ALREADY_ANSWERED).
 *   attempts    auth_otp_attempts wrong codes: OTP_ATTEMPTS, the request FAILED (AuthResult to staff),
 *               and the right code after it is refused.
 *   closed      an answer after the thread closed: THREAD_CLOSED; AuthStart on a closed thread too.
 *   oidc        a sign-in at tests/idp's provider through the start link and the callback: success, a
 *               replayed code, an unknown state, another person (sub), a code with another request's
 *               state, the phone binding, unknown links.
 *   email       the email binding against the known emails (AuthKnownEmail): none recorded, recorded
 *               by staff (any case), another person, another channel user, another entity's record;
 *               who may record (the customer, the gateway, staff outside the thread: refused); the
 *               address's rule (EMAIL_INVALID); auth_known_emails_max (TOO_MANY_KNOWN_EMAILS); removal.
 *   jwt         a business-signed assertion (jwtbiz.mjs): tampered, another audience, accepted, replayed.
 *   attacks     the provider's token answer made wrong in one way (idp.mjs /__test/tamper, re-signed with
 *               its own key): another nonce (ID_TOKEN_NONCE), aud, azp, iss, a past exp (ID_TOKEN_CLAIMS),
 *               a flipped signature byte (ID_TOKEN_SIGNATURE): on the page, in AuthResult and AuthStatus,
 *               the request FAILED, the level unchanged, the spent code refused; no JWKS refetch; a
 *               callback after the thread closed (THREAD_CLOSED).
 *   rotation    the provider rotates: its JWKS fetched exactly once more, then the new kid from the
 *               cache; two tokens of a kid in no JWKS: ID_TOKEN_SIGNATURE, no fetch (auth_jwks_refetch_s).
 *   oauth2      userinfo instead of an ID token: sub linked, another person (IDENTITY_MISMATCH), an
 *               access token the provider refuses (AUTH_TOKEN_EXCHANGE), the phone binding on an sms
 *               thread of the verified number.
 *   oidc expiry a sign-in whose request expired meanwhile (restart, auth_request_ttl_s 2): 410
 *               AUTH_EXPIRED at the callback and the start link, the request EXPIRED.
 *   expiry      a credential of credential_ttl_s 2 falls back to the sms baseline (AuthResult without a
 *               request); after a restart with auth_request_ttl_s 2 an answer to an old request is
 *               AUTH_EXPIRED and the sweep tells the staff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include <parley/error.h>

#include "harness.h"
#include "staffmodel.h"
#include "threadwire.h"
#include "wire/stafflist.h"
#include "wire/threadev.h"

#define SMS 2
#define WABA 3
#define NUM1 "+15551234567"
#define NUM2 "+15557654321"
#define NUM3 "+15550001111"

static srv S;
static tacct P, G, H, W, C; /* primary admin, default agent, plain agent, gateway, customer */
static model acme;
static uint64_t T;          /* C's native thread */
static uint64_t OIDC, OTP;  /* active components */

/* --- the identity provider (tests/idp: oidc-provider over HTTPS with a test CA) --- */

static char idp_tmp[64];    /* its CA, config, secret file, port file */
static char ISS[64];        /* https://127.0.0.1:PORT */
static pid_t idp_pid, biz_pid;
static int biz_port;  /* jwtbiz.mjs: the business's JWKS over HTTPS */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	IT_CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* runs cmd, its first stdout line into out; its exit status */
static int run_line(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	int st;
	out[0] = '\0';
	if (f == NULL)
		return -1;
	if (fgets(out, (int)cap, f) != NULL)
		out[strcspn(out, "\r\n")] = '\0';
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void idp_start(void)
{
	char cmd[1024], path[160], line[64];
	const char *dir = getenv("IDP_DIR"), *node = getenv("NODE");

	IT_CHECK(dir != NULL && node != NULL);
	snprintf(idp_tmp, sizeof(idp_tmp), "/tmp/parley-t34-XXXXXX");
	IT_CHECK(mkdtemp(idp_tmp) != NULL);
	snprintf(cmd, sizeof(cmd), "%s/make-ca.sh %s/ca >/dev/null 2>&1", dir, idp_tmp);
	IT_EQ(run_line(cmd, line, sizeof(line)), 0);
	/* the operator's secrets directory: one folder per entity (auth_secrets_dir) */
	snprintf(path, sizeof(path), "%s/secrets", idp_tmp);
	IT_CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/secrets/acme", idp_tmp);
	IT_CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/secrets/acme/rs-secret", idp_tmp);
	write_file(path, "secret-rs\n");
	snprintf(path, sizeof(path), "%s/config.json", idp_tmp);
	write_file(path,
		   "{ \"clients\": [ { \"client_id\": \"parley-rs\", \"client_secret\": \"secret-rs\","
		   " \"redirect_uris\": [\"https://chat.example.com/v1/auth/callback\"],"
		   " \"id_token_signed_response_alg\": \"RS256\", \"token_endpoint_auth_method\": \"client_secret_basic\" } ],"
		   " \"users\": ["
		   " { \"id\": \"alice\", \"password\": \"alice-pw\", \"claims\": { \"email\": \"alice@example.test\","
		   " \"email_verified\": true, \"phone_number\": \"" NUM1 "\", \"phone_number_verified\": true } },"
		   " { \"id\": \"bob\", \"password\": \"bob-pw\", \"claims\": { \"phone_number\": \"" NUM2 "\","
		   " \"phone_number_verified\": true } } ],"
		   " \"id_token_ttl_s\": 300, \"access_token_ttl_s\": 300 }");
	idp_pid = fork();
	if (idp_pid == 0) {
		char script[256], port[160], cert[160], key[160], conf[160];
		snprintf(script, sizeof(script), "%s/idp.mjs", dir);
		snprintf(port, sizeof(port), "%s/port", idp_tmp);
		snprintf(cert, sizeof(cert), "%s/ca/server.pem", idp_tmp);
		snprintf(key, sizeof(key), "%s/ca/server.key", idp_tmp);
		snprintf(conf, sizeof(conf), "%s/config.json", idp_tmp);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(126);
		execl(node, node, script, "--port", "0", "--port-file", port, "--cert", cert, "--key", key, "--config",
		      conf, "--test-control", (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/port", idp_tmp);
	for (int i = 0; i < 200 && access(path, R_OK) != 0; i++)
		usleep(50000);
	FILE *f = fopen(path, "r");
	int port = 0;
	IT_CHECK(f != NULL && fscanf(f, "%d", &port) == 1);
	if (f != NULL)
		fclose(f);
	snprintf(ISS, sizeof(ISS), "https://127.0.0.1:%d", port);
	biz_pid = fork();
	if (biz_pid == 0) {
		char script[256];
		snprintf(script, sizeof(script), "%s/jwtbiz.mjs", getenv("T34_DIR"));
		execl(node, node, script, "serve", idp_tmp, (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/bizport", idp_tmp);
	for (int i = 0; i < 200 && access(path, R_OK) != 0; i++)
		usleep(50000);
	f = fopen(path, "r");
	IT_CHECK(f != NULL && fscanf(f, "%d", &biz_port) == 1);
	if (f != NULL)
		fclose(f);
}

static void idp_stop(void)
{
	char cmd[128];
	pid_t pids[] = {idp_pid, biz_pid};
	for (size_t i = 0; i < 2; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", idp_tmp);
	IT_EQ(system(cmd), 0);
}

static void setup(void)
{
	char ca[128], secrets[128];
	const char *extra[] = {"--auth_max_open_per_thread=2", "--auth_otp_attempts=3", "--auth_components_max=4",
			       "--auth_public_url=https://chat.example.com/", ca, secrets,
			       "--auth_allow_private_hosts=1", NULL}; /* the test provider is on 127.0.0.1 */

	idp_start();
	snprintf(ca, sizeof(ca), "--auth_ca_file=%s/ca/ca.pem", idp_tmp);
	snprintf(secrets, sizeof(secrets), "--auth_secrets_dir=%s/secrets", idp_tmp);
	char code[32];
	uint64_t req = 0;
	dynbuf l;
	tev ev;
	tinfo t;

	srv_start(&S, extra);
	sm_next_id = 0;
	sm_mk_many(S.port, 1, "pat gus hal wendy cleo", (tacct *[]){&P, &G, &H, &W, &C});
	ent_create(&P, &acme, "acme", 0);
	ent_add(&P, &acme, &G, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT);
	ent_add(&P, &acme, &H, WIRE_ROLE_AGENT, 0);
	/* the gateway, as t35 enrols it */
	IT_EQ(sm_code_role(P.fd, "acme", 0, WIRE_ROLE_GATEWAY, code, sizeof(code)), PARLEY_OK);
	IT_EQ(sm_join(W.fd, "acme", code, NULL, &req, NULL), PARLEY_OK);
	sm_model_set(&acme, &W, WIRE_ROLE_GATEWAY, 0, 0);
	sm_sign(&acme, acme.version + 1, NULL, &l);
	IT_EQ(sm_decide(P.fd, "acme", req, 1, &l, NULL, 0, NULL), PARLEY_OK);
	acme.version++;
	dynbuf__free(&l);
	ev = ev_by(&C, &acme, 0, WIRE_THREADEV_OPEN, C.id, 1, NULL);
	IT_EQ(th_open(C.fd, "acme", NULL, &ev, &t), PARLEY_OK);
	T = t.id;
}

/* --- the calls --- */

typedef struct comp {
	uint64_t id;
	const char *name;
	int type;
	const char *issuer, *disco, *authz, *token, *jwks, *client, *secret;
	int binding;
	uint32_t ttl;
} comp;

static comp oidc_comp(const char *name)
{
	comp c = {0, name, PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC, "https://idp.example.com", "",
		  "https://idp.example.com/auth", "https://idp.example.com/token", "https://idp.example.com/jwks",
		  "parley-acme", "file:acme-secret", 0, 600};
	return c;
}

static comp otp_comp(const char *name, uint32_t ttl)
{
	comp c = {0, name, PARLEY__WIRE__AUTH_TYPE__AUTH_OTP, "", "", "", "", "", "", "", 0, ttl};
	return c;
}

/* c_put with an oauth2 component's userinfo endpoint and the scopes ("": the default) */
static int c_put_ex(int fd, comp *c, const char *userinfo, const char *scopes, int *state)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthComponentPutRequest m = PARLEY__WIRE__AUTH_COMPONENT_PUT_REQUEST__INIT;
	Parley__Wire__AuthComponent w = PARLEY__WIRE__AUTH_COMPONENT__INIT;
	wire_frame f;
	int st;

	w.component_id = c->id;
	w.entity = (char *)"acme";
	w.name = (char *)c->name;
	w.type = (Parley__Wire__AuthType)c->type;
	w.issuer = (char *)c->issuer;
	w.discovery_url = (char *)c->disco;
	w.authorization_endpoint = (char *)c->authz;
	w.token_endpoint = (char *)c->token;
	w.jwks_uri = (char *)c->jwks;
	w.userinfo_endpoint = (char *)userinfo;
	w.scopes = (char *)scopes;
	w.client_id = (char *)c->client;
	w.secret_ref = (char *)c->secret;
	w.binding = (Parley__Wire__AuthBinding)c->binding;
	w.credential_ttl_s = c->ttl;
	/* an oidc component asks for the claims the bindings compare (tests/idp puts them in the ID token) */
	if (c->type == PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC)
		w.scopes = (char *)"openid email phone";
	m.component = &w;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT;
	r.auth_component_put = &m;
	st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK) {
		const Parley__Wire__AuthComponent *o = f.frame->response->auth_component_put->component;
		c->id = o->component_id;
		if (state != NULL)
			*state = (int)o->state;
		IT_CHECK(strcmp(o->name, c->name) == 0 && strcmp(o->entity, "acme") == 0);
	}
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

static int c_put(int fd, comp *c, int *state)
{
	return c_put_ex(fd, c, "", "", state);
}

static int c_state(int fd, uint64_t id, int state)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthComponentStateRequest m = PARLEY__WIRE__AUTH_COMPONENT_STATE_REQUEST__INIT;
	wire_frame f;
	int st;

	m.entity = (char *)"acme";
	m.component_id = id;
	m.state = (Parley__Wire__AuthComponentState)state;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE;
	r.auth_component_state = &m;
	st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK)
		IT_EQ((int)f.frame->response->auth_component_state->component->state, state);
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

/* *n components, *secrets of them with a secret_ref, *inactive of them not active */
static int c_list(int fd, size_t *n, size_t *secrets, size_t *inactive)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthComponentListRequest m = PARLEY__WIRE__AUTH_COMPONENT_LIST_REQUEST__INIT;
	wire_frame f;
	int st;

	m.entity = (char *)"acme";
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_LIST;
	r.auth_component_list = &m;
	st = sm_call(fd, &r, &f);
	*n = *secrets = *inactive = 0;
	if (st == PARLEY_OK) {
		const Parley__Wire__AuthComponentListResponse *l = f.frame->response->auth_component_list;
		*n = l->n_components;
		for (size_t i = 0; i < l->n_components; i++) {
			*secrets += l->components[i]->secret_ref[0] != '\0';
			*inactive += l->components[i]->state != PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE;
		}
	}
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

static int a_start(int fd, uint64_t tid, uint64_t cid, uint64_t *rid, char *url, size_t cap)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthStartRequest m = PARLEY__WIRE__AUTH_START_REQUEST__INIT;
	wire_frame f;
	int st;

	m.thread_id = tid;
	m.component_id = cid;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_START;
	r.auth_start = &m;
	st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK) {
		const Parley__Wire__AuthRequestInfo *in = f.frame->response->auth_start->request;
		if (rid != NULL)
			*rid = in->request_id;
		if (url != NULL)
			snprintf(url, cap, "%s", in->url);
		IT_EQ(in->thread_id, tid);
		IT_EQ((int)in->status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_OPEN);
	}
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

/* AuthAnswer with a one-time code (otp) or a business-signed JWT (jwt); the other NULL */
static int answer_call(int fd, uint64_t rid, const char *otp, const char *jwt, unsigned *level)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthAnswerRequest m = PARLEY__WIRE__AUTH_ANSWER_REQUEST__INIT;
	wire_frame f;
	int st;

	m.request_id = rid;
	if (otp != NULL)
		m.otp = (char *)otp;
	if (jwt != NULL)
		m.jwt = (char *)jwt;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER;
	r.auth_answer = &m;
	st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && level != NULL)
		*level = f.frame->response->auth_answer->verification;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

static int a_answer(int fd, uint64_t rid, const char *otp, unsigned *level)
{
	return answer_call(fd, rid, otp, NULL, level);
}

typedef struct status {
	unsigned level;
	char by[65];
	size_t n_reqs, n_claims, n_known;
	int first_status;
	uint32_t first_error;
	char claim[300]; /* the first claim's value */
} status;

static int a_status(int fd, uint64_t tid, status *o)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthStatusRequest m = PARLEY__WIRE__AUTH_STATUS_REQUEST__INIT;
	wire_frame f;
	int st;

	memset(o, 0, sizeof(*o));
	m.thread_id = tid;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_STATUS;
	r.auth_status = &m;
	st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK) {
		const Parley__Wire__AuthStatusResponse *s = f.frame->response->auth_status;
		o->level = s->verification;
		snprintf(o->by, sizeof(o->by), "%s", s->verified_by);
		o->n_reqs = s->n_requests;
		o->n_claims = s->n_claims;
		o->n_known = s->n_known_emails;
		if (s->n_claims > 0)
			snprintf(o->claim, sizeof(o->claim), "%s", s->claims[0]->value);
		if (s->n_requests > 0) {
			o->first_status = (int)s->requests[0]->status;
			o->first_error = s->requests[0]->error;
		}
	}
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

/* The next push of `body` on fd within timeout_ms (others dropped): 1 and *keep, or 0. */
static int next_push(int fd, int body, wire_frame *keep, int timeout_ms)
{
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, timeout_ms) != 0)
			return 0;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH && (int)f.frame->push->body_case == body) {
			*keep = f;
			return 1;
		}
		wire__frame_free(&f);
	}
}

/* the prompt's request id, code and url */
static int prompt(int fd, uint64_t *rid, char otp[16], char *url, size_t cap)
{
	wire_frame f;
	if (!next_push(fd, PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT, &f, 3000))
		return 0;
	const Parley__Wire__AuthPrompt *p = f.frame->push->auth_prompt;
	*rid = p->request->request_id;
	snprintf(otp, 16, "%s", p->otp);
	if (url != NULL)
		snprintf(url, cap, "%s", p->request->url);
	IT_CHECK(strcmp(p->entity, "acme") == 0);
	wire__frame_free(&f);
	return 1;
}

typedef struct result {
	uint64_t thread_id, request_id;
	unsigned level;
	int status;
	uint32_t error;
} result;

static int auth_result(int fd, result *o, int timeout_ms)
{
	wire_frame f;
	memset(o, 0, sizeof(*o));
	if (!next_push(fd, PARLEY__WIRE__PUSH__BODY_AUTH_RESULT, &f, timeout_ms))
		return 0;
	const Parley__Wire__AuthResult *a = f.frame->push->auth_result;
	o->thread_id = a->thread_id;
	o->level = a->verification;
	if (a->request != NULL) {
		o->request_id = a->request->request_id;
		o->status = (int)a->request->status;
		o->error = a->request->error;
	}
	wire__frame_free(&f);
	return 1;
}

/* The staff's next AuthResult (within timeout_ms) ends request rid with status want and error, the thread
 * at level. */
static void result_is(uint64_t rid, int want, int error, unsigned level, int timeout_ms)
{
	result res;
	IT_CHECK(auth_result(G.fd, &res, timeout_ms));
	IT_EQ(res.request_id, rid);
	IT_EQ(res.status, want);
	IT_EQ(res.error, (uint32_t)error);
	IT_EQ(res.level, level);
}

/* A channel thread of the gateway for (channel, number): its id. */
static uint64_t channel_thread(uint32_t channel, const char *number)
{
	tev ev = ev_open_channel(&W, &acme, channel, number);
	tinfo t;
	IT_EQ(th_open_channel(W.fd, "acme", NULL, channel, number, &ev, &t), PARLEY_OK);
	return t.id;
}

/* a code that differs from `code` in its last digit */
static void other_code(char out[16], const char *code)
{
	snprintf(out, 16, "%s", code);
	out[5] = out[5] == '9' ? '0' : (char)(out[5] + 1);
}

/* --- the tests --- */

static void test_components(void)
{
	comp c = oidc_comp("Acme sign-in"), bad;
	size_t n, secrets, inactive;
	int state = 0;

	IT_EQ(c_put(G.fd, &c, NULL), PARLEY_E_NOT_ENTITY_ADMIN);
	IT_EQ(c_put(C.fd, &c, NULL), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(c_put(W.fd, &c, NULL), PARLEY_E_NOT_ENTITY_MEMBER); /* a gateway is never staff */
	IT_EQ(c_put(P.fd, &c, &state), PARLEY_OK);
	IT_EQ(state, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_DRAFT);
	IT_CHECK(c.id != 0);
	OIDC = c.id;
	/* each malformed field on its own */
	bad = oidc_comp("");
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	bad = oidc_comp("plain http");
	bad.token = "http://idp.example.com/token";
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	bad = oidc_comp("userinfo host");
	bad.authz = "https://idp.example.com@evil.example/auth";
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	bad = oidc_comp("inline secret");
	bad.secret = "s3cr3t";
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	/* a reference names a secret of the entity's own folder in auth_secrets_dir, nothing else of the
	 * server's: no path, no parent, no dot file, no environment variable */
	static const char *const refs[] = {"file:secret.txt", "file:/etc/passwd", "file:../other/secret",
					   "file:-x", "file:", "env:HOME", "env:ACME_SECRET"};
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		bad = oidc_comp("bad secret ref");
		bad.secret = refs[i];
		IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	}
	bad = oidc_comp("no client");
	bad.client = "";
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	bad = oidc_comp("no ttl");
	bad.ttl = 0;
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	bad = otp_comp("otp bound", 60);
	bad.binding = PARLEY__WIRE__AUTH_BINDING__BINDING_SUB;
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	bad = oidc_comp("Acme sign-in"); /* a second component of the same name */
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_E_COMPONENT_INVALID);
	/* plain http to this machine is fine (a provider on the same host) */
	bad = oidc_comp("loopback");
	bad.token = "http://127.0.0.1:9000/token";
	IT_EQ(c_put(P.fd, &bad, NULL), PARLEY_OK);
	/* states: draft -> active; no edit while active; inactive; edit; never back to draft */
	IT_EQ(c_state(G.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_E_NOT_ENTITY_ADMIN);
	IT_EQ(c_state(P.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_E_COMPONENT_INVALID);
	IT_EQ(c_state(P.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_COMPONENT_INVALID);
	IT_EQ(c_state(P.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	c.client = "parley-acme-2";
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_DRAFT), PARLEY_E_COMPONENT_INVALID);
	IT_EQ(c_state(P.fd, 9999, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_E_NO_SUCH_COMPONENT);
	/* the otp component, active; then auth_components_max (4): the fourth fits, the fifth not */
	c = otp_comp("Code by SMS", 600);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_OK);
	OTP = c.id;
	IT_EQ(c_state(P.fd, OTP, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	c = otp_comp("Short code", 2);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, c.id, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	c = otp_comp("One too many", 60);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_COMPONENT_INVALID);
	/* lists: the admin all 4 with their secret references; an agent the 2 active, no secret */
	IT_EQ(c_list(P.fd, &n, &secrets, &inactive), PARLEY_OK);
	IT_EQ(n, 4);
	IT_EQ(secrets, 2);
	IT_EQ(inactive, 2);
	IT_EQ(c_list(G.fd, &n, &secrets, &inactive), PARLEY_OK);
	IT_EQ(n, 2);
	IT_EQ(secrets, 0);
	IT_EQ(inactive, 0);
	IT_EQ(c_list(C.fd, &n, &secrets, &inactive), PARLEY_E_NOT_ENTITY_MEMBER);
}

static void test_start(void)
{
	char url[600], purl[600], otp[16];
	uint64_t rid = 0, prid = 0;

	IT_EQ(a_start(C.fd, T, OTP, NULL, NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER); /* the customer */
	IT_EQ(a_start(H.fd, T, OTP, NULL, NULL, 0), PARLEY_E_NOT_THREAD_MEMBER); /* staff, not in it */
	IT_EQ(a_start(G.fd, T, OIDC, NULL, NULL, 0), PARLEY_E_COMPONENT_NOT_ACTIVE);
	IT_EQ(a_start(G.fd, T, 9999, NULL, NULL, 0), PARLEY_E_NO_SUCH_COMPONENT);
	IT_EQ(a_start(G.fd, 424242, OTP, NULL, NULL, 0), PARLEY_E_NO_SUCH_THREAD);
	IT_EQ(c_state(P.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	IT_EQ(a_start(G.fd, T, OIDC, &rid, url, sizeof(url)), PARLEY_OK);
	/* the link: auth_public_url (its trailing '/' dropped) + /v1/auth/start/ + 43 characters */
	IT_CHECK(strncmp(url, "https://chat.example.com/v1/auth/start/", 39) == 0);
	IT_EQ(strlen(url), 39 + 43);
	IT_CHECK(prompt(C.fd, &prid, otp, purl, sizeof(purl)));
	IT_EQ(prid, rid);
	IT_CHECK(strcmp(purl, url) == 0);
	IT_CHECK(otp[0] == '\0'); /* a sign-in carries no code */
	/* auth_max_open_per_thread (2) */
	IT_EQ(a_start(P.fd, T, OTP, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(C.fd, &prid, otp, NULL, 0));
	IT_CHECK(otp[0] == '\0'); /* a native thread: the code goes out of band, never in the push */
	IT_EQ(a_start(G.fd, T, OTP, NULL, NULL, 0), PARLEY_E_TOO_MANY_AUTH_REQUESTS);
	/* a sign-in is answered at the callback, not with a code */
	IT_EQ(a_answer(C.fd, rid - 1, "123456", NULL), PARLEY_E_INVAL);
}

static void test_otp(void)
{
	uint64_t ts = channel_thread(SMS, NUM1), rid = 0, prid = 0;
	char otp[16], wrong[16];
	unsigned level = 0;
	status st;
	result res;
	tinfo t;

	IT_EQ(a_start(G.fd, ts, OTP, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	IT_EQ(prid, rid);
	IT_EQ(strlen(otp), 6); /* the gateway sends it to the number */
	other_code(wrong, otp);
	IT_EQ(a_answer(W.fd, rid, wrong, NULL), PARLEY_E_OTP_WRONG);
	IT_EQ(a_answer(G.fd, rid, otp, NULL), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(a_answer(W.fd, rid, otp, &level), PARLEY_OK);
	IT_EQ(level, 2);
	IT_CHECK(auth_result(G.fd, &res, 3000));
	IT_EQ(res.thread_id, ts);
	IT_EQ(res.request_id, rid);
	IT_EQ(res.level, 2);
	IT_EQ(res.status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_DONE);
	IT_EQ(th_get(G.fd, ts, &t, NULL), PARLEY_OK);
	IT_EQ(t.verification, 2);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.level, 2);
	IT_CHECK(strcmp(st.by, "Code by SMS") == 0);
	IT_EQ(st.n_reqs, 1);
	IT_EQ(st.first_status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_DONE);
	IT_EQ(a_status(H.fd, ts, &st), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(a_answer(W.fd, rid, otp, NULL), PARLEY_E_AUTH_ALREADY_ANSWERED);
}

static void test_attempts(void)
{
	uint64_t ts = channel_thread(SMS, NUM2), rid = 0, prid = 0;
	char otp[16], wrong[16];

	IT_EQ(a_start(G.fd, ts, OTP, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	other_code(wrong, otp);
	/* auth_otp_attempts (3): two wrong codes leave it open, the third closes it */
	IT_EQ(a_answer(W.fd, rid, wrong, NULL), PARLEY_E_OTP_WRONG);
	IT_EQ(a_answer(W.fd, rid, "12345", NULL), PARLEY_E_OTP_WRONG); /* not 6 digits: wrong, counted */
	IT_EQ(a_answer(W.fd, rid, wrong, NULL), PARLEY_E_OTP_ATTEMPTS);
	/* sms: still the carrier's baseline */
	result_is(rid, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_FAILED, PARLEY_E_OTP_ATTEMPTS, 1, 3000);
	IT_EQ(a_answer(W.fd, rid, otp, NULL), PARLEY_E_AUTH_ALREADY_ANSWERED);
}

static void test_closed(void)
{
	uint64_t ts = channel_thread(WABA, NUM1), rid = 0, prid = 0;
	char otp[16];
	tev ev;
	result res;

	IT_EQ(a_start(G.fd, ts, OTP, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	/* the customer (the gateway) closes its thread, then answers */
	ev = ev_by(&W, &acme, ts, WIRE_THREADEV_CLOSE, 0, 2, NULL);
	IT_EQ(th_event(W.fd, ts, &ev), PARLEY_OK);
	IT_EQ(a_answer(W.fd, rid, otp, NULL), PARLEY_E_THREAD_CLOSED);
	IT_CHECK(auth_result(G.fd, &res, 3000));
	IT_EQ(res.error, PARLEY_E_THREAD_CLOSED);
	IT_EQ(a_start(G.fd, ts, OTP, NULL, NULL, 0), PARLEY_E_THREAD_CLOSED);
}

static void test_credential_expiry(void)
{
	uint64_t ts = channel_thread(SMS, NUM3), rid = 0, prid = 0, short_id = OTP + 1;
	char otp[16];
	unsigned level = 0;
	result res;
	status st;

	IT_EQ(a_start(G.fd, ts, short_id, &rid, NULL, 0), PARLEY_OK); /* "Short code": credential_ttl_s 2 */
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	IT_EQ(a_answer(W.fd, rid, otp, &level), PARLEY_OK);
	IT_EQ(level, 2);
	IT_CHECK(auth_result(G.fd, &res, 3000));
	IT_EQ(res.level, 2);
	/* within ~2 s + the 1 s sweep: back to the sms baseline, told to the staff without a request */
	IT_CHECK(auth_result(G.fd, &res, 5000));
	IT_EQ(res.thread_id, ts);
	IT_EQ(res.level, 1);
	IT_EQ(res.request_id, 0);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.level, 1);
}

/* parleyd stopped and started again on its data with `flag` added (NULL: none); everyone reconnected */
static void restart_with(const char *flag)
{
	tacct *all[] = {&P, &G, &H, &W, &C};
	IT_EQ(srv_stop(&S), 0);
	if (flag != NULL && S.nextra < 16)
		snprintf(S.extra[S.nextra++], sizeof(S.extra[0]), "%s", flag);
	srv_restart(&S);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		close(all[i]->fd);
		all[i]->fd = it_connect_as(S.port, all[i]->handle, 1, all[i]->sk);
		IT_CHECK(all[i]->fd >= 0);
	}
}

/* A restart with auth_request_ttl_s 2: an answer after that is AUTH_EXPIRED; an unanswered request is
 * expired by the sweep and the staff are told. */
static void test_request_expiry(void)
{
	uint64_t ts, rid = 0, rid2 = 0, prid = 0;
	char otp[16];
	result res;
	status st;

	restart_with("--auth_request_ttl_s=2");
	ts = channel_thread(SMS, "+15559990000");
	IT_EQ(a_start(G.fd, ts, OTP, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	IT_EQ(a_start(G.fd, ts, OTP, &rid2, NULL, 0), PARLEY_OK);
	sleep(3);
	IT_EQ(a_answer(W.fd, rid, otp, NULL), PARLEY_E_AUTH_EXPIRED);
	/* the other one: the sweep ended it (or ends it now) */
	IT_CHECK(auth_result(G.fd, &res, 3000));
	IT_EQ(res.status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_EXPIRED);
	IT_EQ(res.error, PARLEY_E_AUTH_EXPIRED);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.n_reqs, 2);
	IT_EQ(st.first_status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_EXPIRED);
	/* expired requests no longer count toward auth_max_open_per_thread */
	IT_EQ(a_start(G.fd, ts, OTP, NULL, NULL, 0), PARLEY_OK);
}

/* --- sign-in at the provider --- */

/* The customer's way: the start link (on this server: the public URL is the reverse proxy's) answers
 * 302 to the provider, login.mjs signs in there and prints the callback URL without requesting it.
 * query: the callback's query ("code=..&state=..&iss=.."). Returns login.mjs's exit status. */
static int sign_in(const char *url, const char *login, const char *password, char *query, size_t cap)
{
	char path[160], resp[8192], cmd[4096], line[3072];
	const char *loc, *end, *q;
	size_t n;
	int st;

	snprintf(path, sizeof(path), "%s", url + strlen("https://chat.example.com"));
	IT_EQ(http_get(S.port, path, resp, sizeof(resp)), 302);
	IT_CHECK(strstr(resp, "Cache-Control: no-store") != NULL);
	loc = strstr(resp, "Location: ");
	IT_CHECK(loc != NULL);
	if (loc == NULL)
		return -1;
	loc += 10;
	end = strstr(loc, "\r\n");
	n = end != NULL ? (size_t)(end - loc) : strlen(loc);
	IT_CHECK(strncmp(loc, ISS, strlen(ISS)) == 0);
	/* everything the provider needs: the code flow with PKCE S256, state and nonce */
	IT_CHECK(memmem(loc, n, "code_challenge_method=S256", 26) != NULL && memmem(loc, n, "&nonce=", 7) != NULL);
	st = snprintf(cmd, sizeof(cmd), "%s %s/login.mjs --ca %s/ca/ca.pem '%.*s' %s %s 2>/dev/null", getenv("NODE"),
		      getenv("IDP_DIR"), idp_tmp, (int)n, loc, login, password);
	IT_CHECK(st > 0 && (size_t)st < sizeof(cmd));
	st = run_line(cmd, line, sizeof(line));
	q = strchr(line, '?');
	snprintf(query, cap, "%s", q != NULL ? q + 1 : "");
	return st;
}

/* GET /v1/auth/callback?query: the HTTP status; page: the body's refusal name or "Signed in" */
static int callback(const char *query, char *page, size_t cap)
{
	char path[4096], resp[8192];
	int st;
	snprintf(path, sizeof(path), "/v1/auth/callback?%s", query);
	st = http_get(S.port, path, resp, sizeof(resp));
	snprintf(page, cap, "%s", strstr(resp, "\r\n\r\n") != NULL ? strstr(resp, "\r\n\r\n") + 4 : "");
	return st;
}

static uint64_t OIDC_SUB, OIDC_PHONE;

/* component `id` (not active) edited into an oidc component of the idp, activated */
static void oidc_component(uint64_t id, const char *name, int binding)
{
	char disco[128], secret[160];
	comp c = {id, name, PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC, ISS, disco, "", "", "", "parley-rs", secret, binding, 600};
	snprintf(disco, sizeof(disco), "%s/.well-known/openid-configuration", ISS);
	snprintf(secret, sizeof(secret), "file:rs-secret");
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, c.id, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
}

/* the start link of a new request on thread ts (its prompt to the gateway W) */
static uint64_t start_link(uint64_t ts, uint64_t cid, char *url, size_t cap)
{
	char purl[600], otp[16];
	uint64_t rid = 0, prid = 0;
	IT_EQ(a_start(G.fd, ts, cid, &rid, url, cap), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, purl, sizeof(purl)));
	IT_CHECK(strcmp(purl, url) == 0);
	return rid;
}

static void test_oidc(void)
{
	uint64_t ts = channel_thread(SMS, "+15552223333"), rid;
	char url[600], url2[600], query[3072], query2[3072], forged[3200], page[1024], *amp;
	result res;
	status st;

	/* the entity has auth_components_max (4) already: the first (deactivated) and the loopback draft
	 * become components of the test provider */
	OIDC_SUB = OIDC;
	OIDC_PHONE = OIDC + 1;
	IT_EQ(c_state(P.fd, OIDC, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	oidc_component(OIDC_SUB, "Acme ID", PARLEY__WIRE__AUTH_BINDING__BINDING_SUB);
	oidc_component(OIDC_PHONE, "Acme ID phone", PARLEY__WIRE__AUTH_BINDING__BINDING_PHONE);
	/* alice signs in: AUTHENTICATED, told to the staff, the page says so */
	rid = start_link(ts, OIDC_SUB, url, sizeof(url));
	IT_EQ(sign_in(url, "alice", "alice-pw", query, sizeof(query)), 0);
	IT_EQ(callback(query, page, sizeof(page)), 200);
	IT_CHECK(strstr(page, "Signed in") != NULL);
	IT_CHECK(auth_result(G.fd, &res, 5000));
	IT_EQ(res.request_id, rid);
	IT_EQ(res.level, 2);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_CHECK(strcmp(st.by, "Acme ID") == 0);
	IT_EQ(st.n_claims, 1); /* the bound sub */
	/* the same callback again (a replayed code): refused before any exchange */
	IT_EQ(callback(query, page, sizeof(page)), 409);
	IT_CHECK(strstr(page, "AUTH_ALREADY_ANSWERED") != NULL);
	/* a state that names no request */
	IT_EQ(callback("code=abc&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", page, sizeof(page)), 400);
	IT_CHECK(strstr(page, "AUTH_STATE_MISMATCH") != NULL);
	IT_EQ(callback("code=abc", page, sizeof(page)), 400);
	/* another person (bob) on the same customer: the linked sub is alice's */
	rid = start_link(ts, OIDC_SUB, url, sizeof(url));
	IT_EQ(sign_in(url, "bob", "bob-pw", query, sizeof(query)), 0);
	IT_EQ(callback(query, page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "IDENTITY_MISMATCH") != NULL);
	IT_CHECK(auth_result(G.fd, &res, 5000));
	IT_EQ(res.request_id, rid);
	IT_EQ(res.error, PARLEY_E_IDENTITY_MISMATCH);
	/* a code obtained for one request, presented with another request's state: the code is bound to
	 * the first request's PKCE challenge (and nonce), so the provider refuses the exchange */
	start_link(ts, OIDC_SUB, url, sizeof(url));
	rid = start_link(ts, OIDC_SUB, url2, sizeof(url2));
	IT_EQ(sign_in(url, "alice", "alice-pw", query, sizeof(query)), 0);
	IT_EQ(sign_in(url2, "alice", "alice-pw", query2, sizeof(query2)), 0);
	amp = strstr(query, "state=");
	IT_CHECK(amp != NULL);
	snprintf(forged, sizeof(forged), "code=%.*s&%s", (int)strcspn(strstr(query, "code=") + 5, "&"),
		 strstr(query, "code=") + 5, strstr(query2, "state="));
	IT_EQ(callback(forged, page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "AUTH_TOKEN_EXCHANGE") != NULL);
	IT_CHECK(auth_result(G.fd, &res, 5000));
	IT_EQ(res.request_id, rid);
	/* phone binding: alice's verified number is NUM1's thread, not this one */
	rid = start_link(ts, OIDC_PHONE, url, sizeof(url));
	IT_EQ(sign_in(url, "alice", "alice-pw", query, sizeof(query)), 0);
	IT_EQ(callback(query, page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "IDENTITY_MISMATCH") != NULL);
	/* unknown start links: 404 */
	IT_EQ(http_get(S.port, "/v1/auth/start/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", page, sizeof(page)), 404);
	IT_EQ(http_get(S.port, "/v1/auth/start/x", page, sizeof(page)), 404);
}

/* AuthKnownEmail: the status; list gets the answer's emails, comma-separated */
static int known_email(int fd, uint64_t tid, const char *email, int remove, char *list, size_t cap)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthKnownEmailRequest m = PARLEY__WIRE__AUTH_KNOWN_EMAIL_REQUEST__INIT;
	wire_frame f;
	int st;

	m.thread_id = tid;
	m.email = (char *)email;
	m.remove = remove;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_KNOWN_EMAIL;
	r.auth_known_email = &m;
	st = sm_call(fd, &r, &f);
	if (list != NULL)
		list[0] = '\0';
	if (st == PARLEY_OK && list != NULL) {
		const Parley__Wire__AuthKnownEmailResponse *k = f.frame->response->auth_known_email;
		for (size_t i = 0, len = 0; i < k->n_emails && len < cap; i++, len = strlen(list))
			snprintf(list + len, cap - len, "%s%s", i > 0 ? "," : "", k->emails[i]);
	}
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

/* who signs in (at tests/idp) to a new request of component cid on thread tid sent by G: the
 * callback's HTTP status, its page's refusal in page; the staff's AuthResult about it consumed */
static int sign_in_on(uint64_t tid, uint64_t cid, const char *who, char *page, size_t cap)
{
	char url[600], query[3072], pw[32];
	uint64_t rid = 0;
	result res;
	int st;

	snprintf(pw, sizeof(pw), "%s-pw", who);
	IT_EQ(a_start(G.fd, tid, cid, &rid, url, sizeof(url)), PARLEY_OK);
	IT_EQ(sign_in(url, who, pw, query, sizeof(query)), 0);
	st = callback(query, page, cap);
	IT_CHECK(auth_result(G.fd, &res, 5000));
	IT_EQ(res.request_id, rid);
	return st;
}

/* The email binding: a verified email equal to one the thread's entity recorded for the customer
 * (AuthKnownEmail), the customer being the account of a native thread and (gateway, channel, channel
 * user) for a channel thread. */
static void test_email(void)
{
	uint64_t ts = channel_thread(SMS, NUM3), ts2 = channel_thread(SMS, "+15556667777"), cid = OIDC_PHONE;
	char page[1024], list[1024], addr[64];
	static tacct D;
	static model beta;
	uint64_t td, tb;
	status st;
	tev ev;
	tinfo t;

	/* the phone component becomes an email one (restored at the end) */
	IT_EQ(c_state(P.fd, cid, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	oidc_component(cid, "Acme ID email", PARLEY__WIRE__AUTH_BINDING__BINDING_EMAIL);
	/* no known email: alice's verified email proves nothing */
	IT_EQ(known_email(G.fd, ts, "", 0, list, sizeof(list)), PARLEY_OK);
	IT_CHECK(strcmp(list, "") == 0);
	IT_EQ(sign_in_on(ts, cid, "alice", page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "IDENTITY_MISMATCH") != NULL);
	/* the customer, its gateway, staff outside the thread, strangers: AuthStart's refusals */
	IT_EQ(known_email(W.fd, ts, "alice@example.test", 0, NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(known_email(C.fd, T, "alice@example.test", 0, NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(known_email(C.fd, ts, "", 0, NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(known_email(H.fd, ts, "alice@example.test", 0, NULL, 0), PARLEY_E_NOT_THREAD_MEMBER);
	IT_EQ(known_email(G.fd, 424242, "", 0, NULL, 0), PARLEY_E_NO_SUCH_THREAD);
	/* the address's rule */
	IT_EQ(known_email(G.fd, ts, "alice example.test", 0, NULL, 0), PARLEY_E_EMAIL_INVALID);
	IT_EQ(known_email(G.fd, ts, "alice@@example.test", 0, NULL, 0), PARLEY_E_EMAIL_INVALID);
	IT_EQ(known_email(G.fd, ts, "", 1, NULL, 0), PARLEY_E_EMAIL_INVALID);
	/* the staff member records it (in any case): alice is AUTHENTICATED, with her email as the claim */
	IT_EQ(known_email(G.fd, ts, "Alice@Example.TEST", 0, list, sizeof(list)), PARLEY_OK);
	IT_CHECK(strcmp(list, "alice@example.test") == 0);
	IT_EQ(sign_in_on(ts, cid, "alice", page, sizeof(page)), 200);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.level, 2);
	IT_CHECK(strcmp(st.claim, "alice@example.test") == 0);
	IT_EQ(st.n_known, 1);
	IT_EQ(a_status(W.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.n_known, 0); /* the staff's record, not shown to the customer */
	/* another person (bob: no email) on the same customer */
	IT_EQ(sign_in_on(ts, cid, "bob", page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "IDENTITY_MISMATCH") != NULL);
	/* another channel user of the same gateway is another customer */
	IT_EQ(sign_in_on(ts2, cid, "alice", page, sizeof(page)), 403);
	/* another entity's record does not count: dora's thread with beta has alice's email (its admin,
	 * outside the thread, records it), her thread with acme has none */
	sm_mk(S.port, &D, "dora", 1);
	ent_create(&P, &beta, "beta", 0);
	ev = ev_by(&D, &beta, 0, WIRE_THREADEV_OPEN, D.id, 1, NULL);
	IT_EQ(th_open(D.fd, "beta", NULL, &ev, &t), PARLEY_OK);
	tb = t.id;
	ev = ev_by(&D, &acme, 0, WIRE_THREADEV_OPEN, D.id, 1, NULL);
	IT_EQ(th_open(D.fd, "acme", NULL, &ev, &t), PARLEY_OK);
	td = t.id;
	IT_EQ(known_email(P.fd, tb, "alice@example.test", 0, list, sizeof(list)), PARLEY_OK);
	IT_EQ(known_email(D.fd, tb, "alice@example.test", 0, NULL, 0), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(known_email(G.fd, td, "", 0, list, sizeof(list)), PARLEY_OK);
	IT_CHECK(strcmp(list, "") == 0);
	IT_EQ(sign_in_on(td, cid, "alice", page, sizeof(page)), 403);
	IT_EQ(known_email(G.fd, td, "alice@example.test", 0, NULL, 0), PARLEY_OK);
	IT_EQ(sign_in_on(td, cid, "alice", page, sizeof(page)), 200);
	/* auth_known_emails_max (8) per customer: adding a known one again changes nothing, a removal
	 * makes room */
	for (int i = 1; i < 8; i++) {
		snprintf(addr, sizeof(addr), "e%d@example.test", i);
		IT_EQ(known_email(G.fd, ts, addr, 0, NULL, 0), PARLEY_OK);
	}
	IT_EQ(known_email(G.fd, ts, "e8@example.test", 0, NULL, 0), PARLEY_E_TOO_MANY_KNOWN_EMAILS);
	IT_EQ(known_email(P.fd, ts, "E1@example.test", 0, list, sizeof(list)), PARLEY_OK);
	IT_CHECK(strncmp(list, "alice@example.test,e1@example.test,", 35) == 0);
	IT_EQ(known_email(G.fd, ts, "e1@example.test", 1, NULL, 0), PARLEY_OK);
	IT_EQ(known_email(G.fd, ts, "e8@example.test", 0, NULL, 0), PARLEY_OK);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.n_known, 8);
	/* a removed email no longer binds */
	IT_EQ(known_email(G.fd, ts, "alice@example.test", 1, list, sizeof(list)), PARLEY_OK);
	IT_CHECK(strstr(list, "alice") == NULL);
	IT_EQ(sign_in_on(ts, cid, "alice", page, sizeof(page)), 403);
	IT_EQ(c_state(P.fd, cid, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	oidc_component(cid, "Acme ID phone", PARLEY__WIRE__AUTH_BINDING__BINDING_PHONE);
}

/* a JWT of the business (jwtbiz.mjs) for aud, with jti; tamper: a claim changed after signing */
static void biz_jwt(char *out, size_t cap, const char *aud, const char *jti, int tamper)
{
	char cmd[1024];
	long now = (long)(it_now_ms() / 1000);
	snprintf(cmd, sizeof(cmd),
		 "%s %s/jwtbiz.mjs sign %s '{\"iss\":\"https://biz.example\",\"aud\":\"%s\",\"sub\":\"cust-1\","
		 "\"iat\":%ld,\"exp\":%ld,\"jti\":\"%s\"}' %s",
		 getenv("NODE"), getenv("T34_DIR"), idp_tmp, aud, now, now + 300, jti, tamper ? "tamper" : "");
	IT_EQ(run_line(cmd, out, cap), 0);
}

static int jwt_answer(int fd, uint64_t rid, const char *jwt, unsigned *level)
{
	return answer_call(fd, rid, NULL, jwt, level);
}

static void test_jwt(void)
{
	uint64_t ts = channel_thread(1, "sess-jwt"), cid = OTP + 1, rid = 0, prid = 0;
	char jwks[96], tok[4096], otp[16], url[600];
	comp c = {cid, "Acme app", PARLEY__WIRE__AUTH_TYPE__AUTH_JWT, "https://biz.example", "", "", "", jwks,
		  "parley-acme", "", PARLEY__WIRE__AUTH_BINDING__BINDING_SUB, 600};
	unsigned level = 0;
	result res;

	/* the short-lived otp component (used up by the expiry test) becomes the business's jwt one */
	snprintf(jwks, sizeof(jwks), "https://127.0.0.1:%d/jwks", biz_port);
	IT_EQ(c_state(P.fd, cid, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, cid, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	/* a tampered assertion: the signature no longer covers the payload; the request fails */
	IT_EQ(a_start(G.fd, ts, cid, &rid, url, sizeof(url)), PARLEY_OK);
	IT_CHECK(url[0] == '\0'); /* nothing to open: the business's app gives the token */
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	biz_jwt(tok, sizeof(tok), "parley-acme", "j0", 1);
	IT_EQ(jwt_answer(G.fd, rid, tok, NULL), PARLEY_E_NOT_THREAD_MEMBER); /* staff do not answer */
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_ID_TOKEN_SIGNATURE);
	IT_CHECK(auth_result(G.fd, &res, 3000));
	IT_EQ(res.error, PARLEY_E_ID_TOKEN_SIGNATURE);
	/* another audience */
	IT_EQ(a_start(G.fd, ts, cid, &rid, NULL, 0), PARLEY_OK);
	biz_jwt(tok, sizeof(tok), "someone-else", "j1", 0);
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_ID_TOKEN_CLAIMS);
	/* the right one: AUTHENTICATED */
	IT_EQ(a_start(G.fd, ts, cid, &rid, NULL, 0), PARLEY_OK);
	biz_jwt(tok, sizeof(tok), "parley-acme", "j2", 0);
	IT_EQ(jwt_answer(W.fd, rid, tok, &level), PARLEY_OK);
	IT_EQ(level, 2);
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_AUTH_ALREADY_ANSWERED);
	/* the same assertion for a new request: replayed */
	IT_EQ(a_start(G.fd, ts, cid, &rid, NULL, 0), PARLEY_OK);
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_JWT_REPLAYED);
}

/* --- hardening (P6): provider addresses, replay state across restarts, stopping mid sign-in --- */

/* Without auth_allow_private_hosts: a component naming a loopback or link-local address is refused
 * when saved, and components saved while it was allowed (the test provider's, the business's JWKS on
 * 127.0.0.1) are refused at the connect: AUTH_HOST_FORBIDDEN, in the answer and on the sign-in page. */
static void test_host_forbidden(void)
{
	char jwks[96], tok[4096], otp[16], url[600], page[1024], path[700];
	uint64_t ts = channel_thread(1, "sess-host"), cid = OTP + 1, rid = 0, prid = 0;
	comp c = {0, "Metadata", PARLEY__WIRE__AUTH_TYPE__AUTH_JWT, "https://biz.example", "", "", "", jwks,
		  "parley-acme", "", PARLEY__WIRE__AUTH_BINDING__BINDING_SUB, 600};
	result res;

	restart_with("--auth_allow_private_hosts=0");
	restart_with("--auth_request_ttl_s=600"); /* test_request_expiry's 2 s would race the restarts */
	snprintf(jwks, sizeof(jwks), "https://169.254.169.254/latest/meta-data");
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_AUTH_HOST_FORBIDDEN);
	snprintf(jwks, sizeof(jwks), "https://127.0.0.1:%d/jwks", biz_port);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_AUTH_HOST_FORBIDDEN);
	snprintf(jwks, sizeof(jwks), "https://[::ffff:127.0.0.1]:%d/jwks", biz_port);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_AUTH_HOST_FORBIDDEN);
	snprintf(jwks, sizeof(jwks), "https://0x7f000001:%d/jwks", biz_port);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_AUTH_HOST_FORBIDDEN);
	/* a name passes this check (only the connect can tell): here auth_components_max refuses it */
	snprintf(jwks, sizeof(jwks), "https://keys.biz.example/jwks");
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_E_COMPONENT_INVALID);
	/* the business's assertion: its JWKS is on 127.0.0.1, so the check fails at the connect */
	IT_EQ(a_start(G.fd, ts, cid, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	biz_jwt(tok, sizeof(tok), "parley-acme", "jh", 0);
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_AUTH_HOST_FORBIDDEN);
	IT_CHECK(auth_result(G.fd, &res, 3000));
	IT_EQ(res.error, PARLEY_E_AUTH_HOST_FORBIDDEN);
	/* the test provider's discovery document: the start link's page says why */
	start_link(ts, OIDC_SUB, url, sizeof(url));
	snprintf(path, sizeof(path), "%s", url + strlen("https://chat.example.com"));
	IT_EQ(http_get(S.port, path, page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "AUTH_HOST_FORBIDDEN") != NULL);
}

/* the 32 bytes of key anywhere in the file at path: 1 */
static int file_has(const char *path, const uint8_t *key, size_t n)
{
	FILE *f = fopen(path, "rb");
	static uint8_t buf[8u << 20];
	size_t len;
	if (f == NULL)
		return 0;
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return len >= n && memmem(buf, len, key, n) != NULL;
}

/* Replay state survives a restart: an assertion's jti (the store's row), and the one-time codes (the
 * key file of the data directory, 0600, whose bytes are in no database file). The operator's
 * auth_allowed_hosts lets the business's JWKS on 127.0.0.1 be called again. */
static void test_replay_restart(void)
{
	uint64_t tj = channel_thread(1, "sess-replay"), ts = channel_thread(SMS, "+15554443333"), cid = OTP + 1;
	uint64_t rid = 0, orid = 0, prid = 0;
	char tok[4096], otp[16], path[400];
	const char *dbs[] = {"parley.db", "parley.db-wal"};
	uint8_t key[32];
	unsigned level = 0;
	struct stat st;
	FILE *f;

	restart_with("--auth_allowed_hosts=127.0.0.1");
	IT_EQ(a_start(G.fd, tj, cid, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	biz_jwt(tok, sizeof(tok), "parley-acme", "jr", 0);
	IT_EQ(jwt_answer(W.fd, rid, tok, &level), PARLEY_OK);
	IT_EQ(level, 2);
	/* a code sent before the restart */
	IT_EQ(a_start(G.fd, ts, OTP, &orid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	IT_EQ(prid, orid);
	restart_with(NULL);
	IT_EQ(a_start(G.fd, tj, cid, &rid, NULL, 0), PARLEY_OK);
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_JWT_REPLAYED);
	IT_EQ(a_answer(W.fd, orid, otp, &level), PARLEY_OK);
	IT_EQ(level, 2);
	/* the key: a file of the operator's, never in the database */
	snprintf(path, sizeof(path), "%s/data/auth_otp.key", S.dir);
	IT_CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 && st.st_size == 32);
	f = fopen(path, "rb");
	IT_CHECK(f != NULL && fread(key, 1, sizeof(key), f) == sizeof(key));
	if (f != NULL)
		fclose(f);
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/data/%s", S.dir, dbs[i]);
		IT_CHECK(!file_has(path, key, sizeof(key)));
	}
}

/* auth_jti_cache bounds the live jti rows of an entity: acme has two (j2 of test_jwt, jr of
 * test_replay_restart, both exp now + 300 s). At 2 a new assertion is SERVER_BUSY and its request stays
 * open (nothing recorded); a replay is still told as one; at 3 the same answer is accepted. */
static void test_jti_bound(void)
{
	uint64_t tj = channel_thread(1, "sess-bound"), cid = OTP + 1, rid = 0, prid = 0;
	char tok[4096], old[4096], otp[16];
	unsigned level = 0;
	status st;

	restart_with("--auth_jti_cache=2");
	IT_EQ(a_start(G.fd, tj, cid, &rid, NULL, 0), PARLEY_OK);
	IT_CHECK(prompt(W.fd, &prid, otp, NULL, 0));
	biz_jwt(tok, sizeof(tok), "parley-acme", "jb", 0);
	IT_EQ(jwt_answer(W.fd, rid, tok, NULL), PARLEY_E_SERVER_BUSY);
	IT_EQ(a_status(G.fd, tj, &st), PARLEY_OK);
	IT_EQ(st.first_status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_OPEN);
	IT_EQ(st.level, 0);
	biz_jwt(old, sizeof(old), "parley-acme", "jr", 0); /* jr again (a new token, the same jti) */
	IT_EQ(jwt_answer(W.fd, rid, old, NULL), PARLEY_E_JWT_REPLAYED);
	IT_EQ(a_start(G.fd, tj, cid, &rid, NULL, 0), PARLEY_OK);
	restart_with("--auth_jti_cache=3");
	IT_EQ(jwt_answer(W.fd, rid, tok, &level), PARLEY_OK);
	IT_EQ(level, 2);
}

/* SIGTERM while a sign-in's provider call hangs (a TCP server that accepts and never answers, with
 * auth_http_timeout_ms a minute): parleyd exits within a few seconds with status 0, the customer's
 * browser gets a 503 page naming SHUTTING_DOWN, and the request is still open after the restart. */
static void test_shutdown_inflight(void)
{
	uint64_t ts = channel_thread(SMS, "+15556668888"), rid;
	char disco[128], secret[32] = "file:rs-secret", url[600], req[900], resp[4096];
	comp c = {OIDC_PHONE, "Hanging", PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC, ISS, disco, "", "", "", "parley-rs", secret,
		  PARLEY__WIRE__AUTH_BINDING__BINDING_PHONE, 600};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int hang = socket(AF_INET, SOCK_STREAM, 0), fd, st = -1, exited = 0;
	uint64_t t0;
	pid_t pid;
	status sta;
	tacct *all[] = {&P, &G, &H, &W, &C};

	/* the kernel completes the handshake from the backlog; nobody ever reads */
	IT_CHECK(hang >= 0 && bind(hang, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(hang, 8) == 0);
	IT_CHECK(getsockname(hang, (struct sockaddr *)&a, &alen) == 0);
	restart_with("--auth_http_timeout_ms=60000");
	snprintf(disco, sizeof(disco), "https://127.0.0.1:%d/.well-known/openid-configuration", ntohs(a.sin_port));
	IT_EQ(c_state(P.fd, OIDC_PHONE, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	IT_EQ(c_put(P.fd, &c, NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, OIDC_PHONE, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	rid = start_link(ts, OIDC_PHONE, url, sizeof(url));
	fd = tcp_connect(S.port);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: chat.example.com\r\n\r\n",
		 url + strlen("https://chat.example.com"));
	IT_CHECK(fd >= 0 && send_all(fd, req, strlen(req)) == 0);
	/* the members' WebSockets go first: the drain would wait drain_timeout_ms for their close
	 * handshakes, which these raw clients never answer */
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		close(all[i]->fd);
		all[i]->fd = -1;
	}
	usleep(500000); /* the discovery call is under way (and hangs) */
	t0 = it_now_ms();
	pid = S.pid;
	IT_EQ(srv_signal(&S, SIGTERM), 0);
	memset(resp, 0, sizeof(resp));
	IT_CHECK(recv_exact(fd, resp, sizeof(resp) - 1, 5000) > 0);
	IT_CHECK(strncmp(resp, "HTTP/1.1 503", 12) == 0);
	IT_CHECK(strstr(resp, "SHUTTING_DOWN") != NULL);
	close(fd);
	while (it_now_ms() < t0 + 10000 && (exited = waitpid(pid, &st, WNOHANG) == pid) == 0)
		usleep(10000);
	printf("# stopped %llu ms after SIGTERM\n", (unsigned long long)(it_now_ms() - t0));
	IT_CHECK(exited && it_now_ms() - t0 < 4000); /* not the minute of auth_http_timeout_ms */
	IT_CHECK(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (exited)
		S.pid = 0;
	else
		srv_kill9(&S); /* the data directory's lock goes with it: the restart below can run */
	close(hang);
	restart_with(NULL);
	IT_EQ(a_status(G.fd, ts, &sta), PARLEY_OK);
	IT_EQ(sta.first_status, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_OPEN);
	IT_EQ(sta.n_reqs, 1);
	(void)rid;
}

/* --- attacks through the real provider (tests/idp's /__test/tamper), JWKS rotation, oauth2 --- */

/* curl on the provider's test control (METHOD, path with its query): the answer's first line */
static void idp_control(const char *method, const char *path, char *out, size_t cap)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "curl -sS --max-time 10 --cacert %s/ca/ca.pem -X %s '%s%s'", idp_tmp, method, ISS,
		 path);
	IT_EQ(run_line(cmd, out, cap), 0);
}

/* the provider's next token answer is wrong in the one way `what` (idp.mjs's header) */
static void tamper(const char *what)
{
	char path[64], out[256];
	snprintf(path, sizeof(path), "/__test/tamper?what=%s", what);
	idp_control("POST", path, out, sizeof(out));
	IT_CHECK(strstr(out, "\"armed\"") != NULL && strstr(out, what) != NULL);
}

/* how many times the provider's JWKS was fetched since it started (by anyone: parleyd only, here) */
static long jwks_fetches(void)
{
	char out[256];
	const char *n;
	idp_control("GET", "/__test/count?path=/jwks", out, sizeof(out));
	n = strstr(out, "\"count\":");
	IT_CHECK(n != NULL);
	return n != NULL ? strtol(n + 8, NULL, 10) : -1;
}

/* A sign-in of login/password through a new request of component cid on thread ts; the callback's
 * HTTP status must be `http` and its page name `expect` (an error name, or "Signed in"); the staff's
 * AuthResult must be for that request, with `error` (0: DONE, else FAILED) and the thread's `level`;
 * AuthStatus must say the same. The callback's query into query (for a replay). */
static void sign_in_expect(uint64_t ts, uint64_t cid, const char *login, const char *password, int http,
			   int error, unsigned level, char *query, size_t cap)
{
	char url[600], page[1024];
	uint64_t rid = start_link(ts, cid, url, sizeof(url));
	const char *expect = error == 0 ? "Signed in" : parley_errname(error);
	int want = error == 0 ? PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_DONE
			      : PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_FAILED;
	result res;
	status st;

	IT_EQ(sign_in(url, login, password, query, cap), 0);
	IT_EQ(callback(query, page, sizeof(page)), http);
	IT_CHECK(strstr(page, expect) != NULL);
	if (strstr(page, expect) == NULL)
		fprintf(stderr, "# expected %s, the page says: %s\n", expect, page);
	IT_CHECK(auth_result(G.fd, &res, 5000));
	IT_EQ(res.thread_id, ts);
	IT_EQ(res.request_id, rid);
	IT_EQ(res.status, want);
	IT_EQ(res.error, (uint32_t)error);
	IT_EQ(res.level, level);
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_EQ(st.level, level);
	IT_EQ(st.first_status, want); /* the newest request first: this one */
	IT_EQ(st.first_error, (uint32_t)error);
}

/* The provider (or whoever swapped the token in transit) answers the code exchange with an ID token
 * that is wrong in exactly one way, validly signed by the provider's own key unless the signature is
 * the point: each is refused with its own error, where the customer sees it (the callback page) and
 * where the staff do (AuthResult, AuthStatus); the request ends FAILED, the thread's level is
 * unchanged, and the spent code cannot be presented again. Then a sign-in answered after its thread
 * closed: THREAD_CLOSED. */
static void test_oidc_attacks(void)
{
	static const struct {
		const char *what;
		int error;
	} attacks[] = {
		{"nonce", PARLEY_E_ID_TOKEN_NONCE},  {"aud", PARLEY_E_ID_TOKEN_CLAIMS}, {"azp", PARLEY_E_ID_TOKEN_CLAIMS},
		{"iss", PARLEY_E_ID_TOKEN_CLAIMS},   {"exp", PARLEY_E_ID_TOKEN_CLAIMS},
		{"sig", PARLEY_E_ID_TOKEN_SIGNATURE},
	};
	uint64_t ts = channel_thread(SMS, "+15552224444"), rid;
	char query[3072], page[1024], url[600];
	long fetched = jwks_fetches();
	tev ev;

	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		fprintf(stderr, "# tamper %s\n", attacks[i].what);
		tamper(attacks[i].what);
		sign_in_expect(ts, OIDC_SUB, "alice", "alice-pw", 403, attacks[i].error, 1, query, sizeof(query));
		/* the code was spent at the provider and the request is FAILED: a replay is refused before
		 * any exchange */
		IT_EQ(callback(query, page, sizeof(page)), 409);
		IT_CHECK(strstr(page, "AUTH_ALREADY_ANSWERED") != NULL);
	}
	/* every one of them named a kid the cached JWKS has: none fetched it again */
	IT_EQ(jwks_fetches(), fetched);
	/* the same sign-in untampered: accepted (so each refusal above was the tampering's) */
	sign_in_expect(ts, OIDC_SUB, "alice", "alice-pw", 200, 0, 2, query, sizeof(query));
	/* an answer after the thread closed: signed in at the provider, then the customer closes */
	ts = channel_thread(SMS, "+15552227777");
	rid = start_link(ts, OIDC_SUB, url, sizeof(url));
	IT_EQ(sign_in(url, "alice", "alice-pw", query, sizeof(query)), 0);
	ev = ev_by(&W, &acme, ts, WIRE_THREADEV_CLOSE, 0, 2, NULL);
	IT_EQ(th_event(W.fd, ts, &ev), PARLEY_OK);
	IT_EQ(callback(query, page, sizeof(page)), 403);
	IT_CHECK(strstr(page, "THREAD_CLOSED") != NULL);
	result_is(rid, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_FAILED, PARLEY_E_THREAD_CLOSED, 1, 5000);
}

/* Keys cached by kid and refreshed on rotation: the provider's new key is fetched once, at its first
 * token, then used from the cache; a kid in no JWKS (the `kid` tamper) is ID_TOKEN_SIGNATURE and,
 * within auth_jwks_refetch_s (default 30 s) of the last refetch, fetches nothing: tokens naming
 * made-up kids cannot make parleyd hammer the provider. (test_oidc_attacks forces no refetch, so the
 * rotation's is the first.) */
static void test_jwks_rotation(void)
{
	uint64_t ts = channel_thread(SMS, "+15552225555");
	char out[256], query[3072];
	long fetched = jwks_fetches();

	idp_control("POST", "/__test/rotate", out, sizeof(out));
	IT_CHECK(strstr(out, "\"kids\"") != NULL);
	sign_in_expect(ts, OIDC_SUB, "alice", "alice-pw", 200, 0, 2, query, sizeof(query));
	IT_EQ(jwks_fetches(), fetched + 1);
	sign_in_expect(ts, OIDC_SUB, "alice", "alice-pw", 200, 0, 2, query, sizeof(query));
	IT_EQ(jwks_fetches(), fetched + 1); /* the new kid from the cache */
	for (int i = 0; i < 2; i++) {
		tamper("kid");
		sign_in_expect(ts, OIDC_SUB, "alice", "alice-pw", 403, PARLEY_E_ID_TOKEN_SIGNATURE, 2, query,
			       sizeof(query));
		IT_EQ(jwks_fetches(), fetched + 1);
	}
}

/* An oauth2 component (no ID token: who signed in is what the provider's userinfo endpoint says for
 * the access token) on the provider's own endpoints, no discovery: the sub binding, another person,
 * a userinfo refusal, then the phone binding on an sms thread of alice's number. */
static void test_oauth2(void)
{
	uint64_t ts = channel_thread(SMS, "+15552226666"), tn;
	char authz[96], token[96], info[96], query[3072];
	comp c = {OIDC_PHONE, "Acme OAuth", PARLEY__WIRE__AUTH_TYPE__AUTH_OAUTH2, "", "", authz, token, "",
		  "parley-rs", "file:rs-secret", PARLEY__WIRE__AUTH_BINDING__BINDING_SUB, 600};
	status st;

	snprintf(authz, sizeof(authz), "%s/auth", ISS);
	snprintf(token, sizeof(token), "%s/token", ISS);
	snprintf(info, sizeof(info), "%s/me", ISS);
	IT_EQ(c_state(P.fd, OIDC_PHONE, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	IT_EQ(c_put_ex(P.fd, &c, info, "openid phone", NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, OIDC_PHONE, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	sign_in_expect(ts, OIDC_PHONE, "alice", "alice-pw", 200, 0, 2, query, sizeof(query));
	IT_EQ(a_status(G.fd, ts, &st), PARLEY_OK);
	IT_CHECK(strcmp(st.by, "Acme OAuth") == 0);
	IT_EQ(st.n_claims, 1); /* the sub userinfo gave */
	/* bob: userinfo's sub is not the one linked */
	sign_in_expect(ts, OIDC_PHONE, "bob", "bob-pw", 403, PARLEY_E_IDENTITY_MISMATCH, 2, query, sizeof(query));
	/* an access token the provider never issued: its userinfo endpoint refuses it (401) */
	tamper("access_token");
	sign_in_expect(ts, OIDC_PHONE, "alice", "alice-pw", 403, PARLEY_E_AUTH_TOKEN_EXCHANGE, 2, query,
		       sizeof(query));
	/* phone_number: alice's verified number is the sender of NUM1's sms thread (test_otp's, open and
	 * authenticated by its code): now authenticated by this component */
	c.binding = PARLEY__WIRE__AUTH_BINDING__BINDING_PHONE;
	IT_EQ(c_state(P.fd, OIDC_PHONE, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE), PARLEY_OK);
	IT_EQ(c_put_ex(P.fd, &c, info, "openid phone", NULL), PARLEY_OK);
	IT_EQ(c_state(P.fd, OIDC_PHONE, PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE), PARLEY_OK);
	tn = channel_thread(SMS, NUM1);
	IT_EQ(a_status(G.fd, tn, &st), PARLEY_OK);
	IT_CHECK(strcmp(st.by, "Code by SMS") == 0);
	sign_in_expect(tn, OIDC_PHONE, "alice", "alice-pw", 200, 0, 2, query, sizeof(query));
	IT_EQ(a_status(G.fd, tn, &st), PARLEY_OK);
	IT_CHECK(strcmp(st.by, "Acme OAuth") == 0);
	/* bob's verified number is another one */
	sign_in_expect(tn, OIDC_PHONE, "bob", "bob-pw", 403, PARLEY_E_IDENTITY_MISMATCH, 2, query, sizeof(query));
}

/* A sign-in completed at the provider after its request expired (a restart with auth_request_ttl_s 2):
 * the callback is 410 AUTH_EXPIRED, the request EXPIRED (by the callback or the sweep, whichever came
 * first: one AuthResult either way), the level unchanged; the start link too is 410. */
static void test_oidc_expired(void)
{
	uint64_t ts, rid;
	char url[600], path[600], query[3072], page[1024];

	restart_with("--auth_request_ttl_s=2");
	ts = channel_thread(SMS, "+15552228888");
	rid = start_link(ts, OIDC_SUB, url, sizeof(url));
	IT_EQ(sign_in(url, "alice", "alice-pw", query, sizeof(query)), 0);
	sleep(3);
	IT_EQ(callback(query, page, sizeof(page)), 410);
	IT_CHECK(strstr(page, "AUTH_EXPIRED") != NULL);
	result_is(rid, PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_EXPIRED, PARLEY_E_AUTH_EXPIRED, 1, 3000);
	snprintf(path, sizeof(path), "%s", url + strlen("https://chat.example.com"));
	IT_EQ(http_get(S.port, path, page, sizeof(page)), 410);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	setup();
	IT_RUN(test_components);
	IT_RUN(test_start);
	IT_RUN(test_otp);
	IT_RUN(test_attempts);
	IT_RUN(test_closed);
	IT_RUN(test_credential_expiry);
	IT_RUN(test_oidc);
	IT_RUN(test_email);
	IT_RUN(test_jwt);
	IT_RUN(test_oidc_attacks);
	IT_RUN(test_jwks_rotation);
	IT_RUN(test_oauth2);
	IT_RUN(test_oidc_expired);
	IT_RUN(test_request_expiry);
	IT_RUN(test_host_forbidden);
	IT_RUN(test_replay_restart);
	IT_RUN(test_jti_bound);
	IT_RUN(test_shutdown_inflight);
	IT_EQ(srv_stop(&S), 0);
	srv_cleanup(&S);
	idp_stop();
	return it_failures ? 1 : 0;
}
