/* Presence across nodes: which accounts are online anywhere. See bus.h.
 *
 * Each node publishes its own account edges on parley.p and, when asked (parley.p.sync) or after it
 * (re)connects, a snapshot of its whole online set: chunks on the same subject, the first one telling
 * the others to forget what they held for that node. Everything a node says about presence leaves on
 * one subject from one connection, published under pmu in the order its view changed, so NATS hands it
 * to every other node in that order: a snapshot can never overtake the edges around it.
 *
 * Liveness: a heartbeat on parley.hb every heartbeat_ms; a node silent for node_timeout_ms is
 * forgotten, and its accounts count as offline; those now online nowhere are reported (on_offline) by
 * one node, the live one with the smallest id, so their contacts hear it once. Edges and snapshots
 * carry each account's handle for that. A node heard from for the first time (it joined, or came back
 * after being forgotten) is asked for its snapshot.
 *
 * The view answers one question for the relay: is this local edge also a cluster-wide one? (came
 * online while no other node held the account / left while no other node holds it). Two nodes whose
 * last connections of one account close within one bus round trip may each still see the other and
 * both stay silent: that "offline" is then not pushed (presence is ephemeral: the next change corrects
 * it). The node that published an edge is the one that pushes it, so an edge is pushed once.
 *
 * Wire: a 12-byte header (version, kind, count u16, origin u64), then for edges and snapshots `count`
 * entries (account u64, handle length u8, handle), for a sync request the target node id.
 */
#include <inttypes.h>
#include <string.h>

#include <parley/error.h>

#include "base/log.h"
#include "cluster/cluster_internal.h"
#include "common/alloc.h"

#define MODULE "cluster"
#define PRES_HEADER 12u
#define PRES_CHUNK 1024u /* accounts per snapshot message: at most 42 KiB */
#define PRES_ENTRY_MAX (9u + CLUSTER_MAX_HANDLE)

enum pres_kind {
	PRES_ONLINE = 1,
	PRES_OFFLINE = 2,
	PRES_SNAPSHOT_FIRST = 3, /* forget what you hold for this node, then these are online */
	PRES_SNAPSHOT_MORE = 4,
	PRES_SYNC = 5,           /* target node id (0: everyone): publish your snapshot */
	PRES_HEARTBEAT = 6,
};

static void put_header(uint8_t *h, enum pres_kind kind, unsigned n, uint64_t origin)
{
	h[0] = CLUSTER_WIRE_VERSION;
	h[1] = (uint8_t)kind;
	h[2] = (uint8_t)(n & 0xff);
	h[3] = (uint8_t)(n >> 8);
	cluster__put_u64(h + 4, origin);
}

/* One entry at p (room for PRES_ENTRY_MAX); returns its size. */
static size_t put_entry(uint8_t *p, uint64_t account, const char *handle)
{
	size_t n = handle != NULL ? strnlen(handle, CLUSTER_MAX_HANDLE) : 0;
	cluster__put_u64(p, account);
	p[8] = (uint8_t)n;
	if (n > 0)
		memcpy(p + 9, handle, n);
	return 9 + n;
}

/* Parses the entry at *p (before end); 0 if it is malformed. */
static int get_entry(const uint8_t **p, const uint8_t *end, uint64_t *account, char handle[CLUSTER_MAX_HANDLE + 1])
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

/* 1 if the body holds exactly n well-formed entries */
static int entries_valid(const uint8_t *p, const uint8_t *end, unsigned n)
{
	uint64_t account;
	char handle[CLUSTER_MAX_HANDLE + 1];
	for (unsigned i = 0; i < n; i++)
		if (!get_entry(&p, end, &account, handle))
			return 0;
	return p == end;
}

/* The slot of node `id` (pmu held), created when `create`; -1 when unknown or no slot is free. */
static int node_slot(cluster *c, uint64_t id, int create, int *created)
{
	int free_slot = -1;
	for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
		if (c->nodes[i].id == id)
			return i;
		if (c->nodes[i].id == 0 && free_slot < 0)
			free_slot = i;
	}
	if (!create)
		return -1;
	if (free_slot < 0) {
		log_warn(MODULE, "more than %d nodes: node %016" PRIx64 " left out of presence", CLUSTER_MAX_NODES, id);
		return -1;
	}
	c->nodes[free_slot].id = id;
	c->nodes[free_slot].last_seen_ms = cluster__now_ms();
	*created = 1;
	log_info(MODULE, "node %016" PRIx64 " joined", id);
	return free_slot;
}

/* --- what this node says --- */

static void send_sync(cluster *c, uint64_t target)
{
	uint8_t m[PRES_HEADER + 8];
	put_header(m, PRES_SYNC, 0, c->self);
	cluster__put_u64(m + PRES_HEADER, target);
	(void)cluster__send(c, "parley.p.sync", NULL, m, sizeof(m));
}

