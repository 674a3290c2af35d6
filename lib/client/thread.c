/* Threads, the shared core (docs/protocol.md §13.4): the distribution id and conversation name of a
 * thread, the device keys the verified lists vouch for, and the staged op behind every thread call.
 *
 * A call is one thread_op going through stages (thread_core.h): the entity first (fetched and verified,
 * so the staff list every check uses is the newest this device can prove), then the thread as the
 * server has it (ThreadGet: its signed events, replayed and checked here against that list), then the
 * call's own request. A stage that needs a request submits the same op again (the event core allows
 * it); a stage that needs another call (EntityGet, bundles) resumes from that call's callback.
 */
#include <string.h>

#include <sodium.h>

#include "client/thread_core.h"
#include "common/alloc.h"
#include "wire/be.h"
#include "wire/wire_threads.h"

static int build(parley_client *c, client_op *op, Parley__Wire__Request *req);
static void complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r);
static const client_op_vtable thread_vt = {build, complete, 0, 0};

void client__thread_distribution_id(uint64_t thread_id, uint8_t out[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN])
{
	static const char label[] = "parley-thread";
	uint8_t in[sizeof(label) - 1 + 8], h[crypto_hash_sha256_BYTES];

	memcpy(in, label, sizeof(label) - 1);
	wire__put_be(in + sizeof(label) - 1, thread_id, 8);
	crypto_hash_sha256(h, in, sizeof(in));
	memcpy(out, h, PARLEY_SIGNAL_DISTRIBUTION_ID_LEN);
}

void client__thread_conversation(uint64_t thread_id, char out[HISTORY_CONV_MAX + 1])
{
	snprintf(out, HISTORY_CONV_MAX + 1, "%s%llu", PARLEY_THREAD_CONVERSATION_PREFIX, (unsigned long long)thread_id);
}

void parley_thread_set_events(parley_client *c, const parley_thread_events *events)
{
	if (c == NULL)
		return;
	if (events == NULL)
		memset(&c->tev, 0, sizeof(c->tev));
	else
		c->tev = *events;
}

void client__thread_emit_forwarded(parley_client *c, const parley_thread_forwarded *f)
{
	if (c->tev.on_thread_forwarded != NULL)
		c->tev.on_thread_forwarded(c, f, c->tev.user);
}

/* ---- what the verified lists vouch for ---- */

/* The member's device list: from the staff list (staff, signed by the account key the entity key
 * vouches for) or the kept verified list of handle (the customer). */
static int member_list(parley_client *c, const parley_entity *ent, uint64_t account, const char *handle,
		       wire_devlist *dl)
{
	const wire_staff_member *m = ent != NULL ? wire__stafflist_find(&ent->sl, account) : NULL;
	int found = 0, rc;

	if (m != NULL)
		return client__entity_member_devlist(m->devlist, m->devlist_len, account, m->account_key, dl);
	rc = client__peer_kept_list(c, handle, dl, &found);
	if (rc == PARLEY_OK && (!found || dl->account_id != account))
		rc = PARLEY_E_NO_DEVICE_LIST;
	return rc;
}

int client__thread_device_key(parley_client *c, const parley_entity *ent, uint64_t account, const char *handle,
			      uint32_t device, uint8_t key[32])
{
	wire_devlist dl;
	const wire_devlist_entry *d;
	int rc = member_list(c, ent, account, handle, &dl);

	if (rc != PARLEY_OK)
		return rc;
	d = wire__devlist_find(&dl, device);
	if (d == NULL)
		return PARLEY_E_DEVICE_NOT_LISTED;
	memcpy(key, d->device_key, 32);
	return PARLEY_OK;
}

int client__thread_member_devices(parley_client *c, const parley_entity *ent, const thread_member *m,
				  uint32_t *ids, size_t max, size_t *n)
{
	wire_devlist dl;
	int rc = member_list(c, ent, m->account, m->handle, &dl);

	*n = 0;
	for (size_t i = 0; rc == PARLEY_OK && i < dl.n && *n < max; i++)
		ids[(*n)++] = dl.dev[i].device_id;
	return rc;
}

