/* Threads on the client, local side (docs/protocol.md §13.4): what this device verified of each thread,
 * in client.db under its own schema "client.threads".
 *
 *   threads             one row per thread: entity, customer, status, handling agent, lock holder, the
 *                       membership version verified, this account's role, unread count, the own
 *                       sender-key epoch and whether a rotation is due before the next message
 *   thread_members      the member accounts the verified events make (customer role 0, staff roles)
 *   thread_events       the signed events, by version: a later replay must carry the same bytes
 *   thread_sent_keys    which devices of which member got our sender key of which epoch, and the
 *                       SKDM they got (its position: what a kind-6 request of theirs gets again)
 *   thread_key_requests when we last asked a sender device for its key (a bounded kind-6 request)
 *   (threads also keeps the channel customer of the verified OPEN, whether the server's ThreadInfo
 *   disputed it, and the verification level: thread_channel.c)
 * (the last four, and unread, are kept by thread_local.c)
 *
 * Membership is never taken from the server's word: it is the replay of the signed events against the
 * verified staff list (client__thread_apply), whose roles follow docs/protocol.md §13.3.
 */
#include <string.h>

#include "client/thread_core.h"
#include "common/alloc.h"
#include "common/migrate.h"

static const char *const thread_steps[] = {
	/* 1 */
	"CREATE TABLE threads (thread_id INTEGER PRIMARY KEY, entity TEXT NOT NULL, customer TEXT NOT NULL,"
	"  customer_account INTEGER NOT NULL, status INTEGER NOT NULL, handling_agent INTEGER NOT NULL,"
	"  lock_holder INTEGER NOT NULL, membership_version INTEGER NOT NULL, staff INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, unread INTEGER NOT NULL DEFAULT 0,"
	"  own_epoch INTEGER NOT NULL DEFAULT 1, rotate INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE thread_members (thread_id INTEGER NOT NULL, account INTEGER NOT NULL,"
	"  handle TEXT NOT NULL, role INTEGER NOT NULL, PRIMARY KEY (thread_id, account));"
	"CREATE TABLE thread_events (thread_id INTEGER NOT NULL, version INTEGER NOT NULL, blob BLOB NOT NULL,"
	"  PRIMARY KEY (thread_id, version));"
	"CREATE TABLE thread_sent_keys (thread_id INTEGER NOT NULL, epoch INTEGER NOT NULL, handle TEXT NOT NULL,"
	"  device INTEGER NOT NULL, skdm BLOB NOT NULL, PRIMARY KEY (thread_id, epoch, handle, device));"
	"CREATE TABLE thread_key_requests (thread_id INTEGER NOT NULL, handle TEXT NOT NULL,"
	"  device INTEGER NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (thread_id, handle, device));",
	/* 2 (issue 11): the channel of a gateway's thread as the server's ThreadInfo gave it (set once:
	 * chan_set), and the verification level it reports (thread_channel.c) */
	"ALTER TABLE threads ADD COLUMN channel INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE threads ADD COLUMN channel_user TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE threads ADD COLUMN chan_set INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE threads ADD COLUMN verification INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE threads ADD COLUMN verified_until_ms INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE threads ADD COLUMN verified_by TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX threads_channel ON threads(entity, channel, channel_user, status);",
	/* 3: channel and channel_user are the verified OPEN's (signed by the gateway), written by the replay;
	 * the server's ThreadInfo is only compared with them (chan_disputed: it once named another channel
	 * customer; chan_set is no longer used). Every OPEN kept before this step is a native one (the
	 * OPEN carried no channel then), so the signed channel of every kept thread is native. */
	"UPDATE threads SET channel = 0,"
	"  channel_user = '';"
	"ALTER TABLE threads ADD COLUMN chan_disputed INTEGER NOT NULL DEFAULT 0;",
};

static const migrate_schema thread_schema = {
	.name = "client.threads",
	MIGRATE_STEPS(thread_steps),
	.legacy_user_version = 0,
};

int client__thread_ready(parley_client *c)
{
	return client__schema_ready(c, &c->threads_ready, client__entity_ready, &thread_schema);
}

int client__thread_prep(parley_client *c, const char *sql, uint64_t thread_id, sqlite3_stmt **st)
{
	int rc = client__thread_ready(c);
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, sql, st);
	if (rc == PARLEY_OK)
		sqlite3_bind_int64(*st, 1, (sqlite3_int64)thread_id);
	return rc;
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

