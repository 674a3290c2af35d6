/* The generic store: job queue, the store thread with group commit, per-loop completion delivery. */
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "store/backend.h"
#include "store/job.h"

#define MODULE "store"

struct store {
	const store_backend_ops *ops;
	store_be *be;
	unsigned max_batch;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* store thread: work queued or stopping */
	pthread_cond_t sync_cv; /* store__run_sync waiters */
	store_job *head, *tail; /* guarded by mu */
	size_t queued;          /* jobs between head and tail; guarded by mu */
	size_t queue_max;       /* store_queue_max */
	int stopping;           /* guarded by mu */

	atomic_uint_fast64_t commits, jobs, errors, batches;
	atomic_int space;       /* enum store_space, as of the last batch or maintenance */
	atomic_int ready;       /* the backend's ready(), as of the last batch or maintenance */
};

struct store_client {
	store *s;
	store_wake_fn wake;
	void *wake_arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* signalled when a completion is queued (store__client_close waits) */
	store_job *done_head, *done_tail; /* guarded by mu */
	unsigned inflight;      /* submitted, callback not yet run: touched on the loop thread only */
	const void *owner;      /* tag of the jobs submitted now: loop thread only */
};

/* Sync jobs (store__run_sync) have no client; arg_ points at this. */
struct sync_wait {
	int done;
};

/* Ops admitted whatever the queue holds and whatever the disk: they free space (an ack deletes what
 * it acknowledges, the purge what expired, a device removal its queue), and a fetch is what delivers
 * the backlog, so refusing them would keep a busy or full server from draining itself. Their number
 * is bounded elsewhere: acks and removals are requests (conn_max_requests, loop_max_requests), a
 * connection has at most one fetch in flight, the purge runs from one timer. */
static int op_drains(enum store_op op)
{
	return op == STORE_OP_ACK || op == STORE_OP_PURGE_EXPIRED || op == STORE_OP_REMOVE_DEVICE ||
	       op == STORE_OP_FETCH_QUEUE;
}

/* Runs one job through the backend's table. An unknown op never reaches the backend. */
static int run_job(store *s, store_job *j)
{
	if (j->cancelled_)
		return PARLEY_E_CLOSED;
	if (!store__op_known(j->op))
		return PARLEY_E_UNSUPPORTED;
	if (j->caller_device != 0) {
		int rc = s->ops->run[STORE_OP_CHECK_CALLER](s->be, j); /* store.h: caller_account */
		if (rc != PARLEY_OK)
			return rc;
	}
	return s->ops->run[j->op](s->be, j);
}

/* --- store thread --- */

