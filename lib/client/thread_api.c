/* Threads, the public entry points (include/parley/thread.h): argument checks, one thread_op each
 * (thread.c runs its stages), the blocking variants, and the local history and unread calls.
 */
#include <string.h>

#include "client/thread_core.h"
#include "common/alloc.h"
#include "wire/wire_threads.h"

static int check_body(parley_client *c, const uint8_t *body, size_t len)
{
	if (body == NULL || len == 0 || len > PARLEY_MESSAGE_MAX) {
		client__set_err(c, "a message has 1 to %d bytes", PARLEY_MESSAGE_MAX);
		return len > PARLEY_MESSAGE_MAX ? PARLEY_E_TOO_LARGE : PARLEY_E_INVAL;
	}
	/* a wrong storage key would leave the message out of the history: refused before anything is sent */
	return client__history_ready(c);
}

static int copy_body(thread_op *o, const uint8_t *body, size_t len)
{
	o->body = parley__malloc(len + 1);
	if (o->body == NULL)
		return PARLEY_E_NOMEM;
	memcpy(o->body, body, len);
	o->body[len] = '\0';
	o->body_len = len;
	return PARLEY_OK;
}

/* An op on a thread: from the entity when this device knows the thread, else from the ThreadGet. */
static parley_err start_on_thread(parley_client *c, thread_op *o)
{
	client_thread t;

	if (client__thread_load(c, o->thread_id, &t) == PARLEY_OK) {
		snprintf(o->entity, sizeof(o->entity), "%s", t.entity);
		client__thread_run(c, o, TS_ENTITY);
	} else {
		client__thread_run(c, o, TS_GET);
	}
	return PARLEY_OK;
}

static thread_op *op_new(parley_client *c, int kind, uint64_t thread_id, const char *entity, void *user, int *rc)
{
	if (c != NULL)
		c->errmsg[0] = '\0';
	if (c != NULL && kind != TK_SEND_ENTITY && kind != TK_OPEN && kind != TK_LIST && thread_id == 0) {
		*rc = PARLEY_E_INVAL;
		return NULL;
	}
	return client__thread_op_new(c, kind, thread_id, entity, user, rc);
}

/* A customer's send to an entity (channel native), or a gateway's for one channel customer. */
static parley_err send_entity(parley_client *c, const char *entity, parley_channel channel, const char *channel_user,
			      const uint8_t *body, size_t len, parley_thread_id_cb cb, void *user)
{
	thread_op *o;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	o = op_new(c, TK_SEND_ENTITY, 0, entity, user, &rc);
	if (o != NULL && channel != PARLEY_CHANNEL_NATIVE) {
		/* checked here as the server will: nothing is fetched or signed for a malformed identity */
		if (!wire__channel_valid((uint32_t)channel, channel_user)) {
			client__set_err(c, "channel %d with 1 to %d printable ASCII bytes (sms, waba: +E.164, 6 to 15 digits)",
					(int)channel, PARLEY_CHANNEL_USER_MAX);
			rc = PARLEY_E_CHANNEL_INVALID;
		} else {
			o->want.channel = (uint32_t)channel;
			snprintf(o->want.user, sizeof(o->want.user), "%s", channel_user);
		}
	}
	if (o != NULL && rc == PARLEY_OK && (rc = check_body(c, body, len)) == PARLEY_OK)
		rc = copy_body(o, body, len);
	if (rc != PARLEY_OK) {
		if (o != NULL)
			client__thread_finish(c, o, rc); /* no callback set yet */
		return (parley_err)rc;
	}
	o->cb.id = cb;
	client__thread_run(c, o, TS_ENTITY);
	return PARLEY_OK;
}

parley_err parley_thread_send_entity_start(parley_client *c, const char *entity, const uint8_t *body, size_t len,
					   parley_thread_id_cb cb, void *user)
{
	return send_entity(c, entity, PARLEY_CHANNEL_NATIVE, NULL, body, len, cb, user);
}

parley_err parley_thread_send_channel_start(parley_client *c, const char *entity, parley_channel channel,
					    const char *channel_user, const uint8_t *body, size_t len,
					    parley_thread_id_cb cb, void *user)
{
	if (channel == PARLEY_CHANNEL_NATIVE) {
		if (c != NULL)
			client__set_err(c, "a channel send names a channel: parley_thread_send_entity is the native one");
		return c == NULL ? PARLEY_E_INVAL : PARLEY_E_CHANNEL_INVALID;
	}
	return send_entity(c, entity, channel, channel_user, body, len, cb, user);
}

