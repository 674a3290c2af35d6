/* parleyd storage: an asynchronous job interface over pluggable backends (SQLite now, PostgreSQL later).
 *
 * Threads: services run on loop threads and never block on the database. A service fills a store_job
 * (operation + arguments) and submits it through its loop's store_client. One store thread executes
 * jobs; each completion is delivered back on the submitting loop thread (the client's wake hook asks
 * that loop to run it), never on the store thread.
 *
 * Group commit: the store thread takes everything queued at once and runs all write jobs of that batch
 * inside ONE transaction, each inside its own SAVEPOINT (a failing job — a duplicate handle — rolls
 * back alone), commits (synchronous=FULL), and only then fires the completions. So a successful write
 * completion always means the data is durable. Reads run outside the write transaction.
 *
 * SQL lives only inside backends (store/sqlite/); this header knows nothing about SQL.
 */
#ifndef PARLEYD_STORE_H
#define PARLEYD_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/svc.h"

#define STORE_KEY_LEN 32
#define STORE_MAX_HANDLE 32
#define STORE_MAX_DEVICE_NAME 64

typedef struct store store;
typedef struct store_client store_client;
typedef struct store_job store_job;

typedef struct store_config {
	const char *backend;        /* "sqlite" (default when NULL) */
	const char *url;            /* NULL or "": SQLite at `path`; postgres://... or postgresql://...:
	                             * the PostgreSQL driver (path unused) */
	const char *path;           /* sqlite: database file; created 0600 if missing */
	int busy_timeout_ms;        /* default 5000 when 0 */
	unsigned max_batch;         /* max jobs per group-commit transaction (store_batch_max) */
	unsigned max_devices;       /* per account (max_devices) */
	unsigned queue_max;         /* jobs queued before store__submit answers SERVER_BUSY (store_queue_max) */
	uint64_t reserve_bytes;     /* disk space kept in reserve (storage_reserve_bytes); 0 = none */
	/* Test hooks: neither weakens anything, so they are plain fields (parleyd leaves them 0). */
	const char *vfs;            /* sqlite: VFS name, NULL = SQLite's default. The crash test opens
	                             * through its power-cut VFS; any VFS must still give WAL +
	                             * synchronous=FULL, or the open fails. */
	unsigned wal_checkpoint_pages; /* sqlite: WAL pages before an idle checkpoint, 0 = the default
	                                * (1024); the crash test lowers it so short runs cross checkpoints */
	unsigned max_page_count;    /* sqlite: PRAGMA max_page_count, 0 = SQLite's; the disk-full unit test
	                             * fills a small database with it (a deterministic SQLITE_FULL) */
} store_config;

/* The store's fields of the configuration table (the only place their defaults live); path: the
 * database file. */
void store__config_from(store_config *sc, const parleyd_config *cfg, const char *path);

/* Where the store is, for logs: the SQLite file, or "postgres://user@host:port/db" (never the
 * password of the URL). */
void store__describe(const store_config *cfg, char *out, size_t cap);

/* Opens the backend, applies pending migrations in one transaction and starts the store thread.
 * Returns PARLEY_OK, PARLEY_E_CONFIG (unknown backend / missing path), PARLEY_E_STORE (cannot open,
 * migration failed, or the database was written by a newer parleyd), PARLEY_E_NOMEM. On error *out is
 * untouched and nothing is left running. */
int store__open(const store_config *cfg, store **out);

/* Stops accepting jobs, runs every job already queued (their completions are still posted to their
 * clients' loops), stops the thread, checkpoints (WAL truncate) and closes. Intended order at shutdown:
 * every loop closes its store_client (on_worker_stop), then store__close. NULL is a no-op. */
void store__close(store *s);

/* --- per-loop clients: one per loop thread (the dispatcher's worker owns it) ---
 *
 * A client does not own a wake-up handle: the store calls `wake(wake_arg)` (from the store thread) each
 * time it queues a completion for the client, and the owner of the loop answers by calling
 * store__client_run on its loop thread. The worker's single mailbox uv_async serves both the store and
 * the other loops, so a loop needs no handle per subsystem. */
typedef void (*store_wake_fn)(void *wake_arg);

/* wake must be callable from any thread (uv_async_send is). Returns PARLEY_OK, PARLEY_E_INVAL,
 * PARLEY_E_NOMEM. */
int store__client_new(store *s, store_wake_fn wake, void *wake_arg, store_client **out);
/* On the client's loop thread: runs the callbacks of every completion queued so far. Cheap when none
 * is queued; a spurious call is harmless. */
void store__client_run(store_client *c);
/* Owner tags, so the jobs of a connection that closed can be cancelled. On c's loop thread: jobs
 * submitted from now on are `owner`'s (NULL: nobody's), and so are jobs submitted from the completion
 * of a job of `owner` (the tag follows a chain of jobs). */
void store__client_set_owner(store_client *c, const void *owner);
/* Cancels owner's reads and sends of this client still queued (not yet taken by the store thread):
 * their arguments are freed at once (the copy of a send's ciphertexts is most of the memory a request
 * holds), they never run, and they complete as usual with PARLEY_E_CLOSED and a zeroed result. A
 * send never acknowledged is the client's to send again. Other writes (acks, removals, uploads) still
 * run: a client may ack and close at once. Returns how many. */
