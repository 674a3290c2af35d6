/* The gateway's SQLite state (store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store.h"

struct gw_store {
	sqlite3 *db;
};

enum { IN_PENDING = 0, IN_SENT = 1, IN_FAILED = 2 };
enum { OUT_QUEUED = 0, OUT_SENT = 1, OUT_DEAD = 2 };

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS inbound(rowid INTEGER PRIMARY KEY, channel INTEGER NOT NULL,"
	" msg_id TEXT NOT NULL, user TEXT NOT NULL, text BLOB NOT NULL, state INTEGER NOT NULL,"
	" thread_id INTEGER, error INTEGER, created_ms INTEGER NOT NULL, UNIQUE(channel, msg_id));"
	"CREATE INDEX IF NOT EXISTS inbound_state ON inbound(state, rowid);"
	"CREATE TABLE IF NOT EXISTS threads(thread_id INTEGER PRIMARY KEY, channel INTEGER NOT NULL,"
	" user TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS otp(request_id INTEGER PRIMARY KEY, channel INTEGER NOT NULL, user TEXT NOT NULL,"
	" expires_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY, dedupe TEXT NOT NULL UNIQUE,"
	" channel INTEGER NOT NULL, user TEXT NOT NULL, kind INTEGER NOT NULL, text TEXT, url TEXT, otp TEXT,"
	" entity TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, state INTEGER NOT NULL,"
	" why TEXT, created_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_ms);";

uint64_t store__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int store__open(const char *path, gw_store **out)
{
	gw_store *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return PARLEY_E_NOMEM;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_busy_timeout(s->db, 10000) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		store__close(s);
		return PARLEY_E_STORE;
	}
	*out = s;
	return PARLEY_OK;
}

void store__close(gw_store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s);
}

static sqlite3_stmt *prep(gw_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

/* Runs a statement that returns nothing; PARLEY_OK, PARLEY_E_EXISTS on a UNIQUE violation. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int ext = sqlite3_extended_errcode(sqlite3_db_handle(st));
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return PARLEY_OK;
	return ext == SQLITE_CONSTRAINT_UNIQUE ? PARLEY_E_EXISTS : PARLEY_E_STORE;
}

static unsigned count(gw_store *s, const char *sql)
{
	sqlite3_stmt *st = prep(s, sql);
	unsigned n = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW)
		n = (unsigned)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

unsigned store__inbound_pending(gw_store *s)
{
	return count(s, "SELECT count(*) FROM inbound WHERE state = 0");
}

int store__inbound_add(gw_store *s, int channel, const gw_inbound *in, unsigned queue_max)
{
	sqlite3_stmt *st = prep(s, "SELECT 1 FROM inbound WHERE channel = ? AND msg_id = ?");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int(st, 1, channel);
	sqlite3_bind_text(st, 2, in->id, -1, SQLITE_STATIC);
	int known = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (known)
		return PARLEY_E_EXISTS;
	if (store__inbound_pending(s) >= queue_max)
		return PARLEY_E_BUSY;
	st = prep(s, "INSERT INTO inbound(channel, msg_id, user, text, state, created_ms) VALUES(?,?,?,?,0,?)");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int(st, 1, channel);
	sqlite3_bind_text(st, 2, in->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, in->user, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, in->text, (int)in->text_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)store__now_ms());
	return run(st);
}

static char *col_dup(sqlite3_stmt *st, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	if (len)
		*len = n;
	return d;
}

static void col_user(sqlite3_stmt *st, int i, char user[PARLEY_CHANNEL_USER_MAX + 1])
{
	const char *u = (const char *)sqlite3_column_text(st, i);
	snprintf(user, PARLEY_CHANNEL_USER_MAX + 1, "%s", u ? u : "");
}

int store__inbound_next(gw_store *s, gw_pending *out)
{
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *st = prep(s, "SELECT rowid, channel, user, text FROM inbound WHERE state = 0 ORDER BY rowid "
				   "LIMIT 1");
	if (!st)
		return PARLEY_E_STORE;
	int rc = PARLEY_E_NOT_FOUND;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->rowid = sqlite3_column_int64(st, 0);
		out->channel = sqlite3_column_int(st, 1);
		col_user(st, 2, out->user);
		out->text = col_dup(st, 3, &out->text_len);
		rc = out->text ? PARLEY_OK : PARLEY_E_NOMEM;
	}
	sqlite3_finalize(st);
	return rc;
}

int store__inbound_done(gw_store *s, int64_t rowid, int ok, uint64_t thread_id, int err)
{
	sqlite3_stmt *st = prep(s, "UPDATE inbound SET state = ?, thread_id = ?, error = ?, text = X'' WHERE rowid = ?");
	if (!st)
		return PARLEY_E_STORE;
	/* the text is dropped once handed over: the gateway keeps ids for deduplication, not conversations */
	sqlite3_bind_int(st, 1, ok ? IN_SENT : IN_FAILED);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)thread_id);
	sqlite3_bind_int(st, 3, err);
	sqlite3_bind_int64(st, 4, rowid);
	return run(st);
}

