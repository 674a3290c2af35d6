/* Raw-wire thread calls shared by the thread tests (t30 threads, t35 channel threads): signed events,
 * the Thread* requests, what a device finds queued, pushes; and entity set-up on top of staffmodel.h.
 * Each call returns the Response status (-1 when the connection failed). */
#ifndef PARLEY_IT_THREADWIRE_H
#define PARLEY_IT_THREADWIRE_H
#include <stddef.h>
#include <stdint.h>

#include "staffmodel.h"
#include "wire/threadev.h"

/* A new entity created by p with these rules (lock_mode doubles as admins_exempt). */
void ent_create(const tacct *p, model *md, const char *handle, uint8_t lock_mode);
/* An admin (by the primary p) or, another role, a code + join + approval by p; with the member's rules. */
void ent_add(const tacct *p, model *md, const tacct *who, int role, uint8_t rules);
void ent_remove(const tacct *p, model *md, const tacct *who);

/* a signed event by a's device 1 (sk: another key to sign with, NULL: a's) */
typedef struct tev {
	uint8_t b[WIRE_THREADEV_MAX_BYTES];
	size_t len;
} tev;
tev ev_by(const tacct *a, const model *md, uint64_t tid, unsigned kind, uint64_t subject, uint64_t version,
	  const uint8_t *sk);
/* a's OPEN of a channel thread for (channel, channel_user), a the customer: what a gateway signs
 * (docs/protocol.md §13.6); ThreadOpen must name the same channel customer */
tev ev_open_channel(const tacct *a, const model *md, uint32_t channel, const char *channel_user);

typedef struct tinfo {
	uint64_t id, version, lock_holder, handling;
	int status;
	size_t n_members;
	uint64_t members[16];
	uint32_t channel;
	char channel_user[65], gateway[33];
	unsigned verification;
} tinfo;
void info_from(tinfo *o, const Parley__Wire__ThreadInfo *t);

int th_open(int fd, const char *entity, const char *customer, const tev *ev, tinfo *out);
/* ThreadOpen with a channel and its customer (docs/protocol.md §13.6) */
int th_open_channel(int fd, const char *entity, const char *customer, uint32_t channel, const char *channel_user,
		    const tev *ev, tinfo *out);
/* *out (optional): the answer's membership version (also with STALE_MEMBERSHIP) */
int th_send_full(int fd, uint64_t tid, uint64_t version, int payment, const tev *lock, uint64_t *out);
int th_send(int fd, uint64_t tid, uint64_t version);
int th_event(int fd, uint64_t tid, const tev *ev);
/* ThreadForward by `by` of tid to agent: the n events, one CIPHERTEXT payload per device (devs, regids). */
int th_forward(const tacct *by, uint64_t tid, const tacct *agent, const tev *evs, size_t n, const uint32_t *devs,
	       const uint32_t *regids, size_t n_devs);
int th_get(int fd, uint64_t tid, tinfo *out, size_t *n_events);
int th_list(int fd, const char *entity, size_t *n);
/* Envelopes of thread tid queued for (a, device) on the server at port: a fresh connection reads its
 * stored queue up to QueueEmpty and acknowledges what it read, so the next count starts from an empty
 * queue. *type: the last one's type. */
int queued(int port, const tacct *a, uint32_t device, const uint8_t *sk, uint64_t tid, uint32_t *type);
/* waits for a push of `body` on fd (other frames dropped; an envelope must be of thread tid): 1 if one
 * came */
int got_push(int fd, int body, uint64_t tid);
int got_changed(int fd);
int has_member(const tinfo *t, uint64_t id);

#endif
