/* Content: the plaintext that travels inside a Signal ciphertext (the server never sees it).
 *
 *   version (1 byte, = 1)
 *   records: tag (1 byte), length (2 bytes, big-endian), value
 *     1 kind         1 byte: 1 = message, 2 = copy of a message this account sent (to its other devices),
 *                    3 = delivery/read receipt, 4 = key transfer, 5 = sender key (a thread member's
 *                    SenderKeyDistributionMessage), 6 = sender-key request, 7 = forward bundle,
 *                    8 = forward history chunk, 9 = thread message (the plaintext of a group message)
 *     2 timestamp    8 bytes big-endian: the sender's message id (ms)
 *     3 body         0..PARLEY_MESSAGE_MAX bytes
 *     4 destination  1..32 bytes: recipient handle (kind 2 only)
 *     5 receipt      a packed parley.wire.Receipt (kind 3 only, required there): receipts travel inside
 *                    the ciphertext like messages, so only the session's peer can send one and the
 *                    server cannot tell a receipt from a message
 *     6 transfer     a packed parley.wire.KeyTransfer (kind 4 only, optional there): private keys moving
 *                    between devices (docs/protocol.md §11.4). A kind 4 Content without it is the filler
 *                    the other devices of the account get when a transfer goes to one device (the server
 *                    wants a ciphertext for every device); the filler carries a body of the transfer's
 *                    length instead, so both pad to the same size and the server cannot tell which
 *                    device got the keys
 *     7 thread       8 bytes big-endian, nonzero: the thread (kinds 5, 6 and 9 only, required there)
 *     8 payload      1..CONTENT_PAYLOAD_MAX bytes (kinds 5, 7 and 8 only, required there): the SKDM, a
 *                    packed parley.wire.ForwardBundle, a packed parley.wire.ForwardHistory
 *     0 padding      any bytes, ignored; appended so that ciphertext lengths reveal the message length
 *                    only to a 160-byte granularity (Signal pads the same way)
 *   Unknown tags are skipped, so later versions can add fields; a record running past the end, a
 *   missing kind/timestamp, or a repeated known tag is PARLEY_E_INVALID_MESSAGE.
 *
 * A record length is 16 bits, so a body is at most 65535 bytes; PARLEY_MESSAGE_MAX is below that.
 */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define CONTENT_VERSION 1
#define PAD_BLOCK 160
enum { TAG_PAD = 0, TAG_KIND = 1, TAG_TS = 2, TAG_BODY = 3, TAG_DEST = 4, TAG_RECEIPT = 5, TAG_TRANSFER = 6,
       TAG_THREAD = 7, TAG_PAYLOAD = 8 };
#define RECEIPT_MAX 1024 /* a Receipt of 100 ids packs into well under this */

static uint8_t *put_record(uint8_t *p, int tag, const void *v, size_t len)
{
	*p++ = (uint8_t)tag;
	*p++ = (uint8_t)(len >> 8);
	*p++ = (uint8_t)len;
	if (len != 0)
		memcpy(p, v, len);
	return p + len;
}

int client__content_encode(const client_content *ct, uint8_t **out, size_t *out_len)
{
	uint8_t kind = (uint8_t)ct->kind;
	uint8_t ts[8], th[8];
	size_t dest_len = strnlen(ct->destination, sizeof(ct->destination));
	size_t len, padded, i;
	uint8_t *buf, *p;

	*out = NULL;
	if (ct->body_len > PARLEY_MESSAGE_MAX || dest_len > PARLEY_HANDLE_MAX || ct->receipt_len > RECEIPT_MAX ||
	    ct->transfer_len > CONTENT_TRANSFER_MAX || ct->payload_len > CONTENT_PAYLOAD_MAX)
		return PARLEY_E_TOO_LARGE;
	for (i = 0; i < 8; i++) {
		ts[i] = (uint8_t)(ct->timestamp >> (56 - 8 * i));
		th[i] = (uint8_t)(ct->thread_id >> (56 - 8 * i));
	}
	len = 1 + (3 + 1) + (3 + 8) + (3 + ct->body_len) + (dest_len != 0 ? 3 + dest_len : 0) +
	      (ct->receipt_len != 0 ? 3 + ct->receipt_len : 0) + (ct->transfer_len != 0 ? 3 + ct->transfer_len : 0) +
	      (ct->thread_id != 0 ? 3 + 8 : 0) + (ct->payload_len != 0 ? 3 + ct->payload_len : 0);
	/* Room for a padding record header (3 bytes) at least. */
	padded = (len + 3 + PAD_BLOCK - 1) / PAD_BLOCK * PAD_BLOCK;
	buf = parley__calloc(1, padded);
	if (buf == NULL)
		return PARLEY_E_NOMEM;
	p = buf;
	*p++ = CONTENT_VERSION;
	p = put_record(p, TAG_KIND, &kind, 1);
	p = put_record(p, TAG_TS, ts, 8);
	p = put_record(p, TAG_BODY, ct->body, ct->body_len);
	if (dest_len != 0)
		p = put_record(p, TAG_DEST, ct->destination, dest_len);
	if (ct->receipt_len != 0)
		p = put_record(p, TAG_RECEIPT, ct->receipt, ct->receipt_len);
	if (ct->transfer_len != 0)
		p = put_record(p, TAG_TRANSFER, ct->transfer, ct->transfer_len);
	if (ct->thread_id != 0)
		p = put_record(p, TAG_THREAD, th, 8);
	if (ct->payload_len != 0)
		p = put_record(p, TAG_PAYLOAD, ct->payload, ct->payload_len);
	/* the rest is zero: one padding record covering it */
	put_record(p, TAG_PAD, NULL, 0);
	p[1] = (uint8_t)((padded - (size_t)(p - buf) - 3) >> 8);
	p[2] = (uint8_t)(padded - (size_t)(p - buf) - 3);
	*out = buf;
	*out_len = padded;
	return PARLEY_OK;
}

