/* parley — the client API: one account device talking to parleyd.
 *
 * A parley_client is one device of one account on one server. It owns:
 *   - its own libuv loop (never shared, so the library stays out of the application's loop),
 *   - a local state directory (SQLite `client.db`: the Ed25519 device key, handle, account and device
 *     ids, the server URL), created 0700 with files 0600,
 *   - at most one WebSocket connection, opened on demand and authenticated automatically by signing the
 *     server's challenge with the device key.
 *
 * Two ways to call it:
 *   - asynchronous: parley_*_start() queues an operation and returns at once; its callback runs later
 *     from inside parley_client_run() / parley_client_run_once(). Contract for every *_start():
 *     if it returns an error, the callback is NEVER called and nothing was queued; if it returns
 *     PARLEY_OK, the callback is called EXACTLY ONCE (with a result, a server status, PARLEY_E_TIMEOUT,
 *     PARLEY_E_CLOSED, or PARLEY_E_CLOSED from parley_client_free for operations still pending).
 *   - blocking: parley_register(), parley_devices_list(), ... run the loop until their own operation
 *     completes. They must not be called from inside a callback (PARLEY_E_STATE).
 *
 * Errors: every function returns a parley_err (<parley/error.h>). A refusal by the server comes back
 * as the server's status code (e.g. PARLEY_E_HANDLE_TAKEN). parley_client_errmsg() holds a one-line
 * detail about the last failure (a path, the server's message).
 *
 * Threading: a client is not thread-safe; use it from one thread at a time. Distinct clients are
 * independent (there is no global state). The library never prints and never aborts; it does not touch
 * signal dispositions either, so a program should ignore SIGPIPE (as `parley` does) or a peer that
 * closes the socket mid-write could kill it.
 */
#ifndef PARLEY_CLIENT_H
#define PARLEY_CLIENT_H
#include <stddef.h>
#include <stdint.h>

#include <parley/error.h>
#include <parley/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_DEFAULT_SERVER_URL "ws://127.0.0.1:7600/v1/websocket"
#define PARLEY_DEVICE_KEY_BYTES 32   /* Ed25519 public key */
/* A handle has 3 to 32 characters from a-z, 0-9, '.', '_' and '-', the first a letter a-z
 * (docs/protocol.md §5.1). Every function taking a handle checks this before anything is queued or sent:
 * PARLEY_E_BAD_HANDLE, with the rule and the offending character in parley_client_errmsg(). */
#define PARLEY_HANDLE_MAX 32         /* bytes, without NUL */
#define PARLEY_DEVICE_NAME_MAX 64    /* bytes, without NUL */
#define PARLEY_URL_MAX 2048          /* bytes, without NUL */

typedef struct parley_client parley_client;
/* <parley/entity.h> */
typedef struct parley_join_request parley_join_request;

typedef struct parley_client_options {
	/* ws://host[:port][/path] or wss://... NULL = the server this device registered with (saved in the
	 * state), or PARLEY_DEFAULT_SERVER_URL when there is no account yet. An explicit URL always wins
	 * (the server may have moved); register/link save the URL they used. */
	const char *server_url;
	/* NULL = $XDG_DATA_HOME/parley, else $HOME/.local/share/parley. Created (0700) on first need. */
	const char *state_dir;
	/* PEM CA bundle used to verify wss:// servers; NULL = the system's default store. */
	const char *ca_file;
	/* TCP + TLS + WebSocket upgrade + authentication; 0 = 10000. At most 600000. */
	unsigned connect_timeout_ms;
	/* Time for the server to answer one request; 0 = 10000. At most 600000. */
	unsigned request_timeout_ms;
	/* Bounds of the local quarantine of envelopes that could not be decrypted (parley_quarantine_list):
	 * per sending account (also the most pending identity keys kept per account), and in total; the
	 * oldest are dropped beyond (counted). 0 = the defaults below. At most PARLEY_QUARANTINE_LIMIT. */
	unsigned quarantine_per_sender;
	unsigned quarantine_max;
	/* Local history (parley_history_list; docs/history.md). Message bodies are sealed at rest under a
	 * storage key: by default 32 random bytes in `history.key` (0600, next to client.db, created on
	 * first use); with a passphrase, a key derived from it with Argon2id and no key file (chosen on first
	 * use: the same mode and passphrase are needed ever after, else PARLEY_E_STORAGE_KEY). Copied. */
	const char *storage_passphrase;
	/* Rows kept per conversation, the oldest pruned beyond: 0 = PARLEY_HISTORY_MAX_DEFAULT; at most
	 * PARLEY_HISTORY_LIMIT. */
	unsigned history_max_per_conversation;
	/* Rows older than this many days (by server time) are pruned; 0 = no age limit. */
	unsigned history_max_age_days;
} parley_client_options;