size_t store__client_cancel(store_client *c, const void *owner);
/* Jobs submitted and whose callback has not run yet. */
unsigned store__client_inflight(const store_client *c);
/* On the loop thread, after the loop's services stopped submitting. Waits for this client's jobs still
 * in flight (the store finishes them), runs their callbacks from within this call with their real
 * results, and frees the client. `wake` is not called after this returns. NULL is a no-op. */
void store__client_close(store_client *c);

/* --- jobs --- */

/* Kind of an op: writes run inside the group-commit transaction, each in its own SAVEPOINT; reads run
 * after the batch's commit (so they see its writes), outside any transaction. */
enum store_kind { STORE_READ = 0, STORE_WRITE = 1 };

/* THE list of store operations: X(OP, name, kind, domain).
 *   OP      -> enum store_op STORE_OP_<OP>
 *   name    -> store__op_name() ("create_account") and the backend function that runs it (the SQLite
 *              backend's sqlite__create_account: a backend that lacks one fails to link)
 *   kind    -> STORE_WRITE / STORE_READ (store__op_is_write)
 *   domain  -> the member of the job's argument union the op uses (acct, keys, relay), which is also
 *              what store__job_free releases for it.
 * A new op is one line here plus its backend function(s); nothing else lists the ops. */
#define STORE_OPS(X)                                                                                            \
	/* accounts and devices */                                                                              \
	X(CREATE_ACCOUNT, create_account, STORE_WRITE, acct)  /* account + device 1 */                          \
	X(GET_ACCOUNT, get_account, STORE_READ, acct)         /* account by handle */                           \
	X(GET_DEVICE, get_device, STORE_READ, acct)           /* one device (public key): account + device */   \
	X(LIST_DEVICES, list_devices, STORE_READ, acct)                                                         \
	X(ADD_DEVICE, add_device, STORE_WRITE, acct)                                                            \
	X(REMOVE_DEVICE, remove_device, STORE_WRITE, acct)                                                      \
	X(TOUCH_DEVICE, touch_device, STORE_WRITE, acct)      /* last_seen_ms */                                \
	X(FIND_DEVICE, find_device, STORE_READ, acct)         /* handle + device id -> account_id, device */    \
	X(CHECK_CALLER, check_caller, STORE_READ, acct)       /* caller_* still a device (run before others) */ \
	X(SET_DEVLIST, set_devlist, STORE_WRITE, acct)        /* checked signed device list (+ key if set_key) */ \
	X(GET_DEVLIST, get_devlist, STORE_READ, acct)         /* handle -> account_id, account key, list */     \
	/* key server */                                                                                        \
	X(UPLOAD_KEYS, upload_keys, STORE_WRITE, keys)        /* identity + reg. id (immutable), spk, pool */   \
	X(PREKEY_COUNT, prekey_count, STORE_READ, keys)       /* one-time prekeys left, signed prekey id */     \
	X(GET_BUNDLES, get_bundles, STORE_WRITE, keys)        /* bundles of `handle`, popping a prekey each */  \
	/* relay */                                                                                             \
	X(SEND, send, STORE_WRITE, relay)                     /* check device list, enqueue one per device */   \
	X(FETCH_QUEUE, fetch_queue, STORE_READ, relay)        /* envelopes with id > after_id, in order */      \
	X(ACK, ack, STORE_WRITE, relay)                       /* delete envelopes of (account, device) by id */ \
	X(PURGE_EXPIRED, purge_expired, STORE_WRITE, relay)   /* delete expired envelopes (bounded) */          \
	/* message requests (sql/contacts.c): contacts(owner, peer) = owner accepted peer */              \
	X(THREAD_PEERS, thread_peers, STORE_READ, relay)      /* mutual contacts, if account_id shares presence */ \
	X(FIND_PEER, find_peer, STORE_READ, relay)            /* handle -> account_id, mutually accepted? */    \
	X(CONTACT_SET, contact_set, STORE_WRITE, relay)       /* account_id accepts (shared=1) / declines handle */ \
	X(PRESENCE_SET, presence_set, STORE_WRITE, relay)     /* account_id shares presence (shared) or not */  \
	X(PRUNE_CONTACTS, prune_contacts, STORE_WRITE, relay) /* contacts unused since now_ms (bounded) */  \
	X(REDELIVERED, redelivered, STORE_WRITE, relay)       /* pushed, not acked: count; requeue at limit */ \
	/* entity registry (sql/entities.c, enrol.c): each checks the caller's role in its own transaction */ \
	X(ENTITY_CREATE, entity_create, STORE_WRITE, ent)     /* handle free in accounts and entities */      \
	X(ENTITY_GET, entity_get, STORE_READ, ent)            /* by handle: record + signed staff list */     \
	X(ENTITY_MEMBER, entity_member, STORE_WRITE, ent)     /* add admin / remove / transfer + new list */  \
	X(ENTITY_CODE, entity_code, STORE_WRITE, ent)         /* admins: store a code's hash */               \
	X(ENTITY_JOIN, entity_join, STORE_WRITE, ent)         /* guess buckets, code, pending request */      \
	X(ENTITY_REQUESTS, entity_requests, STORE_READ, ent)  /* admins: pending requests */                  \
	X(ENTITY_DECIDE, entity_decide, STORE_WRITE, ent)     /* admins: approve (+ list or approval) / deny */ \
	X(ENTITY_STAFF, entity_staff, STORE_WRITE, ent)       /* admins: same members, new rules or devlists */ \
	/* threads (sql/threads.c): each checks the caller, the signed event and the rules in its own transaction */ \
	X(THREAD_OPEN, thread_open, STORE_WRITE, thr)         /* customer (or MAY_INITIATE staff) opens or gets */ \
	X(THREAD_SEND, thread_send, STORE_WRITE, thr)         /* one envelope per member device (+ LOCK) */     \
	X(THREAD_EVENT, thread_event, STORE_WRITE, thr)       /* a signed membership event and its effect */    \
	X(THREAD_FORWARD, thread_forward, STORE_WRITE, thr)   /* admin: ADD + HANDLING of an agent + payloads */ \
	X(THREAD_GET, thread_get, STORE_READ, thr)            /* members: the thread and its latest events */   \
	X(THREAD_LIST, thread_list, STORE_READ, thr)          /* a customer's own, or an entity's (staff) */ \
	/* customer authentication (sql/auth.c, auth_requests.c; docs/protocol.md §14.2) */                  \
	X(AUTH_COMPONENT_PUT, auth_component_put, STORE_WRITE, auth)     /* admins: create / edit a draft */   \
	X(AUTH_COMPONENT_STATE, auth_component_state, STORE_WRITE, auth) /* admins: activate / deactivate */  \
	X(AUTH_COMPONENT_LIST, auth_component_list, STORE_READ, auth)    /* admins all, staff active */       \
	X(AUTH_COMPONENT_GET, auth_component_get, STORE_READ, auth)      /* the server's own: by id */         \
	X(AUTH_START, auth_start, STORE_WRITE, auth)          /* staff member of the thread: a new request */  \
	X(AUTH_ANSWER, auth_answer, STORE_WRITE, auth)        /* the customer's otp (or a checked outcome) */  \
	X(AUTH_BY_TOKEN, auth_by_token, STORE_READ, auth)     /* a request by id, link token or state */       \
	X(AUTH_STATUS, auth_status, STORE_READ, auth)         /* members: level + latest requests */          \
	X(AUTH_EXPIRE, auth_expire, STORE_WRITE, auth)        /* timer: expired requests and credentials */   \
	X(AUTH_KNOWN_EMAIL, auth_known_email, STORE_WRITE, auth) /* staff: a customer's known emails */   \
	/* settings of the whole database */                                                                     \
	X(SETTING_CHECK, setting_check, STORE_WRITE, set)     /* store a value if none, else compare (+ replace) */

