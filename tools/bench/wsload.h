/* parley-bench's WebSocket load engine: N client connections spread over T libuv loop threads, each
 * connection doing closed-loop request/response round trips (one request in flight per connection).
 *
 * Every connection is a lib/transport connection (the project's one client WebSocket pump, shared
 * with libparley), set up for 10,000 of them: the target address is handed over (no resolver call per
 * connection), all reads of a thread land in one buffer, and answers sent while a read is delivered go
 * out in one write. What stays per connection is the socket, a timer, the upgrade parser until the 101
 * and the session after it.
 *
 * Phases, driven by the calling thread:
 *   bench_ws__open     spawns the threads and connects every client (ramped: at most connect_batch
 *                      handshakes in progress per thread), returns when all succeeded, failed, or the
 *                      connect timeout passed;
 *   bench_ws__measure  (optional) runs the round trips for `duration_s` or until `requests` completed;
 *   bench_ws__close    closes every connection, joins the threads, fills the result and frees the run.
 */
#ifndef PARLEY_BENCH_WSLOAD_H
#define PARLEY_BENCH_WSLOAD_H
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "target.h"

enum bench_mode { BENCH_MODE_PARLEY = 0, BENCH_MODE_ECHO = 1 };

typedef struct bench_cfg {
	bench_target target;
	enum bench_mode mode;
	unsigned clients;
	unsigned threads;
	unsigned connect_batch;    /* concurrent handshakes per thread */
	double connect_timeout_s;  /* whole connect phase */
	double duration_s;         /* measure phase length when requests == 0 */
	uint64_t requests;         /* total round trips to complete; 0 = use duration_s */
	double max_time_s;         /* hard cap of the measure phase in requests mode */
	size_t payload;            /* ping payload / echo message bytes */
	int progress;              /* draw a live line on stderr */
} bench_cfg;

typedef struct bench_result {
	uint64_t connected;      /* completed the WebSocket upgrade */
	uint64_t connect_failed; /* refused, reset, bad upgrade answer or connect timeout */
	double connect_s;        /* length of the connect phase */
	uint64_t round_trips;    /* responses received and checked during the measure phase */
	uint64_t errors;         /* bad/unexpected responses and connections lost while measuring */
	uint64_t lost;           /* connections that ended during the measure phase */
	double elapsed_s;        /* length of the measure phase */
	hist latency;            /* ns, one sample per round trip */
	char first_error[160];   /* first error seen, for the report ("" if none) */
} bench_result;

typedef struct bench_run bench_run;

/* Returns PARLEY_OK (even if some or all connections failed: see the result), or PARLEY_E_NOMEM /
 * PARLEY_E_IO when the threads or loops could not be created (nothing is left running then). */
int bench_ws__open(const bench_cfg *cfg, bench_run **out);
/* Connections established so far (for callers that measure something while they are idle). */
uint64_t bench_ws__connected(const bench_run *run);
void bench_ws__measure(bench_run *run);
/* Always frees the run; result may be NULL. */
void bench_ws__close(bench_run *run, bench_result *result);

#endif
