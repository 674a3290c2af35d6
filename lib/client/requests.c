/* Message requests on the client (docs/protocol.md §10; the server side is server/relay/presence.c and
 * server/store/sqlite/contacts.c).
 *
 * The server lets typing and presence flow only between accounts that accepted each other, and counts
 * any send as acceptance of the recipient. Receipts are ordinary encrypted sends now, so the client
 * must not send one to a stranger: a delivery receipt for a stranger's first message would accept the
 * stranger and hand it this account's presence. Two tables of client.db, versioned as their own
 * schema ("client.requests") so they migrate independently of state.c's:
 *   accepted(handle)      peers this account accepted: it wrote to them (from any of its devices: the
 *                         copy a device sends to the others counts) or called parley_accept. Only they
 *                         get delivery and read receipts.
 *   sent_ids(ts, handle)  the message ids this account sent and to whom (again from any device). A
 *                         receipt is shown only for ids sent to the account that signed it: anyone
 *                         else's "delivered your message" is dropped.
 * sent_ids are kept as long as the server may still deliver a receipt (its envelope TTL, 30 days by
 * default, plus a margin); then forgotten.
 */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"
#include "common/migrate.h"

#define SENT_KEEP_MS (45ull * 24 * 3600 * 1000)

static const char *const request_steps[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS accepted (handle TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sent_ids (ts INTEGER NOT NULL, handle TEXT NOT NULL, at_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (ts, handle)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sent_ids_at ON sent_ids(at_ms);",
};

static const migrate_schema requests_schema = {
	.name = "client.requests",
	MIGRATE_STEPS(request_steps),
	.legacy_user_version = 0,
};

/* The tables exist (migrated once per client handle) and old sent ids are gone. */
static int ready(parley_client *c)
{
	sqlite3_stmt *st = NULL;
	int migrated = 0;
	int rc;

	if (c->requests_ready)
		return PARLEY_OK;
	/* migrated here, ready only once the old sent ids are gone too */
	rc = client__schema_ready(c, &migrated, client__e2e_open, &requests_schema);
	if (rc != PARLEY_OK)
		return rc;
	rc = client__sql_prep(c, "DELETE FROM sent_ids WHERE at_ms < ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(client__now_ms() - SENT_KEEP_MS));
	rc = client__sql_done(c, st);
	c->requests_ready = rc == PARLEY_OK;
	return rc;
}

int client__requests_accepted(parley_client *c, const char *handle, int *accepted)
{
	sqlite3_stmt *st = NULL;
	int rc = ready(c);

	*accepted = 0;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT 1 FROM accepted WHERE handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*accepted = rc == SQLITE_ROW;
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	sqlite3_finalize(st);
	return rc;
}

int client__requests_set_accepted(parley_client *c, const char *handle, int accepted)
{
	sqlite3_stmt *st = NULL;
	int rc = ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      accepted ? "INSERT OR IGNORE INTO accepted (handle, at_ms) VALUES (?, ?)"
					       : "DELETE FROM accepted WHERE handle = ?",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_text(st, 1, handle, -1, SQLITE_STATIC);
	if (accepted)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)client__now_ms());
	return client__sql_done(c, st);
}

int client__requests_record_sent(parley_client *c, uint64_t timestamp, const char *handle)
{
	sqlite3_stmt *st = NULL;
	int rc = client__requests_set_accepted(c, handle, 1); /* writing to someone accepts them */

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "INSERT OR IGNORE INTO sent_ids (ts, handle, at_ms) VALUES (?, ?, ?)", &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)timestamp);
	sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)client__now_ms());
	return client__sql_done(c, st);
}

