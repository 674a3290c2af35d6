/* `parley-bench relay`: store-and-forward throughput and latency, the same workload against parleyd's
 * relay and against reference brokers (mosquitto QoS 1, NATS core, NATS JetStream).
 *
 * Workload (identical for every peer): N connections, the first M of them senders, the others
 * receivers; sender i always sends to receiver r(i) (round-robin pairs; when M == N every connection
 * both sends and receives, sender i to connection i+1). Every message is `size` opaque bytes that
 * start with a header (magic, sender index, sequence number, send time from CLOCK_MONOTONIC, which
 * is the same clock for every thread of this process) and continue with random bytes. Sending is
 * open-loop at a global `rate` spread evenly over the senders, or closed-loop (`rate` 0, "--max")
 * with at most `window` messages awaiting their ack per sender.
 *
 * Measured per message: ack latency (send -> the peer says "stored": parleyd's Response, MQTT
 * PUBACK, JetStream PubAck; for core NATS, which has no ack, the receiver's reply) and end-to-end
 * latency (send -> the receiver has it). Every delivery is checked against a per-sender bitmap, so
 * duplicates and losses (acked, never delivered after the drain) are counted exactly.
 *
 * Restart check (parley peer): `--phase send` registers the receivers and lets them go offline, sends
 * (the script may SIGKILL the server meanwhile, or --crash-after makes this process do it at an exact
 * point), and leaves a state file: the run key, the receivers' device keys, every sender's sent count
 * and the ids (sender, seq) of every acked message. After the server restarted on the same data,
 * `--phase verify` logs the receivers in, takes their stored queues and checks every acked message
 * arrived exactly once with its body intact.
 *
 * Every body, in every run and for every peer, ends with a keyed BLAKE2b (RELAY_MAC bytes, a random
 * key per run) over the rest of the body and the receiver's index: a receiver counts a body that does
 * not verify for it, or that comes from a sender that does not send to it, as corrupt (misrouted or
 * damaged), not as a delivery (relay__check_body).
 *
 * Engines: one protocol per peer (relay_parley.c, relay_mqtt.c, relay_nats.c) on one client
 * architecture (relay_loop.c), plus the client-library engines kept as a cross-check
 * (relay_mqtt_lib.c, relay_nats_lib.c), all sharing this file's state.
 * Ownership rule that makes the bitmaps lock-free: a sender's `acked` bitmap is written only by the
 * thread that handles that sender's acks, its `delivered` bitmap only by the thread that handles its
 * receiver's deliveries; both are read only after those threads are gone. Counters the progress line
 * reads are relaxed atomics.
 */
#ifndef PARLEY_BENCH_RELAY_H
#define PARLEY_BENCH_RELAY_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "target.h"

/* The *_LIB peers drive the same brokers through their client libraries: a cross-check of the engines
 * of record, which share one client architecture (relay_loop.h). */
enum relay_peer {
	RELAY_PEER_PARLEY = 0,
	RELAY_PEER_MOSQUITTO,
	RELAY_PEER_NATS,
	RELAY_PEER_NATS_JS,
	RELAY_PEER_MOSQUITTO_LIB,
	RELAY_PEER_NATS_LIB,
	RELAY_PEER_NATS_JS_LIB
};
/* run: the benchmark; send / verify: the two halves of the restart check (see above). */
enum relay_phase { RELAY_PHASE_RUN = 0, RELAY_PHASE_SEND, RELAY_PHASE_VERIFY };

#define RELAY_HDR 24u /* "PRLB" | u32 sender | u64 seq | u64 send time ns, little-endian */
#define RELAY_MAX_SIZE (1u << 20)
#define RELAY_MAC 16u     /* keyed BLAKE2b at the end of every body */
#define RELAY_MIN_SIZE (RELAY_HDR + RELAY_MAC)
#define RELAY_KEY 32u
#define RELAY_MAX_NODES 16u /* parley: parleyd nodes one run spreads its connections over */

