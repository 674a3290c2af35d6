/* Store, customer authentication requests (docs/protocol.md §14.2): a staff member's request
 * to the thread's customer, its answer (a one-time code checked here; a sign-in or an assertion that
 * the service verified off the store thread), the binding of the identity to the thread's customer, the
 * credential and the thread's level, and the timer's expiry of both.
 *
 * An answer that is refused still changes state (a wrong code counts an attempt, a refused sign-in
 * closes the request as FAILED), and a job's savepoint is rolled back when it fails: so these ops
 * succeed and put the answer's own code in auth.outcome. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "auth/jose.h"
#include "common/alloc.h"
#include "store/sql/auth_internal.h"
#include "wire/wire_auth.h"

#define REQ_COLS                                                                                     \
	"r.id, r.thread_id, r.component_id, c.name, c.type, r.expires_ms, r.status, r.error, r.token," \
	" r.state, r.nonce, r.verifier, r.otp_mac, r.attempts"
static const char SQL_REQ_BY_ID[] = "SELECT " REQ_COLS " FROM auth_requests r JOIN auth_components c"
				    " ON c.id = r.component_id WHERE r.id = ?1";
static const char SQL_REQ_BY_TOKEN[] = "SELECT " REQ_COLS " FROM auth_requests r JOIN auth_components c"
				       " ON c.id = r.component_id WHERE r.token = ?1";
static const char SQL_REQ_BY_STATE[] = "SELECT " REQ_COLS " FROM auth_requests r JOIN auth_components c"
				       " ON c.id = r.component_id WHERE r.state = ?1";
static const char SQL_REQS_OF[] = "SELECT " REQ_COLS " FROM auth_requests r JOIN auth_components c"
				  " ON c.id = r.component_id WHERE r.thread_id = ?1 ORDER BY r.id DESC LIMIT ?2";
static const char SQL_REQS_EXPIRED[] = "SELECT " REQ_COLS " FROM auth_requests r JOIN auth_components c"
				       " ON c.id = r.component_id WHERE r.status = 1 AND r.expires_ms <= ?1"
				       " ORDER BY r.expires_ms LIMIT ?2";
static const char SQL_COUNT_OPEN[] = "SELECT count(*) FROM auth_requests WHERE thread_id = ?1 AND status = 1"
				     " AND expires_ms > ?2";
static const char SQL_NEW_REQ[] = "INSERT INTO auth_requests(thread_id, component_id, token, state, nonce, verifier,"
				  " status, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)";
static const char SQL_SET_MAC[] = "UPDATE auth_requests SET otp_mac = ?2 WHERE id = ?1";
static const char SQL_SET_STATUS[] = "UPDATE auth_requests SET status = ?2, error = ?3, attempts = ?4 WHERE id = ?1";
static const char SQL_LINK[] = "SELECT sub FROM auth_links WHERE component_id = ?1 AND account_id = ?2"
			       " AND channel = ?3 AND channel_user = ?4";
static const char SQL_NEW_LINK[] = "INSERT INTO auth_links(component_id, account_id, channel, channel_user, sub,"
				   " linked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_NEW_CRED[] = "INSERT INTO auth_credentials(thread_id, request_id, component_id, token_hash,"
				   " sub, email, phone, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_SET_LEVEL[] = "INSERT INTO auth_thread_level(thread_id, credential_id, until_ms, verified_by)"
				    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(thread_id) DO UPDATE SET"
				    " credential_id = excluded.credential_id, until_ms = excluded.until_ms,"
				    " verified_by = excluded.verified_by";
static const char SQL_LEVELS_EXPIRED[] = "SELECT thread_id FROM auth_thread_level WHERE until_ms <= ?1"
					 " ORDER BY until_ms LIMIT ?2";
static const char SQL_DROP_LEVEL[] = "DELETE FROM auth_thread_level WHERE thread_id = ?1";
static const char SQL_CLAIMS[] = "SELECT c.sub, c.email, c.phone FROM auth_thread_level l JOIN auth_credentials c"
				 " ON c.id = l.credential_id WHERE l.thread_id = ?1";

/* live jti rows of the component's entity (the auth_jti_cache bound) */
static const char SQL_JTI_COUNT[] = "SELECT count(*) FROM auth_jti WHERE exp_ms > ?2 AND component_id IN"
				    " (SELECT id FROM auth_components WHERE entity_id ="
				    " (SELECT entity_id FROM auth_components WHERE id = ?1))";
