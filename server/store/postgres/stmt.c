/* PostgreSQL driver, statements: sql.h's functions over libpq. A statement is prepared once per
 * session under a generated name (its ?N rewritten into $N), bound parameter by parameter, executed
 * at its first step with binary results, and its rows are then walked in memory. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "base/log.h"
#include "common/alloc.h"
#include "store/postgres/pg_internal.h"

#define MODULE "store"

/* the type oids of pg_type.dat (stable across versions: they are part of the wire protocol) */
enum {
	OID_BOOL = 16, OID_BYTEA = 17, OID_NAME = 19, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
	OID_TEXT = 25, OID_OID = 26, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_UNKNOWN = 705,
	OID_BPCHAR = 1042, OID_VARCHAR = 1043,
};


static pg_stmt *ps(sql_stmt *s)
{
	return (pg_stmt *)s;
}

static void clear_bindings(pg_stmt *s)
{
	for (int i = 0; i < s->n_params; i++) {
		parley__free(s->params[i].copy);
		s->params[i].copy = NULL;
		s->params[i].val = NULL;
		s->params[i].len = 0;
		s->params[i].fmt = 0;
	}
}

static void stmt_reset(pg_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
}

static void stmt_free(pg_stmt *s)
{
	if (s == NULL)
		return;
	stmt_reset(s);
	clear_bindings(s);
	parley__free(s->params);
	parley__free(s->values);
	parley__free(s->lengths);
	parley__free(s->formats);
	parley__free(s);
}

static void stmt_free_val(void *val)
{
	stmt_free(val);
}

void pg__stmt_cache_free(pg_be *b)
{
	sql__cache_free(&b->stmts, stmt_free_val);
}

/* Prepares `sql` on the server; NULL (logged) if it cannot. */
static pg_stmt *stmt_prepare(pg_be *b, const char *sql)
{
	size_t len = strlen(sql);
	char *text = parley__malloc(len + 1);
	pg_stmt *s = parley__calloc(1, sizeof(*s));
	int n = 0;
	if (text == NULL || s == NULL)
		goto fail;
	if (pg__rewrite_params(sql, text, len + 1, &n) != PARLEY_OK) {
		log_error(MODULE, "postgres: cannot rewrite the parameters of: %s", sql);
		goto fail;
	}
	s->base.ops = &pg__sql_ops;
	s->base.b = &b->base;
	s->n_params = n;
	s->row = -1;
	snprintf(s->name, sizeof(s->name), "p%u", ++b->next_name);
	if (n > 0) {
		s->params = parley__calloc((size_t)n, sizeof(*s->params));
		s->values = parley__calloc((size_t)n, sizeof(*s->values));
		s->lengths = parley__calloc((size_t)n, sizeof(*s->lengths));
		s->formats = parley__calloc((size_t)n, sizeof(*s->formats));
		if (s->params == NULL || s->values == NULL || s->lengths == NULL || s->formats == NULL)
			goto fail;
	}
	if (b->conn == NULL || b->down) {
		snprintf(b->errmsg, sizeof(b->errmsg), "not connected");
		snprintf(b->sqlstate, sizeof(b->sqlstate), "08003");
		goto fail;
	}
	/* a failing prepare aborts the transaction: the job's savepoint must exist before it */
	if (pg__flush_owed(b) != PARLEY_OK)
		goto fail;
	/* parameter types left to the server's inference (NULL paramTypes) */
	PGresult *r = PQprepare(b->conn, s->name, text, n, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		(void)pg__failed(b, r);
		PQclear(r);
		log_error(MODULE, "postgres: prepare: %s: %s", b->errmsg, sql);
		goto fail;
	}
	PQclear(r);
	parley__free(text);
	return s;
fail:
	parley__free(text);
	stmt_free(s);
	return NULL;
}

static sql_stmt *drv_stmt(store_be *base, const char *key, const char *sql)
{
	pg_be *b = pg__be(base);
	sql_cache_entry *c = sql__cache_find(&b->stmts, key);
	if (c == NULL) {
		log_error(MODULE, "statement cache: out of memory");
		return NULL;
	}
	if (c->key == NULL) {
		pg_stmt *s = stmt_prepare(b, sql);
		if (s == NULL)
			return NULL;
		c->key = key;
		c->val = s;
		sql__cache_added(&b->stmts);
	}
	pg_stmt *s = c->val;
	stmt_reset(s);
	clear_bindings(s);
	return &s->base;
}

/* --- binding (indexes from 1, like SQLite; out of range is ignored, as SQLite answers RANGE) --- */