struct chunk {
	cluster *c;
	int first;
	unsigned n;
	size_t len;
	uint8_t m[PRES_HEADER + PRES_CHUNK * PRES_ENTRY_MAX];
};

static void chunk_flush(struct chunk *k)
{
	put_header(k->m, k->first ? PRES_SNAPSHOT_FIRST : PRES_SNAPSHOT_MORE, k->n, k->c->self);
	(void)cluster__send(k->c, "parley.p", NULL, k->m, k->len);
	k->first = 0;
	k->n = 0;
	k->len = PRES_HEADER;
}

static int chunk_add(void *entry, void *arg)
{
	struct pres_entry *e = entry;
	struct chunk *k = arg;
	if (!e->local)
		return 0;
	k->len += put_entry(k->m + k->len, e->hdr.key, e->handle);
	if (++k->n == PRES_CHUNK)
		chunk_flush(k);
	return 0;
}

/* pmu held: this node's online set, in chunks (the first one even when empty) */
static void send_snapshot(cluster *c)
{
	struct chunk *k = parley__malloc(sizeof(*k));
	if (k == NULL)
		return;
	k->c = c;
	k->first = 1;
	k->n = 0;
	k->len = PRES_HEADER;
	u64map__each(&c->pres, chunk_add, k);
	if (k->first || k->n > 0)
		chunk_flush(k);
	parley__free(k);
}

void presence__connected(cluster *c)
{
	pthread_mutex_lock(&c->pmu);
	send_snapshot(c);
	pthread_mutex_unlock(&c->pmu);
	send_sync(c, 0);
}

int cluster__local_edge(cluster *c, uint64_t account, const char *handle, int online)
{
	uint8_t m[PRES_HEADER + PRES_ENTRY_MAX];
	int wide = 1;
	pthread_mutex_lock(&c->pmu);
	struct pres_entry *e = online ? u64map__put(&c->pres, account, sizeof(*e)) : u64map__get(&c->pres, account);
	if (e != NULL) {
		e->local = (uint8_t)(online != 0);
		if (handle != NULL && handle[0] != '\0')
			snprintf(e->handle, sizeof(e->handle), "%s", handle);
		wide = e->remote == 0;
		if (!online && e->remote == 0)
			u64map__del(&c->pres, account);
	}
	put_header(m, online ? PRES_ONLINE : PRES_OFFLINE, 1, c->self);
	size_t len = PRES_HEADER + put_entry(m + PRES_HEADER, account, handle);
	(void)cluster__send(c, "parley.p", NULL, m, len);
	pthread_mutex_unlock(&c->pmu);
	(void)cluster__queue_interest(c, account, online);
	return wide;
}

int cluster__online(cluster *c, uint64_t account)
{
	pthread_mutex_lock(&c->pmu);
	const struct pres_entry *e = u64map__get(&c->pres, account);
	int on = e != NULL && (e->local || e->remote != 0);
	pthread_mutex_unlock(&c->pmu);
	return on;
}

unsigned cluster__remote_nodes(cluster *c, uint64_t account)
{
	pthread_mutex_lock(&c->pmu);
	const struct pres_entry *e = u64map__get(&c->pres, account);
	unsigned n = e != NULL ? (unsigned)__builtin_popcountll(e->remote) : 0;
	pthread_mutex_unlock(&c->pmu);
	return n;
}

/* --- what the others say --- */

/* accounts a dead node took offline everywhere, to report once pmu is released */
struct lost {
	uint64_t account;
	char handle[CLUSTER_MAX_HANDLE + 1];
};

struct forget {
	uint64_t bits;
	int collect; /* gather what goes offline everywhere into lost */
	struct lost *lost;
	size_t n, cap;
};

static int forget_bits(void *entry, void *arg)
{
	struct pres_entry *e = entry;
	struct forget *f = arg;
	if (!(e->remote & f->bits))
		return 0;
	e->remote &= ~f->bits;
	if (e->remote != 0 || e->local)
		return 0;
	if (f->collect) {
		if (f->n == f->cap) {
			size_t cap = f->cap ? f->cap * 2 : 64;
			struct lost *l = parley__realloc(f->lost, cap * sizeof(*l));
			if (l == NULL)
				return 1; /* not reported: presence is ephemeral */
			f->lost = l;
			f->cap = cap;
		}
		f->lost[f->n].account = e->hdr.key;
		memcpy(f->lost[f->n].handle, e->handle, sizeof(e->handle));
		f->n++;
	}
	return 1;
}

/* pmu held */
static void set_remote(cluster *c, uint64_t account, const char *handle, uint64_t bit, int online)
{
	struct pres_entry *e = online ? u64map__put(&c->pres, account, sizeof(*e)) : u64map__get(&c->pres, account);
	if (e == NULL)
		return;
	if (online) {
		e->remote |= bit;
		if (handle[0] != '\0')
			memcpy(e->handle, handle, sizeof(e->handle));
	} else {
		e->remote &= ~bit;
		if (e->remote == 0 && !e->local)
			u64map__del(&c->pres, account);
	}
}

