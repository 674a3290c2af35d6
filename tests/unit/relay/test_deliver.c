/* relay_dev, one connection's delivery state machine, over a real SQLite store with a fake connection
 * (the send/hold/release hooks record what would have gone out): backlog streaming within the in-flight
 * window, the window reopening on acks, QueueEmpty once, live pushes in order, falling back to the store
 * when the device is behind, resync after lost notices, stop during a read. */
#include "relay/relay.h"
#include "test.h"
#include "store_loop.h"
#include "common.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "wire/wire.h"
#include "base/metrics.h"

#include <unistd.h>

#define MAX_SENT 1024

/* The fake connection. */
struct conn {
	int open;
	int holds;            /* hold - release */
	size_t n;             /* frames "sent" */
	uint64_t ids[MAX_SENT]; /* envelope server ids in send order; 0 for QueueEmpty */
	int queue_empty;
};

static int fake_send(void *owner, const uint8_t *buf, size_t len)
{
	struct conn *c = owner;
	wire_frame f;
	if (!c->open)
		return PARLEY_E_CLOSED;
	if (wire__decode_frame(buf, len, NULL, &f) != PARLEY_OK)
		return PARLEY_E_PROTO_MALFORMED;
	if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH && c->n < MAX_SENT) {
		const Parley__Wire__Push *p = f.frame->push;
		if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
			c->ids[c->n++] = p->envelope->server_id;
		} else if (p->body_case == PARLEY__WIRE__PUSH__BODY_QUEUE_EMPTY) {
			c->queue_empty++;
		}
	}
	wire__frame_free(&f);
	return PARLEY_OK;
}

static void fake_hold(void *owner)
{
	((struct conn *)owner)->holds++;
}

static void fake_release(void *owner)
{
	((struct conn *)owner)->holds--;
}

static const relay_dev_ops ops = {fake_send, fake_hold, fake_release};
static relay_config rc_;
static dynbuf out;

static void dev_init(relay_dev *d, struct conn *c, uint64_t account, uint32_t device)
{
	memset(d, 0, sizeof(*d));
	memset(c, 0, sizeof(*c));
	c->open = 1;
	d->ops = &ops;
	d->owner = c;
	d->cfg = &rc_;
	d->sc = sc;
	d->out = &out;
	d->account = account;
	d->device = device;
}

/* Runs the loop until no queue read is in flight. */
static void settle(relay_dev *d)
{
	for (int i = 0; i < 10000 && d->reading; i++)
		uv_run(&loop, UV_RUN_ONCE);
}

/* Enqueues n envelopes for (account, device 1) straight through the store; returns the last id. */
static uint64_t enqueue(const char *to, uint32_t regid, unsigned n)
{
	uint64_t last = 0;
	for (unsigned i = 0; i < n; i++) {
		static const uint8_t ct[] = {0x33, 1, 2, 3};
		store_job *j = store__job_new(STORE_OP_SEND);
		store__job_set_handle(j, to);
		j->account_id = 1;
		j->device_id = 1;
		j->now_ms = parley__wall_ms();
		snprintf(j->relay.sender_handle, sizeof(j->relay.sender_handle), "alice");
		j->relay.expires_ms = j->now_ms + 3600000;
		j->relay.queue_limit = 100000;
		j->relay.msgs = parley__calloc(1, sizeof(*j->relay.msgs));
		j->relay.content_buf = parley__malloc(sizeof(ct));
		memcpy(j->relay.content_buf, ct, sizeof(ct));
		j->relay.msgs[0].device_id = 1;
		j->relay.msgs[0].registration_id = regid;
		j->relay.msgs[0].type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
		j->relay.msgs[0].content = j->relay.content_buf;
		j->relay.msgs[0].content_len = sizeof(ct);
		j->relay.n_msgs = 1;
		if (store__run_sync(st, j) != PARLEY_OK)
			abort();
		last = j->relay.msgs[0].server_id;
		store__job_free(j);
	}
	return last;
}

/* A fresh account with one device holding keys (registration id regid), and its fake connection. */
static uint64_t new_device(const char *handle, uint32_t regid, relay_dev *d, struct conn *c)
{
	uint64_t acc = make_account(handle, 1);
	store_keys(acc, 1, regid, 0, 1);
	dev_init(d, c, acc, 1);
	return acc;
}

