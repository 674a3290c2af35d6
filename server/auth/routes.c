/* Customer authentication on the wire: one route per Auth* request, each a single store op; the
 * AuthPrompt push to the customer after AuthStart, the AuthResult push to the members after every end
 * of a request (answered, refused, expired) and every credential expiry, and loop 0's sweep timer. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <parley/error.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/exchange.h"
#include "auth/jose.h"
#include "base/log.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "wire/wire.h"
#include "wire/wire_auth.h"

#define MODULE "auth"

void auth__config_from(auth_config *c, const parleyd_config *cfg)
{
	if (cfg->auth_public_url[0] != '\0')
		snprintf(c->public_url, sizeof(c->public_url), "%s", cfg->auth_public_url);
	else
		snprintf(c->public_url, sizeof(c->public_url), "http://%s:%d", cfg->bind, cfg->port);
	/* a trailing '/' would double the one of the paths appended */
	for (size_t n = strlen(c->public_url); n > 0 && c->public_url[n - 1] == '/'; n--)
		c->public_url[n - 1] = '\0';
	c->request_ttl_ms = (uint64_t)cfg->auth_request_ttl_s * 1000u;
	c->max_open = (unsigned)cfg->auth_max_open_per_thread;
	c->skew_s = cfg->auth_clock_skew_s;
	c->otp_attempts = (unsigned)cfg->auth_otp_attempts;
	c->http_timeout_ms = cfg->auth_http_timeout_ms;
	snprintf(c->ca_file, sizeof(c->ca_file), "%s", cfg->auth_ca_file);
	snprintf(c->secrets_dir, sizeof(c->secrets_dir), "%s", cfg->auth_secrets_dir);
	c->jwks_cache_ms = (uint64_t)cfg->auth_jwks_cache_s * 1000u;
	c->jwks_refetch_ms = (uint64_t)cfg->auth_jwks_refetch_s * 1000u;
	c->jti_cache = (unsigned)cfg->auth_jti_cache;
	c->components_max = (unsigned)cfg->auth_components_max;
	c->allow_private = cfg->auth_allow_private_hosts;
	snprintf(c->allowed_hosts, sizeof(c->allowed_hosts), "%s", cfg->auth_allowed_hosts);
	snprintf(c->http_proxy, sizeof(c->http_proxy), "%s", cfg->auth_http_proxy);
	c->known_emails_max = (unsigned)cfg->auth_known_emails_max;
}

static int init(const parleyd_config *cfg, void **state)
{
	auth_config *c = parley__calloc(1, sizeof(*c));
	int rc;
	if (c == NULL)
		return PARLEY_E_NOMEM;
	if ((rc = auth__http_init()) != PARLEY_OK) {
		parley__free(c);
		return rc;
	}
	auth__config_from(c, cfg);
	if ((rc = auth__otp_key_load(cfg->data_dir, c->otp_key)) != PARLEY_OK) {
		log_error(MODULE, "%s/auth_otp.key: unusable (%s): it must be a regular file of 32 bytes, mode 0600",
			  cfg->data_dir, parley_errname(rc));
		auth__http_fini();
		parley__free(c);
		return rc;
	}
	*state = c;
	return PARLEY_OK;
}

static void fini(void *state)
{
	if (state != NULL) {
		sodium_memzero(state, sizeof(auth_config));
		auth__http_fini();
	}
	parley__free(state);
}

/* --- pushes --- */

static void post_push(worker *w, uint64_t account, Parley__Wire__Push *p)
{
	dynbuf *out = worker__scratch(w);
	/* must arrive: a prompt is what the customer acts on, a result what the staff decide on (committed
	 * writes make them, so their rate is the store's) */
	if (wire__encode_push(p, out) == PARLEY_OK)
		(void)worker__post(w, &auth__service, MBOX_MUST, account, 0, 0, out->data, out->len,
				   worker__send_frame);
}

