/* SQLite backend, customer authentication (docs/protocol.md §14.2): an entity's authorization request
 * components, the requests sent to a thread's customer, the subjects linked to customers, the
 * credentials, and the level each thread stands at, versioned as their own schema "server.auth".
 *
 * The level lives in its own table keyed by thread id (auth_thread_level), not in a column of threads:
 * the thread store stays the thread store's, and sqlite__auth_overlay lays the level over the channel's
 * baseline wherever a thread is loaded. Callers are checked here, in the op's own transaction, against
 * the entity's CURRENT signed staff list, like the thread store does.
 *
 * This file: the schema, the components, the overlay. auth_requests.c: the requests and credentials.
 * auth_emails.c: the customers' known emails (the email binding). */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sqlite/auth_internal.h"

static const char *const auth_steps[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS auth_components ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL, type INTEGER NOT NULL, state INTEGER NOT NULL,"
	"  issuer TEXT NOT NULL, discovery_url TEXT NOT NULL, authorization_endpoint TEXT NOT NULL,"
	"  token_endpoint TEXT NOT NULL, jwks_uri TEXT NOT NULL, userinfo_endpoint TEXT NOT NULL,"
	"  client_id TEXT NOT NULL, secret_ref TEXT NOT NULL, scopes TEXT NOT NULL,"
	"  binding INTEGER NOT NULL, credential_ttl_s INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	"  UNIQUE (entity_id, name)"
	");"
	/* state / nonce / verifier never leave the server; otp_mac is an HMAC under a key that lives only
	 * in parleyd's memory, so a copy of the database does not give the codes away */
	"CREATE TABLE IF NOT EXISTS auth_requests ("
	"  id INTEGER PRIMARY KEY,"
	"  thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
	"  component_id INTEGER NOT NULL REFERENCES auth_components(id) ON DELETE CASCADE,"
	"  token TEXT NOT NULL UNIQUE, state TEXT NOT NULL UNIQUE, nonce TEXT NOT NULL, verifier TEXT NOT NULL,"
	"  otp_mac BLOB, attempts INTEGER NOT NULL DEFAULT 0,"
	"  status INTEGER NOT NULL, error INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS auth_requests_thread ON auth_requests(thread_id, status);"
	"CREATE INDEX IF NOT EXISTS auth_requests_open ON auth_requests(status, expires_ms);"
	/* the customer of a thread is the account for a native thread, (gateway account, channel,
	 * channel user) for a channel thread: a subject is linked to that identity at its first success */
	"CREATE TABLE IF NOT EXISTS auth_links ("
	"  component_id INTEGER NOT NULL REFERENCES auth_components(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  channel INTEGER NOT NULL, channel_user TEXT NOT NULL,"
	"  sub TEXT NOT NULL, linked_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (component_id, account_id, channel, channel_user)"
	") WITHOUT ROWID;"
	/* step 1's known emails (keyed by account alone: replaced by step 2) */
	"CREATE TABLE IF NOT EXISTS auth_known_emails ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  email TEXT NOT NULL,"
	"  PRIMARY KEY (account_id, email)"
	") WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS auth_credentials ("
	"  id INTEGER PRIMARY KEY,"
	"  thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
	"  request_id INTEGER NOT NULL, component_id INTEGER NOT NULL,"
	"  token_hash BLOB NOT NULL, sub TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS auth_thread_level ("
	"  thread_id INTEGER PRIMARY KEY REFERENCES threads(id) ON DELETE CASCADE,"
	"  credential_id INTEGER NOT NULL, until_ms INTEGER NOT NULL, verified_by TEXT NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS auth_thread_level_until ON auth_thread_level(until_ms);",
	/* 2: known emails belong to (entity, customer identity), the identity auth_links uses: a business's
	 * record never serves another business, and a channel thread's customer is (gateway account,
	 * channel, channel user), not the gateway's account shared by all its channel users. The table of
	 * step 1 was keyed by account alone and no call ever filled it: it is replaced, not migrated. */
	"DROP TABLE IF EXISTS auth_known_emails;"
	"CREATE TABLE auth_known_emails ("
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  channel INTEGER NOT NULL, channel_user TEXT NOT NULL,"
	"  email TEXT NOT NULL, added_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (entity_id, account_id, channel, channel_user, email)"
	") WITHOUT ROWID;",
};

const migrate_schema sqlite__auth_schema = {
	.name = "server.auth",
	MIGRATE_STEPS(auth_steps),
	.legacy_user_version = 0,
};

