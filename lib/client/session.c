/* The client's connection state machine (the event core).
 *
 * CONN_NONE --connect--> CONNECTING --on_open--> WAIT_CHALLENGE --Push{Challenge}--> CHALLENGED
 *   CHALLENGED + queued register/link  -> send it (it consumes the nonce)  -> AUTHENTICATING
 *   CHALLENGED + queued other op       -> send AuthRequest (signed nonce) -> AUTHENTICATING
 *   AUTHENTICATING --success--> READY (queued ops are sent) / --failure--> ops fail, connection closed
 *
 * The challenge nonce is single use: when a register/auth attempt fails, parleyd pushes a fresh
 * challenge before the error response (docs/protocol.md §5) and the connection goes back to CHALLENGED;
 * without that push the connection is closed, since only a new connection would bring a new nonce.
 *
 * Every transition runs from the loop (transport callbacks, timers, the 0 ms kick timer), never from
 * inside a *_start() call, so a user callback never runs before *_start() has returned.
 *
 * Timeouts: one timer for the whole client, armed at the nearest of the connect-phase deadline
 * (connect + challenge + auth, connect_timeout_ms) and the deadlines of sent requests
 * (request_timeout_ms each).
 */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

static void pump(parley_client *c);
static void arm_timer(parley_client *c);

int client__busy(const parley_client *c)
{
	return c->queued != NULL || c->sent != NULL;
}

int client__sign_challenge(const parley_client *c, const uint8_t *msg, size_t len, uint8_t sig[WIRE_SIG_LEN])
{
	if (!c->have_key)
		return PARLEY_E_NO_IDENTITY;
	if (crypto_sign_detached(sig, NULL, msg, len, c->key.sk) != 0)
		return PARLEY_E_CRYPTO;
	return PARLEY_OK;
}

static void on_kick(uv_timer_t *t)
{
	pump(t->data);
}

static void schedule(parley_client *c)
{
	uv_timer_start(&c->kick, on_kick, 0, 0);
}

void client__submit(parley_client *c, client_op *op)
{
	client_op **tail = &c->queued;
	while (*tail != NULL)
		tail = &(*tail)->next;
	op->next = NULL;
	*tail = op;
	schedule(c);
}

static void close_transport(parley_client *c)
{
	if (c->tp != NULL && c->conn != CONN_CLOSING) {
		c->conn = CONN_CLOSING;
		transport__close(c->tp);
	}
	c->conn_deadline = 0;
	sodium_memzero(c->nonce, sizeof(c->nonce));
}

/* Detach both lists first: callbacks may submit new operations, which must not be failed too. */
void client__fail_all(parley_client *c, int err)
{
	client_op *list[2] = {c->sent, c->queued};
	size_t i;

	c->sent = NULL;
	c->queued = NULL;
	for (i = 0; i < 2; i++) {
		while (list[i] != NULL) {
			client_op *op = list[i];
			list[i] = op->next;
			client__op_complete(c, op, err, NULL);
		}
	}
}

/* The connection failed as a whole: drop it and fail everything that was waiting on it. */
static void session_fail(parley_client *c, int err)
{
	close_transport(c);
	client__fail_all(c, err);
	arm_timer(c);
}

void client__disconnect(parley_client *c)
{
	session_fail(c, PARLEY_E_CLOSED);
}

/* ---- sending ---- */

static int send_request(parley_client *c, Parley__Wire__Request *req)
{
	dynbuf out;
	int rc;

	dynbuf__init(&out, WIRE_DEFAULT_MAX_FRAME);
	rc = wire__encode_request(req, &out);
	if (rc == PARLEY_OK)
		rc = transport__send(c->tp, out.data, out.len);
	dynbuf__free(&out);
	return rc;
}

/* Builds and sends op (moving it from the queue head to the sent list). A failure to build (bad
 * arguments are checked at start, so this is NOMEM or a crypto failure) completes only this op. */
