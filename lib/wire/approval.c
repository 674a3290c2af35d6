/* Join approval codec (approval.h). Fixed layout but for the handle: one bounded walk, the signature
 * checked last. */
#include "wire/approval.h"

#include <string.h>

#include <parley/error.h>

#include "crypto/crypto.h"
#include "wire/be.h"
#include "wire/sigrec.h"

#define INVALID PARLEY_E_APPROVAL_INVALID
/* bytes after the handle up to the signature */
#define BODY_FIXED (8 + 8 + 33 + 1 + 32 + 8 + 4 + 8)

static int check(const wire_approval *a)
{
	if (memchr(a->entity, '\0', sizeof(a->entity)) == NULL || !wire__handle_valid(a->entity))
		return INVALID;
	if (a->request_id == 0 || a->candidate_id == 0 || a->approver_id == 0 || a->approver_device == 0)
		return INVALID;
	if (a->candidate_key[0] != CRYPTO_SIGNAL_KEY_TYPE)
		return INVALID;
	if (a->role != WIRE_ROLE_AGENT && a->role != WIRE_ROLE_BOT && a->role != WIRE_ROLE_GATEWAY)
		return INVALID;
	return PARLEY_OK;
}

void wire__approval_devlist_hash(const uint8_t *devlist, size_t len, uint8_t out[32])
{
	crypto_hash_sha256(out, devlist, len);
}

int wire__approval_sign(const wire_approval *a, const uint8_t sk[64], uint8_t *out, size_t cap, size_t *len)
{
	uint8_t *p = out;

	if (a == NULL || sk == NULL || out == NULL || len == NULL || cap < WIRE_APPROVAL_MAX_BYTES)
		return PARLEY_E_INVAL;
	if (check(a) != PARLEY_OK)
		return INVALID;
	memcpy(p, WIRE_APPROVAL_MAGIC, WIRE_APPROVAL_MAGIC_LEN);
	p += WIRE_APPROVAL_MAGIC_LEN;
	p = wire__put_handle(p, a->entity);
	p = wire__put_be(p, a->request_id, 8);
	p = wire__put_be(p, a->candidate_id, 8);
	memcpy(p, a->candidate_key, 33);
	p += 33;
	*p++ = a->role;
	memcpy(p, a->devlist_hash, 32);
	p += 32;
	p = wire__put_be(p, a->approver_id, 8);
	p = wire__put_be(p, a->approver_device, 4);
	p = wire__put_be(p, a->timestamp_ms, 8);
	*len = wire__sigrec_sign(out, p, sk);
	return PARLEY_OK;
}

int wire__approval_parse(const uint8_t *buf, size_t len, wire_approval *out)
{
	const uint8_t *p = buf;
	size_t hl;

	if (out == NULL)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (buf == NULL || len < WIRE_APPROVAL_MAGIC_LEN + 1 || len > WIRE_APPROVAL_MAX_BYTES ||
	    memcmp(p, WIRE_APPROVAL_MAGIC, WIRE_APPROVAL_MAGIC_LEN) != 0)
		return INVALID;
	p += WIRE_APPROVAL_MAGIC_LEN;
	hl = *p++;
	/* the whole length follows from the handle's: nothing short, nothing trailing */
	if (hl > WIRE_MAX_HANDLE || len != WIRE_APPROVAL_MAGIC_LEN + 1 + hl + BODY_FIXED + WIRE_SIGREC_SIG_LEN)
		return INVALID;
	memcpy(out->entity, p, hl);
	p += hl;
	out->request_id = wire__get_be(&p, 8);
	out->candidate_id = wire__get_be(&p, 8);
	memcpy(out->candidate_key, p, 33);
	p += 33;
	out->role = *p++;
	memcpy(out->devlist_hash, p, 32);
	p += 32;
	out->approver_id = wire__get_be(&p, 8);
	out->approver_device = (uint32_t)wire__get_be(&p, 4);
	out->timestamp_ms = wire__get_be(&p, 8);
	if (memchr(out->entity, '\0', hl) != NULL || check(out) != PARLEY_OK) {
		memset(out, 0, sizeof(*out));
		return INVALID;
	}
	return PARLEY_OK;
}

int wire__approval_verify(const uint8_t *buf, size_t len, const uint8_t device_key[32], wire_approval *out)
{
	int rc = wire__approval_parse(buf, len, out);

	if (rc != PARLEY_OK)
		return rc;
	if (!wire__sigrec_ok(buf, len, device_key)) {
		memset(out, 0, sizeof(*out));
		return INVALID;
	}
	return PARLEY_OK;
}
