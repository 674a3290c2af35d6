/* The parts of `parley-bench relay --peer parley` that relay_parley.c (one connection's protocol: set-up,
 * messages, acks, checks) and relay_parley_run.c (loop threads and the calling thread) share. */
#ifndef PARLEY_BENCH_RELAY_PARLEY_H
#define PARLEY_BENCH_RELAY_PARLEY_H
#include <stdatomic.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "loop.h"
#include "relay.h"
#include "transport/transport.h"
#include "wire/wire.h"

enum pstate { P_CONNECTING = 0, P_CHALLENGE, P_REGISTER, P_AUTH, P_KEYS, P_READY, P_PARKED, P_CLOSED };
enum engine_phase { E_CONNECT = 0, E_SEND = 1, E_STOP = 2 };

struct pworker;

/* Connections of one thread by outcome (read by the calling thread while the loop runs). */
typedef struct counts {
	_Atomic unsigned ready, failed, drained;
} counts;

typedef struct pconn {
	transport_conn *t; /* NULL once its on_close ran */
	struct pworker *w;
	unsigned idx;
	enum pstate state;
	int counted;                   /* counted as ready or failed */
	char handle[WIRE_MAX_HANDLE + 1];
	char to[WIRE_MAX_HANDLE + 1];  /* sender: recipient handle */
	unsigned to_idx;
	relay_sender *s;
	uint64_t *sent_t;              /* sender: send time by seq % cap */
	unsigned cap;
	relay_stats *st;               /* receiver */
	uint64_t *acks;                /* receiver: server ids to ack */
	unsigned nacks, acks_in_flight;
	uint64_t next_ack_id;
	int queue_empty, drained;      /* verify: QueueEmpty seen; and every ack answered */
	uint8_t *device_sk;            /* phases, receivers: the device's Ed25519 secret key */
} pconn;

typedef struct pworker {
	struct pengine *e;
	bench_loop lp; /* its timer ticks the open-loop schedule */
	int started, stopped;
	pconn **conns;
	unsigned n;
	transport_options topt;
	dynbuf enc;
	wire_limits limits;
	uint8_t *msg;
	relay_stats st;
	counts n_conns;
	uint8_t rbuf[64 * 1024]; /* every connection's reads (transport_options.read_buf) */
} pworker;

typedef struct pengine {
	relay_run run;
	pworker *w;
	unsigned nw;
	pconn *c;
	unsigned nactive;          /* connections this phase opens */
	uint8_t (*device_sk)[64];  /* phases: per connection */
	char url[400];
	_Atomic int phase;         /* enum engine_phase */
	uint64_t ts_base;          /* wall clock (ms) at the start: client timestamps are ts_base + seq */
} pengine;

/* relay_parley.c: starts c's connection (a failure counts it as failed); sends what c's sender owes
 * by now (one write). Both on c's loop thread. */
void relay__parley_connect(pconn *c);
void relay__parley_fill(pconn *c, uint64_t now);

#endif
