/* Relay service calls. See relay.h. */
#include "relay/relay.h"

#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "wire/wire.h"

void relay__config_from(relay_config *c, const parleyd_config *cfg)
{
	c->max_content = (size_t)cfg->max_content_bytes;
	c->queue_limit = (unsigned)cfg->queue_limit;
	c->ttl_ms = (uint64_t)cfg->message_ttl_s * 1000u;
	c->max_inflight = (unsigned)cfg->max_inflight;
	c->contact_ttl_ms = (uint64_t)cfg->contact_ttl_s * 1000u;
	c->purge_interval_ms = (uint64_t)cfg->purge_interval_s * 1000u;
	c->presence_share_default = cfg->presence_share_default != 0;
	c->max_redeliveries = (unsigned)cfg->max_redeliveries;
	c->redelivery_grace_ms = (uint64_t)cfg->redelivery_grace_ms;
	/* at least one, whatever the percentage of a small queue */
	c->sender_queue_limit = (unsigned)((uint64_t)cfg->queue_limit * (unsigned)cfg->queue_sender_share / 100u);
	if (c->sender_queue_limit == 0)
		c->sender_queue_limit = 1;
	c->rate_burst = cfg->send_rate_burst;
	c->rate_per_sec = cfg->send_rate_per_min / 60.0;
}

void relay__config_defaults(relay_config *c)
{
	parleyd_config d;
	config__defaults(&d);
	relay__config_from(c, &d);
}

/* No adapter between the layers: the caller's (cb, arg) go to the store as they are. */
static void submit(store_client *sc, store_job *j, svc_cb cb, void *arg)
{
	int rc = store__submit(sc, j, cb, arg);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		cb(arg, rc, NULL);
	}
}

static int check_send(const relay_config *c, const Parley__Wire__SendMessageRequest *req, size_t *total)
{
	*total = 0;
	for (size_t i = 0; i < req->n_messages; i++) {
		const Parley__Wire__OutgoingMessage *o = req->messages[i];
		if (o->content.len > c->max_content)
			return PARLEY_E_TOO_LARGE;
		for (size_t k = 0; k < i; k++)
			if (req->messages[k]->device_id == o->device_id)
				return PARLEY_E_PROTO_MALFORMED; /* one device twice */
		/* A cleartext receipt names no session, so anyone could claim "delivered" or "read" for any
		 * message id; receipts travel inside the end-to-end content instead (security item 17). */
		if (o->type == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT)
			return PARLEY_E_RECEIPT_IN_CLEAR;
		*total += o->content.len;
	}
	return PARLEY_OK;
}

void relay__send(const relay_config *c, store_client *sc, uint64_t account, uint32_t device, const char *handle,
		 const Parley__Wire__SendMessageRequest *req, uint64_t now_ms, svc_cb cb, void *arg)
{
	size_t total = 0;
	int rc = check_send(c, req, &total);
	if (rc != PARLEY_OK) {
		cb(arg, rc, NULL);
		return;
	}
	store_job *j = store__job_new(STORE_OP_SEND);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	store_relay_args *m = &j->relay;
	rc = store__job_set_handle(j, req->recipient);
	if (rc != PARLEY_OK) {
		store__job_free(j);
		cb(arg, PARLEY_E_NO_SUCH_ACCOUNT, NULL);
		return;
	}
	snprintf(m->sender_handle, sizeof(m->sender_handle), "%s", handle);
	j->account_id = account;
	j->device_id = device;
	j->caller_account = account; /* a removed device's connection cannot send (store.h) */
	j->caller_device = device;
	j->now_ms = now_ms;
	m->client_ts = req->timestamp;
	m->expires_ms = now_ms + c->ttl_ms;
	m->queue_limit = c->queue_limit;
	m->sender_queue_limit = c->sender_queue_limit;
	/* two allocations per request whatever the device count: the message array and one buffer that
	 * holds every ciphertext (the request frame is freed when this call returns) */
	m->msgs = parley__calloc(req->n_messages, sizeof(*m->msgs));
	m->content_buf = parley__malloc(total ? total : 1);
	if (m->msgs == NULL || m->content_buf == NULL) {
		store__job_free(j);
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	size_t off = 0;
	for (size_t i = 0; i < req->n_messages; i++) {
		const Parley__Wire__OutgoingMessage *o = req->messages[i];
		store_out_msg *d = &m->msgs[i];
		d->device_id = o->device_id;
		d->registration_id = o->registration_id;
		d->type = (uint32_t)o->type;
		memcpy(m->content_buf + off, o->content.data, o->content.len);
		d->content = m->content_buf + off;
		d->content_len = o->content.len;
		off += o->content.len;
	}
	m->n_msgs = req->n_messages;
	submit(sc, j, cb, arg);
}

void relay__ack(store_client *sc, uint64_t account, uint32_t device, const Parley__Wire__AckRequest *req,
		svc_cb cb, void *arg)
{
	if (req->n_server_ids > STORE_MAX_ACK_IDS) {
		cb(arg, PARLEY_E_PROTO_FIELD_TOO_LARGE, NULL);
		return;
	}
	store_job *j = store__job_new(STORE_OP_ACK);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	if (store__job_relay_alloc_ids(j, req->n_server_ids) != PARLEY_OK) {
		store__job_free(j);
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	j->account_id = account;
	j->device_id = device;
	if (req->n_server_ids > 0)
		memcpy(j->relay.ids, req->server_ids, req->n_server_ids * sizeof(uint64_t));
	submit(sc, j, cb, arg);
}

void relay__find_peer(store_client *sc, uint64_t account, const char *handle, svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_FIND_PEER);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	if (store__job_set_handle(j, handle) != PARLEY_OK) {
		store__job_free(j);
		cb(arg, PARLEY_E_NO_SUCH_ACCOUNT, NULL);
		return;
	}
	j->account_id = account;
	submit(sc, j, cb, arg);
}

void relay__thread_peers(const relay_config *c, store_client *sc, uint64_t account, int force, svc_cb cb,
			 void *arg)
{
	store_job *j = store__job_new(STORE_OP_THREAD_PEERS);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	j->account_id = account;
	j->relay.shared = (c->presence_share_default ? STORE_PEERS_DEFAULT_SHARE : 0) | (force ? STORE_PEERS_FORCE : 0);
	submit(sc, j, cb, arg);
}

void relay__contact_set(store_client *sc, uint64_t account, const char *handle, int accept, uint64_t now_ms,
			svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_CONTACT_SET);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	if (store__job_set_handle(j, handle) != PARLEY_OK) {
		store__job_free(j);
		cb(arg, PARLEY_E_NO_SUCH_ACCOUNT, NULL);
		return;
	}
	j->account_id = account;
	j->now_ms = now_ms;
	j->relay.shared = accept != 0;
	submit(sc, j, cb, arg);
}