#define PARLEY_HISTORY_MAX_DEFAULT 10000
#define PARLEY_HISTORY_LIMIT 1000000
#define PARLEY_HISTORY_MAX_AGE_LIMIT 36500

#define PARLEY_QUARANTINE_PER_SENDER_DEFAULT 50
#define PARLEY_QUARANTINE_MAX_DEFAULT 1000
#define PARLEY_QUARANTINE_LIMIT 100000

/* Zeroes *opts (all defaults). Use it so fields added later start at their default. */
PARLEY_EXPORT void parley_client_options_init(parley_client_options *opts);

/* Creates a client. opts may be NULL (all defaults); its strings are copied. Nothing touches the disk
 * or the network yet. On success *out owns the client (free with parley_client_free); on error *out is
 * NULL and nothing is allocated. Errors: PARLEY_E_INVAL (out NULL, URL not ws:// / wss://, too long,
 * timeout out of range, empty state_dir), PARLEY_E_NOMEM, PARLEY_E_INTERNAL (libuv/libsodium init). */
PARLEY_EXPORT parley_err parley_client_new(const parley_client_options *opts, parley_client **out);

/* Closes the connection, calls the callbacks of pending operations with PARLEY_E_CLOSED, zeroises the
 * device secret key in memory and frees everything. NULL is a no-op. Must not be called from inside
 * one of this client's callbacks. */
PARLEY_EXPORT void parley_client_free(parley_client *client);

/* A never-NULL, one-line detail of the last failure on this client ("" if none), e.g. the file with
 * bad permissions or the server's message. Owned by the client; valid until the next call on it. */
PARLEY_EXPORT const char *parley_client_errmsg(const parley_client *client);

/* ---- event core ---- */

/* Runs the client's loop, dispatching callbacks.
 *   timeout_ms == 0: until no operation is pending (returns at once if none is).
 *   timeout_ms  > 0: for that long, even when idle, so that events the server pushes keep being
 *                    dispatched (the shape of a future `listen`); or until parley_client_stop().
 * Returns PARLEY_OK, or PARLEY_E_STATE if called from inside one of this client's callbacks. */
PARLEY_EXPORT parley_err parley_client_run(parley_client *client, unsigned timeout_ms);

/* Makes the current parley_client_run() return once the callback that calls it returns. Meant for
 * callbacks (on the client's thread); no effect outside parley_client_run. */
PARLEY_EXPORT void parley_client_stop(parley_client *client);

/* Waits for at least one event and dispatches it (never blocks when nothing is pending). Returns
 * PARLEY_OK, or PARLEY_E_STATE if called from a callback. *more (may be NULL) is set to 1 while there
 * is still work in progress. */
PARLEY_EXPORT parley_err parley_client_run_once(parley_client *client, int *more);

/* Closes the connection (gracefully). Pending operations complete with PARLEY_E_CLOSED. The next
 * operation connects again. */
PARLEY_EXPORT void parley_client_disconnect(parley_client *client);

/* ---- local identity ---- */

/* This device's Ed25519 public key (creating and saving the device key on first use), so another
 * device of the account can add it (parley_device_add), after which this device calls parley_link.
 * Errors: PARLEY_E_IO / PARLEY_E_STORE (state), PARLEY_E_PERM (state files readable by others). */
PARLEY_EXPORT parley_err parley_device_public_key(parley_client *client, uint8_t out[PARLEY_DEVICE_KEY_BYTES]);

/* A link code: this device's key, a timestamp and this device's signature over them and the handle of
 * the account it is to join. The server adds a device only with it (proof of possession: nobody can add
 * someone else's key to their account and squat it). */
/* The link code (docs/protocol.md §4.3, §11): key(32) || timestamp_ms u64be(8) || Ed25519 signature(64)
 * by that key over the AddDevice signed bytes || Signal identity key(33) || XEdDSA signature(64) by that
 * identity key over the same signed bytes followed by the identity key (its proof of possession, so the
 * account key signs a device list with an identity key the new device really holds). 201 bytes since
 * issue 9 (104 before: key, timestamp, signature). */
