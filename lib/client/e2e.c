/* The device's Signal identity and everything around it that is not a message:
 *   - signal.db: the Signal store (identity, sessions, prekeys), a second 0600 file next to client.db.
 *     It is a separate file because the Signal store versions its schema with PRAGMA user_version,
 *     which client.db already uses for its own tables: sharing one file would let one migration
 *     clobber the other's version number.
 *   - tables of client.db owned by this module: e2e_meta (prekey id counter, current signed prekey),
 *     peer_devices (devices of other accounts we have sessions with, and their registration ids, which
 *     the relay checks), pending_identity (changed identity keys waiting for the user), received_ids
 *     (server ids of envelopes handed to the application, for duplicate detection; never content).
 *   - key upload after register/link, refill when the server reports the pool low, weekly rotation of
 *     the signed prekey, trust decisions and safety numbers.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <parley/fingerprint.h>
#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define SIGNAL_DB_NAME "signal.db"
#define PREKEY_BATCH 100           /* server's per-upload maximum and our pool target */
#define PREKEY_LOW 20              /* refill below this when we check ourselves */
#define PREKEY_MAX_ID 0xFFFFFFu    /* libsignal's Medium::MAX_VALUE: ids wrap below it */
#define SPK_MAX_AGE_MS (7ull * 24 * 3600 * 1000)
#define RECEIVED_KEEP_MS (45ull * 24 * 3600 * 1000)

static const char e2e_schema[] =
	"CREATE TABLE IF NOT EXISTS e2e_meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  next_prekey_id INTEGER NOT NULL, spk_id INTEGER NOT NULL, spk_created_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS peer_devices (handle TEXT NOT NULL, device_id INTEGER NOT NULL,"
	"  registration_id INTEGER NOT NULL, PRIMARY KEY (handle, device_id));"
	"CREATE TABLE IF NOT EXISTS pending_identity (handle TEXT NOT NULL, device_id INTEGER NOT NULL,"
	"  key BLOB NOT NULL, seen_ms INTEGER NOT NULL, PRIMARY KEY (handle, device_id));"
	"CREATE TABLE IF NOT EXISTS received_ids (server_id INTEGER PRIMARY KEY, seen_ms INTEGER NOT NULL);";

static uint64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

uint64_t client__e2e_timestamp(parley_client *c)
{
	uint64_t t = now_ms();
	if (t <= c->last_timestamp)
		t = c->last_timestamp + 1;
	c->last_timestamp = t;
	return t;
}

static sqlite3 *db(parley_client *c)
{
	return client__state_db(c->state);
}

static int sql_err(parley_client *c)
{
	client__set_err(c, "client.db: %s", sqlite3_errmsg(db(c)));
	return PARLEY_E_STORE;
}

/* Prepares sql; on failure sets the message. */
static int prep(parley_client *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db(c), sql, -1, st, NULL) != SQLITE_OK)
		return sql_err(c);
	return PARLEY_OK;
}

static int step_done(parley_client *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? PARLEY_OK : sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__e2e_open(parley_client *c)
{
	char path[PATH_MAX];
	char *msg = NULL;
	int rc;

	if (c->sig != NULL)
		return PARLEY_OK;
	rc = client__ensure_key(c, 1); /* opens the state directory */
	if (rc != PARLEY_OK)
		return rc;
	if (sqlite3_exec(db(c), e2e_schema, NULL, NULL, &msg) != SQLITE_OK) {
		client__set_err(c, "client.db: %s", msg != NULL ? msg : "sqlite error");
		sqlite3_free(msg);
		return PARLEY_E_STORE;
	}
	/* Duplicate detection only matters while the server may still redeliver: envelopes live at most
	 * message_ttl (30 days by default) there. Keep ids a little longer, then forget them. */
	{
		sqlite3_stmt *st = NULL;
		if (prep(c, "DELETE FROM received_ids WHERE seen_ms < ?", &st) == PARLEY_OK) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)(now_ms() - RECEIVED_KEEP_MS));
			step_done(c, st);
		}
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

