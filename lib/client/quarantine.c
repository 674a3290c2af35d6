/* The quarantine (security item 1, inbox lock): envelopes that could not be decrypted when they arrived.
 *
 * The server pushes at most max_inflight unacknowledged envelopes per connection and starts again from
 * the oldest on every connection, so an envelope the client leaves unacknowledged holds a slot of that
 * window for as long as it stays: a sender who makes 100 envelopes undecryptable (forged identities,
 * bad MACs) would stop every later message. So recv.c acknowledges every envelope it cannot decrypt and
 * keeps it here (the ciphertext and its routing header, never plaintext). Bounded per sender and in
 * total (options quarantine_per_sender / quarantine_max): the oldest go first, counted in
 * quarantine_meta.dropped, so a stranger can neither fill the disk nor push another sender's envelopes
 * out (only its own, until the total bound). Accepting a key of a sender (trust.c) marks that sender's
 * envelopes for a retry, which recv.c runs while the application receives. */
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

/* Runs sql (no parameters) on client.db. */
static int exec(parley_client *c, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, sql, &st);
	return rc == PARLEY_OK ? client__sql_done(c, st) : rc;
}

/* Deletes the oldest rows beyond `keep` among those of sender (NULL: all rows); adds them to *dropped. */
static int trim(parley_client *c, const char *sender, unsigned keep, uint64_t *dropped)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  sender != NULL ? "DELETE FROM quarantine WHERE sender = ?2 AND id NOT IN (SELECT id"
						   " FROM quarantine WHERE sender = ?2 ORDER BY id DESC LIMIT ?1)"
						 : "DELETE FROM quarantine WHERE id NOT IN (SELECT id FROM quarantine"
						   " ORDER BY id DESC LIMIT ?1)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, keep);
	if (sender != NULL)
		sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
	rc = client__sql_done(c, st);
	if (rc == PARLEY_OK)
		*dropped += (uint64_t)sqlite3_changes(client__state_db(c->state));
	return rc;
}

static int add_locked(parley_client *c, const Parley__Wire__Envelope *e, int reason)
{
	sqlite3_stmt *st = NULL;
	uint64_t dropped = 0;
	int rc = client__sql_prep(c,
				  "INSERT OR IGNORE INTO quarantine (server_id, sender, sender_device, type, client_ts,"
				  " server_ts, received_ms, reason, content, thread_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->server_id);
	sqlite3_bind_text(st, 2, e->sender_handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, e->sender_device);
	sqlite3_bind_int64(st, 4, e->type);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)e->client_timestamp);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)e->server_timestamp);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)client__now_ms());
	sqlite3_bind_int64(st, 8, reason);
	sqlite3_bind_blob(st, 9, e->content.len ? e->content.data : (const void *)"", (int)e->content.len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)e->thread_id);
	rc = client__sql_done(c, st);
	if (rc == PARLEY_OK)
		rc = trim(c, e->sender_handle, c->quarantine_per_sender, &dropped);
	if (rc == PARLEY_OK)
		rc = trim(c, NULL, c->quarantine_max, &dropped);
	if (rc == PARLEY_OK && dropped != 0 &&
	    client__sql_prep(c, "UPDATE quarantine_meta SET dropped = dropped + ? WHERE id = 1", &st) == PARLEY_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)dropped);
		rc = client__sql_done(c, st);
	}
	return rc;
}

int client__quarantine_add(parley_client *c, const Parley__Wire__Envelope *e, int reason)
{
	/* One transaction: the entry, the bounds and the count agree after a crash. */
	int rc = exec(c, "BEGIN IMMEDIATE");
	if (rc != PARLEY_OK)
		return rc;
	rc = add_locked(c, e, reason);
	if (rc == PARLEY_OK)
		rc = exec(c, "COMMIT");
	if (rc != PARLEY_OK)
		(void)exec(c, "ROLLBACK");
	return rc;
}

int client__quarantine_mark(parley_client *c, const char *handle)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "UPDATE quarantine SET retry = 1 WHERE sender = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

