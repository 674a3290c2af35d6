/* Moving private keys between devices (docs/protocol.md §11.4): the account key to another device of
 * this account, entity keys to a new primary admin (or along with the account key).
 *
 * A transfer is a Content of kind KEY_TRANSFER carrying a packed parley.wire.KeyTransfer, end-to-end
 * encrypted to devices that the target's verified signed list names, like any message. The sender keeps
 * its copies until the receiver confirms (KeyTransfer{transfer_id, confirm}): a transfer lost on the way
 * (the target removed before it read it, a crash) loses no key. Outgoing transfers waiting for their
 * confirm are rows of client.db's key_moves table (own schema "client.keymove"), so the confirm may
 * arrive in a later process (`parley devices transfer-key` exits; `parley listen` gets the confirm).
 *
 * The receiver imports nothing unless everything checks:
 *   - the account key only from a device of this account's own verified list (the receive path already
 *     refuses unlisted devices), and its private half must derive the public account key this device
 *     already has: a transfer cannot install another account key;
 *   - every entity key's private half derives its public half, which must be the entity key pinned for
 *     that handle; an entity not pinned yet is fetched and verified first (parley_entity_get: its TOFU
 *     pin), and the key of a verified entity is compared; a key already held for that entity is never
 *     replaced by a different one.
 * Then all keys are stored at once, and the confirm goes back to the sender.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "client/entity_internal.h"
#include "common/alloc.h"
#include "common/migrate.h"
#include "crypto/crypto.h"

static const char *const keymove_steps[] = {
	/* 1: entity '' = the account key; device 0 = any device of handle may confirm */
	"CREATE TABLE key_moves (transfer_id INTEGER NOT NULL, handle TEXT NOT NULL, device INTEGER NOT NULL,"
	"  entity TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (transfer_id, handle, entity));",
};

static const migrate_schema keymove_schema = {
	.name = "client.keymove",
	MIGRATE_STEPS(keymove_steps),
	.legacy_user_version = 0,
};

static int ready(parley_client *c)
{
	return client__schema_ready(c, &c->keymove_ready, client__e2e_open, &keymove_schema);
}

uint64_t client__keymove_new_id(void)
{
	uint64_t id = 0;
	while (id == 0)
		crypto__random(&id, sizeof(id));
	return id;
}

static int pending_record(parley_client *c, uint64_t transfer_id, const char *handle, uint32_t device,
				   const char *entity)
{
	sqlite3_stmt *st = NULL;
	int rc = transfer_id == 0 || handle == NULL ? PARLEY_E_INVAL : ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "INSERT OR REPLACE INTO key_moves (transfer_id, handle, device, entity, created_ms)"
				      " VALUES (?, ?, ?, ?, ?)",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)transfer_id);
	sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, device);
	sqlite3_bind_text(st, 4, entity != NULL ? entity : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)client__now_ms());
	return client__sql_done(c, st);
}

int client__keymove_pending_add(parley_client *c, uint64_t transfer_id, const char *handle, const char *entity)
{
	if (c == NULL)
		return PARLEY_E_INVAL;
	return pending_record(c, transfer_id, handle, 0, entity);
}

