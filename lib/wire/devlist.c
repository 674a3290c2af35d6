/* Signed device list codec (devlist.h). Parsing is a single bounded walk; the signature is checked last
 * because it is the expensive step and a malformed record must be refused cheaply. */
#include "wire/devlist.h"

#include <string.h>

#include <parley/error.h>

#include "crypto/crypto.h"

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The structural rules shared by sign and verify (the signer refuses what a verifier would refuse). */
static int check_fields(const wire_devlist *l)
{
	if (l->version < 1 || l->n < 1 || l->n > WIRE_DEVLIST_MAX)
		return PARLEY_E_DEVICE_LIST_INVALID;
	if (memchr(l->handle, '\0', sizeof(l->handle)) == NULL || !wire__handle_valid(l->handle))
		return PARLEY_E_DEVICE_LIST_INVALID;
	if (l->account_key[0] != CRYPTO_SIGNAL_KEY_TYPE)
		return PARLEY_E_DEVICE_LIST_INVALID;
	for (size_t i = 0; i < l->n; i++) {
		if (l->dev[i].identity_key[0] != CRYPTO_SIGNAL_KEY_TYPE)
			return PARLEY_E_DEVICE_LIST_INVALID;
		if (i > 0 && l->dev[i].device_id <= l->dev[i - 1].device_id)
			return PARLEY_E_DEVICE_LIST_INVALID;
	}
	return PARLEY_OK;
}

int wire__devlist_sign(const wire_devlist *l, const uint8_t ak_priv[32], dynbuf *out)
{
	if (l == NULL || ak_priv == NULL || out == NULL)
		return PARLEY_E_INVAL;
	int rc = check_fields(l);
	if (rc != PARLEY_OK)
		return rc;
	crypto_keypair kp;
	rc = crypto__keypair_from_private(&kp, ak_priv);
	if (rc != PARLEY_OK)
		return rc;
	int same = crypto__ct_equal(kp.pub, l->account_key + 1, CRYPTO_KEY_LEN);
	crypto__keypair_wipe(&kp);
	if (!same)
		return PARLEY_E_INVALID_KEY;

	uint8_t rec[WIRE_DEVLIST_MAX_BYTES];
	size_t hl = strlen(l->handle), o = 0;
	memcpy(rec, WIRE_DEVLIST_MAGIC, WIRE_DEVLIST_MAGIC_LEN);
	o += WIRE_DEVLIST_MAGIC_LEN;
	put_u64(rec + o, l->account_id);
	o += 8;
	rec[o++] = (uint8_t)hl;
	memcpy(rec + o, l->handle, hl);
	o += hl;
	memcpy(rec + o, l->account_key, 33);
	o += 33;
	put_u64(rec + o, l->version);
	o += 8;
	put_u64(rec + o, l->timestamp_ms);
	o += 8;
	rec[o++] = (uint8_t)l->n;
	for (size_t i = 0; i < l->n; i++) {
		put_u32(rec + o, l->dev[i].device_id);
		memcpy(rec + o + 4, l->dev[i].identity_key, 33);
		memcpy(rec + o + 37, l->dev[i].device_key, 32);
		o += WIRE_DEVLIST_ENTRY_LEN;
	}
	rc = crypto__xeddsa_sign(rec + o, ak_priv, rec, o);
	if (rc != PARLEY_OK)
		return rc;
	o += CRYPTO_SIG_LEN;
	return dynbuf__append(out, rec, o);
}

static int parse(const uint8_t *b, size_t len, wire_devlist *l)
{
	/* fixed part: magic, id, handle_len, (handle), ak, version, timestamp, n; then entries, signature */
	const size_t fixed = WIRE_DEVLIST_MAGIC_LEN + 8 + 1 + 33 + 8 + 8 + 1 + CRYPTO_SIG_LEN;
	if (b == NULL || len < fixed + WIRE_MIN_HANDLE + WIRE_DEVLIST_ENTRY_LEN || len > WIRE_DEVLIST_MAX_BYTES)
		return PARLEY_E_DEVICE_LIST_INVALID;
	if (memcmp(b, WIRE_DEVLIST_MAGIC, WIRE_DEVLIST_MAGIC_LEN) != 0)
		return PARLEY_E_DEVICE_LIST_INVALID;
	size_t o = WIRE_DEVLIST_MAGIC_LEN;
	l->account_id = get_u64(b + o);
	o += 8;
	size_t hl = b[o++];
	if (hl < WIRE_MIN_HANDLE || hl > WIRE_MAX_HANDLE || len < fixed + hl)
		return PARLEY_E_DEVICE_LIST_INVALID;
	memcpy(l->handle, b + o, hl);
	l->handle[hl] = '\0';
	o += hl;
	memcpy(l->account_key, b + o, 33);
	o += 33;
	l->version = get_u64(b + o);
	o += 8;
	l->timestamp_ms = get_u64(b + o);
	o += 8;
	l->n = b[o++];
	/* the exact length follows from n: no trailing bytes, nothing missing */
	if (l->n < 1 || l->n > WIRE_DEVLIST_MAX || len != fixed + hl + l->n * WIRE_DEVLIST_ENTRY_LEN)
		return PARLEY_E_DEVICE_LIST_INVALID;
	for (size_t i = 0; i < l->n; i++) {
		l->dev[i].device_id = get_u32(b + o);
		memcpy(l->dev[i].identity_key, b + o + 4, 33);
		memcpy(l->dev[i].device_key, b + o + 37, 32);
		o += WIRE_DEVLIST_ENTRY_LEN;
	}
	int rc = check_fields(l);
	if (rc != PARLEY_OK)
		return rc;
	uint8_t pub[CRYPTO_KEY_LEN];
	if (crypto__pubkey_parse(pub, l->account_key, 33) != PARLEY_OK)
		return PARLEY_E_DEVICE_LIST_INVALID;
	if (crypto__xeddsa_verify(pub, b, o, b + o) != PARLEY_OK)
		return PARLEY_E_DEVICE_LIST_INVALID;
	return PARLEY_OK;
}

int wire__devlist_verify(const uint8_t *buf, size_t len, wire_devlist *out)
{
	if (out == NULL)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out)); /* padding and unused entries too: lists compare with memcmp */
	int rc = parse(buf, len, out);
	if (rc != PARLEY_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

const wire_devlist_entry *wire__devlist_find(const wire_devlist *l, uint32_t device_id)
{
	if (l == NULL)
		return NULL;
	size_t lo = 0, hi = l->n < WIRE_DEVLIST_MAX ? l->n : WIRE_DEVLIST_MAX;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->dev[mid].device_id == device_id)
			return &l->dev[mid];
		if (l->dev[mid].device_id < device_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
