/* The entity registry on the wire: one route per Entity* request, each a single store op (the role
 * checks and effects live in store/sql/entities.c), and the pushes that follow a committed change:
 * EntityJoinRequested to the admins' online devices (a new request, or one an admin approved without the
 * entity key), EntityStaffChanged to the members' and to a removed member's (removed = true),
 * EntityJoinDecided to a denied candidate's, on whatever loop they are connected. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "crypto/crypto.h"
#include "dispatch/service.h"
#include "entities/entities.h"
#include "wire/scan.h"
#include "wire/stafflist.h"
#include "wire/wire.h"

static int init(const parleyd_config *cfg, void **state)
{
	entities_config *c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	entities__config_from(c, cfg);
	*state = c;
	return PARLEY_OK;
}

/* one call in flight: the request and what its answer needs besides the job */
typedef struct ent_call {
	request *rq;
	int kind;       /* PARLEY__WIRE__REQUEST__BODY_ENTITY_* */
	char code[16];  /* ENTITY_CODE: the code in clear, never stored */
} ent_call;

static void info_of(Parley__Wire__EntityJoinInfo *in, const store_ent_request *r)
{
	in->request_id = r->id;
	in->handle = (char *)r->handle;
	in->account_id = r->account_id;
	in->role = (Parley__Wire__EntityRole)r->role;
	in->created_ms = r->created_ms;
	in->account_key.data = (uint8_t *)r->account_key;
	in->account_key.len = sizeof(r->account_key);
	in->signed_device_list.data = r->devlist;
	in->signed_device_list.len = r->devlist_len;
	in->approval.data = r->approval;
	in->approval.len = r->approval_len;
}

static void post_push(worker *w, enum mbox_policy policy, uint64_t account, Parley__Wire__Push *p)
{
	dynbuf *out = worker__scratch(w);
	if (wire__encode_push(p, out) == PARLEY_OK)
		(void)worker__post(w, &entities__service, policy, account, 0, 0, out->data, out->len,
				   worker__send_frame);
}

/* After a committed join request, or an approval by an admin without the entity key (then with the
 * approval, for the key's holder to sign the list): every admin's online devices hear of it (an admin
 * that misses it sees it in EntityRequests, so a full mailbox may drop it). */
static void push_join(worker *w, const store_job *j)
{
	Parley__Wire__EntityJoinRequested jr = PARLEY__WIRE__ENTITY_JOIN_REQUESTED__INIT;
	Parley__Wire__EntityJoinInfo in = PARLEY__WIRE__ENTITY_JOIN_INFO__INIT;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	if (j->ent.n_reqs < 1)
		return;
	info_of(&in, &j->ent.reqs[0]);
	jr.entity = (char *)j->ent.entity;
	jr.request = &in;
	p.body_case = PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_REQUESTED;
	p.entity_join_requested = &jr;
	for (size_t i = 0; i < j->ent.n_accounts; i++)
		post_push(w, MBOX_DROP, j->ent.accounts[i], &p);
}

/* After a committed staff change. A removal notice must arrive (MBOX_MUST): it tells a connected
 * client that its entity rights are gone, which the store already enforces. */
static void push_staff(worker *w, const store_job *j)
{
	Parley__Wire__EntityStaffChanged sc = PARLEY__WIRE__ENTITY_STAFF_CHANGED__INIT;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	sc.entity = (char *)j->ent.entity;
	sc.staff_version = j->ent.staff_version;
	p.body_case = PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED;
	p.entity_staff_changed = &sc;
	for (size_t i = 0; i < j->ent.n_accounts; i++)
		post_push(w, MBOX_MUST, j->ent.accounts[i], &p);
	if (j->ent.target_removed) {
		sc.removed = 1;
		post_push(w, MBOX_MUST, j->ent.target_account, &p);
	}
}

/* After a committed deny: the candidate's online devices hear the verdict, which they cannot ask for
 * (a non-member may not list requests). Must arrive like a removal notice: a committed write makes
 * it, so its rate is the store's. */
static void push_denied(worker *w, const store_job *j)
{
	Parley__Wire__EntityJoinDecided d = PARLEY__WIRE__ENTITY_JOIN_DECIDED__INIT;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	d.entity = (char *)j->ent.entity;
	d.request_id = j->ent.request_id;
	d.approved = 0;
	p.body_case = PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_DECIDED;
	p.entity_join_decided = &d;
	post_push(w, MBOX_MUST, j->ent.target_account, &p);
}

