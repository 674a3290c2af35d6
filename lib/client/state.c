#include "client/state.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/migrate.h"

#define BUSY_TIMEOUT_MS 5000

struct client_state {
	sqlite3 *db;
	char *dir;
};

/* The schema of client.db, through the shared migration helper (lib/common/migrate.h). Append steps,
 * never edit one that shipped.
 *
 * One schema, "client", for every table of the file, although e2e.c owns some of them: the file has one
 * version number that says exactly which tables it holds, all of them exist as soon as it is open, and a
 * later step may touch tables of both halves in one transaction, with no ordering to get right between
 * two schemas of one file (which a separate "client.e2e" schema would need).
 *
 * Version 1 is the schema before the helper existed, kept in PRAGMA user_version = 1 (hence
 * legacy_user_version). Step 2 moves the e2e tables under versioning: until then e2e.c created them with
 * CREATE TABLE IF NOT EXISTS on first use, so a version-1 file may or may not have them already, and the
 * step keeps IF NOT EXISTS for that reason. */
static const char *const client_steps[] = {
	/* 1: device key and account */
	"CREATE TABLE IF NOT EXISTS device_key ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  seed BLOB NOT NULL CHECK (length(seed) = 32),"
	"  public_key BLOB NOT NULL CHECK (length(public_key) = 32),"
	"  created_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS account ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  handle TEXT NOT NULL,"
	"  account_id INTEGER NOT NULL,"
	"  device_id INTEGER NOT NULL,"
	"  server_url TEXT NOT NULL,"
	"  saved_ms INTEGER NOT NULL);",
	/* 2: e2e.c and keys.c: prekey id counter and current signed prekey; devices of other accounts we
	 * have sessions with and their registration ids (the relay checks them); changed identity keys
	 * waiting for the user; server ids of envelopes handed to the application (duplicate detection,
	 * never content) */
	"CREATE TABLE IF NOT EXISTS e2e_meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  next_prekey_id INTEGER NOT NULL, spk_id INTEGER NOT NULL, spk_created_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS peer_devices (handle TEXT NOT NULL, device_id INTEGER NOT NULL,"
	"  registration_id INTEGER NOT NULL, PRIMARY KEY (handle, device_id));"
	"CREATE TABLE IF NOT EXISTS pending_identity (handle TEXT NOT NULL, device_id INTEGER NOT NULL,"
	"  key BLOB NOT NULL, seen_ms INTEGER NOT NULL, PRIMARY KEY (handle, device_id));"
	"CREATE TABLE IF NOT EXISTS received_ids (server_id INTEGER PRIMARY KEY, seen_ms INTEGER NOT NULL);",
	/* 3: recv.c and trust.c (security item 1, inbox lock). quarantine: envelopes that could not be
	 * decrypted when they arrived (untrusted identity, no session, bad MAC...), acknowledged to the server
	 * and kept here, ciphertext only, so that no sender can hold the server's delivery window; `retry` is
	 * set when `trust` accepts a key of the sender. quarantine_meta.dropped counts the envelopes pushed
	 * out by the per-sender and total bounds. pending_keys replaces pending_identity, which kept one key
	 * per device (the last one seen): a stranger could bury the real new key under forged ones, so every
	 * claimed key is kept (bounded per handle) and the user accepts the one they verified. */
	"CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, server_id INTEGER NOT NULL UNIQUE,"
	"  sender TEXT NOT NULL, sender_device INTEGER NOT NULL, type INTEGER NOT NULL,"
	"  client_ts INTEGER NOT NULL, server_ts INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
	"  reason INTEGER NOT NULL, retry INTEGER NOT NULL DEFAULT 0, content BLOB NOT NULL);"
	"CREATE INDEX quarantine_sender ON quarantine(sender, id);"
	"CREATE TABLE quarantine_meta (id INTEGER PRIMARY KEY CHECK (id = 1), dropped INTEGER NOT NULL);"
	"INSERT INTO quarantine_meta (id, dropped) VALUES (1, 0);"
	"CREATE TABLE pending_keys (handle TEXT NOT NULL, device_id INTEGER NOT NULL, key BLOB NOT NULL,"
	"  seen_ms INTEGER NOT NULL, PRIMARY KEY (handle, device_id, key));"
	"INSERT INTO pending_keys (handle, device_id, key, seen_ms)"
	"  SELECT handle, device_id, key, seen_ms FROM pending_identity;"
	"DROP TABLE pending_identity;",
	/* 4: signed device lists (issue 9, akey.c and peers.c). account_key: this account's key (public
	 * always, private only on the device that holds it). account.registered marks the device that
	 * registered the account: it alone creates an account key for an account registered before keys
	 * existed; the server gives the registering device id 1, which is how older files are marked.
	 * peer_lists: per peer account the pinned account key (first seen, TOFU), the highest verified
	 * list and its version (a lower one is a rollback), and pending_ak: a different key the server
	 * now shows (the peer re-registered), waiting for parley_trust. */
	"CREATE TABLE account_key (id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  public_key BLOB NOT NULL CHECK (length(public_key) = 33),"
	"  private_key BLOB CHECK (private_key IS NULL OR length(private_key) = 32),"
	"  created_ms INTEGER NOT NULL);"
	"ALTER TABLE account ADD COLUMN registered INTEGER NOT NULL DEFAULT 0;"
	"UPDATE account SET registered = (device_id = 1);"
	"CREATE TABLE peer_lists (handle TEXT PRIMARY KEY, account_id INTEGER NOT NULL,"
	"  account_key BLOB NOT NULL CHECK (length(account_key) = 33), pinned_ms INTEGER NOT NULL,"
	"  version INTEGER NOT NULL DEFAULT 0, list BLOB, pending_ak BLOB);",
	/* 5: a quarantined group message keeps its thread (Envelope.thread_id, issue 10) */
	"ALTER TABLE quarantine ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0;",
};

