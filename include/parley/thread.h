/* parley — business threads: a customer's conversation with an entity (docs/threads.md,
 * docs/protocol.md §13).
 *
 * A thread is a Signal sender-key group: every member device has its own sender key for the thread
 * (distribution id = the first 16 bytes of SHA-256("parley-thread" || thread_id u64be)), sent to the
 * other member devices over pairwise sessions; a message is encrypted once and the server fans the same
 * bytes out to every member device. Members are the customer and the staff accounts the signed
 * membership events name; this client encrypts (distributes its sender key) only to devices that the
 * verified staff list (<parley/entity.h>) and the members' signed device lists vouch for, and checks
 * every membership event's signature and authority itself (PARLEY_E_THREAD_EVENT_INVALID).
 *
 * Removal: after a REMOVE (or the removed member's leaving the staff list), every remaining member
 * device makes a NEW sender key before its next message and sends it to the current members only: the
 * removed devices cannot read what follows, even with every old distribution message replayed.
 *
 * Forward (parley_thread_forward): an admin (or the handling agent where the rules allow it) hands the
 * thread to an agent. One pairwise message per agent device carries the FORWARD BUNDLE: the signed
 * membership, the sender-key states this device holds for the thread's members (so the agent reads the
 * next messages at once, without anyone re-keying), the note, and then up to `history` recent messages
 * from this device's local history in follow-up chunks. The agent's client imports a bundle only from a
 * device of an admin (or of the handling agent, where allowed) in ITS verified staff list:
 * PARLEY_E_FORWARD_INVALID otherwise, and nothing is imported.
 *
 * What a customer sees: the entity's display name and handle (sender of every staff message: the
 * entity handle), never the staff's personal handles unless the entity allows it: a staff member whose
 * effective PARLEY_RULE_SHOW_NAME is set in the verified staff list is shown by its own handle.
 *
 * Calls follow the contract of <parley/client.h>: *_start queues and calls its callback exactly once
 * (or returns an error and never calls it); the blocking variants run the loop. Server statuses
 * (docs/protocol.md §13): PARLEY_E_NO_SUCH_THREAD, PARLEY_E_NOT_THREAD_MEMBER, PARLEY_E_THREAD_LOCKED,
 * PARLEY_E_THREAD_CLOSED, PARLEY_E_STALE_MEMBERSHIP (handled inside: the client refreshes and retries
 * once), PARLEY_E_THREAD_EVENT_INVALID, PARLEY_E_FORWARD_INVALID, PARLEY_E_NOT_ALLOWED_TO_INITIATE,
 * PARLEY_E_PAYMENT_NOT_ALLOWED, PARLEY_E_THREAD_WRONG_ENTITY, PARLEY_E_TOO_MANY_THREADS, and the
 * entity statuses of <parley/entity.h>.
 */
#ifndef PARLEY_THREAD_H
#define PARLEY_THREAD_H
#include <stddef.h>
#include <stdint.h>

#include <parley/client.h>
#include <parley/entity.h>
#include <parley/error.h>
#include <parley/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_THREAD_NOTE_MAX 1024        /* forward note, bytes of UTF-8 */
#define PARLEY_THREAD_HISTORY_DEFAULT 100  /* messages a forward carries by default */
#define PARLEY_THREAD_HISTORY_MAX 5000     /* at most */
#define PARLEY_THREAD_MEMBERS_MAX 100      /* the server's bound */
/* The local-history conversation of a thread (parley_history_list): "#" and the decimal thread id. */
#define PARLEY_THREAD_CONVERSATION_PREFIX "#"

typedef enum parley_thread_status {
	PARLEY_THREAD_OPEN = 1,
	PARLEY_THREAD_LOCKED = 2,
	PARLEY_THREAD_CLOSED = 3,
} parley_thread_status;

/* Where the customer writes from (docs/channels.md). A non-native thread is opened by a gateway of the
 * entity (PARLEY_ROLE_GATEWAY in the verified staff list) for one channel customer: end-to-end
 * encryption ends at that gateway, and staff clients say so. */
