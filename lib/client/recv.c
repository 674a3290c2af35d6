/* Receiving: what the server pushes once the connection is authenticated (docs/protocol.md §10).
 *
 * An envelope is handled only while the application receives (parley_client_set_events with
 * on_message); otherwise it is left alone and the server redelivers it on the next connection — so a
 * short-lived `parley send` never swallows messages meant for `parley listen`.
 *
 * Per envelope, in this order, so that a crash loses nothing that was acknowledged:
 *   1. duplicate check by server id in client.db — a redelivered envelope is acked again and not shown
 *      twice;
 *   2. decrypt (the Signal session advances and is saved);
 *   3. hand the message to the application (on_message returns);
 *   4. record it as received, then queue the ack (batched, up to 100 ids per AckRequest);
 *   5. send a delivery receipt to the sender's devices, if this account accepted the sender
 *      (requests.c: a receipt to a stranger would accept it server-side and hand it our presence).
 * Receipts arrive encrypted like messages (Content kind RECEIPT) and are shown only for message ids
 * this account sent to the receipt's (authenticated) sender; a cleartext Receipt envelope, which
 * anyone could forge and today's server refuses, is never shown.
 * An envelope that cannot be decrypted now (its sender's identity key changed, no session, bad MAC...)
 * is saved in the quarantine (quarantine.c) and then acked: left on the server, a few of them would
 * hold the server's whole in-flight window, on every connection (security item 1, inbox lock). Nothing
 * of it is saved in the Signal store (the identity is pinned only once a message decrypts). When the
 * user accepts a key of its sender (parley_trust), the sender's quarantined envelopes are retried:
 * after the server's backlog (QueueEmpty) or at once if the application is receiving.
 */
#include <string.h>

#include <sodium.h>

#include "client/auth_internal.h"
#include "client/client_internal.h"
#include "common/alloc.h"
#include "signal/message.h"

static void flush_acks(parley_client *c);

void parley_client_set_events(parley_client *c, const parley_events *ev)
{
	if (c == NULL)
		return;
	if (ev == NULL) {
		memset(&c->ev, 0, sizeof(c->ev));
		c->receiving = 0;
		flush_acks(c);
		return;
	}
	c->ev = *ev;
	c->receiving = ev->on_message != NULL;
}

/* ---- acks ---- */

typedef struct ack_op {
	client_op op;
	Parley__Wire__AckRequest req;
	uint64_t ids[CLIENT_ACK_BATCH];
} ack_op;

