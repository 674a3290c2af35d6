/* Security item 5: a removed device keeps no authority. Authorization is cached on the connection and
 * the "device removed" notice that closes the device's connections on the other loops is a mailbox
 * post, so a connection may outlive its device: the store re-checks the calling device inside the
 * transaction of every privileged operation and answers DEVICE_REMOVED.
 *
 * Two runs, both with --workers=2 and several connections of the removed device (the kernel spreads
 * them over both loops):
 *  - against parleyd-test-nokick ($PARLEYD_NOKICK: a test-only build of parleyd whose removal notice
 *    is never posted, so every connection of the removed device survives, deterministically): each
 *    privileged request on each surviving connection must be refused with DEVICE_REMOVED;
 *  - against the real parleyd: each connection is either closed by the notice or refused the same way;
 *    never served.
 * Either way nothing the removed device asked for happened: device 3 still exists, no device added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "harness.h"

#define NCONN 6
#define RACES 150

static int get_bundles(int fd, const char *handle)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetBundlesRequest g = PARLEY__WIRE__GET_BUNDLES_REQUEST__INIT;
	req.id = 51;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req.get_bundles = &g;
	g.handle = (char *)handle;
	return pw_call(fd, &req, NULL);
}

static int send_one(int fd, const char *to, uint32_t regid)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
	Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *omp = &om;
	req.id = 52;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
	req.send_message = &sm;
	sm.recipient = (char *)to;
	sm.timestamp = 1;
	sm.n_messages = 1;
	sm.messages = &omp;
	om.device_id = 1;
	om.registration_id = regid;
	om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
	om.content.data = (uint8_t *)"from a removed device";
	om.content.len = 21;
	return pw_call(fd, &req, NULL);
}

static int remove_device(int fd, uint32_t id)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RemoveDeviceRequest r = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
	req.id = 53;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
	req.remove_device = &r;
	r.device_id = id;
	return pw_call(fd, &req, NULL);
}

static int prekey_count(int fd)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__GetPrekeyCountRequest c = PARLEY__WIRE__GET_PREKEY_COUNT_REQUEST__INIT;
	req.id = 54;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT;
	req.get_prekey_count = &c;
	return pw_call(fd, &req, NULL);
}

/* ListDevices: the status; *n the number of devices on success. */
static int list_devices(int fd, int *n)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ListDevicesRequest l = PARLEY__WIRE__LIST_DEVICES_REQUEST__INIT;
	req.id = 55;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req.list_devices = &l;
	wire_frame f;
	int st = pw_call(fd, &req, &f);
	*n = -1;
	if (st == 0 && f.frame->response->list_devices != NULL)
		*n = (int)f.frame->response->list_devices->n_devices;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

/* Every privileged request the removed device might try, on one of its connections. Returns how many
 * were refused with DEVICE_REMOVED; *closed is set when the server closed the connection instead. Any
 * other answer is a failure: the removed device was served. */
static int try_everything(int fd, const char *bob, uint32_t bob_regid, const char *alice, int *closed)
{
	uint8_t pk[32], sk[64];
	uint32_t regid = 0, id = 0;
	int st[7], refused = 0, n = 0;
	crypto_sign_keypair(pk, sk);
	st[0] = send_one(fd, bob, bob_regid);
	st[1] = get_bundles(fd, bob);
	st[2] = it_upload_keys(fd, &regid, 5, 1);
	st[3] = it_add_device(fd, alice, pk, sk, &id);
	st[4] = remove_device(fd, 3);
	st[5] = prekey_count(fd);
	st[6] = list_devices(fd, &n);
	*closed = 0;
	for (int i = 0; i < 7; i++) {
		if (st[i] == PARLEY_E_DEVICE_REMOVED) {
			refused++;
		} else if (st[i] < 0) {
			*closed = 1; /* every later request on a closed connection fails too */
		} else {
			it_failures++;
			fprintf(stderr, "not ok - request %d of a removed device answered %d (%s)\n", i, st[i],
				parley_errname(st[i]));
		}
	}
	return refused;
}