/* The jti of every accepted business-signed assertion, until its exp: a replay is the insert's
 * conflict, in the transaction that records the credential, so it holds across restarts and between
 * concurrent answers. Its own schema (not a step of server.auth): it can be added, or dropped and
 * rebuilt, without touching the requests' history. */
static const char *const auth_jti_steps[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS auth_jti ("
	"  component_id INTEGER NOT NULL REFERENCES auth_components(id) ON DELETE CASCADE,"
	"  jti_hash BLOB NOT NULL,"
	"  exp_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (component_id, jti_hash)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS auth_jti_exp ON auth_jti(exp_ms);",
};

const migrate_schema sqlite__auth_jti_schema = {
	.name = "server.auth_jti",
	MIGRATE_STEPS(auth_jti_steps),
	.legacy_user_version = 0,
};

#define COMP_COLS                                                                                            \
	"id, entity_id, name, type, state, issuer, discovery_url, authorization_endpoint, token_endpoint,"  \
	" jwks_uri, userinfo_endpoint, client_id, secret_ref, scopes, binding, credential_ttl_s, created_ms," \
	" updated_ms, (SELECT handle FROM entities WHERE entities.id = auth_components.entity_id)"
static const char SQL_COMP[] = "SELECT " COMP_COLS " FROM auth_components WHERE id = ?1";
static const char SQL_COMPS[] = "SELECT " COMP_COLS " FROM auth_components WHERE entity_id = ?1 AND (?2 OR state = 2)"
				" ORDER BY id";
static const char SQL_COUNT_COMPS[] = "SELECT count(*) FROM auth_components WHERE entity_id = ?1";
static const char SQL_NAME_TAKEN[] = "SELECT count(*) FROM auth_components WHERE entity_id = ?1 AND name = ?2"
				     " AND id != ?3";
static const char SQL_NEW_COMP[] =
	"INSERT INTO auth_components(entity_id, name, type, state, issuer, discovery_url, authorization_endpoint,"
	" token_endpoint, jwks_uri, userinfo_endpoint, client_id, secret_ref, scopes, binding, credential_ttl_s,"
	" created_ms, updated_ms) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)";
static const char SQL_EDIT_COMP[] =
	"UPDATE auth_components SET name = ?2, type = ?3, issuer = ?4, discovery_url = ?5,"
	" authorization_endpoint = ?6, token_endpoint = ?7, jwks_uri = ?8, userinfo_endpoint = ?9, client_id = ?10,"
	" secret_ref = ?11, scopes = ?12, binding = ?13, credential_ttl_s = ?14, updated_ms = ?15 WHERE id = ?1";
static const char SQL_COMP_STATE[] = "UPDATE auth_components SET state = ?2, updated_ms = ?3 WHERE id = ?1";
static const char SQL_ENTITY[] = "SELECT id FROM entities WHERE handle = ?1";
static const char SQL_LEVEL[] = "SELECT until_ms, verified_by FROM auth_thread_level WHERE thread_id = ?1";

void sqlite__auth_col_text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static void comp_row(sqlite3_stmt *s, store_auth_component *c)
{
	char *const texts[] = {c->issuer,    c->discovery_url, c->authorization_endpoint, c->token_endpoint,
			       c->jwks_uri,  c->userinfo_endpoint, c->client_id,           c->secret_ref,
			       c->scopes};
	c->id = (uint64_t)sqlite3_column_int64(s, 0);
	c->entity_id = (uint64_t)sqlite3_column_int64(s, 1);
	sqlite__auth_col_text(s, 2, c->name, sizeof(c->name));
	c->type = sqlite3_column_int(s, 3);
	c->state = sqlite3_column_int(s, 4);
	for (int i = 0; i < 9; i++)
		sqlite__auth_col_text(s, 5 + i, texts[i], STORE_AUTH_STR + 1);
	c->binding = sqlite3_column_int(s, 14);
	c->credential_ttl_s = (uint32_t)sqlite3_column_int64(s, 15);
	c->created_ms = (uint64_t)sqlite3_column_int64(s, 16);
	c->updated_ms = (uint64_t)sqlite3_column_int64(s, 17);
	/* the entity's handle names its folder of client secrets (exchange.c) */
	sqlite__auth_col_text(s, 18, c->entity, sizeof(c->entity));
}

int sqlite__auth_comp_load(store_be *b, uint64_t id, store_auth_component *c)
{
	sqlite3_stmt *s = sqlite__stmt(b, SQL_COMP);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)id);
	sr = sqlite3_step(s);
	if (sr == SQLITE_ROW)
		comp_row(s, c);
	sqlite3_reset(s);
	if (sr == SQLITE_DONE)
		return PARLEY_E_NO_SUCH_COMPONENT;
	return sr == SQLITE_ROW ? PARLEY_OK : sqlite__error(b, "auth component");
}

