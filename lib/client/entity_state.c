/* Entities on the client, local side: the entity keys this device holds, the pins of entities it has
 * seen, and the verification of a fetched entity (include/parley/entity.h has the rules).
 *
 * Two tables of client.db (0600, like the device key), versioned as their own schema
 * ("client.entities") so they migrate independently of state.c's:
 *   entity_keys(handle)  the entity key pairs created here (parley_entity_create). entity_id 0 while the
 *                        create is in flight: the key is saved BEFORE the request, so an entity the server
 *                        accepted never exists without its key, whatever crashes in between.
 *   entity_pins(handle)  per entity handle the first entity key seen (TOFU) and the highest staff list
 *                        version verified: a server replaying an older list (one that still names a
 *                        removed agent) is refused with STAFF_LIST_ROLLBACK.
 *   entity_lists(handle) the signed staff list of the highest version verified, as fetched (threads
 *                        check against it without a request; loading re-verifies it).
 */
#include <string.h>

#include "client/entity_internal.h"
#include "common/alloc.h"
#include "common/migrate.h"
#include "crypto/crypto.h"

static const char *const entity_steps[] = {
	/* 1 */
	"CREATE TABLE entity_keys (handle TEXT PRIMARY KEY, entity_id INTEGER NOT NULL, public BLOB NOT NULL,"
	"  private BLOB NOT NULL, created_ms INTEGER NOT NULL);"
	"CREATE TABLE entity_pins (handle TEXT PRIMARY KEY, entity_key BLOB NOT NULL,"
	"  staff_version INTEGER NOT NULL, seen_ms INTEGER NOT NULL);",
	/* 2: the signed staff list of the pinned version as fetched, so threads (thread_state.c) check
	 * events and senders synchronously on receive; re-verified under the pinned key when loaded */
	"CREATE TABLE entity_lists (handle TEXT PRIMARY KEY, entity_id INTEGER NOT NULL,"
	"  version INTEGER NOT NULL, raw BLOB NOT NULL);",
};

static const migrate_schema entity_schema = {
	.name = "client.entities",
	MIGRATE_STEPS(entity_steps),
	.legacy_user_version = 0,
};

static int account_and_e2e(parley_client *c)
{
	int rc = client__load_account(c);
	return rc == PARLEY_OK ? client__e2e_open(c) : rc;
}

int client__entity_ready(parley_client *c)
{
	return client__schema_ready(c, &c->entities_ready, account_and_e2e, &entity_schema);
}

int client__entity_key_load(parley_client *c, const char *handle, uint8_t pub[PARLEY_ENTITY_KEY_BYTES],
			    uint8_t priv[32])
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT public, private FROM entity_keys WHERE handle = ?",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == PARLEY_ENTITY_KEY_BYTES &&
	    sqlite3_column_bytes(st, 1) == 32) {
		memcpy(pub, sqlite3_column_blob(st, 0), PARLEY_ENTITY_KEY_BYTES);
		memcpy(priv, sqlite3_column_blob(st, 1), 32);
		rc = PARLEY_OK;
	} else if (rc == SQLITE_ROW) {
		client__set_err(c, "client.db: the entity key of %s is corrupt", handle);
		rc = PARLEY_E_STORE;
	} else if (rc == SQLITE_DONE) {
		client__set_err(c, "this device does not hold the entity key of %s (the primary admin's device does)",
				handle);
		rc = PARLEY_E_ENTITY_KEY_REQUIRED;
	} else {
		rc = client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

int client__entity_key_new(parley_client *c, const char *handle, uint8_t pub[PARLEY_ENTITY_KEY_BYTES])
{
	crypto_keypair kp;
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT 1 FROM entity_keys WHERE handle = ? AND entity_id != 0", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW) {
		client__set_err(c, "this device already created entity %s", handle);
		return PARLEY_E_EXISTS;
	}
	rc = crypto__keypair_generate(&kp);
	if (rc != PARLEY_OK)
		return rc;
	crypto__pubkey_serialize(pub, kp.pub);
	/* a leftover of a create that failed before its answer is replaced: it never named an entity */
	rc = client__sql_prep(c,
			      "INSERT OR REPLACE INTO entity_keys (handle, entity_id, public, private, created_ms)"
			      " VALUES (?, 0, ?, ?, ?)",
			      &st);
	if (rc == PARLEY_OK) {
		sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, pub, PARLEY_ENTITY_KEY_BYTES, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, kp.priv, sizeof(kp.priv), SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)client__now_ms());
		rc = client__sql_done(c, st);
	}
	crypto__keypair_wipe(&kp);
	return rc;
}

