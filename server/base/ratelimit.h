/* Leaky buckets in a fixed-size table: memory stays bounded whatever the number of keys (a key that
 * does not fit evicts the most drained bucket among its probe window, which loses the least).
 * Used by the key server (bundle fetches per requester and target) and the accounts service
 * (registrations per source address). Not thread-safe: a shared table needs its owner's lock. */
#ifndef PARLEYD_RATELIMIT_H
#define PARLEYD_RATELIMIT_H
#include <stddef.h>
#include <stdint.h>

#define RL_KEY_LEN 16

typedef struct rl_bucket {
	uint8_t key[RL_KEY_LEN];
	double level;
	uint64_t last_ms;
	int used;
} rl_bucket;

/* One token for `key` from slots[0..n) (zeroed at first), probing from hash % n. capacity <= 0 or
 * per_sec <= 0: no limit. Returns 0 when allowed, else the milliseconds until a token frees up. */
uint64_t rl__take(rl_bucket *slots, size_t n, uint64_t hash, const uint8_t key[RL_KEY_LEN], double capacity,
		  double per_sec, uint64_t now_ms);

#endif