int client__content_decode(const uint8_t *buf, size_t len, client_content *out)
{
	size_t pos = 1, i;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	if (len < 1)
		return PARLEY_E_INVALID_MESSAGE;
	if (buf[0] != CONTENT_VERSION)
		return PARLEY_E_BAD_VERSION;
	while (pos < len) {
		int tag;
		size_t rlen;
		const uint8_t *v;

		if (len - pos < 3)
			return PARLEY_E_INVALID_MESSAGE;
		tag = buf[pos];
		rlen = (size_t)buf[pos + 1] << 8 | buf[pos + 2];
		pos += 3;
		if (rlen > len - pos)
			return PARLEY_E_INVALID_MESSAGE;
		v = buf + pos;
		pos += rlen;
		if (tag >= TAG_KIND && tag <= TAG_PAYLOAD) {
			if (seen & (1u << tag))
				return PARLEY_E_INVALID_MESSAGE;
			seen |= 1u << tag;
		}
		switch (tag) {
		case TAG_KIND:
			if (rlen != 1)
				return PARLEY_E_INVALID_MESSAGE;
			out->kind = v[0];
			break;
		case TAG_TS:
			if (rlen != 8)
				return PARLEY_E_INVALID_MESSAGE;
			for (i = 0; i < 8; i++)
				out->timestamp = out->timestamp << 8 | v[i];
			break;
		case TAG_BODY:
			if (rlen > PARLEY_MESSAGE_MAX)
				return PARLEY_E_INVALID_MESSAGE;
			out->body = v;
			out->body_len = rlen;
			break;
		case TAG_DEST:
			if (rlen == 0 || rlen > PARLEY_HANDLE_MAX || memchr(v, '\0', rlen) != NULL)
				return PARLEY_E_INVALID_MESSAGE;
			memcpy(out->destination, v, rlen);
			out->destination[rlen] = '\0';
			break;
		case TAG_RECEIPT:
			if (rlen == 0 || rlen > RECEIPT_MAX)
				return PARLEY_E_INVALID_MESSAGE;
			out->receipt = v;
			out->receipt_len = rlen;
			break;
		case TAG_TRANSFER:
			if (rlen == 0 || rlen > CONTENT_TRANSFER_MAX)
				return PARLEY_E_INVALID_MESSAGE;
			out->transfer = v;
			out->transfer_len = rlen;
			break;
		case TAG_THREAD:
			if (rlen != 8)
				return PARLEY_E_INVALID_MESSAGE;
			for (i = 0; i < 8; i++)
				out->thread_id = out->thread_id << 8 | v[i];
			if (out->thread_id == 0)
				return PARLEY_E_INVALID_MESSAGE;
			break;
		case TAG_PAYLOAD:
			if (rlen == 0 || rlen > CONTENT_PAYLOAD_MAX)
				return PARLEY_E_INVALID_MESSAGE;
			out->payload = v;
			out->payload_len = rlen;
			break;
		default: /* padding or a field from a later version */
			break;
		}
	}
	if (!(seen & (1u << TAG_KIND)) || !(seen & (1u << TAG_TS)))
		return PARLEY_E_INVALID_MESSAGE;
	if (out->kind == CONTENT_KIND_SENT_COPY && out->destination[0] == '\0')
		return PARLEY_E_INVALID_MESSAGE;
	if ((out->kind == CONTENT_KIND_RECEIPT) != (out->receipt != NULL))
		return PARLEY_E_INVALID_MESSAGE;
	if (out->kind != CONTENT_KIND_KEY_TRANSFER && out->transfer != NULL)
		return PARLEY_E_INVALID_MESSAGE;
	/* thread kinds: the thread record exactly on 5, 6, 9; the payload exactly on 5, 7, 8 */
	if ((out->kind == CONTENT_KIND_SENDER_KEY || out->kind == CONTENT_KIND_SENDER_KEY_REQUEST ||
	     out->kind == CONTENT_KIND_THREAD_MESSAGE) != (out->thread_id != 0))
		return PARLEY_E_INVALID_MESSAGE;
	if ((out->kind == CONTENT_KIND_SENDER_KEY || out->kind == CONTENT_KIND_FORWARD ||
	     out->kind == CONTENT_KIND_FORWARD_HISTORY) != (out->payload != NULL))
		return PARLEY_E_INVALID_MESSAGE;
	if (out->body == NULL)
		out->body = buf; /* empty body: a valid pointer with length 0 */
	return PARLEY_OK;
}
