/* parley-gateway: internal declarations shared by its modules (docs/channels.md "Running
 * parley-gateway").
 *
 * Layout: pure functions over buffers (form.c, sig.c, sms/twilio.c, waba/waba.c, byoc/byoc.c, the
 * backoff and classification of outbox.c) are what the unit tests and the fuzz harness drive; store.c is
 * the SQLite state (inbound idempotency, thread map, outbox); http.c the HTTP/1.1 server; sender.c the
 * outbound worker (libcurl); bridge.c the parley client thread; webchat/ the page and its WebSocket.
 *
 * The gateway uses only the public libparley API (include/parley/); it never reaches into lib/.
 */
#ifndef PARLEY_GATEWAY_GW_H
#define PARLEY_GATEWAY_GW_H
#include <stddef.h>
#include <stdint.h>

#include <parley/error.h>
#include <parley/thread.h>

#include "config.h"

/* ---- a bounded growable buffer (the gateway's own: lib/'s is not part of the public API) ---- */
typedef struct gw_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len, cap, max;
} gw_buf;
void gwbuf__init(gw_buf *b, size_t max);
void gwbuf__free(gw_buf *b);
int gwbuf__append(gw_buf *b, const void *p, size_t n);  /* PARLEY_E_TOO_LARGE past max */
int gwbuf__puts(gw_buf *b, const char *s);
int gwbuf__printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s percent-encoded for application/x-www-form-urlencoded (space as '+'). */
int gwbuf__urlencode(gw_buf *b, const char *s);

/* One line on stderr: time, "parley-gateway:", the text. Never a secret nor a message body. */
void log__line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- application/x-www-form-urlencoded (bodies and query strings) ---- */
#define GW_FORM_MAX_FIELDS 128
typedef struct gw_field {
	const char *name, *value; /* decoded, NUL-terminated, in the form's buffer */
} gw_field;
typedef struct gw_form {
	gw_field f[GW_FORM_MAX_FIELDS];
	size_t n;
	char *buf;
} gw_form;
/* Decodes len bytes ('&'-separated name=value, %XX, '+' as space). PARLEY_E_CHANNEL_INVALID: a bad
 * escape, a decoded NUL, more than GW_FORM_MAX_FIELDS fields; PARLEY_E_NOMEM. Free with form__free. */
int form__parse(const char *s, size_t len, gw_form *out);
void form__free(gw_form *f);
const char *form__get(const gw_form *f, const char *name); /* the first value, or NULL */

/* ---- signatures ---- */
#define GW_SHA256_HEADER_LEN (7 + 64) /* "sha256=" + hex */
/* "sha256=" + hex HMAC-SHA256(key, body) (X-Hub-Signature-256, X-Parley-Signature). */
void sig__sha256_header(const uint8_t *key, size_t key_len, const void *body, size_t len,
			char out[GW_SHA256_HEADER_LEN + 1]);
/* PARLEY_OK when header is exactly that value (compared in constant time), else
 * PARLEY_E_CHANNEL_SIGNATURE (missing, malformed or wrong). */
int sig__sha256_check(const uint8_t *key, size_t key_len, const void *body, size_t len, const char *header);
/* The same over ts "." body: a signature that covers a timestamp (X-Parley-Timestamp of BYOC), so a
 * captured call cannot be replayed with a fresher timestamp. */
void sig__sha256_ts_header(const uint8_t *key, size_t key_len, const char *ts, const void *body, size_t len,
			   char out[GW_SHA256_HEADER_LEN + 1]);
int sig__sha256_ts_check(const uint8_t *key, size_t key_len, const char *ts, const void *body, size_t len,
			 const char *header);
/* Constant-time equality of two NUL-terminated strings (lengths are not secret). */
int sig__streq(const char *a, const char *b);

/* ---- what a provider's webhook carries: one customer message ---- */
#define GW_MSGID_MAX 128
typedef struct gw_inbound {
	char id[GW_MSGID_MAX + 1];                /* the provider's message id: the idempotency key */
	int64_t ts;                               /* the provider's time of the message (unix s); 0: none */
	char user[PARLEY_CHANNEL_USER_MAX + 1];   /* channel_user: E.164 for sms / waba */
	char *text;                               /* heap, NUL-terminated */
	size_t text_len;
} gw_inbound;
typedef struct gw_inbound_list {
	gw_inbound *v;
	size_t n;
} gw_inbound_list;
void inbound__list_free(gw_inbound_list *l);
/* 1 if s is an E.164 number: '+', then 2..15 digits, the first not 0. */
int inbound__is_e164(const char *s);
/* 1 if s is a channel_user of spec11: 1..64 bytes of printable ASCII. */
int inbound__user_valid(const char *s);

