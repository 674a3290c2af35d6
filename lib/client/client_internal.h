/* Internals of the parley_client handle, shared by the files of lib/client/ only.
 *
 * Layout of the module:
 *   client.c   handle life cycle, options, lazy state/key loading, run loop, blocking helpers
 *   session.c  the connection state machine: connect, challenge, auth, request/response matching,
 *              timeouts (the event core)
 *   ops.c      one start function + one completion handler per operation; blocking wrappers
 *   devices.c  parley_device_list
 *   state.c    client.db
 *   e2e.c      the device's Signal identity (signal.db), key upload, refill, rotation, trust,
 *              safety numbers, the local peer-device table
 *   content.c  the plaintext Content format carried inside ciphertexts
 *   send.c     sending: sessions from bundles, one ciphertext per device, mismatch recovery
 *   recv.c     pushes: envelopes (decrypt, dedupe, hand to the app, ack, delivery receipt), typing,
 *              presence, prekeys-low
 */
#ifndef PARLEY_CLIENT_INTERNAL_H
#define PARLEY_CLIENT_INTERNAL_H
#include <stdint.h>

#include <parley/client.h>
#include <parley/signal.h>
#include <parley/signal_sqlite.h>
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
	OP_CONNECT, /* no request: completes once the connection is authenticated */
	OP_RAW,     /* an internal request built in advance (keys, bundles, send, ack, typing) */
} client_op_kind;

struct client_op;
/* Completion of an OP_RAW: resp is NULL when status is a local error (closed, timeout). */
typedef void (*client_raw_cb)(parley_client *c, struct client_op *op, int status,
			      const Parley__Wire__Response *resp);

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
	/* OP_RAW: the request body (a protobuf-c message of case raw_case), freed with raw_free(raw_mem)
	 * after completion; raw_ctx belongs to raw_cb. */
	int raw_case;
	void *raw_body;
	void *raw_mem;
	void (*raw_free)(void *mem);
	client_raw_cb raw_cb;
	void *raw_ctx;
} client_op;

#define CLIENT_ACK_BATCH 100

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

	/* end-to-end state (e2e.c), opened on first need */
	parley_signal_sqlite *sigdb;
	parley_signal_store sigstore;
	parley_signal_ctx *sig;
	int maintenance_done; /* key checks done on this connection */
	int refill_inflight;
	uint64_t last_timestamp; /* message ids (ms) strictly increase per client */

	/* receiving (recv.c): only while the application listens */
	parley_events ev;
	int receiving;
	uint64_t acks[CLIENT_ACK_BATCH];
	size_t nacks;
	uv_timer_t ack_timer;

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

/* Queues an internal request. body is a protobuf-c message of kind body_case living inside mem
 * (freed with free_fn after completion, also on every failure path). cb is called exactly once.
 * Returns PARLEY_E_NOMEM (mem freed, cb not called) or PARLEY_OK. */
int client__submit_raw(parley_client *c, int body_case, void *body, void *mem, void (*free_fn)(void *mem),
		       client_raw_cb cb, void *ctx);
/* The request union member for an OP_RAW. */
void client__raw_set_body(Parley__Wire__Request *req, int body_case, void *body);

/* session.c -> recv.c: one pushed frame other than the challenge. */
void client__handle_push(parley_client *c, const Parley__Wire__Push *push);
/* session.c -> e2e.c: the connection just authenticated with the saved account (auth, not register). */
void client__on_ready(parley_client *c);
/* session.c -> recv.c: the connection closed (after failing the operations). */
void client__on_disconnect(parley_client *c, int err);
void client__recv_shutdown(parley_client *c);

/* e2e.c */
/* Opens signal.db (and the e2e tables of client.db). */
int client__e2e_open(parley_client *c);
void client__e2e_close(parley_client *c);
/* After a successful register/link: makes sure the Signal identity and keys exist, then uploads them;
 * cb(user) is called once the upload completes (or fails). */
int client__e2e_after_account(parley_client *c, parley_done_cb cb, void *user);
/* Uploads `count` fresh one-time prekeys (refill) unless a refill is in flight. */
void client__e2e_refill(parley_client *c, uint32_t remaining);
/* Processes one bundle from the server for handle (X3DH) and remembers the device. */
int client__e2e_process_bundle(parley_client *c, const char *handle, const Parley__Wire__PreKeyBundle *b);
/* Known devices of handle that have a usable session: ids and registration ids (at most max). */
int client__e2e_peer_devices(parley_client *c, const char *handle, uint32_t *ids, uint32_t *regids, size_t max,
			     size_t *n);
int client__e2e_peer_set(parley_client *c, const char *handle, uint32_t device, uint32_t regid);
/* Forgets the session and the device (extra or stale device). */
int client__e2e_peer_drop(parley_client *c, const char *handle, uint32_t device);
/* A changed identity key seen for (handle, device): kept until parley_trust accepts it. */
int client__e2e_pending_identity(parley_client *c, const char *handle, uint32_t device,
				 const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN]);
/* Duplicate detection of received envelopes by server id (unique per envelope, the same on every
 * redelivery; message timestamps are not unique across processes): *seen = 1 if handed over before;
 * with record set, remembers it. */
int client__e2e_seen(parley_client *c, uint64_t server_id, int record, int *seen);
uint64_t client__e2e_timestamp(parley_client *c);

/* send.c */
/* Sends a Receipt envelope of kind (PARLEY_RECEIPT_*) for timestamps to every device of handle. */
int client__send_receipt(parley_client *c, const char *handle, int kind, const uint64_t *ts, size_t n);

/* content.c: the plaintext inside a ciphertext (see content.c for the format) */
#define CONTENT_KIND_MESSAGE 1
#define CONTENT_KIND_SENT_COPY 2 /* a copy for the sender's other devices: has a destination */
typedef struct client_content {
	int kind;
	uint64_t timestamp;
	const uint8_t *body; /* borrowed from the decoded buffer */
	size_t body_len;
	char destination[PARLEY_HANDLE_MAX + 1];
} client_content;
/* Encodes into a new buffer (*out, parley__malloc, padded to a multiple of 160 bytes). */
int client__content_encode(const client_content *ct, uint8_t **out, size_t *out_len);
/* PARLEY_E_INVALID_MESSAGE / PARLEY_E_BAD_VERSION on malformed input. */
int client__content_decode(const uint8_t *buf, size_t len, client_content *out);

/* devices.c */
int client__device_list_from_wire(const Parley__Wire__ListDevicesResponse *r, uint32_t self_id,
				  parley_device_list **out);

#endif
