/* Sender keys: group encrypt/decrypt, ordering, replay, forgery, bounds, record and wire codecs. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal_group.h>

#include "common/alloc.h"
#include "signal/sender_key.h"

#include "../test.h"

/* A minimal sender-key-only store: enough to drive the group cipher without the session layer. */
#define MAX_ITEMS 16
typedef struct item {
	char name[64];
	uint32_t dev;
	uint8_t dist[16];
	uint8_t *data;
	size_t len;
} item;
typedef struct tstore {
	item items[MAX_ITEMS];
	int n;
	int fail_store; /* make store_sender_key fail */
} tstore;

static item *find(tstore *t, const parley_signal_address *a, const uint8_t *dist)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->items[i].name, a->name) == 0 && t->items[i].dev == a->device_id &&
			memcmp(t->items[i].dist, dist, 16) == 0)
			return &t->items[i];
	return NULL;
}

static int t_load(void *user, const parley_signal_address *a, const uint8_t *dist, const uint8_t **data,
	size_t *len)
{
	item *it = find(user, a, dist);
	if (it == NULL)
		return PARLEY_E_NOT_FOUND;
	*data = it->data;
	*len = it->len;
	return PARLEY_OK;
}

static int t_store(void *user, const parley_signal_address *a, const uint8_t *dist, const uint8_t *data,
	size_t len)
{
	tstore *t = user;
	item *it = find(t, a, dist);
	if (t->fail_store)
		return PARLEY_E_STORE;
	if (it == NULL) {
		if (t->n == MAX_ITEMS)
			return PARLEY_E_STORE;
		it = &t->items[t->n++];
		snprintf(it->name, sizeof it->name, "%s", a->name);
		it->dev = a->device_id;
		memcpy(it->dist, dist, 16);
	}
	free(it->data);
	it->data = malloc(len);
	memcpy(it->data, data, len);
	it->len = len;
	return PARLEY_OK;
}

static void tstore_init(tstore *t, parley_signal_store *s)
{
	memset(t, 0, sizeof *t);
	memset(s, 0, sizeof *s);
	s->user = t;
	s->load_sender_key = t_load;
	s->store_sender_key = t_store;
}

static void tstore_free(tstore *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->items[i].data);
	t->n = 0;
}

static const parley_signal_address ALICE = {"alice", 1}, BOB = {"bob", 2};
static const uint8_t DIST[16] = {0x8f, 0x6b, 0x2a, 0x3c, 0x11, 0x11, 0x42, 0x22,
				 0x83, 0x33, 0x94, 0x44, 0x55, 0x55, 0x66, 0x66};

typedef struct msg {
	uint8_t b[PARLEY_GROUP_CIPHERTEXT_MAX(64)];
	size_t len;
} msg;

/* Alice creates her key, Bob processes the SKDM. */
static void setup(tstore *ta, parley_signal_store *sa, tstore *tb, parley_signal_store *sb)
{
	uint8_t skdm[PARLEY_GROUP_DISTRIBUTION_MAX], dist[16];
	size_t n = 0;
	tstore_init(ta, sa);
	tstore_init(tb, sb);
	TEST_EQ_INT(parley_group_create_distribution(sa, &ALICE, DIST, skdm, sizeof skdm, &n), PARLEY_OK);
	TEST_EQ_INT(skdm[0], 0x33);
	TEST_EQ_INT(parley_group_process_distribution(sb, &ALICE, skdm, n, dist), PARLEY_OK);
	TEST_EQ_MEM(dist, DIST, 16);
}

static void enc(parley_signal_store *s, int i, msg *m)
{
	char pt[32];
	int len = snprintf(pt, sizeof pt, "group message %d", i);
	TEST_EQ_INT(parley_group_encrypt(s, &ALICE, DIST, (const uint8_t *)pt, (size_t)len, m->b, sizeof m->b,
			    &m->len),
		PARLEY_OK);
}

static int dec(parley_signal_store *s, const msg *m, int expect_i)
{
	uint8_t out[128];
	size_t n = 0;
	char want[32];
	int rc = parley_group_decrypt(s, &ALICE, m->b, m->len, out, sizeof out, &n);
	if (rc == PARLEY_OK && expect_i >= 0) {
		int wl = snprintf(want, sizeof want, "group message %d", expect_i);
		TEST_EQ_INT(n, wl);
		TEST_CHECK(memcmp(out, want, n) == 0);
	}
	return rc;
}

