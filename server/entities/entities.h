/* Entity registry service (docs/protocol.md §12): businesses with admins, agents and bots.
 *
 * The service checks what needs no database (sizes were checked by lib/wire; here the staff list's
 * signature, the handle rule, the code's form) and hands every call to one store op that checks the
 * caller's role and the call's effect in one transaction (store/sql/entities.c). No right is cached
 * in a connection: a member removed on one loop is refused on its very next call on every loop. */
#ifndef PARLEYD_ENTITIES_H
#define PARLEYD_ENTITIES_H
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "dispatch/service.h"

#define ENTITY_CODE_CHARS 12 /* Crockford base32, 60 random bits */

typedef struct entities_config {
	unsigned code_ttl_s;
	unsigned max_members, max_pending, max_codes;
	double guess_cap, guess_per_ms, acct_cap, acct_per_ms;
} entities_config;

extern const service entities__service;

void entities__config_from(entities_config *c, const parleyd_config *cfg);
/* A new code: out = "XXXX-XXXX-XXXX" (15 bytes + NUL), hash = SHA-256 of its 12 characters. */
void entities__code_new(char out[16], uint8_t hash[32]);
/* SHA-256 of a typed code after normalisation (dashes and spaces dropped, case folded, Crockford's
 * I/L -> 1 and O -> 0). A malformed code hashes to something no code has: it is an unknown code. */
void entities__code_hash(const char *typed, uint8_t hash[32]);
/* Copies a signed staff list into the job and verifies it (structure + the embedded key's signature):
 * PARLEY_E_STAFF_LIST_INVALID, PARLEY_E_NOMEM. */
int entities__job_list(store_job *j, const uint8_t *list, size_t len);
/* Copies a join approval record (lib/wire/approval.h) into the job after checking its form:
 * PARLEY_E_APPROVAL_INVALID, PARLEY_E_NOMEM. Its signature and fields are checked by the store op. */
int entities__job_approval(store_job *j, const uint8_t *rec, size_t len);

#endif
