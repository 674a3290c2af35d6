/* MQTT 3.1.1 codec for parley-bench (see mqtt.h). Section numbers are the OASIS standard's. */
#include "mqtt.h"

#include <string.h>

#include <parley/error.h>

#define MQTT_IDS 65535u

/* 2.2.3: 1-4 bytes, 7 bits each, least significant first. Returns the bytes used, 0 if more are
 * needed, -1 if the 4th byte still says "more" (the standard's bound). */
static int get_remaining(const uint8_t *buf, size_t len, uint32_t *out)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < 4; i++) {
		if (i >= len)
			return 0;
		v |= (uint32_t)(buf[i] & 0x7f) << (7 * i);
		if ((buf[i] & 0x80) == 0) {
			*out = v;
			return (int)i + 1;
		}
	}
	return -1;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* The body of a PUBLISH (3.3): topic, packet id when QoS > 0, payload. */
static int parse_publish(const uint8_t *b, size_t n, unsigned flags, mqtt_packet *p)
{
	size_t off;

	p->qos = (flags >> 1) & 3;
	p->dup = (flags >> 3) & 1;
	p->retain = flags & 1;
	if (p->qos == 3 || (p->qos == 0 && p->dup) || n < 2)
		return PARLEY_E_PROTO_MALFORMED;
	p->topic_len = get16(b);
	off = 2 + p->topic_len;
	if (p->topic_len == 0 || off > n)
		return PARLEY_E_PROTO_MALFORMED;
	p->topic = b + 2;
	if (p->qos > 0) {
		if (off + 2 > n)
			return PARLEY_E_PROTO_MALFORMED;
		p->id = get16(b + off);
		off += 2;
		if (p->id == 0)
			return PARLEY_E_PROTO_MALFORMED;
	}
	p->payload = b + off;
	p->payload_len = n - off;
	return PARLEY_OK;
}

int mqtt__parse(const uint8_t *buf, size_t len, size_t max_packet, mqtt_packet *p)
{
	uint32_t rem;
	unsigned flags;
	const uint8_t *b;
	int h;

	memset(p, 0, sizeof(*p));
	if (len < 2)
		return PARLEY_E_PROTO_TRUNCATED;
	h = get_remaining(buf + 1, len - 1, &rem);
	if (h < 0)
		return PARLEY_E_PROTO_MALFORMED;
	if (h == 0)
		return PARLEY_E_PROTO_TRUNCATED;
	if ((uint64_t)1 + (uint64_t)h + rem > max_packet)
		return PARLEY_E_PROTO_FIELD_TOO_LARGE;
	p->len = 1 + (size_t)h + rem;
	if (len < p->len)
		return PARLEY_E_PROTO_TRUNCATED;
	p->type = (enum mqtt_type)(buf[0] >> 4);
	flags = buf[0] & 0x0f;
	b = buf + 1 + h;
	switch (p->type) {
	case MQTT_CONNACK: /* 3.2: flags 0, 2 bytes, reserved bits of the first 0 */
		if (flags != 0 || rem != 2 || (b[0] & 0xfe) != 0)
			return PARLEY_E_PROTO_MALFORMED;
		p->session_present = b[0];
		p->rc = b[1];
		return PARLEY_OK;
	case MQTT_PUBLISH:
		return parse_publish(b, rem, flags, p);
	case MQTT_PUBACK: /* 3.4 */
		if (flags != 0 || rem != 2)
			return PARLEY_E_PROTO_MALFORMED;
		p->id = get16(b);
		return p->id == 0 ? PARLEY_E_PROTO_MALFORMED : PARLEY_OK;
	case MQTT_SUBACK: /* 3.9: id, then one return code per filter (we send one) */
		if (flags != 0 || rem < 3)
			return PARLEY_E_PROTO_MALFORMED;
		p->id = get16(b);
		p->rc = b[2];
		if (p->id == 0 || (p->rc > 2 && p->rc != 0x80))
			return PARLEY_E_PROTO_MALFORMED;
		return PARLEY_OK;
	case MQTT_PINGRESP: /* 3.13 */
		return flags == 0 && rem == 0 ? PARLEY_OK : PARLEY_E_PROTO_MALFORMED;
	default:
		return PARLEY_E_PROTO_MALFORMED;
	}
}

/* ---- encoders: every packet is built in a local header plus the caller's pieces, after checking
 * that the whole of it fits, so a failure leaves the buffer as it was ---- */

