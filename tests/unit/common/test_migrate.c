/* lib/common/migrate: fresh database, order and atomicity of the steps, rollback of a failed step, two
 * schemas in one file, adoption of a legacy PRAGMA user_version, refusal of a newer database (left
 * untouched), and two connections migrating one file at the same time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <parley/error.h>

#include "common/migrate.h"
#include "test.h"
#include "test_sqlite.h"

static char dir[64];
static char path[128];

static void fresh(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
}

static sqlite3 *open_db(void)
{
	sqlite3 *db = NULL;
	TEST_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				    NULL),
		    SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static void exec(sqlite3 *db, const char *sql)
{
	TEST_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* First column of the first row of `sql` as an int; -1 when there is no row. */
static int query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int has_table(sqlite3 *db, const char *name)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
	return query_int(db, sql);
}

static int version_of(sqlite3 *db, const char *name)
{
	int v = -1;
	TEST_EQ_INT(parley__migrate_version(db, name, &v), PARLEY_OK);
	return v;
}

static int commits;

static int count_commit(void *arg)
{
	(void)arg;
	commits++;
	return 0;
}

/* steps that only work in order: each one needs the previous one's table or row */
static const char *const ordered[] = {
	"CREATE TABLE a(x INTEGER)",
	"INSERT INTO a VALUES (1); CREATE TABLE b(y INTEGER)",
	"INSERT INTO b SELECT x + 1 FROM a",
};

static void test_fresh(void)
{
	migrate_schema s = {.name = "t", .steps = ordered, .n_steps = 3};
	migrate_result res;
	fresh("fresh");
	sqlite3 *db = open_db();
	sqlite3_commit_hook(db, count_commit, NULL);
	commits = 0;
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_OK);
	TEST_EQ_INT(res.from, 0);
	TEST_EQ_INT(res.to, 3);
	TEST_EQ_INT(commits, 1); /* every step and the version: one transaction */
	TEST_EQ_INT(query_int(db, "SELECT y FROM b"), 2);
	TEST_EQ_INT(version_of(db, "t"), 3);
	TEST_EQ_INT(query_int(db, "PRAGMA user_version"), 0); /* not a legacy schema: the pragma is not its own */

	/* again: nothing to do, nothing written */
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_OK);
	TEST_EQ_INT(res.from, 3);
	TEST_EQ_INT(res.to, 3);
	TEST_EQ_INT(commits, 1);
	TEST_EQ_INT(query_int(db, "SELECT count(*) FROM b"), 1);
	/* res is optional */
	TEST_EQ_INT(parley__migrate(db, &s, NULL), PARLEY_OK);
	TEST_EQ_INT(version_of(db, "unknown"), 0);
	sqlite3_close(db);
}

static void test_failure_rolls_back(void)
{
	static const char *const bad[] = {"CREATE TABLE a(x)", "CREATE TABLE c(z)", "THIS IS NOT SQL"};
	migrate_schema s = {.name = "t", .steps = bad, .n_steps = 2};
	migrate_result res;
	fresh("failure");
	sqlite3 *db = open_db();

	/* step 2 fails on a fresh file: step 1's table and the version table are gone with it */
	static const char *const dup[] = {"CREATE TABLE a(x)", "CREATE TABLE a(x)"};
	migrate_schema d = {.name = "t", .steps = dup, .n_steps = 2};
	TEST_EQ_INT(parley__migrate(db, &d, &res), PARLEY_E_STORE);
	TEST_CHECK(strstr(res.err, "version 2") != NULL);
	TEST_EQ_INT(has_table(db, "a"), 0);
	TEST_EQ_INT(has_table(db, "schema_version"), 0);
	TEST_EQ_INT(sqlite3_get_autocommit(db), 1); /* no transaction left open */

	/* from version 1, steps 2 (fine) and 3 (fails): the database stays at version 1 without step 2 */
	s.n_steps = 1;
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_OK);
	s.n_steps = 3;
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_E_STORE);
	TEST_EQ_INT(res.from, 1);
	TEST_CHECK(strstr(res.err, "version 3") != NULL);
	TEST_EQ_INT(version_of(db, "t"), 1);
	TEST_EQ_INT(has_table(db, "a"), 1);
	TEST_EQ_INT(has_table(db, "c"), 0);
	TEST_EQ_INT(sqlite3_get_autocommit(db), 1);
	sqlite3_close(db);
}

