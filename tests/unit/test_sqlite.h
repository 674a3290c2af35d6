/* Tests: looking at a SQLite file from outside the code under test (its own connection, or its bytes),
 * to check what that code wrote, or that it wrote nothing. */
#ifndef PARLEY_TEST_SQLITE_H
#define PARLEY_TEST_SQLITE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* First column of the first row of `sql` on the file, through a connection of its own: -1 when there
 * is no row, -2 on error. */
static inline int test_sqlite_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	int v = -2;
	if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

/* Runs `sql` on the file through a connection of its own; the sqlite3_exec result. */
static inline int test_sqlite_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* The whole file (malloc'd, caller frees; NULL if unreadable). */
static inline unsigned char *test_file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long n = ftell(f);
		if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL)
			*len = fread(buf, 1, (size_t)n, f);
	}
	fclose(f);
	return buf;
}

/* 1 when the file holds exactly `before` (from test_file_read), which it frees. */
static inline int test_file_unchanged(const char *path, unsigned char *before, size_t before_len)
{
	size_t n = 0;
	unsigned char *now = test_file_read(path, &n);
	int same = before != NULL && now != NULL && n == before_len && memcmp(before, now, n) == 0;
	free(before);
	free(now);
	return same;
}
#endif
