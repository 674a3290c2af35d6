/* parleyd's network layer: listeners, loop threads, TLS, HTTP routes and WebSocket sessions.
 *
 * Each of `workers` threads runs its own uv loop and polls its own descriptor of the one listening
 * socket (no SO_REUSEPORT: a second process cannot join it); whichever loop accepts first gets the
 * connection (accept.c), so no lock sits on the accept path.
 * A connection lives on the thread that accepted it (see net/conn.h for the service contract).
 *
 * Per connection: [TLS] -> HTTP/1.1 header (bounded, timed) -> either a plain answer
 *   GET /healthz -> 200 {"status":"ok"} (503 when the handler's health says degraded: storage full);
 *   GET /livez   -> 200 {"status":"live"} while the process serves HTTP (a restart probe);
 *   GET /readyz  -> 200 {"status":"ready"}, or 503 {"status":"unready","reason":"..."} while the node
 *                   should get no new traffic: draining, storage full, or a failing ready check;
 *   other -> 404 (/metrics too: it is on the admin listener);
 *   header too large -> 431; malformed -> 400 (then close)
 * or the WebSocket upgrade on ws_path (Origin checked against allowed_origins, 403) -> binary messages
 * to net_handler.on_message: at most max_preauth_message_bytes each until the service calls
 * net__conn_authenticated, which must happen within auth_timeout_ms (else close 4408); a message must
 * arrive whole within message_timeout_ms of its first byte (else close 1008).
 * The admin listener (admin_bind:admin_port, worker 0, plain HTTP) answers /metrics, /healthz, /livez and
 * /readyz only. It stays open while the server drains (the public listener is closed first), so a probe
 * can still read /readyz 503 "draining" there until worker 0 has no connection left.
 * At accept: over max_connections -> 503, over max_conns_per_address -> 429, out of file descriptors
 * -> 503 through a reserve descriptor; each counted and logged (rate-limited). With TLS the refusal is
 * a close without an answer (an HTTP answer would need the handshake the refusal is meant to save).
 *
 * Lifecycle (all calls from one controlling thread, normally main):
 *   net__server_new -> net__server_start -> ... -> net__server_stop_accepting -> net__server_drain
 *   -> net__server_free.
 */
#ifndef PARLEYD_NET_SERVER_H
#define PARLEYD_NET_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"

/* Filled from the configuration table (net__config_from); the table holds every default. */
typedef struct net_config {
	const char *bind_address;     /* numeric IPv4/IPv6 address */
	uint16_t port;                /* 0 = ephemeral: read the result with net__server_port */
	const char *tls_cert_file;    /* PEM chain; TLS is on when both cert and key are set */
	const char *tls_key_file;
	int workers;                  /* loop threads, >= 1 */
	unsigned max_connections;     /* over all workers; further accepts are closed at once */
	size_t max_header_bytes;      /* HTTP header section */
	size_t max_message_bytes;     /* WebSocket message after reassembly */
	size_t max_pending_output;    /* unsent bytes per connection before it is a slow consumer */
	unsigned handshake_timeout_ms;/* accept -> TLS + HTTP header complete (slowloris) */
	unsigned ping_interval_ms;    /* send a ping after this much silence from the peer; 0 = never */
	unsigned idle_timeout_ms;     /* close (1001) after this much silence; 0 = never */
	const char *ws_path;          /* the WebSocket endpoint */
	unsigned auth_timeout_ms;     /* WebSocket open -> authenticated, else close 4408; 0 = never */
	size_t max_preauth_message_bytes; /* WebSocket message limit until authenticated; 0 = max_message_bytes */
	unsigned message_timeout_ms;  /* first byte of a message -> its last, else close 1008; 0 = never */
	unsigned max_conns_per_address; /* per IPv4 address / IPv6 /64, 429 beyond; 0 = no limit */
	const char *allowed_origins;  /* space/comma separated; "*" any; Origin-less requests always pass */
	const char *admin_bind;       /* admin listener (/metrics, /healthz) address */
	int admin_port;               /* -1 = port + 1 (ephemeral when port is 0), 0 = none */
} net_config;

struct parleyd_config;
/* The network's fields of the configuration table (strings point into c, which must outlive
 * net__server_new; it copies them). */
