/* Internals of the parley_client handle, shared by the files of lib/client/ only.
 *
 * Layout of the module. Calls go one way: features call down into conn.c (submit an op, fail the
 * connection); conn.c never calls a feature: it runs the build/complete functions stored in each op and
 * the hooks client.c installs (c->hooks).
 *   client.c   handle life cycle, options, lazy state/key loading, run loop, the connection hooks, and
 *              the helpers every entry point shares (argument checks, blocking waits)
 *   conn.c     the connection state machine (the event core): connect, challenge, authentication,
 *              request/response matching by id, timeouts; knows ops only through client_op_vtable
 *   account.c  register, link, the saved account's authentication of a connection, connect
 *   devices.c  list/add/remove devices, parley_device_list
 *   state.c    client.db: directory and file permissions, schema migrations, device key, account
 *   e2e.c      the local end-to-end store (signal.db; peer devices, pending identities and received
 *              ids in client.db) and fetching/processing key bundles (X3DH)
 *   keys.c     this device's Signal keys: upload after register/link, refill, signed-prekey rotation
 *   trust.c    safety numbers and trust decisions
 *   content.c  the plaintext Content format carried inside ciphertexts
 *   send.c     sending: sessions from bundles, one ciphertext per device, mismatch recovery
 *   recv.c     pushes: envelopes (decrypt, dedupe, hand to the app, ack, delivery receipt), typing,
 *              presence, prekeys-low
 *   keymove.c  private keys moving between devices: transfers, their import and confirm (§11.4)
 *   peers.c, ownlist.c, legacy.c, akey.c  signed device lists: peers' (pins, checks), this account's
 *              (signing), migration of accounts from before account keys, the account key
 *   entity*.c  entities (entity_internal.h): the calls and their stages (entity.c), entry points and
 *              pushes (entity_calls.c), client.db side and verification (entity_state.c), blocking
 *              calls and views (entity_view.c), approvals without the entity key and the key holder's
 *              sweep, primary transfer's key send (entity_approve.c)
 *   history.c  the local history's store: the storage key (key file or passphrase), sealing rows
 *   history_rows.c  its rows: insert with retention, listing, the crash window's un-handed rows
 *   history_api.c   the history of a parley_client: recording on receive/send, the public calls
 *   requests.c message requests: whom this account accepted (receipts go only to them), what it sent
 *              to whom (receipts are believed only from there), parley_accept/decline/presence
 */
#ifndef PARLEY_CLIENT_INTERNAL_H
#define PARLEY_CLIENT_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include <parley/auth.h>
#include <parley/client.h>
#include <parley/signal.h>
#include <parley/signal_sqlite.h>
#include <parley/thread.h>
#include <uv.h>

#include "client/state.h"
#include "common/migrate.h"
#include "proto/parley.pb-c.h"
#include "transport/transport.h"
#include "wire/devlist.h"
#include "wire/wire.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 10000u
#define CLIENT_MAX_TIMEOUT_MS 600000u
#define CLIENT_ERRMSG_LEN 512

/* ---- operations ----
 *
 * An operation is one request and its completion. Its memory is a struct of the feature that embeds a
 * client_op (and whatever the request body points to), allocated by the feature and freed by its own
 * completion function. */
typedef struct client_op client_op;
/* content.c */
typedef struct client_content client_content;

/* How one kind of request is built and completed. The event core (conn.c) knows requests only through
 * this table: adding a request kind means writing its build and complete functions and one const table,
 * with no change to conn.c. */
typedef struct client_op_vtable {
	/* Sets req->body_case and the matching body member, when the request is about to be sent. Pointers
	 * may refer into the op's own memory (it lives until complete). An op flagged
	 * CLIENT_OP_AUTHENTICATES signs c->nonce here: the fresh challenge of the connection. A non-OK
	 * return completes this op with that status. NULL for CLIENT_OP_NO_REQUEST. */
	int (*build)(parley_client *c, client_op *op, Parley__Wire__Request *req);
	/* Called exactly once per op, which it then owns (frees). status is the server's status, or a local
	 * error (PARLEY_E_CLOSED, PARLEY_E_TIMEOUT, a build failure, ...) with resp NULL. With PARLEY_OK and
	 * a response, resp->body_case is response_case (the core checks). May submit new ops. */
	void (*complete)(parley_client *c, client_op *op, int status, const Parley__Wire__Response *resp);
	/* The Parley__Wire__Response__BodyCase a success carries; 0 = not checked. */
	int response_case;
	unsigned flags;
} client_op_vtable;

/* The request answers the challenge of a fresh connection and authenticates it (register, link, the
 * saved account's auth): it consumes the nonce, and is refused (PARLEY_E_STATE) on a connection that is
 * already authenticated. */
