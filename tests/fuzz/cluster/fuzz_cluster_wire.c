/* libFuzzer: the cluster bus's wire formats (server/cluster/wire.h) on arbitrary bytes, as another
 * node, a broken one or anyone able to publish on the NATS subjects could send them. The first byte
 * says which parser (even: an item, odd: a presence message); the rest is the message. Properties: a
 * parser never reads past the message; an accepted item's data lies inside it, is within the bound and
 * re-encodes to the same header; an accepted presence message's entries all parse and fill its body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"

#define MAX_DATA 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void item(const uint8_t *p, size_t n)
{
	cluster_item it;
	if (!cluster__item_parse(p, n, MAX_DATA, &it))
		return;
	if (it.len > MAX_DATA || it.data != p + CLUSTER_ITEM_HEADER || CLUSTER_ITEM_HEADER + it.len != n)
		abort();
	if (it.handler == CLUSTER_HANDLER_RESYNC && it.len != 0)
		abort();
	uint8_t h[CLUSTER_ITEM_HEADER];
	cluster__item_header(h, &it, it.origin, (uint32_t)it.len);
	if (memcmp(h, p, CLUSTER_ITEM_HEADER) != 0)
		abort();
}

static void presence(const uint8_t *p, size_t n)
{
	cluster_pres m;
	if (!cluster__pres_parse(p, n, &m))
		return;
	if (m.origin == 0 || m.body != p + CLUSTER_PRES_HEADER || m.end != p + n)
		abort();
	if (m.kind > CLUSTER_PRES_SNAPSHOT_MORE)
		return;
	const uint8_t *q = m.body;
	uint64_t account;
	char handle[CLUSTER_MAX_HANDLE + 1];
	for (unsigned i = 0; i < m.count; i++)
		if (!cluster__pres_get_entry(&q, m.end, &account, handle) || strlen(handle) > CLUSTER_MAX_HANDLE)
			abort();
	if (q != m.end || m.count > CLUSTER_PRES_CHUNK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* a copy of exactly the message: ASan then catches any read past its end */
	size_t n = size - 1;
	uint8_t *m = malloc(n ? n : 1);
	if (m == NULL)
		return 0;
	memcpy(m, data + 1, n);
	if (data[0] & 1)
		presence(m, n);
	else
		item(m, n);
	free(m);
	return 0;
}
