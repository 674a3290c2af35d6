/* Per-connection delivery: stream the stored queue with at most max_inflight unacked envelopes, then
 * switch to live pushes. Ordering: a live notice is only sent in live mode and only if its id is above
 * everything pushed so far; in backlog mode it just marks `more`, so the next read (ids > last pushed)
 * picks it up from the store. Since a notice is posted only after its commit, the read that follows a
 * notice always sees the envelope: nothing is skipped, nothing is sent twice on one connection. */
#include "relay/relay.h"


#include <parley/error.h>

#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "wire/wire.h"

#define MODULE "relay"

static void send_frame(relay_dev *d, const uint8_t *buf, size_t len)
{
	(void)d->ops->send(d->owner, buf, len);
}

static void send_queue_empty(relay_dev *d)
{
	Parley__Wire__QueueEmpty qe = PARLEY__WIRE__QUEUE_EMPTY__INIT;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	p.body_case = PARLEY__WIRE__PUSH__BODY_QUEUE_EMPTY;
	p.queue_empty = &qe;
	dynbuf__reset(d->out);
	if (wire__encode_push(&p, d->out) == PARLEY_OK)
		send_frame(d, d->out->data, d->out->len);
}

/* The in-flight set. pending[head, tail) holds the ids pushed on this connection in push order, which is
 * ascending (both paths only push ids above last_pushed), so an ack is found by binary search. An acked id
 * keeps its slot with ACKED set, which keeps the slice sorted, and head skips leading acked slots. The
 * array holds 2 x max_inflight ids: when tail reaches the end, compaction copies the at most max_inflight
 * live ids down and frees at least as many slots, so a push costs O(1) amortized and an acked id O(log n)
 * in whatever order the device acks. It exists only while something is in flight (an idle connection
 * holds no array). Server ids are SQLite rowids, below 2^63, so the top bit is free for the mark. */
#define ACKED (UINT64_C(1) << 63)

static void window_free(relay_dev *d)
{
	parley__free(d->pending);
	d->pending = NULL;
	d->cap = d->head = d->tail = 0;
	d->inflight = 0;
}

/* Records `id` as pushed; on failure (no memory) the envelope must not be sent: an untracked push could
 * never be acknowledged and would hold its slot of the window for the life of the connection. */
static int track(relay_dev *d, uint64_t id)
{
	if (d->pending == NULL) {
		unsigned cap = 2 * d->cfg->max_inflight;
		d->pending = parley__malloc((size_t)cap * sizeof(*d->pending));
		if (d->pending == NULL)
			return PARLEY_E_NOMEM;
		d->cap = cap;
		d->head = d->tail = 0;
	} else if (d->tail == d->cap) {
		unsigned n = 0;
		for (unsigned i = d->head; i < d->tail; i++)
			if (!(d->pending[i] & ACKED))
				d->pending[n++] = d->pending[i];
		d->head = 0;
		d->tail = n;
		if (n == d->cap)
			return PARLEY_E_BUSY; /* unreachable while callers respect max_inflight */
	}
	d->pending[d->tail++] = id;
	d->inflight++;
	return PARLEY_OK;
}

/* 1 if `id` was in flight on this connection (it is now acknowledged), else 0: repeated, never pushed
 * here, another device's, or already acked. */
static int untrack(relay_dev *d, uint64_t id)
{
	if (d->pending == NULL || id == 0 || (id & ACKED))
		return 0;
	unsigned lo = d->head, hi = d->tail;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if ((d->pending[mid] & ~ACKED) < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == d->tail || d->pending[lo] != id) /* absent, or present with ACKED set */
		return 0;
	d->acked_any = 1;
	d->pending[lo] |= ACKED;
	d->inflight--;
	while (d->head < d->tail && (d->pending[d->head] & ACKED))
		d->head++;
	if (d->head == d->tail)
		window_free(d);
	return 1;
}

static void read_more(relay_dev *d);