#define CLIENT_OP_AUTHENTICATES 1u
/* No request: the op completes with PARLEY_OK once the connection is authenticated (connect). */
#define CLIENT_OP_NO_REQUEST 2u

struct client_op {
	client_op *next;
	const client_op_vtable *vt;
	uint64_t id;       /* request id once sent, 0 while queued */
	uint64_t deadline; /* uv_now() ms by which the response must arrive; 0 while queued */
};

/* The feature struct that embeds op as its member `member`. */
#define CLIENT_OP_OWNER(op, type, member) ((type *)(void *)((char *)(op) - offsetof(type, member)))

/* What the event core needs from the rest of the client, installed by client.c. */
typedef struct client_conn_hooks {
	/* Makes the op that authenticates a fresh connection for queued ops that do not authenticate it
	 * themselves (the saved account's AuthRequest, account.c). Its completion must fail the connection
	 * (client__conn_fail) when the server refuses it, since everything queued depended on it. */
	int (*new_auth_op)(parley_client *c, client_op **out);
	/* A push other than the challenge, on an authenticated connection (recv.c). */
	void (*on_push)(parley_client *c, const Parley__Wire__Push *push);
	/* The transport closed (recv.c); called before the ops that were waiting on it complete. */
	void (*on_disconnect)(parley_client *c, int err);
} client_conn_hooks;

/* Where the connection is. Only one authentication is ever in flight. */
typedef enum client_conn_state {
	CONN_NONE,        /* no transport */
	CONN_CONNECTING,  /* transport__connect done, waiting for on_open */
	CONN_WAIT_CHALLENGE,
	CONN_CHALLENGED,  /* nonce received, not used yet */
	CONN_AUTHENTICATING, /* an op flagged CLIENT_OP_AUTHENTICATES is in flight */
	CONN_READY,       /* authenticated */
	CONN_CLOSING,     /* transport__close called, waiting for on_close */
} client_conn_state;

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
	unsigned quarantine_per_sender, quarantine_max; /* quarantine.c */

	/* local state, opened on first need */
	client_state *state;
	client_key key; /* secret: wiped in parley_client_free */
	int have_key;
	client_account account;
	int have_account;

	/* connection (conn.c) */
	const client_conn_hooks *hooks;
	transport_conn *tp;
	client_conn_state conn;
	char conn_url[PARLEY_URL_MAX + 1];
	uint8_t nonce[WIRE_NONCE_LEN];
	unsigned register_pow_bits; /* the challenge's: a register must carry that proof of work */
	int fresh_nonce;        /* a new challenge arrived while an authenticating op was in flight */
	uint64_t conn_deadline; /* connect + challenge must finish by then; 0 = none */
	uint64_t next_id;
	client_op *queued;      /* not sent yet, FIFO */
	client_op *sent;        /* waiting for a response */

	/* end-to-end state (e2e.c), opened on first need */
	parley_signal_sqlite *sigdb;
	parley_signal_store sigstore;
	parley_signal_ctx *sig;
	int maintenance_done; /* key checks done on this connection (keys.c) */
	int refill_inflight;  /* keys.c */
	uint64_t last_timestamp; /* message ids (ms) strictly increase per client */
	int requests_ready;      /* requests.c: its schema is migrated in this client.db */
	int entities_ready;      /* entity_state.c: the same for its schema */
	int keymove_ready;       /* keymove.c: the same for its schema */
	/* history (history_api.c): the storage key in sodium_malloc'd memory once unlocked (sodium_free
	 * wipes it); the passphrase (sodium_malloc'd) only until then */
	uint8_t *history_key;
	char *storage_passphrase;
	unsigned history_max, history_max_age_days;

	/* threads (thread*.c): the application's thread events and the schema flag of client.threads */
	parley_thread_events tev;
	int threads_ready;
	int thread_retry; /* a sender key arrived: retry the quarantine after this push (recv.c) */
	struct {
		uint64_t thread_id, at_ms;
	} thread_refresh[8]; /* when a thread was last fetched for an envelope it did not explain */
	unsigned thread_refresh_next;
	/* forwards (thread_forward_recv.c): bundles under check (their early chunks wait with them) and the
	 * schema flag of client.forward */
	struct fwd_import *fwd_imports;
	int forward_ready;
	/* customer authentication (auth*.c): the application's events for AuthPrompt and AuthResult */
	parley_auth_events aev;

	/* receiving (recv.c): only while the application listens */
	parley_events ev;
	int receiving;
	uint64_t acks[CLIENT_ACK_BATCH];
	size_t nacks;
	uv_timer_t ack_timer;

	/* peers.c: when a signed device list was last fetched for a sender not in the kept one (a device
	 * not listed is quarantined and the list fetched once; the guard stops a retry from fetching again) */
	struct {
		char handle[PARLEY_HANDLE_MAX + 1];
		uint64_t at_ms;
		int inflight; /* the answer has not come yet: what it will say is not known */
	} list_fetch[8];
	unsigned list_fetch_next;

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
/* Checks a handle against the server's rule (docs/protocol.md §5.1) before anything is queued, so a
 * typo fails at once with a message that states the rule. PARLEY_E_INVAL (NULL), PARLEY_E_BAD_HANDLE. */
