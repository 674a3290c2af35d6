/* Store, threads (docs/protocol.md §13): a customer's conversation with an entity, its member
 * accounts and its signed membership events, versioned as their own schema "server.threads".
 *
 * Like the entity registry, every op checks its caller here, in the op's own transaction, against the
 * entity's CURRENT signed staff list (who is an admin, the rules, the lock mode) and the caller
 * device's stored key (the signed event): nothing is cached, so a staff member removed on one loop is
 * refused on its very next call on any loop, and removal also drops it from the entity's threads in
 * the removal's own transaction (sql__threads_drop_member), so the fan-out stops at once.
 */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/threads_internal.h"
#include "wire/wire_threads.h"

static const char SQL_STAFF[] = "SELECT staff_list FROM entities WHERE id = ?1";
static const char SQL_ENTITY_ID[] = "SELECT id FROM entities WHERE handle = ?1";
static const char SQL_THREAD[] = "SELECT t.entity_id, e.handle, t.customer, a.handle, t.channel, t.status,"
				 " t.handling_agent, t.lock_holder, t.version, t.created_ms, t.updated_ms,"
				 " t.channel_user FROM threads t"
				 " JOIN entities e ON e.id = t.entity_id JOIN accounts a ON a.id = t.customer"
				 " WHERE t.id = ?1";
static const char SQL_MEMBERS[] = "SELECT account_id FROM thread_members WHERE thread_id = ?1"
				  " ORDER BY role_at_add, added_ms, account_id";
static const char SQL_DEVICE_KEY[] = "SELECT pubkey FROM devices WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_ADD_EVENT[] = "INSERT INTO thread_events(thread_id, version, event) VALUES (?1, ?2, ?3)";
static const char SQL_SET_THREAD[] = "UPDATE threads SET status = ?2, handling_agent = ?3, lock_holder = ?4,"
				     " version = ?5, updated_ms = ?6 WHERE id = ?1";
static const char SQL_ADD_MEMBER[] = "INSERT INTO thread_members(thread_id, account_id, role_at_add, added_ms)"
				     " VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DEL_MEMBER[] = "DELETE FROM thread_members WHERE thread_id = ?1 AND account_id = ?2";
/* a customer's threads with an entity are counted, and its open one found, per (channel, channel_user):
 * a gateway is one account for every channel customer it serves */
static const char SQL_OPEN_OF[] = "SELECT id FROM threads WHERE customer = ?1 AND entity_id = ?2 AND channel = ?3"
				  " AND channel_user = ?4 AND status != 3 ORDER BY id LIMIT 1";
static const char SQL_COUNT_OPEN[] = "SELECT count(*) FROM threads WHERE customer = ?1 AND entity_id = ?2"
				     " AND channel = ?3 AND channel_user = ?4 AND status != 3";
static const char SQL_NEW_THREAD[] = "INSERT INTO threads(entity_id, customer, status, version, created_ms,"
				     " updated_ms, channel, channel_user) VALUES (?1, ?2, 1, 1, ?3, ?3, ?4, ?5)";
static const char SQL_EVENTS[] = "SELECT event FROM (SELECT version, event FROM thread_events WHERE thread_id = ?1"
				 " ORDER BY version DESC LIMIT ?2) AS latest ORDER BY version";
/* a gateway (role 4) is a member but not staff: it lists its own threads, as a customer does */
static const char SQL_IS_STAFF[] = "SELECT count(*) FROM entity_members WHERE entity_id = ?1 AND account_id = ?2"
				   " AND role != 4";
static const char SQL_LIST_ENTITY[] = "SELECT id FROM threads WHERE entity_id = ?1 AND id < ?2 ORDER BY id DESC"
				      " LIMIT ?3";
static const char SQL_LIST_CUSTOMER[] = "SELECT id FROM threads WHERE customer = ?1 AND id < ?2 ORDER BY id DESC"
					" LIMIT ?3";
/* the removal hook: out of every thread of the entity, and no longer its handling agent or lock holder;
 * a removed gateway stays the customer of its channel threads (staff clients then show them as
 * unverified channels: the signed list no longer names it) */
static const char SQL_DROP_MEMBER[] = "DELETE FROM thread_members WHERE account_id = ?2 AND thread_id IN"
				      " (SELECT id FROM threads WHERE entity_id = ?1 AND customer != ?2)";
static const char SQL_DROP_AGENT[] = "UPDATE threads SET handling_agent = 0, updated_ms = ?3 WHERE entity_id = ?1"
				     " AND handling_agent = ?2";
