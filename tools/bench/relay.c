/* Shared part of `parley-bench relay`: message header, delivery bookkeeping, the phase driver and
 * the result collection (see relay.h). The command line and the report are in relay_cli.c. */
#include "relay.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include <parley/error.h>
#include <sodium.h>

#include "common/alloc.h"

/* Set by a SIGINT/SIGTERM while a run is in progress (relay__catch_interrupts). */
static volatile sig_atomic_t interrupted;

unsigned relay__receiver_of(const relay_cfg *cfg, unsigned sender)
{
	if (cfg->senders >= cfg->conns)
		return (sender + 1) % cfg->conns;
	return cfg->senders + sender % (cfg->conns - cfg->senders);
}

unsigned relay__node_of(const relay_cfg *cfg, unsigned c)
{
	unsigned k = cfg->nnodes ? cfg->nnodes : 1, r;

	if (!cfg->cross_node || cfg->senders >= cfg->conns || cfg->senders == 0)
		return c % k;
	r = cfg->conns - cfg->senders;
	if (c < cfg->senders)
		return (c % r) % k;
	return (c - cfg->senders + 1) % k;
}

int relay__placement_ok(const relay_cfg *cfg)
{
	unsigned i;

	if (!cfg->cross_node)
		return 1;
	if (cfg->nnodes < 2 || cfg->senders == 0)
		return 0;
	for (i = 0; i < cfg->senders; i++)
		if (relay__node_of(cfg, i) == relay__node_of(cfg, relay__receiver_of(cfg, i)))
			return 0;
	return 1;
}

int relay__is_sender(const relay_cfg *cfg, unsigned c)
{
	return c < cfg->senders;
}

int relay__is_receiver(const relay_cfg *cfg, unsigned c)
{
	return cfg->senders >= cfg->conns || c >= cfg->senders;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint64_t relay__fill(uint8_t *buf, size_t size, unsigned sender, uint64_t seq)
{
	/* xorshift64*: the content only has to be incompressible and different per message; the relay
	 * treats it as opaque ciphertext, so no real encryption is needed (see docs/benchmarks.md). */
	uint64_t x = (seq + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)sender << 32) ^ 0xD1B54A32D192ED03ull;
	uint64_t t;
	size_t i;

	for (i = RELAY_HDR; i < size; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		t = x * 0x2545F4914F6CDD1Dull;
		memcpy(buf + i, &t, size - i < 8 ? size - i : 8);
	}
	memcpy(buf, "PRLB", 4);
	put_le(buf + 4, sender, 4);
	put_le(buf + 8, seq, 8);
	t = uv_hrtime();
	put_le(buf + 16, t, 8);
	return t;
}

static void mac_of(const relay_cfg *cfg, const uint8_t *buf, unsigned receiver, uint8_t out[RELAY_MAC])
{
	crypto_generichash_state st;
	uint8_t r[4];

	put_le(r, receiver, 4);
	crypto_generichash_init(&st, cfg->key, RELAY_KEY, RELAY_MAC);
	crypto_generichash_update(&st, r, sizeof(r));
	crypto_generichash_update(&st, buf, cfg->size - RELAY_MAC);
	crypto_generichash_final(&st, out, RELAY_MAC);
}

void relay__seal(const relay_cfg *cfg, uint8_t *buf, unsigned receiver)
{
	mac_of(cfg, buf, receiver, buf + cfg->size - RELAY_MAC);
}

int relay__mac_ok(const relay_cfg *cfg, const uint8_t *buf, size_t len, unsigned receiver)
{
	uint8_t m[RELAY_MAC];

	if (len != cfg->size || len < RELAY_HDR + RELAY_MAC)
		return 0;
	mac_of(cfg, buf, receiver, m);
	return sodium_memcmp(m, buf + len - RELAY_MAC, RELAY_MAC) == 0;
}

int relay__parse(const uint8_t *buf, size_t len, unsigned *sender, uint64_t *seq, uint64_t *t_ns)
{
	if (len < RELAY_HDR || memcmp(buf, "PRLB", 4) != 0)
		return -1;
	*sender = (unsigned)get_le(buf + 4, 4);
	*seq = get_le(buf + 8, 8);
	*t_ns = get_le(buf + 16, 8);
	return 0;
}

