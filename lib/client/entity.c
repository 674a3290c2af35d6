/* Entities on the client: every Entity* request of proto/parley.proto (include/parley/entity.h).
 *
 * One op type carries every call through its stages; each stage is one request, and a stage's
 * completion submits the same op again for the next one (the event core allows it), so a call is one
 * allocation however many round trips it takes:
 *   get        GET
 *   create     OWN_LIST (this account's signed device list) -> CALL (EntityCreate with staff list v1)
 *   join       OWN_LIST -> CALL (EntityJoin)
 *   code, requests, deny     CALL
 *   approve    GET -> REQUESTS (the candidate's key and list) -> CALL (EntityDecide with list v+1)
 *   add-admin  GET -> MEMBER_LIST (the new admin's signed device list) -> CALL (EntityMember)
 *   remove     GET -> CALL (EntityMember, list without the member)
 *   rules      GET -> CALL (EntityStaff)
 * Every staff change is signed here with the entity key, over the list just verified (GET) with one
 * change: the server checks that the list is exactly the registry after the call, and refuses anything
 * else; a concurrent change makes the call fail with STAFF_LIST_INVALID (fetch again, retry).
 */
#include <string.h>

#include "client/entity_internal.h"
#include "common/alloc.h"
#include "crypto/crypto.h"

void client__entity_op_free(entity_op *o)
{
	parley_entity_free(o->ent);
	parley__free(o->blob);
	parley__free(o->list);
	parley__free(o);
}

/* Ends the call with status (results only on PARLEY_OK) and frees the op. */
static void finish(parley_client *c, entity_op *o, int status, const void *res, const char *code, uint64_t n)
{
	parley_err st = (parley_err)status;

	switch (o->kind) {
	case K_GET:
		o->cb.get(c, st, status == PARLEY_OK ? o->ent : NULL, o->user);
		if (status == PARLEY_OK)
			o->ent = NULL; /* the caller's now */
		break;
	case K_CREATE:
	case K_JOIN:
		o->cb.id(c, st, status == PARLEY_OK ? n : 0, o->user);
		break;
	case K_CODE:
		o->cb.code(c, st, status == PARLEY_OK ? code : NULL, status == PARLEY_OK ? n : 0, o->user);
		break;
	case K_REQUESTS:
		o->cb.requests(c, st, status == PARLEY_OK ? res : NULL, status == PARLEY_OK ? (size_t)n : 0, o->user);
		break;
	default:
		o->cb.done(c, st, o->user);
	}
	client__entity_op_free(o);
}

/* ---- this account's key and signed device list ---- */

int client__entity_own_key(parley_client *c, uint8_t pub[PARLEY_ENTITY_KEY_BYTES])
{
	int have_private = 0;
	int rc = client__account_key(c, pub, &have_private);
	if (rc == PARLEY_E_NO_ACCOUNT_KEY || rc == PARLEY_E_NOT_FOUND) {
		client__set_err(c, "this device does not know its account key yet (connect once first)");
		return PARLEY_E_NO_ACCOUNT_KEY;
	}
	return rc;
}

/* The device list of a member-to-be (buf): signed by key for account_id, and key is the account key
 * this client pinned for `who` (peers.c: trust on first use, like a message peer; a server claiming
 * another key for a known account is UNTRUSTED_IDENTITY, an older list DEVICE_LIST_ROLLBACK). */
int client__entity_check_devlist(parley_client *c, const char *who, const uint8_t *buf, size_t len,
				 uint64_t account_id, const uint8_t key[PARLEY_ENTITY_KEY_BYTES])
{
	wire_devlist *dl = parley__malloc(sizeof(*dl));
	int rc;

	if (dl == NULL)
		return PARLEY_E_NOMEM;
	rc = client__entity_member_devlist(buf, len, account_id, key, dl);
	if (rc == PARLEY_E_NO_DEVICE_LIST)
		client__set_err(c, "%s has no signed device list", who);
	else if (rc != PARLEY_OK)
		client__set_err(c, "the signed device list of %s does not verify under its account key", who);
	else
		rc = client__peer_check_list(c, who, buf, len, dl);
	parley__free(dl);
	return rc;
}

/* ---- staff lists ---- */

static const wire_staff_member *find_handle(const wire_stafflist *l, const char *handle)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->members[i].handle, handle) == 0)
			return &l->members[i];
	return NULL;
}

