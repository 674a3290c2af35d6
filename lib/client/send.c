/* Sending (docs/protocol.md §10): one SendMessageRequest per target account carrying one ciphertext
 * per device of that account.
 *
 * A send job goes through two phases: the recipient's devices, then (messages only) this account's
 * other devices, which get a "sent copy" so every device of the sender shows the conversation. In
 * each phase:
 *   1. devices = the target's devices we hold a session with (peer_devices + session present);
 *      with none yet, fetch every bundle of the target first (X3DH per device);
 *   2. encrypt once per device, send;
 *   3. MISMATCHED_DEVICES / STALE_DEVICES (the server names the devices): leave out the extra and
 *      stale devices, fetch bundles for missing and stale ones, go to 2 — at most SEND_ATTEMPTS
 *      times, so a device list that keeps changing ends in an error instead of a loop.
 * A refused send never destroys a session that still works (security item 12). "Extra" means only
 * that the server will not queue for that device now (removed, or no keys uploaded): its session may
 * still be the one its messages arrive on, so it stays; the device is left out of this job and, for a
 * message, off the list of devices to send to (a new bundle brings it back if it returns).
 * Only a message to a stale device (a new registration id: the device was reinstalled) drops that
 * session, to build a new one from its bundle. A receipt never changes any session or device list:
 * it is best effort, and losing a conversation over one was the bug.
 * Receipts are end-to-end encrypted Content (kind RECEIPT) like messages (security item 17): the
 * server sees an ordinary ciphertext envelope and cannot forge, read or tell one from a message.
 *
 * The message timestamp stays the same across retries: it is the message id receipts refer to.
 */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define SEND_ATTEMPTS 4
#define SEND_MAX_DEVICES CLIENT_OUTGOING_MAX

typedef struct send_job {
	char recipient[PARLEY_HANDLE_MAX + 1];
	char target[PARLEY_HANDLE_MAX + 1];
	int phase;       /* 0: recipient, 1: this account's other devices */
	int attempts;
	int fetched;     /* all bundles of target were fetched in this phase */
	uint64_t timestamp;
	int receipt_kind; /* 0: a message */
	uint32_t skip[SEND_MAX_DEVICES]; /* devices the server refused in this job (extra/stale receipt) */
	size_t n_skip;
	uint8_t *content; /* plaintext Content for the recipient */
	size_t content_len;
	uint8_t *copy;    /* plaintext Content for our other devices */
	size_t copy_len;
	/* A key transfer to one device (only_device != 0): it gets content, the target's other devices
	 * get filler (the server wants one ciphertext per device of the account). */
	uint32_t only_device;
	uint8_t *filler;
	size_t filler_len;
	parley_done_cb cb;
	void *user;
} send_job;

/* One attempt: the op, the request and everything it points to, in one allocation. */
typedef struct send_op {
	client_op op;
	send_job *job;
	Parley__Wire__SendMessageRequest req;
	client_outgoing out;
} send_op;

static void job_step(parley_client *c, send_job *job);

#ifdef PARLEY_TEST_PLAINTEXT_LEAK
/* TEST ONLY (meson -Dtest_plaintext_leak=true, or the leak variant of tests/integration/t11): the
 * plaintext Content follows each ciphertext IN CLEAR, then the ciphertext length (4 bytes, big-endian),
 * so the plaintext scans have a real leak to catch. recv.c strips it, so delivery still works and the
 * scans are the only checks that fail. */
#define LEAK_EXTRA(n) ((size_t)(n) + 4u)
static size_t leak_in_clear(uint8_t *ct, size_t len, const uint8_t *pt, size_t pt_len)
{
	memcpy(ct + len, pt, pt_len);
	for (int b = 0; b < 4; b++)
		ct[len + pt_len + (size_t)b] = (uint8_t)(len >> (24 - 8 * b));
	return len + pt_len + 4;
}
#else
#define LEAK_EXTRA(n) 0u
#endif

static void job_free(send_job *job)
{
	if (job->content != NULL)
		sodium_memzero(job->content, job->content_len);
	if (job->copy != NULL)
		sodium_memzero(job->copy, job->copy_len);
	parley__free(job->content);
	parley__free(job->copy);
	parley__free(job->filler);
	parley__free(job);
}

static void job_finish(parley_client *c, send_job *job, int status)
{
	if (job->cb != NULL)
		job->cb(c, (parley_err)status, job->user);
	job_free(job);
}

