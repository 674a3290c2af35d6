/* The NATS client protocol for parley-bench, sans-I/O: encoders that append one operation to a
 * dynbuf, and a parser that takes one server operation off the front of a buffer (no socket, no
 * allocation; the control line and the payload each have a hard limit checked before use).
 *
 * Server operations: INFO, MSG, HMSG (headers are handed over raw), PING, PONG, +OK, -ERR. Client
 * operations: CONNECT, SUB, PUB, PING, PONG. JetStream needs nothing more: its API requests and
 * publish acknowledgements are ordinary messages with reply subjects, their bodies JSON (natsp__json_*
 * look at the few fields the benchmark reads).
 */
#ifndef PARLEY_BENCH_NATSP_H
#define PARLEY_BENCH_NATSP_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"

enum natsp_kind { NATSP_INFO = 1, NATSP_MSG, NATSP_HMSG, NATSP_PING, NATSP_PONG, NATSP_OK, NATSP_ERR };

#define NATSP_MAX_SUBJECT 255u /* our own bound: every subject the bench uses is far shorter */

typedef struct natsp_op {
	enum natsp_kind kind;
	size_t len;                     /* bytes of the whole operation, payload and CRLFs included */
	const char *subject, *reply;    /* MSG/HMSG; reply may be NULL; not NUL-terminated */
	size_t subject_len, reply_len;
	uint64_t sid;                   /* MSG/HMSG */
	const uint8_t *hdr, *payload;   /* HMSG: hdr[0..hdr_len) then payload; MSG: payload only */
	size_t hdr_len, payload_len;
	const char *arg;                /* INFO: the JSON; -ERR: the message; not NUL-terminated */
	size_t arg_len;
} natsp_op;

/* Parses the operation at the start of buf[0..len). PARLEY_OK: *op filled, op->len bytes used.
 * PARLEY_E_PROTO_TRUNCATED: incomplete (read more). PARLEY_E_PROTO_FIELD_TOO_LARGE: a control line
 * longer than max_line or a payload larger than max_payload. PARLEY_E_PROTO_MALFORMED: an unknown
 * operation, wrong argument count, a number that is not one, a header size above the total, a payload
 * not followed by CRLF. */
int natsp__parse(const uint8_t *buf, size_t len, size_t max_line, size_t max_payload, natsp_op *op);

/* Encoders: PARLEY_OK, PARLEY_E_INVAL (empty subject, or one with spaces, control characters or over
 * NATSP_MAX_SUBJECT bytes; a name with quotes or backslashes) or the dynbuf's error; on error the
 * buffer is unchanged. reply may be NULL. */
int natsp__connect(dynbuf *b, const char *name);
int natsp__sub(dynbuf *b, const char *subject, uint64_t sid);
int natsp__pub(dynbuf *b, const char *subject, const char *reply, const uint8_t *payload, size_t len);
int natsp__ping(dynbuf *b);
int natsp__pong(dynbuf *b);

/* JSON bodies of JetStream answers. natsp__json_error: 1 when the object has an "error" member (its
 * "description", if any, copied NUL-terminated and cut to why_len), else 0. natsp__json_u64: the value
 * of the first member named key ("seq") as an unsigned number: 0 and *v set, -1 if absent or not a
 * number. Both only scan: no nesting is interpreted beyond what the lookup needs. */
int natsp__json_error(const char *json, size_t len, char *why, size_t why_len);
int natsp__json_u64(const char *json, size_t len, const char *key, uint64_t *v);

/* The unsigned decimal number after the last '.' of subject (the bench puts a sequence number there):
 * 0 and *v set, or -1. */
int natsp__subject_u64(const char *subject, size_t len, uint64_t *v);

#endif
