/* t23: the entity registry against a real parleyd, driven on the wire (raw sockets; staff lists signed
 * here with lib/wire's codec and a test entity key).
 *
 *   lifecycle        create; get; add and remove an admin; a code, a join (the admins' connection is
 *                    pushed EntityJoinRequested), approval (the new agent is pushed EntityStaffChanged).
 *   codes            reused -> ENROL_CODE_USED, denied -> ENROL_CODE_DENIED, expired (ttl_s 1) ->
 *                    ENROL_CODE_EXPIRED, unknown -> ENROL_CODE_UNKNOWN; 100 guesses: UNKNOWN until the
 *                    account's bucket (5) is spent, then ENROL_RATE_LIMITED with retry_after_ms, even
 *                    for the right code; another account then hits the entity's bucket.
 *   deauthorization  an admin with open connections (two workers: several connections, so both loops
 *                    hold some) is removed: every connection's very next call is refused and each is
 *                    pushed EntityStaffChanged{removed}.
 *   forgeries        lists signed with the wrong key, a version not next, an extra member, a changed
 *                    role, no primary flag: STAFF_LIST_INVALID, and the registry keeps its version.
 *   approvals        an admin without the entity key approves: each field of the approval checked
 *                    (APPROVAL_INVALID), an agent's refused, a second one ALREADY_APPROVED; the valid
 *                    one is listed and pushed to the primary; the primary then signs; a denied
 *                    candidate is pushed EntityJoinDecided.
 *   transfer         primary admin transfer: every refusal (NOT_PRIMARY_ADMIN, NEW_PRIMARY_NOT_ADMIN,
 *                    a list moving the flag elsewhere or not at all) changes nothing; afterwards the
 *                    primary-only calls follow the flag.
 *   limits           entity_max_codes (TOO_MANY_CODES), entity_max_pending (TOO_MANY_PENDING),
 *                    entity_max_members, entity_code_ttl_s.
 *   auth_table       every entity call x every role, one table of expected statuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "staffmodel.h"
#include "wire/approval.h"
#include "wire/stafflist.h"

/* ---- the calls (accounts, the staff model and the entity calls: staffmodel.h) ---- */

/* the staff version the server holds (0: none) */
static uint64_t ent_version(int fd, const char *handle)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityGetRequest m = PARLEY__WIRE__ENTITY_GET_REQUEST__INIT;
	wire_frame f;
	m.handle = (char *)handle;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_GET;
	r.entity_get = &m;
	if (sm_call(fd, &r, &f) != PARLEY_OK)
		return 0;
	uint64_t v = f.frame->response->entity_get->entity->staff_version;
	wire_stafflist l;
	const Parley__Wire__Entity *e = f.frame->response->entity_get->entity;
	IT_EQ(wire__stafflist_verify(e->signed_staff_list.data, e->signed_staff_list.len, &l), PARLEY_OK);
	IT_EQ(l.version, v);
	wire__stafflist_free(&l);
	wire__frame_free(&f);
	return v;
}

static int ent_member_v(int fd, model *md, const tacct *who, int remove, uint64_t version, const crypto_keypair *key)
{
	return sm_member(fd, md, who, remove, 0, version, key);
}

/* the change applied to the model, then sent; on refusal the model is put back */
static int ent_member(int fd, model *md, const tacct *who, int remove)
{
	model keep = *md;
	sm_model_set(md, who, remove ? 0 : WIRE_ROLE_ADMIN, 0, 0);
	int st = ent_member_v(fd, md, who, remove, md->version + 1, NULL);
	if (st == PARLEY_OK)
		md->version++;
	else
		*md = keep;
	return st;
}

static int ent_join(int fd, const char *entity, const char *code, uint64_t *req_id, uint64_t *retry)
{
	return sm_join(fd, entity, code, NULL, req_id, retry);
}

static int ent_requests(int fd, const char *entity, size_t *n)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityRequestsRequest m = PARLEY__WIRE__ENTITY_REQUESTS_REQUEST__INIT;
	wire_frame f;
	m.entity = (char *)entity;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS;
	r.entity_requests = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && n != NULL)
		*n = f.frame->response->entity_requests->n_requests;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

/* approve (the model gains `who` as role at version+1; list_version 0: the next) or deny */
static int ent_decide_v(int fd, model *md, uint64_t req_id, int approve, uint64_t list_version)
{
	dynbuf l = {0};
	if (approve)
		sm_sign(md, list_version, NULL, &l);
	int st = sm_decide(fd, md->handle, req_id, approve, approve ? &l : NULL, NULL, 0, NULL);
	dynbuf__free(&l);
	return st;
}

/* An approval of request req_id as the registry holds it (candidate `cand`, its device list `devlist`,
 * role agent) by approver's device 1, signed with sk (NULL: the approver's own key); edit, if given,
 * changes a field before signing. */
static size_t approval_for(const char *entity, uint64_t req_id, const tacct *cand, const char *devlist,
			   const tacct *approver, const uint8_t *sk, void (*edit)(wire_approval *), uint8_t *out)
{
	wire_approval a;
	size_t len = 0;
	memset(&a, 0, sizeof(a));
	snprintf(a.entity, sizeof(a.entity), "%s", entity);
	a.request_id = req_id;
	a.candidate_id = cand->id;
	sm_cand_key(a.candidate_key);
	a.role = WIRE_ROLE_AGENT;
	wire__approval_devlist_hash((const uint8_t *)(devlist != NULL ? devlist : ""),
				    devlist != NULL ? strlen(devlist) : 0, a.devlist_hash);
	a.approver_id = approver->id;
	a.approver_device = 1;
	a.timestamp_ms = it_now_ms();
	if (edit != NULL)
		edit(&a);
	IT_EQ(wire__approval_sign(&a, sk != NULL ? sk : approver->sk, out, WIRE_APPROVAL_MAX_BYTES, &len), PARLEY_OK);
	return len;
}

/* The approval the registry lists with request req_id: its length (0: none), -1 if the request is not
 * listed or the call failed. */
