/* Where parley-bench may point: a ws:// URL (or host:port) on the loopback interface only.
 *
 * Why the restriction: parley-bench opens thousands of connections as fast as it can; pointed at
 * someone else's server it is a denial-of-service tool. It refuses anything but 127.0.0.0/8 and ::1
 * (and the name "localhost", taken as 127.0.0.1 without asking a resolver).
 */
#ifndef PARLEY_BENCH_TARGET_H
#define PARLEY_BENCH_TARGET_H
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct bench_target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[64];  /* Host header value: "127.0.0.1:8080" or "[::1]:8080" */
	char path[256]; /* request target, "/" at least */
	unsigned port;
} bench_target;

/* Parses "ws://HOST:PORT/path" or "HOST:PORT". HOST is an IPv4 literal in 127.0.0.0/8, "[::1]" or
 * "localhost". Returns PARLEY_OK, PARLEY_E_PERM (not loopback), PARLEY_E_UNSUPPORTED (wss:// or
 * another scheme), PARLEY_E_INVAL (malformed); *why gets a short explanation. */
int bench__target_parse(const char *url, bench_target *t, const char **why);

#endif