int relay__bits_set(relay_bits *b, uint64_t i)
{
	uint64_t word = i / 64, bit = UINT64_C(1) << (i % 64), n;
	uint64_t *nw;
	int was;

	if (word >= b->nwords) {
		n = b->nwords ? b->nwords : 256;
		while (n <= word)
			n *= 2;
		nw = parley__realloc(b->w, n * sizeof(*nw));
		if (!nw)
			return -1;
		memset(nw + b->nwords, 0, (n - b->nwords) * sizeof(*nw));
		b->w = nw;
		b->nwords = n;
	}
	was = (b->w[word] & bit) != 0;
	b->w[word] |= bit;
	return was;
}

int relay__bits_get(const relay_bits *b, uint64_t i)
{
	return i / 64 < b->nwords && (b->w[i / 64] & (UINT64_C(1) << (i % 64))) != 0;
}

void relay__bits_free(relay_bits *b)
{
	parley__free(b->w);
	b->w = NULL;
	b->nwords = 0;
}

void relay__error(relay_run *run, const char *what, const char *detail)
{
	pthread_mutex_lock(&run->err_mu);
	if (run->first_error[0] == '\0')
		snprintf(run->first_error, sizeof(run->first_error), "%s%s%s", what, detail ? ": " : "",
			 detail ? detail : "");
	pthread_mutex_unlock(&run->err_mu);
}

void relay__conn_lost(relay_run *run, unsigned conn)
{
	atomic_fetch_add(&run->lost_conns, 1);
	if (relay__is_sender(run->cfg, conn))
		atomic_fetch_add(&run->lost_senders, 1);
}

static void on_interrupt(int sig)
{
	interrupted = 1;
	signal(sig, SIG_DFL); /* a second one ends the process */
}

int relay__interrupted(void)
{
	return interrupted != 0;
}

void relay__catch_interrupts(void)
{
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
}

void relay__delivered(relay_run *run, relay_stats *st, unsigned sender, uint64_t seq, uint64_t t_ns, uint64_t now)
{
	int was;

	if (sender >= run->cfg->senders) {
		atomic_fetch_add_explicit(&st->foreign, 1, memory_order_relaxed);
		relay__error(run, "delivery from an unknown sender", NULL);
		return;
	}
	was = relay__bits_set(&run->delivered[sender], seq);
	if (was < 0) {
		atomic_fetch_add_explicit(&st->errors, 1, memory_order_relaxed);
		relay__error(run, "out of memory", NULL);
		return;
	}
	if (was) {
		atomic_fetch_add_explicit(&st->dups, 1, memory_order_relaxed);
		return;
	}
	hist__record(&st->e2e, now > t_ns ? now - t_ns : 0);
	atomic_fetch_add_explicit(&st->delivered, 1, memory_order_relaxed);
}

int relay__check_body(relay_run *run, relay_stats *st, const uint8_t *body, size_t len, unsigned receiver,
		      uint64_t now)
{
	const relay_cfg *cfg = run->cfg;
	unsigned sender;
	uint64_t seq, t;

	if (len != cfg->size || relay__parse(body, len, &sender, &seq, &t) != 0) {
		atomic_fetch_add_explicit(&st->errors, 1, memory_order_relaxed);
		relay__error(run, "malformed delivery", NULL);
		return -1;
	}
	/* The MAC binds the body to its receiver: a message delivered to the wrong one fails it even if
	 * its bytes are intact. The routing check names the cause when the MAC alone would not. */
	if (!relay__mac_ok(cfg, body, len, receiver) || sender >= cfg->senders ||
	    relay__receiver_of(cfg, sender) != receiver ||
	    (cfg->phase == RELAY_PHASE_VERIFY && seq >= run->senders[sender].next_seq)) {
		atomic_fetch_add_explicit(&st->corrupt, 1, memory_order_relaxed);
		relay__error(run, "corrupted or misrouted message", NULL);
		return -1;
	}
	relay__delivered(run, st, sender, seq, t, now);
	return (int)sender;
}

