/* Safety numbers and trust decisions (docs/signal.md): the 60-digit fingerprint of this device's
 * identity key and a peer device's, and parley_trust / parley_trust_key, which accept the changed
 * identity keys the user verified. A device may have several pending keys (table pending_keys): a
 * stranger can claim any number of identities for its own address, so the user picks the verified one
 * by its safety number; accepting a key retries the sender's quarantined envelopes (quarantine.c). */
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
			      "SELECT device_id FROM pending_keys WHERE handle = ?1 ORDER BY 1",
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
	/* the key seen last, when there are several (parley_pending_keys lists them all) */
	int rc = client__sql_prep(c,
				  "SELECT key FROM pending_keys WHERE handle = ? AND device_id = ? ORDER BY rowid DESC"
				  " LIMIT 1",
				  &st);

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

/* libsignal's displayable fingerprint of (this account, mine) and (handle, theirs). */
static int safety_digits(parley_client *c, const char *handle, const uint8_t mine[PARLEY_SIGNAL_PUBKEY_LEN],
			 const uint8_t theirs[PARLEY_SIGNAL_PUBKEY_LEN], char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	parley_fingerprint *fp = NULL;
	int rc = parley_fingerprint_new(&fp, PARLEY_FINGERPRINT_VERSION, PARLEY_FINGERPRINT_ITERATIONS,
					(const uint8_t *)c->account.handle, strlen(c->account.handle), mine,
					PARLEY_SIGNAL_PUBKEY_LEN, (const uint8_t *)handle, strlen(handle), theirs,
					PARLEY_SIGNAL_PUBKEY_LEN);
	if (rc != PARLEY_OK)
		return rc;
	memcpy(out, parley_fingerprint_display(fp), PARLEY_SAFETY_NUMBER_LEN);
	out[PARLEY_SAFETY_NUMBER_LEN] = '\0';
	parley_fingerprint_free(fp);
	return PARLEY_OK;
}

/* Per device (pending keys of a device): this device's identity key and theirs. */
static int device_digits(parley_client *c, const char *handle, const uint8_t theirs[PARLEY_SIGNAL_PUBKEY_LEN],
			 char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	parley_keypair mine;
	int rc = c->sigstore.get_identity_keypair(c->sigstore.user, &mine);
	if (rc == PARLEY_OK)
		rc = safety_digits(c, handle, mine.pub, theirs, out);
	parley_signal_keypair_wipe(&mine);
	return rc;
}

/* Issue 9: the two ACCOUNT keys when both are known (linking a device changes nothing, registering
 * again does): theirs = the pending key of a re-registered peer (*changed = 1), else the pinned one.
 * *done = 0 when either is unknown (an account from before account keys): the device keys then. */
static int account_digits(parley_client *c, const char *handle, int *changed, char out[PARLEY_SAFETY_NUMBER_LEN + 1],
			  int *done)
{
	uint8_t mine[PARLEY_SIGNAL_PUBKEY_LEN], theirs[PARLEY_SIGNAL_PUBKEY_LEN];
	int have_mine = 0, have_theirs = 0, pending = 0;
	int rc = client__peer_pinned_key(c, c->account.handle, mine, &have_mine);
	if (rc == PARLEY_OK)
		rc = client__peer_pending_key(c, handle, theirs, &pending);
	if (rc == PARLEY_OK && !pending)
		rc = client__peer_pinned_key(c, handle, theirs, &have_theirs);
	*done = 0;
	if (rc != PARLEY_OK || !have_mine || !(pending || have_theirs))
		return rc;
	rc = safety_digits(c, handle, mine, theirs, out);
	*done = rc == PARLEY_OK;
	*changed = pending;
	return rc;
}

