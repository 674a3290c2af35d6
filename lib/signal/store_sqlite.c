/* SQLite implementation of parley_signal_store (see <parley/signal_sqlite.h>).
 *
 * Secrets: blobs bound to statements use SQLITE_STATIC (SQLite does not copy them) and bindings are
 * cleared after each step; blobs handed back to the library live in one owned buffer that is wiped
 * whenever it is replaced and at close; secure_delete makes SQLite overwrite freed pages on disk, and
 * the WAL is checkpointed and truncated after every commit so old page images do not linger in -wal.
 * SQLite's page cache still holds pages in memory while the handle is open: that is the limit of what
 * a store over a general-purpose database can promise.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <parley/error.h>
#include <parley/signal_sqlite.h>

#include "common/alloc.h"
#include "common/migrate.h"
#include "crypto/crypto.h"

/* Each entry upgrades the schema by one version; never edit a shipped entry, append a new one. */
static const char *const MIGRATIONS[] = {
	/* 0 -> 1 */
	"CREATE TABLE local_identity (id INTEGER PRIMARY KEY CHECK (id = 1), pub BLOB NOT NULL,"
	"  priv BLOB NOT NULL, registration_id INTEGER NOT NULL);"
	"CREATE TABLE identities (name TEXT NOT NULL, device INTEGER NOT NULL, key BLOB NOT NULL,"
	"  first_seen INTEGER NOT NULL, changed_at INTEGER NOT NULL, PRIMARY KEY (name, device));"
	"CREATE TABLE sessions (name TEXT NOT NULL, device INTEGER NOT NULL, record BLOB NOT NULL,"
	"  PRIMARY KEY (name, device));"
	"CREATE TABLE prekeys (id INTEGER PRIMARY KEY, pub BLOB NOT NULL, priv BLOB NOT NULL);"
	"CREATE TABLE signed_prekeys (id INTEGER PRIMARY KEY, pub BLOB NOT NULL, priv BLOB NOT NULL,"
	"  signature BLOB NOT NULL, timestamp_ms INTEGER NOT NULL);"
	"CREATE TABLE sender_keys (name TEXT NOT NULL, device INTEGER NOT NULL, distribution_id BLOB NOT NULL,"
	"  record BLOB NOT NULL, PRIMARY KEY (name, device, distribution_id));",
};
#define NMIGRATIONS (sizeof MIGRATIONS / sizeof MIGRATIONS[0])

enum {
	Q_GET_LOCAL,
	Q_SET_LOCAL,
	Q_GET_IDENTITY,
	Q_PUT_IDENTITY,
	Q_GET_SESSION,
	Q_PUT_SESSION,
	Q_DEL_SESSION,
	Q_GET_PREKEY,
	Q_PUT_PREKEY,
	Q_DEL_PREKEY,
	Q_COUNT_PREKEY,
	Q_GET_SPK,
	Q_PUT_SPK,
	Q_DEL_SPK,
	Q_GET_SK,
	Q_PUT_SK,
	Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
	[Q_GET_LOCAL] = "SELECT pub, priv, registration_id FROM local_identity WHERE id = 1",
	[Q_SET_LOCAL] = "INSERT OR REPLACE INTO local_identity (id, pub, priv, registration_id) VALUES (1, ?, ?, ?)",
	[Q_GET_IDENTITY] = "SELECT key FROM identities WHERE name = ? AND device = ?",
	[Q_PUT_IDENTITY] = "INSERT INTO identities (name, device, key, first_seen, changed_at)"
			   " VALUES (?1, ?2, ?3, strftime('%s','now'), strftime('%s','now'))"
			   " ON CONFLICT (name, device) DO UPDATE SET key = excluded.key,"
			   " changed_at = excluded.changed_at WHERE key != excluded.key",
	[Q_GET_SESSION] = "SELECT record FROM sessions WHERE name = ? AND device = ?",
	[Q_PUT_SESSION] = "INSERT OR REPLACE INTO sessions (name, device, record) VALUES (?, ?, ?)",
	[Q_DEL_SESSION] = "DELETE FROM sessions WHERE name = ? AND device = ?",
	[Q_GET_PREKEY] = "SELECT pub, priv FROM prekeys WHERE id = ?",
	[Q_PUT_PREKEY] = "INSERT OR REPLACE INTO prekeys (id, pub, priv) VALUES (?, ?, ?)",
	[Q_DEL_PREKEY] = "DELETE FROM prekeys WHERE id = ?",
	[Q_COUNT_PREKEY] = "SELECT count(*) FROM prekeys",
	[Q_GET_SPK] = "SELECT pub, priv, signature, timestamp_ms FROM signed_prekeys WHERE id = ?",
	[Q_PUT_SPK] = "INSERT OR REPLACE INTO signed_prekeys (id, pub, priv, signature, timestamp_ms) VALUES (?, ?, ?, ?, ?)",
	[Q_DEL_SPK] = "DELETE FROM signed_prekeys WHERE id = ?",
	[Q_GET_SK] = "SELECT record FROM sender_keys WHERE name = ? AND device = ? AND distribution_id = ?",
	[Q_PUT_SK] = "INSERT OR REPLACE INTO sender_keys (name, device, distribution_id, record) VALUES (?, ?, ?, ?)",
};