static int build_ack(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	ack_op *m = CLIENT_OP_OWNER(op, ack_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
	req->ack = &m->req;
	return PARLEY_OK;
}

/* A lost ack only means a redelivery, which the duplicate check absorbs. */
static void complete_ack(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	parley__free(CLIENT_OP_OWNER(op, ack_op, op));
}

static const client_op_vtable ack_vt = {build_ack, complete_ack, 0, 0};

static void flush_acks(parley_client *c)
{
	ack_op *m;

	if (c->nacks == 0)
		return;
	m = parley__calloc(1, sizeof(*m));
	if (m == NULL)
		return; /* kept; retried at the next flush */
	m->op.vt = &ack_vt;
	parley__wire__ack_request__init(&m->req);
	memcpy(m->ids, c->acks, c->nacks * sizeof(c->acks[0]));
	m->req.server_ids = m->ids;
	m->req.n_server_ids = c->nacks;
	c->nacks = 0;
	client__conn_submit(c, &m->op);
}

static void on_ack_timer(uv_timer_t *t)
{
	flush_acks(t->data);
}

static void ack(parley_client *c, uint64_t server_id)
{
	/* Full only when the last flush could not allocate: this id is then simply not acked; the server
	 * redelivers it on the next connection and the duplicate check acks it then. */
	if (c->nacks == CLIENT_ACK_BATCH)
		flush_acks(c);
	if (c->nacks == CLIENT_ACK_BATCH)
		return;
	c->acks[c->nacks++] = server_id;
	/* Not receiving any more (the application stopped in its callback): queue it now, so the
	 * parley_client_run(c, 0) that follows sends it. */
	if (c->nacks == CLIENT_ACK_BATCH || !c->receiving)
		flush_acks(c);
	else
		uv_timer_start(&c->ack_timer, on_ack_timer, 0, 0); /* after this loop turn's other pushes */
}

/* ---- envelopes ---- */

static void report_error(parley_client *c, int err, const Parley__Wire__Envelope *e)
{
	if (c->ev.on_error != NULL)
		c->ev.on_error(c, (parley_err)err, e->sender_handle, e->sender_device, c->ev.user);
}

/* A decrypted receipt: the session authenticated its sender, so only the ids this account sent to that
 * sender count; the rest (another account's messages, made-up ids) are dropped. */
static void handle_receipt(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	Parley__Wire__Receipt *r = NULL;
	uint64_t ts[WIRE_MAX_ACK_IDS];
	size_t n = 0;

	if (wire__check_receipt(ct->receipt, ct->receipt_len) == PARLEY_OK)
		r = parley__wire__receipt__unpack(NULL, ct->receipt_len, ct->receipt);
	if (r == NULL || strcmp(e->sender_handle, c->account.handle) == 0) {
		report_error(c, PARLEY_E_INVALID_MESSAGE, e);
	} else {
		n = r->n_timestamps;
		memcpy(ts, r->timestamps, n * sizeof(ts[0]));
		if (client__requests_filter_sent(c, e->sender_handle, ts, &n) == PARLEY_OK && n > 0 &&
		    c->ev.on_receipt != NULL)
			c->ev.on_receipt(c, e->sender_handle, e->sender_device,
					 r->kind == PARLEY__WIRE__RECEIPT__KIND__READ ? PARLEY_RECEIPT_READ
										    : PARLEY_RECEIPT_DELIVERED,
					 ts, n, c->ev.user);
	}
	if (r != NULL)
		parley__wire__receipt__free_unpacked(r, NULL);
}

/* Before a decrypted message is shown: the delivery receipt, only to an accepted sender; a copy of
 * what another device of this account sent records that message (receipts for it are believed from
 * its recipient) and accepts its recipient, as a send from this device does. Returns 1 for a message
 * request (a message from a sender this account has not accepted). */
static int before_message(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	int accepted = 0;

	if (ct->kind == CONTENT_KIND_SENT_COPY && strcmp(ct->destination, c->account.handle) != 0)
		client__requests_record_sent(c, ct->timestamp, ct->destination);
	if (ct->kind != CONTENT_KIND_MESSAGE || strcmp(e->sender_handle, c->account.handle) == 0 ||
	    client__requests_accepted(c, e->sender_handle, &accepted) != PARLEY_OK)
		return 0;
	if (accepted)
		client__send_receipt(c, e->sender_handle, PARLEY_RECEIPT_DELIVERED, &e->client_timestamp, 1);
	return !accepted;
}

#ifdef PARLEY_TEST_PLAINTEXT_LEAK
/* TEST ONLY: the ciphertext length that send.c's leak_in_clear put at the end (0: malformed). */
static size_t leak_strip(const uint8_t *content, size_t len)
{
	size_t ct_len = 0;
	for (size_t b = 0; len >= 4 && b < 4; b++)
		ct_len = ct_len << 8 | content[len - 4 + b];
	return len >= 4 && ct_len <= len - 4 ? ct_len : 0;
}
#endif

/* Decrypts into *pt (allocated). On UNTRUSTED_IDENTITY the new key is recorded as pending. A sender
 * device not in its account's list: DEVICE_NOT_LISTED, *fetching = 1 when its list is being fetched
 * (the quarantined envelope is retried when it arrives, so that is not an error yet). */
static int decrypt(parley_client *c, const Parley__Wire__Envelope *e, uint8_t **pt, size_t *pt_len, int *fetching)
{
	parley_signal_address a = {e->sender_handle, e->sender_device};
	sig_prekey_msg pm;
	int is_prekey = e->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE;
	size_t len = e->content.len;
	int rc;

#ifdef PARLEY_TEST_PLAINTEXT_LEAK
	len = leak_strip(e->content.data, len);
#endif
	*pt = NULL;
	if (len > PARLEY_SIGNAL_MAX_MESSAGE)
		return PARLEY_E_TOO_LARGE;
	if (is_prekey && sig__prekey_msg_decode(&pm, e->content.data, len) != PARLEY_OK)
		return PARLEY_E_INVALID_MESSAGE;
	/* only devices the sender's account key lists (docs/protocol.md §11); a first message of a new
	 * session must come from the identity key the list names */
	rc = client__peer_check_sender(c, e->sender_handle, e->sender_device, is_prekey ? pm.identity_key : NULL,
				       fetching);
	/* the trusted list names this identity key for the device: it replaces one seen before (§11.3) */
	if (rc == PARLEY_OK && is_prekey)
		rc = client__e2e_accept_listed(c, e->sender_handle, e->sender_device, pm.identity_key);
	if (rc != PARLEY_OK)
		return rc;
	*pt = parley__malloc(len + 1);
	if (*pt == NULL)
		return PARLEY_E_NOMEM;
	if (is_prekey)
		rc = parley_signal_decrypt_prekey(c->sig, &a, e->content.data, len, *pt, len, pt_len);
	else
		rc = parley_signal_decrypt_signal(c->sig, &a, e->content.data, len, *pt, len, pt_len);
	if (rc == PARLEY_E_UNTRUSTED_IDENTITY && is_prekey)
		client__e2e_pending_identity(c, e->sender_handle, e->sender_device, pm.identity_key);
	/* The sender's registration id comes with its first message: our replies and receipts need it. */
	if (rc == PARLEY_OK && is_prekey)
		rc = client__e2e_peer_set(c, e->sender_handle, e->sender_device, pm.registration_id);
	if (rc != PARLEY_OK) {
		sodium_memzero(*pt, len + 1);
		parley__free(*pt);
		*pt = NULL;
	}
	return rc;
}

static void deliver(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct, int request);

/* A thread's group message (thread_recv.c decrypts and hands it over). */
static int is_group(const Parley__Wire__Envelope *e)
{
	return e->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_GROUP_MESSAGE ||
	       e->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PAYMENT_REQUEST;
}

/* After a successful decrypt: parse the content, hand it to the application, record it as received.
 * Wipes and frees pt. */
static void hand_over(parley_client *c, const Parley__Wire__Envelope *e, uint8_t *pt, size_t pt_len)
{
	client_content ct;
	int seen = 0;

	pt[pt_len] = '\0';
	int rc = client__content_decode(pt, pt_len, &ct);
	/* the Content's own timestamp is the message id; it must match the routing header's */
	if (rc == PARLEY_OK && ct.timestamp != e->client_timestamp)
		rc = PARLEY_E_INVALID_MESSAGE;
	if (rc == PARLEY_OK && ct.kind == CONTENT_KIND_RECEIPT) {
		handle_receipt(c, e, &ct);
		client__e2e_seen(c, e->server_id, 1, &seen);
	} else if (rc == PARLEY_OK && ct.kind >= CONTENT_KIND_SENDER_KEY && ct.kind <= CONTENT_KIND_THREAD_MESSAGE) {
		/* threads' keys and forwards (thread_recv.c), never a message */
		client__thread_pairwise(c, e, &ct);
		client__e2e_seen(c, e->server_id, 1, &seen);
	} else if (rc == PARLEY_OK && ct.kind == CONTENT_KIND_KEY_TRANSFER) {
		/* keys, never a message: the application hears of them through on_keys_moved */
		client__keymove_receive(c, e, &ct);
		client__e2e_seen(c, e->server_id, 1, &seen);
	} else if (rc == PARLEY_OK) {
		/* Queued before the application sees the message, so the sender hears "delivered" before
		 * any "read" the application sends from its callback. */
		int request = before_message(c, e, &ct);
		/* NUL after the body for the application's convenience: the body lies inside pt, and what
		 * follows it (padding or another record) is no longer needed. */
		((uint8_t *)ct.body)[ct.body_len] = '\0';
		deliver(c, e, &ct, request);
		client__e2e_seen(c, e->server_id, 1, &seen);
	} else {
		report_error(c, rc, e);
	}
	sodium_memzero(pt, pt_len);
	parley__free(pt);
}

/* client_retry_fn: one quarantined envelope again (a key of its sender was accepted). */
static int retry_one(parley_client *c, const Parley__Wire__Envelope *e)
{
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	int seen = 0, fetching = 0;
	int rc = client__e2e_seen(c, e->server_id, 0, &seen);

	if (rc != PARLEY_OK || seen)
		return rc; /* seen: handed over already (it was quarantined again after a redelivery) */
	rc = is_group(e) ? client__thread_receive(c, e, &fetching) : decrypt(c, e, &pt, &pt_len, &fetching);
	if (rc == PARLEY_OK && pt != NULL)
		hand_over(c, e, pt, pt_len);
	/* the sender's list was fetched for it and still does not name the device: now it is final */
	if (rc == PARLEY_E_DEVICE_NOT_LISTED && !fetching)
		report_error(c, rc, e);
	/* the fetched list came under a new account key: the user's decision is needed */
	if (rc == PARLEY_E_UNTRUSTED_IDENTITY && c->ev.on_identity_changed != NULL)
		c->ev.on_identity_changed(c, e->sender_handle, e->sender_device, c->ev.user);
	if (rc == PARLEY_E_DUPLICATE_MESSAGE)
		client__history_rehand(c, e->server_id);
	return rc == PARLEY_E_DUPLICATE_MESSAGE ? PARLEY_OK : rc;
}

void client__recv_retry_quarantine(parley_client *c)
{
	if (c->receiving && client__e2e_open(c) == PARLEY_OK)
		(void)client__quarantine_retry(c, retry_one);
}

static void deliver(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct, int request)
{
	parley_message m;

	/* A copy of our own message may come only from our own account. */
	if (ct->kind == CONTENT_KIND_SENT_COPY && strcmp(e->sender_handle, c->account.handle) != 0) {
		report_error(c, PARLEY_E_INVALID_MESSAGE, e);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.sender = e->sender_handle;
	m.sender_device = e->sender_device;
	m.destination = ct->kind == CONTENT_KIND_SENT_COPY ? ct->destination : NULL;
	m.timestamp_ms = ct->timestamp;
	m.server_timestamp_ms = e->server_timestamp;
	m.body = ct->body; /* NUL-terminated by handle_envelope */
	m.body_len = ct->body_len;
	m.request = request;
	/* kept (un-handed) before the application sees it: if the process dies before on_message returns,
	 * the redelivery is handed over from the history (client__history_rehand). A failure to keep it
	 * must not cost the message: it is handed over all the same. */
	(void)client__history_received(c, e, ct, request);
	if (c->ev.on_message != NULL)
		c->ev.on_message(c, &m, c->ev.user);
	client__history_handed(c, e->server_id);
}

static void handle_envelope(parley_client *c, const Parley__Wire__Envelope *e)
{
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	int seen = 0, fetching = 0, rc;

	if (e->type != PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT &&
	    e->type != PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE && !is_group(e)) {
		/* a cleartext receipt (queued before the server refused them) is as forgeable as ever */
		report_error(c, e->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT ? PARLEY_E_RECEIPT_IN_CLEAR
										      : PARLEY_E_INVALID_MESSAGE,
			     e);
		ack(c, e->server_id);
		return;
	}
	rc = client__e2e_seen(c, e->server_id, 0, &seen);
	if (rc != PARLEY_OK)
		return; /* local storage trouble: leave it on the server */
	/* a wrong storage key or passphrase: nothing is decrypted (the session would advance with nowhere
	 * to keep the message); it waits on the server for the right one */
	rc = client__history_ready(c);
	if (rc != PARLEY_OK) {
		report_error(c, rc, e);
		return;
	}
	if (seen) {
		ack(c, e->server_id);
		return;
	}
	rc = is_group(e) ? client__thread_receive(c, e, &fetching) : decrypt(c, e, &pt, &pt_len, &fetching);
	if (rc == PARLEY_E_NOMEM || rc == PARLEY_E_STORE)
		return; /* ours, not the message's fault: try again on the next delivery */
	if (rc == PARLEY_OK) {
		if (pt != NULL)
			hand_over(c, e, pt, pt_len);
	} else if (rc == PARLEY_E_DUPLICATE_MESSAGE) {
		/* decrypted before, but perhaps never handed over (the process died in between) */
		client__history_rehand(c, e->server_id);
		client__e2e_seen(c, e->server_id, 1, &seen);
	} else {
		/* Kept before the ack, so a crash in between means a redelivery, never a loss. If it cannot
		 * be kept (local storage), it stays on the server like any local failure. */
		if (client__quarantine_add(c, e, rc) != PARLEY_OK)
			return;
		if (rc == PARLEY_E_UNTRUSTED_IDENTITY && c->ev.on_identity_changed != NULL)
			c->ev.on_identity_changed(c, e->sender_handle, e->sender_device, c->ev.user);
		else if (rc != PARLEY_E_UNTRUSTED_IDENTITY && !fetching)
			report_error(c, rc, e);
	}
	ack(c, e->server_id);
}

void client__recv_push(parley_client *c, const Parley__Wire__Push *p)
{
	switch (p->body_case) {
	case PARLEY__WIRE__PUSH__BODY_ENVELOPE:
		if (c->receiving && client__e2e_open(c) == PARLEY_OK)
			handle_envelope(c, p->envelope);
		/* a thread's sender key arrived: the group messages that waited for it, now */
		if (c->thread_retry) {
			c->thread_retry = 0;
			client__recv_retry_quarantine(c);
		}
		break;
	case PARLEY__WIRE__PUSH__BODY_THREAD_CHANGED:
		client__thread_push(c, p->thread_changed);
		break;
	case PARLEY__WIRE__PUSH__BODY_PREKEYS_LOW:
		client__keys_refill(c, p->prekeys_low->one_time_prekeys_remaining);
		break;
	case PARLEY__WIRE__PUSH__BODY_TYPING:
		if (c->ev.on_typing != NULL)
			c->ev.on_typing(c, p->typing->sender_handle, p->typing->sender_device, p->typing->started,
					c->ev.user);
		break;
	case PARLEY__WIRE__PUSH__BODY_PRESENCE:
		if (c->ev.on_presence != NULL)
			c->ev.on_presence(c, p->presence->handle, p->presence->online, c->ev.user);
		break;
	case PARLEY__WIRE__PUSH__BODY_QUEUE_EMPTY:
		/* the backlog is in: quarantined envelopes whose sender's key was accepted come after it */
		client__recv_retry_quarantine(c);
		break;
	case PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_REQUESTED:
	case PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED:
	case PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_DECIDED:
		client__entity_push(c, p);
		break;
	case PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT:
	case PARLEY__WIRE__PUSH__BODY_AUTH_RESULT:
		client__auth_push(c, p);
		break;
	default: /* push kinds of later versions */
		break;
	}
}

void client__recv_disconnect(parley_client *c, int err)
{
	/* Acks not sent are lost with the connection; the server redelivers, the duplicate check skips. */
	c->nacks = 0;
	uv_timer_stop(&c->ack_timer);
	/* The next authentication checks the key pool again (it may have run low while we were away). */
	c->maintenance_done = 0;
	if (c->ev.on_disconnect != NULL)
		c->ev.on_disconnect(c, (parley_err)err, c->ev.user);
}

void client__recv_shutdown(parley_client *c)
{
	uv_close((uv_handle_t *)&c->ack_timer, NULL);
}
