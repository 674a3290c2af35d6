/* SQLite Signal store: every callback, persistence across reopen, file mode, migrations, and the group
 * cipher running on top of it. */
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/error.h>
#include <parley/signal.h>
#include <parley/signal_group.h>
#include <parley/signal_sqlite.h>

#include "../test.h"
#include "../test_sqlite.h"

static char path[256];

static void fresh_path(void)
{
	char wal[300], shm[300];
	snprintf(path, sizeof path, "/tmp/parley-test-store-%d.db", (int)getpid());
	snprintf(wal, sizeof wal, "%s-wal", path);
	snprintf(shm, sizeof shm, "%s-shm", path);
	unlink(path);
	unlink(wal);
	unlink(shm);
}

static void test_mode_and_schema(void)
{
	parley_signal_sqlite *db = NULL;
	struct stat sb;
	char wal[300];
	fresh_path();
	mode_t old = umask(022);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_OK);
	umask(old);
	TEST_CHECK(db != NULL);
	TEST_EQ_INT(stat(path, &sb), 0);
	TEST_EQ_INT(sb.st_mode & 0777, 0600);
	snprintf(wal, sizeof wal, "%s-wal", path);
	if (stat(wal, &sb) == 0)
		TEST_EQ_INT(sb.st_mode & 0777, 0600);
	parley_signal_sqlite_close(db);

	/* check version and journal mode through SQLite directly */
	sqlite3 *raw;
	sqlite3_stmt *st;
	TEST_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL);
	TEST_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	TEST_EQ_INT(sqlite3_column_int(st, 0), PARLEY_SIGNAL_SQLITE_SCHEMA);
	sqlite3_finalize(st);
	sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL);
	TEST_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	TEST_EQ_STR((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_prepare_v2(raw, "SELECT version FROM schema_version WHERE name = 'signal'", -1, &st, NULL);
	TEST_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	TEST_EQ_INT(sqlite3_column_int(st, 0), PARLEY_SIGNAL_SQLITE_SCHEMA);
	sqlite3_finalize(st);
	/* a schema from the future is refused, not "migrated" */
	sqlite3_exec(raw, "UPDATE schema_version SET version = 99 WHERE name = 'signal'", NULL, NULL, NULL);
	sqlite3_close(raw);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_E_STORE);
	TEST_CHECK(db == NULL);

	/* an existing world-readable file is tightened */
	fresh_path();
	FILE *f = fopen(path, "w");
	fclose(f);
	chmod(path, 0644);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_OK);
	TEST_EQ_INT(stat(path, &sb), 0);
	TEST_EQ_INT(sb.st_mode & 0777, 0600);
	parley_signal_sqlite_close(db);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, "/nonexistent-dir/x.db"), PARLEY_E_IO);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, NULL), PARLEY_E_INVAL);
}

