/* One loop thread's context: its store client, scratch buffer, bounded mailbox and the index of its
 * authenticated links. See service.h for the contract and dispatch_internal.h for the layout.
 *
 * One uv_async per worker serves both the store (completions) and the other loops (mailbox items):
 * with the network layer's own command handle that makes two per loop. A wake-up first runs the store
 * completions, then the mailbox, then — if a MBOX_RESYNC item was refused while the mailbox was full —
 * every service's resync hook.
 */
#include <string.h>
#ifdef __GLIBC__
#endif

#include <parley/error.h>

#include "base/heap.h"
#include "base/log.h"
#include "base/metrics.h"
#include "common/alloc.h"
#include "dispatch/dispatch_internal.h"

#define MODULE "dispatch"
#define INDEX_MIN_BUCKETS 64u

store_client *worker__store(worker *w)
{
	return w->sc;
}

dynbuf *worker__scratch(worker *w)
{
	dynbuf__reset(&w->out);
	return &w->out;
}

int worker__index(const worker *w)
{
	return w->index;
}

uv_loop_t *worker__loop(worker *w)
{
	return w->loop;
}

const parleyd_config *worker__config(const worker *w)
{
	return w->d->cfg;
}

int worker__service_index(const dispatch *d, const service *s)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i] == s)
			return (int)i;
	return -1;
}

void *worker__state(worker *w, const service *s)
{
	int i = worker__service_index(w->d, s);
	return i < 0 ? NULL : w->wstate[i];
}

void *worker__service(worker *w, const service *s)
{
	int i = worker__service_index(w->d, s);
	return i < 0 ? NULL : w->d->state[i];
}

/* --- the link index: authenticated links by account --- */

static size_t slot_of(const worker *w, uint64_t account)
{
	uint64_t x = account * 0x9E3779B97F4A7C15ull;
	return (size_t)(x ^ (x >> 31)) & (w->nbuckets - 1);
}

static int index_grow(worker *w)
{
	size_t nb = w->nbuckets ? w->nbuckets * 2 : INDEX_MIN_BUCKETS;
	struct link **b = parley__calloc(nb, sizeof(*b));
	if (b == NULL)
		return PARLEY_E_NOMEM;
	struct link **old = w->buckets;
	size_t on = w->nbuckets;
	w->buckets = b;
	w->nbuckets = nb;
	for (size_t i = 0; i < on; i++) {
		struct link *l = old[i];
		while (l != NULL) {
			struct link *next = l->index_next;
			size_t k = slot_of(w, l->account);
			l->index_next = w->buckets[k];
			w->buckets[k] = l;
			l = next;
		}
	}
	parley__free(old);
	return PARLEY_OK;
}

int worker__index_add(worker *w, struct link *l)
{
	/* a failed grow only lengthens the chains: the index stays correct */
	if (w->nlinks + 1 > w->nbuckets && index_grow(w) != PARLEY_OK && w->nbuckets == 0)
		return PARLEY_E_NOMEM;
	size_t k = slot_of(w, l->account);
	l->index_next = w->buckets[k];
	w->buckets[k] = l;
	w->nlinks++;
	return PARLEY_OK;
}

void worker__index_remove(worker *w, struct link *l)
{
	if (w->nbuckets == 0)
		return;
	struct link **pp = &w->buckets[slot_of(w, l->account)];
	while (*pp != NULL && *pp != l)
		pp = &(*pp)->index_next;
	if (*pp == l) {
		*pp = l->index_next;
		l->index_next = NULL;
		w->nlinks--;
	}
}

void worker__each_link(worker *w, uint64_t account, uint32_t device, void (*fn)(struct link *l, void *arg), void *arg)
{
	if (w->nbuckets == 0)
		return;
	struct link *l = w->buckets[slot_of(w, account)];
	while (l != NULL) {
		struct link *next = l->index_next; /* fn may close l, which unlinks it */
		if (l->account == account && (device == 0 || l->device == device))
			fn(l, arg);
		l = next;
	}
}

void worker__each_authenticated(worker *w, void (*fn)(struct link *l, void *arg), void *arg)
{
	for (size_t i = 0; i < w->nbuckets; i++) {
		struct link *l = w->buckets[i];
		while (l != NULL) {
			struct link *next = l->index_next;
			fn(l, arg);
			l = next;
		}
	}
}

