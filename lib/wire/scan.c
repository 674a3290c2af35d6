/* Pre-scan of the protobuf encoding of a Frame, driven by protobuf-c's own descriptors.
 *
 * Why a separate pass: protobuf-c reports every failure as "NULL", so it cannot tell a frame that was
 * cut short from one that is garbage, and it allocates while it goes. Walking the encoding first costs
 * one linear pass without allocation and lets us answer with a precise code. The rule for the two
 * codes: a length or varint that runs past the end of the whole buffer is TRUNCATED; one that runs past
 * the end of its enclosing message (but not of the buffer) is MALFORMED, as is every other
 * inconsistency (bad wire type, field 0, 11-byte varint, invalid UTF-8, NUL inside a string).
 */
#include "wire/scan.h"

#include <parley/error.h>

#include "proto/parley.pb-c.h"

struct scan_ctx {
	const uint8_t *buf_end;
	wire_scan *sc;
};

static int overrun(const uint8_t *limit, const uint8_t *buf_end)
{
	return limit == buf_end ? PARLEY_E_PROTO_TRUNCATED : PARLEY_E_PROTO_MALFORMED;
}

static int read_varint(const uint8_t **pp, const uint8_t *limit, const uint8_t *buf_end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (p >= limit)
			return overrun(limit, buf_end);
		uint8_t b = *p++;
		/* the 10th byte carries only bit 63: anything above 1 overflows 64 bits */
		if (i == 9 && b > 1)
			return PARLEY_E_PROTO_MALFORMED;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*pp = p;
			*out = v;
			return PARLEY_OK;
		}
	}
	return PARLEY_E_PROTO_MALFORMED;
}

static int expected_wire_type(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 1;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return 2;
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return 5;
	default:
		return 0; /* int32, sint32, uint32, int64, sint64, uint64, bool, enum */
	}
}

int wire__utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t extra;
		uint32_t cp, min;
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			extra = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			extra = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (n - i <= extra)
			return 0;
		for (size_t k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += extra + 1;
	}
	return 1;
}

static int scan_message(struct scan_ctx *c, const ProtobufCMessageDescriptor *d, const uint8_t *p,
			const uint8_t *limit, unsigned depth, int partial);

/* A length-delimited field whose bytes are [p, p+len), all inside the enclosing message. */
static int scan_len_field(struct scan_ctx *c, const ProtobufCFieldDescriptor *f, const uint8_t *p, size_t len,
			  unsigned depth)
{
	if (f == NULL)
		return PARLEY_OK; /* unknown field: skipped, as protobuf requires */
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		return scan_message(c, f->descriptor, p, p + len, depth + 1, 0);
	case PROTOBUF_C_TYPE_STRING:
		/* protobuf-c hands strings to us NUL-terminated: an embedded NUL would silently shorten
		 * a handle, so it is malformed here rather than a surprise later */
		return wire__utf8_valid(p, len) ? PARLEY_OK : PARLEY_E_PROTO_MALFORMED;
	default:
		return PARLEY_OK;
	}
}

static int is_id_field(const ProtobufCMessageDescriptor *d, uint32_t fieldno)
{
	return fieldno == 1 &&
	       (d == &parley__wire__request__descriptor || d == &parley__wire__response__descriptor);
}

/* Returns the first error met in this message. Once the framing of a field is known to be sound, an
 * error inside it is recorded and the scan goes on, so that the request id (field 1 of Request) is
 * still found when the body is bad. `partial` scans a truncated Request only to find its id. */
