/* Store, settings of the whole database (server_settings: name -> value): values every node sharing the
 * database must agree on, checked at start-up (the OTP key's fingerprint: auth/otpcheck.c). */
#include <string.h>

#include <parley/error.h>

#include "store/sql/sql.h"

/* DO NOTHING on a conflict: two nodes starting at once both try; the loser's insert waits for the
 * winner's commit, changes nothing, and the SELECT after it (a new snapshot under READ COMMITTED, the
 * one writer under SQLite) sees the winner's value, so exactly one of them reports "stored now". */
static const char SQL_SETTING_INSERT[] =
	"INSERT INTO server_settings (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING";
static const char SQL_SETTING_GET[] = "SELECT value FROM server_settings WHERE name = ?1";
static const char SQL_SETTING_SET[] = "UPDATE server_settings SET value = ?2 WHERE name = ?1";

/* Runs an insert or update of (name, value); SQL_DONE on success. */
static int put(store_be *b, const char *sql, const store_set_args *a)
{
	sql_stmt *s = sql__stmt(b, sql);
	if (s == NULL)
		return SQL_ERROR;
	sql__bind_text(s, 1, a->name, -1);
	sql__bind_blob(s, 2, a->value, a->value_len);
	return sql__step_done(s);
}

int sql__setting_check(store_be *b, store_job *j)
{
	store_set_args *a = &j->set;
	sql_stmt *s;
	int sr, same;

	if (a->name[0] == '\0' || a->value_len == 0 || a->value_len > sizeof(a->value))
		return PARLEY_E_INVAL;
	if (put(b, SQL_SETTING_INSERT, a) != SQL_DONE)
		return sql__error(b, "setting insert");
	if (sql__changes(b) == 1) {
		a->result = STORE_SETTING_STORED;
		return PARLEY_OK;
	}
	if ((s = sql__stmt(b, SQL_SETTING_GET)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(s, 1, a->name, -1);
	sr = sql__step(s);
	same = sr == SQL_ROW && (size_t)sql__col_bytes(s, 0) == a->value_len &&
	       memcmp(sql__col_blob(s, 0), a->value, a->value_len) == 0;
	sql__reset(s);
	if (sr != SQL_ROW) /* the insert just conflicted: the row exists */
		return sql__error(b, "setting get");
	a->result = same ? STORE_SETTING_SAME : STORE_SETTING_DIFFERS;
	if (!same && a->replace && put(b, SQL_SETTING_SET, a) != SQL_DONE)
		return sql__error(b, "setting replace");
	return PARLEY_OK;
}
