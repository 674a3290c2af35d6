/* Store, threads: the group send and the membership events (threads_internal.h). */
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "proto/parley.pb-c.h"
#include "store/sql/threads_internal.h"
#include "wire/wire.h"

#define BAD PARLEY_E_THREAD_EVENT_INVALID

/* every device with keys of every member account: the group's recipients */
static const char SQL_RCPTS[] = "SELECT k.account_id, k.device_id, k.queue_len FROM thread_members m"
				" JOIN device_keys k ON k.account_id = m.account_id WHERE m.thread_id = ?1"
				" ORDER BY k.account_id, k.device_id";
static const char SQL_COUNT_RCPTS[] = "SELECT count(*) FROM thread_members m JOIN device_keys k"
				      " ON k.account_id = m.account_id WHERE m.thread_id = ?1";
static const char SQL_TOUCH[] = "UPDATE threads SET updated_ms = ?2 WHERE id = ?1";

/* --- send --- */

struct rcpt {
	uint64_t account;
	uint32_t device, queue_len;
};

/* Whether `account`'s devices get j's send (docs/protocol.md §13.2): every member's, except that while
 * a handling agent is set, the customer's messages go only to that agent, the admins (by the entity's
 * current signed list) and the customer's own other devices. The other agents stay members (they read
 * and post what staff write) but a customer's words reach the one who handles the thread. Safe to
 * narrow on the server: the copy is encrypted with the sender key, which only decides who CAN read. */
static int routed(const store_job *j, const store_thread_info *t, const thr_staff *st, uint64_t account)
{
	int admin;
	if (t->handling_agent == 0 || j->caller_account != t->customer || account == t->customer ||
	    account == t->handling_agent)
		return 1;
	(void)sql__thr_staff_of(st, account, &admin);
	return admin;
}

/* The recipients (the routed member devices but the sending one) into r (allocated, *n of them). */
static int load_rcpts(store_be *b, const store_job *j, const store_thread_info *t, const thr_staff *st,
		      struct rcpt **r, size_t *n)
{
	uint64_t thread_id = t->thread_id;
	int64_t count = 0;
	int sr = sql__query_int(b, SQL_COUNT_RCPTS, (int64_t)thread_id, 0, &count);
	sql_stmt *s;

	*r = NULL;
	*n = 0;
	if (sr != SQL_ROW)
		return sql__error(b, "count recipients");
	if (count == 0)
		return PARLEY_OK;
	if ((*r = parley__calloc((size_t)count, sizeof(**r))) == NULL)
		return PARLEY_E_NOMEM;
	if ((s = sql__stmt(b, SQL_RCPTS)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)thread_id);
	while ((sr = sql__step(s)) == SQL_ROW && *n < (size_t)count) {
		struct rcpt *x = &(*r)[*n];
		x->account = (uint64_t)sql__col_i64(s, 0);
		x->device = (uint32_t)sql__col_i64(s, 1);
		x->queue_len = (uint32_t)sql__col_i64(s, 2);
		if (x->account == j->caller_account && x->device == j->caller_device)
			continue; /* the sender keeps its own copy */
		if (!routed(j, t, st, x->account))
			continue;
		(*n)++;
	}
	sql__reset(s);
	return sr == SQL_DONE || sr == SQL_ROW ? PARLEY_OK : sql__error(b, "recipients");
}

/* One envelope per recipient, all or nothing: the relay's queue limits first, for every queue. */
static int fan_out(store_be *b, store_job *j, const store_thread_info *t, const thr_staff *st)
{
	store_thread_args *a = &j->thr;
	struct rcpt *r = NULL;
	size_t n = 0;
	int rc = load_rcpts(b, j, t, st, &r, &n);

	for (size_t i = 0; rc == PARLEY_OK && i < n; i++)
		if (r[i].queue_len >= a->queue_limit)
			rc = PARLEY_E_QUEUE_FULL;
	for (size_t i = 0; rc == PARLEY_OK && i < n; i++)
		rc = sql__sender_room(b, r[i].account, r[i].device, r[i].queue_len, j->caller_account,
					 a->sender_queue_limit);
	if (rc == PARLEY_OK && n > 0 && (a->rcpts = parley__calloc(n, sizeof(*a->rcpts))) == NULL)
		rc = PARLEY_E_NOMEM;
	for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
		sql_env e = {
			.account = r[i].account,
			.device = r[i].device,
			.sender_account = j->caller_account,
			.sender_device = j->caller_device,
			.sender_handle = a->sender_handle,
			.type = a->payment ? PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PAYMENT_REQUEST
					   : PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_GROUP_MESSAGE,
			.client_ts = a->client_ts,
			.server_ts = j->now_ms,
			.expires_ms = a->expires_ms,
			.thread_id = t->thread_id,
			.content = a->content,
			.content_len = a->content_len,
		};
		store_thread_rcpt *o = &a->rcpts[i];
		o->account = r[i].account;
		o->device = r[i].device;
		rc = sql__enqueue(b, &e, &o->server_id);
		a->n_rcpts += rc == PARLEY_OK;
	}
	parley__free(r);
	return rc;
}