static const migrate_schema client_schema = {
	.name = "client",
	MIGRATE_STEPS(client_steps),
	.legacy_user_version = 1,
};

uint64_t client__now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

void client__errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int client__state_dir_resolve(const char *dir, char **out)
{
	const char *base;
	const char *suffix;
	size_t blen, slen;
	char *p;

	*out = NULL;
	if (dir != NULL) {
		if (dir[0] == '\0')
			return PARLEY_E_INVAL;
		base = dir;
		suffix = "";
	} else {
		base = getenv("XDG_DATA_HOME");
		suffix = "/parley";
		/* The XDG spec says relative values must be ignored. */
		if (base == NULL || base[0] != '/') {
			base = getenv("HOME");
			suffix = "/.local/share/parley";
			if (base == NULL || base[0] != '/')
				return PARLEY_E_CONFIG;
		}
	}
	blen = strlen(base);
	slen = strlen(suffix);
	if (blen + slen + sizeof("/" CLIENT_DB_NAME "-journal") > PATH_MAX)
		return PARLEY_E_TOO_LARGE;
	p = parley__malloc(blen + slen + 1);
	if (p == NULL)
		return PARLEY_E_NOMEM;
	memcpy(p, base, blen);
	memcpy(p + blen, suffix, slen + 1);
	*out = p;
	return PARLEY_OK;
}

/* mkdir -p with mode 0700 for every directory we create (XDG: "should be created with 0700"). Existing
 * parents are left alone. */
