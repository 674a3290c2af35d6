/* The rows of the local history (history.c has the schema, the key and the sealing): insert with the
 * retention bounds, listing newest first, deletion, and the un-handed rows of the crash window.
 *
 * Retention is enforced on insert, in the insert's transaction, through the (conversation, server_ts,
 * id) index: the row max_per_conversation places below the newest is found by an index walk of that
 * many entries, and everything at or below it goes; the age bound is one range delete on the same
 * index. So a conversation never holds more than its bound, and nothing scans the whole table.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define DAY_MS (24ull * 3600 * 1000)

int client__history_sql_fail(sqlite3 *db, char *err, size_t errlen)
{
	client__errbuf_set(err, errlen, "client.db (history): %s", sqlite3_errmsg(db));
	return PARLEY_E_STORE;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
		return client__history_sql_fail(db, err, errlen);
	return PARLEY_OK;
}

/* Steps st to its end and finalizes it. */
static int done(sqlite3 *db, sqlite3_stmt *st, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? PARLEY_OK : client__history_sql_fail(db, err, errlen);
	sqlite3_finalize(st);
	return rc;
}

static uint64_t age_cut(const client_history_limits *lim)
{
	uint64_t span = (uint64_t)lim->max_age_days * DAY_MS;
	return lim->now_ms > span ? lim->now_ms - span : 0;
}

/* Prunes conv to the limits. */
static int prune(sqlite3 *db, const char *conv, const client_history_limits *lim, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	sqlite3_int64 ts = 0, id = 0;
	int found, rc;

	rc = prep(db,
		  "SELECT server_ts, id FROM history WHERE conversation = ?1 ORDER BY server_ts DESC, id DESC"
		  " LIMIT 1 OFFSET ?2",
		  &st, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lim->max_per_conversation);
	rc = sqlite3_step(st);
	found = rc == SQLITE_ROW;
	if (found) {
		ts = sqlite3_column_int64(st, 0);
		id = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return client__history_sql_fail(db, err, errlen);
	if (found) {
		/* the first row past the bound and every older one */
		rc = prep(db,
			  "DELETE FROM history WHERE conversation = ?1 AND (server_ts < ?2 OR (server_ts = ?2 AND id <= ?3))",
			  &st, err, errlen);
		if (rc != PARLEY_OK)
			return rc;
		sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ts);
		sqlite3_bind_int64(st, 3, id);
		rc = done(db, st, err, errlen);
		if (rc != PARLEY_OK)
			return rc;
	}
	if (lim->max_age_days == 0)
		return PARLEY_OK;
	rc = prep(db, "DELETE FROM history WHERE conversation = ?1 AND server_ts < ?2", &st, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)age_cut(lim));
	return done(db, st, err, errlen);
}

int client__history_prune_age(sqlite3 *db, const client_history_limits *lim, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (lim->max_age_days == 0)
		return PARLEY_OK;
	rc = prep(db, "DELETE FROM history WHERE server_ts < ?1", &st, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)age_cut(lim));
	return done(db, st, err, errlen);
}

static int insert_row(sqlite3 *db, const uint8_t *key, const client_history_row *r, char *err, size_t errlen)
{
	uint8_t nonce[HISTORY_NONCE_BYTES];
	uint8_t *ct = parley__malloc(r->body_len + HISTORY_ABYTES);
	sqlite3_stmt *st = NULL;
	int rc;

	if (ct == NULL)
		return PARLEY_E_NOMEM;
	client__history_seal(key, &r->m, r->body, r->body_len, nonce, ct);
	rc = prep(db,
		  "INSERT OR IGNORE INTO history (conversation, outgoing, sender, sender_device, timestamp, server_ts,"
		  " server_id, handed, request, nonce, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		  &st, err, errlen);
	if (rc == PARLEY_OK) {
		sqlite3_bind_text(st, 1, r->m.conversation, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, r->m.outgoing != 0);
		sqlite3_bind_text(st, 3, r->m.sender, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, r->m.sender_device);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)r->m.timestamp);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)r->server_ts);
		if (r->server_id != 0)
			sqlite3_bind_int64(st, 7, (sqlite3_int64)r->server_id);
		sqlite3_bind_int(st, 8, r->handed != 0);
		sqlite3_bind_int(st, 9, r->request != 0);
		sqlite3_bind_blob(st, 10, nonce, sizeof(nonce), SQLITE_STATIC);
		sqlite3_bind_blob(st, 11, ct, (int)(r->body_len + HISTORY_ABYTES), SQLITE_STATIC);
		rc = done(db, st, err, errlen);
	}
	parley__free(ct);
	return rc;
}

