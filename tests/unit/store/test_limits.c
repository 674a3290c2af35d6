/* server/store limits (security items 3 and 16).
 *
 * A full database, made deterministic with PRAGMA max_page_count (store_config.max_page_count) instead
 * of a full filesystem (tests/integration/t16_disk_full does that one): sends fail with STORAGE_FULL,
 * the store reports itself degraded, every other write that needs room is refused at once, acks
 * (deletes need no new pages) still work, and once they freed the database the store takes writes
 * again by itself.
 *
 * The bounded queue: past store_queue_max, submit answers SERVER_BUSY, except for the ops that drain.
 * Cancellation: the queued jobs of an owner (a closed connection) never run and complete with CLOSED.
 *
 * The per-sender share (queue_sender_share, security item 7) is counted in memory for long queues
 * (server/store/sql/share.c): random sends from several senders, acks and expiry purges, each answer
 * compared with a model that counts every queue exactly; and more long queues than the tally holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>

#include "store/store.h"
#include "store_loop.h"
#include "test.h"

#define CONTENT 30000u

static char dir[64], path[128];

static int run(store *s, store_job *j)
{
	int rc = store__run_sync(s, j);
	store__job_free(j);
	return rc;
}

static uint64_t create(store *s, const char *handle, uint8_t seed)
{
	store_job *j = store__job_new(STORE_OP_CREATE_ACCOUNT);
	store__job_set_handle(j, handle);
	memset(j->acct.key, seed, sizeof(j->acct.key));
	TEST_EQ_INT(store__run_sync(s, j), PARLEY_OK);
	uint64_t acc = j->account_id;
	store__job_free(j);
	return acc;
}

/* device 1 of `acc` gets keys (registration id 21), so sends can reach it */
static void upload_keys(store *s, uint64_t acc)
{
	store_job *k = store__job_new(STORE_OP_UPLOAD_KEYS);
	k->account_id = acc;
	k->device_id = 1;
	k->keys.registration_id = 21;
	memset(k->keys.identity, 3, sizeof(k->keys.identity));
	k->keys.has_spk = 1;
	k->keys.spk_id = 1;
	memset(k->keys.spk_pub, 4, sizeof(k->keys.spk_pub));
	memset(k->keys.spk_sig, 5, sizeof(k->keys.spk_sig));
	k->keys.pool_max = 100;
	TEST_EQ_INT(run(s, k), PARLEY_OK);
}

static int send_to_bob(store *s, uint64_t from)
{
	static uint8_t content[CONTENT];
	store_job *j = store__job_new(STORE_OP_SEND);
	store__job_set_handle(j, "bob");
	j->account_id = from;
	j->device_id = 1;
	j->now_ms = 1000;
	j->relay.expires_ms = UINT64_MAX / 2;
	j->relay.queue_limit = 100000;
	j->relay.msgs = calloc(1, sizeof(*j->relay.msgs));
	j->relay.content_buf = malloc(CONTENT);
	memset(content, 0x5a, sizeof(content));
	memcpy(j->relay.content_buf, content, CONTENT);
	j->relay.msgs[0] = (store_out_msg){.device_id = 1, .registration_id = 21, .type = 1,
					   .content = j->relay.content_buf, .content_len = CONTENT};
	j->relay.n_msgs = 1;
	return run(s, j);
}

static int space_becomes(store *s, int want)
{
	for (int i = 0; i < 300 && store__space(s) != want; i++)
		usleep(10 * 1000);
	return store__space(s);
}

/* Receives bob's queue and acks it 100 at a time; returns the envelopes deleted. */
static uint64_t drain_bob(store *s, uint64_t bob)
{
	uint64_t deleted = 0, after = 0;
	for (;;) {
		store_job *f = store__job_new(STORE_OP_FETCH_QUEUE);
		f->account_id = bob;
		f->device_id = 1;
		f->now_ms = 2000;
		f->relay.after_id = after;
		f->relay.limit = 100;
		TEST_EQ_INT(store__run_sync(s, f), PARLEY_OK);
		size_t n = f->relay.n_envs;
		store_job *a = store__job_new(STORE_OP_ACK);
		a->account_id = bob;
		a->device_id = 1;
		TEST_EQ_INT(store__job_relay_alloc_ids(a, n), PARLEY_OK);
		for (size_t i = 0; i < n; i++)
			a->relay.ids[i] = after = f->relay.envs[i].server_id;
		store__job_free(f);
		if (n == 0) {
			store__job_free(a);
			return deleted;
		}
		TEST_EQ_INT(store__run_sync(s, a), PARLEY_OK);
		deleted += a->relay.n_deleted;
		store__job_free(a);
	}
}

