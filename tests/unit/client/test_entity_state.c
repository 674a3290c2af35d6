/* The client's entity state (lib/client/entity_state.c), without a server: the pins that stop a
 * server from swapping an entity key or replaying an old staff list, and the entity key's life in
 * client.db (saved before the create request, kept on success, dropped on failure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "client/entity_internal.h"

static parley_client *client_with_account(char *dir)
{
	parley_client_options o;
	parley_client *c = NULL;
	client_account a;

	TEST_CHECK(mkdtemp(dir) != NULL);
	parley_client_options_init(&o);
	o.state_dir = dir;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	TEST_EQ_INT(client__ensure_key(c, 1), PARLEY_OK);
	memset(&a, 0, sizeof a);
	snprintf(a.handle, sizeof a.handle, "alice");
	a.account_id = 1;
	a.device_id = 1;
	snprintf(a.server_url, sizeof a.server_url, "ws://127.0.0.1:1/v1/websocket");
	TEST_EQ_INT(client__state_save_account(c->state, &a, c->errmsg, sizeof c->errmsg), PARLEY_OK);
	return c;
}

static void test_pins(void)
{
	char dir[] = "/tmp/parley-ent-XXXXXX";
	parley_client *c = client_with_account(dir);
	uint8_t k1[PARLEY_ENTITY_KEY_BYTES], k2[PARLEY_ENTITY_KEY_BYTES], got[PARLEY_ENTITY_KEY_BYTES];

	memset(k1, 1, sizeof k1);
	memset(k2, 2, sizeof k2);
	k1[0] = k2[0] = 0x05;
	TEST_EQ_INT(client__entity_pinned_key(c, "acme", got), PARLEY_E_NOT_FOUND);
	TEST_EQ_INT(client__entity_pin(c, "acme", k1, 3), PARLEY_OK); /* first seen: pinned */
	TEST_EQ_INT(client__entity_pinned_key(c, "acme", got), PARLEY_OK);
	TEST_EQ_MEM(got, k1, sizeof k1);
	TEST_EQ_INT(client__entity_pin(c, "acme", k1, 3), PARLEY_OK);  /* the same again */
	TEST_EQ_INT(client__entity_pin(c, "acme", k1, 2), PARLEY_E_STAFF_LIST_ROLLBACK);
	TEST_EQ_INT(client__entity_pin(c, "acme", k1, 5), PARLEY_OK);
	TEST_EQ_INT(client__entity_pin(c, "acme", k1, 4), PARLEY_E_STAFF_LIST_ROLLBACK); /* 5 was kept */
	TEST_EQ_INT(client__entity_pin(c, "acme", k2, 9), PARLEY_E_UNTRUSTED_IDENTITY);
	TEST_EQ_INT(client__entity_pinned_key(c, "acme", got), PARLEY_OK);
	TEST_EQ_MEM(got, k1, sizeof k1); /* a refused key changes nothing */
	TEST_EQ_INT(client__entity_pin(c, "other", k2, 1), PARLEY_OK); /* pins are per entity */
	TEST_EQ_INT(client__entity_unpin(c, "acme"), PARLEY_OK);
	TEST_EQ_INT(client__entity_pin(c, "acme", k2, 1), PARLEY_OK); /* after parley_entity_trust */
	parley_client_free(c);
	/* pins survive the process */
	{
		parley_client_options o;
		parley_client_options_init(&o);
		o.state_dir = dir;
		TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
		TEST_EQ_INT(client__entity_pin(c, "acme", k2, 0), PARLEY_E_STAFF_LIST_ROLLBACK);
		TEST_EQ_INT(client__entity_pin(c, "acme", k1, 2), PARLEY_E_UNTRUSTED_IDENTITY);
		parley_client_free(c);
	}
	test_remove_tree(dir);
}

static void test_keys(void)
{
	char dir[] = "/tmp/parley-ent-XXXXXX";
	parley_client *c = client_with_account(dir);
	uint8_t pub[PARLEY_ENTITY_KEY_BYTES], pub2[PARLEY_ENTITY_KEY_BYTES], got[PARLEY_ENTITY_KEY_BYTES], priv[32];

	TEST_EQ_INT(client__entity_key_load(c, "acme", got, priv), PARLEY_E_ENTITY_KEY_REQUIRED);
	TEST_EQ_INT(client__entity_key_new(c, "acme", pub), PARLEY_OK);
	TEST_EQ_INT(pub[0], 0x05);
	/* saved before the request: a crash after the server accepted it keeps the key */
	TEST_EQ_INT(client__entity_key_load(c, "acme", got, priv), PARLEY_OK);
	TEST_EQ_MEM(got, pub, sizeof pub);
	/* the create failed: the key goes; a new attempt makes a new one */
	TEST_EQ_INT(client__entity_key_done(c, "acme", 0, 0), PARLEY_OK);
	TEST_EQ_INT(client__entity_key_load(c, "acme", got, priv), PARLEY_E_ENTITY_KEY_REQUIRED);
	TEST_EQ_INT(client__entity_key_new(c, "acme", pub2), PARLEY_OK);
	TEST_CHECK(memcmp(pub, pub2, sizeof pub) != 0);
	TEST_EQ_INT(client__entity_key_done(c, "acme", 42, 1), PARLEY_OK);
	/* created: never replaced by another create on this device */
	TEST_EQ_INT(client__entity_key_new(c, "acme", pub), PARLEY_E_EXISTS);
	TEST_EQ_INT(client__entity_key_load(c, "acme", got, priv), PARLEY_OK);
	TEST_EQ_MEM(got, pub2, sizeof pub2);
	/* a failure report for another attempt does not delete a created entity's key */
	TEST_EQ_INT(client__entity_key_done(c, "acme", 0, 0), PARLEY_OK);
	TEST_EQ_INT(client__entity_key_load(c, "acme", got, priv), PARLEY_OK);
	parley_client_free(c);
	test_remove_tree(dir);
}

int main(void)
{
	TEST_RUN(test_pins);
	TEST_RUN(test_keys);
	TEST_EXIT();
}
