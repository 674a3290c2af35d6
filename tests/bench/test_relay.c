/* parley-bench relay's bookkeeping: the message header survives a round trip, the delivery bitmaps
 * catch duplicates and losses, senders pair with receivers as documented, and the open-loop schedule
 * spreads the global rate over the senders. */
#include <stdlib.h>

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

int main(void)
{
	TEST_RUN(test_header);
	TEST_RUN(test_bits);
	TEST_RUN(test_pairs);
	TEST_RUN(test_schedule_and_collect);
	TEST_EXIT();
}