static int send_op(parley_client *c, client_op *op)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	client_op_scratch scratch;
	int rc;

	c->queued = op->next;
	op->next = NULL;
	op->id = c->next_id++;
	req.id = op->id;
	rc = client__op_build(c, op, &req, &scratch);
	if (rc == PARLEY_OK)
		rc = send_request(c, &req);
	if (rc != PARLEY_OK) {
		client__op_complete(c, op, rc, NULL);
		return rc;
	}
	op->deadline = uv_now(&c->loop) + c->request_timeout_ms;
	op->next = c->sent;
	c->sent = op;
	return PARLEY_OK;
}

static int send_auth(parley_client *c)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthRequest auth = PARLEY__WIRE__AUTH_REQUEST__INIT;
	uint8_t sig[WIRE_SIG_LEN];
	dynbuf msg;
	int rc;

	dynbuf__init(&msg, WIRE_DEFAULT_MAX_FRAME);
	rc = wire__auth_signed_bytes(c->nonce, c->account.handle, c->account.device_id, &msg);
	if (rc == PARLEY_OK)
		rc = client__sign_challenge(c, msg.data, msg.len, sig);
	dynbuf__free(&msg);
	if (rc != PARLEY_OK)
		return rc;
	auth.handle = c->account.handle;
	auth.device_id = c->account.device_id;
	auth.signature.data = sig;
	auth.signature.len = sizeof(sig);
	c->auth_id = c->next_id++;
	req.id = c->auth_id;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	req.auth = &auth;
	return send_request(c, &req);
}

/* ---- the state machine ---- */

static void on_open(void *ctx, transport_conn *tp);
static void on_message(void *ctx, transport_conn *tp, const uint8_t *buf, size_t len);
static void on_close(void *ctx, transport_conn *tp, int err, uint16_t ws_code);

static int start_connect(parley_client *c)
{
	transport_options topt;
	transport_callbacks cb;
	int rc;

	snprintf(c->conn_url, sizeof(c->conn_url), "%s", client__server_url(c));
	memset(&topt, 0, sizeof(topt));
	topt.ca_file = c->ca_file;
	topt.connect_timeout_ms = c->connect_timeout_ms;
	topt.max_message = WIRE_DEFAULT_MAX_FRAME;
	memset(&cb, 0, sizeof(cb));
	cb.ctx = c;
	cb.on_open = on_open;
	cb.on_message = on_message;
	cb.on_close = on_close;
	rc = transport__connect(&c->loop, c->conn_url, &topt, &cb, &c->tp);
	if (rc != PARLEY_OK) {
		c->tp = NULL;
		client__set_err(c, "cannot connect to %s", c->conn_url);
		return rc;
	}
	c->conn = CONN_CONNECTING;
	c->conn_deadline = uv_now(&c->loop) + c->connect_timeout_ms;
	return PARLEY_OK;
}

/* Moves the connection forward as far as the queued ops need it. */
static void pump(parley_client *c)
{
	int rc = PARLEY_OK;

	if (c->queued == NULL)
		goto out;
	switch (c->conn) {
	case CONN_NONE:
		rc = start_connect(c);
		break;
	case CONN_CHALLENGED:
		if (c->queued->kind == OP_REGISTER || c->queued->kind == OP_LINK) {
			/* From here the op's own request deadline bounds the wait. */
			c->conn = CONN_AUTHENTICATING;
			c->conn_deadline = 0;
			c->fresh_nonce = 0;
			rc = send_op(c, c->queued);
			if (rc != PARLEY_OK)
				close_transport(c); /* nonce spent or unusable: next op needs a new connection */
			break;
		}
		c->fresh_nonce = 0;
		rc = client__load_account(c);
		if (rc == PARLEY_OK)
			rc = send_auth(c);
		if (rc == PARLEY_OK)
			c->conn = CONN_AUTHENTICATING;
		break;
	case CONN_READY:
		while (c->queued != NULL) {
			if (c->queued->kind == OP_REGISTER || c->queued->kind == OP_LINK) {
				client_op *op = c->queued;
				c->queued = op->next;
				client__set_err(c, "this device already has an account");
				client__op_complete(c, op, PARLEY_E_STATE, NULL);
				continue;
			}
			if (c->queued->kind == OP_CONNECT) {
				client_op *op = c->queued;
				c->queued = op->next;
				client__op_complete(c, op, PARLEY_OK, NULL);
				continue;
			}
			send_op(c, c->queued);
		}
		break;
	default: /* waiting for the transport or the server */
		break;
	}
	if (rc != PARLEY_OK) {
		session_fail(c, rc);
		return;
	}
out:
	arm_timer(c);
}

