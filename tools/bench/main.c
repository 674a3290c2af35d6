/* parley-bench: load generator and process measurements for parleyd (see docs/benchmarks.md).
 *
 *   parley-bench ws    [--url URL] [--clients N] [--duration S | --requests N] [--payload BYTES]
 *                      [--threads T] [--mode parley|echo] [--connect-timeout S] [--json]
 *   parley-bench start --parleyd PATH [--runs N] [--idle-clients N] [--json] [-- ARGS...]
 *   parley-bench relay [--peer parley|mosquitto|nats|nats-js] [--connections N] [--senders M] ...
 *   parley-bench fanout --url URL [--mqtt HOST:PORT] [--receivers N] [--messages M] ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <parley/error.h>

#include "bench.h"
#include "fanout.h"
#include "relay.h"
#include "wire/wire.h"
#include "wsload.h"

static void usage(FILE *f)
{
	fputs("usage: parley-bench ws [options]      closed-loop WebSocket round trips\n"
	      "       parley-bench start --parleyd PATH [options] [-- ARGS...]\n"
	      "                                      start time and idle memory of a server\n"
	      "       parley-bench relay [options]    relay throughput and latency (relay --help)\n"
	      "       parley-bench fanout [options]   one message to N devices: group, pairwise, MQTT\n"
	      "                                      (fanout --help)\n"
	      "\n"
	      "ws options:\n"
	      "  --url URL             ws://HOST:PORT/PATH on loopback (default ws://127.0.0.1:8080/v1/websocket)\n"
	      "  --clients N           connections (default 1)\n"
	      "  --duration S          measure for S seconds (default 5)\n"
	      "  --requests N          or: stop after N round trips in total\n"
	      "  --max-time S          cap of a --requests run (default 300)\n"
	      "  --payload BYTES       ping payload / echo message size (default 32)\n"
	      "  --threads T           client loop threads (default 1)\n"
	      "  --mode parley|echo    protobuf ping request (default) or raw echo\n"
	      "  --connect-timeout S   whole connect phase (default 60)\n"
	      "  --connect-batch N     handshakes in progress per thread (default 64)\n"
	      "  --server-pid PID      also report that process's CPU use during the measurement\n"
	      "  --json                one JSON object on stdout instead of text\n"
	      "\n"
	      "start options:\n"
	      "  --parleyd PATH        server executable (--exec is a synonym); ARGS after -- are passed on.\n"
	      "                        It must print 'listening on HOST:PORT' and answer GET /healthz.\n"
	      "  --runs N              starts to measure (default 5)\n"
	      "  --idle-clients N      after the last start, open N idle WebSocket connections and read\n"
	      "                        the memory again (default 0)\n"
	      "  --ws-path PATH        WebSocket path for --idle-clients (default /v1/websocket)\n"
	      "  --ready-timeout S     per start (default 20)\n"
	      "  --json                one JSON object on stdout instead of text\n"
	      "\n"
	      "Exit status: 0 all good, 2 ran but with failures or errors, 1 usage or setup error.\n",
	      f);
}

int bench__raise_nofile(uint64_t need)
{
	struct rlimit rl;
	FILE *f;
	unsigned long long nr_open = 1048576;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return PARLEY_E_IO;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return PARLEY_OK;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
		rl.rlim_cur = need;
		return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? PARLEY_OK : PARLEY_E_PERM;
	}
	/* Raising the hard limit needs CAP_SYS_RESOURCE and may not pass fs.nr_open. */
	f = fopen("/proc/sys/fs/nr_open", "r");
	if (f) {
		if (fscanf(f, "%llu", &nr_open) != 1)
			nr_open = 1048576;
		fclose(f);
	}
	if (need > nr_open)
		return PARLEY_E_PERM;
	rl.rlim_cur = need;
	rl.rlim_max = need;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? PARLEY_OK : PARLEY_E_PERM;
}

void bench__json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

