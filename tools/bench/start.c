/* `parley-bench start`: how fast a server comes up and how much memory it holds.
 *
 * Each run forks the server with its output going to a temporary file, waits for the line
 * "listening on HOST:PORT" (so --port 0 works), then polls GET /healthz until it answers 200: the
 * start time is fork → first 200. The resident set (VmRSS of /proc/PID/status) is read right after,
 * and, after the last run, again while N idle WebSocket connections are open. The server is then
 * stopped with SIGTERM and the time to exit is measured too (SIGKILL after 10 s, reported).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>

#include "bench.h"
#include "wsload.h"

#define MAX_RUNS 100

typedef struct run_result {
	double listen_ms; /* fork → "listening on" line */
	double ready_ms;  /* fork → /healthz 200 */
	double stop_ms;   /* SIGTERM → exit */
	long rss_kb;
	int clean_exit;   /* exited with status 0 after SIGTERM */
} run_result;

typedef struct start_opts {
	const char *exec;
	char **args; /* NULL-terminated, args[0] = exec */
	unsigned runs;
	unsigned idle_clients;
	const char *ws_path;
	double ready_timeout_s;
	int json;
} start_opts;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* VmRSS in kB, -1 if unreadable. */
static long read_rss_kb(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* Looks for "listening on HOST:PORT" in the server's output so far (the rest of the line may say
 * more, e.g. "(plain, 1 worker)"). HOST may be "[v6]". Returns the port or 0. */
static unsigned find_port(int logfd)
{
	char buf[16384], *p, *colon, *end;
	ssize_t n;
	unsigned long port;

	n = pread(logfd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "listening on ");
	if (!p || !strchr(p, '\n'))
		return 0; /* not there, or the line is not complete yet */
	p += strlen("listening on ");
	if (*p == '[') {
		p = strchr(p, ']');
		if (!p)
			return 0;
	}
	colon = strchr(p, ':');
	if (!colon || colon[1] < '0' || colon[1] > '9')
		return 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || port == 0 || port > 65535)
		return 0;
	return (unsigned)port;
}

/* One GET /healthz on 127.0.0.1:port; 1 when the answer's status is 200. */
static int healthz_ok(unsigned port)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	struct sockaddr_in a;
	struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
	char buf[64];
	size_t got = 0;
	ssize_t n;
	int fd, ok = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
		goto out;
	while (got < 12) {
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[got] = '\0';
	ok = strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0;
out:
	close(fd);
	return ok;
}

static pid_t spawn(const start_opts *o, int logfd)
{
	pid_t pid = fork();

	if (pid == 0) {
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		execv(o->exec, o->args);
		dprintf(STDERR_FILENO, "parley-bench: exec %s: %s\n", o->exec, strerror(errno));
		_exit(127);
	}
	return pid;
}

/* SIGTERM, then wait up to 10 s (SIGKILL after). Returns ms to exit; *clean = exit status 0. */
static double stop_server(pid_t pid, int *clean)
{
	double t0 = now_ms();
	int status = 0;
	pid_t r;

	*clean = 0;
	kill(pid, SIGTERM);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0)
			return now_ms() - t0;
		if (now_ms() - t0 > 10000.0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return now_ms() - t0;
		}
		sleep_us(1000);
	}
	*clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return now_ms() - t0;
}

