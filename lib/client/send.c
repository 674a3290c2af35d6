/* Sending (docs/protocol.md §10): one SendMessageRequest per target account carrying one ciphertext
 * per device of that account.
 *
 * A send job goes through two phases: the recipient's devices, then (messages only) this account's
 * other devices, which get a "sent copy" so every device of the sender shows the conversation. In
 * each phase:
 *   1. devices = the target's devices we hold a session with (peer_devices + session present);
 *      with none yet, fetch every bundle of the target first (X3DH per device);
 *   2. encrypt once per device, send;
 *   3. MISMATCHED_DEVICES / STALE_DEVICES (the server names the devices): drop the sessions of extra
 *      and stale devices, fetch bundles for missing and stale ones, go to 2 — at most SEND_ATTEMPTS
 *      times, so a device list that keeps changing ends in an error instead of a loop.
 * Receipts (cleartext Receipt envelopes) take the same path without encryption; they still need the
 * device list and registration ids, which the relay checks the same way.
 *
 * The message timestamp stays the same across retries: it is the message id receipts refer to.
 */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define SEND_ATTEMPTS 4
#define SEND_MAX_DEVICES 64

typedef struct send_job {
	char recipient[PARLEY_HANDLE_MAX + 1];
	char target[PARLEY_HANDLE_MAX + 1];
	int phase;       /* 0: recipient, 1: this account's other devices */
	int attempts;
	int fetched;     /* all bundles of target were fetched in this phase */
	uint64_t timestamp;
	int receipt_kind; /* 0: a message */
	uint8_t *content; /* plaintext Content (or packed Receipt) for the recipient */
	size_t content_len;
	uint8_t *copy;    /* plaintext Content for our other devices */
	size_t copy_len;
	parley_done_cb cb;
	void *user;
} send_job;

/* The request and everything it points to, in one allocation per attempt. */
typedef struct send_mem {
	Parley__Wire__SendMessageRequest req;
	Parley__Wire__OutgoingMessage msg[SEND_MAX_DEVICES];
	Parley__Wire__OutgoingMessage *msgp[SEND_MAX_DEVICES];
	uint8_t *ct[SEND_MAX_DEVICES];
	size_t n;
} send_mem;

static void job_step(parley_client *c, send_job *job);

static void job_free(send_job *job)
{
	if (job->content != NULL)
		sodium_memzero(job->content, job->content_len);
	if (job->copy != NULL)
		sodium_memzero(job->copy, job->copy_len);
	parley__free(job->content);
	parley__free(job->copy);
	parley__free(job);
}

static void job_finish(parley_client *c, send_job *job, int status)
{
	if (job->cb != NULL)
		job->cb(c, (parley_err)status, job->user);
	job_free(job);
}

static void send_mem_free(void *p)
{
	send_mem *m = p;
	size_t i;
	for (i = 0; i < m->n; i++)
		parley__free(m->ct[i]);
	parley__free(m);
}

static int is_self(parley_client *c, const char *handle)
{
	return strcmp(handle, c->account.handle) == 0;
}

/* ---- bundles ---- */

typedef struct bundle_req {
	Parley__Wire__GetBundlesRequest req;
	char handle[PARLEY_HANDLE_MAX + 1];
} bundle_req;

static void bundle_req_free(void *p)
{
	parley__free(p);
}

