/* One libuv loop on its own thread, the way both parley-bench engines (wsload.c, relay_parley.c) run
 * their connections: the calling thread sets a phase and wakes the loop (uv_async_send on wake); the
 * engine has one timer on it. */
#ifndef PARLEY_BENCH_LOOP_H
#define PARLEY_BENCH_LOOP_H
#include <uv.h>

typedef struct bench_loop {
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t timer;
	uv_thread_t tid;
} bench_loop;

/* Initialises the loop, wake (calling on_wake) and timer, both with data = arg, and runs fn(arg) on a
 * new thread, which is expected to uv_run the loop. PARLEY_OK, or PARLEY_E_IO with nothing left. */
int bench__loop_start(bench_loop *l, uv_async_cb on_wake, void (*fn)(void *), void *arg);
/* From the loop's thread when its engine stops: closes wake and timer, so uv_run returns as soon as
 * the connections are gone too. */
void bench__loop_stop(bench_loop *l);
/* From the calling thread, after the loop was told to stop: waits for the thread, closes the loop. */
void bench__loop_join(bench_loop *l);

#endif
