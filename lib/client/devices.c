/* The account's devices: list, add and remove operations, the new device's link code (its proof of
 * possession for add), and parley_device_list, an immutable copy of a ListDevicesResponse independent
 * of the decoded frame (which is freed as soon as the response is handled): one allocation for the
 * entries, one per name. */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "crypto/crypto.h"

typedef struct device_entry {
	uint32_t id;
	char *name;
	uint8_t key[PARLEY_DEVICE_KEY_BYTES];
	uint64_t created_ms;
	uint64_t last_seen_ms;
	int is_self;
} device_entry;

struct parley_device_list {
	size_t count;
	device_entry *entries;
};

int client__device_list_from_wire(const Parley__Wire__ListDevicesResponse *r, uint32_t self_id,
				  parley_device_list **out)
{
	parley_device_list *l;
	size_t i;
	int rc;

	*out = NULL;
	/* wire__decode_frame already bounded n_devices by the limits; check the key sizes we copy. */
	for (i = 0; i < r->n_devices; i++) {
		if (r->devices[i] == NULL || r->devices[i]->device_key.len != PARLEY_DEVICE_KEY_BYTES)
			return PARLEY_E_PROTO_MALFORMED;
	}
	l = parley__calloc(1, sizeof(*l));
	if (l == NULL)
		return PARLEY_E_NOMEM;
	if (r->n_devices > 0) {
		l->entries = parley__calloc(r->n_devices, sizeof(*l->entries));
		if (l->entries == NULL) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
	}
	for (i = 0; i < r->n_devices; i++) {
		const Parley__Wire__Device *d = r->devices[i];
		device_entry *e = &l->entries[i];

		e->name = parley__strndup(d->name != NULL ? d->name : "", PARLEY_DEVICE_NAME_MAX);
		if (e->name == NULL) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
		l->count = i + 1; /* so a failure frees exactly the names made so far */
		e->id = d->device_id;
		memcpy(e->key, d->device_key.data, PARLEY_DEVICE_KEY_BYTES);
		e->created_ms = d->created_ms;
		e->last_seen_ms = d->last_seen_ms;
		e->is_self = d->device_id == self_id;
	}
	rc = PARLEY_OK;
out:
	if (rc != PARLEY_OK) {
		parley_device_list_free(l);
		return rc;
	}
	*out = l;
	return PARLEY_OK;
}

size_t parley_device_list_count(const parley_device_list *l)
{
	return l != NULL ? l->count : 0;
}

parley_err parley_device_list_get(const parley_device_list *l, size_t i, parley_device_info *out)
{
	const device_entry *e;

	if (l == NULL || out == NULL || i >= l->count)
		return PARLEY_E_INVAL;
	e = &l->entries[i];
	out->id = e->id;
	out->name = e->name;
	out->key = e->key;
	out->created_ms = e->created_ms;
	out->last_seen_ms = e->last_seen_ms;
	out->is_self = e->is_self;
	return PARLEY_OK;
}

void parley_device_list_free(parley_device_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->count; i++)
		parley__free(l->entries[i].name);
	parley__free(l->entries);
	parley__free(l);
}

/* ---- operations ---- */

#define DEFAULT_ADD_NAME "linked device"

