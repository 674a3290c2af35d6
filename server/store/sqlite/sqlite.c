/* SQLite backend: WAL, synchronous=FULL, versioned migrations, cached prepared statements.
 * The connection is opened by store__open's thread and afterwards used by the store thread only, so it
 * is opened without SQLite's own mutexes. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"
#include "store/backend.h"
#include "store/sqlite/sqlite_ext.h"

#define MODULE "store"

/* --- migrations ---
 * Each step moves the schema from version i to i+1 and is never edited once released: a change is a
 * new step. The version lives in PRAGMA user_version; all pending steps run in one transaction at
 * open, so a crash mid-migration leaves the old version intact. */
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
	/* 2: key server and relay (server/store/sqlite/keys_relay.c). Every table hangs off devices with
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
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_INSERT_ACCOUNT,
	ST_INSERT_DEVICE,
	ST_ACCOUNT_BY_HANDLE,
	ST_NEXT_DEVICE_ID,
	ST_BUMP_DEVICE_ID,
	ST_GET_DEVICE,
	ST_LIST_DEVICES,
	ST_COUNT_DEVICES,
	ST_DELETE_DEVICE,
	ST_TOUCH_DEVICE,
	ST_FIND_DEVICE,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT job",
	[ST_RELEASE] = "RELEASE job",
	[ST_ROLLBACK_TO] = "ROLLBACK TO job",
	[ST_INSERT_ACCOUNT] = "INSERT INTO accounts(handle, created_ms, next_device_id) VALUES (?1, ?2, 2)",
	[ST_INSERT_DEVICE] = "INSERT INTO devices(account_id, device_id, name, pubkey, created_ms, last_seen_ms)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
	[ST_ACCOUNT_BY_HANDLE] = "SELECT id FROM accounts WHERE handle = ?1",
	[ST_NEXT_DEVICE_ID] = "SELECT next_device_id FROM accounts WHERE id = ?1",
	[ST_BUMP_DEVICE_ID] = "UPDATE accounts SET next_device_id = next_device_id + 1 WHERE id = ?1",
	[ST_GET_DEVICE] = "SELECT device_id, name, pubkey, created_ms, last_seen_ms FROM devices"
			  " WHERE account_id = ?1 AND device_id = ?2",
	[ST_LIST_DEVICES] = "SELECT device_id, name, pubkey, created_ms, last_seen_ms FROM devices"
			    " WHERE account_id = ?1 ORDER BY device_id",
	[ST_COUNT_DEVICES] = "SELECT count(*) FROM devices WHERE account_id = ?1",
	[ST_DELETE_DEVICE] = "DELETE FROM devices WHERE account_id = ?1 AND device_id = ?2",
	[ST_TOUCH_DEVICE] = "UPDATE devices SET last_seen_ms = ?3 WHERE account_id = ?1 AND device_id = ?2",
	[ST_FIND_DEVICE] = "SELECT d.device_id, d.name, d.pubkey, d.created_ms, d.last_seen_ms, a.id"
			   " FROM accounts a JOIN devices d ON d.account_id = a.id"
			   " WHERE a.handle = ?1 AND d.device_id = ?2",
};

/* WAL checkpoints. SQLite's automatic checkpoint (every 1000 pages) runs inside the COMMIT that crosses
 * the threshold, so that commit, and every acknowledgement queued behind it, waited for the copy into
 * the main file and its fsync. We turn it off (a wal_hook replaces it) and checkpoint in maintain():
 * when the queue is empty and the WAL holds CKPT_IDLE_PAGES (SQLite's own period: checkpointing more
 * often only adds stalls, the hot pages being the same few), or unconditionally at CKPT_HARD_PAGES so
 * sustained load cannot grow the WAL without bound. This connection is the only one, so a PASSIVE
 * checkpoint always copies every frame and the next commit restarts the WAL from its beginning;
 * journal_size_limit truncates a WAL that grew past it. Durability is unchanged: every commit still
 * fsyncs the WAL (synchronous=FULL) before its completions are delivered, and a checkpoint fsyncs the
 * main file before the WAL may be reused. */
#define CKPT_IDLE_PAGES 1024
#define CKPT_HARD_PAGES 4096
#define WAL_SIZE_LIMIT (32 << 20)

struct sqlite_be {
	sqlite3 *db;
	int wal_pages; /* frames in the WAL after the last commit (wal_hook) */
	unsigned max_devices;
	sqlite3_stmt *stmts[ST__COUNT];
	sqlite_ext *ext; /* key server and relay ops (keys_relay.c) */
};

static int db_error(struct sqlite_be *b, const char *what)
{
	log_error(MODULE, "sqlite %s: %s", what, sqlite3_errmsg(b->db));
	return PARLEY_E_STORE;
}

