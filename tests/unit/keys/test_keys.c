/* server/keys driven directly (no sockets) over a real SQLite store: upload validation, pool bound,
 * count, bundles with and without a one-time key, one-time keys handed out once under concurrent fetches
 * from two loop threads, leaky-bucket rate limit. */
#include <pthread.h>

#include "keys/keys.h"
#include "test.h"
#include "store_loop.h"
#include "common.h"

static keys_config kc;

/* What a call reported, copied out of its result (the store job, or a keys_refusal). */
struct result {
	int status;
	uint32_t remaining, spk_id;
	uint64_t account_id, retry_after_ms;
	size_t n_bundles;
	size_t n_forget;
	uint32_t forget[8];
};

struct outcome {
	int done;
	struct result r;
	store_bundle b[8];
};

static void on_result(void *arg, int status, const void *result)
{
	struct outcome *o = arg;
	o->done = 1;
	memset(&o->r, 0, sizeof(o->r));
	o->r.status = status;
	if (status == PARLEY_E_RATE_LIMITED && result != NULL) {
		o->r.retry_after_ms = ((const keys_refusal *)result)->retry_after_ms;
		return;
	}
	const store_job *j = result;
	if (j == NULL)
		return;
	o->r.remaining = j->keys.remaining;
	o->r.spk_id = j->keys.spk_id_out;
	o->r.n_forget = j->keys.n_forget;
	for (size_t i = 0; i < j->keys.n_forget && i < 8; i++)
		o->r.forget[i] = j->keys.forget_ids[i];
	if (j->op == STORE_OP_GET_BUNDLES && status == PARLEY_OK) {
		o->r.account_id = j->account_id;
		o->r.n_bundles = j->keys.n_bundles;
		for (size_t i = 0; i < j->keys.n_bundles && i < 8; i++)
			o->b[i] = j->keys.bundles[i];
	}
}

static void wait_for(struct outcome *o)
{
	while (!o->done)
		uv_run(&loop, UV_RUN_ONCE);
}

struct upload {
	Parley__Wire__UploadKeysRequest rq;
	Parley__Wire__SignedPrekey sp;
	Parley__Wire__OneTimePrekey ot[120];
	Parley__Wire__OneTimePrekey *otp[120];
	uint8_t ik_pub[33], spk_pub[33], sig[64], ot_pub[120][33];
	crypto_keypair ik;
};

static void make_upload(struct upload *u, int with_spk, unsigned n, uint32_t first_id)
{
	crypto_keypair spk;
	memset(u, 0, sizeof(*u));
	parley__wire__upload_keys_request__init(&u->rq);
	parley__wire__signed_prekey__init(&u->sp);
	crypto__keypair_generate(&u->ik);
	crypto__keypair_generate(&spk);
	crypto__pubkey_serialize(u->ik_pub, u->ik.pub);
	crypto__pubkey_serialize(u->spk_pub, spk.pub);
	crypto__xeddsa_sign(u->sig, u->ik.priv, u->spk_pub, 33);
	u->rq.identity_key.data = u->ik_pub;
	u->rq.identity_key.len = 33;
	u->rq.registration_id = 77;
	u->sp.id = 5;
	u->sp.public_key.data = u->spk_pub;
	u->sp.public_key.len = 33;
	u->sp.signature.data = u->sig;
	u->sp.signature.len = 64;
	if (with_spk)
		u->rq.signed_prekey = &u->sp;
	for (unsigned i = 0; i < n; i++) {
		crypto_keypair o;
		crypto__keypair_generate(&o);
		crypto__pubkey_serialize(u->ot_pub[i], o.pub);
		parley__wire__one_time_prekey__init(&u->ot[i]);
		u->ot[i].id = first_id + i;
		u->ot[i].public_key.data = u->ot_pub[i];
		u->ot[i].public_key.len = 33;
		u->otp[i] = &u->ot[i];
	}
	u->rq.n_one_time_prekeys = n;
	u->rq.one_time_prekeys = u->otp;
}

static int upload(uint64_t acc, uint32_t dev, struct upload *u, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	keys__upload(&kc, sc, acc, dev, &u->rq, on_result, o);
	wait_for(o);
	return o->r.status;
}