static const char SQL_DROP_LOCK[] = "UPDATE threads SET lock_holder = 0, status = 1, updated_ms = ?3"
				    " WHERE entity_id = ?1 AND lock_holder = ?2 AND status = 2";

int sql__thr_refuse(store_job *j, int code, const char *why)
{
	j->thr.why = why;
	return code;
}

/* --- the staff list, the thread, the event --- */

int sql__thr_staff(store_be *b, uint64_t entity, thr_staff *st)
{
	sql_stmt *s = sql__stmt(b, SQL_STAFF);
	int rc = PARLEY_E_NO_SUCH_ENTITY;
	memset(st, 0, sizeof(*st));
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)entity);
	if (sql__step(s) == SQL_ROW) {
		int n = sql__col_bytes(s, 0);
		st->buf = n > 0 ? parley__malloc((size_t)n) : NULL;
		rc = st->buf != NULL ? PARLEY_OK : PARLEY_E_NOMEM;
		if (rc == PARLEY_OK) {
			memcpy(st->buf, sql__col_blob(s, 0), (size_t)n);
			st->len = (size_t)n;
		}
	}
	sql__reset(s);
	if (rc != PARLEY_OK)
		return rc;
	/* the stored list was checked when it was stored; parsed again here because the rules, roles and
	 * lock mode are read from it (its signature check is the price of not keeping a second copy) */
	rc = wire__stafflist_verify(st->buf, st->len, &st->l);
	st->parsed = rc == PARLEY_OK;
	if (rc != PARLEY_OK)
		sql__thr_staff_free(st);
	return rc == PARLEY_OK ? PARLEY_OK : PARLEY_E_STORE;
}

void sql__thr_staff_free(thr_staff *st)
{
	if (st->parsed)
		wire__stafflist_free(&st->l);
	parley__free(st->buf);
	memset(st, 0, sizeof(*st));
}

const wire_staff_member *sql__thr_staff_of(const thr_staff *st, uint64_t account, int *admin)
{
	/* a gateway is no staff: never added, handed, forwarded to, nor the actor of a staff event */
	const wire_staff_member *m = wire__stafflist_staff(&st->l, account);
	*admin = m != NULL && m->role == WIRE_ROLE_ADMIN;
	return m;
}

static void col_text(sql_stmt *s, int col, char *dst, size_t cap)
{
	const unsigned char *t = sql__col_text(s, col);
	snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static int load_members(store_be *b, store_thread_info *t)
{
	sql_stmt *s = sql__stmt(b, SQL_MEMBERS);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	t->n_members = 0;
	while ((sr = sql__step(s)) == SQL_ROW)
		if (t->n_members < STORE_THREAD_MAX_MEMBERS)
			t->members[t->n_members++] = (uint64_t)sql__col_i64(s, 0);
	sql__reset(s);
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "thread members");
}

int sql__thr_load(store_be *b, uint64_t thread_id, store_thread_info *t)
{
	sql_stmt *s = sql__stmt(b, SQL_THREAD);
	int sr;
	memset(t, 0, sizeof(*t));
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)thread_id);
	sr = sql__step(s);
	if (sr == SQL_ROW) {
		t->thread_id = thread_id;
		t->entity_id = (uint64_t)sql__col_i64(s, 0);
		col_text(s, 1, t->entity, sizeof(t->entity));
		t->customer = (uint64_t)sql__col_i64(s, 2);
		col_text(s, 3, t->customer_handle, sizeof(t->customer_handle));
		t->channel = (uint32_t)sql__col_i64(s, 4);
		t->status = (int)sql__col_i64(s, 5);
		t->handling_agent = (uint64_t)sql__col_i64(s, 6);
		t->lock_holder = (uint64_t)sql__col_i64(s, 7);
		t->version = (uint64_t)sql__col_i64(s, 8);
		t->created_ms = (uint64_t)sql__col_i64(s, 9);
		t->updated_ms = (uint64_t)sql__col_i64(s, 10);
		col_text(s, 11, t->channel_user, sizeof(t->channel_user));
		t->verification = wire__channel_baseline(t->channel);
	}
	sql__reset(s);
	if (sr == SQL_DONE)
		return PARLEY_E_NO_SUCH_THREAD;
	if (sr != SQL_ROW)
		return sql__error(b, "load thread");
	sr = load_members(b, t);
	return sr == PARLEY_OK ? sql__auth_overlay(b, t) : sr;
}

