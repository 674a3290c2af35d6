/* parley-bench relay's bookkeeping: the message header survives a round trip, the delivery bitmaps
 * catch duplicates and losses, senders pair with receivers as documented, the open-loop schedule
 * spreads the global rate over the senders, the phases' MAC catches corrupted and misrouted bodies,
 * the state file survives a round trip (and a cut-short one is refused), and a send phase whose
 * senders all lost their connections ends at once and reports its real length. Several nodes: the
 * placement is round-robin, --cross-node puts every receiver on another node than its sender while
 * keeping the nodes balanced, the --url list parser splits and refuses as documented, and the
 * --before-send / --ready-file hooks run before the first send (a failing command sends nothing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <uv.h>

#include <parley/error.h>

#include "bench.h"
#include "relay.h"
#include "tests/unit/test.h"

static void test_header(void)
{
	uint8_t buf[100];
	unsigned sender;
	uint64_t seq, t, before = uv_hrtime(), stamp;

	stamp = relay__fill(buf, sizeof(buf), 7, 123456789012ull);
	TEST_EQ_INT(relay__parse(buf, sizeof(buf), &sender, &seq, &t), 0);
	TEST_EQ_INT(sender, 7);
	TEST_EQ_INT(seq, 123456789012ull);
	TEST_EQ_INT(t, stamp);
	TEST_CHECK(t >= before);
	TEST_EQ_INT(relay__parse(buf, RELAY_HDR - 1, &sender, &seq, &t), -1); /* too short */
	buf[0] = 'X';
	TEST_EQ_INT(relay__parse(buf, sizeof(buf), &sender, &seq, &t), -1); /* wrong magic */
}

static void test_bits(void)
{
	relay_bits b = {0};

	TEST_EQ_INT(relay__bits_get(&b, 0), 0);
	TEST_EQ_INT(relay__bits_set(&b, 0), 0);
	TEST_EQ_INT(relay__bits_set(&b, 0), 1); /* duplicate */
	TEST_EQ_INT(relay__bits_set(&b, 1000000), 0); /* grows */
	TEST_EQ_INT(relay__bits_get(&b, 1000000), 1);
	TEST_EQ_INT(relay__bits_get(&b, 999999), 0);
	TEST_EQ_INT(relay__bits_get(&b, 0), 1);
	relay__bits_free(&b);
}

static void test_pairs(void)
{
	relay_cfg cfg = {.conns = 10, .senders = 4};

	TEST_EQ_INT(relay__receiver_of(&cfg, 0), 4);
	TEST_EQ_INT(relay__receiver_of(&cfg, 3), 7);
	TEST_CHECK(relay__is_sender(&cfg, 3) && !relay__is_receiver(&cfg, 3));
	TEST_CHECK(!relay__is_sender(&cfg, 4) && relay__is_receiver(&cfg, 4));
	cfg.senders = 8; /* more senders than receivers: round robin */
	TEST_EQ_INT(relay__receiver_of(&cfg, 7), 9);
	cfg.senders = 10; /* everyone sends: a ring */
	TEST_EQ_INT(relay__receiver_of(&cfg, 9), 0);
	TEST_CHECK(relay__is_sender(&cfg, 9) && relay__is_receiver(&cfg, 9));
}

static void test_schedule_and_collect(void)
{
	relay_cfg cfg = {.conns = 4, .senders = 2, .rate = 1000, .messages = 3};
	relay_run run;
	relay_stats st;
	relay_result *res = calloc(1, sizeof(*res));
	unsigned i;

	TEST_EQ_INT(relay__run_init(&run, &cfg), PARLEY_OK);
	run.t0 = 1000000000ull;
	TEST_EQ_INT(relay__due(&run, &run.senders[0], run.t0 + 1000000000ull), 0); /* not sending */
	atomic_store(&run.sending, 1);
	/* 500/s per sender; sender 1 is offset by half an interval. Budget: 2 + 1 messages. */
	TEST_EQ_INT(relay__due(&run, &run.senders[0], run.t0 + 3000000ull), 1);
	TEST_EQ_INT(relay__due(&run, &run.senders[1], run.t0), 0);
	TEST_EQ_INT(relay__due(&run, &run.senders[1], run.t0 + 1000000ull), 1);
	TEST_EQ_INT(relay__due(&run, &run.senders[0], run.t0 + 1000000000ull), 2);
	TEST_EQ_INT(relay__due(&run, &run.senders[1], run.t0 + 1000000000ull), 1);

	/* Sender 0 sent 3: #0 acked+delivered twice, #1 acked only (lost), #2 neither (unsettled). */
	memset(&st, 0, sizeof(st));
	hist__init(&st.e2e);
	atomic_store(&run.senders[0].n_sent, 3);
	relay__acked(&run, &run.senders[0], 0, 10, 20);
	relay__acked(&run, &run.senders[0], 1, 10, 20);
	relay__delivered(&run, &st, 0, 0, 10, 30);
	relay__delivered(&run, &st, 0, 0, 10, 30);
	relay__delivered(&run, &st, 9, 0, 10, 30); /* unknown sender */
	relay_stats *sp = &st;
	relay__collect(&run, &sp, 1, res);
	TEST_EQ_INT(res->sent, 3);
	TEST_EQ_INT(res->acked, 2);
	TEST_EQ_INT(res->delivered, 1);
	TEST_EQ_INT(res->dups, 1);
	TEST_EQ_INT(res->lost, 1);
	TEST_EQ_INT(res->unsettled, 1);
	TEST_EQ_INT(res->foreign, 1);
	TEST_EQ_INT(res->e2e.count, 1);
	TEST_EQ_INT(res->ack_lat.count, 2);
	for (i = 0; i < cfg.senders; i++)
		TEST_EQ_INT(atomic_load(&run.senders[i].n_errors), 0);
	relay__run_free(&run);
	free(res);
}

