/* SQLite driver, engine: open, pragmas (WAL, synchronous=FULL, read back), migrations, the statement
 * cache and sql.h's statement functions, transactions and savepoints, WAL maintenance, and the run
 * table that sends each op to its domain file (server/store/sql/). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <parley/error.h>

#include "base/log.h"
#include "common/alloc.h"
#include "common/migrate.h"
#include "store/sqlite/sqlite_internal.h"

#define MODULE "store"

/* --- migrations ---
 * Each step moves the "server" schema from version i to i+1 and is never edited once released: a
 * change is a new step. parley__migrate (lib/common/migrate.h) records the version in the
 * schema_version table and runs all pending steps in one transaction at open, so a crash mid-migration
 * leaves the old version intact. Databases written before that helper kept the version in PRAGMA
 * user_version: legacy_user_version adopts it (and the helper keeps the pragma in step, so an older
 * parleyd still refuses a schema it does not know). */
static const char *const migrations[] = {
	/* 1: accounts and their devices. next_device_id makes device ids per account, from 1, never
	 * reused after a removal. Public keys only; a key belongs to one device in the whole server. */
	"CREATE TABLE accounts ("
	"  id INTEGER PRIMARY KEY,"
	"  handle TEXT NOT NULL UNIQUE,"
	"  created_ms INTEGER NOT NULL,"
	"  next_device_id INTEGER NOT NULL DEFAULT 1"
	");"
	"CREATE TABLE devices ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  device_id INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  pubkey BLOB NOT NULL UNIQUE CHECK (length(pubkey) = 32),"
	"  created_ms INTEGER NOT NULL,"
	"  last_seen_ms INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (account_id, device_id)"
	") WITHOUT ROWID;",
	/* 2: key server and relay (keys.c, relay.c). Every table hangs off devices with
	 * ON DELETE CASCADE, so removing a device deletes its keys, its prekey pool and its queue in the
	 * same transaction. Public keys and ciphertext only. device_keys.queue_len counts the device's
	 * queued envelopes so the queue limit costs one row read, not a count. messages.id is
	 * AUTOINCREMENT: ids are never reused, so a late or repeated ack can never delete a newer envelope. */
	"CREATE TABLE device_keys ("
	"  account_id INTEGER NOT NULL,"
	"  device_id INTEGER NOT NULL,"
	"  registration_id INTEGER NOT NULL,"
	"  identity_key BLOB NOT NULL CHECK (length(identity_key) = 33),"
	"  spk_id INTEGER NOT NULL,"
	"  spk_pub BLOB NOT NULL CHECK (length(spk_pub) = 33),"
	"  spk_sig BLOB NOT NULL CHECK (length(spk_sig) = 64),"
	"  queue_len INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (account_id, device_id),"
	"  FOREIGN KEY (account_id, device_id) REFERENCES devices(account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE TABLE prekeys ("
	"  account_id INTEGER NOT NULL,"
	"  device_id INTEGER NOT NULL,"
	"  key_id INTEGER NOT NULL,"
	"  pub BLOB NOT NULL CHECK (length(pub) = 33),"
	"  PRIMARY KEY (account_id, device_id, key_id),"
	"  FOREIGN KEY (account_id, device_id) REFERENCES devices(account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  account_id INTEGER NOT NULL,"
	"  device_id INTEGER NOT NULL,"
	"  sender_account INTEGER NOT NULL,"
	"  sender_device INTEGER NOT NULL,"
	"  sender_handle TEXT NOT NULL,"
	"  type INTEGER NOT NULL,"
	"  client_ts INTEGER NOT NULL,"
	"  server_ts INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL,"
	"  content BLOB NOT NULL,"
	"  FOREIGN KEY (account_id, device_id) REFERENCES devices(account_id, device_id) ON DELETE CASCADE"
	");"
	"CREATE INDEX messages_queue ON messages(account_id, device_id, id);"
	"CREATE INDEX messages_expiry ON messages(expires_ms);"
	/* a thread between two accounts exists once either sent the other a message; a < b */
	"CREATE TABLE threads ("
	"  a INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  b INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (a, b)"
	") WITHOUT ROWID;"
	"CREATE INDEX threads_b ON threads(b);",
	/* 3: one-time prekey drain (security item 4, keys.c). Each device's one-time-prekey budget, a
	 * leaky bucket (level, last update) shared by every requester and every loop; and the one-time
	 * prekeys handed out, reported to their device after prekey_forget_after_s so it deletes the
	 * private halves nobody will use. */
	"ALTER TABLE device_keys ADD COLUMN otk_budget REAL NOT NULL DEFAULT 0;"
	"ALTER TABLE device_keys ADD COLUMN otk_budget_ms INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE prekeys_handed ("
	"  account_id INTEGER NOT NULL,"
	"  device_id INTEGER NOT NULL,"
	"  key_id INTEGER NOT NULL,"
	"  handed_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (account_id, device_id, key_id),"
	"  FOREIGN KEY (account_id, device_id) REFERENCES devices(account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;",
	/* 4: relay (security items 1 and 7). messages.deliveries counts the connections that were pushed
	 * an envelope and closed without acknowledging it (max_redeliveries moves it to the back of the
	 * queue). */
	"ALTER TABLE messages ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0;",
	/* 5: step 4 once created messages_sender(account_id, device_id, sender_account) for the per-sender
	 * share; its upkeep cost every relay insert and delete 12%, so the share is tallied in memory
	 * (share.c) and the index goes from databases that have it. */
	"DROP INDEX IF EXISTS messages_sender;",
	/* 6: signed device lists (issue 9, devlist.c in sql/accounts.c). accounts.account_key: the
	 * account key (33 bytes) that signs the account's device lists; NULL for accounts registered
	 * before it existed, until their primary device sets one (SetAccountKey). device_lists: the
	 * latest signed list per account, as uploaded (the server checks it, it cannot make one). */
	"ALTER TABLE accounts ADD COLUMN account_key BLOB CHECK (account_key IS NULL OR length(account_key) = 33);"
	"CREATE TABLE device_lists ("
	"  account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,"
	"  version INTEGER NOT NULL,"
	"  list BLOB NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	");",
};

