/* The parley thread of parley-gateway (app.h): the gateway account's one parley_client.
 *
 * One thread does everything with the client, in slices of parley_client_run (SLICE_MS) between which
 * it reconnects when needed and takes the next pending inbound message from SQLite. Inbound messages
 * go one at a time, oldest first, so a customer's messages keep their order: each becomes
 * parley_thread_send_channel(entity, channel, channel_user, text) and is marked done (or kept pending
 * on a transient failure, retried after RETRY_MS) when libparley answers.
 *
 * Staff messages (on_thread_message from a staff role) and auth prompts (on_auth_prompt) become outbox
 * entries committed before the callback returns: libparley acknowledges a message to the server only
 * after its callback, so a crash in between makes the server deliver it again and the outbox's dedupe
 * key (thread, sender, device, timestamp) keeps it single.
 *
 * One-time codes: an otp prompt for a channel customer is sent out (the code to the number) and
 * remembered; that customer's next message made only of digits, while the request is open, is handed
 * to the server as the answer (parley_auth_answer) rather than relayed to the staff. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <parley/auth.h>
#include <parley/client.h>
#include <parley/entity.h>
#include <parley/thread.h>

#include "app.h"

#define SLICE_MS 50
#define RETRY_MS 2000
#define RECONNECT_MS 2000

struct gw_bridge {
	gw_app *app;
	const gw_config *cfg;
	parley_client *c;
	gw_store *store;
	pthread_t thread;
	atomic_int stop;
	int started;
	int connecting, disconnected;
	uint64_t reconnect_at, retry_at;
	int inflight;
	gw_pending cur;
	uint64_t otp_request; /* cur is the answer to this code request */
	char self[PARLEY_HANDLE_MAX + 1];
	parley_events ev;
	parley_thread_events tev;
	parley_auth_events aev;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wake_output(gw_bridge *b, int channel)
{
	if (channel == PARLEY_CHANNEL_WEBCHAT)
		uv_async_send(&b->app->wake);
	else
		sender__wake(b->app->sender);
}

static void queue_out(gw_bridge *b, const char *dedupe, const gw_out *o)
{
	unsigned q, s, d;
	int rc = store__outbox_add(b->store, dedupe, o);
	if (rc == PARLEY_E_EXISTS)
		return; /* a redelivery */
	if (rc != PARLEY_OK) {
		log__line("outbox: cannot store an entry for %s:%s (%s)", parley_channel_name(o->channel), o->user,
			  parley_strerror(rc));
		return;
	}
	store__outbox_counts(b->store, &q, &s, &d);
	if (q > b->cfg->outbox_max)
		log__line("outbox: %u entries queued (outbox_max %u): a provider is failing", q, b->cfg->outbox_max);
	wake_output(b, o->channel);
}

/* ---- staff -> customer ---- */

typedef struct resolve_ctx {
	gw_bridge *b;
	char dedupe[160];
	char *text;
} resolve_ctx;

static void on_resolved(parley_client *c, parley_err status, const parley_thread_info *info, void *user)
{
	resolve_ctx *r = user;
	(void)c;
	if (status == PARLEY_OK && info->channel != PARLEY_CHANNEL_NATIVE && inbound__user_valid(info->channel_user)) {
		gw_out o = {.channel = (int)info->channel, .kind = GW_OUT_TEXT, .text = r->text};
		snprintf(o.user, sizeof(o.user), "%s", info->channel_user);
		store__thread_put(r->b->store, info->thread_id, o.channel, o.user);
		queue_out(r->b, r->dedupe, &o);
	} else {
		log__line("thread %s: cannot tell its channel (%s): staff message not forwarded", r->dedupe,
			  parley_strerror(status));
	}
	free(r->text);
	free(r);
}

static void on_thread_message(parley_client *c, const parley_thread_message *m, void *user)
{
	gw_bridge *b = user;
	char dedupe[160];
	gw_out o = {.kind = GW_OUT_TEXT};
	if (m->sender_role == PARLEY_ROLE_NONE || strcmp(m->sender, b->self) == 0)
		return; /* the customer side: this gateway itself */
	snprintf(dedupe, sizeof(dedupe), "t:%llu:%s:%u:%llu", (unsigned long long)m->thread_id, m->sender,
		 m->sender_device, (unsigned long long)m->timestamp_ms);
	if (store__thread_get(b->store, m->thread_id, &o.channel, o.user) != PARLEY_OK) {
		/* not opened by this database (restored from elsewhere?): ask the server which customer it is */
		resolve_ctx *r = calloc(1, sizeof(*r));
		if (r && (r->text = malloc(m->body_len + 1))) {
			r->b = b;
			memcpy(r->dedupe, dedupe, sizeof(dedupe));
			memcpy(r->text, m->body, m->body_len + 1);
			if (parley_thread_get_start(c, m->thread_id, on_resolved, r) == PARLEY_OK)
				return;
			free(r->text);
		}
		free(r);
		log__line("thread %llu: unknown to the gateway: staff message not forwarded",
			  (unsigned long long)m->thread_id);
		return;
	}
	o.text = (char *)m->body;
	queue_out(b, dedupe, &o);
}