struct parley_signal_sqlite {
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	uint8_t *blob; /* last record handed out (store-owned per the interface contract) */
	size_t blob_len;
	size_t blob_cap;
};

/* ---------------------------------------------------------------- helpers */

static void blob_wipe(parley_signal_sqlite *s)
{
	if (s->blob != NULL)
		crypto__wipe(s->blob, s->blob_cap);
	s->blob_len = 0;
}

/* Copy a column into the owned buffer (wiping what it held before). */
static int blob_take(parley_signal_sqlite *s, sqlite3_stmt *st, int col)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	blob_wipe(s);
	if (n > s->blob_cap) {
		uint8_t *nb = parley__malloc(n);
		if (nb == NULL)
			return PARLEY_E_NOMEM;
		parley__free(s->blob);
		s->blob = nb;
		s->blob_cap = n;
	}
	if (n > 0)
		memcpy(s->blob, p, n);
	s->blob_len = n;
	return PARLEY_OK;
}

/* Fixed-size column into out; a size mismatch means the row was not written by us. */
static int col_fixed(sqlite3_stmt *st, int col, void *out, size_t n)
{
	if ((size_t)sqlite3_column_bytes(st, col) != n || sqlite3_column_blob(st, col) == NULL)
		return PARLEY_E_STORE;
	memcpy(out, sqlite3_column_blob(st, col), n);
	return PARLEY_OK;
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int bind_addr(sqlite3_stmt *st, const parley_signal_address *a)
{
	if (a == NULL || a->name == NULL)
		return PARLEY_E_INVAL;
	size_t n = strnlen(a->name, PARLEY_SIGNAL_MAX_NAME_LEN + 1);
	if (n > PARLEY_SIGNAL_MAX_NAME_LEN)
		return PARLEY_E_INVAL;
	if (sqlite3_bind_text(st, 1, a->name, (int)n, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_int64(st, 2, a->device_id) != SQLITE_OK)
		return PARLEY_E_STORE;
	return PARLEY_OK;
}

/* Step a statement that returns no rows. */
static int exec_stmt(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? PARLEY_OK : PARLEY_E_STORE;
}

/* Step a lookup: PARLEY_OK with a row ready, PARLEY_E_NOT_FOUND (statement reset), or STORE. */
static int step_row(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return PARLEY_OK;
	done(st);
	return rc == SQLITE_DONE ? PARLEY_E_NOT_FOUND : PARLEY_E_STORE;
}

/* ---------------------------------------------------------------- identity */

static int get_identity_keypair(void *user, parley_keypair *out)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_LOCAL];
	int rc = step_row(st);
	if (rc != PARLEY_OK)
		return rc;
	rc = col_fixed(st, 0, out->pub, sizeof out->pub);
	if (rc == PARLEY_OK)
		rc = col_fixed(st, 1, out->priv, sizeof out->priv);
	done(st);
	if (rc != PARLEY_OK)
		crypto__wipe(out, sizeof *out);
	return rc;
}

static int get_local_registration_id(void *user, uint32_t *out)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_LOCAL];
	int rc = step_row(st);
	if (rc != PARLEY_OK)
		return rc;
	*out = (uint32_t)sqlite3_column_int64(st, 2);
	done(st);
	return PARLEY_OK;
}

static int get_identity(void *user, const parley_signal_address *addr, uint8_t out[PARLEY_SIGNAL_PUBKEY_LEN])
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_IDENTITY];
	int rc = bind_addr(st, addr);
	if (rc == PARLEY_OK)
		rc = step_row(st);
	if (rc != PARLEY_OK) {
		done(st);
		return rc;
	}
	rc = col_fixed(st, 0, out, PARLEY_SIGNAL_PUBKEY_LEN);
	done(st);
	return rc;
}

