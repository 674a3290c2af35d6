/* Signed device lists on the client (docs/protocol.md §11): per account (peers and this account
 * itself) the pinned account key and the highest verified list, in client.db's peer_lists.
 *
 *  - pinning: the first key seen for a handle is pinned (trust on first use); this account's own key
 *    is the one in account_key. A different key later means the peer re-registered: it is kept as
 *    pending_ak and everything is refused with UNTRUSTED_IDENTITY until parley_trust(handle).
 *  - versions only go up: a lower one than kept is DEVICE_LIST_ROLLBACK; the same version must be the
 *    same record.
 *  - a device is usable only if the kept list names it with that identity key: DEVICE_NOT_LISTED.
 * A newer list raises on_devices_changed with what was added and removed, and devices that left it are
 * forgotten as recipients. */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

typedef struct peer_row {
	int found;
	uint8_t ak[33];
	uint64_t version;
	uint8_t *list; /* parley__malloc'd record, or NULL */
	size_t list_len;
} peer_row;

static int row_load(parley_client *c, const char *handle, peer_row *r)
{
	sqlite3_stmt *st = NULL;
	memset(r, 0, sizeof(*r));
	int rc = client__sql_prep(c, "SELECT account_key, version, list FROM peer_lists WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 33) {
		r->found = 1;
		memcpy(r->ak, sqlite3_column_blob(st, 0), 33);
		r->version = (uint64_t)sqlite3_column_int64(st, 1);
		size_t n = (size_t)sqlite3_column_bytes(st, 2);
		if (n > 0 && n <= WIRE_DEVLIST_MAX_BYTES) {
			r->list = parley__malloc(n);
			if (r->list == NULL) {
				sqlite3_finalize(st);
				return PARLEY_E_NOMEM;
			}
			memcpy(r->list, sqlite3_column_blob(st, 2), n);
			r->list_len = n;
		}
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

static int row_save(parley_client *c, const char *handle, const wire_devlist *l, const uint8_t *rec, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  "INSERT INTO peer_lists (handle, account_id, account_key, pinned_ms, version, list)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(handle) DO UPDATE SET"
				  " account_id = ?2, account_key = ?3, version = ?5, list = ?6, pending_ak = NULL",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)l->account_id);
	sqlite3_bind_blob(st, 3, l->account_key, 33, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)client__now_ms());
	sqlite3_bind_int64(st, 5, (sqlite3_int64)l->version);
	sqlite3_bind_blob(st, 6, rec, (int)len, SQLITE_STATIC);
	return client__sql_done(c, st);
}

static int set_pending(parley_client *c, const char *handle, const uint8_t ak[33])
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "UPDATE peer_lists SET pending_ak = ? WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_blob(st, 1, ak, 33, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

