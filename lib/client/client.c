/* parley_client: life cycle, options, lazily opened local state, the run loop, the connection hooks,
 * and the helpers shared by every entry point (argument checks, blocking waits). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "client/client_internal.h"
#include "common/alloc.h"

void client__set_err(parley_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
}

void parley_client_options_init(parley_client_options *opts)
{
	if (opts != NULL)
		memset(opts, 0, sizeof(*opts));
}

/* The wiring of the event core: conn.c calls these and nothing else outside itself. */
static const client_conn_hooks conn_hooks = {
	.new_auth_op = client__auth_op_new,
	.on_push = client__recv_push,
	.on_disconnect = client__recv_disconnect,
};

static int valid_url(const char *url)
{
	size_t len = strnlen(url, PARLEY_URL_MAX + 1);
	if (len > PARLEY_URL_MAX)
		return 0;
	if (strncmp(url, "ws://", 5) == 0)
		return len > 5;
	if (strncmp(url, "wss://", 6) == 0)
		return len > 6;
	return 0;
}

static int validate_options(const parley_client_options *o)
{
	if (o->server_url != NULL && !valid_url(o->server_url))
		return PARLEY_E_INVAL;
	if (o->state_dir != NULL && (o->state_dir[0] == '\0' || strnlen(o->state_dir, PATH_MAX) >= PATH_MAX))
		return PARLEY_E_INVAL;
	if (o->ca_file != NULL && (o->ca_file[0] == '\0' || strnlen(o->ca_file, PATH_MAX) >= PATH_MAX))
		return PARLEY_E_INVAL;
	if (o->connect_timeout_ms > CLIENT_MAX_TIMEOUT_MS || o->request_timeout_ms > CLIENT_MAX_TIMEOUT_MS)
		return PARLEY_E_INVAL;
	if (o->quarantine_per_sender > PARLEY_QUARANTINE_LIMIT || o->quarantine_max > PARLEY_QUARANTINE_LIMIT)
		return PARLEY_E_INVAL;
	return PARLEY_OK;
}

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return PARLEY_OK;
	*out = parley__strdup(s);
	return *out != NULL ? PARLEY_OK : PARLEY_E_NOMEM;
}

parley_err parley_client_new(const parley_client_options *opts, parley_client **out)
{
	parley_client_options defaults;
	parley_client *c = NULL;
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if (opts == NULL) {
		parley_client_options_init(&defaults);
		opts = &defaults;
	}
	rc = validate_options(opts);
	if (rc != PARLEY_OK)
		return rc;
	/* sodium_init is idempotent and thread-safe; it picks the fastest implementations and seeds
	 * randombytes. */
	if (sodium_init() < 0)
		return PARLEY_E_INTERNAL;
	c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	rc = dup_opt(opts->server_url, &c->server_url);
	if (rc == PARLEY_OK)
		rc = dup_opt(opts->state_dir, &c->state_dir);
	if (rc == PARLEY_OK)
		rc = dup_opt(opts->ca_file, &c->ca_file);
	if (rc == PARLEY_OK)
		rc = client__history_options(c, opts);
	if (rc != PARLEY_OK)
		goto out;
	c->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->request_timeout_ms = opts->request_timeout_ms ? opts->request_timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->quarantine_per_sender =
		opts->quarantine_per_sender ? opts->quarantine_per_sender : PARLEY_QUARANTINE_PER_SENDER_DEFAULT;
	c->quarantine_max = opts->quarantine_max ? opts->quarantine_max : PARLEY_QUARANTINE_MAX_DEFAULT;
	c->next_id = 1;
	c->hooks = &conn_hooks;
	if (uv_loop_init(&c->loop) != 0) {
		rc = PARLEY_E_INTERNAL;
		goto out;
	}
	c->loop_ready = 1;
	/* uv_timer_init cannot fail on an initialised loop. */
	uv_timer_init(&c->loop, &c->timer);
	uv_timer_init(&c->loop, &c->kick);
	uv_timer_init(&c->loop, &c->run_timer);
	uv_timer_init(&c->loop, &c->ack_timer);
	c->timer.data = c->kick.data = c->run_timer.data = c->ack_timer.data = c;
	rc = PARLEY_OK;
out:
	if (rc != PARLEY_OK) {
		parley__free(c->server_url);
		parley__free(c->state_dir);
		parley__free(c->ca_file);
		client__history_free(c);
		parley__free(c);
		return rc;
	}
	*out = c;
	return PARLEY_OK;
}

