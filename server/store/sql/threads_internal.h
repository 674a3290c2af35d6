/* What the two files of the thread store share (store thread only):
 *   threads.c      the schema, loading a thread and the entity's staff list, the event check; open,
 *                  get, list, and the entity removal hook
 *   thread_ops.c   send (the fan-out into the relay's queues, the first responder's lock) and the
 *                  membership events
 * Every function takes the job whose caller it checks and whose results it fills. */
#ifndef PARLEYD_STORE_SQLITE_THREADS_INTERNAL_H
#define PARLEYD_STORE_SQLITE_THREADS_INTERNAL_H
#include <stdint.h>

#include "store/sql/sql.h"
#include "wire/stafflist.h"
#include "wire/threadev.h"

enum { THR_OPEN = 1, THR_LOCKED = 2, THR_CLOSED = 3 }; /* ThreadStatus */
#define THR_LOCK_FIRST_RESPONDER 1                   /* staff list lock_mode */

/* an entity's current signed staff list, parsed (members point into buf) */
typedef struct thr_staff {
	uint8_t *buf;
	size_t len;
	wire_stafflist l;
	int parsed;
} thr_staff;

/* Loads the staff list of entity (PARLEY_E_NO_SUCH_ENTITY, PARLEY_E_STORE); free with thr_staff_free. */
int sql__thr_staff(store_be *b, uint64_t entity, thr_staff *st);
void sql__thr_staff_free(thr_staff *st);
/* The caller's staff entry (NULL: not staff), and whether it is an admin. */
const wire_staff_member *sql__thr_staff_of(const thr_staff *st, uint64_t account, int *admin);
/* 1: account is t's handling agent and its effective MAY_TRANSFER is set in the current list (it may
 * forward the thread: docs/protocol.md §13.3). */
int sql__thr_may_transfer(const thr_staff *st, const store_thread_info *t, uint64_t account);
/* The thread with its members (customer first) into *t: PARLEY_E_NO_SUCH_THREAD. */
int sql__thr_load(store_be *b, uint64_t thread_id, store_thread_info *t);
int sql__thr_is_member(const store_thread_info *t, uint64_t account);
/* Verifies a signed event by the job's caller device (its stored key) for thread t (NULL: an OPEN of
 * entity j->thr.entity) at version t->version + 1 (1) and the staff list's version, of `kind` (0: any
 * but OPEN and LOCK's own checks are the caller's). PARLEY_E_THREAD_EVENT_INVALID with j->thr.why. */
int sql__thr_check_event(store_be *b, store_job *j, const store_thread_info *t, const thr_staff *st,
			    const uint8_t *buf, size_t len, unsigned kind, wire_threadev *ev);
/* Appends the event (version ev) and writes t's state (status, agents, version, updated_ms). */
int sql__thr_commit(store_be *b, const store_thread_info *t, const uint8_t *ev, size_t len, uint64_t now_ms);
int sql__thr_add_member(store_be *b, store_thread_info *t, uint64_t account, int role, uint64_t now_ms);
int sql__thr_del_member(store_be *b, store_thread_info *t, uint64_t account);
/* The job's one result info (allocated on first use) = *t. */
int sql__thr_result(store_job *j, const store_thread_info *t);
/* Fails with code, the specific reason kept for the answer's message. */
int sql__thr_refuse(store_job *j, int code, const char *why);

#endif