int client__thread_load(parley_client *c, uint64_t thread_id, client_thread *out)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c,
			 "SELECT entity, customer, customer_account, status, handling_agent, lock_holder,"
			 " membership_version, staff, channel, channel_user FROM threads WHERE thread_id = ?",
			 thread_id, &st);

	memset(out, 0, sizeof(*out));
	if (rc != PARLEY_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->thread_id = thread_id;
		col_text(st, 0, out->entity, sizeof(out->entity));
		col_text(st, 1, out->customer, sizeof(out->customer));
		out->customer_account = (uint64_t)sqlite3_column_int64(st, 2);
		out->status = sqlite3_column_int(st, 3);
		out->handling_agent = (uint64_t)sqlite3_column_int64(st, 4);
		out->lock_holder = (uint64_t)sqlite3_column_int64(st, 5);
		out->membership_version = (uint64_t)sqlite3_column_int64(st, 6);
		out->staff = sqlite3_column_int(st, 7);
		out->channel = (uint32_t)sqlite3_column_int64(st, 8);
		col_text(st, 9, out->channel_user, sizeof(out->channel_user));
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_E_NO_SUCH_THREAD : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

int client__thread_members(parley_client *c, uint64_t thread_id, thread_member *out, size_t max, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "SELECT account, handle, role FROM thread_members WHERE thread_id = ? ORDER BY role, account",
			 thread_id, &st);

	*n = 0;
	if (rc != PARLEY_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		out[*n].account = (uint64_t)sqlite3_column_int64(st, 0);
		col_text(st, 1, out[*n].handle, sizeof(out[*n].handle));
		out[*n].role = sqlite3_column_int(st, 2);
		(*n)++;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__thread_member(parley_client *c, uint64_t thread_id, const char *handle, thread_member *out, int *found)
{
	thread_member m[THREAD_MEMBERS_MAX];
	size_t n = 0;
	int rc = client__thread_members(c, thread_id, m, THREAD_MEMBERS_MAX, &n);

	*found = 0;
	for (size_t i = 0; rc == PARLEY_OK && i < n; i++)
		if (strcmp(m[i].handle, handle) == 0) {
			*out = m[i];
			*found = 1;
		}
	return rc;
}

/* ---- the verified replay ---- */

/* The thread as the replay changes it, saved at the end in one transaction. */
typedef struct replay {
	client_thread t;
	int known; /* a row existed */
	thread_member m[THREAD_MEMBERS_MAX];
	size_t n;
	int removed_any; /* a member left (REMOVE, or the staff list): our sender key rotates (a new epoch) */
} replay;

static thread_member *find_member(replay *r, uint64_t account)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].account == account)
			return &r->m[i];
	return NULL;
}

static int add_member(replay *r, uint64_t account, const char *handle, int role)
{
	if (find_member(r, account) != NULL)
		return PARLEY_OK;
	if (r->n == THREAD_MEMBERS_MAX)
		return PARLEY_E_THREAD_EVENT_INVALID;
	r->m[r->n].account = account;
	snprintf(r->m[r->n].handle, sizeof(r->m[r->n].handle), "%s", handle);
	r->m[r->n].role = role;
	r->n++;
	return PARLEY_OK;
}

static void drop_member(replay *r, uint64_t account)
{
	thread_member *m = find_member(r, account);
	if (m == NULL)
		return;
	*m = r->m[--r->n];
	if (r->t.handling_agent == account)
		r->t.handling_agent = 0;
	if (r->t.lock_holder == account) {
		r->t.lock_holder = 0;
		if (r->t.status == PARLEY_THREAD_LOCKED)
			r->t.status = PARLEY_THREAD_OPEN;
	}
}

static int load_replay(parley_client *c, uint64_t thread_id, replay *r)
{
	int rc = client__thread_load(c, thread_id, &r->t);

	r->n = 0;
	r->known = rc == PARLEY_OK;
	if (rc == PARLEY_E_NO_SUCH_THREAD) {
		memset(&r->t, 0, sizeof(r->t));
		r->t.thread_id = thread_id;
		return PARLEY_OK;
	}
	if (rc == PARLEY_OK)
		rc = client__thread_members(c, thread_id, r->m, THREAD_MEMBERS_MAX, &r->n);
	return rc;
}

