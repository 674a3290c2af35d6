/* The power-cut VFS itself (crashvfs.h), through its sqlite3_vfs methods on files of its own: what a cut
 * keeps and what it undoes. The durability test (test_crash.c) is only as good as this model. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "crashvfs.h"
#include "test.h"
#include "test_sqlite.h"

static char dir[] = "/tmp/parley-crashvfs-XXXXXX";
static char db[128], wal[140];
static sqlite3_vfs *vfs;

static const int DB_FLAGS = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
static const int WAL_FLAGS = SQLITE_OPEN_WAL | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

static sqlite3_file *vopen(const char *path, int flags)
{
	sqlite3_file *f = calloc(1, (size_t)vfs->szOsFile);
	int out = 0;
	if (f == NULL || vfs->xOpen(vfs, path, f, flags, &out) != SQLITE_OK) {
		free(f);
		return NULL;
	}
	return f;
}

static void vclose(sqlite3_file *f)
{
	if (f == NULL)
		return;
	f->pMethods->xClose(f);
	free(f);
}

static int vwrite(sqlite3_file *f, const char *s, sqlite3_int64 off)
{
	return f->pMethods->xWrite(f, s, (int)strlen(s), off);
}

/* A fresh run: nothing open, no file, the database file already on the disk (synced, empty). */
static void fresh(void)
{
	TEST_EQ_INT(crashvfs_reset(), 0);
	unlink(db);
	unlink(wal);
	int fd = open(db, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
}

/* 1 when the file holds exactly `s` */
static int holds(const char *path, const char *s)
{
	size_t n = 0;
	unsigned char *b = test_file_read(path, &n);
	int ok = b != NULL && n == strlen(s) && memcmp(b, s, n) == 0;
	free(b);
	return ok;
}

static void test_unsynced_writes_undone(void)
{
	fresh();
	sqlite3_file *f = vopen(db, DB_FLAGS);
	TEST_CHECK(f != NULL);
	TEST_EQ_INT(vwrite(f, "synced", 0), SQLITE_OK);
	TEST_EQ_INT(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "SYNCED", 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "+appended", 6), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "hole", 100), SQLITE_OK);
	TEST_CHECK(!holds(db, "synced"));
	crashvfs_cut(NULL);
	TEST_CHECK(holds(db, "synced"));
	TEST_CHECK(crashvfs_dead());
	/* dead: nothing reaches the disk any more */
	char buf[6];
	TEST_EQ_INT(vwrite(f, "after", 0), SQLITE_IOERR_WRITE);
	TEST_EQ_INT(f->pMethods->xRead(f, buf, 6, 0), SQLITE_IOERR_READ);
	TEST_EQ_INT(f->pMethods->xSync(f, SQLITE_SYNC_FULL), SQLITE_IOERR_FSYNC);
	TEST_EQ_INT(vfs->xDelete(vfs, db, 1), SQLITE_OK);
	TEST_CHECK(holds(db, "synced"));
	TEST_EQ_INT(crashvfs_reset(), -1); /* a file is still open */
	vclose(f);
	TEST_EQ_INT(crashvfs_reset(), 0);
	TEST_CHECK(!crashvfs_dead());
}

static void test_truncation_undone(void)
{
	fresh();
	sqlite3_file *f = vopen(db, DB_FLAGS);
	TEST_EQ_INT(vwrite(f, "0123456789", 0), SQLITE_OK);
	TEST_EQ_INT(f->pMethods->xSync(f, 0), SQLITE_OK);
	TEST_EQ_INT(f->pMethods->xTruncate(f, 3), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "abcdef", 3), SQLITE_OK); /* rewrites what the truncation removed */
	TEST_CHECK(holds(db, "012abcdef"));
	crashvfs_cut(NULL);
	TEST_CHECK(holds(db, "0123456789"));
	vclose(f);
}

