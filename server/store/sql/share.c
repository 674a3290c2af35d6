/* SQLite backend: the per-sender tally behind queue_sender_share (security item 7).
 *
 * A sender may hold at most its share of a device's queue. Counting that with an index on
 * messages(account_id, device_id, sender_account) cost every insert and delete of the relay a second
 * index update (103k -> 91k acked messages/s); a trigger-maintained counter table cost more. Yet a
 * sender can only be over its share of a queue that is itself past the share, and such queues are rare
 * (a device offline for a long time, or under a flood). So the counts live here, in the store thread's
 * memory, and only for those queues: the first send to a queue past the share scans the queue once
 * (GROUP BY sender over the messages_queue range); afterwards the relay keeps the tally exact on insert
 * and acknowledgement. Everything else that removes messages (expiry purge, a device or account removed
 * and its rows cascaded, a rolled-back job) either clears the whole tally (sql__share_clear) or is
 * caught by the check that a queue's tally sums to its queue_len, which forces a new scan.
 *
 * Bounded: at most SHARE_MAX_QUEUES queues and SHARE_MAX_SENDERS sender entries in all; beyond that a
 * queue is not tallied and its count is one range scan per send (correct, slower, and only for queues
 * past the share under the sender's rate limit). */
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/sql.h"

#define SHARE_MAX_QUEUES 64
#define SHARE_MAX_SENDERS 65536

struct share_sender {
	uint64_t account;
	uint32_t count;
};

struct share_queue {
	uint64_t account; /* 0: free slot */
	uint32_t device;
	uint64_t total; /* sum of the counts: equals the device's queue_len while the tally is exact */
	struct share_sender *s; /* sorted by account */
	size_t n, cap;
};

struct sql_share {
	struct share_queue q[SHARE_MAX_QUEUES];
	size_t n_senders; /* over all queues */
};

static const char SQL_SCAN[] = "SELECT sender_account, count(*) FROM messages WHERE account_id = ?1"
			       " AND device_id = ?2 GROUP BY sender_account ORDER BY sender_account";
static const char SQL_COUNT_ONE[] = "SELECT count(*) FROM messages WHERE account_id = ?1 AND device_id = ?2"
				    " AND sender_account = ?3";
static const char SQL_FIX_LEN[] = "UPDATE device_keys SET queue_len = ?3 WHERE account_id = ?1 AND device_id = ?2";

static void queue_drop(struct sql_share *t, struct share_queue *q)
{
	t->n_senders -= q->n;
	parley__free(q->s);
	memset(q, 0, sizeof(*q));
}

void sql__share_clear(store_be *b)
{
	struct sql_share *t = b->share;
	if (t == NULL)
		return;
	for (size_t i = 0; i < SHARE_MAX_QUEUES; i++)
		if (t->q[i].account != 0)
			queue_drop(t, &t->q[i]);
}

void sql__share_free(store_be *b)
{
	sql__share_clear(b);
	parley__free(b->share);
	b->share = NULL;
}

static struct share_queue *queue_find(struct sql_share *t, uint64_t account, uint32_t device)
{
	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < SHARE_MAX_QUEUES; i++)
		if (t->q[i].account == account && t->q[i].device == device)
			return &t->q[i];
	return NULL;
}

/* index of `sender` in q->s, or where it would go (*found 0) */
static size_t sender_pos(const struct share_queue *q, uint64_t sender, int *found)
{
	size_t lo = 0, hi = q->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q->s[mid].account < sender)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < q->n && q->s[lo].account == sender;
	return lo;
}

/* Adds `delta` to sender's count. A queue that cannot grow (either bound) is dropped from the tally. */
static void sender_add(struct sql_share *t, struct share_queue *q, uint64_t sender, int64_t delta)
{
	int found;
	size_t i = sender_pos(q, sender, &found);
	if (found) {
		int64_t c = (int64_t)q->s[i].count + delta;
		int64_t total = (int64_t)q->total + delta;
		q->s[i].count = c > 0 ? (uint32_t)c : 0;
		q->total = total > 0 ? (uint64_t)total : 0;
		if (q->s[i].count == 0) {
			memmove(&q->s[i], &q->s[i + 1], (q->n - i - 1) * sizeof(q->s[0]));
			q->n--;
			t->n_senders--;
		}
		return;
	}
	if (delta <= 0)
		return; /* a row this tally never counted: the sum check catches it */
	if (t->n_senders >= SHARE_MAX_SENDERS) {
		queue_drop(t, q);
		return;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct share_sender *s = parley__realloc(q->s, cap * sizeof(*s));
		if (s == NULL) {
			queue_drop(t, q);
			return;
		}
		q->s = s;
		q->cap = cap;
	}
	memmove(&q->s[i + 1], &q->s[i], (q->n - i) * sizeof(q->s[0]));
	q->s[i].account = sender;
	q->s[i].count = (uint32_t)delta;
	q->n++;
	t->n_senders++;
	q->total += (uint64_t)delta;
}

