/* The request dispatcher (net_handler): links, frame decoding, the auth gate, routing. See dispatch.h.
 *
 * Link lifetime: a link holds one reference for its open connection and one per request or hold in
 * flight (link__hold). on_close drops the first; the link (and the net_conn reference it keeps) is
 * freed when the last one goes, after every service's link_free hook. So a store completion that
 * arrives after the peer left still finds its link, sees it closed, and its answer is dropped.
 */
#include "dispatch/dispatch.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "base/log.h"
#include "base/metrics.h"
#include "common/alloc.h"
#include "dispatch/dispatch_internal.h"

#define MODULE "dispatch"

/* --- links --- */

void **link__slot(struct link *l, enum link_slot s)
{
	return &l->slot[s];
}

worker *link__worker(const struct link *l)
{
	return l->w;
}

const char *link__peer(const struct link *l)
{
	return l->conn != NULL ? net__conn_peer(l->conn) : "-";
}

int link__is_open(const struct link *l)
{
	return !l->closed && net__conn_is_open(l->conn);
}

int link__send(struct link *l, const uint8_t *buf, size_t len)
{
	if (!link__is_open(l))
		return PARLEY_E_CLOSED;
	return net__conn_send(l->conn, buf, len);
}

void link__close(struct link *l, uint16_t code, const char *reason)
{
	if (!l->closed)
		net__conn_close(l->conn, code, reason);
}

int link__authenticated(const struct link *l)
{
	return l->authenticated;
}

uint64_t link__account(const struct link *l)
{
	return l->account;
}

uint32_t link__device(const struct link *l)
{
	return l->device;
}

const char *link__handle(const struct link *l)
{
	return l->handle;
}

int link__presence_edge(const struct link *l)
{
	return l->presence_edge;
}

void link__hold(struct link *l)
{
	l->refs++;
}

static void link_free(struct link *l)
{
	dispatch *d = l->w->d;
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->link_free != NULL)
			d->services[i]->link_free(l, d->state[i]);
	net__conn_unref(l->conn);
	parley__free(l);
}

void link__release(struct link *l)
{
	if (--l->refs == 0)
		link_free(l);
}

void link__authenticate(struct link *l, uint64_t account, uint32_t device, const char *handle)
{
	worker *w = l->w;
	dispatch *d = w->d;
	if (l->authenticated || l->closed)
		return;
	l->authenticated = 1;
	l->account = account;
	l->device = device;
	snprintf(l->handle, sizeof(l->handle), "%s", handle);
	metrics__inc(METRIC_WS_CONNS_AUTHENTICATED);
	if (worker__index_add(w, l) != PARLEY_OK) {
		/* not findable means not deliverable: better no connection than a silent one */
		l->authenticated = 0;
		metrics__add(METRIC_WS_CONNS_AUTHENTICATED, -1);
		net__conn_close(l->conn, 1011, "out of memory");
		return;
	}
	net__conn_authenticated(l->conn); /* the full message size from now on, no auth deadline */
	l->presence_edge = registry__add(d->reg, account, device, w->index, l->handle) ? 1 : 0;
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->link_auth != NULL)
			d->services[i]->link_auth(l, d->state[i]);
}

/* --- backpressure ---
 *
 * Every request in flight holds memory until it completes (a send's job holds a copy of its
 * ciphertexts), and the store completes them at its own pace, so a client that pipelines without
 * waiting could make the server buffer its whole burst. Instead, a link with conn_max_requests in
 * flight, or any link that sends while its loop has loop_max_requests or loop_max_request_bytes in
 * flight, stops being read (net__conn_pause): its client's writes then block in TCP, on its side.
 * Nothing is refused; the burst is only slowed to what the store absorbs. The bytes counted are the
 * frame sizes, an upper bound of what a request copies. A link paused for its own count resumes as
 * soon as one of its requests completes; links paused for the loop wait on the worker's list and
 * resume when the loop is back under three quarters of its bounds, so they do not pause and resume
 * once per request. What a link can add beyond the bounds is what one read already held: one read
 * buffer, at most one frame. */

static int loop_over(const worker *w, unsigned num, unsigned den)
{
	const dispatch *d = w->d;
	return w->inflight >= d->loop_max_requests / den * num || w->inflight_bytes >= d->loop_max_bytes / den * num;
}

/* The worker's list holds the links waiting for the loop to get under its bounds; a link paused for
 * its own count only is on no list: its own completions resume it. */
static void list_add(struct link *l)
{
	worker *w = l->w;
	l->waits_loop = 1;
	l->pause_prev = NULL;
	l->pause_next = w->paused;
	if (w->paused != NULL)
		w->paused->pause_prev = l;
	w->paused = l;
}