/* A new WAL disappears unless a directory sync (its own first sync) happened; its synced content stays. */
static void test_new_file(void)
{
	fresh();
	sqlite3_file *w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "frames", 0), SQLITE_OK);
	crashvfs_cut(NULL);
	TEST_CHECK(access(wal, F_OK) != 0);
	vclose(w);

	fresh();
	w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "frames", 0), SQLITE_OK);
	TEST_EQ_INT(w->pMethods->xSync(w, 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(w, "+more", 6), SQLITE_OK);
	crashvfs_cut(NULL);
	TEST_CHECK(holds(wal, "frames"));
	vclose(w);
}

/* A delete without a directory sync comes back with the last synced content, until a directory sync. */
static void test_delete(void)
{
	fresh();
	sqlite3_file *w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "synced", 0), SQLITE_OK);
	TEST_EQ_INT(w->pMethods->xSync(w, 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(w, "UNSYNC", 0), SQLITE_OK);
	vclose(w);
	TEST_EQ_INT(vfs->xDelete(vfs, wal, 0), SQLITE_OK);
	TEST_CHECK(access(wal, F_OK) != 0);
	crashvfs_cut(NULL);
	TEST_CHECK(holds(wal, "synced"));

	fresh();
	w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "synced", 0), SQLITE_OK);
	TEST_EQ_INT(w->pMethods->xSync(w, 0), SQLITE_OK);
	vclose(w);
	TEST_EQ_INT(vfs->xDelete(vfs, wal, 1), SQLITE_OK); /* with the directory sync */
	crashvfs_cut(NULL);
	TEST_CHECK(access(wal, F_OK) != 0);

	/* the deleted file is created again: the old one comes back until the new one's first sync
	 * syncs the directory */
	fresh();
	w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "old", 0), SQLITE_OK);
	TEST_EQ_INT(w->pMethods->xSync(w, 0), SQLITE_OK);
	vclose(w);
	TEST_EQ_INT(vfs->xDelete(vfs, wal, 0), SQLITE_OK);
	w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "new", 0), SQLITE_OK);
	crashvfs_cut(NULL);
	TEST_CHECK(holds(wal, "old"));
	vclose(w);

	fresh();
	w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "old", 0), SQLITE_OK);
	TEST_EQ_INT(w->pMethods->xSync(w, 0), SQLITE_OK);
	vclose(w);
	TEST_EQ_INT(vfs->xDelete(vfs, wal, 0), SQLITE_OK);
	w = vopen(wal, WAL_FLAGS);
	TEST_EQ_INT(vwrite(w, "new", 0), SQLITE_OK);
	TEST_EQ_INT(w->pMethods->xSync(w, 0), SQLITE_OK);
	crashvfs_cut(NULL);
	TEST_CHECK(holds(wal, "new"));
	vclose(w);
}

static void test_damage(void)
{
	char big[4 * CRASHVFS_SECTOR + 1];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	/* the newest unsynced write is torn after its first sector; older ones are lost */
	fresh();
	sqlite3_file *f = vopen(db, DB_FLAGS);
	TEST_EQ_INT(vwrite(f, "older", 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, big, 5), SQLITE_OK);
	crashvfs_damage d = {.tear_sectors = 1};
	crashvfs_cut(&d);
	size_t n = 0;
	unsigned char *b = test_file_read(db, &n);
	TEST_EQ_INT(n, 5 + CRASHVFS_SECTOR);
	TEST_CHECK(b != NULL && memcmp(b, "\0\0\0\0\0", 5) == 0 && b[5] == 'x' && b[n - 1] == 'x');
	free(b);
	vclose(f);

	/* every unsynced write survives: the disk kept its whole cache */
	fresh();
	f = vopen(db, DB_FLAGS);
	TEST_EQ_INT(vwrite(f, "one", 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "two", 3), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "TWO", 3), SQLITE_OK);
	d = (crashvfs_damage){.tear_sectors = 1, .survive_pct = 100};
	crashvfs_cut(&d);
	TEST_CHECK(holds(db, "oneTWO"));
	vclose(f);
}