/* AuthRequestInfo of a stored request; url is the caller's buffer (AUTH_URL_MAX + path). */
static void info_of(Parley__Wire__AuthRequestInfo *in, const store_auth_request *r, const auth_config *cfg,
		    char *url, size_t cap)
{
	parley__wire__auth_request_info__init(in);
	in->request_id = r->id;
	in->thread_id = r->thread_id;
	in->component_id = r->component_id;
	in->component = (char *)r->component;
	in->type = (Parley__Wire__AuthType)r->type;
	in->expires_ms = r->expires_ms;
	in->status = (Parley__Wire__AuthRequestStatus)r->status;
	in->error = r->error;
	url[0] = '\0';
	if ((r->type == STORE_AUTH_OIDC || r->type == STORE_AUTH_OAUTH2) && r->status == STORE_AREQ_OPEN &&
	    r->token[0] != '\0')
		snprintf(url, cap, "%s/v1/auth/start/%s", cfg->public_url, r->token);
	in->url = url;
}

/* AuthResult to every member of t (req NULL: only the level changed). */
void auth__push_result(worker *w, const auth_config *cfg, const store_thread_info *t, const store_auth_request *req)
{
	Parley__Wire__AuthResult res = PARLEY__WIRE__AUTH_RESULT__INIT;
	Parley__Wire__AuthRequestInfo in;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	char url[AUTH_URL_MAX + 64];

	res.thread_id = t->thread_id;
	if (req != NULL) {
		info_of(&in, req, cfg, url, sizeof(url));
		res.request = &in;
	}
	res.verification = (Parley__Wire__VerificationLevel)t->verification;
	res.verified_until_ms = t->verified_until_ms;
	res.verified_by = (char *)t->verified_by;
	p.body_case = PARLEY__WIRE__PUSH__BODY_AUTH_RESULT;
	p.auth_result = &res;
	for (size_t i = 0; i < t->n_members; i++)
		post_push(w, t->members[i], &p);
}

/* AuthPrompt to the customer's devices (a channel thread: the gateway's, which renders it; an otp on a
 * channel thread carries the code, which the gateway sends out on the channel). */
static void push_prompt(worker *w, const auth_config *cfg, const store_auth_args *a)
{
	Parley__Wire__AuthPrompt pr = PARLEY__WIRE__AUTH_PROMPT__INIT;
	Parley__Wire__AuthRequestInfo in;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	const store_thread_info *t = a->thread;
	char url[AUTH_URL_MAX + 64];

	info_of(&in, &a->x->req, cfg, url, sizeof(url));
	pr.entity = (char *)t->entity;
	pr.entity_name = (char *)t->entity;
	pr.request = &in;
	pr.channel = t->channel;
	pr.channel_user = (char *)t->channel_user;
	pr.otp = (char *)(a->x->req.type == STORE_AUTH_OTP && t->channel != 0 ? a->x->otp : "");
	p.body_case = PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT;
	p.auth_prompt = &pr;
	post_push(w, t->customer, &p);
}

/* --- calls --- */

typedef struct auth_call {
	request *rq;
	int kind; /* PARLEY__WIRE__REQUEST__BODY_AUTH_* */
} auth_call;

static void reply_components(request *rq, int kind, const store_job *j)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AuthComponentPutResponse put = PARLEY__WIRE__AUTH_COMPONENT_PUT_RESPONSE__INIT;
	Parley__Wire__AuthComponentStateResponse st = PARLEY__WIRE__AUTH_COMPONENT_STATE_RESPONSE__INIT;
	Parley__Wire__AuthComponentListResponse list = PARLEY__WIRE__AUTH_COMPONENT_LIST_RESPONSE__INIT;
	const store_auth_args *a = &j->auth;
	const char *entity = kind == PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT && a->n_comps == 1
				     ? a->comps[0].entity
				     : a->entity;
	Parley__Wire__AuthComponent *cs = parley__calloc(a->n_comps + 1, sizeof(*cs));
	Parley__Wire__AuthComponent **pcs = parley__calloc(a->n_comps + 1, sizeof(*pcs));

	if (cs == NULL || pcs == NULL) {
		parley__free(cs);
		parley__free(pcs);
		request__fail(rq, PARLEY_E_NOMEM);
		return;
	}
	for (size_t i = 0; i < a->n_comps; i++) {
		auth__component_to_wire(&cs[i], &a->comps[i], entity);
		pcs[i] = &cs[i];
	}
	r.body_case = (Parley__Wire__Response__BodyCase)kind;
	if (kind == PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT) {
		put.component = &cs[0];
		r.auth_component_put = &put;
	} else if (kind == PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE) {
		st.component = &cs[0];
		r.auth_component_state = &st;
	} else {
		list.components = pcs;
		list.n_components = a->n_comps;
		r.auth_component_list = &list;
	}
	request__reply(rq, &r);
	parley__free(cs);
	parley__free(pcs);
}

