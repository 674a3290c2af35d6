/* Local message history, sealed at rest (issue 10 item 4; docs/history.md).
 *
 * Every message handed to the application and every message this device sent (once the server
 * acknowledged it) is kept in client.db, table `history`, under its own schema "client.history" so it
 * migrates independently of state.c's. One row per message: the conversation id (today the peer's
 * handle; threads will use "thread:<id>"), direction, sender handle and device, the sender's timestamp
 * (the message id), the server's timestamp, and the body SEALED with XChaCha20-Poly1305 (libsodium's
 * crypto_aead_xchacha20poly1305_ietf): a random 24-byte nonce per row, and associated data binding the
 * row's metadata, so a body copied into another row (another conversation, sender, time or direction)
 * does not open. Nothing of a body is ever written in clear: a copy of client.db or its -wal shows who
 * talked to whom and when (as the Signal store and the quarantine already do) but not what was said.
 *
 * The storage key (32 bytes) comes from a key file `history.key` (0600, next to client.db, created on
 * first use), or, when a storage passphrase is given, from Argon2id (crypto_pwhash) with a random salt
 * and the limits kept in client.db (no key file). A check value sealed under the key (history_key.check)
 * tells a wrong key file or passphrase (PARLEY_E_STORAGE_KEY) before any row is read or written: a
 * history sealed under one key is never silently mixed with rows under another.
 *
 * This file is the store itself: pure functions over an sqlite3 handle and a key, so that the unit tests
 * drive them without a client. history_api.c ties it to a parley_client and the public API.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"
#include "common/migrate.h"

static const char *const history_steps[] = {
	/* 1: history_key: how the storage key is obtained (kind 1: the key file, 2: a passphrase with this
	 * salt and these Argon2id limits) and a check value sealed under it. history: one row per message;
	 * server_id links a received row to its envelope (the crash window: a redelivered envelope whose
	 * session already advanced is handed over from here if `handed` is still 0); `request` is what
	 * on_message said then. The index serves listing, per-conversation pruning and the age limit. */
	"CREATE TABLE history_key (id INTEGER PRIMARY KEY CHECK (id = 1), kind INTEGER NOT NULL,"
	"  salt BLOB, opslimit INTEGER NOT NULL DEFAULT 0, memlimit INTEGER NOT NULL DEFAULT 0,"
	"  check_value BLOB NOT NULL, created_ms INTEGER NOT NULL);"
	"CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation TEXT NOT NULL,"
	"  outgoing INTEGER NOT NULL, sender TEXT NOT NULL, sender_device INTEGER NOT NULL,"
	"  timestamp INTEGER NOT NULL, server_ts INTEGER NOT NULL, server_id INTEGER,"
	"  handed INTEGER NOT NULL DEFAULT 1, request INTEGER NOT NULL DEFAULT 0,"
	"  nonce BLOB NOT NULL CHECK (length(nonce) = 24), body BLOB NOT NULL);"
	"CREATE INDEX history_conv ON history(conversation, server_ts, id);"
	"CREATE UNIQUE INDEX history_envelope ON history(server_id) WHERE server_id IS NOT NULL;",
};

static const migrate_schema history_schema = {
	.name = "client.history",
	MIGRATE_STEPS(history_steps),
	.legacy_user_version = 0,
};

int client__history_conversation_ok(const char *conv)
{
	size_t i, len;

	if (conv == NULL)
		return 0;
	len = strnlen(conv, HISTORY_CONV_MAX + 1);
	if (len == 0 || len > HISTORY_CONV_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)conv[i] <= 0x20 || (unsigned char)conv[i] >= 0x7f)
			return 0;
	return 1;
}

/* ---- sealing ---- */

/* The associated data: a label (a value sealed for something else never opens as a row), then each
 * field length-prefixed so that no two metadata sets share an encoding. */
static size_t build_ad(const client_history_meta *m, uint8_t ad[HISTORY_AD_MAX])
{
	static const char label[] = "parley.history.v1";
	size_t cl = strnlen(m->conversation, HISTORY_CONV_MAX), sl = strnlen(m->sender, PARLEY_HANDLE_MAX), n = 0;

	memcpy(ad, label, sizeof(label)); /* with its NUL */
	n = sizeof(label);
	ad[n++] = (uint8_t)(m->outgoing != 0);
	ad[n++] = (uint8_t)cl;
	memcpy(ad + n, m->conversation, cl);
	n += cl;
	ad[n++] = (uint8_t)sl;
	memcpy(ad + n, m->sender, sl);
	n += sl;
	for (int b = 3; b >= 0; b--)
		ad[n++] = (uint8_t)(m->sender_device >> (8 * b));
	for (int b = 7; b >= 0; b--)
		ad[n++] = (uint8_t)(m->timestamp >> (8 * b));
	return n;
}