static void test_armed(void)
{
	/* the 2nd sync never happens: the power fails instead */
	fresh();
	sqlite3_file *f = vopen(db, DB_FLAGS);
	crashvfs_arm(CRASHVFS_ON_SYNC, 2, NULL);
	TEST_EQ_INT(vwrite(f, "first", 0), SQLITE_OK);
	TEST_EQ_INT(f->pMethods->xSync(f, 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "second", 0), SQLITE_OK);
	TEST_EQ_INT(f->pMethods->xSync(f, 0), SQLITE_IOERR_FSYNC);
	TEST_CHECK(crashvfs_dead());
	TEST_CHECK(holds(db, "first"));
	vclose(f);

	/* the power fails during the 3rd write, which is torn */
	fresh();
	f = vopen(db, DB_FLAGS);
	crashvfs_damage d = {.tear_sectors = 1};
	crashvfs_arm(CRASHVFS_ON_WRITE, 3, &d);
	TEST_EQ_INT(vwrite(f, "a", 0), SQLITE_OK);
	TEST_EQ_INT(f->pMethods->xSync(f, 0), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "b", 1), SQLITE_OK);
	TEST_EQ_INT(vwrite(f, "c", 2), SQLITE_IOERR_WRITE);
	/* "b" lost; "c" (one byte, less than the sector the tear keeps) reached the disk */
	size_t n = 0;
	unsigned char *b = test_file_read(db, &n);
	TEST_CHECK(n == 3 && b != NULL && b[0] == 'a' && b[1] == '\0' && b[2] == 'c');
	free(b);
	crashvfs_stats s;
	crashvfs_get_stats(&s);
	TEST_EQ_INT(s.writes, 3);
	TEST_EQ_INT(s.syncs, 1);
	TEST_EQ_INT(s.kept, 1);
	vclose(f);
}

/* A whole SQLite database through the VFS: committed with synchronous=FULL survives, with OFF not. */
static int rows_after_cut(const char *sync)
{
	char sql[160];
	sqlite3 *h = NULL;
	fresh();
	unlink(db);
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; CREATE TABLE t(x);"
		 " INSERT INTO t VALUES (1), (2), (3);", sync);
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, CRASHVFS_NAME) != SQLITE_OK ||
	    sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return -3;
	}
	crashvfs_cut(NULL);
	sqlite3_close(h);
	TEST_EQ_INT(crashvfs_reset(), 0);
	return test_sqlite_int(db, "SELECT count(*) FROM t");
}

static void test_sqlite_database(void)
{
	TEST_EQ_INT(rows_after_cut("FULL"), 3);
	TEST_EQ_INT(rows_after_cut("OFF"), -2); /* not even the table survived */
	/* without shared memory SQLite cannot run WAL and keeps its rollback journal */
	sqlite3 *h = NULL;
	fresh();
	TEST_EQ_INT(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, CRASHVFS_NOSHM_NAME), SQLITE_OK);
	TEST_EQ_INT(sqlite3_exec(h, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	TEST_EQ_INT(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	TEST_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	TEST_EQ_STR((const char *)sqlite3_column_text(st, 0), "delete");
	sqlite3_finalize(st);
	sqlite3_close(h);
}

int main(void)
{
	if (mkdtemp(dir) == NULL || crashvfs_register() != SQLITE_OK)
		return 99;
	TEST_EQ_INT(crashvfs_register(), SQLITE_OK); /* idempotent */
	TEST_CHECK(sqlite3_vfs_find(NULL) != sqlite3_vfs_find(CRASHVFS_NAME)); /* never the default */
	vfs = sqlite3_vfs_find(CRASHVFS_NAME);
	snprintf(db, sizeof(db), "%s/v.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	TEST_RUN(test_unsynced_writes_undone);
	TEST_RUN(test_truncation_undone);
	TEST_RUN(test_new_file);
	TEST_RUN(test_delete);
	TEST_RUN(test_damage);
	TEST_RUN(test_armed);
	TEST_RUN(test_sqlite_database);
	test_remove_tree(dir);
	TEST_EXIT();
}