/* A member rule field: -1 keep, 0/1 override, PARLEY_RULE_INHERIT drop the override. */
static void apply_bit(uint8_t *mask, uint8_t *values, unsigned bit, int v, int member)
{
	if (v < 0)
		return;
	if (member && v == PARLEY_RULE_INHERIT) {
		*mask = (uint8_t)(*mask & ~bit);
		*values = (uint8_t)(*values & ~bit);
		return;
	}
	if (member)
		*mask = (uint8_t)(*mask | bit);
	*values = v ? (uint8_t)(*values | bit) : (uint8_t)(*values & ~bit);
}

static void apply_rules(wire_stafflist *l, wire_staff_member *m, const parley_rules_change *r)
{
	uint8_t unused = 0, *mask = m != NULL ? &m->rules_mask : &unused;
	uint8_t *values = m != NULL ? &m->rules_values : &l->default_flags;

	apply_bit(mask, values, PARLEY_RULE_DEFAULT_AGENT, r->default_agent, m != NULL);
	apply_bit(mask, values, PARLEY_RULE_MAY_INITIATE, r->may_initiate, m != NULL);
	apply_bit(mask, values, PARLEY_RULE_MAY_PAY, r->may_pay, m != NULL);
	apply_bit(mask, values, PARLEY_RULE_MAY_TRANSFER, r->may_transfer, m != NULL);
	apply_bit(mask, values, PARLEY_RULE_SHOW_NAME, r->show_name, m != NULL);
	if (m == NULL && r->lock_mode >= 0)
		l->lock_mode = (uint8_t)r->lock_mode;
	if (m == NULL && r->admins_exempt >= 0)
		l->admins_exempt = (uint8_t)r->admins_exempt;
}

/* Signs with the entity key held here the list `l` (version and time set here) into o->list. */
static int sign_list(parley_client *c, entity_op *o, wire_stafflist *l)
{
	uint8_t pub[PARLEY_ENTITY_KEY_BYTES], priv[32];
	dynbuf out;
	int rc = client__entity_key_load(c, o->entity, pub, priv);

	if (rc != PARLEY_OK)
		return rc;
	if (memcmp(pub, l->entity_key, sizeof(pub)) != 0) {
		crypto__wipe(priv, sizeof(priv));
		client__set_err(c, "the entity key held here is not %s's current key", o->entity);
		return PARLEY_E_ENTITY_KEY_REQUIRED;
	}
	l->timestamp_ms = client__now_ms();
	dynbuf__init(&out, WIRE_STAFFLIST_MAX_BYTES);
	rc = wire__stafflist_sign(l, priv, &out);
	crypto__wipe(priv, sizeof(priv));
	if (rc == PARLEY_OK)
		o->list = dynbuf__take(&out, &o->list_len);
	dynbuf__free(&out);
	return rc;
}

/* The next version of the verified list with one change: add (not NULL) inserted in account order,
 * remove_id (not 0) dropped, the rules change of o, or (K_TRANSFER) the primary flag on o->member. */
int client__entity_next_list(parley_client *c, entity_op *o, const wire_staff_member *add, uint64_t remove_id)
{
	const wire_stafflist *cur = &o->ent->sl;
	wire_stafflist next = *cur;
	wire_staff_member *m = parley__calloc(cur->n + 1, sizeof(*m));
	size_t i, k = 0;
	int rc;

	if (m == NULL)
		return PARLEY_E_NOMEM;
	for (i = 0; i < cur->n; i++) {
		if (add != NULL && k == i && add->account_id < cur->members[i].account_id)
			m[k++] = *add;
		if (cur->members[i].account_id != remove_id)
			m[k++] = cur->members[i];
	}
	if (add != NULL && k == cur->n)
		m[k++] = *add;
	next.members = m;
	next.n = k;
	next.version = cur->version + 1;
	next.entity_id = o->ent->id; /* version 1 carried 0 (signed before the id existed) */
	if (o->kind == K_RULES) {
		wire_staff_member *who = NULL;
		if (o->rules_member) {
			for (i = 0; i < k && who == NULL; i++)
				if (strcmp(m[i].handle, o->member) == 0)
					who = &m[i];
			if (who == NULL) {
				parley__free(m);
				client__set_err(c, "%s is not a member of %s", o->member, o->entity);
				return PARLEY_E_NOT_ENTITY_MEMBER;
			}
		}
		apply_rules(&next, who, &o->rules);
	}
	if (o->kind == K_TRANSFER)
		for (i = 0; i < k; i++)
			m[i].flags = strcmp(m[i].handle, o->member) == 0 ? (uint8_t)(m[i].flags | WIRE_STAFF_PRIMARY)
								     : (uint8_t)(m[i].flags & ~WIRE_STAFF_PRIMARY);
	rc = sign_list(c, o, &next);
	parley__free(m);
	return rc;
}

