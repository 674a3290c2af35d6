/* C<->C sessions through the public API: X3DH both ways, 1,000-message conversation with ratchet
 * steps, out-of-order, dropped, duplicate, tampered, forward-jump limit, identity changes, prekey
 * handling, simultaneous initiation. */
#include <stdlib.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "common/alloc.h"
#include "../test.h"

typedef struct party {
	parley_keypair ik;
	uint32_t reg;
	parley_signal_store store;
	parley_signal_ctx *ctx;
	parley_signed_prekey spk;
	uint32_t next_opk;
	parley_signal_address addr; /* how others address this party */
} party;

typedef struct wire_msg {
	uint8_t buf[PARLEY_SIGNAL_CIPHERTEXT_MAX(512)];
	size_t len;
	int type;
	char text[64];
} wire_msg;

static void party_init(party *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	TEST_EQ_INT(parley_signal_keypair_generate(&p->ik), PARLEY_OK);
	TEST_EQ_INT(parley_signal_registration_id_generate(&p->reg), PARLEY_OK);
	TEST_CHECK(p->reg >= 1 && p->reg <= 16380);
	TEST_EQ_INT(parley_signal_mem_store_new(&p->store, &p->ik, p->reg), PARLEY_OK);
	TEST_EQ_INT(parley_signal_ctx_new(&p->ctx, &p->store), PARLEY_OK);
	TEST_EQ_INT(parley_signal_signed_prekey_generate(&p->spk, &p->ik, 7, 1700000000000ull), PARLEY_OK);
	TEST_EQ_INT(p->store.store_signed_prekey(p->store.user, &p->spk), PARLEY_OK);
	p->next_opk = 100;
	p->addr.name = name;
	p->addr.device_id = 1;
}

static void party_free(party *p)
{
	parley_signal_ctx_free(p->ctx);
	parley_signal_mem_store_free(&p->store);
	parley_signal_keypair_wipe(&p->ik);
}

static void bundle_of(party *p, parley_prekey_bundle *b, int with_opk)
{
	memset(b, 0, sizeof(*b));
	b->registration_id = p->reg;
	b->device_id = 1;
	if (with_opk) {
		parley_prekey pk;
		TEST_EQ_INT(parley_signal_prekey_generate(&pk, p->next_opk++), PARLEY_OK);
		TEST_EQ_INT(p->store.store_prekey(p->store.user, &pk), PARLEY_OK);
		b->has_prekey = 1;
		b->prekey_id = pk.id;
		memcpy(b->prekey_pub, pk.key.pub, 33);
	}
	b->signed_prekey_id = p->spk.id;
	memcpy(b->signed_prekey_pub, p->spk.key.pub, 33);
	memcpy(b->signed_prekey_sig, p->spk.signature, 64);
	memcpy(b->identity_key, p->ik.pub, 33);
}

static int send_msg(party *from, party *to, const char *text, wire_msg *w)
{
	size_t n = strlen(text);
	memcpy(w->text, text, n + 1);
	return parley_signal_encrypt(from->ctx, &to->addr, (const uint8_t *)text, n, w->buf, sizeof(w->buf), &w->len,
				     &w->type);
}

static int recv_msg(party *to, party *from, const wire_msg *w)
{
	uint8_t out[sizeof(w->buf)];
	size_t n = 0;
	int rc = w->type == PARLEY_SIGNAL_MSG_PREKEY
			 ? parley_signal_decrypt_prekey(to->ctx, &from->addr, w->buf, w->len, out, sizeof(out), &n)
			 : parley_signal_decrypt_signal(to->ctx, &from->addr, w->buf, w->len, out, sizeof(out), &n);
	if (rc == PARLEY_OK && (n != strlen(w->text) || memcmp(out, w->text, n) != 0))
		return -1;
	return rc;
}

/* Snapshot of the stored session record, to prove a failed decrypt changed nothing. */
static size_t snapshot(party *p, party *peer, uint8_t *buf, size_t cap)
{
	const uint8_t *d;
	size_t n;
	if (p->store.load_session(p->store.user, &peer->addr, &d, &n) != PARLEY_OK || n > cap)
		return 0;
	memcpy(buf, d, n);
	return n;
}

static void setup_pair(party *a, party *b)
{
	parley_prekey_bundle bundle;
	wire_msg w;
	party_init(a, "alice");
	party_init(b, "bob");
	bundle_of(b, &bundle, 1);
	TEST_EQ_INT(parley_signal_process_bundle(a->ctx, &b->addr, &bundle), PARLEY_OK);
	TEST_EQ_INT(send_msg(a, b, "hello bob", &w), PARLEY_OK);
	TEST_EQ_INT(w.type, PARLEY_SIGNAL_MSG_PREKEY);
	TEST_EQ_INT(recv_msg(b, a, &w), PARLEY_OK);
}

