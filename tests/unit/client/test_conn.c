/* The client's event core (lib/client/conn.c) against a scripted in-process server: parleyd's real
 * network layer (server/net) and wire codec, with a small service here that sends the challenge, checks
 * Ed25519 signatures over the exact signed bytes, keeps a device table, and can misbehave on demand
 * (stay silent, answer late, send garbage, close). Covers register, auth on demand, list/add/remove,
 * link of a second device, server refusals, request timeouts, malformed frames, dropped connections,
 * concurrent async operations and re-entrancy; and the op mechanism itself with an op kind defined only
 * here (its own build + complete, no change to the core): it completes exactly once on a response, a
 * timeout (a late answer is ignored), a disconnect, a dropped connection, a failed build, a wrong
 * response kind and parley_client_free. And customer authentication's calls (<parley/auth.h>): what
 * they send, answers about another component, entity or thread refused, the AuthPrompt push, callbacks
 * exactly once. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/auth.h>
#include <parley/client.h>
#include <parley/signal.h>
#include <sodium.h>

#include "../test.h"
#include "client_test.h"
#include "client/client_internal.h"
#include "common/alloc.h"
#include "net/server.h"
#include "wire/wire.h"

enum {
	MODE_NORMAL,
	MODE_SILENT_BEFORE_AUTH,
	MODE_SILENT_AFTER_AUTH,
	MODE_SLOW_AFTER_AUTH,
	MODE_GARBAGE,
	MODE_CLOSE,
	MODE_NO_RECHALLENGE
};

#define SLOW_MS 400 /* MODE_SLOW_AFTER_AUTH: the answer comes this late */

static atomic_int mode;
static char root[256];

/* Server-side state: touched only on the server's single worker thread. */
typedef struct fake_device {
	uint32_t id;
	char name[65];
	uint8_t key[32];
	int present;
} fake_device;
static fake_device devices[8];
static char account_handle[33];
static uint8_t devlist[WIRE_DEVLIST_MAX_BYTES];
static size_t devlist_len;

typedef struct fake_conn {
	uint8_t nonce[WIRE_NONCE_LEN];
	uint32_t authed_device; /* 0 = not authenticated */
} fake_conn;

static void send_resp(net_conn *c, Parley__Wire__Response *r)
{
	dynbuf out;
	dynbuf__init(&out, WIRE_DEFAULT_MAX_FRAME);
	if (wire__encode_response(r, &out) == PARLEY_OK)
		net__conn_send(c, out.data, out.len);
	dynbuf__free(&out);
}

static void send_status(net_conn *c, uint64_t id, int status)
{
	dynbuf out;
	dynbuf__init(&out, WIRE_DEFAULT_MAX_FRAME);
	if (wire__encode_error(id, status, &out) == PARLEY_OK)
		net__conn_send(c, out.data, out.len);
	dynbuf__free(&out);
}

static void push_challenge(net_conn *c, fake_conn *fc)
{
	dynbuf out;

	randombytes_buf(fc->nonce, sizeof(fc->nonce));
	dynbuf__init(&out, WIRE_DEFAULT_MAX_FRAME);
	if (wire__encode_challenge(fc->nonce, 1, &out) == PARLEY_OK)
		net__conn_send(c, out.data, out.len);
	dynbuf__free(&out);
}

static void fake_open(void *ctx, net_conn *c)
{
	fake_conn *fc = calloc(1, sizeof(*fc));
	net__conn_set_data(c, fc);
	push_challenge(c, fc);
}

/* A failed register/auth: like parleyd, a fresh challenge goes out before the error (protocol §5);
 * MODE_NO_RECHALLENGE plays a server that does not, so the client must reconnect. */
static void auth_failed(net_conn *c, fake_conn *fc, uint64_t id, int status)
{
	if (atomic_load(&mode) == MODE_NO_RECHALLENGE)
		memset(fc->nonce, 0, sizeof(fc->nonce));
	else
		push_challenge(c, fc);
	send_status(c, id, status);
}

static void fake_close(void *ctx, net_conn *c)
{
	free(net__conn_data(c));
}

static int verify(const uint8_t *sig, size_t siglen, const dynbuf *msg, const uint8_t *key)
{
	return siglen == WIRE_SIG_LEN && crypto_sign_verify_detached(sig, msg->data, msg->len, key) == 0;
}

static void do_register(net_conn *c, fake_conn *fc, uint64_t id, const Parley__Wire__RegisterRequest *r)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__RegisterResponse body = PARLEY__WIRE__REGISTER_RESPONSE__INIT;
	dynbuf msg;
	int ok;

	dynbuf__init(&msg, 4096);
	ok = r->device_key.len == 32 &&
	     wire__register_signed_bytes(fc->nonce, r->handle, r->device_key.data, r->device_name, &msg) == PARLEY_OK &&
	     verify(r->signature.data, r->signature.len, &msg, r->device_key.data);
	dynbuf__free(&msg);
	if (!ok) {
		auth_failed(c, fc, id, PARLEY_E_BAD_SIGNATURE);
		return;
	}
	if (strcmp(r->handle, "taken") == 0 || account_handle[0] != '\0') {
		auth_failed(c, fc, id, PARLEY_E_HANDLE_TAKEN);
		return;
	}
	snprintf(account_handle, sizeof(account_handle), "%s", r->handle);
	devices[0].id = 1;
	devices[0].present = 1;
	snprintf(devices[0].name, sizeof(devices[0].name), "%s", r->device_name);
	memcpy(devices[0].key, r->device_key.data, 32);
	fc->authed_device = 1;
	body.account_id = 7;
	body.device_id = 1;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_REGISTER;
	resp.register_ = &body;
	send_resp(c, &resp);
}

static void do_auth(net_conn *c, fake_conn *fc, uint64_t id, const Parley__Wire__AuthRequest *r)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AuthResponse body = PARLEY__WIRE__AUTH_RESPONSE__INIT;
	dynbuf msg;
	int ok;

	/* unknown device and bad signature look the same (protocol §5.2) */
	if (strcmp(r->handle, account_handle) != 0 || r->device_id == 0 || r->device_id > 8 ||
	    !devices[r->device_id - 1].present) {
		auth_failed(c, fc, id, PARLEY_E_BAD_SIGNATURE);
		return;
	}
	dynbuf__init(&msg, 4096);
	ok = wire__auth_signed_bytes(fc->nonce, r->handle, r->device_id, &msg) == PARLEY_OK &&
	     verify(r->signature.data, r->signature.len, &msg, devices[r->device_id - 1].key);
	dynbuf__free(&msg);
	if (!ok) {
		auth_failed(c, fc, id, PARLEY_E_BAD_SIGNATURE);
		return;
	}
	fc->authed_device = r->device_id;
	body.account_id = 7;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_AUTH;
	resp.auth = &body;
	send_resp(c, &resp);
}

