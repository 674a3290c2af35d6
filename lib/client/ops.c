/* The client's operations: for each, a start function (validate, queue), a request builder and a
 * completion handler; then the blocking wrappers built on them. */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define DEFAULT_REGISTER_NAME "primary"
#define DEFAULT_ADD_NAME "linked device"

/* Handles are checked for length only: the server owns the character rules and answers BAD_HANDLE. */
static int check_handle(parley_client *c, const char *handle)
{
	size_t n;
	if (handle == NULL)
		return PARLEY_E_INVAL;
	n = strnlen(handle, PARLEY_HANDLE_MAX + 1);
	if (n < WIRE_MIN_HANDLE || n > PARLEY_HANDLE_MAX) {
		client__set_err(c, "a handle has %d to %d bytes", WIRE_MIN_HANDLE, PARLEY_HANDLE_MAX);
		return PARLEY_E_BAD_HANDLE;
	}
	return PARLEY_OK;
}

static int check_name(parley_client *c, const char *name)
{
	if (name != NULL && strnlen(name, PARLEY_DEVICE_NAME_MAX + 1) > PARLEY_DEVICE_NAME_MAX) {
		client__set_err(c, "a device name has at most %d bytes", PARLEY_DEVICE_NAME_MAX);
		return PARLEY_E_INVAL;
	}
	return PARLEY_OK;
}

static client_op *op_new(client_op_kind kind, void *user)
{
	client_op *op = parley__calloc(1, sizeof(*op));
	if (op != NULL) {
		op->kind = kind;
		op->user = user;
	}
	return op;
}

/* register/link: the device key must exist (created now) and no account may be saved yet. */
static int prepare_new_account(parley_client *c)
{
	int rc = client__ensure_key(c, 1);
	if (rc != PARLEY_OK)
		return rc;
	rc = client__load_account(c);
	if (rc == PARLEY_OK) {
		client__set_err(c, "this device already has an account (%s, device %u on %s)", c->account.handle,
				(unsigned)c->account.device_id, c->account.server_url);
		return PARLEY_E_STATE;
	}
	if (rc != PARLEY_E_NO_IDENTITY)
		return rc;
	c->errmsg[0] = '\0';
	return PARLEY_OK;
}

parley_err parley_register_start(parley_client *c, const char *handle, const char *device_name, parley_done_cb cb,
				 void *user)
{
	client_op *op;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = check_handle(c, handle);
	if (rc == PARLEY_OK)
		rc = check_name(c, device_name);
	if (rc == PARLEY_OK)
		rc = prepare_new_account(c);
	if (rc != PARLEY_OK)
		return rc;
	op = op_new(OP_REGISTER, user);
	if (op == NULL)
		return PARLEY_E_NOMEM;
	snprintf(op->handle, sizeof(op->handle), "%s", handle);
	snprintf(op->name, sizeof(op->name), "%s", device_name != NULL ? device_name : DEFAULT_REGISTER_NAME);
	op->done_cb = cb;
	client__submit(c, op);
	return PARLEY_OK;
}

parley_err parley_link_start(parley_client *c, const char *handle, uint32_t device_id, parley_done_cb cb,
			     void *user)
{
	client_op *op;
	int rc;

	if (c == NULL || cb == NULL || device_id == 0)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = check_handle(c, handle);
	if (rc == PARLEY_OK)
		rc = prepare_new_account(c);
	if (rc != PARLEY_OK)
		return rc;
	op = op_new(OP_LINK, user);
	if (op == NULL)
		return PARLEY_E_NOMEM;
	snprintf(op->handle, sizeof(op->handle), "%s", handle);
	op->device_id = device_id;
	op->done_cb = cb;
	client__submit(c, op);
	return PARLEY_OK;
}

static int start_account_op(parley_client *c, client_op *op)
{
	int rc = client__load_account(c);
	if (rc != PARLEY_OK) {
		parley__free(op);
		return rc;
	}
	client__submit(c, op);
	return PARLEY_OK;
}

parley_err parley_devices_list_start(parley_client *c, parley_devices_cb cb, void *user)
{
	client_op *op;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	op = op_new(OP_LIST_DEVICES, user);
	if (op == NULL)
		return PARLEY_E_NOMEM;
	op->devices_cb = cb;
	return start_account_op(c, op);
}

