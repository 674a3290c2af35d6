/* server/store/sql/entities.c + enrol.c at the store level (store__run_sync, no server): what the
 * wire tests (t23) cannot see from outside, read back from the file through a connection of its own.
 *
 *   approvals   a refused approval (another device key, another request's fields) writes no row; the
 *               valid one writes one (with its approver), listed with its request; a second one is
 *               ALREADY_APPROVED and the row is the first's.
 *   transfer    a refused list leaves entities.primary_admin where it was (the savepoint rolls the
 *               move back); an accepted one moves it.
 *   migration   a file at "server.entities" version 1 (no entity_approvals) with a pending request
 *               migrates to 2: the request is listed without an approval and can then be approved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "common/dynbuf.h"
#include "crypto/crypto.h"
#include "entities/entities.h"
#include "store/store.h"
#include "test.h"
#include "test_sqlite.h"
#include "wire/approval.h"
#include "wire/stafflist.h"

static char dir[64];
static char path[128];

typedef struct tacct {
	char handle[16];
	uint64_t id;
	uint8_t pk[32], sk[64];
} tacct;

static store *open_store(const char *name)
{
	store_config cfg = {.path = path};
	store *s = NULL;
	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	return s;
}

static store *reopen(void)
{
	store_config cfg = {.path = path};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	return s;
}

static void mk(store *s, tacct *a, const char *handle)
{
	store_job *j = store__job_new(STORE_OP_CREATE_ACCOUNT);
	snprintf(a->handle, sizeof(a->handle), "%s", handle);
	crypto_sign_keypair(a->pk, a->sk);
	store__job_set_handle(j, handle);
	store__job_set_device_name(j, "first");
	memcpy(j->acct.key, a->pk, 32);
	j->now_ms = 1000;
	TEST_EQ_INT(store__run_sync(s, j), PARLEY_OK);
	a->id = j->account_id;
	store__job_free(j);
}

/* the staff: ascending account ids, the primary flagged */
typedef struct staff {
	crypto_keypair ek;
	uint64_t entity_id, version;
	size_t n;
	wire_staff_member m[4];
} staff;

static void staff_set(staff *st, const tacct *a, int role, int primary)
{
	size_t i = 0;
	while (i < st->n && st->m[i].account_id < a->id)
		i++;
	if (i == st->n || st->m[i].account_id != a->id) {
		memmove(&st->m[i + 1], &st->m[i], (st->n - i) * sizeof(st->m[0]));
		st->n++;
	}
	wire_staff_member *m = &st->m[i];
	memset(m, 0, sizeof(*m));
	m->account_id = a->id;
	snprintf(m->handle, sizeof(m->handle), "%s", a->handle);
	m->role = (uint8_t)role;
	m->flags = primary ? WIRE_STAFF_PRIMARY : 0;
	m->account_key[0] = CRYPTO_SIGNAL_KEY_TYPE;
}

/* A job of `op` on entity "ent" for caller a (device 1), with the staff's list at `version` if
 * version > 0. */
static store_job *ent_job(enum store_op op, const tacct *a, const staff *st, uint64_t version)
{
	store_job *j = store__job_new(op);
	snprintf(j->ent.entity, sizeof(j->ent.entity), "ent");
	snprintf(j->ent.display_name, sizeof(j->ent.display_name), "Ent");
	j->caller_account = a->id;
	j->caller_device = 1;
	j->now_ms = 5000;
	j->ent.max_members = j->ent.max_pending = j->ent.max_codes = 10;
	j->ent.guess_cap = j->ent.acct_cap = 10;
	j->ent.guess_per_ms = j->ent.acct_per_ms = 1;
	if (version > 0) {
		wire_stafflist l;
		dynbuf out;
		memset(&l, 0, sizeof(l));
		l.entity_id = version == 1 ? 0 : st->entity_id;
		snprintf(l.handle, sizeof(l.handle), "ent");
		snprintf(l.display_name, sizeof(l.display_name), "Ent");
		crypto__pubkey_serialize(l.entity_key, st->ek.pub);
		memcpy(j->ent.entity_key, l.entity_key, sizeof(j->ent.entity_key));
		l.version = version;
		l.timestamp_ms = 5000;
		l.n = st->n;
		l.members = (wire_staff_member *)st->m;
		dynbuf__init(&out, WIRE_STAFFLIST_MAX_BYTES);
		TEST_EQ_INT(wire__stafflist_sign(&l, st->ek.priv, &out), PARLEY_OK);
		TEST_EQ_INT(entities__job_list(j, out.data, out.len), PARLEY_OK);
		dynbuf__free(&out);
	}
	return j;
}

