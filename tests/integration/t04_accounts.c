/* 04: accounts and devices over the wire: register, duplicate and bad handles, signatures checked,
 * challenge-response auth, device add/list/remove, and durability across SIGTERM and SIGKILL. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "harness.h"

/* any 33-byte Signal public key will do where no list is signed (issue 9: registration needs one) */
static const uint8_t test_account_key[33] = {0x05, 1, 2, 3};

static srv s;
static uint8_t alice_pk[32], alice_sk[64];

/* Every device key the server accepted: their secret halves must never reach its files. */
static uint8_t secrets[8][64];
static int nsecrets;

static void accepted(const uint8_t sk[64])
{
	if (nsecrets < 8)
		memcpy(secrets[nsecrets++], sk, 64);
}

static int list_devices(int fd, uint64_t id, int *count)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ListDevicesRequest l = PARLEY__WIRE__LIST_DEVICES_REQUEST__INIT;
	req.id = id;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req.list_devices = &l;
	wire_frame f;
	int st = pw_call(fd, &req, &f);
	if (st == 0) {
		*count = f.frame->response->list_devices ? (int)f.frame->response->list_devices->n_devices : -1;
		wire__frame_free(&f);
	} else if (st > 0) {
		wire__frame_free(&f);
	}
	return st;
}

static void register_and_duplicates(void)
{
	int fd;
	IT_EQ(pw_register(s.port, "alice", alice_pk, alice_sk, &fd), PARLEY_OK);
	accepted(alice_sk);
	int n = 0;
	IT_EQ(list_devices(fd, 5, &n), PARLEY_OK); /* register authenticates the connection */
	IT_EQ(n, 1);
	close(fd);

	uint8_t pk[32], sk[64];
	IT_EQ(pw_register(s.port, "alice", pk, sk, NULL), PARLEY_E_HANDLE_TAKEN);
	IT_EQ(pw_register(s.port, "Al!ce", pk, sk, NULL), PARLEY_E_BAD_HANDLE);
	IT_EQ(pw_register(s.port, "9lives", pk, sk, NULL), PARLEY_E_BAD_HANDLE);
}

static void register_bad_signature(void)
{
	uint8_t nonce[32], pk[32], sk[64], sig[64];
	int fd = pw_connect(s.port, nonce);
	crypto_sign_keypair(pk, sk);
	dynbuf m;
	dynbuf__init(&m, 4096);
	/* signed for another handle than the one sent */
	wire__register_signed_bytes(nonce, "mallory", pk, "it-device", &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	req.id = 3;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req.register_ = &r;
	r.handle = "carol";
	r.device_key.data = pk;
	r.device_key.len = 32;
	r.device_name = "it-device";
	r.signature.data = sig;
	r.signature.len = 64;
	r.account_key.data = (uint8_t *)test_account_key;
	r.account_key.len = 33;
	IT_EQ(pw_call(fd, &req, NULL), PARLEY_E_BAD_SIGNATURE);
	close(fd);
}

static void auth(void)
{
	uint8_t nonce[32];
	int fd = pw_connect(s.port, nonce);
	/* wrong key */
	uint8_t pk[32], sk[64];
	crypto_sign_keypair(pk, sk);
	IT_EQ(pw_auth(fd, nonce, "alice", 1, sk), PARLEY_E_BAD_SIGNATURE);
	close(fd);

	/* a signature over an old nonce (replay) fails: the challenge is per connection and single use */
	uint8_t old_nonce[32];
	fd = pw_connect(s.port, old_nonce);
	close(fd);
	fd = pw_connect(s.port, nonce);
	IT_EQ(pw_auth(fd, old_nonce, "alice", 1, alice_sk), PARLEY_E_BAD_SIGNATURE);
	close(fd);

	fd = pw_connect(s.port, nonce);
	IT_EQ(pw_auth(fd, nonce, "alice", 1, alice_sk), PARLEY_OK);
	int n = 0;
	IT_EQ(list_devices(fd, 6, &n), PARLEY_OK);
	IT_EQ(n, 1);
	IT_EQ(pw_auth(fd, nonce, "alice", 1, alice_sk), PARLEY_E_ALREADY_AUTHENTICATED);
	close(fd);
}

static int remove_device(int fd, uint32_t id)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RemoveDeviceRequest r = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
	req.id = 41;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
	req.remove_device = &r;
	r.device_id = id;
	return pw_call(fd, &req, NULL);
}

