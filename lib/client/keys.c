/* This device's Signal keys (docs/protocol.md §9): the identity key pair and registration id (created on
 * first use), the upload of a signed prekey and a batch of one-time prekeys after register/link, the
 * refill when the server reports the pool low, and, once per connection authenticated with the saved
 * account, a check of the pool that also rotates the signed prekey weekly, deletes retired ones after
 * their grace period and deletes the private halves of one-time prekeys the server reports handed out
 * long ago (nobody can use them any more: see forget_handed_out). The prekey id counter and the current
 * signed prekey live in client.db's e2e_meta
 * table. */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define PREKEY_BATCH 100           /* server's per-upload maximum and our pool target */
#define PREKEY_LOW 20              /* refill below this when we check ourselves */
#define PREKEY_MAX_ID 0xFFFFFFu    /* libsignal's Medium::MAX_VALUE: ids wrap below it */
#define SPK_MAX_AGE_MS (7ull * 24 * 3600 * 1000)
/* How long a retired signed prekey is kept after its successor was created (security item 9): a
 * PreKeySignalMessage built from a bundle fetched just before the rotation may still arrive, after
 * waiting in our server queue up to its message TTL (30 days by default, message_ttl_s). After that
 * the private key is deleted, so a later theft of signal.db cannot decrypt those sessions' X3DH.
 * Documented in docs/signal.md ("Signed prekeys"). */
#define SPK_GRACE_MS (30ull * 24 * 3600 * 1000)
/* Retired keys examined per check: one a week, so even an old install has far fewer. */
#define SPK_RETIRED_SCAN 1024

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
	rc = client__sql_prep(c, "SELECT next_prekey_id, spk_id, spk_created_ms FROM e2e_meta WHERE id = 1", &st);
	if (rc != PARLEY_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->next_prekey_id = (uint32_t)sqlite3_column_int64(st, 0);
		m->spk_id = (uint32_t)sqlite3_column_int64(st, 1);
		m->spk_created_ms = (uint64_t)sqlite3_column_int64(st, 2);
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

static int meta_save(parley_client *c, const e2e_meta *m)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  "INSERT OR REPLACE INTO e2e_meta (id, next_prekey_id, spk_id, spk_created_ms)"
				  " VALUES (1, ?, ?, ?)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, m->next_prekey_id);
	sqlite3_bind_int64(st, 2, m->spk_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)m->spk_created_ms);
	return client__sql_done(c, st);
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

int client__keys_identity(parley_client *c, parley_keypair *id)
{
	uint32_t regid;
	int rc = client__e2e_open(c);
	return rc == PARLEY_OK ? ensure_identity(c, id, &regid) : rc;
}

/* ---- key upload ---- */

typedef struct upload_op {
	client_op op;
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
} upload_op;

/* Generates (and stores locally, before the server can hand them out) n one-time prekeys and, if
 * new_spk, a new signed prekey; fills the request. */
static int upload_build(parley_client *c, upload_op *u, int new_spk, size_t n)
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
		rc = parley_signal_signed_prekey_generate(&spk, &id, spk_id, client__now_ms());
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

