/* The dispatcher's side of the bus (server/dispatch/remote.c) without NATS: the check of the services'
 * mailbox lists at start-up, the validation of (service, handler, policy), an item from the bus reaching
 * the handler its indices name on the loop that holds the account (through the mailbox, never inline),
 * a resync of one account reaching only that account's links (service.resync_link), a reconnect
 * resyncing every loop, and the registry's edge hook (called on edges only, its answer returned). */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "dispatch/dispatch_internal.h"
#include "test.h"

static store *st;
static dispatch *d;
static parleyd_config pc;
static uv_loop_t loops[2];
static cluster_hooks hooks;

static int calls_a0, calls_a1[2], resync_links, resyncs;
static uint64_t last_u64;
static char last_data[16];
static struct link *last_link;

static void fn_a0(worker *w, const mbox_item *it)
{
	(void)w;
	(void)it;
	calls_a0++;
}

static void fn_a1(worker *w, const mbox_item *it)
{
	calls_a1[w->index]++;
	last_u64 = it->u64;
	memcpy(last_data, it->data, it->len < sizeof(last_data) ? it->len : sizeof(last_data));
}

static void on_resync_link(struct link *l, void *state)
{
	(void)state;
	resync_links++;
	last_link = l;
}

static void on_resync(worker *w, void *state)
{
	(void)w;
	(void)state;
	resyncs++;
}

static const mbox_fn mailbox_a[] = {fn_a0, fn_a1};
static const service svc_a = {
	.name = "a", SERVICE_MAILBOX(mailbox_a), .resync_link = on_resync_link, .resync = on_resync};
static const service svc_b = {.name = "b"};
static const service *const services[] = {&svc_a, &svc_b};

static void turn(int i)
{
	uv_run(&loops[i], UV_RUN_NOWAIT);
	uv_run(&loops[i], UV_RUN_NOWAIT);
}

static void test_check(void)
{
	static const mbox_fn twice[] = {fn_a0, fn_a0};
	static const mbox_fn null[] = {NULL};
	static const service bad1 = {.name = "twice", SERVICE_MAILBOX(twice)};
	static const service bad2 = {.name = "null", SERVICE_MAILBOX(null)};
	const service *const l1[] = {&bad1}, *const l2[] = {&bad2};
	dispatch *x = NULL;
	TEST_EQ_INT(dispatch__new(st, &pc, l1, 1, &x), PARLEY_E_CONFIG);
	TEST_EQ_INT(dispatch__new(st, &pc, l2, 1, &x), PARLEY_E_CONFIG);
	TEST_CHECK(x == NULL);
}

static void test_valid(void)
{
	TEST_EQ_INT(hooks.valid(hooks.ctx, 0, 0, MBOX_DROP), 1);
	TEST_EQ_INT(hooks.valid(hooks.ctx, 0, 1, MBOX_MUST), 1);
	TEST_EQ_INT(hooks.valid(hooks.ctx, 0, 2, MBOX_DROP), 0); /* a has two handlers */
	TEST_EQ_INT(hooks.valid(hooks.ctx, 1, 0, MBOX_DROP), 0); /* b lists none */
	TEST_EQ_INT(hooks.valid(hooks.ctx, 2, 0, MBOX_DROP), 0); /* no third service */
	TEST_EQ_INT(hooks.valid(hooks.ctx, 0, 0, MBOX_MUST + 1), 0);
}

static void test_item(void)
{
	registry__add(d->reg, 7, 1, 1, NULL); /* account 7 device 1 on loop 1 */
	const cluster_item it = {.origin = 5, .account = 7, .device = 1, .service = 0, .handler = 1,
				 .policy = MBOX_RESYNC, .u64 = 99, .len = 3, .data = (const uint8_t *)"xyz"};
	hooks.on_item(hooks.ctx, &it);
	TEST_EQ_INT(calls_a1[1], 0); /* queued, not run on the bus's thread */
	TEST_EQ_INT(d->workers[1].n, 1);
	TEST_EQ_INT(d->workers[0].n, 0);
	turn(1);
	turn(0);
	TEST_EQ_INT(calls_a1[1], 1);
	TEST_EQ_INT(calls_a1[0], 0);
	TEST_EQ_INT(calls_a0, 0);
	TEST_CHECK(last_u64 == 99);
	TEST_EQ_MEM(last_data, "xyz", 3);
	/* another device of the account is not connected here: nothing queued */
	cluster_item other = it;
	other.device = 2;
	hooks.on_item(hooks.ctx, &other);
	TEST_EQ_INT(d->workers[1].n, 0);
	registry__remove(d->reg, 7, 1, 1, NULL);
}

