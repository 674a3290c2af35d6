/* Shared set-up for the key server and relay unit tests: a real SQLite store in a temp dir, one loop. */
#ifndef PARLEY_TEST_KEYS_COMMON_H
#define PARLEY_TEST_KEYS_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "store/store.h"
#include "store_loop.h"

static uv_loop_t loop;
static store *st;
static store_client *sc;
static test_store_client tsc;
static char dbdir[] = "/tmp/parley-keys-XXXXXX";
static char dbpath[200];

static void setup(void)
{
	if (mkdtemp(dbdir) == NULL)
		abort();
	snprintf(dbpath, sizeof(dbpath), "%s/t.db", dbdir);
	store_config cfg = {.path = dbpath};
	if (store__open(&cfg, &st) != PARLEY_OK || uv_loop_init(&loop) != 0 || test_store_client_open(&tsc, st, &loop, &sc) != PARLEY_OK)
		abort();
	crypto__init();
}

static void teardown(void)
{
	test_store_client_close(&tsc);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	store__close(st);
	unlink(dbpath);
	char p[220];
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	rmdir(dbdir);
}

/* account with `ndev` devices; returns the account id */
static uint64_t make_account(const char *handle, unsigned ndev)
{
	static uint8_t seed;
	store_job *j = store__job_new(STORE_OP_CREATE_ACCOUNT);
	store__job_set_handle(j, handle);
	memset(j->acct.key, ++seed, sizeof(j->acct.key));
	if (store__run_sync(st, j) != PARLEY_OK)
		abort();
	uint64_t acc = j->account_id;
	store__job_free(j);
	for (unsigned i = 1; i < ndev; i++) {
		j = store__job_new(STORE_OP_ADD_DEVICE);
		j->account_id = acc;
		memset(j->acct.key, ++seed, sizeof(j->acct.key));
		if (store__run_sync(st, j) != PARLEY_OK)
			abort();
		store__job_free(j);
	}
	return acc;
}

/* uploads identity + signed prekey + n one-time keys (ids from first_id) directly into the store */
static int store_keys(uint64_t acc, uint32_t dev, uint32_t regid, unsigned n, uint32_t first_id)
{
	store_job *j = store__job_new(STORE_OP_UPLOAD_KEYS);
	crypto_keypair ik, spk;
	crypto__keypair_generate(&ik);
	crypto__keypair_generate(&spk);
	j->account_id = acc;
	j->device_id = dev;
	j->keys.registration_id = regid;
	crypto__pubkey_serialize(j->keys.identity, ik.pub);
	j->keys.has_spk = 1;
	j->keys.spk_id = 1;
	crypto__pubkey_serialize(j->keys.spk_pub, spk.pub);
	crypto__xeddsa_sign(j->keys.spk_sig, ik.priv, j->keys.spk_pub, 33);
	if (store__job_keys_alloc_otks(j, n) != PARLEY_OK)
		abort();
	for (unsigned i = 0; i < n; i++) {
		crypto_keypair o;
		crypto__keypair_generate(&o);
		j->keys.otks[i].id = first_id + i;
		crypto__pubkey_serialize(j->keys.otks[i].pub, o.pub);
	}
	j->keys.pool_max = 1000;
	int rc = store__run_sync(st, j);
	store__job_free(j);
	return rc;
}
#endif
