/* Forwarding a thread to an agent: the sender's side (parley_thread_forward*; docs/protocol.md §13.5).
 *
 *   1. the thread as the server has it (parley_thread_get: entity fetched and verified, the signed events
 *      replayed against its staff list and kept), so the events and the membership version we sign on
 *      are the current ones;
 *   2. ADD (unless the agent is a member already) and HANDLING of the agent, signed by this device's key
 *      (versions consecutive, staff_version = the verified list's);
 *   3. the bundle (lib/wire/forward.c): the kept events plus the two new ones, the sender keys this
 *      device holds for the thread's members (its own included), exported at their CURRENT position
 *      (the agent reads what follows, never what came before: what came before travels as history),
 *      the note, and the history's message and chunk counts;
 *   4. one pairwise Signal message with the bundle per agent device that the verified STAFF list's
 *      device list of the agent names (sessions set up from bundles checked against that account's own
 *      signed list), in ONE ThreadForward: the server stores events, membership, handling agent and the
 *      payload envelopes in one transaction (all or nothing);
 *   5. then the history chunks (Content kind 8) pairwise to the agent's devices, oldest first, one after
 *      another (each queued durably before the next goes).
 * The server does not say WHICH devices mismatched for a forward: a MISMATCHED / STALE answer fetches
 * every bundle of the agent again and retries, at most FWD_ATTEMPTS times.
 */
#include <string.h>

#include <sodium.h>

#include <parley/signal_group.h>

#include "client/thread_forward.h"
#include "common/alloc.h"
#include "crypto/crypto.h"
#include "signal/sender_key.h"
#include "wire/forward.h"

#define FWD_ATTEMPTS 4
#define FWD_MAX_SENDERS WIRE_FORWARD_MAX_KEYS

typedef struct fwd_send {
	client_op op;
	uint64_t thread_id;
	char agent[PARLEY_HANDLE_MAX + 1];
	char note[PARLEY_THREAD_NOTE_MAX + 1];
	unsigned history;
	int attempts, fetched;
	uint8_t events[2][WIRE_THREADEV_MAX_BYTES]; /* ADD (unless a member), HANDLING */
	size_t event_len[2];
	ProtobufCBinaryData evs[2];
	size_t nev;
	uint8_t *content; /* the Content (kind FORWARD) every agent device gets */
	size_t content_len;
	uint32_t ids[CLIENT_OUTGOING_MAX]; /* the agent's devices in the verified staff list */
	size_t nids;
	client_outgoing out;
	Parley__Wire__ThreadForwardRequest req;
	uint64_t timestamp;
	/* history chunks: packed, sent one after the other once the forward is stored */
	uint8_t **chunks;
	size_t *chunk_len, nchunks, next_chunk;
	parley_done_cb cb;
	void *user;
} fwd_send;

static void fwd_free(fwd_send *s)
{
	client__outgoing_free(&s->out);
	if (s->content != NULL)
		sodium_memzero(s->content, s->content_len);
	parley__free(s->content);
	for (size_t i = 0; i < s->nchunks; i++) {
		sodium_memzero(s->chunks[i], s->chunk_len[i]);
		parley__free(s->chunks[i]);
	}
	parley__free(s->chunks);
	parley__free(s->chunk_len);
	parley__free(s);
}

static void fwd_finish(parley_client *c, fwd_send *s, int status)
{
	if (s->cb != NULL)
		s->cb(c, (parley_err)status, s->user);
	fwd_free(s);
}

/* ---- the bundle ---- */

