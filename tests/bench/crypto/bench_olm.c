/* libolm's side of the crypto benchmark (Debian libolm-dev): Olm sessions for 1:1, Megolm for groups.
 *
 * Olm's API speaks base64 and destroys input buffers, so messages are copied before each decrypt; the
 * copy (a memcpy of ~400 bytes) is inside the timed loop and negligible. Randomness for Olm calls comes
 * from libsodium, as parley's does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olm/inbound_group_session.h>
#include <olm/olm.h>
#include <olm/outbound_group_session.h>
#include <sodium.h>

#include "bench_crypto.h"

#define OLM_MSG_MAX 1024

typedef struct omsg {
	size_t type;
	size_t len;
	char b[OLM_MSG_MAX];
} omsg;

#define OK(call, obj, errfn)                                                                       \
	do {                                                                                       \
		if ((call) == olm_error()) {                                                       \
			fprintf(stderr, "bench_olm: %s: %s\n", #call, errfn(obj));                 \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static uint8_t rnd[256];

static void *fill_random(size_t n)
{
	randombytes_buf(rnd, n);
	return rnd;
}

static OlmAccount *account_new(void)
{
	OlmAccount *a = olm_account(malloc(olm_account_size()));
	size_t n = olm_create_account_random_length(a);
	if (olm_create_account(a, fill_random(n), n) == olm_error())
		return NULL;
	return a;
}

static void account_free(OlmAccount *a)
{
	olm_clear_account(a);
	free(a);
}

static OlmSession *session_new(void)
{
	return olm_session(malloc(olm_session_size()));
}

static void session_free(OlmSession *s)
{
	olm_clear_session(s);
	free(s);
}

/* The value of the first "curve25519" key in an identity-keys JSON. */
static int identity_curve(OlmAccount *a, char *out, size_t cap)
{
	char json[512];
	size_t n = olm_account_identity_keys(a, json, sizeof json - 1);
	if (n == olm_error())
		return -1;
	json[n] = '\0';
	const char *p = strstr(json, "\"curve25519\":\"");
	if (p == NULL)
		return -1;
	p += strlen("\"curve25519\":\"");
	const char *q = strchr(p, '"');
	if (q == NULL || (size_t)(q - p) >= cap)
		return -1;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

/* Generate one one-time key, return its base64 public part and mark it published. */
static int one_time_key(OlmAccount *a, char *out, size_t cap)
{
	char json[256];
	size_t n = olm_account_generate_one_time_keys_random_length(a, 1);
	if (olm_account_generate_one_time_keys(a, 1, fill_random(n), n) == olm_error())
		return -1;
	n = olm_account_one_time_keys(a, json, sizeof json - 1);
	if (n == olm_error())
		return -1;
	json[n] = '\0';
	/* {"curve25519":{"AAAAAQ":"<key>"}} : the key is the last quoted string */
	char *end = strrchr(json, '"');
	if (end == NULL)
		return -1;
	*end = '\0';
	char *start = strrchr(json, '"');
	if (start == NULL || (size_t)(end - start - 1) >= cap)
		return -1;
	memcpy(out, start + 1, (size_t)(end - start - 1));
	out[end - start - 1] = '\0';
	olm_account_mark_keys_as_published(a);
	return 0;
}

static int encrypt(OlmSession *s, const uint8_t *pt, omsg *m)
{
	size_t rl = olm_encrypt_random_length(s);
	m->type = olm_encrypt_message_type(s);
	m->len = olm_encrypt(s, pt, BENCH_PAYLOAD, fill_random(rl), rl, m->b, sizeof m->b);
	if (m->len == olm_error()) {
		fprintf(stderr, "bench_olm: encrypt: %s\n", olm_session_last_error(s));
		return -1;
	}
	return 0;
}

static int decrypt(OlmSession *s, const omsg *m)
{
	char copy[OLM_MSG_MAX];
	uint8_t out[OLM_MSG_MAX];
	memcpy(copy, m->b, m->len);
	size_t n = olm_decrypt(s, m->type, copy, m->len, out, sizeof out);
	if (n != BENCH_PAYLOAD) {
		fprintf(stderr, "bench_olm: decrypt: %s\n", olm_session_last_error(s));
		return -1;
	}
	return 0;
}

static int run_setup(const bench_params *p, double us[OP_COUNT])
{
	OlmAccount *alice = account_new(), *bob = account_new();
	char bob_id[64];
	char (*otk)[64] = calloc((size_t)p->setups, 64);
	OlmSession **as = calloc((size_t)p->setups, sizeof *as), **bs = calloc((size_t)p->setups, sizeof *bs);
	omsg *ms = calloc((size_t)p->setups, sizeof *ms);
	uint8_t pt[BENCH_PAYLOAD] = {0};
	double ta = 0, tb = 0;

	if (!alice || !bob || !otk || !as || !bs || !ms || identity_curve(bob, bob_id, sizeof bob_id))
		return -1;
	/* Olm keeps at most olm_account_max_number_of_one_time_keys() (100) keys: work in batches. */
	size_t batch = olm_account_max_number_of_one_time_keys(bob) / 2;
	for (int base = 0; base < p->setups; base += (int)batch) {
		int end = base + (int)batch < p->setups ? base + (int)batch : p->setups;
		for (int i = base; i < end; i++) {
			if (one_time_key(bob, otk[i], 64))
				return -1;
			as[i] = session_new();
			bs[i] = session_new();
		}
		double t0 = bench_now_us();
		for (int i = base; i < end; i++) {
			size_t rl = olm_create_outbound_session_random_length(as[i]);
			OK(olm_create_outbound_session(as[i], alice, bob_id, strlen(bob_id), otk[i], strlen(otk[i]),
				   fill_random(rl), rl),
				as[i], olm_session_last_error);
			if (encrypt(as[i], pt, &ms[i]))
				return -1;
		}
		double t1 = bench_now_us();
		for (int i = base; i < end; i++) {
			char copy[OLM_MSG_MAX];
			memcpy(copy, ms[i].b, ms[i].len);
			OK(olm_create_inbound_session(bs[i], bob, copy, ms[i].len), bs[i], olm_session_last_error);
			OK(olm_remove_one_time_keys(bob, bs[i]), bob, olm_account_last_error);
			if (decrypt(bs[i], &ms[i]))
				return -1;
		}
		double t2 = bench_now_us();
		ta += t1 - t0;
		tb += t2 - t1;
	}
	bench_keep(&us[OP_SETUP_INIT], ta / p->setups);
	bench_keep(&us[OP_SETUP_RESP], tb / p->setups);
	for (int i = 0; i < p->setups; i++) {
		session_free(as[i]);
		session_free(bs[i]);
	}
	account_free(alice);
	account_free(bob);
	free(otk);
	free(as);
	free(bs);
	free(ms);
	return 0;
}

static int run_messages(const bench_params *p, double us[OP_COUNT])
{
	OlmAccount *alice = account_new(), *bob = account_new();
	OlmSession *a = session_new(), *b = session_new();
	char bob_id[64], otk[64], copy[OLM_MSG_MAX];
	uint8_t pt[BENCH_PAYLOAD];
	omsg m;
	omsg *ms = calloc((size_t)p->chain, sizeof *ms);

	memset(pt, 0x5a, sizeof pt);
	if (!alice || !bob || !ms || identity_curve(bob, bob_id, sizeof bob_id) || one_time_key(bob, otk, sizeof otk))
		return -1;
	size_t rl = olm_create_outbound_session_random_length(a);
	OK(olm_create_outbound_session(a, alice, bob_id, strlen(bob_id), otk, strlen(otk), fill_random(rl), rl), a,
		olm_session_last_error);
	/* one round trip first, so that the measured messages are normal (not pre-key) messages */
	if (encrypt(a, pt, &m))
		return -1;
	memcpy(copy, m.b, m.len);
	OK(olm_create_inbound_session(b, bob, copy, m.len), b, olm_session_last_error);
	if (decrypt(b, &m) || encrypt(b, pt, &m) || decrypt(a, &m))
		return -1;

	double t0 = bench_now_us();
	for (int i = 0; i < p->chain; i++)
		if (encrypt(a, pt, &ms[i]))
			return -1;
	double t1 = bench_now_us();
	for (int i = 0; i < p->chain; i++)
		if (decrypt(b, &ms[i]))
			return -1;
	double t2 = bench_now_us();
	for (int i = 0; i < p->pingpong; i++) {
		OlmSession *from = i % 2 ? b : a, *to = i % 2 ? a : b;
		if (encrypt(from, pt, &m) || decrypt(to, &m))
			return -1;
	}
	double t3 = bench_now_us();
	bench_keep(&us[OP_ENCRYPT], (t1 - t0) / p->chain);
	bench_keep(&us[OP_DECRYPT], (t2 - t1) / p->chain);
	bench_keep(&us[OP_PINGPONG], (t3 - t2) / p->pingpong);
	session_free(a);
	session_free(b);
	account_free(alice);
	account_free(bob);
	free(ms);
	return 0;
}

static int run_group(const bench_params *p, double us[OP_COUNT])
{
	OlmOutboundGroupSession *out = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
	OlmInboundGroupSession *in = olm_inbound_group_session(malloc(olm_inbound_group_session_size()));
	uint8_t key[512], pt[BENCH_PAYLOAD], copy[OLM_MSG_MAX], plain[OLM_MSG_MAX];
	omsg *ms = calloc((size_t)p->group, sizeof *ms);
	uint32_t idx;

	memset(pt, 0x33, sizeof pt);
	size_t rl = olm_init_outbound_group_session_random_length(out);
	OK(olm_init_outbound_group_session(out, fill_random(rl), rl), out, olm_outbound_group_session_last_error);
	size_t kl = olm_outbound_group_session_key(out, key, sizeof key);
	OK(kl, out, olm_outbound_group_session_last_error);
	OK(olm_init_inbound_group_session(in, key, kl), in, olm_inbound_group_session_last_error);
	double t0 = bench_now_us();
	for (int i = 0; i < p->group; i++) {
		ms[i].len = olm_group_encrypt(out, pt, sizeof pt, (uint8_t *)ms[i].b, sizeof ms[i].b);
		OK(ms[i].len, out, olm_outbound_group_session_last_error);
	}
	double t1 = bench_now_us();
	for (int i = 0; i < p->group; i++) {
		memcpy(copy, ms[i].b, ms[i].len);
		size_t n = olm_group_decrypt(in, copy, ms[i].len, plain, sizeof plain, &idx);
		OK(n, in, olm_inbound_group_session_last_error);
	}
	double t2 = bench_now_us();
	bench_keep(&us[OP_GROUP_ENC], (t1 - t0) / p->group);
	bench_keep(&us[OP_GROUP_DEC], (t2 - t1) / p->group);
	olm_clear_outbound_group_session(out);
	olm_clear_inbound_group_session(in);
	free(out);
	free(in);
	free(ms);
	return 0;
}

int bench_olm(const bench_params *p, double us[OP_COUNT])
{
	for (int r = 0; r < p->reps; r++) {
		if (run_setup(p, us) || run_messages(p, us) || run_group(p, us))
			return -1;
	}
	return 0;
}