const char *client__thread_staff_name(const client_thread *t, const parley_entity *ent, const wire_staff_member *s)
{
	/* the rule is read from the list this device verified, so a server cannot unmask a member */
	if (s != NULL && (t->staff || (wire__stafflist_effective_rules(&ent->sl, s) & WIRE_RULE_SHOW_NAME) != 0))
		return s->handle;
	return t->entity;
}

/* A staff member's name as this device may show it; "" for none (or one the list no longer names). */
static void staff_handle(const client_thread *t, const parley_entity *ent, uint64_t account, char *out, size_t cap)
{
	const wire_staff_member *m = account != 0 && ent != NULL ? wire__stafflist_find(&ent->sl, account) : NULL;
	const char *name = m != NULL ? client__thread_staff_name(t, ent, m) : NULL;

	/* "the entity handles it" says nothing: a customer is told only a name it may see */
	snprintf(out, cap, "%s", name != NULL && name == m->handle ? name : "");
}

int client__thread_info(parley_client *c, uint64_t thread_id, parley_thread_info *out)
{
	client_thread t;
	thread_member m[THREAD_MEMBERS_MAX];
	parley_entity *ent = NULL;
	size_t n = 0;
	int rc = client__thread_load(c, thread_id, &t);

	memset(out, 0, sizeof(*out));
	if (rc == PARLEY_OK)
		rc = client__thread_members(c, thread_id, m, THREAD_MEMBERS_MAX, &n);
	if (rc != PARLEY_OK)
		return rc;
	(void)client__entity_kept(c, t.entity, &ent);
	out->thread_id = thread_id;
	snprintf(out->entity, sizeof(out->entity), "%s", t.entity);
	if (ent != NULL)
		snprintf(out->entity_name, sizeof(out->entity_name), "%s", ent->sl.display_name);
	snprintf(out->customer, sizeof(out->customer), "%s", t.customer);
	out->status = (parley_thread_status)t.status;
	/* a customer sees a staff handle only where that member's SHOW_NAME allows it, else none */
	staff_handle(&t, ent, t.handling_agent, out->handling_agent, sizeof(out->handling_agent));
	staff_handle(&t, ent, t.lock_holder, out->lock_holder, sizeof(out->lock_holder));
	out->membership_version = t.membership_version;
	out->member_count = n;
	out->staff = t.staff;
	client__thread_chan_info(c, &t, ent, out);
	(void)client__thread_unread(c, thread_id, &out->unread);
	sqlite3_stmt *st = NULL;
	if (client__sql_prep(c, "SELECT created_ms, updated_ms FROM threads WHERE thread_id = ?", &st) == PARLEY_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)thread_id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			out->created_ms = (uint64_t)sqlite3_column_int64(st, 0);
			out->updated_ms = (uint64_t)sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
	}
	parley_entity_free(ent);
	return PARLEY_OK;
}

/* ---- the op ---- */

thread_op *client__thread_op_new(parley_client *c, int kind, uint64_t thread_id, const char *entity, void *user,
				 int *rc)
{
	thread_op *o;

	*rc = c == NULL ? PARLEY_E_INVAL : PARLEY_OK;
	if (*rc == PARLEY_OK && entity != NULL)
		*rc = client__check_handle(c, entity);
	if (*rc == PARLEY_OK)
		*rc = client__load_account(c);
	if (*rc == PARLEY_OK)
		*rc = client__e2e_open(c);
	if (*rc == PARLEY_OK)
		*rc = client__thread_ready(c);
	if (*rc != PARLEY_OK)
		return NULL;
	o = parley__calloc(1, sizeof(*o));
	if (o == NULL) {
		*rc = PARLEY_E_NOMEM;
		return NULL;
	}
	o->op.vt = &thread_vt;
	o->kind = kind;
	o->thread_id = thread_id;
	o->user = user;
	if (entity != NULL)
		snprintf(o->entity, sizeof(o->entity), "%s", entity);
	return o;
}

/* How many entities' thread lists a connection checks (the most recently active first). */
#define SYNC_ENTITIES_MAX 16

