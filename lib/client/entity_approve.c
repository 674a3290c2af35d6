/* Approvals by admins whose device does not hold the entity key, and the key holder's side of them
 * (docs/protocol.md §12.5).
 *
 * The entity key lives on one device of the primary admin. Another admin (or another device of the
 * primary) approves a join request by signing an approval record with its own device key (the key it
 * authenticates with); the server keeps it on the request and tells the admins' devices. The device
 * holding the entity key then checks the approval against the staff list it verified itself: the
 * approver must be an admin in it and the approving device must be in the approver's signed device
 * list carried in it, and the approval must name exactly the request (candidate, key, role, device
 * list). Only then does it sign the list with the candidate. So the server, which could claim anything
 * about who approved, cannot get a member in: it would need an admin device's signature.
 *
 * The key holder sweeps an entity when an approval is pushed (EntityJoinRequested carrying one) and,
 * for every entity whose key it holds, after each authentication (approvals made while it was away).
 */
#include <string.h>

#include "client/entity_internal.h"
#include "common/alloc.h"
#include "crypto/crypto.h"

#define KEYS_HELD_MAX 16 /* entities swept after one authentication */

int client__entity_approval_make(parley_client *c, entity_op *o, const Parley__Wire__EntityJoinInfo *j)
{
	wire_approval a;
	int rc = client__entity_check_devlist(c, j->handle, j->signed_device_list.data, j->signed_device_list.len,
					      j->account_id, j->account_key.data);

	if (rc != PARLEY_OK)
		return rc;
	memset(&a, 0, sizeof(a));
	snprintf(a.entity, sizeof(a.entity), "%s", o->entity);
	a.request_id = j->request_id;
	a.candidate_id = j->account_id;
	memcpy(a.candidate_key, j->account_key.data, sizeof(a.candidate_key));
	a.role = (uint8_t)client__entity_join_role((int)j->role);
	wire__approval_devlist_hash(j->signed_device_list.data, j->signed_device_list.len, a.devlist_hash);
	a.approver_id = c->account.account_id;
	a.approver_device = c->account.device_id;
	a.timestamp_ms = client__now_ms();
	return wire__approval_sign(&a, c->key.sk, o->approval, sizeof(o->approval), &o->approval_len);
}

static int refuse(parley_client *c, const char *candidate, const char *why)
{
	client__set_err(c, "the approval of %s's request is refused: %s", candidate, why);
	return PARLEY_E_APPROVAL_INVALID;
}

int client__entity_approval_check(parley_client *c, const parley_entity *e, const Parley__Wire__EntityJoinInfo *j)
{
	const wire_staff_member *admin;
	const wire_devlist_entry *dev;
	wire_devlist *dl;
	wire_approval a;
	uint8_t hash[32];
	int rc;

	if (wire__approval_parse(j->approval.data, j->approval.len, &a) != PARLEY_OK)
		return refuse(c, j->handle, "malformed");
	admin = wire__stafflist_find(&e->sl, a.approver_id);
	if (admin == NULL || admin->role != WIRE_ROLE_ADMIN)
		return refuse(c, j->handle, "its signer is not an admin in the current staff list");
	dl = parley__malloc(sizeof(*dl));
	if (dl == NULL)
		return PARLEY_E_NOMEM;
	rc = client__entity_member_devlist(admin->devlist, admin->devlist_len, admin->account_id, admin->account_key,
					   dl);
	dev = rc == PARLEY_OK ? wire__devlist_find(dl, a.approver_device) : NULL;
	rc = dev == NULL ? refuse(c, j->handle, "the approving device is not in its admin's signed device list")
	     : wire__approval_verify(j->approval.data, j->approval.len, dev->device_key, &a) != PARLEY_OK
		     ? refuse(c, j->handle, "bad signature")
		     : PARLEY_OK;
	parley__free(dl);
	if (rc != PARLEY_OK)
		return rc;
	wire__approval_devlist_hash(j->signed_device_list.data, j->signed_device_list.len, hash);
	if (strcmp(a.entity, e->handle) != 0 || a.request_id != j->request_id || a.candidate_id != j->account_id ||
	    j->account_key.len != sizeof(a.candidate_key) ||
	    memcmp(a.candidate_key, j->account_key.data, sizeof(a.candidate_key)) != 0 ||
	    a.role != client__entity_join_role((int)j->role) ||
	    memcmp(a.devlist_hash, hash, sizeof(hash)) != 0)
		return refuse(c, j->handle, "it names another request, candidate, key, role or device list");
	return PARLEY_OK;
}

