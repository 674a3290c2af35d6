/* Threads, sending (docs/protocol.md §13.4): our sender key to the members, rotation, the group send.
 *
 * Distribution. Before a message, every member account whose verified devices have not had this
 * epoch's key gets our SKDM as a pairwise Content of kind 5 (thread + payload) — only to devices that
 * signatures vouch for: a staff member's devices as the verified staff list's device lists name them
 * (that list is checked as the member's own list first, so the send path's bundles must match it), the
 * customer's as its own signed device list names them. The SKDM carries our chain at its CURRENT
 * position, so a member added later reads from its arrival on, never what was said before.
 * thread_sent_keys remembers who got which epoch's key and the very SKDM they got: a member device
 * that missed it asks (kind 6) and gets that same SKDM again, so it decrypts the message it missed
 * (instead of losing it to the chain's forward secrecy) and still nothing from before it was given.
 *
 * Rotation. After a verified REMOVE, or a staff member's leaving the staff list (thread_state.c sets
 * `rotate`), the next send replaces our own sender key for the thread with a new one (new chain id and
 * signing key, sender_key__rotate_own) and moves to a new epoch, which nobody has: it goes to the
 * current members only. Removed devices keep the old chains, which never carry anything again. An ADD
 * needs no rotation (the newcomer gets the current position), so a forward's bundle, which carries the
 * members' keys as the forwarding admin holds them, lets the agent read the members' next messages
 * before their own SKDMs reach it, and nobody re-keys for a newcomer.
 */
#include <string.h>

#include <sodium.h>

#include <parley/signal_group.h>

#include "client/thread_core.h"
#include "common/alloc.h"
#include "signal/sender_key.h"

static void own_address(parley_client *c, parley_signal_address *a)
{
	a->name = c->account.handle;
	a->device_id = c->account.device_id;
}

/* Our SKDM for the thread at the chain's current position (made on first use). */
static int own_skdm(parley_client *c, uint64_t thread_id, uint8_t *out, size_t cap, size_t *len)
{
	parley_signal_address self;
	uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];

	own_address(c, &self);
	client__thread_distribution_id(thread_id, dist);
	return parley_group_create_distribution(&c->sigstore, &self, dist, out, cap, len);
}

/* The devices of m that must get our key: the verified ones, without this device. */
static int target_devices(parley_client *c, const parley_entity *ent, const thread_member *m, uint32_t *ids,
			  size_t *n)
{
	size_t i, j;
	int rc = client__thread_member_devices(c, ent, m, ids, WIRE_DEVLIST_MAX, n);

	for (i = j = 0; rc == PARLEY_OK && i < *n; i++)
		if (!(m->account == c->account.account_id && ids[i] == c->account.device_id))
			ids[j++] = ids[i];
	if (rc == PARLEY_OK)
		*n = j;
	return rc;
}

/* A staff member's device list as the staff list carries it becomes (or confirms) its kept list, so the
 * send path's bundles are checked against what the entity vouches for. */
static int pin_staff_list(parley_client *c, const parley_entity *ent, const thread_member *m)
{
	const wire_staff_member *s = wire__stafflist_find(&ent->sl, m->account);
	wire_devlist dl;
	int rc;

	if (s == NULL || m->account == c->account.account_id)
		return PARLEY_OK;
	rc = client__peer_check_list(c, m->handle, s->devlist, s->devlist_len, &dl);
	return rc == PARLEY_E_DEVICE_LIST_ROLLBACK ? PARLEY_OK : rc; /* a newer one is kept already */
}

static void report(parley_client *c, int rc, const char *handle)
{
	if (c->ev.on_error != NULL)
		c->ev.on_error(c, (parley_err)rc, handle, 0, c->ev.user);
}