int client__entity_key_done(parley_client *c, const char *handle, uint64_t entity_id, int ok)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  ok ? "UPDATE entity_keys SET entity_id = ? WHERE handle = ? AND entity_id = 0"
				     : "DELETE FROM entity_keys WHERE entity_id = ? AND handle = ?",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, ok ? (sqlite3_int64)entity_id : 0);
	sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

int client__entity_key_import(parley_client *c, const char *handle, uint64_t entity_id, const uint8_t priv[32],
			      const uint8_t pub[PARLEY_ENTITY_KEY_BYTES])
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	/* never replaces a key: a transfer cannot take an entity away from the key this device has */
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "INSERT INTO entity_keys (handle, entity_id, public, private, created_ms)"
				      " VALUES (?, ?, ?, ?, ?) ON CONFLICT (handle) DO NOTHING",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)entity_id);
	sqlite3_bind_blob(st, 3, pub, PARLEY_ENTITY_KEY_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, priv, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)client__now_ms());
	rc = client__sql_done(c, st);
	if (rc == PARLEY_OK && sqlite3_changes(client__state_db(c->state)) == 0) {
		uint8_t have[PARLEY_ENTITY_KEY_BYTES], hpriv[32];
		rc = client__entity_key_load(c, handle, have, hpriv);
		crypto__wipe(hpriv, sizeof(hpriv));
		if (rc == PARLEY_OK && !crypto__ct_equal(have, pub, sizeof(have))) {
			client__set_err(c, "this device holds another key for entity %s", handle);
			rc = PARLEY_E_EXISTS;
		}
	}
	return rc;
}

int client__entity_keys_held(parley_client *c, char (*out)[PARLEY_HANDLE_MAX + 1], size_t max, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	*n = 0;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT handle FROM entity_keys WHERE entity_id != 0 ORDER BY handle", &st);
	if (rc != PARLEY_OK)
		return rc;
	while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);
		if (h != NULL && snprintf(out[*n], sizeof(out[*n]), "%s", (const char *)h) < (int)sizeof(out[*n]))
			(*n)++;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__entity_pinned_key(parley_client *c, const char *handle, uint8_t key[PARLEY_ENTITY_KEY_BYTES])
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT entity_key FROM entity_pins WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == PARLEY_ENTITY_KEY_BYTES) {
		memcpy(key, sqlite3_column_blob(st, 0), PARLEY_ENTITY_KEY_BYTES);
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_E_NOT_FOUND : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

int client__entity_unpin(parley_client *c, const char *handle)
{
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "DELETE FROM entity_pins WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

/* The pin check and update, in one transaction so two processes cannot both pin a first key. */
int client__entity_pin(parley_client *c, const char *handle, const uint8_t key[PARLEY_ENTITY_KEY_BYTES], uint64_t version)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int rc = client__entity_ready(c), step;

	if (rc != PARLEY_OK)
		return rc;
	db = client__state_db(c->state);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return client__sql_err(c);
	rc = client__sql_prep(c, "SELECT entity_key, staff_version FROM entity_pins WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		goto out;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const void *pinned = sqlite3_column_blob(st, 0);
		uint64_t seen = (uint64_t)sqlite3_column_int64(st, 1);

		if (sqlite3_column_bytes(st, 0) != PARLEY_ENTITY_KEY_BYTES ||
		    memcmp(pinned, key, PARLEY_ENTITY_KEY_BYTES) != 0) {
			client__set_err(c, "the entity key of %s changed (re-created?): compare the entity safety "
					   "number, then parley_entity_trust", handle);
			rc = PARLEY_E_UNTRUSTED_IDENTITY;
		} else if (version < seen) {
			client__set_err(c, "%s: staff list version %llu is older than version %llu seen before", handle,
					(unsigned long long)version, (unsigned long long)seen);
			rc = PARLEY_E_STAFF_LIST_ROLLBACK;
		}
	} else if (step != SQLITE_DONE) {
		rc = client__sql_err(c);
	}
	sqlite3_finalize(st);
	if (rc != PARLEY_OK)
		goto out;
	rc = client__sql_prep(c,
			      "INSERT INTO entity_pins (handle, entity_key, staff_version, seen_ms) VALUES (?, ?, ?, ?)"
			      " ON CONFLICT(handle) DO UPDATE SET staff_version = MAX(staff_version, excluded.staff_version),"
			      " seen_ms = excluded.seen_ms",
			      &st);
	if (rc != PARLEY_OK)
		goto out;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, key, PARLEY_ENTITY_KEY_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)version);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)client__now_ms());
	rc = client__sql_done(c, st);
out:
	if (sqlite3_exec(db, rc == PARLEY_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && rc == PARLEY_OK)
		rc = client__sql_err(c);
	return rc;
}

