/* The raw-wire staff model of t23 and t30 (staffmodel.h). */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>

#include "harness.h"
#include "staffmodel.h"

uint64_t sm_next_id;
static uint64_t rid = 100;
int sm_seen_removed;

void sm_mk(int port, tacct *a, const char *handle, int keys)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->handle, sizeof(a->handle), "%s", handle);
	IT_EQ(pw_register(port, handle, a->pk, a->sk, &a->fd), PARLEY_OK);
	if (keys)
		IT_EQ(pw_upload_keys(a->fd, &a->regid, 1, 1), PARLEY_OK);
	a->id = ++sm_next_id;
}

void sm_mk_many(int port, int keys, const char *handles, tacct *const *out)
{
	size_t k = 0;
	for (const char *h = handles; *h != '\0';) {
		char one[33];
		size_t n = strcspn(h, " ");
		if (n > 0 && n < sizeof(one)) {
			memcpy(one, h, n);
			one[n] = '\0';
			sm_mk(port, out[k++], one, keys);
		}
		h += n;
		h += strspn(h, " ");
	}
}

void sm_model_init(model *md, const char *handle)
{
	memset(md, 0, sizeof(*md));
	snprintf(md->handle, sizeof(md->handle), "%s", handle);
	crypto__keypair_generate(&md->ek);
}

void sm_model_set(model *md, const tacct *a, int role, int primary, uint8_t rules)
{
	size_t i = 0;
	while (i < md->n && md->m[i].account_id < a->id)
		i++;
	if (i < md->n && md->m[i].account_id == a->id) {
		memmove(&md->m[i], &md->m[i + 1], (md->n - i - 1) * sizeof(md->m[0]));
		md->n--;
	}
	if (role == 0 || md->n >= WIRE_STAFF_MAX)
		return;
	memmove(&md->m[i + 1], &md->m[i], (md->n - i) * sizeof(md->m[0]));
	md->n++;
	wire_staff_member *m = &md->m[i];
	memset(m, 0, sizeof(*m));
	m->account_id = a->id;
	snprintf(m->handle, sizeof(m->handle), "%s", a->handle);
	m->role = (uint8_t)role;
	m->flags = primary ? WIRE_STAFF_PRIMARY : 0;
	m->rules_mask = m->rules_values = rules;
	/* the registry keeps the account key as given: any well-formed key does */
	m->account_key[0] = CRYPTO_SIGNAL_KEY_TYPE;
	memset(m->account_key + 1, (int)a->id, 32);
}

void sm_sign(const model *md, uint64_t version, const crypto_keypair *key, dynbuf *out)
{
	wire_stafflist l;
	const crypto_keypair *k = key != NULL ? key : &md->ek;
	memset(&l, 0, sizeof(l));
	l.entity_id = version == 1 ? 0 : md->entity_id; /* at create the signer does not know the id yet */
	snprintf(l.handle, sizeof(l.handle), "%s", md->handle);
	snprintf(l.display_name, sizeof(l.display_name), "%s Support", md->handle);
	crypto__pubkey_serialize(l.entity_key, k->pub);
	l.version = version;
	l.timestamp_ms = it_now_ms();
	l.lock_mode = md->lock_mode;
	l.admins_exempt = md->admins_exempt;
	l.n = md->n;
	l.members = (wire_staff_member *)md->m;
	dynbuf__init(out, WIRE_STAFFLIST_MAX_BYTES);
	IT_EQ(wire__stafflist_sign(&l, k->priv, out), PARLEY_OK);
}

int sm_call(int fd, Parley__Wire__Request *r, wire_frame *keep)
{
	r->id = ++rid;
	if (pw_send_request(fd, r) != 0)
		return -1;
	for (;;) {
		wire_frame f;
		if (pw_recv(fd, &f, 5000) != 0)
			return -1;
		const Parley__Wire__Frame *fr = f.frame;
		if (fr->kind_case == PARLEY__WIRE__FRAME__KIND_PUSH &&
		    fr->push->body_case == PARLEY__WIRE__PUSH__BODY_ENTITY_STAFF_CHANGED &&
		    fr->push->entity_staff_changed->removed)
			sm_seen_removed++;
		if (fr->kind_case == PARLEY__WIRE__FRAME__KIND_RESPONSE && fr->response->id == r->id) {
			int st = (int)fr->response->status;
			if (keep != NULL)
				*keep = f;
			else
				wire__frame_free(&f);
			return st;
		}
		wire__frame_free(&f);
	}
}

int sm_ent_create(int fd, model *md)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityCreateRequest m = PARLEY__WIRE__ENTITY_CREATE_REQUEST__INIT;
	uint8_t key[33];
	char name[80];
	dynbuf l;
	wire_frame f;
	sm_sign(md, 1, NULL, &l);
	crypto__pubkey_serialize(key, md->ek.pub);
	snprintf(name, sizeof(name), "%s Support", md->handle);
	m.handle = md->handle;
	m.display_name = name;
	m.entity_key.data = key;
	m.entity_key.len = 33;
	m.signed_staff_list.data = l.data;
	m.signed_staff_list.len = l.len;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_CREATE;
	r.entity_create = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK) {
		md->entity_id = f.frame->response->entity_create->entity_id;
		md->version = 1;
	}
	if (st >= 0)
		wire__frame_free(&f);
	dynbuf__free(&l);
	return st;
}