typedef struct relay_cfg {
	enum relay_peer peer;
	const char *url;       /* the first (or only) node's */
	bench_target target;   /* = node[0] */
	/* parley: several nodes of one cluster (--url repeated or comma-separated). Connection c talks to
	 * node relay__node_of(c); with cross_node every sender's receiver is on another node than the
	 * sender, so every delivery crosses the cluster bus. */
	unsigned nnodes;
	int cross_node;
	const char *node_url[RELAY_MAX_NODES];
	bench_target node[RELAY_MAX_NODES];
	int hold;              /* parley: no senders; every connection logs in and stays idle until the end */
	const char *before_send; /* shell command run once every connection is ready, before sending */
	const char *ready_file;  /* written ("ready N") once every connection is ready, before sending */
	unsigned conns, senders, threads;
	unsigned window;       /* closed loop: messages awaiting ack per sender */
	unsigned open_backlog; /* open loop: awaiting ack per sender before a send is skipped */
	size_t size;
	double rate;           /* messages/s over all senders; 0 = closed loop (--max) */
	double duration_s;     /* send phase, when messages == 0 */
	uint64_t messages;     /* total to send; 0 = duration */
	double max_time_s;     /* cap of a --messages run */
	double drain_s;        /* after sending stops: wait this long at most for acks and deliveries */
	double connect_timeout_s;
	unsigned connect_batch; /* set-ups in flight per loop thread (0: every connection at once) */
	unsigned ack_batch;    /* parley: server ids per AckRequest */
	unsigned idle;         /* parley: idle WebSocket connections held open on the server during the run */
	char run_tag[20];      /* unique per run: handles, client ids, topics never collide */
	int progress;
	enum relay_phase phase;
	const char *state_path; /* phases */
	long server_pid;        /* CPU figure; --crash-after's target */
	uint64_t crash_after;   /* SIGKILL server_pid once this many messages are acked (0 = never) */
	uint8_t key[RELAY_KEY]; /* the MAC key: random per run (verify: the send phase's) */
	const struct relay_state *state; /* verify: what --phase send left */
} relay_cfg;

/* A growable bitmap with a duplicate count, written by one thread. */
typedef struct relay_bits {
	uint64_t *w;
	uint64_t nwords;
} relay_bits;

typedef struct relay_sender {
	unsigned idx;
	unsigned receiver; /* connection index of its receiver */
	pthread_mutex_t mu; /* engines whose sends and acks run on different threads */
	uint64_t next_seq;  /* messages handed to the peer so far (sending thread) */
	_Atomic uint64_t n_sent; /* the same, for other threads */
	unsigned in_flight;
	uint64_t skipped;   /* open loop: due but the backlog was full */
	relay_bits acked;
	hist ack_lat;
	_Atomic uint64_t n_acked, n_errors;
	void *engine; /* per-engine data */
} relay_sender;

typedef struct relay_stats {
	hist e2e; /* per receiver thread */
	_Atomic uint64_t delivered, dups, foreign, errors;
	_Atomic uint64_t corrupt; /* MAC, receiver, sender or sequence number wrong */
} relay_stats;

typedef struct relay_result {
	uint64_t connected, connect_failed;
	double connect_s, send_s, drain_s;
	uint64_t sent, acked, delivered, acked_at_stop, delivered_at_stop;
	uint64_t errors, dups, lost, unsettled, skipped, foreign;
	uint64_t corrupt, extra;  /* extra: delivered but never acked (sent before a crash: allowed) */
	uint64_t conns_lost;      /* ready connections that ended before the stop */
	double planned_s;         /* the send phase the options asked for */
	const char *stop_reason;  /* why sending ended early, NULL if it did not */
	uint64_t first_lost_sender, first_lost_seq; /* the first acked message never delivered */
	uint64_t incomplete;      /* verify: receivers that did not finish reading their queue */
	int state_saved;          /* send: the state file was written */
	hist ack_lat, e2e;
	char first_error[200];
} relay_result;

