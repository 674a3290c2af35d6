/* WebSocket session: wslay's event API driven from buffers, with parley's own frame checks in front.
 *
 * Why a checker in front of wslay: wslay refuses bad frames with one generic WSLAY_ERR_PROTO and picks
 * the close code itself, so "unmasked client frame", "too large" and "bad close payload" would look the
 * same to the caller. The tracker below walks the same byte stream frame by frame (headers only, plus
 * the <= 125-byte close payload) and holds back the bytes of a frame until its header — or, for a close
 * frame, its whole payload — has been judged. wslay therefore only ever sees frames we accept, and every
 * violation gets its own parley error and close code. wslay still does the reassembly, control-frame
 * interleaving, automatic pong and close reply.
 */
#include "codec/ws.h"

#include <string.h>

#include <parley/error.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "common/alloc.h"
#include "common/dynbuf.h"

/* a frame's bytes held until judged: longest header + longest close payload */
#define WS_HELD_MAX (14 + 125)

struct ws_session {
	wslay_event_context_ptr ctx;
	enum ws_role role;
	ws_config cfg;
	ws_callbacks cb;

	/* input being handed to wslay by recv_cb: held[0..held_len) then in[0..in_len), first `release`
	 * bytes of that sequence only */
	const uint8_t *in;
	size_t in_len;
	size_t release;
	size_t served;

	/* output: frames written by wslay, not yet taken by the socket layer = out.data[out_off..out.len) */
	dynbuf out;
	size_t out_off;

	/* tracker state for the frame currently being received */
	uint8_t held[WS_HELD_MAX];
	size_t held_len;
	uint8_t hdr[14];
	size_t hdr_have;
	int hdr_done;
	ws_frame_header fh;
	uint64_t remaining;
	uint8_t close_buf[125];
	size_t close_have;
	int in_message;    /* a fragmented data message has started and not finished */
	int text_message;  /* the current (or last) data message is text */
	uint64_t msg_len;  /* bytes of the current data message so far */

	int err;
	int in_recv;        /* inside wslay_event_recv: callbacks must not flush */
	int close_queued;
	uint16_t peer_code;
};

/* ---- wslay callbacks ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	ws_session *s = user;
	size_t n = 0;
	(void)flags;
	if (s->err != PARLEY_OK) {
		/* after a violation nothing more is read */
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	while (n < len && s->served < s->release) {
		size_t avail, chunk;
		const uint8_t *src;
		if (s->served < s->held_len) {
			src = s->held + s->served;
			avail = s->held_len - s->served;
		} else {
			src = s->in + (s->served - s->held_len);
			avail = s->release - s->served;
		}
		if (avail > s->release - s->served)
			avail = s->release - s->served;
		chunk = avail < len - n ? avail : len - n;
		memcpy(buf + n, src, chunk);
		n += chunk;
		s->served += chunk;
	}
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	ws_session *s = user;
	(void)flags;
	/* reclaim consumed space first so the bound counts only unsent bytes */
	if (s->out_off > 0) {
		dynbuf__consume(&s->out, s->out_off);
		s->out_off = 0;
	}
	size_t room = s->out.max - s->out.len;
	if (room == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > room)
		len = room;
	if (dynbuf__append(&s->out, data, len) != PARLEY_OK) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	randombytes_buf(buf, len);
	return 0;
}

/* Records the first violation and queues the matching close frame. */
static void fail(ws_session *s, int err, uint16_t code, const char *reason)
{
	if (s->err != PARLEY_OK)
		return;
	s->err = err;
	if (!s->close_queued) {
		s->close_queued = 1;
		wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, strlen(reason));
	}
}

