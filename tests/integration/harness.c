#include "harness.h"
#include "scan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <parley/error.h>
#include <parley/signal.h>
#include <sodium.h>

/* any 33-byte Signal public key will do where no list is signed (issue 9: registration needs one) */
static const uint8_t test_account_key[33] = {0x05, 1, 2, 3};
const uint8_t *pw_account_key;

int it_failures;

static void die(const char *what)
{
	fprintf(stderr, "Bail out! %s (%s)\n", what, strerror(errno));
	exit(99);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* public port -> admin port of the servers this process started, for metric_value(port, ...) */
static struct {
	int port, admin;
} admin_ports[64];

int srv_admin_port(int port)
{
	for (size_t i = 0; i < sizeof admin_ports / sizeof admin_ports[0]; i++)
		if (admin_ports[i].port == port)
			return admin_ports[i].admin;
	return 0;
}

static void remember_admin_port(int port, int admin)
{
	size_t n = sizeof admin_ports / sizeof admin_ports[0], slot = n;
	for (size_t i = 0; i < n; i++) {
		if (admin_ports[i].port == port || (slot == n && admin_ports[i].port == 0))
			slot = i;
		if (admin_ports[i].port == port)
			break;
	}
	if (slot < n) {
		admin_ports[slot].port = port;
		admin_ports[slot].admin = admin;
	}
}

static int read_port(const char *path, int *out)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	int ok = fscanf(f, "%d", out) == 1;
	fclose(f);
	return ok;
}

static void launch(srv *s)
{
	char portfile[320], logfile[320], datadir[320], adminfile[320];
	snprintf(portfile, sizeof portfile, "%s/port", s->dir);
	snprintf(adminfile, sizeof adminfile, "%s/admin_port", s->dir);
	snprintf(logfile, sizeof logfile, "%s/parleyd.log", s->dir);
	snprintf(datadir, sizeof datadir, "%s/data", s->dir);
	unlink(portfile);
	unlink(adminfile);
	const char *bin = getenv("PARLEYD");
	if (bin == NULL)
		die("PARLEYD not set");
	char a_port[340], a_data[340], a_admin[340];
	snprintf(a_port, sizeof a_port, "--port_file=%s", portfile);
	snprintf(a_data, sizeof a_data, "--data_dir=%s", datadir);
	snprintf(a_admin, sizeof a_admin, "--admin_port_file=%s", adminfile);
	/* Tests register many accounts from 127.0.0.1 and drain pools on purpose: the registration limit
	 * and the prekey budget (security item 4) are off unless a test turns them on in its extra flags
	 * (later flags win), as s04_prekey_drain does. */
	const char *argv[40] = {bin, "--port=0", a_port, a_data, "--log_level=info", a_admin,
				"--register_rate_burst=0", "--prekey_budget_burst=0"};
	int n = 8;
	char a_store[sizeof s->store + 16];
	if (s->store[0] != '\0') {
		snprintf(a_store, sizeof a_store, "--store=%s", s->store);
		argv[n++] = a_store;
	}
	for (int i = 0; i < s->nextra && n < 38; i++)
		argv[n++] = s->extra[i];
	argv[n] = NULL;
	pid_t parent = getpid(), pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* a test that dies (a crash, a bail-out without srv_cleanup) takes its server with it: an
		 * orphan would keep its port, and in PostgreSQL mode its database's connections */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (s->nofile[0] > 0) {
			struct rlimit rl = {.rlim_cur = (rlim_t)s->nofile[0], .rlim_max = (rlim_t)s->nofile[1]};
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				_exit(126);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	s->pid = pid;
	long deadline = now_ms() + 15000;
	while (now_ms() < deadline) {
		if (read_port(portfile, &s->port)) {
			/* the admin port file is written just before the public one */
			s->admin_port = 0;
			(void)read_port(adminfile, &s->admin_port);
			remember_admin_port(s->port, s->admin_port);
			return;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char *log = srv_log(s);
			fprintf(stderr, "parleyd exited at start-up:\n%s\n", log ? log : "");
			free(log);
			die("parleyd did not start");
		}
		usleep(10000);
	}
	die("parleyd did not write its port file in time");
}

void srv_start(srv *s, const char *const *extra)
{
	srv_start_nofile(s, extra, 0, 0);
}

/* a cleared s with a new directory and the extra flags */
static void prepare(srv *s, const char *const *extra)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/parley-it-XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		die("mkdtemp");
	for (int i = 0; extra != NULL && extra[i] != NULL && i < 16; i++)
		snprintf(s->extra[s->nextra++], sizeof s->extra[0], "%s", extra[i]);
}