enum store_op {
	STORE_OP_NONE = 0, /* a zeroed job is no op */
#define STORE_OP_ENUM_(OP, name, kind, domain) STORE_OP_##OP,
	STORE_OPS(STORE_OP_ENUM_)
#undef STORE_OP_ENUM_
	STORE_OP__COUNT
};

/* --- accounts and devices (job->acct) --- */
typedef struct store_device {
	uint32_t device_id;
	char name[STORE_MAX_DEVICE_NAME + 1];
	uint8_t key[STORE_KEY_LEN];
	uint64_t created_ms;
	uint64_t last_seen_ms;
} store_device;

typedef struct store_acct_args {
	uint8_t key[STORE_KEY_LEN];                  /* CREATE_ACCOUNT, ADD_DEVICE */
	char device_name[STORE_MAX_DEVICE_NAME + 1]; /* CREATE_ACCOUNT, ADD_DEVICE */
	/* results: GET_DEVICE and FIND_DEVICE fill `device`; LIST_DEVICES fills devices[0..n_devices) */
	store_device device;
	store_device *devices; /* owned by the job */
	size_t n_devices;
	/* Signed device lists (docs/protocol.md §11).
	 * CREATE_ACCOUNT: account_key (has_account_key) is stored with the account.
	 * SET_DEVLIST (account_id, caller): devlist/devlist_len, the record, and parsed, its verified
	 * content (the service checked the signature by the key embedded in it, off the store thread);
	 * the store checks, in the transaction that stores it, that the embedded key is the account's
	 * (DEVICE_LIST_INVALID), account id and handle match (DEVICE_LIST_INVALID), version > stored
	 * (DEVICE_LIST_ROLLBACK), every listed device exists with that device key and, when it uploaded
	 * Signal keys, that identity key (DEVICE_LIST_INVALID). set_key (SetAccountKey): the account must
	 * have no key yet (ACCOUNT_KEY_SET) and gets the embedded one.
	 * FIND_DEVICE, GET_DEVLIST (handle), LIST_DEVICES: account_key (has_account_key) and the stored
	 * list (devlist, NULL/0 when none) are results. */
	uint8_t account_key[33];
	int has_account_key;
	int set_key;
	uint8_t *devlist;         /* owned by the job */
	size_t devlist_len;
	struct wire_devlist *parsed; /* owned by the job (SET_DEVLIST) */
} store_acct_args;

/* --- key server (job->keys) --- */
#define STORE_SIGNAL_KEY_LEN 33 /* 0x05 || X25519 */
#define STORE_SIG_LEN 64
#define STORE_MAX_PREKEYS_PER_UPLOAD 100
#define STORE_MAX_FORGET 100 /* handed-out prekey ids reported per count (WIRE_MAX_REPEATED) */

typedef struct store_prekey {
	uint32_t id;
	uint8_t pub[STORE_SIGNAL_KEY_LEN];
} store_prekey;

typedef struct store_bundle {
	uint32_t device_id;
	uint32_t registration_id;
	uint8_t identity[STORE_SIGNAL_KEY_LEN];
	uint32_t spk_id;
	uint8_t spk_pub[STORE_SIGNAL_KEY_LEN];
	uint8_t spk_sig[STORE_SIG_LEN];
	int has_otk;
	store_prekey otk;
	uint32_t remaining; /* one-time prekeys left in that device's pool after this fetch */
} store_bundle;

