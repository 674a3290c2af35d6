/* Minimal protobuf (proto2) reader/writer for Signal's small wire messages.
 *
 * Why hand-written rather than protoc-c: libsignal (prost) emits fields in ascending tag order and
 * emits every optional field that is set, even when 0; we must reproduce those exact bytes because the
 * MAC and the sender-key signature cover them. A tiny codec over caller buffers also avoids the
 * per-message allocations of protobuf-c's unpack on the hot encrypt/decrypt path.
 *
 * Reader: a cursor over borrowed bytes; every length is bounded by the remaining input before use.
 * Writer: appends into a caller buffer of fixed capacity; overflow sets w->err (checked once at the end).
 * Schema: proto/signal.proto (documentation of the exact field numbers, not compiled).
 */
#ifndef PARLEY_SIGNAL_PB_H
#define PARLEY_SIGNAL_PB_H

#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

typedef struct pb_reader {
	const uint8_t *p;
	const uint8_t *end;
} pb_reader;

/* One decoded field: tag number, wire type, and either a varint value or a borrowed byte slice. */
typedef struct pb_field {
	uint32_t num;
	int wire;
	uint64_t v;
	const uint8_t *data;
	size_t len;
} pb_field;

void pb__reader_init(pb_reader *r, const uint8_t *p, size_t len);
/* Next field: 1 = got one, 0 = clean end of input, -1 = malformed (truncated varint/length, bad wire
 * type, field number 0, or a group). Unknown fields are returned too; callers skip what they ignore. */
int pb__next(pb_reader *r, pb_field *f);

typedef struct pb_writer {
	uint8_t *p;
	size_t len;
	size_t cap;
	int err; /* set to 1 on overflow; further writes are ignored */
} pb_writer;

void pb__writer_init(pb_writer *w, uint8_t *buf, size_t cap);
void pb__put_raw(pb_writer *w, const void *p, size_t n);
void pb__put_varint_field(pb_writer *w, uint32_t num, uint64_t v);
void pb__put_bytes_field(pb_writer *w, uint32_t num, const uint8_t *p, size_t n);
/* Tag and length of a bytes field whose n content bytes the caller writes itself right after
 * (lets a cipher write its output in place instead of copying it into the message). */
void pb__put_len_prefix(pb_writer *w, uint32_t num, size_t n);
/* Size a varint takes on the wire (1..10). */
size_t pb__varint_size(uint64_t v);

#endif