parley_err parley_thread_open_start(parley_client *c, const char *entity, const char *customer,
				    parley_thread_id_cb cb, void *user)
{
	thread_op *o;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	rc = client__check_handle(c, customer);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	o = op_new(c, TK_OPEN, 0, entity, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	snprintf(o->customer, sizeof(o->customer), "%s", customer);
	o->cb.id = cb;
	client__thread_run(c, o, TS_ENTITY);
	return PARLEY_OK;
}

parley_err parley_thread_send_start(parley_client *c, uint64_t thread_id, const uint8_t *body, size_t len,
				    unsigned flags, parley_done_cb cb, void *user)
{
	thread_op *o;
	int rc;

	if (c == NULL || cb == NULL || (flags & ~PARLEY_THREAD_SEND_PAYMENT) != 0)
		return PARLEY_E_INVAL;
	o = op_new(c, TK_SEND, thread_id, NULL, user, &rc);
	if (o != NULL && (rc = check_body(c, body, len)) == PARLEY_OK)
		rc = copy_body(o, body, len);
	if (rc != PARLEY_OK) {
		if (o != NULL)
			client__thread_finish(c, o, rc);
		return (parley_err)rc;
	}
	o->flags = flags;
	o->cb.done = cb;
	return start_on_thread(c, o);
}

static parley_err event_start(parley_client *c, uint64_t thread_id, int kind, const char *member, parley_done_cb cb,
			      void *user)
{
	thread_op *o;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	if (member != NULL && (rc = client__check_handle(c, member)) != PARLEY_OK)
		return (parley_err)rc;
	o = op_new(c, TK_EVENT, thread_id, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->ev_kind = kind;
	if (member != NULL)
		snprintf(o->member, sizeof(o->member), "%s", member);
	o->cb.done = cb;
	return start_on_thread(c, o);
}

parley_err parley_thread_add_start(parley_client *c, uint64_t thread_id, const char *member, parley_done_cb cb,
				   void *user)
{
	return member == NULL ? PARLEY_E_INVAL : event_start(c, thread_id, WIRE_THREADEV_ADD, member, cb, user);
}

parley_err parley_thread_remove_start(parley_client *c, uint64_t thread_id, const char *member, parley_done_cb cb,
				      void *user)
{
	return member == NULL ? PARLEY_E_INVAL : event_start(c, thread_id, WIRE_THREADEV_REMOVE, member, cb, user);
}

parley_err parley_thread_lock_start(parley_client *c, uint64_t thread_id, int lock, parley_done_cb cb, void *user)
{
	return event_start(c, thread_id, lock ? WIRE_THREADEV_LOCK : WIRE_THREADEV_UNLOCK, NULL, cb, user);
}

parley_err parley_thread_close_start(parley_client *c, uint64_t thread_id, parley_done_cb cb, void *user)
{
	return event_start(c, thread_id, WIRE_THREADEV_CLOSE, NULL, cb, user);
}

parley_err parley_thread_handback_start(parley_client *c, uint64_t thread_id, const char *to, parley_done_cb cb,
					void *user)
{
	return event_start(c, thread_id, WIRE_THREADEV_HANDBACK, to, cb, user);
}

parley_err parley_thread_get_start(parley_client *c, uint64_t thread_id, parley_thread_info_cb cb, void *user)
{
	thread_op *o;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	o = op_new(c, TK_GET, thread_id, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.info = cb;
	return start_on_thread(c, o);
}

parley_err parley_thread_list_start(parley_client *c, const char *entity, parley_thread_list_cb cb, void *user)
{
	thread_op *o;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	o = op_new(c, TK_LIST, 0, entity, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.list = cb;
	/* an entity's threads are shown against its current verified staff list (who is staff, which
	 * channel threads come through a gateway it still names): fetched first */
	client__thread_run(c, o, o->entity[0] != '\0' ? TS_ENTITY : TS_LIST);
	return PARLEY_OK;
}

/* ---- blocking variants ---- */

typedef struct thread_sync {
	client_sync s;
	uint64_t thread_id;
	parley_thread_info *info;
	parley_thread_info *list;
	size_t max, *n;
} thread_sync;

static void sync_id(parley_client *c, parley_err st, uint64_t id, void *user)
{
	thread_sync *s = user;
	s->thread_id = id;
	client__sync_done(c, st, &s->s);
}

static void sync_info(parley_client *c, parley_err st, const parley_thread_info *info, void *user)
{
	thread_sync *s = user;
	if (st == PARLEY_OK)
		*s->info = *info;
	client__sync_done(c, st, &s->s);
}

static void sync_list(parley_client *c, parley_err st, const parley_thread_info *t, size_t n, void *user)
{
	thread_sync *s = user;
	for (size_t i = 0; st == PARLEY_OK && i < n && *s->n < s->max; i++)
		s->list[(*s->n)++] = t[i];
	client__sync_done(c, st, &s->s);
}

static parley_err wait_id(parley_client *c, thread_sync *s, parley_err rc, uint64_t *thread_id)
{
	rc = client__sync_wait(c, &s->s, rc);
	if (thread_id != NULL)
		*thread_id = rc == PARLEY_OK ? s->thread_id : 0;
	return rc;
}

parley_err parley_thread_send_entity(parley_client *c, const char *entity, const uint8_t *body, size_t len,
				     uint64_t *thread_id)
{
	thread_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return wait_id(c, &s, parley_thread_send_entity_start(c, entity, body, len, sync_id, &s), thread_id);
}

parley_err parley_thread_send_channel(parley_client *c, const char *entity, parley_channel channel,
				      const char *channel_user, const uint8_t *body, size_t len, uint64_t *thread_id)
{
	thread_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return wait_id(c, &s,
		       parley_thread_send_channel_start(c, entity, channel, channel_user, body, len, sync_id, &s),
		       thread_id);
}

parley_err parley_thread_open(parley_client *c, const char *entity, const char *customer, uint64_t *thread_id)
{
	thread_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return wait_id(c, &s, parley_thread_open_start(c, entity, customer, sync_id, &s), thread_id);
}

#define SYNC_DONE(call)                                                                                               \
	do {                                                                                                          \
		client_sync s = {0};                                                                                  \
		if (client__sync_refused(c))                                                                          \
			return PARLEY_E_STATE;                                                                        \
		return client__sync_wait(c, &s, (call));                                                              \
	} while (0)

parley_err parley_thread_send(parley_client *c, uint64_t thread_id, const uint8_t *body, size_t len, unsigned flags)
{
	SYNC_DONE(parley_thread_send_start(c, thread_id, body, len, flags, client__sync_done, &s));
}

parley_err parley_thread_add(parley_client *c, uint64_t thread_id, const char *member)
{
	SYNC_DONE(parley_thread_add_start(c, thread_id, member, client__sync_done, &s));
}

parley_err parley_thread_remove(parley_client *c, uint64_t thread_id, const char *member)
{
	SYNC_DONE(parley_thread_remove_start(c, thread_id, member, client__sync_done, &s));
}

parley_err parley_thread_lock(parley_client *c, uint64_t thread_id, int lock)
{
	SYNC_DONE(parley_thread_lock_start(c, thread_id, lock, client__sync_done, &s));
}

parley_err parley_thread_close(parley_client *c, uint64_t thread_id)
{
	SYNC_DONE(parley_thread_close_start(c, thread_id, client__sync_done, &s));
}

parley_err parley_thread_handback(parley_client *c, uint64_t thread_id, const char *to)
{
	SYNC_DONE(parley_thread_handback_start(c, thread_id, to, client__sync_done, &s));
}

parley_err parley_thread_get(parley_client *c, uint64_t thread_id, parley_thread_info *out)
{
	thread_sync s = {0};
	if (out == NULL)
		return PARLEY_E_INVAL;
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	s.info = out;
	return client__sync_wait(c, &s.s, parley_thread_get_start(c, thread_id, sync_info, &s));
}

parley_err parley_thread_list(parley_client *c, const char *entity, parley_thread_info *out, size_t max, size_t *n)
{
	thread_sync s = {0};
	if (n == NULL || (out == NULL && max != 0))
		return PARLEY_E_INVAL;
	*n = 0;
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	s.list = out;
	s.max = max;
	s.n = n;
	return client__sync_wait(c, &s.s, parley_thread_list_start(c, entity, sync_list, &s));
}

/* ---- local ---- */

parley_err parley_thread_history(parley_client *c, uint64_t thread_id, uint64_t before_ms, size_t max,
				 parley_history_entry *out, size_t *n)
{
	char conv[HISTORY_CONV_MAX + 1];

	if (thread_id == 0) {
		if (n != NULL)
			*n = 0;
		return PARLEY_E_INVAL;
	}
	client__thread_conversation(thread_id, conv);
	return parley_history_list(c, conv, before_ms, max, out, n);
}

parley_err parley_thread_mark_read(parley_client *c, uint64_t thread_id)
{
	int rc;

	if (c == NULL || thread_id == 0)
		return PARLEY_E_INVAL;
	rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__thread_unread_add(c, thread_id, 0);
	return (parley_err)rc;
}

const char *parley_channel_name(int channel)
{
	static const char *const names[] = {"native", "webchat", "sms", "waba", "byoc"};
	return channel >= 0 && channel < (int)(sizeof names / sizeof names[0]) ? names[channel] : "unknown";
}

const char *parley_verification_name(int level)
{
	static const char *const names[] = {"unverified", "channel-verified", "authenticated"};
	return level >= 0 && level < (int)(sizeof names / sizeof names[0]) ? names[level] : "unknown";
}
