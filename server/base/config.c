#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/error.h>

#include "base/log.h"

enum opt_type { OPT_INT, OPT_STR, OPT_BOOL, OPT_LOGLEVEL, OPT_LOGFORMAT };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	long long min, max; /* OPT_INT bounds */
	const char *def;
	int reloadable;
	const char *help;
};

#define OFF(f) offsetof(parleyd_config, f)

/* The one table. Keep it sorted by topic; the sample file and --help follow this order. */
static const struct opt opts[] = {
	{"bind", OPT_STR, OFF(bind), 0, 0, "127.0.0.1", 0, "address to listen on (IPv4 or IPv6 literal)"},
	{"port", OPT_INT, OFF(port), 0, 65535, "7600", 0, "TCP port; 0 picks a free port (see port_file)"},
	{"workers", OPT_INT, OFF(workers), 1, 64, "1", 0,
	 "event-loop threads, all accepting from one listening socket"},
	{"data_dir", OPT_STR, OFF(data_dir), 0, 0, "./data", 0, "directory for the database and runtime files"},
	{"database", OPT_STR, OFF(database), 0, 0, "", 0,
	 "SQLite database file; empty means <data_dir>/parley.db"},
	{"store", OPT_STR, OFF(store), 0, 0, "", 0,
	 "where the data lives: empty = the embedded SQLite database (see database); a PostgreSQL URL "
	 "(postgres://user@host:port/dbname, libpq's syntax) makes this node one of several sharing it"},
	{"bus", OPT_STR, OFF(bus), 0, 0, "", 0,
	 "cluster bus: empty = a single node; nats://host:port[,nats://...] links the nodes sharing a "
	 "PostgreSQL store (wake-ups, pushes and presence between them)"},
	{"bus_heartbeat_ms", OPT_INT, OFF(bus_heartbeat_ms), 50, 60000, "1000", 0,
	 "cluster bus: period of this node's heartbeat to the others"},
	{"bus_node_timeout_ms", OPT_INT, OFF(bus_node_timeout_ms), 100, 600000, "5000", 0,
	 "cluster bus: a node silent this long is forgotten and its accounts count as offline (must "
	 "exceed bus_heartbeat_ms)"},
	{"bus_max_pending", OPT_INT, OFF(bus_max_pending), 16, 10000000, "65536", 0,
	 "cluster bus: messages waiting per subscription before NATS drops (the account's connections "
	 "then read the store again)"},
	{"bus_max_item_bytes", OPT_INT, OFF(bus_max_item_bytes), 1024, 16777216, "524288", 0,
	 "cluster bus: largest push sent to another node (a delivery beyond travels as a wake-up, the "
	 "rest is dropped); keep it under the NATS server's max_payload"},
	{"port_file", OPT_STR, OFF(port_file), 0, 0, "", 0,
	 "if set, the bound port is written here once listening (for scripts and tests)"},
	{"ws_path", OPT_STR, OFF(ws_path), 0, 0, "/v1/websocket", 0, "HTTP path of the WebSocket endpoint"},
	{"tls_cert", OPT_STR, OFF(tls_cert), 0, 0, "", 1,
	 "PEM certificate chain; TLS is on when tls_cert and tls_key are set (reloaded on SIGHUP)"},
	{"tls_key", OPT_STR, OFF(tls_key), 0, 0, "", 1, "PEM private key for tls_cert"},
	{"log_level", OPT_LOGLEVEL, OFF(log_level), 0, 0, "info", 1, "error, warn, info or debug"},
	{"log_format", OPT_LOGFORMAT, OFF(log_json), 0, 0, "text", 1, "text or json (one JSON object per line)"},
	{"max_connections", OPT_INT, OFF(max_connections), 1, 2000000, "100000", 0,
	 "connections accepted at once; more are refused"},
	{"max_header_bytes", OPT_INT, OFF(max_header_bytes), 1024, 65536, "8192", 0,
	 "largest HTTP request header section (431 beyond)"},
	{"max_message_bytes", OPT_INT, OFF(max_message_bytes), 1024, 16777216, "262144", 0,
	 "largest WebSocket message (close 1009 beyond)"},
	{"max_output_bytes", OPT_INT, OFF(max_output_bytes), 65536, 268435456, "4194304", 0,
	 "unsent bytes queued for one client before it is closed as a slow consumer"},
	{"handshake_timeout_ms", OPT_INT, OFF(handshake_timeout_ms), 100, 600000, "10000", 0,
	 "time allowed from TCP accept to a complete HTTP request / WebSocket upgrade"},
	{"idle_timeout_ms", OPT_INT, OFF(idle_timeout_ms), 1000, 86400000, "120000", 0,
	 "a WebSocket silent this long is pinged, then closed if still silent"},
	{"auth_timeout_ms", OPT_INT, OFF(auth_timeout_ms), 0, 600000, "10000", 0,
	 "a WebSocket not authenticated (register/auth) this long after the upgrade is closed (4408); 0 = never"},
	{"max_preauth_message_bytes", OPT_INT, OFF(max_preauth_message_bytes), 512, 16777216, "4096", 0,
	 "largest WebSocket message before authentication (close 1009 beyond); register, auth and ping fit"},
	{"message_timeout_ms", OPT_INT, OFF(message_timeout_ms), 0, 600000, "30000", 0,
	 "time to receive one whole WebSocket message once its first byte arrived (close 1008); 0 = never"},
	{"max_connections_per_address", OPT_INT, OFF(max_connections_per_address), 0, 2000000, "256", 0,
	 "connections open at once from one IPv4 address or IPv6 /64 (429 beyond; 0 = no limit; "
	 "behind a proxy every client has the proxy's address)"},
	{"fd_reserve", OPT_INT, OFF(fd_reserve), 0, 100000, "64", 0,
	 "file descriptors kept for the store, logs and refusals: max_connections is lowered to "
	 "RLIMIT_NOFILE minus this"},
	{"allowed_origins", OPT_STR, OFF(allowed_origins), 0, 0, "", 0,
	 "browser origins allowed to open the WebSocket, separated by spaces or commas (e.g. "
	 "https://chat.example.com), * for any; a request with another Origin gets 403, one without "
	 "Origin (native clients) is allowed"},
	{"admin_bind", OPT_STR, OFF(admin_bind), 0, 0, "127.0.0.1", 0,
	 "address of the admin listener (/metrics, /healthz); keep it private"},
	{"admin_port", OPT_INT, OFF(admin_port), -1, 65535, "-1", 0,
	 "admin listener port; -1 = port + 1 (a free port when port is 0), 0 = no admin listener"},
	{"admin_port_file", OPT_STR, OFF(admin_port_file), 0, 0, "", 0,
	 "if set, the bound admin port is written here once listening (for scripts and tests)"},
	{"drain_delay_ms", OPT_INT, OFF(drain_delay_ms), 0, 600000, "0", 1,
	 "on SIGTERM, time /readyz answers 503 (draining) while the node still accepts, before it stops "
	 "accepting and drains: a load balancer's health-check interval times its failure threshold, so it "
	 "stops sending clients first; SIGINT or a second SIGTERM skip it"},
	{"drain_timeout_ms", OPT_INT, OFF(drain_timeout_ms), 0, 600000, "5000", 0,
	 "on SIGTERM/SIGINT, time given to connections to close before exit"},
	{"mailbox_items", OPT_INT, OFF(mailbox_items), 1024, 10000000, "65536", 0,
	 "cross-loop items (deliveries, pushes) queued per loop thread; beyond, deliveries catch up from "
	 "the store and ephemeral pushes are dropped"},
	{"max_auth_failures", OPT_INT, OFF(max_auth_failures), 1, 100, "3", 0,
	 "failed register/auth signatures on one connection before it is closed"},
	{"max_devices", OPT_INT, OFF(max_devices), 1, 64, "16", 0,
	 "devices one account may have (TOO_MANY_DEVICES beyond)"},
	{"device_link_max_age_s", OPT_INT, OFF(device_link_max_age_s), 10, 86400, "600", 0,
	 "a device link code (the new device's signed proof for AddDevice) is accepted this long, either "
	 "side of the server's clock (LINK_CODE_EXPIRED beyond)"},
	{"register_rate_burst", OPT_INT, OFF(register_rate_burst), 0, 100000, "10", 0,
	 "registrations one source address (IPv4 address, IPv6 /64) may burst (leaky bucket; "
	 "REGISTRATION_LIMITED beyond; 0 = no limit)"},
	{"register_rate_per_hour", OPT_INT, OFF(register_rate_per_hour), 1, 1000000, "20", 0,
	 "sustained registrations per hour per source address"},
	{"registration", OPT_STR, OFF(registration), 0, 0, "open", 0,
	 "open, or pow: each registration pays a proof of work bound to its challenge (register_pow_bits)"},
	{"register_pow_bits", OPT_INT, OFF(register_pow_bits), 1, 28, "20", 0,
	 "registration=pow: leading zero bits of the proof's hash (about 2^bits hashes per account)"},
	{"store_batch_max", OPT_INT, OFF(store_batch_max), 1, 100000, "512", 0,
	 "most store jobs grouped into one transaction (group commit)"},
	{"prekey_pool_max", OPT_INT, OFF(prekey_pool_max), 100, 100000, "1000", 0,
	 "one-time prekeys the key server keeps per device (uploads beyond are refused)"},
	{"prekey_low_threshold", OPT_INT, OFF(prekey_low_threshold), 0, 1000, "10", 0,
	 "a device whose pool falls below this is told to refill (PrekeysLow push)"},
	{"bundle_rate_burst", OPT_INT, OFF(bundle_rate_burst), 0, 100000, "60", 0,
	 "bundle fetches one account may burst against one target (leaky bucket; 0 = no limit)"},
	{"bundle_rate_per_min", OPT_INT, OFF(bundle_rate_per_min), 1, 6000000, "60", 0,
	 "sustained bundle fetches per minute per (requester, target)"},
	{"prekey_budget_burst", OPT_INT, OFF(prekey_budget_burst), 0, 100000, "100", 0,
	 "one-time prekeys one device hands out in a burst, whoever asks (beyond, bundles carry the "
	 "signed prekey only; 0 = no budget)"},
	{"prekey_budget_per_hour", OPT_INT, OFF(prekey_budget_per_hour), 1, 1000000, "100", 0,
	 "sustained one-time prekeys one device hands out per hour"},
	{"prekey_forget_after_s", OPT_INT, OFF(prekey_forget_after_s), 1, 315360000, "2678400", 0,
	 "a one-time prekey handed out this long ago is reported to its device, which deletes its private "
	 "half; keep it above message_ttl_s (2678400 s = 31 days)"},
	{"max_content_bytes", OPT_INT, OFF(max_content_bytes), 256, 16000000, "32768", 0,
	 "largest ciphertext per device in one message (must fit in max_message_bytes)"},
	{"queue_limit", OPT_INT, OFF(queue_limit), 1, 100000000, "10000", 0,
	 "envelopes queued for one offline device before sends to it are refused"},
	{"message_ttl_s", OPT_INT, OFF(message_ttl_s), 60, 315360000, "2592000", 0,
	 "queued envelopes older than this are purged and never delivered (2592000 s = 30 days)"},
	{"max_inflight", OPT_INT, OFF(max_inflight), 1, 100000, "100", 0,
	 "envelopes pushed to one connection and not yet acknowledged"},
	/* backpressure and memory (security items 3, 13, 16) */
	{"conn_max_requests", OPT_INT, OFF(conn_max_requests), 1, 100000, "64", 0,
	 "requests of one connection in flight; beyond, parleyd stops reading it until some complete"},
	{"loop_max_requests", OPT_INT, OFF(loop_max_requests), 1, 10000000, "4096", 0,
	 "requests in flight on one loop thread; beyond, it stops reading the connections that send more"},
	{"loop_max_request_bytes", OPT_INT, OFF(loop_max_request_bytes), 1048576, 2147483647, "33554432", 0,
	 "bytes of requests in flight on one loop thread (frame sizes); beyond, as loop_max_requests"},
	{"store_queue_max", OPT_INT, OFF(store_queue_max), 64, 10000000, "16384", 0,
	 "store jobs queued at once; beyond, requests are refused with SERVER_BUSY"},
	{"idle_trim_ms", OPT_INT, OFF(idle_trim_ms), 0, 3600000, "2000", 0,
	 "a loop quiet this long after serving requests returns free heap memory to the system (0 = never)"},
	{"storage_reserve_bytes", OPT_INT, OFF(storage_reserve_bytes), 0, 2147483647, "33554432", 0,
	 "disk space held in <data_dir>/parley.reserve and released when the disk fills, so acks can still "
	 "delete (0 = no reserve)"},
	/* message requests (relay/presence.c, store/sql/contacts.c) */
	{"contact_ttl_s", OPT_INT, OFF(contact_ttl_s), 1, 315360000, "2592000", 0,
	 "an acceptance (a send to, or an accept of, a peer) unused this long is pruned: presence and "
	 "typing between the two stop until both write again (2592000 s = 30 days)"},
	{"presence_share_default", OPT_BOOL, OFF(presence_share_default), 0, 1, "true", 0,
	 "whether an account that never chose shares its online state with mutually accepted contacts"},
	{"purge_interval_s", OPT_INT, OFF(purge_interval_s), 1, 86400, "60", 0,
	 "period of the purge of expired envelopes and stale contacts"},
	/* relay: inbox lock and queue flooding (security items 1, 7) */
	{"max_redeliveries", OPT_INT, OFF(max_redeliveries), 0, 1000, "5", 0,
	 "connections that acknowledged envelopes but left this one in flight before it is moved to the "
	 "back of its queue, so that it cannot hold the window (0 = never)"},
	{"queue_sender_share", OPT_INT, OFF(queue_sender_share), 1, 100, "50", 0,
	 "percent of queue_limit one sender may hold in one device's queue (SENDER_QUEUE_FULL beyond)"},
	{"send_rate_burst", OPT_INT, OFF(send_rate_burst), 0, 1000000, "10000", 0,
	 "messages one account may send in a burst (leaky bucket per loop; SEND_RATE_LIMITED beyond; 0 = no "
	 "limit)"},
	{"send_rate_per_min", OPT_INT, OFF(send_rate_per_min), 1, 100000000, "360000", 0,
	 "sustained messages per minute one account may send (per loop)"},
	{"redelivery_grace_ms", OPT_INT, OFF(redelivery_grace_ms), 0, 3600000, "10000", 0,
	 "a connection that acknowledged nothing counts toward max_redeliveries only if it stayed this long "
	 "(a short-lived sender that does not read its queue is not refusing anything)"},
	/* entity registry (server/entities, store/sql/entities.c) */
	{"entity_code_ttl_s", OPT_INT, OFF(entity_code_ttl_s), 1, 86400, "900", 0,
	 "lifetime of an enrolment code (a request's ttl_s may only shorten it; ENROL_CODE_EXPIRED after)"},
	{"enrol_guess_burst", OPT_INT, OFF(enrol_guess_burst), 1, 1000, "10", 0,
	 "failed enrolment code attempts one entity absorbs in a burst (leaky bucket in the store, shared by "
	 "every loop; ENROL_RATE_LIMITED beyond)"},
	{"enrol_guess_per_min", OPT_INT, OFF(enrol_guess_per_min), 1, 100000, "10", 0,
	 "sustained failed enrolment code attempts per minute per entity"},
	{"enrol_guess_account_burst", OPT_INT, OFF(enrol_guess_account_burst), 1, 1000, "5", 0,
	 "failed enrolment code attempts one requesting account may make in a burst (all entities)"},
	{"enrol_guess_account_per_min", OPT_INT, OFF(enrol_guess_account_per_min), 1, 100000, "5", 0,
	 "sustained failed enrolment code attempts per minute per requesting account"},
	{"entity_max_members", OPT_INT, OFF(entity_max_members), 1, 200, "100", 0,
	 "members (admins, agents, bots) of one entity (TOO_MANY_MEMBERS beyond; at most the staff list's 200)"},
	{"entity_max_pending", OPT_INT, OFF(entity_max_pending), 1, 1000, "50", 0,
	 "pending join requests of one entity (TOO_MANY_PENDING beyond, until admins decide)"},
	{"entity_max_codes", OPT_INT, OFF(entity_max_codes), 1, 10000, "100", 0,
	 "open (unused, unexpired) enrolment codes of one entity (TOO_MANY_CODES beyond)"},
	{"thread_max_open_per_customer", OPT_INT, OFF(thread_max_open_per_customer), 1, 1000, "20", 0,
	 "open threads of one customer with one entity (TOO_MANY_THREADS beyond; a customer's own open is idempotent)"},
	/* customer authentication (server/auth, docs/protocol.md §14.2) */
	{"auth_public_url", OPT_STR, OFF(auth_public_url), 0, 0, "", 0,
	 "base URL of this server as customers' browsers reach it, for /v1/auth/start and /v1/auth/callback "
	 "(empty = http://<bind>:<port>)"},
	{"auth_request_ttl_s", OPT_INT, OFF(auth_request_ttl_s), 1, 86400, "600", 0,
	 "lifetime of an authentication request (AUTH_EXPIRED after)"},
	{"auth_max_open_per_thread", OPT_INT, OFF(auth_max_open_per_thread), 1, 100, "3", 0,
	 "open authentication requests of one thread (TOO_MANY_AUTH_REQUESTS beyond)"},
	{"auth_clock_skew_s", OPT_INT, OFF(auth_clock_skew_s), 0, 3600, "60", 0,
	 "clock difference tolerated on a token's exp, iat and nbf"},
	{"auth_otp_attempts", OPT_INT, OFF(auth_otp_attempts), 1, 100, "5", 0,
	 "wrong one-time codes before the request fails (OTP_ATTEMPTS)"},
	{"auth_http_timeout_ms", OPT_INT, OFF(auth_http_timeout_ms), 100, 120000, "5000", 0,
	 "timeout of one call to an identity provider (discovery, token exchange, JWKS, userinfo)"},
	{"auth_ca_file", OPT_STR, OFF(auth_ca_file), 0, 0, "", 0,
	 "extra CA bundle (PEM) trusted for identity providers, besides the system's (tests: the test CA)"},
	{"auth_secrets_dir", OPT_STR, OFF(auth_secrets_dir), 0, 0, "", 0,
	 "directory of the components' client secrets, one folder per entity: file:NAME is "
	 "<dir>/<entity>/NAME (empty = no secrets: confidential clients cannot exchange codes)"},
	{"auth_jwks_cache_s", OPT_INT, OFF(auth_jwks_cache_s), 0, 86400, "3600", 0,
	 "how long a provider's JWKS and discovery document are kept (an unknown kid refetches once)"},
	{"auth_jwks_refetch_s", OPT_INT, OFF(auth_jwks_refetch_s), 1, 3600, "30", 0,
	 "an unknown kid refetches a JWKS at most once per this many seconds (tokens naming made-up kids "
	 "cannot make parleyd hammer a provider)"},
	{"auth_jti_cache", OPT_INT, OFF(auth_jti_cache), 1, 1048576, "4096", 0,
	 "signed assertions (jti) of one entity remembered until their exp, in the database (so across "
	 "restarts); beyond, new ones are refused (SERVER_BUSY) until some expire"},
	{"auth_components_max", OPT_INT, OFF(auth_components_max), 1, 1000, "32", 0,
	 "authorization request components of one entity (COMPONENT_INVALID beyond)"},
	{"auth_allow_private_hosts", OPT_BOOL, OFF(auth_allow_private_hosts), 0, 1, "false", 0,
	 "let parleyd call identity providers at loopback, private, link-local and other non-public addresses "
	 "(otherwise AUTH_HOST_FORBIDDEN; tests and single-host setups only)"},
	{"auth_allowed_hosts", OPT_STR, OFF(auth_allowed_hosts), 0, 0, "", 0,
	 "comma-separated host names (exactly as in a component's URLs) whose providers may be at non-public "
	 "addresses, e.g. an IdP inside the operator's network"},
	{"auth_http_proxy", OPT_STR, OFF(auth_http_proxy), 0, 0, "", 0,
	 "proxy for every call to identity providers (empty = direct; the environment's proxy variables are "
	 "never used). The proxy must enforce its own egress policy: parleyd cannot see where it connects"},
	{"auth_known_emails_max", OPT_INT, OFF(auth_known_emails_max), 1, 32, "8", 0,
	 "known emails a business keeps for one customer (TOO_MANY_KNOWN_EMAILS beyond)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static const struct opt *find(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

int config__has(const char *name)
{
	return find(name) != NULL;
}

const char *config__default_text(const char *name)
{
	const struct opt *o = find(name);
	return o != NULL ? o->def : NULL;
}

static int set_opt(parleyd_config *cfg, const struct opt *o, const char *value, char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset;
	switch (o->type) {
	case OPT_INT: {
		char *end;
		errno = 0;
		long long v = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0') {
			snprintf(err, errlen, "%s: '%.80s' is not an integer", o->name, value);
			return PARLEY_E_CONFIG;
		}
		if (v < o->min || v > o->max) {
			snprintf(err, errlen, "%s: %lld is outside %lld..%lld", o->name, v, o->min, o->max);
			return PARLEY_E_CONFIG;
		}
		*(int *)(void *)field = (int)v;
		return PARLEY_OK;
	}
	case OPT_STR: {
		size_t n = strlen(value);
		if (n >= CONFIG_STR_MAX) {
			snprintf(err, errlen, "%s: value longer than %d bytes", o->name, CONFIG_STR_MAX - 1);
			return PARLEY_E_CONFIG;
		}
		memcpy(field, value, n + 1);
		return PARLEY_OK;
	}
	case OPT_BOOL:
		if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on")) {
			*(int *)(void *)field = 1;
		} else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") ||
			   !strcmp(value, "off")) {
			*(int *)(void *)field = 0;
		} else {
			snprintf(err, errlen, "%s: '%.80s' is not a boolean", o->name, value);
			return PARLEY_E_CONFIG;
		}
		return PARLEY_OK;
	case OPT_LOGLEVEL: {
		int l = log__level_from_name(value);
		if (l < 0) {
			snprintf(err, errlen, "%s: '%.80s' is not one of error, warn, info, debug", o->name, value);
			return PARLEY_E_CONFIG;
		}
		*(int *)(void *)field = l;
		return PARLEY_OK;
	}
	case OPT_LOGFORMAT:
		if (!strcmp(value, "text")) {
			*(int *)(void *)field = 0;
		} else if (!strcmp(value, "json")) {
			*(int *)(void *)field = 1;
		} else {
			snprintf(err, errlen, "%s: '%.80s' is not text or json", o->name, value);
			return PARLEY_E_CONFIG;
		}
		return PARLEY_OK;
	}
	return PARLEY_E_INTERNAL;
}

