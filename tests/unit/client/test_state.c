/* lib/client local state: directory resolution, modes 0700/0600, key persistence, refusal of state
 * files other users can read, account save/load, and schema migrations of client.db files written by
 * older versions (built here by hand in the old format). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/client.h>
#include <sodium.h>

#include "../test.h"
#include "client/client_internal.h"
#include "client/state.h"
#include "common/alloc.h"
#include "common/migrate.h"

static char root[256];

static void path_join(char *out, size_t n, const char *a, const char *b)
{
	if (snprintf(out, n, "%s/%s", a, b) >= (int)n)
		abort();
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0xffffu;
	return (unsigned)(st.st_mode & 07777);
}

static parley_client *client_at(const char *dir)
{
	parley_client_options o;
	parley_client *c = NULL;
	parley_client_options_init(&o);
	o.state_dir = dir;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	return c;
}

static void test_dir_resolve(void)
{
	char *p = NULL;
	const char *home = getenv("HOME");
	char *saved_home = home ? strdup(home) : NULL;

	TEST_EQ_INT(client__state_dir_resolve("/x/y", &p), PARLEY_OK);
	TEST_EQ_STR(p, "/x/y");
	parley__free(p);

	setenv("XDG_DATA_HOME", "/data", 1);
	TEST_EQ_INT(client__state_dir_resolve(NULL, &p), PARLEY_OK);
	TEST_EQ_STR(p, "/data/parley");
	parley__free(p);

	/* XDG: relative paths are invalid and must be ignored */
	setenv("XDG_DATA_HOME", "relative", 1);
	setenv("HOME", "/home/u", 1);
	TEST_EQ_INT(client__state_dir_resolve(NULL, &p), PARLEY_OK);
	TEST_EQ_STR(p, "/home/u/.local/share/parley");
	parley__free(p);

	unsetenv("XDG_DATA_HOME");
	unsetenv("HOME");
	TEST_EQ_INT(client__state_dir_resolve(NULL, &p), PARLEY_E_CONFIG);
	TEST_CHECK(p == NULL);
	TEST_EQ_INT(client__state_dir_resolve("", &p), PARLEY_E_INVAL);

	if (saved_home != NULL)
		setenv("HOME", saved_home, 1);
	free(saved_home);
}

static void test_modes(void)
{
	char dir[512], db[512];
	uint8_t key[PARLEY_DEVICE_KEY_BYTES];
	parley_client *c;
	mode_t old = umask(0); /* prove the modes do not come from the umask */

	snprintf(dir, sizeof(dir), "%s/modes/a/b", root);
	path_join(db, sizeof(db), dir, CLIENT_DB_NAME);
	c = client_at(dir);
	/* nothing is created before the first need */
	TEST_EQ_INT(mode_of(dir), 0xffffu);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_OK);
	TEST_EQ_INT(mode_of(dir), 0700);
	TEST_EQ_INT(mode_of(db), 0600);
	parley_client_free(c);
	umask(old);
	/* parents created by us are private too */
	snprintf(dir, sizeof(dir), "%s/modes/a", root);
	TEST_EQ_INT(mode_of(dir), 0700);
}

static void test_key_persistence(void)
{
	char dir[512];
	uint8_t k1[PARLEY_DEVICE_KEY_BYTES], k2[PARLEY_DEVICE_KEY_BYTES], k3[PARLEY_DEVICE_KEY_BYTES];
	parley_client *c;

	snprintf(dir, sizeof(dir), "%s/persist", root);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, k1), PARLEY_OK);
	TEST_EQ_INT(parley_device_public_key(c, k2), PARLEY_OK);
	TEST_EQ_MEM(k1, k2, sizeof(k1));
	parley_client_free(c);

	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, k3), PARLEY_OK);
	TEST_EQ_MEM(k1, k3, sizeof(k1));
	parley_client_free(c);

	/* another directory, another key */
	snprintf(dir, sizeof(dir), "%s/persist2", root);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, k3), PARLEY_OK);
	TEST_CHECK(memcmp(k1, k3, sizeof(k1)) != 0);
	parley_client_free(c);
}

