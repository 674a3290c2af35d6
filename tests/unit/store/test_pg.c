/* server/store/postgres: the PostgreSQL driver against a live server of its own (tests/tools/pg.sh:
 * initdb + pg_ctl on 127.0.0.1, a free port, a temporary directory, a password in the URL). Skipped
 * (77) without PostgreSQL.
 * Covers: open + migrations twice, a schema newer than the code refused, a server without fsync
 * refused, an op round trip, a batch with one constraint failure among commits (and the write lock
 * that serialises batches across nodes), and an outage (server stopped, restarted) under a running
 * store. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <parley/error.h>

#include "store/backend.h"
#include "store/job.h"
#include "store/postgres/pg_internal.h"
#include "store/store.h"
#include "test.h"

#ifndef PG_SH
#error "PG_SH: the path of tests/tools/pg.sh (meson passes it)"
#endif

static char url[256];
static char pg_dir[96]; /* the server's directory (pg.sh) */

/* Runs pg.sh `cmd` on pg_dir; its exit status (77: no PostgreSQL). start: the URL into url. */
static int pg_tool(const char *cmd)
{
	char line[512];
	snprintf(line, sizeof(line), "'%s' %s '%s'", PG_SH, cmd, pg_dir);
	FILE *p = popen(line, "r");
	if (p == NULL)
		return 1;
	char out[256] = "";
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	int st = pclose(p);
	if (strcmp(cmd, "start") == 0) {
		out[strcspn(out, "\n")] = '\0';
		snprintf(url, sizeof(url), "%s", out);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* An administrator's connection beside the store's. */
static PGconn *admin(void)
{
	PGconn *c = PQconnectdb(url);
	TEST_CHECK(PQstatus(c) == CONNECTION_OK);
	return c;
}

static long admin_int(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, "# %s: %s\n", sql, PQresultErrorMessage(r));
	PQclear(r);
	return v;
}

static void admin_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "# %s: %s\n", sql, PQresultErrorMessage(r));
	TEST_CHECK(ok);
	PQclear(r);
}

static int open_store(store **s)
{
	store_config cfg = {.url = url};
	return store__open(&cfg, s);
}

static void key_for(uint8_t key[32], unsigned n)
{
	memset(key, 0, 32);
	memcpy(key, &n, sizeof(n));
	key[31] = 0x5a;
}

static store_job *create_job(const char *handle, unsigned keyn)
{
	store_job *j = store__job_new(STORE_OP_CREATE_ACCOUNT);
	store__job_set_handle(j, handle);
	store__job_set_device_name(j, "first");
	key_for(j->acct.key, keyn);
	j->now_ms = 1000;
	return j;
}

static int sync_create(store *s, const char *handle, unsigned keyn, uint64_t *account)
{
	store_job *j = create_job(handle, keyn);
	int rc = store__run_sync(s, j);
	if (rc == PARLEY_OK && account != NULL)
		*account = j->account_id;
	store__job_free(j);
	return rc;
}

static int sync_get(store *s, const char *handle, uint64_t *account)
{
	store_job *j = store__job_new(STORE_OP_GET_ACCOUNT);
	store__job_set_handle(j, handle);
	int rc = store__run_sync(s, j);
	if (rc == PARLEY_OK && account != NULL)
		*account = j->account_id;
	store__job_free(j);
	return rc;
}

static void test_describe(void)
{
	char w[128];
	store__pg_describe("postgres://alice:s3cret@db.example:6432/parley?sslmode=require", w, sizeof(w));
	TEST_EQ_STR(w, "postgres://alice@db.example:6432/parley");
	TEST_CHECK(strstr(w, "s3cret") == NULL);
	store__pg_describe("postgresql://u:pw@h/d", w, sizeof(w));
	TEST_CHECK(strstr(w, "pw") == NULL);
	/* an unknown scheme is a configuration error, never a silent SQLite fallback */
	store_config cfg = {.url = "mysql://x/y", .path = "/tmp/never"};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_E_CONFIG);
}

/* open twice: the second finds every schema at its version and applies nothing */
static void test_open_twice(void)
{
	store *s = NULL;
	TEST_EQ_INT(open_store(&s), PARLEY_OK);
	TEST_EQ_INT(store__ready(s), 1);
	store__close(s);
	PGconn *c = admin();
	TEST_EQ_INT(admin_int(c, "SELECT count(*) FROM schema_version"), (long)pg__n_schemas);
	for (size_t i = 0; i < pg__n_schemas; i++) {
		char q[160];
		snprintf(q, sizeof(q), "SELECT version FROM schema_version WHERE name = '%s'", pg__schemas[i].name);
		TEST_EQ_INT(admin_int(c, q), (long)pg__schemas[i].n_steps);
	}
	s = NULL;
	TEST_EQ_INT(open_store(&s), PARLEY_OK);
	store__close(s);
	TEST_EQ_INT(admin_int(c, "SELECT count(*) FROM schema_version"), (long)pg__n_schemas);
	PQfinish(c);
}

