/* Per-connection delivery: stream the stored queue with at most max_inflight unacked envelopes, then
 * switch to live pushes. Ordering: a live notice is only sent in live mode and only if its id is above
 * everything pushed so far; in backlog mode it just marks `more`, so the next read (ids > last pushed)
 * picks it up from the store. Since a notice is posted only after its commit, the read that follows a
 * notice always sees the envelope: nothing is skipped, nothing is sent twice on one connection. */
#include "relay/relay.h"


#include <parley/error.h>

#include "base/log.h"
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
	for (size_t i = 0; i < j->relay.n_envs; i++) {
		const store_envelope *e = &j->relay.envs[i];
		if (e->server_id <= d->last_pushed)
			continue;
		dynbuf__reset(d->out);
		if (relay__encode_envelope(d->out, e, d->account, d->device) != PARLEY_OK)
			continue;
		send_frame(d, d->out->data, d->out->len);
		d->last_pushed = e->server_id;
		d->inflight++;
	}
	int full = j->relay.n_envs == j->relay.limit;
	if (!full && !d->more) {
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
	send_frame(d, frame, len);
	d->last_pushed = server_id;
	d->inflight++;
}

void relay__dev_acked(relay_dev *d, const uint64_t *ids, size_t n)
{
	unsigned confirmed = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] != 0 && ids[i] <= d->last_pushed)
			confirmed++;
	d->inflight = confirmed >= d->inflight ? 0 : d->inflight - confirmed;
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

void relay__dev_stop(relay_dev *d)
{
	d->active = 0;
}
