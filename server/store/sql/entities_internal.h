/* What the two files of the entity registry's SQLite backend share (store thread only):
 *   entities.c  the schema, the entity and its members, the staff-list check; create, get, member
 *               (add, remove, primary transfer), staff
 *   enrol.c     enrolment: codes, guess buckets, join requests, their approvals and decisions
 * Every function takes the job whose caller it checks and whose results it fills. */
#ifndef PARLEYD_STORE_SQLITE_ENTITIES_INTERNAL_H
#define PARLEYD_STORE_SQLITE_ENTITIES_INTERNAL_H
#include <stdint.h>

#include "store/sql/sql.h"

enum { REQ_PENDING = 0, REQ_APPROVED = 1, REQ_DENIED = 2 };
enum { CODE_OPEN = 0, CODE_USED = 1, CODE_DENIED = 2 };

/* the entity row as the ops need it */
typedef struct ent_row {
	uint64_t id, primary, version;
} ent_row;

/* Loads the entity named by j->ent.entity (PARLEY_E_NO_SUCH_ENTITY); with `full`, its record and staff
 * list into the job too. */
int sql__ent_load(store_be *b, store_job *j, ent_row *e, int full);
/* The role of account in entity (0: not a member). */
int sql__ent_role(store_be *b, uint64_t entity, uint64_t account, int *role);
/* Loads the entity and checks the caller is an admin of it (PARLEY_E_NOT_ENTITY_ADMIN). */
int sql__ent_load_admin(store_be *b, store_job *j, ent_row *e, int *caller_role);
/* Runs a write with two or three integer parameters (p3 ignored when the SQL has two). */
int sql__ent_exec3(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t p3, const char *what);
/* PARLEY_E_TOO_MANY_MEMBERS if the entity has j->ent.max_members members: one more does not fit. */
int sql__ent_room(store_be *b, const store_job *j, uint64_t entity);
int sql__ent_add_member(store_be *b, uint64_t entity, uint64_t account, int role, uint64_t now_ms);
/* The members (ascending; with admins_only the admins) into j->ent.accounts; roles: optional, parallel
 * (never filled for admins_only). */
int sql__ent_members(store_be *b, store_job *j, uint64_t entity, int admins_only, int **roles);
/* The job's signed list must be exactly the registry after the op's change, then becomes the entity's
 * (see entities.c). Leaves the members in j->ent.accounts. */
int sql__ent_check_list(store_be *b, store_job *j, const ent_row *e);

#endif