/* The kept blob of version: *found, and whether it equals blob. */
static int kept_event(parley_client *c, uint64_t thread_id, uint64_t version, const uint8_t *blob, size_t len,
		      int *same)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "SELECT blob FROM thread_events WHERE thread_id = ? AND version = ?", thread_id, &st);

	*same = 0;
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 2, (sqlite3_int64)version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*same = (size_t)sqlite3_column_bytes(st, 0) == len && memcmp(sqlite3_column_blob(st, 0), blob, len) == 0;
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

/* The customer's handle for account: this account's own, the hint, or a kept verified device list of
 * that account. NO_DEVICE_LIST when none names it. */
static int customer_handle(parley_client *c, uint64_t account, const char *hint, char out[PARLEY_HANDLE_MAX + 1])
{
	wire_devlist l;
	sqlite3_stmt *st = NULL;
	int found = 0, rc;

	if (account == c->account.account_id) {
		snprintf(out, PARLEY_HANDLE_MAX + 1, "%s", c->account.handle);
		return PARLEY_OK;
	}
	if (hint != NULL && hint[0] != '\0' && client__peer_kept_list(c, hint, &l, &found) == PARLEY_OK && found &&
	    l.account_id == account) {
		snprintf(out, PARLEY_HANDLE_MAX + 1, "%s", hint);
		return PARLEY_OK;
	}
	rc = client__sql_prep(c, "SELECT handle FROM peer_lists WHERE account_id = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account);
	rc = sqlite3_step(st) == SQLITE_ROW ? PARLEY_OK : PARLEY_E_NO_DEVICE_LIST;
	if (rc == PARLEY_OK)
		col_text(st, 0, out, PARLEY_HANDLE_MAX + 1);
	sqlite3_finalize(st);
	if (rc != PARLEY_OK)
		client__set_err(c, "the customer's signed device list (account %llu) is not known on this device",
				(unsigned long long)account);
	return rc;
}

static int bad(parley_client *c, const wire_threadev *ev, const char *why)
{
	client__set_err(c, "thread event %s (version %llu): %s", wire__threadev_kind_name(ev->kind),
			(unsigned long long)ev->version, why);
	return PARLEY_E_THREAD_EVENT_INVALID;
}

/* The roles of docs/protocol.md §13.3 against the verified list; applies ev to r. */
static int apply_one(parley_client *c, const parley_entity *ent, replay *r, const wire_threadev *ev,
		     const char *customer_hint, int departed)
{
	/* a gateway is no staff (docs/protocol.md §13.6): the customer side of its threads, never an actor
	 * of a staff event nor a member added, handed or handed back to */
	const wire_staff_member *actor = wire__stafflist_staff(&ent->sl, ev->actor);
	const wire_staff_member *subj = wire__stafflist_staff(&ent->sl, ev->subject);
	/* a departed actor's past event (check_event): its role then is not checkable here; its effect is
	 * applied, and a member it adds must still be staff in the current list (subj) */
	int staff = actor != NULL || departed;
	int admin = departed || (actor != NULL && actor->role == WIRE_ROLE_ADMIN);
	int in_thread = departed || find_member(r, ev->actor) != NULL;
	/* the handling agent whose MAY_TRANSFER the verified list sets forwards the thread as an admin would:
	 * it signs the new agent's ADD and HANDLING (the server accepts them only in a ThreadForward) */
	int hands_on = admin || (actor != NULL && ev->actor == r->t.handling_agent &&
				 (wire__stafflist_effective_rules(&ent->sl, actor) & WIRE_RULE_MAY_TRANSFER) != 0);
	int rc = PARLEY_OK;

	switch (ev->kind) {
	case WIRE_THREADEV_OPEN:
		if (subj != NULL)
			return bad(c, ev, "the customer is staff of the entity");
		if (actor == NULL && ev->actor != ev->subject)
			return bad(c, ev, "signed by neither the customer nor staff");
		if (actor != NULL && !(wire__stafflist_effective_rules(&ent->sl, actor) & WIRE_RULE_MAY_INITIATE))
			return bad(c, ev, "the staff member may not initiate");
		/* a channel thread's customer is the gateway that opened it (whether the list still names it a
		 * gateway is the info's concern: thread_channel.c) */
		if (ev->channel != 0 && ev->actor != ev->subject)
			return bad(c, ev, "a channel thread is opened by its gateway itself");
		r->t.customer_account = ev->subject;
		r->t.channel = ev->channel;
		snprintf(r->t.channel_user, sizeof(r->t.channel_user), "%s", ev->channel_user);
		rc = customer_handle(c, ev->subject, customer_hint, r->t.customer);
		if (rc == PARLEY_OK)
			rc = add_member(r, ev->subject, r->t.customer, PARLEY_ROLE_NONE);
		/* the initial staff: what every client derives from the signed list, no signature needed */
		for (size_t i = 0; rc == PARLEY_OK && i < ent->sl.n; i++) {
			const wire_staff_member *m = &ent->sl.members[i];
			if (m->role == WIRE_ROLE_GATEWAY)
				continue;
			if (m->role == WIRE_ROLE_ADMIN ||
			    (wire__stafflist_effective_rules(&ent->sl, m) & WIRE_RULE_DEFAULT_AGENT) ||
			    m->account_id == ev->actor)
				rc = add_member(r, m->account_id, m->handle, m->role);
		}
		r->t.status = PARLEY_THREAD_OPEN;
		return rc;
	case WIRE_THREADEV_ADD:
		if (!hands_on)
			return bad(c, ev, "only an admin (or a transferring handling agent) adds");
		if (subj == NULL || find_member(r, ev->subject) != NULL)
			return bad(c, ev, "the subject is no staff member or already in the thread");
		/* no new epoch: the newcomer's devices get our key at its position when they get it (kind 5,
		 * recorded per device), which opens nothing said before; a forward's bundle keys stay valid */
		return add_member(r, subj->account_id, subj->handle, subj->role);
	case WIRE_THREADEV_REMOVE:
		if (!admin && !(ev->actor == ev->subject && in_thread))
			return bad(c, ev, "only an admin or the member itself removes");
		if (ev->subject == r->t.customer_account || find_member(r, ev->subject) == NULL)
			return bad(c, ev, "the subject is not a staff member of the thread");
		drop_member(r, ev->subject);
		r->removed_any = 1;
		return PARLEY_OK;
	case WIRE_THREADEV_HANDLING:
		if (!hands_on)
			return bad(c, ev, "only an admin (or a transferring handling agent) sets the handling agent");
		if (subj == NULL || find_member(r, ev->subject) == NULL)
			return bad(c, ev, "the handling agent must be a staff member in the thread");
		r->t.handling_agent = ev->subject;
		return PARLEY_OK;
	case WIRE_THREADEV_LOCK:
		if (!staff || !in_thread || ev->subject != ev->actor || r->t.status != PARLEY_THREAD_OPEN)
			return bad(c, ev, "only a staff member of an open thread locks it, for itself");
		r->t.status = PARLEY_THREAD_LOCKED;
		r->t.lock_holder = ev->actor;
		return PARLEY_OK;
	case WIRE_THREADEV_UNLOCK:
		if (r->t.status != PARLEY_THREAD_LOCKED || (!admin && ev->actor != r->t.lock_holder) || !staff)
			return bad(c, ev, "only an admin or the lock holder unlocks a locked thread");
		r->t.status = PARLEY_THREAD_OPEN;
		r->t.lock_holder = 0;
		return PARLEY_OK;
	case WIRE_THREADEV_CLOSE:
		if (!admin && !(staff && ev->actor == r->t.handling_agent) && ev->actor != r->t.customer_account)
			return bad(c, ev, "only an admin, the handling agent or the customer closes");
		r->t.status = PARLEY_THREAD_CLOSED;
		return PARLEY_OK;
	case WIRE_THREADEV_HANDBACK:
		if (!staff || ev->actor != r->t.handling_agent)
			return bad(c, ev, "only the handling agent hands back");
		if (ev->subject != 0 && subj == NULL)
			return bad(c, ev, "the new handling agent is no staff member");
		r->t.handling_agent = ev->subject;
		/* the one handing back lets go of its lock too (as the server does) */
		if (r->t.lock_holder == ev->actor) {
			r->t.lock_holder = 0;
			r->t.status = PARLEY_THREAD_OPEN;
		}
		return ev->subject != 0 ? add_member(r, subj->account_id, subj->handle, subj->role) : PARLEY_OK;
	default:
		return bad(c, ev, "unknown kind");
	}
}

/* The actor device's Ed25519 key and the signature; the frame checks of the chain. */
/* *departed = 1: the actor is in no verified role now, but signed against an older staff list (it left
 * the staff since) with a device its own kept signed list names: an authentic past event, whose role the
 * server checked then and this device cannot (it keeps only the current list). */
static int check_event(parley_client *c, const parley_entity *ent, replay *r, uint64_t thread_id,
		       const uint8_t *blob, size_t len, const char *customer_hint, wire_threadev *ev, int *departed)
{
	uint8_t key[32];
	char handle[PARLEY_HANDLE_MAX + 1] = "";
	int rc;

	if (ev->version != r->t.membership_version + 1)
		return bad(c, ev, "the chain has a gap (fetch the thread)");
	if (strcmp(ev->entity, ent->handle) != 0 ||
	    ev->thread_id != (ev->kind == WIRE_THREADEV_OPEN ? 0 : thread_id) ||
	    (ev->kind == WIRE_THREADEV_OPEN) != (ev->version == 1))
		return bad(c, ev, "another thread's or entity's event");
	if (r->t.status == PARLEY_THREAD_CLOSED)
		return bad(c, ev, "the thread was closed");
	if (ev->staff_version > ent->sl.version)
		return bad(c, ev, "signed against a newer staff list than this device verified (refresh the entity)");
	*departed = 0;
	if (wire__stafflist_find(&ent->sl, ev->actor) == NULL) {
		uint64_t cust = ev->kind == WIRE_THREADEV_OPEN ? ev->subject : r->t.customer_account;
		if (ev->actor != cust) {
			*departed = ev->staff_version < ent->sl.version && ev->kind != WIRE_THREADEV_OPEN &&
				    customer_handle(c, ev->actor, NULL, handle) == PARLEY_OK;
			if (!*departed)
				return bad(c, ev, "the actor is neither in the verified staff list nor the customer");
		} else {
			rc = customer_handle(c, cust, customer_hint, handle);
			if (rc != PARLEY_OK)
				return rc;
		}
	}
	rc = client__thread_device_key(c, ent, ev->actor, handle, ev->actor_device, key);
	if (rc != PARLEY_OK)
		return bad(c, ev, "the actor's device is not in its verified device list");
	if (wire__threadev_verify(blob, len, key, ev) != PARLEY_OK)
		return bad(c, ev, "bad signature");
	return PARLEY_OK;
}

static int save_replay(parley_client *c, const replay *r)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = client__now_ms();
	int rc = client__sql_prep(c,
				  "INSERT INTO threads (thread_id, entity, customer, customer_account, status,"
				  " handling_agent, lock_holder, membership_version, staff, created_ms, updated_ms,"
				  " channel, channel_user)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?12, ?13) ON CONFLICT(thread_id) DO UPDATE SET"
				  " customer = ?3, customer_account = ?4, status = ?5, handling_agent = ?6, lock_holder = ?7,"
				  " membership_version = ?8, staff = ?9, updated_ms = ?10, rotate = rotate OR ?11",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->t.thread_id);
	sqlite3_bind_text(st, 2, r->t.entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->t.customer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->t.customer_account);
	sqlite3_bind_int(st, 5, r->t.status);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->t.handling_agent);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->t.lock_holder);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->t.membership_version);
	sqlite3_bind_int(st, 9, r->t.staff);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)now);
	sqlite3_bind_int(st, 11, r->removed_any);
	/* set with the OPEN, which only a new row applies: never changed after */
	sqlite3_bind_int64(st, 12, r->t.channel);
	sqlite3_bind_text(st, 13, r->t.channel_user, -1, SQLITE_STATIC);
	rc = client__sql_done(c, st);
	if (rc == PARLEY_OK)
		rc = client__thread_prep(c, "DELETE FROM thread_members WHERE thread_id = ?", r->t.thread_id, &st);
	if (rc == PARLEY_OK)
		rc = client__sql_done(c, st);
	for (size_t i = 0; rc == PARLEY_OK && i < r->n; i++) {
		rc = client__thread_prep(c, "INSERT INTO thread_members (thread_id, account, handle, role) VALUES (?, ?, ?, ?)",
			     r->t.thread_id, &st);
		if (rc != PARLEY_OK)
			break;
		sqlite3_bind_int64(st, 2, (sqlite3_int64)r->m[i].account);
		sqlite3_bind_text(st, 3, r->m[i].handle, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, r->m[i].role);
		rc = client__sql_done(c, st);
	}
	return rc;
}

