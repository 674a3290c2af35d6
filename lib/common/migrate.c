/* Versioned SQLite schema migrations shared by every database of the project. See migrate.h. */
#include "common/migrate.h"

#include <stdarg.h>
#include <stdio.h>

#include <parley/error.h>

static const char create_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
				 "name TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID";

static void set_err(migrate_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(migrate_result *res, const char *fmt, ...)
{
	if (res == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
}

/* 1 and *v when a row exists, 0 when none, -1 on error. */
static int read_row(sqlite3 *db, const char *name, int *v)
{
	sqlite3_stmt *st = NULL;
	int found = -1;
	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		found = 1;
	} else if (rc == SQLITE_DONE) {
		found = 0;
	}
	sqlite3_finalize(st);
	return found;
}

static int table_exists(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int exists = -1;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	exists = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return exists;
}

static int user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st = NULL;
	int rc = PARLEY_E_STORE;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return PARLEY_E_STORE;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = PARLEY_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Keeps the pragma of a legacy schema equal to its recorded version. Without it a database adopted at
 * version N and later migrated further would still say N to a program from before this helper, which
 * would then open a schema newer than it knows; a database created here would say 0, and such a
 * program would try to create its tables again. The pragma is part of the transaction. */
static int set_user_version(sqlite3 *db, int v)
{
	char sql[48];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? PARLEY_OK : PARLEY_E_STORE;
}

/* The current version of `schema`, inside the caller's transaction when there is one. */
static int current(sqlite3 *db, const migrate_schema *schema, int *v)
{
	*v = 0;
	int exists = table_exists(db);
	if (exists < 0)
		return PARLEY_E_STORE;
	if (exists) {
		int found = read_row(db, schema->name, v);
		if (found < 0)
			return PARLEY_E_STORE;
		if (found)
			return PARLEY_OK;
	}
	if (schema->legacy_user_version)
		return user_version(db, v);
	return PARLEY_OK;
}

/* A version found in the file that this code cannot migrate from: newer than its steps, or negative
 * (PRAGMA user_version is a signed 32-bit field: a foreign or damaged file; steps[v] would be read out
 * of bounds). */
static int check_version(const migrate_schema *schema, int v, int target, migrate_result *res)
{
	if (v > target) {
		set_err(res, "the %s schema is at version %d, newer than this program's %d", schema->name, v, target);
		return PARLEY_E_BAD_VERSION;
	}
	if (v < 0) {
		set_err(res, "the %s schema has an invalid version %d", schema->name, v);
		return PARLEY_E_STORE;
	}
	return PARLEY_OK;
}

int parley__migrate_version(sqlite3 *db, const char *name, int *version)
{
	migrate_schema s = {.name = name};
	return current(db, &s, version);
}

int parley__migrate(sqlite3 *db, const migrate_schema *schema, migrate_result *res)
{
	int v = 0, rc;
	const int target = (int)schema->n_steps;

	if (res != NULL) {
		res->from = res->to = 0;
		res->err[0] = '\0';
	}
	/* the common case (nothing to do) takes no write lock */
	rc = current(db, schema, &v);
	if (rc != PARLEY_OK) {
		set_err(res, "reading the %s schema version: %s", schema->name, sqlite3_errmsg(db));
		return rc;
	}
	if (res != NULL)
		res->from = res->to = v;
	rc = check_version(schema, v, target, res);
	if (rc != PARLEY_OK)
		return rc;
	if (v == target && table_exists(db) == 1)
		return PARLEY_OK;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		set_err(res, "%s migration: begin: %s", schema->name, sqlite3_errmsg(db));
		return PARLEY_E_STORE;
	}
	/* read again under the lock: another process may have migrated in between */
	rc = current(db, schema, &v);
	if (rc != PARLEY_OK) {
		set_err(res, "reading the %s schema version: %s", schema->name, sqlite3_errmsg(db));
		goto fail;
	}
	rc = check_version(schema, v, target, res);
	if (rc != PARLEY_OK)
		goto fail;
	if (sqlite3_exec(db, create_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(res, "%s migration: schema_version table: %s", schema->name, sqlite3_errmsg(db));
		rc = PARLEY_E_STORE;
		goto fail;
	}
	for (int i = v; i < target; i++) {
		if (sqlite3_exec(db, schema->steps[i], NULL, NULL, NULL) != SQLITE_OK) {
			set_err(res, "%s migration to version %d: %s", schema->name, i + 1, sqlite3_errmsg(db));
			rc = PARLEY_E_STORE;
			goto fail;
		}
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO schema_version (name, version) VALUES (?1, ?2)", -1, &st,
			       NULL) != SQLITE_OK) {
		set_err(res, "%s migration: %s", schema->name, sqlite3_errmsg(db));
		rc = PARLEY_E_STORE;
		goto fail;
	}
	sqlite3_bind_text(st, 1, schema->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, target);
	rc = sqlite3_step(st) == SQLITE_DONE ? PARLEY_OK : PARLEY_E_STORE;
	sqlite3_finalize(st);
	if (rc == PARLEY_OK && schema->legacy_user_version)
		rc = set_user_version(db, target);
	if (rc != PARLEY_OK) {
		set_err(res, "%s migration: recording version %d: %s", schema->name, target, sqlite3_errmsg(db));
		goto fail;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		set_err(res, "%s migration: commit: %s", schema->name, sqlite3_errmsg(db));
		rc = PARLEY_E_STORE;
		goto fail;
	}
	if (res != NULL) {
		res->from = v;
		res->to = target;
	}
	return PARLEY_OK;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
