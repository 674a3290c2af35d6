/* Tests: the power-cut simulating VFS (crashvfs.h says what it models). Written from SQLite's VFS
 * documentation (sqlite3_vfs, sqlite3_io_methods): a wrapper whose sqlite3_file is followed in memory by
 * the default VFS's own file object, to which every method forwards. */
#include "crashvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

/* One unsynced change of a file: a write or a truncation. Undoing it = writing `old` back at `off`,
 * then truncating to `size_before` (which removes what a write appended, and is a no-op otherwise). */
struct change {
	sqlite3_int64 off;         /* write: its offset; truncation: the new size */
	sqlite3_int64 size_before; /* file size before the change */
	unsigned char *old;        /* the bytes it replaced or removed (within size_before) */
	size_t old_len;
	unsigned char *data;       /* write: the bytes written; NULL for a truncation */
	size_t data_len;
	uint64_t seq;              /* write order across all files (0: truncation) */
};

/* What the simulation knows about one path. The record outlives the handles (it is the "disk"). */
struct rec {
	struct rec *next;
	char *path;
	int exists;  /* a file is there now */
	int durable; /* its directory entry would survive a cut (directory synced since it was created,
	              * or there from the start) */
	struct change *ch; /* unsynced changes of the current file, oldest first */
	size_t n_ch, cap_ch;
	unsigned char *ghost; /* deleted without a directory sync: its last synced content comes back */
	size_t ghost_len;
	int has_ghost;
};

typedef struct cv_file {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's file, right after this struct */
	struct rec *rec;    /* NULL: not simulated (temporary files, gone after a crash anyway) */
	int dirsync;        /* the next sync also syncs the directory (as the unix VFS does once for a
	                     * journal or WAL opened with SQLITE_OPEN_CREATE) */
} cv_file;

#define CV_HDR ((sizeof(cv_file) + 15) & ~(size_t)15)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sqlite3_vfs *root;
static struct rec *recs;
static unsigned open_files;
static uint64_t write_seq;
static atomic_int dead;
static crashvfs_stats st;
static struct {
	enum crashvfs_event ev;
	unsigned k, count;
	crashvfs_damage d;
} armed;

/* --- records --- */

static void change_free(struct change *c)
{
	free(c->old);
	free(c->data);
}

static void rec_forget_changes(struct rec *r)
{
	for (size_t i = 0; i < r->n_ch; i++)
		change_free(&r->ch[i]);
	r->n_ch = 0;
}

static void rec_drop_ghost(struct rec *r)
{
	free(r->ghost);
	r->ghost = NULL;
	r->ghost_len = 0;
	r->has_ghost = 0;
}

static struct rec *rec_find(const char *path, int add)
{
	for (struct rec *r = recs; r != NULL; r = r->next)
		if (strcmp(r->path, path) == 0)
			return r;
	if (!add)
		return NULL;
	struct rec *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->path = strdup(path)) == NULL) {
		free(r);
		return NULL;
	}
	/* first sight: what is on the disk already counts as synced */
	r->exists = r->durable = access(path, F_OK) == 0;
	r->next = recs;
	recs = r;
	return r;
}

