/* Store, key server: the keys ops of STORE_OPS (job->keys). Schema: migration 2 in engine.c
 * (device_keys, prekeys). */
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/sql.h"

static const char SQL_GET_KEYS[] = "SELECT registration_id, identity_key, spk_id FROM device_keys"
				   " WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_INSERT_KEYS[] = "INSERT INTO device_keys(account_id, device_id, registration_id, identity_key,"
				      " spk_id, spk_pub, spk_sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_UPDATE_SPK[] = "UPDATE device_keys SET spk_id = ?3, spk_pub = ?4, spk_sig = ?5"
				     " WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_PUT_PREKEY[] = "INSERT INTO prekeys(account_id, device_id, key_id, pub) VALUES (?1, ?2, ?3, ?4)"
				     " ON CONFLICT(account_id, device_id, key_id) DO UPDATE SET pub = excluded.pub";
static const char SQL_COUNT_PREKEYS[] = "SELECT count(*) FROM prekeys WHERE account_id = ?1 AND device_id = ?2";
/* select and delete in one statement: inside the store thread's single writer, a prekey can be returned
 * to exactly one fetch */
static const char SQL_POP_PREKEY[] = "DELETE FROM prekeys WHERE account_id = ?1 AND device_id = ?2 AND key_id ="
				     " (SELECT min(key_id) FROM prekeys WHERE account_id = ?1 AND device_id = ?2)"
				     " RETURNING key_id, pub";
static const char SQL_GET_BUDGET[] = "SELECT otk_budget, otk_budget_ms FROM device_keys"
				     " WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_SET_BUDGET[] = "UPDATE device_keys SET otk_budget = ?3, otk_budget_ms = ?4"
				     " WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_HANDED[] = "INSERT INTO prekeys_handed(account_id, device_id, key_id, handed_ms)"
				 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(account_id, device_id, key_id)"
				 " DO UPDATE SET handed_ms = excluded.handed_ms";
static const char SQL_PRUNE_HANDED[] = "DELETE FROM prekeys_handed WHERE account_id = ?1 AND device_id = ?2"
				       " AND handed_ms < ?3";
static const char SQL_LIST_HANDED[] = "SELECT key_id FROM prekeys_handed WHERE account_id = ?1 AND device_id = ?2"
				      " AND handed_ms < ?3 ORDER BY handed_ms LIMIT ?4";
static const char SQL_LIST_KEYS[] = "SELECT device_id, registration_id, identity_key, spk_id, spk_pub, spk_sig"
				    " FROM device_keys WHERE account_id = ?1 ORDER BY device_id";

static int count_prekeys(store_be *b, uint64_t account, uint32_t device, uint32_t *n)
{
	int64_t v = 0;
	if (sql__query_int(b, SQL_COUNT_PREKEYS, (int64_t)account, device, &v) != SQL_ROW)
		return sql__error(b, "count prekeys");
	*n = (uint32_t)v;
	return PARLEY_OK;
}

/* The device's keys row, if any: *exists, and for an existing row whether its identity and
 * registration id are the job's (PARLEY_E_IDENTITY_KEY_SET when not) and its signed prekey id. */
static int get_keys(store_be *b, store_job *j, int check_identity, int *exists)
{
	store_keys_args *k = &j->keys;
	sql_stmt *s = sql__stmt(b, SQL_GET_KEYS);
	int ret = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	int rc = sql__step(s);
	*exists = rc == SQL_ROW;
	if (rc == SQL_ROW) {
		uint8_t id[STORE_SIGNAL_KEY_LEN];
		sql__col_blob_n(s, 1, id, sizeof(id));
		/* identity and registration id are fixed for the life of a device: a change would silently
		 * redirect everyone's sessions; a new identity means a new device */
		if (check_identity && ((uint32_t)sql__col_i64(s, 0) != k->registration_id ||
				       memcmp(id, k->identity, sizeof(id)) != 0))
			ret = PARLEY_E_IDENTITY_KEY_SET;
		k->spk_id_out = (uint32_t)sql__col_i64(s, 2);
	} else if (rc != SQL_DONE) {
		ret = sql__error(b, "get keys");
	}
	sql__reset(s);
	return ret;
}

static int put_signed_prekey(store_be *b, store_job *j, int exists)
{
	store_keys_args *k = &j->keys;
	sql_stmt *s = sql__stmt(b, exists ? SQL_UPDATE_SPK : SQL_INSERT_KEYS);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	int o = exists ? 3 : 5; /* first spk parameter */
	if (!exists) {
		sql__bind_i64(s, 3, k->registration_id);
		sql__bind_blob(s, 4, k->identity, STORE_SIGNAL_KEY_LEN);
	}
	sql__bind_i64(s, o, k->spk_id);
	sql__bind_blob(s, o + 1, k->spk_pub, STORE_SIGNAL_KEY_LEN);
	sql__bind_blob(s, o + 2, k->spk_sig, STORE_SIG_LEN);
	int rc = sql__step_done(s);
	if (rc == SQL_CONSTRAINT)
		return PARLEY_E_NO_SUCH_DEVICE; /* the device was removed meanwhile */
	if (rc != SQL_DONE)
		return sql__error(b, "put signed prekey");
	k->spk_id_out = k->spk_id;
	return PARLEY_OK;
}

/* Records of handed-out prekeys live until prune_before_ms (the device had a long window to hear about
 * them): bounded by what the device uploaded, and gone with the device (ON DELETE CASCADE). */
static int prune_handed(store_be *b, uint64_t account, uint32_t device, uint64_t prune_before_ms)
{
	if (prune_before_ms == 0)
		return PARLEY_OK;
	sql_stmt *s = sql__stmt(b, SQL_PRUNE_HANDED);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)account);
	sql__bind_i64(s, 2, device);
	sql__bind_i64(s, 3, (int64_t)prune_before_ms);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "prune handed prekeys");
}

