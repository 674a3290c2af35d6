/* SQLite backend, disk space: the reserve file, the "full" state and the way back out of it.
 *
 * When the disk fills, a write fails with SQLITE_FULL. Sends failing is fine; acks failing is not,
 * because acks are what empties the queues: a full disk could never drain itself. A delete needs no
 * new database pages (freed pages go to the freelist), but in WAL mode every changed page is first
 * appended to the -wal file, which needs room on the disk. So:
 *
 *  - at open, `<database>.reserve` (storage_reserve_bytes) is allocated on the database's filesystem;
 *  - the first SQLITE_FULL puts the backend in the full state and deletes the reserve: that space is
 *    now free for the WAL frames of deletes;
 *  - while full, the generic store runs only the ops that free space (ack, purge, device removal),
 *    each in its own transaction followed by a checkpoint, so the WAL restarts from its beginning
 *    and reuses the same file space instead of growing (sqlite__space_maintain);
 *  - every second while full (and after each batch), the state is re-checked: the WAL is truncated
 *    (its space goes back to the filesystem), the reserve is re-created when the filesystem has room
 *    for it, and the full state ends when there is room for new data again: free pages inside the
 *    database (what the acks freed) plus free space on the filesystem beyond the reserve, at least
 *    twice the reserve (1 MiB at the least) plus what the WAL grows to between checkpoints, so the
 *    next few commits cannot flip the state back at once.
 *
 * Everything here runs on the store thread (or at open/close). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <parley/error.h>

#include "base/log.h"
#include "common/alloc.h"
#include "store/sqlite/sqlite_internal.h"

#define MODULE "store"
#define MIN_ROOM (1u << 20)

/* Allocates the reserve file. 0 if it is there afterwards. */
static int reserve_create(sqlite_be *b)
{
	if (b->reserve_bytes == 0 || b->reserve_path == NULL)
		return -1;
	int fd = open(b->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* real blocks, not a sparse file: releasing it must give the space back; one left larger by an
	 * earlier configuration is cut to the size configured now */
	int rc = ftruncate(fd, 0) == 0 ? posix_fallocate(fd, 0, (off_t)b->reserve_bytes) : errno;
	if (rc == 0 && fsync(fd) != 0)
		rc = errno;
	close(fd);
	if (rc != 0) {
		unlink(b->reserve_path);
		return -1;
	}
	b->reserve_present = 1;
	return 0;
}

static void reserve_release(sqlite_be *b)
{
	if (!b->reserve_present)
		return;
	if (unlink(b->reserve_path) != 0)
		log_error(MODULE, "cannot delete %s: %m", b->reserve_path);
	b->reserve_present = 0;
}

int sqlite__space_open(sqlite_be *b, const char *db_path, uint64_t reserve_bytes, unsigned max_page_count)
{
	char pragma[64];
	size_t n = strlen(db_path) + sizeof(".reserve");
	b->reserve_bytes = reserve_bytes;
	if (max_page_count > 0) {
		snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count = %u;", max_page_count);
		if (sqlite3_exec(b->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
			return sqlite__error(&b->base, "max_page_count");
	}
	b->db_path = parley__strdup(db_path);
	b->reserve_path = parley__malloc(n);
	if (b->db_path == NULL || b->reserve_path == NULL)
		return PARLEY_E_NOMEM;
	snprintf(b->reserve_path, n, "%s.reserve", db_path);
	if (reserve_bytes == 0) {
		unlink(b->reserve_path); /* one left by an earlier configuration is space nobody uses */
		return PARLEY_OK;
	}
	if (reserve_create(b) != 0)
		log_warn(MODULE, "cannot reserve %llu bytes in %s (%m): a full disk may not drain itself",
			 (unsigned long long)reserve_bytes, b->reserve_path);
	return PARLEY_OK;
}

void sqlite__space_close(sqlite_be *b)
{
	/* the reserve stays on disk: the next start finds it in place */
	parley__free(b->reserve_path);
	parley__free(b->db_path);
}

void sqlite__space_full(sqlite_be *b)
{
	if (b->full)
		return;
	b->full = 1;
	log_error(MODULE, "%s: disk full: refusing new data, still serving acks and deletes%s", b->db_path,
		  b->reserve_present ? " (reserve released)" : " (no reserve to release)");
	reserve_release(b);
}

static int64_t pragma_int(sqlite_be *b, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(b->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Bytes new data can take: free database pages plus what the filesystem (after the reserve) and
 * max_page_count still allow the file to grow by. *page gets the page size. */
static uint64_t room(sqlite_be *b, uint64_t *page_size)
{
	struct statvfs v;
	int64_t page = pragma_int(b, "PRAGMA page_size"), free_pages = pragma_int(b, "PRAGMA freelist_count");
	int64_t pages = pragma_int(b, "PRAGMA page_count"), max_pages = pragma_int(b, "PRAGMA max_page_count");
	if (page <= 0 || free_pages < 0 || pages < 0 || max_pages < 0)
		return 0;
	*page_size = (uint64_t)page;
	uint64_t fs = 0;
	if (statvfs(b->db_path, &v) == 0)
		fs = (uint64_t)v.f_bavail * v.f_frsize;
	uint64_t keep = b->reserve_present ? 0 : b->reserve_bytes; /* the reserve still to re-create */
	fs = fs > keep ? fs - keep : 0;
	uint64_t grow = max_pages > pages ? (uint64_t)(max_pages - pages) * (uint64_t)page : 0;
	return (uint64_t)free_pages * (uint64_t)page + (fs < grow ? fs : grow);
}

void sqlite__space_maintain(sqlite_be *b, int idle)
{
	if (b->full) {
		/* deletes ran: the checkpoint lets the next transaction reuse the WAL from its start; when
		 * idle, TRUNCATE gives the WAL's file space back to the filesystem */
		int mode = idle ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE;
		int log_frames = 0, done = 0;
		if (sqlite3_wal_checkpoint_v2(b->db, NULL, mode, &log_frames, &done) == SQLITE_OK &&
		    done == log_frames)
			b->wal_pages = 0;
	}
	if (!idle)
		return;
	if (b->full) {
		/* Not while the disk is still full: the reserve just released is the room the acks draining
		 * it commit into; re-created at once, it would leave them none. */
		uint64_t page = 0, r = room(b, &page);
		/* the WAL grows to the checkpoint threshold between checkpoints: that much must fit too, or
		 * the disk fills again with the next few commits */
		uint64_t need = 2 * (b->reserve_bytes > MIN_ROOM ? b->reserve_bytes : MIN_ROOM) +
				(uint64_t)b->ckpt_pages * page;
		if (page == 0 || r < need)
			return;
		b->full = 0;
		log_info(MODULE, "%s: space is back (%llu bytes free for new data): accepting writes again", b->db_path,
			 (unsigned long long)r);
	}
	if (!b->reserve_present && b->reserve_bytes > 0 && reserve_create(b) == 0)
		log_info(MODULE, "%s: disk reserve re-created (%llu bytes)", b->reserve_path,
			 (unsigned long long)b->reserve_bytes);
}

int sqlite__space_state(store_be *base)
{
	sqlite_be *b = sqlite__be(base);
	if (b->full)
		return STORE_SPACE_FULL;
	return b->reserve_present || b->reserve_bytes == 0 ? STORE_SPACE_OK : STORE_SPACE_NO_RESERVE;
}