/* ---- freshness: a replay older than the dedupe window (docs/channels.md "Replays") ---- */
/* A decimal unix time of 1..12 digits, or -1. */
int64_t inbound__parse_ts(const char *s);
/* PARLEY_OK when ts is at most max_age_s old and at most GW_FUTURE_SKEW_S ahead of now;
 * PARLEY_E_TIMEOUT older; PARLEY_E_TOO_FAR_AHEAD later. */
int inbound__fresh(int64_t ts, int64_t now, unsigned max_age_s);

/* ---- an outbound HTTP request to a provider (built by the providers, sent by sender.c) ---- */
typedef struct gw_request {
	char url[2048 + 1];
	const char *content_type;
	gw_buf body;
	char basic_user[128 + 1];  /* HTTP basic auth when non-empty (Twilio) */
	const char *basic_pass;    /* borrowed from the config */
	const char *bearer;        /* Authorization: Bearer (WABA), borrowed */
	char sig_header[128];      /* e.g. "X-Parley-Signature: sha256=..." (BYOC), "" none */
	char ts_header[64];        /* e.g. "X-Parley-Timestamp: 1700000000" (BYOC), "" none */
} gw_request;
void request__init(gw_request *r, size_t max_body);
void request__free(gw_request *r);

/* What the outbox holds for one customer: a staff message, or an auth prompt to render. */
enum gw_out_kind { GW_OUT_TEXT = 1, GW_OUT_AUTH = 2 };
typedef struct gw_out {
	int64_t id;
	int channel;
	char user[PARLEY_CHANNEL_USER_MAX + 1];
	int kind;
	char *text;      /* TEXT: the message; AUTH: the component's name */
	char *url;       /* AUTH: where to sign in ("" for an otp request) */
	char *otp;       /* AUTH: the code to send ("" unless otp) */
	char *entity;    /* AUTH: the entity's display name (for the wording) */
	unsigned attempts;
} gw_out;
void out__free(gw_out *o);

/* ---- providers ---- */

/* SMS, Twilio (sms/twilio.c) */
#define TWILIO_SIGNATURE_LEN 28 /* base64 of a SHA-1 */
int twilio__signature(const char *auth_token, const char *url, const gw_form *params,
		      char out[TWILIO_SIGNATURE_LEN + 1]);
int twilio__check(const char *auth_token, const char *url, const gw_form *params, const char *header);
/* One inbound SMS from the form (MessageSid/SmsSid, From, Body; NumMedia > 0 without Body is kept as
 * "[media]"). account_sid: when non-NULL and non-empty, the form's AccountSid must equal it.
 * PARLEY_E_CHANNEL_INVALID otherwise. out->text is heap. */
int twilio__parse(const gw_form *f, const char *account_sid, gw_inbound *out);
#define TWILIO_EMPTY_TWIML "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
/* The words an auth prompt becomes on a text-only channel. */
int twilio__prompt_text(const gw_out *o, gw_buf *b);
int twilio__request(const gw_config *cfg, const gw_out *o, gw_request *r);

/* WhatsApp Cloud API style (waba/waba.c) */
/* The GET handshake: query holds hub.mode=subscribe, hub.verify_token, hub.challenge. PARLEY_OK with
 * the challenge to echo copied to out; PARLEY_E_CHANNEL_SIGNATURE for a wrong token;
 * PARLEY_E_CHANNEL_INVALID otherwise. */
int waba__verify(const char *query, const char *verify_token, char *out, size_t out_len);
/* The text messages of a webhook body (statuses and other types are skipped; a non-text message is kept
 * as "[<type>]" so staff know something came). At most max messages (PARLEY_E_TOO_LARGE beyond). Each
 * message must carry its "timestamp" (unix seconds, as a string: the freshness check needs it):
 * PARLEY_E_CHANNEL_INVALID without. */
int waba__parse(const char *body, size_t len, size_t max, gw_inbound_list *out);
int waba__request(const gw_config *cfg, const gw_out *o, gw_request *r);

