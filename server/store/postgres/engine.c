/* PostgreSQL driver, engine: the connection (conninfo, durability check, reconnection after an
 * outage), versioned migrations, transactions and savepoints, and the backend table. The statements
 * themselves are stmt.c's; the DDL is schema.c's.
 *
 * One connection, owned by the store thread (the store has one thread per process: libpq's
 * synchronous calls then block nobody but it, and the group commit of store.c already amortises each
 * round trip over a whole batch of jobs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/error.h>

#include "base/log.h"
#include "common/alloc.h"
#include "store/postgres/pg_internal.h"

#define MODULE "store"

/* Advisory lock keys (pg_advisory_xact_lock's bigint space is shared by every application of the
 * database: ours spell "parley" in ASCII, with a last byte per use). */
#define LOCK_WRITE "31632475700296961"   /* 0x7061726c657901 */
#define LOCK_MIGRATE "31632475700296962" /* 0x7061726c657902 */

/* At most one connection attempt per RECONNECT_MS while the database is unreachable: a job arriving
 * meanwhile fails at once (PARLEY_E_STORE) instead of holding the store thread in connect(). The first
 * attempt after a session was lost is immediate (a restarted server is usually back already). */
#define RECONNECT_MS 500

/* A node that stops mid-batch (SIGSTOP, a VM paused, a wedged store thread) while its session stays
 * up would hold the cluster-wide write lock (LOCK_WRITE) and stall every node: the server ends such a
 * session after 10 s idle inside a transaction, which releases the lock and rolls its batch
 * back (nothing of it was acknowledged). A live store thread is never idle in a transaction for more
 * than the microseconds between two statements of a batch. A URL's own `options` replace these. */
#define SESSION_OPTIONS "-c idle_in_transaction_session_timeout=10s"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- errors --- */

/* Connection-class failures: the session (and its prepared statements) is gone. 08: connection
 * exception; 57P01..57P03: admin shutdown, crash shutdown, cannot connect now. */
static int sqlstate_lost(const char *st)
{
	return strncmp(st, "08", 2) == 0 || strncmp(st, "57P0", 4) == 0;
}

static void set_message(pg_be *b, const char *msg)
{
	/* first line only: PostgreSQL's DETAIL repeats the row's values (handles, keys), which stay out of
	 * the logs exactly as with SQLite */
	size_t n = 0;
	if (msg == NULL)
		msg = "";
	while (msg[n] != '\0' && msg[n] != '\n' && n + 1 < sizeof(b->errmsg))
		n++;
	memcpy(b->errmsg, msg, n);
	b->errmsg[n] = '\0';
}

int pg__failed(pg_be *b, const PGresult *res)
{
	const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (msg == NULL && b->conn != NULL)
		msg = PQerrorMessage(b->conn);
	set_message(b, msg);
	snprintf(b->sqlstate, sizeof(b->sqlstate), "%s", st != NULL ? st : "08006");
	if (b->conn == NULL || PQstatus(b->conn) != CONNECTION_OK || sqlstate_lost(b->sqlstate)) {
		/* Only marked here: the statement that failed is still in its caller's hands, so the
		 * connection and the statement cache go at the next batch (pg_ready / maintain). */
		if (!b->down)
			log_error(MODULE, "postgres %s: connection lost (%s): jobs fail until it is back", b->where,
				  b->errmsg);
		b->down = 1;
	}
	return strncmp(b->sqlstate, "23", 2) == 0 ? SQL_CONSTRAINT : SQL_ERROR;
}

int pg__error(store_be *base, const char *what)
{
	pg_be *b = pg__be(base);
	if (strcmp(b->sqlstate, "53100") == 0) {
		log_error(MODULE, "postgres %s: %s: disk full", what, b->errmsg);
		return PARLEY_E_STORAGE_FULL;
	}
	log_error(MODULE, "postgres %s: %s [%s]", what, b->errmsg, b->sqlstate);
	return PARLEY_E_STORE;
}

/* Runs one or more statements in one round trip (the simple protocol: no parameters). PARLEY_OK, or
 * the failure recorded and logged. */
