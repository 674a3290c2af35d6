/* Threads, receiving (docs/protocol.md §13.4): group envelopes, the pairwise thread kinds, the
 * ThreadChanged push.
 *
 * A group envelope (GROUP_MESSAGE / PAYMENT_REQUEST) is believed only from a device that signatures
 * vouch for, of an account the verified events make a member — checked BEFORE the decrypt, which
 * advances the sender's chain: an envelope that waits (unknown member: the thread is fetched and
 * verified; no sender key yet: the sender device is asked for it, kind 6) goes to the quarantine and
 * is retried when what it waits for arrived. A payment request counts only from staff whose effective
 * MAY_PAY the signed list sets. The Content inside must be kind 9 and name the envelope's thread.
 * Kind 5 (a sender key) is stored from any device that reached us over a pairwise session (storing a
 * key is harmless: membership is checked when a message decrypts); kind 6 (a request) is answered only
 * for a verified member device.
 */
#include <string.h>

#include <sodium.h>

#include <parley/signal_group.h>

#include "client/thread_core.h"
#include "client/thread_forward.h"
#include "common/alloc.h"
#include "signal/sender_key.h"

#define REFRESH_GUARD_MS 5000u /* a thread is fetched for unexplained envelopes at most this often */

static void report(parley_client *c, int rc, const Parley__Wire__Envelope *e)
{
	if (c->ev.on_error != NULL)
		c->ev.on_error(c, (parley_err)rc, e->sender_handle, e->sender_device, c->ev.user);
}

static void seen(parley_client *c, const Parley__Wire__Envelope *e)
{
	int s = 0;
	(void)client__e2e_seen(c, e->server_id, 1, &s);
}

/* A refresh of thread_id (entity, ThreadGet, verify, apply) unless one ran very recently: *started = 1
 * when one starts now, 2 when one ran (or runs) within REFRESH_GUARD_MS, 0 when none could start. */
static void refresh(parley_client *c, uint64_t thread_id, const char *entity, const char *retry_handle, int *started)
{
	uint64_t now = client__now_ms();
	thread_op *o;
	int rc;

	*started = 2;
	for (size_t i = 0; i < sizeof(c->thread_refresh) / sizeof(c->thread_refresh[0]); i++)
		if (c->thread_refresh[i].thread_id == thread_id && c->thread_refresh[i].at_ms + REFRESH_GUARD_MS > now)
			return;
	*started = 0;
	o = client__thread_op_new(c, TK_REFRESH, thread_id, entity, NULL, &rc);
	if (o == NULL)
		return;
	c->thread_refresh[c->thread_refresh_next].thread_id = thread_id;
	c->thread_refresh[c->thread_refresh_next].at_ms = now;
	c->thread_refresh_next = (c->thread_refresh_next + 1) % (sizeof(c->thread_refresh) / sizeof(c->thread_refresh[0]));
	if (retry_handle != NULL)
		snprintf(o->retry_handle, sizeof(o->retry_handle), "%s", retry_handle);
	*started = 1;
	client__thread_run(c, o, entity != NULL ? TS_ENTITY : TS_GET);
}

void client__thread_sync(parley_client *c, const Parley__Wire__ThreadInfo *ti)
{
	client_thread t;
	thread_chan ch;
	int started = 0;

	client__thread_chan_from(&ch, ti);
	(void)client__thread_chan_keep(c, ti->thread_id, &ch); /* a kept thread's level may have moved */
	if (client__thread_load(c, ti->thread_id, &t) == PARLEY_OK && ti->membership_version > t.membership_version)
		refresh(c, ti->thread_id, t.entity, NULL, &started);
}

void client__thread_refreshed(parley_client *c, thread_op *o, int status)
{
	if (status != PARLEY_OK) {
		if (status != PARLEY_E_CLOSED && c->ev.on_error != NULL)
			c->ev.on_error(c, (parley_err)status, o->retry_handle, 0, c->ev.user);
		return;
	}
	/* every member's waiting envelopes: a refresh from a push explains them as well as one from an
	 * envelope */
	thread_member m[THREAD_MEMBERS_MAX];
	size_t n = 0;
	if (o->retry_handle[0] != '\0')
		(void)client__quarantine_mark(c, o->retry_handle);
	if (client__thread_members(c, o->thread_id, m, THREAD_MEMBERS_MAX, &n) == PARLEY_OK)
		for (size_t i = 0; i < n; i++)
			(void)client__quarantine_mark(c, m[i].handle);
	client__recv_retry_quarantine(c);
}

