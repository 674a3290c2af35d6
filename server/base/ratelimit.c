/* Leaky buckets in a fixed-size table. See ratelimit.h. */
#include "base/ratelimit.h"

#include <string.h>

#define PROBES 8

static double drained(const rl_bucket *b, double per_sec, uint64_t now_ms)
{
	double dt = now_ms > b->last_ms ? (double)(now_ms - b->last_ms) / 1000.0 : 0.0;
	double lvl = b->level - dt * per_sec;
	return lvl > 0 ? lvl : 0;
}

uint64_t rl__take(rl_bucket *slots, size_t n, uint64_t hash, const uint8_t key[RL_KEY_LEN], double capacity,
		  double per_sec, uint64_t now_ms)
{
	if (capacity <= 0 || per_sec <= 0 || n == 0)
		return 0;
	rl_bucket *b = NULL, *victim = NULL;
	double victim_lvl = 0;
	for (unsigned i = 0; i < PROBES && b == NULL; i++) {
		rl_bucket *s = &slots[(hash + i) % n];
		if (s->used && memcmp(s->key, key, RL_KEY_LEN) == 0) {
			b = s;
			break;
		}
		double lvl = s->used ? drained(s, per_sec, now_ms) : -1;
		if (victim == NULL || lvl < victim_lvl) {
			victim = s;
			victim_lvl = lvl;
		}
	}
	if (b == NULL) {
		/* a free or fully drained slot loses nothing; otherwise the emptiest bucket is forgotten */
		b = victim;
		memset(b, 0, sizeof(*b));
		b->used = 1;
		memcpy(b->key, key, RL_KEY_LEN);
		b->last_ms = now_ms;
	}
	double lvl = drained(b, per_sec, now_ms);
	b->last_ms = now_ms;
	if (lvl + 1.0 > capacity) {
		b->level = lvl;
		double wait_s = (lvl + 1.0 - capacity) / per_sec;
		return (uint64_t)(wait_s * 1000.0) + 1;
	}
	b->level = lvl + 1.0;
	return 0;
}