static long listed_approval(int fd, const char *entity, uint64_t req_id, uint8_t *out)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityRequestsRequest m = PARLEY__WIRE__ENTITY_REQUESTS_REQUEST__INIT;
	wire_frame f;
	long len = -1;
	m.entity = (char *)entity;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS;
	r.entity_requests = &m;
	if (sm_call(fd, &r, &f) != PARLEY_OK)
		return -1;
	const Parley__Wire__EntityRequestsResponse *q = f.frame->response->entity_requests;
	for (size_t i = 0; i < q->n_requests; i++)
		if (q->requests[i]->request_id == req_id && q->requests[i]->approval.len <= WIRE_APPROVAL_MAX_BYTES) {
			len = (long)q->requests[i]->approval.len;
			if (len > 0) /* an empty bytes field has no data pointer */
				memcpy(out, q->requests[i]->approval.data, (size_t)len);
		}
	wire__frame_free(&f);
	return len;
}

static int ent_approve(int fd, model *md, uint64_t req_id, const tacct *who)
{
	model keep = *md;
	sm_model_set(md, who, WIRE_ROLE_AGENT, 0, 0);
	int st = ent_decide_v(fd, md, req_id, 1, md->version + 1);
	if (st == PARLEY_OK)
		md->version++;
	else
		*md = keep;
	return st;
}

/* Waits for a push of `body_case` on fd and keeps it in *keep (the caller frees it). 1 if seen. */
static int wait_push_keep(int fd, int body_case, wire_frame *keep)
{
	for (int i = 0; i < 20; i++) {
		wire_frame f;
		if (pw_recv(fd, &f, 2000) != 0)
			return 0;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH && (int)f.frame->push->body_case == body_case) {
			*keep = f;
			return 1;
		}
		wire__frame_free(&f);
	}
	return 0;
}

/* Waits for a push of `body_case` on fd; for EntityStaffChanged, *removed gets its flag. 1 if seen. */
static int wait_push(int fd, int body_case, int *removed)
{
	wire_frame f;
	if (!wait_push_keep(fd, body_case, &f))
		return 0;
	if (removed != NULL)
		*removed = f.frame->push->entity_staff_changed->removed;
	wire__frame_free(&f);
	return 1;
}

/* ---- the scenarios ---- */

static srv s;

/* an account that joined with a fresh code, pending; its request id */
static uint64_t joined(int admin_fd, const model *md, const tacct *a)
{
	char code[32];
	uint64_t req = 0;
	IT_EQ(sm_code(admin_fd, md->handle, 0, code, sizeof(code)), PARLEY_OK);
	IT_EQ(ent_join(a->fd, md->handle, code, &req, NULL), PARLEY_OK);
	return req;
}

static void lifecycle(void)
{
	tacct alice, bob, carol, dave;
	model md;
	sm_mk_many(s.port, 0, "alice bob carol dave", (tacct *[]){&alice, &bob, &carol, &dave});
	sm_entity(&md, &alice, "acme", 0, 0);
	IT_EQ(sm_ent_create(bob.fd, &md), PARLEY_E_HANDLE_TAKEN);
	uint8_t pk[32], sk[64];
	int fd = -1;
	IT_EQ(pw_register(s.port, "acme", pk, sk, &fd), PARLEY_E_HANDLE_TAKEN); /* one namespace */
	IT_EQ(ent_version(bob.fd, "acme"), 1);
	/* an admin added then removed by the primary */
	IT_EQ(ent_member(alice.fd, &md, &carol, 0), PARLEY_OK);
	IT_EQ(ent_requests(carol.fd, "acme", NULL), PARLEY_OK);
	IT_EQ(ent_member(alice.fd, &md, &carol, 1), PARLEY_OK);
	IT_EQ(ent_requests(carol.fd, "acme", NULL), PARLEY_E_NOT_ENTITY_ADMIN);
	IT_EQ(ent_version(bob.fd, "acme"), 3);
	/* enrolment: the admin's second connection is told, the new agent too */
	int watch = it_connect_as(s.port, "alice", 1, alice.sk);
	IT_CHECK(watch >= 0);
	uint64_t req = joined(alice.fd, &md, &dave);
	IT_CHECK(wait_push(watch, PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_REQUESTED, NULL));
	size_t n = 0;
	IT_EQ(ent_requests(alice.fd, "acme", &n), PARLEY_OK);
	IT_EQ(n, 1);
	IT_EQ(ent_join(dave.fd, "acme", "0000-0000-0000", NULL, NULL), PARLEY_E_REQUEST_PENDING);
	IT_EQ(ent_approve(alice.fd, &md, req, &dave), PARLEY_OK);
	int removed = -1;
	IT_CHECK(wait_push(dave.fd, PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED, &removed));
	IT_EQ(removed, 0);
	IT_EQ(ent_requests(alice.fd, "acme", &n), PARLEY_OK);
	IT_EQ(n, 0);
	IT_EQ(ent_version(bob.fd, "acme"), 4);
	/* rules only: same members, next version */
	md.m[0].rules_mask = WIRE_RULE_MAY_PAY;
	md.m[0].rules_values = WIRE_RULE_MAY_PAY;
	IT_EQ(sm_staff(alice.fd, &md, 5), PARLEY_OK);
	md.version = 5;
	removed = -1;
	IT_CHECK(wait_push(dave.fd, PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED, &removed));
	IT_EQ(removed, 0);
	IT_EQ(ent_version(bob.fd, "acme"), 5);
	/* the agent removed by an admin; the primary cannot be */
	IT_EQ(ent_member(alice.fd, &md, &dave, 1), PARLEY_OK);
	removed = -1;
	IT_CHECK(wait_push(dave.fd, PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED, &removed));
	IT_EQ(removed, 1);
	IT_EQ(ent_member_v(alice.fd, &md, &alice, 1, md.version + 1, NULL), PARLEY_E_PRIMARY_ADMIN_FIXED);
	close(watch);
}

