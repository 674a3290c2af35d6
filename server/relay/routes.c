/* The relay on the wire: send and ack routes, the fan-out of committed envelopes to the loops that hold
 * the recipients, each authenticated connection's relay_dev, overflow recovery and the TTL purge.
 *
 * The path of one message: route_send -> relay__send (validate, one store job) -> group commit ->
 * send_answer (the sender's Response) -> fan_out: one Push frame per recipient device, posted to the
 * loops the registry names (MBOX_RESYNC: never lost, at worst read again from the store) -> on_envelope
 * on each of those loops -> the device's relay_dev pushes it live or reads it from the store.
 */
#include <string.h>

#include <parley/error.h>

#include "base/log.h"
#include "base/metrics.h"
#include "common/alloc.h"
#include "dispatch/service.h"
#include "relay/relay.h"

#define MODULE "relay"

static int init(const parleyd_config *cfg, void **state)
{
	relay_config *c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	relay__config_from(c, cfg);
	*state = c;
	return PARLEY_OK;
}

/* --- the TTL purge: one loop runs it, the store serialises it anyway --- */

struct purge {
	uv_timer_t timer;
	worker *w;
	const relay_config *cfg;
	int running;
};

static void prune_done(void *arg, int status, const void *result)
{
	const store_job *j = result;
	struct purge *p = arg;
	p->running = 0;
	if (status == PARLEY_OK && j->relay.n_deleted > 0)
		log_info(MODULE, "pruned %llu unused contacts", (unsigned long long)j->relay.n_deleted);
}

/* Envelopes first, then contacts unused for contact_ttl_s (store/sql/contacts.c). */
static void purge_done(void *arg, int status, const void *result)
{
	const store_job *j = result;
	struct purge *p = arg;
	if (status == PARLEY_OK && j->relay.n_deleted > 0)
		log_info(MODULE, "purged %llu expired envelopes", (unsigned long long)j->relay.n_deleted);
	relay__prune_contacts(p->cfg, worker__store(p->w), parley__wall_ms(), prune_done, p);
}

static void on_purge_timer(uv_timer_t *t)
{
	struct purge *p = t->data;
	if (p->running)
		return;
	p->running = 1;
	relay__purge(worker__store(p->w), parley__wall_ms(), purge_done, p);
}

/* One loop's relay state: the send rate limiter, and on loop 0 the purge timer. */
struct relay_worker {
	relay_limiter rl;
	struct purge *purge;
};

static int worker_start(worker *w, void *state, void **wstate)
{
	struct relay_worker *rw = parley__calloc(1, sizeof(*rw));
	if (rw == NULL)
		return PARLEY_E_NOMEM;
	*wstate = rw;
	if (worker__index(w) != 0)
		return PARLEY_OK;
	struct purge *p = parley__calloc(1, sizeof(*p));
	if (p == NULL)
		return PARLEY_E_NOMEM;
	p->w = w;
	p->cfg = state;
	uv_timer_init(worker__loop(w), &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, on_purge_timer, p->cfg->purge_interval_ms, p->cfg->purge_interval_ms);
	uv_unref((uv_handle_t *)&p->timer);
	rw->purge = p;
	return PARLEY_OK;
}

static void on_purge_closed(uv_handle_t *h)
{
	parley__free(h->data);
}

/* Runs before the store client closes, so a purge in flight still completes into `p`. */
static void worker_stop(worker *w, void *state, void *wstate)
{
	struct relay_worker *rw = wstate;
	if (rw == NULL)
		return;
	if (rw->purge != NULL)
		uv_close((uv_handle_t *)&rw->purge->timer, on_purge_closed);
	parley__free(rw);
}

/* --- per-connection delivery --- */

static int dev_send(void *owner, const uint8_t *buf, size_t len)
{
	return link__send(owner, buf, len);
}

static void dev_hold(void *owner)
{
	link__hold(owner);
}

static void dev_release(void *owner)
{
	link__release(owner);
}

