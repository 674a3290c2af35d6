/* In-memory parley_signal_store for tests and short-lived tools: flat arrays with linear search
 * (a handful of peers), every secret wiped when replaced or freed. */
#include <string.h>

#include <parley/error.h>
#include <parley/signal_store.h>

#include "common/alloc.h"
#include "crypto/crypto.h"

typedef struct blob_entry {
	char *name;
	uint32_t device_id;
	uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN]; /* sender keys only */
	uint8_t *data;
	size_t len;
} blob_entry;

typedef struct ident_entry {
	char *name;
	uint32_t device_id;
	uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN];
} ident_entry;

typedef struct mem_store {
	parley_keypair identity;
	uint32_t registration_id;
	ident_entry *idents;
	size_t n_idents;
	blob_entry *sessions;
	size_t n_sessions;
	blob_entry *sender_keys;
	size_t n_sender_keys;
	parley_prekey *prekeys;
	size_t n_prekeys;
	parley_signed_prekey *spks;
	size_t n_spks;
} mem_store;

/* Grow an array by one element (zeroed); NULL on allocation failure (array unchanged). Old memory
 * is wiped because these arrays hold secrets. */
static void *grow(void *arr, size_t n, size_t elem)
{
	uint8_t *p = parley__calloc(n + 1, elem);
	if (p == NULL)
		return NULL;
	if (n > 0) {
		memcpy(p, arr, n * elem);
		crypto__wipe(arr, n * elem);
	}
	parley__free(arr);
	return p;
}

static int same_addr(const char *name, uint32_t dev, const parley_signal_address *a)
{
	return dev == a->device_id && strcmp(name, a->name) == 0;
}

static int get_identity_keypair(void *user, parley_keypair *out)
{
	mem_store *s = user;
	*out = s->identity;
	return PARLEY_OK;
}

static int get_local_registration_id(void *user, uint32_t *out)
{
	mem_store *s = user;
	*out = s->registration_id;
	return PARLEY_OK;
}

static ident_entry *find_ident(mem_store *s, const parley_signal_address *a)
{
	for (size_t i = 0; i < s->n_idents; i++)
		if (same_addr(s->idents[i].name, s->idents[i].device_id, a))
			return &s->idents[i];
	return NULL;
}

static int save_identity(void *user, const parley_signal_address *addr, const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN],
			 int *replaced)
{
	mem_store *s = user;
	ident_entry *e = find_ident(s, addr), *arr;
	char *name;

	*replaced = 0;
	if (e != NULL) {
		*replaced = memcmp(e->key, key, PARLEY_SIGNAL_PUBKEY_LEN) != 0;
		memcpy(e->key, key, PARLEY_SIGNAL_PUBKEY_LEN);
		return PARLEY_OK;
	}
	name = parley__strdup(addr->name);
	if (name == NULL)
		return PARLEY_E_NOMEM;
	arr = grow(s->idents, s->n_idents, sizeof(*arr));
	if (arr == NULL) {
		parley__free(name);
		return PARLEY_E_NOMEM;
	}
	s->idents = arr;
	e = &s->idents[s->n_idents++];
	e->name = name;
	e->device_id = addr->device_id;
	memcpy(e->key, key, PARLEY_SIGNAL_PUBKEY_LEN);
	return PARLEY_OK;
}

static int is_trusted_identity(void *user, const parley_signal_address *addr,
			       const uint8_t key[PARLEY_SIGNAL_PUBKEY_LEN], parley_signal_direction dir, int *trusted)
{
	mem_store *s = user;
	ident_entry *e = find_ident(s, addr);
	(void)dir;
	*trusted = e == NULL || memcmp(e->key, key, PARLEY_SIGNAL_PUBKEY_LEN) == 0;
	return PARLEY_OK;
}

