/* `parley bot --exec`: the program's process. Started with posix_spawnp (no shell: its arguments are
 * passed as they are, nothing is expanded), its standard input and output are pipes whose ends here are
 * non-blocking and close-on-exec; its standard error is the bot's. Nothing here blocks: cmd_bot.c
 * waits on both pipes with poll() between slices of the client's loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bot.h"

extern char **environ;

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int bot__child_spawn(bot_child *ch, char *const argv[], char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, rc;

	memset(ch, 0, sizeof(*ch));
	ch->to_fd = ch->from_fd = -1;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* dup2 clears close-on-exec on the child's 0 and 1; every other end closes at exec */
	rc = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	if (rc == 0)
		rc = posix_spawnp(&ch->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		snprintf(err, errlen, "cannot run '%s': %s", argv[0], strerror(rc));
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	ch->to_fd = in[1];
	ch->from_fd = out[0];
	if (fcntl(ch->to_fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(ch->from_fd, F_SETFL, O_NONBLOCK) != 0) {
		/* cannot happen on a pipe; a blocking end would stall the client, so stop the program */
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		bot__child_stop(ch, 0);
		return -1;
	}
	return 0;
fail:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	return -1;
}

long bot__child_write(bot_child *ch, const char *data, size_t len)
{
	ssize_t n;

	if (ch->to_fd < 0)
		return -1;
	do
		n = write(ch->to_fd, data, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (long)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	/* EPIPE (SIGPIPE is ignored by main): the program closed its standard input */
	close_fd(&ch->to_fd);
	return -1;
}

long bot__child_read(bot_child *ch, char *buf, size_t cap)
{
	ssize_t n;

	if (ch->from_fd < 0)
		return -1;
	do
		n = read(ch->from_fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return (long)n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	close_fd(&ch->from_fd); /* end of file (or an error: the same for us) */
	return -1;
}

void bot__child_wait(bot_child *ch, int want_write, int want_read, unsigned wait_ms, int *can_write, int *can_read)
{
	struct pollfd p[2];
	int n = 0, iw = -1, ir = -1;

	*can_write = *can_read = 0;
	if (want_write && ch->to_fd >= 0) {
		p[n].fd = ch->to_fd;
		p[n].events = POLLOUT;
		iw = n++;
	}
	if (want_read && ch->from_fd >= 0) {
		p[n].fd = ch->from_fd;
		p[n].events = POLLIN;
		ir = n++;
	}
	if (poll(p, (nfds_t)n, (int)wait_ms) <= 0)
		return;
	/* an error or hang-up is reported as ready: the write or read that follows finds out */
	if (iw >= 0 && p[iw].revents != 0)
		*can_write = 1;
	if (ir >= 0 && p[ir].revents != 0)
		*can_read = 1;
}

int bot__child_reap(bot_child *ch)
{
	int st;
	pid_t r;

	if (ch->exited)
		return 1;
	if (ch->pid <= 0)
		return 0;
	do
		r = waitpid(ch->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != ch->pid)
		return 0;
	ch->exited = 1;
	ch->status = st;
	return 1;
}

void bot__child_close_input(bot_child *ch)
{
	close_fd(&ch->to_fd);
}

void bot__child_stop(bot_child *ch, unsigned grace_ms)
{
	unsigned waited = 0;

	close_fd(&ch->to_fd);
	if (ch->pid > 0 && !bot__child_reap(ch)) {
		/* end of input first (a well-behaved program exits on it), then SIGTERM, then SIGKILL */
		while (waited < grace_ms && !bot__child_reap(ch)) {
			(void)poll(NULL, 0, 20);
			waited += 20;
		}
		if (!ch->exited) {
			kill(ch->pid, SIGTERM);
			for (waited = 0; waited < 2000 && !bot__child_reap(ch); waited += 20)
				(void)poll(NULL, 0, 20);
		}
		if (!ch->exited) {
			kill(ch->pid, SIGKILL);
			while (!bot__child_reap(ch))
				(void)poll(NULL, 0, 20);
		}
	}
	close_fd(&ch->from_fd);
}

int bot__child_exit_code(const bot_child *ch)
{
	if (WIFEXITED(ch->status))
		return WEXITSTATUS(ch->status);
	if (WIFSIGNALED(ch->status))
		return 128 + WTERMSIG(ch->status);
	return 1;
}
