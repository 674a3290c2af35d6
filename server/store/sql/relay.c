/* Store, relay: the relay ops of STORE_OPS (job->relay). Schema: migration 2 in engine.c
 * (messages, and device_keys.queue_len, the relay's counter on the key server's row). Who accepted
 * whom (presence, typing) is contacts.c. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/sql.h"

#define PURGE_LIMIT_DEFAULT 10000u
/* recipient devices considered by one SEND (far above any configured max_devices) */
#define MAX_EXPECTED 64

/* the recipient's devices that can receive: those with keys */
static const char SQL_RECIPIENTS[] = "SELECT device_id, registration_id, queue_len FROM device_keys"
				     " WHERE account_id = ?1 ORDER BY device_id";
/* The hot path's insert. PostgreSQL returns the id with the row (lastval() would be a second round
 * trip per envelope); SQLite reads it with sqlite3_last_insert_rowid, free, where RETURNING doubled
 * the cost of the insert (measured: ~2.5 us vs ~5 us per insert, in memory). */
#define SQL_INSERT_MSG_TEXT                                                                                 \
	"INSERT INTO messages(account_id, device_id, sender_account, sender_device, sender_handle, type,"    \
	" client_ts, server_ts, expires_ms, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
static const sql_text SQL_INSERT_MSG = {SQL_INSERT_MSG_TEXT, SQL_INSERT_MSG_TEXT " RETURNING id"};
/* a group envelope's thread (threads.c's table; deleted with the envelope by its foreign key) */
static const char SQL_INSERT_THREAD[] = "INSERT INTO thread_envelopes(message_id, thread_id) VALUES (?1, ?2)";
static const char SQL_REQUEUE_THREAD[] = "INSERT INTO thread_envelopes(message_id, thread_id) SELECT ?2, thread_id"
					 " FROM thread_envelopes WHERE message_id = ?1";
/* SQLite's scalar max() is PostgreSQL's greatest() */
static const sql_text SQL_BUMP_QUEUE = {
	"UPDATE device_keys SET queue_len = max(queue_len + ?3, 0) WHERE account_id = ?1 AND device_id = ?2",
	"UPDATE device_keys SET queue_len = greatest(queue_len + ?3, 0) WHERE account_id = ?1 AND device_id = ?2",
};
static const char SQL_FETCH[] = "SELECT m.id, m.sender_account, m.sender_device, m.sender_handle, m.type,"
				" m.client_ts, m.server_ts, m.content, coalesce(t.thread_id, 0) FROM messages m"
				" LEFT JOIN thread_envelopes t ON t.message_id = m.id WHERE m.account_id = ?1"
				" AND m.device_id = ?2 AND m.id > ?3 AND m.expires_ms > ?4 ORDER BY m.id LIMIT ?5";
static const char SQL_DELETE_MSG[] = "DELETE FROM messages WHERE id = ?3 AND account_id = ?1 AND device_id = ?2";
static const char SQL_PURGE[] = "DELETE FROM messages WHERE id IN"
				" (SELECT id FROM messages WHERE expires_ms <= ?1 LIMIT ?2)";
static const char SQL_RECOUNT[] = "UPDATE device_keys SET queue_len = (SELECT count(*) FROM messages m"
				  " WHERE m.account_id = device_keys.account_id AND m.device_id = device_keys.device_id)"
				  " WHERE queue_len > 0";
/* the delete of an acknowledgement to a queue whose senders are tallied (share.c) */
static const char SQL_DELETE_MSG_SENDER[] = "DELETE FROM messages WHERE id = ?3 AND account_id = ?1"
					    " AND device_id = ?2 RETURNING sender_account";
static const char SQL_REDELIVERED[] = "UPDATE messages SET deliveries = deliveries + 1 WHERE id = ?3"
				      " AND account_id = ?1 AND device_id = ?2 RETURNING deliveries";
/* the same envelope under a new (higher) id: behind everything queued so far; expiry unchanged */
static const char SQL_REQUEUE[] = "INSERT INTO messages(account_id, device_id, sender_account, sender_device,"
				  " sender_handle, type, client_ts, server_ts, expires_ms, content) SELECT account_id,"
				  " device_id, sender_account, sender_device, sender_handle, type, client_ts, server_ts,"
				  " expires_ms, content FROM messages WHERE id = ?1";

/* --- SEND --- */

/* Appends to a device list, allocated on first use with room for `cap` (the most it can hold), so a
 * successful send allocates no list at all. */