static void test_in_order_and_out_of_order(void)
{
	tstore ta, tb;
	parley_signal_store sa, sb;
	msg m[8];
	setup(&ta, &sa, &tb, &sb);
	for (int i = 0; i < 8; i++)
		enc(&sa, i, &m[i]);
	TEST_EQ_INT(dec(&sb, &m[0], 0), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[5], 5), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[2], 2), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[1], 1), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[7], 7), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[4], 4), PARLEY_OK);
	/* duplicates, both of a skipped-then-used key and of the chain head */
	TEST_EQ_INT(dec(&sb, &m[2], -1), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(dec(&sb, &m[7], -1), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(dec(&sb, &m[3], 3), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[6], 6), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[0], -1), PARLEY_E_DUPLICATE_MESSAGE);
	tstore_free(&ta);
	tstore_free(&tb);
}

static void test_forgery_leaves_state(void)
{
	tstore ta, tb;
	parley_signal_store sa, sb;
	msg m, bad;
	setup(&ta, &sa, &tb, &sb);
	enc(&sa, 0, &m);
	/* flip one bit in every position: signature, protobuf or ciphertext — never accepted */
	for (size_t i = 0; i < m.len; i++) {
		bad = m;
		bad.b[i] ^= 0x04;
		int rc = dec(&sb, &bad, -1);
		TEST_CHECK(rc != PARLEY_OK);
	}
	bad = m;
	bad.b[m.len - 1] ^= 0x01;
	TEST_EQ_INT(dec(&sb, &bad, -1), PARLEY_E_BAD_SIGNATURE);
	bad = m;
	bad.b[0] = 0x23;
	TEST_EQ_INT(dec(&sb, &bad, -1), PARLEY_E_BAD_VERSION);
	/* none of that moved Bob's chain: the genuine message still decrypts */
	TEST_EQ_INT(dec(&sb, &m, 0), PARLEY_OK);
	/* truncations */
	for (size_t n = 0; n < m.len; n++) {
		uint8_t out[128];
		size_t ol;
		TEST_CHECK(parley_group_decrypt(&sb, &ALICE, m.b, n, out, sizeof out, &ol) != PARLEY_OK);
	}
	tstore_free(&ta);
	tstore_free(&tb);
}

static void test_no_sender_key(void)
{
	tstore ta, tb, tc;
	parley_signal_store sa, sb, sc;
	msg m;
	uint8_t out[64];
	setup(&ta, &sa, &tb, &sb);
	tstore_init(&tc, &sc);
	enc(&sa, 0, &m);
	TEST_EQ_INT(dec(&sc, &m, -1), PARLEY_E_NO_SENDER_KEY);
	TEST_EQ_INT(parley_group_encrypt(&sb, &BOB, DIST, (const uint8_t *)"x", 1, m.b, sizeof m.b, &m.len),
		PARLEY_E_NO_SENDER_KEY);
	/* Bob holds Alice's key, but may not encrypt with it under Alice's name */
	TEST_EQ_INT(parley_group_encrypt(&sb, &ALICE, DIST, (const uint8_t *)"x", 1, m.b, sizeof m.b, &m.len),
		PARLEY_E_STATE);
	TEST_EQ_INT(parley_group_encrypt(&sa, &ALICE, DIST, out, 1, out, 10, &m.len), PARLEY_E_INVAL);
	tstore_free(&ta);
	tstore_free(&tb);
	tstore_free(&tc);
}

/* Move Alice's own chain forward without sending (internal API), to test the receiver's bounds. */
static void advance_sender(tstore *ta, uint32_t steps)
{
	sk_record r;
	sk_keys k;
	uint8_t *buf;
	size_t len;
	item *it = find(ta, &ALICE, DIST);
	TEST_EQ_INT(sender_key__record_decode(&r, it->data, it->len), PARLEY_OK);
	for (uint32_t i = 0; i < steps; i++)
		sender_key__state_next_keys(&r.states[0], &k);
	TEST_EQ_INT(sender_key__record_encode(&r, &buf, &len), PARLEY_OK);
	free(it->data);
	it->data = malloc(len);
	memcpy(it->data, buf, len);
	it->len = len;
	parley__free(buf);
	sender_key__record_clear(&r);
}

static void test_bounds(void)
{
	tstore ta, tb;
	parley_signal_store sa, sb;
	msg first, late;
	setup(&ta, &sa, &tb, &sb);
	enc(&sa, 0, &first);
	advance_sender(&ta, 2500);
	enc(&sa, 2501, &late);
	TEST_EQ_INT(dec(&sb, &late, 2501), PARLEY_OK);
	/* iteration 0 was more than 2000 keys back: its key was dropped */
	TEST_EQ_INT(dec(&sb, &first, -1), PARLEY_E_DUPLICATE_MESSAGE);
	advance_sender(&ta, 25001);
	enc(&sa, 0, &late);
	TEST_EQ_INT(dec(&sb, &late, -1), PARLEY_E_TOO_FAR_AHEAD);
	tstore_free(&ta);
	tstore_free(&tb);
}