static int sign_event(parley_client *c, fwd_send *s, const client_thread *t, const parley_entity *ent, int kind,
		      uint64_t subject)
{
	wire_threadev ev;

	memset(&ev, 0, sizeof(ev));
	ev.thread_id = s->thread_id;
	snprintf(ev.entity, sizeof(ev.entity), "%s", t->entity);
	ev.version = t->membership_version + s->nev + 1;
	ev.kind = (uint8_t)kind;
	ev.subject = subject;
	ev.actor = c->account.account_id;
	ev.actor_device = c->account.device_id;
	ev.staff_version = ent->sl.version;
	ev.timestamp_ms = client__now_ms();
	int rc = wire__threadev_sign(&ev, c->key.sk, s->events[s->nev], sizeof(s->events[s->nev]),
				     &s->event_len[s->nev]);
	if (rc == PARLEY_OK) {
		s->evs[s->nev].data = s->events[s->nev];
		s->evs[s->nev].len = s->event_len[s->nev];
		s->nev++;
	}
	return rc;
}

/* The sender keys of the thread's members as this device holds them, at their current position; not the
 * agent's own (its devices made them, and its client refuses a bundle that would overwrite one). */
static int add_sender_keys(parley_client *c, fwd_send *s, Parley__Wire__ForwardBundle *b,
			   Parley__Wire__ForwardSenderKey *keys, Parley__Wire__ForwardSenderKey **keyp,
			   uint8_t (*dist)[PARLEY_GROUP_DISTRIBUTION_MAX], client_thread_sender *senders)
{
	uint8_t did[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];
	size_t n = 0;
	int rc = client__thread_senders(c, s->thread_id, senders, FWD_MAX_SENDERS, &n);

	client__thread_distribution_id(s->thread_id, did);
	for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
		parley_signal_address a = {senders[i].handle, senders[i].device};
		Parley__Wire__ForwardSenderKey *k = &keys[b->n_sender_keys];
		size_t len = 0;

		if (strcmp(senders[i].handle, s->agent) == 0)
			continue;
		rc = sender_key__export_distribution(&c->sigstore, &a, did, dist[b->n_sender_keys],
						     PARLEY_GROUP_DISTRIBUTION_MAX, &len);
		if (rc == PARLEY_E_NO_SENDER_KEY) {
			rc = PARLEY_OK; /* a member who never wrote: nothing to hand on */
			continue;
		}
		parley__wire__forward_sender_key__init(k);
		k->handle = senders[i].handle;
		k->device = senders[i].device;
		k->distribution.data = dist[b->n_sender_keys];
		k->distribution.len = len;
		keyp[b->n_sender_keys++] = k;
	}
	b->sender_keys = keyp;
	return rc;
}

