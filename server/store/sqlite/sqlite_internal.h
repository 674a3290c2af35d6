/* The SQLite driver's own state, shared by its files (engine.c: connection, statements, transactions,
 * the "server" schema; schema.c: the domain schemas' DDL; space.c: the disk reserve). The domain logic
 * above it (server/store/sql/) sees only sql.h.
 *
 * Everything here runs on the store thread only. The connection is opened without SQLite's own mutexes
 * (store__open's thread opens it, then only the store thread touches it). */
#ifndef PARLEYD_STORE_SQLITE_INTERNAL_H
#define PARLEYD_STORE_SQLITE_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "common/migrate.h"
#include "store/sql/sql.h"

/* A cached statement: sql.h's handle and SQLite's. */
typedef struct sqlite_stmt_w {
	sql_stmt base;
	sqlite3_stmt *st;
} sqlite_stmt_w;

typedef struct sqlite_be {
	store_be base;         /* first: the domain files get &base */
	sqlite3 *db;
	int wal_pages;         /* frames in the WAL after the last commit (wal_hook) */
	int ckpt_pages;        /* idle checkpoint threshold (store_config.wal_checkpoint_pages) */
	sql_cache stmts;       /* key -> sqlite_stmt_w * */
	/* disk space (space.c) */
	char *db_path, *reserve_path;
	uint64_t reserve_bytes;
	int reserve_present;
	int full;              /* a write hit SQLITE_FULL and there is no room again yet */
} sqlite_be;

static inline sqlite_be *sqlite__be(store_be *b)
{
	return (sqlite_be *)b;
}

/* PARLEY_OK when the connection runs with journal_mode=WAL and synchronous FULL (or EXTRA); else logs
 * what it found and returns PARLEY_E_STORE. Exposed for the store's unit test. */
int sqlite__check_durability(sqlite3 *db, const char *path);
/* engine.c: sql.h's error hook (logs, notices a full disk) */
int sqlite__error(store_be *b, const char *what);

/* space.c: the disk reserve and the full state (see there). space_open after the pragmas; the
 * reserve is `<db_path>.reserve`, none if reserve_bytes is 0; max_page_count > 0 caps the database
 * (tests). space_full: a write hit SQLITE_FULL. space_maintain: between batches (and every second
 * while not OK). space_state: STORE_SPACE_*. */
int sqlite__space_open(sqlite_be *b, const char *db_path, uint64_t reserve_bytes, unsigned max_page_count);
void sqlite__space_close(sqlite_be *b);
void sqlite__space_full(sqlite_be *b);
void sqlite__space_maintain(sqlite_be *b, int idle);
int sqlite__space_state(store_be *b);

/* schema.c: the domain schemas, migrated after the "server" schema (contacts, entities, threads, auth,
 * settings). */
extern const migrate_schema sqlite__contacts_schema;
extern const migrate_schema sqlite__entities_schema;
extern const migrate_schema sqlite__threads_schema;
extern const migrate_schema sqlite__auth_schema;
extern const migrate_schema sqlite__auth_jti_schema;
extern const migrate_schema sqlite__settings_schema;

#endif