/* The caller's standing in the verified list for a staff change: an admin with the entity key here.
 * An approval without the key is an admin's too: it is signed with this device's key instead
 * (entity_approve.c), and the key holder signs the list. */
static int may_sign(parley_client *c, entity_op *o)
{
	int need_key = !(o->kind == K_DECIDE && o->approve);

	const wire_staff_member *me = wire__stafflist_find(&o->ent->sl, c->account.account_id);

	if (me == NULL || me->role != PARLEY_ROLE_ADMIN) {
		client__set_err(c, "%s is not an admin of %s", c->account.handle, o->entity);
		return PARLEY_E_NOT_ENTITY_ADMIN;
	}
	if (need_key && !o->ent->key_here) {
		client__set_err(c, "this device does not hold the entity key of %s (the primary admin's device does)",
				o->entity);
		return PARLEY_E_ENTITY_KEY_REQUIRED;
	}
	return PARLEY_OK;
}

/* The first staff list: this account, primary admin, with its key and device list. */
static int first_list(parley_client *c, entity_op *o)
{
	wire_stafflist l;
	wire_staff_member me;
	int rc = client__entity_key_new(c, o->entity, o->ek);

	if (rc != PARLEY_OK)
		return rc;
	memset(&l, 0, sizeof(l));
	memset(&me, 0, sizeof(me));
	snprintf(l.handle, sizeof(l.handle), "%s", o->entity);
	snprintf(l.display_name, sizeof(l.display_name), "%s", o->name);
	memcpy(l.entity_key, o->ek, sizeof(o->ek));
	l.version = 1;
	l.n = 1;
	l.members = &me;
	me.account_id = c->account.account_id;
	snprintf(me.handle, sizeof(me.handle), "%s", c->account.handle);
	me.role = PARLEY_ROLE_ADMIN;
	me.flags = 1; /* primary */
	memcpy(me.account_key, o->ak, sizeof(o->ak));
	me.devlist = o->blob;
	me.devlist_len = o->blob_len;
	/* entity_id 0: the id is the server's, given in the answer; version 1 carries 0 */
	return sign_list(c, o, &l);
}

/* ---- requests ---- */

static void set_list(ProtobufCBinaryData *b, entity_op *o)
{
	b->data = o->list;
	b->len = o->list_len;
}