static void list_remove(struct link *l)
{
	worker *w = l->w;
	if (!l->waits_loop)
		return;
	l->waits_loop = 0;
	if (l->pause_prev != NULL)
		l->pause_prev->pause_next = l->pause_next;
	else
		w->paused = l->pause_next;
	if (l->pause_next != NULL)
		l->pause_next->pause_prev = l->pause_prev;
	l->pause_prev = l->pause_next = NULL;
}

static void set_paused(struct link *l, int paused)
{
	if (l->paused == paused || (paused && l->closed))
		return;
	l->paused = (uint8_t)paused;
	if (paused)
		metrics__inc(METRIC_BACKPRESSURE_PAUSES);
	if (!l->closed)
		net__conn_pause(l->conn, paused);
}

/* After l got a request or finished one: paused while over its own bound, or while the loop is over
 * its bounds (then waiting on the loop's list), reading otherwise. */
static void apply_bounds(struct link *l)
{
	if (l->inflight >= l->w->d->conn_max_requests) {
		set_paused(l, 1);
	} else if (loop_over(l->w, 1, 1)) {
		set_paused(l, 1);
		if (!l->waits_loop && !l->closed)
			list_add(l);
	} else if (!l->waits_loop) {
		set_paused(l, 0);
	}
}

static void request_end(struct link *l, size_t bytes)
{
	worker *w = l->w;
	l->inflight--;
	w->inflight--;
	w->inflight_bytes -= bytes;
	w->served++;
	if (l->paused)
		apply_bounds(l);
	/* each waiting link leaves the list once: resumed, or still paused for its own count */
	while (w->paused != NULL && !loop_over(w, 3, 4)) {
		struct link *p = w->paused;
		list_remove(p);
		if (p->inflight < w->d->conn_max_requests)
			set_paused(p, 0);
	}
}

/* --- requests --- */

void request__reply(request *rq, Parley__Wire__Response *resp)
{
	struct link *l = rq->ln;
	worker *w = rq->w;
	resp->id = rq->id;
	if (resp->status != PARLEY_OK) {
		metrics__inc(METRIC_REQUEST_ERRORS);
		if (resp->message == NULL || resp->message[0] == '\0')
			resp->message = (char *)parley_strerror((int)resp->status);
	}
	/* a connection that closed while the request ran gets nothing: drop the answer */
	if (link__is_open(l)) {
		dynbuf *out = worker__scratch(w);
		int rc = wire__encode_response(resp, out);
		if (rc != PARLEY_OK) {
			log_error(MODULE, "encode response: %s", parley_strerror(rc));
			out = worker__scratch(w);
			rc = wire__encode_error(rq->id, PARLEY_E_INTERNAL, out);
		}
		if (rc == PARLEY_OK)
			(void)link__send(l, out->data, out->len);
	}
	metrics__observe_latency(rq->kind_, uv_hrtime() - rq->t0_);
	size_t bytes = rq->bytes_;
	parley__free(rq);
	request_end(l, bytes);
	link__release(l);
}

void request__fail(request *rq, int err)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	r.status = (uint32_t)err;
	request__reply(rq, &r);
}

/* --- the dispatcher's own route: ping --- */

/* Answered inline, never touching the store: the benchmark measures the request path with it. */
static void route_ping(request *rq, const Parley__Wire__Request *req)
{
	Parley__Wire__PingResponse pr = PARLEY__WIRE__PING_RESPONSE__INIT;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	pr.payload = req->ping->payload;
	r.body_case = PARLEY__WIRE__RESPONSE__BODY_PING;
	r.ping = &pr;
	request__reply(rq, &r);
}

static const route core_routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_PING, "ping", 0, route_ping},
};

static const service core_service = {
	.name = "core",
	SERVICE_ROUTES(core_routes),
};

/* --- net_handler callbacks --- */

static int on_worker_start(void *ctx, int index, uv_loop_t *loop)
{
	dispatch *d = ctx;
	if (index < 0 || (unsigned)index >= d->n_workers)
		return PARLEY_E_CONFIG;
	return worker__start(d, &d->workers[index], index, loop);
}

static void on_worker_stop(void *ctx, int index, uv_loop_t *loop)
{
	dispatch *d = ctx;
	if (index >= 0 && (unsigned)index < d->n_workers)
		worker__stop(&d->workers[index]);
}

static void on_open(void *ctx, net_conn *c)
{
	dispatch *d = ctx;
	worker *w = &d->workers[net__conn_worker(c)];
	struct link *l = parley__calloc(1, sizeof(*l));
	if (l == NULL) {
		net__conn_close(c, 1011, "out of memory");
		return;
	}
	l->conn = c;
	l->w = w;
	l->refs = 1;
	net__conn_ref(c);
	net__conn_set_data(c, l);
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->link_open != NULL)
			d->services[i]->link_open(l, d->state[i]);
}