int config__set(parleyd_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
	const struct opt *o = find(name);
	if (o == NULL) {
		snprintf(err, errlen, "unknown option '%.80s'", name);
		return PARLEY_E_CONFIG;
	}
	return set_opt(cfg, o, value, err, errlen);
}

void config__defaults(parleyd_config *cfg)
{
	char err[128];
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < NOPTS; i++) {
		/* defaults are compile-time constants checked by the unit test */
		(void)set_opt(cfg, &opts[i], opts[i].def, err, sizeof err);
	}
}

int config__parse_text(parleyd_config *cfg, const char *text, size_t len, const char *origin, char *err,
		       size_t errlen)
{
	size_t pos = 0;
	int lineno = 0;
	while (pos < len) {
		char line[CONFIG_STR_MAX + 128];
		size_t start = pos;
		while (pos < len && text[pos] != '\n')
			pos++;
		size_t n = pos - start;
		pos++; /* skip '\n' */
		lineno++;
		if (n >= sizeof line) {
			snprintf(err, errlen, "%.200s:%d: line too long", origin, lineno);
			return PARLEY_E_CONFIG;
		}
		memcpy(line, text + start, n);
		line[n] = '\0';
		if (memchr(line, '\0', n) != NULL) {
			snprintf(err, errlen, "%.200s:%d: NUL byte in line", origin, lineno);
			return PARLEY_E_CONFIG;
		}

		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		char *name = p;
		while (*p && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
		char *name_end = p;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '=')
			p++;
		while (isspace((unsigned char)*p))
			p++;
		*name_end = '\0';
		/* value: rest of the line, trailing spaces trimmed; optional double quotes keep spaces and '#' */
		char *value = p;
		char *end = value + strlen(value);
		while (end > value && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*value == '"') {
			if (end - value < 2 || end[-1] != '"') {
				snprintf(err, errlen, "%.200s:%d: unterminated quote", origin, lineno);
				return PARLEY_E_CONFIG;
			}
			end[-1] = '\0';
			value++;
		} else {
			char *hash = strchr(value, '#');
			if (hash != NULL) {
				*hash = '\0';
				end = hash;
				while (end > value && isspace((unsigned char)end[-1]))
					*--end = '\0';
			}
		}
		if (*name == '\0') {
			snprintf(err, errlen, "%.200s:%d: expected 'name value'", origin, lineno);
			return PARLEY_E_CONFIG;
		}
		char inner[256];
		if (config__set(cfg, name, value, inner, sizeof inner) != PARLEY_OK) {
			snprintf(err, errlen, "%.200s:%d: %.250s", origin, lineno, inner);
			return PARLEY_E_CONFIG;
		}
	}
	return PARLEY_OK;
}

