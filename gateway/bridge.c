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
 * key (thread, sender, device, timestamp) keeps it single. */
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

/* libparley's auth events come with issue 11's auth branch; until it is merged the gateway still links
 * (a weak reference resolves to NULL when the library lacks it) and renders no prompts. */
#pragma weak parley_auth_set_events

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

static void next_inbound(gw_bridge *b)
{
	if (b->inflight || mono_ms() < b->retry_at)
		return;
	if (store__inbound_next(b->store, &b->cur) != PARLEY_OK)
		return;
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
	if (!parley_auth_set_events)
		log__line("this libparley has no auth events yet: auth prompts are not rendered");
	b->ev.on_message = on_message;
	b->ev.on_disconnect = on_disconnect;
	b->ev.user = b;
	b->tev.on_thread_message = on_thread_message;
	b->tev.user = b;
	b->aev.on_auth_prompt = on_auth_prompt;
	b->aev.user = b;
	parley_thread_set_events(b->c, &b->tev);
	if (parley_auth_set_events)
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