void client__history_seal(const uint8_t key[HISTORY_KEY_BYTES], const client_history_meta *m, const uint8_t *body,
			  size_t len, uint8_t nonce[HISTORY_NONCE_BYTES], uint8_t *ct)
{
	uint8_t ad[HISTORY_AD_MAX];
	size_t adlen = build_ad(m, ad);
	unsigned long long clen = 0;

	randombytes_buf(nonce, HISTORY_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, body, len, ad, adlen, NULL, nonce, key);
}

int client__history_open(const uint8_t key[HISTORY_KEY_BYTES], const client_history_meta *m,
			 const uint8_t nonce[HISTORY_NONCE_BYTES], const uint8_t *ct, size_t ct_len, uint8_t *body,
			 size_t *len)
{
	uint8_t ad[HISTORY_AD_MAX];
	size_t adlen = build_ad(m, ad);
	unsigned long long plen = 0;

	*len = 0;
	if (ct_len < HISTORY_ABYTES ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt(body, &plen, NULL, ct, ct_len, ad, adlen, nonce, key) != 0)
		return PARLEY_E_BAD_MAC;
	*len = (size_t)plen;
	return PARLEY_OK;
}

/* ---- the storage key ---- */

#define KIND_FILE 1
#define KIND_PASSPHRASE 2
#define CHECK_LEN (HISTORY_NONCE_BYTES + 16 + HISTORY_ABYTES)

/* The check value: 16 zero bytes sealed under the key, with metadata no message row can have. */
static const client_history_meta check_meta = {"-", 0, "-", 0, 0};

static void make_check(const uint8_t key[HISTORY_KEY_BYTES], uint8_t out[CHECK_LEN])
{
	static const uint8_t zero[16];
	client__history_seal(key, &check_meta, zero, sizeof(zero), out, out + HISTORY_NONCE_BYTES);
}

static int check_ok(const uint8_t key[HISTORY_KEY_BYTES], const uint8_t *v, size_t len)
{
	uint8_t pt[CHECK_LEN];
	size_t n = 0;
	return len == CHECK_LEN && client__history_open(key, &check_meta, v, v + HISTORY_NONCE_BYTES,
							len - HISTORY_NONCE_BYTES, pt, &n) == PARLEY_OK;
}

