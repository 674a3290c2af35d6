/* The cost of keeping old secrets out of the Signal store's files (security item 9): N session-record
 * writes (INSERT OR REPLACE of a record-sized blob, one autocommit transaction each, as
 * parley_signal_sqlite does) under each journal choice, on a file in DIR. Not a test: numbers for
 * docs/benchmarks.md ("Secret store journal").
 *
 *   journal_bench DIR [N] [RECORD_BYTES]     (defaults 1000, 2500: a session record after some traffic)
 *
 * Modes: WAL as before (old pages stay in -wal until SQLite happens to overwrite them); WAL with
 * wal_checkpoint(TRUNCATE) after every write; rollback journal DELETE and TRUNCATE. All with
 * secure_delete = ON and synchronous = NORMAL (what the store used), the last with FULL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

typedef struct mode {
	const char *name;
	const char *pragmas;
	int checkpoint;
} mode;

static const mode MODES[] = {
	{"WAL (before)", "PRAGMA journal_mode = WAL;", 0},
	{"WAL + checkpoint(TRUNCATE) each write", "PRAGMA journal_mode = WAL;", 1},
	{"rollback journal, DELETE", "PRAGMA journal_mode = DELETE;", 0},
	{"rollback journal, TRUNCATE", "PRAGMA journal_mode = TRUNCATE;", 0},
	{"rollback journal, DELETE, synchronous=FULL", "PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;", 0},
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *dir, const mode *m, long n, size_t rec_len)
{
	char path[4096], side[4200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	unsigned char *rec = malloc(rec_len);
	double t0, dt;
	int rc = 1;

	snprintf(path, sizeof path, "%s/journal_bench.db", dir);
	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-journal", path);
	unlink(side);
	if (rec == NULL || sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, m->pragmas, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db,
			     "CREATE TABLE sessions (name TEXT NOT NULL, device INTEGER NOT NULL, record BLOB NOT NULL,"
			     " PRIMARY KEY (name, device));",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO sessions (name, device, record) VALUES (?, ?, ?)", -1, &st,
			       NULL) != SQLITE_OK)
		goto out;
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		randombytes_buf(rec, rec_len);
		sqlite3_bind_text(st, 1, "peer", -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)(i % 4) + 1); /* a few peers, as a client has */
		sqlite3_bind_blob(st, 3, rec, (int)rec_len, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		sqlite3_reset(st);
		if (m->checkpoint && sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
			goto out;
	}
	dt = now_s() - t0;
	printf("%-44s %6ld  %8.3f s  %8.1f us/write\n", m->name, n, dt, dt * 1e6 / (double)n);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "%s: %s\n", m->name, db != NULL ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(rec);
	unlink(path);
	return rc;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	size_t rec_len = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 2500;

	if (argc < 2 || n <= 0 || rec_len == 0 || sodium_init() < 0) {
		fprintf(stderr, "usage: journal_bench DIR [N] [RECORD_BYTES]\n");
		return 2;
	}
	printf("# %ld session-record writes of %zu bytes in %s; secure_delete=ON, synchronous=NORMAL\n", n, rec_len,
	       argv[1]);
	for (size_t i = 0; i < sizeof MODES / sizeof MODES[0]; i++)
		if (run(argv[1], &MODES[i], n, rec_len) != 0)
			return 1;
	return 0;
}