static const relay_dev_ops dev_ops = {dev_send, dev_hold, dev_release};

static relay_dev *dev_of(struct link *l)
{
	return *link__slot(l, LINK_SLOT_RELAY);
}

static void link_auth(struct link *l, void *state)
{
	worker *w = link__worker(l);
	relay_dev *d = parley__calloc(1, sizeof(*d));
	if (d == NULL) {
		link__close(l, 1011, "out of memory");
		return;
	}
	d->ops = &dev_ops;
	d->owner = l;
	d->cfg = state;
	d->sc = worker__store(w);
	d->out = worker__scratch(w); /* the loop's scratch buffer */
	d->account = link__account(l);
	d->device = link__device(l);
	*link__slot(l, LINK_SLOT_RELAY) = d;
	relay__dev_start(d);
	if (link__presence_edge(l) > 0)
		relay__presence_changed(w, state, link__account(l), link__handle(l), 1);
}

static void link_close(struct link *l, void *state)
{
	relay_dev *d = dev_of(l);
	if (d == NULL)
		return;
	relay__dev_stop(d);
	if (link__presence_edge(l) < 0)
		relay__presence_changed(link__worker(l), state, link__account(l), link__handle(l), 0);
}

/* Every read in flight held the link, so nothing refers to the relay_dev any more. */
static void link_free(struct link *l, void *state)
{
	void **slot = link__slot(l, LINK_SLOT_RELAY);
	parley__free(*slot);
	*slot = NULL;
}

static void resync_link(struct link *l, void *arg)
{
	relay_dev *d = dev_of(l);
	if (d != NULL)
		relay__dev_resync(d);
}

static void resync(worker *w, void *state)
{
	worker__each_authenticated(w, resync_link, NULL);
}

/* --- send --- */

static void live_to(struct link *l, void *arg)
{
	const mbox_item *it = arg;
	relay_dev *d = dev_of(l);
	if (d != NULL)
		relay__dev_live(d, it->u64, it->data, it->len);
}

/* Mailbox handler, on each loop holding a connection of the recipient device. */
static void on_envelope(worker *w, const mbox_item *it)
{
	worker__each_link(w, it->account, it->device, live_to, (void *)it);
}

void relay__post_envelope(worker *w, const store_envelope *e, uint64_t account, uint32_t device)
{
	dynbuf *out = worker__scratch(w);
	if (relay__encode_envelope(out, e, account, device) == PARLEY_OK)
		(void)worker__post(w, &relay__service, MBOX_RESYNC, account, device, e->server_id, out->data, out->len,
				   on_envelope);
}

/* After the commit: hand each envelope to the loops where its device is connected. The frame is encoded
 * once per device from the job (no store read). */
static void fan_out(worker *w, const store_job *j)
{
	const store_relay_args *m = &j->relay;
	for (size_t i = 0; i < m->n_msgs; i++) {
		const store_out_msg *o = &m->msgs[i];
		store_envelope e = {0};
		e.server_id = o->server_id;
		e.sender_account = j->account_id;
		e.sender_device = j->device_id;
		memcpy(e.sender_handle, m->sender_handle, sizeof(e.sender_handle));
		e.type = o->type;
		e.client_ts = m->client_ts;
		e.server_ts = j->now_ms;
		e.content = (uint8_t *)o->content;
		e.content_len = o->content_len;
		relay__post_envelope(w, &e, m->recipient_account, o->device_id);
	}
}

