/* Tests: a store client bound to a plain uv loop (in parleyd the dispatcher's worker mailbox wakes
 * the client; a test has no worker, so one uv_async per client plays that part). */
#ifndef PARLEY_TEST_STORE_LOOP_H
#define PARLEY_TEST_STORE_LOOP_H
#include <uv.h>

#include "store/store.h"

typedef struct test_store_client {
	uv_async_t async;
	store_client *c;
} test_store_client;

static void test_store_client_on_async(uv_async_t *h)
{
	test_store_client *t = h->data;
	store__client_run(t->c);
}

static void test_store_client_wake(void *arg)
{
	uv_async_send(arg);
}

/* Returns the store__client_new result; on success *out is the client to submit to. */
static inline int test_store_client_open(test_store_client *t, store *s, uv_loop_t *loop, store_client **out)
{
	if (uv_async_init(loop, &t->async, test_store_client_on_async) != 0)
		return -1;
	t->async.data = t;
	int rc = store__client_new(s, test_store_client_wake, &t->async, &t->c);
	if (out != NULL)
		*out = t->c;
	return rc;
}

/* Closes the client (running its pending callbacks) and the handle; run the loop once more after. */
static inline void test_store_client_close(test_store_client *t)
{
	store__client_close(t->c);
	t->c = NULL;
	uv_close((uv_handle_t *)&t->async, NULL);
}
#endif
