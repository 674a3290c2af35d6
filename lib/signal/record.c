/* Session records: the current state plus archived ones, and their storage form.
 *
 * Storage form (all integers little-endian), version 2:
 *   "PSR" 0x02 | u8 has_current | u8 n_states | state*
 *   state: u8 version | u8 flags | local_ik[33] | remote_ik[33] | u32 local_reg | u32 remote_reg |
 *          root[32] | [sender_pub[32] sender_priv[32] sender_ck[32] u32 sender_index] |
 *          u32 previous_counter | [u32 prekey_id u32 spk_id base[32]] | [alice_base[32]] |
 *          u8 n_recv | chain*
 *   chain: pub[32] | ck[32] | u32 index | u16 n_skipped | (u32 index, seed[32])*
 * flags: 0x01 sender, 0x02 pending X3DH, 0x04 pending has a one-time prekey, 0x08 Alice's base key,
 * 0x10 lazy sending chain (state.h): then the sender block is absent (the sending index is 0), and
 * 0x01 must be set and n_recv >= 1.
 * Version 1 is the same without flag 0x10 (no lazy chains); it is still read, and written back
 * unchanged while it needs no lazy chain (state.h, sig__record_encode).
 * Every count is checked against its protocol limit before anything is allocated.
 */
#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "common/alloc.h"
#include "signal/message.h"
#include "signal/state.h"

#define REC_MAGIC "PSR"
#define REC_V1 0x01
#define REC_V2 0x02
#define F_SENDER 0x01
#define F_PENDING 0x02
#define F_PENDING_PREKEY 0x04
#define F_ALICE_BASE 0x08
#define F_SENDER_LAZY 0x10 /* version 2 */
#define F_ALL_V1 0x0F
#define F_ALL_V2 0x1F

void sig__record_init(sig_record *r)
{
	memset(r, 0, sizeof(*r));
}

void sig__record_free(sig_record *r)
{
	for (uint32_t i = 0; i < r->n_states; i++)
		sig__state_clear(&r->states[i]);
	parley__free(r->states);
	memset(r, 0, sizeof(*r));
}

static int ensure_cap(sig_record *r, uint32_t n)
{
	sig_state *p;
	if (n <= r->cap_states)
		return PARLEY_OK;
	p = parley__calloc(n, sizeof(*p));
	if (p == NULL)
		return PARLEY_E_NOMEM;
	if (r->n_states > 0)
		memcpy(p, r->states, (size_t)r->n_states * sizeof(*p));
	if (r->states != NULL) {
		crypto__wipe(r->states, (size_t)r->cap_states * sizeof(*p));
		parley__free(r->states);
	}
	r->states = p;
	r->cap_states = n;
	return PARLEY_OK;
}

int sig__record_promote_new(sig_record *r, sig_state *st)
{
	uint32_t limit = 1 + PARLEY_SIGNAL_MAX_ARCHIVED_STATES;
	int rc = ensure_cap(r, r->n_states + 1 < limit ? r->n_states + 1 : limit);
	if (rc != PARLEY_OK)
		return rc;
	/* the old current state (if any) becomes the newest archived one; the oldest beyond the limit go */
	if (r->n_states == limit) {
		sig__state_clear(&r->states[r->n_states - 1]);
		r->n_states--;
	}
	memmove(&r->states[1], &r->states[0], (size_t)r->n_states * sizeof(r->states[0]));
	r->states[0] = *st;
	memset(st, 0, sizeof(*st));
	r->n_states++;
	r->has_current = 1;
	return PARLEY_OK;
}

void sig__record_promote(sig_record *r, uint32_t i)
{
	sig_state tmp;
	if (i == 0 && r->has_current)
		return;
	tmp = r->states[i];
	memmove(&r->states[1], &r->states[0], (size_t)i * sizeof(r->states[0]));
	r->states[0] = tmp;
	crypto__wipe(&tmp, sizeof(tmp));
	r->has_current = 1;
}

/* ---------------------------------------------------------------- encode */

/* Append to the record being encoded. The buffer holds root and chain keys, so it never grows with
 * realloc (which may leave the old block's bytes in freed heap): a bigger block is allocated, the
 * bytes copied, the old block wiped and freed (security item 9). Doubling keeps it amortised. */