static int ascending(const struct conn *c)
{
	for (size_t i = 1; i < c->n; i++)
		if (c->ids[i] <= c->ids[i - 1])
			return 0;
	return 1;
}

static void test_window(void)
{
	relay_dev d;
	struct conn c;
	rc_.max_inflight = 10;
	uint64_t bob = new_device("bob", 41, &d, &c);
	enqueue("bob", 41, 25);

	relay__dev_start(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 10); /* the window, not the whole backlog */
	TEST_EQ_INT(c.queue_empty, 0);
	TEST_EQ_INT(d.inflight, 10);

	/* acking 4 reopens the window by 4, at once (the read rides with the delete) */
	relay__dev_acked(&d, c.ids, 4);
	settle(&d);
	TEST_EQ_INT(c.n, 14);
	TEST_EQ_INT(d.inflight, 10);

	/* acking everything sent drains the rest, then QueueEmpty exactly once */
	relay__dev_acked(&d, c.ids + 4, 10);
	settle(&d);
	TEST_EQ_INT(c.n, 24);
	relay__dev_acked(&d, c.ids + 14, 10);
	settle(&d);
	TEST_EQ_INT(c.n, 25);
	relay__dev_acked(&d, c.ids + 24, 1);
	settle(&d);
	TEST_EQ_INT(c.queue_empty, 1);
	TEST_EQ_INT(d.backlog, 0);
	TEST_CHECK(ascending(&c));
	TEST_EQ_INT(c.holds, 0); /* every read released what it held */

	/* live mode: a newer envelope goes out at once, an old or repeated id never twice */
	uint64_t id = enqueue("bob", 41, 1);
	dynbuf f;
	dynbuf__init(&f, 4096);
	static uint8_t body[] = {0x33, 1, 2, 3};
	store_envelope e = {.server_id = id, .sender_account = 1, .sender_device = 1, .type = 1, .client_ts = 1,
			    .server_ts = 1, .content = body, .content_len = sizeof(body)};
	snprintf(e.sender_handle, sizeof(e.sender_handle), "alice");
	TEST_EQ_INT(relay__encode_envelope(&f, &e, bob, 1), PARLEY_OK);
	relay__dev_live(&d, id, f.data, f.len);
	TEST_EQ_INT(c.n, 26);
	TEST_EQ_INT(c.ids[25], id);
	relay__dev_live(&d, id, f.data, f.len);
	relay__dev_live(&d, id - 1, f.data, f.len);
	TEST_EQ_INT(c.n, 26);
	TEST_EQ_INT(c.queue_empty, 1);

	/* a device that stops acking: live pushes stop at the window and the rest waits in the store */
	unsigned before = (unsigned)c.n;
	uint64_t first = enqueue("bob", 41, 15) - 14;
	for (uint64_t k = first; k < first + 15; k++) {
		e.server_id = k;
		dynbuf__reset(&f);
		relay__encode_envelope(&f, &e, bob, 1);
		relay__dev_live(&d, k, f.data, f.len);
	}
	settle(&d);
	TEST_EQ_INT(c.n - before, 9); /* 1 was already in flight: 10 in all */
	TEST_EQ_INT(d.backlog, 1);
	/* acks bring the rest from the store, in order, none twice */
	relay__dev_acked(&d, c.ids + before - 1, 10);
	settle(&d);
	TEST_EQ_INT(c.n - before, 15);
	TEST_CHECK(ascending(&c));
	TEST_EQ_INT(c.holds, 0);
	dynbuf__free(&f);
	relay__dev_stop(&d);
}

/* Acks count only for ids this connection pushed and has not had acknowledged, once each: repeating one id,
 * acking an id never pushed (above the window, another device's, 0) or one already acked must not reopen
 * the window, or a device could pull its whole backlog past max_inflight. */
