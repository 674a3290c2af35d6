/* parley-bench relay's bookkeeping: the message header survives a round trip, the delivery bitmaps
 * catch duplicates and losses, senders pair with receivers as documented, the open-loop schedule
 * spreads the global rate over the senders, the phases' MAC catches corrupted and misrouted bodies,
 * the state file survives a round trip (and a cut-short one is refused), and a send phase whose
 * senders all lost their connections ends at once and reports its real length. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include <uv.h>

#include <parley/error.h>

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

int main(void)
{
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
