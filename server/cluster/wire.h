/* The bus's wire formats, as pure functions over buffers (sans-I/O): what bus.c and presence.c put on
 * NATS and what they accept from it. No NATS, no locks, no cluster state here, so every parser can be
 * unit-tested and fuzzed (tests/fuzz/cluster) on its own. Integers are little-endian.
 *
 * Item (parley.a.<account>), CLUSTER_ITEM_HEADER bytes then `len` bytes of data:
 *   version u8, service u8, handler u8, policy u8, device u32, origin u64, account u64, u64, len u32
 * Presence (parley.p, parley.p.sync, parley.hb), CLUSTER_PRES_HEADER bytes:
 *   version u8, kind u8, count u16, origin u64
 * then for edges and snapshots `count` entries (account u64, handle length u8 <= CLUSTER_MAX_HANDLE,
 * handle), for a sync request the target node id u64, for a heartbeat nothing. */
#ifndef PARLEYD_CLUSTER_WIRE_H
#define PARLEYD_CLUSTER_WIRE_H
#include <stddef.h>
#include <stdint.h>

#include "cluster/bus.h"

#define CLUSTER_WIRE_VERSION 1u
#define CLUSTER_PRES_HEADER 12u
#define CLUSTER_PRES_CHUNK 1024u /* entries per presence message: at most 42 KiB */
#define CLUSTER_PRES_ENTRY_MAX (9u + CLUSTER_MAX_HANDLE)

enum cluster_pres_kind {
	CLUSTER_PRES_ONLINE = 1,
	CLUSTER_PRES_OFFLINE = 2,
	CLUSTER_PRES_SNAPSHOT_FIRST = 3, /* forget what you hold for this node, then these are online */
	CLUSTER_PRES_SNAPSHOT_MORE = 4,
	CLUSTER_PRES_SYNC = 5,           /* target node id (0: everyone): publish your snapshot */
	CLUSTER_PRES_HEARTBEAT = 6,
};

void cluster__put_u32(uint8_t *p, uint32_t v);
void cluster__put_u64(uint8_t *p, uint64_t v);
uint32_t cluster__get_u32(const uint8_t *p);
uint64_t cluster__get_u64(const uint8_t *p);

/* Writes an item's header (CLUSTER_ITEM_HEADER bytes) for `len` bytes of data from node `origin`. */
void cluster__item_header(uint8_t *h, const cluster_item *it, uint64_t origin, uint32_t len);
/* Parses a whole item message of n bytes: 1 when its version is known, its length field matches n,
 * its data is at most max_data bytes and a resync notice carries no data; *it then points into p.
 * 0 otherwise (*it unspecified). Whether (service, handler, policy) exist and whether the account is
 * the subject's are the caller's checks. */
int cluster__item_parse(const uint8_t *p, size_t n, size_t max_data, cluster_item *it);

/* A parsed presence message: body points at its entries (edges, snapshots) within the message. */
typedef struct cluster_pres {
	unsigned kind;   /* enum cluster_pres_kind */
	unsigned count;  /* entries (edges, snapshots) */
	uint64_t origin; /* never 0 in a valid message */
	uint64_t target; /* CLUSTER_PRES_SYNC: the node asked (0: every node) */
	const uint8_t *body, *end;
} cluster_pres;

/* Writes a presence header (CLUSTER_PRES_HEADER bytes). */
void cluster__pres_header(uint8_t *h, enum cluster_pres_kind kind, unsigned count, uint64_t origin);
/* Writes one entry at p (room for CLUSTER_PRES_ENTRY_MAX; a longer handle is cut); returns its size. */
size_t cluster__pres_put_entry(uint8_t *p, uint64_t account, const char *handle);
/* Reads the entry at *p (before end) and advances *p; 0 if it is malformed. */
int cluster__pres_get_entry(const uint8_t **p, const uint8_t *end, uint64_t *account,
			    char handle[CLUSTER_MAX_HANDLE + 1]);
/* Parses a whole presence message: 1 when every part is well formed (known version and kind, origin
 * not 0, at most CLUSTER_PRES_CHUNK entries and exactly `count` of them filling the message, a sync's
 * target, a heartbeat's empty body); 0 otherwise. */
int cluster__pres_parse(const uint8_t *p, size_t n, cluster_pres *m);

#endif