static int build(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	entity_op *o = CLIENT_OP_OWNER(op, entity_op, op);

	switch (o->stage) {
	case ST_GET:
		parley__wire__entity_get_request__init(&o->body.get);
		o->body.get.handle = o->entity;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_GET;
		req->entity_get = &o->body.get;
		return PARLEY_OK;
	case ST_OWN_LIST:
	case ST_MEMBER_LIST:
		parley__wire__get_device_list_request__init(&o->body.devlist);
		o->body.devlist.handle = o->stage == ST_OWN_LIST ? c->account.handle : o->member;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_GET_DEVICE_LIST;
		req->get_device_list = &o->body.devlist;
		return PARLEY_OK;
	case ST_REQUESTS:
		parley__wire__entity_requests_request__init(&o->body.requests);
		o->body.requests.entity = o->entity;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS;
		req->entity_requests = &o->body.requests;
		return PARLEY_OK;
	default:
		break;
	}
	switch (o->kind) {
	case K_CREATE:
		parley__wire__entity_create_request__init(&o->body.create);
		o->body.create.handle = o->entity;
		o->body.create.display_name = o->name;
		o->body.create.entity_key.data = o->ek;
		o->body.create.entity_key.len = sizeof(o->ek);
		set_list(&o->body.create.signed_staff_list, o);
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE;
		req->entity_create = &o->body.create;
		break;
	case K_CODE:
		parley__wire__entity_code_request__init(&o->body.code);
		o->body.code.entity = o->entity;
		o->body.code.ttl_s = o->ttl_s;
		o->body.code.role = (Parley__Wire__EntityRole)o->role;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_CODE;
		req->entity_code = &o->body.code;
		break;
	case K_JOIN:
		parley__wire__entity_join_request__init(&o->body.join);
		o->body.join.entity = o->entity;
		o->body.join.code = o->code;
		o->body.join.account_key.data = o->ak;
		o->body.join.account_key.len = sizeof(o->ak);
		o->body.join.signed_device_list.data = o->blob;
		o->body.join.signed_device_list.len = o->blob_len;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN;
		req->entity_join = &o->body.join;
		break;
	case K_REQUESTS:
		parley__wire__entity_requests_request__init(&o->body.requests);
		o->body.requests.entity = o->entity;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_REQUESTS;
		req->entity_requests = &o->body.requests;
		break;
	case K_DECIDE:
	case K_SWEEP:
		parley__wire__entity_decide_request__init(&o->body.decide);
		o->body.decide.entity = o->entity;
		o->body.decide.request_id = o->request_id;
		o->body.decide.approve = o->approve;
		set_list(&o->body.decide.signed_staff_list, o);
		o->body.decide.approval.data = o->approval;
		o->body.decide.approval.len = o->approval_len;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE;
		req->entity_decide = &o->body.decide;
		break;
	case K_ADD_ADMIN:
	case K_REMOVE:
	case K_TRANSFER:
		parley__wire__entity_member_request__init(&o->body.member);
		o->body.member.entity = o->entity;
		o->body.member.member = o->member;
		o->body.member.role = (Parley__Wire__EntityRole)o->role;
		o->body.member.remove = o->kind == K_REMOVE;
		o->body.member.transfer_primary = o->kind == K_TRANSFER;
		set_list(&o->body.member.signed_staff_list, o);
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_MEMBER;
		req->entity_member = &o->body.member;
		break;
	case K_RULES:
		parley__wire__entity_staff_request__init(&o->body.staff);
		o->body.staff.entity = o->entity;
		set_list(&o->body.staff.signed_staff_list, o);
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_STAFF;
		req->entity_staff = &o->body.staff;
		break;
	default:
		return PARLEY_E_INTERNAL;
	}
	return PARLEY_OK;
}

static void complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r);
const client_op_vtable client__entity_vt = {build, complete, 0, 0};

/* The response body a stage expects (the core checks only one kind per vtable: ours varies). */
static int expected_case(const entity_op *o)
{
	static const int call_case[] = {
		[K_CREATE] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_CREATE,
		[K_CODE] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_CODE,
		[K_JOIN] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_JOIN,
		[K_REQUESTS] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_REQUESTS,
		[K_DECIDE] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_DECIDE,
		[K_ADD_ADMIN] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_MEMBER,
		[K_REMOVE] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_MEMBER,
		[K_RULES] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_STAFF,
		[K_SWEEP] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_DECIDE,
		[K_TRANSFER] = PARLEY__WIRE__RESPONSE__BODY_ENTITY_MEMBER,
	};
	switch (o->stage) {
	case ST_GET:
		return PARLEY__WIRE__RESPONSE__BODY_ENTITY_GET;
	case ST_OWN_LIST:
	case ST_MEMBER_LIST:
		return PARLEY__WIRE__RESPONSE__BODY_GET_DEVICE_LIST;
	case ST_REQUESTS:
		return PARLEY__WIRE__RESPONSE__BODY_ENTITY_REQUESTS;
	default:
		return call_case[o->kind];
	}
}

static void next_stage(parley_client *c, entity_op *o, int stage)
{
	o->stage = stage;
	client__conn_submit(c, &o->op);
}

static int keep_blob(entity_op *o, const ProtobufCBinaryData *b)
{
	parley__free(o->blob);
	o->blob = NULL;
	o->blob_len = 0;
	if (b->len == 0)
		return PARLEY_E_NO_DEVICE_LIST;
	o->blob = parley__malloc(b->len);
	if (o->blob == NULL)
		return PARLEY_E_NOMEM;
	memcpy(o->blob, b->data, b->len);
	o->blob_len = b->len;
	return PARLEY_OK;
}