static int build_upload(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	upload_op *u = CLIENT_OP_OWNER(op, upload_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS;
	req->upload_keys = &u->req;
	return PARLEY_OK;
}

static void complete_upload(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	upload_op *u = CLIENT_OP_OWNER(op, upload_op, op);

	if (u->is_refill)
		c->refill_inflight = 0;
	if (status != PARLEY_OK && u->cb != NULL)
		client__set_err(c, "uploading Signal keys failed: %s", parley_strerror(status));
	if (u->cb != NULL)
		u->cb(c, (parley_err)status, u->user);
	parley__free(u);
}

static const client_op_vtable upload_vt = {build_upload, complete_upload, PARLEY__WIRE__RESPONSE__BODY_UPLOAD_KEYS, 0};

static int upload_submit(parley_client *c, int new_spk, size_t n, int is_refill, parley_done_cb cb, void *user)
{
	upload_op *u = parley__calloc(1, sizeof(*u));
	int rc;

	if (u == NULL)
		return PARLEY_E_NOMEM;
	rc = upload_build(c, u, new_spk, n);
	if (rc != PARLEY_OK) {
		parley__free(u);
		return rc;
	}
	u->op.vt = &upload_vt;
	u->is_refill = is_refill;
	u->cb = cb;
	u->user = user;
	if (is_refill)
		c->refill_inflight = 1;
	client__conn_submit(c, &u->op);
	return PARLEY_OK;
}

int client__keys_after_account(parley_client *c, parley_done_cb cb, void *user)
{
	int rc = client__e2e_open(c);
	if (rc != PARLEY_OK)
		return rc;
	/* Login counts as this client's key check: nothing else to verify right after a fresh upload. */
	c->maintenance_done = 1;
	return upload_submit(c, 1, PREKEY_BATCH, 0, cb, user);
}

void client__keys_refill(parley_client *c, uint32_t remaining)
{
	if (c->refill_inflight || remaining >= PREKEY_BATCH || client__e2e_open(c) != PARLEY_OK)
		return;
	/* Best effort: a failure leaves the pool as it was and the next PrekeysLow push retries. */
	upload_submit(c, 0, PREKEY_BATCH - remaining, 1, NULL, NULL);
}

/* ---- retired signed prekeys ---- */

/* Deletes the retired signed prekeys whose successor is older than SPK_GRACE_MS. Ids are issued in
 * sequence, so the retired keys are the ones below the current id, newest first, and key k retired
 * when k + 1 was created. Best effort: a key left behind is deleted at the next check. */
static void delete_retired_spks(parley_client *c, const e2e_meta *m)
{
	parley_signed_prekey spk;
	uint64_t now = client__now_ms(), successor_ms;
	uint32_t id = m->spk_id;

	if (c->sigstore.remove_signed_prekey == NULL || m->spk_id == 0 ||
	    c->sigstore.load_signed_prekey(c->sigstore.user, m->spk_id, &spk) != PARLEY_OK)
		return;
	successor_ms = spk.timestamp_ms;
	for (int i = 0; i < SPK_RETIRED_SCAN; i++) {
		id = (id + PREKEY_MAX_ID - 2) % PREKEY_MAX_ID + 1; /* the previous id, wrapping as issued */
		if (id == m->spk_id || c->sigstore.load_signed_prekey(c->sigstore.user, id, &spk) != PARLEY_OK)
			break;
		if (now > successor_ms && now - successor_ms > SPK_GRACE_MS &&
		    c->sigstore.remove_signed_prekey(c->sigstore.user, id) != PARLEY_OK)
			break;
		successor_ms = spk.timestamp_ms;
	}
	parley_signal_keypair_wipe(&spk.key);
}

/* ---- the check after each authentication ---- */

typedef struct count_op {
	client_op op;
	Parley__Wire__GetPrekeyCountRequest req;
} count_op;

static int build_count(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	count_op *k = CLIENT_OP_OWNER(op, count_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT;
	req->get_prekey_count = &k->req;
	return PARLEY_OK;
}

/* The server reports one-time prekeys it handed out more than prekey_forget_after_s ago (above its
 * message TTL: any PreKey message using one was sent after the hand-out and is either processed by
 * now, which already deleted the key, or purged unread). Keeping the private half would only leave a
 * secret at rest for nothing, and a drained pool would leave thousands. Removing an absent key (used,
 * or reported twice) is a no-op. */
static void forget_handed_out(parley_client *c, const Parley__Wire__GetPrekeyCountResponse *p)
{
	for (size_t i = 0; i < p->n_forget_prekey_ids; i++)
		(void)c->sigstore.remove_prekey(c->sigstore.user, p->forget_prekey_ids[i]);
}

/* Repairs a missing upload (e.g. the one after register failed), refills a low pool, rotates an old
 * signed prekey, forgets handed-out prekeys. */
static void complete_count(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	const Parley__Wire__GetPrekeyCountResponse *p;
	e2e_meta m;
	int rotate;

	parley__free(CLIENT_OP_OWNER(op, count_op, op));
	if (status != PARLEY_OK || meta_load(c, &m) != PARLEY_OK)
		return;
	delete_retired_spks(c, &m);
	p = r->get_prekey_count;
	forget_handed_out(c, p);
	rotate = p->signed_prekey_id == 0 || m.spk_id == 0 || client__now_ms() - m.spk_created_ms > SPK_MAX_AGE_MS;
	if (rotate || p->one_time_prekeys_remaining < PREKEY_LOW) {
		size_t n = p->one_time_prekeys_remaining < PREKEY_LOW ? PREKEY_BATCH - p->one_time_prekeys_remaining : 0;
		if (!c->refill_inflight)
			upload_submit(c, rotate, n, 1, NULL, NULL);
	}
}

static const client_op_vtable count_vt = {build_count, complete_count, PARLEY__WIRE__RESPONSE__BODY_GET_PREKEY_COUNT,
					  0};

void client__keys_after_auth(parley_client *c)
{
	count_op *k;

	if (c->maintenance_done || client__e2e_open(c) != PARLEY_OK)
		return;
	c->maintenance_done = 1;
	k = parley__calloc(1, sizeof(*k));
	if (k == NULL)
		return;
	k->op.vt = &count_vt;
	parley__wire__get_prekey_count_request__init(&k->req);
	client__conn_submit(c, &k->op);
}