/* ---- local identity and meta ---- */

typedef struct e2e_meta {
	uint32_t next_prekey_id;
	uint32_t spk_id;
	uint64_t spk_created_ms;
} e2e_meta;

static int meta_load(parley_client *c, e2e_meta *m)
{
	sqlite3_stmt *st = NULL;
	int rc;

	m->next_prekey_id = 1;
	m->spk_id = 0;
	m->spk_created_ms = 0;
	rc = prep(c, "SELECT next_prekey_id, spk_id, spk_created_ms FROM e2e_meta WHERE id = 1", &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->next_prekey_id = (uint32_t)sqlite3_column_int64(st, 0);
		m->spk_id = (uint32_t)sqlite3_column_int64(st, 1);
		m->spk_created_ms = (uint64_t)sqlite3_column_int64(st, 2);
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_OK : sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

static int meta_save(parley_client *c, const e2e_meta *m)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(c,
		      "INSERT OR REPLACE INTO e2e_meta (id, next_prekey_id, spk_id, spk_created_ms) VALUES (1, ?, ?, ?)",
		      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, m->next_prekey_id);
	sqlite3_bind_int64(st, 2, m->spk_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)m->spk_created_ms);
	return step_done(c, st);
}

/* Creates the identity key pair and registration id on first use. */
static int ensure_identity(parley_client *c, parley_keypair *id, uint32_t *regid)
{
	int rc = c->sigstore.get_identity_keypair(c->sigstore.user, id);
	if (rc == PARLEY_OK)
		return c->sigstore.get_local_registration_id(c->sigstore.user, regid);
	if (rc != PARLEY_E_NOT_FOUND)
		return rc;
	rc = parley_signal_keypair_generate(id);
	if (rc == PARLEY_OK)
		rc = parley_signal_registration_id_generate(regid);
	if (rc == PARLEY_OK)
		rc = parley_signal_sqlite_set_identity(c->sigdb, id, *regid);
	if (rc != PARLEY_OK)
		parley_signal_keypair_wipe(id);
	return rc;
}

/* ---- key upload ---- */

typedef struct upload_mem {
	Parley__Wire__UploadKeysRequest req;
	Parley__Wire__SignedPrekey spk;
	Parley__Wire__OneTimePrekey otk[PREKEY_BATCH];
	Parley__Wire__OneTimePrekey *otkp[PREKEY_BATCH];
	uint8_t identity[PARLEY_SIGNAL_PUBKEY_LEN];
	uint8_t spk_pub[PARLEY_SIGNAL_PUBKEY_LEN];
	uint8_t spk_sig[PARLEY_SIGNAL_SIGNATURE_LEN];
	uint8_t otk_pub[PREKEY_BATCH][PARLEY_SIGNAL_PUBKEY_LEN];
	/* completion */
	int is_refill;
	parley_done_cb cb;
	void *user;
} upload_mem;

static void upload_free(void *mem)
{
	parley__free(mem);
}

/* Generates (and stores locally, before the server can hand them out) n one-time prekeys and, if
 * new_spk, a new signed prekey; fills the request. */