static void codes(void)
{
	tacct boss, eve, frank, gina, hal;
	model md;
	char code[32];
	uint64_t req = 0, retry = 0;
	sm_mk_many(s.port, 0, "boss eve frank gina hal", (tacct *[]){&boss, &eve, &frank, &gina, &hal});
	sm_entity(&md, &boss, "shop", 0, 0);
	/* reused: eve's code again, by hal (the code is spent whatever happens to eve's request) */
	IT_EQ(sm_code(boss.fd, "shop", 0, code, sizeof(code)), PARLEY_OK);
	for (char *p = code; *p; p++) /* typed in lower case, with spaces instead of dashes */
		*p = *p == '-' ? ' ' : (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	IT_EQ(ent_join(eve.fd, "shop", code, &req, NULL), PARLEY_OK);
	IT_EQ(ent_join(hal.fd, "shop", code, NULL, NULL), PARLEY_E_ENROL_CODE_USED); /* entity: 1 */
	/* denied */
	IT_EQ(ent_decide_v(boss.fd, &md, req, 0, 0), PARLEY_OK);
	IT_EQ(ent_decide_v(boss.fd, &md, req, 0, 0), PARLEY_E_NO_SUCH_REQUEST);
	IT_EQ(ent_join(eve.fd, "shop", code, NULL, NULL), PARLEY_E_ENROL_CODE_DENIED); /* 2 */
	/* expired */
	IT_EQ(sm_code(boss.fd, "shop", 1, code, sizeof(code)), PARLEY_OK);
	usleep(1200 * 1000);
	IT_EQ(ent_join(gina.fd, "shop", code, NULL, NULL), PARLEY_E_ENROL_CODE_EXPIRED); /* 3 */
	/* 100 guesses: the account's burst (5) of UNKNOWN, then limited with a wait */
	IT_EQ(sm_code(boss.fd, "shop", 0, code, sizeof(code)), PARLEY_OK);
	int unknown = 0, limited = 0, other = 0;
	for (int i = 0; i < 100; i++) {
		char guess[16];
		snprintf(guess, sizeof(guess), "ZZZZ-ZZZZ-%04d", i);
		int st = ent_join(frank.fd, "shop", guess, NULL, &retry);
		unknown += st == PARLEY_E_ENROL_CODE_UNKNOWN;
		limited += st == PARLEY_E_ENROL_RATE_LIMITED && retry > 0;
		other += st != PARLEY_E_ENROL_CODE_UNKNOWN && st != PARLEY_E_ENROL_RATE_LIMITED;
	}
	IT_EQ(unknown, 5);
	IT_EQ(limited, 95);
	IT_EQ(other, 0);
	/* limited means limited: the right code too */
	IT_EQ(ent_join(frank.fd, "shop", code, NULL, NULL), PARLEY_E_ENROL_RATE_LIMITED); /* entity: 8 */
	/* the entity's bucket (10) holds 8: two more failures by anyone, then everyone waits */
	IT_EQ(ent_join(hal.fd, "shop", "1111-1111-1111", NULL, NULL), PARLEY_E_ENROL_CODE_UNKNOWN);
	IT_EQ(ent_join(hal.fd, "shop", "1111-1111-1112", NULL, NULL), PARLEY_E_ENROL_CODE_UNKNOWN);
	IT_EQ(ent_join(gina.fd, "shop", "1111-1111-1113", &req, &retry), PARLEY_E_ENROL_RATE_LIMITED);
	IT_CHECK(retry > 0 && retry <= 60000);
	IT_EQ(ent_join(gina.fd, "shop", code, NULL, NULL), PARLEY_E_ENROL_RATE_LIMITED);
	IT_EQ(ent_join(gina.fd, "nosuch", code, NULL, NULL), PARLEY_E_NO_SUCH_ENTITY);
}

/* Approval by an admin without the entity key (docs/protocol.md §12.5): every field the approval
 * names is checked against the request as stored and the caller, refusals change nothing, a valid one
 * is kept and pushed to the admins with the request, and the entity key's holder then approves with a
 * list. A deny still works on an approved request; the denied candidate is told. */
static void edit_request(wire_approval *a) { a->request_id++; }
static void edit_candidate(wire_approval *a) { a->candidate_id += 1000; }
static void edit_key(wire_approval *a) { a->candidate_key[7] ^= 1; }
static void edit_role(wire_approval *a) { a->role = WIRE_ROLE_BOT; }
static void edit_hash(wire_approval *a) { a->devlist_hash[0] ^= 1; }
static void edit_device(wire_approval *a) { a->approver_device = 2; }
static void edit_approver(wire_approval *a) { a->approver_id--; }
static void edit_entity(wire_approval *a) { snprintf(a->entity, sizeof(a->entity), "other"); }

#define DL "acand's signed device list"

static void approvals(void)
{
	static void (*const edits[])(wire_approval *) = {edit_request, edit_candidate, edit_key,      edit_role,
							  edit_hash,    edit_device,    edit_approver, edit_entity};
	tacct p, b, g, c, c2;
	model md;
	uint8_t rec[WIRE_APPROVAL_MAX_BYTES], got[WIRE_APPROVAL_MAX_BYTES], opk[32], osk[64];
	char code[32];
	uint64_t req = 0, req2 = 0, v = 0;
	size_t n;
	wire_frame f;
	sm_mk_many(s.port, 0, "aprim aadmin aagent acand acand2", (tacct *[]){&p, &b, &g, &c, &c2});
	sm_entity(&md, &p, "appr", 0, 0);
	IT_EQ(ent_member(p.fd, &md, &b, 0), PARLEY_OK);
	IT_EQ(ent_approve(p.fd, &md, joined(p.fd, &md, &g), &g), PARLEY_OK);
	IT_EQ(sm_code(p.fd, "appr", 0, code, sizeof(code)), PARLEY_OK);
	IT_EQ(sm_join(c.fd, "appr", code, DL, &req, NULL), PARLEY_OK);
	int watch = it_connect_as(s.port, "aprim", 1, p.sk);
	IT_CHECK(watch >= 0);

	/* signed by a key that is not the caller device's */
	crypto_sign_keypair(opk, osk);
	n = approval_for("appr", req, &c, DL, &b, osk, NULL, rec);
	IT_EQ(sm_decide(b.fd, "appr", req, 1, NULL, rec, n, NULL), PARLEY_E_APPROVAL_INVALID);
	/* signed by the caller's device, naming anything else than this request and this caller */
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		n = approval_for("appr", req, &c, DL, &b, NULL, edits[i], rec);
		int st = sm_decide(b.fd, "appr", req, 1, NULL, rec, n, NULL);
		if (st != PARLEY_E_APPROVAL_INVALID) {
			fprintf(stderr, "# approval edit %zu: %d (%s)\n", i, st, parley_strerror(st));
			it_failures++;
		}
	}
	/* malformed (one byte short), an agent's own, with a list, with a deny, for no such request */
	n = approval_for("appr", req, &c, DL, &b, NULL, NULL, rec);
	IT_EQ(sm_decide(b.fd, "appr", req, 1, NULL, rec, n - 1, NULL), PARLEY_E_APPROVAL_INVALID);
	uint8_t grec[WIRE_APPROVAL_MAX_BYTES];
	size_t gn = approval_for("appr", req, &c, DL, &g, NULL, NULL, grec);
	IT_EQ(sm_decide(g.fd, "appr", req, 1, NULL, grec, gn, NULL), PARLEY_E_NOT_ENTITY_ADMIN);
	model next = md;
	sm_model_set(&next, &c, WIRE_ROLE_AGENT, 0, 0);
	dynbuf l;
	sm_sign(&next, md.version + 1, NULL, &l);
	IT_EQ(sm_decide(b.fd, "appr", req, 1, &l, rec, n, NULL), PARLEY_E_STAFF_LIST_INVALID);
	dynbuf__free(&l);
	IT_EQ(sm_decide(b.fd, "appr", req, 0, NULL, rec, n, NULL), PARLEY_E_APPROVAL_INVALID);
	IT_EQ(sm_decide(b.fd, "appr", req + 500, 1, NULL, rec, n, NULL), PARLEY_E_NO_SUCH_REQUEST);
	IT_EQ(listed_approval(p.fd, "appr", req, got), 0);

	/* the valid one: kept with the pending request, the staff unchanged, the primary's device told */
	IT_EQ(sm_decide(b.fd, "appr", req, 1, NULL, rec, n, &v), PARLEY_OK);
	IT_EQ(v, md.version);
	IT_EQ(ent_version(p.fd, "appr"), md.version);
	IT_EQ(listed_approval(p.fd, "appr", req, got), (long)n);
	IT_CHECK(memcmp(got, rec, n) == 0);
	if (wait_push_keep(watch, PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_REQUESTED, &f)) {
		const Parley__Wire__EntityJoinInfo *in = f.frame->push->entity_join_requested->request;
		IT_EQ(in->request_id, req);
		IT_EQ(in->approval.len, n);
		IT_CHECK(in->approval.len == n && memcmp(in->approval.data, rec, n) == 0);
		IT_EQ(in->signed_device_list.len, strlen(DL));
		wire__frame_free(&f);
	} else {
		IT_CHECK(!"the primary's device was pushed the approval");
	}
	/* once approved, no second approval, not even a valid one by another admin */
	IT_EQ(sm_decide(b.fd, "appr", req, 1, NULL, rec, n, NULL), PARLEY_E_ALREADY_APPROVED);
	n = approval_for("appr", req, &c, DL, &p, NULL, NULL, rec);
	IT_EQ(sm_decide(p.fd, "appr", req, 1, NULL, rec, n, NULL), PARLEY_E_ALREADY_APPROVED);
	/* the entity key's holder signs the candidate in */
	IT_EQ(ent_approve(p.fd, &md, req, &c), PARLEY_OK);
	IT_EQ(listed_approval(p.fd, "appr", req, got), -1);
	IT_EQ(ent_version(g.fd, "appr"), md.version);

	/* an approved request may still be denied (by any admin); its candidate hears it */
	IT_EQ(sm_code(b.fd, "appr", 0, code, sizeof(code)), PARLEY_OK);
	IT_EQ(sm_join(c2.fd, "appr", code, NULL, &req2, NULL), PARLEY_OK);
	n = approval_for("appr", req2, &c2, NULL, &b, NULL, NULL, rec);
	IT_EQ(sm_decide(b.fd, "appr", req2, 1, NULL, rec, n, NULL), PARLEY_OK);
	IT_EQ(ent_decide_v(b.fd, &md, req2, 0, 0), PARLEY_OK);
	if (wait_push_keep(c2.fd, PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_DECIDED, &f)) {
		const Parley__Wire__EntityJoinDecided *d = f.frame->push->entity_join_decided;
		IT_CHECK(strcmp(d->entity, "appr") == 0);
		IT_EQ(d->request_id, req2);
		IT_EQ(d->approved, 0);
		wire__frame_free(&f);
	} else {
		IT_CHECK(!"the denied candidate was pushed EntityJoinDecided");
	}
	IT_EQ(listed_approval(p.fd, "appr", req2, got), -1);
	close(watch);
}