static void send_op_free(send_op *m)
{
	client__outgoing_free(&m->out);
	parley__free(m);
}

static int is_self(parley_client *c, const char *handle)
{
	return strcmp(handle, c->account.handle) == 0;
}

/* ---- bundles ---- */

static void on_bundles(parley_client *c, int status, const Parley__Wire__GetBundlesResponse *r, void *ctx)
{
	send_job *job = ctx;

	if (status == PARLEY_OK)
		status = client__e2e_process_bundles(c, job->target, r, 1);
	if (status != PARLEY_OK) {
		job_finish(c, job, status);
		return;
	}
	job->fetched = 1;
	job_step(c, job);
}

/* device 0 = every device of the target. */
static int fetch_bundles(parley_client *c, send_job *job, uint32_t device)
{
	return client__e2e_fetch_bundles(c, job->target, device, on_bundles, job);
}

/* ---- the send request ---- */

static int build_send(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	send_op *m = CLIENT_OP_OWNER(op, send_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req->send_message = &m->req;
	return PARLEY_OK;
}

static void complete_send(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r);

/* The errors that carry a body (MISMATCHED/STALE_DEVICES) are checked by complete_send itself. */
static const client_op_vtable send_vt = {build_send, complete_send, PARLEY__WIRE__RESPONSE__BODY_SEND_MESSAGE, 0};

/* ---- one Content to devices of a handle ---- */

void client__outgoing_free(client_outgoing *o)
{
	for (size_t i = 0; i < o->n; i++)
		parley__free(o->ct[i]);
	o->n = 0;
}

int client__outgoing_encrypt(parley_client *c, const char *handle, const uint32_t *ids, const uint32_t *regids,
			     size_t n, const uint8_t *pt, size_t pt_len, uint32_t only_device, const uint8_t *other,
			     size_t other_len, client_outgoing *out)
{
	int rc = PARLEY_OK;

	out->n = 0;
	if (n > CLIENT_OUTGOING_MAX)
		return PARLEY_E_TOO_LARGE;
	for (size_t i = 0; i < n; i++) {
		Parley__Wire__OutgoingMessage *o = &out->msg[i];
		const uint8_t *p = only_device == 0 || ids[i] == only_device ? pt : other;
		size_t p_len = only_device == 0 || ids[i] == only_device ? pt_len : other_len;
		parley_signal_address a = {handle, ids[i]};
		size_t cap = PARLEY_SIGNAL_CIPHERTEXT_MAX(p_len) + LEAK_EXTRA(p_len), len = 0;
		int type = 0;

		parley__wire__outgoing_message__init(o);
		o->device_id = ids[i];
		o->registration_id = regids[i];
		out->msgp[i] = o;
		out->ct[i] = parley__malloc(cap);
		if (out->ct[i] == NULL) {
			rc = PARLEY_E_NOMEM;
			break;
		}
		out->n = i + 1;
		rc = parley_signal_encrypt(c->sig, &a, p, p_len, out->ct[i], cap, &len, &type);
		if (rc != PARLEY_OK) {
			if (rc == PARLEY_E_UNTRUSTED_IDENTITY)
				client__set_err(c, "the identity key of %s (device %u) has changed: compare the safety "
						   "number, then accept it with: parley trust %s",
						handle, (unsigned)ids[i], handle);
			break;
		}
#ifdef PARLEY_TEST_PLAINTEXT_LEAK
		len = leak_in_clear(out->ct[i], len, p, p_len);
#endif
		o->type = type == PARLEY_SIGNAL_MSG_PREKEY ? PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE
							   : PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
		o->content.data = out->ct[i];
		o->content.len = len;
	}
	if (rc != PARLEY_OK)
		client__outgoing_free(out);
	return rc;
}

static int build_and_send(parley_client *c, send_job *job, const uint32_t *ids, const uint32_t *regids, size_t n)
{
	const uint8_t *pt = job->phase == 0 ? job->content : job->copy;
	size_t pt_len = job->phase == 0 ? job->content_len : job->copy_len;
	send_op *m = parley__calloc(1, sizeof(*m));
	int rc;

	if (m == NULL)
		return PARLEY_E_NOMEM;
	m->op.vt = &send_vt;
	m->job = job;
	parley__wire__send_message_request__init(&m->req);
	m->req.recipient = job->target;
	m->req.timestamp = job->timestamp;
	rc = client__outgoing_encrypt(c, job->target, ids, regids, n, pt, pt_len, job->only_device, job->filler,
				      job->filler_len, &m->out);
	if (rc != PARLEY_OK) {
		send_op_free(m);
		return rc;
	}
	m->req.n_messages = n;
	m->req.messages = m->out.msgp;
	client__conn_submit(c, &m->op);
	return PARLEY_OK;
}

static void skip_device(send_job *job, uint32_t device)
{
	size_t i;
	for (i = 0; i < job->n_skip; i++)
		if (job->skip[i] == device)
			return;
	if (job->n_skip < SEND_MAX_DEVICES)
		job->skip[job->n_skip++] = device;
}

static int skipped(const send_job *job, uint32_t device)
{
	size_t i;
	for (i = 0; i < job->n_skip; i++)
		if (job->skip[i] == device)
			return 1;
	return 0;
}

/* Applies the server's device lists; returns the device to fetch (0 = all) in *fetch, or -1 if none.
 * Extra devices are left out of this job, their sessions kept (see the top of the file); a message
 * also takes them off the device list, so the next one does not ask again. Stale ones:
 * a message drops the session and fetches the new bundle; a receipt leaves them out and touches
 * nothing. */
static int apply_mismatch(parley_client *c, send_job *job, const Parley__Wire__SendMessageResponse *r,
			  int64_t *fetch)
{
	size_t i, nfetch = 0;
	int rc = PARLEY_OK;

	*fetch = -1;
	for (i = 0; rc == PARLEY_OK && i < r->n_extra_devices; i++) {
		skip_device(job, r->extra_devices[i]);
		/* later messages need not ask again (a receipt leaves even that alone) */
		if (job->receipt_kind == 0)
			rc = client__e2e_peer_forget(c, job->target, r->extra_devices[i]);
	}
	for (i = 0; rc == PARLEY_OK && i < r->n_stale_devices; i++) {
		if (job->receipt_kind != 0) {
			skip_device(job, r->stale_devices[i]);
			continue;
		}
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
		job->n_skip = 0; /* device ids of the recipient: they say nothing about ours */
		memcpy(job->target, c->account.handle, sizeof(job->target));
		job_step(c, job);
		return;
	}
	job_finish(c, job, PARLEY_OK);
}

static void complete_send(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	send_op *m = CLIENT_OP_OWNER(op, send_op, op);
	send_job *job = m->job;
	int64_t fetch;
	int rc;

	send_op_free(m);
	if (status == PARLEY_OK) {
		/* the recipient's phase is what makes a message sent: it joins this device's history */
		/* (only a message has a copy: a key transfer or a forward chunk is no history) */
		if (job->phase == 0 && job->copy != NULL && r != NULL)
			client__history_sent(c, job->recipient, job->content, job->content_len,
					     r->send_message->server_timestamp);
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

/* No device of the target can receive: the copy phase has nothing to do, the recipient phase fails. */
static int no_device(parley_client *c, send_job *job)
{
	if (job->phase == 1) {
		next_phase(c, job);
		return PARLEY_OK;
	}
	if (is_self(c, job->target))
		client__set_err(c, "you have no other device to send to: a message to your own handle goes to "
				   "your other devices (add one with parley devices add)");
	else
		client__set_err(c, "%s has no device that can receive messages", job->target);
	return PARLEY_E_NO_KEYS;
}

static void on_own_devices(parley_client *c, parley_err status, parley_device_list *list, void *user)
{
	send_job *job = user;
	parley_device_info d;
	size_t i, others = 0;
	int rc;

	for (i = 0; i < parley_device_list_count(list); i++)
		others += parley_device_list_get(list, i, &d) == PARLEY_OK && !d.is_self;
	parley_device_list_free(list);
	if (status != PARLEY_OK) {
		job_finish(c, job, status);
		return;
	}
	rc = others == 0 ? no_device(c, job) : fetch_bundles(c, job, 0);
	if (rc != PARLEY_OK)
		job_finish(c, job, rc);
}

/* Queues the job's next request: the send itself when devices of the target are known, else what finds
 * them. PARLEY_OK once a request is queued (or the job moved on); otherwise an error, and the job is
 * still the caller's. */
static int job_next(parley_client *c, send_job *job)
{
	uint32_t ids[SEND_MAX_DEVICES], regids[SEND_MAX_DEVICES];
	size_t n = 0, i, j;
	int rc;

	rc = client__e2e_peer_devices(c, job->target, ids, regids, SEND_MAX_DEVICES, &n);
	if (rc != PARLEY_OK)
		return rc;
	/* not this device (a note to self), nor the devices the server refused in this job */
	for (i = j = 0; i < n; i++) {
		if ((is_self(c, job->target) && ids[i] == c->account.device_id) || skipped(job, ids[i]))
			continue;
		ids[j] = ids[i];
		regids[j++] = regids[i];
	}
	n = j;
	/* a transfer to one device needs a session with that one: the others get only filler */
	if (job->only_device != 0 && !job->fetched) {
		for (i = 0; i < n && ids[i] != job->only_device; i++)
			;
		if (i == n)
			return fetch_bundles(c, job, job->only_device);
	}
	if (n != 0)
		return build_and_send(c, job, ids, regids, n);
	if (job->fetched)
		return no_device(c, job);
	/* Own devices when we know none yet: ask the server which exist before fetching their bundles, so
	 * a single-device account does not spend its own prekeys on every send (nor on a note to self). */
	if (is_self(c, job->target))
		return client__devices_list_submit(c, on_own_devices, job);
	return fetch_bundles(c, job, 0);
}

static void job_step(parley_client *c, send_job *job)
{
	int rc = job_next(c, job);
	if (rc != PARLEY_OK)
		job_finish(c, job, rc);
}

/* ---- public ---- */

static send_job *job_new(parley_client *c, const char *handle)
{
	send_job *job = parley__calloc(1, sizeof(*job));
	if (job != NULL) {
		snprintf(job->recipient, sizeof(job->recipient), "%s", handle);
		memcpy(job->target, job->recipient, sizeof(job->target));
	}
	return job;
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
	rc = client__e2e_begin(c, handle);
	/* a wrong storage key would leave the message out of the history: refused before anything is sent */
	if (rc == PARLEY_OK)
		rc = client__history_ready(c);
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
	/* Writing to someone accepts them (receipts to them from now on), and a receipt for this id is
	 * believed only from them. A note to self goes to our own devices: nobody to accept. */
	if (rc == PARLEY_OK && !is_self(c, handle))
		rc = client__requests_record_sent(c, job->timestamp, handle);
	if (rc == PARLEY_OK)
		rc = job_next(c, job); /* a local error goes to the caller, not the callback */
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
	uint8_t packed[WIRE_MAX_ACK_IDS * 11 + 16]; /* a tag + a 10-byte varint per id, plus the kind */
	client_content ct;
	send_job *job;
	int rc;

	if (n == 0 || n > WIRE_MAX_ACK_IDS)
		return PARLEY_E_INVAL;
	rcpt.kind = kind == PARLEY_RECEIPT_READ ? PARLEY__WIRE__RECEIPT__KIND__READ : PARLEY__WIRE__RECEIPT__KIND__DELIVERY;
	rcpt.n_timestamps = n;
	rcpt.timestamps = (uint64_t *)ts;
	if (parley__wire__receipt__get_packed_size(&rcpt) > sizeof(packed))
		return PARLEY_E_TOO_LARGE;
	job = job_new(c, handle);
	if (job == NULL)
		return PARLEY_E_NOMEM;
	job->receipt_kind = kind;
	job->timestamp = client__e2e_timestamp(c);
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_RECEIPT;
	ct.timestamp = job->timestamp;
	ct.receipt = packed;
	ct.receipt_len = parley__wire__receipt__pack(&rcpt, packed);
	rc = client__content_encode(&ct, &job->content, &job->content_len);
	if (rc == PARLEY_OK)
		rc = job_next(c, job); /* a local error goes to the caller, not the callback */
	if (rc != PARLEY_OK)
		job_free(job);
	return rc;
}

int client__send_content(parley_client *c, const char *handle, uint32_t device, client_content *ct,
			 parley_done_cb cb, void *user)
{
	send_job *job;
	int rc;

	if (c == NULL || ct == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	rc = client__e2e_begin(c, handle);
	if (rc != PARLEY_OK)
		return rc;
	/* One device: it must be in the kept verified list now (a bundle would be checked against the
	 * list too, but a session set up earlier would not be). */
	if (device != 0) {
		rc = client__peer_listed_now(c, handle, device);
		if (rc == PARLEY_OK && is_self(c, handle) && device == c->account.device_id) {
			client__set_err(c, "this content goes to another device than this one");
			rc = PARLEY_E_INVAL;
		}
		if (rc != PARLEY_OK)
			return rc;
	}
	job = job_new(c, handle);
	if (job == NULL)
		return PARLEY_E_NOMEM;
	job->timestamp = client__e2e_timestamp(c);
	job->only_device = device;
	ct->timestamp = job->timestamp;
	rc = client__content_encode(ct, &job->content, &job->content_len);
	if (rc == PARLEY_OK && device != 0) {
		/* the other devices get the same kind without its record, with a zero body of the record's
		 * length, so both pad alike; its bytes are zero (calloc) */
		client_content f = *ct;
		size_t len = ct->transfer_len + ct->payload_len;
		uint8_t *zero = parley__calloc(1, len ? len : 1);
		f.transfer = NULL;
		f.transfer_len = 0;
		f.payload = NULL;
		f.payload_len = 0;
		f.body = zero;
		f.body_len = len;
		rc = zero == NULL ? PARLEY_E_NOMEM : client__content_encode(&f, &job->filler, &job->filler_len);
		parley__free(zero);
	}
	job->cb = cb;
	job->user = user;
	if (rc == PARLEY_OK)
		rc = job_next(c, job); /* a local error goes to the caller, not the callback */
	if (rc != PARLEY_OK) {
		job->cb = NULL;
		job_free(job);
	}
	return rc;
}

int client__send_key_transfer(parley_client *c, const char *handle, uint32_t device, const uint8_t *packed,
			      size_t len, parley_done_cb cb, void *user)
{
	client_content ct;

	if (c == NULL || packed == NULL || len == 0 || cb == NULL)
		return PARLEY_E_INVAL;
	if (len > CONTENT_TRANSFER_MAX)
		return PARLEY_E_TOO_LARGE;
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_KEY_TRANSFER;
	ct.transfer = packed;
	ct.transfer_len = len;
	return client__send_content(c, handle, device, &ct, cb, user);
}

/* ---- blocking and best-effort wrappers ---- */

parley_err parley_send_bytes(parley_client *c, const char *handle, const uint8_t *body, size_t len,
			     uint64_t *timestamp)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_send_start(c, handle, body, len, timestamp, client__sync_done, &s));
}

parley_err parley_send(parley_client *c, const char *handle, const char *text)
{
	if (text == NULL)
		return PARLEY_E_INVAL;
	return parley_send_bytes(c, handle, (const uint8_t *)text, strlen(text), NULL);
}

parley_err parley_mark_read(parley_client *c, const char *handle, const uint64_t *timestamps, size_t n)
{
	int rc, accepted = 0;

	if (c == NULL || timestamps == NULL || n == 0 || n > WIRE_MAX_ACK_IDS)
		return PARLEY_E_INVAL;
	rc = client__e2e_begin(c, handle);
	if (rc == PARLEY_OK)
		rc = client__requests_accepted(c, handle, &accepted);
	if (rc == PARLEY_OK && !accepted) {
		client__set_err(c, "%s is not an accepted contact: no read receipt (parley accept %s)", handle,
				handle);
		rc = PARLEY_E_NOT_ACCEPTED;
	}
	if (rc == PARLEY_OK)
		rc = client__send_receipt(c, handle, PARLEY_RECEIPT_READ, timestamps, n);
	return (parley_err)rc;
}

typedef struct typing_op {
	client_op op;
	Parley__Wire__TypingRequest req;
	char handle[PARLEY_HANDLE_MAX + 1];
} typing_op;

static int build_typing(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	typing_op *t = CLIENT_OP_OWNER(op, typing_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_TYPING;
	req->typing = &t->req;
	return PARLEY_OK;
}

/* Best effort: a typing indicator that did not arrive is not worth an error. */
static void complete_typing(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	parley__free(CLIENT_OP_OWNER(op, typing_op, op));
}

static const client_op_vtable typing_vt = {build_typing, complete_typing, 0, 0};

parley_err parley_typing(parley_client *c, const char *handle, int started)
{
	typing_op *t;
	int rc;

	if (c == NULL)
		return PARLEY_E_INVAL;
	rc = client__check_handle(c, handle);
	if (rc == PARLEY_OK)
		rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	t = parley__calloc(1, sizeof(*t));
	if (t == NULL)
		return PARLEY_E_NOMEM;
	t->op.vt = &typing_vt;
	parley__wire__typing_request__init(&t->req);
	snprintf(t->handle, sizeof(t->handle), "%s", handle);
	t->req.recipient = t->handle;
	t->req.started = started != 0;
	t->req.timestamp = client__e2e_timestamp(c);
	client__conn_submit(c, &t->op);
	return PARLEY_OK;
}