/* One parley.p message of node `slot` (pmu held; its entries checked already). */
static void apply(cluster *c, int slot, enum pres_kind kind, const uint8_t *p, const uint8_t *end, unsigned n)
{
	uint64_t bit = 1ull << slot, account;
	char handle[CLUSTER_MAX_HANDLE + 1];
	if (kind == PRES_SNAPSHOT_FIRST) {
		struct forget f = {.bits = bit};
		u64map__each(&c->pres, forget_bits, &f);
	}
	for (unsigned i = 0; i < n && get_entry(&p, end, &account, handle); i++)
		set_remote(c, account, handle, bit, kind != PRES_OFFLINE);
}

void presence__on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	cluster *c = closure;
	(void)nc;
	(void)sub;
	const uint8_t *p = (const uint8_t *)natsMsg_GetData(msg);
	size_t len = (size_t)natsMsg_GetDataLength(msg);
	if (!cluster__enter(c)) {
		natsMsg_Destroy(msg);
		return;
	}
	unsigned kind = len >= PRES_HEADER ? p[1] : 0, n = len >= PRES_HEADER ? (unsigned)(p[2] | p[3] << 8) : 0;
	uint64_t origin = len >= PRES_HEADER ? cluster__get_u64(p + 4) : 0;
	int valid = len >= PRES_HEADER && p[0] == CLUSTER_WIRE_VERSION && origin != 0 &&
		    ((kind >= PRES_ONLINE && kind <= PRES_SNAPSHOT_MORE && n <= PRES_CHUNK &&
		      entries_valid(p + PRES_HEADER, p + len, n)) ||
		     (kind == PRES_SYNC && len == PRES_HEADER + 8) || (kind == PRES_HEARTBEAT && len == PRES_HEADER));
	if (!valid) {
		cluster__count(&c->dropped, METRIC_BUS_DROPPED);
	} else if (origin != c->self) {
		cluster__count(&c->received, METRIC_BUS_RECEIVED);
		int created = 0, ask = 0, answer = 0;
		pthread_mutex_lock(&c->pmu);
		int slot = node_slot(c, origin, 1, &created);
		if (slot >= 0) {
			c->nodes[slot].last_seen_ms = cluster__now_ms();
			/* a node first heard through an edge or a heartbeat: its earlier edges were missed */
			ask = created && kind != PRES_SNAPSHOT_FIRST && kind != PRES_SYNC;
			if (kind <= PRES_SNAPSHOT_MORE)
				apply(c, slot, (enum pres_kind)kind, p + PRES_HEADER, p + len, n);
		}
		if (kind == PRES_SYNC) {
			uint64_t target = cluster__get_u64(p + PRES_HEADER);
			answer = target == 0 || target == c->self;
			if (answer)
				send_snapshot(c);
		}
		pthread_mutex_unlock(&c->pmu);
		if (ask)
			send_sync(c, origin);
	}
	cluster__leave(c);
	natsMsg_Destroy(msg);
}

void presence__tick(cluster *c)
{
	uint8_t m[PRES_HEADER];
	put_header(m, PRES_HEARTBEAT, 0, c->self);
	(void)cluster__send(c, "parley.hb", NULL, m, sizeof(m));
	uint64_t now = cluster__now_ms();
	struct forget f = {0};
	pthread_mutex_lock(&c->pmu);
	for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
		struct bus_node *nd = &c->nodes[i];
		if (nd->id == 0 || now - nd->last_seen_ms <= c->cfg.node_timeout_ms)
			continue;
		log_warn(MODULE, "node %016" PRIx64 " silent for %u ms: its accounts count as offline", nd->id,
			 c->cfg.node_timeout_ms);
		f.bits |= 1ull << i;
		nd->id = 0;
	}
	if (f.bits != 0) {
		/* the survivor with the smallest id reports, so contacts hear each "offline" once */
		f.collect = c->hooks.on_offline != NULL;
		for (int i = 0; i < CLUSTER_MAX_NODES; i++)
			if (c->nodes[i].id != 0 && c->nodes[i].id < c->self)
				f.collect = 0;
		u64map__each(&c->pres, forget_bits, &f);
	}
	pthread_mutex_unlock(&c->pmu);
	if (f.n > 0 && cluster__enter(c)) {
		for (size_t i = 0; i < f.n; i++)
			c->hooks.on_offline(c->hooks.ctx, f.lost[i].account, f.lost[i].handle);
		cluster__leave(c);
	}
	parley__free(f.lost);
}

void presence__free(cluster *c)
{
	u64map__free(&c->pres);
}