static int make_targets(parley_client *c, thread_op *o)
{
	thread_member m[THREAD_MEMBERS_MAX];
	uint32_t ids[WIRE_DEVLIST_MAX];
	size_t n = 0, nd = 0;
	int rotate = 0, sent = 0;
	int rc = client__thread_epoch(c, o->thread_id, &o->epoch, &rotate);

	if (rc == PARLEY_OK && rotate) {
		parley_signal_address self;
		uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];
		own_address(c, &self);
		client__thread_distribution_id(o->thread_id, dist);
		rc = sender_key__rotate_own(&c->sigstore, &self, dist);
		if (rc == PARLEY_OK)
			rc = client__thread_rotated(c, o->thread_id);
		if (rc == PARLEY_OK)
			rc = client__thread_epoch(c, o->thread_id, &o->epoch, &rotate);
	}
	if (rc == PARLEY_OK)
		rc = client__thread_members(c, o->thread_id, m, THREAD_MEMBERS_MAX, &n);
	if (rc != PARLEY_OK)
		return rc;
	o->targets = parley__calloc(n + 1, sizeof(*o->targets));
	if (o->targets == NULL)
		return PARLEY_E_NOMEM;
	o->ntargets = o->next_target = 0;
	for (size_t i = 0; i < n; i++) {
		int r2 = pin_staff_list(c, o->ent, &m[i]);
		if (r2 == PARLEY_OK)
			r2 = target_devices(c, o->ent, &m[i], ids, &nd);
		if (r2 == PARLEY_OK && nd > 0)
			r2 = client__thread_key_sent(c, o->thread_id, o->epoch, m[i].handle, ids, nd, &sent);
		/* a customer whose list is not kept yet: the send path fetches and checks it */
		if (r2 == PARLEY_E_NO_DEVICE_LIST && m[i].role == PARLEY_ROLE_NONE) {
			r2 = PARLEY_OK;
			nd = 1;
			sent = 0;
		}
		if (r2 != PARLEY_OK) {
			report(c, r2, m[i].handle); /* that member cannot get our key now; the others still do */
			continue;
		}
		if (nd > 0 && !sent)
			snprintf(o->targets[o->ntargets++], PARLEY_HANDLE_MAX + 1, "%s", m[i].handle);
	}
	return PARLEY_OK;
}

static void dist_next(parley_client *c, thread_op *o);

static void on_key_sent(parley_client *c, parley_err status, void *user)
{
	thread_op *o = user;
	const char *handle = o->targets[o->next_target];
	thread_member m;
	uint32_t ids[WIRE_DEVLIST_MAX];
	size_t nd = 0;
	int found = 0;

	if (status == PARLEY_OK && client__thread_member(c, o->thread_id, handle, &m, &found) == PARLEY_OK && found &&
	    target_devices(c, o->ent, &m, ids, &nd) == PARLEY_OK)
		(void)client__thread_key_record(c, o->thread_id, o->epoch, handle, ids, nd, o->dist_skdm,
						o->dist_skdm_len);
	/* this account with no other device is not an error; another member's failure is reported and the
	 * others still get the key (it may ask later, kind 6) */
	else if (status != PARLEY_OK && !(status == PARLEY_E_NO_KEYS && strcmp(handle, c->account.handle) == 0))
		report(c, status, handle);
	sodium_memzero(o->dist_skdm, sizeof(o->dist_skdm));
	o->next_target++;
	dist_next(c, o);
}

static void dist_next(parley_client *c, thread_op *o)
{
	client_content ct;
	int rc;

	while (o->next_target < o->ntargets) {
		/* kept in the op until the send completes: what is recorded is what went */
		rc = own_skdm(c, o->thread_id, o->dist_skdm, sizeof(o->dist_skdm), &o->dist_skdm_len);
		if (rc != PARLEY_OK) {
			client__thread_finish(c, o, rc);
			return;
		}
		memset(&ct, 0, sizeof(ct));
		ct.kind = CONTENT_KIND_SENDER_KEY;
		ct.thread_id = o->thread_id;
		ct.payload = o->dist_skdm;
		ct.payload_len = o->dist_skdm_len;
		rc = client__send_content(c, o->targets[o->next_target], 0, &ct, on_key_sent, o);
		if (rc == PARLEY_OK)
			return; /* on_key_sent goes on */
		report(c, rc, o->targets[o->next_target]);
		o->next_target++;
	}
	parley__free(o->targets);
	o->targets = NULL;
	client__thread_run(c, o, TS_SEND);
}

void client__thread_distribute(parley_client *c, thread_op *o, int next)
{
	int rc = make_targets(c, o);

	(void)next; /* TS_SEND: the only stage after a distribution */
	if (rc != PARLEY_OK) {
		client__thread_finish(c, o, rc);
		return;
	}
	dist_next(c, o);
}

static void key_sent_quiet(parley_client *c, parley_err status, void *user)
{
	(void)c;
	(void)status;
	(void)user;
}

