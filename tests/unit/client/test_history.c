/* Unit tests of the local history's store (lib/client/history.c, history_rows.c): sealing, the storage
 * key (key file and passphrase), moved rows, retention. On a plain SQLite file in a temporary
 * directory: no client, no server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../test.h"
#include "client/client_internal.h"

static char dir[256];
static char err[256];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof dir, "/tmp/parley-test-history-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static sqlite3 *db_open(const char *name)
{
	char path[512];
	sqlite3 *db = NULL;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	return db;
}

static void rm(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
}

static const client_history_meta meta = {"bob", 0, "bob", 2, 1700000000123ull};

static void test_seal_round_trip(void)
{
	uint8_t key[32], nonce[24], nonce2[24], ct[64], ct2[64], pt[64];
	const char *msg = "hello history";
	size_t len = strlen(msg), n = 0;

	randombytes_buf(key, sizeof key);
	client__history_seal(key, &meta, (const uint8_t *)msg, len, nonce, ct);
	TEST_EQ_INT(client__history_open(key, &meta, nonce, ct, len + HISTORY_ABYTES, pt, &n), PARLEY_OK);
	TEST_EQ_INT(n, len);
	TEST_EQ_MEM(pt, msg, len);
	/* the body is not in the sealed bytes */
	TEST_CHECK(memmem(ct, len + HISTORY_ABYTES, "hello", 5) == NULL);
	/* a fresh random nonce per seal: the same body seals differently */
	client__history_seal(key, &meta, (const uint8_t *)msg, len, nonce2, ct2);
	TEST_CHECK(memcmp(nonce, nonce2, sizeof nonce) != 0);
	TEST_CHECK(memcmp(ct, ct2, len) != 0);
}

