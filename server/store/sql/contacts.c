/* Store, message requests: who accepted whom, and who shares presence.
 *
 * contacts(owner, peer, last_ms): `owner` accepted `peer`, by sending it anything (a SEND records it) or
 * with an explicit ContactRequest{accept}. The relation is directed on purpose: a stranger who writes
 * to a victim only records its own acceptance of the victim, and since receipts now travel inside the
 * encrypted content the victim's client sends nothing back (no receipt either) until its user replies
 * or accepts. Presence and typing need both directions (THREAD_PEERS, FIND_PEER), so one unsolicited
 * send buys the stranger neither. A decline deletes the owner's row.
 *
 * last_ms is refreshed by sends (at most once per CONTACT_TOUCH_MS, so a busy conversation does not
 * write the row on every message) and by accepts; rows unused for contact_ttl_s are pruned with the
 * relay's periodic purge (PRUNE_CONTACTS), so the server does not keep a permanent who-talked-to-whom
 * record either.
 *
 * presence_settings(account_id, share): an account's explicit choice; without a row the server's
 * presence_share_default applies (passed in the job).
 *
 * This replaces the undirected `threads` table of the "server" schema (any send, even one receipt,
 * made a permanent two-way row): its rows are dropped, as they cannot say who accepted whom.
 */
#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/sql.h"

#define MAX_PEERS_DEFAULT 1024u
#define PRUNE_LIMIT_DEFAULT 10000u
#define CONTACT_TOUCH_MS 3600000 /* a send refreshes last_ms at most hourly (pruning is in days) */

/* ?4 = the least age of last_ms worth a write (0: always) */
static const char SQL_UPSERT[] = "INSERT INTO contacts(owner, peer, last_ms) VALUES (?1, ?2, ?3)"
				 " ON CONFLICT(owner, peer) DO UPDATE SET last_ms = excluded.last_ms"
				 " WHERE excluded.last_ms - contacts.last_ms >= ?4";
static const char SQL_DELETE[] = "DELETE FROM contacts WHERE owner = ?1 AND peer = ?2";
/* mutual contacts of ?1, none when ?1 does not share its presence (?3: the default), unless ?4. The
 * 0/1 flags are compared, not used as truth values: PostgreSQL's OR takes booleans only */
static const char SQL_PEERS[] = "SELECT c.peer FROM contacts c JOIN contacts r ON r.owner = c.peer AND r.peer = c.owner"
				" WHERE c.owner = ?1 AND (CAST(?4 AS BIGINT) <> 0 OR coalesce((SELECT share FROM"
				" presence_settings WHERE account_id = ?1), ?3) <> 0) LIMIT ?2";
static const char SQL_MUTUAL[] = "SELECT count(*) FROM contacts WHERE (owner = ?1 AND peer = ?2)"
				 " OR (owner = ?2 AND peer = ?1)";
static const char SQL_PRESENCE[] = "INSERT INTO presence_settings(account_id, share) VALUES (?1, ?2)"
				   " ON CONFLICT(account_id) DO UPDATE SET share = excluded.share";
static const char SQL_PRUNE[] = "DELETE FROM contacts WHERE (owner, peer) IN"
				" (SELECT owner, peer FROM contacts WHERE last_ms < ?1 LIMIT ?2)";

static int upsert(store_be *b, uint64_t owner, uint64_t peer, uint64_t now_ms, int64_t min_age)
{
	sql_stmt *s = sql__stmt(b, SQL_UPSERT);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)owner);
	sql__bind_i64(s, 2, (int64_t)peer);
	sql__bind_i64(s, 3, (int64_t)now_ms);
	sql__bind_i64(s, 4, min_age);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "contact");
}

int sql__contact_touch(store_be *b, uint64_t sender, uint64_t recipient, uint64_t now_ms)
{
	return upsert(b, sender, recipient, now_ms, CONTACT_TOUCH_MS);
}

int sql__contact_set(store_be *b, store_job *j)
{
	uint64_t peer = 0;
	int rc = sql__account_by_handle(b, j->handle, &peer);
	if (rc != PARLEY_OK)
		return rc;
	j->relay.recipient_account = peer;
	if (peer == j->account_id)
		return PARLEY_OK; /* one's own account: nothing to accept */
	if (j->relay.shared)
		return upsert(b, j->account_id, peer, j->now_ms, 0);
	sql_stmt *s = sql__stmt(b, SQL_DELETE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, (int64_t)peer);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "decline");
}

int sql__presence_set(store_be *b, store_job *j)
{
	sql_stmt *s = sql__stmt(b, SQL_PRESENCE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, j->relay.shared != 0);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "presence setting");
}

int sql__thread_peers(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	unsigned limit = m->limit ? m->limit : MAX_PEERS_DEFAULT;
	sql_stmt *s = sql__stmt(b, SQL_PEERS);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	m->peers = parley__calloc(limit, sizeof(*m->peers));
	if (m->peers == NULL)
		return PARLEY_E_NOMEM;
	sql__bind_i64(s, 1, (int64_t)j->account_id);
	sql__bind_i64(s, 2, limit);
	sql__bind_i64(s, 3, (m->shared & STORE_PEERS_DEFAULT_SHARE) != 0);
	sql__bind_i64(s, 4, (m->shared & STORE_PEERS_FORCE) != 0);
	for (;;) {
		sr = sql__step(s);
		if (sr != SQL_ROW || m->n_peers >= limit)
			break;
		m->peers[m->n_peers++] = (uint64_t)sql__col_i64(s, 0);
	}
	sql__reset(s);
	return (sr == SQL_DONE || sr == SQL_ROW) ? PARLEY_OK : sql__error(b, "contact peers");
}

int sql__find_peer(store_be *b, store_job *j)
{
	uint64_t peer = 0;
	int64_t n = 0;
	int rc = sql__account_by_handle(b, j->handle, &peer);
	if (rc != PARLEY_OK)
		return rc;
	if (sql__query_int(b, SQL_MUTUAL, (int64_t)j->account_id, (int64_t)peer, &n) != SQL_ROW)
		return sql__error(b, "mutual contact");
	j->relay.shared = n == 2 && peer != j->account_id;
	j->relay.recipient_account = peer;
	return PARLEY_OK;
}

int sql__prune_contacts(store_be *b, store_job *j)
{
	store_relay_args *m = &j->relay;
	sql_stmt *s = sql__stmt(b, SQL_PRUNE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->now_ms);
	sql__bind_i64(s, 2, m->limit ? m->limit : PRUNE_LIMIT_DEFAULT);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "prune contacts");
	m->n_deleted = (uint64_t)sql__changes(b);
	return PARLEY_OK;
}
