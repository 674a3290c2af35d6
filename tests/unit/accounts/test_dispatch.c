/* The dispatcher end to end: real net server (2 loop threads), real SQLite store, libparley's
 * WebSocket transport as the device. Checks the auth gate, error answers with ids, protocol
 * violations closing the connection, the 3-failure rule and "removed device is disconnected". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include <parley/error.h>

#include "dispatch/dispatch.h"
#include "base/metrics.h"
#include "common/clock.h"
#include "net/server.h"
#include "services.h"
#include "test.h"
#include "transport/transport.h"
#include "wire/wire.h"

/* any 33-byte Signal public key will do where no list is signed (issue 9: registration needs one) */
static const uint8_t test_account_key[33] = {0x05, 1, 2, 3};

#define MAXQ 32

struct cli {
	uv_loop_t *loop;
	transport_conn *c;
	int open, closed, err;
	uint16_t code;
	wire_frame q[MAXQ];
	size_t nq, head;
	uint8_t nonce[32];
};

static uv_loop_t loop;
static uv_timer_t timer;
static char url[128];

static void c_open(void *ctx, transport_conn *c)
{
	((struct cli *)ctx)->open = 1;
}

static void c_msg(void *ctx, transport_conn *c, const uint8_t *buf, size_t len)
{
	struct cli *k = ctx;
	if (k->nq >= MAXQ)
		return;
	wire_frame *f = &k->q[k->nq];
	if (wire__decode_frame(buf, len, NULL, f) != PARLEY_OK) {
		fprintf(stderr, "# client could not decode a server frame\n");
		return;
	}
	k->nq++;
	if (f->frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
	    f->frame->push->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE)
		memcpy(k->nonce, f->frame->push->challenge->nonce.data, 32);
}

static void c_close(void *ctx, transport_conn *c, int err, uint16_t code)
{
	struct cli *k = ctx;
	k->closed = 1;
	k->err = err;
	k->code = code;
}

static void on_timer(uv_timer_t *t)
{
}

/* Runs the loop until cond holds or 5 s passed. */
#define RUN_UNTIL(cond)                                                                            \
	do {                                                                                       \
		uint64_t dl = uv_now(&loop) + 5000;                                                \
		while (!(cond) && uv_now(&loop) < dl) {                                            \
			uv_timer_start(&timer, on_timer, 50, 0);                                   \
			uv_run(&loop, UV_RUN_ONCE);                                                \
		}                                                                                  \
	} while (0)

static void cli_connect(struct cli *k)
{
	memset(k, 0, sizeof(*k));
	transport_callbacks cb = {.ctx = k, .on_open = c_open, .on_message = c_msg, .on_close = c_close};
	TEST_EQ_INT(transport__connect(&loop, url, NULL, &cb, &k->c), PARLEY_OK);
	RUN_UNTIL(k->open && k->nq >= 1);
	TEST_CHECK(k->nq >= 1);
	TEST_EQ_INT(k->q[0].frame ? (int)k->q[0].frame->kind_case : -1, PARLEY__WIRE__FRAME__KIND_PUSH);
	k->head = 1;
}

/* Next frame (waits for it); NULL on timeout/close. */
static const Parley__Wire__Frame *next(struct cli *k)
{
	RUN_UNTIL(k->nq > k->head || k->closed);
	if (k->nq <= k->head)
		return NULL;
	return k->q[k->head++].frame;
}

static const Parley__Wire__Response *next_response(struct cli *k, uint64_t id)
{
	const Parley__Wire__Frame *f = next(k);
	while (f != NULL && f->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH)
		f = next(k);
	if (f == NULL || f->kind_case != PARLEY__WIRE__FRAME__KIND_RESPONSE) {
		TEST_CHECK(!"expected a response");
		return NULL;
	}
	TEST_EQ_INT(f->response->id, id);
	return f->response;
}

static void send_req(struct cli *k, Parley__Wire__Request *r)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 16);
	TEST_EQ_INT(wire__encode_request(r, &b), PARLEY_OK);
	TEST_EQ_INT(transport__send(k->c, b.data, b.len), PARLEY_OK);
	dynbuf__free(&b);
}

static void cli_free(struct cli *k)
{
	if (!k->closed) {
		transport__close(k->c);
		RUN_UNTIL(k->closed);
	}
	for (size_t i = 0; i < k->nq; i++)
		wire__frame_free(&k->q[i]);
}

