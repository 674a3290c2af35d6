/* Internals of entities on the client (include/parley/entity.h), shared by entity.c (the calls) and
 * entity_state.c (client.db: the entity keys this device holds, the pins; verification of a fetched
 * entity into a parley_entity).
 */
#ifndef PARLEY_CLIENT_ENTITY_INTERNAL_H
#define PARLEY_CLIENT_ENTITY_INTERNAL_H
#include <parley/entity.h>

#include "client/client_internal.h"
#include "wire/approval.h"
#include "wire/devlist.h"
#include "wire/stafflist.h"

/* A verified entity: the fetched record and its parsed staff list (members point into raw). */
struct parley_entity {
	char handle[PARLEY_HANDLE_MAX + 1];
	uint64_t id;  /* the server's id of the entity (lists from version 2 on carry it; version 1: 0) */
	uint8_t *raw; /* the signed staff list as fetched */
	size_t raw_len;
	wire_stafflist sl;
	int key_here; /* this device holds the entity key */
};

/* One entity call through its stages (entity.c): each stage is one request. */
enum { ST_GET, ST_OWN_LIST, ST_MEMBER_LIST, ST_REQUESTS, ST_CALL };
/* K_SWEEP: the entity key holder signs the lists of requests other admins approved (entity_approve.c);
 * K_TRANSFER: the primary admin role and the entity key move to another admin. */
enum { K_GET, K_CREATE, K_CODE, K_JOIN, K_REQUESTS, K_DECIDE, K_ADD_ADMIN, K_REMOVE, K_RULES, K_SWEEP, K_TRANSFER };
#define SWEEP_RETRIES 3 /* a sweep racing another staff change fetches again at most this often */

typedef struct entity_op {
	client_op op;
	int kind, stage;
	char entity[PARLEY_HANDLE_MAX + 1];
	char member[PARLEY_HANDLE_MAX + 1]; /* add-admin, remove */
	char name[PARLEY_ENTITY_NAME_MAX + 1];
	char code[PARLEY_ENROL_CODE_MAX + 1];
	unsigned ttl_s;
	int role, approve;
	uint64_t request_id;
	parley_rules_change rules;
	int rules_member; /* rules: for member, not the entity */
	parley_entity *ent;                /* verified by GET */
	uint8_t ak[PARLEY_ENTITY_KEY_BYTES]; /* create, join: this account's key */
	uint8_t *blob;                     /* the device list of this account or of the new member */
	size_t blob_len;
	uint64_t member_id;
	uint8_t *list; /* the new signed staff list */
	size_t list_len;
	uint8_t ek[PARLEY_ENTITY_KEY_BYTES]; /* create: the new entity key */
	uint8_t approval[WIRE_APPROVAL_MAX_BYTES]; /* decide without the entity key: this device's approval */
	size_t approval_len;
	int retries; /* K_SWEEP: fetches left after a concurrent change */
	union {
		Parley__Wire__EntityGetRequest get;
		Parley__Wire__GetDeviceListRequest devlist;
		Parley__Wire__EntityCreateRequest create;
		Parley__Wire__EntityCodeRequest code;
		Parley__Wire__EntityJoinRequest join;
		Parley__Wire__EntityRequestsRequest requests;
		Parley__Wire__EntityDecideRequest decide;
		Parley__Wire__EntityMemberRequest member;
		Parley__Wire__EntityStaffRequest staff;
	} body;
	union {
		parley_entity_cb get;
		parley_entity_id_cb id;
		parley_entity_code_cb code;
		parley_join_requests_cb requests;
		parley_done_cb done;
	} cb;
	void *user;
} entity_op;

extern const client_op_vtable client__entity_vt;
void client__entity_op_free(entity_op *o);
/* This account's key (public half) from the client state: PARLEY_E_NO_ACCOUNT_KEY when unknown. */
int client__entity_own_key(parley_client *c, uint8_t pub[PARLEY_ENTITY_KEY_BYTES]);

/* client.db tables of entities (own schema "client.entities", migrated on first use). */
int client__entity_ready(parley_client *c);
/* PARLEY_ROLE_* (= WIRE_ROLE_*) of a join request's EntityRole: bot, gateway, else agent. */
int client__entity_join_role(int wire_role);
/* The entity key pair this device holds for handle: PARLEY_OK, PARLEY_E_ENTITY_KEY_REQUIRED (none).
 * priv is secret: the caller wipes it. */
int client__entity_key_load(parley_client *c, const char *handle, uint8_t pub[PARLEY_ENTITY_KEY_BYTES],
			    uint8_t priv[32]);
/* A new entity key for handle, saved before the create request goes out (a crash after the server
 * accepted it must not lose the key); PARLEY_E_EXISTS when this device already created that entity. */