void client__thread_after_auth(parley_client *c)
{
	char ents[SYNC_ENTITIES_MAX][PARLEY_HANDLE_MAX + 1];
	size_t n = 0;
	int customer = 0, rc;
	thread_op *o;

	if (!c->receiving || client__thread_entities(c, ents, SYNC_ENTITIES_MAX, &n, &customer) != PARLEY_OK)
		return;
	for (size_t i = 0; i <= n; i++) {
		if (i == n && !customer)
			break;
		o = client__thread_op_new(c, TK_LIST, 0, i < n ? ents[i] : NULL, NULL, &rc);
		if (o == NULL)
			return;
		client__thread_run(c, o, TS_LIST); /* no callback: got_list syncs what changed */
	}
}

static void free_get(thread_op *o)
{
	client__thread_events_free(o->gev, o->gev_len, o->ngev);
	o->gev = NULL;
	o->gev_len = NULL;
	o->ngev = 0;
}

void client__thread_finish(parley_client *c, thread_op *o, int status)
{
	parley_thread_info info;

	switch (o->kind) {
	case TK_SEND:
	case TK_EVENT:
		if (o->cb.done != NULL)
			o->cb.done(c, (parley_err)status, o->user);
		break;
	case TK_SEND_ENTITY:
	case TK_OPEN:
		if (o->cb.id != NULL)
			o->cb.id(c, (parley_err)status, status == PARLEY_OK ? o->thread_id : 0, o->user);
		break;
	case TK_GET:
		if (status == PARLEY_OK)
			status = client__thread_info(c, o->thread_id, &info);
		if (o->cb.info != NULL)
			o->cb.info(c, (parley_err)status, status == PARLEY_OK ? &info : NULL, o->user);
		break;
	case TK_LIST:
		if (o->cb.list != NULL)
			o->cb.list(c, (parley_err)status, status == PARLEY_OK ? o->infos : NULL,
				   status == PARLEY_OK ? o->ninfos : 0, o->user);
		break;
	case TK_REFRESH:
		client__thread_refreshed(c, o, status);
		break;
	default:
		break;
	}
	free_get(o);
	parley_entity_free(o->ent);
	if (o->body != NULL)
		sodium_memzero(o->body, o->body_len);
	sodium_memzero(o->dist_skdm, sizeof(o->dist_skdm)); /* a chain key, if a distribution failed midway */
	parley__free(o->body);
	parley__free(o->ct);
	parley__free(o->targets);
	parley__free(o->infos);
	parley__free(o->push_event);
	parley__free(o);
}

int client__thread_sign(parley_client *c, thread_op *o, uint64_t thread_id, uint64_t version, int kind,
			uint64_t subject)
{
	wire_threadev ev;

	memset(&ev, 0, sizeof(ev));
	ev.thread_id = thread_id;
	snprintf(ev.entity, sizeof(ev.entity), "%s", o->entity);
	ev.version = version;
	ev.kind = (uint8_t)kind;
	ev.subject = subject;
	ev.actor = c->account.account_id;
	ev.actor_device = c->account.device_id;
	ev.staff_version = o->ent != NULL ? o->ent->sl.version : 1;
	ev.timestamp_ms = client__now_ms();
	if (kind == WIRE_THREADEV_OPEN) { /* a gateway's: the channel customer it opens for (else native) */
		ev.channel = o->want.channel;
		snprintf(ev.channel_user, sizeof(ev.channel_user), "%s", o->want.user);
	}
	return wire__threadev_sign(&ev, c->key.sk, o->event, sizeof(o->event), &o->event_len);
}

