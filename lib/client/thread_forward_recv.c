/* Forwarding a thread: the agent's side (thread_forward.h; docs/protocol.md §13.5).
 *
 * A bundle (Content kind 7) is imported only when ALL of these hold, else nothing of it is:
 *   - it decodes within every bound (lib/wire/forward.c);
 *   - its entity, fetched and verified now (parley_entity_get: the CURRENT staff list, signed by the
 *     pinned entity key), names the sending account as an ADMIN whose signed device list (in that staff
 *     list) names the sending device: a server, a customer, a plain agent or anyone who can reach this
 *     device over a pairwise session cannot make it import keys;
 *   - the thread, fetched and verified (parley_thread_get), belongs to that entity, and the bundle's
 *     signed events replay against what was verified (client__thread_apply_events: a different event
 *     at a known version is refused);
 *   - every sender key names a member of that thread, not this device, and the thread's distribution id.
 * Then the keys are processed (parley_group_process_distribution under (handle, device)), the forward is
 * remembered (client.db: forward_id, the sending device, chunks expected) and on_thread_forwarded fires.
 * A history chunk (kind 8) is imported only for a remembered forward from the SAME device, each chunk
 * once; chunks that arrive while their bundle is still being checked (the checks need two round trips,
 * the chunks were queued right behind the bundle) wait in memory with that import and share its fate.
 */
#include <stdarg.h>
#include <string.h>

#include <sodium.h>

#include <parley/signal_group.h>

#include "client/thread_forward.h"
#include "common/alloc.h"
#include "common/migrate.h"
#include "signal/sender_key.h"
#include "wire/forward.h"

#define FWD_HELD_MAX 64 /* chunks held per import in flight (each <= WIRE_FORWARD_MAX_BYTES) */

static const char *const forward_steps[] = {
	"CREATE TABLE forwards (forward_id INTEGER NOT NULL, from_handle TEXT NOT NULL, from_device INTEGER NOT NULL,"
	"  thread_id INTEGER NOT NULL, chunks INTEGER NOT NULL, total INTEGER NOT NULL, imported INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL, PRIMARY KEY (forward_id, from_handle, from_device));"
	"CREATE TABLE forward_chunks (forward_id INTEGER NOT NULL, from_handle TEXT NOT NULL,"
	"  from_device INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (forward_id, from_handle, from_device, seq));",
};

static const migrate_schema forward_schema = {
	.name = "client.forward",
	MIGRATE_STEPS(forward_steps),
	.legacy_user_version = 0,
};

int client__forward_ready(parley_client *c)
{
	return client__schema_ready(c, &c->forward_ready, client__e2e_open, &forward_schema);
}