static void on_auth_prompt(parley_client *c, const parley_auth_prompt *p, void *user)
{
	gw_bridge *b = user;
	char dedupe[64];
	(void)c;
	if (p->channel == PARLEY_CHANNEL_NATIVE || !inbound__user_valid(p->channel_user) || !p->request)
		return;
	gw_out o = {.channel = (int)p->channel, .kind = GW_OUT_AUTH, .text = (char *)p->request->component,
		    .url = (char *)p->request->url, .otp = (char *)(p->otp ? p->otp : ""),
		    .entity = (char *)(p->entity_name && *p->entity_name ? p->entity_name : p->entity)};
	snprintf(o.user, sizeof(o.user), "%s", p->channel_user);
	snprintf(dedupe, sizeof(dedupe), "a:%llu", (unsigned long long)p->request->request_id);
	if (p->otp && *p->otp &&
	    store__otp_put(b->store, o.channel, o.user, p->request->request_id, p->request->expires_ms) != PARLEY_OK)
		log__line("auth request %llu: cannot remember it", (unsigned long long)p->request->request_id);
	queue_out(b, dedupe, &o);
}

/* A direct (pairwise) message to the gateway account: nobody should write to it; it is not a channel
 * customer's. Set all the same: libparley receives (sender keys included) only with on_message set. */
static void on_message(parley_client *c, const parley_message *m, void *user)
{
	(void)c;
	(void)user;
	log__line("a direct message from %s ignored (the gateway serves channel threads only)", m->sender);
}

static void on_disconnect(parley_client *c, parley_err err, void *user)
{
	gw_bridge *b = user;
	(void)c;
	if (!b->disconnected)
		log__line("parley: connection lost (%s); reconnecting", parley_errname(err));
	b->disconnected = 1;
}

static void on_connected(parley_client *c, parley_err status, void *user)
{
	gw_bridge *b = user;
	b->connecting = 0;
	if (status != PARLEY_OK) {
		log__line("parley: cannot connect (%s: %s)", parley_errname(status), parley_client_errmsg(c));
		b->disconnected = 1;
	}
}

static void keep_connected(gw_bridge *b)
{
	uint64_t now = mono_ms();
	if (!b->disconnected || b->connecting || now < b->reconnect_at)
		return;
	b->disconnected = 0;
	b->reconnect_at = now + RECONNECT_MS;
	b->connecting = parley_connect_start(b->c, on_connected, b) == PARLEY_OK;
	if (!b->connecting)
		b->disconnected = 1;
}

/* ---- customer -> staff ---- */

/* Failures that belong to the message (it can never be sent) rather than to the moment. */
static int permanent(parley_err e)
{
	return e == PARLEY_E_CHANNEL_INVALID || e == PARLEY_E_TOO_LARGE || e == PARLEY_E_INVAL;
}

static void on_sent(parley_client *c, parley_err status, uint64_t thread_id, void *user)
{
	gw_bridge *b = user;
	(void)c;
	b->inflight = 0;
	if (status == PARLEY_OK) {
		log__line("inbound %lld (%s) -> thread %llu", (long long)b->cur.rowid, parley_channel_name(b->cur.channel),
			  (unsigned long long)thread_id);
		store__thread_put(b->store, thread_id, b->cur.channel, b->cur.user);
		store__inbound_done(b->store, b->cur.rowid, 1, thread_id, 0);
	} else if (permanent(status)) {
		log__line("inbound %lld (%s): refused for good: %s", (long long)b->cur.rowid,
			  parley_channel_name(b->cur.channel), parley_errname(status));
		store__inbound_done(b->store, b->cur.rowid, 0, 0, (int)status);
	} else {
		/* NOT_ENTITY_GATEWAY, a lost connection...: kept, retried (an operator may fix the enrolment) */
		log__line("inbound %lld (%s): not delivered yet: %s; retried", (long long)b->cur.rowid,
			  parley_channel_name(b->cur.channel), parley_errname(status));
		b->retry_at = mono_ms() + RETRY_MS;
	}
	free(b->cur.text);
	memset(&b->cur, 0, sizeof(b->cur));
}

