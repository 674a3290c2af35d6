/* Threads on the client, local bookkeeping beside the verified state (thread_state.c; client.db schema
 * "client.threads"): the own sender key's epoch and rotation flag, which member devices got which
 * epoch's key and at which position, the bounded kind-6 requests, unread counts and the thread ids
 * this device knows.
 */
#include <string.h>

#include "client/thread_core.h"

/* ---- own sender key, distribution bookkeeping, unread ---- */

int client__thread_epoch(parley_client *c, uint64_t thread_id, uint64_t *epoch, int *rotate)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "SELECT own_epoch, rotate FROM threads WHERE thread_id = ?", thread_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*epoch = (uint64_t)sqlite3_column_int64(st, 0);
		*rotate = sqlite3_column_int(st, 1);
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_E_NO_SUCH_THREAD : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

static int exec_id(parley_client *c, const char *sql, uint64_t thread_id)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, sql, thread_id, &st);
	return rc == PARLEY_OK ? client__sql_done(c, st) : rc;
}

int client__thread_set_rotate(parley_client *c, uint64_t thread_id)
{
	return exec_id(c, "UPDATE threads SET rotate = 1 WHERE thread_id = ?", thread_id);
}

int client__thread_rotated(parley_client *c, uint64_t thread_id)
{
	return exec_id(c, "UPDATE threads SET rotate = 0, own_epoch = own_epoch + 1 WHERE thread_id = ?", thread_id);
}

int client__thread_key_sent(parley_client *c, uint64_t thread_id, uint64_t epoch, const char *handle,
			    const uint32_t *devices, size_t n, int *sent)
{
	int rc = PARLEY_OK;

	*sent = 1;
	for (size_t i = 0; rc == PARLEY_OK && *sent && i < n; i++) {
		sqlite3_stmt *st = NULL;
		rc = client__thread_prep(c, "SELECT 1 FROM thread_sent_keys WHERE thread_id = ? AND epoch = ? AND handle = ? AND device = ?",
			     thread_id, &st);
		if (rc != PARLEY_OK)
			break;
		sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
		sqlite3_bind_text(st, 3, handle, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, devices[i]);
		int step = sqlite3_step(st);
		*sent = step == SQLITE_ROW;
		if (step != SQLITE_ROW && step != SQLITE_DONE)
			rc = client__sql_err(c);
		sqlite3_finalize(st);
	}
	return rc;
}

int client__thread_key_record(parley_client *c, uint64_t thread_id, uint64_t epoch, const char *handle,
			      const uint32_t *devices, size_t n, const uint8_t *skdm, size_t len)
{
	int rc = PARLEY_OK;

	for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
		sqlite3_stmt *st = NULL;
		rc = client__thread_prep(c, "INSERT OR IGNORE INTO thread_sent_keys (thread_id, epoch, handle, device, skdm)"
					    " VALUES (?, ?, ?, ?, ?)", thread_id, &st);
		if (rc != PARLEY_OK)
			break;
		sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
		sqlite3_bind_text(st, 3, handle, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, devices[i]);
		sqlite3_bind_blob(st, 5, skdm, (int)len, SQLITE_STATIC);
		rc = client__sql_done(c, st);
	}
	return rc;
}

int client__thread_key_given(parley_client *c, uint64_t thread_id, uint64_t epoch, const char *handle,
			     uint32_t device, uint8_t *skdm, size_t cap, size_t *len, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "SELECT skdm FROM thread_sent_keys WHERE thread_id = ? AND epoch = ? AND handle = ?"
					" ORDER BY device = ? DESC, device LIMIT 1", thread_id, &st);

	*found = 0;
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
	sqlite3_bind_text(st, 3, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, device);
	if (sqlite3_step(st) == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) <= cap) {
		*len = (size_t)sqlite3_column_bytes(st, 0);
		memcpy(skdm, sqlite3_column_blob(st, 0), *len);
		*found = 1;
	}
	sqlite3_finalize(st);
	return PARLEY_OK;
}

int client__thread_request_allowed(parley_client *c, uint64_t thread_id, const char *handle, uint32_t device,
				   int *allowed)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = client__now_ms();
	int rc = client__thread_prep(c,
			 "INSERT INTO thread_key_requests (thread_id, handle, device, at_ms) VALUES (?1, ?2, ?3, ?4)"
			 " ON CONFLICT(thread_id, handle, device) DO UPDATE SET at_ms = ?4 WHERE at_ms + ?5 <= ?4",
			 thread_id, &st);

	*allowed = 0;
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, device);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 5, THREAD_KEY_REQUEST_MS);
	rc = client__sql_done(c, st);
	/* a row written now (new, or the old one aged out) means a request may go */
	if (rc == PARLEY_OK)
		*allowed = sqlite3_changes(client__state_db(c->state)) > 0;
	return rc;
}

int client__thread_unread_add(parley_client *c, uint64_t thread_id, unsigned n)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "UPDATE threads SET unread = CASE WHEN ?2 = 0 THEN 0 ELSE unread + ?2 END WHERE thread_id = ?1",
			 thread_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 2, n);
	return client__sql_done(c, st);
}

int client__thread_unread(parley_client *c, uint64_t thread_id, unsigned *n)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "SELECT unread FROM threads WHERE thread_id = ?", thread_id, &st);

	*n = 0;
	if (rc != PARLEY_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*n = (unsigned)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return PARLEY_OK;
}

int client__thread_times(parley_client *c, uint64_t thread_id, uint64_t created_ms, uint64_t updated_ms)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_prep(c, "UPDATE threads SET created_ms = ?2, updated_ms = MAX(updated_ms, ?3) WHERE thread_id = ?1",
			 thread_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 2, (sqlite3_int64)created_ms);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)updated_ms);
	return client__sql_done(c, st);
}

int client__thread_ids(parley_client *c, const char *entity, uint64_t *ids, size_t max, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_ready(c);

	*n = 0;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      entity != NULL ? "SELECT thread_id FROM threads WHERE entity = ? ORDER BY thread_id DESC"
						     : "SELECT thread_id FROM threads WHERE staff = 0 ORDER BY thread_id DESC",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	if (entity != NULL)
		sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
	while (*n < max && sqlite3_step(st) == SQLITE_ROW)
		ids[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return PARLEY_OK;
}


int client__thread_entities(parley_client *c, char (*out)[PARLEY_HANDLE_MAX + 1], size_t max, size_t *n,
			    int *customer)
{
	sqlite3_stmt *st = NULL;
	int rc = client__thread_ready(c);

	*n = 0;
	*customer = 0;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT entity, staff FROM threads GROUP BY entity, staff"
					 " ORDER BY MAX(updated_ms) DESC", &st);
	if (rc != PARLEY_OK)
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *e = (const char *)sqlite3_column_text(st, 0);
		if (sqlite3_column_int(st, 1) == 0)
			*customer = 1;
		else if (*n < max && e != NULL)
			snprintf(out[(*n)++], PARLEY_HANDLE_MAX + 1, "%s", e);
	}
	sqlite3_finalize(st);
	return PARLEY_OK;
}
