/* The per-loop worker without sockets: the bounded mailbox and its three policies (drop and count,
 * resync instead of queueing, must arrive beyond the bound), posting to the caller's own loop (run at
 * once), the account-keyed link index (a delivery visits only that account's links, whatever the
 * number of connections), store completions arriving through the same wake-up, and the handle count
 * (one uv_async per worker). */
#include <stdlib.h>

#include <uv.h>

#include <parley/error.h>

#include "base/metrics.h"
#include "dispatch/dispatch_internal.h"
#include "test.h"

static store *st;
static dispatch *d;
static parleyd_config pc;
static uv_loop_t loops[2];
static int resyncs;
static int calls[2];
static uint64_t order[64];
static size_t n_order;

static void on_resync(worker *w, void *state)
{
	resyncs++;
}

static const service test_service = {.name = "test", .resync = on_resync};
static const service *const services[] = {&test_service};

static void on_item(worker *w, const mbox_item *it)
{
	calls[w->index]++;
	if (n_order < 64)
		order[n_order++] = it->u64;
}

static void post(worker *from, enum mbox_policy p, uint64_t account, uint32_t device, uint64_t n)
{
	uint8_t byte = 1;
	TEST_EQ_INT(worker__post(from, &test_service, p, account, device, n, &byte, 1, on_item), PARLEY_OK);
}

/* Runs a loop until its mailbox wake-up was handled. */
static void turn(int i)
{
	uv_run(&loops[i], UV_RUN_NOWAIT);
	uv_run(&loops[i], UV_RUN_NOWAIT);
}

static void test_policies(void)
{
	worker *w0 = &d->workers[0], *w1 = &d->workers[1];
	registry__add(d->reg, 7, 1, 1, NULL); /* account 7, device 1 is connected on loop 1 */
	int64_t dropped = metrics__get(METRIC_MAILBOX_DROPPED);
	for (uint64_t k = 1; k <= 10; k++)
		post(w0, MBOX_DROP, 7, 1, k);
	TEST_EQ_INT(w1->n, 4); /* the bound */
	TEST_EQ_INT(metrics__get(METRIC_MAILBOX_DROPPED) - dropped, 6);
	post(w0, MBOX_MUST, 7, 1, 100);
	post(w0, MBOX_MUST, 7, 1, 101);
	TEST_EQ_INT(w1->n, 6); /* a removal notice is never dropped */
	post(w0, MBOX_RESYNC, 7, 1, 200);
	TEST_EQ_INT(w1->n, 6);
	TEST_EQ_INT(atomic_load(&w1->resync), 1);
	TEST_EQ_INT(calls[1], 0); /* nothing runs before loop 1 turns */
	turn(1);
	TEST_EQ_INT(calls[1], 6);
	TEST_EQ_INT(resyncs, 1);
	TEST_EQ_INT(w1->n, 0);
	static const uint64_t want[] = {1, 2, 3, 4, 100, 101};
	TEST_EQ_INT(n_order, 6);
	TEST_EQ_MEM(order, want, sizeof(want)); /* in post order */
	/* room again: items queue normally */
	post(w0, MBOX_RESYNC, 7, 1, 300);
	TEST_EQ_INT(w1->n, 1);
	turn(1);
	TEST_EQ_INT(calls[1], 7);
	TEST_EQ_INT(resyncs, 1);
	registry__remove(d->reg, 7, 1, 1, NULL);
}

static void test_self_and_targets(void)
{
	worker *w0 = &d->workers[0], *w1 = &d->workers[1];
	calls[0] = calls[1] = 0;
	registry__add(d->reg, 8, 1, 0, NULL);
	post(w0, MBOX_DROP, 8, 1, 1);
	TEST_EQ_INT(calls[0], 1); /* same loop: at once, no queueing */
	TEST_EQ_INT(w0->n, 0);
	post(w0, MBOX_DROP, 9, 1, 1); /* nobody connected: nothing anywhere */
	TEST_EQ_INT(w0->n + w1->n, 0);
	/* device 0 reaches every loop holding any device of the account, once per loop */
	registry__add(d->reg, 10, 1, 1, NULL);
	registry__add(d->reg, 10, 2, 1, NULL);
	registry__add(d->reg, 10, 3, 0, NULL);
	post(w0, MBOX_DROP, 10, 0, 1);
	TEST_EQ_INT(calls[0], 2);
	TEST_EQ_INT(w1->n, 1);
	post(w0, MBOX_DROP, 10, 2, 1); /* one device: only its loop */
	TEST_EQ_INT(calls[0], 2);
	TEST_EQ_INT(w1->n, 2);
	turn(1);
	TEST_EQ_INT(calls[1], 2);
	registry__remove(d->reg, 8, 1, 0, NULL);
	registry__remove(d->reg, 10, 1, 1, NULL);
	registry__remove(d->reg, 10, 2, 1, NULL);
	registry__remove(d->reg, 10, 3, 0, NULL);
}

static void count_link(struct link *l, void *arg)
{
	(*(int *)arg)++;
}

