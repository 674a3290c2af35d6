/* The client's connection state machine (the event core).
 *
 * CONN_NONE --connect--> CONNECTING --on_open--> WAIT_CHALLENGE --Push{Challenge}--> CHALLENGED
 *   CHALLENGED + queued op that authenticates (register, link) -> send it (it consumes the nonce)
 *   CHALLENGED + any other queued op -> the hooks' authentication op goes first (the saved account's
 *                                      AuthRequest, signed with the nonce)          -> AUTHENTICATING
 *   AUTHENTICATING --success--> READY (queued ops are sent) / --failure--> see below
 *
 * The challenge nonce is single use: when a register/auth attempt fails, parleyd pushes a fresh
 * challenge before the error response (docs/protocol.md §5) and the connection goes back to CHALLENGED;
 * without that push the connection is closed, since only a new connection would bring a new nonce.
 *
 * The core knows operations only through their client_op_vtable: it builds a request with op->vt->build,
 * matches the response by id and hands it to op->vt->complete. It never looks at what an op does, so a
 * new request kind needs no change here. The only things it reads are the vtable's flags (does this op
 * authenticate the connection, does it send anything at all) and the response kind a success must carry.
 * Pushes, the end of a connection and the choice of the default authentication go through the hooks
 * client.c installs (c->hooks).
 *
 * Every transition runs from the loop (transport callbacks, timers, the 0 ms kick timer), never from
 * inside a *_start() call, so a user callback never runs before *_start() has returned.
 *
 * Timeouts: one timer for the whole client, armed at the nearest of the connect-phase deadline
 * (connect + challenge + the default authentication, connect_timeout_ms) and the deadlines of sent
 * requests (request_timeout_ms each, authenticating ones included).
 */
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

static void pump(parley_client *c);
static void arm_timer(parley_client *c);

int client__conn_busy(const parley_client *c)
{
	return c->queued != NULL || c->sent != NULL;
}

static void on_kick(uv_timer_t *t)
{
	pump(t->data);
}

static void schedule(parley_client *c)
{
	uv_timer_start(&c->kick, on_kick, 0, 0);
}

void client__conn_submit(parley_client *c, client_op *op)
{
	client_op **tail = &c->queued;
	while (*tail != NULL)
		tail = &(*tail)->next;
	op->next = NULL;
	op->id = 0;
	op->deadline = 0;
	*tail = op;
	schedule(c);
}

/* The one place an op ends: the response must carry the body its kind promises, so completion
 * functions never see a success without one. */
