/* X3DH key agreement and the Double Ratchet on one session state, as libsignal 0.24 does them
 * (ratchet.rs, ratchet/keys.rs, session_cipher.rs). */
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "common/alloc.h"
#include "signal/message.h"
#include "signal/state.h"

static const uint8_t LABEL_TEXT[] = "WhisperText";
static const uint8_t LABEL_RATCHET[] = "WhisperRatchet";
static const uint8_t LABEL_KEYS[] = "WhisperMessageKeys";

/* ---------------------------------------------------------------- KDFs */

#ifdef PARLEY_TEST_SIGNAL_WORK
sig_work_counters sig__work;
#define COUNT_WORK(field) (sig__work.field++)
#else
#define COUNT_WORK(field) ((void)0)
#endif

void sig__chain_step(const uint8_t ck[CRYPTO_KEY_LEN], uint8_t seed[CRYPTO_KEY_LEN], uint8_t next[CRYPTO_KEY_LEN])
{
	static const uint8_t one = 0x01, two = 0x02;
	COUNT_WORK(chain_steps);
	if (seed != NULL && next != NULL)
		crypto__hmac_sha256_pair(ck, CRYPTO_KEY_LEN, &one, 1, seed, &two, 1, next);
	else if (seed != NULL)
		crypto__hmac_sha256(seed, ck, CRYPTO_KEY_LEN, &one, 1);
	else if (next != NULL)
		crypto__hmac_sha256(next, ck, CRYPTO_KEY_LEN, &two, 1);
}

int sig__message_keys(sig_msg_keys *k, const uint8_t seed[CRYPTO_KEY_LEN])
{
	uint8_t okm[80];
	int rc = crypto__hkdf_sha256(okm, sizeof(okm), NULL, 0, seed, CRYPTO_KEY_LEN, LABEL_KEYS,
				     sizeof(LABEL_KEYS) - 1);
	if (rc == PARLEY_OK) {
		memcpy(k->cipher, okm, 32);
		memcpy(k->mac, okm + 32, 32);
		memcpy(k->iv, okm + 64, 16);
	}
	crypto__wipe(okm, sizeof(okm));
	return rc;
}

int sig__root_step(const uint8_t root[CRYPTO_KEY_LEN], const uint8_t their_pub[CRYPTO_KEY_LEN],
		   const uint8_t our_priv[CRYPTO_KEY_LEN], uint8_t new_root[CRYPTO_KEY_LEN], uint8_t ck[CRYPTO_KEY_LEN])
{
	uint8_t shared[CRYPTO_KEY_LEN], okm[64];
	int rc;

	COUNT_WORK(scalar_mults);
	rc = crypto__dh(shared, our_priv, their_pub);
	if (rc == PARLEY_OK)
		rc = crypto__hkdf_sha256(okm, sizeof(okm), root, CRYPTO_KEY_LEN, shared, sizeof(shared), LABEL_RATCHET,
					 sizeof(LABEL_RATCHET) - 1);
	if (rc == PARLEY_OK) {
		memcpy(new_root, okm, 32);
		memcpy(ck, okm + 32, 32);
	}
	crypto__wipe(shared, sizeof(shared));
	crypto__wipe(okm, sizeof(okm));
	return rc;
}

/* ---------------------------------------------------------------- X3DH */

/* HKDF(no salt, 0xFF*32 || DH1..DH3[4], "WhisperText", 64) = RK || CK */
static int x3dh_derive(const uint8_t *secrets, size_t len, uint8_t rk[32], uint8_t ck[32])
{
	uint8_t okm[64];
	int rc = crypto__hkdf_sha256(okm, sizeof(okm), NULL, 0, secrets, len, LABEL_TEXT, sizeof(LABEL_TEXT) - 1);
	if (rc == PARLEY_OK) {
		memcpy(rk, okm, 32);
		memcpy(ck, okm + 32, 32);
	}
	crypto__wipe(okm, sizeof(okm));
	return rc;
}

static void state_base(sig_state *st, const crypto_keypair *our_ik, const uint8_t their_ik[CRYPTO_KEY_LEN])
{
	memset(st, 0, sizeof(*st));
	st->version = SIG_SESSION_VERSION;
	crypto__pubkey_serialize(st->local_ik, our_ik->pub);
	crypto__pubkey_serialize(st->remote_ik, their_ik);
}

