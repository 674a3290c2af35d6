/* parleyd configuration: one table drives everything (Redis static_configs habit).
 *
 * Each option has a name, type, bounds, default, whether SIGHUP can change it, and help text. The same
 * table parses the config file, the environment (PARLEYD_<NAME>), and command-line flags (--name=value),
 * prints `--help`, dumps the effective configuration and writes the commented sample file. Precedence,
 * lowest first: default < file < environment < flags.
 *
 * Parsing is pure: config__parse_text() works on a buffer and reports errors into a caller buffer, so
 * it is unit-tested and never touches the process environment or files itself.
 */
#ifndef PARLEYD_CONFIG_H
#define PARLEYD_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"

#define CONFIG_STR_MAX 512

typedef struct parleyd_config {
	char bind[CONFIG_STR_MAX];
	int port;
	int workers;
	char data_dir[CONFIG_STR_MAX];
	char database[CONFIG_STR_MAX];
	char store[CONFIG_STR_MAX];  /* "" = SQLite (database / data_dir); postgres://... = PostgreSQL */
	char bus[CONFIG_STR_MAX];    /* "" = one node; nats://... = the cluster bus (server/cluster) */
	int bus_heartbeat_ms;
	int bus_node_timeout_ms;
	int bus_max_pending;
	int bus_max_item_bytes;
	char port_file[CONFIG_STR_MAX];
	char ws_path[CONFIG_STR_MAX];
	char tls_cert[CONFIG_STR_MAX];
	char tls_key[CONFIG_STR_MAX];
	int log_level; /* enum log_level */
	int log_json;
	int max_connections;
	int max_header_bytes;
	int max_message_bytes;
	int max_output_bytes;
	int handshake_timeout_ms;
	int idle_timeout_ms;
	int drain_delay_ms;
	int drain_timeout_ms;
	int mailbox_items;
	int max_auth_failures;
	int max_devices;
	int device_link_max_age_s;
	int register_rate_burst;
	int register_rate_per_hour;
	char registration[CONFIG_STR_MAX];
	int register_pow_bits;
	int store_batch_max;
	/* key server */
	int prekey_pool_max;
	int prekey_low_threshold;
	int bundle_rate_burst;
	int bundle_rate_per_min;
	int prekey_budget_burst;
	int prekey_budget_per_hour;
	int prekey_forget_after_s;
	/* relay */
	int max_content_bytes;
	int queue_limit;
	int message_ttl_s;
	int max_inflight;
	/* network hardening (issue 8: pre-auth limits, fd exhaustion, admin listener) */
	int auth_timeout_ms;
	int max_preauth_message_bytes;
	int message_timeout_ms;
	int max_connections_per_address;
	int fd_reserve;
	char allowed_origins[CONFIG_STR_MAX];
	char admin_bind[CONFIG_STR_MAX];
	int admin_port;
	char admin_port_file[CONFIG_STR_MAX];
	/* backpressure and memory */
	int conn_max_requests;
	int loop_max_requests;
	int loop_max_request_bytes;
	int store_queue_max;
	int idle_trim_ms;
	int storage_reserve_bytes;
	/* message requests */
	int contact_ttl_s;
	int presence_share_default;
	int purge_interval_s;
	int max_redeliveries;
	int queue_sender_share;
	int send_rate_burst;
	int send_rate_per_min;
	int redelivery_grace_ms;
	/* entity registry (server/entities) */
	int entity_code_ttl_s;
	int enrol_guess_burst;
	int enrol_guess_per_min;
	int enrol_guess_account_burst;
	int enrol_guess_account_per_min;
	int entity_max_members;
	int entity_max_pending;
	int entity_max_codes;
	int thread_max_open_per_customer;
	/* customer authentication (server/auth) */
	char auth_public_url[CONFIG_STR_MAX];
	int auth_request_ttl_s;
	int auth_max_open_per_thread;
	int auth_clock_skew_s;
	int auth_otp_attempts;
	int auth_http_timeout_ms;
	char auth_ca_file[CONFIG_STR_MAX];
	char auth_secrets_dir[CONFIG_STR_MAX];
	int auth_jwks_cache_s;
	int auth_jwks_refetch_s;
	int auth_jti_cache;
	int auth_components_max;
	int auth_allow_private_hosts;
	char auth_allowed_hosts[CONFIG_STR_MAX];
	char auth_http_proxy[CONFIG_STR_MAX];
	int auth_known_emails_max;
} parleyd_config;

enum config_source { CONFIG_SRC_DEFAULT, CONFIG_SRC_FILE, CONFIG_SRC_ENV, CONFIG_SRC_FLAG };

/* Fill every option with its default. */
void config__defaults(parleyd_config *cfg);

/* Set one option by name from text (bounds and type checked). Returns PARLEY_E_CONFIG with a message
 * in err (cap errlen) on unknown name or bad value. `reload_only`: refuse options not reloadable,
 * reporting them through `skipped` (incremented) instead of failing. */
int config__set(parleyd_config *cfg, const char *name, const char *value, char *err, size_t errlen);

/* Parse config-file text: `name value` or `name = value` lines, `#` comments, blank lines, optional
 * double quotes around values. Stops at the first error, naming the line. */
int config__parse_text(parleyd_config *cfg, const char *text, size_t len, const char *origin, char *err,
		       size_t errlen);

/* Apply PARLEYD_<UPPERCASE NAME> variables found in envp (NULL-terminated, like environ). */
int config__apply_env(parleyd_config *cfg, char *const *envp, char *err, size_t errlen);

/* Copy into `live` the options of `fresh` that may change at run time (SIGHUP); report in `out` the
 * names of non-reloadable options whose value differs (they need a restart). */
void config__apply_reloadable(parleyd_config *live, const parleyd_config *fresh, dynbuf *changed_needing_restart);

/* Usage text for all options (for --help). */
int config__usage(dynbuf *out);
/* A commented sample configuration file with every option at its default. */
int config__sample(dynbuf *out);
/* The effective configuration as `name value` lines. */
int config__dump(const parleyd_config *cfg, dynbuf *out);

/* Whether `name` is an option (for flag parsing). */
int config__has(const char *name);
/* The table's default of `name` as text, in static storage (NULL for an unknown name). */
const char *config__default_text(const char *name);

#endif
