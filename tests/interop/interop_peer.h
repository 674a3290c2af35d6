/* Talking to the Node peer (peer.js) that runs Signal's libsignal-client: process spawning and the
 * tab-separated line protocol (see peer.js for the commands). Shared by the interop driver and the
 * crypto benchmark. */
#ifndef PARLEY_INTEROP_PEER_H
#define PARLEY_INTEROP_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define PEER_MAX_FIELDS 16

typedef struct peer {
	pid_t pid;
	FILE *to;   /* peer's stdin */
	FILE *from; /* peer's stdout */
	char *line; /* last reply, split in place */
	size_t line_cap;
	char *field[PEER_MAX_FIELDS]; /* field[0] is "ok" or "err" */
	int nfields;
} peer;

/* Checks that `script`'s node_modules holds libsignal-client (else prints how to install it), then
 * starts `node script`. 0 on success, -1 with a message on stderr. */
int peer_start(peer *p, const char *node, const char *script);
/* Sends "quit", waits for the process, frees buffers. */
void peer_stop(peer *p);

/* Sends one request built from printf-style arguments (use \t between words) and reads the reply.
 * Returns 1 for "ok", 0 for "err" (field[1] = error name, field[2] = message), -1 if the peer died. */
int peer_call(peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* base64 helpers (standard alphabet, padded: what Node's Buffer uses). b64 returns a static ring
 * buffer entry, valid for the next few calls; unb64 returns the decoded length or -1. */
const char *b64(const uint8_t *p, size_t n);
long unb64(uint8_t *out, size_t cap, const char *s);

#endif