int sql__upload_keys(store_be *b, store_job *j)
{
	store_keys_args *k = &j->keys;
	int exists = 0;
	int rc = get_keys(b, j, 1, &exists);
	if (rc != PARLEY_OK)
		return rc;
	if (!exists && !k->has_spk)
		return PARLEY_E_NO_KEYS; /* the first upload must carry a signed prekey */
	if (k->has_spk) {
		rc = put_signed_prekey(b, j, exists);
		if (rc != PARLEY_OK)
			return rc;
	}
	for (size_t i = 0; i < k->n_otks; i++) {
		sql_stmt *s = sql__stmt(b, SQL_PUT_PREKEY);
		if (s == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)j->account_id);
		sql__bind_i64(s, 2, j->device_id);
		sql__bind_i64(s, 3, k->otks[i].id);
		sql__bind_blob(s, 4, k->otks[i].pub, STORE_SIGNAL_KEY_LEN);
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "put prekey");
	}
	rc = count_prekeys(b, j->account_id, j->device_id, &k->remaining);
	if (rc == PARLEY_OK)
		rc = prune_handed(b, j->account_id, j->device_id, k->prune_before_ms);
	if (rc != PARLEY_OK)
		return rc;
	/* the savepoint rolls the whole upload back: a full pool takes none of the batch */
	if (k->pool_max != 0 && k->remaining > k->pool_max)
		return PARLEY_E_PREKEY_POOL_FULL;
	return PARLEY_OK;
}

/* The ids of this device's one-time prekeys handed out before forget_before_ms -> k->forget_ids. */
static int list_forget(store_be *b, store_job *j)
{
	store_keys_args *k = &j->keys;
	if (k->forget_before_ms == 0)
		return PARLEY_OK;
	sql_stmt *s = sql__stmt(b, SQL_LIST_HANDED);
	int rc = PARLEY_OK, sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	k->forget_ids = parley__calloc(STORE_MAX_FORGET, sizeof(*k->forget_ids));
	if (k->forget_ids == NULL)
		return PARLEY_E_NOMEM;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->device_id);
	sql__bind_i64(s, 3, (int64_t)k->forget_before_ms);
	sql__bind_i64(s, 4, STORE_MAX_FORGET);
	while ((sr = sql__step(s)) == SQL_ROW && k->n_forget < STORE_MAX_FORGET)
		k->forget_ids[k->n_forget++] = (uint32_t)sql__col_i64(s, 0);
	if (sr != SQL_ROW && sr != SQL_DONE)
		rc = sql__error(b, "list handed prekeys");
	sql__reset(s);
	return rc;
}

int sql__prekey_count(store_be *b, store_job *j)
{
	int exists = 0;
	int rc = get_keys(b, j, 0, &exists);
	if (rc == PARLEY_OK)
		rc = count_prekeys(b, j->account_id, j->device_id, &j->keys.remaining);
	if (rc == PARLEY_OK)
		rc = list_forget(b, j);
	return rc;
}

/* The device's budget level now (drained since its last update): *level. */
static int budget_level(store_be *b, const store_job *j, uint32_t device, double *level)
{
	const store_keys_args *k = &j->keys;
	sql_stmt *s = sql__stmt(b, SQL_GET_BUDGET);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, device);
	int rc = sql__step(s);
	*level = 0;
	if (rc == SQL_ROW) {
		uint64_t last = (uint64_t)sql__col_i64(s, 1);
		double dt = j->now_ms > last ? (double)(j->now_ms - last) : 0.0;
		*level = sql__col_double(s, 0) - dt * k->budget_per_ms;
		if (*level < 0)
			*level = 0;
	}
	sql__reset(s);
	return rc == SQL_ROW || rc == SQL_DONE ? PARLEY_OK : sql__error(b, "get prekey budget");
}