static void test_refuse_readable(void)
{
	char dir[512], db[512];
	uint8_t key[PARLEY_DEVICE_KEY_BYTES];
	parley_client *c;

	snprintf(dir, sizeof(dir), "%s/readable", root);
	path_join(db, sizeof(db), dir, CLIENT_DB_NAME);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_OK);
	parley_client_free(c);

	TEST_EQ_INT(chmod(db, 0644), 0);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_E_PERM);
	TEST_CHECK(strstr(parley_client_errmsg(c), "chmod 600") != NULL);
	TEST_CHECK(strstr(parley_client_errmsg(c), db) != NULL);
	TEST_EQ_INT(parley_devices_list(c, &(parley_device_list *){NULL}), PARLEY_E_PERM);
	parley_client_free(c);

	/* group-readable is refused as well (ssh's rule for private keys) */
	TEST_EQ_INT(chmod(db, 0640), 0);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_E_PERM);
	parley_client_free(c);

	/* a WAL file others can read leaks the key just as well */
	TEST_EQ_INT(chmod(db, 0600), 0);
	{
		char wal[512];
		FILE *f;
		path_join(wal, sizeof(wal), dir, CLIENT_DB_NAME "-wal");
		f = fopen(wal, "a");
		TEST_CHECK(f != NULL);
		if (f != NULL)
			fclose(f);
		TEST_EQ_INT(chmod(wal, 0604), 0);
		c = client_at(dir);
		TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_E_PERM);
		parley_client_free(c);
		TEST_EQ_INT(chmod(wal, 0600), 0);
	}

	/* a directory others can write to is refused */
	TEST_EQ_INT(chmod(dir, 0777), 0);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_E_PERM);
	TEST_CHECK(strstr(parley_client_errmsg(c), "chmod 700") != NULL);
	parley_client_free(c);
	TEST_EQ_INT(chmod(dir, 0700), 0);

	/* once fixed, the same key is back */
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_OK);
	parley_client_free(c);
}

static void test_symlink_refused(void)
{
	char dir[512], db[512], target[512];
	uint8_t key[PARLEY_DEVICE_KEY_BYTES];
	parley_client *c;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/symlink", root);
	TEST_EQ_INT(mkdir(dir, 0700), 0);
	path_join(db, sizeof(db), dir, CLIENT_DB_NAME);
	path_join(target, sizeof(target), root, "elsewhere.db");
	f = fopen(target, "w");
	if (f != NULL)
		fclose(f);
	chmod(target, 0600);
	TEST_EQ_INT(symlink(target, db), 0);
	c = client_at(dir);
	TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_E_PERM);
	parley_client_free(c);
}

