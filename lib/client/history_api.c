/* The local history of a parley_client (docs/history.md): what recv.c and send.c record, the crash
 * window's second chance, and the public calls. The store itself is history.c and history_rows.c.
 *
 * The crash window. signal.db (the sessions) and client.db (the history) are two files, so the session
 * save and the history row cannot share one SQLite transaction. The order on receive is therefore:
 *   decrypt (session saved) -> history row, handed = 0 -> on_message -> handed = 1 -> seen -> ack.
 * A process that dies after the row and before handed = 1 gets the envelope again (it was not acked);
 * its session already advanced, so the decrypt says DUPLICATE_MESSAGE, and the row, still un-handed, is
 * handed over from the history instead of being lost (client__history_rehand). What remains is the
 * short span between the session save inside the decrypt and the row's commit: a death exactly there
 * still loses that one message (see docs/history.md).
 */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "client/thread_internal.h"
#include "common/alloc.h"

#define PASSPHRASE_MAX 1024

int client__history_options(parley_client *c, const parley_client_options *o)
{
	size_t len;

	if (o->history_max_per_conversation > PARLEY_HISTORY_LIMIT || o->history_max_age_days > PARLEY_HISTORY_MAX_AGE_LIMIT)
		return PARLEY_E_INVAL;
	c->history_max = o->history_max_per_conversation ? o->history_max_per_conversation : PARLEY_HISTORY_MAX_DEFAULT;
	c->history_max_age_days = o->history_max_age_days;
	if (o->storage_passphrase == NULL)
		return PARLEY_OK;
	len = strnlen(o->storage_passphrase, PASSPHRASE_MAX + 1);
	if (len == 0 || len > PASSPHRASE_MAX)
		return PARLEY_E_INVAL;
	/* guarded memory, wiped by sodium_free once the key is derived */
	c->storage_passphrase = sodium_malloc(len + 1);
	if (c->storage_passphrase == NULL)
		return PARLEY_E_NOMEM;
	memcpy(c->storage_passphrase, o->storage_passphrase, len + 1);
	return PARLEY_OK;
}

void client__history_free(parley_client *c)
{
	/* sodium_free zeroes what it frees */
	if (c->history_key != NULL)
		sodium_free(c->history_key);
	if (c->storage_passphrase != NULL)
		sodium_free(c->storage_passphrase);
	c->history_key = NULL;
	c->storage_passphrase = NULL;
}

static client_history_limits limits(const parley_client *c)
{
	client_history_limits l = {c->history_max, c->history_max_age_days, client__now_ms()};
	return l;
}

int client__history_ready(parley_client *c)
{
	client_history_limits lim;
	uint8_t *key;
	int rc;

	if (c->history_key != NULL)
		return PARLEY_OK;
	rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return rc;
	key = sodium_malloc(HISTORY_KEY_BYTES);
	if (key == NULL)
		return PARLEY_E_NOMEM;
	rc = client__history_unlock(client__state_db(c->state), c->state_dir, c->storage_passphrase, key, c->errmsg,
				    sizeof(c->errmsg));
	if (rc != PARLEY_OK) {
		sodium_free(key);
		return rc;
	}
	c->history_key = key;
	if (c->storage_passphrase != NULL)
		sodium_free(c->storage_passphrase);
	c->storage_passphrase = NULL;
	lim = limits(c);
	/* conversations nobody writes to any more age out too; failing that is not worth refusing for */
	(void)client__history_prune_age(client__state_db(c->state), &lim, NULL, 0);
	return PARLEY_OK;
}

static int record(parley_client *c, const client_history_row *r)
{
	client_history_limits lim = limits(c);
	int rc = client__history_ready(c);

	if (rc == PARLEY_OK)
		rc = client__history_insert(client__state_db(c->state), c->history_key, r, &lim, c->errmsg,
					    sizeof(c->errmsg));
	return rc;
}

int client__history_received(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct, int request)
{
	client_history_row r;

	memset(&r, 0, sizeof(r));
	/* a copy of what this account sent belongs to the conversation with its recipient */
	r.m.conversation = ct->kind == CONTENT_KIND_SENT_COPY ? ct->destination : e->sender_handle;
	r.m.outgoing = strcmp(e->sender_handle, c->account.handle) == 0;
	r.m.sender = e->sender_handle;
	r.m.sender_device = e->sender_device;
	r.m.timestamp = ct->timestamp;
	r.server_ts = e->server_timestamp;
	r.server_id = e->server_id;
	r.handed = 0;
	r.request = request;
	r.body = ct->body;
	r.body_len = ct->body_len;
	return record(c, &r);
}

