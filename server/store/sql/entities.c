/* Store, entity registry (docs/protocol.md §12): entities and their members, versioned with
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
#include "store/sql/entities_internal.h"
#include "wire/stafflist.h"

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
/* ORDER BY although SQLite walks the primary key in that order anyway: a PostgreSQL heap has no order */
static const char SQL_ADMINS[] = "SELECT account_id FROM entity_members WHERE entity_id = ?1 AND role = 1"
				 " ORDER BY account_id";
static const char SQL_ADD_MEMBER[] = "INSERT INTO entity_members(entity_id, account_id, role, added_ms)"
				     " VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DEL_MEMBER[] = "DELETE FROM entity_members WHERE entity_id = ?1 AND account_id = ?2";
static const char SQL_COUNT_MEMBERS[] = "SELECT count(*) FROM entity_members WHERE entity_id = ?1";

int sql__entity_handle_taken(store_be *b, const char *handle)
{
	sql_stmt *s = sql__stmt(b, SQL_TAKEN);
	int taken = 0;
	if (s == NULL)
		return 0;
	sql__bind_text(s, 1, handle, -1);
	if (sql__step(s) == SQL_ROW)
		taken = sql__col_i64(s, 0) > 0;
	sql__reset(s);
	return taken;
}

/* Loads the entity named by j->ent.entity; with `full`, its record and staff list into the job too. */
int sql__ent_load(store_be *b, store_job *j, ent_row *e, int full)
{
	sql_stmt *s = sql__stmt(b, SQL_ENTITY);
	int rc = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(s, 1, j->ent.entity, -1);
	int sr = sql__step(s);
	if (sr == SQL_ROW) {
		e->id = (uint64_t)sql__col_i64(s, 0);
		e->primary = (uint64_t)sql__col_i64(s, 3);
		e->version = (uint64_t)sql__col_i64(s, 4);
		j->ent.entity_id = e->id;
		j->ent.staff_version = e->version;
		if (full) {
			const unsigned char *name = sql__col_text(s, 1);
			size_t n = (size_t)sql__col_bytes(s, 5);
			snprintf(j->ent.display_name, sizeof(j->ent.display_name), "%s", name ? (const char *)name : "");
			sql__col_blob_n(s, 2, j->ent.entity_key, STORE_SIGNAL_KEY_LEN);
			j->ent.list = n > 0 ? parley__malloc(n) : NULL;
			if (n > 0 && j->ent.list == NULL)
				rc = PARLEY_E_NOMEM;
			else if (n > 0)
				memcpy(j->ent.list, sql__col_blob(s, 5), n);
			j->ent.list_len = j->ent.list != NULL ? n : 0;
		}
	} else {
		rc = sr == SQL_DONE ? PARLEY_E_NO_SUCH_ENTITY : sql__error(b, "entity");
	}
	sql__reset(s);
	return rc;
}

/* The role of account in entity e (0: not a member). */
int sql__ent_role(store_be *b, uint64_t entity, uint64_t account, int *role)
{
	int64_t v = 0;
	int sr = sql__query_int(b, SQL_ROLE, (int64_t)entity, (int64_t)account, &v);
	if (sr != SQL_ROW && sr != SQL_DONE)
		return sql__error(b, "member role");
	*role = sr == SQL_ROW ? (int)v : 0;
	return PARLEY_OK;
}

/* Loads the entity and checks the caller is an admin of it. */
int sql__ent_load_admin(store_be *b, store_job *j, ent_row *e, int *caller_role)
{
	int rc = sql__ent_load(b, j, e, 0);
	if (rc == PARLEY_OK)
		rc = sql__ent_role(b, e->id, j->caller_account, caller_role);
	if (rc == PARLEY_OK && *caller_role != WIRE_ROLE_ADMIN)
		rc = PARLEY_E_NOT_ENTITY_ADMIN;
	return rc;
}

int sql__ent_exec3(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t p3, const char *what)
{
	sql_stmt *s = sql__stmt(b, sql);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, p1);
	sql__bind_i64(s, 2, p2);
	if (sql__param_count(s) >= 3)
		sql__bind_i64(s, 3, p3);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, what);
}

int sql__ent_add_member(store_be *b, uint64_t entity, uint64_t account, int role, uint64_t now_ms)
{
	sql_stmt *s = sql__stmt(b, SQL_ADD_MEMBER);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)entity);
	sql__bind_i64(s, 2, (int64_t)account);
	sql__bind_i64(s, 3, role);
	sql__bind_i64(s, 4, (int64_t)now_ms);
	int sr = sql__step_done(s);
	if (sr == SQL_CONSTRAINT)
		return PARLEY_E_ALREADY_MEMBER;
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "add member");
}

/* The members (account ids, ascending; with `admins_only` the admins) into j->ent.accounts: who a push
 * goes to, and for check_list the registry as it is after the op's change. roles: optional, parallel. */
int sql__ent_members(store_be *b, store_job *j, uint64_t entity, int admins_only, int **roles)
{
	sql_stmt *s = sql__stmt(b, admins_only ? SQL_ADMINS : SQL_MEMBERS);
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
	sql__bind_i64(s, 1, (int64_t)entity);
	while ((sr = sql__step(s)) == SQL_ROW && j->ent.n_accounts < cap) {
		if (roles != NULL && !admins_only)
			(*roles)[j->ent.n_accounts] = sql__col_int(s, 1);
		j->ent.accounts[j->ent.n_accounts++] = (uint64_t)sql__col_i64(s, 0);
	}
	sql__reset(s);
	return sr == SQL_DONE || sr == SQL_ROW ? PARLEY_OK : sql__error(b, "members");
}