static int put(dynbuf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return PARLEY_E_TOO_LARGE;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap > 0 ? b->cap : 256;
		uint8_t *nd;
		while (ncap < b->len + n)
			ncap = ncap > b->max / 2 ? b->max : ncap * 2;
		nd = parley__malloc(ncap);
		if (nd == NULL)
			return PARLEY_E_NOMEM;
		if (b->data != NULL) {
			memcpy(nd, b->data, b->len);
			crypto__wipe(b->data, b->cap);
			parley__free(b->data);
		}
		b->data = nd;
		b->cap = ncap;
	}
	return dynbuf__append(b, p, n);
}

static int put_u32(dynbuf *b, uint32_t v)
{
	uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	return put(b, t, 4);
}

static int encode_state(const sig_state *s, dynbuf *b)
{
	uint8_t hdr[2];
	int rc = 0;

	hdr[0] = s->version;
	hdr[1] = (uint8_t)((s->has_sender ? F_SENDER : 0) | (s->has_pending ? F_PENDING : 0) |
			   (s->pending_has_prekey ? F_PENDING_PREKEY : 0) | (s->has_alice_base ? F_ALICE_BASE : 0) |
			   (s->sender_lazy ? F_SENDER_LAZY : 0));
	rc |= put(b, hdr, 2);
	rc |= put(b, s->local_ik, sizeof(s->local_ik));
	rc |= put(b, s->remote_ik, sizeof(s->remote_ik));
	rc |= put_u32(b, s->local_reg);
	rc |= put_u32(b, s->remote_reg);
	rc |= put(b, s->root, 32);
	if (s->has_sender && !s->sender_lazy) {
		rc |= put(b, s->sender_ratchet.pub, 32);
		rc |= put(b, s->sender_ratchet.priv, 32);
		rc |= put(b, s->sender_ck, 32);
		rc |= put_u32(b, s->sender_index);
	}
	rc |= put_u32(b, s->previous_counter);
	if (s->has_pending) {
		rc |= put_u32(b, s->pending_prekey_id);
		rc |= put_u32(b, s->pending_spk_id);
		rc |= put(b, s->pending_base, 32);
	}
	if (s->has_alice_base)
		rc |= put(b, s->alice_base, 32);
	rc |= put(b, &(uint8_t){(uint8_t)s->n_recv}, 1);
	for (uint32_t i = 0; i < s->n_recv; i++) {
		const sig_chain *c = &s->recv[i];
		uint8_t n2[2] = {(uint8_t)c->n_skipped, (uint8_t)(c->n_skipped >> 8)};
		rc |= put(b, c->ratchet_pub, 32);
		rc |= put(b, c->ck, 32);
		rc |= put_u32(b, c->index);
		rc |= put(b, n2, 2);
		for (uint32_t j = 0; j < c->n_skipped; j++) {
			rc |= put_u32(b, c->skipped[j].index);
			rc |= put(b, c->skipped[j].seed, 32);
		}
	}
	return rc != 0 ? PARLEY_E_NOMEM : PARLEY_OK;
}

int sig__record_encode(const sig_record *r, dynbuf *out)
{
	uint8_t hdr[6], version = r->format == REC_V1 ? REC_V1 : REC_V2;
	int rc;

	for (uint32_t i = 0; version == REC_V1 && i < r->n_states; i++)
		if (r->states[i].sender_lazy)
			version = REC_V2;
	memcpy(hdr, REC_MAGIC, 3);
	hdr[3] = version;
	hdr[4] = (uint8_t)(r->has_current ? 1 : 0);
	hdr[5] = (uint8_t)r->n_states;
	rc = put(out, hdr, sizeof(hdr));
	for (uint32_t i = 0; rc == PARLEY_OK && i < r->n_states; i++)
		rc = encode_state(&r->states[i], out);
	return rc;
}

/* ---------------------------------------------------------------- decode */

typedef struct rd {
	const uint8_t *p;
	size_t left;
	int err;
} rd;

static void get(rd *d, void *out, size_t n)
{
	if (d->err || n > d->left) {
		d->err = 1;
		memset(out, 0, n);
		return;
	}
	memcpy(out, d->p, n);
	d->p += n;
	d->left -= n;
}