void parley_client_free(parley_client *c)
{
	if (c == NULL)
		return;
	if (c->loop_ready) {
		/* The application hears nothing from a client it is freeing. */
		parley_client_set_events(c, NULL);
		client__conn_shutdown(c);
		uv_close((uv_handle_t *)&c->run_timer, NULL);
		client__recv_shutdown(c);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		uv_loop_close(&c->loop);
	}
	client__e2e_close(c);
	client__state_close(c->state);
	sodium_memzero(&c->key, sizeof(c->key));
	sodium_memzero(c->nonce, sizeof(c->nonce));
	client__history_free(c);
	parley__free(c->server_url);
	parley__free(c->state_dir);
	parley__free(c->ca_file);
	parley__free(c);
}

const char *parley_client_errmsg(const parley_client *c)
{
	return c != NULL ? c->errmsg : "";
}

/* ---- local state ---- */

static int open_state(parley_client *c)
{
	char *dir = NULL;
	int rc;

	if (c->state != NULL)
		return PARLEY_OK;
	rc = client__state_dir_resolve(c->state_dir, &dir);
	if (rc != PARLEY_OK) {
		if (rc == PARLEY_E_CONFIG)
			client__set_err(c, "no state directory: set PARLEY_HOME, XDG_DATA_HOME or HOME");
		return rc;
	}
	rc = client__state_open(dir, &c->state, c->errmsg, sizeof(c->errmsg));
	if (rc == PARLEY_OK && c->state_dir == NULL) {
		c->state_dir = dir; /* keep the resolved path */
		dir = NULL;
	}
	parley__free(dir);
	return rc;
}

int client__ensure_key(parley_client *c, int create)
{
	int rc = open_state(c);
	if (rc != PARLEY_OK)
		return rc;
	if (c->have_key)
		return PARLEY_OK;
	rc = client__state_key(c->state, create, &c->key, c->errmsg, sizeof(c->errmsg));
	if (rc == PARLEY_OK)
		c->have_key = 1;
	else if (rc == PARLEY_E_NOT_FOUND)
		rc = PARLEY_E_NO_IDENTITY;
	return rc;
}

int client__load_account(parley_client *c)
{
	int rc = open_state(c);
	if (rc != PARLEY_OK)
		return rc;
	rc = client__state_account(c->state, &c->account, c->errmsg, sizeof(c->errmsg));
	if (rc != PARLEY_OK) {
		c->have_account = 0;
		return rc;
	}
	c->have_account = 1;
	return client__ensure_key(c, 0);
}

/* docs/protocol.md §5.1, the rule parleyd applies at registration (wire__handle_check, shared with the
 * server): every existing handle follows it, so a handle that breaks it cannot be registered, linked
 * or messaged. The error says which rule and, for a bad byte, which one. */
int client__check_handle(parley_client *c, const char *handle)
{
	size_t pos = 0;
	if (handle == NULL)
		return PARLEY_E_INVAL;
	switch (wire__handle_check(handle, &pos)) {
	case 0:
		return PARLEY_OK;
	case WIRE_HANDLE_BAD_LENGTH: {
		size_t n = strnlen(handle, WIRE_MAX_HANDLE + 1);
		if (n > WIRE_MAX_HANDLE)
			client__set_err(c, "a handle has %s (this one has more than %d)", WIRE_HANDLE_RULE,
					WIRE_MAX_HANDLE);
		else
			client__set_err(c, "a handle has %s (this one has %zu)", WIRE_HANDLE_RULE, n);
		break;
	}
	case WIRE_HANDLE_BAD_CHAR: {
		unsigned char bad = (unsigned char)handle[pos];
		/* Name the character, not the whole input: it may hold terminal escapes. */
		if (bad > 0x20 && bad < 0x7f)
			client__set_err(c, "'%c' is not allowed in a handle: a handle has %s", bad, WIRE_HANDLE_RULE);
		else
			client__set_err(c, "byte 0x%02x is not allowed in a handle: a handle has %s", bad,
					WIRE_HANDLE_RULE);
		break;
	}
	default:
		client__set_err(c, "a handle starts with a letter a-z: a handle has %s", WIRE_HANDLE_RULE);
		break;
	}
	return PARLEY_E_BAD_HANDLE;
}

int client__check_name(parley_client *c, const char *name)
{
	if (name != NULL && strnlen(name, PARLEY_DEVICE_NAME_MAX + 1) > PARLEY_DEVICE_NAME_MAX) {
		client__set_err(c, "a device name has at most %d bytes", PARLEY_DEVICE_NAME_MAX);
		return PARLEY_E_INVAL;
	}
	return PARLEY_OK;
}

const char *client__server_url(const parley_client *c)
{
	if (c->server_url != NULL)
		return c->server_url;
	return c->have_account ? c->account.server_url : PARLEY_DEFAULT_SERVER_URL;
}