int client__check_handle(parley_client *c, const char *handle);
/* A device name: NULL (the default) or at most PARLEY_DEVICE_NAME_MAX bytes. PARLEY_E_INVAL. */
int client__check_name(parley_client *c, const char *name);
/* A feature's client.db schema, migrated once per client handle: unless *ready, runs first (may be NULL:
 * what the schema needs open, e.g. client__e2e_open), migrates schema (errmsg "client.db: ..." on
 * failure) and sets *ready. */
int client__schema_ready(parley_client *c, int *ready, int (*first)(parley_client *c), const migrate_schema *schema);
/* Runs the loop until *done is set. PARLEY_E_STATE when called from inside the loop. */
int client__wait(parley_client *c, const int *done);

/* The blocking conveniences: start an operation whose callback fills a client_sync, then wait. */
typedef struct client_sync {
	int done;
	parley_err status;
	parley_device_list *list; /* parley_devices_list */
	uint32_t id;              /* parley_device_add */
} client_sync;
/* 1 when a blocking call must be refused (called from a callback: no nested uv_run). */
int client__sync_refused(const parley_client *c);
/* A parley_done_cb for user = client_sync. */
void client__sync_done(parley_client *c, parley_err status, void *user);
/* start_rc: what the *_start call returned. Runs until s->done and returns s->status. If the loop
 * cannot finish the op, everything pending fails now, so no callback can later write into the
 * caller's stack frame. */
parley_err client__sync_wait(parley_client *c, client_sync *s, int start_rc);

/* conn.c: the event core */
/* Queues op (taking ownership; op->vt set) and schedules the state machine. Never calls a callback. */
void client__conn_submit(parley_client *c, client_op *op);
/* Completes every queued and sent op with err; the connection stays. */
void client__conn_fail_all(parley_client *c, int err);
/* Drops the connection and completes every queued and sent op with err. */
void client__conn_fail(parley_client *c, int err);
/* Fails what is pending, closes handles and waits for the transport to finish (parley_client_free). */
void client__conn_shutdown(parley_client *c);
/* 1 while an operation is queued or in flight. */
int client__conn_busy(const parley_client *c);

/* account.c */
/* conn hook: the saved account's AuthRequest. */
int client__auth_op_new(parley_client *c, client_op **out);
/* Ed25519 detached signature of msg with the device key (the device's answer to a challenge). */
int client__sign_challenge(const parley_client *c, const uint8_t *msg, size_t len, uint8_t sig[WIRE_SIG_LEN]);

/* akey.c: this account's account key (client.db table account_key) */
/* pub (33) and, when priv is non-NULL and this device holds it, the private half (the caller wipes it).
 * PARLEY_E_NOT_FOUND when no account key is known. */
int client__akey_load(parley_client *c, uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN], uint8_t priv[32], int *have_private);
/* Replaces the stored key (priv NULL: public half only). */
int client__akey_save(parley_client *c, const uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN], const uint8_t *priv);
/* A key the server reports (AuthResponse.account_key; empty is ignored): stored if it is not the one
 * known. PARLEY_E_PROTO_MALFORMED if it is not a 33-byte Signal public key. */
int client__akey_learn(parley_client *c, const uint8_t *pub, size_t len);
/* Generates a new account key and stores both halves (registration, legacy migration). */
int client__akey_generate(parley_client *c, uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN]);
/* The private half leaves this device (after a transfer). */
int client__akey_drop_private(parley_client *c);
/* The account key's public half as known on this device; *have_private (may be NULL) = 1 when this
 * device holds the private half. PARLEY_E_NOT_FOUND when none is known yet. For entity.c
 * (EntityJoinRequest.account_key). */
int client__account_key(parley_client *c, uint8_t pub[33], int *have_private);

/* peers.c: signed device lists of peers and of this account (client.db peer_lists) */
/* Verifies rec as handle's list against the pinned key (TOFU; this account: its own key) and the kept
 * version; keeps it when newer (on_devices_changed, devices that left are forgotten). out = the list.
 * NO_DEVICE_LIST (len 0), DEVICE_LIST_INVALID, UNTRUSTED_IDENTITY (another key: kept as pending),
 * DEVICE_LIST_ROLLBACK. errmsg says which. */
int client__peer_check_list(parley_client *c, const char *handle, const uint8_t *rec, size_t len,
			    wire_devlist *out);