static void on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	ws_session *s = user;
	(void)ctx;
	if (s->err != PARLEY_OK)
		return;
	switch (arg->opcode) {
	case WSLAY_BINARY_FRAME: {
		/* wslay hands NULL for an empty message; callers may memcmp/memcpy it, so never pass NULL */
		static const uint8_t empty[1];
		if (s->cb.on_message != NULL)
			s->cb.on_message(s->cb.ctx, arg->msg != NULL ? arg->msg : empty, arg->msg_length);
		break;
	}
	case WSLAY_TEXT_FRAME:
		if (!ws__utf8_valid(arg->msg, arg->msg_length))
			fail(s, PARLEY_E_WS_BAD_UTF8, WS_CLOSE_BAD_DATA, "invalid UTF-8");
		else
			fail(s, PARLEY_E_UNSUPPORTED, WS_CLOSE_UNSUPPORTED, "binary messages only");
		break;
	case WSLAY_CONNECTION_CLOSE:
		s->peer_code = arg->msg_length >= 2 ? arg->status_code : WS_CLOSE_NO_STATUS;
		/* wslay queues the reply itself, echoing the code */
		s->close_queued = 1;
		if (s->cb.on_peer_close != NULL)
			s->cb.on_peer_close(s->cb.ctx, s->peer_code, arg->msg_length >= 2 ? arg->msg + 2 : NULL,
					    arg->msg_length >= 2 ? arg->msg_length - 2 : 0);
		break;
	default: /* ping (answered by wslay) and pong */
		break;
	}
}

/* ---- frame tracker ---- */

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
	}
	if (h->payload_len > s->cfg.max_message - s->msg_len) {
		*code = WS_CLOSE_TOO_LARGE;
		return PARLEY_E_WS_TOO_LARGE;
	}
	s->msg_len += h->payload_len;
	s->in_message = !h->fin;
	return PARLEY_OK;
}

static int judge_close_payload(ws_session *s)
{
	if (s->close_have < 2)
		return PARLEY_OK; /* empty close: allowed, no status */
	uint16_t code = (uint16_t)((s->close_buf[0] << 8) | s->close_buf[1]);
	if (!ws__close_code_valid(code))
		return PARLEY_E_WS_BAD_CLOSE;
	if (!ws__utf8_valid(s->close_buf + 2, s->close_have - 2))
		return PARLEY_E_WS_BAD_CLOSE;
	return PARLEY_OK;
}

/* Walks the new input. Sets *release to how many bytes of held+in wslay may have; returns the first
 * violation (then *release ends before the offending frame) or PARLEY_OK. */
static int track(ws_session *s, const uint8_t *in, size_t len, size_t *release, uint16_t *code)
{
	size_t i = 0;
	size_t frame_start = 0; /* virtual index (held + in) of the current frame */
	int rc = PARLEY_OK;
	*code = WS_CLOSE_PROTOCOL;
	while (i < len || (s->hdr_done && s->remaining == 0)) {
		if (!s->hdr_done) {
			size_t take = sizeof(s->hdr) - s->hdr_have;
			if (take > len - i)
				take = len - i;
			memcpy(s->hdr + s->hdr_have, in + i, take);
			size_t before = s->hdr_have;
			rc = ws__frame_header_parse(s->hdr, s->hdr_have + take, &s->fh);
			if (rc == PARLEY_E_PROTO_TRUNCATED) {
				s->hdr_have += take;
				i += take;
				rc = PARLEY_OK;
				break;
			}
			if (rc == PARLEY_OK)
				rc = judge_header(s, code);
			if (rc != PARLEY_OK)
				goto fail;
			i += s->fh.header_len - before;
			s->hdr_have = s->fh.header_len;
			s->hdr_done = 1;
			s->remaining = s->fh.payload_len;
			s->close_have = 0;
			continue;
		}
		size_t n = s->remaining < len - i ? (size_t)s->remaining : len - i;
		if (s->fh.opcode == WS_OP_CLOSE) {
			for (size_t k = 0; k < n; k++) {
				uint8_t b = in[i + k];
				if (s->fh.masked)
					b ^= s->fh.mask[s->close_have % 4];
				s->close_buf[s->close_have++] = b;
			}
		}
		s->remaining -= n;
		i += n;
		if (s->remaining > 0)
			break;
		if (s->fh.opcode == WS_OP_CLOSE) {
			rc = judge_close_payload(s);
			if (rc != PARLEY_OK)
				goto fail;
		}
		s->hdr_done = 0;
		s->hdr_have = 0;
		frame_start = s->held_len + i;
	}
	/* hold back an unjudged header, and a close frame until its payload is complete */
	if (!s->hdr_done && s->hdr_have > 0)
		*release = frame_start;
	else if (s->hdr_done && s->fh.opcode == WS_OP_CLOSE)
		*release = frame_start;
	else
		*release = s->held_len + len;
	return PARLEY_OK;
fail:
	*release = frame_start;
	return rc;
}

