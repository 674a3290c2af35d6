/* Pure pre-scan of a protobuf-encoded Frame (no allocation, no protobuf-c unpack).
 * Internal to lib/wire; see wire.h for the error contract. */
#ifndef PARLEY_WIRE_SCAN_H
#define PARLEY_WIRE_SCAN_H
#include <stddef.h>
#include <stdint.h>

/* Hard structural limits, independent of configuration: they keep protobuf-c's own allocations
 * (scanned-member slabs, unknown-field records) proportional to the frame. */
#define WIRE_SCAN_MAX_DEPTH 8
#define WIRE_SCAN_MAX_FIELDS 128 /* field occurrences per message, unknown fields included */

typedef struct wire_scan {
	/* in */
	size_t max_repeated; /* occurrences of one repeated field */
	/* out */
	int has_id;
	uint64_t id;
	int kind; /* Frame oneof case seen last, 0 if none */
} wire_scan;

/* Returns PARLEY_OK, PARLEY_E_PROTO_TRUNCATED or PARLEY_E_PROTO_MALFORMED (or
 * PARLEY_E_PROTO_FIELD_TOO_LARGE when a repeated field exceeds max_repeated). */
int wire__scan_frame(const uint8_t *buf, size_t len, wire_scan *sc);

/* 1 if s[0..n) is well-formed UTF-8 without NUL bytes. */
int wire__utf8_valid(const uint8_t *s, size_t n);

#endif