static void test_full_database_drains(void)
{
	char reason[160];
	snprintf(path, sizeof(path), "%s/full.db", dir);
	store_config cfg = {.path = path, .max_page_count = 1000, .wal_checkpoint_pages = 16};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	if (s == NULL)
		return;
	uint64_t alice = create(s, "alice", 1), bob = create(s, "bob", 2);
	upload_keys(s, bob);
	TEST_EQ_INT(store__health(s, reason, sizeof(reason)), 0);

	int sent = 0, rc;
	while ((rc = send_to_bob(s, alice)) == PARLEY_OK && sent < 10000)
		sent++;
	printf("# %d sends of %u bytes, then %s\n", sent, CONTENT, parley_errname(rc));
	TEST_EQ_INT(rc, PARLEY_E_STORAGE_FULL);
	TEST_CHECK(sent > 20);
	TEST_EQ_INT(space_becomes(s, STORE_SPACE_FULL), STORE_SPACE_FULL);
	TEST_EQ_INT(store__health(s, reason, sizeof(reason)), 1);
	TEST_CHECK(strstr(reason, "storage full") != NULL);
	/* refused at once while full, whatever needs room */
	TEST_EQ_INT(send_to_bob(s, alice), PARLEY_E_STORAGE_FULL);
	store_job *c = store__job_new(STORE_OP_CREATE_ACCOUNT);
	store__job_set_handle(c, "carol");
	memset(c->acct.key, 9, sizeof(c->acct.key));
	TEST_EQ_INT(run(s, c), PARLEY_E_STORAGE_FULL);

	/* acks drain it */
	TEST_EQ_INT(drain_bob(s, bob), (uint64_t)sent);
	TEST_EQ_INT(space_becomes(s, STORE_SPACE_OK), STORE_SPACE_OK);
	TEST_EQ_INT(store__health(s, reason, sizeof(reason)), 0);
	TEST_EQ_INT(send_to_bob(s, alice), PARLEY_OK);
	store__close(s);
}

/* --- the queue bound and cancellation, through a client on a loop --- */

struct counts {
	unsigned ok, closed, other;
};

static void on_done(void *arg, int status, const void *job)
{
	struct counts *c = arg;
	(void)job;
	if (status == PARLEY_OK)
		c->ok++;
	else if (status == PARLEY_E_CLOSED)
		c->closed++;
	else
		c->other++;
}

static store_job *account_job(const char *prefix, unsigned i)
{
	char h[32];
	store_job *j = store__job_new(STORE_OP_CREATE_ACCOUNT);
	snprintf(h, sizeof(h), "%s%u", prefix, i);
	store__job_set_handle(j, h);
	memset(j->acct.key, 0, sizeof(j->acct.key));
	memcpy(j->acct.key, prefix, 2);
	memcpy(j->acct.key + 2, &i, sizeof(i));
	return j;
}

/* max_batch 1: one transaction (and fsync) per job, so what is submitted at once stays queued. */
static store *open_slow(const char *name, unsigned queue_max)
{
	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
	store_config cfg = {.path = path, .max_batch = 1, .queue_max = queue_max};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	return s;
}