static void refuse(parley_client *c, const char *handle, uint32_t device, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refuse(parley_client *c, const char *handle, uint32_t device, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	client__set_err(c, "forward from %s (device %u) refused: %s", handle, (unsigned)device, why);
	if (c->ev.on_error != NULL)
		c->ev.on_error(c, PARLEY_E_FORWARD_INVALID, handle, device, c->ev.user);
}

/* ---- an import in flight ---- */

typedef struct fwd_import fwd_import;
struct fwd_import {
	struct fwd_import *next;
	char from[PARLEY_HANDLE_MAX + 1];
	uint32_t device;
	uint64_t from_account; /* the sender's account as the verified staff list names it */
	int by_agent;          /* sent by a non-admin with MAY_TRANSFER: a transfer (checked in on_thread) */
	uint8_t *payload; /* the packed bundle (decoded again at each step: nothing borrowed across calls) */
	size_t payload_len;
	Parley__Wire__ForwardBundle *b;
	uint8_t *held[FWD_HELD_MAX]; /* chunks that came before the bundle was accepted */
	size_t held_len[FWD_HELD_MAX], nheld;
};

static void import_free(parley_client *c, fwd_import *j)
{
	for (fwd_import **p = &c->fwd_imports; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	wire__forward_bundle_free(j->b);
	for (size_t i = 0; i < j->nheld; i++) {
		sodium_memzero(j->held[i], j->held_len[i]);
		parley__free(j->held[i]);
	}
	if (j->payload != NULL)
		sodium_memzero(j->payload, j->payload_len);
	parley__free(j->payload);
	parley__free(j);
}

static void import_chunk(parley_client *c, const char *from, uint32_t device, const uint8_t *buf, size_t len);

/* The sending device may send a bundle: it belongs (by that list's signed device list of its member) to
 * an admin of the verified staff list, or to a member whose effective MAY_TRANSFER the list sets (then
 * j->by_agent: on_thread checks that it is the thread's handling agent who hands it to this account). */
static int sender_may_forward(const parley_entity *ent, fwd_import *j)
{
	wire_devlist dl;

	for (size_t i = 0; i < ent->sl.n; i++) {
		const wire_staff_member *m = &ent->sl.members[i];
		if (strcmp(m->handle, j->from) != 0)
			continue;
		j->by_agent = m->role != WIRE_ROLE_ADMIN;
		j->from_account = m->account_id;
		if ((j->by_agent && !(wire__stafflist_effective_rules(&ent->sl, m) & WIRE_RULE_MAY_TRANSFER)) ||
		    client__entity_member_devlist(m->devlist, m->devlist_len, m->account_id, m->account_key, &dl) !=
			    PARLEY_OK)
			return 0;
		for (size_t k = 0; k < dl.n; k++)
			if (dl.dev[k].device_id == j->device)
				return 1;
		return 0;
	}
	return 0;
}

/* A transfer by a handling agent (j->by_agent): in the verified chain now kept, the latest HANDLING was
 * signed by the sending device and names this account. The replay accepted that event only from the
 * handling agent of that moment with MAY_TRANSFER, so the bundle comes from the agent who handed the
 * thread on, to us, and from no other agent (nor from it for a thread it no longer hands on). */
static int transfer_check(parley_client *c, const fwd_import *j, char *why, size_t cap)
{
	uint8_t **evs = NULL;
	size_t *lens = NULL, n = 0;
	wire_threadev ev;
	int rc = client__thread_events(c, j->b->thread_id, &evs, &lens, &n), found = 0;

	for (size_t i = n; rc == PARLEY_OK && i > 0 && !found; i--)
		if (wire__threadev_parse(evs[i - 1], lens[i - 1], &ev) == PARLEY_OK && ev.kind == WIRE_THREADEV_HANDLING)
			found = 1;
	client__thread_events_free(evs, lens, n);
	if (rc == PARLEY_OK && (!found || ev.actor != j->from_account || ev.actor_device != j->device ||
				ev.subject != c->account.account_id)) {
		snprintf(why, cap, "%s is not the handling agent who handed thread %llu to this account", j->from,
			 (unsigned long long)j->b->thread_id);
		rc = PARLEY_E_FORWARD_INVALID;
	}
	return rc;
}

/* The sender keys: each of a member of the thread, not this device, for the thread's distribution id;
 * checked all before any is processed. */
static int keys_check(parley_client *c, fwd_import *j, char *why, size_t cap)
{
	const Parley__Wire__ForwardBundle *b = j->b;
	uint8_t did[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN];
	sk_distribution d;
	thread_member m;

	client__thread_distribution_id(b->thread_id, did);
	for (size_t i = 0; i < b->n_sender_keys; i++) {
		const Parley__Wire__ForwardSenderKey *k = b->sender_keys[i];
		int found = 0, rc;

		if (strcmp(k->handle, c->account.handle) == 0 && k->device == c->account.device_id) {
			snprintf(why, cap, "it carries a sender key for this very device");
			return PARLEY_E_FORWARD_INVALID;
		}
		rc = client__thread_member(c, b->thread_id, k->handle, &m, &found);
		if (rc != PARLEY_OK)
			return rc;
		if (!found) {
			snprintf(why, cap, "a sender key of %s, who is no member of thread %llu", k->handle,
				 (unsigned long long)b->thread_id);
			return PARLEY_E_FORWARD_INVALID;
		}
		rc = sender_key__distribution_decode(&d, k->distribution.data, k->distribution.len);
		int same = rc == PARLEY_OK && sodium_memcmp(d.distribution_id, did, sizeof(did)) == 0;
		sodium_memzero(&d, sizeof(d));
		if (!same) {
			snprintf(why, cap, "the sender key of %s device %u is not one of thread %llu", k->handle,
				 (unsigned)k->device, (unsigned long long)b->thread_id);
			return PARLEY_E_FORWARD_INVALID;
		}
	}
	return PARLEY_OK;
}

static int remember(parley_client *c, const fwd_import *j)
{
	sqlite3_stmt *st = NULL;
	int rc = client__forward_ready(c);

	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "INSERT OR IGNORE INTO forwards (forward_id, from_handle, from_device, thread_id, chunks,"
				      " total, imported, created_ms) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)j->b->forward_id);
	sqlite3_bind_text(st, 2, j->from, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, j->device);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)j->b->thread_id);
	sqlite3_bind_int64(st, 5, j->b->history_chunks);
	sqlite3_bind_int64(st, 6, j->b->history_total);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)client__now_ms());
	return client__sql_done(c, st);
}