#define PARLEY_DEVICE_LINK_CODE_BYTES 201
/* On the NEW device: its link code for joining account `handle` (creating the device key and the Signal
 * identity on first use). The device holding the account key passes it to parley_device_add (CLI:
 * `parley devices link CODE`), which adds the device and signs the next device list with it; the server
 * accepts it for device_link_max_age_s (default 10 minutes) either side of its clock
 * (PARLEY_E_LINK_CODE_EXPIRED beyond). Errors: PARLEY_E_BAD_HANDLE, state errors. */
PARLEY_EXPORT parley_err parley_device_link_code(parley_client *client, const char *handle,
						 uint8_t out[PARLEY_DEVICE_LINK_CODE_BYTES]);

/* The saved account of this device. handle_buf (handle_len bytes, may be NULL when handle_len is 0)
 * receives the NUL-terminated handle; account_id / device_id may be NULL. Errors: PARLEY_E_NO_IDENTITY
 * (not registered or linked), PARLEY_E_TOO_LARGE (handle_buf too small), state errors. */
PARLEY_EXPORT parley_err parley_identity(parley_client *client, char *handle_buf, size_t handle_len,
					 uint64_t *account_id, uint32_t *device_id);

/* ---- devices ---- */

typedef struct parley_device_list parley_device_list;

typedef struct parley_device_info {
	uint32_t id;
	const char *name;        /* NUL-terminated, owned by the list */
	const uint8_t *key;      /* PARLEY_DEVICE_KEY_BYTES bytes, owned by the list */
	uint64_t created_ms;     /* Unix time in milliseconds */
	uint64_t last_seen_ms;   /* 0 = never */
	int is_self;             /* 1 for the device this client is */
} parley_device_info;

PARLEY_EXPORT size_t parley_device_list_count(const parley_device_list *list);
/* Fills *out with entry i (pointers stay valid until the list is freed). PARLEY_E_INVAL if i is out of
 * range or an argument is NULL. */
PARLEY_EXPORT parley_err parley_device_list_get(const parley_device_list *list, size_t i,
						parley_device_info *out);
PARLEY_EXPORT void parley_device_list_free(parley_device_list *list);

/* ---- asynchronous operations (see the contract at the top) ---- */

/* Completion of an operation with no result. */
typedef void (*parley_done_cb)(parley_client *client, parley_err status, void *user);
/* Completion of parley_devices_list_start: on PARLEY_OK, list is owned by the callee (free it with
 * parley_device_list_free; it may be kept after the callback); otherwise list is NULL. */
typedef void (*parley_devices_cb)(parley_client *client, parley_err status, parley_device_list *list,
				  void *user);
/* Completion of parley_device_add_start: device_id is meaningful only on PARLEY_OK. */
typedef void (*parley_device_id_cb)(parley_client *client, parley_err status, uint32_t device_id, void *user);

/* Creates an account `handle` with this device (name: device_name, may be NULL = "primary") and saves
 * it locally. Refused with PARLEY_E_STATE if this device already has an account. Server statuses:
 * PARLEY_E_HANDLE_TAKEN, PARLEY_E_BAD_HANDLE, PARLEY_E_DEVICE_KEY_IN_USE, ... */
PARLEY_EXPORT parley_err parley_register_start(parley_client *client, const char *handle,
					       const char *device_name, parley_done_cb cb, void *user);
/* Authenticates for the first time as device `device_id` of `handle` (this device's key must have been
 * added by another device of the account) and saves the account locally. PARLEY_E_STATE if this device
 * already has an account; server statuses such as PARLEY_E_BAD_SIGNATURE, PARLEY_E_NO_SUCH_DEVICE. */
PARLEY_EXPORT parley_err parley_link_start(parley_client *client, const char *handle, uint32_t device_id,
					   parley_done_cb cb, void *user);
/* The following need an account (PARLEY_E_NO_IDENTITY otherwise). */
PARLEY_EXPORT parley_err parley_devices_list_start(parley_client *client, parley_devices_cb cb, void *user);
/* link_code: from parley_device_link_code on the new device. Server statuses: PARLEY_E_BAD_SIGNATURE
 * (not signed by that key for this account), PARLEY_E_LINK_CODE_EXPIRED, PARLEY_E_DEVICE_KEY_IN_USE. */
