/* server/store: a full database (security item 16), made deterministic with PRAGMA max_page_count
 * (store_config.max_page_count) instead of a full filesystem (tests/integration/t14_disk_full does
 * that one): sends fail with STORAGE_FULL, the store reports itself degraded, every other write that
 * needs room is refused at once, acks (deletes need no new pages) still work, and once they freed the
 * database the store takes writes again by itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>

#include "store/store.h"
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
	store_job *k = store__job_new(STORE_OP_UPLOAD_KEYS);
	k->account_id = bob;
	k->device_id = 1;
	k->keys.registration_id = 21;
	memset(k->keys.identity, 3, sizeof(k->keys.identity));
	k->keys.has_spk = 1;
	k->keys.spk_id = 1;
	memset(k->keys.spk_pub, 4, sizeof(k->keys.spk_pub));
	memset(k->keys.spk_sig, 5, sizeof(k->keys.spk_sig));
	k->keys.pool_max = 100;
	TEST_EQ_INT(run(s, k), PARLEY_OK);
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

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/parley-space-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 99;
	TEST_RUN(test_full_database_drains);
	test_remove_tree(dir);
	TEST_EXIT();
}