static pg_param *param(sql_stmt *st, int i)
{
	pg_stmt *s = ps(st);
	if (i < 1 || i > s->n_params)
		return NULL;
	pg_param *p = &s->params[i - 1];
	parley__free(p->copy);
	p->copy = NULL;
	p->fmt = 0;
	p->len = 0;
	return p;
}

static void drv_bind_i64(sql_stmt *st, int i, int64_t v)
{
	pg_param *p = param(st, i);
	if (p == NULL)
		return;
	snprintf(p->num, sizeof(p->num), "%" PRId64, v);
	p->val = p->num;
}

static void drv_bind_double(sql_stmt *st, int i, double v)
{
	pg_param *p = param(st, i);
	if (p == NULL)
		return;
	if (isnan(v))
		snprintf(p->num, sizeof(p->num), "NaN");
	else if (isinf(v))
		snprintf(p->num, sizeof(p->num), v > 0 ? "Infinity" : "-Infinity");
	else
		snprintf(p->num, sizeof(p->num), "%.17g", v);
	p->val = p->num;
}

static void drv_bind_text(sql_stmt *st, int i, const char *v, int len)
{
	pg_param *p = param(st, i);
	if (p == NULL)
		return;
	if (v == NULL || len < 0) {
		p->val = v; /* NUL-terminated, kept alive by the caller until the reset (as with SQLite) */
		return;
	}
	/* a text parameter travels NUL-terminated: copy the bounded one */
	p->copy = parley__malloc((size_t)len + 1);
	if (p->copy == NULL) {
		p->val = NULL; /* the statement then fails on its NOT NULL constraint or matches nothing */
		log_error(MODULE, "postgres: bind: out of memory");
		return;
	}
	memcpy(p->copy, v, (size_t)len);
	p->copy[len] = '\0';
	p->val = p->copy;
}

static void drv_bind_blob(sql_stmt *st, int i, const void *v, size_t len)
{
	pg_param *p = param(st, i);
	if (p == NULL)
		return;
	/* a NULL value pointer is SQL NULL for libpq: an empty blob needs a non-NULL one */
	p->val = v != NULL ? v : "";
	p->len = (int)len;
	p->fmt = 1;
}

static void drv_bind_null(sql_stmt *st, int i)
{
	pg_param *p = param(st, i);
	if (p != NULL)
		p->val = NULL;
}

static int drv_param_count(sql_stmt *st)
{
	return ps(st)->n_params;
}

/* --- execution --- */

/* The result of one pipelined command: its result, then the NULL that ends it. NULL if the
 * connection failed (no result at all). */
static PGresult *pipeline_result(PGconn *c)
{
	PGresult *r = PQgetResult(c);
	if (r != NULL) {
		PGresult *end;
		while ((end = PQgetResult(c)) != NULL) /* only the end marker is expected here */
			PQclear(end);
	}
	return r;
}

/* The owed RELEASE / SAVEPOINT and the statement in one round trip (libpq's pipeline mode; each is
 * an extended-protocol command). The statement's result is returned; if an owed command failed, its
 * failure is returned instead (the statement was skipped: PGRES_PIPELINE_ABORTED). */
static PGresult *exec_pipelined(pg_be *b, pg_stmt *s)
{
	PGconn *c = b->conn;
	const char *owed[2];
	int n = 0, ok;
	if (b->owe_release)
		owed[n++] = "RELEASE SAVEPOINT job";
	if (b->owe_savepoint)
		owed[n++] = "SAVEPOINT job";
	b->owe_release = b->owe_savepoint = 0;
	if (!PQenterPipelineMode(c))
		return NULL;
	ok = 1;
	for (int i = 0; i < n && ok; i++)
		ok = PQsendQueryParams(c, owed[i], 0, NULL, NULL, NULL, NULL, 0);
	ok = ok && PQsendQueryPrepared(c, s->name, s->n_params, s->values, s->lengths, s->formats, 1);
	ok = ok && PQpipelineSync(c);
	PGresult *failed = NULL, *res = NULL;
	for (int i = 0; i < n && ok; i++) {
		PGresult *r = pipeline_result(c);
		if (r == NULL)
			ok = 0;
		else if (PQresultStatus(r) != PGRES_COMMAND_OK && failed == NULL)
			failed = r;
		else
			PQclear(r);
	}
	if (ok && (res = pipeline_result(c)) == NULL)
		ok = 0;
	/* the sync's own result closes the pipeline; a broken connection never sends it */
	for (int nulls = 0; ok && PQstatus(c) == CONNECTION_OK && nulls < 4;) {
		PGresult *r = PQgetResult(c);
		if (r == NULL) {
			nulls++;
			continue;
		}
		int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		if (sync)
			break;
	}
	if (!PQexitPipelineMode(c) && PQstatus(c) == CONNECTION_OK) {
		/* results left over: the session's protocol state is unknown, so it is treated as lost */
		b->down = 1;
		log_error(MODULE, "postgres: pipeline not drained: %s", PQerrorMessage(c));
	}
	if (failed != NULL) {
		PQclear(res);
		return failed;
	}
	return res;
}

