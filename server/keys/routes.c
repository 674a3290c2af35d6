/* The key server on the wire: upload, prekey count and bundle routes, and the PrekeysLow push to a
 * device whose pool runs low. The logic lives in keys.c. */
#include <parley/error.h>

#include "base/log.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "dispatch/service.h"
#include "keys/keys.h"
#include "wire/wire.h"

#define MODULE "keys"

static int init(const parleyd_config *cfg, void **state)
{
	keys_config *c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	keys__config_from(c, cfg);
	/* a report before the envelope TTL could delete a key a queued PreKey message still needs */
	if (cfg->prekey_forget_after_s <= cfg->message_ttl_s)
		log_warn(MODULE, "prekey_forget_after_s (%d) is not above message_ttl_s (%d): devices may delete a "
				 "one-time key that a queued message still needs", cfg->prekey_forget_after_s,
			 cfg->message_ttl_s);
	*state = c;
	return PARLEY_OK;
}

/* One leaky-bucket table per loop (keys.h says why it is not shared). */
static int worker_start(worker *w, void *state, void **wstate)
{
	*wstate = parley__calloc(1, sizeof(keys_limiter));
	return *wstate == NULL ? PARLEY_E_NOMEM : PARLEY_OK;
}

static void worker_stop(worker *w, void *state, void *wstate)
{
	parley__free(wstate);
}

static void answer_count(void *arg, int status, const void *result, int upload)
{
	const store_job *j = result;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__UploadKeysResponse up = PARLEY__WIRE__UPLOAD_KEYS_RESPONSE__INIT;
	Parley__Wire__GetPrekeyCountResponse cnt = PARLEY__WIRE__GET_PREKEY_COUNT_RESPONSE__INIT;
	r.status = (uint32_t)status;
	if (status == PARLEY_OK && upload) {
		up.one_time_prekeys_remaining = j->keys.remaining;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_UPLOAD_KEYS;
		r.upload_keys = &up;
	} else if (status == PARLEY_OK) {
		cnt.one_time_prekeys_remaining = j->keys.remaining;
		cnt.signed_prekey_id = j->keys.spk_id_out;
		cnt.n_forget_prekey_ids = j->keys.n_forget;
		cnt.forget_prekey_ids = j->keys.forget_ids;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_GET_PREKEY_COUNT;
		r.get_prekey_count = &cnt;
	}
	request__reply(arg, &r);
}

static void upload_answer(void *arg, int status, const void *result)
{
	answer_count(arg, status, result, 1);
}

static void count_answer(void *arg, int status, const void *result)
{
	answer_count(arg, status, result, 0);
}

static void route_upload_keys(request *rq, const Parley__Wire__Request *req)
{
	keys__upload(rq->svc, worker__store(rq->w), rq->account, rq->device, req->upload_keys, upload_answer, rq);
}

static void route_get_prekey_count(request *rq, const Parley__Wire__Request *req)
{
	keys__count(rq->svc, worker__store(rq->w), rq->account, rq->device, parley__wall_ms(), count_answer, rq);
}

/* Tells a device (wherever it is connected) to refill its pool; offline devices check after auth. */
static void push_prekeys_low(worker *w, const keys_config *c, uint64_t account, uint32_t device, uint32_t remaining)
{
	Parley__Wire__PrekeysLow pl = PARLEY__WIRE__PREKEYS_LOW__INIT;
	Parley__Wire__Push push = PARLEY__WIRE__PUSH__INIT;
	pl.one_time_prekeys_remaining = remaining;
	pl.threshold = c->low_threshold;
	push.body_case = PARLEY__WIRE__PUSH__BODY_PREKEYS_LOW;
	push.prekeys_low = &pl;
	dynbuf *out = worker__scratch(w);
	if (wire__encode_push(&push, out) == PARLEY_OK)
		(void)worker__post(w, &keys__service, MBOX_DROP, account, device, 0, out->data, out->len,
				   worker__send_frame);
}

