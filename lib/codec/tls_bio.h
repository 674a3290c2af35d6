/* Sans-I/O TLS: one OpenSSL SSL object driven through a pair of memory BIOs, for both parleyd
 * (server role) and lib/transport (client role).
 *
 * The socket layer feeds ciphertext it read (tls__feed), pulls plaintext out (tls__read), pushes
 * plaintext to send (tls__write) and writes whatever ciphertext is ready (tls__take_output). The
 * handshake happens inside tls__read: call it after every feed, then flush the output, because a
 * handshake step produces ciphertext without any application data.
 */
#ifndef PARLEY_NET_TLS_BIO_H
#define PARLEY_NET_TLS_BIO_H
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/dynbuf.h"

typedef struct tls_bio tls_bio;

/* ctx: a configured SSL_CTX (the tls_bio holds its own reference through SSL_new). For the client role,
 * hostname (may be NULL) is sent as SNI and, when the ctx verifies peers, checked against the
 * certificate. Returns PARLEY_OK, PARLEY_E_TLS, PARLEY_E_NOMEM. */
int tls__bio_new(tls_bio **out, SSL_CTX *ctx, int is_server, const char *hostname);
void tls__bio_free(tls_bio *t);

/* Ciphertext from the peer. PARLEY_OK or PARLEY_E_NOMEM. */
int tls__feed(tls_bio *t, const uint8_t *in, size_t len);

/* Advances the handshake and appends decrypted application data to plain (bounded by its max: when it
 * is full, the rest stays inside OpenSSL until the next call). Returns PARLEY_OK (possibly nothing new),
 * PARLEY_E_CLOSED (the peer sent close_notify), PARLEY_E_TLS (handshake/record failure; the alert to
 * send is in the output). */
int tls__read(tls_bio *t, dynbuf *plain);

/* 1 once the handshake finished. */
int tls__handshake_done(const tls_bio *t);

/* Encrypts plaintext into the output; only after the handshake (PARLEY_E_STATE before). */
int tls__write(tls_bio *t, const uint8_t *plain, size_t len);

/* Sends close_notify (output); harmless if the handshake never finished. */
void tls__shutdown(tls_bio *t);

/* Ciphertext ready for the socket: moves up to max bytes into out (appended). Returns bytes moved. */
size_t tls__take_output(tls_bio *t, uint8_t *out, size_t max);
size_t tls__pending_output(const tls_bio *t);

/* Capacity of the two memory BIOs (a drained one is emptied once after the handshake, then whenever
 * it grew past 1 KiB). OpenSSL's own per-connection state is not counted. */
size_t tls__buffered_bytes(const tls_bio *t);

/* Last OpenSSL error as text, for logs ("" if none). Thread-local like OpenSSL's error queue. */
const char *tls__last_error(const tls_bio *t);

#endif
