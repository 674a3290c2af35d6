/* server/relay service calls over a real SQLite store: device-list checks naming the devices, durable
 * enqueue, queue order, ack deletes, queue limit, TTL expiry and purge, cleartext receipts refused,
 * message requests (directed acceptance, presence opt-out, pruning). The
 * per-connection delivery (push/backlog window) needs sockets and is covered by the integration tests. */
#include "relay/relay.h"
#include "test.h"
#include "common.h"

static relay_config rc_;

struct outcome {
	int done;
	int status;
	store_relay_args m; /* scalars of the job's relay args; the arrays point into this outcome */
	store_envelope envs[16];
	uint64_t ids[8];
	uint32_t missing[8], extra[8], stale[8];
};

/* Copies a device list of the job (freed with it after the callback) into the outcome. */
static void copy_list(uint32_t **dst_ptr, uint32_t *dst, size_t *n, const uint32_t *src)
{
	if (*n > 8)
		*n = 8;
	if (*n > 0)
		memcpy(dst, src, *n * sizeof(*dst));
	*dst_ptr = dst;
}

static void on_result(void *arg, int status, const void *result)
{
	const store_job *j = result;
	struct outcome *o = arg;
	o->done = 1;
	o->status = status;
	if (j != NULL) {
		o->m = j->relay;
		for (size_t i = 0; i < j->relay.n_envs && i < 16; i++) {
			o->envs[i] = j->relay.envs[i];
			o->envs[i].content = NULL;
		}
		for (size_t i = 0; i < j->relay.n_msgs && i < 8; i++)
			o->ids[i] = j->relay.msgs[i].server_id;
		o->m.msgs = NULL;
		o->m.envs = NULL;
		o->m.peers = NULL;
		o->m.ids = NULL;
		o->m.content_buf = NULL;
		copy_list(&o->m.missing, o->missing, &o->m.n_missing, j->relay.missing);
		copy_list(&o->m.extra, o->extra, &o->m.n_extra, j->relay.extra);
		copy_list(&o->m.stale, o->stale, &o->m.n_stale, j->relay.stale);
	}
}

static void wait_for(struct outcome *o)
{
	while (!o->done)
		uv_run(&loop, UV_RUN_ONCE);
}

/* send from (acc, dev "alice") to handle with (device, regid) pairs */
static int send_to(uint64_t acc, uint32_t dev, const char *to, const uint32_t *devs, const uint32_t *regs, size_t n,
		   int type, const uint8_t *content, size_t len, uint64_t now, struct outcome *o)
{
	Parley__Wire__SendMessageRequest rq = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage m[8], *mp[8];
	for (size_t i = 0; i < n; i++) {
		parley__wire__outgoing_message__init(&m[i]);
		m[i].device_id = devs[i];
		m[i].registration_id = regs[i];
		m[i].type = type;
		m[i].content.data = (uint8_t *)content;
		m[i].content.len = len;
		mp[i] = &m[i];
	}
	rq.recipient = (char *)to;
	rq.timestamp = 1234;
	rq.n_messages = n;
	rq.messages = mp;
	memset(o, 0, sizeof(*o));
	relay__send(&rc_, sc, acc, dev, "alice", &rq, now, on_result, o);
	wait_for(o);
	return o->status;
}

static int fetch(uint64_t acc, uint32_t dev, uint64_t after, unsigned limit, uint64_t now, struct outcome *o)
{
	store_job *j = store__job_new(STORE_OP_FETCH_QUEUE);
	j->account_id = acc;
	j->device_id = dev;
	j->relay.after_id = after;
	j->relay.limit = limit;
	j->now_ms = now;
	memset(o, 0, sizeof(*o));
	int rc = store__run_sync(st, j);
	o->status = rc;
	o->m.n_envs = j->relay.n_envs;
	for (size_t i = 0; i < j->relay.n_envs && i < 16; i++) {
		o->envs[i] = j->relay.envs[i];
		o->envs[i].content = NULL;
	}
	store__job_free(j);
	return rc;
}