static const migrate_schema server_schema = {
	.name = "server",
	MIGRATE_STEPS(migrations),
	.legacy_user_version = 1,
};

/* WAL checkpoints. SQLite's automatic checkpoint (every 1000 pages) runs inside the COMMIT that crosses
 * the threshold, so that commit, and every acknowledgement queued behind it, waited for the copy into
 * the main file and its fsync. We turn it off (a wal_hook replaces it) and checkpoint in maintain():
 * when the queue is empty and the WAL holds CKPT_IDLE_PAGES (SQLite's own period: checkpointing more
 * often only adds stalls, the hot pages being the same few; store_config.wal_checkpoint_pages overrides
 * it for tests), or unconditionally at CKPT_HARD_FACTOR times that so sustained load cannot grow the WAL
 * without bound. This connection is the only one, so a PASSIVE checkpoint always copies every frame and
 * the next commit restarts the WAL from its beginning; journal_size_limit truncates a WAL that grew past
 * it. Durability is unchanged: every commit still
 * fsyncs the WAL (synchronous=FULL) before its completions are delivered, and a checkpoint fsyncs the
 * main file before the WAL may be reused. */
#define CKPT_IDLE_PAGES 1024
#define CKPT_HARD_FACTOR 4 /* hard threshold = 4 x idle threshold */
#define WAL_SIZE_LIMIT (32 << 20)

/* Durability. Every acknowledgement promises a commit that survives a power cut: WAL with
 * synchronous=FULL fsyncs the WAL at each commit. Two test-only weakenings let the crash test
 * (tests/unit/store/test_crash.c) show that it notices: PARLEY_TEST_STORE_SYNC_OFF never fsyncs
 * (meson -Dtest_store_sync_off=true, or the store objects of the store-crash-sync-off test), and
 * PARLEY_TEST_STORE_SYNC_NORMAL fsyncs the WAL only at checkpoints (store-crash-sync-normal). They are
 * compile-time definitions on purpose: no configuration key or environment variable of parleyd can
 * weaken a production build. */
