/* Accounts and devices: register, challenge-response auth, device management. See accounts.h. */
#include "accounts/accounts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"
#include "common/clock.h"

#define MODULE "accounts"

/* One in-flight request: what the completion needs once the store answered. */
struct acct_op {
	accounts *a;
	store_client *sc;
	acct_auth *s;
	svc_cb cb;
	void *arg;
	uint8_t nonce[WIRE_NONCE_LEN]; /* the challenge this attempt consumed */
	uint8_t sig[WIRE_SIG_LEN];
	char handle[WIRE_MAX_HANDLE + 1];
	uint32_t device_id;
};

int accounts__init(accounts *a, const parleyd_config *cfg)
{
	a->max_auth_failures = (unsigned)cfg->max_auth_failures;
	a->link_max_age_ms = (uint64_t)cfg->device_link_max_age_s * 1000u;
	a->reg_capacity = cfg->register_rate_burst;
	a->reg_per_sec = cfg->register_rate_per_hour / 3600.0;
	randombytes_buf(a->reg_hash_key, sizeof(a->reg_hash_key));
	memset(a->reg_slots, 0, sizeof(a->reg_slots));
	pthread_mutex_init(&a->reg_mu, NULL);
	a->pow_bits = 0;
	if (strcmp(cfg->registration, "pow") == 0) {
		a->pow_bits = (unsigned)cfg->register_pow_bits;
	} else if (strcmp(cfg->registration, "open") != 0) {
		log_error(MODULE, "registration: '%.40s' is not open or pow", cfg->registration);
		return PARLEY_E_CONFIG;
	}
	return PARLEY_OK;
}

void accounts__fini(accounts *a)
{
	pthread_mutex_destroy(&a->reg_mu);
}

int accounts__addr_key(const char *peer, uint8_t key[RL_KEY_LEN])
{
	char ip[INET6_ADDRSTRLEN];
	const char *colon = strrchr(peer, ':');
	size_t n = colon != NULL ? (size_t)(colon - peer) : 0;
	uint8_t a6[16];
	memset(key, 0, RL_KEY_LEN);
	if (n == 0 || n >= sizeof(ip))
		return -1;
	memcpy(ip, peer, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, key + 12) == 1) {
		key[10] = key[11] = 0xff; /* the IPv4-mapped form, so both spellings share a bucket */
		return 0;
	}
	if (inet_pton(AF_INET6, ip, a6) != 1)
		return -1;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memcpy(key, a6, memcmp(a6, mapped, sizeof(mapped)) == 0 ? 16 : 8);
	return 0;
}

/* One registration token for the peer's address: 0 = allowed, else ms to wait. */
static uint64_t register_take(accounts *a, const char *peer, uint64_t now_ms)
{
	uint8_t key[RL_KEY_LEN];
	uint64_t h;
	(void)accounts__addr_key(peer != NULL ? peer : "", key);
	crypto_shorthash((uint8_t *)&h, key, sizeof(key), (const uint8_t *)a->reg_hash_key);
	pthread_mutex_lock(&a->reg_mu);
	uint64_t wait = rl__take(a->reg_slots, ACCOUNTS_REG_SLOTS, h, key, a->reg_capacity, a->reg_per_sec, now_ms);
	pthread_mutex_unlock(&a->reg_mu);
	return wait;
}

void accounts__new_challenge(acct_auth *s)
{
	randombytes_buf(s->nonce, sizeof(s->nonce));
	s->nonce_valid = 1;
}

void accounts__auth_init(acct_auth *s)
{
	memset(s, 0, sizeof(*s));
	accounts__new_challenge(s);
}

/* Register and auth consume the challenge before anything else: the same nonce can never be checked
 * twice, whatever the outcome. Refusals for state reasons (already authenticated, attempt in flight)
 * leave it alone. */
static int begin_attempt(acct_auth *s, uint8_t nonce[WIRE_NONCE_LEN])
{
	if (s->authenticated)
		return PARLEY_E_ALREADY_AUTHENTICATED;
	if (s->busy || !s->nonce_valid)
		return PARLEY_E_BUSY;
	memcpy(nonce, s->nonce, WIRE_NONCE_LEN);
	s->nonce_valid = 0;
	return PARLEY_OK;
}