static int exec_simple(pg_be *b, const char *sql)
{
	if (b->conn == NULL || b->down) {
		snprintf(b->sqlstate, sizeof(b->sqlstate), "08003");
		set_message(b, "not connected");
		return PARLEY_E_STORE;
	}
	PGresult *r = PQexec(b->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return PARLEY_OK;
	}
	(void)pg__failed(b, r);
	PQclear(r);
	return pg__error(&b->base, sql);
}

/* One text value of a one-row query ("SHOW x"), into out ("" on failure). */
static int query_text(pg_be *b, const char *sql, char *out, size_t cap)
{
	out[0] = '\0';
	PGresult *r = PQexec(b->conn, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		(void)pg__failed(b, r);
		PQclear(r);
		return pg__error(&b->base, sql);
	}
	snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return PARLEY_OK;
}

/* --- durability --- */

/* An acknowledgement promises a commit that survives a power cut, as with SQLite (WAL +
 * synchronous=FULL, sqlite__check_durability): the server must fsync its WAL (fsync=on) and our
 * commits must wait for the flush (synchronous_commit at least "on": remote_write and remote_apply
 * wait for a standby too). The session asks for "on" itself, then reads back what it runs with: a
 * server started with fsync=off cannot be fixed from a session and is refused. */
static int check_durability(pg_be *b)
{
	char fsync[32], sync[32];
	int rc = exec_simple(b, "SET synchronous_commit = on");
	if (rc == PARLEY_OK)
		rc = query_text(b, "SHOW fsync", fsync, sizeof(fsync));
	if (rc == PARLEY_OK)
		rc = query_text(b, "SHOW synchronous_commit", sync, sizeof(sync));
	if (rc != PARLEY_OK)
		return PARLEY_E_STORE;
	if (strcmp(fsync, "on") == 0 &&
	    (strcmp(sync, "on") == 0 || strcmp(sync, "remote_write") == 0 || strcmp(sync, "remote_apply") == 0))
		return PARLEY_OK;
	log_error(MODULE, "postgres %s: runs with fsync=%s synchronous_commit=%s, not on and on: acknowledged"
		  " writes would not survive a power cut; refusing it", b->where, fsync, sync);
	return PARLEY_E_STORE;
}

/* --- the connection --- */

/* "postgres://user@host:port/db" without the password (or anything else of the URL), for the logs. */
void store__pg_describe(const char *url, char *out, size_t cap)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &err);
	const char *user = "", *host = "", *port = "", *db = "";
	if (opts == NULL) {
		PQfreemem(err);
		snprintf(out, cap, "postgres://(unparsable url)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(out, cap, "postgres://%s%s%s%s%s/%s", user, user[0] ? "@" : "", host, port[0] ? ":" : "", port, db);
	PQconninfoFree(opts);
}

/* What the server says outside a statement's result. A FATAL while idle (57P01 at a fast shutdown or
 * a restart, a terminated backend) means the session is ending: mark it down now, so the next batch
 * reconnects instead of failing on a dead socket. Other notices ("already exists, skipping") are
 * noise for an operator: debug level. */
static void on_notice(void *arg, const PGresult *res)
{
	pg_be *b = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
		set_message(b, msg);
		if (!b->down)
			log_error(MODULE, "postgres %s: the server ends the session (%s): reconnecting", b->where,
				  b->errmsg);
		b->down = 1;
		return;
	}
	log_debug(MODULE, "postgres %s: %s: %s", b->where, sev != NULL ? sev : "notice", msg != NULL ? msg : "");
}

/* Connects and checks durability. Our defaults come first and the URL last, so what the URL says
 * (e.g. its own keepalive tuning) wins: libpq keeps the last value of a repeated keyword. */