static int pending_account(parley_client *c, uint64_t *transfer_id, uint32_t *device)
{
	sqlite3_stmt *st = NULL;
	int rc = ready(c);

	*transfer_id = 0;
	*device = 0;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT transfer_id, device FROM key_moves WHERE entity = '' AND handle = ?",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, c->account.handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*transfer_id = (uint64_t)sqlite3_column_int64(st, 0);
		*device = (uint32_t)sqlite3_column_int64(st, 1);
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

static int forget(parley_client *c, uint64_t transfer_id, const char *handle)
{
	sqlite3_stmt *st = NULL;
	int rc = ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "DELETE FROM key_moves WHERE transfer_id = ? AND handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)transfer_id);
	sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

/* ---- events ---- */

static void moved(parley_client *c, const char *handle, int received, const char *what)
{
	if (c->ev.on_keys_moved != NULL)
		c->ev.on_keys_moved(c, handle, received, what, c->ev.user);
}

static void refuse(parley_client *c, const char *handle, uint32_t device, const char *why)
{
	client__set_err(c, "key transfer from %s (device %u) refused: %s", handle, (unsigned)device, why);
	if (c->ev.on_error != NULL)
		c->ev.on_error(c, PARLEY_E_KEY_TRANSFER_INVALID, handle, device, c->ev.user);
}

/* ---- a confirm: wipe what the transfer moved ---- */

/* The entity key row of handle goes (secure_delete zeroes it on disk). Only here and in entity_state.c
 * does anything touch entity_keys; this is the one delete that belongs to moving keys. */
static int entity_key_drop(parley_client *c, const char *entity)
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "DELETE FROM entity_keys WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

#define KEYMOVE_MAX_ENTITIES 64

static void on_confirm(parley_client *c, const Parley__Wire__Envelope *e, uint64_t transfer_id)
{
	char names[KEYMOVE_MAX_ENTITIES + 1][PARLEY_HANDLE_MAX + 1];
	sqlite3_stmt *st = NULL;
	size_t n = 0, i;
	int rc = ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "SELECT entity FROM key_moves WHERE transfer_id = ? AND handle = ?"
				      " AND (device = 0 OR device = ?) ORDER BY entity LIMIT ?",
				      &st);
	if (rc != PARLEY_OK)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)transfer_id);
	sqlite3_bind_text(st, 2, e->sender_handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, e->sender_device);
	sqlite3_bind_int64(st, 4, KEYMOVE_MAX_ENTITIES + 1);
	while (n < KEYMOVE_MAX_ENTITIES + 1 && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(names[n++], sizeof(names[0]), "%s", t != NULL ? (const char *)t : "");
	}
	sqlite3_finalize(st);
	if (n == 0)
		return; /* not ours, or confirmed already: nothing to do */
	/* the rows go last: a crash before leaves them, and the next confirm wipes again */
	for (i = 0, rc = PARLEY_OK; i < n && rc == PARLEY_OK; i++)
		rc = names[i][0] == '\0' ? client__akey_drop_private(c) : entity_key_drop(c, names[i]);
	if (rc != PARLEY_OK || forget(c, transfer_id, e->sender_handle) != PARLEY_OK)
		return;
	for (i = 0; i < n; i++)
		moved(c, e->sender_handle, 0, names[i][0] == '\0' ? "account key" : names[i]);
}

/* ---- an import ---- */

/* One transfer being imported: a copy of its keys (wiped at the end) and the entity checks in flight. */
typedef struct import_job {
	uint64_t transfer_id;
	char sender[PARLEY_HANDLE_MAX + 1];
	uint32_t sender_device;
	int has_ak;
	uint8_t ak_pub[PARLEY_SIGNAL_PUBKEY_LEN], ak_priv[32];
	size_t n;
	struct import_entity {
		char handle[PARLEY_HANDLE_MAX + 1];
		uint8_t pub[PARLEY_ENTITY_KEY_BYTES], priv[32];
		uint64_t entity_id;  /* from the verified entity */
		int held;            /* this device holds this very key already */
		int done, ok;
		struct import_job *job;
	} ent[KEYMOVE_MAX_ENTITIES];
	size_t waiting; /* entity fetches not answered yet */
	int failed;
	char why[160];
} import_job;

static void job_free(import_job *j)
{
	sodium_memzero(j, sizeof(*j));
	parley__free(j);
}

/* 1 if priv (32) is the private half of the serialized public key pub (33). */
static int derives(const uint8_t *priv, const uint8_t *pub)
{
	crypto_keypair kp;
	uint8_t ser[PARLEY_SIGNAL_PUBKEY_LEN];
	int ok = crypto__keypair_from_private(&kp, priv) == PARLEY_OK;

	if (ok) {
		crypto__pubkey_serialize(ser, kp.pub);
		ok = crypto__ct_equal(ser, pub, sizeof(ser));
	}
	crypto__keypair_wipe(&kp);
	return ok;
}

static void done_confirm(parley_client *c, parley_err status, void *user)
{
	(void)c;
	(void)status; /* lost: the sender keeps its copies and may transfer again */
	(void)user;
}

