/* parley's side of the crypto benchmark, through the public API with the in-memory store (libsignal's
 * node bench uses in-memory stores too, libolm has no store at all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>
#include <parley/signal_group.h>

#include "bench_crypto.h"

typedef struct party {
	parley_keypair id;
	uint32_t reg;
	parley_signal_store store;
	parley_signal_ctx *ctx;
} party;

typedef struct msg {
	int type;
	size_t len;
	uint8_t b[PARLEY_SIGNAL_CIPHERTEXT_MAX(BENCH_PAYLOAD)];
} msg;

#define TRY(x)                                                                                     \
	do {                                                                                       \
		int try__rc = (x);                                                                 \
		if (try__rc != PARLEY_OK) {                                                        \
			fprintf(stderr, "bench_parley: %s: %s\n", #x, parley_errname(try__rc));   \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static int party_new(party *p)
{
	memset(p, 0, sizeof *p);
	TRY(parley_signal_keypair_generate(&p->id));
	TRY(parley_signal_registration_id_generate(&p->reg));
	TRY(parley_signal_mem_store_new(&p->store, &p->id, p->reg));
	TRY(parley_signal_ctx_new(&p->ctx, &p->store));
	return 0;
}

static void party_free(party *p)
{
	parley_signal_ctx_free(p->ctx);
	parley_signal_mem_store_free(&p->store);
	parley_signal_keypair_wipe(&p->id);
}

static int enc(party *p, const parley_signal_address *to, const uint8_t *pt, msg *m)
{
	return parley_signal_encrypt(p->ctx, to, pt, BENCH_PAYLOAD, m->b, sizeof m->b, &m->len, &m->type);
}

static int dec(party *p, const parley_signal_address *from, const msg *m)
{
	uint8_t out[sizeof m->b];
	size_t n;
	int rc = m->type == PARLEY_SIGNAL_MSG_PREKEY
			 ? parley_signal_decrypt_prekey(p->ctx, from, m->b, m->len, out, sizeof out, &n)
			 : parley_signal_decrypt_signal(p->ctx, from, m->b, m->len, out, sizeof out, &n);
	return rc == PARLEY_OK && n == BENCH_PAYLOAD ? PARLEY_OK : (rc ? rc : PARLEY_E_INTERNAL);
}

/* One repetition of session setup: N fresh sessions (distinct addresses, distinct one-time prekeys). */
static int run_setup(const bench_params *p, double us[OP_COUNT])
{
	party a, b;
	parley_signed_prekey spk;
	parley_prekey_bundle *bundles = calloc((size_t)p->setups, sizeof *bundles);
	msg *ms = calloc((size_t)p->setups, sizeof *ms);
	char (*names)[32] = calloc((size_t)p->setups, 32);
	uint8_t pt[BENCH_PAYLOAD] = {0};

	if (!bundles || !ms || !names || party_new(&a) || party_new(&b))
		return -1;
	TRY(parley_signal_signed_prekey_generate(&spk, &b.id, 1, 0));
	TRY(b.store.store_signed_prekey(b.store.user, &spk));
	for (int i = 0; i < p->setups; i++) {
		parley_prekey pk;
		TRY(parley_signal_prekey_generate(&pk, (uint32_t)i + 1));
		TRY(b.store.store_prekey(b.store.user, &pk));
		parley_prekey_bundle *bu = &bundles[i];
		bu->registration_id = b.reg;
		bu->device_id = 1;
		bu->has_prekey = 1;
		bu->prekey_id = pk.id;
		memcpy(bu->prekey_pub, pk.key.pub, sizeof bu->prekey_pub);
		bu->signed_prekey_id = spk.id;
		memcpy(bu->signed_prekey_pub, spk.key.pub, sizeof bu->signed_prekey_pub);
		memcpy(bu->signed_prekey_sig, spk.signature, sizeof bu->signed_prekey_sig);
		memcpy(bu->identity_key, b.id.pub, sizeof bu->identity_key);
		snprintf(names[i], 32, "bob%d", i);
	}
	double t0 = bench_now_us();
	for (int i = 0; i < p->setups; i++) {
		parley_signal_address to = {names[i], 1};
		TRY(parley_signal_process_bundle(a.ctx, &to, &bundles[i]));
		TRY(enc(&a, &to, pt, &ms[i]));
	}
	double t1 = bench_now_us();
	/* Bob attributes each message to its own sender address, as N different initiators would be
	 * (N sessions under one address would just archive each other). */
	for (int i = 0; i < p->setups; i++) {
		parley_signal_address from = {names[i], 2};
		TRY(dec(&b, &from, &ms[i]));
	}
	double t2 = bench_now_us();
	bench_keep(&us[OP_SETUP_INIT], (t1 - t0) / p->setups);
	bench_keep(&us[OP_SETUP_RESP], (t2 - t1) / p->setups);
	party_free(&a);
	party_free(&b);
	free(bundles);
	free(ms);
	free(names);
	return 0;
}

