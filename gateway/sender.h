/* The outbound worker: one thread with its own SQLite connection and libcurl handle that sends the due
 * outbox entries of the sms, waba and byoc channels, one at a time in due order, and sleeps until the
 * next one is due or sender__wake says something was queued. Web chat entries are delivered by the
 * HTTP loop to the open sockets instead (webchat/webchat.c). */
#ifndef PARLEY_GATEWAY_SENDER_H
#define PARLEY_GATEWAY_SENDER_H
#include "gw.h"

typedef struct gw_sender gw_sender;
int sender__start(const gw_config *cfg, gw_sender **out);
void sender__wake(gw_sender *s);
void sender__stop(gw_sender *s); /* joins the thread; NULL is a no-op */
/* One attempt at one entry (exported for the tests): builds the provider's request, POSTs it. */
int sender__attempt(const gw_config *cfg, void *curl, const gw_out *o, long *status, char *why, size_t why_len);

#endif
