/* parleyd metrics, rendered as Prometheus text on GET /metrics.
 *
 * A fixed table (X-macro) of counters and gauges updated with relaxed atomics from any thread, plus
 * one latency histogram per request kind. Fixed so that updating is a single atomic add on hot paths.
 */
#ifndef PARLEYD_METRICS_H
#define PARLEYD_METRICS_H
#include <stdint.h>

#include "common/dynbuf.h"

/* X(id, prometheus name, type, help) */
#define METRICS_MAP(X)                                                                                     \
	X(CONNECTIONS_ACCEPTED, "parley_connections_accepted_total", "counter", "TCP connections accepted")  \
	X(CONNECTIONS_OPEN, "parley_connections_open", "gauge", "connections currently open")               \
	X(CONNECTIONS_REJECTED, "parley_connections_rejected_total", "counter",                            \
	  "connections refused (limit reached or shutting down)")                                          \
	X(WS_CONNS_OPEN, "parley_websocket_connections_open", "gauge", "WebSocket connections currently open") \
	X(WS_CONNS_AUTHENTICATED, "parley_websocket_connections_authenticated", "gauge",                   \
	  "WebSocket connections currently authenticated as a device")                                        \
	X(HTTP_REQUESTS, "parley_http_requests_total", "counter", "plain HTTP requests served")             \
	X(FRAMES_IN, "parley_frames_received_total", "counter", "WebSocket messages received")              \
	X(FRAMES_OUT, "parley_frames_sent_total", "counter", "WebSocket messages sent")                     \
	X(BYTES_IN, "parley_bytes_received_total", "counter", "bytes read from sockets")                    \
	X(BYTES_OUT, "parley_bytes_sent_total", "counter", "bytes written to sockets")                      \
	X(PROTOCOL_ERRORS, "parley_protocol_errors_total", "counter",                                      \
	  "HTTP/WebSocket/frame violations that closed a connection or were refused")                      \
	X(REQUEST_ERRORS, "parley_request_errors_total", "counter", "requests answered with an error")     \
	X(SLOW_CLIENTS, "parley_slow_clients_total", "counter", "connections closed for not reading")       \
	X(TLS_ERRORS, "parley_tls_errors_total", "counter", "TLS handshake or record errors")              \
	X(STORE_COMMITS, "parley_store_commits_total", "counter", "store transactions committed")           \
	X(STORE_JOBS, "parley_store_jobs_total", "counter", "store jobs executed")                          \
	X(STORE_ERRORS, "parley_store_errors_total", "counter", "store jobs that failed")                   \
	X(MAILBOX_DROPPED, "parley_mailbox_dropped_total", "counter",                                      \
	  "ephemeral cross-loop pushes (typing, presence) dropped because a loop's mailbox was full")      \
	X(MAILBOX_RESYNCS, "parley_mailbox_resyncs_total", "counter",                                      \
	  "times a loop's mailbox overflowed and its deliveries caught up from the store")                 \
	X(AUTH_TIMEOUTS, "parley_auth_timeouts_total", "counter",                                          \
	  "WebSocket connections closed for not authenticating within auth_timeout_ms")                    \
	X(MESSAGE_TIMEOUTS, "parley_message_timeouts_total", "counter",                                    \
	  "WebSocket connections closed for not completing a message within message_timeout_ms")           \
	X(ORIGIN_REFUSED, "parley_origin_refused_total", "counter",                                        \
	  "WebSocket upgrades refused for an Origin not in allowed_origins")                                 \
	X(REFUSED_PER_ADDRESS, "parley_connections_refused_per_address_total", "counter",                 \
	  "connections refused (429) for max_connections_per_address; also in rejected_total")            \
	X(REFUSED_NO_FDS, "parley_connections_refused_no_fds_total", "counter",                           \
	  "connections refused (503) because the process was out of file descriptors; also in rejected_total")  \
	X(BACKPRESSURE_PAUSES, "parley_backpressure_pauses_total", "counter",                              \
	  "times a connection stopped being read because too many of its (or its loop's) requests were in flight") \
	X(STORE_CANCELLED, "parley_store_jobs_cancelled_total", "counter",                                 \
	  "queued store jobs dropped because their connection closed")                                      \
	X(STORE_BUSY, "parley_store_busy_total", "counter",                                                \
	  "requests refused with SERVER_BUSY because the store queue was full")                             \
	X(MEMORY_TRIMS, "parley_memory_trims_total", "counter",                                            \
	  "times an idle loop returned free heap memory to the system")                                      \
	X(STORAGE_FULL, "parley_storage_full", "gauge", "1 while the store refuses writes: the disk is full")  \
	X(RELAY_REQUEUED, "parley_relay_requeued_total", "counter",                                        \
	  "envelopes moved to the back of their queue after max_redeliveries unacknowledged pushes")       \
	X(RELAY_SENDER_REFUSED, "parley_relay_sender_refused_total", "counter",                            \
	  "sends refused by the per-sender queue share or send rate limit")                                \
	X(BUS_PUBLISHED, "parley_bus_published_total", "counter", "messages published on the cluster bus")  \
	X(BUS_RECEIVED, "parley_bus_received_total", "counter",                                            \
	  "cluster bus messages received from other nodes and accepted")                                   \
	X(BUS_DROPPED, "parley_bus_dropped_total", "counter",                                              \
	  "cluster bus messages dropped: malformed, unknown handler, over bus_max_item_bytes or bus_max_pending") \
	X(BUS_RECONNECTS, "parley_bus_reconnects_total", "counter", "reconnections to NATS")

enum metric_id {
#define METRICS__ENUM(id, name, type, help) METRIC_##id,
	METRICS_MAP(METRICS__ENUM)
#undef METRICS__ENUM
	METRIC__COUNT
};

void metrics__add(enum metric_id id, int64_t delta);
static inline void metrics__inc(enum metric_id id)
{
	metrics__add(id, 1);
}
int64_t metrics__get(enum metric_id id);

/* Request latency histogram: one series per request kind (label `kind`). */
#define METRICS_MAX_KINDS 32
/* Registers a kind name once at start-up (not thread-safe); returns its index or -1 when full. */
int metrics__register_kind(const char *kind);
void metrics__observe_latency(int kind, uint64_t nanoseconds);

/* Appends the whole exposition (text format 0.0.4) to out. */
int metrics__render(dynbuf *out);

#endif