static void answer(void *arg, int status, const void *result)
{
	ent_call *c = arg;
	const store_job *j = result;
	request *rq = c->rq;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__EntityCreateResponse cr = PARLEY__WIRE__ENTITY_CREATE_RESPONSE__INIT;
	Parley__Wire__EntityGetResponse gr = PARLEY__WIRE__ENTITY_GET_RESPONSE__INIT;
	Parley__Wire__Entity ent = PARLEY__WIRE__ENTITY__INIT;
	Parley__Wire__EntityMemberResponse mr = PARLEY__WIRE__ENTITY_MEMBER_RESPONSE__INIT;
	Parley__Wire__EntityCodeResponse kr = PARLEY__WIRE__ENTITY_CODE_RESPONSE__INIT;
	Parley__Wire__EntityJoinResponse jr = PARLEY__WIRE__ENTITY_JOIN_RESPONSE__INIT;
	Parley__Wire__EntityRequestsResponse qr = PARLEY__WIRE__ENTITY_REQUESTS_RESPONSE__INIT;
	Parley__Wire__EntityDecideResponse dr = PARLEY__WIRE__ENTITY_DECIDE_RESPONSE__INIT;
	Parley__Wire__EntityStaffResponse sr = PARLEY__WIRE__ENTITY_STAFF_RESPONSE__INIT;
	Parley__Wire__EntityJoinInfo infos[STORE_ENT_MAX_REQUESTS], *pinfos[STORE_ENT_MAX_REQUESTS];

	if (status == PARLEY_OK && c->kind == PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN && j->ent.refusal != 0) {
		status = j->ent.refusal;
		r.retry_after_ms = j->ent.retry_after_ms;
	}
	r.status = (uint32_t)status;
	r.body_case = status == PARLEY_OK ? (Parley__Wire__Response__BodyCase)c->kind : PARLEY__WIRE__RESPONSE__BODY__NOT_SET;
	if (status == PARLEY_OK) {
		switch (c->kind) {
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE:
			cr.entity_id = j->ent.entity_id;
			r.entity_create = &cr;
			break;
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_GET:
			ent.entity_id = j->ent.entity_id;
			ent.handle = (char *)j->ent.entity;
			ent.display_name = (char *)j->ent.display_name;
			ent.entity_key.data = (uint8_t *)j->ent.entity_key;
			ent.entity_key.len = sizeof(j->ent.entity_key);
			ent.staff_version = j->ent.staff_version;
			ent.signed_staff_list.data = j->ent.list;
			ent.signed_staff_list.len = j->ent.list_len;
			gr.entity = &ent;
			r.entity_get = &gr;
			break;
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_MEMBER:
			mr.staff_version = j->ent.staff_version;
			r.entity_member = &mr;
			push_staff(rq->w, j);
			break;
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_CODE:
			kr.code = c->code;
			kr.expires_ms = j->ent.expires_ms;
			r.entity_code = &kr;
			break;
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN:
			jr.request_id = j->ent.request_id;
			r.entity_join = &jr;
			push_join(rq->w, j);
			break;
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS:
			for (size_t i = 0; i < j->ent.n_reqs; i++) {
				parley__wire__entity_join_info__init(&infos[i]);
				info_of(&infos[i], &j->ent.reqs[i]);
				pinfos[i] = &infos[i];
			}
			qr.n_requests = j->ent.n_reqs;
			qr.requests = pinfos;
			r.entity_requests = &qr;
			break;
		case PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE:
			dr.staff_version = j->ent.staff_version;
			r.entity_decide = &dr;
			if (j->ent.approval != NULL)
				push_join(rq->w, j);
			else if (j->ent.approve)
				push_staff(rq->w, j);
			else
				push_denied(rq->w, j);
			break;
		default: /* ENTITY_STAFF */
			sr.staff_version = j->ent.staff_version;
			r.entity_staff = &sr;
			push_staff(rq->w, j);
			break;
		}
	}
	request__reply(rq, &r); /* before the wipe: the answer points at c->code */
	crypto__wipe(c->code, sizeof(c->code));
	parley__free(c);
}

