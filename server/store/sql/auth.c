/* Store, customer authentication (docs/protocol.md §14.2): an entity's authorization request
 * components, the requests sent to a thread's customer, the subjects linked to customers, the
 * credentials, and the level each thread stands at, versioned as their own schema "server.auth".
 *
 * The level lives in its own table keyed by thread id (auth_thread_level), not in a column of threads:
 * the thread store stays the thread store's, and sql__auth_overlay lays the level over the channel's
 * baseline wherever a thread is loaded. Callers are checked here, in the op's own transaction, against
 * the entity's CURRENT signed staff list, like the thread store does.
 *
 * This file: the schema, the components, the overlay. auth_requests.c: the requests and credentials.
 * auth_emails.c: the customers' known emails (the email binding). */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/auth_internal.h"

#define COMP_COLS                                                                                            \
	"id, entity_id, name, type, state, issuer, discovery_url, authorization_endpoint, token_endpoint,"  \
	" jwks_uri, userinfo_endpoint, client_id, secret_ref, scopes, binding, credential_ttl_s, created_ms," \
	" updated_ms, (SELECT handle FROM entities WHERE entities.id = auth_components.entity_id)"
static const char SQL_COMP[] = "SELECT " COMP_COLS " FROM auth_components WHERE id = ?1";
static const char SQL_COMPS[] = "SELECT " COMP_COLS " FROM auth_components WHERE entity_id = ?1 AND (CAST(?2 AS BIGINT) <> 0 OR state = 2)"
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

void sql__auth_col_text(sql_stmt *s, int col, char *dst, size_t cap)
{
	const unsigned char *t = sql__col_text(s, col);
	snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static void comp_row(sql_stmt *s, store_auth_component *c)
{
	char *const texts[] = {c->issuer,    c->discovery_url, c->authorization_endpoint, c->token_endpoint,
			       c->jwks_uri,  c->userinfo_endpoint, c->client_id,           c->secret_ref,
			       c->scopes};
	c->id = (uint64_t)sql__col_i64(s, 0);
	c->entity_id = (uint64_t)sql__col_i64(s, 1);
	sql__auth_col_text(s, 2, c->name, sizeof(c->name));
	c->type = sql__col_int(s, 3);
	c->state = sql__col_int(s, 4);
	for (int i = 0; i < 9; i++)
		sql__auth_col_text(s, 5 + i, texts[i], STORE_AUTH_STR + 1);
	c->binding = sql__col_int(s, 14);
	c->credential_ttl_s = (uint32_t)sql__col_i64(s, 15);
	c->created_ms = (uint64_t)sql__col_i64(s, 16);
	c->updated_ms = (uint64_t)sql__col_i64(s, 17);
	/* the entity's handle names its folder of client secrets (exchange.c) */
	sql__auth_col_text(s, 18, c->entity, sizeof(c->entity));
}

int sql__auth_comp_load(store_be *b, uint64_t id, store_auth_component *c)
{
	sql_stmt *s = sql__stmt(b, SQL_COMP);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)id);
	sr = sql__step(s);
	if (sr == SQL_ROW)
		comp_row(s, c);
	sql__reset(s);
	if (sr == SQL_DONE)
		return PARLEY_E_NO_SUCH_COMPONENT;
	return sr == SQL_ROW ? PARLEY_OK : sql__error(b, "auth component");
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
	sql_stmt *s = sql__stmt(b, SQL_ENTITY);
	thr_staff st;
	int sr, rc;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(s, 1, handle, -1);
	sr = sql__step(s);
	*entity = sr == SQL_ROW ? (uint64_t)sql__col_i64(s, 0) : 0;
	sql__reset(s);
	if (sr == SQL_DONE)
		return PARLEY_E_NO_SUCH_ENTITY;
	if (sr != SQL_ROW)
		return sql__error(b, "auth entity");
	if ((rc = sql__thr_staff(b, *entity, &st)) != PARLEY_OK)
		return rc;
	rc = sql__auth_staff_role(&st, j->caller_account, admin);
	sql__thr_staff_free(&st);
	if (rc == PARLEY_OK && need_admin && !*admin)
		rc = PARLEY_E_NOT_ENTITY_ADMIN;
	return rc;
}

int sql__auth_staff_role(const thr_staff *st, uint64_t account, int *admin)
{
	const wire_staff_member *m = sql__thr_staff_of(st, account, admin);
	if (m == NULL || m->role == WIRE_ROLE_GATEWAY) {
		*admin = 0;
		return PARLEY_E_NOT_ENTITY_MEMBER;
	}
	return PARLEY_OK;
}

