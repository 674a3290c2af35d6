/* `parley-bench fanout` (fanout.h): the tracking every way shares, the closed loop, the command and
 * its report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <parley/error.h>

#include "bench.h"
#include "fanout.h"

/* ---- tracking ---- */

int fanout__track_init(fo_track *t, const char *name, const fo_cfg *cfg)
{
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->messages = cfg->messages;
	t->receivers = cfg->receivers;
	t->t_sent = calloc(cfg->messages, sizeof(*t->t_sent));
	t->n_got = calloc(cfg->messages, sizeof(*t->n_got));
	t->n_acks = calloc(cfg->messages, sizeof(*t->n_acks));
	t->seen = calloc(cfg->messages, cfg->receivers);
	hist__init(&t->last);
	hist__init(&t->ack);
	if (t->t_sent == NULL || t->n_got == NULL || t->n_acks == NULL || t->seen == NULL) {
		fanout__track_free(t);
		return PARLEY_E_NOMEM;
	}
	return PARLEY_OK;
}

void fanout__track_free(fo_track *t)
{
	free(t->t_sent);
	free(t->n_got);
	free(t->n_acks);
	free(t->seen);
	t->t_sent = NULL;
	t->n_got = t->n_acks = NULL;
	t->seen = NULL;
}

void fanout__track_error(fo_track *t, const char *what, const char *why)
{
	t->errors++;
	if (t->first_error[0] == '\0')
		snprintf(t->first_error, sizeof(t->first_error), "%s%s%s", what, why != NULL ? ": " : "",
			 why != NULL ? why : "");
}

void fanout__track_sent(fo_track *t, uint64_t seq, unsigned acks, uint64_t now, uint8_t *body, size_t size)
{
	/* fixed bytes after the sequence number: the same opaque body every time */
	memset(body, 0xA5, size);
	for (unsigned i = 0; i < 8; i++)
		body[i] = (uint8_t)(seq >> (8 * i));
	t->t_sent[seq] = now;
	t->n_acks[seq] = acks;
	if (t->sent == 0)
		t->t_first = now;
	t->sent++;
}

void fanout__track_acked(fo_track *t, uint64_t seq, int ok, const char *why, uint64_t now)
{
	if (seq >= t->sent || t->n_acks[seq] == 0) {
		fanout__track_error(t, "an ack for no message awaiting one", NULL);
		return;
	}
	if (!ok)
		fanout__track_error(t, "send refused", why);
	if (--t->n_acks[seq] == 0) {
		hist__record(&t->ack, now - t->t_sent[seq]);
		t->acked++;
	}
}

void fanout__track_got(fo_track *t, unsigned r, const uint8_t *body, size_t len, uint64_t now)
{
	uint64_t seq = 0;
	if (len < FO_MIN_SIZE || r >= t->receivers) {
		t->foreign++;
		return;
	}
	for (unsigned i = 0; i < 8; i++)
		seq |= (uint64_t)body[i] << (8 * i);
	if (seq >= t->sent) {
		t->foreign++;
		return;
	}
	if (t->seen[seq * t->receivers + r]) {
		t->dups++;
		return;
	}
	t->seen[seq * t->receivers + r] = 1;
	t->delivered++;
	t->t_last = now;
	if (++t->n_got[seq] == t->receivers) {
		hist__record(&t->last, now - t->t_sent[seq]);
		t->completed++;
	}
}

int fanout__track_ok(const fo_track *t)
{
	return t->completed == t->messages && t->acked == t->messages && t->delivered == t->messages * t->receivers &&
	       t->dups == 0 && t->foreign == 0 && t->errors == 0;
}

/* ---- the loop ---- */

static void on_tick(uv_timer_t *h)
{
	(void)h; /* only wakes uv_run so the deadline is checked */
}

