/* WebSocket session: RFC 6455 framing driven from buffers, sized for the idle connection.
 *
 * Why our own framing and not wslay: a wslay event context embeds two 4 KiB frame buffers and three
 * queues (about 9 KiB per connection, busy or idle) and allocates three times for every message it
 * sends. parleyd holds tens of thousands of mostly idle connections, so the session keeps only the
 * few bytes of parser state an idle connection needs and takes memory when there is work:
 *   - input: a binary message that arrives whole in one feed (the usual case) is delivered straight
 *     from the caller's buffer (unmasked in place with ws__feed_inplace); only a message split over
 *     feeds or fragments is reassembled, in a buffer that grows with the bytes received and is freed
 *     as soon as the message is delivered;
 *   - output: frames are encoded directly into one output buffer, allocated on the first frame and
 *     freed when the socket layer has taken everything (ws__consume_output). It has a hard bound:
 *     max_output for data, a little more for the control frames the session answers with itself.
 * Frames are checked header by header as bytes arrive (ws__frame_header_parse, then judge_header in
 * context), so each violation has its own error and close code and nothing is stored for a frame that
 * is going to be refused.
 */
#include "codec/ws.h"

#include <string.h>

#include <parley/error.h>
#include <sodium.h>

#include "common/alloc.h"

#define WS_MAX_HDR 14                       /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_CTRL 125                     /* control frame payload, §5.5 */
#define WS_CTRL_FRAME (2 + 4 + WS_MAX_CTRL) /* longest control frame on the wire */
#define WS_OUT_MIN 512                      /* first output allocation: a few small frames fit */

struct ws_session {
	ws_callbacks cb;
	size_t max_message;
	size_t max_output;

	/* output not yet taken by the socket layer: out[out_off..out_len); NULL when empty */
	uint8_t *out;
	size_t out_off, out_len, out_cap;

	/* reassembly of a binary message not delivered straight from the input; NULL otherwise */
	uint8_t *msg;
	size_t msg_have, msg_cap;
	uint64_t msg_len; /* judged length of the current data message, all fragments so far */

	/* frame being received */
	ws_frame_header fh;
	uint64_t remaining; /* payload bytes of fh still to come */
	uint8_t hdr[WS_MAX_HDR];
	uint8_t hdr_have;
	uint8_t hdr_done;
	uint8_t ctrl_have;
	uint8_t ctrl[WS_MAX_CTRL]; /* control frame payload, unmasked */
	ws_utf8 utf8;              /* text message being checked */

	uint8_t role;
	uint8_t in_message;   /* a fragmented data message has started and not finished */
	uint8_t text_message; /* the current (or last) data message is text */
	uint8_t close_sent;   /* our close frame is in the output (nothing may follow it) */
	uint8_t close_received;
	uint16_t peer_code;
	uint16_t sent_code;
	int err;
};
/* parleyd keeps one per idle connection, within a budget of 4 KiB for everything: grow it knowingly */
_Static_assert(sizeof(struct ws_session) <= 384, "ws_session outgrew the idle-connection budget");

/* ---- output ---- */

/* dst = src XOR the mask, starting at payload offset off. dst may equal src. */
static void apply_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint64_t off)
{
	uint8_t m[8];
	uint64_t m64;
	size_t i = 0;
	for (int k = 0; k < 8; k++)
		m[k] = mask[(off + (uint64_t)k) & 3];
	memcpy(&m64, m, sizeof(m64));
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, sizeof(v));
		v ^= m64;
		memcpy(dst + i, &v, sizeof(v));
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ m[i & 7];
}

/* Room for n more bytes of output, as long as the unsent total stays within limit. Returns the tail
 * or NULL with *rc = PARLEY_E_SLOW_CONSUMER (over the limit) or PARLEY_E_NOMEM. */
static uint8_t *out_reserve(ws_session *s, size_t n, size_t limit, int *rc)
{
	size_t pending = s->out_len - s->out_off;
	*rc = PARLEY_OK;
	if (n > limit || pending > limit - n) {
		*rc = PARLEY_E_SLOW_CONSUMER;
		return NULL;
	}
	if (s->out_cap - s->out_len >= n)
		return s->out + s->out_len;
	if (s->out_off > 0) {
		/* reclaim what the socket layer already took before growing */
		memmove(s->out, s->out + s->out_off, pending);
		s->out_len = pending;
		s->out_off = 0;
		if (s->out_cap - s->out_len >= n)
			return s->out + s->out_len;
	}
	size_t want = pending + n;
	size_t ncap = s->out_cap > WS_OUT_MIN / 2 ? s->out_cap * 2 : WS_OUT_MIN;
	if (ncap < want)
		ncap = want;
	uint8_t *p = parley__realloc(s->out, ncap);
	if (p == NULL) {
		*rc = PARLEY_E_NOMEM;
		return NULL;
	}
	s->out = p;
	s->out_cap = ncap;
	return s->out + s->out_len;
}

