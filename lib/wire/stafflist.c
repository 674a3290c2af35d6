/* Signed staff list codec (stafflist.h). One bounded walk over the record; the signature is checked
 * last (the expensive step). Sign refuses what verify would refuse, so no list leaves a signer that a
 * verifier would reject. */
#include "wire/stafflist.h"

#include <string.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "crypto/crypto.h"

#define INVALID PARLEY_E_STAFF_LIST_INVALID
/* fixed bytes besides the handle and name: magic, id, 2 lengths, key, version, time, rules, n, sig */
#define FIXED (WIRE_STAFFLIST_MAGIC_LEN + 8 + 1 + 1 + 33 + 8 + 8 + 3 + 2 + CRYPTO_SIG_LEN)
/* per member besides its handle and device list */
#define MEMBER_FIXED (8 + 1 + 4 + 33 + 2)

/* a bounded writer and reader over one buffer */
typedef struct cur {
	uint8_t *w;
	const uint8_t *r;
	size_t len, o;
} cur;

static void put(cur *c, const void *p, size_t n)
{
	memcpy(c->w + c->o, p, n);
	c->o += n;
}

static void put_be(cur *c, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		c->w[c->o + (size_t)(bytes - 1 - i)] = (uint8_t)(v >> (8 * i));
	c->o += (size_t)bytes;
}

static int get(cur *c, void *p, size_t n)
{
	if (c->len - c->o < n)
		return INVALID;
	memcpy(p, c->r + c->o, n);
	c->o += n;
	return PARLEY_OK;
}

static int get_be(cur *c, uint64_t *v, int bytes)
{
	if (c->len - c->o < (size_t)bytes)
		return INVALID;
	*v = 0;
	for (int i = 0; i < bytes; i++)
		*v = (*v << 8) | c->r[c->o + (size_t)i];
	c->o += (size_t)bytes;
	return PARLEY_OK;
}

/* a length-prefixed (u8) string of lo..hi bytes without NUL into out (hi + 1 bytes) */
static int get_str(cur *c, char *out, size_t lo, size_t hi)
{
	uint64_t n;
	if (get_be(c, &n, 1) != PARLEY_OK || n < lo || n > hi || get(c, out, (size_t)n) != PARLEY_OK ||
	    memchr(out, '\0', (size_t)n) != NULL)
		return INVALID;
	out[n] = '\0';
	return PARLEY_OK;
}

/* The structural rules shared by sign and verify. */
static int check(const wire_stafflist *l, size_t *bytes)
{
	size_t total = FIXED, primaries = 0, nl = strnlen(l->display_name, sizeof(l->display_name));

	if (l->version < 1 || l->n < 1 || l->n > WIRE_STAFF_MAX || l->members == NULL)
		return INVALID;
	if (memchr(l->handle, '\0', sizeof(l->handle)) == NULL || !wire__handle_valid(l->handle))
		return INVALID;
	if (nl < 1 || nl > WIRE_MAX_DISPLAY_NAME || l->entity_key[0] != CRYPTO_SIGNAL_KEY_TYPE)
		return INVALID;
	if (l->lock_mode > 1 || l->admins_exempt > 1 || (l->default_flags & ~WIRE_RULE_ALL) != 0)
		return INVALID;
	total += strlen(l->handle) + nl;
	for (size_t i = 0; i < l->n; i++) {
		const wire_staff_member *m = &l->members[i];
		if (i > 0 && m->account_id <= l->members[i - 1].account_id)
			return INVALID;
		if (memchr(m->handle, '\0', sizeof(m->handle)) == NULL || !wire__handle_valid(m->handle))
			return INVALID;
		if (m->role < WIRE_ROLE_ADMIN || m->role > WIRE_ROLE_GATEWAY || (m->flags & ~WIRE_STAFF_PRIMARY) != 0)
			return INVALID;
		if ((m->flags & WIRE_STAFF_PRIMARY) && (m->role != WIRE_ROLE_ADMIN || primaries++ > 0))
			return INVALID;
		/* a value bit without its mask bit means nothing: one record, one meaning */
		if ((m->rules_mask & ~WIRE_RULE_ALL) != 0 || (m->rules_values & ~m->rules_mask) != 0)
			return INVALID;
		if (m->account_key[0] != CRYPTO_SIGNAL_KEY_TYPE || m->devlist_len > WIRE_DEVLIST_MAX_BYTES ||
		    (m->devlist_len > 0 && m->devlist == NULL))
			return INVALID;
		total += MEMBER_FIXED + strlen(m->handle) + m->devlist_len;
	}
	if (primaries != 1 || total > WIRE_STAFFLIST_MAX_BYTES)
		return INVALID;
	*bytes = total;
	return PARLEY_OK;
}