static int save_event(parley_client *c, uint64_t thread_id, uint64_t version, const uint8_t *blob, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "INSERT INTO thread_events (thread_id, version, blob) VALUES (?, ?, ?)", thread_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 2, (sqlite3_int64)version);
	sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_STATIC);
	return client__sql_done(c, st);
}

static int replay_events(parley_client *c, const parley_entity *ent, replay *r, uint64_t thread_id,
			 const char *customer, const uint8_t *const *events, const size_t *lens, size_t n,
			 wire_threadev *applied, size_t *napplied)
{
	int rc = PARLEY_OK, same;

	for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
		wire_threadev ev;
		if (wire__threadev_parse(events[i], lens[i], &ev) != PARLEY_OK) {
			client__set_err(c, "thread %llu: event %zu is malformed", (unsigned long long)thread_id, i);
			return PARLEY_E_THREAD_EVENT_INVALID;
		}
		if (ev.version <= r->t.membership_version) {
			/* known: it must be the very event this device verified */
			rc = kept_event(c, thread_id, ev.version, events[i], lens[i], &same);
			if (rc == PARLEY_OK && !same)
				rc = bad(c, &ev, "differs from the event this device verified for that version");
			continue;
		}
		int departed = 0;
		rc = check_event(c, ent, r, thread_id, events[i], lens[i], customer, &ev, &departed);
		if (rc == PARLEY_OK)
			rc = apply_one(c, ent, r, &ev, customer, departed);
		if (rc == PARLEY_OK)
			rc = save_event(c, thread_id, ev.version, events[i], lens[i]);
		if (rc == PARLEY_OK) {
			r->t.membership_version = ev.version;
			applied[(*napplied)++] = ev;
		}
	}
	return rc;
}

