/* Entities on the client: the blocking variants, the business's devices (what a customer's client will
 * encrypt to) and the entity safety number (include/parley/entity.h).
 */
#include <string.h>

#include <parley/fingerprint.h>

#include "client/entity_internal.h"
#include "common/alloc.h"

typedef struct ent_sync {
	int done;
	parley_err status;
	parley_entity *e;
	uint64_t id;
	char *code;
	size_t code_len;
	uint64_t expires_ms;
	parley_join_request *reqs;
	size_t max, n;
} ent_sync;

static void sync_entity(parley_client *c, parley_err st, parley_entity *e, void *user)
{
	ent_sync *s = user;
	s->status = st;
	s->e = e;
	s->done = 1;
}

static void sync_id(parley_client *c, parley_err st, uint64_t id, void *user)
{
	ent_sync *s = user;
	s->status = st;
	s->id = id;
	s->done = 1;
}

static void sync_code(parley_client *c, parley_err st, const char *code, uint64_t expires_ms, void *user)
{
	ent_sync *s = user;
	s->status = st;
	if (st == PARLEY_OK && (size_t)snprintf(s->code, s->code_len, "%s", code) >= s->code_len)
		s->status = PARLEY_E_TOO_LARGE;
	s->expires_ms = expires_ms;
	s->done = 1;
}

static void sync_requests(parley_client *c, parley_err st, const parley_join_request *r, size_t n, void *user)
{
	ent_sync *s = user;
	s->status = st;
	s->n = n;
	if (st == PARLEY_OK && n > 0 && s->max > 0)
		memcpy(s->reqs, r, (n < s->max ? n : s->max) * sizeof(*r));
	s->done = 1;
}

static void sync_done(parley_client *c, parley_err st, void *user)
{
	ent_sync *s = user;
	s->status = st;
	s->done = 1;
}

/* Runs the loop until the call's callback ran (see client__sync_wait). */
static parley_err wait(parley_client *c, ent_sync *s, parley_err start_rc)
{
	if (start_rc != PARLEY_OK)
		return start_rc;
	if (client__wait(c, &s->done) != PARLEY_OK && !s->done)
		client__conn_fail_all(c, PARLEY_E_INTERNAL);
	return s->status;
}

#define REFUSE_NESTED(c)                         \
	do {                                     \
		if (client__sync_refused(c))     \
			return PARLEY_E_STATE;   \
	} while (0)

parley_err parley_entity_create(parley_client *c, const char *handle, const char *display_name, uint64_t *entity_id)
{
	ent_sync s = {0};
	parley_err rc;

	REFUSE_NESTED(c);
	rc = wait(c, &s, parley_entity_create_start(c, handle, display_name, sync_id, &s));
	if (rc == PARLEY_OK && entity_id != NULL)
		*entity_id = s.id;
	return rc;
}

parley_err parley_entity_get(parley_client *c, const char *handle, parley_entity **out)
{
	ent_sync s = {0};
	parley_err rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	REFUSE_NESTED(c);
	rc = wait(c, &s, parley_entity_get_start(c, handle, sync_entity, &s));
	if (rc == PARLEY_OK)
		*out = s.e;
	return rc;
}

parley_err parley_entity_code(parley_client *c, const char *entity, unsigned ttl_s, parley_entity_role role,
			      char *code_buf, size_t code_len, uint64_t *expires_ms)
{
	ent_sync s = {0};
	parley_err rc;

	if (code_buf == NULL || code_len == 0)
		return PARLEY_E_INVAL;
	REFUSE_NESTED(c);
	s.code = code_buf;
	s.code_len = code_len;
	rc = wait(c, &s, parley_entity_code_start(c, entity, ttl_s, role, sync_code, &s));
	if (rc == PARLEY_OK && expires_ms != NULL)
		*expires_ms = s.expires_ms;
	return rc;
}

parley_err parley_entity_join(parley_client *c, const char *entity, const char *code, uint64_t *request_id)
{
	ent_sync s = {0};
	parley_err rc;

	REFUSE_NESTED(c);
	rc = wait(c, &s, parley_entity_join_start(c, entity, code, sync_id, &s));
	if (rc == PARLEY_OK && request_id != NULL)
		*request_id = s.id;
	return rc;
}

parley_err parley_entity_requests(parley_client *c, const char *entity, parley_join_request *out, size_t max,
				  size_t *n)
{
	ent_sync s = {0};
	parley_err rc;

	if (n == NULL || (out == NULL && max > 0))
		return PARLEY_E_INVAL;
	REFUSE_NESTED(c);
	s.reqs = out;
	s.max = max;
	rc = wait(c, &s, parley_entity_requests_start(c, entity, sync_requests, &s));
	*n = rc == PARLEY_OK ? s.n : 0;
	return rc;
}