#if defined(PARLEY_TEST_STORE_SYNC_OFF)
#define SYNCHRONOUS "OFF"
#define DURABILITY_ENFORCED 0
#elif defined(PARLEY_TEST_STORE_SYNC_NORMAL)
#define SYNCHRONOUS "NORMAL"
#define DURABILITY_ENFORCED 0
#else
#define SYNCHRONOUS "FULL"
#define DURABILITY_ENFORCED 1
#endif

int sqlite__error(store_be *base, const char *what)
{
	sqlite_be *b = sqlite__be(base);
	/* every failing statement of every domain reports here, so this is where a full disk is seen
	 * (in WAL mode usually at COMMIT, when the frames are written) */
	if (sqlite3_errcode(b->db) == SQLITE_FULL) {
		log_debug(MODULE, "sqlite %s: %s", what, sqlite3_errmsg(b->db));
		sqlite__space_full(b);
		return PARLEY_E_STORAGE_FULL;
	}
	log_error(MODULE, "sqlite %s: %s", what, sqlite3_errmsg(b->db));
	return PARLEY_E_STORE;
}

/* --- statement cache and sql.h's statement functions --- */

static const sql_ops sqlite_sql_ops;

static sqlite3_stmt *raw(sql_stmt *s)
{
	return ((sqlite_stmt_w *)s)->st;
}

static sql_stmt *drv_stmt(store_be *base, const char *key, const char *sql)
{
	sqlite_be *b = sqlite__be(base);
	sql_cache_entry *c = sql__cache_find(&b->stmts, key);
	if (c == NULL) {
		log_error(MODULE, "statement cache: out of memory");
		return NULL;
	}
	if (c->key == NULL) {
		sqlite_stmt_w *w = parley__calloc(1, sizeof(*w));
		if (w == NULL)
			return NULL;
		if (sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &w->st, NULL) != SQLITE_OK) {
			parley__free(w);
			(void)sqlite__error(base, "prepare");
			return NULL;
		}
		w->base.ops = &sqlite_sql_ops;
		w->base.b = base;
		c->key = key;
		c->val = w;
		sql__cache_added(&b->stmts);
	}
	sqlite_stmt_w *w = c->val;
	sqlite3_reset(w->st);
	sqlite3_clear_bindings(w->st);
	return &w->base;
}

static void stmt_free(void *val)
{
	sqlite_stmt_w *w = val;
	sqlite3_finalize(w->st);
	parley__free(w);
}

static void stmt_cache_free(sqlite_be *b)
{
	sql__cache_free(&b->stmts, stmt_free);
}

static void drv_bind_i64(sql_stmt *s, int i, int64_t v)
{
	sqlite3_bind_int64(raw(s), i, v);
}

static void drv_bind_double(sql_stmt *s, int i, double v)
{
	sqlite3_bind_double(raw(s), i, v);
}

/* SQLITE_STATIC: every caller keeps its arguments alive until the statement is reset */
static void drv_bind_text(sql_stmt *s, int i, const char *v, int len)
{
	sqlite3_bind_text(raw(s), i, v, len, SQLITE_STATIC);
}

static void drv_bind_blob(sql_stmt *s, int i, const void *v, size_t len)
{
	sqlite3_bind_blob(raw(s), i, v, (int)len, SQLITE_STATIC);
}

static void drv_bind_null(sql_stmt *s, int i)
{
	sqlite3_bind_null(raw(s), i);
}

static int drv_param_count(sql_stmt *s)
{
	return sqlite3_bind_parameter_count(raw(s));
}

