/* The operations that authenticate a connection: register (a new account), link (this device joins an
 * account another device added it to), and the saved account's own authentication, which the event
 * core puts in front of any other request on a fresh connection (the conn hook new_auth_op). All three
 * answer the connection's challenge, so they are flagged CLIENT_OP_AUTHENTICATES; connect needs only an
 * authenticated connection and sends nothing of its own (CLIENT_OP_NO_REQUEST). */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

#define DEFAULT_REGISTER_NAME "primary"

typedef struct account_op {
	client_op op;
	char handle[PARLEY_HANDLE_MAX + 1];
	char name[PARLEY_DEVICE_NAME_MAX + 1];
	uint32_t device_id;
	parley_done_cb cb; /* NULL for the saved account's auth */
	void *user;
	/* the request body (lives until completion) */
	union {
		Parley__Wire__RegisterRequest reg;
		Parley__Wire__AuthRequest auth;
	} body;
	uint8_t sig[WIRE_SIG_LEN];
	uint8_t pow[WIRE_POW_LEN];
	uint8_t account_key[PARLEY_SIGNAL_PUBKEY_LEN]; /* register: the new account key's public half */
} account_op;

int client__sign_challenge(const parley_client *c, const uint8_t *msg, size_t len, uint8_t sig[WIRE_SIG_LEN])
{
	if (!c->have_key)
		return PARLEY_E_NO_IDENTITY;
	if (crypto_sign_detached(sig, NULL, msg, len, c->key.sk) != 0)
		return PARLEY_E_CRYPTO;
	return PARLEY_OK;
}

/* Signs the connection's fresh nonce, in the signed-bytes layout of register or auth (docs/protocol.md
 * §5), into a->sig. */
static int sign_nonce(parley_client *c, account_op *a, int is_register)
{
	dynbuf msg;
	int rc;

	dynbuf__init(&msg, WIRE_DEFAULT_MAX_FRAME);
	if (is_register)
		rc = wire__register_signed_bytes(c->nonce, a->handle, c->key.pk, a->name, &msg);
	else
		rc = wire__auth_signed_bytes(c->nonce, a->handle, a->device_id, &msg);
	if (rc == PARLEY_OK)
		rc = client__sign_challenge(c, msg.data, msg.len, a->sig);
	dynbuf__free(&msg);
	return rc;
}

/* ---- builds ---- */

static int build_register(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	account_op *a = CLIENT_OP_OWNER(op, account_op, op);
	int rc = sign_nonce(c, a, 1);
	if (rc != PARLEY_OK)
		return rc;
	parley__wire__register_request__init(&a->body.reg);
	a->body.reg.handle = a->handle;
	a->body.reg.device_key.data = c->key.pk;
	a->body.reg.device_key.len = PARLEY_DEVICE_KEY_BYTES;
	a->body.reg.device_name = a->name;
	a->body.reg.signature.data = a->sig;
	a->body.reg.signature.len = WIRE_SIG_LEN;
	a->body.reg.account_key.data = a->account_key;
	a->body.reg.account_key.len = sizeof(a->account_key);
	if (c->register_pow_bits != 0) {
		/* the server asks each registration to pay some work (registration=pow): about
		 * 2^bits hashes, bound to this challenge, so it is done here and now */
		rc = wire__register_pow_solve(c->nonce, a->handle, c->key.pk, c->register_pow_bits, a->pow);
		if (rc != PARLEY_OK) {
			client__set_err(c, "the server asks a %u-bit proof of work to register; at most %d is supported",
					c->register_pow_bits, WIRE_POW_MAX_BITS);
			return rc;
		}
		a->body.reg.pow.data = a->pow;
		a->body.reg.pow.len = WIRE_POW_LEN;
	}
	req->body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req->register_ = &a->body.reg;
	return PARLEY_OK;
}

/* link and the saved account's auth send the same AuthRequest. */
static int build_auth(parley_client *c, client_op *op, Parley__Wire__Request *req)
{
	account_op *a = CLIENT_OP_OWNER(op, account_op, op);
	int rc = sign_nonce(c, a, 0);
	if (rc != PARLEY_OK)
		return rc;
	parley__wire__auth_request__init(&a->body.auth);
	a->body.auth.handle = a->handle;
	a->body.auth.device_id = a->device_id;
	a->body.auth.signature.data = a->sig;
	a->body.auth.signature.len = WIRE_SIG_LEN;
	req->body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	req->auth = &a->body.auth;
	return PARLEY_OK;
}