/* An attempt that did not authenticate: issue a fresh challenge; bad signatures count towards the
 * limit after which the connection is closed (so guessing costs a reconnect every few tries). */
static void attempt_failed(accounts *a, acct_auth *s, int status, accounts_result *r)
{
	if (status == PARLEY_E_BAD_SIGNATURE) {
		s->auth_failures++;
		if (s->auth_failures >= a->max_auth_failures)
			r->close_conn = 1;
	}
	accounts__new_challenge(s);
	r->new_challenge = 1;
}

static struct acct_op *op_new(accounts *a, store_client *sc, acct_auth *s, svc_cb cb, void *arg)
{
	struct acct_op *op = parley__calloc(1, sizeof(*op));
	if (op != NULL) {
		op->a = a;
		op->sc = sc;
		op->s = s;
		op->cb = cb;
		op->arg = arg;
	}
	return op;
}

/* Submits job for op; on failure frees both and returns the error (the caller answers it). */
static int submit(struct acct_op *op, store_job *job, svc_cb done)
{
	int rc;
	if (op == NULL || job == NULL) {
		rc = PARLEY_E_NOMEM;
		goto fail;
	}
	rc = store__submit(op->sc, job, done, op);
	if (rc == PARLEY_OK)
		return PARLEY_OK;
fail:
	store__job_free(job);
	parley__free(op);
	return rc;
}

/* --- register --- */

static void register_done(void *arg, int status, const void *result)
{
	const store_job *job = result;
	struct acct_op *op = arg;
	acct_auth *s = op->s;
	accounts_result r = {0};
	s->busy = 0;
	if (status == PARLEY_OK) {
		s->authenticated = 1;
		r.account_id = job->account_id;
		r.device_id = job->device_id;
		log_info(MODULE, "registered %s as account %llu", job->handle, (unsigned long long)job->account_id);
	} else {
		attempt_failed(op->a, s, status, &r);
	}
	op->cb(op->arg, status, &r);
	parley__free(op);
}

void accounts__register(accounts *a, store_client *sc, acct_auth *s, const Parley__Wire__RegisterRequest *req,
			const char *peer, uint64_t now_ms, svc_cb cb, void *arg)
{
	accounts_result r = {0};
	uint8_t nonce[WIRE_NONCE_LEN];
	dynbuf msg;
	const char *name = req->device_name != NULL ? req->device_name : "";
	int status = begin_attempt(s, nonce);

	if (status != PARLEY_OK) {
		cb(arg, status, &r);
		return;
	}
	dynbuf__init(&msg, 512);
	/* before any other work, whatever the outcome: free accounts are what a prekey drain (and any
	 * per-account limit's evasion) is made of */
	r.retry_after_ms = register_take(a, peer, now_ms);
	if (r.retry_after_ms != 0) {
		status = PARLEY_E_REGISTRATION_LIMITED;
		goto fail;
	}
	if (!wire__handle_valid(req->handle) || req->device_key.len != WIRE_KEY_LEN ||
	    req->signature.len != WIRE_SIG_LEN) {
		status = !wire__handle_valid(req->handle) ? PARLEY_E_BAD_HANDLE : PARLEY_E_INVAL;
		goto fail;
	}
	/* every new account has a key that signs its device lists (docs/protocol.md §11) */
	status = accounts__check_account_key(req->account_key.data, req->account_key.len);
	if (status != PARLEY_OK)
		goto fail;
	/* one hash, before the signature: the work is checked against the challenge this attempt
	 * consumed, so it can be neither computed ahead nor reused */
	if (!wire__register_pow_check(nonce, req->handle, req->device_key.data, req->pow.data, req->pow.len,
				      a->pow_bits)) {
		status = PARLEY_E_POW_REQUIRED;
		goto fail;
	}
	status = wire__register_signed_bytes(nonce, req->handle, req->device_key.data, name, &msg);
	if (status != PARLEY_OK)
		goto fail;
	if (crypto_sign_verify_detached(req->signature.data, msg.data, msg.len, req->device_key.data) != 0) {
		status = PARLEY_E_BAD_SIGNATURE;
		goto fail;
	}
	store_job *job = store__job_new(STORE_OP_CREATE_ACCOUNT);
	if (job != NULL) {
		if (store__job_set_handle(job, req->handle) != PARLEY_OK ||
		    store__job_set_device_name(job, name) != PARLEY_OK) {
			store__job_free(job);
			status = PARLEY_E_INVAL;
			goto fail;
		}
		memcpy(job->acct.key, req->device_key.data, WIRE_KEY_LEN);
		memcpy(job->acct.account_key, req->account_key.data, 33);
		job->acct.has_account_key = 1;
		job->now_ms = now_ms;
	}
	snprintf(s->handle, sizeof(s->handle), "%s", req->handle);
	status = submit(op_new(a, sc, s, cb, arg), job, register_done);
	if (status != PARLEY_OK)
		goto fail;
	s->busy = 1;
	dynbuf__free(&msg);
	return;
fail:
	dynbuf__free(&msg);
	attempt_failed(a, s, status, &r);
	cb(arg, status, &r);
}

