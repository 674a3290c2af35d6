/* A small hash map keyed by a 64-bit id (an account), for the bus's subscription table and presence
 * view. Chained, doubled at load 1; entries are the caller's structs beginning with a u64map_entry.
 * Not thread-safe: each user guards its own. */
#ifndef PARLEYD_CLUSTER_MAP_H
#define PARLEYD_CLUSTER_MAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct u64map_entry {
	struct u64map_entry *next;
	uint64_t key;
} u64map_entry;

typedef struct u64map {
	u64map_entry **buckets;
	size_t nbuckets, n;
} u64map;

void *u64map__get(const u64map *m, uint64_t key);
/* The entry of key, created zeroed (entry_size bytes, u64map_entry first) when missing; NULL: no memory. */
void *u64map__put(u64map *m, uint64_t key, size_t entry_size);
void u64map__del(u64map *m, uint64_t key);
/* Calls fn on every entry; an entry for which fn returns 1 is removed and freed. */
void u64map__each(u64map *m, int (*fn)(void *entry, void *arg), void *arg);
void u64map__free(u64map *m);

#endif
