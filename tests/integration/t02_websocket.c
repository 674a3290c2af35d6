/* 02: WebSocket rules (RFC 6455): ping/pong, fragmentation, masking, size limit, UTF-8, close codes.
 * After every violation the offender gets its specific close code and the server keeps serving. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static srv s;

static void challenge_and_ping(void)
{
	uint8_t nonce[32];
	int fd = pw_connect(s.port, nonce);
	IT_CHECK(fd >= 0);
	IT_EQ(pw_ping(fd, 1), 0);
	/* a WebSocket ping is answered with a pong carrying the same payload */
	IT_EQ(ws_send_frame(fd, 0x9, 1, 1, "abc", 3), 0);
	uint8_t buf[256];
	int op = 0;
	ssize_t n = ws_recv_frame(fd, &op, buf, sizeof buf, 3000);
	IT_EQ(op, 0xA);
	IT_EQ(n, 3);
	IT_CHECK(n == 3 && memcmp(buf, "abc", 3) == 0);
	/* clean close handshake: our 1000 is echoed */
	IT_EQ(ws_send_frame(fd, 0x8, 1, 1, "\x03\xe8", 2), 0);
	IT_EQ(ws_expect_close(fd, 3000), 1000);
	close(fd);
}

static void fragmented_request(void)
{
	int fd = pw_connect(s.port, NULL);
	IT_CHECK(fd >= 0);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__PingRequest ping = PARLEY__WIRE__PING_REQUEST__INIT;
	req.id = 42;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
	req.ping = &ping;
	uint8_t payload[600];
	memset(payload, 0xab, sizeof payload);
	ping.payload.data = payload;
	ping.payload.len = sizeof payload;
	dynbuf b;
	dynbuf__init(&b, 1 << 20);
	IT_EQ(wire__encode_request(&req, &b), 0);
	/* three fragments with a ping in between (control frames may interleave) */
	size_t third = b.len / 3;
	IT_EQ(ws_send_frame(fd, 0x2, 0, 1, b.data, third), 0);
	IT_EQ(ws_send_frame(fd, 0x9, 1, 1, "x", 1), 0);
	IT_EQ(ws_send_frame(fd, 0x0, 0, 1, b.data + third, third), 0);
	IT_EQ(ws_send_frame(fd, 0x0, 1, 1, b.data + 2 * third, b.len - 2 * third), 0);
	dynbuf__free(&b);
	wire_frame f;
	IT_EQ(pw_recv(fd, &f, 3000), 0);
	IT_CHECK(f.frame && f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE);
	if (f.frame && f.frame->response) {
		IT_EQ(f.frame->response->id, 42);
		IT_EQ(f.frame->response->status, 0);
		IT_CHECK(f.frame->response->ping && f.frame->response->ping->payload.len == sizeof payload);
	}
	wire__frame_free(&f);
	close(fd);
}

static int violation(int opcode, int masked, const void *payload, size_t len)
{
	int fd = pw_connect(s.port, NULL);
	if (fd < 0)
		return -2;
	ws_send_frame(fd, opcode, 1, masked, payload, len);
	int code = ws_expect_close(fd, 5000);
	close(fd);
	return code;
}

static void unmasked_frame(void)
{
	uint64_t before = metric_value(s.port, "parley_protocol_errors_total");
	IT_EQ(violation(0x2, 0, "\x0a\x00", 2), 1002);
	IT_CHECK(metric_value(s.port, "parley_protocol_errors_total") > before);
	IT_CHECK(server_alive(s.port));
}

static void oversized_message(void)
{
	size_t n = 300000; /* max_message_bytes is 65536 in this test */
	uint8_t *big = calloc(1, n);
	IT_EQ(violation(0x2, 1, big, n), 1009);
	free(big);
	/* the same limit applies to a message assembled from small fragments */
	int fd = pw_connect(s.port, NULL);
	uint8_t chunk[16384] = {0};
	ws_send_frame(fd, 0x2, 0, 1, chunk, sizeof chunk);
	for (int i = 0; i < 8; i++)
		ws_send_frame(fd, 0x0, 0, 1, chunk, sizeof chunk);
	IT_EQ(ws_expect_close(fd, 5000), 1009);
	close(fd);
	IT_CHECK(server_alive(s.port));
}

static void invalid_utf8_text(void)
{
	IT_EQ(violation(0x1, 1, "ok \xc3\x28 bad", 9), 1007);
	IT_EQ(violation(0x1, 1, "\xed\xa0\x80", 3), 1007); /* UTF-16 surrogate */
	IT_EQ(violation(0x1, 1, "\xc0\xaf", 2), 1007);     /* overlong '/' */
	/* valid text is refused too: parley speaks binary frames only */
	IT_EQ(violation(0x1, 1, "hello", 5), 1003);
	IT_CHECK(server_alive(s.port));
}

static void bad_close_and_opcodes(void)
{
	IT_EQ(violation(0x8, 1, "\x03\xed", 2), 1002); /* 1005 may not be sent */
	IT_EQ(violation(0x8, 1, "\x00", 1), 1002);     /* one-byte close payload */
	IT_EQ(violation(0x3, 1, "x", 1), 1002);        /* reserved opcode */
	IT_EQ(violation(0x0, 1, "x", 1), 1002);        /* continuation without a start */
	IT_CHECK(server_alive(s.port));
}

static void many_clients(void)
{
	enum { N = 200 };
	int fds[N];
	for (int i = 0; i < N; i++)
		fds[i] = pw_connect(s.port, NULL);
	int ok = 0;
	for (int i = 0; i < N; i++)
		ok += fds[i] >= 0 && pw_ping(fds[i], (uint64_t)i + 1) == 0;
	IT_EQ(ok, N);
	IT_CHECK(metric_value(s.port, "parley_websocket_connections_open") >= N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

int main(void)
{
	const char *extra[] = {"--max_message_bytes=65536", NULL};
	srv_start(&s, extra);
	IT_RUN(challenge_and_ping);
	IT_RUN(fragmented_request);
	IT_RUN(unmasked_frame);
	IT_RUN(oversized_message);
	IT_RUN(invalid_utf8_text);
	IT_RUN(bad_close_and_opcodes);
	IT_RUN(many_clients);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