static struct change *rec_push(struct rec *r)
{
	if (r->n_ch == r->cap_ch) {
		size_t cap = r->cap_ch ? r->cap_ch * 2 : 16;
		struct change *n = realloc(r->ch, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		r->ch = n;
		r->cap_ch = cap;
	}
	struct change *c = &r->ch[r->n_ch++];
	memset(c, 0, sizeof(*c));
	return c;
}

/* The directory of `path` was fsynced: every creation and deletion in it is now durable. */
static void dir_synced(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash != NULL ? (size_t)(slash - path) + 1 : 0;
	for (struct rec *r = recs; r != NULL; r = r->next) {
		const char *rs = strrchr(r->path, '/');
		size_t rn = rs != NULL ? (size_t)(rs - r->path) + 1 : 0;
		if (rn != n || strncmp(r->path, path, n) != 0)
			continue;
		if (r->exists)
			r->durable = 1;
		else
			rec_drop_ghost(r);
	}
}

/* --- the disk, through plain POSIX calls (the cut works on paths, whatever is open) --- */

static int write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* xorshift32: the survive_pct draws, reproducible from the seed */
static uint32_t draw(uint32_t *s)
{
	uint32_t x = *s ? *s : 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* Puts the file back in its last synced state, then lets some unsynced writes through: the newest
 * write of all (`newest_seq`) keeps its first tear_sectors sectors, the others survive with
 * survive_pct. Surviving writes are replayed oldest first over the synced content: the disk then holds,
 * byte by byte, the newest surviving write or the synced data. d == NULL: no damage at all. */
static void rec_revert(struct rec *r, const crashvfs_damage *d, uint64_t newest_seq, uint32_t *rng)
{
	int fd = open(r->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	for (size_t i = r->n_ch; i-- > 0;) {
		struct change *c = &r->ch[i];
		if (c->old_len > 0)
			(void)write_all(fd, c->old, c->old_len, (off_t)c->off);
		if (ftruncate(fd, (off_t)c->size_before) != 0)
			break;
		st.undone++;
	}
	for (size_t i = 0; d != NULL && i < r->n_ch; i++) {
		struct change *c = &r->ch[i];
		size_t keep = 0;
		if (c->data == NULL)
			continue; /* unsynced truncations never survive */
		if (c->seq == newest_seq) {
			size_t torn = (size_t)d->tear_sectors * CRASHVFS_SECTOR;
			keep = torn < c->data_len ? torn : c->data_len;
		} else if (d->survive_pct > 0 && draw(rng) % 100 < d->survive_pct) {
			keep = c->data_len;
		}
		if (keep > 0 && write_all(fd, c->data, keep, (off_t)c->off) == 0)
			st.kept++;
	}
	close(fd);
}

static unsigned char *read_whole(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	off_t n = lseek(fd, 0, SEEK_END);
	if (n >= 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		size_t got = 0;
		while (got < (size_t)n) {
			ssize_t r = pread(fd, buf + got, (size_t)n - got, (off_t)got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		*len = got;
	}
	close(fd);
	return buf;
}

static void write_whole(const char *path, const unsigned char *p, size_t n)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	(void)write_all(fd, p, n, 0);
	close(fd);
}

/* The cut, under mu. Touching the files through new descriptors releases the process's POSIX locks on
 * them (close() does that); harmless: after the cut nothing reaches the disk any more. */
static void cut_locked(const crashvfs_damage *d)
{
	uint64_t newest = 0;
	uint32_t rng = d != NULL ? d->seed : 0;
	if (atomic_load(&dead))
		return;
	for (struct rec *r = recs; r != NULL; r = r->next)
		for (size_t i = 0; r->exists && r->durable && i < r->n_ch; i++)
			if (r->ch[i].seq > newest)
				newest = r->ch[i].seq;
	for (struct rec *r = recs; r != NULL; r = r->next) {
		if (r->exists && r->durable) {
			rec_revert(r, d, newest, &rng);
		} else if (r->exists) {
			/* created and never synced: its directory entry is not on the disk */
			st.undone += (unsigned)r->n_ch;
			if (unlink(r->path) == 0)
				st.files_removed++;
		}
		if ((!r->exists || !r->durable) && r->has_ghost) {
			write_whole(r->path, r->ghost, r->ghost_len);
			st.files_restored++;
		}
		rec_forget_changes(r);
	}
	atomic_store(&dead, 1);
	st.dead = 1;
}

/* --- io methods --- */

static int cv_close(sqlite3_file *f)
{
	cv_file *p = (cv_file *)f;
	int rc = p->real->pMethods->xClose(p->real);
	pthread_mutex_lock(&mu);
	open_files--;
	pthread_mutex_unlock(&mu);
	return rc;
}

static int cv_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	cv_file *p = (cv_file *)f;
	if (atomic_load(&dead))
		return SQLITE_IOERR_READ;
	return p->real->pMethods->xRead(p->real, buf, amt, off);
}

/* Records a change of [off, off + len) (a write) or a truncation to off (len < 0) before it happens:
 * the file's size and the bytes about to be replaced or removed. */
static struct change *record(cv_file *p, sqlite3_int64 off, const void *data, int len)
{
	/* the size from the path, not xFileSize: the unix VFS reports a 1-byte file as empty */
	struct stat sb;
	if (stat(p->rec->path, &sb) != 0)
		return NULL;
	sqlite3_int64 size = sb.st_size;
	struct change *c = rec_push(p->rec);
	if (c == NULL)
		return NULL;
	c->off = off;
	c->size_before = size;
	sqlite3_int64 end = len >= 0 ? off + len : size;
	if (end > size)
		end = size;
	if (end > off) {
		c->old_len = (size_t)(end - off);
		if ((c->old = malloc(c->old_len)) == NULL ||
		    p->real->pMethods->xRead(p->real, c->old, (int)c->old_len, off) != SQLITE_OK)
			goto fail;
	}
	if (len >= 0) {
		c->data_len = (size_t)len;
		if ((c->data = malloc(c->data_len ? c->data_len : 1)) == NULL)
			goto fail;
		memcpy(c->data, data, c->data_len);
		c->seq = ++write_seq;
	}
	return c;
fail:
	change_free(c);
	p->rec->n_ch--;
	return NULL;
}

/* Counts an event of the armed kind; 1 when it is the one that cuts the power. */
static int trigger(enum crashvfs_event ev)
{
	return armed.ev == ev && ++armed.count == armed.k;
}

static int cv_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	cv_file *p = (cv_file *)f;
	int rc;
	pthread_mutex_lock(&mu);
	if (atomic_load(&dead)) {
		rc = SQLITE_IOERR_WRITE;
	} else if (p->rec != NULL && record(p, off, buf, amt) == NULL) {
		rc = SQLITE_IOERR_NOMEM;
	} else {
		rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
		if (p->rec != NULL && rc != SQLITE_OK)
			change_free(&p->rec->ch[--p->rec->n_ch]);
		if (p->rec != NULL && rc == SQLITE_OK) {
			st.writes++;
			if (trigger(CRASHVFS_ON_WRITE)) {
				cut_locked(&armed.d);
				rc = SQLITE_IOERR_WRITE;
			}
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static int cv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	cv_file *p = (cv_file *)f;
	int rc;
	pthread_mutex_lock(&mu);
	if (atomic_load(&dead)) {
		rc = SQLITE_IOERR_TRUNCATE;
	} else if (p->rec != NULL && record(p, size, NULL, -1) == NULL) {
		rc = SQLITE_IOERR_NOMEM;
	} else {
		rc = p->real->pMethods->xTruncate(p->real, size);
		if (p->rec != NULL && rc != SQLITE_OK)
			change_free(&p->rec->ch[--p->rec->n_ch]);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* The only way content becomes durable. The real fsync is skipped (crashvfs.h). */
static int cv_sync(sqlite3_file *f, int flags)
{
	cv_file *p = (cv_file *)f;
	int rc = SQLITE_OK;
	(void)flags;
	pthread_mutex_lock(&mu);
	if (atomic_load(&dead)) {
		rc = SQLITE_IOERR_FSYNC;
	} else if (p->rec != NULL) {
		st.syncs++;
		if (trigger(CRASHVFS_ON_SYNC)) {
			cut_locked(&armed.d);
			rc = SQLITE_IOERR_FSYNC;
		} else {
			rec_forget_changes(p->rec);
			if (p->dirsync)
				dir_synced(p->rec->path);
			p->dirsync = 0;
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static int cv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xFileSize(p->real, size);
}

static int cv_lock(sqlite3_file *f, int lock)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xLock(p->real, lock);
}

static int cv_unlock(sqlite3_file *f, int lock)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xUnlock(p->real, lock);
}

static int cv_check_reserved(sqlite3_file *f, int *out)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int cv_file_control(sqlite3_file *f, int op, void *arg)
{
	cv_file *p = (cv_file *)f;
	/* the unix VFS would grow the file itself (ftruncate or writes of its own) behind our back */
	if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE)
		return SQLITE_OK;
	return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int cv_sector_size(sqlite3_file *f)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xSectorSize(p->real);
}

static int cv_device_characteristics(sqlite3_file *f)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int cv_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, pp);
}

static int cv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void cv_shm_barrier(sqlite3_file *f)
{
	cv_file *p = (cv_file *)f;
	p->real->pMethods->xShmBarrier(p->real);
}

static int cv_shm_unmap(sqlite3_file *f, int delete_flag)
{
	cv_file *p = (cv_file *)f;
	return p->real->pMethods->xShmUnmap(p->real, delete_flag);
}

/* No memory mapping: every read goes through xRead, so none bypasses the simulation. */
static int cv_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	(void)f;
	(void)off;
	(void)amt;
	*pp = NULL;
	return SQLITE_OK;
}

static int cv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	(void)f;
	(void)off;
	(void)p;
	return SQLITE_OK;
}

static const sqlite3_io_methods io_shm = {
	.iVersion = 3,
	.xClose = cv_close,
	.xRead = cv_read,
	.xWrite = cv_write,
	.xTruncate = cv_truncate,
	.xSync = cv_sync,
	.xFileSize = cv_file_size,
	.xLock = cv_lock,
	.xUnlock = cv_unlock,
	.xCheckReservedLock = cv_check_reserved,
	.xFileControl = cv_file_control,
	.xSectorSize = cv_sector_size,
	.xDeviceCharacteristics = cv_device_characteristics,
	.xShmMap = cv_shm_map,
	.xShmLock = cv_shm_lock,
	.xShmBarrier = cv_shm_barrier,
	.xShmUnmap = cv_shm_unmap,
	.xFetch = cv_fetch,
	.xUnfetch = cv_unfetch,
};

/* version 1, no shared memory, so SQLite cannot use WAL (journal_mode=WAL keeps the old mode): io_shm
 * without its version-2 and -3 methods, made by crashvfs_register */
static sqlite3_io_methods io_noshm;

/* --- the VFS --- */

static sqlite3_vfs vfs_shm, vfs_noshm;

static int cv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	cv_file *p = (cv_file *)f;
	const int journals = SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL;
	const int durable_kinds = SQLITE_OPEN_MAIN_DB | journals;
	int rc;
	memset(p, 0, sizeof(*p));
	p->real = (sqlite3_file *)((char *)f + CV_HDR);
	if (atomic_load(&dead))
		return SQLITE_CANTOPEN;
	pthread_mutex_lock(&mu);
	if (name != NULL && (flags & durable_kinds) && !(flags & SQLITE_OPEN_DELETEONCLOSE)) {
		p->rec = rec_find(name, 1);
		if (p->rec == NULL) {
			pthread_mutex_unlock(&mu);
			return SQLITE_NOMEM;
		}
	}
	int existed = name != NULL && access(name, F_OK) == 0;
	rc = root->xOpen(root, name, p->real, flags, out_flags);
	if (rc == SQLITE_OK) {
		if (p->rec != NULL && !existed) {
			/* created now: not durable before its first sync; a ghost of a deleted one may remain */
			rec_forget_changes(p->rec);
			p->rec->exists = 1;
			p->rec->durable = 0;
		} else if (p->rec != NULL && !p->rec->exists) {
			p->rec->exists = p->rec->durable = 1; /* put there from outside the VFS */
		}
		p->dirsync = p->rec != NULL && (flags & journals) && (flags & SQLITE_OPEN_CREATE);
		p->base.pMethods = vfs == &vfs_noshm ? &io_noshm : &io_shm;
		open_files++;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static int cv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	int rc = SQLITE_OK;
	(void)vfs;
	pthread_mutex_lock(&mu);
	if (atomic_load(&dead))
		goto out; /* the process is dead: nothing reaches the disk */
	struct rec *r = rec_find(name, 1);
	if (r == NULL) {
		rc = SQLITE_IOERR_NOMEM;
		goto out;
	}
	if (r->exists && r->durable && !sync_dir) {
		/* the unlink may not survive the cut: keep the content the disk would bring back */
		rec_drop_ghost(r);
		rec_revert(r, NULL, 0, NULL);
		r->ghost = read_whole(name, &r->ghost_len);
		r->has_ghost = r->ghost != NULL;
	}
	rc = root->xDelete(root, name, sync_dir);
	if (rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT) {
		rec_forget_changes(r);
		r->exists = r->durable = 0;
		if (sync_dir)
			dir_synced(name);
	}
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

static int cv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return root->xAccess(root, name, flags, out);
}

static int cv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return root->xFullPathname(root, name, n, out);
}