static void on_bundles(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	send_job *job = op->raw_ctx;
	size_t i;

	if (status == PARLEY_OK && (r == NULL || r->body_case != PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES))
		status = PARLEY_E_PROTO_MISSING_FIELD;
	if (status != PARLEY_OK) {
		if (status == PARLEY_E_NO_SUCH_ACCOUNT)
			client__set_err(c, "no account %s", job->target);
		job_finish(c, job, status);
		return;
	}
	for (i = 0; i < r->get_bundles->n_bundles; i++) {
		const Parley__Wire__PreKeyBundle *b = r->get_bundles->bundles[i];
		parley_signal_address a = {job->target, b->device_id};
		int exists = 0, rc;

		if (is_self(c, job->target) && b->device_id == c->account.device_id)
			continue;
		/* A fetch of every device also returns devices we already talk to: keep those sessions. */
		if (parley_signal_session_exists(c->sig, &a, &exists) == PARLEY_OK && exists)
			continue;
		rc = client__e2e_process_bundle(c, job->target, b);
		if (rc == PARLEY_E_UNTRUSTED_IDENTITY) {
			parley_events *ev = &c->ev;
			if (ev->on_identity_changed != NULL)
				ev->on_identity_changed(c, job->target, b->device_id, ev->user);
		}
		if (rc != PARLEY_OK) {
			job_finish(c, job, rc);
			return;
		}
	}
	job->fetched = 1;
	job_step(c, job);
}

/* device 0 = every device of the target. */
static int fetch_bundles(parley_client *c, send_job *job, uint32_t device)
{
	bundle_req *b = parley__calloc(1, sizeof(*b));
	if (b == NULL)
		return PARLEY_E_NOMEM;
	parley__wire__get_bundles_request__init(&b->req);
	memcpy(b->handle, job->target, sizeof(b->handle));
	b->req.handle = b->handle;
	b->req.device_id = device;
	return client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES, &b->req, b, bundle_req_free, on_bundles,
				  job);
}

/* ---- the send request ---- */

static void on_sent(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r);

static int build_and_send(parley_client *c, send_job *job, const uint32_t *ids, const uint32_t *regids, size_t n)
{
	const uint8_t *pt = job->phase == 0 ? job->content : job->copy;
	size_t pt_len = job->phase == 0 ? job->content_len : job->copy_len;
	send_mem *m = parley__calloc(1, sizeof(*m));
	size_t i;
	int rc = PARLEY_OK;

	if (m == NULL)
		return PARLEY_E_NOMEM;
	parley__wire__send_message_request__init(&m->req);
	m->req.recipient = job->target;
	m->req.timestamp = job->timestamp;
	for (i = 0; i < n; i++) {
		Parley__Wire__OutgoingMessage *o = &m->msg[i];
		parley__wire__outgoing_message__init(o);
		o->device_id = ids[i];
		o->registration_id = regids[i];
		m->msgp[i] = o;
		if (job->receipt_kind != 0) {
			o->type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT;
			o->content.data = (uint8_t *)pt;
			o->content.len = pt_len;
			continue;
		}
		parley_signal_address a = {job->target, ids[i]};
		size_t cap = PARLEY_SIGNAL_CIPHERTEXT_MAX(pt_len), len = 0;
		int type = 0;
		m->ct[i] = parley__malloc(cap);
		if (m->ct[i] == NULL) {
			rc = PARLEY_E_NOMEM;
			break;
		}
		m->n = i + 1;
		rc = parley_signal_encrypt(c->sig, &a, pt, pt_len, m->ct[i], cap, &len, &type);
		if (rc != PARLEY_OK) {
			if (rc == PARLEY_E_UNTRUSTED_IDENTITY)
				client__set_err(c, "the identity key of %s (device %u) has changed: compare the safety "
						   "number, then accept it with: parley trust %s",
						job->target, (unsigned)ids[i], job->target);
			break;
		}
		o->type = type == PARLEY_SIGNAL_MSG_PREKEY ? PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE
							   : PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
		o->content.data = m->ct[i];
		o->content.len = len;
	}
	if (rc != PARLEY_OK) {
		send_mem_free(m);
		return rc;
	}
	m->req.n_messages = n;
	m->req.messages = m->msgp;
	return client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE, &m->req, m, send_mem_free, on_sent, job);
}