static int build(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	thread_op *o = CLIENT_OP_OWNER(op, thread_op, op);

	switch (o->stage) {
	case TS_LIST:
		parley__wire__thread_list_request__init(&o->req.list);
		o->req.list.entity = o->kind == TK_LIST && o->entity[0] != '\0' ? o->entity : "";
		o->req.list.limit = WIRE_THREAD_LIST_MAX;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_LIST;
		req->thread_list = &o->req.list;
		return PARLEY_OK;
	case TS_OPEN:
		parley__wire__thread_open_request__init(&o->req.open);
		o->req.open.entity = o->entity;
		o->req.open.customer = o->kind == TK_OPEN ? o->customer : "";
		o->req.open.event.data = o->event;
		o->req.open.event.len = o->event_len;
		o->req.open.channel = o->want.channel; /* as the OPEN signs it (0, "": native) */
		o->req.open.channel_user = o->want.user;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN;
		req->thread_open = &o->req.open;
		return PARLEY_OK;
	case TS_GET:
		parley__wire__thread_get_request__init(&o->req.get);
		o->req.get.thread_id = o->thread_id;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_GET;
		req->thread_get = &o->req.get;
		return PARLEY_OK;
	case TS_EVENT:
		parley__wire__thread_event_request__init(&o->req.event);
		o->req.event.thread_id = o->thread_id;
		o->req.event.event.data = o->event;
		o->req.event.event.len = o->event_len;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT;
		req->thread_event = &o->req.event;
		return PARLEY_OK;
	case TS_SEND:
		req->body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_SEND;
		req->thread_send = &o->req.send;
		return PARLEY_OK;
	default:
		return PARLEY_E_STATE;
	}
}

/* After the thread's events were applied: what the call does next. */
static void after_apply(parley_client *c, thread_op *o)
{
	client_thread t;
	size_t dropped = 0;
	int rc = client__thread_load(c, o->thread_id, &t);

	/* staff who left the staff list left the thread with it (no event): a rotation is due */
	if (rc == PARLEY_OK && o->ent != NULL)
		rc = client__thread_prune(c, o->thread_id, o->ent, &dropped);
	if (rc != PARLEY_OK) {
		client__thread_finish(c, o, rc);
		return;
	}
	switch (o->kind) {
	case TK_SEND:
	case TK_SEND_ENTITY:
		if (t.status == PARLEY_THREAD_CLOSED) {
			client__set_err(c, "thread %llu is closed", (unsigned long long)o->thread_id);
			client__thread_finish(c, o, PARLEY_E_THREAD_CLOSED);
			return;
		}
		client__thread_run(c, o, TS_DIST);
		return;
	case TK_EVENT: {
		uint64_t subject = 0;
		if (o->member[0] != '\0') {
			const wire_staff_member *m = NULL;
			for (size_t i = 0; i < o->ent->sl.n && m == NULL; i++)
				if (strcmp(o->ent->sl.members[i].handle, o->member) == 0)
					m = &o->ent->sl.members[i];
			if (m == NULL) {
				client__set_err(c, "%s is no staff member of %s", o->member, o->entity);
				client__thread_finish(c, o, PARLEY_E_NOT_ENTITY_MEMBER);
				return;
			}
			subject = m->account_id;
		} else if (o->ev_kind == WIRE_THREADEV_LOCK) {
			subject = c->account.account_id;
		}
		rc = client__thread_sign(c, o, o->thread_id, t.membership_version + 1, o->ev_kind, subject);
		if (rc != PARLEY_OK) {
			client__thread_finish(c, o, rc);
			return;
		}
		client__thread_run(c, o, TS_EVENT);
		return;
	}
	default:
		client__thread_finish(c, o, PARLEY_OK);
		return;
	}
}

static void apply_get(parley_client *c, thread_op *o)
{
	thread_applied_fn fn = o->kind == TK_EVENT || o->kind == TK_OPEN || o->kind == TK_SEND_ENTITY
				       ? NULL
				       : client__thread_emit_change;
	int rc = client__thread_apply(c, o->entity, o->thread_id, o->customer, (const uint8_t *const *)o->gev,
				      o->gev_len, o->ngev, fn, NULL);

	free_get(o);
	if (rc == PARLEY_OK)
		rc = client__thread_times(c, o->thread_id, o->created_ms, o->updated_ms);
	if (rc == PARLEY_OK)
		rc = client__thread_chan_keep(c, o->thread_id, &o->chan);
	if (rc == PARLEY_OK) /* a gateway writes for one channel customer: the thread must be that one's */
		rc = client__thread_chan_given(c, o);
	if (rc != PARLEY_OK)
		client__thread_finish(c, o, rc);
	else
		after_apply(c, o);
}

