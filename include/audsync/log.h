/* log.h - one line per event on stderr, logfmt or JSON */
#ifndef AUDSYNC_LOG_H
#define AUDSYNC_LOG_H

#include <stddef.h>

typedef enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_ERROR = 3
} log_level;

typedef enum log_format {
	LOG_FORMAT_LOGFMT = 0,
	LOG_FORMAT_JSON = 1
} log_format;

extern log_level log_min_level;

/* Returns 0, or -1 when name is not a level (nothing changed). */
int log_set_level_name(const char *name) __attribute__((warn_unused_result));
/* Returns 0, or -1 when name is not "logfmt" or "json". */
int log_set_format_name(const char *name) __attribute__((warn_unused_result));

/*
 * Sets the level and format from AUDSYNC_LOG_LEVEL and AUDSYNC_LOG_FORMAT,
 * then from level and format (the command line's, NULL when not given),
 * which win. Returns 0, or -1 with err set and nothing changed.
 */
int log_setup(const char *level, const char *format, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Starts a new run id, the run_id field of every line from now on: each
 * command is one run, and each pass of the daemon another. */
void log_new_run_id(void);

/* On a terminal: shows text as the one status line under the log, in
 * place of the last (NULL clears it). Log lines clear it first. */
void log_status_line(const char *text);

/*
 * Writes one event: msg, then the key/value pairs of fields given as
 * alternating const char * key, const char * value, ended by NULL; a
 * typed field below stands in the place of one pair. Values are quoted as
 * needed; nothing here ever prints a secret unless a caller passes one,
 * and callers never do.
 */
void log_event(log_level level, const char *msg, ...) __attribute__((sentinel));

/*
 * Typed fields, so that no caller formats a number itself: LOG_INT(key, n)
 * for a count or an id, LOG_SECONDS(key, s) for a duration in seconds
 * (written with milliseconds: 1.250). JSON logs carry both as numbers.
 * LOG_INT_KNOWN(key, n, known) is LOG_INT(key, n) when known, else a
 * figure not known yet: null in JSON, - in logfmt. Each is three
 * arguments: a tag, the key, the value. Every other value is text, and a
 * JSON string whatever it reads as.
 */
extern const char log_int_tag[];
extern const char log_unknown_tag[];
extern const char log_seconds_tag[];
#define LOG_INT(key, n)	    log_int_tag, (const char *)(key), (long long)(n)
#define LOG_SECONDS(key, s) log_seconds_tag, (const char *)(key), (double)(s)
#define LOG_INT_KNOWN(key, n, known)                                           \
	(const char *)((known) ? log_int_tag : log_unknown_tag),               \
		(const char *)(key), (long long)(n)

/* The level test is inline so a disabled level costs one comparison. */
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_min_level <= LOG_LEVEL_DEBUG)                          \
			log_event(LOG_LEVEL_DEBUG, __VA_ARGS__,                \
				  (const char *)NULL);                         \
	} while (0)
#define log_info(...)                                                          \
	do {                                                                   \
		if (log_min_level <= LOG_LEVEL_INFO)                           \
			log_event(LOG_LEVEL_INFO, __VA_ARGS__,                 \
				  (const char *)NULL);                         \
	} while (0)
#define log_warn(...)                                                          \
	do {                                                                   \
		if (log_min_level <= LOG_LEVEL_WARN)                           \
			log_event(LOG_LEVEL_WARN, __VA_ARGS__,                 \
				  (const char *)NULL);                         \
	} while (0)
#define log_error(...)                                                         \
	do {                                                                   \
		if (log_min_level <= LOG_LEVEL_ERROR)                          \
			log_event(LOG_LEVEL_ERROR, __VA_ARGS__,                \
				  (const char *)NULL);                         \
	} while (0)

#endif