typedef enum parley_channel {
	PARLEY_CHANNEL_NATIVE = 0,
	PARLEY_CHANNEL_WEBCHAT = 1,
	PARLEY_CHANNEL_SMS = 2,  /* channel_user: an E.164 number */
	PARLEY_CHANNEL_WABA = 3, /* WhatsApp-style business API; channel_user: an E.164 number */
	PARLEY_CHANNEL_BYOC = 4, /* a bring-your-own-channel webhook */
} parley_channel;
#define PARLEY_CHANNEL_USER_MAX 64 /* printable ASCII */

/* How sure the staff can be of who the customer is (docs/auth.md): a credential's expiry drops
 * AUTHENTICATED back to the channel's baseline (CHANNEL for sms and waba, UNVERIFIED otherwise). */
typedef enum parley_verification {
	PARLEY_VERIFICATION_UNVERIFIED = 0,
	PARLEY_VERIFICATION_CHANNEL = 1,
	PARLEY_VERIFICATION_AUTHENTICATED = 2,
} parley_verification;

/* "native", "webchat", "sms", "waba", "byoc" ("unknown" otherwise). */
PARLEY_EXPORT const char *parley_channel_name(int channel);
/* "unverified", "channel-verified", "authenticated" ("unknown" otherwise). */
PARLEY_EXPORT const char *parley_verification_name(int level);

/* Flags of parley_thread_send. */
#define PARLEY_THREAD_SEND_PAYMENT 1u /* a payment request (staff with PARLEY_RULE_MAY_PAY only) */

/* A thread as this client verified it. Strings are NUL-terminated; "" when unknown or hidden. */
typedef struct parley_thread_info {
	uint64_t thread_id;
	char entity[PARLEY_HANDLE_MAX + 1];
	char entity_name[PARLEY_ENTITY_NAME_MAX + 1]; /* display name from the verified staff list's entity */
	char customer[PARLEY_HANDLE_MAX + 1];         /* the customer's handle (a customer: its own) */
	uint32_t channel;                             /* parley_channel */
	/* a channel thread: the customer on that channel, as the gateway signed it (shown only when the
	 * thread's customer account is a GATEWAY of the verified staff list; else "" and gateway_verified 0) */
	char channel_user[PARLEY_CHANNEL_USER_MAX + 1];
	char gateway[PARLEY_HANDLE_MAX + 1];          /* the gateway's handle (E2E ends there) */
	int gateway_verified;
	/* channel and channel_user are the ones the gateway signed in the thread's OPEN event, never the
	 * server's word; 1 here: the server's ThreadInfo named another channel or channel user (a server
	 * fault or lie, kept for good): what is shown is still the signed one, and the server's
	 * verification level is not believed (UNVERIFIED) */
	int channel_disputed;
	parley_verification verification;
	uint64_t verified_until_ms;                   /* AUTHENTICATED until then */
	char verified_by[PARLEY_CHANNEL_USER_MAX + 1]; /* the authorization request component's name (64 bytes, as auth.h's names) */
	parley_thread_status status;
	char handling_agent[PARLEY_HANDLE_MAX + 1];   /* "" none (customer view: unless its SHOW_NAME) */
	char lock_holder[PARLEY_HANDLE_MAX + 1];      /* as handling_agent */
	uint64_t membership_version;
	uint64_t created_ms, updated_ms;
	size_t member_count;                          /* accounts, the customer included */
	unsigned unread;                              /* received and not yet shown (parley_thread_mark_read) */
	int staff;                                    /* 1: this account is staff of the entity, 0: the customer */
} parley_thread_info;

/* A group message of a thread; pointers valid during the callback only. */
typedef struct parley_thread_message {
	uint64_t thread_id;
	const char *entity;
	/* the sending account's handle; for a customer, a staff message shows the entity's handle unless the
	 * sender's SHOW_NAME rule (verified staff list) lets it show its own */
	const char *sender;
	uint32_t sender_device;
	parley_entity_role sender_role; /* PARLEY_ROLE_NONE: the customer */
	uint64_t timestamp_ms;
	uint64_t server_timestamp_ms;
	const uint8_t *body; /* body_len bytes and a NUL */
	size_t body_len;
	int payment;         /* 1: a payment request (the sender's MAY_PAY was checked in the signed list) */
} parley_thread_message;