parley_err parley_entity_decide(parley_client *c, const char *entity, uint64_t request_id, int approve)
{
	ent_sync s = {0};
	REFUSE_NESTED(c);
	return wait(c, &s, parley_entity_decide_start(c, entity, request_id, approve, sync_done, &s));
}

parley_err parley_entity_add_admin(parley_client *c, const char *entity, const char *member)
{
	ent_sync s = {0};
	REFUSE_NESTED(c);
	return wait(c, &s, parley_entity_add_admin_start(c, entity, member, sync_done, &s));
}

parley_err parley_entity_remove(parley_client *c, const char *entity, const char *member, parley_entity_role role)
{
	ent_sync s = {0};
	REFUSE_NESTED(c);
	return wait(c, &s, parley_entity_remove_start(c, entity, member, role, sync_done, &s));
}

parley_err parley_entity_transfer_primary(parley_client *c, const char *entity, const char *member)
{
	ent_sync s = {0};
	REFUSE_NESTED(c);
	return wait(c, &s, parley_entity_transfer_primary_start(c, entity, member, sync_done, &s));
}

parley_err parley_entity_set_rules(parley_client *c, const char *entity, const char *member,
				   const parley_rules_change *change)
{
	ent_sync s = {0};
	REFUSE_NESTED(c);
	return wait(c, &s, parley_entity_rules_start(c, entity, member, change, sync_done, &s));
}

/* ---- safety number ---- */

int client__entity_fingerprint(parley_client *c, const uint8_t mine[PARLEY_ENTITY_KEY_BYTES], const char *other,
			       const uint8_t theirs[PARLEY_ENTITY_KEY_BYTES], char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	parley_fingerprint *fp = NULL;
	int rc = parley_fingerprint_new(&fp, PARLEY_FINGERPRINT_VERSION, PARLEY_FINGERPRINT_ITERATIONS,
					(const uint8_t *)c->account.handle, strlen(c->account.handle), mine,
					PARLEY_ENTITY_KEY_BYTES, (const uint8_t *)other, strlen(other), theirs,
					PARLEY_ENTITY_KEY_BYTES);
	out[0] = '\0';
	if (rc != PARLEY_OK)
		return rc;
	memcpy(out, parley_fingerprint_display(fp), PARLEY_SAFETY_NUMBER_LEN);
	out[PARLEY_SAFETY_NUMBER_LEN] = '\0';
	parley_fingerprint_free(fp);
	return PARLEY_OK;
}

parley_err parley_entity_safety_number(parley_client *c, const char *entity, char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	uint8_t mine[PARLEY_ENTITY_KEY_BYTES], ek[PARLEY_ENTITY_KEY_BYTES];
	int have_private = 0, rc;

	if (c == NULL || out == NULL)
		return PARLEY_E_INVAL;
	out[0] = '\0';
	REFUSE_NESTED(c);
	rc = client__check_handle(c, entity);
	if (rc == PARLEY_OK)
		rc = client__entity_ready(c);
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	/* always over a verified, pinned key: fetch (and verify) when unknown */
	if (client__entity_pinned_key(c, entity, ek) != PARLEY_OK) {
		parley_entity *e = NULL;
		rc = parley_entity_get(c, entity, &e);
		parley_entity_free(e);
		if (rc == PARLEY_OK)
			rc = client__entity_pinned_key(c, entity, ek);
		if (rc != PARLEY_OK)
			return (parley_err)rc;
	}
	rc = client__account_key(c, mine, &have_private);
	if (rc != PARLEY_OK)
		return rc == PARLEY_E_NOT_FOUND ? PARLEY_E_NO_ACCOUNT_KEY : (parley_err)rc;
	return (parley_err)client__entity_fingerprint(c, mine, entity, ek, out);
}