/* --- auth --- */

void accounts__touch(store_client *sc, uint64_t account, uint32_t device, uint64_t now_ms, svc_cb cb, void *arg)
{
	store_job *t = store__job_new(STORE_OP_TOUCH_DEVICE);
	int rc = t == NULL ? PARLEY_E_NOMEM : PARLEY_OK;
	if (t != NULL) {
		t->account_id = account;
		t->device_id = device;
		t->now_ms = now_ms;
		rc = store__submit(sc, t, cb, arg);
		if (rc != PARLEY_OK)
			store__job_free(t);
	}
	if (rc != PARLEY_OK)
		cb(arg, rc, NULL);
}

static void auth_done(void *arg, int status, const void *result)
{
	const store_job *job = result;
	struct acct_op *op = arg;
	acct_auth *s = op->s;
	accounts_result r = {0};
	dynbuf msg;

	dynbuf__init(&msg, 512);
	s->busy = 0;
	/* unknown account and unknown device answer exactly like a bad signature (docs/protocol.md), and
	 * cost the same: the signature is checked against the Ed25519 base point instead, which fails */
	int unknown = status == PARLEY_E_NO_SUCH_DEVICE || status == PARLEY_E_NO_SUCH_ACCOUNT;
	if (status == PARLEY_OK || unknown) {
		static const uint8_t base_point[WIRE_KEY_LEN] = {
			0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
			0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
			0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};
		const uint8_t *key = unknown ? base_point : job->acct.device.key;
		status = wire__auth_signed_bytes(op->nonce, op->handle, op->device_id, &msg);
		int bad = status == PARLEY_OK && crypto_sign_verify_detached(op->sig, msg.data, msg.len, key) != 0;
		if (bad || (status == PARLEY_OK && unknown))
			status = PARLEY_E_BAD_SIGNATURE;
	}
	if (status == PARLEY_OK) {
		s->authenticated = 1;
		r.account_id = job->account_id;
		r.device_id = op->device_id;
		r.has_account_key = job->acct.has_account_key;
		memcpy(r.account_key, job->acct.account_key, sizeof(r.account_key));
	} else {
		attempt_failed(op->a, s, status, &r);
	}
	dynbuf__free(&msg);
	op->cb(op->arg, status, &r);
	parley__free(op);
}

void accounts__auth(accounts *a, store_client *sc, acct_auth *s, const Parley__Wire__AuthRequest *req, svc_cb cb,
		    void *arg)
{
	accounts_result r = {0};
	struct acct_op *op = NULL;
	store_job *job = NULL;
	uint8_t nonce[WIRE_NONCE_LEN];
	int status = begin_attempt(s, nonce);

	if (status != PARLEY_OK) {
		cb(arg, status, &r);
		return;
	}
	if (!wire__handle_valid(req->handle) || req->device_id == 0 || req->signature.len != WIRE_SIG_LEN) {
		status = PARLEY_E_BAD_SIGNATURE; /* no such account: same answer as a wrong signature */
		goto fail;
	}
	op = op_new(a, sc, s, cb, arg);
	job = store__job_new(STORE_OP_FIND_DEVICE);
	if (op != NULL && job != NULL) {
		memcpy(op->nonce, nonce, WIRE_NONCE_LEN);
		memcpy(op->sig, req->signature.data, WIRE_SIG_LEN);
		snprintf(op->handle, sizeof(op->handle), "%s", req->handle);
		snprintf(s->handle, sizeof(s->handle), "%s", req->handle);
		op->device_id = req->device_id;
		(void)store__job_set_handle(job, req->handle); /* length checked by the handle rules */
		job->device_id = req->device_id;
	}
	status = submit(op, job, auth_done);
	if (status != PARLEY_OK)
		goto fail;
	s->busy = 1;
	return;
fail:
	attempt_failed(a, s, status, &r);
	cb(arg, status, &r);
}

