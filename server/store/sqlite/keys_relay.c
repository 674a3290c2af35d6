/* SQLite ops of the key server and the relay. Schema: migration 2 in sqlite.c. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"
#include "store/sqlite/sqlite_ext.h"

#define MODULE "store"
#define MAX_PEERS_DEFAULT 1024u

enum kst {
	K_GET_KEYS,
	K_INSERT_KEYS,
	K_UPDATE_SPK,
	K_PUT_PREKEY,
	K_COUNT_PREKEYS,
	K_POP_PREKEY,
	K_ACCOUNT_BY_HANDLE,
	K_LIST_KEYS,
	K_INSERT_MSG,
	K_BUMP_QUEUE,
	K_THREAD,
	K_FETCH,
	K_DELETE_MSG,
	K_PURGE,
	K_RECOUNT,
	K_PEERS,
	K_HAS_THREAD,
	K__COUNT
};

static const char *const ksql[K__COUNT] = {
	[K_GET_KEYS] = "SELECT registration_id, identity_key, spk_id FROM device_keys"
		       " WHERE account_id = ?1 AND device_id = ?2",
	[K_INSERT_KEYS] = "INSERT INTO device_keys(account_id, device_id, registration_id, identity_key, spk_id,"
			  " spk_pub, spk_sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[K_UPDATE_SPK] = "UPDATE device_keys SET spk_id = ?3, spk_pub = ?4, spk_sig = ?5"
			 " WHERE account_id = ?1 AND device_id = ?2",
	[K_PUT_PREKEY] = "INSERT OR REPLACE INTO prekeys(account_id, device_id, key_id, pub) VALUES (?1, ?2, ?3, ?4)",
	[K_COUNT_PREKEYS] = "SELECT count(*) FROM prekeys WHERE account_id = ?1 AND device_id = ?2",
	/* select and delete in one statement: inside the store thread's single writer, a prekey can be
	 * returned to exactly one fetch */
	[K_POP_PREKEY] = "DELETE FROM prekeys WHERE account_id = ?1 AND device_id = ?2 AND key_id ="
			 " (SELECT min(key_id) FROM prekeys WHERE account_id = ?1 AND device_id = ?2)"
			 " RETURNING key_id, pub",
	[K_ACCOUNT_BY_HANDLE] = "SELECT id FROM accounts WHERE handle = ?1",
	[K_LIST_KEYS] = "SELECT device_id, registration_id, identity_key, spk_id, spk_pub, spk_sig, queue_len"
			" FROM device_keys WHERE account_id = ?1 ORDER BY device_id",
	[K_INSERT_MSG] = "INSERT INTO messages(account_id, device_id, sender_account, sender_device, sender_handle,"
			 " type, client_ts, server_ts, expires_ms, content)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[K_BUMP_QUEUE] = "UPDATE device_keys SET queue_len = max(queue_len + ?3, 0)"
			 " WHERE account_id = ?1 AND device_id = ?2",
	[K_THREAD] = "INSERT OR IGNORE INTO threads(a, b) VALUES (?1, ?2)",
	[K_FETCH] = "SELECT id, sender_account, sender_device, sender_handle, type, client_ts, server_ts, content"
		    " FROM messages WHERE account_id = ?1 AND device_id = ?2 AND id > ?3 AND expires_ms > ?4"
		    " ORDER BY id LIMIT ?5",
	[K_DELETE_MSG] = "DELETE FROM messages WHERE id = ?3 AND account_id = ?1 AND device_id = ?2",
	[K_PURGE] = "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE expires_ms <= ?1 LIMIT ?2)",
	[K_RECOUNT] = "UPDATE device_keys SET queue_len = (SELECT count(*) FROM messages m"
		      " WHERE m.account_id = device_keys.account_id AND m.device_id = device_keys.device_id)"
		      " WHERE queue_len > 0",
	[K_PEERS] = "SELECT b FROM threads WHERE a = ?1 UNION ALL SELECT a FROM threads WHERE b = ?1 LIMIT ?2",
	[K_HAS_THREAD] = "SELECT 1 FROM threads WHERE a = ?1 AND b = ?2",
};

