/* server/cluster against a real nats-server (tests/tools/nats.sh; exit 77 when it is not installed):
 * two (then three) bus instances in one process, each with hooks that record what reaches them.
 *
 * Checked: an item for account X reaches the instance subscribed to X with every field intact, not the
 * other; an instance ignores its own items; malformed / unknown-handler / oversized / misrouted
 * payloads published raw with libnats are dropped and counted; an oversized MBOX_RESYNC item travels
 * as a resync notice; unsubscribing stops delivery; the resync after subscribe is posted; a
 * subscription over bus_max_pending drops, counts and asks for a resync; presence edges are
 * cluster-wide only, a joining node learns the others' online sets, and a silent node's accounts go
 * offline after bus_node_timeout_ms; readiness follows the connection, a reconnect is reported, and a node
 * started while NATS is down catches up once it is back. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include <parley/error.h>

#include "cluster/bus.h"
#include "test.h"

#define MAX_ITEM 1024u
#define ACC_X 1001u
#define ACC_Y 1002u
#define ACC_Z 1003u
#define ACC_P 1004u
#define ACC_Q 1005u

struct rec {
	pthread_mutex_t mu;
	int n_items;
	cluster_item last;
	uint8_t data[MAX_ITEM];
	uint64_t resyncs[256];
	int n_resync;
	int block; /* on_item waits while set (a slow consumer) */
	int reconnected;
	int offline; /* on_offline calls */
	uint64_t offline_account;
	char offline_handle[40];
};

static int valid(void *ctx, unsigned service, unsigned handler, unsigned policy)
{
	(void)ctx;
	return service < 2 && handler < 3 && policy <= 2;
}

static void on_item(void *ctx, const cluster_item *it)
{
	struct rec *r = ctx;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		int b = r->block;
		pthread_mutex_unlock(&r->mu);
		if (!b)
			break;
		usleep(5000);
	}
	pthread_mutex_lock(&r->mu);
	r->n_items++;
	r->last = *it;
	memcpy(r->data, it->data, it->len < MAX_ITEM ? it->len : MAX_ITEM);
	r->last.data = r->data;
	pthread_mutex_unlock(&r->mu);
}

static void on_resync(void *ctx, uint64_t account)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	if (r->n_resync < 256)
		r->resyncs[r->n_resync++] = account;
	pthread_mutex_unlock(&r->mu);
}

static void on_reconnected(void *ctx)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->reconnected++;
	pthread_mutex_unlock(&r->mu);
}

static void on_offline(void *ctx, uint64_t account, const char *handle)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->offline++;
	r->offline_account = account;
	snprintf(r->offline_handle, sizeof(r->offline_handle), "%s", handle);
	pthread_mutex_unlock(&r->mu);
}