/* A membership / status change this client verified (the signed event). kind: 1 OPEN, 2 ADD,
 * 3 REMOVE, 4 HANDLING, 5 LOCK, 6 UNLOCK, 7 CLOSE, 8 HANDBACK. actor / subject: handles ("" for
 * none; for a customer, staff are shown as the entity's handle unless their SHOW_NAME allows). */
typedef struct parley_thread_change {
	uint64_t thread_id;
	const char *entity;
	int kind;
	const char *actor;
	const char *subject;
	uint64_t membership_version;
	int removed_self; /* 1: this account was removed from the thread */
} parley_thread_change;

/* A forward this client imported (to staff only): `from` forwarded thread_id with `note`; history: the
 * messages imported so far (more may follow in later chunks; history_complete = 1 when all did). */
typedef struct parley_thread_forwarded {
	uint64_t thread_id;
	const char *entity;
	const char *from;
	const char *note; /* NUL-terminated, may be "" */
	size_t history;
	int history_complete;
} parley_thread_forwarded;

/* Thread events, set with parley_thread_set_events (copied); any may be NULL. They run inside
 * parley_client_run like parley_events and only while the client receives (parley_client_set_events).
 * A group message is acknowledged to the server only after on_thread_message returned (and it is in the
 * local history first, as pairwise messages). */
typedef struct parley_thread_events {
	void (*on_thread_message)(parley_client *c, const parley_thread_message *m, void *user);
	void (*on_thread_changed)(parley_client *c, const parley_thread_change *ch, void *user);
	void (*on_thread_forwarded)(parley_client *c, const parley_thread_forwarded *f, void *user);
	void *user;
} parley_thread_events;
PARLEY_EXPORT void parley_thread_set_events(parley_client *client, const parley_thread_events *events);

/* ---- callbacks ---- */
typedef void (*parley_thread_id_cb)(parley_client *c, parley_err status, uint64_t thread_id, void *user);
typedef void (*parley_thread_info_cb)(parley_client *c, parley_err status, const parley_thread_info *info,
				      void *user);
typedef void (*parley_thread_list_cb)(parley_client *c, parley_err status, const parley_thread_info *threads,
				      size_t n, void *user);

/* ---- asynchronous calls ---- */

/* Customer: sends body to entity: continues this account's open thread with the entity, or opens one
 * (signed OPEN event), then sends. thread_id: the thread. The entity is fetched and verified first. */
PARLEY_EXPORT parley_err parley_thread_send_entity_start(parley_client *c, const char *entity, const uint8_t *body,
							 size_t len, parley_thread_id_cb cb, void *user);
/* A GATEWAY of entity: sends body to entity from the channel customer (channel, channel_user):
 * continues that customer's open thread or opens one (its OPEN event signs the channel customer),
 * then sends. PARLEY_E_NOT_ENTITY_GATEWAY, PARLEY_E_CHANNEL_INVALID (native, an unknown channel, a
 * malformed channel_user); PARLEY_E_PROTO_MALFORMED when the thread the server gives back was opened
 * for another channel customer (nothing sent). */
PARLEY_EXPORT parley_err parley_thread_send_channel_start(parley_client *c, const char *entity,
							  parley_channel channel, const char *channel_user,
							  const uint8_t *body, size_t len, parley_thread_id_cb cb,
							  void *user);
/* Staff with PARLEY_RULE_MAY_INITIATE: opens a new thread of entity toward customer. */
PARLEY_EXPORT parley_err parley_thread_open_start(parley_client *c, const char *entity, const char *customer,
						  parley_thread_id_cb cb, void *user);
/* A member: sends body (<= PARLEY_MESSAGE_MAX) to the thread. flags: PARLEY_THREAD_SEND_*. On a
 * first-responder entity a staff member's first answer takes the lock (signed LOCK event). */
PARLEY_EXPORT parley_err parley_thread_send_start(parley_client *c, uint64_t thread_id, const uint8_t *body,
						  size_t len, unsigned flags, parley_done_cb cb, void *user);
/* Admin: adds staff member `member` to the thread (signed ADD). */
PARLEY_EXPORT parley_err parley_thread_add_start(parley_client *c, uint64_t thread_id, const char *member,
						 parley_done_cb cb, void *user);