/* Appends one complete frame (fin set), masked in the client role. limit bounds the unsent output.
 * All or nothing: on failure the output is unchanged. */
static int put_frame(ws_session *s, unsigned opcode, const uint8_t *payload, size_t len, size_t limit)
{
	size_t hl = 2 + (len < 126 ? 0 : len <= 0xffff ? 2 : 8) + (s->role == WS_ROLE_CLIENT ? 4 : 0);
	int rc;
	if (len > SIZE_MAX - hl)
		return PARLEY_E_SLOW_CONSUMER;
	uint8_t *h = out_reserve(s, hl + len, limit, &rc);
	if (h == NULL)
		return rc;
	uint8_t mbit = s->role == WS_ROLE_CLIENT ? 0x80 : 0;
	size_t o = 0;
	h[o++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[o++] = (uint8_t)(mbit | len);
	} else if (len <= 0xffff) {
		h[o++] = mbit | 126;
		h[o++] = (uint8_t)(len >> 8);
		h[o++] = (uint8_t)len;
	} else {
		h[o++] = mbit | 127;
		for (int i = 7; i >= 0; i--)
			h[o++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	if (mbit) {
		/* §5.3: a fresh unpredictable key for every frame */
		randombytes_buf(h + o, 4);
		apply_mask(h + o + 4, payload, len, h + o, 0);
	} else if (len > 0) {
		memcpy(h + o, payload, len);
	}
	s->out_len += hl + len;
	return PARLEY_OK;
}

/* The close frame: never refused for size (one per session, and the peer must see it). code 0 sends
 * an empty close (the echo of a close that carried no code). */
static int put_close(ws_session *s, uint16_t code, const uint8_t *reason, size_t rlen)
{
	uint8_t p[2 + 123] = {0};
	size_t n = 0;
	if (code != 0) {
		if (rlen > sizeof(p) - 2)
			rlen = sizeof(p) - 2;
		p[0] = (uint8_t)(code >> 8);
		p[1] = (uint8_t)code;
		if (rlen > 0)
			memcpy(p + 2, reason, rlen);
		n = 2 + rlen;
	}
	int rc = put_frame(s, WS_OP_CLOSE, p, n, SIZE_MAX);
	if (rc == PARLEY_OK) {
		s->close_sent = 1;
		s->sent_code = code != 0 ? code : WS_CLOSE_NO_STATUS;
	}
	return rc;
}

/* Records the first violation and queues the matching close frame. */
static void fail(ws_session *s, int err, uint16_t code, const char *reason)
{
	if (s->err != PARLEY_OK)
		return;
	s->err = err;
	if (!s->close_sent)
		(void)put_close(s, code, (const uint8_t *)reason, strlen(reason));
}

/* ---- input ---- */

/* Judges a complete header in context: role, fragmentation order, message size. */
static int judge_header(ws_session *s, uint16_t *code)
{
	const ws_frame_header *h = &s->fh;
	*code = WS_CLOSE_PROTOCOL;
	if (s->role == WS_ROLE_SERVER && !h->masked)
		return PARLEY_E_WS_UNMASKED; /* §5.1 */
	if (s->role == WS_ROLE_CLIENT && h->masked)
		return PARLEY_E_WS_PROTOCOL;
	if (h->opcode == WS_OP_CLOSE && h->payload_len == 1)
		return PARLEY_E_WS_BAD_CLOSE; /* §5.5.1: a code is two bytes */
	if (h->opcode & 0x8)
		return PARLEY_OK;
	if (h->opcode == WS_OP_CONT && !s->in_message)
		return PARLEY_E_WS_PROTOCOL;
	if (h->opcode != WS_OP_CONT && s->in_message)
		return PARLEY_E_WS_PROTOCOL;
	if (h->opcode != WS_OP_CONT) {
		s->msg_len = 0;
		s->text_message = h->opcode == WS_OP_TEXT;
		memset(&s->utf8, 0, sizeof(s->utf8));
	}
	if (h->payload_len > s->max_message - s->msg_len) {
		*code = WS_CLOSE_TOO_LARGE;
		return PARLEY_E_WS_TOO_LARGE;
	}
	s->msg_len += h->payload_len;
	s->in_message = !h->fin;
	return PARLEY_OK;
}

static int judge_close_payload(const ws_session *s)
{
	if (s->ctrl_have < 2)
		return PARLEY_OK; /* empty close: allowed, no status */
	uint16_t code = (uint16_t)((s->ctrl[0] << 8) | s->ctrl[1]);
	if (!ws__close_code_valid(code))
		return PARLEY_E_WS_BAD_CLOSE;
	if (!ws__utf8_valid(s->ctrl + 2, s->ctrl_have - 2u))
		return PARLEY_E_WS_BAD_CLOSE;
	return PARLEY_OK;
}

/* Reads header bytes from in; *used says how many. PARLEY_E_PROTO_TRUNCATED: all of in was header. */
static int take_header(ws_session *s, const uint8_t *in, size_t len, size_t *used)
{
	size_t before = s->hdr_have;
	size_t take = sizeof(s->hdr) - before;
	uint16_t code = WS_CLOSE_PROTOCOL;
	if (take > len)
		take = len;
	memcpy(s->hdr + before, in, take);
	int rc = ws__frame_header_parse(s->hdr, before + take, &s->fh);
	if (rc == PARLEY_E_PROTO_TRUNCATED) {
		s->hdr_have = (uint8_t)(before + take);
		*used = take;
		return rc;
	}
	*used = 0;
	if (rc == PARLEY_OK)
		rc = judge_header(s, &code);
	if (rc != PARLEY_OK) {
		const char *why = rc == PARLEY_E_WS_UNMASKED   ? "unmasked frame"
				  : rc == PARLEY_E_WS_TOO_LARGE ? "message too large"
				  : rc == PARLEY_E_WS_BAD_CLOSE ? "bad close frame"
								 : "protocol error";
		fail(s, rc, code, why);
		return rc;
	}
	*used = s->fh.header_len - before;
	s->hdr_done = 1;
	s->remaining = s->fh.payload_len;
	s->ctrl_have = 0;
	return PARLEY_OK;
}

static void deliver(ws_session *s, const uint8_t *buf, size_t len)
{
	/* never hand NULL for an empty message: callers may memcmp/memcpy it */
	static const uint8_t empty[1];
	if (s->cb.on_message != NULL)
		s->cb.on_message(s->cb.ctx, buf != NULL ? buf : empty, len);
}

static void drop_msg(ws_session *s)
{
	parley__free(s->msg);
	s->msg = NULL;
	s->msg_have = s->msg_cap = 0;
}

/* Unmasked payload bytes of a binary message into the reassembly buffer. It grows with the bytes that
 * actually arrived (doubling, never past the judged length of the message), not with the length a
 * header announces: a peer trickling a large frame costs what it sent, not max_message up front. */
static int msg_append(ws_session *s, const uint8_t *p, size_t n, uint64_t off)
{
	if (s->msg_cap - s->msg_have < n) {
		size_t need = s->msg_have + n;
		size_t ncap = s->msg_cap * 2 > need ? s->msg_cap * 2 : need;
		if (ncap > s->msg_len)
			ncap = (size_t)s->msg_len; /* >= need: this frame is counted in msg_len */
		uint8_t *m = parley__realloc(s->msg, ncap);
		if (m == NULL)
			return PARLEY_E_NOMEM;
		s->msg = m;
		s->msg_cap = ncap;
	}
	if (s->fh.masked)
		apply_mask(s->msg + s->msg_have, p, n, s->fh.mask, off);
	else
		memcpy(s->msg + s->msg_have, p, n);
	s->msg_have += n;
	return PARLEY_OK;
}

/* Text is refused either way, so it is only checked (incrementally, like a validating peer), not kept.
 * PARLEY_OK while the text so far can still be UTF-8. */
static int check_text(ws_session *s, const uint8_t *p, size_t n, uint64_t off)
{
	uint8_t tmp[256];
	while (n > 0) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);
		apply_mask(tmp, p, k, s->fh.mask, off); /* an unmasked frame has a zero mask */
		if (!ws__utf8_feed(&s->utf8, tmp, k))
			return PARLEY_E_WS_BAD_UTF8;
		p += k;
		n -= k;
		off += k;
	}
	return PARLEY_OK;
}