/* a database whose schema is newer than this code is refused, and left as it was */
static void test_newer_refused(void)
{
	PGconn *c = admin();
	admin_exec(c, "UPDATE schema_version SET version = version + 1 WHERE name = 'server.threads'");
	long v = admin_int(c, "SELECT version FROM schema_version WHERE name = 'server.threads'");
	store *s = NULL;
	TEST_EQ_INT(open_store(&s), PARLEY_E_STORE);
	TEST_CHECK(s == NULL);
	TEST_EQ_INT(admin_int(c, "SELECT version FROM schema_version WHERE name = 'server.threads'"), v);
	admin_exec(c, "UPDATE schema_version SET version = version - 1 WHERE name = 'server.threads'");
	/* a step that fails rolls the whole migration back: the other schemas keep their versions too */
	static const char *const ok_steps[] = {"CREATE TABLE pg_test_ok (x BIGINT)"};
	static const char *const bad_steps[] = {"SELECT 1", "THIS IS NOT SQL"};
	const pg_schema bad[] = {{"server.test_ok", ok_steps, 1}, {"server.test_bad", bad_steps, 2}};
	store_config cfg = {.url = url, .max_devices = 4};
	store_be *be = NULL;
	TEST_EQ_INT(pg__open_schemas(&cfg, bad, 2, &be), PARLEY_E_STORE);
	TEST_EQ_INT(admin_int(c, "SELECT count(*) FROM schema_version WHERE name LIKE 'server.test%'"), 0);
	TEST_EQ_INT(admin_int(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'pg_test_ok'"), 0);
	PQfinish(c);
}

static void test_round_trip(void)
{
	store *s = NULL;
	uint64_t id = 0, got = 0;
	TEST_EQ_INT(open_store(&s), PARLEY_OK);
	TEST_EQ_INT(sync_create(s, "alice", 1, &id), PARLEY_OK);
	TEST_CHECK(id > 0);
	TEST_EQ_INT(sync_get(s, "alice", &got), PARLEY_OK);
	TEST_EQ_INT(got, id);
	TEST_EQ_INT(sync_get(s, "nobody", NULL), PARLEY_E_NO_SUCH_ACCOUNT);
	/* the device's key came back byte for byte (a blob bound binary, read binary) */
	store_job *j = store__job_new(STORE_OP_LIST_DEVICES);
	j->account_id = id;
	TEST_EQ_INT(store__run_sync(s, j), PARLEY_OK);
	uint8_t key[32];
	key_for(key, 1);
	TEST_EQ_INT(j->acct.n_devices, 1);
	if (j->acct.n_devices == 1) {
		TEST_EQ_MEM(j->acct.devices[0].key, key, 32);
		TEST_EQ_STR(j->acct.devices[0].name, "first");
	}
	store__job_free(j);
	store__close(s);
}

/* --- a batch with one failing job --- */

struct done {
	int n;
	int status[4];
};

static void on_done(void *arg, int status, const void *j)
{
	struct done *d = arg;
	(void)j;
	if (d->n < 4)
		d->status[d->n] = status;
	d->n++;
}

static void no_wake(void *arg)
{
	(void)arg; /* the test polls store__client_run */
}

/* Holds the cluster-wide write lock from another connection: the store's first batch waits for it
 * (that proves begin() takes the lock), and the jobs submitted meanwhile form the next batch. The
 * duplicate handle fails alone (its savepoint rolled back), the others commit. */
static void test_batch_constraint(void)
{
	store *s = NULL;
	store_client *c = NULL;
	struct done d = {0};
	TEST_EQ_INT(open_store(&s), PARLEY_OK);
	TEST_EQ_INT(store__client_new(s, no_wake, NULL, &c), PARLEY_OK);
	PGconn *a = admin();
	admin_exec(a, "BEGIN; SELECT pg_advisory_xact_lock(31632475700296961)");
	store_stats before;
	store__stats(s, &before);
	TEST_EQ_INT(store__submit(c, create_job("first", 11), on_done, &d), PARLEY_OK);
	sleep_ms(300);
	store__client_run(c);
	TEST_EQ_INT(d.n, 0); /* still waiting for the lock */
	TEST_EQ_INT(store__submit(c, create_job("second", 12), on_done, &d), PARLEY_OK);
	TEST_EQ_INT(store__submit(c, create_job("alice", 13), on_done, &d), PARLEY_OK); /* taken */
	TEST_EQ_INT(store__submit(c, create_job("third", 14), on_done, &d), PARLEY_OK);
	admin_exec(a, "COMMIT");
	for (int i = 0; i < 200 && d.n < 4; i++) {
		sleep_ms(20);
		store__client_run(c);
	}
	TEST_EQ_INT(d.n, 4);
	TEST_EQ_INT(d.status[0], PARLEY_OK);
	TEST_EQ_INT(d.status[1], PARLEY_OK);
	TEST_EQ_INT(d.status[2], PARLEY_E_HANDLE_TAKEN);
	TEST_EQ_INT(d.status[3], PARLEY_OK);
	store_stats after;
	store__stats(s, &after);
	TEST_EQ_INT(after.commits - before.commits, 2); /* one batch waited, the next held three jobs */
	TEST_EQ_INT(admin_int(a, "SELECT count(*) FROM accounts WHERE handle IN ('first', 'second', 'third')"), 3);
	TEST_EQ_INT(admin_int(a, "SELECT count(*) FROM devices d JOIN accounts a ON a.id = d.account_id"
				 " WHERE a.handle = 'alice'"), 1);
	PQfinish(a);
	store__client_close(c);
	store__close(s);
}

/* --- outages --- */

static int wait_ready(store *s, int want, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (store__ready(s) == want)
			return 1;
		sleep_ms(50);
	}
	return store__ready(s) == want;
}

static void test_outage(void)
{
	store *s = NULL;
	uint64_t id = 0, got = 0;
	TEST_EQ_INT(open_store(&s), PARLEY_OK);
	TEST_EQ_INT(sync_get(s, "alice", &id), PARLEY_OK);
	/* down (the server killed, as by a power cut): jobs fail at once with STORE, readiness drops */
	TEST_EQ_INT(pg_tool("kill"), 0);
	TEST_EQ_INT(sync_get(s, "alice", NULL), PARLEY_E_STORE);
	TEST_EQ_INT(sync_create(s, "during", 21, NULL), PARLEY_E_STORE);
	TEST_CHECK(wait_ready(s, 0, 1000));
	/* back: readiness returns without traffic (maintain), and the statements are prepared again */
	TEST_EQ_INT(pg_tool("restart"), 0); /* crash recovery */
	TEST_CHECK(wait_ready(s, 1, 5000));
	TEST_EQ_INT(sync_get(s, "alice", &got), PARLEY_OK);
	TEST_EQ_INT(got, id);
	TEST_EQ_INT(sync_create(s, "after", 22, NULL), PARLEY_OK);
	/* pg_ctl restart -m fast under the running store: the session's end is noticed before the next
	 * batch, which runs on a new connection */
	TEST_EQ_INT(pg_tool("restart"), 0);
	TEST_EQ_INT(sync_get(s, "after", NULL), PARLEY_OK);
	TEST_EQ_INT(sync_create(s, "after2", 23, NULL), PARLEY_OK);
	TEST_EQ_INT(store__ready(s), 1);
	/* nothing acknowledged was lost, nothing failed was written */
	PGconn *a = admin();
	TEST_EQ_INT(admin_int(a, "SELECT count(*) FROM accounts WHERE handle IN ('after', 'after2')"), 2);
	TEST_EQ_INT(admin_int(a, "SELECT count(*) FROM accounts WHERE handle = 'during'"), 0);
	PQfinish(a);
	store__close(s);
}

/* A server that does not fsync cannot keep the acknowledgement promise: refused. fsync is reloadable
 * (sighup), so the same server serves: off, refused; back on, accepted. */
static void test_fsync_off_refused(void)
{
	PGconn *a = admin();
	store *s = NULL;
	admin_exec(a, "ALTER SYSTEM SET fsync = off");
	admin_exec(a, "SELECT pg_reload_conf()");
	sleep_ms(300); /* the postmaster signals the reload to the backends */
	TEST_EQ_INT(open_store(&s), PARLEY_E_STORE);
	TEST_CHECK(s == NULL);
	admin_exec(a, "ALTER SYSTEM RESET fsync");
	admin_exec(a, "SELECT pg_reload_conf()");
	sleep_ms(300);
	TEST_EQ_INT(open_store(&s), PARLEY_OK);
	store__close(s);
	PQfinish(a);
}

int main(void)
{
	snprintf(pg_dir, sizeof(pg_dir), "/tmp/parley-pgtest-%ld", (long)getpid());
	int rc = pg_tool("start");
	if (rc == 77) {
		printf("# no PostgreSQL: skipped\n");
		return 77;
	}
	if (rc != 0 || url[0] == '\0') {
		fprintf(stderr, "# cannot start PostgreSQL (%d)\n", rc);
		return 99;
	}
	TEST_RUN(test_describe);
	TEST_RUN(test_open_twice);
	TEST_RUN(test_newer_refused);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_batch_constraint);
	TEST_RUN(test_outage);
	TEST_RUN(test_fsync_off_refused);
	pg_tool("stop");
	TEST_EXIT();
}
