/* `parley-bench relay --peer nats-lib|nats-js-lib`: the relay workload with nats.c (libnats), kept as a
 * cross-check of the engine of record (relay_nats.c, `--peer nats|nats-js`, which speaks the NATS
 * protocol on parley-bench's own loop threads). Here the client is nats.c's, with its own threads.
 *
 * Every connection is a natsConnection (the library's own reader/flusher threads; each subscription
 * delivers on its own thread). Receiver r subscribes to "<tag>.r<r>".
 *
 * nats (core): fire-and-forget pub/sub, nothing is stored. A sender publishes with a reply subject
 * "<tag>.a<i>" and the receiver answers every delivery with the 24-byte header, so the "ack" here is
 * the receiver's reply (a full round trip through the server, not durability). That is the closest
 * core NATS comes to "acknowledged"; read its numbers as an in-memory, no-durability ceiling.
 *
 * nats-js (JetStream): one stream "S<tag>" with file storage over "<tag>.>", created at the start
 * and deleted at the end. Senders use js_PublishAsync: the ack is the stream's PubAck (the message is
 * stored). Each receiver has a durable push consumer on its subject, acked per message by the
 * library after the callback (AckExplicit).
 */
#include "relay.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <parley/error.h>

#include "common/alloc.h"

#ifndef PARLEY_BENCH_HAVE_NATS

int relay__engine_nats_lib(const relay_cfg *cfg, relay_result *res)
{
	(void)cfg;
	(void)res;
	return PARLEY_E_UNSUPPORTED;
}

#else
#include <nats/nats.h>

typedef struct nconn {
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub, *ack_sub;
	relay_run *run;
	unsigned idx;
	relay_stats *st;
	relay_sender *s;
	uint8_t *buf;
	char subj[96], reply[96];
} nconn;

typedef struct nengine {
	relay_run run;
	nconn *c;
	relay_stats **stats;
	unsigned nstats;
	int js;
} nengine;

static void send_locked(nconn *c)
{
	relay_sender *s = c->s;
	natsStatus st;

	relay__fill(c->buf, c->run->cfg->size, s->idx, s->next_seq);
	relay__seal(c->run->cfg, c->buf, s->receiver);
	if (c->js)
		st = js_PublishAsync(c->js, c->subj, c->buf, (int)c->run->cfg->size, NULL);
	else
		st = natsConnection_PublishRequest(c->nc, c->subj, c->reply, c->buf, (int)c->run->cfg->size);
	s->next_seq++;
	atomic_fetch_add_explicit(&s->n_sent, 1, memory_order_relaxed);
	if (st != NATS_OK) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(c->run, "nats publish", natsStatus_GetText(st));
		return;
	}
	s->in_flight++;
}

static void send_one(void *c)
{
	send_locked(c);
}

static void fill_locked(nconn *c, uint64_t now)
{
	relay__fill_window(c->run, c->s, now, send_one, c);
}

/* An ack (core: the receiver's reply; JetStream: the PubAck) for the message whose header is hdr. */
static void on_ack_hdr(nconn *c, const uint8_t *hdr, size_t len, int ok, const char *err)
{
	relay_sender *s = c->s;
	uint64_t now = uv_hrtime(), seq, t;
	unsigned sender;

	pthread_mutex_lock(&s->mu);
	s->in_flight--;
	if (relay__parse(hdr, len, &sender, &seq, &t) != 0 || sender != s->idx) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(c->run, "malformed ack", NULL);
	} else if (!ok) {
		atomic_fetch_add_explicit(&s->n_errors, 1, memory_order_relaxed);
		relay__error(c->run, "publish refused", err);
	} else {
		relay__acked(c->run, s, seq, t, now);
	}
	if (c->run->cfg->rate <= 0)
		fill_locked(c, now);
	pthread_mutex_unlock(&s->mu);
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	on_ack_hdr(closure, (const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 1, NULL);
	natsMsg_Destroy(msg);
}

