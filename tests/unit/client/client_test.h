/* Client unit tests: a parley_client whose state lives in ROOT/SUB, talking to URL, with one timeout
 * for connecting and for each request. Shared by test_client, test_conn and test_e2e. */
#ifndef PARLEY_TEST_CLIENT_TEST_H
#define PARLEY_TEST_CLIENT_TEST_H
#include <stdio.h>

#include <parley/client.h>

#include "../test.h"

static inline parley_client *test_client_new(const char *root, const char *sub, const char *url,
					     unsigned timeout_ms)
{
	char dir[512];
	parley_client_options o;
	parley_client *c = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", root, sub);
	parley_client_options_init(&o);
	o.state_dir = dir;
	o.server_url = url;
	o.connect_timeout_ms = timeout_ms;
	o.request_timeout_ms = timeout_ms;
	TEST_EQ_INT(parley_client_new(&o, &c), PARLEY_OK);
	return c;
}
#endif
