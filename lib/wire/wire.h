/* Frame codec shared by libparley and parleyd (wire protocol v1, proto/parley.proto, docs/protocol.md).
 *
 * Decoding is done in three steps so that hostile input is refused cheaply and precisely:
 *   1. the total size is checked against limits->max_frame                  -> PARLEY_E_TOO_LARGE
 *   2. a pure pre-scan walks the protobuf encoding with the schema's descriptors (varints, wire types,
 *      nested lengths, UTF-8 of strings) without allocating:
 *        the input ends inside a varint or a length-delimited field          -> PARLEY_E_PROTO_TRUNCATED
 *        anything else inconsistent                                          -> PARLEY_E_PROTO_MALFORMED
 *   3. protobuf-c unpacks with a bounded allocator (budget proportional to the frame size), then every
 *      field is checked against its limit and presence rules -> PARLEY_E_PROTO_FIELD_TOO_LARGE /
 *      PARLEY_E_PROTO_MISSING_FIELD; a Request/Push without a known body   -> PARLEY_E_PROTO_UNKNOWN.
 *
 * The codec never touches a socket and never prints. All memory goes through parley__malloc.
 */
#ifndef PARLEY_WIRE_H
#define PARLEY_WIRE_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "proto/parley.pb-c.h"

/* Fixed sizes of the cryptographic fields (Ed25519). */
#define WIRE_KEY_LEN 32
#define WIRE_SIG_LEN 64
#define WIRE_NONCE_LEN 32

/* Default limits (see docs/protocol.md, "Limits"). The frame limit is the one number both sides use
 * (docs/protocol.md §1): libparley sends and accepts frames up to it, and parleyd's max_message_bytes
 * defaults to it (tests/unit/base/test_config.c checks the two agree). A send carries one ciphertext per
 * recipient device in one frame: PARLEY_MESSAGE_MAX (8 KiB) to max_devices (16) devices is ~136 KB. */
#define WIRE_DEFAULT_MAX_FRAME (256u * 1024u)
#define WIRE_MAX_HANDLE 32
#define WIRE_MIN_HANDLE 3
/* The handle rule (docs/protocol.md §5.1), stated once for the server's check and the client's errors. */
#define WIRE_HANDLE_RULE "3 to 32 characters from a-z, 0-9, '.', '_' and '-', starting with a letter a-z"
#define WIRE_MAX_DEVICE_NAME 64
#define WIRE_MAX_PING_PAYLOAD 1024
#define WIRE_MAX_MESSAGE 256      /* Response.message */
#define WIRE_MAX_DEVICES 64       /* entries in ListDevicesResponse */

/* Key server and relay (docs/protocol.md §9, §10). */
#define WIRE_SIGNAL_KEY_LEN 33    /* 0x05 || X25519 */
#define WIRE_XEDDSA_SIG_LEN 64
#define WIRE_MAX_REPEATED 100     /* occurrences of one repeated field (pre-scan) */
#define WIRE_MAX_PREKEYS 100      /* one-time prekeys per UploadKeysRequest */
#define WIRE_MAX_REGISTRATION_ID 16380
#define WIRE_MAX_OUTGOING 64      /* OutgoingMessage entries per SendMessageRequest (and bundles) */
#define WIRE_MAX_ACK_IDS 100      /* server ids per AckRequest, and timestamps per Receipt */
/* Signed records (docs/protocol.md §6.1 device list, §12.1 staff list): the largest possible device
 * list (64 devices) and the staff-list bound; both fit one frame. */
#define WIRE_DEVLIST_MAX_BYTES (21 + 8 + 1 + 32 + 33 + 8 + 8 + 1 + 64 * (4 + 33 + 32) + 64)
#define WIRE_STAFFLIST_MAX_BYTES (200u * 1024u)
/* A join approval by an admin without the entity key (lib/wire/approval.c, docs/protocol.md §12.5):
 * magic 23, handle 1+32, request 8, candidate 8 + key 33, role 1, list hash 32, approver 8 + device 4,
 * timestamp 8, signature 64. */
#define WIRE_APPROVAL_MAX_BYTES (23 + 1 + 32 + 8 + 8 + 33 + 1 + 32 + 8 + 4 + 8 + 64)
#define WIRE_MAX_DISPLAY_NAME 64  /* entity display name, bytes */
#define WIRE_MAX_ENROL_CODE 32    /* enrolment code as typed (dashes and spaces allowed) */

typedef struct wire_limits {
	size_t max_frame;        /* whole encoded Frame */
	size_t max_handle;       /* bytes */
	size_t max_device_name;  /* bytes */
	size_t max_ping_payload; /* bytes */
	size_t max_message;      /* Response.message bytes */
	size_t max_devices;      /* repeated Device entries */
	size_t max_repeated;     /* occurrences of one repeated field (pre-scan); WIRE_MAX_REPEATED */
} wire_limits;

/* Fills the defaults above. */
void wire__limits_default(wire_limits *l);

typedef struct wire_frame {
	/* The unpacked frame; non-NULL only when wire__decode_frame returned PARLEY_OK. Its oneof case
	 * (frame->kind_case) and the body's case are valid and all limits hold. */
	Parley__Wire__Frame *frame;
	/* Set even when decoding failed, whenever the id of a Request (or Response) could be read, so the
	 * server can answer the right id with the error. has_id == 0: no id known -> close the connection. */
	int has_id;
	uint64_t id;
	/* PARLEY__WIRE__FRAME__KIND_REQUEST / _RESPONSE / _PUSH if the pre-scan saw it, else 0. */
	int kind;
	/* Private: the bounded allocator's state. */
	struct wire__arena *arena_;
} wire_frame;

