/* Unit test of parley-bench's log-linear histogram: bucket arithmetic over the whole uint64 range,
 * the relative error bound, percentiles against a sorted reference, and merging. */
#include <stdint.h>
#include <stdlib.h>

#include "hist.h"
#include "tests/unit/test.h"

static hist h1, h2, h3;

static void test_index_bounds(void)
{
	uint64_t v;
	unsigned i, prev = 0;
	int shift;

	for (v = 0; v < 5000; v++) {
		i = hist__index(v);
		TEST_CHECK(i < HIST_BUCKETS);
		TEST_CHECK(hist__bucket_low(i) <= v && v <= hist__bucket_high(i));
		TEST_CHECK(i == prev || i == prev + 1); /* contiguous, monotone */
		prev = i;
	}
	for (v = 0; v < HIST_SUB_COUNT; v++)
		TEST_EQ_INT(hist__index(v), v); /* small values are exact */
	for (shift = 0; shift < 64; shift++) {
		uint64_t p = (uint64_t)1 << shift;
		uint64_t vals[3] = {p, p - 1, p + (p >> 1)};
		int k;
		for (k = 0; k < 3; k++) {
			i = hist__index(vals[k]);
			TEST_CHECK(i < HIST_BUCKETS);
			TEST_CHECK(hist__bucket_low(i) <= vals[k] && vals[k] <= hist__bucket_high(i));
		}
	}
	TEST_EQ_INT(hist__index(UINT64_MAX), HIST_BUCKETS - 1);
	TEST_CHECK(hist__bucket_high(HIST_BUCKETS - 1) == UINT64_MAX);
	/* each bucket starts right after the previous one ends */
	for (i = 1; i < HIST_BUCKETS; i++)
		TEST_CHECK(hist__bucket_low(i) == hist__bucket_high(i - 1) + 1);
}

static void test_error_bound(void)
{
	uint64_t v = 1;
	unsigned i;

	/* width of a bucket relative to its start never exceeds 1/HIST_SUB_HALF */
	while (v < ((uint64_t)1 << 62)) {
		i = hist__index(v);
		TEST_CHECK((hist__bucket_high(i) - hist__bucket_low(i)) * HIST_SUB_HALF <= hist__bucket_low(i) ||
			   hist__bucket_high(i) == hist__bucket_low(i));
		v = v * 3 + 7;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_percentiles(void)
{
	enum { N = 100000 };
	static uint64_t ref[N];
	static const double ps[] = {1, 50, 90, 99, 99.9, 99.99};
	uint64_t seed = 42, got, want;
	unsigned k;
	int n;

	hist__init(&h1);
	TEST_EQ_INT(hist__percentile(&h1, 50), 0);
	for (n = 0; n < N; n++) {
		/* xorshift; a heavy-ish tail from 1 us to ~10 ms in ns */
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		ref[n] = 1000 + (seed % 1000) * (seed % 1000) * ((seed >> 20) % 10 + 1);
		hist__record(&h1, ref[n]);
	}
	qsort(ref, N, sizeof(ref[0]), cmp_u64);
	TEST_EQ_INT(h1.count, N);
	TEST_CHECK(h1.min == ref[0]);
	TEST_CHECK(h1.max == ref[N - 1]);
	TEST_CHECK(hist__percentile(&h1, 100) == ref[N - 1]);
	for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		size_t rank = (size_t)((ps[k] / 100.0) * N + 0.999999);
		want = ref[rank - 1];
		got = hist__percentile(&h1, ps[k]);
		/* never below the true value, at most one bucket width (1/64) above it */
		TEST_CHECK(got >= want);
		TEST_CHECK((got - want) * HIST_SUB_HALF <= want);
	}
}

static void test_merge_and_mean(void)
{
	int n;

	hist__init(&h2);
	hist__init(&h3);
	for (n = 1; n <= 100; n++)
		hist__record(&h2, (uint64_t)n);
	for (n = 101; n <= 200; n++)
		hist__record(&h3, (uint64_t)n);
	hist__merge(&h2, &h3);
	TEST_EQ_INT(h2.count, 200);
	TEST_EQ_INT(h2.min, 1);
	TEST_EQ_INT(h2.max, 200);
	TEST_CHECK(hist__mean(&h2) > 100.49 && hist__mean(&h2) < 100.51);
	TEST_EQ_INT(hist__percentile(&h2, 50), 100); /* exact region */
	TEST_CHECK(hist__percentile(&h2, 99) >= 198 && hist__percentile(&h2, 99) <= 200);
	/* one sample: every percentile is that sample */
	hist__init(&h3);
	hist__record(&h3, 123456789);
	TEST_CHECK(hist__percentile(&h3, 50) == 123456789);
	TEST_CHECK(hist__percentile(&h3, 99.9) == 123456789);
}

int main(void)
{
	TEST_RUN(test_index_bounds);
	TEST_RUN(test_error_bound);
	TEST_RUN(test_percentiles);
	TEST_RUN(test_merge_and_mean);
	TEST_EXIT();
}