/* Prepared once, on first use, and kept for the life of the connection. */
static sqlite3_stmt *stmt(struct sqlite_be *b, enum stmt_id id)
{
	if (b->stmts[id] == NULL &&
	    sqlite3_prepare_v3(b->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &b->stmts[id], NULL) != SQLITE_OK) {
		(void)db_error(b, "prepare");
		return NULL;
	}
	return b->stmts[id];
}

/* Runs a statement without result rows. Returns the sqlite result code (SQLITE_DONE on success). */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int exec_simple(struct sqlite_be *b, enum stmt_id id)
{
	sqlite3_stmt *st = stmt(b, id);
	if (st == NULL)
		return PARLEY_E_STORE;
	if (step_done(st) != SQLITE_DONE)
		return db_error(b, stmt_sql[id]);
	return PARLEY_OK;
}

static int be_begin(void *be)
{
	return exec_simple(be, ST_BEGIN);
}
static int be_commit(void *be)
{
	return exec_simple(be, ST_COMMIT);
}
static int be_rollback(void *be)
{
	struct sqlite_be *b = be;
	if (sqlite3_get_autocommit(b->db))
		return PARLEY_OK; /* nothing open (SQLite may already have rolled back) */
	return exec_simple(be, ST_ROLLBACK);
}
static int be_savepoint(void *be)
{
	return exec_simple(be, ST_SAVEPOINT);
}
static int be_release(void *be)
{
	return exec_simple(be, ST_RELEASE);
}
static int be_rollback_savepoint(void *be)
{
	/* ROLLBACK TO keeps the savepoint open: release it so the next job starts clean */
	int rc = exec_simple(be, ST_ROLLBACK_TO);
	if (rc == PARLEY_OK)
		rc = exec_simple(be, ST_RELEASE);
	return rc;
}

/* --- open, migrations, close --- */

