/* Store, entity enrolment (docs/protocol.md §12.3, §12.5): one-time codes (hashed), the guess
 * buckets, join requests, an approval by an admin without the entity key, and the decision. The tables
 * are in the schema "server.entities" (entities.c); the helpers shared with the registry's ops are in
 * entities_internal.h. As there, every op checks its caller's role in its own transaction.
 */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/entities_internal.h"
#include "wire/approval.h"
#include "wire/stafflist.h"

enum { BUCKET_ENTITY = 1, BUCKET_ACCOUNT = 2 };

static const char SQL_COUNT_CODES[] = "SELECT count(*) FROM entity_codes WHERE entity_id = ?1 AND state = 0"
				      " AND expires_ms > ?2";
static const char SQL_INSERT_CODE[] = "INSERT INTO entity_codes(entity_id, code_hash, role, created_by,"
				      " created_ms, expires_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)";
static const char SQL_FIND_CODE[] = "SELECT c.id, c.role, c.expires_ms, c.state FROM entity_codes c"
				    " WHERE c.entity_id = ?1 AND c.code_hash = ?2";
static const char SQL_USE_CODE[] = "UPDATE entity_codes SET state = ?2, request_id = ?3 WHERE id = ?1";
static const char SQL_PENDING_OF[] = "SELECT count(*) FROM entity_requests WHERE entity_id = ?1 AND"
				     " account_id = ?2 AND state = 0";
static const char SQL_PENDING[] = "SELECT count(*) FROM entity_requests WHERE entity_id = ?1 AND state = 0";
static const char SQL_INSERT_REQ[] = "INSERT INTO entity_requests(entity_id, account_id, code_id, role,"
				     " account_key, devlist, state, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)";
static const char SQL_REQS[] = "SELECT r.id, r.account_id, r.created_ms, a.handle, r.role, r.account_key, r.devlist,"
			       " p.approval FROM entity_requests r JOIN accounts a ON a.id = r.account_id"
			       " LEFT JOIN entity_approvals p ON p.request_id = r.id WHERE r.entity_id = ?1 AND r.state = 0 AND (CAST(?2 AS BIGINT) = 0 OR r.id = ?2) ORDER BY r.id LIMIT ?3";
static const char SQL_DECIDE[] = "UPDATE entity_requests SET state = ?2, decided_by = ?3, decided_ms = ?4"
				 " WHERE id = ?1";
static const char SQL_DENY_CODE[] = "UPDATE entity_codes SET state = 2 WHERE request_id = ?1";
static const char SQL_APPROVAL[] = "INSERT INTO entity_approvals(request_id, approval, approver, created_ms)"
				   " VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DEVICE_KEY[] = "SELECT pubkey FROM devices WHERE account_id = ?1 AND device_id = ?2";
static const char SQL_BUCKET[] = "SELECT level, at_ms FROM entity_guesses WHERE kind = ?1 AND id = ?2";
static const char SQL_BUCKET_SET[] = "INSERT INTO entity_guesses(kind, id, level, at_ms) VALUES (?1, ?2, ?3, ?4)"
				     " ON CONFLICT(kind, id) DO UPDATE SET level = excluded.level, at_ms = excluded.at_ms";

int sql__entity_code(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, rc = sql__ent_load_admin(b, j, &e, &caller);
	int64_t n = 0;
	if (rc != PARLEY_OK)
		return rc;
	if (sql__query_int(b, SQL_COUNT_CODES, (int64_t)e.id, (int64_t)j->now_ms, &n) != SQL_ROW)
		return sql__error(b, "count codes");
	if (n >= (int64_t)j->ent.max_codes)
		return PARLEY_E_TOO_MANY_CODES;
	sql_stmt *s = sql__stmt(b, SQL_INSERT_CODE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)e.id);
	sql__bind_blob(s, 2, j->ent.code_hash, sizeof(j->ent.code_hash));
	sql__bind_i64(s, 3, j->ent.role);
	sql__bind_i64(s, 4, (int64_t)j->caller_account);
	sql__bind_i64(s, 5, (int64_t)j->now_ms);
	sql__bind_i64(s, 6, (int64_t)j->ent.expires_ms);
	int sr = sql__step_done(s);
	if (sr == SQL_CONSTRAINT)
		return PARLEY_E_EXISTS; /* 2^-60: the service draws again */
	return sr == SQL_DONE ? PARLEY_OK : sql__error(b, "insert code");
}