static int make_dirs(char *path, char *err, size_t errlen)
{
	char *slash;

	for (slash = strchr(path + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (path[0] != '\0' && mkdir(path, 0700) != 0 && errno != EEXIST) {
			client__errbuf_set(err, errlen, "cannot create %s: %s", path, strerror(errno));
			*slash = '/';
			return errno == EACCES ? PARLEY_E_PERM : PARLEY_E_IO;
		}
		*slash = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		client__errbuf_set(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return errno == EACCES ? PARLEY_E_PERM : PARLEY_E_IO;
	}
	return PARLEY_OK;
}

static int check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		client__errbuf_set(err, errlen, "cannot access %s: %s", dir, strerror(errno));
		return PARLEY_E_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		client__errbuf_set(err, errlen, "%s is not a directory", dir);
		return PARLEY_E_IO;
	}
	if (st.st_uid != geteuid()) {
		client__errbuf_set(err, errlen, "%s is owned by another user (uid %u)", dir, (unsigned)st.st_uid);
		return PARLEY_E_PERM;
	}
	/* Another user able to write here could swap client.db for their own. */
	if ((st.st_mode & 0022) != 0) {
		client__errbuf_set(err, errlen, "%s is writable by other users (mode %04o); run: chmod 700 %s", dir,
			(unsigned)(st.st_mode & 07777), dir);
		return PARLEY_E_PERM;
	}
	return PARLEY_OK;
}

int client__check_private_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return PARLEY_E_NOT_FOUND;
		client__errbuf_set(err, errlen, "cannot access %s: %s", path, strerror(errno));
		return PARLEY_E_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		client__errbuf_set(err, errlen, "%s is not a regular file", path);
		return PARLEY_E_PERM;
	}
	if (st.st_uid != geteuid()) {
		client__errbuf_set(err, errlen, "%s is owned by another user (uid %u)", path, (unsigned)st.st_uid);
		return PARLEY_E_PERM;
	}
	if ((st.st_mode & 0077) != 0) {
		client__errbuf_set(err, errlen,
			"%s holds secret keys but is accessible by other users (mode %04o); run: chmod 600 %s",
			path, (unsigned)(st.st_mode & 07777), path);
		return PARLEY_E_PERM;
	}
	return PARLEY_OK;
}

/* Creates the database file 0600 ourselves, before SQLite sees it: SQLite would create it with the
 * process umask (often 0644). Journal/WAL files then inherit the database file's mode (unix VFS). */
static int create_private_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return PARLEY_OK;
		client__errbuf_set(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return errno == EACCES ? PARLEY_E_PERM : PARLEY_E_IO;
	}
	/* The umask can only remove bits, but make the mode exact anyway. */
	if (fchmod(fd, 0600) != 0) {
		client__errbuf_set(err, errlen, "cannot chmod %s: %s", path, strerror(errno));
		close(fd);
		return PARLEY_E_IO;
	}
	close(fd);
	return PARLEY_OK;
}

static int check_state_files(const char *dir, char *err, size_t errlen)
{
	/* signal.db (lib/client/e2e.c) holds the Signal identity and sessions: same rule. */
	static const char *const names[] = {CLIENT_DB_NAME, CLIENT_DB_NAME "-wal", CLIENT_DB_NAME "-shm",
					    CLIENT_DB_NAME "-journal", "signal.db", "signal.db-wal", "signal.db-shm",
					    "signal.db-journal"};
	char path[PATH_MAX];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
			return PARLEY_E_TOO_LARGE;
		rc = client__check_private_file(path, err, errlen);
		if (rc != PARLEY_OK && rc != PARLEY_E_NOT_FOUND)
			return rc;
	}
	return PARLEY_OK;
}

static int exec_sql(client_state *s, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		client__errbuf_set(err, errlen, "%s/%s: %s", s->dir, CLIENT_DB_NAME, msg != NULL ? msg : "sqlite error");
		sqlite3_free(msg);
		return PARLEY_E_STORE;
	}
	return PARLEY_OK;
}