PARLEY_EXPORT parley_err parley_device_add_start(parley_client *client,
						 const uint8_t link_code[PARLEY_DEVICE_LINK_CODE_BYTES],
						 const char *name, parley_device_id_cb cb, void *user);
/* Removing this device itself also forgets the saved account (the device key is kept). */
PARLEY_EXPORT parley_err parley_device_remove_start(parley_client *client, uint32_t device_id,
						    parley_done_cb cb, void *user);
/* Moves the account key (and every entity key this device holds) to another device of this account,
 * end to end (docs/protocol.md §11.4). Only on the device holding the account key
 * (PARLEY_E_NO_ACCOUNT_KEY); device_id must be another device of the account (PARLEY_E_NO_SUCH_DEVICE)
 * named by the account's signed device list (PARLEY_E_DEVICE_NOT_LISTED); one transfer at a time
 * (PARLEY_E_KEY_TRANSFER_PENDING until its receiver confirms, or leaves the list). Completes once the
 * server queued it. This device keeps its copies until the receiver confirms (on_keys_moved, received
 * 0, when this device wipes them: it must be receiving then, e.g. `parley listen`). */
PARLEY_EXPORT parley_err parley_account_key_transfer_start(parley_client *client, uint32_t device_id,
							   parley_done_cb cb, void *user);

/* ---- blocking conveniences: start the operation and run the loop until it completes ---- */

PARLEY_EXPORT parley_err parley_register(parley_client *client, const char *handle, const char *device_name);
PARLEY_EXPORT parley_err parley_link(parley_client *client, const char *handle, uint32_t device_id);
/* On PARLEY_OK *out owns a list (free with parley_device_list_free); on error *out is NULL. */
PARLEY_EXPORT parley_err parley_devices_list(parley_client *client, parley_device_list **out);
/* name may be NULL ("linked device"). *device_id (may be NULL) receives the new device's id. */
PARLEY_EXPORT parley_err parley_device_add(parley_client *client,
					   const uint8_t link_code[PARLEY_DEVICE_LINK_CODE_BYTES], const char *name,
					   uint32_t *device_id);
PARLEY_EXPORT parley_err parley_device_remove(parley_client *client, uint32_t device_id);
PARLEY_EXPORT parley_err parley_account_key_transfer(parley_client *client, uint32_t device_id);

/* ---- end-to-end messaging (Signal protocol; docs/protocol.md §9-§10) ----
 *
 * Each device has its own Signal identity (Curve25519 identity key, registration id, signed prekey,
 * one-time prekeys), created and uploaded by register/link and kept in `signal.db` next to client.db
 * (0600). Sending sets up a session with every device of the recipient from the server's bundles,
 * encrypts once per device, and sends a copy to this account's other devices. The server never sees
 * plaintext. The library refills one-time prekeys when the server reports the pool low and rotates the
 * signed prekey weekly (checked after each authentication).
 *
 * Identity changes: the first identity key seen for a (handle, device) is trusted (once a message under
 * it decrypted: nothing is saved from a message that does not); a different one later is never used
 * silently — sending fails with PARLEY_E_UNTRUSTED_IDENTITY (errmsg names the handle) and received
 * messages under it are not decrypted until the application calls parley_trust() / parley_trust_key()
 * after the user compared the new safety number.
 *
 * Quarantine: an envelope that cannot be decrypted when it arrives (untrusted identity, no session,
 * bad MAC, unknown prekey...) is acknowledged to the server and kept, ciphertext only, in client.db
 * (bounded: parley_client_options.quarantine_*), so that no sender can hold this device's delivery
 * window on the server. Accepting a key of its sender (parley_trust / parley_trust_key) retries that
 * sender's quarantined envelopes: at once when receiving, else on the next connection that receives.
 */

#define PARLEY_MESSAGE_MAX 8192         /* largest message body, bytes (one frame carries a copy per device) */
#define PARLEY_SAFETY_NUMBER_LEN 60     /* digits, without NUL */

typedef enum parley_receipt_kind {
	PARLEY_RECEIPT_DELIVERED = 1,
	PARLEY_RECEIPT_READ = 2,
} parley_receipt_kind;