static int send_confirm(parley_client *c, const import_job *j)
{
	Parley__Wire__KeyTransfer kt = PARLEY__WIRE__KEY_TRANSFER__INIT;
	uint8_t packed[32];
	int own = strcmp(j->sender, c->account.handle) == 0;

	kt.transfer_id = j->transfer_id;
	kt.confirm = 1;
	if (parley__wire__key_transfer__get_packed_size(&kt) > sizeof(packed))
		return PARLEY_E_TOO_LARGE;
	return client__send_key_transfer(c, j->sender, own ? j->sender_device : 0, packed,
					 parley__wire__key_transfer__pack(&kt, packed), done_confirm, NULL);
}

/* Everything checked: store all keys, confirm, tell the application. */
static void import_finish(parley_client *c, import_job *j)
{
	int rc = PARLEY_OK;
	size_t i;

	if (j->failed) {
		refuse(c, j->sender, j->sender_device, j->why);
		job_free(j);
		return;
	}
	if (j->has_ak)
		rc = client__akey_save(c, j->ak_pub, j->ak_priv);
	for (i = 0; i < j->n && rc == PARLEY_OK; i++)
		if (!j->ent[i].held)
			rc = client__entity_key_import(c, j->ent[i].handle, j->ent[i].entity_id, j->ent[i].priv,
						       j->ent[i].pub);
	if (rc != PARLEY_OK) {
		/* local storage: the sender keeps its copies (no confirm) and may send again */
		if (c->ev.on_error != NULL)
			c->ev.on_error(c, (parley_err)rc, j->sender, j->sender_device, c->ev.user);
		job_free(j);
		return;
	}
	(void)send_confirm(c, j);
	if (j->has_ak)
		moved(c, j->sender, 1, "account key");
	for (i = 0; i < j->n; i++)
		moved(c, j->sender, 1, j->ent[i].handle);
	job_free(j);
}