parley_err parley_device_public_key(parley_client *c, uint8_t out[PARLEY_DEVICE_KEY_BYTES])
{
	int rc;
	if (c == NULL || out == NULL)
		return PARLEY_E_INVAL;
	rc = client__ensure_key(c, 1);
	if (rc != PARLEY_OK)
		return rc;
	memcpy(out, c->key.pk, PARLEY_DEVICE_KEY_BYTES);
	return PARLEY_OK;
}

parley_err parley_identity(parley_client *c, char *handle_buf, size_t handle_len, uint64_t *account_id,
			   uint32_t *device_id)
{
	size_t n;
	int rc;

	if (c == NULL || (handle_buf == NULL && handle_len != 0))
		return PARLEY_E_INVAL;
	rc = client__load_account(c);
	if (rc != PARLEY_OK)
		return rc;
	n = strlen(c->account.handle);
	if (handle_len != 0) {
		if (n >= handle_len)
			return PARLEY_E_TOO_LARGE;
		memcpy(handle_buf, c->account.handle, n + 1);
	}
	if (account_id != NULL)
		*account_id = c->account.account_id;
	if (device_id != NULL)
		*device_id = c->account.device_id;
	return PARLEY_OK;
}

/* ---- run loop ---- */

static void on_run_timer(uv_timer_t *t)
{
	parley_client *c = t->data;
	c->run_expired = 1;
}

parley_err parley_client_run(parley_client *c, unsigned timeout_ms)
{
	if (c == NULL)
		return PARLEY_E_INVAL;
	if (c->in_loop)
		return PARLEY_E_STATE;
	c->run_expired = 0;
	c->stop = 0;
	/* The loop's clock stands still between runs: a timer started on it could be due already, fire in
	 * the first timer phase of uv_run and leave the poll with no deadline (waiting forever when no
	 * I/O comes, as the other loop of a program running two clients in turns saw). */
	uv_update_time(&c->loop);
	if (timeout_ms != 0)
		uv_timer_start(&c->run_timer, on_run_timer, timeout_ms, 0);
	c->in_loop = 1;
	while (!c->run_expired && !c->stop && (timeout_ms != 0 || client__conn_busy(c))) {
		if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !client__conn_busy(c) && timeout_ms == 0)
			break;
	}
	c->in_loop = 0;
	uv_timer_stop(&c->run_timer);
	return PARLEY_OK;
}

parley_err parley_client_run_once(parley_client *c, int *more)
{
	if (c == NULL)
		return PARLEY_E_INVAL;
	if (c->in_loop)
		return PARLEY_E_STATE;
	c->in_loop = 1;
	/* With no operation pending, only poll: an idle authenticated connection would otherwise block us
	 * until the server speaks. */
	uv_run(&c->loop, client__conn_busy(c) ? UV_RUN_ONCE : UV_RUN_NOWAIT);
	c->in_loop = 0;
	if (more != NULL)
		*more = client__conn_busy(c);
	return PARLEY_OK;
}

void parley_client_stop(parley_client *c)
{
	if (c != NULL && c->in_loop) {
		c->stop = 1;
		uv_stop(&c->loop);
	}
}

void parley_client_disconnect(parley_client *c)
{
	if (c != NULL)
		client__conn_fail(c, PARLEY_E_CLOSED);
}

int client__wait(parley_client *c, const int *done)
{
	if (c->in_loop)
		return PARLEY_E_STATE;
	c->in_loop = 1;
	/* Termination: while the op is pending a timer (kick, connect deadline or request deadline) is
	 * armed, so uv_run always has something to wake up for. */
	while (!*done) {
		if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*done && !client__conn_busy(c))
			break;
	}
	c->in_loop = 0;
	return *done ? PARLEY_OK : PARLEY_E_INTERNAL;
}

/* ---- blocking conveniences ---- */

int client__sync_refused(const parley_client *c)
{
	return c != NULL && c->in_loop;
}

void client__sync_done(parley_client *c, parley_err status, void *user)
{
	client_sync *s = user;
	s->status = status;
	s->done = 1;
}

parley_err client__sync_wait(parley_client *c, client_sync *s, int start_rc)
{
	if (start_rc != PARLEY_OK)
		return (parley_err)start_rc;
	if (client__wait(c, &s->done) != PARLEY_OK && !s->done)
		client__conn_fail_all(c, PARLEY_E_INTERNAL);
	return s->status;
}

int client__schema_ready(parley_client *c, int *ready, int (*first)(parley_client *c), const migrate_schema *schema)
{
	migrate_result res;
	int rc;

	if (*ready)
		return PARLEY_OK;
	rc = first != NULL ? first(c) : PARLEY_OK;
	if (rc != PARLEY_OK)
		return rc;
	rc = parley__migrate(client__state_db(c->state), schema, &res);
	if (rc != PARLEY_OK) {
		client__set_err(c, "client.db: %s", res.err);
		return rc;
	}
	*ready = 1;
	return PARLEY_OK;
}