static const uint8_t CT[] = "opaque-ciphertext";
#define T1 PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT

static void test_device_lists(void)
{
	uint64_t a = make_account("alice", 1), b = make_account("bob", 3);
	struct outcome o;
	store_keys(a, 1, 1, 0, 1);
	store_keys(b, 1, 21, 0, 1);
	store_keys(b, 2, 22, 0, 1); /* device 3 has no keys: not a recipient */
	uint32_t d1[] = {1, 3}, r1[] = {21, 0};
	TEST_EQ_INT(send_to(a, 1, "bob", d1, r1, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_E_MISMATCHED_DEVICES);
	TEST_EQ_INT(o.m.n_missing, 1);
	TEST_EQ_INT(o.m.missing[0], 2);
	TEST_EQ_INT(o.m.n_extra, 1);
	TEST_EQ_INT(o.m.extra[0], 3);
	uint32_t d2[] = {1, 2}, r2[] = {21, 99};
	TEST_EQ_INT(send_to(a, 1, "bob", d2, r2, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_E_STALE_DEVICES);
	TEST_EQ_INT(o.m.n_stale, 1);
	TEST_EQ_INT(o.m.stale[0], 2);
	TEST_EQ_INT(send_to(a, 1, "nobody", d2, r2, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_E_NO_SUCH_ACCOUNT);
	uint32_t d3[] = {1, 1}, r3[] = {21, 21};
	TEST_EQ_INT(send_to(a, 1, "bob", d3, r3, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_E_PROTO_MALFORMED);
	/* to one's own account: every other device, never the sender */
	uint32_t d4[] = {1}, r4[] = {1};
	TEST_EQ_INT(send_to(a, 1, "alice", d4, r4, 1, T1, CT, sizeof(CT), 1000, &o), PARLEY_E_MISMATCHED_DEVICES);
	TEST_EQ_INT(o.m.extra[0], 1);
}

static void test_queue_order_ack(void)
{
	struct outcome o;
	uint64_t a = 1, b = 2; /* alice, bob from above */
	uint32_t d[] = {1, 2}, r[] = {21, 22};
	uint64_t first = 0;
	for (int i = 0; i < 5; i++) {
		TEST_EQ_INT(send_to(a, 1, "bob", d, r, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_OK);
		TEST_CHECK(o.ids[0] > first);
		first = o.ids[0];
	}
	TEST_EQ_INT(fetch(b, 1, 0, 100, 2000, &o), PARLEY_OK);
	TEST_EQ_INT(o.m.n_envs, 5);
	for (size_t i = 1; i < 5; i++)
		TEST_CHECK(o.envs[i].server_id > o.envs[i - 1].server_id);
	TEST_EQ_INT(o.envs[0].sender_account, a);
	TEST_EQ_INT(o.envs[0].client_ts, 1234);
	TEST_EQ_INT(o.envs[0].content_len, sizeof(CT));
	TEST_CHECK(strcmp(o.envs[0].sender_handle, "alice") == 0);
	uint64_t id0 = o.envs[0].server_id, id1 = o.envs[1].server_id;
	TEST_EQ_INT(fetch(b, 1, id0, 2, 2000, &o), PARLEY_OK); /* window after an id, bounded */
	TEST_EQ_INT(o.m.n_envs, 2);
	TEST_EQ_INT(o.envs[0].server_id, id1);
	Parley__Wire__AckRequest ack = PARLEY__WIRE__ACK_REQUEST__INIT;
	uint64_t ids[] = {id0, id1, 999999};
	ack.server_ids = ids;
	ack.n_server_ids = 3;
	memset(&o, 0, sizeof(o));
	relay__ack(sc, b, 1, &ack, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.status, PARLEY_OK);
	TEST_EQ_INT(o.m.n_deleted, 2);
	TEST_EQ_INT(fetch(b, 1, 0, 100, 2000, &o), PARLEY_OK);
	TEST_EQ_INT(o.m.n_envs, 3);
	TEST_EQ_INT(fetch(b, 2, 0, 100, 2000, &o), PARLEY_OK); /* the other device's copy is untouched */
	TEST_EQ_INT(o.m.n_envs, 5);
}

static void test_limits(void)
{
	struct outcome o;
	uint32_t d[] = {1, 2}, r[] = {21, 22};
	uint8_t big[40000] = {1};
	TEST_EQ_INT(send_to(1, 1, "bob", d, r, 2, T1, big, sizeof(big), 1000, &o), PARLEY_E_TOO_LARGE);
	rc_.queue_limit = 6; /* device 2 holds 5 */
	TEST_EQ_INT(send_to(1, 1, "bob", d, r, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_OK);
	TEST_EQ_INT(send_to(1, 1, "bob", d, r, 2, T1, CT, sizeof(CT), 1000, &o), PARLEY_E_QUEUE_FULL);
	relay__config_defaults(&rc_);
	/* no cleartext receipt at all, malformed or well-formed: anyone could forge one (item 17) */
	TEST_EQ_INT(send_to(1, 1, "bob", d, r, 2, PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT, CT, sizeof(CT), 1000, &o),
		    PARLEY_E_RECEIPT_IN_CLEAR);
	Parley__Wire__Receipt rcpt = PARLEY__WIRE__RECEIPT__INIT;
	uint64_t ts[] = {1234};
	uint8_t buf[64];
	rcpt.kind = PARLEY__WIRE__RECEIPT__KIND__READ;
	rcpt.timestamps = ts;
	rcpt.n_timestamps = 1;
	size_t n = parley__wire__receipt__pack(&rcpt, buf);
	uint64_t a = 1;
	(void)a;
	uint32_t da[] = {1}, ra[] = {1};
	TEST_EQ_INT(send_to(2, 1, "alice", da, ra, 1, PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT, buf, n, 1000, &o),
		    PARLEY_E_RECEIPT_IN_CLEAR);
}

static void test_ttl(void)
{
	struct outcome o;
	uint64_t c = make_account("carol", 1);
	store_keys(c, 1, 31, 0, 1);
	uint32_t d[] = {1}, r[] = {31};
	rc_.ttl_ms = 500;
	TEST_EQ_INT(send_to(1, 1, "carol", d, r, 1, T1, CT, sizeof(CT), 1000, &o), PARLEY_OK);
	relay__config_defaults(&rc_);
	TEST_EQ_INT(fetch(c, 1, 0, 10, 1499, &o), PARLEY_OK);
	TEST_EQ_INT(o.m.n_envs, 1);
	TEST_EQ_INT(fetch(c, 1, 0, 10, 1500, &o), PARLEY_OK); /* expired: never delivered */
	TEST_EQ_INT(o.m.n_envs, 0);
	memset(&o, 0, sizeof(o));
	relay__purge(sc, 1500, on_result, &o);
	wait_for(&o);
	TEST_EQ_INT(o.status, PARLEY_OK);
	TEST_CHECK(o.m.n_deleted >= 1);
}

static void run(struct outcome *o)
{
	wait_for(o);
	TEST_EQ_INT(o->status, PARLEY_OK);
}

static int mutual(uint64_t acc, const char *peer)
{
	struct outcome o;
	memset(&o, 0, sizeof(o));
	relay__find_peer(sc, acc, peer, on_result, &o);
	run(&o);
	return o.m.shared;
}

static size_t peers(uint64_t acc, int force)
{
	struct outcome o;
	memset(&o, 0, sizeof(o));
	relay__thread_peers(&rc_, sc, acc, force, on_result, &o);
	run(&o);
	return o.m.n_peers;
}

static void contact(uint64_t acc, const char *peer, int accept, uint64_t now)
{
	struct outcome o;
	memset(&o, 0, sizeof(o));
	relay__contact_set(sc, acc, peer, accept, now, on_result, &o);
	run(&o);
}

static void presence(uint64_t acc, int share)
{
	struct outcome o;
	memset(&o, 0, sizeof(o));
	relay__presence_set(sc, acc, share, on_result, &o);
	run(&o);
}

/* Message requests: alice (1) wrote to bob and carol; neither answered. */
static void test_contacts(void)
{
	uint64_t dave = make_account("dave", 1), bob = 2;
	TEST_EQ_INT(mutual(1, "bob"), 0); /* alice wrote; bob never accepted */
	TEST_EQ_INT(mutual(bob, "alice"), 0);
	TEST_EQ_INT(mutual(dave, "bob"), 0); /* never exchanged a message */
	TEST_EQ_INT(peers(1, 0), 0);
	contact(bob, "alice", 1, 5000); /* bob accepts */
	TEST_EQ_INT(mutual(1, "bob"), 1);
	TEST_EQ_INT(mutual(bob, "alice"), 1);
	TEST_EQ_INT(peers(1, 0), 1); /* bob; carol never answered */
	TEST_EQ_INT(peers(bob, 0), 1);
	/* presence opt-out: nobody, except for the "offline" sent when it is turned off (force) */
	presence(bob, 0);
	TEST_EQ_INT(peers(bob, 0), 0);
	TEST_EQ_INT(peers(bob, 1), 1);
	TEST_EQ_INT(peers(1, 0), 1); /* alice still shares with bob */
	presence(bob, 1);
	TEST_EQ_INT(peers(bob, 0), 1);
	/* the server default applies to accounts that never chose */
	rc_.presence_share_default = 0;
	TEST_EQ_INT(peers(1, 0), 0);
	TEST_EQ_INT(peers(bob, 0), 1);
	relay__config_defaults(&rc_);
	/* decline withdraws bob's acceptance only */
	contact(bob, "alice", 0, 6000);
	TEST_EQ_INT(mutual(1, "bob"), 0);
	TEST_EQ_INT(peers(1, 0), 0);
	{
		struct outcome o;
		memset(&o, 0, sizeof(o));
		relay__contact_set(sc, bob, "nobody", 1, 6000, on_result, &o);
		wait_for(&o);
		TEST_EQ_INT(o.status, PARLEY_E_NO_SUCH_ACCOUNT);
	}
	/* pruning: acceptances unused for contact_ttl are dropped, newer ones stay */
	contact(bob, "alice", 1, 7000);
	TEST_EQ_INT(mutual(1, "bob"), 1);
	rc_.contact_ttl_ms = 1000;
	struct outcome o;
	memset(&o, 0, sizeof(o));
	relay__prune_contacts(&rc_, sc, 7500, on_result, &o); /* cut-off 6500: alice's sends (1000) go */
	run(&o);
	TEST_CHECK(o.m.n_deleted >= 2);
	TEST_EQ_INT(mutual(1, "bob"), 0);
	contact(1, "bob", 1, 7000);
	TEST_EQ_INT(mutual(1, "bob"), 1); /* bob's acceptance (7000) was kept */
	memset(&o, 0, sizeof(o));
	relay__prune_contacts(&rc_, sc, 9000, on_result, &o);
	run(&o);
	TEST_EQ_INT(o.m.n_deleted, 2);
	TEST_EQ_INT(mutual(1, "bob"), 0);
	relay__config_defaults(&rc_);
}

int main(void)
{
	setup();
	relay__config_defaults(&rc_);
	TEST_RUN(test_device_lists);
	TEST_RUN(test_queue_order_ack);
	TEST_RUN(test_limits);
	TEST_RUN(test_ttl);
	TEST_RUN(test_contacts);
	teardown();
	TEST_EXIT();
}