struct sqlite_ext {
	sqlite3 *db;
	sqlite3_stmt *st[K__COUNT];
};

int sqlite_ext__new(sqlite3 *db, sqlite_ext **out)
{
	sqlite_ext *x = parley__calloc(1, sizeof(*x));
	if (x == NULL)
		return PARLEY_E_NOMEM;
	x->db = db;
	*out = x;
	return PARLEY_OK;
}

void sqlite_ext__free(sqlite_ext *x)
{
	if (x == NULL)
		return;
	for (int i = 0; i < K__COUNT; i++)
		sqlite3_finalize(x->st[i]);
	parley__free(x);
}

static int db_error(sqlite_ext *x, const char *what)
{
	log_error(MODULE, "sqlite %s: %s", what, sqlite3_errmsg(x->db));
	return PARLEY_E_STORE;
}

/* Prepared on first use, reset before being handed out so callers may return early freely. */
static sqlite3_stmt *st(sqlite_ext *x, enum kst id)
{
	if (x->st[id] == NULL &&
	    sqlite3_prepare_v3(x->db, ksql[id], -1, SQLITE_PREPARE_PERSISTENT, &x->st[id], NULL) != SQLITE_OK) {
		(void)db_error(x, "prepare");
		return NULL;
	}
	sqlite3_reset(x->st[id]);
	sqlite3_clear_bindings(x->st[id]);
	return x->st[id];
}

static int done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc;
}

