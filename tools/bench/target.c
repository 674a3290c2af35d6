/* ws:// URL parsing restricted to loopback targets; see target.h for why. */
#include "target.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

static int parse_port(const char *s, size_t n, unsigned *port)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return PARLEY_E_INVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PARLEY_E_INVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return PARLEY_E_INVAL;
	*port = (unsigned)v;
	return PARLEY_OK;
}

int bench__target_parse(const char *url, bench_target *t, const char **why)
{
	const char *p = url, *hostend, *portstart, *pathstart;
	char host[64];
	size_t hlen;
	int v6 = 0, n;

	memset(t, 0, sizeof(*t));
	*why = "expected ws://HOST:PORT/path";
	if (strncmp(p, "ws://", 5) == 0) {
		p += 5;
	} else if (strstr(p, "://")) {
		*why = "only ws:// is supported (no TLS: the benchmark measures parleyd, not OpenSSL)";
		return PARLEY_E_UNSUPPORTED;
	}
	pathstart = strchr(p, '/');
	if (!pathstart)
		pathstart = p + strlen(p);
	if (*p == '[') {
		hostend = memchr(p, ']', (size_t)(pathstart - p));
		if (!hostend)
			return PARLEY_E_INVAL;
		v6 = 1;
		p++;
		portstart = hostend + 1;
	} else {
		hostend = memchr(p, ':', (size_t)(pathstart - p));
		if (!hostend)
			return PARLEY_E_INVAL;
		portstart = hostend;
	}
	hlen = (size_t)(hostend - p);
	if (hlen == 0 || hlen >= sizeof(host) || *portstart != ':')
		return PARLEY_E_INVAL;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	if (parse_port(portstart + 1, (size_t)(pathstart - portstart - 1), &t->port) != PARLEY_OK) {
		*why = "bad port";
		return PARLEY_E_INVAL;
	}
	if (v6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
			*why = "bad IPv6 address";
			return PARLEY_E_INVAL;
		}
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) {
			*why = "refusing a non-loopback target (only 127.0.0.0/8 and ::1 are allowed)";
			return PARLEY_E_PERM;
		}
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)t->port);
		t->addrlen = sizeof(*a6);
		n = snprintf(t->host, sizeof(t->host), "[::1]:%u", t->port);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
		/* No resolver: "localhost" is the only name, and it means the IPv4 loopback. */
		const char *lit = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
		if (inet_pton(AF_INET, lit, &a4->sin_addr) != 1) {
			*why = "HOST must be an IPv4 literal, [::1] or localhost";
			return PARLEY_E_INVAL;
		}
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) {
			*why = "refusing a non-loopback target (only 127.0.0.0/8 and ::1 are allowed)";
			return PARLEY_E_PERM;
		}
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)t->port);
		t->addrlen = sizeof(*a4);
		n = snprintf(t->host, sizeof(t->host), "%s:%u", lit, t->port);
	}
	if (n < 0 || (size_t)n >= sizeof(t->host))
		return PARLEY_E_INVAL;
	if (*pathstart == '\0') {
		n = snprintf(t->path, sizeof(t->path), "/");
	} else {
		if (strlen(pathstart) >= sizeof(t->path)) {
			*why = "path too long";
			return PARLEY_E_INVAL;
		}
		n = snprintf(t->path, sizeof(t->path), "%s", pathstart);
	}
	if (n < 0)
		return PARLEY_E_INVAL;
	*why = NULL;
	return PARLEY_OK;
}