/* Removes entry id (rc == PARLEY_OK: it decrypted) or records why it still does not. */
static int settle(parley_client *c, int64_t id, int rc)
{
	sqlite3_stmt *st = NULL;
	int r = client__sql_prep(c,
				 rc == PARLEY_OK ? "DELETE FROM quarantine WHERE id = ?1"
						 : "UPDATE quarantine SET retry = 0, reason = ?2 WHERE id = ?1",
				 &st);
	if (r != PARLEY_OK)
		return r;
	sqlite3_bind_int64(st, 1, id);
	if (rc != PARLEY_OK)
		sqlite3_bind_int64(st, 2, rc);
	return client__sql_done(c, st);
}

int client__quarantine_retry(parley_client *c, client_retry_fn retry)
{
	int rc = PARLEY_OK;

	/* One entry per query: the callback delivers to the application, which may stop receiving, and each
	 * entry leaves the retry set once tried, so the loop ends. */
	while (rc == PARLEY_OK && c->receiving) {
		sqlite3_stmt *st = NULL;
		Parley__Wire__Envelope e = PARLEY__WIRE__ENVELOPE__INIT;
		char sender[PARLEY_HANDLE_MAX + 1];
		int64_t id;
		int r;

		rc = client__sql_prep(c,
				      "SELECT id, server_id, sender, sender_device, type, client_ts, server_ts, content,"
				      " thread_id FROM quarantine WHERE retry = 1 ORDER BY id LIMIT 1",
				      &st);
		if (rc != PARLEY_OK)
			break;
		r = sqlite3_step(st);
		if (r != SQLITE_ROW) {
			rc = r == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
			sqlite3_finalize(st);
			break;
		}
		id = sqlite3_column_int64(st, 0);
		e.server_id = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(sender, sizeof(sender), "%s", (const char *)sqlite3_column_text(st, 2));
		e.sender_handle = sender;
		e.sender_device = (uint32_t)sqlite3_column_int64(st, 3);
		e.type = (Parley__Wire__EnvelopeType)sqlite3_column_int64(st, 4);
		e.client_timestamp = (uint64_t)sqlite3_column_int64(st, 5);
		e.server_timestamp = (uint64_t)sqlite3_column_int64(st, 6);
		e.thread_id = (uint64_t)sqlite3_column_int64(st, 8);
		e.content.len = (size_t)sqlite3_column_bytes(st, 7);
		e.content.data = e.content.len ? parley__malloc(e.content.len) : NULL;
		if (e.content.len && e.content.data == NULL) {
			sqlite3_finalize(st);
			return PARLEY_E_NOMEM;
		}
		if (e.content.len)
			memcpy(e.content.data, sqlite3_column_blob(st, 7), e.content.len);
		sqlite3_finalize(st);
		r = retry(c, &e);
		parley__free(e.content.data);
		if (r == PARLEY_E_NOMEM || r == PARLEY_E_STORE)
			return r; /* ours: left marked for the next attempt */
		rc = settle(c, id, r);
	}
	return rc;
}

parley_err parley_quarantine_list(parley_client *c, parley_quarantine_entry *out, size_t max, size_t *n,
				  uint64_t *dropped)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (c == NULL || n == NULL || (out == NULL && max != 0))
		return PARLEY_E_INVAL;
	*n = 0;
	if (dropped != NULL)
		*dropped = 0;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "SELECT sender, sender_device, server_id, client_ts, received_ms, reason, retry"
				      " FROM quarantine ORDER BY id LIMIT ?",
				      &st);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(max > INT64_MAX ? INT64_MAX : max));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		parley_quarantine_entry *q = &out[(*n)++];
		memset(q, 0, sizeof(*q));
		snprintf(q->sender, sizeof(q->sender), "%s", (const char *)sqlite3_column_text(st, 0));
		q->sender_device = (uint32_t)sqlite3_column_int64(st, 1);
		q->server_id = (uint64_t)sqlite3_column_int64(st, 2);
		q->timestamp_ms = (uint64_t)sqlite3_column_int64(st, 3);
		q->received_ms = (uint64_t)sqlite3_column_int64(st, 4);
		q->reason = (parley_err)sqlite3_column_int64(st, 5);
		q->retry = sqlite3_column_int64(st, 6) != 0;
	}
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	if (rc == PARLEY_OK && dropped != NULL &&
	    (rc = client__sql_prep(c, "SELECT dropped FROM quarantine_meta WHERE id = 1", &st)) == PARLEY_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			*dropped = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return (parley_err)rc;
}