typedef struct relay_run {
	const relay_cfg *cfg;
	relay_sender *senders;
	relay_bits *delivered; /* per sender */
	_Atomic int sending;   /* 1 while the send phase runs */
	_Atomic int stopping;  /* interrupted (SIGINT/SIGTERM): stop sending, skip the drain */
	_Atomic unsigned lost_conns, lost_senders; /* relay__conn_lost */
	unsigned active_conns; /* connections open during sending (all but parked receivers) */
	int expect_delivery;   /* 0 in --phase send: receivers are offline */
	uint64_t t0;           /* start of the send phase (ns) */
	pthread_mutex_t err_mu;
	char first_error[200];
} relay_run;

/* The node (index into cfg->node) connection c talks to. One node: 0. Several: round-robin (c mod
 * nodes), unless cross_node: then sender i is on node (i mod R) mod K and receiver j (connection M + j,
 * R receivers, K nodes) on node (j + 1) mod K, so every sender's receiver, M + (i mod R), is on another
 * node than the sender while both kinds stay spread evenly; when every connection sends (M = N),
 * round-robin already puts neighbours on different nodes if K divides N (relay__placement_ok). */
unsigned relay__node_of(const relay_cfg *cfg, unsigned c);
/* 1 when the placement keeps its promise: with cross_node, no sender shares its receiver's node. */
int relay__placement_ok(const relay_cfg *cfg);

/* Receiver connection index of sender i. */
unsigned relay__receiver_of(const relay_cfg *cfg, unsigned sender);
/* 1 when connection c is a sender / a receiver. */
int relay__is_sender(const relay_cfg *cfg, unsigned c);
int relay__is_receiver(const relay_cfg *cfg, unsigned c);

/* Fills buf (cfg->size bytes) for (sender, seq), stamping the current time; returns the stamp. */
uint64_t relay__fill(uint8_t *buf, size_t size, unsigned sender, uint64_t seq);
/* Parses a header: 0 on success. */
int relay__parse(const uint8_t *buf, size_t len, unsigned *sender, uint64_t *seq, uint64_t *t_ns);

/* Sets bit `i`; returns 1 if it was already set, -1 on allocation failure. */
int relay__bits_set(relay_bits *b, uint64_t i);
int relay__bits_get(const relay_bits *b, uint64_t i);
void relay__bits_free(relay_bits *b);

/* Records that `sender`'s message `seq` sent at t_ns reached a receiver (from the receiver's
 * thread): end-to-end latency into st, duplicate and foreign checks. */
void relay__delivered(relay_run *run, relay_stats *st, unsigned sender, uint64_t seq, uint64_t t_ns,
		      uint64_t now);
/* A receiver (connection index `receiver`) got body[0..len): a body of the wrong size or without the
 * header counts as an error; one whose MAC does not verify for this receiver, from a sender that does
 * not send to it, or (verify) with a sequence number its sender never used, as corrupt; otherwise it
 * is recorded with relay__delivered. Returns the sender index, or -1. */
int relay__check_body(relay_run *run, relay_stats *st, const uint8_t *body, size_t len, unsigned receiver,
		      uint64_t now);
/* Records the ack of a message from the ack-handling thread of the sender. */
void relay__acked(relay_run *run, relay_sender *s, uint64_t seq, uint64_t t_ns, uint64_t now);
void relay__error(relay_run *run, const char *what, const char *detail);
/* A ready connection ended before the stop (the server died, or dropped it); from its thread. When
 * every sender's connection is gone the send phase ends early, and its real length is reported. */
void relay__conn_lost(relay_run *run, unsigned conn);
/* Installs SIGINT/SIGTERM handlers that stop the send phase of the running relay__drive (a second
 * signal kills as usual), so an interrupted run still reports what it measured. */
void relay__catch_interrupts(void);
int relay__interrupted(void);

/* The MAC at the end of a cfg->size body for `receiver` (relay__seal writes it over the last
 * RELAY_MAC bytes; relay__mac_ok checks it: 1 good, 0 corrupted or meant for another receiver). */
void relay__seal(const relay_cfg *cfg, uint8_t *buf, unsigned receiver);
int relay__mac_ok(const relay_cfg *cfg, const uint8_t *buf, size_t len, unsigned receiver);

/* The state file between the phases (relay_state.c): one text line per fact, written to a temporary
 * name and renamed, mode 0600 (it holds the receivers' device secret keys). */
