/* Sans-I/O WebSocket session (RFC 6455), for either role.
 *
 * The socket layer hands what it read to ws__feed (or ws__feed_inplace) and writes out what
 * ws__pending_output holds. Complete messages come out through ws_callbacks.on_message.
 *
 * Memory: an idle session is one small fixed struct. The output buffer exists only while frames wait
 * for the socket layer (freed when ws__consume_output has taken everything) and the reassembly buffer
 * only while a message is arriving in pieces; ws__buffered_bytes tells what both hold.
 *
 * What the session enforces, and what the caller sees (ws__feed's return, ws__error, ws__close_code):
 *   - server role: every client frame must be masked     -> close 1002, PARLEY_E_WS_UNMASKED
 *     client role: a masked server frame                 -> close 1002, PARLEY_E_WS_PROTOCOL
 *   - reserved bits/opcodes, bad lengths, control frames
 *     > 125 bytes or fragmented, bad continuation order  -> close 1002, PARLEY_E_WS_PROTOCOL
 *   - a message (all fragments) longer than max_message  -> close 1009, PARLEY_E_WS_TOO_LARGE
 *   - close frame with a 1-byte payload, a code that may
 *     not be sent (<1000, 1004-1006, 1015, 1016-2999,
 *     >= 5000) or a reason that is not UTF-8             -> close 1002, PARLEY_E_WS_BAD_CLOSE
 *   - text message that is not strict UTF-8              -> close 1007, PARLEY_E_WS_BAD_UTF8
 *   - text message that *is* valid UTF-8: parley speaks
 *     binary only, so it is refused too                  -> close 1003, PARLEY_E_UNSUPPORTED
 * Fragmented messages are reassembled (control frames may come between fragments); a ping is answered
 * with a pong automatically; a peer's close is answered with the same code (RFC 6455 §5.5.1).
 * Frame headers are checked by ws__frame_header_parse (below) as bytes arrive, so each violation has
 * its own error and nothing is buffered for a frame that is going to be refused.
 *
 * Not thread-safe: one session belongs to one thread.
 */
#ifndef PARLEY_NET_WS_H
#define PARLEY_NET_WS_H
#include <stddef.h>
#include <stdint.h>

