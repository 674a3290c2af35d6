/* parley-gateway's process: what the HTTP loop thread (main.c, routes.c, webchat/) shares. Threads:
 *   - the HTTP loop (libuv, main thread): webhooks, the web chat page and its WebSockets, web chat
 *     delivery; its own SQLite connection;
 *   - the parley thread (bridge.c): the one parley_client, run in slices (parley_client_run), which
 *     takes pending inbound messages from SQLite and turns staff messages and auth prompts into outbox
 *     entries; its own SQLite connection;
 *   - the sender (sender.c): outbound HTTP to the providers; its own SQLite connection.
 * They hand work over through SQLite (durable: a webhook is answered 200 only once its message is
 * committed) plus wake-ups: uv_async_send into the HTTP loop, a condition variable into the sender, and
 * the bridge's short slices (it polls its queue every slice: libparley's loop has no thread-safe wake-up
 * in its public API). */
#ifndef PARLEY_GATEWAY_APP_H
#define PARLEY_GATEWAY_APP_H
#include <uv.h>

#include "gw.h"
#include "http.h"
#include "sender.h"
#include "store.h"

typedef struct gw_bridge gw_bridge;
typedef struct gw_webchat gw_webchat;

typedef struct gw_app {
	gw_config *cfg;
	uv_loop_t *loop;
	gw_store *store;
	gw_http *http;
	gw_sender *sender;
	gw_bridge *bridge;
	gw_webchat *webchat;
	uv_async_t wake; /* the bridge queued web chat output */
} gw_app;

/* routes.c: the request handler of http.c */
void routes__handle(void *ctx, gw_conn *c, const gw_http_req *r);

/* webchat/webchat.c */
int webchat__start(gw_app *app, gw_webchat **out);
void webchat__stop(gw_webchat *w);
/* GET /webchat/ (the page) and GET /webchat/ws (the WebSocket). */
void webchat__handle(gw_webchat *w, gw_conn *c, const gw_http_req *r);
/* Delivers due outbox entries to the connected sessions. */
void webchat__flush(gw_webchat *w);

/* bridge.c: the parley thread */
int bridge__start(gw_app *app, gw_bridge **out);
void bridge__stop(gw_bridge *b);

#endif