static void do_list(net_conn *c, uint64_t id)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__ListDevicesResponse body = PARLEY__WIRE__LIST_DEVICES_RESPONSE__INIT;
	Parley__Wire__Device d[8], *pd[8];
	size_t i, n = 0;

	for (i = 0; i < 8; i++) {
		if (!devices[i].present)
			continue;
		parley__wire__device__init(&d[n]);
		d[n].device_id = devices[i].id;
		d[n].name = devices[i].name;
		d[n].device_key.data = devices[i].key;
		d[n].device_key.len = 32;
		d[n].created_ms = 1700000000000ull;
		pd[n] = &d[n];
		n++;
	}
	body.n_devices = n;
	body.devices = pd;
	body.signed_device_list.data = devlist;
	body.signed_device_list.len = devlist_len;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES;
	resp.list_devices = &body;
	send_resp(c, &resp);
}

static void do_add(net_conn *c, uint64_t id, const Parley__Wire__AddDeviceRequest *r)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__AddDeviceResponse body = PARLEY__WIRE__ADD_DEVICE_RESPONSE__INIT;
	size_t i;

	for (i = 0; i < 8 && devices[i].present; i++)
		;
	if (i == 8 || r->device_key.len != 32) {
		send_status(c, id, PARLEY_E_TOO_MANY_DEVICES);
		return;
	}
	devices[i].id = (uint32_t)i + 1;
	devices[i].present = 1;
	snprintf(devices[i].name, sizeof(devices[i].name), "%s", r->device_name);
	memcpy(devices[i].key, r->device_key.data, 32);
	body.device_id = devices[i].id;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_ADD_DEVICE;
	resp.add_device = &body;
	send_resp(c, &resp);
}

static void do_remove(net_conn *c, uint64_t id, const Parley__Wire__RemoveDeviceRequest *r)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__RemoveDeviceResponse body = PARLEY__WIRE__REMOVE_DEVICE_RESPONSE__INIT;

	if (r->device_id == 0 || r->device_id > 8 || !devices[r->device_id - 1].present) {
		send_status(c, id, PARLEY_E_NO_SUCH_DEVICE);
		return;
	}
	devices[r->device_id - 1].present = 0;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_REMOVE_DEVICE;
	resp.remove_device = &body;
	send_resp(c, &resp);
}

/* Signed device lists (issue 9): kept as uploaded (parleyd's checks are tested against parleyd) and
 * served with the device list, which is where the client reads the current one before the next. */
static void do_upload_devlist(net_conn *c, uint64_t id, const Parley__Wire__UploadDeviceListRequest *r)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__UploadDeviceListResponse body = PARLEY__WIRE__UPLOAD_DEVICE_LIST_RESPONSE__INIT;
	if (r->signed_device_list.len > sizeof(devlist)) {
		send_status(c, id, PARLEY_E_DEVICE_LIST_INVALID);
		return;
	}
	memcpy(devlist, r->signed_device_list.data, r->signed_device_list.len);
	devlist_len = r->signed_device_list.len;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_UPLOAD_DEVICE_LIST;
	resp.upload_device_list = &body;
	send_resp(c, &resp);
}

/* Key upload after register/link: the scripted server checks the signed prekey's signature and
 * counts the prekeys, like parleyd. */
static unsigned prekeys_uploaded;

static void do_upload(net_conn *c, uint64_t id, const Parley__Wire__UploadKeysRequest *r)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__UploadKeysResponse body = PARLEY__WIRE__UPLOAD_KEYS_RESPONSE__INIT;

	if (r->signed_prekey != NULL &&
	    parley_signal_verify(r->identity_key.data, r->signed_prekey->public_key.data, 33,
				 r->signed_prekey->signature.data) != PARLEY_OK) {
		send_status(c, id, PARLEY_E_BAD_KEY_SIGNATURE);
		return;
	}
	prekeys_uploaded += (unsigned)r->n_one_time_prekeys;
	body.one_time_prekeys_remaining = prekeys_uploaded;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_UPLOAD_KEYS;
	resp.upload_keys = &body;
	send_resp(c, &resp);
}

static void do_count(net_conn *c, uint64_t id)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__GetPrekeyCountResponse body = PARLEY__WIRE__GET_PREKEY_COUNT_RESPONSE__INIT;

	body.one_time_prekeys_remaining = 100;
	body.signed_prekey_id = 1;
	resp.id = id;
	resp.body_case = PARLEY__WIRE__RESPONSE__BODY_GET_PREKEY_COUNT;
	resp.get_prekey_count = &body;
	send_resp(c, &resp);
}

/* ---- customer authentication (lib/client/auth.c): a scripted service whose answers are chosen by
 * the request (a name, a component id, a code), echoing what it got so the test sees the encoding ---- */

static char auth_seen_otp[32], auth_seen_jwt[64], auth_seen_put_name[80], auth_seen_secret[80];
static uint32_t auth_seen_ttl, auth_seen_binding;

static void auth_resp(net_conn *c, uint64_t id, int body_case, void *body)
{
	Parley__Wire__Response resp = PARLEY__WIRE__RESPONSE__INIT;
	resp.id = id;
	resp.body_case = body_case;
	/* every Auth* response body is the one member of the oneof: set through any of them */
	resp.auth_component_put = body;
	send_resp(c, &resp);
}

static void do_auth_put(net_conn *c, uint64_t id, const Parley__Wire__AuthComponentPutRequest *r)
{
	static char longname[PARLEY_AUTH_NAME_MAX + 2];
	Parley__Wire__AuthComponentPutResponse body = PARLEY__WIRE__AUTH_COMPONENT_PUT_RESPONSE__INIT;
	Parley__Wire__AuthComponent comp;

	if (r->component == NULL) {
		send_status(c, id, PARLEY_E_COMPONENT_INVALID);
		return;
	}
	snprintf(auth_seen_put_name, sizeof(auth_seen_put_name), "%s", r->component->name);
	snprintf(auth_seen_secret, sizeof(auth_seen_secret), "%s", r->component->secret_ref);
	auth_seen_ttl = r->component->credential_ttl_s;
	auth_seen_binding = (uint32_t)r->component->binding;
	if (strcmp(r->component->name, "refused") == 0) {
		send_status(c, id, PARLEY_E_COMPONENT_INVALID);
		return;
	}
	comp = *r->component;
	comp.component_id = comp.component_id != 0 ? comp.component_id : 5;
	comp.state = PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_DRAFT;
	comp.secret_ref = (char *)"";
	if (strcmp(r->component->name, "long-answer") == 0) { /* a name one byte longer than the field */
		memset(longname, 'n', PARLEY_AUTH_NAME_MAX + 1);
		comp.name = longname;
	} else if (strcmp(r->component->name, "other-entity") == 0) {
		comp.entity = (char *)"other";
	}
	body.component = &comp;
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_COMPONENT_PUT, &body);
}

