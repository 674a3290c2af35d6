/* Store jobs: the op table generated from STORE_OPS (names, read/write kind, which union member an
 * op uses) and the job's life (allocation, bounded setters, freeing its domain's arrays). Kept apart
 * from store.c, which is the queue, the store thread and the clients. */
#include <stddef.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/job.h"
#include "store/store.h"
#include "wire/stafflist.h"

/* --- the op table (generated from STORE_OPS) --- */

/* What store__job_free releases: the heap arrays of the job's domain member. */
static void free_acct(store_job *j)
{
	parley__free(j->acct.devices);
	parley__free(j->acct.devlist);
	parley__free(j->acct.parsed);
}

static void free_keys(store_job *j)
{
	parley__free(j->keys.otks);
	parley__free(j->keys.bundles);
	parley__free(j->keys.forget_ids);
	parley__free(j->keys.devlist);
}

static void free_relay(store_job *j)
{
	store_relay_args *m = &j->relay;
	parley__free(m->msgs);
	parley__free(m->content_buf);
	parley__free(m->missing);
	parley__free(m->extra);
	parley__free(m->stale);
	for (size_t i = 0; i < m->n_envs; i++)
		parley__free(m->envs[i].content);
	parley__free(m->envs);
	parley__free(m->ids);
	parley__free(m->peers);
}

static void free_ent_list(store_job *j)
{
	parley__free(j->ent.list);
	if (j->ent.staff != NULL)
		wire__stafflist_free(j->ent.staff);
	parley__free(j->ent.staff);
	j->ent.list = NULL;
	j->ent.staff = NULL;
}

static void free_ent(store_job *j)
{
	store_ent_args *e = &j->ent;
	free_ent_list(j);
	parley__free(e->devlist);
	parley__free(e->approval);
	parley__free(e->accounts);
	for (size_t i = 0; i < e->n_reqs; i++) {
		parley__free(e->reqs[i].devlist);
		parley__free(e->reqs[i].approval);
	}
	parley__free(e->reqs);
}

static void free_thr(store_job *j)
{
	store_thread_args *t = &j->thr;
	parley__free(t->event);
	parley__free(t->content);
	parley__free(t->infos);
	for (size_t i = 0; i < t->n_events; i++)
		parley__free(t->events[i].data);
	parley__free(t->events);
	parley__free(t->rcpts);
	parley__free(t->event2);
	parley__free(t->msgs);
	parley__free(t->msg_buf);
}

static void free_auth(store_job *j)
{
	store_auth_args *a = &j->auth;
	parley__free(a->comps);
	parley__free(a->thread);
	parley__free(a->dropped);
	parley__free(a->ended);
	parley__free(a->ended_threads);
	parley__free(a->reqs);
	parley__free(a->claims);
	parley__free(a->emails);
	if (a->x != NULL) /* the request's secrets do not outlive the job in freed memory */
		sodium_memzero(a->x, sizeof(*a->x));
	parley__free(a->x);
}

static void free_set(store_job *j)
{
	(void)j; /* a settings job has no heap part */
}

struct op_info {
	const char *name;
	enum store_kind kind;
	void (*free_args)(store_job *j);
};

static const struct op_info ops_table[STORE_OP__COUNT] = {
#define OP_INFO_(OP, name, kind, domain) [STORE_OP_##OP] = {#name, kind, free_##domain},
	STORE_OPS(OP_INFO_)
#undef OP_INFO_
};

static const struct op_info *op_info(enum store_op op)
{
	if ((int)op <= (int)STORE_OP_NONE || op >= STORE_OP__COUNT)
		return NULL;
	return &ops_table[op];
}

int store__op_known(enum store_op op)
{
	return op_info(op) != NULL;
}

const char *store__op_name(enum store_op op)
{
	const struct op_info *i = op_info(op);
	return i != NULL ? i->name : "unknown";
}

int store__op_is_write(enum store_op op)
{
	const struct op_info *i = op_info(op);
	return i != NULL && i->kind == STORE_WRITE;
}

/* Whether the job's op uses the union member that `free_args` releases, i.e. belongs to that domain.
 * The setters below check it: writing another domain's member would corrupt the one the op uses. */
static int in_domain(const store_job *j, void (*free_args)(store_job *j))
{
	const struct op_info *i = op_info(j->op);
	return i != NULL && i->free_args == free_args;
}

/* --- jobs --- */

store_job *store__job_new(enum store_op op)
{
	store_job *j = parley__calloc(1, sizeof(*j));
	if (j != NULL)
		j->op = op;
	/* an auth job's secrets and identity live beside the job, so every job stays small */
	if (j != NULL && in_domain(j, free_auth) && (j->auth.x = parley__calloc(1, sizeof(*j->auth.x))) == NULL) {
		parley__free(j);
		j = NULL;
	}
	return j;
}

void store__job_free(store_job *job)
{
	if (job == NULL)
		return;
	const struct op_info *i = op_info(job->op);
	if (i != NULL)
		i->free_args(job);
	parley__free(job);
}

/* A zeroed array of n elements of `size` bytes replacing *arr, n <= max. */
static int alloc_array(void **arr, size_t *count, size_t n, size_t max, size_t size)
{
	void *p = NULL;
	if (n > max)
		return PARLEY_E_TOO_LARGE;
	if (n > 0 && (p = parley__calloc(n, size)) == NULL)
		return PARLEY_E_NOMEM;
	parley__free(*arr);
	*arr = p;
	*count = n;
	return PARLEY_OK;
}

int store__job_keys_alloc_otks(store_job *job, size_t n)
{
	if (!in_domain(job, free_keys))
		return PARLEY_E_INVAL;
	void *p = job->keys.otks;
	int rc = alloc_array(&p, &job->keys.n_otks, n, STORE_MAX_PREKEYS_PER_UPLOAD, sizeof(store_prekey));
	job->keys.otks = p;
	return rc;
}

int store__job_relay_alloc_ids(store_job *job, size_t n)
{
	if (!in_domain(job, free_relay))
		return PARLEY_E_INVAL;
	void *p = job->relay.ids;
	int rc = alloc_array(&p, &job->relay.n_ids, n, STORE_MAX_ACK_IDS, sizeof(uint64_t));
	job->relay.ids = p;
	return rc;
}

static int copy_bounded(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap);
	if (n >= cap)
		return PARLEY_E_TOO_LARGE;
	memcpy(dst, src, n + 1);
	return PARLEY_OK;
}

int store__job_set_handle(store_job *job, const char *handle)
{
	return copy_bounded(job->handle, sizeof(job->handle), handle);
}

int store__job_set_device_name(store_job *job, const char *name)
{
	if (!in_domain(job, free_acct))
		return PARLEY_E_INVAL;
	return copy_bounded(job->acct.device_name, sizeof(job->acct.device_name), name);
}

void store__job_drop_args(store_job *j)
{
	const struct op_info *i = op_info(j->op);
	if (i != NULL)
		i->free_args(j);
	/* the callback may look at the result: nothing dangling, every count 0 */
	memset((char *)j + offsetof(store_job, relay), 0, offsetof(store_job, cb_) - offsetof(store_job, relay));
}

int store__job_ent_set_list(store_job *job, uint8_t *list, size_t len, void *parsed)
{
	if (!in_domain(job, free_ent))
		return PARLEY_E_INVAL;
	free_ent_list(job);
	job->ent.list = list;
	job->ent.list_len = len;
	job->ent.staff = parsed;
	return PARLEY_OK;
}
