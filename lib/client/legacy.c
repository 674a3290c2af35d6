/* Accounts registered before account keys existed (docs/protocol.md §11.3, "migration"): the server
 * answers their auth with an empty AuthResponse.account_key. The device that registered the account
 * (client.db account.registered) then makes the account key and sends SetAccountKeyRequest with a first
 * list of the account's current devices: their device keys from ListDevices, their identity keys from
 * their bundles (a device that never uploaded keys cannot receive and is left out until the next
 * list). This is trust on first use at migration: the list says what the server had then, and is
 * documented as such. Runs once per connection at most, in the background; a failure is logged in
 * errmsg and retried on the next authentication. */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

typedef struct legacy_op {
	client_op op;
	union {
		Parley__Wire__ListDevicesRequest list;
		Parley__Wire__GetBundlesRequest bundles;
		Parley__Wire__SetAccountKeyRequest set;
	} body;
	wire_devlist l;
	uint8_t ak[33];
	dynbuf rec;
} legacy_op;

static void legacy_free(legacy_op *o)
{
	dynbuf__free(&o->rec);
	parley__free(o);
}

static int build_set(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	legacy_op *o = CLIENT_OP_OWNER(op, legacy_op, op);
	parley__wire__set_account_key_request__init(&o->body.set);
	o->body.set.account_key.data = o->ak;
	o->body.set.account_key.len = sizeof(o->ak);
	o->body.set.signed_device_list.data = o->rec.data;
	o->body.set.signed_device_list.len = o->rec.len;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_SET_ACCOUNT_KEY;
	req->set_account_key = &o->body.set;
	return PARLEY_OK;
}

static void complete_set(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	legacy_op *o = CLIENT_OP_OWNER(op, legacy_op, op);
	wire_devlist *l = parley__malloc(sizeof(*l));
	if (status == PARLEY_OK && l != NULL)
		(void)client__peer_check_list(c, c->account.handle, o->rec.data, o->rec.len, l);
	else if (status != PARLEY_OK)
		client__set_err(c, "setting the account key failed: %s", parley_strerror(status));
	parley__free(l);
	legacy_free(o);
}

static const client_op_vtable set_vt = {build_set, complete_set, PARLEY__WIRE__RESPONSE__BODY_SET_ACCOUNT_KEY, 0};

static int build_bundles(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	legacy_op *o = CLIENT_OP_OWNER(op, legacy_op, op);
	parley__wire__get_bundles_request__init(&o->body.bundles);
	o->body.bundles.handle = c->account.handle;
	o->body.bundles.device_id = 0;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES;
	req->get_bundles = &o->body.bundles;
	return PARLEY_OK;
}

/* Keeps the devices of the list that have an identity key (from the bundles, or this device's own). */
static void complete_bundles(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	legacy_op *o = CLIENT_OP_OWNER(op, legacy_op, op);
	size_t j = 0;
	if (status != PARLEY_OK && status != PARLEY_E_NO_KEYS) {
		legacy_free(o);
		return;
	}
	for (size_t i = 0; i < o->l.n; i++) {
		wire_devlist_entry *e = &o->l.dev[i];
		int have = 0;
		if (e->device_id == c->account.device_id)
			have = client__own_identity(c, e->identity_key) == PARLEY_OK;
		for (size_t k = 0; !have && status == PARLEY_OK && k < r->get_bundles->n_bundles; k++) {
			const Parley__Wire__PreKeyBundle *b = r->get_bundles->bundles[k];
			if (b->device_id == e->device_id && b->identity_key.len == 33) {
				memcpy(e->identity_key, b->identity_key.data, 33);
				have = 1;
			}
		}
		if (have)
			o->l.dev[j++] = *e;
	}
	o->l.n = j;
	o->l.version = 1;
	if (client__akey_generate(c, o->ak) != PARLEY_OK || client__ownlist_sign(c, &o->l, &o->rec) != PARLEY_OK) {
		legacy_free(o);
		return;
	}
	o->op.vt = &set_vt;
	client__conn_submit(c, &o->op);
}

static const client_op_vtable bundles_vt = {build_bundles, complete_bundles,
					    PARLEY__WIRE__RESPONSE__BODY_GET_BUNDLES, 0};

static int build_list(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	legacy_op *o = CLIENT_OP_OWNER(op, legacy_op, op);
	parley__wire__list_devices_request__init(&o->body.list);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req->list_devices = &o->body.list;
	return PARLEY_OK;
}

static void complete_list(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	legacy_op *o = CLIENT_OP_OWNER(op, legacy_op, op);
	const Parley__Wire__ListDevicesResponse *ld = status == PARLEY_OK ? r->list_devices : NULL;
	/* another device of the account set a key meanwhile: nothing to do */
	if (ld == NULL || ld->signed_device_list.len > 0) {
		legacy_free(o);
		return;
	}
	for (size_t i = 0; i < ld->n_devices && o->l.n < WIRE_DEVLIST_MAX; i++) {
		const Parley__Wire__Device *d = ld->devices[i];
		if (d->device_key.len != sizeof(o->l.dev[0].device_key))
			continue;
		o->l.dev[o->l.n].device_id = d->device_id;
		memcpy(o->l.dev[o->l.n].device_key, d->device_key.data, sizeof(o->l.dev[0].device_key));
		o->l.n++;
	}
	o->op.vt = &bundles_vt;
	client__conn_submit(c, &o->op);
}

static const client_op_vtable list_vt = {build_list, complete_list, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES, 0};

void client__legacy_account_key(parley_client *c, size_t server_key_len)
{
	int have = 0;
	if (server_key_len != 0 || !c->account.registered)
		return;
	/* a key made here earlier whose SetAccountKey did not land is made again (the server has none) */
	if (client__akey_load(c, NULL, NULL, &have) == PARLEY_OK && !have)
		return; /* this device learnt a public key: not ours to replace */
	legacy_op *o = parley__calloc(1, sizeof(*o));
	if (o == NULL)
		return;
	dynbuf__init(&o->rec, WIRE_DEVLIST_MAX_BYTES);
	o->op.vt = &list_vt;
	client__conn_submit(c, &o->op);
}