/* ---- completions ---- */

static int save_account(parley_client *c, const char *handle, uint64_t account_id, uint32_t device_id,
			int registered)
{
	client_account a;
	int rc;

	memset(&a, 0, sizeof(a));
	snprintf(a.handle, sizeof(a.handle), "%s", handle);
	snprintf(a.server_url, sizeof(a.server_url), "%s", c->conn_url);
	a.account_id = account_id;
	a.device_id = device_id;
	a.registered = registered;
	rc = client__state_save_account(c->state, &a, c->errmsg, sizeof(c->errmsg));
	if (rc == PARLEY_OK) {
		c->account = a;
		c->have_account = 1;
	}
	return rc;
}

/* After a registration's keys are on the server: the account's first signed device list (version 1,
 * this device alone), so peers can check this device from the first message. register completes
 * after it. */
typedef struct reg_chain {
	parley_done_cb cb;
	void *user;
} reg_chain;

static void after_register_keys(parley_client *c, parley_err status, void *user)
{
	reg_chain ch = *(reg_chain *)user;
	wire_devlist_entry self;

	parley__free(user);
	memset(&self, 0, sizeof(self));
	if (status == PARLEY_OK) {
		self.device_id = c->account.device_id;
		memcpy(self.device_key, c->key.pk, sizeof(self.device_key));
		status = (parley_err)client__own_identity(c, self.identity_key);
	}
	if (status == PARLEY_OK)
		status = (parley_err)client__ownlist_update(c, &self, 0, ch.cb, ch.user);
	if (status != PARLEY_OK)
		ch.cb(c, status, ch.user);
}

/* register and link: save the account, then upload the Signal keys. The device is usable for messaging
 * only once they are on the server, so the caller hears back after that upload. */
static void complete_new_account(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	account_op *a = CLIENT_OP_OWNER(op, account_op, op);

	if (status == PARLEY_E_STATE && r == NULL && c->have_account)
		client__set_err(c, "this device already has an account (%s, device %u)", c->account.handle,
				(unsigned)c->account.device_id);
	if (status == PARLEY_OK && r->body_case == PARLEY__WIRE__RESPONSE__BODY_REGISTER)
		status = save_account(c, a->handle, r->register_->account_id, r->register_->device_id, 1);
	else if (status == PARLEY_OK)
		status = save_account(c, a->handle, r->auth->account_id, a->device_id, 0);
	if (status == PARLEY_OK && r->body_case == PARLEY__WIRE__RESPONSE__BODY_AUTH)
		status = client__akey_learn(c, r->auth->account_key.data, r->auth->account_key.len);
	if (status == PARLEY_OK && r->body_case == PARLEY__WIRE__RESPONSE__BODY_REGISTER) {
		reg_chain *ch = parley__malloc(sizeof(*ch));
		if (ch == NULL) {
			status = PARLEY_E_NOMEM;
		} else {
			ch->cb = a->cb;
			ch->user = a->user;
			status = client__keys_after_account(c, after_register_keys, ch);
			if (status != PARLEY_OK)
				parley__free(ch);
		}
	} else if (status == PARLEY_OK) {
		status = client__keys_after_account(c, a->cb, a->user);
	}
	if (status != PARLEY_OK)
		a->cb(c, (parley_err)status, a->user);
	parley__free(a);
}

/* The saved account's auth: everything queued behind it needed it, so a refusal fails them all. */
static void complete_auth(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	account_op *a = CLIENT_OP_OWNER(op, account_op, op);

	if (status == PARLEY_OK) {
		/* the account key as the server holds it; a key it does not recognise is refused (a
		 * different one replaces the public half: only a re-registration changes it) */
		if (client__akey_learn(c, r->auth->account_key.data, r->auth->account_key.len) != PARLEY_OK)
			client__set_err(c, "the server sent a malformed account key");
		client__keys_after_auth(c);
		client__legacy_account_key(c, r->auth->account_key.len);
		client__entity_after_auth(c);
		client__thread_after_auth(c);
	} else {
		if (r != NULL)
			client__set_err(c, "authentication as %s device %u refused: %s", a->handle,
					(unsigned)a->device_id, r->message != NULL ? r->message : "");
		client__conn_fail(c, status);
	}
	parley__free(a);
}