static void on_open(void *ctx, transport_conn *tp)
{
	parley_client *c = ctx;
	c->conn = CONN_WAIT_CHALLENGE;
	arm_timer(c);
}

static void on_close(void *ctx, transport_conn *tp, int err, uint16_t ws_code)
{
	parley_client *c = ctx;
	int was_closing = c->conn == CONN_CLOSING;
	int was_open = c->conn != CONN_CONNECTING;
	client_op *sent = c->sent;

	c->tp = NULL;
	c->conn = CONN_NONE;
	c->conn_deadline = 0;
	sodium_memzero(c->nonce, sizeof(c->nonce));
	client__on_disconnect(c, err != PARLEY_OK ? err : PARLEY_E_CLOSED);
	if (was_closing) {
		/* We closed it, after failing what depended on it. Ops queued since then (by callbacks)
		 * get a new connection; anything still in flight has lost its answer. */
		c->sent = NULL;
		while (sent != NULL) {
			client_op *op = sent;
			sent = op->next;
			client__op_complete(c, op, PARLEY_E_CLOSED, NULL);
		}
	} else if (client__busy(c)) {
		if (err == PARLEY_OK)
			err = PARLEY_E_CLOSED;
		if (!was_open)
			client__set_err(c, "cannot connect to %s", c->conn_url);
		else
			client__set_err(c, "connection to %s closed: %s (WebSocket close code %u)", c->conn_url,
					parley_strerror(err), (unsigned)ws_code);
		client__fail_all(c, err);
	}
	if (c->queued != NULL)
		schedule(c);
	arm_timer(c);
}

/* The first challenge of a connection, or the fresh one the server pushes *before* the error response
 * of a register/auth attempt that failed (docs/protocol.md §5): keep it, the response comes next. */
static void handle_challenge(parley_client *c, const Parley__Wire__Challenge *ch)
{
	if (ch->nonce.len != WIRE_NONCE_LEN ||
	    (c->conn != CONN_WAIT_CHALLENGE && c->conn != CONN_AUTHENTICATING)) {
		client__set_err(c, "server sent an unexpected challenge");
		session_fail(c, PARLEY_E_PROTO_MALFORMED);
		return;
	}
	memcpy(c->nonce, ch->nonce.data, WIRE_NONCE_LEN);
	if (c->conn == CONN_AUTHENTICATING) {
		c->fresh_nonce = 1;
		return;
	}
	c->conn = CONN_CHALLENGED;
	pump(c);
}

static void handle_auth_response(parley_client *c, const Parley__Wire__Response *r)
{
	c->auth_id = 0;
	c->fresh_nonce = 0;
	if (r->status != PARLEY_OK) {
		client__set_err(c, "authentication as %s device %u refused: %s", c->account.handle,
				(unsigned)c->account.device_id, r->message != NULL ? r->message : "");
		session_fail(c, (int)r->status);
		return;
	}
	c->conn = CONN_READY;
	c->conn_deadline = 0;
	client__on_ready(c);
	pump(c);
}