parley_err parley_device_add_start(parley_client *c, const uint8_t key[PARLEY_DEVICE_KEY_BYTES], const char *name,
				   parley_device_id_cb cb, void *user)
{
	client_op *op;
	int rc;

	if (c == NULL || cb == NULL || key == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = check_name(c, name);
	if (rc != PARLEY_OK)
		return rc;
	op = op_new(OP_ADD_DEVICE, user);
	if (op == NULL)
		return PARLEY_E_NOMEM;
	memcpy(op->key, key, PARLEY_DEVICE_KEY_BYTES);
	snprintf(op->name, sizeof(op->name), "%s", name != NULL ? name : DEFAULT_ADD_NAME);
	op->id_cb = cb;
	return start_account_op(c, op);
}

parley_err parley_device_remove_start(parley_client *c, uint32_t device_id, parley_done_cb cb, void *user)
{
	client_op *op;

	if (c == NULL || cb == NULL || device_id == 0)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	op = op_new(OP_REMOVE_DEVICE, user);
	if (op == NULL)
		return PARLEY_E_NOMEM;
	op->device_id = device_id;
	op->done_cb = cb;
	return start_account_op(c, op);
}

parley_err parley_connect_start(parley_client *c, parley_done_cb cb, void *user)
{
	client_op *op;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	op = op_new(OP_CONNECT, user);
	if (op == NULL)
		return PARLEY_E_NOMEM;
	op->done_cb = cb;
	return start_account_op(c, op);
}

/* ---- request builders (called by session.c when the op is sent) ---- */

static int sign_for_op(parley_client *c, client_op *op, uint8_t sig[WIRE_SIG_LEN])
{
	dynbuf msg;
	int rc;

	dynbuf__init(&msg, WIRE_DEFAULT_MAX_FRAME);
	if (op->kind == OP_REGISTER)
		rc = wire__register_signed_bytes(c->nonce, op->handle, c->key.pk, op->name, &msg);
	else
		rc = wire__auth_signed_bytes(c->nonce, op->handle, op->device_id, &msg);
	if (rc == PARLEY_OK)
		rc = client__sign_challenge(c, msg.data, msg.len, sig);
	dynbuf__free(&msg);
	return rc;
}

int client__op_build(parley_client *c, client_op *op, Parley__Wire__Request *req, client_op_scratch *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	switch (op->kind) {
	case OP_REGISTER:
		rc = sign_for_op(c, op, s->sig);
		if (rc != PARLEY_OK)
			return rc;
		parley__wire__register_request__init(&s->body.reg);
		s->body.reg.handle = op->handle;
		s->body.reg.device_key.data = c->key.pk;
		s->body.reg.device_key.len = PARLEY_DEVICE_KEY_BYTES;
		s->body.reg.device_name = op->name;
		s->body.reg.signature.data = s->sig;
		s->body.reg.signature.len = WIRE_SIG_LEN;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
		req->register_ = &s->body.reg;
		return PARLEY_OK;
	case OP_LINK:
		rc = sign_for_op(c, op, s->sig);
		if (rc != PARLEY_OK)
			return rc;
		parley__wire__auth_request__init(&s->body.auth);
		s->body.auth.handle = op->handle;
		s->body.auth.device_id = op->device_id;
		s->body.auth.signature.data = s->sig;
		s->body.auth.signature.len = WIRE_SIG_LEN;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
		req->auth = &s->body.auth;
		return PARLEY_OK;
	case OP_LIST_DEVICES:
		parley__wire__list_devices_request__init(&s->body.list);
		req->body_case = PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES;
		req->list_devices = &s->body.list;
		return PARLEY_OK;
	case OP_ADD_DEVICE:
		parley__wire__add_device_request__init(&s->body.add);
		s->body.add.device_key.data = op->key;
		s->body.add.device_key.len = PARLEY_DEVICE_KEY_BYTES;
		s->body.add.device_name = op->name;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE;
		req->add_device = &s->body.add;
		return PARLEY_OK;
	case OP_REMOVE_DEVICE:
		parley__wire__remove_device_request__init(&s->body.remove);
		s->body.remove.device_id = op->device_id;
		req->body_case = PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE;
		req->remove_device = &s->body.remove;
		return PARLEY_OK;
	case OP_RAW:
		client__raw_set_body(req, op->raw_case, op->raw_body);
		return PARLEY_OK;
	case OP_CONNECT:
		break; /* never sent */
	}
	return PARLEY_E_INTERNAL;
}

void client__raw_set_body(Parley__Wire__Request *req, int body_case, void *body)
{
	req->body_case = (Parley__Wire__Request__BodyCase)body_case;
	switch (body_case) {
	case PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS:
		req->upload_keys = body;
		break;
	case PARLEY__WIRE__REQUEST__BODY_GET_PREKEY_COUNT:
		req->get_prekey_count = body;
		break;
	case PARLEY__WIRE__REQUEST__BODY_GET_BUNDLES:
		req->get_bundles = body;
		break;
	case PARLEY__WIRE__REQUEST__BODY_SEND_MESSAGE:
		req->send_message = body;
		break;
	case PARLEY__WIRE__REQUEST__BODY_ACK:
		req->ack = body;
		break;
	case PARLEY__WIRE__REQUEST__BODY_TYPING:
		req->typing = body;
		break;
	case PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES:
		req->list_devices = body;
		break;
	default:
		req->body_case = PARLEY__WIRE__REQUEST__BODY__NOT_SET;
		break;
	}
}

int client__submit_raw(parley_client *c, int body_case, void *body, void *mem, void (*free_fn)(void *mem),
		       client_raw_cb cb, void *ctx)
{
	client_op *op = op_new(OP_RAW, NULL);
	if (op == NULL) {
		free_fn(mem);
		return PARLEY_E_NOMEM;
	}
	op->raw_case = body_case;
	op->raw_body = body;
	op->raw_mem = mem;
	op->raw_free = free_fn;
	op->raw_cb = cb;
	op->raw_ctx = ctx;
	client__submit(c, op);
	return PARLEY_OK;
}

/* ---- completions ---- */

/* A successful Response must carry the body of its request kind. */
static int expect_body(parley_client *c, const Parley__Wire__Response *r, int body_case)
{
	if (r->body_case != (Parley__Wire__Response__BodyCase)body_case) {
		client__set_err(c, "server answered with the wrong response kind");
		return PARLEY_E_PROTO_MISSING_FIELD;
	}
	return PARLEY_OK;
}

static int save_account(parley_client *c, const char *handle, uint64_t account_id, uint32_t device_id)
{
	client_account a;
	int rc;

	memset(&a, 0, sizeof(a));
	snprintf(a.handle, sizeof(a.handle), "%s", handle);
	snprintf(a.server_url, sizeof(a.server_url), "%s", c->conn_url);
	a.account_id = account_id;
	a.device_id = device_id;
	rc = client__state_save_account(c->state, &a, c->errmsg, sizeof(c->errmsg));
	if (rc == PARLEY_OK) {
		c->account = a;
		c->have_account = 1;
	}
	return rc;
}

static int complete_new_account(parley_client *c, client_op *op, const Parley__Wire__Response *r)
{
	int rc;

	if (op->kind == OP_REGISTER) {
		rc = expect_body(c, r, PARLEY__WIRE__RESPONSE__BODY_REGISTER);
		if (rc != PARLEY_OK)
			return rc;
		return save_account(c, op->handle, r->register_->account_id, r->register_->device_id);
	}
	rc = expect_body(c, r, PARLEY__WIRE__RESPONSE__BODY_AUTH);
	if (rc != PARLEY_OK)
		return rc;
	return save_account(c, op->handle, r->auth->account_id, op->device_id);
}

void client__op_complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	parley_device_list *list = NULL;
	uint32_t new_id = 0;

	if (op->kind == OP_RAW) {
		op->raw_cb(c, op, status, r);
		op->raw_free(op->raw_mem);
		parley__free(op);
		return;
	}
	if (status == PARLEY_OK && r != NULL) {
		switch (op->kind) {
		case OP_REGISTER:
		case OP_LINK:
			status = complete_new_account(c, op, r);
			/* The account exists: the device is usable for messaging only once its Signal keys are
			 * on the server, so the caller hears back after that upload. */
			if (status == PARLEY_OK) {
				status = client__e2e_after_account(c, op->done_cb, op->user);
				if (status == PARLEY_OK) {
					parley__free(op);
					return;
				}
			}
			break;
		case OP_LIST_DEVICES:
			status = expect_body(c, r, PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES);
			if (status == PARLEY_OK)
				status = client__device_list_from_wire(r->list_devices, c->account.device_id, &list);
			break;
		case OP_ADD_DEVICE:
			status = expect_body(c, r, PARLEY__WIRE__RESPONSE__BODY_ADD_DEVICE);
			if (status == PARLEY_OK)
				new_id = r->add_device->device_id;
			break;
		case OP_REMOVE_DEVICE:
			status = expect_body(c, r, PARLEY__WIRE__RESPONSE__BODY_REMOVE_DEVICE);
			/* This device removed itself: the saved account no longer works (the server closes
			 * the connection next), so forget it and let the device register or link again. */
			if (status == PARLEY_OK && c->have_account && op->device_id == c->account.device_id) {
				status = client__state_forget_account(c->state, c->errmsg, sizeof(c->errmsg));
				c->have_account = 0;
			}
			break;
		case OP_CONNECT:
		case OP_RAW:
			break;
		}
	}
	switch (op->kind) {
	case OP_LIST_DEVICES:
		op->devices_cb(c, (parley_err)status, list, op->user);
		break;
	case OP_ADD_DEVICE:
		op->id_cb(c, (parley_err)status, new_id, op->user);
		break;
	default:
		op->done_cb(c, (parley_err)status, op->user);
		break;
	}
	parley__free(op);
}