/* Every check passed: the keys, the record, the application, then the chunks that waited. */
static void accept_bundle(parley_client *c, fwd_import *j)
{
	const Parley__Wire__ForwardBundle *b = j->b;
	parley_thread_forwarded f;
	int rc = PARLEY_OK;

	for (size_t i = 0; rc == PARLEY_OK && i < b->n_sender_keys; i++) {
		const Parley__Wire__ForwardSenderKey *k = b->sender_keys[i];
		parley_signal_address a = {k->handle, k->device};
		rc = parley_group_process_distribution(&c->sigstore, &a, k->distribution.data, k->distribution.len, NULL);
	}
	if (rc == PARLEY_OK)
		rc = remember(c, j);
	if (rc != PARLEY_OK) {
		refuse(c, j->from, j->device, "could not be stored: %s", parley_strerror((parley_err)rc));
		import_free(c, j);
		return;
	}
	memset(&f, 0, sizeof(f));
	f.thread_id = b->thread_id;
	f.entity = b->entity;
	f.from = j->from;
	f.note = b->note != NULL ? b->note : "";
	f.history_complete = b->history_chunks == 0;
	client__thread_emit_forwarded(c, &f);
	/* detached first: the chunks now find the remembered forward, not this import */
	for (fwd_import **p = &c->fwd_imports; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	j->next = NULL;
	for (size_t i = 0; i < j->nheld; i++)
		import_chunk(c, j->from, j->device, j->held[i], j->held_len[i]);
	/* group messages quarantined for want of these keys: marked for a retry (a retry only takes marked
	 * ones), then retried */
	for (size_t i = 0; i < b->n_sender_keys; i++)
		(void)client__quarantine_mark(c, b->sender_keys[i]->handle);
	import_free(c, j);
	client__recv_retry_quarantine(c);
}

static void on_thread(parley_client *c, parley_err status, const parley_thread_info *info, void *user)
{
	fwd_import *j = user;
	const Parley__Wire__ForwardBundle *b = j->b;
	char why[160] = "";
	int rc = status;

	if (rc == PARLEY_OK && strcmp(info->entity, b->entity) != 0) {
		snprintf(why, sizeof(why), "thread %llu belongs to %s, not %s", (unsigned long long)b->thread_id,
			 info->entity, b->entity);
		rc = PARLEY_E_FORWARD_INVALID;
	} else if (rc != PARLEY_OK) {
		snprintf(why, sizeof(why), "thread %llu could not be verified (%s)", (unsigned long long)b->thread_id,
			 parley_strerror(status));
	}
	if (rc == PARLEY_OK) {
		const uint8_t **evs = parley__calloc(b->n_events, sizeof(*evs));
		size_t *lens = parley__calloc(b->n_events, sizeof(*lens));
		if (evs == NULL || lens == NULL)
			rc = PARLEY_E_NOMEM;
		for (size_t i = 0; rc == PARLEY_OK && i < b->n_events; i++) {
			evs[i] = b->events[i].data;
			lens[i] = b->events[i].len;
		}
		if (rc == PARLEY_OK)
			rc = client__thread_apply_events(c, b->entity, b->thread_id, evs, lens, b->n_events);
		if (rc != PARLEY_OK)
			snprintf(why, sizeof(why), "its events do not verify (%s)", parley_strerror((parley_err)rc));
		parley__free(evs);
		parley__free(lens);
	}
	if (rc == PARLEY_OK && j->by_agent)
		rc = transfer_check(c, j, why, sizeof(why));
	if (rc == PARLEY_OK)
		rc = keys_check(c, j, why, sizeof(why));
	if (rc != PARLEY_OK) {
		refuse(c, j->from, j->device, "%s", why[0] ? why : parley_strerror((parley_err)rc));
		import_free(c, j);
		return;
	}
	accept_bundle(c, j);
}

static void on_entity(parley_client *c, parley_err status, parley_entity *e, void *user)
{
	fwd_import *j = user;
	int allowed = status == PARLEY_OK && sender_may_forward(e, j);
	int rc;

	parley_entity_free(e);
	if (status != PARLEY_OK) {
		refuse(c, j->from, j->device, "entity %s could not be verified (%s)", j->b->entity,
		       parley_strerror(status));
		import_free(c, j);
		return;
	}
	if (!allowed) {
		refuse(c, j->from, j->device,
		       "that device is no device of an admin (or of an agent with may-transfer) in the verified staff"
		       " list of %s",
		       j->b->entity);
		import_free(c, j);
		return;
	}
	rc = parley_thread_get_start(c, j->b->thread_id, on_thread, j);
	if (rc != PARLEY_OK) {
		refuse(c, j->from, j->device, "thread %llu could not be fetched", (unsigned long long)j->b->thread_id);
		import_free(c, j);
	}
}

static void receive_bundle(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	fwd_import *j;
	char why[200] = "";

	if ((j = parley__calloc(1, sizeof(*j))) == NULL)
		return;
	snprintf(j->from, sizeof(j->from), "%s", e->sender_handle);
	j->device = e->sender_device;
	if (wire__forward_bundle_decode(ct->payload, ct->payload_len, &j->b, why, sizeof(why)) != PARLEY_OK) {
		refuse(c, j->from, j->device, "%s", why);
		import_free(c, j);
		return;
	}
	j->next = c->fwd_imports;
	c->fwd_imports = j;
	if (parley_entity_get_start(c, j->b->entity, on_entity, j) != PARLEY_OK) {
		refuse(c, j->from, j->device, "entity %s could not be fetched", j->b->entity);
		import_free(c, j);
	}
}

/* ---- history chunks ---- */

/* The remembered forward of (forward_id, from, device): *found, its thread, chunk count, imported. */
static int load_forward(parley_client *c, uint64_t forward_id, const char *from, uint32_t device, int *found,
			uint64_t *thread_id, uint32_t *chunks, uint64_t *imported)
{
	sqlite3_stmt *st = NULL;
	int rc = client__forward_ready(c);

	*found = 0;
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "SELECT thread_id, chunks, imported FROM forwards WHERE forward_id = ? AND"
				      " from_handle = ? AND from_device = ?",
				      &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)forward_id);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, device);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found = 1;
		*thread_id = (uint64_t)sqlite3_column_int64(st, 0);
		*chunks = (uint32_t)sqlite3_column_int64(st, 1);
		*imported = (uint64_t)sqlite3_column_int64(st, 2);
		rc = PARLEY_OK;
	} else {
		rc = rc == SQLITE_DONE ? PARLEY_OK : client__sql_err(c);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Records chunk seq as imported (*fresh = 0 when it already was) and adds n to the forward's count;
 * *got = the chunks imported so far. */
static int mark_chunk(parley_client *c, uint64_t forward_id, const char *from, uint32_t device, uint32_t seq,
		      size_t n, int *fresh, uint64_t *got)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  "INSERT OR IGNORE INTO forward_chunks (forward_id, from_handle, from_device, seq)"
				  " VALUES (?, ?, ?, ?)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)forward_id);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, device);
	sqlite3_bind_int64(st, 4, seq);
	rc = client__sql_done(c, st);
	*fresh = rc == PARLEY_OK && sqlite3_changes(client__state_db(c->state)) == 1;
	if (rc == PARLEY_OK && *fresh)
		rc = client__sql_prep(c,
				      "UPDATE forwards SET imported = imported + ? WHERE forward_id = ? AND from_handle = ?"
				      " AND from_device = ?",
				      &st);
	if (rc == PARLEY_OK && *fresh) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)forward_id);
		sqlite3_bind_text(st, 3, from, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, device);
		rc = client__sql_done(c, st);
	}
	if (rc == PARLEY_OK)
		rc = client__sql_prep(c,
				      "SELECT count(*) FROM forward_chunks WHERE forward_id = ? AND from_handle = ? AND"
				      " from_device = ?",
				      &st);
	if (rc == PARLEY_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)forward_id);
		sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, device);
		*got = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
		sqlite3_finalize(st);
	}
	return rc;
}