static uint64_t load_be64_(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* the link code's layout (include/parley/client.h) */
#define LINK_TS_OFF PARLEY_DEVICE_KEY_BYTES
#define LINK_SIG_OFF (LINK_TS_OFF + 8)
#define LINK_IK_OFF (LINK_SIG_OFF + 64)
#define LINK_IKSIG_OFF (LINK_IK_OFF + PARLEY_SIGNAL_PUBKEY_LEN)
_Static_assert(LINK_IKSIG_OFF + 64 == PARLEY_DEVICE_LINK_CODE_BYTES, "link code layout");

/* What the identity key's XEdDSA signature covers: the AddDevice signed bytes, then the identity key. */
static int link_ik_bytes(const char *handle, const uint8_t *code, dynbuf *msg)
{
	int rc = wire__add_device_signed_bytes(handle, code, load_be64_(code + LINK_TS_OFF), msg);
	return rc == PARLEY_OK ? dynbuf__append(msg, code + LINK_IK_OFF, PARLEY_SIGNAL_PUBKEY_LEN) : rc;
}


parley_err parley_device_link_code(parley_client *c, const char *handle, uint8_t out[PARLEY_DEVICE_LINK_CODE_BYTES])
{
	dynbuf msg;
	parley_keypair id;
	uint64_t ts = parley__wall_ms();
	int rc;

	if (c == NULL || out == NULL)
		return PARLEY_E_INVAL;
	if (!wire__handle_valid(handle))
		return PARLEY_E_BAD_HANDLE;
	rc = client__ensure_key(c, 1);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	memset(&id, 0, sizeof(id));
	rc = client__keys_identity(c, &id);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	dynbuf__init(&msg, 256);
	rc = wire__add_device_signed_bytes(handle, c->key.pk, ts, &msg);
	if (rc == PARLEY_OK) {
		memcpy(out, c->key.pk, PARLEY_DEVICE_KEY_BYTES);
		for (int i = 0; i < 8; i++)
			out[LINK_TS_OFF + i] = (uint8_t)(ts >> (56 - 8 * i));
		crypto_sign_detached(out + LINK_SIG_OFF, NULL, msg.data, msg.len, c->key.sk);
		memcpy(out + LINK_IK_OFF, id.pub, PARLEY_SIGNAL_PUBKEY_LEN);
		dynbuf__reset(&msg);
		rc = link_ik_bytes(handle, out, &msg);
	}
	if (rc == PARLEY_OK)
		rc = crypto__xeddsa_sign(out + LINK_IKSIG_OFF, id.priv, msg.data, msg.len);
	parley_signal_keypair_wipe(&id);
	dynbuf__free(&msg);
	return (parley_err)rc;
}

/* On the device adding it: the new device's identity key must be a Signal key it signed with (the
 * account key is about to vouch for it). */
static int check_link_identity(parley_client *c, const uint8_t *code)
{
	uint8_t raw[32];
	dynbuf msg;
	dynbuf__init(&msg, 256);
	int rc = crypto__pubkey_parse(raw, code + LINK_IK_OFF, PARLEY_SIGNAL_PUBKEY_LEN);
	if (rc == PARLEY_OK)
		rc = link_ik_bytes(c->account.handle, code, &msg);
	if (rc == PARLEY_OK)
		rc = crypto__xeddsa_verify(raw, msg.data, msg.len, code + LINK_IKSIG_OFF);
	dynbuf__free(&msg);
	if (rc != PARLEY_OK) {
		client__set_err(c, "the link code's identity key is not signed by it: make a new code on the new "
				   "device (parley device-key %s)",
				c->account.handle);
		return PARLEY_E_BAD_SIGNATURE;
	}
	return PARLEY_OK;
}

typedef struct devices_op {
	client_op op;
	union {
		Parley__Wire__ListDevicesRequest list;
		Parley__Wire__AddDeviceRequest add;
		Parley__Wire__RemoveDeviceRequest remove;
	} body;
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES]; /* add: key || timestamp || signature */
	char name[PARLEY_DEVICE_NAME_MAX + 1];
	uint32_t device_id;
	union {
		parley_devices_cb list;
		parley_device_id_cb add;
		parley_done_cb remove;
	} cb;
	void *user;
} devices_op;

static int build_list(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	devices_op *d = CLIENT_OP_OWNER(op, devices_op, op);
	parley__wire__list_devices_request__init(&d->body.list);
	req->body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
	req->list_devices = &d->body.list;
	return PARLEY_OK;
}

static void complete_list(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	devices_op *d = CLIENT_OP_OWNER(op, devices_op, op);
	parley_device_list *list = NULL;

	if (status == PARLEY_OK)
		status = client__device_list_from_wire(r->list_devices, c->account.device_id, &list);
	d->cb.list(c, (parley_err)status, list, d->user);
	parley__free(d);
}

static int build_add(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	devices_op *d = CLIENT_OP_OWNER(op, devices_op, op);
	parley__wire__add_device_request__init(&d->body.add);
	d->body.add.device_key.data = d->code;
	d->body.add.device_key.len = PARLEY_DEVICE_KEY_BYTES;
	d->body.add.timestamp_ms = load_be64_(d->code + LINK_TS_OFF);
	d->body.add.signature.data = d->code + LINK_SIG_OFF;
	d->body.add.signature.len = LINK_IK_OFF - LINK_SIG_OFF;
	d->body.add.device_name = d->name;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE;
	req->add_device = &d->body.add;
	return PARLEY_OK;
}

/* The added device's id is reported even when the list upload failed: it exists on the server, and
 * errmsg (from ownlist.c) says why peers will refuse it until a list names it. */
static void listed_after_add(parley_client *c, parley_err status, void *user)
{
	devices_op *d = user;
	d->cb.add(c, status, d->device_id, d->user);
	parley__free(d);
}

/* Added: the account key now signs the next list with the new device (its identity key from the code). */
static void complete_add(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	devices_op *d = CLIENT_OP_OWNER(op, devices_op, op);
	wire_devlist_entry e;
	if (status == PARLEY_OK) {
		memset(&e, 0, sizeof(e));
		d->device_id = r->add_device->device_id;
		e.device_id = d->device_id;
		memcpy(e.identity_key, d->code + LINK_IK_OFF, sizeof(e.identity_key));
		memcpy(e.device_key, d->code, sizeof(e.device_key));
		status = client__ownlist_update(c, &e, 0, listed_after_add, d);
		if (status == PARLEY_OK)
			return;
	}
	d->cb.add(c, (parley_err)status, status == PARLEY_OK ? d->device_id : 0, d->user);
	parley__free(d);
}

static int build_remove(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	devices_op *d = CLIENT_OP_OWNER(op, devices_op, op);
	parley__wire__remove_device_request__init(&d->body.remove);
	d->body.remove.device_id = d->device_id;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
	req->remove_device = &d->body.remove;
	return PARLEY_OK;
}

