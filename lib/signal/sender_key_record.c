/* Sender key record: up to 5 states (newest first), each a hash chain, a signing key and a bounded list
 * of skipped message keys; plus the record's storage serialisation. Mirrors libsignal's sender_keys.rs.
 *
 * Storage format (ours, not libsignal's protobuf: records never leave the device), all integers
 * big-endian:
 *   "PSKR" u8 format(=1) u8 nstates(<=5)
 *   per state: u8 version, u32 chain_id, u32 iteration, chain_key[32], signing_pub[33],
 *              u8 has_priv, [signing_priv[32] if has_priv], u16 nkeys(<=2000),
 *              nkeys * (u32 iteration, seed[32])
 * The decoder checks every count against its bound before allocating and refuses trailing bytes.
 */
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "crypto/crypto.h"
#include "signal/sender_key.h"

#define REC_MAGIC "PSKR"
#define REC_FORMAT 1
#define KEY_WIRE_LEN (4 + 32)
#define STATE_FIXED_LEN (1 + 4 + 4 + SK_CHAIN_KEY_LEN + PARLEY_SIGNAL_PUBKEY_LEN + 1 + 2)

static const uint8_t GROUP_INFO[] = "WhisperGroup";

void sender_key__record_init(sk_record *r)
{
	memset(r, 0, sizeof *r);
}

static void state_clear(sk_state *s)
{
	if (s->keys != NULL) {
		crypto__wipe(s->keys, s->keys_cap * sizeof *s->keys);
		parley__free(s->keys);
	}
	crypto__wipe(s, sizeof *s);
}

void sender_key__record_clear(sk_record *r)
{
	for (size_t i = 0; i < r->nstates; i++)
		state_clear(&r->states[i]);
	r->nstates = 0;
}

sk_state *sender_key__record_find(sk_record *r, uint32_t chain_id)
{
	for (size_t i = 0; i < r->nstates; i++)
		if (r->states[i].chain_id == chain_id)
			return &r->states[i];
	return NULL;
}

static void remove_at(sk_record *r, size_t i, int clear)
{
	if (clear)
		state_clear(&r->states[i]);
	memmove(&r->states[i], &r->states[i + 1], (r->nstates - i - 1) * sizeof r->states[0]);
	r->nstates--;
	memset(&r->states[r->nstates], 0, sizeof r->states[0]);
}

