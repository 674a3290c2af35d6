/* auth_e2e: completed customer authentications per second, end to end (issue 11's acceptance "Measured:
 * completed authentications per second end to end"; docs/benchmarks.md "Customer authentication end to
 * end"). Not a test: tests/bench/run-auth-e2e.sh runs it (`make bench`); the smoke test runs it tiny.
 *
 * One real parleyd on loopback (the integration harness), the test identity provider of tests/idp (a real
 * oidc-provider over HTTPS), tests/integration/jwtbiz.mjs (a business's JWKS over HTTPS) and signer.mjs
 * next to this file (the customers' browsers). An admin, an agent (G, one device: its AuthResult pushes
 * are what we wait for) and a gateway (W: the customers of the channel threads; its AuthPrompt pushes
 * are the customers' prompts). Kinds:
 *   oidc  G's AuthStart -> the prompt to the customer -> signer.mjs opens the start link: parleyd's 302,
 *         the provider's login form, the redirect to parleyd's callback -> parleyd's token exchange, ID
 *         token verification and binding (sub) -> the AuthResult on G. Latency: AuthStart -> AuthResult.
 *   peer  the named peer: the same sign-in by the same node client at the same provider without parley
 *         (PKCE, login, token exchange, ID-token signature check; signer.mjs "peer"). Latency: the
 *         command to signer.mjs -> its answer.
 *   otp   AuthStart -> the prompt carries the code (an sms thread) -> W's AuthAnswer -> AuthResult.
 *   jwt   AuthStart -> prompt -> W's AuthAnswer with a business assertion (RS256, minted before the run,
 *         each with its own jti: parleyd refuses a replay) -> AuthResult.
 * Each concurrency slot owns its own thread (one open request per thread: auth_max_open_per_thread is
 * never reached) and runs one authentication after the other. A point: WARMUP seconds, then SECONDS of
 * steady state counted (completions in that window, their latencies), then the slots drain. Per
 * concurrency the kinds run one after the other, all of it REPS times (run-auth-e2e.sh keeps the best).
 *
 *   PARLEYD=.. NODE=.. IDP_DIR=tests/idp SIGNER=tests/bench/auth-e2e/signer.mjs \
 *   JWTBIZ=tests/integration/jwtbiz.mjs auth_e2e [--kinds oidc,peer,otp,jwt] [--conc 1,8,32]
 *                                                [--seconds S] [--warmup S] [--reps N]
 * Prints one line per point: kind conc completed window_s auth/s p50_ms p99_ms and the CPU time per
 * completed authentication (ms) of parleyd, the provider (idp), signer.mjs and this driver over the window. Exit 1 when anything
 * failed (a refused request, a signer error, a slot that never finished): the figures are then void.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <parley/error.h>

#include "harness.h"
#include "staffmodel.h"
#include "threadwire.h"

extern char **environ;

#define MAX_SLOTS 128
#define SMS 2
#define DRAIN_MS 10000 /* a slot not done 10 s after the window: lost, the run fails */

enum kind { K_OIDC, K_PEER, K_OTP, K_JWT, K_COUNT };
static const char *const kind_name[K_COUNT] = {"oidc", "peer", "otp", "jwt"};

static srv S;
static tacct P, G, W;
static model acme;
static uint64_t comp_id[K_COUNT];
static uint64_t thread_of[K_COUNT][MAX_SLOTS];
static char tmp[64], iss[64];
static pid_t idp_pid, biz_pid, signer_pid;
static int biz_port;
static int signer_in = -1, signer_out = -1;
static double last_rate; /* auth/s of the last point */
/* Tags (request ids, signer commands) are point << 48 | sequence << 8 | slot: an answer that comes
 * after its point is over (a signer's late error) is told apart from the next point's. */
static uint64_t point_no;
static size_t late_errors;
#define TAG(pt, i) ((point_no << 48) | ((++(pt)->seq & 0xffffffffffu) << 8) | (uint64_t)(i))
#define TAG_POINT(tag) ((tag) >> 48)

