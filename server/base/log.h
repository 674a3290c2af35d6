/* parleyd logging: levels checked before formatting (Redis serverLog habit), plain text or JSON lines.
 * Thread-safe: one write(2) per line, so lines from loop and store threads never interleave. */
#ifndef PARLEYD_LOG_H
#define PARLEYD_LOG_H

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern int log__level; /* read racily on purpose: a stale level for one line is harmless */

void log__setup(int level, int json, int fd);
int log__level_from_name(const char *name); /* -1 if unknown */
const char *log__level_name(int level);
void log__printf(int level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOG_AT(lvl, module, ...)                                                                   \
	do {                                                                                       \
		if ((lvl) <= log__level)                                                           \
			log__printf((lvl), (module), __VA_ARGS__);                                 \
	} while (0)
#define log_error(module, ...) LOG_AT(LOG_LEVEL_ERROR, module, __VA_ARGS__)
#define log_warn(module, ...) LOG_AT(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define log_info(module, ...) LOG_AT(LOG_LEVEL_INFO, module, __VA_ARGS__)
#define log_debug(module, ...) LOG_AT(LOG_LEVEL_DEBUG, module, __VA_ARGS__)

#endif