/* Runs the loop until done(arg) or the deadline: 0, or -1 on timeout. */
static int run_until(uv_loop_t *loop, double timeout_s, int (*done)(void *), void *arg, void (*step)(void *))
{
	uv_timer_t tick;
	uint64_t deadline = uv_hrtime() + (uint64_t)(timeout_s * 1e9);
	int rc = 0;

	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, on_tick, 100, 100);
	for (;;) {
		if (step != NULL)
			step(arg);
		if (done(arg))
			break;
		if (uv_hrtime() > deadline) {
			rc = -1;
			break;
		}
		uv_run(loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return rc;
}

static int flag_set(void *arg)
{
	return *(const volatile int *)arg != 0;
}

int fanout__wait(uv_loop_t *loop, const volatile int *flag, double timeout_s)
{
	return run_until(loop, timeout_s, flag_set, (void *)flag, NULL);
}

struct drive {
	const fo_cfg *cfg;
	fo_track *t;
	void (*send)(void *arg, uint64_t seq);
	void *arg;
};

static int drive_done(void *arg)
{
	const struct drive *d = arg;
	const fo_track *t = d->t;
	return t->errors > 0 || (t->completed == t->messages && t->acked == t->messages);
}

static void drive_step(void *arg)
{
	struct drive *d = arg;
	fo_track *t = d->t;
	while (t->errors == 0 && t->sent < t->messages && t->sent - t->completed < d->cfg->window)
		d->send(d->arg, t->sent);
}

void fanout__drive(uv_loop_t *loop, const fo_cfg *cfg, fo_track *t, void (*send)(void *arg, uint64_t seq), void *arg)
{
	struct drive d = {cfg, t, send, arg};
	if (run_until(loop, cfg->timeout_s, drive_done, &d, drive_step) != 0)
		fanout__track_error(t, "timed out", NULL);
}

/* ---- the command ---- */

static double rate_of(const fo_track *t)
{
	double s = t->t_last > t->t_first ? (double)(t->t_last - t->t_first) / 1e9 : 0;
	return s > 0 ? (double)t->delivered / s : 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void report_text(const fo_cfg *cfg, fo_track *const *tr, size_t n)
{
	printf("fan-out: 1 sender -> %u receiving devices, %llu messages of %zu bytes, window %u\n", cfg->receivers,
	       (unsigned long long)cfg->messages, cfg->size, cfg->window);
	printf("%-10s %14s %12s %12s %12s %12s  %s\n", "way", "deliveries/s", "last p50 ms", "last p99 ms", "ack p50 ms",
	       "ack p99 ms", "check");
	for (size_t i = 0; i < n; i++) {
		const fo_track *t = tr[i];
		printf("%-10s %14.0f %12.2f %12.2f %12.2f %12.2f  %s%s\n", t->name, rate_of(t),
		       ms(hist__percentile(&t->last, 50)), ms(hist__percentile(&t->last, 99)),
		       ms(hist__percentile(&t->ack, 50)), ms(hist__percentile(&t->ack, 99)),
		       fanout__track_ok(t) ? "ok" : "FAILED ", fanout__track_ok(t) ? "" : t->first_error);
	}
	if (n >= 2 && rate_of(tr[1]) > 0 && hist__percentile(&tr[0]->last, 50) > 0)
		printf("group vs pairwise: %.2fx the deliveries/s, %.2fx lower p50 to the last device\n",
		       rate_of(tr[0]) / rate_of(tr[1]),
		       (double)hist__percentile(&tr[1]->last, 50) / (double)hist__percentile(&tr[0]->last, 50));
}

static void report_json(const fo_cfg *cfg, fo_track *const *tr, size_t n)
{
	printf("{\"command\":\"fanout\",\"receivers\":%u,\"messages\":%llu,\"size\":%zu,\"window\":%u,\"ways\":[",
	       cfg->receivers, (unsigned long long)cfg->messages, cfg->size, cfg->window);
	for (size_t i = 0; i < n; i++) {
		const fo_track *t = tr[i];
		printf("%s{\"way\":\"%s\",\"ok\":%s,\"sent\":%llu,\"delivered\":%llu,\"dups\":%llu,\"errors\":%llu,"
		       "\"deliveries_per_s\":%.1f,\"last_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
		       "\"ack_ms\":{\"p50\":%.3f,\"p99\":%.3f},\"first_error\":",
		       i ? "," : "", t->name, fanout__track_ok(t) ? "true" : "false", (unsigned long long)t->sent,
		       (unsigned long long)t->delivered, (unsigned long long)t->dups, (unsigned long long)t->errors,
		       rate_of(t), ms(hist__percentile(&t->last, 50)), ms(hist__percentile(&t->last, 99)),
		       ms(t->last.max), ms(hist__percentile(&t->ack, 50)), ms(hist__percentile(&t->ack, 99)));
		bench__json_str(stdout, t->first_error);
		printf("}");
	}
	printf("]}\n");
}

static void usage(FILE *f)
{
	fputs("usage: parley-bench fanout --url URL [--mqtt HOST:PORT] [options]\n"
	      "  one message to N devices: parleyd's group send (ThreadSend), the same as N pairwise sends\n"
	      "  (SendMessage, one per recipient account) and, with --mqtt, mosquitto QoS 1 to N subscribers\n"
	      "  --url URL          parleyd, ws://127.0.0.1:PORT/v1/websocket (its send rate limit off or high)\n"
	      "  --mqtt HOST:PORT   mosquitto (omit: not measured)\n"
	      "  --receivers N      receiving devices (default 100; at most 100: a thread's member limit)\n"
	      "  --messages M       messages per way (default 200)\n"
	      "  --window W         messages whose fan-out may be incomplete (default 1: latency)\n"
	      "  --size BYTES       opaque body (default 200)\n"
	      "  --timeout S        per phase (default 120)\n"
	      "  --json             one JSON object on stdout\n",
	      f);
}

int bench__cmd_fanout(int argc, char **argv)
{
	fo_cfg cfg = {.receivers = 100, .messages = 200, .window = 1, .size = 200, .timeout_s = 120};
	int json = 0, help = 0, rc;
	fo_track g, p, m, *tr[3];
	size_t n = 0;
	const bench_opt opts[] = {
		{"url", BOPT_STR, &cfg.url, 0, 0, NULL, NULL},
		{"mqtt", BOPT_STR, &cfg.mqtt, 0, 0, NULL, NULL},
		{"receivers", BOPT_UINT, &cfg.receivers, 2, 100, NULL, NULL},
		{"messages", BOPT_U64, &cfg.messages, 1, 1000000, NULL, NULL},
		{"window", BOPT_UINT, &cfg.window, 1, 10000, NULL, NULL},
		{"size", BOPT_SIZE, &cfg.size, FO_MIN_SIZE, 32768, NULL, NULL},
		{"timeout", BOPT_SECONDS, &cfg.timeout_s, 1, 3600, NULL, NULL},
		{"json", BOPT_FLAG, &json, 0, 0, NULL, NULL},
		{NULL, BOPT_FLAG, NULL, 0, 0, NULL, NULL},
	};

	if (bench__parse_opts(argc, argv, opts, 0, &help) < 0)
		return 1;
	if (help) {
		usage(stdout);
		return 0;
	}
	if (cfg.url == NULL) {
		usage(stderr);
		return 1;
	}
	if (sodium_init() < 0)
		return 1;
	/* N receivers + a sender, twice at most at once (the broker's and parleyd's), and the loop's own */
	if (bench__raise_nofile(4 * (uint64_t)cfg.receivers + 64) != PARLEY_OK)
		fprintf(stderr, "parley-bench fanout: cannot raise the descriptor limit\n");
	snprintf(cfg.tag, sizeof(cfg.tag), "fo%lx%lx", (unsigned long)time(NULL) & 0xfffffful,
		 (unsigned long)getpid() & 0xfffful);
	if (fanout__track_init(&g, "group", &cfg) != PARLEY_OK || fanout__track_init(&p, "pairwise", &cfg) != PARLEY_OK ||
	    fanout__track_init(&m, "mqtt-qos1", &cfg) != PARLEY_OK)
		return 1;
	rc = fanout__parley(&cfg, &g, &p);
	tr[n++] = &g;
	tr[n++] = &p;
	if (cfg.mqtt != NULL) {
		if (fanout__mqtt(&cfg, &m) != PARLEY_OK)
			rc = PARLEY_E_IO;
		tr[n++] = &m;
	}
	if (json)
		report_json(&cfg, tr, n);
	else
		report_text(&cfg, tr, n);
	int ok = rc == PARLEY_OK;
	for (size_t i = 0; i < n; i++)
		ok = ok && fanout__track_ok(tr[i]);
	fanout__track_free(&g);
	fanout__track_free(&p);
	fanout__track_free(&m);
	return ok ? 0 : 2;
}