static int connect_db(pg_be *b)
{
	static const char *const keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
					   "keepalives_interval", "keepalives_count", "application_name",
					   "options", "dbname", NULL};
	const char *vals[] = {"5", "1", "30", "10", "3", "parleyd", SESSION_OPTIONS, b->url, NULL};
	b->conn = PQconnectdbParams(keys, vals, 1);
	if (b->conn == NULL || PQstatus(b->conn) != CONNECTION_OK) {
		b->last_fail_ms = mono_ms();
		set_message(b, b->conn != NULL ? PQerrorMessage(b->conn) : "out of memory");
		if (!b->logged_down)
			log_error(MODULE, "postgres %s: cannot connect: %s", b->where, b->errmsg);
		b->logged_down = 1;
		PQfinish(b->conn);
		b->conn = NULL;
		return PARLEY_E_STORE;
	}
	b->down = 0;
	PQsetNoticeReceiver(b->conn, on_notice, b);
	int rc = check_durability(b);
	if (rc != PARLEY_OK) {
		b->last_fail_ms = mono_ms();
		PQfinish(b->conn);
		b->conn = NULL;
		b->down = 1;
		return rc;
	}
	if (b->logged_down)
		log_info(MODULE, "postgres %s: connected again", b->where);
	b->logged_down = 0;
	return PARLEY_OK;
}

/* Drops a lost session: its prepared statements died with it, so the cache goes too (the next use of
 * each statement prepares it again), and the in-memory share tallies (nothing survives an outage). */
static void disconnect(pg_be *b)
{
	pg__stmt_cache_free(b);
	sql__share_clear(&b->base);
	PQfinish(b->conn);
	b->conn = NULL;
	b->down = 1;
	b->owe_release = b->owe_savepoint = 0;
}

/* Connected? Also reads what the server may have sent meanwhile (one non-blocking read): a server
 * that shut down or restarted closed the session, and noticing it here, before a batch, lets the
 * batch run on a new connection instead of failing on the dead one. */
static int be_ready(store_be *base)
{
	pg_be *b = pg__be(base);
	if (b->conn == NULL || b->down)
		return 0;
	/* PQisBusy parses what arrived: a FATAL sent while idle reaches on_notice, which marks us down */
	int ok = PQconsumeInput(b->conn);
	if (ok)
		(void)PQisBusy(b->conn);
	if (b->down)
		return 0;
	if (!ok || PQstatus(b->conn) != CONNECTION_OK) {
		set_message(b, PQerrorMessage(b->conn));
		log_error(MODULE, "postgres %s: connection lost (%s): reconnecting", b->where, b->errmsg);
		b->down = 1;
		return 0;
	}
	return 1;
}

/* Between batches: a lost connection is dropped and, at most every RECONNECT_MS, made again. */
static void be_maintain(store_be *base, int idle)
{
	pg_be *b = pg__be(base);
	(void)idle;
	if (be_ready(base))
		return;
	if (b->conn != NULL)
		disconnect(b);
	if (b->last_fail_ms != 0 && mono_ms() - b->last_fail_ms < RECONNECT_MS)
		return; /* backoff after a failed attempt; a session just lost is retried at once */
	(void)connect_db(b);
}

/* --- migrations --- */

static const char SQL_VERSION_TABLE[] =
	"CREATE TABLE IF NOT EXISTS schema_version (name TEXT PRIMARY KEY, version INT NOT NULL)";

static int schema_version(pg_be *b, const char *name, long *v)
{
	const char *params[1] = {name};
	PGresult *r = PQexecParams(b->conn, "SELECT version FROM schema_version WHERE name = $1", 1, NULL, params,
				   NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		(void)pg__failed(b, r);
		PQclear(r);
		return pg__error(&b->base, "schema version");
	}
	*v = PQntuples(r) == 1 ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	return PARLEY_OK;
}

static int set_schema_version(pg_be *b, const char *name, size_t v)
{
	char num[24];
	snprintf(num, sizeof(num), "%zu", v);
	const char *params[2] = {name, num};
	PGresult *r = PQexecParams(b->conn, "INSERT INTO schema_version(name, version) VALUES ($1, $2::int)"
				   " ON CONFLICT (name) DO UPDATE SET version = excluded.version", 2, NULL, params,
				   NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		(void)pg__failed(b, r);
		PQclear(r);
		return pg__error(&b->base, "set schema version");
	}
	PQclear(r);
	return PARLEY_OK;
}