parley_err parley_entity_safety_number_for(parley_client *c, const char *entity, const char *customer,
					  char out[PARLEY_SAFETY_NUMBER_LEN + 1])
{
	uint8_t ak[PARLEY_ENTITY_KEY_BYTES], ek[PARLEY_ENTITY_KEY_BYTES];
	parley_fingerprint *fp = NULL;
	char tmp[PARLEY_SAFETY_NUMBER_LEN + 1];
	int found = 0, rc;

	if (c == NULL || out == NULL)
		return PARLEY_E_INVAL;
	out[0] = '\0';
	REFUSE_NESTED(c);
	rc = client__check_handle(c, customer);
	if (rc == PARLEY_OK)
		rc = parley_entity_safety_number(c, entity, tmp); /* the entity's key, verified and pinned */
	if (rc == PARLEY_OK)
		rc = client__entity_pinned_key(c, entity, ek);
	if (rc == PARLEY_OK)
		rc = client__peer_pinned_key(c, customer, ak, &found);
	if (rc == PARLEY_OK && !found) {
		/* learn (and pin) the customer's account key with its signed device list */
		rc = parley_safety_number(c, customer, 0, NULL, NULL, tmp);
		if (rc == PARLEY_OK)
			rc = client__peer_pinned_key(c, customer, ak, &found);
		if (rc == PARLEY_OK && !found)
			rc = PARLEY_E_NO_DEVICE_LIST;
	}
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	/* the customer's computation seen from the other side: the same 60 digits */
	rc = parley_fingerprint_new(&fp, PARLEY_FINGERPRINT_VERSION, PARLEY_FINGERPRINT_ITERATIONS,
				    (const uint8_t *)entity, strlen(entity), ek, sizeof(ek), (const uint8_t *)customer,
				    strlen(customer), ak, sizeof(ak));
	if (rc != PARLEY_OK)
		return (parley_err)rc;
	memcpy(out, parley_fingerprint_display(fp), PARLEY_SAFETY_NUMBER_LEN);
	out[PARLEY_SAFETY_NUMBER_LEN] = '\0';
	parley_fingerprint_free(fp);
	return PARLEY_OK;
}

parley_err parley_entity_trust(parley_client *c, const char *entity)
{
	int rc = c == NULL ? PARLEY_E_INVAL : client__check_handle(c, entity);
	if (rc == PARLEY_OK)
		rc = client__entity_unpin(c, entity);
	return (parley_err)rc;
}

/* ---- the business's devices ---- */

/* One parley_entity_devices_start: the verified entity, then each member's bundles in turn. */
typedef struct devices_run {
	parley_entity *e;
	size_t next;          /* the member whose bundles come next */
	wire_devlist *listed; /* that member's verified list (n = 0: none verifies) */
	parley_entity_device *devs;
	size_t n, cap, left_out;
	char first_bad[CLIENT_ERRMSG_LEN];
	parley_entity_devices_cb cb;
	void *user;
} devices_run;

static void devices_finish(parley_client *c, devices_run *d, int status)
{
	if (status == PARLEY_OK && d->first_bad[0] != '\0')
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", d->first_bad); /* the warning */
	d->cb(c, (parley_err)status, status == PARLEY_OK ? d->devs : NULL, status == PARLEY_OK ? d->n : 0,
	      status == PARLEY_OK ? d->left_out : 0, d->user);
	parley_entity_free(d->e);
	parley__free(d->listed);
	parley__free(d->devs);
	parley__free(d);
}

static int add_device(devices_run *d, const char *handle, uint32_t id, int listed)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		parley_entity_device *nd = parley__realloc(d->devs, cap * sizeof(*nd));
		if (nd == NULL)
			return PARLEY_E_NOMEM;
		d->devs = nd;
		d->cap = cap;
	}
	snprintf(d->devs[d->n].handle, sizeof(d->devs[d->n].handle), "%s", handle);
	d->devs[d->n].device_id = id;
	d->devs[d->n].listed = listed;
	d->n++;
	d->left_out += !listed;
	return PARLEY_OK;
}

static void devices_next(parley_client *c, devices_run *d);

/* The member's bundles: each device the server serves must be in the verified list with the same
 * identity key. A newer list served with the bundles counts when it verifies under the same account
 * key as the staff list gives (the member linked a device since the staff list was signed). */