static void complete_remove(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	devices_op *d = CLIENT_OP_OWNER(op, devices_op, op);

	/* This device removed itself: the saved account no longer works (the server closes the connection
	 * next), so forget it and let the device register or link again. */
	if (status == PARLEY_OK && c->have_account && d->device_id == c->account.device_id) {
		status = client__state_forget_account(c->state, c->errmsg, sizeof(c->errmsg));
		c->have_account = 0;
	} else if (status == PARLEY_OK) {
		/* the account key signs the list without it, so peers stop encrypting to it */
		status = client__ownlist_update(c, NULL, d->device_id, d->cb.remove, d->user);
		if (status == PARLEY_OK) {
			parley__free(d);
			return;
		}
	}
	d->cb.remove(c, (parley_err)status, d->user);
	parley__free(d);
}

static const client_op_vtable list_vt = {build_list, complete_list, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES, 0};
static const client_op_vtable add_vt = {build_add, complete_add, PARLEY__WIRE__RESPONSE__BODY_ADD_DEVICE, 0};
static const client_op_vtable remove_vt = {build_remove, complete_remove, PARLEY__WIRE__RESPONSE__BODY_REMOVE_DEVICE,
					   0};

static devices_op *op_new(const client_op_vtable *vt, void *user)
{
	devices_op *d = parley__calloc(1, sizeof(*d));
	if (d != NULL) {
		d->op.vt = vt;
		d->user = user;
	}
	return d;
}

int client__devices_list_submit(parley_client *c, parley_devices_cb cb, void *user)
{
	devices_op *d = op_new(&list_vt, user);
	if (d == NULL)
		return PARLEY_E_NOMEM;
	d->cb.list = cb;
	client__conn_submit(c, &d->op);
	return PARLEY_OK;
}

parley_err parley_devices_list_start(parley_client *c, parley_devices_cb cb, void *user)
{
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc == PARLEY_OK)
		rc = client__devices_list_submit(c, cb, user);
	return (parley_err)rc;
}

parley_err parley_device_add_start(parley_client *c, const uint8_t link_code[PARLEY_DEVICE_LINK_CODE_BYTES],
				   const char *name, parley_device_id_cb cb, void *user)
{
	devices_op *d;
	int rc;

	if (c == NULL || cb == NULL || link_code == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__check_name(c, name);
	if (rc == PARLEY_OK)
		rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	rc = client__require_account_key(c);
	if (rc == PARLEY_OK)
		rc = check_link_identity(c, link_code);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	d = op_new(&add_vt, user);
	if (d == NULL)
		return PARLEY_E_NOMEM;
	memcpy(d->code, link_code, PARLEY_DEVICE_LINK_CODE_BYTES);
	snprintf(d->name, sizeof(d->name), "%s", name != NULL ? name : DEFAULT_ADD_NAME);
	d->cb.add = cb;
	client__conn_submit(c, &d->op);
	return PARLEY_OK;
}

parley_err parley_device_remove_start(parley_client *c, uint32_t device_id, parley_done_cb cb, void *user)
{
	devices_op *d;
	int rc;

	if (c == NULL || cb == NULL || device_id == 0)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	/* removing another device needs the account key (the list must drop it); a device may always
	 * remove itself */
	if (rc == PARLEY_OK && device_id != c->account.device_id)
		rc = client__require_account_key(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	d = op_new(&remove_vt, user);
	if (d == NULL)
		return PARLEY_E_NOMEM;
	d->device_id = device_id;
	d->cb.remove = cb;
	client__conn_submit(c, &d->op);
	return PARLEY_OK;
}

/* ---- blocking wrappers ---- */

static void sync_devices(parley_client *c, parley_err status, parley_device_list *list, void *user)
{
	client_sync *s = user;
	s->list = list;
	client__sync_done(c, status, s);
}

static void sync_id(parley_client *c, parley_err status, uint32_t id, void *user)
{
	client_sync *s = user;
	s->id = id;
	client__sync_done(c, status, s);
}

parley_err parley_devices_list(parley_client *c, parley_device_list **out)
{
	client_sync s = {0};
	parley_err rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	rc = client__sync_wait(c, &s, parley_devices_list_start(c, sync_devices, &s));
	if (rc == PARLEY_OK)
		*out = s.list;
	else
		parley_device_list_free(s.list);
	return rc;
}

parley_err parley_device_add(parley_client *c, const uint8_t link_code[PARLEY_DEVICE_LINK_CODE_BYTES],
			     const char *name, uint32_t *device_id)
{
	client_sync s = {0};
	parley_err rc;

	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	rc = client__sync_wait(c, &s, parley_device_add_start(c, link_code, name, sync_id, &s));
	if (rc == PARLEY_OK && device_id != NULL)
		*device_id = s.id;
	return rc;
}

parley_err parley_device_remove(parley_client *c, uint32_t device_id)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_device_remove_start(c, device_id, client__sync_done, &s));
}