static void test_mac(void)
{
	relay_cfg cfg = {.size = 64}, other;
	uint8_t buf[64];

	randombytes_buf(cfg.key, sizeof(cfg.key));
	other = cfg;
	other.key[0] ^= 1;
	relay__fill(buf, sizeof(buf), 3, 9);
	relay__seal(&cfg, buf, 5);
	TEST_EQ_INT(relay__mac_ok(&cfg, buf, sizeof(buf), 5), 1);
	TEST_EQ_INT(relay__mac_ok(&cfg, buf, sizeof(buf), 6), 0);   /* delivered to the wrong receiver */
	TEST_EQ_INT(relay__mac_ok(&other, buf, sizeof(buf), 5), 0); /* another run */
	TEST_EQ_INT(relay__mac_ok(&cfg, buf, sizeof(buf) - 1, 5), 0);
	buf[30] ^= 0x40; /* one payload bit */
	TEST_EQ_INT(relay__mac_ok(&cfg, buf, sizeof(buf), 5), 0);
	buf[30] ^= 0x40;
	buf[8] ^= 1; /* the sequence number in the header */
	TEST_EQ_INT(relay__mac_ok(&cfg, buf, sizeof(buf), 5), 0);
}

/* What every engine's receivers do with a body: only an intact one, for this receiver, from a sender
 * that sends to it, counts as delivered; the rest is counted and refused. */
static void test_check_body(void)
{
	relay_cfg cfg = {.conns = 4, .senders = 2, .size = 64};
	relay_run run;
	relay_stats st;
	uint8_t buf[64];

	randombytes_buf(cfg.key, sizeof(cfg.key));
	memset(&st, 0, sizeof(st));
	hist__init(&st.e2e);
	TEST_EQ_INT(relay__run_init(&run, &cfg), PARLEY_OK);
	/* sender 1 sends to connection 3 */
	relay__fill(buf, sizeof(buf), 1, 0);
	relay__seal(&cfg, buf, 3);
	TEST_EQ_INT(relay__check_body(&run, &st, buf, sizeof(buf), 3, uv_hrtime()), 1);
	TEST_EQ_INT(atomic_load(&st.delivered), 1);
	/* the same bytes at connection 2: misrouted */
	TEST_EQ_INT(relay__check_body(&run, &st, buf, sizeof(buf), 2, uv_hrtime()), -1);
	TEST_EQ_INT(atomic_load(&st.corrupt), 1);
	/* sealed for connection 2 by sender 1 (a MAC that verifies there), but sender 1 never sends to 2 */
	relay__fill(buf, sizeof(buf), 1, 1);
	relay__seal(&cfg, buf, 2);
	TEST_EQ_INT(relay__check_body(&run, &st, buf, sizeof(buf), 2, uv_hrtime()), -1);
	TEST_EQ_INT(atomic_load(&st.corrupt), 2);
	/* one flipped payload bit */
	relay__fill(buf, sizeof(buf), 1, 2);
	relay__seal(&cfg, buf, 3);
	buf[40] ^= 4;
	TEST_EQ_INT(relay__check_body(&run, &st, buf, sizeof(buf), 3, uv_hrtime()), -1);
	TEST_EQ_INT(atomic_load(&st.corrupt), 3);
	/* wrong size, or no header: malformed */
	TEST_EQ_INT(relay__check_body(&run, &st, buf, sizeof(buf) - 1, 3, uv_hrtime()), -1);
	buf[0] = 'X';
	TEST_EQ_INT(relay__check_body(&run, &st, buf, sizeof(buf), 3, uv_hrtime()), -1);
	TEST_EQ_INT(atomic_load(&st.errors), 2);
	TEST_EQ_INT(atomic_load(&st.delivered), 1);
	relay__run_free(&run);
}

