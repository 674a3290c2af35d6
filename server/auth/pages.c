/* The customer's pages (docs/protocol.md §14.3): GET /v1/auth/start/<token> redirects to the
 * provider; GET /v1/auth/callback?code=..&state=.. answers the request. Each step is a store job or a
 * thread-pool job (discovery, the code exchange: exchange.c), so no loop thread ever waits on a
 * provider. The answer ends as an AUTH_ANSWER store op made by the server itself (caller 0), then the
 * AuthResult push to the members and a small HTML page. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/exchange.h"
#include "auth/jose.h"
#include "base/log.h"
#include "common/alloc.h"
#include "common/clock.h"

#define MODULE "auth"
#define START_PATH "/v1/auth/start/"
#define CALLBACK_PATH "/v1/auth/callback"

typedef struct page {
	uv_work_t wk;
	worker *w;
	const auth_config *cfg;
	http_reply *reply;
	int callback;                       /* 0: the start link */
	int rc;                             /* the thread pool's result */
	char token[STORE_AUTH_TOKEN + 1];   /* the link's token or the callback's state */
	store_auth_request req;
	uint64_t now_ms;
	auth_exchange x;
} page;

static void page_free(page *p)
{
	sodium_memzero(p, sizeof(*p)); /* the code, the verifier */
	parley__free(p);
}

static int http_status_of(int rc)
{
	switch (rc) {
	case PARLEY_OK: return 200;
	case PARLEY_E_NO_SUCH_AUTH_REQUEST: return 404;
	case PARLEY_E_AUTH_EXPIRED: return 410;
	case PARLEY_E_AUTH_ALREADY_ANSWERED: return 409;
	case PARLEY_E_AUTH_STATE_MISMATCH: return 400;
	case PARLEY_E_SHUTTING_DOWN: return 503;
	default: return 403;
	}
}

/* The page ends the call: "signed in" or the refusal's name (what support asks for). */
static void finish(page *p, int rc)
{
	char html[512];
	if (rc == PARLEY_OK)
		snprintf(html, sizeof(html), "<!doctype html><meta charset=utf-8><title>Signed in</title>"
					     "<p>Signed in: you can go back to the chat.</p>\n");
	else if (rc == PARLEY_E_SHUTTING_DOWN)
		snprintf(html, sizeof(html),
			 "<!doctype html><meta charset=utf-8><title>Try again in a minute</title>"
			 "<p>The server is restarting (<code>%s</code>). Your sign-in request is still open: "
			 "open the link from the chat again in a minute.</p>\n",
			 parley_errname(rc));
	else
		snprintf(html, sizeof(html),
			 "<!doctype html><meta charset=utf-8><title>Not signed in</title>"
			 "<p>The sign-in was not accepted (<code>%s</code>). Go back to the chat and ask for a new "
			 "link.</p>\n",
			 parley_errname(rc));
	http_reply__send(p->reply, http_status_of(rc), NULL, html);
	page_free(p);
}

/* One query parameter, %XX and '+' decoded; 0 if absent, malformed or too long. */
static int query_param(const char *q, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	while (q != NULL && *q != '\0') {
		const char *amp = strchr(q, '&'), *end = amp != NULL ? amp : q + strlen(q);
		if ((size_t)(end - q) > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
			size_t o = 0;
			for (const char *s = q + nl + 1; s < end; s++) {
				unsigned v;
				char hex[3] = {0};
				if (o + 1 >= cap)
					return 0;
				if (*s == '%') {
					if (end - s < 3)
						return 0;
					hex[0] = s[1];
					hex[1] = s[2];
					if (sscanf(hex, "%2x", &v) != 1 || v == 0)
						return 0;
					out[o++] = (char)v;
					s += 2;
				} else {
					out[o++] = *s == '+' ? ' ' : *s;
				}
			}
			out[o] = '\0';
			return 1;
		}
		q = amp != NULL ? amp + 1 : NULL;
	}
	return 0;
}