int sql__thr_may_transfer(const thr_staff *st, const store_thread_info *t, uint64_t account)
{
	const wire_staff_member *m = account != 0 && account == t->handling_agent ? wire__stafflist_find(&st->l, account)
										   : NULL;
	return m != NULL && (wire__stafflist_effective_rules(&st->l, m) & WIRE_RULE_MAY_TRANSFER) != 0;
}

int sql__thr_is_member(const store_thread_info *t, uint64_t account)
{
	for (size_t i = 0; i < t->n_members; i++)
		if (t->members[i] == account)
			return 1;
	return 0;
}

int sql__thr_check_event(store_be *b, store_job *j, const store_thread_info *t, const thr_staff *st,
			    const uint8_t *buf, size_t len, unsigned kind, wire_threadev *ev)
{
	const int bad = PARLEY_E_THREAD_EVENT_INVALID;
	uint8_t key[32];
	sql_stmt *s = sql__stmt(b, SQL_DEVICE_KEY);
	int found = 0;

	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->caller_account);
	sql__bind_i64(s, 2, j->caller_device);
	if (sql__step(s) == SQL_ROW && sql__col_bytes(s, 0) == (int)sizeof(key)) {
		memcpy(key, sql__col_blob(s, 0), sizeof(key));
		found = 1;
	}
	sql__reset(s);
	if (!found)
		return PARLEY_E_DEVICE_REMOVED;
	if (buf == NULL || wire__threadev_verify(buf, len, key, ev) != PARLEY_OK)
		return sql__thr_refuse(j, bad, "thread event malformed or not signed by this device");
	if (ev->actor != j->caller_account || ev->actor_device != j->caller_device)
		return sql__thr_refuse(j, bad, "thread event: the actor must be the calling device");
	if (kind != 0 && ev->kind != kind)
		return sql__thr_refuse(j, bad, "thread event of the wrong kind for this call");
	if (strcmp(ev->entity, t != NULL ? t->entity : j->thr.entity) != 0)
		return sql__thr_refuse(j, bad, "thread event names another entity");
	if (ev->thread_id != (t != NULL ? t->thread_id : 0))
		return sql__thr_refuse(j, bad, "thread event names another thread");
	if (ev->version != (t != NULL ? t->version + 1 : 1))
		return sql__thr_refuse(j, bad, "thread event version is not the thread's next");
	if (ev->staff_version != st->l.version)
		return sql__thr_refuse(j, bad, "thread event checked another staff list version: refresh");
	return PARLEY_OK;
}

static int exec_ids(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t p3, int n, const char *what)
{
	sql_stmt *s = sql__stmt(b, sql);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, p1);
	sql__bind_i64(s, 2, p2);
	if (n > 2)
		sql__bind_i64(s, 3, p3);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, what);
}

int sql__thr_commit(store_be *b, const store_thread_info *t, const uint8_t *ev, size_t len, uint64_t now_ms)
{
	sql_stmt *s = sql__stmt(b, SQL_ADD_EVENT);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, (int64_t)t->version);
	sql__bind_blob(s, 3, ev, (int)len);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "thread event");
	s = sql__stmt(b, SQL_SET_THREAD);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, t->status);
	sql__bind_i64(s, 3, (int64_t)t->handling_agent);
	sql__bind_i64(s, 4, (int64_t)t->lock_holder);
	sql__bind_i64(s, 5, (int64_t)t->version);
	sql__bind_i64(s, 6, (int64_t)now_ms);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "update thread");
}

int sql__thr_add_member(store_be *b, store_thread_info *t, uint64_t account, int role, uint64_t now_ms)
{
	sql_stmt *s;
	if (sql__thr_is_member(t, account))
		return PARLEY_OK;
	if (t->n_members >= STORE_THREAD_MAX_MEMBERS)
		return PARLEY_E_TOO_MANY_MEMBERS;
	s = sql__stmt(b, SQL_ADD_MEMBER);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, (int64_t)account);
	sql__bind_i64(s, 3, role);
	sql__bind_i64(s, 4, (int64_t)now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "add thread member");
	t->members[t->n_members++] = account;
	return PARLEY_OK;
}