static void col_blob(sqlite3_stmt *s, int col, uint8_t *dst, size_t n)
{
	const void *p = sqlite3_column_blob(s, col);
	if (p != NULL && (size_t)sqlite3_column_bytes(s, col) == n)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

static int account_by_handle(sqlite_ext *x, const char *handle, uint64_t *id)
{
	sqlite3_stmt *s = st(x, K_ACCOUNT_BY_HANDLE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return PARLEY_OK;
	return rc == SQLITE_DONE ? PARLEY_E_NO_SUCH_ACCOUNT : db_error(x, "account by handle");
}

static int count_prekeys(sqlite_ext *x, uint64_t account, uint32_t device, uint32_t *n)
{
	sqlite3_stmt *s = st(x, K_COUNT_PREKEYS);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)account);
	sqlite3_bind_int64(s, 2, device);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = (uint32_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? PARLEY_OK : db_error(x, "count prekeys");
}

/* --- key server --- */

static int op_upload_keys(sqlite_ext *x, store_job *j)
{
	store_keys_args *k = &j->keys;
	sqlite3_stmt *s = st(x, K_GET_KEYS);
	int exists = 0, rc;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(s, 2, j->device_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		uint8_t id[STORE_SIGNAL_KEY_LEN];
		exists = 1;
		col_blob(s, 1, id, sizeof(id));
		/* identity and registration id are fixed for the life of a device: a change would silently
		 * redirect everyone's sessions; a new identity means a new device */
		if ((uint32_t)sqlite3_column_int64(s, 0) != k->registration_id || memcmp(id, k->identity, sizeof(id)) != 0)
			rc = PARLEY_E_IDENTITY_KEY_SET;
		k->spk_id_out = (uint32_t)sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	if (rc == PARLEY_E_IDENTITY_KEY_SET)
		return rc;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(x, "get keys");
	if (!exists && !k->has_spk)
		return PARLEY_E_NO_KEYS; /* the first upload must carry a signed prekey */
	if (k->has_spk) {
		s = st(x, exists ? K_UPDATE_SPK : K_INSERT_KEYS);
		if (s == NULL)
			return PARLEY_E_STORE;
		sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
		sqlite3_bind_int64(s, 2, j->device_id);
		int o = exists ? 3 : 5; /* first spk parameter */
		if (!exists) {
			sqlite3_bind_int64(s, 3, k->registration_id);
			sqlite3_bind_blob(s, 4, k->identity, STORE_SIGNAL_KEY_LEN, SQLITE_STATIC);
		}
		sqlite3_bind_int64(s, o, k->spk_id);
		sqlite3_bind_blob(s, o + 1, k->spk_pub, STORE_SIGNAL_KEY_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(s, o + 2, k->spk_sig, STORE_SIG_LEN, SQLITE_STATIC);
		rc = done(s);
		if (rc == SQLITE_CONSTRAINT)
			return PARLEY_E_NO_SUCH_DEVICE; /* the device was removed meanwhile */
		if (rc != SQLITE_DONE)
			return db_error(x, "put signed prekey");
		k->spk_id_out = k->spk_id;
	}
	for (size_t i = 0; i < k->n_otks; i++) {
		s = st(x, K_PUT_PREKEY);
		if (s == NULL)
			return PARLEY_E_STORE;
		sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
		sqlite3_bind_int64(s, 2, j->device_id);
		sqlite3_bind_int64(s, 3, k->otks[i].id);
		sqlite3_bind_blob(s, 4, k->otks[i].pub, STORE_SIGNAL_KEY_LEN, SQLITE_STATIC);
		if (done(s) != SQLITE_DONE)
			return db_error(x, "put prekey");
	}
	rc = count_prekeys(x, j->account_id, j->device_id, &k->remaining);
	if (rc != PARLEY_OK)
		return rc;
	/* the savepoint rolls the whole upload back: a full pool takes none of the batch */
	if (k->pool_max != 0 && k->remaining > k->pool_max)
		return PARLEY_E_PREKEY_POOL_FULL;
	return PARLEY_OK;
}

static int op_prekey_count(sqlite_ext *x, store_job *j)
{
	sqlite3_stmt *s = st(x, K_GET_KEYS);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(s, 2, j->device_id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		j->keys.spk_id_out = (uint32_t)sqlite3_column_int64(s, 2);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(x, "get keys");
	return count_prekeys(x, j->account_id, j->device_id, &j->keys.remaining);
}

static int pop_prekey(sqlite_ext *x, uint64_t account, store_bundle *b)
{
	sqlite3_stmt *s = st(x, K_POP_PREKEY);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)account);
	sqlite3_bind_int64(s, 2, b->device_id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		b->has_otk = 1;
		b->otk.id = (uint32_t)sqlite3_column_int64(s, 0);
		col_blob(s, 1, b->otk.pub, STORE_SIGNAL_KEY_LEN);
		rc = sqlite3_step(s); /* finish the DELETE */
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_error(x, "pop prekey");
	return count_prekeys(x, account, b->device_id, &b->remaining);
}

static int op_get_bundles(sqlite_ext *x, store_job *j)
{
	store_keys_args *k = &j->keys;
	int rc = account_by_handle(x, j->handle, &j->account_id);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_stmt *s = st(x, K_LIST_KEYS);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
	size_t cap = 0;
	rc = PARLEY_OK;
	int sr;
	for (;;) {
		sr = sqlite3_step(s);
		if (sr != SQLITE_ROW)
			break;
		uint32_t dev = (uint32_t)sqlite3_column_int64(s, 0);
		if (j->device_id != 0 && dev != j->device_id)
			continue;
		if (k->n_bundles == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			store_bundle *nb = parley__realloc(k->bundles, ncap * sizeof(*nb));
			if (nb == NULL) {
				rc = PARLEY_E_NOMEM;
				break;
			}
			k->bundles = nb;
			cap = ncap;
		}
		store_bundle *b = &k->bundles[k->n_bundles++];
		memset(b, 0, sizeof(*b));
		b->device_id = dev;
		b->registration_id = (uint32_t)sqlite3_column_int64(s, 1);
		col_blob(s, 2, b->identity, STORE_SIGNAL_KEY_LEN);
		b->spk_id = (uint32_t)sqlite3_column_int64(s, 3);
		col_blob(s, 4, b->spk_pub, STORE_SIGNAL_KEY_LEN);
		col_blob(s, 5, b->spk_sig, STORE_SIG_LEN);
	}
	if (rc == PARLEY_OK && sr != SQLITE_DONE)
		rc = db_error(x, "list keys");
	sqlite3_reset(s);
	if (rc != PARLEY_OK)
		return rc;
	if (k->n_bundles == 0)
		return j->device_id != 0 ? PARLEY_E_NO_SUCH_DEVICE : PARLEY_E_NO_KEYS;
	for (size_t i = 0; i < k->n_bundles && rc == PARLEY_OK; i++)
		rc = pop_prekey(x, j->account_id, &k->bundles[i]);
	return rc;
}

/* --- relay --- */

struct expected {
	uint32_t device_id, registration_id, queue_len;
};

/* Compares the sender's list with the recipient's devices that have keys. Fills missing/extra/stale. */
static int check_devices(store_job *j, const struct expected *e, size_t ne)
{
	store_msg_args *m = &j->msg;
	for (size_t i = 0; i < ne; i++) {
		int found = 0;
		for (size_t k = 0; k < m->n_msgs && !found; k++)
			found = m->msgs[k].device_id == e[i].device_id;
		if (!found && m->n_missing < 64)
			m->missing[m->n_missing++] = e[i].device_id;
	}
	for (size_t k = 0; k < m->n_msgs; k++) {
		const struct expected *hit = NULL;
		for (size_t i = 0; i < ne && hit == NULL; i++)
			if (e[i].device_id == m->msgs[k].device_id)
				hit = &e[i];
		if (hit == NULL) {
			if (m->n_extra < 64)
				m->extra[m->n_extra++] = m->msgs[k].device_id;
		} else if (hit->registration_id != m->msgs[k].registration_id && m->n_stale < 64) {
			m->stale[m->n_stale++] = m->msgs[k].device_id;
		}
	}
	if (m->n_missing || m->n_extra)
		return PARLEY_E_MISMATCHED_DEVICES;
	return m->n_stale ? PARLEY_E_STALE_DEVICES : PARLEY_OK;
}

static int load_expected(sqlite_ext *x, store_job *j, struct expected *e, size_t cap, size_t *n)
{
	sqlite3_stmt *s = st(x, K_LIST_KEYS);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)j->msg.recipient_account);
	*n = 0;
	for (;;) {
		sr = sqlite3_step(s);
		if (sr != SQLITE_ROW)
			break;
		uint32_t dev = (uint32_t)sqlite3_column_int64(s, 0);
		/* sending to one's own account: the sending device is not a recipient */
		if (j->msg.recipient_account == j->account_id && dev == j->device_id)
			continue;
		if (*n < cap) {
			e[*n].device_id = dev;
			e[*n].registration_id = (uint32_t)sqlite3_column_int64(s, 1);
			e[*n].queue_len = (uint32_t)sqlite3_column_int64(s, 6);
			(*n)++;
		}
	}
	sqlite3_reset(s);
	return sr == SQLITE_DONE ? PARLEY_OK : db_error(x, "list keys");
}

static int insert_msg(sqlite_ext *x, store_job *j, store_out_msg *o)
{
	store_msg_args *m = &j->msg;
	sqlite3_stmt *s = st(x, K_INSERT_MSG);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)m->recipient_account);
	sqlite3_bind_int64(s, 2, o->device_id);
	sqlite3_bind_int64(s, 3, (int64_t)j->account_id);
	sqlite3_bind_int64(s, 4, j->device_id);
	sqlite3_bind_text(s, 5, m->sender_handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, o->type);
	sqlite3_bind_int64(s, 7, (int64_t)m->client_ts);
	sqlite3_bind_int64(s, 8, (int64_t)j->now_ms);
	sqlite3_bind_int64(s, 9, (int64_t)m->expires_ms);
	sqlite3_bind_blob(s, 10, o->content, (int)o->content_len, SQLITE_STATIC);
	if (done(s) != SQLITE_DONE)
		return db_error(x, "insert message");
	o->server_id = (uint64_t)sqlite3_last_insert_rowid(x->db);
	s = st(x, K_BUMP_QUEUE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)m->recipient_account);
	sqlite3_bind_int64(s, 2, o->device_id);
	sqlite3_bind_int64(s, 3, 1);
	return done(s) == SQLITE_DONE ? PARLEY_OK : db_error(x, "bump queue");
}

