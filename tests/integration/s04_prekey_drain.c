/* Security item 4: one-time prekey drain through free accounts. Registration was unauthenticated and
 * unlimited and the bundle limit was per (requester, target) and per loop, so N fresh accounts took N
 * (times the burst) one-time prekeys of any device. Now:
 *  - registrations per source address are limited (leaky bucket, REGISTRATION_LIMITED + retry_after_ms);
 *  - each target device has a one-time-prekey budget kept in the store (across requesters and loops):
 *    beyond it, bundles carry the signed prekey only (the last-resort key: X3DH without DH4);
 *  - an exhausted pool or budget still yields a bundle, and a session built from it works;
 *  - one-time keys handed out and never used are reported to their device after
 *    prekey_forget_after_s, and its client deletes their private halves;
 *  - optionally (registration=pow) each registration pays a proof of work bound to its challenge.
 * Against a real parleyd with --workers=2 and the default limits, given explicitly since the harness
 * turns them off for the other tests (except prekey_forget_after_s, so the last check need not wait 31
 * days); default_limits checks they are the defaults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <parley/client.h>
#include <parley/error.h>
#include <sodium.h>
#include <sqlite3.h>

#include "harness.h"

/* any 33-byte Signal public key will do where no list is signed (issue 9: registration needs one) */
static const uint8_t test_account_key[33] = {0x05, 1, 2, 3};

#define ATTACKERS 200
#define VICTIM_KEYS 200

static srv s;
static char url[128];

/* GetBundles of every device of handle: the status; *otks counts the one-time prekeys received. */
static int fetch(int fd, const char *handle, int *otks)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	req.id = 61;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req.get_bundles = &g;
	g.handle = (char *)handle;
	wire_frame f;
	int st = pw_call(fd, &req, &f);
	*otks = 0;
	if (st == 0 && f.frame->response->get_bundles != NULL)
		for (size_t i = 0; i < f.frame->response->get_bundles->n_bundles; i++)
			*otks += f.frame->response->get_bundles->bundles[i]->one_time_prekey != NULL;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

static int prekeys_left(int fd)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetPrekeyCountRequest c = PARLEY__WIRE__GET_PREKEY_COUNT_REQUEST__INIT;
	req.id = 62;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT;
	req.get_prekey_count = &c;
	wire_frame f;
	int n = -1;
	if (pw_call(fd, &req, &f) == 0) {
		n = (int)f.frame->response->get_prekey_count->one_time_prekeys_remaining;
		wire__frame_free(&f);
	} else {
		it_failures++;
		fprintf(stderr, "not ok - prekey count failed\n");
	}
	return n;
}

/* 200 fresh accounts, each registered from its own address (127.0.0.2 ...), each fetching the victim's
 * bundles once: they must not empty its pool. */
static void many_accounts_cannot_empty_a_pool(void)
{
	uint8_t pk[32], sk[64];
	uint32_t regid = 0;
	int victim;
	IT_EQ(pw_register(s.port, "victim", pk, sk, &victim), PARLEY_OK);
	IT_EQ(it_upload_keys(victim, &regid, 100, 1), PARLEY_OK);
	IT_EQ(it_upload_keys_more(victim, 100, 101), PARLEY_OK);
	IT_EQ(prekeys_left(victim), VICTIM_KEYS);

	int served = 0, taken = 0;
	for (int i = 0; i < ATTACKERS; i++) {
		char src[32], handle[32];
		int fd = -1, otks = 0;
		snprintf(src, sizeof src, "127.0.0.%d", 2 + i);
		snprintf(handle, sizeof handle, "drain%d", i);
		int st = pw_register_from(s.port, src, handle, pk, sk, &fd, NULL);
		if (st != PARLEY_OK) {
			IT_EQ(st, PARLEY_OK);
			close(fd);
			continue;
		}
		served += fetch(fd, "victim", &otks) == PARLEY_OK;
		taken += otks;
		close(fd);
	}
	int left = prekeys_left(victim);
	printf("# %d accounts from %d addresses: %d bundles served, %d one-time prekeys taken, %d of %d left\n",
	       ATTACKERS, ATTACKERS, served, taken, left, VICTIM_KEYS);
	IT_EQ(served, ATTACKERS);      /* every requester still got a (signed-prekey) bundle */
	IT_CHECK(left >= VICTIM_KEYS / 2); /* the default budget (100) holds */
	IT_EQ(left + taken, VICTIM_KEYS);
	close(victim);
}

/* Registrations from one address beyond the burst are refused with the specific error. */
static void registration_rate_limited_per_address(void)
{
	uint8_t pk[32], sk[64];
	int ok = 0, limited = 0;
	uint64_t retry = 0;
	for (int i = 0; i < 12; i++) {
		char handle[32];
		snprintf(handle, sizeof handle, "burst%d", i);
		int st = pw_register_from(s.port, "127.0.0.250", handle, pk, sk, NULL, &retry);
		ok += st == PARLEY_OK;
		if (st == PARLEY_E_REGISTRATION_LIMITED) {
			limited++;
			IT_CHECK(retry > 0);
		}
	}
	printf("# 12 registrations from 127.0.0.250: %d accepted, %d REGISTRATION_LIMITED\n", ok, limited);
	IT_EQ(ok, 10); /* register_rate_burst default */
	IT_EQ(limited, 2);
	/* another address is not affected */
	IT_EQ(pw_register_from(s.port, "127.0.0.251", "otheraddr", pk, sk, NULL, NULL), PARLEY_OK);
}