/* The job's known emails as the repeated string of a response (pointers into the job, which outlives
 * the reply). */
static void emails_of(const store_auth_args *a, char *out[STORE_AUTH_MAX_EMAILS], size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < a->n_emails && i < STORE_AUTH_MAX_EMAILS; i++)
		out[(*n)++] = (char *)a->emails[i].addr;
}

static void reply_status(request *rq, const auth_config *cfg, const store_job *j)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AuthStatusResponse st = PARLEY__WIRE__AUTH_STATUS_RESPONSE__INIT;
	Parley__Wire__AuthRequestInfo infos[STORE_AUTH_MAX_REQUESTS], *pinfos[STORE_AUTH_MAX_REQUESTS];
	Parley__Wire__AuthClaim claims[STORE_AUTH_MAX_CLAIMS], *pclaims[STORE_AUTH_MAX_CLAIMS];
	char urls[STORE_AUTH_MAX_REQUESTS][AUTH_URL_MAX + 64];
	char *emails[STORE_AUTH_MAX_EMAILS];
	const store_auth_args *a = &j->auth;

	st.verification = (Parley__Wire__VerificationLevel)a->thread->verification;
	st.verified_until_ms = a->thread->verified_until_ms;
	st.verified_by = (char *)a->thread->verified_by;
	for (size_t i = 0; i < a->n_reqs; i++) {
		info_of(&infos[i], &a->reqs[i], cfg, urls[i], sizeof(urls[i]));
		/* the link is the customer's to open: staff see that a request is open, not where it leads */
		if (a->caller_staff)
			infos[i].url = (char *)"";
		pinfos[i] = &infos[i];
	}
	st.requests = pinfos;
	st.n_requests = a->n_reqs;
	for (size_t i = 0; i < a->n_claims; i++) {
		parley__wire__auth_claim__init(&claims[i]);
		claims[i].name = (char *)a->claims[i].name;
		claims[i].value = (char *)a->claims[i].value;
		pclaims[i] = &claims[i];
	}
	st.claims = pclaims;
	st.n_claims = a->n_claims;
	emails_of(a, emails, &st.n_known_emails);
	st.known_emails = emails;
	r.body_case = PARLEY__WIRE__RESPONSE__BODY_AUTH_STATUS;
	r.auth_status = &st;
	request__reply(rq, &r);
}

static void reply_emails(request *rq, const store_auth_args *a)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AuthKnownEmailResponse ke = PARLEY__WIRE__AUTH_KNOWN_EMAIL_RESPONSE__INIT;
	char *emails[STORE_AUTH_MAX_EMAILS];

	emails_of(a, emails, &ke.n_emails);
	ke.emails = emails;
	r.body_case = PARLEY__WIRE__RESPONSE__BODY_AUTH_KNOWN_EMAIL;
	r.auth_known_email = &ke;
	request__reply(rq, &r);
}