static void test_two_schemas(void)
{
	static const char *const xs[] = {"CREATE TABLE x1(a)", "CREATE TABLE x2(a)"};
	static const char *const ys[] = {"CREATE TABLE y1(a)", "CREATE TABLE y2(a)"};
	migrate_schema x = {.name = "x", .steps = xs, .n_steps = 2};
	migrate_schema y = {.name = "y", .steps = ys, .n_steps = 1};
	fresh("two");
	sqlite3 *db = open_db();
	TEST_EQ_INT(parley__migrate(db, &x, NULL), PARLEY_OK);
	TEST_EQ_INT(parley__migrate(db, &y, NULL), PARLEY_OK);
	TEST_EQ_INT(version_of(db, "x"), 2);
	TEST_EQ_INT(version_of(db, "y"), 1);
	y.n_steps = 2;
	TEST_EQ_INT(parley__migrate(db, &y, NULL), PARLEY_OK);
	TEST_EQ_INT(version_of(db, "y"), 2);
	TEST_EQ_INT(version_of(db, "x"), 2);
	TEST_EQ_INT(parley__migrate(db, &x, NULL), PARLEY_OK); /* x's steps are not run again */
	TEST_EQ_INT(has_table(db, "y2"), 1);
	TEST_EQ_INT(query_int(db, "PRAGMA user_version"), 0);
	sqlite3_close(db);
}

static const char *const legacy_steps[] = {"CREATE TABLE a(x)", "CREATE TABLE b(y)"};

/* What the code before the helper left: its tables and PRAGMA user_version, no schema_version. */
static sqlite3 *legacy_db(const char *name, int version)
{
	char sql[64];
	fresh(name);
	sqlite3 *db = open_db();
	exec(db, "CREATE TABLE a(x); INSERT INTO a VALUES (7)");
	if (version >= 2)
		exec(db, "CREATE TABLE b(y)");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	exec(db, sql);
	return db;
}

static void test_legacy_adoption(void)
{
	migrate_schema s = {.name = "legacy", .steps = legacy_steps, .n_steps = 2, .legacy_user_version = 1};
	migrate_result res;

	/* at version 1: only step 2 runs (step 1 would fail: its table exists) */
	sqlite3 *db = legacy_db("legacy1", 1);
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_OK);
	TEST_EQ_INT(res.from, 1);
	TEST_EQ_INT(res.to, 2);
	TEST_EQ_INT(version_of(db, "legacy"), 2);
	TEST_EQ_INT(has_table(db, "b"), 1);
	TEST_EQ_INT(query_int(db, "SELECT x FROM a"), 7);
	/* the pragma follows the schema, so a program from before the helper still reads the truth */
	TEST_EQ_INT(query_int(db, "PRAGMA user_version"), 2);
	sqlite3_close(db);

	/* already at the last version: adopted as is, the data untouched */
	db = legacy_db("legacy2", 2);
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_OK);
	TEST_EQ_INT(res.from, 2);
	TEST_EQ_INT(res.to, 2);
	TEST_EQ_INT(version_of(db, "legacy"), 2);
	TEST_EQ_INT(query_int(db, "SELECT x FROM a"), 7);
	/* a new step later: runs once, the pragma follows */
	static const char *const three[] = {"CREATE TABLE a(x)", "CREATE TABLE b(y)", "CREATE TABLE c(z)"};
	migrate_schema s3 = {.name = "legacy", .steps = three, .n_steps = 3, .legacy_user_version = 1};
	TEST_EQ_INT(parley__migrate(db, &s3, &res), PARLEY_OK);
	TEST_EQ_INT(res.from, 2);
	TEST_EQ_INT(query_int(db, "PRAGMA user_version"), 3);
	TEST_EQ_INT(version_of(db, "legacy"), 3);
	sqlite3_close(db);

	/* without the flag the pragma is someone else's: the steps run from 0 (and fail here, untouched) */
	s.legacy_user_version = 0;
	db = legacy_db("legacy3", 1);
	TEST_EQ_INT(parley__migrate(db, &s, &res), PARLEY_E_STORE);
	TEST_EQ_INT(res.from, 0);
	TEST_EQ_INT(has_table(db, "schema_version"), 0);
	TEST_EQ_INT(query_int(db, "PRAGMA user_version"), 1);
	sqlite3_close(db);
}

