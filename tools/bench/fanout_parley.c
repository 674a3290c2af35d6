/* `parley-bench fanout` against parleyd (fanout.h): the set-up over the raw wire, then the group and
 * the pairwise runs on the same connections.
 *
 * Set-up (sequential calls; the loop serves every connection meanwhile): a customer account (the
 * sender, device 1), N-1 staff accounts and the customer's second device, each registered with keys
 * (the relay only delivers to devices that have keys); an entity created by staff 0 (its primary
 * admin) with a test entity key, the other N-2 staff joining as agents (EntityCode, EntityJoin,
 * EntityDecide with the staff list signed at each next version); the customer's ThreadOpen (an OPEN
 * signed by its device: members = the customer and the admin), then one ADD per agent signed by the
 * admin's device (ThreadEvent). The thread's receiving devices: the admin's, the N-2 agents' and the
 * customer's second device = N, with N member accounts.
 *
 *   group      ThreadSend{thread, the body, membership version}: one request, one ack.
 *   pairwise   per message N SendMessage requests written in one go: one to each staff account (its
 *              device 1) and one to the customer's own handle (its device 2, as Signal sends a copy to
 *              one's other devices); the message is acked when all N are. Each body is the same
 *              opaque bytes (no Signal session: the relay never decrypts, so encryption costs nothing
 *              on the server; a real client would also encrypt N times).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "common/clock.h"
#include "common/dynbuf.h"
#include "crypto/crypto.h"
#include "fanout.h"
#include "pwire.h"
#include "target.h"
#include "transport/transport.h"
#include "wire/stafflist.h"
#include "wire/threadev.h"
#include "wire/wire.h"

#define SEND_BASE (1ull << 40) /* request ids of measured sends: SEND_BASE + seq * N + k */
#define ACK_BASE (1ull << 60)  /* AckRequest ids */
#define ACK_MAX 128u

struct fan;

typedef struct fdev {
	struct fan *f;
	transport_conn *t;
	int recv;        /* receiver index, -1 for the sender */
	char handle[WIRE_MAX_HANDLE + 1];
	uint32_t device, regid;
	uint64_t account;
	uint8_t sk[64];  /* the device's Ed25519 key: signs its thread events */
	uint8_t nonce[32];
	int have_nonce, closed;
	uint64_t want;   /* the set-up call waiting for its answer */
	int got;
	wire_frame resp;
	uint64_t acks[ACK_MAX];
	unsigned nacks;
	uint64_t next_ack;
} fdev;

typedef struct fan {
	const fo_cfg *cfg;
	uv_loop_t loop;
	bench_target target;
	transport_options topt;
	uint8_t rbuf[64 * 1024];
	dynbuf enc;
	wire_limits limits;
	fdev *devs;       /* [0] the sender, [1..N] the receivers: staff 0..N-2, then the customer's second */
	unsigned ndev, nonces;
	int all_nonces;
	uint64_t rid;
	fo_track *cur;    /* the way being measured */
	uint8_t *body;
	char entity[WIRE_MAX_HANDLE + 1];
	crypto_keypair ek;
	wire_staff_member *staff;
	size_t nstaff;
	uint64_t entity_id, staff_version, thread_id, version;
	const char *error;
	char errbuf[160];
} fan;

static fdev *sender(fan *f)
{
	return &f->devs[0];
}

static fdev *receiver(fan *f, unsigned r)
{
	return &f->devs[1 + r];
}

static int fail(fan *f, const char *what, int rc)
{
	if (f->error == NULL) {
		snprintf(f->errbuf, sizeof(f->errbuf), "%s: %s", what, parley_strerror(rc));
		f->error = f->errbuf;
	}
	return rc != PARLEY_OK ? rc : PARLEY_E_IO;
}

/* ---- connections ---- */

static void flush_acks(fdev *d)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AckRequest a = PARLEY__WIRE__ACK_REQUEST__INIT;
	if (d->nacks == 0 || d->t == NULL)
		return;
	a.server_ids = d->acks;
	a.n_server_ids = d->nacks;
	req.id = ACK_BASE + d->next_ack++;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ACK;
	req.ack = &a;
	d->nacks = 0;
	dynbuf__reset(&d->f->enc);
	if (wire__encode_request(&req, &d->f->enc) != PARLEY_OK ||
	    transport__send(d->t, d->f->enc.data, d->f->enc.len) != PARLEY_OK)
		if (d->f->cur != NULL)
			fanout__track_error(d->f->cur, "ack", NULL);
}