/* Primary admin transfer (docs/protocol.md §12.6): only to another admin, only by the primary, with a
 * list that moves the flag and nothing else; then the primary-only calls follow the flag. */
static void transfer(void)
{
	tacct p, b, d, g, z;
	model md;
	int removed = -1;
	sm_mk_many(s.port, 0, "xprim xadmin xadmin2 xagent xzed", (tacct *[]){&p, &b, &d, &g, &z});
	sm_entity(&md, &p, "xfer", 0, 0);
	IT_EQ(ent_member(p.fd, &md, &b, 0), PARLEY_OK);
	IT_EQ(ent_member(p.fd, &md, &d, 0), PARLEY_OK);
	IT_EQ(ent_approve(p.fd, &md, joined(p.fd, &md, &g), &g), PARLEY_OK);
	uint64_t v = md.version;
	model moved = md; /* the honest list: the flag from p to b */
	sm_model_set(&moved, &p, WIRE_ROLE_ADMIN, 0, 0);
	sm_model_set(&moved, &b, WIRE_ROLE_ADMIN, 1, 0);
	model elsewhere = md; /* the flag to d while the call names b */
	sm_model_set(&elsewhere, &p, WIRE_ROLE_ADMIN, 0, 0);
	sm_model_set(&elsewhere, &d, WIRE_ROLE_ADMIN, 1, 0);
	model demoted = moved; /* the flag moved, and the old primary made an agent on the way */
	sm_model_set(&demoted, &p, WIRE_ROLE_AGENT, 0, 0);
	IT_EQ(sm_member(b.fd, &moved, &b, 0, 1, v + 1, NULL), PARLEY_E_NOT_PRIMARY_ADMIN);
	IT_EQ(sm_member(g.fd, &moved, &b, 0, 1, v + 1, NULL), PARLEY_E_NOT_ENTITY_ADMIN);
	IT_EQ(sm_member(p.fd, &moved, &g, 0, 1, v + 1, NULL), PARLEY_E_NEW_PRIMARY_NOT_ADMIN);
	IT_EQ(sm_member(p.fd, &md, &p, 0, 1, v + 1, NULL), PARLEY_E_NEW_PRIMARY_NOT_ADMIN);
	IT_EQ(sm_member(p.fd, &moved, &z, 0, 1, v + 1, NULL), PARLEY_E_NOT_ENTITY_MEMBER);
	IT_EQ(sm_member(p.fd, &moved, &b, 1, 1, v + 1, NULL), PARLEY_E_INVAL);
	IT_EQ(sm_member(p.fd, &elsewhere, &b, 0, 1, v + 1, NULL), PARLEY_E_STAFF_LIST_INVALID);
	IT_EQ(sm_member(p.fd, &md, &b, 0, 1, v + 1, NULL), PARLEY_E_STAFF_LIST_INVALID);
	IT_EQ(sm_member(p.fd, &demoted, &b, 0, 1, v + 1, NULL), PARLEY_E_STAFF_LIST_INVALID);
	/* nothing changed: same version, and p is still the primary (b may not add an admin) */
	IT_EQ(ent_version(z.fd, "xfer"), v);
	IT_EQ(ent_member(b.fd, &md, &z, 0), PARLEY_E_NOT_PRIMARY_ADMIN);

	IT_EQ(sm_member(p.fd, &moved, &b, 0, 1, v + 1, NULL), PARLEY_OK);
	md = moved;
	md.version = v + 1;
	IT_CHECK(wait_push(g.fd, PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED, &removed));
	IT_EQ(removed, 0);
	IT_EQ(ent_version(z.fd, "xfer"), v + 1);
	/* the primary-only calls follow the flag */
	IT_EQ(ent_member(p.fd, &md, &z, 0), PARLEY_E_NOT_PRIMARY_ADMIN);
	IT_EQ(ent_member(b.fd, &md, &z, 0), PARLEY_OK);
	/* (the codec signs no list without a primary: the current members, as lifecycle does) */
	IT_EQ(ent_member_v(b.fd, &md, &b, 1, md.version + 1, NULL), PARLEY_E_PRIMARY_ADMIN_FIXED);
	IT_EQ(ent_member_v(p.fd, &md, &b, 1, md.version + 1, NULL), PARLEY_E_PRIMARY_ADMIN_FIXED);
	IT_EQ(ent_member(p.fd, &md, &d, 1), PARLEY_E_NOT_PRIMARY_ADMIN);
	/* the old primary stayed an admin: it still makes codes, and the new one may remove it */
	IT_EQ(sm_code(p.fd, "xfer", 0, NULL, 0), PARLEY_OK);
	IT_EQ(ent_member(b.fd, &md, &p, 1), PARLEY_OK);
	IT_EQ(ent_version(z.fd, "xfer"), v + 3);
}