static int save_identity(void *user, const parley_signal_address *addr, const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN],
	int *replaced)
{
	parley_signal_sqlite *s = user;
	uint8_t old[PARLEY_SIGNAL_PUBKEY_LEN];
	sqlite3_stmt *st = s->q[Q_PUT_IDENTITY];
	int rc = get_identity(user, addr, old);

	if (rc != PARLEY_OK && rc != PARLEY_E_NOT_FOUND)
		return rc;
	*replaced = rc == PARLEY_OK && memcmp(old, key, PARLEY_SIGNAL_PUBKEY_LEN) != 0;
	rc = bind_addr(st, addr);
	if (rc == PARLEY_OK && sqlite3_bind_blob(st, 3, key, PARLEY_SIGNAL_PUBKEY_LEN, SQLITE_STATIC) != SQLITE_OK)
		rc = PARLEY_E_STORE;
	if (rc != PARLEY_OK) {
		done(st);
		return rc;
	}
	return exec_stmt(st);
}

static int is_trusted_identity(void *user, const parley_signal_address *addr,
	const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], parley_signal_direction dir, int *trusted)
{
	uint8_t cur[PARLEY_SIGNAL_PUBKEY_LEN];
	int rc = get_identity(user, addr, cur);

	(void)dir; /* same policy both ways, as libsignal's reference store */
	if (rc == PARLEY_E_NOT_FOUND) {
		*trusted = 1; /* trust on first use */
		return PARLEY_OK;
	}
	if (rc != PARLEY_OK)
		return rc;
	*trusted = memcmp(cur, key, PARLEY_SIGNAL_PUBKEY_LEN) == 0;
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- sessions and sender keys */

static int load_blob(parley_signal_sqlite *s, sqlite3_stmt *st, const uint8_t **data, size_t *len)
{
	int rc = step_row(st);
	if (rc != PARLEY_OK)
		return rc;
	rc = blob_take(s, st, 0);
	done(st);
	if (rc != PARLEY_OK)
		return rc;
	*data = s->blob;
	*len = s->blob_len;
	return PARLEY_OK;
}

static int load_session(void *user, const parley_signal_address *addr, const uint8_t **data, size_t *len)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_SESSION];
	int rc = bind_addr(st, addr);
	if (rc != PARLEY_OK) {
		done(st);
		return rc;
	}
	return load_blob(s, st, data, len);
}

static int store_blob(sqlite3_stmt *st, int col, const uint8_t *data, size_t len)
{
	if (len > (size_t)INT32_MAX || sqlite3_bind_blob(st, col, data, (int)len, SQLITE_STATIC) != SQLITE_OK) {
		done(st);
		return PARLEY_E_STORE;
	}
	return exec_stmt(st);
}

static int store_session(void *user, const parley_signal_address *addr, const uint8_t *data, size_t len)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_PUT_SESSION];
	int rc = bind_addr(st, addr);
	if (rc != PARLEY_OK) {
		done(st);
		return rc;
	}
	return store_blob(st, 3, data, len);
}

static int delete_session(void *user, const parley_signal_address *addr)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_DEL_SESSION];
	int rc = bind_addr(st, addr);
	if (rc != PARLEY_OK) {
		done(st);
		return rc;
	}
	return exec_stmt(st);
}

static int bind_sk(sqlite3_stmt *st, const parley_signal_address *sender, const uint8_t *dist)
{
	int rc = bind_addr(st, sender);
	if (rc == PARLEY_OK &&
		sqlite3_bind_blob(st, 3, dist, PARLEY_SIGNAL_DISTRIBUTION_ID_LEN, SQLITE_STATIC) != SQLITE_OK)
		rc = PARLEY_E_STORE;
	if (rc != PARLEY_OK)
		done(st);
	return rc;
}

static int load_sender_key(void *user, const parley_signal_address *sender,
	const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t **data, size_t *len)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_SK];
	int rc = bind_sk(st, sender, distribution_id);
	return rc != PARLEY_OK ? rc : load_blob(s, st, data, len);
}

static int store_sender_key(void *user, const parley_signal_address *sender,
	const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t *data, size_t len)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_PUT_SK];
	int rc = bind_sk(st, sender, distribution_id);
	return rc != PARLEY_OK ? rc : store_blob(st, 4, data, len);
}

/* ---------------------------------------------------------------- prekeys */