static void test_conversation_1000(void)
{
	party a, b;
	wire_msg w;
	parley_prekey pk;
	char text[64];
	int steps = 0, last = 0;

	setup_pair(&a, &b);
	/* the one-time prekey is gone after use */
	TEST_EQ_INT(b.store.load_prekey(b.store.user, 100, &pk), PARLEY_E_NOT_FOUND);
	/* Alice keeps sending PreKeySignalMessages until Bob answers */
	TEST_EQ_INT(send_msg(&a, &b, "still prekey", &w), PARLEY_OK);
	TEST_EQ_INT(w.type, PARLEY_SIGNAL_MSG_PREKEY);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
	srand(1234);
	for (int i = 0; i < 1000; i++) {
		int dir = rand() % 3 == 0; /* runs in each direction, switching = a ratchet step */
		party *from = dir ? &b : &a, *to = dir ? &a : &b;
		snprintf(text, sizeof(text), "message %d from %s", i, from->addr.name);
		if (dir != last)
			steps++;
		last = dir;
		if (send_msg(from, to, text, &w) != PARLEY_OK || recv_msg(to, from, &w) != PARLEY_OK) {
			TEST_CHECK(!"conversation message failed");
			break;
		}
		if (from == &a && steps > 0)
			TEST_EQ_INT(w.type, PARLEY_SIGNAL_MSG_WHISPER);
	}
	TEST_CHECK(steps > 100);
	party_free(&a);
	party_free(&b);
}

static void test_out_of_order_dropped_duplicate(void)
{
	party a, b;
	wire_msg w[40], reply;
	char text[32];

	setup_pair(&a, &b);
	TEST_EQ_INT(send_msg(&b, &a, "reply", &reply), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&a, &b, &reply), PARLEY_OK);
	for (int i = 0; i < 40; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		TEST_EQ_INT(send_msg(&a, &b, text, &w[i]), PARLEY_OK);
		TEST_EQ_INT(w[i].type, PARLEY_SIGNAL_MSG_WHISPER);
	}
	/* deliver in reverse order, skipping every 5th (dropped) */
	for (int i = 39; i >= 0; i--)
		if (i % 5 != 0)
			TEST_EQ_INT(recv_msg(&b, &a, &w[i]), PARLEY_OK);
	/* duplicates of delivered messages are refused */
	for (int i = 1; i < 40; i += 7)
		if (i % 5 != 0)
			TEST_EQ_INT(recv_msg(&b, &a, &w[i]), PARLEY_E_DUPLICATE_MESSAGE);
	/* a ratchet step in between, then the late (dropped-so-far) ones still decrypt from the old chain */
	TEST_EQ_INT(send_msg(&b, &a, "step", &reply), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&a, &b, &reply), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "new chain", &w[0 + 1]), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w[1]), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w[5]), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w[5]), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(recv_msg(&b, &a, &w[10]), PARLEY_OK);
	party_free(&a);
	party_free(&b);
}

static void test_tampered(void)
{
	party a, b;
	wire_msg w, t, reply;
	static uint8_t before[1 << 16], after[1 << 16];
	size_t n1, n2;

	setup_pair(&a, &b);
	TEST_EQ_INT(send_msg(&b, &a, "reply", &reply), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&a, &b, &reply), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "genuine", &w), PARLEY_OK);
	n1 = snapshot(&b, &a, before, sizeof(before));
	TEST_CHECK(n1 > 0);
	/* flip one bit in the MAC, in the ciphertext, and in the counter: all BAD_MAC, nothing stored */
	size_t spots[3] = {w.len - 1, w.len - 12, 37}; /* MAC, ciphertext, counter */
	for (int i = 0; i < 3; i++) {
		t = w;
		t.buf[spots[i]] ^= 0x01;
		TEST_EQ_INT(recv_msg(&b, &a, &t), PARLEY_E_BAD_MAC);
		n2 = snapshot(&b, &a, after, sizeof(after));
		TEST_EQ_INT(n1, n2);
		TEST_EQ_MEM(before, after, n1);
	}
	/* truncated / garbage input */
	t = w;
	TEST_EQ_INT(parley_signal_decrypt_signal(b.ctx, &a.addr, t.buf, 5, after, sizeof(after), &n2),
		    PARLEY_E_INVALID_MESSAGE);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
	/* a tampered message on a NEW ratchet key (would trigger a DH step) also leaves the state alone */
	TEST_EQ_INT(send_msg(&b, &a, "b2", &reply), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&a, &b, &reply), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "after step", &w), PARLEY_OK);
	n1 = snapshot(&b, &a, before, sizeof(before));
	t = w;
	t.buf[t.len - 3] ^= 0x80;
	TEST_EQ_INT(recv_msg(&b, &a, &t), PARLEY_E_BAD_MAC);
	n2 = snapshot(&b, &a, after, sizeof(after));
	TEST_EQ_INT(n1, n2);
	TEST_EQ_MEM(before, after, n1);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
	party_free(&a);
	party_free(&b);
}