/* A received message; every pointer is valid during the callback only. */
typedef struct parley_message {
	const char *sender;          /* handle of the sending account */
	uint32_t sender_device;
	/* NULL for a message to this account; for a copy of a message this account sent from another of
	 * its devices: the handle it was sent to. */
	const char *destination;
	uint64_t timestamp_ms;        /* the sender's timestamp: the message id receipts refer to */
	uint64_t server_timestamp_ms; /* when the server accepted it */
	const uint8_t *body;          /* body_len bytes (UTF-8 text for `parley send`), followed by a NUL */
	size_t body_len;
	/* 1: a message request: this account has not accepted the sender (never wrote to it, nor called
	 * parley_accept), so no receipts go back and no presence or typing flows (see parley_accept) */
	int request;
} parley_message;

/* Event callbacks. Any may be NULL. They run inside parley_client_run / run_once / blocking calls.
 * A message is acknowledged to the server (deleted there) only after on_message has returned, so a
 * crash before that leaves it on the server. */
typedef struct parley_events {
	void (*on_message)(parley_client *c, const parley_message *msg, void *user);
	/* timestamps: the ids of this account's messages that `handle`'s device delivered or read. */
	void (*on_receipt)(parley_client *c, const char *handle, uint32_t device, parley_receipt_kind kind,
			   const uint64_t *timestamps, size_t n, void *user);
	void (*on_typing)(parley_client *c, const char *handle, uint32_t device, int started, void *user);
	void (*on_presence)(parley_client *c, const char *handle, int online, void *user);
	/* The identity key of (handle, device) changed: messages from it wait in the quarantine until
	 * parley_trust(handle) / parley_trust_key. */
	void (*on_identity_changed)(parley_client *c, const char *handle, uint32_t device, void *user);
	/* A message that could not be decrypted (it is acknowledged and kept in the quarantine) or parsed
	 * (acknowledged and dropped). */
	void (*on_error)(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user);
	/* The connection closed (err says why); the next operation (e.g. parley_connect) reconnects. */
	void (*on_disconnect)(parley_client *c, parley_err err, void *user);
	void *user;
	/* A newer signed device list of `handle` (docs/protocol.md §11) was verified: `added` devices joined
	 * and `removed` left since the list seen before ("alice linked a new device"). Not called for the
	 * first list seen of an account. Appended last so existing initialisers stay valid. */
	void (*on_devices_changed)(parley_client *c, const char *handle, uint64_t version, size_t added,
				   size_t removed, void *user);
	/* Entities (<parley/entity.h>), whether or not on_message is set (appended last too): a candidate asked to join
	 * `entity` (to its admins; req valid during the call, its safety_number empty), and a new staff
	 * list of `entity` (to its members; removed = 1: this account is no longer one). */
	void (*on_entity_join_requested)(parley_client *c, const char *entity, const parley_join_request *req,
					 void *user);
	void (*on_entity_staff_changed)(parley_client *c, const char *entity, uint64_t staff_version, int removed,
					void *user);
	/* This account's join request to `entity` was denied (approved ones show as a staff change that
	 * names this account). */
	void (*on_entity_join_decided)(parley_client *c, const char *entity, uint64_t request_id, int approved,
				       void *user);
	/* Private keys moved (docs/protocol.md §11.4; appended last too): received = 1 when this device
	 * imported `what` ("account key" or an entity handle) from `handle`, 0 when it wiped its own copy
	 * after `handle` confirmed it holds the key now. A refused transfer goes to on_error
	 * (PARLEY_E_KEY_TRANSFER_INVALID). */
	void (*on_keys_moved)(parley_client *c, const char *handle, int received, const char *what, void *user);
} parley_events;

/* Starts receiving with these callbacks (copied), or stops with NULL. While not receiving (the
 * default), envelopes the server pushes are left untouched on the server: a `parley send` never
 * consumes messages meant for `parley listen`. The server pushes a device's backlog once per
 * connection, so set the events BEFORE connecting (or call parley_client_disconnect first): what was
 * pushed to a connection while not receiving comes again only on the next connection.
 * Stopping (NULL) queues the acknowledgements still owed; parley_client_run(client, 0) sends them.
 * Duplicates (a redelivery after a lost ack) are detected and not shown again. */
PARLEY_EXPORT void parley_client_set_events(parley_client *client, const parley_events *events);