int config__apply_env(parleyd_config *cfg, char *const *envp, char *err, size_t errlen)
{
	static const char prefix[] = "PARLEYD_";
	for (; envp != NULL && *envp != NULL; envp++) {
		const char *e = *envp;
		if (strncmp(e, prefix, sizeof prefix - 1) != 0)
			continue;
		const char *eq = strchr(e, '=');
		if (eq == NULL)
			continue;
		char name[64];
		size_t n = (size_t)(eq - e) - (sizeof prefix - 1);
		if (n == 0 || n >= sizeof name)
			continue;
		for (size_t i = 0; i < n; i++)
			name[i] = (char)tolower((unsigned char)e[sizeof prefix - 1 + i]);
		name[n] = '\0';
		if (find(name) == NULL)
			continue; /* PARLEYD_* variables meant for other tools are not ours to reject */
		char inner[256];
		if (config__set(cfg, name, eq + 1, inner, sizeof inner) != PARLEY_OK) {
			snprintf(err, errlen, "environment %.*s: %.250s", (int)(eq - e > 64 ? 64 : eq - e), e, inner);
			return PARLEY_E_CONFIG;
		}
	}
	return PARLEY_OK;
}

static int value_to_text(const parleyd_config *cfg, const struct opt *o, char *buf, size_t cap)
{
	const char *field = (const char *)cfg + o->offset;
	switch (o->type) {
	case OPT_INT:
		return snprintf(buf, cap, "%d", *(const int *)(const void *)field);
	case OPT_STR:
		return snprintf(buf, cap, "%s", field);
	case OPT_BOOL:
		return snprintf(buf, cap, "%s", *(const int *)(const void *)field ? "true" : "false");
	case OPT_LOGLEVEL:
		return snprintf(buf, cap, "%s", log__level_name(*(const int *)(const void *)field));
	case OPT_LOGFORMAT:
		return snprintf(buf, cap, "%s", *(const int *)(const void *)field ? "json" : "text");
	}
	return 0;
}