/* The verified entity is in o->ent: go on with the call. */
static int after_get(parley_client *c, entity_op *o)
{
	const wire_staff_member *m;
	int rc;

	if (o->kind == K_GET)
		return -1; /* done */
	rc = may_sign(c, o);
	if (rc != PARLEY_OK)
		return rc;
	switch (o->kind) {
	case K_DECIDE:
	case K_SWEEP:
		next_stage(c, o, ST_REQUESTS);
		return PARLEY_OK;
	case K_TRANSFER:
		m = find_handle(&o->ent->sl, o->member);
		if (m == NULL || m->role != PARLEY_ROLE_ADMIN || m->account_id == c->account.account_id) {
			client__set_err(c, "%s is not another admin of %s: add it with parley entity add-admin first",
					o->member, o->entity);
			return m == NULL ? PARLEY_E_NOT_ENTITY_MEMBER : PARLEY_E_NEW_PRIMARY_NOT_ADMIN;
		}
		/* already done (a run that ended before the key went out): send the key again */
		if (m->flags & WIRE_STAFF_PRIMARY)
			return client__entity_send_key(c, o);
		m = wire__stafflist_find(&o->ent->sl, c->account.account_id);
		if (!(m->flags & WIRE_STAFF_PRIMARY)) {
			client__set_err(c, "%s is not the primary admin of %s", c->account.handle, o->entity);
			return PARLEY_E_NOT_PRIMARY_ADMIN;
		}
		rc = client__entity_next_list(c, o, NULL, 0);
		break;
	case K_ADD_ADMIN:
		if (find_handle(&o->ent->sl, o->member) != NULL) {
			client__set_err(c, "%s is already a member of %s", o->member, o->entity);
			return PARLEY_E_ALREADY_MEMBER;
		}
		next_stage(c, o, ST_MEMBER_LIST);
		return PARLEY_OK;
	case K_REMOVE:
		m = find_handle(&o->ent->sl, o->member);
		if (m == NULL || (o->role == PARLEY_ROLE_ADMIN) != (m->role == PARLEY_ROLE_ADMIN)) {
			client__set_err(c, "%s is not %s of %s", o->member,
					o->role == PARLEY_ROLE_ADMIN ? "an admin" : "an agent or bot", o->entity);
			return m == NULL ? PARLEY_E_NOT_ENTITY_MEMBER : PARLEY_E_NOT_FOUND;
		}
		o->role = m->role;
		/* the primary is never removed: the server refuses it too, but a list without the primary
		 * would not even be signed here */
		if (m->flags & 1) {
			client__set_err(c, "%s is the primary admin of %s", o->member, o->entity);
			return PARLEY_E_PRIMARY_ADMIN_FIXED;
		}
		rc = client__entity_next_list(c, o, NULL, m->account_id);
		break;
	default: /* K_RULES */
		rc = client__entity_next_list(c, o, NULL, 0);
	}
	if (rc == PARLEY_OK)
		next_stage(c, o, ST_CALL);
	return rc;
}

/* A member entry for a candidate or a new admin (devlist in o->blob, checked by the caller). */
static int add_member(parley_client *c, entity_op *o, uint64_t account_id, const char *handle, int role,
		      const uint8_t *key)
{
	wire_staff_member m;
	int rc = client__entity_check_devlist(c, handle, o->blob, o->blob_len, account_id, key);

	if (rc != PARLEY_OK)
		return rc;
	memset(&m, 0, sizeof(m));
	m.account_id = account_id;
	snprintf(m.handle, sizeof(m.handle), "%s", handle);
	m.role = (uint8_t)role;
	memcpy(m.account_key, key, sizeof(m.account_key));
	m.devlist = o->blob;
	m.devlist_len = o->blob_len;
	rc = client__entity_next_list(c, o, &m, 0);
	if (rc == PARLEY_OK)
		next_stage(c, o, ST_CALL);
	return rc;
}

static int on_requests(parley_client *c, entity_op *o, const Parley__Wire__EntityRequestsResponse *r);

/* K_SWEEP: the first request that another admin approved validly gets its list signed (add_member
 * submits the call); invalid approvals are reported and skipped. None left: the sweep is done (-1). */
