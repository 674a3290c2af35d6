/* Signed device lists on the server (docs/protocol.md §11): upload (and SetAccountKey, the one-time key
 * of an account registered before account keys existed) and lookup. The server cannot make a list: it
 * verifies the record's signature here, on the loop thread (the expensive part, kept off the store
 * thread), and the store checks the rest against its rows in the transaction that stores it (the
 * account's key, id and handle, a higher version, every device listed with its keys: sql/accounts.c
 * set_devlist). */
#include <string.h>

#include <parley/error.h>

#include "accounts/accounts.h"
#include "common/alloc.h"
#include "crypto/crypto.h"
#include "wire/devlist.h"

static void submit_as(store_client *sc, store_job *job, uint64_t account, uint32_t device, svc_cb cb, void *arg)
{
	job->caller_account = account;
	job->caller_device = device;
	int rc = store__submit(sc, job, cb, arg);
	if (rc != PARLEY_OK) {
		store__job_free(job);
		cb(arg, rc, NULL);
	}
}

void accounts__upload_devlist(store_client *sc, uint64_t account, uint32_t device, const uint8_t *rec,
			      size_t len, const uint8_t *set_key, size_t set_key_len, uint64_t now_ms, svc_cb cb,
			      void *arg)
{
	store_job *job = store__job_new(STORE_OP_SET_DEVLIST);
	wire_devlist *l = parley__malloc(sizeof(*l));
	uint8_t *copy = len > 0 ? parley__malloc(len) : NULL;
	int rc = job == NULL || l == NULL || (len > 0 && copy == NULL) ? PARLEY_E_NOMEM : PARLEY_OK;

	if (rc == PARLEY_OK)
		rc = wire__devlist_verify(rec, len, l);
	/* SetAccountKey names the key it sets: it must be the one that signed the list */
	if (rc == PARLEY_OK && set_key != NULL &&
	    (set_key_len != 33 || memcmp(set_key, l->account_key, 33) != 0))
		rc = PARLEY_E_DEVICE_LIST_INVALID;
	if (rc != PARLEY_OK) {
		if (job != NULL)
			store__job_free(job);
		parley__free(l);
		parley__free(copy);
		cb(arg, rc, NULL);
		return;
	}
	memcpy(copy, rec, len);
	job->account_id = account;
	job->now_ms = now_ms;
	job->acct.devlist = copy;
	job->acct.devlist_len = len;
	job->acct.parsed = l;
	job->acct.set_key = set_key != NULL;
	submit_as(sc, job, account, device, cb, arg);
}

void accounts__get_devlist(store_client *sc, uint64_t account, uint32_t device, const char *handle, svc_cb cb,
			   void *arg)
{
	if (!wire__handle_valid(handle)) {
		cb(arg, PARLEY_E_BAD_HANDLE, NULL);
		return;
	}
	store_job *job = store__job_new(STORE_OP_GET_DEVLIST);
	if (job == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	(void)store__job_set_handle(job, handle); /* length checked by the handle rule */
	submit_as(sc, job, account, device, cb, arg);
}

int accounts__check_account_key(const uint8_t *key, size_t len)
{
	uint8_t raw[32];
	if (len != 33 || crypto__pubkey_parse(raw, key, len) != PARLEY_OK)
		return PARLEY_E_INVALID_KEY;
	return PARLEY_OK;
}
