/* Internal to the store module (store.c, job.c): what the store thread and the clients need of the
 * op table. */
#ifndef PARLEY_STORE_JOB_H
#define PARLEY_STORE_JOB_H

#include "store/store.h"

/* 1 for an op listed in STORE_OPS (never STORE_OP_NONE): only those reach the backend. */
int store__op_known(enum store_op op);

/* Releases the heap arrays of the job's domain member and zeroes its results, so a callback that
 * looks at them sees nothing dangling (a cancelled job). */
void store__job_drop_args(store_job *j);

#endif
