/* `parley-bench relay --peer parley`, the threads: connection i runs on loop thread i % threads
 * (bench_loop); everything about it, including its sender's window and its receiver's bitmaps, is
 * touched only there. The calling thread sets the engine's phase and wakes the loops (uv_async), waits
 * for the set-up, runs relay__drive (run, send) or waits for the queues (verify), and collects. The
 * protocol of one connection is relay_parley.c's.
 */
#include "relay_parley.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "crypto/crypto.h"

/* The connections a phase opens: all of them, or only the receivers when verifying. */
static int is_active(const relay_cfg *cfg, unsigned i)
{
	return cfg->phase != RELAY_PHASE_VERIFY || relay__is_receiver(cfg, i);
}

/* ---- loop threads ---- */

static void on_tick(uv_timer_t *t)
{
	pworker *w = t->data;
	uint64_t now = uv_hrtime();
	unsigned i;

	for (i = 0; i < w->n; i++)
		relay__parley_fill(w->conns[i], now);
}

static void on_wake(uv_async_t *a)
{
	pworker *w = a->data;
	int ph = atomic_load(&w->e->phase);
	unsigned i;

	if (ph == E_SEND && !w->started) {
		w->started = 1;
		if (w->e->run.cfg->rate > 0)
			uv_timer_start(&w->lp.timer, on_tick, 1, 1);
		else
			on_tick(&w->lp.timer);
	} else if (ph == E_STOP && !w->stopped) {
		w->stopped = 1;
		for (i = 0; i < w->n; i++)
			if (w->conns[i]->t != NULL)
				transport__close(w->conns[i]->t);
		bench__loop_stop(&w->lp);
	}
}

static void worker_main(void *arg)
{
	pworker *w = arg;
	unsigned i;

	for (i = 0; i < w->n; i++)
		relay__parley_connect(w->conns[i]);
	uv_run(&w->lp.loop, UV_RUN_DEFAULT);
}

static void set_phase(pengine *e, int phase, unsigned nthreads)
{
	unsigned i;

	atomic_store(&e->phase, phase);
	for (i = 0; i < nthreads; i++)
		uv_async_send(&e->w[i].lp.wake);
}

static void kick(void *ctx)
{
	pengine *e = ctx;
	set_phase(e, E_SEND, e->nw);
}

/* ---- set-up and the calling thread ---- */

typedef struct totals {
	unsigned ready, failed, drained;
} totals;

static totals sum_counts(const pengine *e, unsigned nthreads)
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
static unsigned wait_ready(pengine *e, unsigned nthreads, relay_result *res)
{
	const relay_cfg *cfg = e->run.cfg;
	uint64_t t_open = uv_hrtime();
	totals t;

	for (;;) {
		t = sum_counts(e, nthreads);
		if (t.ready + t.failed >= e->nactive || (double)(uv_hrtime() - t_open) / 1e9 > cfg->connect_timeout_s)
			break;
		if (cfg->progress)
			fprintf(stderr, "\r\033[K%s: %u/%u ready, %u failed",
				cfg->phase == RELAY_PHASE_VERIFY ? "logging in" : "registering", t.ready, e->nactive,
				t.failed);
		uv_sleep(20);
	}
	if (cfg->progress)
		fprintf(stderr, "\r\033[K");
	relay__note_setup(res, t.ready, e->nactive, t_open);
	return t.ready;
}

/* verify: until every logged-in receiver has read its queue (or lost its connection), at most
 * drain_s. The time is reported as the drain. */
static void wait_drained(pengine *e, unsigned nthreads, unsigned ready, relay_result *res)
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

/* verify: what --phase send recorded becomes the senders' state, as if this run had sent it. */
static void load_sent(pengine *e, const relay_state *st)
{
	unsigned i;
	uint64_t q;

	for (i = 0; i < st->senders; i++) {
		relay_sender *s = &e->run.senders[i];
		s->next_seq = st->sent[i];
		atomic_store(&s->n_sent, st->sent[i]);
		for (q = 0; q < st->sent[i]; q++)
			if (relay__bits_get(&st->acked[i], q)) {
				relay__bits_set(&s->acked, q);
				atomic_fetch_add(&s->n_acked, 1);
			}
	}
	for (i = 0; i < st->conns; i++)
		memcpy(e->device_sk[i], st->device_sk[i], 64);
}

static int setup_conn(pengine *e, unsigned i)
{
	const relay_cfg *cfg = e->run.cfg;
	pconn *c = &e->c[i];
	pworker *w = &e->w[e->nactive % e->nw];

	c->w = w;
	c->idx = i;
	w->conns[w->n++] = c;
	e->nactive++;
	snprintf(c->handle, sizeof(c->handle), "%s-%u", cfg->run_tag, i);
	if (e->device_sk != NULL)
		c->device_sk = e->device_sk[i];
	if (relay__is_receiver(cfg, i)) {
		c->st = &w->st;
		c->acks = parley__calloc(cfg->ack_batch, sizeof(uint64_t));
		if (!c->acks)
			return PARLEY_E_NOMEM;
	}
	if (relay__is_sender(cfg, i) && cfg->phase != RELAY_PHASE_VERIFY) {
		c->to_idx = relay__receiver_of(cfg, i);
		c->s = &e->run.senders[i];
		snprintf(c->to, sizeof(c->to), "%s-%u", cfg->run_tag, c->to_idx);
		c->cap = cfg->rate > 0 ? cfg->open_backlog : cfg->window;
		c->sent_t = parley__calloc(c->cap, sizeof(uint64_t));
		if (!c->sent_t)
			return PARLEY_E_NOMEM;
	}
	return PARLEY_OK;
}

