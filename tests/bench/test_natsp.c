/* parley-bench's NATS protocol codec (tools/bench/natsp.c): every server operation parses, one at a
 * time, with "more" at every cut; limits, argument counts, numbers and the CRLF after a payload are
 * enforced; encoders write the protocol's bytes and refuse subjects that would break the line; the
 * JetStream JSON lookups find what the bench reads and nothing else. */
#include <string.h>

#include <parley/error.h>

#include "natsp.h"
#include "tests/unit/test.h"

#define P(s) (const uint8_t *)(s), strlen(s)

static void test_parse_ops(void)
{
	natsp_op op;
	const char *info = "INFO {\"server_id\":\"X\",\"max_payload\":1048576}\r\nPING\r\n";

	TEST_EQ_INT(natsp__parse(P(info), 4096, 1 << 20, &op), PARLEY_OK);
	TEST_EQ_INT(op.kind, NATSP_INFO);
	TEST_EQ_INT(op.len, strlen(info) - 6);
	TEST_CHECK(op.arg_len == 39 && memcmp(op.arg, "{\"server_id\"", 12) == 0);
	TEST_EQ_INT(natsp__parse(P("PING\r\n"), 4096, 100, &op), PARLEY_OK);
	TEST_EQ_INT(op.kind, NATSP_PING);
	TEST_EQ_INT(natsp__parse(P("pong\r\n"), 4096, 100, &op), PARLEY_OK); /* case-insensitive */
	TEST_EQ_INT(op.kind, NATSP_PONG);
	TEST_EQ_INT(natsp__parse(P("+OK\r\n"), 4096, 100, &op), PARLEY_OK);
	TEST_EQ_INT(op.kind, NATSP_OK);
	TEST_EQ_INT(natsp__parse(P("-ERR 'Authorization Violation'\r\n"), 4096, 100, &op), PARLEY_OK);
	TEST_CHECK(op.kind == NATSP_ERR && op.arg_len == 25 && memcmp(op.arg, "'Authorization", 14) == 0);
	TEST_EQ_INT(natsp__parse(P("PING\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED); /* no CR */
	TEST_EQ_INT(natsp__parse(P("PINGX\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("PIN"), 4096, 100, &op), PARLEY_E_PROTO_TRUNCATED);
	TEST_EQ_INT(natsp__parse(P("INFO {\"a\":1}"), 8, 100, &op), PARLEY_E_PROTO_FIELD_TOO_LARGE);
}

static void test_parse_msg(void)
{
	natsp_op op;
	const char *m = "MSG a.r.1 7 a.a.3.42 5\r\nhello\r\nPING\r\n";
	const char *h = "HMSG d.1 2 $JS.ACK.S.c.1.9.9.0.0 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
	size_t cut, whole = strlen(m) - 6;

	TEST_EQ_INT(natsp__parse(P(m), 4096, 100, &op), PARLEY_OK);
	TEST_EQ_INT(op.kind, NATSP_MSG);
	TEST_EQ_INT(op.len, whole);
	TEST_CHECK(op.subject_len == 5 && memcmp(op.subject, "a.r.1", 5) == 0);
	TEST_EQ_INT(op.sid, 7);
	TEST_CHECK(op.reply_len == 8 && memcmp(op.reply, "a.a.3.42", 8) == 0);
	TEST_CHECK(op.payload_len == 5 && memcmp(op.payload, "hello", 5) == 0);
	for (cut = 0; cut < whole; cut++)
		TEST_EQ_INT(natsp__parse((const uint8_t *)m, cut, 4096, 100, &op), PARLEY_E_PROTO_TRUNCATED);
	TEST_EQ_INT(natsp__parse(P("msg\tx 1\t0\r\n\r\n"), 4096, 100, &op), PARLEY_OK); /* tabs, no reply */
	TEST_CHECK(op.kind == NATSP_MSG && op.reply == NULL && op.payload_len == 0 && op.sid == 1);
	TEST_EQ_INT(natsp__parse(P(h), 4096, 100, &op), PARLEY_OK);
	TEST_EQ_INT(op.kind, NATSP_HMSG);
	TEST_CHECK(op.hdr_len == 12 && memcmp(op.hdr, "NATS/1.0\r\n\r\n", 12) == 0);
	TEST_CHECK(op.payload_len == 2 && memcmp(op.payload, "hi", 2) == 0);
	TEST_EQ_INT(natsp__parse(P(m), 4096, 4, &op), PARLEY_E_PROTO_FIELD_TOO_LARGE); /* payload > 4 */
	TEST_EQ_INT(natsp__parse(P("MSG a 1 5\r\nhelloXX"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("MSG a x 5\r\nhello\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("MSG a 1 -5\r\nhello\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("MSG a 1\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("MSG a 1 r x 5\r\nhello\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("HMSG a 1 9 5\r\nhello\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(natsp__parse(P("MSG a 1 99999999999999999999\r\n"), 4096, 100, &op), PARLEY_E_PROTO_MALFORMED);
}

static void test_encode(void)
{
	dynbuf b;
	natsp_op op;

	dynbuf__init(&b, 1 << 16);
	TEST_EQ_INT(natsp__pub(&b, "t.r.1", "t.a.0.5", (const uint8_t *)"abc", 3), PARLEY_OK);
	TEST_CHECK(b.len == 26 && memcmp(b.data, "PUB t.r.1 t.a.0.5 3\r\nabc\r\n", 26) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(natsp__pub(&b, "x", NULL, NULL, 0), PARLEY_OK);
	TEST_CHECK(b.len == 11 && memcmp(b.data, "PUB x 0\r\n\r\n", 11) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(natsp__sub(&b, "t.a.0.*", 2), PARLEY_OK);
	TEST_EQ_INT(natsp__ping(&b), PARLEY_OK);
	TEST_EQ_INT(natsp__pong(&b), PARLEY_OK);
	TEST_CHECK(b.len == 27 && memcmp(b.data, "SUB t.a.0.* 2\r\nPING\r\nPONG\r\n", 27) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(natsp__connect(&b, "bench-c1"), PARLEY_OK);
	TEST_CHECK(b.len > 20 && memcmp(b.data, "CONNECT {", 9) == 0 && memcmp(b.data + b.len - 3, "}\r\n", 3) == 0);
	TEST_CHECK(strstr((const char *)b.data, "\"verbose\":false") != NULL);
	dynbuf__reset(&b);
	/* subjects that would break the control line are refused, the buffer untouched */
	TEST_EQ_INT(natsp__pub(&b, "a b", NULL, NULL, 0), PARLEY_E_INVAL);
	TEST_EQ_INT(natsp__pub(&b, "a", "r\r\n", NULL, 0), PARLEY_E_INVAL);
	TEST_EQ_INT(natsp__sub(&b, "", 1), PARLEY_E_INVAL);
	TEST_EQ_INT(natsp__connect(&b, "x\"y"), PARLEY_E_INVAL);
	TEST_EQ_INT(b.len, 0);
	/* what the encoder writes, the parser reads (as the server would send it back) */
	TEST_EQ_INT(natsp__pub(&b, "t.r.1", "t.a.0.5", (const uint8_t *)"abc", 3), PARLEY_OK);
	memcpy(b.data, "MSG", 3);
	TEST_EQ_INT(natsp__parse(b.data, b.len, 4096, 100, &op), PARLEY_E_PROTO_MALFORMED); /* no sid */
	dynbuf__free(&b);
	dynbuf__init(&b, 8);
	TEST_EQ_INT(natsp__pub(&b, "t", NULL, (const uint8_t *)"abc", 3), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(b.len, 0);
	dynbuf__free(&b);
}

static void test_json(void)
{
	const char *ack = "{\"stream\":\"Sb1\", \"seq\" : 4711}";
	const char *err = "{\"error\":{\"code\":503,\"err_code\":10077,\"description\":\"maximum messages exceeded\"},"
			  "\"stream\":\"S\",\"seq\":1}";
	char why[16];
	uint64_t v = 0;

	TEST_EQ_INT(natsp__json_error(ack, strlen(ack), why, sizeof(why)), 0);
	TEST_EQ_INT(natsp__json_u64(ack, strlen(ack), "seq", &v), 0);
	TEST_EQ_INT(v, 4711);
	TEST_EQ_INT(natsp__json_u64(ack, strlen(ack), "stream", &v), -1); /* a string, not a number */
	TEST_EQ_INT(natsp__json_u64(ack, strlen(ack), "missing", &v), -1);
	TEST_EQ_INT(natsp__json_error(err, strlen(err), why, sizeof(why)), 1);
	TEST_EQ_STR(why, "maximum message"); /* cut to the buffer */
	TEST_EQ_INT(natsp__subject_u64("b1.a.3.123", 10, &v), 0);
	TEST_EQ_INT(v, 123);
	TEST_EQ_INT(natsp__subject_u64("b1.a.3.", 7, &v), -1);
	TEST_EQ_INT(natsp__subject_u64("123", 3, &v), -1);
	TEST_EQ_INT(natsp__subject_u64("a.1x", 4, &v), -1);
}

/* Random and mutated input, as in test_mqtt.c: nothing read past the buffer, nothing claimed beyond
 * it, accepted payloads within the limit. */
static void test_garbage(void)
{
	static const char *seeds[] = {"MSG a.r.1 7 a.a.3.42 5\r\nhello\r\n", "HMSG d 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
				      "INFO {\"a\":1}\r\n", "-ERR 'x'\r\n", "PING\r\n"};
	uint8_t buf[256];
	natsp_op op;
	unsigned i, n, bad = 0;
	uint64_t x = 0x2545F4914F6CDD1Dull;
	const char *sd;
	size_t sl;

	for (i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		sd = seeds[x % 5];
		sl = strlen(sd);
		memcpy(buf, sd, sl);
		buf[(x >> 8) % sl] = (uint8_t)(x >> 20);
		if (i % 3 == 0)
			buf[(x >> 28) % sl] = " \r\n0123456789"[(x >> 36) % 13];
		n = (unsigned)((x >> 40) % (sl + 1));
		int rc = natsp__parse(buf, n, 64, 32, &op);
		if (rc == PARLEY_OK && (op.len > n || op.payload_len > 32 || op.subject_len > n || op.arg_len > n ||
					op.hdr_len + op.payload_len > n))
			bad++;
	}
	TEST_EQ_INT(bad, 0);
}

int main(void)
{
	TEST_RUN(test_parse_ops);
	TEST_RUN(test_parse_msg);
	TEST_RUN(test_encode);
	TEST_RUN(test_json);
	TEST_RUN(test_garbage);
	TEST_EXIT();
}