void relay__presence_set(store_client *sc, uint64_t account, int share, svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_PRESENCE_SET);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	j->account_id = account;
	j->relay.shared = share != 0;
	submit(sc, j, cb, arg);
}

void relay__prune_contacts(const relay_config *c, store_client *sc, uint64_t now_ms, svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_PRUNE_CONTACTS);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	j->now_ms = now_ms > c->contact_ttl_ms ? now_ms - c->contact_ttl_ms : 0;
	j->relay.limit = RELAY_PURGE_BATCH;
	submit(sc, j, cb, arg);
}

void relay__purge(store_client *sc, uint64_t now_ms, svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_PURGE_EXPIRED);
	if (j == NULL) {
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	j->now_ms = now_ms;
	j->relay.limit = RELAY_PURGE_BATCH;
	submit(sc, j, cb, arg);
}

void relay__redelivered(const relay_config *c, store_client *sc, uint64_t account, uint32_t device,
			const uint64_t *ids, size_t n, svc_cb cb, void *arg)
{
	store_job *j = store__job_new(STORE_OP_REDELIVERED);
	if (n > STORE_MAX_ACK_IDS)
		n = STORE_MAX_ACK_IDS; /* the oldest: those that hold the window */
	if (j == NULL || store__job_relay_alloc_ids(j, n) != PARLEY_OK) {
		store__job_free(j);
		cb(arg, PARLEY_E_NOMEM, NULL);
		return;
	}
	j->account_id = account;
	j->device_id = device;
	j->relay.limit = c->max_redeliveries;
	memcpy(j->relay.ids, ids, n * sizeof(uint64_t));
	submit(sc, j, cb, arg);
}

static double drained(const struct relay_bucket *b, const relay_config *c, uint64_t now_ms)
{
	double dt = now_ms > b->last_ms ? (double)(now_ms - b->last_ms) / 1000.0 : 0.0;
	double lvl = b->level - dt * c->rate_per_sec;
	return lvl > 0 ? lvl : 0;
}

uint64_t relay__rate_take(relay_limiter *l, const relay_config *c, uint64_t account, uint64_t now_ms)
{
	if (c->rate_burst <= 0 || c->rate_per_sec <= 0)
		return 0;
	unsigned start = (unsigned)((account * 0x9E3779B97F4A7C15ull) >> 40) % RELAY_RL_SLOTS;
	struct relay_bucket *b = NULL, *victim = NULL;
	double victim_lvl = 0;
	/* a few probes; a new account takes a free slot or the most drained one, so an account near its
	 * limit is not forgotten merely because others collide with it */
	for (unsigned i = 0; i < RELAY_RL_PROBES && b == NULL; i++) {
		struct relay_bucket *sl = &l->slots[(start + i) % RELAY_RL_SLOTS];
		if (sl->account == account) {
			b = sl;
			break;
		}
		double lvl = sl->account != 0 ? drained(sl, c, now_ms) : -1;
		if (victim == NULL || lvl < victim_lvl) {
			victim = sl;
			victim_lvl = lvl;
		}
	}
	if (b == NULL) {
		b = victim;
		b->account = account;
		b->level = 0;
		b->last_ms = now_ms;
	}
	double lvl = drained(b, c, now_ms);
	b->last_ms = now_ms;
	b->level = lvl;
	if (lvl + 1.0 > c->rate_burst)
		return (uint64_t)((lvl + 1.0 - c->rate_burst) / c->rate_per_sec * 1000.0) + 1;
	b->level = lvl + 1.0;
	return 0;
}

int relay__encode_envelope(dynbuf *out, const store_envelope *e, uint64_t recipient_account,
			   uint32_t recipient_device)
{
	Parley__Wire__Envelope env = PARLEY__WIRE__ENVELOPE__INIT;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	env.server_id = e->server_id;
	env.sender_handle = (char *)e->sender_handle;
	env.sender_account = e->sender_account;
	env.sender_device = e->sender_device;
	env.recipient_account = recipient_account;
	env.recipient_device = recipient_device;
	env.type = (Parley__Wire__EnvelopeType)e->type;
	env.client_timestamp = e->client_ts;
	env.server_timestamp = e->server_ts;
	env.content.data = e->content;
	env.content.len = e->content_len;
	env.thread_id = e->thread_id;
	p.body_case = PARLEY__WIRE__PUSH__BODY_ENVELOPE;
	p.envelope = &env;
	return wire__encode_push(&p, out);
}
