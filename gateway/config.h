/* parley-gateway configuration: a file of `key = value` lines and/or --key=value flags (flags win).
 * Secrets are never literal: `env:NAME` or `file:/abs/path` (the file must not be readable by others),
 * resolved once at start. Every limit has a safe default and a range (PARLEY_E_CONFIG outside it). */
#ifndef PARLEY_GATEWAY_CONFIG_H
#define PARLEY_GATEWAY_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#define GW_CFG_STR 512
#define GW_SECRET_MAX 512
/* How far ahead of our clock a provider's message timestamp may be (clock skew), in seconds. */
#define GW_FUTURE_SKEW_S 300

typedef struct gw_config {
	/* the parley side */
	char entity[64];
	char home[GW_CFG_STR];       /* the gateway account's parley state directory */
	char server[GW_CFG_STR];     /* ws:// or wss:// URL of parleyd; "" = the one saved in home */
	char ca_file[GW_CFG_STR];
	char db[GW_CFG_STR];         /* the gateway's own SQLite file; "" = <home>/gateway.db */
	/* the HTTP side */
	char bind[64];
	unsigned port;               /* 0: any free port (see port_file) */
	char port_file[GW_CFG_STR];  /* written (atomically) with the port once listening */
	char public_url[GW_CFG_STR]; /* scheme://host[:port] the providers call (Twilio signs it) */
	/* limits */
	size_t max_body;             /* webhook body bytes (413 beyond) */
	unsigned queue_max;          /* inbound messages waiting for parley (503 beyond: the provider retries) */
	unsigned outbox_max;         /* outbound entries kept; beyond, a warning is logged (never dropped) */
	unsigned retry_max;          /* attempts of one outbound entry before it is dead-lettered */
	unsigned retry_base_ms, retry_cap_ms;
	unsigned http_timeout_s;     /* one outbound request */
	unsigned dedupe_days;        /* inbound ids remembered this long */
	unsigned webhook_max_age_s;  /* a WABA message older than this is dropped (0 until config__finish
	                              * derives it: 12 h less than the dedupe retention) */
	unsigned max_conns;          /* HTTP connections at once */
	/* sms: Twilio */
	char twilio_account_sid[128];
	char twilio_auth_token[GW_SECRET_MAX];
	char twilio_from[32];
	char twilio_api_base[GW_CFG_STR];
	/* waba: WhatsApp Cloud API style */
	char waba_verify_token[GW_SECRET_MAX];
	char waba_app_secret[GW_SECRET_MAX];
	char waba_token[GW_SECRET_MAX];
	char waba_phone_number_id[64];
	char waba_api_base[GW_CFG_STR];
	char waba_otp_template[128];
	char waba_template_lang[16];
	/* byoc */
	char byoc_secret[GW_SECRET_MAX];
	char byoc_url[GW_CFG_STR];
	unsigned byoc_window_s;      /* X-Parley-Timestamp at most this far from our clock */
	/* webchat */
	unsigned webchat;            /* 1: serve /webchat/ */
	char webchat_origins[GW_CFG_STR]; /* origins allowed to open the WebSocket; "": our own */
	char webchat_trusted_proxies[GW_CFG_STR]; /* peers whose X-Forwarded-For names the client */
	unsigned webchat_sessions_per_min; /* new WebSocket sessions per client address per minute */
	unsigned webchat_sessions_per_ip;  /* WebSocket sessions open at once per client address */
	unsigned webchat_msgs_per_s;       /* messages per second per session (the bucket's refill) */
	unsigned webchat_msg_burst;        /* ... and its size */
	unsigned webchat_max_msg;          /* bytes of one WebSocket message */
} gw_config;

void config__defaults(gw_config *c);
/* Applies one key = value (a file line or a flag). err receives why it was refused. */
int config__set(gw_config *c, const char *key, const char *value, char *err, size_t errlen);
int config__load_file(gw_config *c, const char *path, char *err, size_t errlen);
/* Checks what must be set together; fills derived defaults. */
int config__finish(gw_config *c, char *err, size_t errlen);
int config__sms_enabled(const gw_config *c);
int config__waba_enabled(const gw_config *c);
int config__byoc_enabled(const gw_config *c);
void config__wipe(gw_config *c); /* zeroes the secrets */

#endif
