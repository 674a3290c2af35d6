/* Store, accounts and devices: the acct ops of STORE_OPS (job->acct). Schema: migration 1 in
 * engine.c. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/sql.h"
#include "wire/devlist.h"

static const char SQL_INSERT_ACCOUNT[] = "INSERT INTO accounts(handle, created_ms, next_device_id, account_key)"
					 " VALUES (?1, ?2, 2, ?3)";
static const char SQL_INSERT_DEVICE[] = "INSERT INTO devices(account_id, device_id, name, pubkey, created_ms,"
					" last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_ACCOUNT_BY_HANDLE[] = "SELECT id FROM accounts WHERE handle = ?1";
static const char SQL_NEXT_DEVICE_ID[] = "SELECT next_device_id FROM accounts WHERE id = ?1";
static const char SQL_BUMP_DEVICE_ID[] = "UPDATE accounts SET next_device_id = next_device_id + 1 WHERE id = ?1";
static const char SQL_GET_DEVICE[] = "SELECT device_id, name, pubkey, created_ms, last_seen_ms FROM devices"
				     " WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_LIST_DEVICES[] = "SELECT device_id, name, pubkey, created_ms, last_seen_ms FROM devices"
				       " WHERE account_id = ?1 ORDER BY device_id";
static const char SQL_COUNT_DEVICES[] = "SELECT count(*) FROM devices WHERE account_id = ?1";
static const char SQL_DELETE_DEVICE[] = "DELETE FROM devices WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_TOUCH_DEVICE[] = "UPDATE devices SET last_seen_ms = ?3 WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_DEVICE_EXISTS[] = "SELECT 1 FROM devices WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_FIND_DEVICE[] = "SELECT d.device_id, d.name, d.pubkey, d.created_ms, d.last_seen_ms, a.id,"
				      " a.account_key"
				      " FROM accounts a JOIN devices d ON d.account_id = a.id"
				      " WHERE a.handle = ?1 AND d.device_id = ?2";

static void read_device(sql_stmt *st, store_device *d)
{
	const unsigned char *name = sql__col_text(st, 1);
	memset(d, 0, sizeof(*d));
	d->device_id = (uint32_t)sql__col_i64(st, 0);
	if (name != NULL)
		snprintf(d->name, sizeof(d->name), "%s", (const char *)name);
	sql__col_blob_n(st, 2, d->key, STORE_KEY_LEN);
	d->created_ms = (uint64_t)sql__col_i64(st, 3);
	d->last_seen_ms = (uint64_t)sql__col_i64(st, 4);
}

int sql__account_by_handle(store_be *b, const char *handle, uint64_t *id)
{
	sql_stmt *st = sql__stmt(b, SQL_ACCOUNT_BY_HANDLE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(st, 1, handle, -1);
	int rc = sql__step(st);
	if (rc == SQL_ROW)
		*id = (uint64_t)sql__col_i64(st, 0);
	sql__reset(st);
	if (rc == SQL_ROW)
		return PARLEY_OK;
	return rc == SQL_DONE ? PARLEY_E_NO_SUCH_ACCOUNT : sql__error(b, "account by handle");
}

/* One device: by (account_id, device_id), or by (handle, device_id) which also fills j->account_id.
 * -> j->acct.device. */
