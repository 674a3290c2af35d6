/* SignalMessage / PreKeySignalMessage codec (see message.h). */
#include "signal/message.h"

#include <string.h>

#include <parley/error.h>
#include <parley/signal.h>

#include "signal/pb.h"

/* Version nibble check shared by both decoders: we only speak session version 3 (classic X3DH);
 * anything else is a version we do not understand rather than garbage. */
static int check_version(uint8_t byte, uint8_t *version)
{
	*version = (uint8_t)(byte >> 4);
	return *version == SIG_SESSION_VERSION ? PARLEY_OK : PARLEY_E_BAD_VERSION;
}

static int key_field(uint8_t out[CRYPTO_KEY_LEN], const pb_field *f)
{
	if (f->wire != PB_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	/* libsignal tolerates trailing bytes after the 33; no libsignal peer sends them, so refuse */
	if (f->len != CRYPTO_SIGNAL_PUBKEY_LEN)
		return PARLEY_E_INVALID_KEY;
	return crypto__pubkey_parse(out, f->data, f->len);
}

static int u32_field(uint32_t *out, const pb_field *f)
{
	if (f->wire != PB_VARINT || f->v > UINT32_MAX)
		return PARLEY_E_INVALID_MESSAGE;
	*out = (uint32_t)f->v;
	return PARLEY_OK;
}

int sig__msg_decode(sig_msg *m, const uint8_t *buf, size_t len)
{
	pb_reader r;
	pb_field f;
	int got_key = 0, got_counter = 0, got_ct = 0, more, rc;

	if (buf == NULL || len < 1 + SIG_MAC_LEN)
		return PARLEY_E_INVALID_MESSAGE;
	if (len > PARLEY_SIGNAL_MAX_MESSAGE)
		return PARLEY_E_INVALID_MESSAGE;
	rc = check_version(buf[0], &m->version);
	if (rc != PARLEY_OK)
		return rc;
	m->previous_counter = 0;
	pb__reader_init(&r, buf + 1, len - 1 - SIG_MAC_LEN);
	for (;;) {
		more = pb__next(&r, &f);
		if (more != 1)
			break;
		switch (f.num) {
		case 1:
			rc = key_field(m->ratchet_key, &f);
			got_key = 1;
			break;
		case 2:
			rc = u32_field(&m->counter, &f);
			got_counter = 1;
			break;
		case 3:
			rc = u32_field(&m->previous_counter, &f);
			break;
		case 4:
			if (f.wire != PB_LEN)
				return PARLEY_E_INVALID_MESSAGE;
			m->ciphertext = f.data;
			m->ciphertext_len = f.len;
			got_ct = 1;
			break;
		default:
			break; /* unknown fields are skipped, as proto2 decoders do */
		}
		if (rc != PARLEY_OK)
			return rc;
	}
	if (more < 0 || !got_key || !got_counter || !got_ct)
		return PARLEY_E_INVALID_MESSAGE;
	m->serialized = buf;
	m->serialized_len = len;
	return PARLEY_OK;
}

int sig__prekey_msg_decode(sig_prekey_msg *m, const uint8_t *buf, size_t len)
{
	pb_reader r;
	pb_field f;
	int got_base = 0, got_ik = 0, got_msg = 0, got_spk = 0, more, rc = PARLEY_OK;
	const uint8_t *inner = NULL;
	size_t inner_len = 0;

	if (buf == NULL || len < 1 || len > PARLEY_SIGNAL_MAX_MESSAGE)
		return PARLEY_E_INVALID_MESSAGE;
	rc = check_version(buf[0], &m->version);
	if (rc != PARLEY_OK)
		return rc;
	m->has_prekey_id = 0;
	m->prekey_id = 0;
	m->registration_id = 0;
	pb__reader_init(&r, buf + 1, len - 1);
	for (;;) {
		more = pb__next(&r, &f);
		if (more != 1)
			break;
		switch (f.num) {
		case 1:
			rc = u32_field(&m->prekey_id, &f);
			m->has_prekey_id = 1;
			break;
		case 2:
			rc = key_field(m->base_key, &f);
			got_base = 1;
			break;
		case 3: {
			uint8_t tmp[CRYPTO_KEY_LEN];
			rc = key_field(tmp, &f);
			if (rc == PARLEY_OK)
				crypto__pubkey_serialize(m->identity_key, tmp);
			got_ik = 1;
			break;
		}
		case 4:
			if (f.wire != PB_LEN)
				return PARLEY_E_INVALID_MESSAGE;
			inner = f.data;
			inner_len = f.len;
			got_msg = 1;
			break;
		case 5:
			rc = u32_field(&m->registration_id, &f);
			break;
		case 6:
			rc = u32_field(&m->signed_prekey_id, &f);
			got_spk = 1;
			break;
		case 7:
		case 8:
			/* Kyber fields: only valid in version-4 (PQXDH) messages, which we do not speak */
			return PARLEY_E_INVALID_MESSAGE;
		default:
			break;
		}
		if (rc != PARLEY_OK)
			return rc;
	}
	if (more < 0 || !got_base || !got_ik || !got_msg || !got_spk)
		return PARLEY_E_INVALID_MESSAGE;
	return sig__msg_decode(&m->message, inner, inner_len);
}

/* ---------------------------------------------------------------- encoding */

static size_t bytes_field_len(uint32_t num, size_t n)
{
	return pb__varint_size((uint64_t)num << 3) + pb__varint_size(n) + n;
}

static size_t varint_field_len(uint32_t num, uint64_t v)
{
	return pb__varint_size((uint64_t)num << 3) + pb__varint_size(v);
}

size_t sig__msg_header_len(uint32_t counter, uint32_t previous_counter, size_t ct_len)
{
	return 1 + bytes_field_len(1, CRYPTO_SIGNAL_PUBKEY_LEN) + varint_field_len(2, counter) +
	       varint_field_len(3, previous_counter) + bytes_field_len(4, ct_len) - ct_len;
}

size_t sig__msg_write_header(uint8_t *out, const uint8_t ratchet_pub[CRYPTO_KEY_LEN], uint32_t counter,
			     uint32_t previous_counter, size_t ct_len)
{
	uint8_t key[CRYPTO_SIGNAL_PUBKEY_LEN];
	pb_writer w;
	size_t hlen = sig__msg_header_len(counter, previous_counter, ct_len);

	/* the capacity is exactly the header: the caller sized the buffer with sig__msg_header_len */
	pb__writer_init(&w, out, hlen);
	crypto__pubkey_serialize(key, ratchet_pub);
	pb__put_raw(&w, &(uint8_t){SIG_VERSION_BYTE}, 1);
	pb__put_bytes_field(&w, 1, key, sizeof(key));
	pb__put_varint_field(&w, 2, counter);
	pb__put_varint_field(&w, 3, previous_counter);
	/* field 4's tag and length only: the ciphertext itself follows */
	pb__put_len_prefix(&w, 4, ct_len);
	return w.err ? 0 : w.len;
}

void sig__msg_mac(uint8_t mac_out[SIG_MAC_LEN], const uint8_t mac_key[CRYPTO_KEY_LEN],
		  const uint8_t sender_ik[CRYPTO_SIGNAL_PUBKEY_LEN], const uint8_t receiver_ik[CRYPTO_SIGNAL_PUBKEY_LEN],
		  const uint8_t *body, size_t body_len)
{
	crypto_hmac_ctx st;
	uint8_t full[CRYPTO_HMAC_LEN];

	crypto__hmac_init(&st, mac_key, CRYPTO_KEY_LEN);
	crypto__hmac_update(&st, sender_ik, CRYPTO_SIGNAL_PUBKEY_LEN);
	crypto__hmac_update(&st, receiver_ik, CRYPTO_SIGNAL_PUBKEY_LEN);
	crypto__hmac_update(&st, body, body_len);
	crypto__hmac_final(&st, full);
	memcpy(mac_out, full, SIG_MAC_LEN);
	crypto__wipe(full, sizeof(full));
}

size_t sig__prekey_header_len(const sig_prekey_fields *f, size_t inner_len)
{
	size_t n = 1;
	if (f->has_prekey_id)
		n += varint_field_len(1, f->prekey_id);
	n += bytes_field_len(2, CRYPTO_SIGNAL_PUBKEY_LEN) + bytes_field_len(3, CRYPTO_SIGNAL_PUBKEY_LEN);
	n += bytes_field_len(4, inner_len) - inner_len;
	return n;
}

size_t sig__prekey_write_header(uint8_t *out, const sig_prekey_fields *f, size_t inner_len)
{
	uint8_t key[CRYPTO_SIGNAL_PUBKEY_LEN];
	pb_writer w;
	size_t hlen = sig__prekey_header_len(f, inner_len);

	pb__writer_init(&w, out, hlen);
	pb__put_raw(&w, &(uint8_t){SIG_VERSION_BYTE}, 1);
	if (f->has_prekey_id)
		pb__put_varint_field(&w, 1, f->prekey_id);
	crypto__pubkey_serialize(key, f->base_key);
	pb__put_bytes_field(&w, 2, key, sizeof(key));
	pb__put_bytes_field(&w, 3, f->identity_key, CRYPTO_SIGNAL_PUBKEY_LEN);
	pb__put_len_prefix(&w, 4, inner_len);
	return w.err ? 0 : w.len;
}

size_t sig__prekey_trailer_len(const sig_prekey_fields *f)
{
	return varint_field_len(5, f->registration_id) + varint_field_len(6, f->signed_prekey_id);
}

size_t sig__prekey_write_trailer(uint8_t *out, const sig_prekey_fields *f)
{
	pb_writer w;
	pb__writer_init(&w, out, sig__prekey_trailer_len(f));
	pb__put_varint_field(&w, 5, f->registration_id);
	pb__put_varint_field(&w, 6, f->signed_prekey_id);
	return w.err ? 0 : w.len;
}