/* an expired row of the same jti is taken over (its token can no longer pass); a live one stays, and
 * no change is the replay */
static const char SQL_JTI_PUT[] = "INSERT INTO auth_jti(component_id, jti_hash, exp_ms) VALUES (?1, ?2, ?3)"
				  " ON CONFLICT(component_id, jti_hash) DO UPDATE SET exp_ms = excluded.exp_ms"
				  " WHERE auth_jti.exp_ms <= ?4";
static const char SQL_JTI_SWEEP[] = "DELETE FROM auth_jti WHERE (component_id, jti_hash) IN"
				    " (SELECT component_id, jti_hash FROM auth_jti WHERE exp_ms <= ?1 LIMIT ?2)";

/* a request row with what only the store sees */
typedef struct req_row {
	store_auth_request r;
	char state[STORE_AUTH_TOKEN + 1], nonce[STORE_AUTH_TOKEN + 1], verifier[STORE_AUTH_TOKEN + 1];
	uint8_t otp_mac[JOSE_OTP_MAC_LEN];
	int has_mac;
	unsigned attempts;
} req_row;

static void read_req(sql_stmt *s, req_row *q)
{
	memset(q, 0, sizeof(*q));
	q->r.id = (uint64_t)sql__col_i64(s, 0);
	q->r.thread_id = (uint64_t)sql__col_i64(s, 1);
	q->r.component_id = (uint64_t)sql__col_i64(s, 2);
	sql__auth_col_text(s, 3, q->r.component, sizeof(q->r.component));
	q->r.type = sql__col_int(s, 4);
	q->r.expires_ms = (uint64_t)sql__col_i64(s, 5);
	q->r.status = sql__col_int(s, 6);
	q->r.error = (uint32_t)sql__col_i64(s, 7);
	sql__auth_col_text(s, 8, q->r.token, sizeof(q->r.token));
	sql__auth_col_text(s, 9, q->state, sizeof(q->state));
	sql__auth_col_text(s, 10, q->nonce, sizeof(q->nonce));
	sql__auth_col_text(s, 11, q->verifier, sizeof(q->verifier));
	if (sql__col_bytes(s, 12) == JOSE_OTP_MAC_LEN) {
		sql__col_blob_n(s, 12, q->otp_mac, JOSE_OTP_MAC_LEN);
		q->has_mac = 1;
	}
	q->attempts = (unsigned)sql__col_i64(s, 13);
}

/* One request by id (text NULL) or by token / state (text): PARLEY_E_NO_SUCH_AUTH_REQUEST. */
static int load_req(store_be *b, const char *sql, uint64_t id, const char *text, req_row *q)
{
	sql_stmt *s = sql__stmt(b, sql);
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	if (text != NULL)
		sql__bind_text(s, 1, text, -1);
	else
		sql__bind_i64(s, 1, (int64_t)id);
	sr = sql__step(s);
	if (sr == SQL_ROW)
		read_req(s, q);
	sql__reset(s);
	if (sr == SQL_DONE)
		return PARLEY_E_NO_SUCH_AUTH_REQUEST;
	return sr == SQL_ROW ? PARLEY_OK : sql__error(b, "auth request");
}

static int one_int(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t *v)
{
	return sql__query_int(b, sql, p1, p2, v) == SQL_ROW ? PARLEY_OK : sql__error(b, "auth count");
}

/* The job's thread (allocated on first use), loaded with its level. */
static int job_thread(store_be *b, store_job *j, uint64_t thread_id, store_thread_info **out)
{
	if (j->auth.thread == NULL && (j->auth.thread = parley__calloc(1, sizeof(*j->auth.thread))) == NULL)
		return PARLEY_E_NOMEM;
	*out = j->auth.thread;
	return sql__thr_load(b, thread_id, *out);
}