static int setup(pengine *e, const relay_cfg *cfg, relay_stats **stats)
{
	unsigned i, n = cfg->conns, nactive = 0;
	int rc;

	for (i = 0; i < n; i++)
		nactive += (unsigned)is_active(cfg, i);
	e->nw = cfg->threads < nactive ? cfg->threads : nactive;
	e->w = parley__calloc(e->nw, sizeof(*e->w));
	e->c = parley__calloc(n, sizeof(*e->c));
	if (cfg->phase != RELAY_PHASE_RUN)
		e->device_sk = parley__calloc(n, sizeof(*e->device_sk));
	if (!e->w || !e->c || (cfg->phase != RELAY_PHASE_RUN && !e->device_sk))
		return PARLEY_E_NOMEM;
	snprintf(e->url, sizeof(e->url), "ws://%s%s", cfg->target.host, cfg->target.path);
	for (i = 0; i < e->nw; i++) {
		pworker *w = &e->w[i];
		w->e = e;
		w->conns = parley__calloc(nactive / e->nw + 1, sizeof(*w->conns));
		w->msg = parley__malloc(cfg->size);
		dynbuf__init(&w->enc, cfg->size + 1024);
		wire__limits_default(&w->limits);
		hist__init(&w->st.e2e);
		stats[i] = &w->st;
		w->topt.addr = (const struct sockaddr *)&cfg->target.addr;
		w->topt.read_buf = w->rbuf;
		w->topt.read_buf_len = sizeof(w->rbuf);
		w->topt.connect_timeout_ms = (unsigned)(cfg->connect_timeout_s * 1000.0);
		if (!w->conns || !w->msg)
			return PARLEY_E_NOMEM;
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

static void teardown(pengine *e, relay_stats **stats)
{
	unsigned i;

	if (e->c)
		for (i = 0; i < e->run.cfg->conns; i++) {
			parley__free(e->c[i].acks);
			parley__free(e->c[i].sent_t);
		}
	if (e->w)
		for (i = 0; i < e->nw; i++) {
			parley__free(e->w[i].conns);
			parley__free(e->w[i].msg);
			dynbuf__free(&e->w[i].enc);
		}
	if (e->device_sk)
		crypto__wipe(e->device_sk, (size_t)e->run.cfg->conns * sizeof(*e->device_sk));
	parley__free(e->device_sk);
	parley__free(e->c);
	parley__free(e->w);
	parley__free(stats);
	relay__run_free(&e->run);
}

/* Starts the loop threads; returns how many run. */
static unsigned start_threads(pengine *e, int *rc)
{
	unsigned i;

	for (i = 0; i < e->nw; i++) {
		*rc = bench__loop_start(&e->w[i].lp, on_wake, worker_main, &e->w[i]);
		if (*rc != PARLEY_OK)
			break;
	}
	return i;
}

int relay__engine_parley(const relay_cfg *cfg, relay_result *res)
{
	pengine e;
	relay_stats **stats;
	unsigned i, nthreads = 0, ready;
	relay_driver d;
	struct timespec now;
	int rc;

	memset(&e, 0, sizeof(e));
	clock_gettime(CLOCK_REALTIME, &now);
	e.ts_base = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
	rc = crypto__init();
	if (rc != PARLEY_OK)
		return rc;
	rc = relay__run_init(&e.run, cfg);
	if (rc != PARLEY_OK)
		return rc;
	stats = parley__calloc(cfg->threads, sizeof(*stats));
	rc = stats != NULL ? setup(&e, cfg, stats) : PARLEY_E_NOMEM;
	if (rc == PARLEY_OK && cfg->phase == RELAY_PHASE_VERIFY)
		load_sent(&e, cfg->state);
	if (rc == PARLEY_OK)
		nthreads = start_threads(&e, &rc);
	if (rc == PARLEY_OK) {
		ready = wait_ready(&e, nthreads, res);
		if (ready == e.nactive && cfg->phase == RELAY_PHASE_VERIFY) {
			wait_drained(&e, nthreads, ready, res);
		} else if (ready == e.nactive) {
			d.kick = kick;
			d.tick = NULL;
			d.ctx = &e;
			d.stats = stats;
			d.nstats = nthreads;
			relay__drive(&e.run, &d, res);
		}
	}
	set_phase(&e, E_STOP, nthreads);
	for (i = 0; i < nthreads; i++)
		bench__loop_join(&e.w[i].lp);
	if (rc == PARLEY_OK) {
		relay__collect(&e.run, stats, nthreads, res);
		if (cfg->phase == RELAY_PHASE_SEND && res->connected == e.nactive &&
		    relay__state_save(cfg->state_path, cfg, &e.run, e.device_sk) == PARLEY_OK)
			res->state_saved = 1;
	}
	teardown(&e, stats);
	return rc;
}
