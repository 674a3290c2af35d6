/* Thread event codec (threadev.h). Fixed layout but for the handle (and a channel OPEN's channel
 * customer): one bounded walk, the field rules, the signature last. */
#include "wire/threadev.h"

#include <string.h>

#include <parley/error.h>

#include "wire/be.h"
#include "wire/sigrec.h"

#define INVALID PARLEY_E_THREAD_EVENT_INVALID

static int check(const wire_threadev *ev)
{
	if (memchr(ev->entity, '\0', sizeof(ev->entity)) == NULL || !wire__handle_valid(ev->entity))
		return INVALID;
	if (ev->actor == 0 || ev->actor_device == 0 || ev->staff_version == 0)
		return INVALID;
	/* the channel customer: only an OPEN names one, and then a well-formed one (a string that ends in
	 * its buffer); a native event has none */
	if (memchr(ev->channel_user, '\0', sizeof(ev->channel_user)) == NULL)
		return INVALID;
	if (ev->channel != 0 ? ev->kind != WIRE_THREADEV_OPEN || !wire__channel_valid(ev->channel, ev->channel_user)
			     : ev->channel_user[0] != '\0')
		return INVALID;
	/* OPEN names no thread yet (the server assigns it) and starts the membership at 1; every other
	 * event names its thread and follows at least the OPEN */
	if (ev->kind == WIRE_THREADEV_OPEN)
		return ev->thread_id == 0 && ev->version == 1 && ev->subject != 0 ? PARLEY_OK : INVALID;
	if (ev->thread_id == 0 || ev->version < 2)
		return INVALID;
	switch (ev->kind) {
	case WIRE_THREADEV_ADD:
	case WIRE_THREADEV_REMOVE:
	case WIRE_THREADEV_HANDLING:
		return ev->subject != 0 ? PARLEY_OK : INVALID;
	case WIRE_THREADEV_LOCK:
		/* only the first responder locks, for itself */
		return ev->subject == ev->actor ? PARLEY_OK : INVALID;
	case WIRE_THREADEV_UNLOCK:
	case WIRE_THREADEV_CLOSE:
		return ev->subject == 0 ? PARLEY_OK : INVALID;
	case WIRE_THREADEV_HANDBACK:
		return PARLEY_OK; /* 0: back to the admins' queue */
	default:
		return INVALID;
	}
}

const char *wire__threadev_kind_name(unsigned kind)
{
	static const char *const names[] = {"unknown", "open", "add", "remove", "handling",
					    "lock", "unlock", "close", "handback"};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : names[0];
}

int wire__threadev_sign(const wire_threadev *ev, const uint8_t sk[64], uint8_t *out, size_t cap, size_t *len)
{
	uint8_t *p = out;

	if (ev == NULL || sk == NULL || out == NULL || len == NULL || cap < WIRE_THREADEV_MAX_BYTES)
		return PARLEY_E_INVAL;
	if (check(ev) != PARLEY_OK)
		return INVALID;
	memcpy(p, ev->channel != 0 ? WIRE_THREADEV_MAGIC_CHANNEL : WIRE_THREADEV_MAGIC, WIRE_THREADEV_MAGIC_LEN);
	p += WIRE_THREADEV_MAGIC_LEN;
	p = wire__put_be(p, ev->thread_id, 8);
	p = wire__put_handle(p, ev->entity);
	p = wire__put_be(p, ev->version, 8);
	*p++ = ev->kind;
	p = wire__put_be(p, ev->subject, 8);
	p = wire__put_be(p, ev->actor, 8);
	p = wire__put_be(p, ev->actor_device, 4);
	p = wire__put_be(p, ev->staff_version, 8);
	p = wire__put_be(p, ev->timestamp_ms, 8);
	if (ev->channel != 0) {
		*p++ = (uint8_t)ev->channel;
		p = wire__put_handle(p, ev->channel_user); /* u8 length and the bytes, as a handle */
	}
	*len = wire__sigrec_sign(out, p, sk);
	return PARLEY_OK;
}

/* A v2 record's channel customer at p (end: where the signature starts): exactly channel u8, length
 * u8 and that many bytes, no NUL (the rules are check()'s). */
static int parse_channel(const uint8_t *p, const uint8_t *end, wire_threadev *out)
{
	size_t ul;

	if (end - p < 2)
		return INVALID;
	out->channel = *p++;
	ul = *p++;
	if (ul == 0 || ul > WIRE_CHANNEL_USER_MAX || (size_t)(end - p) != ul || memchr(p, '\0', ul) != NULL)
		return INVALID;
	memcpy(out->channel_user, p, ul);
	return PARLEY_OK;
}

int wire__threadev_parse(const uint8_t *buf, size_t len, wire_threadev *out)
{
	const uint8_t *p = buf;
	size_t hl;
	int v2;

	if (out == NULL)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (buf == NULL || len < WIRE_THREADEV_FIXED || len > WIRE_THREADEV_MAX_BYTES)
		return INVALID;
	v2 = memcmp(p, WIRE_THREADEV_MAGIC_CHANNEL, WIRE_THREADEV_MAGIC_LEN) == 0;
	if (!v2 && memcmp(p, WIRE_THREADEV_MAGIC, WIRE_THREADEV_MAGIC_LEN) != 0)
		return INVALID;
	p += WIRE_THREADEV_MAGIC_LEN;
	out->thread_id = wire__get_be(&p, 8);
	hl = *p++;
	/* the whole length follows from the handle's (v1) or is at least that plus a channel customer
	 * (v2, which says its own length): nothing short, nothing trailing */
	if (hl > WIRE_MAX_HANDLE || (v2 ? len < WIRE_THREADEV_FIXED + hl + WIRE_THREADEV_CHANNEL_EXTRA(1)
					: len != WIRE_THREADEV_FIXED + hl)) {
		memset(out, 0, sizeof(*out));
		return INVALID;
	}
	memcpy(out->entity, p, hl);
	p += hl;
	out->version = wire__get_be(&p, 8);
	out->kind = *p++;
	out->subject = wire__get_be(&p, 8);
	out->actor = wire__get_be(&p, 8);
	out->actor_device = (uint32_t)wire__get_be(&p, 4);
	out->staff_version = wire__get_be(&p, 8);
	out->timestamp_ms = wire__get_be(&p, 8);
	/* a v2 record names a channel customer (1..64 bytes), and check() refuses one without a channel:
	 * native is v1 only */
	if ((v2 && parse_channel(p, buf + len - WIRE_SIGREC_SIG_LEN, out) != PARLEY_OK) ||
	    memchr(out->entity, '\0', hl) != NULL || check(out) != PARLEY_OK) {
		memset(out, 0, sizeof(*out));
		return INVALID;
	}
	return PARLEY_OK;
}

int wire__threadev_verify(const uint8_t *buf, size_t len, const uint8_t device_key[32], wire_threadev *out)
{
	int rc = wire__threadev_parse(buf, len, out);

	if (rc != PARLEY_OK)
		return rc;
	if (!wire__sigrec_ok(buf, len, device_key)) {
		memset(out, 0, sizeof(*out));
		return INVALID;
	}
	return PARLEY_OK;
}