parley_err parley_safety_number(parley_client *c, const char *handle, size_t index, uint32_t *device_id,
				int *changed, char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	uint8_t theirs[PARLEY_SIGNAL_PUBKEY_LEN];
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
	int by_account = 0, dev_pending = 0;
	rc = account_digits(c, handle, &pending, out, &by_account);
	/* the number is the account's, but a device key still waiting for trust is a change to show */
	if (rc == PARLEY_OK && by_account && !pending && pending_key(c, handle, dev, theirs, &dev_pending) == PARLEY_OK)
		pending = dev_pending;
	if (rc == PARLEY_OK && !by_account) {
		rc = pending_key(c, handle, dev, theirs, &pending);
		if (rc == PARLEY_OK && !pending) {
			parley_signal_address a = {handle, dev};
			rc = parley_signal_remote_identity(c->sig, &a, theirs);
		}
		if (rc == PARLEY_OK)
			rc = device_digits(c, handle, theirs, out);
	}
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	if (device_id != NULL)
		*device_id = dev;
	if (changed != NULL)
		*changed = pending;
	return PARLEY_OK;
}

/* Accepts key for (handle, device) (e2e.c: the identity, the old session dropped, no longer pending) and
 * marks handle's quarantine for a retry. */
static int accept_key(parley_client *c, const char *handle, uint32_t device, const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN])
{
	int rc = client__e2e_accept_identity(c, handle, device, key);
	if (rc == PARLEY_OK)
		rc = client__quarantine_mark(c, handle);
	return rc;
}

/* One pending key of handle, in rowid order (the order they were last seen). */
typedef int (*pending_fn)(parley_client *c, const char *handle, uint32_t device, uint64_t seen_ms,
			  const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], void *ctx);

static int each_pending(parley_client *c, const char *handle, pending_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "SELECT device_id, seen_ms, key FROM pending_keys WHERE handle = ? ORDER BY rowid",
				  &st);
	int r;

	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	while (rc == PARLEY_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
		uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN];
		if (sqlite3_column_bytes(st, 2) != PARLEY_SIGNAL_PUBKEY_LEN)
			continue;
		memcpy(key, sqlite3_column_blob(st, 2), sizeof(key));
		rc = fn(c, handle, (uint32_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1), key,
			ctx);
	}
	if (rc == PARLEY_OK && r != SQLITE_DONE)
		rc = client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

/* ---- parley_trust: every pending key, when each device has one ---- */

typedef struct trust_scan {
	size_t n;
	uint32_t devices[64];
	size_t ndev;
	int ambiguous;
	uint32_t ambiguous_device;
} trust_scan;

static int scan_one(parley_client *c, const char *handle, uint32_t device, uint64_t seen_ms,
		    const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], void *ctx)
{
	trust_scan *t = ctx;
	for (size_t i = 0; i < t->ndev; i++)
		if (t->devices[i] == device) {
			t->ambiguous = 1;
			t->ambiguous_device = device;
			return PARLEY_OK;
		}
	if (t->ndev < sizeof(t->devices) / sizeof(t->devices[0]))
		t->devices[t->ndev++] = device;
	return PARLEY_OK;
}

static int accept_one(parley_client *c, const char *handle, uint32_t device, uint64_t seen_ms,
		      const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], void *ctx)
{
	int rc = accept_key(c, handle, device, key);
	if (rc == PARLEY_OK)
		((trust_scan *)ctx)->n++;
	return rc;
}

parley_err parley_trust(parley_client *c, const char *handle, size_t *accepted)
{
	trust_scan t;
	int rc;

	if (c == NULL)
		return PARLEY_E_INVAL;
	if (accepted != NULL)
		*accepted = 0;
	c->errmsg[0] = '\0';
	memset(&t, 0, sizeof(t));
	rc = client__e2e_begin(c, handle);
	/* a changed account key (the peer registered again, issue 9) is accepted first: its lists then
	 * start over under the new key */
	int ak_changed = 0;
	if (rc == PARLEY_OK)
		rc = client__peer_trust_key(c, handle, &ak_changed);
	/* the new key's list is not kept yet: fetched now, and its answer retries the quarantine, where
	 * the new devices' first messages wait (their identity keys are the ones that list names) */
	if (rc == PARLEY_OK && ak_changed)
		client__peer_refetch(c, handle);
	if (rc == PARLEY_OK)
		rc = each_pending(c, handle, scan_one, &t);
	if (rc == PARLEY_OK && t.ambiguous) {
		/* Several keys claim the same device: accepting "the" new key would be a guess, and possibly
		 * the stranger's. */
		client__set_err(c, "%s device %u has several pending identity keys: compare their safety numbers "
				   "(parley trust %s lists them) and accept one with parley trust %s --key DIGITS",
				handle, (unsigned)t.ambiguous_device, handle, handle);
		return PARLEY_E_AMBIGUOUS_IDENTITY;
	}
	if (rc == PARLEY_OK)
		rc = each_pending(c, handle, accept_one, &t);
	t.n += (size_t)ak_changed;
	if (accepted != NULL)
		*accepted = t.n;
	if (rc == PARLEY_OK && t.n != 0)
		client__recv_retry_quarantine(c);
	return (parley_err)rc;
}

