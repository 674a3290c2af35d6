/* lib/wire: round trips and every error path of wire__decode_frame. */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "test.h"
#include "wire/wire.h"

static uint8_t key32[32], sig64[64];

/* Encodes Frame{Request{id, register{...}}} into b. */
static void enc_register(dynbuf *b, uint64_t id, const char *handle, size_t keylen, const char *name,
			 size_t siglen)
{
	Parley__Wire__RegisterRequest rr = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	uint8_t key[64] = {0}, sig[128] = {0};
	memset(key, 0xab, sizeof(key));
	memset(sig, 0xcd, sizeof(sig));
	rr.handle = (char *)handle;
	rr.device_key.data = key;
	rr.device_key.len = keylen;
	rr.device_name = (char *)name;
	rr.signature.data = sig;
	rr.signature.len = siglen;
	r.id = id;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	r.register_ = &rr;
	dynbuf__reset(b);
	TEST_EQ_INT(wire__encode_request(&r, b), PARLEY_OK);
}

static int dec(const dynbuf *b, wire_frame *f)
{
	return wire__decode_frame(b->data, b->len, NULL, f);
}

static void test_round_trip_register(void)
{
	dynbuf b;
	wire_frame f;
	dynbuf__init(&b, 4096);
	enc_register(&b, 42, "alice", 32, "laptop", 64);
	TEST_EQ_INT(dec(&b, &f), PARLEY_OK);
	TEST_CHECK(f.frame != NULL);
	TEST_EQ_INT(f.has_id, 1);
	TEST_EQ_INT(f.id, 42);
	TEST_EQ_INT(f.kind, PARLEY__WIRE__FRAME__KIND_REQUEST);
	TEST_EQ_INT(f.frame->request->body_case, PARLEY__WIRE__REQUEST__BODY_REGISTER);
	TEST_EQ_STR(f.frame->request->register_->handle, "alice");
	TEST_EQ_STR(f.frame->request->register_->device_name, "laptop");
	TEST_EQ_INT(f.frame->request->register_->device_key.len, 32);
	TEST_EQ_STR(wire__request_kind_name(f.frame->request->body_case), "register");
	TEST_EQ_STR(wire__request_kind_name(PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE), "send_message");
	TEST_EQ_STR(wire__request_kind_name(1), "unknown"); /* the id field, not a body */
	TEST_EQ_STR(wire__request_kind_name(9999), "unknown");
	wire__frame_free(&f);
	wire__frame_free(&f); /* idempotent */
	dynbuf__free(&b);
}