static int get_identity(void *user, const parley_signal_address *addr, uint8_t out[PARLEY_SIGNAL_PUBKEY_LEN])
{
	ident_entry *e = find_ident(user, addr);
	if (e == NULL)
		return PARLEY_E_NOT_FOUND;
	memcpy(out, e->key, PARLEY_SIGNAL_PUBKEY_LEN);
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- blobs (sessions, sender keys) */

static blob_entry *find_blob(blob_entry *arr, size_t n, const parley_signal_address *a, const uint8_t *dist)
{
	for (size_t i = 0; i < n; i++)
		if (same_addr(arr[i].name, arr[i].device_id, a) &&
		    (dist == NULL || memcmp(arr[i].dist, dist, PARLEY_SIGNAL_DISTRIBUTION_ID_LEN) == 0))
			return &arr[i];
	return NULL;
}

static void blob_free(blob_entry *e)
{
	if (e->data != NULL) {
		crypto__wipe(e->data, e->len);
		parley__free(e->data);
	}
	parley__free(e->name);
	memset(e, 0, sizeof(*e));
}

static int put_blob(blob_entry **arr, size_t *n, const parley_signal_address *a, const uint8_t *dist,
		    const uint8_t *data, size_t len)
{
	blob_entry *e = find_blob(*arr, *n, a, dist), *na;
	uint8_t *copy = parley__malloc(len > 0 ? len : 1);

	if (copy == NULL)
		return PARLEY_E_NOMEM;
	memcpy(copy, data, len);
	if (e == NULL) {
		char *name = parley__strdup(a->name);
		if (name == NULL) {
			parley__free(copy);
			return PARLEY_E_NOMEM;
		}
		na = grow(*arr, *n, sizeof(*na));
		if (na == NULL) {
			parley__free(name);
			parley__free(copy);
			return PARLEY_E_NOMEM;
		}
		*arr = na;
		e = &na[(*n)++];
		e->name = name;
		e->device_id = a->device_id;
		if (dist != NULL)
			memcpy(e->dist, dist, PARLEY_SIGNAL_DISTRIBUTION_ID_LEN);
	} else {
		crypto__wipe(e->data, e->len);
		parley__free(e->data);
	}
	e->data = copy;
	e->len = len;
	return PARLEY_OK;
}

static int load_session(void *user, const parley_signal_address *addr, const uint8_t **data, size_t *len)
{
	mem_store *s = user;
	blob_entry *e = find_blob(s->sessions, s->n_sessions, addr, NULL);
	if (e == NULL)
		return PARLEY_E_NOT_FOUND;
	*data = e->data;
	*len = e->len;
	return PARLEY_OK;
}

static int store_session(void *user, const parley_signal_address *addr, const uint8_t *data, size_t len)
{
	mem_store *s = user;
	return put_blob(&s->sessions, &s->n_sessions, addr, NULL, data, len);
}

static int delete_session(void *user, const parley_signal_address *addr)
{
	mem_store *s = user;
	blob_entry *e = find_blob(s->sessions, s->n_sessions, addr, NULL);
	if (e == NULL)
		return PARLEY_OK;
	blob_free(e);
	*e = s->sessions[--s->n_sessions];
	memset(&s->sessions[s->n_sessions], 0, sizeof(*e));
	return PARLEY_OK;
}

static int load_sender_key(void *user, const parley_signal_address *sender,
			   const uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t **data, size_t *len)
{
	mem_store *s = user;
	blob_entry *e = find_blob(s->sender_keys, s->n_sender_keys, sender, dist);
	if (e == NULL)
		return PARLEY_E_NOT_FOUND;
	*data = e->data;
	*len = e->len;
	return PARLEY_OK;
}

static int store_sender_key(void *user, const parley_signal_address *sender,
			    const uint8_t dist[PARLEY_SIGNAL_DISTRIBUTION_ID_LEN], const uint8_t *data, size_t len)
{
	mem_store *s = user;
	return put_blob(&s->sender_keys, &s->n_sender_keys, sender, dist, data, len);
}

/* ---------------------------------------------------------------- prekeys */

static int load_prekey(void *user, uint32_t id, parley_prekey *out)
{
	mem_store *s = user;
	for (size_t i = 0; i < s->n_prekeys; i++)
		if (s->prekeys[i].id == id) {
			*out = s->prekeys[i];
			return PARLEY_OK;
		}
	return PARLEY_E_NOT_FOUND;
}

static int store_prekey(void *user, const parley_prekey *pk)
{
	mem_store *s = user;
	parley_prekey *arr;
	for (size_t i = 0; i < s->n_prekeys; i++)
		if (s->prekeys[i].id == pk->id) {
			s->prekeys[i] = *pk;
			return PARLEY_OK;
		}
	arr = grow(s->prekeys, s->n_prekeys, sizeof(*arr));
	if (arr == NULL)
		return PARLEY_E_NOMEM;
	s->prekeys = arr;
	s->prekeys[s->n_prekeys++] = *pk;
	return PARLEY_OK;
}

static int remove_prekey(void *user, uint32_t id)
{
	mem_store *s = user;
	for (size_t i = 0; i < s->n_prekeys; i++)
		if (s->prekeys[i].id == id) {
			s->prekeys[i] = s->prekeys[--s->n_prekeys];
			crypto__wipe(&s->prekeys[s->n_prekeys], sizeof(s->prekeys[0]));
			return PARLEY_OK;
		}
	return PARLEY_OK;
}

static int load_signed_prekey(void *user, uint32_t id, parley_signed_prekey *out)
{
	mem_store *s = user;
	for (size_t i = 0; i < s->n_spks; i++)
		if (s->spks[i].id == id) {
			*out = s->spks[i];
			return PARLEY_OK;
		}
	return PARLEY_E_NOT_FOUND;
}

static int store_signed_prekey(void *user, const parley_signed_prekey *spk)
{
	mem_store *s = user;
	parley_signed_prekey *arr;
	for (size_t i = 0; i < s->n_spks; i++)
		if (s->spks[i].id == spk->id) {
			s->spks[i] = *spk;
			return PARLEY_OK;
		}
	arr = grow(s->spks, s->n_spks, sizeof(*arr));
	if (arr == NULL)
		return PARLEY_E_NOMEM;
	s->spks = arr;
	s->spks[s->n_spks++] = *spk;
	return PARLEY_OK;
}

static int remove_signed_prekey(void *user, uint32_t id)
{
	mem_store *s = user;
	for (size_t i = 0; i < s->n_spks; i++)
		if (s->spks[i].id == id) {
			s->spks[i] = s->spks[--s->n_spks];
			crypto__wipe(&s->spks[s->n_spks], sizeof(s->spks[0]));
			return PARLEY_OK;
		}
	return PARLEY_OK;
}

/* ---------------------------------------------------------------- lifecycle */

/* The callbacks, filled once; each store instance copies them and sets its own `user`. */
static const parley_signal_store mem_store_ops = {
	.get_identity_keypair = get_identity_keypair,
	.get_local_registration_id = get_local_registration_id,
	.save_identity = save_identity,
	.is_trusted_identity = is_trusted_identity,
	.get_identity = get_identity,
	.load_session = load_session,
	.store_session = store_session,
	.delete_session = delete_session,
	.load_prekey = load_prekey,
	.store_prekey = store_prekey,
	.remove_prekey = remove_prekey,
	.load_signed_prekey = load_signed_prekey,
	.store_signed_prekey = store_signed_prekey,
	.load_sender_key = load_sender_key,
	.store_sender_key = store_sender_key,
	.remove_signed_prekey = remove_signed_prekey,
};

int parley_signal_mem_store_new(parley_signal_store *out, const parley_keypair *identity, uint32_t registration_id)
{
	mem_store *s;
	if (out == NULL || identity == NULL)
		return PARLEY_E_INVAL;
	memset(out, 0, sizeof(*out));
	s = parley__calloc(1, sizeof(*s));
	if (s == NULL)
		return PARLEY_E_NOMEM;
	s->identity = *identity;
	s->registration_id = registration_id;
	*out = mem_store_ops;
	out->user = s;
	return PARLEY_OK;
}

void parley_signal_mem_store_free(parley_signal_store *store)
{
	mem_store *s;
	if (store == NULL || store->user == NULL)
		return;
	s = store->user;
	for (size_t i = 0; i < s->n_idents; i++)
		parley__free(s->idents[i].name);
	parley__free(s->idents);
	for (size_t i = 0; i < s->n_sessions; i++)
		blob_free(&s->sessions[i]);
	parley__free(s->sessions);
	for (size_t i = 0; i < s->n_sender_keys; i++)
		blob_free(&s->sender_keys[i]);
	parley__free(s->sender_keys);
	if (s->prekeys != NULL) {
		crypto__wipe(s->prekeys, s->n_prekeys * sizeof(*s->prekeys));
		parley__free(s->prekeys);
	}
	if (s->spks != NULL) {
		crypto__wipe(s->spks, s->n_spks * sizeof(*s->spks));
		parley__free(s->spks);
	}
	crypto__wipe(s, sizeof(*s));
	parley__free(s);
	memset(store, 0, sizeof(*store));
}
