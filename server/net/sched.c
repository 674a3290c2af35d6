/* Per-worker scheduling of connection work: the deferred flush and the connection deadlines.
 *
 * Why not a uv_prepare and a uv_timer in every connection: together they are 272 of the bytes an idle
 * connection costs, and a worker holds tens of thousands of connections that mostly wait. One handle
 * of each per worker does the same work:
 *
 * Flush queue. A connection that queued output is appended (once, holding a reference) to the
 * worker's FIFO; the worker's prepare handle, which libuv runs once per loop iteration just before it
 * blocks in poll, flushes every queued connection. So output produced anywhere in an iteration (store
 * completions, pushes from other connections) still leaves in one write per connection.
 *
 * Deadlines. Every deadline kind has one delay for the whole worker (handshake timeout, tick step,
 * close grace) and uv_now never goes back, so appending a connection at the tail of its kind's list
 * keeps the list sorted by deadline: arming and disarming are O(1) list operations, and the one timer
 * only has to look at the heads. It is restarted when an armed deadline is earlier than the one it
 * waits for; a disarmed head at most makes it fire once for nothing.
 */
#include "net/net_internal.h"

static void dl_unlink(net_worker *w, net_conn *c)
{
	if (c->dl == NET_DL_NONE)
		return;
	if (c->dl_prev != NULL)
		c->dl_prev->dl_next = c->dl_next;
	else
		w->dl_head[c->dl] = c->dl_next;
	if (c->dl_next != NULL)
		c->dl_next->dl_prev = c->dl_prev;
	else
		w->dl_tail[c->dl] = c->dl_prev;
	c->dl_prev = c->dl_next = NULL;
	c->dl = NET_DL_NONE;
}

static void on_dl_timer(uv_timer_t *t);

static void dl_timer_at(net_worker *w, uint64_t due)
{
	uint64_t now = uv_now(&w->loop);
	w->dl_timer_due = due;
	uv_timer_start(&w->dl_timer, on_dl_timer, due > now ? due - now : 0, 0);
}

void net__sched_deadline(net_conn *c, enum net_deadline dl)
{
	net_worker *w = c->w;
	dl_unlink(w, c);
	if (dl == NET_DL_NONE || w->dl_delay[dl] == 0 || !w->sched_open)
		return;
	c->deadline = uv_now(&w->loop) + w->dl_delay[dl];
	c->dl = (uint8_t)dl;
	c->dl_prev = w->dl_tail[dl];
	c->dl_next = NULL;
	if (c->dl_prev != NULL)
		c->dl_prev->dl_next = c;
	else
		w->dl_head[dl] = c;
	w->dl_tail[dl] = c;
	if (w->dl_timer_due == 0 || c->deadline < w->dl_timer_due)
		dl_timer_at(w, c->deadline);
}

static void on_dl_timer(uv_timer_t *t)
{
	net_worker *w = t->data;
	uint64_t now = uv_now(&w->loop);
	uint64_t next = 0;
	w->dl_timer_due = 0;
	for (int k = NET_DL_NONE + 1; k < NET_DL__COUNT; k++) {
		net_conn *c;
		while ((c = w->dl_head[k]) != NULL && c->deadline <= now) {
			/* off the list first: the handler may arm the next deadline (the tick re-arms itself) */
			dl_unlink(w, c);
			net__conn_ref(c);
			net__conn_deadline(c, (enum net_deadline)k);
			net__conn_unref(c);
		}
	}
	/* handlers may have started the timer for what they armed; the earliest head decides */
	for (int k = NET_DL_NONE + 1; k < NET_DL__COUNT; k++) {
		if (w->dl_head[k] != NULL && (next == 0 || w->dl_head[k]->deadline < next))
			next = w->dl_head[k]->deadline;
	}
	if (next != 0) {
		dl_timer_at(w, next);
	} else {
		uv_timer_stop(&w->dl_timer);
		w->dl_timer_due = 0;
	}
}

/* Flushes everything queued, including connections queued while doing so. */
static void run_flush_queue(net_worker *w)
{
	net_conn *c;
	while ((c = w->flush_head) != NULL) {
		w->flush_head = c->flush_next;
		if (w->flush_head == NULL)
			w->flush_tail = NULL;
		c->flush_next = NULL;
		c->flush_queued = 0;
		net__conn_flush(c);
		net__conn_unref(c); /* the queue's reference */
	}
}

static void on_flush_prep(uv_prepare_t *h)
{
	net_worker *w = h->data;
	run_flush_queue(w);
	uv_prepare_stop(h);
}

void net__sched_flush(net_conn *c)
{
	net_worker *w = c->w;
	if (c->flush_queued)
		return;
	if (!w->sched_open) {
		net__conn_flush(c);
		return;
	}
	if (w->flush_head == NULL)
		uv_prepare_start(&w->flush_prep, on_flush_prep); /* cannot fail on an initialised handle */
	net__conn_ref(c);
	c->flush_queued = 1;
	c->flush_next = NULL;
	if (w->flush_tail != NULL)
		w->flush_tail->flush_next = c;
	else
		w->flush_head = c;
	w->flush_tail = c;
}

void net__sched_init(net_worker *w)
{
	const net_config *cfg = &w->srv->cfg;
	unsigned tick = cfg->ping_interval_ms;
	if (cfg->idle_timeout_ms && (tick == 0 || cfg->idle_timeout_ms < tick))
		tick = cfg->idle_timeout_ms;
	uv_prepare_init(&w->loop, &w->flush_prep);
	w->flush_prep.data = w;
	uv_timer_init(&w->loop, &w->dl_timer);
	w->dl_timer.data = w;
	w->dl_delay[NET_DL_HANDSHAKE] = cfg->handshake_timeout_ms;
	/* check a few times per period so the timeouts are not off by a whole period */
	w->dl_delay[NET_DL_TICK] = tick == 0 ? 0 : tick / 4 ? tick / 4 : 1;
	w->dl_delay[NET_DL_CLOSING] = NET_CLOSE_GRACE_MS;
	w->dl_delay[NET_DL_AUTH] = cfg->auth_timeout_ms;
	w->dl_delay[NET_DL_MESSAGE] = cfg->message_timeout_ms;
	w->sched_open = 1;
}

void net__sched_close(net_worker *w)
{
	if (!w->sched_open)
		return;
	run_flush_queue(w); /* drops the references of connections that closed with a flush queued */
	w->sched_open = 0;
	uv_close((uv_handle_t *)&w->flush_prep, NULL);
	uv_close((uv_handle_t *)&w->dl_timer, NULL);
}