static void on_response(fdev *d, wire_frame *fr, uint64_t now)
{
	fan *f = d->f;
	const Parley__Wire__Response *r = fr->frame->response;
	if (d->want != 0 && r->id == d->want && !d->got) {
		d->resp = *fr; /* the set-up call takes the frame (and its arena) */
		memset(fr, 0, sizeof(*fr));
		d->got = 1;
	} else if (r->id >= ACK_BASE) {
		if (r->status != 0 && f->cur != NULL)
			fanout__track_error(f->cur, "ack refused", r->message);
	} else if (r->id >= SEND_BASE && f->cur != NULL) {
		fanout__track_acked(f->cur, (r->id - SEND_BASE) / f->cfg->receivers, r->status == 0,
				    r->message != NULL && r->message[0] ? r->message : parley_strerror((int)r->status), now);
	}
}

static void on_message(void *ctx, transport_conn *t, const uint8_t *buf, size_t len)
{
	fdev *d = ctx;
	fan *f = d->f;
	uint64_t now = uv_hrtime();
	wire_frame fr;
	(void)t;
	if (wire__decode_frame(buf, len, &f->limits, &fr) != PARLEY_OK) {
		wire__frame_free(&fr);
		if (f->cur != NULL)
			fanout__track_error(f->cur, "undecodable frame", NULL);
		return;
	}
	if (fr.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
		on_response(d, &fr, now);
	} else if (fr.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH) {
		const Parley__Wire__Push *p = fr.frame->push;
		if (p->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE && !d->have_nonce &&
		    p->challenge->nonce.len == sizeof(d->nonce)) {
			memcpy(d->nonce, p->challenge->nonce.data, sizeof(d->nonce));
			d->have_nonce = 1;
			f->all_nonces = ++f->nonces == f->ndev;
		} else if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENVELOPE) {
			const Parley__Wire__Envelope *e = p->envelope;
			if (f->cur != NULL && d->recv >= 0)
				fanout__track_got(f->cur, (unsigned)d->recv, e->content.data, e->content.len, now);
			if (d->nacks == ACK_MAX)
				flush_acks(d);
			d->acks[d->nacks++] = e->server_id;
		}
		/* ThreadChanged, EntityJoinRequested, QueueEmpty...: set-up noise, not measured */
	}
	wire__frame_free(&fr);
}

/* what one read delivered is acked in one request, as a real client batches */
static void on_read_done(void *ctx, transport_conn *t)
{
	(void)t;
	flush_acks(ctx);
}

static void on_close(void *ctx, transport_conn *t, int err, uint16_t code)
{
	fdev *d = ctx;
	(void)code;
	(void)err;
	if (d->f->cur != NULL && !d->closed)
		fanout__track_error(d->f->cur, "connection lost", transport__error_text(t));
	d->t = NULL;
	d->closed = 1;
}

static int dev_connect(fan *f, fdev *d)
{
	transport_callbacks cb = {.ctx = d, .on_message = on_message, .on_read_done = on_read_done, .on_close = on_close};
	char url[400];
	snprintf(url, sizeof(url), "ws://%s%s", f->target.host, f->target.path);
	d->f = f;
	return transport__connect(&f->loop, url, &f->topt, &cb, &d->t);
}

/* The request encoded in f->enc (id `id`) sent on d, and its answer: the status (keep: the frame on
 * success, the caller frees it), or a transport error / PARLEY_E_TIMEOUT. */
static int call_encoded(fan *f, fdev *d, uint64_t id, wire_frame *keep)
{
	int rc, st;
	if (d->t == NULL)
		return PARLEY_E_CLOSED;
	d->want = id;
	d->got = 0;
	rc = transport__send(d->t, f->enc.data, f->enc.len);
	if (rc != PARLEY_OK)
		return rc;
	if (fanout__wait(&f->loop, &d->got, f->cfg->timeout_s) != 0) {
		d->want = 0; /* an answer that comes later is nobody's */
		return PARLEY_E_TIMEOUT;
	}
	wire_frame fr = d->resp;
	memset(&d->resp, 0, sizeof(d->resp));
	st = (int)fr.frame->response->status;
	if (keep != NULL && st == PARLEY_OK)
		*keep = fr;
	else
		wire__frame_free(&fr);
	return st;
}

static int call(fan *f, fdev *d, Parley__Wire__Request *r, wire_frame *keep)
{
	int rc;
	r->id = ++f->rid;
	dynbuf__reset(&f->enc);
	rc = wire__encode_request(r, &f->enc);
	return rc == PARLEY_OK ? call_encoded(f, d, r->id, keep) : rc;
}

