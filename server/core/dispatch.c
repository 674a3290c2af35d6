/* The request dispatcher (net_handler): sessions, frame decoding, auth gate, routing. See dispatch.h. */
#include "core/dispatch.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <parley/error.h>

#include "accounts/accounts.h"
#include "common/alloc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "wire/wire.h"

#define MODULE "dispatch"
#define MAX_KICKS 256 /* pending cross-loop "device removed" notices per worker */

struct session;

/* One loop thread's state; touched only by that thread, except the kick queue (mutex). */
struct worker {
	dispatch *d;
	uv_loop_t *loop;
	store_client *sc;
	dynbuf out;                 /* scratch for encoding responses (net__conn_send copies) */
	struct session *sessions;   /* doubly linked list of open sessions */
	uv_async_t kick_async;
	pthread_mutex_t kick_mu;
	int running;                /* guarded by kick_mu */
	size_t n_kicks;
	struct kick {
		uint64_t account_id;
		uint32_t device_id;
	} kicks[MAX_KICKS];
};

struct dispatch {
	store *store;
	dispatch_config cfg;
	wire_limits limits;
	accounts acc;
	struct worker *workers;
	int kind_unknown;
};

struct session {
	acct_session acct;
	net_conn *conn;
	struct worker *w;
	unsigned pending; /* requests in flight: the session outlives the connection until they finish */
	int closed;
	struct session *prev, *next;
};

/* One request in flight. Holds a reference on the connection. */
struct pending {
	dispatch *d;
	struct session *s;
	uint64_t id;
	int body_case;
	int kind;         /* metrics histogram index */
	uint64_t t0;      /* uv_hrtime at receipt */
};

typedef void (*route_fn)(struct pending *p, const Parley__Wire__Request *req);

static void route_ping(struct pending *p, const Parley__Wire__Request *req);
static void route_register(struct pending *p, const Parley__Wire__Request *req);
static void route_auth(struct pending *p, const Parley__Wire__Request *req);
static void route_list_devices(struct pending *p, const Parley__Wire__Request *req);
static void route_add_device(struct pending *p, const Parley__Wire__Request *req);
static void route_remove_device(struct pending *p, const Parley__Wire__Request *req);