/* BYOC (byoc/byoc.c): {"id":..., "user":..., "text":...} */
/* The headers of an inbound BYOC call against the secret, the body and now (unix s):
 *   PARLEY_E_CHANNEL_INVALID   X-Parley-Timestamp missing or not a decimal unix time;
 *   PARLEY_E_CHANNEL_SIGNATURE X-Parley-Signature missing or not HMAC(secret, ts "." body);
 *   PARLEY_E_TIMEOUT / PARLEY_E_TOO_FAR_AHEAD  signed, but ts more than window_s from now. */
int byoc__check(const char *secret, const char *ts, const char *sig, const void *body, size_t len, int64_t now,
		unsigned window_s);
int byoc__parse(const char *body, size_t len, gw_inbound *out);
int byoc__request(const gw_config *cfg, const gw_out *o, gw_request *r);
/* The JSON a webchat client gets for an outbox entry (webchat/webchat.c uses it too). */
int byoc__event_json(const gw_out *o, gw_buf *out);

/* ---- web chat guards (guard.c) ---- */
/* A token bucket: `burst` tokens at first, refilled at rate_per_s, one taken per event. */
typedef struct gw_bucket {
	double tokens;
	uint64_t last_ms;
	int started;
} gw_bucket;
/* 1 when a token was taken (the event may go on), 0 when the bucket is empty. */
int bucket__take(gw_bucket *b, double rate_per_s, double burst, uint64_t now_ms);

/* WebSocket sessions per client address: at most max_open at once and per_min new ones a minute (a
 * bucket of per_min tokens refilled over a minute). The table holds at most cap addresses (those with
 * open sessions or a recent one). */
#define GW_IP_MAX 45 /* INET6_ADDRSTRLEN - 1 */
#define GW_IPLIMITS_CAP 4096
typedef struct gw_iplimits gw_iplimits;
int iplimits__new(size_t cap, gw_iplimits **out);
void iplimits__free(gw_iplimits *t);
/* PARLEY_OK (the session is counted: iplimits__close it); PARLEY_E_TOO_MANY_CONNECTIONS (max_open open);
 * PARLEY_E_RATE_LIMITED (per_min reached); PARLEY_E_BUSY (the table is full of recent clients). */
int iplimits__open(gw_iplimits *t, const char *ip, unsigned per_min, unsigned max_open, uint64_t now_ms);
void iplimits__close(gw_iplimits *t, const char *ip);

/* The key of an address for per-client limits: an IPv4 address as text, an IPv6 one reduced to its /64
 * (one subscriber commonly holds a whole /64: limits on single IPv6 addresses would be no limit).
 * PARLEY_E_CHANNEL_INVALID for what is not an address. */
int ip__key(const char *text, char out[GW_IP_MAX + 1]);
/* The client of a connection from peer: when peer is one of `trusted` (webchat_trusted_proxies,
 * addresses separated by spaces or commas) and forwarded_for (X-Forwarded-For) is present, its last
 * entry (the one that proxy appended: earlier ones are the client's own words); else peer. As ip__key;
 * PARLEY_E_CHANNEL_INVALID when that entry is not an address. */
int client__key(const char *peer, const char *forwarded_for, const char *trusted, char out[GW_IP_MAX + 1]);

/* 1 if a WebSocket upgrade with this Origin header (NULL: none) may proceed. allowed: the configured
 * webchat_origins (origins separated by spaces or commas; "" for the default); the default is the
 * origin of public_url when set, else the page's own: http:// or https:// and the Host header. */
int origin__allowed(const char *origin, const char *allowed, const char *public_url, const char *host);

/* ---- outbox policy (outbox.c) ---- */
/* Delay before attempt `attempt` (1 = the first retry): min(cap, base * 2^(attempt-1)), then "equal
 * jitter": half of it fixed, the other half scaled by rnd (0..UINT32_MAX), so retries of many messages
 * after one outage do not arrive together. */
uint64_t outbox__backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd);
enum gw_outcome { GW_SENT = 0, GW_RETRY = 1, GW_DEAD = 2 };
/* transport_ok: the request got an HTTP answer (0: connect error, timeout...). 2xx sent; 408, 429, 5xx
 * and transport errors retried; any other 4xx (and 3xx: redirects are not followed) dead-lettered. */
int outbox__classify(int transport_ok, long status);

#endif