static void test_state_file(void)
{
	relay_cfg cfg = {.conns = 5, .senders = 2, .size = 64, .phase = RELAY_PHASE_SEND};
	relay_run run;
	relay_state st;
	uint8_t sk[5][64];
	char dir[] = "/tmp/parley-relay-state-XXXXXX", path[128], why[300];
	static const uint64_t acked[] = {0, 1, 2, 5, 9};
	unsigned i;
	FILE *f;

	TEST_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/state", dir);
	snprintf(cfg.run_tag, sizeof(cfg.run_tag), "btest");
	randombytes_buf(cfg.key, sizeof(cfg.key));
	randombytes_buf(sk, sizeof(sk));
	TEST_EQ_INT(relay__run_init(&run, &cfg), PARLEY_OK);
	atomic_store(&run.senders[0].n_sent, 10);
	for (i = 0; i < sizeof(acked) / sizeof(acked[0]); i++)
		relay__bits_set(&run.senders[0].acked, acked[i]);
	TEST_EQ_INT(relay__state_save(path, &cfg, &run, sk), PARLEY_OK);
	relay__run_free(&run);

	TEST_EQ_INT(relay__state_load(path, &st, why, sizeof(why)), PARLEY_OK);
	TEST_EQ_STR(st.run_tag, "btest");
	TEST_EQ_MEM(st.key, cfg.key, sizeof(cfg.key));
	TEST_EQ_INT(st.conns, 5);
	TEST_EQ_INT(st.senders, 2);
	TEST_EQ_INT(st.size, 64);
	TEST_EQ_INT(st.sent[0], 10);
	TEST_EQ_INT(st.sent[1], 0);
	for (i = 0; i < 10; i++)
		TEST_EQ_INT(relay__bits_get(&st.acked[0], i), i <= 2 || i == 5 || i == 9);
	for (i = 2; i < 5; i++) /* the receivers' device keys */
		TEST_EQ_MEM(st.device_sk[i], sk[i], 64);
	relay__state_free(&st);

	/* cut short: everything but the end line */
	TEST_EQ_INT(truncate(path, 100), 0);
	TEST_EQ_INT(relay__state_load(path, &st, why, sizeof(why)), PARLEY_E_INVAL);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("parley-bench relay state 1\nconnections 4\nsenders 2\nsize 64\nacked 0 0 3\nend\n", f);
		fclose(f);
	}
	TEST_EQ_INT(relay__state_load(path, &st, why, sizeof(why)), PARLEY_E_INVAL); /* acked past sent */
	TEST_CHECK(strstr(why, ":5: bad acked line") != NULL);
	unlink(path);
	rmdir(dir);
}

static void lose_every_sender(void *ctx)
{
	relay_run *run = ctx;
	relay__conn_lost(run, 0); /* the only sender */
}

/* The server dies at once: the send phase must not last the planned 5 s nor report rates over them. */
static void test_drive_stops_when_senders_are_gone(void)
{
	relay_cfg cfg = {.conns = 2, .senders = 1, .duration_s = 5, .drain_s = 5};
	relay_run run;
	relay_driver d = {.kick = lose_every_sender};
	relay_result *res = calloc(1, sizeof(*res));

	TEST_EQ_INT(relay__run_init(&run, &cfg), PARLEY_OK);
	d.ctx = &run;
	relay__drive(&run, &d, res);
	TEST_CHECK(res->send_s < 1.0);
	TEST_CHECK(res->drain_s < 1.0);
	TEST_CHECK(res->planned_s == 5.0);
	TEST_CHECK(res->stop_reason != NULL && strstr(res->stop_reason, "lost") != NULL);
	relay__run_free(&run);
	free(res);
}

/* Every sender's receiver is on another node, for many shapes; the nodes get nearly equal shares. */
static void test_cross_node_placement(void)
{
	relay_cfg cfg = {.conns = 40, .senders = 20, .nnodes = 3};
	unsigned k, c, i, per[RELAY_MAX_NODES], n, m;

	for (c = 0; c < 9; c++) /* without --cross-node: round-robin */
		TEST_EQ_INT(relay__node_of(&cfg, c), c % 3);
	TEST_CHECK(relay__placement_ok(&cfg));
	cfg.cross_node = 1;
	for (n = 4; n <= 41; n++)
		for (m = 1; m <= n; m++)
			for (k = 2; k <= 5; k++) {
				cfg.conns = n;
				cfg.senders = m;
				cfg.nnodes = k;
				if (m == n && n % k != 0)
					continue; /* a ring whose length the nodes do not divide: refused, below */
				if (!relay__placement_ok(&cfg)) {
					fprintf(stderr, "placement not cross-node: %u connections, %u senders, %u nodes\n", n, m, k);
					TEST_CHECK(0);
					return;
				}
			}
	cfg.conns = 40, cfg.senders = 20, cfg.nnodes = 3;
	memset(per, 0, sizeof(per));
	for (c = 0; c < cfg.conns; c++)
		per[relay__node_of(&cfg, c)]++;
	for (i = 0; i < 3; i++)
		TEST_CHECK(per[i] >= 13 && per[i] <= 14); /* 40 over 3 nodes */
	cfg.conns = 10, cfg.senders = 10; /* a ring of 10 over 3 nodes: 9 -> 0 stays on node 0 */
	TEST_CHECK(!relay__placement_ok(&cfg));
	cfg.nnodes = 1, cfg.conns = 10, cfg.senders = 5; /* one node cannot cross */
	TEST_CHECK(!relay__placement_ok(&cfg));
}

