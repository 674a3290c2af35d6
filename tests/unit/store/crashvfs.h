/* Tests: a SQLite VFS that simulates power cuts ("crash"), for the store's durability test.
 *
 * It wraps SQLite's default VFS (unix). Every write reaches the real file, but the VFS also remembers,
 * per file, what changed since that file's last xSync: each write or truncation with the bytes it
 * replaced. A power cut puts every file back in its last synced state: unsynced writes and truncations
 * are undone, a file created and never synced disappears, and a file deleted without syncing its
 * directory comes back with its last synced content. Optionally the newest unsynced write is torn
 * (its first sectors reach the disk) and other unsynced writes survive at random, as a disk that
 * reorders its cache would do. After the cut the VFS is dead: every read, write and sync fails and
 * every delete is dropped, so whatever the process does next (the store keeps running until the test
 * closes it) never reaches the disk, as if the process had died with the power.
 *
 * What it models, following SQLite's VFS contract (sqlite.org/c3ref/io_methods.html) and POSIX: only
 * xSync makes a file's content durable, and only a directory fsync makes the creations and deletions
 * of files in that directory durable. SQLite's unix VFS fsyncs the directory at the first xSync of a
 * journal or WAL it opened with SQLITE_OPEN_CREATE, and at an xDelete that asks for it (syncDir); the
 * simulation does the same at the same moments. A file that already exists when the VFS first sees it
 * is taken as synced, content and directory entry. Shared
 * memory (-shm) is not durable state and passes through: SQLite rebuilds it from the WAL after a crash.
 * The real fsync is skipped: the simulation, not the page cache, is the disk here, and the test runs
 * hundreds of cuts.
 *
 * Registered by name only (never the default), so only a connection that asks for CRASHVFS_NAME uses
 * it. CRASHVFS_NOSHM_NAME is the same VFS without shared memory, on which SQLite cannot run WAL: the
 * store must refuse it. Thread-safe: one mutex around every recorded operation and around the cut. */
#ifndef PARLEY_TEST_CRASHVFS_H
#define PARLEY_TEST_CRASHVFS_H
#include <stdint.h>

#define CRASHVFS_NAME "crash"
#define CRASHVFS_NOSHM_NAME "crash-noshm"
#define CRASHVFS_SECTOR 512

/* How much of the unsynced state reaches the disk at the cut. All zero: none. */
typedef struct crashvfs_damage {
	unsigned tear_sectors; /* the newest unsynced write keeps its first n sectors (its tail is lost) */
	unsigned survive_pct;  /* every other unsynced write reaches the disk with this probability */
	uint32_t seed;         /* of the survive_pct draws */
} crashvfs_damage;

/* A cut the VFS triggers itself, in the middle of SQLite's work. */
enum crashvfs_event {
	CRASHVFS_NEVER = 0,
	CRASHVFS_ON_SYNC,  /* the k-th xSync does not happen: the power fails instead */
	CRASHVFS_ON_WRITE, /* the power fails during the k-th xWrite (torn by tear_sectors) */
};

typedef struct crashvfs_stats {
	unsigned syncs, writes;   /* on the files the simulation tracks, since crashvfs_reset */
	unsigned undone;          /* writes and truncations undone by the cut */
	unsigned kept;            /* unsynced writes that reached the disk anyway (torn or surviving) */
	unsigned files_removed;   /* created and never synced */
	unsigned files_restored;  /* deleted without a directory sync */
	int dead;                 /* the power was cut */
} crashvfs_stats;

/* Registers both VFSes (idempotent). SQLITE_OK or SQLite's error. */
int crashvfs_register(void);
/* Forgets every file and revives the VFS, for the next run. Call only when no file is open through
 * it (store closed): returns -1 and changes nothing otherwise. */
int crashvfs_reset(void);
/* Arms a cut triggered by the k-th event (k >= 1) counted from now. */
void crashvfs_arm(enum crashvfs_event ev, unsigned k, const crashvfs_damage *d);
/* Cuts the power now (no-op when already dead). d may be NULL (no damage). */
void crashvfs_cut(const crashvfs_damage *d);
int crashvfs_dead(void);
void crashvfs_get_stats(crashvfs_stats *out);

#endif
