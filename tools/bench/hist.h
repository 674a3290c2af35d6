/* Log-linear latency histogram (the HdrHistogram layout, reduced to what parley-bench needs).
 *
 * Values are unsigned 64-bit (parley-bench records nanoseconds). Values below 2^HIST_SUB_BITS are
 * counted exactly; above that every power-of-two range is split into HIST_SUB_HALF equal sub-buckets,
 * so a reported value is never more than 1/HIST_SUB_HALF (1.6 %) above the true one, over the whole
 * uint64 range, with a fixed table (no allocation, no configured maximum to overflow). Recording is a
 * shift, a count-leading-zeros and an increment, cheap enough for every round trip.
 *
 * Not thread-safe: each worker thread records into its own histogram and the results are merged
 * after the threads have been joined.
 */
#ifndef PARLEY_BENCH_HIST_H
#define PARLEY_BENCH_HIST_H
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS) /* 128 exact values, then 64 sub-buckets per octave */
#define HIST_SUB_HALF (HIST_SUB_COUNT / 2)
/* The highest shift is 63 - (HIST_SUB_BITS - 1); its buckets end at index shift*half + (count - 1). */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB_HALF + HIST_SUB_HALF)

typedef struct hist {
	uint64_t count;
	uint64_t min; /* exact, UINT64_MAX while empty */
	uint64_t max; /* exact */
	long double sum;
	uint64_t buckets[HIST_BUCKETS];
} hist;

void hist__init(hist *h);
void hist__record(hist *h, uint64_t v);
/* Adds every count of src into dst. */
void hist__merge(hist *dst, const hist *src);

/* The value at percentile p (0 < p <= 100): the highest value equivalent to the bucket holding the
 * ceil(p/100 * count)-th smallest recorded value, clamped to [min, max]; 0 when empty. So p100 is
 * the exact maximum and a reported percentile is never below the true one. */
uint64_t hist__percentile(const hist *h, double p);
double hist__mean(const hist *h);

/* Bucket arithmetic, exposed for the unit test. */
unsigned hist__index(uint64_t v);
uint64_t hist__bucket_low(unsigned idx);
uint64_t hist__bucket_high(unsigned idx);

#endif