/* ---- set-up ---- */

/* d registers (its account id kept) and uploads its keys; or, as another device of the sender's
 * account (already added), logs in and uploads. */
static int enrol(fan *f, fdev *d)
{
	wire_frame fr;
	uint64_t id = ++f->rid;
	int rc;
	if (d->device == 1) {
		rc = pwire__register(&f->enc, id, d->handle, d->nonce, d->sk);
		if (rc == PARLEY_OK && (rc = call_encoded(f, d, id, &fr)) == PARLEY_OK) {
			d->account = fr.frame->response->register_->account_id;
			wire__frame_free(&fr);
		}
	} else {
		rc = pwire__auth(&f->enc, id, d->handle, d->device, d->nonce, d->sk);
		if (rc == PARLEY_OK)
			rc = call_encoded(f, d, id, NULL);
	}
	if (rc != PARLEY_OK)
		return fail(f, d->device == 1 ? "register" : "login", rc);
	id = ++f->rid;
	rc = pwire__keys(&f->enc, id, d->regid);
	if (rc == PARLEY_OK)
		rc = call_encoded(f, d, id, NULL);
	return rc == PARLEY_OK ? PARLEY_OK : fail(f, "upload keys", rc);
}

/* The customer's second device: added by device 1 (AddDevice, signed by the new key), then enrolled
 * on its own connection. */
static int add_second_device(fan *f, fdev *d)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AddDeviceRequest a = PARLEY__WIRE__ADD_DEVICE_REQUEST__INIT;
	uint8_t pk[32], sig[64];
	uint64_t ts = parley__wall_ms();
	wire_frame fr;
	dynbuf m;
	int rc;

	crypto_sign_keypair(pk, d->sk);
	dynbuf__init(&m, 256);
	rc = wire__add_device_signed_bytes(d->handle, pk, ts, &m);
	if (rc == PARLEY_OK)
		crypto_sign_detached(sig, NULL, m.data, m.len, d->sk);
	dynbuf__free(&m);
	if (rc != PARLEY_OK)
		return fail(f, "add device", rc);
	a.device_key.data = pk;
	a.device_key.len = sizeof(pk);
	a.device_name = PWIRE_DEVICE_NAME;
	a.timestamp_ms = ts;
	a.signature.data = sig;
	a.signature.len = sizeof(sig);
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE;
	req.add_device = &a;
	rc = call(f, sender(f), &req, &fr);
	if (rc != PARLEY_OK)
		return fail(f, "add device", rc);
	d->device = fr.frame->response->add_device->device_id;
	d->account = sender(f)->account;
	wire__frame_free(&fr);
	f->all_nonces = 0;
	f->ndev++;
	if ((rc = dev_connect(f, d)) != PARLEY_OK)
		return fail(f, "connect", rc);
	if (fanout__wait(&f->loop, &f->all_nonces, f->cfg->timeout_s) != 0)
		return fail(f, "second device: no challenge", PARLEY_E_TIMEOUT);
	return enrol(f, d);
}

/* The staff list (f->staff, ascending ids) at f->staff_version + 1, signed with the entity key. */
static int sign_list(fan *f, dynbuf *out)
{
	wire_stafflist l;
	memset(&l, 0, sizeof(l));
	l.entity_id = f->staff_version == 0 ? 0 : f->entity_id;
	snprintf(l.handle, sizeof(l.handle), "%s", f->entity);
	snprintf(l.display_name, sizeof(l.display_name), "%s support", f->entity);
	crypto__pubkey_serialize(l.entity_key, f->ek.pub);
	l.version = f->staff_version + 1;
	l.timestamp_ms = parley__wall_ms();
	l.n = f->nstaff;
	l.members = f->staff;
	dynbuf__init(out, WIRE_STAFFLIST_MAX_BYTES);
	return wire__stafflist_sign(&l, f->ek.priv, out);
}

/* d into the staff list as role; ids only grow, so it goes last */
static int staff_add(fan *f, const fdev *d, int role)
{
	wire_staff_member *m = &f->staff[f->nstaff];
	if (f->nstaff > 0 && f->staff[f->nstaff - 1].account_id >= d->account)
		return fail(f, "staff ids out of order", PARLEY_E_INVAL);
	memset(m, 0, sizeof(*m));
	m->account_id = d->account;
	snprintf(m->handle, sizeof(m->handle), "%s", d->handle);
	m->role = (uint8_t)role;
	m->flags = f->nstaff == 0 ? WIRE_STAFF_PRIMARY : 0;
	m->account_key[0] = CRYPTO_SIGNAL_KEY_TYPE;
	m->account_key[1] = 0x42;
	f->nstaff++;
	return PARLEY_OK;
}