static int count_of(store_be *b, const char *sql, uint64_t p1, const char *text, uint64_t p3, int64_t *n)
{
	sql_stmt *s = sql__stmt(b, sql);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)p1);
	if (text != NULL) {
		sql__bind_text(s, 2, text, -1);
		sql__bind_i64(s, 3, (int64_t)p3);
	}
	sr = sql__step(s);
	*n = sr == SQL_ROW ? sql__col_i64(s, 0) : 0;
	sql__reset(s);
	return sr == SQL_ROW ? PARLEY_OK : sql__error(b, "auth count");
}

static int write_comp(store_be *b, const store_auth_component *c, uint64_t entity, uint64_t now_ms, int create)
{
	sql_stmt *s = sql__stmt(b, create ? SQL_NEW_COMP : SQL_EDIT_COMP);
	const char *const texts[] = {c->issuer,   c->discovery_url,     c->authorization_endpoint, c->token_endpoint,
				     c->jwks_uri, c->userinfo_endpoint, c->client_id,              c->secret_ref,
				     c->scopes};
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)(create ? entity : c->id));
	sql__bind_text(s, 2, c->name, -1);
	sql__bind_i64(s, 3, c->type);
	for (int i = 0; i < 9; i++)
		sql__bind_text(s, 4 + i, texts[i], -1);
	sql__bind_i64(s, 13, c->binding);
	sql__bind_i64(s, 14, c->credential_ttl_s);
	sql__bind_i64(s, 15, (int64_t)now_ms);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "auth component write");
}

int sql__auth_component_put(store_be *b, store_job *j)
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
		if ((rc = sql__auth_comp_load(b, in->id, &old)) != PARLEY_OK)
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
	return sql__auth_comp_load(b, create ? (uint64_t)sql__last_id(b) : in->id, out);
}

int sql__auth_component_state(store_be *b, store_job *j)
{
	store_auth_component *c = one_comp(j);
	uint64_t entity;
	int admin, rc, to = j->auth.state;
	sql_stmt *s;

	if (c == NULL)
		return PARLEY_E_NOMEM;
	if ((rc = caller_role(b, j, j->auth.entity, 1, &entity, &admin)) != PARLEY_OK)
		return rc;
	if ((rc = sql__auth_comp_load(b, j->auth.component_id, c)) != PARLEY_OK)
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
	if ((s = sql__stmt(b, SQL_COMP_STATE)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)c->id);
	sql__bind_i64(s, 2, to);
	sql__bind_i64(s, 3, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth component state");
	c->state = to;
	c->updated_ms = j->now_ms;
	return PARLEY_OK;
}

int sql__auth_component_list(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	uint64_t entity;
	int admin, rc, sr;
	sql_stmt *s;

	if ((rc = caller_role(b, j, a->entity, 0, &entity, &admin)) != PARLEY_OK)
		return rc;
	a->admin = admin;
	a->comps = parley__calloc(STORE_AUTH_MAX_COMPONENTS, sizeof(*a->comps));
	if (a->comps == NULL)
		return PARLEY_E_NOMEM;
	if ((s = sql__stmt(b, SQL_COMPS)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)entity);
	sql__bind_i64(s, 2, admin);
	while ((sr = sql__step(s)) == SQL_ROW && a->n_comps < STORE_AUTH_MAX_COMPONENTS) {
		store_auth_component *c = &a->comps[a->n_comps++];
		comp_row(s, c);
		if (!admin) /* where the secret is kept is the admins' business */
			c->secret_ref[0] = '\0';
	}
	sql__reset(s);
	return sr == SQL_ROW || sr == SQL_DONE ? PARLEY_OK : sql__error(b, "auth components");
}

int sql__auth_component_get(store_be *b, store_job *j)
{
	store_auth_component *c = one_comp(j);
	return c == NULL ? PARLEY_E_NOMEM : sql__auth_comp_load(b, j->auth.component_id, c);
}

int sql__auth_overlay(store_be *b, store_thread_info *t)
{
	sql_stmt *s = sql__stmt(b, SQL_LEVEL);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sr = sql__step(s);
	if (sr == SQL_ROW) {
		t->verification = STORE_LEVEL_AUTHENTICATED;
		t->verified_until_ms = (uint64_t)sql__col_i64(s, 0);
		sql__auth_col_text(s, 1, t->verified_by, sizeof(t->verified_by));
	}
	sql__reset(s);
	return sr == SQL_ROW || sr == SQL_DONE ? PARLEY_OK : sql__error(b, "auth level");
}
