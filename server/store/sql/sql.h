/* The store's domain logic (server/store/sql/: accounts, keys, relay, contacts, entities, threads,
 * customer authentication) is written once, against this small statement interface, and runs on
 * either database: the SQLite driver (server/store/sqlite/, the default, embedded) or the PostgreSQL
 * driver (server/store/postgres/, for several parleyd nodes sharing one database). A driver is a
 * table of functions (sql_ops); the domain files never see sqlite3 or libpq.
 *
 * The model is SQLite's: a cached prepared statement, numbered parameters ?1..?N bound one by one, then
 * stepped row by row and reset. The PostgreSQL driver rewrites ?N into $N once per statement, runs the
 * statement at the first step and walks its result. SQL text is the common dialect of both (RETURNING,
 * ON CONFLICT, coalesce, ...); where they differ a domain file asks for sql__stmt_d with one text per
 * dialect.
 *
 * Everything here runs on the store thread only. */
#ifndef PARLEYD_STORE_SQL_H
#define PARLEYD_STORE_SQL_H
#include <stddef.h>
#include <stdint.h>

#include "store/backend.h"

/* sql__step's answers (SQLite's own numbers, so that driver maps them one to one). */
enum { SQL_OK = 0, SQL_ERROR = 1, SQL_CONSTRAINT = 19, SQL_ROW = 100, SQL_DONE = 101 };
/* sql__col_type */
enum { SQL_T_INTEGER = 1, SQL_T_FLOAT = 2, SQL_T_TEXT = 3, SQL_T_BLOB = 4, SQL_T_NULL = 5 };

typedef struct sql_stmt sql_stmt;

/* One statement text per dialect, for the few statements whose SQL differs (keyed by the struct's
 * address, like a plain text). */
typedef struct sql_text {
	const char *sqlite;
	const char *pg;
} sql_text;

typedef struct sql_ops {
	const char *name;
	sql_stmt *(*stmt)(store_be *b, const char *key, const char *sql);
	void (*bind_i64)(sql_stmt *s, int i, int64_t v);
	void (*bind_double)(sql_stmt *s, int i, double v);
	void (*bind_text)(sql_stmt *s, int i, const char *v, int len); /* len < 0: up to the NUL */
	void (*bind_blob)(sql_stmt *s, int i, const void *v, size_t len);
	void (*bind_null)(sql_stmt *s, int i);
	int (*param_count)(sql_stmt *s);
	int (*step)(sql_stmt *s);
	int64_t (*col_i64)(sql_stmt *s, int c);
	double (*col_double)(sql_stmt *s, int c);
	const char *(*col_text)(sql_stmt *s, int c);   /* NUL-terminated; NULL for a NULL value */
	const void *(*col_blob)(sql_stmt *s, int c);   /* NULL for a NULL or empty value */
	int (*col_bytes)(sql_stmt *s, int c);
	int (*col_type)(sql_stmt *s, int c);
	void (*reset)(sql_stmt *s);
	int64_t (*changes)(store_be *b);
	int64_t (*last_id)(store_be *b);
	int (*error)(store_be *b, const char *what);
} sql_ops;

/* What every driver's connection state starts with (the driver's own struct embeds it first). */
struct store_be {
	const sql_ops *ops;
	unsigned max_devices;       /* per account (accounts.c) */
	struct sql_share *share;    /* per-sender tallies of long queues (share.c), NULL until needed */
	int share_exact;            /* 1: share.c counts with a query every time (several writers: the
	                             * PostgreSQL driver, where another node's commits change the queues) */
};

/* A statement as the drivers hand it out: the driver's struct embeds it first. */
struct sql_stmt {
	const sql_ops *ops;
	store_be *b;
};

/* The cached statement for `sql` (keyed by the text's address), prepared on first use, reset and with
 * its bindings cleared, so a caller that returned early last time leaves nothing behind. NULL (logged)
 * if it cannot be prepared. Callers still reset a statement when done with it (SQLite: an unfinished
 * SELECT keeps its read transaction open; PostgreSQL: it keeps its result in memory). */
