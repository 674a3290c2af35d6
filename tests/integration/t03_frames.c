/* 03: protocol frames: truncated, malformed, unknown, oversized fields, missing fields, requests
 * before authentication. Each gets its specific error code; the connection (or at least the server)
 * keeps working. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/error.h>

#include "harness.h"

/* any 33-byte Signal public key will do where no list is signed (issue 9: registration needs one) */
static const uint8_t test_account_key[33] = {0x05, 1, 2, 3};

static srv s;

static void valid_raw_ping(void)
{
	int fd = pw_connect(s.port, NULL);
	/* Frame{request{id=7, ping{payload="abc"}}} written by hand */
	static const uint8_t ok[] = {0x0a, 0x09, 0x08, 0x07, 0x52, 0x05, 0x0a, 0x03, 'a', 'b', 'c'};
	IT_EQ(pw_raw(fd, ok, sizeof ok, 7), PARLEY_OK);
	close(fd);
}

static void truncated(void)
{
	int fd = pw_connect(s.port, NULL);
	/* inner ping claims 7 bytes, only 5 follow */
	static const uint8_t t[] = {0x0a, 0x09, 0x08, 0x07, 0x52, 0x07, 0x0a, 0x05, 'a', 'b', 'c'};
	IT_EQ(pw_raw(fd, t, sizeof t, 7), PARLEY_E_PROTO_TRUNCATED);
	IT_EQ(pw_ping(fd, 8), 0); /* same connection still usable */
	close(fd);
}

static void malformed(void)
{
	int fd = pw_connect(s.port, NULL);
	/* field 1 with wire type 7 (does not exist) after a valid id */
	static const uint8_t m[] = {0x0a, 0x03, 0x08, 0x07, 0x0f};
	IT_EQ(pw_raw(fd, m, sizeof m, 7), PARLEY_E_PROTO_MALFORMED);
	IT_EQ(pw_ping(fd, 9), 0);
	close(fd);

	/* bytes with no readable request id: the connection is closed with a policy/protocol code */
	fd = pw_connect(s.port, NULL);
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
	uint64_t before = metric_value(s.port, "parley_protocol_errors_total");
	int r = pw_raw(fd, junk, sizeof junk, 0);
	IT_CHECK(r == -1002 || r == -1008 || r == -1007);
	close(fd);
	IT_CHECK(metric_value(s.port, "parley_protocol_errors_total") > before);
	IT_CHECK(server_alive(s.port));
}

static void unknown_kind(void)
{
	int fd = pw_connect(s.port, NULL);
	/* Request{id=7, field 99 = 1}: a request kind this server does not know */
	static const uint8_t u[] = {0x0a, 0x05, 0x08, 0x07, 0x98, 0x06, 0x01};
	IT_EQ(pw_raw(fd, u, sizeof u, 7), PARLEY_E_PROTO_UNKNOWN);
	IT_EQ(pw_ping(fd, 10), 0);
	close(fd);
}

static void field_limits(void)
{
	int fd = pw_connect(s.port, NULL);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	uint8_t key[32] = {1}, sig[64] = {2};
	req.id = 11;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req.register_ = &r;
	r.handle = "a-handle-that-is-far-too-long-for-parley-limits";
	r.device_key.data = key;
	r.device_key.len = 32;
	r.signature.data = sig;
	r.signature.len = 64;
	r.account_key.data = (uint8_t *)test_account_key;
	r.account_key.len = 33;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_PROTO_FIELD_TOO_LARGE);
	/* missing signature */
	req.id = 12;
	r.handle = "bob";
	r.signature.len = 0;
	r.signature.data = NULL;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_PROTO_MISSING_FIELD);
	/* a key of the wrong size */
	req.id = 13;
	r.signature.data = sig;
	r.signature.len = 64;
	r.account_key.data = (uint8_t *)test_account_key;
	r.account_key.len = 33;
	r.device_key.len = 31;
	int st = pw_call(fd, &req, NULL);
	IT_CHECK(st == PARLEY_E_PROTO_FIELD_TOO_LARGE || st == PARLEY_E_PROTO_MALFORMED || st == PARLEY_E_INVAL);
	IT_EQ(pw_ping(fd, 14), 0);
	close(fd);
}

static void unauthenticated(void)
{
	int fd = pw_connect(s.port, NULL);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ListDevicesRequest l = PARLEY__WIRE__LIST_DEVICES_REQUEST__INIT;
	req.id = 21;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req.list_devices = &l;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_UNAUTHENTICATED);
	Parley__Wire__RemoveDeviceRequest rm = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
	req.id = 22;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
	req.remove_device = &rm;
	rm.device_id = 1;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_UNAUTHENTICATED);
	IT_CHECK(metric_value(s.port, "parley_request_errors_total") >= 2);
	close(fd);
}

int main(void)
{
	srv_start(&s, NULL);
	IT_RUN(valid_raw_ping);
	IT_RUN(truncated);
	IT_RUN(malformed);
	IT_RUN(unknown_kind);
	IT_RUN(field_limits);
	IT_RUN(unauthenticated);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