/* Opens o->idle_clients connections to the running server, lets it settle, reads its RSS. */
static int measure_idle(const start_opts *o, pid_t pid, unsigned port, uint64_t *connected, long *rss_kb)
{
	char url[300];
	const char *why;
	bench_cfg cfg;
	bench_run *run;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u%s", port, o->ws_path);
	rc = bench__target_parse(url, &cfg.target, &why);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "parley-bench: %s: %s\n", url, why);
		return rc;
	}
	cfg.clients = o->idle_clients;
	cfg.threads = 1;
	cfg.connect_batch = 64;
	cfg.connect_timeout_s = 60;
	cfg.payload = 0;
	cfg.progress = isatty(STDERR_FILENO);
	rc = bench_ws__open(&cfg, &run);
	if (rc != PARLEY_OK)
		return rc;
	*connected = bench_ws__connected(run);
	sleep_us(1000000); /* let the server finish per-connection setup (challenge, buffers) */
	*rss_kb = read_rss_kb(pid);
	bench_ws__close(run, NULL);
	return PARLEY_OK;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void stats(const run_result *r, unsigned n, size_t off, double *min, double *med, double *max)
{
	double v[MAX_RUNS];
	unsigned i;

	for (i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&r[i] + off);
	qsort(v, n, sizeof(v[0]), cmp_double);
	*min = v[0];
	*max = v[n - 1];
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const start_opts *o, const run_result *r, unsigned done, uint64_t idle_connected,
		   long idle_rss)
{
	double smin, smed, smax, lmin, lmed, lmax, tmin, tmed, tmax;
	long rss = r[done - 1].rss_kb;
	unsigned i, clean = 0;
	double per_conn = idle_connected && idle_rss > 0 ? (double)(idle_rss - rss) / (double)idle_connected : 0;

	for (i = 0; i < done; i++)
		clean += (unsigned)r[i].clean_exit;
	stats(r, done, offsetof(run_result, ready_ms), &smin, &smed, &smax);
	stats(r, done, offsetof(run_result, listen_ms), &lmin, &lmed, &lmax);
	stats(r, done, offsetof(run_result, stop_ms), &tmin, &tmed, &tmax);
	if (o->json) {
		printf("{\"command\":\"start\",\"exec\":");
		bench__json_str(stdout, o->exec);
		printf(",\"runs\":%u,\"ready_ms\":{\"min\":%.1f,\"median\":%.1f,\"max\":%.1f},"
		       "\"listen_ms\":{\"min\":%.1f,\"median\":%.1f,\"max\":%.1f},"
		       "\"stop_ms\":{\"min\":%.1f,\"median\":%.1f,\"max\":%.1f},\"clean_exits\":%u,"
		       "\"rss_kb\":%ld,\"idle_clients\":%u,\"idle_connected\":%llu,\"idle_rss_kb\":%ld,"
		       "\"per_conn_kb\":%.2f}\n",
		       done, smin, smed, smax, lmin, lmed, lmax, tmin, tmed, tmax, clean, rss, o->idle_clients,
		       (unsigned long long)idle_connected, idle_rss, per_conn);
		return;
	}
	printf("server       %s (%u runs)\n", o->exec, done);
	printf("ready        fork -> /healthz 200: min %.1f ms, median %.1f ms, max %.1f ms\n", smin, smed, smax);
	printf("listening    fork -> 'listening on': median %.1f ms\n", lmed);
	printf("idle RSS     %ld kB after start\n", rss);
	if (o->idle_clients && idle_rss >= 0)
		printf("with conns   %ld kB with %llu idle WebSocket connections (%.2f kB each)\n", idle_rss,
		       (unsigned long long)idle_connected, per_conn);
	printf("stop         SIGTERM -> exit: median %.1f ms, max %.1f ms; %u/%u clean exits\n", tmed, tmax, clean,
	       done);
}

/* One start: fills r; on success leaves the server running in *pid (port in *port). */
static int start_once(const start_opts *o, int logfd, run_result *r, pid_t *pid, unsigned *port)
{
	double t0 = now_ms(), t;
	int status;

	memset(r, 0, sizeof(*r));
	/* The child shares this file offset: rewind it, or the next run writes after a hole of zeros. */
	if (ftruncate(logfd, 0) != 0 || lseek(logfd, 0, SEEK_SET) != 0)
		return PARLEY_E_IO;
	*port = 0;
	*pid = spawn(o, logfd);
	if (*pid < 0)
		return PARLEY_E_IO;
	for (;;) {
		t = now_ms() - t0;
		if (t > o->ready_timeout_s * 1000.0) {
			fprintf(stderr, "parley-bench: %s not ready after %.0f s\n", o->exec, o->ready_timeout_s);
			break;
		}
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			fprintf(stderr, "parley-bench: %s exited during start (status %d)\n", o->exec, status);
			*pid = -1;
			return PARLEY_E_IO;
		}
		if (*port == 0) {
			*port = find_port(logfd);
			if (*port)
				r->listen_ms = now_ms() - t0;
		}
		if (*port && healthz_ok(*port)) {
			r->ready_ms = now_ms() - t0;
			r->rss_kb = read_rss_kb(*pid);
			return PARLEY_OK;
		}
		sleep_us(500);
	}
	stop_server(*pid, &status);
	*pid = -1;
	return PARLEY_E_TIMEOUT;
}