/* --- authenticated device management: the result is the store job itself (devices, device_id) --- */

/* caller: the authenticated device the job runs for (store.h caller_account) */
static void submit_job(store_client *sc, store_job *job, uint64_t account, uint32_t device, svc_cb cb, void *arg)
{
	if (job != NULL) {
		job->caller_account = account;
		job->caller_device = device;
	}
	int rc = job == NULL ? PARLEY_E_NOMEM : store__submit(sc, job, cb, arg);
	if (rc != PARLEY_OK) {
		store__job_free(job);
		cb(arg, rc, NULL);
	}
}

void accounts__list_devices(store_client *sc, uint64_t account, uint32_t device, svc_cb cb, void *arg)
{
	store_job *job = store__job_new(STORE_OP_LIST_DEVICES);
	if (job != NULL)
		job->account_id = account;
	submit_job(sc, job, account, device, cb, arg);
}

/* Without this proof any account could add someone else's public key to itself and squat it: keys are
 * unique server-wide, so the owner could never be added to its own account. The handle binds the proof
 * to one account; the timestamp bounds a leaked link code's life (a removed device cannot be re-added
 * from an old code). */
static int check_link_proof(const accounts *a, const char *handle, const Parley__Wire__AddDeviceRequest *req,
			    uint64_t now_ms)
{
	dynbuf msg;
	uint64_t ts = req->timestamp_ms;
	int rc;
	if (req->signature.len != WIRE_SIG_LEN)
		return PARLEY_E_BAD_SIGNATURE;
	dynbuf__init(&msg, 128);
	rc = wire__add_device_signed_bytes(handle, req->device_key.data, ts, &msg);
	if (rc == PARLEY_OK &&
	    crypto_sign_verify_detached(req->signature.data, msg.data, msg.len, req->device_key.data) != 0)
		rc = PARLEY_E_BAD_SIGNATURE;
	dynbuf__free(&msg);
	/* the age is checked after the signature, so a forged code learns nothing about the window */
	if (rc == PARLEY_OK && (ts > now_ms + a->link_max_age_ms || ts + a->link_max_age_ms < now_ms))
		rc = PARLEY_E_LINK_CODE_EXPIRED;
	return rc;
}

void accounts__add_device(const accounts *a, store_client *sc, uint64_t account, uint32_t device,
			  const char *handle, const Parley__Wire__AddDeviceRequest *req, uint64_t now_ms, svc_cb cb,
			  void *arg)
{
	const char *name = req->device_name != NULL ? req->device_name : "";
	/* a key that is not a valid, non-small-order point could never verify a signature */
	if (req->device_key.len != WIRE_KEY_LEN || crypto_core_ed25519_is_valid_point(req->device_key.data) != 1) {
		cb(arg, PARLEY_E_INVALID_KEY, NULL);
		return;
	}
	int rc = check_link_proof(a, handle, req, now_ms);
	if (rc != PARLEY_OK) {
		cb(arg, rc, NULL);
		return;
	}
	store_job *job = store__job_new(STORE_OP_ADD_DEVICE);
	if (job != NULL) {
		job->account_id = account;
		memcpy(job->acct.key, req->device_key.data, WIRE_KEY_LEN);
		job->now_ms = now_ms;
		if (store__job_set_device_name(job, name) != PARLEY_OK) {
			store__job_free(job);
			cb(arg, PARLEY_E_PROTO_FIELD_TOO_LARGE, NULL);
			return;
		}
	}
	submit_job(sc, job, account, device, cb, arg);
}

void accounts__remove_device(store_client *sc, uint64_t account, uint32_t device,
			     const Parley__Wire__RemoveDeviceRequest *req, svc_cb cb, void *arg)
{
	store_job *job = store__job_new(STORE_OP_REMOVE_DEVICE);
	if (job != NULL) {
		job->account_id = account;
		job->device_id = req->device_id;
	}
	submit_job(sc, job, account, device, cb, arg);
}
