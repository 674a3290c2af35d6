#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static unsigned long alloc_calls;
static unsigned long fail_at; /* 0 = never fail */

static int should_fail(void)
{
	alloc_calls++;
	return fail_at != 0 && alloc_calls >= fail_at;
}

void parley__alloc_fail_after(unsigned long nth)
{
	alloc_calls = 0;
	fail_at = nth;
}

unsigned long parley__alloc_count(void)
{
	return alloc_calls;
}

void *parley__malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *parley__calloc(size_t count, size_t n)
{
	if (should_fail())
		return NULL;
	return calloc(count ? count : 1, n ? n : 1);
}

void *parley__realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void parley__free(void *p)
{
	free(p);
}

char *parley__strndup(const char *s, size_t maxlen)
{
	size_t len = strnlen(s, maxlen);
	char *d = parley__malloc(len + 1);
	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *parley__strdup(const char *s)
{
	return parley__strndup(s, strlen(s));
}
