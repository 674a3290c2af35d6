/* Key server service. See keys.h. */
#include "keys/keys.h"

#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "crypto/crypto.h"
#include "wire/wire.h"

void keys__config_from(keys_config *c, const parleyd_config *cfg)
{
	c->pool_max = (unsigned)cfg->prekey_pool_max;
	c->low_threshold = (unsigned)cfg->prekey_low_threshold;
	c->rl_capacity = cfg->bundle_rate_burst;
	c->rl_per_sec = cfg->bundle_rate_per_min / 60.0;
	c->budget_capacity = cfg->prekey_budget_burst;
	c->budget_per_ms = cfg->prekey_budget_per_hour / 3600000.0;
	c->forget_after_ms = (uint64_t)cfg->prekey_forget_after_s * 1000u;
}

/* Handed-out records older than this are gone (keys.h KEYS_REPORT_WINDOW_MS). */
static uint64_t prune_before(const keys_config *c, uint64_t now_ms)
{
	uint64_t keep = c->forget_after_ms + KEYS_REPORT_WINDOW_MS;
	return now_ms > keep ? now_ms - keep : 0;
}

void keys__config_defaults(keys_config *c)
{
	parleyd_config d;
	config__defaults(&d);
	keys__config_from(c, &d);
}

/* --- leaky bucket --- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: not adversarial-proof, but slots are bounded anyway */
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

uint64_t keys__limiter_take(keys_limiter *l, const keys_config *c, uint64_t requester, const char *target,
			    uint64_t now_ms)
{
	uint8_t key[RL_KEY_LEN];
	uint64_t th = hash_str(target);
	memcpy(key, &requester, 8);
	memcpy(key + 8, &th, 8);
	return rl__take(l->slots, KEYS_RL_SLOTS, requester * 0x9E3779B97F4A7C15ull ^ th, key, c->rl_capacity,
			c->rl_per_sec, now_ms);
}

/* --- requests --- */

/* The result of every call is the store job (keys.remaining, keys.spk_id_out, keys.bundles), except
 * a refusal before the store: RATE_LIMITED reports a keys_refusal, anything else NULL. */
static void submit(store_client *sc, store_job *j, uint64_t account, uint32_t device, svc_cb cb, void *arg)
{
	if (j != NULL) {
		j->caller_account = account;
		j->caller_device = device;
	}
	int rc = j == NULL ? PARLEY_E_NOMEM : store__submit(sc, j, cb, arg);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		cb(arg, rc, NULL);
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
		  const Parley__Wire__UploadKeysRequest *req, svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_UPLOAD_KEYS);
	int rc = j == NULL ? PARLEY_E_NOMEM : fill_upload(j, req);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		cb(arg, rc, NULL);
		return;
	}
	j->account_id = account;
	j->device_id = device;
	j->keys.pool_max = c->pool_max;
	j->keys.prune_before_ms = prune_before(c, parley__wall_ms());
	submit(sc, j, account, device, cb, arg);
}

void keys__count(const keys_config *c, store_client *sc, uint64_t account, uint32_t device, uint64_t now_ms,
		 svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_PREKEY_COUNT);
	if (j != NULL) {
		j->account_id = account;
		j->device_id = device;
		j->keys.forget_before_ms = now_ms > c->forget_after_ms ? now_ms - c->forget_after_ms : 0;
	}
	submit(sc, j, account, device, cb, arg);
}

void keys__get_bundles(const keys_config *c, keys_limiter *l, store_client *sc, uint64_t requester,
		       uint32_t requester_device, const Parley__Wire__GetBundlesRequest *req, uint64_t now_ms, svc_cb cb, void *arg)
{
	uint64_t wait = keys__limiter_take(l, c, requester, req->handle, now_ms);
	if (wait != 0) {
		keys_refusal r = {.retry_after_ms = wait};
		cb(arg, PARLEY_E_RATE_LIMITED, &r);
		return;
	}
	store_job *j = store__job_new(STORE_OP_GET_BUNDLES);
	if (j != NULL && store__job_set_handle(j, req->handle) != PARLEY_OK) {
		store__job_free(j);
		cb(arg, PARLEY_E_NO_SUCH_ACCOUNT, NULL);
		return;
	}
	if (j != NULL) {
		j->device_id = req->device_id;
		j->now_ms = now_ms;
		j->keys.budget_capacity = c->budget_capacity;
		j->keys.budget_per_ms = c->budget_per_ms;
		j->keys.prune_before_ms = prune_before(c, now_ms);
	}
	submit(sc, j, requester, requester_device, cb, arg);
}