static void deliver(store *s, store_job *j)
{
	if (j->status != PARLEY_OK) {
		atomic_fetch_add(&s->errors, 1);
		metrics__inc(METRIC_STORE_ERRORS);
	}
	atomic_fetch_add(&s->jobs, 1);
	metrics__inc(METRIC_STORE_JOBS);
	j->next_ = NULL;
	if (j->client_ == NULL) {
		struct sync_wait *w = j->arg_;
		pthread_mutex_lock(&s->mu);
		w->done = 1;
		pthread_cond_broadcast(&s->sync_cv);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	store_client *c = j->client_;
	/* wake under the client's lock: store__client_close takes this lock before it can conclude that
	 * nothing is in flight, so the client is never freed while we still touch it */
	pthread_mutex_lock(&c->mu);
	if (c->done_tail != NULL)
		c->done_tail->next_ = j;
	else
		c->done_head = j;
	c->done_tail = j;
	pthread_cond_signal(&c->cv);
	c->wake(c->wake_arg);
	pthread_mutex_unlock(&c->mu);
}

/* All write jobs of a batch in one transaction, each in its own savepoint. Completions are delivered
 * only after the commit returned, so "acknowledged" means durable. */
static void run_writes(store *s, store_job **w, size_t n)
{
	const store_backend_ops *ops = s->ops;
	int rc = ops->begin(s->be);
	for (size_t i = 0; i < n; i++) {
		if (rc != PARLEY_OK) {
			w[i]->status = PARLEY_E_STORE;
			continue;
		}
		if (ops->savepoint(s->be) != PARLEY_OK) {
			w[i]->status = PARLEY_E_STORE;
			continue;
		}
		w[i]->status = run_job(s, w[i]);
		int sp = w[i]->status == PARLEY_OK ? ops->release(s->be) : ops->rollback_savepoint(s->be);
		if (sp != PARLEY_OK) {
			/* the transaction state is unknown now: give up on the whole batch */
			rc = PARLEY_E_STORE;
			for (size_t k = 0; k <= i; k++)
				w[k]->status = PARLEY_E_STORE;
		}
	}
	if (rc == PARLEY_OK) {
		rc = ops->commit(s->be);
		if (rc == PARLEY_OK) {
			atomic_fetch_add(&s->commits, 1);
			metrics__inc(METRIC_STORE_COMMITS);
		}
	}
	if (rc != PARLEY_OK) {
		log_error(MODULE, "group commit of %zu jobs failed", n);
		ops->rollback(s->be);
		for (size_t i = 0; i < n; i++)
			w[i]->status = PARLEY_E_STORE;
	}
}

/* While the disk is full: only the writes that free space run, each in its own transaction followed
 * by the backend's maintenance (a checkpoint), so each reuses the WAL space of the one before instead
 * of growing the file on a disk that has no room. The others fail at once, touching nothing. */
static void run_writes_full(store *s, store_job **w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!op_drains(w[i]->op)) {
			w[i]->status = PARLEY_E_STORAGE_FULL;
			continue;
		}
		run_writes(s, &w[i], 1);
		if (s->ops->maintain != NULL)
			s->ops->maintain(s->be, 0);
	}
}

static int space_of(store *s)
{
	return s->ops->space != NULL ? s->ops->space(s->be) : STORE_SPACE_OK;
}

static void publish_space(store *s)
{
	int sp = space_of(s), was = atomic_exchange(&s->space, sp);
	if ((was == STORE_SPACE_FULL) != (sp == STORE_SPACE_FULL))
		metrics__add(METRIC_STORAGE_FULL, sp == STORE_SPACE_FULL ? 1 : -1);
}

/* Runs the writes of a batch. A batch that ran into a full disk failed as a whole (SQLite rolls the
 * transaction back): its jobs report STORAGE_FULL, and those that free space run again at once, alone,
 * on the space the released reserve gave back, so an ack never fails because the disk filled. */
static void run_all_writes(store *s, store_job **w, size_t n)
{
	if (space_of(s) == STORE_SPACE_FULL) {
		run_writes_full(s, w, n);
		return;
	}
	run_writes(s, w, n);
	if (space_of(s) != STORE_SPACE_FULL)
		return;
	size_t again = 0;
	for (size_t i = 0; i < n; i++) {
		if (w[i]->status == PARLEY_E_STORE)
			w[i]->status = PARLEY_E_STORAGE_FULL;
		if (w[i]->status == PARLEY_E_STORAGE_FULL && op_drains(w[i]->op))
			w[again++] = w[i]; /* w is the batch's own array, only its order changes */
	}
	run_writes_full(s, w, again);
}

static int ready_of(store *s)
{
	return s->ops->ready == NULL || s->ops->ready(s->be);
}

static void publish_ready(store *s)
{
	atomic_store(&s->ready, ready_of(s));
}

/* The database is unreachable (PostgreSQL): one reconnection attempt (the backend's maintain, with its
 * own backoff); if that does not bring it back, every job of the batch fails at once with
 * PARLEY_E_STORE (clients retry) rather than waiting on the store thread. 1 if the batch was failed. */
static int fail_if_down(store *s, store_job *list)
{
	if (s->ops->ready == NULL || s->ops->ready(s->be))
		return 0;
	if (s->ops->maintain != NULL)
		s->ops->maintain(s->be, 0);
	publish_ready(s);
	if (atomic_load(&s->ready))
		return 0;
	for (store_job *j = list; j != NULL; j = j->next_)
		j->status = PARLEY_E_STORE;
	return 1;
}

