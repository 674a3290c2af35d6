/* Registry of connected devices. See registry.h. */
#include "dispatch/registry.h"

#include <pthread.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"

#define MIN_BUCKETS 1024u

struct entry {
	struct entry *next;
	uint64_t account;
	uint32_t device; /* 0: the account's aggregate (device ids start at 1) */
	uint32_t total;
	uint16_t per_worker[]; /* n_workers counts: an entry costs what this process's loops need */
};

struct registry {
	pthread_mutex_t mu;
	unsigned n_workers;
	struct entry **buckets; /* chained; doubled when the entries outnumber them (load <= 1) */
	size_t nbuckets, n;
	registry_edge_fn edge;
	void *edge_ctx;
};

int registry__new(unsigned n_workers, registry **out)
{
	if (n_workers == 0 || n_workers > REGISTRY_MAX_WORKERS)
		return PARLEY_E_INVAL;
	registry *r = parley__calloc(1, sizeof(*r));
	if (r == NULL)
		return PARLEY_E_NOMEM;
	r->buckets = parley__calloc(MIN_BUCKETS, sizeof(*r->buckets));
	if (r->buckets == NULL) {
		parley__free(r);
		return PARLEY_E_NOMEM;
	}
	r->nbuckets = MIN_BUCKETS;
	pthread_mutex_init(&r->mu, NULL);
	r->n_workers = n_workers;
	*out = r;
	return PARLEY_OK;
}

void registry__free(registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct entry *e = r->buckets[i];
		while (e != NULL) {
			struct entry *n = e->next;
			parley__free(e);
			e = n;
		}
	}
	pthread_mutex_destroy(&r->mu);
	parley__free(r->buckets);
	parley__free(r);
}

/* --- registry --- */

static size_t bucket(size_t nbuckets, uint64_t account, uint32_t device)
{
	uint64_t x = account * 0x9E3779B97F4A7C15ull ^ ((uint64_t)device << 32 | device);
	return (size_t)(x ^ (x >> 29)) & (nbuckets - 1);
}

/* A failed grow only lengthens the chains. */
static void grow(registry *r)
{
	size_t nb = r->nbuckets * 2;
	struct entry **b = parley__calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct entry *e = r->buckets[i];
		while (e != NULL) {
			struct entry *next = e->next;
			size_t k = bucket(nb, e->account, e->device);
			e->next = b[k];
			b[k] = e;
			e = next;
		}
	}
	parley__free(r->buckets);
	r->buckets = b;
	r->nbuckets = nb;
}

static struct entry **find(registry *r, uint64_t account, uint32_t device)
{
	struct entry **pp = &r->buckets[bucket(r->nbuckets, account, device)];
	while (*pp != NULL && !((*pp)->account == account && (*pp)->device == device))
		pp = &(*pp)->next;
	return pp;
}

/* delta +1/-1 on one entry; returns its total before the change, or -1 on allocation failure */
static int bump(registry *r, uint64_t account, uint32_t device, int worker, int delta)
{
	struct entry **pp = find(r, account, device);
	struct entry *e = *pp;
	if (e == NULL) {
		if (delta < 0)
			return 0;
		e = parley__calloc(1, sizeof(*e) + r->n_workers * sizeof(e->per_worker[0]));
		if (e == NULL)
			return -1;
		e->account = account;
		e->device = device;
		*pp = e;
		r->n++;
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
		r->n--;
	} else if (r->n > r->nbuckets) {
		grow(r); /* after the last use of pp */
	}
	return before;
}

int registry__add(registry *r, uint64_t account, uint32_t device, int worker, const char *handle)
{
	if (worker < 0 || (unsigned)worker >= r->n_workers || device == 0)
		return 0;
	pthread_mutex_lock(&r->mu);
	int first = 0;
	if (bump(r, account, device, worker, +1) >= 0)
		first = bump(r, account, 0, worker, +1) == 0;
	if (first && r->edge != NULL)
		first = r->edge(r->edge_ctx, account, handle, 1);
	pthread_mutex_unlock(&r->mu);
	return first;
}

int registry__remove(registry *r, uint64_t account, uint32_t device, int worker, const char *handle)
{
	if (worker < 0 || (unsigned)worker >= r->n_workers || device == 0)
		return 0;
	pthread_mutex_lock(&r->mu);
	bump(r, account, device, worker, -1);
	int before = bump(r, account, 0, worker, -1);
	int last = before == 1 && *find(r, account, 0) == NULL;
	if (last && r->edge != NULL)
		last = r->edge(r->edge_ctx, account, handle, 0);
	pthread_mutex_unlock(&r->mu);
	return last;
}

void registry__set_edge_hook(registry *r, registry_edge_fn fn, void *ctx)
{
	pthread_mutex_lock(&r->mu);
	r->edge = fn;
	r->edge_ctx = ctx;
	pthread_mutex_unlock(&r->mu);
}

uint64_t registry__workers(registry *r, uint64_t account, uint32_t device)
{
	uint64_t mask = 0;
	pthread_mutex_lock(&r->mu);
	struct entry *e = *find(r, account, device);
	if (e != NULL)
		for (unsigned w = 0; w < r->n_workers; w++)
			if (e->per_worker[w] > 0)
				mask |= 1ull << w;
	pthread_mutex_unlock(&r->mu);
	return mask;
}