static void complete_connect(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	account_op *a = CLIENT_OP_OWNER(op, account_op, op);
	a->cb(c, (parley_err)status, a->user);
	parley__free(a);
}

static const client_op_vtable register_vt = {build_register, complete_new_account,
					     PARLEY__WIRE__RESPONSE__BODY_REGISTER, CLIENT_OP_AUTHENTICATES};
static const client_op_vtable link_vt = {build_auth, complete_new_account, PARLEY__WIRE__RESPONSE__BODY_AUTH,
					 CLIENT_OP_AUTHENTICATES};
static const client_op_vtable auth_vt = {build_auth, complete_auth, PARLEY__WIRE__RESPONSE__BODY_AUTH,
					 CLIENT_OP_AUTHENTICATES};
static const client_op_vtable connect_vt = {NULL, complete_connect, 0, CLIENT_OP_NO_REQUEST};

static account_op *op_new(const client_op_vtable *vt, const char *handle, parley_done_cb cb, void *user)
{
	account_op *a = parley__calloc(1, sizeof(*a));
	if (a != NULL) {
		a->op.vt = vt;
		snprintf(a->handle, sizeof(a->handle), "%s", handle);
		a->cb = cb;
		a->user = user;
	}
	return a;
}

int client__auth_op_new(parley_client *c, client_op **out)
{
	account_op *a;
	int rc = client__load_account(c);

	*out = NULL;
	if (rc != PARLEY_OK)
		return rc;
	a = op_new(&auth_vt, c->account.handle, NULL, NULL);
	if (a == NULL)
		return PARLEY_E_NOMEM;
	a->device_id = c->account.device_id;
	*out = &a->op;
	return PARLEY_OK;
}

/* ---- public ---- */

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
	account_op *a;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__check_handle(c, handle);
	if (rc == PARLEY_OK)
		rc = client__check_name(c, device_name);
	if (rc == PARLEY_OK)
		rc = prepare_new_account(c);
	if (rc != PARLEY_OK)
		return rc;
	a = op_new(&register_vt, handle, cb, user);
	if (a == NULL)
		return PARLEY_E_NOMEM;
	rc = client__akey_generate(c, a->account_key);
	if (rc != PARLEY_OK) {
		parley__free(a);
		return rc;
	}
	snprintf(a->name, sizeof(a->name), "%s", device_name != NULL ? device_name : DEFAULT_REGISTER_NAME);
	client__conn_submit(c, &a->op);
	return PARLEY_OK;
}

parley_err parley_link_start(parley_client *c, const char *handle, uint32_t device_id, parley_done_cb cb,
			     void *user)
{
	account_op *a;
	int rc;

	if (c == NULL || cb == NULL || device_id == 0)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__check_handle(c, handle);
	if (rc == PARLEY_OK)
		rc = prepare_new_account(c);
	if (rc != PARLEY_OK)
		return rc;
	a = op_new(&link_vt, handle, cb, user);
	if (a == NULL)
		return PARLEY_E_NOMEM;
	a->device_id = device_id;
	client__conn_submit(c, &a->op);
	return PARLEY_OK;
}

parley_err parley_connect_start(parley_client *c, parley_done_cb cb, void *user)
{
	account_op *a;
	int rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	c->errmsg[0] = '\0';
	rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return rc;
	a = op_new(&connect_vt, "", cb, user);
	if (a == NULL)
		return PARLEY_E_NOMEM;
	client__conn_submit(c, &a->op);
	return PARLEY_OK;
}

parley_err parley_register(parley_client *c, const char *handle, const char *device_name)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_register_start(c, handle, device_name, client__sync_done, &s));
}

parley_err parley_link(parley_client *c, const char *handle, uint32_t device_id)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_link_start(c, handle, device_id, client__sync_done, &s));
}

parley_err parley_connect(parley_client *c)
{
	client_sync s = {0};
	if (client__sync_refused(c))
		return PARLEY_E_STATE;
	return client__sync_wait(c, &s, parley_connect_start(c, client__sync_done, &s));
}