int client__thread_apply(parley_client *c, const char *entity, uint64_t thread_id, const char *customer,
			 const uint8_t *const *events, const size_t *lens, size_t n, thread_applied_fn fn, void *user)
{
	parley_entity *ent = NULL;
	replay *r = NULL;
	wire_threadev *applied = NULL;
	size_t napplied = 0;
	sqlite3 *db;
	int rc;

	if (thread_id == 0 || entity == NULL || (n > 0 && (events == NULL || lens == NULL)))
		return PARLEY_E_INVAL;
	rc = client__thread_ready(c);
	if (rc == PARLEY_OK)
		rc = client__entity_kept(c, entity, &ent);
	if (rc != PARLEY_OK)
		return rc;
	r = parley__calloc(1, sizeof(*r));
	applied = parley__calloc(n + 1, sizeof(*applied));
	if (r == NULL || applied == NULL) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	db = client__state_db(c->state);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = client__sql_err(c);
		goto out;
	}
	rc = load_replay(c, thread_id, r);
	if (rc == PARLEY_OK && r->known && strcmp(r->t.entity, entity) != 0)
		rc = PARLEY_E_THREAD_WRONG_ENTITY;
	snprintf(r->t.entity, sizeof(r->t.entity), "%s", entity);
	r->t.staff = wire__stafflist_staff(&ent->sl, c->account.account_id) != NULL;
	if (rc == PARLEY_OK)
		rc = replay_events(c, ent, r, thread_id, customer, events, lens, n, applied, &napplied);
	if (rc == PARLEY_OK && r->t.membership_version == 0)
		rc = PARLEY_E_NO_SUCH_THREAD; /* nothing verified: no thread to keep */
	/* whoever left the staff list left the thread with it (the server's rule, no event): members, the
	 * handling agent and the lock holder (client__thread_prune drops kept members at the next call) */
	for (size_t i = r->n; rc == PARLEY_OK && i-- > 0;)
		if (r->m[i].role != PARLEY_ROLE_NONE && wire__stafflist_find(&ent->sl, r->m[i].account) == NULL) {
			drop_member(r, r->m[i].account);
			r->removed_any = 1; /* a member left: our sender key rotates, as after a REMOVE */
		}
	if (r->t.handling_agent != 0 && wire__stafflist_find(&ent->sl, r->t.handling_agent) == NULL)
		r->t.handling_agent = 0;
	if (r->t.lock_holder != 0 && wire__stafflist_find(&ent->sl, r->t.lock_holder) == NULL) {
		r->t.lock_holder = 0;
		if (r->t.status == PARLEY_THREAD_LOCKED)
			r->t.status = PARLEY_THREAD_OPEN;
	}
	if (rc == PARLEY_OK && napplied > 0)
		rc = save_replay(c, r);
	if (sqlite3_exec(db, rc == PARLEY_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && rc == PARLEY_OK)
		rc = client__sql_err(c);
	for (size_t i = 0; rc == PARLEY_OK && fn != NULL && i < napplied; i++) {
		applied[i].thread_id = thread_id; /* an OPEN is signed with 0: the id came after it */
		fn(c, &applied[i], user);
	}
out:
	parley__free(applied);
	parley__free(r);
	parley_entity_free(ent);
	return rc;
}

