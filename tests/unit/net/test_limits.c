/* The limits server/net applies at accept and before authentication, checked without sockets:
 *   - the per-address table (open addressing with backward-shift deletion) against a reference count,
 *     through growth, collisions and shrinking; the unit of the cap (IPv4 address, IPv6 /64);
 *   - the default max_preauth_message_bytes leaves room for the largest legitimate frame a client
 *     sends before it is authenticated (register, auth, ping at their field limits). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>
#include <sodium.h>

#include "base/config.h"
#include "net/net_internal.h"
#include "net/server.h"
#include "test.h"
#include "wire/wire.h"

static const net_handler no_handler;

static net_server *table_server(unsigned per_address)
{
	net_config cfg;
	int err;
	net__config_defaults(&cfg);
	cfg.port = 0;
	cfg.max_conns_per_address = per_address;
	net_server *s = net__server_new(&cfg, &no_handler, &err);
	TEST_EQ_INT(err, PARLEY_OK);
	return s;
}

static void key_of(uint32_t i, uint8_t key[16])
{
	memset(key, 0, 16);
	key[10] = key[11] = 0xff;
	memcpy(key + 12, &i, 4);
}

/* Random acquire/release of 3,000 addresses with a cap of 3, compared step by step with plain counts. */
static void test_addr_table(void)
{
	enum { KEYS = 3000, CAP = 3, STEPS = 200000 };
	static unsigned ref[KEYS];
	uint8_t key[16];
	net_server *s = table_server(CAP);
	if (s == NULL)
		return;
	size_t distinct = 0, max_cap = 0;
	int mismatches = 0;
	for (int step = 0; step < STEPS; step++) {
		uint32_t i = randombytes_uniform(KEYS);
		key_of(i, key);
		/* grow first (more acquires), then drain (more releases): the table must shrink back */
		int acquire = randombytes_uniform(100) < (step < STEPS / 2 ? 60u : 35u);
		if (acquire) {
			int rc = net__addr_acquire(s, key);
			int want = ref[i] < CAP ? PARLEY_OK : PARLEY_E_TOO_MANY_CONNECTIONS;
			mismatches += rc != want;
			if (rc == PARLEY_OK && ref[i]++ == 0)
				distinct++;
		} else if (ref[i] > 0) {
			net__addr_release(s, key);
			if (--ref[i] == 0)
				distinct--;
		}
		mismatches += s->addrs.used != distinct;
		if (s->addrs.cap > max_cap)
			max_cap = s->addrs.cap;
	}
	TEST_EQ_INT(mismatches, 0);
	/* every entry still findable after all the shifting: each is refused exactly at its count */
	for (uint32_t i = 0; i < KEYS; i++) {
		key_of(i, key);
		for (unsigned k = ref[i]; k < CAP; k++)
			mismatches += net__addr_acquire(s, key) != PARLEY_OK;
		mismatches += net__addr_acquire(s, key) != PARLEY_E_TOO_MANY_CONNECTIONS;
		for (unsigned k = 0; k < CAP; k++)
			net__addr_release(s, key);
	}
	TEST_EQ_INT(mismatches, 0);
	TEST_EQ_INT(s->addrs.used, 0);
	TEST_CHECK(max_cap >= 2048);      /* it grew with the addresses connected ... */
	TEST_CHECK(s->addrs.cap <= 128); /* ... and shrank when they left */
	net__server_free(s);
}

static void test_addr_unit(void)
{
	struct sockaddr_storage a, b;
	uint8_t ka[16], kb[16];
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	/* IPv6: one /64 is one unit whatever the interface id */
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a, *b6 = (struct sockaddr_in6 *)&b;
	a6->sin6_family = b6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &a6->sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:bbbb::2", &b6->sin6_addr);
	net__addr_key(&a, ka);
	net__addr_key(&b, kb);
	TEST_EQ_MEM(ka, kb, 16);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &b6->sin6_addr);
	net__addr_key(&b, kb);
	TEST_CHECK(memcmp(ka, kb, 16) != 0);
	/* IPv4, and the same address v4-mapped on an IPv6 socket: one unit; 127.0.0.2 is not 127.0.0.3 */
	struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
	memset(&a, 0, sizeof(a));
	a4->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.2", &a4->sin_addr);
	net__addr_key(&a, ka);
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &b6->sin6_addr);
	net__addr_key(&b, kb);
	TEST_EQ_MEM(ka, kb, 16);
	inet_pton(AF_INET6, "::ffff:127.0.0.3", &b6->sin6_addr);
	net__addr_key(&b, kb);
	TEST_CHECK(memcmp(ka, kb, 16) != 0);
}

static size_t encoded(Parley__Wire__Request *req)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 20);
	size_t n = wire__encode_request(req, &b) == PARLEY_OK ? b.len : SIZE_MAX;
	dynbuf__free(&b);
	return n;
}

/* The largest frames a client legitimately sends before authentication, every field at its limit. */
static void test_preauth_frames_fit(void)
{
	static char handle[WIRE_MAX_HANDLE + 1], name[WIRE_MAX_DEVICE_NAME + 1];
	static uint8_t key[32], sig[64], payload[WIRE_MAX_PING_PAYLOAD];
	memset(handle, 'h', WIRE_MAX_HANDLE);
	memset(name, 'n', WIRE_MAX_DEVICE_NAME);
	parleyd_config c;
	config__defaults(&c);
	size_t limit = (size_t)c.max_preauth_message_bytes;

	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	req.id = UINT64_MAX;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	r.handle = handle;
	r.device_key = (ProtobufCBinaryData){sizeof(key), key};
	r.device_name = name;
	r.signature = (ProtobufCBinaryData){sizeof(sig), sig};
	uint8_t ak[33] = {0x05};
	r.account_key = (ProtobufCBinaryData){sizeof(ak), ak};
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req.register_ = &r;
	size_t reg = encoded(&req);

	Parley__Wire__AuthRequest a = PARLEY__WIRE__AUTH_REQUEST__INIT;
	a.handle = handle;
	a.device_id = UINT32_MAX;
	a.signature = (ProtobufCBinaryData){sizeof(sig), sig};
	req.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	req.auth = &a;
	size_t auth = encoded(&req);

	Parley__Wire__PingRequest p = PARLEY__WIRE__PING_REQUEST__INIT;
	p.payload = (ProtobufCBinaryData){sizeof(payload), payload};
	req.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
	req.ping = &p;
	size_t ping = encoded(&req);

	printf("# largest pre-auth frames: register %zu, auth %zu, ping %zu bytes; limit %zu\n", reg, auth, ping,
	       limit);
	/* at least twice the largest: room for fields a later register may carry (an invite token, a
	 * proof of work) without every client being cut off by an old default */
	TEST_CHECK(reg * 2 <= limit);
	TEST_CHECK(auth * 2 <= limit);
	TEST_CHECK(ping * 2 <= limit);
}

int main(void)
{
	if (sodium_init() < 0)
		return 99;
	TEST_RUN(test_addr_table);
	TEST_RUN(test_addr_unit);
	TEST_RUN(test_preauth_frames_fit);
	TEST_EXIT();
}
