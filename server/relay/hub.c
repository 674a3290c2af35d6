/* Registry of connected devices and per-loop mailboxes. See hub.h. */
#include "relay/hub.h"

#include <pthread.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"

#define MODULE "relay"
#define NBUCKETS 4096u

struct entry {
	struct entry *next;
	uint64_t account;
	uint32_t device; /* 0: the account's aggregate (device ids start at 1) */
	uint32_t total;
	uint16_t per_worker[HUB_MAX_WORKERS];
};

struct mailbox {
	hub *h;
	int worker;
	int running;
	uv_async_t async;
	hub_handler fn;
	void *ctx;
	hub_item *head, *tail; /* guarded by h->mu */
};

struct hub {
	pthread_mutex_t mu;
	unsigned n_workers;
	struct entry *buckets[NBUCKETS];
	struct mailbox *mb;
};

int hub__new(unsigned n_workers, hub **out)
{
	if (n_workers == 0 || n_workers > HUB_MAX_WORKERS)
		return PARLEY_E_INVAL;
	hub *h = parley__calloc(1, sizeof(*h));
	if (h == NULL)
		return PARLEY_E_NOMEM;
	h->mb = parley__calloc(n_workers, sizeof(*h->mb));
	if (h->mb == NULL) {
		parley__free(h);
		return PARLEY_E_NOMEM;
	}
	pthread_mutex_init(&h->mu, NULL);
	h->n_workers = n_workers;
	*out = h;
	return PARLEY_OK;
}

void hub__free(hub *h)
{
	if (h == NULL)
		return;
	for (unsigned i = 0; i < NBUCKETS; i++) {
		struct entry *e = h->buckets[i];
		while (e != NULL) {
			struct entry *n = e->next;
			parley__free(e);
			e = n;
		}
	}
	for (unsigned i = 0; i < h->n_workers; i++) {
		hub_item *it = h->mb[i].head;
		while (it != NULL) {
			hub_item *n = it->next;
			parley__free(it);
			it = n;
		}
	}
	pthread_mutex_destroy(&h->mu);
	parley__free(h->mb);
	parley__free(h);
}

/* --- mailboxes --- */

static void on_async(uv_async_t *a)
{
	struct mailbox *m = a->data;
	pthread_mutex_lock(&m->h->mu);
	hub_item *it = m->head;
	m->head = m->tail = NULL;
	pthread_mutex_unlock(&m->h->mu);
	while (it != NULL) {
		hub_item *n = it->next;
		m->fn(m->ctx, it);
		parley__free(it);
		it = n;
	}
}

int hub__worker_start(hub *h, int worker, uv_loop_t *loop, hub_handler fn, void *ctx)
{
	if (worker < 0 || (unsigned)worker >= h->n_workers)
		return PARLEY_E_INVAL;
	struct mailbox *m = &h->mb[worker];
	m->h = h;
	m->worker = worker;
	m->fn = fn;
	m->ctx = ctx;
	if (uv_async_init(loop, &m->async, on_async) != 0)
		return PARLEY_E_INTERNAL;
	m->async.data = m;
	pthread_mutex_lock(&h->mu);
	m->running = 1;
	pthread_mutex_unlock(&h->mu);
	return PARLEY_OK;
}

void hub__worker_stop(hub *h, int worker)
{
	if (worker < 0 || (unsigned)worker >= h->n_workers)
		return;
	struct mailbox *m = &h->mb[worker];
	pthread_mutex_lock(&h->mu);
	int was = m->running;
	m->running = 0;
	hub_item *it = m->head;
	m->head = m->tail = NULL;
	pthread_mutex_unlock(&h->mu);
	while (it != NULL) {
		hub_item *n = it->next;
		parley__free(it);
		it = n;
	}
	if (was)
		uv_close((uv_handle_t *)&m->async, NULL);
}