typedef struct store_keys_args {
	/* UPLOAD_KEYS (account_id, device_id of the uploader) */
	uint32_t registration_id;
	uint8_t identity[STORE_SIGNAL_KEY_LEN];
	int has_spk;
	uint32_t spk_id;
	uint8_t spk_pub[STORE_SIGNAL_KEY_LEN];
	uint8_t spk_sig[STORE_SIG_LEN];
	store_prekey *otks;   /* owned by the job: store__job_keys_alloc_otks */
	size_t n_otks;
	unsigned pool_max;    /* PARLEY_E_PREKEY_POOL_FULL beyond this */
	/* UPLOAD_KEYS, GET_BUNDLES: handed-out records older than this are pruned (0 = keep) */
	uint64_t prune_before_ms;
	/* results: UPLOAD_KEYS, PREKEY_COUNT */
	uint32_t remaining;
	uint32_t spk_id_out;
	/* PREKEY_COUNT: one-time prekeys of this device handed out before forget_before_ms (at most
	 * STORE_MAX_FORGET, oldest first) -> forget_ids, owned by the job */
	uint64_t forget_before_ms;
	uint32_t *forget_ids;
	size_t n_forget;
	/* GET_BUNDLES: each target device's one-time-prekey budget (leaky bucket kept in the store, so it
	 * holds across requesters and loops; capacity 0 = none). Beyond it a bundle carries the signed
	 * prekey only. job->now_ms is the time of the fetch. */
	double budget_capacity;
	double budget_per_ms;
	/* GET_BUNDLES (job->handle, job->device_id: 0 = all); fills job->account_id too */
	store_bundle *bundles; /* owned by the job */
	size_t n_bundles;
	/* GET_BUNDLES result: the account's latest signed device list (owned by the job; NULL: none) */
	uint8_t *devlist;
	size_t devlist_len;
} store_keys_args;

/* --- relay (job->relay) --- */
#define STORE_MAX_ACK_IDS 100

typedef struct store_out_msg {
	uint32_t device_id;
	uint32_t registration_id;
	uint32_t type;
	const uint8_t *content; /* points into store_relay_args.content_buf */
	size_t content_len;
	uint64_t server_id;     /* result */
} store_out_msg;

typedef struct store_envelope {
	uint64_t server_id;
	uint64_t sender_account;
	uint32_t sender_device;
	char sender_handle[STORE_MAX_HANDLE + 1];
	uint32_t type;
	uint64_t client_ts;
	uint64_t server_ts;
	uint8_t *content;       /* owned by the job (one allocation per envelope) */
	size_t content_len;
	uint64_t thread_id;     /* GROUP_MESSAGE / PAYMENT_REQUEST: the thread (0 otherwise) */
} store_envelope;

#define STORE_PEERS_DEFAULT_SHARE 1 /* THREAD_PEERS: presence_share_default */
#define STORE_PEERS_FORCE 2         /* THREAD_PEERS: whatever the account's setting */

typedef struct store_relay_args {
	/* SEND: job->handle = recipient; job->account_id/device_id = sender; now_ms = server time */
	char sender_handle[STORE_MAX_HANDLE + 1];
	uint64_t client_ts;
	uint64_t expires_ms;
	unsigned queue_limit;     /* PARLEY_E_QUEUE_FULL at this many queued envelopes per device */
	unsigned sender_queue_limit; /* PARLEY_E_SENDER_QUEUE_FULL at this many from this sender (0: none) */
	store_out_msg *msgs;      /* owned by the job */
	size_t n_msgs;
	uint8_t *content_buf;     /* owned by the job: every content, back to back */
	/* SEND results; the device lists are allocated by the backend only when not empty */
	uint64_t recipient_account;
	uint32_t *missing, *extra, *stale; /* owned by the job */
	size_t n_missing, n_extra, n_stale;
	/* FETCH_QUEUE: after_id, limit -> envs; ACK: ids -> n_deleted; PURGE: now_ms, limit -> n_deleted;
	 * REDELIVERED: ids (pushed to a connection that closed without acking them), limit (the
	 * max_redeliveries) -> n_deleted = how many reached it and were moved to the back of the queue */
	uint64_t after_id;
	unsigned limit;
	store_envelope *envs;     /* owned by the job */
	size_t n_envs;
	uint64_t *ids;            /* owned by the job: store__job_relay_alloc_ids */
	size_t n_ids;
	uint64_t n_deleted;
	/* THREAD_PEERS: account_id, shared = STORE_PEERS_* flags -> peers (at most `limit`): the
	 * accounts it and they accepted each other; none if account_id does not share its presence
	 * (its setting, else DEFAULT_SHARE), unless FORCE.
	 * FIND_PEER: handle -> recipient_account, shared = accepted both ways. CONTACT_SET: handle,
	 * shared = 1 accept / 0 decline; PRESENCE_SET: shared; PRUNE_CONTACTS: now_ms = cut-off, limit ->
	 * n_deleted */
	uint64_t *peers;          /* owned by the job */
	size_t n_peers;
	int shared;
} store_relay_args;

/* --- entity registry (job->ent); the caller is job->caller_account (its role is checked in the op's
 * transaction, so a removed member's very next call fails whatever its connection cached) --- */
#define STORE_ENT_MAX_REQUESTS 100 /* pending requests listed per call (WIRE_MAX_REPEATED) */