static int one_device(store_be *b, store_job *j, int by_handle)
{
	sql_stmt *st = sql__stmt(b, by_handle ? SQL_FIND_DEVICE : SQL_GET_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	if (by_handle)
		sql__bind_text(st, 1, j->handle, -1);
	else
		sql__bind_i64(st, 1, (int64_t)j->account_id);
	sql__bind_i64(st, 2, j->device_id);
	int rc = sql__step(st);
	int ret = PARLEY_E_NO_SUCH_DEVICE;
	if (rc == SQL_ROW) {
		read_device(st, &j->acct.device);
		if (by_handle) {
			j->account_id = (uint64_t)sql__col_i64(st, 5);
			j->acct.has_account_key = sql__col_bytes(st, 6) == 33;
			sql__col_blob_n(st, 6, j->acct.account_key, 33);
		}
		ret = PARLEY_OK;
	} else if (rc != SQL_DONE) {
		ret = sql__error(b, by_handle ? "find device" : "get device");
	}
	sql__reset(st);
	return ret;
}

static int insert_device(store_be *b, store_job *j, uint32_t device_id)
{
	sql_stmt *st = sql__stmt(b, SQL_INSERT_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	sql__bind_i64(st, 2, device_id);
	sql__bind_text(st, 3, j->acct.device_name, -1);
	sql__bind_blob(st, 4, j->acct.key, STORE_KEY_LEN);
	sql__bind_i64(st, 5, (int64_t)j->now_ms);
	int rc = sql__step_done(st);
	if (rc == SQL_CONSTRAINT)
		return PARLEY_E_DEVICE_KEY_IN_USE; /* the only unique key a new (account, id) can hit */
	if (rc != SQL_DONE)
		return sql__error(b, "insert device");
	return PARLEY_OK;
}

int sql__create_account(store_be *b, store_job *j)
{
	/* accounts and entities share one handle namespace (a customer must not mistake one for the other) */
	if (sql__entity_handle_taken(b, j->handle))
		return PARLEY_E_HANDLE_TAKEN;
	sql_stmt *st = sql__stmt(b, SQL_INSERT_ACCOUNT);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_text(st, 1, j->handle, -1);
	sql__bind_i64(st, 2, (int64_t)j->now_ms);
	if (j->acct.has_account_key)
		sql__bind_blob(st, 3, j->acct.account_key, 33);
	else
		sql__bind_null(st, 3);
	int rc = sql__step_done(st);
	if (rc == SQL_CONSTRAINT)
		return PARLEY_E_HANDLE_TAKEN;
	if (rc != SQL_DONE)
		return sql__error(b, "insert account");
	j->account_id = (uint64_t)sql__last_id(b);
	j->device_id = 1;
	return insert_device(b, j, 1);
}

int sql__get_account(store_be *b, store_job *j)
{
	return sql__account_by_handle(b, j->handle, &j->account_id);
}

int sql__get_device(store_be *b, store_job *j)
{
	return one_device(b, j, 0);
}

/* Auth's lookup in one query: handle + device id -> account id and the device's public key. */
int sql__find_device(store_be *b, store_job *j)
{
	return one_device(b, j, 1);
}

int sql__list_devices(store_be *b, store_job *j)
{
	store_acct_args *a = &j->acct;
	sql_stmt *st = sql__stmt(b, SQL_LIST_DEVICES);
	size_t cap = 0;
	int ret = PARLEY_OK, rc;
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	for (;;) {
		rc = sql__step(st);
		if (rc != SQL_ROW)
			break;
		if (a->n_devices == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			store_device *nd = parley__realloc(a->devices, ncap * sizeof(*nd));
			if (nd == NULL) {
				ret = PARLEY_E_NOMEM;
				break;
			}
			a->devices = nd;
			cap = ncap;
		}
		read_device(st, &a->devices[a->n_devices++]);
	}
	if (ret == PARLEY_OK && rc != SQL_DONE)
		ret = sql__error(b, "list devices");
	sql__reset(st);
	if (ret == PARLEY_OK)
		ret = sql__read_devlist(b, j->account_id, &a->devlist, &a->devlist_len);
	return ret;
}

int sql__add_device(store_be *b, store_job *j)
{
	int64_t next = 0, count = 0;
	int rc = sql__query_int(b, SQL_NEXT_DEVICE_ID, (int64_t)j->account_id, 0, &next);
	if (rc == SQL_DONE)
		return PARLEY_E_NO_SUCH_ACCOUNT;
	if (rc != SQL_ROW)
		return sql__error(b, "next device id");
	if (sql__query_int(b, SQL_COUNT_DEVICES, (int64_t)j->account_id, 0, &count) != SQL_ROW)
		return sql__error(b, "count devices");
	if (count >= (int64_t)b->max_devices)
		return PARLEY_E_TOO_MANY_DEVICES;
	if (next <= 0 || next > UINT32_MAX)
		return PARLEY_E_TOO_MANY_DEVICES; /* ids exhausted: never reuse one */
	int ret = insert_device(b, j, (uint32_t)next);
	if (ret != PARLEY_OK)
		return ret;
	sql_stmt *st = sql__stmt(b, SQL_BUMP_DEVICE_ID);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	if (sql__step_done(st) != SQL_DONE)
		return sql__error(b, "bump device id");
	j->device_id = (uint32_t)next;
	return PARLEY_OK;
}

int sql__remove_device(store_be *b, store_job *j)
{
	int64_t count = 0, dummy = 0;
	int rc = sql__query_int(b, SQL_GET_DEVICE, (int64_t)j->account_id, j->device_id, &dummy);
	if (rc == SQL_DONE)
		return PARLEY_E_NO_SUCH_DEVICE;
	if (rc != SQL_ROW)
		return sql__error(b, "get device");
	if (sql__query_int(b, SQL_COUNT_DEVICES, (int64_t)j->account_id, 0, &count) != SQL_ROW)
		return sql__error(b, "count devices");
	if (count <= 1)
		return PARLEY_E_LAST_DEVICE;
	sql_stmt *st = sql__stmt(b, SQL_DELETE_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	sql__bind_i64(st, 2, j->device_id);
	if (sql__step_done(st) != SQL_DONE)
		return sql__error(b, "delete device");
	sql__share_clear(b); /* its queue went with it (ON DELETE CASCADE) */
	return PARLEY_OK;
}

int sql__touch_device(store_be *b, store_job *j)
{
	sql_stmt *st = sql__stmt(b, SQL_TOUCH_DEVICE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	sql__bind_i64(st, 2, j->device_id);
	sql__bind_i64(st, 3, (int64_t)j->now_ms);
	if (sql__step_done(st) != SQL_DONE)
		return sql__error(b, "touch device");
	return sql__changes(b) > 0 ? PARLEY_OK : PARLEY_E_NO_SUCH_DEVICE;
}

/* Reads only caller_account / caller_device and writes nothing into the job, so it can run before any
 * op of any domain (store.c run_job). */
int sql__check_caller(store_be *b, store_job *j)
{
	int64_t one = 0;
	int rc = sql__query_int(b, SQL_DEVICE_EXISTS, (int64_t)j->caller_account, j->caller_device, &one);
	if (rc == SQL_ROW)
		return PARLEY_OK;
	return rc == SQL_DONE ? PARLEY_E_DEVICE_REMOVED : sql__error(b, "check caller");
}

/* --- signed device lists (docs/protocol.md §11) --- */

static const char SQL_ACCOUNT_KEY[] = "SELECT account_key FROM accounts WHERE id = ?1";
static const char SQL_SET_ACCOUNT_KEY[] = "UPDATE accounts SET account_key = ?2 WHERE id = ?1 AND account_key IS NULL";
static const char SQL_ACCOUNT_HANDLE[] = "SELECT handle FROM accounts WHERE id = ?1";
static const char SQL_GET_DEVLIST[] = "SELECT version, list FROM device_lists WHERE account_id = ?1";
static const char SQL_PUT_DEVLIST[] = "INSERT INTO device_lists(account_id, version, list, updated_ms)"
				      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(account_id) DO UPDATE SET"
				      " version = excluded.version, list = excluded.list, updated_ms = excluded.updated_ms";
static const char SQL_DEVICE_KEYS[] = "SELECT d.pubkey, k.identity_key FROM devices d LEFT JOIN device_keys k"
				      " ON k.account_id = d.account_id AND k.device_id = d.device_id"
				      " WHERE d.account_id = ?1 AND d.device_id = ?2";

int sql__read_devlist(store_be *b, uint64_t account_id, uint8_t **out, size_t *len)
{
	sql_stmt *st = sql__stmt(b, SQL_GET_DEVLIST);
	int ret = PARLEY_OK;
	*out = NULL;
	*len = 0;
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)account_id);
	int rc = sql__step(st);
	if (rc == SQL_ROW) {
		size_t n = (size_t)sql__col_bytes(st, 1);
		/* a row this server wrote is never larger; anything else is not served */
		if (n > 0 && n <= WIRE_DEVLIST_MAX_BYTES) {
			*out = parley__malloc(n);
			if (*out == NULL) {
				ret = PARLEY_E_NOMEM;
			} else {
				memcpy(*out, sql__col_blob(st, 1), n);
				*len = n;
			}
		}
	} else if (rc != SQL_DONE) {
		ret = sql__error(b, "get device list");
	}
	sql__reset(st);
	return ret;
}

/* The account's key -> ak; *has = 0 when it has none (registered before account keys). */
static int account_key(store_be *b, uint64_t account_id, uint8_t ak[33], int *has)
{
	sql_stmt *st = sql__stmt(b, SQL_ACCOUNT_KEY);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)account_id);
	int rc = sql__step(st), ret = PARLEY_OK;
	*has = 0;
	if (rc == SQL_ROW) {
		*has = sql__col_bytes(st, 0) == 33;
		sql__col_blob_n(st, 0, ak, 33);
	} else {
		ret = rc == SQL_DONE ? PARLEY_E_NO_SUCH_ACCOUNT : sql__error(b, "account key");
	}
	sql__reset(st);
	return ret;
}