/* The first staff response on a first-responder entity takes the lock with its signed LOCK event, in
 * the send's transaction; any other send carries none. */
static int first_response(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st,
			  const wire_staff_member *me)
{
	wire_threadev ev;
	int need = me != NULL && st->l.lock_mode == THR_LOCK_FIRST_RESPONDER && t->lock_holder == 0;
	int rc;

	if (!need)
		return j->thr.event == NULL ? PARLEY_OK
					    : sql__thr_refuse(j, BAD, "a LOCK event only goes with a first response");
	if (j->thr.event == NULL)
		return sql__thr_refuse(j, BAD, "a first response on a locking entity carries its LOCK event");
	rc = sql__thr_check_event(b, j, t, st, j->thr.event, j->thr.event_len, WIRE_THREADEV_LOCK, &ev);
	if (rc != PARLEY_OK)
		return rc;
	t->status = THR_LOCKED;
	t->lock_holder = j->caller_account;
	t->version = ev.version;
	return sql__thr_commit(b, t, j->thr.event, j->thr.event_len, j->now_ms);
}

static int send_checked(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st)
{
	int admin;
	const wire_staff_member *me = sql__thr_staff_of(st, j->caller_account, &admin);
	int rc;

	if (!sql__thr_is_member(t, j->caller_account))
		return PARLEY_E_NOT_THREAD_MEMBER;
	if (t->status == THR_CLOSED)
		return PARLEY_E_THREAD_CLOSED;
	/* the lock is among staff: the customer always writes */
	if (t->status == THR_LOCKED && j->caller_account != t->customer && t->lock_holder != j->caller_account &&
	    !(admin && st->l.admins_exempt))
		return PARLEY_E_THREAD_LOCKED;
	if (j->thr.membership_version != t->version) {
		rc = sql__thr_result(j, t); /* the answer carries the current version */
		return rc == PARLEY_OK ? PARLEY_E_STALE_MEMBERSHIP : rc;
	}
	if (j->thr.payment && (me == NULL || !(wire__stafflist_effective_rules(&st->l, me) & WIRE_RULE_MAY_PAY)))
		return PARLEY_E_PAYMENT_NOT_ALLOWED;
	rc = first_response(b, j, t, st, me);
	if (rc == PARLEY_OK)
		rc = fan_out(b, j, t, st);
	if (rc == PARLEY_OK && j->thr.event == NULL) {
		sql_stmt *s = sql__stmt(b, SQL_TOUCH);
		if (s == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)t->thread_id);
		sql__bind_i64(s, 2, (int64_t)j->now_ms);
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "touch thread");
		t->updated_ms = j->now_ms;
	}
	return rc == PARLEY_OK ? sql__thr_result(j, t) : rc;
}

