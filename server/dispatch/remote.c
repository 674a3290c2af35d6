/* The dispatcher's side of the cluster bus (cluster/bus.h): items posted on this node go out as
 * (service index, handler index) and arrive on the other nodes through the same mailboxes, with the
 * same policies. See dispatch.h (dispatch__set_bus) and service.h (mbox_fn, the `mailbox` lists).
 *
 * Items from the bus arrive on libnats' delivery thread, which is no loop: worker__deliver queues them
 * on every loop holding the account (never runs them inline), and a full mailbox behaves as for an
 * item from another loop (MBOX_DROP dropped, MBOX_RESYNC flags the loop, MBOX_MUST queued anyway).
 */
#include <string.h>

#include <parley/error.h>

#include "base/log.h"
#include "common/alloc.h"
#include "dispatch/dispatch_internal.h"

#define MODULE "dispatch"

_Static_assert(MBOX_RESYNC == CLUSTER_POLICY_RESYNC, "the bus turns oversized MBOX_RESYNC items into notices");
_Static_assert(STORE_MAX_HANDLE == CLUSTER_MAX_HANDLE, "presence carries whole handles between nodes");

static int handler_index(const service *s, mbox_fn fn)
{
	for (size_t i = 0; i < s->n_mailbox; i++)
		if (s->mailbox[i] == fn)
			return (int)i;
	return -1;
}

int dispatch__check_mailboxes(const dispatch *d)
{
	for (size_t i = 0; i < d->n_services; i++) {
		const service *s = d->services[i];
		if (s->n_mailbox >= CLUSTER_HANDLER_RESYNC || (s->n_mailbox > 0 && s->mailbox == NULL)) {
			log_error(MODULE, "service %s: %zu mailbox handlers (at most %u)", s->name, s->n_mailbox,
				  CLUSTER_HANDLER_RESYNC - 1);
			return PARLEY_E_CONFIG;
		}
		for (size_t k = 0; k < s->n_mailbox; k++)
			if (s->mailbox[k] == NULL || handler_index(s, s->mailbox[k]) != (int)k) {
				log_error(MODULE, "service %s: mailbox handler %zu is NULL or listed twice", s->name, k);
				return PARLEY_E_CONFIG;
			}
	}
	return PARLEY_OK;
}

void dispatch__publish(dispatch *d, const service *svc, enum mbox_policy policy, uint64_t account,
		       uint32_t device, uint64_t u64, const uint8_t *data, size_t len, mbox_fn fn)
{
	cluster *bus = atomic_load(&d->bus);
	if (bus == NULL)
		return;
	int si = worker__service_index(d, svc), hi = si < 0 ? -1 : handler_index(svc, fn);
	if (hi < 0) {
		/* a programming error: the item reached this node's loops only */
		if (si >= 0 && atomic_exchange(&d->unlisted_logged[si], 1) == 0)
			log_error(MODULE, "service %s posts a mailbox handler missing from its mailbox list: its "
					  "items do not reach other nodes",
				  svc->name);
		return;
	}
	cluster_item it = {
		.account = account,
		.device = device,
		.service = (uint8_t)si,
		.handler = (uint8_t)hi,
		.policy = (uint8_t)policy,
		.u64 = u64,
		.len = len,
		.data = data,
	};
	int rc = cluster__publish(bus, &it);
	if (rc != PARLEY_OK && rc != PARLEY_E_CLOSED)
		log_debug(MODULE, "item of %s for account %llu not published: %s", svc->name,
			  (unsigned long long)account, parley_strerror(rc));
}

/* --- the hooks the bus calls (libnats' threads) --- */

static int bus_valid(void *ctx, unsigned service_index, unsigned handler, unsigned policy)
{
	const dispatch *d = ctx;
	return service_index < d->n_services && handler < d->services[service_index]->n_mailbox &&
	       policy <= MBOX_MUST;
}

static void bus_item(void *ctx, const cluster_item *it)
{
	dispatch *d = ctx;
	const service *s = d->services[it->service];
	(void)worker__deliver(d, NULL, s, (enum mbox_policy)it->policy, it->account, it->device, it->u64, it->data,
			      it->len, s->mailbox[it->handler]);
}

static void resync_one(struct link *l, void *arg)
{
	dispatch *d = arg;
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->resync_link != NULL)
			d->services[i]->resync_link(l, d->state[i]);
}

/* Mailbox handler: every service catches up from the store for the account's links on this loop. */
static void resync_account(worker *w, const mbox_item *it)
{
	worker__each_link(w, it->account, it->device, resync_one, w->d);
}

static void bus_resync(void *ctx, uint64_t account)
{
	dispatch *d = ctx;
	(void)worker__deliver(d, NULL, NULL, MBOX_RESYNC, account, 0, 0, NULL, 0, resync_account);
}

/* Every loop catches up from the store (the outage may have hidden any wake-up). */
static void bus_reconnected(void *ctx)
{
	dispatch *d = ctx;
	for (unsigned i = 0; i < d->n_workers; i++) {
		worker *w = &d->workers[i];
		pthread_mutex_lock(&w->mu);
		if (w->running) {
			atomic_store(&w->resync, 1);
			uv_async_send(&w->async);
		}
		pthread_mutex_unlock(&w->mu);
	}
}

static void presence_lost_one(worker *w, const mbox_item *it)
{
	dispatch *d = w->d;
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->presence_lost != NULL)
			d->services[i]->presence_lost(w, d->state[i], it->account, (const char *)it->data);
}

/* Another node died holding the account's last connections: loop 0 runs the services' presence_lost
 * (the relay pushes "offline" to the contacts, as a last link_close would have). */
static void bus_offline(void *ctx, uint64_t account, const char *handle)
{
	dispatch *d = ctx;
	size_t len = strnlen(handle, STORE_MAX_HANDLE);
	char h[STORE_MAX_HANDLE + 1];
	memcpy(h, handle, len);
	h[len] = '\0';
	(void)worker__deliver_to(d, 0, NULL, MBOX_DROP, account, 0, 0, (const uint8_t *)h, len + 1,
				 presence_lost_one);
}

void dispatch__bus_hooks(dispatch *d, cluster_hooks *out)
{
	*out = (cluster_hooks){
		.ctx = d,
		.valid = bus_valid,
		.on_item = bus_item,
		.on_resync = bus_resync,
		.on_reconnected = bus_reconnected,
		.on_offline = bus_offline,
	};
}

static int bus_edge(void *ctx, uint64_t account, const char *handle, int online)
{
	dispatch *d = ctx;
	cluster *bus = atomic_load(&d->bus);
	return bus == NULL ? 1 : cluster__local_edge(bus, account, handle, online);
}

void dispatch__set_bus(dispatch *d, cluster *c)
{
	atomic_store(&d->bus, c);
	registry__set_edge_hook(d->reg, c != NULL ? bus_edge : NULL, d);
}