int sql__auth_start(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	store_thread_info *t;
	store_auth_component c;
	thr_staff st;
	int admin, rc;
	int64_t open;
	sql_stmt *s;

	if ((rc = job_thread(b, j, a->thread_id, &t)) != PARLEY_OK)
		return rc;
	if ((rc = sql__thr_staff(b, t->entity_id, &st)) != PARLEY_OK)
		return rc;
	/* a staff member of the thread: the customer (or its gateway) never sends itself a request */
	rc = sql__auth_staff_role(&st, j->caller_account, &admin);
	sql__thr_staff_free(&st);
	if (rc == PARLEY_OK && !sql__thr_is_member(t, j->caller_account))
		rc = PARLEY_E_NOT_THREAD_MEMBER;
	if (rc == PARLEY_OK && t->customer == j->caller_account)
		rc = PARLEY_E_NOT_ENTITY_MEMBER;
	if (rc != PARLEY_OK)
		return rc;
	if (t->status == THR_CLOSED)
		return PARLEY_E_THREAD_CLOSED;
	if ((rc = sql__auth_comp_load(b, a->component_id, &c)) != PARLEY_OK)
		return rc;
	if (c.entity_id != t->entity_id)
		return PARLEY_E_NO_SUCH_COMPONENT;
	if (c.state != STORE_COMP_ACTIVE)
		return PARLEY_E_COMPONENT_NOT_ACTIVE;
	if ((rc = one_int(b, SQL_COUNT_OPEN, (int64_t)t->thread_id, (int64_t)j->now_ms, &open)) != PARLEY_OK)
		return rc;
	if (open >= (int64_t)a->limit)
		return PARLEY_E_TOO_MANY_AUTH_REQUESTS;
	if ((s = sql__stmt(b, SQL_NEW_REQ)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, (int64_t)c.id);
	sql__bind_text(s, 3, a->x->token, -1);
	sql__bind_text(s, 4, a->x->state_tok, -1);
	sql__bind_text(s, 5, a->x->nonce, -1);
	sql__bind_text(s, 6, a->x->verifier, -1);
	sql__bind_i64(s, 7, (int64_t)j->now_ms);
	sql__bind_i64(s, 8, (int64_t)(j->now_ms + a->ttl_ms));
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth request insert");
	memset(&a->x->req, 0, sizeof(a->x->req));
	a->x->req.id = (uint64_t)sql__last_id(b);
	a->x->req.thread_id = t->thread_id;
	a->x->req.component_id = c.id;
	memcpy(a->x->req.component, c.name, sizeof(a->x->req.component));
	a->x->req.type = c.type;
	a->x->req.status = STORE_AREQ_OPEN;
	a->x->req.expires_ms = j->now_ms + a->ttl_ms;
	memcpy(a->x->req.token, a->x->token, sizeof(a->x->req.token));
	if (c.type == STORE_AUTH_OTP) {
		char idtext[24];
		uint8_t mac[JOSE_OTP_MAC_LEN];
		int n = snprintf(idtext, sizeof(idtext), "%llu", (unsigned long long)a->x->req.id);
		jose__otp_mac(mac, a->x->otp_key, sizeof(a->x->otp_key), idtext, (size_t)n, a->x->otp, strlen(a->x->otp));
		if ((s = sql__stmt(b, SQL_SET_MAC)) == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)a->x->req.id);
		sql__bind_blob(s, 2, mac, sizeof(mac));
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "auth otp");
	}
	return PARLEY_OK;
}

static int set_status(store_be *b, store_auth_args *a, const req_row *q, int status, int error, unsigned attempts)
{
	sql_stmt *s = sql__stmt(b, SQL_SET_STATUS);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)q->r.id);
	sql__bind_i64(s, 2, status);
	sql__bind_i64(s, 3, error);
	sql__bind_i64(s, 4, attempts);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth request status");
	a->x->req = q->r;
	a->x->req.status = status;
	a->x->req.error = (uint32_t)error;
	a->outcome = error;
	return PARLEY_OK;
}

