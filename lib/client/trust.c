/* Safety numbers and trust decisions (docs/signal.md): the 60-digit fingerprint of this device's
 * identity key and a peer device's, and parley_trust, which accepts the changed identity keys the user
 * verified. */
#include <string.h>

#include <parley/fingerprint.h>

#include "client/client_internal.h"
#include "common/alloc.h"

/* A blocking fetch of every bundle of handle, for a safety number with a peer we never talked to. */
typedef struct fetch_wait {
	client_sync sync;
	const char *handle;
} fetch_wait;

static void on_fetch_bundles(parley_client *c, int status, const Parley__Wire__GetBundlesResponse *r, void *ctx)
{
	fetch_wait *w = ctx;

	if (status == PARLEY_OK)
		status = client__e2e_process_bundles(c, w->handle, r, 0);
	client__sync_done(c, (parley_err)status, &w->sync);
}

static int fetch_all_bundles(parley_client *c, const char *handle)
{
	fetch_wait w;

	memset(&w, 0, sizeof(w));
	w.handle = handle;
	return client__sync_wait(c, &w.sync, client__e2e_fetch_bundles(c, handle, 0, on_fetch_bundles, &w));
}

/* Device `index` (in id order) of handle among known and pending devices. */
static int nth_device(parley_client *c, const char *handle, size_t index, uint32_t *device, int *found)
{
	sqlite3_stmt *st = NULL;
	size_t i = 0;
	int rc;

	*found = 0;
	rc = client__sql_prep(c,
			      "SELECT device_id FROM peer_devices WHERE handle = ?1 UNION "
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
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

static int pending_key(parley_client *c, const char *handle, uint32_t device, uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN],
		       int *found)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "SELECT key FROM pending_identity WHERE handle = ? AND device_id = ?", &st);

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

parley_err parley_safety_number(parley_client *c, const char *handle, size_t index, uint32_t *device_id,
				int *changed, char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	uint8_t theirs[PARLEY_SIGNAL_PUBKEY_LEN];
	parley_keypair mine;
	parley_fingerprint *fp = NULL;
	uint32_t dev = 0;
	int found, pending, rc;

	if (c == NULL || out == NULL)
		return PARLEY_E_INVAL;
	if (client__sync_refused(c)) /* it may fetch bundles, a blocking request */
		return PARLEY_E_STATE;
	c->errmsg[0] = '\0';
	rc = client__e2e_begin(c, handle);
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

	if (c == NULL)
		return PARLEY_E_INVAL;
	if (accepted != NULL)
		*accepted = 0;
	c->errmsg[0] = '\0';
	rc = client__e2e_begin(c, handle);
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT device_id, key FROM pending_identity WHERE handle = ?", &st);
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
		rc = client__sql_prep(c, "DELETE FROM pending_identity WHERE handle = ?", &st);
		if (rc == PARLEY_OK) {
			sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
			rc = client__sql_done(c, st);
		}
	}
	if (accepted != NULL)
		*accepted = n;
	return (parley_err)rc;
}