static void fill_comp(Parley__Wire__AuthComponent *w, uint64_t id, const char *entity, const char *name, int state)
{
	parley__wire__auth_component__init(w);
	w->component_id = id;
	w->entity = (char *)entity;
	w->name = (char *)name;
	w->type = PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC;
	w->state = (Parley__Wire__AuthComponentState)state;
	w->issuer = (char *)"https://id.acme.example";
}

static void do_auth_state(net_conn *c, uint64_t id, const Parley__Wire__AuthComponentStateRequest *r)
{
	Parley__Wire__AuthComponentStateResponse body = PARLEY__WIRE__AUTH_COMPONENT_STATE_RESPONSE__INIT;
	Parley__Wire__AuthComponent comp;

	/* component 66: the answer is about another component */
	fill_comp(&comp, r->component_id == 66 ? 67 : r->component_id, r->entity, "acme-sso", (int)r->state);
	body.component = &comp;
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_COMPONENT_STATE, &body);
}

static void do_auth_list(net_conn *c, uint64_t id, const Parley__Wire__AuthComponentListRequest *r)
{
	Parley__Wire__AuthComponentListResponse body = PARLEY__WIRE__AUTH_COMPONENT_LIST_RESPONSE__INIT;
	Parley__Wire__AuthComponent comp[3], *pc[3];

	fill_comp(&comp[0], 1, r->entity, "acme-sso", PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE);
	fill_comp(&comp[1], 2, r->entity, "acme-code", PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_DRAFT);
	/* entity "mixed": one component of another entity slipped in */
	fill_comp(&comp[2], 3, strcmp(r->entity, "mixed") == 0 ? "other" : r->entity, "acme-jwt",
		  PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_INACTIVE);
	for (int i = 0; i < 3; i++)
		pc[i] = &comp[i];
	body.components = pc;
	body.n_components = 3;
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_COMPONENT_LIST, &body);
}

static void fill_request(Parley__Wire__AuthRequestInfo *w, uint64_t request_id, uint64_t thread_id, uint64_t comp_id)
{
	parley__wire__auth_request_info__init(w);
	w->request_id = request_id;
	w->thread_id = thread_id;
	w->component_id = comp_id;
	w->component = (char *)"acme-sso";
	w->type = PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC;
	w->url = (char *)"https://auth.example/v1/auth/start/tok";
	w->expires_ms = 1700000600000ull;
	w->status = PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_OPEN;
}

static void do_auth_start(net_conn *c, uint64_t id, const Parley__Wire__AuthStartRequest *r)
{
	Parley__Wire__AuthStartResponse body = PARLEY__WIRE__AUTH_START_RESPONSE__INIT;
	Parley__Wire__Push push = PARLEY__WIRE__PUSH__INIT;
	Parley__Wire__AuthPrompt prompt = PARLEY__WIRE__AUTH_PROMPT__INIT;
	Parley__Wire__AuthRequestInfo req;
	dynbuf out;

	if (r->component_id == 77) {
		send_status(c, id, PARLEY_E_TOO_MANY_AUTH_REQUESTS);
		return;
	}
	/* component 66: the answer is about another thread */
	fill_request(&req, 9, r->component_id == 66 ? r->thread_id + 1 : r->thread_id, r->component_id);
	body.request = &req;
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_START, &body);
	/* and the prompt, as the customer's devices get it (here the same account) */
	prompt.entity = (char *)"shop";
	prompt.entity_name = (char *)"Shop";
	prompt.request = &req;
	prompt.channel_user = (char *)"";
	prompt.otp = (char *)"";
	push.body_case = PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT;
	push.auth_prompt = &prompt;
	dynbuf__init(&out, WIRE_DEFAULT_MAX_FRAME);
	if (wire__encode_push(&push, &out) == PARLEY_OK)
		net__conn_send(c, out.data, out.len);
	dynbuf__free(&out);
}

static void do_auth_answer(net_conn *c, uint64_t id, const Parley__Wire__AuthAnswerRequest *r)
{
	Parley__Wire__AuthAnswerResponse body = PARLEY__WIRE__AUTH_ANSWER_RESPONSE__INIT;

	snprintf(auth_seen_otp, sizeof(auth_seen_otp), "%s", r->otp);
	snprintf(auth_seen_jwt, sizeof(auth_seen_jwt), "%s", r->jwt);
	if (strcmp(r->otp, "000000") == 0) {
		send_status(c, id, PARLEY_E_OTP_WRONG);
		return;
	}
	body.verification = PARLEY__WIRE__VERIFICATION_LEVEL__VERIFICATION_AUTHENTICATED;
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_ANSWER, &body);
}

static void do_auth_status(net_conn *c, uint64_t id, const Parley__Wire__AuthStatusRequest *r)
{
	Parley__Wire__AuthStatusResponse body = PARLEY__WIRE__AUTH_STATUS_RESPONSE__INIT;
	Parley__Wire__AuthRequestInfo req[2], *pr[2];
	Parley__Wire__AuthClaim claim = PARLEY__WIRE__AUTH_CLAIM__INIT, *pcl = &claim;
	char *email = (char *)"carol@example.com";

	fill_request(&req[0], 12, r->thread_id, 1);
	req[0].status = PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_DONE;
	fill_request(&req[1], 11, r->thread_id, 2);
	req[1].status = PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_FAILED;
	req[1].error = PARLEY_E_OTP_ATTEMPTS;
	/* thread 13: a URL that is no http(s) link */
	if (r->thread_id == 13)
		req[1].url = (char *)"javascript:alert(1)";
	pr[0] = &req[0];
	pr[1] = &req[1];
	claim.name = (char *)"email";
	claim.value = (char *)"carol@example.com";
	body.verification = PARLEY__WIRE__VERIFICATION_LEVEL__VERIFICATION_AUTHENTICATED;
	body.verified_until_ms = 1700003600000ull;
	body.verified_by = (char *)"acme-sso";
	body.requests = pr;
	body.n_requests = 2;
	body.claims = &pcl;
	body.n_claims = 1;
	/* thread 14: a known email with a control byte */
	body.known_emails = &email;
	body.n_known_emails = 1;
	if (r->thread_id == 14)
		email = (char *)"carol@exa\x1bmple.com";
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_STATUS, &body);
}

static char auth_seen_email[300];
static int auth_seen_remove;

/* thread 20: the known list (and the address sent, if added); 21: an address the server cannot have
 * stored (upper case); 22: one more than a client holds; 23: the server's refusal */
