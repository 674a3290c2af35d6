/* Frame decoding (size check, pre-scan, bounded unpack, field limits) and encoding helpers. */
#include "wire/wire.h"

#include <stddef.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "wire/scan.h"
#include "wire/wire_auth.h"
#include "wire/wire_threads.h"

/* protobuf-c allocates one struct per message, a copy of each string/bytes field, records for unknown
 * fields and temporary scan slabs. With the pre-scan's structural caps (depth, fields per message,
 * repeated count) this stays well under WIRE_ALLOC_FACTOR bytes per input byte; the budget is the hard
 * stop that makes it impossible for a hostile frame to cost more. */
#define WIRE_ALLOC_BASE 4096u
#define WIRE_ALLOC_FACTOR 32u

struct wire__arena {
	ProtobufCAllocator alloc;
	size_t used;
	size_t budget;
	int over_budget;
	int nomem;
};

/* Each block remembers its size so frees can give budget back (protobuf-c frees its scan slabs). */
union arena_hdr {
	max_align_t align;
	size_t size;
};

static void *arena_alloc(void *data, size_t size)
{
	struct wire__arena *ar = data;
	if (size > ar->budget - ar->used) {
		ar->over_budget = 1;
		return NULL;
	}
	union arena_hdr *h = parley__malloc(sizeof(*h) + size);
	if (h == NULL) {
		ar->nomem = 1;
		return NULL;
	}
	h->size = size;
	ar->used += size;
	return h + 1;
}

static void arena_free(void *data, void *ptr)
{
	struct wire__arena *ar = data;
	if (ptr == NULL)
		return;
	union arena_hdr *h = (union arena_hdr *)ptr - 1;
	ar->used -= h->size;
	parley__free(h);
}

void wire__limits_default(wire_limits *l)
{
	l->max_frame = WIRE_DEFAULT_MAX_FRAME;
	l->max_handle = WIRE_MAX_HANDLE;
	l->max_device_name = WIRE_MAX_DEVICE_NAME;
	l->max_ping_payload = WIRE_MAX_PING_PAYLOAD;
	l->max_message = WIRE_MAX_MESSAGE;
	l->max_devices = WIRE_MAX_DEVICES;
	l->max_repeated = WIRE_MAX_REPEATED;
}

/* --- field checks --- */

