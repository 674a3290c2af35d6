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

int main(void)
{
	crypto__init();
	TEST_RUN(test_chain_kdf);
	TEST_RUN(test_init_bob_vector);
	TEST_RUN(test_init_alice_vector);
	TEST_RUN(test_init_agree);
	TEST_RUN(test_msg_codec);
	TEST_RUN(test_record_roundtrip);
	TEST_EXIT();
}