typedef struct store_ent_request {
	uint64_t id, account_id, created_ms;
	char handle[STORE_MAX_HANDLE + 1];
	int role;
	uint8_t account_key[STORE_SIGNAL_KEY_LEN];
	uint8_t *devlist; /* owned by the job */
	size_t devlist_len;
	uint8_t *approval; /* owned by the job: an admin's approval waiting for the entity key (none: NULL) */
	size_t approval_len;
} store_ent_request;

typedef struct store_ent_args {
	char entity[STORE_MAX_HANDLE + 1];      /* every op: the entity's handle (ENTITY_MEMBER: the
	                                         * member's account handle is job->handle) */
	char display_name[65];                  /* CREATE; GET result */
	uint8_t entity_key[STORE_SIGNAL_KEY_LEN]; /* CREATE; GET result; JOIN: the candidate's account key */
	/* CREATE, MEMBER, DECIDE(approve), STAFF: the new signed staff list, already verified against its
	 * embedded key by the service (wire__stafflist_verify); `staff` points into `list`. GET: result. */
	uint8_t *list;                          /* owned by the job */
	size_t list_len;
	void *staff;                            /* a wire_stafflist * owned by the job (store__job_ent_set_list) */
	int role;                               /* MEMBER (add: admin), CODE (agent/bot) */
	int remove, approve;                    /* MEMBER, DECIDE */
	int transfer;                           /* MEMBER: job->handle becomes the primary admin */
	uint64_t request_id;                    /* DECIDE; JOIN result */
	/* DECIDE(approve) by an admin without the entity key: the approval record (lib/wire/approval.h),
	 * already parsed by the service, owned by the job; its signature is checked in the op under the
	 * caller device's stored key. The result's reqs[0] then carries a copy. */
	uint8_t *approval;
	size_t approval_len;
	uint8_t code_hash[32];                  /* CODE, JOIN: SHA-256 of the normalised code */
	uint64_t expires_ms;                    /* CODE */
	uint8_t *devlist;                       /* JOIN: the candidate's signed device list, owned by the job */
	size_t devlist_len;
	unsigned max_members, max_pending, max_codes;
	double guess_cap, guess_per_ms, acct_cap, acct_per_ms; /* JOIN: the two leaky buckets */
	/* results */
	int refusal;               /* JOIN: a refused code, committed with the guess it costs (status OK) */
	int target_removed;        /* MEMBER: target_account was removed (next to refusal: no padding) */
	uint64_t retry_after_ms;   /* JOIN: ENROL_RATE_LIMITED */
	uint64_t entity_id, staff_version;
	uint64_t target_account;   /* MEMBER, DECIDE: the account added, removed, made primary or decided on */
	uint64_t *accounts;        /* owned by the job: who to tell (JOIN: the admins; staff changes: the members) */
	size_t n_accounts;
	store_ent_request *reqs;   /* owned by the job: REQUESTS; JOIN: reqs[0] = the new request */
	size_t n_reqs;
} store_ent_args;

/* --- threads (job->thr, docs/protocol.md §13); the caller is job->caller_account / caller_device, whose
 * stored device key checks the signed event in the op's transaction --- */
#define STORE_THREAD_MAX_MEMBERS 100 /* accounts per thread (WIRE_THREAD_MAX_MEMBERS) */
#define STORE_THREAD_MAX_EVENTS 100  /* events per THREAD_GET (the latest) */
#define STORE_THREAD_MAX_LIST 100    /* threads per THREAD_LIST */
#define STORE_CHANNEL_USER_MAX 64    /* WIRE_CHANNEL_USER_MAX */

typedef struct store_thread_info {
	uint64_t thread_id, entity_id, customer, handling_agent, lock_holder, version, created_ms, updated_ms;
	char entity[STORE_MAX_HANDLE + 1];
	char customer_handle[STORE_MAX_HANDLE + 1];
	uint32_t channel;                          /* ThreadChannel: 0 native */
	char channel_user[STORE_CHANNEL_USER_MAX + 1]; /* channel != 0: the customer on it (docs/protocol.md §13.6) */
	/* VerificationLevel: the channel's baseline (sqlite__thr_load); customer authentication overlays
	 * AUTHENTICATED with its expiry and the component's name in the same place */
	unsigned verification;
	uint64_t verified_until_ms;
	char verified_by[STORE_CHANNEL_USER_MAX + 1];
	int status;                                /* PARLEY__WIRE__THREAD_STATUS__* values: 1 open, 2 locked, 3 closed */
	uint64_t members[STORE_THREAD_MAX_MEMBERS]; /* customer first */
	size_t n_members;
} store_thread_info;

typedef struct store_thread_blob {
	uint8_t *data; /* owned by the job */
	size_t len;
} store_thread_blob;

typedef struct store_thread_rcpt {
	uint64_t account;
	uint32_t device;
	uint64_t server_id;
} store_thread_rcpt;

