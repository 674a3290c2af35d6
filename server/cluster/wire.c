/* The bus's wire formats: see wire.h. */
#include <string.h>

#include "cluster/wire.h"

void cluster__put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void cluster__put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t cluster__get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t cluster__get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void cluster__item_header(uint8_t *h, const cluster_item *it, uint64_t origin, uint32_t len)
{
	h[0] = CLUSTER_WIRE_VERSION;
	h[1] = it->service;
	h[2] = it->handler;
	h[3] = it->policy;
	cluster__put_u32(h + 4, it->device);
	cluster__put_u64(h + 8, origin);
	cluster__put_u64(h + 16, it->account);
	cluster__put_u64(h + 24, it->u64);
	cluster__put_u32(h + 32, len);
}

int cluster__item_parse(const uint8_t *p, size_t n, size_t max_data, cluster_item *it)
{
	if (n < CLUSTER_ITEM_HEADER || p[0] != CLUSTER_WIRE_VERSION)
		return 0;
	*it = (cluster_item){
		.service = p[1],
		.handler = p[2],
		.policy = p[3],
		.device = cluster__get_u32(p + 4),
		.origin = cluster__get_u64(p + 8),
		.account = cluster__get_u64(p + 16),
		.u64 = cluster__get_u64(p + 24),
		.len = cluster__get_u32(p + 32),
		.data = p + CLUSTER_ITEM_HEADER,
	};
	if (it->len != n - CLUSTER_ITEM_HEADER || it->len > max_data)
		return 0;
	return it->handler != CLUSTER_HANDLER_RESYNC || it->len == 0;
}

void cluster__pres_header(uint8_t *h, enum cluster_pres_kind kind, unsigned count, uint64_t origin)
{
	h[0] = CLUSTER_WIRE_VERSION;
	h[1] = (uint8_t)kind;
	h[2] = (uint8_t)(count & 0xff);
	h[3] = (uint8_t)(count >> 8);
	cluster__put_u64(h + 4, origin);
}

size_t cluster__pres_put_entry(uint8_t *p, uint64_t account, const char *handle)
{
	size_t n = handle != NULL ? strnlen(handle, CLUSTER_MAX_HANDLE) : 0;
	cluster__put_u64(p, account);
	p[8] = (uint8_t)n;
	if (n > 0)
		memcpy(p + 9, handle, n);
	return 9 + n;
}

int cluster__pres_get_entry(const uint8_t **p, const uint8_t *end, uint64_t *account,
			    char handle[CLUSTER_MAX_HANDLE + 1])
{
	if (end - *p < 9)
		return 0;
	size_t n = (*p)[8];
	if (n > CLUSTER_MAX_HANDLE || (size_t)(end - *p) < 9 + n)
		return 0;
	*account = cluster__get_u64(*p);
	memcpy(handle, *p + 9, n);
	handle[n] = '\0';
	*p += 9 + n;
	return 1;
}

/* 1 if [p, end) holds exactly n well-formed entries */
static int entries_valid(const uint8_t *p, const uint8_t *end, unsigned n)
{
	uint64_t account;
	char handle[CLUSTER_MAX_HANDLE + 1];
	for (unsigned i = 0; i < n; i++)
		if (!cluster__pres_get_entry(&p, end, &account, handle))
			return 0;
	return p == end;
}

int cluster__pres_parse(const uint8_t *p, size_t n, cluster_pres *m)
{
	if (n < CLUSTER_PRES_HEADER || p[0] != CLUSTER_WIRE_VERSION)
		return 0;
	*m = (cluster_pres){
		.kind = p[1],
		.count = (unsigned)(p[2] | p[3] << 8),
		.origin = cluster__get_u64(p + 4),
		.body = p + CLUSTER_PRES_HEADER,
		.end = p + n,
	};
	if (m->origin == 0)
		return 0;
	switch (m->kind) {
	case CLUSTER_PRES_ONLINE:
	case CLUSTER_PRES_OFFLINE:
	case CLUSTER_PRES_SNAPSHOT_FIRST:
	case CLUSTER_PRES_SNAPSHOT_MORE:
		return m->count <= CLUSTER_PRES_CHUNK && entries_valid(m->body, m->end, m->count);
	case CLUSTER_PRES_SYNC:
		if (n != CLUSTER_PRES_HEADER + 8)
			return 0;
		m->target = cluster__get_u64(m->body);
		return 1;
	case CLUSTER_PRES_HEARTBEAT:
		return n == CLUSTER_PRES_HEADER;
	default:
		return 0;
	}
}