static int parse_start(int argc, char **argv, start_opts *o)
{
	int i, nargs, help, first;
	const bench_opt opts[] = {
		{"parleyd", BOPT_STR, &o->exec, 0, 0, NULL, NULL},
		{"exec", BOPT_STR, &o->exec, 0, 0, NULL, NULL},
		{"runs", BOPT_UINT, &o->runs, 1, MAX_RUNS, NULL, NULL},
		{"idle-clients", BOPT_UINT, &o->idle_clients, 0, 200000, NULL, NULL},
		{"ws-path", BOPT_STR, &o->ws_path, 0, 0, NULL, NULL},
		{"ready-timeout", BOPT_SECONDS, &o->ready_timeout_s, 0.1, 600, NULL, NULL},
		{"json", BOPT_FLAG, &o->json, 0, 0, NULL, NULL},
		{NULL, 0, NULL, 0, 0, NULL, NULL}};

	o->runs = 5;
	o->ws_path = "/v1/websocket";
	o->ready_timeout_s = 20;
	/* stop at the first argument: what follows belongs to the server */
	first = bench__parse_opts(argc, argv, opts, 1, &help);
	if (first < 0 || help || !o->exec || o->ws_path[0] != '/')
		return PARLEY_E_INVAL;
	nargs = argc - first;
	o->args = calloc((size_t)nargs + 2, sizeof(char *));
	if (!o->args)
		return PARLEY_E_NOMEM;
	o->args[0] = (char *)o->exec;
	for (i = 0; i < nargs; i++)
		o->args[i + 1] = argv[first + i];
	return PARLEY_OK;
}

int bench__cmd_start(int argc, char **argv)
{
	start_opts o;
	run_result r[MAX_RUNS];
	char logpath[] = "/tmp/parley-bench-start-XXXXXX";
	uint64_t idle_connected = 0;
	long idle_rss = -1;
	unsigned port, done = 0, i;
	int logfd, rc = PARLEY_OK, clean;
	pid_t pid;

	memset(&o, 0, sizeof(o));
	if (parse_start(argc, argv, &o) != PARLEY_OK) {
		fprintf(stderr, "usage: parley-bench start --parleyd PATH [--runs N] [--idle-clients N] "
				"[--ws-path P] [--ready-timeout S] [--json] [-- ARGS...]\n");
		free(o.args);
		return 1;
	}
	if (o.idle_clients && bench__raise_nofile((uint64_t)o.idle_clients + 64) != PARLEY_OK) {
		fprintf(stderr, "parley-bench: cannot raise the open-file limit\n");
		free(o.args);
		return 1;
	}
	logfd = mkostemp(logpath, O_CLOEXEC);
	if (logfd < 0) {
		perror("parley-bench: mkstemp");
		free(o.args);
		return 1;
	}
	/* O_CLOEXEC is dropped in the child by dup2 onto 1 and 2, which is exactly what we want. */
	for (i = 0; i < o.runs; i++) {
		rc = start_once(&o, logfd, &r[i], &pid, &port);
		if (rc != PARLEY_OK)
			break;
		if (i + 1 == o.runs && o.idle_clients) {
			if (measure_idle(&o, pid, port, &idle_connected, &idle_rss) != PARLEY_OK)
				fprintf(stderr, "parley-bench: idle connections could not be measured\n");
		}
		r[i].stop_ms = stop_server(pid, &clean);
		r[i].clean_exit = clean;
		done++;
	}
	if (done)
		report(&o, r, done, idle_connected, idle_rss);
	if (rc != PARLEY_OK)
		fprintf(stderr, "parley-bench: start %u failed (%s); server output kept in %s\n", done + 1,
			parley_strerror(rc), logpath);
	else
		unlink(logpath);
	close(logfd);
	free(o.args);
	if (rc != PARLEY_OK || done == 0)
		return done ? 2 : 1;
	return 0;
}