/* ---- blocking wrappers ---- */

typedef struct sync_result {
	int done;
	parley_err status;
	parley_device_list *list;
	uint32_t id;
} sync_result;

static void sync_done(parley_client *c, parley_err status, void *user)
{
	sync_result *s = user;
	s->status = status;
	s->done = 1;
}

static void sync_devices(parley_client *c, parley_err status, parley_device_list *list, void *user)
{
	sync_result *s = user;
	s->status = status;
	s->list = list;
	s->done = 1;
}

static void sync_id(parley_client *c, parley_err status, uint32_t id, void *user)
{
	sync_result *s = user;
	s->status = status;
	s->id = id;
	s->done = 1;
}

/* Runs until the op completes. If the loop could not finish it, fail everything now so no callback
 * can later write into the caller's stack frame. */
static parley_err sync_wait(parley_client *c, sync_result *s)
{
	if (client__wait(c, &s->done) != PARLEY_OK && !s->done)
		client__fail_all(c, PARLEY_E_INTERNAL);
	return s->status;
}

parley_err parley_register(parley_client *c, const char *handle, const char *device_name)
{
	sync_result s = {0};
	int rc;

	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_register_start(c, handle, device_name, sync_done, &s);
	return rc != PARLEY_OK ? (parley_err)rc : sync_wait(c, &s);
}

