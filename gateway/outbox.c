/* The outbox's policy, as pure functions (the queue itself is in store.c, the worker in sender.c). */
#include "gw.h"

uint64_t outbox__backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd)
{
	uint64_t d = base_ms;
	if (attempt == 0)
		attempt = 1;
	for (unsigned i = 1; i < attempt && d < cap_ms; i++)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	/* equal jitter: [d/2, d] */
	uint64_t half = d / 2;
	return half + (uint64_t)(((__uint128_t)(d - half) * rnd) / UINT32_MAX);
}

int outbox__classify(int transport_ok, long status)
{
	if (!transport_ok)
		return GW_RETRY;
	if (status >= 200 && status < 300)
		return GW_SENT;
	if (status == 408 || status == 429 || status >= 500)
		return GW_RETRY;
	return GW_DEAD;
}
