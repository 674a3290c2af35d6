/* The local end-to-end store and key bundles:
 *   - signal.db: the Signal store (identity, sessions, prekeys), a second 0600 file next to client.db.
 *     It is a separate file because, before the shared migration helper, both stores versioned their
 *     schema with PRAGMA user_version, which one file could hold for only one of them; existing devices
 *     keep their Signal state there.
 *   - tables of client.db used here (created by its schema, state.c): peer_devices (devices of other
 *     accounts we have sessions with, and their registration ids, which the relay checks),
 *     pending_keys (changed identity keys waiting for the user), received_ids (server ids of
 *     envelopes handed to the application, for duplicate detection; never content).
 *   - fetching key bundles from the server and setting up sessions from them (X3DH), for send.c and
 *     trust.c.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define SIGNAL_DB_NAME "signal.db"
#define RECEIVED_KEEP_MS (45ull * 24 * 3600 * 1000)

uint64_t client__e2e_timestamp(parley_client *c)
{
	uint64_t t = client__now_ms();
	if (t <= c->last_timestamp)
		t = c->last_timestamp + 1;
	c->last_timestamp = t;
	return t;
}

static sqlite3 *db(parley_client *c)
{
	return client__state_db(c->state);
}

int client__sql_err(parley_client *c)
{
	client__set_err(c, "client.db: %s", sqlite3_errmsg(db(c)));
	return PARLEY_E_STORE;
}

int client__sql_prep(parley_client *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db(c), sql, -1, st, NULL) != SQLITE_OK)
		return client__sql_err(c);
	return PARLEY_OK;
}

int client__sql_done(parley_client *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__e2e_open(parley_client *c)
{
	char path[PATH_MAX];
	sqlite3_stmt *st = NULL;
	int rc;

	if (c->sig != NULL)
		return PARLEY_OK;
	rc = client__ensure_key(c, 1); /* opens the state directory */
	if (rc != PARLEY_OK)
		return rc;
	/* Duplicate detection only matters while the server may still redeliver: envelopes live at most
	 * message_ttl (30 days by default) there. Keep ids a little longer, then forget them. */
	if (client__sql_prep(c, "DELETE FROM received_ids WHERE seen_ms < ?", &st) == PARLEY_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(client__now_ms() - RECEIVED_KEEP_MS));
		client__sql_done(c, st);
	}
	if (snprintf(path, sizeof(path), "%s/%s", c->state_dir, SIGNAL_DB_NAME) >= (int)sizeof(path))
		return PARLEY_E_TOO_LARGE;
	rc = client__check_private_file(path, c->errmsg, sizeof(c->errmsg));
	if (rc != PARLEY_OK && rc != PARLEY_E_NOT_FOUND)
		return rc;
	rc = parley_signal_sqlite_open(&c->sigdb, path);
	if (rc != PARLEY_OK) {
		client__set_err(c, "cannot open %s: %s", path, parley_strerror(rc));
		return rc;
	}
	parley_signal_sqlite_store(c->sigdb, &c->sigstore);
	rc = parley_signal_ctx_new(&c->sig, &c->sigstore);
	if (rc != PARLEY_OK) {
		parley_signal_sqlite_close(c->sigdb);
		c->sigdb = NULL;
	}
	return rc;
}

void client__e2e_close(parley_client *c)
{
	parley_signal_ctx_free(c->sig);
	parley_signal_sqlite_close(c->sigdb);
	c->sig = NULL;
	c->sigdb = NULL;
}

int client__e2e_begin(parley_client *c, const char *handle)
{
	int rc = client__check_handle(c, handle);
	if (rc == PARLEY_OK)
		rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__e2e_open(c);
	return rc;
}

/* ---- peers ---- */

int client__e2e_peer_set(parley_client *c, const char *handle, uint32_t device, uint32_t regid)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  "INSERT OR REPLACE INTO peer_devices (handle, device_id, registration_id) VALUES (?, ?, ?)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	sqlite3_bind_int64(st, 3, regid);
	return client__sql_done(c, st);
}