static void answer(void *arg, int status, const void *result)
{
	auth_call *c = arg;
	const store_job *j = result;
	request *rq = c->rq;
	worker *w = rq->w; /* the reply frees rq: the pushes after it go through w */
	const auth_config *cfg = rq->svc;
	const store_auth_args *a = j != NULL ? &j->auth : NULL;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AuthStartResponse start = PARLEY__WIRE__AUTH_START_RESPONSE__INIT;
	Parley__Wire__AuthAnswerResponse ans = PARLEY__WIRE__AUTH_ANSWER_RESPONSE__INIT;
	Parley__Wire__AuthRequestInfo in;
	char url[AUTH_URL_MAX + 64];
	int kind = c->kind;

	parley__free(c);
	if (status != PARLEY_OK || a == NULL) {
		request__fail(rq, status != PARLEY_OK ? status : PARLEY_E_STORE);
		return;
	}
	switch (kind) {
	case PARLEY__WIRE__REQUEST__BODY_AUTH_START:
		info_of(&in, &a->x->req, cfg, url, sizeof(url));
		start.request = &in;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_AUTH_START;
		r.auth_start = &start;
		request__reply(rq, &r);
		push_prompt(w, cfg, a);
		return;
	case PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER:
		/* a wrong code leaves the request open: nothing to tell the members yet */
		if (a->outcome != PARLEY_OK) {
			request__fail(rq, a->outcome);
			if (a->outcome != PARLEY_E_OTP_WRONG)
				auth__push_result(w, cfg, a->thread, &a->x->req);
			return;
		}
		ans.verification = (Parley__Wire__VerificationLevel)a->thread->verification;
		ans.verified_until_ms = a->thread->verified_until_ms;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_AUTH_ANSWER;
		r.auth_answer = &ans;
		request__reply(rq, &r);
		auth__push_result(w, cfg, a->thread, &a->x->req);
		return;
	case PARLEY__WIRE__REQUEST__BODY_AUTH_STATUS:
		reply_status(rq, cfg, j);
		return;
	case PARLEY__WIRE__REQUEST__BODY_AUTH_KNOWN_EMAIL:
		reply_emails(rq, a);
		return;
	default:
		reply_components(rq, kind, j);
		return;
	}
}

static store_job *job_for(request *rq, enum store_op op)
{
	store_job *j = store__job_new(op);
	if (j == NULL) {
		request__fail(rq, PARLEY_E_NOMEM);
		return NULL;
	}
	j->caller_account = rq->account;
	j->caller_device = rq->device;
	j->now_ms = parley__wall_ms();
	return j;
}

static void submit(request *rq, store_job *j, int kind, int rc)
{
	auth_call *c = rc == PARLEY_OK ? parley__calloc(1, sizeof(*c)) : NULL;
	if (rc == PARLEY_OK && c == NULL)
		rc = PARLEY_E_NOMEM;
	if (rc == PARLEY_OK) {
		c->rq = rq;
		c->kind = kind;
		rc = store__submit(worker__store(rq->w), j, answer, c);
	}
	if (rc != PARLEY_OK) {
		parley__free(c);
		store__job_free(j);
		request__fail(rq, rc);
	}
}

static void route_put(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__AuthComponent *w = req->auth_component_put->component;
	const auth_config *cfg = rq->svc;
	store_job *j;
	int rc = wire__handle_valid(w->entity) ? auth__component_check(w) : PARLEY_E_NO_SUCH_ENTITY;

	if (rc == PARLEY_OK)
		rc = auth__component_hosts_check(cfg, w);

	if (rc != PARLEY_OK) {
		request__fail(rq, rc);
		return;
	}
	if ((j = job_for(rq, STORE_OP_AUTH_COMPONENT_PUT)) == NULL)
		return;
	j->auth.comps = parley__calloc(1, sizeof(*j->auth.comps));
	rc = j->auth.comps != NULL ? PARLEY_OK : PARLEY_E_NOMEM;
	if (rc == PARLEY_OK) {
		j->auth.n_comps = 1;
		auth__component_from_wire(j->auth.comps, w);
		snprintf(j->auth.entity, sizeof(j->auth.entity), "%s", w->entity);
		j->auth.limit = cfg->components_max;
	}
	submit(rq, j, req->body_case, rc);
}