static parley_client *client(const char *name)
{
	char dir[400];
	snprintf(dir, sizeof dir, "%s/clients", s.dir);
	parley_client *c = it_client_at(dir, name, url, 5000);
	IT_CHECK(c != NULL);
	return c;
}

static int received;
static char last_body[64];

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	received++;
	snprintf(last_body, sizeof last_body, "%.*s", (int)m->body_len, (const char *)m->body);
}

/* Empties the one-time keys a requester can get from handle (pool or budget), from fresh accounts at
 * fresh addresses; returns how many bundles came without one. */
static void exhaust(const char *handle, int first_addr)
{
	uint8_t pk[32], sk[64];
	for (int i = 0; i < 20; i++) {
		char src[32], h[32];
		int fd = -1, otks = 1, st = PARLEY_OK;
		snprintf(src, sizeof src, "127.0.1.%d", first_addr + i);
		snprintf(h, sizeof h, "ex%s%d", handle, i);
		IT_EQ(pw_register_from(s.port, src, h, pk, sk, &fd, NULL), PARLEY_OK);
		for (int k = 0; k < 60 && st == PARLEY_OK && otks > 0; k++)
			st = fetch(fd, handle, &otks);
		close(fd);
		if (otks == 0)
			return;
	}
	it_failures++;
	fprintf(stderr, "not ok - could not exhaust %s's one-time prekeys\n", handle);
}

/* With no one-time prekey left to hand out, a bundle still comes (identity + signed prekey) and a
 * session built from it works both ways. */
static void exhausted_pool_still_gives_a_working_session(void)
{
	parley_client *vic = client("vic"), *snd = client("snd");
	IT_EQ(parley_register(vic, "vic", NULL), PARLEY_OK);
	IT_EQ(parley_register(snd, "snd", NULL), PARLEY_OK);
	parley_client_disconnect(vic);
	exhaust("vic", 1);
	IT_EQ(parley_send(snd, "vic", "after the drain"), PARLEY_OK);

	parley_events ev = {0};
	ev.on_message = on_message;
	received = 0;
	parley_client_set_events(vic, &ev);
	IT_EQ(parley_connect(vic), PARLEY_OK);
	for (int i = 0; i < 50 && received == 0; i++)
		parley_client_run(vic, 100);
	IT_EQ(received, 1);
	IT_CHECK(strcmp(last_body, "after the drain") == 0);
	/* and back: the session is a real one */
	IT_EQ(parley_send(vic, "snd", "reply"), PARLEY_OK);
	parley_client_set_events(vic, NULL);
	parley_client_run(vic, 0);
	received = 0;
	parley_client_set_events(snd, &ev);
	parley_client_disconnect(snd);
	IT_EQ(parley_connect(snd), PARLEY_OK);
	for (int i = 0; i < 50 && received == 0; i++)
		parley_client_run(snd, 100);
	IT_EQ(received, 1);
	IT_CHECK(strcmp(last_body, "reply") == 0);
	parley_client_set_events(snd, NULL);
	parley_client_run(snd, 0);
	parley_client_free(vic);
	parley_client_free(snd);
}

