/* Store, the drivers' statement cache: an open-addressing table from the address of a domain file's SQL
 * constant (or sql_text) to the driver's prepared statement. Keyed by address, not by text: each
 * statement is one constant, so a lookup is one multiply and, almost always, one probe. */
#include <parley/error.h>

#include "common/alloc.h"
#include "store/sql/sql.h"

#define CACHE_MIN 64

static size_t slot(const void *key, size_t cap)
{
	/* Fibonacci hashing of the address: the constants sit a few bytes apart, the high bits spread them */
	uint64_t h = (uint64_t)(uintptr_t)key * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(h >> 32) & (cap - 1);
}

static sql_cache_entry *find(sql_cache_entry *t, size_t cap, const void *key)
{
	size_t i = slot(key, cap);
	while (t[i].key != NULL && t[i].key != key)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Keeps the table at most half full, so a probe ends quickly. */
static int grow(sql_cache *c)
{
	size_t cap = c->cap ? c->cap * 2 : CACHE_MIN;
	sql_cache_entry *t = parley__calloc(cap, sizeof(*t));
	if (t == NULL)
		return PARLEY_E_NOMEM;
	for (size_t i = 0; i < c->cap; i++)
		if (c->t[i].key != NULL)
			*find(t, cap, c->t[i].key) = c->t[i];
	parley__free(c->t);
	c->t = t;
	c->cap = cap;
	return PARLEY_OK;
}

sql_cache_entry *sql__cache_find(sql_cache *c, const void *key)
{
	if ((c->n + 1) * 2 > c->cap && grow(c) != PARLEY_OK)
		return NULL;
	return find(c->t, c->cap, key);
}

void sql__cache_added(sql_cache *c)
{
	c->n++;
}

void sql__cache_free(sql_cache *c, void (*free_val)(void *val))
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->t[i].key != NULL)
			free_val(c->t[i].val);
	parley__free(c->t);
	c->t = NULL;
	c->n = c->cap = 0;
}