static void test_ack_only_inflight(void)
{
	relay_dev d;
	struct conn c;
	rc_.max_inflight = 10;
	new_device("frank", 71, &d, &c);
	relay_dev d2;
	struct conn c2;
	new_device("grace", 72, &d2, &c2);
	enqueue("frank", 71, 5);
	uint64_t foreign = enqueue("grace", 72, 1); /* inside frank's window, not his */
	enqueue("frank", 71, 25);

	relay__dev_start(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 10);
	relay__dev_acked(&d, c.ids, 1); /* one real ack: the window slides by one */
	settle(&d);
	TEST_EQ_INT(c.n, 11);
	TEST_EQ_INT(d.inflight, 10);
	TEST_CHECK(c.ids[0] < foreign && foreign < c.ids[10]);

	uint64_t dup[10];
	for (int i = 0; i < 10; i++)
		dup[i] = c.ids[1];
	uint64_t bogus[] = {c.ids[10] + 5, c.ids[0], 0, foreign, UINT64_MAX};
	relay__dev_acked(&d, dup, 10); /* counts once */
	relay__dev_acked(&d, bogus, sizeof(bogus) / sizeof(bogus[0]));
	settle(&d);
	TEST_EQ_INT(c.n, 12); /* only the single real ack of c.ids[1] reopened one slot */
	TEST_EQ_INT(d.inflight, 10);

	/* the 10 real ids in flight, once each, reopen it by exactly 10; repeating them does nothing */
	uint64_t real[10];
	memcpy(real, c.ids + 2, sizeof(real));
	relay__dev_acked(&d, real, 10);
	settle(&d);
	TEST_EQ_INT(c.n, 22);
	TEST_EQ_INT(d.inflight, 10);
	relay__dev_acked(&d, real, 10);
	settle(&d);
	TEST_EQ_INT(c.n, 22);
	TEST_CHECK(ascending(&c));
	TEST_EQ_INT(c.holds, 0);
	relay__dev_stop(&d);
}

/* Acks out of order: the oldest id stays in flight while each newest one is acked, so acked slots pile up
 * behind it and the in-flight array is compacted many times; the window stays exactly max_inflight, an id
 * acked before a compaction never counts again, and the array exists only while something is in flight. */
static void test_ack_out_of_order(void)
{
	relay_dev d;
	struct conn c;
	rc_.max_inflight = 4;
	new_device("heidi", 81, &d, &c);
	relay__dev_start(&d);
	settle(&d);
	TEST_CHECK(d.pending == NULL); /* idle: no array */
	enqueue("heidi", 81, 40);
	relay__dev_resync(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 4);
	TEST_CHECK(d.pending != NULL);
	int slid = 1;
	for (size_t k = 0; k < 30; k++) {
		size_t before = c.n;
		relay__dev_acked(&d, &c.ids[c.n - 1], 1);
		settle(&d);
		if (c.n != before + 1 || d.inflight != 4)
			slid = 0;
	}
	TEST_CHECK(slid);
	TEST_EQ_INT(c.n, 34);
	relay__dev_acked(&d, c.ids + 3, 28); /* acked long ago, across compactions */
	settle(&d);
	TEST_EQ_INT(c.n, 34);
	relay__dev_acked(&d, c.ids, 1); /* the oldest, still in flight */
	settle(&d);
	TEST_EQ_INT(c.n, 35);
	/* in flight now: ids[1], ids[2] (never acked), ids[33], ids[34] */
	uint64_t rest[] = {c.ids[1], c.ids[2], c.ids[33], c.ids[34]};
	relay__dev_acked(&d, rest, 4);
	settle(&d);
	TEST_EQ_INT(c.n, 39);
	relay__dev_acked(&d, c.ids + 35, 4);
	settle(&d);
	TEST_EQ_INT(c.n, 40);
	relay__dev_acked(&d, c.ids + 39, 1);
	settle(&d);
	TEST_EQ_INT(d.inflight, 0);
	TEST_CHECK(d.pending == NULL); /* the window emptied: freed */
	TEST_CHECK(ascending(&c));
	relay__dev_stop(&d);
}

/* Live notices lost (mailbox overflow) are recovered by a resync: read from the store. */
static void test_resync(void)
{
	relay_dev d;
	struct conn c;
	rc_.max_inflight = 100;
	new_device("carol", 51, &d, &c);
	relay__dev_start(&d);
	settle(&d);
	TEST_EQ_INT(c.queue_empty, 1);
	enqueue("carol", 51, 5); /* no live notice reaches the device */
	settle(&d);
	TEST_EQ_INT(c.n, 0);
	relay__dev_resync(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 5);
	TEST_CHECK(ascending(&c));
	TEST_EQ_INT(c.queue_empty, 1); /* once per connection */
	relay__dev_stop(&d);
}