static void on_entity(parley_client *c, parley_err status, parley_entity *e, void *user)
{
	thread_op *o = user;

	if (status != PARLEY_OK) {
		client__thread_finish(c, o, status);
		return;
	}
	parley_entity_free(o->ent);
	o->ent = e;
	switch (o->kind) {
	case TK_SEND_ENTITY:
		if (o->want.channel != PARLEY_CHANNEL_NATIVE) {
			client__thread_chan_open(c, o);
			return;
		}
		if (wire__stafflist_find(&e->sl, c->account.account_id) != NULL) {
			int gw = wire__stafflist_staff(&e->sl, c->account.account_id) == NULL;
			client__set_err(c, gw ? "you are a gateway of %s: write for a channel customer (parley_thread_send_channel)"
					      : "you are staff of %s: answer its threads with parley thread send",
					o->entity);
			client__thread_finish(c, o, gw ? PARLEY_E_CHANNEL_INVALID : PARLEY_E_THREAD_EVENT_INVALID);
			return;
		}
		client__thread_run(c, o, TS_LIST);
		return;
	case TK_OPEN:
		client__thread_run(c, o, TS_CUSTOMER);
		return;
	case TK_LIST:
		client__thread_run(c, o, TS_LIST);
		return;
	default: {
		client_thread t;
		/* a ThreadGet came first (the entity was not known): its events now */
		if (o->gev != NULL)
			client__thread_run(c, o, TS_CUSTOMER);
		/* a send to a thread this device verified goes at its kept membership version: the server
		 * answers STALE_MEMBERSHIP if it moved on (then the thread is fetched, once) */
		else if (o->kind == TK_SEND && client__thread_load(c, o->thread_id, &t) == PARLEY_OK)
			after_apply(c, o);
		else
			client__thread_run(c, o, TS_GET);
		return;
	}
	}
}

static void on_customer(parley_client *c, int status, const Parley__Wire__GetBundlesResponse *r, void *ctx)
{
	thread_op *o = ctx;
	wire_devlist dl;
	int found = 0;

	if (status == PARLEY_OK)
		status = client__e2e_process_bundles(c, o->customer, r, 0);
	if (status == PARLEY_OK && o->kind == TK_OPEN) {
		status = client__peer_kept_list(c, o->customer, &dl, &found);
		if (status == PARLEY_OK && !found)
			status = PARLEY_E_NO_DEVICE_LIST;
		if (status == PARLEY_OK)
			status = client__thread_sign(c, o, 0, 1, WIRE_THREADEV_OPEN, dl.account_id);
		if (status == PARLEY_OK) {
			client__thread_run(c, o, TS_OPEN);
			return;
		}
	}
	if (status != PARLEY_OK)
		client__thread_finish(c, o, status);
	else
		apply_get(c, o);
}

void client__thread_run(parley_client *c, thread_op *o, int stage)
{
	int rc = PARLEY_OK;
	wire_devlist dl;
	int found = 0;

	o->stage = stage;
	switch (stage) {
	case TS_ENTITY:
		rc = parley_entity_get_start(c, o->entity, on_entity, o);
		break;
	case TS_CUSTOMER:
		/* the customer's signed device list must be kept to check its events (staff side), or to name
		 * its account (staff opening a thread); a customer's own is known */
		if (o->kind != TK_OPEN && (strcmp(o->customer, c->account.handle) == 0 ||
					   (client__peer_kept_list(c, o->customer, &dl, &found) == PARLEY_OK && found))) {
			apply_get(c, o);
			return;
		}
		rc = client__e2e_fetch_bundles(c, o->customer, 0, on_customer, o);
		break;
	case TS_DIST:
		client__thread_distribute(c, o, TS_SEND);
		return;
	case TS_SEND:
		rc = client__thread_send_build(c, o);
		if (rc == PARLEY_OK)
			client__conn_submit(c, &o->op);
		break;
	case TS_DONE:
		client__thread_finish(c, o, PARLEY_OK);
		return;
	default:
		client__conn_submit(c, &o->op);
		return;
	}
	if (rc != PARLEY_OK)
		client__thread_finish(c, o, rc);
}