int hub__post(hub *h, uint64_t mask, int self, int kind, uint64_t account, uint32_t device, uint64_t server_id,
	      const uint8_t *frame, size_t len)
{
	int rc = PARLEY_OK;
	for (unsigned w = 0; w < h->n_workers && mask != 0; w++) {
		if (!(mask & (1ull << w)))
			continue;
		mask &= ~(1ull << w);
		hub_item *it = parley__malloc(sizeof(*it) + len);
		if (it == NULL) {
			rc = PARLEY_E_NOMEM;
			continue;
		}
		it->next = NULL;
		it->kind = kind;
		it->account = account;
		it->device = device;
		it->server_id = server_id;
		it->len = len;
		memcpy(it->data, frame, len);
		struct mailbox *m = &h->mb[w];
		if ((int)w == self && m->fn != NULL) {
			/* same loop: no wake-up, no reordering behind older mailbox items is possible since
			 * this loop drains its mailbox before running anything posted after */
			m->fn(m->ctx, it);
			parley__free(it);
			continue;
		}
		pthread_mutex_lock(&h->mu);
		if (m->running) {
			if (m->tail != NULL)
				m->tail->next = it;
			else
				m->head = it;
			m->tail = it;
			uv_async_send(&m->async);
			it = NULL;
		}
		pthread_mutex_unlock(&h->mu);
		parley__free(it);
	}
	return rc;
}

/* --- registry --- */

static unsigned bucket(uint64_t account, uint32_t device)
{
	uint64_t x = account * 0x9E3779B97F4A7C15ull ^ ((uint64_t)device << 32 | device);
	return (unsigned)((x ^ (x >> 29)) % NBUCKETS);
}

static struct entry **find(hub *h, uint64_t account, uint32_t device)
{
	struct entry **pp = &h->buckets[bucket(account, device)];
	while (*pp != NULL && !((*pp)->account == account && (*pp)->device == device))
		pp = &(*pp)->next;
	return pp;
}

/* delta +1/-1 on one entry; returns its total before the change, or -1 on allocation failure */
static int bump(hub *h, uint64_t account, uint32_t device, int worker, int delta)
{
	struct entry **pp = find(h, account, device);
	struct entry *e = *pp;
	if (e == NULL) {
		if (delta < 0)
			return 0;
		e = parley__calloc(1, sizeof(*e));
		if (e == NULL)
			return -1;
		e->account = account;
		e->device = device;
		*pp = e;
	}
	int before = (int)e->total;
	if (delta > 0) {
		e->total++;
		e->per_worker[worker]++;
	} else if (e->per_worker[worker] > 0) {
		e->total--;
		e->per_worker[worker]--;
	}
	if (e->total == 0) {
		*pp = e->next;
		parley__free(e);
	}
	return before;
}

int hub__add(hub *h, uint64_t account, uint32_t device, int worker)
{
	if (worker < 0 || (unsigned)worker >= h->n_workers || device == 0)
		return 0;
	pthread_mutex_lock(&h->mu);
	int first = 0;
	if (bump(h, account, device, worker, +1) >= 0)
		first = bump(h, account, 0, worker, +1) == 0;
	pthread_mutex_unlock(&h->mu);
	return first;
}

int hub__remove(hub *h, uint64_t account, uint32_t device, int worker)
{
	if (worker < 0 || (unsigned)worker >= h->n_workers || device == 0)
		return 0;
	pthread_mutex_lock(&h->mu);
	bump(h, account, device, worker, -1);
	int before = bump(h, account, 0, worker, -1);
	int last = before == 1 && *find(h, account, 0) == NULL;
	pthread_mutex_unlock(&h->mu);
	return last;
}

uint64_t hub__workers(hub *h, uint64_t account, uint32_t device)
{
	uint64_t mask = 0;
	pthread_mutex_lock(&h->mu);
	struct entry *e = *find(h, account, device);
	if (e != NULL)
		for (unsigned w = 0; w < h->n_workers; w++)
			if (e->per_worker[w] > 0)
				mask |= 1ull << w;
	pthread_mutex_unlock(&h->mu);
	return mask;
}