static void test_forward_jump(void)
{
	party a, b;
	parley_prekey_bundle bundle;
	wire_msg *w = malloc(sizeof(wire_msg) * 5);
	wire_msg tmp;
	parley_prekey pk;

	party_init(&a, "alice");
	party_init(&b, "bob");
	bundle_of(&b, &bundle, 1);
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_OK);
	for (int i = 0; i <= 25001; i++) {
		wire_msg *dst = &tmp;
		if (i == 0)
			dst = &w[0];
		else if (i == 22999)
			dst = &w[1];
		else if (i == 23000)
			dst = &w[4];
		else if (i == 25000)
			dst = &w[2];
		else if (i == 25001)
			dst = &w[3];
		if (send_msg(&a, &b, "jump", dst) != PARLEY_OK) {
			TEST_CHECK(!"encrypt failed");
			break;
		}
	}
	/* counter 25001 from index 0: beyond MAX_FORWARD_JUMPS; nothing stored, prekey kept */
	TEST_EQ_INT(recv_msg(&b, &a, &w[3]), PARLEY_E_TOO_FAR_AHEAD);
	TEST_EQ_INT(b.store.load_prekey(b.store.user, 100, &pk), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w[2]), PARLEY_OK);
	/* only the newest 2,000 skipped keys are kept: 23000 is there, 22999 and 0 are gone */
	TEST_EQ_INT(recv_msg(&b, &a, &w[4]), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w[1]), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(recv_msg(&b, &a, &w[0]), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(recv_msg(&b, &a, &w[3]), PARLEY_OK); /* now only one ahead */
	free(w);
	party_free(&a);
	party_free(&b);
}

static void test_identity_change(void)
{
	party a, b, b2;
	parley_prekey_bundle bundle;
	wire_msg w;
	uint8_t stored[33];

	setup_pair(&a, &b);
	TEST_EQ_INT(parley_signal_remote_identity(a.ctx, &b.addr, stored), PARLEY_OK);
	TEST_EQ_MEM(stored, b.ik.pub, 33);
	/* Bob reinstalls: new identity under the same address */
	party_init(&b2, "bob");
	bundle_of(&b2, &bundle, 1);
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b2.addr, &bundle), PARLEY_E_UNTRUSTED_IDENTITY);
	/* the old session is untouched and still works */
	TEST_EQ_INT(send_msg(&a, &b, "old session", &w), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
	/* new Bob initiates to Alice: refused on receipt too */
	{
		parley_prekey_bundle ab;
		bundle_of(&a, &ab, 1);
		TEST_EQ_INT(parley_signal_process_bundle(b2.ctx, &a.addr, &ab), PARLEY_OK);
		TEST_EQ_INT(send_msg(&b2, &a, "i am bob", &w), PARLEY_OK);
		TEST_EQ_INT(recv_msg(&a, &b2, &w), PARLEY_E_UNTRUSTED_IDENTITY);
		/* the user accepts the new key: now it works */
		TEST_EQ_INT(parley_signal_trust_identity(a.ctx, &b2.addr, b2.ik.pub), PARLEY_OK);
		TEST_EQ_INT(recv_msg(&a, &b2, &w), PARLEY_OK);
	}
	/* and now the OLD Bob key is the untrusted one for encrypting on the old session */
	{
		wire_msg w2;
		TEST_EQ_INT(send_msg(&a, &b2, "to new bob", &w2), PARLEY_OK);
		TEST_EQ_INT(recv_msg(&b2, &a, &w2), PARLEY_OK);
	}
	party_free(&a);
	party_free(&b);
	party_free(&b2);
}