/* The wire form of one bundle, pointing into the store's result (valid until the reply is sent). */
typedef struct wire_bundle {
	Parley__Wire__PreKeyBundle b;
	Parley__Wire__SignedPrekey spk;
	Parley__Wire__OneTimePrekey otk;
} wire_bundle;

static void fill_bundle(wire_bundle *wb, const store_bundle *b)
{
	parley__wire__pre_key_bundle__init(&wb->b);
	parley__wire__signed_prekey__init(&wb->spk);
	parley__wire__one_time_prekey__init(&wb->otk);
	wb->b.device_id = b->device_id;
	wb->b.registration_id = b->registration_id;
	wb->b.identity_key.data = (uint8_t *)b->identity;
	wb->b.identity_key.len = STORE_SIGNAL_KEY_LEN;
	wb->spk.id = b->spk_id;
	wb->spk.public_key.data = (uint8_t *)b->spk_pub;
	wb->spk.public_key.len = STORE_SIGNAL_KEY_LEN;
	wb->spk.signature.data = (uint8_t *)b->spk_sig;
	wb->spk.signature.len = STORE_SIG_LEN;
	wb->b.signed_prekey = &wb->spk;
	if (b->has_otk) {
		wb->otk.id = b->otk.id;
		wb->otk.public_key.data = (uint8_t *)b->otk.pub;
		wb->otk.public_key.len = STORE_SIGNAL_KEY_LEN;
		wb->b.one_time_prekey = &wb->otk;
	}
}

static void bundles_answer(void *arg, int status, const void *result)
{
	request *rq = arg;
	worker *w = rq->w;
	const keys_config *c = rq->svc;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__GetBundlesResponse gb = PARLEY__WIRE__GET_BUNDLES_RESPONSE__INIT;
	wire_bundle *wb = NULL;
	Parley__Wire__PreKeyBundle **bp = NULL;
	const store_job *j = status == PARLEY_OK ? result : NULL;
	size_t n = j != NULL ? j->keys.n_bundles : 0;

	r.status = (uint32_t)status;
	if (status == PARLEY_E_RATE_LIMITED && result != NULL)
		r.retry_after_ms = ((const keys_refusal *)result)->retry_after_ms;
	if (j != NULL) {
		wb = parley__calloc(n ? n : 1, sizeof(*wb));
		bp = parley__calloc(n ? n : 1, sizeof(*bp));
		if (wb == NULL || bp == NULL) {
			r.status = PARLEY_E_NOMEM;
			j = NULL;
		}
	}
	if (j != NULL) {
		for (size_t i = 0; i < n; i++) {
			fill_bundle(&wb[i], &j->keys.bundles[i]);
			bp[i] = &wb[i].b;
		}
		gb.account_id = j->account_id;
		gb.n_bundles = n;
		gb.bundles = bp;
		gb.signed_device_list.data = j->keys.devlist;
		gb.signed_device_list.len = j->keys.devlist_len;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES;
		r.get_bundles = &gb;
	}
	request__reply(rq, &r); /* frees rq; w and c outlive it */
	if (j != NULL)
		for (size_t i = 0; i < n; i++)
			if (j->keys.bundles[i].remaining < c->low_threshold)
				push_prekeys_low(w, c, j->account_id, j->keys.bundles[i].device_id,
						 j->keys.bundles[i].remaining);
	parley__free(wb);
	parley__free(bp);
}

static void route_get_bundles(request *rq, const Parley__Wire__Request *req)
{
	keys__get_bundles(rq->svc, worker__state(rq->w, &keys__service), worker__store(rq->w), rq->account,
			  rq->device, req->get_bundles, parley__wall_ms(), bundles_answer, rq);
}

static const route routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS, "upload_keys", 1, route_upload_keys},
	{PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT, "get_prekey_count", 1, route_get_prekey_count},
	{PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES, "get_bundles", 1, route_get_bundles},
};

static const mbox_fn mailbox[] = {worker__send_frame};

const service keys__service = {
	.name = "keys",
	SERVICE_ROUTES(routes),
	SERVICE_MAILBOX(mailbox),
	.init = init,
	.fini = service__free_state,
	.worker_start = worker_start,
	.worker_stop = worker_stop,
};
