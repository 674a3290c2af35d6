/* The raw-wire staff model the entity and thread tests share (t23, t30): accounts registered on the
 * wire, an entity's staff list kept here as the test's model of what the registry holds and signed
 * with a test entity key through lib/wire's codec, and the entity calls that carry such a list.
 *
 * Every call returns the Response status (-1 when the connection failed) so a test can expect a
 * refusal; set-up helpers that must succeed check with IT_EQ. */
#ifndef PARLEY_IT_STAFFMODEL_H
#define PARLEY_IT_STAFFMODEL_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "crypto/crypto.h"
#include "wire/stafflist.h"
#include "wire/wire.h"

typedef struct tacct {
	char handle[33];
	uint8_t pk[32], sk[64]; /* device 1's Ed25519 keys */
	uint64_t id;
	uint32_t regid; /* device 1's registration id (0: no keys uploaded) */
	int fd;         /* an authenticated connection of device 1 */
} tacct;

/* Registers `handle` (device 1) on the server at port and keeps the connection; keys: also uploads
 * device 1's keys (a device is sent envelopes only once it has keys). The id is the one a fresh server
 * gives: accounts are numbered 1, 2, ... in registration order, so register every account through here,
 * and set sm_next_id to 0 when starting another fresh server (the last id given so far). */
extern uint64_t sm_next_id;
void sm_mk(int port, tacct *a, const char *handle, int keys);

/* sm_mk for each handle of the space-separated list `handles`, into out[0], out[1], ... in that order. */
void sm_mk_many(int port, int keys, const char *handles, tacct *const *out);

typedef struct model {
	char handle[33];
	crypto_keypair ek; /* the entity key */
	uint64_t version, entity_id;
	uint8_t lock_mode, admins_exempt;
	size_t n;
	wire_staff_member m[WIRE_STAFF_MAX]; /* ascending account ids, as the codec wants them */
} model;

/* An empty model of entity `handle` with a fresh entity key. */
void sm_model_init(model *md, const char *handle);
/* Puts `a` in the model as role (WIRE_ROLE_*) with rules (masked and set), primary or not; role 0
 * takes it out. */
void sm_model_set(model *md, const tacct *a, int role, int primary, uint8_t rules);
/* The model's list at `version`, signed with key (NULL: the entity key), into out (initialised here;
 * the caller frees). */
void sm_sign(const model *md, uint64_t version, const crypto_keypair *key, dynbuf *out);

/* One request on fd; the response's status. Pushes read past are dropped, counting in sm_seen_removed
 * the EntityStaffChanged{removed} ones (a deauthorization may be pushed before or after a response).
 * keep: the response frame (the caller frees it). */
extern int sm_seen_removed;
int sm_call(int fd, Parley__Wire__Request *r, wire_frame *keep);

/* EntityCreate with the model's list at version 1; on success entity_id and version are set. */
int sm_ent_create(int fd, model *md);
/* A new entity `handle` (a fresh model, its key, these rules) created by `primary`, its primary admin:
 * the model at version 1. */
void sm_entity(model *md, const tacct *primary, const char *handle, uint8_t lock_mode, uint8_t admins_exempt);
/* EntityMember for `who`: add as admin, remove, or transfer the primary flag to it; with the model's
 * list at `version` signed by key (NULL: the entity key). The model is not changed. */
int sm_member(int fd, const model *md, const tacct *who, int remove, int transfer, uint64_t version,
	      const crypto_keypair *key);
/* EntityStaff (rules or members' device lists) with the model's list at `version`, signed by the entity
 * key. The model is not changed. */
int sm_staff(int fd, const model *md, uint64_t version);
/* EntityCode (ttl_s 0: the server's default): the code into code[cap] (optional). */
int sm_code(int fd, const char *entity, uint32_t ttl_s, char *code, size_t cap);
/* The same for role (WIRE_ROLE_*; 0: the server's default, agent). */
int sm_code_role(int fd, const char *entity, uint32_t ttl_s, int role, char *code, size_t cap);
/* The account key every candidate of these tests joins with. */
void sm_cand_key(uint8_t key[33]);
/* EntityJoin with code, carrying devlist (NULL: none) as the candidate's device list; the request id
 * and the answer's retry_after_ms into *req_id, *retry (optional). */
int sm_join(int fd, const char *entity, const char *code, const char *devlist, uint64_t *req_id, uint64_t *retry);
/* EntityDecide with what it carries: a list (NULL: none), an approval (len 0: none); the answer's
 * staff_version into *version (optional). */
int sm_decide(int fd, const char *entity, uint64_t req_id, int approve, const dynbuf *list, const uint8_t *appr,
	      size_t appr_len, uint64_t *version);

#endif
