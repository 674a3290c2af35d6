/* Authorization request components: the checks of what an admin sends, and the conversions between
 * the wire and the store. Pure: no I/O, so every refusal is unit-testable. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <parley/error.h>

#include "auth/auth.h"
#include "auth/exchange.h"

#define TTL_MAX_S 31536000u /* a year */

static int printable(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* The host of an http(s) URL: from after "//" to the first '/', '?', '#' or the port's ':' (an IPv6
 * literal keeps its brackets). */
static size_t host_of(const char *rest, const char **host)
{
	size_t n = 0;
	*host = rest;
	if (rest[0] == '[') {
		const char *end = strchr(rest, ']');
		return end != NULL ? (size_t)(end - rest) + 1 : 0;
	}
	while (rest[n] != '\0' && rest[n] != '/' && rest[n] != '?' && rest[n] != '#' && rest[n] != ':')
		n++;
	return n;
}

size_t auth__url_host(const char *url, const char **host)
{
	*host = url;
	if (strncasecmp(url, "https://", 8) == 0)
		return host_of(url + 8, host);
	if (strncasecmp(url, "http://", 7) == 0)
		return host_of(url + 7, host);
	return 0;
}

int auth__url_ok(const char *url)
{
	static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]"};
	const char *host;
	size_t n;

	if (!printable(url, 1, STORE_AUTH_STR) || strchr(url, ' ') != NULL || strchr(url, '@') != NULL)
		return 0; /* userinfo in a URL is a classic way to make it read as another host */
	if ((n = auth__url_host(url, &host)) == 0)
		return 0;
	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	/* plain http only where nobody else can listen in: the same machine */
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (strlen(loopback[i]) == n && strncasecmp(host, loopback[i], n) == 0)
			return 1;
	return 0;
}

int auth__private_ok(const auth_config *cfg, const char *url)
{
	const char *host;
	size_t n = auth__url_host(url, &host);
	return cfg->allow_private || auth__host_listed(cfg->allowed_hosts, host, n);
}

int auth__component_hosts_check(const auth_config *cfg, const Parley__Wire__AuthComponent *w)
{
	const char *const urls[] = {w->discovery_url, w->authorization_endpoint, w->token_endpoint, w->jwks_uri,
				    w->userinfo_endpoint};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		const char *host;
		size_t n = auth__url_host(urls[i], &host);
		/* authorization_endpoint is the customer's browser's to open, but a private one is a
		 * misconfiguration all the same */
		if (n > 0 && !auth__private_ok(cfg, urls[i]) && !auth__host_literal_public(host, n))
			return PARLEY_E_AUTH_HOST_FORBIDDEN;
	}
	return PARLEY_OK;
}

static int opt_url(const char *u)
{
	return u[0] == '\0' || auth__url_ok(u);
}

static int secret_ref_ok(const char *r)
{
	if (r[0] == '\0')
		return 1;
	/* Entity admins are customers of the platform, not its operator: a reference must never name
	 * an arbitrary file or environment variable of parleyd (the secret is sent to the token endpoint
	 * the admin chose, so that would read any of parleyd's files or another entity's secret out). A
	 * reference is a plain name resolved inside the operator's auth_secrets_dir, in the entity's own
	 * folder (exchange.c). */
	return strncmp(r, "file:", 5) == 0 && auth__secret_name_ok(r + 5);
}