/* The sender's standing: a member device that signatures vouch for (PARLEY_OK), with its role. */
static int check_sender(parley_client *c, const client_thread *t, const parley_entity *ent,
			const Parley__Wire__Envelope *e, thread_member *m, int *pending)
{
	uint8_t key[32];
	int found = 0, started = 0;
	int rc = client__thread_member(c, t->thread_id, e->sender_handle, m, &found);

	if (rc != PARLEY_OK)
		return rc;
	if (!found) {
		/* fetched a moment ago (or under way): what it brings retries the quarantine, so this waits */
		refresh(c, t->thread_id, t->entity, e->sender_handle, &started);
		*pending = started != 0;
		return PARLEY_E_NOT_THREAD_MEMBER;
	}
	/* staff who left the staff list left the thread */
	if (m->role != PARLEY_ROLE_NONE && wire__stafflist_find(&ent->sl, m->account) == NULL)
		return PARLEY_E_NOT_THREAD_MEMBER;
	rc = client__thread_device_key(c, ent, m->account, m->handle, e->sender_device, key);
	if (rc != PARLEY_OK && m->role == PARLEY_ROLE_NONE) /* the customer's list may be newer than ours */
		return client__peer_check_sender(c, e->sender_handle, e->sender_device, NULL, pending);
	return rc != PARLEY_OK ? PARLEY_E_DEVICE_NOT_LISTED : PARLEY_OK;
}

static int payment_allowed(const parley_entity *ent, const thread_member *m)
{
	const wire_staff_member *s = wire__stafflist_find(&ent->sl, m->account);
	return s != NULL && (wire__stafflist_effective_rules(&ent->sl, s) & WIRE_RULE_MAY_PAY) != 0;
}

static void quiet(parley_client *c, parley_err status, void *user)
{
	(void)c;
	(void)status;
	(void)user;
}

static void ask_key(parley_client *c, const Parley__Wire__Envelope *e, int *pending)
{
	client_content ct;
	int allowed = 0;

	if (client__thread_request_allowed(c, e->thread_id, e->sender_handle, e->sender_device, &allowed) != PARLEY_OK ||
	    !allowed)
		return;
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_SENDER_KEY_REQUEST;
	ct.thread_id = e->thread_id;
	/* to the whole account: a kind 6 needs no filler and every device may answer */
	if (client__send_content(c, e->sender_handle, 0, &ct, quiet, NULL) == PARLEY_OK)
		*pending = 1;
}

static void deliver(parley_client *c, const client_thread *t, const parley_entity *ent, const thread_member *m,
		    const Parley__Wire__Envelope *e, const client_content *ct)
{
	parley_thread_message msg;
	/* the thread's customer (a gateway included) is no staff member, whatever the list says of it */
	const wire_staff_member *s = m->role == PARLEY_ROLE_NONE ? NULL : wire__stafflist_find(&ent->sl, m->account);

	memset(&msg, 0, sizeof(msg));
	msg.thread_id = t->thread_id;
	msg.entity = t->entity;
	/* the customer sees the entity, a staff member's own handle only where its SHOW_NAME allows */
	msg.sender = m->role == PARLEY_ROLE_NONE ? m->handle : client__thread_staff_name(t, ent, s);
	msg.sender_device = e->sender_device;
	msg.sender_role = s != NULL ? (parley_entity_role)s->role : PARLEY_ROLE_NONE;
	msg.timestamp_ms = ct->timestamp;
	msg.server_timestamp_ms = e->server_timestamp;
	msg.body = ct->body;
	msg.body_len = ct->body_len;
	msg.payment = e->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PAYMENT_REQUEST;
	/* kept un-handed first, as a pairwise message (history_api.c): a crash before the callback returned
	 * hands it over again from the history */
	(void)client__history_thread(c, t->thread_id, msg.sender, e->sender_device, ct->timestamp,
				     e->server_timestamp, e->server_id, 0, ct->body, ct->body_len);
	(void)client__thread_unread_add(c, t->thread_id, 1);
	if (c->tev.on_thread_message != NULL)
		c->tev.on_thread_message(c, &msg, c->tev.user);
	client__history_handed(c, e->server_id);
}

