/* SQLite backend, entity registry (docs/protocol.md §12): entities and their members, versioned with
 * the enrolment tables (enrol.c) as their own schema "server.entities".
 *
 * Every op names its caller (job->caller_account) and checks the caller's role here, in the op's own
 * transaction, with its effect: no right is cached anywhere, so a member removed by one loop is refused
 * on its very next call on any loop. A staff-changing op also checks the new signed staff list (already
 * verified against its embedded key by the service) against the registry AFTER the op's change: same
 * entity, key, handle and name, version = stored + 1, and exactly the registry's members with their
 * roles and the primary flag on the primary admin; anything else is STAFF_LIST_INVALID, and the op's
 * savepoint rolls the change back (a primary transfer too: the registry's primary moves first, then
 * the list must carry the flag on the new one).
 */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sqlite/entities_internal.h"
#include "wire/stafflist.h"

static const char *const entity_steps[] = {
	/* 1: the registry */
	"CREATE TABLE IF NOT EXISTS entities ("
	"  id INTEGER PRIMARY KEY,"
	"  handle TEXT NOT NULL UNIQUE,"
	"  display_name TEXT NOT NULL,"
	"  entity_key BLOB NOT NULL,"
	"  primary_admin INTEGER NOT NULL REFERENCES accounts(id),"
	"  staff_version INTEGER NOT NULL,"
	"  staff_list BLOB NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS entity_members ("
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  role INTEGER NOT NULL,"
	"  added_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (entity_id, account_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS entity_members_account ON entity_members(account_id);"
	"CREATE TABLE IF NOT EXISTS entity_codes ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  code_hash BLOB NOT NULL,"
	"  role INTEGER NOT NULL,"
	"  created_by INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  request_id INTEGER,"
	"  UNIQUE (entity_id, code_hash)"
	");"
	"CREATE TABLE IF NOT EXISTS entity_requests ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  code_id INTEGER NOT NULL,"
	"  role INTEGER NOT NULL,"
	"  account_key BLOB NOT NULL,"
	"  devlist BLOB NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  decided_by INTEGER,"
	"  decided_ms INTEGER"
	");"
	"CREATE INDEX IF NOT EXISTS entity_requests_pending ON entity_requests(entity_id, state);"
	/* failed code attempts: leaky buckets shared by every loop (kind 1 entity, 2 account) */
	"CREATE TABLE IF NOT EXISTS entity_guesses ("
	"  kind INTEGER NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  level REAL NOT NULL,"
	"  at_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (kind, id)"
	") WITHOUT ROWID;",
	/* 2: an admin without the entity key approves a request (enrol.c): the approval record waits with
	 * the request for the entity key's holder; at most one per request (the key). A table of its own
	 * rather than a column: every step here must run again harmlessly over existing tables (a file
	 * from before schema_version re-runs this schema's steps) and ADD COLUMN cannot say IF NOT EXISTS. */
	"CREATE TABLE IF NOT EXISTS entity_approvals ("
	"  request_id INTEGER PRIMARY KEY REFERENCES entity_requests(id) ON DELETE CASCADE,"
	"  approval BLOB NOT NULL,"
	"  approver INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");",
};

const migrate_schema sqlite__entities_schema = {
	.name = "server.entities",
	MIGRATE_STEPS(entity_steps),
	.legacy_user_version = 0,
};

static const char SQL_TAKEN[] = "SELECT count(*) FROM entities WHERE handle = ?1";
static const char SQL_ENTITY[] = "SELECT id, display_name, entity_key, primary_admin, staff_version, staff_list"
				 " FROM entities WHERE handle = ?1";
static const char SQL_INSERT[] = "INSERT INTO entities(handle, display_name, entity_key, primary_admin,"
				 " staff_version, staff_list, created_ms) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)";
static const char SQL_SET_LIST[] = "UPDATE entities SET staff_version = ?2, staff_list = ?3 WHERE id = ?1";
static const char SQL_SET_PRIMARY[] = "UPDATE entities SET primary_admin = ?2 WHERE id = ?1";
static const char SQL_ROLE[] = "SELECT role FROM entity_members WHERE entity_id = ?1 AND account_id = ?2";
static const char SQL_MEMBERS[] = "SELECT account_id, role FROM entity_members WHERE entity_id = ?1"
				  " ORDER BY account_id";
static const char SQL_ADMINS[] = "SELECT account_id FROM entity_members WHERE entity_id = ?1 AND role = 1";
static const char SQL_ADD_MEMBER[] = "INSERT INTO entity_members(entity_id, account_id, role, added_ms)"
				     " VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DEL_MEMBER[] = "DELETE FROM entity_members WHERE entity_id = ?1 AND account_id = ?2";
