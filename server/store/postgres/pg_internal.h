/* The PostgreSQL driver's own state, shared by its files (engine.c: connection, durability check,
 * migrations, transactions; stmt.c: the statement cache, ?N -> $N, binding, binary results; schema.c:
 * the DDL of every schema). The domain logic above it (server/store/sql/) sees only sql.h.
 *
 * Everything here runs on the store thread only (open and close excepted, like every backend). */
#ifndef PARLEYD_STORE_PG_INTERNAL_H
#define PARLEYD_STORE_PG_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store/sql/sql.h"

/* ---- The schema contract (schema.c fills it) ----
 * One entry per schema, applied in this order: "server", "server.contacts", "server.entities",
 * "server.threads", "server.auth", "server.auth_jti" (the names of the SQLite side). steps[i] is the
 * DDL that takes the schema from version i to i+1 (one or more statements separated by ';', run in one
 * round trip); a database at version v gets steps[v..n_steps-1]. Steps are append-only: a released
 * step is never edited, a change is a new step. The engine records the version per name in
 * schema_version(name TEXT PRIMARY KEY, version INT NOT NULL), which it creates itself. */
typedef struct pg_schema {
	const char *name;
	const char *const *steps;
	size_t n_steps;
} pg_schema;

extern const pg_schema pg__schemas[];
extern const size_t pg__n_schemas;

/* ---- rewrite.c (pure, unit-tested without a server) ----
 * sql.h's ?N parameters -> PostgreSQL's $N, skipping string literals '...' (with '' inside), quoted
 * identifiers "..." and -- comments. The output has the input's length (?N and $N are as long), so
 * cap >= strlen(in) + 1 always suffices. *n_params: the highest N used (0 if none). PARLEY_E_INVAL
 * for a bare '?' (no number: our SQL always numbers its parameters, and PostgreSQL reads a bare ? as
 * an operator), a number of 0 or above PG_MAX_PARAMS, an unterminated literal, or cap too small. */
#define PG_MAX_PARAMS 65535
int pg__rewrite_params(const char *in, char *out, size_t cap, int *n_params);

/* ---- the connection and its statements (engine.c, stmt.c) ---- */

/* One bound parameter. Integers and doubles go as text (PostgreSQL parses them into whatever type it
 * inferred for the parameter: int4, int8, numeric, float8), text as text, blobs as binary. */
typedef struct pg_param {
	const char *val;   /* NULL: SQL NULL */
	int len;           /* binary (blob) length */
	int fmt;           /* 0 text, 1 binary */
	char *copy;        /* owned copy of a text bound with an explicit length (libpq wants a NUL) */
	char num[32];      /* the text of a bound integer or double */
} pg_param;

typedef struct pg_stmt {
	sql_stmt base;     /* first: the domain files get &base */
	char name[16];     /* the prepared statement's name on the server: "p1", "p2", ... */
	int n_params;
	pg_param *params;  /* n_params entries */
	const char **values;
	int *lengths, *formats;
	PGresult *res;     /* the result of the execution, NULL before the first step */
	int row;           /* the row the columns read; -1 before the first row */
	char text[32];     /* col_text of a numeric column (valid until the next col_text) */
} pg_stmt;

typedef struct pg_be {
	store_be base;       /* first: the domain files get &base */
	PGconn *conn;        /* NULL while down */
	char *url;           /* as configured (may hold a password: never logged) */
	char where[160];     /* postgres://user@host:port/db, for the logs */
	sql_cache stmts;     /* key -> pg_stmt * (prepared in this session) */
	unsigned next_name;  /* suffix of the next prepared statement's name */
	int64_t changes;     /* rows of the last domain statement (PQcmdTuples) */
	char sqlstate[6];    /* of the last failure, "" if none */
	char errmsg[256];    /* of the last failure, for sql__error's log line */
	int down;            /* the session was lost: jobs fail fast until maintain() reconnects */
	/* Savepoint commands owed to the server (engine.c): sent, pipelined, with the job's first
	 * statement (stmt.c), so they cost no round trip of their own; a job that runs no statement
	 * never sends its SAVEPOINT at all. */
	int owe_release;     /* the previous job's savepoint is still open: RELEASE it */
	int owe_savepoint;   /* the current job's SAVEPOINT is not on the server yet */
	int64_t last_fail_ms; /* monotonic time of the last failed connection attempt (backoff) */
	int logged_down;     /* the outage was logged once */
	uint32_t warned_types[8]; /* column types already reported as undecodable (stmt.c) */
} pg_be;

static inline pg_be *pg__be(store_be *b)
{
	return (pg_be *)b;
}

/* stmt.c: sql.h's functions over libpq, and the statement cache (dropped when the session is lost:
 * prepared statements die with it). */
extern const sql_ops pg__sql_ops;
void pg__stmt_cache_free(pg_be *b);
/* engine.c: records a failed result (SQLSTATE, message) and notices a lost connection; returns
 * SQL_CONSTRAINT for an integrity violation (class 23), else SQL_ERROR. */
int pg__failed(pg_be *b, const PGresult *res);
/* engine.c: the backend's open over a given schema list (be_open passes pg__schemas; the unit test a
 * list of its own, e.g. one newer than the database). */
int pg__open_schemas(const store_config *cfg, const pg_schema *schemas, size_t n, store_be **out);
/* engine.c: sends the owed savepoint commands on their own (before a PQprepare, which would abort
 * the transaction outside the job's savepoint if it failed). PARLEY_OK or the failure, recorded. */
int pg__flush_owed(pg_be *b);
/* engine.c: sql.h's error hook: logs, PARLEY_E_STORAGE_FULL for 53100, else PARLEY_E_STORE. */
int pg__error(store_be *b, const char *what);

#endif