int client__history_derive(const char *passphrase, const uint8_t salt[HISTORY_SALT_BYTES], uint64_t ops,
			   uint64_t mem, uint8_t key[HISTORY_KEY_BYTES])
{
	if (crypto_pwhash(key, HISTORY_KEY_BYTES, passphrase, strlen(passphrase), salt, ops, (size_t)mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return PARLEY_E_NOMEM; /* libsodium fails only when it cannot allocate mem */
	return PARLEY_OK;
}

static int key_path(const char *dir, char path[PATH_MAX])
{
	int n = snprintf(path, PATH_MAX, "%s/%s", dir, HISTORY_KEY_FILE);
	return n > 0 && n < PATH_MAX ? PARLEY_OK : PARLEY_E_TOO_LARGE;
}

/* Reads the key file (checked 0600 and ours, as client.db is) into key. PARLEY_E_NOT_FOUND if absent. */
static int read_key_file(const char *dir, uint8_t key[HISTORY_KEY_BYTES], char *err, size_t errlen)
{
	char path[PATH_MAX];
	ssize_t got;
	uint8_t extra;
	int fd, rc = key_path(dir, path);

	if (rc == PARLEY_OK)
		rc = client__check_private_file(path, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		client__errbuf_set(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return PARLEY_E_IO;
	}
	got = read(fd, key, HISTORY_KEY_BYTES);
	if (got == HISTORY_KEY_BYTES && read(fd, &extra, 1) != 0)
		got = -1; /* longer than a key: not ours */
	close(fd);
	if (got != HISTORY_KEY_BYTES) {
		sodium_memzero(key, HISTORY_KEY_BYTES);
		client__errbuf_set(err, errlen, "%s is not a %d-byte key", path, HISTORY_KEY_BYTES);
		return PARLEY_E_STORAGE_KEY;
	}
	return PARLEY_OK;
}

/* Creates the key file with a fresh key (0600, O_EXCL: never replaces one). */
static int create_key_file(const char *dir, uint8_t key[HISTORY_KEY_BYTES], char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd, rc = key_path(dir, path);

	if (rc != PARLEY_OK)
		return rc;
	randombytes_buf(key, HISTORY_KEY_BYTES);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		client__errbuf_set(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return errno == EEXIST ? PARLEY_E_STORAGE_KEY : PARLEY_E_IO;
	}
	if (fchmod(fd, 0600) != 0 || write(fd, key, HISTORY_KEY_BYTES) != HISTORY_KEY_BYTES || fsync(fd) != 0) {
		client__errbuf_set(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return PARLEY_E_IO;
	}
	close(fd);
	return PARLEY_OK;
}

/* First use: a new key (file or passphrase) and its row, in one transaction with the check. */
static int key_create(sqlite3 *db, const char *dir, const char *passphrase, uint8_t key[HISTORY_KEY_BYTES],
		      char *err, size_t errlen)
{
	uint8_t salt[HISTORY_SALT_BYTES], check[CHECK_LEN];
	uint64_t ops = crypto_pwhash_OPSLIMIT_INTERACTIVE, mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	sqlite3_stmt *st = NULL;
	int rc;

	randombytes_buf(salt, sizeof(salt));
	if (passphrase != NULL) {
		rc = client__history_derive(passphrase, salt, ops, mem, key);
	} else {
		/* a key file without its row: a first use that died before its commit; nothing was sealed
		 * under it, so it is taken as the key */
		rc = read_key_file(dir, key, err, errlen);
		if (rc == PARLEY_E_NOT_FOUND)
			rc = create_key_file(dir, key, err, errlen);
	}
	if (rc != PARLEY_OK)
		return rc;
	make_check(key, check);
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO history_key (id, kind, salt, opslimit, memlimit, check_value, created_ms)"
			       " VALUES (1, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return client__history_sql_fail(db, err, errlen);
	sqlite3_bind_int(st, 1, passphrase != NULL ? KIND_PASSPHRASE : KIND_FILE);
	if (passphrase != NULL)
		sqlite3_bind_blob(st, 2, salt, sizeof(salt), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ops);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)mem);
	sqlite3_bind_blob(st, 5, check, sizeof(check), SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)client__now_ms());
	rc = sqlite3_step(st) == SQLITE_DONE ? PARLEY_OK : client__history_sql_fail(db, err, errlen);
	sqlite3_finalize(st);
	return rc;
}

/* The key a kept row describes, or STORAGE_KEY when what the caller has is not the one it needs. */
static int key_load(sqlite3_stmt *st, const char *dir, const char *passphrase, uint8_t key[HISTORY_KEY_BYTES],
		    char *err, size_t errlen)
{
	int kind = sqlite3_column_int(st, 0);
	const void *salt = sqlite3_column_blob(st, 1);
	int rc;

	if (kind == KIND_FILE && passphrase != NULL) {
		client__errbuf_set(err, errlen, "the history is sealed with %s/%s, not with a passphrase", dir, HISTORY_KEY_FILE);
		return PARLEY_E_STORAGE_KEY;
	}
	if (kind == KIND_PASSPHRASE && passphrase == NULL) {
		client__errbuf_set(err, errlen, "the history is sealed with a storage passphrase: give it");
		return PARLEY_E_STORAGE_KEY;
	}
	if (kind == KIND_FILE) {
		rc = read_key_file(dir, key, err, errlen);
		if (rc == PARLEY_E_NOT_FOUND) {
			/* never a new one: the rows are sealed under the lost one */
			client__errbuf_set(err, errlen, "%s/%s is missing: the history cannot be opened", dir, HISTORY_KEY_FILE);
			rc = PARLEY_E_STORAGE_KEY;
		}
	} else if (kind == KIND_PASSPHRASE && salt != NULL && sqlite3_column_bytes(st, 1) == HISTORY_SALT_BYTES) {
		rc = client__history_derive(passphrase, salt, (uint64_t)sqlite3_column_int64(st, 2),
					    (uint64_t)sqlite3_column_int64(st, 3), key);
	} else {
		client__errbuf_set(err, errlen, "client.db: unknown history key kind %d", kind);
		return PARLEY_E_STORE;
	}
	if (rc != PARLEY_OK)
		return rc;
	if (!check_ok(key, sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4))) {
		sodium_memzero(key, HISTORY_KEY_BYTES);
		client__errbuf_set(err, errlen, kind == KIND_FILE ? "%s/" HISTORY_KEY_FILE " is not the key the history is sealed with"
						       : "%swrong storage passphrase",
			kind == KIND_FILE ? dir : "");
		return PARLEY_E_STORAGE_KEY;
	}
	return PARLEY_OK;
}

int client__history_unlock(sqlite3 *db, const char *dir, const char *passphrase, uint8_t key[HISTORY_KEY_BYTES],
			   char *err, size_t errlen)
{
	migrate_result res;
	sqlite3_stmt *st = NULL;
	int rc = parley__migrate(db, &history_schema, &res);

	if (rc != PARLEY_OK) {
		client__errbuf_set(err, errlen, "client.db: %s", res.err);
		return rc;
	}
	/* IMMEDIATE: two processes starting at once create one key, not two */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return client__history_sql_fail(db, err, errlen);
	if (sqlite3_prepare_v2(db, "SELECT kind, salt, opslimit, memlimit, check_value FROM history_key WHERE id = 1",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = client__history_sql_fail(db, err, errlen);
	} else {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			rc = key_load(st, dir, passphrase, key, err, errlen);
		else if (rc == SQLITE_DONE)
			rc = key_create(db, dir, passphrase, key, err, errlen);
		else
			rc = client__history_sql_fail(db, err, errlen);
		sqlite3_finalize(st);
	}
	if (sqlite3_exec(db, rc == PARLEY_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && rc == PARLEY_OK)
		rc = client__history_sql_fail(db, err, errlen);
	if (rc != PARLEY_OK)
		sodium_memzero(key, HISTORY_KEY_BYTES);
	return rc;
}