void sm_entity(model *md, const tacct *primary, const char *handle, uint8_t lock_mode, uint8_t admins_exempt)
{
	sm_model_init(md, handle);
	md->lock_mode = lock_mode;
	md->admins_exempt = admins_exempt;
	sm_model_set(md, primary, WIRE_ROLE_ADMIN, 1, 0);
	IT_EQ(sm_ent_create(primary->fd, md), PARLEY_OK);
}

int sm_member(int fd, const model *md, const tacct *who, int remove, int transfer, uint64_t version,
	      const crypto_keypair *key)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityMemberRequest m = PARLEY__WIRE__ENTITY_MEMBER_REQUEST__INIT;
	dynbuf l;
	sm_sign(md, version, key, &l);
	m.entity = (char *)md->handle;
	m.member = (char *)who->handle;
	m.role = remove || transfer ? PARLEY__WIRE__ENTITY_ROLE__ROLE_NONE : PARLEY__WIRE__ENTITY_ROLE__ROLE_ADMIN;
	m.remove = remove;
	m.transfer_primary = transfer;
	m.signed_staff_list.data = l.data;
	m.signed_staff_list.len = l.len;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_MEMBER;
	r.entity_member = &m;
	int st = sm_call(fd, &r, NULL);
	dynbuf__free(&l);
	return st;
}

int sm_code(int fd, const char *entity, uint32_t ttl_s, char *code, size_t cap)
{
	return sm_code_role(fd, entity, ttl_s, 0, code, cap);
}

int sm_code_role(int fd, const char *entity, uint32_t ttl_s, int role, char *code, size_t cap)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityCodeRequest m = PARLEY__WIRE__ENTITY_CODE_REQUEST__INIT;
	wire_frame f;
	m.entity = (char *)entity;
	m.ttl_s = ttl_s;
	m.role = (Parley__Wire__EntityRole)role;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_CODE;
	r.entity_code = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK) {
		if (code != NULL)
			snprintf(code, cap, "%s", f.frame->response->entity_code->code);
		IT_EQ(strlen(f.frame->response->entity_code->code), 14);
		IT_CHECK(f.frame->response->entity_code->expires_ms > it_now_ms());
	}
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

void sm_cand_key(uint8_t key[33])
{
	key[0] = CRYPTO_SIGNAL_KEY_TYPE;
	memset(key + 1, 0x42, 32);
}

int sm_join(int fd, const char *entity, const char *code, const char *devlist, uint64_t *req_id, uint64_t *retry)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityJoinRequest m = PARLEY__WIRE__ENTITY_JOIN_REQUEST__INIT;
	uint8_t key[33];
	wire_frame f;
	sm_cand_key(key);
	m.entity = (char *)entity;
	m.code = (char *)code;
	m.account_key.data = key;
	m.account_key.len = 33;
	if (devlist != NULL) {
		m.signed_device_list.data = (uint8_t *)devlist;
		m.signed_device_list.len = strlen(devlist);
	}
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_JOIN;
	r.entity_join = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && req_id != NULL)
		*req_id = f.frame->response->entity_join->request_id;
	if (st >= 0 && retry != NULL)
		*retry = f.frame->response->retry_after_ms;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int sm_decide(int fd, const char *entity, uint64_t req_id, int approve, const dynbuf *list, const uint8_t *appr,
	      size_t appr_len, uint64_t *version)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityDecideRequest m = PARLEY__WIRE__ENTITY_DECIDE_REQUEST__INIT;
	wire_frame f;
	if (list != NULL) {
		m.signed_staff_list.data = list->data;
		m.signed_staff_list.len = list->len;
	}
	m.approval.data = (uint8_t *)appr;
	m.approval.len = appr_len;
	m.entity = (char *)entity;
	m.request_id = req_id;
	m.approve = approve;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_DECIDE;
	r.entity_decide = &m;
	int st = sm_call(fd, &r, &f);
	if (st == PARLEY_OK && version != NULL)
		*version = f.frame->response->entity_decide->staff_version;
	if (st >= 0)
		wire__frame_free(&f);
	return st;
}

int sm_staff(int fd, const model *md, uint64_t version)
{
	Parley__Wire__Request r = PARLEY__WIRE__REQUEST__INIT;
	Parley__Wire__EntityStaffRequest m = PARLEY__WIRE__ENTITY_STAFF_REQUEST__INIT;
	dynbuf l;
	sm_sign(md, version, NULL, &l);
	m.entity = (char *)md->handle;
	m.signed_staff_list.data = l.data;
	m.signed_staff_list.len = l.len;
	r.body_case = PARLEY__WIRE__REQUEST__BODY_ENTITY_STAFF;
	r.entity_staff = &m;
	int st = sm_call(fd, &r, NULL);
	dynbuf__free(&l);
	return st;
}