int client__e2e_peer_drop(parley_client *c, const char *handle, uint32_t device)
{
	parley_signal_address a = {handle, device};
	int rc = parley_signal_session_delete(c->sig, &a);
	return rc == PARLEY_OK ? client__e2e_peer_forget(c, handle, device) : rc;
}

int client__e2e_peer_forget(parley_client *c, const char *handle, uint32_t device)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "DELETE FROM peer_devices WHERE handle = ? AND device_id = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	return client__sql_done(c, st);
}

int client__e2e_peer_devices(parley_client *c, const char *handle, uint32_t *ids, uint32_t *regids, size_t max,
			     size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	rc = client__sql_prep(c, "SELECT device_id, registration_id FROM peer_devices WHERE handle = ? ORDER BY device_id",
			      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	for (rc = sqlite3_step(st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
		parley_signal_address a = {handle, (uint32_t)sqlite3_column_int64(st, 0)};
		int exists = 0;
		if (parley_signal_session_exists(c->sig, &a, &exists) != PARLEY_OK || !exists)
			continue; /* session lost: treated as a missing device, re-fetched on mismatch */
		if (*n == max)
			break;
		ids[*n] = a.device_id;
		regids[*n] = (uint32_t)sqlite3_column_int64(st, 1);
		(*n)++;
	}
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__e2e_pending_identity(parley_client *c, const char *handle, uint32_t device,
				 const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN])
{
	sqlite3_stmt *st = NULL;
	/* REPLACE gives a key seen again a new rowid: the bound below forgets the keys seen longest ago. */
	int rc = client__sql_prep(c,
				  "INSERT OR REPLACE INTO pending_keys (handle, device_id, key, seen_ms)"
				  " VALUES (?, ?, ?, ?)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	sqlite3_bind_blob(st, 3, key, PARLEY_SIGNAL_PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)client__now_ms());
	rc = client__sql_done(c, st);
	/* Every claimed key is kept for the user to choose from, so a stranger's forged ones cannot hide
	 * the real one; bounded per handle like that handle's quarantine. */
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "DELETE FROM pending_keys WHERE handle = ?1 AND rowid NOT IN (SELECT rowid FROM"
				      " pending_keys WHERE handle = ?1 ORDER BY rowid DESC LIMIT ?2)",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, c->quarantine_per_sender);
	return client__sql_done(c, st);
}

int client__e2e_accept_identity(parley_client *c, const char *handle, uint32_t device,
				const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN])
{
	parley_signal_address a = {handle, device};
	sqlite3_stmt *st = NULL;
	int rc = parley_signal_trust_identity(c->sig, &a, key);
	/* the old session was built on the old key: the next message starts over from a bundle */
	if (rc == PARLEY_OK)
		rc = client__e2e_peer_drop(c, handle, device);
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "DELETE FROM pending_keys WHERE handle = ? AND device_id = ? AND key = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	sqlite3_bind_blob(st, 3, key, PARLEY_SIGNAL_PUBKEY_LEN, SQLITE_STATIC);
	return client__sql_done(c, st);
}

int client__e2e_accept_listed(parley_client *c, const char *handle, uint32_t device,
			      const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN])
{
	parley_signal_address a = {handle, device};
	uint8_t have[PARLEY_SIGNAL_PUBKEY_LEN];
	int rc = parley_signal_remote_identity(c->sig, &a, have);

	if (rc == PARLEY_E_NOT_FOUND || (rc == PARLEY_OK && memcmp(have, key, sizeof(have)) == 0))
		return PARLEY_OK; /* first contact (trusted on first use anyway) or the same key */
	return rc != PARLEY_OK ? rc : client__e2e_accept_identity(c, handle, device, key);
}

