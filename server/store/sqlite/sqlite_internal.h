/* What the SQLite backend's domain files (accounts.c, keys.c, relay.c) get from its engine (engine.c).
 *
 * Everything here runs on the store thread only. The connection is opened without SQLite's own mutexes
 * (store__open's thread opens it, then only the store thread touches it).
 *
 * Statements: a domain file keeps its SQL in `static const char NAME[] = "..."` constants and asks the
 * engine for the prepared statement with sqlite__stmt(b, NAME). The engine prepares each text once,
 * keyed by the text's address, and keeps it for the life of the connection; a domain's SQL stays in its
 * own file and a new statement is one constant, not an entry in a shared enum. */
#ifndef PARLEYD_STORE_SQLITE_INTERNAL_H
#define PARLEYD_STORE_SQLITE_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/backend.h"

struct sqlite_cached_stmt {
	const char *sql; /* key: the address of a domain file's SQL constant */
	sqlite3_stmt *st;
};

struct store_be {
	sqlite3 *db;
	int wal_pages;         /* frames in the WAL after the last commit (wal_hook) */
	int ckpt_pages;        /* idle checkpoint threshold (store_config.wal_checkpoint_pages) */
	unsigned max_devices;  /* per account (accounts.c) */
	struct sqlite_cached_stmt *stmts; /* open addressing, power-of-two capacity */
	size_t n_stmts, cap_stmts;
	/* disk space (space.c) */
	char *db_path, *reserve_path;
	uint64_t reserve_bytes;
	int reserve_present;
	int full;              /* a write hit SQLITE_FULL and there is no room again yet */
	struct sqlite_share *share; /* per-sender tallies of long queues (share.c), NULL until needed */
};

/* The cached statement for `sql`, prepared on first use, reset and with its bindings cleared, so a
 * caller that returned early last time leaves nothing behind. NULL (logged) if it cannot be prepared.
 * Callers still reset a statement when done with it: an unfinished SELECT would keep its read
 * transaction (and the WAL frames it sees) open. */
sqlite3_stmt *sqlite__stmt(store_be *b, const char *sql);
/* Logs `what` with SQLite's message; returns PARLEY_E_STORE, or PARLEY_E_STORAGE_FULL when the
 * failure was SQLITE_FULL (the backend then enters the full state: space.c). */
int sqlite__error(store_be *b, const char *what);
/* Steps a statement without result rows, then resets it and clears its bindings. Returns the SQLite
 * code of the step (SQLITE_DONE on success). */
int sqlite__step_done(sqlite3_stmt *st);
/* Single-integer query with one or two integer parameters (p2 ignored when the SQL has one): on
 * SQLITE_ROW, *v is the first column. Returns the SQLite code of the step. */
int sqlite__query_int(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t *v);
/* Copies a blob column of exactly n bytes into dst; zeroes dst for NULL or any other length. */
void sqlite__col_blob(sqlite3_stmt *st, int col, uint8_t *dst, size_t n);
/* The account's stored signed device list (accounts.c) -> *out (parley__malloc, NULL when none). */
int sqlite__read_devlist(store_be *b, uint64_t account_id, uint8_t **out, size_t *len);

/* PARLEY_OK when the connection runs with journal_mode=WAL and synchronous FULL (or EXTRA); else logs
 * what it found and returns PARLEY_E_STORE. Exposed for the store's unit test. */
int sqlite__check_durability(sqlite3 *db, const char *path);

/* share.c: how many envelopes of `sender` (account) the queue of (account, device) holds, for
 * queue_sender_share. queue_len is the device's counter as read in this transaction. share_moved: the
 * relay inserted (+1) or deleted (-1) one envelope of `sender`; share_tracked: whether deletes must say
 * whose envelope went; share_clear: anything else removed rows (purge, rollback); share_free at close. */
int sqlite__share_count(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, uint64_t sender,
			uint64_t *count);
void sqlite__share_moved(store_be *b, uint64_t account, uint32_t device, uint64_t sender, int delta);
int sqlite__share_tracked(store_be *b, uint64_t account, uint32_t device);
void sqlite__share_clear(store_be *b);
void sqlite__share_free(store_be *b);