/* Keeps e's raw list if it is at least as new as the kept one (the pin just accepted its version). */
static int keep_list(parley_client *c, const parley_entity *e)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  "INSERT INTO entity_lists (handle, entity_id, version, raw) VALUES (?, ?, ?, ?)"
				  " ON CONFLICT(handle) DO UPDATE SET entity_id = excluded.entity_id,"
				  " version = excluded.version, raw = excluded.raw WHERE excluded.version >= version",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, e->handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)e->id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->sl.version);
	sqlite3_bind_blob(st, 4, e->raw, (int)e->raw_len, SQLITE_STATIC);
	return client__sql_done(c, st);
}

int client__entity_kept(parley_client *c, const char *handle, parley_entity **out)
{
	uint8_t pinned[PARLEY_ENTITY_KEY_BYTES];
	sqlite3_stmt *st = NULL;
	parley_entity *e = NULL;
	int rc = client__entity_pinned_key(c, handle, pinned);

	*out = NULL;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT entity_id, raw FROM entity_lists WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc == PARLEY_E_NOT_FOUND ? PARLEY_E_NO_SUCH_ENTITY : rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? PARLEY_E_NO_SUCH_ENTITY : client__sql_err(c);
		goto out;
	}
	e = parley__calloc(1, sizeof(*e));
	size_t len = (size_t)sqlite3_column_bytes(st, 1);
	if (e == NULL || len == 0 || (e->raw = parley__malloc(len)) == NULL) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	memcpy(e->raw, sqlite3_column_blob(st, 1), len);
	e->raw_len = len;
	e->id = (uint64_t)sqlite3_column_int64(st, 0);
	snprintf(e->handle, sizeof(e->handle), "%s", handle);
	/* client.db is the user's own file, but a list is believed only under the pinned key, as fetched */
	rc = wire__stafflist_verify(e->raw, e->raw_len, &e->sl);
	if (rc == PARLEY_OK && (strcmp(e->sl.handle, handle) != 0 ||
				memcmp(e->sl.entity_key, pinned, PARLEY_ENTITY_KEY_BYTES) != 0))
		rc = PARLEY_E_STAFF_LIST_INVALID;
	if (rc != PARLEY_OK) {
		client__set_err(c, "client.db: the kept staff list of %s does not verify under its pinned key", handle);
		rc = PARLEY_E_STAFF_LIST_INVALID;
	}
out:
	sqlite3_finalize(st);
	if (rc != PARLEY_OK) {
		parley_entity_free(e);
		return rc;
	}
	*out = e;
	return PARLEY_OK;
}

int client__entity_verify(parley_client *c, const char *handle, const Parley__Wire__Entity *w, parley_entity **out)
{
	uint8_t pub[PARLEY_ENTITY_KEY_BYTES], priv[32];
	parley_entity *e;
	int rc;

	*out = NULL;
	rc = client__entity_ready(c);
	if (rc != PARLEY_OK)
		return rc;
	e = parley__calloc(1, sizeof(*e));
	if (e == NULL)
		return PARLEY_E_NOMEM;
	snprintf(e->handle, sizeof(e->handle), "%s", handle);
	if (w == NULL || w->signed_staff_list.len == 0 || w->signed_staff_list.len > WIRE_STAFFLIST_MAX_BYTES) {
		rc = PARLEY_E_STAFF_LIST_INVALID;
		goto fail;
	}
	e->raw = parley__malloc(w->signed_staff_list.len);
	if (e->raw == NULL) {
		rc = PARLEY_E_NOMEM;
		goto fail;
	}
	memcpy(e->raw, w->signed_staff_list.data, w->signed_staff_list.len);
	e->raw_len = w->signed_staff_list.len;
	rc = wire__stafflist_verify(e->raw, e->raw_len, &e->sl);
	if (rc != PARLEY_OK) {
		client__set_err(c, "%s: the staff list is malformed or not signed by its entity key", handle);
		goto fail;
	}
	/* a list signed for another entity (the server swapping two businesses' lists) */
	/* version 1 is signed before the server gives the entity its id: it carries 0; later ones the id */
	if (strcmp(e->sl.handle, handle) != 0 || w->entity_id == 0 ||
	    e->sl.entity_id != (e->sl.version == 1 ? 0 : w->entity_id)) {
		client__set_err(c, "%s: the server sent the staff list of another entity", handle);
		rc = PARLEY_E_STAFF_LIST_INVALID;
		goto fail;
	}
	e->id = w->entity_id;
	rc = client__entity_pin(c, handle, e->sl.entity_key, e->sl.version);
	if (rc == PARLEY_OK)
		rc = keep_list(c, e);
	if (rc != PARLEY_OK)
		goto fail;
	if (client__entity_key_load(c, handle, pub, priv) == PARLEY_OK)
		e->key_here = memcmp(pub, e->sl.entity_key, PARLEY_ENTITY_KEY_BYTES) == 0;
	crypto__wipe(priv, sizeof(priv));
	c->errmsg[0] = '\0';
	*out = e;
	return PARLEY_OK;
fail:
	parley_entity_free(e);
	return rc;
}