static void on_fetch(void *arg, int status, const void *result)
{
	const store_job *j = result;
	relay_dev *d = arg;
	void *owner = d->owner;
	const relay_dev_ops *ops = d->ops;
	d->reading = 0;
	if (!d->active) {
		ops->release(owner); /* may free d */
		return;
	}
	if (status != PARLEY_OK) {
		log_warn(MODULE, "queue read for device %u of account %llu: %s", d->device,
			 (unsigned long long)d->account, parley_strerror(status));
		d->more = 1; /* retried on the next ack or live notice */
		ops->release(owner);
		return;
	}
	int stalled = 0;
	for (size_t i = 0; i < j->relay.n_envs; i++) {
		const store_envelope *e = &j->relay.envs[i];
		if (e->server_id <= d->last_pushed)
			continue;
		dynbuf__reset(d->out);
		if (relay__encode_envelope(d->out, e, d->account, d->device) != PARLEY_OK)
			continue;
		if (track(d, e->server_id) != PARLEY_OK) {
			stalled = 1;
			break;
		}
		send_frame(d, d->out->data, d->out->len);
		d->last_pushed = e->server_id;
	}
	int full = j->relay.n_envs == j->relay.limit;
	if (stalled) {
		d->more = 1; /* retried on the next ack or live notice, not in a loop of reads */
	} else if (!full && !d->more) {
		d->backlog = 0; /* caught up: live from now on */
		if (!d->sent_empty) {
			d->sent_empty = 1;
			send_queue_empty(d);
		}
	} else {
		d->more = 0;
		read_more(d);
	}
	ops->release(owner);
}

static void read_more(relay_dev *d)
{
	if (!d->active || d->reading || d->inflight >= d->cfg->max_inflight)
		return;
	store_job *j = store__job_new(STORE_OP_FETCH_QUEUE);
	if (j == NULL) {
		d->more = 1;
		return;
	}
	j->account_id = d->account;
	j->device_id = d->device;
	j->now_ms = parley__wall_ms(); /* expired envelopes are never delivered, even before the purge runs */
	j->relay.after_id = d->last_pushed;
	j->relay.limit = d->cfg->max_inflight - d->inflight;
	d->ops->hold(d->owner);
	if (store__submit(d->sc, j, on_fetch, d) != PARLEY_OK) {
		store__job_free(j);
		d->ops->release(d->owner);
		return;
	}
	d->reading = 1;
}

void relay__dev_start(relay_dev *d)
{
	d->started_ms = parley__wall_ms();
	d->active = 1;
	d->backlog = 1;
	d->more = 0;
	read_more(d);
}

void relay__dev_live(relay_dev *d, uint64_t server_id, const uint8_t *frame, size_t len)
{
	if (!d->active)
		return;
	if (d->backlog || d->reading) {
		d->more = 1;
		if (d->backlog)
			read_more(d);
		return;
	}
	if (server_id <= d->last_pushed)
		return;
	if (d->inflight >= d->cfg->max_inflight) {
		/* the device is behind: stop pushing, stream from the store once it acks */
		d->backlog = 1;
		d->more = 1;
		return;
	}
	if (track(d, server_id) != PARLEY_OK) {
		d->backlog = 1; /* the store still has it: the next read delivers it */
		d->more = 1;
		return;
	}
	send_frame(d, frame, len);
	d->last_pushed = server_id;
}

void relay__dev_acked(relay_dev *d, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		(void)untrack(d, ids[i]);
	if (d->active && d->backlog)
		read_more(d);
}

void relay__dev_resync(relay_dev *d)
{
	if (!d->active)
		return;
	d->backlog = 1;
	d->more = 1;
	read_more(d);
}

static void on_redelivered(void *arg, int status, const void *result)
{
	const store_job *j = result;
	(void)arg;
	if (status != PARLEY_OK) {
		log_warn(MODULE, "counting unacknowledged deliveries: %s", parley_strerror(status));
		return;
	}
	if (j->relay.n_deleted == 0)
		return;
	metrics__add(METRIC_RELAY_REQUEUED, (int64_t)j->relay.n_deleted);
	log_info(MODULE, "moved %llu envelopes of device %u of account %llu to the back of its queue after %u "
			 "unacknowledged deliveries",
		 (unsigned long long)j->relay.n_deleted, j->device_id, (unsigned long long)j->account_id,
		 j->relay.limit);
}

/* See relay.h (relay__dev_stop). The ids still in flight, oldest first (at most STORE_MAX_ACK_IDS). */
static void count_unacked(relay_dev *d)
{
	uint64_t ids[STORE_MAX_ACK_IDS];
	size_t n = 0;
	if (d->cfg->max_redeliveries == 0 || d->inflight == 0 ||
	    (!d->acked_any && parley__wall_ms() - d->started_ms < d->cfg->redelivery_grace_ms))
		return;
	for (unsigned i = d->head; i < d->tail && n < STORE_MAX_ACK_IDS; i++)
		if (!(d->pending[i] & ACKED))
			ids[n++] = d->pending[i];
	relay__redelivered(d->cfg, d->sc, d->account, d->device, ids, n, on_redelivered, NULL);
}

void relay__dev_stop(relay_dev *d)
{
	if (d->active)
		count_unacked(d);
	d->active = 0;
	window_free(d); /* nothing is pushed after this; a read in flight returns on !active */
}