/* A one-time prekey was handed out: one token of the budget, and a record so the device learns of it
 * (PREKEY_COUNT) and can delete the private half once no message can use it any more. */
static int record_handout(store_be *b, const store_job *j, const store_bundle *bu, double level)
{
	sql_stmt *s = sql__stmt(b, SQL_SET_BUDGET);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, bu->device_id);
	sql__bind_double(s, 3, level + 1.0);
	sql__bind_i64(s, 4, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "set prekey budget");
	s = sql__stmt(b, SQL_HANDED);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, bu->device_id);
	sql__bind_i64(s, 3, bu->otk.id);
	sql__bind_i64(s, 4, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "record handed prekey");
	return prune_handed(b, j->account_id, bu->device_id, j->keys.prune_before_ms);
}

/* One one-time prekey for bu's device, if its pool has one and its budget allows: whoever asks, a
 * device hands out at most budget_capacity in a burst; beyond, the bundle carries the signed prekey
 * only (X3DH without the one-time DH: still authenticated and forward secret once the ratchet
 * turns, as libsignal does when a pool is empty). */
static int pop_prekey(store_be *b, const store_job *j, store_bundle *bu)
{
	const store_keys_args *k = &j->keys;
	double level = 0;
	int rc = PARLEY_OK;
	if (k->budget_capacity > 0) {
		rc = budget_level(b, j, bu->device_id, &level);
		if (rc != PARLEY_OK)
			return rc;
	}
	if (k->budget_capacity <= 0 || level + 1.0 <= k->budget_capacity) {
		sql_stmt *s = sql__stmt(b, SQL_POP_PREKEY);
		if (s == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)j->account_id);
		sql__bind_i64(s, 2, bu->device_id);
		int sr = sql__step(s);
		if (sr == SQL_ROW) {
			bu->has_otk = 1;
			bu->otk.id = (uint32_t)sql__col_i64(s, 0);
			sql__col_blob_n(s, 1, bu->otk.pub, STORE_SIGNAL_KEY_LEN);
			sr = sql__step(s); /* finish the DELETE */
		}
		sql__reset(s);
		if (sr != SQL_DONE)
			return sql__error(b, "pop prekey");
		if (bu->has_otk)
			rc = record_handout(b, j, bu, level);
	}
	if (rc != PARLEY_OK)
		return rc;
	return count_prekeys(b, j->account_id, bu->device_id, &bu->remaining);
}

/* The keys rows of j->account_id (all devices, or j->device_id only) -> k->bundles, without prekeys. */
static int list_bundles(store_be *b, store_job *j)
{
	store_keys_args *k = &j->keys;
	sql_stmt *s = sql__stmt(b, SQL_LIST_KEYS);
	size_t cap = 0;
	int rc = PARLEY_OK, sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	for (;;) {
		sr = sql__step(s);
		if (sr != SQL_ROW)
			break;
		uint32_t dev = (uint32_t)sql__col_i64(s, 0);
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
		store_bundle *bu = &k->bundles[k->n_bundles++];
		memset(bu, 0, sizeof(*bu));
		bu->device_id = dev;
		bu->registration_id = (uint32_t)sql__col_i64(s, 1);
		sql__col_blob_n(s, 2, bu->identity, STORE_SIGNAL_KEY_LEN);
		bu->spk_id = (uint32_t)sql__col_i64(s, 3);
		sql__col_blob_n(s, 4, bu->spk_pub, STORE_SIGNAL_KEY_LEN);
		sql__col_blob_n(s, 5, bu->spk_sig, STORE_SIG_LEN);
	}
	if (rc == PARLEY_OK && sr != SQL_DONE)
		rc = sql__error(b, "list keys");
	sql__reset(s);
	return rc;
}

int sql__get_bundles(store_be *b, store_job *j)
{
	store_keys_args *k = &j->keys;
	int rc = sql__account_by_handle(b, j->handle, &j->account_id);
	if (rc == PARLEY_OK)
		rc = list_bundles(b, j);
	if (rc != PARLEY_OK)
		return rc;
	if (k->n_bundles == 0)
		return j->device_id != 0 ? PARLEY_E_NO_SUCH_DEVICE : PARLEY_E_NO_KEYS;
	for (size_t i = 0; i < k->n_bundles && rc == PARLEY_OK; i++)
		rc = pop_prekey(b, j, &k->bundles[i]);
	/* with the list the sender checks every bundle against (docs/protocol.md §11), read in the same
	 * transaction so the two agree */
	if (rc == PARLEY_OK)
		rc = sql__read_devlist(b, j->account_id, &k->devlist, &k->devlist_len);
	return rc;
}
