/* fake-provider: fake_provider.c as a standalone process, for tests written in shell (t37):
 *
 *   fake-provider --port-file F --log DIR
 *
 * listens on 127.0.0.1 (a port of the kernel's choice), then writes the port into F (write + rename:
 * a reader never sees half a number), writes each request it receives as DIR/NNNN.req (request line,
 * headers, a blank line, the body; also write + rename, so a file that exists is complete) and answers
 * it as the provider would on success:
 *   POST .../Messages.json  (Twilio's Messages API)   201 {"sid":"SM...","status":"queued",...}
 *   POST .../messages       (the WhatsApp Cloud API)  200 {"messaging_product":"whatsapp",...,"messages":[{"id":"wamid..."}]}
 *   anything else                                     200 {}
 * SIGTERM or SIGINT stops it (exit 0). Exit 2: usage; 1: could not listen or write the port file. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fake_provider.h"

static const char *log_dir;
static int seq;
static char answer_buf[512];

/* the request target of a head ("POST /x HTTP/1.1..."): is it `suffix`, ignoring a query? */
static int target_ends(const char *head, const char *suffix)
{
	const char *sp = strchr(head, ' '), *end;
	size_t n = strlen(suffix);
	if (sp == NULL)
		return 0;
	end = sp + 1 + strcspn(sp + 1, " ?");
	return (size_t)(end - (sp + 1)) >= n && memcmp(end - n, suffix, n) == 0;
}

/* Records the request; every request succeeds (a test of failures uses the in-process fake). */
static int pick(fake_provider *f, const fake_req *r)
{
	char path[4096], tmp[4200];
	FILE *out;
	(void)f;
	seq++;
	snprintf(path, sizeof(path), "%s/%04d.req", log_dir, seq);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	out = fopen(tmp, "w");
	if (out != NULL) {
		int ok = fprintf(out, "%s\r\n\r\n%s", r->head, r->body) >= 0;
		if (fclose(out) == 0 && ok)
			(void)rename(tmp, path);
	}
	return target_ends(r->head, "/Messages.json") ? 201 : 200;
}

/* Plausible success bodies: the gateway only needs a 2xx, but a real client may log the id. */
static const char *answer(fake_provider *f, const fake_req *r)
{
	(void)f;
	if (target_ends(r->head, "/Messages.json"))
		snprintf(answer_buf, sizeof(answer_buf),
			 "{\"sid\":\"SM%032d\",\"status\":\"queued\",\"api_version\":\"2010-04-01\",\"num_segments\":\"1\"}",
			 seq);
	else if (target_ends(r->head, "/messages"))
		snprintf(answer_buf, sizeof(answer_buf),
			 "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"\",\"wa_id\":\"\"}],"
			 "\"messages\":[{\"id\":\"wamid.fake%08d\"}]}",
			 seq);
	else
		snprintf(answer_buf, sizeof(answer_buf), "{}");
	return answer_buf;
}

static int write_port(const char *file, unsigned short port)
{
	char tmp[4200];
	FILE *out;
	int ok;
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	out = fopen(tmp, "w");
	if (out == NULL)
		return -1;
	ok = fprintf(out, "%u\n", (unsigned)port) > 0;
	if (fclose(out) != 0 || !ok)
		return -1;
	return rename(tmp, file);
}

static fake_provider fake;

int main(int argc, char **argv)
{
	const char *port_file = NULL;
	sigset_t set;
	int sig;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port-file") == 0)
			port_file = argv[i + 1];
		else if (strcmp(argv[i], "--log") == 0)
			log_dir = argv[i + 1];
		else
			port_file = NULL, i = argc; /* unknown option: usage below */
	}
	if (port_file == NULL || log_dir == NULL || argc != 5) {
		fprintf(stderr, "usage: fake-provider --port-file FILE --log DIR\n");
		return 2;
	}
	/* blocked before the server thread exists, so it inherits the mask and sigwait below gets them */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (fake_start(&fake, pick) != 0) {
		perror("fake-provider: listen");
		return 1;
	}
	/* set before the port is published: no request can arrive earlier */
	pthread_mutex_lock(&fake.mu);
	fake.answer = answer;
	pthread_mutex_unlock(&fake.mu);
	if (write_port(port_file, fake.port) != 0) {
		perror("fake-provider: port file");
		fake_stop(&fake);
		return 1;
	}
	(void)sigwait(&set, &sig);
	fake_stop(&fake);
	return 0;
}