static int entity_create(fan *f, fdev *admin)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityCreateRequest c = PARLEY__WIRE__ENTITY_CREATE_REQUEST__INIT;
	uint8_t key[33];
	char name[WIRE_MAX_DISPLAY_NAME + 1];
	wire_frame fr;
	dynbuf l;
	int rc = staff_add(f, admin, WIRE_ROLE_ADMIN);
	if (rc == PARLEY_OK)
		rc = sign_list(f, &l);
	if (rc != PARLEY_OK)
		return fail(f, "staff list", rc);
	crypto__pubkey_serialize(key, f->ek.pub);
	snprintf(name, sizeof(name), "%s support", f->entity);
	c.handle = f->entity;
	c.display_name = name;
	c.entity_key.data = key;
	c.entity_key.len = sizeof(key);
	c.signed_staff_list.data = l.data;
	c.signed_staff_list.len = l.len;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE;
	req.entity_create = &c;
	rc = call(f, admin, &req, &fr);
	dynbuf__free(&l);
	if (rc != PARLEY_OK)
		return fail(f, "entity create", rc);
	f->entity_id = fr.frame->response->entity_create->entity_id;
	f->staff_version = 1;
	wire__frame_free(&fr);
	return PARLEY_OK;
}

/* An agent joins: a code from the admin, the agent's join, the admin's approval with the next list. */
static int agent_join(fan *f, fdev *admin, fdev *agent)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityCodeRequest c = PARLEY__WIRE__ENTITY_CODE_REQUEST__INIT;
	Parley__Wire__EntityJoinRequest j = PARLEY__WIRE__ENTITY_JOIN_REQUEST__INIT;
	Parley__Wire__EntityDecideRequest dc = PARLEY__WIRE__ENTITY_DECIDE_REQUEST__INIT;
	static const uint8_t ak[33] = {CRYPTO_SIGNAL_KEY_TYPE, 0x42};
	char code[64];
	uint64_t request_id;
	wire_frame fr;
	dynbuf l;
	int rc;

	c.entity = f->entity;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_CODE;
	req.entity_code = &c;
	if ((rc = call(f, admin, &req, &fr)) != PARLEY_OK)
		return fail(f, "entity code", rc);
	snprintf(code, sizeof(code), "%s", fr.frame->response->entity_code->code);
	wire__frame_free(&fr);
	j.entity = f->entity;
	j.code = code;
	j.account_key.data = (uint8_t *)ak;
	j.account_key.len = sizeof(ak);
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN;
	req.entity_join = &j;
	if ((rc = call(f, agent, &req, &fr)) != PARLEY_OK)
		return fail(f, "entity join", rc);
	request_id = fr.frame->response->entity_join->request_id;
	wire__frame_free(&fr);
	if ((rc = staff_add(f, agent, WIRE_ROLE_AGENT)) != PARLEY_OK || (rc = sign_list(f, &l)) != PARLEY_OK)
		return fail(f, "staff list", rc);
	dc.entity = f->entity;
	dc.request_id = request_id;
	dc.approve = 1;
	dc.signed_staff_list.data = l.data;
	dc.signed_staff_list.len = l.len;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE;
	req.entity_decide = &dc;
	rc = call(f, admin, &req, NULL);
	dynbuf__free(&l);
	if (rc != PARLEY_OK)
		return fail(f, "entity decide", rc);
	f->staff_version++;
	return PARLEY_OK;
}

/* A thread event by d's device: kind on subject, at the thread's next version, into buf. */
static int event(fan *f, const fdev *d, unsigned kind, uint64_t subject, uint8_t *buf, size_t *len)
{
	wire_threadev e;
	memset(&e, 0, sizeof(e));
	snprintf(e.entity, sizeof(e.entity), "%s", f->entity);
	e.thread_id = kind == WIRE_THREADEV_OPEN ? 0 : f->thread_id;
	e.version = kind == WIRE_THREADEV_OPEN ? 1 : f->version + 1;
	e.kind = (uint8_t)kind;
	e.subject = subject;
	e.actor = d->account;
	e.actor_device = d->device;
	e.staff_version = f->staff_version;
	e.timestamp_ms = parley__wall_ms();
	return wire__threadev_sign(&e, d->sk, buf, WIRE_THREADEV_MAX_BYTES, len);
}

