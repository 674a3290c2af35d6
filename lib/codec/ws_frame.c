/* Pure helpers of the WebSocket codec: frame-header parsing, strict UTF-8, close-code rules. No state,
 * no allocation — they run on bytes straight from the network and are fuzzed on their own. */
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

int ws__utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf) { /* 0xc0, 0xc1 would only start overlongs */
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			uint8_t cc = s[i + k];
			if ((cc & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
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
