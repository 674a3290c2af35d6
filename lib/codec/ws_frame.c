/* Pure helpers of the WebSocket codec: frame-header parsing, strict UTF-8, close-code rules. No
 * allocation — they run on bytes straight from the network and are fuzzed on their own. */
#include <parley/error.h>

#include "codec/ws.h"

int ws__frame_header_parse(const uint8_t *buf, size_t len, ws_frame_header *h)
{
	if (len < 2)
		return PARLEY_E_PROTO_TRUNCATED;
	h->fin = (buf[0] >> 7) & 1;
	h->rsv = (buf[0] >> 4) & 7;
	h->opcode = buf[0] & 0x0f;
	h->masked = (buf[1] >> 7) & 1;
	unsigned len7 = buf[1] & 0x7f;
	/* judge what two bytes already show, so a bad frame is refused without waiting for more */
	if (h->rsv != 0)
		return PARLEY_E_WS_PROTOCOL; /* no extension negotiated */
	switch (h->opcode) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		/* §5.5: control frames are never fragmented and carry at most 125 bytes */
		if (!h->fin || len7 > 125)
			return PARLEY_E_WS_PROTOCOL;
		break;
	default:
		return PARLEY_E_WS_PROTOCOL;
	}
	size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (h->masked ? 4 : 0);
	if (len < need)
		return PARLEY_E_PROTO_TRUNCATED;
	size_t off = 2;
	if (len7 == 126) {
		h->payload_len = ((uint64_t)buf[2] << 8) | buf[3];
		off = 4;
		if (h->payload_len < 126)
			return PARLEY_E_WS_PROTOCOL; /* §5.2: the minimal number of bytes must be used */
	} else if (len7 == 127) {
		h->payload_len = 0;
		for (int i = 0; i < 8; i++)
			h->payload_len = (h->payload_len << 8) | buf[2 + i];
		off = 10;
		if (h->payload_len >> 63)
			return PARLEY_E_WS_PROTOCOL; /* §5.2: the most significant bit must be 0 */
		if (h->payload_len <= 0xffff)
			return PARLEY_E_WS_PROTOCOL;
	} else {
		h->payload_len = len7;
	}
	if (h->masked) {
		for (int i = 0; i < 4; i++)
			h->mask[i] = buf[off + i];
		off += 4;
	} else {
		for (int i = 0; i < 4; i++)
			h->mask[i] = 0;
	}
	h->header_len = off;
	return PARLEY_OK;
}

int ws__utf8_feed(ws_utf8 *u, const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (u->need > 0) {
			if (c < u->lo || c > u->hi)
				return 0;
			u->need--;
			u->lo = 0x80;
			u->hi = 0xbf;
			continue;
		}
		if (c < 0x80)
			continue;
		/* the lead byte fixes how many continuation bytes follow and, for the second one, the range
		 * that rules out overlong forms (e0, f0), surrogates (ed) and code points past U+10FFFF (f4),
		 * so a bad sequence is refused at its first wrong byte (RFC 3629 §4) */
		u->lo = 0x80;
		u->hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			u->need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			u->need = 2;
			if (c == 0xe0)
				u->lo = 0xa0;
			else if (c == 0xed)
				u->hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			u->need = 3;
			if (c == 0xf0)
				u->lo = 0x90;
			else if (c == 0xf4)
				u->hi = 0x8f;
		} else {
			return 0; /* continuation byte without a lead, c0/c1 (overlong only), f5..ff */
		}
	}
	return 1;
}

int ws__utf8_valid(const uint8_t *s, size_t len)
{
	ws_utf8 u = {0};
	return ws__utf8_feed(&u, s, len) && u.need == 0;
}

int ws__close_code_valid(uint16_t code)
{
	/* §7.4.1/§7.4.2 and the IANA registry: 1004-1006 and 1015 are reserved or local-only; 1016-2999 are
	 * for future standards; 3000-4999 for libraries and applications. */
	if (code >= 1000 && code <= 1003)
		return 1;
	if (code >= 1007 && code <= 1014)
		return 1;
	return code >= 3000 && code <= 4999;
}