static int thread_open(fan *f)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadOpenRequest o = PARLEY__WIRE__THREAD_OPEN_REQUEST__INIT;
	uint8_t ev[WIRE_THREADEV_MAX_BYTES];
	size_t len = 0;
	wire_frame fr;
	int rc = event(f, sender(f), WIRE_THREADEV_OPEN, sender(f)->account, ev, &len);
	if (rc != PARLEY_OK)
		return fail(f, "open event", rc);
	o.entity = f->entity;
	o.customer = "";
	o.event.data = ev;
	o.event.len = len;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN;
	req.thread_open = &o;
	if ((rc = call(f, sender(f), &req, &fr)) != PARLEY_OK)
		return fail(f, "thread open", rc);
	f->thread_id = fr.frame->response->thread_open->thread->thread_id;
	f->version = fr.frame->response->thread_open->thread->membership_version;
	wire__frame_free(&fr);
	return PARLEY_OK;
}

static int thread_add(fan *f, fdev *admin, const fdev *agent)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadEventRequest te = PARLEY__WIRE__THREAD_EVENT_REQUEST__INIT;
	uint8_t ev[WIRE_THREADEV_MAX_BYTES];
	size_t len = 0;
	int rc = event(f, admin, WIRE_THREADEV_ADD, agent->account, ev, &len);
	if (rc != PARLEY_OK)
		return fail(f, "add event", rc);
	te.thread_id = f->thread_id;
	te.event.data = ev;
	te.event.len = len;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT;
	req.thread_event = &te;
	if ((rc = call(f, admin, &req, NULL)) != PARLEY_OK)
		return fail(f, "thread add", rc);
	f->version++;
	return PARLEY_OK;
}

static int setup(fan *f)
{
	const fo_cfg *cfg = f->cfg;
	unsigned n = cfg->receivers;
	int rc;

	/* the sender and the staff (receivers 0..N-2) register; the customer's second device comes later */
	f->ndev = n;
	for (unsigned i = 0; i < n + 1; i++) {
		fdev *d = &f->devs[i];
		d->recv = (int)i - 1;
		d->device = 1;
		d->regid = 1 + i;
		if (i == 0 || i == n)
			snprintf(d->handle, sizeof(d->handle), "%s-c", cfg->tag);
		else
			snprintf(d->handle, sizeof(d->handle), "%s-s%u", cfg->tag, i - 1);
	}
	for (unsigned i = 0; i < n; i++)
		if ((rc = dev_connect(f, &f->devs[i])) != PARLEY_OK)
			return fail(f, "connect", rc);
	if (fanout__wait(&f->loop, &f->all_nonces, cfg->timeout_s) != 0)
		return fail(f, "connections: no challenge", PARLEY_E_TIMEOUT);
	for (unsigned i = 0; i < n; i++)
		if ((rc = enrol(f, &f->devs[i])) != PARLEY_OK)
			return rc;
	if ((rc = add_second_device(f, receiver(f, n - 1))) != PARLEY_OK)
		return rc;
	fdev *admin = receiver(f, 0);
	if ((rc = entity_create(f, admin)) != PARLEY_OK)
		return rc;
	for (unsigned r = 1; r + 1 < n; r++)
		if ((rc = agent_join(f, admin, receiver(f, r))) != PARLEY_OK)
			return rc;
	if ((rc = thread_open(f)) != PARLEY_OK)
		return rc;
	for (unsigned r = 1; r + 1 < n; r++)
		if ((rc = thread_add(f, admin, receiver(f, r))) != PARLEY_OK)
			return rc;
	return PARLEY_OK;
}

/* ---- the measured sends ---- */

static void send_group(void *arg, uint64_t seq)
{
	fan *f = arg;
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__ThreadSendRequest ts = PARLEY__WIRE__THREAD_SEND_REQUEST__INIT;
	int rc;

	fanout__track_sent(f->cur, seq, 1, uv_hrtime(), f->body, f->cfg->size);
	ts.thread_id = f->thread_id;
	ts.timestamp = parley__wall_ms();
	ts.ciphertext.data = f->body;
	ts.ciphertext.len = f->cfg->size;
	ts.membership_version = f->version;
	req.id = SEND_BASE + seq * f->cfg->receivers;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_THREAD_SEND;
	req.thread_send = &ts;
	dynbuf__reset(&f->enc);
	rc = wire__encode_request(&req, &f->enc);
	if (rc == PARLEY_OK)
		rc = transport__send(sender(f)->t, f->enc.data, f->enc.len);
	if (rc != PARLEY_OK)
		fanout__track_error(f->cur, "thread send", parley_strerror(rc));
}

