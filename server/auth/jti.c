/* The jti replay cache: an open-addressing table (linear probing, backward-shift deletion, no
 * tombstones) of fixed size, allocated once. Load stays <= 1/2, so probe chains stay short. */
#include <parley/error.h>
#include <sodium.h>
#include <string.h>

#include "auth/jose.h"
#include "common/alloc.h"
#include "crypto/crypto.h"

#define JTI_MAX_CAPACITY ((size_t)1 << 20)
#define JTI_DIGEST 32

typedef struct jti_slot {
	uint8_t digest[JTI_DIGEST]; /* keyed BLAKE2b of (scope, jti) */
	int64_t exp;                /* 0: empty slot (live entries have exp > now >= 0) */
} jti_slot;

struct jose_jti_cache {
	size_t mask;     /* slots - 1; slots is a power of two >= 2 * capacity */
	size_t capacity; /* live entries allowed */
	size_t count;
	uint8_t key[crypto_generichash_KEYBYTES];
	jti_slot *slots;
};

int jose__jti_new(size_t capacity, jose_jti_cache **out)
{
	*out = NULL;
	if (capacity == 0 || capacity > JTI_MAX_CAPACITY)
		return PARLEY_E_INVAL;
	size_t slots = 2;
	while (slots < 2 * capacity)
		slots <<= 1;
	jose_jti_cache *c = parley__calloc(1, sizeof(*c));
	jti_slot *s = parley__calloc(slots, sizeof(*s));
	if (!c || !s) {
		parley__free(c);
		parley__free(s);
		return PARLEY_E_NOMEM;
	}
	c->mask = slots - 1;
	c->capacity = capacity;
	c->slots = s;
	crypto__random(c->key, sizeof(c->key));
	*out = c;
	return PARLEY_OK;
}

void jose__jti_free(jose_jti_cache *c)
{
	if (!c)
		return;
	crypto__wipe(c->key, sizeof(c->key));
	parley__free(c->slots);
	parley__free(c);
}

static size_t jti_home(const jose_jti_cache *c, const uint8_t d[JTI_DIGEST])
{
	uint64_t h;
	memcpy(&h, d, sizeof(h));
	return (size_t)h & c->mask;
}

/* Knuth's algorithm R: empties slot i and pulls later members of the probe run back into the hole, so a
 * lookup can keep stopping at the first empty slot. */
static void jti_delete(jose_jti_cache *c, size_t i)
{
	size_t j = i;
	for (;;) {
		j = (j + 1) & c->mask;
		if (c->slots[j].exp == 0)
			break;
		size_t k = jti_home(c, c->slots[j].digest);
		/* move j into the hole unless its home lies cyclically in (i, j] */
		int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			c->slots[i] = c->slots[j];
			i = j;
		}
	}
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
	c->count--;
}

size_t jose__jti_purge(jose_jti_cache *c, int64_t now)
{
	for (size_t i = 0; i <= c->mask;) {
		if (c->slots[i].exp != 0 && c->slots[i].exp <= now)
			jti_delete(c, i); /* slot i may now hold a moved entry: look at it again */
		else
			i++;
	}
	return c->count;
}

int jose__jti_insert(jose_jti_cache *c, const char *scope, size_t scope_len, const char *jti, size_t jti_len,
		     int64_t exp, int64_t now)
{
	if (!c || !jti || jti_len == 0 || jti_len > JOSE_JTI_MAX_LEN || now < 0)
		return PARLEY_E_INVAL;
	if (exp <= now)
		return PARLEY_E_ID_TOKEN_CLAIMS;
	uint8_t d[JTI_DIGEST], len_be[4] = {(uint8_t)(scope_len >> 24), (uint8_t)(scope_len >> 16),
					     (uint8_t)(scope_len >> 8), (uint8_t)scope_len};
	crypto_generichash_state st;
	crypto_generichash_init(&st, c->key, sizeof(c->key), sizeof(d));
	crypto_generichash_update(&st, len_be, sizeof(len_be)); /* (scope, jti) pairs stay unambiguous */
	crypto_generichash_update(&st, (const uint8_t *)scope, scope_len);
	crypto_generichash_update(&st, (const uint8_t *)jti, jti_len);
	crypto_generichash_final(&st, d, sizeof(d));

	size_t i = jti_home(c, d);
	for (; c->slots[i].exp != 0; i = (i + 1) & c->mask) {
		if (memcmp(c->slots[i].digest, d, sizeof(d)) != 0)
			continue;
		if (c->slots[i].exp > now)
			return PARLEY_E_JWT_REPLAYED;
		c->slots[i].exp = exp; /* an expired entry of the same jti: its token can no longer pass anyway */
		return PARLEY_OK;
	}
	if (c->count >= c->capacity) {
		jose__jti_purge(c, now);
		if (c->count >= c->capacity)
			return PARLEY_E_BUSY;
		return jose__jti_insert(c, scope, scope_len, jti, jti_len, exp, now); /* the purge moved slots */
	}
	memcpy(c->slots[i].digest, d, sizeof(d));
	c->slots[i].exp = exp;
	c->count++;
	return PARLEY_OK;
}
