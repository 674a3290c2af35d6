/* The backend vtable behind store.h. A backend keeps all of its query language inside itself; the
 * generic part (store.c) owns the thread, the queue, group commit and completion delivery.
 *
 * All ops are called on the store thread only, one at a time. Transaction calls nest exactly like
 * this per batch: begin, then per write job {savepoint, run, release | rollback_savepoint}, then commit
 * (or rollback if commit failed). Reads run with `run` outside any transaction.
 */
#ifndef PARLEYD_STORE_BACKEND_H
#define PARLEYD_STORE_BACKEND_H

#include "store/store.h"

typedef struct store_backend_ops {
	const char *name;
	/* Opens, configures durability and applies migrations. PARLEY_E_STORE if the data was written
	 * by a newer schema version than the backend knows. */
	int (*open)(const store_config *cfg, void **be);
	/* Checkpoints and closes. */
	void (*close)(void *be);
	int (*begin)(void *be);
	int (*commit)(void *be);
	int (*rollback)(void *be);
	int (*savepoint)(void *be);
	int (*release)(void *be);
	int (*rollback_savepoint)(void *be);
	/* Executes one job: fills its results, returns its status (also stored by the caller). */
	int (*run)(void *be, store_job *job);
	/* Optional maintenance between batches, after their completions were delivered (no transaction
	 * open). `idle`: nothing is queued. The SQLite backend checkpoints its WAL here, off the commit path. */
	void (*maintain)(void *be, int idle);
} store_backend_ops;

extern const store_backend_ops store__sqlite_ops;

#endif