static int init_schema(client_state *s, char *err, size_t errlen)
{
	migrate_result res;
	int rc;

	/* secure_delete: overwritten rows (an old key) are zeroed on disk, not left in free pages. */
	rc = exec_sql(s, "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;", err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	/* WAL lets a long-running `parley listen` and a short `parley send` share the file. */
	rc = exec_sql(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	rc = parley__migrate(s->db, &client_schema, &res);
	if (rc == PARLEY_E_BAD_VERSION)
		client__errbuf_set(err, errlen, "%s/%s was written by a newer parley: %s", s->dir, CLIENT_DB_NAME, res.err);
	else if (rc != PARLEY_OK)
		client__errbuf_set(err, errlen, "%s/%s: %s", s->dir, CLIENT_DB_NAME, res.err);
	/* One error code for "this file cannot be used", as before the helper. */
	return rc == PARLEY_OK ? PARLEY_OK : PARLEY_E_STORE;
}

int client__state_open(const char *dir, client_state **out, char *err, size_t errlen)
{
	client_state *s = NULL;
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", dir, CLIENT_DB_NAME) >= (int)sizeof(path))
		return PARLEY_E_TOO_LARGE;
	s = parley__calloc(1, sizeof(*s));
	if (s == NULL)
		return PARLEY_E_NOMEM;
	s->dir = parley__strdup(dir);
	if (s->dir == NULL) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	rc = make_dirs(s->dir, err, errlen);
	if (rc != PARLEY_OK)
		goto out;
	rc = check_dir(s->dir, err, errlen);
	if (rc != PARLEY_OK)
		goto out;
	rc = check_state_files(s->dir, err, errlen);
	if (rc != PARLEY_OK)
		goto out;
	rc = create_private_file(path, err, errlen);
	if (rc != PARLEY_OK)
		goto out;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		client__errbuf_set(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		rc = s->db ? PARLEY_E_STORE : PARLEY_E_NOMEM;
		goto out;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = init_schema(s, err, errlen);
out:
	if (rc != PARLEY_OK) {
		client__state_close(s);
		return rc;
	}
	*out = s;
	return PARLEY_OK;
}

void client__state_close(client_state *s)
{
	if (s == NULL)
		return;
	sqlite3_close_v2(s->db);
	parley__free(s->dir);
	parley__free(s);
}

sqlite3 *client__state_db(client_state *s)
{
	return s->db;
}

/* Reads the key row into *out. PARLEY_E_NOT_FOUND if there is none. */
static int load_key(client_state *s, client_key *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT seed, public_key FROM device_key WHERE id = 1", -1, &st, NULL) !=
	    SQLITE_OK) {
		client__errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->db));
		return PARLEY_E_STORE;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = PARLEY_E_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		client__errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->db));
		rc = PARLEY_E_STORE;
		goto out;
	}
	if (sqlite3_column_bytes(st, 0) != crypto_sign_SEEDBYTES ||
	    sqlite3_column_bytes(st, 1) != crypto_sign_PUBLICKEYBYTES) {
		client__errbuf_set(err, errlen, "%s/%s: device key has the wrong size", s->dir, CLIENT_DB_NAME);
		rc = PARLEY_E_STORE;
		goto out;
	}
	memcpy(pk, sqlite3_column_blob(st, 1), sizeof(pk));
	if (crypto_sign_seed_keypair(out->pk, out->sk, sqlite3_column_blob(st, 0)) != 0 ||
	    sodium_memcmp(pk, out->pk, sizeof(pk)) != 0) {
		sodium_memzero(out, sizeof(*out));
		client__errbuf_set(err, errlen, "%s/%s: device key is corrupt (public key does not match)", s->dir,
			CLIENT_DB_NAME);
		rc = PARLEY_E_STORE;
		goto out;
	}
	rc = PARLEY_OK;
out:
	sqlite3_finalize(st);
	return rc;
}

