/* WebSocket load engine: see wsload.h for the phases.
 *
 * Threading: the calling thread only sets run->phase and wakes each worker with uv_async_send; every
 * connection, session and histogram belongs to exactly one worker thread. Counters the calling
 * thread reads for the progress line are relaxed atomics; the histograms are read only after join.
 */
#include "wsload.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "common/dynbuf.h"
#include "loop.h"
#include "transport/transport.h"
#include "wire/wire.h"

enum phase { PH_CONNECT = 0, PH_MEASURE = 1, PH_STOP = 2 };

enum conn_state { C_IDLE = 0, C_CONNECTING, C_OPEN, C_DONE };

struct worker;

typedef struct conn {
	transport_conn *t; /* NULL once on_close ran */
	struct worker *w;
	enum conn_state state;
	int in_flight;
	int timed_out; /* closed by the connect-phase timeout */
	uint64_t next_id;
	uint64_t sent_at;
} conn;

typedef struct worker {
	struct bench_run *run;
	bench_loop lp; /* its timer is the connect-phase deadline */
	conn *conns;
	unsigned n;
	unsigned next_connect; /* conns[0..next_connect) were attempted */
	unsigned pending;      /* attempts not yet resolved */
	unsigned resolved;     /* established + failed */
	int seen_phase;
	transport_options topt;
	dynbuf enc;
	wire_limits limits;
	uint8_t *payload;
	hist lat;
	char first_error[160];
	_Atomic uint64_t connected, failed, round_trips, errors, lost;
	_Atomic int connect_done;
	/* Every connection's reads land here (transport_options.read_buf): the loop reads one stream at
	 * a time and the transport consumes every byte before the read callback returns. */
	uint8_t rbuf[64 * 1024];
} worker;

struct bench_run {
	bench_cfg cfg;
	char url[400]; /* ws://HOST:PORT/path of the target, for the transport */
	worker *workers;
	unsigned nworkers;
	unsigned nthreads; /* workers whose thread runs */
	_Atomic int phase;
	_Atomic uint64_t issued;  /* requests mode: round trips started */
	_Atomic uint64_t settled; /* requests mode: answered, or lost with the connection */
	uint64_t t_open, t_connected, t_measure, t_stop;
};

static void on_open(void *ctx, transport_conn *t);
static void on_message(void *ctx, transport_conn *t, const uint8_t *buf, size_t len);
static void on_close(void *ctx, transport_conn *t, int err, uint16_t ws_code);

/* Keeps the first error of the thread as "what: detail" (detail may be NULL). */
static void note_error(worker *w, const char *what, const char *detail)
{
	if (w->first_error[0] == '\0')
		snprintf(w->first_error, sizeof(w->first_error), "%s%s%s", what, detail ? ": " : "",
			 detail ? detail : "");
}

static int phase_of(const worker *w)
{
	return atomic_load_explicit(&w->run->phase, memory_order_relaxed);
}

/* ---- connect phase bookkeeping ---- */

static void check_connect_done(worker *w)
{
	if (w->resolved == w->n && !atomic_load_explicit(&w->connect_done, memory_order_relaxed)) {
		uv_timer_stop(&w->lp.timer);
		atomic_store(&w->connect_done, 1);
	}
}

/* One attempt is over without a connection. */
static void attempt_failed(worker *w)
{
	w->pending--;
	w->resolved++;
	atomic_fetch_add_explicit(&w->failed, 1, memory_order_relaxed);
}

static void start_connect(conn *c)
{
	worker *w = c->w;
	transport_callbacks cb = {.ctx = c, .on_open = on_open, .on_message = on_message, .on_close = on_close};
	int rc;

	c->state = C_CONNECTING;
	w->pending++;
	rc = transport__connect(&w->lp.loop, w->run->url, &w->topt, &cb, &c->t);
	if (rc != PARLEY_OK) {
		c->t = NULL;
		c->state = C_DONE;
		note_error(w, "connect", parley_strerror(rc));
		attempt_failed(w);
	}
}