static void deauthorization(void)
{
	srv w;
	const char *extra[] = {"--workers=2", NULL};
	tacct p, a;
	model md;
	enum { NCONN = 6 };
	int fds[NCONN];
	srv_start(&w, extra);
	uint64_t saved = sm_next_id;
	sm_next_id = 0;
	sm_mk_many(w.port, 0, "prim adm", (tacct *[]){&p, &a});
	sm_entity(&md, &p, "corp", 0, 0);
	IT_EQ(ent_member(p.fd, &md, &a, 0), PARLEY_OK);
	/* several connections of the admin: with two loops accepting, both hold some */
	for (int i = 0; i < NCONN; i++) {
		fds[i] = it_connect_as(w.port, "adm", 1, a.sk);
		IT_CHECK(fds[i] >= 0);
		IT_EQ(ent_requests(fds[i], "corp", NULL), PARLEY_OK);
	}
	IT_EQ(ent_member(p.fd, &md, &a, 1), PARLEY_OK);
	int told = 0, refused = 0;
	for (int i = 0; i < NCONN; i++) {
		/* the very next call, whether or not the notice arrived first */
		sm_seen_removed = 0;
		refused += ent_requests(fds[i], "corp", NULL) == PARLEY_E_NOT_ENTITY_ADMIN;
		refused += sm_code(fds[i], "corp", 0, NULL, 0) == PARLEY_E_NOT_ENTITY_ADMIN;
		int removed = 0;
		told += sm_seen_removed > 0 ||
			(wait_push(fds[i], PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED, &removed) && removed);
		close(fds[i]);
	}
	IT_EQ(refused, 2 * NCONN);
	IT_EQ(told, NCONN);
	char *log = srv_log(&w);
	IT_CHECK(log != NULL && strstr(log, "(2 workers") != NULL);
	free(log);
	IT_EQ(srv_stop(&w), 0);
	srv_cleanup(&w);
	sm_next_id = saved;
}

/* Every registry limit of the configuration table reached: open codes (entity_max_codes), pending
 * requests (entity_max_pending), members (entity_max_members, by approval and by adding an admin) and
 * the code lifetime (entity_code_ttl_s caps a longer ttl_s). */