static int req_register(struct cli *k, uint64_t id, const char *handle, const uint8_t *pk, const uint8_t *sk)
{
	Parley__Wire__RegisterRequest rr = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	uint8_t sig[64];
	dynbuf m;
	dynbuf__init(&m, 1024);
	wire__register_signed_bytes(k->nonce, handle, pk, "dev", &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	rr.handle = (char *)handle;
	rr.device_key.data = (uint8_t *)pk;
	rr.device_key.len = 32;
	rr.device_name = "dev";
	rr.signature.data = sig;
	rr.signature.len = 64;
	rr.account_key.data = (uint8_t *)test_account_key;
	rr.account_key.len = 33;
	r.id = id;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	r.register_ = &rr;
	send_req(k, &r);
	const Parley__Wire__Response *resp = next_response(k, id);
	return resp ? (int)resp->status : -1;
}

static int req_auth(struct cli *k, uint64_t id, const char *handle, uint32_t dev, const uint8_t *sk)
{
	Parley__Wire__AuthRequest ar = PARLEY__WIRE__AUTH_REQUEST__INIT;
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	uint8_t sig[64];
	dynbuf m;
	dynbuf__init(&m, 1024);
	wire__auth_signed_bytes(k->nonce, handle, dev, &m);
	crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	ar.handle = (char *)handle;
	ar.device_id = dev;
	ar.signature.data = sig;
	ar.signature.len = 64;
	r.id = id;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	r.auth = &ar;
	send_req(k, &r);
	const Parley__Wire__Response *resp = next_response(k, id);
	return resp ? (int)resp->status : -1;
}

static void test_dispatch(void)
{
	struct cli a, b, g, d2;
	uint8_t pk1[32], sk1[64], pk2[32], sk2[64];
	crypto_sign_keypair(pk1, sk1);
	crypto_sign_keypair(pk2, sk2);

	cli_connect(&a);
	/* ping before auth, echoed */
	Parley__Wire__PingRequest pr = PARLEY__WIRE__PING_REQUEST__INIT;
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	pr.payload.data = (uint8_t *)"hi";
	pr.payload.len = 2;
	r.id = 1;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
	r.ping = &pr;
	send_req(&a, &r);
	const Parley__Wire__Response *resp = next_response(&a, 1);
	TEST_CHECK(resp && resp->status == 0 && resp->body_case == PARLEY__WIRE__RESPONSE__BODY_PING &&
		   resp->ping->payload.len == 2);

	/* auth gate */
	Parley__Wire__ListDevicesRequest ld = PARLEY__WIRE__LIST_DEVICES_REQUEST__INIT;
	Parley__Wire__Request rl = PARLEY__WIRE__REQUEST__INIT;
	rl.id = 2;
	rl.body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	rl.list_devices = &ld;
	send_req(&a, &rl);
	resp = next_response(&a, 2);
	TEST_EQ_INT(resp ? resp->status : 0, PARLEY_E_UNAUTHENTICATED);

	/* a bad body with a readable id is answered, the connection stays */
	static const uint8_t nul_handle[] = {0x0a, 0x09, 0x08, 0x03, 0x5a, 0x05, 0x0a, 0x03, 'a', 0x00, 'b'};
	TEST_EQ_INT(transport__send(a.c, nul_handle, sizeof(nul_handle)), PARLEY_OK);
	resp = next_response(&a, 3);
	TEST_EQ_INT(resp ? resp->status : 0, PARLEY_E_PROTO_MALFORMED);

	/* register, then list */
	TEST_EQ_INT(req_register(&a, 4, "zed", pk1, sk1), PARLEY_OK);
	rl.id = 5;
	send_req(&a, &rl);
	resp = next_response(&a, 5);
	TEST_CHECK(resp && resp->status == 0 && resp->list_devices->n_devices == 1);
	TEST_EQ_INT(req_register(&a, 6, "zed2", pk2, sk2), PARLEY_E_ALREADY_AUTHENTICATED);

	/* garbage without an id closes with 1002 */
	cli_connect(&g);
	static const uint8_t junk[] = {0xff, 0xff, 0xff};
	TEST_EQ_INT(transport__send(g.c, junk, sizeof(junk)), PARLEY_OK);
	RUN_UNTIL(g.closed);
	TEST_EQ_INT(g.code, 1002);
	cli_free(&g);

	/* three bad signatures: each answered after a fresh challenge, then closed with 1008 */
	cli_connect(&b);
	for (int i = 0; i < 3; i++) {
		uint8_t before[32];
		memcpy(before, b.nonce, 32);
		TEST_EQ_INT(req_auth(&b, 10 + i, "zed", 1, sk2), PARLEY_E_BAD_SIGNATURE);
		TEST_CHECK(memcmp(before, b.nonce, 32) != 0);
	}
	RUN_UNTIL(b.closed);
	TEST_EQ_INT(b.code, 1008);
	cli_free(&b);

	/* add a device, authenticate it elsewhere, remove it: its connection is closed */
	Parley__Wire__AddDeviceRequest ad = PARLEY__WIRE__ADD_DEVICE_REQUEST__INIT;
	Parley__Wire__Request ra = PARLEY__WIRE__REQUEST__INIT;
	uint8_t proof[64];
	dynbuf pm;
	ad.device_key.data = pk2;
	ad.device_key.len = 32;
	ad.device_name = "phone";
	ad.timestamp_ms = parley__wall_ms();
	dynbuf__init(&pm, 128);
	wire__add_device_signed_bytes("zed", pk2, ad.timestamp_ms, &pm); /* the new device's proof */
	crypto_sign_detached(proof, NULL, pm.data, pm.len, sk2);
	dynbuf__free(&pm);
	ad.signature.data = proof;
	ad.signature.len = 64;
	ra.id = 7;
	ra.body_case = PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE;
	ra.add_device = &ad;
	send_req(&a, &ra);
	resp = next_response(&a, 7);
	TEST_CHECK(resp && resp->status == 0 && resp->add_device->device_id == 2);
	/* several connections of device 2, so that both loop threads are likely to hold one (the
	 * kernel spreads SO_REUSEPORT accepts by hash): removal must close them all */
	struct cli extra[4];
	for (int i = 0; i < 4; i++) {
		cli_connect(&extra[i]);
		TEST_EQ_INT(req_auth(&extra[i], 1, "zed", 2, sk2), PARLEY_OK);
	}
	cli_connect(&d2);
	TEST_EQ_INT(req_auth(&d2, 1, "zed", 2, sk2), PARLEY_OK);
	TEST_EQ_INT(metrics__get(METRIC_WS_CONNS_AUTHENTICATED), 6); /* a, extra[4], d2 */
	Parley__Wire__RemoveDeviceRequest rd = PARLEY__WIRE__REMOVE_DEVICE_REQUEST__INIT;
	Parley__Wire__Request rr = PARLEY__WIRE__REQUEST__INIT;
	rd.device_id = 2;
	rr.id = 8;
	rr.body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
	rr.remove_device = &rd;
	send_req(&a, &rr);
	resp = next_response(&a, 8);
	TEST_EQ_INT(resp ? (int)resp->status : -1, PARLEY_OK);
	RUN_UNTIL(d2.closed && extra[0].closed && extra[1].closed && extra[2].closed && extra[3].closed);
	TEST_CHECK(d2.closed);
	TEST_EQ_INT(d2.code, 1008);
	for (int i = 0; i < 4; i++) {
		TEST_EQ_INT(extra[i].code, 1008);
		cli_free(&extra[i]);
	}
	cli_free(&d2);
	/* the account's own device is untouched */
	TEST_CHECK(!a.closed);
	cli_free(&a);
}

int main(void)
{
	char dir[64], path[128];
	store *st = NULL;
	dispatch *d = NULL;
	int err = 0;
	snprintf(dir, sizeof(dir), "/tmp/parley-disp-XXXXXX");
	if (mkdtemp(dir) == NULL || sodium_init() < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/d.db", dir);
	store_config scfg = {.path = path};
	if (store__open(&scfg, &st) != PARLEY_OK)
		return 1;
	static parleyd_config pc;
	config__defaults(&pc);
	pc.workers = 2;
	/* the auth service keeps its one-time-code key file in the data directory */
	snprintf(pc.data_dir, sizeof(pc.data_dir), "%s", dir);
	size_t n_services;
	const struct service *const *services = parleyd__services(&n_services);
	if (dispatch__new(st, &pc, services, n_services, &d) != PARLEY_OK)
		return 1;
	net_config nc;
	net__config_defaults(&nc);
	nc.port = 0;
	nc.workers = 2;
	net_handler h = dispatch__handler(d);
	net_server *ns = net__server_new(&nc, &h, &err);
	if (ns == NULL || net__server_start(ns) != PARLEY_OK)
		return 1;
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", net__server_port(ns));
	uv_loop_init(&loop);
	uv_timer_init(&loop, &timer);

	TEST_RUN(test_dispatch);

	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	net__server_drain(ns, 1000);
	TEST_EQ_INT(metrics__get(METRIC_WS_CONNS_OPEN), 0);
	TEST_EQ_INT(metrics__get(METRIC_WS_CONNS_AUTHENTICATED), 0);
	net__server_free(ns);
	dispatch__free(d);
	store__close(st);
	test_remove_tree(dir);
	TEST_EXIT();
}