/* remove_signed_prekey (security item 9): the key is gone, deleting nothing succeeds, others stay */
static void spk_removal(parley_signal_store *s)
{
	parley_signed_prekey spk = {.id = 9, .timestamp_ms = 1}, spk2;
	randombytes_buf(&spk.key, sizeof spk.key);
	TEST_CHECK(s->remove_signed_prekey != NULL);
	TEST_EQ_INT(s->store_signed_prekey(s->user, &spk), PARLEY_OK);
	TEST_EQ_INT(s->load_signed_prekey(s->user, 9, &spk2), PARLEY_OK);
	TEST_EQ_INT(s->remove_signed_prekey(s->user, 9), PARLEY_OK);
	TEST_EQ_INT(s->load_signed_prekey(s->user, 9, &spk2), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(s->remove_signed_prekey(s->user, 9), PARLEY_OK);
}

static void test_callbacks_and_persistence(void)
{
	parley_signal_sqlite *db = NULL;
	parley_signal_store s;
	parley_keypair id, got;
	uint32_t reg = 0, count = 0;
	const parley_signal_address bob = {"bob", 1}, bob2 = {"bob", 2};
	uint8_t k1[33], k2[33], out[33];
	int replaced = -1, trusted = -1;
	const uint8_t *data;
	size_t len;

	fresh_path();
	randombytes_buf(&id, sizeof id);
	randombytes_buf(k1, sizeof k1);
	randombytes_buf(k2, sizeof k2);
	k1[0] = k2[0] = 5;
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_OK);
	parley_signal_sqlite_store(db, &s);
	TEST_EQ_INT(s.get_identity_keypair(s.user, &got), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(parley_signal_sqlite_set_identity(db, &id, 4242), PARLEY_OK);

	/* identities: trust on first use, then only the same key */
	TEST_EQ_INT(s.is_trusted_identity(s.user, &bob, k1, PARLEY_SIGNAL_SENDING, &trusted), PARLEY_OK);
	TEST_EQ_INT(trusted, 1);
	TEST_EQ_INT(s.get_identity(s.user, &bob, out), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(s.save_identity(s.user, &bob, k1, &replaced), PARLEY_OK);
	TEST_EQ_INT(replaced, 0);
	TEST_EQ_INT(s.save_identity(s.user, &bob, k1, &replaced), PARLEY_OK);
	TEST_EQ_INT(replaced, 0);
	TEST_EQ_INT(s.is_trusted_identity(s.user, &bob, k2, PARLEY_SIGNAL_RECEIVING, &trusted), PARLEY_OK);
	TEST_EQ_INT(trusted, 0);
	TEST_EQ_INT(s.is_trusted_identity(s.user, &bob2, k2, PARLEY_SIGNAL_RECEIVING, &trusted), PARLEY_OK);
	TEST_EQ_INT(trusted, 1);

	/* sessions */
	uint8_t rec[300];
	randombytes_buf(rec, sizeof rec);
	TEST_EQ_INT(s.load_session(s.user, &bob, &data, &len), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(s.store_session(s.user, &bob, rec, sizeof rec), PARLEY_OK);
	TEST_EQ_INT(s.store_session(s.user, &bob2, rec, 10), PARLEY_OK);

	/* prekeys */
	parley_prekey pk = {.id = 7}, pk2;
	randombytes_buf(&pk.key, sizeof pk.key);
	TEST_EQ_INT(s.store_prekey(s.user, &pk), PARLEY_OK);
	pk.id = 8;
	TEST_EQ_INT(s.store_prekey(s.user, &pk), PARLEY_OK);
	TEST_EQ_INT(parley_signal_sqlite_prekey_count(db, &count), PARLEY_OK);
	TEST_EQ_INT(count, 2);
	TEST_EQ_INT(s.remove_prekey(s.user, 8), PARLEY_OK);
	TEST_EQ_INT(s.load_prekey(s.user, 8, &pk2), PARLEY_E_NOT_FOUND);

	parley_signed_prekey spk = {.id = 3, .timestamp_ms = 1700000000123ull}, spk2;
	randombytes_buf(&spk.key, sizeof spk.key);
	randombytes_buf(spk.signature, sizeof spk.signature);
	TEST_EQ_INT(s.store_signed_prekey(s.user, &spk), PARLEY_OK);

	uint8_t dist[16] = {1, 2, 3};
	TEST_EQ_INT(s.load_sender_key(s.user, &bob, dist, &data, &len), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(s.store_sender_key(s.user, &bob, dist, rec, 77), PARLEY_OK);
	parley_signal_sqlite_close(db);

	/* everything survives a reopen */
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_OK);
	parley_signal_sqlite_store(db, &s);
	TEST_EQ_INT(s.get_identity_keypair(s.user, &got), PARLEY_OK);
	TEST_EQ_MEM(&got, &id, sizeof id);
	TEST_EQ_INT(s.get_local_registration_id(s.user, &reg), PARLEY_OK);
	TEST_EQ_INT(reg, 4242);
	TEST_EQ_INT(s.get_identity(s.user, &bob, out), PARLEY_OK);
	TEST_EQ_MEM(out, k1, 33);
	TEST_EQ_INT(s.save_identity(s.user, &bob, k2, &replaced), PARLEY_OK);
	TEST_EQ_INT(replaced, 1);
	TEST_EQ_INT(s.get_identity(s.user, &bob, out), PARLEY_OK);
	TEST_EQ_MEM(out, k2, 33);
	TEST_EQ_INT(s.load_session(s.user, &bob, &data, &len), PARLEY_OK);
	TEST_CHECK(len == sizeof rec && memcmp(data, rec, len) == 0);
	TEST_EQ_INT(s.load_session(s.user, &bob2, &data, &len), PARLEY_OK);
	TEST_EQ_INT(len, 10);
	TEST_EQ_INT(s.delete_session(s.user, &bob), PARLEY_OK);
	TEST_EQ_INT(s.delete_session(s.user, &bob), PARLEY_OK);
	TEST_EQ_INT(s.load_session(s.user, &bob, &data, &len), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(s.load_prekey(s.user, 7, &pk2), PARLEY_OK);
	TEST_EQ_INT(pk2.id, 7);
	TEST_EQ_MEM(&pk2.key, &pk.key, sizeof pk.key);
	TEST_EQ_INT(s.load_signed_prekey(s.user, 3, &spk2), PARLEY_OK);
	TEST_EQ_MEM(&spk2.key, &spk.key, sizeof spk.key);
	TEST_EQ_MEM(spk2.signature, spk.signature, 64);
	TEST_EQ_INT(spk2.timestamp_ms, spk.timestamp_ms);
	TEST_EQ_INT(s.load_signed_prekey(s.user, 4, &spk2), PARLEY_E_NOT_FOUND);
	spk_removal(&s);
	TEST_EQ_INT(s.load_signed_prekey(s.user, 3, &spk2), PARLEY_OK);
	TEST_EQ_INT(s.load_sender_key(s.user, &bob, dist, &data, &len), PARLEY_OK);
	TEST_CHECK(len == 77 && memcmp(data, rec, 77) == 0);
	dist[15] = 9;
	TEST_EQ_INT(s.load_sender_key(s.user, &bob, dist, &data, &len), PARLEY_E_NOT_FOUND);

	/* bad addresses are refused before SQL */
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	const parley_signal_address bad = {longname, 1}, null_name = {NULL, 1};
	TEST_EQ_INT(s.store_session(s.user, &bad, rec, 4), PARLEY_E_INVAL);
	TEST_EQ_INT(s.load_session(s.user, &null_name, &data, &len), PARLEY_E_INVAL);
	parley_signal_sqlite_close(db);
	parley_signal_sqlite_close(NULL);
}

static void test_mem_store_spk_removal(void)
{
	parley_keypair ik;
	parley_signal_store s;
	parley_signed_prekey keep = {.id = 3}, out;
	TEST_EQ_INT(parley_signal_keypair_generate(&ik), PARLEY_OK);
	TEST_EQ_INT(parley_signal_mem_store_new(&s, &ik, 1), PARLEY_OK);
	TEST_EQ_INT(s.store_signed_prekey(s.user, &keep), PARLEY_OK);
	spk_removal(&s);
	TEST_EQ_INT(s.load_signed_prekey(s.user, 3, &out), PARLEY_OK);
	parley_signal_mem_store_free(&s);
}

static void test_group_over_sqlite(void)
{
	parley_signal_sqlite *da = NULL, *dbb = NULL;
	parley_signal_store sa, sb;
	char pb[300];
	const parley_signal_address alice = {"alice", 1};
	uint8_t dist[16] = {0xaa}, skdm[PARLEY_GROUP_DISTRIBUTION_MAX], ct[PARLEY_GROUP_CIPHERTEXT_MAX(16)], pt[64];
	size_t n, cl, pl;

	fresh_path();
	snprintf(pb, sizeof pb, "%s.b", path);
	unlink(pb);
	TEST_EQ_INT(parley_signal_sqlite_open(&da, path), PARLEY_OK);
	TEST_EQ_INT(parley_signal_sqlite_open(&dbb, pb), PARLEY_OK);
	parley_signal_sqlite_store(da, &sa);
	parley_signal_sqlite_store(dbb, &sb);
	TEST_EQ_INT(parley_group_create_distribution(&sa, &alice, dist, skdm, sizeof skdm, &n), PARLEY_OK);
	TEST_EQ_INT(parley_group_process_distribution(&sb, &alice, skdm, n, NULL), PARLEY_OK);
	for (int i = 0; i < 5; i++) {
		TEST_EQ_INT(parley_group_encrypt(&sa, &alice, dist, (const uint8_t *)"hello group", 11, ct, sizeof ct,
				    &cl),
			PARLEY_OK);
		TEST_EQ_INT(parley_group_decrypt(&sb, &alice, ct, cl, pt, sizeof pt, &pl), PARLEY_OK);
		TEST_CHECK(pl == 11 && memcmp(pt, "hello group", 11) == 0);
	}
	TEST_EQ_INT(parley_group_decrypt(&sb, &alice, ct, cl, pt, sizeof pt, &pl), PARLEY_E_DUPLICATE_MESSAGE);
	parley_signal_sqlite_close(da);
	parley_signal_sqlite_close(dbb);
	unlink(pb);
	fresh_path();
}

/* signal.db files written before the shared migration helper kept their version in PRAGMA
 * user_version and had no schema_version table: they open unchanged, their data intact. One whose
 * pragma is newer than this library is refused and left byte for byte as it was. */
static void test_legacy_database(void)
{
	parley_signal_sqlite *db = NULL;
	parley_keypair id, got;
	uint32_t reg = 0;
	parley_signal_store s;
	fresh_path();
	randombytes_buf(&id, sizeof id);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_OK);
	TEST_EQ_INT(parley_signal_sqlite_set_identity(db, &id, 77), PARLEY_OK);
	parley_signal_sqlite_close(db);
	/* what the old code left: its tables, user_version = 1, no schema_version */
	TEST_EQ_INT(test_sqlite_exec(path, "DROP TABLE schema_version; PRAGMA user_version = 1"), SQLITE_OK);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'schema_version'"), 0);

	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_OK);
	parley_signal_sqlite_store(db, &s);
	TEST_EQ_INT(s.get_identity_keypair(s.user, &got), PARLEY_OK);
	TEST_EQ_MEM(&got, &id, sizeof id);
	TEST_EQ_INT(s.get_local_registration_id(s.user, &reg), PARLEY_OK);
	TEST_EQ_INT(reg, 77);
	parley_signal_sqlite_close(db);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT version FROM schema_version WHERE name = 'signal'"), PARLEY_SIGNAL_SQLITE_SCHEMA);
	TEST_EQ_INT(test_sqlite_int(path, "PRAGMA user_version"), PARLEY_SIGNAL_SQLITE_SCHEMA);

	/* an old-style file from a newer library */
	TEST_EQ_INT(test_sqlite_exec(path, "DROP TABLE schema_version; PRAGMA user_version = 5"), SQLITE_OK);
	size_t n = 0;
	unsigned char *before = test_file_read(path, &n);
	TEST_EQ_INT(parley_signal_sqlite_open(&db, path), PARLEY_E_STORE);
	TEST_CHECK(db == NULL);
	TEST_CHECK(test_file_unchanged(path, before, n));
	TEST_EQ_INT(test_sqlite_int(path, "PRAGMA user_version"), 5);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'schema_version'"), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	TEST_RUN(test_mode_and_schema);
	TEST_RUN(test_legacy_database);
	TEST_RUN(test_callbacks_and_persistence);
	TEST_RUN(test_group_over_sqlite);
	TEST_RUN(test_mem_store_spk_removal);
	TEST_EXIT();
}
