/* A tiny HTTP/1.1 server for the gateway tests: a thread accepting one request per connection on
 * 127.0.0.1, recording each request (target, headers, body) and answering with the status a callback
 * picks. Enough of HTTP for libcurl's POSTs (Content-Length bodies, Connection: close). */
#ifndef PARLEY_TEST_FAKE_PROVIDER_H
#define PARLEY_TEST_FAKE_PROVIDER_H
#include <pthread.h>

#define FAKE_MAX_REQS 256
typedef struct fake_req {
	char head[4096];
	char body[16384];
	int status; /* what was answered */
} fake_req;

typedef struct fake_provider {
	int fd;
	unsigned short port;
	pthread_t thread;
	pthread_mutex_t mu;
	int stop;
	fake_req reqs[FAKE_MAX_REQS];
	int n;
	int (*pick)(struct fake_provider *f, const fake_req *r); /* the status to answer */
	/* the JSON body answered with that status; NULL (the default) answers "{}". Called under mu. */
	const char *(*answer)(struct fake_provider *f, const fake_req *r);
	int fail_left; /* for pickers: answers still to fail */
} fake_provider;

int fake_start(fake_provider *f, int (*pick)(fake_provider *f, const fake_req *r));
void fake_stop(fake_provider *f);
int fake_count(fake_provider *f, int status, const char *needle); /* requests answered status whose body has needle */

#endif