static void limits(void)
{
	srv w;
	const char *extra[] = {"--entity_max_members=2", "--entity_max_pending=1", "--entity_max_codes=2",
			       "--entity_code_ttl_s=2", NULL};
	tacct p, a, b, d;
	model md;
	char c1[32], c2[32], c3[32];
	srv_start(&w, extra);
	uint64_t saved = sm_next_id;
	sm_next_id = 0;
	sm_mk_many(w.port, 0, "lprim lagent lbot ladmin", (tacct *[]){&p, &a, &b, &d});
	sm_entity(&md, &p, "lim", 0, 0);
	IT_EQ(sm_code(p.fd, "lim", 3600, c1, sizeof(c1)), PARLEY_OK);
	IT_EQ(sm_code(p.fd, "lim", 3600, c2, sizeof(c2)), PARLEY_OK);
	IT_EQ(sm_code(p.fd, "lim", 0, c3, sizeof(c3)), PARLEY_E_TOO_MANY_CODES);
	uint64_t ra = 0, rb = 0;
	IT_EQ(ent_join(a.fd, "lim", c1, &ra, NULL), PARLEY_OK);
	IT_EQ(ent_join(b.fd, "lim", c2, NULL, NULL), PARLEY_E_TOO_MANY_PENDING);
	IT_EQ(ent_approve(p.fd, &md, ra, &a), PARLEY_OK);
	IT_EQ(ent_join(b.fd, "lim", c2, &rb, NULL), PARLEY_OK); /* the refused join did not spend it */
	IT_EQ(ent_approve(p.fd, &md, rb, &b), PARLEY_E_TOO_MANY_MEMBERS);
	IT_EQ(ent_member(p.fd, &md, &d, 0), PARLEY_E_TOO_MANY_MEMBERS);
	/* an hour asked, two seconds given (entity_code_ttl_s) */
	IT_EQ(ent_decide_v(p.fd, &md, rb, 0, 0), PARLEY_OK);
	IT_EQ(sm_code(p.fd, "lim", 3600, c3, sizeof(c3)), PARLEY_OK);
	usleep(2200 * 1000);
	IT_EQ(ent_join(d.fd, "lim", c3, NULL, NULL), PARLEY_E_ENROL_CODE_EXPIRED);
	IT_EQ(srv_stop(&w), 0);
	srv_cleanup(&w);
	sm_next_id = saved;
}

static void forgeries(void)
{
	tacct p, x;
	model md;
	crypto_keypair other;
	sm_mk_many(s.port, 0, "owner xavier", (tacct *[]){&p, &x});
	sm_entity(&md, &p, "forge", 0, 0);
	crypto__keypair_generate(&other);
	model next = md;
	sm_model_set(&next, &x, WIRE_ROLE_ADMIN, 0, 0);
	/* wrong key, version not next (same, skipped, older) */
	IT_EQ(ent_member_v(p.fd, &next, &x, 0, 2, &other), PARLEY_E_STAFF_LIST_INVALID);
	IT_EQ(ent_member_v(p.fd, &next, &x, 0, 1, NULL), PARLEY_E_STAFF_LIST_INVALID);
	IT_EQ(ent_member_v(p.fd, &next, &x, 0, 3, NULL), PARLEY_E_STAFF_LIST_INVALID);
	/* an extra member besides the one added */
	tacct ghost = {.id = 999};
	snprintf(ghost.handle, sizeof(ghost.handle), "ghost");
	model extra = next;
	sm_model_set(&extra, &ghost, WIRE_ROLE_AGENT, 0, 0);
	IT_EQ(ent_member_v(p.fd, &extra, &x, 0, 2, NULL), PARLEY_E_STAFF_LIST_INVALID);
	/* the added member with another role than the call's */
	model rerole = next;
	sm_model_set(&rerole, &x, WIRE_ROLE_AGENT, 0, 0);
	IT_EQ(ent_member_v(p.fd, &rerole, &x, 0, 2, NULL), PARLEY_E_STAFF_LIST_INVALID);
	/* the primary flag moved to the new admin (the codec refuses a list with none) */
	model moved = next;
	sm_model_set(&moved, &p, WIRE_ROLE_ADMIN, 0, 0);
	sm_model_set(&moved, &x, WIRE_ROLE_ADMIN, 1, 0);
	IT_EQ(ent_member_v(p.fd, &moved, &x, 0, 2, NULL), PARLEY_E_STAFF_LIST_INVALID);
	/* no primary flag at all: the codec will not sign that, so the flag is cleared in the bytes of a
	 * signed list and the record signed again by the entity key */
	{
		Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__EntityStaffRequest m = PARLEY__WIRE__ENTITY_STAFF_REQUEST__INIT;
		dynbuf l;
		sm_sign(&md, 2, NULL, &l);
		size_t head = WIRE_STAFFLIST_MAGIC_LEN + 8 + 1 + strlen(md.handle) + 1 + strlen(md.handle) +
			      strlen(" Support") + 33 + 8 + 8 + 3 + 2;
		size_t flag = head + 8 + 1 + strlen(md.m[0].handle) + 1;
		IT_EQ(l.data[flag], WIRE_STAFF_PRIMARY);
		l.data[flag] = 0;
		IT_EQ(crypto__xeddsa_sign(l.data + l.len - 64, md.ek.priv, l.data, l.len - 64), PARLEY_OK);
		m.entity = md.handle;
		m.signed_staff_list.data = l.data;
		m.signed_staff_list.len = l.len;
		r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_STAFF;
		r.entity_staff = &m;
		IT_EQ(sm_call(p.fd, &r, NULL), PARLEY_E_STAFF_LIST_INVALID);
		l.data[flag] = WIRE_STAFF_PRIMARY; /* the same bytes with the flag: accepted, so the offset was right */
		IT_EQ(crypto__xeddsa_sign(l.data + l.len - 64, md.ek.priv, l.data, l.len - 64), PARLEY_OK);
		IT_EQ(sm_call(p.fd, &r, NULL), PARLEY_OK);
		md.version = 2;
		next.version = 2;
		dynbuf__free(&l);
	}
	/* a rules-only change that slips in a member */
	IT_EQ(sm_staff(p.fd, &next, 3), PARLEY_E_STAFF_LIST_INVALID);
	IT_EQ(ent_version(x.fd, "forge"), 2);
	/* the honest list passes */
	IT_EQ(ent_member_v(p.fd, &next, &x, 0, 3, NULL), PARLEY_OK);
	IT_EQ(ent_version(x.fd, "forge"), 3);
}