/* ---- choosing among several ---- */

typedef struct pending_list {
	parley_pending_key *out;
	size_t max, n;
	const char *digits; /* parley_trust_key: the safety number to find */
	uint32_t device;
	int found;
	uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN];
} pending_list;

static int list_one(parley_client *c, const char *handle, uint32_t device, uint64_t seen_ms,
		    const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], void *ctx)
{
	pending_list *l = ctx;
	parley_pending_key *p;
	char sn[PARLEY_SAFETY_NUMBER_LEN + 1];
	int rc;

	if (l->digits != NULL) {
		if (device != l->device || l->found)
			return PARLEY_OK;
		rc = device_digits(c, handle, key, sn);
		if (rc == PARLEY_OK && strcmp(sn, l->digits) == 0) {
			l->found = 1;
			memcpy(l->key, key, sizeof(l->key));
		}
		return rc;
	}
	if (l->n == l->max)
		return PARLEY_OK;
	p = &l->out[l->n];
	memset(p, 0, sizeof(*p));
	p->device_id = device;
	p->seen_ms = seen_ms;
	memcpy(p->key, key, sizeof(p->key));
	rc = device_digits(c, handle, key, p->safety_number);
	if (rc == PARLEY_OK)
		l->n++;
	return rc;
}

parley_err parley_pending_keys(parley_client *c, const char *handle, parley_pending_key *out, size_t max, size_t *n)
{
	pending_list l;
	int rc;

	if (c == NULL || n == NULL || (out == NULL && max != 0))
		return PARLEY_E_INVAL;
	*n = 0;
	c->errmsg[0] = '\0';
	memset(&l, 0, sizeof(l));
	l.out = out;
	l.max = max;
	rc = client__e2e_begin(c, handle);
	if (rc == PARLEY_OK)
		rc = each_pending(c, handle, list_one, &l);
	*n = l.n;
	return (parley_err)rc;
}

parley_err parley_trust_key(parley_client *c, const char *handle, uint32_t device_id, const char *safety_number)
{
	char digits[PARLEY_SAFETY_NUMBER_LEN + 1];
	pending_list l;
	size_t k = 0;
	int rc;

	if (c == NULL || safety_number == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	/* digits only; the display groups them by five with spaces */
	for (const char *p = safety_number; *p != '\0'; p++) {
		if (*p == ' ')
			continue;
		if (*p < '0' || *p > '9' || k == PARLEY_SAFETY_NUMBER_LEN)
			return PARLEY_E_INVAL;
		digits[k++] = *p;
	}
	if (k != PARLEY_SAFETY_NUMBER_LEN)
		return PARLEY_E_INVAL;
	digits[k] = '\0';
	memset(&l, 0, sizeof(l));
	l.digits = digits;
	l.device = device_id;
	rc = client__e2e_begin(c, handle);
	if (rc == PARLEY_OK)
		rc = each_pending(c, handle, list_one, &l);
	if (rc == PARLEY_OK && !l.found) {
		client__set_err(c, "no pending identity key of %s device %u has that safety number", handle,
				(unsigned)device_id);
		rc = PARLEY_E_NOT_FOUND;
	}
	if (rc == PARLEY_OK)
		rc = accept_key(c, handle, device_id, l.key);
	if (rc == PARLEY_OK)
		client__recv_retry_quarantine(c);
	return (parley_err)rc;
}