static void route_state(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__AuthComponentStateRequest *m = req->auth_component_state;
	store_job *j;

	if (!wire__handle_valid(m->entity)) {
		request__fail(rq, PARLEY_E_NO_SUCH_ENTITY);
		return;
	}
	if ((j = job_for(rq, STORE_OP_AUTH_COMPONENT_STATE)) == NULL)
		return;
	snprintf(j->auth.entity, sizeof(j->auth.entity), "%s", m->entity);
	j->auth.component_id = m->component_id;
	j->auth.state = (int)m->state;
	submit(rq, j, req->body_case, PARLEY_OK);
}

static void route_list(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__AuthComponentListRequest *m = req->auth_component_list;
	store_job *j;

	if (!wire__handle_valid(m->entity)) {
		request__fail(rq, PARLEY_E_NO_SUCH_ENTITY);
		return;
	}
	if ((j = job_for(rq, STORE_OP_AUTH_COMPONENT_LIST)) == NULL)
		return;
	snprintf(j->auth.entity, sizeof(j->auth.entity), "%s", m->entity);
	submit(rq, j, req->body_case, PARLEY_OK);
}

static void route_start(request *rq, const Parley__Wire__Request *req)
{
	const auth_config *cfg = rq->svc;
	store_job *j = job_for(rq, STORE_OP_AUTH_START);
	store_auth_args *a;

	if (j == NULL)
		return;
	a = &j->auth;
	a->thread_id = req->auth_start->thread_id;
	a->component_id = req->auth_start->component_id;
	a->limit = cfg->max_open;
	a->ttl_ms = cfg->request_ttl_ms;
	/* every secret of the request is drawn here, off the store thread; the store keeps all but the
	 * code, of which it keeps only the MAC */
	jose__random_token(a->x->token);
	jose__random_token(a->x->state_tok);
	jose__random_token(a->x->nonce);
	jose__random_token(a->x->verifier);
	jose__otp_generate(a->x->otp);
	memcpy(a->x->otp_key, cfg->otp_key, sizeof(a->x->otp_key));
	submit(rq, j, req->body_case, PARLEY_OK);
}

/* --- a business-signed JWT: the request, then the check on the thread pool, then the answer --- */

typedef struct jwt_call {
	uv_work_t wk;
	request *rq;
	char *jwt;
	store_auth_component comp;
	uint64_t request_id, now_ms;
	int rc;
	store_auth_identity ident;
} jwt_call;

static void jwt_free(jwt_call *c)
{
	parley__free(c->jwt);
	sodium_memzero(c, sizeof(*c));
	parley__free(c);
}

static void jwt_work(uv_work_t *wk)
{
	jwt_call *c = wk->data;
	c->rc = auth__assertion(c->rq->svc, &c->comp, c->jwt, c->now_ms, &c->ident);
}

static void jwt_checked(uv_work_t *wk, int status)
{
	jwt_call *c = wk->data;
	request *rq = c->rq;
	store_job *j;

	if (status == 0 && c->rc == PARLEY_E_SHUTTING_DOWN) {
		request__fail(rq, c->rc); /* cut, not refused: the request stays open for the answer again */
		jwt_free(c);
		return;
	}
	j = job_for(rq, STORE_OP_AUTH_ANSWER);
	if (j != NULL) {
		/* refused or not, the request's answer: the store records it (and checks the caller again) */
		j->auth.request_id = c->request_id;
		j->auth.external = 1;
		j->auth.limit = ((const auth_config *)rq->svc)->jti_cache;
		j->auth.outcome_in = status != 0 ? PARLEY_E_INTERNAL : c->rc;
		j->auth.x->ident = c->ident;
		submit(rq, j, PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER, PARLEY_OK);
	}
	jwt_free(c);
}