/* Records why the import is refused (the first reason counts); returns -1 for the checks' returns. */
static int fail(import_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(import_job *j, const char *fmt, ...)
{
	va_list ap;

	if (!j->failed) {
		va_start(ap, fmt);
		vsnprintf(j->why, sizeof(j->why), fmt, ap);
		va_end(ap);
	}
	j->failed = 1;
	return -1;
}

/* The entity, fetched and verified (its key pinned on first use): the transferred key must be it. */
static void on_entity(parley_client *c, parley_err status, parley_entity *e, void *user)
{
	struct import_entity *x = user;
	import_job *j = x->job;
	uint8_t pinned[PARLEY_ENTITY_KEY_BYTES];

	if (status != PARLEY_OK)
		fail(j, "entity %s could not be verified", x->handle);
	else if (client__entity_pinned_key(c, x->handle, pinned) != PARLEY_OK ||
		 !crypto__ct_equal(pinned, x->pub, sizeof(pinned)) ||
		 !crypto__ct_equal(parley_entity_key(e), x->pub, PARLEY_ENTITY_KEY_BYTES))
		fail(j, "the key for %s is not the entity's verified key", x->handle);
	else
		x->entity_id = parley_entity_id(e);
	parley_entity_free(e);
	if (--j->waiting == 0)
		import_finish(c, j);
}

/* The checks that need no network; the reason of a refusal goes to j->why. */
static int import_check(parley_client *c, const Parley__Wire__KeyTransfer *kt, import_job *j)
{
	uint8_t have[PARLEY_SIGNAL_PUBKEY_LEN], pub[PARLEY_ENTITY_KEY_BYTES], priv[32];
	size_t i, k;

	if (kt->transfer_id == 0)
		return fail(j, "no transfer id");
	if (kt->account_key_private.len != 0 || kt->account_key.len != 0) {
		if (strcmp(j->sender, c->account.handle) != 0)
			return fail(j, "an account key comes only from a device of this account");
		if (kt->account_key.len != PARLEY_SIGNAL_PUBKEY_LEN || kt->account_key_private.len != 32 ||
		    !derives(kt->account_key_private.data, kt->account_key.data))
			return fail(j, "the account key's private half does not match its public half");
		if (client__akey_load(c, have, NULL, NULL) != PARLEY_OK ||
		    !crypto__ct_equal(have, kt->account_key.data, sizeof(have)))
			return fail(j, "it is not this account's account key");
		j->has_ak = 1;
		memcpy(j->ak_pub, kt->account_key.data, sizeof(j->ak_pub));
		memcpy(j->ak_priv, kt->account_key_private.data, sizeof(j->ak_priv));
	}
	if (kt->n_entity_keys > KEYMOVE_MAX_ENTITIES)
		return fail(j, "too many entity keys");
	if (!j->has_ak && kt->n_entity_keys == 0)
		return fail(j, "it carries no key");
	for (i = 0; i < kt->n_entity_keys; i++) {
		const Parley__Wire__EntityKeyTransfer *t = kt->entity_keys[i];
		struct import_entity *x = &j->ent[i];
		const char *h = t->entity != NULL ? t->entity : "";

		if (client__check_handle(c, h) != PARLEY_OK)
			return fail(j, "an entity handle is malformed");
		if (t->entity_key.len != PARLEY_ENTITY_KEY_BYTES || t->private_key.len != 32 ||
		    !derives(t->private_key.data, t->entity_key.data))
			return fail(j, "the key of %s: the private half does not match the public one", h);
		for (k = 0; k < i; k++)
			if (strcmp(j->ent[k].handle, h) == 0)
				return fail(j, "%s named twice", h);
		snprintf(x->handle, sizeof(x->handle), "%s", h);
		memcpy(x->pub, t->entity_key.data, sizeof(x->pub));
		memcpy(x->priv, t->private_key.data, sizeof(x->priv));
		x->job = j;
		if (client__entity_key_load(c, h, pub, priv) == PARLEY_OK) {
			x->held = crypto__ct_equal(pub, x->pub, sizeof(pub));
			sodium_memzero(priv, sizeof(priv));
			if (!x->held)
				return fail(j, "this device holds another key for %s", h);
		}
		j->n = i + 1;
	}
	c->errmsg[0] = '\0';
	return 0;
}

static void import_start(parley_client *c, const Parley__Wire__Envelope *e, const Parley__Wire__KeyTransfer *kt)
{
	import_job *j = parley__calloc(1, sizeof(*j));
	size_t i;

	if (j == NULL)
		return; /* not confirmed: the sender keeps its copies */
	j->transfer_id = kt->transfer_id;
	snprintf(j->sender, sizeof(j->sender), "%s", e->sender_handle);
	j->sender_device = e->sender_device;
	if (import_check(c, kt, j) != 0) {
		import_finish(c, j);
		return;
	}
	/* every entity (held or not) is verified now: its id is stored with the key, and the pin must be
	 * the key; one reference per fetch plus one for this loop, so the job cannot finish under it */
	j->waiting = 1;
	for (i = 0; i < j->n; i++) {
		j->waiting++;
		if (parley_entity_get_start(c, j->ent[i].handle, on_entity, &j->ent[i]) != PARLEY_OK) {
			fail(j, "entity %s could not be fetched", j->ent[i].handle);
			j->waiting--;
		}
	}
	if (--j->waiting == 0)
		import_finish(c, j);
}

void client__keymove_receive(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	Parley__Wire__KeyTransfer *kt;

	if (ct->transfer == NULL)
		return; /* the filler of a transfer to another device of this account */
	kt = parley__wire__key_transfer__unpack(NULL, ct->transfer_len, ct->transfer);
	if (kt == NULL) {
		refuse(c, e->sender_handle, e->sender_device, "malformed");
		return;
	}
	if (kt->confirm) {
		if (kt->account_key_private.len != 0 || kt->n_entity_keys != 0)
			refuse(c, e->sender_handle, e->sender_device, "a confirm carries no key");
		else
			on_confirm(c, e, kt->transfer_id);
	} else {
		import_start(c, e, kt);
	}
	/* the unpacked copy holds private keys too */
	if (kt->account_key_private.data != NULL)
		sodium_memzero(kt->account_key_private.data, kt->account_key_private.len);
	for (size_t i = 0; i < kt->n_entity_keys; i++)
		if (kt->entity_keys[i]->private_key.data != NULL)
			sodium_memzero(kt->entity_keys[i]->private_key.data, kt->entity_keys[i]->private_key.len);
	parley__wire__key_transfer__free_unpacked(kt, NULL);
}

/* ---- parley_account_key_transfer: the account key (and the entity keys held here) to another device */

typedef struct akt_state {
	uint32_t device;
	uint64_t transfer_id;
	parley_done_cb cb;
	void *user;
} akt_state;

/* The keys going out, read from client.db (wiped by the caller with akt_keys_wipe). */
typedef struct akt_keys {
	uint8_t ak_pub[PARLEY_SIGNAL_PUBKEY_LEN], ak_priv[32];
	size_t n;
	char handle[KEYMOVE_MAX_ENTITIES][PARLEY_HANDLE_MAX + 1];
	uint8_t pub[KEYMOVE_MAX_ENTITIES][PARLEY_ENTITY_KEY_BYTES], priv[KEYMOVE_MAX_ENTITIES][32];
	Parley__Wire__EntityKeyTransfer et[KEYMOVE_MAX_ENTITIES];
	Parley__Wire__EntityKeyTransfer *etp[KEYMOVE_MAX_ENTITIES];
} akt_keys;

/* The entity keys of entities this device created or imported (entity_id 0: a create in flight). */
static int load_entity_keys(parley_client *c, akt_keys *k)
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "SELECT handle, public, private FROM entity_keys WHERE entity_id != 0"
				      " ORDER BY handle LIMIT ?",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, KEYMOVE_MAX_ENTITIES + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);
		if (k->n == KEYMOVE_MAX_ENTITIES) {
			client__set_err(c, "this device holds more than %d entity keys: too many for one transfer",
					KEYMOVE_MAX_ENTITIES);
			sqlite3_finalize(st);
			return PARLEY_E_TOO_LARGE;
		}
		if (h == NULL || sqlite3_column_bytes(st, 1) != PARLEY_ENTITY_KEY_BYTES ||
		    sqlite3_column_bytes(st, 2) != 32)
			continue; /* a corrupt row is not moved; entity_state.c reports it where it is used */
		snprintf(k->handle[k->n], sizeof(k->handle[0]), "%s", (const char *)h);
		memcpy(k->pub[k->n], sqlite3_column_blob(st, 1), PARLEY_ENTITY_KEY_BYTES);
		memcpy(k->priv[k->n], sqlite3_column_blob(st, 2), 32);
		k->n++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
}