typedef struct relay_state relay_state;
struct relay_state {
	char run_tag[20];
	uint8_t key[RELAY_KEY];
	unsigned conns, senders;
	size_t size;
	uint8_t (*device_sk)[64]; /* per connection (receivers' are meaningful) */
	uint64_t *sent;           /* per sender */
	relay_bits *acked;        /* per sender */
};
/* Saves cfg, the senders' sent counts and acked bitmaps from run, and device_sk (per connection). */
int relay__state_save(const char *path, const relay_cfg *cfg, const relay_run *run, uint8_t (*device_sk)[64]);
/* PARLEY_OK, or an error with a reason in why. Free with relay__state_free. */
int relay__state_load(const char *path, relay_state *st, char *why, size_t why_len);
void relay__state_free(relay_state *st);

/* Open loop: how many messages sender s should have sent by `now` in total (bounded by the
 * messages budget). Closed loop: UINT64_MAX while sending (the window bounds it). */
uint64_t relay__due(const relay_run *run, const relay_sender *s, uint64_t now);
/* Sends, one send(conn) a message, what sender s owes by `now` (relay__due): closed loop, while
 * fewer than cfg->window await their ack; open loop, every due message, except that those due while
 * cfg->open_backlog await their ack are counted as skipped, not queued. The caller holds s->mu. */
void relay__fill_window(const relay_run *run, relay_sender *s, uint64_t now, void (*send)(void *conn),
			void *conn);

/* Drives the phases from the calling thread once the engine has connected everything and started
 * its own threads: sets t0 and `sending`, calls kick(ctx) (closed loop: fill the windows) and
 * tick(ctx, now) every ~0.5 ms (open loop sends) unless tick is NULL, prints the progress line,
 * stops sending after the duration / message budget, then waits for the drain. Fills the send/drain
 * times and the *_at_stop counters. */
typedef struct relay_driver {
	void (*kick)(void *ctx);
	void (*tick)(void *ctx, uint64_t now);
	void *ctx;
	relay_stats **stats; /* to sum delivered counts for the progress line and the drain */
	unsigned nstats;
} relay_driver;
void relay__drive(relay_run *run, const relay_driver *d, relay_result *res);

/* For engines, once their connect phase is over: records it (ready of n connections, begun at t_open,
 * uv_hrtime) into res; relay__drive_when_ready also runs relay__drive if every connection is ready. */
void relay__note_setup(relay_result *res, unsigned ready, unsigned n, uint64_t t_open);
void relay__drive_when_ready(relay_run *run, const relay_driver *d, relay_result *res, unsigned ready, unsigned n,
			     uint64_t t_open);
/* For engines: a receiver's stats (zeroed, histogram ready) appended to list[*n]; NULL if out of
 * memory. The caller frees it with parley__free. */
relay_stats *relay__stats_new(relay_stats **list, unsigned *n);

/* Sums senders, bitmaps and stats into res (after the engine's threads are gone). Acked messages not
 * delivered count as lost only when deliveries were expected (not in --phase send). */
void relay__collect(relay_run *run, relay_stats **stats, unsigned nstats, relay_result *res);

int relay__run_init(relay_run *run, const relay_cfg *cfg);
void relay__run_free(relay_run *run);

/* Engines: connect, run relay__drive, disconnect, collect. Return PARLEY_OK when they ran (the
 * result says how well), PARLEY_E_UNSUPPORTED when built without that peer's library (the *_lib
 * ones), or another code on a setup failure (with a message on stderr). engine_nats serves nats and
 * nats-js, engine_nats_lib nats-lib and nats-js-lib. */
int relay__engine_parley(const relay_cfg *cfg, relay_result *res);
int relay__engine_mqtt(const relay_cfg *cfg, relay_result *res);
int relay__engine_nats(const relay_cfg *cfg, relay_result *res);
int relay__engine_mqtt_lib(const relay_cfg *cfg, relay_result *res);
int relay__engine_nats_lib(const relay_cfg *cfg, relay_result *res);

/* `parley-bench relay`: argv[0] is "relay". Returns the process exit status. */
int bench__cmd_relay(int argc, char **argv);

#endif