/* Connects and authenticates (if not already); the server then pushes queued envelopes. */
PARLEY_EXPORT parley_err parley_connect_start(parley_client *client, parley_done_cb cb, void *user);
PARLEY_EXPORT parley_err parley_connect(parley_client *client);

/* Sends body (1..PARLEY_MESSAGE_MAX bytes) to every device of `handle`, and a copy to this account's
 * other devices. *timestamp (may be NULL) receives the message id (ms), which receipts refer to.
 * Completes once the server has stored it durably for every device. Errors besides the server's:
 * PARLEY_E_UNTRUSTED_IDENTITY (a device of handle has a new identity key: see parley_trust),
 * PARLEY_E_NO_KEYS (the recipient has no device with keys; for this account's own handle: it has no
 * other device), PARLEY_E_MISMATCHED_DEVICES (the device list kept changing, 3 attempts). */
PARLEY_EXPORT parley_err parley_send_start(parley_client *client, const char *handle, const uint8_t *body,
					   size_t len, uint64_t *timestamp, parley_done_cb cb, void *user);
PARLEY_EXPORT parley_err parley_send(parley_client *client, const char *handle, const char *text);
PARLEY_EXPORT parley_err parley_send_bytes(parley_client *client, const char *handle, const uint8_t *body,
					   size_t len, uint64_t *timestamp);

/* Sends a read receipt for these message ids (1..100) to `handle`'s devices, end-to-end encrypted.
 * Queued: completes in the loop; failures are not reported (receipts are best effort). Receipts go only
 * to accepted peers (see parley_accept): PARLEY_E_NOT_ACCEPTED, and nothing is sent, for anyone else. */
PARLEY_EXPORT parley_err parley_mark_read(parley_client *client, const char *handle, const uint64_t *timestamps,
					  size_t n);
/* Typing indicator to `handle` (best effort, queued). The server drops it (NOT_ACCEPTED) unless both
 * accounts accepted each other. */
PARLEY_EXPORT parley_err parley_typing(parley_client *client, const char *handle, int started);

/* Message requests (as Signal and WhatsApp). This account accepts a peer by writing to it (from any of
 * its devices) or with parley_accept. Until then a peer who wrote first is a request: it gets no
 * receipts, no presence and cannot show typing here. Presence and typing flow between two accounts
 * once each accepted the other. parley_decline withdraws the acceptance (no more receipts, presence or
 * typing between the two); messages still arrive. */
PARLEY_EXPORT parley_err parley_contact_start(parley_client *client, const char *handle, int accept,
					      parley_done_cb cb, void *user);
PARLEY_EXPORT parley_err parley_accept(parley_client *client, const char *handle);
PARLEY_EXPORT parley_err parley_decline(parley_client *client, const char *handle);
/* Whether this account's online state goes to its accepted contacts (default: the server's
 * presence_share_default, on unless the operator changed it). Turning it off tells them "offline". */
PARLEY_EXPORT parley_err parley_presence_share_start(parley_client *client, int share, parley_done_cb cb,
						     void *user);
PARLEY_EXPORT parley_err parley_presence_share(parley_client *client, int share);

/* The safety number (60 digits, NUL-terminated, libsignal's displayable fingerprint of this device's
 * identity key and the identity key of device `index` of handle, in device order; identifiers are the
 * two handles). Fetches handle's bundles first if no device of handle is known. *device_id (may be
 * NULL) receives the device's id; *changed (may be NULL) is set to 1 when this is a NEW identity key
 * waiting for parley_trust (with several pending keys for the device: the one seen last;
 * parley_pending_keys lists them all). PARLEY_E_NOT_FOUND when index is past the last device. */
PARLEY_EXPORT parley_err parley_safety_number(parley_client *client, const char *handle, size_t index,
					      uint32_t *device_id, int *changed,
					      char out[PARLEY_SAFETY_NUMBER_LEN + 1]);
/* Accepts the new identity keys of handle's devices (after the user verified the safety number):
 * their old sessions are dropped and quarantined messages of handle are retried (at once when
 * receiving, else on the next connection that receives). *accepted (may be NULL) receives the number of
 * keys accepted (0: nothing was pending). PARLEY_E_AMBIGUOUS_IDENTITY (nothing accepted) when a device
 * of handle has several pending keys: list them with parley_pending_keys, accept one with
 * parley_trust_key. */
