/* Size and presence checks of the customer-authentication messages (docs/protocol.md §14), called by
 * wire.c's frame checks. Bounds here are the frame's (generous caps against abuse); the exact rules (a
 * name of 1..64 bytes, URLs of 512, ...) are the auth service's (COMPONENT_INVALID) and the client's. */
#ifndef PARLEY_WIRE_AUTH_H
#define PARLEY_WIRE_AUTH_H
#include "wire/wire.h"

#define WIRE_AUTH_FIELD_CAP 2048 /* any string of a component or a request */
#define WIRE_AUTH_OTP_CAP 64
#define WIRE_AUTH_JWT_CAP 16384

/* Requests 60-65; PARLEY_E_PROTO_UNKNOWN for any other kind (no body, or one this version does not know). */
int wire__check_auth_request(const Parley__Wire__Request *r, const wire_limits *l);
/* Pushes AuthPrompt and AuthResult. */
int wire__check_auth_push(const Parley__Wire__Push *p, const wire_limits *l);

#endif