static void test_index(void)
{
	worker *w = &d->workers[1];
	enum { N = 10000 };
	struct link *ls = calloc(N + 3, sizeof(*ls));
	for (size_t i = 0; i < N + 3; i++) {
		ls[i].w = w;
		ls[i].authenticated = 1;
		ls[i].account = i < N ? 1000 + i : 42;
		ls[i].device = i < N ? 1 : (uint32_t)(i - N + 1) / 2 + 1; /* account 42: devices 1, 2, 2 */
		TEST_EQ_INT(worker__index_add(w, &ls[i]), PARLEY_OK);
	}
	TEST_EQ_INT(w->nlinks, N + 3);
	TEST_CHECK(w->nbuckets >= w->nlinks); /* load factor <= 1: a lookup is O(1) */
	size_t longest = 0;
	for (size_t b = 0; b < w->nbuckets; b++) {
		size_t len = 0;
		for (struct link *l = w->buckets[b]; l != NULL; l = l->index_next)
			len++;
		if (len > longest)
			longest = len;
	}
	TEST_CHECK(longest <= 12);
	int n = 0;
	worker__each_link(w, 42, 0, count_link, &n);
	TEST_EQ_INT(n, 3);
	n = 0;
	worker__each_link(w, 42, 2, count_link, &n);
	TEST_EQ_INT(n, 2);
	n = 0;
	worker__each_link(w, 1000 + 17, 0, count_link, &n);
	TEST_EQ_INT(n, 1);
	n = 0;
	worker__each_authenticated(w, count_link, &n);
	TEST_EQ_INT(n, N + 3);
	for (size_t i = 0; i < N + 3; i++)
		worker__index_remove(w, &ls[i]);
	TEST_EQ_INT(w->nlinks, 0);
	n = 0;
	worker__each_link(w, 42, 0, count_link, &n);
	TEST_EQ_INT(n, 0);
	free(ls);
}

/* The registry grows with the number of connected devices and keeps the presence edges right. */
static void test_registry(void)
{
	enum { N = 5000 };
	for (uint64_t a = 1; a <= N; a++) {
		TEST_EQ_INT(registry__add(d->reg, 100000 + a, 1, (int)(a % 2), NULL), 1); /* came online */
		TEST_EQ_INT(registry__add(d->reg, 100000 + a, 2, 1, NULL), 0);
	}
	int wrong = 0;
	for (uint64_t a = 1; a <= N; a++) {
		uint64_t want = a % 2 ? 2 : 3; /* device 1 on loop a % 2, device 2 on loop 1 */
		wrong += registry__workers(d->reg, 100000 + a, 0) != want;
		wrong += registry__workers(d->reg, 100000 + a, 2) != 2;
	}
	TEST_EQ_INT(wrong, 0);
	for (uint64_t a = 1; a <= N; a++) {
		TEST_EQ_INT(registry__remove(d->reg, 100000 + a, 2, 1, NULL), 0);
		TEST_EQ_INT(registry__remove(d->reg, 100000 + a, 1, (int)(a % 2), NULL), 1); /* went offline */
	}
	TEST_EQ_INT(registry__workers(d->reg, 100001, 0), 0);
}

static int store_done;

static void on_store(void *arg, int status, const void *result)
{
	store_done = status == PARLEY_E_NO_SUCH_ACCOUNT ? 1 : -1;
}

/* Store completions come through the worker's one wake-up, on its loop. */
static void test_store_wake(void)
{
	store_job *j = store__job_new(STORE_OP_GET_ACCOUNT);
	store__job_set_handle(j, "nobody");
	TEST_EQ_INT(store__submit(worker__store(&d->workers[1]), j, on_store, NULL), PARLEY_OK);
	for (int i = 0; i < 1000 && store_done == 0; i++)
		uv_run(&loops[1], UV_RUN_ONCE);
	TEST_EQ_INT(store_done, 1);
}

static void count_async(uv_handle_t *h, void *arg)
{
	if (h->type == UV_ASYNC && !uv_is_closing(h))
		(*(int *)arg)++;
}

static void test_handles(void)
{
	int n = 0;
	uv_walk(&loops[0], count_async, &n);
	TEST_EQ_INT(n, 1); /* the worker's one wake-up (store + mailbox); the network adds its own */
}

int main(void)
{
	char dir[] = "/tmp/parley-worker-XXXXXX", path[64];
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/w.db", dir);
	store_config sc = {.path = path};
	if (store__open(&sc, &st) != PARLEY_OK)
		return 1;
	config__defaults(&pc);
	pc.workers = 2;
	pc.mailbox_items = 4; /* below the table's minimum on purpose: the bound is what is tested */
	if (dispatch__new(st, &pc, services, 1, &d) != PARLEY_OK)
		return 1;
	net_handler h = dispatch__handler(d);
	for (int i = 0; i < 2; i++) {
		uv_loop_init(&loops[i]);
		if (h.on_worker_start(h.ctx, i, &loops[i]) != PARLEY_OK)
			return 1;
	}
	TEST_RUN(test_policies);
	TEST_RUN(test_self_and_targets);
	TEST_RUN(test_index);
	TEST_RUN(test_registry);
	TEST_RUN(test_store_wake);
	TEST_RUN(test_handles);
	for (int i = 0; i < 2; i++) {
		h.on_worker_stop(h.ctx, i, &loops[i]);
		uv_run(&loops[i], UV_RUN_DEFAULT);
		TEST_EQ_INT(uv_loop_close(&loops[i]), 0);
	}
	dispatch__free(d);
	store__close(st);
	test_remove_tree(dir);
	TEST_EXIT();
}