/* One chain and ping-pong over an established session (one round trip done first, so every
 * measured message is a plain SignalMessage). */
static int run_messages(const bench_params *p, double us[OP_COUNT])
{
	party a, b;
	parley_signed_prekey spk;
	parley_prekey pk;
	parley_prekey_bundle bu = {0};
	const parley_signal_address A = {"alice", 1}, B = {"bob", 1};
	uint8_t pt[BENCH_PAYLOAD];
	msg m;
	msg *ms = calloc((size_t)p->chain, sizeof *ms);

	memset(pt, 0x5a, sizeof pt);
	if (ms == NULL || party_new(&a) || party_new(&b))
		return -1;
	TRY(parley_signal_signed_prekey_generate(&spk, &b.id, 1, 0));
	TRY(parley_signal_prekey_generate(&pk, 1));
	TRY(b.store.store_signed_prekey(b.store.user, &spk));
	TRY(b.store.store_prekey(b.store.user, &pk));
	bu.registration_id = b.reg;
	bu.device_id = 1;
	bu.has_prekey = 1;
	bu.prekey_id = 1;
	memcpy(bu.prekey_pub, pk.key.pub, 33);
	bu.signed_prekey_id = 1;
	memcpy(bu.signed_prekey_pub, spk.key.pub, 33);
	memcpy(bu.signed_prekey_sig, spk.signature, 64);
	memcpy(bu.identity_key, b.id.pub, 33);
	TRY(parley_signal_process_bundle(a.ctx, &B, &bu));
	TRY(enc(&a, &B, pt, &m));
	TRY(dec(&b, &A, &m));
	TRY(enc(&b, &A, pt, &m));
	TRY(dec(&a, &B, &m));

	double t0 = bench_now_us();
	for (int i = 0; i < p->chain; i++)
		TRY(enc(&a, &B, pt, &ms[i]));
	double t1 = bench_now_us();
	for (int i = 0; i < p->chain; i++)
		TRY(dec(&b, &A, &ms[i]));
	double t2 = bench_now_us();
	for (int i = 0; i < p->pingpong; i++) {
		party *from = i % 2 ? &b : &a, *to = i % 2 ? &a : &b;
		TRY(enc(from, i % 2 ? &A : &B, pt, &m));
		TRY(dec(to, i % 2 ? &B : &A, &m));
	}
	double t3 = bench_now_us();
	bench_keep(&us[OP_ENCRYPT], (t1 - t0) / p->chain);
	bench_keep(&us[OP_DECRYPT], (t2 - t1) / p->chain);
	bench_keep(&us[OP_PINGPONG], (t3 - t2) / p->pingpong);
	party_free(&a);
	party_free(&b);
	free(ms);
	return 0;
}

static int run_group(const bench_params *p, double us[OP_COUNT])
{
	party a, b;
	const parley_signal_address A = {"alice", 1};
	uint8_t dist[16] = {0x42}, skdm[PARLEY_GROUP_DISTRIBUTION_MAX], pt[BENCH_PAYLOAD], out[BENCH_PAYLOAD + 32];
	size_t n;
	msg *ms = calloc((size_t)p->group, sizeof *ms);

	memset(pt, 0x33, sizeof pt);
	if (ms == NULL || party_new(&a) || party_new(&b))
		return -1;
	TRY(parley_group_create_distribution(&a.store, &A, dist, skdm, sizeof skdm, &n));
	TRY(parley_group_process_distribution(&b.store, &A, skdm, n, NULL));
	double t0 = bench_now_us();
	for (int i = 0; i < p->group; i++)
		TRY(parley_group_encrypt(&a.store, &A, dist, pt, sizeof pt, ms[i].b, sizeof ms[i].b, &ms[i].len));
	double t1 = bench_now_us();
	for (int i = 0; i < p->group; i++)
		TRY(parley_group_decrypt(&b.store, &A, ms[i].b, ms[i].len, out, sizeof out, &n));
	double t2 = bench_now_us();
	bench_keep(&us[OP_GROUP_ENC], (t1 - t0) / p->group);
	bench_keep(&us[OP_GROUP_DEC], (t2 - t1) / p->group);
	party_free(&a);
	party_free(&b);
	free(ms);
	return 0;
}

int bench_parley(const bench_params *p, double us[OP_COUNT])
{
	for (int r = 0; r < p->reps; r++) {
		if (run_setup(p, us) || run_messages(p, us) || run_group(p, us))
			return -1;
	}
	return 0;
}
