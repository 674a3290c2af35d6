/* lib/codec/ws: a server session and a client session wired back to back in memory, hand-built frames
 * for every violation the server must refuse with its own error and close code, and the memory rules:
 * no buffer held while idle, none allocated for a message that arrives whole, a hard output bound. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "codec/ws.h"
#include "test.h"

typedef struct side {
	ws_session *s;
	dynbuf got; /* all messages received, concatenated */
	int nmsg;
	size_t last_len;
	uint16_t peer_code;
	int peer_closed;
} side;

static void on_msg(void *ctx, const uint8_t *buf, size_t len)
{
	side *sd = ctx;
	sd->nmsg++;
	sd->last_len = len;
	dynbuf__append(&sd->got, buf, len);
}

static void on_close(void *ctx, uint16_t code, const uint8_t *reason, size_t len)
{
	side *sd = ctx;
	sd->peer_closed = 1;
	sd->peer_code = code;
}

static void side_init(side *sd, enum ws_role role, size_t max_message)
{
	memset(sd, 0, sizeof(*sd));
	dynbuf__init(&sd->got, 1 << 24);
	ws_config cfg = {.max_message = max_message};
	ws_callbacks cb = {.ctx = sd, .on_message = on_msg, .on_peer_close = on_close};
	TEST_EQ_INT(ws__session_new(&sd->s, role, &cfg, &cb), PARLEY_OK);
}

static void side_free(side *sd)
{
	ws__session_free(sd->s);
	dynbuf__free(&sd->got);
}

/* Moves output from one side to the other in chunks of `step`, until both are quiet. */
static void pump(side *a, side *b, size_t step)
{
	for (int round = 0; round < 100000; round++) {
		int moved = 0;
		side *from[2] = {a, b}, *to[2] = {b, a};
		for (int k = 0; k < 2; k++) {
			size_t len;
			const uint8_t *p = ws__pending_output(from[k]->s, &len);
			if (len == 0)
				continue;
			size_t n = len < step ? len : step;
			uint8_t *copy = malloc(n);
			memcpy(copy, p, n);
			ws__consume_output(from[k]->s, n);
			ws__feed(to[k]->s, copy, n);
			free(copy);
			moved = 1;
		}
		if (!moved)
			return;
	}
}

static void test_messages_small_and_large(void)
{
	side srv, cli;
	side_init(&srv, WS_ROLE_SERVER, 1 << 20);
	side_init(&cli, WS_ROLE_CLIENT, 1 << 20);
	TEST_EQ_INT(ws__send_binary(cli.s, (const uint8_t *)"hello", 5), PARLEY_OK);
	pump(&srv, &cli, 1); /* byte by byte */
	TEST_EQ_INT(srv.nmsg, 1);
	TEST_CHECK(srv.got.len == 5 && memcmp(srv.got.data, "hello", 5) == 0);

	size_t big = 700000;
	uint8_t *buf = malloc(big);
	for (size_t i = 0; i < big; i++)
		buf[i] = (uint8_t)(i * 7);
	TEST_EQ_INT(ws__send_binary(cli.s, buf, big), PARLEY_OK);
	TEST_EQ_INT(ws__send_binary(srv.s, buf, big), PARLEY_OK);
	TEST_EQ_INT(ws__send_binary(srv.s, buf, 0), PARLEY_OK);
	pump(&srv, &cli, 4093);
	TEST_EQ_INT(srv.nmsg, 2);
	TEST_EQ_INT(srv.last_len, big);
	TEST_CHECK(memcmp(srv.got.data + 5, buf, big) == 0);
	TEST_EQ_INT(cli.nmsg, 2);
	TEST_CHECK(cli.got.len == big && memcmp(cli.got.data, buf, big) == 0);
	TEST_EQ_INT(cli.last_len, 0);

	/* close handshake started by the client */
	TEST_EQ_INT(ws__close(cli.s, WS_CLOSE_NORMAL, "bye"), PARLEY_OK);
	pump(&srv, &cli, 3);
	TEST_CHECK(srv.peer_closed);
	TEST_EQ_INT(srv.peer_code, 1000);
	TEST_EQ_INT(cli.peer_code, 1000);
	TEST_CHECK(ws__is_done(srv.s));
	TEST_CHECK(ws__is_done(cli.s));
	TEST_EQ_INT(ws__send_binary(cli.s, buf, 1), PARLEY_E_CLOSED);
	TEST_EQ_INT(ws__error(srv.s), PARLEY_OK);
	free(buf);
	side_free(&srv);
	side_free(&cli);
}