static int drv_step(sql_stmt *s)
{
	int rc = sqlite3_step(raw(s));
	if (rc == SQLITE_ROW || rc == SQLITE_DONE || rc == SQLITE_CONSTRAINT)
		return rc;
	return SQL_ERROR;
}

static int64_t drv_col_i64(sql_stmt *s, int c)
{
	return sqlite3_column_int64(raw(s), c);
}

static double drv_col_double(sql_stmt *s, int c)
{
	return sqlite3_column_double(raw(s), c);
}

static const char *drv_col_text(sql_stmt *s, int c)
{
	return (const char *)sqlite3_column_text(raw(s), c);
}

static const void *drv_col_blob(sql_stmt *s, int c)
{
	return sqlite3_column_blob(raw(s), c);
}

static int drv_col_bytes(sql_stmt *s, int c)
{
	return sqlite3_column_bytes(raw(s), c);
}

static int drv_col_type(sql_stmt *s, int c)
{
	return sqlite3_column_type(raw(s), c); /* SQLite's numbers are sql.h's */
}

static void drv_reset(sql_stmt *s)
{
	sqlite3_reset(raw(s));
}

static int64_t drv_changes(store_be *b)
{
	return sqlite3_changes(sqlite__be(b)->db);
}

static int64_t drv_last_id(store_be *b)
{
	return sqlite3_last_insert_rowid(sqlite__be(b)->db);
}

static const sql_ops sqlite_sql_ops = {
	.name = "sqlite",
	.stmt = drv_stmt,
	.bind_i64 = drv_bind_i64,
	.bind_double = drv_bind_double,
	.bind_text = drv_bind_text,
	.bind_blob = drv_bind_blob,
	.bind_null = drv_bind_null,
	.param_count = drv_param_count,
	.step = drv_step,
	.col_i64 = drv_col_i64,
	.col_double = drv_col_double,
	.col_text = drv_col_text,
	.col_blob = drv_col_blob,
	.col_bytes = drv_col_bytes,
	.col_type = drv_col_type,
	.reset = drv_reset,
	.changes = drv_changes,
	.last_id = drv_last_id,
	.error = sqlite__error,
};

/* --- transactions: one per batch of writes, one savepoint per write job --- */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT job";
static const char SQL_RELEASE[] = "RELEASE job";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO job";

static int exec_simple(store_be *b, const char *sql)
{
	sql_stmt *s = drv_stmt(b, sql, sql);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_stmt *st = raw(s);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		/* read the error before the reset: the reset of a statement whose transaction SQLite
		 * already rolled back may report something else */
		rc = sqlite__error(b, sql);
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	return PARLEY_OK;
}

static int be_begin(store_be *b)
{
	return exec_simple(b, SQL_BEGIN);
}

static int be_commit(store_be *b)
{
	return exec_simple(b, SQL_COMMIT);
}

static int be_rollback(store_be *b)
{
	sql__share_clear(b); /* tallies may count rows the rollback removes */
	if (sqlite3_get_autocommit(sqlite__be(b)->db))
		return PARLEY_OK; /* nothing open (SQLite may already have rolled back) */
	return exec_simple(b, SQL_ROLLBACK);
}

static int be_savepoint(store_be *b)
{
	return exec_simple(b, SQL_SAVEPOINT);
}

static int be_release(store_be *b)
{
	return exec_simple(b, SQL_RELEASE);
}

static int be_rollback_savepoint(store_be *b)
{
	/* ROLLBACK TO keeps the savepoint open: release it so the next job starts clean */
	sql__share_clear(b);
	int rc = exec_simple(b, SQL_ROLLBACK_TO);
	if (rc == PARLEY_OK)
		rc = exec_simple(b, SQL_RELEASE);
	return rc;
}

/* --- WAL maintenance --- */

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	sqlite_be *b = arg;
	(void)db;
	(void)name;
	b->wal_pages = pages;
	return SQLITE_OK;
}

