/* parley_client: option validation, operations before register, allocation failures, device lists,
 * challenge signing, and connection failures through the real transport (refused port, a server that
 * accepts TCP but never answers). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <parley/client.h>
#include <sodium.h>

#include "../test.h"
#include "client_test.h"
#include "client/client_internal.h"
#include "common/alloc.h"

static char root[256];

static void test_options(void)
{
	parley_client_options o;
	parley_client *c = (parley_client *)&o; /* must be reset to NULL on failure */
	char longurl[PARLEY_URL_MAX + 16];

	TEST_EQ_INT(parley_client_new(NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_client_new(NULL, &c), PARLEY_OK);
	TEST_CHECK(c != NULL);
	parley_client_free(c);
	parley_client_free(NULL);

	parley_client_options_init(&o);
	o.server_url = "http://127.0.0.1:7600/";
	c = (parley_client *)&o;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	TEST_CHECK(c == NULL);
	o.server_url = "ws://";
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	memset(longurl, 'a', sizeof(longurl) - 1);
	memcpy(longurl, "ws://", 5);
	longurl[sizeof(longurl) - 1] = '\0';
	o.server_url = longurl;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	o.server_url = "wss://example.org/v1/websocket";
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	parley_client_free(c);

	parley_client_options_init(&o);
	o.state_dir = "";
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	parley_client_options_init(&o);
	o.ca_file = "";
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	parley_client_options_init(&o);
	o.connect_timeout_ms = 600001;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	o.connect_timeout_ms = 0;
	o.request_timeout_ms = 600001;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_E_INVAL);
	o.request_timeout_ms = 600000;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	parley_client_free(c);

	TEST_CHECK(parley_client_errmsg(NULL)[0] == '\0');
}

static parley_client *client_in(const char *sub, const char *url, unsigned timeout_ms)
{
	return test_client_new(root, sub, url, timeout_ms);
}

static int cb_calls;
static parley_err cb_status;

static void count_done(parley_client *c, parley_err status, void *user)
{
	cb_calls++;
	cb_status = status;
	TEST_CHECK(user == &cb_calls);
}

static void count_devices(parley_client *c, parley_err status, parley_device_list *list, void *user)
{
	cb_calls++;
	cb_status = status;
	parley_device_list_free(list);
}