void config__apply_reloadable(parleyd_config *live, const parleyd_config *fresh, dynbuf *changed)
{
	char a[CONFIG_STR_MAX + 16], b[CONFIG_STR_MAX + 16];
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		value_to_text(live, o, a, sizeof a);
		value_to_text(fresh, o, b, sizeof b);
		if (strcmp(a, b) == 0)
			continue;
		if (o->reloadable) {
			char err[64];
			(void)set_opt(live, o, b, err, sizeof err); /* fresh was validated when parsed */
		} else if (changed != NULL) {
			(void)dynbuf__printf(changed, "%s%s", changed->len ? ", " : "", o->name);
		}
	}
}

static const char *type_name(enum opt_type t)
{
	switch (t) {
	case OPT_INT:
		return "INT";
	case OPT_BOOL:
		return "BOOL";
	case OPT_LOGLEVEL:
		return "LEVEL";
	case OPT_LOGFORMAT:
		return "FORMAT";
	case OPT_STR:
		break;
	}
	return "TEXT";
}

int config__usage(dynbuf *out)
{
	int err = PARLEY_OK;
	for (size_t i = 0; i < NOPTS && !err; i++) {
		const struct opt *o = &opts[i];
		char arg[64], range[64] = "";
		snprintf(arg, sizeof arg, "--%s=%s", o->name, type_name(o->type));
		if (o->type == OPT_INT)
			snprintf(range, sizeof range, ", %lld..%lld", o->min, o->max);
		err = dynbuf__printf(out, "  %-32s %s\n  %-32s [default \"%s\"%s%s]\n", arg, o->help, "", o->def, range,
				     o->reloadable ? ", reloadable on SIGHUP" : "");
	}
	return err;
}