/* Applies the server's device lists; returns the device to fetch (0 = all) in *fetch, or -1 if none. */
static int apply_mismatch(parley_client *c, send_job *job, const Parley__Wire__SendMessageResponse *r,
			  int64_t *fetch)
{
	size_t i, nfetch = 0;
	int rc = PARLEY_OK;

	*fetch = -1;
	for (i = 0; rc == PARLEY_OK && i < r->n_extra_devices; i++)
		rc = client__e2e_peer_drop(c, job->target, r->extra_devices[i]);
	for (i = 0; rc == PARLEY_OK && i < r->n_stale_devices; i++) {
		rc = client__e2e_peer_drop(c, job->target, r->stale_devices[i]);
		*fetch = r->stale_devices[i];
		nfetch++;
	}
	for (i = 0; i < r->n_missing_devices; i++) {
		*fetch = r->missing_devices[i];
		nfetch++;
	}
	/* Several devices: one request for all of them (bundles of devices we already have sessions with
	 * are skipped in on_bundles; the fetch is rate limited per target, so fewer requests is better). */
	if (nfetch > 1)
		*fetch = 0;
	return rc;
}

static void next_phase(parley_client *c, send_job *job)
{
	/* A note to self already went to every other device of this account in phase 0. */
	if (job->phase == 0 && job->receipt_kind == 0 && job->copy != NULL && !is_self(c, job->recipient)) {
		job->phase = 1;
		job->attempts = 0;
		job->fetched = 0;
		memcpy(job->target, c->account.handle, sizeof(job->target));
		job_step(c, job);
		return;
	}
	job_finish(c, job, PARLEY_OK);
}

static void on_sent(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	send_job *job = op->raw_ctx;
	int64_t fetch;
	int rc;

	if (status == PARLEY_OK) {
		next_phase(c, job);
		return;
	}
	if ((status != PARLEY_E_MISMATCHED_DEVICES && status != PARLEY_E_STALE_DEVICES) || r == NULL ||
	    r->body_case != PARLEY__WIRE__RESPONSE__BODY_SEND_MESSAGE) {
		job_finish(c, job, status);
		return;
	}
	if (++job->attempts >= SEND_ATTEMPTS) {
		client__set_err(c, "the device list of %s kept changing (%d attempts)", job->target, job->attempts);
		job_finish(c, job, status);
		return;
	}
	rc = apply_mismatch(c, job, r->send_message, &fetch);
	if (rc == PARLEY_OK && fetch >= 0)
		rc = fetch_bundles(c, job, (uint32_t)fetch);
	else if (rc == PARLEY_OK)
		job_step(c, job); /* only extra devices: resend without them */
	if (rc != PARLEY_OK)
		job_finish(c, job, rc);
}

/* Own devices when we know none yet: ask the server which exist before fetching their bundles, so a
 * single-device account does not spend its own prekeys on every send. */
static void on_own_devices(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	send_job *job = op->raw_ctx;
	size_t i, others = 0;
	int rc;

	if (status != PARLEY_OK || r == NULL || r->body_case != PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES) {
		job_finish(c, job, status != PARLEY_OK ? status : PARLEY_E_PROTO_MISSING_FIELD);
		return;
	}
	for (i = 0; i < r->list_devices->n_devices; i++)
		others += r->list_devices->devices[i]->device_id != c->account.device_id;
	if (others == 0) {
		job_finish(c, job, PARLEY_OK);
		return;
	}
	rc = fetch_bundles(c, job, 0);
	if (rc != PARLEY_OK)
		job_finish(c, job, rc);
}

static void list_free(void *p)
{
	parley__free(p);
}

