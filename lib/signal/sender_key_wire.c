/* SenderKeyMessage and SenderKeyDistributionMessage wire codecs (libsignal protocol.rs, v0.24.0).
 *
 *   SenderKeyMessage             = (3 << 4 | 3) || protobuf { 1 uuid, 2 chain_id, 3 iteration,
 *                                  4 ciphertext } || XEdDSA signature (64) over everything before it
 *   SenderKeyDistributionMessage = (3 << 4 | 3) || protobuf { 1 uuid, 2 chain_id, 3 iteration,
 *                                  4 chain_key (32), 5 signing_key (33) }           (no signature)
 *
 * The decoders accept exactly what libsignal accepts: fields in any order, unknown fields skipped,
 * the last occurrence of a field wins, every field required; the version is the high nibble only.
 */
#include <string.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "signal/pb.h"
#include "signal/sender_key.h"

#define SKDM_MIN_LEN (1 + 32 + 32) /* libsignal: "at least a X25519 key and a chain key" */

static int check_version(uint8_t first)
{
	return (first >> 4) == SK_VERSION ? PARLEY_OK : PARLEY_E_BAD_VERSION;
}

enum { HAVE_UUID = 1, HAVE_CHAIN = 2, HAVE_ITER = 4, HAVE_F4 = 8, HAVE_F5 = 16 };

/* Fields shared by both messages. Returns 1 if f was one of them and was consumed, 0 if not, or a
 * negative parley error. */
static int take_common(const pb_field *f, pb_field *uuid, uint32_t *chain_id, uint32_t *iteration,
	unsigned *have)
{
	switch (f->num) {
	case 1:
		/* length checked at the end: prost keeps the last occurrence, then Uuid::from_slice wants 16 */
		if (f->wire != PB_LEN)
			return -PARLEY_E_INVALID_MESSAGE;
		*uuid = *f;
		*have |= HAVE_UUID;
		return 1;
	case 2:
	case 3:
		if (f->wire != PB_VARINT)
			return -PARLEY_E_INVALID_MESSAGE;
		/* prost reads a uint32 varint as u64 and truncates */
		if (f->num == 2) {
			*chain_id = (uint32_t)f->v;
			*have |= HAVE_CHAIN;
		} else {
			*iteration = (uint32_t)f->v;
			*have |= HAVE_ITER;
		}
		return 1;
	default:
		return 0;
	}
}

