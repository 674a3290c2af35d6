/* Customer authentication, the calls (include/parley/auth.h): argument checks, one auth_op per request
 * (its build and complete functions; conn.c knows it through a vtable), and the blocking variants.
 * Conversions and pushes: auth_wire.c.
 */
#include <string.h>

#include <sodium.h>

#include "client/auth_internal.h"
#include "common/alloc.h"
#include "wire/wire_auth.h"

enum { AK_PUT, AK_STATE, AK_LIST, AK_START, AK_ANSWER, AK_STATUS, AK_EMAIL };

typedef struct auth_op {
	client_op op;
	int kind;
	union {
		Parley__Wire__AuthComponentPutRequest put;
		Parley__Wire__AuthComponentStateRequest state;
		Parley__Wire__AuthComponentListRequest list;
		Parley__Wire__AuthStartRequest start;
		Parley__Wire__AuthAnswerRequest answer;
		Parley__Wire__AuthStatusRequest status;
		Parley__Wire__AuthKnownEmailRequest email;
	} body;
	Parley__Wire__AuthComponent wcomp; /* put: points into comp */
	parley_auth_component comp;        /* put: the caller's component, copied */
	char entity[PARLEY_HANDLE_MAX + 1];
	uint64_t thread_id, component_id;  /* start: what the answer must be about */
	char otp[PARLEY_AUTH_OTP_MAX + 1]; /* answer: secrets, wiped with the op */
	char email[PARLEY_AUTH_EMAIL_MAX + 1]; /* known email: the address, lower-cased */
	char *jwt;
	union {
		parley_auth_component_cb comp;
		parley_auth_request_cb req;
		parley_done_cb done;
		parley_auth_emails_cb emails;
	} cb;
	/* the blocking-only calls (list, status) write straight into the caller's memory: client__sync_wait
	 * completes every op before the caller's frame goes */
	parley_auth_component *list_out;
	size_t list_max, *list_n;
	parley_auth_status *status_out;
	void *user;
} auth_op;

static void op_free(auth_op *o)
{
	if (o->jwt != NULL) {
		sodium_memzero(o->jwt, strlen(o->jwt));
		parley__free(o->jwt);
	}
	sodium_memzero(o->otp, sizeof(o->otp));
	parley__free(o);
}

static int build(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	auth_op *o = CLIENT_OP_OWNER(op, auth_op, op);

	switch (o->kind) {
	case AK_PUT:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT;
		req->auth_component_put = &o->body.put;
		break;
	case AK_STATE:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE;
		req->auth_component_state = &o->body.state;
		break;
	case AK_LIST:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_LIST;
		req->auth_component_list = &o->body.list;
		break;
	case AK_START:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_START;
		req->auth_start = &o->body.start;
		break;
	case AK_ANSWER:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER;
		req->auth_answer = &o->body.answer;
		break;
	case AK_EMAIL:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_KNOWN_EMAIL;
		req->auth_known_email = &o->body.email;
		break;
	default:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_STATUS;
		req->auth_status = &o->body.status;
		break;
	}
	return PARLEY_OK;
}

/* A component answered for the entity the call named. */
static int got_component(const auth_op *o, const Parley__Wire__AuthComponent *w, parley_auth_component *out)
{
	int rc = client__auth_component_from_wire(w, out);
	if (rc == PARLEY_OK && strcmp(out->entity, o->entity) != 0)
		rc = PARLEY_E_PROTO_MALFORMED;
	return rc;
}

static int got_list(auth_op *o, const Parley__Wire__AuthComponentListResponse *l)
{
	size_t n = l->n_components < o->list_max ? l->n_components : o->list_max;

	for (size_t i = 0; i < n; i++) {
		int rc = got_component(o, l->components[i], &o->list_out[i]);
		if (rc != PARLEY_OK) {
			memset(o->list_out, 0, n * sizeof(*o->list_out));
			return rc;
		}
	}
	*o->list_n = n;
	return PARLEY_OK;
}

/* Exactly once per op (conn.c's contract): the answer checked and converted, the callback, the op freed
 * (its secrets wiped). An answer about another component or thread than the call named is malformed. */