int client__thread_send_key(parley_client *c, uint64_t thread_id, const char *handle, uint32_t device)
{
	uint8_t skdm[PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t len = 0;
	client_content ct;
	uint64_t epoch = 0;
	int rotate = 0, found = 0;
	int rc = client__thread_epoch(c, thread_id, &epoch, &rotate);

	/* a rotation is due: our next message starts a new epoch, which the asker gets anyway */
	if (rc != PARLEY_OK || rotate)
		return rc;
	/* exactly what this member was given (never an earlier position: nothing from before it got our
	 * key opens); nothing given yet: our next message's distribution brings it */
	rc = client__thread_key_given(c, thread_id, epoch, handle, device, skdm, sizeof(skdm), &len, &found);
	if (rc != PARLEY_OK || !found)
		return rc;

	/* to every verified device of the member (all of them are entitled to it): a kind 5 without its
	 * payload, as a one-device send's filler would be, is not a valid Content */
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_SENDER_KEY;
	ct.thread_id = thread_id;
	ct.payload = skdm;
	ct.payload_len = len;
	if (rc == PARLEY_OK)
		rc = client__send_content(c, handle, 0, &ct, key_sent_quiet, NULL);
	sodium_memzero(skdm, sizeof(skdm));
	return rc;
}

/* ---- the group send ---- */

int client__thread_send_build(parley_client *c, thread_op *o)
{
	parley_signal_address self;
	uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];
	client_content ct;
	client_thread t;
	uint8_t *pt = NULL;
	size_t pt_len = 0, cap;
	int lock_mode = 0, admins_exempt = 0;
	unsigned defaults = 0;
	int rc = client__thread_load(c, o->thread_id, &t);

	if (rc != PARLEY_OK)
		return rc;
	if (o->flags & PARLEY_THREAD_SEND_PAYMENT) {
		/* only staff whose effective rules in the verified list allow it (the server checks too) */
		const wire_staff_member *me = wire__stafflist_find(&o->ent->sl, c->account.account_id);
		if (me == NULL || !(wire__stafflist_effective_rules(&o->ent->sl, me) & WIRE_RULE_MAY_PAY)) {
			client__set_err(c, "you may not send payment requests for %s (rule may_pay)", o->entity);
			return PARLEY_E_PAYMENT_NOT_ALLOWED;
		}
	}
	if (o->timestamp == 0)
		o->timestamp = client__e2e_timestamp(c);
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_THREAD_MESSAGE;
	ct.timestamp = o->timestamp;
	ct.thread_id = o->thread_id;
	ct.body = o->body;
	ct.body_len = o->body_len;
	rc = client__content_encode(&ct, &pt, &pt_len);
	if (rc != PARLEY_OK)
		return rc;
	cap = PARLEY_GROUP_CIPHERTEXT_MAX(pt_len);
	parley__free(o->ct);
	o->ct = parley__malloc(cap);
	own_address(c, &self);
	client__thread_distribution_id(o->thread_id, dist);
	rc = o->ct == NULL ? PARLEY_E_NOMEM
			   : parley_group_encrypt(&c->sigstore, &self, dist, pt, pt_len, o->ct, cap, &o->ct_len);
	sodium_memzero(pt, pt_len);
	parley__free(pt);
	if (rc != PARLEY_OK)
		return rc;
	parley__wire__thread_send_request__init(&o->req.send);
	o->req.send.thread_id = o->thread_id;
	o->req.send.timestamp = o->timestamp;
	o->req.send.ciphertext.data = o->ct;
	o->req.send.ciphertext.len = o->ct_len;
	o->req.send.membership_version = t.membership_version;
	o->req.send.payment_request = (o->flags & PARLEY_THREAD_SEND_PAYMENT) != 0;
	o->event_len = 0;
	/* first responder: a staff member's answer while nobody holds the lock takes it, signed */
	parley_entity_rules(o->ent, &lock_mode, &admins_exempt, &defaults);
	if (lock_mode == PARLEY_LOCK_FIRST_RESPONDER && t.staff && t.status == PARLEY_THREAD_OPEN && t.lock_holder == 0) {
		rc = client__thread_sign(c, o, o->thread_id, t.membership_version + 1, WIRE_THREADEV_LOCK,
					 c->account.account_id);
		if (rc != PARLEY_OK)
			return rc;
		o->req.send.lock_event.data = o->event;
		o->req.send.lock_event.len = o->event_len;
	}
	return PARLEY_OK;
}

void client__thread_send_done(parley_client *c, thread_op *o, int status, const Parley__Wire__Response *r)
{
	if (status == PARLEY_OK && (r == NULL || r->body_case != PARLEY__WIRE__RESPONSE__BODY_THREAD_SEND))
		status = PARLEY_E_PROTO_MALFORMED;
	if (status == PARLEY_E_STALE_MEMBERSHIP && !o->stale_retried) {
		/* the membership moved on: verify the new events, give the key to whoever lacks it, once more */
		o->stale_retried = 1;
		client__thread_run(c, o, TS_GET);
		return;
	}
	if (status == PARLEY_OK && o->event_len > 0) {
		const uint8_t *ev = o->event;
		(void)client__thread_apply(c, o->entity, o->thread_id, NULL, &ev, &o->event_len, 1, NULL, NULL);
	}
	if (status == PARLEY_OK)
		(void)client__history_thread(c, o->thread_id, c->account.handle, c->account.device_id, o->timestamp,
					     client__now_ms(), 0, 1, o->body, o->body_len);
	client__thread_finish(c, o, status);
}