/* Admin (or a member leaving: member = own handle): removes member (signed REMOVE); the remaining
 * members rotate their sender keys. */
PARLEY_EXPORT parley_err parley_thread_remove_start(parley_client *c, uint64_t thread_id, const char *member,
						    parley_done_cb cb, void *user);
/* A staff member of the thread takes the lock (signed LOCK) / an admin or the holder releases it. */
PARLEY_EXPORT parley_err parley_thread_lock_start(parley_client *c, uint64_t thread_id, int lock,
						  parley_done_cb cb, void *user);
/* Admin, handling agent or customer: closes the thread for good (signed CLOSE). */
PARLEY_EXPORT parley_err parley_thread_close_start(parley_client *c, uint64_t thread_id, parley_done_cb cb,
						   void *user);
/* Handling agent: hands the thread back to `to` (a staff handle) or, with to NULL, the admins' queue. */
PARLEY_EXPORT parley_err parley_thread_handback_start(parley_client *c, uint64_t thread_id, const char *to,
						      parley_done_cb cb, void *user);
/* Forward to agent (see above). note may be NULL; history: messages to carry (0..PARLEY_THREAD_HISTORY_MAX). */
PARLEY_EXPORT parley_err parley_thread_forward_start(parley_client *c, uint64_t thread_id, const char *agent,
						     const char *note, unsigned history, parley_done_cb cb, void *user);
/* One thread, fetched from the server and its events verified. */
PARLEY_EXPORT parley_err parley_thread_get_start(parley_client *c, uint64_t thread_id, parley_thread_info_cb cb,
						 void *user);
/* entity NULL: this account's threads as a customer; else the entity's (staff only). Newest first. */
PARLEY_EXPORT parley_err parley_thread_list_start(parley_client *c, const char *entity, parley_thread_list_cb cb,
						  void *user);

/* ---- blocking variants (refused inside callbacks: PARLEY_E_STATE) ---- */
PARLEY_EXPORT parley_err parley_thread_send_entity(parley_client *c, const char *entity, const uint8_t *body,
						   size_t len, uint64_t *thread_id);
PARLEY_EXPORT parley_err parley_thread_send_channel(parley_client *c, const char *entity, parley_channel channel,
						    const char *channel_user, const uint8_t *body, size_t len,
						    uint64_t *thread_id);
PARLEY_EXPORT parley_err parley_thread_open(parley_client *c, const char *entity, const char *customer,
					    uint64_t *thread_id);
PARLEY_EXPORT parley_err parley_thread_send(parley_client *c, uint64_t thread_id, const uint8_t *body, size_t len,
					    unsigned flags);
PARLEY_EXPORT parley_err parley_thread_add(parley_client *c, uint64_t thread_id, const char *member);
PARLEY_EXPORT parley_err parley_thread_remove(parley_client *c, uint64_t thread_id, const char *member);
PARLEY_EXPORT parley_err parley_thread_lock(parley_client *c, uint64_t thread_id, int lock);
PARLEY_EXPORT parley_err parley_thread_close(parley_client *c, uint64_t thread_id);
PARLEY_EXPORT parley_err parley_thread_handback(parley_client *c, uint64_t thread_id, const char *to);
PARLEY_EXPORT parley_err parley_thread_forward(parley_client *c, uint64_t thread_id, const char *agent,
					       const char *note, unsigned history);
PARLEY_EXPORT parley_err parley_thread_get(parley_client *c, uint64_t thread_id, parley_thread_info *out);
/* Up to max threads in out; *n = how many were filled. */
PARLEY_EXPORT parley_err parley_thread_list(parley_client *c, const char *entity, parley_thread_info *out,
					    size_t max, size_t *n);

/* Local: the thread's history (the conversation "#<thread_id>" of parley_history_list) and its unread count. */
PARLEY_EXPORT parley_err parley_thread_history(parley_client *c, uint64_t thread_id, uint64_t before_ms, size_t max,
					       parley_history_entry *out, size_t *n);
PARLEY_EXPORT parley_err parley_thread_mark_read(parley_client *c, uint64_t thread_id);

#ifdef __cplusplus
}
#endif
#endif
