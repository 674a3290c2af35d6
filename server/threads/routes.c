/* Threads on the wire: one route per Thread* request, each a single store op, the answers, and what
 * follows a commit: the envelopes of a group send handed to the relay's delivery, and ThreadChanged to
 * the members' online devices. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "dispatch/service.h"
#include "threads/threads.h"
#include "wire/wire.h"

void threads__config_from(threads_config *c, const parleyd_config *cfg)
{
	relay__config_from(&c->relay, cfg);
	c->max_open = (unsigned)cfg->thread_max_open_per_customer;
}

static int init(const parleyd_config *cfg, void **state)
{
	threads_config *c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	threads__config_from(c, cfg);
	*state = c;
	return PARLEY_OK;
}

/* one call in flight */
typedef struct thr_call {
	request *rq;
	int kind; /* PARLEY__WIRE__REQUEST__BODY_THREAD_* */
} thr_call;

/* ThreadInfo of a stored thread; `members` is the caller's array of the info's member ids. The one
 * builder of every ThreadInfo the server sends (answers and pushes): a new field goes here. */
static void info_of(Parley__Wire__ThreadInfo *in, const store_thread_info *t)
{
	parley__wire__thread_info__init(in);
	in->thread_id = t->thread_id;
	in->entity = (char *)t->entity;
	in->entity_id = t->entity_id;
	in->customer = (char *)t->customer_handle;
	in->customer_account = t->customer;
	in->channel = t->channel;
	in->channel_user = (char *)t->channel_user;
	/* a channel thread's customer account is the gateway it came through: E2E ends there */
	in->gateway = t->channel != 0 ? (char *)t->customer_handle : (char *)"";
	in->verification = (Parley__Wire__VerificationLevel)t->verification;
	in->verified_until_ms = t->verified_until_ms;
	in->verified_by = (char *)t->verified_by;
	in->status = (Parley__Wire__ThreadStatus)t->status;
	in->handling_agent = t->handling_agent;
	in->lock_holder = t->lock_holder;
	in->membership_version = t->version;
	in->members = (uint64_t *)t->members;
	in->n_members = t->n_members;
	in->created_ms = t->created_ms;
	in->updated_ms = t->updated_ms;
}

static void post_push(worker *w, uint64_t account, Parley__Wire__Push *p)
{
	dynbuf *out = worker__scratch(w);
	/* must arrive: it is how a member learns it was added or removed (a committed write makes it, so
	 * its rate is the store's) */
	if (wire__encode_push(p, out) == PARLEY_OK)
		(void)worker__post(w, &threads__service, MBOX_MUST, account, 0, 0, out->data, out->len,
				   worker__send_frame);
}

/* After a committed event: ThreadChanged with the event to every member, and to a removed one. */
static void push_changed(worker *w, const store_job *j, const uint8_t *event, size_t len)
{
	Parley__Wire__ThreadChanged tc = PARLEY__WIRE__THREAD_CHANGED__INIT;
	Parley__Wire__ThreadInfo in;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	const store_thread_info *t = j->thr.infos;

	if (t == NULL || event == NULL)
		return;
	info_of(&in, t);
	tc.thread = &in;
	tc.event.data = (uint8_t *)event;
	tc.event.len = len;
	p.body_case = PARLEY__WIRE__PUSH__BODY_THREAD_CHANGED;
	p.thread_changed = &tc;
	for (size_t i = 0; i < t->n_members; i++)
		post_push(w, t->members[i], &p);
	if (j->thr.removed != 0)
		post_push(w, j->thr.removed, &p);
}

/* After a committed group send (one content, one type) or forward (a payload per device): each
 * envelope to the loops holding its device (the relay's delivery). */
static void fan_out(worker *w, const store_job *j)
{
	const store_thread_args *a = &j->thr;
	int forward = j->op == STORE_OP_THREAD_FORWARD;
	store_envelope e = {0};
	e.sender_account = j->caller_account;
	e.sender_device = j->caller_device;
	memcpy(e.sender_handle, a->sender_handle, sizeof(e.sender_handle));
	e.type = a->payment ? PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PAYMENT_REQUEST
			    : PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_GROUP_MESSAGE;
	e.client_ts = a->client_ts;
	e.server_ts = j->now_ms;
	e.content = a->content;
	e.content_len = a->content_len;
	e.thread_id = forward ? 0 : a->thread_id; /* a forward's payloads are pairwise messages */
	for (size_t i = 0; i < a->n_rcpts; i++) {
		if (forward) {
			e.type = a->msgs[i].type;
			e.content = (uint8_t *)a->msgs[i].content;
			e.content_len = a->msgs[i].content_len;
		}
		e.server_id = a->rcpts[i].server_id;
		relay__post_envelope(w, &e, a->rcpts[i].account, a->rcpts[i].device);
	}
}

