/* Key server service. See keys.h. */
#include "keys/keys.h"

#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "crypto/crypto.h"
#include "wire/wire.h"

#define PROBES 8

void keys__config_defaults(keys_config *c)
{
	c->pool_max = KEYS_DEFAULT_POOL_MAX;
	c->low_threshold = KEYS_DEFAULT_LOW_THRESHOLD;
	c->rl_capacity = KEYS_DEFAULT_RL_CAPACITY;
	c->rl_per_sec = KEYS_DEFAULT_RL_PER_SEC;
}

/* --- leaky bucket --- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: not adversarial-proof, but slots are bounded anyway */
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static double drained(const struct keys_bucket *b, const keys_config *c, uint64_t now_ms)
{
	double dt = now_ms > b->last_ms ? (double)(now_ms - b->last_ms) / 1000.0 : 0.0;
	double lvl = b->level - dt * c->rl_per_sec;
	return lvl > 0 ? lvl : 0;
}

uint64_t keys__limiter_take(keys_limiter *l, const keys_config *c, uint64_t requester, const char *target,
			    uint64_t now_ms)
{
	if (c->rl_capacity <= 0 || c->rl_per_sec <= 0)
		return 0;
	uint64_t th = hash_str(target);
	uint64_t start = (requester * 0x9E3779B97F4A7C15ull ^ th) % KEYS_RL_SLOTS;
	struct keys_bucket *b = NULL, *victim = NULL;
	double victim_lvl = 0;
	for (unsigned i = 0; i < PROBES && b == NULL; i++) {
		struct keys_bucket *s = &l->slots[(start + i) % KEYS_RL_SLOTS];
		if (s->used && s->requester == requester && s->target_hash == th) {
			b = s;
			break;
		}
		double lvl = s->used ? drained(s, c, now_ms) : -1;
		if (victim == NULL || lvl < victim_lvl) {
			victim = s;
			victim_lvl = lvl;
		}
	}
	if (b == NULL) {
		/* a free or fully drained slot loses nothing; otherwise the emptiest bucket is forgotten */
		b = victim;
		memset(b, 0, sizeof(*b));
		b->used = 1;
		b->requester = requester;
		b->target_hash = th;
		b->last_ms = now_ms;
	}
	double lvl = drained(b, c, now_ms);
	b->last_ms = now_ms;
	if (lvl + 1.0 > c->rl_capacity) {
		b->level = lvl;
		double wait_s = (lvl + 1.0 - c->rl_capacity) / c->rl_per_sec;
		uint64_t ms = (uint64_t)(wait_s * 1000.0) + 1;
		return ms;
	}
	b->level = lvl + 1.0;
	return 0;
}

/* --- requests --- */

struct kreq {
	keys_cb cb;
	void *arg;
};

static void answer_error(keys_cb cb, void *arg, int status)
{
	keys_result r = {0};
	r.status = status;
	cb(arg, &r);
}

static void on_job(store_job *j, void *arg)
{
	struct kreq *q = arg;
	keys_result r = {0};
	r.status = j->status;
	r.remaining = j->keys.remaining;
	r.spk_id = j->keys.spk_id_out;
	if (j->op == STORE_OP_GET_BUNDLES && j->status == PARLEY_OK) {
		r.account_id = j->account_id;
		r.bundles = j->keys.bundles;
		r.n_bundles = j->keys.n_bundles;
	}
	keys_cb cb = q->cb;
	void *cbarg = q->arg;
	parley__free(q);
	cb(cbarg, &r);
}

static void submit(store_client *sc, store_job *j, keys_cb cb, void *arg)
{
	struct kreq *q = parley__calloc(1, sizeof(*q));
	if (q == NULL) {
		store__job_free(j);
		answer_error(cb, arg, PARLEY_E_NOMEM);
		return;
	}
	q->cb = cb;
	q->arg = arg;
	int rc = store__submit(sc, j, on_job, q);
	if (rc != PARLEY_OK) {
		parley__free(q);
		store__job_free(j);
		answer_error(cb, arg, rc);
	}
}

/* A Signal public key on the wire: exactly 33 bytes (wire checked the length), 0x05 type byte. */
static int parse_key(const ProtobufCBinaryData *b, uint8_t raw[CRYPTO_KEY_LEN])
{
	if (b->len != CRYPTO_SIGNAL_PUBKEY_LEN)
		return PARLEY_E_INVALID_KEY;
	return crypto__pubkey_parse(raw, b->data, b->len);
}