/* A job for the call with the common arguments, or NULL after failing the request. */
static store_job *job_for(request *rq, enum store_op op, const char *entity)
{
	store_job *j = store__job_new(op);
	if (j == NULL) {
		request__fail(rq, PARLEY_E_NOMEM);
		return NULL;
	}
	if (!wire__handle_valid(entity)) {
		store__job_free(j);
		request__fail(rq, op == STORE_OP_ENTITY_CREATE ? PARLEY_E_BAD_HANDLE : PARLEY_E_NO_SUCH_ENTITY);
		return NULL;
	}
	snprintf(j->ent.entity, sizeof(j->ent.entity), "%s", entity);
	j->caller_account = rq->account;
	j->caller_device = rq->device;
	j->now_ms = parley__wall_ms();
	const entities_config *cfg = rq->svc;
	j->ent.max_members = cfg->max_members;
	j->ent.max_pending = cfg->max_pending;
	j->ent.max_codes = cfg->max_codes;
	j->ent.guess_cap = cfg->guess_cap;
	j->ent.guess_per_ms = cfg->guess_per_ms;
	j->ent.acct_cap = cfg->acct_cap;
	j->ent.acct_per_ms = cfg->acct_per_ms;
	return j;
}

static void submit(request *rq, store_job *j, int kind, int rc, const char *code)
{
	ent_call *c = rc == PARLEY_OK ? parley__calloc(1, sizeof(*c)) : NULL;
	if (rc == PARLEY_OK && c == NULL)
		rc = PARLEY_E_NOMEM;
	if (rc == PARLEY_OK) {
		c->rq = rq;
		c->kind = kind;
		if (code != NULL)
			snprintf(c->code, sizeof(c->code), "%s", code);
		rc = store__submit(worker__store(rq->w), j, answer, c);
	}
	if (rc != PARLEY_OK) {
		parley__free(c);
		store__job_free(j);
		request__fail(rq, rc);
	}
}

static void route_create(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__EntityCreateRequest *m = req->entity_create;
	store_job *j = job_for(rq, STORE_OP_ENTITY_CREATE, m->handle);
	if (j == NULL)
		return;
	snprintf(j->ent.display_name, sizeof(j->ent.display_name), "%s", m->display_name);
	/* the name is shown to customers; it never changes afterwards, so it is checked once, here */
	if (!wire__utf8_valid((const uint8_t *)m->display_name, strlen(m->display_name))) {
		store__job_free(j);
		request__fail(rq, PARLEY_E_INVAL);
		return;
	}
	memcpy(j->ent.entity_key, m->entity_key.data, STORE_SIGNAL_KEY_LEN); /* exact size checked by wire */
	submit(rq, j, req->body_case, entities__job_list(j, m->signed_staff_list.data, m->signed_staff_list.len), NULL);
}

static void route_get(request *rq, const Parley__Wire__Request *req)
{
	store_job *j = job_for(rq, STORE_OP_ENTITY_GET, req->entity_get->handle);
	if (j != NULL)
		submit(rq, j, req->body_case, PARLEY_OK, NULL);
}

static void route_member(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__EntityMemberRequest *m = req->entity_member;
	store_job *j = job_for(rq, STORE_OP_ENTITY_MEMBER, m->entity);
	if (j == NULL)
		return;
	snprintf(j->handle, sizeof(j->handle), "%s", m->member);
	j->ent.role = (int)m->role;
	j->ent.remove = m->remove;
	j->ent.transfer = m->transfer_primary;
	/* a transfer keeps the member's role (admin): a role that says otherwise, or a removal with it, is
	 * a malformed call, not a question for the registry */
	int bad = m->transfer_primary && (m->remove || (m->role != PARLEY__WIRE__ENTITY_ROLE__ROLE_NONE &&
							 m->role != PARLEY__WIRE__ENTITY_ROLE__ROLE_ADMIN));
	submit(rq, j, req->body_case,
	       bad ? PARLEY_E_INVAL : entities__job_list(j, m->signed_staff_list.data, m->signed_staff_list.len), NULL);
}