static void complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	auth_op *o = CLIENT_OP_OWNER(op, auth_op, op);
	parley_auth_component comp;
	parley_auth_request req;
	int ok = status == PARLEY_OK && r != NULL;

	memset(&comp, 0, sizeof(comp));
	memset(&req, 0, sizeof(req));
	if (status == PARLEY_OK && r == NULL)
		status = PARLEY_E_PROTO_MALFORMED;
	switch (o->kind) {
	case AK_PUT:
	case AK_STATE: {
		const Parley__Wire__AuthComponent *w =
			!ok ? NULL : o->kind == AK_PUT ? r->auth_component_put->component : r->auth_component_state->component;
		if (ok)
			status = got_component(o, w, &comp);
		/* a state change is about the component the call named */
		if (status == PARLEY_OK && o->kind == AK_STATE && comp.component_id != o->component_id)
			status = PARLEY_E_PROTO_MALFORMED;
		o->cb.comp(c, (parley_err)status, status == PARLEY_OK ? &comp : NULL, o->user);
		break;
	}
	case AK_LIST:
		if (ok)
			status = got_list(o, r->auth_component_list);
		o->cb.done(c, (parley_err)status, o->user);
		break;
	case AK_START:
		if (ok)
			status = client__auth_request_from_wire(r->auth_start->request, &req);
		if (status == PARLEY_OK && (req.thread_id != o->thread_id || req.component_id != o->component_id))
			status = PARLEY_E_PROTO_MALFORMED;
		o->cb.req(c, (parley_err)status, status == PARLEY_OK ? &req : NULL, o->user);
		break;
	case AK_ANSWER:
		o->cb.done(c, (parley_err)status, o->user);
		break;
	case AK_EMAIL: {
		parley_auth_emails *list = parley__calloc(1, sizeof(*list));
		if (ok && list == NULL)
			status = PARLEY_E_NOMEM;
		else if (ok)
			status = client__auth_emails_from_wire(r->auth_known_email->emails, r->auth_known_email->n_emails,
							       list->emails, &list->n);
		o->cb.emails(c, (parley_err)status, status == PARLEY_OK ? list : NULL, o->user);
		parley__free(list);
		break;
	}
	default:
		if (ok)
			status = client__auth_status_from_wire(r->auth_status, o->status_out);
		o->cb.done(c, (parley_err)status, o->user);
		break;
	}
	op_free(o);
}

static const client_op_vtable vt[] = {
	[AK_PUT] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_COMPONENT_PUT, 0},
	[AK_STATE] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_COMPONENT_STATE, 0},
	[AK_LIST] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_COMPONENT_LIST, 0},
	[AK_START] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_START, 0},
	[AK_ANSWER] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_ANSWER, 0},
	[AK_STATUS] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_STATUS, 0},
	[AK_EMAIL] = {build, complete, PARLEY__WIRE__RESPONSE__BODY_AUTH_KNOWN_EMAIL, 0},
};

/* The checks of every call (a callback, a saved account, a valid entity when one is named) and a new
 * op; NULL with *rc set. */
static auth_op *op_new(parley_client *c, int kind, int have_cb, const char *entity, void *user, int *rc)
{
	auth_op *o;

	if (c == NULL || !have_cb) {
		*rc = PARLEY_E_INVAL;
		return NULL;
	}
	c->errmsg[0] = '\0';
	*rc = entity != NULL ? client__check_handle(c, entity) : PARLEY_OK;
	if (*rc == PARLEY_OK)
		*rc = client__load_account(c);
	if (*rc != PARLEY_OK)
		return NULL;
	o = parley__calloc(1, sizeof(*o));
	if (o == NULL) {
		*rc = PARLEY_E_NOMEM;
		return NULL;
	}
	o->op.vt = &vt[kind];
	o->kind = kind;
	o->user = user;
	if (entity != NULL)
		snprintf(o->entity, sizeof(o->entity), "%s", entity);
	return o;
}

static parley_err submit(parley_client *c, auth_op *o)
{
	client__conn_submit(c, &o->op);
	return PARLEY_OK;
}