static void answer(void *arg, int status, const void *result)
{
	thr_call *c = arg;
	const store_job *j = result;
	request *rq = c->rq;
	worker *w = rq->w;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__ThreadOpenResponse open = PARLEY__WIRE__THREAD_OPEN_RESPONSE__INIT;
	Parley__Wire__ThreadSendResponse send = PARLEY__WIRE__THREAD_SEND_RESPONSE__INIT;
	Parley__Wire__ThreadEventResponse ev = PARLEY__WIRE__THREAD_EVENT_RESPONSE__INIT;
	Parley__Wire__ThreadForwardResponse fw = PARLEY__WIRE__THREAD_FORWARD_RESPONSE__INIT;
	Parley__Wire__ThreadGetResponse get = PARLEY__WIRE__THREAD_GET_RESPONSE__INIT;
	Parley__Wire__ThreadListResponse list = PARLEY__WIRE__THREAD_LIST_RESPONSE__INIT;
	Parley__Wire__ThreadInfo infos[STORE_THREAD_MAX_LIST], *pinfos[STORE_THREAD_MAX_LIST];
	ProtobufCBinaryData evs[STORE_THREAD_MAX_EVENTS];
	const store_thread_args *a = j != NULL ? &j->thr : NULL;
	int kind = c->kind;

	parley__free(c);
	r.status = (uint32_t)status;
	if (a != NULL && status != PARLEY_OK && a->why != NULL)
		r.message = (char *)a->why;
	/* the one error with a body: the sender needs the current version to refresh and send again */
	if (status == PARLEY_E_STALE_MEMBERSHIP && a != NULL && a->n_infos == 1) {
		send.membership_version = a->infos[0].version;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_THREAD_SEND;
		r.thread_send = &send;
	}
	if (status != PARLEY_OK || a == NULL) {
		request__reply(rq, &r);
		return;
	}
	for (size_t i = 0; i < a->n_infos && i < STORE_THREAD_MAX_LIST; i++) {
		info_of(&infos[i], &a->infos[i]);
		pinfos[i] = &infos[i];
	}
	r.body_case = (Parley__Wire__Response__BodyCase)kind;
	switch (kind) {
	case PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN:
		open.thread = &infos[0];
		r.thread_open = &open;
		break;
	case PARLEY__WIRE__REQUEST__BODY_THREAD_SEND:
		send.membership_version = a->infos[0].version;
		r.thread_send = &send;
		break;
	case PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT:
		ev.membership_version = a->infos[0].version;
		r.thread_event = &ev;
		break;
	case PARLEY__WIRE__REQUEST__BODY_THREAD_FORWARD:
		fw.membership_version = a->infos[0].version;
		r.thread_forward = &fw;
		break;
	case PARLEY__WIRE__REQUEST__BODY_THREAD_GET:
		for (size_t i = 0; i < a->n_events; i++) {
			evs[i].data = a->events[i].data;
			evs[i].len = a->events[i].len;
		}
		get.thread = &infos[0];
		get.events = evs;
		get.n_events = a->n_events;
		r.thread_get = &get;
		break;
	default: /* THREAD_LIST */
		list.threads = pinfos;
		list.n_threads = a->n_infos;
		r.thread_list = &list;
		break;
	}
	request__reply(rq, &r);
	if (kind == PARLEY__WIRE__REQUEST__BODY_THREAD_SEND || kind == PARLEY__WIRE__REQUEST__BODY_THREAD_FORWARD)
		fan_out(w, j);
	/* an OPEN that gave back the caller's existing thread changed nothing */
	if (kind != PARLEY__WIRE__REQUEST__BODY_THREAD_GET && kind != PARLEY__WIRE__REQUEST__BODY_THREAD_LIST &&
	    !a->existing) {
		push_changed(w, j, a->event, a->event_len);
		push_changed(w, j, a->event2, a->event2_len);
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

/* A copy of a signed event into the job (none when empty). */
static int job_event(store_job *j, const ProtobufCBinaryData *ev)
{
	if (ev->len == 0)
		return PARLEY_OK;
	if ((j->thr.event = parley__malloc(ev->len)) == NULL)
		return PARLEY_E_NOMEM;
	memcpy(j->thr.event, ev->data, ev->len);
	j->thr.event_len = ev->len;
	return PARLEY_OK;
}

static void submit(request *rq, store_job *j, int kind, int rc)
{
	thr_call *c = rc == PARLEY_OK ? parley__calloc(1, sizeof(*c)) : NULL;
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

static void route_open(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__ThreadOpenRequest *m = req->thread_open;
	const threads_config *cfg = rq->svc;
	store_job *j;
	int rc = PARLEY_OK;

	if (!wire__handle_valid(m->entity)) {
		request__fail(rq, PARLEY_E_NO_SUCH_ENTITY);
		return;
	}
	if (m->customer[0] != '\0' && !wire__handle_valid(m->customer)) {
		request__fail(rq, PARLEY_E_NO_SUCH_ACCOUNT);
		return;
	}
	if ((j = job_for(rq, STORE_OP_THREAD_OPEN)) == NULL)
		return;
	snprintf(j->thr.entity, sizeof(j->thr.entity), "%s", m->entity);
	if (m->customer[0] != '\0')
		rc = store__job_set_handle(j, m->customer);
	j->thr.max_open = cfg->max_open;
	/* checked in the op, after the caller's role; never cut short into a valid one */
	j->thr.channel = m->channel;
	j->thr.channel_user_long = strlen(m->channel_user) >= sizeof(j->thr.channel_user);
	if (!j->thr.channel_user_long)
		snprintf(j->thr.channel_user, sizeof(j->thr.channel_user), "%s", m->channel_user);
	submit(rq, j, req->body_case, rc == PARLEY_OK ? job_event(j, &m->event) : rc);
}

static void route_send(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__ThreadSendRequest *m = req->thread_send;
	const threads_config *cfg = rq->svc;
	store_job *j;
	store_thread_args *a;
	/* a group send is a send: the same per-account bucket as SendMessage, taken before anything is
	 * copied, so one account cannot fan out past the rate it may send pairwise */
	int rc = relay__rate_check(rq->w, &cfg->relay, rq->account);

	if (rc != PARLEY_OK) {
		request__fail(rq, rc);
		return;
	}
	if ((j = job_for(rq, STORE_OP_THREAD_SEND)) == NULL)
		return;
	a = &j->thr;
	a->thread_id = m->thread_id;
	snprintf(a->sender_handle, sizeof(a->sender_handle), "%s", rq->handle);
	a->client_ts = m->timestamp;
	a->expires_ms = j->now_ms + cfg->relay.ttl_ms;
	a->membership_version = m->membership_version;
	a->payment = m->payment_request;
	a->queue_limit = cfg->relay.queue_limit;
	a->sender_queue_limit = cfg->relay.sender_queue_limit;
	a->content = parley__malloc(m->ciphertext.len);
	rc = a->content != NULL ? PARLEY_OK : PARLEY_E_NOMEM;
	if (rc == PARLEY_OK) {
		memcpy(a->content, m->ciphertext.data, m->ciphertext.len);
		a->content_len = m->ciphertext.len;
		rc = job_event(j, &m->lock_event);
	}
	submit(rq, j, req->body_case, rc);
}

static void route_event(request *rq, const Parley__Wire__Request *req)
{
	store_job *j = job_for(rq, STORE_OP_THREAD_EVENT);
	if (j == NULL)
		return;
	j->thr.thread_id = req->thread_event->thread_id;
	submit(rq, j, req->body_case, job_event(j, &req->thread_event->event));
}

/* the payloads into the job: pairwise Signal messages, one per device (no duplicate), each within the
 * relay's content limit */
static int job_payloads(store_job *j, const Parley__Wire__ThreadForwardRequest *m, size_t max_content)
{
	store_thread_args *a = &j->thr;
	size_t total = 0, off = 0;

	for (size_t i = 0; i < m->n_payloads; i++) {
		const Parley__Wire__OutgoingMessage *o = m->payloads[i];
		if (o->content.len > max_content)
			return PARLEY_E_TOO_LARGE;
		if (o->type != PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT &&
		    o->type != PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE)
			return PARLEY_E_INVAL;
		for (size_t k = 0; k < i; k++)
			if (m->payloads[k]->device_id == o->device_id)
				return PARLEY_E_INVAL;
		total += o->content.len;
	}
	a->msgs = parley__calloc(m->n_payloads, sizeof(*a->msgs));
	a->msg_buf = parley__malloc(total);
	if (a->msgs == NULL || a->msg_buf == NULL)
		return PARLEY_E_NOMEM;
	for (size_t i = 0; i < m->n_payloads; i++) {
		const Parley__Wire__OutgoingMessage *o = m->payloads[i];
		store_out_msg *d = &a->msgs[i];
		d->device_id = o->device_id;
		d->registration_id = o->registration_id;
		d->type = o->type;
		memcpy(a->msg_buf + off, o->content.data, o->content.len);
		d->content = a->msg_buf + off;
		d->content_len = o->content.len;
		off += o->content.len;
	}
	a->n_msgs = m->n_payloads;
	return PARLEY_OK;
}

static void route_forward(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__ThreadForwardRequest *m = req->thread_forward;
	const threads_config *cfg = rq->svc;
	store_job *j;
	store_thread_args *a;
	int rc;

	if (!wire__handle_valid(m->agent)) {
		request__fail(rq, PARLEY_E_NO_SUCH_ACCOUNT);
		return;
	}
	if ((j = job_for(rq, STORE_OP_THREAD_FORWARD)) == NULL)
		return;
	a = &j->thr;
	a->thread_id = m->thread_id;
	snprintf(a->sender_handle, sizeof(a->sender_handle), "%s", rq->handle);
	a->client_ts = m->timestamp;
	a->expires_ms = j->now_ms + cfg->relay.ttl_ms;
	a->queue_limit = cfg->relay.queue_limit;
	a->sender_queue_limit = cfg->relay.sender_queue_limit;
	rc = store__job_set_handle(j, m->agent);
	if (rc == PARLEY_OK)
		rc = job_event(j, &m->events[0]);
	if (rc == PARLEY_OK && m->n_events > 1) {
		/* the second event in its own field (job_event fills the first) */
		if ((a->event2 = parley__malloc(m->events[1].len)) == NULL)
			rc = PARLEY_E_NOMEM;
		else {
			memcpy(a->event2, m->events[1].data, m->events[1].len);
			a->event2_len = m->events[1].len;
		}
	}
	if (rc == PARLEY_OK)
		rc = job_payloads(j, m, cfg->relay.max_content);
	submit(rq, j, req->body_case, rc);
}

static void route_get(request *rq, const Parley__Wire__Request *req)
{
	store_job *j = job_for(rq, STORE_OP_THREAD_GET);
	if (j == NULL)
		return;
	j->thr.thread_id = req->thread_get->thread_id;
	submit(rq, j, req->body_case, PARLEY_OK);
}

static void route_list(request *rq, const Parley__Wire__Request *req)
{
	const Parley__Wire__ThreadListRequest *m = req->thread_list;
	store_job *j;

	if (m->entity[0] != '\0' && !wire__handle_valid(m->entity)) {
		request__fail(rq, PARLEY_E_NO_SUCH_ENTITY);
		return;
	}
	if ((j = job_for(rq, STORE_OP_THREAD_LIST)) == NULL)
		return;
	snprintf(j->thr.entity, sizeof(j->thr.entity), "%s", m->entity);
	j->thr.thread_id = m->before_id;
	j->thr.limit = m->limit;
	submit(rq, j, req->body_case, PARLEY_OK);
}

static const route routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN, "thread_open", 1, route_open},
	{PARLEY__WIRE__REQUEST__BODY_THREAD_SEND, "thread_send", 1, route_send},
	{PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT, "thread_event", 1, route_event},
	{PARLEY__WIRE__REQUEST__BODY_THREAD_FORWARD, "thread_forward", 1, route_forward},
	{PARLEY__WIRE__REQUEST__BODY_THREAD_GET, "thread_get", 1, route_get},
	{PARLEY__WIRE__REQUEST__BODY_THREAD_LIST, "thread_list", 1, route_list},
};

static const mbox_fn mailbox[] = {worker__send_frame};

const service threads__service = {
	.name = "threads",
	SERVICE_ROUTES(routes),
	SERVICE_MAILBOX(mailbox),
	.init = init,
	.fini = service__free_state,
};
