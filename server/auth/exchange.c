/* Calls to identity providers with libcurl: discovery, the code exchange, the JWKS, userinfo; and the
 * verification of what comes back into a store_auth_identity (jose.h does the checking).
 *
 * Everything here blocks, so it runs only on libuv's thread pool (uv_queue_work from pages.c), never
 * on a loop thread. TLS verification is never turned off; auth_ca_file adds a CA (tests: the test CA)
 * to the system's. No redirect is followed, only http(s) is spoken, and every body is bounded; every
 * connection goes only to a public address unless the operator allows more (netguard.c). */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <parley/error.h>
#include <sodium.h>

#include "auth/exchange.h"
#include "auth/jose.h"
#include "common/alloc.h"
#include "wire/wire.h"

#define BODY_MAX (64u * 1024u) /* any provider document: JWKS, discovery, token answer, userinfo */
#define CACHE_SLOTS 16
#define SECRET_MAX 1024

/* --- the HTTP client --- */

typedef struct body {
	char *data;
	size_t len;
	int too_large;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	body *b = arg;
	size_t add = size * n;
	char *grown;
	if (b->len + add > BODY_MAX) {
		b->too_large = 1;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if ((grown = parley__realloc(b->data, b->len + add + 1)) == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

/* Set at SIGTERM/SIGINT (routes.c): every call in flight ends at curl's next progress callback (at most
 * about a second, however long auth_http_timeout_ms), and no new one starts. */
static atomic_int stopping;

void auth__http_stop(void)
{
	atomic_store(&stopping, 1);
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&stopping) != 0; /* non-zero: CURLE_ABORTED_BY_CALLBACK */
}

/* The address check of every connection curl opens (netguard.c): done on the address it is about to
 * connect to, after its own resolution, so a name that resolves to a public address when a component
 * is saved and to 169.254.169.254 at the call (DNS rebinding) is refused all the same. */
typedef struct guard {
	int check;     /* 0: the operator allows non-public addresses for this URL, or a proxy is used */
	int forbidden; /* set when a connection was refused */
} guard;

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	guard *g = arg;
	(void)purpose;
	if (g->check && !auth__sockaddr_public(&a->addr, a->addrlen)) {
		g->forbidden = 1;
		return CURL_SOCKET_BAD; /* curl: CURLE_COULDNT_CONNECT, or tries the name's next address */
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* GET (form NULL) or POST form; user/pass: HTTP Basic (client_secret_basic); bearer: Authorization.
 * PARLEY_OK with a 2xx and the body in *out (free it), AUTH_HOST_FORBIDDEN when the provider's address
 * is not public (and not allowed), else code. */
static int http_call(const auth_config *cfg, const char *url, const char *form, const char *user, const char *pass,
		     const char *bearer, body *out, int code)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char auth[4096];
	long status = 0;
	CURLcode cc;
	/* through a proxy curl connects to the proxy, the operator's: the proxy polices where it goes */
	guard g = {.check = cfg->http_proxy[0] == '\0' && !auth__private_ok(cfg, url), .forbidden = 0};

	memset(out, 0, sizeof(*out));
	if (h == NULL || atomic_load(&stopping)) {
		curl_easy_cleanup(h);
		return h == NULL ? PARLEY_E_NOMEM : PARLEY_E_SHUTTING_DOWN;
	}
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &g);
	/* "" = no proxy at all: curl would otherwise take http(s)_proxy from parleyd's environment */
	curl_easy_setopt(h, CURLOPT_PROXY, cfg->http_proxy);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->http_timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->http_timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca_file[0] != '\0') {
		/* the extra CA beside the system's directory (OpenSSL loads both) */
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)BODY_MAX);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (bearer != NULL && snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer) < (int)sizeof(auth))
		hdr = curl_slist_append(hdr, auth);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (form != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	if (user != NULL && pass != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	sodium_memzero(auth, sizeof(auth));
	if (cc != CURLE_OK || status < 200 || status > 299 || out->data == NULL) {
		parley__free(out->data);
		memset(out, 0, sizeof(*out));
		if (cc == CURLE_ABORTED_BY_CALLBACK)
			return PARLEY_E_SHUTTING_DOWN;
		return g.forbidden && cc != CURLE_OK ? PARLEY_E_AUTH_HOST_FORBIDDEN : code;
	}
	return PARLEY_OK;
}

int auth__http_init(void)
{
	atomic_store(&stopping, 0);
	/* once, before any loop or pool thread: curl's global init is not thread-safe */
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PARLEY_OK : PARLEY_E_INTERNAL;
}

/* --- the document cache (discovery and JWKS), shared by the pool's threads --- */

/* A JWKS parsed and checked once per fetch, shared by the verifications that run at the same time on
 * the pool's threads: importing a key and its EVP_PKEY_public_check cost milliseconds (an RSA modulus
 * is tested for primality), a signature check some microseconds. The set is never written after
 * jose__jwks_parse, and in OpenSSL 3 one EVP_PKEY may verify in several threads at once, each with its
 * own EVP_MD_CTX (jwt.c makes one per call): openssl-threads(7), objects are thread-safe while nobody
 * modifies them, and what EVP_DigestVerifyInit changes on the key (its reference count, the provider's
 * cached export) is done under the key's own lock. So a reference is all a verification needs. refs is
 * counted under cache_mu: the slot holds one while the set is its current one, each verification in
 * flight one more; the last one to let go frees it, so a refetch can replace the set under a
 * verification that still uses the old one. */
typedef struct shared_keys {
	jose_jwks *set;
	unsigned refs;
} shared_keys;

typedef struct cache_slot {
	char url[STORE_AUTH_STR + 1];
	char *doc;
	uint64_t fetched_ms;
	uint64_t forced_ms; /* the last refetch for an unknown kid (0: none), see refetch_reserve */
	uint64_t gen;       /* changes with every document stored: a parse of an older one is not kept */
	int parsed;         /* doc was parsed as a JWKS: keys, or keys_rc why not (the same every time) */
	int keys_rc;
	shared_keys *keys;
} cache_slot;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cache_slot cache[CACHE_SLOTS];
static uint64_t cache_gen;

/* Drops one reference (cache_mu held); the set to free after unlocking when it was the last, else NULL:
 * EVP_PKEY_free need not run under the lock every pool thread waits on. */
static shared_keys *keys_unref_locked(shared_keys *k)
{
	return k != NULL && --k->refs == 0 ? k : NULL;
}

static void keys_destroy(shared_keys *k)
{
	if (k != NULL) {
		jose__jwks_free(k->set);
		parley__free(k);
	}
}

/* The caller's reference, from any verification (takes cache_mu). */
static void keys_release(shared_keys *k)
{
	pthread_mutex_lock(&cache_mu);
	k = keys_unref_locked(k);
	pthread_mutex_unlock(&cache_mu);
	keys_destroy(k);
}

/* Parses doc as a JWKS (no lock held: this is the slow part) into a shared set with one reference, the
 * caller's. PARLEY_OK, or the parse's error. */
static int keys_parse(const char *doc, shared_keys **out)
{
	jose_jwks *set = NULL;
	int rc = jose__jwks_parse(doc, strlen(doc), &set);
	*out = NULL;
	if (rc != PARLEY_OK)
		return rc;
	if ((*out = parley__malloc(sizeof(**out))) == NULL) {
		jose__jwks_free(set);
		return PARLEY_E_NOMEM;
	}
	(*out)->set = set;
	(*out)->refs = 1;
	return PARLEY_OK;
}

/* Makes k (or, when NULL, rc) the slot document's parse (parsed 0: not parsed yet), cache_mu held:
 * the slot takes its own reference and lets go of the old set's, returned to be destroyed after
 * unlocking. */
static shared_keys *slot_set_keys_locked(cache_slot *slot, int parsed, int rc, shared_keys *k)
{
	shared_keys *old = keys_unref_locked(slot->keys);
	slot->keys = k;
	if (k != NULL)
		k->refs++;
	slot->keys_rc = rc;
	slot->parsed = parsed;
	return old;
}

/* The document at url, from the cache unless `fresh` or older than the ttl: as text (doc != NULL: a
 * copy to free) or as a parsed JWKS (keys != NULL: a reference to give back with keys_release; a
 * document that is no JWKS gives its parse error at each use until it is fetched again, as it did when
 * the text was parsed each time). *hit (if not NULL): 1 when it came from the cache, 0 when it was just
 * fetched. */
static int cached_get(const auth_config *cfg, const char *url, int fresh, uint64_t now_ms, char **doc,
		      shared_keys **keys, int *hit, int code)
{
	cache_slot *slot = NULL, *oldest = &cache[0];
	shared_keys *k = NULL, *old = NULL;
	char *text = NULL;
	uint64_t gen = 0;
	body b;
	int rc = PARLEY_OK, found = 0, done = 0;

	if (doc != NULL)
		*doc = NULL;
	if (keys != NULL)
		*keys = NULL;
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		if (strcmp(cache[i].url, url) == 0)
			slot = &cache[i];
		if (cache[i].fetched_ms < oldest->fetched_ms)
			oldest = &cache[i];
	}
	if (!fresh && slot != NULL && slot->doc != NULL && now_ms < slot->fetched_ms + cfg->jwks_cache_ms) {
		found = 1;
		if (keys != NULL && slot->parsed) {
			/* the common case: the set parsed at the fetch */
			if ((*keys = slot->keys) != NULL)
				slot->keys->refs++;
			rc = slot->keys_rc;
			done = 1;
		} else {
			/* text wanted, or a document not parsed yet (fetched as a discovery document, or its
			 * parse ran out of memory): parsed below, outside the lock */
			gen = slot->gen;
			text = parley__strdup(slot->doc);
			done = text == NULL;
			rc = text == NULL ? PARLEY_E_NOMEM : PARLEY_OK;
		}
	}
	pthread_mutex_unlock(&cache_mu);
	if (hit != NULL)
		*hit = found;
	if (done)
		return rc;
	if (!found) {
		if ((rc = http_call(cfg, url, NULL, NULL, NULL, NULL, &b, code)) != PARLEY_OK)
			return rc;
		text = b.data;
	}
	if (keys != NULL)
		rc = keys_parse(text, &k);
	pthread_mutex_lock(&cache_mu);
	if (!found) {
		slot = slot != NULL && strcmp(slot->url, url) == 0 ? slot : oldest;
		if (strcmp(slot->url, url) != 0)
			slot->forced_ms = 0; /* the slot now holds another URL */
		parley__free(slot->doc);
		snprintf(slot->url, sizeof(slot->url), "%s", url);
		slot->doc = parley__strdup(text);
		slot->fetched_ms = now_ms;
		slot->gen = ++cache_gen;
		/* out of memory says nothing about the document: it is parsed again at its next use */
		old = slot_set_keys_locked(slot, keys != NULL && rc != PARLEY_E_NOMEM, rc, k);
	} else if (keys != NULL && rc != PARLEY_E_NOMEM && slot->gen == gen && !slot->parsed) {
		old = slot_set_keys_locked(slot, 1, rc, k); /* unless another fetch or parse came first */
	}
	pthread_mutex_unlock(&cache_mu);
	keys_destroy(old);
	if (keys == NULL) {
		*doc = text;
		return PARLEY_OK;
	}
	parley__free(text);
	*keys = k; /* NULL when rc is an error */
	return rc;
}