parley_err parley_auth_component_put_start(parley_client *c, const parley_auth_component *comp,
					   parley_auth_component_cb cb, void *user)
{
	Parley__Wire__AuthComponent check;
	auth_op *o;
	int rc;

	if (c == NULL || cb == NULL || comp == NULL)
		return PARLEY_E_INVAL;
	/* the component first: a malformed one is refused whatever the account */
	rc = client__auth_component_to_wire(comp, &check, c->errmsg, sizeof(c->errmsg));
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	o = op_new(c, AK_PUT, 1, comp->entity, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->comp = *comp;
	(void)client__auth_component_to_wire(&o->comp, &o->wcomp, c->errmsg, sizeof(c->errmsg));
	o->cb.comp = cb;
	parley__wire__auth_component_put_request__init(&o->body.put);
	o->body.put.component = &o->wcomp;
	return submit(c, o);
}

parley_err parley_auth_component_set_state_start(parley_client *c, const char *entity, uint64_t component_id,
						 parley_component_state state, parley_auth_component_cb cb, void *user)
{
	auth_op *o;
	int rc;

	if (entity == NULL || component_id == 0 || (state != PARLEY_COMPONENT_ACTIVE && state != PARLEY_COMPONENT_INACTIVE))
		return PARLEY_E_INVAL;
	o = op_new(c, AK_STATE, cb != NULL, entity, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.comp = cb;
	o->component_id = component_id;
	parley__wire__auth_component_state_request__init(&o->body.state);
	o->body.state.entity = o->entity;
	o->body.state.component_id = component_id;
	o->body.state.state = (Parley__Wire__AuthComponentState)state;
	return submit(c, o);
}

parley_err parley_auth_start_start(parley_client *c, uint64_t thread_id, uint64_t component_id,
				   parley_auth_request_cb cb, void *user)
{
	auth_op *o;
	int rc;

	if (thread_id == 0 || component_id == 0)
		return PARLEY_E_INVAL;
	o = op_new(c, AK_START, cb != NULL, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.req = cb;
	o->thread_id = thread_id;
	o->component_id = component_id;
	parley__wire__auth_start_request__init(&o->body.start);
	o->body.start.thread_id = thread_id;
	o->body.start.component_id = component_id;
	return submit(c, o);
}

parley_err parley_auth_answer_start(parley_client *c, uint64_t request_id, const char *otp, const char *jwt,
				    parley_done_cb cb, void *user)
{
	size_t otp_len = otp != NULL ? strnlen(otp, PARLEY_AUTH_OTP_MAX + 1) : 0;
	size_t jwt_len = jwt != NULL ? strnlen(jwt, PARLEY_AUTH_JWT_MAX + 1) : 0;
	auth_op *o;
	int rc;

	/* exactly one answer, within its bound */
	if (request_id == 0 || (otp_len == 0) == (jwt_len == 0) || otp_len > PARLEY_AUTH_OTP_MAX ||
	    jwt_len > PARLEY_AUTH_JWT_MAX) {
		if (c != NULL)
			client__set_err(c, "an answer is a one-time code of 1 to %d bytes or a JWT of 1 to %d bytes",
					PARLEY_AUTH_OTP_MAX, PARLEY_AUTH_JWT_MAX);
		return PARLEY_E_INVAL;
	}
	o = op_new(c, AK_ANSWER, cb != NULL, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.done = cb;
	parley__wire__auth_answer_request__init(&o->body.answer);
	o->body.answer.request_id = request_id;
	memcpy(o->otp, otp != NULL ? otp : "", otp_len);
	o->body.answer.otp = o->otp;
	if (jwt_len > 0) {
		o->jwt = parley__malloc(jwt_len + 1);
		if (o->jwt == NULL) {
			op_free(o);
			return PARLEY_E_NOMEM;
		}
		memcpy(o->jwt, jwt, jwt_len);
		o->jwt[jwt_len] = '\0';
	}
	o->body.answer.jwt = o->jwt != NULL ? o->jwt : o->otp + otp_len; /* "" when absent */
	return submit(c, o);
}

parley_err parley_auth_known_email_start(parley_client *c, uint64_t thread_id, const char *email, int remove,
					 parley_auth_emails_cb cb, void *user)
{
	char norm[PARLEY_AUTH_EMAIL_MAX + 1] = "";
	int has = email != NULL && email[0] != '\0';
	auth_op *o;
	int rc;

	if (thread_id == 0)
		return PARLEY_E_INVAL;
	/* the server's rule, checked here so that a typo is named before anything is sent */
	if ((has || remove) && wire__auth_email_norm(email != NULL ? email : "", norm, sizeof(norm)) != PARLEY_OK) {
		if (c != NULL)
			client__set_err(c, "an email address has 3 to %d printable ASCII bytes, one '@' and no space",
					PARLEY_AUTH_EMAIL_MAX);
		return PARLEY_E_EMAIL_INVALID;
	}
	o = op_new(c, AK_EMAIL, cb != NULL, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.emails = cb;
	memcpy(o->email, norm, sizeof(o->email));
	parley__wire__auth_known_email_request__init(&o->body.email);
	o->body.email.thread_id = thread_id;
	o->body.email.email = o->email;
	o->body.email.remove = remove != 0;
	return submit(c, o);
}

/* ---- blocking variants ---- */

typedef struct auth_sync {
	client_sync s;
	parley_auth_component *comp;
	parley_auth_request *req;
	parley_auth_emails *emails;
} auth_sync;

static void sync_comp(parley_client *c, parley_err st, const parley_auth_component *comp, void *user)
{
	auth_sync *s = user;
	if (st == PARLEY_OK && s->comp != NULL)
		*s->comp = *comp;
	client__sync_done(c, st, &s->s);
}

static void sync_req(parley_client *c, parley_err st, const parley_auth_request *req, void *user)
{
	auth_sync *s = user;
	if (st == PARLEY_OK && s->req != NULL)
		*s->req = *req;
	client__sync_done(c, st, &s->s);
}

static void sync_emails(parley_client *c, parley_err st, const parley_auth_emails *emails, void *user)
{
	auth_sync *s = user;
	if (st == PARLEY_OK && s->emails != NULL)
		*s->emails = *emails;
	client__sync_done(c, st, &s->s);
}

parley_err parley_auth_component_put(parley_client *c, const parley_auth_component *comp, parley_auth_component *out)
{
	auth_sync s = {.comp = out};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s.s, parley_auth_component_put_start(c, comp, sync_comp, &s));
}

parley_err parley_auth_component_set_state(parley_client *c, const char *entity, uint64_t component_id,
					   parley_component_state state, parley_auth_component *out)
{
	auth_sync s = {.comp = out};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s.s,
				 parley_auth_component_set_state_start(c, entity, component_id, state, sync_comp, &s));
}

parley_err parley_auth_start(parley_client *c, uint64_t thread_id, uint64_t component_id, parley_auth_request *out)
{
	auth_sync s = {.req = out};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s.s, parley_auth_start_start(c, thread_id, component_id, sync_req, &s));
}

parley_err parley_auth_answer(parley_client *c, uint64_t request_id, const char *otp, const char *jwt)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_auth_answer_start(c, request_id, otp, jwt, client__sync_done, &s));
}

