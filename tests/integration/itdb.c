/* The server's store as the tests see it, on either backend.
 *
 * PostgreSQL mode (PARLEY_TEST_PG=1, PARLEY_TEST_PG_URL = a superuser URL, see tests/tools/pg.sh):
 * every server a test starts gets a database of its own, created here and passed as --store; it
 * survives restarts of that server and is dropped by srv_cleanup. Otherwise the store is the
 * server's SQLite file, data/parley.db.
 *
 * Tests that read or forge server state (as an operator with database access could) do it through
 * it_db_*: one SQL text for both backends, ?N or ? placeholders (rewritten to $N for PostgreSQL),
 * parameters typed by a format string. */
#include "harness.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* PostgreSQL type oids the results need to tell apart (pg_type.h is server-side only) */
#define OID_BOOL 16
#define OID_BYTEA 17

#define IT_DB_MAX_PARAMS 16

int it_pg(void)
{
	static int mode = -1;
	if (mode < 0) {
		const char *e = getenv("PARLEY_TEST_PG");
		mode = e != NULL && strcmp(e, "1") == 0;
	}
	return mode;
}

void it_pg_skip(const char *what, const char *why)
{
	printf("# skipped on postgres: %s: %s\n", what, why);
	fflush(stdout);
}

static const char *admin_url(void)
{
	const char *url = getenv("PARLEY_TEST_PG_URL");
	if (url == NULL || url[0] == '\0') {
		fprintf(stderr, "Bail out! PARLEY_TEST_PG=1 without PARLEY_TEST_PG_URL (start a cluster with "
				"tests/tools/pg.sh start DIR and export its url, or run make test-pg)\n");
		exit(99);
	}
	return url;
}

/* url with its database (the path) replaced by db; query parameters kept */
static int url_with_db(const char *url, const char *db, char *out, size_t cap)
{
	const char *auth = strstr(url, "://");
	if (auth == NULL)
		return -1;
	auth += 3;
	size_t end = strcspn(auth, "/?"); /* end of user:pw@host:port */
	const char *query = strchr(auth, '?');
	int n = snprintf(out, cap, "%.*s/%s%s", (int)(auth - url + (long)end), url, db, query ? query : "");
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* one statement on the cluster's maintenance database; 0 or -1 with the error in err */
static int admin_exec(const char *sql, char *err, size_t cap)
{
	PGconn *c = PQconnectdb(admin_url());
	int rc = -1;
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, sql);
		rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
		PQclear(r);
	}
	if (rc != 0)
		snprintf(err, cap, "%s", PQerrorMessage(c));
	PQfinish(c);
	return rc;
}

void it_pg_create(srv *s)
{
	static int seq;
	char sql[160], err[512];

	snprintf(s->dbname, sizeof s->dbname, "t_%d_%d", (int)getpid(), seq++);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", s->dbname);
	if (admin_exec(sql, err, sizeof err) != 0 || url_with_db(admin_url(), s->dbname, s->store, sizeof s->store) != 0) {
		fprintf(stderr, "Bail out! %s: %s\n", sql, err);
		exit(99);
	}
}

void it_pg_drop(srv *s)
{
	char sql[160], err[512];
	if (s->dbname[0] == '\0')
		return;
	/* FORCE: a server killed a moment ago may still hold a backend */
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->dbname);
	if (admin_exec(sql, err, sizeof err) != 0)
		fprintf(stderr, "# %s: %s\n", sql, err); /* the cluster is thrown away after the run anyway */
	s->dbname[0] = '\0';
	s->store[0] = '\0';
}

/* one table, COPY ... (FORMAT binary), appended to f; 0 or -1 */
static int copy_table(PGconn *c, const char *table, FILE *f)
{
	char sql[200];
	char *buf;
	int n, rc = 0;

	snprintf(sql, sizeof sql, "COPY \"%s\" TO STDOUT (FORMAT binary)", table);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COPY_OUT;
	PQclear(r);
	if (!ok)
		return -1;
	while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
		if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
			rc = -1;
		PQfreemem(buf);
	}
	r = PQgetResult(c);
	if (n != -1 || PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = -1;
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
	return rc;
}

