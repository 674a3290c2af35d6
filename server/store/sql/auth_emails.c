/* Store, the emails a business knows for a thread's customer (docs/protocol.md §14.2,
 * AuthKnownEmail): the email binding accepts a sign-in only when its verified email is one of them.
 *
 * They are kept per (entity, customer identity), the identity auth_links uses: the account of a native
 * thread's customer, (gateway account, channel, channel user) for a channel thread. So what one business
 * records never vouches for a sign-in to another, and the many customers a gateway carries each have
 * their own. Addresses arrive lower-cased (wire__auth_email_norm, in the service). */
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/auth_internal.h"

#define WHO "entity_id = ?1 AND account_id = ?2 AND channel = ?3 AND channel_user = ?4"
static const char SQL_HAS[] = "SELECT count(*) FROM auth_known_emails WHERE " WHO " AND email = ?5";
static const char SQL_COUNT[] = "SELECT count(*) FROM auth_known_emails WHERE " WHO;
static const char SQL_ADD[] = "INSERT INTO auth_known_emails(entity_id, account_id, channel, channel_user,"
			      " email, added_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			      " ON CONFLICT(entity_id, account_id, channel, channel_user, email) DO NOTHING";
static const char SQL_DEL[] = "DELETE FROM auth_known_emails WHERE " WHO " AND email = ?5";
static const char SQL_LIST[] = "SELECT email FROM auth_known_emails WHERE " WHO " ORDER BY email LIMIT ?5";

/* sql with t's (entity, customer identity) bound to ?1..?4, and email (when not NULL) to ?5. */
static sql_stmt *who_stmt(store_be *b, const char *sql, const store_thread_info *t, const char *email)
{
	sql_stmt *s = sql__stmt(b, sql);
	if (s == NULL)
		return NULL;
	sql__bind_i64(s, 1, (int64_t)t->entity_id);
	sql__bind_i64(s, 2, (int64_t)t->customer);
	sql__bind_i64(s, 3, t->channel);
	sql__bind_text(s, 4, t->channel_user, -1);
	if (email != NULL)
		sql__bind_text(s, 5, email, -1);
	return s;
}

static int count_who(store_be *b, const char *sql, const store_thread_info *t, const char *email, int64_t *n)
{
	sql_stmt *s = who_stmt(b, sql, t, email);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sr = sql__step(s);
	*n = sr == SQL_ROW ? sql__col_i64(s, 0) : 0;
	sql__reset(s);
	return sr == SQL_ROW ? PARLEY_OK : sql__error(b, "auth known emails");
}

int sql__auth_email_known(store_be *b, const store_thread_info *t, const char *email, int *known)
{
	int64_t n = 0;
	int rc = count_who(b, SQL_HAS, t, email, &n);
	*known = rc == PARLEY_OK && n > 0;
	return rc;
}

int sql__auth_emails_load(store_be *b, const store_thread_info *t, store_auth_args *a)
{
	sql_stmt *s;
	int sr;

	if (a->emails == NULL && (a->emails = parley__calloc(STORE_AUTH_MAX_EMAILS, sizeof(*a->emails))) == NULL)
		return PARLEY_E_NOMEM;
	a->n_emails = 0;
	if ((s = who_stmt(b, SQL_LIST, t, NULL)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 5, STORE_AUTH_MAX_EMAILS);
	while ((sr = sql__step(s)) == SQL_ROW)
		sql__auth_col_text(s, 0, a->emails[a->n_emails++].addr, sizeof(a->emails[0].addr));
	sql__reset(s);
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "auth known emails list");
}

/* A staff member of the thread, or an admin of its entity (who may not be in it): the customer, a
 * gateway and strangers get AuthStart's refusals. */
static int may_record(store_be *b, const store_job *j, const store_thread_info *t)
{
	thr_staff st;
	int admin = 0, rc;

	if ((rc = sql__thr_staff(b, t->entity_id, &st)) != PARLEY_OK)
		return rc;
	rc = sql__auth_staff_role(&st, j->caller_account, &admin);
	sql__thr_staff_free(&st);
	if (rc == PARLEY_OK && !admin && !sql__thr_is_member(t, j->caller_account))
		rc = PARLEY_E_NOT_THREAD_MEMBER;
	if (rc == PARLEY_OK && t->customer == j->caller_account)
		rc = PARLEY_E_NOT_ENTITY_MEMBER;
	return rc;
}

static int add_or_remove(store_be *b, const store_job *j, const store_thread_info *t)
{
	const store_auth_args *a = &j->auth;
	const char *email = a->x->email.addr;
	sql_stmt *s;
	int64_t n = 0;
	int rc;

	if (!a->remove) {
		if ((rc = count_who(b, SQL_HAS, t, email, &n)) != PARLEY_OK)
			return rc;
		if (n > 0)
			return PARLEY_OK; /* already known: adding it again changes nothing */
		if ((rc = count_who(b, SQL_COUNT, t, NULL, &n)) != PARLEY_OK)
			return rc;
		if (n >= (int64_t)a->limit)
			return PARLEY_E_TOO_MANY_KNOWN_EMAILS;
	}
	if ((s = who_stmt(b, a->remove ? SQL_DEL : SQL_ADD, t, email)) == NULL)
		return PARLEY_E_STORE;
	if (!a->remove)
		sql__bind_i64(s, 6, (int64_t)j->now_ms);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "auth known email write");
}

int sql__auth_known_email(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	int rc;

	if (a->thread == NULL && (a->thread = parley__calloc(1, sizeof(*a->thread))) == NULL)
		return PARLEY_E_NOMEM;
	if ((rc = sql__thr_load(b, a->thread_id, a->thread)) != PARLEY_OK)
		return rc;
	if ((rc = may_record(b, j, a->thread)) != PARLEY_OK)
		return rc;
	if (a->x->email.addr[0] != '\0' && (rc = add_or_remove(b, j, a->thread)) != PARLEY_OK)
		return rc;
	return sql__auth_emails_load(b, a->thread, a);
}