/* What a type needs to be usable: its endpoints (or discovery), client and issuer. */
static int type_complete(const Parley__Wire__AuthComponent *w)
{
	int disco = w->discovery_url[0] != '\0';
	switch (w->type) {
	case PARLEY__WIRE__AUTH_TYPE__AUTH_OIDC:
		return w->client_id[0] != '\0' && w->issuer[0] != '\0' &&
		       (disco || (w->authorization_endpoint[0] != '\0' && w->token_endpoint[0] != '\0' &&
				  w->jwks_uri[0] != '\0'));
	case PARLEY__WIRE__AUTH_TYPE__AUTH_OAUTH2:
		return w->client_id[0] != '\0' &&
		       (disco || (w->authorization_endpoint[0] != '\0' && w->token_endpoint[0] != '\0' &&
				  w->userinfo_endpoint[0] != '\0'));
	case PARLEY__WIRE__AUTH_TYPE__AUTH_JWT:
		return w->issuer[0] != '\0' && w->jwks_uri[0] != '\0' && w->client_id[0] != '\0'; /* aud */
	case PARLEY__WIRE__AUTH_TYPE__AUTH_OTP:
		/* a code proves the channel, not a provider's identity: nothing to bind */
		return w->binding == PARLEY__WIRE__AUTH_BINDING__BINDING_NONE;
	default:
		return 0;
	}
}

int auth__component_check(const Parley__Wire__AuthComponent *w)
{
	const char *const urls[] = {w->discovery_url, w->authorization_endpoint, w->token_endpoint, w->jwks_uri,
				    w->userinfo_endpoint};

	if (!printable(w->name, 1, STORE_AUTH_NAME) || !type_complete(w))
		return PARLEY_E_COMPONENT_INVALID;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		if (!opt_url(urls[i]))
			return PARLEY_E_COMPONENT_INVALID;
	if (!printable(w->issuer, 0, STORE_AUTH_STR) || !printable(w->client_id, 0, STORE_AUTH_STR) ||
	    !printable(w->scopes, 0, STORE_AUTH_STR) || !secret_ref_ok(w->secret_ref))
		return PARLEY_E_COMPONENT_INVALID;
	if ((unsigned)w->binding > PARLEY__WIRE__AUTH_BINDING__BINDING_EMAIL)
		return PARLEY_E_COMPONENT_INVALID;
	if (w->credential_ttl_s == 0 || w->credential_ttl_s > TTL_MAX_S)
		return PARLEY_E_COMPONENT_INVALID;
	return PARLEY_OK;
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

void auth__component_from_wire(store_auth_component *c, const Parley__Wire__AuthComponent *w)
{
	memset(c, 0, sizeof(*c));
	c->id = w->component_id;
	COPY(c->entity, w->entity);
	COPY(c->name, w->name);
	c->type = (int)w->type;
	c->binding = (int)w->binding;
	c->credential_ttl_s = w->credential_ttl_s;
	COPY(c->issuer, w->issuer);
	COPY(c->discovery_url, w->discovery_url);
	COPY(c->authorization_endpoint, w->authorization_endpoint);
	COPY(c->token_endpoint, w->token_endpoint);
	COPY(c->jwks_uri, w->jwks_uri);
	COPY(c->userinfo_endpoint, w->userinfo_endpoint);
	COPY(c->client_id, w->client_id);
	COPY(c->secret_ref, w->secret_ref);
	COPY(c->scopes, w->scopes[0] != '\0' ? w->scopes : "openid");
}

void auth__component_to_wire(Parley__Wire__AuthComponent *w, const store_auth_component *c, const char *entity)
{
	parley__wire__auth_component__init(w);
	w->component_id = c->id;
	w->entity = (char *)entity;
	w->name = (char *)c->name;
	w->type = (Parley__Wire__AuthType)c->type;
	w->state = (Parley__Wire__AuthComponentState)c->state;
	w->issuer = (char *)c->issuer;
	w->discovery_url = (char *)c->discovery_url;
	w->authorization_endpoint = (char *)c->authorization_endpoint;
	w->token_endpoint = (char *)c->token_endpoint;
	w->jwks_uri = (char *)c->jwks_uri;
	w->userinfo_endpoint = (char *)c->userinfo_endpoint;
	w->client_id = (char *)c->client_id;
	w->secret_ref = (char *)c->secret_ref;
	w->scopes = (char *)c->scopes;
	w->binding = (Parley__Wire__AuthBinding)c->binding;
	w->credential_ttl_s = c->credential_ttl_s;
	w->created_ms = c->created_ms;
	w->updated_ms = c->updated_ms;
}
