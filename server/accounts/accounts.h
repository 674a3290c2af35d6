/* Accounts and devices service: register, challenge-response auth, list/add/remove devices.
 *
 * accounts.c is the domain: transport-free calls working on an acct_auth (one connection's
 * challenge state) or an authenticated caller, and a store_client. Every call reports once through the
 * one completion type (base/svc.h) with an `accounts_result`, either from within the call (validation,
 * signature failures) or later on the same loop thread (store completion); the acct_auth must stay
 * alive until then. routes.c is the wire side: the service descriptor, its routes, the challenge on
 * open, and closing a removed device's connections on every loop.
 *
 * Signed bytes and the auth sequence are specified in docs/protocol.md and built by lib/wire
 * (wire__register_signed_bytes / wire__auth_signed_bytes), so client and server cannot drift apart.
 */
#ifndef PARLEYD_ACCOUNTS_H
#define PARLEYD_ACCOUNTS_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/ratelimit.h"
#include "base/svc.h"
#include "proto/parley.pb-c.h"
#include "store/store.h"
#include "wire/wire.h"

#define ACCOUNTS_REG_SLOTS 4096 /* registration buckets (source addresses) */

typedef struct accounts {
	unsigned max_auth_failures; /* failed signatures before the connection is closed */
	uint64_t link_max_age_ms;   /* AddDevice proofs older or newer than this are refused */
	unsigned pow_bits;          /* registration proof of work asked in every challenge; 0 = none */
	/* Registrations per source address, for the whole process (every loop registers into the same
	 * table, under reg_mu: a per-loop table would multiply the rate by the number of loops).
	 * Registrations are rare, so one lock costs nothing. */
	double reg_capacity, reg_per_sec;
	uint64_t reg_hash_key[2]; /* random: an attacker cannot aim addresses at one probe window */
	pthread_mutex_t reg_mu;
	rl_bucket reg_slots[ACCOUNTS_REG_SLOTS];
} accounts;

/* One connection's authentication state (the challenge it must sign). */
typedef struct acct_auth {
	uint8_t nonce[WIRE_NONCE_LEN]; /* current challenge; valid when nonce_valid */
	uint8_t nonce_valid;
	uint8_t busy;          /* a register/auth is in flight: a second one is refused (PARLEY_E_BUSY) */
	uint8_t authenticated;
	uint8_t auth_failures;
	char handle[WIRE_MAX_HANDLE + 1]; /* of the register/auth in flight or done */
} acct_auth;

typedef struct accounts_result {
	uint64_t account_id;  /* register, auth */
	uint32_t device_id;   /* register (1), auth, add_device */
	const store_device *devices; /* list_devices */
	size_t n_devices;
	int new_challenge;    /* the auth state holds a fresh nonce: push it (before the response) */
	int close_conn;       /* too many failed attempts: close after the response */
	uint32_t removed_device; /* remove_device succeeded: close that device's connections */
	uint64_t retry_after_ms; /* REGISTRATION_LIMITED */
	uint8_t account_key[33]; /* auth: the account's key (has_account_key) */
	int has_account_key;
} accounts_result;

/* Reads its fields from the configuration table: PARLEY_E_CONFIG for an unknown `registration` mode.
 * fini releases what init set up (not `a` itself). */
int accounts__init(accounts *a, const parleyd_config *cfg);
void accounts__fini(accounts *a);

/* The registration limiter's key for a peer "ip:port" (link__peer): an IPv4 address whole, an IPv6
 * address by its /64 (one host usually holds a whole /64), an IPv4-mapped IPv6 address as IPv4.
 * Returns -1 for an address it cannot parse (such peers share one bucket). */
int accounts__addr_key(const char *peer, uint8_t key[RL_KEY_LEN]);

/* Fresh state with a new random challenge nonce (libsodium randombytes). */
void accounts__auth_init(acct_auth *s);
/* Replaces the challenge (after a failed or consumed attempt). */
void accounts__new_challenge(acct_auth *s);

/* Handles follow wire__handle_valid (lib/wire: the same rule the client checks). */

/* register / auth report through cb(arg, status, const accounts_result *) exactly once (never NULL).
 * handle: copied into s for the caller's use after success. register: peer is the connection's
 * "ip:port" (link__peer); beyond register_rate_* from its address, REGISTRATION_LIMITED with
 * retry_after_ms. */
void accounts__register(accounts *a, store_client *sc, acct_auth *s, const Parley__Wire__RegisterRequest *req,
			const char *peer, uint64_t now_ms, svc_cb cb, void *arg);
void accounts__auth(accounts *a, store_client *sc, acct_auth *s, const Parley__Wire__AuthRequest *req, svc_cb cb,
		    void *arg);
/* Records last_seen_ms of a device that just authenticated; reports the store job (NULL when it could
 * not be submitted). NO_SUCH_DEVICE means the device was removed since auth read it. */
void accounts__touch(store_client *sc, uint64_t account, uint32_t device, uint64_t now_ms, svc_cb cb, void *arg);

/* list / add / remove report the store job itself (const store_job *: devices, device_id), NULL when
 * refused before reaching the store (INVALID_KEY, PROTO_FIELD_TOO_LARGE, NOMEM). */
/* (account, device) is the authenticated caller: the store refuses the job with DEVICE_REMOVED once
 * that device no longer exists (store.h caller_account). */
void accounts__list_devices(store_client *sc, uint64_t account, uint32_t device, svc_cb cb, void *arg);
/* add_device first checks the new device's proof of possession (proto AddDeviceRequest): signed for
 * `handle` (the caller's account) by the new key, timestamp within link_max_age_ms of now_ms.
 * BAD_SIGNATURE, LINK_CODE_EXPIRED. */
void accounts__add_device(const accounts *a, store_client *sc, uint64_t account, uint32_t device,
			  const char *handle, const Parley__Wire__AddDeviceRequest *req, uint64_t now_ms, svc_cb cb,
			  void *arg);
void accounts__remove_device(store_client *sc, uint64_t account, uint32_t device,
			     const Parley__Wire__RemoveDeviceRequest *req, svc_cb cb, void *arg);

/* Signed device lists (devlists.c, docs/protocol.md §11); both report the store job (NULL when refused
 * before the store). upload: the record is verified (DEVICE_LIST_INVALID), then the store checks it
 * against the account (DEVICE_LIST_INVALID, DEVICE_LIST_ROLLBACK); set_key non-NULL is SetAccountKey
 * (the key must be the list's signer; ACCOUNT_KEY_SET if the account has one). get: the account of
 * `handle`, its key and its list (BAD_HANDLE, NO_SUCH_ACCOUNT). */
void accounts__upload_devlist(store_client *sc, uint64_t account, uint32_t device, const uint8_t *rec,
			      size_t len, const uint8_t *set_key, size_t set_key_len, uint64_t now_ms, svc_cb cb,
			      void *arg);
void accounts__get_devlist(store_client *sc, uint64_t account, uint32_t device, const char *handle, svc_cb cb,
			   void *arg);
/* An account key as RegisterRequest / SetAccountKeyRequest carry it: 33 bytes, 0x05 || X25519.
 * PARLEY_E_INVALID_KEY otherwise. */
int accounts__check_account_key(const uint8_t *key, size_t len);

/* The service descriptor (routes.c). */
struct service;
extern const struct service accounts__service;

#endif