static int fill_upload(store_job *j, const Parley__Wire__UploadKeysRequest *req)
{
	uint8_t ik[CRYPTO_KEY_LEN], spk[CRYPTO_KEY_LEN];
	store_keys_args *k = &j->keys;
	if (req->n_one_time_prekeys > STORE_MAX_PREKEYS_PER_UPLOAD)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE; /* before any signature work */
	int rc = parse_key(&req->identity_key, ik);
	if (rc != PARLEY_OK)
		return rc;
	memcpy(k->identity, req->identity_key.data, STORE_SIGNAL_KEY_LEN);
	k->registration_id = req->registration_id;
	if (req->signed_prekey != NULL) {
		const Parley__Wire__SignedPrekey *sp = req->signed_prekey;
		rc = parse_key(&sp->public_key, spk);
		if (rc != PARLEY_OK)
			return rc;
		if (sp->signature.len != CRYPTO_SIG_LEN)
			return PARLEY_E_PROTO_MALFORMED;
		/* libsignal signs the 33-byte serialized form of the signed prekey */
		rc = crypto__xeddsa_verify(ik, sp->public_key.data, sp->public_key.len, sp->signature.data);
		if (rc != PARLEY_OK)
			return rc;
		k->has_spk = 1;
		k->spk_id = sp->id;
		memcpy(k->spk_pub, sp->public_key.data, STORE_SIGNAL_KEY_LEN);
		memcpy(k->spk_sig, sp->signature.data, STORE_SIG_LEN);
	}
	rc = store__job_keys_alloc_otks(j, req->n_one_time_prekeys);
	if (rc != PARLEY_OK)
		return rc;
	for (size_t i = 0; i < req->n_one_time_prekeys; i++) {
		const Parley__Wire__OneTimePrekey *o = req->one_time_prekeys[i];
		uint8_t raw[CRYPTO_KEY_LEN];
		rc = parse_key(&o->public_key, raw);
		if (rc != PARLEY_OK)
			return rc;
		for (size_t p = 0; p < i; p++)
			if (k->otks[p].id == o->id)
				return PARLEY_E_PROTO_MALFORMED; /* one id twice in one upload */
		k->otks[i].id = o->id;
		memcpy(k->otks[i].pub, o->public_key.data, STORE_SIGNAL_KEY_LEN);
	}
	return PARLEY_OK;
}

void keys__upload(const keys_config *c, store_client *sc, uint64_t account, uint32_t device,
		  const Parley__Wire__UploadKeysRequest *req, keys_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_UPLOAD_KEYS);
	if (j == NULL) {
		answer_error(cb, arg, PARLEY_E_NOMEM);
		return;
	}
	int rc = fill_upload(j, req);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		answer_error(cb, arg, rc);
		return;
	}
	j->account_id = account;
	j->device_id = device;
	j->keys.pool_max = c->pool_max;
	submit(sc, j, cb, arg);
}

void keys__count(store_client *sc, uint64_t account, uint32_t device, keys_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_PREKEY_COUNT);
	if (j == NULL) {
		answer_error(cb, arg, PARLEY_E_NOMEM);
		return;
	}
	j->account_id = account;
	j->device_id = device;
	submit(sc, j, cb, arg);
}

void keys__get_bundles(const keys_config *c, keys_limiter *l, store_client *sc, uint64_t requester,
		       const Parley__Wire__GetBundlesRequest *req, uint64_t now_ms, keys_cb cb, void *arg)
{
	uint64_t wait = keys__limiter_take(l, c, requester, req->handle, now_ms);
	if (wait != 0) {
		keys_result r = {0};
		r.status = PARLEY_E_RATE_LIMITED;
		r.retry_after_ms = wait;
		cb(arg, &r);
		return;
	}
	store_job *j = store__job_new(STORE_OP_GET_BUNDLES);
	if (j == NULL) {
		answer_error(cb, arg, PARLEY_E_NOMEM);
		return;
	}
	int rc = store__job_set_handle(j, req->handle);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		answer_error(cb, arg, PARLEY_E_NO_SUCH_ACCOUNT);
		return;
	}
	j->device_id = req->device_id;
	submit(sc, j, cb, arg);
}