static void run(const char *binary_env, int kick)
{
	srv s;
	const char *bin = getenv(binary_env);
	if (bin == NULL) {
		fprintf(stderr, "not ok - %s not set\n", binary_env);
		it_failures++;
		return;
	}
	setenv("PARLEYD", bin, 1);
	const char *extra[] = {"--workers=2", NULL};
	srv_start(&s, extra);
	char *log = srv_log(&s);
	IT_CHECK(log != NULL && strstr(log, "(2 workers") != NULL);
	free(log);

	uint8_t bpk[32], bsk[64], apk[32], ask[64], pk[4][32], sk[4][64];
	uint32_t bob_regid = 0, id = 0;
	int bob, a1;
	IT_EQ(pw_register(s.port, "bob", bpk, bsk, &bob), PARLEY_OK);
	IT_EQ(it_upload_keys(bob, &bob_regid, 50, 1), PARLEY_OK);
	IT_EQ(pw_register(s.port, "alice", apk, ask, &a1), PARLEY_OK);
	for (uint32_t d = 2; d <= 3; d++) {
		crypto_sign_keypair(pk[d], sk[d]);
		IT_EQ(it_add_device(a1, "alice", pk[d], sk[d], &id), PARLEY_OK);
		IT_EQ(id, d);
	}
	int fds[NCONN];
	for (int i = 0; i < NCONN; i++) {
		fds[i] = it_connect_as(s.port, "alice", 2, sk[2]);
		IT_CHECK(fds[i] >= 0);
	}
	IT_EQ(prekey_count(fds[0]), PARLEY_OK); /* served while it exists */

	IT_EQ(remove_device(a1, 2), PARLEY_OK);

	int refused = 0, closed = 0;
	for (int i = 0; i < NCONN; i++) {
		int c = 0;
		refused += try_everything(fds[i], "bob", bob_regid, "alice", &c);
		closed += c;
		close(fds[i]);
	}
	printf("# %s: %d connections of the removed device: %d closed by the notice, %d requests refused with "
	       "DEVICE_REMOVED\n", binary_env, NCONN, closed, refused);
	if (!kick) {
		/* nothing closed them: every request on every connection must have been refused */
		IT_EQ(closed, 0);
		IT_EQ(refused, NCONN * 7);
	}
	/* device 3 survived, no device was added, and device 1 is served */
	int n = 0;
	IT_EQ(list_devices(a1, &n), PARLEY_OK);
	IT_EQ(n, 2);
	close(a1);
	close(bob);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
}

/* The status of the Response with this id on fd (other frames skipped); -1 on close or timeout. */
static int response_of(int fd, uint64_t id)
{
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, 5000) != 0)
			return -1;
		int st = -2;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE && f.frame->response->id == id)
			st = (int)f.frame->response->status;
		wire__frame_free(&f);
		if (st != -2)
			return st;
	}
}

/* A device authenticating while it is removed: its auth may read the device just before the removal
 * commits, and the removal's notice may then run before the connection is registered on its loop,
 * missing it. The last-seen update after auth runs after the removal and closes it. Against the real
 * parleyd: every auth that won the race must be followed by a close (by the notice when the link was
 * registered in time, else by that second look). The miss itself is a matter of thread timing, so
 * without the second look this fails only sometimes. */
static void auth_racing_removal_closed(void)
{
	srv s;
	setenv("PARLEYD", getenv("PARLEYD_REAL"), 1);
	const char *extra[] = {"--workers=2", NULL};
	srv_start(&s, extra);
	uint8_t apk[32], ask[64];
	int a1, won = 0, lost = 0;
	IT_EQ(pw_register(s.port, "alice", apk, ask, &a1), PARLEY_OK);
	for (int i = 0; i < RACES; i++) {
		uint8_t pk[32], sk[64], nonce[32], sig[64];
		uint32_t id = 0;
		crypto_sign_keypair(pk, sk);
		IT_EQ(it_add_device(a1, "alice", pk, sk, &id), PARLEY_OK);
		int fd = pw_connect(s.port, nonce);
		dynbuf m;
		dynbuf__init(&m, 256);
		wire__auth_signed_bytes(nonce, "alice", id, &m);
		crypto_sign_detached(sig, NULL, m.data, m.len, sk);
		dynbuf__free(&m);
		Parley__Wire__Request au = PARLEY__WIRE__REQUEST__INIT, rm = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__AuthRequest a = PARLEY__WIRE__AUTH_REQUEST__INIT;
		Parley__Wire__RemoveDeviceRequest r = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
		au.id = 2;
		au.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
		au.auth = &a;
		a.handle = "alice";
		a.device_id = id;
		a.signature.data = sig;
		a.signature.len = 64;
		rm.id = 100 + (uint64_t)i;
		rm.body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
		rm.remove_device = &r;
		r.device_id = id;
		/* both in flight at once */
		IT_EQ(pw_send_request(fd, &au), 0);
		IT_EQ(pw_send_request(a1, &rm), 0);
		int st = response_of(fd, 2);
		IT_EQ(response_of(a1, rm.id), PARLEY_OK);
		if (st == PARLEY_OK) {
			won++;
			IT_EQ(ws_expect_close(fd, 3000), 1008);
		} else {
			lost++;
		}
		close(fd);
	}
	printf("# %d auths racing their device's removal: %d authenticated first, %d refused\n",
	       RACES, won, lost);
	close(a1);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
}

static void removed_device_refused_without_notice(void)
{
	run("PARLEYD_NOKICK", 0);
}

static void removed_device_refused_or_closed(void)
{
	run("PARLEYD_REAL", 1);
}

int main(void)
{
	const char *real = getenv("PARLEYD");
	if (real != NULL)
		setenv("PARLEYD_REAL", real, 1);
	IT_RUN(removed_device_refused_without_notice);
	IT_RUN(removed_device_refused_or_closed);
	IT_RUN(auth_racing_removal_closed);
	return it_failures ? 1 : 0;
}