static void test_account_store(void)
{
	char dir[512], err[256];
	client_state *s = NULL;
	client_account a, b;
	client_key k;

	snprintf(dir, sizeof(dir), "%s/account", root);
	TEST_EQ_INT(client__state_open(dir, &s, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_INT(client__state_account(s, &b, err, sizeof(err)), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(client__state_key(s, 0, &k, err, sizeof(err)), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(client__state_key(s, 1, &k, err, sizeof(err)), PARLEY_OK);

	memset(&a, 0, sizeof(a));
	snprintf(a.handle, sizeof(a.handle), "alice");
	snprintf(a.server_url, sizeof(a.server_url), "ws://127.0.0.1:1/v1/websocket");
	a.account_id = 42;
	a.device_id = 7;
	TEST_EQ_INT(client__state_save_account(s, &a, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_INT(client__state_save_account(s, &a, err, sizeof(err)), PARLEY_E_STATE);
	TEST_EQ_INT(client__state_account(s, &b, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_STR(b.handle, "alice");
	TEST_EQ_STR(b.server_url, a.server_url);
	TEST_EQ_INT(b.account_id, 42);
	TEST_EQ_INT(b.device_id, 7);

	/* a corrupted key (public half not matching the seed) is detected, not used */
	TEST_EQ_INT(sqlite3_exec(client__state_db(s), "UPDATE device_key SET public_key = zeroblob(32)", NULL, NULL,
				 NULL),
		    SQLITE_OK);
	TEST_EQ_INT(client__state_key(s, 1, &k, err, sizeof(err)), PARLEY_E_STORE);
	client__state_close(s);
}

static void test_identity_through_api(void)
{
	char dir[512], err[256], handle[PARLEY_HANDLE_MAX + 1], tiny[3];
	client_state *s = NULL;
	client_account a;
	client_key k;
	uint64_t account_id = 0;
	uint32_t device_id = 0;
	parley_client_options o;
	parley_client *c = NULL;

	snprintf(dir, sizeof(dir), "%s/identity", root);
	TEST_EQ_INT(client__state_open(dir, &s, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_INT(client__state_key(s, 1, &k, err, sizeof(err)), PARLEY_OK);
	memset(&a, 0, sizeof(a));
	snprintf(a.handle, sizeof(a.handle), "bob");
	snprintf(a.server_url, sizeof(a.server_url), "ws://127.0.0.1:9/v1/websocket");
	a.account_id = 5;
	a.device_id = 2;
	TEST_EQ_INT(client__state_save_account(s, &a, err, sizeof(err)), PARLEY_OK);
	client__state_close(s);

	c = client_at(dir);
	TEST_EQ_INT(parley_identity(c, handle, sizeof(handle), &account_id, &device_id), PARLEY_OK);
	TEST_EQ_STR(handle, "bob");
	TEST_EQ_INT(account_id, 5);
	TEST_EQ_INT(device_id, 2);
	TEST_EQ_INT(parley_identity(c, tiny, sizeof(tiny), NULL, NULL), PARLEY_E_TOO_LARGE);
	/* already registered: register and link are refused locally, no connection attempted */
	TEST_EQ_INT(parley_register(c, "bobby", NULL), PARLEY_E_STATE);
	TEST_EQ_INT(parley_link(c, "bobby", 3), PARLEY_E_STATE);
	parley_client_free(c);

	/* an explicit URL overrides the saved one (the server moved) without touching the identity */
	parley_client_options_init(&o);
	o.state_dir = dir;
	o.server_url = "ws://127.0.0.1:10/v1/websocket";
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	TEST_EQ_INT(parley_identity(c, handle, sizeof(handle), NULL, NULL), PARLEY_OK);
	TEST_EQ_STR(client__server_url(c), "ws://127.0.0.1:10/v1/websocket");
	parley_client_free(c);
}

/* client.db as parley wrote it before the shared migration helper: PRAGMA user_version = 1 for the
 * device key and account tables; the e2e tables created outside any versioning, on first use. */
static const char old_schema_v1[] =
	"CREATE TABLE device_key (id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  seed BLOB NOT NULL CHECK (length(seed) = 32),"
	"  public_key BLOB NOT NULL CHECK (length(public_key) = 32), created_ms INTEGER NOT NULL);"
	"CREATE TABLE account (id INTEGER PRIMARY KEY CHECK (id = 1), handle TEXT NOT NULL,"
	"  account_id INTEGER NOT NULL, device_id INTEGER NOT NULL, server_url TEXT NOT NULL,"
	"  saved_ms INTEGER NOT NULL);"
	"PRAGMA user_version = 1;";
static const char old_e2e_tables[] =
	"CREATE TABLE e2e_meta (id INTEGER PRIMARY KEY CHECK (id = 1), next_prekey_id INTEGER NOT NULL,"
	"  spk_id INTEGER NOT NULL, spk_created_ms INTEGER NOT NULL);"
	"CREATE TABLE peer_devices (handle TEXT NOT NULL, device_id INTEGER NOT NULL,"
	"  registration_id INTEGER NOT NULL, PRIMARY KEY (handle, device_id));"
	"CREATE TABLE pending_identity (handle TEXT NOT NULL, device_id INTEGER NOT NULL, key BLOB NOT NULL,"
	"  seen_ms INTEGER NOT NULL, PRIMARY KEY (handle, device_id));"
	"CREATE TABLE received_ids (server_id INTEGER PRIMARY KEY, seen_ms INTEGER NOT NULL);"
	"INSERT INTO peer_devices VALUES ('bob', 3, 4242);"
	"INSERT INTO pending_identity VALUES ('dave', 2, x'05" "4242424242424242424242424242424242424242424242424242424242424242', 1700000000000);"
	"INSERT INTO received_ids VALUES (77, 1700000000000);";

/* Writes an old-format client.db in a new private directory: key from seed 0x11.., account carol. */
static void make_old_db(const char *dir, int with_e2e, uint8_t pk[32])
{
	char path[512];
	uint8_t seed[32], sk[64];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	TEST_EQ_INT(mkdir(dir, 0700), 0);
	path_join(path, sizeof(path), dir, CLIENT_DB_NAME);
	memset(seed, 0x11, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	TEST_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	TEST_EQ_INT(sqlite3_exec(db, old_schema_v1, NULL, NULL, NULL), SQLITE_OK);
	if (with_e2e)
		TEST_EQ_INT(sqlite3_exec(db, old_e2e_tables, NULL, NULL, NULL), SQLITE_OK);
	TEST_EQ_INT(sqlite3_prepare_v2(db, "INSERT INTO device_key VALUES (1, ?, ?, 1)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, seed, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, pk, 32, SQLITE_STATIC);
	TEST_EQ_INT(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	TEST_EQ_INT(sqlite3_exec(db, "INSERT INTO account VALUES (1, 'carol', 9, 2, 'ws://127.0.0.1:9/v1/websocket', 1)",
				 NULL, NULL, NULL),
		    SQLITE_OK);
	sqlite3_close(db);
	TEST_EQ_INT(chmod(path, 0600), 0);
}

static int count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_migrate_old_db(void)
{
	char dir[512], err[256], handle[PARLEY_HANDLE_MAX + 1];
	uint8_t pk[32], key[PARLEY_DEVICE_KEY_BYTES];
	client_state *s = NULL;
	parley_client *c;
	uint32_t device = 0;
	int v = -1, with_e2e;

	for (with_e2e = 0; with_e2e < 2; with_e2e++) {
		snprintf(dir, sizeof(dir), "%s/old-v1-%d", root, with_e2e);
		make_old_db(dir, with_e2e, pk);

		/* through the public API: the same key and account as before the upgrade */
		c = client_at(dir);
		TEST_EQ_INT(parley_identity(c, handle, sizeof(handle), NULL, &device), PARLEY_OK);
		TEST_EQ_STR(handle, "carol");
		TEST_EQ_INT(device, 2);
		TEST_EQ_INT(parley_device_public_key(c, key), PARLEY_OK);
		TEST_EQ_MEM(key, pk, sizeof(pk));
		parley_client_free(c);

		/* the file is at the current version of schema "client", with every table */
		TEST_EQ_INT(client__state_open(dir, &s, err, sizeof(err)), PARLEY_OK);
		TEST_EQ_INT(parley__migrate_version(client__state_db(s), "client", &v), PARLEY_OK);
		TEST_EQ_INT(v, 5);
		/* step 5 (threads): a quarantined group message keeps its thread */
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM pragma_table_info('quarantine') WHERE "
							    "name = 'thread_id'"),
			    1);
		/* step 4 (signed device lists): device 2 did not register the account */
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM account WHERE registered = 0"), 1);
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
							    "name IN ('account_key', 'peer_lists')"),
			    2);
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
							    "name IN ('e2e_meta', 'peer_devices', 'pending_keys',"
							    " 'received_ids', 'quarantine', 'quarantine_meta')"),
			    6);
		/* step 3 replaced pending_identity (one key per device) by pending_keys, keeping its rows */
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM sqlite_master WHERE name = 'pending_identity'"),
			    0);
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM pending_keys WHERE handle = 'dave'"
							    " AND device_id = 2 AND length(key) = 33"),
			    with_e2e ? 1 : 0);
		/* rows the old code had written to the e2e tables are kept */
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM peer_devices WHERE registration_id = 4242"),
			    with_e2e ? 1 : 0);
		TEST_EQ_INT(count_rows(client__state_db(s), "SELECT count(*) FROM received_ids"), with_e2e ? 1 : 0);
		client__state_close(s);
	}

	/* a file from a newer parley is refused, untouched, with a message that says so */
	snprintf(dir, sizeof(dir), "%s/old-v1-0", root);
	TEST_EQ_INT(client__state_open(dir, &s, err, sizeof(err)), PARLEY_OK);
	TEST_EQ_INT(sqlite3_exec(client__state_db(s), "UPDATE schema_version SET version = 99 WHERE name = 'client'", NULL,
				 NULL, NULL),
		    SQLITE_OK);
	client__state_close(s);
	s = NULL;
	TEST_EQ_INT(client__state_open(dir, &s, err, sizeof(err)), PARLEY_E_STORE);
	TEST_CHECK(s == NULL);
	TEST_CHECK(strstr(err, "newer parley") != NULL);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/parley-client-test-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	TEST_RUN(test_dir_resolve);
	TEST_RUN(test_modes);
	TEST_RUN(test_key_persistence);
	TEST_RUN(test_refuse_readable);
	TEST_RUN(test_symlink_refused);
	TEST_RUN(test_account_store);
	TEST_RUN(test_identity_through_api);
	TEST_RUN(test_migrate_old_db);
	test_remove_tree(root);
	TEST_EXIT();
}
