/* This account's signed device list (docs/protocol.md §11), kept up to date by the device holding the
 * account key: after registering (version 1: this device), after adding a device (the list + the new
 * device, whose identity key came in its link code) and after removing one (the list without it).
 *
 * One update is two requests: ListDevices (whose answer carries the current signed list, verified
 * against our own key like any peer's) then UploadDeviceList with the next version. The private half
 * of the account key is read from client.db only to sign, and wiped right after. */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"
#include "crypto/crypto.h"

typedef struct ownlist_op {
	client_op op;
	union {
		Parley__Wire__ListDevicesRequest list;
		Parley__Wire__UploadDeviceListRequest upload;
	} body;
	wire_devlist_entry add;
	int has_add;
	uint32_t remove_id;
	dynbuf rec; /* the signed record being uploaded */
	parley_done_cb cb;
	void *user;
} ownlist_op;

static void finish(parley_client *c, ownlist_op *o, int status)
{
	dynbuf__free(&o->rec);
	if (o->cb != NULL)
		o->cb(c, (parley_err)status, o->user);
	parley__free(o);
}

/* l with entry e in its place (ids stay ascending; an entry with the same id is replaced). */
static int list_put(wire_devlist *l, const wire_devlist_entry *e)
{
	size_t i = 0;
	while (i < l->n && l->dev[i].device_id < e->device_id)
		i++;
	if (i < l->n && l->dev[i].device_id == e->device_id) {
		l->dev[i] = *e;
		return PARLEY_OK;
	}
	if (l->n >= WIRE_DEVLIST_MAX)
		return PARLEY_E_TOO_MANY_DEVICES;
	memmove(&l->dev[i + 1], &l->dev[i], (l->n - i) * sizeof(l->dev[0]));
	l->dev[i] = *e;
	l->n++;
	return PARLEY_OK;
}

static void list_drop(wire_devlist *l, uint32_t id)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->dev[i].device_id == id) {
			memmove(&l->dev[i], &l->dev[i + 1], (l->n - i - 1) * sizeof(l->dev[0]));
			l->n--;
			return;
		}
	}
}

int client__ownlist_sign(parley_client *c, wire_devlist *l, dynbuf *out)
{
	uint8_t pub[33], priv[32];
	int have = 0;
	int rc = client__akey_load(c, pub, priv, &have);
	if (rc == PARLEY_OK && !have)
		rc = PARLEY_E_NO_ACCOUNT_KEY;
	if (rc == PARLEY_E_NOT_FOUND)
		rc = PARLEY_E_NO_ACCOUNT_KEY;
	if (rc == PARLEY_E_NO_ACCOUNT_KEY) {
		client__set_err(c, "this device does not hold the account key of %s: run this on the device that "
				   "does (the one that registered, or where it was moved with parley devices transfer-key)",
				c->account.handle);
	}
	if (rc == PARLEY_OK) {
		memcpy(l->account_key, pub, 33);
		l->account_id = c->account.account_id;
		snprintf(l->handle, sizeof(l->handle), "%s", c->account.handle);
		l->timestamp_ms = client__now_ms();
		rc = wire__devlist_sign(l, priv, out);
	}
	crypto__wipe(priv, sizeof(priv));
	return rc;
}

static int build_upload(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	ownlist_op *o = CLIENT_OP_OWNER(op, ownlist_op, op);
	parley__wire__upload_device_list_request__init(&o->body.upload);
	o->body.upload.signed_device_list.data = o->rec.data;
	o->body.upload.signed_device_list.len = o->rec.len;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_UPLOAD_DEVICE_LIST;
	req->upload_device_list = &o->body.upload;
	return PARLEY_OK;
}

static void complete_upload(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	ownlist_op *o = CLIENT_OP_OWNER(op, ownlist_op, op);
	if (status == PARLEY_OK) {
		/* kept as this account's latest, so our own sends check against it at once */
		wire_devlist *l = parley__malloc(sizeof(*l));
		status = l == NULL ? PARLEY_E_NOMEM : client__peer_check_list(c, c->account.handle, o->rec.data, o->rec.len, l);
		parley__free(l);
	} else if (r != NULL) {
		client__set_err(c, "the server refused the signed device list: %s", parley_strerror(status));
	}
	finish(c, o, status);
}

static const client_op_vtable upload_vt = {build_upload, complete_upload,
					   PARLEY__WIRE__RESPONSE__BODY_UPLOAD_DEVICE_LIST, 0};

static int build_list(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	ownlist_op *o = CLIENT_OP_OWNER(op, ownlist_op, op);
	parley__wire__list_devices_request__init(&o->body.list);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req->list_devices = &o->body.list;
	return PARLEY_OK;
}

static void complete_list(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	ownlist_op *o = CLIENT_OP_OWNER(op, ownlist_op, op);
	wire_devlist *l = parley__calloc(1, sizeof(*l));
	if (l == NULL)
		status = PARLEY_E_NOMEM;
	if (status == PARLEY_OK && r->list_devices->signed_device_list.len > 0)
		status = client__peer_check_list(c, c->account.handle, r->list_devices->signed_device_list.data,
						 r->list_devices->signed_device_list.len, l);
	/* no list yet: this is version 1 */
	if (status == PARLEY_OK && o->has_add)
		status = list_put(l, &o->add);
	if (status == PARLEY_OK && o->remove_id != 0)
		list_drop(l, o->remove_id);
	if (status == PARLEY_OK) {
		l->version++;
		status = client__ownlist_sign(c, l, &o->rec);
	}
	parley__free(l);
	if (status != PARLEY_OK) {
		finish(c, o, status);
		return;
	}
	o->op.vt = &upload_vt;
	o->op.id = 0;
	o->op.deadline = 0;
	client__conn_submit(c, &o->op);
}

static const client_op_vtable list_vt = {build_list, complete_list, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES, 0};

int client__require_account_key(parley_client *c)
{
	int have = 0;
	int rc = client__akey_load(c, NULL, NULL, &have);
	if ((rc == PARLEY_OK && !have) || rc == PARLEY_E_NOT_FOUND) {
		client__set_err(c, "this device does not hold the account key of %s: add or remove devices from the "
				   "device that does (the one that registered, or where the key was moved with "
				   "parley devices transfer-key)",
				c->account.handle);
		return PARLEY_E_NO_ACCOUNT_KEY;
	}
	return rc;
}

int client__ownlist_update(parley_client *c, const wire_devlist_entry *add, uint32_t remove_id, parley_done_cb cb,
			   void *user)
{
	int rc = client__require_account_key(c);
	if (rc != PARLEY_OK)
		return rc;
	ownlist_op *o = parley__calloc(1, sizeof(*o));
	if (o == NULL)
		return PARLEY_E_NOMEM;
	o->op.vt = &list_vt;
	dynbuf__init(&o->rec, WIRE_DEVLIST_MAX_BYTES);
	if (add != NULL) {
		o->add = *add;
		o->has_add = 1;
	}
	o->remove_id = remove_id;
	o->cb = cb;
	o->user = user;
	client__conn_submit(c, &o->op);
	return PARLEY_OK;
}

int client__own_identity(parley_client *c, uint8_t ik[PARLEY_SIGNAL_PUBKEY_LEN])
{
	parley_keypair id;
	int rc = client__e2e_open(c);
	if (rc == PARLEY_OK)
		rc = c->sigstore.get_identity_keypair(c->sigstore.user, &id);
	if (rc == PARLEY_OK)
		memcpy(ik, id.pub, PARLEY_SIGNAL_PUBKEY_LEN);
	parley_signal_keypair_wipe(&id);
	return rc;
}