/* The sub binding: the customer's linked subject, linked at its first success. */
static int bind_sub(store_be *b, const store_job *j, const store_thread_info *t, uint64_t component)
{
	sql_stmt *s = sql__stmt(b, SQL_LINK);
	char linked[257] = "";
	int sr;
	if (s == NULL)
		return PARLEY_E_STORE;
	if (j->auth.x->ident.sub[0] == '\0')
		return PARLEY_E_IDENTITY_MISMATCH;
	sql__bind_i64(s, 1, (int64_t)component);
	sql__bind_i64(s, 2, (int64_t)t->customer);
	sql__bind_i64(s, 3, t->channel);
	sql__bind_text(s, 4, t->channel_user, -1);
	sr = sql__step(s);
	if (sr == SQL_ROW)
		sql__auth_col_text(s, 0, linked, sizeof(linked));
	sql__reset(s);
	if (sr == SQL_ROW)
		return strcmp(linked, j->auth.x->ident.sub) == 0 ? PARLEY_OK : PARLEY_E_IDENTITY_MISMATCH;
	if (sr != SQL_DONE || (s = sql__stmt(b, SQL_NEW_LINK)) == NULL)
		return sql__error(b, "auth link");
	sql__bind_i64(s, 1, (int64_t)component);
	sql__bind_i64(s, 2, (int64_t)t->customer);
	sql__bind_i64(s, 3, t->channel);
	sql__bind_text(s, 4, t->channel_user, -1);
	sql__bind_text(s, 5, j->auth.x->ident.sub, -1);
	sql__bind_i64(s, 6, (int64_t)j->now_ms);
	return sql__step_done(s) == SQL_DONE ? PARLEY_OK : sql__error(b, "auth link insert");
}

/* The email binding: a verified email the business recorded for this customer (no known email is no
 * proof: refused rather than trusted). The claim is compared in the stored form, lower-cased. */
static int bind_email(store_be *b, const store_job *j, const store_thread_info *t)
{
	const store_auth_identity *id = &j->auth.x->ident;
	char email[STORE_AUTH_EMAIL + 1];
	int known = 0, rc;

	if (id->email_verified != 1 || wire__auth_email_norm(id->email, email, sizeof(email)) != PARLEY_OK)
		return PARLEY_E_IDENTITY_MISMATCH;
	if ((rc = sql__auth_email_known(b, t, email, &known)) != PARLEY_OK)
		return rc;
	return known ? PARLEY_OK : PARLEY_E_IDENTITY_MISMATCH;
}

static int bind(store_be *b, const store_job *j, const store_thread_info *t, const store_auth_component *c)
{
	const store_auth_identity *id = &j->auth.x->ident;
	switch (c->binding) {
	case STORE_BIND_SUB:
		return bind_sub(b, j, t, c->id);
	case STORE_BIND_PHONE: /* only a carrier-vouched number can be compared: sms and waba threads */
		return (t->channel == 2 || t->channel == 3) && id->phone_verified == 1 &&
				       strcmp(id->phone, t->channel_user) == 0
			       ? PARLEY_OK
			       : PARLEY_E_IDENTITY_MISMATCH;
	case STORE_BIND_EMAIL:
		return bind_email(b, j, t);
	default:
		return PARLEY_OK;
	}
}

/* The credential and the thread's level: expires at the component's ttl, or the token's exp if sooner. */
static int credential(store_be *b, store_job *j, store_thread_info *t, const store_auth_component *c, const req_row *q)
{
	const store_auth_identity *id = &j->auth.x->ident;
	uint64_t until = j->now_ms + (uint64_t)c->credential_ttl_s * 1000u;
	sql_stmt *s = sql__stmt(b, SQL_NEW_CRED);
	int64_t cred;
	if (id->token_exp_ms != 0 && id->token_exp_ms < until)
		until = id->token_exp_ms;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, (int64_t)q->r.id);
	sql__bind_i64(s, 3, (int64_t)c->id);
	sql__bind_blob(s, 4, id->token_hash, sizeof(id->token_hash));
	sql__bind_text(s, 5, c->binding == STORE_BIND_SUB ? id->sub : "", -1);
	sql__bind_text(s, 6, c->binding == STORE_BIND_EMAIL ? id->email : "", -1);
	sql__bind_text(s, 7, c->binding == STORE_BIND_PHONE ? id->phone : "", -1);
	sql__bind_i64(s, 8, (int64_t)j->now_ms);
	sql__bind_i64(s, 9, (int64_t)until);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth credential");
	cred = sql__last_id(b);
	if ((s = sql__stmt(b, SQL_SET_LEVEL)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, cred);
	sql__bind_i64(s, 3, (int64_t)until);
	sql__bind_text(s, 4, c->name, -1);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth level set");
	t->verification = STORE_LEVEL_AUTHENTICATED;
	t->verified_until_ms = until;
	snprintf(t->verified_by, sizeof(t->verified_by), "%s", c->name);
	return PARLEY_OK;
}