int wire__stafflist_sign(const wire_stafflist *l, const uint8_t ek_priv[32], dynbuf *out)
{
	crypto_keypair kp;
	size_t total = 0, start;
	cur c;
	int rc, same, err = 0;

	if (l == NULL || ek_priv == NULL || out == NULL)
		return PARLEY_E_INVAL;
	rc = check(l, &total);
	if (rc != PARLEY_OK)
		return rc;
	rc = crypto__keypair_from_private(&kp, ek_priv);
	if (rc != PARLEY_OK)
		return rc;
	same = crypto__ct_equal(kp.pub, l->entity_key + 1, CRYPTO_KEY_LEN);
	crypto__keypair_wipe(&kp);
	if (!same)
		return PARLEY_E_INVALID_KEY;
	start = out->len;
	c.w = dynbuf__reserve(out, total, &err);
	if (c.w == NULL)
		return err != 0 ? err : PARLEY_E_NOMEM;
	c.o = 0;
	put(&c, WIRE_STAFFLIST_MAGIC, WIRE_STAFFLIST_MAGIC_LEN);
	put_be(&c, l->entity_id, 8);
	put_be(&c, strlen(l->handle), 1);
	put(&c, l->handle, strlen(l->handle));
	put_be(&c, strlen(l->display_name), 1);
	put(&c, l->display_name, strlen(l->display_name));
	put(&c, l->entity_key, 33);
	put_be(&c, l->version, 8);
	put_be(&c, l->timestamp_ms, 8);
	put_be(&c, l->lock_mode, 1);
	put_be(&c, l->admins_exempt, 1);
	put_be(&c, l->default_flags, 1);
	put_be(&c, l->n, 2);
	for (size_t i = 0; i < l->n; i++) {
		const wire_staff_member *m = &l->members[i];
		put_be(&c, m->account_id, 8);
		put_be(&c, strlen(m->handle), 1);
		put(&c, m->handle, strlen(m->handle));
		put_be(&c, m->role, 1);
		put_be(&c, m->flags, 1);
		put_be(&c, m->rules_mask, 1);
		put_be(&c, m->rules_values, 1);
		put(&c, m->account_key, 33);
		put_be(&c, m->devlist_len, 2);
		if (m->devlist_len > 0)
			put(&c, m->devlist, m->devlist_len);
	}
	rc = crypto__xeddsa_sign(c.w + c.o, ek_priv, c.w, c.o);
	if (rc != PARLEY_OK)
		return rc;
	out->len = start + c.o + CRYPTO_SIG_LEN;
	return PARLEY_OK;
}