/* 1 if the document at url may be fetched again now because a token names a kid it lacks, and then that
 * refetch is taken: at most one per auth_jwks_refetch_s and URL. Without the limit every token with a
 * made-up kid (anyone can send a business-signed JWT, a provider can misbehave) would make one more
 * fetch from the provider; a real rotation still gets its refetch, as the limit counts only these
 * refetches and not the regular ones. A URL no longer in the cache was just fetched: nothing to gain. */
static int refetch_reserve(const auth_config *cfg, const char *url, uint64_t now_ms)
{
	int ok = 0;
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].doc != NULL && strcmp(cache[i].url, url) == 0) {
			ok = cache[i].forced_ms == 0 || now_ms >= cache[i].forced_ms + cfg->jwks_refetch_ms;
			if (ok)
				cache[i].forced_ms = now_ms;
			break;
		}
	pthread_mutex_unlock(&cache_mu);
	return ok;
}

void auth__http_fini(void)
{
	/* no pool job runs any more: the slots hold the only references */
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		parley__free(cache[i].doc);
		keys_destroy(keys_unref_locked(cache[i].keys));
		memset(&cache[i], 0, sizeof(cache[i]));
	}
	curl_global_cleanup();
}

/* --- the component's endpoints --- */

static void fill_from(char *dst, size_t cap, json_t *doc, const char *name)
{
	const char *v = json_string_value(json_object_get(doc, name));
	if (dst[0] == '\0' && v != NULL && auth__url_ok(v))
		snprintf(dst, cap, "%s", v);
}

