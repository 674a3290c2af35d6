#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_provider.h"

static void serve(fake_provider *f, int c)
{
	char buf[sizeof(((fake_req *)0)->head) + sizeof(((fake_req *)0)->body)];
	size_t len = 0;
	long clen = -1;
	char *eoh = NULL;
	for (;;) {
		struct pollfd p = {.fd = c, .events = POLLIN};
		if (poll(&p, 1, 5000) <= 0)
			return;
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		if (!eoh && (eoh = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");
			clen = cl ? strtol(cl + 17, NULL, 10) : 0;
		}
		if (eoh && (long)(len - (size_t)(eoh + 4 - buf)) >= clen)
			break;
		if (len == sizeof(buf) - 1)
			return;
	}
	fake_req r;
	memset(&r, 0, sizeof(r));
	snprintf(r.head, sizeof(r.head), "%.*s", (int)(eoh - buf), buf);
	snprintf(r.body, sizeof(r.body), "%s", eoh + 4);
	pthread_mutex_lock(&f->mu);
	r.status = f->pick(f, &r);
	char resp[1024];
	const char *body = f->answer != NULL ? f->answer(f, &r) : "{}";
	int m = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
					     "Connection: close\r\n\r\n%s",
			 r.status, strlen(body), body);
	if (f->n < FAKE_MAX_REQS)
		f->reqs[f->n++] = r;
	pthread_mutex_unlock(&f->mu);
	if (m < 0 || (size_t)m >= sizeof(resp) || write(c, resp, (size_t)m) < 0)
		return;
}

static void *loop(void *arg)
{
	fake_provider *f = arg;
	for (;;) {
		struct pollfd p = {.fd = f->fd, .events = POLLIN};
		int n = poll(&p, 1, 100);
		pthread_mutex_lock(&f->mu);
		int stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return NULL;
		if (n <= 0)
			continue;
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve(f, c);
		close(c);
	}
}

int fake_start(fake_provider *f, int (*pick)(fake_provider *f, const fake_req *r))
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	memset(f, 0, sizeof(*f));
	f->pick = pick;
	pthread_mutex_init(&f->mu, NULL);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(f->fd, 64) != 0 ||
	    getsockname(f->fd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	f->port = ntohs(a.sin_port);
	return pthread_create(&f->thread, NULL, loop, f) == 0 ? 0 : -1;
}

void fake_stop(fake_provider *f)
{
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	close(f->fd);
	pthread_mutex_destroy(&f->mu);
}

int fake_count(fake_provider *f, int status, const char *needle)
{
	int n = 0;
	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < f->n; i++)
		if (f->reqs[i].status == status && (!needle || strstr(f->reqs[i].body, needle)))
			n++;
	pthread_mutex_unlock(&f->mu);
	return n;
}