int it_pg_dump(const srv *s, const char *path)
{
	/* COPY's binary format carries every value as its bytes (a bytea's raw, text as UTF-8), as
	 * SQLite's file does: the scanner's encodings read the same on both. A text dump would not:
	 * pg_dump writes bytea as hex (text in a blob then double-encoded) or escaped (binary keys
	 * turned into octal). */
	PGconn *c = PQconnectdb(s->store);
	FILE *f = fopen(path, "wb");
	int rc = PQstatus(c) == CONNECTION_OK && f != NULL ? 0 : -1;
	PGresult *r = NULL;
	if (rc == 0) {
		r = PQexec(c, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
		rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? 0 : -1;
	}
	for (int i = 0; rc == 0 && i < PQntuples(r); i++)
		rc = copy_table(c, PQgetvalue(r, i, 0), f);
	PQclear(r);
	if (f != NULL && fclose(f) != 0)
		rc = -1;
	if (rc != 0) {
		fprintf(stderr, "# dump of %s failed: %s\n", s->dbname, PQerrorMessage(c));
		unlink(path); /* missing: the scan says so and fails */
	}
	PQfinish(c);
	return rc;
}

/* --- the server's database --- */

struct it_db {
	sqlite3 *lite;
	PGconn *pg;
};

struct it_rows {
	it_db *db;
	sqlite3_stmt *st; /* SQLite: the statement, stepped by it_rows_next */
	PGresult *res;    /* PostgreSQL: the whole result */
	int row, nrows;
	int failed;          /* a step failed (reported and counted) */
	unsigned char *blob; /* the last unescaped bytea, freed on the next access */
};

it_db *it_db_open(const srv *s)
{
	it_db *db = calloc(1, sizeof *db);
	if (db == NULL)
		return NULL;
	if (it_pg()) {
		db->pg = PQconnectdb(s->store);
		if (PQstatus(db->pg) == CONNECTION_OK)
			return db;
		fprintf(stderr, "# cannot connect to %s: %s\n", s->dbname, PQerrorMessage(db->pg));
		PQfinish(db->pg);
	} else {
		char path[512];
		snprintf(path, sizeof path, "%s/data/parley.db", s->dir);
		if (sqlite3_open_v2(path, &db->lite, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
			sqlite3_busy_timeout(db->lite, 5000);
			/* PostgreSQL always enforces foreign keys: the same on both backends */
			sqlite3_exec(db->lite, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
			return db;
		}
		fprintf(stderr, "# cannot open %s: %s\n", path, sqlite3_errmsg(db->lite));
		sqlite3_close(db->lite);
	}
	it_failures++;
	free(db);
	return NULL;
}

void it_db_close(it_db *db)
{
	if (db == NULL)
		return;
	if (db->pg != NULL)
		PQfinish(db->pg);
	sqlite3_close(db->lite);
	free(db);
}

/* ?N -> $N, a bare ? -> $<its rank>; quoted literals left alone */
static int pg_sql(const char *sql, char *out, size_t cap)
{
	size_t o = 0;
	int k = 0, quoted = 0;
	for (const char *p = sql; *p != '\0'; p++) {
		char tmp[16];
		const char *add = tmp;
		if (*p == '\'')
			quoted = !quoted;
		if (*p == '?' && !quoted) {
			if (p[1] >= '0' && p[1] <= '9') {
				tmp[0] = '$';
				tmp[1] = '\0';
			} else {
				snprintf(tmp, sizeof tmp, "$%d", ++k);
			}
		} else {
			tmp[0] = *p;
			tmp[1] = '\0';
		}
		size_t n = strlen(add);
		if (o + n >= cap)
			return -1;
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

typedef struct {
	int n;
	char type[IT_DB_MAX_PARAMS];
	long long i[IT_DB_MAX_PARAMS];
	const char *p[IT_DB_MAX_PARAMS]; /* text or blob */
	int len[IT_DB_MAX_PARAMS];
	char num[IT_DB_MAX_PARAMS][24];
} params;

static int get_params(params *ps, const char *types, va_list ap)
{
	ps->n = 0;
	for (const char *t = types ? types : ""; *t != '\0'; t++) {
		int k = ps->n++;
		if (k >= IT_DB_MAX_PARAMS)
			return -1;
		ps->type[k] = *t;
		switch (*t) {
		case 'i':
			ps->i[k] = va_arg(ap, long long);
			snprintf(ps->num[k], sizeof ps->num[k], "%lld", ps->i[k]);
			ps->p[k] = ps->num[k];
			ps->len[k] = 0;
			break;
		case 't':
			ps->p[k] = va_arg(ap, const char *);
			ps->len[k] = 0;
			break;
		case 'b':
			ps->p[k] = va_arg(ap, const void *);
			ps->len[k] = (int)va_arg(ap, size_t);
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static it_rows *run(it_db *db, const char *sql, const char *types, va_list ap)
{
	params ps;
	it_rows *r;
	if (db == NULL)
		return NULL;
	if (get_params(&ps, types, ap) != 0) {
		fprintf(stderr, "not ok - bad parameter types \"%s\" for %s\n", types, sql);
		it_failures++;
		return NULL;
	}
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->db = db;
	r->row = -1;
	if (db->pg != NULL) {
		char text[4096];
		int fmt[IT_DB_MAX_PARAMS];
		for (int k = 0; k < ps.n; k++)
			fmt[k] = ps.type[k] == 'b'; /* blobs binary (bytea), the rest as text */
		if (pg_sql(sql, text, sizeof text) == 0) {
			r->res = PQexecParams(db->pg, text, ps.n, NULL, ps.p, ps.len, fmt, 0);
			ExecStatusType st = PQresultStatus(r->res);
			if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
				r->nrows = PQntuples(r->res);
				return r;
			}
		}
		fprintf(stderr, "not ok - %s: %s\n", sql, PQerrorMessage(db->pg));
	} else {
		const char *tail = NULL;
		if (sqlite3_prepare_v2(db->lite, sql, -1, &r->st, &tail) == SQLITE_OK && r->st != NULL &&
		    tail[strspn(tail, " \t\n;")] == '\0') {
			for (int k = 0; k < ps.n; k++) {
				if (ps.type[k] == 'i')
					sqlite3_bind_int64(r->st, k + 1, ps.i[k]);
				else if (ps.type[k] == 't')
					sqlite3_bind_text(r->st, k + 1, ps.p[k], -1, SQLITE_TRANSIENT);
				else
					sqlite3_bind_blob(r->st, k + 1, ps.p[k], ps.len[k], SQLITE_TRANSIENT);
			}
			return r;
		}
		/* one statement per call, as PQexecParams wants: the SQLite pass catches a second one too */
		fprintf(stderr, "not ok - %s: %s\n", sql, tail && *tail ? "more than one statement" : sqlite3_errmsg(db->lite));
	}
	it_failures++;
	it_rows_free(r);
	return NULL;
}

it_rows *it_db_query(it_db *db, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	it_rows *r = run(db, sql, types, ap);
	va_end(ap);
	return r;
}

int it_rows_next(it_rows *r)
{
	if (r == NULL)
		return 0;
	free(r->blob);
	r->blob = NULL;
	if (r->res != NULL)
		return ++r->row < r->nrows;
	int rc = sqlite3_step(r->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE) {
		r->failed = 1;
		fprintf(stderr, "not ok - %s: %s\n", sqlite3_sql(r->st), sqlite3_errmsg(r->db->lite));
		it_failures++;
	}
	return 0;
}

int it_rows_null(it_rows *r, int col)
{
	if (r->res != NULL)
		return PQgetisnull(r->res, r->row, col);
	return sqlite3_column_type(r->st, col) == SQLITE_NULL;
}

long long it_rows_int(it_rows *r, int col)
{
	if (r->res != NULL) {
		const char *v = PQgetvalue(r->res, r->row, col);
		if (PQftype(r->res, col) == OID_BOOL)
			return v[0] == 't';
		return strtoll(v, NULL, 10);
	}
	return sqlite3_column_int64(r->st, col);
}

const char *it_rows_text(it_rows *r, int col)
{
	if (r->res != NULL)
		return PQgetvalue(r->res, r->row, col);
	const unsigned char *t = sqlite3_column_text(r->st, col);
	return t != NULL ? (const char *)t : "";
}

const void *it_rows_blob(it_rows *r, int col, size_t *len)
{
	if (r->res != NULL) {
		const char *v = PQgetvalue(r->res, r->row, col);
		if (PQftype(r->res, col) != OID_BYTEA) {
			*len = (size_t)PQgetlength(r->res, r->row, col);
			return v;
		}
		free(r->blob);
		r->blob = PQunescapeBytea((const unsigned char *)v, len);
		return r->blob;
	}
	*len = (size_t)sqlite3_column_bytes(r->st, col);
	return sqlite3_column_blob(r->st, col);
}

long long it_rows_changes(it_rows *r)
{
	if (r->res != NULL) {
		const char *n = PQcmdTuples(r->res);
		return n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
	}
	return sqlite3_changes(r->db->lite);
}

void it_rows_free(it_rows *r)
{
	if (r == NULL)
		return;
	free(r->blob);
	if (r->res != NULL)
		PQclear(r->res);
	sqlite3_finalize(r->st);
	free(r);
}

long long it_db_exec(it_db *db, const char *sql, const char *types, ...)
{
	va_list ap;
	long long n = -1;
	va_start(ap, types);
	it_rows *r = run(db, sql, types, ap);
	va_end(ap);
	if (r != NULL) {
		while (it_rows_next(r))
			;
		n = r->failed ? -1 : it_rows_changes(r);
	}
	it_rows_free(r);
	return n;
}

long long it_db_int(it_db *db, const char *sql, const char *types, ...)
{
	va_list ap;
	long long v = -1;
	va_start(ap, types);
	it_rows *r = run(db, sql, types, ap);
	va_end(ap);
	if (it_rows_next(r) && !it_rows_null(r, 0))
		v = it_rows_int(r, 0);
	if (r != NULL && r->st != NULL)
		while (it_rows_next(r)) /* RETURNING: all rows written */
			;
	it_rows_free(r);
	return v;
}

long long it_db_blob(it_db *db, void *out, size_t cap, const char *sql, const char *types, ...)
{
	va_list ap;
	long long n = -1;
	va_start(ap, types);
	it_rows *r = run(db, sql, types, ap);
	va_end(ap);
	if (it_rows_next(r)) {
		size_t len;
		const void *b = it_rows_blob(r, 0, &len);
		if (len <= cap) {
			if (len > 0)
				memcpy(out, b, len);
			n = (long long)len;
		}
	}
	it_rows_free(r);
	return n;
}

long long it_srv_int(const srv *s, const char *sql)
{
	it_db *db = it_db_open(s);
	long long v = it_db_int(db, sql, NULL);
	it_db_close(db);
	return v;
}

long long it_srv_exec(const srv *s, const char *sql)
{
	it_db *db = it_db_open(s);
	long long n = it_db_exec(db, sql, NULL);
	it_db_close(db);
	return n;
}