static void on_close(void *ctx, net_conn *c)
{
	dispatch *d = ctx;
	struct link *l = net__conn_data(c);
	if (l == NULL)
		return;
	net__conn_set_data(c, NULL);
	l->closed = 1;
	list_remove(l);
	/* its answers would be dropped: its queued jobs need not run, nor hold their copies meanwhile */
	if (l->inflight > 0)
		store__client_cancel(l->w->sc, l);
	if (l->authenticated) {
		worker__index_remove(l->w, l);
		metrics__add(METRIC_WS_CONNS_AUTHENTICATED, -1);
		l->presence_edge = registry__remove(d->reg, l->account, l->device, l->w->index, l->handle) ? -1 : 0;
	}
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->link_close != NULL)
			d->services[i]->link_close(l, d->state[i]);
	link__release(l);
}

static void protocol_violation(net_conn *c, int err)
{
	metrics__inc(METRIC_PROTOCOL_ERRORS);
	log_debug(MODULE, "%s: closing: %s", net__conn_peer(c), parley_strerror(err));
	/* 1009: message too big; 1002: not even a protobuf frame; 1008: a frame we refuse */
	uint16_t code = err == PARLEY_E_TOO_LARGE ? 1009
			: (err == PARLEY_E_PROTO_MALFORMED || err == PARLEY_E_PROTO_TRUNCATED) ? 1002
												: 1008;
	net__conn_close(c, code, parley_errname(err));
}

/* A frame that decoded far enough to have a request id is answered with the error; anything else
 * closes the connection. */
static void refuse_frame(struct link *l, const wire_frame *f, int rc)
{
	if (f->has_id && f->kind == PARLEY__WIRE__FRAME__KIND_REQUEST && rc != PARLEY_E_NOMEM) {
		metrics__inc(METRIC_PROTOCOL_ERRORS);
		metrics__inc(METRIC_REQUEST_ERRORS);
		dynbuf *out = worker__scratch(l->w);
		if (wire__encode_error(f->id, rc, out) == PARLEY_OK)
			(void)link__send(l, out->data, out->len);
	} else if (rc == PARLEY_E_NOMEM) {
		net__conn_close(l->conn, 1011, "out of memory");
	} else {
		protocol_violation(l->conn, rc);
	}
}

static void on_message(void *ctx, net_conn *c, const uint8_t *buf, size_t len)
{
	dispatch *d = ctx;
	struct link *l = net__conn_data(c);
	uint64_t t0 = uv_hrtime();
	wire_frame f;

	if (l == NULL)
		return;
	int rc = wire__decode_frame(buf, len, &d->limits, &f);
	if (rc == PARLEY_OK && f.frame->kind_case != PARLEY__WIRE__FRAME__KIND_REQUEST)
		rc = PARLEY_E_PROTO_UNKNOWN; /* devices send requests only */
	if (rc != PARLEY_OK) {
		refuse_frame(l, &f, rc);
		wire__frame_free(&f);
		return;
	}
	const Parley__Wire__Request *req = f.frame->request;
	const struct route_entry *e = NULL;
	if (req->body_case > 0 && (unsigned)req->body_case < DISPATCH_MAX_CASE && d->by_case[req->body_case].r != NULL)
		e = &d->by_case[req->body_case];
	request *rq = parley__calloc(1, sizeof(*rq));
	if (rq == NULL) {
		net__conn_close(c, 1011, "out of memory");
		wire__frame_free(&f);
		return;
	}
	rq->w = l->w;
	rq->ln = l;
	rq->id = req->id;
	rq->account = l->account;
	rq->device = l->device;
	memcpy(rq->handle, l->handle, sizeof(rq->handle));
	rq->kind_ = e != NULL ? e->kind : d->kind_unknown;
	rq->t0_ = t0;
	rq->bytes_ = (uint32_t)len;
	link__hold(l);
	l->inflight++;
	l->w->inflight++;
	l->w->inflight_bytes += len;
	if (e == NULL) {
		request__fail(rq, PARLEY_E_PROTO_UNKNOWN); /* wire knows a kind no service routes */
	} else if (e->r->needs_auth && !l->authenticated) {
		request__fail(rq, PARLEY_E_UNAUTHENTICATED);
	} else {
		rq->svc = e->state;
		store__client_set_owner(l->w->sc, l); /* the route's store jobs are this link's */
		e->r->fn(rq, req);
		store__client_set_owner(l->w->sc, NULL);
	}
	wire__frame_free(&f);
	/* rq may be gone already (answered at once): decide on the counts, not on it */
	apply_bounds(l);
}