static inline sql_stmt *sql__stmt(store_be *b, const char *sql)
{
	return b->ops->stmt(b, sql, sql);
}
static inline sql_stmt *sql__stmt_d(store_be *b, const sql_text *t)
{
	return b->ops->stmt(b, (const char *)t, b->ops->name[0] == 'p' ? t->pg : t->sqlite);
}
static inline void sql__bind_i64(sql_stmt *s, int i, int64_t v)
{
	s->ops->bind_i64(s, i, v);
}
static inline void sql__bind_double(sql_stmt *s, int i, double v)
{
	s->ops->bind_double(s, i, v);
}
static inline void sql__bind_text(sql_stmt *s, int i, const char *v, int len)
{
	s->ops->bind_text(s, i, v, len);
}
static inline void sql__bind_blob(sql_stmt *s, int i, const void *v, size_t len)
{
	s->ops->bind_blob(s, i, v, len);
}
static inline void sql__bind_null(sql_stmt *s, int i)
{
	s->ops->bind_null(s, i);
}
static inline int sql__param_count(sql_stmt *s)
{
	return s->ops->param_count(s);
}
/* SQL_ROW, SQL_DONE, SQL_CONSTRAINT (a unique, foreign-key or check constraint refused the write) or
 * SQL_ERROR. */
static inline int sql__step(sql_stmt *s)
{
	return s->ops->step(s);
}
static inline int64_t sql__col_i64(sql_stmt *s, int c)
{
	return s->ops->col_i64(s, c);
}
static inline int sql__col_int(sql_stmt *s, int c)
{
	return (int)s->ops->col_i64(s, c);
}
static inline double sql__col_double(sql_stmt *s, int c)
{
	return s->ops->col_double(s, c);
}
static inline const unsigned char *sql__col_text(sql_stmt *s, int c)
{
	return (const unsigned char *)s->ops->col_text(s, c);
}
static inline const void *sql__col_blob(sql_stmt *s, int c)
{
	return s->ops->col_blob(s, c);
}
static inline int sql__col_bytes(sql_stmt *s, int c)
{
	return s->ops->col_bytes(s, c);
}
static inline int sql__col_type(sql_stmt *s, int c)
{
	return s->ops->col_type(s, c);
}
static inline void sql__reset(sql_stmt *s)
{
	s->ops->reset(s);
}
/* Rows changed by the last INSERT, UPDATE or DELETE. */
static inline int64_t sql__changes(store_be *b)
{
	return b->ops->changes(b);
}
/* The id given to the row of the last INSERT into a table with a generated id. */
static inline int64_t sql__last_id(store_be *b)
{
	return b->ops->last_id(b);
}
/* Logs `what` with the database's message; returns PARLEY_E_STORE, or PARLEY_E_STORAGE_FULL when the
 * database is out of space (the SQLite driver then enters its full state). */
static inline int sql__error(store_be *b, const char *what)
{
	return b->ops->error(b, what);
}

/* cache.c: the drivers' statement cache, keyed by the address of the SQL constant (sql__stmt's key).
 * find: the entry of key, or the free entry where the caller then stores key and val and calls
 * sql__cache_added; NULL when out of memory. free: calls free_val for every value, empties the table. */
typedef struct sql_cache_entry {
	const void *key;
	void *val;
} sql_cache_entry;
typedef struct sql_cache {
	sql_cache_entry *t; /* open addressing, power-of-two capacity, at most half full */
	size_t n, cap;
} sql_cache;
sql_cache_entry *sql__cache_find(sql_cache *c, const void *key);
void sql__cache_added(sql_cache *c);
void sql__cache_free(sql_cache *c, void (*free_val)(void *val));

/* common.c: every driver's run table (backend.h), one entry per STORE_OPS line: sql__<name>. */
extern const store_run_fn sql__run_table[STORE_OP__COUNT];

/* Steps a statement without result rows, then resets it. Returns sql__step's answer. */
int sql__step_done(sql_stmt *st);
/* Single-integer query with one or two integer parameters (p2 ignored when the SQL has one): on
 * SQL_ROW, *v is the first column. Returns sql__step's answer. */