int sig__init_alice(sig_state *st, const crypto_keypair *our_ik, const crypto_keypair *our_base,
		    const uint8_t their_ik[CRYPTO_KEY_LEN], const uint8_t their_spk[CRYPTO_KEY_LEN],
		    const uint8_t *their_opk, const uint8_t their_ratchet[CRYPTO_KEY_LEN],
		    const crypto_keypair *sending_ratchet)
{
	uint8_t secrets[32 * 5], rk[32], ck[32];
	size_t n = 32 * 4;
	int rc;

	memset(secrets, 0xFF, 32); /* "discontinuity bytes" */
	crypto__dh(secrets + 32, our_ik->priv, their_spk);
	crypto__dh(secrets + 64, our_base->priv, their_ik);
	crypto__dh(secrets + 96, our_base->priv, their_spk);
	if (their_opk != NULL) {
		crypto__dh(secrets + 128, our_base->priv, their_opk);
		n += 32;
	}
	rc = x3dh_derive(secrets, n, rk, ck);
	if (rc != PARLEY_OK)
		goto out;
	state_base(st, our_ik, their_ik);
	/* receiving chain on Bob's ratchet key from CK; our sending chain after one DH step */
	memcpy(st->recv[0].ratchet_pub, their_ratchet, CRYPTO_KEY_LEN);
	memcpy(st->recv[0].ck, ck, 32);
	st->n_recv = 1;
	rc = sig__root_step(rk, their_ratchet, sending_ratchet->priv, st->root, st->sender_ck);
	if (rc != PARLEY_OK)
		goto out;
	st->sender_ratchet = *sending_ratchet;
	st->has_sender = 1;
out:
	crypto__wipe(secrets, sizeof(secrets));
	crypto__wipe(rk, sizeof(rk));
	crypto__wipe(ck, sizeof(ck));
	return rc;
}

int sig__init_bob(sig_state *st, const crypto_keypair *our_ik, const crypto_keypair *our_spk,
		  const crypto_keypair *our_opk, const crypto_keypair *our_ratchet, const uint8_t their_ik[CRYPTO_KEY_LEN],
		  const uint8_t their_base[CRYPTO_KEY_LEN])
{
	uint8_t secrets[32 * 5], ck[32];
	size_t n = 32 * 4;
	int rc;

	memset(secrets, 0xFF, 32);
	crypto__dh(secrets + 32, our_spk->priv, their_ik);
	crypto__dh(secrets + 64, our_ik->priv, their_base);
	crypto__dh(secrets + 96, our_spk->priv, their_base);
	if (our_opk != NULL) {
		crypto__dh(secrets + 128, our_opk->priv, their_base);
		n += 32;
	}
	state_base(st, our_ik, their_ik);
	rc = x3dh_derive(secrets, n, st->root, ck);
	if (rc == PARLEY_OK) {
		/* no DH step: Alice's first message triggers the first real ratchet step */
		st->sender_ratchet = *our_ratchet;
		memcpy(st->sender_ck, ck, 32);
		st->has_sender = 1;
	}
	crypto__wipe(secrets, sizeof(secrets));
	crypto__wipe(ck, sizeof(ck));
	return rc;
}

/* ---------------------------------------------------------------- lazy sending chain */

/* Derive the sending chain a receive-side DH step postponed (state.h, "Lazy sending chain"): a fresh
 * ratchet pair and the root step against the peer's ratchet key that triggered the step, which is the
 * newest receiving chain's. Writes only the outputs; the state is not touched. */
static int lazy_sender_derive(const sig_state *st, crypto_keypair *kp, uint8_t root[CRYPTO_KEY_LEN],
			      uint8_t ck[CRYPTO_KEY_LEN])
{
	int rc;

	if (st->n_recv == 0)
		return PARLEY_E_INTERNAL; /* the record decoder refuses this; kept for robustness */
	COUNT_WORK(scalar_mults);
	rc = crypto__keypair_generate(kp);
	if (rc == PARLEY_OK)
		rc = sig__root_step(st->root, st->recv[st->n_recv - 1].ratchet_pub, kp->priv, root, ck);
	if (rc != PARLEY_OK)
		crypto__keypair_wipe(kp);
	return rc;
}

/* ---------------------------------------------------------------- encrypt */