static void test_queue_bound(void)
{
	uv_loop_t loop;
	test_store_client t;
	store_client *c = NULL;
	struct counts n = {0};
	unsigned busy = 0, accepted = 0;
	store *s = open_slow("bound", 8);
	uv_loop_init(&loop);
	TEST_EQ_INT(test_store_client_open(&t, s, &loop, &c), PARLEY_OK);
	for (unsigned i = 0; i < 100; i++) {
		store_job *j = account_job("qb", i);
		int rc = store__submit(c, j, on_done, &n);
		if (rc == PARLEY_E_SERVER_BUSY) {
			busy++;
			store__job_free(j); /* refused: still the caller's */
		} else {
			TEST_EQ_INT(rc, PARLEY_OK);
			accepted++;
		}
	}
	printf("# 100 submitted at once: %u queued, %u refused with SERVER_BUSY\n", accepted, busy);
	TEST_CHECK(busy > 0);
	TEST_CHECK(accepted >= 8);
	/* an ack is admitted whatever the queue holds: it is what drains */
	store_job *a = store__job_new(STORE_OP_ACK);
	a->account_id = 1;
	a->device_id = 1;
	TEST_EQ_INT(store__submit(c, a, on_done, &n), PARLEY_OK);
	test_store_client_close(&t);
	TEST_EQ_INT(n.ok, accepted + 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	TEST_EQ_INT(uv_loop_close(&loop), 0);
	store__close(s);
}

static void test_cancel_owner(void)
{
	uv_loop_t loop;
	test_store_client t;
	store_client *c = NULL;
	struct counts others = {0}, mine = {0};
	static const int tag = 1;
	store *s = open_slow("cancel", 1000);
	uv_loop_init(&loop);
	TEST_EQ_INT(test_store_client_open(&t, s, &loop, &c), PARLEY_OK);
	for (unsigned i = 0; i < 20; i++)
		TEST_EQ_INT(store__submit(c, account_job("ot", i), on_done, &others), PARLEY_OK);
	store__client_set_owner(c, &tag);
	/* sends to nobody: one that runs answers NO_SUCH_ACCOUNT, one cancelled CLOSED */
	for (unsigned i = 0; i < 50; i++) {
		store_job *j = store__job_new(STORE_OP_SEND);
		store__job_set_handle(j, "nobody");
		j->relay.content_buf = malloc(CONTENT); /* freed by the cancel, not when it completes */
		TEST_EQ_INT(store__submit(c, j, on_done, &mine), PARLEY_OK);
	}
	/* the owner's ack still runs: a client may ack and close at once */
	store_job *a = store__job_new(STORE_OP_ACK);
	a->account_id = 1;
	a->device_id = 1;
	TEST_EQ_INT(store__submit(c, a, on_done, &mine), PARLEY_OK);
	store__client_set_owner(c, NULL);
	size_t cancelled = store__client_cancel(c, &tag);
	printf("# 50 sends of a closed owner: %zu cancelled while queued\n", cancelled);
	TEST_CHECK(cancelled > 0);
	test_store_client_close(&t);
	TEST_EQ_INT(others.ok, 20); /* nobody else's job is touched */
	TEST_EQ_INT(mine.closed, cancelled);
	TEST_EQ_INT(mine.ok, 1); /* the ack */
	TEST_EQ_INT(mine.closed + mine.other, 50); /* others: NO_SUCH_ACCOUNT, they ran */
	uv_run(&loop, UV_RUN_DEFAULT);
	TEST_EQ_INT(uv_loop_close(&loop), 0);
	store__close(s);
}

/* --- the per-sender share --- */

#define SHARE_QUEUE 40u  /* queue_limit */
#define SHARE_LIMIT 10u  /* sender_queue_limit: 25% */
#define SHARE_SENDERS 4
#define SHARE_MAX_IDS 64

/* One small envelope from `from` to device 1 of `to`; *id its server id when accepted. */
static int share_send(store *s, uint64_t from, const char *to, uint64_t now, uint64_t expires, uint64_t *id)
{
	store_job *j = store__job_new(STORE_OP_SEND);
	store__job_set_handle(j, to);
	j->account_id = from;
	j->device_id = 1;
	j->now_ms = now;
	j->relay.expires_ms = expires;
	j->relay.queue_limit = SHARE_QUEUE;
	j->relay.sender_queue_limit = SHARE_LIMIT;
	j->relay.msgs = calloc(1, sizeof(*j->relay.msgs));
	j->relay.content_buf = malloc(16);
	memset(j->relay.content_buf, 0x42, 16);
	j->relay.msgs[0] = (store_out_msg){.device_id = 1, .registration_id = 21, .type = 1,
					   .content = j->relay.content_buf, .content_len = 16};
	j->relay.n_msgs = 1;
	int rc = store__run_sync(s, j);
	*id = j->relay.msgs[0].server_id;
	store__job_free(j);
	return rc;
}

static void share_ack(store *s, uint64_t acc, uint64_t id)
{
	store_job *a = store__job_new(STORE_OP_ACK);
	a->account_id = acc;
	a->device_id = 1;
	TEST_EQ_INT(store__job_relay_alloc_ids(a, 1), PARLEY_OK);
	a->relay.ids[0] = id;
	TEST_EQ_INT(store__run_sync(s, a), PARLEY_OK);
	TEST_EQ_INT(a->relay.n_deleted, 1);
	store__job_free(a);
}

static void share_purge(store *s, uint64_t now)
{
	store_job *p = store__job_new(STORE_OP_PURGE_EXPIRED);
	p->now_ms = now;
	TEST_EQ_INT(run(s, p), PARLEY_OK);
}

/* What the store must answer, from an exact model of one queue. */
struct share_model {
	uint64_t id[SHARE_MAX_IDS], expires[SHARE_MAX_IDS];
	int sender[SHARE_MAX_IDS];
	size_t n;
};

static int model_expect(const struct share_model *m, int sender)
{
	unsigned mine = 0;
	for (size_t i = 0; i < m->n; i++)
		mine += m->sender[i] == sender;
	if (m->n >= SHARE_QUEUE)
		return PARLEY_E_QUEUE_FULL;
	if (m->n >= SHARE_LIMIT && mine >= SHARE_LIMIT)
		return PARLEY_E_SENDER_QUEUE_FULL;
	return PARLEY_OK;
}

static void model_remove(struct share_model *m, size_t i)
{
	m->id[i] = m->id[m->n - 1];
	m->expires[i] = m->expires[m->n - 1];
	m->sender[i] = m->sender[m->n - 1];
	m->n--;
}

static void test_sender_share_model(void)
{
	snprintf(path, sizeof(path), "%s/share.db", dir);
	store_config cfg = {.path = path};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	if (s == NULL)
		return;
	uint64_t bob = create(s, "bob", 2), from[SHARE_SENDERS];
	for (int i = 0; i < SHARE_SENDERS; i++) {
		char h[16];
		snprintf(h, sizeof(h), "sender%d", i);
		from[i] = create(s, h, (uint8_t)(10 + i));
	}
	upload_keys(s, bob);
	struct share_model m = {0};
	unsigned seed = 12345, outcomes[3] = {0}, mismatches = 0;
	uint64_t now = 1000;
	for (int step = 0; step < 3000; step++) {
		int op = (int)(rand_r(&seed) % 10);
		now += 10;
		if (op < 6) {
			/* senders 0 and 1 send most: they reach their share first */
			int who = (int)(rand_r(&seed) % 8);
			who = who < 3 ? 0 : who < 6 ? 1 : who - 4;
			/* one send in ten expires soon, for the purge */
			uint64_t expires = rand_r(&seed) % 10 == 0 ? now + 50 : UINT64_MAX / 2, id = 0;
			int want = model_expect(&m, who);
			int got = share_send(s, from[who], "bob", now, expires, &id);
			if (got != want) {
				printf("# step %d: sender %d got %s, the model says %s (queue %zu)\n", step, who,
				       parley_errname(got), parley_errname(want), m.n);
				mismatches++;
			}
			if (got == PARLEY_OK && m.n < SHARE_MAX_IDS) {
				m.id[m.n] = id;
				m.expires[m.n] = expires;
				m.sender[m.n++] = who;
			}
			outcomes[got == PARLEY_OK ? 0 : got == PARLEY_E_SENDER_QUEUE_FULL ? 1 : 2]++;
		} else if (op < 9 && m.n > 0) {
			size_t i = rand_r(&seed) % m.n;
			if (m.expires[i] > now) { /* an expired one is the purge's */
				share_ack(s, bob, m.id[i]);
				model_remove(&m, i);
			}
		} else if (op == 9) {
			share_purge(s, now);
			for (size_t i = m.n; i-- > 0;)
				if (m.expires[i] <= now)
					model_remove(&m, i);
		}
	}
	printf("# 3000 steps: %u sends accepted, %u SENDER_QUEUE_FULL, %u QUEUE_FULL; %u answers off the model\n",
	       outcomes[0], outcomes[1], outcomes[2], mismatches);
	TEST_EQ_INT(mismatches, 0);
	TEST_CHECK(outcomes[1] > 50); /* the share was reached often, and released by acks */
	TEST_CHECK(outcomes[0] > 500);
	store__close(s);
}

/* More queues past the share than the tally keeps (64): each still refuses at exactly the share. */
static void test_sender_share_many_queues(void)
{
	snprintf(path, sizeof(path), "%s/share-many.db", dir);
	store_config cfg = {.path = path};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	if (s == NULL)
		return;
	uint64_t alice = create(s, "alice", 1), id = 0;
	enum { N = 80 };
	unsigned exact = 0;
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < N; i++) {
			char h[16];
			snprintf(h, sizeof(h), "victim%d", i);
			if (round == 0) {
				upload_keys(s, create(s, h, (uint8_t)(20 + i)));
				for (unsigned k = 0; k < SHARE_LIMIT; k++)
					TEST_EQ_INT(share_send(s, alice, h, 1000, UINT64_MAX / 2, &id), PARLEY_OK);
			}
			exact += share_send(s, alice, h, 1000, UINT64_MAX / 2, &id) == PARLEY_E_SENDER_QUEUE_FULL;
		}
	printf("# %d long queues, visited twice: %u of %d sends refused at the share\n", N, exact, 2 * N);
	TEST_EQ_INT(exact, 2 * N);
	store__close(s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/parley-space-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 99;
	TEST_RUN(test_full_database_drains);
	TEST_RUN(test_queue_bound);
	TEST_RUN(test_cancel_owner);
	TEST_RUN(test_sender_share_model);
	TEST_RUN(test_sender_share_many_queues);
	test_remove_tree(dir);
	TEST_EXIT();
}