/* The signed list must be exactly the registry after the change (see the top of this file), then
 * becomes the entity's. Leaves the members in j->ent.accounts (the push's recipients). */
int sql__ent_check_list(store_be *b, store_job *j, const ent_row *e)
{
	const wire_stafflist *l = j->ent.staff;
	int *roles = NULL;
	int rc;
	if (l == NULL)
		return PARLEY_E_STAFF_LIST_INVALID;
	rc = sql__ent_members(b, j, e->id, 0, &roles);
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
			rc = sql__ent_load(b, &probe, &cur, 1);
			same = rc == PARLEY_OK && strcmp(probe.ent.display_name, l->display_name) == 0 &&
			       memcmp(probe.ent.entity_key, l->entity_key, STORE_SIGNAL_KEY_LEN) == 0;
			parley__free(probe.ent.list);
		}
		if (rc == PARLEY_OK && !same)
			rc = PARLEY_E_STAFF_LIST_INVALID;
	}
	parley__free(roles);
	if (rc == PARLEY_OK && e->version > 0) {
		sql_stmt *s = sql__stmt(b, SQL_SET_LIST);
		if (s == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)e->id);
		sql__bind_i64(s, 2, (int64_t)l->version);
		sql__bind_blob(s, 3, j->ent.list, (int)j->ent.list_len);
		rc = sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "staff list");
	}
	if (rc == PARLEY_OK)
		j->ent.staff_version = l->version;
	return rc;
}

int sql__ent_room(store_be *b, const store_job *j, uint64_t entity)
{
	int64_t n = 0;
	if (sql__query_int(b, SQL_COUNT_MEMBERS, (int64_t)entity, 0, &n) != SQL_ROW)
		return sql__error(b, "count members");
	return n >= (int64_t)j->ent.max_members ? PARLEY_E_TOO_MANY_MEMBERS : PARLEY_OK;
}

int sql__entity_create(store_be *b, store_job *j)
{
	const wire_stafflist *l = j->ent.staff;
	uint64_t other = 0;
	if (l == NULL || strcmp(l->display_name, j->ent.display_name) != 0 ||
	    memcmp(l->entity_key, j->ent.entity_key, STORE_SIGNAL_KEY_LEN) != 0)
		return PARLEY_E_STAFF_LIST_INVALID;
	if (sql__account_by_handle(b, j->ent.entity, &other) == PARLEY_OK)
		return PARLEY_E_HANDLE_TAKEN;
	sql_stmt *s = sql__stmt(b, SQL_INSERT);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(s, 1, j->ent.entity, -1);
	sql__bind_text(s, 2, j->ent.display_name, -1);
	sql__bind_blob(s, 3, j->ent.entity_key, STORE_SIGNAL_KEY_LEN);
	sql__bind_i64(s, 4, (int64_t)j->caller_account);
	sql__bind_blob(s, 5, j->ent.list, (int)j->ent.list_len);
	sql__bind_i64(s, 6, (int64_t)j->now_ms);
	int sr = sql__step_done(s);
	if (sr == SQL_CONSTRAINT)
		return PARLEY_E_HANDLE_TAKEN;
	if (sr != SQL_DONE)
		return sql__error(b, "insert entity");
	ent_row e = {.id = (uint64_t)sql__last_id(b), .primary = j->caller_account, .version = 0};
	j->ent.entity_id = e.id;
	int rc = sql__ent_add_member(b, e.id, j->caller_account, WIRE_ROLE_ADMIN, j->now_ms);
	return rc == PARLEY_OK ? sql__ent_check_list(b, j, &e) : rc;
}

int sql__entity_get(store_be *b, store_job *j)
{
	ent_row e = {0};
	return sql__ent_load(b, j, &e, 1);
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
	rc = sql__ent_room(b, j, e->id);
	return rc == PARLEY_OK ? sql__ent_add_member(b, e->id, acct, WIRE_ROLE_ADMIN, j->now_ms) : rc;
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
	int rc = sql__ent_exec3(b, SQL_DEL_MEMBER, (int64_t)e->id, (int64_t)acct, 0, "remove member");
	/* out of the entity's threads in the same transaction: the fan-out stops with the removal */
	return rc == PARLEY_OK ? sql__threads_drop_member(b, e->id, acct, j->now_ms) : rc;
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
	return sql__ent_exec3(b, SQL_SET_PRIMARY, (int64_t)e->id, (int64_t)acct, 0, "primary admin");
}

int sql__entity_member(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, target = 0, rc = sql__ent_load_admin(b, j, &e, &caller);
	uint64_t acct = 0;
	if (rc == PARLEY_OK)
		rc = sql__account_by_handle(b, j->handle, &acct);
	if (rc == PARLEY_OK)
		rc = sql__ent_role(b, e.id, acct, &target);
	if (rc != PARLEY_OK)
		return rc;
	j->ent.target_account = acct;
	if (j->ent.transfer)
		rc = transfer_primary(b, j, &e, acct, target);
	else if (j->ent.remove)
		rc = remove_member(b, j, &e, acct, target);
	else
		rc = add_admin(b, j, &e, acct, target);
	return rc == PARLEY_OK ? sql__ent_check_list(b, j, &e) : rc;
}

int sql__entity_staff(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, rc = sql__ent_load_admin(b, j, &e, &caller);
	return rc == PARLEY_OK ? sql__ent_check_list(b, j, &e) : rc;
}