int sig__state_encrypt(sig_state *st, const uint8_t *pt, size_t len, uint8_t *out, size_t cap, size_t *out_len,
		       int *type)
{
	uint8_t seed[32], next[32], mac[SIG_MAC_LEN], ck[32], lazy_root[32];
	crypto_keypair lazy_kp;
	const crypto_keypair *ratchet = &st->sender_ratchet;
	sig_msg_keys k;
	sig_prekey_fields pf;
	size_t ct_len, hdr, inner_len, pre_hdr = 0, total, n;
	uint8_t *inner;
	int rc;

	if (!st->has_sender)
		return PARLEY_E_NO_SESSION;
	if (len > PARLEY_SIGNAL_MAX_PLAINTEXT)
		return PARLEY_E_TOO_LARGE;
	ct_len = CRYPTO_CBC_CIPHERTEXT_LEN(len);
	hdr = sig__msg_header_len(st->sender_index, st->previous_counter, ct_len);
	inner_len = hdr + ct_len + SIG_MAC_LEN;
	total = inner_len;
	if (st->has_pending) {
		pf.has_prekey_id = st->pending_has_prekey;
		pf.prekey_id = st->pending_prekey_id;
		pf.signed_prekey_id = st->pending_spk_id;
		pf.registration_id = st->local_reg;
		memcpy(pf.base_key, st->pending_base, 32);
		memcpy(pf.identity_key, st->local_ik, CRYPTO_SIGNAL_PUBKEY_LEN);
		pre_hdr = sig__prekey_header_len(&pf, inner_len);
		total = pre_hdr + inner_len + sig__prekey_trailer_len(&pf);
	}
	if (cap < total)
		return PARLEY_E_INVAL;

	memset(&lazy_kp, 0, sizeof(lazy_kp));
	memset(lazy_root, 0, sizeof(lazy_root));
	memcpy(ck, st->sender_ck, 32);
	if (st->sender_lazy) {
		/* into locals: the state changes only once the message is complete */
		rc = lazy_sender_derive(st, &lazy_kp, lazy_root, ck);
		if (rc != PARLEY_OK)
			goto out;
		ratchet = &lazy_kp;
	}
	sig__chain_step(ck, seed, next);
	rc = sig__message_keys(&k, seed);
	if (rc != PARLEY_OK)
		goto out;
	if (st->has_pending && sig__prekey_write_header(out, &pf, inner_len) != pre_hdr) {
		rc = PARLEY_E_INTERNAL;
		goto out;
	}
	inner = out + pre_hdr;
	if (sig__msg_write_header(inner, ratchet->pub, st->sender_index, st->previous_counter, ct_len) != hdr) {
		rc = PARLEY_E_INTERNAL;
		goto out;
	}
	rc = crypto__aes256_cbc_encrypt(k.cipher, k.iv, pt, len, inner + hdr, ct_len, &n);
	if (rc != PARLEY_OK)
		goto out;
	sig__msg_mac(mac, k.mac, st->local_ik, st->remote_ik, inner, hdr + ct_len);
	memcpy(inner + hdr + ct_len, mac, SIG_MAC_LEN);
	if (st->has_pending)
		sig__prekey_write_trailer(inner + inner_len, &pf);

	if (st->sender_lazy) {
		memcpy(st->root, lazy_root, 32);
		st->sender_ratchet = lazy_kp;
		st->sender_lazy = 0;
	}
	memcpy(st->sender_ck, next, 32);
	st->sender_index++;
	*out_len = total;
	*type = st->has_pending ? PARLEY_SIGNAL_MSG_PREKEY : PARLEY_SIGNAL_MSG_WHISPER;
out:
	crypto__wipe(seed, sizeof(seed));
	crypto__wipe(next, sizeof(next));
	crypto__wipe(ck, sizeof(ck));
	crypto__wipe(lazy_root, sizeof(lazy_root));
	crypto__keypair_wipe(&lazy_kp);
	crypto__wipe(&k, sizeof(k));
	return rc;
}

/* ---------------------------------------------------------------- decrypt */

static int find_chain(const sig_state *st, const uint8_t pub[CRYPTO_KEY_LEN])
{
	for (uint32_t i = 0; i < st->n_recv; i++)
		if (memcmp(st->recv[i].ratchet_pub, pub, CRYPTO_KEY_LEN) == 0)
			return (int)i;
	return -1;
}