static uint32_t get_u32(rd *d)
{
	uint8_t t[4];
	get(d, t, 4);
	return (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
}

static uint8_t get_u8(rd *d)
{
	uint8_t v;
	get(d, &v, 1);
	return v;
}

static int decode_chain(sig_chain *c, rd *d)
{
	uint8_t n2[2];
	uint32_t n;

	get(d, c->ratchet_pub, 32);
	get(d, c->ck, 32);
	c->index = get_u32(d);
	get(d, n2, 2);
	n = (uint32_t)n2[0] | (uint32_t)n2[1] << 8;
	/* bound the count by the protocol limit and by the bytes really present before allocating */
	if (d->err || n > PARLEY_SIGNAL_MAX_MESSAGE_KEYS || (size_t)n * 36 > d->left)
		return PARLEY_E_INVALID_MESSAGE;
	if (n > 0) {
		c->skipped = parley__malloc((size_t)n * sizeof(*c->skipped));
		if (c->skipped == NULL)
			return PARLEY_E_NOMEM;
		c->cap_skipped = n;
		for (uint32_t j = 0; j < n; j++) {
			c->skipped[j].index = get_u32(d);
			get(d, c->skipped[j].seed, 32);
		}
		c->n_skipped = n;
	}
	return d->err ? PARLEY_E_INVALID_MESSAGE : PARLEY_OK;
}

static int decode_state(sig_state *s, rd *d, uint8_t format)
{
	uint8_t flags, nrecv;
	int rc;

	s->version = get_u8(d);
	flags = get_u8(d);
	if (d->err || s->version != SIG_SESSION_VERSION || (flags & ~(format == REC_V1 ? F_ALL_V1 : F_ALL_V2)) != 0)
		return PARLEY_E_INVALID_MESSAGE;
	s->sender_lazy = (flags & F_SENDER_LAZY) != 0;
	if (s->sender_lazy && (flags & F_SENDER) == 0)
		return PARLEY_E_INVALID_MESSAGE;
	get(d, s->local_ik, sizeof(s->local_ik));
	get(d, s->remote_ik, sizeof(s->remote_ik));
	if (s->local_ik[0] != CRYPTO_SIGNAL_KEY_TYPE || s->remote_ik[0] != CRYPTO_SIGNAL_KEY_TYPE)
		d->err = 1;
	s->local_reg = get_u32(d);
	s->remote_reg = get_u32(d);
	get(d, s->root, 32);
	s->has_sender = (flags & F_SENDER) != 0;
	if (s->has_sender && !s->sender_lazy) {
		get(d, s->sender_ratchet.pub, 32);
		get(d, s->sender_ratchet.priv, 32);
		get(d, s->sender_ck, 32);
		s->sender_index = get_u32(d);
	}
	s->previous_counter = get_u32(d);
	s->has_pending = (flags & F_PENDING) != 0;
	s->pending_has_prekey = (flags & F_PENDING_PREKEY) != 0;
	if (s->has_pending) {
		s->pending_prekey_id = get_u32(d);
		s->pending_spk_id = get_u32(d);
		get(d, s->pending_base, 32);
	}
	s->has_alice_base = (flags & F_ALICE_BASE) != 0;
	if (s->has_alice_base)
		get(d, s->alice_base, 32);
	nrecv = get_u8(d);
	/* a lazy sending chain is derived against the newest receiving chain: there must be one */
	if (d->err || nrecv > PARLEY_SIGNAL_MAX_RECEIVER_CHAINS || (s->sender_lazy && nrecv == 0))
		return PARLEY_E_INVALID_MESSAGE;
	for (uint32_t i = 0; i < nrecv; i++) {
		/* count the chain in before decoding it so that sig__state_clear frees a half-decoded one */
		s->n_recv = i + 1;
		rc = decode_chain(&s->recv[i], d);
		if (rc != PARLEY_OK)
			return rc;
	}
	return PARLEY_OK;
}

int sig__record_decode(sig_record *r, const uint8_t *buf, size_t len)
{
	rd d = {buf, len, 0};
	uint8_t magic[4], has_current, n;
	int rc;

	sig__record_init(r);
	get(&d, magic, 4);
	has_current = get_u8(&d);
	n = get_u8(&d);
	if (d.err || memcmp(magic, REC_MAGIC, 3) != 0 || (magic[3] != REC_V1 && magic[3] != REC_V2) ||
	    has_current > 1 || n > 1 + PARLEY_SIGNAL_MAX_ARCHIVED_STATES || (has_current && n == 0))
		return PARLEY_E_INVALID_MESSAGE;
	if (n > 0) {
		rc = ensure_cap(r, n);
		if (rc != PARLEY_OK)
			return rc;
	}
	r->has_current = has_current;
	r->format = magic[3];
	for (uint32_t i = 0; i < n; i++) {
		r->n_states = i + 1;
		rc = decode_state(&r->states[i], &d, r->format);
		if (rc != PARLEY_OK)
			goto fail;
	}
	if (d.left != 0) {
		rc = PARLEY_E_INVALID_MESSAGE;
		goto fail;
	}
	return PARLEY_OK;
fail:
	sig__record_free(r);
	return rc;
}