int store__inbound_prune(gw_store *s, unsigned days)
{
	sqlite3_stmt *st = prep(s, "DELETE FROM inbound WHERE state != 0 AND created_ms < ?");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(store__now_ms() - (uint64_t)days * 86400000u));
	int rc = run(st);
	st = prep(s, "DELETE FROM outbox WHERE state != 0 AND created_ms < ?");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(store__now_ms() - (uint64_t)days * 86400000u));
	return rc == PARLEY_OK ? run(st) : rc;
}

int store__thread_put(gw_store *s, uint64_t thread_id, int channel, const char *user)
{
	sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO threads(thread_id, channel, user) VALUES(?,?,?)");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)thread_id);
	sqlite3_bind_int(st, 2, channel);
	sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
	return run(st);
}

int store__thread_get(gw_store *s, uint64_t thread_id, int *channel, char user[PARLEY_CHANNEL_USER_MAX + 1])
{
	sqlite3_stmt *st = prep(s, "SELECT channel, user FROM threads WHERE thread_id = ?");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)thread_id);
	int rc = PARLEY_E_NOT_FOUND;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*channel = sqlite3_column_int(st, 0);
		col_user(st, 1, user);
		rc = PARLEY_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

int store__otp_put(gw_store *s, int channel, const char *user, uint64_t request_id, uint64_t expires_ms)
{
	sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO otp(request_id, channel, user, expires_ms) VALUES(?,?,?,?)");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)request_id);
	sqlite3_bind_int(st, 2, channel);
	sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)expires_ms);
	return run(st);
}

int store__otp_get(gw_store *s, int channel, const char *user, uint64_t now_ms, uint64_t *request_id)
{
	sqlite3_stmt *st = prep(s, "SELECT request_id FROM otp WHERE channel = ? AND user = ? AND expires_ms > ?"
				   " ORDER BY request_id DESC LIMIT 1");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int(st, 1, channel);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now_ms);
	int rc = PARLEY_E_NOT_FOUND;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*request_id = (uint64_t)sqlite3_column_int64(st, 0);
		rc = PARLEY_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

int store__otp_drop(gw_store *s, uint64_t request_id)
{
	sqlite3_stmt *st = prep(s, "DELETE FROM otp WHERE request_id = ? OR expires_ms < ?");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)request_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)store__now_ms());
	return run(st);
}

int store__outbox_add(gw_store *s, const char *dedupe, const gw_out *o)
{
	sqlite3_stmt *st = prep(s, "INSERT INTO outbox(dedupe, channel, user, kind, text, url, otp, entity, next_ms,"
				   " state, created_ms) VALUES(?,?,?,?,?,?,?,?,0,0,?)");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_text(st, 1, dedupe, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, o->channel);
	sqlite3_bind_text(st, 3, o->user, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, o->kind);
	sqlite3_bind_text(st, 5, o->text ? o->text : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, o->url ? o->url : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, o->otp ? o->otp : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, o->entity ? o->entity : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)store__now_ms());
	return run(st);
}

