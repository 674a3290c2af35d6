/* `parley-bench fanout`: one message to N devices, three ways, in one run (docs/benchmarks.md):
 *
 *   group     parleyd's group server: one ThreadSend of a thread whose members' devices are the N
 *             receivers; the server stores one envelope per device in one transaction and pushes them.
 *   pairwise  the same fan-out as a client without a group server does it: one SendMessage per
 *             recipient account (N requests, one message each, written together).
 *   mqtt      mosquitto, QoS 1: one PUBLISH to a topic N subscribers hold (QoS 1 subscriptions).
 *
 * The same N receiving connections (each its own device / client), each acking what it receives as
 * its protocol wants (AckRequest per read / PUBACK per message); one sender; a fixed opaque body of
 * `size` bytes that starts with the message's sequence number (the server never looks inside; the
 * receivers use it to match deliveries). Closed loop: at most `window` messages whose fan-out is not
 * complete. Measured per message: the time from its send to the receipt by the LAST of the N devices
 * (the fan-out latency) and to the server's ack (stored: Response / PUBACK); and deliveries per second
 * over the whole run. Every receiver must get every message exactly once, or the run fails.
 *
 * Everything runs on one libuv loop on the calling thread: the set-up is sequential (a call waits
 * for its answer while the loop keeps serving every connection), then the measured send loop.
 */
#ifndef PARLEY_BENCH_FANOUT_H
#define PARLEY_BENCH_FANOUT_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hist.h"

#define FO_MAX_RECEIVERS 1000u
#define FO_MIN_SIZE 8u /* the sequence number */

typedef struct fo_cfg {
	const char *url;  /* parleyd: ws://127.0.0.1:PORT/v1/websocket */
	const char *mqtt; /* mosquitto: 127.0.0.1:PORT (NULL: not measured) */
	unsigned receivers;
	uint64_t messages;
	unsigned window;
	size_t size;
	double timeout_s; /* per phase */
	char tag[20];     /* unique per run: handles, client ids and topic never collide */
} fo_cfg;

/* One way's figures, filled by fanout__track_* */
typedef struct fo_track {
	const char *name;
	uint64_t messages, receivers;
	uint64_t sent, acked, completed, delivered, dups, foreign, errors;
	uint64_t *t_sent;   /* per message: send time (uv_hrtime ns) */
	uint32_t *n_got;    /* per message: receivers that have it */
	uint32_t *n_acks;   /* per message: acks still awaited (pairwise: N) */
	uint8_t *seen;      /* messages x receivers */
	uint64_t t_first, t_last; /* first send, last delivery */
	hist last;          /* send -> last receiver's receipt */
	hist ack;           /* send -> the server's (last) ack */
	char first_error[160];
} fo_track;

int fanout__track_init(fo_track *t, const char *name, const fo_cfg *cfg);
void fanout__track_free(fo_track *t);
/* Message seq sent now, awaiting `acks` acks; its body written into body[0..size). */
void fanout__track_sent(fo_track *t, uint64_t seq, unsigned acks, uint64_t now, uint8_t *body, size_t size);
/* One ack of message seq (ok: status 0, else why). */
void fanout__track_acked(fo_track *t, uint64_t seq, int ok, const char *why, uint64_t now);
/* Receiver r got body[0..len). */
void fanout__track_got(fo_track *t, unsigned r, const uint8_t *body, size_t len, uint64_t now);
void fanout__track_error(fo_track *t, const char *what, const char *why);
/* 1 when every message reached every receiver and was acked, without error. */
int fanout__track_ok(const fo_track *t);

/* The closed loop: calls send(arg, seq) while fewer than cfg->window messages are incomplete, runs the
 * loop until every message is complete, an error stops it, or cfg->timeout_s passes. */
void fanout__drive(uv_loop_t *loop, const fo_cfg *cfg, fo_track *t, void (*send)(void *arg, uint64_t seq), void *arg);
/* Runs the loop until *flag is set, or timeout_s passes: 0, or -1 on timeout. */
int fanout__wait(uv_loop_t *loop, const volatile int *flag, double timeout_s);

/* fanout_parley.c: group and pairwise against parleyd; fanout_mqtt.c: mosquitto. PARLEY_OK when the
 * set-up worked and the runs were made (the tracks say how well); else the tracks' first_error says. */
int fanout__parley(const fo_cfg *cfg, fo_track *group, fo_track *pairwise);
int fanout__mqtt(const fo_cfg *cfg, fo_track *t);

int bench__cmd_fanout(int argc, char **argv);

#endif