static void on_js_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	on_ack_hdr(closure, (const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
		   pa != NULL && pae == NULL, pae && pae->ErrText ? pae->ErrText : "no PubAck");
	natsMsg_Destroy(msg);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	nconn *c = closure;
	const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
	size_t len = (size_t)natsMsg_GetDataLength(msg);
	const char *reply;

	(void)sub;
	relay__check_body(c->run, c->st, data, len, c->idx, uv_hrtime());
	reply = natsMsg_GetReply(msg);
	if (!c->js && reply && len >= RELAY_HDR)
		natsConnection_Publish(nc, reply, data, (int)RELAY_HDR);
	natsMsg_Destroy(msg);
}

static void kick(void *ctx)
{
	nengine *e = ctx;
	uint64_t now = uv_hrtime();
	unsigned i;

	for (i = 0; i < e->run.cfg->senders; i++) {
		pthread_mutex_lock(&e->c[i].s->mu);
		fill_locked(&e->c[i], now);
		pthread_mutex_unlock(&e->c[i].s->mu);
	}
}

static void tick(void *ctx, uint64_t now)
{
	(void)now;
	kick(ctx);
}

static natsStatus connect_one(nengine *e, nconn *c, const char *url)
{
	const relay_cfg *cfg = e->run.cfg;
	natsOptions *o = NULL;
	natsStatus st;
	jsOptions jo;
	jsSubOptions so;
	jsErrCode jerr = 0;
	char durable[64];

	st = natsOptions_Create(&o);
	if (st == NATS_OK)
		st = natsOptions_SetURL(o, url);
	/* Deliveries can outrun a slow callback by far more than the default 64 Ki before the window
	 * stops the senders; a drop here would show up as a lost message. */
	if (st == NATS_OK)
		st = natsOptions_SetMaxPendingMsgs(o, 1 << 20);
	/* Write each publish at once instead of leaving it to the library's flusher thread: parleyd's
	 * client does the same (one write per message), and batching would be traded for latency. */
	if (st == NATS_OK)
		st = natsOptions_SetSendAsap(o, true);
	if (st == NATS_OK)
		st = natsConnection_Connect(&c->nc, o);
	natsOptions_Destroy(o);
	if (st == NATS_OK && e->js) {
		jsOptions_Init(&jo);
		jo.PublishAsync.AckHandler = on_js_ack;
		jo.PublishAsync.AckHandlerClosure = c;
		/* Our window/backlog bounds what is in flight; the library's own bound must stay above it, as
		 * it counts a message as pending until its ack handler has returned, and the closed loop
		 * publishes the next message from inside that handler. */
		jo.PublishAsync.MaxPending = 2 * (int64_t)(cfg->rate > 0 ? cfg->open_backlog : cfg->window) + 16;
		st = natsConnection_JetStream(&c->js, c->nc, &jo);
	}
	if (st == NATS_OK && c->s && !e->js)
		st = natsConnection_Subscribe(&c->ack_sub, c->nc, c->reply, on_reply, c);
	if (st == NATS_OK && c->st) {
		char subj[96];
		snprintf(subj, sizeof(subj), "%s.r%u", cfg->run_tag, c->idx);
		if (e->js) {
			char stream[64];
			snprintf(stream, sizeof(stream), "S%s", cfg->run_tag);
			snprintf(durable, sizeof(durable), "d%sr%u", cfg->run_tag, c->idx);
			jsSubOptions_Init(&so);
			so.Stream = stream;
			so.Config.Durable = durable;
			so.Config.AckPolicy = js_AckExplicit;
			so.Config.MaxAckPending = 65536;
			st = js_Subscribe(&c->sub, c->js, subj, on_msg, c, NULL, &so, &jerr);
		} else {
			st = natsConnection_Subscribe(&c->sub, c->nc, subj, on_msg, c);
		}
		if (st == NATS_OK)
			st = natsSubscription_SetPendingLimits(c->sub, -1, -1);
	}
	if (st == NATS_OK)
		st = natsConnection_Flush(c->nc);
	return st;
}