static int load_prekey(void *user, uint32_t id, parley_prekey *out)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_PREKEY];
	int rc;

	sqlite3_bind_int64(st, 1, id);
	rc = step_row(st);
	if (rc != PARLEY_OK)
		return rc;
	out->id = id;
	rc = col_fixed(st, 0, out->key.pub, sizeof out->key.pub);
	if (rc == PARLEY_OK)
		rc = col_fixed(st, 1, out->key.priv, sizeof out->key.priv);
	done(st);
	if (rc != PARLEY_OK)
		crypto__wipe(out, sizeof *out);
	return rc;
}

static int store_prekey(void *user, const parley_prekey *pk)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_PUT_PREKEY];
	if (sqlite3_bind_int64(st, 1, pk->id) != SQLITE_OK ||
		sqlite3_bind_blob(st, 2, pk->key.pub, sizeof pk->key.pub, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_blob(st, 3, pk->key.priv, sizeof pk->key.priv, SQLITE_STATIC) != SQLITE_OK) {
		done(st);
		return PARLEY_E_STORE;
	}
	return exec_stmt(st);
}

static int delete_by_id(sqlite3_stmt *st, uint32_t id)
{
	sqlite3_bind_int64(st, 1, id);
	return exec_stmt(st);
}

static int remove_prekey(void *user, uint32_t id)
{
	parley_signal_sqlite *s = user;
	return delete_by_id(s->q[Q_DEL_PREKEY], id);
}

static int remove_signed_prekey(void *user, uint32_t id)
{
	parley_signal_sqlite *s = user;
	return delete_by_id(s->q[Q_DEL_SPK], id);
}

static int load_signed_prekey(void *user, uint32_t id, parley_signed_prekey *out)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_GET_SPK];
	int rc;

	sqlite3_bind_int64(st, 1, id);
	rc = step_row(st);
	if (rc != PARLEY_OK)
		return rc;
	out->id = id;
	rc = col_fixed(st, 0, out->key.pub, sizeof out->key.pub);
	if (rc == PARLEY_OK)
		rc = col_fixed(st, 1, out->key.priv, sizeof out->key.priv);
	if (rc == PARLEY_OK)
		rc = col_fixed(st, 2, out->signature, sizeof out->signature);
	out->timestamp_ms = (uint64_t)sqlite3_column_int64(st, 3);
	done(st);
	if (rc != PARLEY_OK)
		crypto__wipe(out, sizeof *out);
	return rc;
}

static int store_signed_prekey(void *user, const parley_signed_prekey *spk)
{
	parley_signal_sqlite *s = user;
	sqlite3_stmt *st = s->q[Q_PUT_SPK];
	if (sqlite3_bind_int64(st, 1, spk->id) != SQLITE_OK ||
		sqlite3_bind_blob(st, 2, spk->key.pub, sizeof spk->key.pub, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_blob(st, 3, spk->key.priv, sizeof spk->key.priv, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_blob(st, 4, spk->signature, sizeof spk->signature, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_int64(st, 5, (sqlite3_int64)spk->timestamp_ms) != SQLITE_OK) {
		done(st);
		return PARLEY_E_STORE;
	}
	return exec_stmt(st);
}

/* ---------------------------------------------------------------- open / migrate / close */

/* Forward secrecy at rest (security item 9). Nearly every write here replaces or deletes a secret (a
 * session record's root and chain keys, a used prekey, a retired signed prekey). secure_delete zeroes
 * what is freed inside the database file, but WAL keeps the old page images in -wal until SQLite
 * happens to overwrite them, so after each commit the WAL is checkpointed into the database and
 * truncated to zero bytes (this hook replaces SQLite's automatic checkpoint). Measured against a
 * rollback journal (journal_mode=DELETE with secure_delete; docs/benchmarks.md, "Secret store
 * journal"): both cost about 0.6 ms a write, but WAL keeps another process's readers (a running
 * `parley listen`) off the writer's path and stays corruption-free with synchronous=NORMAL. A reader
 * holding the WAL at that moment only postpones the truncation to the next commit. */
static int checkpoint_after_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
	(void)pages;
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return SQLITE_OK; /* the commit itself succeeded either way */
}

/* Create the file 0600 ourselves before SQLite opens it: SQLite would honour the process umask
 * (often 0644), and its -wal/-shm files copy the main file's mode. */
static int create_private_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return PARLEY_E_IO;
	struct stat sb;
	int rc = PARLEY_OK;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		rc = PARLEY_E_IO;
	else if ((sb.st_mode & 0077) != 0 && fchmod(fd, 0600) != 0)
		rc = PARLEY_E_IO;
	close(fd);
	return rc;
}

/* parley__migrate records the version as the "signal" row of schema_version; a signal.db from before
 * that helper kept it in PRAGMA user_version, which is adopted (and kept in step for older programs). */
static const migrate_schema signal_schema = {
	.name = "signal",
	.steps = MIGRATIONS,
	.n_steps = NMIGRATIONS,
	.legacy_user_version = 1,
};

int parley_signal_sqlite_open(parley_signal_sqlite **out, const char *path)
{
	parley_signal_sqlite *s;
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return PARLEY_E_INVAL;
	rc = create_private_file(path);
	if (rc != PARLEY_OK)
		return rc;
	s = parley__calloc(1, sizeof *s);
	if (s == NULL)
		return PARLEY_E_NOMEM;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = PARLEY_E_STORE;
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL: readers never block the writer; secure_delete: freed pages holding old keys are zeroed;
	 * and no old page image outlives its commit in -wal (checkpoint_after_commit). */
	if (sqlite3_exec(s->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
				"PRAGMA secure_delete = ON;", NULL, NULL, NULL) != SQLITE_OK) {
		rc = PARLEY_E_STORE;
		goto out;
	}
	sqlite3_wal_hook(s->db, checkpoint_after_commit, NULL);
	if (parley__migrate(s->db, &signal_schema, NULL) != PARLEY_OK) {
		rc = PARLEY_E_STORE; /* unreadable, or written by a newer parley: left untouched */
		goto out;
	}
	for (int i = 0; i < Q_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL) != SQLITE_OK) {
			rc = PARLEY_E_STORE;
			goto out;
		}
	}
	*out = s;
	return PARLEY_OK;
