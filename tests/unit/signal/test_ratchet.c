/* Known-answer tests of the Signal KDFs and X3DH initialisation, with libsignal 0.24's own vectors
 * (ratchet/keys.rs and tests/ratchet.rs), plus the wire codec. */
#include <stdlib.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "crypto/crypto.h"
#include "signal/message.h"
#include "signal/state.h"
#include "../test.h"

static size_t unhex(uint8_t *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void test_chain_kdf(void)
{
	uint8_t ck[32], seed[32], next[32], want[32];
	sig_msg_keys k;
	unhex(ck, "8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f");
	sig__chain_step(ck, seed, next);
	TEST_EQ_INT(sig__message_keys(&k, seed), PARLEY_OK);
	unhex(want, "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217");
	TEST_EQ_MEM(k.cipher, want, 32);
	unhex(want, "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b");
	TEST_EQ_MEM(k.mac, want, 32);
	unhex(want, "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d");
	TEST_EQ_MEM(next, want, 32);
}

/* kp from libsignal's 33-byte public (0x05||u) and 32-byte private hex */
static void kp_from(crypto_keypair *kp, const char *pub_hex, const char *priv_hex)
{
	uint8_t pub33[33];
	unhex(pub33, pub_hex);
	memcpy(kp->pub, pub33 + 1, 32);
	if (priv_hex != NULL) {
		unhex(kp->priv, priv_hex);
		crypto__clamp(kp->priv);
	} else {
		memset(kp->priv, 0, 32);
	}
}

static void test_init_bob_vector(void)
{
	crypto_keypair bob_eph, bob_ik, bob_spk, alice_base, alice_ik;
	sig_state st;
	uint8_t want[32], ik33[33];

	kp_from(&bob_eph, "052cb49776b8770205745a3a6e24f579cdb4ba7a89041005928ebbadc9c05ad458",
		"a1cab48f7c893fafa9880a28c3b4999d28d6329562d27a4ea4e22e9ff1bdd65a");
	kp_from(&bob_ik, "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626",
		"4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e");
	kp_from(&alice_base, "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950", NULL);
	kp_from(&alice_ik, "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a", NULL);
	kp_from(&bob_spk, "05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67",
		"583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253");
	TEST_EQ_INT(sig__init_bob(&st, &bob_ik, &bob_spk, NULL, &bob_eph, alice_ik.pub, alice_base.pub), PARLEY_OK);
	unhex(want, "9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d");
	TEST_EQ_MEM(st.sender_ck, want, 32);
	unhex(ik33, "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626");
	TEST_EQ_MEM(st.local_ik, ik33, 33);
	unhex(ik33, "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a");
	TEST_EQ_MEM(st.remote_ik, ik33, 33);
	TEST_EQ_INT(st.version, 3);
	TEST_EQ_INT(st.sender_index, 0);
	sig__state_clear(&st);
}

static void test_init_alice_vector(void)
{
	crypto_keypair alice_base, alice_ik, bob_ik, bob_spk, bob_eph, ratchet;
	sig_state st;
	uint8_t want[32];

	kp_from(&bob_eph, "052cb49776b8770205745a3a6e24f579cdb4ba7a89041005928ebbadc9c05ad458", NULL);
	kp_from(&bob_ik, "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626", NULL);
	kp_from(&alice_base, "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950",
		"11ae7c64d1e61cd596b76a0db5012673391cae66edbfcf073b4da80516a47449");
	kp_from(&bob_spk, "05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67", NULL);
	kp_from(&alice_ik, "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a",
		"9040f0d4e09cf38f6dc7c13779c908c015a1da4fa78737a080eb0a6f4f5f8f58");
	TEST_EQ_INT(crypto__keypair_generate(&ratchet), PARLEY_OK);
	TEST_EQ_INT(sig__init_alice(&st, &alice_ik, &alice_base, bob_ik.pub, bob_spk.pub, NULL, bob_eph.pub, &ratchet),
		    PARLEY_OK);
	TEST_EQ_INT(st.n_recv, 1);
	TEST_EQ_MEM(st.recv[0].ratchet_pub, bob_eph.pub, 32);
	unhex(want, "ab9be50e5cb22a925446ab90ee5670545f4fd32902459ec274b6ad0ae5d6031a");
	TEST_EQ_MEM(st.recv[0].ck, want, 32);
	sig__state_clear(&st);
}

/* Both sides agree when the keys are consistent, with and without a one-time prekey. */
static void test_init_agree(void)
{
	for (int with_opk = 0; with_opk < 2; with_opk++) {
		crypto_keypair a_ik, a_base, b_ik, b_spk, b_opk, ratchet;
		sig_state a, b;
		crypto__keypair_generate(&a_ik);
		crypto__keypair_generate(&a_base);
		crypto__keypair_generate(&b_ik);
		crypto__keypair_generate(&b_spk);
		crypto__keypair_generate(&b_opk);
		crypto__keypair_generate(&ratchet);
		TEST_EQ_INT(sig__init_alice(&a, &a_ik, &a_base, b_ik.pub, b_spk.pub, with_opk ? b_opk.pub : NULL,
					    b_spk.pub, &ratchet),
			    PARLEY_OK);
		TEST_EQ_INT(sig__init_bob(&b, &b_ik, &b_spk, with_opk ? &b_opk : NULL, &b_spk, a_ik.pub, a_base.pub),
			    PARLEY_OK);
		TEST_EQ_MEM(a.recv[0].ck, b.sender_ck, 32);
		sig__state_clear(&a);
		sig__state_clear(&b);
	}
}

static void test_msg_codec(void)
{
	uint8_t buf[256], pub[32], ct[32];
	size_t hlen, n;
	sig_msg m;
	memset(pub, 0x11, 32);
	memset(ct, 0xAB, 32);
	hlen = sig__msg_header_len(0, 0, 32);
	TEST_EQ_INT(sig__msg_write_header(buf, pub, 0, 0, 32), hlen);
	/* 0x33 | 0a 21 05 <32> | 10 00 | 18 00 | 22 20 : every set field is written, even zero */
	TEST_EQ_INT(hlen, 1 + 35 + 2 + 2 + 2);
	TEST_EQ_INT(buf[0], 0x33);
	TEST_EQ_INT(buf[1], 0x0a);
	TEST_EQ_INT(buf[2], 0x21);
	TEST_EQ_INT(buf[3], 0x05);
	TEST_EQ_INT(buf[36], 0x10);
	TEST_EQ_INT(buf[37], 0x00);
	TEST_EQ_INT(buf[38], 0x18);
	TEST_EQ_INT(buf[40], 0x22);
	TEST_EQ_INT(buf[41], 0x20);
	memcpy(buf + hlen, ct, 32);
	memset(buf + hlen + 32, 0, 8);
	n = hlen + 32 + 8;
	TEST_EQ_INT(sig__msg_decode(&m, buf, n), PARLEY_OK);
	TEST_EQ_INT(m.counter, 0);
	TEST_EQ_INT(m.ciphertext_len, 32);
	TEST_EQ_MEM(m.ratchet_key, pub, 32);
	/* every truncation is refused, never read past */
	for (size_t i = 0; i < n - 8; i++)
		TEST_CHECK(sig__msg_decode(&m, buf, i) != PARLEY_OK);
	buf[0] = 0x23;
	TEST_EQ_INT(sig__msg_decode(&m, buf, n), PARLEY_E_BAD_VERSION);
	buf[0] = 0x33;
	buf[3] = 0x06;
	TEST_EQ_INT(sig__msg_decode(&m, buf, n), PARLEY_E_INVALID_KEY);
	buf[3] = 0x05;
	/* large counters round-trip */
	hlen = sig__msg_write_header(buf, pub, 300000, 70000, 16);
	memset(buf + hlen, 0, 24);
	TEST_EQ_INT(sig__msg_decode(&m, buf, hlen + 24), PARLEY_OK);
	TEST_EQ_INT(m.counter, 300000);
	TEST_EQ_INT(m.previous_counter, 70000);
}

static void test_record_roundtrip(void)
{
	sig_record r, r2;
	sig_state st;
	crypto_keypair a_ik, a_base, b_ik, b_spk, ratchet;
	dynbuf b1, b2;

	crypto__keypair_generate(&a_ik);
	crypto__keypair_generate(&a_base);
	crypto__keypair_generate(&b_ik);
	crypto__keypair_generate(&b_spk);
	crypto__keypair_generate(&ratchet);
	sig__record_init(&r);
	for (int i = 0; i < 45; i++) {
		TEST_EQ_INT(sig__init_alice(&st, &a_ik, &a_base, b_ik.pub, b_spk.pub, NULL, b_spk.pub, &ratchet), PARLEY_OK);
		st.has_pending = 1;
		st.pending_spk_id = (uint32_t)i;
		TEST_EQ_INT(sig__record_promote_new(&r, &st), PARLEY_OK);
	}
	TEST_EQ_INT(r.n_states, 1 + PARLEY_SIGNAL_MAX_ARCHIVED_STATES);
	TEST_EQ_INT(r.states[0].pending_spk_id, 44);
	dynbuf__init(&b1, 1 << 20);
	dynbuf__init(&b2, 1 << 20);
	TEST_EQ_INT(sig__record_encode(&r, &b1), PARLEY_OK);
	TEST_EQ_INT(sig__record_decode(&r2, b1.data, b1.len), PARLEY_OK);
	TEST_EQ_INT(sig__record_encode(&r2, &b2), PARLEY_OK);
	TEST_EQ_INT(b1.len, b2.len);
	TEST_EQ_MEM(b1.data, b2.data, b1.len);
	sig__record_free(&r2);
	for (size_t i = 0; i < b1.len; i += 97)
		TEST_EQ_INT(sig__record_decode(&r2, b1.data, i), PARLEY_E_INVALID_MESSAGE);
	sig__record_free(&r);
	dynbuf__free(&b1);
	dynbuf__free(&b2);
}

/* ---------------------------------------------------------------- lazy sending chain, record v1/v2 */

/* Version-1 records written by parley before the lazy sending chain (commit 82ab05c, via
 * sig__init_alice / sig__init_bob / sig__state_encrypt / sig__state_decrypt / sig__record_encode):
 * Alice after sending two SignalMessages, Bob after decrypting the first one (his sending chain was
 * derived eagerly then). V1_ALICE_MSG2 is Alice's second message, not yet received. */
static const char V1_ALICE[] =
	"505352010101030105e1ed823aad30d30990d5d238f83b710f067ecc073f66242e177f41c65067016605609f7192caa9"
	"ad5b40a23cc7bfd3206c7693806bb7991f3d072187524a6b134f000000000000000040d993072cac4f6089c944750cd8"
	"345bcf66e443d9f46205ec891db85968cd16bee770f681b9513e786772f28759e85f76b4cc78214d2f097263220d601f"
	"1006d0adb46282cf602d5da315f7e4ad7a54c71ea67a2cd1b065c63f4cd9e953104c745a1f847b98188166237e516bbe"
	"c0f5309af69eb420a084fcda94ef85375ba90200000000000000016cbc04077c71a65e4510ad9fb869f9c6e1a5e2387a"
	"56dcf83e079d7e616add46882036ccb7071d1d94a967b80589e0f7ba4ff3fa9708624cc511cdc6aa6022ed0000000000"
	"00";
static const char V1_BOB[] =
	"505352010101030105609f7192caa9ad5b40a23cc7bfd3206c7693806bb7991f3d072187524a6b134f05e1ed823aad30"
	"d30990d5d238f83b710f067ecc073f66242e177f41c650670166000000000000000001edbe89b0b25351ac4737bb54fc"
	"ba662089d7b50b0319cd08f1ac1b9ecee755bd8f2ae44b76f02d549252ab6ecc9ca8f2b14ba95ecf9090eb051362a6d6"
	"7171e06bcf284cf25d80359b6bf4099aaa527841af3be02abf1e7433e78bf3097a56d0eb883ad8c9210f55ac3dfcba09"
	"90a4cf94e63d8bdb20fa64fefaad7e80f428000000000000000001bee770f681b9513e786772f28759e85f76b4cc7821"
	"4d2f097263220d601f1006f30439cd9adb32790e36d9ce0a24f1bb852add8c1eba8e530afb061dfe7c6e0f0100000000"
	"00";
static const char V1_ALICE_MSG2[] =
	"330a2105bee770f681b9513e786772f28759e85f76b4cc78214d2f097263220d601f10061001180022107aac4abc25ae"
	"a230ec64778a080cd9dd956533737d6cdc60";

typedef struct blob {
	uint8_t b[1024];
	size_t n;
} blob;

static void blob_of(blob *o, const char *hex)
{
	TEST_CHECK(strlen(hex) / 2 <= sizeof(o->b));
	o->n = unhex(o->b, hex);
}

static size_t enc_state(const sig_state *st, uint8_t *buf, size_t cap)
{
	sig_record r;
	dynbuf b;
	size_t n = 0;
	sig__record_init(&r);
	r.states = (sig_state *)st; /* borrowed: encode only reads */
	r.n_states = 1;
	r.has_current = 1;
	dynbuf__init(&b, 1 << 16);
	if (sig__record_encode(&r, &b) == PARLEY_OK && b.len <= cap) {
		memcpy(buf, b.data, b.len);
		n = b.len;
	}
	dynbuf__free_secure(&b);
	return n;
}

/* send `text` from st to peer through the wire encoding; 0 on success */
static int hop(sig_state *from, sig_state *to, const char *text)
{
	uint8_t buf[512], out[512];
	size_t n = 0, on = 0, len = strlen(text);
	int type = 0, rc;
	sig_msg m;

	rc = sig__state_encrypt(from, (const uint8_t *)text, len, buf, sizeof(buf), &n, &type);
	if (rc == PARLEY_OK)
		rc = type == PARLEY_SIGNAL_MSG_WHISPER ? sig__msg_decode(&m, buf, n) : -1;
	if (rc == PARLEY_OK)
		rc = sig__state_decrypt(to, &m, 0, out, sizeof(out), &on);
	if (rc == PARLEY_OK && (on != len || memcmp(out, text, len) != 0))
		rc = -1;
	return rc;
}

/* A version-1 record still loads, re-encodes to the same bytes while it needs no lazy chain, and
 * its sessions go on in both directions; the first receive-side step makes it a version-2 record. */
static void test_record_v1_compat(void)
{
	static blob a1, b1, msg2;
	sig_record ra, rb;
	dynbuf d;
	sig_msg m;
	uint8_t out[512];
	size_t on = 0;

	blob_of(&a1, V1_ALICE);
	blob_of(&b1, V1_BOB);
	blob_of(&msg2, V1_ALICE_MSG2);
	TEST_EQ_INT(b1.b[3], 0x01);
	TEST_EQ_INT(sig__record_decode(&ra, a1.b, a1.n), PARLEY_OK);
	TEST_EQ_INT(sig__record_decode(&rb, b1.b, b1.n), PARLEY_OK);
	TEST_EQ_INT(ra.format, 1);
	TEST_EQ_INT(rb.states[0].sender_lazy, 0);
	TEST_EQ_INT(rb.states[0].n_recv, 1);
	dynbuf__init(&d, 1 << 16);
	TEST_EQ_INT(sig__record_encode(&rb, &d), PARLEY_OK);
	TEST_EQ_INT(d.len, b1.n);
	TEST_EQ_MEM(d.data, b1.b, b1.n);

	/* Bob takes Alice's pending second message on the known chain: still no lazy chain, still v1 */
	TEST_EQ_INT(sig__msg_decode(&m, msg2.b, msg2.n), PARLEY_OK);
	TEST_EQ_INT(sig__state_decrypt(&rb.states[0], &m, 0, out, sizeof(out), &on), PARLEY_OK);
	TEST_EQ_INT(on, 5);
	TEST_EQ_MEM(out, "hello", 5);
	dynbuf__reset(&d);
	TEST_EQ_INT(sig__record_encode(&rb, &d), PARLEY_OK);
	TEST_EQ_INT(d.data[3], 0x01);

	/* Bob answers with his eagerly derived chain; Alice's receive-side step leaves her lazy: v2 */
	TEST_EQ_INT(hop(&rb.states[0], &ra.states[0], "bob, from a v1 record"), PARLEY_OK);
	TEST_EQ_INT(ra.states[0].sender_lazy, 1);
	dynbuf__reset(&d);
	TEST_EQ_INT(sig__record_encode(&ra, &d), PARLEY_OK);
	TEST_EQ_INT(d.data[3], 0x02);
	TEST_EQ_INT(hop(&ra.states[0], &rb.states[0], "alice, lazy chain derived"), PARLEY_OK);
	TEST_EQ_INT(ra.states[0].sender_lazy, 0);
	TEST_EQ_INT(rb.states[0].sender_lazy, 1);
	TEST_EQ_INT(hop(&rb.states[0], &ra.states[0], "bob again"), PARLEY_OK);
	TEST_EQ_INT(hop(&rb.states[0], &ra.states[0], "bob twice"), PARLEY_OK);
	TEST_EQ_INT(hop(&ra.states[0], &rb.states[0], "alice again"), PARLEY_OK);
	sig__record_free(&rb);

	/* a v1 record may not carry the lazy flag (0x10); find Bob's flags byte: magic 4 + 2, version 1 */
	b1.b[7] |= 0x10;
	TEST_EQ_INT(sig__record_decode(&rb, b1.b, b1.n), PARLEY_E_INVALID_MESSAGE);
	b1.b[7] &= (uint8_t)~0x10;
	b1.b[3] = 0x03; /* unknown version */
	TEST_EQ_INT(sig__record_decode(&rb, b1.b, b1.n), PARLEY_E_INVALID_MESSAGE);
	b1.b[3] = 0x02; /* a v1 body under the v2 magic is a valid v2 record */
	TEST_EQ_INT(sig__record_decode(&rb, b1.b, b1.n), PARLEY_OK);
	sig__record_free(&rb);
	sig__record_free(&ra);
	dynbuf__free_secure(&d);
}

/* The lazy state itself: what a receive-side step leaves, that a failed decrypt or encrypt leaves it
 * untouched, that a message on another new ratchet key fails as in libsignal (BAD_MAC), and how a
 * lazy state is stored. */
static void test_lazy_sender(void)
{
	crypto_keypair a_ik, a_base, b_ik, b_spk, ratchet, forged_key;
	sig_state a, b;
	static uint8_t before[1 << 12], after[1 << 12];
	uint8_t buf[512], out[512], zero[32] = {0}, old_pub[32];
	size_t n1, n2, n = 0, on = 0;
	int type = 0;
	sig_msg m;
	sig_record r;
	blob rec;

	crypto__keypair_generate(&a_ik);
	crypto__keypair_generate(&a_base);
	crypto__keypair_generate(&b_ik);
	crypto__keypair_generate(&b_spk);
	crypto__keypair_generate(&ratchet);
	crypto__keypair_generate(&forged_key);
	TEST_EQ_INT(sig__init_alice(&a, &a_ik, &a_base, b_ik.pub, b_spk.pub, NULL, b_spk.pub, &ratchet), PARLEY_OK);
	TEST_EQ_INT(sig__init_bob(&b, &b_ik, &b_spk, NULL, &b_spk, a_ik.pub, a_base.pub), PARLEY_OK);
	TEST_EQ_INT(b.sender_lazy, 0);
	TEST_EQ_INT(hop(&a, &b, "first"), PARLEY_OK);
	/* Bob stepped on receive: receiving chain added, sending pair and chain not derived (wiped) */
	TEST_EQ_INT(b.sender_lazy, 1);
	TEST_EQ_INT(b.has_sender, 1);
	TEST_EQ_INT(b.n_recv, 1);
	TEST_EQ_MEM(b.sender_ratchet.priv, zero, 32);
	TEST_EQ_MEM(b.sender_ck, zero, 32);
	TEST_EQ_INT(b.sender_index, 0);
	/* more from Alice on the same chain while Bob is lazy */
	TEST_EQ_INT(hop(&a, &b, "second"), PARLEY_OK);
	TEST_EQ_INT(b.sender_lazy, 1);

	/* a message on a ratchet key Bob has never seen, while lazy: refused, state unchanged */
	n1 = enc_state(&b, before, sizeof(before));
	TEST_CHECK(n1 > 0);
	TEST_EQ_INT(sig__state_encrypt(&a, (const uint8_t *)"x", 1, buf, sizeof(buf), &n, &type), PARLEY_OK);
	TEST_EQ_INT(sig__msg_decode(&m, buf, n), PARLEY_OK);
	memcpy(buf + 4, forged_key.pub, 32); /* 0x33 0a 21 05 | key */
	TEST_EQ_INT(sig__msg_decode(&m, buf, n), PARLEY_OK);
	TEST_EQ_INT(sig__state_decrypt(&b, &m, 0, out, sizeof(out), &on), PARLEY_E_BAD_MAC);
	n2 = enc_state(&b, after, sizeof(after));
	TEST_EQ_INT(n1, n2);
	TEST_EQ_MEM(before, after, n1);

	/* the stored form of a lazy state: v2, flag 0x10, no sender block; round trip */
	sig__record_init(&r);
	TEST_CHECK(n1 <= sizeof(rec.b));
	memcpy(rec.b, before, n1);
	rec.n = n1;
	TEST_EQ_INT(rec.b[3], 0x02);
	TEST_EQ_INT(rec.b[7] & 0x11, 0x11);
	TEST_EQ_INT(sig__record_decode(&r, rec.b, rec.n), PARLEY_OK);
	TEST_EQ_INT(r.states[0].sender_lazy, 1);
	TEST_EQ_INT(enc_state(&r.states[0], after, sizeof(after)), n1);
	TEST_EQ_MEM(before, after, n1);
	sig__record_free(&r);
	rec.b[7] &= (uint8_t)~0x01; /* lazy without a sender */
	TEST_EQ_INT(sig__record_decode(&r, rec.b, rec.n), PARLEY_E_INVALID_MESSAGE);
	rec.b[7] |= 0x01;
	/* lazy with no receiving chain: n_recv is the byte before the only chain (68 + 4 + 2 + 36*k) */
	{
		size_t chain_len = 32 + 32 + 4 + 2 + (size_t)b.recv[0].n_skipped * 36;
		TEST_EQ_INT(rec.b[rec.n - chain_len - 1], 1);
		rec.b[rec.n - chain_len - 1] = 0;
		TEST_EQ_INT(sig__record_decode(&r, rec.b, rec.n - chain_len), PARLEY_E_INVALID_MESSAGE);
	}

	/* an encrypt that fails (buffer too small) leaves the lazy state as it was */
	TEST_EQ_INT(sig__state_encrypt(&b, (const uint8_t *)"reply", 5, buf, 10, &n, &type), PARLEY_E_INVAL);
	n2 = enc_state(&b, after, sizeof(after));
	TEST_EQ_INT(n1, n2);
	TEST_EQ_MEM(before, after, n1);

	/* the reply derives the chain: a fresh ratchet key (not the signed prekey Bob started with) */
	memcpy(old_pub, b_spk.pub, 32);
	TEST_EQ_INT(hop(&b, &a, "reply"), PARLEY_OK);
	TEST_EQ_INT(b.sender_lazy, 0);
	TEST_CHECK(memcmp(b.sender_ratchet.pub, old_pub, 32) != 0);
	TEST_CHECK(memcmp(b.sender_ratchet.priv, zero, 32) != 0);
	TEST_EQ_INT(b.sender_index, 1);
	TEST_EQ_INT(a.sender_lazy, 1);
	TEST_EQ_INT(hop(&b, &a, "reply 2"), PARLEY_OK);
	TEST_EQ_INT(hop(&a, &b, "and back"), PARLEY_OK);
	TEST_EQ_INT(hop(&b, &a, "and forth"), PARLEY_OK);
	sig__state_clear(&a);
	sig__state_clear(&b);
}

int main(void)
{
	crypto__init();
	TEST_RUN(test_chain_kdf);
	TEST_RUN(test_init_bob_vector);
	TEST_RUN(test_init_alice_vector);
	TEST_RUN(test_init_agree);
	TEST_RUN(test_msg_codec);
	TEST_RUN(test_record_roundtrip);
	TEST_RUN(test_record_v1_compat);
	TEST_RUN(test_lazy_sender);
	TEST_EXIT();
}