static natsStatus stream_op(nengine *e, const char *url, int create)
{
	const relay_cfg *cfg = e->run.cfg;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	char name[64], subj[64];
	const char *subjects[1] = {subj};
	natsStatus st;

	snprintf(name, sizeof(name), "S%s", cfg->run_tag);
	snprintf(subj, sizeof(subj), "%s.>", cfg->run_tag);
	st = natsConnection_ConnectTo(&nc, url);
	if (st == NATS_OK)
		st = natsConnection_JetStream(&js, nc, NULL);
	if (st == NATS_OK && create) {
		jsStreamConfig_Init(&sc);
		sc.Name = name;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		st = js_AddStream(&si, js, &sc, NULL, &jerr);
		jsStreamInfo_Destroy(si);
	} else if (st == NATS_OK) {
		st = js_DeleteStream(js, name, NULL, &jerr);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return st;
}

int relay__engine_nats_lib(const relay_cfg *cfg, relay_result *res)
{
	nengine e;
	char host[INET6_ADDRSTRLEN], url[128];
	unsigned i, n = cfg->conns, ready = 0;
	uint64_t t_open;
	natsStatus st;
	int rc = PARLEY_OK, stream = 0;
	relay_driver d;

	memset(&e, 0, sizeof(e));
	e.js = cfg->peer == RELAY_PEER_NATS_JS_LIB;
	if (cfg->target.addr.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&cfg->target.addr)->sin6_addr, host, sizeof(host));
		snprintf(url, sizeof(url), "nats://[%s]:%u", host, cfg->target.port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&cfg->target.addr)->sin_addr, host, sizeof(host));
		snprintf(url, sizeof(url), "nats://%s:%u", host, cfg->target.port);
	}
	rc = relay__run_init(&e.run, cfg);
	if (rc != PARLEY_OK)
		return rc;
	e.c = parley__calloc(n, sizeof(*e.c));
	e.stats = parley__calloc(n, sizeof(*e.stats));
	if (!e.c || !e.stats) {
		rc = PARLEY_E_NOMEM;
		goto out;
	}
	if (e.js) {
		st = stream_op(&e, url, 1);
		if (st != NATS_OK) {
			fprintf(stderr, "parley-bench: cannot create the JetStream stream: %s (is JetStream on?)\n",
				natsStatus_GetText(st));
			rc = PARLEY_E_IO;
			goto out;
		}
		stream = 1;
	}
	t_open = uv_hrtime();
	for (i = 0; i < n; i++) {
		nconn *c = &e.c[i];
		c->run = &e.run;
		c->idx = i;
		if (relay__is_receiver(cfg, i)) {
			c->st = relay__stats_new(e.stats, &e.nstats);
			if (!c->st) {
				rc = PARLEY_E_NOMEM;
				goto out;
			}
		}
		if (relay__is_sender(cfg, i)) {
			c->s = &e.run.senders[i];
			c->buf = parley__malloc(cfg->size);
			if (!c->buf) {
				rc = PARLEY_E_NOMEM;
				goto out;
			}
			snprintf(c->subj, sizeof(c->subj), "%s.r%u", cfg->run_tag, relay__receiver_of(cfg, i));
			snprintf(c->reply, sizeof(c->reply), "%s.a%u", cfg->run_tag, i);
		}
		st = connect_one(&e, c, url);
		if (st != NATS_OK) {
			relay__error(&e.run, "nats connect/subscribe", natsStatus_GetText(st));
			break;
		}
		ready++;
	}
	d = (relay_driver){
		.kick = kick, .tick = cfg->rate > 0 ? tick : NULL, .ctx = &e, .stats = e.stats, .nstats = e.nstats};
	relay__drive_when_ready(&e.run, &d, res, ready, n, t_open);
out:
	if (e.c) {
		for (i = 0; i < n; i++) {
			nconn *c = &e.c[i];
			if (c->nc)
				natsConnection_Close(c->nc);
		}
		for (i = 0; i < n; i++) {
			nconn *c = &e.c[i];
			natsSubscription_Destroy(c->sub);
			natsSubscription_Destroy(c->ack_sub);
			jsCtx_Destroy(c->js);
			natsConnection_Destroy(c->nc);
		}
	}
	if (stream)
		stream_op(&e, url, 0);
	if (rc == PARLEY_OK)
		relay__collect(&e.run, e.stats, e.nstats, res);
	if (e.c)
		for (i = 0; i < n; i++) {
			parley__free(e.c[i].st);
			parley__free(e.c[i].buf);
		}
	parley__free(e.c);
	parley__free(e.stats);
	relay__run_free(&e.run);
	nats_Close();
	return rc;
}
#endif