/* A leaky bucket row: its level drained to now; the wait until one more failure fits (0: it fits). */
static int bucket(store_be *b, int kind, uint64_t id, double cap, double per_ms, uint64_t now_ms, double *level,
		  uint64_t *wait)
{
	sql_stmt *s = sql__stmt(b, SQL_BUCKET);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, kind);
	sql__bind_i64(s, 2, (int64_t)id);
	*level = 0;
	int sr = sql__step(s);
	if (sr == SQL_ROW) {
		uint64_t at = (uint64_t)sql__col_i64(s, 1);
		*level = sql__col_double(s, 0) - (now_ms > at ? (double)(now_ms - at) * per_ms : 0);
		if (*level < 0)
			*level = 0;
	}
	sql__reset(s);
	if (sr != SQL_ROW && sr != SQL_DONE)
		return sql__error(b, "guess bucket");
	*wait = *level + 1 > cap ? (uint64_t)((*level + 1 - cap) / per_ms) + 1 : 0;
	return PARLEY_OK;
}

static int bucket_set(store_be *b, int kind, uint64_t id, double level, uint64_t now_ms)
{
	sql_stmt *s = sql__stmt(b, SQL_BUCKET_SET);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, kind);
	sql__bind_i64(s, 2, (int64_t)id);
	sql__bind_double(s, 3, level);
	sql__bind_i64(s, 4, (int64_t)now_ms);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "guess bucket");
}

/* Looks the code up: its id and role, or the refusal it earns. */
static int find_code(store_be *b, store_job *j, uint64_t entity, int64_t *code_id, int *role)
{
	sql_stmt *s = sql__stmt(b, SQL_FIND_CODE);
	int rc;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)entity);
	sql__bind_blob(s, 2, j->ent.code_hash, sizeof(j->ent.code_hash));
	int sr = sql__step(s);
	if (sr == SQL_ROW) {
		int state = sql__col_int(s, 3);
		*code_id = sql__col_i64(s, 0);
		*role = sql__col_int(s, 1);
		rc = state == CODE_DENIED  ? PARLEY_E_ENROL_CODE_DENIED
		     : state == CODE_USED ? PARLEY_E_ENROL_CODE_USED
		     : (uint64_t)sql__col_i64(s, 2) <= j->now_ms ? PARLEY_E_ENROL_CODE_EXPIRED
									   : PARLEY_OK;
	} else {
		rc = sr == SQL_DONE ? PARLEY_E_ENROL_CODE_UNKNOWN : sql__error(b, "code");
	}
	sql__reset(s);
	return rc;
}

static int insert_request(store_be *b, store_job *j, uint64_t entity, int64_t code_id, int role)
{
	sql_stmt *s = sql__stmt(b, SQL_INSERT_REQ);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)entity);
	sql__bind_i64(s, 2, (int64_t)j->caller_account);
	sql__bind_i64(s, 3, code_id);
	sql__bind_i64(s, 4, role);
	sql__bind_blob(s, 5, j->ent.entity_key, STORE_SIGNAL_KEY_LEN);
	sql__bind_blob(s, 6, j->ent.devlist != NULL ? (const void *)j->ent.devlist : (const void *)"",
		       j->ent.devlist_len);
	sql__bind_i64(s, 7, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "insert request");
	j->ent.request_id = (uint64_t)sql__last_id(b);
	return sql__ent_exec3(b, SQL_USE_CODE, code_id, CODE_USED, (int64_t)j->ent.request_id, "use code");
}

static int read_requests(store_be *b, store_job *j, uint64_t entity, uint64_t only);

/* A refused code is not a failed job: the guess it costs must commit (a rolled-back count would let
 * an attacker guess forever), so the refusal travels in j->ent.refusal with status OK. */