PARLEY_EXPORT parley_err parley_trust(parley_client *client, const char *handle, size_t *accepted);

/* One identity key claimed for a device of handle and not accepted yet. */
typedef struct parley_pending_key {
	uint32_t device_id;
	uint64_t seen_ms;                                /* when it was last seen */
	uint8_t key[33];                                 /* the identity key (0x05 || X25519) */
	char safety_number[PARLEY_SAFETY_NUMBER_LEN + 1]; /* with this device's identity, as displayed */
} parley_pending_key;

/* Every pending key of handle (all devices), oldest first: up to max in out, *n = how many. */
PARLEY_EXPORT parley_err parley_pending_keys(parley_client *client, const char *handle, parley_pending_key *out,
					     size_t max, size_t *n);
/* Accepts the one pending key of (handle, device_id) whose safety number is safety_number (digits; any
 * spaces are ignored), as parley_trust does for a single key. PARLEY_E_NOT_FOUND if none matches. */
PARLEY_EXPORT parley_err parley_trust_key(parley_client *client, const char *handle, uint32_t device_id,
					  const char *safety_number);

/* One quarantined envelope (see "Quarantine" above). */
typedef struct parley_quarantine_entry {
	char sender[PARLEY_HANDLE_MAX + 1];
	uint32_t sender_device;
	uint64_t server_id;        /* the server's id of the envelope */
	uint64_t timestamp_ms;     /* the sender's timestamp (its message id) */
	uint64_t received_ms;      /* when this device received it */
	parley_err reason;         /* why it could not be decrypted (last attempt) */
	int retry;                 /* 1: to be retried (a key of its sender was accepted) */
} parley_quarantine_entry;

/* The quarantine, oldest first: up to max entries in out, *n = how many; *dropped (may be NULL) = how
 * many envelopes the bounds pushed out so far. */
PARLEY_EXPORT parley_err parley_quarantine_list(parley_client *client, parley_quarantine_entry *out, size_t max,
						size_t *n, uint64_t *dropped);

/* ---- local history (docs/history.md) ----
 *
 * Every message handed to on_message (including copies of what this account sent from its other
 * devices) and every message this device sent (once the server stored it) is kept in client.db, the
 * body sealed under the storage key (parley_client_options.storage_passphrase). Receipts, typing and key
 * transfers are not history. A conversation is named by a string of 1..PARLEY_CONVERSATION_MAX
 * printable ASCII bytes: today the peer's handle (the own handle for notes to self). Errors of every
 * call below: PARLEY_E_STORAGE_KEY (the key file or passphrase is not the one the history was sealed
 * with, or missing: nothing is read or written), PARLEY_E_NO_IDENTITY, state errors. With a wrong key,
 * sending fails and received envelopes stay on the server (on_error) until the right key is given. */
#define PARLEY_CONVERSATION_MAX 64

typedef struct parley_history_entry {
	int outgoing;                       /* 1: sent by this account (from any of its devices) */
	char sender[PARLEY_HANDLE_MAX + 1];
	uint32_t sender_device;
	uint64_t timestamp_ms;              /* the sender's timestamp: the message id */
	uint64_t server_timestamp_ms;       /* when the server accepted it (the listing order) */
	uint8_t *body;                      /* body_len bytes and a NUL; owned by the entry */
	size_t body_len;
} parley_history_entry;

/* Up to max entries of `conversation`, newest first (by server time), only those with a server time
 * below before_ms (0 = no bound: page backwards by passing the oldest one's server_timestamp_ms).
 * *n = how many were filled; their bodies are allocated: release them with
 * parley_history_entries_free(out, *n) (on error nothing is left allocated and *n is 0).
 * PARLEY_E_BAD_MAC when a stored row does not open (altered or moved: refused, not shown). */
PARLEY_EXPORT parley_err parley_history_list(parley_client *client, const char *conversation, uint64_t before_ms,
					     size_t max, parley_history_entry *out, size_t *n);
/* Wipes and frees the bodies of n entries (NULL or n == 0: no-op); the array stays the caller's. */
PARLEY_EXPORT void parley_history_entries_free(parley_history_entry *entries, size_t n);
/* Deletes the history of one conversation (*deleted, may be NULL = rows removed). */
PARLEY_EXPORT parley_err parley_history_clear(parley_client *client, const char *conversation, size_t *deleted);

#ifdef __cplusplus
}
#endif
#endif
