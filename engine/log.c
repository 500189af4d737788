/* log.c - one line per event on stderr, logfmt or JSON */
#include "audsync/log.h"

#include "audsync/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

log_level log_min_level = LOG_LEVEL_INFO;
static log_format log_fmt = LOG_FORMAT_LOGFMT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_set_level_name(const char *name)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			log_min_level = (log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_set_format_name(const char *name)
{
	if (strcmp(name, "logfmt") == 0)
		log_fmt = LOG_FORMAT_LOGFMT;
	else if (strcmp(name, "json") == 0)
		log_fmt = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

/* 1 when v holds a byte a terminal or a log reader would act on. */
static int has_control(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 1;
	return 0;
}

/* The first of a, b that is set (non-empty). */
static const char *first_set(const char *a, const char *b)
{
	return a && *a ? a : b && *b ? b : NULL;
}

int log_setup(const char *level, const char *format, char *err, size_t errlen)
{
	const char *lv = first_set(level, getenv("AUDSYNC_LOG_LEVEL"));
	const char *fm = first_set(format, getenv("AUDSYNC_LOG_FORMAT"));
	log_level old_level = log_min_level;

	if (lv && log_set_level_name(lv) != 0) {
		snprintf(err, errlen,
			 "%s must be debug, info, warn or error, not '%s'",
			 lv == level ? "--log-level" : "AUDSYNC_LOG_LEVEL", lv);
		return -1;
	}
	if (fm && log_set_format_name(fm) != 0) {
		log_min_level = old_level;
		snprintf(err, errlen, "%s must be logfmt or json, not '%s'",
			 fm == format ? "--log-format" : "AUDSYNC_LOG_FORMAT",
			 fm);
		return -1;
	}
	return 0;
}

/* logfmt quotes a value that is empty or holds a space, quote, '=',
 * backslash or control character; quoting escapes them all. */
static void put_logfmt_value(buf *b, const char *v)
{
	if (*v && strpbrk(v, " \"=\\") == NULL && !has_control(v))
		buf_puts(b, v);
	else
		buf_json_str(b, v);
}

static void put_field(buf *b, const char *key, const char *val)
{
	if (log_fmt == LOG_FORMAT_JSON) {
		buf_putc(b, ',');
		buf_json_str(b, key);
		buf_putc(b, ':');
		buf_json_str(b, val);
	} else {
		buf_putc(b, ' ');
		buf_puts(b, key);
		buf_putc(b, '=');
		put_logfmt_value(b, val);
	}
}

void log_event(log_level level, const char *msg, ...)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	const char *key;
	va_list ap;
	buf b;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_init(&b);
	if (log_fmt == LOG_FORMAT_JSON) {
		buf_puts(&b, "{\"ts\":");
		buf_json_str(&b, ts);
		put_field(&b, "level", level_names[level]);
		put_field(&b, "msg", msg);
	} else {
		buf_printf(&b, "ts=%s level=%s msg=", ts, level_names[level]);
		put_logfmt_value(&b, msg);
	}
	va_start(ap, msg);
	for (key = va_arg(ap, const char *); key;
	     key = va_arg(ap, const char *)) {
		const char *val = va_arg(ap, const char *);

		put_field(&b, key, val ? val : "");
	}
	va_end(ap);
	buf_puts(&b, log_fmt == LOG_FORMAT_JSON ? "}\n" : "\n");
	fwrite(b.data, 1, b.len, stderr);
	buf_free(&b);
}