/* Fixed-size crypto fields: absent -> MISSING, longer -> FIELD_TOO_LARGE, shorter -> MALFORMED. */
static int check_exact(const ProtobufCBinaryData *b, size_t n)
{
	if (b->len == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	if (b->len > n)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	if (b->len < n)
		return PARLEY_E_PROTO_MALFORMED;
	return PARLEY_OK;
}

int wire__check_str(const char *s, size_t max, int required)
{
	size_t n = s != NULL ? strnlen(s, max + 1) : 0;
	if (required && n == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	if (n > max)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	return PARLEY_OK;
}

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		int check__rc = (expr);                                                            \
		if (check__rc != PARLEY_OK)                                                        \
			return check__rc;                                                          \
	} while (0)

static int check_signed_prekey(const Parley__Wire__SignedPrekey *sp)
{
	if (sp == NULL)
		return PARLEY_E_PROTO_MISSING_FIELD;
	CHECK(check_exact(&sp->public_key, WIRE_SIGNAL_KEY_LEN));
	return check_exact(&sp->signature, WIRE_XEDDSA_SIG_LEN);
}

static int check_upload_keys(const Parley__Wire__UploadKeysRequest *u)
{
	CHECK(check_exact(&u->identity_key, WIRE_SIGNAL_KEY_LEN));
	if (u->registration_id == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	if (u->registration_id > WIRE_MAX_REGISTRATION_ID)
		return PARLEY_E_PROTO_MALFORMED;
	if (u->signed_prekey != NULL)
		CHECK(check_signed_prekey(u->signed_prekey));
	if (u->n_one_time_prekeys > WIRE_MAX_PREKEYS)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	for (size_t i = 0; i < u->n_one_time_prekeys; i++)
		CHECK(check_exact(&u->one_time_prekeys[i]->public_key, WIRE_SIGNAL_KEY_LEN));
	return PARLEY_OK;
}

static int envelope_type_valid(int t)
{
	return t == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_CIPHERTEXT ||
	       t == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_PREKEY_MESSAGE ||
	       t == PARLEY__WIRE__ENVELOPE_TYPE__ENVELOPE_RECEIPT;
}

static int check_send(const Parley__Wire__SendMessageRequest *m, const wire_limits *l)
{
	CHECK(wire__check_str(m->recipient, l->max_handle, 1));
	return wire__check_outgoing(m->messages, m->n_messages);
}

int wire__check_outgoing(Parley__Wire__OutgoingMessage *const *msgs, size_t n)
{
	if (n == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	if (n > WIRE_MAX_OUTGOING)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	for (size_t i = 0; i < n; i++) {
		const Parley__Wire__OutgoingMessage *o = msgs[i];
		if (o->device_id == 0 || o->content.len == 0 || o->type == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		if (!envelope_type_valid((int)o->type))
			return PARLEY_E_PROTO_MALFORMED;
	}
	return PARLEY_OK;
}

/* An optional bytes field of at most max bytes. */
int wire__check_max(const ProtobufCBinaryData *b, size_t max)
{
	return b->len > max ? PARLEY_E_PROTO_FIELD_TOO_LARGE : PARLEY_OK;
}

/* The signed-list and entity requests (docs/protocol.md §11, §12): sizes only; the services check the
 * records themselves. */
static int check_list_request(const Parley__Wire__Request *r, const wire_limits *l)
{
	switch (r->body_case) {
	case PARLEY__WIRE__REQUEST__BODY_UPLOAD_DEVICE_LIST:
		if (r->upload_device_list->signed_device_list.len == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return wire__check_max(&r->upload_device_list->signed_device_list, WIRE_DEVLIST_MAX_BYTES);
	case PARLEY__WIRE__REQUEST__BODY_GET_DEVICE_LIST:
		return wire__check_str(r->get_device_list->handle, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_SET_ACCOUNT_KEY:
		CHECK(check_exact(&r->set_account_key->account_key, WIRE_SIGNAL_KEY_LEN));
		return wire__check_max(&r->set_account_key->signed_device_list, WIRE_DEVLIST_MAX_BYTES);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE:
		CHECK(wire__check_str(r->entity_create->handle, l->max_handle, 1));
		CHECK(wire__check_str(r->entity_create->display_name, WIRE_MAX_DISPLAY_NAME, 1));
		CHECK(check_exact(&r->entity_create->entity_key, WIRE_SIGNAL_KEY_LEN));
		return wire__check_max(&r->entity_create->signed_staff_list, WIRE_STAFFLIST_MAX_BYTES);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_GET:
		return wire__check_str(r->entity_get->handle, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_MEMBER:
		CHECK(wire__check_str(r->entity_member->entity, l->max_handle, 1));
		CHECK(wire__check_str(r->entity_member->member, l->max_handle, 1));
		return wire__check_max(&r->entity_member->signed_staff_list, WIRE_STAFFLIST_MAX_BYTES);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_CODE:
		return wire__check_str(r->entity_code->entity, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN:
		CHECK(wire__check_str(r->entity_join->entity, l->max_handle, 1));
		CHECK(wire__check_str(r->entity_join->code, WIRE_MAX_ENROL_CODE, 1));
		CHECK(check_exact(&r->entity_join->account_key, WIRE_SIGNAL_KEY_LEN));
		return wire__check_max(&r->entity_join->signed_device_list, WIRE_DEVLIST_MAX_BYTES);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS:
		return wire__check_str(r->entity_requests->entity, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE:
		CHECK(wire__check_str(r->entity_decide->entity, l->max_handle, 1));
		if (r->entity_decide->request_id == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		CHECK(wire__check_max(&r->entity_decide->approval, WIRE_APPROVAL_MAX_BYTES));
		return wire__check_max(&r->entity_decide->signed_staff_list, WIRE_STAFFLIST_MAX_BYTES);
	case PARLEY__WIRE__REQUEST__BODY_ENTITY_STAFF:
		CHECK(wire__check_str(r->entity_staff->entity, l->max_handle, 1));
		if (r->entity_staff->signed_staff_list.len == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return wire__check_max(&r->entity_staff->signed_staff_list, WIRE_STAFFLIST_MAX_BYTES);
	default:
		/* the thread requests (§13), or PROTO_UNKNOWN: no body, or one this version does not know */
		return wire__check_thread_request(r, l);
	}
}

static int check_request(const Parley__Wire__Request *r, const wire_limits *l)
{
	switch (r->body_case) {
	case PARLEY__WIRE__REQUEST__BODY_PING:
		if (r->ping->payload.len > l->max_ping_payload)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_REGISTER:
		CHECK(wire__check_str(r->register_->handle, l->max_handle, 1));
		CHECK(check_exact(&r->register_->device_key, WIRE_KEY_LEN));
		CHECK(wire__check_str(r->register_->device_name, l->max_device_name, 0));
		CHECK(check_exact(&r->register_->signature, WIRE_SIG_LEN));
		if (r->register_->pow.len > WIRE_POW_MAX_LEN)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		/* required by the service (NO_ACCOUNT_KEY's sibling, a clear status), bounded here */
		return wire__check_max(&r->register_->account_key, WIRE_SIGNAL_KEY_LEN);
	case PARLEY__WIRE__REQUEST__BODY_AUTH:
		CHECK(wire__check_str(r->auth->handle, l->max_handle, 1));
		if (r->auth->device_id == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		CHECK(check_exact(&r->auth->signature, WIRE_SIG_LEN));
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES:
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE:
		CHECK(check_exact(&r->add_device->device_key, WIRE_KEY_LEN));
		CHECK(wire__check_str(r->add_device->device_name, l->max_device_name, 0));
		/* a missing or short signature is the service's BAD_SIGNATURE, not a frame error */
		if (r->add_device->signature.len > WIRE_SIG_LEN)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE:
		if (r->remove_device->device_id == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS:
		return check_upload_keys(r->upload_keys);
	case PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT:
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES:
		return wire__check_str(r->get_bundles->handle, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE:
		return check_send(r->send_message, l);
	case PARLEY__WIRE__REQUEST__BODY_ACK:
		if (r->ack->n_server_ids == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		if (r->ack->n_server_ids > WIRE_MAX_ACK_IDS)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		return PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_TYPING:
		return wire__check_str(r->typing->recipient, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_CONTACT:
		return wire__check_str(r->contact->handle, l->max_handle, 1);
	case PARLEY__WIRE__REQUEST__BODY_PRESENCE_SETTING:
		return PARLEY_OK;
	default:
		return check_list_request(r, l);
	}
}

static int check_device(const Parley__Wire__Device *d, const wire_limits *l)
{
	CHECK(wire__check_str(d->name, l->max_device_name, 0));
	return check_exact(&d->device_key, WIRE_KEY_LEN);
}

static int check_bundles(const Parley__Wire__GetBundlesResponse *g)
{
	if (g->n_bundles > WIRE_MAX_OUTGOING)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	for (size_t i = 0; i < g->n_bundles; i++) {
		const Parley__Wire__PreKeyBundle *b = g->bundles[i];
		CHECK(check_exact(&b->identity_key, WIRE_SIGNAL_KEY_LEN));
		CHECK(check_signed_prekey(b->signed_prekey));
		if (b->one_time_prekey != NULL)
			CHECK(check_exact(&b->one_time_prekey->public_key, WIRE_SIGNAL_KEY_LEN));
	}
	return PARLEY_OK;
}

static int check_join_info(const Parley__Wire__EntityJoinInfo *j, const wire_limits *l)
{
	CHECK(wire__check_str(j->handle, l->max_handle, 1));
	CHECK(wire__check_max(&j->account_key, WIRE_SIGNAL_KEY_LEN));
	CHECK(wire__check_max(&j->approval, WIRE_APPROVAL_MAX_BYTES));
	return wire__check_max(&j->signed_device_list, WIRE_DEVLIST_MAX_BYTES);
}

/* responses of §11 and §12 */
static int check_list_response(const Parley__Wire__Response *r, const wire_limits *l)
{
	switch (r->body_case) {
	case PARLEY__WIRE__RESPONSE__BODY_GET_DEVICE_LIST:
		return wire__check_max(&r->get_device_list->signed_device_list, WIRE_DEVLIST_MAX_BYTES);
	case PARLEY__WIRE__RESPONSE__BODY_ENTITY_GET: {
		const Parley__Wire__Entity *e = r->entity_get->entity;
		if (e == NULL)
			return PARLEY_E_PROTO_MISSING_FIELD;
		CHECK(wire__check_str(e->handle, l->max_handle, 1));
		CHECK(wire__check_str(e->display_name, WIRE_MAX_DISPLAY_NAME, 0));
		CHECK(wire__check_max(&e->entity_key, WIRE_SIGNAL_KEY_LEN));
		return wire__check_max(&e->signed_staff_list, WIRE_STAFFLIST_MAX_BYTES);
	}
	case PARLEY__WIRE__RESPONSE__BODY_ENTITY_CODE:
		return wire__check_str(r->entity_code->code, WIRE_MAX_ENROL_CODE, 0);
	case PARLEY__WIRE__RESPONSE__BODY_ENTITY_REQUESTS:
		if (r->entity_requests->n_requests > WIRE_MAX_REPEATED)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		for (size_t i = 0; i < r->entity_requests->n_requests; i++)
			CHECK(check_join_info(r->entity_requests->requests[i], l));
		return PARLEY_OK;
	default:
		return wire__check_thread_response(r, l);
	}
}

static int check_response(const Parley__Wire__Response *r, const wire_limits *l)
{
	CHECK(wire__check_str(r->message, l->max_message, 0));
	if (r->body_case == PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES) {
		CHECK(wire__check_max(&r->get_bundles->signed_device_list, WIRE_DEVLIST_MAX_BYTES));
		return check_bundles(r->get_bundles);
	}
	if (r->body_case == PARLEY__WIRE__RESPONSE__BODY_SEND_MESSAGE) {
		const Parley__Wire__SendMessageResponse *m = r->send_message;
		if (m->n_missing_devices > WIRE_MAX_OUTGOING || m->n_extra_devices > WIRE_MAX_OUTGOING ||
		    m->n_stale_devices > WIRE_MAX_OUTGOING)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	}
	if (r->body_case == PARLEY__WIRE__RESPONSE__BODY_GET_PREKEY_COUNT &&
	    r->get_prekey_count->n_forget_prekey_ids > WIRE_MAX_REPEATED)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	if (r->body_case == PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES) {
		const Parley__Wire__ListDevicesResponse *ld = r->list_devices;
		if (ld->n_devices > l->max_devices)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		for (size_t i = 0; i < ld->n_devices; i++)
			CHECK(check_device(ld->devices[i], l));
		return wire__check_max(&ld->signed_device_list, WIRE_DEVLIST_MAX_BYTES);
	}
	/* other bodies hold only integers; an unknown body is left for the caller: a newer server may
	 * answer a request with a body this client does not know, and the status still applies */
	return check_list_response(r, l);
}

static int check_push(const Parley__Wire__Push *p, const wire_limits *l)
{
	switch (p->body_case) {
	case PARLEY__WIRE__PUSH__BODY_CHALLENGE:
		return check_exact(&p->challenge->nonce, WIRE_NONCE_LEN);
	case PARLEY__WIRE__PUSH__BODY_ENVELOPE:
		CHECK(wire__check_str(p->envelope->sender_handle, l->max_handle, 1));
		if (p->envelope->content.len == 0 || p->envelope->server_id == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return PARLEY_OK;
	case PARLEY__WIRE__PUSH__BODY_QUEUE_EMPTY:
	case PARLEY__WIRE__PUSH__BODY_PREKEYS_LOW:
		return PARLEY_OK;
	case PARLEY__WIRE__PUSH__BODY_TYPING:
		return wire__check_str(p->typing->sender_handle, l->max_handle, 1);
	case PARLEY__WIRE__PUSH__BODY_PRESENCE:
		return wire__check_str(p->presence->handle, l->max_handle, 1);
	case PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_REQUESTED:
		CHECK(wire__check_str(p->entity_join_requested->entity, l->max_handle, 1));
		if (p->entity_join_requested->request == NULL)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return check_join_info(p->entity_join_requested->request, l);
	case PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED:
		return wire__check_str(p->entity_staff_changed->entity, l->max_handle, 1);
	case PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_DECIDED:
		return wire__check_str(p->entity_join_decided->entity, l->max_handle, 1);
	case PARLEY__WIRE__PUSH__BODY_THREAD_CHANGED:
		return wire__check_thread_changed(p->thread_changed, l);
	case PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT:
	case PARLEY__WIRE__PUSH__BODY_AUTH_RESULT:
		return wire__check_auth_push(p, l);
	default:
		return PARLEY_E_PROTO_UNKNOWN;
	}
}

static int check_frame(const Parley__Wire__Frame *f, const wire_limits *l)
{
	switch (f->kind_case) {
	case PARLEY__WIRE__FRAME__KIND_REQUEST:
		return check_request(f->request, l);
	case PARLEY__WIRE__FRAME__KIND_RESPONSE:
		return check_response(f->response, l);
	case PARLEY__WIRE__FRAME__KIND_PUSH:
		return check_push(f->push, l);
	default:
		return PARLEY_E_PROTO_UNKNOWN;
	}
}

/* --- decode --- */

int wire__decode_frame(const uint8_t *buf, size_t len, const wire_limits *limits, wire_frame *out)
{
	wire_limits defaults;
	wire_scan sc = {0};
	struct wire__arena *ar = NULL;
	Parley__Wire__Frame *f = NULL;
	int rc;

	if (out == NULL || (buf == NULL && len > 0))
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (limits == NULL) {
		wire__limits_default(&defaults);
		limits = &defaults;
	}
	if (len > limits->max_frame)
		return PARLEY_E_TOO_LARGE;

	sc.max_repeated = limits->max_repeated ? limits->max_repeated : limits->max_devices;
	rc = wire__scan_frame(buf, len, &sc);
	out->has_id = sc.has_id;
	out->id = sc.id;
	out->kind = sc.kind;
	if (rc != PARLEY_OK)
		goto out;

	ar = parley__calloc(1, sizeof(*ar));
	if (ar == NULL) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	ar->alloc.alloc = arena_alloc;
	ar->alloc.free = arena_free;
	ar->alloc.allocator_data = ar;
	ar->budget = WIRE_ALLOC_BASE + WIRE_ALLOC_FACTOR * len;

	f = parley__wire__frame__unpack(&ar->alloc, len, buf);
	if (f == NULL) {
		if (ar->nomem)
			rc = PARLEY_E_NOMEM;
		else if (ar->over_budget)
			rc = PARLEY_E_PROTO_FIELD_TOO_LARGE;
		else
			rc = PARLEY_E_PROTO_MALFORMED; /* something the pre-scan let through */
		goto out;
	}
	rc = check_frame(f, limits);
	if (rc != PARLEY_OK)
		goto out;
	out->frame = f;
	out->arena_ = ar;
	f = NULL;
	ar = NULL;
out:
	if (f != NULL)
		parley__wire__frame__free_unpacked(f, &ar->alloc);
	parley__free(ar);
	return rc;
}

void wire__frame_free(wire_frame *fr)
{
	if (fr == NULL)
		return;
	if (fr->frame != NULL)
		parley__wire__frame__free_unpacked(fr->frame, &fr->arena_->alloc);
	parley__free(fr->arena_);
	fr->frame = NULL;
	fr->arena_ = NULL;
}

/* From the schema itself (the oneof member's field name), so a new request kind needs no entry here. */
const char *wire__request_kind_name(int body_case)
{
	const ProtobufCFieldDescriptor *f =
		body_case > 0 ? protobuf_c_message_descriptor_get_field(&parley__wire__request__descriptor, (unsigned)body_case)
			      : NULL;
	return f != NULL && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? f->name : "unknown";
}

/* --- encode --- */

int wire__encode_frame(const Parley__Wire__Frame *f, dynbuf *out)
{
	int err;
	size_t n = parley__wire__frame__get_packed_size(f);
	uint8_t *dst = dynbuf__reserve(out, n, &err);
	if (dst == NULL)
		return err;
	size_t w = parley__wire__frame__pack(f, dst);
	if (w != n)
		return PARLEY_E_INTERNAL;
	out->len += n;
	return PARLEY_OK;
}

int wire__encode_request(Parley__Wire__Request *req, dynbuf *out)
{
	Parley__Wire__Frame f = PARLEY__WIRE__FRAME__INIT;
	f.kind_case = PARLEY__WIRE__FRAME__KIND_REQUEST;
	f.request = req;
	return wire__encode_frame(&f, out);
}

int wire__encode_response(Parley__Wire__Response *resp, dynbuf *out)
{
	Parley__Wire__Frame f = PARLEY__WIRE__FRAME__INIT;
	f.kind_case = PARLEY__WIRE__FRAME__KIND_RESPONSE;
	f.response = resp;
	return wire__encode_frame(&f, out);
}

int wire__encode_push(Parley__Wire__Push *push, dynbuf *out)
{
	Parley__Wire__Frame f = PARLEY__WIRE__FRAME__INIT;
	f.kind_case = PARLEY__WIRE__FRAME__KIND_PUSH;
	f.push = push;
	return wire__encode_frame(&f, out);
}

int wire__encode_error(uint64_t id, int err, dynbuf *out)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	r.id = id;
	r.status = (uint32_t)err;
	r.message = (char *)parley_strerror(err);
	return wire__encode_response(&r, out);
}

int wire__encode_challenge(const uint8_t nonce[WIRE_NONCE_LEN], uint64_t server_time_ms, dynbuf *out)
{
	return wire__encode_challenge_pow(nonce, server_time_ms, 0, out);
}

int wire__encode_challenge_pow(const uint8_t nonce[WIRE_NONCE_LEN], uint64_t server_time_ms, unsigned pow_bits,
			       dynbuf *out)
{
	Parley__Wire__Challenge ch = PARLEY__WIRE__CHALLENGE__INIT;
	Parley__Wire__Push p = PARLEY__WIRE__PUSH__INIT;
	ch.nonce.data = (uint8_t *)nonce;
	ch.nonce.len = WIRE_NONCE_LEN;
	ch.server_time_ms = server_time_ms;
	ch.register_pow_bits = pow_bits;
	p.body_case = PARLEY__WIRE__PUSH__BODY_CHALLENGE;
	p.challenge = &ch;
	return wire__encode_push(&p, out);
}

int wire__handle_check(const char *h, size_t *pos)
{
	size_t n = strnlen(h, WIRE_MAX_HANDLE + 1);
	if (n < WIRE_MIN_HANDLE || n > WIRE_MAX_HANDLE)
		return WIRE_HANDLE_BAD_LENGTH;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok) {
			if (pos != NULL)
				*pos = i;
			return WIRE_HANDLE_BAD_CHAR;
		}
	}
	return h[0] >= 'a' && h[0] <= 'z' ? 0 : WIRE_HANDLE_BAD_FIRST;
}

int wire__check_receipt(const uint8_t *buf, size_t len)
{
	struct wire__arena ar = {0};
	int rc = PARLEY_OK;
	ar.alloc.alloc = arena_alloc;
	ar.alloc.free = arena_free;
	ar.alloc.allocator_data = &ar;
	ar.budget = WIRE_ALLOC_BASE + WIRE_ALLOC_FACTOR * len;
	Parley__Wire__Receipt *r = parley__wire__receipt__unpack(&ar.alloc, len, buf);
	if (r == NULL)
		return ar.nomem ? PARLEY_E_NOMEM : ar.over_budget ? PARLEY_E_PROTO_FIELD_TOO_LARGE : PARLEY_E_PROTO_MALFORMED;
	if (r->kind != PARLEY__WIRE__RECEIPT__KIND__DELIVERY && r->kind != PARLEY__WIRE__RECEIPT__KIND__READ)
		rc = PARLEY_E_PROTO_MALFORMED;
	else if (r->n_timestamps == 0)
		rc = PARLEY_E_PROTO_MISSING_FIELD;
	else if (r->n_timestamps > WIRE_MAX_ACK_IDS)
		rc = PARLEY_E_PROTO_FIELD_TOO_LARGE;
	parley__wire__receipt__free_unpacked(r, &ar.alloc);
	return rc;
}

/* --- signed bytes (docs/protocol.md "Signed bytes") --- */

#define REGISTER_DOMAIN "parley-register-v1"
#define ADD_DEVICE_DOMAIN "parley-add-device-v1"
#define AUTH_DOMAIN "parley-auth-v1"

/* Strings are length-prefixed (one byte: all are capped far below 256) so that no two different field
 * tuples produce the same byte string. Appends nothing on error. */
static int append_lp(dynbuf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t l = (uint8_t)n;
	if (n > 255)
		return PARLEY_E_INVAL;
	int rc = dynbuf__append(b, &l, 1);
	if (rc == PARLEY_OK)
		rc = dynbuf__append(b, s, n);
	return rc;
}

int wire__register_signed_bytes(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle,
				 const uint8_t key[WIRE_KEY_LEN], const char *device_name, dynbuf *out)
{
	size_t start = out->len;
	int rc;
	if (device_name == NULL)
		device_name = "";
	if (handle == NULL || strlen(handle) > 255 || strlen(device_name) > 255)
		return PARLEY_E_INVAL;
	/* the domain string includes its NUL so it can never be a prefix of another domain string */
	rc = dynbuf__append(out, REGISTER_DOMAIN, sizeof(REGISTER_DOMAIN));
	if (rc == PARLEY_OK)
		rc = dynbuf__append(out, nonce, WIRE_NONCE_LEN);
	if (rc == PARLEY_OK)
		rc = append_lp(out, handle);
	if (rc == PARLEY_OK)
		rc = dynbuf__append(out, key, WIRE_KEY_LEN);
	if (rc == PARLEY_OK)
		rc = append_lp(out, device_name);
	if (rc != PARLEY_OK)
		out->len = start;
	return rc;
}

int wire__auth_signed_bytes(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle, uint32_t device_id,
			    dynbuf *out)
{
	size_t start = out->len;
	uint8_t id[4] = {(uint8_t)(device_id >> 24), (uint8_t)(device_id >> 16), (uint8_t)(device_id >> 8),
			 (uint8_t)device_id};
	int rc;
	if (handle == NULL || strlen(handle) > 255)
		return PARLEY_E_INVAL;
	rc = dynbuf__append(out, AUTH_DOMAIN, sizeof(AUTH_DOMAIN));
	if (rc == PARLEY_OK)
		rc = dynbuf__append(out, nonce, WIRE_NONCE_LEN);
	if (rc == PARLEY_OK)
		rc = append_lp(out, handle);
	if (rc == PARLEY_OK)
		rc = dynbuf__append(out, id, sizeof(id));
	if (rc != PARLEY_OK)
		out->len = start;
	return rc;
}

int wire__add_device_signed_bytes(const char *handle, const uint8_t key[WIRE_KEY_LEN], uint64_t timestamp_ms,
				   dynbuf *out)
{
	size_t start = out->len;
	uint8_t ts[8];
	int rc;
	if (handle == NULL || strlen(handle) > 255)
		return PARLEY_E_INVAL;
	for (int i = 0; i < 8; i++)
		ts[i] = (uint8_t)(timestamp_ms >> (56 - 8 * i));
	rc = dynbuf__append(out, ADD_DEVICE_DOMAIN, sizeof(ADD_DEVICE_DOMAIN));
	if (rc == PARLEY_OK)
		rc = append_lp(out, handle);
	if (rc == PARLEY_OK)
		rc = dynbuf__append(out, key, WIRE_KEY_LEN);
	if (rc == PARLEY_OK)
		rc = dynbuf__append(out, ts, sizeof(ts));
	if (rc != PARLEY_OK)
		out->len = start;
	return rc;
}