int client__requests_filter_sent(parley_client *c, const char *handle, uint64_t *ts, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t i, kept = 0;
	int rc = ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c, "SELECT 1 FROM sent_ids WHERE ts = ? AND handle = ?", &st);
	if (rc != PARLEY_OK)
		return rc;
	for (i = 0; i < *n && rc == PARLEY_OK; i++) {
		int step;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ts[i]);
		sqlite3_bind_text(st, 2, handle, -1, SQLITE_STATIC);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			ts[kept++] = ts[i];
		else if (step != SQLITE_DONE)
			rc = client__sql_err(c);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	*n = rc == PARLEY_OK ? kept : 0;
	return rc;
}

/* ---- the server requests: ContactRequest, PresenceSettingRequest ---- */

typedef struct request_op {
	client_op op;
	char handle[PARLEY_HANDLE_MAX + 1];
	union {
		Parley__Wire__ContactRequest contact;
		Parley__Wire__PresenceSettingRequest presence;
	} body;
	parley_done_cb cb;
	void *user;
} request_op;

static int build_contact(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	request_op *r = CLIENT_OP_OWNER(op, request_op, op);
	r->body.contact.handle = r->handle;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_CONTACT;
	req->contact = &r->body.contact;
	return PARLEY_OK;
}

static int build_presence(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	request_op *r = CLIENT_OP_OWNER(op, request_op, op);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_PRESENCE_SETTING;
	req->presence_setting = &r->body.presence;
	return PARLEY_OK;
}

static void complete_request(parley_client *c, client_op *op, int status, const Parley__Wire__Response *resp)
{
	request_op *r = CLIENT_OP_OWNER(op, request_op, op);
	r->cb(c, (parley_err)status, r->user);
	parley__free(r);
}

static const client_op_vtable contact_vt = {build_contact, complete_request, PARLEY__WIRE__RESPONSE__BODY_CONTACT, 0};
static const client_op_vtable presence_vt = {build_presence, complete_request,
					     PARLEY__WIRE__RESPONSE__BODY_PRESENCE_SETTING, 0};

static request_op *request_new(const client_op_vtable *vt, parley_done_cb cb, void *user)
{
	request_op *r = parley__calloc(1, sizeof(*r));
	if (r != NULL) {
		r->op.vt = vt;
		r->cb = cb;
		r->user = user;
	}
	return r;
}

/* The local table first: from then on this device sends receipts to handle (or stops), whatever
 * becomes of the request; the server side follows when the request completes. */
parley_err parley_contact_start(parley_client *c, const char *handle, int accept, parley_done_cb cb, void *user)
{
	request_op *r;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__e2e_begin(c, handle);
	if (rc == PARLEY_OK && strcmp(handle, c->account.handle) == 0) {
		client__set_err(c, "%s is this account", handle);
		rc = PARLEY_E_INVAL;
	}
	if (rc == PARLEY_OK)
		rc = client__requests_set_accepted(c, handle, accept != 0);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	r = request_new(&contact_vt, cb, user);
	if (r == NULL)
		return PARLEY_E_NOMEM;
	snprintf(r->handle, sizeof(r->handle), "%s", handle);
	parley__wire__contact_request__init(&r->body.contact);
	r->body.contact.accept = accept != 0;
	client__conn_submit(c, &r->op);
	return PARLEY_OK;
}

parley_err parley_presence_share_start(parley_client *c, int share, parley_done_cb cb, void *user)
{
	request_op *r;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	r = request_new(&presence_vt, cb, user);
	if (r == NULL)
		return PARLEY_E_NOMEM;
	parley__wire__presence_setting_request__init(&r->body.presence);
	r->body.presence.share = share != 0;
	client__conn_submit(c, &r->op);
	return PARLEY_OK;
}

parley_err parley_accept(parley_client *c, const char *handle)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_contact_start(c, handle, 1, client__sync_done, &s));
}

parley_err parley_decline(parley_client *c, const char *handle)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_contact_start(c, handle, 0, client__sync_done, &s));
}

parley_err parley_presence_share(parley_client *c, int share)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_presence_share_start(c, share, client__sync_done, &s));
}