static int sweep_pick(parley_client *c, entity_op *o, const Parley__Wire__EntityRequestsResponse *r)
{
	for (size_t i = 0; i < r->n_requests; i++) {
		const Parley__Wire__EntityJoinInfo *j = r->requests[i];
		int rc;

		if (j->approval.len == 0)
			continue;
		rc = j->account_key.len == PARLEY_ENTITY_KEY_BYTES && j->handle != NULL && wire__handle_valid(j->handle)
			     ? client__entity_approval_check(c, o->ent, j)
			     : PARLEY_E_APPROVAL_INVALID;
		if (rc == PARLEY_OK && keep_blob(o, &j->signed_device_list) == PARLEY_OK) {
			o->request_id = j->request_id;
			o->approve = 1;
			rc = add_member(c, o, j->account_id, j->handle,
					client__entity_join_role((int)j->role),
					j->account_key.data);
			if (rc == PARLEY_OK)
				return PARLEY_OK;
		}
		if (c->ev.on_error != NULL)
			c->ev.on_error(c, rc == PARLEY_OK ? PARLEY_E_NO_DEVICE_LIST : (parley_err)rc,
				       j->handle != NULL ? j->handle : "", 0, c->ev.user);
	}
	finish(c, o, PARLEY_OK, NULL, NULL, 0);
	return -1;
}

static void complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	entity_op *o = CLIENT_OP_OWNER(op, entity_op, op);
	const Parley__Wire__GetDeviceListResponse *dl;

	if (status == PARLEY_OK && (int)r->body_case != expected_case(o)) {
		client__set_err(c, "server answered with the wrong response kind");
		status = PARLEY_E_PROTO_MISSING_FIELD;
	}
	/* a sweep that raced another staff change: fetch the new list and sign again */
	if (status == PARLEY_E_STAFF_LIST_INVALID && o->kind == K_SWEEP && o->stage == ST_CALL && o->retries-- > 0) {
		next_stage(c, o, ST_GET);
		return;
	}
	if (status != PARLEY_OK) {
		if (o->kind == K_CREATE && o->stage == ST_CALL)
			client__entity_key_done(c, o->entity, 0, 0);
		finish(c, o, status, NULL, NULL, 0);
		return;
	}
	switch (o->stage) {
	case ST_GET:
		parley_entity_free(o->ent); /* a sweep fetches again after each list it signed */
		o->ent = NULL;
		status = client__entity_verify(c, o->entity, r->entity_get->entity, &o->ent);
		if (status == PARLEY_OK)
			status = after_get(c, o);
		if (status == -1)
			status = PARLEY_OK;
		else if (status == PARLEY_OK)
			return; /* next stage submitted */
		break;
	case ST_OWN_LIST:
	case ST_MEMBER_LIST:
		dl = r->get_device_list;
		status = keep_blob(o, &dl->signed_device_list);
		if (status == PARLEY_OK && o->stage == ST_OWN_LIST) {
			status = client__entity_check_devlist(c, c->account.handle, o->blob, o->blob_len, c->account.account_id, o->ak);
			if (status == PARLEY_OK && o->kind == K_CREATE)
				status = first_list(c, o);
			if (status == PARLEY_OK) {
				next_stage(c, o, ST_CALL);
				return;
			}
		} else if (status == PARLEY_OK) {
			/* a new admin's key: the one this client pinned for the account (its first list
			 * seen, or an earlier one); the list must verify under it (peers.c) */
			wire_devlist *v = parley__malloc(sizeof(*v));
			status = v == NULL ? PARLEY_E_NOMEM
					   : client__peer_check_list(c, o->member, o->blob, o->blob_len, v);
			if (status == PARLEY_OK)
				status = add_member(c, o, dl->account_id, o->member, PARLEY_ROLE_ADMIN, v->account_key);
			parley__free(v);
			if (status == PARLEY_OK)
				return;
		}
		break;
	case ST_REQUESTS:
		status = on_requests(c, o, r->entity_requests);
		if (status == PARLEY_OK && (o->kind == K_DECIDE || o->kind == K_SWEEP))
			return;
		if (status == -1) /* K_REQUESTS finished in on_requests */
			return;
		break;
	default:
		switch (o->kind) {
		case K_CREATE:
			status = client__entity_key_done(c, o->entity, r->entity_create->entity_id, 1);
			/* the creator pins its own key now: its first read must not take the server's word */
			if (status == PARLEY_OK)
				status = client__entity_pin(c, o->entity, o->ek, 1);
			finish(c, o, status, NULL, NULL, r->entity_create->entity_id);
			return;
		case K_CODE:
			finish(c, o, PARLEY_OK, NULL, r->entity_code->code != NULL ? r->entity_code->code : "",
			       r->entity_code->expires_ms);
			return;
		case K_JOIN:
			finish(c, o, PARLEY_OK, NULL, NULL, r->entity_join->request_id);
			return;
		case K_SWEEP: /* one approved request is in: look for the next */
			o->retries = SWEEP_RETRIES;
			o->approve = 0;
			next_stage(c, o, ST_GET);
			return;
		case K_TRANSFER:
			status = client__entity_send_key(c, o);
			if (status == PARLEY_OK)
				return; /* the op is the key send's now */
			break;
		case K_REQUESTS:
			if (on_requests(c, o, r->entity_requests) == -1)
				return;
			status = PARLEY_E_NOMEM;
			break;
		default:
			break;
		}
	}
	finish(c, o, status, NULL, NULL, 0);
}

