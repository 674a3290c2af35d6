/* parleyd's TLS contexts: loading a certificate/key pair and swapping it on reload (SIGHUP). */
#include <openssl/err.h>
#include <parley/error.h>

#include "base/log.h"
#include "base/metrics.h"
#include "net/net_internal.h"

int net__tls_ctx_load(const char *cert, const char *key, SSL_CTX **out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char buf[160];
	if (ctx == NULL)
		goto fail;
	/* TLS 1.2 is the oldest version still considered safe (RFC 8996 retired 1.0/1.1) */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		goto fail;
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* we write into memory BIOs, so OpenSSL's own buffers can be released between records */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	*out = ctx;
	return PARLEY_OK;
fail:
	ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
	log_warn("net", "TLS: cannot load certificate %s / key %s: %s", cert, key, buf);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return PARLEY_E_TLS;
}

SSL_CTX *net__tls_ctx_get(net_server *s)
{
	SSL_CTX *ctx;
	uv_mutex_lock(&s->tls_mu);
	ctx = s->tls_ctx;
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	uv_mutex_unlock(&s->tls_mu);
	return ctx;
}

int net__server_reload_tls(net_server *s, const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx = NULL, *old;
	int rc;
	if (s->tls_ctx == NULL)
		return PARLEY_E_STATE;
	const char *cert = cert_file != NULL ? cert_file : s->tls_cert;
	const char *key = key_file != NULL ? key_file : s->tls_key;
	rc = net__tls_ctx_load(cert, key, &ctx);
	if (rc != PARLEY_OK) {
		metrics__inc(METRIC_TLS_ERRORS);
		return rc; /* the old context stays in use */
	}
	uv_mutex_lock(&s->tls_mu);
	old = s->tls_ctx;
	s->tls_ctx = ctx;
	uv_mutex_unlock(&s->tls_mu);
	/* connections made with the old context hold their own reference through their SSL */
	SSL_CTX_free(old);
	log_info("net", "TLS certificate reloaded from %s", cert);
	return PARLEY_OK;
}