static int op_send(sqlite_ext *x, store_job *j)
{
	store_msg_args *m = &j->msg;
	struct expected e[64];
	size_t ne = 0;
	int rc = account_by_handle(x, j->handle, &m->recipient_account);
	if (rc == PARLEY_OK)
		rc = load_expected(x, j, e, 64, &ne);
	if (rc == PARLEY_OK)
		rc = check_devices(j, e, ne);
	if (rc != PARLEY_OK)
		return rc;
	for (size_t k = 0; k < m->n_msgs; k++)
		for (size_t i = 0; i < ne; i++)
			if (e[i].device_id == m->msgs[k].device_id && e[i].queue_len >= m->queue_limit)
				return PARLEY_E_QUEUE_FULL; /* all or nothing: no device gets a partial send */
	for (size_t k = 0; k < m->n_msgs && rc == PARLEY_OK; k++)
		rc = insert_msg(x, j, &m->msgs[k]);
	if (rc == PARLEY_OK && m->recipient_account != j->account_id) {
		sqlite3_stmt *s = st(x, K_THREAD);
		if (s == NULL)
			return PARLEY_E_STORE;
		uint64_t a = j->account_id < m->recipient_account ? j->account_id : m->recipient_account;
		uint64_t b = j->account_id < m->recipient_account ? m->recipient_account : j->account_id;
		sqlite3_bind_int64(s, 1, (int64_t)a);
		sqlite3_bind_int64(s, 2, (int64_t)b);
		if (done(s) != SQLITE_DONE)
			rc = db_error(x, "thread");
	}
	return rc;
}

