/* 19: one frame limit for parleyd and libparley (docs/protocol.md §1).
 *
 * A send carries one ciphertext per device of the recipient in ONE frame, so the largest message
 * (PARLEY_MESSAGE_MAX bytes, about 8.5 KiB once padded and encrypted) to an account with max_devices
 * (default 16) devices is a frame of about 136 KB. parleyd accepts frames up to max_message_bytes
 * (262144); a client whose own frame limit is lower (it was 64 KiB) cannot send such a message at all.
 * This test sends it with real libparley clients to a real parleyd and checks that the 16th device
 * receives it intact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parley/client.h>
#include <parley/error.h>

#include "harness.h"

#define N_DEV 16 /* parleyd's default max_devices */

static srv s;
static char url[128];

static parley_client *client(const char *name)
{
	parley_client *c = it_client_at(s.dir, name, url, 0);
	if (c == NULL) {
		fprintf(stderr, "Bail out! cannot create client %s\n", name);
		srv_stop(&s);
		srv_cleanup(&s);
		exit(99);
	}
	return c;
}

typedef struct inbox {
	int n, intact, errors;
	const uint8_t *want;
	size_t want_len;
} inbox;

static void on_message(parley_client *c, const parley_message *m, void *user)
{
	inbox *in = user;
	in->n++;
	in->intact += m->body_len == in->want_len && memcmp(m->body, in->want, m->body_len) == 0;
}

static void on_error(parley_client *c, parley_err err, const char *handle, uint32_t device, void *user)
{
	((inbox *)user)->errors++;
}

/* The largest message to an account with N_DEV devices: one frame of ~136 KB, under the shared limit. */
static void largest_message_to_every_device(void)
{
	static uint8_t body[PARLEY_MESSAGE_MAX];
	char name[32];
	uint8_t code[PARLEY_DEVICE_LINK_CODE_BYTES];
	uint32_t id = 0;

	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (uint8_t)('a' + i % 26);
	parley_client *alice = client("alice"), *bob = client("bob1");
	IT_EQ(parley_register(alice, "alice", NULL), PARLEY_OK);
	IT_EQ(parley_register(bob, "bob", NULL), PARLEY_OK);
	for (int d = 2; d <= N_DEV; d++) {
		snprintf(name, sizeof name, "bob%d", d);
		parley_client *nd = client(name);
		IT_EQ(parley_device_link_code(nd, "bob", code), PARLEY_OK);
		IT_EQ(parley_device_add(bob, code, name, &id), PARLEY_OK);
		IT_EQ(id, (uint32_t)d);
		IT_EQ(parley_link(nd, "bob", id), PARLEY_OK); /* uploads its keys: it counts in device lists */
		parley_client_free(nd);
	}
	parley_client_free(bob);

	int rc = parley_send_bytes(alice, "bob", body, sizeof body, NULL);
	if (rc != PARLEY_OK)
		fprintf(stderr, "# send: %s (%s)\n", parley_errname(rc), parley_client_errmsg(alice));
	IT_EQ(rc, PARLEY_OK);
	parley_client_free(alice);

	snprintf(name, sizeof name, "bob%d", N_DEV);
	parley_client *last = client(name);
	inbox in = {.want = body, .want_len = sizeof body};
	parley_events ev;
	memset(&ev, 0, sizeof ev);
	ev.on_message = on_message;
	ev.on_error = on_error;
	ev.user = &in;
	parley_client_set_events(last, &ev);
	IT_EQ(parley_connect(last), PARLEY_OK);
	for (int i = 0; i < 100 && in.n < 1; i++)
		parley_client_run(last, 50);
	parley_client_set_events(last, NULL);
	parley_client_run(last, 100); /* the ack goes out */
	IT_EQ(in.n, 1);
	IT_EQ(in.intact, 1);
	IT_EQ(in.errors, 0);
	parley_client_free(last);
}

int main(void)
{
	srv_start(&s, NULL);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/websocket", s.port);
	IT_RUN(largest_message_to_every_device);
	IT_EQ(srv_stop(&s), 0);
	srv_cleanup(&s);
	return it_failures ? 1 : 0;
}