/* ThreadGet answered: keep its events until the entity and the customer's list are known. */
static int got_thread(parley_client *c, thread_op *o, const Parley__Wire__ThreadGetResponse *g)
{
	const Parley__Wire__ThreadInfo *ti = g->thread;

	if (ti == NULL || ti->thread_id != o->thread_id || ti->entity == NULL || !wire__handle_valid(ti->entity) ||
	    ti->customer == NULL || (ti->customer[0] != '\0' && !wire__handle_valid(ti->customer)))
		return PARLEY_E_PROTO_MALFORMED;
	if (o->entity[0] != '\0' && strcmp(o->entity, ti->entity) != 0)
		return PARLEY_E_THREAD_WRONG_ENTITY;
	snprintf(o->entity, sizeof(o->entity), "%s", ti->entity);
	/* a customer is told its own handle; staff the customer's (checked against its signed list) */
	snprintf(o->customer, sizeof(o->customer), "%s", ti->customer[0] != '\0' ? ti->customer : c->account.handle);
	o->created_ms = ti->created_ms;
	o->updated_ms = ti->updated_ms;
	client__thread_chan_from(&o->chan, ti);
	free_get(o);
	o->gev = parley__calloc(g->n_events + 1, sizeof(*o->gev));
	o->gev_len = parley__calloc(g->n_events + 1, sizeof(*o->gev_len));
	if (o->gev == NULL || o->gev_len == NULL)
		return PARLEY_E_NOMEM;
	for (size_t i = 0; i < g->n_events; i++) {
		o->gev[i] = parley__malloc(g->events[i].len + 1);
		if (o->gev[i] == NULL)
			return PARLEY_E_NOMEM;
		memcpy(o->gev[i], g->events[i].data, g->events[i].len);
		o->gev_len[i] = g->events[i].len;
		o->ngev = i + 1;
	}
	return PARLEY_OK;
}

static int got_list(parley_client *c, thread_op *o, const Parley__Wire__ThreadListResponse *l)
{
	if (o->kind == TK_SEND_ENTITY) {
		/* this account's open thread with the entity, if any (newest first) */
		for (size_t i = 0; i < l->n_threads; i++) {
			const Parley__Wire__ThreadInfo *ti = l->threads[i];
			if (ti->entity != NULL && strcmp(ti->entity, o->entity) == 0 &&
			    ti->status != PARLEY__WIRE__THREAD_STATUS__THREAD_CLOSED &&
			    ti->customer_account == c->account.account_id) {
				o->thread_id = ti->thread_id;
				client__thread_run(c, o, TS_GET);
				return PARLEY_OK;
			}
		}
		int rc = client__thread_sign(c, o, 0, 1, WIRE_THREADEV_OPEN, c->account.account_id);
		if (rc == PARLEY_OK)
			client__thread_run(c, o, TS_OPEN);
		return rc;
	}
	o->infos = parley__calloc(l->n_threads + 1, sizeof(*o->infos));
	if (o->infos == NULL)
		return PARLEY_E_NOMEM;
	for (size_t i = 0; i < l->n_threads; i++) {
		const Parley__Wire__ThreadInfo *ti = l->threads[i];
		parley_thread_info *p = &o->infos[o->ninfos];
		/* kept at an older version: what changed is fetched and verified in the background (the
		 * listing shows what this device verified so far) */
		client__thread_sync(c, ti);
		/* what this device verified, else the server's word on the basics (not yet fetched) */
		if (client__thread_info(c, ti->thread_id, p) != PARLEY_OK) {
			memset(p, 0, sizeof(*p));
			p->thread_id = ti->thread_id;
			snprintf(p->entity, sizeof(p->entity), "%s", ti->entity != NULL ? ti->entity : "");
			snprintf(p->customer, sizeof(p->customer), "%s", ti->customer != NULL ? ti->customer : "");
			p->status = (parley_thread_status)ti->status;
			p->membership_version = ti->membership_version;
			p->created_ms = ti->created_ms;
			p->updated_ms = ti->updated_ms;
			p->member_count = ti->n_members;
			p->staff = o->entity[0] != '\0';
		}
		o->ninfos++;
	}
	client__thread_finish(c, o, PARLEY_OK);
	return PARLEY_OK;
}