static void test_redistribution(void)
{
	tstore ta, tb;
	parley_signal_store sa, sb;
	uint8_t skdm[PARLEY_GROUP_DISTRIBUTION_MAX], skdm2[PARLEY_GROUP_DISTRIBUTION_MAX];
	size_t n, n2;
	msg m0, m1;
	setup(&ta, &sa, &tb, &sb);
	TEST_EQ_INT(parley_group_create_distribution(&sa, &ALICE, DIST, skdm, sizeof skdm, &n), PARLEY_OK);
	enc(&sa, 0, &m0);
	enc(&sa, 1, &m1);
	TEST_EQ_INT(dec(&sb, &m0, 0), PARLEY_OK);
	/* the SKDM made before m0 would rewind Bob's chain: it must be ignored for the same key */
	TEST_EQ_INT(parley_group_process_distribution(&sb, &ALICE, skdm, n, NULL), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m0, -1), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(dec(&sb, &m1, 1), PARLEY_OK);
	/* a later SKDM carries the current iteration, not 0 */
	TEST_EQ_INT(parley_group_create_distribution(&sa, &ALICE, DIST, skdm2, sizeof skdm2, &n2), PARLEY_OK);
	sk_distribution d;
	TEST_EQ_INT(sender_key__distribution_decode(&d, skdm2, n2), PARLEY_OK);
	TEST_EQ_INT(d.iteration, 2);
	/* malformed SKDMs */
	uint8_t bad[PARLEY_GROUP_DISTRIBUTION_MAX];
	memcpy(bad, skdm2, n2);
	bad[0] = 0x43;
	TEST_EQ_INT(parley_group_process_distribution(&sb, &ALICE, bad, n2, NULL), PARLEY_E_BAD_VERSION);
	TEST_EQ_INT(parley_group_process_distribution(&sb, &ALICE, skdm2, 40, NULL), PARLEY_E_INVALID_MESSAGE);
	memcpy(bad, skdm2, n2);
	bad[n2 - 33] = 0x06; /* signing key type byte (last field) */
	TEST_EQ_INT(parley_group_process_distribution(&sb, &ALICE, bad, n2, NULL), PARLEY_E_INVALID_KEY);
	tstore_free(&ta);
	tstore_free(&tb);
}

static void test_record_states(void)
{
	sk_record r;
	uint8_t ck[32] = {1}, pub[33] = {5, 1}, pub2[33] = {5, 2};
	sender_key__record_init(&r);
	for (uint32_t c = 1; c <= 7; c++)
		sender_key__record_add_state(&r, 3, c, 0, ck, pub, NULL);
	TEST_EQ_INT(r.nstates, SK_MAX_STATES);
	TEST_EQ_INT(r.states[0].chain_id, 7);
	TEST_CHECK(sender_key__record_find(&r, 2) == NULL);
	r.states[2].iteration = 9; /* chain 5 */
	sender_key__record_add_state(&r, 3, 5, 0, ck, pub, NULL);
	TEST_EQ_INT(r.states[0].chain_id, 5);
	TEST_EQ_INT(r.states[0].iteration, 9); /* kept, not rewound */
	sender_key__record_add_state(&r, 3, 5, 0, ck, pub2, NULL);
	TEST_EQ_INT(r.nstates, SK_MAX_STATES);
	TEST_EQ_INT(r.states[0].iteration, 0); /* replaced under another key */
	TEST_EQ_MEM(r.states[0].signing_pub, pub2, 33);

	/* codec round trip with skipped keys, then every truncation fails cleanly */
	sk_keys k;
	TEST_EQ_INT(sender_key__state_keys_for(&r.states[1], 40, &k), PARLEY_OK);
	TEST_EQ_INT(r.states[1].nkeys, 40);
	uint8_t *buf, *buf2;
	size_t len, len2;
	TEST_EQ_INT(sender_key__record_encode(&r, &buf, &len), PARLEY_OK);
	sk_record r2;
	TEST_EQ_INT(sender_key__record_decode(&r2, buf, len), PARLEY_OK);
	TEST_EQ_INT(sender_key__record_encode(&r2, &buf2, &len2), PARLEY_OK);
	TEST_CHECK(len == len2 && memcmp(buf, buf2, len) == 0);
	for (size_t n = 0; n < len; n++) {
		sk_record r3;
		TEST_EQ_INT(sender_key__record_decode(&r3, buf, n), PARLEY_E_INVALID_MESSAGE);
	}
	parley__free(buf);
	parley__free(buf2);
	sender_key__record_clear(&r2);
	sender_key__record_clear(&r);
}

