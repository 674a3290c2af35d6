/* t33's webhook endpoint: a small HTTP/1.1 server on 127.0.0.1 that checks `parley bot --webhook`'s
 * signature as docs/bots.md tells an endpoint to, and answers a reply.
 *
 *   it-t33-webhook PORT_FILE SECRET_FILE LOG_FILE [FAIL_FIRST]
 *
 * Per request (keep-alive connections, one at a time): a POST with X-Parley-Timestamp within 300 s of
 * now and X-Parley-Signature = "sha256=" hex HMAC-SHA256(secret, TIMESTAMP "." BODY) (compared in
 * constant time). The first FAIL_FIRST requests get 503 (the bot must retry). A bad or missing
 * signature: 401 "bad signature" and "rejected" in the log. A good one: the body is appended to the
 * log, and a customer's message is answered with
 * {"type":"reply","thread":ID,"body":"hook: got it"}. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#define HEAD_MAX 16384
#define BODY_MAX (1024 * 1024)

static uint8_t secret[4096];
static size_t secret_len;
static const char *log_path;
static long fail_first;

static void log_line(const char *s, size_t n)
{
	FILE *f = fopen(log_path, "a");
	if (f == NULL)
		return;
	fwrite(s, 1, n, f);
	if (n == 0 || s[n - 1] != '\n')
		fputc('\n', f);
	fclose(f);
}

/* The value of header name in head (NUL-terminated), copied to out; 0 if found. */
static int header(const char *head, const char *name, char *out, size_t cap)
{
	const char *p = head;
	size_t nl = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e;
			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			if (e == NULL || (size_t)(e - v) >= cap)
				return -1;
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = '\0';
			return 0;
		}
	}
	return -1;
}

static int signature_ok(const char *head, const char *body, size_t len)
{
	char ts[32], sig[80], want[7 + 64 + 1];
	crypto_auth_hmacsha256_state st;
	uint8_t mac[32];
	long long t;
	char *end;

	if (header(head, "X-Parley-Timestamp", ts, sizeof ts) != 0 ||
	    header(head, "X-Parley-Signature", sig, sizeof sig) != 0)
		return 0;
	t = strtoll(ts, &end, 10);
	if (*end != '\0' || llabs(t - (long long)time(NULL)) > 300)
		return 0;
	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)ts, strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(want, "sha256=", 7);
	sodium_bin2hex(want + 7, sizeof(want) - 7, mac, sizeof mac);
	return strlen(sig) == strlen(want) && sodium_memcmp(sig, want, strlen(want)) == 0;
}

static void respond(int fd, int status, const char *reason, const char *body)
{
	char buf[1024];
	int n = snprintf(buf, sizeof buf,
			 "HTTP/1.1 %d %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n%s", status,
			 reason, strlen(body), body);
	if (n > 0 && write(fd, buf, (size_t)n) != n)
		fprintf(stderr, "# webhook: short write\n");
}

/* The answer to a verified event: a reply to a customer's message, nothing to anything else. */
static void answer(int fd, const char *body, size_t len)
{
	json_t *o = json_loadb(body, len, 0, NULL);
	json_t *type = json_object_get(o, "type"), *role = json_object_get(o, "role");
	char reply[256] = "";

	if (json_is_string(type) && strcmp(json_string_value(type), "message") == 0 && json_is_string(role) &&
	    strcmp(json_string_value(role), "customer") == 0)
		snprintf(reply, sizeof reply, "{\"type\":\"reply\",\"thread\":%lld,\"body\":\"hook: got it\"}\n",
			 (long long)json_integer_value(json_object_get(o, "thread")));
	json_decref(o);
	respond(fd, 200, "OK", reply);
}

/* One connection: requests until the peer closes. */
static void serve(int fd)
{
	static char buf[HEAD_MAX + BODY_MAX];
	size_t have = 0;

	for (;;) {
		char *end = NULL, cl[32];
		size_t head_len, body_len;
		ssize_t n;

		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
			if (have >= HEAD_MAX)
				return;
			n = read(fd, buf + have, HEAD_MAX - have);
			if (n <= 0)
				return;
			have += (size_t)n;
		}
		head_len = (size_t)(end - buf) + 4;
		end[2] = '\0'; /* the head as a string, its last header's CRLF kept */
		if (header(buf, "Content-Length", cl, sizeof cl) != 0 || (body_len = strtoul(cl, NULL, 10)) > BODY_MAX)
			return;
		while (have < head_len + body_len) {
			n = read(fd, buf + have, head_len + body_len - have);
			if (n <= 0)
				return;
			have += (size_t)n;
		}
		if (fail_first > 0) {
			fail_first--;
			log_line("failed on purpose", 17);
			respond(fd, 503, "Service Unavailable", "");
		} else if (!signature_ok(buf, buf + head_len, body_len)) {
			log_line("rejected", 8);
			respond(fd, 401, "Unauthorized", "bad signature\n");
		} else {
			log_line(buf + head_len, body_len);
			answer(fd, buf + head_len, body_len);
		}
		memmove(buf, buf + head_len + body_len, have - head_len - body_len);
		have -= head_len + body_len;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	FILE *f;
	int s, one = 1;

	if (argc < 4 || sodium_init() < 0) {
		fprintf(stderr, "usage: it-t33-webhook PORT_FILE SECRET_FILE LOG_FILE [FAIL_FIRST]\n");
		return 2;
	}
	log_path = argv[3];
	fail_first = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
	f = fopen(argv[2], "rb");
	if (f == NULL)
		return 1;
	secret_len = fread(secret, 1, sizeof secret, f);
	fclose(f);
	while (secret_len > 0 && (secret[secret_len - 1] == '\n' || secret[secret_len - 1] == '\r'))
		secret_len--;
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) != 0)
		return 1;
	f = fopen(argv[1], "w");
	if (f == NULL)
		return 1;
	fprintf(f, "%u\n", ntohs(a.sin_port));
	fclose(f);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		serve(c);
		close(c);
	}
}