static int get_user_version(struct sqlite_be *b, int *v)
{
	sqlite3_stmt *st = NULL;
	int rc = PARLEY_E_STORE;
	if (sqlite3_prepare_v2(b->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_error(b, "user_version");
	if (sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = PARLEY_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int migrate(struct sqlite_be *b, const char *path)
{
	int version, rc;
	char sql[64];

	if (sqlite3_exec(b->db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
		return db_error(b, "migration begin");
	rc = get_user_version(b, &version);
	if (rc != PARLEY_OK)
		goto out;
	if (version > SCHEMA_VERSION) {
		log_error(MODULE, "%s has schema version %d, newer than this parleyd (%d): refusing to open",
			  path, version, SCHEMA_VERSION);
		rc = PARLEY_E_STORE;
		goto out;
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		if (sqlite3_exec(b->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			rc = db_error(b, "migration");
			goto out;
		}
		log_info(MODULE, "%s: schema migrated to version %d", path, v + 1);
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (sqlite3_exec(b->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(b, "user_version");
		goto out;
	}
	if (sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_error(b, "migration commit");
out:
	if (rc != PARLEY_OK)
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct sqlite_be *b = arg;
	(void)db;
	(void)name;
	b->wal_pages = pages;
	return SQLITE_OK;
}

static void be_maintain(void *be, int idle)
{
	struct sqlite_be *b = be;
	int log_frames = 0, done = 0;
	if (b->wal_pages < (idle ? CKPT_IDLE_PAGES : CKPT_HARD_PAGES))
		return;
	int rc = sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
	if (rc != SQLITE_OK) {
		(void)db_error(b, "checkpoint");
		return;
	}
	if (done == log_frames)
		b->wal_pages = 0;
}

static int be_open(const store_config *cfg, void **out)
{
	struct sqlite_be *b = NULL;
	char pragmas[160];
	int rc = PARLEY_E_STORE;
	int fd;

	b = parley__calloc(1, sizeof(*b));
	if (b == NULL)
		return PARLEY_E_NOMEM;
	b->max_devices = cfg->max_devices ? cfg->max_devices : STORE_DEFAULT_MAX_DEVICES;
	/* create the file ourselves so it is 0600 whatever the umask; SQLite gives its -wal and -shm
	 * files the database file's permissions */
	fd = open(cfg->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error(MODULE, "cannot open %s: %m", cfg->path);
		goto out;
	}
	close(fd);
	if (sqlite3_open_v2(cfg->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_error(MODULE, "cannot open %s: %s", cfg->path, b->db ? sqlite3_errmsg(b->db) : "out of memory");
		goto out;
	}
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA busy_timeout = %d; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		 " PRAGMA foreign_keys = ON;",
		 cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
	if (sqlite3_exec(b->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(b, "pragmas");
		goto out;
	}
	rc = migrate(b, cfg->path);
	if (rc != PARLEY_OK)
		goto out;
	/* replaces SQLite's automatic checkpoint: see CKPT_IDLE_PAGES */
	sqlite3_wal_hook(b->db, on_wal_commit, b);
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_size_limit = %d;", WAL_SIZE_LIMIT);
	if (sqlite3_exec(b->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(b, "pragmas");
		goto out;
	}
	rc = sqlite_ext__new(b->db, &b->ext);
	if (rc != PARLEY_OK)
		goto out;
	*out = b;
	b = NULL;
out:
	if (b != NULL) {
		sqlite3_close(b->db);
		parley__free(b);
	}
	return rc;
}

static void be_close(void *be)
{
	struct sqlite_be *b = be;
	sqlite_ext__free(b->ext);
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(b->stmts[i]);
	/* fold the WAL back into the main file so a stopped server leaves one self-contained file */
	if (sqlite3_exec(b->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
		(void)db_error(b, "checkpoint");
	if (sqlite3_close(b->db) != SQLITE_OK)
		(void)db_error(b, "close");
	parley__free(b);
}

/* --- operations --- */

static void read_device(sqlite3_stmt *st, store_device *d)
{
	const unsigned char *name = sqlite3_column_text(st, 1);
	const void *key = sqlite3_column_blob(st, 2);
	memset(d, 0, sizeof(*d));
	d->device_id = (uint32_t)sqlite3_column_int64(st, 0);
	if (name != NULL)
		snprintf(d->name, sizeof(d->name), "%s", (const char *)name);
	if (key != NULL && sqlite3_column_bytes(st, 2) == STORE_KEY_LEN)
		memcpy(d->key, key, STORE_KEY_LEN);
	d->created_ms = (uint64_t)sqlite3_column_int64(st, 3);
	d->last_seen_ms = (uint64_t)sqlite3_column_int64(st, 4);
}

/* Single-integer query with up to two integer parameters. SQLITE_ROW -> *v; returns sqlite code. */
static int query_int(struct sqlite_be *b, enum stmt_id id, int64_t p1, int64_t p2, int64_t *v)
{
	sqlite3_stmt *st = stmt(b, id);
	if (st == NULL)
		return SQLITE_ERROR;
	sqlite3_bind_int64(st, 1, p1);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, p2);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int insert_device(struct sqlite_be *b, store_job *j, uint32_t device_id)
{
	sqlite3_stmt *st = stmt(b, ST_INSERT_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(st, 2, device_id);
	sqlite3_bind_text(st, 3, j->device_name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, j->key, STORE_KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)j->now_ms);
	int rc = step_done(st);
	if (rc == SQLITE_CONSTRAINT)
		return PARLEY_E_DEVICE_KEY_IN_USE; /* the only unique key a new (account, id) can hit */
	if (rc != SQLITE_DONE)
		return db_error(b, "insert device");
	return PARLEY_OK;
}

static int op_create_account(struct sqlite_be *b, store_job *j)
{
	sqlite3_stmt *st = stmt(b, ST_INSERT_ACCOUNT);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(st, 1, j->handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)j->now_ms);
	int rc = step_done(st);
	if (rc == SQLITE_CONSTRAINT)
		return PARLEY_E_HANDLE_TAKEN;
	if (rc != SQLITE_DONE)
		return db_error(b, "insert account");
	j->account_id = (uint64_t)sqlite3_last_insert_rowid(b->db);
	j->device_id = 1;
	return insert_device(b, j, 1);
}

static int op_get_account(struct sqlite_be *b, store_job *j)
{
	sqlite3_stmt *st = stmt(b, ST_ACCOUNT_BY_HANDLE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(st, 1, j->handle, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int ret = PARLEY_E_NO_SUCH_ACCOUNT;
	if (rc == SQLITE_ROW) {
		j->account_id = (uint64_t)sqlite3_column_int64(st, 0);
		ret = PARLEY_OK;
	} else if (rc != SQLITE_DONE) {
		ret = db_error(b, "get account");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static int op_get_device(struct sqlite_be *b, store_job *j)
{
	sqlite3_stmt *st = stmt(b, ST_GET_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(st, 2, j->device_id);
	int rc = sqlite3_step(st);
	int ret = PARLEY_E_NO_SUCH_DEVICE;
	if (rc == SQLITE_ROW) {
		read_device(st, &j->device);
		ret = PARLEY_OK;
	} else if (rc != SQLITE_DONE) {
		ret = db_error(b, "get device");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static int op_list_devices(struct sqlite_be *b, store_job *j)
{
	sqlite3_stmt *st = stmt(b, ST_LIST_DEVICES);
	size_t cap = 0;
	int ret = PARLEY_OK, rc;
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (int64_t)j->account_id);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		if (j->n_devices == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			store_device *nd = parley__realloc(j->devices, ncap * sizeof(*nd));
			if (nd == NULL) {
				ret = PARLEY_E_NOMEM;
				break;
			}
			j->devices = nd;
			cap = ncap;
		}
		read_device(st, &j->devices[j->n_devices++]);
	}
	if (ret == PARLEY_OK && rc != SQLITE_DONE)
		ret = db_error(b, "list devices");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static int op_add_device(struct sqlite_be *b, store_job *j)
{
	int64_t next = 0, count = 0;
	int rc = query_int(b, ST_NEXT_DEVICE_ID, (int64_t)j->account_id, 0, &next);
	if (rc == SQLITE_DONE)
		return PARLEY_E_NO_SUCH_ACCOUNT;
	if (rc != SQLITE_ROW)
		return db_error(b, "next device id");
	if (query_int(b, ST_COUNT_DEVICES, (int64_t)j->account_id, 0, &count) != SQLITE_ROW)
		return db_error(b, "count devices");
	if (count >= (int64_t)b->max_devices)
		return PARLEY_E_TOO_MANY_DEVICES;
	if (next <= 0 || next > UINT32_MAX)
		return PARLEY_E_TOO_MANY_DEVICES; /* ids exhausted: never reuse one */
	int ret = insert_device(b, j, (uint32_t)next);
	if (ret != PARLEY_OK)
		return ret;
	sqlite3_stmt *st = stmt(b, ST_BUMP_DEVICE_ID);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (int64_t)j->account_id);
	if (step_done(st) != SQLITE_DONE)
		return db_error(b, "bump device id");
	j->device_id = (uint32_t)next;
	return PARLEY_OK;
}

static int op_remove_device(struct sqlite_be *b, store_job *j)
{
	int64_t count = 0, dummy = 0;
	int rc = query_int(b, ST_GET_DEVICE, (int64_t)j->account_id, j->device_id, &dummy);
	if (rc == SQLITE_DONE)
		return PARLEY_E_NO_SUCH_DEVICE;
	if (rc != SQLITE_ROW)
		return db_error(b, "get device");
	if (query_int(b, ST_COUNT_DEVICES, (int64_t)j->account_id, 0, &count) != SQLITE_ROW)
		return db_error(b, "count devices");
	if (count <= 1)
		return PARLEY_E_LAST_DEVICE;
	sqlite3_stmt *st = stmt(b, ST_DELETE_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(st, 2, j->device_id);
	if (step_done(st) != SQLITE_DONE)
		return db_error(b, "delete device");
	return PARLEY_OK;
}

/* Auth's lookup in one query: handle + device id -> account id and the device's public key. */
static int op_find_device(struct sqlite_be *b, store_job *j)
{
	sqlite3_stmt *st = stmt(b, ST_FIND_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(st, 1, j->handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, j->device_id);
	int rc = sqlite3_step(st);
	int ret = PARLEY_E_NO_SUCH_DEVICE;
	if (rc == SQLITE_ROW) {
		read_device(st, &j->device);
		j->account_id = (uint64_t)sqlite3_column_int64(st, 5);
		ret = PARLEY_OK;
	} else if (rc != SQLITE_DONE) {
		ret = db_error(b, "find device");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static int op_touch_device(struct sqlite_be *b, store_job *j)
{
	sqlite3_stmt *st = stmt(b, ST_TOUCH_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(st, 2, j->device_id);
	sqlite3_bind_int64(st, 3, (int64_t)j->now_ms);
	if (step_done(st) != SQLITE_DONE)
		return db_error(b, "touch device");
	return sqlite3_changes(b->db) > 0 ? PARLEY_OK : PARLEY_E_NO_SUCH_DEVICE;
}

static int be_run(void *be, store_job *j)
{
	struct sqlite_be *b = be;
	switch (j->op) {
	case STORE_OP_CREATE_ACCOUNT:
		return op_create_account(b, j);
	case STORE_OP_GET_ACCOUNT:
		return op_get_account(b, j);
	case STORE_OP_GET_DEVICE:
		return op_get_device(b, j);
	case STORE_OP_LIST_DEVICES:
		return op_list_devices(b, j);
	case STORE_OP_ADD_DEVICE:
		return op_add_device(b, j);
	case STORE_OP_REMOVE_DEVICE:
		return op_remove_device(b, j);
	case STORE_OP_TOUCH_DEVICE:
		return op_touch_device(b, j);
	case STORE_OP_FIND_DEVICE:
		return op_find_device(b, j);
	default:
		return sqlite_ext__run(b->ext, j);
	}
}

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
	.run = be_run,
	.maintain = be_maintain,
};
