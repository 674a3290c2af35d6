/* Entity registry: configuration, enrolment codes and staff-list intake. See entities.h. */
#include "entities/entities.h"

#include <string.h>

#include <sodium.h>

#include <parley/error.h>

#include "common/alloc.h"
#include "crypto/crypto.h"
#include "wire/approval.h"
#include "wire/stafflist.h"
#include "wire/wire.h"

static const char CROCKFORD[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void entities__config_from(entities_config *c, const parleyd_config *cfg)
{
	c->code_ttl_s = (unsigned)cfg->entity_code_ttl_s;
	c->max_members = (unsigned)cfg->entity_max_members;
	c->max_pending = (unsigned)cfg->entity_max_pending;
	c->max_codes = (unsigned)cfg->entity_max_codes;
	c->guess_cap = cfg->enrol_guess_burst;
	c->guess_per_ms = cfg->enrol_guess_per_min / 60000.0;
	c->acct_cap = cfg->enrol_guess_account_burst;
	c->acct_per_ms = cfg->enrol_guess_account_per_min / 60000.0;
}

void entities__code_new(char out[16], uint8_t hash[32])
{
	uint8_t r[8];
	uint64_t v = 0;
	char raw[ENTITY_CODE_CHARS];
	size_t o = 0;

	crypto__random(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		v = (v << 8) | r[i];
	for (size_t i = 0; i < ENTITY_CODE_CHARS; i++, v >>= 5)
		raw[i] = CROCKFORD[v & 31];
	for (size_t i = 0; i < ENTITY_CODE_CHARS; i++) {
		if (i > 0 && i % 4 == 0)
			out[o++] = '-';
		out[o++] = raw[i];
	}
	out[o] = '\0';
	crypto_hash_sha256(hash, (const uint8_t *)raw, sizeof(raw));
	sodium_memzero(r, sizeof(r));
}

void entities__code_hash(const char *typed, uint8_t hash[32])
{
	char norm[WIRE_MAX_ENROL_CODE];
	size_t n = 0;

	for (const char *p = typed; *p != '\0' && n < sizeof(norm); p++) {
		char ch = *p;
		if (ch == '-' || ch == ' ')
			continue;
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch == 'I' || ch == 'L')
			ch = '1';
		else if (ch == 'O')
			ch = '0';
		norm[n++] = ch;
	}
	crypto_hash_sha256(hash, (const uint8_t *)norm, n);
}

int entities__job_list(store_job *j, const uint8_t *list, size_t len)
{
	uint8_t *copy = len > 0 ? parley__malloc(len) : NULL;
	wire_stafflist *l = parley__calloc(1, sizeof(*l));
	int rc;

	if (len == 0 || copy == NULL || l == NULL) {
		parley__free(copy);
		parley__free(l);
		return len == 0 ? PARLEY_E_STAFF_LIST_INVALID : PARLEY_E_NOMEM;
	}
	memcpy(copy, list, len);
	/* the members point into the copy, which the job owns with them */
	rc = wire__stafflist_verify(copy, len, l);
	if (rc != PARLEY_OK) {
		parley__free(copy);
		parley__free(l);
		return rc;
	}
	rc = store__job_ent_set_list(j, copy, len, l);
	if (rc != PARLEY_OK) {
		wire__stafflist_free(l);
		parley__free(copy);
		parley__free(l);
	}
	return rc;
}

int entities__job_approval(store_job *j, const uint8_t *rec, size_t len)
{
	wire_approval a;
	/* the form is checked here, off the store thread; the signature where the device key is */
	int rc = wire__approval_parse(rec, len, &a);
	if (rc != PARLEY_OK)
		return rc;
	j->ent.approval = parley__malloc(len);
	if (j->ent.approval == NULL)
		return PARLEY_E_NOMEM;
	memcpy(j->ent.approval, rec, len);
	j->ent.approval_len = len;
	return PARLEY_OK;
}