static int parse(const uint8_t *b, size_t len, wire_stafflist *l)
{
	uint8_t magic[WIRE_STAFFLIST_MAGIC_LEN], pub[CRYPTO_KEY_LEN];
	uint64_t v;
	size_t body, unused;
	cur c = {.r = b, .len = 0, .o = 0};
	int rc = PARLEY_OK;

	if (b == NULL || len < FIXED + WIRE_MIN_HANDLE + 1 + MEMBER_FIXED + WIRE_MIN_HANDLE ||
	    len > WIRE_STAFFLIST_MAX_BYTES)
		return INVALID;
	body = len - CRYPTO_SIG_LEN;
	c.len = body;
	rc |= get(&c, magic, sizeof(magic));
	if (rc != PARLEY_OK || memcmp(magic, WIRE_STAFFLIST_MAGIC, sizeof(magic)) != 0)
		return INVALID;
	rc |= get_be(&c, &l->entity_id, 8);
	rc |= get_str(&c, l->handle, WIRE_MIN_HANDLE, WIRE_MAX_HANDLE);
	rc |= get_str(&c, l->display_name, 1, WIRE_MAX_DISPLAY_NAME);
	rc |= get(&c, l->entity_key, 33);
	rc |= get_be(&c, &l->version, 8);
	rc |= get_be(&c, &l->timestamp_ms, 8);
	rc |= get(&c, &l->lock_mode, 1);
	rc |= get(&c, &l->admins_exempt, 1);
	rc |= get(&c, &l->default_flags, 1);
	rc |= get_be(&c, &v, 2);
	if (rc != PARLEY_OK || v < 1 || v > WIRE_STAFF_MAX)
		return INVALID;
	l->members = parley__calloc((size_t)v, sizeof(*l->members));
	if (l->members == NULL)
		return PARLEY_E_NOMEM;
	l->n = (size_t)v;
	for (size_t i = 0; i < l->n && rc == PARLEY_OK; i++) {
		wire_staff_member *m = &l->members[i];
		rc |= get_be(&c, &m->account_id, 8);
		rc |= get_str(&c, m->handle, WIRE_MIN_HANDLE, WIRE_MAX_HANDLE);
		rc |= get(&c, &m->role, 1);
		rc |= get(&c, &m->flags, 1);
		rc |= get(&c, &m->rules_mask, 1);
		rc |= get(&c, &m->rules_values, 1);
		rc |= get(&c, m->account_key, 33);
		rc |= get_be(&c, &v, 2);
		if (rc == PARLEY_OK && (v > WIRE_DEVLIST_MAX_BYTES || c.len - c.o < v))
			rc = INVALID;
		if (rc == PARLEY_OK) {
			m->devlist = v > 0 ? b + c.o : NULL;
			m->devlist_len = (size_t)v;
			c.o += (size_t)v;
		}
	}
	/* nothing may follow the last member but the signature */
	if (rc != PARLEY_OK || c.o != body || check(l, &unused) != PARLEY_OK)
		return INVALID;
	if (crypto__pubkey_parse(pub, l->entity_key, 33) != PARLEY_OK ||
	    crypto__xeddsa_verify(pub, b, body, b + body) != PARLEY_OK)
		return INVALID;
	return PARLEY_OK;
}

int wire__stafflist_verify(const uint8_t *buf, size_t len, wire_stafflist *out)
{
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	rc = parse(buf, len, out);
	if (rc != PARLEY_OK)
		wire__stafflist_free(out);
	return rc;
}

void wire__stafflist_free(wire_stafflist *l)
{
	if (l == NULL)
		return;
	parley__free(l->members);
	memset(l, 0, sizeof(*l));
}

const wire_staff_member *wire__stafflist_find(const wire_stafflist *l, uint64_t account_id)
{
	size_t lo = 0, hi = l != NULL ? l->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->members[mid].account_id == account_id)
			return &l->members[mid];
		if (l->members[mid].account_id < account_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const wire_staff_member *wire__stafflist_staff(const wire_stafflist *l, uint64_t account_id)
{
	const wire_staff_member *m = wire__stafflist_find(l, account_id);
	return m != NULL && m->role != WIRE_ROLE_GATEWAY ? m : NULL;
}

unsigned wire__stafflist_effective_rules(const wire_stafflist *l, const wire_staff_member *m)
{
	/* a gateway is the customer side of its threads: no staff rule applies to it, whatever the entity
	 * defaults or its own mask say (never a default agent, never initiates, pays or transfers) */
	if (m->role == WIRE_ROLE_GATEWAY)
		return 0;
	return ((unsigned)m->rules_values & m->rules_mask) | ((unsigned)l->default_flags & ~(unsigned)m->rules_mask);
}