static void test_store_failure_atomic(void)
{
	tstore ta, tb;
	parley_signal_store sa, sb;
	msg m;
	setup(&ta, &sa, &tb, &sb);
	enc(&sa, 0, &m);
	tb.fail_store = 1;
	TEST_EQ_INT(dec(&sb, &m, -1), PARLEY_E_STORE);
	tb.fail_store = 0;
	TEST_EQ_INT(dec(&sb, &m, 0), PARLEY_OK);
	/* allocation failures at every point: an error, never a crash or a leak (ASan checks leaks) */
	for (unsigned long nth = 1; nth < 20; nth++) {
		enc(&sa, 1, &m);
		parley__alloc_fail_after(nth);
		int rc = dec(&sb, &m, -1);
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
	}
	tstore_free(&ta);
	tstore_free(&tb);
}

/* Export (forward bundles): Bob exports the key he holds for Alice at his CURRENT position; Carol
 * processes it and decrypts Alice's next messages, not the ones before the export; Alice's own export
 * (her store) works the same; nothing held: NO_SENDER_KEY. */
static void test_export(void)
{
	static const parley_signal_address CAROL = {"carol", 3};
	tstore ta, tb, tc;
	parley_signal_store sa, sb, sc;
	uint8_t skdm[PARLEY_GROUP_DISTRIBUTION_MAX], dist[16];
	size_t n = 0;
	msg m[6];

	setup(&ta, &sa, &tb, &sb);
	tstore_init(&tc, &sc);
	for (int i = 0; i < 3; i++)
		enc(&sa, i, &m[i]);
	TEST_EQ_INT(dec(&sb, &m[0], 0), PARLEY_OK);
	TEST_EQ_INT(dec(&sb, &m[1], 1), PARLEY_OK);
	/* Bob is at iteration 2 now (m[2] not yet received) */
	TEST_EQ_INT(sender_key__export_distribution(&sb, &ALICE, DIST, skdm, sizeof skdm, &n), PARLEY_OK);
	TEST_EQ_INT(parley_group_process_distribution(&sc, &ALICE, skdm, n, dist), PARLEY_OK);
	TEST_EQ_MEM(dist, DIST, 16);
	enc(&sa, 3, &m[3]);
	TEST_EQ_INT(dec(&sc, &m[3], 3), PARLEY_OK);  /* the next message */
	TEST_EQ_INT(dec(&sc, &m[2], 2), PARLEY_OK);  /* not yet received by Bob: at his position */
	TEST_EQ_INT(dec(&sc, &m[1], -1), PARLEY_E_DUPLICATE_MESSAGE); /* before it: no key */
	TEST_EQ_INT(dec(&sc, &m[0], -1), PARLEY_E_DUPLICATE_MESSAGE);
	/* the sender's own export from her store: the next message only */
	tstore_free(&tc);
	tstore_init(&tc, &sc);
	TEST_EQ_INT(sender_key__export_distribution(&sa, &ALICE, DIST, skdm, sizeof skdm, &n), PARLEY_OK);
	TEST_EQ_INT(parley_group_process_distribution(&sc, &ALICE, skdm, n, NULL), PARLEY_OK);
	enc(&sa, 4, &m[4]);
	TEST_EQ_INT(dec(&sc, &m[4], 4), PARLEY_OK);
	TEST_EQ_INT(dec(&sc, &m[3], -1), PARLEY_E_DUPLICATE_MESSAGE);
	/* the export never carries the signing private key: Carol cannot encrypt as Alice */
	TEST_EQ_INT(parley_group_encrypt(&sc, &ALICE, DIST, (const uint8_t *)"x", 1, m[5].b, sizeof m[5].b,
			    &m[5].len),
		PARLEY_E_STATE);
	/* nothing held for Carol's key, nor for another distribution id */
	TEST_EQ_INT(sender_key__export_distribution(&sb, &CAROL, DIST, skdm, sizeof skdm, &n), PARLEY_E_NO_SENDER_KEY);
	TEST_EQ_INT(sender_key__export_distribution(&sb, &ALICE, (const uint8_t *)"0123456789abcdef", skdm, sizeof skdm,
			    &n),
		PARLEY_E_NO_SENDER_KEY);
	TEST_EQ_INT(sender_key__export_distribution(&sb, &ALICE, DIST, skdm, 10, &n), PARLEY_E_INVAL);
	tstore_free(&ta);
	tstore_free(&tb);
	tstore_free(&tc);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	TEST_RUN(test_in_order_and_out_of_order);
	TEST_RUN(test_forgery_leaves_state);
	TEST_RUN(test_no_sender_key);
	TEST_RUN(test_bounds);
	TEST_RUN(test_redistribution);
	TEST_RUN(test_record_states);
	TEST_RUN(test_store_failure_atomic);
	TEST_RUN(test_export);
	TEST_EXIT();
}