static void send_pairwise(void *arg, uint64_t seq)
{
	fan *f = arg;
	unsigned n = f->cfg->receivers;
	transport_conn *t = sender(f)->t;
	int rc = PARLEY_OK;

	fanout__track_sent(f->cur, seq, n, uv_hrtime(), f->body, f->cfg->size);
	transport__cork(t, 1); /* the N requests leave in one write, as a client would send them */
	for (unsigned r = 0; r < n && rc == PARLEY_OK; r++) {
		const fdev *d = receiver(f, r);
		Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__SendMessageRequest sm = PARLEY__WIRE__SEND_MESSAGE_REQUEST__INIT;
		Parley__Wire__OutgoingMessage om = PARLEY__WIRE__OUTGOING_MESSAGE__INIT, *oms[1] = {&om};
		om.device_id = d->device;
		om.registration_id = d->regid;
		om.type = PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT;
		om.content.data = f->body;
		om.content.len = f->cfg->size;
		sm.recipient = (char *)d->handle;
		sm.timestamp = parley__wall_ms();
		sm.messages = oms;
		sm.n_messages = 1;
		req.id = SEND_BASE + seq * n + r;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE;
		req.send_message = &sm;
		dynbuf__reset(&f->enc);
		rc = wire__encode_request(&req, &f->enc);
		if (rc == PARLEY_OK)
			rc = transport__send(t, f->enc.data, f->enc.len);
	}
	transport__cork(t, 0);
	if (rc != PARLEY_OK)
		fanout__track_error(f->cur, "send", parley_strerror(rc));
}

static void measure(fan *f, fo_track *t, void (*send)(void *, uint64_t))
{
	f->cur = t;
	if (f->error != NULL)
		fanout__track_error(t, "set-up", f->error);
	else
		fanout__drive(&f->loop, f->cfg, t, send, f);
	f->cur = NULL;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int fanout__parley(const fo_cfg *cfg, fo_track *group, fo_track *pairwise)
{
	fan *f = calloc(1, sizeof(*f));
	const char *why = NULL;
	int rc;

	if (f == NULL)
		return PARLEY_E_NOMEM;
	f->cfg = cfg;
	f->devs = calloc(cfg->receivers + 1, sizeof(*f->devs));
	f->staff = calloc(cfg->receivers, sizeof(*f->staff));
	f->body = malloc(cfg->size);
	rc = f->devs != NULL && f->staff != NULL && f->body != NULL ? PARLEY_OK : PARLEY_E_NOMEM;
	if (rc == PARLEY_OK && (rc = bench__target_parse(cfg->url, &f->target, &why)) != PARLEY_OK)
		fail(f, why != NULL ? why : "url", rc);
	if (rc == PARLEY_OK && uv_loop_init(&f->loop) != 0)
		rc = fail(f, "loop", PARLEY_E_IO);
	if (rc == PARLEY_OK) {
		dynbuf__init(&f->enc, cfg->size + 64 * 1024);
		wire__limits_default(&f->limits);
		crypto__keypair_generate(&f->ek);
		snprintf(f->entity, sizeof(f->entity), "%s-e", cfg->tag);
		f->topt.addr = (const struct sockaddr *)&f->target.addr;
		f->topt.read_buf = f->rbuf;
		f->topt.read_buf_len = sizeof(f->rbuf);
		f->topt.connect_timeout_ms = (unsigned)(cfg->timeout_s * 1000);
		rc = setup(f);
		measure(f, group, send_group);
		measure(f, pairwise, send_pairwise);
		for (unsigned i = 0; i < cfg->receivers + 1; i++)
			if (f->devs[i].t != NULL) {
				f->devs[i].closed = 1;
				transport__close(f->devs[i].t);
			}
		uv_run(&f->loop, UV_RUN_DEFAULT);
		uv_walk(&f->loop, on_walk_close, NULL);
		uv_run(&f->loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(&f->loop);
		dynbuf__free(&f->enc);
		crypto__keypair_wipe(&f->ek);
	} else {
		fanout__track_error(group, "set-up", f->error);
		fanout__track_error(pairwise, "set-up", f->error);
	}
	free(f->devs);
	free(f->staff);
	free(f->body);
	free(f);
	return rc;
}