static void complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	thread_op *o = CLIENT_OP_OWNER(op, thread_op, op);
	int rc = status;

	if (o->stage == TS_SEND) {
		client__thread_send_done(c, o, status, r);
		return;
	}
	if (rc == PARLEY_OK && r == NULL)
		rc = PARLEY_E_PROTO_MALFORMED;
	if (rc != PARLEY_OK) {
		client__thread_finish(c, o, rc);
		return;
	}
	switch (o->stage) {
	case TS_LIST:
		rc = r->body_case == PARLEY__WIRE__RESPONSE__BODY_THREAD_LIST ? got_list(c, o, r->thread_list)
									      : PARLEY_E_PROTO_MALFORMED;
		break;
	case TS_OPEN:
		if (r->body_case != PARLEY__WIRE__RESPONSE__BODY_THREAD_OPEN || r->thread_open->thread == NULL ||
		    r->thread_open->thread->thread_id == 0) {
			rc = PARLEY_E_PROTO_MALFORMED;
			break;
		}
		o->thread_id = r->thread_open->thread->thread_id;
		client__thread_run(c, o, TS_GET); /* the stored chain, whether new or an open one returned */
		break;
	case TS_GET:
		rc = r->body_case == PARLEY__WIRE__RESPONSE__BODY_THREAD_GET ? got_thread(c, o, r->thread_get)
									     : PARLEY_E_PROTO_MALFORMED;
		if (rc == PARLEY_OK)
			client__thread_run(c, o, o->ent == NULL ? TS_ENTITY : TS_CUSTOMER);
		break;
	case TS_EVENT: {
		const uint8_t *ev = o->event;
		/* the server stored it: this device applies its own event (checked like any other) */
		rc = client__thread_apply(c, o->entity, o->thread_id, NULL, &ev, &o->event_len, 1, NULL, NULL);
		if (rc == PARLEY_OK)
			client__thread_finish(c, o, PARLEY_OK);
		break;
	}
	default:
		rc = PARLEY_E_STATE;
		break;
	}
	if (rc != PARLEY_OK)
		client__thread_finish(c, o, rc);
}

int client__thread_senders(parley_client *c, uint64_t thread_id, client_thread_sender *out, size_t max, size_t *n)
{
	thread_member m[THREAD_MEMBERS_MAX];
	uint32_t ids[WIRE_DEVLIST_MAX];
	uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];
	parley_entity *ent = NULL;
	client_thread t;
	size_t nm = 0, nd = 0;
	int rc = client__thread_load(c, thread_id, &t);

	*n = 0;
	if (rc == PARLEY_OK)
		rc = client__entity_kept(c, t.entity, &ent);
	if (rc == PARLEY_OK)
		rc = client__thread_members(c, thread_id, m, THREAD_MEMBERS_MAX, &nm);
	client__thread_distribution_id(thread_id, dist);
	for (size_t i = 0; rc == PARLEY_OK && i < nm && *n < max; i++) {
		/* only devices the verified lists name (a member without a kept list has none here) */
		if (client__thread_member_devices(c, ent, &m[i], ids, WIRE_DEVLIST_MAX, &nd) != PARLEY_OK)
			continue;
		for (size_t j = 0; j < nd && *n < max; j++) {
			parley_signal_address a = {m[i].handle, ids[j]};
			const uint8_t *data = NULL;
			size_t len = 0;
			if (c->sigstore.load_sender_key(c->sigstore.user, &a, dist, &data, &len) != PARLEY_OK)
				continue;
			snprintf(out[*n].handle, sizeof(out[*n].handle), "%s", m[i].handle);
			out[(*n)++].device = ids[j];
		}
	}
	/* this device's own key, whether or not a kept list names it */
	parley_signal_address self = {c->account.handle, c->account.device_id};
	const uint8_t *data = NULL;
	size_t len = 0;
	int listed = 0;
	for (size_t i = 0; i < *n; i++)
		listed |= out[i].device == self.device_id && strcmp(out[i].handle, self.name) == 0;
	if (rc == PARLEY_OK && !listed && *n < max &&
	    c->sigstore.load_sender_key(c->sigstore.user, &self, dist, &data, &len) == PARLEY_OK) {
		snprintf(out[*n].handle, sizeof(out[*n].handle), "%s", self.name);
		out[(*n)++].device = self.device_id;
	}
	parley_entity_free(ent);
	return rc;
}