static void devices(void)
{
	uint8_t nonce[32];
	int fd = pw_connect(s.port, nonce);
	IT_EQ(pw_auth(fd, nonce, "alice", 1, alice_sk), PARLEY_OK);
	uint8_t pk2[32], sk2[64];
	crypto_sign_keypair(pk2, sk2);
	uint32_t id2 = 0;
	IT_EQ(it_add_device(fd, "alice", pk2, sk2, &id2), PARLEY_OK);
	accepted(sk2);
	IT_EQ(id2, 2);
	uint32_t dup = 0;
	IT_EQ(it_add_device(fd, "alice", pk2, sk2, &dup), PARLEY_E_DEVICE_KEY_IN_USE);
	int n = 0;
	IT_EQ(list_devices(fd, 7, &n), PARLEY_OK);
	IT_EQ(n, 2);

	/* the new device can authenticate with its own key */
	uint8_t nonce2[32];
	int fd2 = pw_connect(s.port, nonce2);
	IT_EQ(pw_auth(fd2, nonce2, "alice", 2, sk2), PARLEY_OK);
	close(fd2);

	IT_EQ(remove_device(fd, 2), PARLEY_OK);
	IT_EQ(remove_device(fd, 2), PARLEY_E_NO_SUCH_DEVICE);
	IT_EQ(remove_device(fd, 1), PARLEY_E_LAST_DEVICE);
	IT_EQ(list_devices(fd, 8, &n), PARLEY_OK);
	IT_EQ(n, 1);
	close(fd);

	/* a removed device cannot authenticate any more */
	fd2 = pw_connect(s.port, nonce2);
	int st = pw_auth(fd2, nonce2, "alice", 2, sk2);
	IT_CHECK(st == PARLEY_E_NO_SUCH_DEVICE || st == PARLEY_E_BAD_SIGNATURE);
	close(fd2);
}

static void durable_across_restarts(void)
{
	uint8_t pk[32], sk[64], nonce[32];
	IT_EQ(pw_register(s.port, "dave", pk, sk, NULL), PARLEY_OK);
	accepted(sk);
	IT_EQ(srv_stop(&s), 0);
	srv_restart(&s);
	int fd = pw_connect(s.port, nonce);
	IT_EQ(pw_auth(fd, nonce, "dave", 1, sk), PARLEY_OK);
	close(fd);

	/* acknowledged means durable: SIGKILL right after the response, then restart */
	uint8_t pk2[32], sk2[64];
	IT_EQ(pw_register(s.port, "erin", pk2, sk2, NULL), PARLEY_OK);
	accepted(sk2);
	srv_kill9(&s);
	srv_restart(&s);
	fd = pw_connect(s.port, nonce);
	IT_EQ(pw_auth(fd, nonce, "erin", 1, sk2), PARLEY_OK);
	close(fd);
	IT_EQ(pw_register(s.port, "erin", pk2, sk2, NULL), PARLEY_E_HANDLE_TAKEN);
}

/* The database holds public keys only: the seed half of no accepted Ed25519 secret key (the other half
 * is the public key) appears in its files or the log, raw or encoded (scan.c). live: while the server
 * runs, with its -wal and -shm (required then); else after the stop. Positive control: the same scan
 * finds alice's public key, which is stored. */
static void no_private_keys(int live)
{
	IT_CHECK(nsecrets >= 4);
	for (int i = 0; i < nsecrets; i++)
		IT_EQ(srv_scan(&s, secrets[i], 32, live), SCAN_CLEAN);
	IT_EQ(srv_scan(&s, alice_pk, 32, live), SCAN_FOUND);
}

static void no_private_keys_live(void)
{
	no_private_keys(1);
}

static void no_private_keys_at_rest(void)
{
	no_private_keys(0);
}

int main(void)
{
	srv_start(&s, NULL);
	IT_RUN(register_and_duplicates);
	IT_RUN(register_bad_signature);
	IT_RUN(auth);
	IT_RUN(devices);
	IT_RUN(durable_across_restarts);
	IT_RUN(no_private_keys_live);
	IT_EQ(srv_stop(&s), 0);
	IT_RUN(no_private_keys_at_rest);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
