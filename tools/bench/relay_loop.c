/* `parley-bench relay`, the client threads every peer runs on (see relay_loop.h). */
#include "relay_loop.h"

#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"

/* The connections a phase opens: all of them, or only the receivers when verifying. */
static int is_active(const relay_cfg *cfg, unsigned i)
{
	return cfg->phase != RELAY_PHASE_VERIFY || relay__is_receiver(cfg, i);
}

rl_conn *relay__loop_conn(const rl_engine *e, unsigned i)
{
	return (rl_conn *)(void *)(e->conns + (size_t)i * e->proto->conn_size);
}

/* ---- what protocols call on their loop thread ---- */

/* Opens the worker's next connections while fewer than cfg->connect_batch are being set up (all of them
 * at once without a batch): thousands of simultaneous registrations would only queue up in the server
 * and its store, and time out there. */
static void connect_more(rl_worker *w)
{
	unsigned batch = w->e->run.cfg->connect_batch, done;

	if (w->connecting)
		return; /* a connection failed inside proto->connect: the loop below goes on */
	w->connecting = 1;
	while (w->next_conn < w->n) {
		done = atomic_load(&w->n_conns.ready) + atomic_load(&w->n_conns.failed);
		if (batch && w->next_conn - done >= batch)
			break;
		w->e->proto->connect(w->conns[w->next_conn++]);
	}
	w->connecting = 0;
}

int relay__loop_stopping(const rl_conn *c)
{
	return atomic_load(&c->w->e->phase) == RL_STOP;
}

void relay__loop_ready(rl_conn *c)
{
	if (!c->counted) {
		c->counted = 1;
		atomic_fetch_add(&c->w->n_conns.ready, 1);
		connect_more(c->w);
	}
}

void relay__loop_failed(rl_conn *c, const char *why, const char *detail)
{
	if (c->counted)
		return;
	c->counted = 1;
	atomic_fetch_add(&c->w->n_conns.failed, 1);
	if (!relay__loop_stopping(c)) {
		relay__error(&c->w->e->run, why, detail);
		connect_more(c->w);
	}
}

void relay__loop_drained(rl_conn *c)
{
	if (!c->drained) {
		c->drained = 1;
		atomic_fetch_add(&c->w->n_conns.drained, 1);
	}
}

void relay__loop_closed(rl_conn *c, int was_ready, const char *why)
{
	if (relay__loop_stopping(c))
		return;
	if (!was_ready) {
		relay__loop_failed(c, why, NULL);
		return;
	}
	/* A ready connection that ends before the stop breaks the run: its messages are lost. */
	relay__conn_lost(&c->w->e->run, c->idx);
	relay__error(&c->w->e->run, why, NULL);
}

uint64_t relay__loop_next(rl_conn *c)
{
	rl_worker *w = c->w;
	relay_sender *s = c->s;
	const relay_cfg *cfg = w->e->run.cfg;
	uint64_t seq = s->next_seq;

	c->sent_t[seq % c->cap] = relay__fill(w->msg, cfg->size, s->idx, seq);
	relay__seal(cfg, w->msg, c->to_idx);
	s->next_seq++;
	s->in_flight++;
	atomic_fetch_add_explicit(&s->n_sent, 1, memory_order_relaxed);
	return seq;
}

void relay__loop_send_failed(rl_conn *c, const char *why)
{
	c->s->in_flight--;
	atomic_fetch_add_explicit(&c->s->n_errors, 1, memory_order_relaxed);
	relay__error(&c->w->e->run, "send", why);
}

int relay__loop_acked(rl_conn *c, uint64_t seq, int ok, const char *why, uint64_t now)
{
	relay_sender *s = c->s;
	rl_engine *e = c->w->e;

	if (s == NULL || seq >= s->next_seq || s->next_seq - seq > c->cap || s->in_flight == 0) {
		atomic_fetch_add_explicit(&c->w->st.errors, 1, memory_order_relaxed);
		relay__error(&e->run, "ack for a message not awaiting one", NULL);
		return -1;
	}
	s->in_flight--;
	if (!ok) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(&e->run, "message refused", why);
	} else {
		relay__acked(&e->run, s, seq, c->sent_t[seq % c->cap], now);
	}
	if (e->run.cfg->rate <= 0)
		e->proto->fill(c, now);
	return 0;
}

int relay__loop_delivered(rl_conn *c, const uint8_t *body, size_t len, uint64_t now)
{
	return relay__check_body(&c->w->e->run, &c->w->st, body, len, c->idx, now);
}

/* ---- loop threads ---- */