int auth__endpoints(const auth_config *cfg, store_auth_component *c, uint64_t now_ms)
{
	char *doc;
	json_t *j;
	int rc;

	if (c->discovery_url[0] == '\0' ||
	    (c->authorization_endpoint[0] != '\0' && c->token_endpoint[0] != '\0' &&
	     (c->jwks_uri[0] != '\0' || c->type != STORE_AUTH_OIDC) &&
	     (c->userinfo_endpoint[0] != '\0' || c->type != STORE_AUTH_OAUTH2)))
		return PARLEY_OK;
	if ((rc = cached_get(cfg, c->discovery_url, 0, now_ms, &doc, NULL, NULL, PARLEY_E_JWKS_UNAVAILABLE)) != PARLEY_OK)
		return rc;
	j = json_loads(doc, JSON_REJECT_DUPLICATES, NULL);
	parley__free(doc);
	if (!json_is_object(j)) {
		json_decref(j);
		return PARLEY_E_JWKS_UNAVAILABLE;
	}
	fill_from(c->authorization_endpoint, sizeof(c->authorization_endpoint), j, "authorization_endpoint");
	fill_from(c->token_endpoint, sizeof(c->token_endpoint), j, "token_endpoint");
	fill_from(c->jwks_uri, sizeof(c->jwks_uri), j, "jwks_uri");
	fill_from(c->userinfo_endpoint, sizeof(c->userinfo_endpoint), j, "userinfo_endpoint");
	json_decref(j);
	return c->authorization_endpoint[0] != '\0' && c->token_endpoint[0] != '\0' ? PARLEY_OK
										  : PARLEY_E_JWKS_UNAVAILABLE;
}