int client__entity_key_new(parley_client *c, const char *handle, uint8_t pub[PARLEY_ENTITY_KEY_BYTES]);
/* A key pair received in a transfer (keymove.c) for the verified entity entity_id: stored like a created
 * one. PARLEY_OK if this very key is held already; PARLEY_E_EXISTS (nothing changed) if another is. */
int client__entity_key_import(parley_client *c, const char *handle, uint64_t entity_id, const uint8_t priv[32],
			      const uint8_t pub[PARLEY_ENTITY_KEY_BYTES]);
/* The create succeeded (entity id known) or failed (the unused key is deleted). */
int client__entity_key_done(parley_client *c, const char *handle, uint64_t entity_id, int ok);
/* Verifies a fetched entity for handle (signature by its key, names the entity), checks and updates the
 * pins (entity key TOFU: PARLEY_E_UNTRUSTED_IDENTITY; version: PARLEY_E_STAFF_LIST_ROLLBACK) and makes
 * *out. */
int client__entity_verify(parley_client *c, const char *handle, const Parley__Wire__Entity *w, parley_entity **out);
/* The kept signed staff list of handle (the pinned version, as last verified), verified again under the
 * pinned entity key: PARLEY_E_NO_SUCH_ENTITY when none is kept (fetch the entity first),
 * PARLEY_E_STAFF_LIST_INVALID. Free with parley_entity_free. */
int client__entity_kept(parley_client *c, const char *handle, parley_entity **out);
/* Checks and updates the pins of handle (TOFU key, highest version; see client__entity_verify). */
int client__entity_pin(parley_client *c, const char *handle, const uint8_t key[PARLEY_ENTITY_KEY_BYTES],
		       uint64_t version);
/* Forgets the pin of handle (parley_entity_trust). */
int client__entity_unpin(parley_client *c, const char *handle);
/* The pinned entity key of handle: PARLEY_OK or PARLEY_E_NOT_FOUND. */
int client__entity_pinned_key(parley_client *c, const char *handle, uint8_t key[PARLEY_ENTITY_KEY_BYTES]);
/* Verifies a member's signed device list (devlist, len) as the staff list gives it: it must verify and
 * be signed by account_key for account_id. PARLEY_E_DEVICE_LIST_INVALID otherwise;
 * PARLEY_E_NO_DEVICE_LIST when len is 0. */
int client__entity_member_devlist(const uint8_t *devlist, size_t len, uint64_t account_id,
				  const uint8_t account_key[PARLEY_ENTITY_KEY_BYTES], wire_devlist *out);

/* Checks a member-to-be's signed device list (verifies under key for account_id, and key is the one
 * pinned for `who`: peers.c); errmsg names who. */
int client__entity_check_devlist(parley_client *c, const char *who, const uint8_t *buf, size_t len,
				 uint64_t account_id, const uint8_t key[PARLEY_ENTITY_KEY_BYTES]);
/* The next version of the verified list with one change (entity.c): add inserted, remove_id dropped,
 * or o's rules, or (K_TRANSFER) the primary flag moved to o->member; signed with the key held here. */
int client__entity_next_list(parley_client *c, entity_op *o, const wire_staff_member *add, uint64_t remove_id);

/* entity_approve.c: approvals by admins without the entity key, and the key holder's side. */
/* Signs this device's approval of request j into o->approval (after checking the candidate's list). */
int client__entity_approval_make(parley_client *c, entity_op *o, const Parley__Wire__EntityJoinInfo *j);
/* Checks j's approval against the verified staff list of e: signed by a device that the approver's
 * device list in that staff list names, the approver an admin in it, and naming exactly request j.
 * PARLEY_E_APPROVAL_INVALID (errmsg says why) otherwise. */
int client__entity_approval_check(parley_client *c, const parley_entity *e, const Parley__Wire__EntityJoinInfo *j);
/* Starts a sweep of entity (a no-op unless this device holds its key): fetch, verify, sign the list of
 * each validly approved request, one after another. Errors go to on_error. */
void client__entity_sweep(parley_client *c, const char *entity);
/* The handles of the entities whose key this device holds, up to max; *n how many were written. */
int client__entity_keys_held(parley_client *c, char (*out)[PARLEY_HANDLE_MAX + 1], size_t max, size_t *n);
/* After a committed primary transfer: the entity key goes end to end to the new primary's devices and
 * stays here until they confirm (keymove.c). */
int client__entity_send_key(parley_client *c, entity_op *o);

/* The safety number of this account's key `mine` and `theirs` (identifier: other, an entity or a
 * candidate's handle), as parley_entity_safety_number shows it (entity_view.c). */
int client__entity_fingerprint(parley_client *c, const uint8_t mine[PARLEY_ENTITY_KEY_BYTES], const char *other,
			       const uint8_t theirs[PARLEY_ENTITY_KEY_BYTES], char out[PARLEY_SAFETY_NUMBER_LEN + 1]);

#endif