/* An assertion's jti recorded until its exp: PARLEY_E_JWT_REPLAYED when a live row has it already,
 * PARLEY_E_SERVER_BUSY when the entity has auth_jti_cache live rows (the job fails and is rolled back:
 * the request stays open for a later answer). */
static int jti_record(store_be *b, const store_job *j, const store_auth_component *c)
{
	const store_auth_identity *id = &j->auth.x->ident;
	int64_t live = 0;
	sql_stmt *s;
	int rc;

	if (id->jti_exp_ms <= j->now_ms)
		return PARLEY_E_ID_TOKEN_CLAIMS; /* the service checked exp: not reached */
	if ((rc = one_int(b, SQL_JTI_COUNT, (int64_t)c->id, (int64_t)j->now_ms, &live)) != PARLEY_OK)
		return rc;
	if ((s = sql__stmt(b, SQL_JTI_PUT)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)c->id);
	sql__bind_blob(s, 2, id->jti_hash, sizeof(id->jti_hash));
	sql__bind_i64(s, 3, (int64_t)id->jti_exp_ms);
	sql__bind_i64(s, 4, (int64_t)j->now_ms);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth jti");
	if (sql__changes(b) == 0)
		return PARLEY_E_JWT_REPLAYED;
	/* counted before the insert: a replay is told as such even when the cache is full */
	return live >= (int64_t)j->auth.limit ? PARLEY_E_SERVER_BUSY : PARLEY_OK;
}

/* The answer to an open, unexpired request of an open thread. */
static int answer_open(store_be *b, store_job *j, store_thread_info *t, const req_row *q)
{
	store_auth_args *a = &j->auth;
	store_auth_component c;
	int rc;

	if (!a->external) {
		char idtext[24];
		int n = snprintf(idtext, sizeof(idtext), "%llu", (unsigned long long)q->r.id);
		if (q->r.type != STORE_AUTH_OTP || !q->has_mac)
			return PARLEY_E_INVAL; /* a sign-in is answered at the callback, not with a code */
		if (jose__otp_check(q->otp_mac, a->x->otp_key, sizeof(a->x->otp_key), idtext, (size_t)n, a->x->otp,
				    strlen(a->x->otp)) != PARLEY_OK) {
			unsigned tries = q->attempts + 1;
			if (tries >= a->limit)
				return set_status(b, a, q, STORE_AREQ_FAILED, PARLEY_E_OTP_ATTEMPTS, tries);
			rc = set_status(b, a, q, STORE_AREQ_OPEN, PARLEY_E_OTP_WRONG, tries);
			a->x->req.error = 0; /* still open: the error is this answer's, not the request's */
			return rc;
		}
	} else if (a->outcome_in != PARLEY_OK) {
		return set_status(b, a, q, STORE_AREQ_FAILED, a->outcome_in, q->attempts);
	}
	if ((rc = sql__auth_comp_load(b, q->r.component_id, &c)) != PARLEY_OK)
		return rc;
	if (a->external && c.type == STORE_AUTH_JWT && (rc = jti_record(b, j, &c)) != PARLEY_OK)
		return rc == PARLEY_E_JWT_REPLAYED ? set_status(b, a, q, STORE_AREQ_FAILED, rc, q->attempts) : rc;
	if ((rc = bind(b, j, t, &c)) == PARLEY_E_IDENTITY_MISMATCH)
		return set_status(b, a, q, STORE_AREQ_FAILED, rc, q->attempts);
	if (rc == PARLEY_OK)
		rc = credential(b, j, t, &c, q);
	return rc == PARLEY_OK ? set_status(b, a, q, STORE_AREQ_DONE, PARLEY_OK, q->attempts) : rc;
}

