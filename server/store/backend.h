/* The backend vtable behind store.h. A backend keeps all of its query language inside itself; the
 * generic part (store.c) owns the thread, the queue, group commit and completion delivery.
 *
 * All functions are called on the store thread only, one at a time (open and close excepted: they run
 * on the thread of store__open / store__close, before the store thread starts and after it stopped).
 * Transaction calls nest exactly like this per batch: begin, then per write job {savepoint, run,
 * release | rollback_savepoint}, then commit (or rollback if commit failed). Reads run outside any
 * transaction, after the batch's commit.
 */
#ifndef PARLEYD_STORE_BACKEND_H
#define PARLEYD_STORE_BACKEND_H

#include "store/store.h"

/* A backend's connection state. Each backend defines `struct store_be` in its own files; the generic
 * store only passes the pointer around, so no cast sits between the vtable and the backend. */
typedef struct store_be store_be;

/* Executes one job: fills its results, returns its status (also stored by the caller). */
typedef int (*store_run_fn)(store_be *be, store_job *job);

typedef struct store_backend_ops {
	const char *name;
	/* Opens, configures durability and applies migrations. PARLEY_E_STORE if the data was written
	 * by a newer schema version than the backend knows. */
	int (*open)(const store_config *cfg, store_be **be);
	/* Checkpoints and closes. */
	void (*close)(store_be *be);
	int (*begin)(store_be *be);
	int (*commit)(store_be *be);
	int (*rollback)(store_be *be);
	int (*savepoint)(store_be *be);
	int (*release)(store_be *be);
	int (*rollback_savepoint)(store_be *be);
	/* run[op] for every op of STORE_OPS, indexed by enum store_op (STORE_OP__COUNT entries). A backend
	 * builds it from STORE_OPS, so one that lacks an op does not link. */
	const store_run_fn *run;
	/* Optional maintenance between batches, after their completions were delivered (no transaction
	 * open). `idle`: nothing is queued. The SQLite backend checkpoints its WAL here, off the commit path. */
	void (*maintain)(store_be *be, int idle);
	/* Disk space: STORE_SPACE_OK, STORE_SPACE_FULL (a write failed for want of space and there is
	 * no room again yet: only ops that free space may run) or STORE_SPACE_NO_RESERVE (writes run,
	 * but the reserve that lets a full disk drain itself could not be re-created). While not OK,
	 * maintain(be, 1) is also called every second, so space coming back is noticed without traffic. */
	int (*space)(store_be *be);
	/* Optional: 1 when jobs can run now (connected), 0 while the database is unreachable. NULL: always
	 * ready (SQLite). While not ready, store.c calls maintain(be, 0) before each batch (the backend
	 * reconnects there, with its own backoff) and fails the batch at once if still not ready, and
	 * maintain(be, 1) every second while idle, so readiness comes back without traffic. */
	int (*ready)(store_be *be);
} store_backend_ops;

extern const store_backend_ops store__sqlite_ops;
/* server/store/postgres/engine.c: selected by store_config.url (postgres:// or postgresql://) */
extern const store_backend_ops store__pg_ops;
/* "postgres://user@host:port/db" of a connection URL, without its password, for logs. */
void store__pg_describe(const char *url, char *out, size_t cap);

#endif
