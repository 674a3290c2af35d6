/* The one client architecture every `parley-bench relay` peer is measured with (relay_loop.c):
 * connection i runs on libuv loop thread i % threads (bench_loop, default 1 thread); everything about
 * it — its sender's window and schedule, its receiver's bitmaps and histogram — is touched only there.
 * The calling thread sets the phase and wakes the loops (uv_async), waits for the set-up, runs
 * relay__drive (or, in the parley engine's verify phase, waits for the queues) and collects.
 *
 * A peer is a protocol (relay_proto): how one connection is opened, what it sends when its sender
 * owes messages, how it closes. parleyd's (relay_parley.c: WebSocket over lib/transport), MQTT 3.1.1
 * (relay_mqtt.c) and the NATS protocol with or without JetStream (relay_nats.c) — the last two over
 * raw uv_tcp connections (relay_tcp.c) with the sans-I/O codecs mqtt.c and natsp.c. So the client
 * side costs the same kind of work for every peer: one loop thread, one read buffer, one write per
 * connection per loop turn, the open-loop schedule ticked by the same 1 ms timer.
 */
#ifndef PARLEY_BENCH_RELAY_LOOP_H
#define PARLEY_BENCH_RELAY_LOOP_H
#include <stdatomic.h>
#include <stdint.h>

#include "loop.h"
#include "relay.h"

struct rl_worker;
struct rl_engine;

/* What every protocol's connection starts with (a protocol's own connection struct embeds it first). */
typedef struct rl_conn {
	struct rl_worker *w;
	unsigned idx;
	unsigned to_idx;  /* sender: its receiver's connection index */
	relay_sender *s;  /* sender (not in verify), else NULL */
	relay_stats *st;  /* receiver: its worker's stats, else NULL */
	uint64_t *sent_t; /* sender: send time by seq % cap */
	unsigned cap;     /* messages a sender can have awaiting their ack (window or open-loop backlog) */
	int counted;      /* counted as ready or failed */
	int drained;      /* verify: counted as drained */
} rl_conn;

typedef struct rl_counts {
	_Atomic unsigned ready, failed, drained;
} rl_counts;

typedef struct rl_worker {
	struct rl_engine *e;
	bench_loop lp;    /* its timer ticks the open-loop schedule */
	int started, stopped;
	rl_conn **conns;
	unsigned n;
	uint8_t *msg;     /* the message being built (cfg->size bytes) */
	relay_stats st;   /* deliveries to this thread's receivers */
	rl_counts n_conns;
	void *proto;      /* the protocol's per-thread data */
	unsigned next_conn; /* conns[next_conn..] are not opened yet (cfg->connect_batch ramps them) */
	int connecting;     /* inside connect_more: a synchronous failure does not recurse */
	uint8_t rbuf[64 * 1024]; /* every connection's socket reads (consumed before the read returns) */
} rl_worker;

typedef struct relay_proto {
	const char *name;
	size_t conn_size; /* >= sizeof(rl_conn): the protocol's connection struct */
	/* Optional, calling thread, before the threads start / after they are joined and the results
	 * collected into res (fini runs whenever init succeeded). */
	int (*init)(struct rl_engine *e);
	void (*fini)(struct rl_engine *e, relay_result *res);
	/* Optional, calling thread: per-thread and per-connection set-up and clean-up. */
	int (*worker_init)(rl_worker *w);
	void (*worker_free)(rl_worker *w);
	int (*conn_init)(rl_conn *c);
	void (*conn_free)(rl_conn *c);
	/* Loop thread: open the connection (a failure is reported with relay__loop_failed); send what the
	 * sender owes by now (relay__fill_window; one write); close at the end of the run. */
	void (*connect)(rl_conn *c);
	void (*fill)(rl_conn *c, uint64_t now);
	void (*close)(rl_conn *c);
} relay_proto;

enum rl_phase { RL_CONNECT = 0, RL_SEND = 1, RL_STOP = 2 };

typedef struct rl_engine {
	relay_run run;
	const relay_proto *proto;
	rl_worker *w;
	unsigned nw;
	uint8_t *conns;   /* cfg->conns connections of proto->conn_size bytes */
	unsigned nactive; /* connections this phase opens */
	_Atomic int phase; /* enum rl_phase */
	void *data;       /* the protocol's per-run data */
} rl_engine;

/* Runs the workload of cfg with protocol p (see above). PARLEY_OK when it ran (res says how well). */
int relay__loop_run(const relay_cfg *cfg, const relay_proto *p, relay_result *res);

rl_conn *relay__loop_conn(const rl_engine *e, unsigned i);
/* Loop thread: c is ready for the run / has failed to get there (with why, kept as the first error
 * unless the run is stopping) / has read its whole queue (verify). Each counts once. */
void relay__loop_ready(rl_conn *c);
void relay__loop_failed(rl_conn *c, const char *why, const char *detail);
void relay__loop_drained(rl_conn *c);
/* 1 once the run is over and connections are being closed on purpose. */
int relay__loop_stopping(const rl_conn *c);
/* Loop thread: a connection ended. Before it was ready: counted as failed; once ready and before the
 * stop: a lost connection (relay__conn_lost). why names the cause. */
void relay__loop_closed(rl_conn *c, int was_ready, const char *why);

/* Loop thread, a sender's ack for sequence number seq (status ok, or refused with why): checks it is
 * one in flight, records the ack latency from sent_t, frees a window slot and, in closed loop, refills
 * through proto->fill. Returns 0, or -1 when seq is not awaiting an ack (counted as an error). */
int relay__loop_acked(rl_conn *c, uint64_t seq, int ok, const char *why, uint64_t now);
/* Loop thread: builds the next message of c's sender into w->msg (header, content, MAC for its
 * receiver), records its send time and counts it sent; returns the sequence number. The protocol then
 * writes w->msg and, if that failed, calls relay__loop_send_failed. */
uint64_t relay__loop_next(rl_conn *c);
void relay__loop_send_failed(rl_conn *c, const char *why);
/* Loop thread, a receiver got body[0..len): checked (relay__check_body) and recorded. Returns the
 * sender index, or -1 when the body was malformed, corrupted or misrouted (counted). */
int relay__loop_delivered(rl_conn *c, const uint8_t *body, size_t len, uint64_t now);

#endif
