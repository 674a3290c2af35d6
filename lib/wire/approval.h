/* Join approval record (docs/protocol.md §12.5): an admin whose device does not hold the entity key
 * approves a join request; the primary admin's device, which holds the key, checks the approval and
 * signs the new staff list. Signed by the approving device's Ed25519 device key (the key it
 * authenticates with), so the server, which knows that key, can check it too, and the primary's
 * client can check it against the approver's signed device list inside the staff list: the server
 * cannot make a primary's client sign a member in by claiming that an admin approved.
 *
 *   "parley-join-approval-v1"  23 ASCII bytes
 *   entity_len u8, entity      the entity handle (the handle rule)
 *   request_id                 u64be, >= 1
 *   candidate_id               u64be, the candidate's account id
 *   candidate_key              33, the candidate's account key (0x05 || X25519)
 *   role                       u8, WIRE_ROLE_AGENT, WIRE_ROLE_BOT or WIRE_ROLE_GATEWAY
 *   devlist_hash               32, SHA-256 of the candidate's signed device list as the request carries it
 *   approver_id                u64be, the approving admin's account id
 *   approver_device            u32be, >= 1, the approving device
 *   timestamp_ms               u64be
 *   signature                  64, Ed25519 by the approving device's key over every byte before it
 * Exactly as long as the entity handle implies; at most WIRE_APPROVAL_MAX_BYTES.
 */
#ifndef PARLEY_WIRE_APPROVAL_H
#define PARLEY_WIRE_APPROVAL_H
#include <stddef.h>
#include <stdint.h>

#include "wire/stafflist.h" /* WIRE_ROLE_* */
#include "wire/wire.h"

#define WIRE_APPROVAL_MAGIC "parley-join-approval-v1"
#define WIRE_APPROVAL_MAGIC_LEN 23

typedef struct wire_approval {
	char entity[WIRE_MAX_HANDLE + 1];
	uint64_t request_id, candidate_id;
	uint8_t candidate_key[33];
	uint8_t role;
	uint8_t devlist_hash[32];
	uint64_t approver_id;
	uint32_t approver_device;
	uint64_t timestamp_ms;
} wire_approval;

/* SHA-256 of a signed device list, the form an approval names it in. */
void wire__approval_devlist_hash(const uint8_t *devlist, size_t len, uint8_t out[32]);
/* Writes the signed record into out (cap >= WIRE_APPROVAL_MAX_BYTES), its length in *len.
 * PARLEY_E_APPROVAL_INVALID if a field breaks the rules above (nothing signed). sk: libsodium's
 * 64-byte Ed25519 secret key. */
int wire__approval_sign(const wire_approval *a, const uint8_t sk[64], uint8_t *out, size_t cap, size_t *len);
/* Parses buf into out (zeroed on failure) and checks the signature under device_key (32 bytes,
 * Ed25519). PARLEY_E_APPROVAL_INVALID for any malformed, trailing or badly signed byte. */
int wire__approval_verify(const uint8_t *buf, size_t len, const uint8_t device_key[32], wire_approval *out);
/* The same walk without the signature (who signed is looked up from the parsed approver). */
int wire__approval_parse(const uint8_t *buf, size_t len, wire_approval *out);

#endif