static void test_round_trip_others(void)
{
	dynbuf b;
	wire_frame f;
	uint8_t nonce[32];
	dynbuf__init(&b, 4096);
	memset(nonce, 7, sizeof(nonce));
	TEST_EQ_INT(wire__encode_challenge(nonce, 1234, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_OK);
	TEST_EQ_INT(f.kind, PARLEY__WIRE__FRAME__KIND_PUSH);
	TEST_EQ_INT(f.has_id, 0);
	TEST_EQ_INT(f.frame->push->challenge->server_time_ms, 1234);
	TEST_EQ_MEM(f.frame->push->challenge->nonce.data, nonce, 32);
	wire__frame_free(&f);

	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_error(9, PARLEY_E_HANDLE_TAKEN, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_OK);
	TEST_EQ_INT(f.frame->response->id, 9);
	TEST_EQ_INT(f.frame->response->status, PARLEY_E_HANDLE_TAKEN);
	TEST_EQ_STR(f.frame->response->message, parley_strerror(PARLEY_E_HANDLE_TAKEN));
	wire__frame_free(&f);

	/* a device list response */
	Parley__Wire__Device d1 = PARLEY__WIRE__DEVICE__INIT, d2 = PARLEY__WIRE__DEVICE__INIT;
	Parley__Wire__Device *ds[2] = {&d1, &d2};
	Parley__Wire__ListDevicesResponse ld = PARLEY__WIRE__LIST_DEVICES_RESPONSE__INIT;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	d1.device_id = 1;
	d1.name = "a";
	d1.device_key.data = key32;
	d1.device_key.len = 32;
	d2 = d1;
	d2.device_id = 2;
	ld.n_devices = 2;
	ld.devices = ds;
	r.id = 3;
	r.body_case = PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES;
	r.list_devices = &ld;
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_response(&r, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_OK);
	TEST_EQ_INT(f.frame->response->list_devices->n_devices, 2);
	TEST_EQ_INT(f.frame->response->list_devices->devices[1]->device_id, 2);
	wire__frame_free(&f);

	/* ping */
	Parley__Wire__PingRequest pr = PARLEY__WIRE__PING_REQUEST__INIT;
	Parley__Wire__Request rq = PARLEY__WIRE__REQUEST__INIT;
	uint8_t payload[1025] = {0};
	rq.id = 77;
	rq.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
	rq.ping = &pr;
	pr.payload.data = payload;
	pr.payload.len = 1024;
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_request(&rq, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_OK);
	wire__frame_free(&f);
	pr.payload.len = 1025;
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_request(&rq, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_E_PROTO_FIELD_TOO_LARGE);
	TEST_EQ_INT(f.has_id, 1);
	TEST_EQ_INT(f.id, 77);
	TEST_CHECK(f.frame == NULL);
	wire__frame_free(&f);
	dynbuf__free(&b);
}

static void test_too_large(void)
{
	dynbuf b;
	wire_frame f;
	wire_limits l;
	wire__limits_default(&l);
	dynbuf__init(&b, 4096);
	enc_register(&b, 1, "alice", 32, "x", 64);
	l.max_frame = b.len - 1;
	TEST_EQ_INT(wire__decode_frame(b.data, b.len, &l, &f), PARLEY_E_TOO_LARGE);
	l.max_frame = b.len;
	TEST_EQ_INT(wire__decode_frame(b.data, b.len, &l, &f), PARLEY_OK);
	wire__frame_free(&f);
	/* encoding into a buffer that cannot hold the frame leaves it unchanged */
	dynbuf small;
	dynbuf__init(&small, 10);
	TEST_EQ_INT(wire__encode_error(1, PARLEY_E_INTERNAL, &small), PARLEY_E_TOO_LARGE);
	TEST_EQ_INT(small.len, 0);
	dynbuf__free(&small);
	dynbuf__free(&b);
}

static void test_truncated_every_prefix(void)
{
	dynbuf b;
	wire_frame f;
	dynbuf__init(&b, 4096);
	enc_register(&b, 300, "alice", 32, "laptop", 64);
	/* Frame has a single top-level field, so every proper non-empty prefix is cut inside it */
	for (size_t n = 1; n < b.len; n++) {
		int rc = wire__decode_frame(b.data, n, NULL, &f);
		TEST_EQ_INT(rc, PARLEY_E_PROTO_TRUNCATED);
		TEST_CHECK(f.frame == NULL);
		/* the id (2-byte varint after tag 08 and the request's tag + length) is readable from 6 bytes */
		if (n >= 6) {
			TEST_EQ_INT(f.has_id, 1);
			TEST_EQ_INT(f.id, 300);
		}
		wire__frame_free(&f);
	}
	dynbuf__free(&b);
}

static void expect_bytes(const uint8_t *p, size_t n, int want, const char *what)
{
	wire_frame f;
	int rc = wire__decode_frame(p, n, NULL, &f);
	if (rc != want)
		fprintf(stderr, "# %s: got %d (%s) want %d\n", what, rc, parley_errname(rc), want);
	TEST_EQ_INT(rc, want);
	wire__frame_free(&f);
}

static void test_malformed(void)
{
	/* Frame.request with wire type 0 instead of 2 */
	static const uint8_t bad_wt[] = {0x08, 0x01};
	/* field number 0 */
	static const uint8_t field0[] = {0x02, 0x00};
	/* group wire type 3 */
	static const uint8_t group[] = {0x0b, 0x0c};
	/* 11-byte varint inside Request.id */
	static const uint8_t long_varint[] = {0x0a, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	/* nested length overruns its parent (but not the buffer): Request len 2 containing ping len 5 */
	static const uint8_t nested_overrun[] = {0x0a, 0x02, 0x52, 0x05, 0x0a, 0x00, 0x00, 0x00, 0x00};
	/* varint cut at the end of a nested message (not the buffer) */
	static const uint8_t nested_varint[] = {0x0a, 0x02, 0x08, 0x80, 0x00};
	/* handle with invalid UTF-8, and with an embedded NUL: Request{id 1, register{handle}} */
	static const uint8_t bad_utf8[] = {0x0a, 0x09, 0x08, 0x01, 0x5a, 0x05, 0x0a, 0x03, 'a', 0xc3, 'b'};
	static const uint8_t nul_str[] = {0x0a, 0x09, 0x08, 0x01, 0x5a, 0x05, 0x0a, 0x03, 'a', 0x00, 'b'};
	/* uint32 device_id above 2^32 in RemoveDevice (field 15 -> tag 0x7a) */
	static const uint8_t big_u32[] = {0x0a, 0x0b, 0x08, 0x01, 0x7a, 0x07, 0x08,
					  0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
	expect_bytes(bad_wt, sizeof(bad_wt), PARLEY_E_PROTO_MALFORMED, "bad wire type");
	expect_bytes(field0, sizeof(field0), PARLEY_E_PROTO_MALFORMED, "field 0");
	expect_bytes(group, sizeof(group), PARLEY_E_PROTO_MALFORMED, "group");
	expect_bytes(long_varint, sizeof(long_varint), PARLEY_E_PROTO_MALFORMED, "long varint");
	expect_bytes(nested_overrun, sizeof(nested_overrun), PARLEY_E_PROTO_MALFORMED, "nested overrun");
	expect_bytes(nested_varint, sizeof(nested_varint), PARLEY_E_PROTO_MALFORMED, "nested varint");
	expect_bytes(bad_utf8, sizeof(bad_utf8), PARLEY_E_PROTO_MALFORMED, "utf8");
	expect_bytes(nul_str, sizeof(nul_str), PARLEY_E_PROTO_MALFORMED, "nul");
	expect_bytes(big_u32, sizeof(big_u32), PARLEY_E_PROTO_MALFORMED, "u32 overflow");

	/* the id is still reported when the body is malformed */
	wire_frame f;
	TEST_EQ_INT(wire__decode_frame(bad_utf8, sizeof(bad_utf8), NULL, &f), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(f.has_id, 1);
	TEST_EQ_INT(f.id, 1);
	wire__frame_free(&f);
	/* but not when the frame's own structure is broken */
	TEST_EQ_INT(wire__decode_frame(bad_wt, sizeof(bad_wt), NULL, &f), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(f.has_id, 0);
}

static void test_field_limits(void)
{
	dynbuf b;
	wire_frame f;
	char h33[34];
	char n65[66];
	memset(h33, 'a', 33);
	h33[33] = 0;
	memset(n65, 'n', 65);
	n65[65] = 0;
	dynbuf__init(&b, 4096);
	struct {
		const char *handle;
		size_t keylen;
		const char *name;
		size_t siglen;
		int want;
	} cases[] = {
		{"alice", 32, "", 64, PARLEY_OK},
		{h33, 32, "x", 64, PARLEY_E_PROTO_FIELD_TOO_LARGE},
		{"", 32, "x", 64, PARLEY_E_PROTO_MISSING_FIELD},
		{"alice", 33, "x", 64, PARLEY_E_PROTO_FIELD_TOO_LARGE},
		{"alice", 31, "x", 64, PARLEY_E_PROTO_MALFORMED},
		{"alice", 0, "x", 64, PARLEY_E_PROTO_MISSING_FIELD},
		{"alice", 32, n65, 64, PARLEY_E_PROTO_FIELD_TOO_LARGE},
		{"alice", 32, "x", 0, PARLEY_E_PROTO_MISSING_FIELD},
		{"alice", 32, "x", 65, PARLEY_E_PROTO_FIELD_TOO_LARGE},
		{"alice", 32, "x", 63, PARLEY_E_PROTO_MALFORMED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enc_register(&b, 5, cases[i].handle, cases[i].keylen, cases[i].name, cases[i].siglen);
		int rc = dec(&b, &f);
		if (rc != cases[i].want)
			fprintf(stderr, "# case %zu: %s\n", i, parley_errname(rc));
		TEST_EQ_INT(rc, cases[i].want);
		TEST_EQ_INT(f.id, 5);
		wire__frame_free(&f);
	}

	/* auth without device id, remove without device id */
	Parley__Wire__AuthRequest ar = PARLEY__WIRE__AUTH_REQUEST__INIT;
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	ar.handle = "alice";
	ar.signature.data = sig64;
	ar.signature.len = 64;
	r.id = 8;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	r.auth = &ar;
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_request(&r, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_E_PROTO_MISSING_FIELD);
	ar.device_id = 1;
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_request(&r, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_OK);
	wire__frame_free(&f);

	Parley__Wire__RemoveDeviceRequest rd = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
	r.remove_device = &rd;
	dynbuf__reset(&b);
	TEST_EQ_INT(wire__encode_request(&r, &b), PARLEY_OK);
	TEST_EQ_INT(dec(&b, &f), PARLEY_E_PROTO_MISSING_FIELD);
	dynbuf__free(&b);
}

static void test_unknown(void)
{
	/* empty frame: no kind */
	expect_bytes((const uint8_t *)"", 0, PARLEY_E_PROTO_UNKNOWN, "empty");
	/* Request{id 4} without body */
	static const uint8_t nobody[] = {0x0a, 0x02, 0x08, 0x04};
	/* Request{id 4, field 99 (len 0)} — a body kind from a newer protocol version */
	static const uint8_t newbody[] = {0x0a, 0x05, 0x08, 0x04, 0x9a, 0x06, 0x00};
	/* Frame field 9 only (a future frame kind) */
	static const uint8_t newkind[] = {0x4a, 0x00};
	/* Push without body */
	static const uint8_t emptypush[] = {0x1a, 0x00};
	expect_bytes(nobody, sizeof(nobody), PARLEY_E_PROTO_UNKNOWN, "nobody");
	expect_bytes(newbody, sizeof(newbody), PARLEY_E_PROTO_UNKNOWN, "newbody");
	expect_bytes(newkind, sizeof(newkind), PARLEY_E_PROTO_UNKNOWN, "newkind");
	expect_bytes(emptypush, sizeof(emptypush), PARLEY_E_PROTO_UNKNOWN, "emptypush");
	wire_frame f;
	TEST_EQ_INT(wire__decode_frame(newbody, sizeof(newbody), NULL, &f), PARLEY_E_PROTO_UNKNOWN);
	TEST_EQ_INT(f.has_id, 1);
	TEST_EQ_INT(f.id, 4);
}

/* Many unknown fields: accepted up to the per-message cap, refused past it; never over budget. */
static void test_unknown_field_flood(void)
{
	uint8_t buf[2 + 4 + 2 * 200];
	/* Request{id 1, ping{}, k unknown fields (field 5, varint 0: "28 00")} */
	for (unsigned k = 120; k <= 130; k++) {
		size_t n = 0;
		size_t body = 2 + 2 + 2 * k; /* id + ping + unknowns */
		buf[n++] = 0x0a;
		buf[n++] = 0x80 | (uint8_t)(body & 0x7f);
		buf[n++] = (uint8_t)(body >> 7);
		buf[n++] = 0x08;
		buf[n++] = 0x01;
		buf[n++] = 0x52;
		buf[n++] = 0x00;
		for (unsigned i = 0; i < k; i++) {
			buf[n++] = 0x28;
			buf[n++] = 0x00;
		}
		wire_frame f;
		int rc = wire__decode_frame(buf, n, NULL, &f);
		TEST_EQ_INT(rc, k + 2 <= 128 ? PARLEY_OK : PARLEY_E_PROTO_MALFORMED);
		wire__frame_free(&f);
	}
}

/* Every allocation of a decode fails in turn: the result is NOMEM (or OK once past them), no leak
 * (checked by the ASan build). */
static void test_alloc_failures(void)
{
	dynbuf b;
	dynbuf__init(&b, 4096);
	enc_register(&b, 11, "alice", 32, "laptop", 64);
	int ok_seen = 0;
	for (unsigned long n = 1; n < 50 && !ok_seen; n++) {
		wire_frame f;
		parley__alloc_fail_after(n);
		int rc = dec(&b, &f);
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
		if (rc == PARLEY_OK)
			ok_seen = 1;
		else
			TEST_EQ_INT(f.id, 11);
		wire__frame_free(&f);
	}
	TEST_CHECK(ok_seen);
	dynbuf__free(&b);
}

/* The registration proof of work: solved work checks, and is bound to nonce, handle and key. */
static void test_register_pow(void)
{
	uint8_t nonce[WIRE_NONCE_LEN] = {7}, key[WIRE_KEY_LEN] = {9}, pow[WIRE_POW_LEN];
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, NULL, 0, 0), 1); /* none asked */
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, NULL, 0, 16), 0);
	TEST_EQ_INT(wire__register_pow_solve(nonce, "bob", key, 16, pow), PARLEY_OK);
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, pow, sizeof(pow), 16), 1);
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, pow, sizeof(pow), 12), 1);
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, pow, sizeof(pow), 28), 0);
	TEST_EQ_INT(wire__register_pow_check(nonce, "bo", key, pow, sizeof(pow), 16), 0);
	key[0] ^= 1;
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, pow, sizeof(pow), 16), 0);
	key[0] ^= 1;
	nonce[0] ^= 1;
	TEST_EQ_INT(wire__register_pow_check(nonce, "bob", key, pow, sizeof(pow), 16), 0);
	TEST_EQ_INT(wire__register_pow_solve(nonce, "bob", key, WIRE_POW_MAX_BITS + 1, pow), PARLEY_E_UNSUPPORTED);
}

