/* Accounts and devices service: register, challenge-response auth, list/add/remove devices.
 *
 * Transport-free: it works on an acct_session (the per-connection auth state, embedded by the
 * dispatcher in its own session) and a store_client, and reports every outcome through one callback,
 * so unit tests drive it without sockets. Every request function calls `cb` exactly once, either from
 * within the call (validation, signature failures) or later on the same loop thread (store
 * completion). The session must stay alive until then (the dispatcher defers freeing it).
 *
 * Signed bytes and the auth sequence are specified in docs/protocol.md and built by lib/wire
 * (wire__register_signed_bytes / wire__auth_signed_bytes), so client and server cannot drift apart.
 */
#ifndef PARLEYD_ACCOUNTS_H
#define PARLEYD_ACCOUNTS_H
#include <stddef.h>
#include <stdint.h>

#include "proto/parley.pb-c.h"
#include "store/store.h"
#include "wire/wire.h"

#define ACCOUNTS_DEFAULT_MAX_AUTH_FAILURES 3

typedef struct accounts {
	unsigned max_auth_failures; /* failed signatures before the connection is closed */
} accounts;

typedef struct acct_session {
	uint8_t nonce[WIRE_NONCE_LEN]; /* current challenge; valid when nonce_valid */
	int nonce_valid;
	int busy;          /* a register/auth is in flight: a second one is refused (PARLEY_E_BUSY) */
	int authenticated;
	uint64_t account_id;
	uint32_t device_id;
	unsigned auth_failures;
} acct_session;

typedef struct accounts_result {
	int status;           /* PARLEY_OK or the error to answer with */
	uint64_t account_id;  /* register, auth */
	uint32_t device_id;   /* register (1), add_device */
	const store_device *devices; /* list_devices: valid during the callback only */
	size_t n_devices;
	int new_challenge;    /* the session holds a fresh nonce: push it (before the response) */
	int close_conn;       /* too many failed attempts: close after the response */
	uint32_t removed_device; /* remove_device succeeded: close that device's connections */
} accounts_result;

typedef void (*accounts_cb)(void *arg, acct_session *s, const accounts_result *r);

void accounts__init(accounts *a, unsigned max_auth_failures);

/* Fresh session with a new random challenge nonce (libsodium randombytes). */
void accounts__session_init(acct_session *s);
/* Replaces the challenge (after a failed or consumed attempt). */
void accounts__new_challenge(acct_session *s);

/* Handle rules: 3-32 bytes of [a-z0-9._-], first one a letter. */
int accounts__handle_valid(const char *handle);

void accounts__register(accounts *a, store_client *sc, acct_session *s, const Parley__Wire__RegisterRequest *req,
			accounts_cb cb, void *arg);
void accounts__auth(accounts *a, store_client *sc, acct_session *s, const Parley__Wire__AuthRequest *req,
		    accounts_cb cb, void *arg);
void accounts__list_devices(accounts *a, store_client *sc, acct_session *s, accounts_cb cb, void *arg);
void accounts__add_device(accounts *a, store_client *sc, acct_session *s, const Parley__Wire__AddDeviceRequest *req,
			  accounts_cb cb, void *arg);
void accounts__remove_device(accounts *a, store_client *sc, acct_session *s,
			     const Parley__Wire__RemoveDeviceRequest *req, accounts_cb cb, void *arg);

#endif