/* The kept verified list of handle (*found = 0 if none). */
int client__peer_kept_list(parley_client *c, const char *handle, wire_devlist *out, int *found);
/* PARLEY_OK if l lists device (with identity_key, unless NULL), else DEVICE_NOT_LISTED + errmsg. */
int client__peer_device_listed(const wire_devlist *l, const char *handle, uint32_t device,
			       const uint8_t *identity_key, parley_client *c);
/* PARLEY_OK if the kept verified list of handle names device now; NO_DEVICE_LIST (none kept) or
 * DEVICE_NOT_LISTED, errmsg set. No fetch. */
int client__peer_listed_now(parley_client *c, const char *handle, uint32_t device);
/* The pinned account key of handle (this account: its own); *found = 0 if none. */
int client__peer_pinned_key(parley_client *c, const char *handle, uint8_t ak[33], int *found);
/* A changed account key waiting for parley_trust; *found = 0 if none. */
int client__peer_pending_key(parley_client *c, const char *handle, uint8_t ak[33], int *found);
/* Receiving: PARLEY_OK if the kept list of handle names device (with identity_key unless NULL). Else
 * DEVICE_NOT_LISTED, and the list is fetched once (GetDeviceList; at most every few seconds per
 * handle): when a newer one verifies, the handle's quarantined envelopes are retried. *fetching = 1
 * when such a fetch was started now (the answer is not final yet). */
int client__peer_check_sender(parley_client *c, const char *handle, uint32_t device, const uint8_t *identity_key,
			      int *fetching);
/* Fetches handle's list now (unless a fetch is in flight), whatever the receive side's guard says; its
 * answer retries handle's quarantine (parley_trust after a new account key: the envelopes its devices
 * sent wait for the list that key signed). */
void client__peer_refetch(parley_client *c, const char *handle);
/* parley_trust: the pending key replaces the pinned one (*changed = 1 if there was one). */
int client__peer_trust_key(parley_client *c, const char *handle, int *changed);

/* ownlist.c: this account's signed device list, from the device holding the account key */
/* Signs l (its account fields and timestamp are set here) with the account key. NO_ACCOUNT_KEY. */
int client__ownlist_sign(parley_client *c, wire_devlist *l, dynbuf *out);
/* Fetches the current list, adds `add` (NULL: none) and drops remove_id (0: none), signs the next
 * version and uploads it; cb once. PARLEY_E_NO_ACCOUNT_KEY at once on a device without the key. */
int client__ownlist_update(parley_client *c, const wire_devlist_entry *add, uint32_t remove_id, parley_done_cb cb,
			   void *user);
/* PARLEY_OK when this device holds the account key, else NO_ACCOUNT_KEY (errmsg says where it is). */
int client__require_account_key(parley_client *c);
/* This device's Signal identity key (created with the keys, keys.c). */
int client__own_identity(parley_client *c, uint8_t ik[PARLEY_SIGNAL_PUBKEY_LEN]);

/* legacy.c: an account registered before account keys gets one from the device that registered it:
 * after an auth whose AuthResponse.account_key was empty (server_key_len 0), in the background. */
void client__legacy_account_key(parley_client *c, size_t server_key_len);

/* devices.c */
int client__device_list_from_wire(const Parley__Wire__ListDevicesResponse *r, uint32_t self_id,
				  parley_device_list **out);
/* Queues a ListDevicesRequest (the account must be loaded); cb is called exactly once. */
int client__devices_list_submit(parley_client *c, parley_devices_cb cb, void *user);

/* recv.c */
/* conn hooks */
void client__recv_push(parley_client *c, const Parley__Wire__Push *push);
void client__recv_disconnect(parley_client *c, int err);
void client__recv_shutdown(parley_client *c);
/* entity.c: the entity pushes (EntityJoinRequested, EntityStaffChanged) to the application */
void client__entity_push(parley_client *c, const Parley__Wire__Push *p);
/* entity_approve.c: after authentication, the key holder signs what other admins approved meanwhile */
void client__entity_after_auth(parley_client *c);

/* e2e.c: the local end-to-end store */
/* Opens signal.db (the e2e tables of client.db come with its schema). */
int client__e2e_open(parley_client *c);
void client__e2e_close(parley_client *c);
/* The checks of every messaging entry point: a valid handle, a saved account, the e2e store open. */
int client__e2e_begin(parley_client *c, const char *handle);
/* SQL on client.db with errors in c->errmsg: prepare, and step-to-done + finalize. */
int client__sql_prep(parley_client *c, const char *sql, sqlite3_stmt **st);
int client__sql_done(parley_client *c, sqlite3_stmt *st);
int client__sql_err(parley_client *c);
/* Known devices of handle that have a usable session: ids and registration ids (at most max). */
int client__e2e_peer_devices(parley_client *c, const char *handle, uint32_t *ids, uint32_t *regids, size_t max,
			     size_t *n);