int client__thread_apply_events(parley_client *c, const char *entity, uint64_t thread_id,
				const uint8_t *const *events, const size_t *lens, size_t n)
{
	return client__thread_apply(c, entity, thread_id, NULL, events, lens, n, NULL, NULL);
}

int client__thread_prune(parley_client *c, uint64_t thread_id, const parley_entity *ent, size_t *dropped)
{
	thread_member m[THREAD_MEMBERS_MAX];
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int rc = client__thread_members(c, thread_id, m, THREAD_MEMBERS_MAX, &n);

	*dropped = 0;
	for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
		if (m[i].role == PARLEY_ROLE_NONE || wire__stafflist_find(&ent->sl, m[i].account) != NULL)
			continue;
		rc = client__thread_prep(c, "DELETE FROM thread_members WHERE thread_id = ? AND account = ?", thread_id, &st);
		if (rc == PARLEY_OK) {
			sqlite3_bind_int64(st, 2, (sqlite3_int64)m[i].account);
			rc = client__sql_done(c, st);
		}
		(*dropped)++;
	}
	if (rc == PARLEY_OK && *dropped > 0)
		rc = client__thread_set_rotate(c, thread_id);
	return rc;
}

int client__thread_events(parley_client *c, uint64_t thread_id, uint8_t ***events, size_t **lens, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 16;
	int rc = client__thread_prep(c, "SELECT blob FROM thread_events WHERE thread_id = ? ORDER BY version", thread_id, &st);

	*events = NULL;
	*lens = NULL;
	*n = 0;
	if (rc != PARLEY_OK)
		return rc;
	*events = parley__calloc(cap, sizeof(**events));
	*lens = parley__calloc(cap, sizeof(**lens));
	while (*events != NULL && *lens != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		if (*n == cap) {
			uint8_t **e2 = parley__realloc(*events, 2 * cap * sizeof(**events));
			if (e2 != NULL)
				*events = e2;
			size_t *l2 = e2 != NULL ? parley__realloc(*lens, 2 * cap * sizeof(**lens)) : NULL;
			if (l2 == NULL)
				break;
			*lens = l2;
			cap *= 2;
		}
		(*events)[*n] = parley__malloc(len ? len : 1);
		if ((*events)[*n] == NULL)
			break;
		memcpy((*events)[*n], sqlite3_column_blob(st, 0), len);
		(*lens)[(*n)++] = len;
	}
	if (rc == SQLITE_DONE)
		rc = PARLEY_OK;
	else if (rc == SQLITE_ROW || *events == NULL || *lens == NULL)
		rc = PARLEY_E_NOMEM;
	else
		rc = client__sql_err(c);
	sqlite3_finalize(st);
	if (rc != PARLEY_OK) {
		client__thread_events_free(*events, *lens, *n);
		*events = NULL;
		*lens = NULL;
		*n = 0;
	}
	return rc;
}

void client__thread_events_free(uint8_t **events, size_t *lens, size_t n)
{
	for (size_t i = 0; events != NULL && i < n; i++)
		parley__free(events[i]);
	parley__free(events);
	parley__free(lens);
}