static int run(store *s, store_job *j)
{
	int rc = store__run_sync(s, j);
	store__job_free(j);
	return rc;
}

/* An entity "ent" with primary p (and admin b if given), and a pending request of c; its id. */
static uint64_t setup(store *s, staff *st, const tacct *p, const tacct *b, const tacct *c)
{
	memset(st, 0, sizeof(*st));
	crypto__keypair_generate(&st->ek);
	staff_set(st, p, WIRE_ROLE_ADMIN, 1);
	store_job *j = ent_job(STORE_OP_ENTITY_CREATE, p, st, 1);
	TEST_EQ_INT(store__run_sync(s, j), PARLEY_OK);
	st->entity_id = j->ent.entity_id;
	st->version = 1;
	store__job_free(j);
	if (b != NULL) {
		staff_set(st, b, WIRE_ROLE_ADMIN, 0);
		j = ent_job(STORE_OP_ENTITY_MEMBER, p, st, ++st->version);
		snprintf(j->handle, sizeof(j->handle), "%s", b->handle);
		j->ent.role = WIRE_ROLE_ADMIN;
		TEST_EQ_INT(run(s, j), PARLEY_OK);
	}
	j = ent_job(STORE_OP_ENTITY_CODE, p, st, 0);
	j->ent.role = WIRE_ROLE_AGENT;
	j->ent.expires_ms = 1u << 30;
	memset(j->ent.code_hash, 0x33, 32);
	TEST_EQ_INT(run(s, j), PARLEY_OK);
	j = ent_job(STORE_OP_ENTITY_JOIN, c, st, 0);
	memset(j->ent.code_hash, 0x33, 32);
	j->ent.entity_key[0] = CRYPTO_SIGNAL_KEY_TYPE;
	memset(j->ent.entity_key + 1, 0x42, 32);
	TEST_EQ_INT(store__run_sync(s, j), PARLEY_OK);
	TEST_EQ_INT(j->ent.refusal, 0);
	uint64_t req = j->ent.request_id;
	store__job_free(j);
	return req;
}

/* approver's approval of request req of candidate c, signed with sk */
static int approve_with(store *s, const tacct *approver, uint64_t req, const tacct *c, const uint8_t *sk,
			uint64_t request_named)
{
	wire_approval a;
	uint8_t rec[WIRE_APPROVAL_MAX_BYTES];
	size_t len = 0;
	memset(&a, 0, sizeof(a));
	snprintf(a.entity, sizeof(a.entity), "ent");
	a.request_id = request_named;
	a.candidate_id = c->id;
	a.candidate_key[0] = CRYPTO_SIGNAL_KEY_TYPE;
	memset(a.candidate_key + 1, 0x42, 32);
	a.role = WIRE_ROLE_AGENT;
	wire__approval_devlist_hash((const uint8_t *)"", 0, a.devlist_hash);
	a.approver_id = approver->id;
	a.approver_device = 1;
	TEST_EQ_INT(wire__approval_sign(&a, sk, rec, sizeof(rec), &len), PARLEY_OK);
	store_job *j = ent_job(STORE_OP_ENTITY_DECIDE, approver, NULL, 0);
	j->ent.request_id = req;
	j->ent.approve = 1;
	TEST_EQ_INT(entities__job_approval(j, rec, len), PARLEY_OK);
	return run(s, j);
}

/* the approval length listed with request req (0: none, -1: not listed) */
static long listed(store *s, const tacct *admin, uint64_t req)
{
	long len = -1;
	store_job *j = ent_job(STORE_OP_ENTITY_REQUESTS, admin, NULL, 0);
	TEST_EQ_INT(store__run_sync(s, j), PARLEY_OK);
	for (size_t i = 0; i < j->ent.n_reqs; i++)
		if (j->ent.reqs[i].id == req)
			len = (long)j->ent.reqs[i].approval_len;
	store__job_free(j);
	return len;
}

