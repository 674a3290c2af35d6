/* SQLite ops of the key server and the relay (keys_relay.c), kept apart from sqlite.c's accounts ops.
 * Same rules as sqlite.c: store thread only, statements prepared once and cached. The schema is
 * migration step 2 in sqlite.c. */
#ifndef PARLEYD_STORE_SQLITE_EXT_H
#define PARLEYD_STORE_SQLITE_EXT_H
#include <sqlite3.h>

#include "store/store.h"

typedef struct sqlite_ext sqlite_ext;

int sqlite_ext__new(sqlite3 *db, sqlite_ext **out);
void sqlite_ext__free(sqlite_ext *x);
/* Runs a key server / relay job; PARLEY_E_UNSUPPORTED for any other op. */
int sqlite_ext__run(sqlite_ext *x, store_job *j);

#endif