/* Builds one masked (mask != NULL) or unmasked frame. */
static size_t frame(uint8_t *out, int fin, unsigned opcode, const uint8_t *mask, const void *payload, size_t len)
{
	size_t o = 0;
	out[o++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	uint8_t mbit = mask != NULL ? 0x80 : 0;
	if (len < 126) {
		out[o++] = (uint8_t)(mbit | len);
	} else if (len <= 0xffff) {
		out[o++] = mbit | 126;
		out[o++] = (uint8_t)(len >> 8);
		out[o++] = (uint8_t)len;
	} else {
		out[o++] = mbit | 127;
		for (int i = 7; i >= 0; i--)
			out[o++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	if (mask != NULL) {
		memcpy(out + o, mask, 4);
		o += 4;
	}
	for (size_t i = 0; i < len; i++)
		out[o + i] = ((const uint8_t *)payload)[i] ^ (mask != NULL ? mask[i % 4] : 0);
	return o + len;
}

static const uint8_t M[4] = {0x11, 0x22, 0x33, 0x44};

/* Decodes the close frame the server queued: returns its code (0 if none). */
static uint16_t server_close_code(ws_session *s)
{
	size_t len;
	const uint8_t *p = ws__pending_output(s, &len);
	while (len >= 2) {
		ws_frame_header h;
		if (ws__frame_header_parse(p, len, &h) != PARLEY_OK)
			return 0;
		if (h.opcode == WS_OP_CLOSE && h.payload_len >= 2)
			return (uint16_t)((p[h.header_len] << 8) | p[h.header_len + 1]);
		p += h.header_len + h.payload_len;
		len -= h.header_len + h.payload_len;
	}
	return 0;
}

static void expect_violation(const uint8_t *bytes, size_t len, size_t step, int err, uint16_t code, int nmsg)
{
	side srv;
	side_init(&srv, WS_ROLE_SERVER, 1000);
	int rc = PARLEY_OK;
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		rc = ws__feed(srv.s, bytes + off, n);
		if (rc != PARLEY_OK)
			break;
	}
	TEST_EQ_INT(rc, err);
	TEST_EQ_INT(ws__error(srv.s), err);
	TEST_EQ_INT(server_close_code(srv.s), code);
	TEST_EQ_INT(ws__sent_close_code(srv.s), code);
	TEST_EQ_INT(srv.nmsg, nmsg);
	TEST_CHECK(ws__is_done(srv.s));
	side_free(&srv);
}

static void test_violations(void)
{
	uint8_t buf[4096];
	size_t n;
	for (size_t step = 1; step <= 64; step *= 4) {
		/* a good message first, then an unmasked frame */
		n = frame(buf, 1, WS_OP_BINARY, M, "ok", 2);
		n += frame(buf + n, 1, WS_OP_BINARY, NULL, "bad", 3);
		expect_violation(buf, n, step, PARLEY_E_WS_UNMASKED, 1002, 1);

		uint8_t big[1001];
		memset(big, 'x', sizeof(big));
		n = frame(buf, 1, WS_OP_BINARY, M, big, sizeof(big));
		expect_violation(buf, n, step, PARLEY_E_WS_TOO_LARGE, 1009, 0);
		/* too large only once fragments add up */
		n = frame(buf, 0, WS_OP_BINARY, M, big, 600);
		n += frame(buf + n, 1, WS_OP_CONT, M, big, 401);
		expect_violation(buf, n, step, PARLEY_E_WS_TOO_LARGE, 1009, 0);

		n = frame(buf, 1, WS_OP_TEXT, M, "\xc0\xaf", 2); /* overlong '/' */
		expect_violation(buf, n, step, PARLEY_E_WS_BAD_UTF8, 1007, 0);
		n = frame(buf, 1, WS_OP_TEXT, M, "\xed\xa0\x80", 3); /* surrogate */
		expect_violation(buf, n, step, PARLEY_E_WS_BAD_UTF8, 1007, 0);
		n = frame(buf, 1, WS_OP_TEXT, M, "h\xc3\xa9llo", 6); /* valid text: parley is binary only */
		expect_violation(buf, n, step, PARLEY_E_UNSUPPORTED, 1003, 0);

		uint8_t cl[4] = {0x03, 0xed, 'x', 'y'}; /* 1005 may not be sent */
		n = frame(buf, 1, WS_OP_CLOSE, M, cl, 2);
		expect_violation(buf, n, step, PARLEY_E_WS_BAD_CLOSE, 1002, 0);
		n = frame(buf, 1, WS_OP_CLOSE, M, cl, 1); /* one-byte close payload */
		expect_violation(buf, n, step, PARLEY_E_WS_BAD_CLOSE, 1002, 0);
		uint8_t cl2[4] = {0x03, 0xe8, 0xff, 0xfe}; /* 1000 with a non-UTF-8 reason */
		n = frame(buf, 1, WS_OP_CLOSE, M, cl2, 4);
		expect_violation(buf, n, step, PARLEY_E_WS_BAD_CLOSE, 1002, 0);

		n = frame(buf, 1, WS_OP_CONT, M, "x", 1); /* continuation with nothing to continue */
		expect_violation(buf, n, step, PARLEY_E_WS_PROTOCOL, 1002, 0);
		n = frame(buf, 0, WS_OP_PING, M, "x", 1); /* fragmented control frame */
		expect_violation(buf, n, step, PARLEY_E_WS_PROTOCOL, 1002, 0);
		n = frame(buf, 1, 0x3, M, "x", 1); /* reserved opcode */
		expect_violation(buf, n, step, PARLEY_E_WS_PROTOCOL, 1002, 0);
		n = frame(buf, 1, WS_OP_BINARY, M, "x", 1);
		buf[0] |= 0x40; /* RSV1 without an extension */
		expect_violation(buf, n, step, PARLEY_E_WS_PROTOCOL, 1002, 0);
		n = frame(buf, 0, WS_OP_BINARY, M, "a", 1);
		n += frame(buf + n, 1, WS_OP_BINARY, M, "b", 1); /* new message before the first ended */
		expect_violation(buf, n, step, PARLEY_E_WS_PROTOCOL, 1002, 0);
	}
}

static void test_fragments_with_ping(void)
{
	uint8_t buf[4096];
	size_t n = 0;
	side srv;
	side_init(&srv, WS_ROLE_SERVER, 1000);
	n += frame(buf + n, 0, WS_OP_BINARY, M, "abc", 3);
	n += frame(buf + n, 1, WS_OP_PING, M, "pi", 2);
	n += frame(buf + n, 0, WS_OP_CONT, M, "def", 3);
	n += frame(buf + n, 1, WS_OP_PONG, M, "", 0);
	n += frame(buf + n, 1, WS_OP_CONT, M, "gh", 2);
	uint8_t cl[5] = {0x0f, 0xa0, 'b', 'y', 'e'}; /* 4000, an application code */
	n += frame(buf + n, 1, WS_OP_CLOSE, M, cl, 5);
	for (size_t i = 0; i < n; i++)
		TEST_EQ_INT(ws__feed(srv.s, buf + i, 1), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 1);
	TEST_CHECK(srv.got.len == 8 && memcmp(srv.got.data, "abcdefgh", 8) == 0);
	TEST_EQ_INT(srv.peer_code, 4000);
	/* output: the pong (unmasked, payload "pi") then the close echo */
	size_t len;
	const uint8_t *p = ws__pending_output(srv.s, &len);
	ws_frame_header h;
	TEST_EQ_INT(ws__frame_header_parse(p, len, &h), PARLEY_OK);
	TEST_EQ_INT(h.opcode, WS_OP_PONG);
	TEST_EQ_INT(h.masked, 0);
	TEST_CHECK(h.payload_len == 2 && memcmp(p + h.header_len, "pi", 2) == 0);
	TEST_EQ_INT(server_close_code(srv.s), 4000);
	TEST_CHECK(ws__is_done(srv.s));
	TEST_EQ_INT(ws__error(srv.s), PARLEY_OK);
	side_free(&srv);
}

static void test_ping_pair_and_client_rules(void)
{
	side srv, cli;
	side_init(&srv, WS_ROLE_SERVER, 1000);
	side_init(&cli, WS_ROLE_CLIENT, 1000);
	TEST_EQ_INT(ws__send_ping(srv.s, (const uint8_t *)"x", 1), PARLEY_OK);
	pump(&srv, &cli, 2);
	TEST_EQ_INT(ws__error(cli.s), PARLEY_OK);
	TEST_EQ_INT(ws__error(srv.s), PARLEY_OK);
	/* client frames are masked on the wire */
	ws__send_binary(cli.s, (const uint8_t *)"m", 1);
	size_t len;
	const uint8_t *p = ws__pending_output(cli.s, &len);
	ws_frame_header h;
	TEST_EQ_INT(ws__frame_header_parse(p, len, &h), PARLEY_OK);
	TEST_EQ_INT(h.masked, 1);
	/* a masked frame from the server is refused by the client */
	uint8_t buf[64];
	size_t n = frame(buf, 1, WS_OP_BINARY, M, "x", 1);
	TEST_EQ_INT(ws__feed(cli.s, buf, n), PARLEY_E_WS_PROTOCOL);
	/* server-initiated going-away close */
	TEST_EQ_INT(ws__close(srv.s, WS_CLOSE_GOING_AWAY, "shutdown"), PARLEY_OK);
	TEST_EQ_INT(ws__close(srv.s, 1005, NULL), PARLEY_E_INVAL);
	side_free(&srv);
	side_free(&cli);
}

static void test_pure_helpers(void)
{
	TEST_CHECK(ws__utf8_valid((const uint8_t *)"", 0));
	TEST_CHECK(ws__utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	TEST_CHECK(!ws__utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	TEST_CHECK(!ws__utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));    /* overlong */
	TEST_CHECK(!ws__utf8_valid((const uint8_t *)"\xf0\x80\x80\xaf", 4)); /* overlong */
	TEST_CHECK(!ws__utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* truncated */
	TEST_CHECK(ws__utf8_valid((const uint8_t *)"\xe2\x82\xac", 3));      /* euro */
	TEST_CHECK(!ws__utf8_valid((const uint8_t *)"\x80", 1));
	TEST_CHECK(ws__close_code_valid(1000) && ws__close_code_valid(4999) && ws__close_code_valid(1011));
	TEST_CHECK(!ws__close_code_valid(999) && !ws__close_code_valid(1005) && !ws__close_code_valid(1006) &&
		   !ws__close_code_valid(1015) && !ws__close_code_valid(2000) && !ws__close_code_valid(5000));
	ws_frame_header h;
	const uint8_t nonmin[] = {0x82, 0x7e, 0x00, 0x05};
	TEST_EQ_INT(ws__frame_header_parse(nonmin, sizeof(nonmin), &h), PARLEY_E_WS_PROTOCOL);
	const uint8_t top[] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0};
	TEST_EQ_INT(ws__frame_header_parse(top, sizeof(top), &h), PARLEY_E_WS_PROTOCOL);
	TEST_EQ_INT(ws__frame_header_parse(top, 1, &h), PARLEY_E_PROTO_TRUNCATED);
	const uint8_t bigping[] = {0x89, 0x7e, 0x01, 0x00};
	TEST_EQ_INT(ws__frame_header_parse(bigping, 2, &h), PARLEY_E_WS_PROTOCOL);
}

/* Each of our allocations failing in turn: the session reports NOMEM and never crashes. */
static void test_alloc_failures(void)
{
	uint8_t buf[256];
	size_t n = frame(buf, 1, WS_OP_BINARY, M, "hello", 5);
	int saw_ok = 0;
	for (unsigned long nth = 1; nth < 50 && !saw_ok; nth++) {
		ws_session *s = NULL;
		ws_callbacks cb = {0};
		parley__alloc_fail_after(nth);
		int rc = ws__session_new(&s, WS_ROLE_SERVER, NULL, &cb);
		if (rc == PARLEY_OK) {
			rc = ws__feed(s, buf, n);
			if (rc == PARLEY_OK)
				rc = ws__send_binary(s, (const uint8_t *)"x", 1);
			size_t len;
			ws__pending_output(s, &len);
			if (rc == PARLEY_OK && len > 0)
				saw_ok = 1;
			ws__session_free(s);
		}
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
	}
	TEST_CHECK(saw_ok);
}

/* An idle session holds no buffer: output is freed once taken, reassembly once delivered. */
static void test_buffers_released_when_drained(void)
{
	side srv, cli;
	side_init(&srv, WS_ROLE_SERVER, 1 << 20);
	side_init(&cli, WS_ROLE_CLIENT, 1 << 20);
	TEST_EQ_INT(ws__buffered_bytes(srv.s), 0);
	TEST_EQ_INT(ws__send_binary(srv.s, (const uint8_t *)"hello", 5), PARLEY_OK);
	TEST_EQ_INT(ws__send_binary(srv.s, (const uint8_t *)"world", 5), PARLEY_OK);
	TEST_CHECK(ws__buffered_bytes(srv.s) > 0);
	size_t len;
	ws__pending_output(srv.s, &len);
	TEST_EQ_INT(len, 14);
	ws__consume_output(srv.s, 3); /* partly taken: still held */
	TEST_CHECK(ws__buffered_bytes(srv.s) > 0);
	TEST_EQ_INT(ws__pending_bytes(srv.s), 11);
	ws__consume_output(srv.s, 11);
	TEST_EQ_INT(ws__pending_bytes(srv.s), 0);
	TEST_EQ_INT(ws__buffered_bytes(srv.s), 0);

	/* a message split over many feeds is reassembled, then the buffer goes */
	size_t big = 100000;
	uint8_t *buf = malloc(big);
	for (size_t i = 0; i < big; i++)
		buf[i] = (uint8_t)(i * 13);
	TEST_EQ_INT(ws__send_binary(cli.s, buf, big), PARLEY_OK);
	const uint8_t *p = ws__pending_output(cli.s, &len);
	uint8_t *wire = malloc(len);
	memcpy(wire, p, len);
	ws__consume_output(cli.s, len);
	TEST_EQ_INT(ws__buffered_bytes(cli.s), 0);
	size_t half = len / 2;
	TEST_EQ_INT(ws__feed(srv.s, wire, half), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 0);
	/* it grows with what arrived, not with the 100000 bytes the header announced */
	TEST_CHECK(ws__buffered_bytes(srv.s) > 0 && ws__buffered_bytes(srv.s) <= half);
	TEST_EQ_INT(ws__feed(srv.s, wire + half, len - half), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 1);
	TEST_CHECK(srv.got.len == big && memcmp(srv.got.data, buf, big) == 0);
	TEST_EQ_INT(ws__buffered_bytes(srv.s), 0);

	/* fragments: held while the message is open, released when it completes */
	uint8_t fr[256];
	size_t n = frame(fr, 0, WS_OP_BINARY, M, "abc", 3);
	TEST_EQ_INT(ws__feed(srv.s, fr, n), PARLEY_OK);
	TEST_CHECK(ws__buffered_bytes(srv.s) > 0);
	n = frame(fr, 1, WS_OP_CONT, M, "de", 2);
	TEST_EQ_INT(ws__feed(srv.s, fr, n), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 2);
	TEST_EQ_INT(srv.last_len, 5);
	TEST_EQ_INT(ws__buffered_bytes(srv.s), 0);
	free(wire);
	free(buf);
	side_free(&srv);
	side_free(&cli);
}

/* ws__feed_inplace: masked messages that arrive whole are unmasked in the caller's buffer and delivered
 * without a single allocation, several per feed; a message cut at the end of the input is not. */
static void test_inplace_without_allocation(void)
{
	side srv;
	side_init(&srv, WS_ROLE_SERVER, 1 << 20);
	uint8_t wire[4096];
	size_t n = frame(wire, 1, WS_OP_BINARY, M, "first", 5);
	n += frame(wire + n, 1, WS_OP_PONG, M, "", 0);
	uint8_t mid[300];
	memset(mid, 'm', sizeof(mid));
	n += frame(wire + n, 1, WS_OP_BINARY, M, mid, sizeof(mid));
	n += frame(wire + n, 1, WS_OP_BINARY, M, "", 0);
	size_t cut = n;
	n += frame(wire + n, 1, WS_OP_BINARY, M, "last", 4);
	int err;
	dynbuf__reserve(&srv.got, 4096, &err); /* the test's own recorder must not allocate either */
	parley__alloc_fail_after(1); /* any allocation would now fail the session */
	TEST_EQ_INT(ws__feed_inplace(srv.s, wire, cut), PARLEY_OK);
	TEST_EQ_INT(parley__alloc_count(), 0);
	parley__alloc_fail_after(0);
	TEST_EQ_INT(srv.nmsg, 3);
	TEST_CHECK(srv.got.len == 305 && memcmp(srv.got.data, "first", 5) == 0 &&
		   memcmp(srv.got.data + 5, mid, sizeof(mid)) == 0);
	TEST_EQ_INT(srv.last_len, 0);
	/* "last" split in the middle of its payload: reassembled (one allocation), then released */
	TEST_EQ_INT(ws__feed_inplace(srv.s, wire + cut, n - cut - 2), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 3);
	TEST_EQ_INT(ws__feed_inplace(srv.s, wire + n - 2, 2), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 4);
	TEST_CHECK(srv.got.len == 309 && memcmp(srv.got.data + 305, "last", 4) == 0);
	TEST_EQ_INT(ws__buffered_bytes(srv.s), 0);
	TEST_EQ_INT(ws__error(srv.s), PARLEY_OK);
	side_free(&srv);
}

/* The output bound is hard: data past max_output is refused (and the session goes on), pongs to a
 * peer that does not read are dropped at the bound, our close frame always fits. */
static void test_output_bound(void)
{
	ws_session *s;
	ws_config cfg = {.max_message = 1000, .max_output = 1000};
	ws_callbacks cb = {0};
	uint8_t data[600];
	memset(data, 'd', sizeof(data));
	TEST_EQ_INT(ws__session_new(&s, WS_ROLE_SERVER, &cfg, &cb), PARLEY_OK);
	TEST_EQ_INT(ws__send_binary(s, data, 600), PARLEY_OK);
	TEST_EQ_INT(ws__send_binary(s, data, 600), PARLEY_E_SLOW_CONSUMER);
	TEST_EQ_INT(ws__send_binary(s, data, 390), PARLEY_OK); /* 604 + 392 <= 1000 + header */
	size_t before = ws__pending_bytes(s);
	TEST_EQ_INT(ws__send_binary(s, data, 100), PARLEY_E_SLOW_CONSUMER);
	TEST_EQ_INT(ws__pending_bytes(s), before);
	/* pings keep coming: answered while there is control-frame room, then not, without error */
	uint8_t ping[256];
	size_t n = frame(ping, 1, WS_OP_PING, M, "0123456789", 10);
	for (int i = 0; i < 50; i++)
		TEST_EQ_INT(ws__feed(s, ping, n), PARLEY_OK);
	size_t bounded = ws__pending_bytes(s);
	TEST_CHECK(bounded > before && bounded <= 1000 + 14 + 131);
	TEST_EQ_INT(ws__close(s, WS_CLOSE_GOING_AWAY, "bye"), PARLEY_OK);
	TEST_CHECK(ws__close_sent(s));
	TEST_CHECK(ws__pending_bytes(s) > bounded);
	TEST_EQ_INT(ws__send_binary(s, data, 1), PARLEY_E_CLOSED);
	/* what was refused never reached the wire: every frame in the output is whole */
	size_t len, off = 0;
	const uint8_t *p = ws__pending_output(s, &len);
	int frames = 0;
	ws_frame_header h;
	while (off < len && ws__frame_header_parse(p + off, len - off, &h) == PARLEY_OK) {
		off += h.header_len + h.payload_len;
		frames++;
	}
	TEST_EQ_INT(off, len);
	TEST_CHECK(frames >= 4);
	ws__session_free(s);
}

/* Text is refused either way, but checked as it arrives like before: a character split between frames
 * is fine (then 1003 at the end), a bad byte in a later fragment fails at once (1007). */
static void test_text_across_frames(void)
{
	uint8_t buf[256];
	size_t n = frame(buf, 0, WS_OP_TEXT, M, "a\xe2\x82", 3);
	n += frame(buf + n, 1, WS_OP_CONT, M, "\xac", 1);
	expect_violation(buf, n, 1, PARLEY_E_UNSUPPORTED, 1003, 0);
	n = frame(buf, 0, WS_OP_TEXT, M, "ok", 2);
	n += frame(buf + n, 0, WS_OP_CONT, M, "\xff", 1);
	expect_violation(buf, n, 64, PARLEY_E_WS_BAD_UTF8, 1007, 0);
	n = frame(buf, 1, WS_OP_TEXT, M, "a\xe2\x82", 3); /* ends inside a character */
	expect_violation(buf, n, 2, PARLEY_E_WS_BAD_UTF8, 1007, 0);
	/* the incremental check agrees with the whole-buffer one at every split */
	static const char *const samples[] = {"h\xc3\xa9llo", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80",
					      "\xe0\x80\xaf", "\xed\xa0\x80", "\xed\x9f\xbf", "\xf0\x90\x80\x80",
					      "\xe2\x82", "\xc1\xbf"};
	for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++) {
		const uint8_t *t = (const uint8_t *)samples[k];
		size_t tl = strlen(samples[k]);
		for (size_t cutp = 0; cutp <= tl; cutp++) {
			ws_utf8 u = {0};
			int ok = ws__utf8_feed(&u, t, cutp) && ws__utf8_feed(&u, t + cutp, tl - cutp) && u.need == 0;
			TEST_EQ_INT(ok, ws__utf8_valid(t, tl));
		}
	}
}

/* A peer's close is echoed with its code and reason; an empty one with an empty close (sent 1005). */
static void test_close_echo(void)
{
	uint8_t buf[64];
	side srv;
	side_init(&srv, WS_ROLE_SERVER, 1000);
	size_t n = frame(buf, 1, WS_OP_CLOSE, M, "", 0);
	n += frame(buf + n, 1, WS_OP_BINARY, M, "late", 4); /* after the close: ignored */
	TEST_EQ_INT(ws__feed(srv.s, buf, n), PARLEY_OK);
	TEST_EQ_INT(srv.nmsg, 0);
	TEST_EQ_INT(srv.peer_code, WS_CLOSE_NO_STATUS);
	TEST_EQ_INT(ws__sent_close_code(srv.s), WS_CLOSE_NO_STATUS);
	size_t len;
	const uint8_t *p = ws__pending_output(srv.s, &len);
	TEST_CHECK(len == 2 && p[0] == 0x88 && p[1] == 0);
	TEST_CHECK(ws__is_done(srv.s));
	side_free(&srv);

	side_init(&srv, WS_ROLE_SERVER, 1000);
	uint8_t cl[6] = {0x0b, 0xb8, 'g', 'o', 'n', 'e'}; /* 3000 "gone" */
	n = frame(buf, 1, WS_OP_CLOSE, M, cl, sizeof(cl));
	TEST_EQ_INT(ws__feed(srv.s, buf, n), PARLEY_OK);
	p = ws__pending_output(srv.s, &len);
	TEST_CHECK(len == 8 && p[1] == 6 && memcmp(p + 2, cl, 6) == 0);
	TEST_EQ_INT(ws__sent_close_code(srv.s), 3000);
	TEST_EQ_INT(ws__send_ping(srv.s, (const uint8_t *)"x", 1), PARLEY_E_CLOSED);
	side_free(&srv);
}

/* The limit can be raised (parleyd: after authentication) and applies from the next frame header;
 * ws__receiving tells a message in progress, header bytes included, from a session between messages. */
static void test_limit_change_and_receiving(void)
{
	side srv, cli;
	uint8_t big[3000];
	memset(big, 'b', sizeof(big));
	side_init(&srv, WS_ROLE_SERVER, 1024);
	side_init(&cli, WS_ROLE_CLIENT, 0);
	TEST_CHECK(!ws__receiving(srv.s));
	/* a message split so the server sees one header byte, then half the payload */
	TEST_EQ_INT(ws__send_binary(cli.s, big, 500), PARLEY_OK);
	size_t len;
	const uint8_t *p = ws__pending_output(cli.s, &len);
	uint8_t frame[600];
	TEST_CHECK(len <= sizeof(frame));
	memcpy(frame, p, len);
	ws__consume_output(cli.s, len);
	TEST_EQ_INT(ws__feed(srv.s, frame, 1), PARLEY_OK);
	TEST_CHECK(ws__receiving(srv.s));
	TEST_EQ_INT(ws__feed(srv.s, frame + 1, len / 2), PARLEY_OK);
	TEST_CHECK(ws__receiving(srv.s));
	TEST_EQ_INT(ws__feed(srv.s, frame + 1 + len / 2, len - 1 - len / 2), PARLEY_OK);
	TEST_CHECK(!ws__receiving(srv.s));
	TEST_EQ_INT(srv.nmsg, 1);
	/* raised: 3000 bytes now pass */
	ws__set_max_message(srv.s, 4096);
	TEST_EQ_INT(ws__send_binary(cli.s, big, sizeof(big)), PARLEY_OK);
	pump(&cli, &srv, 700);
	TEST_EQ_INT(srv.nmsg, 2);
	TEST_EQ_INT(srv.last_len, sizeof(big));
	TEST_CHECK(!ws__receiving(srv.s));
	/* lowered again: refused at its header, 1009 */
	ws__set_max_message(srv.s, 1024);
	TEST_EQ_INT(ws__send_binary(cli.s, big, sizeof(big)), PARLEY_OK);
	pump(&cli, &srv, 700);
	TEST_EQ_INT(srv.nmsg, 2);
	TEST_EQ_INT(ws__error(srv.s), PARLEY_E_WS_TOO_LARGE);
	TEST_EQ_INT(ws__sent_close_code(srv.s), WS_CLOSE_TOO_LARGE);
	side_free(&srv);
	side_free(&cli);
}

int main(void)
{
	TEST_RUN(test_messages_small_and_large);
	TEST_RUN(test_violations);
	TEST_RUN(test_fragments_with_ping);
	TEST_RUN(test_ping_pair_and_client_rules);
	TEST_RUN(test_pure_helpers);
	TEST_RUN(test_alloc_failures);
	TEST_RUN(test_buffers_released_when_drained);
	TEST_RUN(test_inplace_without_allocation);
	TEST_RUN(test_output_bound);
	TEST_RUN(test_text_across_frames);
	TEST_RUN(test_close_echo);
	TEST_RUN(test_limit_change_and_receiving);
	TEST_EXIT();
}