static void run_batch(store *s, store_job *list)
{
	store_job *writes_buf[64];
	store_job **writes = writes_buf;
	size_t nw = 0, total = 0;

	if (fail_if_down(s, list))
		goto deliver;

	for (store_job *j = list; j != NULL; j = j->next_)
		total++;
	if (total > sizeof(writes_buf) / sizeof(writes_buf[0])) {
		writes = parley__malloc(total * sizeof(*writes));
		if (writes == NULL) {
			/* cannot batch: run writes one transaction each rather than failing them */
			writes = writes_buf;
			for (store_job *j = list; j != NULL; j = j->next_)
				if (store__op_is_write(j->op))
					run_all_writes(s, &j, 1);
			goto reads;
		}
	}
	for (store_job *j = list; j != NULL; j = j->next_)
		if (store__op_is_write(j->op))
			writes[nw++] = j;
	if (nw > 0)
		run_all_writes(s, writes, nw);
reads:
	/* reads after the commit, so a read queued behind a write of the same batch sees it */
	for (store_job *j = list; j != NULL; j = j->next_)
		if (!store__op_is_write(j->op))
			j->status = run_job(s, j);
	if (writes != writes_buf)
		parley__free(writes);
deliver:
	atomic_fetch_add(&s->batches, 1);
	store_job *j = list;
	while (j != NULL) {
		store_job *next = j->next_;
		deliver(s, j);
		j = next;
	}
}

/* Waits for work; while the disk space is not OK or the database unreachable, wakes every second to
 * run the maintenance that notices space (or the connection) coming back without traffic. Called and
 * returns with s->mu held. */
static void wait_work(store *s)
{
	while (s->head == NULL && !s->stopping) {
		if ((atomic_load(&s->space) == STORE_SPACE_OK && atomic_load(&s->ready)) || s->ops->maintain == NULL) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0 && s->head == NULL && !s->stopping) {
			pthread_mutex_unlock(&s->mu);
			s->ops->maintain(s->be, 1);
			publish_space(s);
			publish_ready(s);
			pthread_mutex_lock(&s->mu);
		}
	}
}

static void *store_thread(void *arg)
{
	store *s = arg;
	publish_space(s);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		wait_work(s);
		if (s->head == NULL) {
			pthread_mutex_unlock(&s->mu);
			break; /* stopping and drained */
		}
		/* take up to max_batch jobs, oldest first */
		store_job *list = s->head, *last = s->head;
		unsigned n = 1;
		while (last->next_ != NULL && n < s->max_batch) {
			last = last->next_;
			n++;
		}
		s->head = last->next_;
		if (s->head == NULL)
			s->tail = NULL;
		s->queued -= n;
		last->next_ = NULL;
		pthread_mutex_unlock(&s->mu);
		run_batch(s, list);
		if (s->ops->maintain != NULL) {
			/* after the completions went out, so no acknowledgement waits for the maintenance */
			pthread_mutex_lock(&s->mu);
			int idle = s->head == NULL;
			pthread_mutex_unlock(&s->mu);
			s->ops->maintain(s->be, idle);
		}
		publish_space(s);
		publish_ready(s);
	}
	return NULL;
}

/* `bounded`: refuse with SERVER_BUSY once store_queue_max jobs wait. A burst that got past the
 * dispatcher's caps (many loops, many connections) then costs a short answer, not memory. */
static int enqueue(store *s, store_job *job, int bounded)
{
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		return PARLEY_E_SHUTTING_DOWN;
	}
	if (bounded && s->queued >= s->queue_max && !op_drains(job->op)) {
		pthread_mutex_unlock(&s->mu);
		metrics__inc(METRIC_STORE_BUSY);
		return PARLEY_E_SERVER_BUSY;
	}
	s->queued++;
	job->next_ = NULL;
	if (s->tail != NULL)
		s->tail->next_ = job;
	else
		s->head = job;
	s->tail = job;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return PARLEY_OK;
}

/* --- open / close --- */

