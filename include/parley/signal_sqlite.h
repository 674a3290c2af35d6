/* parley — SQLite implementation of the Signal store interface (<parley/signal_store.h>).
 *
 * One database file holds the local identity, remote identities (trust on first use), session
 * records, one-time and signed prekeys, and sender-key records. The file is created with mode 0600
 * (and tightened to 0600 if it already exists), runs in WAL mode with secure_delete on (deleted
 * secrets are overwritten on disk) and checkpoints and truncates the WAL after every commit (so the
 * -wal file does not keep old keys either), and carries a schema version (PRAGMA user_version) that
 * parley_signal_sqlite_open migrates forward inside a transaction.
 *
 * Threading: a handle is used by one thread at a time (like the store contract says).
 */
#ifndef PARLEY_SIGNAL_SQLITE_H
#define PARLEY_SIGNAL_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include <parley/export.h>
#include <parley/signal_store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct parley_signal_sqlite parley_signal_sqlite;

/* Open (creating if needed) the database at path and migrate it to the current schema. On success
 * *out is a handle to close with parley_signal_sqlite_close; on failure *out is NULL.
 * Errors: PARLEY_E_INVAL, PARLEY_E_IO (cannot create/open the file), PARLEY_E_STORE (SQLite error,
 * or a schema newer than this library knows), PARLEY_E_NOMEM. */
PARLEY_EXPORT int parley_signal_sqlite_open(parley_signal_sqlite **out, const char *path);

/* Close the handle: finalises statements, wipes the last blob handed out. NULL-safe. Any
 * parley_signal_store filled from it must not be used afterwards. */
PARLEY_EXPORT void parley_signal_sqlite_close(parley_signal_sqlite *db);

/* Set (or replace) the local identity key pair and registration id. Copies its arguments. */
PARLEY_EXPORT int parley_signal_sqlite_set_identity(parley_signal_sqlite *db, const parley_keypair *identity,
	uint32_t registration_id);

/* Fill *out with callbacks over db (out->user = db). The struct may be passed to parley_signal_ctx_new
 * and the parley_group_* functions; it stays valid until parley_signal_sqlite_close. */
PARLEY_EXPORT void parley_signal_sqlite_store(parley_signal_sqlite *db, parley_signal_store *out);

/* Number of one-time prekeys left (for refilling the server's supply). */
PARLEY_EXPORT int parley_signal_sqlite_prekey_count(parley_signal_sqlite *db, uint32_t *count);

/* Schema version this library writes (PRAGMA user_version after open). */
#define PARLEY_SIGNAL_SQLITE_SCHEMA 1

#ifdef __cplusplus
}
#endif
#endif
