/* parley_device_list: an immutable copy of a ListDevicesResponse, independent of the decoded frame
 * (which is freed as soon as the response is handled). One allocation for the entries, one per name. */
#include <string.h>

#include "client/client_internal.h"
#include "common/alloc.h"

typedef struct device_entry {
	uint32_t id;
	char *name;
	uint8_t key[PARLEY_DEVICE_KEY_BYTES];
	uint64_t created_ms;
	uint64_t last_seen_ms;
	int is_self;
} device_entry;

struct parley_device_list {
	size_t count;
	device_entry *entries;
};

int client__device_list_from_wire(const Parley__Wire__ListDevicesResponse *r, uint32_t self_id,
				  parley_device_list **out)
{
	parley_device_list *l;
	size_t i;
	int rc;

	*out = NULL;
	/* wire__decode_frame already bounded n_devices by the limits; check the key sizes we copy. */
	for (i = 0; i < r->n_devices; i++) {
		if (r->devices[i] == NULL || r->devices[i]->device_key.len != PARLEY_DEVICE_KEY_BYTES)
			return PARLEY_E_PROTO_MALFORMED;
	}
	l = parley__calloc(1, sizeof(*l));
	if (l == NULL)
		return PARLEY_E_NOMEM;
	if (r->n_devices > 0) {
		l->entries = parley__calloc(r->n_devices, sizeof(*l->entries));
		if (l->entries == NULL) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
	}
	for (i = 0; i < r->n_devices; i++) {
		const Parley__Wire__Device *d = r->devices[i];
		device_entry *e = &l->entries[i];

		e->name = parley__strndup(d->name != NULL ? d->name : "", PARLEY_DEVICE_NAME_MAX);
		if (e->name == NULL) {
			rc = PARLEY_E_NOMEM;
			goto out;
		}
		l->count = i + 1; /* so a failure frees exactly the names made so far */
		e->id = d->device_id;
		memcpy(e->key, d->device_key.data, PARLEY_DEVICE_KEY_BYTES);
		e->created_ms = d->created_ms;
		e->last_seen_ms = d->last_seen_ms;
		e->is_self = d->device_id == self_id;
	}
	rc = PARLEY_OK;
out:
	if (rc != PARLEY_OK) {
		parley_device_list_free(l);
		return rc;
	}
	*out = l;
	return PARLEY_OK;
}

size_t parley_device_list_count(const parley_device_list *l)
{
	return l != NULL ? l->count : 0;
}

parley_err parley_device_list_get(const parley_device_list *l, size_t i, parley_device_info *out)
{
	const device_entry *e;

	if (l == NULL || out == NULL || i >= l->count)
		return PARLEY_E_INVAL;
	e = &l->entries[i];
	out->id = e->id;
	out->name = e->name;
	out->key = e->key;
	out->created_ms = e->created_ms;
	out->last_seen_ms = e->last_seen_ms;
	out->is_self = e->is_self;
	return PARLEY_OK;
}

void parley_device_list_free(parley_device_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->count; i++)
		parley__free(l->entries[i].name);
	parley__free(l->entries);
	parley__free(l);
}