/* space.c: the disk reserve and the full state (see there). space_open after the pragmas; the
 * reserve is `<db_path>.reserve`, none if reserve_bytes is 0; max_page_count > 0 caps the database
 * (tests). space_full: a write hit SQLITE_FULL. space_maintain: between batches (and every second
 * while not OK). space_state: STORE_SPACE_*. */
int sqlite__space_open(store_be *b, const char *db_path, uint64_t reserve_bytes, unsigned max_page_count);
void sqlite__space_close(store_be *b);
void sqlite__space_full(store_be *b);
void sqlite__space_maintain(store_be *b, int idle);
int sqlite__space_state(store_be *b);

/* accounts.c, for the other domains: handle -> account id. PARLEY_E_NO_SUCH_ACCOUNT, PARLEY_E_STORE. */
int sqlite__account_by_handle(store_be *b, const char *handle, uint64_t *id);

/* relay.c, for threads.c: the relay's queue, shared so a group message is queued exactly as a pairwise
 * one. enqueue: one envelope into (account, device)'s queue (its length counter and the per-sender
 * tally follow). sender_room: PARLEY_E_SENDER_QUEUE_FULL when `sender` already holds `limit` envelopes
 * of that queue (queue_len: its counter as read in this transaction; 0 or sending to one's own
 * account: no limit). */
typedef struct sqlite_env {
	uint64_t account;       /* recipient */
	uint32_t device;
	uint64_t sender_account;
	uint32_t sender_device;
	const char *sender_handle;
	uint32_t type;
	uint64_t client_ts, server_ts, expires_ms, thread_id;
	const uint8_t *content;
	size_t content_len;
} sqlite_env;
int sqlite__enqueue(store_be *b, const sqlite_env *e, uint64_t *server_id);
/* The recipient's devices with keys (ascending; sending to one's own account skips the sending device),
 * and the check of a send's per-device messages against them: missing / extra -> MISMATCHED_DEVICES,
 * another registration id -> STALE_DEVICES, the lists allocated into mm (the caller frees them). */
typedef struct sqlite_expected {
	uint32_t device_id, registration_id, queue_len;
} sqlite_expected;
typedef struct sqlite_mismatch {
	uint32_t *missing, *extra, *stale;
	size_t n_missing, n_extra, n_stale;
} sqlite_mismatch;
int sqlite__load_expected(store_be *b, uint64_t account, uint64_t sender, uint32_t sender_device,
			  sqlite_expected *e, size_t cap, size_t *n);
int sqlite__check_devices(const store_out_msg *msgs, size_t n_msgs, const sqlite_expected *e, size_t ne,
			  sqlite_mismatch *mm);
int sqlite__sender_room(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, uint64_t sender,
			unsigned limit);

/* One function per store op, named after its STORE_OPS line (sqlite__create_account, ...), defined in
 * the file of its domain; engine.c builds the backend's run table from the same list. */
#define SQLITE_OP_DECL_(OP, name, kind, domain) int sqlite__##name(store_be *b, store_job *j);
STORE_OPS(SQLITE_OP_DECL_)
#undef SQLITE_OP_DECL_

/* contacts.c versions its tables as their own schema ("server.contacts"), migrated after "server". */
#include "common/migrate.h"
extern const migrate_schema sqlite__contacts_schema;
/* entities.c: the registry's tables ("server.entities"). */
extern const migrate_schema sqlite__entities_schema;
/* threads.c: the thread tables ("server.threads", with thread_envelopes for relay.c) */
extern const migrate_schema sqlite__threads_schema;
/* auth.c: customer authentication ("server.auth", migrated after "server.threads") */
extern const migrate_schema sqlite__auth_schema;
extern const migrate_schema sqlite__auth_jti_schema;
/* auth.c, for threads.c: an authenticated thread's level, expiry and component over the baseline */
int sqlite__auth_overlay(store_be *b, store_thread_info *t);
/* threads.c, for entities.c: a removed staff member leaves every thread of the entity at once */
int sqlite__threads_drop_member(store_be *b, uint64_t entity, uint64_t account, uint64_t now_ms);
/* entities.c, for accounts.c: 1 if an entity holds the handle (registration refuses it), else 0. */
int sqlite__entity_handle_taken(store_be *b, const char *handle);
/* SEND: the sender accepted the recipient (contacts.c). */
int sqlite__contact_touch(store_be *b, uint64_t sender, uint64_t recipient, uint64_t now_ms);

#endif