static void *cv_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return root->xDlOpen(root, name);
}

static void cv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	root->xDlError(root, n, msg);
}

static void (*cv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return root->xDlSym(root, h, sym);
}

static void cv_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	root->xDlClose(root, h);
}

static int cv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return root->xRandomness(root, n, out);
}

static int cv_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return root->xSleep(root, us);
}

static int cv_current_time(sqlite3_vfs *vfs, double *t)
{
	(void)vfs;
	return root->xCurrentTime(root, t);
}

static int cv_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	return root->xGetLastError(root, n, msg);
}

static int cv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
	(void)vfs;
	return root->xCurrentTimeInt64(root, t);
}

static void vfs_init(sqlite3_vfs *v, const char *name)
{
	memset(v, 0, sizeof(*v));
	v->iVersion = 2;
	v->szOsFile = (int)(CV_HDR + (size_t)root->szOsFile);
	v->mxPathname = root->mxPathname;
	v->zName = name;
	v->xOpen = cv_open;
	v->xDelete = cv_delete;
	v->xAccess = cv_access;
	v->xFullPathname = cv_full_pathname;
	v->xDlOpen = cv_dlopen;
	v->xDlError = cv_dlerror;
	v->xDlSym = cv_dlsym;
	v->xDlClose = cv_dlclose;
	v->xRandomness = cv_randomness;
	v->xSleep = cv_sleep;
	v->xCurrentTime = cv_current_time;
	v->xGetLastError = cv_last_error;
	v->xCurrentTimeInt64 = cv_current_time64;
}