int client__thread_receive(parley_client *c, const Parley__Wire__Envelope *e, int *pending)
{
	parley_signal_address a = {e->sender_handle, e->sender_device};
	parley_entity *ent = NULL;
	client_thread t;
	thread_member m;
	client_content ct;
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	int started = 0;
	int rc;

	*pending = 0;
	if (e->thread_id == 0 || e->content.len == 0 || e->content.len > PARLEY_GROUP_MAX_MESSAGE) {
		client__set_err(c, "a group message without a thread or content");
		report(c, PARLEY_E_INVALID_MESSAGE, e);
		seen(c, e);
		return PARLEY_OK;
	}
	rc = client__thread_load(c, e->thread_id, &t);
	if (rc == PARLEY_E_NO_SUCH_THREAD) {
		refresh(c, e->thread_id, NULL, e->sender_handle, &started);
		*pending = started != 0;
		return rc;
	}
	if (rc == PARLEY_OK)
		rc = client__entity_kept(c, t.entity, &ent);
	if (rc == PARLEY_OK)
		rc = check_sender(c, &t, ent, e, &m, pending);
	if (rc == PARLEY_OK && e->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PAYMENT_REQUEST && !payment_allowed(ent, &m)) {
		/* the rules may have changed since this device verified the list: the entity is fetched once
		 * and the request waits for it; then the signed rules decide */
		refresh(c, t.thread_id, t.entity, e->sender_handle, &started);
		if (started == 1) {
			*pending = 1;
			rc = PARLEY_E_PAYMENT_NOT_ALLOWED;
			goto out;
		}
		/* the server should have refused it; the signed rules say no: dropped */
		client__set_err(c, "a payment request from %s, who may not send one", e->sender_handle);
		report(c, PARLEY_E_PAYMENT_NOT_ALLOWED, e);
		seen(c, e);
		goto out;
	}
	if (rc != PARLEY_OK)
		goto out;
	pt = parley__malloc(e->content.len + 1);
	if (pt == NULL) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	rc = parley_group_decrypt(&c->sigstore, &a, e->content.data, e->content.len, pt, e->content.len, &pt_len);
	if (rc == PARLEY_E_NO_SENDER_KEY)
		ask_key(c, e, pending);
	if (rc != PARLEY_OK)
		goto out;
	pt[pt_len] = '\0';
	if (client__content_decode(pt, pt_len, &ct) != PARLEY_OK || ct.kind != CONTENT_KIND_THREAD_MESSAGE ||
	    ct.thread_id != e->thread_id || ct.timestamp != e->client_timestamp) {
		client__set_err(c, "a group message of thread %llu whose content is no message of that thread",
				(unsigned long long)e->thread_id);
		report(c, PARLEY_E_INVALID_MESSAGE, e);
	} else {
		((uint8_t *)ct.body)[ct.body_len] = '\0'; /* inside pt: what follows is no longer needed */
		deliver(c, &t, ent, &m, e, &ct);
	}
	seen(c, e);
out:
	if (pt != NULL) {
		sodium_memzero(pt, e->content.len + 1);
		parley__free(pt);
	}
	parley_entity_free(ent);
	return rc;
}

void client__thread_rehand(parley_client *c, const parley_history_entry *h, const char *conv, uint64_t server_id)
{
	parley_thread_message msg;
	client_thread t;
	uint64_t id = 0;

	for (const char *p = conv + strlen(PARLEY_THREAD_CONVERSATION_PREFIX); *p >= '0' && *p <= '9'; p++)
		id = id * 10 + (uint64_t)(*p - '0');
	if (client__thread_load(c, id, &t) != PARLEY_OK)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.thread_id = id;
	msg.entity = t.entity;
	msg.sender = h->sender;
	msg.sender_device = h->sender_device;
	msg.timestamp_ms = h->timestamp_ms;
	msg.server_timestamp_ms = h->server_timestamp_ms;
	msg.body = h->body;
	msg.body_len = h->body_len;
	if (c->tev.on_thread_message != NULL)
		c->tev.on_thread_message(c, &msg, c->tev.user);
	client__history_handed(c, server_id);
}

/* ---- pairwise kinds ---- */

static void got_sender_key(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	parley_signal_address a = {e->sender_handle, e->sender_device};
	uint8_t want[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];
	sk_distribution d;
	int rc = sender_key__distribution_decode(&d, ct->payload, ct->payload_len);

	client__thread_distribution_id(ct->thread_id, want);
	/* the key must be for the thread the Content names, or a message of one thread could pass as another's */
	if (rc == PARLEY_OK && memcmp(d.distribution_id, want, sizeof(want)) != 0) {
		client__set_err(c, "a sender key for another thread than the one it names");
		rc = PARLEY_E_INVALID_MESSAGE;
	}
	sodium_memzero(&d, sizeof(d));
	if (rc == PARLEY_OK)
		rc = parley_group_process_distribution(&c->sigstore, &a, ct->payload, ct->payload_len, NULL);
	if (rc != PARLEY_OK) {
		report(c, rc, e);
		return;
	}
	/* envelopes of that sender waiting for it are retried after this push (recv.c) */
	if (client__quarantine_mark(c, e->sender_handle) == PARLEY_OK)
		c->thread_retry = 1;
}

