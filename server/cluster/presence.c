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
 * Wire: cluster/wire.h.
 */
#include <inttypes.h>
#include <string.h>

#include <parley/error.h>

#include "base/log.h"
#include "cluster/cluster_internal.h"
#include "common/alloc.h"

#define MODULE "cluster"
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
	uint8_t m[CLUSTER_PRES_HEADER + 8];
	cluster__pres_header(m, CLUSTER_PRES_SYNC, 0, c->self);
	cluster__put_u64(m + CLUSTER_PRES_HEADER, target);
	(void)cluster__send(c, "parley.p.sync", NULL, m, sizeof(m));
}

struct chunk {
	cluster *c;
	int first;
	unsigned n;
	size_t len;
	uint8_t m[CLUSTER_PRES_HEADER + CLUSTER_PRES_CHUNK * CLUSTER_PRES_ENTRY_MAX];
};

static void chunk_flush(struct chunk *k)
{
	cluster__pres_header(k->m, k->first ? CLUSTER_PRES_SNAPSHOT_FIRST : CLUSTER_PRES_SNAPSHOT_MORE, k->n, k->c->self);
	(void)cluster__send(k->c, "parley.p", NULL, k->m, k->len);
	k->first = 0;
	k->n = 0;
	k->len = CLUSTER_PRES_HEADER;
}

static int chunk_add(void *entry, void *arg)
{
	struct pres_entry *e = entry;
	struct chunk *k = arg;
	if (!e->local)
		return 0;
	k->len += cluster__pres_put_entry(k->m + k->len, e->hdr.key, e->handle);
	if (++k->n == CLUSTER_PRES_CHUNK)
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
	k->len = CLUSTER_PRES_HEADER;
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
	uint8_t m[CLUSTER_PRES_HEADER + CLUSTER_PRES_ENTRY_MAX];
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
	cluster__pres_header(m, online ? CLUSTER_PRES_ONLINE : CLUSTER_PRES_OFFLINE, 1, c->self);
	size_t len = CLUSTER_PRES_HEADER + cluster__pres_put_entry(m + CLUSTER_PRES_HEADER, account, handle);
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
static void apply(cluster *c, int slot, enum cluster_pres_kind kind, const uint8_t *p, const uint8_t *end, unsigned n)
{
	uint64_t bit = 1ull << slot, account;
	char handle[CLUSTER_MAX_HANDLE + 1];
	if (kind == CLUSTER_PRES_SNAPSHOT_FIRST) {
		struct forget f = {.bits = bit};
		u64map__each(&c->pres, forget_bits, &f);
	}
	for (unsigned i = 0; i < n && cluster__pres_get_entry(&p, end, &account, handle); i++)
		set_remote(c, account, handle, bit, kind != CLUSTER_PRES_OFFLINE);
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
	cluster_pres m;
	if (!cluster__pres_parse(p, len, &m)) {
		cluster__count(&c->dropped, METRIC_BUS_DROPPED);
	} else if (m.origin != c->self) {
		cluster__count(&c->received, METRIC_BUS_RECEIVED);
		int created = 0, ask = 0;
		pthread_mutex_lock(&c->pmu);
		int slot = node_slot(c, m.origin, 1, &created);
		if (slot >= 0) {
			c->nodes[slot].last_seen_ms = cluster__now_ms();
			/* a node first heard through an edge or a heartbeat: its earlier edges were missed */
			ask = created && m.kind != CLUSTER_PRES_SNAPSHOT_FIRST && m.kind != CLUSTER_PRES_SYNC;
			if (m.kind <= CLUSTER_PRES_SNAPSHOT_MORE)
				apply(c, slot, (enum cluster_pres_kind)m.kind, m.body, m.end, m.count);
		}
		if (m.kind == CLUSTER_PRES_SYNC && (m.target == 0 || m.target == c->self))
			send_snapshot(c);
		pthread_mutex_unlock(&c->pmu);
		if (ask)
			send_sync(c, m.origin);
	}
	cluster__leave(c);
	natsMsg_Destroy(msg);
}

void presence__tick(cluster *c)
{
	uint8_t m[CLUSTER_PRES_HEADER];
	cluster__pres_header(m, CLUSTER_PRES_HEARTBEAT, 0, c->self);
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
