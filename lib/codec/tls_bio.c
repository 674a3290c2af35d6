/* OpenSSL over memory BIOs: the socket code never hands a file descriptor to OpenSSL, so TLS works
 * the same on libuv streams on either side and stays testable without sockets.
 *
 * A memory BIO keeps the capacity of the largest burst it ever held (the handshake flight, a 64 KiB
 * read, a large message), for the life of the connection. So each BIO is replaced by an empty one the
 * first time it is drained after the handshake, and later whenever it is drained holding more than
 * TLS_BIO_KEEP: an idle TLS connection keeps OpenSSL's own state and small BIOs only, at the cost of
 * one small allocation per burst that was large anyway. */
#include "codec/tls_bio.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <parley/error.h>

#include "common/alloc.h"

#define TLS_BIO_KEEP 1024

struct tls_bio {
	SSL *ssl;
	BIO *rbio; /* ciphertext from the peer, read by OpenSSL */
	BIO *wbio; /* ciphertext OpenSSL produced, taken by the socket layer */
	int done;
	uint8_t shed_once[2]; /* [read side]: the BIO was replaced after the handshake */
	char err[160];
};

static BIO *new_mem_bio(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b != NULL)
		BIO_set_mem_eof_return(b, -1); /* an empty memory BIO must mean "no data yet", not EOF */
	return b;
}

/* Capacity held by a memory BIO. */
static size_t bio_capacity(BIO *b)
{
	BUF_MEM *bm = NULL;
	if (b == NULL || BIO_get_mem_ptr(b, &bm) != 1 || bm == NULL)
		return 0;
	return bm->max;
}

/* Replaces a drained BIO (see the top of the file). Only after the handshake, so OpenSSL's handshake
 * buffering is not disturbed. If the new BIO cannot be had, the old one simply stays. */
static void shed(tls_bio *t, int read_side)
{
	BIO *b = read_side ? SSL_get_rbio(t->ssl) : SSL_get_wbio(t->ssl);
	if (!t->done || BIO_ctrl_pending(b) > 0)
		return;
	size_t cap = bio_capacity(b);
	if (cap == 0 || (t->shed_once[read_side] && cap <= TLS_BIO_KEEP))
		return;
	BIO *nb = new_mem_bio();
	if (nb == NULL)
		return;
	if (read_side)
		SSL_set0_rbio(t->ssl, nb); /* frees the old one */
	else
		SSL_set0_wbio(t->ssl, nb);
	t->shed_once[read_side] = 1;
}

static void record_error(tls_bio *t)
{
	unsigned long e = ERR_peek_last_error();
	if (e != 0)
		ERR_error_string_n(e, t->err, sizeof(t->err));
	ERR_clear_error();
}

int tls__bio_new(tls_bio **out, SSL_CTX *ctx, int is_server, const char *hostname)
{
	tls_bio *t = parley__calloc(1, sizeof(*t));
	int rc = PARLEY_E_TLS;
	if (t == NULL)
		return PARLEY_E_NOMEM;
	t->ssl = SSL_new(ctx);
	t->rbio = new_mem_bio();
	t->wbio = new_mem_bio();
	if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL)
		goto fail;
	SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both BIOs from here */
	t->rbio = t->wbio = NULL;
	if (is_server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (hostname != NULL) {
			if (SSL_set_tlsext_host_name(t->ssl, hostname) != 1)
				goto fail;
			/* checked during the handshake when the ctx has SSL_VERIFY_PEER */
			if (SSL_set1_host(t->ssl, hostname) != 1)
				goto fail;
		}
	}
	*out = t;
	return PARLEY_OK;
fail:
	ERR_clear_error();
	BIO_free(t->rbio);
	BIO_free(t->wbio);
	SSL_free(t->ssl);
	parley__free(t);
	return rc;
}

void tls__bio_free(tls_bio *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	parley__free(t);
}

int tls__feed(tls_bio *t, const uint8_t *in, size_t len)
{
	while (len > 0) {
		int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
		int n = BIO_write(SSL_get_rbio(t->ssl), in, chunk);
		if (n <= 0)
			return PARLEY_E_NOMEM;
		in += n;
		len -= (size_t)n;
	}
	return PARLEY_OK;
}

/* Maps an SSL_get_error result: 0 = keep going later, else a parley error. */
static int map_ssl_error(tls_bio *t, int r)
{
	switch (SSL_get_error(t->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return PARLEY_OK;
	case SSL_ERROR_ZERO_RETURN:
		return PARLEY_E_CLOSED;
	default:
		record_error(t);
		return PARLEY_E_TLS;
	}
}

int tls__read(tls_bio *t, dynbuf *plain)
{
	int rc;
	if (!t->done) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1)
			return map_ssl_error(t, r);
		t->done = 1;
	}
	for (;;) {
		size_t room = plain->max - plain->len;
		if (room == 0)
			return PARLEY_OK;
		if (room > 16384)
			room = 16384;
		uint8_t *dst = dynbuf__reserve(plain, room, &rc);
		if (dst == NULL)
			return rc;
		size_t got = 0;
		int r = SSL_read_ex(t->ssl, dst, room, &got);
		if (r != 1) {
			rc = map_ssl_error(t, r);
			if (rc == PARLEY_OK)
				shed(t, 1); /* OpenSSL wants more: everything fed so far is consumed */
			return rc;
		}
		plain->len += got;
	}
}

int tls__handshake_done(const tls_bio *t)
{
	return t->done;
}

int tls__write(tls_bio *t, const uint8_t *plain, size_t len)
{
	if (!t->done)
		return PARLEY_E_STATE;
	while (len > 0) {
		size_t n = 0;
		/* memory BIOs grow, so a write never waits for the peer */
		if (SSL_write_ex(t->ssl, plain, len, &n) != 1) {
			record_error(t);
			return PARLEY_E_TLS;
		}
		plain += n;
		len -= n;
	}
	return PARLEY_OK;
}

void tls__shutdown(tls_bio *t)
{
	if (t->done)
		(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

size_t tls__take_output(tls_bio *t, uint8_t *out, size_t max)
{
	BIO *w = SSL_get_wbio(t->ssl);
	size_t got = 0;
	if (max == 0 || BIO_ctrl_pending(w) == 0)
		return 0;
	if (BIO_read_ex(w, out, max, &got) != 1)
		return 0;
	shed(t, 0);
	return got;
}

size_t tls__pending_output(const tls_bio *t)
{
	return BIO_ctrl_pending(SSL_get_wbio(t->ssl));
}

size_t tls__buffered_bytes(const tls_bio *t)
{
	return bio_capacity(SSL_get_rbio(t->ssl)) + bio_capacity(SSL_get_wbio(t->ssl));
}

const char *tls__last_error(const tls_bio *t)
{
	return t->err;
}