static void send_to(struct link *l, void *arg)
{
	const mbox_item *it = arg;
	(void)link__send(l, it->data, it->len);
}

void worker__send_frame(worker *w, const mbox_item *it)
{
	worker__each_link(w, it->account, it->device, send_to, (void *)it);
}

/* --- the mailbox --- */

static void run_item(worker *w, const mbox_item *it)
{
	it->fn(w, it);
}

static void run_resync(worker *w)
{
	if (!atomic_exchange(&w->resync, 0))
		return;
	metrics__inc(METRIC_MAILBOX_RESYNCS);
	log_warn(MODULE, "worker %d: mailbox overflowed; services catch up from the store", w->index);
	for (size_t i = 0; i < w->d->n_services; i++)
		if (w->d->services[i]->resync != NULL)
			w->d->services[i]->resync(w, w->d->state[i]);
}

/* Empties the mailbox and returns its items, oldest first. With `stop`, it also stops accepting new
 * ones and reports in *was_running whether it did before. */
static mbox_item *take_all(worker *w, int stop, int *was_running)
{
	pthread_mutex_lock(&w->mu);
	mbox_item *it = w->head;
	w->head = w->tail = NULL;
	w->n = 0;
	if (stop) {
		*was_running = w->running;
		w->running = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return it;
}

static void on_async(uv_async_t *a)
{
	worker *w = a->data;
	store__client_run(w->sc);
	mbox_item *it = take_all(w, 0, NULL);
	while (it != NULL) {
		mbox_item *next = it->next;
		run_item(w, it);
		parley__free(it);
		it = next;
	}
	run_resync(w);
}

static void store_wake(void *arg)
{
	uv_async_send(arg);
}

/* Queues `it` on w (another loop). Returns 1 if queued (ownership passes), 0 if not. */
static int enqueue(worker *w, mbox_item *it, enum mbox_policy policy)
{
	int queued = 0;
	pthread_mutex_lock(&w->mu);
	if (w->running) {
		if (w->n < w->d->mailbox_cap || policy == MBOX_MUST) {
			it->next = NULL;
			if (w->tail != NULL)
				w->tail->next = it;
			else
				w->head = it;
			w->tail = it;
			w->n++;
			queued = 1;
		} else if (policy == MBOX_RESYNC) {
			atomic_store(&w->resync, 1);
		}
		uv_async_send(&w->async);
	}
	pthread_mutex_unlock(&w->mu);
	if (!queued && policy == MBOX_DROP)
		metrics__inc(METRIC_MAILBOX_DROPPED);
	return queued;
}

int worker__post(worker *w, const service *svc, enum mbox_policy policy, uint64_t account, uint32_t device,
		 uint64_t u64, const uint8_t *data, size_t len, void (*fn)(worker *w, const mbox_item *it))
{
	int rc = worker__deliver(w->d, w, svc, policy, account, device, u64, data, len, fn);
	dispatch__publish(w->d, svc, policy, account, device, u64, data, len, fn);
	return rc;
}

/* Hands one item to `target`: run at once when it is the calling loop w, else through its mailbox. */
static int give(worker *w, worker *target, const service *svc, enum mbox_policy policy, uint64_t account,
		uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn)
{
	mbox_item *it = parley__malloc(sizeof(*it) + len);
	if (it == NULL) {
		if (policy == MBOX_RESYNC && target != w) {
			atomic_store(&target->resync, 1);
			uv_async_send(&target->async);
		}
		return PARLEY_E_NOMEM;
	}
	*it = (mbox_item){.fn = fn, .svc = svc, .account = account, .device = device, .u64 = u64, .len = len};
	if (len > 0)
		memcpy(it->data, data, len);
	if (target == w) {
		/* same loop: at once, no wake-up. No reordering is possible: this loop drains its
		 * mailbox before it runs anything posted after the items in it. */
		run_item(w, it);
		parley__free(it);
	} else if (!enqueue(target, it, policy)) {
		parley__free(it);
	}
	return PARLEY_OK;
}

int worker__deliver(dispatch *d, worker *w, const service *svc, enum mbox_policy policy, uint64_t account,
		    uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn)
{
	uint64_t mask = registry__workers(d->reg, account, device);
	int rc = PARLEY_OK;
	for (unsigned t = 0; t < d->n_workers && mask != 0; t++) {
		if (!(mask & (1ull << t)))
			continue;
		mask &= ~(1ull << t);
		if (give(w, &d->workers[t], svc, policy, account, device, u64, data, len, fn) != PARLEY_OK)
			rc = PARLEY_E_NOMEM;
	}
	return rc;
}

int worker__deliver_to(dispatch *d, unsigned index, const service *svc, enum mbox_policy policy, uint64_t account,
		       uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn)
{
	if (index >= d->n_workers)
		return PARLEY_E_INVAL;
	return give(NULL, &d->workers[index], svc, policy, account, device, u64, data, len, fn);
}

/* --- idle trim ---
 * glibc keeps freed heap memory for reuse: after a burst (200 KiB frames copied into store jobs) the
 * process stays at its peak although nothing is in use. Once a loop has served requests and then been
 * quiet for a whole idle_trim_ms period with nothing in flight, malloc_trim(0) hands the free pages of
 * every arena back to the system. It runs once per quiet spell, never under load, so its cost (a walk
 * of the free lists) does not land on the request path. */
static void on_trim(uv_timer_t *t)
{
	worker *w = t->data;
	if (w->served != w->served_seen) {
		w->served_seen = w->served;
		w->trim_due = 1;
		return;
	}
	if (!w->trim_due || w->inflight > 0)
		return;
	w->trim_due = 0;
	if (heap__trim())
		metrics__inc(METRIC_MEMORY_TRIMS);
}

static void trim_start(worker *w)
{
	unsigned ms = (unsigned)w->d->cfg->idle_trim_ms;
	uv_timer_init(w->loop, &w->trim);
	w->trim.data = w;
	if (ms > 0)
		uv_timer_start(&w->trim, on_trim, ms, ms);
	uv_unref((uv_handle_t *)&w->trim); /* never what keeps a loop alive */
}

/* --- life cycle --- */

int worker__start(dispatch *d, worker *w, int index, uv_loop_t *loop)
{
	w->d = d;
	w->loop = loop;
	w->index = index;
	dynbuf__init(&w->out, d->limits.max_frame + 1024);
	if (uv_async_init(loop, &w->async, on_async) != 0)
		return PARLEY_E_INTERNAL;
	w->async.data = w;
	int rc = store__client_new(d->store, store_wake, &w->async, &w->sc);
	size_t started = 0;
	for (; rc == PARLEY_OK && started < d->n_services; started++) {
		const service *s = d->services[started];
		if (s->worker_start != NULL)
			rc = s->worker_start(w, d->state[started], &w->wstate[started]);
		if (rc != PARLEY_OK)
			break;
	}
	if (rc != PARLEY_OK) {
		log_error(MODULE, "worker %d: start: %s", index, parley_strerror(rc));
		while (started-- > 0)
			if (d->services[started]->worker_stop != NULL)
				d->services[started]->worker_stop(w, d->state[started], w->wstate[started]);
		store__client_close(w->sc);
		w->sc = NULL;
		uv_close((uv_handle_t *)&w->async, NULL);
		dynbuf__free(&w->out);
		return rc;
	}
	trim_start(w);
	pthread_mutex_lock(&w->mu);
	w->running = 1;
	pthread_mutex_unlock(&w->mu);
	return PARLEY_OK;
}

void worker__stop(worker *w)
{
	dispatch *d = w->d;
	int was;
	mbox_item *it = take_all(w, 1, &was);
	/* undelivered items: envelopes are durable (read again on reconnect), the rest is ephemeral, and
	 * the connections a removal notice would have closed are closed by the shutdown itself */
	while (it != NULL) {
		mbox_item *next = it->next;
		parley__free(it);
		it = next;
	}
	if (!was)
		return;
	for (size_t i = d->n_services; i-- > 0;)
		if (d->services[i]->worker_stop != NULL)
			d->services[i]->worker_stop(w, d->state[i], w->wstate[i]);
	/* runs the callbacks of jobs still in flight; their connections are closed, answers dropped */
	store__client_close(w->sc);
	w->sc = NULL;
	uv_close((uv_handle_t *)&w->async, NULL);
	uv_close((uv_handle_t *)&w->trim, NULL);
	parley__free(w->buckets);
	w->buckets = NULL;
	w->nbuckets = w->nlinks = 0;
	dynbuf__free(&w->out);
}