static void test_bundle_errors(void)
{
	party a, b;
	parley_prekey_bundle bundle;
	wire_msg w;
	uint8_t out[64];
	size_t n;

	party_init(&a, "alice");
	party_init(&b, "bob");
	/* no session yet */
	TEST_EQ_INT(send_msg(&a, &b, "x", &w), PARLEY_E_NO_SESSION);
	bundle_of(&b, &bundle, 0);
	bundle.signed_prekey_sig[3] ^= 1;
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_E_BAD_KEY_SIGNATURE);
	bundle.signed_prekey_sig[3] ^= 1;
	bundle.signed_prekey_pub[0] = 0x06;
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_E_INVALID_KEY);
	bundle.signed_prekey_pub[0] = 0x05;
	/* without a one-time prekey (X3DH without DH4) */
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "no opk", &w), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
	/* a signed prekey id Bob does not have */
	bundle_of(&b, &bundle, 1);
	bundle.signed_prekey_id = 99;
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "bad spk id", &w), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_E_INVALID_KEY_ID);
	/* a one-time prekey Bob no longer has */
	bundle_of(&b, &bundle, 1);
	TEST_EQ_INT(b.store.remove_prekey(b.store.user, bundle.prekey_id), PARLEY_OK);
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "bad opk id", &w), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_E_INVALID_KEY_ID);
	/* a SignalMessage from someone without a session */
	{
		party c;
		party_init(&c, "carol");
		TEST_EQ_INT(parley_signal_decrypt_signal(c.ctx, &a.addr, w.buf + 80, w.len - 80, out, sizeof(out), &n) ==
				    PARLEY_OK,
			    0);
		party_free(&c);
	}
	party_free(&a);
	party_free(&b);
}

/* A late message stays decryptable while its chain is among the newest 5 receiving chains. */
static void test_receiver_chain_limit(void)
{
	for (int steps = 4; steps <= 5; steps++) {
		party a, b;
		wire_msg late, w;
		setup_pair(&a, &b);
		TEST_EQ_INT(send_msg(&b, &a, "r", &w), PARLEY_OK);
		TEST_EQ_INT(recv_msg(&a, &b, &w), PARLEY_OK);
		TEST_EQ_INT(send_msg(&a, &b, "late", &late), PARLEY_OK);
		TEST_EQ_INT(send_msg(&a, &b, "on time", &w), PARLEY_OK);
		TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK); /* Bob's receiving chain #2 (the first is Alice's X3DH chain) */
		for (int i = 0; i < steps; i++) {
			TEST_EQ_INT(send_msg(&b, &a, "ping", &w), PARLEY_OK);
			TEST_EQ_INT(recv_msg(&a, &b, &w), PARLEY_OK);
			TEST_EQ_INT(send_msg(&a, &b, "pong", &w), PARLEY_OK);
			TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
		}
		/* after 4 more chains the late message's chain is one of 5 kept; after 5 it was dropped */
		TEST_EQ_INT(recv_msg(&b, &a, &late), steps == 4 ? PARLEY_OK : PARLEY_E_BAD_MAC);
		party_free(&a);
		party_free(&b);
	}
}

/* Both start a session at the same time: each side ends up with two states and must still talk. */
static void test_simultaneous_initiate(void)
{
	party a, b;
	parley_prekey_bundle ba, bb;
	wire_msg wa, wb, w;

	party_init(&a, "alice");
	party_init(&b, "bob");
	bundle_of(&b, &bb, 1);
	bundle_of(&a, &ba, 1);
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bb), PARLEY_OK);
	TEST_EQ_INT(parley_signal_process_bundle(b.ctx, &a.addr, &ba), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "from a", &wa), PARLEY_OK);
	TEST_EQ_INT(send_msg(&b, &a, "from b", &wb), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &wa), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&a, &b, &wb), PARLEY_OK);
	for (int i = 0; i < 20; i++) {
		party *from = i % 2 ? &a : &b, *to = i % 2 ? &b : &a;
		TEST_EQ_INT(send_msg(from, to, "again", &w), PARLEY_OK);
		TEST_EQ_INT(recv_msg(to, from, &w), PARLEY_OK);
	}
	party_free(&a);
	party_free(&b);
}

/* The responder's first decrypt leaves its sending chain lazy (stored as a version-2 record, lazy
 * flag set); more PreKeySignalMessages of the same session, out of order and duplicated, still
 * decrypt or are refused as before, and the reply derives the chain. */
