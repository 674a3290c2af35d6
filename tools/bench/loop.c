/* Loop threads for parley-bench's engines (see loop.h). */
#include "loop.h"

#include <parley/error.h>

int bench__loop_start(bench_loop *l, uv_async_cb on_wake, void (*fn)(void *), void *arg)
{
	if (uv_loop_init(&l->loop) != 0)
		return PARLEY_E_IO;
	uv_async_init(&l->loop, &l->wake, on_wake);
	uv_timer_init(&l->loop, &l->timer);
	l->wake.data = arg;
	l->timer.data = arg;
	if (uv_thread_create(&l->tid, fn, arg) != 0) {
		bench__loop_stop(l);
		uv_run(&l->loop, UV_RUN_DEFAULT); /* lets the close callbacks run */
		uv_loop_close(&l->loop);
		return PARLEY_E_IO;
	}
	return PARLEY_OK;
}

void bench__loop_stop(bench_loop *l)
{
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, NULL);
	uv_close((uv_handle_t *)&l->wake, NULL);
}

void bench__loop_join(bench_loop *l)
{
	uv_thread_join(&l->tid);
	uv_loop_close(&l->loop);
}