void srv_start_nofile(srv *s, const char *const *extra, long soft, long hard)
{
	prepare(s, extra);
	s->nofile[0] = soft;
	s->nofile[1] = hard;
	if (it_pg())
		it_pg_create(s);
	launch(s);
}

/* peer's <data>/auth_otp.key into s's new data dir (mode 0600, as parleyd requires) */
static void copy_otp_key(const srv *s, const srv *peer)
{
	char from[320], to[320], dir[300];
	unsigned char key[64];
	snprintf(from, sizeof from, "%s/data/auth_otp.key", peer->dir);
	snprintf(dir, sizeof dir, "%s/data", s->dir);
	snprintf(to, sizeof to, "%s/auth_otp.key", dir);
	FILE *f = fopen(from, "rb");
	size_t n = f != NULL ? fread(key, 1, sizeof key, f) : 0;
	if (f != NULL)
		fclose(f);
	if (n == 0)
		die("the peer's auth_otp.key is unreadable");
	int fd = (mkdir(dir, 0700) == 0 || errno == EEXIST) ? open(to, O_WRONLY | O_CREAT | O_EXCL, 0600) : -1;
	if (fd < 0 || write(fd, key, n) != (ssize_t)n)
		die("cannot copy auth_otp.key");
	close(fd);
}

void srv_start_peer(srv *s, const srv *peer, const char *const *extra)
{
	prepare(s, extra);
	copy_otp_key(s, peer);
	launch(s);
}

void srv_restart(srv *s)
{
	launch(s);
}

int srv_signal(srv *s, int sig)
{
	return kill(s->pid, sig);
}

/* A server that stopped badly (a sanitizer report, a crash) says why only in its log: show the end. */
static void log_tail(srv *s, int rc)
{
	char *log = srv_log(s);
	size_t n = log ? strlen(log) : 0;
	const size_t keep = 6000;
	fprintf(stderr, "# parleyd stopped with status %d; the end of its log:\n%s\n", rc,
		log == NULL ? "(none)" : log + (n > keep ? n - keep : 0));
	free(log);
}

int srv_stop(srv *s)
{
	if (s->pid <= 0)
		return 0;
	kill(s->pid, SIGTERM);
	long deadline = now_ms() + 20000;
	while (now_ms() < deadline) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			if (rc != 0)
				log_tail(s, rc);
			return rc;
		}
		usleep(10000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
	return -1;
}