/* Keeps up to connect_batch attempts in progress: a burst of 10,000 SYNs would overflow the server's
 * accept queue and turn into retransmission delays that say nothing about the server. */
static void ramp(worker *w)
{
	while (w->pending < w->run->cfg.connect_batch && w->next_connect < w->n && phase_of(w) != PH_STOP)
		start_connect(&w->conns[w->next_connect++]);
	check_connect_done(w);
}

/* ---- round trips ---- */

static void send_request(conn *c)
{
	worker *w = c->w;
	const bench_cfg *cfg = &w->run->cfg;
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__PingRequest ping = PARLEY__WIRE__PING_REQUEST__INIT;
	uint64_t id = ++c->next_id;
	int rc;

	if (cfg->requests &&
	    atomic_fetch_add_explicit(&w->run->issued, 1, memory_order_relaxed) >= cfg->requests)
		return;
	dynbuf__reset(&w->enc);
	if (cfg->mode == BENCH_MODE_PARLEY) {
		ping.payload.data = w->payload;
		ping.payload.len = cfg->payload;
		req.id = id;
		req.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
		req.ping = &ping;
		rc = wire__encode_request(&req, &w->enc);
	} else {
		/* The echo message carries the id in its first 8 bytes so a stale echo is detected. */
		rc = dynbuf__append(&w->enc, w->payload, cfg->payload);
		if (rc == PARLEY_OK && cfg->payload >= sizeof(id))
			memcpy(w->enc.data, &id, sizeof(id));
	}
	if (rc == PARLEY_OK) {
		c->sent_at = uv_hrtime();
		c->in_flight = 1;
		rc = transport__send(c->t, w->enc.data, w->enc.len);
	}
	if (rc != PARLEY_OK) {
		/* on_close counts the connection as lost */
		c->in_flight = 0;
		note_error(w, "send", parley_strerror(rc));
		transport__close(c->t);
	}
}

/* 1 when msg is the answer to c's request in flight. Sets *skip for frames to ignore (the Challenge
 * push parleyd sends on every new connection). */
static int check_answer(conn *c, const uint8_t *msg, size_t len, int *skip)
{
	worker *w = c->w;
	const bench_cfg *cfg = &w->run->cfg;
	wire_frame f;
	const Parley__Wire__Response *r;
	int ok = 0, rc;

	*skip = 0;
	if (cfg->mode == BENCH_MODE_ECHO) {
		if (len != cfg->payload) {
			note_error(w, "echo of the wrong length", NULL);
			return 0;
		}
		if (len >= sizeof(c->next_id) && memcmp(msg, &c->next_id, sizeof(c->next_id)) != 0) {
			note_error(w, "echo of another message", NULL);
			return 0;
		}
		return 1;
	}
	rc = wire__decode_frame(msg, len, &w->limits, &f);
	if (rc != PARLEY_OK) {
		note_error(w, "undecodable frame", parley_strerror(rc));
		wire__frame_free(&f);
		return 0;
	}
	if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH) {
		*skip = 1;
	} else if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
		r = f.frame->response;
		if (r->id != c->next_id)
			note_error(w, "response to an unknown request id", NULL);
		else if (r->status != 0)
			note_error(w, "error response", r->message ? r->message : "(no message)");
		else if (r->body_case != PARLEY__WIRE__RESPONSE__BODY_PING || r->ping->payload.len != cfg->payload)
			note_error(w, "response is not the ping answer", NULL);
		else
			ok = 1;
	} else {
		note_error(w, "server sent a request frame", NULL);
	}
	wire__frame_free(&f);
	return ok;
}