static void route_code(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__EntityCodeRequest *m = req->entity_code;
	const entities_config *cfg = rq->svc;
	char code[16];
	store_job *j = job_for(rq, STORE_OP_ENTITY_CODE, m->entity);
	if (j == NULL)
		return;
	int role = m->role == PARLEY__WIRE__ENTITY_ROLE__ROLE_NONE ? WIRE_ROLE_AGENT : (int)m->role;
	/* admins are added by the primary admin, never through a code */
	int rc = role == WIRE_ROLE_AGENT || role == WIRE_ROLE_BOT || role == WIRE_ROLE_GATEWAY ? PARLEY_OK
											       : PARLEY_E_INVAL;
	unsigned ttl = m->ttl_s != 0 && m->ttl_s < cfg->code_ttl_s ? m->ttl_s : cfg->code_ttl_s;
	j->ent.role = role;
	j->ent.expires_ms = j->now_ms + (uint64_t)ttl * 1000u;
	entities__code_new(code, j->ent.code_hash);
	submit(rq, j, req->body_case, rc, code);
	crypto__wipe(code, sizeof(code));
}

static void route_join(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__EntityJoinRequest *m = req->entity_join;
	store_job *j = job_for(rq, STORE_OP_ENTITY_JOIN, m->entity);
	int rc = PARLEY_OK;
	if (j == NULL)
		return;
	entities__code_hash(m->code, j->ent.code_hash);
	memcpy(j->ent.entity_key, m->account_key.data, STORE_SIGNAL_KEY_LEN); /* the candidate's account key */
	if (m->signed_device_list.len > 0) {
		j->ent.devlist = parley__malloc(m->signed_device_list.len);
		if (j->ent.devlist == NULL)
			rc = PARLEY_E_NOMEM;
		else
			memcpy(j->ent.devlist, m->signed_device_list.data, m->signed_device_list.len);
		j->ent.devlist_len = j->ent.devlist != NULL ? m->signed_device_list.len : 0;
	}
	submit(rq, j, req->body_case, rc, NULL);
}

static void route_requests(request *rq, const Parley__Wire__Request *req)
{
	store_job *j = job_for(rq, STORE_OP_ENTITY_REQUESTS, req->entity_requests->entity);
	if (j != NULL)
		submit(rq, j, req->body_case, PARLEY_OK, NULL);
}

static void route_decide(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__EntityDecideRequest *m = req->entity_decide;
	store_job *j = job_for(rq, STORE_OP_ENTITY_DECIDE, m->entity);
	int rc = PARLEY_OK;
	if (j == NULL)
		return;
	j->ent.request_id = m->request_id;
	j->ent.approve = m->approve;
	/* a deny changes no staff: a list with it would be a version nobody checks; an approval goes with
	 * no list (it is what an admin without the entity key sends instead) and never with a deny */
	if (m->approval.len > 0 && m->signed_staff_list.len > 0)
		rc = PARLEY_E_STAFF_LIST_INVALID;
	else if (m->approval.len > 0 && !m->approve)
		rc = PARLEY_E_APPROVAL_INVALID;
	else if (m->approval.len > 0)
		rc = entities__job_approval(j, m->approval.data, m->approval.len);
	else if (m->approve)
		rc = entities__job_list(j, m->signed_staff_list.data, m->signed_staff_list.len);
	else if (m->signed_staff_list.len > 0)
		rc = PARLEY_E_STAFF_LIST_INVALID;
	submit(rq, j, req->body_case, rc, NULL);
}

static void route_staff(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__EntityStaffRequest *m = req->entity_staff;
	store_job *j = job_for(rq, STORE_OP_ENTITY_STAFF, m->entity);
	if (j != NULL)
		submit(rq, j, req->body_case, entities__job_list(j, m->signed_staff_list.data, m->signed_staff_list.len),
		       NULL);
}

static const route routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE, "entity_create", 1, route_create},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_GET, "entity_get", 1, route_get},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_MEMBER, "entity_member", 1, route_member},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_CODE, "entity_code", 1, route_code},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN, "entity_join", 1, route_join},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS, "entity_requests", 1, route_requests},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE, "entity_decide", 1, route_decide},
	{PARLEY__WIRE__REQUEST__BODY_ENTITY_STAFF, "entity_staff", 1, route_staff},
};

static const mbox_fn mailbox[] = {worker__send_frame};

const service entities__service = {
	.name = "entities",
	SERVICE_ROUTES(routes),
	SERVICE_MAILBOX(mailbox),
	.init = init,
	.fini = service__free_state,
};