static void do_auth_known_email(net_conn *c, uint64_t id, const Parley__Wire__AuthKnownEmailRequest *r)
{
	Parley__Wire__AuthKnownEmailResponse body = PARLEY__WIRE__AUTH_KNOWN_EMAIL_RESPONSE__INIT;
	char *list[PARLEY_AUTH_EMAILS_MAX + 1];
	size_t n = 0;

	snprintf(auth_seen_email, sizeof(auth_seen_email), "%s", r->email);
	auth_seen_remove = r->remove;
	if (r->thread_id == 23) {
		send_status(c, id, PARLEY_E_TOO_MANY_KNOWN_EMAILS);
		return;
	}
	list[n++] = (char *)(r->thread_id == 21 ? "Alice@example.com" : "alice@example.com");
	if (r->email[0] != '\0' && !r->remove)
		list[n++] = r->email;
	while (r->thread_id == 22 && n < PARLEY_AUTH_EMAILS_MAX + 1)
		list[n++] = (char *)"bob@example.com";
	body.emails = list;
	body.n_emails = n;
	auth_resp(c, id, PARLEY__WIRE__RESPONSE__BODY_AUTH_KNOWN_EMAIL, &body);
}

static void fake_message(void *ctx, net_conn *c, const uint8_t *buf, size_t len)
{
	fake_conn *fc = net__conn_data(c);
	const Parley__Wire__Request *req;
	wire_frame f;
	int m = atomic_load(&mode);

	if (wire__decode_frame(buf, len, NULL, &f) != PARLEY_OK ||
	    f.frame->kind_case != PARLEY__WIRE__FRAME__KIND_REQUEST) {
		wire__frame_free(&f);
		net__conn_close(c, 1002, "bad frame");
		return;
	}
	req = f.frame->request;
	if (m == MODE_CLOSE) {
		net__conn_close(c, 1011, "scripted close");
	} else if (m == MODE_GARBAGE) {
		static const uint8_t junk[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f};
		net__conn_send(c, junk, sizeof(junk));
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_REGISTER) {
		do_register(c, fc, req->id, req->register_);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH) {
		do_auth(c, fc, req->id, req->auth);
	} else if (fc->authed_device == 0 && m == MODE_SILENT_BEFORE_AUTH) {
		/* an unauthenticated connection's other requests get no answer at all */
	} else if (fc->authed_device == 0) {
		send_status(c, req->id, PARLEY_E_UNAUTHENTICATED);
	} else if (m == MODE_SILENT_AFTER_AUTH) {
		/* say nothing */
	} else if (m == MODE_SLOW_AFTER_AUTH && req->body_case == PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES) {
		/* the single worker thread sleeps: the answer arrives after the client gave up */
		struct timespec ts = {0, SLOW_MS * 1000000L};
		nanosleep(&ts, NULL);
		do_list(c, req->id);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES) {
		do_list(c, req->id);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE) {
		do_add(c, req->id, req->add_device);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE) {
		do_remove(c, req->id, req->remove_device);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS) {
		do_upload(c, req->id, req->upload_keys);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_UPLOAD_DEVICE_LIST) {
		do_upload_devlist(c, req->id, req->upload_device_list);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT) {
		do_count(c, req->id);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT) {
		do_auth_put(c, req->id, req->auth_component_put);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE) {
		do_auth_state(c, req->id, req->auth_component_state);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_LIST) {
		do_auth_list(c, req->id, req->auth_component_list);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_START) {
		do_auth_start(c, req->id, req->auth_start);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER) {
		do_auth_answer(c, req->id, req->auth_answer);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_STATUS) {
		do_auth_status(c, req->id, req->auth_status);
	} else if (req->body_case == PARLEY__WIRE__REQUEST__BODY_AUTH_KNOWN_EMAIL) {
		do_auth_known_email(c, req->id, req->auth_known_email);
	} else {
		send_status(c, req->id, PARLEY_E_PROTO_UNKNOWN);
	}
	wire__frame_free(&f);
}

static char url[128];

static parley_client *client_in(const char *sub, unsigned timeout_ms)
{
	return test_client_new(root, sub, url, timeout_ms);
}

static void test_register_and_devices(void)
{
	parley_client *a = client_in("a", 5000), *b = client_in("b", 5000);
	parley_device_list *l = NULL;
	parley_device_info d;
	uint8_t kb[PARLEY_DEVICE_KEY_BYTES], code[PARLEY_DEVICE_LINK_CODE_BYTES];
	char handle[64];
	uint64_t account = 0;
	uint32_t dev = 0, new_id = 0;

	TEST_EQ_INT(parley_register(a, "taken", NULL), PARLEY_E_HANDLE_TAKEN);
	TEST_EQ_INT(parley_identity(a, handle, sizeof(handle), NULL, NULL), PARLEY_E_NO_IDENTITY);
	/* a server that sends no fresh challenge after a refusal: the client reconnects for the next try */
	atomic_store(&mode, MODE_NO_RECHALLENGE);
	TEST_EQ_INT(parley_register(a, "taken", NULL), PARLEY_E_HANDLE_TAKEN);
	TEST_EQ_INT(parley_register(a, "taken", NULL), PARLEY_E_HANDLE_TAKEN);
	atomic_store(&mode, MODE_NORMAL);
	/* after a refusal the next attempt signs the fresh challenge pushed on the same connection */
	TEST_EQ_INT(parley_register(a, "taken", NULL), PARLEY_E_HANDLE_TAKEN);
	TEST_EQ_INT(parley_register(a, "alice", "desk"), PARLEY_OK);
	TEST_EQ_INT(parley_identity(a, handle, sizeof(handle), &account, &dev), PARLEY_OK);
	TEST_EQ_STR(handle, "alice");
	TEST_EQ_INT(account, 7);
	TEST_EQ_INT(dev, 1);
	TEST_EQ_INT(parley_register(a, "alice2", NULL), PARLEY_E_STATE);

	/* same connection (authenticated by register) */
	TEST_EQ_INT(parley_devices_list(a, &l), PARLEY_OK);
	TEST_EQ_INT(parley_device_list_count(l), 1);
	TEST_EQ_INT(parley_device_list_get(l, 0, &d), PARLEY_OK);
	TEST_EQ_STR(d.name, "desk");
	TEST_EQ_INT(d.is_self, 1);
	parley_device_list_free(l);

	/* a new connection authenticates on demand with the saved identity */
	parley_client_disconnect(a);
	TEST_EQ_INT(parley_device_public_key(b, kb), PARLEY_OK);
	TEST_EQ_INT(parley_device_link_code(b, "alice", code), PARLEY_OK);
	TEST_EQ_MEM(code, kb, sizeof(kb)); /* the code starts with the key */
	TEST_EQ_INT(parley_device_add(a, code, "laptop", &new_id), PARLEY_OK);
	TEST_EQ_INT(new_id, 2);

	/* the second device links, then sees both with itself marked */
	TEST_EQ_INT(parley_link(b, "alice", 3), PARLEY_E_BAD_SIGNATURE);
	TEST_EQ_INT(parley_link(b, "alice", 2), PARLEY_OK);
	TEST_EQ_INT(parley_identity(b, handle, sizeof(handle), &account, &dev), PARLEY_OK);
	TEST_EQ_INT(dev, 2);
	TEST_EQ_INT(parley_devices_list(b, &l), PARLEY_OK);
	TEST_EQ_INT(parley_device_list_count(l), 2);
	TEST_EQ_INT(parley_device_list_get(l, 1, &d), PARLEY_OK);
	TEST_EQ_INT(d.id, 2);
	TEST_EQ_INT(d.is_self, 1);
	TEST_EQ_MEM(d.key, kb, sizeof(kb));
	parley_device_list_free(l);

	/* removed: its next authentication is refused with the server's status */
	TEST_EQ_INT(parley_device_remove(a, 2), PARLEY_OK);
	TEST_EQ_INT(parley_device_remove(a, 2), PARLEY_E_NO_SUCH_DEVICE);
	parley_client_disconnect(b);
	TEST_EQ_INT(parley_devices_list(b, &l), PARLEY_E_BAD_SIGNATURE);
	TEST_CHECK(l == NULL);
	parley_client_free(b);

	/* a device that removes itself forgets its account, keeps its key, and can link again */
	b = client_in("c", 5000);
	TEST_EQ_INT(parley_device_link_code(b, "alice", code), PARLEY_OK);
	TEST_EQ_INT(parley_device_add(a, code, "phone", &new_id), PARLEY_OK);
	TEST_EQ_INT(parley_link(b, "alice", new_id), PARLEY_OK);
	TEST_EQ_INT(parley_device_remove(b, new_id), PARLEY_OK);
	TEST_EQ_INT(parley_identity(b, handle, sizeof(handle), NULL, NULL), PARLEY_E_NO_IDENTITY);
	parley_client_free(b);

	/* the state survives the client: a new instance authenticates with the stored key */
	parley_client_free(a);
	a = client_in("a", 5000);
	TEST_EQ_INT(parley_devices_list(a, &l), PARLEY_OK);
	TEST_EQ_INT(parley_device_list_count(l), 1);
	parley_device_list_free(l);
	parley_client_free(a);
}

