/* What the web chat refuses before it costs anything (docs/channels.md "Web chat limits"): a page of
 * another origin (cross-site WebSocket hijacking), and too many sessions or messages from one client.
 * Pure functions over their arguments and a bounded table, driven by webchat/webchat.c and the unit
 * tests. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"

/* ---- token bucket ---- */

int bucket__take(gw_bucket *b, double rate_per_s, double burst, uint64_t now_ms)
{
	if (!b->started) {
		b->started = 1;
		b->tokens = burst;
		b->last_ms = now_ms;
	} else if (now_ms > b->last_ms) { /* a clock that went back refills nothing */
		b->tokens += (double)(now_ms - b->last_ms) * rate_per_s / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
		b->last_ms = now_ms;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

/* ---- sessions per client address ---- */

typedef struct ip_entry {
	char ip[GW_IP_MAX + 1]; /* "" = free slot */
	unsigned active;
	gw_bucket opens;
} ip_entry;

struct gw_iplimits {
	ip_entry *v;
	size_t n, cap;
};

int iplimits__new(size_t cap, gw_iplimits **out)
{
	gw_iplimits *t = calloc(1, sizeof(*t));
	*out = NULL;
	if (!t || !(t->v = calloc(cap, sizeof(*t->v)))) {
		free(t);
		return PARLEY_E_NOMEM;
	}
	t->cap = cap;
	*out = t;
	return PARLEY_OK;
}

void iplimits__free(gw_iplimits *t)
{
	if (!t)
		return;
	free(t->v);
	free(t);
}

/* An entry with no open session whose bucket has refilled is the same as no entry: its slot is reused. */
static int forgettable(ip_entry *e, double rate, double burst, uint64_t now_ms)
{
	if (e->active)
		return 0;
	gw_bucket probe = e->opens;
	if (probe.started && now_ms > probe.last_ms)
		probe.tokens += (double)(now_ms - probe.last_ms) * rate / 1000.0;
	return !probe.started || probe.tokens >= burst;
}

int iplimits__open(gw_iplimits *t, const char *ip, unsigned per_min, unsigned max_open, uint64_t now_ms)
{
	double rate = per_min / 60.0, burst = per_min;
	ip_entry *e = NULL, *spare = NULL;
	for (size_t i = 0; i < t->n && !e; i++) {
		if (strcmp(t->v[i].ip, ip) == 0)
			e = &t->v[i];
		else if (!spare && forgettable(&t->v[i], rate, burst, now_ms))
			spare = &t->v[i];
	}
	if (!e) {
		if (!spare && t->n < t->cap)
			spare = &t->v[t->n++];
		if (!spare)
			return PARLEY_E_BUSY; /* as many recent clients as the table holds: a flood from many addresses */
		memset(spare, 0, sizeof(*spare));
		snprintf(spare->ip, sizeof(spare->ip), "%s", ip);
		e = spare;
	}
	/* the concurrency bound first: a refused attempt must not also spend one of the client's new sessions */
	if (e->active >= max_open)
		return PARLEY_E_TOO_MANY_CONNECTIONS;
	if (!bucket__take(&e->opens, rate, burst, now_ms))
		return PARLEY_E_RATE_LIMITED;
	e->active++;
	return PARLEY_OK;
}

void iplimits__close(gw_iplimits *t, const char *ip)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].ip, ip) == 0) {
			if (t->v[i].active)
				t->v[i].active--;
			return;
		}
}

/* ---- the client's address ---- */