static void import_chunk(parley_client *c, const char *from, uint32_t device, const uint8_t *buf, size_t len)
{
	Parley__Wire__ForwardHistory *h = NULL;
	parley_thread_forwarded f;
	client_thread t;
	uint64_t thread_id = 0, imported = 0, got = 0;
	uint32_t chunks = 0;
	char why[200] = "";
	int found = 0, fresh = 0, rc;

	if (wire__forward_history_decode(buf, len, &h, why, sizeof(why)) != PARLEY_OK) {
		refuse(c, from, device, "%s", why);
		return;
	}
	rc = load_forward(c, h->forward_id, from, device, &found, &thread_id, &chunks, &imported);
	if (rc == PARLEY_OK && !found) {
		/* its bundle may still be under check: then it waits with it */
		for (fwd_import *j = c->fwd_imports; j != NULL; j = j->next)
			if (j->b->forward_id == h->forward_id && strcmp(j->from, from) == 0 && j->device == device &&
			    j->nheld < FWD_HELD_MAX && (j->held[j->nheld] = parley__malloc(len)) != NULL) {
				memcpy(j->held[j->nheld], buf, len);
				j->held_len[j->nheld++] = len;
				wire__forward_history_free(h);
				return;
			}
		refuse(c, from, device, "a history chunk for no forward accepted from that device");
	} else if (rc == PARLEY_OK && (h->thread_id != thread_id || h->seq >= chunks)) {
		refuse(c, from, device, "a history chunk that does not match its forward");
	} else if (rc == PARLEY_OK) {
		rc = mark_chunk(c, h->forward_id, from, device, h->seq, h->n_entries, &fresh, &got);
		for (size_t i = 0; rc == PARLEY_OK && fresh && i < h->n_entries; i++) {
			const Parley__Wire__ForwardHistoryEntry *e = h->entries[i];
			rc = client__history_thread(c, thread_id, e->sender, e->sender_device, e->timestamp,
						    e->server_timestamp, 0, 1, e->body.data, e->body.len);
		}
		if (rc == PARLEY_OK && fresh && client__thread_load(c, thread_id, &t) == PARLEY_OK) {
			memset(&f, 0, sizeof(f));
			f.thread_id = thread_id;
			f.entity = t.entity;
			f.from = from;
			f.note = "";
			f.history = (size_t)(imported + h->n_entries);
			f.history_complete = got >= chunks;
			client__thread_emit_forwarded(c, &f);
		}
		if (rc != PARLEY_OK)
			refuse(c, from, device, "history could not be stored: %s", parley_strerror((parley_err)rc));
	}
	wire__forward_history_free(h);
}

void client__forward_receive(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct)
{
	if (ct->payload == NULL || ct->payload_len == 0) {
		refuse(c, e->sender_handle, e->sender_device, "no payload");
		return;
	}
	if (ct->kind == CONTENT_KIND_FORWARD)
		receive_bundle(c, e, ct);
	else
		import_chunk(c, e->sender_handle, e->sender_device, ct->payload, ct->payload_len);
}