int client__peer_trust_key(parley_client *c, const char *handle, int *changed)
{
	sqlite3_stmt *st = NULL;
	/* the pending key becomes the pinned one; its lists start over (a new account: version 1 again) */
	int rc = client__sql_prep(c,
				  "UPDATE peer_lists SET account_key = pending_ak, pending_ak = NULL, version = 0,"
				  " list = NULL WHERE handle = ? AND pending_ak IS NOT NULL",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = client__sql_done(c, st);
	if (changed != NULL)
		*changed = rc == PARLEY_OK && sqlite3_changes(client__state_db(c->state)) > 0;
	return rc;
}

int client__peer_pending_key(parley_client *c, const char *handle, uint8_t ak[33], int *found)
{
	sqlite3_stmt *st = NULL;
	*found = 0;
	int rc = client__sql_prep(c, "SELECT pending_ak FROM peer_lists WHERE handle = ? AND pending_ak IS NOT NULL",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 33) {
		memcpy(ak, sqlite3_column_blob(st, 0), 33);
		*found = 1;
	}
	sqlite3_finalize(st);
	return PARLEY_OK;
}

int client__peer_pinned_key(parley_client *c, const char *handle, uint8_t ak[33], int *found)
{
	peer_row r;
	int rc;
	*found = 0;
	if (strcmp(handle, c->account.handle) == 0) {
		rc = client__akey_load(c, ak, NULL, NULL);
		*found = rc == PARLEY_OK;
		return rc == PARLEY_E_NOT_FOUND ? PARLEY_OK : rc;
	}
	rc = row_load(c, handle, &r);
	if (rc == PARLEY_OK && r.found) {
		memcpy(ak, r.ak, 33);
		*found = 1;
	}
	parley__free(r.list);
	return rc;
}

/* Devices of old that are not in l: counted, and forgotten as recipients (their sessions stay, as for
 * any device that stops being one: see send.c). */
static void diff(parley_client *c, const char *handle, const wire_devlist *old, const wire_devlist *l,
		 size_t *added, size_t *removed)
{
	*added = *removed = 0;
	for (size_t i = 0; i < l->n; i++)
		*added += wire__devlist_find(old, l->dev[i].device_id) == NULL;
	for (size_t i = 0; i < old->n; i++) {
		if (wire__devlist_find(l, old->dev[i].device_id) == NULL) {
			(*removed)++;
			(void)client__e2e_peer_forget(c, handle, old->dev[i].device_id);
		}
	}
}

int client__peer_check_list(parley_client *c, const char *handle, const uint8_t *rec, size_t len,
			    wire_devlist *out)
{
	peer_row r;
	uint8_t own[33];
	int self = strcmp(handle, c->account.handle) == 0, have_own = 0;
	int rc;

	if (len == 0) {
		client__set_err(c, "%s has no signed device list (an account from before device lists, whose "
				   "primary device has not connected since)", handle);
		return PARLEY_E_NO_DEVICE_LIST;
	}
	rc = wire__devlist_verify(rec, len, out);
	if (rc == PARLEY_OK && strcmp(out->handle, handle) != 0)
		rc = PARLEY_E_DEVICE_LIST_INVALID; /* a list of another account */
	if (rc != PARLEY_OK) {
		client__set_err(c, "the signed device list of %s is invalid", handle);
		return rc;
	}
	rc = row_load(c, handle, &r);
	if (rc != PARLEY_OK)
		return rc;
	if (self) {
		/* our own key is known from registration or the server's auth answer, never pinned here */
		rc = client__akey_load(c, own, NULL, NULL);
		have_own = rc == PARLEY_OK;
		if (rc == PARLEY_E_NOT_FOUND)
			rc = PARLEY_OK;
	}
	const uint8_t *pinned = have_own ? own : r.found ? r.ak : NULL;
	if (rc == PARLEY_OK && pinned != NULL && memcmp(pinned, out->account_key, 33) != 0) {
		if (!self)
			(void)set_pending(c, handle, out->account_key);
		client__set_err(c, "the account key of %s has changed (the account was registered again): compare "
				   "the safety number (parley safety-number %s), then accept it with: parley trust %s",
				handle, handle, handle);
		rc = PARLEY_E_UNTRUSTED_IDENTITY;
	} else if (rc == PARLEY_OK && r.found && out->version < r.version) {
		client__set_err(c, "the server sent device list version %llu of %s, older than version %llu seen "
				   "before: refused",
				(unsigned long long)out->version, handle, (unsigned long long)r.version);
		rc = PARLEY_E_DEVICE_LIST_ROLLBACK;
	} else if (rc == PARLEY_OK && r.found && out->version == r.version) {
		/* one version, one record: two different lists under one number are a fork */
		if (r.list_len != len || memcmp(r.list, rec, len) != 0) {
			client__set_err(c, "two different device lists of %s carry version %llu", handle,
					(unsigned long long)out->version);
			rc = PARLEY_E_DEVICE_LIST_ROLLBACK;
		}
	} else if (rc == PARLEY_OK) {
		wire_devlist *old = parley__calloc(1, sizeof(*old));
		int had = old != NULL && r.list != NULL && wire__devlist_verify(r.list, r.list_len, old) == PARLEY_OK;
		rc = row_save(c, handle, out, rec, len);
		if (rc == PARLEY_OK && had) {
			size_t added, removed;
			diff(c, handle, old, out, &added, &removed);
			if ((added || removed) && c->ev.on_devices_changed != NULL)
				c->ev.on_devices_changed(c, handle, out->version, added, removed, c->ev.user);
		}
		parley__free(old);
	}
	parley__free(r.list);
	return rc;
}

int client__peer_kept_list(parley_client *c, const char *handle, wire_devlist *out, int *found)
{
	peer_row r;
	*found = 0;
	int rc = row_load(c, handle, &r);
	if (rc == PARLEY_OK && r.list != NULL && wire__devlist_verify(r.list, r.list_len, out) == PARLEY_OK)
		*found = 1;
	parley__free(r.list);
	return rc;
}

int client__peer_device_listed(const wire_devlist *l, const char *handle, uint32_t device,
			       const uint8_t *identity_key, parley_client *c)
{
	const wire_devlist_entry *e = wire__devlist_find(l, device);
	if (e != NULL && (identity_key == NULL || memcmp(e->identity_key, identity_key, 33) == 0))
		return PARLEY_OK;
	client__set_err(c, "device %u of %s is not in the device list signed by its account key: it was not "
			   "added by the account (or the server added it); nothing was encrypted to it",
			(unsigned)device, handle);
	return PARLEY_E_DEVICE_NOT_LISTED;
}

int client__peer_listed_now(parley_client *c, const char *handle, uint32_t device)
{
	wire_devlist *l = parley__malloc(sizeof(*l));
	int found = 0, rc;

	if (l == NULL)
		return PARLEY_E_NOMEM;
	rc = client__peer_kept_list(c, handle, l, &found);
	if (rc == PARLEY_OK && !found) {
		client__set_err(c, "no verified device list of %s is known here yet", handle);
		rc = PARLEY_E_NO_DEVICE_LIST;
	}
	if (rc == PARLEY_OK)
		rc = client__peer_device_listed(l, handle, device, NULL, c);
	parley__free(l);
	return rc;
}

/* ---- fetching a sender's list (receive side) ---- */

#define LIST_FETCH_GAP_MS 5000

#define LIST_FETCH_SLOTS (sizeof(((parley_client *)0)->list_fetch) / sizeof(((parley_client *)0)->list_fetch[0]))

static int fetch_slot(parley_client *c, const char *handle)
{
	for (size_t i = 0; i < LIST_FETCH_SLOTS; i++)
		if (strcmp(c->list_fetch[i].handle, handle) == 0)
			return (int)i;
	return -1;
}

typedef struct fetch_op {
	client_op op;
	Parley__Wire__GetDeviceListRequest req;
	char handle[PARLEY_HANDLE_MAX + 1];
} fetch_op;

static int build_fetch(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	fetch_op *f = CLIENT_OP_OWNER(op, fetch_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_GET_DEVICE_LIST;
	req->get_device_list = &f->req;
	return PARLEY_OK;
}

static void complete_fetch(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	fetch_op *f = CLIENT_OP_OWNER(op, fetch_op, op);
	wire_devlist *l = parley__malloc(sizeof(*l));
	int slot = fetch_slot(c, f->handle);
	if (slot >= 0) {
		c->list_fetch[slot].inflight = 0;
		c->list_fetch[slot].at_ms = client__now_ms();
	}
	if (status == PARLEY_OK && l != NULL) {
		/* whatever the answer (a newer list, none, a bad one), the quarantined envelopes are judged
		 * again: the ones of devices still not listed stay, and are reported now (the guard keeps
		 * this from fetching again) */
		(void)client__peer_check_list(c, f->handle, r->get_device_list->signed_device_list.data,
					      r->get_device_list->signed_device_list.len, l);
		if (client__quarantine_mark(c, f->handle) == PARLEY_OK)
			client__recv_retry_quarantine(c);
	}
	parley__free(l);
	parley__free(f);
}

static const client_op_vtable fetch_vt = {build_fetch, complete_fetch, PARLEY__WIRE__RESPONSE__BODY_GET_DEVICE_LIST,
					  0};

/* 1 if handle's list was fetched within LIST_FETCH_GAP_MS (*inflight: its answer is still awaited);
 * else records a fetch now (in flight) and returns 0. */
static int fetched_lately(parley_client *c, const char *handle, int *inflight)
{
	uint64_t now = client__now_ms();
	int i = fetch_slot(c, handle);
	*inflight = 0;
	if (i >= 0 && (c->list_fetch[i].inflight || now - c->list_fetch[i].at_ms < LIST_FETCH_GAP_MS)) {
		*inflight = c->list_fetch[i].inflight;
		return 1;
	}
	unsigned k = i >= 0 ? (unsigned)i : c->list_fetch_next++ % LIST_FETCH_SLOTS;
	snprintf(c->list_fetch[k].handle, sizeof(c->list_fetch[k].handle), "%s", handle);
	c->list_fetch[k].at_ms = now;
	c->list_fetch[k].inflight = 1;
	return 0;
}

/* Queues a GetDeviceList for handle (fetched_lately recorded it in flight); 1 if queued. */
static int submit_fetch(parley_client *c, const char *handle)
{
	fetch_op *f = parley__calloc(1, sizeof(*f));
	if (f == NULL) {
		c->list_fetch[fetch_slot(c, handle)].inflight = 0;
		return 0;
	}
	f->op.vt = &fetch_vt;
	snprintf(f->handle, sizeof(f->handle), "%s", handle);
	parley__wire__get_device_list_request__init(&f->req);
	f->req.handle = f->handle;
	client__conn_submit(c, &f->op);
	return 1;
}

int client__peer_check_sender(parley_client *c, const char *handle, uint32_t device, const uint8_t *identity_key,
			      int *fetching)
{
	wire_devlist *l = parley__malloc(sizeof(*l));
	int found = 0, rc;

	*fetching = 0;
	if (l == NULL)
		return PARLEY_E_NOMEM;
	rc = client__peer_kept_list(c, handle, l, &found);
	if (rc == PARLEY_OK)
		rc = found ? client__peer_device_listed(l, handle, device, identity_key, c) : PARLEY_E_DEVICE_NOT_LISTED;
	parley__free(l);
	if (rc == PARLEY_E_DEVICE_NOT_LISTED && fetched_lately(c, handle, fetching) == 0)
		*fetching = submit_fetch(c, handle);
	/* the account registered again and its new key waits for parley_trust: that is what the user must
	 * hear of (the new key's list names the device), not an unlisted device */
	if (rc == PARLEY_E_DEVICE_NOT_LISTED && !*fetching) {
		uint8_t ak[33];
		int pending = 0;
		if (client__peer_pending_key(c, handle, ak, &pending) == PARLEY_OK && pending) {
			client__set_err(c, "the account key of %s has changed (the account was registered again): "
					   "compare the safety number, then accept it with: parley trust %s",
					handle, handle);
			rc = PARLEY_E_UNTRUSTED_IDENTITY;
		}
	}
	return rc;
}

void client__peer_refetch(parley_client *c, const char *handle)
{
	int inflight = 0, slot = fetch_slot(c, handle);

	if (slot >= 0 && !c->list_fetch[slot].inflight)
		c->list_fetch[slot].at_ms = 0; /* the guard does not hold back a fetch for a new key */
	if (fetched_lately(c, handle, &inflight) == 0)
		(void)submit_fetch(c, handle);
}