static void on_control(ws_session *s)
{
	switch (s->fh.opcode) {
	case WS_OP_PING:
		/* answered unless we are closing; a peer that does not read its pongs gets none past the bound */
		if (!s->close_sent &&
		    put_frame(s, WS_OP_PONG, s->ctrl, s->ctrl_have, s->max_output + WS_MAX_HDR + WS_CTRL_FRAME) ==
			    PARLEY_E_NOMEM)
			fail(s, PARLEY_E_NOMEM, WS_CLOSE_INTERNAL, "out of memory");
		break;
	case WS_OP_CLOSE: {
		if (judge_close_payload(s) != PARLEY_OK) {
			fail(s, PARLEY_E_WS_BAD_CLOSE, WS_CLOSE_PROTOCOL, "bad close frame");
			return;
		}
		uint16_t code = s->ctrl_have >= 2 ? (uint16_t)((s->ctrl[0] << 8) | s->ctrl[1]) : 0;
		const uint8_t *reason = s->ctrl_have >= 2 ? s->ctrl + 2 : NULL;
		size_t rlen = s->ctrl_have >= 2 ? s->ctrl_have - 2u : 0;
		s->close_received = 1;
		s->peer_code = code != 0 ? code : WS_CLOSE_NO_STATUS;
		/* §5.5.1: answer with the same code (and reason) unless our close went first */
		if (!s->close_sent && put_close(s, code, reason, rlen) != PARLEY_OK)
			s->err = PARLEY_E_NOMEM;
		if (s->cb.on_peer_close != NULL)
			s->cb.on_peer_close(s->cb.ctx, s->peer_code, reason, rlen);
		break;
	}
	default: /* pong */
		break;
	}
}