void relay__acked(relay_run *run, relay_sender *s, uint64_t seq, uint64_t t_ns, uint64_t now)
{
	int was = relay__bits_set(&s->acked, seq);

	if (was != 0) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(run, was < 0 ? "out of memory" : "message acked twice", NULL);
		return;
	}
	hist__record(&s->ack_lat, now > t_ns ? now - t_ns : 0);
	atomic_fetch_add_explicit(&s->n_acked, 1, memory_order_relaxed);
}

static uint64_t budget_of(const relay_cfg *cfg, unsigned i)
{
	if (!cfg->messages)
		return UINT64_MAX;
	return cfg->messages / cfg->senders + (i < cfg->messages % cfg->senders ? 1 : 0);
}

uint64_t relay__due(const relay_run *run, const relay_sender *s, uint64_t now)
{
	const relay_cfg *cfg = run->cfg;
	uint64_t budget = budget_of(cfg, s->idx), due;
	double per_sender, el;

	if (!atomic_load_explicit(&run->sending, memory_order_relaxed))
		return 0;
	if (cfg->rate <= 0)
		return budget;
	/* Each sender's schedule is offset by a fraction of its interval, so M senders at rate R/M
	 * together produce evenly spaced messages at rate R rather than M-message bursts. */
	per_sender = cfg->rate / cfg->senders;
	el = now > run->t0 ? (double)(now - run->t0) / 1e9 : 0.0;
	due = (uint64_t)(el * per_sender + (double)s->idx / cfg->senders) + 0;
	return due < budget ? due : budget;
}

void relay__fill_window(const relay_run *run, relay_sender *s, uint64_t now, void (*send)(void *conn),
			void *conn)
{
	const relay_cfg *cfg = run->cfg;
	uint64_t due = relay__due(run, s, now);

	if (cfg->rate <= 0) {
		while (s->in_flight < cfg->window && s->next_seq < due)
			send(conn);
		return;
	}
	while (s->next_seq + s->skipped < due) {
		if (s->in_flight >= cfg->open_backlog) {
			s->skipped += due - (s->next_seq + s->skipped);
			break;
		}
		send(conn);
	}
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
	nanosleep(&ts, NULL);
}

typedef struct sums {
	uint64_t sent, acked, errors, delivered;
} sums;

static void sum_now(const relay_run *run, const relay_driver *d, sums *t)
{
	unsigned i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < run->cfg->senders; i++) {
		t->sent += atomic_load_explicit(&run->senders[i].n_sent, memory_order_relaxed);
		t->acked += atomic_load_explicit(&run->senders[i].n_acked, memory_order_relaxed);
		t->errors += atomic_load_explicit(&run->senders[i].n_errors, memory_order_relaxed);
	}
	for (i = 0; i < d->nstats; i++)
		t->delivered += atomic_load_explicit(&d->stats[i]->delivered, memory_order_relaxed);
}

/* Why the send phase must end now, before its planned end (NULL: it need not). */
static const char *early_stop(relay_run *run)
{
	if (interrupted) {
		atomic_store(&run->stopping, 1);
		return "interrupted";
	}
	if (atomic_load(&run->stopping))
		return "stopped";
	if (run->cfg->senders > 0 && atomic_load(&run->lost_senders) >= run->cfg->senders)
		return "every sender's connection was lost";
	return NULL;
}

/* --crash-after: SIGKILL the server once enough messages are acked, from here, so the point of the
 * crash does not depend on a script's timing. */
static void maybe_crash(const relay_cfg *cfg, uint64_t acked, int *done)
{
	if (*done || !cfg->crash_after || acked < cfg->crash_after || cfg->server_pid <= 0)
		return;
	*done = 1;
	kill((pid_t)cfg->server_pid, SIGKILL);
	if (cfg->progress)
		fprintf(stderr, "\r\033[K--crash-after: SIGKILL sent to %ld after %llu acks\n", cfg->server_pid,
			(unsigned long long)acked);
}

extern char **environ;