/* Decode one complete frame. `limits` may be NULL for the defaults. On success *out owns the message
 * (free it with wire__frame_free). On error out->frame is NULL, out->has_id/id/kind may be set, and
 * wire__frame_free(out) is still safe (and a no-op). Returns PARLEY_OK, PARLEY_E_TOO_LARGE,
 * PARLEY_E_PROTO_TRUNCATED, PARLEY_E_PROTO_MALFORMED, PARLEY_E_PROTO_FIELD_TOO_LARGE,
 * PARLEY_E_PROTO_MISSING_FIELD, PARLEY_E_PROTO_UNKNOWN, PARLEY_E_NOMEM, PARLEY_E_INVAL. */
int wire__decode_frame(const uint8_t *buf, size_t len, const wire_limits *limits, wire_frame *out);
void wire__frame_free(wire_frame *f);

/* The request kind of a decoded Request as a short stable name ("ping", "register", ...), used for
 * metrics labels and logs; "unknown" for anything else. */
const char *wire__request_kind_name(int body_case);

/* --- encoding: every helper appends one complete Frame to `out` (a dynbuf with its own max) and
 * returns PARLEY_OK, PARLEY_E_NOMEM or PARLEY_E_TOO_LARGE (out unchanged on error). --- */

/* Any frame built by the caller (e.g. a client's Request). */
int wire__encode_frame(const Parley__Wire__Frame *f, dynbuf *out);
/* Wrap a Request / Response / Push (ids and bodies already set by the caller). */
int wire__encode_request(Parley__Wire__Request *req, dynbuf *out);
int wire__encode_response(Parley__Wire__Response *resp, dynbuf *out);
int wire__encode_push(Parley__Wire__Push *push, dynbuf *out);
/* Response{id, status=err, message=parley_strerror(err)} with no body. */
int wire__encode_error(uint64_t id, int err, dynbuf *out);
/* Push{Challenge{nonce, server_time_ms}}. */
int wire__encode_challenge(const uint8_t nonce[WIRE_NONCE_LEN], uint64_t server_time_ms, dynbuf *out);
/* The same with register_pow_bits (0 = no proof of work asked). */
int wire__encode_challenge_pow(const uint8_t nonce[WIRE_NONCE_LEN], uint64_t server_time_ms, unsigned pow_bits,
			       dynbuf *out);

/* --- the exact bytes a device signs (docs/protocol.md, "Signed bytes"); shared by client and server
 * so both sides build them identically. Each appends to `out`. --- */

/* "parley-register-v1\0" || nonce(32) || u8 len(handle) || handle || key(32)
 *   || u8 len(device_name) || device_name */
int wire__register_signed_bytes(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle,
				 const uint8_t key[WIRE_KEY_LEN], const char *device_name, dynbuf *out);
/* "parley-auth-v1\0" || nonce(32) || u8 len(handle) || handle || u32be device_id */
/* Checks a Receipt (the cleartext content of an ENVELOPE_RECEIPT): known kind, 1..WIRE_MAX_ACK_IDS
 * timestamps. Returns PARLEY_OK or a PROTO_* code. Unpacks with the same bounded allocator rules. */
/* The handle rule, for both sides. Returns 0 when h follows it, else what breaks it:
 * WIRE_HANDLE_BAD_LENGTH, WIRE_HANDLE_BAD_CHAR (the first offending byte at *pos) or
 * WIRE_HANDLE_BAD_FIRST (it does not start with a letter). pos may be NULL. */
enum { WIRE_HANDLE_BAD_LENGTH = 1, WIRE_HANDLE_BAD_CHAR, WIRE_HANDLE_BAD_FIRST };
int wire__handle_check(const char *h, size_t *pos);
static inline int wire__handle_valid(const char *h)
{
	return h != NULL && wire__handle_check(h, NULL) == 0;
}

int wire__check_receipt(const uint8_t *buf, size_t len);

int wire__auth_signed_bytes(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle, uint32_t device_id,
			    dynbuf *out);
/* Registration proof of work (lib/wire/pow.c, docs/protocol.md §5.3): pow (1..WIRE_POW_MAX_LEN bytes)
 * such that BLAKE2b-256("parley-register-pow-v1\0" || nonce || u8 len(handle) || handle || key || pow)
 * starts with `bits` zero bits. check: 1 when it does (always for bits 0), else 0. solve: fills an
 * WIRE_POW_LEN-byte pow (about 2^bits hashes); PARLEY_E_UNSUPPORTED beyond WIRE_POW_MAX_BITS. */
#define WIRE_POW_LEN 8
#define WIRE_POW_MAX_LEN 16
#define WIRE_POW_MAX_BITS 28
int wire__register_pow_check(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle,
			     const uint8_t key[WIRE_KEY_LEN], const uint8_t *pow, size_t pow_len, unsigned bits);
int wire__register_pow_solve(const uint8_t nonce[WIRE_NONCE_LEN], const char *handle,
			     const uint8_t key[WIRE_KEY_LEN], unsigned bits, uint8_t pow[WIRE_POW_LEN]);

/* The new device's proof of possession for AddDevice (signed with the new device key; no nonce, the new
 * device is not connected: the handle binds it to one account, the timestamp bounds its life):
 * "parley-add-device-v1\0" || u8 len(handle) || handle || key(32) || u64be timestamp_ms */
int wire__add_device_signed_bytes(const char *handle, const uint8_t key[WIRE_KEY_LEN], uint64_t timestamp_ms,
				   dynbuf *out);

#endif