int config__sample(dynbuf *out)
{
	int err = dynbuf__append_str(out,
				     "# parleyd configuration file (sample: every option at its default).\n"
				     "# Syntax: `name value` or `name = value`; '#' starts a comment; quote values\n"
				     "# containing spaces or '#'. Each option can also be set with the environment\n"
				     "# variable PARLEYD_<NAME> or the flag --name=value (flags win, then environment,\n"
				     "# then this file). Options marked reloadable change on SIGHUP.\n");
	for (size_t i = 0; i < NOPTS && !err; i++) {
		const struct opt *o = &opts[i];
		if (o->type == OPT_INT)
			err = dynbuf__printf(out, "\n# %s (%lld..%lld)%s\n", o->help, o->min, o->max,
					     o->reloadable ? " [reloadable]" : "");
		else
			err = dynbuf__printf(out, "\n# %s%s\n", o->help, o->reloadable ? " [reloadable]" : "");
		if (!err)
			err = dynbuf__printf(out, "#%s \"%s\"\n", o->name, o->def);
	}
	return err;
}

int config__dump(const parleyd_config *cfg, dynbuf *out)
{
	int err = PARLEY_OK;
	char v[CONFIG_STR_MAX + 16];
	for (size_t i = 0; i < NOPTS && !err; i++) {
		value_to_text(cfg, &opts[i], v, sizeof v);
		err = dynbuf__printf(out, "%s \"%s\"\n", opts[i].name, v);
	}
	return err;
}
