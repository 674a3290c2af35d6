/* The gateway's durable state (SQLite, WAL; one connection per thread that uses it):
 *   inbound  — every accepted webhook message, keyed on (channel, provider message id): a retried
 *              webhook finds its row and is not sent twice; a row stays 'pending' until libparley
 *              confirmed the thread message, so nothing acknowledged to a provider is lost by a restart.
 *   threads  — thread id -> (channel, channel_user), learned when a channel thread is opened.
 *   otp      — open one-time-code requests per channel customer (their answer comes back as a message).
 *   outbox   — what goes out to the customers: retried with backoff, dead-lettered on a 4xx or after
 *              retry_max attempts; keyed on a dedupe string so a redelivered staff message (the server
 *              resends what was not acknowledged) is queued once. */
#ifndef PARLEY_GATEWAY_STORE_H
#define PARLEY_GATEWAY_STORE_H
#include <stdint.h>

#include "gw.h"

typedef struct gw_store gw_store;

int store__open(const char *path, gw_store **out);
void store__close(gw_store *s);

/* Inbound. PARLEY_OK: stored (pending). PARLEY_E_EXISTS: already known (a retry: answer 200, do
 * nothing). PARLEY_E_BUSY: queue_max messages are pending already (answer 503: the provider retries). */
int store__inbound_add(gw_store *s, int channel, const gw_inbound *in, unsigned queue_max);
/* The oldest pending message; PARLEY_E_NOT_FOUND when none. text: heap. */
typedef struct gw_pending {
	int64_t rowid;
	int channel;
	char user[PARLEY_CHANNEL_USER_MAX + 1];
	char *text;
	size_t text_len;
} gw_pending;
int store__inbound_next(gw_store *s, gw_pending *out);
/* done: delivered to the thread (sent) or refused for good (failed, with the error kept). */
int store__inbound_done(gw_store *s, int64_t rowid, int ok, uint64_t thread_id, int err);
/* Forgets delivered ids older than days (their dedupe window is over). */
int store__inbound_prune(gw_store *s, unsigned days);
unsigned store__inbound_pending(gw_store *s);

int store__thread_put(gw_store *s, uint64_t thread_id, int channel, const char *user);
/* PARLEY_E_NOT_FOUND when unknown. */
int store__thread_get(gw_store *s, uint64_t thread_id, int *channel, char user[PARLEY_CHANNEL_USER_MAX + 1]);

/* One-time-code requests sent to a channel customer: the customer's next message that is only digits
 * is taken as the answer (parley_auth_answer) instead of being relayed to the staff. */
int store__otp_put(gw_store *s, int channel, const char *user, uint64_t request_id, uint64_t expires_ms);
/* The open request of (channel, user) not expired at now_ms; PARLEY_E_NOT_FOUND. */
int store__otp_get(gw_store *s, int channel, const char *user, uint64_t now_ms, uint64_t *request_id);
int store__otp_drop(gw_store *s, uint64_t request_id);

/* Outbox. PARLEY_E_EXISTS when dedupe is known. */
int store__outbox_add(gw_store *s, const char *dedupe, const gw_out *o);
/* The oldest due entry (next_ms <= now) whose channel is webchat (webchat = 1) or not (0); PARLEY_E_NOT_FOUND. */
int store__outbox_due(gw_store *s, uint64_t now_ms, int webchat, gw_out *out);
/* The oldest due webchat entry for one session. */
int store__outbox_due_user(gw_store *s, uint64_t now_ms, const char *user, gw_out *out);
/* The outcome of one attempt (enum gw_outcome); RETRY sets next_ms; why is logged in the row. */
int store__outbox_result(gw_store *s, int64_t id, int outcome, uint64_t next_ms, const char *why);
/* The earliest next_ms of a queued non-webchat entry (UINT64_MAX if none). */
uint64_t store__outbox_next_ms(gw_store *s);
/* Counts by state: queued, sent, dead. */
void store__outbox_counts(gw_store *s, unsigned *queued, unsigned *sent, unsigned *dead);

uint64_t store__now_ms(void); /* wall clock, ms */

#endif