/* The last payload byte of the current frame (or its header, for an empty one) was read. */
static void end_frame(ws_session *s)
{
	s->hdr_done = 0;
	s->hdr_have = 0;
	if (s->fh.opcode & 0x8) {
		on_control(s);
		return;
	}
	if (!s->fh.fin)
		return;
	if (s->text_message) {
		if (s->utf8.need != 0)
			fail(s, PARLEY_E_WS_BAD_UTF8, WS_CLOSE_BAD_DATA, "invalid UTF-8");
		else
			fail(s, PARLEY_E_UNSUPPORTED, WS_CLOSE_UNSUPPORTED, "binary messages only");
		return;
	}
	/* the message buffer is released before anything can be fed again, so an idle session holds none */
	deliver(s, s->msg, s->msg_have);
	drop_msg(s);
}

/* n payload bytes of the current frame; win is the same bytes when the caller lets us unmask in place.
 * A failure is recorded in s->err (with the close frame queued). */
static void take_payload(ws_session *s, const uint8_t *in, uint8_t *win, size_t n)
{
	uint64_t off = s->fh.payload_len - s->remaining;
	s->remaining -= n;
	if (s->fh.opcode & 0x8) {
		apply_mask(s->ctrl + s->ctrl_have, in, n, s->fh.mask, off);
		s->ctrl_have = (uint8_t)(s->ctrl_have + n);
	} else if (s->text_message) {
		if (check_text(s, in, n, off) != PARLEY_OK) {
			fail(s, PARLEY_E_WS_BAD_UTF8, WS_CLOSE_BAD_DATA, "invalid UTF-8");
			return;
		}
	} else if (s->fh.fin && s->fh.opcode == WS_OP_BINARY && n == s->fh.payload_len &&
		   (!s->fh.masked || win != NULL)) {
		/* a whole unfragmented message in this input: no copy */
		if (s->fh.masked)
			apply_mask(win, win, n, s->fh.mask, 0);
		s->hdr_done = 0;
		s->hdr_have = 0;
		deliver(s, s->fh.masked ? win : in, n);
		return;
	} else if (n > 0 && msg_append(s, in, n, off) != PARLEY_OK) {
		fail(s, PARLEY_E_NOMEM, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	if (s->remaining == 0)
		end_frame(s);
}

/* Frame by frame until the input ends, a violation, or the peer's close (what follows it is ignored). */
static int feed(ws_session *s, const uint8_t *in, uint8_t *win, size_t len)
{
	size_t i = 0;
	while (i < len && s->err == PARLEY_OK && !s->close_received) {
		if (!s->hdr_done) {
			size_t used;
			int rc = take_header(s, in + i, len - i, &used);
			i += used;
			if (rc != PARLEY_OK)
				break; /* header incomplete (all of the input taken), or refused */
			if (s->remaining == 0)
				end_frame(s);
			continue;
		}
		size_t n = s->remaining < len - i ? (size_t)s->remaining : len - i;
		take_payload(s, in + i, win != NULL ? win + i : NULL, n);
		i += n;
	}
	return s->err;
}

/* ---- session API ---- */

int ws__session_new(ws_session **out, enum ws_role role, const ws_config *cfg, const ws_callbacks *cb)
{
	ws_session *s = parley__calloc(1, sizeof(*s));
	if (s == NULL)
		return PARLEY_E_NOMEM;
	s->role = (uint8_t)role;
	s->max_message = cfg != NULL && cfg->max_message ? cfg->max_message : WS_DEFAULT_MAX_MESSAGE;
	s->max_output = cfg != NULL && cfg->max_output ? cfg->max_output : WS_DEFAULT_MAX_OUTPUT;
	if (cb != NULL)
		s->cb = *cb;
	*out = s;
	return PARLEY_OK;
}

void ws__session_free(ws_session *s)
{
	if (s == NULL)
		return;
	parley__free(s->out);
	parley__free(s->msg);
	parley__free(s);
}

int ws__feed(ws_session *s, const uint8_t *in, size_t len)
{
	return feed(s, in, NULL, len);
}

int ws__feed_inplace(ws_session *s, uint8_t *in, size_t len)
{
	return feed(s, in, in, len);
}

static int queue(ws_session *s, unsigned opcode, const uint8_t *buf, size_t len, size_t limit)
{
	if (s->close_sent || s->err != PARLEY_OK)
		return PARLEY_E_CLOSED;
	return put_frame(s, opcode, buf, len, limit);
}

int ws__send_binary(ws_session *s, const uint8_t *buf, size_t len)
{
	return queue(s, WS_OP_BINARY, buf, len, s->max_output + WS_MAX_HDR);
}

int ws__send_ping(ws_session *s, const uint8_t *buf, size_t len)
{
	if (len > WS_MAX_CTRL)
		return PARLEY_E_INVAL;
	return queue(s, WS_OP_PING, buf, len, s->max_output + WS_MAX_HDR + WS_CTRL_FRAME);
}

int ws__close(ws_session *s, uint16_t code, const char *reason)
{
	if (!ws__close_code_valid(code))
		return PARLEY_E_INVAL;
	if (s->close_sent)
		return PARLEY_OK;
	if (put_close(s, code, (const uint8_t *)reason, reason != NULL ? strlen(reason) : 0) != PARLEY_OK) {
		/* the session cannot end cleanly any more; the socket layer cuts it */
		if (s->err == PARLEY_OK)
			s->err = PARLEY_E_NOMEM;
		return PARLEY_E_NOMEM;
	}
	return PARLEY_OK;
}

const uint8_t *ws__pending_output(ws_session *s, size_t *len)
{
	*len = s->out_len - s->out_off;
	return *len > 0 ? s->out + s->out_off : NULL;
}

void ws__consume_output(ws_session *s, size_t n)
{
	size_t avail = s->out_len - s->out_off;
	s->out_off += n < avail ? n : avail;
	if (s->out_off == s->out_len) {
		/* drained: an idle session keeps no output buffer */
		parley__free(s->out);
		s->out = NULL;
		s->out_off = s->out_len = s->out_cap = 0;
	}
}

size_t ws__pending_bytes(const ws_session *s)
{
	return s->out_len - s->out_off;
}

size_t ws__buffered_bytes(const ws_session *s)
{
	return s->out_cap + s->msg_cap;
}

void ws__set_max_message(ws_session *s, size_t max_message)
{
	s->max_message = max_message ? max_message : WS_DEFAULT_MAX_MESSAGE;
}

int ws__receiving(const ws_session *s)
{
	return s->hdr_have > 0 || s->hdr_done || s->in_message;
}

int ws__close_sent(const ws_session *s)
{
	return s->close_sent;
}

int ws__close_received(const ws_session *s)
{
	return s->close_received;
}

int ws__is_done(const ws_session *s)
{
	if (!s->close_sent)
		return 0;
	return s->close_received || s->err != PARLEY_OK;
}

int ws__error(const ws_session *s)
{
	return s->err;
}

uint16_t ws__peer_close_code(const ws_session *s)
{
	return s->peer_code;
}

uint16_t ws__sent_close_code(const ws_session *s)
{
	return s->close_sent ? s->sent_code : 0;
}