static void on_message(void *ctx, transport_conn *t, const uint8_t *buf, size_t len)
{
	conn *c = ctx;
	worker *w = c->w;
	uint64_t now = uv_hrtime();
	int ok, skip, measuring = phase_of(w) == PH_MEASURE;

	(void)t;
	ok = check_answer(c, buf, len, &skip);
	if (skip)
		return;
	if (!c->in_flight) {
		atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
		note_error(w, "unsolicited message", NULL);
		return;
	}
	c->in_flight = 0;
	if (w->run->cfg.requests)
		atomic_fetch_add_explicit(&w->run->settled, 1, memory_order_relaxed);
	if (!measuring)
		return;
	if (ok) {
		hist__record(&w->lat, now - c->sent_at);
		atomic_fetch_add_explicit(&w->round_trips, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
	}
	send_request(c);
}

/* ---- connection events ---- */

static void on_open(void *ctx, transport_conn *t)
{
	conn *c = ctx;
	worker *w = c->w;

	(void)t;
	c->state = C_OPEN;
	w->pending--;
	w->resolved++;
	atomic_fetch_add_explicit(&w->connected, 1, memory_order_relaxed);
	if (phase_of(w) == PH_MEASURE)
		send_request(c);
	ramp(w);
}

/* During the connect phase an end counts as a failed attempt; once open, as a lost connection. */
static void on_close(void *ctx, transport_conn *t, int err, uint16_t ws_code)
{
	conn *c = ctx;
	worker *w = c->w;
	const char *why = transport__error_text(t);
	int stopping = phase_of(w) == PH_STOP;

	(void)ws_code;
	c->t = NULL;
	if (c->state == C_CONNECTING) {
		attempt_failed(w);
		if (!stopping)
			note_error(w, c->timed_out ? "connect timeout" : why, NULL);
	} else if (c->state == C_OPEN && !stopping) {
		atomic_fetch_add_explicit(&w->lost, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
		if (c->in_flight)
			atomic_fetch_add_explicit(&w->run->settled, 1, memory_order_relaxed);
		note_error(w, why[0] ? why : err == PARLEY_OK ? "closed by the server" : parley_strerror(err), NULL);
	}
	c->state = C_DONE;
	c->in_flight = 0;
	ramp(w);
}

/* ---- phase changes ---- */

static void on_connect_timeout(uv_timer_t *tm)
{
	worker *w = tm->data;
	unsigned i;

	/* Attempts in progress are aborted (on_close counts them); those never started count as failed
	 * too: the phase is over. */
	for (i = 0; i < w->next_connect; i++)
		if (w->conns[i].state == C_CONNECTING) {
			w->conns[i].timed_out = 1;
			transport__close(w->conns[i].t);
		}
	if (w->next_connect < w->n) {
		note_error(w, "connect timeout", NULL);
		atomic_fetch_add_explicit(&w->failed, w->n - w->next_connect, memory_order_relaxed);
		w->resolved += w->n - w->next_connect;
		w->next_connect = w->n;
	}
	check_connect_done(w);
}

/* Every connection gets a close handshake (bounded by the transport's grace period); the loop ends
 * when the last one is over. */
static void stop_worker(worker *w)
{
	unsigned i;

	for (i = 0; i < w->next_connect; i++)
		if (w->conns[i].t != NULL)
			transport__close(w->conns[i].t);
	bench__loop_stop(&w->lp);
}

static void on_wake(uv_async_t *a)
{
	worker *w = a->data;
	int ph = phase_of(w);
	unsigned i;

	if (ph == w->seen_phase)
		return;
	w->seen_phase = ph;
	if (ph == PH_MEASURE) {
		for (i = 0; i < w->next_connect; i++)
			if (w->conns[i].state == C_OPEN && !w->conns[i].in_flight)
				send_request(&w->conns[i]);
	} else if (ph == PH_STOP) {
		stop_worker(w);
	}
}

static void worker_main(void *arg)
{
	worker *w = arg;

	uv_timer_start(&w->lp.timer, on_connect_timeout, (uint64_t)(w->run->cfg.connect_timeout_s * 1000.0), 0);
	ramp(w);
	/* The wake handle keeps the loop alive until PH_STOP closes it with every connection. */
	uv_run(&w->lp.loop, UV_RUN_DEFAULT);
}

/* ---- the calling thread ---- */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

typedef struct totals {
	uint64_t connected, failed, round_trips, errors, lost;
	unsigned connect_done;
} totals;

static void sum(const bench_run *run, totals *t)
{
	unsigned i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < run->nworkers; i++) {
		worker *w = &run->workers[i];
		t->connected += atomic_load_explicit(&w->connected, memory_order_relaxed);
		t->failed += atomic_load_explicit(&w->failed, memory_order_relaxed);
		t->round_trips += atomic_load_explicit(&w->round_trips, memory_order_relaxed);
		t->errors += atomic_load_explicit(&w->errors, memory_order_relaxed);
		t->lost += atomic_load_explicit(&w->lost, memory_order_relaxed);
		t->connect_done += (unsigned)atomic_load(&w->connect_done);
	}
}

static void wake_all(bench_run *run, int phase)
{
	unsigned i;

	atomic_store(&run->phase, phase);
	for (i = 0; i < run->nthreads; i++)
		uv_async_send(&run->workers[i].lp.wake);
}

static void free_run(bench_run *run)
{
	unsigned i;

	for (i = 0; i < run->nworkers; i++) {
		worker *w = &run->workers[i];
		parley__free(w->conns);
		parley__free(w->payload);
		dynbuf__free(&w->enc);
	}
	parley__free(run->workers);
	parley__free(run);
}

int bench_ws__open(const bench_cfg *cfg, bench_run **out)
{
	bench_run *run;
	unsigned i, base, extra;
	int rc = PARLEY_OK;
	totals t;
	double waited;

	*out = NULL;
	run = parley__calloc(1, sizeof(*run));
	if (!run)
		return PARLEY_E_NOMEM;
	run->cfg = *cfg;
	snprintf(run->url, sizeof(run->url), "ws://%s%s", cfg->target.host, cfg->target.path);
	run->nworkers = cfg->threads < cfg->clients ? cfg->threads : cfg->clients;
	if (run->nworkers == 0)
		run->nworkers = 1;
	run->workers = parley__calloc(run->nworkers, sizeof(worker));
	if (!run->workers) {
		parley__free(run);
		return PARLEY_E_NOMEM;
	}
	base = cfg->clients / run->nworkers;
	extra = cfg->clients % run->nworkers;
	for (i = 0; i < run->nworkers; i++) {
		worker *w = &run->workers[i];
		unsigned k;
		w->run = run;
		w->n = base + (i < extra ? 1 : 0);
		w->conns = parley__calloc(w->n ? w->n : 1, sizeof(conn));
		w->payload = parley__malloc(cfg->payload ? cfg->payload : 1);
		dynbuf__init(&w->enc, cfg->payload + 64);
		wire__limits_default(&w->limits);
		hist__init(&w->lat);
		if (!w->conns || !w->payload) {
			run->nworkers = i + 1;
			free_run(run);
			return PARLEY_E_NOMEM;
		}
		for (k = 0; k < w->n; k++)
			w->conns[k].w = w;
		/* The target is a loopback literal (target.h): no resolver round trip per connection. */
		w->topt.addr = (const struct sockaddr *)&run->cfg.target.addr;
		w->topt.read_buf = w->rbuf;
		w->topt.read_buf_len = sizeof(w->rbuf);
		w->topt.connect_timeout_ms = (unsigned)(cfg->connect_timeout_s * 1000.0);
		memset(w->payload, 'p', cfg->payload);
	}
	run->t_open = uv_hrtime();
	for (i = 0; i < run->nworkers && rc == PARLEY_OK; i++) {
		rc = bench__loop_start(&run->workers[i].lp, on_wake, worker_main, &run->workers[i]);
		run->nthreads += rc == PARLEY_OK;
	}
	if (rc != PARLEY_OK) {
		wake_all(run, PH_STOP);
		for (i = 0; i < run->nthreads; i++)
			bench__loop_join(&run->workers[i].lp);
		free_run(run);
		return rc;
	}
	/* Workers enforce the connect timeout themselves; the extra margin here only guards against a
	 * worker that cannot run at all, so the benchmark still ends by itself. */
	for (;;) {
		sum(run, &t);
		waited = (double)(uv_hrtime() - run->t_open) / 1e9;
		if (cfg->progress)
			fprintf(stderr, "\r\033[K[%6.1fs] connecting: %llu/%u open, %llu failed", waited,
				(unsigned long long)t.connected, cfg->clients, (unsigned long long)t.failed);
		if (t.connect_done == run->nworkers || waited > cfg->connect_timeout_s + 5.0)
			break;
		sleep_ms(50);
	}
	if (cfg->progress)
		fprintf(stderr, "\n");
	run->t_connected = uv_hrtime();
	*out = run;
	return PARLEY_OK;
}

uint64_t bench_ws__connected(const bench_run *run)
{
	totals t;

	sum(run, &t);
	return t.connected;
}

void bench_ws__measure(bench_run *run)
{
	const bench_cfg *cfg = &run->cfg;
	totals t;
	uint64_t last_rt = 0, last_t, now;
	double el, cap = cfg->requests ? cfg->max_time_s : cfg->duration_s;

	run->t_measure = uv_hrtime();
	last_t = run->t_measure;
	wake_all(run, PH_MEASURE);
	for (;;) {
		sleep_ms(cfg->requests ? 10 : 50);
		now = uv_hrtime();
		el = (double)(now - run->t_measure) / 1e9;
		sum(run, &t);
		if (cfg->progress && now - last_t >= 250000000ull) {
			fprintf(stderr, "\r\033[K[%6.1fs] %llu round trips, %.0f/s now, %llu errors, %llu open", el,
				(unsigned long long)t.round_trips,
				(double)(t.round_trips - last_rt) * 1e9 / (double)(now - last_t),
				(unsigned long long)t.errors, (unsigned long long)(t.connected - t.lost));
			last_rt = t.round_trips;
			last_t = now;
		}
		if (el >= cap)
			break;
		if (cfg->requests && atomic_load(&run->settled) >= cfg->requests)
			break;
		if (t.connected == t.lost)
			break; /* nothing left to measure */
	}
	run->t_stop = uv_hrtime();
	/* Stop before anything else: round trips completing after t_stop are not counted. */
	wake_all(run, PH_STOP);
	if (cfg->progress)
		fprintf(stderr, "\n");
}

void bench_ws__close(bench_run *run, bench_result *res)
{
	totals t;
	unsigned i;

	if (atomic_load(&run->phase) != PH_STOP)
		wake_all(run, PH_STOP);
	for (i = 0; i < run->nthreads; i++)
		bench__loop_join(&run->workers[i].lp);
	if (res) {
		memset(res, 0, sizeof(*res));
		hist__init(&res->latency);
		sum(run, &t);
		res->connected = t.connected;
		res->connect_failed = t.failed;
		res->round_trips = t.round_trips;
		res->errors = t.errors;
		res->lost = t.lost;
		res->connect_s = (double)(run->t_connected - run->t_open) / 1e9;
		res->elapsed_s = run->t_measure ? (double)(run->t_stop - run->t_measure) / 1e9 : 0.0;
		for (i = 0; i < run->nworkers; i++) {
			hist__merge(&res->latency, &run->workers[i].lat);
			if (res->first_error[0] == '\0' && run->workers[i].first_error[0])
				memcpy(res->first_error, run->workers[i].first_error, sizeof(res->first_error));
		}
	}
	free_run(run);
}
