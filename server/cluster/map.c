/* See map.h. */
#include "cluster/map.h"

#include "common/alloc.h"

#define MIN_BUCKETS 64u

static size_t slot_of(size_t nbuckets, uint64_t key)
{
	uint64_t x = key * 0x9E3779B97F4A7C15ull;
	return (size_t)(x ^ (x >> 31)) & (nbuckets - 1);
}

static u64map_entry **find(const u64map *m, uint64_t key)
{
	if (m->nbuckets == 0)
		return NULL;
	u64map_entry **pp = &m->buckets[slot_of(m->nbuckets, key)];
	while (*pp != NULL && (*pp)->key != key)
		pp = &(*pp)->next;
	return pp;
}

void *u64map__get(const u64map *m, uint64_t key)
{
	u64map_entry **pp = find(m, key);
	return pp != NULL ? *pp : NULL;
}

/* A failed grow only lengthens the chains (unless there is no table at all yet). */
static void grow(u64map *m)
{
	size_t nb = m->nbuckets ? m->nbuckets * 2 : MIN_BUCKETS;
	u64map_entry **b = parley__calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		u64map_entry *e = m->buckets[i];
		while (e != NULL) {
			u64map_entry *next = e->next;
			size_t k = slot_of(nb, e->key);
			e->next = b[k];
			b[k] = e;
			e = next;
		}
	}
	parley__free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

void *u64map__put(u64map *m, uint64_t key, size_t entry_size)
{
	u64map_entry *e = u64map__get(m, key);
	if (e != NULL)
		return e;
	if (m->n + 1 > m->nbuckets)
		grow(m);
	if (m->nbuckets == 0 || (e = parley__calloc(1, entry_size)) == NULL)
		return NULL;
	size_t k = slot_of(m->nbuckets, key);
	e->key = key;
	e->next = m->buckets[k];
	m->buckets[k] = e;
	m->n++;
	return e;
}

void u64map__del(u64map *m, uint64_t key)
{
	u64map_entry **pp = find(m, key);
	if (pp == NULL || *pp == NULL)
		return;
	u64map_entry *e = *pp;
	*pp = e->next;
	parley__free(e);
	m->n--;
}

void u64map__each(u64map *m, int (*fn)(void *entry, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		u64map_entry **pp = &m->buckets[i];
		while (*pp != NULL) {
			u64map_entry *e = *pp;
			if (fn(e, arg)) {
				*pp = e->next;
				parley__free(e);
				m->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static int drop_all(void *entry, void *arg)
{
	(void)entry;
	(void)arg;
	return 1;
}

void u64map__free(u64map *m)
{
	u64map__each(m, drop_all, NULL);
	parley__free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = m->n = 0;
}