int sql__auth_answer(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	store_thread_info *t;
	req_row q;
	int rc;

	if ((rc = load_req(b, SQL_REQ_BY_ID, a->request_id, NULL, &q)) != PARLEY_OK)
		return rc;
	if ((rc = job_thread(b, j, q.r.thread_id, &t)) != PARLEY_OK)
		return rc;
	/* the customer answers (a channel thread: its gateway); caller 0 is the server's own callback */
	if (j->caller_account != 0 && j->caller_account != t->customer)
		return PARLEY_E_NOT_THREAD_MEMBER;
	if (q.r.status == STORE_AREQ_EXPIRED) /* the sweep got there first */
		return PARLEY_E_AUTH_EXPIRED;
	if (q.r.status != STORE_AREQ_OPEN)
		return PARLEY_E_AUTH_ALREADY_ANSWERED;
	if (q.r.expires_ms <= j->now_ms)
		return set_status(b, a, &q, STORE_AREQ_EXPIRED, PARLEY_E_AUTH_EXPIRED, q.attempts);
	if (t->status == THR_CLOSED)
		return set_status(b, a, &q, STORE_AREQ_FAILED, PARLEY_E_THREAD_CLOSED, q.attempts);
	return answer_open(b, j, t, &q);
}

int sql__auth_by_token(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	store_thread_info *t;
	req_row q;
	int rc = a->request_id != 0 ? load_req(b, SQL_REQ_BY_ID, a->request_id, NULL, &q)
				    : load_req(b, a->by_state ? SQL_REQ_BY_STATE : SQL_REQ_BY_TOKEN, 0, a->x->token, &q);

	if (rc == PARLEY_E_NO_SUCH_AUTH_REQUEST && a->by_state)
		rc = PARLEY_E_AUTH_STATE_MISMATCH;
	if (rc != PARLEY_OK)
		return rc;
	a->x->req = q.r;
	memcpy(a->x->state_out, q.state, sizeof(a->x->state_out));
	memcpy(a->x->nonce_out, q.nonce, sizeof(a->x->nonce_out));
	memcpy(a->x->verifier_out, q.verifier, sizeof(a->x->verifier_out));
	a->component_id = q.r.component_id;
	if (a->comps == NULL && (a->comps = parley__calloc(1, sizeof(*a->comps))) == NULL)
		return PARLEY_E_NOMEM;
	a->n_comps = 1;
	if ((rc = sql__auth_comp_load(b, q.r.component_id, a->comps)) != PARLEY_OK)
		return rc;
	return job_thread(b, j, q.r.thread_id, &t);
}

static void load_claims(store_be *b, store_auth_args *a, uint64_t thread_id)
{
	static const char *const names[] = {"sub", "email", "phone_number"};
	sql_stmt *s = sql__stmt(b, SQL_CLAIMS);
	if (s == NULL || (a->claims = parley__calloc(STORE_AUTH_MAX_CLAIMS, sizeof(*a->claims))) == NULL)
		return;
	sql__bind_i64(s, 1, (int64_t)thread_id);
	if (sql__step(s) == SQL_ROW)
		for (int i = 0; i < 3; i++) {
			store_auth_claim *c = &a->claims[a->n_claims];
			sql__auth_col_text(s, i, c->value, sizeof(c->value));
			if (c->value[0] != '\0') {
				snprintf(c->name, sizeof(c->name), "%s", names[i]);
				a->n_claims++;
			}
		}
	sql__reset(s);
}