static int async_calls;
static parley_err async_status[4];

static void on_list(parley_client *c, parley_err st, parley_device_list *l, void *user)
{
	async_status[async_calls++] = st;
	parley_device_list_free(l);
	/* no blocking call, and no nested run, from inside a callback */
	TEST_EQ_INT(parley_devices_list(c, &l), PARLEY_E_STATE);
	TEST_EQ_INT(parley_client_run(c, 0), PARLEY_E_STATE);
}

static void on_id(parley_client *c, parley_err st, uint32_t id, void *user)
{
	async_status[async_calls++] = st;
	*(uint32_t *)user = id;
}

static void test_async_concurrent(void)
{
	parley_client *a = client_in("a", 5000);
	parley_client *t = client_in("t", 5000);
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	uint32_t id = 0;
	int more = 1;

	TEST_EQ_INT(parley_device_link_code(t, "alice", code), PARLEY_OK);
	parley_client_free(t);
	async_calls = 0;
	TEST_EQ_INT(parley_devices_list_start(a, on_list, NULL), PARLEY_OK);
	TEST_EQ_INT(parley_device_add_start(a, code, "tablet", on_id, &id), PARLEY_OK);
	TEST_EQ_INT(parley_devices_list_start(a, on_list, NULL), PARLEY_OK);
	TEST_EQ_INT(async_calls, 0);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(async_calls, 3);
	TEST_EQ_INT(async_status[0], PARLEY_OK);
	TEST_EQ_INT(async_status[1], PARLEY_OK);
	TEST_EQ_INT(async_status[2], PARLEY_OK);
	TEST_CHECK(id >= 2);
	/* nothing pending: run_once does not block */
	TEST_EQ_INT(parley_client_run_once(a, &more), PARLEY_OK);
	TEST_EQ_INT(more, 0);
	parley_client_free(a);
}

static void stop_in_callback(parley_client *c, parley_err st, parley_device_list *l, void *user)
{
	*(parley_err *)user = st;
	parley_device_list_free(l);
	parley_client_stop(c);
}

/* run(timeout) keeps dispatching while idle for that long; parley_client_stop ends it early. */
static void test_run_timeout_and_stop(void)
{
	parley_client *a = client_in("a", 5000);
	parley_err st = PARLEY_E_INTERNAL;
	uint64_t t0;

	t0 = uv_hrtime();
	TEST_EQ_INT(parley_client_run(a, 200), PARLEY_OK);
	TEST_CHECK(uv_hrtime() - t0 >= 190000000ull);
	TEST_EQ_INT(parley_devices_list_start(a, stop_in_callback, &st), PARLEY_OK);
	t0 = uv_hrtime();
	TEST_EQ_INT(parley_client_run(a, 20000), PARLEY_OK);
	TEST_EQ_INT(st, PARLEY_OK);
	TEST_CHECK(uv_hrtime() - t0 < 5000000000ull);
	parley_client_free(a);
}

static void test_misbehaving_server(void)
{
	parley_client *a = client_in("a", 400);
	parley_device_list *l = NULL;
	uint64_t t0;
	int rc;

	atomic_store(&mode, MODE_SILENT_AFTER_AUTH);
	t0 = uv_hrtime();
	TEST_EQ_INT(parley_devices_list(a, &l), PARLEY_E_TIMEOUT);
	TEST_CHECK(uv_hrtime() - t0 < 3000000000ull); /* bounded by the request timeout */
	TEST_CHECK(strstr(parley_client_errmsg(a), "no answer") != NULL);

	atomic_store(&mode, MODE_GARBAGE);
	parley_client_disconnect(a);
	rc = parley_devices_list(a, &l);
	TEST_CHECK(rc == PARLEY_E_PROTO_MALFORMED || rc == PARLEY_E_PROTO_TRUNCATED);

	atomic_store(&mode, MODE_CLOSE);
	rc = parley_devices_list(a, &l);
	TEST_EQ_INT(rc, PARLEY_E_CLOSED);

	/* and it recovers once the server behaves */
	atomic_store(&mode, MODE_NORMAL);
	TEST_EQ_INT(parley_devices_list(a, &l), PARLEY_OK);
	parley_device_list_free(l);
	parley_client_free(a);
}

/* ---- the op mechanism, with an op kind the core has never heard of ---- */

typedef struct test_op {
	client_op op;
	Parley__Wire__ListDevicesRequest body;
	int build_rc;  /* what build returns */
	int builds;
	int completions;
	int status;
	int had_resp;
	int resp_case;
} test_op;