int ip__key(const char *text, char out[GW_IP_MAX + 1])
{
	struct in6_addr a6;
	struct in_addr a4;
	if (inet_pton(AF_INET, text, &a4) == 1)
		return inet_ntop(AF_INET, &a4, out, GW_IP_MAX + 1) ? PARLEY_OK : PARLEY_E_CHANNEL_INVALID;
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return PARLEY_E_CHANNEL_INVALID;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) { /* an IPv4 client of a dual-stack socket is that IPv4 address */
		memcpy(&a4, a6.s6_addr + 12, 4);
		return inet_ntop(AF_INET, &a4, out, GW_IP_MAX + 1) ? PARLEY_OK : PARLEY_E_CHANNEL_INVALID;
	}
	memset(a6.s6_addr + 8, 0, 8);
	return inet_ntop(AF_INET6, &a6, out, GW_IP_MAX + 1) ? PARLEY_OK : PARLEY_E_CHANNEL_INVALID;
}

/* 1 if the address text is one of the list's (separated by spaces or commas), compared as keys. */
static int in_list(const char *key, const char *list)
{
	for (const char *p = list; p && *p;) {
		char item[GW_IP_MAX + 1], k[GW_IP_MAX + 1];
		p += strspn(p, " ,");
		size_t n = strcspn(p, " ,");
		if (n && n <= GW_IP_MAX) {
			memcpy(item, p, n);
			item[n] = '\0';
			if (ip__key(item, k) == PARLEY_OK && strcmp(k, key) == 0)
				return 1;
		}
		p += n;
	}
	return 0;
}

int client__key(const char *peer, const char *forwarded_for, const char *trusted, char out[GW_IP_MAX + 1])
{
	char pk[GW_IP_MAX + 1];
	int rc = ip__key(peer, pk);
	if (rc != PARLEY_OK)
		return rc;
	if (!forwarded_for || !in_list(pk, trusted)) {
		memcpy(out, pk, sizeof(pk));
		return PARLEY_OK;
	}
	/* the entry our proxy appended is the last one; those before it are whatever the client wrote */
	const char *last = strrchr(forwarded_for, ',');
	last = last ? last + 1 : forwarded_for;
	last += strspn(last, " \t");
	size_t n = strcspn(last, " \t");
	char item[GW_IP_MAX + 1];
	if (n == 0 || n > GW_IP_MAX)
		return PARLEY_E_CHANNEL_INVALID;
	memcpy(item, last, n);
	item[n] = '\0';
	return ip__key(item, out);
}

/* ---- Origin ---- */

/* 1 if origin (as a browser sends it: scheme://host[:port]) is scheme://<rest> with rest equal, without
 * case, to the n bytes at rest. */
static int origin_is(const char *origin, const char *scheme, const char *rest, size_t n)
{
	size_t s = strlen(scheme);
	return strncasecmp(origin, scheme, s) == 0 && strlen(origin + s) == n && strncasecmp(origin + s, rest, n) == 0;
}

/* 1 if origin equals the origin part (scheme://authority, before any path) of url. */
static int origin_of_url(const char *origin, const char *url, size_t url_len)
{
	const char *sep = strstr(url, "://");
	if (!sep || (size_t)(sep - url) >= url_len)
		return 0;
	const char *auth = sep + 3, *end = url + url_len;
	const char *slash = memchr(auth, '/', (size_t)(end - auth));
	size_t n = (size_t)((slash ? slash : end) - url);
	return n && strlen(origin) == n && strncasecmp(origin, url, n) == 0;
}

int origin__allowed(const char *origin, const char *allowed, const char *public_url, const char *host)
{
	if (!origin)
		return 1; /* not a browser (every browser sends Origin on a WebSocket): it could send any Origin */
	if (allowed && *allowed) {
		for (const char *p = allowed; *p;) {
			size_t skip = strspn(p, " ,"), n;
			p += skip;
			n = strcspn(p, " ,");
			if (n && origin_of_url(origin, p, n))
				return 1;
			p += n;
		}
		return 0;
	}
	if (public_url && *public_url)
		return origin_of_url(origin, public_url, strlen(public_url));
	/* no public_url: the page's own origin is the Host it was loaded from, by plain HTTP or through a
	 * TLS-terminating proxy */
	if (!host || !*host)
		return 0;
	return origin_is(origin, "http://", host, strlen(host)) || origin_is(origin, "https://", host, strlen(host));
}
