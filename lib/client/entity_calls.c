/* The public entry points of entities (include/parley/entity.h): argument checks, then one op
 * (entity.c runs its stages), and the entity pushes to the application's callbacks.
 */
#include <string.h>

#include "client/entity_internal.h"
#include "common/alloc.h"

/* ---- entry points ---- */

/* The checks of every call (a saved account, valid handles) and a new op; NULL with *rc set. */
static entity_op *op_new(parley_client *c, int kind, const char *entity, const char *member, void *user, int *rc)
{
	entity_op *o;

	*rc = c == NULL ? PARLEY_E_INVAL : client__check_handle(c, entity);
	if (*rc == PARLEY_OK && member != NULL)
		*rc = client__check_handle(c, member);
	if (*rc == PARLEY_OK)
		*rc = client__entity_ready(c);
	if (*rc != PARLEY_OK)
		return NULL;
	o = parley__calloc(1, sizeof(*o));
	if (o == NULL) {
		*rc = PARLEY_E_NOMEM;
		return NULL;
	}
	o->op.vt = &client__entity_vt;
	o->kind = kind;
	o->user = user;
	snprintf(o->entity, sizeof(o->entity), "%s", entity);
	if (member != NULL)
		snprintf(o->member, sizeof(o->member), "%s", member);
	parley_rules_change_init(&o->rules);
	return o;
}

/* op_new for the calls that send this account's own key and signed device list (create, join):
 * the op also carries the account key, and is not made at all without one. */
static entity_op *op_new_own_key(parley_client *c, int kind, const char *entity, void *user, int *rc)
{
	entity_op *o = op_new(c, kind, entity, NULL, user, rc);
	if (o == NULL)
		return NULL;
	*rc = client__entity_own_key(c, o->ak);
	if (*rc != PARLEY_OK) {
		client__entity_op_free(o);
		return NULL;
	}
	return o;
}

static parley_err submit(parley_client *c, entity_op *o, int stage)
{
	o->stage = stage;
	client__conn_submit(c, &o->op);
	return PARLEY_OK;
}

parley_err parley_entity_get_start(parley_client *c, const char *handle, parley_entity_cb cb, void *user)
{
	int rc;
	entity_op *o = cb != NULL ? op_new(c, K_GET, handle, NULL, user, &rc) : NULL;

	if (cb == NULL)
		return PARLEY_E_INVAL;
	if (o == NULL)
		return (parley_err)rc;
	o->cb.get = cb;
	return submit(c, o, ST_GET);
}