static int op_fetch_queue(sqlite_ext *x, store_job *j)
{
	store_msg_args *m = &j->msg;
	sqlite3_stmt *s = st(x, K_FETCH);
	int sr, rc = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	if (m->limit == 0)
		return PARLEY_OK;
	m->envs = parley__calloc(m->limit, sizeof(*m->envs));
	if (m->envs == NULL)
		return PARLEY_E_NOMEM;
	sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(s, 2, j->device_id);
	sqlite3_bind_int64(s, 3, (int64_t)m->after_id);
	sqlite3_bind_int64(s, 4, (int64_t)j->now_ms);
	sqlite3_bind_int64(s, 5, m->limit);
	for (;;) {
		sr = sqlite3_step(s);
		if (sr != SQLITE_ROW || m->n_envs >= m->limit)
			break;
		store_envelope *e = &m->envs[m->n_envs];
		const unsigned char *h = sqlite3_column_text(s, 3);
		int n = sqlite3_column_bytes(s, 7);
		e->server_id = (uint64_t)sqlite3_column_int64(s, 0);
		e->sender_account = (uint64_t)sqlite3_column_int64(s, 1);
		e->sender_device = (uint32_t)sqlite3_column_int64(s, 2);
		if (h != NULL)
			snprintf(e->sender_handle, sizeof(e->sender_handle), "%s", (const char *)h);
		e->type = (uint32_t)sqlite3_column_int64(s, 4);
		e->client_ts = (uint64_t)sqlite3_column_int64(s, 5);
		e->server_ts = (uint64_t)sqlite3_column_int64(s, 6);
		e->content = parley__malloc(n > 0 ? (size_t)n : 1);
		if (e->content == NULL) {
			rc = PARLEY_E_NOMEM;
			break;
		}
		if (n > 0)
			memcpy(e->content, sqlite3_column_blob(s, 7), (size_t)n);
		e->content_len = (size_t)n;
		m->n_envs++;
	}
	if (rc == PARLEY_OK && sr != SQLITE_DONE && sr != SQLITE_ROW)
		rc = db_error(x, "fetch queue");
	sqlite3_reset(s);
	return rc;
}