static int upload_build(parley_client *c, upload_mem *u, int new_spk, size_t n)
{
	parley_keypair id;
	parley_prekey pk;
	parley_signed_prekey spk;
	e2e_meta m;
	uint32_t regid;
	size_t i;
	int rc;

	memset(&id, 0, sizeof(id));
	rc = ensure_identity(c, &id, &regid);
	if (rc == PARLEY_OK)
		rc = meta_load(c, &m);
	if (rc != PARLEY_OK)
		goto out;
	parley__wire__upload_keys_request__init(&u->req);
	memcpy(u->identity, id.pub, sizeof(u->identity));
	u->req.identity_key.data = u->identity;
	u->req.identity_key.len = sizeof(u->identity);
	u->req.registration_id = regid;
	if (new_spk) {
		uint32_t spk_id = m.spk_id % PREKEY_MAX_ID + 1;
		rc = parley_signal_signed_prekey_generate(&spk, &id, spk_id, now_ms());
		if (rc == PARLEY_OK)
			rc = c->sigstore.store_signed_prekey(c->sigstore.user, &spk);
		if (rc != PARLEY_OK) {
			parley_signal_keypair_wipe(&spk.key);
			goto out;
		}
		parley__wire__signed_prekey__init(&u->spk);
		u->spk.id = spk.id;
		memcpy(u->spk_pub, spk.key.pub, sizeof(u->spk_pub));
		memcpy(u->spk_sig, spk.signature, sizeof(u->spk_sig));
		u->spk.public_key.data = u->spk_pub;
		u->spk.public_key.len = sizeof(u->spk_pub);
		u->spk.signature.data = u->spk_sig;
		u->spk.signature.len = sizeof(u->spk_sig);
		u->req.signed_prekey = &u->spk;
		m.spk_id = spk.id;
		m.spk_created_ms = spk.timestamp_ms;
		parley_signal_keypair_wipe(&spk.key);
	}
	for (i = 0; i < n && i < PREKEY_BATCH; i++) {
		uint32_t pid = m.next_prekey_id;
		m.next_prekey_id = pid % PREKEY_MAX_ID + 1;
		rc = parley_signal_prekey_generate(&pk, pid);
		if (rc == PARLEY_OK)
			rc = c->sigstore.store_prekey(c->sigstore.user, &pk);
		if (rc != PARLEY_OK) {
			parley_signal_keypair_wipe(&pk.key);
			goto out;
		}
		parley__wire__one_time_prekey__init(&u->otk[i]);
		u->otk[i].id = pid;
		memcpy(u->otk_pub[i], pk.key.pub, PARLEY_SIGNAL_PUBKEY_LEN);
		u->otk[i].public_key.data = u->otk_pub[i];
		u->otk[i].public_key.len = PARLEY_SIGNAL_PUBKEY_LEN;
		u->otkp[i] = &u->otk[i];
		parley_signal_keypair_wipe(&pk.key);
	}
	u->req.n_one_time_prekeys = i;
	u->req.one_time_prekeys = i != 0 ? u->otkp : NULL;
	rc = meta_save(c, &m);
out:
	parley_signal_keypair_wipe(&id);
	if (rc != PARLEY_OK && c->errmsg[0] == '\0')
		client__set_err(c, "cannot create Signal keys: %s", parley_strerror(rc));
	return rc;
}

static void on_upload(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	upload_mem *u = op->raw_mem;

	if (u->is_refill)
		c->refill_inflight = 0;
	if (status != PARLEY_OK && u->cb != NULL)
		client__set_err(c, "uploading Signal keys failed: %s", parley_strerror(status));
	if (u->cb != NULL)
		u->cb(c, (parley_err)status, u->user);
}

static int upload_submit(parley_client *c, int new_spk, size_t n, int is_refill, parley_done_cb cb, void *user)
{
	upload_mem *u = parley__calloc(1, sizeof(*u));
	int rc;

	if (u == NULL)
		return PARLEY_E_NOMEM;
	rc = upload_build(c, u, new_spk, n);
	if (rc != PARLEY_OK) {
		parley__free(u);
		return rc;
	}
	u->is_refill = is_refill;
	u->cb = cb;
	u->user = user;
	return client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS, &u->req, u, upload_free, on_upload,
				  NULL);
}

int client__e2e_after_account(parley_client *c, parley_done_cb cb, void *user)
{
	int rc = client__e2e_open(c);
	if (rc != PARLEY_OK)
		return rc;
	/* Login counts as this client's key check: nothing else to verify right after a fresh upload. */
	c->maintenance_done = 1;
	return upload_submit(c, 1, PREKEY_BATCH, 0, cb, user);
}

