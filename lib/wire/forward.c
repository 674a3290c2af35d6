/* Forward bundle / history chunk codec (forward.h). protobuf-c unpacks through parley__malloc; the size
 * bound comes first, so what it allocates stays proportional to at most WIRE_FORWARD_MAX_BYTES. */
#include "wire/forward.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <parley/error.h>
#include <parley/signal_group.h>
#include <parley/thread.h>

#include "common/alloc.h"
#include "wire/scan.h"
#include "wire/threadev.h"

#define INVALID PARLEY_E_FORWARD_INVALID
/* header of a chunk: forward_id and thread_id (tag + 10-byte varint each), seq (tag + 5) */
#define CHUNK_HEADER_MAX (11u + 11u + 6u)

static void *pb_alloc(void *data, size_t size)
{
	(void)data;
	return parley__malloc(size);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	parley__free(p);
}

static ProtobufCAllocator allocator = {pb_alloc, pb_free, NULL};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen != 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return INVALID;
}

static int handle_ok(const char *h)
{
	return h != NULL && wire__handle_valid(h);
}

static int check_key(Parley__Wire__ForwardSenderKey *const *keys, size_t i, char *err, size_t errlen)
{
	const Parley__Wire__ForwardSenderKey *k = keys[i];

	if (!handle_ok(k->handle))
		return fail(err, errlen, "forward bundle: sender key %zu names no valid handle", i);
	if (k->device == 0)
		return fail(err, errlen, "forward bundle: sender key %zu (%s) has device 0", i, k->handle);
	if (k->distribution.len == 0 || k->distribution.len > PARLEY_GROUP_DISTRIBUTION_MAX)
		return fail(err, errlen, "forward bundle: sender key of %s device %u has %zu bytes (1..%u)",
			    k->handle, (unsigned)k->device, k->distribution.len, PARLEY_GROUP_DISTRIBUTION_MAX);
	/* one key per device: a second would silently override the first on import */
	for (size_t j = 0; j < i; j++)
		if (keys[j]->device == k->device && strcmp(keys[j]->handle, k->handle) == 0)
			return fail(err, errlen, "forward bundle: two sender keys for %s device %u", k->handle,
				    (unsigned)k->device);
	return PARLEY_OK;
}

int wire__forward_bundle_check(const Parley__Wire__ForwardBundle *b, char *err, size_t errlen)
{
	size_t note_len;
	int rc;

	if (b == NULL)
		return PARLEY_E_INVAL;
	if (b->forward_id == 0 || b->thread_id == 0)
		return fail(err, errlen, "forward bundle: no forward id or thread id");
	if (!handle_ok(b->entity))
		return fail(err, errlen, "forward bundle: the entity is not a valid handle");
	if (b->staff_version == 0)
		return fail(err, errlen, "forward bundle: no staff list version");
	if (b->n_events == 0 || b->n_events > WIRE_FORWARD_MAX_EVENTS)
		return fail(err, errlen, "forward bundle: %zu events (1..%d)", b->n_events, WIRE_FORWARD_MAX_EVENTS);
	for (size_t i = 0; i < b->n_events; i++)
		if (b->events[i].len == 0 || b->events[i].len > WIRE_THREADEV_MAX_BYTES)
			return fail(err, errlen, "forward bundle: event %zu has %zu bytes (1..%d)", i, b->events[i].len,
				    WIRE_THREADEV_MAX_BYTES);
	if (b->n_sender_keys > WIRE_FORWARD_MAX_KEYS)
		return fail(err, errlen, "forward bundle: %zu sender keys (at most %d)", b->n_sender_keys,
			    WIRE_FORWARD_MAX_KEYS);
	for (size_t i = 0; i < b->n_sender_keys; i++)
		if ((rc = check_key(b->sender_keys, i, err, errlen)) != PARLEY_OK)
			return rc;
	note_len = b->note != NULL ? strlen(b->note) : 0;
	if (note_len > PARLEY_THREAD_NOTE_MAX)
		return fail(err, errlen, "forward bundle: the note has %zu bytes (at most %d)", note_len,
			    PARLEY_THREAD_NOTE_MAX);
	if (!wire__utf8_valid((const uint8_t *)(b->note != NULL ? b->note : ""), note_len))
		return fail(err, errlen, "forward bundle: the note is not UTF-8");
	if (b->history_total > PARLEY_THREAD_HISTORY_MAX)
		return fail(err, errlen, "forward bundle: %u history messages (at most %d)", (unsigned)b->history_total,
			    PARLEY_THREAD_HISTORY_MAX);
	/* every chunk carries at least one message, and history means at least one chunk */
	if ((b->history_total == 0) != (b->history_chunks == 0) || b->history_chunks > b->history_total)
		return fail(err, errlen, "forward bundle: %u history chunks for %u messages",
			    (unsigned)b->history_chunks, (unsigned)b->history_total);
	if (parley__wire__forward_bundle__get_packed_size(b) > WIRE_FORWARD_MAX_BYTES)
		return fail(err, errlen, "forward bundle: larger than %u bytes", WIRE_FORWARD_MAX_BYTES);
	return PARLEY_OK;
}

static int check_entry(const Parley__Wire__ForwardHistoryEntry *e, size_t i, char *err, size_t errlen)
{
	if (!handle_ok(e->sender))
		return fail(err, errlen, "forwarded history: entry %zu names no valid sender", i);
	if (e->sender_device == 0)
		return fail(err, errlen, "forwarded history: entry %zu has device 0", i);
	if (e->body.len == 0 || e->body.len > PARLEY_MESSAGE_MAX)
		return fail(err, errlen, "forwarded history: entry %zu has %zu bytes (1..%d)", i, e->body.len,
			    PARLEY_MESSAGE_MAX);
	return PARLEY_OK;
}