parley_err parley_entity_create_start(parley_client *c, const char *handle, const char *display_name,
				      parley_entity_id_cb cb, void *user)
{
	size_t n = display_name != NULL ? strnlen(display_name, PARLEY_ENTITY_NAME_MAX + 1) : 0;
	entity_op *o;
	int rc;

	if (cb == NULL || n == 0 || n > PARLEY_ENTITY_NAME_MAX) {
		if (c != NULL && cb != NULL)
			client__set_err(c, "a display name has 1 to %d bytes", PARLEY_ENTITY_NAME_MAX);
		return PARLEY_E_INVAL;
	}
	o = op_new_own_key(c, K_CREATE, handle, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	memcpy(o->name, display_name, n);
	o->cb.id = cb;
	return submit(c, o, ST_OWN_LIST);
}

parley_err parley_entity_code_start(parley_client *c, const char *entity, unsigned ttl_s, parley_entity_role role,
				    parley_entity_code_cb cb, void *user)
{
	entity_op *o;
	int rc;

	if (cb == NULL || (role != PARLEY_ROLE_AGENT && role != PARLEY_ROLE_BOT && role != PARLEY_ROLE_GATEWAY))
		return PARLEY_E_INVAL;
	o = op_new(c, K_CODE, entity, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->ttl_s = ttl_s;
	o->role = role;
	o->cb.code = cb;
	return submit(c, o, ST_CALL);
}

parley_err parley_entity_join_start(parley_client *c, const char *entity, const char *code, parley_entity_id_cb cb,
				    void *user)
{
	size_t n = code != NULL ? strnlen(code, PARLEY_ENROL_CODE_MAX + 1) : 0;
	entity_op *o;
	int rc;

	if (cb == NULL || n == 0 || n > PARLEY_ENROL_CODE_MAX)
		return PARLEY_E_INVAL;
	o = op_new_own_key(c, K_JOIN, entity, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	memcpy(o->code, code, n);
	o->cb.id = cb;
	return submit(c, o, ST_OWN_LIST);
}

parley_err parley_entity_requests_start(parley_client *c, const char *entity, parley_join_requests_cb cb, void *user)
{
	entity_op *o;
	int rc;

	if (cb == NULL)
		return PARLEY_E_INVAL;
	o = op_new(c, K_REQUESTS, entity, NULL, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.requests = cb;
	return submit(c, o, ST_CALL);
}

/* The calls that end with a parley_done_cb. */
static parley_err done_call(parley_client *c, int kind, const char *entity, const char *member, int stage,
			    parley_done_cb cb, void *user, entity_op **out)
{
	entity_op *o;
	int rc;

	*out = NULL;
	if (cb == NULL)
		return PARLEY_E_INVAL;
	o = op_new(c, kind, entity, member, user, &rc);
	if (o == NULL)
		return (parley_err)rc;
	o->cb.done = cb;
	o->stage = stage;
	*out = o;
	return PARLEY_OK;
}

parley_err parley_entity_decide_start(parley_client *c, const char *entity, uint64_t request_id, int approve,
				      parley_done_cb cb, void *user)
{
	entity_op *o;
	/* a deny carries no list: no entity key needed, straight to the call */
	parley_err rc = done_call(c, K_DECIDE, entity, NULL, approve ? ST_GET : ST_CALL, cb, user, &o);

	if (rc != PARLEY_OK)
		return rc;
	o->request_id = request_id;
	o->approve = approve != 0;
	return submit(c, o, o->stage);
}

/* The calls about an admin (add one, make one primary): fetch the list first. */
static parley_err admin_call(parley_client *c, int kind, const char *entity, const char *member, parley_done_cb cb,
			     void *user)
{
	entity_op *o;
	parley_err rc = done_call(c, kind, entity, member, ST_GET, cb, user, &o);

	if (rc != PARLEY_OK)
		return rc;
	o->role = PARLEY_ROLE_ADMIN;
	return submit(c, o, ST_GET);
}

parley_err parley_entity_add_admin_start(parley_client *c, const char *entity, const char *member, parley_done_cb cb,
					 void *user)
{
	return admin_call(c, K_ADD_ADMIN, entity, member, cb, user);
}

parley_err parley_entity_remove_start(parley_client *c, const char *entity, const char *member, parley_entity_role role,
				      parley_done_cb cb, void *user)
{
	entity_op *o;
	parley_err rc;

	if (role != PARLEY_ROLE_ADMIN && role != PARLEY_ROLE_AGENT && role != PARLEY_ROLE_BOT &&
	    role != PARLEY_ROLE_GATEWAY)
		return PARLEY_E_INVAL;
	rc = done_call(c, K_REMOVE, entity, member, ST_GET, cb, user, &o);
	if (rc != PARLEY_OK)
		return rc;
	o->role = role;
	return submit(c, o, ST_GET);
}

parley_err parley_entity_transfer_primary_start(parley_client *c, const char *entity, const char *member,
					      parley_done_cb cb, void *user)
{
	return admin_call(c, K_TRANSFER, entity, member, cb, user);
}

void parley_rules_change_init(parley_rules_change *r)
{
	if (r != NULL)
		r->default_agent = r->may_initiate = r->may_pay = r->may_transfer = r->show_name = r->lock_mode =
			r->admins_exempt = -1;
}

parley_err parley_entity_rules_start(parley_client *c, const char *entity, const char *member,
				     const parley_rules_change *change, parley_done_cb cb, void *user)
{
	entity_op *o;
	parley_err rc;
	int inherit_max = member != NULL ? PARLEY_RULE_INHERIT : 1;

	if (change == NULL || change->default_agent > inherit_max || change->may_initiate > inherit_max ||
	    change->may_pay > inherit_max || change->may_transfer > inherit_max || change->show_name > inherit_max ||
	    change->lock_mode > PARLEY_LOCK_FIRST_RESPONDER ||
	    change->admins_exempt > 1 || (member != NULL && (change->lock_mode >= 0 || change->admins_exempt >= 0)))
		return PARLEY_E_INVAL;
	rc = done_call(c, K_RULES, entity, member, ST_GET, cb, user, &o);
	if (rc != PARLEY_OK)
		return rc;
	o->rules = *change;
	o->rules_member = member != NULL;
	return submit(c, o, ST_GET);
}

/* After a staff change push: the new list is fetched and verified at once, so the pinned version moves
 * up (a server that later serves an older list is caught) and a bad list is reported now. */
static void refreshed(parley_client *c, parley_err status, parley_entity *e, void *user)
{
	parley_entity_free(e);
	if (status != PARLEY_OK && status != PARLEY_E_CLOSED && c->ev.on_error != NULL)
		c->ev.on_error(c, status, "", 0, c->ev.user);
}

/* conn hook (recv.c): the entity pushes, to the application's callbacks whether or not it receives
 * messages (an admin's `parley listen` shows join requests; a removed member learns it at once). */
void client__entity_push(parley_client *c, const Parley__Wire__Push *p)
{
	if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_REQUESTED) {
		const Parley__Wire__EntityJoinRequested *j = p->entity_join_requested;
		parley_join_request q;

		/* another admin approved it: the key holder (a no-op elsewhere) checks and signs */
		if (j->entity != NULL && wire__handle_valid(j->entity) && j->request != NULL && j->request->approval.len > 0)
			client__entity_sweep(c, j->entity);
		if (c->ev.on_entity_join_requested == NULL || j->entity == NULL || !wire__handle_valid(j->entity) ||
		    j->request == NULL)
			return;
		memset(&q, 0, sizeof(q));
		q.request_id = j->request->request_id;
		snprintf(q.handle, sizeof(q.handle), "%s", j->request->handle != NULL ? j->request->handle : "");
		q.account_id = j->request->account_id;
		q.role = (parley_entity_role)client__entity_join_role((int)j->request->role);
		q.created_ms = j->request->created_ms;
		wire_approval a;
		if (j->request->approval.len > 0 &&
		    wire__approval_parse(j->request->approval.data, j->request->approval.len, &a) == PARLEY_OK)
			q.approved_by = a.approver_id;
		c->ev.on_entity_join_requested(c, j->entity, &q, c->ev.user);
	} else if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED) {
		const Parley__Wire__EntityStaffChanged *s = p->entity_staff_changed;

		if (s->entity == NULL || !wire__handle_valid(s->entity))
			return;
		if (!s->removed)
			(void)parley_entity_get_start(c, s->entity, refreshed, NULL);
		if (c->ev.on_entity_staff_changed == NULL)
			return;
		c->ev.on_entity_staff_changed(c, s->entity, s->staff_version, s->removed, c->ev.user);
	} else if (p->body_case == PARLEY__WIRE__PUSH__BODY_ENTITY_JOIN_DECIDED) {
		const Parley__Wire__EntityJoinDecided *d = p->entity_join_decided;

		if (c->ev.on_entity_join_decided != NULL && d->entity != NULL && wire__handle_valid(d->entity))
			c->ev.on_entity_join_decided(c, d->entity, d->request_id, d->approved, c->ev.user);
	}
}
