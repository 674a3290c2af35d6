/* Raw-wire thread calls shared by the thread tests (threadwire.h). */
#include "threadwire.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <parley/error.h>

#include "harness.h"

void ent_create(const tacct *p, model *md, const char *handle, uint8_t lock_mode)
{
	sm_entity(md, p, handle, lock_mode, lock_mode);
}

void ent_add(const tacct *p, model *md, const tacct *who, int role, uint8_t rules)
{
	dynbuf l;
	sm_model_set(md, who, role, 0, rules);
	sm_sign(md, md->version + 1, NULL, &l);
	if (role == WIRE_ROLE_ADMIN) {
		IT_EQ(sm_member(p->fd, md, who, 0, 0, md->version + 1, NULL), PARLEY_OK);
	} else {
		char code[32];
		uint64_t req_id = 0;
		IT_EQ(sm_code_role(p->fd, md->handle, 0, role, code, sizeof(code)), PARLEY_OK);
		IT_EQ(sm_join(who->fd, md->handle, code, NULL, &req_id, NULL), PARLEY_OK);
		IT_EQ(sm_decide(p->fd, md->handle, req_id, 1, &l, NULL, 0, NULL), PARLEY_OK);
	}
	md->version++;
	dynbuf__free(&l);
}

void ent_remove(const tacct *p, model *md, const tacct *who)
{
	sm_model_set(md, who, 0, 0, 0);
	IT_EQ(sm_member(p->fd, md, who, 1, 0, md->version + 1, NULL), PARLEY_OK);
	md->version++;
}


/* a's event, channel customer included (0, NULL: native) */
static tev ev_signed(const tacct *a, const model *md, uint64_t tid, unsigned kind, uint64_t subject,
		     uint64_t version, const uint8_t *sk, uint32_t channel, const char *channel_user)
{
	wire_threadev e;
	tev out;
	memset(&e, 0, sizeof(e));
	snprintf(e.entity, sizeof(e.entity), "%s", md->handle);
	e.thread_id = tid;
	e.version = version;
	e.kind = (uint8_t)kind;
	e.subject = subject;
	e.actor = a->id;
	e.actor_device = 1;
	e.staff_version = md->version;
	e.timestamp_ms = it_now_ms();
	e.channel = channel;
	snprintf(e.channel_user, sizeof(e.channel_user), "%s", channel_user != NULL ? channel_user : "");
	IT_EQ(wire__threadev_sign(&e, sk != NULL ? sk : a->sk, out.b, sizeof(out.b), &out.len), PARLEY_OK);
	return out;
}

tev ev_by(const tacct *a, const model *md, uint64_t tid, unsigned kind, uint64_t subject, uint64_t version,
	  const uint8_t *sk)
{
	return ev_signed(a, md, tid, kind, subject, version, sk, 0, NULL);
}

tev ev_open_channel(const tacct *a, const model *md, uint32_t channel, const char *channel_user)
{
	return ev_signed(a, md, 0, WIRE_THREADEV_OPEN, a->id, 1, NULL, channel, channel_user);
}

void info_from(tinfo *o, const Parley__Wire__ThreadInfo *t)
{
	memset(o, 0, sizeof(*o));
	o->id = t->thread_id;
	o->version = t->membership_version;
	o->lock_holder = t->lock_holder;
	o->handling = t->handling_agent;
	o->status = (int)t->status;
	o->channel = t->channel;
	snprintf(o->channel_user, sizeof(o->channel_user), "%s", t->channel_user != NULL ? t->channel_user : "");
	snprintf(o->gateway, sizeof(o->gateway), "%s", t->gateway != NULL ? t->gateway : "");
	o->verification = (unsigned)t->verification;
	o->n_members = t->n_members < 16 ? t->n_members : 16;
	memcpy(o->members, t->members, o->n_members * sizeof(uint64_t));
}

int th_open(int fd, const char *entity, const char *customer, const tev *ev, tinfo *out)
{
	return th_open_channel(fd, entity, customer, 0, NULL, ev, out);
}

int th_open_channel(int fd, const char *entity, const char *customer, uint32_t channel, const char *channel_user,
		    const tev *ev, tinfo *out)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadOpenRequest m = PARLEY__WIRE__THREAD_OPEN_REQUEST__INIT;
	wire_frame f;
	m.entity = (char *)entity;
	m.customer = (char *)(customer != NULL ? customer : "");
	m.channel = channel;
	m.channel_user = (char *)(channel_user != NULL ? channel_user : "");
	m.event.data = (uint8_t *)ev->b;
	m.event.len = ev->len;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN;
	r.thread_open = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && out != NULL)
		info_from(out, f.frame->response->thread_open->thread);
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int th_send_full(int fd, uint64_t tid, uint64_t version, int payment, const tev *lock, uint64_t *out)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadSendRequest m = PARLEY__WIRE__THREAD_SEND_REQUEST__INIT;
	static const uint8_t ct[] = "sender-key-message";
	wire_frame f;
	m.thread_id = tid;
	m.timestamp = it_now_ms();
	m.ciphertext.data = (uint8_t *)ct;
	m.ciphertext.len = sizeof(ct);
	m.membership_version = version;
	m.payment_request = payment;
	if (lock != NULL) {
		m.lock_event.data = (uint8_t *)lock->b;
		m.lock_event.len = lock->len;
	}
	r.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_SEND;
	r.thread_send = &m;
	int st = sm_call(fd, &r, &f);
	if (st >= 0 && out != NULL)
		*out = f.frame->response->body_case == PARLEY__WIRE__RESPONSE__BODY_THREAD_SEND
			       ? f.frame->response->thread_send->membership_version
			       : 0;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int th_send(int fd, uint64_t tid, uint64_t version)
{
	return th_send_full(fd, tid, version, 0, NULL, NULL);
}