int client__e2e_peer_set(parley_client *c, const char *handle, uint32_t device, uint32_t regid);
/* Forgets the session and the device (stale device: reinstalled). */
int client__e2e_peer_drop(parley_client *c, const char *handle, uint32_t device);
/* Forgets the device only (not a recipient now), keeping its session: its messages still decrypt. */
int client__e2e_peer_forget(parley_client *c, const char *handle, uint32_t device);
/* A changed identity key seen for (handle, device): kept until parley_trust accepts it (several per
 * device; at most quarantine_per_sender per handle, the oldest forgotten). */
int client__e2e_pending_identity(parley_client *c, const char *handle, uint32_t device,
				 const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN]);
/* Accepts key as the identity of (handle, device): the old session goes (the next message starts from a
 * bundle) and the key leaves the pending set (parley_trust, and a key the trusted list names). */
int client__e2e_accept_identity(parley_client *c, const char *handle, uint32_t device,
				const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN]);
/* Called only with a key that handle's verified list, signed by its TRUSTED account key, names for
 * device: if another identity key is remembered for that address, the listed one replaces it
 * (client__e2e_accept_identity) instead of waiting for a per-device trust (docs/protocol.md §11.3). */
int client__e2e_accept_listed(parley_client *c, const char *handle, uint32_t device,
			      const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN]);
/* Duplicate detection of received envelopes by server id (unique per envelope, the same on every
 * redelivery; message timestamps are not unique across processes): *seen = 1 if handed over before;
 * with record set, remembers it. */
int client__e2e_seen(parley_client *c, uint64_t server_id, int record, int *seen);
/* Message ids (ms) that strictly increase per client. */
uint64_t client__e2e_timestamp(parley_client *c);
/* Completion of client__e2e_fetch_bundles: r is NULL unless status is PARLEY_OK. */
typedef void (*client_bundles_cb)(parley_client *c, int status, const Parley__Wire__GetBundlesResponse *r,
				  void *ctx);
/* Queues a GetBundlesRequest for handle (device 0 = every device). PARLEY_E_NOMEM (cb not called) or
 * PARLEY_OK (cb called exactly once). */
int client__e2e_fetch_bundles(parley_client *c, const char *handle, uint32_t device, client_bundles_cb cb,
			      void *ctx);
/* Sets up a session (X3DH) with each device in r we do not talk to yet (this device is skipped) and
 * remembers it. A changed identity key is recorded as pending; with stop_on_untrusted it ends the
 * processing with PARLEY_E_UNTRUSTED_IDENTITY (after on_identity_changed), else it is skipped. */
int client__e2e_process_bundles(parley_client *c, const char *handle, const Parley__Wire__GetBundlesResponse *r,
				int stop_on_untrusted);
/* The check process_bundles starts with: r's signed device list verifies (peers.c) and names every
 * bundle's device with its identity key. DEVICE_NOT_LISTED, NO_DEVICE_LIST, DEVICE_LIST_INVALID,
 * DEVICE_LIST_ROLLBACK, UNTRUSTED_IDENTITY (account key changed); on_error fires. */
int client__e2e_check_bundles(parley_client *c, const char *handle, const Parley__Wire__GetBundlesResponse *r);

/* keys.c: this device's Signal keys */
/* This device's Signal identity key pair, created on first use (the link code carries it before the
 * device has an account). The caller wipes id. */
int client__keys_identity(parley_client *c, parley_keypair *id);
/* After a successful register/link: makes sure the Signal identity and keys exist, then uploads them;
 * cb(user) is called once the upload completes (or fails). */
int client__keys_after_account(parley_client *c, parley_done_cb cb, void *user);
/* After the saved account authenticated a connection: checks the key pool once per connection. */
void client__keys_after_auth(parley_client *c);
/* Uploads fresh one-time prekeys up to the pool target (refill) unless a refill is in flight. */
void client__keys_refill(parley_client *c, uint32_t remaining);

/* send.c */
/* Sends an end-to-end encrypted receipt of kind (PARLEY_RECEIPT_*) for timestamps to every device of
 * handle (a Content of kind CONTENT_KIND_RECEIPT; no copy to this account's other devices). The caller
 * checks that handle is accepted (requests.c): a receipt to a stranger would accept it server-side. */
int client__send_receipt(parley_client *c, const char *handle, int kind, const uint64_t *ts, size_t n);
/* Sends a packed parley.wire.KeyTransfer end to end: to one device of this account (device != 0) or
 * to every device of handle's signed device list (device 0). Only devices in the target's verified
 * signed list (the send path's rules). cb fires when the server has queued it (durable). */
int client__send_key_transfer(parley_client *c, const char *handle, uint32_t device,
			      const uint8_t *packed, size_t len, parley_done_cb cb, void *user);