static void test_upload_and_count(void)
{
	uint64_t a = make_account("upa", 1);
	struct upload u;
	struct outcome o;
	make_upload(&u, 0, 3, 1);
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_E_NO_KEYS); /* first upload needs a signed prekey */
	make_upload(&u, 1, 3, 1);
	u.sig[3] ^= 1;
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_E_BAD_KEY_SIGNATURE);
	u.sig[3] ^= 1;
	u.ik_pub[0] = 0x06;
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_E_INVALID_KEY);
	u.ik_pub[0] = 0x05;
	u.ot[1].id = u.ot[0].id;
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_E_PROTO_MALFORMED); /* one id twice */
	u.ot[1].id = 2;
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_OK);
	TEST_EQ_INT(o.r.remaining, 3);
	/* a top-up with only one-time keys (same identity) */
	struct upload u2 = u;
	u2.rq.signed_prekey = NULL;
	u2.rq.n_one_time_prekeys = 2;
	for (int i = 0; i < 2; i++) {
		u2.ot[i].id = 10 + (uint32_t)i;
		u2.ot[i].public_key.data = u2.ot_pub[i];
		u2.otp[i] = &u2.ot[i];
	}
	u2.rq.one_time_prekeys = u2.otp;
	u2.rq.identity_key.data = u2.ik_pub;
	TEST_EQ_INT(upload(a, 1, &u2, &o), PARLEY_OK);
	TEST_EQ_INT(o.r.remaining, 5);
	/* another identity for the same device is refused */
	struct upload u3;
	make_upload(&u3, 1, 0, 1);
	TEST_EQ_INT(upload(a, 1, &u3, &o), PARLEY_E_IDENTITY_KEY_SET);
	memset(&o, 0, sizeof(o));
	keys__count(&kc, sc, a, 1, 1000, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.r.status, PARLEY_OK);
	TEST_EQ_INT(o.r.remaining, 5);
	TEST_EQ_INT(o.r.spk_id, 5);
	/* more than 100 in one upload */
	struct upload *big = malloc(sizeof(*big));
	make_upload(big, 1, 101, 100);
	memcpy(big->ik_pub, u.ik_pub, 33);
	TEST_EQ_INT(upload(a, 1, big, &o), PARLEY_E_PROTO_FIELD_TOO_LARGE);
	free(big);
}

static void test_pool_full(void)
{
	uint64_t a = make_account("poolfull", 1);
	struct upload u;
	struct outcome o;
	kc.pool_max = 8;
	make_upload(&u, 1, 5, 1);
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_OK);
	for (int i = 0; i < 5; i++)
		u.ot[i].id = 100 + (uint32_t)i;
	TEST_EQ_INT(upload(a, 1, &u, &o), PARLEY_E_PREKEY_POOL_FULL);
	memset(&o, 0, sizeof(o));
	keys__count(&kc, sc, a, 1, 1000, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.r.remaining, 5); /* the refused batch took nothing */
	keys__config_defaults(&kc);
}

static int fetch(keys_limiter *l, uint64_t requester, const char *handle, uint32_t dev, struct outcome *o, uint64_t now)
{
	Parley__Wire__GetBundlesRequest rq = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	rq.handle = (char *)handle;
	rq.device_id = dev;
	memset(o, 0, sizeof(*o));
	keys__get_bundles(&kc, l, sc, requester, 0, &rq, now, on_result, o);
	wait_for(o);
	return o->r.status;
}