typedef struct store_thread_args {
	char entity[STORE_MAX_HANDLE + 1]; /* OPEN; LIST (empty: the caller's own threads as a customer) */
	uint64_t thread_id;                /* SEND, EVENT, GET; LIST: before_id */
	/* OPEN, EVENT: the signed event; SEND: the LOCK event of a first response (none: NULL) */
	uint8_t *event;                    /* owned by the job */
	size_t event_len;
	unsigned max_open;                 /* OPEN: open threads per (customer, entity, channel, channel_user) */
	uint32_t channel;                  /* OPEN: != 0 only from a gateway of the entity */
	/* OPEN: as the request carried it, checked in the op after the caller's role (a non-gateway hears
	 * NOT_ENTITY_GATEWAY whatever it sent); channel_user_long: it had more than 64 bytes (invalid) */
	char channel_user[STORE_CHANNEL_USER_MAX + 1];
	int channel_user_long;
	/* SEND (job->handle: none; sender_handle: the caller's) */
	char sender_handle[STORE_MAX_HANDLE + 1];
	uint8_t *content;                  /* owned by the job */
	size_t content_len;
	uint64_t client_ts, expires_ms, membership_version;
	int payment;
	unsigned queue_limit, sender_queue_limit;
	unsigned limit;                    /* LIST */
	/* FORWARD (job->handle: the agent): the HANDLING event after `event` (ADD; none when the agent is
	 * already a member and `event` is the HANDLING), and one pairwise message per agent device
	 * (contents back to back in msg_buf) */
	uint8_t *event2;                   /* owned by the job */
	size_t event2_len;
	store_out_msg *msgs;               /* owned by the job */
	size_t n_msgs;
	uint8_t *msg_buf;                  /* owned by the job */
	/* results */
	const char *why;                   /* a refusal's specific reason (static text), NULL: the code's */
	int existing;                      /* OPEN: the caller's open thread came back */
	uint64_t removed;                  /* EVENT: the account that left (it is told too) */
	store_thread_info *infos;          /* owned by the job: OPEN, SEND, EVENT, GET one; LIST n */
	size_t n_infos;
	store_thread_blob *events;         /* owned by the job: GET, oldest first */
	size_t n_events;
	store_thread_rcpt *rcpts;          /* owned by the job: SEND, one per envelope queued */
	size_t n_rcpts;
} store_thread_args;

/* --- customer authentication (job->auth, docs/protocol.md §14.2) --- */
#define STORE_AUTH_STR 2048      /* WIRE_AUTH_FIELD_CAP: URLs, issuer, client id, secret reference, scopes */
#define STORE_AUTH_NAME 64       /* a component's name */
#define STORE_AUTH_TOKEN 43      /* base64url of 32 random bytes (JOSE_RANDOM_TOKEN_LEN) */
#define STORE_AUTH_MAX_REQUESTS 20 /* AUTH_STATUS: the latest requests */
#define STORE_AUTH_MAX_COMPONENTS 1000 /* auth_components_max's bound */
#define STORE_AUTH_MAX_CLAIMS 4
#define STORE_AUTH_MAX_EXPIRED 64 /* AUTH_EXPIRE: threads (and requests) handled per run */
#define STORE_AUTH_EMAIL 254     /* WIRE_AUTH_EMAIL_MAX */
#define STORE_AUTH_MAX_EMAILS 32 /* auth_known_emails_max's bound */

enum { STORE_AUTH_OIDC = 1, STORE_AUTH_OAUTH2 = 2, STORE_AUTH_OTP = 3, STORE_AUTH_JWT = 4 };      /* AuthType */
enum { STORE_COMP_DRAFT = 1, STORE_COMP_ACTIVE = 2, STORE_COMP_INACTIVE = 3 };                  /* AuthComponentState */
enum { STORE_BIND_NONE = 0, STORE_BIND_SUB = 1, STORE_BIND_PHONE = 2, STORE_BIND_EMAIL = 3 };   /* AuthBinding */
enum { STORE_AREQ_OPEN = 1, STORE_AREQ_DONE = 2, STORE_AREQ_FAILED = 3, STORE_AREQ_EXPIRED = 4 }; /* AuthRequestStatus */

typedef struct store_auth_component {
	uint64_t id, entity_id, created_ms, updated_ms;
	char entity[STORE_MAX_HANDLE + 1];
	char name[STORE_AUTH_NAME + 1];
	int type, state, binding;
	uint32_t credential_ttl_s;
	char issuer[STORE_AUTH_STR + 1], discovery_url[STORE_AUTH_STR + 1], authorization_endpoint[STORE_AUTH_STR + 1],
		token_endpoint[STORE_AUTH_STR + 1], jwks_uri[STORE_AUTH_STR + 1], userinfo_endpoint[STORE_AUTH_STR + 1],
		client_id[STORE_AUTH_STR + 1], secret_ref[STORE_AUTH_STR + 1], scopes[STORE_AUTH_STR + 1];
} store_auth_component;

typedef struct store_auth_request {
	uint64_t id, thread_id, component_id, expires_ms;
	char component[STORE_AUTH_NAME + 1];
	int type, status;
	uint32_t error;                       /* FAILED: the parley code */
	char token[STORE_AUTH_TOKEN + 1];     /* the start link's path token (oidc / oauth2) */
} store_auth_request;

typedef struct store_auth_email {
	char addr[STORE_AUTH_EMAIL + 1];      /* lower-cased (wire__auth_email_norm) */
} store_auth_email;

typedef struct store_auth_claim {
	char name[32];
	char value[STORE_AUTH_NAME * 4 + 1];
} store_auth_claim;

/* A verified sign-in or assertion, for AUTH_ANSWER with outcome_in set: the service checked the token
 * off the store thread; the store binds and records it in one transaction. */