enum ws_role { WS_ROLE_SERVER = 0, WS_ROLE_CLIENT = 1 };

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes used by parley (RFC 6455 §7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_NO_STATUS 1005 /* reported when the peer's close frame had no payload; never sent */
#define WS_CLOSE_ABNORMAL 1006  /* reported when the connection ended without a close frame; never sent */
#define WS_CLOSE_BAD_DATA 1007
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_LARGE 1009
#define WS_CLOSE_INTERNAL 1011

#define WS_DEFAULT_MAX_MESSAGE (1u << 20)
#define WS_DEFAULT_MAX_OUTPUT (4u << 20)

/* ---- pure frame-header parser (also a fuzz target) ---- */

typedef struct ws_frame_header {
	int fin;
	unsigned rsv;    /* RSV1..3 as bits 2..0 */
	unsigned opcode; /* enum ws_opcode or a reserved value */
	int masked;
	uint8_t mask[4];
	uint64_t payload_len;
	size_t header_len; /* 2..14 bytes */
} ws_frame_header;

/* Parses one frame header at the start of buf.
 * PARLEY_OK: *h filled. PARLEY_E_PROTO_TRUNCATED: need more bytes (nothing is wrong yet).
 * PARLEY_E_WS_PROTOCOL: reserved bits set, reserved opcode, 64-bit length with the top bit set, control
 * frame that is fragmented or longer than 125 bytes. Masking is reported, not judged (role-dependent). */
int ws__frame_header_parse(const uint8_t *buf, size_t len, ws_frame_header *h);

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. 1 if valid. */
int ws__utf8_valid(const uint8_t *s, size_t len);

/* The same check over text that arrives in pieces. Start from a zeroed ws_utf8. ws__utf8_feed returns 0
 * at the first byte that cannot be part of valid UTF-8, else 1; the text is complete and valid when the
 * last feed returned 1 and need is 0 (not inside a character). */
typedef struct ws_utf8 {
	uint8_t need;   /* continuation bytes still expected */
	uint8_t lo, hi; /* allowed range of the next continuation byte */
} ws_utf8;
int ws__utf8_feed(ws_utf8 *u, const uint8_t *s, size_t len);

/* 1 if a close code may appear in a close frame on the wire (RFC 6455 §7.4). */
int ws__close_code_valid(uint16_t code);

/* ---- session ---- */

typedef struct ws_session ws_session;

typedef struct ws_config {
	size_t max_message; /* largest reassembled message accepted; 0 = WS_DEFAULT_MAX_MESSAGE */
	size_t max_output;  /* hard bound of unsent output: a data frame that would take it past max_output
			       (+ its header) is refused; pongs and our one close frame may use a few hundred
			       bytes more. 0 = WS_DEFAULT_MAX_OUTPUT */
} ws_config;

typedef struct ws_callbacks {
	void *ctx;
	/* One complete binary message; buf valid only during the call. The callback may call ws__send_*
	 * and ws__close on the same session but must not free it. */
	void (*on_message)(void *ctx, const uint8_t *buf, size_t len);
	/* The peer's close frame arrived (code WS_CLOSE_NO_STATUS if it carried none). Optional. */
	void (*on_peer_close)(void *ctx, uint16_t code, const uint8_t *reason, size_t reason_len);
} ws_callbacks;

/* cfg may be NULL (defaults). cb is copied. Returns PARLEY_OK or PARLEY_E_NOMEM. */
int ws__session_new(ws_session **out, enum ws_role role, const ws_config *cfg, const ws_callbacks *cb);
void ws__session_free(ws_session *s);

/* Consume bytes read from the peer: delivers complete messages, answers pings and close frames into the
 * output. Returns PARLEY_OK, or the first violation (see the table above) — a close frame with the
 * matching code is then already queued in the output, the session refuses further input, and the same
 * code stays available from ws__error. PARLEY_E_NOMEM if a buffer could not be had (the session is
 * then failed too). Input after the peer's close frame is ignored. */
int ws__feed(ws_session *s, const uint8_t *in, size_t len);
/* The same, but the session may unmask payloads in place: a masked message that arrives whole is then
 * delivered from `in` without a copy. The contents of `in` are unspecified afterwards. */
int ws__feed_inplace(ws_session *s, uint8_t *in, size_t len);

/* Queue one message (copied, encoded into the output at once). The client role masks it with a fresh
 * random key. Returns PARLEY_OK, PARLEY_E_CLOSED once a close was sent or the session failed,
 * PARLEY_E_SLOW_CONSUMER if the output would exceed max_output (nothing queued, the session goes on),
 * PARLEY_E_NOMEM (nothing queued either). */
int ws__send_binary(ws_session *s, const uint8_t *buf, size_t len);
int ws__send_ping(ws_session *s, const uint8_t *buf, size_t len); /* len <= 125, else PARLEY_E_INVAL */
/* Start the close handshake (code must satisfy ws__close_code_valid; reason <= 123 bytes, truncated
 * otherwise). Idempotent: a second call is ignored. */
int ws__close(ws_session *s, uint16_t code, const char *reason);

/* Output for the socket: a pointer/length into the buffer, valid until the next call on the session. */
const uint8_t *ws__pending_output(ws_session *s, size_t *len);
/* The socket layer took n bytes of it. Once everything is taken the buffer is freed. */
void ws__consume_output(ws_session *s, size_t n);
/* Bytes not yet handed to the socket layer. This is the number a slow-consumer limit looks at. */
size_t ws__pending_bytes(const ws_session *s);
/* Heap bytes the session holds in buffers (output + reassembly capacity); 0 for an idle session. */
size_t ws__buffered_bytes(const ws_session *s);

/* Changes the message limit from the next frame header on (parleyd: a small limit until the
 * connection authenticates, then max_message_bytes). A message already announced keeps its judgement. */
void ws__set_max_message(ws_session *s, size_t max_message);
/* 1 while part of a frame or of a fragmented message has arrived and the rest has not: what a deadline
 * for finishing a message watches (a peer trickling one byte at a time is never idle). */
int ws__receiving(const ws_session *s);

/* 1 once the session is over on our side: both close frames exchanged, or we sent a close after a
 * failure. The socket layer then flushes the pending output and closes the TCP connection. */
int ws__is_done(const ws_session *s);
int ws__close_sent(const ws_session *s);
int ws__close_received(const ws_session *s);
/* The first violation found (PARLEY_OK if none). */
int ws__error(const ws_session *s);
/* The code the peer sent (WS_CLOSE_NO_STATUS if none in its frame, 0 if no close frame yet). */
uint16_t ws__peer_close_code(const ws_session *s);
/* The code we sent in our close frame (0 if none yet). */
uint16_t ws__sent_close_code(const ws_session *s);

#endif