/* The number of one-time private keys in a client's signal.db with id in [lo, hi]. */
static int private_prekeys(const char *name, int lo, int hi)
{
	char path[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;
	snprintf(path, sizeof path, "%s/clients/%s/signal.db", s.dir, name);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM prekeys WHERE id BETWEEN ?1 AND ?2", -1, &st, NULL) ==
		    SQLITE_OK) {
		sqlite3_bind_int(st, 1, lo);
		sqlite3_bind_int(st, 2, hi);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* One-time keys handed out and never used: after prekey_forget_after_s the server reports them and
 * the client deletes their private halves; the keys still in the pool stay. */
static void handed_out_keys_are_forgotten(void)
{
	parley_client *c = client("keeper");
	uint8_t pk[32], sk[64];
	int fd = -1, otks = 0;
	IT_EQ(parley_register(c, "keeper", NULL), PARLEY_OK);
	parley_client_disconnect(c);
	IT_EQ(private_prekeys("keeper", 1, 3), 3);
	IT_EQ(pw_register_from(s.port, "127.0.2.1", "taker", pk, sk, &fd, NULL), PARLEY_OK);
	for (int i = 0; i < 3; i++) {
		IT_EQ(fetch(fd, "keeper", &otks), PARLEY_OK);
		IT_EQ(otks, 1); /* ids 1, 2, 3: the server hands out the lowest first */
	}
	close(fd);
	struct timespec ts = {2, 500000000};
	nanosleep(&ts, NULL); /* past prekey_forget_after_s=2 */
	IT_EQ(parley_connect(c), PARLEY_OK); /* the check after authentication reports them */
	for (int i = 0; i < 30 && private_prekeys("keeper", 1, 3) != 0; i++)
		parley_client_run(c, 100);
	IT_EQ(private_prekeys("keeper", 1, 3), 0);
	IT_EQ(private_prekeys("keeper", 4, 100), 97); /* still in the pool: kept */
	parley_client_free(c);
}

/* Register on a fresh connection with a proof of work of `bits` (0 = none) solved for `pow_nonce`
 * (NULL: the connection's own challenge). Returns the status; *asked gets the challenge's bits. */
static int register_with_pow(int port, const char *handle, unsigned bits, const uint8_t *pow_nonce,
			     unsigned *asked)
{
	uint8_t nonce[32], pk[32], sk[64], sig[64], pow[WIRE_POW_LEN];
	int fd = ws_open(port);
	wire_frame f;
	if (fd < 0 || pw_recv(fd, &f, 5000) != 0)
		return -1;
	memcpy(nonce, f.frame->push->challenge->nonce.data, 32);
	*asked = f.frame->push->challenge->register_pow_bits;
	wire__frame_free(&f);
	crypto_sign_keypair(pk, sk);
	dynbuf m;
	dynbuf__init(&m, 256);
	wire__register_signed_bytes(nonce, handle, pk, "", &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	req.id = 1;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req.register_ = &r;
	r.handle = (char *)handle;
	r.device_key.data = pk;
	r.device_key.len = 32;
	r.device_name = "";
	r.signature.data = sig;
	r.signature.len = 64;
	r.account_key.data = (uint8_t *)test_account_key;
	r.account_key.len = 33;
	if (bits > 0) {
		wire__register_pow_solve(pow_nonce != NULL ? pow_nonce : nonce, handle, pk, bits, pow);
		r.pow.data = pow;
		r.pow.len = sizeof pow;
	}
	int st = pw_call(fd, &req, NULL);
	close(fd);
	return st;
}

/* registration=pow: every registration pays a proof of work bound to its own challenge. */
static void registration_proof_of_work(void)
{
	srv p;
	const char *extra[] = {"--registration=pow", "--register_pow_bits=14", NULL};
	unsigned asked = 0;
	uint8_t other_nonce[32] = {1};
	srv_start(&p, extra);
	IT_EQ(register_with_pow(p.port, "nopow", 0, NULL, &asked), PARLEY_E_POW_REQUIRED);
	IT_EQ(asked, 14); /* the challenge says how much */
	IT_EQ(register_with_pow(p.port, "weakpow", 6, NULL, &asked), PARLEY_E_POW_REQUIRED);
	IT_EQ(register_with_pow(p.port, "otherpow", 14, other_nonce, &asked), PARLEY_E_POW_REQUIRED);
	IT_EQ(register_with_pow(p.port, "paid", 14, NULL, &asked), PARLEY_OK);
	/* libparley pays it by itself */
	char u[128], dir[400];
	parley_client_options o;
	parley_client *c = NULL;
	snprintf(u, sizeof u, "ws://127.0.0.1:%d/v1/websocket", p.port);
	snprintf(dir, sizeof dir, "%s/client", p.dir);
	parley_client_options_init(&o);
	o.state_dir = dir;
	o.server_url = u;
	IT_EQ(parley_client_new(&o, &c), PARLEY_OK);
	IT_EQ(parley_register(c, "libpaid", NULL), PARLEY_OK);
	parley_client_free(c);
	IT_EQ(srv_stop(&p), 0);
	srv_cleanup(&p);
}

/* The limits this test runs with are parleyd's defaults. */
static void default_limits(void)
{
	char cmd[400], out[4096];
	snprintf(cmd, sizeof cmd, "'%s' --print-config", getenv("PARLEYD"));
	FILE *p = popen(cmd, "r");
	size_t n = p != NULL ? fread(out, 1, sizeof out - 1, p) : 0;
	out[n] = '\0';
	if (p != NULL)
		pclose(p);
	IT_CHECK(strstr(out, "register_rate_burst \"10\"") != NULL);
	IT_CHECK(strstr(out, "register_rate_per_hour \"20\"") != NULL);
	IT_CHECK(strstr(out, "prekey_budget_burst \"100\"") != NULL);
	IT_CHECK(strstr(out, "prekey_budget_per_hour \"100\"") != NULL);
}

int main(void)
{
	/* the defaults of the two limits (the harness turns them off for other tests) */
	const char *extra[] = {"--workers=2", "--register_rate_burst=10", "--register_rate_per_hour=20",
			       "--prekey_budget_burst=100", "--prekey_budget_per_hour=100", "--prekey_forget_after_s=2",
			       NULL};
	srv_start(&s, extra);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(default_limits);
	IT_RUN(many_accounts_cannot_empty_a_pool);
	IT_RUN(registration_rate_limited_per_address);
	IT_RUN(exhausted_pool_still_gives_a_working_session);
	IT_RUN(handed_out_keys_are_forgotten);
	IT_RUN(registration_proof_of_work);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