static int migrate_one(pg_be *b, const pg_schema *sc)
{
	long v = 0;
	int rc = schema_version(b, sc->name, &v);
	if (rc != PARLEY_OK)
		return rc;
	if (v < 0 || (size_t)v > sc->n_steps) {
		log_error(MODULE, "postgres %s: schema %s at version %ld, written by a newer parleyd (this one knows"
			  " %zu): refusing to open", b->where, sc->name, v, sc->n_steps);
		return PARLEY_E_STORE;
	}
	if ((size_t)v == sc->n_steps)
		return PARLEY_OK;
	for (size_t i = (size_t)v; i < sc->n_steps; i++) {
		rc = exec_simple(b, sc->steps[i]);
		if (rc != PARLEY_OK) {
			log_error(MODULE, "postgres %s: schema %s step %zu failed", b->where, sc->name, i + 1);
			return PARLEY_E_STORE;
		}
	}
	rc = set_schema_version(b, sc->name, sc->n_steps);
	if (rc == PARLEY_OK)
		log_info(MODULE, "postgres %s: %s schema migrated from version %ld to %zu", b->where, sc->name, v,
			 sc->n_steps);
	return rc;
}

/* Every schema's pending steps in ONE transaction, under an advisory lock: several nodes starting at
 * once run the migration one after the other (the later ones find nothing to do), and a failure
 * leaves every schema at its old version. */
static int migrate(pg_be *b, const pg_schema *schemas, size_t n)
{
	int rc = exec_simple(b, "BEGIN; SELECT pg_advisory_xact_lock(" LOCK_MIGRATE ")");
	if (rc == PARLEY_OK)
		rc = exec_simple(b, SQL_VERSION_TABLE);
	for (size_t i = 0; i < n && rc == PARLEY_OK; i++)
		rc = migrate_one(b, &schemas[i]);
	if (rc == PARLEY_OK)
		return exec_simple(b, "COMMIT");
	(void)exec_simple(b, "ROLLBACK");
	return PARLEY_E_STORE;
}

/* --- transactions: one per batch of writes, one savepoint per write job ---
 *
 * BEGIN takes a transaction-scoped advisory lock: write batches of ALL the nodes sharing the database
 * run one at a time, exactly like SQLite's single writer. Two reasons:
 *  - every op's read-then-write logic (queue limits, device lists, entity rules, counters) stays
 *    correct under READ COMMITTED without SERIALIZABLE retries;
 *  - message ids (messages.id, an identity) are assigned AND committed in lock order. Without the lock
 *    node A could take id 10, node B id 11, B commit first and a client fetch `id > after_id` up to 11,
 *    then A commit 10: that client's cursor has passed 10 and the envelope would never be delivered.
 * The ceiling this sets: one write batch at a time cluster-wide, each holding the lock for its
 * statements plus one commit fsync; group commit amortises it over up to store_batch_max jobs.
 * Partitioned locks (per recipient range, with ids handed out per partition) are future work.
 * Reads do not take it: they run in autocommit, after their batch's commit, as with SQLite. */
static const char SQL_BEGIN[] = "BEGIN; SELECT pg_advisory_xact_lock(" LOCK_WRITE ")";

static int be_begin(store_be *base)
{
	pg_be *b = pg__be(base);
	b->owe_release = b->owe_savepoint = 0;
	return exec_simple(b, SQL_BEGIN);
}

static int be_commit(store_be *base)
{
	pg_be *b = pg__be(base);
	b->owe_release = b->owe_savepoint = 0; /* COMMIT releases every savepoint */
	if (b->conn == NULL || b->down)
		return PARLEY_E_STORE;
	PGresult *r = PQexec(b->conn, "COMMIT");
	/* COMMIT of a transaction that an error aborted succeeds with the tag ROLLBACK: that is a failure */
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
	if (!ok) {
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			snprintf(b->sqlstate, sizeof(b->sqlstate), "25P02");
			set_message(b, "the transaction was aborted: COMMIT rolled back");
		} else {
			(void)pg__failed(b, r);
		}
		PQclear(r);
		return pg__error(base, "commit");
	}
	PQclear(r);
	return PARLEY_OK;
}

static int be_rollback(store_be *base)
{
	pg_be *b = pg__be(base);
	b->owe_release = b->owe_savepoint = 0;
	sql__share_clear(base); /* tallies may count rows the rollback removes */
	if (b->conn == NULL || b->down || PQtransactionStatus(b->conn) == PQTRANS_IDLE)
		return PARLEY_OK;
	return exec_simple(b, "ROLLBACK");
}

