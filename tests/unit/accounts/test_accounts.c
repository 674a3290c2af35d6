/* server/accounts driven directly (no sockets) over a real SQLite store in a temp dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include <parley/error.h>

#include "accounts/accounts.h"
#include "test.h"
#include "store_loop.h"

/* any 33-byte Signal public key will do where no list is signed (issue 9: registration needs one) */
static const uint8_t test_account_key[33] = {0x05, 1, 2, 3};

static uv_loop_t loop;
static store *st;
static store_client *sc;
static accounts acc;

/* One connection as the tests drive it: the challenge state and, once authenticated, who it is. */
typedef struct acct_session {
	acct_auth a;
	uint64_t account_id;
	uint32_t device_id;
	int authenticated;
	uint8_t *nonce;
	uint8_t auth_failures;
} acct_session;

static void accounts__session_init(acct_session *s)
{
	memset(s, 0, sizeof(*s));
	accounts__auth_init(&s->a);
	s->nonce = s->a.nonce;
}

/* What a call reported: an accounts_result (register, auth) or the store job (device calls). */
struct result {
	int status;
	uint64_t account_id;
	uint32_t device_id;
	size_t n_devices;
	int new_challenge, close_conn;
	uint32_t removed_device;
	uint64_t retry_after_ms;
};

struct outcome {
	int done;
	acct_session *s;
	struct result r;
	store_device devs[8];
};

static void on_attempt(void *arg, int status, const void *result)
{
	const accounts_result *ar = result;
	struct outcome *o = arg;
	o->done = 1;
	o->r.status = status;
	o->r.account_id = ar->account_id;
	o->r.device_id = ar->device_id;
	o->r.new_challenge = ar->new_challenge;
	o->r.close_conn = ar->close_conn;
	o->r.retry_after_ms = ar->retry_after_ms;
	o->s->authenticated = o->s->a.authenticated;
	o->s->auth_failures = o->s->a.auth_failures;
	if (status == PARLEY_OK) {
		o->s->account_id = ar->account_id;
		o->s->device_id = ar->device_id;
	}
	uv_stop(&loop);
}

static void on_job(void *arg, int status, const void *result)
{
	const store_job *j = result;
	struct outcome *o = arg;
	o->done = 1;
	o->r.status = status;
	if (j != NULL && status == PARLEY_OK) {
		o->r.device_id = j->device_id;
		o->r.n_devices = j->acct.n_devices;
		for (size_t i = 0; i < j->acct.n_devices && i < 8; i++)
			o->devs[i] = j->acct.devices[i];
		if (j->op == STORE_OP_REMOVE_DEVICE)
			o->r.removed_device = j->device_id;
	}
	uv_stop(&loop);
}

static void wait_for(struct outcome *o)
{
	while (!o->done)
		uv_run(&loop, UV_RUN_DEFAULT);
}