static const char SQL_COUNT_MEMBERS[] = "SELECT count(*) FROM entity_members WHERE entity_id = ?1";

int sqlite__entity_handle_taken(store_be *b, const char *handle)
{
	sqlite3_stmt *s = sqlite__stmt(b, SQL_TAKEN);
	int taken = 0;
	if (s == NULL)
		return 0;
	sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		taken = sqlite3_column_int64(s, 0) > 0;
	sqlite3_reset(s);
	return taken;
}

/* Loads the entity named by j->ent.entity; with `full`, its record and staff list into the job too. */
int sqlite__ent_load(store_be *b, store_job *j, ent_row *e, int full)
{
	sqlite3_stmt *s = sqlite__stmt(b, SQL_ENTITY);
	int rc = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(s, 1, j->ent.entity, -1, SQLITE_STATIC);
	int sr = sqlite3_step(s);
	if (sr == SQLITE_ROW) {
		e->id = (uint64_t)sqlite3_column_int64(s, 0);
		e->primary = (uint64_t)sqlite3_column_int64(s, 3);
		e->version = (uint64_t)sqlite3_column_int64(s, 4);
		j->ent.entity_id = e->id;
		j->ent.staff_version = e->version;
		if (full) {
			const unsigned char *name = sqlite3_column_text(s, 1);
			size_t n = (size_t)sqlite3_column_bytes(s, 5);
			snprintf(j->ent.display_name, sizeof(j->ent.display_name), "%s", name ? (const char *)name : "");
			sqlite__col_blob(s, 2, j->ent.entity_key, STORE_SIGNAL_KEY_LEN);
			j->ent.list = n > 0 ? parley__malloc(n) : NULL;
			if (n > 0 && j->ent.list == NULL)
				rc = PARLEY_E_NOMEM;
			else if (n > 0)
				memcpy(j->ent.list, sqlite3_column_blob(s, 5), n);
			j->ent.list_len = j->ent.list != NULL ? n : 0;
		}
	} else {
		rc = sr == SQLITE_DONE ? PARLEY_E_NO_SUCH_ENTITY : sqlite__error(b, "entity");
	}
	sqlite3_reset(s);
	return rc;
}

/* The role of account in entity e (0: not a member). */
int sqlite__ent_role(store_be *b, uint64_t entity, uint64_t account, int *role)
{
	int64_t v = 0;
	int sr = sqlite__query_int(b, SQL_ROLE, (int64_t)entity, (int64_t)account, &v);
	if (sr != SQLITE_ROW && sr != SQLITE_DONE)
		return sqlite__error(b, "member role");
	*role = sr == SQLITE_ROW ? (int)v : 0;
	return PARLEY_OK;
}

/* Loads the entity and checks the caller is an admin of it. */
int sqlite__ent_load_admin(store_be *b, store_job *j, ent_row *e, int *caller_role)
{
	int rc = sqlite__ent_load(b, j, e, 0);
	if (rc == PARLEY_OK)
		rc = sqlite__ent_role(b, e->id, j->caller_account, caller_role);
	if (rc == PARLEY_OK && *caller_role != WIRE_ROLE_ADMIN)
		rc = PARLEY_E_NOT_ENTITY_ADMIN;
	return rc;
}

int sqlite__ent_exec3(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t p3, const char *what)
{
	sqlite3_stmt *s = sqlite__stmt(b, sql);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, p1);
	sqlite3_bind_int64(s, 2, p2);
	if (sqlite3_bind_parameter_count(s) >= 3)
		sqlite3_bind_int64(s, 3, p3);
	return sqlite__step_done(s) == SQLITE_DONE ? PARLEY_OK : sqlite__error(b, what);
}

int sqlite__ent_add_member(store_be *b, uint64_t entity, uint64_t account, int role, uint64_t now_ms)
{
	sqlite3_stmt *s = sqlite__stmt(b, SQL_ADD_MEMBER);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)entity);
	sqlite3_bind_int64(s, 2, (int64_t)account);
	sqlite3_bind_int(s, 3, role);
	sqlite3_bind_int64(s, 4, (int64_t)now_ms);
	int sr = sqlite__step_done(s);
	if (sr == SQLITE_CONSTRAINT)
		return PARLEY_E_ALREADY_MEMBER;
	return sr == SQLITE_DONE ? PARLEY_OK : sqlite__error(b, "add member");
}

/* The members (account ids, ascending; with `admins_only` the admins) into j->ent.accounts: who a push
 * goes to, and for check_list the registry as it is after the op's change. roles: optional, parallel. */
