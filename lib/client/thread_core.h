/* Private to the thread core (thread.c, thread_state.c, thread_send.c, thread_recv.c, thread_api.c):
 * the local thread state beyond thread_internal.h's contract, and the staged thread op.
 *
 *   thread.c        distribution id, conversation name, the thread op's engine (stages, requests)
 *   thread_state.c  client.db schema "client.threads": threads, members, events (verified replay)
 *   thread_local.c  own sender-key epochs, who got which epoch, bounded key requests, unread
 *   thread_send.c   sender-key distribution (Content kind 5), rotation, the group send
 *   thread_recv.c   group envelopes, kinds 5/6 over pairwise sessions, ThreadChanged pushes
 *   thread_api.c    the public entry points and their blocking variants
 *   thread_channel.c channel threads (a gateway's): the channel kept per thread, what the info shows
 */
#ifndef PARLEY_CLIENT_THREAD_CORE_H
#define PARLEY_CLIENT_THREAD_CORE_H
#include <parley/signal_group.h>

#include "client/entity_internal.h"
#include "client/thread_internal.h"
#include "wire/threadev.h"

#define THREAD_MEMBERS_MAX (PARLEY_THREAD_MEMBERS_MAX + 1)
#define THREAD_KEY_REQUEST_MS (10u * 60u * 1000u) /* one kind-6 request per sender device and thread */

/* ---- thread_state.c, thread_local.c ---- */
int client__thread_ready(parley_client *c);
/* Prepares sql on client.db (schema migrated) with thread_id bound as parameter 1. */
int client__thread_prep(parley_client *c, const char *sql, uint64_t thread_id, sqlite3_stmt **st);

typedef struct thread_member {
	uint64_t account;
	char handle[PARLEY_HANDLE_MAX + 1];
	int role; /* PARLEY_ROLE_NONE: the customer, else the staff role */
} thread_member;
int client__thread_members(parley_client *c, uint64_t thread_id, thread_member *out, size_t max, size_t *n);
/* The member named handle: *found = 0 when handle is no member. */
int client__thread_member(parley_client *c, uint64_t thread_id, const char *handle, thread_member *out, int *found);

/* The name this device shows for staff member s (account `account`, NULL when the verified list does
 * not name it) of thread t: staff see each other's own handles; a customer sees the entity's handle,
 * or the member's own when its effective SHOW_NAME in the verified staff list allows it. */
const char *client__thread_staff_name(const client_thread *t, const parley_entity *ent, const wire_staff_member *s);

/* Called for each newly applied event after the apply committed. */
typedef void (*thread_applied_fn)(parley_client *c, const wire_threadev *ev, void *user);
/* client__thread_apply_events with the customer's handle when this device may not know it yet (the
 * caller fetched its signed device list), and a callback per applied event. */
int client__thread_apply(parley_client *c, const char *entity, uint64_t thread_id, const char *customer,
			 const uint8_t *const *events, const size_t *lens, size_t n, thread_applied_fn fn, void *user);
/* Drops staff members of the thread that the kept staff list no longer names (their leaving the staff
 * list is no thread event); *dropped = how many (then a rotation is due, set here). */
int client__thread_prune(parley_client *c, uint64_t thread_id, const parley_entity *ent, size_t *dropped);

/* Own sender key: the epoch in use and whether a rotation is due before the next message. */
int client__thread_epoch(parley_client *c, uint64_t thread_id, uint64_t *epoch, int *rotate);
int client__thread_set_rotate(parley_client *c, uint64_t thread_id);
/* A rotation happened: the epoch moves on, nobody has its key yet. */
int client__thread_rotated(parley_client *c, uint64_t thread_id);
/* Whether handle's devices got this epoch's key (every device the kept verified list names for it). */
int client__thread_key_sent(parley_client *c, uint64_t thread_id, uint64_t epoch, const char *handle,
			    const uint32_t *devices, size_t n, int *sent);
/* handle's devices got skdm (our key of epoch at the position it was given). */
int client__thread_key_record(parley_client *c, uint64_t thread_id, uint64_t epoch, const char *handle,
			      const uint32_t *devices, size_t n, const uint8_t *skdm, size_t len);
/* The SKDM of epoch that handle's devices were given (device's own row first; *found = 0: none was):
 * what a kind-6 request of theirs gets again, never an earlier position. */
int client__thread_key_given(parley_client *c, uint64_t thread_id, uint64_t epoch, const char *handle,
			     uint32_t device, uint8_t *skdm, size_t cap, size_t *len, int *found);