void client__e2e_refill(parley_client *c, uint32_t remaining)
{
	if (c->refill_inflight || remaining >= PREKEY_BATCH || client__e2e_open(c) != PARLEY_OK)
		return;
	/* Best effort: a failure leaves the pool as it was and the next PrekeysLow push retries. */
	if (upload_submit(c, 0, PREKEY_BATCH - remaining, 1, NULL, NULL) == PARLEY_OK)
		c->refill_inflight = 1;
}

/* After each authentication: repair a missing upload (e.g. the one after register failed), refill a
 * low pool, rotate an old signed prekey. */
static void on_prekey_count(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	const Parley__Wire__GetPrekeyCountResponse *p;
	e2e_meta m;
	int rotate;

	if (status != PARLEY_OK || r == NULL || r->body_case != PARLEY__WIRE__RESPONSE__BODY_GET_PREKEY_COUNT ||
	    meta_load(c, &m) != PARLEY_OK)
		return;
	p = r->get_prekey_count;
	rotate = p->signed_prekey_id == 0 || m.spk_id == 0 || now_ms() - m.spk_created_ms > SPK_MAX_AGE_MS;
	if (rotate || p->one_time_prekeys_remaining < PREKEY_LOW) {
		size_t n = p->one_time_prekeys_remaining < PREKEY_LOW ? PREKEY_BATCH - p->one_time_prekeys_remaining : 0;
		if (!c->refill_inflight && upload_submit(c, rotate, n, 1, NULL, NULL) == PARLEY_OK)
			c->refill_inflight = 1;
	}
}

static void mem_free(void *mem)
{
	parley__free(mem);
}

void client__on_ready(parley_client *c)
{
	Parley__Wire__GetPrekeyCountRequest *req;

	if (c->maintenance_done || client__e2e_open(c) != PARLEY_OK)
		return;
	c->maintenance_done = 1;
	req = parley__malloc(sizeof(*req));
	if (req == NULL)
		return;
	parley__wire__get_prekey_count_request__init(req);
	client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT, req, req, mem_free, on_prekey_count, NULL);
}

/* ---- peers ---- */

int client__e2e_peer_set(parley_client *c, const char *handle, uint32_t device, uint32_t regid)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(c, "INSERT OR REPLACE INTO peer_devices (handle, device_id, registration_id) VALUES (?, ?, ?)",
		      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	sqlite3_bind_int64(st, 3, regid);
	return step_done(c, st);
}

int client__e2e_peer_drop(parley_client *c, const char *handle, uint32_t device)
{
	parley_signal_address a = {handle, device};
	sqlite3_stmt *st = NULL;
	int rc = parley_signal_session_delete(c->sig, &a);
	if (rc != PARLEY_OK)
		return rc;
	rc = prep(c, "DELETE FROM peer_devices WHERE handle = ? AND device_id = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	return step_done(c, st);
}

int client__e2e_peer_devices(parley_client *c, const char *handle, uint32_t *ids, uint32_t *regids, size_t max,
			     size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	rc = prep(c, "SELECT device_id, registration_id FROM peer_devices WHERE handle = ? ORDER BY device_id", &st);
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
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? PARLEY_OK : sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__e2e_pending_identity(parley_client *c, const char *handle, uint32_t device,
				 const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN])
{
	sqlite3_stmt *st = NULL;
	int rc = prep(c, "INSERT OR REPLACE INTO pending_identity (handle, device_id, key, seen_ms) VALUES (?, ?, ?, ?)",
		      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	sqlite3_bind_blob(st, 3, key, PARLEY_SIGNAL_PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now_ms());
	return step_done(c, st);
}

int client__e2e_seen(parley_client *c, uint64_t server_id, int record, int *seen)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(c, record ? "INSERT OR IGNORE INTO received_ids (server_id, seen_ms) VALUES (?, ?)"
				: "SELECT 1 FROM received_ids WHERE server_id = ?",
		      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)server_id);
	if (record)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms());
	rc = sqlite3_step(st);
	*seen = rc == SQLITE_ROW;
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_OK : sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__e2e_process_bundle(parley_client *c, const char *handle, const Parley__Wire__PreKeyBundle *b)
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

