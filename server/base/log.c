#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int log__level = LOG_LEVEL_INFO;
static int log_json;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log__setup(int level, int json, int fd)
{
	log__level = level;
	log_json = json;
	log_fd = fd;
}

int log__level_from_name(const char *name)
{
	for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *log__level_name(int level)
{
	if (level < 0 || level > LOG_LEVEL_DEBUG)
		return "?";
	return level_names[level];
}

/* JSON string escaping of the formatted message: only what JSON requires. */
static size_t json_escape(char *dst, size_t cap, const char *src)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)src; *p && o + 7 < cap; p++) {
		if (*p == '"' || *p == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", *p);
		} else {
			dst[o++] = (char)*p;
		}
	}
	dst[o] = '\0';
	return o;
}

void log__printf(int level, const char *module, const char *fmt, ...)
{
	char msg[2048], line[4608], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + tl, sizeof ts - tl, ".%03ldZ", now.tv_nsec / 1000000);

	int n;
	if (log_json) {
		char esc[4200];
		json_escape(esc, sizeof esc, msg);
		n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}\n", ts,
			     log__level_name(level), module, esc);
	} else {
		n = snprintf(line, sizeof line, "%s %-5s [%s] %s\n", ts, log__level_name(level), module, msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = (int)sizeof line - 1;
	/* a failed log write has nowhere to be reported */
	ssize_t w = write(log_fd, line, (size_t)n);
	(void)w;
}