struct dev {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

static const char *reg_peer = "127.0.0.1:1"; /* where do_register comes from */
static uint64_t reg_now = 1000;
static const uint8_t *reg_ak = test_account_key; /* RegisterRequest.account_key of do_register */
static size_t reg_ak_len = 33;

static int do_register(acct_session *s, const char *handle, const struct dev *d, const char *name,
		       const uint8_t *sign_nonce, const char *signed_name, struct outcome *o)
{
	Parley__Wire__RegisterRequest rq = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	uint8_t sig[64];
	dynbuf m;
	dynbuf__init(&m, 1024);
	wire__register_signed_bytes(sign_nonce ? sign_nonce : s->nonce, handle, d->pk,
				    signed_name ? signed_name : name, &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, d->sk);
	dynbuf__free(&m);
	rq.handle = (char *)handle;
	rq.device_key.data = (uint8_t *)d->pk;
	rq.device_key.len = 32;
	rq.device_name = (char *)name;
	rq.signature.data = sig;
	rq.signature.len = 64;
	rq.account_key.data = (uint8_t *)reg_ak;
	rq.account_key.len = reg_ak_len;
	memset(o, 0, sizeof(*o));
	o->s = s;
	accounts__register(&acc, sc, &s->a, &rq, reg_peer, reg_now, on_attempt, o);
	wait_for(o);
	return o->r.status;
}

static int do_auth(acct_session *s, const char *handle, uint32_t device, const struct dev *d,
		   const uint8_t *sign_nonce, struct outcome *o)
{
	Parley__Wire__AuthRequest rq = PARLEY__WIRE__AUTH_REQUEST__INIT;
	uint8_t sig[64];
	dynbuf m;
	dynbuf__init(&m, 1024);
	wire__auth_signed_bytes(sign_nonce ? sign_nonce : s->nonce, handle, device, &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, d->sk);
	dynbuf__free(&m);
	rq.handle = (char *)handle;
	rq.device_id = device;
	rq.signature.data = sig;
	rq.signature.len = 64;
	memset(o, 0, sizeof(*o));
	o->s = s;
	accounts__auth(&acc, sc, &s->a, &rq, on_attempt, o);
	wait_for(o);
	return o->r.status;
}

/* AddDevice of pk to alice's account, with the new device's proof signed by sk (NULL: none) at ts. */
static int do_add_at(acct_session *s, const uint8_t *pk, const uint8_t *sk, uint64_t ts, const char *name,
		     struct outcome *o)
{
	Parley__Wire__AddDeviceRequest rq = PARLEY__WIRE__ADD_DEVICE_REQUEST__INIT;
	uint8_t sig[64];
	dynbuf m;
	rq.device_key.data = (uint8_t *)pk;
	rq.device_key.len = 32;
	rq.device_name = (char *)name;
	rq.timestamp_ms = ts;
	if (sk != NULL) {
		dynbuf__init(&m, 256);
		wire__add_device_signed_bytes("alice", pk, ts, &m);
		crypto_sign_detached(sig, NULL, m.data, m.len, sk);
		dynbuf__free(&m);
		rq.signature.data = sig;
		rq.signature.len = 64;
	}
	memset(o, 0, sizeof(*o));
	accounts__add_device(&acc, sc, s->account_id, 1, "alice", &rq, 1000000000, on_job, o);
	wait_for(o);
	return o->r.status;
}

static int do_add(acct_session *s, const struct dev *d, const char *name, struct outcome *o)
{
	return do_add_at(s, d->pk, d->sk, 1000000000, name, o);
}

static int do_remove(acct_session *s, uint32_t id, struct outcome *o)
{
	Parley__Wire__RemoveDeviceRequest rq = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
	rq.device_id = id;
	memset(o, 0, sizeof(*o));
	accounts__remove_device(sc, s->account_id, 1, &rq, on_job, o);
	wait_for(o);
	return o->r.status;
}

static int do_list(acct_session *s, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	accounts__list_devices(sc, s->account_id, 1, on_job, o);
	wait_for(o);
	return o->r.status;
}

static void test_handles(void)
{
	const char *good[] = {"abc", "a.b", "a_b-c9", "z0123456789012345678901234567890"};
	const char *bad[] = {"", "ab", "1abc", "Abc", "a b", "abc!", "_abc", "a\xc3\xa9z",
			     "a01234567890123456789012345678901"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		TEST_CHECK(wire__handle_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TEST_CHECK(!wire__handle_valid(bad[i]));
}

/* issue 9: a new account needs its account key, 33 bytes 0x05 || X25519 */
static void test_account_key_required(void)
{
	struct dev d;
	struct outcome o;
	acct_session s;
	const uint8_t bad_type[33] = {0x06, 1};
	crypto_sign_keypair(d.pk, d.sk);
	accounts__session_init(&s);
	reg_peer = "127.0.0.9:1"; /* its own registration budget: the attempts below spend it */
	reg_ak_len = 0;
	TEST_EQ_INT(do_register(&s, "akless", &d, "x", NULL, NULL, &o), PARLEY_E_INVALID_KEY);
	reg_ak_len = 32;
	TEST_EQ_INT(do_register(&s, "akless", &d, "x", NULL, NULL, &o), PARLEY_E_INVALID_KEY);
	reg_ak = bad_type;
	reg_ak_len = 33;
	TEST_EQ_INT(do_register(&s, "akless", &d, "x", NULL, NULL, &o), PARLEY_E_INVALID_KEY);
	reg_ak = test_account_key;
	TEST_EQ_INT(do_register(&s, "akless", &d, "x", NULL, NULL, &o), PARLEY_OK);
	reg_peer = "127.0.0.1:1";
}

static void test_flow(void)
{
	struct dev d1, d2, d3, other;
	struct outcome o;
	acct_session s1, s2, s3;
	uint8_t old_nonce[32];
	crypto_sign_keypair(d1.pk, d1.sk);
	crypto_sign_keypair(d2.pk, d2.sk);
	crypto_sign_keypair(d3.pk, d3.sk);
	crypto_sign_keypair(other.pk, other.sk);

	/* register: success authenticates as device 1 */
	accounts__session_init(&s1);
	TEST_EQ_INT(do_register(&s1, "alice", &d1, "laptop", NULL, NULL, &o), PARLEY_OK);
	TEST_EQ_INT(o.r.device_id, 1);
	TEST_CHECK(o.r.account_id > 0);
	TEST_CHECK(s1.authenticated);
	TEST_EQ_INT(s1.device_id, 1);
	uint64_t alice = o.r.account_id;
	TEST_EQ_INT(do_register(&s1, "alice2", &d2, "x", NULL, NULL, &o), PARLEY_E_ALREADY_AUTHENTICATED);
	TEST_EQ_INT(do_auth(&s1, "alice", 1, &d1, NULL, &o), PARLEY_E_ALREADY_AUTHENTICATED);

	/* handle taken: consumes the challenge and issues a fresh one, not counted as a failure */
	accounts__session_init(&s2);
	memcpy(old_nonce, s2.nonce, 32);
	TEST_EQ_INT(do_register(&s2, "alice", &d2, "phone", NULL, NULL, &o), PARLEY_E_HANDLE_TAKEN);
	TEST_EQ_INT(o.r.new_challenge, 1);
	TEST_CHECK(memcmp(old_nonce, s2.nonce, 32) != 0);
	TEST_EQ_INT(s2.auth_failures, 0);
	TEST_EQ_INT(do_register(&s2, "Alice", &d2, "phone", NULL, NULL, &o), PARLEY_E_BAD_HANDLE);
	/* key already registered to alice */
	TEST_EQ_INT(do_register(&s2, "bob", &d1, "laptop", NULL, NULL, &o), PARLEY_E_DEVICE_KEY_IN_USE);

	/* replay: a signature over another connection's (or an old) nonce fails */
	TEST_EQ_INT(do_register(&s2, "bob", &d2, "phone", old_nonce, NULL, &o), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(o.r.close_conn, 0);
	/* signature over different fields (name) fails */
	TEST_EQ_INT(do_register(&s2, "bob", &d2, "phone", NULL, "tablet", &o), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(o.r.close_conn, 0);
	/* third failure: the connection must be closed */
	TEST_EQ_INT(do_auth(&s2, "alice", 1, &other, NULL, &o), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(o.r.close_conn, 1);
	TEST_CHECK(!s2.authenticated);

	/* auth: unknown handle, unknown device and wrong key all look the same */
	accounts__session_init(&s3);
	TEST_EQ_INT(do_auth(&s3, "nobody", 1, &d1, NULL, &o), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(o.r.new_challenge, 1);
	TEST_EQ_INT(do_auth(&s3, "alice", 9, &d1, NULL, &o), PARLEY_E_BAD_SIGNATURE);
	accounts__session_init(&s3);
	memcpy(old_nonce, s3.nonce, 32);
	TEST_EQ_INT(do_auth(&s3, "alice", 1, &d2, NULL, &o), PARLEY_E_BAD_SIGNATURE);
	/* the consumed nonce cannot be used again, even with the right key */
	TEST_EQ_INT(do_auth(&s3, "alice", 1, &d1, old_nonce, &o), PARLEY_E_BAD_SIGNATURE);
	accounts__session_init(&s3);
	TEST_EQ_INT(do_auth(&s3, "alice", 1, &d1, NULL, &o), PARLEY_OK);
	TEST_EQ_INT(o.r.account_id, alice);
	TEST_CHECK(s3.authenticated);

	/* devices (the "authenticated only" gate is the dispatcher's: tests/unit/accounts/test_dispatch.c) */
	uint8_t zero[32] = {0};
	TEST_EQ_INT(do_add_at(&s1, zero, d1.sk, 1000000000, "bad", &o), PARLEY_E_INVALID_KEY);
	/* the new device's proof of possession (security item 10): missing, by another key, too old */
	TEST_EQ_INT(do_add_at(&s1, d2.pk, NULL, 1000000000, "phone", &o), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(do_add_at(&s1, d2.pk, d3.sk, 1000000000, "phone", &o), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(do_add_at(&s1, d2.pk, d2.sk, 1000000000 - 601000, "phone", &o), PARLEY_E_LINK_CODE_EXPIRED);
	TEST_EQ_INT(do_add_at(&s1, d2.pk, d2.sk, 1000000000 + 601000, "phone", &o), PARLEY_E_LINK_CODE_EXPIRED);
	TEST_EQ_INT(do_add(&s1, &d1, "dup", &o), PARLEY_E_DEVICE_KEY_IN_USE);
	TEST_EQ_INT(do_add(&s1, &d2, "phone", &o), PARLEY_OK);
	TEST_EQ_INT(o.r.device_id, 2);
	TEST_EQ_INT(do_list(&s3, &o), PARLEY_OK);
	TEST_EQ_INT(o.r.n_devices, 2);
	TEST_EQ_INT(o.devs[1].device_id, 2);
	TEST_EQ_STR(o.devs[1].name, "phone");
	TEST_EQ_MEM(o.devs[1].key, d2.pk, 32);
	TEST_CHECK(o.devs[0].last_seen_ms > 0);

	/* the new device can authenticate with its own key */
	acct_session s4;
	accounts__session_init(&s4);
	TEST_EQ_INT(do_auth(&s4, "alice", 2, &d2, NULL, &o), PARLEY_OK);

	/* limit (store configured with 3 devices per account) */
	TEST_EQ_INT(do_add(&s1, &d3, "third", &o), PARLEY_OK);
	TEST_EQ_INT(o.r.device_id, 3);
	TEST_EQ_INT(do_add(&s1, &other, "fourth", &o), PARLEY_E_TOO_MANY_DEVICES);

	/* remove */
	TEST_EQ_INT(do_remove(&s1, 2, &o), PARLEY_OK);
	TEST_EQ_INT(o.r.removed_device, 2);
	TEST_EQ_INT(do_remove(&s1, 2, &o), PARLEY_E_NO_SUCH_DEVICE);
	TEST_EQ_INT(do_remove(&s1, 3, &o), PARLEY_OK);
	TEST_EQ_INT(do_remove(&s1, 1, &o), PARLEY_E_LAST_DEVICE);
	accounts__session_init(&s4);
	TEST_EQ_INT(do_auth(&s4, "alice", 2, &d2, NULL, &o), PARLEY_E_BAD_SIGNATURE);
	/* ids are never reused */
	TEST_EQ_INT(do_add(&s1, &d2, "phone again", &o), PARLEY_OK);
	TEST_EQ_INT(o.r.device_id, 4);
}

/* Security item 4: registrations per source address (an IPv4 address, an IPv6 /64). */
static void test_register_limit(void)
{
	uint8_t k1[RL_KEY_LEN], k2[RL_KEY_LEN];
	TEST_EQ_INT(accounts__addr_key("10.1.2.3:80", k1), 0);
	TEST_EQ_INT(accounts__addr_key("::ffff:10.1.2.3:9", k2), 0);
	TEST_EQ_MEM(k1, k2, RL_KEY_LEN);
	TEST_EQ_INT(accounts__addr_key("2001:db8:1:2::1:443", k1), 0);
	TEST_EQ_INT(accounts__addr_key("2001:db8:1:2:ffff::7:443", k2), 0);
	TEST_EQ_MEM(k1, k2, RL_KEY_LEN); /* same /64 */
	TEST_EQ_INT(accounts__addr_key("2001:db8:1:3::1:443", k2), 0);
	TEST_CHECK(memcmp(k1, k2, RL_KEY_LEN) != 0);
	TEST_EQ_INT(accounts__addr_key("garbage", k1), -1);

	struct dev d;
	struct outcome o;
	acct_session s;
	double cap = acc.reg_capacity, rate = acc.reg_per_sec;
	acc.reg_capacity = 2;
	acc.reg_per_sec = 1.0; /* one a second */
	reg_peer = "10.9.9.9:1000";
	reg_now = 50000;
	const char *handles[] = {"lim1", "lim2", "lim3"};
	for (int i = 0; i < 3; i++) {
		crypto_sign_keypair(d.pk, d.sk);
		accounts__session_init(&s);
		TEST_EQ_INT(do_register(&s, handles[i], &d, "", NULL, NULL, &o),
			    i < 2 ? PARLEY_OK : PARLEY_E_REGISTRATION_LIMITED);
	}
	TEST_CHECK(o.r.retry_after_ms > 0 && o.r.retry_after_ms <= 1001);
	TEST_EQ_INT(o.r.new_challenge, 1); /* a fresh challenge, as after any failed attempt */
	/* another address is not affected; the same one is after the bucket drained */
	reg_peer = "10.9.9.8:1000";
	accounts__session_init(&s);
	TEST_EQ_INT(do_register(&s, "lim3", &d, "", NULL, NULL, &o), PARLEY_OK);
	reg_peer = "10.9.9.9:2000";
	reg_now += 1001;
	crypto_sign_keypair(d.pk, d.sk);
	accounts__session_init(&s);
	TEST_EQ_INT(do_register(&s, "lim4", &d, "", NULL, NULL, &o), PARLEY_OK);
	acc.reg_capacity = cap;
	acc.reg_per_sec = rate;
	reg_peer = "127.0.0.1:1";
}

static void test_busy(void)
{
	/* a second register while one is in flight is refused, without consuming the new challenge */
	struct dev d;
	struct outcome o1, o2;
	acct_session s;
	Parley__Wire__RegisterRequest rq = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	uint8_t sig[64];
	dynbuf m;
	crypto_sign_keypair(d.pk, d.sk);
	accounts__session_init(&s);
	o1.s = o2.s = &s;
	dynbuf__init(&m, 1024);
	wire__register_signed_bytes(s.nonce, "carol", d.pk, "", &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, d.sk);
	dynbuf__free(&m);
	rq.handle = "carol";
	rq.device_key.data = d.pk;
	rq.device_key.len = 32;
	rq.device_name = "";
	rq.signature.data = sig;
	rq.signature.len = 64;
	rq.account_key.data = (uint8_t *)test_account_key;
	rq.account_key.len = 33;
	memset(&o1.r, 0, sizeof(o1.r));
	memset(&o2.r, 0, sizeof(o2.r));
	o1.done = o2.done = 0;
	accounts__register(&acc, sc, &s.a, &rq, "127.0.0.1:1", 1000, on_attempt, &o1);
	accounts__register(&acc, sc, &s.a, &rq, "127.0.0.1:1", 1000, on_attempt, &o2);
	TEST_EQ_INT(o2.done, 1);
	TEST_EQ_INT(o2.r.status, PARLEY_E_BUSY);
	wait_for(&o1);
	TEST_EQ_INT(o1.r.status, PARLEY_OK);
}

int main(void)
{
	char dir[64], path[128];
	snprintf(dir, sizeof(dir), "/tmp/parley-acct-XXXXXX");
	if (mkdtemp(dir) == NULL || sodium_init() < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/a.db", dir);
	store_config cfg = {.path = path, .max_devices = 3};
	if (store__open(&cfg, &st) != PARLEY_OK)
		return 1;
	uv_loop_init(&loop);
	test_store_client tsc;
	test_store_client_open(&tsc, st, &loop, &sc);
	parleyd_config pc;
	config__defaults(&pc);
	pc.max_auth_failures = 3;
	accounts__init(&acc, &pc);

	TEST_RUN(test_handles);
	TEST_RUN(test_flow);
	TEST_RUN(test_account_key_required);
	TEST_RUN(test_busy);
	TEST_RUN(test_register_limit);

	test_store_client_close(&tsc);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_run(&loop, UV_RUN_DEFAULT);
	TEST_EQ_INT(uv_loop_close(&loop), 0);
	store__close(st);
	test_remove_tree(dir);
	TEST_EXIT();
}