/* ---- safety numbers and trust ---- */

typedef struct fetch_wait {
	int done;
	int status;
	const char *handle;
} fetch_wait;

static void bundles_free(void *mem)
{
	parley__free(mem);
}

static void on_fetch_bundles(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	fetch_wait *w = op->raw_ctx;
	size_t i;

	if (status == PARLEY_OK && (r == NULL || r->body_case != PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES))
		status = PARLEY_E_PROTO_MISSING_FIELD;
	for (i = 0; status == PARLEY_OK && i < r->get_bundles->n_bundles; i++) {
		int rc = client__e2e_process_bundle(c, w->handle, r->get_bundles->bundles[i]);
		/* an untrusted key is recorded as pending: the safety number shows it */
		if (rc != PARLEY_OK && rc != PARLEY_E_UNTRUSTED_IDENTITY)
			status = rc;
	}
	w->status = status;
	w->done = 1;
}

static int fetch_all_bundles(parley_client *c, const char *handle)
{
	Parley__Wire__GetBundlesRequest *req;
	fetch_wait w = {0, PARLEY_OK, handle};
	char h[PARLEY_HANDLE_MAX + 1];
	int rc;

	snprintf(h, sizeof(h), "%s", handle);
	w.handle = h;
	req = parley__malloc(sizeof(*req) + sizeof(h));
	if (req == NULL)
		return PARLEY_E_NOMEM;
	parley__wire__get_bundles_request__init(req);
	req->handle = (char *)(req + 1);
	memcpy(req->handle, h, sizeof(h));
	rc = client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES, req, req, bundles_free, on_fetch_bundles,
				&w);
	if (rc != PARLEY_OK)
		return rc;
	if (client__wait(c, &w.done) != PARLEY_OK && !w.done)
		client__fail_all(c, PARLEY_E_INTERNAL);
	return w.status;
}

/* Device `index` (in id order) of handle among known and pending devices. */
static int nth_device(parley_client *c, const char *handle, size_t index, uint32_t *device, int *found)
{
	sqlite3_stmt *st = NULL;
	size_t i = 0;
	int rc;

	*found = 0;
	rc = prep(c, "SELECT device_id FROM peer_devices WHERE handle = ?1 UNION "
		     "SELECT device_id FROM pending_identity WHERE handle = ?1 ORDER BY 1",
		  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	for (rc = sqlite3_step(st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
		if (i++ == index) {
			*device = (uint32_t)sqlite3_column_int64(st, 0);
			*found = 1;
			break;
		}
	}
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? PARLEY_OK : sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

static int pending_key(parley_client *c, const char *handle, uint32_t device, uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN],
		       int *found)
{
	sqlite3_stmt *st = NULL;
	int rc = prep(c, "SELECT key FROM pending_identity WHERE handle = ? AND device_id = ?", &st);

	*found = 0;
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, device);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == PARLEY_SIGNAL_PUBKEY_LEN) {
		memcpy(key, sqlite3_column_blob(st, 0), PARLEY_SIGNAL_PUBKEY_LEN);
		*found = 1;
	}
	sqlite3_finalize(st);
	return PARLEY_OK;
}

static int check_peer_handle(parley_client *c, const char *handle)
{
	size_t n;
	if (c == NULL || handle == NULL)
		return PARLEY_E_INVAL;
	n = strnlen(handle, PARLEY_HANDLE_MAX + 1);
	if (n < 1 || n > PARLEY_HANDLE_MAX)
		return PARLEY_E_BAD_HANDLE;
	return PARLEY_OK;
}