static void test_signed_bytes(void)
{
	dynbuf a, b;
	uint8_t nonce[32], key[32];
	memset(nonce, 1, sizeof(nonce));
	memset(key, 2, sizeof(key));
	dynbuf__init(&a, 1024);
	dynbuf__init(&b, 1024);
	TEST_EQ_INT(wire__register_signed_bytes(nonce, "bob", key, "ph", &a), PARLEY_OK);
	/* "parley-register-v1\0" (19) + 32 + 1 + 3 + 32 + 1 + 2 */
	TEST_EQ_INT(a.len, 19 + 32 + 1 + 3 + 32 + 1 + 2);
	TEST_EQ_MEM(a.data, "parley-register-v1\0", 19);
	TEST_EQ_INT(a.data[51], 3);
	TEST_EQ_MEM(a.data + 52, "bob", 3);
	TEST_EQ_INT(a.data[87], 2);
	/* different field split -> different bytes */
	TEST_EQ_INT(wire__register_signed_bytes(nonce, "bo", key, "bph", &b), PARLEY_OK);
	TEST_CHECK(a.len != b.len || memcmp(a.data, b.data, a.len) != 0);
	dynbuf__reset(&a);
	TEST_EQ_INT(wire__auth_signed_bytes(nonce, "bob", 0x01020304, &a), PARLEY_OK);
	TEST_EQ_INT(a.len, 15 + 32 + 1 + 3 + 4);
	TEST_EQ_MEM(a.data, "parley-auth-v1\0", 15);
	TEST_EQ_INT(a.data[a.len - 1], 4);
	TEST_EQ_INT(a.data[a.len - 4], 1);
	dynbuf__free(&a);
	dynbuf__free(&b);
}

int main(void)
{
	memset(key32, 0x11, sizeof(key32));
	memset(sig64, 0x22, sizeof(sig64));
	TEST_RUN(test_round_trip_register);
	TEST_RUN(test_round_trip_others);
	TEST_RUN(test_too_large);
	TEST_RUN(test_truncated_every_prefix);
	TEST_RUN(test_malformed);
	TEST_RUN(test_field_limits);
	TEST_RUN(test_unknown);
	TEST_RUN(test_unknown_field_flood);
	TEST_RUN(test_alloc_failures);
	TEST_RUN(test_signed_bytes);
	TEST_RUN(test_register_pow);
	TEST_EXIT();
}
