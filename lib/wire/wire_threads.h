/* Size and presence checks of the thread messages (docs/protocol.md §13), called by wire.c's frame
 * check (kept apart so wire.c stays one topic), and the field checks the two files share. Same rules
 * as the rest of the codec: sizes and presence only; the service checks the records themselves. */
#ifndef PARLEY_WIRE_THREADS_H
#define PARLEY_WIRE_THREADS_H
#include <stddef.h>

#include "wire/wire.h"

/* A group message's ciphertext: a SenderKeyMessage of a PARLEY_MESSAGE_MAX (8 KiB) body with its
 * Content wrapping and padding, with room to spare; every member device's queue stores a copy. */
#define WIRE_THREAD_MAX_CIPHERTEXT (16u * 1024u)
/* Members of one thread and events in a ThreadGetResponse: the pre-scan's bound on a repeated field. */
#define WIRE_THREAD_MAX_MEMBERS WIRE_MAX_REPEATED
#define WIRE_THREAD_MAX_EVENTS WIRE_MAX_REPEATED
#define WIRE_THREAD_LIST_MAX 100 /* ThreadListRequest.limit */

/* shared with wire.c: a string of at most max bytes (required: non-empty); an optional bytes field of
 * at most max bytes; the OutgoingMessage entries of a send or a forward (1..WIRE_MAX_OUTGOING) */
int wire__check_str(const char *s, size_t max, int required);
int wire__check_max(const ProtobufCBinaryData *b, size_t max);
int wire__check_outgoing(Parley__Wire__OutgoingMessage *const *msgs, size_t n);

/* Channel threads (docs/protocol.md §13.6): channel 1..4 (PARLEY_CHANNEL_*) and its channel_user,
 * 1..WIRE_CHANNEL_USER_MAX printable ASCII bytes, an E.164 number ('+' and 6..15 digits) for sms and
 * waba. 1 valid, 0 not (the native channel 0 included). */
#define WIRE_CHANNEL_MAX 4
#define WIRE_CHANNEL_USER_MAX 64
int wire__channel_valid(uint32_t channel, const char *user);
/* The verification level of a channel before any authentication: 1 CHANNEL for sms and waba (the
 * carrier vouches for the number), 0 UNVERIFIED otherwise. */
unsigned wire__channel_baseline(uint32_t channel);

/* Request bodies 50-55; PARLEY_E_PROTO_UNKNOWN for any other body (wire.c's last case). */
int wire__check_thread_request(const Parley__Wire__Request *r, const wire_limits *l);
/* Response bodies 50-55; PARLEY_OK for any other (a body left to the caller, as wire.c does). */
int wire__check_thread_response(const Parley__Wire__Response *r, const wire_limits *l);
int wire__check_thread_changed(const Parley__Wire__ThreadChanged *c, const wire_limits *l);

#endif