/* Packs the transfer into *out (parley__malloc; the caller wipes and frees it). */
static int akt_pack(parley_client *c, akt_keys *k, uint64_t id, uint8_t **out, size_t *len)
{
	Parley__Wire__KeyTransfer kt = PARLEY__WIRE__KEY_TRANSFER__INIT;
	int have_private = 0;
	int rc = client__akey_load(c, k->ak_pub, k->ak_priv, &have_private);

	if (rc == PARLEY_OK && !have_private)
		rc = PARLEY_E_NO_ACCOUNT_KEY;
	if (rc == PARLEY_OK)
		rc = load_entity_keys(c, k);
	if (rc != PARLEY_OK)
		return rc;
	kt.transfer_id = id;
	kt.account_key.data = k->ak_pub;
	kt.account_key.len = sizeof(k->ak_pub);
	kt.account_key_private.data = k->ak_priv;
	kt.account_key_private.len = sizeof(k->ak_priv);
	for (size_t i = 0; i < k->n; i++) {
		parley__wire__entity_key_transfer__init(&k->et[i]);
		k->et[i].entity = k->handle[i];
		k->et[i].entity_key.data = k->pub[i];
		k->et[i].entity_key.len = PARLEY_ENTITY_KEY_BYTES;
		k->et[i].private_key.data = k->priv[i];
		k->et[i].private_key.len = 32;
		k->etp[i] = &k->et[i];
	}
	kt.n_entity_keys = k->n;
	kt.entity_keys = k->etp;
	*len = parley__wire__key_transfer__get_packed_size(&kt);
	if (*len > CONTENT_TRANSFER_MAX)
		return PARLEY_E_TOO_LARGE;
	*out = parley__malloc(*len);
	if (*out == NULL)
		return PARLEY_E_NOMEM;
	parley__wire__key_transfer__pack(&kt, *out);
	return PARLEY_OK;
}

static void akt_finish(parley_client *c, akt_state *s, int status)
{
	/* a transfer that never reached the server needs no confirm: the next one may go */
	if (status != PARLEY_OK && s->transfer_id != 0)
		(void)forget(c, s->transfer_id, c->account.handle);
	if (s->cb != NULL)
		s->cb(c, (parley_err)status, s->user);
	parley__free(s);
}