static void test_no_identity(void)
{
	parley_client *c = client_in("noid", NULL, 0);
	parley_device_list *list = (parley_device_list *)c;
	uint8_t key[PARLEY_DEVICE_LINK_CODE_BYTES] = {0};
	uint32_t id = 99;
	char handle[64];

	TEST_EQ_INT(parley_devices_list(c, &list), PARLEY_E_NO_IDENTITY);
	TEST_CHECK(list == NULL);
	TEST_CHECK(parley_client_errmsg(c)[0] != '\0');
	TEST_EQ_INT(parley_device_add(c, key, "x", &id), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(id, 99);
	TEST_EQ_INT(parley_device_remove(c, 2), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_identity(c, handle, sizeof(handle), NULL, NULL), PARLEY_E_NO_IDENTITY);

	/* async: the error is returned and the callback never runs */
	cb_calls = 0;
	TEST_EQ_INT(parley_devices_list_start(c, count_devices, NULL), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_device_remove_start(c, 2, count_done, &cb_calls), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_client_run(c, 0), PARLEY_OK);
	TEST_EQ_INT(cb_calls, 0);

	/* argument checks come before anything else */
	TEST_EQ_INT(parley_register(c, NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_register(c, "ab", NULL), PARLEY_E_BAD_HANDLE);
	TEST_EQ_INT(parley_register(c, "a-handle-that-is-much-too-long-for-parley", NULL), PARLEY_E_BAD_HANDLE);
	TEST_CHECK(strstr(parley_client_errmsg(c), "more than 32") != NULL);
	TEST_EQ_INT(parley_register(c, "alice",
				    "a device name that is longer than sixty-four bytes, which the server refuses"),
		    PARLEY_E_INVAL);
	TEST_EQ_INT(parley_link(c, "alice", 0), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_register_start(c, "alice", NULL, NULL, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_devices_list(NULL, &list), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_devices_list(c, NULL), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_device_public_key(NULL, key), PARLEY_E_INVAL);
	parley_client_free(c);
}

/* The handle rule (docs/protocol.md §5.1) is checked before anything is queued or any connection is
 * tried (the URL here refuses connections: an attempt would fail with CLOSED, not BAD_HANDLE), and the
 * message states the rule and the offending character, never the raw input. */
static void test_handle_rule(void)
{
	static const struct {
		const char *handle;
		const char *says;
	} bad[] = {
		{"Not A Handle", "'N' is not allowed"},
		{"alice smith", "byte 0x20 is not allowed"},
		{"bob\x1b[31m", "byte 0x1b is not allowed"},
		{"1alice", "starts with a letter"},
		{"_bob", "starts with a letter"},
		{"al", "(this one has 2)"},
		{"bob\xc3\xa9", "byte 0xc3 is not allowed"},
	};
	static const char *const good[] = {"bob", "a.b_c-d", "abcdefghijklmnopqrstuvwxyz012345"};
	parley_client *c = client_in("rule", "ws://127.0.0.1:1/v1/websocket", 2000);
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TEST_EQ_INT(parley_register(c, bad[i].handle, NULL), PARLEY_E_BAD_HANDLE);
		TEST_CHECK(strstr(parley_client_errmsg(c), bad[i].says) != NULL);
		TEST_CHECK(strstr(parley_client_errmsg(c), "from a-z, 0-9, '.', '_' and '-'") != NULL);
		TEST_CHECK(strchr(parley_client_errmsg(c), 0x1b) == NULL);
		TEST_EQ_INT(parley_link(c, bad[i].handle, 2), PARLEY_E_BAD_HANDLE);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		TEST_EQ_INT(client__check_handle(c, good[i]), PARLEY_OK);
	/* the messaging entry points apply it too (before needing an account) */
	TEST_EQ_INT(parley_send(c, "Bob", "hi"), PARLEY_E_BAD_HANDLE);
	TEST_EQ_INT(parley_typing(c, "Bob", 1), PARLEY_E_BAD_HANDLE);
	TEST_EQ_INT(parley_trust(c, "Bob", NULL), PARLEY_E_BAD_HANDLE);
	parley_client_free(c);
}

/* Every allocation of parley_client_new and of the first state access fails in turn: each must
 * return PARLEY_E_NOMEM (or succeed) and leak nothing (checked under ASan). */
static void test_alloc_failures(void)
{
	char dir[512];
	parley_client_options o;
	unsigned long n;
	int saw_nomem = 0;

	snprintf(dir, sizeof(dir), "%s/nomem", root);
	parley_client_options_init(&o);
	o.state_dir = dir;
	o.server_url = "ws://127.0.0.1:1/v1/websocket";
	o.ca_file = "/nonexistent/ca.pem";
	for (n = 1; n < 50; n++) {
		parley_client *c = NULL;
		uint8_t key[PARLEY_DEVICE_KEY_BYTES];
		int rc;

		parley__alloc_fail_after(n);
		rc = parley_client_new(&o, &c);
		if (rc == PARLEY_OK) {
			rc = parley_device_public_key(c, key);
			parley_client_free(c);
		} else {
			TEST_CHECK(c == NULL);
		}
		parley__alloc_fail_after(0);
		TEST_CHECK(rc == PARLEY_OK || rc == PARLEY_E_NOMEM);
		if (rc == PARLEY_E_NOMEM)
			saw_nomem = 1;
		if (rc == PARLEY_OK)
			break;
	}
	TEST_CHECK(saw_nomem);
	TEST_CHECK(n < 50);
}

static void test_device_list(void)
{
	Parley__Wire__ListDevicesResponse r = PARLEY__WIRE__LIST_DEVICES_RESPONSE__INIT;
	Parley__Wire__Device d[2] = {PARLEY__WIRE__DEVICE__INIT, PARLEY__WIRE__DEVICE__INIT};
	Parley__Wire__Device *pd[2] = {&d[0], &d[1]};
	uint8_t k[2][32];
	parley_device_list *l = NULL;
	parley_device_info info;
	unsigned long n;

	memset(k[0], 1, 32);
	memset(k[1], 2, 32);
	d[0].device_id = 1;
	d[0].name = "laptop";
	d[0].device_key.data = k[0];
	d[0].device_key.len = 32;
	d[0].created_ms = 1000;
	d[1].device_id = 2;
	d[1].name = "phone";
	d[1].device_key.data = k[1];
	d[1].device_key.len = 32;
	d[1].last_seen_ms = 5000;
	r.n_devices = 2;
	r.devices = pd;

	TEST_EQ_INT(client__device_list_from_wire(&r, 2, &l), PARLEY_OK);
	TEST_EQ_INT(parley_device_list_count(l), 2);
	TEST_EQ_INT(parley_device_list_get(l, 0, &info), PARLEY_OK);
	TEST_EQ_INT(info.id, 1);
	TEST_EQ_STR(info.name, "laptop");
	TEST_EQ_MEM(info.key, k[0], 32);
	TEST_EQ_INT(info.created_ms, 1000);
	TEST_EQ_INT(info.is_self, 0);
	TEST_EQ_INT(parley_device_list_get(l, 1, &info), PARLEY_OK);
	TEST_EQ_INT(info.is_self, 1);
	TEST_EQ_INT(info.last_seen_ms, 5000);
	TEST_EQ_INT(parley_device_list_get(l, 2, &info), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_device_list_get(NULL, 0, &info), PARLEY_E_INVAL);
	TEST_EQ_INT(parley_device_list_count(NULL), 0);
	parley_device_list_free(l);
	parley_device_list_free(NULL);

	for (n = 1; n <= 4; n++) {
		parley__alloc_fail_after(n);
		TEST_EQ_INT(client__device_list_from_wire(&r, 2, &l), PARLEY_E_NOMEM);
		TEST_CHECK(l == NULL);
	}
	parley__alloc_fail_after(0);

	d[1].device_key.len = 31;
	TEST_EQ_INT(client__device_list_from_wire(&r, 2, &l), PARLEY_E_PROTO_MALFORMED);
	TEST_CHECK(l == NULL);
}

/* The signature a device sends must verify over exactly the bytes the server rebuilds with
 * wire__register_signed_bytes / wire__auth_signed_bytes. */
static void test_signing(void)
{
	parley_client *c = client_in("sign", NULL, 0);
	uint8_t pk[PARLEY_DEVICE_KEY_BYTES], nonce[WIRE_NONCE_LEN], sig[WIRE_SIG_LEN];
	dynbuf msg;

	TEST_EQ_INT(client__sign_challenge(c, (const uint8_t *)"x", 1, sig), PARLEY_E_NO_IDENTITY);
	TEST_EQ_INT(parley_device_public_key(c, pk), PARLEY_OK);
	randombytes_buf(nonce, sizeof(nonce));
	dynbuf__init(&msg, 4096);
	TEST_EQ_INT(wire__register_signed_bytes(nonce, "alice", pk, "laptop", &msg), PARLEY_OK);
	TEST_EQ_INT(client__sign_challenge(c, msg.data, msg.len, sig), PARLEY_OK);
	TEST_EQ_INT(crypto_sign_verify_detached(sig, msg.data, msg.len, pk), 0);
	msg.data[msg.len - 1] ^= 1;
	TEST_CHECK(crypto_sign_verify_detached(sig, msg.data, msg.len, pk) != 0);
	dynbuf__reset(&msg);
	TEST_EQ_INT(wire__auth_signed_bytes(nonce, "alice", 3, &msg), PARLEY_OK);
	TEST_EQ_INT(client__sign_challenge(c, msg.data, msg.len, sig), PARLEY_OK);
	TEST_EQ_INT(crypto_sign_verify_detached(sig, msg.data, msg.len, pk), 0);
	dynbuf__free(&msg);
	parley_client_free(c);
}

/* A port nobody listens on: register fails with CONNECT, the callback runs exactly once, and no
 * account is saved. */
static void test_connect_refused(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char url[128];
	parley_client *c;
	char handle[64];

	/* bind then close: a free port with nothing listening */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	TEST_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	TEST_EQ_INT(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", (unsigned)ntohs(sa.sin_port));

	c = client_in("refused", url, 2000);
	cb_calls = 0;
	TEST_EQ_INT(parley_register_start(c, "alice", NULL, count_done, &cb_calls), PARLEY_OK);
	TEST_EQ_INT(cb_calls, 0); /* never from inside *_start */
	TEST_EQ_INT(parley_client_run(c, 0), PARLEY_OK);
	TEST_EQ_INT(cb_calls, 1);
	TEST_EQ_INT(cb_status, PARLEY_E_CONNECT);
	TEST_EQ_INT(parley_identity(c, handle, sizeof(handle), NULL, NULL), PARLEY_E_NO_IDENTITY);
	/* blocking form, and a second attempt reconnects */
	TEST_EQ_INT(parley_register(c, "alice", NULL), PARLEY_E_CONNECT);
	parley_client_free(c);

	/* every allocation on the way (client, state, op, transport) fails in turn: NOMEM or the real
	 * outcome, never a crash or a leak (ASan build) */
	{
		unsigned long n;
		int saw_nomem = 0, saw_connect = 0;
		for (n = 1; n < 200 && !saw_connect; n++) {
			parley_client *k = client_in("refused-nomem", url, 2000);
			int rc;
			parley__alloc_fail_after(n);
			rc = parley_register(k, "alice", NULL);
			parley__alloc_fail_after(0);
			TEST_CHECK(rc == PARLEY_E_NOMEM || rc == PARLEY_E_CONNECT);
			saw_nomem |= rc == PARLEY_E_NOMEM;
			saw_connect |= rc == PARLEY_E_CONNECT;
			parley_client_free(k);
		}
		TEST_CHECK(saw_nomem);
		TEST_CHECK(saw_connect);
	}
}

/* A server that completes TCP (kernel backlog) but never answers the upgrade: TIMEOUT, bounded. */
static void test_connect_timeout(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char url[128];
	parley_client *c;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	TEST_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	TEST_EQ_INT(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	TEST_EQ_INT(listen(fd, 8), 0);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", (unsigned)ntohs(sa.sin_port));

	c = client_in("timeout", url, 300);
	TEST_EQ_INT(parley_register(c, "alice", NULL), PARLEY_E_TIMEOUT);
	/* freeing with an operation pending calls its callback with CLOSED */
	cb_calls = 0;
	TEST_EQ_INT(parley_register_start(c, "alice", NULL, count_done, &cb_calls), PARLEY_OK);
	parley_client_free(c);
	TEST_EQ_INT(cb_calls, 1);
	TEST_EQ_INT(cb_status, PARLEY_E_CLOSED);
	close(fd);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/parley-client-test-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	TEST_RUN(test_options);
	TEST_RUN(test_no_identity);
	TEST_RUN(test_handle_rule);
	TEST_RUN(test_alloc_failures);
	TEST_RUN(test_device_list);
	TEST_RUN(test_signing);
	TEST_RUN(test_connect_refused);
	TEST_RUN(test_connect_timeout);
	test_remove_tree(root);
	TEST_EXIT();
}