/* --before-send: /bin/sh -c CMD, waited for; 0 when it exited 0. */
static int run_command(const char *cmd)
{
	char *argv[] = {"sh", "-c", (char *)(uintptr_t)cmd, NULL};
	pid_t pid;
	int st;

	if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* --ready-file: "ready N" under a temporary name, then renamed, so a script polling for it never reads
 * half a file. */
static int write_ready(const char *path, unsigned n)
{
	char tmp[4096];
	FILE *f;
	int ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp) || (f = fopen(tmp, "w")) == NULL)
		return -1;
	ok = fprintf(f, "ready %u\n", n) > 0;
	ok = fclose(f) == 0 && ok;
	return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/* Every connection is ready and nothing was sent yet: the moment a script resets a server's statistics
 * (--before-send), so that set-up work (registrations, key uploads) is not counted per message, and
 * learns that the connections are up (--ready-file). NULL, or why the run must not send. */
static const char *before_sending(const relay_cfg *cfg)
{
	if (cfg->before_send && run_command(cfg->before_send) != 0)
		return "the --before-send command failed";
	if (cfg->ready_file && write_ready(cfg->ready_file, cfg->conns) != 0)
		return "cannot write the --ready-file";
	return NULL;
}

void relay__drive(relay_run *run, const relay_driver *d, relay_result *res)
{
	const relay_cfg *cfg = run->cfg;
	uint64_t now, t_stop, last_p, last_acked = 0, last_del = 0;
	double el, cap = cfg->messages ? cfg->max_time_s : cfg->duration_s;
	int crashed = 0;
	sums t;

	res->planned_s = cap;
	res->stop_reason = before_sending(cfg);
	if (res->stop_reason != NULL) {
		relay__error(run, res->stop_reason, cfg->before_send);
		return; /* nothing sent: send_s 0 */
	}
	run->t0 = uv_hrtime();
	last_p = run->t0;
	atomic_store(&run->sending, 1);
	if (d->kick)
		d->kick(d->ctx);
	for (;;) {
		sleep_ns(d->tick ? 500000ull : 20000000ull);
		now = uv_hrtime();
		if (d->tick)
			d->tick(d->ctx, now);
		el = (double)(now - run->t0) / 1e9;
		sum_now(run, d, &t);
		maybe_crash(cfg, t.acked, &crashed);
		if (cfg->progress && now - last_p >= 250000000ull) {
			fprintf(stderr, "\r\033[K[%6.1fs] sent %llu, acked %llu (%.0f/s), delivered %llu (%.0f/s), %llu errors",
				el, (unsigned long long)t.sent, (unsigned long long)t.acked,
				(double)(t.acked - last_acked) * 1e9 / (double)(now - last_p),
				(unsigned long long)t.delivered,
				(double)(t.delivered - last_del) * 1e9 / (double)(now - last_p),
				(unsigned long long)t.errors);
			last_acked = t.acked;
			last_del = t.delivered;
			last_p = now;
		}
		if (el >= cap)
			break;
		if (cfg->messages && t.acked + t.errors >= cfg->messages)
			break;
		res->stop_reason = early_stop(run);
		if (res->stop_reason)
			break;
	}
	atomic_store(&run->sending, 0);
	/* The send phase lasted until now, whatever was planned: the rates are over this time. */
	t_stop = uv_hrtime();
	sum_now(run, d, &t);
	res->send_s = (double)(t_stop - run->t0) / 1e9;
	res->acked_at_stop = t.acked;
	res->delivered_at_stop = t.delivered;
	/* Drain: everything sent should be acked and everything acked delivered, unless nothing that could
	 * still answer is connected. */
	for (;;) {
		sum_now(run, d, &t);
		now = uv_hrtime();
		if ((t.acked + t.errors >= t.sent && (t.delivered >= t.acked || !run->expect_delivery)) ||
		    (double)(now - t_stop) / 1e9 >= cfg->drain_s || atomic_load(&run->stopping) || interrupted ||
		    atomic_load(&run->lost_conns) >= run->active_conns)
			break;
		sleep_ns(5000000ull);
	}
	res->drain_s = (double)(uv_hrtime() - t_stop) / 1e9;
	if (cfg->progress)
		fprintf(stderr, "\r\033[Kdone: sent %llu, acked %llu, delivered %llu in %.2f s (+%.2f s drain)%s%s\n",
			(unsigned long long)t.sent, (unsigned long long)t.acked, (unsigned long long)t.delivered,
			res->send_s, res->drain_s, res->stop_reason ? "; stopped early: " : "",
			res->stop_reason ? res->stop_reason : "");
}