int sender_key__message_decode(sk_message *m, const uint8_t *buf, size_t len)
{
	pb_reader r;
	pb_field f, uuid = {0};
	unsigned have = 0;
	int rc;

	memset(m, 0, sizeof *m);
	if (buf == NULL || len < 1 + SK_SIG_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	rc = check_version(buf[0]);
	if (rc != PARLEY_OK)
		return rc;
	m->version = buf[0] >> 4;
	pb__reader_init(&r, buf + 1, len - 1 - SK_SIG_LEN);
	while ((rc = pb__next(&r, &f)) == 1) {
		int t = take_common(&f, &uuid, &m->chain_id, &m->iteration, &have);
		if (t < 0)
			return -t;
		if (t == 0 && f.num == 4) {
			if (f.wire != PB_LEN)
				return PARLEY_E_INVALID_MESSAGE;
			m->ciphertext = f.data;
			m->ciphertext_len = f.len;
			have |= HAVE_F4;
		}
	}
	if (rc < 0 || have != (HAVE_UUID | HAVE_CHAIN | HAVE_ITER | HAVE_F4) || uuid.len != SK_UUID_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	memcpy(m->distribution_id, uuid.data, SK_UUID_LEN);
	m->signed_part = buf;
	m->signed_len = len - SK_SIG_LEN;
	m->signature = buf + len - SK_SIG_LEN;
	return PARLEY_OK;
}

int sender_key__message_encode(uint8_t *out, size_t out_cap, size_t *out_len,
	const uint8_t distribution_id[SK_UUID_LEN], uint32_t chain_id, uint32_t iteration,
	const uint8_t *ciphertext, size_t ciphertext_len, const uint8_t signing_priv[32])
{
	pb_writer w;
	uint8_t version = (SK_VERSION << 4) | SK_VERSION;
	int rc;

	pb__writer_init(&w, out, out_cap);
	pb__put_raw(&w, &version, 1);
	pb__put_bytes_field(&w, 1, distribution_id, SK_UUID_LEN);
	pb__put_varint_field(&w, 2, chain_id);
	pb__put_varint_field(&w, 3, iteration);
	pb__put_bytes_field(&w, 4, ciphertext, ciphertext_len);
	if (w.err || out_cap - w.len < SK_SIG_LEN)
		return PARLEY_E_INVAL;
	rc = crypto__xeddsa_sign(out + w.len, signing_priv, out, w.len);
	if (rc != PARLEY_OK)
		return rc;
	*out_len = w.len + SK_SIG_LEN;
	return PARLEY_OK;
}

int sender_key__distribution_decode(sk_distribution *d, const uint8_t *buf, size_t len)
{
	pb_reader r;
	pb_field f, uuid = {0};
	unsigned have = 0;
	const uint8_t *ck = NULL, *sk = NULL;
	size_t ck_len = 0, sk_len = 0;
	int rc;

	memset(d, 0, sizeof *d);
	if (buf == NULL || len < SKDM_MIN_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	rc = check_version(buf[0]);
	if (rc != PARLEY_OK)
		return rc;
	d->version = buf[0] >> 4;
	pb__reader_init(&r, buf + 1, len - 1);
	while ((rc = pb__next(&r, &f)) == 1) {
		int t = take_common(&f, &uuid, &d->chain_id, &d->iteration, &have);
		if (t < 0)
			return -t;
		if (t == 1 || (f.num != 4 && f.num != 5))
			continue;
		if (f.wire != PB_LEN)
			return PARLEY_E_INVALID_MESSAGE;
		if (f.num == 4) {
			ck = f.data;
			ck_len = f.len;
			have |= HAVE_F4;
		} else {
			sk = f.data;
			sk_len = f.len;
			have |= HAVE_F5;
		}
	}
	if (rc < 0 || have != (HAVE_UUID | HAVE_CHAIN | HAVE_ITER | HAVE_F4 | HAVE_F5))
		return PARLEY_E_INVALID_MESSAGE;
	if (uuid.len != SK_UUID_LEN || ck_len != SK_CHAIN_KEY_LEN || sk_len != PARLEY_SIGNAL_PUBKEY_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	memcpy(d->distribution_id, uuid.data, SK_UUID_LEN);
	if (sk[0] != CRYPTO_SIGNAL_KEY_TYPE) {
		crypto__wipe(d, sizeof *d);
		return PARLEY_E_INVALID_KEY;
	}
	memcpy(d->chain_key, ck, SK_CHAIN_KEY_LEN);
	memcpy(d->signing_key, sk, PARLEY_SIGNAL_PUBKEY_LEN);
	return PARLEY_OK;
}

int sender_key__distribution_encode(uint8_t *out, size_t out_cap, size_t *out_len, const sk_distribution *d)
{
	pb_writer w;
	uint8_t version = (uint8_t)((d->version & 0xf) << 4) | SK_VERSION;

	pb__writer_init(&w, out, out_cap);
	pb__put_raw(&w, &version, 1);
	pb__put_bytes_field(&w, 1, d->distribution_id, SK_UUID_LEN);
	pb__put_varint_field(&w, 2, d->chain_id);
	pb__put_varint_field(&w, 3, d->iteration);
	pb__put_bytes_field(&w, 4, d->chain_key, SK_CHAIN_KEY_LEN);
	pb__put_bytes_field(&w, 5, d->signing_key, PARLEY_SIGNAL_PUBKEY_LEN);
	if (w.err)
		return PARLEY_E_INVAL;
	*out_len = w.len;
	return PARLEY_OK;
}