int sql__entity_join(store_be *b, store_job *j)
{
	store_ent_args *a = &j->ent;
	ent_row e = {0};
	int role = 0, rc = sql__ent_load(b, j, &e, 0);
	int64_t n = 0, code_id = 0;
	double le = 0, la = 0;
	uint64_t we = 0, wa = 0;
	if (rc == PARLEY_OK)
		rc = sql__ent_role(b, e.id, j->caller_account, &role);
	if (rc == PARLEY_OK && role != 0)
		rc = PARLEY_E_ALREADY_MEMBER;
	if (rc == PARLEY_OK && sql__query_int(b, SQL_PENDING_OF, (int64_t)e.id, (int64_t)j->caller_account, &n) !=
				       SQL_ROW)
		rc = sql__error(b, "pending");
	if (rc == PARLEY_OK && n > 0)
		rc = PARLEY_E_REQUEST_PENDING;
	if (rc == PARLEY_OK)
		rc = bucket(b, BUCKET_ENTITY, e.id, a->guess_cap, a->guess_per_ms, j->now_ms, &le, &we);
	if (rc == PARLEY_OK)
		rc = bucket(b, BUCKET_ACCOUNT, j->caller_account, a->acct_cap, a->acct_per_ms, j->now_ms, &la, &wa);
	if (rc != PARLEY_OK)
		return rc;
	if (we > 0 || wa > 0) {
		/* limited: even the right code is refused, or the limit would be an oracle */
		a->refusal = PARLEY_E_ENROL_RATE_LIMITED;
		a->retry_after_ms = we > wa ? we : wa;
		return PARLEY_OK;
	}
	rc = find_code(b, j, e.id, &code_id, &role);
	if (rc == PARLEY_E_ENROL_CODE_UNKNOWN || rc == PARLEY_E_ENROL_CODE_EXPIRED || rc == PARLEY_E_ENROL_CODE_USED ||
	    rc == PARLEY_E_ENROL_CODE_DENIED) {
		a->refusal = rc;
		rc = bucket_set(b, BUCKET_ENTITY, e.id, le + 1, j->now_ms);
		return rc == PARLEY_OK ? bucket_set(b, BUCKET_ACCOUNT, j->caller_account, la + 1, j->now_ms) : rc;
	}
	if (rc != PARLEY_OK)
		return rc;
	if (sql__query_int(b, SQL_PENDING, (int64_t)e.id, 0, &n) != SQL_ROW)
		return sql__error(b, "pending");
	if (n >= (int64_t)a->max_pending)
		return PARLEY_E_TOO_MANY_PENDING;
	rc = insert_request(b, j, e.id, code_id, role);
	if (rc == PARLEY_OK)
		rc = read_requests(b, j, e.id, a->request_id);
	if (rc == PARLEY_OK)
		rc = sql__ent_members(b, j, e.id, 1, NULL);
	return rc;
}

/* A blob column copied into the job's heap (*out NULL for NULL or empty). */
static int col_copy(sql_stmt *s, int col, uint8_t **out, size_t *len)
{
	size_t n = (size_t)sql__col_bytes(s, col);
	*out = NULL;
	*len = 0;
	if (n == 0)
		return PARLEY_OK;
	if ((*out = parley__malloc(n)) == NULL)
		return PARLEY_E_NOMEM;
	memcpy(*out, sql__col_blob(s, col), n);
	*len = n;
	return PARLEY_OK;
}

static int read_requests(store_be *b, store_job *j, uint64_t entity, uint64_t only)
{
	store_ent_args *a = &j->ent;
	sql_stmt *s = sql__stmt(b, SQL_REQS);
	int sr = SQL_DONE, rc = PARLEY_OK;
	if (s == NULL)
		return PARLEY_E_STORE;
	a->reqs = parley__calloc(STORE_ENT_MAX_REQUESTS, sizeof(*a->reqs));
	if (a->reqs == NULL)
		return PARLEY_E_NOMEM;
	sql__bind_i64(s, 1, (int64_t)entity);
	sql__bind_i64(s, 2, (int64_t)only);
	sql__bind_i64(s, 3, STORE_ENT_MAX_REQUESTS);
	/* a copy that failed is an error, not an empty list: an approval's hash covers the bytes */
	while (rc == PARLEY_OK && (sr = sql__step(s)) == SQL_ROW && a->n_reqs < STORE_ENT_MAX_REQUESTS) {
		store_ent_request *r = &a->reqs[a->n_reqs++];
		const unsigned char *h = sql__col_text(s, 3);
		r->id = (uint64_t)sql__col_i64(s, 0);
		r->account_id = (uint64_t)sql__col_i64(s, 1);
		r->created_ms = (uint64_t)sql__col_i64(s, 2);
		snprintf(r->handle, sizeof(r->handle), "%s", h ? (const char *)h : "");
		r->role = sql__col_int(s, 4);
		sql__col_blob_n(s, 5, r->account_key, STORE_SIGNAL_KEY_LEN);
		rc = col_copy(s, 6, &r->devlist, &r->devlist_len);
		if (rc == PARLEY_OK)
			rc = col_copy(s, 7, &r->approval, &r->approval_len);
	}
	sql__reset(s);
	if (rc != PARLEY_OK)
		return rc;
	return sr == SQL_DONE || sr == SQL_ROW ? PARLEY_OK : sql__error(b, "requests");
}

int sql__entity_requests(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, rc = sql__ent_load_admin(b, j, &e, &caller);
	return rc == PARLEY_OK ? read_requests(b, j, e.id, 0) : rc;
}