parley_err parley_link(parley_client *c, const char *handle, uint32_t device_id)
{
	sync_result s = {0};
	int rc;

	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_link_start(c, handle, device_id, sync_done, &s);
	return rc != PARLEY_OK ? (parley_err)rc : sync_wait(c, &s);
}

parley_err parley_devices_list(parley_client *c, parley_device_list **out)
{
	sync_result s = {0};
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_devices_list_start(c, sync_devices, &s);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	rc = sync_wait(c, &s);
	if (rc == PARLEY_OK)
		*out = s.list;
	else
		parley_device_list_free(s.list);
	return (parley_err)rc;
}

parley_err parley_device_add(parley_client *c, const uint8_t key[PARLEY_DEVICE_KEY_BYTES], const char *name,
			     uint32_t *device_id)
{
	sync_result s = {0};
	int rc;

	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_device_add_start(c, key, name, sync_id, &s);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	rc = sync_wait(c, &s);
	if (rc == PARLEY_OK && device_id != NULL)
		*device_id = s.id;
	return (parley_err)rc;
}

parley_err parley_connect(parley_client *c)
{
	sync_result s = {0};
	int rc;

	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_connect_start(c, sync_done, &s);
	return rc != PARLEY_OK ? (parley_err)rc : sync_wait(c, &s);
}

parley_err parley_device_remove(parley_client *c, uint32_t device_id)
{
	sync_result s = {0};
	int rc;

	if (c != NULL && c->in_loop)
		return PARLEY_E_STATE;
	rc = parley_device_remove_start(c, device_id, sync_done, &s);
	return rc != PARLEY_OK ? (parley_err)rc : sync_wait(c, &s);
}