parley_err parley_auth_component_list(parley_client *c, const char *entity, parley_auth_component *out, size_t max,
				      size_t *n)
{
	client_sync s = {0};
	auth_op *o;
	int rc;

	if (n == NULL || (out == NULL && max != 0))
		return PARLEY_E_INVAL;
	*n = 0;
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	o = op_new(c, AK_LIST, 1, entity, &s, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.done = client__sync_done;
	o->list_out = out;
	o->list_max = max;
	o->list_n = n;
	parley__wire__auth_component_list_request__init(&o->body.list);
	o->body.list.entity = o->entity;
	return client__sync_wait(c, &s, submit(c, o));
}

parley_err parley_auth_status_get(parley_client *c, uint64_t thread_id, parley_auth_status *out)
{
	client_sync s = {0};
	auth_op *o;
	int rc;

	if (out == NULL || thread_id == 0)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	o = op_new(c, AK_STATUS, 1, NULL, &s, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.done = client__sync_done;
	o->status_out = out;
	parley__wire__auth_status_request__init(&o->body.status);
	o->body.status.thread_id = thread_id;
	return client__sync_wait(c, &s, submit(c, o));
}

parley_err parley_auth_known_email(parley_client *c, uint64_t thread_id, const char *email, int remove,
				   parley_auth_emails *out)
{
	auth_sync s = {.emails = out};
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s.s, parley_auth_known_email_start(c, thread_id, email, remove, sync_emails, &s));
}