static void akt_sent(parley_client *c, parley_err status, void *user)
{
	akt_finish(c, user, status);
}

/* Records the pending rows and queues the transfer; the caller finishes s on error. */
static int akt_send(parley_client *c, akt_state *s)
{
	akt_keys *k = parley__calloc(1, sizeof(*k));
	uint8_t *packed = NULL;
	size_t len = 0, i;
	int rc;

	if (k == NULL)
		return PARLEY_E_NOMEM;
	s->transfer_id = client__keymove_new_id();
	rc = akt_pack(c, k, s->transfer_id, &packed, &len);
	/* recorded before it leaves: the confirm must find them */
	if (rc == PARLEY_OK)
		rc = pending_record(c, s->transfer_id, c->account.handle, s->device, NULL);
	for (i = 0; rc == PARLEY_OK && i < k->n; i++)
		rc = pending_record(c, s->transfer_id, c->account.handle, s->device, k->handle[i]);
	if (rc == PARLEY_OK)
		rc = client__send_key_transfer(c, c->account.handle, s->device, packed, len, akt_sent, s);
	if (packed != NULL)
		sodium_memzero(packed, len);
	parley__free(packed);
	sodium_memzero(k, sizeof(*k));
	parley__free(k);
	return rc;
}

static void akt_listed(parley_client *c, parley_err status, parley_device_list *list, void *user)
{
	akt_state *s = user;
	parley_device_info d;
	int rc = status, found = 0;

	for (size_t i = 0; rc == PARLEY_OK && i < parley_device_list_count(list); i++)
		found |= parley_device_list_get(list, i, &d) == PARLEY_OK && d.id == s->device && !d.is_self;
	parley_device_list_free(list);
	if (rc == PARLEY_OK && !found) {
		client__set_err(c, "device %u is not another device of %s (parley devices list)", (unsigned)s->device,
				c->account.handle);
		rc = PARLEY_E_NO_SUCH_DEVICE;
	}
	/* the own list this device signed last (kept when uploaded) must name it: only a device the account
	 * added gets the key, never one the server made up */
	if (rc == PARLEY_OK)
		rc = client__peer_listed_now(c, c->account.handle, s->device);
	if (rc == PARLEY_OK)
		rc = akt_send(c, s);
	if (rc != PARLEY_OK)
		akt_finish(c, s, rc);
}

/* KEY_TRANSFER_PENDING while an earlier transfer waits for a receiver that is still listed; one whose
 * receiver left the list is forgotten (it will never confirm, and this device kept its keys). */
static int akt_check_pending(parley_client *c)
{
	uint64_t id = 0;
	uint32_t device = 0;
	int rc = pending_account(c, &id, &device);

	if (rc != PARLEY_OK || id == 0)
		return rc;
	if (client__peer_listed_now(c, c->account.handle, device) != PARLEY_OK) {
		c->errmsg[0] = '\0';
		return forget(c, id, c->account.handle);
	}
	client__set_err(c, "the account key was sent to device %u, which has not confirmed yet (it must run once "
			   "to receive it; removing that device cancels the transfer)",
			(unsigned)device);
	return PARLEY_E_KEY_TRANSFER_PENDING;
}

parley_err parley_account_key_transfer_start(parley_client *c, uint32_t device_id, parley_done_cb cb, void *user)
{
	akt_state *s;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__e2e_begin(c, c->account.handle);
	if (rc == PARLEY_OK)
		rc = client__require_account_key(c);
	if (rc == PARLEY_OK && (device_id == 0 || device_id == c->account.device_id)) {
		client__set_err(c, "the account key goes to another device of this account, not this one");
		rc = PARLEY_E_NO_SUCH_DEVICE;
	}
	if (rc == PARLEY_OK)
		rc = akt_check_pending(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	s = parley__calloc(1, sizeof(*s));
	if (s == NULL)
		return PARLEY_E_NOMEM;
	s->device = device_id;
	s->cb = cb;
	s->user = user;
	rc = client__devices_list_submit(c, akt_listed, s);
	if (rc != PARLEY_OK)
		parley__free(s);
	return (parley_err)rc;
}

parley_err parley_account_key_transfer(parley_client *c, uint32_t device_id)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_account_key_transfer_start(c, device_id, client__sync_done, &s));
}