/* The sweep's end: nothing for the application but errors (a list signed shows as a staff change). */
static void sweep_done(parley_client *c, parley_err status, void *user)
{
	/* CLOSED: the application freed the client (a short CLI command): the next run sweeps again */
	if (status != PARLEY_OK && status != PARLEY_E_CLOSED && c->ev.on_error != NULL)
		c->ev.on_error(c, status, (const char *)user, 0, c->ev.user);
}

void client__entity_sweep(parley_client *c, const char *entity)
{
	uint8_t pub[PARLEY_ENTITY_KEY_BYTES], priv[32];
	entity_op *o;

	if (client__entity_key_load(c, entity, pub, priv) != PARLEY_OK)
		return; /* not the key holder: nothing to sign */
	crypto__wipe(priv, sizeof(priv));
	o = parley__calloc(1, sizeof(*o));
	if (o == NULL)
		return;
	o->op.vt = &client__entity_vt;
	o->kind = K_SWEEP;
	o->retries = SWEEP_RETRIES;
	o->cb.done = sweep_done;
	o->user = o->entity; /* what sweep_done reports errors for (the op lives until after it) */
	snprintf(o->entity, sizeof(o->entity), "%s", entity);
	parley_rules_change_init(&o->rules);
	o->stage = ST_GET;
	client__conn_submit(c, &o->op);
}

void client__entity_after_auth(parley_client *c)
{
	char held[KEYS_HELD_MAX][PARLEY_HANDLE_MAX + 1];
	size_t n = 0;

	if (client__entity_keys_held(c, held, KEYS_HELD_MAX, &n) != PARLEY_OK)
		return;
	for (size_t i = 0; i < n; i++)
		client__entity_sweep(c, held[i]);
}

/* ---- primary transfer: the entity key to the new primary ---- */

static void key_sent(parley_client *c, parley_err status, void *user)
{
	entity_op *o = user;
	o->cb.done(c, status, o->user);
	client__entity_op_free(o);
}

int client__entity_send_key(parley_client *c, entity_op *o)
{
	Parley__Wire__KeyTransfer kt = PARLEY__WIRE__KEY_TRANSFER__INIT;
	Parley__Wire__EntityKeyTransfer ek = PARLEY__WIRE__ENTITY_KEY_TRANSFER__INIT;
	Parley__Wire__EntityKeyTransfer *ekp = &ek;
	uint8_t pub[PARLEY_ENTITY_KEY_BYTES], priv[32], packed[256];
	size_t len;
	int rc = client__entity_key_load(c, o->entity, pub, priv);

	if (rc != PARLEY_OK)
		return rc;
	kt.transfer_id = client__keymove_new_id();
	ek.entity = o->entity;
	ek.entity_key.data = pub;
	ek.entity_key.len = sizeof(pub);
	ek.private_key.data = priv;
	ek.private_key.len = sizeof(priv);
	kt.n_entity_keys = 1;
	kt.entity_keys = &ekp;
	len = parley__wire__key_transfer__get_packed_size(&kt);
	if (len > sizeof(packed))
		rc = PARLEY_E_TOO_LARGE;
	else
		parley__wire__key_transfer__pack(&kt, packed);
	crypto__wipe(priv, sizeof(priv));
	/* recorded first: the key is wiped here only when the new primary confirms it holds it */
	if (rc == PARLEY_OK)
		rc = client__keymove_pending_add(c, kt.transfer_id, o->member, o->entity);
	if (rc == PARLEY_OK)
		rc = client__send_key_transfer(c, o->member, 0, packed, len, key_sent, o);
	crypto__wipe(packed, sizeof(packed));
	return rc;
}
