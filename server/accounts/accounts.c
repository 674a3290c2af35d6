/* Accounts and devices: register, challenge-response auth, device management. See accounts.h. */
#include "accounts/accounts.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"

#define MODULE "accounts"

/* One in-flight request: what the completion needs once the store answered. */
struct acct_op {
	accounts *a;
	store_client *sc;
	acct_session *s;
	accounts_cb cb;
	void *arg;
	uint8_t nonce[WIRE_NONCE_LEN]; /* the challenge this attempt consumed */
	uint8_t sig[WIRE_SIG_LEN];
	char handle[WIRE_MAX_HANDLE + 1];
	uint32_t device_id;
};

void accounts__init(accounts *a, unsigned max_auth_failures)
{
	a->max_auth_failures = max_auth_failures ? max_auth_failures : ACCOUNTS_DEFAULT_MAX_AUTH_FAILURES;
}

void accounts__new_challenge(acct_session *s)
{
	randombytes_buf(s->nonce, sizeof(s->nonce));
	s->nonce_valid = 1;
}

void accounts__session_init(acct_session *s)
{
	memset(s, 0, sizeof(*s));
	accounts__new_challenge(s);
}

int accounts__handle_valid(const char *h)
{
	size_t n = strnlen(h, WIRE_MAX_HANDLE + 1);
	if (n < WIRE_MIN_HANDLE || n > WIRE_MAX_HANDLE)
		return 0;
	if (h[0] < 'a' || h[0] > 'z')
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = h[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return 0;
	}
	return 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Register and auth consume the challenge before anything else: the same nonce can never be checked
 * twice, whatever the outcome. Refusals for state reasons (already authenticated, attempt in flight)
 * leave it alone. */
static int begin_attempt(acct_session *s, uint8_t nonce[WIRE_NONCE_LEN])
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
static void attempt_failed(accounts *a, acct_session *s, accounts_result *r)
{
	if (r->status == PARLEY_E_BAD_SIGNATURE) {
		s->auth_failures++;
		if (s->auth_failures >= a->max_auth_failures)
			r->close_conn = 1;
	}
	accounts__new_challenge(s);
	r->new_challenge = 1;
}

static struct acct_op *op_new(accounts *a, store_client *sc, acct_session *s, accounts_cb cb, void *arg)
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
static int submit(struct acct_op *op, store_job *job, store_cb done)
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

static void register_done(store_job *job, void *arg)
{
	struct acct_op *op = arg;
	acct_session *s = op->s;
	accounts_result r = {.status = job->status};
	s->busy = 0;
	if (r.status == PARLEY_OK) {
		s->authenticated = 1;
		s->account_id = job->account_id;
		s->device_id = job->device_id;
		r.account_id = job->account_id;
		r.device_id = job->device_id;
		log_info(MODULE, "registered %s as account %llu", job->handle, (unsigned long long)job->account_id);
	} else {
		attempt_failed(op->a, s, &r);
	}
	op->cb(op->arg, s, &r);
	parley__free(op);
}

void accounts__register(accounts *a, store_client *sc, acct_session *s, const Parley__Wire__RegisterRequest *req,
			accounts_cb cb, void *arg)
{
	accounts_result r = {0};
	uint8_t nonce[WIRE_NONCE_LEN];
	dynbuf msg;
	const char *name = req->device_name != NULL ? req->device_name : "";

	dynbuf__init(&msg, 512);
	r.status = begin_attempt(s, nonce);
	if (r.status != PARLEY_OK) {
		cb(arg, s, &r);
		return;
	}
	if (!accounts__handle_valid(req->handle) || req->device_key.len != WIRE_KEY_LEN ||
	    req->signature.len != WIRE_SIG_LEN) {
		r.status = !accounts__handle_valid(req->handle) ? PARLEY_E_BAD_HANDLE : PARLEY_E_INVAL;
		goto fail;
	}
	r.status = wire__register_signed_bytes(nonce, req->handle, req->device_key.data, name, &msg);
	if (r.status != PARLEY_OK)
		goto fail;
	if (crypto_sign_verify_detached(req->signature.data, msg.data, msg.len, req->device_key.data) != 0) {
		r.status = PARLEY_E_BAD_SIGNATURE;
		goto fail;
	}
	store_job *job = store__job_new(STORE_OP_CREATE_ACCOUNT);
	if (job != NULL) {
		if (store__job_set_handle(job, req->handle) != PARLEY_OK ||
		    store__job_set_device_name(job, name) != PARLEY_OK) {
			store__job_free(job);
			r.status = PARLEY_E_INVAL;
			goto fail;
		}
		memcpy(job->acct.key, req->device_key.data, WIRE_KEY_LEN);
		job->now_ms = now_ms();
	}
	r.status = submit(op_new(a, sc, s, cb, arg), job, register_done);
	if (r.status != PARLEY_OK)
		goto fail;
	s->busy = 1;
	dynbuf__free(&msg);
	return;
fail:
	dynbuf__free(&msg);
	attempt_failed(a, s, &r);
	cb(arg, s, &r);
}

/* --- auth --- */

static void touch_done(store_job *job, void *arg)
{
	if (job->status != PARLEY_OK)
		log_warn(MODULE, "last-seen update for account %llu device %u: %s",
			 (unsigned long long)job->account_id, job->device_id, parley_strerror(job->status));
}

static void auth_done(store_job *job, void *arg)
{
	struct acct_op *op = arg;
	acct_session *s = op->s;
	accounts_result r = {.status = job->status};
	dynbuf msg;

	dynbuf__init(&msg, 512);
	s->busy = 0;
	/* unknown account and unknown device answer exactly like a bad signature (docs/protocol.md), and
	 * cost the same: the signature is checked against the Ed25519 base point instead, which fails */
	int unknown = r.status == PARLEY_E_NO_SUCH_DEVICE || r.status == PARLEY_E_NO_SUCH_ACCOUNT;
	if (r.status == PARLEY_OK || unknown) {
		static const uint8_t base_point[WIRE_KEY_LEN] = {
			0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
			0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
			0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};
		const uint8_t *key = unknown ? base_point : job->acct.device.key;
		r.status = wire__auth_signed_bytes(op->nonce, op->handle, op->device_id, &msg);
		int bad = r.status == PARLEY_OK &&
			  crypto_sign_verify_detached(op->sig, msg.data, msg.len, key) != 0;
		if (bad || (r.status == PARLEY_OK && unknown))
			r.status = PARLEY_E_BAD_SIGNATURE;
	}
	if (r.status == PARLEY_OK) {
		s->authenticated = 1;
		s->account_id = job->account_id;
		s->device_id = op->device_id;
		r.account_id = job->account_id;
		r.device_id = op->device_id;
		store_job *t = store__job_new(STORE_OP_TOUCH_DEVICE);
		if (t != NULL) {
			t->account_id = job->account_id;
			t->device_id = op->device_id;
			t->now_ms = now_ms();
			if (store__submit(op->sc, t, touch_done, NULL) != PARLEY_OK)
				store__job_free(t);
		}
	} else {
		attempt_failed(op->a, s, &r);
	}
	dynbuf__free(&msg);
	op->cb(op->arg, s, &r);
	parley__free(op);
}

void accounts__auth(accounts *a, store_client *sc, acct_session *s, const Parley__Wire__AuthRequest *req,
		    accounts_cb cb, void *arg)
{
	accounts_result r = {0};
	struct acct_op *op = NULL;
	store_job *job = NULL;
	uint8_t nonce[WIRE_NONCE_LEN];

	r.status = begin_attempt(s, nonce);
	if (r.status != PARLEY_OK) {
		cb(arg, s, &r);
		return;
	}
	if (!accounts__handle_valid(req->handle) || req->device_id == 0 || req->signature.len != WIRE_SIG_LEN) {
		r.status = PARLEY_E_BAD_SIGNATURE; /* no such account: same answer as a wrong signature */
		goto fail;
	}
	op = op_new(a, sc, s, cb, arg);
	job = store__job_new(STORE_OP_FIND_DEVICE);
	if (op != NULL && job != NULL) {
		memcpy(op->nonce, nonce, WIRE_NONCE_LEN);
		memcpy(op->sig, req->signature.data, WIRE_SIG_LEN);
		snprintf(op->handle, sizeof(op->handle), "%s", req->handle);
		op->device_id = req->device_id;
		(void)store__job_set_handle(job, req->handle); /* length checked by the handle rules */
		job->device_id = req->device_id;
	}
	r.status = submit(op, job, auth_done);
	if (r.status != PARLEY_OK)
		goto fail;
	s->busy = 1;
	return;
fail:
	attempt_failed(a, s, &r);
	cb(arg, s, &r);
}

/* --- authenticated device management --- */

static void list_done(store_job *job, void *arg)
{
	struct acct_op *op = arg;
	accounts_result r = {.status = job->status, .devices = job->acct.devices, .n_devices = job->acct.n_devices};
	op->cb(op->arg, op->s, &r);
	parley__free(op);
}

static void add_done(store_job *job, void *arg)
{
	struct acct_op *op = arg;
	accounts_result r = {.status = job->status, .device_id = job->device_id};
	if (r.status == PARLEY_OK)
		log_info(MODULE, "account %llu added device %u", (unsigned long long)job->account_id, job->device_id);
	op->cb(op->arg, op->s, &r);
	parley__free(op);
}

static void remove_done(store_job *job, void *arg)
{
	struct acct_op *op = arg;
	accounts_result r = {.status = job->status};
	if (r.status == PARLEY_OK) {
		r.removed_device = job->device_id;
		log_info(MODULE, "account %llu removed device %u", (unsigned long long)job->account_id,
			 job->device_id);
	}
	op->cb(op->arg, op->s, &r);
	parley__free(op);
}

static void answer(acct_session *s, int status, accounts_cb cb, void *arg)
{
	accounts_result r = {.status = status};
	cb(arg, s, &r);
}

void accounts__list_devices(accounts *a, store_client *sc, acct_session *s, accounts_cb cb, void *arg)
{
	if (!s->authenticated) {
		answer(s, PARLEY_E_UNAUTHENTICATED, cb, arg);
		return;
	}
	store_job *job = store__job_new(STORE_OP_LIST_DEVICES);
	if (job != NULL)
		job->account_id = s->account_id;
	int rc = submit(op_new(a, sc, s, cb, arg), job, list_done);
	if (rc != PARLEY_OK)
		answer(s, rc, cb, arg);
}

void accounts__add_device(accounts *a, store_client *sc, acct_session *s, const Parley__Wire__AddDeviceRequest *req,
			  accounts_cb cb, void *arg)
{
	const char *name = req->device_name != NULL ? req->device_name : "";
	if (!s->authenticated) {
		answer(s, PARLEY_E_UNAUTHENTICATED, cb, arg);
		return;
	}
	/* a key that is not a valid, non-small-order point could never verify a signature */
	if (req->device_key.len != WIRE_KEY_LEN || crypto_core_ed25519_is_valid_point(req->device_key.data) != 1) {
		answer(s, PARLEY_E_INVALID_KEY, cb, arg);
		return;
	}
	store_job *job = store__job_new(STORE_OP_ADD_DEVICE);
	if (job != NULL) {
		job->account_id = s->account_id;
		memcpy(job->acct.key, req->device_key.data, WIRE_KEY_LEN);
		job->now_ms = now_ms();
		if (store__job_set_device_name(job, name) != PARLEY_OK) {
			store__job_free(job);
			answer(s, PARLEY_E_PROTO_FIELD_TOO_LARGE, cb, arg);
			return;
		}
	}
	int rc = submit(op_new(a, sc, s, cb, arg), job, add_done);
	if (rc != PARLEY_OK)
		answer(s, rc, cb, arg);
}

void accounts__remove_device(accounts *a, store_client *sc, acct_session *s,
			     const Parley__Wire__RemoveDeviceRequest *req, accounts_cb cb, void *arg)
{
	if (!s->authenticated) {
		answer(s, PARLEY_E_UNAUTHENTICATED, cb, arg);
		return;
	}
	store_job *job = store__job_new(STORE_OP_REMOVE_DEVICE);
	if (job != NULL) {
		job->account_id = s->account_id;
		job->device_id = req->device_id;
	}
	int rc = submit(op_new(a, sc, s, cb, arg), job, remove_done);
	if (rc != PARLEY_OK)
		answer(s, rc, cb, arg);
}
