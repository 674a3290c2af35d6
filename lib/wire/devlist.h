/* Signed device list record (docs/protocol.md §11.1, spec: issue 9): which devices belong to an account,
 * signed by the account key (AK, XEdDSA). Pure functions over buffers, shared by parleyd (checks on
 * upload) and libparley (checks before encrypting to a device and on receipt).
 *
 *   "parley-device-list-v1"  21 ASCII bytes
 *   account_id               u64be
 *   handle_len u8, handle    3..32 bytes, the handle rule (wire__handle_valid)
 *   account_key              33 (0x05 || X25519)
 *   version                  u64be >= 1
 *   timestamp_ms             u64be
 *   n                        u8, 1..64
 *   n x { device_id u32be; identity_key 33; device_key 32 }   strictly ascending device_id
 *   signature                64, XEdDSA by account_key over every byte before it
 */
#ifndef PARLEY_WIRE_DEVLIST_H
#define PARLEY_WIRE_DEVLIST_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "wire/wire.h"

#define WIRE_DEVLIST_MAX 64
#define WIRE_DEVLIST_MAGIC "parley-device-list-v1"
#define WIRE_DEVLIST_MAGIC_LEN 21
#define WIRE_DEVLIST_ENTRY_LEN (4 + 33 + 32)

typedef struct wire_devlist_entry {
	uint32_t device_id;
	uint8_t identity_key[33];
	uint8_t device_key[32];
} wire_devlist_entry;

typedef struct wire_devlist {
	uint64_t account_id;
	char handle[33];
	uint8_t account_key[33];
	uint64_t version, timestamp_ms;
	size_t n;
	wire_devlist_entry dev[WIRE_DEVLIST_MAX];
} wire_devlist;

/* Serialise l and append the full signed record to out. The list is checked as verify would check it
 * (PARLEY_E_DEVICE_LIST_INVALID if it would not verify, e.g. unsorted ids or a bad handle), and its
 * account_key must be the public half of ak_priv (PARLEY_E_INVALID_KEY otherwise): a record that its own
 * signer could not verify is never produced. out is unchanged on error. */
int wire__devlist_sign(const wire_devlist *l, const uint8_t ak_priv[32], dynbuf *out);

/* Parse + check structure (bounds, order, handle) + verify the signature by the embedded account key;
 * PARLEY_E_DEVICE_LIST_INVALID on any failure (out is then zeroed). The caller compares out->account_key
 * with the key it trusts. */
int wire__devlist_verify(const uint8_t *buf, size_t len, wire_devlist *out);

/* The entry of device_id, or NULL. Binary search (the ids are strictly ascending). */
const wire_devlist_entry *wire__devlist_find(const wire_devlist *l, uint32_t device_id);

#endif