int sql__query_int(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t *v);
/* Copies a blob column of exactly n bytes into dst; zeroes dst for NULL or any other length. */
void sql__col_blob_n(sql_stmt *st, int col, uint8_t *dst, size_t n);
/* The account's stored signed device list (accounts.c) -> *out (parley__malloc, NULL when none). */
int sql__read_devlist(store_be *b, uint64_t account_id, uint8_t **out, size_t *len);

/* share.c: how many envelopes of `sender` (account) the queue of (account, device) holds, for
 * queue_sender_share. queue_len is the device's counter as read in this transaction. share_moved: the
 * relay inserted (+1) or deleted (-1) one envelope of `sender`; share_tracked: whether deletes must say
 * whose envelope went; share_clear: anything else removed rows (purge, rollback); share_free at close. */
int sql__share_count(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, uint64_t sender,
			uint64_t *count);
void sql__share_moved(store_be *b, uint64_t account, uint32_t device, uint64_t sender, int delta);
int sql__share_tracked(store_be *b, uint64_t account, uint32_t device);
void sql__share_clear(store_be *b);
void sql__share_free(store_be *b);


/* accounts.c, for the other domains: handle -> account id. PARLEY_E_NO_SUCH_ACCOUNT, PARLEY_E_STORE. */
int sql__account_by_handle(store_be *b, const char *handle, uint64_t *id);

/* relay.c, for threads.c: the relay's queue, shared so a group message is queued exactly as a pairwise
 * one. enqueue: one envelope into (account, device)'s queue (its length counter and the per-sender
 * tally follow). sender_room: PARLEY_E_SENDER_QUEUE_FULL when `sender` already holds `limit` envelopes
 * of that queue (queue_len: its counter as read in this transaction; 0 or sending to one's own
 * account: no limit). */
typedef struct sql_env {
	uint64_t account;       /* recipient */
	uint32_t device;
	uint64_t sender_account;
	uint32_t sender_device;
	const char *sender_handle;
	uint32_t type;
	uint64_t client_ts, server_ts, expires_ms, thread_id;
	const uint8_t *content;
	size_t content_len;
} sql_env;
int sql__enqueue(store_be *b, const sql_env *e, uint64_t *server_id);
/* The recipient's devices with keys (ascending; sending to one's own account skips the sending device),
 * and the check of a send's per-device messages against them: missing / extra -> MISMATCHED_DEVICES,
 * another registration id -> STALE_DEVICES, the lists allocated into mm (the caller frees them). */
typedef struct sql_expected {
	uint32_t device_id, registration_id, queue_len;
} sql_expected;
typedef struct sql_mismatch {
	uint32_t *missing, *extra, *stale;
	size_t n_missing, n_extra, n_stale;
} sql_mismatch;
int sql__load_expected(store_be *b, uint64_t account, uint64_t sender, uint32_t sender_device,
			  sql_expected *e, size_t cap, size_t *n);
int sql__check_devices(const store_out_msg *msgs, size_t n_msgs, const sql_expected *e, size_t ne,
			  sql_mismatch *mm);
int sql__sender_room(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, uint64_t sender,
			unsigned limit);

/* One function per store op, named after its STORE_OPS line (sql__create_account, ...), defined in
 * the file of its domain; engine.c builds the backend's run table from the same list. */
#define SQL_OP_DECL_(OP, name, kind, domain) int sql__##name(store_be *b, store_job *j);
STORE_OPS(SQL_OP_DECL_)
#undef SQL_OP_DECL_

/* auth.c, for threads.c: an authenticated thread's level, expiry and component over the baseline */
int sql__auth_overlay(store_be *b, store_thread_info *t);
/* threads.c, for entities.c: a removed staff member leaves every thread of the entity at once */
int sql__threads_drop_member(store_be *b, uint64_t entity, uint64_t account, uint64_t now_ms);
/* entities.c, for accounts.c: 1 if an entity holds the handle (registration refuses it), else 0. */
int sql__entity_handle_taken(store_be *b, const char *handle);
/* SEND: the sender accepted the recipient (contacts.c). */
int sql__contact_touch(store_be *b, uint64_t sender, uint64_t recipient, uint64_t now_ms);

#endif
