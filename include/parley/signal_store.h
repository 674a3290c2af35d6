/* parley — storage interface of the Signal protocol layer.
 *
 * The Signal layer never touches a database itself: it calls the callbacks of a parley_signal_store,
 * a plain struct of function pointers plus an opaque `user` pointer that is passed back to each one
 * (the same shape as libsignal's store traits). libparley ships two implementations:
 *   - an in-memory store (parley_signal_mem_store_new, below) for tests and short-lived tools;
 *   - an SQLite store (see <parley/signal_sqlite.h>, if present in this build).
 * Applications may provide their own.
 *
 * Contract for every callback:
 *  - return PARLEY_OK on success, PARLEY_E_NOT_FOUND when the requested item does not exist, and any
 *    other parley_err (typically PARLEY_E_STORE or PARLEY_E_NOMEM) on failure; the Signal layer passes
 *    such failures up unchanged.
 *  - pointer arguments are borrowed for the duration of the call only; copy what you keep.
 *  - "load" callbacks that return a byte blob set *data / *len to memory OWNED BY THE STORE that must
 *    stay valid and unchanged until the next call of any callback on the same store; the library
 *    copies or parses it immediately. Blobs hold secrets: stores should wipe them when replaced/freed.
 *  - records are opaque, versioned byte strings produced by the library; a store keeps them verbatim.
 *  - a store is used from one thread at a time (the library never calls it concurrently on its own;
 *    share a store across threads only with your own locking).
 */
#ifndef PARLEY_SIGNAL_STORE_H
#define PARLEY_SIGNAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <parley/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_SIGNAL_PUBKEY_LEN 33    /* 0x05 || X25519 u-coordinate (Signal's serialisation) */
#define PARLEY_SIGNAL_PRIVKEY_LEN 32   /* clamped X25519 scalar */
#define PARLEY_SIGNAL_SIGNATURE_LEN 64 /* XEdDSA */
#define PARLEY_SIGNAL_DISTRIBUTION_ID_LEN 16 /* sender-key distribution id: UUID, RFC 4122 byte order */
#define PARLEY_SIGNAL_MAX_NAME_LEN 255 /* longest address name accepted, in bytes, excluding NUL */

/* A remote (or local) device: a NUL-terminated name (account id, phone number, service id...) and a
 * device id. Borrowed everywhere: the library never keeps the pointer beyond the call. */
typedef struct parley_signal_address {
	const char *name;
	uint32_t device_id;
} parley_signal_address;

/* A Curve25519 key pair in Signal's serialisations. Plain data owned by whoever declares it; holds a
 * secret: wipe it (parley_signal_keypair_wipe) when done. */
typedef struct parley_keypair {
	uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN];
	uint8_t priv[PARLEY_SIGNAL_PRIVKEY_LEN];
} parley_keypair;

/* One-time prekey: an id and a key pair. */
typedef struct parley_prekey {
	uint32_t id;
	parley_keypair key;
} parley_prekey;

/* Signed prekey: id, key pair, XEdDSA signature by the identity key over the 33-byte public key, and
 * the creation time (milliseconds since the epoch, informational: used for rotation policies). */
typedef struct parley_signed_prekey {
	uint32_t id;
	parley_keypair key;
	uint8_t signature[PARLEY_SIGNAL_SIGNATURE_LEN];
	uint64_t timestamp_ms;
} parley_signed_prekey;

/* Direction of an identity trust question (libsignal's Direction): a store may apply different
 * policies when we are about to send versus when we received. */
typedef enum parley_signal_direction {
	PARLEY_SIGNAL_SENDING = 0,
	PARLEY_SIGNAL_RECEIVING = 1,
} parley_signal_direction;

typedef struct parley_signal_store {
	void *user; /* passed back as first argument of every callback; owned by the implementation */

	/* ---- identity ---- */
	/* Our own identity key pair and registration id (set at provisioning; NOT_FOUND if absent). */
	int (*get_identity_keypair)(void *user, parley_keypair *out);
	int (*get_local_registration_id)(void *user, uint32_t *out);
	/* Remember `key` as the identity of addr->name (all devices of a name share one identity in
	 * libsignal's model, but stores key it by the full address as libsignal does). *replaced is set
	 * to 1 if a DIFFERENT key was stored before and is now overwritten, 0 otherwise. */
	int (*save_identity)(void *user, const parley_signal_address *addr,
			     const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], int *replaced);
	/* *trusted = 1 if `key` may be used for addr: trust on first use (nothing stored yet) or equal to
	 * the stored key; 0 otherwise. Must not modify anything. */
	int (*is_trusted_identity)(void *user, const parley_signal_address *addr,
				   const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], parley_signal_direction dir,
				   int *trusted);
	/* The stored identity for addr, NOT_FOUND if none. */
	int (*get_identity)(void *user, const parley_signal_address *addr, uint8_t out[PARLEY_SIGNAL_PUBKEY_LEN]);

	/* ---- sessions (opaque records, see the blob rule above) ---- */
	int (*load_session)(void *user, const parley_signal_address *addr, const uint8_t **data, size_t *len);
	int (*store_session)(void *user, const parley_signal_address *addr, const uint8_t *data, size_t len);
	/* NOT_FOUND is not an error for delete: deleting nothing succeeds with PARLEY_OK too. */
	int (*delete_session)(void *user, const parley_signal_address *addr);

	/* ---- one-time prekeys ---- */
	int (*load_prekey)(void *user, uint32_t id, parley_prekey *out);
	int (*store_prekey)(void *user, const parley_prekey *pk);
	int (*remove_prekey)(void *user, uint32_t id);

	/* ---- signed prekeys ---- */
	int (*load_signed_prekey)(void *user, uint32_t id, parley_signed_prekey *out);
	int (*store_signed_prekey)(void *user, const parley_signed_prekey *spk);

	/* ---- sender keys (opaque records keyed by sender address + distribution id) ---- */
	int (*load_sender_key)(void *user, const parley_signal_address *sender,
			       const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t **data,
			       size_t *len);
	int (*store_sender_key)(void *user, const parley_signal_address *sender,
				const uint8_t distribution_id[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t *data,
				size_t len);

	/* ---- signed prekeys, continued (appended: stores written for the earlier layout keep theirs) ----
	 * Delete signed prekey `id` and wipe its private key (deleting nothing succeeds too). The key's
	 * owner calls it once a retired key's grace period is over, so that a later theft of the store
	 * cannot decrypt the X3DH of old sessions (forward secrecy at rest). NULL: the store cannot delete;
	 * callers then keep the key. */
	int (*remove_signed_prekey)(void *user, uint32_t id);
} parley_signal_store;

/* ---------------------------------------------------------------- in-memory store */

/* Fill *out with an in-memory store holding `identity` and `registration_id` (both copied). Everything
 * lives on the heap and is wiped and freed by parley_signal_mem_store_free. Trust policy: trust on first
 * use, then only the stored key (libsignal's InMemIdentityKeyStore). On error *out is left zeroed and
 * nothing needs freeing. */
PARLEY_EXPORT int parley_signal_mem_store_new(parley_signal_store *out, const parley_keypair *identity,
					      uint32_t registration_id);
/* Wipe and free everything the in-memory store holds; *store is zeroed. NULL-safe and safe on a zeroed
 * struct. Must only be called on stores made by parley_signal_mem_store_new. */
PARLEY_EXPORT void parley_signal_mem_store_free(parley_signal_store *store);

#ifdef __cplusplus
}
#endif
#endif