/* The connection closes while a read is in flight: nothing is sent after, the hold is released. */
static void test_stop_during_read(void)
{
	relay_dev d;
	struct conn c;
	new_device("dave", 61, &d, &c);
	enqueue("dave", 61, 3);
	relay__dev_start(&d);
	TEST_EQ_INT(d.reading, 1);
	TEST_EQ_INT(c.holds, 1);
	relay__dev_stop(&d);
	c.open = 0;
	settle(&d);
	TEST_EQ_INT(c.n, 0);
	TEST_EQ_INT(c.holds, 0);
}

/* Runs the loop a while: a job submitted without a hold (the count at stop) completes. */
static void drain_loop(void)
{
	for (int i = 0; i < 200; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	usleep(20000);
	for (int i = 0; i < 200; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
}

/* Security item 1, server side: what a reading connection leaves in flight when it closes counts one
 * unacknowledged delivery; at max_redeliveries the envelope goes to the back (new, higher id), never
 * away. A connection that acks nothing and closes before the grace counts nothing. */
static void test_redeliveries(void)
{
	relay_dev d;
	struct conn c;
	relay_config saved = rc_;
	rc_.max_redeliveries = 2;
	rc_.redelivery_grace_ms = 3600000;
	uint64_t acc = new_device("rita", 40, &d, &c);
	uint64_t last = enqueue("rita", 40, 3);

	/* a short connection that acks nothing (a sender that does not read): not counted, ever */
	for (int k = 0; k < 3; k++) {
		dev_init(&d, &c, acc, 1);
		relay__dev_start(&d);
		settle(&d);
		TEST_EQ_INT(c.n, 3);
		relay__dev_stop(&d);
		drain_loop();
	}
	dev_init(&d, &c, acc, 1);
	relay__dev_start(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 3);
	TEST_CHECK(c.ids[2] == last); /* same ids: nothing moved */
	/* reading: acks the first, leaves two in flight */
	uint64_t first = c.ids[0];
	relay__dev_acked(&d, &first, 1);
	store_job *j = store__job_new(STORE_OP_ACK); /* the delete that the ack route submits */
	j->account_id = acc;
	j->device_id = 1;
	TEST_EQ_INT(store__job_relay_alloc_ids(j, 1), PARLEY_OK);
	j->relay.ids[0] = first;
	TEST_EQ_INT(store__run_sync(st, j), PARLEY_OK);
	store__job_free(j);
	settle(&d);
	relay__dev_stop(&d);
	drain_loop();
	/* second reading connection leaves them again: they reach 2 and move behind */
	dev_init(&d, &c, acc, 1);
	relay__dev_start(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 2);
	TEST_CHECK(c.ids[1] == last);
	relay__dev_acked(&d, &first, 1); /* not in flight here: does not make it a reading connection */
	rc_.redelivery_grace_ms = 0;     /* ... but a long one counts all the same */
	relay__dev_stop(&d);
	/* the requeue is a store job: on a loaded machine it can outlast drain_loop's fixed wait */
	for (int waited = 0; waited < 5000 && metrics__get(METRIC_RELAY_REQUEUED) < 2; waited++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	drain_loop();
	TEST_EQ_INT(metrics__get(METRIC_RELAY_REQUEUED), 2);
	dev_init(&d, &c, acc, 1);
	relay__dev_start(&d);
	settle(&d);
	TEST_EQ_INT(c.n, 2);
	TEST_CHECK(c.ids[0] > last && ascending(&c)); /* new ids, still both there */
	relay__dev_stop(&d);
	rc_ = saved;
}

int main(void)
{
	setup();
	make_account("alice", 1); /* the sender of every envelope */
	relay__config_defaults(&rc_);
	dynbuf__init(&out, 1 << 20);
	TEST_RUN(test_window);
	TEST_RUN(test_ack_only_inflight);
	TEST_RUN(test_ack_out_of_order);
	TEST_RUN(test_resync);
	TEST_RUN(test_stop_during_read);
	TEST_RUN(test_redeliveries);
	dynbuf__free(&out);
	teardown();
	TEST_EXIT();
}