int sql__thr_del_member(store_be *b, store_thread_info *t, uint64_t account)
{
	int rc = exec_ids(b, SQL_DEL_MEMBER, (int64_t)t->thread_id, (int64_t)account, 0, 2, "remove thread member");
	for (size_t i = 0; rc == PARLEY_OK && i < t->n_members; i++)
		if (t->members[i] == account) {
			memmove(&t->members[i], &t->members[i + 1], (t->n_members - i - 1) * sizeof(t->members[0]));
			t->n_members--;
			break;
		}
	return rc;
}

int sql__thr_result(store_job *j, const store_thread_info *t)
{
	if (j->thr.infos == NULL && (j->thr.infos = parley__calloc(1, sizeof(*j->thr.infos))) == NULL)
		return PARLEY_E_NOMEM;
	j->thr.infos[0] = *t;
	j->thr.n_infos = 1;
	return PARLEY_OK;
}

int sql__threads_drop_member(store_be *b, uint64_t entity, uint64_t account, uint64_t now_ms)
{
	int rc = exec_ids(b, SQL_DROP_MEMBER, (int64_t)entity, (int64_t)account, 0, 2, "drop thread member");
	if (rc == PARLEY_OK)
		rc = exec_ids(b, SQL_DROP_AGENT, (int64_t)entity, (int64_t)account, (int64_t)now_ms, 3, "drop agent");
	return rc == PARLEY_OK ? exec_ids(b, SQL_DROP_LOCK, (int64_t)entity, (int64_t)account, (int64_t)now_ms, 3,
					  "drop lock")
			       : rc;
}

/* --- open --- */

/* One integer of sql over the customer's threads with the entity on one channel (0 when none). */
static int one_of_customer(store_be *b, const char *sql, const store_job *j, const store_thread_info *t,
			   uint64_t *out)
{
	sql_stmt *s = sql__stmt(b, sql);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->customer);
	sql__bind_i64(s, 2, (int64_t)t->entity_id);
	sql__bind_i64(s, 3, j->thr.channel);
	sql__bind_text(s, 4, j->thr.channel_user, -1);
	sr = sql__step(s);
	*out = sr == SQL_ROW ? (uint64_t)sql__col_i64(s, 0) : 0;
	sql__reset(s);
	return sr == SQL_ROW || sr == SQL_DONE ? PARLEY_OK : sql__error(b, "thread query");
}

/* Who may open on which channel (docs/protocol.md §13.6): a channel only from a GATEWAY of the entity
 * in its current signed list, for a well-formed channel customer; the native channel never carries a
 * channel customer, and a gateway never opens a native thread (it is nobody's customer itself). */
static int channel_checked(store_job *j, const thr_staff *st)
{
	const wire_staff_member *m = wire__stafflist_find(&st->l, j->caller_account);
	int gateway = m != NULL && m->role == WIRE_ROLE_GATEWAY;

	if (j->thr.channel == 0 && (j->thr.channel_user[0] != '\0' || j->thr.channel_user_long))
		return sql__thr_refuse(j, PARLEY_E_CHANNEL_INVALID, "a native thread has no channel customer");
	if (j->thr.channel == 0)
		return gateway ? sql__thr_refuse(j, PARLEY_E_CHANNEL_INVALID, "a gateway opens channel threads only")
			       : PARLEY_OK;
	if (!gateway)
		return PARLEY_E_NOT_ENTITY_GATEWAY;
	if (j->handle[0] != '\0')
		return sql__thr_refuse(j, PARLEY_E_CHANNEL_INVALID, "a channel thread's customer is the gateway");
	if (j->thr.channel_user_long || !wire__channel_valid(j->thr.channel, j->thr.channel_user))
		return sql__thr_refuse(j, PARLEY_E_CHANNEL_INVALID,
					  "channel 1..4 with 1..64 printable ASCII (E.164 for sms and waba)");
	return PARLEY_OK;
}

static int entity_id(store_be *b, const char *handle, uint64_t *id)
{
	sql_stmt *s = sql__stmt(b, SQL_ENTITY_ID);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(s, 1, handle, -1);
	sr = sql__step(s);
	*id = sr == SQL_ROW ? (uint64_t)sql__col_i64(s, 0) : 0;
	sql__reset(s);
	return sr == SQL_ROW ? PARLEY_OK : sr == SQL_DONE ? PARLEY_E_NO_SUCH_ENTITY : sql__error(b, "entity");
}

/* Members of a new thread: the customer, the admins and the default agents (the rule DEFAULT_AGENT),
 * and a staff member who opened it: what every client derives from the signed list the OPEN names. */