void srv_kill9(srv *s)
{
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

char *srv_log(srv *s)
{
	char path[320];
	snprintf(path, sizeof path, "%s/parleyd.log", s->dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 22, n;
	char *buf = malloc(cap + 1);
	n = buf ? fread(buf, 1, cap, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

void srv_cleanup(srv *s)
{
	if (s->pid > 0)
		srv_kill9(s);
	if (getenv("PARLEY_IT_KEEP") != NULL)
		return;
	it_pg_drop(s);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", s->dir);
}

/* src: a loopback source address to bind ("127.0.0.7"), NULL for the kernel's choice */
static int do_connect_from(int port, int rcvbuf, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (src != NULL) {
		struct sockaddr_in la = {.sin_family = AF_INET};
		if (inet_pton(AF_INET, src, &la.sin_addr) != 1 || bind(fd, (struct sockaddr *)&la, sizeof la) != 0) {
			close(fd);
			return -1;
		}
	}
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int do_connect(int port, int rcvbuf)
{
	return do_connect_from(port, rcvbuf, NULL);
}

int tcp_connect(int port)
{
	return do_connect(port, 0);
}

int tcp_connect_from(int port, const char *src_ip)
{
	return do_connect_from(port, 0, src_ip);
}

long proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

int tcp_connect_small_rcvbuf(int port, int rcvbuf)
{
	return do_connect(port, rcvbuf);
}

int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t recv_exact(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	size_t got = 0;
	long deadline = now_ms() + timeout_ms;
	while (got < len) {
		long left = deadline - now_ms();
		if (left <= 0)
			break;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		ssize_t n = recv(fd, p + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int http_request(int port, const char *raw, char *resp, size_t cap)
{
	int fd = tcp_connect(port);
	if (fd < 0)
		return -1;
	if (send_all(fd, raw, strlen(raw)) != 0) {
		close(fd);
		return -1;
	}
	size_t got = 0;
	long deadline = now_ms() + 5000;
	while (got + 1 < cap && now_ms() < deadline) {
		ssize_t n = recv_exact(fd, resp + got, 1, 5000);
		if (n <= 0)
			break;
		got += (size_t)n;
		resp[got] = '\0';
		char *hdr_end = strstr(resp, "\r\n\r\n");
		if (hdr_end != NULL) {
			char *cl = strcasestr(resp, "content-length:");
			if (cl != NULL && cl < hdr_end) {
				size_t want = (size_t)strtoul(cl + 15, NULL, 10);
				if (got >= (size_t)(hdr_end + 4 - resp) + want)
					break;
			}
		}
	}
	resp[got] = '\0';
	close(fd);
	int status = -1;
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	return status;
}

int http_get(int port, const char *path, char *resp, size_t cap)
{
	char req[512];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	return http_request(port, req, resp, cap);
}

int ws_open(int port)
{
	return ws_open_from(port, NULL);
}

int ws_open_from(int port, const char *src)
{
	int fd = do_connect_from(port, 0, src);
	if (fd < 0)
		return -1;
	const char *req = "GET /v1/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
			  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			  "Sec-WebSocket-Version: 13\r\n\r\n";
	if (send_all(fd, req, strlen(req)) != 0) {
		close(fd);
		return -1;
	}
	/* read byte by byte to the end of the header so no frame bytes are consumed */
	char hdr[4096];
	size_t n = 0;
	while (n + 1 < sizeof hdr) {
		if (recv_exact(fd, hdr + n, 1, 5000) != 1)
			break;
		n++;
		hdr[n] = '\0';
		if (n >= 4 && memcmp(hdr + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	if (strncmp(hdr, "HTTP/1.1 101", 12) != 0 || strstr(hdr, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == NULL) {
		fprintf(stderr, "# bad upgrade response: %s\n", hdr);
		close(fd);
		return -1;
	}
	return fd;
}

int ws_send_frame(int fd, int opcode, int fin, int masked, const void *payload, size_t len)
{
	uint8_t hdr[14];
	size_t h = 0;
	hdr[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	uint8_t mbit = masked ? 0x80 : 0;
	if (len < 126) {
		hdr[h++] = (uint8_t)(mbit | len);
	} else if (len <= 0xffff) {
		hdr[h++] = (uint8_t)(mbit | 126);
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		hdr[h++] = (uint8_t)(mbit | 127);
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
	if (masked) {
		randombytes_buf(mask, 4);
		memcpy(hdr + h, mask, 4);
		h += 4;
	}
	uint8_t *buf = malloc(h + len + 1);
	if (buf == NULL)
		return -1;
	memcpy(buf, hdr, h);
	const uint8_t *p = payload;
	for (size_t i = 0; i < len; i++)
		buf[h + i] = masked ? (uint8_t)(p[i] ^ mask[i & 3]) : p[i];
	int rc = send_all(fd, buf, h + len);
	free(buf);
	return rc;
}

ssize_t ws_recv_frame(int fd, int *opcode, uint8_t *buf, size_t cap, int timeout_ms)
{
	uint8_t h[2];
	if (recv_exact(fd, h, 2, timeout_ms) != 2)
		return -1;
	*opcode = h[0] & 0x0f;
	uint64_t len = h[1] & 0x7f;
	if (h[1] & 0x80)
		return -1; /* servers must not mask */
	if (len == 126) {
		uint8_t e[2];
		if (recv_exact(fd, e, 2, timeout_ms) != 2)
			return -1;
		len = ((uint64_t)e[0] << 8) | e[1];
	} else if (len == 127) {
		uint8_t e[8];
		if (recv_exact(fd, e, 8, timeout_ms) != 8)
			return -1;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | e[i];
	}
	if (len > cap)
		return -1;
	if (len > 0 && recv_exact(fd, buf, (size_t)len, timeout_ms) != (ssize_t)len)
		return -1;
	return (ssize_t)len;
}

int ws_expect_close(int fd, int timeout_ms)
{
	static uint8_t buf[1 << 20];
	for (;;) {
		int op;
		ssize_t n = ws_recv_frame(fd, &op, buf, sizeof buf, timeout_ms);
		if (n < 0)
			return -1;
		if (op == 0x8)
			return n >= 2 ? (buf[0] << 8) | buf[1] : 1005;
	}
}

int pw_send_request(int fd, Parley__Wire__Request *req)
{
	dynbuf b;
	dynbuf__init(&b, 1 << 24);
	if (wire__encode_request(req, &b) != PARLEY_OK)
		return -1;
	int rc = ws_send_frame(fd, 0x2, 1, 1, b.data, b.len);
	dynbuf__free(&b);
	return rc;
}

int pw_recv(int fd, wire_frame *out, int timeout_ms)
{
	static uint8_t buf[1 << 20];
	for (;;) {
		int op;
		ssize_t n = ws_recv_frame(fd, &op, buf, sizeof buf, timeout_ms);
		if (n < 0)
			return -1;
		if (op == 0x9 || op == 0xA)
			continue;
		if (op != 0x2)
			return -1;
		return wire__decode_frame(buf, (size_t)n, NULL, out) == PARLEY_OK ? 0 : -1;
	}
}

int pw_connect(int port, uint8_t nonce[32])
{
	return pw_connect_from(port, NULL, nonce);
}

int pw_connect_from(int port, const char *src, uint8_t nonce[32])
{
	int fd = ws_open_from(port, src);
	if (fd < 0)
		return -1;
	wire_frame f;
	if (pw_recv(fd, &f, 5000) != 0) {
		close(fd);
		return -1;
	}
	int ok = f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
		 f.frame->push->body_case == PARLEY__WIRE__PUSH__BODY_CHALLENGE &&
		 f.frame->push->challenge->nonce.len == 32;
	if (ok && nonce != NULL)
		memcpy(nonce, f.frame->push->challenge->nonce.data, 32);
	wire__frame_free(&f);
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait for the Response with this id; returns its status (or -1). *resp_out (if given) keeps it. */
static int wait_response(int fd, uint64_t id, wire_frame *keep)
{
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, 5000) != 0)
			return -1;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE && f.frame->response->id == id) {
			int st = (int)f.frame->response->status;
			if (keep != NULL)
				*keep = f;
			else
				wire__frame_free(&f);
			return st;
		}
		wire__frame_free(&f);
	}
}

int pw_call(int fd, Parley__Wire__Request *req, wire_frame *keep)
{
	if (pw_send_request(fd, req) != 0)
		return -1;
	return wait_response(fd, req->id, keep);
}

int pw_raw(int fd, const void *bytes, size_t len, uint64_t id)
{
	static uint8_t buf[1 << 20];
	if (ws_send_frame(fd, 0x2, 1, 1, bytes, len) != 0)
		return -1;
	for (;;) {
		int op;
		ssize_t n = ws_recv_frame(fd, &op, buf, sizeof buf, 5000);
		if (n < 0)
			return -1;
		if (op == 0x8)
			return -(n >= 2 ? (buf[0] << 8) | buf[1] : 1005);
		if (op != 0x2)
			continue;
		wire_frame f;
		if (wire__decode_frame(buf, (size_t)n, NULL, &f) != 0)
			return -1;
		int st = -1;
		if (f.frame->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE && f.frame->response->id == id)
			st = (int)f.frame->response->status;
		wire__frame_free(&f);
		if (st >= 0)
			return st;
	}
}

int pw_ping(int fd, uint64_t id)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__PingRequest ping = PARLEY__WIRE__PING_REQUEST__INIT;
	req.id = id;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_PING;
	req.ping = &ping;
	ping.payload.data = (uint8_t *)"hello";
	ping.payload.len = 5;
	if (pw_send_request(fd, &req) != 0)
		return -1;
	return wait_response(fd, id, NULL);
}

int pw_register(int port, const char *handle, uint8_t pk[32], uint8_t sk[64], int *fd_out)
{
	return pw_register_from(port, NULL, handle, pk, sk, fd_out, NULL);
}

int pw_register_from(int port, const char *src, const char *handle, uint8_t pk[32], uint8_t sk[64], int *fd_out,
		     uint64_t *retry_after_ms)
{
	uint8_t nonce[32];
	int fd = pw_connect_from(port, src, nonce);
	if (fd < 0)
		return -1;
	crypto_sign_keypair(pk, sk);
	dynbuf m;
	dynbuf__init(&m, 4096);
	wire__register_signed_bytes(nonce, handle, pk, "it-device", &m);
	uint8_t sig[64];
	crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);

	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__RegisterRequest r = PARLEY__WIRE__REGISTER_REQUEST__INIT;
	req.id = 1;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_REGISTER;
	req.register_ = &r;
	r.handle = (char *)handle;
	r.device_key.data = pk;
	r.device_key.len = 32;
	r.device_name = "it-device";
	r.signature.data = sig;
	r.signature.len = 64;
	r.account_key.data = (uint8_t *)(pw_account_key != NULL ? pw_account_key : test_account_key);
	r.account_key.len = 33;
	wire_frame f;
	int st = pw_send_request(fd, &req) == 0 ? wait_response(fd, 1, &f) : -1;
	if (st >= 0) {
		if (retry_after_ms != NULL)
			*retry_after_ms = f.frame->response->retry_after_ms;
		wire__frame_free(&f);
	}
	if (fd_out != NULL)
		*fd_out = fd;
	else
		close(fd);
	return st;
}

int pw_upload_keys(int fd, uint32_t *regid, int n_otpk, uint32_t first_id)
{
	return it_upload_keys(fd, regid, n_otpk, first_id);
}

int pw_auth(int fd, const uint8_t nonce[32], const char *handle, uint32_t device_id, const uint8_t sk[64])
{
	dynbuf m;
	dynbuf__init(&m, 4096);
	wire__auth_signed_bytes(nonce, handle, device_id, &m);
	uint8_t sig[64];
	crypto_sign_detached(sig, NULL, m.data, m.len, sk);
	dynbuf__free(&m);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AuthRequest a = PARLEY__WIRE__AUTH_REQUEST__INIT;
	req.id = 2;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_AUTH;
	req.auth = &a;
	a.handle = (char *)handle;
	a.device_id = device_id;
	a.signature.data = sig;
	a.signature.len = 64;
	if (pw_send_request(fd, &req) != 0)
		return -1;
	return wait_response(fd, 2, NULL);
}

int server_alive(int port)
{
	int fd = pw_connect(port, NULL);
	if (fd < 0)
		return 0;
	int ok = pw_ping(fd, 77) == 0;
	close(fd);
	return ok;
}

uint64_t metric_value_at(const char *file, int line, int port, const char *name)
{
	static char resp[1 << 20];
	char key[200], *p, *end;
	unsigned long long v;

	int admin = srv_admin_port(port);
	if (http_get(admin != 0 ? admin : port, "/metrics", resp, sizeof resp) != 200) {
		it_failures++;
		fprintf(stderr, "not ok - %s:%d: GET /metrics failed (looking for %s)\n", file, line, name);
		return 0;
	}
	snprintf(key, sizeof key, "\n%s ", name);
	p = strstr(resp, key);
	if (p == NULL) {
		it_failures++;
		fprintf(stderr, "not ok - %s:%d: metric %s missing from /metrics\n", file, line, name);
		return 0;
	}
	p += strlen(key);
	v = strtoull(p, &end, 10);
	if (end == p || (*end != '\n' && *end != '\0')) {
		it_failures++;
		fprintf(stderr, "not ok - %s:%d: metric %s is not an integer: %.20s\n", file, line, name, p);
		return 0;
	}
	return v;
}

int srv_scan(srv *s, const void *marker, size_t len, int live)
{
	static const char *const files[] = {"data/parley.db", "parleyd.log", "data/parley.db-wal",
					    "data/parley.db-shm"};
	int result = SCAN_CLEAN;

	if (it_pg()) {
		char dump[320];
		snprintf(dump, sizeof dump, "%s/pgdump.bin", s->dir);
		(void)it_pg_dump(s, dump); /* a failed dump leaves none: the scan says so and fails */
		return scan_path(s->dir, "pgdump.bin", marker, len, 1) | scan_path(s->dir, "parleyd.log", marker, len, 1);
	}
	/* after a clean stop the WAL is checkpointed and both side files are deleted */
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		result |= scan_path(s->dir, files[i], marker, len, live || i < 2);
	return result;
}

/* --- helpers shared by the security tests --- */

/* the identity of the last it_upload_keys, for it_upload_keys_more */
static parley_keypair last_ik;
static uint32_t last_regid;

static int upload(int fd, int fresh, uint32_t *regid, int n_otpk, uint32_t first_id)
{
	parley_keypair ik;
	parley_signed_prekey spk;
	if (fresh) {
		parley_signal_keypair_generate(&last_ik);
		parley_signal_registration_id_generate(&last_regid);
	}
	ik = last_ik;
	*regid = last_regid;
	parley_signal_signed_prekey_generate(&spk, &ik, 1, 0);
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__UploadKeysRequest u = PARLEY__WIRE__UPLOAD_KEYS_REQUEST__INIT;
	Parley__Wire__SignedPrekey sp = PARLEY__WIRE__SIGNED_PREKEY__INIT;
	Parley__Wire__OneTimePrekey otpk[100], *otpkp[100];
	parley_prekey pre[100];
	if (n_otpk > 100)
		return -1;
	req.id = 900;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_UPLOAD_KEYS;
	req.upload_keys = &u;
	u.identity_key.data = ik.pub;
	u.identity_key.len = sizeof ik.pub;
	u.registration_id = *regid;
	u.signed_prekey = fresh ? &sp : NULL;
	sp.id = spk.id;
	sp.public_key.data = spk.key.pub;
	sp.public_key.len = sizeof spk.key.pub;
	sp.signature.data = spk.signature;
	sp.signature.len = sizeof spk.signature;
	for (int i = 0; i < n_otpk; i++) {
		parley_signal_prekey_generate(&pre[i], first_id + (uint32_t)i);
		parley__wire__one_time_prekey__init(&otpk[i]);
		otpk[i].id = pre[i].id;
		otpk[i].public_key.data = pre[i].key.pub;
		otpk[i].public_key.len = sizeof pre[i].key.pub;
		otpkp[i] = &otpk[i];
	}
	u.n_one_time_prekeys = (size_t)n_otpk;
	u.one_time_prekeys = otpkp;
	return pw_call(fd, &req, NULL);
}

int it_upload_keys(int fd, uint32_t *regid, int n_otpk, uint32_t first_id)
{
	return upload(fd, 1, regid, n_otpk, first_id);
}

int it_upload_keys_more(int fd, int n_otpk, uint32_t first_id)
{
	uint32_t regid;
	return upload(fd, 0, &regid, n_otpk, first_id);
}

uint64_t it_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int it_add_device(int fd, const char *handle, const uint8_t pk[32], const uint8_t *sk, uint32_t *id)
{
	return it_add_device_at(fd, handle, pk, sk, it_now_ms(), id);
}

int it_add_device_at(int fd, const char *handle, const uint8_t pk[32], const uint8_t *sk, uint64_t ts_ms,
		     uint32_t *id)
{
	Parley__Wire__Request req = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__AddDeviceRequest a = PARLEY__WIRE__ADD_DEVICE_REQUEST__INIT;
	uint8_t sig[64];
	if (sk != NULL) {
		dynbuf m;
		dynbuf__init(&m, 256);
		wire__add_device_signed_bytes(handle, pk, ts_ms, &m);
		crypto_sign_detached(sig, NULL, m.data, m.len, sk);
		dynbuf__free(&m);
		a.signature.data = sig;
		a.signature.len = 64;
	}
	a.timestamp_ms = ts_ms;
	req.id = 31;
	req.body_case = PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE;
	req.add_device = &a;
	a.device_key.data = (uint8_t *)pk;
	a.device_key.len = 32;
	a.device_name = "it-added";
	wire_frame f;
	int st = pw_call(fd, &req, &f);
	if (st == 0 && id != NULL)
		*id = f.frame->response->add_device ? f.frame->response->add_device->device_id : 0;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int it_connect_as(int port, const char *handle, uint32_t device_id, const uint8_t sk[64])
{
	uint8_t nonce[32];
	int fd = pw_connect(port, nonce);
	if (fd >= 0 && pw_auth(fd, nonce, handle, device_id, sk) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

parley_client *it_client_at(const char *dir, const char *name, const char *url, int timeout_ms)
{
	char path[512];
	parley_client_options o;
	parley_client *c = NULL;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	parley_client_options_init(&o);
	o.state_dir = path;
	o.server_url = url;
	if (timeout_ms > 0) {
		o.connect_timeout_ms = (uint32_t)timeout_ms;
		o.request_timeout_ms = (uint32_t)timeout_ms;
	}
	int rc = parley_client_new(&o, &c);
	if (rc != PARLEY_OK) {
		fprintf(stderr, "# cannot create client %s: %s\n", path, parley_errname(rc));
		return NULL;
	}
	return c;
}

parley_client *it_client_must(srv *s, const char *url, const char *name)
{
	parley_client *c = it_client_at(s->dir, name, url, 0);
	IT_MUST(s, c != NULL);
	return c;
}

parley_client *it_user(const srv *s, const char *url, const char *handle)
{
	parley_client *c = it_client_at(s->dir, handle, url, 5000);
	IT_CHECK(c != NULL);
	if (c != NULL)
		IT_EQ(parley_register(c, handle, NULL), PARLEY_OK);
	return c;
}

sqlite3 *it_server_db(const srv *s)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof path, "%s/data/parley.db", s->dir);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		fprintf(stderr, "# cannot open %s\n", path);
		it_failures++;
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}