static int execute(pg_stmt *s)
{
	pg_be *b = pg__be(s->base.b);
	if (b->conn == NULL || b->down) {
		snprintf(b->errmsg, sizeof(b->errmsg), "not connected");
		snprintf(b->sqlstate, sizeof(b->sqlstate), "08003");
		return SQL_ERROR;
	}
	for (int i = 0; i < s->n_params; i++) {
		s->values[i] = s->params[i].val;
		s->lengths[i] = s->params[i].len;
		s->formats[i] = s->params[i].fmt;
	}
	/* resultFormat 1: binary, so integers and blobs arrive without text conversions */
	if (b->owe_release || b->owe_savepoint)
		s->res = exec_pipelined(b, s);
	else
		s->res = PQexecPrepared(b->conn, s->name, s->n_params, s->values, s->lengths, s->formats, 1);
	ExecStatusType st = PQresultStatus(s->res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		int rc = pg__failed(b, s->res);
		stmt_reset(s);
		return rc;
	}
	/* like sqlite3_changes: rows of the last INSERT, UPDATE or DELETE; a SELECT leaves it alone */
	const char *tag = PQcmdStatus(s->res);
	if (tag[0] == 'I' || tag[0] == 'U' || tag[0] == 'D' || tag[0] == 'M') {
		const char *n = PQcmdTuples(s->res);
		b->changes = n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
	}
	return SQL_OK;
}

static int drv_step(sql_stmt *st)
{
	pg_stmt *s = ps(st);
	if (s->res == NULL) {
		int rc = execute(s);
		if (rc != SQL_OK)
			return rc;
	}
	if (s->row < PQntuples(s->res))
		s->row++;
	return s->row < PQntuples(s->res) ? SQL_ROW : SQL_DONE;
}

/* --- columns: binary values, decoded by type --- */

static int col_null(pg_stmt *s, int c)
{
	return s->res == NULL || s->row < 0 || s->row >= PQntuples(s->res) || c < 0 || c >= PQnfields(s->res) ||
	       PQgetisnull(s->res, s->row, c);
}

