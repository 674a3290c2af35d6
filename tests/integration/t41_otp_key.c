/* t41: one OTP key per database (auth/otpcheck.c). The database keeps the key's fingerprint; a node whose
 * <data_dir>/auth_otp.key differs would fail every code another node sent ("wrong code" for a correct
 * code), so it says so at start-up.
 *
 *   sqlite_key_changed   SQLite (one node): the first start stores the fingerprint; a restart with another
 *                        key file (a restored backup, a lost key) starts with a warning and takes the new
 *                        fingerprint, so the next restart warns no more.
 *   pg_second_node       PostgreSQL (integration-pg pass): a second node with a data_dir of its own, so
 *                        another key, refuses to start and says what to do; with the first node's key
 *                        file copied it starts, and the first node still serves.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define STORED "its fingerprint is now the database's"
#define WARNED "is not the key this database last ran with"
#define REFUSED "differs from the key the other nodes of this database use"

/* occurrences of what in s's log */
static int log_count(srv *s, const char *what)
{
	char *log = srv_log(s);
	int n = 0;
	for (const char *p = log; p != NULL && (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	free(log);
	return n;
}

/* a new random key file in s's data dir, in place of the one parleyd made */
static void replace_key(srv *s)
{
	char path[320];
	unsigned char key[32];
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)(rand() & 0xff) ^ 0x5a;
	snprintf(path, sizeof path, "%s/data/auth_otp.key", s->dir);
	IT_EQ(unlink(path), 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	IT_CHECK(fd >= 0 && write(fd, key, sizeof key) == (ssize_t)sizeof key);
	if (fd >= 0)
		close(fd);
}

static void sqlite_key_changed(void)
{
	srv a;
	srv_start(&a, NULL);
	IT_EQ(log_count(&a, STORED), 1);
	IT_EQ(log_count(&a, WARNED), 0);
	IT_EQ(srv_stop(&a), 0);

	srv_restart(&a); /* same key: silent */
	IT_EQ(log_count(&a, STORED), 1);
	IT_EQ(log_count(&a, WARNED), 0);
	IT_EQ(srv_stop(&a), 0);

	replace_key(&a);
	srv_restart(&a); /* it starts (srv_restart fails the test otherwise), with the warning */
	IT_EQ(log_count(&a, WARNED), 1);
	IT_CHECK(server_alive(a.port));
	IT_EQ(srv_stop(&a), 0);

	srv_restart(&a); /* the new fingerprint was stored: no second warning */
	IT_EQ(log_count(&a, WARNED), 1);
	IT_EQ(srv_stop(&a), 0);
	srv_cleanup(&a);
}

/* parleyd sharing a's database from a fresh data_dir of its own exits non-zero, its log saying `why` */
static void second_node_refused(const srv *a, const char *why)
{
	char dir[] = "/tmp/parley-t41-XXXXXX", cmd[1400], log[300];
	if (mkdtemp(dir) == NULL)
		return;
	snprintf(log, sizeof log, "%s/log", dir);
	/* timeout: a parleyd that wrongly starts would serve until stopped (exit 124 then, a failure) */
	snprintf(cmd, sizeof cmd,
		 "timeout 15 '%s' --port=0 --admin_port=0 --data_dir='%s/d' '--store=%s' >'%s' 2>&1",
		 getenv("PARLEYD"), dir, a->store, log);
	int rc = system(cmd);
	IT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) != 0);
	char buf[8192] = "";
	FILE *f = fopen(log, "r");
	if (f != NULL) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	IT_CHECK(strstr(buf, why) != NULL);
	IT_CHECK(strstr(buf, "copy auth_otp.key from a running node") != NULL); /* says what to do */
	IT_CHECK(strstr(buf, "listening on") == NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
}

static void pg_second_node(void)
{
	srv a, b;
	srv_start(&a, NULL);
	IT_EQ(log_count(&a, STORED), 1);
	second_node_refused(&a, REFUSED);

	char a_store[600];
	snprintf(a_store, sizeof a_store, "--store=%s", a.store);
	const char *extra[] = {a_store, NULL};
	srv_start_peer(&b, &a, extra); /* node 1's key: it starts (or the test fails here) */
	IT_EQ(log_count(&b, REFUSED), 0);
	IT_EQ(log_count(&b, STORED), 0); /* the fingerprint was there already */
	IT_CHECK(server_alive(b.port));
	IT_CHECK(server_alive(a.port));
	IT_EQ(srv_stop(&b), 0);
	IT_EQ(srv_stop(&a), 0);
	srv_cleanup(&b);
	srv_cleanup(&a);
}

int main(void)
{
	srand((unsigned)getpid());
	if (it_pg())
		IT_RUN(pg_second_node);
	else
		IT_RUN(sqlite_key_changed);
	printf("# %d failures\n", it_failures);
	return it_failures ? 1 : 0;
}