static int list_add(uint32_t **list, size_t *n, size_t cap, uint32_t device_id)
{
	if (*list == NULL && (*list = parley__calloc(cap, sizeof(**list))) == NULL)
		return PARLEY_E_NOMEM;
	(*list)[(*n)++] = device_id;
	return PARLEY_OK;
}

int sql__check_devices(const store_out_msg *msgs, size_t n_msgs, const sql_expected *e, size_t ne,
			  sql_mismatch *mm)
{
	int rc = PARLEY_OK;
	for (size_t i = 0; i < ne && rc == PARLEY_OK; i++) {
		int found = 0;
		for (size_t k = 0; k < n_msgs && !found; k++)
			found = msgs[k].device_id == e[i].device_id;
		if (!found)
			rc = list_add(&mm->missing, &mm->n_missing, ne, e[i].device_id);
	}
	for (size_t k = 0; k < n_msgs && rc == PARLEY_OK; k++) {
		const sql_expected *hit = NULL;
		for (size_t i = 0; i < ne && hit == NULL; i++)
			if (e[i].device_id == msgs[k].device_id)
				hit = &e[i];
		if (hit == NULL)
			rc = list_add(&mm->extra, &mm->n_extra, n_msgs, msgs[k].device_id);
		else if (hit->registration_id != msgs[k].registration_id)
			rc = list_add(&mm->stale, &mm->n_stale, n_msgs, msgs[k].device_id);
	}
	if (rc != PARLEY_OK)
		return rc;
	if (mm->n_missing || mm->n_extra)
		return PARLEY_E_MISMATCHED_DEVICES;
	return mm->n_stale ? PARLEY_E_STALE_DEVICES : PARLEY_OK;
}

int sql__load_expected(store_be *b, uint64_t account, uint64_t sender, uint32_t sender_device,
			  sql_expected *e, size_t cap, size_t *n)
{
	sql_stmt *s = sql__stmt(b, SQL_RECIPIENTS);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)account);
	*n = 0;
	for (;;) {
		sr = sql__step(s);
		if (sr != SQL_ROW)
			break;
		uint32_t dev = (uint32_t)sql__col_i64(s, 0);
		/* sending to one's own account: the sending device is not a recipient */
		if (account == sender && dev == sender_device)
			continue;
		if (*n < cap) {
			e[*n].device_id = dev;
			e[*n].registration_id = (uint32_t)sql__col_i64(s, 1);
			e[*n].queue_len = (uint32_t)sql__col_i64(s, 2);
			(*n)++;
		}
	}
	sql__reset(s);
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "list recipients");
}

/* queue_len of (account, device) += delta, never below 0 */
static int bump_queue(store_be *b, uint64_t account, uint32_t device, int64_t delta)
{
	sql_stmt *s = sql__stmt_d(b, &SQL_BUMP_QUEUE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)account);
	sql__bind_i64(s, 2, device);
	sql__bind_i64(s, 3, delta);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "queue length");
}

int sql__enqueue(store_be *b, const sql_env *e, uint64_t *server_id)
{
	sql_stmt *s = sql__stmt_d(b, &SQL_INSERT_MSG);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)e->account);
	sql__bind_i64(s, 2, e->device);
	sql__bind_i64(s, 3, (int64_t)e->sender_account);
	sql__bind_i64(s, 4, e->sender_device);
	sql__bind_text(s, 5, e->sender_handle, -1);
	sql__bind_i64(s, 6, e->type);
	sql__bind_i64(s, 7, (int64_t)e->client_ts);
	sql__bind_i64(s, 8, (int64_t)e->server_ts);
	sql__bind_i64(s, 9, (int64_t)e->expires_ms);
	sql__bind_blob(s, 10, e->content, (int)e->content_len);
	/* a row: the RETURNING id (PostgreSQL); done: SQLite's text has none, its last rowid is the id */
	int sr = sql__step(s);
	if (sr == SQL_ROW)
		*server_id = (uint64_t)sql__col_i64(s, 0);
	sql__reset(s);
	if (sr == SQL_DONE)
		*server_id = (uint64_t)sql__last_id(b);
	else if (sr != SQL_ROW)
		return sql__error(b, "insert message");
	if (e->thread_id != 0) {
		if ((s = sql__stmt(b, SQL_INSERT_THREAD)) == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)*server_id);
		sql__bind_i64(s, 2, (int64_t)e->thread_id);
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "insert thread envelope");
	}
	sql__share_moved(b, e->account, e->device, e->sender_account, 1);
	return bump_queue(b, e->account, e->device, 1);
}

