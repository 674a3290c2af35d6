/* The requests a parley-bench connection sets itself up with (relay_parley.c, fanout_parley.c), each
 * encoded as one Request frame into out (reset first), ready for transport__send. */
#ifndef PARLEY_BENCH_PWIRE_H
#define PARLEY_BENCH_PWIRE_H
#include <stdint.h>

#include "common/dynbuf.h"

#define PWIRE_DEVICE_NAME "bench"

/* RegisterRequest for handle: a fresh Ed25519 device key signing wire__register_signed_bytes over the
 * server's challenge nonce; the secret key into sk (optional: to log in again later). The benchmark
 * signs no device list: any valid account key does. */
int pwire__register(dynbuf *out, uint64_t id, const char *handle, const uint8_t nonce[32], uint8_t sk[64]);
/* AuthRequest: device `device` of handle, signing the nonce with its key sk. */
int pwire__auth(dynbuf *out, uint64_t id, const char *handle, uint32_t device, const uint8_t nonce[32],
		const uint8_t sk[64]);
/* UploadKeysRequest: a fresh identity key, registration id regid, a signed prekey with a real XEdDSA
 * signature (the relay only delivers to devices that have keys). */
int pwire__keys(dynbuf *out, uint64_t id, uint32_t regid);

#endif