void service__free_state(void *state)
{
	parley__free(state);
}

/* --- set-up --- */

static int add_routes(dispatch *d, const service *s, void *state)
{
	for (size_t i = 0; i < s->n_routes; i++) {
		const route *r = &s->routes[i];
		if (r->body_case <= 0 || r->body_case >= DISPATCH_MAX_CASE || d->by_case[r->body_case].r != NULL) {
			log_error(MODULE, "service %s: route %s: request kind %d out of range or taken", s->name,
				  r->name, r->body_case);
			return PARLEY_E_CONFIG;
		}
		d->by_case[r->body_case] = (struct route_entry){r, s, state, metrics__register_kind(r->name)};
	}
	return PARLEY_OK;
}

int dispatch__new(store *s, const parleyd_config *cfg, const service *const *services, size_t n_services,
		  dispatch **out)
{
	int rc = PARLEY_OK;
	if (s == NULL || cfg == NULL || out == NULL || cfg->workers <= 0 || n_services > DISPATCH_MAX_SERVICES)
		return PARLEY_E_INVAL;
	if (sodium_init() < 0)
		return PARLEY_E_CRYPTO;
	dispatch *d = parley__calloc(1, sizeof(*d));
	if (d == NULL)
		return PARLEY_E_NOMEM;
	d->store = s;
	d->cfg = cfg;
	d->services = services;
	d->n_workers = (unsigned)cfg->workers;
	d->mailbox_cap = (size_t)cfg->mailbox_items;
	d->conn_max_requests = (unsigned)cfg->conn_max_requests;
	d->loop_max_requests = (unsigned)cfg->loop_max_requests;
	d->loop_max_bytes = (size_t)cfg->loop_max_request_bytes;
	wire__limits_default(&d->limits);
	d->limits.max_frame = (size_t)cfg->max_message_bytes;
	d->workers = parley__calloc(d->n_workers, sizeof(*d->workers));
	if (d->workers == NULL || registry__new(d->n_workers, &d->reg) != PARLEY_OK) {
		rc = PARLEY_E_NOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < d->n_workers; i++)
		pthread_mutex_init(&d->workers[i].mu, NULL);
	for (size_t i = 0; i < n_services; i++) {
		const service *sv = services[i];
		if (sv->init != NULL && (rc = sv->init(cfg, &d->state[i])) != PARLEY_OK) {
			log_error(MODULE, "service %s: %s", sv->name, parley_strerror(rc));
			goto fail;
		}
		d->n_services = i + 1;
		if ((rc = add_routes(d, sv, d->state[i])) != PARLEY_OK)
			goto fail;
	}
	if ((rc = add_routes(d, &core_service, NULL)) != PARLEY_OK || (rc = dispatch__check_mailboxes(d)) != PARLEY_OK)
		goto fail;
	d->kind_unknown = metrics__register_kind("unknown");
	*out = d;
	return PARLEY_OK;
fail:
	dispatch__free(d);
	return rc;
}

void dispatch__free(dispatch *d)
{
	if (d == NULL)
		return;
	for (size_t i = d->n_services; i-- > 0;)
		if (d->services[i]->fini != NULL)
			d->services[i]->fini(d->state[i]);
	if (d->workers != NULL)
		for (unsigned i = 0; i < d->n_workers; i++)
			pthread_mutex_destroy(&d->workers[i].mu);
	registry__free(d->reg);
	parley__free(d->workers);
	parley__free(d);
}

/* http_reply is the connection itself, seen through an opaque type */
void http_reply__send(http_reply *r, int status, const char *location, const char *html)
{
	net__http_answer((net_conn *)(void *)r, status, location, html);
}

static int on_http(void *ctx, net_conn *c, const char *url)
{
	dispatch *d = ctx;
	worker *w = &d->workers[net__conn_worker(c)];
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->http_get != NULL &&
		    d->services[i]->http_get(w, d->state[i], url, (http_reply *)(void *)c))
			return 1;
	return 0;
}

static int on_health(void *ctx, char *reason, size_t cap)
{
	dispatch *d = ctx;
	return store__health(d->store, reason, cap);
}

net_handler dispatch__handler(dispatch *d)
{
	net_handler h = {
		.ctx = d,
		.on_worker_start = on_worker_start,
		.on_worker_stop = on_worker_stop,
		.on_open = on_open,
		.on_message = on_message,
		.on_close = on_close,
		.health = on_health,
		.on_http = on_http,
	};
	return h;
}