static void job_step(parley_client *c, send_job *job)
{
	uint32_t ids[SEND_MAX_DEVICES], regids[SEND_MAX_DEVICES];
	size_t n = 0, i, j;
	int rc;

	rc = client__e2e_peer_devices(c, job->target, ids, regids, SEND_MAX_DEVICES, &n);
	if (rc != PARLEY_OK)
		goto fail;
	if (is_self(c, job->target)) {
		for (i = j = 0; i < n; i++) {
			if (ids[i] != c->account.device_id) {
				ids[j] = ids[i];
				regids[j++] = regids[i];
			}
		}
		n = j;
	}
	if (n == 0 && !job->fetched) {
		if (job->phase == 1) {
			Parley__Wire__ListDevicesRequest *req = parley__malloc(sizeof(*req));
			if (req == NULL) {
				rc = PARLEY_E_NOMEM;
				goto fail;
			}
			parley__wire__list_devices_request__init(req);
			rc = client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES, req, req, list_free,
						on_own_devices, job);
		} else {
			rc = fetch_bundles(c, job, 0);
		}
		if (rc != PARLEY_OK)
			goto fail;
		return;
	}
	if (n == 0) {
		if (job->phase == 1) {
			next_phase(c, job);
			return;
		}
		client__set_err(c, "%s has no device that can receive messages", job->target);
		rc = PARLEY_E_NO_KEYS;
		goto fail;
	}
	rc = build_and_send(c, job, ids, regids, n);
	if (rc == PARLEY_OK)
		return;
fail:
	job_finish(c, job, rc);
}

/* ---- public ---- */

static int check_target(parley_client *c, const char *handle)
{
	size_t n;
	if (handle == NULL)
		return PARLEY_E_INVAL;
	n = strnlen(handle, PARLEY_HANDLE_MAX + 1);
	if (n < WIRE_MIN_HANDLE || n > PARLEY_HANDLE_MAX) {
		client__set_err(c, "a handle has %d to %d bytes", WIRE_MIN_HANDLE, PARLEY_HANDLE_MAX);
		return PARLEY_E_BAD_HANDLE;
	}
	return PARLEY_OK;
}

static send_job *job_new(parley_client *c, const char *handle)
{
	send_job *job = parley__calloc(1, sizeof(*job));
	if (job != NULL) {
		snprintf(job->recipient, sizeof(job->recipient), "%s", handle);
		memcpy(job->target, job->recipient, sizeof(job->target));
	}
	return job;
}

/* The first step of a job, from a *_start call: like job_step it only queues requests, but a local
 * error is returned to the caller instead of reaching the callback (the *_start contract). */
static int job_start(parley_client *c, send_job *job)
{
	uint32_t ids[SEND_MAX_DEVICES], regids[SEND_MAX_DEVICES];
	size_t n = 0;
	int rc;

	rc = client__e2e_peer_devices(c, job->target, ids, regids, SEND_MAX_DEVICES, &n);
	if (rc != PARLEY_OK)
		return rc;
	if (n == 0)
		return fetch_bundles(c, job, 0);
	return build_and_send(c, job, ids, regids, n);
}