int th_event(int fd, uint64_t tid, const tev *ev)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadEventRequest m = PARLEY__WIRE__THREAD_EVENT_REQUEST__INIT;
	m.thread_id = tid;
	m.event.data = (uint8_t *)ev->b;
	m.event.len = ev->len;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT;
	r.thread_event = &m;
	return sm_call(fd, &r, NULL);
}

int th_forward(const tacct *by, uint64_t tid, const tacct *agent, const tev *evs, size_t n,
		 const uint32_t *devs, const uint32_t *regids, size_t n_devs)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadForwardRequest m = PARLEY__WIRE__THREAD_FORWARD_REQUEST__INIT;
	Parley__Wire__OutgoingMessage out[4], *pout[4];
	ProtobufCBinaryData b[2];
	static const uint8_t bundle[] = "forward-bundle";
	for (size_t i = 0; i < n; i++) {
		b[i].data = (uint8_t *)evs[i].b;
		b[i].len = evs[i].len;
	}
	for (size_t i = 0; i < n_devs; i++) {
		parley__wire__outgoing_message__init(&out[i]);
		out[i].device_id = devs[i];
		out[i].registration_id = regids[i];
		out[i].type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
		out[i].content.data = (uint8_t *)bundle;
		out[i].content.len = sizeof(bundle);
		pout[i] = &out[i];
	}
	m.thread_id = tid;
	m.agent = (char *)agent->handle;
	m.events = b;
	m.n_events = n;
	m.payloads = pout;
	m.n_payloads = n_devs;
	m.timestamp = it_now_ms();
	r.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_FORWARD;
	r.thread_forward = &m;
	return sm_call(by->fd, &r, NULL);
}

int th_get(int fd, uint64_t tid, tinfo *out, size_t *n_events)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadGetRequest m = PARLEY__WIRE__THREAD_GET_REQUEST__INIT;
	wire_frame f;
	m.thread_id = tid;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_GET;
	r.thread_get = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && out != NULL)
		info_from(out, f.frame->response->thread_get->thread);
	if (st == PARLEY_OK && n_events != NULL)
		*n_events = f.frame->response->thread_get->n_events;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int th_list(int fd, const char *entity, size_t *n)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadListRequest m = PARLEY__WIRE__THREAD_LIST_REQUEST__INIT;
	wire_frame f;
	m.entity = (char *)(entity != NULL ? entity : "");
	r.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_LIST;
	r.thread_list = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && n != NULL)
		*n = f.frame->response->thread_list->n_threads;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int queued(int port, const tacct *a, uint32_t device, const uint8_t *sk, uint64_t tid, uint32_t *type)
{
	int fd = it_connect_as(port, a->handle, device, sk != NULL ? sk : a->sk);
	uint64_t ids[100];
	size_t n_ids = 0;
	int n = 0;
	IT_CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, 5000) != 0) {
			n = -1;
			break;
		}
		const Parley__Wire__Frame *fr = f.frame;
		int done = 0;
		if (fr->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH) {
			if (fr->push->body_case == PARLEY__WIRE__PUSH__BODY_QUEUE_EMPTY)
				done = 1;
			if (fr->push->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
				const Parley__Wire__Envelope *e = fr->push->envelope;
				if (n_ids < 100)
					ids[n_ids++] = e->server_id;
				if (e->thread_id == tid) {
					n++;
					if (type != NULL)
						*type = (uint32_t)e->type;
				}
			}
		}
		wire__frame_free(&f);
		if (done)
			break;
	}
	if (n_ids > 0) {
		Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__AckRequest m = PARLEY__WIRE__ACK_REQUEST__INIT;
		m.server_ids = ids;
		m.n_server_ids = n_ids;
		r.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
		r.ack = &m;
		IT_EQ(sm_call(fd, &r, NULL), PARLEY_OK);
	}
	close(fd);
	return n;
}

int got_push(int fd, int body, uint64_t tid)
{
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, 3000) != 0)
			return 0;
		const Parley__Wire__Frame *fr = f.frame;
		int hit = fr->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH && (int)fr->push->body_case == body &&
			  (body != PARLEY__WIRE__PUSH__BODY_ENVELOPE || fr->push->envelope->thread_id == tid);
		wire__frame_free(&f);
		if (hit)
			return 1;
	}
}

int got_changed(int fd)
{
	return got_push(fd, PARLEY__WIRE__PUSH__BODY_THREAD_CHANGED, 0);
}

int has_member(const tinfo *t, uint64_t id)
{
	for (size_t i = 0; i < t->n_members; i++)
		if (t->members[i] == id)
			return 1;
	return 0;
}