static int op_ack(sqlite_ext *x, store_job *j)
{
	store_msg_args *m = &j->msg;
	m->n_deleted = 0;
	for (size_t i = 0; i < m->n_ids; i++) {
		sqlite3_stmt *s = st(x, K_DELETE_MSG);
		if (s == NULL)
			return PARLEY_E_STORE;
		sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
		sqlite3_bind_int64(s, 2, j->device_id);
		sqlite3_bind_int64(s, 3, (int64_t)m->ids[i]);
		if (done(s) != SQLITE_DONE)
			return db_error(x, "delete message");
		m->n_deleted += (uint64_t)sqlite3_changes(x->db);
	}
	if (m->n_deleted == 0)
		return PARLEY_OK;
	sqlite3_stmt *s = st(x, K_BUMP_QUEUE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(s, 2, j->device_id);
	sqlite3_bind_int64(s, 3, -(int64_t)m->n_deleted);
	return done(s) == SQLITE_DONE ? PARLEY_OK : db_error(x, "queue length");
}

static int op_purge(sqlite_ext *x, store_job *j)
{
	sqlite3_stmt *s = st(x, K_PURGE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)j->now_ms);
	sqlite3_bind_int64(s, 2, j->msg.limit ? j->msg.limit : 10000);
	if (done(s) != SQLITE_DONE)
		return db_error(x, "purge");
	j->msg.n_deleted = (uint64_t)sqlite3_changes(x->db);
	if (j->msg.n_deleted == 0)
		return PARLEY_OK;
	s = st(x, K_RECOUNT);
	if (s == NULL)
		return PARLEY_E_STORE;
	return done(s) == SQLITE_DONE ? PARLEY_OK : db_error(x, "recount queues");
}

static int op_thread_peers(sqlite_ext *x, store_job *j)
{
	store_msg_args *m = &j->msg;
	unsigned limit = m->limit ? m->limit : MAX_PEERS_DEFAULT;
	sqlite3_stmt *s = st(x, K_PEERS);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	m->peers = parley__calloc(limit, sizeof(*m->peers));
	if (m->peers == NULL)
		return PARLEY_E_NOMEM;
	sqlite3_bind_int64(s, 1, (int64_t)j->account_id);
	sqlite3_bind_int64(s, 2, limit);
	for (;;) {
		sr = sqlite3_step(s);
		if (sr != SQLITE_ROW || m->n_peers >= limit)
			break;
		m->peers[m->n_peers++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	return (sr == SQLITE_DONE || sr == SQLITE_ROW) ? PARLEY_OK : db_error(x, "thread peers");
}

static int op_find_peer(sqlite_ext *x, store_job *j)
{
	uint64_t peer = 0;
	int rc = account_by_handle(x, j->handle, &peer);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_stmt *s = st(x, K_HAS_THREAD);
	if (s == NULL)
		return PARLEY_E_STORE;
	sqlite3_bind_int64(s, 1, (int64_t)(j->account_id < peer ? j->account_id : peer));
	sqlite3_bind_int64(s, 2, (int64_t)(j->account_id < peer ? peer : j->account_id));
	int sr = sqlite3_step(s);
	sqlite3_reset(s);
	if (sr != SQLITE_ROW && sr != SQLITE_DONE)
		return db_error(x, "has thread");
	j->msg.shared = sr == SQLITE_ROW;
	j->msg.recipient_account = peer;
	return PARLEY_OK;
}

int sqlite_ext__run(sqlite_ext *x, store_job *j)
{
	switch (j->op) {
	case STORE_OP_UPLOAD_KEYS:
		return op_upload_keys(x, j);
	case STORE_OP_PREKEY_COUNT:
		return op_prekey_count(x, j);
	case STORE_OP_GET_BUNDLES:
		return op_get_bundles(x, j);
	case STORE_OP_SEND:
		return op_send(x, j);
	case STORE_OP_FETCH_QUEUE:
		return op_fetch_queue(x, j);
	case STORE_OP_ACK:
		return op_ack(x, j);
	case STORE_OP_PURGE_EXPIRED:
		return op_purge(x, j);
	case STORE_OP_THREAD_PEERS:
		return op_thread_peers(x, j);
	case STORE_OP_FIND_PEER:
		return op_find_peer(x, j);
	default:
		return PARLEY_E_UNSUPPORTED;
	}
}