static int insert_key(client_state *s, char *err, size_t errlen)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	client_key k;
	sqlite3_stmt *st = NULL;
	int rc;

	randombytes_buf(seed, sizeof(seed));
	if (crypto_sign_seed_keypair(k.pk, k.sk, seed) != 0) {
		rc = PARLEY_E_CRYPTO;
		goto out;
	}
	/* OR IGNORE: if another process created the key between our check and this insert, keep theirs. */
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR IGNORE INTO device_key (id, seed, public_key, created_ms) VALUES (1, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		client__errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->db));
		rc = PARLEY_E_STORE;
		goto out;
	}
	sqlite3_bind_blob(st, 1, seed, sizeof(seed), SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, k.pk, sizeof(k.pk), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)client__now_ms());
	if (sqlite3_step(st) != SQLITE_DONE) {
		client__errbuf_set(err, errlen, "cannot save device key: %s", sqlite3_errmsg(s->db));
		rc = PARLEY_E_STORE;
		goto out;
	}
	rc = PARLEY_OK;
out:
	sqlite3_finalize(st);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(&k, sizeof(k));
	return rc;
}

int client__state_key(client_state *s, int create, client_key *out, char *err, size_t errlen)
{
	int rc = load_key(s, out, err, errlen);
	if (rc != PARLEY_E_NOT_FOUND || !create)
		return rc;
	rc = insert_key(s, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	return load_key(s, out, err, errlen);
}

int client__state_account(client_state *s, client_account *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *handle, *url;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(s->db,
			       "SELECT handle, account_id, device_id, server_url, saved_ms, registered FROM account WHERE id = 1", -1,
			       &st, NULL) != SQLITE_OK) {
		client__errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->db));
		return PARLEY_E_STORE;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		client__errbuf_set(err, errlen, "this device has no account yet: run register or link first");
		rc = PARLEY_E_NO_IDENTITY;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		client__errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->db));
		rc = PARLEY_E_STORE;
		goto out;
	}
	handle = sqlite3_column_text(st, 0);
	url = sqlite3_column_text(st, 3);
	if (handle == NULL || url == NULL || (size_t)sqlite3_column_bytes(st, 0) > PARLEY_HANDLE_MAX ||
	    (size_t)sqlite3_column_bytes(st, 3) > PARLEY_URL_MAX) {
		client__errbuf_set(err, errlen, "%s/%s: saved account is corrupt", s->dir, CLIENT_DB_NAME);
		rc = PARLEY_E_STORE;
		goto out;
	}
	memcpy(out->handle, handle, (size_t)sqlite3_column_bytes(st, 0));
	memcpy(out->server_url, url, (size_t)sqlite3_column_bytes(st, 3));
	out->account_id = (uint64_t)sqlite3_column_int64(st, 1);
	out->device_id = (uint32_t)sqlite3_column_int64(st, 2);
	out->saved_ms = (uint64_t)sqlite3_column_int64(st, 4);
	out->registered = sqlite3_column_int(st, 5);
	rc = PARLEY_OK;
out:
	sqlite3_finalize(st);
	return rc;
}

int client__state_save_account(client_state *s, const client_account *a, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO account (id, handle, account_id, device_id, server_url, saved_ms, registered)"
			       " VALUES (1, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		client__errbuf_set(err, errlen, "%s", sqlite3_errmsg(s->db));
		return PARLEY_E_STORE;
	}
	sqlite3_bind_text(st, 1, a->handle, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)a->account_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)a->device_id);
	sqlite3_bind_text(st, 4, a->server_url, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)client__now_ms());
	sqlite3_bind_int(st, 6, a->registered != 0);
	/* A single INSERT is its own transaction; the PRIMARY KEY makes a second account impossible. */
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT) {
		client__errbuf_set(err, errlen, "this device already has an account");
		rc = PARLEY_E_STATE;
	} else if (rc != SQLITE_DONE) {
		client__errbuf_set(err, errlen, "cannot save account: %s", sqlite3_errmsg(s->db));
		rc = PARLEY_E_STORE;
	} else {
		rc = PARLEY_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

int client__state_forget_account(client_state *s, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, "DELETE FROM account", NULL, NULL, &msg) != SQLITE_OK) {
		client__errbuf_set(err, errlen, "cannot forget account: %s", msg != NULL ? msg : "sqlite error");
		sqlite3_free(msg);
		return PARLEY_E_STORE;
	}
	return PARLEY_OK;
}