static void jwt_found(void *arg, int status, const void *result)
{
	jwt_call *c = arg;
	const store_job *j = result;
	const store_auth_args *a = j != NULL ? &j->auth : NULL;
	request *rq = c->rq;
	int rc = status != PARLEY_OK || a == NULL ? (status != PARLEY_OK ? status : PARLEY_E_STORE) : PARLEY_OK;

	/* nothing is fetched for someone else's request, nor for one that has its answer */
	if (rc == PARLEY_OK && (a->thread == NULL || a->thread->customer != rq->account))
		rc = PARLEY_E_NOT_THREAD_MEMBER;
	if (rc == PARLEY_OK && a->x->req.type != STORE_AUTH_JWT)
		rc = PARLEY_E_INVAL;
	if (rc == PARLEY_OK && a->x->req.status == STORE_AREQ_EXPIRED)
		rc = PARLEY_E_AUTH_EXPIRED;
	else if (rc == PARLEY_OK && a->x->req.status != STORE_AREQ_OPEN)
		rc = PARLEY_E_AUTH_ALREADY_ANSWERED;
	if (rc == PARLEY_OK) {
		c->comp = a->comps[0];
		c->now_ms = parley__wall_ms();
		c->wk.data = c;
		if (uv_queue_work(worker__loop(rq->w), &c->wk, jwt_work, jwt_checked) == 0)
			return;
		rc = PARLEY_E_SERVER_BUSY;
	}
	request__fail(rq, rc);
	jwt_free(c);
}

static void answer_jwt(request *rq, const Parley__Wire__AuthAnswerRequest *m)
{
	jwt_call *c = parley__calloc(1, sizeof(*c));
	store_job *j = c != NULL ? job_for(rq, STORE_OP_AUTH_BY_TOKEN) : NULL;
	int rc;

	if (c == NULL || j == NULL) {
		if (c == NULL)
			request__fail(rq, PARLEY_E_NOMEM);
		parley__free(c);
		return;
	}
	c->rq = rq;
	c->request_id = m->request_id;
	j->auth.request_id = m->request_id;
	if ((c->jwt = parley__strdup(m->jwt)) == NULL)
		rc = PARLEY_E_NOMEM;
	else
		rc = store__submit(worker__store(rq->w), j, jwt_found, c);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		jwt_free(c);
		request__fail(rq, rc);
	}
}

static void route_answer(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__AuthAnswerRequest *m = req->auth_answer;
	const auth_config *cfg = rq->svc;
	store_job *j;

	if (m->jwt[0] != '\0') {
		answer_jwt(rq, m);
		return;
	}
	if ((j = job_for(rq, STORE_OP_AUTH_ANSWER)) == NULL)
		return;
	j->auth.request_id = m->request_id;
	j->auth.limit = cfg->otp_attempts;
	snprintf(j->auth.x->otp, sizeof(j->auth.x->otp), "%s", m->otp);
	memcpy(j->auth.x->otp_key, cfg->otp_key, sizeof(j->auth.x->otp_key));
	submit(rq, j, req->body_case, PARLEY_OK);
}

static void route_status(request *rq, const Parley__Wire__Request *req)
{
	store_job *j = job_for(rq, STORE_OP_AUTH_STATUS);
	if (j == NULL)
		return;
	j->auth.thread_id = req->auth_status->thread_id;
	submit(rq, j, req->body_case, PARLEY_OK);
}

static void route_known_email(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__AuthKnownEmailRequest *m = req->auth_known_email;
	const auth_config *cfg = rq->svc;
	store_job *j;
	int rc = PARLEY_OK;

	if ((j = job_for(rq, STORE_OP_AUTH_KNOWN_EMAIL)) == NULL)
		return;
	j->auth.thread_id = m->thread_id;
	j->auth.remove = m->remove;
	j->auth.limit = cfg->known_emails_max;
	/* a malformed address is refused whoever asks; an empty one only lists (but removes nothing) */
	if (m->email[0] != '\0' || m->remove)
		rc = wire__auth_email_norm(m->email, j->auth.x->email.addr, sizeof(j->auth.x->email.addr));
	submit(rq, j, req->body_case, rc);
}

/* --- the sweep: loop 0 expires requests and credentials --- */

/* Per loop: the stop signals (every loop), the sweep timer (loop 0 only). */
typedef struct sweep {
	uv_timer_t timer;
	uv_signal_t sig[2]; /* SIGTERM, SIGINT */
	worker *w;
	const auth_config *cfg;
	int running, has_timer, open;
} sweep;