/* Savepoints cost no round trip of their own: SAVEPOINT (and the RELEASE of the job before) are owed
 * and travel in one pipeline with the job's first statement (stmt.c), or alone before a PQprepare
 * (pg__flush_owed). A job that ran no statement has nothing on the server to release or roll back.
 * A failing RELEASE or SAVEPOINT fails that statement, hence the job, and leaves the transaction
 * aborted without the savepoint to return to: ROLLBACK TO then fails and store.c fails the batch. */
static int be_savepoint(store_be *base)
{
	pg__be(base)->owe_savepoint = 1;
	return PARLEY_OK;
}

int pg__flush_owed(pg_be *b)
{
	const char *sql = b->owe_release ? (b->owe_savepoint ? "RELEASE SAVEPOINT job; SAVEPOINT job"
							       : "RELEASE SAVEPOINT job")
					 : (b->owe_savepoint ? "SAVEPOINT job" : NULL);
	b->owe_release = b->owe_savepoint = 0;
	return sql != NULL ? exec_simple(b, sql) : PARLEY_OK;
}

static int be_release(store_be *base)
{
	pg_be *b = pg__be(base);
	if (b->owe_savepoint)
		b->owe_savepoint = 0; /* never sent: the job ran no statement */
	else
		b->owe_release = 1;
	return PARLEY_OK;
}

static int be_rollback_savepoint(store_be *base)
{
	pg_be *b = pg__be(base);
	sql__share_clear(base);
	if (b->owe_savepoint) {
		b->owe_savepoint = 0; /* never sent: nothing of the job reached the server */
		return PARLEY_OK;
	}
	/* ROLLBACK TO also clears the aborted state a failed statement left (PostgreSQL refuses every
	 * statement of an aborted transaction until then); the savepoint is then released so the next
	 * job starts clean */
	return exec_simple(b, "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job");
}

static int be_space(store_be *base)
{
	(void)base;
	return STORE_SPACE_OK; /* PostgreSQL manages its disk; a 53100 fails the job with STORAGE_FULL */
}

/* --- open, close --- */

static void be_free(pg_be *b)
{
	sql__share_free(&b->base);
	pg__stmt_cache_free(b);
	PQfinish(b->conn);
	parley__free(b->url);
	parley__free(b);
}

int pg__open_schemas(const store_config *cfg, const pg_schema *schemas, size_t n, store_be **out)
{
	pg_be *b = parley__calloc(1, sizeof(*b));
	if (b == NULL)
		return PARLEY_E_NOMEM;
	b->base.ops = &pg__sql_ops;
	b->base.max_devices = cfg->max_devices;
	b->base.share_exact = 1; /* other nodes' commits change the queues: no in-memory tallies */
	size_t len = strlen(cfg->url);
	b->url = parley__malloc(len + 1);
	if (b->url == NULL) {
		parley__free(b);
		return PARLEY_E_NOMEM;
	}
	memcpy(b->url, cfg->url, len + 1);
	store__pg_describe(cfg->url, b->where, sizeof(b->where));
	int rc = connect_db(b);
	if (rc == PARLEY_OK)
		rc = migrate(b, schemas, n);
	if (rc != PARLEY_OK) {
		be_free(b);
		return PARLEY_E_STORE;
	}
	log_info(MODULE, "store %s (group commit up to %u jobs)", b->where, cfg->max_batch);
	*out = &b->base;
	return PARLEY_OK;
}

static int be_open(const store_config *cfg, store_be **out)
{
	return pg__open_schemas(cfg, pg__schemas, pg__n_schemas, out);
}

static void be_close(store_be *base)
{
	be_free(pg__be(base));
}

/* --- the backend --- */

const store_backend_ops store__pg_ops = {
	.name = "postgres",
	.open = be_open,
	.close = be_close,
	.begin = be_begin,
	.commit = be_commit,
	.rollback = be_rollback,
	.savepoint = be_savepoint,
	.release = be_release,
	.rollback_savepoint = be_rollback_savepoint,
	.run = sql__run_table,
	.maintain = be_maintain,
	.space = be_space,
	.ready = be_ready,
};