/* A kind-6 request to (handle, device) for thread_id may go now (persisted bound): *allowed. */
int client__thread_request_allowed(parley_client *c, uint64_t thread_id, const char *handle, uint32_t device,
				   int *allowed);
int client__thread_unread_add(parley_client *c, uint64_t thread_id, unsigned n);
int client__thread_unread(parley_client *c, uint64_t thread_id, unsigned *n);
int client__thread_times(parley_client *c, uint64_t thread_id, uint64_t created_ms, uint64_t updated_ms);
/* Known thread ids (as customer or staff), newest first, at most max. */
int client__thread_ids(parley_client *c, const char *entity, uint64_t *ids, size_t max, size_t *n);
/* The entities this device keeps threads of as staff (up to max), and whether it keeps any as the
 * customer. */
int client__thread_entities(parley_client *c, char (*out)[PARLEY_HANDLE_MAX + 1], size_t max, size_t *n,
			    int *customer);
/* A listed thread (ThreadList) that this device keeps at an older membership version: fetched, verified
 * and applied in the background (each new event reported to on_thread_changed). */
void client__thread_sync(parley_client *c, const Parley__Wire__ThreadInfo *ti);

/* ---- thread.c ---- */
/* The device key of (handle's) account's device as vouched for by ent's staff list (staff) or the kept
 * verified device list (anyone else). */
int client__thread_device_key(parley_client *c, const parley_entity *ent, uint64_t account, const char *handle,
			      uint32_t device, uint8_t key[32]);
/* The verified device ids of a member: from the staff list's device list (staff), else the kept list. */
int client__thread_member_devices(parley_client *c, const parley_entity *ent, const thread_member *m,
				  uint32_t *ids, size_t max, size_t *n);
/* Fills a public info from the kept thread (names from the kept staff list). */
int client__thread_info(parley_client *c, uint64_t thread_id, parley_thread_info *out);

/* ---- thread_channel.c ---- */
/* A thread's channel and verification as the server's ThreadInfo says them (the channel customer only
 * to compare with the verified OPEN's); also a gateway's wanted channel customer (thread_op.want). */
typedef struct thread_chan {
	int known; /* filled from a ThreadInfo */
	uint32_t channel;
	char user[PARLEY_CHANNEL_USER_MAX + 1];
	unsigned verification;
	uint64_t verified_until_ms;
	char verified_by[PARLEY_CHANNEL_USER_MAX + 1]; /* parley_thread_info's bound */
} thread_chan;
void client__thread_chan_from(thread_chan *ch, const Parley__Wire__ThreadInfo *ti);
/* Keeps ch on the kept row of thread_id (none: nothing): the verification, and the thread disputed for
 * good when ch names another channel customer than the verified OPEN. */
int client__thread_chan_keep(parley_client *c, uint64_t thread_id, const thread_chan *ch);
/* The channel part of a public info (t: the kept thread, ent: the verified staff list, may be NULL):
 * the verified OPEN's channel; channel_user and gateway only when t's customer account is a GATEWAY of
 * ent (gateway_verified); channel_disputed; the server's level only where it is believed. */
void client__thread_chan_info(parley_client *c, const client_thread *t, const parley_entity *ent,
			      parley_thread_info *out);
/* TK_SEND_ENTITY of a channel once the entity is verified: this account must be a gateway of it
 * (PARLEY_E_NOT_ENTITY_GATEWAY), then the OPEN (the server gives back the open thread of that channel
 * customer, or opens one). Takes o (finishes it on error). */
struct thread_op;
void client__thread_chan_open(parley_client *c, struct thread_op *o);
/* After a gateway's TK_SEND_ENTITY verified the thread the server gave back: its signed OPEN must name
 * the channel customer asked for (o->want), else PARLEY_E_PROTO_MALFORMED (nothing is sent). */
int client__thread_chan_given(parley_client *c, const struct thread_op *o);

