/* Store, statement helpers over sql.h shared by every domain file, whatever the driver. */
#include <string.h>

#include "store/sql/sql.h"

int sql__step_done(sql_stmt *st)
{
	int rc = sql__step(st);
	sql__reset(st);
	return rc;
}

int sql__query_int(store_be *b, const char *sql, int64_t p1, int64_t p2, int64_t *v)
{
	sql_stmt *st = sql__stmt(b, sql);
	if (st == NULL)
		return SQL_ERROR;
	sql__bind_i64(st, 1, p1);
	if (sql__param_count(st) >= 2)
		sql__bind_i64(st, 2, p2);
	int rc = sql__step(st);
	if (rc == SQL_ROW)
		*v = sql__col_i64(st, 0);
	sql__reset(st);
	return rc;
}

void sql__col_blob_n(sql_stmt *st, int col, uint8_t *dst, size_t n)
{
	const void *p = sql__col_blob(st, col);
	if (p != NULL && (size_t)sql__col_bytes(st, col) == n)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

const store_run_fn sql__run_table[STORE_OP__COUNT] = {
#define SQL_RUN_(OP, name, kind, domain) [STORE_OP_##OP] = sql__##name,
	STORE_OPS(SQL_RUN_)
#undef SQL_RUN_
};
