#include "base/metrics.h"

#include <stdatomic.h>
#include <string.h>

#include <parley/error.h>

static _Atomic int64_t values[METRIC__COUNT];

static const struct {
	const char *name, *type, *help;
} meta[METRIC__COUNT] = {
#define METRICS__META(id, n, t, h) [METRIC_##id] = {n, t, h},
	METRICS_MAP(METRICS__META)
#undef METRICS__META
};

/* Upper bounds in microseconds: loopback requests take tens of µs, store writes up to a few ms. */
static const uint64_t bucket_us[] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000};
#define NBUCKETS (sizeof bucket_us / sizeof bucket_us[0])

struct hist {
	const char *kind;
	_Atomic uint64_t buckets[NBUCKETS + 1]; /* last = +Inf */
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t count;
};
static struct hist hists[METRICS_MAX_KINDS];
static int nkinds;

void metrics__add(enum metric_id id, int64_t delta)
{
	atomic_fetch_add_explicit(&values[id], delta, memory_order_relaxed);
}

int64_t metrics__get(enum metric_id id)
{
	return atomic_load_explicit(&values[id], memory_order_relaxed);
}

int metrics__register_kind(const char *kind)
{
	for (int i = 0; i < nkinds; i++)
		if (strcmp(hists[i].kind, kind) == 0)
			return i;
	if (nkinds >= METRICS_MAX_KINDS)
		return -1;
	hists[nkinds].kind = kind;
	return nkinds++;
}

void metrics__observe_latency(int kind, uint64_t ns)
{
	if (kind < 0 || kind >= nkinds)
		return;
	struct hist *h = &hists[kind];
	size_t b = 0;
	while (b < NBUCKETS && ns > bucket_us[b] * 1000)
		b++;
	atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

int metrics__render(dynbuf *out)
{
	int err = PARLEY_OK;
	for (int i = 0; i < METRIC__COUNT && !err; i++) {
		err = dynbuf__printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", meta[i].name, meta[i].help,
				     meta[i].name, meta[i].type, meta[i].name, (long long)metrics__get((enum metric_id)i));
	}
	if (err)
		return err;
	err = dynbuf__append_str(out, "# HELP parley_request_duration_seconds time from request received to "
				      "response queued\n# TYPE parley_request_duration_seconds histogram\n");
	for (int k = 0; k < nkinds && !err; k++) {
		struct hist *h = &hists[k];
		uint64_t cum = 0;
		for (size_t b = 0; b <= NBUCKETS && !err; b++) {
			cum += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
			if (b < NBUCKETS)
				err = dynbuf__printf(out, "parley_request_duration_seconds_bucket{kind=\"%s\",le=\"%g\"} %llu\n",
						     h->kind, (double)bucket_us[b] / 1e6, (unsigned long long)cum);
			else
				err = dynbuf__printf(out, "parley_request_duration_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %llu\n",
						     h->kind, (unsigned long long)cum);
		}
		if (!err)
			err = dynbuf__printf(out,
					     "parley_request_duration_seconds_sum{kind=\"%s\"} %.9f\n"
					     "parley_request_duration_seconds_count{kind=\"%s\"} %llu\n",
					     h->kind, (double)atomic_load(&h->sum_ns) / 1e9, h->kind,
					     (unsigned long long)atomic_load(&h->count));
	}
	return err;
}
