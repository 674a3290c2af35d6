/* Message requests: typing and presence are ephemeral pushes between accounts that accepted each other
 * (store/sql/contacts.c): an account accepts a peer by sending it anything or with
 * ContactRequest{accept}, so a stranger's one message gets it neither the victim's presence nor a way
 * to push typing, until the victim replies or accepts. An account may also stop sharing its presence
 * altogether (PresenceSettingRequest). Neither push is stored: the store only answers who the peers
 * are. Both travel with MBOX_DROP (a lost typing indicator is harmless; presence is sent again on the
 * next change). */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "dispatch/service.h"
#include "relay/relay.h"
#include "wire/wire.h"

/* --- presence: the peer list comes from the store; the job carries everything it needs by value,
 * since the connection that triggered it may be gone when the answer arrives --- */

struct presence_req {
	worker *w;
	char handle[STORE_MAX_HANDLE + 1];
	uint64_t account;
	int online;
};

static void presence_peers(void *arg, int status, const void *result)
{
	const store_job *j = result;
	struct presence_req *q = arg;
	worker *w = q->w;
	if (status == PARLEY_OK && j->relay.n_peers > 0) {
		Parley__Wire__Presence pr = PARLEY__WIRE__PRESENCE__INIT;
		Parley__Wire__Push push = PARLEY__WIRE__PUSH__INIT;
		pr.handle = q->handle;
		pr.account_id = q->account;
		pr.online = q->online;
		pr.timestamp = parley__wall_ms();
		push.body_case = PARLEY__WIRE__PUSH__BODY_PRESENCE;
		push.presence = &pr;
		dynbuf *out = worker__scratch(w);
		/* worker__post copies the frame into each item and worker__send_frame only sends it, so the
		 * scratch buffer stays intact across the posts */
		if (wire__encode_push(&push, out) == PARLEY_OK)
			for (size_t i = 0; i < j->relay.n_peers; i++)
				(void)worker__post(w, &relay__service, MBOX_DROP, j->relay.peers[i], 0, 0, out->data,
						   out->len, worker__send_frame);
	}
	parley__free(q);
}

/* force: to every mutual contact, whatever the account's presence setting */
static void presence_push(worker *w, const relay_config *c, uint64_t account, const char *handle, int online,
			  int force)
{
	struct presence_req *q = parley__calloc(1, sizeof(*q));
	if (q == NULL)
		return;
	q->w = w;
	snprintf(q->handle, sizeof(q->handle), "%s", handle);
	q->account = account;
	q->online = online;
	relay__thread_peers(c, worker__store(w), account, force, presence_peers, q);
}

void relay__presence_changed(worker *w, const relay_config *c, uint64_t account, const char *handle, int online)
{
	presence_push(w, c, account, handle, online, 0);
}

/* --- the settings: accept/decline a peer, share presence or not --- */

/* Both answers are empty messages: the status, and on success the body of the request's kind. */
static void reply_empty(request *rq, int status, Parley__Wire__Response__BodyCase body_case)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__ContactResponse cr = PARLEY__WIRE__CONTACT_RESPONSE__INIT;
	Parley__Wire__PresenceSettingResponse pr = PARLEY__WIRE__PRESENCE_SETTING_RESPONSE__INIT;
	r.status = (uint32_t)status;
	if (status == PARLEY_OK) {
		r.body_case = body_case;
		if (body_case == PARLEY__WIRE__RESPONSE__BODY_CONTACT)
			r.contact = &cr;
		else
			r.presence_setting = &pr;
	}
	request__reply(rq, &r);
}

static void contact_answer(void *arg, int status, const void *result)
{
	reply_empty(arg, status, PARLEY__WIRE__RESPONSE__BODY_CONTACT);
}

void relay__route_contact(request *rq, const Parley__Wire__Request *req)
{
	relay__contact_set(worker__store(rq->w), rq->account, req->contact->handle, req->contact->accept,
			   parley__wall_ms(), contact_answer, rq);
}

static void presence_set_answer(void *arg, int status, const void *result)
{
	request *rq = arg;
	const store_job *j = result;
	/* Either way the contacts learn the new state at once: "online" when sharing again (the account is
	 * online: it asked), "offline" when it stops (sent whatever the setting now says, or the last
	 * "online" they saw would stay). */
	if (status == PARLEY_OK)
		presence_push(rq->w, rq->svc, rq->account, rq->handle, j->relay.shared, !j->relay.shared);
	reply_empty(rq, status, PARLEY__WIRE__RESPONSE__BODY_PRESENCE_SETTING);
}

void relay__route_presence_setting(request *rq, const Parley__Wire__Request *req)
{
	relay__presence_set(worker__store(rq->w), rq->account, req->presence_setting->share,
			    presence_set_answer, rq);
}

/* --- typing: the peer lookup (and the acceptance check) needs the store --- */

struct typing_req {
	request *rq;
	int started;
	uint64_t timestamp;
};

static void typing_answer(void *arg, int status, const void *result)
{
	const store_job *j = result;
	struct typing_req *t = arg;
	request *rq = t->rq;
	worker *w = rq->w;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__TypingResponse tr = PARLEY__WIRE__TYPING_RESPONSE__INIT;
	if (status == PARLEY_OK && !j->relay.shared)
		status = PARLEY_E_NOT_ACCEPTED;
	if (status == PARLEY_OK) {
		Parley__Wire__Typing ty = PARLEY__WIRE__TYPING__INIT;
		Parley__Wire__Push push = PARLEY__WIRE__PUSH__INIT;
		ty.sender_handle = rq->handle;
		ty.sender_account = rq->account;
		ty.sender_device = rq->device;
		ty.started = t->started;
		ty.timestamp = t->timestamp;
		push.body_case = PARLEY__WIRE__PUSH__BODY_TYPING;
		push.typing = &ty;
		dynbuf *out = worker__scratch(w);
		if (wire__encode_push(&push, out) == PARLEY_OK)
			(void)worker__post(w, &relay__service, MBOX_DROP, j->relay.recipient_account, 0, 0, out->data,
					   out->len, worker__send_frame);
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_TYPING;
		r.typing = &tr;
	}
	r.status = (uint32_t)status;
	parley__free(t);
	request__reply(rq, &r);
}

void relay__route_typing(request *rq, const Parley__Wire__Request *req)
{
	struct typing_req *t = parley__calloc(1, sizeof(*t));
	if (t == NULL) {
		request__fail(rq, PARLEY_E_NOMEM);
		return;
	}
	t->rq = rq;
	t->started = req->typing->started;
	t->timestamp = req->typing->timestamp;
	relay__find_peer(worker__store(rq->w), rq->account, req->typing->recipient, typing_answer, t);
}
