/* parley — one error enum for the whole project.
 *
 * 0 is success; every other value is a specific, stable failure. Codes are grouped by range and are
 * NEVER renumbered or reused: append new codes at the end of their range. The wire protocol carries
 * these numbers in responses, so a client and server of different versions agree on their meaning.
 */
#ifndef PARLEY_ERROR_H
#define PARLEY_ERROR_H

#include <parley/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define PARLEY_ERRNO_MAP(X)                                                                      \
	/* 0-99: general */                                                                          \
	X(OK, 0, "success")                                                                          \
	X(NOMEM, 1, "out of memory")                                                                 \
	X(INVAL, 2, "invalid argument")                                                              \
	X(IO, 3, "input/output error")                                                               \
	X(INTERNAL, 4, "internal error")                                                             \
	X(NOT_FOUND, 5, "not found")                                                                 \
	X(EXISTS, 6, "already exists")                                                               \
	X(TOO_LARGE, 7, "too large")                                                                 \
	X(TIMEOUT, 8, "timed out")                                                                   \
	X(BUSY, 9, "busy, try again later")                                                          \
	X(CLOSED, 10, "connection closed")                                                           \
	X(UNSUPPORTED, 11, "not supported")                                                          \
	X(PERM, 12, "permission denied")                                                             \
	X(CONFIG, 13, "invalid configuration")                                                       \
	X(STORE, 14, "storage error")                                                                \
	X(RATE_LIMITED, 15, "rate limited")                                                          \
	X(SHUTTING_DOWN, 16, "server is shutting down")                                              \
	X(STATE, 17, "operation not valid in this state")                                           \
	X(CRYPTO, 18, "cryptographic library failure")                                               \
	X(SERVER_BUSY, 19, "server busy: too much work queued, retry later")                         \
	X(STORAGE_FULL, 20, "server storage is full")                                                \
	/* 100-199: wire, HTTP, WebSocket, TLS, transport */                                         \
	X(PROTO_MALFORMED, 100, "malformed protocol frame")                                          \
	X(PROTO_TRUNCATED, 101, "truncated protocol frame")                                          \
	X(PROTO_UNKNOWN, 102, "unknown request type")                                                \
	X(PROTO_FIELD_TOO_LARGE, 103, "protocol field too large")                                    \
	X(PROTO_MISSING_FIELD, 104, "required protocol field missing")                               \
	X(HTTP_BAD_REQUEST, 110, "malformed HTTP request")                                           \
	X(HTTP_HEADER_TOO_LARGE, 111, "HTTP header section too large")                               \
	X(HTTP_BODY_TOO_LARGE, 112, "HTTP body too large")                                           \
	X(HTTP_BAD_UPGRADE, 113, "bad WebSocket upgrade request")                                    \
	X(HTTP_BAD_RESPONSE, 114, "malformed HTTP response")                                         \
	X(WS_PROTOCOL, 120, "WebSocket protocol violation")                                          \
	X(WS_UNMASKED, 121, "unmasked WebSocket frame from client")                                  \
	X(WS_BAD_UTF8, 122, "invalid UTF-8 in WebSocket text frame")                                 \
	X(WS_TOO_LARGE, 123, "WebSocket message too large")                                          \
	X(WS_BAD_CLOSE, 124, "invalid WebSocket close frame")                                        \
	X(TLS, 130, "TLS error")                                                                     \
	X(CONNECT, 131, "could not connect")                                                         \
	X(SLOW_CONSUMER, 132, "peer is not reading fast enough")                                     \
	X(HTTP_UPGRADE_REFUSED, 133, "server refused the WebSocket upgrade")                         \
	X(AUTH_TIMEOUT, 134, "not authenticated in time")                                            \
	X(MESSAGE_TIMEOUT, 135, "message not completed in time")                                     \
	X(TOO_MANY_CONNECTIONS, 136, "too many connections from this address")                       \
	X(SERVER_FULL, 137, "server at its connection limit")                                        \
	X(ORIGIN_REFUSED, 138, "origin not allowed")                                                 \
	/* 200-299: accounts, devices, authentication */                                             \
	X(UNAUTHENTICATED, 200, "not authenticated")                                                 \
	X(BAD_SIGNATURE, 201, "bad signature")                                                       \
	X(HANDLE_TAKEN, 202, "handle already registered")                                            \
	X(BAD_HANDLE, 203, "invalid handle")                                                         \
	X(NO_SUCH_ACCOUNT, 204, "no such account")                                                   \
	X(NO_SUCH_DEVICE, 205, "no such device")                                                     \
	X(LAST_DEVICE, 206, "cannot remove the account's last device")                               \
	X(TOO_MANY_DEVICES, 207, "too many devices on this account")                                 \
	X(ALREADY_AUTHENTICATED, 208, "connection is already authenticated")                         \
	X(DEVICE_KEY_IN_USE, 209, "device key already registered")                                   \
	X(NO_IDENTITY, 210, "no local identity: register first")                                     \
	X(DEVICE_REMOVED, 211, "this device was removed from its account")                           \
	X(LINK_CODE_EXPIRED, 212, "device link code expired or from the future: make a new one")     \
	X(REGISTRATION_LIMITED, 213, "too many registrations from this address: try again later")    \
	X(POW_REQUIRED, 214, "registration needs a (stronger) proof of work")                        \
	X(NO_ACCOUNT_KEY, 215, "this device does not hold the account key") \
	X(ACCOUNT_KEY_SET, 216, "the account already has an account key") \
	X(KEY_TRANSFER_INVALID, 217, "key transfer refused: not from a listed device or the keys do not match") \
	X(KEY_TRANSFER_PENDING, 218, "a key transfer from this device is waiting for its receiver's confirmation") \
	X(STORAGE_KEY, 219, "wrong storage key or passphrase: the local history cannot be opened") \
	/* 300-399: end-to-end crypto (Signal protocol) */                                           \
	X(INVALID_MESSAGE, 300, "invalid message")                                                   \
	X(BAD_MAC, 301, "message authentication failed")                                             \
	X(DUPLICATE_MESSAGE, 302, "duplicate message")                                               \
	X(UNTRUSTED_IDENTITY, 303, "untrusted identity key")                                         \
	X(NO_SESSION, 304, "no session")                                                             \
	X(INVALID_KEY_ID, 305, "invalid key id")                                                     \
	X(INVALID_KEY, 306, "invalid key")                                                           \
	X(BAD_VERSION, 307, "unrecognised message version")                                          \
	X(TOO_FAR_AHEAD, 308, "message from too far into the future")                                \
	X(NO_SENDER_KEY, 309, "no sender key state")                                                 \
	X(BAD_KEY_SIGNATURE, 310, "key signature verification failed")                              \
	X(AMBIGUOUS_IDENTITY, 311, "several pending identity keys: choose the one to accept")      \
	X(DEVICE_LIST_INVALID, 312, "signed device list malformed or badly signed") \
	X(DEVICE_LIST_ROLLBACK, 313, "device list older than one already seen") \
	X(DEVICE_NOT_LISTED, 314, "device not in its account's signed device list") \
	X(NO_DEVICE_LIST, 315, "the account has no signed device list") \
	X(STAFF_LIST_INVALID, 316, "signed staff list malformed, badly signed or not what the call does") \
	X(STAFF_LIST_ROLLBACK, 317, "staff list older than one already seen") \
	/* 400-499: key server and relay */                                                          \
	X(MISMATCHED_DEVICES, 400, "device list does not match the recipient's devices")             \
	X(STALE_DEVICES, 401, "stale registration ids in device list")                               \
	X(QUEUE_FULL, 402, "recipient device queue is full")                                         \
	X(PREKEY_POOL_FULL, 403, "one-time prekey pool is full")                                     \
	X(IDENTITY_KEY_SET, 404, "a different identity key is already set for this device")          \
	X(NO_KEYS, 405, "no keys uploaded")                                                          \
	X(NO_THREAD, 406, "no conversation with this account")                                      \
	X(RECEIPT_IN_CLEAR, 407, "cleartext receipts are refused: receipts travel end-to-end encrypted") \
	X(NOT_ACCEPTED, 408, "the recipient has not accepted a conversation with you") \
	X(SENDER_QUEUE_FULL, 409, "this sender's share of the recipient device queue is full")       \
	X(SEND_RATE_LIMITED, 410, "sending too fast: slow down") \
	/* entities (docs/entities.md) */ \
	X(NO_SUCH_ENTITY, 500, "no such entity") \
	X(NOT_ENTITY_ADMIN, 501, "not an admin of this entity") \
	X(NOT_PRIMARY_ADMIN, 502, "only the primary admin may do this") \
	X(NOT_ENTITY_MEMBER, 503, "not a member of this entity") \
	X(ENROL_CODE_UNKNOWN, 504, "unknown enrolment code") \
	X(ENROL_CODE_EXPIRED, 505, "enrolment code expired: ask for a new one") \
	X(ENROL_CODE_USED, 506, "enrolment code already used") \
	X(ENROL_CODE_DENIED, 507, "the join request of this enrolment code was denied") \
	X(ENROL_RATE_LIMITED, 508, "too many enrolment code attempts: try again later") \
	X(PRIMARY_ADMIN_FIXED, 509, "the primary admin cannot be removed, only transferred") \
	X(ALREADY_MEMBER, 510, "already a member of this entity") \
	X(NO_SUCH_REQUEST, 511, "no such pending join request") \
	X(ENTITY_KEY_REQUIRED, 512, "this device does not hold the entity key") \
	X(TOO_MANY_MEMBERS, 513, "the entity has its maximum number of members") \
	X(REQUEST_PENDING, 514, "a join request of this account is already pending") \
	X(TOO_MANY_PENDING, 515, "the entity has its maximum number of pending join requests") \
	X(TOO_MANY_CODES, 516, "the entity has its maximum number of open enrolment codes") \
	X(APPROVAL_INVALID, 517, "join approval malformed or not signed by an admin's listed device") \
	X(NEW_PRIMARY_NOT_ADMIN, 518, "the new primary admin must already be an admin of the entity") \
	X(ALREADY_APPROVED, 519, "this join request is already approved and waits for the entity key") \
	/* threads and the group server (docs/threads.md) */ \
	X(NO_SUCH_THREAD, 600, "no such thread") \
	X(NOT_THREAD_MEMBER, 601, "not a member of this thread") \
	X(THREAD_LOCKED, 602, "the thread is locked by another member") \
	X(THREAD_CLOSED, 603, "the thread is closed") \
	X(STALE_MEMBERSHIP, 604, "the thread's membership changed: refresh and send again") \
	X(THREAD_EVENT_INVALID, 605, "thread event malformed, badly signed or not allowed to its signer") \
	X(FORWARD_INVALID, 606, "forwarded thread refused: not from a staff device allowed to forward") \
	X(NOT_ALLOWED_TO_INITIATE, 607, "this member may not open threads with customers") \
	X(PAYMENT_NOT_ALLOWED, 608, "this member may not send payment requests") \
	X(THREAD_WRONG_ENTITY, 609, "the thread belongs to another entity") \
	X(TOO_MANY_THREADS, 610, "too many open threads") \
	/* channels and gateways (docs/channels.md) */ \
	X(NOT_ENTITY_GATEWAY, 650, "not a gateway of this entity: only its gateways open channel threads") \
	X(CHANNEL_INVALID, 651, "unknown channel or malformed channel identity") \
	X(CHANNEL_SIGNATURE, 652, "the provider's webhook signature is missing or wrong") \
	X(CHANNEL_PROVIDER, 653, "the channel provider refused or failed: delivery is retried") \
	/* customer authentication (docs/auth.md) */ \
	X(NO_SUCH_COMPONENT, 700, "no such authorization request component") \
	X(COMPONENT_INVALID, 701, "authorization request component malformed") \
	X(COMPONENT_NOT_ACTIVE, 702, "the authorization request component is not active") \
	X(NO_SUCH_AUTH_REQUEST, 703, "no such authentication request") \
	X(AUTH_STATE_MISMATCH, 704, "the sign-in answer's state matches no open request") \
	X(AUTH_EXPIRED, 705, "the authentication request expired") \
	X(AUTH_ALREADY_ANSWERED, 706, "the authentication request was already answered (replayed code)") \
	X(AUTH_TOKEN_EXCHANGE, 707, "the identity provider refused the code exchange") \
	X(ID_TOKEN_INVALID, 708, "the ID token is malformed") \
	X(ID_TOKEN_SIGNATURE, 709, "the ID token's signature does not verify under the provider's keys") \
	X(ID_TOKEN_CLAIMS, 710, "the ID token's issuer, audience, authorized party or times are wrong") \
	X(ID_TOKEN_NONCE, 711, "the ID token's nonce is not the request's") \
	X(IDENTITY_MISMATCH, 712, "the signed-in identity is not the thread's customer") \
	X(OTP_WRONG, 713, "wrong one-time code") \
	X(OTP_ATTEMPTS, 714, "too many wrong one-time codes: the request is closed") \
	X(JWT_REPLAYED, 715, "this signed assertion was already used (jti)") \
	X(JWKS_UNAVAILABLE, 716, "the provider's keys (JWKS) could not be fetched or parsed") \
	X(TOO_MANY_AUTH_REQUESTS, 717, "too many open authentication requests for this thread") \
	X(AUTH_HOST_FORBIDDEN, 718, "the identity provider's address is not allowed (private, loopback or link-local)") \
	X(TOO_MANY_KNOWN_EMAILS, 719, "the customer already has as many known emails as allowed") \
	X(EMAIL_INVALID, 720, "not an email address (3 to 254 printable bytes, one '@', no spaces)")

typedef enum parley_err {
#define PARLEY__ERR_ENUM(name, value, msg) PARLEY_E_##name = value,
	PARLEY_ERRNO_MAP(PARLEY__ERR_ENUM)
#undef PARLEY__ERR_ENUM
} parley_err;

#define PARLEY_OK PARLEY_E_OK

/* A static, never-NULL English message for any value (unknown values get "unknown error"). */
PARLEY_EXPORT const char *parley_strerror(int err);

/* The enum name without prefix, e.g. "BAD_MAC"; "UNKNOWN" for unknown values. Stable for logs. */
PARLEY_EXPORT const char *parley_errname(int err);

#ifdef __cplusplus
}
#endif
#endif
