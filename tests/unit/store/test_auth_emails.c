/* server/store/sql/auth.c's schema step 2 at the store level: the known emails of step 1 were keyed
 * by account alone (and no call filled them); step 2 replaces the table by one keyed by (entity,
 * customer identity, email). A file at "server.auth" version 1, with a row in the old table, opens at
 * the current version with the new table, empty; a fresh file has it too. */
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include <parley/error.h>

#include "store/store.h"
#include "test.h"
#include "test_sqlite.h"

static char dir[64];
static char path[128];

#define VERSION "SELECT version FROM schema_version WHERE name = 'server.auth'"
#define NEW_COLUMNS                                                                                  \
	"SELECT count(*) FROM pragma_table_info('auth_known_emails') WHERE name IN ('entity_id', 'channel'," \
	" 'channel_user', 'added_ms')"

static void open_close(void)
{
	store_config cfg = {.path = path};
	store *s = NULL;
	TEST_EQ_INT(store__open(&cfg, &s), PARLEY_OK);
	if (s != NULL)
		store__close(s);
}

static void test_step2(void)
{
	int current;

	snprintf(path, sizeof(path), "%s/auth.db", dir);
	open_close();
	current = test_sqlite_int(path, VERSION);
	TEST_CHECK(current >= 2);
	TEST_EQ_INT(test_sqlite_int(path, NEW_COLUMNS), 4);
	/* back to step 1: its table, with a row no call could have written */
	TEST_EQ_INT(test_sqlite_exec(path, "DROP TABLE auth_known_emails;"
					   " CREATE TABLE auth_known_emails (account_id INTEGER NOT NULL, email TEXT NOT NULL,"
					   " PRIMARY KEY (account_id, email)) WITHOUT ROWID;"
					   " INSERT INTO auth_known_emails VALUES (1, 'old@example.com');"
					   " UPDATE schema_version SET version = 1 WHERE name = 'server.auth'"),
		    SQLITE_OK);
	TEST_EQ_INT(test_sqlite_int(path, NEW_COLUMNS), 0);
	open_close();
	TEST_EQ_INT(test_sqlite_int(path, VERSION), current);
	TEST_EQ_INT(test_sqlite_int(path, NEW_COLUMNS), 4);
	TEST_EQ_INT(test_sqlite_int(path, "SELECT count(*) FROM auth_known_emails"), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/parley-auth-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	TEST_RUN(test_step2);
	test_remove_tree(dir);
	TEST_EXIT();
}
