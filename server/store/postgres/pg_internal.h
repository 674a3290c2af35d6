/* The PostgreSQL driver's own state, shared by its files (engine.c: connection, durability check,
 * migrations, transactions; stmt.c: the statement cache, ?N -> $N, binding, binary results; schema.c:
 * the DDL of every schema). The domain logic above it (server/store/sql/) sees only sql.h.
 *
 * Everything here runs on the store thread only (open and close excepted, like every backend). */
#ifndef PARLEYD_STORE_PG_INTERNAL_H
#define PARLEYD_STORE_PG_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

/* ---- The schema contract (schema.c fills it) ----
 * One entry per schema, applied in this order: "server", "server.contacts", "server.entities",
 * "server.threads", "server.auth", "server.auth_jti" (the names of the SQLite side). steps[i] is the
 * DDL that takes the schema from version i to i+1 (one or more statements separated by ';', run in one
 * round trip); a database at version v gets steps[v..n_steps-1]. Steps are append-only: a released
 * step is never edited, a change is a new step. The engine records the version per name in
 * schema_version(name TEXT PRIMARY KEY, version INT NOT NULL), which it creates itself. */
typedef struct pg_schema {
	const char *name;
	const char *const *steps;
	size_t n_steps;
} pg_schema;

extern const pg_schema pg__schemas[];
extern const size_t pg__n_schemas;

/* ---- rewrite.c (pure, unit-tested without a server) ----
 * sql.h's ?N parameters -> PostgreSQL's $N, skipping string literals '...' (with '' inside), quoted
 * identifiers "..." and -- comments. The output has the input's length (?N and $N are as long), so
 * cap >= strlen(in) + 1 always suffices. *n_params: the highest N used (0 if none). PARLEY_E_INVAL
 * for a bare '?' (no number: our SQL always numbers its parameters, and PostgreSQL reads a bare ? as
 * an operator), a number of 0 or above PG_MAX_PARAMS, an unterminated literal, or cap too small. */
#define PG_MAX_PARAMS 65535
int pg__rewrite_params(const char *in, char *out, size_t cap, int *n_params);

#endif