/* Builds the tally of (account, device) by one scan; NULL when it cannot be kept (bounds, memory).
 * The queue_len the caller read is repaired if the scan finds another count. */
static int queue_scan(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, struct share_queue **out)
{
	struct sql_share *t = b->share;
	struct share_queue *q = queue_find(t, account, device);
	*out = NULL;
	if (t == NULL) {
		t = b->share = parley__calloc(1, sizeof(*t));
		if (t == NULL)
			return PARLEY_OK; /* no tally: the caller counts with a scan */
	}
	if (q != NULL)
		queue_drop(t, q);
	else
		q = queue_find(t, 0, 0);
	if (q == NULL) {
		/* every slot taken: start over rather than keep stale queues forever */
		sql__share_clear(b);
		q = &t->q[0];
	}
	q->account = account;
	q->device = device;
	sql_stmt *s = sql__stmt(b, SQL_SCAN);
	if (s == NULL) {
		queue_drop(t, q);
		return PARLEY_E_STORE;
	}
	sql__bind_i64(s, 1, (int64_t)account);
	sql__bind_i64(s, 2, device);
	int sr;
	while ((sr = sql__step(s)) == SQL_ROW && q->account != 0)
		sender_add(t, q, (uint64_t)sql__col_i64(s, 0), sql__col_i64(s, 1));
	sql__reset(s);
	if (sr != SQL_DONE && sr != SQL_ROW) {
		if (q->account != 0)
			queue_drop(t, q);
		return sql__error(b, "sender share scan");
	}
	if (q->account == 0)
		return PARLEY_OK; /* dropped while filling: over the bounds */
	if (q->total != queue_len) {
		/* queue_len drifted from the rows (it is a counter): the scan is the truth */
		s = sql__stmt(b, SQL_FIX_LEN);
		if (s == NULL)
			return PARLEY_E_STORE;
		sql__bind_i64(s, 1, (int64_t)account);
		sql__bind_i64(s, 2, device);
		sql__bind_i64(s, 3, (int64_t)q->total);
		if (sql__step_done(s) != SQL_DONE)
			return sql__error(b, "repair queue length");
	}
	*out = q;
	return PARLEY_OK;
}

int sql__share_count(store_be *b, uint64_t account, uint32_t device, uint64_t queue_len, uint64_t sender,
			uint64_t *count)
{
	struct share_queue *q = NULL;
	int rc = PARLEY_OK;
	/* share_exact (PostgreSQL): other nodes' commits change the queue behind this process's back, so
	 * an in-memory tally would drift: count with the query every time (messages_sender serves it) */
	if (!b->share_exact && ((q = queue_find(b->share, account, device)) == NULL || q->total != queue_len))
		rc = queue_scan(b, account, device, queue_len, &q);
	if (rc != PARLEY_OK)
		return rc;
	if (q != NULL) {
		int found;
		size_t i = sender_pos(q, sender, &found);
		*count = found ? q->s[i].count : 0;
		return PARLEY_OK;
	}
	int64_t n = 0;
	sql_stmt *s = sql__stmt(b, SQL_COUNT_ONE);
	if (s == NULL)
		return PARLEY_E_STORE;
	sql__bind_i64(s, 1, (int64_t)account);
	sql__bind_i64(s, 2, device);
	sql__bind_i64(s, 3, (int64_t)sender);
	int sr = sql__step(s);
	if (sr == SQL_ROW)
		n = sql__col_i64(s, 0);
	sql__reset(s);
	if (sr != SQL_ROW)
		return sql__error(b, "sender share");
	*count = (uint64_t)n;
	return PARLEY_OK;
}

int sql__share_tracked(store_be *b, uint64_t account, uint32_t device)
{
	return queue_find(b->share, account, device) != NULL;
}

void sql__share_moved(store_be *b, uint64_t account, uint32_t device, uint64_t sender, int delta)
{
	struct share_queue *q = queue_find(b->share, account, device);
	if (q == NULL)
		return;
	sender_add(b->share, q, sender, delta);
	if (q->account != 0 && q->total == 0)
		queue_drop(b->share, q); /* drained: nothing left to share */
}