/* ---- session API ---- */

static void flush(ws_session *s)
{
	if (s->in_recv)
		return;
	/* WOULDBLOCK (output full) is handled inside wslay and returns 0. Anything else means a frame may
	 * be half written: the session cannot continue, and the socket layer must drop the connection. */
	int r = wslay_event_send(s->ctx);
	if (r != 0 && s->err == PARLEY_OK)
		s->err = r == WSLAY_ERR_NOMEM || r == WSLAY_ERR_CALLBACK_FAILURE ? PARLEY_E_NOMEM : PARLEY_E_INTERNAL;
}

int ws__session_new(ws_session **out, enum ws_role role, const ws_config *cfg, const ws_callbacks *cb)
{
	struct wslay_event_callbacks wcb = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_msg_recv_callback = on_msg_cb,
	};
	ws_session *s = parley__calloc(1, sizeof(*s));
	int r;
	if (s == NULL)
		return PARLEY_E_NOMEM;
	s->role = role;
	s->cfg.max_message = cfg != NULL && cfg->max_message ? cfg->max_message : WS_DEFAULT_MAX_MESSAGE;
	s->cfg.max_output = cfg != NULL && cfg->max_output ? cfg->max_output : WS_DEFAULT_MAX_OUTPUT;
	if (cb != NULL)
		s->cb = *cb;
	dynbuf__init(&s->out, s->cfg.max_output);
	if (role == WS_ROLE_SERVER)
		r = wslay_event_context_server_init(&s->ctx, &wcb, s);
	else
		r = wslay_event_context_client_init(&s->ctx, &wcb, s);
	if (r != 0) {
		parley__free(s);
		return PARLEY_E_NOMEM;
	}
	/* our tracker refuses first; this is wslay's own backstop */
	wslay_event_config_set_max_recv_msg_length(s->ctx, s->cfg.max_message);
	*out = s;
	return PARLEY_OK;
}

void ws__session_free(ws_session *s)
{
	if (s == NULL)
		return;
	wslay_event_context_free(s->ctx);
	dynbuf__free(&s->out);
	parley__free(s);
}

/* Keeps the not-released tail (bytes of the current, still unjudged frame) for the next feed. */
static void keep_tail(ws_session *s, const uint8_t *in, size_t len, size_t release)
{
	size_t total = s->held_len + len;
	uint8_t tmp[WS_HELD_MAX];
	size_t k = 0;
	/* the tail is one frame's header (+ close payload), so it always fits in WS_HELD_MAX */
	for (size_t v = release; v < total && k < sizeof(tmp); v++)
		tmp[k++] = v < s->held_len ? s->held[v] : in[v - s->held_len];
	memcpy(s->held, tmp, k);
	s->held_len = k;
}