int sql__thread_send(store_be *b, store_job *j)
{
	store_thread_info t;
	thr_staff st;
	int rc = sql__thr_load(b, j->thr.thread_id, &t);
	if (rc == PARLEY_OK)
		rc = sql__thr_staff(b, t.entity_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = send_checked(b, j, &t, &st);
	sql__thr_staff_free(&st);
	return rc;
}

/* --- membership events --- */

/* The rules of each kind (docs/protocol.md §13.3) and its effect on t. forwarding: the events of a
 * ThreadForward, where the handling agent with MAY_TRANSFER may sign the ADD and HANDLING an admin would
 * (only there: on its own such an agent adds nobody, so a transfer always moves the handling too). */
static int apply(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st, const wire_threadev *ev,
		 int forwarding)
{
	int admin, sadmin, hands_on;
	uint64_t me = j->caller_account, who = ev->subject;
	const wire_staff_member *subject = sql__thr_staff_of(st, who, &sadmin);

	(void)sql__thr_staff_of(st, me, &admin);
	hands_on = admin || (forwarding && sql__thr_may_transfer(st, t, me));
	switch (ev->kind) {
	case WIRE_THREADEV_ADD:
		if (!hands_on)
			return sql__thr_refuse(j, BAD, "only an admin (or the handling agent, transferring) adds");
		if (subject == NULL)
			return sql__thr_refuse(j, BAD, "only a staff member of the entity is added");
		if (sql__thr_is_member(t, who))
			return PARLEY_E_ALREADY_MEMBER;
		return sql__thr_add_member(b, t, who, subject->role, j->now_ms);
	case WIRE_THREADEV_REMOVE:
		if (!sql__thr_is_member(t, who) || who == t->customer)
			return sql__thr_refuse(j, BAD, "only a staff member of the thread is removed");
		if (!admin && !(who == me && sql__thr_is_member(t, me)))
			return sql__thr_refuse(j, BAD, "only an admin removes another member");
		if (t->handling_agent == who)
			t->handling_agent = 0;
		if (t->lock_holder == who) {
			t->lock_holder = 0;
			t->status = THR_OPEN;
		}
		j->thr.removed = who;
		return sql__thr_del_member(b, t, who);
	case WIRE_THREADEV_HANDLING:
		if (!hands_on)
			return sql__thr_refuse(j, BAD, "only an admin (or the handling agent, transferring) sets it");
		if (subject == NULL || !sql__thr_is_member(t, who))
			return sql__thr_refuse(j, BAD, "the handling agent is a staff member of the thread: add it first");
		t->handling_agent = who;
		return PARLEY_OK;
	case WIRE_THREADEV_UNLOCK:
		if (t->status != THR_LOCKED)
			return sql__thr_refuse(j, BAD, "the thread is not locked");
		if (!admin && t->lock_holder != me)
			return sql__thr_refuse(j, BAD, "only an admin or the lock holder unlocks");
		t->status = THR_OPEN;
		t->lock_holder = 0;
		return PARLEY_OK;
	case WIRE_THREADEV_CLOSE:
		if (!admin && me != t->handling_agent && me != t->customer)
			return sql__thr_refuse(j, BAD, "only an admin, the handling agent or the customer closes");
		t->status = THR_CLOSED;
		return PARLEY_OK;
	case WIRE_THREADEV_HANDBACK:
		if (t->handling_agent == 0 || me != t->handling_agent)
			return sql__thr_refuse(j, BAD, "only the handling agent hands back");
		if (who != 0 && subject == NULL)
			return sql__thr_refuse(j, BAD, "a thread is handed back to the admins or a staff member");
		t->handling_agent = who;
		/* the one handing back lets go of its lock too: whoever takes over must be able to answer */
		if (t->lock_holder == me) {
			t->lock_holder = 0;
			t->status = THR_OPEN;
		}
		return who != 0 ? sql__thr_add_member(b, t, who, subject->role, j->now_ms) : PARLEY_OK;
	case WIRE_THREADEV_LOCK:
		/* `thread lock`: a staff member of the thread takes a lock nobody holds, for itself (the
		 * codec holds subject = actor); a first responder's lock comes with its send instead */
		if (sql__thr_staff_of(st, me, &admin) == NULL || !sql__thr_is_member(t, me))
			return sql__thr_refuse(j, BAD, "only a staff member of the thread locks it");
		if (t->status != THR_OPEN)
			return sql__thr_refuse(j, BAD, "the thread is already locked");
		t->status = THR_LOCKED;
		t->lock_holder = me;
		return PARLEY_OK;
	default:
		return sql__thr_refuse(j, BAD, "a thread is opened by ThreadOpen");
	}
}

int sql__thread_event(store_be *b, store_job *j)
{
	store_thread_info t;
	thr_staff st;
	wire_threadev ev;
	int rc = sql__thr_load(b, j->thr.thread_id, &t);
	if (rc == PARLEY_OK && t.status == THR_CLOSED)
		rc = PARLEY_E_THREAD_CLOSED;
	if (rc == PARLEY_OK)
		rc = sql__thr_staff(b, t.entity_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = sql__thr_check_event(b, j, &t, &st, j->thr.event, j->thr.event_len, 0, &ev);
	if (rc == PARLEY_OK)
		rc = apply(b, j, &t, &st, &ev, 0);
	if (rc == PARLEY_OK) {
		t.version = ev.version;
		rc = sql__thr_commit(b, &t, j->thr.event, j->thr.event_len, j->now_ms);
	}
	if (rc == PARLEY_OK)
		rc = sql__thr_result(j, &t);
	sql__thr_staff_free(&st);
	return rc;
}

/* --- forward --- */

/* One event of a forward: signed by the caller for this thread's next version, of `kind`, naming the
 * agent; its effect and the event committed. */
static int forward_event(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st, const uint8_t *buf,
			 size_t len, unsigned kind, uint64_t agent)
{
	wire_threadev ev;
	int rc = sql__thr_check_event(b, j, t, st, buf, len, kind, &ev);
	if (rc == PARLEY_OK && ev.subject != agent)
		rc = sql__thr_refuse(j, BAD, "a forward's events name the agent it forwards to");
	if (rc == PARLEY_OK)
		rc = apply(b, j, t, st, &ev, 1);
	if (rc != PARLEY_OK)
		return rc;
	t->version = ev.version;
	return sql__thr_commit(b, t, buf, len, j->now_ms);
}

/* The payloads: exactly the agent's devices with keys (as SendMessage), within the queue limits, queued
 * as pairwise envelopes from the caller (the bundle travels end to end; the server only stores it). */
static int forward_payloads(store_be *b, store_job *j, uint64_t agent)
{
	store_thread_args *a = &j->thr;
	sql_expected e[WIRE_MAX_OUTGOING];
	sql_mismatch mm = {0};
	size_t ne = 0;
	int rc = sql__load_expected(b, agent, j->caller_account, j->caller_device, e, WIRE_MAX_OUTGOING, &ne);
	if (rc == PARLEY_OK)
		rc = sql__check_devices(a->msgs, a->n_msgs, e, ne, &mm);
	parley__free(mm.missing);
	parley__free(mm.extra);
	parley__free(mm.stale);
	for (size_t i = 0; rc == PARLEY_OK && i < ne; i++)
		rc = e[i].queue_len >= a->queue_limit ? PARLEY_E_QUEUE_FULL
						      : sql__sender_room(b, agent, e[i].device_id, e[i].queue_len,
									    j->caller_account, a->sender_queue_limit);
	if (rc == PARLEY_OK && a->n_msgs > 0 && (a->rcpts = parley__calloc(a->n_msgs, sizeof(*a->rcpts))) == NULL)
		rc = PARLEY_E_NOMEM;
	for (size_t i = 0; rc == PARLEY_OK && i < a->n_msgs; i++) {
		store_out_msg *o = &a->msgs[i];
		sql_env env = {
			.account = agent,
			.device = o->device_id,
			.sender_account = j->caller_account,
			.sender_device = j->caller_device,
			.sender_handle = a->sender_handle,
			.type = o->type,
			.client_ts = a->client_ts,
			.server_ts = j->now_ms,
			.expires_ms = a->expires_ms,
			.content = o->content,
			.content_len = o->content_len,
		};
		a->rcpts[i].account = agent;
		a->rcpts[i].device = o->device_id;
		rc = sql__enqueue(b, &env, &o->server_id);
		a->rcpts[i].server_id = o->server_id;
		a->n_rcpts += rc == PARLEY_OK;
	}
	return rc;
}

static int forward_checked(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st)
{
	store_thread_args *a = &j->thr;
	uint64_t agent = 0;
	int admin, sadmin;
	int rc;

	(void)sql__thr_staff_of(st, j->caller_account, &admin);
	if (!admin && !sql__thr_may_transfer(st, t, j->caller_account))
		return PARLEY_E_NOT_ENTITY_ADMIN;
	rc = sql__account_by_handle(b, j->handle, &agent);
	if (rc != PARLEY_OK)
		return rc;
	if (sql__thr_staff_of(st, agent, &sadmin) == NULL)
		return PARLEY_E_NOT_ENTITY_MEMBER;
	/* ADD then HANDLING; an agent already in the thread: the HANDLING alone */
	if (!sql__thr_is_member(t, agent)) {
		if (a->event2 == NULL)
			return sql__thr_refuse(j, BAD, "a forward to a new member carries ADD then HANDLING");
		rc = forward_event(b, j, t, st, a->event, a->event_len, WIRE_THREADEV_ADD, agent);
		if (rc == PARLEY_OK)
			rc = forward_event(b, j, t, st, a->event2, a->event2_len, WIRE_THREADEV_HANDLING, agent);
	} else if (a->event2 != NULL) {
		return sql__thr_refuse(j, BAD, "a forward to a member carries the HANDLING event only");
	} else {
		rc = forward_event(b, j, t, st, a->event, a->event_len, WIRE_THREADEV_HANDLING, agent);
	}
	if (rc == PARLEY_OK)
		rc = forward_payloads(b, j, agent);
	return rc == PARLEY_OK ? sql__thr_result(j, t) : rc;
}

int sql__thread_forward(store_be *b, store_job *j)
{
	store_thread_info t;
	thr_staff st;
	int rc = sql__thr_load(b, j->thr.thread_id, &t);
	if (rc == PARLEY_OK && t.status == THR_CLOSED)
		rc = PARLEY_E_THREAD_CLOSED;
	if (rc == PARLEY_OK)
		rc = sql__thr_staff(b, t.entity_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = forward_checked(b, j, &t, &st);
	sql__thr_staff_free(&st);
	return rc;
}