static void test_responder_lazy(void)
{
	party a, b;
	parley_prekey_bundle bundle;
	wire_msg w[3], r;
	static uint8_t rec[1 << 16];
	size_t n;

	party_init(&a, "alice");
	party_init(&b, "bob");
	bundle_of(&b, &bundle, 1);
	TEST_EQ_INT(parley_signal_process_bundle(a.ctx, &b.addr, &bundle), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "p0", &w[0]), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "p1", &w[1]), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "p2", &w[2]), PARLEY_OK);
	TEST_EQ_INT(w[2].type, PARLEY_SIGNAL_MSG_PREKEY);
	TEST_EQ_INT(recv_msg(&b, &a, &w[0]), PARLEY_OK);
	n = snapshot(&b, &a, rec, sizeof(rec));
	TEST_CHECK(n > 8);
	TEST_EQ_MEM(rec, "PSR\x02", 4);
	TEST_EQ_INT(rec[7] & 0x11, 0x11); /* state 0: sender, lazy */
	TEST_EQ_INT(recv_msg(&b, &a, &w[2]), PARLEY_OK);
	TEST_EQ_INT(recv_msg(&b, &a, &w[0]), PARLEY_E_DUPLICATE_MESSAGE);
	TEST_EQ_INT(recv_msg(&b, &a, &w[1]), PARLEY_OK);
	TEST_EQ_INT(send_msg(&b, &a, "reply", &r), PARLEY_OK);
	TEST_EQ_INT(r.type, PARLEY_SIGNAL_MSG_WHISPER);
	n = snapshot(&b, &a, rec, sizeof(rec));
	TEST_EQ_INT(rec[7] & 0x10, 0);
	TEST_EQ_INT(recv_msg(&a, &b, &r), PARLEY_OK);
	TEST_EQ_INT(send_msg(&a, &b, "after reply", &w[0]), PARLEY_OK);
	TEST_EQ_INT(w[0].type, PARLEY_SIGNAL_MSG_WHISPER);
	TEST_EQ_INT(recv_msg(&b, &a, &w[0]), PARLEY_OK);
	party_free(&a);
	party_free(&b);
}

/* Fail each allocation in turn during setup, encrypt and decrypt: every call returns OK or NOMEM,
 * a NOMEM leaves the stored session exactly as it was, and (under ASan) nothing leaks. */
static void test_alloc_failures(void)
{
	static uint8_t before[1 << 16], after[1 << 16];
	int done_setup = 0, done_enc = 0, done_dec = 0;

	for (unsigned long nth = 1; nth < 400 && !(done_setup && done_enc && done_dec); nth++) {
		party a, b;
		parley_prekey_bundle bundle;
		wire_msg w;
		int rc;
		size_t n1, n2;

		party_init(&a, "alice");
		party_init(&b, "bob");
		bundle_of(&b, &bundle, 1);
		parley__alloc_fail_after(nth);
		rc = parley_signal_process_bundle(a.ctx, &b.addr, &bundle);
		if (rc == PARLEY_OK)
			rc = send_msg(&a, &b, "first", &w);
		if (rc == PARLEY_OK)
			rc = recv_msg(&b, &a, &w);
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
		if (rc == PARLEY_OK)
			done_setup = 1;
		else
			goto next;
		/* decrypt (with a DH ratchet step), then encrypt, under allocation failure */
		TEST_EQ_INT(send_msg(&b, &a, "reply", &w), PARLEY_OK);
		n1 = snapshot(&a, &b, before, sizeof(before));
		parley__alloc_fail_after(nth);
		rc = recv_msg(&a, &b, &w);
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
		if (rc == PARLEY_E_NOMEM) {
			n2 = snapshot(&a, &b, after, sizeof(after));
			TEST_CHECK(n1 == n2 && memcmp(before, after, n1) == 0);
			TEST_EQ_INT(recv_msg(&a, &b, &w), PARLEY_OK);
		} else {
			done_dec = 1;
		}
		n1 = snapshot(&a, &b, before, sizeof(before));
		parley__alloc_fail_after(nth);
		rc = send_msg(&a, &b, "after", &w);
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
		if (rc == PARLEY_E_NOMEM) {
			n2 = snapshot(&a, &b, after, sizeof(after));
			TEST_CHECK(n1 == n2 && memcmp(before, after, n1) == 0);
		} else {
			done_enc = 1;
			TEST_EQ_INT(recv_msg(&b, &a, &w), PARLEY_OK);
		}
next:
		party_free(&a);
		party_free(&b);
	}
	TEST_CHECK(done_setup && done_enc && done_dec);
}

int main(void)
{
	TEST_RUN(test_conversation_1000);
	TEST_RUN(test_out_of_order_dropped_duplicate);
	TEST_RUN(test_tampered);
	TEST_RUN(test_forward_jump);
	TEST_RUN(test_identity_change);
	TEST_RUN(test_bundle_errors);
	TEST_RUN(test_simultaneous_initiate);
	TEST_RUN(test_receiver_chain_limit);
	TEST_RUN(test_alloc_failures);
	TEST_RUN(test_responder_lazy);
	TEST_EXIT();
}