static int insert_msg(store_be *b, store_job *j, store_out_msg *o)
{
	const store_relay_args *m = &j->relay;
	sql_env e = {
		.account = m->recipient_account,
		.device = o->device_id,
		.sender_account = j->account_id,
		.sender_device = j->device_id,
		.sender_handle = m->sender_handle,
		.type = o->type,
		.client_ts = m->client_ts,
		.server_ts = j->now_ms,
		.expires_ms = m->expires_ms,
		.content = o->content,
		.content_len = o->content_len,
	};
	return sql__enqueue(b, &e, &o->server_id);
}

int sql__sender_room(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, uint64_t sender,
			unsigned limit)
{
	uint64_t n = 0;
	/* A sender cannot hold more than its share of a queue it did not fill alone, so the count is needed
	 * only once the whole queue reaches the share: free for every queue below it. */
	if (limit == 0 || account == sender || queue_len < limit)
		return PARLEY_OK;
	int rc = sql__share_count(b, account, device, queue_len, sender, &n);
	if (rc != PARLEY_OK)
		return rc;
	return n >= limit ? PARLEY_E_SENDER_QUEUE_FULL : PARLEY_OK;
}

int sql__send(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	sql_expected e[MAX_EXPECTED];
	sql_mismatch mm = {0};
	size_t ne = 0;
	int rc = sql__account_by_handle(b, j->handle, &m->recipient_account);
	if (rc == PARLEY_OK)
		rc = sql__load_expected(b, m->recipient_account, j->account_id, j->device_id, e, MAX_EXPECTED, &ne);
	if (rc == PARLEY_OK) {
		rc = sql__check_devices(m->msgs, m->n_msgs, e, ne, &mm);
		m->missing = mm.missing;
		m->n_missing = mm.n_missing;
		m->extra = mm.extra;
		m->n_extra = mm.n_extra;
		m->stale = mm.stale;
		m->n_stale = mm.n_stale;
	}
	if (rc != PARLEY_OK)
		return rc;
	for (size_t k = 0; k < m->n_msgs; k++)
		for (size_t i = 0; i < ne; i++)
			if (e[i].device_id == m->msgs[k].device_id && e[i].queue_len >= m->queue_limit)
				return PARLEY_E_QUEUE_FULL; /* all or nothing: no device gets a partial send */
	for (size_t i = 0; i < ne && rc == PARLEY_OK; i++)
		rc = sql__sender_room(b, m->recipient_account, e[i].device_id, e[i].queue_len, j->account_id,
					 m->sender_queue_limit);
	if (rc != PARLEY_OK)
		return rc;
	for (size_t k = 0; k < m->n_msgs && rc == PARLEY_OK; k++)
		rc = insert_msg(b, j, &m->msgs[k]);
	if (rc == PARLEY_OK && m->recipient_account != j->account_id)
		rc = sql__contact_touch(b, j->account_id, m->recipient_account, j->now_ms);
	return rc;
}

/* --- queue reads and deletes --- */

int sql__fetch_queue(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	sql_stmt *s = sql__stmt(b, SQL_FETCH);
	int sr, rc = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	if (m->limit == 0)
		return PARLEY_OK;
	m->envs = parley__calloc(m->limit, sizeof(*m->envs));
	if (m->envs == NULL)
		return PARLEY_E_NOMEM;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	sql__bind_i64(s, 3, (int64_t)m->after_id);
	sql__bind_i64(s, 4, (int64_t)j->now_ms);
	sql__bind_i64(s, 5, m->limit);
	for (;;) {
		sr = sql__step(s);
		if (sr != SQL_ROW || m->n_envs >= m->limit)
			break;
		store_envelope *e = &m->envs[m->n_envs];
		const unsigned char *h = sql__col_text(s, 3);
		int n = sql__col_bytes(s, 7);
		e->server_id = (uint64_t)sql__col_i64(s, 0);
		e->sender_account = (uint64_t)sql__col_i64(s, 1);
		e->sender_device = (uint32_t)sql__col_i64(s, 2);
		if (h != NULL)
			snprintf(e->sender_handle, sizeof(e->sender_handle), "%s", (const char *)h);
		e->type = (uint32_t)sql__col_i64(s, 4);
		e->client_ts = (uint64_t)sql__col_i64(s, 5);
		e->server_ts = (uint64_t)sql__col_i64(s, 6);
		e->content = parley__malloc(n > 0 ? (size_t)n : 1);
		if (e->content == NULL) {
			rc = PARLEY_E_NOMEM;
			break;
		}
		if (n > 0)
			memcpy(e->content, sql__col_blob(s, 7), (size_t)n);
		e->content_len = (size_t)n;
		e->thread_id = (uint64_t)sql__col_i64(s, 8);
		m->n_envs++;
	}
	if (rc == PARLEY_OK && sr != SQL_DONE && sr != SQL_ROW)
		rc = sql__error(b, "fetch queue");
	sql__reset(s);
	return rc;
}