int sql__auth_status(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	store_thread_info *t;
	sql_stmt *s;
	int rc, sr;

	if ((rc = job_thread(b, j, a->thread_id, &t)) != PARLEY_OK)
		return rc;
	if (!sql__thr_is_member(t, j->caller_account))
		return PARLEY_E_NOT_THREAD_MEMBER;
	a->caller_staff = j->caller_account != t->customer;
	if ((a->reqs = parley__calloc(STORE_AUTH_MAX_REQUESTS, sizeof(*a->reqs))) == NULL)
		return PARLEY_E_NOMEM;
	if ((s = sql__stmt(b, SQL_REQS_OF)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)t->thread_id);
	sql__bind_i64(s, 2, STORE_AUTH_MAX_REQUESTS);
	while ((sr = sql__step(s)) == SQL_ROW) {
		req_row q;
		read_req(s, &q);
		/* the timer may not have passed yet: an open request past its expiry is expired */
		if (q.r.status == STORE_AREQ_OPEN && q.r.expires_ms <= j->now_ms)
			q.r.status = STORE_AREQ_EXPIRED;
		a->reqs[a->n_reqs++] = q.r;
		sodium_memzero(&q, sizeof(q));
	}
	sql__reset(s);
	if (sr != SQL_DONE)
		return sql__error(b, "auth requests");
	if (a->caller_staff && t->verification == STORE_LEVEL_AUTHENTICATED)
		load_claims(b, a, t->thread_id);
	/* what the email binding will compare with: the staff's to see, never the customer's */
	return a->caller_staff ? sql__auth_emails_load(b, t, a) : PARLEY_OK;
}

int sql__auth_expire(store_be *b, store_job *j)
{
	store_auth_args *a = &j->auth;
	sql_stmt *s = sql__stmt(b, SQL_REQS_EXPIRED);
	uint64_t threads[STORE_AUTH_MAX_EXPIRED];
	size_t n = 0;
	int sr, rc;

	a->ended = parley__calloc(STORE_AUTH_MAX_EXPIRED, sizeof(*a->ended));
	a->ended_threads = parley__calloc(STORE_AUTH_MAX_EXPIRED, sizeof(*a->ended_threads));
	a->dropped = parley__calloc(STORE_AUTH_MAX_EXPIRED, sizeof(*a->dropped));
	if (a->ended == NULL || a->ended_threads == NULL || a->dropped == NULL)
		return PARLEY_E_NOMEM;
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->now_ms);
	sql__bind_i64(s, 2, STORE_AUTH_MAX_EXPIRED);
	while ((sr = sql__step(s)) == SQL_ROW) {
		req_row q;
		read_req(s, &q);
		a->ended[a->n_ended++] = q.r;
	}
	sql__reset(s);
	if (sr != SQL_DONE)
		return sql__error(b, "auth expired requests");
	for (size_t i = 0; i < a->n_ended; i++) {
		req_row q = {.r = a->ended[i]};
		if ((rc = set_status(b, a, &q, STORE_AREQ_EXPIRED, PARLEY_E_AUTH_EXPIRED, 0)) != PARLEY_OK)
			return rc;
		a->ended[i] = a->x->req;
		if ((rc = sql__thr_load(b, a->ended[i].thread_id, &a->ended_threads[i])) != PARLEY_OK)
			return rc;
	}
	/* spent jti: a bounded batch per sweep, so one sweep never holds the store long */
	if ((s = sql__stmt(b, SQL_JTI_SWEEP)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->now_ms);
	sql__bind_i64(s, 2, 1000);
	if (sql__step_done(s) != SQL_DONE)
		return sql__error(b, "auth jti sweep");
	if ((s = sql__stmt(b, SQL_LEVELS_EXPIRED)) == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)j->now_ms);
	sql__bind_i64(s, 2, STORE_AUTH_MAX_EXPIRED);
	while ((sr = sql__step(s)) == SQL_ROW && n < STORE_AUTH_MAX_EXPIRED)
		threads[n++] = (uint64_t)sql__col_i64(s, 0);
	sql__reset(s);
	if (sr != SQL_DONE && sr != SQL_ROW)
		return sql__error(b, "auth expired levels");
	for (size_t i = 0; i < n; i++) {
		if ((s = sql__stmt(b, SQL_DROP_LEVEL)) == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)threads[i]);
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "auth level drop");
		/* back to the channel's baseline: the thread as loaded now */
		if ((rc = sql__thr_load(b, threads[i], &a->dropped[a->n_dropped])) == PARLEY_OK)
			a->n_dropped++;
		else if (rc != PARLEY_E_NO_SUCH_THREAD)
			return rc;
	}
	return PARLEY_OK;
}