void net__config_from(net_config *nc, const struct parleyd_config *c);
/* The table's defaults (strings point to static literals). */
void net__config_defaults(net_config *cfg);

typedef struct net_server net_server;

/* Validates cfg (copied, strings duplicated) and loads the TLS certificate/key if set. handler is copied.
 * Returns NULL with *err = PARLEY_E_CONFIG (bad values), PARLEY_E_TLS (cert/key unreadable or not
 * matching), PARLEY_E_NOMEM. */
net_server *net__server_new(const net_config *cfg, const net_handler *handler, int *err);

/* Creates the listening sockets (bind + listen on every worker; the first bind decides the port when
 * port is 0) and starts the loop threads; returns once every worker ran on_worker_start and listens.
 * PARLEY_OK, PARLEY_E_IO (bind/listen failed, e.g. port in use), or the first non-zero value of
 * on_worker_start (workers already started are stopped again before returning). */
int net__server_start(net_server *s);

/* The bound TCP port (valid after a successful start). */
uint16_t net__server_port(const net_server *s);
/* The bound admin port, 0 without an admin listener. */
uint16_t net__server_admin_port(const net_server *s);

/* Close the public listening socket (the admin one stays until the drain ends); open connections
 * continue. Implies net__server_set_unready. Returns once every worker has been told. */
void net__server_stop_accepting(net_server *s);

/* ---- readiness (GET /readyz) ----
 * Liveness (/livez) says the process is not wedged: it answers while any loop serves HTTP. Readiness
 * says a load balancer should send this node new clients. It is the AND of, in this order:
 *   not draining (net__server_set_unready, SIGTERM)  -> reason "draining"
 *   the handler's health (net_handler.health)         -> its reason ("storage full: ...")
 *   every registered ready check, in registration order -> "<name>: <its reason>"
 * The first failing one gives the 503's reason. Checks run on a loop thread for every probe: they must
 * be cheap, never block and be safe from any thread (read an atomic the owner keeps up to date).
 *
 * A check: return 1 when ready; 0 when not, with a short plain-text reason written into reason (cap
 * bytes, NUL-terminated; "" gives "<name>: not ready"). arg is the registrant's.
 *
 * Registered users: parleyd.c "store" (store__ready: the database is reachable); the cluster bus
 * registers "bus" (connected to NATS) when one is configured. */
typedef int (*net_ready_fn)(void *arg, char *reason, size_t cap);
#define NET_MAX_READY_CHECKS 8
/* From the controlling thread, before or after net__server_start (a check added later is seen by the
 * next probe). name is copied (up to 31 bytes). PARLEY_OK, PARLEY_E_TOO_LARGE beyond NET_MAX_READY_CHECKS,
 * PARLEY_E_INVAL for a NULL fn or an empty name. */
int net__add_ready_check(net_server *s, const char *name, net_ready_fn fn, void *arg);
/* From now on /readyz answers 503 "draining" (the listeners stay as they are). Any thread; for ever. */
void net__server_set_unready(net_server *s);
/* 1 if /readyz would answer 200 now; the failing reason in reason otherwise (tests, logs). Any thread. */
int net__server_ready(net_server *s, char *reason, size_t cap);

/* Close every connection: WebSocket sessions get 1001 going-away, plain HTTP ones are cut. Waits up to
 * timeout_ms for peers to answer and output to flush, then closes what is left, runs on_close for every
 * opened session and on_worker_stop on every worker, and joins the threads. Implies stop_accepting.
 * Returns PARLEY_OK, or PARLEY_E_TIMEOUT if connections had to be cut at the deadline. */
int net__server_drain(net_server *s, unsigned timeout_ms);

/* Frees everything; drains with a zero timeout first if still running. NULL is fine. */
void net__server_free(net_server *s);

/* Load a certificate/key (NULL = the configured paths again) into a new SSL_CTX used for connections
 * accepted from now on; existing connections keep the old one. On failure the old context stays in use
 * and PARLEY_E_TLS is returned (PARLEY_E_STATE if the server was started without TLS). Any thread. */
int net__server_reload_tls(net_server *s, const char *cert_file, const char *key_file);

/* Number of open connections over all workers (tests, logs). Any thread. */
unsigned net__server_connections(const net_server *s);

#endif