/* The newest `history` messages of the thread's local history, oldest first, packed into chunks. */
static int pack_history(parley_client *c, fwd_send *s, uint64_t forward_id, uint32_t *total)
{
	char conv[HISTORY_CONV_MAX + 1];
	parley_history_entry *h = NULL;
	Parley__Wire__ForwardHistoryEntry *ent = NULL, **entp = NULL;
	size_t n = 0, *starts = NULL;
	int rc = PARLEY_OK;

	*total = 0;
	if (s->history == 0)
		return PARLEY_OK;
	client__thread_conversation(s->thread_id, conv);
	h = parley__calloc(s->history, sizeof(*h));
	ent = parley__calloc(s->history, sizeof(*ent));
	entp = parley__calloc(s->history, sizeof(*entp));
	starts = parley__calloc(s->history, sizeof(*starts));
	if (h == NULL || ent == NULL || entp == NULL || starts == NULL)
		rc = PARLEY_E_NOMEM;
	if (rc == PARLEY_OK)
		rc = parley_history_list(c, conv, 0, s->history, h, &n);
	for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
		const parley_history_entry *e = &h[n - 1 - i]; /* the listing is newest first */
		parley__wire__forward_history_entry__init(&ent[i]);
		ent[i].sender = (char *)e->sender;
		ent[i].sender_device = e->sender_device;
		ent[i].timestamp = e->timestamp_ms;
		ent[i].server_timestamp = e->server_timestamp_ms;
		ent[i].body.data = e->body;
		ent[i].body.len = e->body_len;
		entp[i] = &ent[i];
	}
	if (rc == PARLEY_OK)
		rc = wire__forward_history_split(entp, n, starts, s->history, &s->nchunks, c->errmsg, sizeof(c->errmsg));
	if (rc == PARLEY_OK && s->nchunks > 0) {
		s->chunks = parley__calloc(s->nchunks, sizeof(*s->chunks));
		s->chunk_len = parley__calloc(s->nchunks, sizeof(*s->chunk_len));
		if (s->chunks == NULL || s->chunk_len == NULL) {
			s->nchunks = 0;
			rc = PARLEY_E_NOMEM;
		}
	}
	for (size_t k = 0; rc == PARLEY_OK && k < s->nchunks; k++) {
		Parley__Wire__ForwardHistory ch = PARLEY__WIRE__FORWARD_HISTORY__INIT;
		size_t end = k + 1 < s->nchunks ? starts[k + 1] : n;
		ch.forward_id = forward_id;
		ch.thread_id = s->thread_id;
		ch.seq = (uint32_t)k;
		ch.entries = entp + starts[k];
		ch.n_entries = end - starts[k];
		s->chunk_len[k] = parley__wire__forward_history__get_packed_size(&ch);
		s->chunks[k] = parley__malloc(s->chunk_len[k]);
		if (s->chunks[k] == NULL)
			rc = PARLEY_E_NOMEM;
		else
			parley__wire__forward_history__pack(&ch, s->chunks[k]);
	}
	if (rc == PARLEY_OK)
		*total = (uint32_t)n;
	if (h != NULL)
		parley_history_entries_free(h, n);
	parley__free(h);
	parley__free(ent);
	parley__free(entp);
	parley__free(starts);
	return rc;
}

/* Who may forward (docs/protocol.md §13.3), checked here too so that nothing is signed for a forward the
 * server would refuse: an admin, or the thread's handling agent whose effective MAY_TRANSFER the verified
 * staff list sets. */
static int may_forward(parley_client *c, const client_thread *t, const parley_entity *ent)
{
	const wire_staff_member *me = wire__stafflist_find(&ent->sl, c->account.account_id);

	if (me != NULL && (me->role == WIRE_ROLE_ADMIN ||
			   (t->handling_agent == me->account_id &&
			    (wire__stafflist_effective_rules(&ent->sl, me) & WIRE_RULE_MAY_TRANSFER) != 0)))
		return PARLEY_OK;
	client__set_err(c, "only an admin of %s, or the thread's handling agent with may-transfer, forwards it",
			t->entity);
	return PARLEY_E_NOT_ENTITY_ADMIN;
}

/* Everything the forward carries, built once: events, bundle (as a Content), history chunks, the agent's
 * devices. */