/* One Content encrypted for each of the n devices ids (registration ids regids) of handle with this
 * device's pairwise sessions (they exist: the caller chose the devices from client__e2e_peer_devices,
 * i.e. from handle's verified signed list): the OutgoingMessages of a SendMessage or a ThreadForward.
 * With only_device != 0, every other device gets `other` instead (filler). On error nothing is left
 * allocated; else release with client__outgoing_free. */
#define CLIENT_OUTGOING_MAX 64
typedef struct client_outgoing {
	Parley__Wire__OutgoingMessage msg[CLIENT_OUTGOING_MAX];
	Parley__Wire__OutgoingMessage *msgp[CLIENT_OUTGOING_MAX];
	uint8_t *ct[CLIENT_OUTGOING_MAX];
	size_t n;
} client_outgoing;
int client__outgoing_encrypt(parley_client *c, const char *handle, const uint32_t *ids, const uint32_t *regids,
			     size_t n, const uint8_t *pt, size_t pt_len, uint32_t only_device, const uint8_t *other,
			     size_t other_len, client_outgoing *out);
void client__outgoing_free(client_outgoing *o);

/* Sends ct (kind and records set by the caller; its timestamp is set here) end to end, pairwise: to one
 * device of handle (device != 0: its other devices get the same kind with a zero body in place of the
 * record, as a key transfer's filler) or to every device of handle's signed list (device 0). Only
 * devices in the target's verified signed list. cb fires once the server queued it. */
int client__send_content(parley_client *c, const char *handle, uint32_t device, client_content *ct,
			 parley_done_cb cb, void *user);

/* requests.c: message requests on the client (tables in client.db, schema "client.requests").
 * accepted: the peers this account accepted (wrote to, from any of its devices, or parley_accept);
 * only they get receipts. sent: (message id, recipient) of the messages this account sent, so a
 * receipt is believed only from the account a message went to. */
int client__requests_accepted(parley_client *c, const char *handle, int *accepted);
int client__requests_set_accepted(parley_client *c, const char *handle, int accepted);
int client__requests_record_sent(parley_client *c, uint64_t timestamp, const char *handle);
/* Keeps in ts[] (in order) only the ids this account sent to handle; *n is updated. */
int client__requests_filter_sent(parley_client *c, const char *handle, uint64_t *ts, size_t *n);
/* quarantine.c: envelopes that could not be decrypted (client.db table quarantine) */
/* Keeps e (reason: the decrypt error) within the bounds, oldest of the sender then oldest overall
 * dropped and counted. PARLEY_OK once it is saved: then it may be acknowledged. */
int client__quarantine_add(parley_client *c, const Parley__Wire__Envelope *e, int reason);
/* Marks handle's quarantined envelopes for a retry (a key of handle was accepted). */
int client__quarantine_mark(parley_client *c, const char *handle);
/* Calls retry(c, envelope) for each envelope marked for a retry, oldest first; retry returns the
 * decrypt result: PARLEY_OK removes the entry, anything else keeps it (reason updated, unmarked). */
typedef int (*client_retry_fn)(parley_client *c, const Parley__Wire__Envelope *e);
int client__quarantine_retry(parley_client *c, client_retry_fn retry);
/* recv.c: retries marked quarantined envelopes now if the application receives. */
void client__recv_retry_quarantine(parley_client *c);

/* history.c, history_rows.c, history_api.c: the local history (docs/history.md) */
#define HISTORY_KEY_FILE "history.key"
#define HISTORY_KEY_BYTES 32
#define HISTORY_NONCE_BYTES 24 /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define HISTORY_ABYTES 16      /* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define HISTORY_SALT_BYTES 16  /* crypto_pwhash_SALTBYTES */
#define HISTORY_CONV_MAX PARLEY_CONVERSATION_MAX
/* label(18) + direction + 1 + conversation + 1 + sender + device(4) + timestamp(8) */
#define HISTORY_AD_MAX (18 + 1 + 1 + HISTORY_CONV_MAX + 1 + PARLEY_HANDLE_MAX + 4 + 8)
/* What a row's seal is bound to (its associated data). */
typedef struct client_history_meta {
	const char *conversation;
	int outgoing;
	const char *sender;
	uint32_t sender_device;
	uint64_t timestamp;
} client_history_meta;
/* Error text for the history's functions (err may be NULL); sql_fail: sqlite's message, PARLEY_E_STORE. */
int client__history_sql_fail(sqlite3 *db, char *err, size_t errlen);
/* 1 if conv is a valid conversation id (1..HISTORY_CONV_MAX printable ASCII, no space). */
int client__history_conversation_ok(const char *conv);
/* Seals body (len bytes) for m under key: a fresh random nonce, ct = len + HISTORY_ABYTES bytes. */
void client__history_seal(const uint8_t key[HISTORY_KEY_BYTES], const client_history_meta *m, const uint8_t *body,
			  size_t len, uint8_t nonce[HISTORY_NONCE_BYTES], uint8_t *ct);