static uint64_t be_uint(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Logs each undecodable type once per connection: the SQL must cast it (::bigint, ::text, ...). */
static void unsupported(pg_stmt *s, int c)
{
	pg_be *b = pg__be(s->base.b);
	uint32_t t = (uint32_t)PQftype(s->res, c);
	size_t n = sizeof(b->warned_types) / sizeof(b->warned_types[0]);
	for (size_t i = 0; i < n; i++) {
		if (b->warned_types[i] == t)
			return;
		if (b->warned_types[i] == 0) {
			b->warned_types[i] = t;
			break;
		}
	}
	log_error(MODULE, "postgres: column %d (%s) of type oid %u cannot be read: the SQL must cast it", c,
		  PQfname(s->res, c), t);
}

static int is_text(Oid t)
{
	return t == OID_TEXT || t == OID_VARCHAR || t == OID_NAME || t == OID_BPCHAR || t == OID_UNKNOWN;
}

/* Decodes column c as an integer (*i) or a double (*d): returns SQL_T_INTEGER, SQL_T_FLOAT, or
 * SQL_T_TEXT / SQL_T_BLOB / SQL_T_NULL (then neither is set). */
static int col_number(pg_stmt *s, int c, int64_t *i, double *d)
{
	if (col_null(s, c))
		return SQL_T_NULL;
	const unsigned char *p = (const unsigned char *)PQgetvalue(s->res, s->row, c);
	int len = PQgetlength(s->res, s->row, c);
	Oid t = PQftype(s->res, c);
	switch (t) {
	case OID_BOOL:
		*i = len == 1 && p[0] != 0;
		return SQL_T_INTEGER;
	case OID_INT2:
		*i = len == 2 ? (int16_t)be_uint(p, 2) : 0;
		return SQL_T_INTEGER;
	case OID_INT4:
		*i = len == 4 ? (int32_t)be_uint(p, 4) : 0;
		return SQL_T_INTEGER;
	case OID_OID:
		*i = len == 4 ? (int64_t)be_uint(p, 4) : 0;
		return SQL_T_INTEGER;
	case OID_INT8:
		*i = len == 8 ? (int64_t)be_uint(p, 8) : 0;
		return SQL_T_INTEGER;
	case OID_FLOAT4: {
		uint32_t u = len == 4 ? (uint32_t)be_uint(p, 4) : 0;
		float f;
		memcpy(&f, &u, sizeof(f));
		*d = f;
		return SQL_T_FLOAT;
	}
	case OID_FLOAT8: {
		uint64_t u = len == 8 ? be_uint(p, 8) : 0;
		memcpy(d, &u, sizeof(*d));
		return SQL_T_FLOAT;
	}
	case OID_BYTEA:
		return SQL_T_BLOB;
	default:
		if (is_text(t))
			return SQL_T_TEXT;
		unsupported(s, c);
		return SQL_T_NULL;
	}
}

static int64_t drv_col_i64(sql_stmt *st, int c)
{
	pg_stmt *s = ps(st);
	int64_t i = 0;
	double d = 0;
	switch (col_number(s, c, &i, &d)) {
	case SQL_T_INTEGER:
		return i;
	case SQL_T_FLOAT:
		return (int64_t)d;
	case SQL_T_TEXT:
		return strtoll(PQgetvalue(s->res, s->row, c), NULL, 10); /* SQLite converts text too */
	default:
		return 0;
	}
}

static double drv_col_double(sql_stmt *st, int c)
{
	pg_stmt *s = ps(st);
	int64_t i = 0;
	double d = 0;
	switch (col_number(s, c, &i, &d)) {
	case SQL_T_INTEGER:
		return (double)i;
	case SQL_T_FLOAT:
		return d;
	case SQL_T_TEXT:
		return strtod(PQgetvalue(s->res, s->row, c), NULL);
	default:
		return 0;
	}
}

static const char *drv_col_text(sql_stmt *st, int c)
{
	pg_stmt *s = ps(st);
	int64_t i = 0;
	double d = 0;
	switch (col_number(s, c, &i, &d)) {
	case SQL_T_TEXT:
	case SQL_T_BLOB:
		return PQgetvalue(s->res, s->row, c); /* libpq NUL-terminates binary values too */
	case SQL_T_INTEGER:
		snprintf(s->text, sizeof(s->text), "%" PRId64, i);
		return s->text;
	case SQL_T_FLOAT:
		snprintf(s->text, sizeof(s->text), "%.17g", d);
		return s->text;
	default:
		return NULL;
	}
}

static const void *drv_col_blob(sql_stmt *st, int c)
{
	pg_stmt *s = ps(st);
	if (col_null(s, c) || PQgetlength(s->res, s->row, c) == 0)
		return NULL;
	Oid t = PQftype(s->res, c);
	if (t != OID_BYTEA && !is_text(t)) {
		unsupported(s, c);
		return NULL;
	}
	return PQgetvalue(s->res, s->row, c);
}

static int drv_col_bytes(sql_stmt *st, int c)
{
	pg_stmt *s = ps(st);
	return col_null(s, c) ? 0 : PQgetlength(s->res, s->row, c);
}

static int drv_col_type(sql_stmt *st, int c)
{
	int64_t i = 0;
	double d = 0;
	return col_number(ps(st), c, &i, &d);
}

static void drv_reset(sql_stmt *st)
{
	stmt_reset(ps(st));
}

static int64_t drv_changes(store_be *b)
{
	return pg__be(b)->changes;
}

/* Cold paths only (the relay's insert asks RETURNING id): lastval() is the session's last sequence
 * value, that of the INSERT just run. */
static const char SQL_LASTVAL[] = "SELECT lastval()";

static int64_t drv_last_id(store_be *base)
{
	pg_be *b = pg__be(base);
	int64_t changes = b->changes; /* this query is not the domain's "last statement" */
	sql_stmt *st = drv_stmt(base, SQL_LASTVAL, SQL_LASTVAL);
	int64_t v = 0;
	if (st != NULL) {
		if (drv_step(st) == SQL_ROW)
			v = drv_col_i64(st, 0);
		drv_reset(st);
	}
	b->changes = changes;
	return v;
}

const sql_ops pg__sql_ops = {
	.name = "postgres",
	.stmt = drv_stmt,
	.bind_i64 = drv_bind_i64,
	.bind_double = drv_bind_double,
	.bind_text = drv_bind_text,
	.bind_blob = drv_bind_blob,
	.bind_null = drv_bind_null,
	.param_count = drv_param_count,
	.step = drv_step,
	.col_i64 = drv_col_i64,
	.col_double = drv_col_double,
	.col_text = drv_col_text,
	.col_blob = drv_col_blob,
	.col_bytes = drv_col_bytes,
	.col_type = drv_col_type,
	.reset = drv_reset,
	.changes = drv_changes,
	.last_id = drv_last_id,
	.error = pg__error,
};