static void chain_clear(sig_chain *c)
{
	if (c->skipped != NULL) {
		crypto__wipe(c->skipped, (size_t)c->cap_skipped * sizeof(*c->skipped));
		parley__free(c->skipped);
	}
	crypto__wipe(c, sizeof(*c));
}

void sig__state_clear(sig_state *st)
{
	for (uint32_t i = 0; i < st->n_recv; i++)
		chain_clear(&st->recv[i]);
	crypto__wipe(st, sizeof(*st));
}

/* Ensure room for `more` skipped keys after dropping the oldest beyond the limit: the capacity never
 * needs to exceed the limit, so allocate min(n + more, limit) once. Done before any commit so that a
 * failed allocation leaves the state untouched. */
static int chain_reserve(sig_chain *c, uint32_t more)
{
	uint64_t want = (uint64_t)c->n_skipped + more;
	sig_skipped *p;

	if (want > PARLEY_SIGNAL_MAX_MESSAGE_KEYS)
		want = PARLEY_SIGNAL_MAX_MESSAGE_KEYS;
	if (want <= c->cap_skipped)
		return PARLEY_OK;
	p = parley__malloc((size_t)want * sizeof(*p));
	if (p == NULL)
		return PARLEY_E_NOMEM;
	if (c->n_skipped > 0)
		memcpy(p, c->skipped, (size_t)c->n_skipped * sizeof(*p));
	if (c->skipped != NULL) {
		crypto__wipe(c->skipped, (size_t)c->cap_skipped * sizeof(*p));
		parley__free(c->skipped);
	}
	c->skipped = p;
	c->cap_skipped = (uint32_t)want;
	return PARLEY_OK;
}

/* Append the seeds of indexes [from, from + count) (already computed, oldest first), keeping only the
 * newest PARLEY_SIGNAL_MAX_MESSAGE_KEYS overall. Capacity was reserved by chain_reserve. */
static void chain_add_skipped(sig_chain *c, const sig_skipped *add, uint32_t count)
{
	uint32_t limit = PARLEY_SIGNAL_MAX_MESSAGE_KEYS;
	if (count == 0)
		return;
	if (count >= limit) {
		add += count - limit;
		count = limit;
	}
	if (c->n_skipped + count > limit) {
		uint32_t drop = c->n_skipped + count - limit;
		crypto__wipe(c->skipped, (size_t)drop * sizeof(*c->skipped));
		memmove(c->skipped, c->skipped + drop, (size_t)(c->n_skipped - drop) * sizeof(*c->skipped));
		c->n_skipped -= drop;
	}
	memcpy(c->skipped + c->n_skipped, add, (size_t)count * sizeof(*add));
	c->n_skipped += count;
}

static void chain_remove_skipped(sig_chain *c, uint32_t pos)
{
	crypto__wipe(&c->skipped[pos], sizeof(c->skipped[pos]));
	memmove(&c->skipped[pos], &c->skipped[pos + 1], (size_t)(c->n_skipped - pos - 1) * sizeof(*c->skipped));
	c->n_skipped--;
	crypto__wipe(&c->skipped[c->n_skipped], sizeof(c->skipped[c->n_skipped]));
}

/* Everything a decryption would change, computed without touching the state. */
typedef struct pending_step {
	int new_chain; /* DH ratchet step needed: their key is unknown */
	uint8_t root[32]; /* root after the receiving half of the step; the sending half stays lazy */
	sig_chain chain;  /* the new receiving chain (new_chain) */
	int from_skipped; /* message key came from the skipped store: remove entry skipped_pos */
	uint32_t skipped_pos;
	uint8_t next_ck[32]; /* receiving chain key after the message */
	sig_skipped *gap; /* seeds for the skipped indexes (only the newest MAX_MESSAGE_KEYS) */
	uint32_t gap_n;
} pending_step;

static void pending_clear(pending_step *p)
{
	if (p->gap != NULL) {
		crypto__wipe(p->gap, (size_t)p->gap_n * sizeof(*p->gap));
		parley__free(p->gap);
	}
	chain_clear(&p->chain);
	crypto__wipe(p, sizeof(*p));
}

/* Walk chain c forward to `counter`, recording the seeds skipped on the way (the newest
 * MAX_MESSAGE_KEYS of them) and producing the message seed and the next chain key. */
