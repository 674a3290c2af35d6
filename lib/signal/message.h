/* SignalMessage and PreKeySignalMessage: libsignal's wire form (proto/signal.proto).
 *
 * SignalMessage       = version byte || protobuf {1 ratchet_key, 2 counter, 3 previous_counter,
 *                       4 ciphertext} || 8-byte truncated HMAC-SHA256
 * PreKeySignalMessage = version byte || protobuf {1 pre_key_id?, 2 base_key, 3 identity_key,
 *                       4 message (a whole SignalMessage), 5 registration_id, 6 signed_pre_key_id}
 *
 * Decoders borrow the input (no allocation), bound every length by the input, and refuse malformed
 * input with PARLEY_E_INVALID_MESSAGE (PARLEY_E_BAD_VERSION for an unknown version nibble,
 * PARLEY_E_INVALID_KEY for a key that is not 0x05 || 32 bytes). Encoders write in ascending field
 * order and write every set optional field, exactly as libsignal (prost) does, because the MAC covers
 * the bytes.
 */
#ifndef PARLEY_SIGNAL_MESSAGE_H
#define PARLEY_SIGNAL_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define SIG_SESSION_VERSION 3
#define SIG_VERSION_BYTE 0x33 /* (3 << 4) | 3 */
#define SIG_MAC_LEN 8

typedef struct sig_msg {
	uint8_t version; /* high nibble of the version byte */
	uint8_t ratchet_key[CRYPTO_KEY_LEN];
	uint32_t counter;
	uint32_t previous_counter;
	const uint8_t *ciphertext; /* borrowed from the input */
	size_t ciphertext_len;
	const uint8_t *serialized; /* the whole message, MAC included (borrowed) */
	size_t serialized_len;
} sig_msg;

typedef struct sig_prekey_msg {
	uint8_t version;
	int has_prekey_id;
	uint32_t prekey_id;
	uint32_t signed_prekey_id;
	uint32_t registration_id;
	uint8_t base_key[CRYPTO_KEY_LEN];
	uint8_t identity_key[CRYPTO_SIGNAL_PUBKEY_LEN]; /* serialized form, as the MAC needs it */
	sig_msg message; /* decoded inner SignalMessage */
} sig_prekey_msg;

int sig__msg_decode(sig_msg *m, const uint8_t *buf, size_t len);
int sig__prekey_msg_decode(sig_prekey_msg *m, const uint8_t *buf, size_t len);

/* Encoding is split so that AES writes the ciphertext straight into the output buffer:
 * write the header (version byte and fields 1-3 plus field 4's tag and length), let the caller put
 * ct_len ciphertext bytes right after it, then append the MAC. sig__msg_header_len gives the header
 * size without writing. Total message size = header + ct_len + SIG_MAC_LEN. */
size_t sig__msg_header_len(uint32_t counter, uint32_t previous_counter, size_t ct_len);
size_t sig__msg_write_header(uint8_t *out, const uint8_t ratchet_pub[CRYPTO_KEY_LEN], uint32_t counter,
			     uint32_t previous_counter, size_t ct_len);
/* mac_out (8 bytes) = HMAC(mac_key, sender_ik33 || receiver_ik33 || body)[0..8] */
void sig__msg_mac(uint8_t mac_out[SIG_MAC_LEN], const uint8_t mac_key[CRYPTO_KEY_LEN],
		  const uint8_t sender_ik[CRYPTO_SIGNAL_PUBKEY_LEN], const uint8_t receiver_ik[CRYPTO_SIGNAL_PUBKEY_LEN],
		  const uint8_t *body, size_t body_len);

/* PreKeySignalMessage framing around an inner SignalMessage of inner_len bytes. */
typedef struct sig_prekey_fields {
	int has_prekey_id;
	uint32_t prekey_id;
	uint32_t signed_prekey_id;
	uint32_t registration_id;
	uint8_t base_key[CRYPTO_KEY_LEN];
	uint8_t identity_key[CRYPTO_SIGNAL_PUBKEY_LEN];
} sig_prekey_fields;
size_t sig__prekey_header_len(const sig_prekey_fields *f, size_t inner_len);
size_t sig__prekey_write_header(uint8_t *out, const sig_prekey_fields *f, size_t inner_len);
size_t sig__prekey_trailer_len(const sig_prekey_fields *f);
size_t sig__prekey_write_trailer(uint8_t *out, const sig_prekey_fields *f);

#endif