int sql__get_devlist(store_be *b, store_job *j)
{
	int rc = sql__account_by_handle(b, j->handle, &j->account_id);
	if (rc == PARLEY_OK)
		rc = account_key(b, j->account_id, j->acct.account_key, &j->acct.has_account_key);
	if (rc == PARLEY_OK)
		rc = sql__read_devlist(b, j->account_id, &j->acct.devlist, &j->acct.devlist_len);
	return rc;
}

/* Every listed device is a device of the account with that device key, and with that identity key
 * when it uploaded Signal keys: the list cannot name a device the server does not know (the client
 * could not send to it) nor give it a key the server hands out differently. */
static int check_listed(store_be *b, uint64_t account_id, const wire_devlist *l)
{
	sql_stmt *st = sql__stmt(b, SQL_DEVICE_KEYS);
	if (st == NULL)
		return PARLEY_E_STORE;
	int ret = PARLEY_OK;
	for (size_t i = 0; i < l->n && ret == PARLEY_OK; i++) {
		sql__bind_i64(st, 1, (int64_t)account_id);
		sql__bind_i64(st, 2, l->dev[i].device_id);
		int rc = sql__step(st);
		if (rc == SQL_ROW) {
			int ik = sql__col_bytes(st, 1) == 33;
			if (sql__col_bytes(st, 0) != STORE_KEY_LEN ||
			    memcmp(sql__col_blob(st, 0), l->dev[i].device_key, STORE_KEY_LEN) != 0 ||
			    (ik && memcmp(sql__col_blob(st, 1), l->dev[i].identity_key, 33) != 0))
				ret = PARLEY_E_DEVICE_LIST_INVALID;
		} else {
			ret = rc == SQL_DONE ? PARLEY_E_DEVICE_LIST_INVALID : sql__error(b, "device keys");
		}
		sql__reset(st);
	}
	return ret;
}

