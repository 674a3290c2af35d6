/* The plain HTTP endpoints parleyd answers besides the WebSocket upgrade. Each answer closes the
 * connection: these are probes and scrapes, not a workload worth keep-alive. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <parley/error.h>

#include "base/metrics.h"
#include "net/net_internal.h"

#define METRICS_MAX_BYTES (1u << 20)

int net__origin_allowed(const net_server *s, const char *origin)
{
	if (origin == NULL || s->origin_any)
		return 1;
	for (char **o = s->origin_list; *o != NULL; o++)
		if (strcasecmp(*o, origin) == 0)
			return 1;
	return 0;
}

/* reason as a JSON string body: a check's text may come from a library (a NATS or libpq message), so
 * quotes, backslashes and control bytes are escaped rather than trusted. Truncates to fit cap. */
static void json_text(char *out, size_t cap, const char *in)
{
	size_t o = 0;
	for (; *in != '\0' && o + 7 < cap; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	if (cap > 0)
		out[o < cap ? o : cap - 1] = '\0';
}

/* 200 {"status":"ok"}, with a "warning" if the handler gave one; 503 {"status":"degraded","reason":..}
 * (the handler's reason: storage full) so a load balancer takes the node out. */
static int healthz(net_server *s, dynbuf *out)
{
	char reason[160] = "", text[sizeof reason * 6], body[sizeof text + 64];
	int bad = s->h.health != NULL ? s->h.health(s->h.ctx, reason, sizeof(reason)) : 0;
	json_text(text, sizeof text, reason);
	int n = bad ? snprintf(body, sizeof(body), "{\"status\":\"degraded\",\"reason\":\"%s\"}", text)
		: reason[0] ? snprintf(body, sizeof(body), "{\"status\":\"ok\",\"warning\":\"%s\"}", text)
			    : snprintf(body, sizeof(body), "{\"status\":\"ok\"}");
	return http__build_response(out, bad ? 503 : 200, "application/json", body, (size_t)n, 1);
}

/* Readiness for load balancers: 503 with the first failing reason (server.h lists them). Unlike
 * /healthz it turns 503 the moment SIGTERM arrives, so the balancer stops sending clients before the
 * listener closes. */
static int readyz(net_server *s, dynbuf *out)
{
	char reason[200] = "", text[sizeof reason * 6], body[sizeof text + 64];
	int ok = net__server_ready(s, reason, sizeof reason);
	json_text(text, sizeof text, reason);
	int n = ok ? snprintf(body, sizeof body, "{\"status\":\"ready\"}")
		   : snprintf(body, sizeof body, "{\"status\":\"unready\",\"reason\":\"%s\"}", text);
	return http__build_response(out, ok ? 200 : 503, "application/json", body, (size_t)n, 1);
}

/* admin: the admin listener's connection. /healthz, /livez and /readyz on both (they reveal nothing a
 * load balancer may not know); /metrics is served there only: it tells anyone who can read
 * it how many users are connected, the request mix and error rates, which the public need not know. */
int net__route_plain(net_server *s, const http_request *r, int admin, dynbuf *out)
{
	int rc;
	metrics__inc(METRIC_HTTP_REQUESTS);
	if (r->method != HTTP_GET) {
		static const char body[] = "method not allowed\n";
		return http__build_response(out, 405, "text/plain", body, sizeof(body) - 1, 1);
	}
	if (strcmp(r->path, "/healthz") == 0)
		return healthz(s, out);
	if (strcmp(r->path, "/readyz") == 0)
		return readyz(s, out);
	if (strcmp(r->path, "/livez") == 0) {
		/* answering at all is the proof: the loop runs and serves HTTP */
		static const char body[] = "{\"status\":\"live\"}";
		return http__build_response(out, 200, "application/json", body, sizeof(body) - 1, 1);
	}
	if (admin && strcmp(r->path, "/metrics") == 0) {
		dynbuf m;
		dynbuf__init(&m, METRICS_MAX_BYTES);
		rc = metrics__render(&m);
		if (rc == PARLEY_OK)
			rc = http__build_response(out, 200, "text/plain; version=0.0.4", m.data, m.len, 1);
		dynbuf__free(&m);
		return rc;
	}
	static const char body[] = "not found\n";
	return http__build_response(out, 404, "text/plain", body, sizeof(body) - 1, 1);
}