/* The pending requests: listed (K_REQUESTS: finishes the op, returns -1) or the one to approve. */
static int on_requests(parley_client *c, entity_op *o, const Parley__Wire__EntityRequestsResponse *r)
{
	parley_join_request *out = NULL;
	uint8_t mine[PARLEY_ENTITY_KEY_BYTES];
	int have_mine;
	size_t i;

	if (o->kind == K_SWEEP)
		return sweep_pick(c, o, r);
	if (o->kind == K_DECIDE) {
		for (i = 0; i < r->n_requests; i++) {
			const Parley__Wire__EntityJoinInfo *j = r->requests[i];
			if (j->request_id != o->request_id)
				continue;
			if (j->account_key.len != PARLEY_ENTITY_KEY_BYTES || j->handle == NULL ||
			    !wire__handle_valid(j->handle))
				return PARLEY_E_PROTO_MALFORMED;
			/* an admin without the entity key: its approval, signed with this device's key */
			if (!o->ent->key_here) {
				int rc = client__entity_approval_make(c, o, j);
				if (rc == PARLEY_OK)
					next_stage(c, o, ST_CALL);
				return rc;
			}
			if (keep_blob(o, &j->signed_device_list) != PARLEY_OK)
				return client__entity_check_devlist(c, j->handle, NULL, 0, 0, j->account_key.data);
			return add_member(c, o, j->account_id, j->handle, client__entity_join_role((int)j->role),
					  j->account_key.data);
		}
		client__set_err(c, "no pending request %llu in %s", (unsigned long long)o->request_id, o->entity);
		return PARLEY_E_NO_SUCH_REQUEST;
	}
	if (r->n_requests > 0) {
		out = parley__calloc(r->n_requests, sizeof(*out));
		if (out == NULL)
			return PARLEY_E_NOMEM;
	}
	have_mine = client__entity_own_key(c, mine) == PARLEY_OK;
	for (i = 0; i < r->n_requests; i++) {
		const Parley__Wire__EntityJoinInfo *j = r->requests[i];
		parley_join_request *q = &out[i];
		wire_devlist *dl = parley__malloc(sizeof(*dl));

		q->request_id = j->request_id;
		snprintf(q->handle, sizeof(q->handle), "%s", j->handle != NULL ? j->handle : "");
		q->account_id = j->account_id;
		q->role = (parley_entity_role)client__entity_join_role((int)j->role);
		q->created_ms = j->created_ms;
		wire_approval a;
		if (j->approval.len > 0 && wire__approval_parse(j->approval.data, j->approval.len, &a) == PARLEY_OK)
			q->approved_by = a.approver_id;
		if (j->account_key.len == PARLEY_ENTITY_KEY_BYTES) {
			if (dl != NULL && client__entity_member_devlist(j->signed_device_list.data, j->signed_device_list.len,
									j->account_id, j->account_key.data, dl) == PARLEY_OK)
				q->n_devices = dl->n;
			if (have_mine)
				client__entity_fingerprint(c, mine, q->handle, j->account_key.data, q->safety_number);
		}
		parley__free(dl);
	}
	finish(c, o, PARLEY_OK, out, NULL, r->n_requests);
	parley__free(out);
	return -1;
}