double bench__cpu_self(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

double bench__cpu_of(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces: fields are counted after its closing paren. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct cpu_use {
	double client_pct, server_pct; /* of one core over the measure phase; -1 unknown */
} cpu_use;

static void print_ws(const bench_cfg *cfg, const char *url, const bench_result *r, const cpu_use *cpu, int json)
{
	const hist *h = &r->latency;
	double rate = r->elapsed_s > 0 ? (double)r->round_trips / r->elapsed_s : 0.0;
	const char *mode = cfg->mode == BENCH_MODE_PARLEY ? "parley" : "echo";

	if (json) {
		printf("{\"command\":\"ws\",\"url\":");
		bench__json_str(stdout, url);
		printf(",\"mode\":\"%s\",\"clients\":%u,\"threads\":%u,\"payload\":%zu,"
		       "\"connected\":%llu,\"connect_failed\":%llu,\"connect_s\":%.3f,"
		       "\"round_trips\":%llu,\"elapsed_s\":%.3f,\"rate\":%.1f,\"errors\":%llu,\"lost\":%llu,"
		       "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
		       "\"mean\":%.1f},\"client_cpu_pct\":%.0f,\"server_cpu_pct\":%.0f,\"first_error\":",
		       mode, cfg->clients, cfg->threads, cfg->payload, (unsigned long long)r->connected,
		       (unsigned long long)r->connect_failed, r->connect_s, (unsigned long long)r->round_trips,
		       r->elapsed_s, rate, (unsigned long long)r->errors, (unsigned long long)r->lost,
		       (double)hist__percentile(h, 50) / 1e3, (double)hist__percentile(h, 90) / 1e3,
		       (double)hist__percentile(h, 99) / 1e3, (double)hist__percentile(h, 99.9) / 1e3,
		       (double)h->max / 1e3, hist__mean(h) / 1e3, cpu->client_pct, cpu->server_pct);
		bench__json_str(stdout, r->first_error);
		printf("}\n");
		return;
	}
	printf("target       %s (mode %s, payload %zu bytes, %u client thread%s)\n", url, mode, cfg->payload,
	       cfg->threads, cfg->threads == 1 ? "" : "s");
	printf("connections  %llu established, %llu failed, in %.2f s\n", (unsigned long long)r->connected,
	       (unsigned long long)r->connect_failed, r->connect_s);
	printf("round trips  %llu in %.2f s = %.0f/s; %llu errors, %llu connections lost\n",
	       (unsigned long long)r->round_trips, r->elapsed_s, rate, (unsigned long long)r->errors,
	       (unsigned long long)r->lost);
	if (h->count)
		printf("latency us   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f)\n",
		       (double)hist__percentile(h, 50) / 1e3, (double)hist__percentile(h, 90) / 1e3,
		       (double)hist__percentile(h, 99) / 1e3, (double)hist__percentile(h, 99.9) / 1e3,
		       (double)h->max / 1e3, hist__mean(h) / 1e3);
	if (cpu->client_pct >= 0)
		printf("cpu          client %.0f %%", cpu->client_pct);
	if (cpu->server_pct >= 0)
		printf(", server %.0f %%", cpu->server_pct);
	if (cpu->client_pct >= 0)
		printf(" of one core\n");
	if (r->first_error[0])
		printf("first error  %s\n", r->first_error);
}

static int cmd_ws(int argc, char **argv)
{
	static const char *const modes[] = {"parley", "echo", NULL}; /* enum bench_mode order */
	const char *url = "ws://127.0.0.1:8080/v1/websocket", *why;
	bench_cfg cfg;
	bench_result *res;
	bench_run *run;
	int json = 0, rc, help, mode = BENCH_MODE_PARLEY;
	long server_pid = 0;
	cpu_use cpu = {-1, -1};
	double c0 = -1, s0 = -1, c1 = -1, s1 = -1;
	const bench_opt opts[] = {
		{"url", BOPT_STR, &url, 0, 0, NULL, NULL},
		{"clients", BOPT_UINT, &cfg.clients, 1, 200000, NULL, NULL},
		{"duration", BOPT_SECONDS, &cfg.duration_s, 0.1, 3600, NULL, NULL},
		{"requests", BOPT_U64, &cfg.requests, 1, (double)(UINT64_C(1) << 40), NULL, NULL},
		{"payload", BOPT_SIZE, &cfg.payload, 0, 65536, NULL, NULL},
		{"threads", BOPT_UINT, &cfg.threads, 1, 64, NULL, NULL},
		{"mode", BOPT_CHOICE, &mode, 0, 0, modes, NULL},
		{"connect-timeout", BOPT_SECONDS, &cfg.connect_timeout_s, 0.1, 3600, NULL, NULL},
		{"connect-batch", BOPT_UINT, &cfg.connect_batch, 1, 100000, NULL, NULL},
		{"max-time", BOPT_SECONDS, &cfg.max_time_s, 0.1, 3600, NULL, NULL},
		{"server-pid", BOPT_LONG, &server_pid, 1, 1u << 22, NULL, NULL},
		{"json", BOPT_FLAG, &json, 0, 0, NULL, NULL},
		{NULL, 0, NULL, 0, 0, NULL, NULL}};

	memset(&cfg, 0, sizeof(cfg));
	cfg.clients = 1;
	cfg.threads = 1;
	cfg.connect_batch = 64;
	cfg.connect_timeout_s = 60;
	cfg.duration_s = 5;
	cfg.max_time_s = 300;
	cfg.payload = 32;
	rc = bench__parse_opts(argc, argv, opts, 0, &help);
	if (help) {
		usage(stdout);
		return 0;
	}
	if (rc != argc) {
		usage(stderr);
		return 1;
	}
	cfg.mode = (enum bench_mode)mode;
	if (cfg.mode == BENCH_MODE_PARLEY && cfg.payload > WIRE_MAX_PING_PAYLOAD) {
		fprintf(stderr, "parley-bench: a ping payload is at most %u bytes\n", WIRE_MAX_PING_PAYLOAD);
		return 1;
	}
	rc = bench__target_parse(url, &cfg.target, &why);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "parley-bench: %s: %s\n", url, why);
		return 1;
	}
	if (bench__raise_nofile((uint64_t)cfg.clients + 64) != PARLEY_OK) {
		fprintf(stderr, "parley-bench: cannot raise the open-file limit to %u\n", cfg.clients + 64);
		return 1;
	}
	cfg.progress = isatty(STDERR_FILENO);
	res = malloc(sizeof(*res)); /* the histogram makes it ~30 KB: not for the stack */
	if (!res)
		return 1;
	rc = bench_ws__open(&cfg, &run);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "parley-bench: %s\n", parley_strerror(rc));
		free(res);
		return 1;
	}
	if (bench_ws__connected(run) > 0) {
		c0 = bench__cpu_self();
		s0 = bench__cpu_of(server_pid);
		bench_ws__measure(run);
		c1 = bench__cpu_self();
		s1 = bench__cpu_of(server_pid);
	}
	bench_ws__close(run, res);
	if (res->elapsed_s > 0) {
		if (c0 >= 0 && c1 >= 0)
			cpu.client_pct = 100.0 * (c1 - c0) / res->elapsed_s;
		if (s0 >= 0 && s1 >= 0)
			cpu.server_pct = 100.0 * (s1 - s0) / res->elapsed_s;
	}
	print_ws(&cfg, url, res, &cpu, json);
	rc = (res->connected == cfg.clients && res->errors == 0 && res->round_trips > 0) ? 0 : 2;
	free(res);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "ws") == 0)
		return cmd_ws(argc - 1, argv + 1);
	if (strcmp(argv[1], "start") == 0)
		return bench__cmd_start(argc - 1, argv + 1);
	if (strcmp(argv[1], "relay") == 0)
		return bench__cmd_relay(argc - 1, argv + 1);
	if (strcmp(argv[1], "fanout") == 0)
		return bench__cmd_fanout(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "parley-bench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 1;
}