static void be_maintain(store_be *base, int idle)
{
	sqlite_be *b = sqlite__be(base);
	int log_frames = 0, done = 0;
	if (b->full || (!b->reserve_present && b->reserve_bytes > 0))
		sqlite__space_maintain(b, idle);
	if (b->full)
		return; /* space_maintain checkpointed */
	if (b->wal_pages < (idle ? b->ckpt_pages : b->ckpt_pages * CKPT_HARD_FACTOR))
		return;
	int rc = sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
	if (rc != SQLITE_OK) {
		(void)sqlite__error(base, "checkpoint");
		return;
	}
	if (done == log_frames)
		b->wal_pages = 0;
}

/* --- open, close --- */

static int migrate_one(sqlite_be *b, const char *path, const migrate_schema *schema)
{
	migrate_result res;
	int rc = parley__migrate(b->db, schema, &res);
	if (rc == PARLEY_E_BAD_VERSION) {
		log_error(MODULE, "%s: %s: refusing to open", path, res.err);
		return PARLEY_E_STORE;
	}
	if (rc != PARLEY_OK) {
		log_error(MODULE, "%s: %s", path, res.err);
		return PARLEY_E_STORE;
	}
	if (res.to != res.from)
		log_info(MODULE, "%s: %s schema migrated from version %d to %d", path, schema->name, res.from,
			 res.to);
	return PARLEY_OK;
}

/* The server schema, then the schemas that domain files version on their own (contacts.c, entities.c, threads.c, auth.c,
 * settings.c). */
static int migrate(sqlite_be *b, const char *path)
{
	int rc = migrate_one(b, path, &server_schema);
	if (rc == PARLEY_OK)
		rc = migrate_one(b, path, &sqlite__contacts_schema);
	if (rc == PARLEY_OK)
		rc = migrate_one(b, path, &sqlite__entities_schema);
	if (rc == PARLEY_OK)
		rc = migrate_one(b, path, &sqlite__threads_schema);
	if (rc == PARLEY_OK)
		rc = migrate_one(b, path, &sqlite__auth_schema);
	if (rc == PARLEY_OK)
		rc = migrate_one(b, path, &sqlite__auth_jti_schema);
	return rc == PARLEY_OK ? migrate_one(b, path, &sqlite__settings_schema) : rc;
}