int ws__feed(ws_session *s, const uint8_t *in, size_t len)
{
	size_t release = 0;
	uint16_t code = WS_CLOSE_PROTOCOL;
	int rc;
	if (s->err != PARLEY_OK)
		return s->err;
	if (!wslay_event_want_read(s->ctx))
		return PARLEY_OK; /* close already received: the rest is ignored (§5.5.1) */
	rc = track(s, in, len, &release, &code);
	s->in = in;
	s->in_len = len;
	s->release = release;
	s->served = 0;
	s->in_recv = 1;
	int r = wslay_event_recv(s->ctx);
	s->in_recv = 0;
	if (r == 0 && s->err == PARLEY_OK && !s->close_queued && !wslay_event_get_read_enabled(s->ctx)) {
		/* wslay refused something itself and queued its own close. Our tracker lets only one kind of
		 * frame through that wslay can still refuse: text with invalid UTF-8, which wslay checks as it
		 * arrives and answers with 1007 without ever calling on_msg. */
		s->close_queued = 1;
		s->err = s->text_message ? PARLEY_E_WS_BAD_UTF8 : PARLEY_E_WS_PROTOCOL;
	}
	if (r != 0 && s->err == PARLEY_OK)
		fail(s, r == WSLAY_ERR_NOMEM ? PARLEY_E_NOMEM : PARLEY_E_WS_PROTOCOL, WS_CLOSE_PROTOCOL,
		     "protocol error");
	if (rc != PARLEY_OK) {
		const char *why = rc == PARLEY_E_WS_UNMASKED   ? "unmasked frame"
				  : rc == PARLEY_E_WS_TOO_LARGE ? "message too large"
				  : rc == PARLEY_E_WS_BAD_CLOSE ? "bad close frame"
								 : "protocol error";
		fail(s, rc, code, why);
	} else if (s->err == PARLEY_OK) {
		keep_tail(s, in, len, release);
	}
	s->in = NULL;
	s->in_len = 0;
	flush(s);
	return s->err;
}

static int queue(ws_session *s, uint8_t opcode, const uint8_t *buf, size_t len)
{
	struct wslay_event_msg msg = {.opcode = opcode, .msg = buf, .msg_length = len};
	if (s->close_queued || s->err != PARLEY_OK)
		return PARLEY_E_CLOSED;
	int r = wslay_event_queue_msg(s->ctx, &msg);
	if (r == WSLAY_ERR_NO_MORE_MSG)
		return PARLEY_E_CLOSED;
	if (r == WSLAY_ERR_NOMEM)
		return PARLEY_E_NOMEM;
	if (r != 0)
		return PARLEY_E_INVAL;
	flush(s);
	return s->err;
}

int ws__send_binary(ws_session *s, const uint8_t *buf, size_t len)
{
	return queue(s, WSLAY_BINARY_FRAME, buf, len);
}

int ws__send_ping(ws_session *s, const uint8_t *buf, size_t len)
{
	if (len > 125)
		return PARLEY_E_INVAL;
	return queue(s, WSLAY_PING, buf, len);
}

int ws__close(ws_session *s, uint16_t code, const char *reason)
{
	size_t rlen = reason != NULL ? strlen(reason) : 0;
	if (!ws__close_code_valid(code))
		return PARLEY_E_INVAL;
	if (s->close_queued)
		return PARLEY_OK;
	if (rlen > 123)
		rlen = 123;
	s->close_queued = 1;
	int r = wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, rlen);
	if (r == WSLAY_ERR_NOMEM)
		return PARLEY_E_NOMEM;
	flush(s);
	return PARLEY_OK;
}

const uint8_t *ws__pending_output(ws_session *s, size_t *len)
{
	flush(s);
	*len = s->out.len - s->out_off;
	return *len > 0 ? s->out.data + s->out_off : NULL;
}

void ws__consume_output(ws_session *s, size_t n)
{
	size_t avail = s->out.len - s->out_off;
	s->out_off += n < avail ? n : avail;
	if (s->out_off == s->out.len) {
		s->out.len = 0;
		s->out_off = 0;
	}
	flush(s);
}

size_t ws__pending_bytes(const ws_session *s)
{
	return (s->out.len - s->out_off) + wslay_event_get_queued_msg_length(s->ctx);
}

int ws__close_sent(const ws_session *s)
{
	return wslay_event_get_close_sent(s->ctx);
}

int ws__close_received(const ws_session *s)
{
	return wslay_event_get_close_received(s->ctx);
}

int ws__is_done(const ws_session *s)
{
	if (!ws__close_sent(s))
		return 0;
	return ws__close_received(s) || s->err != PARLEY_OK;
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
	return ws__close_sent(s) ? wslay_event_get_status_code_sent(s->ctx) : 0;
}