static void send_answer(void *arg, int status, const void *result)
{
	const store_job *j = result;
	request *rq = arg;
	worker *w = rq->w;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__SendMessageResponse sr = PARLEY__WIRE__SEND_MESSAGE_RESPONSE__INIT;
	r.status = (uint32_t)status;
	if (status == PARLEY_E_SENDER_QUEUE_FULL)
		metrics__inc(METRIC_RELAY_SENDER_REFUSED);
	if (j != NULL && (status == PARLEY_OK || status == PARLEY_E_MISMATCHED_DEVICES ||
			  status == PARLEY_E_STALE_DEVICES)) {
		/* the one error that carries a body: the sender needs the device lists to fix its own */
		sr.server_timestamp = status == PARLEY_OK ? j->now_ms : 0;
		sr.missing_devices = (uint32_t *)j->relay.missing;
		sr.n_missing_devices = j->relay.n_missing;
		sr.extra_devices = (uint32_t *)j->relay.extra;
		sr.n_extra_devices = j->relay.n_extra;
		sr.stale_devices = (uint32_t *)j->relay.stale;
		sr.n_stale_devices = j->relay.n_stale;
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_SEND_MESSAGE;
		r.send_message = &sr;
	}
	request__reply(rq, &r);
	if (status == PARLEY_OK && j != NULL)
		fan_out(w, j);
}

int relay__rate_check(worker *w, const relay_config *c, uint64_t account)
{
	struct relay_worker *rw = worker__state(w, &relay__service);
	if (rw == NULL || relay__rate_take(&rw->rl, c, account, parley__wall_ms()) == 0)
		return PARLEY_OK;
	metrics__inc(METRIC_RELAY_SENDER_REFUSED);
	return PARLEY_E_SEND_RATE_LIMITED;
}

static void route_send_message(request *rq, const Parley__Wire__Request *req)
{
	/* before anything is copied: a sender over its rate costs one bucket update */
	int rc = relay__rate_check(rq->w, rq->svc, rq->account);
	if (rc != PARLEY_OK) {
		request__fail(rq, rc);
		return;
	}
	relay__send(rq->svc, worker__store(rq->w), rq->account, rq->device, rq->handle, req->send_message,
		    parley__wall_ms(), send_answer, rq);
}

/* --- ack --- */

static void ack_answer(void *arg, int status, const void *result)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AckResponse ar = PARLEY__WIRE__ACK_RESPONSE__INIT;
	r.status = (uint32_t)status;
	if (status == PARLEY_OK) {
		r.body_case = PARLEY__WIRE__RESPONSE__BODY_ACK;
		r.ack = &ar;
	}
	request__reply(arg, &r);
}

static void route_ack(request *rq, const Parley__Wire__Request *req)
{
	relay_dev *d = dev_of(rq->ln);
	/* reopen the push window now, so the next queue read rides in the same commit as the delete */
	if (d != NULL && req->ack != NULL)
		relay__dev_acked(d, req->ack->server_ids, req->ack->n_server_ids);
	relay__ack(worker__store(rq->w), rq->account, rq->device, req->ack, ack_answer, rq);
}

static const route routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE, "send_message", 1, route_send_message},
	{PARLEY__WIRE__REQUEST__BODY_ACK, "ack", 1, route_ack},
	{PARLEY__WIRE__REQUEST__BODY_TYPING, "typing", 1, relay__route_typing},
	{PARLEY__WIRE__REQUEST__BODY_CONTACT, "contact", 1, relay__route_contact},
	{PARLEY__WIRE__REQUEST__BODY_PRESENCE_SETTING, "presence_setting", 1, relay__route_presence_setting},
};

/* A node of the cluster died holding the account's last connections (cluster/bus.h, on_offline). */
static void presence_lost(worker *w, void *state, uint64_t account, const char *handle)
{
	relay__presence_changed(w, state, account, handle, 0);
}

static const mbox_fn mailbox[] = {on_envelope, worker__send_frame};

const service relay__service = {
	.name = "relay",
	SERVICE_ROUTES(routes),
	SERVICE_MAILBOX(mailbox),
	.resync_link = resync_link,
	.presence_lost = presence_lost,
	.init = init,
	.fini = service__free_state,
	.worker_start = worker_start,
	.worker_stop = worker_stop,
	.link_auth = link_auth,
	.link_close = link_close,
	.link_free = link_free,
	.resync = resync,
};