int client__history_insert(sqlite3 *db, const uint8_t key[HISTORY_KEY_BYTES], const client_history_row *r,
			   const client_history_limits *lim, char *err, size_t errlen)
{
	int rc;

	if (!client__history_conversation_ok(r->m.conversation) || r->body_len > PARLEY_MESSAGE_MAX ||
	    lim->max_per_conversation == 0)
		return PARLEY_E_INVAL;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return client__history_sql_fail(db, err, errlen);
	rc = insert_row(db, key, r, err, errlen);
	if (rc == PARLEY_OK)
		rc = prune(db, r->m.conversation, lim, err, errlen);
	if (sqlite3_exec(db, rc == PARLEY_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && rc == PARLEY_OK)
		rc = client__history_sql_fail(db, err, errlen);
	return rc;
}

void parley_history_entries_free(parley_history_entry *entries, size_t n)
{
	for (size_t i = 0; entries != NULL && i < n; i++) {
		if (entries[i].body != NULL)
			sodium_memzero(entries[i].body, entries[i].body_len);
		parley__free(entries[i].body);
		entries[i].body = NULL;
		entries[i].body_len = 0;
	}
}

/* One row (columns: outgoing, sender, sender_device, timestamp, server_ts, nonce, body, id) of conv
 * into e, its body opened. */
static int read_row(sqlite3_stmt *st, const uint8_t *key, const char *conv, parley_history_entry *e, char *err,
		    size_t errlen)
{
	const unsigned char *sender = sqlite3_column_text(st, 1);
	const void *nonce = sqlite3_column_blob(st, 5);
	size_t ct_len = (size_t)sqlite3_column_bytes(st, 6);
	const void *ct = sqlite3_column_blob(st, 6);
	client_history_meta m;

	memset(e, 0, sizeof(*e));
	e->outgoing = sqlite3_column_int(st, 0);
	snprintf(e->sender, sizeof(e->sender), "%s", sender != NULL ? (const char *)sender : "");
	e->sender_device = (uint32_t)sqlite3_column_int64(st, 2);
	e->timestamp_ms = (uint64_t)sqlite3_column_int64(st, 3);
	e->server_timestamp_ms = (uint64_t)sqlite3_column_int64(st, 4);
	m = (client_history_meta){conv, e->outgoing, e->sender, e->sender_device, e->timestamp_ms};
	if (nonce == NULL || sqlite3_column_bytes(st, 5) != HISTORY_NONCE_BYTES || ct == NULL || ct_len < HISTORY_ABYTES ||
	    ct_len > PARLEY_MESSAGE_MAX + HISTORY_ABYTES)
		goto bad;
	e->body = parley__malloc(ct_len - HISTORY_ABYTES + 1);
	if (e->body == NULL)
		return PARLEY_E_NOMEM;
	if (client__history_open(key, &m, nonce, ct, ct_len, e->body, &e->body_len) != PARLEY_OK)
		goto bad;
	e->body[e->body_len] = '\0';
	return PARLEY_OK;
bad:
	parley__free(e->body);
	e->body = NULL;
	client__errbuf_set(err, errlen, "history row %lld of %s does not open under the storage key: altered or moved",
		(long long)sqlite3_column_int64(st, 7), conv);
	return PARLEY_E_BAD_MAC;
}

#define ROW_COLUMNS "outgoing, sender, sender_device, timestamp, server_ts, nonce, body, id"

int client__history_select(sqlite3 *db, const uint8_t key[HISTORY_KEY_BYTES], const char *conv, uint64_t before_ms,
			   size_t max, parley_history_entry *out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	if (max == 0)
		return PARLEY_OK;
	rc = prep(db,
		  "SELECT " ROW_COLUMNS " FROM history WHERE conversation = ?1 AND server_ts < ?2"
		  " ORDER BY server_ts DESC, id DESC LIMIT ?3",
		  &st, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before_ms == 0 || before_ms > INT64_MAX ? INT64_MAX : (sqlite3_int64)before_ms);
	sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
	for (;;) {
		int step = sqlite3_step(st); /* an SQLite code, never mixed with rc's parley codes */
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = client__history_sql_fail(db, err, errlen);
			break;
		}
		rc = read_row(st, key, conv, &out[*n], err, errlen);
		if (rc != PARLEY_OK)
			break;
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != PARLEY_OK) {
		parley_history_entries_free(out, *n);
		*n = 0;
	}
	return rc;
}

int client__history_unhanded(sqlite3 *db, const uint8_t key[HISTORY_KEY_BYTES], uint64_t server_id, int *found,
			     parley_history_entry *e, char conv[HISTORY_CONV_MAX + 1], int *request, char *err,
			     size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(db, "SELECT " ROW_COLUMNS ", conversation, request FROM history WHERE server_id = ? AND handed = 0",
		      &st, err, errlen);

	*found = 0;
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)server_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *cv = sqlite3_column_text(st, 8);
		snprintf(conv, HISTORY_CONV_MAX + 1, "%s", cv != NULL ? (const char *)cv : "");
		*request = sqlite3_column_int(st, 9);
		rc = read_row(st, key, conv, e, err, errlen);
		*found = rc == PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_OK : client__history_sql_fail(db, err, errlen);
	}
	sqlite3_finalize(st);
	return rc;
}

int client__history_mark_handed(sqlite3 *db, uint64_t server_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(db, "UPDATE history SET handed = 1 WHERE server_id = ?", &st, err, errlen);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)server_id);
	return done(db, st, err, errlen);
}

int client__history_delete(sqlite3 *db, const char *conv, size_t *deleted, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(db, "DELETE FROM history WHERE conversation = ?", &st, err, errlen);

	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	rc = done(db, st, err, errlen);
	if (rc == PARLEY_OK && deleted != NULL)
		*deleted = (size_t)sqlite3_changes(db);
	return rc;
}