static int initial_members(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st)
{
	int rc = sql__thr_add_member(b, t, t->customer, 0, j->now_ms);
	for (size_t i = 0; rc == PARLEY_OK && i < st->l.n; i++) {
		const wire_staff_member *m = &st->l.members[i];
		if (m->role == WIRE_ROLE_GATEWAY) /* never staff, whatever the rules say */
			continue;
		if (m->role == WIRE_ROLE_ADMIN || (wire__stafflist_effective_rules(&st->l, m) & WIRE_RULE_DEFAULT_AGENT) ||
		    m->account_id == j->caller_account)
			rc = sql__thr_add_member(b, t, m->account_id, m->role, j->now_ms);
	}
	return rc;
}

static int new_thread(store_be *b, const store_job *j, const store_thread_info *t)
{
	sql_stmt *s = sql__stmt(b, SQL_NEW_THREAD);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->entity_id);
	sql__bind_i64(s, 2, (int64_t)t->customer);
	sql__bind_i64(s, 3, (int64_t)j->now_ms);
	sql__bind_i64(s, 4, j->thr.channel);
	sql__bind_text(s, 5, j->thr.channel_user, -1);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "new thread");
}

static int open_checked(store_be *b, store_job *j, store_thread_info *t, const thr_staff *st)
{
	wire_threadev ev;
	int admin, rc;
	const wire_staff_member *me = sql__thr_staff_of(st, j->caller_account, &admin);
	uint64_t existing = 0, n = 0;

	rc = channel_checked(j, st);
	if (rc != PARLEY_OK)
		return rc;
	if (j->handle[0] != '\0') { /* staff-initiated */
		if (me == NULL)
			return PARLEY_E_NOT_ENTITY_MEMBER;
		if (!(wire__stafflist_effective_rules(&st->l, me) & WIRE_RULE_MAY_INITIATE))
			return PARLEY_E_NOT_ALLOWED_TO_INITIATE;
		rc = sql__account_by_handle(b, j->handle, &t->customer);
		if (rc != PARLEY_OK)
			return rc;
	} else {
		t->customer = j->caller_account;
	}
	/* a staff member is the entity, not its customer: its own thread would put it on both sides (a
	 * gateway is a member that is the customer side of its channel threads only) */
	if (wire__stafflist_find(&st->l, t->customer) != NULL && j->thr.channel == 0)
		return sql__thr_refuse(j, PARLEY_E_THREAD_EVENT_INVALID, "a staff member cannot be the customer");
	rc = sql__thr_check_event(b, j, NULL, st, j->thr.event, j->thr.event_len, WIRE_THREADEV_OPEN, &ev);
	if (rc != PARLEY_OK)
		return rc;
	if (ev.subject != t->customer)
		return sql__thr_refuse(j, PARLEY_E_THREAD_EVENT_INVALID, "an OPEN names the customer as subject");
	/* the channel customer is the one the gateway signed, not a request field beside it: staff are shown
	 * (and the phone binding and one-open-thread rule below key on) what the OPEN says */
	if (ev.channel != j->thr.channel || strcmp(ev.channel_user, j->thr.channel_user) != 0)
		return sql__thr_refuse(j, PARLEY_E_CHANNEL_INVALID,
					  "the channel and channel user must be the ones the signed OPEN names");
	/* a customer's open is idempotent: its open thread comes back (staff may open several) */
	rc = one_of_customer(b, SQL_OPEN_OF, j, t, &existing);
	if (rc == PARLEY_OK && existing != 0 && j->handle[0] == '\0') {
		j->thr.existing = 1;
		rc = sql__thr_load(b, existing, t);
		return rc == PARLEY_OK ? sql__thr_result(j, t) : rc;
	}
	if (rc == PARLEY_OK)
		rc = one_of_customer(b, SQL_COUNT_OPEN, j, t, &n);
	if (rc == PARLEY_OK && n >= j->thr.max_open)
		rc = PARLEY_E_TOO_MANY_THREADS;
	if (rc != PARLEY_OK)
		return rc;
	rc = new_thread(b, j, t);
	if (rc != PARLEY_OK)
		return rc;
	t->thread_id = (uint64_t)sql__last_id(b);
	t->status = THR_OPEN;
	t->version = 1;
	t->created_ms = t->updated_ms = j->now_ms;
	snprintf(t->entity, sizeof(t->entity), "%s", j->thr.entity);
	rc = initial_members(b, j, t, st);
	if (rc == PARLEY_OK)
		rc = sql__thr_commit(b, t, j->thr.event, j->thr.event_len, j->now_ms);
	if (rc != PARLEY_OK)
		return rc;
	/* the customer's handle, as the info carries it */
	rc = sql__thr_load(b, t->thread_id, t);
	return rc == PARLEY_OK ? sql__thr_result(j, t) : rc;
}