static size_t put_remaining(uint8_t *out, uint32_t v)
{
	size_t n = 0;

	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Appends fixed header (type/flags, remaining length) + head[0..head_len) + tail[0..tail_len). */
static int put_packet(dynbuf *b, unsigned type_flags, const uint8_t *head, size_t head_len, const uint8_t *tail,
		      size_t tail_len)
{
	uint8_t fh[5];
	size_t fl, total;
	uint8_t *dst;
	int err = PARLEY_OK;

	if (head_len + tail_len > MQTT_MAX_REMAINING)
		return PARLEY_E_INVAL;
	fh[0] = (uint8_t)type_flags;
	fl = 1 + put_remaining(fh + 1, (uint32_t)(head_len + tail_len));
	total = fl + head_len + tail_len;
	dst = dynbuf__reserve(b, total, &err);
	if (dst == NULL)
		return err;
	memcpy(dst, fh, fl);
	if (head_len)
		memcpy(dst + fl, head, head_len);
	if (tail_len)
		memcpy(dst + fl + head_len, tail, tail_len);
	b->len += total;
	return PARLEY_OK;
}

int mqtt__connect(dynbuf *b, const char *client_id, unsigned keepalive_s, int clean_session)
{
	/* 3.1.2: protocol name "MQTT", level 4, flags, keep alive; 3.1.3: client id */
	uint8_t h[10 + 2 + 65535];
	size_t idl = strlen(client_id);

	if (idl > 65535 || keepalive_s > 65535)
		return PARLEY_E_INVAL;
	memcpy(h, "\x00\x04MQTT\x04", 7);
	h[7] = clean_session ? 0x02 : 0x00;
	put16(h + 8, keepalive_s);
	put16(h + 10, (unsigned)idl);
	memcpy(h + 12, client_id, idl);
	return put_packet(b, MQTT_CONNECT << 4, h, 12 + idl, NULL, 0);
}

int mqtt__subscribe(dynbuf *b, unsigned id, const char *filter, unsigned qos)
{
	uint8_t h[2 + 2 + 65535 + 1];
	size_t fl = strlen(filter);

	if (id == 0 || id > 65535 || fl == 0 || fl > 65535 || qos > 2)
		return PARLEY_E_INVAL;
	put16(h, id);
	put16(h + 2, (unsigned)fl);
	memcpy(h + 4, filter, fl);
	h[4 + fl] = (uint8_t)qos;
	return put_packet(b, MQTT_SUBSCRIBE << 4 | 0x2, h, 5 + fl, NULL, 0); /* 3.8.1: flags 0010 */
}

int mqtt__publish(dynbuf *b, const char *topic, unsigned qos, unsigned id, const uint8_t *payload, size_t len)
{
	uint8_t h[2 + 65535 + 2];
	size_t tl = strlen(topic), hl;

	if (tl == 0 || tl > 65535 || qos > 1 || (qos == 1 && (id == 0 || id > 65535)))
		return PARLEY_E_INVAL;
	put16(h, (unsigned)tl);
	memcpy(h + 2, topic, tl);
	hl = 2 + tl;
	if (qos) {
		put16(h + hl, id);
		hl += 2;
	}
	return put_packet(b, MQTT_PUBLISH << 4 | qos << 1, h, hl, payload, len);
}

int mqtt__puback(dynbuf *b, unsigned id)
{
	uint8_t h[2];

	if (id == 0 || id > 65535)
		return PARLEY_E_INVAL;
	put16(h, id);
	return put_packet(b, MQTT_PUBACK << 4, h, 2, NULL, 0);
}

int mqtt__pingreq(dynbuf *b)
{
	return put_packet(b, MQTT_PINGREQ << 4, NULL, 0, NULL, 0);
}

int mqtt__disconnect(dynbuf *b)
{
	return put_packet(b, MQTT_DISCONNECT << 4, NULL, 0, NULL, 0);
}

unsigned mqtt__id_of(uint64_t seq)
{
	return (unsigned)(seq % MQTT_IDS) + 1;
}

int mqtt__seq_of(unsigned id, uint64_t next_seq, unsigned window, uint64_t *seq)
{
	uint64_t last, back;

	if (id == 0 || id > MQTT_IDS || next_seq == 0 || window == 0 || window >= MQTT_IDS)
		return -1;
	last = next_seq - 1;
	/* how far below the last sequence number sent is the one with this id */
	back = (last % MQTT_IDS + MQTT_IDS - (id - 1)) % MQTT_IDS;
	if (back > last || back >= window)
		return -1;
	*seq = last - back;
	return 0;
}
