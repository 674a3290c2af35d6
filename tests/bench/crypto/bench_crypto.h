/* Crypto benchmark: parley's Signal implementation, libolm (Olm + Megolm) and libsignal-client 0.24
 * (through node) on the same operations with 256-byte payloads. Each implementation fills one row of
 * microseconds per operation. */
#ifndef PARLEY_BENCH_CRYPTO_H
#define PARLEY_BENCH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum {
	OP_SETUP_INIT,  /* initiator: process the other side's bundle/keys + first encrypt */
	OP_SETUP_RESP,  /* responder: X3DH/Olm inbound + first decrypt (+ one-time key removal) */
	OP_ENCRYPT,     /* one message on an established sending chain */
	OP_DECRYPT,     /* the receiving side of the same chain */
	OP_PINGPONG,    /* encrypt + decrypt, direction flips every message: a DH ratchet step each */
	OP_GROUP_ENC,   /* sender key / Megolm encrypt */
	OP_GROUP_DEC,   /* sender key / Megolm decrypt */
	OP_COUNT
};

#define BENCH_PAYLOAD 256

typedef struct bench_params {
	int setups;   /* session setups per repetition */
	int chain;    /* messages on one chain */
	int pingpong; /* ping-pong messages */
	int group;    /* group messages */
	int reps;     /* repetitions; the best (lowest) time per op is kept */
} bench_params;

/* us[op] = microseconds per operation, < 0 when not measured. 0 on success. */
int bench_parley(const bench_params *p, double us[OP_COUNT]);
int bench_olm(const bench_params *p, double us[OP_COUNT]);

static inline double bench_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* keep the best of repetitions */
static inline void bench_keep(double *slot, double v)
{
	if (*slot < 0 || v < *slot)
		*slot = v;
}

#endif
