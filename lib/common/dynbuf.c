#include "dynbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <parley/error.h>
#include <sodium.h>

#include "alloc.h"

void dynbuf__init(dynbuf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void dynbuf__free(dynbuf *b)
{
	parley__free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void dynbuf__free_secure(dynbuf *b)
{
	if (b->data != NULL)
		sodium_memzero(b->data, b->cap);
	dynbuf__free(b);
}

void dynbuf__reset(dynbuf *b)
{
	b->len = 0;
}

uint8_t *dynbuf__reserve(dynbuf *b, size_t n, int *err)
{
	*err = PARLEY_OK;
	if (n > b->max || b->len > b->max - n) {
		*err = PARLEY_E_TOO_LARGE;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 64;
		while (ncap < b->len + n)
			ncap = ncap > b->max / 2 ? b->max : ncap * 2;
		/* max can be below 64 */
		if (ncap < b->len + n)
			ncap = b->len + n;
		uint8_t *nd = parley__realloc(b->data, ncap);
		if (nd == NULL) {
			*err = PARLEY_E_NOMEM;
			return NULL;
		}
		b->data = nd;
		b->cap = ncap;
	}
	return b->data + b->len;
}

int dynbuf__append(dynbuf *b, const void *p, size_t n)
{
	int err;
	if (n == 0)
		return PARLEY_OK;
	uint8_t *dst = dynbuf__reserve(b, n, &err);
	if (dst == NULL)
		return err;
	memcpy(dst, p, n);
	b->len += n;
	return PARLEY_OK;
}

int dynbuf__append_str(dynbuf *b, const char *s)
{
	return dynbuf__append(b, s, strlen(s));
}

int dynbuf__printf(dynbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return PARLEY_E_INVAL;
	if ((size_t)n < sizeof small)
		return dynbuf__append(b, small, (size_t)n);
	int err;
	uint8_t *dst = dynbuf__reserve(b, (size_t)n + 1, &err);
	if (dst == NULL)
		return err;
	va_start(ap, fmt);
	vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return PARLEY_OK;
}

void dynbuf__consume(dynbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

uint8_t *dynbuf__take(dynbuf *b, size_t *len)
{
	uint8_t *d = b->data;
	*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}