/* A reply that is only 4..PARLEY_AUTH_OTP_MAX digits, while a code request is open for its sender. */
static int otp_reply(gw_bridge *b, uint64_t *request_id)
{
	size_t n = b->cur.text_len;
	if (n < 4 || n > PARLEY_AUTH_OTP_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (b->cur.text[i] < '0' || b->cur.text[i] > '9')
			return 0;
	return store__otp_get(b->store, b->cur.channel, b->cur.user, store__now_ms(), request_id) == PARLEY_OK;
}

static void on_answered(parley_client *c, parley_err status, void *user)
{
	gw_bridge *b = user;
	(void)c;
	b->inflight = 0;
	log__line("inbound %lld (%s): a one-time code answered: %s", (long long)b->cur.rowid,
		  parley_channel_name(b->cur.channel), parley_errname(status));
	if (status == PARLEY_OK || status == PARLEY_E_OTP_ATTEMPTS || status == PARLEY_E_AUTH_EXPIRED ||
	    status == PARLEY_E_AUTH_ALREADY_ANSWERED || status == PARLEY_E_NO_SUCH_AUTH_REQUEST)
		store__otp_drop(b->store, b->otp_request);
	if (status == PARLEY_E_TIMEOUT || status == PARLEY_E_CLOSED) {
		b->retry_at = mono_ms() + RETRY_MS; /* kept pending: answered again */
	} else {
		/* the code is not relayed to the staff (a wrong one is just refused: the customer may retry) */
		store__inbound_done(b->store, b->cur.rowid, status == PARLEY_OK, 0, (int)status);
	}
	free(b->cur.text);
	memset(&b->cur, 0, sizeof(b->cur));
}

static void next_inbound(gw_bridge *b)
{
	if (b->inflight || mono_ms() < b->retry_at)
		return;
	if (store__inbound_next(b->store, &b->cur) != PARLEY_OK)
		return;
	if (otp_reply(b, &b->otp_request)) {
		/* the customer typed the code back: the server judges it (the gateway does not compare: it
		 * knows the code, and answering by itself would prove nothing) */
		if (parley_auth_answer_start(b->c, b->otp_request, b->cur.text, NULL, on_answered, b) == PARLEY_OK) {
			b->inflight = 1;
			return;
		}
	}
	parley_err rc = parley_thread_send_channel_start(b->c, b->cfg->entity, (parley_channel)b->cur.channel,
							 b->cur.user, (const uint8_t *)b->cur.text, b->cur.text_len,
							 on_sent, b);
	if (rc == PARLEY_OK) {
		b->inflight = 1;
		return;
	}
	on_sent(b->c, rc, 0, b); /* refused before anything was queued: the same judgement */
}

static void *run(void *arg)
{
	gw_bridge *b = arg;
	while (!atomic_load(&b->stop)) {
		keep_connected(b);
		next_inbound(b);
		parley_client_run(b->c, SLICE_MS);
	}
	/* stop receiving; what was handled is acknowledged by the last run */
	parley_client_set_events(b->c, NULL);
	for (uint64_t until = mono_ms() + 3000; b->inflight && mono_ms() < until;)
		parley_client_run(b->c, 10);
	parley_client_run(b->c, 0);
	return NULL;
}

int bridge__start(gw_app *app, gw_bridge **out)
{
	const gw_config *cfg = app->cfg;
	parley_client_options o;
	gw_bridge *b = calloc(1, sizeof(*b));
	*out = NULL;
	if (!b)
		return PARLEY_E_NOMEM;
	b->app = app;
	b->cfg = cfg;
	parley_client_options_init(&o);
	o.state_dir = cfg->home;
	o.server_url = cfg->server[0] ? cfg->server : NULL;
	o.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
	int rc = parley_client_new(&o, &b->c);
	if (rc == PARLEY_OK) {
		rc = parley_identity(b->c, b->self, sizeof(b->self), NULL, NULL);
		if (rc != PARLEY_OK)
			log__line("%s: no gateway account here (%s): register it with the parley CLI and enrol it "
				  "(parley entity code %s --gateway, then join)",
				  cfg->home, parley_errname(rc), cfg->entity);
	}
	if (rc == PARLEY_OK)
		rc = store__open(cfg->db, &b->store);
	if (rc != PARLEY_OK) {
		bridge__stop(b);
		return rc;
	}
	b->ev.on_message = on_message;
	b->ev.on_disconnect = on_disconnect;
	b->ev.user = b;
	b->tev.on_thread_message = on_thread_message;
	b->tev.user = b;
	b->aev.on_auth_prompt = on_auth_prompt;
	b->aev.user = b;
	parley_thread_set_events(b->c, &b->tev);
	parley_auth_set_events(b->c, &b->aev);
	parley_client_set_events(b->c, &b->ev);
	b->disconnected = 1;
	if (pthread_create(&b->thread, NULL, run, b) != 0) {
		bridge__stop(b);
		return PARLEY_E_INTERNAL;
	}
	b->started = 1;
	*out = b;
	return PARLEY_OK;
}

void bridge__stop(gw_bridge *b)
{
	if (!b)
		return;
	if (b->started) {
		atomic_store(&b->stop, 1);
		pthread_join(b->thread, NULL);
	}
	parley_client_free(b->c);
	store__close(b->store);
	free(b->cur.text);
	free(b);
}
