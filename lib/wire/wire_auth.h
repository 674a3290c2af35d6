/* Size and presence checks of the customer-authentication messages (docs/protocol.md §14), called by
 * wire.c's frame checks. Bounds here are the frame's (generous caps against abuse); the exact rules (a
 * name of 1..64 bytes, URLs of 512, ...) are the auth service's (COMPONENT_INVALID) and the client's. */
#ifndef PARLEY_WIRE_AUTH_H
#define PARLEY_WIRE_AUTH_H
#include "wire/wire.h"

#define WIRE_AUTH_FIELD_CAP 2048 /* any string of a component or a request */
#define WIRE_AUTH_OTP_CAP 64
#define WIRE_AUTH_JWT_CAP 16384
#define WIRE_AUTH_EMAIL_MAX 254  /* an email address (RFC 5321's path limit) */

/* Requests 60-66; PARLEY_E_PROTO_UNKNOWN for any other kind (no body, or one this version does not know). */
int wire__check_auth_request(const Parley__Wire__Request *r, const wire_limits *l);
/* A known email's rule, shared by the client (before sending) and the service: 3..254 bytes of
 * printable ASCII without spaces, exactly one '@' with something on each side. out (cap >
 * WIRE_AUTH_EMAIL_MAX) gets it lower-cased: the one form stored and compared. PARLEY_E_EMAIL_INVALID
 * (out "") otherwise. */
int wire__auth_email_norm(const char *in, char *out, size_t cap);
/* Pushes AuthPrompt and AuthResult. */
int wire__check_auth_push(const Parley__Wire__Push *p, const wire_limits *l);

#endif