static void handle_response(parley_client *c, const Parley__Wire__Response *r)
{
	client_op **pp;
	client_op *op;
	int was_auth;

	if (c->auth_id != 0 && r->id == c->auth_id) {
		handle_auth_response(c, r);
		return;
	}
	for (pp = &c->sent; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == r->id)
			break;
	}
	op = *pp;
	if (op == NULL)
		return; /* an answer to a request we already timed out: nothing waits for it */
	*pp = op->next;
	was_auth = op->kind == OP_REGISTER || op->kind == OP_LINK;
	if (was_auth) {
		if (r->status == PARLEY_OK)
			c->conn = CONN_READY;
		else if (c->fresh_nonce)
			c->conn = CONN_CHALLENGED; /* the server already sent the nonce for a retry */
		else
			close_transport(c); /* nonce spent: only a new connection brings a new one */
		c->fresh_nonce = 0;
	}
	if (r->status != PARLEY_OK)
		client__set_err(c, "%s", r->message != NULL ? r->message : "");
	client__op_complete(c, op, (int)r->status, r);
	if (was_auth)
		pump(c);
	else
		arm_timer(c);
}

static void on_message(void *ctx, transport_conn *tp, const uint8_t *buf, size_t len)
{
	parley_client *c = ctx;
	wire_frame f;
	int rc;

	rc = wire__decode_frame(buf, len, NULL, &f);
	if (rc != PARLEY_OK) {
		client__set_err(c, "server sent a bad frame: %s", parley_strerror(rc));
		wire__frame_free(&f);
		session_fail(c, rc);
		return;
	}
	switch (f.frame->kind_case) {
	case PARLEY__WIRE__FRAME__KIND_PUSH:
		if (f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE)
			handle_challenge(c, f.frame->push->challenge);
		else if (c->conn == CONN_READY)
			client__handle_push(c, f.frame->push);
		break;
	case PARLEY__WIRE__FRAME__KIND_RESPONSE:
		handle_response(c, f.frame->response);
		break;
	default:
		/* The server never sends requests in protocol v1. */
		client__set_err(c, "server sent a request frame");
		session_fail(c, PARLEY_E_PROTO_UNKNOWN);
		break;
	}
	wire__frame_free(&f);
}

/* ---- timeouts ---- */

static void on_timer(uv_timer_t *t)
{
	parley_client *c = t->data;
	uint64_t now = uv_now(&c->loop);
	client_op **pp = &c->sent;

	if (c->conn_deadline != 0 && now >= c->conn_deadline) {
		client__set_err(c, "connecting to %s timed out after %u ms", c->conn_url, c->connect_timeout_ms);
		session_fail(c, PARLEY_E_TIMEOUT);
		return;
	}
	while (*pp != NULL) {
		client_op *op = *pp;
		if (op->deadline > now) {
			pp = &op->next;
			continue;
		}
		*pp = op->next;
		client__set_err(c, "no answer from %s within %u ms", c->conn_url, c->request_timeout_ms);
		client__op_complete(c, op, PARLEY_E_TIMEOUT, NULL);
		/* The callback may have changed the list: start over from the head. */
		pp = &c->sent;
	}
	arm_timer(c);
}

static void arm_timer(parley_client *c)
{
	uint64_t next = c->conn_deadline;
	uint64_t now = uv_now(&c->loop);
	client_op *op;

	for (op = c->sent; op != NULL; op = op->next) {
		if (next == 0 || op->deadline < next)
			next = op->deadline;
	}
	if (next == 0) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

/* ---- shutdown ---- */

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

void client__session_shutdown(parley_client *c)
{
	int guard;

	/* The application hears nothing from a client it is freeing. */
	parley_client_set_events(c, NULL);
	client__fail_all(c, PARLEY_E_CLOSED);
	close_transport(c);
	/* The transport calls on_close exactly once; give it a bounded number of loop turns to finish the
	 * close handshake (its own timers bound each turn). */
	for (guard = 0; c->tp != NULL && guard < 1000; guard++)
		uv_run(&c->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->kick, on_handle_closed);
	uv_close((uv_handle_t *)&c->run_timer, on_handle_closed);
	client__recv_shutdown(c);
	uv_run(&c->loop, UV_RUN_DEFAULT);
}