typedef struct store_auth_identity {
	uint8_t token_hash[32];               /* SHA-256 of the ID token / assertion / userinfo document */
	uint64_t token_exp_ms;                /* 0: none (the credential ttl alone) */
	char sub[256 + 1], email[256 + 1], phone[STORE_CHANNEL_USER_MAX + 1];
	int email_verified, phone_verified;   /* 1 true, else not */
	/* an assertion (jwt): SHA-256 of its jti and its exp, recorded with the credential in the same
	 * transaction until exp (the replay check is that insert's conflict) */
	uint8_t jti_hash[32];
	uint64_t jti_exp_ms;
} store_auth_identity;

/* The big part of an auth job, on the heap (a store_job stays small: test_job_layout), allocated by
 * store__job_new for every auth op and owned by the job. */
typedef struct store_auth_ext {
	/* START: drawn by the service (randombytes), kept server-side only */
	char token[STORE_AUTH_TOKEN + 1], state_tok[STORE_AUTH_TOKEN + 1], nonce[STORE_AUTH_TOKEN + 1],
		verifier[STORE_AUTH_TOKEN + 1];
	char otp[8];                          /* START: the code (never stored); ANSWER: the customer's answer */
	uint8_t otp_key[32];                  /* START + ANSWER: the process's OTP key */
	store_auth_identity ident;            /* ANSWER (external, outcome_in PARLEY_OK): the verified identity */
	store_auth_email email;               /* KNOWN_EMAIL: the address to add or remove ("": list only) */
	/* results */
	store_auth_request req;               /* START, ANSWER, BY_TOKEN */
	char state_out[STORE_AUTH_TOKEN + 1], nonce_out[STORE_AUTH_TOKEN + 1], verifier_out[STORE_AUTH_TOKEN + 1];
} store_auth_ext;

typedef struct store_auth_args {
	char entity[STORE_MAX_HANDLE + 1];    /* STATE, LIST (PUT: in comps[0]) */
	uint64_t component_id, thread_id, request_id; /* STATE; START (thread, component); ANSWER; STATUS, KNOWN_EMAIL; BY_TOKEN
	                                       * (request_id != 0: by id, else by x->token) */
	int state;                            /* STATE: the new state */
	unsigned limit;                       /* PUT: auth_components_max; START: auth_max_open_per_thread;
	                                       * ANSWER: auth_otp_attempts (a code), auth_jti_cache (an
	                                       * assertion: live jti rows of its entity);
	                                       * KNOWN_EMAIL: auth_known_emails_max */
	uint64_t ttl_ms;                      /* START: auth_request_ttl_s */
	int by_state;                         /* BY_TOKEN: x->token is the callback's state, not the link's */
	int remove;                           /* KNOWN_EMAIL: remove x->email rather than add it */
	int external;                         /* ANSWER: 1 a checked sign-in / assertion (outcome_in, x->ident),
	                                       * 0 an otp in x->otp */
	int outcome_in;
	store_auth_ext *x;                    /* owned by the job (store__job_new allocates it) */
	/* results */
	int outcome;                          /* ANSWER: the answer's code (the job succeeds so that a wrong
	                                       * code's attempt count is committed) */
	int admin;                            /* LIST: the caller is an admin */
	int caller_staff;                     /* STATUS: the caller is staff of the thread */
	store_auth_component *comps;          /* owned by the job: PUT/STATE/GET/BY_TOKEN one, LIST n */
	size_t n_comps;
	store_thread_info *thread;            /* owned by the job: START, ANSWER, STATUS, BY_TOKEN, KNOWN_EMAIL */
	store_auth_request *reqs;             /* owned by the job: STATUS, newest first (<= STORE_AUTH_MAX_REQUESTS) */
	size_t n_reqs;
	store_auth_claim *claims;             /* owned by the job: STATUS (staff only, <= STORE_AUTH_MAX_CLAIMS) */
	size_t n_claims;
	store_auth_email *emails;             /* owned by the job: KNOWN_EMAIL, STATUS (staff only): the customer's
	                                       * known emails for the thread's entity, sorted (<= STORE_AUTH_MAX_EMAILS) */
	size_t n_emails;
	store_thread_info *dropped;           /* owned by the job: EXPIRE, threads whose level fell back */
	size_t n_dropped;
	store_auth_request *ended;            /* owned by the job: EXPIRE, requests that expired */
	store_thread_info *ended_threads;     /* owned by the job: EXPIRE, the thread of each ended[i] */
	size_t n_ended;
} store_auth_args;

/* Hands a verified staff list (parsed: a wire_stafflist *, its members pointing into list) to the job,
 * which frees both; PARLEY_E_INVAL for a job of another domain. */
int store__job_ent_set_list(store_job *job, uint8_t *list, size_t len, void *parsed);

/* Completion: the one completion type (base/svc.h), called as cb(arg, job->status, job) on the
 * submitting loop's thread; the result is the `const store_job *`, valid until the callback returns
 * (the store frees it afterwards: do not keep pointers into it). A service that has nothing to add to
 * a job's result passes its own caller's (cb, arg) straight through. */
typedef svc_cb store_cb;

/* --- settings of the whole database (job->set) --- */
#define STORE_SETTING_NAME_MAX 63
#define STORE_SETTING_VALUE_MAX 64

/* SETTING_CHECK's answer */
enum store_setting_result {
	STORE_SETTING_SAME = 0,   /* the stored value is the job's */
	STORE_SETTING_STORED = 1, /* none was stored: the job's is now */
	STORE_SETTING_DIFFERS = 2 /* another is stored (replaced by the job's if `replace`) */
};

/* SETTING_CHECK: one transaction reads `name`, inserts value[0..value_len) when absent, else compares
 * (and with `replace` overwrites a different value). For facts every node of one database must agree
 * on (the OTP key's fingerprint: auth/otpcheck.c), so a node that disagrees can tell at start-up. */