static int prepare(parley_client *c, fwd_send *s)
{
	Parley__Wire__ForwardBundle b = PARLEY__WIRE__FORWARD_BUNDLE__INIT;
	client_thread t;
	parley_entity *ent = NULL;
	thread_member m;
	uint8_t **kept = NULL;
	size_t *kept_len = NULL, nkept = 0, packed_len;
	ProtobufCBinaryData *evs = NULL;
	Parley__Wire__ForwardSenderKey *keys = NULL, **keyp = NULL;
	uint8_t(*dist)[PARLEY_GROUP_DISTRIBUTION_MAX] = NULL;
	client_thread_sender *senders = NULL;
	const wire_staff_member *agent = NULL;
	uint8_t *packed = NULL;
	client_content ct;
	int member = 0, rc;

	rc = client__thread_load(c, s->thread_id, &t);
	if (rc == PARLEY_OK)
		rc = client__entity_kept(c, t.entity, &ent);
	if (rc == PARLEY_OK)
		rc = may_forward(c, &t, ent);
	for (size_t i = 0; rc == PARLEY_OK && i < ent->sl.n; i++)
		if (strcmp(ent->sl.members[i].handle, s->agent) == 0)
			agent = &ent->sl.members[i];
	if (rc == PARLEY_OK && agent == NULL) {
		client__set_err(c, "%s is not a staff member of %s", s->agent, t.entity);
		rc = PARLEY_E_NOT_ENTITY_MEMBER;
	}
	if (rc == PARLEY_OK)
		rc = client__thread_member(c, s->thread_id, s->agent, &m, &member);
	/* the agent's devices: only what the staff list (signed by its account key) names */
	if (rc == PARLEY_OK) {
		m.account = agent->account_id;
		snprintf(m.handle, sizeof(m.handle), "%s", agent->handle);
		m.role = agent->role;
		rc = client__thread_member_devices(c, ent, &m, s->ids, CLIENT_OUTGOING_MAX, &s->nids);
	}
	if (rc == PARLEY_OK && !member)
		rc = sign_event(c, s, &t, ent, WIRE_THREADEV_ADD, agent->account_id);
	if (rc == PARLEY_OK)
		rc = sign_event(c, s, &t, ent, WIRE_THREADEV_HANDLING, agent->account_id);
	if (rc == PARLEY_OK)
		rc = client__thread_events(c, s->thread_id, &kept, &kept_len, &nkept);
	if (rc == PARLEY_OK && nkept + s->nev > WIRE_FORWARD_MAX_EVENTS) {
		client__set_err(c, "thread %llu has more than %d events: too long to forward",
				(unsigned long long)s->thread_id, WIRE_FORWARD_MAX_EVENTS);
		rc = PARLEY_E_TOO_LARGE;
	}
	if (rc == PARLEY_OK) {
		evs = parley__calloc(nkept + s->nev, sizeof(*evs));
		keys = parley__calloc(FWD_MAX_SENDERS, sizeof(*keys));
		keyp = parley__calloc(FWD_MAX_SENDERS, sizeof(*keyp));
		dist = parley__calloc(FWD_MAX_SENDERS, sizeof(*dist));
		senders = parley__calloc(FWD_MAX_SENDERS, sizeof(*senders));
		if (evs == NULL || keys == NULL || keyp == NULL || dist == NULL || senders == NULL)
			rc = PARLEY_E_NOMEM;
	}
	if (rc == PARLEY_OK) {
		for (size_t i = 0; i < nkept; i++) {
			evs[i].data = kept[i];
			evs[i].len = kept_len[i];
		}
		for (size_t i = 0; i < s->nev; i++)
			evs[nkept + i] = s->evs[i];
		b.forward_id = client__keymove_new_id();
		b.thread_id = s->thread_id;
		b.entity = t.entity;
		b.staff_version = ent->sl.version;
		b.events = evs;
		b.n_events = nkept + s->nev;
		b.note = s->note;
		rc = add_sender_keys(c, s, &b, keys, keyp, dist, senders);
	}
	if (rc == PARLEY_OK)
		rc = pack_history(c, s, b.forward_id, &b.history_total);
	if (rc == PARLEY_OK) {
		b.history_chunks = (uint32_t)s->nchunks;
		rc = wire__forward_bundle_check(&b, c->errmsg, sizeof(c->errmsg));
	}
	packed_len = rc == PARLEY_OK ? parley__wire__forward_bundle__get_packed_size(&b) : 0;
	if (rc == PARLEY_OK && packed_len > WIRE_FORWARD_SEND_MAX) {
		client__set_err(c, "the forward bundle has %zu bytes (at most %u in one message)", packed_len,
				WIRE_FORWARD_SEND_MAX);
		rc = PARLEY_E_TOO_LARGE;
	}
	if (rc == PARLEY_OK && (packed = parley__malloc(packed_len)) == NULL)
		rc = PARLEY_E_NOMEM;
	if (rc == PARLEY_OK) {
		parley__wire__forward_bundle__pack(&b, packed);
		memset(&ct, 0, sizeof(ct));
		ct.kind = CONTENT_KIND_FORWARD;
		ct.timestamp = s->timestamp;
		ct.payload = packed;
		ct.payload_len = packed_len;
		rc = client__content_encode(&ct, &s->content, &s->content_len);
	}
	if (packed != NULL)
		sodium_memzero(packed, packed_len);
	if (dist != NULL)
		sodium_memzero(dist, FWD_MAX_SENDERS * sizeof(*dist));
	parley__free(packed);
	parley__free(evs);
	parley__free(keys);
	parley__free(keyp);
	parley__free(dist);
	parley__free(senders);
	client__thread_events_free(kept, kept_len, nkept);
	parley_entity_free(ent);
	return rc;
}

