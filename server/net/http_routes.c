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

/* 200 {"status":"ok"}, with a "warning" if the handler gave one; 503 {"status":"degraded","reason":..}
 * (the handler's reason: storage full) so a load balancer takes the node out. */
static int healthz(net_server *s, dynbuf *out)
{
	char reason[160] = "", body[256];
	int bad = s->h.health != NULL ? s->h.health(s->h.ctx, reason, sizeof(reason)) : 0;
	int n = bad ? snprintf(body, sizeof(body), "{\"status\":\"degraded\",\"reason\":\"%s\"}", reason)
		: reason[0] ? snprintf(body, sizeof(body), "{\"status\":\"ok\",\"warning\":\"%s\"}", reason)
			    : snprintf(body, sizeof(body), "{\"status\":\"ok\"}");
	return http__build_response(out, bad ? 503 : 200, "application/json", body, (size_t)n, 1);
}

/* admin: the admin listener's connection. /metrics is served there only: it tells anyone who can read
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