static void on_tick(uv_timer_t *t)
{
	rl_worker *w = t->data;
	uint64_t now = uv_hrtime();
	unsigned i;

	for (i = 0; i < w->n; i++)
		if (w->conns[i]->s != NULL)
			w->e->proto->fill(w->conns[i], now);
}

static void on_wake(uv_async_t *a)
{
	rl_worker *w = a->data;
	int ph = atomic_load(&w->e->phase);
	unsigned i;

	if (ph == RL_SEND && !w->started) {
		w->started = 1;
		if (w->e->run.cfg->rate > 0)
			uv_timer_start(&w->lp.timer, on_tick, 1, 1);
		else
			on_tick(&w->lp.timer);
	} else if (ph == RL_STOP && !w->stopped) {
		w->stopped = 1;
		for (i = 0; i < w->n; i++)
			w->e->proto->close(w->conns[i]);
		bench__loop_stop(&w->lp);
	}
}

static void worker_main(void *arg)
{
	rl_worker *w = arg;

	connect_more(w);
	uv_run(&w->lp.loop, UV_RUN_DEFAULT);
}

static void set_phase(rl_engine *e, int phase, unsigned nthreads)
{
	unsigned i;

	atomic_store(&e->phase, phase);
	for (i = 0; i < nthreads; i++)
		uv_async_send(&e->w[i].lp.wake);
}

static void kick(void *ctx)
{
	rl_engine *e = ctx;
	set_phase(e, RL_SEND, e->nw);
}

/* ---- the calling thread ---- */

typedef struct totals {
	unsigned ready, failed, drained;
} totals;

static totals sum_counts(const rl_engine *e, unsigned nthreads)
{
	totals t = {0, 0, 0};
	unsigned i;

	for (i = 0; i < nthreads; i++) {
		t.ready += atomic_load(&e->w[i].n_conns.ready);
		t.failed += atomic_load(&e->w[i].n_conns.failed);
		t.drained += atomic_load(&e->w[i].n_conns.drained);
	}
	return t;
}

/* Waits until every active connection is ready or failed (or the connect timeout); returns ready. */
static unsigned wait_ready(rl_engine *e, unsigned nthreads, relay_result *res)
{
	const relay_cfg *cfg = e->run.cfg;
	uint64_t t_open = uv_hrtime();
	totals t;

	for (;;) {
		t = sum_counts(e, nthreads);
		if (t.ready + t.failed >= e->nactive || (double)(uv_hrtime() - t_open) / 1e9 > cfg->connect_timeout_s ||
		    relay__interrupted())
			break;
		if (cfg->progress)
			fprintf(stderr, "\r\033[K%s: %u/%u ready, %u failed", e->proto->name, t.ready, e->nactive, t.failed);
		uv_sleep(20);
	}
	if (cfg->progress)
		fprintf(stderr, "\r\033[K");
	relay__note_setup(res, t.ready, e->nactive, t_open);
	return t.ready;
}

/* verify: until every logged-in receiver has read its queue (or lost its connection), at most
 * drain_s. The time is reported as the drain. */
static void wait_drained(rl_engine *e, unsigned nthreads, unsigned ready, relay_result *res)
{
	const relay_cfg *cfg = e->run.cfg;
	uint64_t t0 = uv_hrtime();
	unsigned drained = 0;
	double el = 0;

	while (!relay__interrupted()) {
		drained = sum_counts(e, nthreads).drained;
		el = (double)(uv_hrtime() - t0) / 1e9;
		if (drained + atomic_load(&e->run.lost_conns) >= ready || el >= cfg->drain_s)
			break;
		if (cfg->progress)
			fprintf(stderr, "\r\033[K[%6.1fs] %u/%u queues read", el, drained, ready);
		uv_sleep(20);
	}
	if (cfg->progress)
		fprintf(stderr, "\r\033[K");
	res->drain_s = el;
	res->incomplete = ready - drained;
}

static int setup_conn(rl_engine *e, unsigned i)
{
	const relay_cfg *cfg = e->run.cfg;
	rl_conn *c = relay__loop_conn(e, i);
	rl_worker *w = &e->w[e->nactive % e->nw];

	c->w = w;
	c->idx = i;
	w->conns[w->n++] = c;
	e->nactive++;
	if (relay__is_receiver(cfg, i))
		c->st = &w->st;
	if (relay__is_sender(cfg, i) && cfg->phase != RELAY_PHASE_VERIFY) {
		c->to_idx = relay__receiver_of(cfg, i);
		c->s = &e->run.senders[i];
		c->cap = cfg->rate > 0 ? cfg->open_backlog : cfg->window;
		c->sent_t = parley__calloc(c->cap, sizeof(uint64_t));
		if (!c->sent_t)
			return PARLEY_E_NOMEM;
	}
	return e->proto->conn_init ? e->proto->conn_init(c) : PARLEY_OK;
}