static int exec_pragmas(sqlite_be *b, const char *sql)
{
	if (sqlite3_exec(b->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite__error(&b->base, "pragmas");
	return PARLEY_OK;
}

/* SQLite does not fail a PRAGMA it cannot honour: journal_mode=WAL on a VFS without shared memory
 * answers with the old mode, and a build may default synchronous differently. So read back what the
 * connection really runs with. Anything weaker than WAL + FULL breaks the acknowledgement contract
 * (an acknowledged write must survive a power cut), and the store refuses to run on it. EXTRA
 * (fsync of the directory too) is stronger than FULL and accepted. */
int sqlite__check_durability(sqlite3 *db, const char *path)
{
	sqlite3_stmt *st = NULL;
	char mode[16] = "?";
	int sync = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		sync = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (strcmp(mode, "wal") == 0 && sync >= 2)
		return PARLEY_OK;
	log_error(MODULE, "%s: runs with journal_mode=%s synchronous=%d, not wal and 2 (FULL): acknowledged"
		  " writes would not survive a power cut", path, mode, sync);
	return PARLEY_E_STORE;
}

static void be_free(sqlite_be *b)
{
	sql__share_free(&b->base);
	sqlite__space_close(b);
	stmt_cache_free(b);
	sqlite3_close(b->db);
	parley__free(b);
}

static int be_open(const store_config *cfg, store_be **out)
{
	sqlite_be *b = NULL;
	char pragmas[160];
	int rc = PARLEY_E_STORE;
	int fd;

	b = parley__calloc(1, sizeof(*b));
	if (b == NULL)
		return PARLEY_E_NOMEM;
	b->base.ops = &sqlite_sql_ops;
	b->base.max_devices = cfg->max_devices;
	b->ckpt_pages = cfg->wal_checkpoint_pages > 0 ? (int)cfg->wal_checkpoint_pages : CKPT_IDLE_PAGES;
	/* create the file ourselves so it is 0600 whatever the umask; SQLite gives its -wal and -shm
	 * files the database file's permissions */
	fd = open(cfg->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error(MODULE, "cannot open %s: %m", cfg->path);
		goto out;
	}
	close(fd);
	if (sqlite3_open_v2(cfg->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, cfg->vfs) != SQLITE_OK) {
		log_error(MODULE, "cannot open %s: %s", cfg->path, b->db ? sqlite3_errmsg(b->db) : "out of memory");
		goto out;
	}
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA busy_timeout = %d; PRAGMA journal_mode = WAL; PRAGMA synchronous = " SYNCHRONOUS ";"
		 " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;", /* acked ciphertext zeroed on disk */
		 cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
	rc = exec_pragmas(b, pragmas);
	if (rc != PARLEY_OK)
		goto out;
	rc = sqlite__check_durability(b->db, cfg->path);
	if (rc != PARLEY_OK && !DURABILITY_ENFORCED) {
		/* The weakened test build must open: it exists so the crash test can prove that the power-cut
		 * simulation catches a missing fsync. Refusing here would make that test fail for another
		 * reason and prove nothing. The check above already logged the weakened mode. */
		log_error(MODULE, "weakened test build (synchronous=" SYNCHRONOUS "): never deploy it");
		rc = PARLEY_OK;
	}
	if (rc != PARLEY_OK)
		goto out;
	rc = migrate(b, cfg->path);
	if (rc != PARLEY_OK)
		goto out;
	rc = sqlite__space_open(b, cfg->path, cfg->reserve_bytes, cfg->max_page_count);
	if (rc != PARLEY_OK)
		goto out;
	/* The reserve must cover a checkpoint: when the disk fills, the WAL's frames not yet copied into
	 * the database may need that much new file space, and until they are copied the WAL cannot start
	 * over, so no ack could commit. The WAL therefore never holds more than half the reserve between
	 * checkpoints (the hard threshold is CKPT_HARD_FACTOR x ckpt_pages). */
	int64_t page = 0;
	if (cfg->reserve_bytes > 0 && sql__query_int(&b->base, "PRAGMA page_size", 0, 0, &page) == SQL_ROW && page > 0) {
		uint64_t cap = cfg->reserve_bytes / 2 / (uint64_t)page / CKPT_HARD_FACTOR;
		if (cap < 16)
			cap = 16;
		if ((uint64_t)b->ckpt_pages > cap)
			b->ckpt_pages = (int)cap;
	}
	/* replaces SQLite's automatic checkpoint: see CKPT_IDLE_PAGES */
	sqlite3_wal_hook(b->db, on_wal_commit, b);
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_size_limit = %d;", WAL_SIZE_LIMIT);
	rc = exec_pragmas(b, pragmas);
	if (rc != PARLEY_OK)
		goto out;
	*out = &b->base;
	b = NULL;
out:
	if (b != NULL)
		be_free(b);
	return rc;
}

static void be_close(store_be *base)
{
	sqlite_be *b = sqlite__be(base);
	sql__share_free(base);
	sqlite__space_close(b);
	stmt_cache_free(b);
	/* fold the WAL back into the main file so a stopped server leaves one self-contained file */
	if (sqlite3_exec(b->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
		(void)sqlite__error(base, "checkpoint");
	if (sqlite3_close(b->db) != SQLITE_OK)
		(void)sqlite__error(base, "close");
	parley__free(b);
}

/* --- the backend --- */


const store_backend_ops store__sqlite_ops = {
	.name = "sqlite",
	.open = be_open,
	.close = be_close,
	.begin = be_begin,
	.commit = be_commit,
	.rollback = be_rollback,
	.savepoint = be_savepoint,
	.release = be_release,
	.rollback_savepoint = be_rollback_savepoint,
	.run = sql__run_table,
	.maintain = be_maintain,
	.space = sqlite__space_state,
};
