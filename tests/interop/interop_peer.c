/* Node peer process and line protocol (see interop_peer.h). */
#include "interop_peer.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

int peer_start(peer *p, const char *node, const char *script)
{
	int in[2], out[2];
	char dir[4096], mod[4200];
	struct stat sb;

	memset(p, 0, sizeof *p);
	snprintf(dir, sizeof dir, "%s", script);
	snprintf(mod, sizeof mod, "%s/node_modules/@signalapp/libsignal-client/package.json", dirname(dir));
	if (stat(mod, &sb) != 0) {
		fprintf(stderr,
			"FAIL: %s is missing.\n"
			"      The interop tests need Signal's libsignal-client from npm: run tests/interop/setup.sh\n"
			"      (npm ci against the committed package-lock.json) before `make test`.\n",
			mod);
		return -1;
	}
	if (pipe(in) != 0 || pipe(out) != 0)
		return -1;
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execlp(node, node, script, (char *)NULL);
		fprintf(stderr, "FAIL: cannot run %s: %s (is node installed?)\n", node, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->to = fdopen(in[1], "w");
	p->from = fdopen(out[0], "r");
	signal(SIGPIPE, SIG_IGN);
	return p->to && p->from ? 0 : -1;
}

void peer_stop(peer *p)
{
	int status;
	if (p->to) {
		fputs("quit\n", p->to);
		fclose(p->to);
	}
	if (p->from)
		fclose(p->from);
	if (p->pid > 0)
		waitpid(p->pid, &status, 0);
	free(p->line);
	memset(p, 0, sizeof *p);
}

int peer_call(peer *p, const char *fmt, ...)
{
	va_list ap;
	ssize_t n;
	char *tok;

	va_start(ap, fmt);
	vfprintf(p->to, fmt, ap);
	va_end(ap);
	fputc('\n', p->to);
	if (fflush(p->to) != 0)
		return -1;
	n = getline(&p->line, &p->line_cap, p->from);
	if (n <= 0)
		return -1;
	if (p->line[n - 1] == '\n')
		p->line[n - 1] = '\0';
	p->nfields = 0;
	/* split on tabs, keeping empty fields */
	tok = p->line;
	while (tok != NULL && p->nfields < PEER_MAX_FIELDS) {
		char *tab = strchr(tok, '\t');
		p->field[p->nfields++] = tok;
		if (tab != NULL)
			*tab = '\0';
		tok = tab ? tab + 1 : NULL;
	}
	return strcmp(p->field[0], "ok") == 0 ? 1 : 0;
}

const char *b64(const uint8_t *p, size_t n)
{
	static char *ring[8];
	static int next;
	size_t need = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	char *s;

	next = (next + 1) % 8;
	free(ring[next]);
	s = ring[next] = malloc(need);
	if (s == NULL)
		return "";
	sodium_bin2base64(s, need, p, n, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

long unb64(uint8_t *out, size_t cap, const char *s)
{
	size_t len = 0;
	if (sodium_base642bin(out, cap, s, strlen(s), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	return (long)len;
}
