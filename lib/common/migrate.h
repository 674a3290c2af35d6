/* One schema-migration helper for every SQLite database of the project: the server store
 * (server/store/sqlite), the Signal store (signal.db) and the client's own database (client.db).
 *
 * A database's schema is an append-only array of SQL steps; step i takes the schema from version i to
 * i + 1. The version is kept in a table `schema_version(name, version)`, one row per *schema name*, so
 * two modules can version their own tables inside one file without clobbering each other (PRAGMA
 * user_version has room for one number per file). A database written before this helper existed kept
 * its version in PRAGMA user_version: when a schema has no row yet, `legacy_user_version` says whether
 * that pragma is this schema's version (the one schema that used it in that file) and it is adopted;
 * the helper then keeps writing that schema's version into the pragma too, so a program from before
 * the helper still refuses a database newer than it knows. At most one schema per file may set it.
 *
 * All pending steps and the new version are written in one IMMEDIATE transaction: a crash mid-way
 * leaves the old version intact. A database whose version is newer than the array is refused
 * untouched (written by a newer parley).
 */
#ifndef PARLEY_COMMON_MIGRATE_H
#define PARLEY_COMMON_MIGRATE_H
#include <stddef.h>

#include <sqlite3.h>

typedef struct migrate_schema {
	const char *name;            /* e.g. "server", "signal", "client", "client.e2e" */
	const char *const *steps;    /* steps[i]: SQL taking version i to i + 1 (may hold several statements) */
	size_t n_steps;
	int legacy_user_version;     /* 1: adopt PRAGMA user_version when this schema has no row yet */
} migrate_schema;

/* Fills .steps and .n_steps from one static array of SQL steps. */
#define MIGRATE_STEPS(arr) .steps = (arr), .n_steps = sizeof(arr) / sizeof((arr)[0])

typedef struct migrate_result {
	int from;                    /* version found (0 for a new database) */
	int to;                      /* version now */
	char err[256];               /* what failed, for the caller's log or error message */
} migrate_result;

/* Applies the pending steps of `schema` to db (no transaction may be open). Returns PARLEY_OK,
 * PARLEY_E_STORE (SQL failed: res->err says which step; or the recorded version is negative; nothing
 * changed) or PARLEY_E_BAD_VERSION (the database is newer than this code; nothing changed). res may
 * be NULL. */
int parley__migrate(sqlite3 *db, const migrate_schema *schema, migrate_result *res);

/* The version recorded for `name` (0 when none). PARLEY_OK or PARLEY_E_STORE. */
int parley__migrate_version(sqlite3 *db, const char *name, int *version);

#endif