static void test_seal_tamper(void)
{
	uint8_t key[32], nonce[24], ct[64], pt[64];
	const char *msg = "tamper me";
	size_t len = strlen(msg), n = 0, clen = len + HISTORY_ABYTES;
	client_history_meta m;

	randombytes_buf(key, sizeof key);
	client__history_seal(key, &meta, (const uint8_t *)msg, len, nonce, ct);
	for (size_t i = 0; i < sizeof nonce; i++) {
		nonce[i] ^= 1;
		TEST_EQ_INT(client__history_open(key, &meta, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
		nonce[i] ^= 1;
	}
	for (size_t i = 0; i < clen; i++) {
		ct[i] ^= 0x80;
		TEST_EQ_INT(client__history_open(key, &meta, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
		ct[i] ^= 0x80;
	}
	/* every field of the associated data */
	m = meta;
	m.conversation = "bob2";
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	m = meta;
	m.conversation = "bib"; /* the same length: the bytes themselves are bound */
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	m = meta;
	m.outgoing = 1;
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	m = meta;
	m.sender = "bib";
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	m = meta;
	m.sender_device = 3;
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	m = meta;
	m.timestamp++;
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	/* field boundaries are length-prefixed: "ab"+"c" is not "a"+"bc" */
	m = meta;
	m.conversation = "bobb";
	m.sender = "ob";
	TEST_EQ_INT(client__history_open(key, &m, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	key[0] ^= 1;
	TEST_EQ_INT(client__history_open(key, &meta, nonce, ct, clen, pt, &n), PARLEY_E_BAD_MAC);
	key[0] ^= 1;
	/* untouched, it still opens: the refusals above were the changes' doing */
	TEST_EQ_INT(client__history_open(key, &meta, nonce, ct, clen, pt, &n), PARLEY_OK);
}

static int insert(sqlite3 *db, const uint8_t *key, const char *conv, const char *sender, uint64_t ts, const char *body,
		  unsigned max)
{
	client_history_row r;
	client_history_limits lim = {max, 0, 1700000000000ull};
	memset(&r, 0, sizeof r);
	r.m = (client_history_meta){conv, strcmp(sender, "alice") == 0, sender, 1, ts};
	r.server_ts = ts;
	r.handed = 1;
	r.body = (const uint8_t *)body;
	r.body_len = strlen(body);
	return client__history_insert(db, key, &r, &lim, err, sizeof err);
}

static long long count(sqlite3 *db, const char *conv)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;
	sqlite3_prepare_v2(db, "SELECT count(*) FROM history WHERE conversation = ?", -1, &st, NULL);
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_key_file(void)
{
	uint8_t key[32], key2[32], junk[32];
	struct stat st;
	char path[512];
	sqlite3 *db = db_open("kf.db");
	FILE *f;

	rm(HISTORY_KEY_FILE);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key, err, sizeof err), PARLEY_OK);
	snprintf(path, sizeof path, "%s/%s", dir, HISTORY_KEY_FILE);
	TEST_EQ_INT(stat(path, &st), 0);
	TEST_EQ_INT(st.st_mode & 0777, 0600);
	TEST_EQ_INT(st.st_size, 32);
	/* the same key again */
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key2, err, sizeof err), PARLEY_OK);
	TEST_EQ_MEM(key, key2, 32);
	/* a passphrase for a history sealed with the key file */
	TEST_EQ_INT(client__history_unlock(db, dir, "secret", key2, err, sizeof err), PARLEY_E_STORAGE_KEY);
	/* another key file */
	randombytes_buf(junk, sizeof junk);
	f = fopen(path, "wb");
	TEST_CHECK(f != NULL && fwrite(junk, 1, 32, f) == 32);
	fclose(f);
	memset(key2, 0xaa, sizeof key2);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key2, err, sizeof err), PARLEY_E_STORAGE_KEY);
	TEST_CHECK(strstr(err, "not the key") != NULL);
	TEST_CHECK(sodium_is_zero(key2, sizeof key2)); /* wiped on refusal */
	/* the key file is not overwritten by the refusal */
	f = fopen(path, "rb");
	TEST_CHECK(f != NULL && fread(key2, 1, 32, f) == 32);
	fclose(f);
	TEST_EQ_MEM(key2, junk, 32);
	/* a missing key file is not replaced by a new one */
	unlink(path);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key2, err, sizeof err), PARLEY_E_STORAGE_KEY);
	TEST_CHECK(stat(path, &st) != 0);
	/* readable by others: refused as client.db would be */
	f = fopen(path, "wb");
	TEST_CHECK(f != NULL && fwrite(key, 1, 32, f) == 32);
	fclose(f);
	chmod(path, 0644);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key2, err, sizeof err), PARLEY_E_PERM);
	chmod(path, 0600);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key2, err, sizeof err), PARLEY_OK);
	TEST_EQ_MEM(key, key2, 32);
	sqlite3_close(db);
	rm(HISTORY_KEY_FILE);
}

static void test_passphrase(void)
{
	uint8_t key[32], key2[32];
	parley_history_entry e[2];
	size_t n = 0;
	struct stat st;
	char path[512];
	sqlite3 *db = db_open("pp.db");

	rm(HISTORY_KEY_FILE);
	TEST_EQ_INT(client__history_unlock(db, dir, "correct horse", key, err, sizeof err), PARLEY_OK);
	snprintf(path, sizeof path, "%s/%s", dir, HISTORY_KEY_FILE);
	TEST_CHECK(stat(path, &st) != 0); /* no key file in passphrase mode */
	TEST_EQ_INT(insert(db, key, "bob", "bob", 1000, "sealed by passphrase", 10), PARLEY_OK);
	TEST_EQ_INT(client__history_unlock(db, dir, "correct horse", key2, err, sizeof err), PARLEY_OK);
	TEST_EQ_MEM(key, key2, 32);
	memset(key2, 0xaa, sizeof key2);
	TEST_EQ_INT(client__history_unlock(db, dir, "correct horsE", key2, err, sizeof err), PARLEY_E_STORAGE_KEY);
	TEST_CHECK(strstr(err, "wrong storage passphrase") != NULL);
	TEST_CHECK(sodium_is_zero(key2, sizeof key2));
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key2, err, sizeof err), PARLEY_E_STORAGE_KEY);
	/* the rows are still there and open under the right one */
	TEST_EQ_INT(client__history_select(db, key, "bob", 0, 2, e, &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 1);
	if (n == 1)
		TEST_EQ_STR((const char *)e[0].body, "sealed by passphrase");
	parley_history_entries_free(e, n);
	sqlite3_close(db);
}