/* The staged op behind every thread call. */
enum {
	TK_SEND,        /* parley_thread_send */
	TK_SEND_ENTITY, /* customer: find or open, then send */
	TK_OPEN,        /* staff: open toward a customer */
	TK_EVENT,       /* add, remove, lock, unlock, close, handback */
	TK_GET,         /* parley_thread_get */
	TK_LIST,        /* parley_thread_list */
	TK_REFRESH,     /* internal: a push or an envelope of a thread not (fully) known */
	TK_KEY,         /* internal: our SKDM to one device (it asked) */
};
enum {
	TS_ENTITY,   /* EntityGet (verified list kept) */
	TS_LIST,     /* ThreadList */
	TS_OPEN,     /* ThreadOpen */
	TS_GET,      /* ThreadGet */
	TS_CUSTOMER, /* the customer's bundles (its signed device list kept) */
	TS_DIST,     /* our SKDM to the members, one handle after another */
	TS_SEND,     /* ThreadSend */
	TS_EVENT,    /* ThreadEvent */
	TS_DONE,
};

typedef struct thread_op {
	client_op op;
	int kind, stage;
	uint64_t thread_id;
	char entity[PARLEY_HANDLE_MAX + 1];
	char customer[PARLEY_HANDLE_MAX + 1];
	char member[PARLEY_HANDLE_MAX + 1]; /* TK_EVENT: subject; TK_KEY: the device's handle */
	uint32_t device;                    /* TK_KEY */
	int ev_kind;                        /* TK_EVENT: WIRE_THREADEV_* */
	char retry_handle[PARLEY_HANDLE_MAX + 1]; /* TK_REFRESH: quarantine of this sender retried after */
	uint8_t *push_event;                /* TK_REFRESH from a push: the event (applied alone if it follows) */
	size_t push_event_len;
	parley_entity *ent;
	uint8_t *body;
	size_t body_len;
	unsigned flags;
	int stale_retried;
	uint64_t timestamp;
	uint8_t event[WIRE_THREADEV_MAX_BYTES];
	size_t event_len;
	uint8_t *ct;
	size_t ct_len;
	char (*targets)[PARLEY_HANDLE_MAX + 1]; /* TS_DIST: handles left */
	size_t ntargets, next_target;
	uint64_t epoch;
	uint8_t dist_skdm[PARLEY_GROUP_DISTRIBUTION_MAX]; /* TS_DIST: the SKDM in flight to targets[next_target] */
	size_t dist_skdm_len;
	uint8_t **gev; /* TS_GET: the events ThreadGet returned, applied after the checks they need */
	size_t *gev_len, ngev;
	uint64_t created_ms, updated_ms;
	parley_thread_info *infos; /* TK_LIST */
	size_t ninfos;
	thread_chan chan; /* TS_GET: the server's info */
	thread_chan want; /* TK_SEND_ENTITY: the channel customer asked for (signed in the OPEN) */
	union {
		Parley__Wire__ThreadOpenRequest open;
		Parley__Wire__ThreadSendRequest send;
		Parley__Wire__ThreadEventRequest event;
		Parley__Wire__ThreadGetRequest get;
		Parley__Wire__ThreadListRequest list;
	} req;
	union {
		parley_thread_id_cb id;
		parley_done_cb done;
		parley_thread_info_cb info;
		parley_thread_list_cb list;
	} cb;
	void *user;
} thread_op;

thread_op *client__thread_op_new(parley_client *c, int kind, uint64_t thread_id, const char *entity, void *user,
				 int *rc);
/* Runs o from stage (takes it). */
void client__thread_run(parley_client *c, thread_op *o, int stage);
/* Ends o: the callback with status, then frees it. */
void client__thread_finish(parley_client *c, thread_op *o, int status);
/* Signs a thread event of this device into o->event. */
int client__thread_sign(parley_client *c, thread_op *o, uint64_t thread_id, uint64_t version, int kind,
			uint64_t subject);

/* ---- thread_send.c ---- */
/* TS_DIST: distributes our key (rotating first when due) to the members that lack it; then stage next. */
void client__thread_distribute(parley_client *c, thread_op *o, int next);
/* TS_SEND: encrypts o->body and submits the ThreadSend. */
int client__thread_send_build(parley_client *c, thread_op *o);
/* The ThreadSend answered. */
void client__thread_send_done(parley_client *c, thread_op *o, int status, const Parley__Wire__Response *r);
/* Our current SKDM to one device of handle (a kind-6 request). */
int client__thread_send_key(parley_client *c, uint64_t thread_id, const char *handle, uint32_t device);

/* ---- thread_recv.c ---- */
/* After a refresh, the sender's quarantined envelopes are retried. */
void client__thread_refreshed(parley_client *c, thread_op *o, int status);
/* The applied-event callback that tells the application (on_thread_changed). */
void client__thread_emit_change(parley_client *c, const wire_threadev *ev, void *user);

#endif
