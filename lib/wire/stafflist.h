/* Signed staff list record (docs/protocol.md §12.1, spec: issue 9): an entity's members, their roles,
 * rules, account keys and signed device lists, signed by the entity key (EK, XEdDSA). Pure functions
 * over buffers, shared by parleyd (checks on every staff change) and libparley (what a customer trusts).
 *
 *   "parley-staff-list-v1"   20 ASCII bytes
 *   entity_id                u64be
 *   handle_len u8, handle    the handle rule (wire__handle_valid)
 *   name_len u8, name        1..64 bytes (display name)
 *   entity_key               33 (0x05 || X25519)
 *   version                  u64be >= 1
 *   timestamp_ms             u64be
 *   lock_mode u8 (0/1), admins_exempt u8 (0/1), default_flags u8 (WIRE_RULE_* bits)
 *   n                        u16be, 1..WIRE_STAFF_MAX
 *   n x { account_id u64be (strictly ascending); handle_len u8, handle; role u8 (1 admin, 2 agent,
 *         3 bot, 4 gateway); flags u8 (bit0: primary admin, exactly one member, an admin); rules_mask u8,
 *         rules_values u8 (WIRE_RULE_* bits); account_key 33; devlist_len u16be
 *         (0..WIRE_DEVLIST_MAX_BYTES), devlist (opaque here: the member's signed device list) }
 *   signature                64, XEdDSA by entity_key over every byte before it
 * At most WIRE_STAFFLIST_MAX_BYTES in all.
 */
#ifndef PARLEY_WIRE_STAFFLIST_H
#define PARLEY_WIRE_STAFFLIST_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "wire/wire.h"

#define WIRE_STAFF_MAX 200
#define WIRE_STAFFLIST_MAGIC "parley-staff-list-v1"
#define WIRE_STAFFLIST_MAGIC_LEN 20
#define WIRE_ROLE_ADMIN 1
#define WIRE_ROLE_AGENT 2
#define WIRE_ROLE_BOT 3
/* issue 11: parley-gateway's account, the customer side of the channel threads it opens; never staff
 * (no rule of the list applies to it, it is never added to a thread, nor its primary or an admin) */
#define WIRE_ROLE_GATEWAY 4
#define WIRE_STAFF_PRIMARY 1u
#define WIRE_RULE_DEFAULT_AGENT 1u
#define WIRE_RULE_MAY_INITIATE 2u
#define WIRE_RULE_MAY_PAY 4u
#define WIRE_RULE_MAY_TRANSFER 8u
#define WIRE_RULE_SHOW_NAME 16u
#define WIRE_RULE_ALL 31u

typedef struct wire_staff_member {
	uint64_t account_id;
	char handle[WIRE_MAX_HANDLE + 1];
	uint8_t role, flags, rules_mask, rules_values;
	uint8_t account_key[33];
	const uint8_t *devlist; /* verify: points into the parsed buffer; sign: the caller's */
	size_t devlist_len;
} wire_staff_member;

typedef struct wire_stafflist {
	uint64_t entity_id;
	char handle[WIRE_MAX_HANDLE + 1];
	char display_name[WIRE_MAX_DISPLAY_NAME + 1];
	uint8_t entity_key[33];
	uint64_t version, timestamp_ms;
	uint8_t lock_mode, admins_exempt, default_flags;
	size_t n;
	wire_staff_member *members; /* verify: allocated (wire__stafflist_free); sign: the caller's */
} wire_stafflist;

/* Serialises l and appends the full signed record to out. l must pass verify's structural checks
 * (PARLEY_E_STAFF_LIST_INVALID) and its entity_key must be the public half of ek_priv
 * (PARLEY_E_INVALID_KEY). out is unchanged on error. */
int wire__stafflist_sign(const wire_stafflist *l, const uint8_t ek_priv[32], dynbuf *out);
/* Parses and checks structure and the signature by the embedded entity key; PARLEY_E_STAFF_LIST_INVALID
 * on any failure (out zeroed), PARLEY_E_NOMEM. On PARLEY_OK free with wire__stafflist_free; the members'
 * devlist pointers point into buf, which must outlive out. The caller compares entity_key with the key
 * it trusts. */
int wire__stafflist_verify(const uint8_t *buf, size_t len, wire_stafflist *out);
void wire__stafflist_free(wire_stafflist *l);
/* The member with account_id, or NULL (binary search: ids ascend). */
const wire_staff_member *wire__stafflist_find(const wire_stafflist *l, uint64_t account_id);
/* The member with account_id if it is STAFF (admin, agent or bot), or NULL: a gateway is a member of
 * the list but never staff (docs/protocol.md §13.6). */
const wire_staff_member *wire__stafflist_staff(const wire_stafflist *l, uint64_t account_id);
/* The member's WIRE_RULE_* bits: its masked overrides, else the entity's defaults; 0 for a gateway. */
unsigned wire__stafflist_effective_rules(const wire_stafflist *l, const wire_staff_member *m);

#endif