parley_err parley_send_start(parley_client *c, const char *handle, const uint8_t *body, size_t len,
			     uint64_t *timestamp, parley_done_cb cb, void *user)
{
	client_content ct;
	send_job *job = NULL;
	int rc;

	if (c == NULL || cb == NULL || (body == NULL && len != 0))
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	if (len == 0 || len > PARLEY_MESSAGE_MAX) {
		client__set_err(c, "a message has 1 to %d bytes", PARLEY_MESSAGE_MAX);
		return len == 0 ? PARLEY_E_INVAL : PARLEY_E_TOO_LARGE;
	}
	rc = check_target(c, handle);
	if (rc == PARLEY_OK)
		rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__e2e_open(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	job = job_new(c, handle);
	if (job == NULL)
		return PARLEY_E_NOMEM;
	job->timestamp = client__e2e_timestamp(c);
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_MESSAGE;
	ct.timestamp = job->timestamp;
	ct.body = body;
	ct.body_len = len;
	rc = client__content_encode(&ct, &job->content, &job->content_len);
	if (rc == PARLEY_OK) {
		ct.kind = CONTENT_KIND_SENT_COPY;
		snprintf(ct.destination, sizeof(ct.destination), "%s", handle);
		rc = client__content_encode(&ct, &job->copy, &job->copy_len);
	}
	job->cb = cb;
	job->user = user;
	if (rc == PARLEY_OK)
		rc = job_start(c, job);
	if (rc != PARLEY_OK) {
		job->cb = NULL;
		job_free(job);
		return (parley_err)rc;
	}
	if (timestamp != NULL)
		*timestamp = job->timestamp;
	return PARLEY_OK;
}

int client__send_receipt(parley_client *c, const char *handle, int kind, const uint64_t *ts, size_t n)
{
	Parley__Wire__Receipt rcpt = PARLEY__WIRE__RECEIPT__INIT;
	send_job *job;
	size_t len;
	int rc;

	if (n == 0 || n > WIRE_MAX_ACK_IDS)
		return PARLEY_E_INVAL;
	job = job_new(c, handle);
	if (job == NULL)
		return PARLEY_E_NOMEM;
	rcpt.kind = kind == PARLEY_RECEIPT_READ ? PARLEY__WIRE__RECEIPT__KIND__READ : PARLEY__WIRE__RECEIPT__KIND__DELIVERY;
	rcpt.n_timestamps = n;
	rcpt.timestamps = (uint64_t *)ts;
	len = parley__wire__receipt__get_packed_size(&rcpt);
	job->content = parley__malloc(len);
	if (job->content == NULL) {
		job_free(job);
		return PARLEY_E_NOMEM;
	}
	job->content_len = parley__wire__receipt__pack(&rcpt, job->content);
	job->receipt_kind = kind;
	job->timestamp = client__e2e_timestamp(c);
	rc = job_start(c, job);
	if (rc != PARLEY_OK)
		job_free(job);
	return rc;
}

/* ---- blocking and best-effort wrappers ---- */

typedef struct send_wait {
	int done;
	parley_err status;
} send_wait;

static void on_send_done(parley_client *c, parley_err status, void *user)
{
	send_wait *w = user;
	w->status = status;
	w->done = 1;
}

parley_err parley_send_bytes(parley_client *c, const char *handle, const uint8_t *body, size_t len,
			     uint64_t *timestamp)
{
	send_wait w = {0, PARLEY_OK};
	int rc;

	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_send_start(c, handle, body, len, timestamp, on_send_done, &w);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	if (client__wait(c, &w.done) != PARLEY_OK && !w.done)
		client__fail_all(c, PARLEY_E_INTERNAL);
	return w.status;
}

parley_err parley_send(parley_client *c, const char *handle, const char *text)
{
	if (text == NULL)
		return PARLEY_E_INVAL;
	return parley_send_bytes(c, handle, (const uint8_t *)text, strlen(text), NULL);
}

parley_err parley_mark_read(parley_client *c, const char *handle, const uint64_t *timestamps, size_t n)
{
	int rc;

	if (c == NULL || timestamps == NULL || n == 0 || n > WIRE_MAX_ACK_IDS)
		return PARLEY_E_INVAL;
	rc = check_target(c, handle);
	if (rc == PARLEY_OK)
		rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__e2e_open(c);
	if (rc == PARLEY_OK)
		rc = client__send_receipt(c, handle, PARLEY_RECEIPT_READ, timestamps, n);
	return (parley_err)rc;
}

typedef struct typing_mem {
	Parley__Wire__TypingRequest req;
	char handle[PARLEY_HANDLE_MAX + 1];
} typing_mem;

static void on_typing_sent(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	/* best effort: a typing indicator that did not arrive is not worth an error */
}

parley_err parley_typing(parley_client *c, const char *handle, int started)
{
	typing_mem *t;
	int rc;

	if (c == NULL)
		return PARLEY_E_INVAL;
	rc = check_target(c, handle);
	if (rc == PARLEY_OK)
		rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	t = parley__calloc(1, sizeof(*t));
	if (t == NULL)
		return PARLEY_E_NOMEM;
	parley__wire__typing_request__init(&t->req);
	snprintf(t->handle, sizeof(t->handle), "%s", handle);
	t->req.recipient = t->handle;
	t->req.started = started != 0;
	t->req.timestamp = client__e2e_timestamp(c);
	return (parley_err)client__submit_raw(c, PARLEY__WIRE__REQUEST__BODY_TYPING, &t->req, t, list_free,
					      on_typing_sent, NULL);
}