void client__history_handed(parley_client *c, uint64_t server_id)
{
	if (c->history_key != NULL)
		(void)client__history_mark_handed(client__state_db(c->state), server_id, NULL, 0);
}

void client__history_rehand(parley_client *c, uint64_t server_id)
{
	parley_history_entry e;
	parley_message m;
	char conv[HISTORY_CONV_MAX + 1];
	int found = 0, request = 0;

	if (c->ev.on_message == NULL || client__history_ready(c) != PARLEY_OK ||
	    client__history_unhanded(client__state_db(c->state), c->history_key, server_id, &found, &e, conv, &request,
				     NULL, 0) != PARLEY_OK ||
	    !found)
		return;
	/* a thread's message goes back to on_thread_message (thread_recv.c) */
	if (strncmp(conv, PARLEY_THREAD_CONVERSATION_PREFIX, strlen(PARLEY_THREAD_CONVERSATION_PREFIX)) == 0) {
		client__thread_rehand(c, &e, conv, server_id);
		parley_history_entries_free(&e, 1);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.sender = e.sender;
	m.sender_device = e.sender_device;
	/* as recv.c's deliver: a destination only on a copy of this account's message to someone else */
	m.destination = e.outgoing && strcmp(conv, c->account.handle) != 0 ? conv : NULL;
	m.timestamp_ms = e.timestamp_ms;
	m.server_timestamp_ms = e.server_timestamp_ms;
	m.body = e.body;
	m.body_len = e.body_len;
	m.request = request;
	c->ev.on_message(c, &m, c->ev.user);
	client__history_handed(c, server_id);
	parley_history_entries_free(&e, 1);
}

void client__history_sent(parley_client *c, const char *recipient, const uint8_t *content, size_t content_len,
			  uint64_t server_ts)
{
	client_content ct;
	client_history_row r;

	if (client__content_decode(content, content_len, &ct) != PARLEY_OK)
		return;
	memset(&r, 0, sizeof(r));
	r.m.conversation = recipient;
	r.m.outgoing = 1;
	r.m.sender = c->account.handle;
	r.m.sender_device = c->account.device_id;
	r.m.timestamp = ct.timestamp;
	r.server_ts = server_ts;
	r.handed = 1;
	r.body = ct.body;
	r.body_len = ct.body_len;
	/* the message is sent whatever happens here; a failure only leaves it out of this device's history */
	(void)record(c, &r);
}

int client__history_thread(parley_client *c, uint64_t thread_id, const char *sender, uint32_t device, uint64_t ts,
			   uint64_t server_ts, uint64_t server_id, int handed, const uint8_t *body, size_t len)
{
	char conv[HISTORY_CONV_MAX + 1];
	client_history_row r;

	client__thread_conversation(thread_id, conv);
	memset(&r, 0, sizeof(r));
	r.m.conversation = conv;
	r.m.outgoing = strcmp(sender, c->account.handle) == 0;
	r.m.sender = sender;
	r.m.sender_device = device;
	r.m.timestamp = ts;
	r.server_ts = server_ts;
	r.server_id = server_id;
	r.handed = handed;
	r.body = body;
	r.body_len = len;
	return record(c, &r);
}

/* ---- public ---- */

static int check_conversation(parley_client *c, const char *conv)
{
	c->errmsg[0] = '\0';
	if (!client__history_conversation_ok(conv)) {
		client__set_err(c, "a conversation id has 1 to %d printable ASCII characters", HISTORY_CONV_MAX);
		return PARLEY_E_INVAL;
	}
	return client__history_ready(c);
}

parley_err parley_history_list(parley_client *c, const char *conv, uint64_t before_ms, size_t max,
			       parley_history_entry *out, size_t *n)
{
	int rc;

	if (n != NULL)
		*n = 0;
	if (c == NULL || n == NULL || (out == NULL && max != 0))
		return PARLEY_E_INVAL;
	rc = check_conversation(c, conv);
	if (rc == PARLEY_OK)
		rc = client__history_select(client__state_db(c->state), c->history_key, conv, before_ms, max, out, n,
					    c->errmsg, sizeof(c->errmsg));
	return (parley_err)rc;
}

parley_err parley_history_clear(parley_client *c, const char *conv, size_t *deleted)
{
	int rc;

	if (deleted != NULL)
		*deleted = 0;
	if (c == NULL)
		return PARLEY_E_INVAL;
	rc = check_conversation(c, conv);
	if (rc == PARLEY_OK)
		rc = client__history_delete(client__state_db(c->state), conv, deleted, c->errmsg, sizeof(c->errmsg));
	return (parley_err)rc;
}
