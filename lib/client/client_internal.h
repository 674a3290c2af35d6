/* Internals of the parley_client handle, shared by the files of lib/client/ only.
 *
 * Layout of the module:
 *   client.c   handle life cycle, options, lazy state/key loading, run loop, blocking helpers
 *   session.c  the connection state machine: connect, challenge, auth, request/response matching,
 *              timeouts (the event core)
 *   ops.c      one start function + one completion handler per operation; blocking wrappers
 *   devices.c  parley_device_list
 *   state.c    client.db
 */
#ifndef PARLEY_CLIENT_INTERNAL_H
#define PARLEY_CLIENT_INTERNAL_H
#include <stdint.h>

#include <parley/client.h>
#include <uv.h>

#include "client/state.h"
#include "proto/parley.pb-c.h"
#include "transport/transport.h"
#include "wire/wire.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 10000u
#define CLIENT_MAX_TIMEOUT_MS 600000u
#define CLIENT_ERRMSG_LEN 512

typedef enum client_op_kind {
	OP_REGISTER,
	OP_LINK,
	OP_LIST_DEVICES,
	OP_ADD_DEVICE,
	OP_REMOVE_DEVICE,
} client_op_kind;

/* Where the connection is. Only one authentication is ever in flight, and register/link consume the
 * challenge of a fresh connection (they *are* its authentication). */
typedef enum client_conn_state {
	CONN_NONE,        /* no transport */
	CONN_CONNECTING,  /* transport__connect done, waiting for on_open */
	CONN_WAIT_CHALLENGE,
	CONN_CHALLENGED,  /* nonce received, not used yet */
	CONN_AUTHENTICATING, /* our AuthRequest, or a register/link op, is in flight */
	CONN_READY,       /* authenticated as the saved account's device */
	CONN_CLOSING,     /* transport__close called, waiting for on_close */
} client_conn_state;

typedef struct client_op {
	struct client_op *next;
	client_op_kind kind;
	uint64_t id;       /* request id once sent, 0 while queued */
	uint64_t deadline; /* uv_now() ms by which the response must arrive; 0 while queued */
	/* arguments */
	char handle[PARLEY_HANDLE_MAX + 1];
	char name[PARLEY_DEVICE_NAME_MAX + 1];
	uint8_t key[PARLEY_DEVICE_KEY_BYTES];
	uint32_t device_id;
	/* completion: exactly one of these, by kind */
	parley_done_cb done_cb;
	parley_devices_cb devices_cb;
	parley_device_id_cb id_cb;
	void *user;
} client_op;

struct parley_client {
	uv_loop_t loop;
	uv_timer_t timer; /* nearest deadline (connect phase or oldest sent request) */
	uv_timer_t kick;  /* 0 ms: runs the state machine from the loop, never inside a *_start call */
	uv_timer_t run_timer; /* parley_client_run's own time limit */
	int loop_ready;
	int in_loop;      /* inside uv_run: blocking calls and run are refused (no re-entrant uv_run) */
	int stop;         /* parley_client_run should return */
	int run_expired;

	/* options (copies) */
	char *server_url; /* NULL = use the account's or the default */
	char *state_dir;  /* resolved lazily */
	char *ca_file;
	unsigned connect_timeout_ms;
	unsigned request_timeout_ms;

	/* local state, opened on first need */
	client_state *state;
	client_key key; /* secret: wiped in parley_client_free */
	int have_key;
	client_account account;
	int have_account;

	/* connection */
	transport_conn *tp;
	client_conn_state conn;
	char conn_url[PARLEY_URL_MAX + 1];
	uint8_t nonce[WIRE_NONCE_LEN];
	int fresh_nonce;        /* a new challenge arrived while a register/link attempt was in flight */
	uint64_t conn_deadline; /* connect + challenge + auth must finish by then; 0 = none */
	uint64_t auth_id;       /* id of our own AuthRequest while CONN_AUTHENTICATING with no op */
	uint64_t next_id;
	client_op *queued;      /* not sent yet, FIFO */
	client_op *sent;        /* waiting for a response */

	char errmsg[CLIENT_ERRMSG_LEN];
};

/* client.c */
void client__set_err(parley_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Opens the state and loads (creating if asked) the device key. */
int client__ensure_key(parley_client *c, int create);
/* Loads the saved account into c->account (and the device key). PARLEY_E_NO_IDENTITY if none. */
int client__load_account(parley_client *c);
/* The URL to connect to: the option if given (the server may have moved), else the account's server,
 * else the default. */
const char *client__server_url(const parley_client *c);
/* Runs the loop until *done is set. PARLEY_E_STATE when called from inside the loop. */
int client__wait(parley_client *c, const int *done);

/* session.c */
/* Queues op (taking ownership) and schedules the state machine. Never calls a callback itself. */
void client__submit(parley_client *c, client_op *op);
/* Completes every queued and sent op with err and drops the connection. */
void client__fail_all(parley_client *c, int err);
void client__disconnect(parley_client *c);
/* Closes handles and waits for the transport to finish (from parley_client_free). */
void client__session_shutdown(parley_client *c);
/* 1 while an operation is queued or in flight. */
int client__busy(const parley_client *c);
/* Ed25519 detached signature of msg with the device key (the device's answer to a challenge). */
int client__sign_challenge(const parley_client *c, const uint8_t *msg, size_t len, uint8_t sig[WIRE_SIG_LEN]);

/* The request body of one op; lives on the sender's stack until the frame is encoded. */
typedef struct client_op_scratch {
	union {
		Parley__Wire__RegisterRequest reg;
		Parley__Wire__AuthRequest auth;
		Parley__Wire__ListDevicesRequest list;
		Parley__Wire__AddDeviceRequest add;
		Parley__Wire__RemoveDeviceRequest remove;
	} body;
	uint8_t sig[WIRE_SIG_LEN];
} client_op_scratch;

/* ops.c: sets req->body for a queued op (signing c->nonce for register/link); pointers go into s. */
int client__op_build(parley_client *c, client_op *op, Parley__Wire__Request *req, client_op_scratch *s);
/* Consumes op (the callback is called, then op is freed). resp is NULL when status is a local error. */
void client__op_complete(parley_client *c, client_op *op, int status, const Parley__Wire__Response *resp);

/* devices.c */
int client__device_list_from_wire(const Parley__Wire__ListDevicesResponse *r, uint32_t self_id,
				  parley_device_list **out);

#endif
