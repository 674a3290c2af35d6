/* Minimal proto2 codec: see pb.h for why it exists. */
#include "signal/pb.h"

#include <string.h>

void pb__reader_init(pb_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->end = p + len;
}

/* Decode a varint of at most 10 bytes; -1 if truncated or longer. */
static int read_varint(pb_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		uint8_t b;
		if (r->p >= r->end)
			return -1;
		b = *r->p++;
		if (shift == 63 && b > 1)
			return -1; /* would overflow 64 bits */
		v |= (uint64_t)(b & 0x7F) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

int pb__next(pb_reader *r, pb_field *f)
{
	uint64_t key, len;

	if (r->p >= r->end)
		return 0;
	if (read_varint(r, &key) != 0 || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF)
		return -1;
	f->num = (uint32_t)(key >> 3);
	f->wire = (int)(key & 7);
	f->v = 0;
	f->data = NULL;
	f->len = 0;
	switch (f->wire) {
	case PB_VARINT:
		return read_varint(r, &f->v) == 0 ? 1 : -1;
	case PB_I64:
	case PB_I32: {
		size_t n = f->wire == PB_I64 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			return -1;
		f->data = r->p;
		f->len = n;
		r->p += n;
		return 1;
	}
	case PB_LEN:
		/* the length is checked against what is really left before anyone uses it */
		if (read_varint(r, &len) != 0 || len > (uint64_t)(r->end - r->p))
			return -1;
		f->data = r->p;
		f->len = (size_t)len;
		r->p += len;
		return 1;
	default:
		return -1; /* groups (3, 4) and invalid types */
	}
}

void pb__writer_init(pb_writer *w, uint8_t *buf, size_t cap)
{
	w->p = buf;
	w->len = 0;
	w->cap = cap;
	w->err = 0;
}

void pb__put_raw(pb_writer *w, const void *p, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}

size_t pb__varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void put_varint(pb_writer *w, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	pb__put_raw(w, tmp, n);
}

void pb__put_varint_field(pb_writer *w, uint32_t num, uint64_t v)
{
	put_varint(w, ((uint64_t)num << 3) | PB_VARINT);
	put_varint(w, v);
}

void pb__put_len_prefix(pb_writer *w, uint32_t num, size_t n)
{
	put_varint(w, ((uint64_t)num << 3) | PB_LEN);
	put_varint(w, n);
}

void pb__put_bytes_field(pb_writer *w, uint32_t num, const uint8_t *p, size_t n)
{
	pb__put_len_prefix(w, num, n);
	pb__put_raw(w, p, n);
}