static int test_build(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	test_op *t = CLIENT_OP_OWNER(op, test_op, op);
	t->builds++;
	if (t->build_rc != PARLEY_OK)
		return t->build_rc;
	parley__wire__list_devices_request__init(&t->body);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req->list_devices = &t->body;
	return PARLEY_OK;
}

/* Records instead of freeing: the test owns the memory and checks the counts afterwards. */
static void test_complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	test_op *t = CLIENT_OP_OWNER(op, test_op, op);
	t->completions++;
	t->status = status;
	t->had_resp = r != NULL;
	t->resp_case = r != NULL ? (int)r->body_case : -1;
}

static const client_op_vtable test_vt = {test_build, test_complete, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES, 0};
/* expects another response kind than the server sends for a list request */
static const client_op_vtable wrong_kind_vt = {test_build, test_complete, PARLEY__WIRE__RESPONSE__BODY_ADD_DEVICE,
					       0};
/* claims to authenticate the connection: refused on one that is already authenticated */
static const client_op_vtable auth_like_vt = {test_build, test_complete, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES,
					      CLIENT_OP_AUTHENTICATES};
static const client_op_vtable no_request_vt = {NULL, test_complete, 0, CLIENT_OP_NO_REQUEST};

static void submit(parley_client *c, test_op *t, const client_op_vtable *vt)
{
	memset(t, 0, sizeof(*t));
	t->op.vt = vt;
	/* the account must be loaded for the core's authentication hook, as every feature does */
	TEST_EQ_INT(client__load_account(c), PARLEY_OK);
	client__conn_submit(c, &t->op);
}

static void test_op_completes_once_on_response(void)
{
	parley_client *a = client_in("a", 5000);
	test_op t, u, v, w;

	submit(a, &t, &test_vt);
	submit(a, &u, &no_request_vt);
	TEST_EQ_INT(t.completions, 0); /* never from inside submit */
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(t.completions, 1);
	TEST_EQ_INT(t.builds, 1);
	TEST_EQ_INT(t.status, PARLEY_OK);
	TEST_CHECK(t.had_resp);
	TEST_EQ_INT(t.resp_case, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES);
	TEST_EQ_INT(u.completions, 1);
	TEST_EQ_INT(u.status, PARLEY_OK);
	TEST_CHECK(!u.had_resp);

	/* the core checks the response kind the op declared */
	submit(a, &v, &wrong_kind_vt);
	/* an op that would authenticate an authenticated connection is refused, never built */
	submit(a, &w, &auth_like_vt);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(v.completions, 1);
	TEST_EQ_INT(v.status, PARLEY_E_PROTO_MISSING_FIELD);
	TEST_EQ_INT(w.completions, 1);
	TEST_EQ_INT(w.builds, 0);
	TEST_EQ_INT(w.status, PARLEY_E_STATE);

	/* a failed build completes that op only; the connection serves the next one */
	submit(a, &v, &test_vt);
	v.build_rc = PARLEY_E_CRYPTO;
	submit(a, &w, &test_vt);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(v.completions, 1);
	TEST_EQ_INT(v.status, PARLEY_E_CRYPTO);
	TEST_EQ_INT(w.completions, 1);
	TEST_EQ_INT(w.status, PARLEY_OK);

	/* nothing completes twice later */
	TEST_EQ_INT(parley_client_run(a, 100), PARLEY_OK);
	TEST_EQ_INT(t.completions + u.completions + v.completions + w.completions, 4);
	parley_client_free(a);
}

static void test_op_completes_once_on_timeout(void)
{
	parley_client *a = client_in("a", SLOW_MS / 2);
	test_op t;
	uint64_t t0;

	atomic_store(&mode, MODE_SLOW_AFTER_AUTH);
	submit(a, &t, &test_vt);
	t0 = uv_hrtime();
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(t.completions, 1);
	TEST_EQ_INT(t.status, PARLEY_E_TIMEOUT);
	TEST_CHECK(!t.had_resp);
	TEST_CHECK(uv_hrtime() - t0 < (uint64_t)SLOW_MS * 1000000u); /* it did not wait for the answer */
	/* the answer arrives late, on the same connection: nobody waits for it any more */
	TEST_EQ_INT(parley_client_run(a, SLOW_MS * 2), PARLEY_OK);
	TEST_EQ_INT(t.completions, 1);
	atomic_store(&mode, MODE_NORMAL);
	parley_client_free(a);
}

/* An authenticating request that times out leaves a connection nobody can authenticate any more (was
 * the nonce spent?): the ops queued behind it must get a new connection, not wait forever. */
static void test_auth_timeout_reconnects(void)
{
	parley_client *a = client_in("a", 300);
	test_op t, u;
	int k;

	/* t's request (a list request posing as authentication) gets no answer; the saved account's
	 * AuthRequest on the next connection does */
	atomic_store(&mode, MODE_SILENT_BEFORE_AUTH);
	submit(a, &t, &auth_like_vt);
	submit(a, &u, &test_vt);
	for (k = 0; k < 200 && u.completions == 0; k++)
		parley_client_run(a, 50);
	TEST_EQ_INT(t.completions, 1);
	TEST_EQ_INT(t.status, PARLEY_E_TIMEOUT);
	atomic_store(&mode, MODE_NORMAL);
	TEST_EQ_INT(u.completions, 1);
	TEST_EQ_INT(u.status, PARLEY_OK);
	parley_client_free(a);
	TEST_EQ_INT(t.completions + u.completions, 2);
}

static void test_op_completes_once_on_disconnect(void)
{
	parley_client *a = client_in("a", 5000);
	test_op t, u;

	/* in flight when the application disconnects */
	atomic_store(&mode, MODE_SILENT_AFTER_AUTH);
	submit(a, &t, &test_vt);
	TEST_EQ_INT(parley_client_run(a, 300), PARLEY_OK);
	TEST_EQ_INT(t.builds, 1);
	TEST_EQ_INT(t.completions, 0);
	parley_client_disconnect(a);
	TEST_EQ_INT(t.completions, 1);
	TEST_EQ_INT(t.status, PARLEY_E_CLOSED);
	TEST_EQ_INT(parley_client_run(a, 200), PARLEY_OK);
	TEST_EQ_INT(t.completions, 1);

	/* the server drops the connection */
	atomic_store(&mode, MODE_CLOSE);
	submit(a, &t, &test_vt);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(t.completions, 1);
	TEST_EQ_INT(t.status, PARLEY_E_CLOSED);

	/* queued, never sent, when the client is freed */
	atomic_store(&mode, MODE_NORMAL);
	submit(a, &u, &test_vt);
	parley_client_free(a);
	TEST_EQ_INT(u.completions, 1);
	TEST_EQ_INT(u.builds, 0);
	TEST_EQ_INT(u.status, PARLEY_E_CLOSED);
	TEST_EQ_INT(t.completions, 1);
}

