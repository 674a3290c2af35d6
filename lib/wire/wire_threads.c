/* Thread messages' checks (wire_threads.h). */
#include "wire/wire_auth.h"
#include "wire/wire_threads.h"

#include <string.h>

#include <parley/error.h>

#include "wire/threadev.h"

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		int check__rc = (expr);                                                            \
		if (check__rc != PARLEY_OK)                                                        \
			return check__rc;                                                          \
	} while (0)

/* a signed event: required, at most the largest record (the service parses it) */
static int check_event(const ProtobufCBinaryData *b)
{
	if (b->len == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	return wire__check_max(b, WIRE_THREADEV_MAX_BYTES);
}

static int check_info(const Parley__Wire__ThreadInfo *t, const wire_limits *l)
{
	if (t == NULL)
		return PARLEY_E_PROTO_MISSING_FIELD;
	CHECK(wire__check_str(t->entity, l->max_handle, 1));
	CHECK(wire__check_str(t->customer, l->max_handle, 0));
	CHECK(wire__check_str(t->channel_user, WIRE_CHANNEL_USER_MAX, 0));
	CHECK(wire__check_str(t->gateway, l->max_handle, 0));
	CHECK(wire__check_str(t->verified_by, WIRE_CHANNEL_USER_MAX, 0));
	return t->n_members > WIRE_THREAD_MAX_MEMBERS ? PARLEY_E_PROTO_FIELD_TOO_LARGE : PARLEY_OK;
}

static int check_send(const Parley__Wire__ThreadSendRequest *s)
{
	if (s->thread_id == 0 || s->ciphertext.len == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	CHECK(wire__check_max(&s->ciphertext, WIRE_THREAD_MAX_CIPHERTEXT));
	return wire__check_max(&s->lock_event, WIRE_THREADEV_MAX_BYTES);
}

static int check_forward(const Parley__Wire__ThreadForwardRequest *f, const wire_limits *l)
{
	if (f->thread_id == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	CHECK(wire__check_str(f->agent, l->max_handle, 1));
	/* ADD then HANDLING */
	if (f->n_events == 0)
		return PARLEY_E_PROTO_MISSING_FIELD;
	if (f->n_events > 2)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	for (size_t i = 0; i < f->n_events; i++)
		CHECK(check_event(&f->events[i]));
	return wire__check_outgoing(f->payloads, f->n_payloads);
}

int wire__channel_valid(uint32_t channel, const char *user)
{
	size_t n = user != NULL ? strnlen(user, WIRE_CHANNEL_USER_MAX + 1) : 0;
	int phone = channel == 2 || channel == 3; /* sms, waba */

	if (channel == 0 || channel > WIRE_CHANNEL_MAX || n == 0 || n > WIRE_CHANNEL_USER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)user[i];
		if (ch < 0x20 || ch > 0x7e) /* printable ASCII */
			return 0;
		if (phone && (i == 0 ? ch != '+' : ch < '0' || ch > '9'))
			return 0;
	}
	/* E.164: at most 15 digits; 6 keeps short codes and typos out */
	return !phone || (n - 1 >= 6 && n - 1 <= 15);
}

unsigned wire__channel_baseline(uint32_t channel)
{
	return channel == 2 || channel == 3 ? 1u : 0u;
}

int wire__check_thread_request(const Parley__Wire__Request *r, const wire_limits *l)
{
	switch (r->body_case) {
	case PARLEY__WIRE__REQUEST__BODY_THREAD_OPEN:
		CHECK(wire__check_str(r->thread_open->entity, l->max_handle, 1));
		CHECK(wire__check_str(r->thread_open->customer, l->max_handle, 0));
		/* a generous frame bound: the service answers CHANNEL_INVALID for anything past 64 */
		CHECK(wire__check_str(r->thread_open->channel_user, 4 * WIRE_CHANNEL_USER_MAX, 0));
		return check_event(&r->thread_open->event);
	case PARLEY__WIRE__REQUEST__BODY_THREAD_SEND:
		return check_send(r->thread_send);
	case PARLEY__WIRE__REQUEST__BODY_THREAD_EVENT:
		if (r->thread_event->thread_id == 0)
			return PARLEY_E_PROTO_MISSING_FIELD;
		return check_event(&r->thread_event->event);
	case PARLEY__WIRE__REQUEST__BODY_THREAD_FORWARD:
		return check_forward(r->thread_forward, l);
	case PARLEY__WIRE__REQUEST__BODY_THREAD_GET:
		return r->thread_get->thread_id == 0 ? PARLEY_E_PROTO_MISSING_FIELD : PARLEY_OK;
	case PARLEY__WIRE__REQUEST__BODY_THREAD_LIST:
		CHECK(wire__check_str(r->thread_list->entity, l->max_handle, 0));
		return r->thread_list->limit > WIRE_THREAD_LIST_MAX ? PARLEY_E_PROTO_FIELD_TOO_LARGE : PARLEY_OK;
	default:
		/* customer authentication (§14), or PROTO_UNKNOWN */
		return wire__check_auth_request(r, l);
	}
}

int wire__check_thread_response(const Parley__Wire__Response *r, const wire_limits *l)
{
	switch (r->body_case) {
	case PARLEY__WIRE__RESPONSE__BODY_THREAD_OPEN:
		return check_info(r->thread_open->thread, l);
	case PARLEY__WIRE__RESPONSE__BODY_THREAD_GET:
		if (r->thread_get->n_events > WIRE_THREAD_MAX_EVENTS)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		for (size_t i = 0; i < r->thread_get->n_events; i++)
			CHECK(check_event(&r->thread_get->events[i]));
		return check_info(r->thread_get->thread, l);
	case PARLEY__WIRE__RESPONSE__BODY_THREAD_LIST:
		if (r->thread_list->n_threads > WIRE_THREAD_LIST_MAX)
			return PARLEY_E_PROTO_FIELD_TOO_LARGE;
		for (size_t i = 0; i < r->thread_list->n_threads; i++)
			CHECK(check_info(r->thread_list->threads[i], l));
		return PARLEY_OK;
	default:
		return PARLEY_OK; /* integers only, or a body left to the caller */
	}
}

int wire__check_thread_changed(const Parley__Wire__ThreadChanged *c, const wire_limits *l)
{
	CHECK(check_info(c->thread, l));
	return wire__check_max(&c->event, WIRE_THREADEV_MAX_BYTES);
}
