/* MQTT 3.1.1 for parley-bench, client side, sans-I/O: encoders that append one packet to a dynbuf,
 * and a parser that takes one packet off the front of a buffer. No socket, no allocation in the
 * parser; every length is checked against the buffer and against a hard packet limit before use.
 *
 * Only what the relay benchmark speaks: CONNECT, SUBSCRIBE (one filter), PUBLISH (QoS 0/1), PUBACK,
 * PINGREQ and DISCONNECT out; CONNACK, SUBACK, PUBLISH, PUBACK and PINGRESP in (a server sends no
 * other packet to a client that never publishes at QoS 2 nor unsubscribes; anything else is refused
 * as malformed, so a broker that sends it shows up as an error, not as silence).
 */
#ifndef PARLEY_BENCH_MQTT_H
#define PARLEY_BENCH_MQTT_H
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
};

#define MQTT_MAX_REMAINING 268435455u /* 4-byte variable length, the protocol's own bound */

/* One parsed packet; pointers point into the parsed buffer. */
typedef struct mqtt_packet {
	enum mqtt_type type;
	size_t len;             /* bytes of the whole packet (fixed header included) */
	unsigned id;            /* PUBLISH (QoS > 0), PUBACK, SUBACK: packet identifier (1..65535) */
	unsigned qos;           /* PUBLISH */
	int dup, retain;        /* PUBLISH */
	const uint8_t *topic;   /* PUBLISH: not NUL-terminated */
	size_t topic_len;
	const uint8_t *payload; /* PUBLISH */
	size_t payload_len;
	unsigned session_present, rc; /* CONNACK; SUBACK: rc = the first return code (0, 1, 2 or 0x80) */
} mqtt_packet;

/* Parses the packet at the start of buf[0..len). PARLEY_OK: *p filled, p->len bytes used.
 * PARLEY_E_PROTO_TRUNCATED: not all there yet (read more). PARLEY_E_PROTO_FIELD_TOO_LARGE: the packet
 * announces more than max_packet bytes. PARLEY_E_PROTO_MALFORMED: anything else (bad length encoding,
 * bad flags, a packet type a server must not send to this client, inconsistent lengths). */
int mqtt__parse(const uint8_t *buf, size_t len, size_t max_packet, mqtt_packet *p);

/* Encoders: PARLEY_OK, PARLEY_E_INVAL (a string over 65,535 bytes, packet id 0, qos > 1) or the
 * dynbuf's error (its max reached); on error the buffer is unchanged. */
int mqtt__connect(dynbuf *b, const char *client_id, unsigned keepalive_s, int clean_session);
int mqtt__subscribe(dynbuf *b, unsigned id, const char *filter, unsigned qos);
int mqtt__publish(dynbuf *b, const char *topic, unsigned qos, unsigned id, const uint8_t *payload, size_t len);
int mqtt__puback(dynbuf *b, unsigned id);
int mqtt__pingreq(dynbuf *b);
int mqtt__disconnect(dynbuf *b);

/* The sender's packet id for sequence number seq (ids cycle through 1..65535), and back: the
 * sequence number, among the `window` most recent below next_seq, whose id is `id`. 0 and *seq set,
 * or -1 when no message in that window has this id. */
unsigned mqtt__id_of(uint64_t seq);
int mqtt__seq_of(unsigned id, uint64_t next_seq, unsigned window, uint64_t *seq);

#endif