/* ---- customer authentication's calls (lib/client/auth.c) against the scripted service ---- */

static int auth_cbs, auth_prompts;
static parley_err auth_cb_status;
static uint64_t auth_cb_request;
static char auth_prompt_url[PARLEY_AUTH_FIELD_MAX + 1], auth_prompt_name[PARLEY_ENTITY_NAME_MAX + 1];

static void on_auth_request(parley_client *c, parley_err st, const parley_auth_request *r, void *user)
{
	auth_cbs++;
	auth_cb_status = st;
	auth_cb_request = r != NULL ? r->request_id : 0;
	TEST_CHECK((st == PARLEY_OK) == (r != NULL));
}

static void on_auth_prompt(parley_client *c, const parley_auth_prompt *p, void *user)
{
	auth_prompts++;
	snprintf(auth_prompt_url, sizeof(auth_prompt_url), "%s", p->request->url);
	snprintf(auth_prompt_name, sizeof(auth_prompt_name), "%s", p->entity_name);
}

static int email_cbs;
static parley_err email_cb_status;
static size_t email_cb_n;

static void on_emails(parley_client *c, parley_err st, const parley_auth_emails *e, void *user)
{
	(void)c;
	(void)user;
	email_cbs++;
	email_cb_status = st;
	email_cb_n = e != NULL ? e->n : 99;
}

/* parley_auth_known_email: the address goes out lower-cased, the list comes back checked (no more than
 * fit, each an address the server could have stored), the callback runs once */