/* ---- the authorization table: every entity call x every role ----
 *
 * Calls that carry a staff list send the current members at a version far ahead: a caller the role
 * checks let through reaches the list check (STAFF_LIST_INVALID) and nothing changes, so every cell
 * runs against the same registry. TRANSFER names an admin (a list ahead: the primary reaches the list
 * check). APPROVAL (approve with an approval, no list) is signed by the caller's own device for the
 * pending request but names another device-list hash: an admin passes the role check and gets
 * APPROVAL_INVALID. DENY names a request that does not exist (NO_SUCH_REQUEST past the role check), JOIN a code nobody has, CREATE the entity's own handle (HANDLE_TAKEN: any account may
 * try). Roles: ANON an unauthenticated socket; OTHER an account with no tie; HOLDER holds an unused
 * code; PENDING its join request waits (the pending agent); DENIED its request was denied; AGENT;
 * REMOVED an agent removed; ADMIN; PRIMARY the primary admin. */
enum { ANON, OTHER, HOLDER, PENDING, DENIED, AGENT, REMOVED, ADMIN, PRIMARY, NROLES };
enum { C_CREATE, C_GET, C_TRANSFER, C_ADD_ADMIN, C_RM_AGENT, C_RM_ADMIN, C_RM_PRIMARY, C_CODE, C_JOIN, C_REQUESTS,
       C_APPROVE, C_APPROVAL, C_DENY, C_STAFF, NCALLS };
static const char *const role_name[NROLES] = {"anonymous", "other", "holder", "pending", "denied", "agent",
					      "removed", "admin", "primary"};
static const char *const call_name[NCALLS] = {"create",   "get",     "transfer_primary", "add_admin",
					      "remove_agent", "remove_admin", "remove_primary", "code",
					      "join",     "requests", "approve", "approve_with_approval",
					      "deny",     "staff"};
#define U PARLEY_E_UNAUTHENTICATED
#define A PARLEY_E_NOT_ENTITY_ADMIN
#define P PARLEY_E_NOT_PRIMARY_ADMIN
#define S PARLEY_E_STAFF_LIST_INVALID
#define K PARLEY_E_ENROL_CODE_UNKNOWN
#define M PARLEY_E_ALREADY_MEMBER
#define F PARLEY_E_PRIMARY_ADMIN_FIXED
#define T PARLEY_E_HANDLE_TAKEN
#define Q PARLEY_E_NO_SUCH_REQUEST
#define R PARLEY_E_REQUEST_PENDING
#define X PARLEY_E_APPROVAL_INVALID
#define O PARLEY_OK
static const int expected[NCALLS][NROLES] = {
	/*                anon other holder pending denied agent removed admin primary */
	[C_CREATE]     = {U,   T,    T,     T,      T,     T,    T,      T,    T},
	[C_GET]        = {U,   O,    O,     O,      O,     O,    O,      O,    O},
	[C_TRANSFER]   = {U,   A,    A,     A,      A,     A,    A,      P,    S},
	[C_ADD_ADMIN]  = {U,   A,    A,     A,      A,     A,    A,      P,    S},
	[C_RM_AGENT]   = {U,   A,    A,     A,      A,     A,    A,      S,    S},
	[C_RM_ADMIN]   = {U,   A,    A,     A,      A,     A,    A,      P,    S},
	[C_RM_PRIMARY] = {U,   A,    A,     A,      A,     A,    A,      F,    F},
	[C_CODE]       = {U,   A,    A,     A,      A,     A,    A,      O,    O},
	[C_JOIN]       = {U,   K,    K,     R,      K,     M,    K,      M,    M},
	[C_REQUESTS]   = {U,   A,    A,     A,      A,     A,    A,      O,    O},
	[C_APPROVE]    = {U,   A,    A,     A,      A,     A,    A,      S,    S},
	[C_APPROVAL]   = {U,   A,    A,     A,      A,     A,    A,      X,    X},
	[C_DENY]       = {U,   A,    A,     A,      A,     A,    A,      Q,    Q},
	[C_STAFF]      = {U,   A,    A,     A,      A,     A,    A,      S,    S},
};
#undef U
#undef A
#undef P
#undef S
#undef K
#undef M
#undef F
#undef T
#undef Q
#undef R
#undef X
#undef O

static void edit_devlist(wire_approval *a) { a->devlist_hash[31] ^= 0x80; }

static int run_cell(int c, int fd, const tacct *caller, model *md, const tacct *agent, const tacct *admin2,
		    const tacct *prim, const tacct *zed, const tacct *pend, uint64_t pending_req)
{
	uint64_t ahead = md->version + 7;
	uint8_t rec[WIRE_APPROVAL_MAX_BYTES];
	model cm;
	switch (c) {
	case C_CREATE:
		sm_model_init(&cm, md->handle);
		sm_model_set(&cm, caller, WIRE_ROLE_ADMIN, 1, 0);
		return sm_ent_create(fd, &cm);
	case C_GET: {
		Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
		Parley__Wire__EntityGetRequest m = PARLEY__WIRE__ENTITY_GET_REQUEST__INIT;
		m.handle = md->handle;
		r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_GET;
		r.entity_get = &m;
		return sm_call(fd, &r, NULL);
	}
	case C_TRANSFER: return sm_member(fd, md, admin2, 0, 1, ahead, NULL);
	case C_ADD_ADMIN: return ent_member_v(fd, md, zed, 0, ahead, NULL);
	case C_RM_AGENT: return ent_member_v(fd, md, agent, 1, ahead, NULL);
	case C_RM_ADMIN: return ent_member_v(fd, md, admin2, 1, ahead, NULL);
	case C_RM_PRIMARY: return ent_member_v(fd, md, prim, 1, ahead, NULL);
	case C_CODE: return sm_code(fd, md->handle, 0, NULL, 0);
	case C_JOIN: return ent_join(fd, md->handle, "QQQQ-QQQQ-QQQQ", NULL, NULL);
	case C_REQUESTS: return ent_requests(fd, md->handle, NULL);
	case C_APPROVE: return ent_decide_v(fd, md, pending_req, 1, ahead);
	case C_APPROVAL: /* signed by the caller's own device; a wrong device-list hash leaves it pending */
		return sm_decide(fd, md->handle, pending_req, 1, NULL, rec,
				   approval_for(md->handle, pending_req, pend, NULL, caller, NULL, edit_devlist, rec),
				   NULL);
	case C_DENY: return ent_decide_v(fd, md, 999999, 0, 0);
	default: return sm_staff(fd, md, ahead);
	}
}