static int scan_message(struct scan_ctx *c, const ProtobufCMessageDescriptor *d, const uint8_t *p,
			const uint8_t *limit, unsigned depth, int partial)
{
	unsigned counts[64] = {0};
	unsigned oneof_seen[8];
	unsigned noneofs = 0;
	unsigned nfields = 0;
	int first = PARLEY_OK;
	int rc;

	if (depth > WIRE_SCAN_MAX_DEPTH)
		return PARLEY_E_PROTO_MALFORMED;
	if (!partial && is_id_field(d, 1)) {
		/* proto3: an absent id is id 0, and that is what the client will be answered with */
		c->sc->has_id = 1;
		c->sc->id = 0;
	}
	while (p < limit) {
		uint64_t key, v;
		rc = read_varint(&p, limit, c->buf_end, &key);
		if (rc != PARLEY_OK)
			return first != PARLEY_OK ? first : rc;
		if (++nfields > WIRE_SCAN_MAX_FIELDS)
			return first != PARLEY_OK ? first : PARLEY_E_PROTO_MALFORMED;
		uint64_t fieldno = key >> 3;
		unsigned wt = (unsigned)(key & 7);
		if (fieldno == 0 || fieldno > 536870911u)
			return first != PARLEY_OK ? first : PARLEY_E_PROTO_MALFORMED;
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field(d, (unsigned)fieldno);
		if (f != NULL) {
			int want = expected_wire_type(f->type);
			int packed_ok = f->label == PROTOBUF_C_LABEL_REPEATED && want != 2 && wt == 2;
			if ((int)wt != want && !packed_ok)
				return first != PARLEY_OK ? first : PARLEY_E_PROTO_MALFORMED;
			size_t idx = (size_t)(f - d->fields);
			if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				if (idx < 64 && ++counts[idx] > c->sc->max_repeated && first == PARLEY_OK)
					first = PARLEY_E_PROTO_FIELD_TOO_LARGE;
			} else if (idx < 64 && ++counts[idx] > 1) {
				/* protobuf lets a repeated singular field win silently ("last one wins"); for us
				 * that is two different readings of one frame (an id from one copy, a body from
				 * another), so it is refused */
				return first != PARLEY_OK ? first : PARLEY_E_PROTO_MALFORMED;
			}
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				/* members of one oneof share their case field (quantifier_offset): a second
				 * member would silently replace the first, so it is refused likewise */
				for (unsigned k = 0; k < noneofs; k++)
					if (oneof_seen[k] == f->quantifier_offset)
						return first != PARLEY_OK ? first : PARLEY_E_PROTO_MALFORMED;
				if (noneofs < sizeof oneof_seen / sizeof oneof_seen[0])
					oneof_seen[noneofs++] = f->quantifier_offset;
			}
		}
		switch (wt) {
		case 0:
			rc = read_varint(&p, limit, c->buf_end, &v);
			if (rc != PARLEY_OK)
				return first != PARLEY_OK ? first : rc;
			if (f != NULL && (f->type == PROTOBUF_C_TYPE_UINT32 || f->type == PROTOBUF_C_TYPE_BOOL) &&
			    v > UINT32_MAX && first == PARLEY_OK)
				first = PARLEY_E_PROTO_MALFORMED; /* protobuf-c would truncate it silently */
			if (!partial && is_id_field(d, (uint32_t)fieldno))
				c->sc->id = v;
			else if (partial && is_id_field(d, (uint32_t)fieldno)) {
				c->sc->has_id = 1;
				c->sc->id = v;
			}
			break;
		case 1:
		case 5: {
			size_t need = wt == 1 ? 8 : 4;
			if ((size_t)(limit - p) < need)
				return first != PARLEY_OK ? first : overrun(limit, c->buf_end);
			p += need;
			break;
		}
		case 2: {
			rc = read_varint(&p, limit, c->buf_end, &v);
			if (rc != PARLEY_OK)
				return first != PARLEY_OK ? first : rc;
			if (v > (uint64_t)(limit - p)) {
				if (first != PARLEY_OK)
					return first;
				/* only a length that runs past the whole buffer means "cut short" */
				if (v > (uint64_t)(c->buf_end - p)) {
					if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && depth == 0) {
						c->sc->kind = (int)fieldno;
						(void)scan_message(c, f->descriptor, p, c->buf_end, depth + 1, 1);
					}
					return PARLEY_E_PROTO_TRUNCATED;
				}
				return PARLEY_E_PROTO_MALFORMED;
			}
			if (!partial) {
				rc = scan_len_field(c, f, p, (size_t)v, depth);
				if (rc != PARLEY_OK && first == PARLEY_OK)
					first = rc;
			}
			p += v;
			break;
		}
		default: /* 3, 4: deprecated groups; 6, 7: undefined */
			return first != PARLEY_OK ? first : PARLEY_E_PROTO_MALFORMED;
		}
		if (depth == 0 && f != NULL && !partial)
			c->sc->kind = (int)fieldno;
	}
	return first;
}

int wire__scan_frame(const uint8_t *buf, size_t len, wire_scan *sc)
{
	struct scan_ctx c = {.buf_end = buf + len, .sc = sc};
	sc->has_id = 0;
	sc->id = 0;
	sc->kind = 0;
	if (len == 0)
		return PARLEY_OK; /* an empty Frame is well-formed protobuf; it has no kind */
	return scan_message(&c, &parley__wire__frame__descriptor, buf, buf + len, 0, 0);
}