static int setup(rl_engine *e, const relay_cfg *cfg, relay_stats **stats)
{
	unsigned i, n = cfg->conns, nactive = 0;
	int rc;

	for (i = 0; i < n; i++)
		nactive += (unsigned)is_active(cfg, i);
	e->nw = cfg->threads < nactive ? cfg->threads : nactive;
	e->w = parley__calloc(e->nw, sizeof(*e->w));
	e->conns = parley__calloc(n, e->proto->conn_size);
	if (!e->w || !e->conns)
		return PARLEY_E_NOMEM;
	for (i = 0; i < e->nw; i++) {
		rl_worker *w = &e->w[i];
		w->e = e;
		w->conns = parley__calloc(nactive / e->nw + 1, sizeof(*w->conns));
		w->msg = parley__malloc(cfg->size);
		hist__init(&w->st.e2e);
		stats[i] = &w->st;
		if (!w->conns || !w->msg)
			return PARLEY_E_NOMEM;
		if (e->proto->worker_init && (rc = e->proto->worker_init(w)) != PARLEY_OK)
			return rc;
	}
	for (i = 0; i < n; i++) {
		if (!is_active(cfg, i))
			continue;
		rc = setup_conn(e, i);
		if (rc != PARLEY_OK)
			return rc;
	}
	e->run.active_conns = cfg->phase == RELAY_PHASE_SEND ? cfg->senders : nactive;
	return PARLEY_OK;
}

static void teardown(rl_engine *e, relay_stats **stats)
{
	unsigned i;

	if (e->conns)
		for (i = 0; i < e->run.cfg->conns; i++) {
			rl_conn *c = relay__loop_conn(e, i);
			if (c->w != NULL && e->proto->conn_free)
				e->proto->conn_free(c);
			parley__free(c->sent_t);
		}
	if (e->w)
		for (i = 0; i < e->nw; i++) {
			if (e->w[i].e != NULL && e->proto->worker_free)
				e->proto->worker_free(&e->w[i]);
			parley__free(e->w[i].conns);
			parley__free(e->w[i].msg);
		}
	parley__free(e->conns);
	parley__free(e->w);
	parley__free(stats);
}

/* Starts the loop threads; returns how many run. */
static unsigned start_threads(rl_engine *e, int *rc)
{
	unsigned i;

	for (i = 0; i < e->nw; i++) {
		*rc = bench__loop_start(&e->w[i].lp, on_wake, worker_main, &e->w[i]);
		if (*rc != PARLEY_OK)
			break;
	}
	return i;
}

int relay__loop_run(const relay_cfg *cfg, const relay_proto *p, relay_result *res)
{
	rl_engine e;
	relay_stats **stats;
	unsigned i, nthreads = 0, ready;
	relay_driver d;
	int rc, inited = 0;

	memset(&e, 0, sizeof(e));
	e.proto = p;
	rc = relay__run_init(&e.run, cfg);
	if (rc != PARLEY_OK)
		return rc;
	stats = parley__calloc(cfg->threads, sizeof(*stats));
	rc = stats != NULL ? setup(&e, cfg, stats) : PARLEY_E_NOMEM;
	if (rc == PARLEY_OK && p->init) {
		rc = p->init(&e);
		inited = rc == PARLEY_OK;
	}
	if (rc == PARLEY_OK)
		nthreads = start_threads(&e, &rc);
	if (rc == PARLEY_OK) {
		ready = wait_ready(&e, nthreads, res);
		if (ready == e.nactive && cfg->phase == RELAY_PHASE_VERIFY) {
			wait_drained(&e, nthreads, ready, res);
		} else if (ready == e.nactive) {
			d = (relay_driver){.kick = kick, .ctx = &e, .stats = stats, .nstats = nthreads};
			relay__drive(&e.run, &d, res);
		}
	}
	set_phase(&e, RL_STOP, nthreads);
	for (i = 0; i < nthreads; i++)
		bench__loop_join(&e.w[i].lp);
	if (rc == PARLEY_OK)
		relay__collect(&e.run, stats, nthreads, res);
	if (inited && p->fini)
		p->fini(&e, res); /* after collect: the parley engine saves its state file from the results */
	teardown(&e, stats);
	relay__run_free(&e.run);
	return rc;
}