static void complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *r)
{
	op->next = NULL;
	if (status == PARLEY_OK && r != NULL && op->vt->response_case != 0 &&
	    (int)r->body_case != op->vt->response_case) {
		client__set_err(c, "server answered with the wrong response kind");
		status = PARLEY_E_PROTO_MISSING_FIELD;
	}
	op->vt->complete(c, op, status, r);
	/* An op can end from a timer (the kick of an op that needs no request, a deadline) with no I/O to
	 * come: the uv_run of a waiting caller would then poll with no deadline, until the server's next
	 * ping (parley_connect on a connected client waited ~50 s). uv_stop makes this iteration's poll
	 * return at once; the callers loop until their own condition holds. Only inside a run: a flag
	 * left set would make parley_client_free's closing uv_run a no-op. */
	if (c->in_loop)
		uv_stop(&c->loop);
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

/* Detach both lists first: completions may submit new operations, which must not be failed too. */
void client__conn_fail_all(parley_client *c, int err)
{
	client_op *list[2] = {c->sent, c->queued};
	size_t i;

	c->sent = NULL;
	c->queued = NULL;
	for (i = 0; i < 2; i++) {
		while (list[i] != NULL) {
			client_op *op = list[i];
			list[i] = op->next;
			complete(c, op, err, NULL);
		}
	}
}

/* The connection failed as a whole: drop it and fail everything that was waiting on it. */
void client__conn_fail(parley_client *c, int err)
{
	close_transport(c);
	client__conn_fail_all(c, err);
	arm_timer(c);
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

/* Builds and sends the op at the queue head, moving it to the sent list. A failure to build or send
 * completes only this op and is returned. */
static int send_head(parley_client *c)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	client_op *op = c->queued;
	int rc;

	c->queued = op->next;
	op->next = NULL;
	op->id = c->next_id++;
	req.id = op->id;
	rc = op->vt->build(c, op, &req);
	if (rc == PARLEY_OK && req.body_case == PARLEY__WIRE__REQUEST__BODY__NOT_SET)
		rc = PARLEY_E_INTERNAL;
	if (rc == PARLEY_OK)
		rc = send_request(c, &req);
	if (rc != PARLEY_OK) {
		complete(c, op, rc, NULL);
		return rc;
	}
	op->deadline = uv_now(&c->loop) + c->request_timeout_ms;
	op->next = c->sent;
	c->sent = op;
	return PARLEY_OK;
}

/* Completes the queue head without a request (status OK for an op that needs only a ready connection,
 * STATE for one that would authenticate an already authenticated connection). */
static void complete_head(parley_client *c, int status)
{
	client_op *op = c->queued;
	c->queued = op->next;
	if (status != PARLEY_OK)
		client__set_err(c, "the connection is already authenticated");
	complete(c, op, status, NULL);
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

/* A fresh challenge: the head op authenticates the connection itself, or the hooks' authentication
 * op is put in front of it. */
static int authenticate(parley_client *c)
{
	int rc;

	if (c->queued->vt->flags & CLIENT_OP_AUTHENTICATES) {
		/* register/link: from here their own request deadline bounds the wait */
		c->conn_deadline = 0;
	} else {
		/* the default authentication is part of connecting: connect_timeout_ms still bounds it */
		client_op *auth = NULL;
		rc = c->hooks->new_auth_op(c, &auth);
		if (rc != PARLEY_OK)
			return rc;
		auth->next = c->queued;
		c->queued = auth;
	}
	c->conn = CONN_AUTHENTICATING;
	c->fresh_nonce = 0;
	/* A failure has completed the head op; the caller fails the connection (the nonce is spent or
	 * unusable, so the next op needs a new one) and the ops that were waiting on it. */
	return send_head(c);
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
		rc = authenticate(c);
		break;
	case CONN_READY:
		while (c->queued != NULL && c->conn == CONN_READY) {
			unsigned flags = c->queued->vt->flags;
			if (flags & CLIENT_OP_AUTHENTICATES)
				complete_head(c, PARLEY_E_STATE);
			else if (flags & CLIENT_OP_NO_REQUEST)
				complete_head(c, PARLEY_OK);
			else
				send_head(c);
		}
		break;
	default: /* waiting for the transport or the server */
		break;
	}
	if (rc != PARLEY_OK) {
		client__conn_fail(c, rc);
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

/* Records why the connection ended, in the words of the transport (refused, not resolvable, HTTP 404,
 * lost without a close frame, the server's close code), which are valid during on_close only. */
static void record_close_reason(parley_client *c, transport_conn *tp, int err, uint16_t ws_code, int was_open)
{
	const char *why = transport__error_text(tp);
	if (why == NULL || why[0] == '\0')
		why = parley_strerror(err);
	if (!was_open && strncmp(why, "cannot ", 7) == 0)
		client__set_err(c, "%s (%s)", why, c->conn_url); /* it names the address already */
	else if (!was_open)
		client__set_err(c, "cannot connect to %s: %s", c->conn_url, why);
	else if (ws_code != 0 && strstr(why, "close code") == NULL)
		client__set_err(c, "connection to %s closed: %s (WebSocket close code %u)", c->conn_url, why,
				(unsigned)ws_code);
	else
		client__set_err(c, "connection to %s closed: %s", c->conn_url, why);
}

static void on_close(void *ctx, transport_conn *tp, int err, uint16_t ws_code)
{
	parley_client *c = ctx;
	int was_closing = c->conn == CONN_CLOSING;
	int was_open = c->conn != CONN_CONNECTING;
	client_op *sent = c->sent;

	if (err == PARLEY_OK && !was_closing)
		err = PARLEY_E_CLOSED;
	/* before the application hears of it, so its disconnect handler can read parley_client_errmsg */
	if (!was_closing)
		record_close_reason(c, tp, err, ws_code, was_open);
	c->tp = NULL;
	c->conn = CONN_NONE;
	c->conn_deadline = 0;
	sodium_memzero(c->nonce, sizeof(c->nonce));
	c->hooks->on_disconnect(c, err != PARLEY_OK ? err : PARLEY_E_CLOSED);
	if (was_closing) {
		/* We closed it, after failing what depended on it. Ops queued since then (by completions)
		 * get a new connection; anything still in flight has lost its answer. */
		c->sent = NULL;
		while (sent != NULL) {
			client_op *op = sent;
			sent = op->next;
			complete(c, op, PARLEY_E_CLOSED, NULL);
		}
	} else if (client__conn_busy(c)) {
		client__conn_fail_all(c, err);
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
		client__conn_fail(c, PARLEY_E_PROTO_MALFORMED);
		return;
	}
	memcpy(c->nonce, ch->nonce.data, WIRE_NONCE_LEN);
	c->register_pow_bits = ch->register_pow_bits;
	if (c->conn == CONN_AUTHENTICATING) {
		c->fresh_nonce = 1;
		return;
	}
	c->conn = CONN_CHALLENGED;
	pump(c);
}

/* The answer to an authenticating op decides the connection's state before the op completes, so the
 * completion already sees a READY connection (and may queue requests on it). */
static void auth_answered(parley_client *c, int status)
{
	c->conn_deadline = 0;
	if (status == PARLEY_OK)
		c->conn = CONN_READY;
	else if (c->fresh_nonce)
		c->conn = CONN_CHALLENGED; /* the server already sent the nonce for a retry */
	else
		close_transport(c); /* nonce spent: only a new connection brings a new one */
	c->fresh_nonce = 0;
}

static void handle_response(parley_client *c, const Parley__Wire__Response *r)
{
	client_op **pp;
	client_op *op;
	int authenticates;

	for (pp = &c->sent; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == r->id)
			break;
	}
	op = *pp;
	if (op == NULL)
		return; /* an answer to a request we already timed out: nothing waits for it */
	*pp = op->next;
	authenticates = (op->vt->flags & CLIENT_OP_AUTHENTICATES) != 0;
	if (authenticates)
		auth_answered(c, (int)r->status);
	if (r->status != PARLEY_OK)
		client__set_err(c, "%s", r->message != NULL ? r->message : "");
	complete(c, op, (int)r->status, r);
	if (authenticates)
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
		client__conn_fail(c, rc);
		return;
	}
	switch (f.frame->kind_case) {
	case PARLEY__WIRE__FRAME__KIND_PUSH:
		if (f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE)
			handle_challenge(c, f.frame->push->challenge);
		else if (c->conn == CONN_READY)
			c->hooks->on_push(c, f.frame->push);
		break;
	case PARLEY__WIRE__FRAME__KIND_RESPONSE:
		handle_response(c, f.frame->response);
		break;
	default:
		/* The server never sends requests in protocol v1. */
		client__set_err(c, "server sent a request frame");
		client__conn_fail(c, PARLEY_E_PROTO_UNKNOWN);
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
		client__conn_fail(c, PARLEY_E_TIMEOUT);
		return;
	}
	while (*pp != NULL) {
		client_op *op = *pp;
		if (op->deadline > now) {
			pp = &op->next;
			continue;
		}
		*pp = op->next;
		/* Without the answer, nobody knows whether the nonce was spent: this connection can no longer
		 * be authenticated, and ops queued behind it need a new one (on_close reschedules them). */
		if (op->vt->flags & CLIENT_OP_AUTHENTICATES)
			close_transport(c);
		client__set_err(c, "no answer from %s within %u ms", c->conn_url, c->request_timeout_ms);
		complete(c, op, PARLEY_E_TIMEOUT, NULL);
		/* The completion may have changed the list: start over from the head. */
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

void client__conn_shutdown(parley_client *c)
{
	int guard;

	client__conn_fail_all(c, PARLEY_E_CLOSED);
	close_transport(c);
	/* The transport calls on_close exactly once; give it a bounded number of loop turns to finish the
	 * close handshake (its own timers bound each turn). */
	for (guard = 0; c->tp != NULL && guard < 1000; guard++)
		uv_run(&c->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&c->timer, NULL);
	uv_close((uv_handle_t *)&c->kick, NULL);
}