void relay__note_setup(relay_result *res, unsigned ready, unsigned n, uint64_t t_open)
{
	res->connected = ready;
	res->connect_failed = n - ready;
	res->connect_s = (double)(uv_hrtime() - t_open) / 1e9;
}

void relay__drive_when_ready(relay_run *run, const relay_driver *d, relay_result *res, unsigned ready, unsigned n,
			     uint64_t t_open)
{
	relay__note_setup(res, ready, n, t_open);
	if (ready == n)
		relay__drive(run, d, res);
}

relay_stats *relay__stats_new(relay_stats **list, unsigned *n)
{
	relay_stats *st = parley__calloc(1, sizeof(*st));

	if (st != NULL) {
		hist__init(&st->e2e);
		list[(*n)++] = st;
	}
	return st;
}

void relay__collect(relay_run *run, relay_stats **stats, unsigned nstats, relay_result *res)
{
	const relay_cfg *cfg = run->cfg;
	unsigned i;
	uint64_t q;

	hist__init(&res->ack_lat);
	hist__init(&res->e2e);
	for (i = 0; i < cfg->senders; i++) {
		relay_sender *s = &run->senders[i];
		uint64_t n = atomic_load(&s->n_sent);
		res->sent += n;
		res->acked += atomic_load(&s->n_acked);
		res->errors += atomic_load(&s->n_errors);
		res->skipped += s->skipped;
		hist__merge(&res->ack_lat, &s->ack_lat);
		for (q = 0; q < n; q++) {
			int a = relay__bits_get(&s->acked, q), dl = relay__bits_get(&run->delivered[i], q);
			if (!a && !dl) {
				res->unsettled++;
			} else if (!a) {
				res->extra++;
			} else if (!dl && run->expect_delivery) {
				if (res->lost == 0) {
					res->first_lost_sender = i;
					res->first_lost_seq = q;
				}
				res->lost++;
			}
		}
	}
	for (i = 0; i < nstats; i++) {
		res->delivered += atomic_load(&stats[i]->delivered);
		res->dups += atomic_load(&stats[i]->dups);
		res->foreign += atomic_load(&stats[i]->foreign);
		res->errors += atomic_load(&stats[i]->errors);
		res->corrupt += atomic_load(&stats[i]->corrupt);
		hist__merge(&res->e2e, &stats[i]->e2e);
	}
	res->conns_lost = atomic_load(&run->lost_conns);
	if (res->first_error[0] == '\0')
		memcpy(res->first_error, run->first_error, sizeof(res->first_error));
}

int relay__run_init(relay_run *run, const relay_cfg *cfg)
{
	unsigned i;

	memset(run, 0, sizeof(*run));
	run->cfg = cfg;
	run->active_conns = cfg->conns;
	run->expect_delivery = cfg->phase != RELAY_PHASE_SEND;
	pthread_mutex_init(&run->err_mu, NULL);
	/* at least one: --hold runs without senders and calloc(0) may return NULL */
	run->senders = parley__calloc(cfg->senders ? cfg->senders : 1, sizeof(*run->senders));
	run->delivered = parley__calloc(cfg->senders ? cfg->senders : 1, sizeof(*run->delivered));
	if (!run->senders || !run->delivered) {
		parley__free(run->senders);
		parley__free(run->delivered);
		return PARLEY_E_NOMEM;
	}
	for (i = 0; i < cfg->senders; i++) {
		relay_sender *s = &run->senders[i];
		s->idx = i;
		s->receiver = relay__receiver_of(cfg, i);
		pthread_mutex_init(&s->mu, NULL);
		hist__init(&s->ack_lat);
	}
	return PARLEY_OK;
}

void relay__run_free(relay_run *run)
{
	unsigned i;

	for (i = 0; i < run->cfg->senders; i++) {
		relay__bits_free(&run->senders[i].acked);
		relay__bits_free(&run->delivered[i]);
		pthread_mutex_destroy(&run->senders[i].mu);
	}
	parley__free(run->senders);
	parley__free(run->delivered);
	pthread_mutex_destroy(&run->err_mu);
}
