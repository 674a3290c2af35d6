/* What the two files of the auth store share (store thread only):
 *   auth.c           the schema "server.auth", the components, the level overlay on a loaded thread
 *   auth_requests.c  the requests, their answers, the credentials and their expiry
 *   auth_emails.c    the known emails of a thread's customer, per entity */
#ifndef PARLEYD_STORE_SQLITE_AUTH_INTERNAL_H
#define PARLEYD_STORE_SQLITE_AUTH_INTERNAL_H
#include <stdint.h>

#include "store/sql/threads_internal.h"

#define STORE_LEVEL_AUTHENTICATED 2 /* VerificationLevel */

void sql__auth_col_text(sql_stmt *s, int col, char *dst, size_t cap);
/* A component by id: PARLEY_E_NO_SUCH_COMPONENT. */
int sql__auth_comp_load(store_be *b, uint64_t id, store_auth_component *c);
/* PARLEY_OK if account is staff (admin, agent, bot; never a gateway) of the list, *admin set;
 * PARLEY_E_NOT_ENTITY_MEMBER otherwise. */
int sql__auth_staff_role(const thr_staff *st, uint64_t account, int *admin);
/* *known = 1 when email (lower-cased) is a known email of t's customer for t's entity. */
int sql__auth_email_known(store_be *b, const store_thread_info *t, const char *email, int *known);
/* The known emails of t's customer for t's entity into a->emails (sorted). */
int sql__auth_emails_load(store_be *b, const store_thread_info *t, store_auth_args *a);

#endif