/* Opens a sealed body into body (ct_len - HISTORY_ABYTES bytes). PARLEY_E_BAD_MAC when anything of key,
 * metadata, nonce or ciphertext differs from the seal's. */
int client__history_open(const uint8_t key[HISTORY_KEY_BYTES], const client_history_meta *m,
			 const uint8_t nonce[HISTORY_NONCE_BYTES], const uint8_t *ct, size_t ct_len, uint8_t *body,
			 size_t *len);
/* Argon2id of passphrase with these limits. PARLEY_E_NOMEM when mem cannot be allocated. */
int client__history_derive(const char *passphrase, const uint8_t salt[HISTORY_SALT_BYTES], uint64_t ops,
			   uint64_t mem, uint8_t key[HISTORY_KEY_BYTES]);
/* Migrates the history schema of db and gets the storage key into key: from dir/history.key
 * (passphrase NULL) or the passphrase, created on first use. PARLEY_E_STORAGE_KEY (err says which: the
 * other mode, a missing key file, a wrong key or passphrase), PARLEY_E_PERM (key file readable by
 * others), PARLEY_E_STORE, PARLEY_E_IO. key is wiped on error. */
int client__history_unlock(sqlite3 *db, const char *dir, const char *passphrase, uint8_t key[HISTORY_KEY_BYTES],
			   char *err, size_t errlen);
/* One row to record. server_id 0: none (sent by this device); handed 0: not handed to the application
 * yet (the crash window). */
typedef struct client_history_row {
	client_history_meta m;
	uint64_t server_ts;
	uint64_t server_id;
	int handed;
	int request;
	const uint8_t *body;
	size_t body_len;
} client_history_row;
typedef struct client_history_limits {
	unsigned max_per_conversation; /* > 0 */
	unsigned max_age_days;         /* 0: none */
	uint64_t now_ms;
} client_history_limits;
/* Seals and inserts r (an envelope already recorded is left as it is), then prunes its conversation to
 * the limits, in one transaction. */
int client__history_insert(sqlite3 *db, const uint8_t key[HISTORY_KEY_BYTES], const client_history_row *r,
			   const client_history_limits *lim, char *err, size_t errlen);
/* Rows older than the age limit, in every conversation (once per unlock). */
int client__history_prune_age(sqlite3 *db, const client_history_limits *lim, char *err, size_t errlen);
/* The listing of parley_history_list on db. */
int client__history_select(sqlite3 *db, const uint8_t key[HISTORY_KEY_BYTES], const char *conv, uint64_t before_ms,
			   size_t max, parley_history_entry *out, size_t *n, char *err, size_t errlen);
/* The row of envelope server_id if it is still un-handed: *found, e (its body allocated, free with
 * parley_history_entries_free(e, 1)), its conversation and request flag. */
int client__history_unhanded(sqlite3 *db, const uint8_t key[HISTORY_KEY_BYTES], uint64_t server_id, int *found,
			     parley_history_entry *e, char conv[HISTORY_CONV_MAX + 1], int *request, char *err,
			     size_t errlen);
int client__history_mark_handed(sqlite3 *db, uint64_t server_id, char *err, size_t errlen);
int client__history_delete(sqlite3 *db, const char *conv, size_t *deleted, char *err, size_t errlen);
/* The glue (history_api.c). ready: unlocks the history of c once (PARLEY_E_STORAGE_KEY...). */
int client__history_ready(parley_client *c);
/* recv.c, before on_message: records a decrypted message (un-handed), conversation chosen from ct. */
int client__history_received(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct,
			     int request);
/* recv.c, after on_message returned. */
void client__history_handed(parley_client *c, uint64_t server_id);
/* recv.c: a redelivered envelope whose session already advanced (DUPLICATE_MESSAGE): if its row was
 * recorded and never handed over (the process died in between), it is handed over now. */
void client__history_rehand(parley_client *c, uint64_t server_id);
/* send.c: a message this device sent (content: its encoded Content), once the server stored it. */
void client__history_sent(parley_client *c, const char *recipient, const uint8_t *content, size_t content_len,
			  uint64_t server_ts);
/* thread_recv.c, thread_send.c: a thread's message (conversation "#<id>"); handed 0 on receive until the
 * application saw it. */
int client__history_thread(parley_client *c, uint64_t thread_id, const char *sender, uint32_t device, uint64_t ts,
			   uint64_t server_ts, uint64_t server_id, int handed, const uint8_t *body, size_t len);