static void test_bundles(void)
{
	static keys_limiter lim;
	uint64_t b = make_account("bundled", 3);
	struct outcome o;
	TEST_EQ_INT(fetch(&lim, 1, "bundled", 0, &o, 1000), PARLEY_E_NO_KEYS);
	TEST_EQ_INT(fetch(&lim, 1, "nobody", 0, &o, 1000), PARLEY_E_NO_SUCH_ACCOUNT);
	TEST_EQ_INT(store_keys(b, 1, 11, 2, 1), PARLEY_OK);
	TEST_EQ_INT(store_keys(b, 3, 33, 0, 1), PARLEY_OK);
	TEST_EQ_INT(fetch(&lim, 1, "bundled", 0, &o, 1000), PARLEY_OK);
	TEST_EQ_INT(o.r.n_bundles, 2); /* device 2 has no keys: not listed */
	TEST_EQ_INT(o.b[0].device_id, 1);
	TEST_EQ_INT(o.b[0].registration_id, 11);
	TEST_EQ_INT(o.b[0].has_otk, 1);
	TEST_EQ_INT(o.b[0].otk.id, 1);
	TEST_EQ_INT(o.b[0].remaining, 1);
	TEST_EQ_INT(o.b[1].device_id, 3);
	TEST_EQ_INT(o.b[1].has_otk, 0); /* empty pool: bundle without one-time key */
	TEST_EQ_INT(fetch(&lim, 1, "bundled", 1, &o, 1000), PARLEY_OK);
	TEST_EQ_INT(o.r.n_bundles, 1);
	TEST_EQ_INT(o.b[0].otk.id, 2);
	TEST_EQ_INT(fetch(&lim, 1, "bundled", 1, &o, 1000), PARLEY_OK);
	TEST_EQ_INT(o.b[0].has_otk, 0);
	TEST_EQ_INT(fetch(&lim, 1, "bundled", 2, &o, 1000), PARLEY_E_NO_SUCH_DEVICE);
}

/* Security item 4: a device's one-time-prekey budget holds across requesters (it lives in the store),
 * refills with time, and what was handed out is reported to the device after forget_after_ms. */
static void test_budget(void)
{
	static keys_limiter lim;
	uint64_t a = make_account("budgeted", 1);
	struct outcome o;
	TEST_EQ_INT(store_keys(a, 1, 5, 10, 1), PARLEY_OK);
	kc.budget_capacity = 3;
	kc.budget_per_ms = 1.0 / 1000; /* one a second */
	kc.forget_after_ms = 60000;
	int with = 0;
	for (uint64_t requester = 100; requester < 106; requester++) {
		TEST_EQ_INT(fetch(&lim, requester, "budgeted", 0, &o, 10000), PARLEY_OK);
		TEST_EQ_INT(o.r.n_bundles, 1); /* always a bundle */
		with += o.b[0].has_otk;
	}
	TEST_EQ_INT(with, 3); /* six requesters, one budget */
	TEST_EQ_INT(o.b[0].remaining, 7);
	TEST_EQ_INT(fetch(&lim, 200, "budgeted", 0, &o, 11001), PARLEY_OK);
	TEST_EQ_INT(o.b[0].has_otk, 1); /* one token leaked back after a second */
	TEST_EQ_INT(o.b[0].otk.id, 4);
	/* nothing to forget yet; after forget_after_ms, the four ids handed out, oldest first */
	memset(&o, 0, sizeof(o));
	keys__count(&kc, sc, a, 1, 11001, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.r.n_forget, 0);
	memset(&o, 0, sizeof(o));
	keys__count(&kc, sc, a, 1, 10000 + 60001, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.r.n_forget, 3);
	memset(&o, 0, sizeof(o));
	keys__count(&kc, sc, a, 1, 11001 + 60001, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.r.n_forget, 4);
	TEST_EQ_INT(o.r.forget[0] + o.r.forget[1] + o.r.forget[2], 1 + 2 + 3);
	TEST_EQ_INT(o.r.forget[3], 4);
	/* capacity 0: no budget, the pool is what limits */
	kc.budget_capacity = 0;
	for (uint64_t requester = 300; requester < 306; requester++) {
		TEST_EQ_INT(fetch(&lim, requester, "budgeted", 0, &o, 11002), PARLEY_OK);
		TEST_EQ_INT(o.b[0].has_otk, 1);
	}
	keys__config_defaults(&kc);
}