static void test_resync(void)
{
	worker *w = &d->workers[1];
	struct link *ls = calloc(2, sizeof(*ls));
	for (int i = 0; i < 2; i++) {
		ls[i].w = w;
		ls[i].authenticated = 1;
		ls[i].account = 70 + (uint64_t)i;
		ls[i].device = 1;
		TEST_EQ_INT(worker__index_add(w, &ls[i]), PARLEY_OK);
		registry__add(d->reg, ls[i].account, 1, 1, NULL);
	}
	hooks.on_resync(hooks.ctx, 71);
	turn(1);
	TEST_EQ_INT(resync_links, 1);
	TEST_CHECK(last_link == &ls[1]);
	TEST_EQ_INT(resyncs, 0); /* one account, not the whole loop */

	hooks.on_reconnected(hooks.ctx);
	turn(0);
	turn(1);
	TEST_EQ_INT(resyncs, 2); /* every loop catches up */
	for (int i = 0; i < 2; i++) {
		worker__index_remove(w, &ls[i]);
		registry__remove(d->reg, ls[i].account, 1, 1, NULL);
	}
	free(ls);
}

static int edge_calls, edge_answer;
static uint64_t edge_account;
static int edge_online;

static char edge_handle[40];

static int edge(void *ctx, uint64_t account, const char *handle, int online)
{
	(void)ctx;
	edge_calls++;
	snprintf(edge_handle, sizeof(edge_handle), "%s", handle != NULL ? handle : "");
	edge_account = account;
	edge_online = online;
	return edge_answer;
}

static void test_edge_hook(void)
{
	registry__set_edge_hook(d->reg, edge, NULL);
	edge_answer = 0; /* "another node holds it": not a cluster-wide edge */
	TEST_EQ_INT(registry__add(d->reg, 900, 1, 0, "h900"), 0);
	TEST_EQ_INT(edge_calls, 1);
	TEST_CHECK(edge_account == 900 && edge_online == 1);
	TEST_EQ_STR(edge_handle, "h900");
	TEST_EQ_INT(registry__add(d->reg, 900, 2, 1, NULL), 0); /* no edge: no call */
	TEST_EQ_INT(edge_calls, 1);
	TEST_EQ_INT(registry__remove(d->reg, 900, 2, 1, NULL), 0);
	TEST_EQ_INT(edge_calls, 1);
	edge_answer = 1;
	TEST_EQ_INT(registry__remove(d->reg, 900, 1, 0, NULL), 1);
	TEST_EQ_INT(edge_calls, 2);
	TEST_CHECK(edge_account == 900 && edge_online == 0);
	registry__set_edge_hook(d->reg, NULL, NULL);
	TEST_EQ_INT(registry__add(d->reg, 901, 1, 0, NULL), 1);
	TEST_EQ_INT(registry__remove(d->reg, 901, 1, 0, NULL), 1);
	TEST_EQ_INT(edge_calls, 2);
}

int main(void)
{
	char dir[] = "/tmp/parley-remote-XXXXXX", path[64];
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/r.db", dir);
	store_config sc = {.path = path};
	if (store__open(&sc, &st) != PARLEY_OK)
		return 1;
	config__defaults(&pc);
	pc.workers = 2;
	TEST_RUN(test_check);
	if (dispatch__new(st, &pc, services, 2, &d) != PARLEY_OK)
		return 1;
	dispatch__bus_hooks(d, &hooks);
	net_handler h = dispatch__handler(d);
	for (int i = 0; i < 2; i++) {
		uv_loop_init(&loops[i]);
		if (h.on_worker_start(h.ctx, i, &loops[i]) != PARLEY_OK)
			return 1;
	}
	TEST_RUN(test_valid);
	TEST_RUN(test_item);
	TEST_RUN(test_resync);
	TEST_RUN(test_edge_hook);
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