void store__config_from(store_config *sc, const parleyd_config *cfg, const char *path)
{
	memset(sc, 0, sizeof(*sc));
	sc->backend = "sqlite";
	sc->url = cfg->store;
	sc->path = path;
	sc->max_batch = (unsigned)cfg->store_batch_max;
	sc->max_devices = (unsigned)cfg->max_devices;
	sc->queue_max = (unsigned)cfg->store_queue_max;
	sc->reserve_bytes = (uint64_t)cfg->storage_reserve_bytes;
}

void store__describe(const store_config *cfg, char *out, size_t cap)
{
	if (cfg->url != NULL && cfg->url[0] != '\0')
		store__pg_describe(cfg->url, out, cap);
	else
		snprintf(out, cap, "%s", cfg->path != NULL ? cfg->path : "");
}

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* url "" or NULL: SQLite at path; postgres:// or postgresql://: PostgreSQL; anything else is a
 * configuration error (a typo must not silently fall back to a local SQLite file). */
static int select_backend(const store_config *cfg, const store_backend_ops **ops)
{
	if (cfg->url != NULL && cfg->url[0] != '\0') {
		if (!has_prefix(cfg->url, "postgres://") && !has_prefix(cfg->url, "postgresql://"))
			return PARLEY_E_CONFIG;
		*ops = &store__pg_ops;
		return PARLEY_OK;
	}
	if (cfg->backend != NULL && strcmp(cfg->backend, "sqlite") != 0)
		return PARLEY_E_CONFIG;
	if (cfg->path == NULL || cfg->path[0] == '\0')
		return PARLEY_E_CONFIG;
	*ops = &store__sqlite_ops;
	return PARLEY_OK;
}

int store__open(const store_config *in, store **out)
{
	store *s = NULL;
	store_config c;
	const store_config *cfg = &c;
	int rc;

	if (in == NULL || out == NULL)
		return PARLEY_E_INVAL;
	/* fields left 0 (tests, tools) take the configuration table's defaults */
	c = *in;
	if (c.max_batch == 0 || c.max_devices == 0 || c.queue_max == 0) {
		parleyd_config d;
		config__defaults(&d);
		c.max_batch = c.max_batch ? c.max_batch : (unsigned)d.store_batch_max;
		c.max_devices = c.max_devices ? c.max_devices : (unsigned)d.max_devices;
		c.queue_max = c.queue_max ? c.queue_max : (unsigned)d.store_queue_max;
	}
	const store_backend_ops *ops = NULL;
	rc = select_backend(cfg, &ops);
	if (rc != PARLEY_OK)
		return rc;
	s = parley__calloc(1, sizeof(*s));
	if (s == NULL)
		return PARLEY_E_NOMEM;
	s->ops = ops;
	s->max_batch = cfg->max_batch;
	s->queue_max = cfg->queue_max;
	rc = s->ops->open(cfg, &s->be);
	if (rc != PARLEY_OK)
		goto out;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->sync_cv, NULL);
	atomic_store(&s->ready, 1); /* open succeeded: connected (before the thread may publish otherwise) */
	if (pthread_create(&s->thread, NULL, store_thread, s) != 0) {
		pthread_cond_destroy(&s->sync_cv);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		s->ops->close(s->be);
		rc = PARLEY_E_INTERNAL;
		goto out;
	}
	if (s->ops == &store__sqlite_ops) /* the PostgreSQL driver names its (password-free) URL itself */
		log_info(MODULE, "%s store open: %s (group commit up to %u jobs)", s->ops->name, cfg->path,
			 s->max_batch);
	*out = s;
	s = NULL;
out:
	parley__free(s);
	return rc;
}

void store__close(store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->ops->close(s->be);
	pthread_cond_destroy(&s->sync_cv);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	parley__free(s);
}

int store__space(store *s)
{
	return atomic_load(&s->space);
}

int store__ready(store *s)
{
	return atomic_load(&s->ready);
}