out:
	parley_signal_sqlite_close(s);
	return rc;
}

void parley_signal_sqlite_close(parley_signal_sqlite *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	sqlite3_close(s->db);
	blob_wipe(s);
	parley__free(s->blob);
	crypto__wipe(s, sizeof *s);
	parley__free(s);
}

int parley_signal_sqlite_set_identity(parley_signal_sqlite *s, const parley_keypair *identity,
	uint32_t registration_id)
{
	sqlite3_stmt *st;
	if (s == NULL || identity == NULL)
		return PARLEY_E_INVAL;
	st = s->q[Q_SET_LOCAL];
	if (sqlite3_bind_blob(st, 1, identity->pub, sizeof identity->pub, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_blob(st, 2, identity->priv, sizeof identity->priv, SQLITE_STATIC) != SQLITE_OK ||
		sqlite3_bind_int64(st, 3, registration_id) != SQLITE_OK) {
		done(st);
		return PARLEY_E_STORE;
	}
	return exec_stmt(st);
}

int parley_signal_sqlite_prekey_count(parley_signal_sqlite *s, uint32_t *count)
{
	sqlite3_stmt *st;
	int rc;
	if (s == NULL || count == NULL)
		return PARLEY_E_INVAL;
	st = s->q[Q_COUNT_PREKEY];
	rc = step_row(st);
	if (rc != PARLEY_OK)
		return rc == PARLEY_E_NOT_FOUND ? PARLEY_E_STORE : rc;
	*count = (uint32_t)sqlite3_column_int64(st, 0);
	done(st);
	return PARLEY_OK;
}

/* The callbacks, filled once; parley_signal_sqlite_store copies them and sets `user`. */
static const parley_signal_store sqlite_store_ops = {
	.get_identity_keypair = get_identity_keypair,
	.get_local_registration_id = get_local_registration_id,
	.save_identity = save_identity,
	.is_trusted_identity = is_trusted_identity,
	.get_identity = get_identity,
	.load_session = load_session,
	.store_session = store_session,
	.delete_session = delete_session,
	.load_prekey = load_prekey,
	.store_prekey = store_prekey,
	.remove_prekey = remove_prekey,
	.load_signed_prekey = load_signed_prekey,
	.store_signed_prekey = store_signed_prekey,
	.load_sender_key = load_sender_key,
	.store_sender_key = store_sender_key,
	.remove_signed_prekey = remove_signed_prekey,
};

void parley_signal_sqlite_store(parley_signal_sqlite *s, parley_signal_store *out)
{
	*out = sqlite_store_ops;
	out->user = s;
}