static int token_ok(const char *t)
{
	if (strlen(t) != STORE_AUTH_TOKEN)
		return 0;
	for (; *t != '\0'; t++)
		if (!((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '-' ||
		      *t == '_'))
			return 0;
	return 1;
}

/* --- the answer to the request (the callback's last step) --- */

static void answered(void *arg, int status, const void *result)
{
	page *p = arg;
	const store_job *j = result;
	int rc = status == PARLEY_OK && j != NULL ? j->auth.outcome : status;
	if (status == PARLEY_OK && j != NULL && j->auth.thread != NULL)
		auth__push_result(p->w, p->cfg, j->auth.thread, &j->auth.x->req);
	if (rc != PARLEY_OK)
		log_info(MODULE, "sign-in for request %llu refused: %s", (unsigned long long)p->req.id, parley_errname(rc));
	finish(p, rc);
}

/* AUTH_ANSWER by the server: outcome (an earlier refusal) or the identity the exchange verified. */
static void submit_answer(page *p, int outcome)
{
	store_job *j = store__job_new(STORE_OP_AUTH_ANSWER);
	int rc;
	if (j == NULL) {
		finish(p, PARLEY_E_NOMEM);
		return;
	}
	j->now_ms = parley__wall_ms();
	j->auth.request_id = p->req.id;
	j->auth.external = 1;
	j->auth.outcome_in = outcome;
	j->auth.x->ident = p->x.ident;
	if ((rc = store__submit(worker__store(p->w), j, answered, p)) != PARLEY_OK) {
		store__job_free(j);
		finish(p, rc);
	}
}

/* --- the thread pool's steps --- */

static void work_start(uv_work_t *wk)
{
	page *p = wk->data;
	p->rc = auth__endpoints(p->cfg, &p->x.comp, p->now_ms);
}

static void work_exchange(uv_work_t *wk)
{
	page *p = wk->data;
	p->rc = auth__exchange(p->cfg, &p->x, p->now_ms);
}

/* The provider's authorization URL for the request (response_type code, PKCE S256, state, nonce). */
static void redirect(page *p)
{
	char challenge[JOSE_PKCE_CHALLENGE_LEN + 1], client[STORE_AUTH_STR * 3 + 1], redir[AUTH_URL_MAX * 3 + 1],
		scope[STORE_AUTH_STR * 3 + 1];
	const store_auth_component *c = &p->x.comp;
	size_t cap = sizeof(client) + sizeof(redir) + sizeof(scope) + STORE_AUTH_STR + 512;
	char *url = parley__malloc(cap);
	int n;

	if (url == NULL || jose__pkce_challenge(p->x.verifier, strlen(p->x.verifier), challenge) != PARLEY_OK) {
		parley__free(url);
		finish(p, PARLEY_E_INTERNAL);
		return;
	}
	auth__url_encode(client, sizeof(client), c->client_id);
	auth__url_encode(redir, sizeof(redir), p->x.redirect_uri);
	auth__url_encode(scope, sizeof(scope), c->scopes);
	n = snprintf(url, cap,
		     "%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s&nonce=%s"
		     "&code_challenge=%s&code_challenge_method=S256",
		     c->authorization_endpoint, strchr(c->authorization_endpoint, '?') != NULL ? '&' : '?', client, redir,
		     scope, p->token, p->x.nonce, challenge);
	if (n < 0 || (size_t)n >= cap)
		finish(p, PARLEY_E_TOO_LARGE);
	else {
		http_reply__send(p->reply, 302, url, "<!doctype html><p>Redirecting to the sign-in page.</p>\n");
		page_free(p);
	}
	parley__free(url);
}

static void work_done(uv_work_t *wk, int status)
{
	page *p = wk->data;
	int rc = status != 0 ? PARLEY_E_INTERNAL : p->rc;
	if (rc == PARLEY_E_SHUTTING_DOWN) {
		/* the call was cut, not refused: nothing is recorded, so the request stays open and its start
		 * link works again once the server is back (a new code; the old one may be spent) */
		finish(p, rc);
		return;
	}
	if (!p->callback) {
		if (rc != PARLEY_OK)
			finish(p, rc);
		else
			redirect(p);
		return;
	}
	submit_answer(p, rc);
}

static void queue(page *p, uv_work_cb fn)
{
	p->wk.data = p;
	p->now_ms = parley__wall_ms();
	if (uv_queue_work(worker__loop(p->w), &p->wk, fn, work_done) != 0)
		finish(p, PARLEY_E_SERVER_BUSY);
}

/* --- the request found by its token / state --- */

static void found(void *arg, int status, const void *result)
{
	page *p = arg;
	const store_job *j = result;
	const store_auth_args *a = j != NULL ? &j->auth : NULL;

	if (status != PARLEY_OK || a == NULL || a->n_comps != 1) {
		finish(p, status != PARLEY_OK ? status : PARLEY_E_STORE);
		return;
	}
	p->req = a->x->req;
	p->x.comp = a->comps[0];
	memcpy(p->x.nonce, a->x->nonce_out, sizeof(p->x.nonce));
	memcpy(p->x.verifier, a->x->verifier_out, sizeof(p->x.verifier));
	if (!p->callback)
		memcpy(p->token, a->x->state_out, sizeof(p->token)); /* the link's token is not the state */
	snprintf(p->x.redirect_uri, sizeof(p->x.redirect_uri), "%s" CALLBACK_PATH, p->cfg->public_url);
	if (p->req.type != STORE_AUTH_OIDC && p->req.type != STORE_AUTH_OAUTH2) {
		finish(p, PARLEY_E_NO_SUCH_AUTH_REQUEST);
		return;
	}
	/* a replayed code never reaches the provider: the request already has its answer */
	if (p->req.status == STORE_AREQ_EXPIRED) {
		finish(p, PARLEY_E_AUTH_EXPIRED);
		return;
	}
	if (p->req.status != STORE_AREQ_OPEN) {
		finish(p, PARLEY_E_AUTH_ALREADY_ANSWERED);
		return;
	}
	if (p->req.expires_ms <= j->now_ms || (a->thread != NULL && a->thread->status == 3)) {
		/* the store op records it (EXPIRED or FAILED) and the members are told */
		if (p->callback)
			submit_answer(p, p->req.expires_ms <= j->now_ms ? PARLEY_E_AUTH_EXPIRED : PARLEY_E_THREAD_CLOSED);
		else
			finish(p, p->req.expires_ms <= j->now_ms ? PARLEY_E_AUTH_EXPIRED : PARLEY_E_THREAD_CLOSED);
		return;
	}
	if (p->callback && p->x.code[0] == '\0') {
		submit_answer(p, PARLEY_E_AUTH_TOKEN_EXCHANGE); /* the provider's error= answer */
		return;
	}
	queue(p, p->callback ? work_exchange : work_start);
}

int auth__http_get(worker *w, void *state, const char *url, http_reply *reply)
{
	const auth_config *cfg = state;
	const char *q = strchr(url, '?');
	page *p;
	store_job *j;
	int rc = PARLEY_OK;

	int callback = strncmp(url, CALLBACK_PATH, sizeof(CALLBACK_PATH) - 1) == 0 &&
		       (url[sizeof(CALLBACK_PATH) - 1] == '?' || url[sizeof(CALLBACK_PATH) - 1] == '\0');

	if (!callback && strncmp(url, START_PATH, sizeof(START_PATH) - 1) != 0)
		return 0;
	if ((p = parley__calloc(1, sizeof(*p))) == NULL)
		return 0;
	p->w = w;
	p->cfg = cfg;
	p->reply = reply;
	p->callback = callback;
	if (!callback) {
		if (q != NULL || !token_ok(url + sizeof(START_PATH) - 1))
			rc = PARLEY_E_NO_SUCH_AUTH_REQUEST;
		else
			snprintf(p->token, sizeof(p->token), "%s", url + sizeof(START_PATH) - 1);
	} else {
		char err[64];
		if (q == NULL || !query_param(q + 1, "state", p->token, sizeof(p->token)) || !token_ok(p->token))
			rc = PARLEY_E_AUTH_STATE_MISMATCH;
		else if (query_param(q + 1, "error", err, sizeof(err)) ||
			 !query_param(q + 1, "code", p->x.code, sizeof(p->x.code)))
			p->x.code[0] = '\0'; /* the provider refused (or the customer cancelled): recorded */
	}
	j = rc == PARLEY_OK ? store__job_new(STORE_OP_AUTH_BY_TOKEN) : NULL;
	if (rc == PARLEY_OK && j == NULL)
		rc = PARLEY_E_NOMEM;
	if (rc != PARLEY_OK) {
		finish(p, rc);
		return 1;
	}
	j->now_ms = parley__wall_ms();
	j->auth.by_state = p->callback;
	memcpy(j->auth.x->token, p->token, sizeof(j->auth.x->token));
	if ((rc = store__submit(worker__store(w), j, found, p)) != PARLEY_OK) {
		store__job_free(j);
		finish(p, rc);
	}
	return 1;
}