/* ---- the ThreadForward request ---- */

static void send_next_chunk(parley_client *c, fwd_send *s);
static int fwd_step(parley_client *c, fwd_send *s);

static int build_fwd(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	fwd_send *s = CLIENT_OP_OWNER(op, fwd_send, op);
	(void)c;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_FORWARD;
	req->thread_forward = &s->req;
	return PARLEY_OK;
}

static void on_bundles(parley_client *c, int status, const Parley__Wire__GetBundlesResponse *r, void *ctx)
{
	fwd_send *s = ctx;

	if (status == PARLEY_OK)
		status = client__e2e_process_bundles(c, s->agent, r, 1);
	if (status == PARLEY_OK) {
		s->fetched = 1;
		status = fwd_step(c, s);
	}
	if (status != PARLEY_OK)
		fwd_finish(c, s, status);
}

static void complete_fwd(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	fwd_send *s = CLIENT_OP_OWNER(op, fwd_send, op);

	(void)r;
	client__outgoing_free(&s->out);
	if (status == PARLEY_OK) {
		send_next_chunk(c, s);
		return;
	}
	if ((status == PARLEY_E_MISMATCHED_DEVICES || status == PARLEY_E_STALE_DEVICES) &&
	    ++s->attempts < FWD_ATTEMPTS) {
		/* which devices the server does not say: every bundle of the agent again */
		status = client__e2e_fetch_bundles(c, s->agent, 0, on_bundles, s);
		if (status == PARLEY_OK)
			return;
	}
	fwd_finish(c, s, status);
}

static const client_op_vtable fwd_vt = {build_fwd, complete_fwd, PARLEY__WIRE__RESPONSE__BODY_THREAD_FORWARD, 0};

/* Encrypts the bundle to the agent's staff-listed devices we have sessions with and submits the request;
 * fetches the agent's bundles first when one of them has no session yet. */
static int fwd_step(parley_client *c, fwd_send *s)
{
	uint32_t ids[CLIENT_OUTGOING_MAX], regids[CLIENT_OUTGOING_MAX], use[CLIENT_OUTGOING_MAX],
		use_reg[CLIENT_OUTGOING_MAX];
	size_t n = 0, k = 0;
	int rc = client__e2e_peer_devices(c, s->agent, ids, regids, CLIENT_OUTGOING_MAX, &n);

	for (size_t i = 0; rc == PARLEY_OK && i < s->nids; i++) {
		size_t j;
		for (j = 0; j < n && ids[j] != s->ids[i]; j++)
			;
		if (j < n) {
			use[k] = ids[j];
			use_reg[k++] = regids[j];
		}
	}
	if (rc != PARLEY_OK)
		return rc;
	if (k < s->nids && !s->fetched)
		return client__e2e_fetch_bundles(c, s->agent, 0, on_bundles, s);
	if (k == 0) {
		client__set_err(c, "%s has no device that can receive the forward", s->agent);
		return PARLEY_E_NO_KEYS;
	}
	rc = client__outgoing_encrypt(c, s->agent, use, use_reg, k, s->content, s->content_len, 0, NULL, 0, &s->out);
	if (rc != PARLEY_OK)
		return rc;
	parley__wire__thread_forward_request__init(&s->req);
	s->req.thread_id = s->thread_id;
	s->req.agent = s->agent;
	s->req.events = s->evs;
	s->req.n_events = s->nev;
	s->req.payloads = s->out.msgp;
	s->req.n_payloads = s->out.n;
	s->req.timestamp = s->timestamp;
	memset(&s->op, 0, sizeof(s->op));
	s->op.vt = &fwd_vt;
	client__conn_submit(c, &s->op);
	return PARLEY_OK;
}