int store__health(store *s, char *reason, size_t cap)
{
	switch (store__space(s)) {
	case STORE_SPACE_FULL:
		snprintf(reason, cap, "storage full: new data refused (STORAGE_FULL), acks and deletes served");
		return 1;
	case STORE_SPACE_NO_RESERVE:
		snprintf(reason, cap, "no disk reserve: a full disk could not drain itself");
		return 0;
	default:
		if (cap > 0)
			reason[0] = '\0';
		return 0;
	}
}

void store__stats(store *s, store_stats *out)
{
	out->commits = atomic_load(&s->commits);
	out->jobs = atomic_load(&s->jobs);
	out->errors = atomic_load(&s->errors);
	out->batches = atomic_load(&s->batches);
}

int store__run_sync(store *s, store_job *job)
{
	struct sync_wait w = {0};
	job->cb_ = NULL;
	job->arg_ = &w;
	job->client_ = NULL;
	int rc = enqueue(s, job, 0);
	if (rc != PARLEY_OK) {
		job->status = rc;
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	while (!w.done)
		pthread_cond_wait(&s->sync_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return job->status;
}

/* --- clients --- */

void store__client_run(store_client *c)
{
	pthread_mutex_lock(&c->mu);
	store_job *j = c->done_head;
	c->done_head = c->done_tail = NULL;
	pthread_mutex_unlock(&c->mu);
	while (j != NULL) {
		store_job *next = j->next_;
		c->inflight--;
		const void *was = c->owner;
		c->owner = j->owner_; /* what the callback submits belongs to the same owner */
		j->cb_(j->arg_, j->status, j);
		c->owner = was;
		store__job_free(j);
		j = next;
	}
}

void store__client_set_owner(store_client *c, const void *owner)
{
	c->owner = owner;
}

/* What a closed connection's job may skip: reads (their result was only for the answer) and sends
 * (unacknowledged, so the sender's to send again; and a send holds the copy of its ciphertexts). Acks,
 * removals, uploads take effect whoever is left to hear it: a client may ack and disconnect at once. */
static int op_cancellable(enum store_op op)
{
	return !store__op_is_write(op) || op == STORE_OP_SEND;
}

size_t store__client_cancel(store_client *c, const void *owner)
{
	store *s = c->s;
	size_t n = 0;
	if (owner == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	for (store_job *j = s->head; j != NULL; j = j->next_) {
		if (j->client_ != c || j->owner_ != owner || j->cancelled_ || !op_cancellable(j->op))
			continue;
		store__job_drop_args(j);
		j->cancelled_ = 1;
		n++;
	}
	pthread_mutex_unlock(&s->mu);
	metrics__add(METRIC_STORE_CANCELLED, (int64_t)n);
	return n;
}

unsigned store__client_inflight(const store_client *c)
{
	return c->inflight;
}

int store__client_new(store *s, store_wake_fn wake, void *wake_arg, store_client **out)
{
	if (s == NULL || wake == NULL || out == NULL)
		return PARLEY_E_INVAL;
	store_client *c = parley__calloc(1, sizeof(*c));
	if (c == NULL)
		return PARLEY_E_NOMEM;
	c->s = s;
	c->wake = wake;
	c->wake_arg = wake_arg;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	*out = c;
	return PARLEY_OK;
}

void store__client_close(store_client *c)
{
	if (c == NULL)
		return;
	for (;;) {
		store__client_run(c);
		if (c->inflight == 0)
			break;
		pthread_mutex_lock(&c->mu);
		while (c->done_head == NULL)
			pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
	}
	/* the store thread released c->mu after its last deliver: taking it once more makes sure it is
	 * out of deliver() before the memory goes */
	pthread_mutex_lock(&c->mu);
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	parley__free(c);
}

int store__submit(store_client *c, store_job *job, store_cb cb, void *arg)
{
	if (c == NULL || job == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	job->cb_ = cb;
	job->arg_ = arg;
	job->client_ = c;
	job->owner_ = c->owner;
	job->status = PARLEY_OK;
	int rc = enqueue(c->s, job, 1);
	if (rc == PARLEY_OK)
		c->inflight++;
	return rc;
}