static void test_rate_limit(void)
{
	static keys_limiter lim;
	keys_config c = kc;
	c.rl_capacity = 3;
	c.rl_per_sec = 1;
	for (int i = 0; i < 3; i++)
		TEST_EQ_INT(keys__limiter_take(&lim, &c, 9, "target", 5000), 0);
	uint64_t wait = keys__limiter_take(&lim, &c, 9, "target", 5000);
	TEST_CHECK(wait > 0 && wait <= 1001);
	TEST_EQ_INT(keys__limiter_take(&lim, &c, 9, "other", 5000), 0); /* per (requester, target) */
	TEST_EQ_INT(keys__limiter_take(&lim, &c, 10, "target", 5000), 0);
	TEST_EQ_INT(keys__limiter_take(&lim, &c, 9, "target", 6001), 0); /* leaked one token */
	TEST_CHECK(keys__limiter_take(&lim, &c, 9, "target", 6001) > 0);
	/* through the service: RATE_LIMITED with a retry hint */
	kc.rl_capacity = 1;
	struct outcome o;
	make_account("limited", 1);
	store_keys(0, 0, 0, 0, 0); /* no-op failure is fine */
	TEST_EQ_INT(fetch(&lim, 42, "limited", 0, &o, 9000), PARLEY_E_NO_KEYS);
	TEST_EQ_INT(fetch(&lim, 42, "limited", 0, &o, 9000), PARLEY_E_RATE_LIMITED);
	TEST_CHECK(o.r.retry_after_ms > 0);
	keys__config_defaults(&kc);
}

/* Two loop threads, each with its own store client, race for one pool: every key goes out once. */
#define POOL 100
#define PER_THREAD 120
struct racer {
	uint32_t got[PER_THREAD];
	unsigned n_got, n_empty;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	uv_loop_t l;
	store_client *c;
	keys_limiter *lim = calloc(1, sizeof(*lim));
	keys_config cfg = kc;
	cfg.rl_capacity = 0; /* limiter off */
	uv_loop_init(&l);
	test_store_client rtsc;
	if (test_store_client_open(&rtsc, st, &l, &c) != PARLEY_OK)
		abort();
	Parley__Wire__GetBundlesRequest rq = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	rq.handle = (char *)"racepool";
	/* keep several fetches in flight at once so both threads' jobs interleave in the store batches */
	struct outcome o[PER_THREAD];
	memset(o, 0, sizeof(o));
	for (int i = 0; i < PER_THREAD; i++)
		keys__get_bundles(&cfg, lim, c, 1, 0, &rq, 0, on_result, &o[i]);
	for (int i = 0; i < PER_THREAD; i++) {
		while (!o[i].done)
			uv_run(&l, UV_RUN_ONCE);
		if (o[i].r.status == PARLEY_OK && o[i].b[0].has_otk)
			r->got[r->n_got++] = o[i].b[0].otk.id;
		else if (o[i].r.status == PARLEY_OK)
			r->n_empty++;
	}
	test_store_client_close(&rtsc);
	uv_run(&l, UV_RUN_DEFAULT);
	uv_loop_close(&l);
	free(lim);
	return NULL;
}

static void test_concurrent_fetch(void)
{
	uint64_t a = make_account("racepool", 1);
	TEST_EQ_INT(store_keys(a, 1, 5, POOL, 1), PARLEY_OK);
	struct racer r[2];
	pthread_t t[2];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, race, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	TEST_EQ_INT(r[0].n_got + r[1].n_got, POOL);
	TEST_EQ_INT(r[0].n_empty + r[1].n_empty, 2 * PER_THREAD - POOL);
	static int seen[POOL + 1];
	int dup = 0;
	for (int k = 0; k < 2; k++)
		for (unsigned i = 0; i < r[k].n_got; i++) {
			uint32_t id = r[k].got[i];
			if (id < 1 || id > POOL || seen[id]++)
				dup++;
		}
	TEST_EQ_INT(dup, 0);
}

int main(void)
{
	setup();
	keys__config_defaults(&kc);
	TEST_RUN(test_upload_and_count);
	TEST_RUN(test_pool_full);
	TEST_RUN(test_bundles);
	TEST_RUN(test_rate_limit);
	TEST_RUN(test_budget);
	TEST_RUN(test_concurrent_fetch);
	teardown();
	TEST_EXIT();
}