static void expect_refused(sqlite3 *db, const migrate_schema *s, int found)
{
	migrate_result res;
	size_t n = 0;
	unsigned char *before = test_file_read(path, &n);
	TEST_EQ_INT(parley__migrate(db, s, &res), PARLEY_E_BAD_VERSION);
	TEST_EQ_INT(res.from, found);
	TEST_CHECK(strstr(res.err, "newer") != NULL);
	TEST_CHECK(test_file_unchanged(path, before, n));
	TEST_EQ_INT(sqlite3_get_autocommit(db), 1);
}

static void test_newer_refused(void)
{
	static const char *const four[] = {"CREATE TABLE a(x)", "CREATE TABLE b(x)", "CREATE TABLE c(x)",
					   "CREATE TABLE d(x)"};
	migrate_schema s = {.name = "t", .steps = four, .n_steps = 4};
	fresh("newer");
	sqlite3 *db = open_db();
	TEST_EQ_INT(parley__migrate(db, &s, NULL), PARLEY_OK);
	s.n_steps = 2; /* an older program */
	expect_refused(db, &s, 4);
	TEST_EQ_INT(version_of(db, "t"), 4);
	sqlite3_close(db);

	/* a legacy file from the future: refused before anything (not even schema_version) is created */
	migrate_schema l = {.name = "legacy", .steps = legacy_steps, .n_steps = 2, .legacy_user_version = 1};
	db = legacy_db("newer-legacy", 9);
	expect_refused(db, &l, 9);
	TEST_EQ_INT(has_table(db, "schema_version"), 0);
	TEST_EQ_INT(query_int(db, "PRAGMA user_version"), 9);
	sqlite3_close(db);

	/* a negative pragma (a foreign or damaged file) is refused, never used as a step index */
	db = legacy_db("negative", -1);
	migrate_result res;
	size_t n = 0;
	unsigned char *before = test_file_read(path, &n);
	TEST_EQ_INT(parley__migrate(db, &l, &res), PARLEY_E_STORE);
	TEST_CHECK(strstr(res.err, "invalid version -1") != NULL);
	TEST_CHECK(test_file_unchanged(path, before, n));
	sqlite3_close(db);
}

/* --- two connections --- */

static pthread_barrier_t barrier;

struct racer {
	int rc;
	migrate_result res;
};

static const char *const race_steps[] = {"CREATE TABLE a(x)", "CREATE TABLE b(y)", "INSERT INTO b VALUES (1)"};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	migrate_schema s = {.name = "race", .steps = race_steps, .n_steps = 3};
	sqlite3 *db = NULL;
	r->rc = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		pthread_barrier_wait(&barrier);
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	pthread_barrier_wait(&barrier);
	r->rc = parley__migrate(db, &s, &r->res);
	sqlite3_close(db);
	return NULL;
}

static void race_once(const char *name, int wal)
{
	struct racer r[2];
	pthread_t t[2];
	fresh(name);
	sqlite3 *db = open_db();
	if (wal)
		TEST_EQ_INT(query_int(db, "PRAGMA journal_mode = WAL") != -2, 1);
	exec(db, "CREATE TABLE other(x)"); /* the file exists with some content */
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, racer_main, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	TEST_EQ_INT(r[0].rc, PARLEY_OK);
	TEST_EQ_INT(r[1].rc, PARLEY_OK);
	/* exactly one connection ran the steps; the other found them done under the lock */
	TEST_EQ_INT((r[0].res.from == 0) + (r[1].res.from == 0), 1);
	TEST_EQ_INT(r[0].res.to, 3);
	TEST_EQ_INT(r[1].res.to, 3);
	TEST_EQ_INT(version_of(db, "race"), 3);
	TEST_EQ_INT(query_int(db, "SELECT count(*) FROM b"), 1);
	sqlite3_close(db);
}

static void test_concurrent_open(void)
{
	char name[32];
	pthread_barrier_init(&barrier, NULL, 2);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "race%d", i);
		race_once(name, i % 2);
	}
	pthread_barrier_destroy(&barrier);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/parley-migrate-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	TEST_RUN(test_fresh);
	TEST_RUN(test_failure_rolls_back);
	TEST_RUN(test_two_schemas);
	TEST_RUN(test_legacy_adoption);
	TEST_RUN(test_newer_refused);
	TEST_RUN(test_concurrent_open);
	test_remove_tree(dir);
	TEST_EXIT();
}