static int offlines(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	int n = r->offline;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static int items(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	int n = r->n_items;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static int resynced(struct rec *r, uint64_t account)
{
	int n = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n_resync; i++)
		n += r->resyncs[i] == account;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static uint64_t dropped(cluster *c)
{
	cluster_stats s;
	cluster__stats(c, &s);
	return s.dropped;
}

static unsigned subscriptions(cluster *c)
{
	cluster_stats s;
	cluster__stats(c, &s);
	return s.subscriptions;
}

/* polls cond every 10 ms for up to ms; evaluates to whether it held */
#define WAIT_FOR(cond, ms)                                                                         \
	({                                                                                         \
		int wait__ok = 0;                                                                  \
		for (int wait__i = 0; wait__i < (ms) / 10; wait__i++) {                            \
			if (cond) {                                                                \
				wait__ok = 1;                                                      \
				break;                                                             \
			}                                                                          \
			usleep(10000);                                                             \
		}                                                                                  \
		wait__ok || (cond);                                                                \
	})

static char url[256];
static char nats_dir[256];
static struct rec ra, rb, rc3;
static cluster *A, *B;

static cluster *open_bus(struct rec *r)
{
	cluster_config cc;
	memset(&cc, 0, sizeof(cc));
	snprintf(cc.url, sizeof(cc.url), "%s", url);
	cc.heartbeat_ms = 100;
	cc.node_timeout_ms = 600;
	cc.max_pending = 16;
	cc.max_item_bytes = MAX_ITEM;
	cc.connect_timeout_ms = 1000;
	cluster_hooks h = {r, valid, on_item, on_resync, on_reconnected, on_offline};
	pthread_mutex_init(&r->mu, NULL);
	cluster *c = NULL;
	TEST_EQ_INT(cluster__open(&cc, &h, &c), PARLEY_OK);
	TEST_CHECK(c != NULL && WAIT_FOR(cluster__ready(c), 5000));
	return c;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* a raw item as another node would publish it */
static size_t raw_item(uint8_t *m, uint8_t version, uint8_t handler, uint64_t account, uint32_t len_field,
		       size_t data_len)
{
	m[0] = version;
	m[1] = 1;
	m[2] = handler;
	m[3] = 1;
	put32(m + 4, 0);
	put64(m + 8, 0x5eed);
	put64(m + 16, account);
	put64(m + 24, 42);
	put32(m + 32, len_field);
	memset(m + CLUSTER_ITEM_HEADER, 'r', data_len);
	return CLUSTER_ITEM_HEADER + data_len;
}

static void test_items(void)
{
	/* A takes an interest in X: subscribed, then the resync that covers the SUB's race */
	TEST_EQ_INT(cluster__local_edge(A, ACC_X, NULL, 1), 1);
	TEST_CHECK(WAIT_FOR(resynced(&ra, ACC_X) == 1, 3000));
	TEST_EQ_INT(resynced(&rb, ACC_X), 0);

	const uint8_t payload[] = "an envelope frame";
	cluster_item it = {.account = ACC_X,
			   .device = 7,
			   .service = 1,
			   .handler = 2,
			   .policy = 1,
			   .u64 = 0x1122334455667788ull,
			   .len = sizeof(payload),
			   .data = payload};
	TEST_EQ_INT(cluster__publish(B, &it), PARLEY_OK);
	TEST_CHECK(WAIT_FOR(items(&ra) == 1, 3000));
	pthread_mutex_lock(&ra.mu);
	TEST_CHECK(ra.last.origin == cluster__node_id(B));
	TEST_CHECK(ra.last.account == ACC_X);
	TEST_EQ_INT(ra.last.device, 7);
	TEST_EQ_INT(ra.last.service, 1);
	TEST_EQ_INT(ra.last.handler, 2);
	TEST_EQ_INT(ra.last.policy, 1);
	TEST_CHECK(ra.last.u64 == 0x1122334455667788ull);
	TEST_EQ_INT(ra.last.len, sizeof(payload));
	TEST_EQ_MEM(ra.data, payload, sizeof(payload));
	pthread_mutex_unlock(&ra.mu);

	/* not to the instance that is not subscribed, nor for an account A does not hold */
	it.account = ACC_Y;
	TEST_EQ_INT(cluster__publish(B, &it), PARLEY_OK);
	/* A's own item for X comes back to it (it is subscribed) and is ignored */
	it.account = ACC_X;
	TEST_EQ_INT(cluster__publish(A, &it), PARLEY_OK);
	usleep(300000);
	TEST_EQ_INT(items(&ra), 1);
	TEST_EQ_INT(items(&rb), 0);
}

static void test_malformed(void)
{
	natsConnection *nc = NULL;
	TEST_EQ_INT(natsConnection_ConnectTo(&nc, url), NATS_OK);
	if (nc == NULL)
		return;
	static uint8_t m[CLUSTER_ITEM_HEADER + 2 * MAX_ITEM];
	char subj[64];
	snprintf(subj, sizeof(subj), "parley.a.%u", ACC_X);
	int before = items(&ra);
	struct {
		const char *what;
		size_t len;
	} cases[8];
	int n = 0;
	cases[n].what = "truncated header", cases[n++].len = 10;
	raw_item(m, 1, 0, ACC_X, 5, 5);
	cases[n].what = "length field beyond the data", cases[n++].len = CLUSTER_ITEM_HEADER + 4;
	for (int i = 0; i < n; i++) {
		uint64_t d0 = dropped(A);
		natsConnection_Publish(nc, subj, m, (int)cases[i].len);
		natsConnection_Flush(nc);
		TEST_CHECK(WAIT_FOR(dropped(A) == d0 + 1, 3000));
		if (dropped(A) != d0 + 1)
			fprintf(stderr, "# %s: not dropped\n", cases[i].what);
	}
	/* well-formed frames that must still be refused */
	struct {
		uint8_t version, handler;
		uint64_t account;
		size_t len;
	} bad[] = {
		{2, 0, ACC_X, 4},            /* unknown version */
		{1, 9, ACC_X, 4},            /* unknown handler */
		{1, 0, ACC_Y, 4},            /* header names another account than the subject */
		{1, 0, ACC_X, MAX_ITEM + 1}, /* over bus_max_item_bytes */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t d0 = dropped(A);
		size_t len = raw_item(m, bad[i].version, bad[i].handler, bad[i].account, (uint32_t)bad[i].len, bad[i].len);
		natsConnection_Publish(nc, subj, m, (int)len);
		natsConnection_Flush(nc);
		TEST_CHECK(WAIT_FOR(dropped(A) == d0 + 1, 3000));
		if (dropped(A) != d0 + 1)
			fprintf(stderr, "# bad item %zu: not dropped\n", i);
	}
	/* and a good raw one passes (the cases above failed for their flaw alone) */
	size_t len = raw_item(m, 1, 0, ACC_X, 4, 4);
	natsConnection_Publish(nc, subj, m, (int)len);
	natsConnection_Flush(nc);
	TEST_CHECK(WAIT_FOR(items(&ra) == before + 1, 3000));
	natsConnection_Destroy(nc);
}

static void test_oversized(void)
{
	static uint8_t big[MAX_ITEM + 1];
	cluster_item it = {.account = ACC_X, .device = 1, .service = 0, .handler = 0, .policy = 0, .len = sizeof(big),
			   .data = big};
	int before = items(&ra), rs = resynced(&ra, ACC_X);
	/* an ephemeral push beyond the bound is refused */
	TEST_EQ_INT(cluster__publish(B, &it), PARLEY_E_TOO_LARGE);
	/* a durable one becomes a resync notice */
	it.policy = 1;
	TEST_EQ_INT(cluster__publish(B, &it), PARLEY_E_TOO_LARGE);
	TEST_CHECK(WAIT_FOR(resynced(&ra, ACC_X) == rs + 1, 3000));
	usleep(200000);
	TEST_EQ_INT(items(&ra), before);
}

static void test_unsubscribe(void)
{
	TEST_EQ_INT(cluster__local_edge(A, ACC_X, NULL, 0), 1);
	TEST_CHECK(WAIT_FOR(subscriptions(A) == 0, 3000));
	usleep(100000); /* the UNSUB reaches the server */
	int before = items(&ra);
	const uint8_t d[] = "late";
	cluster_item it = {.account = ACC_X, .device = 1, .service = 0, .handler = 0, .policy = 0, .len = 4, .data = d};
	TEST_EQ_INT(cluster__publish(B, &it), PARLEY_OK);
	usleep(300000);
	TEST_EQ_INT(items(&ra), before);
}

static void test_max_pending(void)
{
	TEST_EQ_INT(cluster__local_edge(A, ACC_Z, NULL, 1), 1);
	TEST_CHECK(WAIT_FOR(resynced(&ra, ACC_Z) == 1, 3000));
	uint64_t d0 = dropped(A);
	pthread_mutex_lock(&ra.mu);
	ra.block = 1;
	pthread_mutex_unlock(&ra.mu);
	const uint8_t d[] = "burst";
	cluster_item it = {.account = ACC_Z, .device = 1, .service = 0, .handler = 0, .policy = 1, .len = 5, .data = d};
	for (int i = 0; i < 200; i++)
		(void)cluster__publish(B, &it);
	/* libnats drops beyond 16 pending and reports a slow consumer: counted, and Z is read again */
	int over = WAIT_FOR(dropped(A) > d0 && resynced(&ra, ACC_Z) >= 2, 5000);
	pthread_mutex_lock(&ra.mu);
	ra.block = 0;
	pthread_mutex_unlock(&ra.mu);
	TEST_CHECK(over);
	usleep(300000);
	TEST_CHECK(items(&ra) < 200);
	TEST_EQ_INT(cluster__local_edge(A, ACC_Z, NULL, 0), 1);
}

static void test_presence(void)
{
	/* online on A: a cluster-wide edge; B learns it */
	TEST_EQ_INT(cluster__local_edge(A, ACC_P, NULL, 1), 1);
	TEST_CHECK(WAIT_FOR(cluster__online(B, ACC_P) == 1, 3000));
	TEST_EQ_INT(cluster__remote_nodes(B, ACC_P), 1);
	/* then on B: not an edge of the cluster */
	TEST_EQ_INT(cluster__local_edge(B, ACC_P, "pat", 1), 0);
	TEST_CHECK(WAIT_FOR(cluster__remote_nodes(A, ACC_P) == 1, 3000));
	/* offline on A: still online on B, so no edge, and A still sees it online */
	TEST_EQ_INT(cluster__local_edge(A, ACC_P, NULL, 0), 0);
	TEST_CHECK(WAIT_FOR(cluster__remote_nodes(B, ACC_P) == 0, 3000));
	TEST_EQ_INT(cluster__online(A, ACC_P), 1);
	TEST_EQ_INT(cluster__online(B, ACC_P), 1);

	/* a node that joins now learns P from B's snapshot */
	cluster *C = open_bus(&rc3);
	TEST_CHECK(C != NULL && WAIT_FOR(cluster__online(C, ACC_P) == 1, 3000));

	/* B stops heartbeating (gone without a word): P stays online until bus_node_timeout_ms, then not */
	cluster__close(B);
	B = NULL;
	TEST_EQ_INT(cluster__online(A, ACC_P), 1);
	usleep(200000);
	TEST_EQ_INT(cluster__online(A, ACC_P), 1);
	TEST_CHECK(WAIT_FOR(cluster__online(A, ACC_P) == 0, 3000));
	TEST_CHECK(WAIT_FOR(cluster__online(C, ACC_P) == 0, 3000));
	/* and its contacts are told once: by the survivor with the smaller id, with the handle B gave */
	TEST_CHECK(WAIT_FOR(offlines(&ra) + offlines(&rc3) == 1, 3000));
	usleep(300000);
	TEST_EQ_INT(offlines(&ra) + offlines(&rc3), 1);
	struct rec *teller = cluster__node_id(A) < cluster__node_id(C) ? &ra : &rc3;
	TEST_EQ_INT(offlines(teller), 1);
	pthread_mutex_lock(&teller->mu);
	TEST_CHECK(teller->offline_account == ACC_P);
	TEST_EQ_STR(teller->offline_handle, "pat");
	pthread_mutex_unlock(&teller->mu);
	/* and the next edge on A is a cluster-wide one again */
	TEST_EQ_INT(cluster__local_edge(A, ACC_P, NULL, 1), 1);
	TEST_EQ_INT(cluster__local_edge(A, ACC_P, NULL, 0), 1);
	cluster__close(C);
}

static int nats(const char *cmd);

static uint64_t reconnects(cluster *c)
{
	cluster_stats s;
	cluster__stats(c, &s);
	return s.reconnects;
}

/* NATS goes away: not ready; comes back: ready again, and the owner is told to catch up. A node started
 * while NATS is down starts, keeps trying, and its subscription changes of the meantime (one per
 * account, whatever the churn) run once it connects. */
static void test_reconnect(void)
{
	struct rec re;
	memset(&re, 0, sizeof(re));
	TEST_EQ_INT(nats("kill"), 0);
	TEST_CHECK(WAIT_FOR(!cluster__ready(A), 3000));

	cluster_config cc;
	memset(&cc, 0, sizeof(cc));
	snprintf(cc.url, sizeof(cc.url), "%s", url);
	cc.heartbeat_ms = 100;
	cc.node_timeout_ms = 600;
	cc.max_pending = 16;
	cc.max_item_bytes = MAX_ITEM;
	cc.connect_timeout_ms = 1000;
	cluster_hooks h = {&re, valid, on_item, on_resync, on_reconnected, on_offline};
	pthread_mutex_init(&re.mu, NULL);
	cluster *E = NULL;
	TEST_EQ_INT(cluster__open(&cc, &h, &E), PARLEY_OK);
	if (E == NULL)
		return;
	TEST_EQ_INT(cluster__ready(E), 0);
	for (int i = 0; i < 50; i++) {
		TEST_EQ_INT(cluster__local_edge(E, ACC_Q, NULL, 1), 1);
		TEST_EQ_INT(cluster__local_edge(E, ACC_Q, NULL, 0), 1);
	}
	TEST_EQ_INT(cluster__local_edge(E, ACC_Q, NULL, 1), 1);

	TEST_EQ_INT(nats("restart"), 0);
	TEST_CHECK(WAIT_FOR(cluster__ready(A), 5000));
	TEST_CHECK(WAIT_FOR(reconnects(A) == 1, 3000));
	pthread_mutex_lock(&ra.mu);
	TEST_EQ_INT(ra.reconnected, 1);
	pthread_mutex_unlock(&ra.mu);
	TEST_CHECK(WAIT_FOR(cluster__ready(E), 5000));
	TEST_CHECK(WAIT_FOR(resynced(&re, ACC_Q) == 1, 3000));
	TEST_EQ_INT(subscriptions(E), 1);
	usleep(200000);
	TEST_EQ_INT(resynced(&re, ACC_Q), 1);
	cluster__close(E);
	pthread_mutex_destroy(&re.mu);
}

static int nats(const char *cmd)
{
	char line[768];
	const char *sh = getenv("NATS_SH");
	snprintf(line, sizeof(line), "'%s' %s '%s'%s", sh ? sh : "tests/tools/nats.sh", cmd, nats_dir,
		 strcmp(cmd, "start") == 0 ? " >/dev/null" : "");
	int rc = system(line);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

int main(void)
{
	snprintf(nats_dir, sizeof(nats_dir), "/tmp/parley-test-bus-%d", (int)getpid());
	int rc = nats("start");
	if (rc == 77) {
		printf("# nats-server not installed: skipped\n");
		return 77;
	}
	if (rc != 0) {
		fprintf(stderr, "nats.sh start failed\n");
		return 1;
	}
	char path[300];
	snprintf(path, sizeof(path), "%s/url", nats_dir);
	FILE *f = fopen(path, "r");
	if (f == NULL || fgets(url, sizeof(url), f) == NULL) {
		fprintf(stderr, "no url\n");
		nats("stop");
		return 1;
	}
	fclose(f);
	url[strcspn(url, "\n")] = '\0';

	A = open_bus(&ra);
	B = open_bus(&rb);
	if (A != NULL && B != NULL) {
		TEST_CHECK(cluster__node_id(A) != cluster__node_id(B));
		TEST_RUN(test_items);
		TEST_RUN(test_malformed);
		TEST_RUN(test_oversized);
		TEST_RUN(test_unsubscribe);
		TEST_RUN(test_max_pending);
		TEST_RUN(test_presence);
		TEST_RUN(test_reconnect);
	}
	cluster__close(A);
	cluster__close(B);
	nats("stop");
	TEST_EXIT();
}