int client__e2e_seen(parley_client *c, uint64_t server_id, int record, int *seen)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  record ? "INSERT OR IGNORE INTO received_ids (server_id, seen_ms) VALUES (?, ?)"
					 : "SELECT 1 FROM received_ids WHERE server_id = ?",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)server_id);
	if (record)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)client__now_ms());
	rc = sqlite3_step(st);
	*seen = rc == SQLITE_ROW;
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

/* ---- bundles ---- */

/* No device enters the encryption set unless the account key vouches for it (docs/protocol.md §11):
 * the response's signed list must verify against the pinned key and version, and name every device
 * of the response with its identity key. Anything else refuses the whole send (nothing is encrypted
 * to anyone) and fires on_error, so the application can warn. */
int client__e2e_check_bundles(parley_client *c, const char *handle, const Parley__Wire__GetBundlesResponse *r)
{
	wire_devlist *l = parley__malloc(sizeof(*l));
	uint32_t bad = 0;
	int rc;

	if (l == NULL)
		return PARLEY_E_NOMEM;
	rc = client__peer_check_list(c, handle, r->signed_device_list.data, r->signed_device_list.len, l);
	for (size_t i = 0; rc == PARLEY_OK && i < r->n_bundles; i++) {
		const Parley__Wire__PreKeyBundle *b = r->bundles[i];
		if (b->identity_key.len != PARLEY_SIGNAL_PUBKEY_LEN) {
			rc = PARLEY_E_INVALID_KEY;
			break;
		}
		rc = client__peer_device_listed(l, handle, b->device_id, b->identity_key.data, c);
		if (rc != PARLEY_OK)
			bad = b->device_id;
	}
	parley__free(l);
	if (rc != PARLEY_OK && rc != PARLEY_E_NOMEM && rc != PARLEY_E_STORE && c->ev.on_error != NULL)
		c->ev.on_error(c, (parley_err)rc, handle, bad, c->ev.user);
	return rc;
}

/* X3DH with one device's bundle; remembers the device. */
static int process_bundle(parley_client *c, const char *handle, const Parley__Wire__PreKeyBundle *b)
{
	parley_prekey_bundle pb;
	parley_signal_address a = {handle, b->device_id};
	int rc;

	memset(&pb, 0, sizeof(pb));
	if (b->device_id == 0 || b->identity_key.len != PARLEY_SIGNAL_PUBKEY_LEN || b->signed_prekey == NULL ||
	    b->signed_prekey->public_key.len != PARLEY_SIGNAL_PUBKEY_LEN ||
	    b->signed_prekey->signature.len != PARLEY_SIGNAL_SIGNATURE_LEN ||
	    (b->one_time_prekey != NULL && b->one_time_prekey->public_key.len != PARLEY_SIGNAL_PUBKEY_LEN)) {
		client__set_err(c, "server sent a malformed key bundle for %s device %u", handle, (unsigned)b->device_id);
		return PARLEY_E_INVALID_KEY;
	}
	pb.registration_id = b->registration_id;
	pb.device_id = b->device_id;
	memcpy(pb.identity_key, b->identity_key.data, PARLEY_SIGNAL_PUBKEY_LEN);
	pb.signed_prekey_id = b->signed_prekey->id;
	memcpy(pb.signed_prekey_pub, b->signed_prekey->public_key.data, PARLEY_SIGNAL_PUBKEY_LEN);
	memcpy(pb.signed_prekey_sig, b->signed_prekey->signature.data, PARLEY_SIGNAL_SIGNATURE_LEN);
	if (b->one_time_prekey != NULL) {
		pb.has_prekey = 1;
		pb.prekey_id = b->one_time_prekey->id;
		memcpy(pb.prekey_pub, b->one_time_prekey->public_key.data, PARLEY_SIGNAL_PUBKEY_LEN);
	}
	/* check_bundles (process_bundles' first step) verified that the list signed by the trusted account
	 * key names this device with this identity key: the account key vouches for it, even when it
	 * replaces a key seen before (the account registered again, §11.3) */
	rc = client__e2e_accept_listed(c, handle, b->device_id, pb.identity_key);
	if (rc == PARLEY_OK)
		rc = parley_signal_process_bundle(c->sig, &a, &pb);
	if (rc == PARLEY_E_UNTRUSTED_IDENTITY) {
		client__e2e_pending_identity(c, handle, b->device_id, pb.identity_key);
		client__set_err(c, "the identity key of %s (device %u) has changed: compare the safety number "
				   "(parley safety-number %s), then accept it with: parley trust %s",
				handle, (unsigned)b->device_id, handle, handle);
		return rc;
	}
	if (rc != PARLEY_OK) {
		client__set_err(c, "key bundle of %s device %u refused: %s", handle, (unsigned)b->device_id,
				parley_strerror(rc));
		return rc;
	}
	return client__e2e_peer_set(c, handle, b->device_id, b->registration_id);
}