int sql__thread_open(store_be *b, store_job *j)
{
	store_thread_info t;
	thr_staff st;
	int rc;

	memset(&t, 0, sizeof(t));
	rc = entity_id(b, j->thr.entity, &t.entity_id);
	if (rc == PARLEY_OK)
		rc = sql__thr_staff(b, t.entity_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = open_checked(b, j, &t, &st);
	sql__thr_staff_free(&st);
	return rc;
}

/* --- get, list --- */

static int load_events(store_be *b, store_job *j, uint64_t thread_id)
{
	sql_stmt *s = sql__stmt(b, SQL_EVENTS);
	store_thread_args *a = &j->thr;
	int sr, rc = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	a->events = parley__calloc(STORE_THREAD_MAX_EVENTS, sizeof(*a->events));
	if (a->events == NULL)
		return PARLEY_E_NOMEM;
	sql__bind_i64(s, 1, (int64_t)thread_id);
	sql__bind_i64(s, 2, STORE_THREAD_MAX_EVENTS);
	while (rc == PARLEY_OK && (sr = sql__step(s)) == SQL_ROW && a->n_events < STORE_THREAD_MAX_EVENTS) {
		int n = sql__col_bytes(s, 0);
		store_thread_blob *e = &a->events[a->n_events];
		e->data = parley__malloc(n > 0 ? (size_t)n : 1);
		if (e->data == NULL) {
			rc = PARLEY_E_NOMEM;
			break;
		}
		if (n > 0)
			memcpy(e->data, sql__col_blob(s, 0), (size_t)n);
		e->len = (size_t)n;
		a->n_events++;
	}
	sql__reset(s);
	return rc;
}

int sql__thread_get(store_be *b, store_job *j)
{
	store_thread_info t;
	int rc = sql__thr_load(b, j->thr.thread_id, &t);
	if (rc != PARLEY_OK)
		return rc;
	if (!sql__thr_is_member(&t, j->caller_account))
		return PARLEY_E_NOT_THREAD_MEMBER;
	rc = sql__thr_result(j, &t);
	return rc == PARLEY_OK ? load_events(b, j, t.thread_id) : rc;
}

int sql__thread_list(store_be *b, store_job *j)
{
	store_thread_args *a = &j->thr;
	uint64_t ent = 0, ids[STORE_THREAD_MAX_LIST];
	size_t n = 0;
	int64_t staff = 0;
	int rc = PARLEY_OK, sr;
	unsigned limit = a->limit == 0 || a->limit > STORE_THREAD_MAX_LIST ? STORE_THREAD_MAX_LIST : a->limit;

	if (a->entity[0] != '\0') {
		rc = entity_id(b, a->entity, &ent);
		if (rc != PARLEY_OK)
			return rc;
		/* the registry's membership, as the entity ops read it: staff see the entity's threads */
		sr = sql__query_int(b, SQL_IS_STAFF, (int64_t)ent, (int64_t)j->caller_account, &staff);
		if (sr != SQL_ROW)
			return sql__error(b, "staff");
		if (staff == 0)
			return PARLEY_E_NOT_ENTITY_MEMBER;
	}
	sql_stmt *s = sql__stmt(b, ent != 0 ? SQL_LIST_ENTITY : SQL_LIST_CUSTOMER);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)(ent != 0 ? ent : j->caller_account));
	sql__bind_i64(s, 2, a->thread_id != 0 ? (int64_t)a->thread_id : INT64_MAX);
	sql__bind_i64(s, 3, limit);
	while ((sr = sql__step(s)) == SQL_ROW && n < limit)
		ids[n++] = (uint64_t)sql__col_i64(s, 0);
	sql__reset(s);
	if (sr != SQL_DONE && sr != SQL_ROW)
		return sql__error(b, "list threads");
	if (n == 0)
		return PARLEY_OK;
	a->infos = parley__calloc(n, sizeof(*a->infos));
	if (a->infos == NULL)
		return PARLEY_E_NOMEM;
	for (size_t i = 0; i < n && rc == PARLEY_OK; i++) {
		rc = sql__thr_load(b, ids[i], &a->infos[i]);
		a->n_infos += rc == PARLEY_OK;
	}
	return rc;
}