/* --- the client secret: resolved when used, never stored or logged --- */

int auth__secret_name_ok(const char *name)
{
	size_t n = 0;
	for (; name[n] != '\0'; n++) {
		char ch = name[n];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      (n > 0 && (ch == '_' || ch == '-'))))
			return 0;
	}
	return n >= 1 && n <= AUTH_SECRET_NAME_MAX;
}

/* file:NAME -> <secrets_dir>/<entity>/NAME, the entity's own folder: one entity's admins cannot name
 * another's secret, nor any other file (NAME and the handle have no '/' and no leading '.', and the
 * file itself may not be a symbolic link). */
static int secret_of(const auth_config *cfg, const store_auth_component *comp, char *out, size_t cap)
{
	const char *ref = comp->secret_ref;
	char path[CONFIG_STR_MAX + STORE_MAX_HANDLE + AUTH_SECRET_NAME_MAX + 8];
	struct stat st;
	ssize_t n;
	int fd;

	out[0] = '\0';
	if (ref[0] == '\0')
		return PARLEY_OK; /* a public client */
	if (strncmp(ref, "file:", 5) != 0 || !auth__secret_name_ok(ref + 5) || !wire__handle_valid(comp->entity) ||
	    cfg->secrets_dir[0] == '\0')
		return PARLEY_E_AUTH_TOKEN_EXCHANGE;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", cfg->secrets_dir, comp->entity, ref + 5) >= sizeof(path))
		return PARLEY_E_AUTH_TOKEN_EXCHANGE;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return PARLEY_E_AUTH_TOKEN_EXCHANGE;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 1 || (size_t)st.st_size >= cap) {
		close(fd);
		return PARLEY_E_AUTH_TOKEN_EXCHANGE;
	}
	n = read(fd, out, cap - 1);
	close(fd);
	if (n <= 0)
		return PARLEY_E_AUTH_TOKEN_EXCHANGE;
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return n > 0 ? PARLEY_OK : PARLEY_E_AUTH_TOKEN_EXCHANGE;
}