int sql__set_devlist(store_be *b, store_job *j)
{
	const wire_devlist *l = j->acct.parsed;
	uint8_t ak[33];
	int has = 0;
	if (l == NULL || j->acct.devlist == NULL)
		return PARLEY_E_INVAL;
	int rc = account_key(b, j->account_id, ak, &has);
	if (rc != PARLEY_OK)
		return rc;
	if (j->acct.set_key && has)
		return PARLEY_E_ACCOUNT_KEY_SET;
	if (!j->acct.set_key && (!has || memcmp(ak, l->account_key, 33) != 0))
		return PARLEY_E_DEVICE_LIST_INVALID; /* signed by another key than the account's */
	sql_stmt *st = sql__stmt(b, SQL_ACCOUNT_HANDLE);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	rc = sql__step(st);
	int same = rc == SQL_ROW && l->account_id == j->account_id &&
		   strcmp((const char *)sql__col_text(st, 0), l->handle) == 0;
	sql__reset(st);
	if (rc != SQL_ROW)
		return sql__error(b, "account handle");
	if (!same)
		return PARLEY_E_DEVICE_LIST_INVALID;
	int64_t version = 0;
	rc = sql__query_int(b, SQL_GET_DEVLIST, (int64_t)j->account_id, 0, &version);
	if (rc != SQL_ROW && rc != SQL_DONE)
		return sql__error(b, "device list version");
	if (rc == SQL_ROW && (uint64_t)version >= l->version)
		return PARLEY_E_DEVICE_LIST_ROLLBACK;
	rc = check_listed(b, j->account_id, l);
	if (rc != PARLEY_OK)
		return rc;
	if (j->acct.set_key) {
		st = sql__stmt(b, SQL_SET_ACCOUNT_KEY);
		if (st == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(st, 1, (int64_t)j->account_id);
		sql__bind_blob(st, 2, l->account_key, 33);
		if (sql__step_done(st) != SQL_DONE)
			return sql__error(b, "set account key");
	}
	st = sql__stmt(b, SQL_PUT_DEVLIST);
	if (st == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(st, 1, (int64_t)j->account_id);
	sql__bind_i64(st, 2, (int64_t)l->version);
	sql__bind_blob(st, 3, j->acct.devlist, (int)j->acct.devlist_len);
	sql__bind_i64(st, 4, (int64_t)j->now_ms);
	if (sql__step_done(st) != SQL_DONE)
		return sql__error(b, "put device list");
	return PARLEY_OK;
}
