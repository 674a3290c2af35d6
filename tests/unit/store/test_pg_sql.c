/* server/store/postgres/rewrite.c: sql.h's ?N parameters -> PostgreSQL's $N (pure, no server). */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "store/postgres/pg_internal.h"
#include "test.h"

/* Rewrites `in`; checks the answer, and on success the text and the parameter count. */
static void check(const char *in, int want_rc, const char *want, int want_n)
{
	char out[256];
	int n = -1;
	int rc = pg__rewrite_params(in, out, sizeof(out), &n);
	TEST_EQ_INT(rc, want_rc);
	if (rc != PARLEY_OK || want_rc != PARLEY_OK)
		return;
	if (strcmp(out, want) != 0)
		fprintf(stderr, "# %s\n#  -> %s\n# want %s\n", in, out, want);
	TEST_EQ_STR(out, want);
	TEST_EQ_INT(n, want_n);
}

static void test_params(void)
{
	check("SELECT 1", PARLEY_OK, "SELECT 1", 0);
	check("SELECT a FROM t WHERE b = ?1 AND c = ?2", PARLEY_OK, "SELECT a FROM t WHERE b = $1 AND c = $2", 2);
	/* ?10 is parameter ten, not ?1 followed by 0 */
	check("VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", PARLEY_OK,
	      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", 10);
	/* the highest number counts, whatever the order and repeats */
	check("x = ?3 OR y = ?1 OR z = ?3", PARLEY_OK, "x = $3 OR y = $1 OR z = $3", 3);
	check("f(?1)", PARLEY_OK, "f($1)", 1); /* at the end of the text */
	check("?12", PARLEY_OK, "$12", 12);
}

static void test_quoted(void)
{
	/* a ? inside a string literal is text, not a parameter */
	check("SELECT '?1' || ?1", PARLEY_OK, "SELECT '?1' || $1", 1);
	check("SELECT 'a?b', ?2", PARLEY_OK, "SELECT 'a?b', $2", 2);
	/* a doubled quote stays inside the literal */
	check("SELECT 'it''s ?1', ?1", PARLEY_OK, "SELECT 'it''s ?1', $1", 1);
	check("SELECT '', ?1", PARLEY_OK, "SELECT '', $1", 1);
	/* quoted identifiers too */
	check("SELECT \"odd?1\" FROM t WHERE x = ?1", PARLEY_OK, "SELECT \"odd?1\" FROM t WHERE x = $1", 1);
	check("SELECT \"a\"\"?2\" , ?1", PARLEY_OK, "SELECT \"a\"\"?2\" , $1", 1);
	check("TEXT COLLATE \"C\" = ?1", PARLEY_OK, "TEXT COLLATE \"C\" = $1", 1);
	/* and -- comments, up to the end of the line */
	check("SELECT ?1 -- not ?2\n, ?3", PARLEY_OK, "SELECT $1 -- not ?2\n, $3", 3);
}

static void test_refused(void)
{
	check("SELECT ?", PARLEY_E_INVAL, NULL, 0);          /* bare ?: PostgreSQL's operator */
	check("SELECT ? 1", PARLEY_E_INVAL, NULL, 0);
	check("SELECT ?0", PARLEY_E_INVAL, NULL, 0);
	check("SELECT ?65536", PARLEY_E_INVAL, NULL, 0);
	check("SELECT ?99999999999999999999", PARLEY_E_INVAL, NULL, 0);
	check("SELECT 'open ?1", PARLEY_E_INVAL, NULL, 0);   /* unterminated literal */
	check("SELECT \"open ?1", PARLEY_E_INVAL, NULL, 0);
	char out[8];
	int n;
	TEST_EQ_INT(pg__rewrite_params("SELECT ?1", out, sizeof(out), &n), PARLEY_E_INVAL); /* cap too small */
}

int main(void)
{
	TEST_RUN(test_params);
	TEST_RUN(test_quoted);
	TEST_RUN(test_refused);
	TEST_EXIT();
}