static void devices_on_bundles(parley_client *c, int status, const Parley__Wire__GetBundlesResponse *r, void *ctx)
{
	devices_run *d = ctx;
	const wire_staff_member *m = &d->e->sl.members[d->next];
	wire_devlist *newer;
	const wire_devlist *l = d->listed;
	size_t i;

	if (status == PARLEY_E_NO_KEYS) { /* a member without keys: no device to encrypt to */
		d->next++;
		devices_next(c, d);
		return;
	}
	newer = status == PARLEY_OK ? parley__malloc(sizeof(*newer)) : NULL;
	if (newer == NULL) {
		devices_finish(c, d, status != PARLEY_OK ? status : PARLEY_E_NOMEM);
		return;
	}
	if (d->listed->n > 0 &&
	    client__entity_member_devlist(r->signed_device_list.data, r->signed_device_list.len, m->account_id,
					  m->account_key, newer) == PARLEY_OK &&
	    newer->version > d->listed->version)
		l = newer;
	for (i = 0; i < l->n && status == PARLEY_OK; i++)
		status = add_device(d, m->handle, l->dev[i].device_id, 1);
	for (i = 0; i < r->n_bundles && status == PARLEY_OK; i++) {
		const Parley__Wire__PreKeyBundle *b = r->bundles[i];
		const wire_devlist_entry *e = wire__devlist_find(l, b->device_id);

		if (e != NULL && b->identity_key.len == sizeof(e->identity_key) &&
		    memcmp(b->identity_key.data, e->identity_key, sizeof(e->identity_key)) == 0)
			continue; /* counted above */
		status = add_device(d, m->handle, b->device_id, 0);
		if (d->first_bad[0] == '\0')
			snprintf(d->first_bad, sizeof(d->first_bad),
				 "device %u of %s is not in its signed device list: left out", (unsigned)b->device_id,
				 m->handle);
		if (c->ev.on_error != NULL)
			c->ev.on_error(c, PARLEY_E_DEVICE_NOT_LISTED, m->handle, b->device_id, c->ev.user);
	}
	parley__free(newer);
	if (status != PARLEY_OK) {
		devices_finish(c, d, status);
		return;
	}
	d->next++;
	devices_next(c, d);
}

static void devices_next(parley_client *c, devices_run *d)
{
	const wire_staff_member *m;
	int rc;

	if (d->next >= d->e->sl.n) {
		devices_finish(c, d, PARLEY_OK);
		return;
	}
	m = &d->e->sl.members[d->next];
	if (client__entity_member_devlist(m->devlist, m->devlist_len, m->account_id, m->account_key, d->listed) !=
	    PARLEY_OK)
		memset(d->listed, 0, sizeof(*d->listed)); /* no verified device: every served one is left out */
	rc = client__e2e_fetch_bundles(c, m->handle, 0, devices_on_bundles, d);
	if (rc != PARLEY_OK)
		devices_finish(c, d, rc);
}

static void devices_on_entity(parley_client *c, parley_err st, parley_entity *e, void *user)
{
	devices_run *d = user;

	if (st != PARLEY_OK) {
		devices_finish(c, d, st);
		return;
	}
	d->e = e;
	devices_next(c, d);
}

parley_err parley_entity_devices_start(parley_client *c, const char *entity, parley_entity_devices_cb cb, void *user)
{
	devices_run *d;
	parley_err rc;

	if (c == NULL || cb == NULL)
		return PARLEY_E_INVAL;
	d = parley__calloc(1, sizeof(*d));
	if (d == NULL || (d->listed = parley__malloc(sizeof(*d->listed))) == NULL) {
		parley__free(d);
		return PARLEY_E_NOMEM;
	}
	d->cb = cb;
	d->user = user;
	rc = parley_entity_get_start(c, entity, devices_on_entity, d);
	if (rc != PARLEY_OK) {
		parley__free(d->listed);
		parley__free(d);
	}
	return rc;
}

typedef struct devices_sync {
	int done;
	parley_err status;
	parley_entity_device *out;
	size_t max, n, left_out;
} devices_sync;

static void sync_devices(parley_client *c, parley_err st, const parley_entity_device *devs, size_t n, size_t left_out,
			 void *user)
{
	devices_sync *s = user;
	s->status = st;
	s->n = n;
	s->left_out = left_out;
	if (n > 0 && s->max > 0)
		memcpy(s->out, devs, (n < s->max ? n : s->max) * sizeof(*devs));
	s->done = 1;
}

parley_err parley_entity_devices(parley_client *c, const char *entity, parley_entity_device *out, size_t max,
				 size_t *n, size_t *left_out)
{
	devices_sync s = {0};
	parley_err rc;

	if (n == NULL || (out == NULL && max > 0))
		return PARLEY_E_INVAL;
	*n = 0;
	REFUSE_NESTED(c);
	s.out = out;
	s.max = max;
	rc = parley_entity_devices_start(c, entity, sync_devices, &s);
	if (rc == PARLEY_OK && client__wait(c, &s.done) != PARLEY_OK && !s.done)
		client__conn_fail_all(c, PARLEY_E_INTERNAL);
	if (rc == PARLEY_OK)
		rc = s.status;
	if (rc != PARLEY_OK)
		return rc;
	*n = s.n;
	if (left_out != NULL)
		*left_out = s.left_out;
	return PARLEY_OK;
}