/* ---- history chunks, after the forward is stored ---- */

static void on_chunk_sent(parley_client *c, parley_err status, void *user)
{
	fwd_send *s = user;

	if (status != PARLEY_OK) {
		client__set_err(c, "the thread was forwarded; history chunk %zu of %zu was not: %s", s->next_chunk,
				s->nchunks, parley_strerror(status));
		fwd_finish(c, s, status);
		return;
	}
	s->next_chunk++;
	send_next_chunk(c, s);
}

static void send_next_chunk(parley_client *c, fwd_send *s)
{
	client_content ct;
	int rc;

	if (s->next_chunk >= s->nchunks) {
		fwd_finish(c, s, PARLEY_OK);
		return;
	}
	memset(&ct, 0, sizeof(ct));
	ct.kind = CONTENT_KIND_FORWARD_HISTORY;
	ct.payload = s->chunks[s->next_chunk];
	ct.payload_len = s->chunk_len[s->next_chunk];
	rc = client__send_content(c, s->agent, 0, &ct, on_chunk_sent, s);
	if (rc != PARLEY_OK)
		on_chunk_sent(c, (parley_err)rc, s);
}

/* ---- public ---- */

static void on_thread(parley_client *c, parley_err status, const parley_thread_info *info, void *user)
{
	fwd_send *s = user;
	int rc = status;

	(void)info;
	if (rc == PARLEY_OK)
		rc = prepare(c, s);
	if (rc == PARLEY_OK)
		rc = fwd_step(c, s);
	if (rc != PARLEY_OK)
		fwd_finish(c, s, rc);
}

parley_err parley_thread_forward_start(parley_client *c, uint64_t thread_id, const char *agent, const char *note,
				       unsigned history, parley_done_cb cb, void *user)
{
	fwd_send *s;
	size_t note_len = note != NULL ? strlen(note) : 0;
	int rc;

	if (c == NULL || cb == NULL || thread_id == 0)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	if (note_len > PARLEY_THREAD_NOTE_MAX || history > PARLEY_THREAD_HISTORY_MAX) {
		client__set_err(c, "a note has at most %d bytes, a forward carries at most %d messages",
				PARLEY_THREAD_NOTE_MAX, PARLEY_THREAD_HISTORY_MAX);
		return PARLEY_E_TOO_LARGE;
	}
	rc = client__e2e_begin(c, agent);
	if (rc == PARLEY_OK && history > 0)
		rc = client__history_ready(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	if ((s = parley__calloc(1, sizeof(*s))) == NULL)
		return PARLEY_E_NOMEM;
	s->thread_id = thread_id;
	snprintf(s->agent, sizeof(s->agent), "%s", agent);
	memcpy(s->note, note != NULL ? note : "", note_len);
	s->history = history;
	s->timestamp = client__e2e_timestamp(c);
	s->cb = cb;
	s->user = user;
	rc = parley_thread_get_start(c, thread_id, on_thread, s);
	if (rc != PARLEY_OK)
		fwd_free(s);
	return (parley_err)rc;
}

parley_err parley_thread_forward(parley_client *c, uint64_t thread_id, const char *agent, const char *note,
				 unsigned history)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s,
				 parley_thread_forward_start(c, thread_id, agent, note, history, client__sync_done, &s));
}
