/* A growable byte buffer with a hard maximum (curl's dynbuf idea).
 *
 * Every buffer that network input can grow is a dynbuf whose `max` is set from configuration, so a
 * peer can never make us allocate more than that: appends past `max` fail with PARLEY_E_TOO_LARGE and
 * leave the buffer unchanged.
 */
#ifndef PARLEY_COMMON_DYNBUF_H
#define PARLEY_COMMON_DYNBUF_H
#include <stddef.h>
#include <stdint.h>

typedef struct dynbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
} dynbuf;

void dynbuf__init(dynbuf *b, size_t max);
void dynbuf__free(dynbuf *b);
/* Frees and wipes the contents first (for buffers that held secrets). */
void dynbuf__free_secure(dynbuf *b);
void dynbuf__reset(dynbuf *b);
int dynbuf__append(dynbuf *b, const void *p, size_t n);
int dynbuf__append_str(dynbuf *b, const char *s);
int dynbuf__printf(dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remove the first n bytes (consumed input). */
void dynbuf__consume(dynbuf *b, size_t n);
/* Make room for at least n more bytes; returns a pointer to the free tail or NULL (too large / nomem). */
uint8_t *dynbuf__reserve(dynbuf *b, size_t n, int *err);
/* Detach the buffer (caller frees with parley__free); the dynbuf is reset. */
uint8_t *dynbuf__take(dynbuf *b, size_t *len);

#endif