/* THE routing table: one line per request kind. Later services (keys, relay, groups) add lines here. */
static struct route {
	int body_case;
	const char *name;
	int needs_auth;
	route_fn fn;
	int kind; /* metrics index, filled by dispatch__new */
} routes[] = {
	{PARLEY__WIRE__REQUEST__BODY_PING, "ping", 0, route_ping, -1},
	{PARLEY__WIRE__REQUEST__BODY_REGISTER, "register", 0, route_register, -1},
	{PARLEY__WIRE__REQUEST__BODY_AUTH, "auth", 0, route_auth, -1},
	{PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES, "list_devices", 1, route_list_devices, -1},
	{PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE, "add_device", 1, route_add_device, -1},
	{PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE, "remove_device", 1, route_remove_device, -1},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static const struct route *find_route(int body_case)
{
	for (size_t i = 0; i < N_ROUTES; i++)
		if (routes[i].body_case == body_case)
			return &routes[i];
	return NULL;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- sessions --- */

static void session_free_if_done(struct session *s)
{
	if (s->closed && s->pending == 0)
		parley__free(s);
}

static void send_challenge(struct session *s)
{
	struct worker *w = s->w;
	if (s->closed)
		return;
	dynbuf__reset(&w->out);
	if (wire__encode_challenge(s->acct.nonce, wall_ms(), &w->out) == PARLEY_OK)
		(void)net__conn_send(s->conn, w->out.data, w->out.len);
}

/* --- answering --- */

static void send_response(struct pending *p, Parley__Wire__Response *resp)
{
	struct session *s = p->s;
	struct worker *w = s->w;
	resp->id = p->id;
	if (resp->status != PARLEY_OK) {
		metrics__inc(METRIC_REQUEST_ERRORS);
		if (resp->message == NULL || resp->message[0] == '\0')
			resp->message = (char *)parley_strerror((int)resp->status);
	}
	/* a connection that closed while its store job ran gets nothing: drop the answer */
	if (!s->closed && net__conn_is_open(s->conn)) {
		dynbuf__reset(&w->out);
		int rc = wire__encode_response(resp, &w->out);
		if (rc != PARLEY_OK) {
			log_error(MODULE, "encode response: %s", parley_strerror(rc));
			dynbuf__reset(&w->out);
			rc = wire__encode_error(p->id, PARLEY_E_INTERNAL, &w->out);
		}
		if (rc == PARLEY_OK)
			(void)net__conn_send(s->conn, w->out.data, w->out.len);
	}
	metrics__observe_latency(p->kind, uv_hrtime() - p->t0);
}

/* Ends a request: answer, then drop its references. */
static void finish(struct pending *p, Parley__Wire__Response *resp)
{
	struct session *s = p->s;
	send_response(p, resp);
	net__conn_unref(s->conn);
	s->pending--;
	parley__free(p);
	session_free_if_done(s);
}

static void finish_error(struct pending *p, int err)
{
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	r.status = (uint32_t)err;
	finish(p, &r);
}

/* --- routes --- */

static void route_ping(struct pending *p, const Parley__Wire__Request *req)
{
	/* answered inline, never touching the store: the benchmark measures the request path with it */
	Parley__Wire__PingResponse pr = PARLEY__WIRE__PING_RESPONSE__INIT;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	pr.payload = req->ping->payload;
	r.body_case = PARLEY__WIRE__RESPONSE__BODY_PING;
	r.ping = &pr;
	finish(p, &r);
}

/* Close every connection of (account, device) on this worker, except `keep`. */
static void close_device_sessions(struct worker *w, uint64_t account, uint32_t device, struct session *keep)
{
	for (struct session *s = w->sessions; s != NULL; s = s->next)
		if (s != keep && s->acct.authenticated && s->acct.account_id == account &&
		    s->acct.device_id == device) {
			log_info(MODULE, "closing %s (worker %d): device %u of account %llu was removed",
				 net__conn_peer(s->conn), net__conn_worker(s->conn), device,
				 (unsigned long long)account);
			net__conn_close(s->conn, 1008, "device removed");
		}
}

static void post_kick(dispatch *d, struct worker *self, uint64_t account, uint32_t device)
{
	for (unsigned i = 0; i < d->cfg.max_workers; i++) {
		struct worker *w = &d->workers[i];
		if (w == self)
			continue;
		pthread_mutex_lock(&w->kick_mu);
		if (w->running) {
			if (w->n_kicks < MAX_KICKS) {
				w->kicks[w->n_kicks].account_id = account;
				w->kicks[w->n_kicks].device_id = device;
				w->n_kicks++;
				uv_async_send(&w->kick_async);
			} else {
				log_warn(MODULE, "worker %u kick queue full: device %u of account %llu stays connected there",
					 i, device, (unsigned long long)account);
			}
		}
		pthread_mutex_unlock(&w->kick_mu);
	}
}

static void on_kick(uv_async_t *h)
{
	struct worker *w = h->data;
	struct kick k[MAX_KICKS];
	size_t n;
	pthread_mutex_lock(&w->kick_mu);
	n = w->n_kicks;
	memcpy(k, w->kicks, n * sizeof(k[0]));
	w->n_kicks = 0;
	pthread_mutex_unlock(&w->kick_mu);
	for (size_t i = 0; i < n; i++)
		close_device_sessions(w, k[i].account_id, k[i].device_id, NULL);
}

/* The one completion for every accounts request: turns the result into a Response. */
static void accounts_answer(void *arg, acct_session *as, const accounts_result *ar)
{
	struct pending *p = arg;
	struct session *s = p->s;
	Parley__Wire__Response r = PARLEY__WIRE__RESPONSE__INIT;
	Parley__Wire__RegisterResponse reg = PARLEY__WIRE__REGISTER_RESPONSE__INIT;
	Parley__Wire__AuthResponse au = PARLEY__WIRE__AUTH_RESPONSE__INIT;
	Parley__Wire__ListDevicesResponse ld = PARLEY__WIRE__LIST_DEVICES_RESPONSE__INIT;
	Parley__Wire__AddDeviceResponse ad = PARLEY__WIRE__ADD_DEVICE_RESPONSE__INIT;
	Parley__Wire__RemoveDeviceResponse rd = PARLEY__WIRE__REMOVE_DEVICE_RESPONSE__INIT;
	Parley__Wire__Device *devs = NULL, **devp = NULL;
	int close_conn = ar->close_conn;
	uint32_t removed = ar->removed_device;

	r.status = (uint32_t)ar->status;
	/* the fresh challenge goes out before the error, so a client that retries on the error already
	 * holds the nonce it must sign */
	if (ar->new_challenge)
		send_challenge(s);
	if (ar->status == PARLEY_OK) {
		switch (p->body_case) {
		case PARLEY__WIRE__REQUEST__BODY_REGISTER:
			reg.account_id = ar->account_id;
			reg.device_id = ar->device_id;
			r.body_case = PARLEY__WIRE__RESPONSE__BODY_REGISTER;
			r.register_ = &reg;
			if (!s->closed) /* else on_close already ran and will not count it down */
				metrics__inc(METRIC_WS_SESSIONS_AUTHENTICATED);
			break;
		case PARLEY__WIRE__REQUEST__BODY_AUTH:
			au.account_id = ar->account_id;
			r.body_case = PARLEY__WIRE__RESPONSE__BODY_AUTH;
			r.auth = &au;
			if (!s->closed)
				metrics__inc(METRIC_WS_SESSIONS_AUTHENTICATED);
			break;
		case PARLEY__WIRE__REQUEST__BODY_LIST_DEVICES:
			devs = parley__calloc(ar->n_devices ? ar->n_devices : 1, sizeof(*devs));
			devp = parley__calloc(ar->n_devices ? ar->n_devices : 1, sizeof(*devp));
			if (devs == NULL || devp == NULL) {
				r.status = PARLEY_E_NOMEM;
				break;
			}
			for (size_t i = 0; i < ar->n_devices; i++) {
				parley__wire__device__init(&devs[i]);
				devs[i].device_id = ar->devices[i].device_id;
				devs[i].name = (char *)ar->devices[i].name;
				devs[i].device_key.data = (uint8_t *)ar->devices[i].key;
				devs[i].device_key.len = STORE_KEY_LEN;
				devs[i].created_ms = ar->devices[i].created_ms;
				devs[i].last_seen_ms = ar->devices[i].last_seen_ms;
				devp[i] = &devs[i];
			}
			ld.n_devices = ar->n_devices;
			ld.devices = devp;
			r.body_case = PARLEY__WIRE__RESPONSE__BODY_LIST_DEVICES;
			r.list_devices = &ld;
			break;
		case PARLEY__WIRE__REQUEST__BODY_ADD_DEVICE:
			ad.device_id = ar->device_id;
			r.body_case = PARLEY__WIRE__RESPONSE__BODY_ADD_DEVICE;
			r.add_device = &ad;
			break;
		case PARLEY__WIRE__REQUEST__BODY_REMOVE_DEVICE:
			r.body_case = PARLEY__WIRE__RESPONSE__BODY_REMOVE_DEVICE;
			r.remove_device = &rd;
			break;
		default:
			break;
		}
	}
	struct worker *w = s->w;
	dispatch *d = p->d;
	uint64_t account = as->account_id;
	net_conn *conn = s->conn;
	int was_closed = s->closed;
	if (close_conn)
		net__conn_ref(conn); /* finish() drops the request's reference, maybe the last one */
	finish(p, &r);            /* may free s */
	parley__free(devs);
	parley__free(devp);
	if (removed != 0) {
		/* after the response, so a device removing itself still gets its answer first */
		close_device_sessions(w, account, removed, NULL);
		post_kick(d, w, account, removed);
	}
	if (close_conn) {
		if (!was_closed)
			net__conn_close(conn, 1008, "too many failed authentication attempts");
		net__conn_unref(conn);
	}
}

static void route_register(struct pending *p, const Parley__Wire__Request *req)
{
	accounts__register(&p->d->acc, p->s->w->sc, &p->s->acct, req->register_, accounts_answer, p);
}

static void route_auth(struct pending *p, const Parley__Wire__Request *req)
{
	accounts__auth(&p->d->acc, p->s->w->sc, &p->s->acct, req->auth, accounts_answer, p);
}

static void route_list_devices(struct pending *p, const Parley__Wire__Request *req)
{
	accounts__list_devices(&p->d->acc, p->s->w->sc, &p->s->acct, accounts_answer, p);
}

static void route_add_device(struct pending *p, const Parley__Wire__Request *req)
{
	accounts__add_device(&p->d->acc, p->s->w->sc, &p->s->acct, req->add_device, accounts_answer, p);
}

static void route_remove_device(struct pending *p, const Parley__Wire__Request *req)
{
	accounts__remove_device(&p->d->acc, p->s->w->sc, &p->s->acct, req->remove_device, accounts_answer, p);
}

/* --- net_handler callbacks --- */

static int on_worker_start(void *ctx, int worker, uv_loop_t *loop)
{
	dispatch *d = ctx;
	if (worker < 0 || (unsigned)worker >= d->cfg.max_workers)
		return PARLEY_E_CONFIG;
	struct worker *w = &d->workers[worker];
	w->d = d;
	w->loop = loop;
	dynbuf__init(&w->out, d->limits.max_frame + 1024);
	int rc = store__client_new(d->store, loop, &w->sc);
	if (rc != PARLEY_OK)
		return rc;
	if (uv_async_init(loop, &w->kick_async, on_kick) != 0) {
		store__client_close(w->sc);
		w->sc = NULL;
		return PARLEY_E_INTERNAL;
	}
	w->kick_async.data = w;
	pthread_mutex_lock(&w->kick_mu);
	w->running = 1;
	pthread_mutex_unlock(&w->kick_mu);
	return PARLEY_OK;
}

static void on_worker_stop(void *ctx, int worker, uv_loop_t *loop)
{
	dispatch *d = ctx;
	if (worker < 0 || (unsigned)worker >= d->cfg.max_workers)
		return;
	struct worker *w = &d->workers[worker];
	pthread_mutex_lock(&w->kick_mu);
	w->running = 0;
	w->n_kicks = 0;
	pthread_mutex_unlock(&w->kick_mu);
	if (w->sc != NULL) {
		/* runs the callbacks of jobs still in flight; their connections are closed, answers dropped */
		store__client_close(w->sc);
		w->sc = NULL;
		uv_close((uv_handle_t *)&w->kick_async, NULL);
	}
	dynbuf__free(&w->out);
}

static void on_open(void *ctx, net_conn *c)
{
	dispatch *d = ctx;
	struct worker *w = &d->workers[net__conn_worker(c)];
	struct session *s = parley__calloc(1, sizeof(*s));
	if (s == NULL) {
		net__conn_close(c, 1011, "out of memory");
		return;
	}
	accounts__session_init(&s->acct);
	s->conn = c;
	s->w = w;
	s->next = w->sessions;
	if (w->sessions != NULL)
		w->sessions->prev = s;
	w->sessions = s;
	net__conn_set_data(c, s);
	metrics__inc(METRIC_WS_SESSIONS_OPEN);
	send_challenge(s);
}

static void on_close(void *ctx, net_conn *c)
{
	struct session *s = net__conn_data(c);
	if (s == NULL)
		return;
	net__conn_set_data(c, NULL);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->w->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->closed = 1;
	metrics__add(METRIC_WS_SESSIONS_OPEN, -1);
	if (s->acct.authenticated)
		metrics__add(METRIC_WS_SESSIONS_AUTHENTICATED, -1);
	session_free_if_done(s);
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

static void on_message(void *ctx, net_conn *c, const uint8_t *buf, size_t len)
{
	dispatch *d = ctx;
	struct session *s = net__conn_data(c);
	uint64_t t0 = uv_hrtime();
	wire_frame f;

	if (s == NULL)
		return;
	int rc = wire__decode_frame(buf, len, &d->limits, &f);
	if (rc == PARLEY_OK && f.frame->kind_case != PARLEY__WIRE__FRAME__KIND_REQUEST)
		rc = PARLEY_E_PROTO_UNKNOWN; /* devices send requests only */
	if (rc != PARLEY_OK) {
		if (f.has_id && f.kind == PARLEY__WIRE__FRAME__KIND_REQUEST && rc != PARLEY_E_NOMEM) {
			struct worker *w = s->w;
			metrics__inc(METRIC_PROTOCOL_ERRORS);
			metrics__inc(METRIC_REQUEST_ERRORS);
			dynbuf__reset(&w->out);
			if (wire__encode_error(f.id, rc, &w->out) == PARLEY_OK)
				(void)net__conn_send(c, w->out.data, w->out.len);
		} else if (rc == PARLEY_E_NOMEM) {
			net__conn_close(c, 1011, "out of memory");
		} else {
			protocol_violation(c, rc);
		}
		wire__frame_free(&f);
		return;
	}

	const Parley__Wire__Request *req = f.frame->request;
	const struct route *rt = find_route(req->body_case);
	struct pending *p = parley__calloc(1, sizeof(*p));
	if (p == NULL) {
		net__conn_close(c, 1011, "out of memory");
		wire__frame_free(&f);
		return;
	}
	p->d = d;
	p->s = s;
	p->id = req->id;
	p->body_case = req->body_case;
	p->kind = rt != NULL ? rt->kind : d->kind_unknown;
	p->t0 = t0;
	s->pending++;
	net__conn_ref(c);
	if (rt == NULL)
		finish_error(p, PARLEY_E_PROTO_UNKNOWN); /* wire knows a kind this table lacks: a bug */
	else if (rt->needs_auth && !s->acct.authenticated)
		finish_error(p, PARLEY_E_UNAUTHENTICATED);
	else
		rt->fn(p, req);
	wire__frame_free(&f);
}

/* --- set-up --- */

void dispatch__config_defaults(dispatch_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_frame_bytes = WIRE_DEFAULT_MAX_FRAME;
	c->max_ping_payload = WIRE_MAX_PING_PAYLOAD;
	c->max_auth_failures = ACCOUNTS_DEFAULT_MAX_AUTH_FAILURES;
	c->max_workers = 64;
}

int dispatch__new(store *s, const dispatch_config *cfg, dispatch **out)
{
	if (s == NULL || cfg == NULL || out == NULL || cfg->max_workers == 0 || cfg->max_frame_bytes == 0)
		return PARLEY_E_INVAL;
	if (sodium_init() < 0)
		return PARLEY_E_CRYPTO;
	dispatch *d = parley__calloc(1, sizeof(*d));
	if (d == NULL)
		return PARLEY_E_NOMEM;
	d->workers = parley__calloc(cfg->max_workers, sizeof(*d->workers));
	if (d->workers == NULL) {
		parley__free(d);
		return PARLEY_E_NOMEM;
	}
	for (unsigned i = 0; i < cfg->max_workers; i++)
		pthread_mutex_init(&d->workers[i].kick_mu, NULL);
	d->store = s;
	d->cfg = *cfg;
	wire__limits_default(&d->limits);
	d->limits.max_frame = cfg->max_frame_bytes;
	if (cfg->max_ping_payload)
		d->limits.max_ping_payload = cfg->max_ping_payload;
	accounts__init(&d->acc, cfg->max_auth_failures);
	for (size_t i = 0; i < N_ROUTES; i++)
		routes[i].kind = metrics__register_kind(routes[i].name);
	d->kind_unknown = metrics__register_kind("unknown");
	*out = d;
	return PARLEY_OK;
}

void dispatch__free(dispatch *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->cfg.max_workers; i++)
		pthread_mutex_destroy(&d->workers[i].kick_mu);
	parley__free(d->workers);
	parley__free(d);
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
	};
	return h;
}