int client__e2e_process_bundles(parley_client *c, const char *handle, const Parley__Wire__GetBundlesResponse *r,
				int stop_on_untrusted)
{
	int own = strcmp(handle, c->account.handle) == 0;
	size_t i;
	int rc = client__e2e_check_bundles(c, handle, r);

	if (rc != PARLEY_OK)
		return rc;
	for (i = 0; i < r->n_bundles; i++) {
		const Parley__Wire__PreKeyBundle *b = r->bundles[i];
		parley_signal_address a = {handle, b->device_id};
		int exists = 0;

		if (own && b->device_id == c->account.device_id)
			continue;
		/* A fetch of every device also returns devices we already talk to: keep those sessions. */
		if (parley_signal_session_exists(c->sig, &a, &exists) == PARLEY_OK && exists)
			continue;
		rc = process_bundle(c, handle, b);
		if (rc == PARLEY_E_UNTRUSTED_IDENTITY && !stop_on_untrusted)
			continue; /* recorded as pending: the safety number shows it */
		if (rc == PARLEY_E_UNTRUSTED_IDENTITY && c->ev.on_identity_changed != NULL)
			c->ev.on_identity_changed(c, handle, b->device_id, c->ev.user);
		if (rc != PARLEY_OK)
			return rc;
	}
	return PARLEY_OK;
}

typedef struct bundles_op {
	client_op op;
	Parley__Wire__GetBundlesRequest req;
	char handle[PARLEY_HANDLE_MAX + 1];
	client_bundles_cb cb;
	void *ctx;
} bundles_op;

static int build_bundles(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	bundles_op *b = CLIENT_OP_OWNER(op, bundles_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req->get_bundles = &b->req;
	return PARLEY_OK;
}

static void complete_bundles(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	bundles_op *b = CLIENT_OP_OWNER(op, bundles_op, op);

	if (status == PARLEY_E_NO_SUCH_ACCOUNT)
		client__set_err(c, "no account %s", b->handle);
	b->cb(c, status, status == PARLEY_OK ? r->get_bundles : NULL, b->ctx);
	parley__free(b);
}

static const client_op_vtable bundles_vt = {build_bundles, complete_bundles, PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES,
					    0};

int client__e2e_fetch_bundles(parley_client *c, const char *handle, uint32_t device, client_bundles_cb cb,
			      void *ctx)
{
	bundles_op *b = parley__calloc(1, sizeof(*b));
	if (b == NULL)
		return PARLEY_E_NOMEM;
	b->op.vt = &bundles_vt;
	snprintf(b->handle, sizeof(b->handle), "%s", handle);
	parley__wire__get_bundles_request__init(&b->req);
	b->req.handle = b->handle;
	b->req.device_id = device;
	b->cb = cb;
	b->ctx = ctx;
	client__conn_submit(c, &b->op);
	return PARLEY_OK;
}