static void test_url_list(void)
{
	static bench_list l;

	TEST_EQ_INT(bench__list_add(&l, "ws://127.0.0.1:1/v1/websocket,ws://127.0.0.1:2/x"), PARLEY_OK);
	TEST_EQ_INT(bench__list_add(&l, "ws://127.0.0.1:3/"), PARLEY_OK);
	TEST_EQ_INT(l.n, 3);
	TEST_CHECK(strcmp(l.v[0], "ws://127.0.0.1:1/v1/websocket") == 0);
	TEST_CHECK(strcmp(l.v[1], "ws://127.0.0.1:2/x") == 0);
	TEST_CHECK(strcmp(l.v[2], "ws://127.0.0.1:3/") == 0);
	TEST_EQ_INT(bench__list_add(&l, "a,,b"), PARLEY_E_INVAL);
	TEST_EQ_INT(bench__list_add(&l, ""), PARLEY_E_INVAL);
	TEST_EQ_INT(bench__list_add(&l, "a,"), PARLEY_E_INVAL);
	memset(&l, 0, sizeof(l));
	TEST_EQ_INT(bench__list_add(&l, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"), PARLEY_OK);
	TEST_EQ_INT(bench__list_add(&l, "17"), PARLEY_E_INVAL); /* BENCH_LIST_MAX */
}

static void count_kick(void *ctx)
{
	(*(int *)ctx)++;
}

/* The hooks run once, before the send phase; a failing --before-send ends the run before any send. */
static void test_before_send_hooks(void)
{
	char dir[] = "/tmp/test-relay-hooks.XXXXXX", ready[128], mark[128], cmd[300], line[64];
	relay_cfg cfg = {.conns = 2, .senders = 1, .duration_s = 0.1, .drain_s = 0.1};
	relay_run run;
	int kicked = 0;
	relay_driver d = {.kick = count_kick, .ctx = &kicked};
	relay_result *res = calloc(1, sizeof(*res));
	FILE *f;

	TEST_CHECK(mkdtemp(dir) != NULL);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(mark, sizeof(mark), "%s/ran", dir);
	snprintf(cmd, sizeof(cmd), "test ! -e %s && echo x > %s", ready, mark); /* before the ready file */
	cfg.before_send = cmd;
	cfg.ready_file = ready;
	TEST_EQ_INT(relay__run_init(&run, &cfg), PARLEY_OK);
	relay__drive(&run, &d, res);
	TEST_EQ_INT(kicked, 1);
	TEST_CHECK(res->stop_reason == NULL);
	TEST_CHECK(access(mark, F_OK) == 0);
	f = fopen(ready, "r");
	TEST_CHECK(f != NULL && fgets(line, sizeof(line), f) != NULL && strcmp(line, "ready 2\n") == 0);
	if (f)
		fclose(f);
	relay__run_free(&run);
	unlink(ready);
	memset(res, 0, sizeof(*res));
	kicked = 0;
	cfg.before_send = "exit 3";
	TEST_EQ_INT(relay__run_init(&run, &cfg), PARLEY_OK);
	relay__drive(&run, &d, res);
	TEST_EQ_INT(kicked, 0); /* nothing sent */
	TEST_CHECK(res->stop_reason != NULL && res->send_s == 0);
	TEST_CHECK(access(ready, F_OK) != 0);
	relay__run_free(&run);
	unlink(mark);
	rmdir(dir);
	free(res);
}

int main(void)
{
	TEST_RUN(test_cross_node_placement);
	TEST_RUN(test_url_list);
	TEST_RUN(test_before_send_hooks);
	TEST_RUN(test_header);
	TEST_RUN(test_bits);
	TEST_RUN(test_pairs);
	TEST_RUN(test_schedule_and_collect);
	TEST_RUN(test_mac);
	TEST_RUN(test_check_body);
	TEST_RUN(test_state_file);
	TEST_RUN(test_drive_stops_when_senders_are_gone);
	TEST_EXIT();
}
