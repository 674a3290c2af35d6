/* parley-bench's MQTT 3.1.1 codec (tools/bench/mqtt.c): encoders produce the standard's bytes, the
 * parser takes exactly one packet, asks for more at every cut, and refuses what a broker must not
 * send (bad lengths, flags, types, ids) and anything above the packet limit. */
#include <string.h>

#include <parley/error.h>

#include "mqtt.h"
#include "tests/unit/test.h"

static void test_encode(void)
{
	dynbuf b;
	static const uint8_t connect[] = {0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 60, 0, 2, 'c', '1'};
	static const uint8_t publish[] = {0x32, 0x09, 0, 3, 'a', '/', 'b', 0, 5, 'x', 'y'};
	static const uint8_t subscribe[] = {0x82, 0x08, 0, 7, 0, 3, 'a', '/', 'b', 1};
	static const uint8_t puback[] = {0x40, 0x02, 0xff, 0xfe};

	dynbuf__init(&b, 1 << 20);
	TEST_EQ_INT(mqtt__connect(&b, "c1", 60, 0), PARLEY_OK);
	TEST_CHECK(b.len == sizeof(connect) && memcmp(b.data, connect, b.len) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(mqtt__publish(&b, "a/b", 1, 5, (const uint8_t *)"xy", 2), PARLEY_OK);
	TEST_CHECK(b.len == sizeof(publish) && memcmp(b.data, publish, b.len) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(mqtt__subscribe(&b, 7, "a/b", 1), PARLEY_OK);
	TEST_CHECK(b.len == sizeof(subscribe) && memcmp(b.data, subscribe, b.len) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(mqtt__puback(&b, 0xfffe), PARLEY_OK);
	TEST_CHECK(b.len == sizeof(puback) && memcmp(b.data, puback, b.len) == 0);
	dynbuf__reset(&b);
	TEST_EQ_INT(mqtt__pingreq(&b), PARLEY_OK);
	TEST_EQ_INT(mqtt__disconnect(&b), PARLEY_OK);
	TEST_CHECK(b.len == 4 && memcmp(b.data, "\xc0\x00\xe0\x00", 4) == 0);
	/* refused arguments leave the buffer as it was */
	TEST_EQ_INT(mqtt__puback(&b, 0), PARLEY_E_INVAL);
	TEST_EQ_INT(mqtt__publish(&b, "t", 1, 0, NULL, 0), PARLEY_E_INVAL);
	TEST_EQ_INT(mqtt__publish(&b, "t", 2, 1, NULL, 0), PARLEY_E_INVAL);
	TEST_EQ_INT(mqtt__subscribe(&b, 1, "", 1), PARLEY_E_INVAL);
	TEST_EQ_INT(b.len, 4);
	dynbuf__free(&b);
	/* a packet that does not fit the buffer's max is not appended at all */
	dynbuf__init(&b, 10);
	TEST_EQ_INT(mqtt__publish(&b, "a/b", 1, 5, (const uint8_t *)"xyz", 3), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(b.len, 0);
	dynbuf__free(&b);
}

static void test_parse_publish(void)
{
	uint8_t payload[300];
	mqtt_packet p;
	dynbuf b;
	size_t cut;

	memset(payload, 0xab, sizeof(payload));
	dynbuf__init(&b, 1 << 20);
	/* 300 bytes of payload: a two-byte remaining length */
	TEST_EQ_INT(mqtt__publish(&b, "t/r1", 1, 513, payload, sizeof(payload)), PARLEY_OK);
	TEST_EQ_INT(b.data[1] & 0x80, 0x80);
	TEST_EQ_INT(mqtt__pingreq(&b), PARLEY_OK); /* a second packet after it: must not be eaten */
	TEST_EQ_INT(mqtt__parse(b.data, b.len, 4096, &p), PARLEY_OK);
	TEST_EQ_INT(p.type, MQTT_PUBLISH);
	TEST_EQ_INT(p.len, b.len - 2);
	TEST_EQ_INT(p.qos, 1);
	TEST_EQ_INT(p.id, 513);
	TEST_CHECK(p.topic_len == 4 && memcmp(p.topic, "t/r1", 4) == 0);
	TEST_CHECK(p.payload_len == sizeof(payload) && memcmp(p.payload, payload, sizeof(payload)) == 0);
	for (cut = 0; cut < p.len; cut++)
		TEST_EQ_INT(mqtt__parse(b.data, cut, 4096, &p), PARLEY_E_PROTO_TRUNCATED);
	/* the limit counts the whole packet and is checked before the bytes are there */
	TEST_EQ_INT(mqtt__parse(b.data, 3, 300, &p), PARLEY_E_PROTO_FIELD_TOO_LARGE);
	b.data[0] = 0x36; /* QoS 3 */
	TEST_EQ_INT(mqtt__parse(b.data, b.len, 4096, &p), PARLEY_E_PROTO_MALFORMED);
	b.data[0] = 0x38; /* QoS 0 with DUP */
	TEST_EQ_INT(mqtt__parse(b.data, b.len, 4096, &p), PARLEY_E_PROTO_MALFORMED);
	b.data[0] = 0x32;
	b.data[3] = 0xff; /* topic length past the packet */
	TEST_EQ_INT(mqtt__parse(b.data, b.len, 4096, &p), PARLEY_E_PROTO_MALFORMED);
	dynbuf__free(&b);
	{
		static const uint8_t id0[] = {0x32, 0x05, 0, 1, 't', 0, 0}; /* packet id 0 */
		static const uint8_t qos0[] = {0x30, 0x04, 0, 1, 't', 'x'};
		TEST_EQ_INT(mqtt__parse(id0, sizeof(id0), 100, &p), PARLEY_E_PROTO_MALFORMED);
		TEST_EQ_INT(mqtt__parse(qos0, sizeof(qos0), 100, &p), PARLEY_OK);
		TEST_CHECK(p.qos == 0 && p.id == 0 && p.payload_len == 1 && p.payload[0] == 'x');
	}
}

static void test_parse_control(void)
{
	static const uint8_t connack[] = {0x20, 0x02, 0x01, 0x00};
	static const uint8_t connack_bad[] = {0x20, 0x02, 0x02, 0x00}; /* reserved bit set */
	static const uint8_t connack_refused[] = {0x20, 0x02, 0x00, 0x05};
	static const uint8_t puback[] = {0x40, 0x02, 0x12, 0x34};
	static const uint8_t puback_flags[] = {0x42, 0x02, 0x12, 0x34};
	static const uint8_t puback_id0[] = {0x40, 0x02, 0x00, 0x00};
	static const uint8_t suback[] = {0x90, 0x03, 0x00, 0x07, 0x01};
	static const uint8_t suback_fail[] = {0x90, 0x03, 0x00, 0x07, 0x80};
	static const uint8_t suback_bad[] = {0x90, 0x03, 0x00, 0x07, 0x03};
	static const uint8_t pingresp[] = {0xd0, 0x00};
	static const uint8_t connect[] = {0x10, 0x00};        /* a client's packet: never from a server */
	static const uint8_t len5[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}; /* 5-byte remaining length */
	mqtt_packet p;

	TEST_EQ_INT(mqtt__parse(connack, sizeof(connack), 100, &p), PARLEY_OK);
	TEST_CHECK(p.type == MQTT_CONNACK && p.session_present == 1 && p.rc == 0 && p.len == 4);
	TEST_EQ_INT(mqtt__parse(connack_bad, sizeof(connack_bad), 100, &p), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(mqtt__parse(connack_refused, sizeof(connack_refused), 100, &p), PARLEY_OK);
	TEST_EQ_INT(p.rc, 5);
	TEST_EQ_INT(mqtt__parse(puback, sizeof(puback), 100, &p), PARLEY_OK);
	TEST_CHECK(p.type == MQTT_PUBACK && p.id == 0x1234);
	TEST_EQ_INT(mqtt__parse(puback_flags, sizeof(puback_flags), 100, &p), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(mqtt__parse(puback_id0, sizeof(puback_id0), 100, &p), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(mqtt__parse(suback, sizeof(suback), 100, &p), PARLEY_OK);
	TEST_CHECK(p.type == MQTT_SUBACK && p.id == 7 && p.rc == 1);
	TEST_EQ_INT(mqtt__parse(suback_fail, sizeof(suback_fail), 100, &p), PARLEY_OK);
	TEST_EQ_INT(p.rc, 0x80);
	TEST_EQ_INT(mqtt__parse(suback_bad, sizeof(suback_bad), 100, &p), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(mqtt__parse(pingresp, sizeof(pingresp), 100, &p), PARLEY_OK);
	TEST_EQ_INT(p.type, MQTT_PINGRESP);
	TEST_EQ_INT(mqtt__parse(connect, sizeof(connect), 100, &p), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(mqtt__parse(len5, sizeof(len5), 1u << 30, &p), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(mqtt__parse(len5, 3, 1u << 30, &p), PARLEY_E_PROTO_TRUNCATED);
}

static void test_ids(void)
{
	uint64_t seq = 0;

	TEST_EQ_INT(mqtt__id_of(0), 1);
	TEST_EQ_INT(mqtt__id_of(65534), 65535);
	TEST_EQ_INT(mqtt__id_of(65535), 1);
	TEST_EQ_INT(mqtt__seq_of(mqtt__id_of(69999), 70000, 16, &seq), 0);
	TEST_EQ_INT(seq, 69999);
	TEST_EQ_INT(mqtt__seq_of(mqtt__id_of(69984), 70000, 16, &seq), 0);
	TEST_EQ_INT(seq, 69984);
	TEST_EQ_INT(mqtt__seq_of(mqtt__id_of(69983), 70000, 16, &seq), -1); /* older than the window */
	TEST_EQ_INT(mqtt__seq_of(mqtt__id_of(70000), 70000, 16, &seq), -1); /* not sent yet */
	TEST_EQ_INT(mqtt__seq_of(1, 0, 16, &seq), -1);                      /* nothing sent */
	TEST_EQ_INT(mqtt__seq_of(3, 2, 16, &seq), -1);                      /* below zero */
	TEST_EQ_INT(mqtt__seq_of(2, 2, 16, &seq), 0);
	TEST_EQ_INT(seq, 1);
	TEST_EQ_INT(mqtt__seq_of(0, 100, 16, &seq), -1);
}

/* Random and mutated input (a poor man's fuzzer that runs in every `meson test`, under ASan in
 * `make test`): the parser never reads past the buffer, never claims more than it has, and whatever it
 * accepts is within the limit. */
static void test_garbage(void)
{
	uint8_t buf[600], seed[64];
	mqtt_packet p;
	dynbuf b;
	unsigned i, n, bad = 0;
	uint64_t x = 0x9E3779B97F4A7C15ull;

	dynbuf__init(&b, 1 << 16);
	mqtt__publish(&b, "t/r1", 1, 9, (const uint8_t *)"payload", 7);
	memcpy(seed, b.data, b.len);
	for (i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		n = (unsigned)(x % sizeof(buf));
		if (i % 2) { /* mutate a valid packet */
			memcpy(buf, seed, b.len);
			buf[x % b.len] ^= (uint8_t)(x >> 8);
			n = (unsigned)(x >> 16) % (b.len + 1);
		} else {
			for (unsigned k = 0; k < n; k++)
				buf[k] = (uint8_t)(x >> (k % 56));
			buf[0] = (uint8_t)((x >> 3) & 0xf0); /* a type nibble, so some get past the first check */
		}
		int rc = mqtt__parse(buf, n, 512, &p);
		if (rc == PARLEY_OK && (p.len > n || p.len > 512 || p.payload_len > n || p.topic_len > n))
			bad++;
	}
	TEST_EQ_INT(bad, 0);
	dynbuf__free(&b);
}

int main(void)
{
	TEST_RUN(test_encode);
	TEST_RUN(test_parse_publish);
	TEST_RUN(test_parse_control);
	TEST_RUN(test_ids);
	TEST_RUN(test_garbage);
	TEST_EXIT();
}