parley_err parley_safety_number(parley_client *c, const char *handle, size_t index, uint32_t *device_id,
				int *changed, char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	uint8_t theirs[PARLEY_SIGNAL_PUBKEY_LEN];
	parley_keypair mine;
	parley_fingerprint *fp = NULL;
	uint32_t dev = 0;
	int found, pending, rc;

	rc = check_peer_handle(c, handle);
	if (rc != PARLEY_OK || out == NULL)
		return rc != PARLEY_OK ? (parley_err)rc : PARLEY_E_INVAL;
	if (c->in_loop)
		return PARLEY_E_STATE;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__e2e_open(c);
	if (rc == PARLEY_OK)
		rc = nth_device(c, handle, index, &dev, &found);
	if (rc == PARLEY_OK && !found && index == 0) {
		rc = fetch_all_bundles(c, handle);
		if (rc == PARLEY_OK)
			rc = nth_device(c, handle, index, &dev, &found);
		if (rc == PARLEY_OK && !found) {
			client__set_err(c, "%s has no device with keys", handle);
			rc = PARLEY_E_NO_KEYS;
		}
	}
	if (rc == PARLEY_OK && !found)
		rc = PARLEY_E_NOT_FOUND;
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	rc = pending_key(c, handle, dev, theirs, &pending);
	if (rc == PARLEY_OK && !pending) {
		parley_signal_address a = {handle, dev};
		rc = parley_signal_remote_identity(c->sig, &a, theirs);
	}
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	rc = c->sigstore.get_identity_keypair(c->sigstore.user, &mine);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	rc = parley_fingerprint_new(&fp, PARLEY_FINGERPRINT_VERSION, PARLEY_FINGERPRINT_ITERATIONS,
				    (const uint8_t *)c->account.handle, strlen(c->account.handle), mine.pub,
				    sizeof(mine.pub), (const uint8_t *)handle, strlen(handle), theirs, sizeof(theirs));
	parley_signal_keypair_wipe(&mine);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	memcpy(out, parley_fingerprint_display(fp), PARLEY_SAFETY_NUMBER_LEN);
	out[PARLEY_SAFETY_NUMBER_LEN] = '\0';
	parley_fingerprint_free(fp);
	if (device_id != NULL)
		*device_id = dev;
	if (changed != NULL)
		*changed = pending;
	return PARLEY_OK;
}

parley_err parley_trust(parley_client *c, const char *handle, size_t *accepted)
{
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int rc;

	rc = check_peer_handle(c, handle);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	if (accepted != NULL)
		*accepted = 0;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__e2e_open(c);
	if (rc == PARLEY_OK)
		rc = prep(c, "SELECT device_id, key FROM pending_identity WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	while (rc == PARLEY_OK && sqlite3_step(st) == SQLITE_ROW) {
		parley_signal_address a = {handle, (uint32_t)sqlite3_column_int64(st, 0)};
		uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN];
		if (sqlite3_column_bytes(st, 1) != PARLEY_SIGNAL_PUBKEY_LEN)
			continue;
		memcpy(key, sqlite3_column_blob(st, 1), sizeof(key));
		/* The old session was built on the old key: the next message starts over from a bundle. */
		rc = parley_signal_trust_identity(c->sig, &a, key);
		if (rc == PARLEY_OK)
			rc = client__e2e_peer_drop(c, handle, a.device_id);
		if (rc == PARLEY_OK)
			n++;
	}
	sqlite3_finalize(st);
	if (rc == PARLEY_OK && n != 0) {
		rc = prep(c, "DELETE FROM pending_identity WHERE handle = ?", &st);
		if (rc == PARLEY_OK) {
			sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
			rc = step_done(c, st);
		}
	}
	if (accepted != NULL)
		*accepted = n;
	return (parley_err)rc;
}