static void test_auth_known_email(void)
{
	static parley_auth_emails e;
	parley_client *a = client_in("a", 400);

	TEST_EQ_INT(parley_auth_known_email(a, 20, "Carol@Example.COM", 0, &e), PARLEY_OK);
	TEST_EQ_STR(auth_seen_email, "carol@example.com");
	TEST_EQ_INT(auth_seen_remove, 0);
	TEST_EQ_INT(e.n, 2);
	TEST_EQ_STR(e.emails[0], "alice@example.com");
	TEST_EQ_STR(e.emails[1], "carol@example.com");
	TEST_EQ_INT(parley_auth_known_email(a, 20, NULL, 0, &e), PARLEY_OK); /* list only */
	TEST_EQ_STR(auth_seen_email, "");
	TEST_EQ_INT(e.n, 1);
	TEST_EQ_INT(parley_auth_known_email(a, 20, "carol@example.com", 1, &e), PARLEY_OK);
	TEST_EQ_INT(auth_seen_remove, 1);
	TEST_EQ_INT(e.n, 1);
	TEST_EQ_INT(parley_auth_known_email(a, 21, NULL, 0, &e), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(e.n, 0);
	TEST_EQ_INT(parley_auth_known_email(a, 22, NULL, 0, &e), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(e.n, 0);
	TEST_EQ_INT(parley_auth_known_email(a, 23, "dave@example.com", 0, &e), PARLEY_E_TOO_MANY_KNOWN_EMAILS);
	/* refused before sending: nothing reaches the server */
	auth_seen_email[0] = '\0';
	TEST_EQ_INT(parley_auth_known_email(a, 20, "no-at-sign", 0, &e), PARLEY_E_EMAIL_INVALID);
	TEST_EQ_INT(parley_auth_known_email(a, 20, NULL, 1, &e), PARLEY_E_EMAIL_INVALID);
	TEST_EQ_STR(auth_seen_email, "");
	email_cbs = 0;
	TEST_EQ_INT(parley_auth_known_email_start(a, 20, "x@y.example", 0, on_emails, NULL), PARLEY_OK);
	TEST_EQ_INT(email_cbs, 0);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(email_cbs, 1);
	TEST_EQ_INT(email_cb_status, PARLEY_OK);
	TEST_EQ_INT(email_cb_n, 2);
	TEST_EQ_INT(parley_auth_known_email_start(a, 21, NULL, 0, on_emails, NULL), PARLEY_OK);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(email_cbs, 2);
	TEST_EQ_INT(email_cb_status, PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(email_cb_n, 99); /* no list on failure */
	parley_client_free(a);
}

static void test_auth_calls(void)
{
	static parley_auth_status st;
	parley_client *a = client_in("a", 400);
	parley_auth_component comp, out, list[3];
	parley_auth_request req;
	parley_auth_events ev;
	size_t n = 0;

	/* put: what the library sends is what the caller gave; the answer is checked */
	memset(&comp, 0, sizeof(comp));
	snprintf(comp.entity, sizeof(comp.entity), "shop");
	snprintf(comp.name, sizeof(comp.name), "acme-sso");
	snprintf(comp.secret_ref, sizeof(comp.secret_ref), "env:ACME_SECRET");
	comp.type = PARLEY_AUTH_OIDC;
	comp.binding = PARLEY_BINDING_EMAIL;
	comp.credential_ttl_s = 600;
	TEST_EQ_INT(parley_auth_component_put(a, &comp, &out), PARLEY_OK);
	TEST_EQ_STR(auth_seen_put_name, "acme-sso");
	TEST_EQ_STR(auth_seen_secret, "env:ACME_SECRET");
	TEST_EQ_INT(auth_seen_ttl, 600);
	TEST_EQ_INT(auth_seen_binding, PARLEY_BINDING_EMAIL);
	TEST_EQ_INT(out.component_id, 5);
	TEST_EQ_INT(out.state, PARLEY_COMPONENT_DRAFT);
	TEST_EQ_STR(out.name, "acme-sso");
	TEST_EQ_STR(out.entity, "shop");
	snprintf(comp.name, sizeof(comp.name), "refused");
	TEST_EQ_INT(parley_auth_component_put(a, &comp, &out), PARLEY_E_COMPONENT_INVALID);
	snprintf(comp.name, sizeof(comp.name), "long-answer");
	TEST_EQ_INT(parley_auth_component_put(a, &comp, &out), PARLEY_E_PROTO_MALFORMED);
	snprintf(comp.name, sizeof(comp.name), "other-entity");
	TEST_EQ_INT(parley_auth_component_put(a, &comp, &out), PARLEY_E_PROTO_MALFORMED);

	/* state and list: answers about another component or entity are refused */
	TEST_EQ_INT(parley_auth_component_set_state(a, "shop", 4, PARLEY_COMPONENT_ACTIVE, &out), PARLEY_OK);
	TEST_EQ_INT(out.component_id, 4);
	TEST_EQ_INT(out.state, PARLEY_COMPONENT_ACTIVE);
	TEST_EQ_INT(parley_auth_component_set_state(a, "shop", 4, PARLEY_COMPONENT_INACTIVE, &out), PARLEY_OK);
	TEST_EQ_INT(out.state, PARLEY_COMPONENT_INACTIVE);
	TEST_EQ_INT(parley_auth_component_set_state(a, "shop", 66, PARLEY_COMPONENT_ACTIVE, &out), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(parley_auth_component_list(a, "shop", list, 2, &n), PARLEY_OK);
	TEST_EQ_INT(n, 2); /* max */
	TEST_EQ_STR(list[1].name, "acme-code");
	TEST_EQ_INT(list[1].state, PARLEY_COMPONENT_DRAFT);
	TEST_EQ_INT(parley_auth_component_list(a, "mixed", list, 3, &n), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(n, 0);

	/* start, and the prompt pushed to this account's devices */
	memset(&ev, 0, sizeof(ev));
	ev.on_auth_prompt = on_auth_prompt;
	parley_auth_set_events(a, &ev);
	auth_prompts = 0;
	TEST_EQ_INT(parley_auth_start(a, 4, 1, &req), PARLEY_OK);
	TEST_EQ_INT(req.request_id, 9);
	TEST_EQ_INT(req.thread_id, 4);
	TEST_EQ_STR(req.url, "https://auth.example/v1/auth/start/tok");
	TEST_EQ_INT(parley_client_run(a, 200), PARLEY_OK);
	TEST_EQ_INT(auth_prompts, 1);
	TEST_EQ_STR(auth_prompt_url, "https://auth.example/v1/auth/start/tok");
	TEST_EQ_STR(auth_prompt_name, "Shop");
	TEST_EQ_INT(parley_auth_start(a, 4, 66, &req), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(parley_auth_start(a, 4, 77, &req), PARLEY_E_TOO_MANY_AUTH_REQUESTS);

	/* answers carry exactly what was given */
	TEST_EQ_INT(parley_auth_answer(a, 9, "123456", NULL), PARLEY_OK);
	TEST_EQ_STR(auth_seen_otp, "123456");
	TEST_EQ_STR(auth_seen_jwt, "");
	TEST_EQ_INT(parley_auth_answer(a, 9, NULL, "h.p.s"), PARLEY_OK);
	TEST_EQ_STR(auth_seen_otp, "");
	TEST_EQ_STR(auth_seen_jwt, "h.p.s");
	TEST_EQ_INT(parley_auth_answer(a, 9, "000000", NULL), PARLEY_E_OTP_WRONG);

	TEST_EQ_INT(parley_auth_status_get(a, 4, &st), PARLEY_OK);
	TEST_EQ_INT(st.verification, PARLEY_VERIFICATION_AUTHENTICATED);
	TEST_EQ_STR(st.verified_by, "acme-sso");
	TEST_EQ_INT(st.n_requests, 2);
	TEST_EQ_INT(st.requests[1].request_id, 11);
	TEST_EQ_INT(st.requests[1].error, PARLEY_E_OTP_ATTEMPTS);
	TEST_EQ_INT(st.n_claims, 1);
	TEST_EQ_STR(st.claims[0].value, "carol@example.com");
	TEST_EQ_INT(st.n_known_emails, 1);
	TEST_EQ_STR(st.known_emails[0], "carol@example.com");
	TEST_EQ_INT(parley_auth_status_get(a, 13, &st), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(st.n_requests, 0);
	TEST_EQ_INT(parley_auth_status_get(a, 14, &st), PARLEY_E_PROTO_MALFORMED);
	TEST_EQ_INT(st.n_known_emails, 0);

	/* the callback runs once: on the answer, on a disconnect, on a timeout */
	auth_cbs = 0;
	TEST_EQ_INT(parley_auth_start_start(a, 4, 1, on_auth_request, NULL), PARLEY_OK);
	TEST_EQ_INT(auth_cbs, 0); /* never from inside the call */
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(auth_cbs, 1);
	TEST_EQ_INT(auth_cb_status, PARLEY_OK);
	TEST_EQ_INT(auth_cb_request, 9);
	atomic_store(&mode, MODE_SILENT_AFTER_AUTH);
	TEST_EQ_INT(parley_auth_start_start(a, 4, 1, on_auth_request, NULL), PARLEY_OK);
	TEST_EQ_INT(parley_client_run(a, 100), PARLEY_OK);
	TEST_EQ_INT(auth_cbs, 1);
	parley_client_disconnect(a);
	TEST_EQ_INT(auth_cbs, 2);
	TEST_EQ_INT(auth_cb_status, PARLEY_E_CLOSED);
	TEST_EQ_INT(parley_auth_start_start(a, 4, 1, on_auth_request, NULL), PARLEY_OK);
	TEST_EQ_INT(parley_client_run(a, 0), PARLEY_OK);
	TEST_EQ_INT(auth_cbs, 3);
	TEST_EQ_INT(auth_cb_status, PARLEY_E_TIMEOUT);
	atomic_store(&mode, MODE_NORMAL);
	TEST_EQ_INT(parley_client_run(a, 200), PARLEY_OK);
	TEST_EQ_INT(auth_cbs, 3);
	/* queued when the client is freed */
	TEST_EQ_INT(parley_auth_start_start(a, 4, 1, on_auth_request, NULL), PARLEY_OK);
	parley_client_free(a);
	TEST_EQ_INT(auth_cbs, 4);
	TEST_EQ_INT(auth_cb_status, PARLEY_E_CLOSED);
}

int main(void)
{
	net_handler h;
	net_config cfg;
	net_server *srv;
	int err = 0;

	if (sodium_init() < 0)
		return 1;
	snprintf(root, sizeof(root), "/tmp/parley-client-test-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	memset(&h, 0, sizeof(h));
	h.on_open = fake_open;
	h.on_message = fake_message;
	h.on_close = fake_close;
	net__config_defaults(&cfg);
	cfg.port = 0;
	cfg.workers = 1; /* the fake service's tables are single-threaded */
	cfg.auth_timeout_ms = 0; /* the fake service does not tell the network layer who authenticated */
	cfg.max_preauth_message_bytes = 0;
	srv = net__server_new(&cfg, &h, &err);
	if (srv == NULL || net__server_start(srv) != PARLEY_OK) {
		fprintf(stderr, "cannot start server: %d\n", err);
		return 1;
	}
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/v1/websocket", (unsigned)net__server_port(srv));

	TEST_RUN(test_register_and_devices);
	TEST_RUN(test_async_concurrent);
	TEST_RUN(test_run_timeout_and_stop);
	TEST_RUN(test_misbehaving_server);
	TEST_RUN(test_op_completes_once_on_response);
	TEST_RUN(test_op_completes_once_on_timeout);
	TEST_RUN(test_op_completes_once_on_disconnect);
	TEST_RUN(test_auth_timeout_reconnects);
	TEST_RUN(test_auth_calls);
	TEST_RUN(test_auth_known_email);

	net__server_drain(srv, 1000);
	net__server_free(srv);
	test_remove_tree(root);
	TEST_EXIT();
}