static void test_approvals(void)
{
	store *s = open_store("approvals");
	tacct p, b, c;
	staff st;
	uint8_t opk[32], osk[64];
	char q[128];
	mk(s, &p, "prim");
	mk(s, &b, "admin");
	mk(s, &c, "cand");
	uint64_t req = setup(s, &st, &p, &b, &c);
	crypto_sign_keypair(opk, osk);
	TEST_EQ_INT(approve_with(s, &b, req, &c, osk, req), PARLEY_E_APPROVAL_INVALID);
	TEST_EQ_INT(approve_with(s, &b, req, &c, b.sk, req + 1), PARLEY_E_APPROVAL_INVALID);
	TEST_EQ_INT(approve_with(s, &b, req, &b, b.sk, req), PARLEY_E_APPROVAL_INVALID); /* another candidate */
	store__close(s);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT count(*) FROM entity_approvals"), 0);
	s = reopen();
	TEST_EQ_INT(listed(s, &p, req), 0);
	TEST_EQ_INT(approve_with(s, &b, req, &c, b.sk, req), PARLEY_OK);
	TEST_CHECK(listed(s, &p, req) > 0);
	TEST_EQ_INT(approve_with(s, &p, req, &c, p.sk, req), PARLEY_E_ALREADY_APPROVED);
	store__close(s);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT count(*) FROM entity_approvals"), 1);
	snprintf(q, sizeof(q), "SELECT approver FROM entity_approvals WHERE request_id = %llu", (unsigned long long)req);
	TEST_EQ_INT(test_sqlite_int(path, q), (int)b.id);
	/* still pending: the staff did not change */
	TEST_EQ_INT(test_sqlite_int(path, "SELECT count(*) FROM entity_requests WHERE state = 0"), 1);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT staff_version FROM entities"), (int)st.version);
}

static void test_transfer(void)
{
	store *s = open_store("transfer");
	tacct p, b, c;
	staff st;
	mk(s, &p, "prim");
	mk(s, &b, "admin");
	mk(s, &c, "cand");
	(void)setup(s, &st, &p, &b, &c);
	/* the flag left on p: refused after the registry's primary moved, which must roll back */
	store_job *j = ent_job(STORE_OP_ENTITY_MEMBER, &p, &st, st.version + 1);
	snprintf(j->handle, sizeof(j->handle), "%s", b.handle);
	j->ent.transfer = 1;
	TEST_EQ_INT(run(s, j), PARLEY_E_STAFF_LIST_INVALID);
	store__close(s);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT primary_admin FROM entities"), (int)p.id);
	s = reopen();
	staff_set(&st, &p, WIRE_ROLE_ADMIN, 0);
	staff_set(&st, &b, WIRE_ROLE_ADMIN, 1);
	j = ent_job(STORE_OP_ENTITY_MEMBER, &p, &st, st.version + 1);
	snprintf(j->handle, sizeof(j->handle), "%s", b.handle);
	j->ent.transfer = 1;
	TEST_EQ_INT(run(s, j), PARLEY_OK);
	store__close(s);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT primary_admin FROM entities"), (int)b.id);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT staff_version FROM entities"), (int)st.version + 1);
}

static void test_migration(void)
{
	store *s = open_store("migrate");
	tacct p, c;
	staff st;
	mk(s, &p, "prim");
	mk(s, &c, "cand");
	uint64_t req = setup(s, &st, &p, NULL, &c);
	store__close(s);
	/* back to step 1: what a parleyd before approvals left */
	TEST_EQ_INT(test_sqlite_exec(path, "DROP TABLE entity_approvals;"
					   " UPDATE schema_version SET version = 1 WHERE name = 'server.entities'"),
		    SQLITE_OK);
	s = reopen();
	TEST_EQ_INT(listed(s, &p, req), 0);
	TEST_EQ_INT(approve_with(s, &p, req, &c, p.sk, req), PARLEY_OK);
	TEST_CHECK(listed(s, &p, req) > 0);
	store__close(s);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT version FROM schema_version WHERE name = 'server.entities'"), 2);
}

int main(void)
{
	if (sodium_init() < 0 || crypto__init() != PARLEY_OK)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/parley-entities-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	TEST_RUN(test_approvals);
	TEST_RUN(test_transfer);
	TEST_RUN(test_migration);
	test_remove_tree(dir);
	TEST_EXIT();
}