#define OUT_COLS "id, channel, user, kind, text, url, otp, entity, attempts"

static int read_out(sqlite3_stmt *st, gw_out *o)
{
	memset(o, 0, sizeof(*o));
	int rc = PARLEY_E_NOT_FOUND;
	if (sqlite3_step(st) == SQLITE_ROW) {
		o->id = sqlite3_column_int64(st, 0);
		o->channel = sqlite3_column_int(st, 1);
		col_user(st, 2, o->user);
		o->kind = sqlite3_column_int(st, 3);
		o->text = col_dup(st, 4, NULL);
		o->url = col_dup(st, 5, NULL);
		o->otp = col_dup(st, 6, NULL);
		o->entity = col_dup(st, 7, NULL);
		o->attempts = (unsigned)sqlite3_column_int(st, 8);
		rc = o->text && o->url && o->otp && o->entity ? PARLEY_OK : PARLEY_E_NOMEM;
		if (rc != PARLEY_OK)
			out__free(o);
	}
	sqlite3_finalize(st);
	return rc;
}

int store__outbox_due(gw_store *s, uint64_t now_ms, int webchat, gw_out *out)
{
	sqlite3_stmt *st = prep(s, webchat ? "SELECT " OUT_COLS " FROM outbox WHERE state = 0 AND next_ms <= ? AND "
					     "channel = 1 ORDER BY id LIMIT 1"
					   : "SELECT " OUT_COLS " FROM outbox WHERE state = 0 AND next_ms <= ? AND "
					     "channel != 1 ORDER BY next_ms, id LIMIT 1");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
	return read_out(st, out);
}

int store__outbox_due_user(gw_store *s, uint64_t now_ms, const char *user, gw_out *out)
{
	sqlite3_stmt *st = prep(s, "SELECT " OUT_COLS " FROM outbox WHERE state = 0 AND next_ms <= ? AND channel = 1"
				   " AND user = ? ORDER BY id LIMIT 1");
	if (!st)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	return read_out(st, out);
}

int store__outbox_result(gw_store *s, int64_t id, int outcome, uint64_t next_ms, const char *why)
{
	sqlite3_stmt *st = prep(s, "UPDATE outbox SET state = ?, attempts = attempts + 1, next_ms = ?, why = ?,"
				   " text = CASE WHEN ? THEN '' ELSE text END, otp = CASE WHEN ? THEN '' ELSE otp END"
				   " WHERE id = ?");
	if (!st)
		return PARLEY_E_STORE;
	int state = outcome == GW_SENT ? OUT_SENT : outcome == GW_DEAD ? OUT_DEAD : OUT_QUEUED;
	/* a delivered message's text and a used code are not kept (a dead letter keeps them to be looked at) */
	int wipe = outcome == GW_SENT;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next_ms);
	sqlite3_bind_text(st, 3, why ? why : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, wipe);
	sqlite3_bind_int(st, 5, wipe);
	sqlite3_bind_int64(st, 6, id);
	return run(st);
}

uint64_t store__outbox_next_ms(gw_store *s)
{
	sqlite3_stmt *st = prep(s, "SELECT min(next_ms) FROM outbox WHERE state = 0 AND channel != 1");
	uint64_t t = UINT64_MAX;
	if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return t;
}

void store__outbox_counts(gw_store *s, unsigned *queued, unsigned *sent, unsigned *dead)
{
	*queued = count(s, "SELECT count(*) FROM outbox WHERE state = 0");
	*sent = count(s, "SELECT count(*) FROM outbox WHERE state = 1");
	*dead = count(s, "SELECT count(*) FROM outbox WHERE state = 2");
}