/* --- the answer --- */

static void url_encode(char *out, size_t cap, const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *in != '\0' && o + 4 < cap; in++) {
		unsigned char ch = (unsigned char)*in;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '.' || ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

void auth__url_encode(char *out, size_t cap, const char *in)
{
	url_encode(out, cap, in);
}

static void copy_claim(char *dst, size_t cap, const char *v)
{
	snprintf(dst, cap, "%s", v != NULL ? v : "");
}

static int verified_flag(json_t *v)
{
	if (json_is_true(v))
		return 1;
	return json_is_string(v) && strcmp(json_string_value(v), "true") == 0;
}

/* A compact JWS under the JWKS at jwks_uri (its parsed set cached; fetched once more when no key matches
 * its kid, if the cached set was not just fetched and refetch_reserve allows it). */
static int verify_jws(const auth_config *cfg, const char *jwks_uri, const char *tok, uint64_t now_ms, jose_claims *cl)
{
	shared_keys *keys = NULL;
	unsigned flags = 0;
	int rc = PARLEY_OK, hit = 0;

	for (int fresh = 0; fresh < 2; fresh++) {
		if (fresh && (!hit || !refetch_reserve(cfg, jwks_uri, now_ms)))
			break; /* rc: the unknown kid's ID_TOKEN_SIGNATURE */
		if ((rc = cached_get(cfg, jwks_uri, fresh, now_ms, NULL, &keys, &hit, PARLEY_E_JWKS_UNAVAILABLE)) !=
		    PARLEY_OK)
			return rc;
		flags = 0;
		rc = jose__jwt_verify(tok, strlen(tok), keys->set, cl, &flags); /* outside cache_mu: the slow part */
		keys_release(keys);
		if (rc == PARLEY_OK || !(flags & JOSE_VERIFY_KEY_UNKNOWN))
			break;
	}
	return rc;
}

static void identity_of(const jose_claims *cl, const char *tok, store_auth_identity *id)
{
	copy_claim(id->sub, sizeof(id->sub), cl->sub);
	copy_claim(id->email, sizeof(id->email), cl->email);
	copy_claim(id->phone, sizeof(id->phone), cl->phone_number);
	id->email_verified = cl->email_verified == 1;
	id->phone_verified = cl->phone_number_verified == 1;
	id->token_exp_ms = cl->has_exp ? (uint64_t)cl->exp * 1000u : 0;
	SHA256((const unsigned char *)tok, strlen(tok), id->token_hash);
}

/* An ID token: signature, then the claims with the request's nonce. */
static int check_id_token(const auth_config *cfg, const auth_exchange *x, const char *tok, uint64_t now_ms,
			  store_auth_identity *id)
{
	jose_claims cl;
	int rc = verify_jws(cfg, x->comp.jwks_uri, tok, now_ms, &cl);
	if (rc != PARLEY_OK)
		return rc;
	jose_expect e = {.issuer = x->comp.issuer,
			 .client_id = x->comp.client_id,
			 .nonce = x->nonce,
			 .now = (int64_t)(now_ms / 1000u),
			 .skew_s = cfg->skew_s,
			 .max_age_s = 0};
	rc = jose__idtoken_check(&cl, &e);
	if (rc == PARLEY_OK)
		identity_of(&cl, tok, id);
	jose__claims_free(&cl);
	return rc;
}


int auth__assertion(const auth_config *cfg, const store_auth_component *c, const char *tok, uint64_t now_ms,
		    store_auth_identity *id)
{
	jose_claims cl;
	int rc = verify_jws(cfg, c->jwks_uri, tok, now_ms, &cl);
	if (rc != PARLEY_OK)
		return rc;
	jose_expect e = {.issuer = c->issuer,
			 .client_id = c->client_id,
			 .now = (int64_t)(now_ms / 1000u),
			 .skew_s = cfg->skew_s,
			 .max_age_s = 0};
	memset(id, 0, sizeof(*id));
	rc = jose__assertion_check(&cl, &e);
	if (rc == PARLEY_OK) {
		/* the replay check is the store's (its insert of the jti, with the credential): it survives
		 * restarts and sees every answer, where a cache in this process would do neither */
		identity_of(&cl, tok, id);
		SHA256((const unsigned char *)cl.jti, strlen(cl.jti), id->jti_hash);
		/* kept as long as the token passes the checks: its exp plus the skew tolerated on it */
		id->jti_exp_ms = ((uint64_t)cl.exp + (uint64_t)cfg->skew_s) * 1000u;
	}
	jose__claims_free(&cl);
	return rc;
}

/* oauth2: who the access token belongs to, from the userinfo endpoint. */
static int userinfo(const auth_config *cfg, const auth_exchange *x, const char *access, store_auth_identity *id)
{
	body b;
	json_t *j;
	int rc = http_call(cfg, x->comp.userinfo_endpoint, NULL, NULL, NULL, access, &b, PARLEY_E_AUTH_TOKEN_EXCHANGE);
	if (rc != PARLEY_OK)
		return rc;
	j = json_loads(b.data, JSON_REJECT_DUPLICATES, NULL);
	SHA256((const unsigned char *)access, strlen(access), id->token_hash);
	parley__free(b.data);
	if (!json_is_object(j) || !json_is_string(json_object_get(j, "sub"))) {
		json_decref(j);
		return PARLEY_E_ID_TOKEN_CLAIMS;
	}
	copy_claim(id->sub, sizeof(id->sub), json_string_value(json_object_get(j, "sub")));
	copy_claim(id->email, sizeof(id->email), json_string_value(json_object_get(j, "email")));
	copy_claim(id->phone, sizeof(id->phone), json_string_value(json_object_get(j, "phone_number")));
	id->email_verified = verified_flag(json_object_get(j, "email_verified"));
	id->phone_verified = verified_flag(json_object_get(j, "phone_number_verified"));
	json_decref(j);
	return PARLEY_OK;
}

int auth__exchange(const auth_config *cfg, auth_exchange *x, uint64_t now_ms)
{
	char secret[SECRET_MAX], ecode[1536], eredir[AUTH_URL_MAX * 3 + 64], eclient[STORE_AUTH_STR * 3 + 1];
	char *form;
	size_t cap = sizeof(ecode) + sizeof(eredir) + sizeof(eclient) + 256;
	body b;
	json_t *j = NULL;
	const char *tok;
	int rc;

	memset(&x->ident, 0, sizeof(x->ident));
	if ((rc = auth__endpoints(cfg, &x->comp, now_ms)) != PARLEY_OK)
		return rc;
	if ((rc = secret_of(cfg, &x->comp, secret, sizeof(secret))) != PARLEY_OK)
		return rc;
	url_encode(ecode, sizeof(ecode), x->code);
	url_encode(eredir, sizeof(eredir), x->redirect_uri);
	url_encode(eclient, sizeof(eclient), x->comp.client_id);
	if ((form = parley__malloc(cap)) == NULL)
		return PARLEY_E_NOMEM;
	snprintf(form, cap, "grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s&client_id=%s", ecode,
		 eredir, x->verifier, eclient);
	rc = http_call(cfg, x->comp.token_endpoint, form, secret[0] != '\0' ? x->comp.client_id : NULL,
		       secret[0] != '\0' ? secret : NULL, NULL, &b, PARLEY_E_AUTH_TOKEN_EXCHANGE);
	sodium_memzero(secret, sizeof(secret));
	parley__free(form);
	if (rc != PARLEY_OK)
		return rc;
	j = json_loads(b.data, JSON_REJECT_DUPLICATES, NULL);
	parley__free(b.data);
	if (!json_is_object(j)) {
		json_decref(j);
		return PARLEY_E_AUTH_TOKEN_EXCHANGE;
	}
	if (x->comp.type == STORE_AUTH_OIDC) {
		tok = json_string_value(json_object_get(j, "id_token"));
		rc = tok != NULL ? check_id_token(cfg, x, tok, now_ms, &x->ident) : PARLEY_E_ID_TOKEN_INVALID;
	} else {
		tok = json_string_value(json_object_get(j, "access_token"));
		rc = tok != NULL ? userinfo(cfg, x, tok, &x->ident) : PARLEY_E_AUTH_TOKEN_EXCHANGE;
	}
	json_decref(j);
	return rc;
}