static void sweep_done(void *arg, int status, const void *result)
{
	sweep *s = arg;
	const store_job *j = result;
	s->running = 0;
	if (status != PARLEY_OK || j == NULL)
		return;
	for (size_t i = 0; i < j->auth.n_ended; i++)
		auth__push_result(s->w, s->cfg, &j->auth.ended_threads[i], &j->auth.ended[i]);
	for (size_t i = 0; i < j->auth.n_dropped; i++)
		auth__push_result(s->w, s->cfg, &j->auth.dropped[i], NULL);
	if (j->auth.n_dropped > 0)
		log_info(MODULE, "%zu credentials expired", j->auth.n_dropped);
}

static void on_sweep(uv_timer_t *t)
{
	sweep *s = t->data;
	store_job *j;
	if (s->running || (j = store__job_new(STORE_OP_AUTH_EXPIRE)) == NULL)
		return;
	j->now_ms = parley__wall_ms();
	s->running = 1;
	if (store__submit(worker__store(s->w), j, sweep_done, s) != PARLEY_OK) {
		store__job_free(j);
		s->running = 0;
	}
}

/* The daemon stops on these signals (parleyd.c drains then): the provider calls in flight end now,
 * so a sign-in page gets its 503 before the drain deadline and the loop's thread-pool jobs do not
 * hold the exit for auth_http_timeout_ms. libuv tells every loop's watcher of a signal. */
static void on_stop_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	auth__http_stop();
}

static int worker_start(worker *w, void *state, void **wstate)
{
	static const int sigs[2] = {SIGTERM, SIGINT};
	sweep *s;
	*wstate = NULL;
	if ((s = parley__calloc(1, sizeof(*s))) == NULL)
		return PARLEY_E_NOMEM;
	s->w = w;
	s->cfg = state;
	for (int i = 0; i < 2; i++) {
		uv_signal_init(worker__loop(w), &s->sig[i]);
		s->sig[i].data = s;
		s->open++;
		uv_signal_start(&s->sig[i], on_stop_signal, sigs[i]);
		uv_unref((uv_handle_t *)&s->sig[i]);
	}
	if (worker__index(w) == 0) {
		uv_timer_init(worker__loop(w), &s->timer);
		s->timer.data = s;
		s->has_timer = 1;
		s->open++;
		uv_timer_start(&s->timer, on_sweep, AUTH_SWEEP_MS, AUTH_SWEEP_MS);
		uv_unref((uv_handle_t *)&s->timer);
	}
	*wstate = s;
	return PARLEY_OK;
}

static void on_handle_closed(uv_handle_t *h)
{
	sweep *s = h->data;
	if (--s->open == 0)
		parley__free(s);
}

static void worker_stop(worker *w, void *state, void *wstate)
{
	sweep *s = wstate;
	(void)w;
	(void)state;
	if (s == NULL)
		return;
	for (int i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&s->sig[i], on_handle_closed);
	if (s->has_timer)
		uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static const route routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT, "auth_component_put", 1, route_put},
	{PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE, "auth_component_state", 1, route_state},
	{PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_LIST, "auth_component_list", 1, route_list},
	{PARLEY__WIRE__REQUEST__BODY_AUTH_START, "auth_start", 1, route_start},
	{PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER, "auth_answer", 1, route_answer},
	{PARLEY__WIRE__REQUEST__BODY_AUTH_STATUS, "auth_status", 1, route_status},
	{PARLEY__WIRE__REQUEST__BODY_AUTH_KNOWN_EMAIL, "auth_known_email", 1, route_known_email},
};

static const mbox_fn mailbox[] = {worker__send_frame};

const service auth__service = {
	.name = "auth",
	SERVICE_ROUTES(routes),
	SERVICE_MAILBOX(mailbox),
	.init = init,
	.fini = fini,
	.worker_start = worker_start,
	.worker_stop = worker_stop,
	.http_get = auth__http_get,
};