/* The job's one result component (allocated on first use). */
static store_auth_component *one_comp(store_job *j)
{
	if (j->auth.comps == NULL && (j->auth.comps = parley__calloc(1, sizeof(*j->auth.comps))) == NULL)
		return NULL;
	j->auth.n_comps = 1;
	return j->auth.comps;
}

/* The entity of `handle` and the caller's place in its current staff list: PARLEY_E_NO_SUCH_ENTITY,
 * PARLEY_E_NOT_ENTITY_MEMBER (not staff: a gateway is never staff), NOT_ENTITY_ADMIN when need_admin. */
static int caller_role(store_be *b, const store_job *j, const char *handle, int need_admin, uint64_t *entity,
		       int *admin)
{
	sqlite3_stmt *s = sqlite__stmt(b, SQL_ENTITY);
	thr_staff st;
	int sr, rc;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
	sr = sqlite3_step(s);
	*entity = sr == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (sr == SQLITE_DONE)
		return PARLEY_E_NO_SUCH_ENTITY;
	if (sr != SQLITE_ROW)
		return sqlite__error(b, "auth entity");
	if ((rc = sqlite__thr_staff(b, *entity, &st)) != PARLEY_OK)
		return rc;
	rc = sqlite__auth_staff_role(&st, j->caller_account, admin);
	sqlite__thr_staff_free(&st);
	if (rc == PARLEY_OK && need_admin && !*admin)
		rc = PARLEY_E_NOT_ENTITY_ADMIN;
	return rc;
}

int sqlite__auth_staff_role(const thr_staff *st, uint64_t account, int *admin)
{
	const wire_staff_member *m = sqlite__thr_staff_of(st, account, admin);
	if (m == NULL || m->role == WIRE_ROLE_GATEWAY) {
		*admin = 0;
		return PARLEY_E_NOT_ENTITY_MEMBER;
	}
	return PARLEY_OK;
}

static int count_of(store_be *b, const char *sql, uint64_t p1, const char *text, uint64_t p3, int64_t *n)
{
	sqlite3_stmt *s = sqlite__stmt(b, sql);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)p1);
	if (text != NULL) {
		sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (int64_t)p3);
	}
	sr = sqlite3_step(s);
	*n = sr == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return sr == SQLITE_ROW ? PARLEY_OK : sqlite__error(b, "auth count");
}

static int write_comp(store_be *b, const store_auth_component *c, uint64_t entity, uint64_t now_ms, int create)
{
	sqlite3_stmt *s = sqlite__stmt(b, create ? SQL_NEW_COMP : SQL_EDIT_COMP);
	const char *const texts[] = {c->issuer,   c->discovery_url,     c->authorization_endpoint, c->token_endpoint,
				     c->jwks_uri, c->userinfo_endpoint, c->client_id,              c->secret_ref,
				     c->scopes};
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)(create ? entity : c->id));
	sqlite3_bind_text(s, 2, c->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, c->type);
	for (int i = 0; i < 9; i++)
		sqlite3_bind_text(s, 4 + i, texts[i], -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 13, c->binding);
	sqlite3_bind_int64(s, 14, c->credential_ttl_s);
	sqlite3_bind_int64(s, 15, (int64_t)now_ms);
	return sqlite__step_done(s) == SQLITE_DONE ? PARLEY_OK : sqlite__error(b, "auth component write");
}