int sender_key__record_add_state(sk_record *r, uint8_t version, uint32_t chain_id, uint32_t iteration,
	const uint8_t chain_key[SK_CHAIN_KEY_LEN], const uint8_t signing_pub[PARLEY_SIGNAL_PUBKEY_LEN],
	const uint8_t *signing_priv)
{
	sk_state st;
	int found = 0;

	/* Re-processing a key we already hold must not rewind it (that would re-enable decrypting
	 * old iterations twice): keep the existing state, only move it to the front. */
	for (size_t i = 0; i < r->nstates; i++) {
		if (r->states[i].chain_id == chain_id &&
			memcmp(r->states[i].signing_pub, signing_pub, PARLEY_SIGNAL_PUBKEY_LEN) == 0) {
			st = r->states[i];
			remove_at(r, i, 0);
			found = 1;
			break;
		}
	}
	/* Same chain id under a different signing key: the old state is replaced. */
	for (size_t i = 0; i < r->nstates;) {
		if (r->states[i].chain_id == chain_id)
			remove_at(r, i, 1);
		else
			i++;
	}
	if (!found) {
		memset(&st, 0, sizeof st);
		st.version = version;
		st.chain_id = chain_id;
		st.iteration = iteration;
		memcpy(st.chain_key, chain_key, SK_CHAIN_KEY_LEN);
		memcpy(st.signing_pub, signing_pub, PARLEY_SIGNAL_PUBKEY_LEN);
		if (signing_priv != NULL) {
			st.has_priv = 1;
			memcpy(st.signing_priv, signing_priv, 32);
		}
	}
	while (r->nstates >= SK_MAX_STATES)
		remove_at(r, r->nstates - 1, 1);
	memmove(&r->states[1], &r->states[0], r->nstates * sizeof r->states[0]);
	r->states[0] = st;
	r->nstates++;
	crypto__wipe(&st, sizeof st);
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- chain */

static void chain_seed(uint8_t seed[32], const uint8_t ck[SK_CHAIN_KEY_LEN])
{
	static const uint8_t one = 0x01;
	crypto__hmac_sha256(seed, ck, SK_CHAIN_KEY_LEN, &one, 1);
}

static void chain_next(uint8_t ck[SK_CHAIN_KEY_LEN])
{
	static const uint8_t two = 0x02;
	uint8_t next[32];
	crypto__hmac_sha256(next, ck, SK_CHAIN_KEY_LEN, &two, 1);
	memcpy(ck, next, 32);
	crypto__wipe(next, sizeof next);
}

/* HKDF(seed, "WhisperGroup") -> iv || cipher key: the reverse of the 1:1 ratchet's order. */
static int derive(sk_keys *out, uint32_t iteration, const uint8_t seed[32])
{
	uint8_t okm[48];
	int rc = crypto__hkdf_sha256(okm, sizeof okm, NULL, 0, seed, 32, GROUP_INFO, sizeof GROUP_INFO - 1);
	if (rc == PARLEY_OK) {
		out->iteration = iteration;
		memcpy(out->iv, okm, 16);
		memcpy(out->cipher_key, okm + 16, 32);
	}
	crypto__wipe(okm, sizeof okm);
	return rc;
}

int sender_key__state_next_keys(sk_state *s, sk_keys *out)
{
	uint8_t seed[32];
	int rc;

	if (s->iteration == UINT32_MAX)
		return PARLEY_E_STATE; /* chain exhausted: libsignal would overflow here */
	chain_seed(seed, s->chain_key);
	rc = derive(out, s->iteration, seed);
	crypto__wipe(seed, sizeof seed);
	if (rc != PARLEY_OK)
		return rc;
	chain_next(s->chain_key);
	s->iteration++;
	return PARLEY_OK;
}

static int reserve_keys(sk_state *s, size_t want)
{
	sk_msg_key *n;
	if (want <= s->keys_cap)
		return PARLEY_OK;
	/* Grow by copying into a fresh block so the old one can be wiped (realloc would leave seeds). */
	size_t cap = s->keys_cap ? s->keys_cap : 16;
	while (cap < want)
		cap *= 2;
	n = parley__calloc(cap, sizeof *n);
	if (n == NULL)
		return PARLEY_E_NOMEM;
	if (s->keys != NULL) {
		memcpy(n, s->keys, s->nkeys * sizeof *n);
		crypto__wipe(s->keys, s->keys_cap * sizeof *n);
		parley__free(s->keys);
	}
	s->keys = n;
	s->keys_cap = cap;
	return PARLEY_OK;
}

int sender_key__state_keys_for(sk_state *s, uint32_t iteration, sk_keys *out)
{
	uint8_t seed[32];
	uint32_t jump, keep_from;
	int rc;

	if (s->iteration > iteration) {
		for (size_t i = 0; i < s->nkeys; i++) {
			if (s->keys[i].iteration != iteration)
				continue;
			rc = derive(out, iteration, s->keys[i].seed);
			memmove(&s->keys[i], &s->keys[i + 1], (s->nkeys - i - 1) * sizeof s->keys[0]);
			s->nkeys--;
			crypto__wipe(&s->keys[s->nkeys], sizeof s->keys[0]);
			return rc;
		}
		return PARLEY_E_DUPLICATE_MESSAGE;
	}
	jump = iteration - s->iteration;
	if (jump > SK_MAX_FORWARD_JUMPS)
		return PARLEY_E_TOO_FAR_AHEAD;
	if (iteration == UINT32_MAX)
		return PARLEY_E_INVALID_MESSAGE; /* the chain could not advance past it */

	/* Only the newest SK_MAX_MESSAGE_KEYS skipped keys survive; don't store ones that would be
	 * dropped straight away. */
	keep_from = jump > SK_MAX_MESSAGE_KEYS ? iteration - SK_MAX_MESSAGE_KEYS : s->iteration;
	rc = reserve_keys(s, s->nkeys + (iteration - keep_from));
	if (rc != PARLEY_OK)
		return rc;
	while (s->iteration < iteration) {
		if (s->iteration >= keep_from) {
			sk_msg_key *k = &s->keys[s->nkeys++];
			k->iteration = s->iteration;
			chain_seed(k->seed, s->chain_key);
		}
		chain_next(s->chain_key);
		s->iteration++;
	}
	if (s->nkeys > SK_MAX_MESSAGE_KEYS) {
		size_t drop = s->nkeys - SK_MAX_MESSAGE_KEYS;
		crypto__wipe(s->keys, drop * sizeof s->keys[0]);
		memmove(s->keys, s->keys + drop, SK_MAX_MESSAGE_KEYS * sizeof s->keys[0]);
		crypto__wipe(s->keys + SK_MAX_MESSAGE_KEYS, drop * sizeof s->keys[0]);
		s->nkeys = SK_MAX_MESSAGE_KEYS;
	}
	chain_seed(seed, s->chain_key);
	rc = derive(out, iteration, seed);
	crypto__wipe(seed, sizeof seed);
	if (rc != PARLEY_OK)
		return rc;
	chain_next(s->chain_key);
	s->iteration++;
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- storage codec */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int sender_key__record_encode(const sk_record *r, uint8_t **out, size_t *out_len)
{
	size_t len = 6, n = 0;
	uint8_t *b;

	for (size_t i = 0; i < r->nstates; i++)
		len += STATE_FIXED_LEN + (r->states[i].has_priv ? 32 : 0) + r->states[i].nkeys * KEY_WIRE_LEN;
	b = parley__malloc(len);
	if (b == NULL)
		return PARLEY_E_NOMEM;
	memcpy(b, REC_MAGIC, 4);
	b[4] = REC_FORMAT;
	b[5] = (uint8_t)r->nstates;
	n = 6;
	for (size_t i = 0; i < r->nstates; i++) {
		const sk_state *s = &r->states[i];
		b[n++] = s->version;
		put32(b + n, s->chain_id);
		put32(b + n + 4, s->iteration);
		n += 8;
		memcpy(b + n, s->chain_key, SK_CHAIN_KEY_LEN);
		n += SK_CHAIN_KEY_LEN;
		memcpy(b + n, s->signing_pub, PARLEY_SIGNAL_PUBKEY_LEN);
		n += PARLEY_SIGNAL_PUBKEY_LEN;
		b[n++] = (uint8_t)(s->has_priv ? 1 : 0);
		if (s->has_priv) {
			memcpy(b + n, s->signing_priv, 32);
			n += 32;
		}
		b[n++] = (uint8_t)(s->nkeys >> 8);
		b[n++] = (uint8_t)s->nkeys;
		for (size_t k = 0; k < s->nkeys; k++) {
			put32(b + n, s->keys[k].iteration);
			memcpy(b + n + 4, s->keys[k].seed, 32);
			n += KEY_WIRE_LEN;
		}
	}
	*out = b;
	*out_len = n;
	return PARLEY_OK;
}

static int decode_state(sk_state *s, const uint8_t *b, size_t len, size_t *pos)
{
	size_t n = *pos, nkeys;

	if (len - n < STATE_FIXED_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	s->version = b[n++];
	s->chain_id = get32(b + n);
	s->iteration = get32(b + n + 4);
	n += 8;
	memcpy(s->chain_key, b + n, SK_CHAIN_KEY_LEN);
	n += SK_CHAIN_KEY_LEN;
	memcpy(s->signing_pub, b + n, PARLEY_SIGNAL_PUBKEY_LEN);
	n += PARLEY_SIGNAL_PUBKEY_LEN;
	if (s->signing_pub[0] != CRYPTO_SIGNAL_KEY_TYPE || b[n] > 1)
		return PARLEY_E_INVALID_MESSAGE;
	s->has_priv = b[n++];
	if (s->has_priv) {
		if (len - n < 32 + 2)
			return PARLEY_E_INVALID_MESSAGE;
		memcpy(s->signing_priv, b + n, 32);
		n += 32;
	}
	nkeys = (size_t)b[n] << 8 | b[n + 1];
	n += 2;
	if (nkeys > SK_MAX_MESSAGE_KEYS || (len - n) / KEY_WIRE_LEN < nkeys)
		return PARLEY_E_INVALID_MESSAGE;
	if (nkeys > 0 && reserve_keys(s, nkeys) != PARLEY_OK)
		return PARLEY_E_NOMEM;
	for (size_t k = 0; k < nkeys; k++) {
		s->keys[k].iteration = get32(b + n);
		memcpy(s->keys[k].seed, b + n + 4, 32);
		n += KEY_WIRE_LEN;
	}
	s->nkeys = nkeys;
	*pos = n;
	return PARLEY_OK;
}

int sender_key__record_decode(sk_record *r, const uint8_t *buf, size_t len)
{
	size_t pos = 6, nstates;
	int rc = PARLEY_OK;

	sender_key__record_init(r);
	if (buf == NULL || len < 6 || memcmp(buf, REC_MAGIC, 4) != 0 || buf[4] != REC_FORMAT)
		return PARLEY_E_INVALID_MESSAGE;
	nstates = buf[5];
	if (nstates > SK_MAX_STATES)
		return PARLEY_E_INVALID_MESSAGE;
	for (size_t i = 0; i < nstates; i++) {
		r->nstates = i + 1; /* so that clear() frees a partly decoded state too */
		rc = decode_state(&r->states[i], buf, len, &pos);
		if (rc != PARLEY_OK)
			goto out;
	}
	if (pos != len)
		rc = PARLEY_E_INVALID_MESSAGE;
out:
	if (rc != PARLEY_OK)
		sender_key__record_clear(r);
	return rc;
}