static void fail(const char *what)
{
	fprintf(stderr, "auth_e2e: %s\n", what);
	exit(2);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		fail(path);
}

/* argv started with stdout/stderr to /dev/null (or to the pipes given, -1: /dev/null); its pid */
static pid_t spawn(char *const argv[], int in_fd, int out_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	/* the provider logs a line per request: out of the way unless asked for */
	if (getenv("AUTH_E2E_VERBOSE") == NULL)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		fail(argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* the integer in path, waiting up to 20 s for the file */
static int wait_int_file(const char *path)
{
	int v = 0;
	for (int i = 0; i < 400; i++) {
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			int ok = fscanf(f, "%d", &v) == 1;
			fclose(f);
			if (ok)
				return v;
		}
		usleep(50000);
	}
	fail(path);
	return 0;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &n) != 0)
		fail("free port");
	close(fd);
	return ntohs(a.sin_port);
}

/* --- the processes: provider, business, parleyd, signer --- */

static void start_peers(int port)
{
	char cmd[512], path[160], port_file[160], cert[160], key[160], conf[160], redirect[96];
	const char *dir = getenv("IDP_DIR"), *node = getenv("NODE");
	char *const ca_argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
	int st;

	if (dir == NULL || node == NULL || getenv("SIGNER") == NULL || getenv("JWTBIZ") == NULL)
		fail("NODE, IDP_DIR, SIGNER and JWTBIZ must be set");
	snprintf(tmp, sizeof(tmp), "/tmp/parley-auth-e2e-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		fail("mkdtemp");
	snprintf(cmd, sizeof(cmd), "'%s/make-ca.sh' '%s/ca'", dir, tmp);
	if (waitpid(spawn(ca_argv, -1, -1), &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("make-ca.sh");
	/* the operator's secrets directory: the client secret of entity acme's component */
	snprintf(path, sizeof(path), "%s/secrets", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/secrets/acme", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/secrets/acme/bench-secret", tmp);
	write_file(path, "bench-s3cret\n");
	/* application_type native: the loopback redirect_uri matches parleyd's port whatever it is */
	snprintf(conf, sizeof(conf), "%s/config.json", tmp);
	write_file(conf, "{ \"clients\": [ { \"client_id\": \"parley-bench\", \"client_secret\": \"bench-s3cret\","
			 " \"redirect_uris\": [\"http://127.0.0.1/v1/auth/callback\"], \"application_type\": \"native\","
			 " \"id_token_signed_response_alg\": \"RS256\", \"token_endpoint_auth_method\": \"client_secret_basic\" } ],"
			 " \"users\": [ { \"id\": \"alice\", \"password\": \"alice-pw\", \"claims\": {"
			 " \"email\": \"alice@example.test\", \"email_verified\": true } } ],"
			 " \"id_token_ttl_s\": 300, \"access_token_ttl_s\": 300 }");
	snprintf(path, sizeof(path), "%s/idp.mjs", dir);
	snprintf(port_file, sizeof(port_file), "%s/port", tmp);
	snprintf(cert, sizeof(cert), "%s/ca/server.pem", tmp);
	snprintf(key, sizeof(key), "%s/ca/server.key", tmp);
	char *const idp_argv[] = {(char *)node, path, (char *)"--port", (char *)"0", (char *)"--port-file", port_file,
				  (char *)"--cert", cert, (char *)"--key", key, (char *)"--config", conf, NULL};
	idp_pid = spawn(idp_argv, -1, -1);
	snprintf(iss, sizeof(iss), "https://127.0.0.1:%d", wait_int_file(port_file));
	char *const biz_argv[] = {(char *)node, (char *)getenv("JWTBIZ"), (char *)"serve", tmp, NULL};
	biz_pid = spawn(biz_argv, -1, -1);
	snprintf(path, sizeof(path), "%s/bizport", tmp);
	biz_port = wait_int_file(path);

	/* the signer: its stdin and stdout are our pipes */
	int to[2], from[2];
	char ca[160], bizkey[160];
	if (pipe(to) != 0 || pipe(from) != 0)
		fail("pipe");
	snprintf(ca, sizeof(ca), "%s/ca/ca.pem", tmp);
	snprintf(bizkey, sizeof(bizkey), "%s/biz.key", tmp);
	snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%d/v1/auth/callback", port);
	char *const sg_argv[] = {(char *)node, (char *)getenv("SIGNER"), (char *)"--ca", ca, (char *)"--issuer", iss,
				 (char *)"--client", (char *)"parley-bench", (char *)"--secret", (char *)"bench-s3cret",
				 (char *)"--redirect-uri", redirect, (char *)"--login", (char *)"alice",
				 (char *)"--password", (char *)"alice-pw", (char *)"--biz-key", bizkey, NULL};
	signer_pid = spawn(sg_argv, to[0], from[1]);
	close(to[0]);
	close(from[1]);
	signer_in = to[1];
	signer_out = from[0];
}

/* at exit, also after fail() or the harness's bail-out: nothing we started outlives us */
static void stop_all(void)
{
	static int done;
	char cmd[128];
	if (done++)
		return;
	pid_t pids[] = {signer_pid, biz_pid, idp_pid};
	if (signer_in >= 0)
		close(signer_in);
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
	if (S.pid > 0) {
		srv_stop(&S);
		srv_cleanup(&S);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (tmp[0] != '\0' && system(cmd) != 0)
		fprintf(stderr, "auth_e2e: could not remove %s\n", tmp);
}

/* --- signer.mjs: a line protocol --- */

static char sg_buf[65536];
static size_t sg_len;

static void signer_send(const char *line)
{
	size_t n = strlen(line);
	for (size_t off = 0; off < n;) {
		ssize_t w = write(signer_in, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail("signer.mjs stopped reading");
		off += (size_t)w;
	}
}

/* the next complete line into out (1), or 0 when none is buffered; reads once if `read_more` */
static int signer_line(char *out, size_t cap, int read_more)
{
	char *nl = memchr(sg_buf, '\n', sg_len);
	if (nl == NULL && read_more) {
		ssize_t r = read(signer_out, sg_buf + sg_len, sizeof(sg_buf) - 1 - sg_len);
		if (r <= 0)
			fail("signer.mjs exited (run with AUTH_E2E_VERBOSE=1 to see why)");
		sg_len += (size_t)r;
		nl = memchr(sg_buf, '\n', sg_len);
	}
	if (nl == NULL)
		return 0;
	size_t n = (size_t)(nl - sg_buf);
	snprintf(out, cap, "%.*s", (int)n, sg_buf);
	memmove(sg_buf, nl + 1, sg_len - n - 1);
	sg_len -= n + 1;
	return 1;
}

/* a blocking command: its answer must be OK */
static void signer_call(const char *line)
{
	char ans[1024];
	signer_send(line);
	while (!signer_line(ans, sizeof(ans), 1))
		;
	if (strncmp(ans, "0 OK", 4) != 0) {
		fprintf(stderr, "auth_e2e: signer.mjs: %s\n", ans);
		fail("signer command failed");
	}
}

/* --- set-up: entity, gateway, components, threads --- */

static uint64_t put_component(int type, const char *name, const char *jwks)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthComponentPutRequest m = PARLEY__WIRE__AUTH_COMPONENT_PUT_REQUEST__INIT;
	Parley__Wire__AuthComponentStateRequest s = PARLEY__WIRE__AUTH_COMPONENT_STATE_REQUEST__INIT;
	Parley__Wire__AuthComponent w = PARLEY__WIRE__AUTH_COMPONENT__INIT;
	char disco[128];
	wire_frame f;
	uint64_t id;

	w.entity = (char *)"acme";
	w.name = (char *)name;
	w.type = (Parley__Wire__AuthType)type;
	w.credential_ttl_s = 3600;
	if (type == PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC) {
		snprintf(disco, sizeof(disco), "%s/.well-known/openid-configuration", iss);
		w.issuer = iss;
		w.discovery_url = disco;
		w.client_id = (char *)"parley-bench";
		w.secret_ref = (char *)"file:bench-secret";
		w.binding = PARLEY__WIRE__AUTH_BINDING__BINDING_SUB;
	} else if (type == PARLEY__WIRE__AUTH_TYPE__AUTH_JWT) {
		w.issuer = (char *)"https://biz.example";
		w.jwks_uri = (char *)jwks;
		w.client_id = (char *)"parley-acme";
		w.binding = PARLEY__WIRE__AUTH_BINDING__BINDING_SUB;
	}
	m.component = &w;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_PUT;
	r.auth_component_put = &m;
	if (sm_call(P.fd, &r, &f) != PARLEY_OK)
		fail(name);
	id = f.frame->response->auth_component_put->component->component_id;
	wire__frame_free(&f);
	s.entity = (char *)"acme";
	s.component_id = id;
	s.state = PARLEY__WIRE__AUTH_COMPONENT_STATE__COMPONENT_ACTIVE;
	r = (Parley__Wire__Request)PARLEY__WIRE__REQUEST__INIT;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_COMPONENT_STATE;
	r.auth_component_state = &s;
	if (sm_call(P.fd, &r, &f) != PARLEY_OK)
		fail("activate component");
	wire__frame_free(&f);
	return id;
}

static void setup(int max_conc)
{
	char port_arg[32], url_arg[64], ca[128], secrets[128], jwks[96], code[32], ans[64];
	const char *extra[12] = {port_arg, url_arg, ca, secrets,
				 /* many assertions within their lifetime: the replay cache must hold them all */
				 "--auth_jti_cache=1048576",
				 /* the admin listener defaults to port + 1, which a chosen port does not make free */
				 "--admin_port=0", NULL};
	int port = free_port(), n = 6;
	uint64_t req = 0;
	dynbuf l;

	start_peers(port);
	snprintf(port_arg, sizeof(port_arg), "--port=%d", port); /* after the harness's --port=0: wins */
	snprintf(url_arg, sizeof(url_arg), "--auth_public_url=http://127.0.0.1:%d", port);
	snprintf(ca, sizeof(ca), "--auth_ca_file=%s/ca/ca.pem", tmp);
	snprintf(secrets, sizeof(secrets), "--auth_secrets_dir=%s/secrets", tmp);
	/* the provider is on 127.0.0.1: a parleyd that guards private addresses must be told */
	extra[n++] = "--auth_allow_private_hosts=1";
	extra[n] = NULL;
	srv_start(&S, extra);
	if (S.port != port)
		fail("parleyd did not take the chosen port");
	sm_next_id = 0;
	sm_mk_many(S.port, 1, "pat gus wendy", (tacct *[]){&P, &G, &W});
	ent_create(&P, &acme, "acme", 0);
	ent_add(&P, &acme, &G, WIRE_ROLE_AGENT, WIRE_RULE_DEFAULT_AGENT);
	if (sm_code_role(P.fd, "acme", 0, WIRE_ROLE_GATEWAY, code, sizeof(code)) != PARLEY_OK ||
	    sm_join(W.fd, "acme", code, NULL, &req, NULL) != PARLEY_OK)
		fail("gateway enrolment");
	sm_model_set(&acme, &W, WIRE_ROLE_GATEWAY, 0, 0);
	sm_sign(&acme, acme.version + 1, NULL, &l);
	if (sm_decide(P.fd, "acme", req, 1, &l, NULL, 0, NULL) != PARLEY_OK)
		fail("gateway approval");
	acme.version++;
	dynbuf__free(&l);
	snprintf(jwks, sizeof(jwks), "https://127.0.0.1:%d/jwks", biz_port);
	comp_id[K_OIDC] = put_component(PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC, "Acme ID", NULL);
	comp_id[K_OTP] = put_component(PARLEY__WIRE__AUTH_TYPE__AUTH_OTP, "Code by SMS", NULL);
	comp_id[K_JWT] = put_component(PARLEY__WIRE__AUTH_TYPE__AUTH_JWT, "Acme app", jwks);
	for (int k = 0; k < K_COUNT; k++) {
		if (k == K_PEER)
			continue;
		for (int i = 0; i < max_conc; i++) {
			char number[24];
			tev ev;
			tinfo t;
			snprintf(number, sizeof(number), "+1555%d%06d", k, i);
			ev = ev_open_channel(&W, &acme, SMS, number); /* the gateway signs the channel customer */
			if (th_open_channel(W.fd, "acme", NULL, SMS, number, &ev, &t) != PARLEY_OK)
				fail("channel thread");
			thread_of[k][i] = t.id;
		}
	}
	/* the signer is ready once it has the provider's discovery and JWKS */
	while (!signer_line(ans, sizeof(ans), 1))
		;
	if (strcmp(ans, "ready") != 0)
		fail("signer.mjs did not start");
}

/* --- one point: a kind at a concurrency --- */

typedef struct slot {
	uint64_t thread, rid, t0;
	int busy;
} slot;

typedef struct point {
	int kind, conc;
	slot s[MAX_SLOTS];
	uint64_t seq, win_start, win_end; /* the counted window, µs */
	int issuing;
	uint64_t *lat; /* latencies (µs) of the completions in the window */
	size_t n_lat, cap_lat, errors;
	char **tokens; /* jwt: the assertions not used yet */
	size_t n_tokens, next_token;
} point;

/* CPU seconds (user + system) of pid so far, from /proc/PID/stat (fields 14 and 15, after the ')') */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void error(point *pt, const char *what, const char *detail)
{
	if (pt->errors++ < 5)
		fprintf(stderr, "auth_e2e: %s c=%d: %s%s%s\n", kind_name[pt->kind], pt->conc, what, detail ? ": " : "",
			detail ? detail : "");
}

static void send_req(int fd, Parley__Wire__Request *r, uint64_t id)
{
	r->id = id;
	if (pw_send_request(fd, r) != 0)
		fail("send to parleyd");
}

/* the next authentication of slot i (or none once the window is over) */
static void begin(point *pt, int i)
{
	slot *sl = &pt->s[i];
	uint64_t tag = TAG(pt, i);

	if (!pt->issuing)
		return;
	if (pt->kind == K_JWT && pt->next_token + (size_t)pt->conc > pt->n_tokens) {
		/* out of assertions: the window ends here (the report says how long it was) */
		pt->issuing = 0;
		if (now_us() < pt->win_end)
			pt->win_end = now_us();
		return;
	}
	sl->busy = 1;
	sl->rid = 0;
	sl->t0 = now_us();
	if (pt->kind == K_PEER) {
		char line[64];
		snprintf(line, sizeof(line), "%llu peer\n", (unsigned long long)tag);
		signer_send(line);
		return;
	}
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthStartRequest m = PARLEY__WIRE__AUTH_START_REQUEST__INIT;
	m.thread_id = sl->thread;
	m.component_id = comp_id[pt->kind];
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_START;
	r.auth_start = &m;
	send_req(G.fd, &r, tag);
}

static void complete(point *pt, int i, int ok)
{
	uint64_t t = now_us();
	slot *sl = &pt->s[i];
	if (!sl->busy)
		return;
	sl->busy = 0;
	if (ok && t >= pt->win_start && t <= pt->win_end) {
		if (pt->n_lat == pt->cap_lat) {
			pt->cap_lat = pt->cap_lat ? 2 * pt->cap_lat : 4096;
			pt->lat = realloc(pt->lat, pt->cap_lat * sizeof(*pt->lat));
			if (pt->lat == NULL)
				fail("out of memory");
		}
		pt->lat[pt->n_lat++] = t - sl->t0;
	}
	begin(pt, i);
}

static int slot_of_thread(const point *pt, uint64_t tid)
{
	for (int i = 0; i < pt->conc; i++)
		if (pt->s[i].thread == tid)
			return i;
	return -1;
}

/* the customer's side of a prompt: open the link, or answer with the code or an assertion */
static void on_prompt(point *pt, const Parley__Wire__AuthPrompt *p)
{
	int i = p->request != NULL ? slot_of_thread(pt, p->request->thread_id) : -1;
	if (i < 0 || !pt->s[i].busy)
		return; /* another point's late prompt */
	uint64_t tag = TAG(pt, i);
	if (pt->kind == K_OIDC) {
		char line[800];
		snprintf(line, sizeof(line), "%llu parley %s\n", (unsigned long long)tag, p->request->url);
		signer_send(line);
		return;
	}
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthAnswerRequest m = PARLEY__WIRE__AUTH_ANSWER_REQUEST__INIT;
	m.request_id = p->request->request_id;
	if (pt->kind == K_OTP)
		m.otp = p->otp;
	else
		m.jwt = pt->tokens[pt->next_token++];
	r.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH_ANSWER;
	r.auth_answer = &m;
	send_req(W.fd, &r, tag);
}

static void on_frame(point *pt, int fd, const Parley__Wire__Frame *fr)
{
	if (fr->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE) {
		const Parley__Wire__Response *res = fr->response;
		int i = (int)(res->id & 0xff);
		if (res->status != PARLEY_OK) {
			char st[24];
			snprintf(st, sizeof(st), "%d", (int)res->status);
			error(pt, fd == G.fd ? "AuthStart refused" : "AuthAnswer refused", st);
			if (i < pt->conc && TAG_POINT(res->id) == point_no)
				complete(pt, i, 0); /* not counted, but the slot goes on */
		} else if (fd == G.fd && res->body_case == PARLEY__WIRE__RESPONSE__BODY_AUTH_START && i < pt->conc &&
			   TAG_POINT(res->id) == point_no) {
			pt->s[i].rid = res->auth_start->request->request_id;
		}
		return;
	}
	if (fr->kind_case != PARLEY__WIRE__FRAME__KIND_PUSH)
		return;
	if (fd == W.fd && fr->push->body_case == PARLEY__WIRE__PUSH__BODY_AUTH_PROMPT) {
		on_prompt(pt, fr->push->auth_prompt);
	} else if (fd == G.fd && fr->push->body_case == PARLEY__WIRE__PUSH__BODY_AUTH_RESULT) {
		const Parley__Wire__AuthResult *a = fr->push->auth_result;
		int i = slot_of_thread(pt, a->thread_id);
		if (i < 0 || a->request == NULL || !pt->s[i].busy ||
		    (pt->s[i].rid != 0 && a->request->request_id != pt->s[i].rid))
			return; /* a credential's expiry, or an earlier request of the slot's thread */
		int done = a->request->status == PARLEY__WIRE__AUTH_REQUEST_STATUS__AUTH_REQUEST_DONE && a->verification == 2;
		if (!done) {
			char st[48];
			snprintf(st, sizeof(st), "status %d error %u", (int)a->request->status, a->request->error);
			error(pt, "AuthResult not AUTHENTICATED", st);
		}
		complete(pt, i, done);
	}
}

static void on_signer(point *pt, const char *line)
{
	unsigned long long tag = strtoull(line, NULL, 10);
	int i = (int)(tag & 0xff);
	const char *what = strchr(line, ' ');
	int ok = what != NULL && strncmp(what, " OK", 3) == 0;
	if (TAG_POINT(tag) != point_no || i >= pt->conc) {
		if (!ok && late_errors++ < 5)
			fprintf(stderr, "auth_e2e: signer, after its point: %s\n", line);
		return;
	}
	if (!ok)
		error(pt, "signer", what != NULL ? what + 1 : line);
	if (pt->kind == K_PEER)
		complete(pt, i, ok);
	/* oidc: the callback answered; the AuthResult on G is the end */
}

static int any_busy(const point *pt)
{
	for (int i = 0; i < pt->conc; i++)
		if (pt->s[i].busy)
			return 1;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_ms(const point *pt, double q)
{
	if (pt->n_lat == 0)
		return 0;
	size_t k = (size_t)(q * (double)(pt->n_lat - 1) + 0.5);
	return (double)pt->lat[k] / 1000.0;
}

/* jwt: n assertions minted by signer.mjs into a file, read into pt->tokens */
static void mint(point *pt, size_t n)
{
	char line[512], path[128], buf[4096];
	static unsigned batch;
	snprintf(path, sizeof(path), "%s/tokens", tmp);
	snprintf(line, sizeof(line), "0 mint %s parley-acme https://biz.example %zu b%u\n", path, n, ++batch);
	signer_call(line);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail(path);
	pt->tokens = calloc(n, sizeof(char *));
	if (pt->tokens == NULL)
		fail("out of memory");
	while (pt->n_tokens < n && fgets(buf, sizeof(buf), f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if ((pt->tokens[pt->n_tokens++] = strdup(buf)) == NULL)
			fail("out of memory");
	}
	fclose(f);
}

static int run_point(int kind, int conc, double warmup, double seconds, double expect_rate)
{
	static point pt;
	pid_t who[4] = {S.pid, idp_pid, signer_pid, getpid()};
	double cpu0[4], cpu1[4];
	char line[2048];

	memset(&pt, 0, sizeof(pt));
	point_no++;
	pt.kind = kind;
	pt.conc = conc;
	if (kind == K_JWT) /* enough for the point at the rate of a one-time code, and then some */
		mint(&pt, (size_t)(expect_rate * (warmup + seconds) * 1.5) + (size_t)conc * 4 + 200);
	for (int i = 0; i < conc; i++)
		pt.s[i].thread = thread_of[kind][i];
	uint64_t t = now_us();
	pt.win_start = t + (uint64_t)(warmup * 1e6);
	pt.win_end = pt.win_start + (uint64_t)(seconds * 1e6);
	pt.issuing = 1;
	for (int i = 0; i < conc; i++)
		begin(&pt, i);
	int measuring = 0, measured = 0;
	uint64_t drain_end = 0;
	while (any_busy(&pt) || (pt.issuing && now_us() < pt.win_end)) {
		t = now_us();
		if (!measuring && t >= pt.win_start) {
			measuring = 1;
			for (int k = 0; k < 4; k++)
				cpu0[k] = cpu_s(who[k]);
		}
		/* the window ends at its time, or earlier when the jwt point ran out of assertions */
		if (measuring && !measured && (t >= pt.win_end || !pt.issuing)) {
			measured = 1;
			pt.issuing = 0;
			for (int k = 0; k < 4; k++)
				cpu1[k] = cpu_s(who[k]);
		}
		if (!pt.issuing && drain_end == 0)
			drain_end = t + DRAIN_MS * 1000u;
		if (drain_end != 0 && t > drain_end) {
			error(&pt, "slots still busy after the drain", NULL);
			break;
		}
		struct pollfd fds[3] = {{G.fd, POLLIN, 0}, {W.fd, POLLIN, 0}, {signer_out, POLLIN, 0}};
		if (signer_line(line, sizeof(line), 0)) {
			on_signer(&pt, line);
			continue;
		}
		if (poll(fds, 3, 50) < 0 && errno != EINTR)
			fail("poll");
		for (int k = 0; k < 2; k++)
			if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
				wire_frame f;
				if (pw_recv(fds[k].fd, &f, 5000) != 0)
					fail("connection to parleyd lost");
				on_frame(&pt, fds[k].fd, f.frame);
				wire__frame_free(&f);
			}
		if ((fds[2].revents & (POLLIN | POLLHUP | POLLERR)) && signer_line(line, sizeof(line), 1))
			on_signer(&pt, line);
	}
	if (!measured)
		for (int k = 0; k < 4; k++)
			cpu0[k] = cpu1[k] = 0;
	double win = pt.win_end > pt.win_start ? (double)(pt.win_end - pt.win_start) / 1e6 : 0;
	qsort(pt.lat, pt.n_lat, sizeof(*pt.lat), cmp_u64);
	/* CPU per authentication: unlike a % of the window it hardly moves when other work shares the
	 * machine, and 1000 / (the ms of a single-threaded node process) is that process's ceiling */
	double per[4];
	for (int k = 0; k < 4; k++)
		per[k] = pt.n_lat > 0 ? 1000 * (cpu1[k] - cpu0[k]) / (double)pt.n_lat : 0;
	printf("%-5s %4d %8zu %7.2f %9.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", kind_name[kind], conc, pt.n_lat, win,
	       win > 0 ? (double)pt.n_lat / win : 0, pct_ms(&pt, 0.5), pct_ms(&pt, 0.99), per[0], per[1], per[2], per[3]);
	fflush(stdout);
	for (size_t k = 0; k < pt.n_tokens; k++)
		free(pt.tokens[k]);
	free(pt.tokens);
	free(pt.lat);
	if (pt.n_lat == 0)
		error(&pt, "nothing completed in the window", NULL);
	last_rate = win > 0 ? (double)pt.n_lat / win : 0;
	return pt.errors == 0;
}

/* is `name` one of the comma-separated `list`? */
static int wanted(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* "1,8,32" -> out[], their count */
static int parse_list(const char *s, int *out, int max)
{
	int n = 0;
	while (*s != '\0' && n < max) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > MAX_SLOTS)
			fail("bad --conc (1..128, comma separated)");
		out[n++] = (int)v;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *kinds = "oidc,peer,otp,jwt", *conc_s = "1,8,32";
	double seconds = 3, warmup = 1, otp_rate[MAX_SLOTS + 1] = {0};
	int conc[8], n_conc, ok = 1, max_conc = 1, reps = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--kinds") == 0)
			kinds = argv[i + 1];
		else if (strcmp(argv[i], "--conc") == 0)
			conc_s = argv[i + 1];
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "--reps") == 0)
			reps = (int)strtol(argv[i + 1], NULL, 10);
		else
			fail("usage: auth_e2e [--kinds oidc,peer,otp,jwt] [--conc 1,8,32] [--seconds S] [--warmup S] [--reps N]");
	}
	if (sodium_init() < 0 || !(seconds > 0) || !(warmup >= 0) || reps < 1 || reps > 20)
		fail("bad --seconds / --warmup / --reps");
	n_conc = parse_list(conc_s, conc, 8);
	for (int i = 0; i < n_conc; i++)
		max_conc = conc[i] > max_conc ? conc[i] : max_conc;
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_all);
	setup(max_conc);
	printf("# kind  conc completed window_s    auth/s   p50_ms   p99_ms  cpu ms per authentication: parleyd      idp   signer   driver\n");
	/* Per concurrency, the kinds one after the other (oidc right beside its peer: on a shared machine
	 * both see the same moments), REPS times over; otp before jwt: its rate sizes the jwt point's supply
	 * of assertions. */
	for (int rep = 0; rep < reps; rep++)
		for (int i = 0; i < n_conc; i++)
			for (int k = 0; k < K_COUNT; k++) {
				if (!wanted(kinds, kind_name[k]))
					continue;
				ok &= run_point(k, conc[i], warmup, seconds, otp_rate[conc[i]] > 0 ? otp_rate[conc[i]] : 3000);
				if (k == K_OTP)
					otp_rate[conc[i]] = last_rate;
			}
	return ok && late_errors == 0 ? 0 : 1; /* stop_all at exit */
}