/* thread_recv.c: the un-handed row e of a thread's conversation conv, to on_thread_message again. */
void client__thread_rehand(parley_client *c, const parley_history_entry *e, const char *conv, uint64_t server_id);
/* thread_recv.c: a group envelope (GROUP_MESSAGE / PAYMENT_REQUEST): checked, decrypted, handed over and
 * recorded as seen (PARLEY_OK, also when dropped after a report), or the reason to quarantine it
 * (*pending = 1: what it waits for is under way: a key request, a refresh, a device list). */
int client__thread_receive(parley_client *c, const Parley__Wire__Envelope *e, int *pending);
/* thread_recv.c: a pairwise Content of a thread kind (5-8) from e's sender; never reaches on_message. */
void client__thread_pairwise(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct);
/* thread_recv.c: a ThreadChanged push. */
void client__thread_push(parley_client *c, const Parley__Wire__ThreadChanged *tc);
/* account.c, after the saved account authenticated a connection of a receiving client: lists the
 * threads this device keeps (as a customer, and per entity it is staff of) so that what changed while
 * it was offline (ThreadChanged reaches online devices only) is fetched, verified and reported. */
void client__thread_after_auth(parley_client *c);
/* client.c: option copies, and the release of the key and passphrase. */
int client__history_options(parley_client *c, const parley_client_options *o);
void client__history_free(parley_client *c);

/* content.c: the plaintext inside a ciphertext (see content.c for the format) */
#define CONTENT_KIND_MESSAGE 1
#define CONTENT_KIND_SENT_COPY 2 /* a copy for the sender's other devices: has a destination */
#define CONTENT_KIND_RECEIPT 3   /* a delivery/read receipt: has a receipt (packed wire Receipt) */
#define CONTENT_KIND_KEY_TRANSFER 4 /* private keys (packed wire KeyTransfer), or the filler without one */
/* Threads (lib/client/thread*.c, docs/protocol.md §13.4): pairwise kinds 5-8, kind 9 inside a group
 * message. */
#define CONTENT_KIND_SENDER_KEY 5         /* payload: our SKDM for thread_id */
#define CONTENT_KIND_SENDER_KEY_REQUEST 6 /* thread_id: please send me your SKDM (I have none of yours) */
#define CONTENT_KIND_FORWARD 7            /* payload: a packed ForwardBundle (lib/wire/forward.c) */
#define CONTENT_KIND_FORWARD_HISTORY 8    /* payload: a packed ForwardHistory chunk */
#define CONTENT_KIND_THREAD_MESSAGE 9     /* thread_id, body: a message of the thread (in a SenderKeyMessage) */
/* Largest payload record: a record length is 16 bits; max_content_bytes (32 KiB) bounds it in practice. */
#define CONTENT_PAYLOAD_MAX 60000u
/* A packed KeyTransfer: the account key and KEYMOVE_MAX_ENTITIES entity keys (~110 bytes each) fit. */
#define CONTENT_TRANSFER_MAX PARLEY_MESSAGE_MAX /* the filler's body matches it */
struct client_content {
	int kind;
	uint64_t timestamp;
	const uint8_t *body; /* borrowed from the decoded buffer */
	size_t body_len;
	char destination[PARLEY_HANDLE_MAX + 1];
	const uint8_t *receipt; /* borrowed: a packed Parley__Wire__Receipt (kind RECEIPT only) */
	size_t receipt_len;
	const uint8_t *transfer; /* borrowed: a packed Parley__Wire__KeyTransfer (kind KEY_TRANSFER only) */
	size_t transfer_len;
	uint64_t thread_id;      /* kinds SENDER_KEY, SENDER_KEY_REQUEST, THREAD_MESSAGE (0 = none) */
	const uint8_t *payload;  /* borrowed: kinds SENDER_KEY, FORWARD, FORWARD_HISTORY */
	size_t payload_len;
};
/* Encodes into a new buffer (*out, parley__malloc, padded to a multiple of 160 bytes). */
int client__content_encode(const client_content *ct, uint8_t **out, size_t *out_len);
/* PARLEY_E_INVALID_MESSAGE / PARLEY_E_BAD_VERSION on malformed input. */
int client__content_decode(const uint8_t *buf, size_t len, client_content *out);

/* keymove.c: private keys moving between devices (docs/protocol.md §11.4) */
/* Records an outgoing transfer: when a KeyTransfer{confirm, transfer_id} arrives from `handle`
 * (a device in its list), the keys named here are wiped on this device. entity NULL = the account key. */
int client__keymove_pending_add(parley_client *c, uint64_t transfer_id, const char *handle,
				const char *entity /* or NULL */);
/* A decrypted Content of kind KEY_TRANSFER from e's sender (recv.c; never reaches on_message): imports
 * the keys it carries (then confirms), or wipes what a confirm names. Refusals go to on_error. */
void client__keymove_receive(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct);
/* A fresh nonzero transfer id. */
uint64_t client__keymove_new_id(void);

#endif