static void auth_table(void)
{
	tacct prim, admin, hank, agent, rem, pend, den, holder, oth, zed;
	model md;
	sm_mk_many(s.port, 0, "tprim tadmin thank tagent tremoved tpending tdenied tholder tother tzed", (tacct *[]){&prim, &admin, &hank, &agent, &rem, &pend, &den, &holder, &oth, &zed});
	sm_entity(&md, &prim, "tbl", 0, 0);
	IT_EQ(ent_member(prim.fd, &md, &admin, 0), PARLEY_OK);
	IT_EQ(ent_member(prim.fd, &md, &hank, 0), PARLEY_OK);
	IT_EQ(ent_approve(prim.fd, &md, joined(prim.fd, &md, &agent), &agent), PARLEY_OK);
	IT_EQ(ent_approve(prim.fd, &md, joined(prim.fd, &md, &rem), &rem), PARLEY_OK);
	IT_EQ(ent_member(admin.fd, &md, &rem, 1), PARLEY_OK);
	uint64_t pending_req = joined(prim.fd, &md, &pend);
	IT_EQ(ent_decide_v(admin.fd, &md, joined(prim.fd, &md, &den), 0, 0), PARLEY_OK);
	IT_EQ(sm_code(prim.fd, md.handle, 0, NULL, 0), PARLEY_OK); /* the holder's, never used */
	uint8_t nonce[32];
	int anon = pw_connect(s.port, nonce);
	IT_CHECK(anon >= 0);
	const tacct *who[NROLES] = {&prim, &oth, &holder, &pend, &den, &agent, &rem, &admin, &prim};
	int fds[NROLES] = {anon, oth.fd, holder.fd, pend.fd, den.fd, agent.fd, rem.fd, admin.fd, prim.fd};
	uint64_t v0 = md.version;
	int cells = 0;
	for (int c = 0; c < NCALLS; c++)
		for (int r = 0; r < NROLES; r++) {
			int st = run_cell(c, fds[r], who[r], &md, &agent, &hank, &prim, &zed, &pend, pending_req);
			cells++;
			if (st != expected[c][r]) {
				fprintf(stderr, "# auth table: %s by %s: %d (%s), expected %d (%s)\n", call_name[c],
					role_name[r], st, parley_strerror(st), expected[c][r],
					parley_strerror(expected[c][r]));
				it_failures++;
			}
		}
	IT_EQ(cells, NCALLS * NROLES);
	/* nothing in the table changed the staff, or the pending request (the transfer row comes before
	 * the primary-only rows: they show the primary did not move) */
	IT_EQ(ent_version(oth.fd, "tbl"), v0);
	uint8_t got[WIRE_APPROVAL_MAX_BYTES];
	IT_EQ(listed_approval(prim.fd, "tbl", pending_req, got), 0);
	close(anon);
}

/* Enrolment round trips per second (code + join + decide, each awaited, one admin connection and one
 * per candidate): `it-t23_entities --bench N` (meson benchmark enrol). Approvals sign and send a list
 * that grows by one member each time (the server verifies it and compares it with the registry);
 * denials carry no list. */
static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(int n)
{
	srv w;
	const char *extra[] = {"--entity_max_members=200", "--entity_max_pending=1000",
			       "--max_connections_per_address=2000", NULL};
	tacct *c = calloc((size_t)(2 * n + 1), sizeof(*c));
	model *md = calloc(1, sizeof(*md));
	if (c == NULL || md == NULL || n < 1 || n > 190)
		return 2;
	srv_start(&w, extra);
	sm_next_id = 0;
	sm_mk(w.port, &c[0], "benchboss", 0);
	for (int i = 1; i <= 2 * n; i++) {
		char h[33];
		snprintf(h, sizeof(h), "cand%d", i);
		sm_mk(w.port, &c[i], h, 0);
	}
	sm_model_init(md, "benchco");
	sm_model_set(md, &c[0], WIRE_ROLE_ADMIN, 1, 0);
	IT_EQ(sm_ent_create(c[0].fd, md), PARLEY_OK);
	for (int pass = 0; pass < 2; pass++) {
		double t0 = now_s();
		for (int i = 1; i <= n; i++) {
			const tacct *a = &c[pass * n + i];
			uint64_t req = joined(c[0].fd, md, a);
			if (pass == 0)
				IT_EQ(ent_approve(c[0].fd, md, req, a), PARLEY_OK);
			else
				IT_EQ(ent_decide_v(c[0].fd, md, req, 0, 0), PARLEY_OK);
		}
		double dt = now_s() - t0;
		printf("enrolment %s: %d round trips (code + join + %s) in %.3f s: %.1f per second\n",
		       pass == 0 ? "approved" : "denied", n, pass == 0 ? "approve with a signed list" : "deny", dt,
		       n / dt);
	}
	IT_EQ(srv_stop(&w), 0);
	srv_cleanup(&w);
	free(c);
	free(md);
	return it_failures != 0;
}

int main(int argc, char **argv)
{
	const char *extra[] = {NULL};
	crypto__init();
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return bench((int)strtol(argv[2], NULL, 10));
	srv_start(&s, extra);
	IT_RUN(lifecycle);
	IT_RUN(codes);
	IT_RUN(forgeries);
	IT_RUN(approvals);
	IT_RUN(transfer);
	IT_RUN(deauthorization);
	IT_RUN(limits);
	IT_RUN(auth_table);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures != 0;
}