static void test_moved_row(void)
{
	uint8_t key[32];
	parley_history_entry e[4];
	size_t n = 0;
	sqlite3 *db = db_open("mv.db");

	rm(HISTORY_KEY_FILE);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(insert(db, key, "bob", "bob", 1000, "first", 10), PARLEY_OK);
	TEST_EQ_INT(insert(db, key, "carol", "carol", 2000, "second", 10), PARLEY_OK);
	TEST_EQ_INT(client__history_select(db, key, "carol", 0, 4, e, &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 1);
	parley_history_entries_free(e, n);
	/* carol's row gets bob's sealed body (nonce and ciphertext) */
	TEST_EQ_INT(sqlite3_exec(db,
				 "UPDATE history SET nonce = (SELECT nonce FROM history WHERE conversation = 'bob'),"
				 " body = (SELECT body FROM history WHERE conversation = 'bob') WHERE conversation = 'carol'",
				 NULL, NULL, NULL),
		    SQLITE_OK);
	TEST_EQ_INT(client__history_select(db, key, "carol", 0, 4, e, &n, err, sizeof err), PARLEY_E_BAD_MAC);
	TEST_EQ_INT(n, 0);
	/* the same message (sender, device, time, direction) in two conversations of the same length: a
	 * body moved between them is refused on the conversation alone */
	TEST_EQ_INT(insert(db, key, "ann", "alice", 3000, "to ann", 10), PARLEY_OK);
	TEST_EQ_INT(insert(db, key, "ben", "alice", 3000, "to ben", 10), PARLEY_OK);
	TEST_EQ_INT(sqlite3_exec(db,
				 "UPDATE history SET nonce = (SELECT nonce FROM history WHERE conversation = 'ann'),"
				 " body = (SELECT body FROM history WHERE conversation = 'ann') WHERE conversation = 'ben'",
				 NULL, NULL, NULL),
		    SQLITE_OK);
	TEST_EQ_INT(client__history_select(db, key, "ben", 0, 4, e, &n, err, sizeof err), PARLEY_E_BAD_MAC);
	TEST_EQ_INT(client__history_select(db, key, "ann", 0, 4, e, &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 1);
	parley_history_entries_free(e, n);
	/* a row re-labelled to another conversation */
	TEST_EQ_INT(sqlite3_exec(db, "UPDATE history SET conversation = 'dave' WHERE conversation = 'bob'", NULL, NULL,
				 NULL),
		    SQLITE_OK);
	TEST_EQ_INT(client__history_select(db, key, "dave", 0, 4, e, &n, err, sizeof err), PARLEY_E_BAD_MAC);
	/* its timestamp changed */
	TEST_EQ_INT(sqlite3_exec(db, "UPDATE history SET conversation = 'bob', timestamp = timestamp + 1 WHERE"
				     " conversation = 'dave'",
				 NULL, NULL, NULL),
		    SQLITE_OK);
	TEST_EQ_INT(client__history_select(db, key, "bob", 0, 4, e, &n, err, sizeof err), PARLEY_E_BAD_MAC);
	/* restored, it opens again */
	TEST_EQ_INT(sqlite3_exec(db, "UPDATE history SET timestamp = timestamp - 1 WHERE conversation = 'bob'", NULL,
				 NULL, NULL),
		    SQLITE_OK);
	TEST_EQ_INT(client__history_select(db, key, "bob", 0, 4, e, &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 1);
	parley_history_entries_free(e, n);
	sqlite3_close(db);
	rm(HISTORY_KEY_FILE);
}

static void test_retention(void)
{
	uint8_t key[32];
	parley_history_entry e[20];
	char body[32];
	size_t n = 0;
	sqlite3 *db = db_open("rt.db");
	client_history_limits age = {100, 10, 1700000000000ull + 30ull * 86400000};

	rm(HISTORY_KEY_FILE);
	TEST_EQ_INT(client__history_unlock(db, dir, NULL, key, err, sizeof err), PARLEY_OK);
	for (int i = 1; i <= 25; i++) {
		snprintf(body, sizeof body, "message %d", i);
		TEST_EQ_INT(insert(db, key, "bob", i % 2 ? "bob" : "alice", 1000u + (unsigned)i, body, 10), PARLEY_OK);
		TEST_EQ_INT(count(db, "bob"), i < 10 ? i : 10); /* exactly the bound, never more */
	}
	TEST_EQ_INT(insert(db, key, "carol", "carol", 5, "other conversation", 10), PARLEY_OK);
	TEST_EQ_INT(count(db, "bob"), 10);
	TEST_EQ_INT(count(db, "carol"), 1);
	/* the newest ten, newest first */
	TEST_EQ_INT(client__history_select(db, key, "bob", 0, 20, e, &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 10);
	for (size_t i = 0; i < n; i++) {
		snprintf(body, sizeof body, "message %d", 25 - (int)i);
		TEST_EQ_STR((const char *)e[i].body, body);
		TEST_EQ_INT(e[i].server_timestamp_ms, 1025 - i);
		TEST_EQ_INT(e[i].outgoing, (25 - i) % 2 == 0);
	}
	parley_history_entries_free(e, n);
	/* paging: below the 3rd newest */
	TEST_EQ_INT(client__history_select(db, key, "bob", 1023, 2, e, &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 2);
	if (n == 2)
		TEST_EQ_INT(e[0].server_timestamp_ms, 1022);
	parley_history_entries_free(e, n);
	/* the age bound: everything here is 30 days old, the bound 10 */
	TEST_EQ_INT(client__history_prune_age(db, &age, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(count(db, "bob"), 0);
	TEST_EQ_INT(count(db, "carol"), 0);
	/* on insert too: the new row stays, the old one of its conversation goes */
	TEST_EQ_INT(insert(db, key, "bob", "bob", 1000, "old", 10), PARLEY_OK);
	{
		client_history_row r;
		memset(&r, 0, sizeof r);
		r.m = (client_history_meta){"bob", 0, "bob", 1, age.now_ms};
		r.server_ts = age.now_ms;
		r.body = (const uint8_t *)"new";
		r.body_len = 3;
		TEST_EQ_INT(client__history_insert(db, key, &r, &age, err, sizeof err), PARLEY_OK);
	}
	TEST_EQ_INT(count(db, "bob"), 1);
	/* clear */
	TEST_EQ_INT(client__history_delete(db, "bob", &n, err, sizeof err), PARLEY_OK);
	TEST_EQ_INT(n, 1);
	TEST_EQ_INT(count(db, "bob"), 0);
	sqlite3_close(db);
	rm(HISTORY_KEY_FILE);
}

static void test_conversation_ids(void)
{
	TEST_CHECK(client__history_conversation_ok("bob"));
	TEST_CHECK(client__history_conversation_ok("thread:12345"));
	TEST_CHECK(!client__history_conversation_ok(""));
	TEST_CHECK(!client__history_conversation_ok("a b"));
	TEST_CHECK(!client__history_conversation_ok("bob\n"));
	TEST_CHECK(!client__history_conversation_ok(NULL));
	char longid[HISTORY_CONV_MAX + 2];
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	TEST_CHECK(!client__history_conversation_ok(longid));
	longid[HISTORY_CONV_MAX] = '\0';
	TEST_CHECK(client__history_conversation_ok(longid));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	mkdir_tmp();
	TEST_RUN(test_seal_round_trip);
	TEST_RUN(test_seal_tamper);
	TEST_RUN(test_key_file);
	TEST_RUN(test_passphrase);
	TEST_RUN(test_moved_row);
	TEST_RUN(test_retention);
	TEST_RUN(test_conversation_ids);
	const char *names[] = {"kf.db", "pp.db", "mv.db", "rt.db"};
	for (size_t i = 0; i < 4; i++)
		rm(names[i]);
	rmdir(dir);
	TEST_EXIT();
}