int client__entity_member_devlist(const uint8_t *devlist, size_t len, uint64_t account_id,
				  const uint8_t account_key[PARLEY_ENTITY_KEY_BYTES], wire_devlist *out)
{
	if (len == 0)
		return PARLEY_E_NO_DEVICE_LIST;
	if (wire__devlist_verify(devlist, len, out) != PARLEY_OK || out->account_id != account_id ||
	    memcmp(out->account_key, account_key, PARLEY_ENTITY_KEY_BYTES) != 0)
		return PARLEY_E_DEVICE_LIST_INVALID;
	return PARLEY_OK;
}

/* ---- the public view ---- */

int client__entity_join_role(int wire_role)
{
	/* the code's role as the server relays it; anything unknown joins as the least trusted staff
	 * role the old clients assumed (the approval and the list name the role, so both sides agree) */
	return wire_role == PARLEY__WIRE__ENTITY_ROLE__ROLE_BOT       ? PARLEY_ROLE_BOT
	       : wire_role == PARLEY__WIRE__ENTITY_ROLE__ROLE_GATEWAY ? PARLEY_ROLE_GATEWAY
								     : PARLEY_ROLE_AGENT;
}

const char *parley_entity_role_name(int role)
{
	switch (role) {
	case PARLEY_ROLE_ADMIN:
		return "admin";
	case PARLEY_ROLE_AGENT:
		return "agent";
	case PARLEY_ROLE_BOT:
		return "bot";
	case PARLEY_ROLE_GATEWAY:
		return "gateway";
	default:
		return "none";
	}
}

const char *parley_entity_handle(const parley_entity *e)
{
	return e != NULL ? e->handle : "";
}

const char *parley_entity_display_name(const parley_entity *e)
{
	return e != NULL ? e->sl.display_name : "";
}

uint64_t parley_entity_id(const parley_entity *e)
{
	return e != NULL ? e->id : 0;
}

uint64_t parley_entity_staff_version(const parley_entity *e)
{
	return e != NULL ? e->sl.version : 0;
}

const uint8_t *parley_entity_key(const parley_entity *e)
{
	return e != NULL ? e->sl.entity_key : NULL;
}

void parley_entity_rules(const parley_entity *e, int *lock_mode, int *admins_exempt, unsigned *default_rules)
{
	if (e == NULL)
		return;
	if (lock_mode != NULL)
		*lock_mode = e->sl.lock_mode;
	if (admins_exempt != NULL)
		*admins_exempt = e->sl.admins_exempt;
	if (default_rules != NULL)
		*default_rules = e->sl.default_flags;
}

size_t parley_entity_member_count(const parley_entity *e)
{
	return e != NULL ? e->sl.n : 0;
}

int parley_entity_key_here(const parley_entity *e)
{
	return e != NULL && e->key_here;
}

parley_err parley_entity_member_get(const parley_entity *e, size_t i, parley_entity_member *out)
{
	const wire_staff_member *m;
	wire_devlist *dl;

	if (e == NULL || out == NULL || i >= e->sl.n)
		return PARLEY_E_INVAL;
	m = &e->sl.members[i];
	memset(out, 0, sizeof(*out));
	snprintf(out->handle, sizeof(out->handle), "%s", m->handle);
	out->account_id = m->account_id;
	out->role = (parley_entity_role)m->role;
	out->primary = (m->flags & 1) != 0;
	out->rules_mask = m->rules_mask;
	out->rules_values = m->rules_values;
	out->rules = wire__stafflist_effective_rules(&e->sl, m);
	dl = parley__malloc(sizeof(*dl)); /* 4.6 KB: not on a caller's stack */
	if (dl != NULL && client__entity_member_devlist(m->devlist, m->devlist_len, m->account_id, m->account_key, dl) ==
				  PARLEY_OK)
		out->n_devices = dl->n;
	parley__free(dl);
	return PARLEY_OK;
}

void parley_entity_free(parley_entity *e)
{
	if (e == NULL)
		return;
	if (e->raw != NULL)
		wire__stafflist_free(&e->sl);
	parley__free(e->raw);
	parley__free(e);
}