static int walk_chain(const sig_chain *c, uint32_t counter, pending_step *p, uint8_t seed[32])
{
	uint8_t ck[32], next[32];
	uint32_t jump = counter - c->index, keep, first_kept;

	if (jump > PARLEY_SIGNAL_MAX_FORWARD_JUMPS)
		return PARLEY_E_TOO_FAR_AHEAD;
	keep = jump < PARLEY_SIGNAL_MAX_MESSAGE_KEYS ? jump : PARLEY_SIGNAL_MAX_MESSAGE_KEYS;
	first_kept = counter - keep;
	if (keep > 0) {
		p->gap = parley__malloc((size_t)keep * sizeof(*p->gap));
		if (p->gap == NULL)
			return PARLEY_E_NOMEM;
	}
	memcpy(ck, c->ck, 32);
	for (uint32_t i = c->index; i < counter; i++) {
		if (i >= first_kept) {
			sig_skipped *s = &p->gap[p->gap_n++];
			s->index = i;
			sig__chain_step(ck, s->seed, next);
		} else {
			sig__chain_step(ck, NULL, next);
		}
		memcpy(ck, next, 32);
	}
	sig__chain_step(ck, seed, p->next_ck);
	crypto__wipe(ck, sizeof(ck));
	crypto__wipe(next, sizeof(next));
	return PARLEY_OK;
}

/* Could the peer have started a new receiving chain on st? Its DH ratchet turns only in answer to a
 * ratchet key of ours it has seen: our sending key once we sent with it (sender_index > 0), or, while we
 * never received on st, the signed prekey a responder's state starts with (n_recv == 0). After a
 * receive-side step (sender_lazy, or a version-1 record's sender_index == 0) we have not sent since, so
 * the peer's newest ratchet key is one we already know and an unknown one cannot be genuine. */
static int peer_may_step(const sig_state *st)
{
	return st->n_recv == 0 || (st->has_sender && !st->sender_lazy && st->sender_index > 0);
}

/* The limits, checked before any work is done, so that a message over them costs nothing (not even
 * the DH step an unknown ratchet key needs). An archived state (see sig__state_decrypt) allows a jump
 * of PARLEY_SIGNAL_MAX_ARCHIVED_JUMP only, and a new ratchet key only where the peer could have turned
 * its ratchet. The error is the one libsignal gives after the work. */
static int check_limits(const sig_state *st, const sig_msg *m, int idx, int archived)
{
	uint32_t from = idx < 0 ? 0 : st->recv[idx].index;
	uint32_t max = archived ? PARLEY_SIGNAL_MAX_ARCHIVED_JUMP : PARLEY_SIGNAL_MAX_FORWARD_JUMPS;

	if (archived && idx < 0 && !peer_may_step(st))
		return PARLEY_E_BAD_MAC; /* could not have verified: no genuine message looks like this */
	if (m->counter > from && m->counter - from > max)
		return PARLEY_E_TOO_FAR_AHEAD;
	return PARLEY_OK;
}

static int prepare(const sig_state *st, const sig_msg *m, int archived, pending_step *p, uint8_t seed[32])
{
	const sig_chain *c;
	int idx = find_chain(st, m->ratchet_key);
	int rc = check_limits(st, m, idx, archived);

	if (rc != PARLEY_OK)
		return rc;
	if (idx < 0) {
		/* Only the receiving half of libsignal's DH step (root step with our current ratchet key);
		 * the new sending chain is derived by the next encrypt. If our sending chain is itself still
		 * lazy, derive it here first, exactly as libsignal would have at the previous step: the peer
		 * cannot know a ratchet key we never sent, so such a message fails its MAC either way, but
		 * it fails at the same point and with the same error as in libsignal. */
		crypto_keypair ours;
		uint8_t root[32], unused_ck[32];
		p->new_chain = 1;
		if (st->sender_lazy) {
			rc = lazy_sender_derive(st, &ours, root, unused_ck);
		} else {
			ours = st->sender_ratchet;
			memcpy(root, st->root, 32);
			rc = PARLEY_OK;
		}
		if (rc == PARLEY_OK)
			rc = sig__root_step(root, m->ratchet_key, ours.priv, p->root, p->chain.ck);
		crypto__keypair_wipe(&ours);
		crypto__wipe(root, sizeof(root));
		crypto__wipe(unused_ck, sizeof(unused_ck));
		if (rc != PARLEY_OK)
			return rc;
		memcpy(p->chain.ratchet_pub, m->ratchet_key, 32);
		p->chain.index = 0;
		c = &p->chain;
	} else {
		c = &st->recv[idx];
	}
	if (m->counter < c->index) {
		/* an old message: only a stored skipped key can decrypt it, and only once */
		for (uint32_t k = 0; k < c->n_skipped; k++) {
			uint32_t i = c->n_skipped - 1 - k; /* newest first: late messages are usually recent */
			if (c->skipped[i].index == m->counter) {
				memcpy(seed, c->skipped[i].seed, 32);
				p->from_skipped = 1;
				p->skipped_pos = i;
				return PARLEY_OK;
			}
		}
		return PARLEY_E_DUPLICATE_MESSAGE;
	}
	return walk_chain(c, m->counter, p, seed);
}