int sqlite__ent_members(store_be *b, store_job *j, uint64_t entity, int admins_only, int **roles)
{
	sqlite3_stmt *s = sqlite__stmt(b, admins_only ? SQL_ADMINS : SQL_MEMBERS);
	size_t cap = WIRE_STAFF_MAX + 1;
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	parley__free(j->ent.accounts);
	j->ent.n_accounts = 0;
	j->ent.accounts = parley__calloc(cap, sizeof(uint64_t));
	if (roles != NULL)
		*roles = parley__calloc(cap, sizeof(int));
	if (j->ent.accounts == NULL || (roles != NULL && *roles == NULL))
		return PARLEY_E_NOMEM;
	sqlite3_bind_int64(s, 1, (int64_t)entity);
	while ((sr = sqlite3_step(s)) == SQLITE_ROW && j->ent.n_accounts < cap) {
		if (roles != NULL && !admins_only)
			(*roles)[j->ent.n_accounts] = sqlite3_column_int(s, 1);
		j->ent.accounts[j->ent.n_accounts++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	return sr == SQLITE_DONE || sr == SQLITE_ROW ? PARLEY_OK : sqlite__error(b, "members");
}

/* The signed list must be exactly the registry after the change (see the top of this file), then
 * becomes the entity's. Leaves the members in j->ent.accounts (the push's recipients). */
int sqlite__ent_check_list(store_be *b, store_job *j, const ent_row *e)
{
	const wire_stafflist *l = j->ent.staff;
	int *roles = NULL;
	int rc;
	if (l == NULL)
		return PARLEY_E_STAFF_LIST_INVALID;
	rc = sqlite__ent_members(b, j, e->id, 0, &roles);
	if (rc == PARLEY_OK) {
		/* at create the id is not known to the signer yet: version 1 carries 0 */
		int same = (l->entity_id == (l->version == 1 ? 0 : e->id)) && l->version == e->version + 1 &&
			   strcmp(l->handle, j->ent.entity) == 0 && l->n == j->ent.n_accounts;
		for (size_t i = 0; same && i < l->n; i++) {
			const wire_staff_member *m = &l->members[i];
			same = m->account_id == j->ent.accounts[i] && m->role == roles[i] &&
			       ((m->flags & WIRE_STAFF_PRIMARY) != 0) == (m->account_id == e->primary);
		}
		if (same && e->version > 0) {
			/* name and key never change after create (the entity key is the entity) */
			ent_row cur;
			store_job probe;
			memset(&probe, 0, sizeof(probe));
			memcpy(probe.ent.entity, j->ent.entity, sizeof(probe.ent.entity));
			rc = sqlite__ent_load(b, &probe, &cur, 1);
			same = rc == PARLEY_OK && strcmp(probe.ent.display_name, l->display_name) == 0 &&
			       memcmp(probe.ent.entity_key, l->entity_key, STORE_SIGNAL_KEY_LEN) == 0;
			parley__free(probe.ent.list);
		}
		if (rc == PARLEY_OK && !same)
			rc = PARLEY_E_STAFF_LIST_INVALID;
	}
	parley__free(roles);
	if (rc == PARLEY_OK && e->version > 0) {
		sqlite3_stmt *s = sqlite__stmt(b, SQL_SET_LIST);
		if (s == NULL)
			return PARLEY_E_STORE;
		sqlite3_bind_int64(s, 1, (int64_t)e->id);
		sqlite3_bind_int64(s, 2, (int64_t)l->version);
		sqlite3_bind_blob(s, 3, j->ent.list, (int)j->ent.list_len, SQLITE_STATIC);
		rc = sqlite__step_done(s) == SQLITE_DONE ? PARLEY_OK : sqlite__error(b, "staff list");
	}
	if (rc == PARLEY_OK)
		j->ent.staff_version = l->version;
	return rc;
}

int sqlite__ent_room(store_be *b, const store_job *j, uint64_t entity)
{
	int64_t n = 0;
	if (sqlite__query_int(b, SQL_COUNT_MEMBERS, (int64_t)entity, 0, &n) != SQLITE_ROW)
		return sqlite__error(b, "count members");
	return n >= (int64_t)j->ent.max_members ? PARLEY_E_TOO_MANY_MEMBERS : PARLEY_OK;
}

int sqlite__entity_create(store_be *b, store_job *j)
{
	const wire_stafflist *l = j->ent.staff;
	uint64_t other = 0;
	if (l == NULL || strcmp(l->display_name, j->ent.display_name) != 0 ||
	    memcmp(l->entity_key, j->ent.entity_key, STORE_SIGNAL_KEY_LEN) != 0)
		return PARLEY_E_STAFF_LIST_INVALID;
	if (sqlite__account_by_handle(b, j->ent.entity, &other) == PARLEY_OK)
		return PARLEY_E_HANDLE_TAKEN;
	sqlite3_stmt *s = sqlite__stmt(b, SQL_INSERT);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(s, 1, j->ent.entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, j->ent.display_name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, j->ent.entity_key, STORE_SIGNAL_KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t)j->caller_account);
	sqlite3_bind_blob(s, 5, j->ent.list, (int)j->ent.list_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, (int64_t)j->now_ms);
	int sr = sqlite__step_done(s);
	if (sr == SQLITE_CONSTRAINT)
		return PARLEY_E_HANDLE_TAKEN;
	if (sr != SQLITE_DONE)
		return sqlite__error(b, "insert entity");
	ent_row e = {.id = (uint64_t)sqlite3_last_insert_rowid(b->db), .primary = j->caller_account, .version = 0};
	j->ent.entity_id = e.id;
	int rc = sqlite__ent_add_member(b, e.id, j->caller_account, WIRE_ROLE_ADMIN, j->now_ms);
	return rc == PARLEY_OK ? sqlite__ent_check_list(b, j, &e) : rc;
}

int sqlite__entity_get(store_be *b, store_job *j)
{
	ent_row e = {0};
	return sqlite__ent_load(b, j, &e, 1);
}

static int add_admin(store_be *b, store_job *j, const ent_row *e, uint64_t acct, int target)
{
	int rc = PARLEY_OK;
	if (j->caller_account != e->primary)
		return PARLEY_E_NOT_PRIMARY_ADMIN;
	if (j->ent.role != WIRE_ROLE_ADMIN)
		return PARLEY_E_INVAL;
	if (target != 0)
		return PARLEY_E_ALREADY_MEMBER;
	rc = sqlite__ent_room(b, j, e->id);
	return rc == PARLEY_OK ? sqlite__ent_add_member(b, e->id, acct, WIRE_ROLE_ADMIN, j->now_ms) : rc;
}

static int remove_member(store_be *b, store_job *j, const ent_row *e, uint64_t acct, int target)
{
	if (target == 0)
		return PARLEY_E_NOT_ENTITY_MEMBER;
	if (acct == e->primary)
		return PARLEY_E_PRIMARY_ADMIN_FIXED;
	if (target == WIRE_ROLE_ADMIN && j->caller_account != e->primary)
		return PARLEY_E_NOT_PRIMARY_ADMIN;
	j->ent.target_removed = 1;
	int rc = sqlite__ent_exec3(b, SQL_DEL_MEMBER, (int64_t)e->id, (int64_t)acct, 0, "remove member");
	/* out of the entity's threads in the same transaction: the fan-out stops with the removal */
	return rc == PARLEY_OK ? sqlite__threads_drop_member(b, e->id, acct, j->now_ms) : rc;
}

/* The primary admin hands its role to another admin and stays an admin. Only an admin can take it:
 * the new primary must already be trusted with the staff, and the list that moves the flag changes
 * nothing else (check_list then finds the flag on the registry's new primary, and only there). */
static int transfer_primary(store_be *b, store_job *j, ent_row *e, uint64_t acct, int target)
{
	if (j->caller_account != e->primary)
		return PARLEY_E_NOT_PRIMARY_ADMIN;
	if (target == 0)
		return PARLEY_E_NOT_ENTITY_MEMBER;
	if (target != WIRE_ROLE_ADMIN || acct == e->primary)
		return PARLEY_E_NEW_PRIMARY_NOT_ADMIN;
	e->primary = acct;
	return sqlite__ent_exec3(b, SQL_SET_PRIMARY, (int64_t)e->id, (int64_t)acct, 0, "primary admin");
}

int sqlite__entity_member(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, target = 0, rc = sqlite__ent_load_admin(b, j, &e, &caller);
	uint64_t acct = 0;
	if (rc == PARLEY_OK)
		rc = sqlite__account_by_handle(b, j->handle, &acct);
	if (rc == PARLEY_OK)
		rc = sqlite__ent_role(b, e.id, acct, &target);
	if (rc != PARLEY_OK)
		return rc;
	j->ent.target_account = acct;
	if (j->ent.transfer)
		rc = transfer_primary(b, j, &e, acct, target);
	else if (j->ent.remove)
		rc = remove_member(b, j, &e, acct, target);
	else
		rc = add_admin(b, j, &e, acct, target);
	return rc == PARLEY_OK ? sqlite__ent_check_list(b, j, &e) : rc;
}

int sqlite__entity_staff(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, rc = sqlite__ent_load_admin(b, j, &e, &caller);
	return rc == PARLEY_OK ? sqlite__ent_check_list(b, j, &e) : rc;
}