/* The Ed25519 key of the caller's device: the one it authenticated with. */
static int device_key(store_be *b, const store_job *j, uint8_t key[32])
{
	sql_stmt *s = sql__stmt(b, SQL_DEVICE_KEY);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->caller_account);
	sql__bind_i64(s, 2, (int64_t)j->caller_device);
	int sr = sql__step(s);
	if (sr == SQL_ROW)
		sql__col_blob_n(s, 0, key, 32);
	sql__reset(s);
	/* the store checked the caller's device exists before the op: no row here is a store fault */
	return sr == SQL_ROW ? PARLEY_OK : sql__error(b, "device key");
}

/* An admin without the entity key approves: the record must be signed by the caller's own device and
 * name exactly this request as stored (entity, id, candidate and its key, role, device list) and this
 * caller as the approver; else APPROVAL_INVALID. It only keeps garbage out: the entity key's holder
 * checks it again against the signed staff list, and signs (or not). The signature is checked here,
 * on the store thread, because the device key is here: one Ed25519 verification (tens of
 * microseconds) for a rare admin call, against the key the device has in the transaction that keeps
 * the approval. The request stays pending; the admins are told (the route) with the approval. */
static int record_approval(store_be *b, store_job *j, store_ent_request *r, uint64_t entity)
{
	static const uint8_t none[1];
	uint8_t key[32], hash[32];
	wire_approval a;
	int rc;
	if (r->approval != NULL)
		return PARLEY_E_ALREADY_APPROVED;
	rc = device_key(b, j, key);
	if (rc != PARLEY_OK)
		return rc;
	if (wire__approval_verify(j->ent.approval, j->ent.approval_len, key, &a) != PARLEY_OK)
		return PARLEY_E_APPROVAL_INVALID;
	wire__approval_devlist_hash(r->devlist != NULL ? r->devlist : none, r->devlist_len, hash);
	if (strcmp(a.entity, j->ent.entity) != 0 || a.request_id != r->id || a.candidate_id != r->account_id ||
	    memcmp(a.candidate_key, r->account_key, sizeof(a.candidate_key)) != 0 || a.role != r->role ||
	    memcmp(a.devlist_hash, hash, sizeof(hash)) != 0 || a.approver_id != j->caller_account ||
	    a.approver_device != j->caller_device)
		return PARLEY_E_APPROVAL_INVALID;
	sql_stmt *s = sql__stmt(b, SQL_APPROVAL);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)r->id);
	sql__bind_blob(s, 2, j->ent.approval, (int)j->ent.approval_len);
	sql__bind_i64(s, 3, (int64_t)j->caller_account);
	sql__bind_i64(s, 4, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "approval");
	/* the push (EntityJoinRequested) carries the request as it is now */
	r->approval = parley__malloc(j->ent.approval_len);
	if (r->approval == NULL)
		return PARLEY_E_NOMEM;
	memcpy(r->approval, j->ent.approval, j->ent.approval_len);
	r->approval_len = j->ent.approval_len;
	return sql__ent_members(b, j, entity, 1, NULL);
}

int sql__entity_decide(store_be *b, store_job *j)
{
	ent_row e = {0};
	int caller = 0, rc = sql__ent_load_admin(b, j, &e, &caller);
	if (rc == PARLEY_OK)
		rc = read_requests(b, j, e.id, j->ent.request_id);
	if (rc != PARLEY_OK)
		return rc;
	if (j->ent.n_reqs != 1)
		return PARLEY_E_NO_SUCH_REQUEST;
	store_ent_request *r = &j->ent.reqs[0];
	j->ent.target_account = r->account_id;
	if (j->ent.approval != NULL)
		return record_approval(b, j, r, e.id);
	sql_stmt *s = sql__stmt(b, SQL_DECIDE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)r->id);
	sql__bind_i64(s, 2, j->ent.approve ? REQ_APPROVED : REQ_DENIED);
	sql__bind_i64(s, 3, (int64_t)j->caller_account);
	sql__bind_i64(s, 4, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "decide");
	if (!j->ent.approve)
		return sql__ent_exec3(b, SQL_DENY_CODE, (int64_t)r->id, 0, 0, "deny code");
	rc = sql__ent_room(b, j, e.id);
	if (rc == PARLEY_OK)
		rc = sql__ent_add_member(b, e.id, r->account_id, r->role, j->now_ms);
	return rc == PARLEY_OK ? sql__ent_check_list(b, j, &e) : rc;
}