static void commit(sig_state *st, pending_step *p, const sig_msg *m)
{
	sig_chain *c;
	int idx;

	if (p->new_chain) {
		memcpy(st->root, p->root, 32);
		if (st->n_recv == PARLEY_SIGNAL_MAX_RECEIVER_CHAINS) {
			chain_clear(&st->recv[0]);
			memmove(&st->recv[0], &st->recv[1], (st->n_recv - 1) * sizeof(st->recv[0]));
			st->n_recv--;
		}
		st->recv[st->n_recv++] = p->chain;
		memset(&p->chain, 0, sizeof(p->chain)); /* moved: the state owns its skipped array now */
		st->previous_counter = st->sender_index > 0 ? st->sender_index - 1 : 0;
		/* the old sending ratchet pair and chain are done with: wipe them, derive anew on send */
		crypto__keypair_wipe(&st->sender_ratchet);
		crypto__wipe(st->sender_ck, sizeof(st->sender_ck));
		st->sender_index = 0;
		st->sender_lazy = 1;
	}
	idx = find_chain(st, m->ratchet_key);
	c = &st->recv[idx];
	if (p->from_skipped) {
		chain_remove_skipped(c, p->skipped_pos);
	} else {
		chain_add_skipped(c, p->gap, p->gap_n);
		memcpy(c->ck, p->next_ck, 32);
		c->index = m->counter + 1;
	}
	st->has_pending = 0; /* the peer answered: stop sending PreKeySignalMessages */
}

int sig__state_decrypt(sig_state *st, const sig_msg *m, int archived, uint8_t *out, size_t cap, size_t *out_len)
{
	pending_step p;
	uint8_t seed[32], mac[SIG_MAC_LEN];
	sig_msg_keys k;
	int rc;

	memset(&p, 0, sizeof(p));
	if (!st->has_sender)
		return PARLEY_E_INVALID_MESSAGE;
	if (m->version != st->version)
		return PARLEY_E_BAD_VERSION;
	rc = prepare(st, m, archived, &p, seed);
	if (rc != PARLEY_OK)
		goto out;
	rc = sig__message_keys(&k, seed);
	if (rc != PARLEY_OK)
		goto out;
	/* the sender MACed with (its identity, ours): here sender = remote */
	sig__msg_mac(mac, k.mac, st->remote_ik, st->local_ik, m->serialized, m->serialized_len - SIG_MAC_LEN);
	if (!crypto__ct_equal(mac, m->serialized + m->serialized_len - SIG_MAC_LEN, SIG_MAC_LEN)) {
		rc = PARLEY_E_BAD_MAC;
		goto out;
	}
	rc = crypto__aes256_cbc_decrypt(k.cipher, k.iv, m->ciphertext, m->ciphertext_len, out, cap, out_len);
	if (rc != PARLEY_OK)
		goto out;
	/* reserve before committing so the commit itself cannot fail */
	if (!p.from_skipped) {
		sig_chain *target = p.new_chain ? &p.chain : &st->recv[find_chain(st, m->ratchet_key)];
		rc = chain_reserve(target, p.gap_n);
		if (rc != PARLEY_OK) {
			crypto__wipe(out, *out_len);
			goto out;
		}
	}
	commit(st, &p, m);
out:
	crypto__wipe(seed, sizeof(seed));
	crypto__wipe(&k, sizeof(k));
	pending_clear(&p);
	return rc;
}