typedef struct store_set_args {
	char name[STORE_SETTING_NAME_MAX + 1];
	uint8_t value[STORE_SETTING_VALUE_MAX];
	size_t value_len;                     /* 1..STORE_SETTING_VALUE_MAX, else PARLEY_E_INVAL */
	int replace;
	int result;                           /* enum store_setting_result */
} store_set_args;

struct store_job {
	enum store_op op;
	int status; /* result: PARLEY_OK or a parley_err */

	/* Common arguments (set by the caller before submit). Strings are copied into the job.
	 * account_id / device_id are also results: CREATE_ACCOUNT (device 1), GET_ACCOUNT, ADD_DEVICE,
	 * FIND_DEVICE and GET_BUNDLES fill them. */
	char handle[STORE_MAX_HANDLE + 1]; /* CREATE_ACCOUNT, GET_ACCOUNT, FIND_DEVICE, GET_BUNDLES, SEND, FIND_PEER */
	uint64_t account_id;
	uint32_t device_id;
	uint64_t now_ms;                   /* writes: timestamps to record; FETCH_QUEUE: expiry cut-off */
	/* The authenticated device on whose behalf the job runs (caller_device 0 = none: the server's own
	 * jobs, register, auth; device ids start at 1). When set, the store first checks, in the same transaction as the op (the
	 * write's savepoint; a read runs after every earlier commit), that the device still exists, and
	 * fails the job with PARLEY_E_DEVICE_REMOVED otherwise: a connection's cached authorization
	 * never outlives its device, whether or not the removal notice reached that connection. */
	uint64_t caller_account;
	uint32_t caller_device;

	/* Per-domain arguments and results: only the member named by the op's domain in STORE_OPS is
	 * meaningful (and freed by store__job_free). Large arrays live on the heap, owned by the job. */
	union {
		store_acct_args acct;
		store_keys_args keys;
		store_relay_args relay;
		store_ent_args ent;
		store_thread_args thr;
		store_auth_args auth;
		store_set_args set;
	};

	/* Private to the store. */
	store_cb cb_;
	void *arg_;
	store_client *client_;
	store_job *next_;
	const void *owner_;  /* store__client_set_owner at submit time */
	int cancelled_;      /* store__client_cancel: completes with PARLEY_E_CLOSED, never runs */
};

/* Allocates a zeroed job for `op`. NULL on out-of-memory. job->op must not change afterwards: it says
 * which union member the job uses and what store__job_free releases. */
store_job *store__job_new(enum store_op op);
/* Frees a job that was never submitted (or one returned by store__run_sync), with the heap arrays of
 * its domain. */
void store__job_free(store_job *job);
/* Copies a string argument, refusing it if longer than the field: PARLEY_E_TOO_LARGE.
 * set_device_name: acct ops only (PARLEY_E_INVAL otherwise). */
int store__job_set_handle(store_job *job, const char *handle);
int store__job_set_device_name(store_job *job, const char *name);
/* Heap arrays owned by the job, zeroed, with their count set to n (n == 0 allocates nothing). A
 * second call replaces the first. PARLEY_E_TOO_LARGE beyond STORE_MAX_PREKEYS_PER_UPLOAD /
 * STORE_MAX_ACK_IDS, PARLEY_E_NOMEM, PARLEY_E_INVAL for a job of another domain (keys ops,
 * relay ops). */
int store__job_keys_alloc_otks(store_job *job, size_t n);
int store__job_relay_alloc_ids(store_job *job, size_t n);

/* Queues the job. On PARLEY_OK the store owns it and `cb` will be called exactly once on c's loop
 * thread. On error (PARLEY_E_SHUTTING_DOWN, or PARLEY_E_SERVER_BUSY when store_queue_max jobs are
 * queued and the op is not one that drains: ack, purge, device removal, queue fetch) the callback is
 * never called and the caller still owns the job. Call only on c's loop thread. */
int store__submit(store_client *c, store_job *job, store_cb cb, void *arg);

/* Runs one job and waits for it (any thread except the store thread; for tests and tools, never on a
 * loop thread). Returns job->status; the caller keeps ownership of the job. */
int store__run_sync(store *s, store_job *job);

/* Whether an op writes (runs inside the group-commit transaction); 0 for an unknown op. */
int store__op_is_write(enum store_op op);
/* The op's STORE_OPS name, "unknown" for an unknown op. */
const char *store__op_name(enum store_op op);

/* Disk space as the store last saw it (any thread). */
enum store_space { STORE_SPACE_OK = 0, STORE_SPACE_FULL = 1, STORE_SPACE_NO_RESERVE = 2 };
int store__space(store *s);
/* For /healthz: 0 healthy, 1 degraded (storage full). A reason (full, or healthy but without a disk
 * reserve) goes into reason, "" if none; plain text without quotes. Any thread. */
int store__health(store *s, char *reason, size_t cap);
/* For /healthz readiness: 1 when the store can run jobs now (SQLite: always; PostgreSQL: connected),
 * 0 while its database is unreachable. Any thread. */
int store__ready(store *s);

/* Counters for tests and /metrics (also mirrored into METRIC_STORE_*). */
typedef struct store_stats {
	uint64_t commits;
	uint64_t jobs;
	uint64_t errors;
	uint64_t batches;
} store_stats;
void store__stats(store *s, store_stats *out);

#endif
