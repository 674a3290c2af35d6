/* Log-linear histogram; see hist.h for the layout and its error bound. */
#include "hist.h"

#include <string.h>

/* Index = shift * half + (v >> shift), with shift chosen so that (v >> shift) lands in [half, count):
 * below 2^HIST_SUB_BITS the shift is 0 and the index is the value itself, and each following octave
 * adds HIST_SUB_HALF buckets, which keeps the indices contiguous. */
unsigned hist__index(uint64_t v)
{
	unsigned msb, shift;

	if (v < HIST_SUB_COUNT)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - (HIST_SUB_BITS - 1);
	return shift * HIST_SUB_HALF + (unsigned)(v >> shift);
}

uint64_t hist__bucket_low(unsigned idx)
{
	unsigned shift;
	uint64_t m;

	if (idx < HIST_SUB_COUNT)
		return idx;
	shift = idx / HIST_SUB_HALF - 1;
	m = idx - (uint64_t)shift * HIST_SUB_HALF;
	return m << shift;
}

uint64_t hist__bucket_high(unsigned idx)
{
	unsigned shift;
	uint64_t m;

	if (idx < HIST_SUB_COUNT)
		return idx;
	shift = idx / HIST_SUB_HALF - 1;
	m = idx - (uint64_t)shift * HIST_SUB_HALF;
	/* The last bucket ends at UINT64_MAX; (m + 1) << shift would wrap to 0 there, and 0 - 1 is it. */
	return ((m + 1) << shift) - 1;
}

void hist__init(hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist__record(hist *h, uint64_t v)
{
	h->buckets[hist__index(v)]++;
	h->count++;
	h->sum += (long double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist__merge(hist *dst, const hist *src)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist__percentile(const hist *h, double p)
{
	uint64_t rank, seen = 0, v;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	/* ceil without libm: the rank of the value at or below which p % of the samples fall. */
	rank = (uint64_t)((p / 100.0) * (double)h->count);
	if ((double)rank < (p / 100.0) * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	if (i == HIST_BUCKETS)
		return h->max;
	v = hist__bucket_high(i);
	if (v > h->max)
		v = h->max;
	if (v < h->min)
		v = h->min;
	return v;
}

double hist__mean(const hist *h)
{
	return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}