int wire__forward_history_check(const Parley__Wire__ForwardHistory *h, char *err, size_t errlen)
{
	int rc;

	if (h == NULL)
		return PARLEY_E_INVAL;
	if (h->forward_id == 0 || h->thread_id == 0)
		return fail(err, errlen, "forwarded history: no forward id or thread id");
	if (h->n_entries == 0 || h->n_entries > PARLEY_THREAD_HISTORY_MAX)
		return fail(err, errlen, "forwarded history: %zu entries (1..%d)", h->n_entries,
			    PARLEY_THREAD_HISTORY_MAX);
	if (h->seq >= PARLEY_THREAD_HISTORY_MAX)
		return fail(err, errlen, "forwarded history: chunk %u (at most %d chunks)", (unsigned)h->seq,
			    PARLEY_THREAD_HISTORY_MAX);
	for (size_t i = 0; i < h->n_entries; i++)
		if ((rc = check_entry(h->entries[i], i, err, errlen)) != PARLEY_OK)
			return rc;
	if (parley__wire__forward_history__get_packed_size(h) > WIRE_FORWARD_MAX_BYTES)
		return fail(err, errlen, "forwarded history: larger than %u bytes", WIRE_FORWARD_MAX_BYTES);
	return PARLEY_OK;
}

/* The size bound before protobuf-c allocates anything; a NULL unpack is malformed input or no memory
 * (protobuf-c does not say which: the caller's next allocation will tell soon enough). */
static int pre_unpack(const uint8_t *buf, size_t len, const char *what, char *err, size_t errlen)
{
	if (buf == NULL || len == 0)
		return fail(err, errlen, "%s: empty", what);
	if (len > WIRE_FORWARD_MAX_BYTES)
		return fail(err, errlen, "%s: %zu bytes (at most %u)", what, len, WIRE_FORWARD_MAX_BYTES);
	return PARLEY_OK;
}

int wire__forward_bundle_decode(const uint8_t *buf, size_t len, Parley__Wire__ForwardBundle **out, char *err,
				size_t errlen)
{
	Parley__Wire__ForwardBundle *b;
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if ((rc = pre_unpack(buf, len, "forward bundle", err, errlen)) != PARLEY_OK)
		return rc;
	b = parley__wire__forward_bundle__unpack(&allocator, len, buf);
	if (b == NULL)
		return fail(err, errlen, "forward bundle: malformed");
	rc = wire__forward_bundle_check(b, err, errlen);
	if (rc != PARLEY_OK) {
		wire__forward_bundle_free(b);
		return rc;
	}
	*out = b;
	return PARLEY_OK;
}

void wire__forward_bundle_free(Parley__Wire__ForwardBundle *b)
{
	if (b != NULL)
		parley__wire__forward_bundle__free_unpacked(b, &allocator);
}

int wire__forward_history_decode(const uint8_t *buf, size_t len, Parley__Wire__ForwardHistory **out, char *err,
				 size_t errlen)
{
	Parley__Wire__ForwardHistory *h;
	int rc;

	if (out == NULL)
		return PARLEY_E_INVAL;
	*out = NULL;
	if ((rc = pre_unpack(buf, len, "forwarded history", err, errlen)) != PARLEY_OK)
		return rc;
	h = parley__wire__forward_history__unpack(&allocator, len, buf);
	if (h == NULL)
		return fail(err, errlen, "forwarded history: malformed");
	rc = wire__forward_history_check(h, err, errlen);
	if (rc != PARLEY_OK) {
		wire__forward_history_free(h);
		return rc;
	}
	*out = h;
	return PARLEY_OK;
}

void wire__forward_history_free(Parley__Wire__ForwardHistory *h)
{
	if (h != NULL)
		parley__wire__forward_history__free_unpacked(h, &allocator);
}

static size_t varint_len(size_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

int wire__forward_history_split(Parley__Wire__ForwardHistoryEntry *const *entries, size_t n, size_t *starts,
				size_t cap, size_t *n_chunks, char *err, size_t errlen)
{
	size_t used = CHUNK_HEADER_MAX, k = 0;
	int rc;

	if (n_chunks == NULL || (n != 0 && (entries == NULL || starts == NULL)))
		return PARLEY_E_INVAL;
	*n_chunks = 0;
	if (n > PARLEY_THREAD_HISTORY_MAX)
		return fail(err, errlen, "forwarded history: %zu messages (at most %d)", n, PARLEY_THREAD_HISTORY_MAX);
	for (size_t i = 0; i < n; i++) {
		size_t sz;
		if ((rc = check_entry(entries[i], i, err, errlen)) != PARLEY_OK)
			return rc;
		sz = parley__wire__forward_history_entry__get_packed_size(entries[i]);
		sz += 1 + varint_len(sz); /* the field's tag and length */
		/* greedy: a new chunk when this entry would overflow the current one (or there is none) */
		if (k == 0 || used + sz > WIRE_FORWARD_CHUNK_BYTES) {
			if (k == cap)
				return PARLEY_E_INVAL;
			starts[k++] = i;
			used = CHUNK_HEADER_MAX;
		}
		used += sz;
	}
	*n_chunks = k;
	return PARLEY_OK;
}