static void got_key_request(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	parley_entity *ent = NULL;
	client_thread t;
	thread_member m;
	int pending = 0;
	int rc = client__thread_load(c, ct->thread_id, &t);

	if (rc == PARLEY_OK)
		rc = client__entity_kept(c, t.entity, &ent);
	if (rc == PARLEY_OK) {
		Parley__Wire__Envelope fake = *e;
		fake.thread_id = ct->thread_id;
		rc = check_sender(c, &t, ent, &fake, &m, &pending);
	}
	/* only a verified member device gets our key */
	if (rc == PARLEY_OK)
		rc = client__thread_send_key(c, ct->thread_id, e->sender_handle, e->sender_device);
	if (rc != PARLEY_OK && !pending)
		report(c, rc, e);
	parley_entity_free(ent);
}

void client__thread_pairwise(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	switch (ct->kind) {
	case CONTENT_KIND_SENDER_KEY:
		got_sender_key(c, e, ct);
		break;
	case CONTENT_KIND_SENDER_KEY_REQUEST:
		got_key_request(c, e, ct);
		break;
	case CONTENT_KIND_THREAD_MESSAGE: /* only ever inside a group message */
		client__set_err(c, "a thread message outside a group message");
		report(c, PARLEY_E_INVALID_MESSAGE, e);
		break;
	default: /* 7, 8: forward bundles and their history (thread_forward_recv.c) */
		client__forward_receive(c, e, ct);
		break;
	}
}

/* ---- changes ---- */

static void handle_of(parley_client *c, const parley_entity *ent, const client_thread *t, uint64_t account,
		      char *out, size_t cap)
{
	const wire_staff_member *s = account != 0 && ent != NULL ? wire__stafflist_find(&ent->sl, account) : NULL;

	if (s != NULL)
		snprintf(out, cap, "%s", client__thread_staff_name(t, ent, s));
	else if (account != 0 && account == t->customer_account)
		snprintf(out, cap, "%s", t->customer);
	else
		out[0] = '\0';
	(void)c;
}

void client__thread_emit_change(parley_client *c, const wire_threadev *ev, void *user)
{
	parley_thread_change ch;
	parley_entity *ent = NULL;
	client_thread t;
	char actor[PARLEY_HANDLE_MAX + 1], subject[PARLEY_HANDLE_MAX + 1];
	uint64_t id = ev->thread_id;

	(void)user;
	/* an OPEN names thread 0 (the id came after it): client__thread_apply passes the real id here */
	if (c->tev.on_thread_changed == NULL)
		return;
	if (id == 0 || client__thread_load(c, id, &t) != PARLEY_OK)
		return;
	(void)client__entity_kept(c, t.entity, &ent);
	handle_of(c, ent, &t, ev->actor, actor, sizeof(actor));
	handle_of(c, ent, &t, ev->subject, subject, sizeof(subject));
	memset(&ch, 0, sizeof(ch));
	ch.thread_id = id;
	ch.entity = t.entity;
	ch.kind = ev->kind;
	ch.actor = actor;
	ch.subject = subject;
	ch.membership_version = ev->version;
	ch.removed_self = ev->kind == WIRE_THREADEV_REMOVE && ev->subject == c->account.account_id;
	c->tev.on_thread_changed(c, &ch, c->tev.user);
	parley_entity_free(ent);
}

void client__thread_push(parley_client *c, const Parley__Wire__ThreadChanged *tc)
{
	const Parley__Wire__ThreadInfo *ti = tc->thread;
	client_thread t;
	int started = 0;

	if (ti == NULL || ti->thread_id == 0 || ti->entity == NULL || !wire__handle_valid(ti->entity) ||
	    client__thread_ready(c) != PARLEY_OK)
		return;
	/* the event that follows the kept version applies at once; anything else (a gap, an unknown
	 * thread, a list this device has not verified yet) fetches the thread and the entity */
	if (client__thread_load(c, ti->thread_id, &t) == PARLEY_OK && tc->event.len > 0) {
		const uint8_t *ev = tc->event.data;
		size_t len = tc->event.len;
		if (client__thread_apply(c, ti->entity, ti->thread_id, NULL, &ev, &len, 1, client__thread_emit_change,
					 NULL) == PARLEY_OK)
			return;
	}
	refresh(c, ti->thread_id, ti->entity, NULL, &started);
}