int sqlite__auth_component_put(store_be *b, store_job *j)
{
	store_auth_component *in = j->auth.comps, *out;
	uint64_t entity;
	int admin, rc, create;
	int64_t n;

	if (in == NULL || j->auth.n_comps != 1)
		return PARLEY_E_INVAL;
	if ((rc = caller_role(b, j, in->entity, 1, &entity, &admin)) != PARLEY_OK)
		return rc;
	create = in->id == 0;
	if (!create) {
		store_auth_component old;
		if ((rc = sqlite__auth_comp_load(b, in->id, &old)) != PARLEY_OK)
			return rc;
		if (old.entity_id != entity)
			return PARLEY_E_NO_SUCH_COMPONENT;
		/* an active component is what customers are being sent: it changes only after deactivation */
		if (old.state == STORE_COMP_ACTIVE)
			return PARLEY_E_COMPONENT_INVALID;
	} else {
		if ((rc = count_of(b, SQL_COUNT_COMPS, entity, NULL, 0, &n)) != PARLEY_OK)
			return rc;
		if (n >= (int64_t)j->auth.limit)
			return PARLEY_E_COMPONENT_INVALID; /* auth_components_max */
	}
	if ((rc = count_of(b, SQL_NAME_TAKEN, entity, in->name, in->id, &n)) != PARLEY_OK)
		return rc;
	if (n != 0)
		return PARLEY_E_COMPONENT_INVALID; /* names are what staff pick a component by */
	if ((rc = write_comp(b, in, entity, j->now_ms, create)) != PARLEY_OK)
		return rc;
	out = in;
	return sqlite__auth_comp_load(b, create ? (uint64_t)sqlite3_last_insert_rowid(b->db) : in->id, out);
}

int sqlite__auth_component_state(store_be *b, store_job *j)
{
	store_auth_component *c = one_comp(j);
	uint64_t entity;
	int admin, rc, to = j->auth.state;
	sqlite3_stmt *s;

	if (c == NULL)
		return PARLEY_E_NOMEM;
	if ((rc = caller_role(b, j, j->auth.entity, 1, &entity, &admin)) != PARLEY_OK)
		return rc;
	if ((rc = sqlite__auth_comp_load(b, j->auth.component_id, c)) != PARLEY_OK)
		return rc;
	if (c->entity_id != entity)
		return PARLEY_E_NO_SUCH_COMPONENT;
	/* draft -> active, active <-> inactive; nothing goes back to draft */
	if (to != STORE_COMP_ACTIVE && to != STORE_COMP_INACTIVE)
		return PARLEY_E_COMPONENT_INVALID;
	if (to == STORE_COMP_INACTIVE && c->state == STORE_COMP_DRAFT)
		return PARLEY_E_COMPONENT_INVALID;
	if (c->state == to)
		return PARLEY_OK;
	if ((s = sqlite__stmt(b, SQL_COMP_STATE)) == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)c->id);
	sqlite3_bind_int(s, 2, to);
	sqlite3_bind_int64(s, 3, (int64_t)j->now_ms);
	if (sqlite__step_done(s) != SQLITE_DONE)
		return sqlite__error(b, "auth component state");
	c->state = to;
	c->updated_ms = j->now_ms;
	return PARLEY_OK;
}

int sqlite__auth_component_list(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	uint64_t entity;
	int admin, rc, sr;
	sqlite3_stmt *s;

	if ((rc = caller_role(b, j, a->entity, 0, &entity, &admin)) != PARLEY_OK)
		return rc;
	a->admin = admin;
	a->comps = parley__calloc(STORE_AUTH_MAX_COMPONENTS, sizeof(*a->comps));
	if (a->comps == NULL)
		return PARLEY_E_NOMEM;
	if ((s = sqlite__stmt(b, SQL_COMPS)) == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)entity);
	sqlite3_bind_int(s, 2, admin);
	while ((sr = sqlite3_step(s)) == SQLITE_ROW && a->n_comps < STORE_AUTH_MAX_COMPONENTS) {
		store_auth_component *c = &a->comps[a->n_comps++];
		comp_row(s, c);
		if (!admin) /* where the secret is kept is the admins' business */
			c->secret_ref[0] = '\0';
	}
	sqlite3_reset(s);
	return sr == SQLITE_ROW || sr == SQLITE_DONE ? PARLEY_OK : sqlite__error(b, "auth components");
}

int sqlite__auth_component_get(store_be *b, store_job *j)
{
	store_auth_component *c = one_comp(j);
	return c == NULL ? PARLEY_E_NOMEM : sqlite__auth_comp_load(b, j->auth.component_id, c);
}

int sqlite__auth_overlay(store_be *b, store_thread_info *t)
{
	sqlite3_stmt *s = sqlite__stmt(b, SQL_LEVEL);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)t->thread_id);
	sr = sqlite3_step(s);
	if (sr == SQLITE_ROW) {
		t->verification = STORE_LEVEL_AUTHENTICATED;
		t->verified_until_ms = (uint64_t)sqlite3_column_int64(s, 0);
		sqlite__auth_col_text(s, 1, t->verified_by, sizeof(t->verified_by));
	}
	sqlite3_reset(s);
	return sr == SQLITE_ROW || sr == SQLITE_DONE ? PARLEY_OK : sqlite__error(b, "auth level");
}