/* Deletes acknowledged envelope `id`; *deleted 1 if it was there. Through the RETURNING variant when
 * the queue's senders are tallied, so the tally loses the right sender. */
static int delete_acked(store_be *b, const store_job *j, uint64_t id, int tracked, uint64_t *deleted)
{
	sql_stmt *s = sql__stmt(b, tracked ? SQL_DELETE_MSG_SENDER : SQL_DELETE_MSG);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	sql__bind_i64(s, 3, (int64_t)id);
	if (!tracked) {
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "delete message");
		*deleted = (uint64_t)sql__changes(b);
		return PARLEY_OK;
	}
	int sr = sql__step(s);
	*deleted = 0;
	if (sr == SQL_ROW) {
		sql__share_moved(b, j->account_id, j->device_id, (uint64_t)sql__col_i64(s, 0), -1);
		*deleted = 1;
		sr = sql__step(s); /* RETURNING: run the statement to its end */
	}
	sql__reset(s);
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "delete message");
}

int sql__ack(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	m->n_deleted = 0;
	for (size_t i = 0; i < m->n_ids; i++) {
		uint64_t deleted = 0;
		int rc = delete_acked(b, j, m->ids[i], sql__share_tracked(b, j->account_id, j->device_id), &deleted);
		if (rc != PARLEY_OK)
			return rc;
		m->n_deleted += deleted;
	}
	if (m->n_deleted == 0)
		return PARLEY_OK;
	return bump_queue(b, j->account_id, j->device_id, -(int64_t)m->n_deleted);
}

int sql__purge_expired(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	sql_stmt *s = sql__stmt(b, SQL_PURGE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->now_ms);
	sql__bind_i64(s, 2, m->limit ? m->limit : PURGE_LIMIT_DEFAULT);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "purge");
	m->n_deleted = (uint64_t)sql__changes(b);
	if (m->n_deleted == 0)
		return PARLEY_OK;
	sql__share_clear(b); /* rows of any queue went: rescan tallied queues when next needed */
	s = sql__stmt(b, SQL_RECOUNT);
	if (s == NULL)
		return PARLEY_E_STORE;
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "recount queues");
}

/* One more connection closed with envelope `id` pushed and not acknowledged. *count = its total. 0 when
 * the envelope is gone (acked meanwhile, or another device's id). */
static int count_redelivery(store_be *b, const store_job *j, uint64_t id, int64_t *count)
{
	sql_stmt *s = sql__stmt(b, SQL_REDELIVERED);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	sql__bind_i64(s, 3, (int64_t)id);
	int sr = sql__step(s);
	*count = sr == SQL_ROW ? sql__col_i64(s, 0) : 0;
	if (sr == SQL_ROW)
		sr = sql__step(s); /* RETURNING: run the statement to its end */
	sql__reset(s);
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "count redelivery");
}

/* Moves envelope id to the back of its queue: a copy under a new id (deliveries 0), then the delete.
 * The queue length does not change. */
static int requeue(store_be *b, const store_job *j, uint64_t id)
{
	sql_stmt *s = sql__stmt(b, SQL_REQUEUE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)id);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "requeue");
	/* a group envelope keeps its thread under the new id */
	if ((s = sql__stmt(b, SQL_REQUEUE_THREAD)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)id);
	sql__bind_i64(s, 2, sql__last_id(b));
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "requeue thread");
	s = sql__stmt(b, SQL_DELETE_MSG);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	sql__bind_i64(s, 3, (int64_t)id);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "requeue delete");
}

int sql__redelivered(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	int rc = PARLEY_OK;
	m->n_deleted = 0;
	for (size_t i = 0; i < m->n_ids && rc == PARLEY_OK; i++) {
		int64_t count = 0;
		rc = count_redelivery(b, j, m->ids[i], &count);
		if (rc == PARLEY_OK && m->limit > 0 && count >= (int64_t)m->limit) {
			rc = requeue(b, j, m->ids[i]);
			m->n_deleted++;
		}
	}
	return rc;
}