int crashvfs_register(void)
{
	int rc = SQLITE_OK;
	pthread_mutex_lock(&mu);
	if (root == NULL) {
		sqlite3_vfs *def = sqlite3_vfs_find(NULL);
		if (def == NULL || def->iVersion < 2) {
			rc = SQLITE_ERROR;
		} else {
			root = def;
			io_noshm = io_shm;
			io_noshm.iVersion = 1;
			io_noshm.xShmMap = NULL;
			io_noshm.xShmLock = NULL;
			io_noshm.xShmBarrier = NULL;
			io_noshm.xShmUnmap = NULL;
			io_noshm.xFetch = NULL;
			io_noshm.xUnfetch = NULL;
			vfs_init(&vfs_shm, CRASHVFS_NAME);
			vfs_init(&vfs_noshm, CRASHVFS_NOSHM_NAME);
			rc = sqlite3_vfs_register(&vfs_shm, 0);
			if (rc == SQLITE_OK)
				rc = sqlite3_vfs_register(&vfs_noshm, 0);
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int crashvfs_reset(void)
{
	pthread_mutex_lock(&mu);
	if (open_files != 0) {
		pthread_mutex_unlock(&mu);
		return -1;
	}
	while (recs != NULL) {
		struct rec *r = recs;
		recs = r->next;
		rec_forget_changes(r);
		rec_drop_ghost(r);
		free(r->ch);
		free(r->path);
		free(r);
	}
	memset(&st, 0, sizeof(st));
	memset(&armed, 0, sizeof(armed));
	write_seq = 0;
	atomic_store(&dead, 0);
	pthread_mutex_unlock(&mu);
	return 0;
}

void crashvfs_arm(enum crashvfs_event ev, unsigned k, const crashvfs_damage *d)
{
	pthread_mutex_lock(&mu);
	armed.ev = ev;
	armed.k = k;
	armed.count = 0;
	memset(&armed.d, 0, sizeof(armed.d));
	if (d != NULL)
		armed.d = *d;
	pthread_mutex_unlock(&mu);
}

void crashvfs_cut(const crashvfs_damage *d)
{
	pthread_mutex_lock(&mu);
	cut_locked(d);
	pthread_mutex_unlock(&mu);
}

int crashvfs_dead(void)
{
	return atomic_load(&dead);
}

void crashvfs_get_stats(crashvfs_stats *out)
{
	pthread_mutex_lock(&mu);
	*out = st;
	pthread_mutex_unlock(&mu);
}
