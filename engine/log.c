/* log.c - one line per event on stderr, logfmt or JSON */
#include "audsync/log.h"

#include "audsync/buf.h"
#include "audsync/settings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

log_level log_min_level = LOG_LEVEL_INFO;
static log_format log_fmt = LOG_FORMAT_LOGFMT;
static int log_prefix;	/* "<N>" before each line: syslog's priority */
static char run_id[16]; /* on every line: which run (pass) wrote it */
static unsigned long long run_counter;
static int status_shown; /* a status line is on the terminal */

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const int level_priorities[] = { 7, 6, 4, 3 }; /* syslog(3) */

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

/* Whether stderr is the journal's stream (JOURNAL_STREAM names its
 * device and inode; a child whose stderr went elsewhere inherits the
 * variable but not the stream), or syslog through logger --prio-prefix
 * was asked for. */
static int wants_priority_prefix(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* settings_check_env() allows only 0 and 1 */
	if (strcmp(settings_env("AUDSYNC_LOG_PRIORITY_PREFIX"), "1") == 0)
		return 1;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	return fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
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
	log_prefix = wants_priority_prefix();
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

/* One field; number: val is a number's text, written bare in JSON. */
static void put_value(buf *b, const char *key, const char *val, int number)
{
	if (log_fmt == LOG_FORMAT_JSON) {
		buf_putc(b, ',');
		buf_json_str(b, key);
		buf_putc(b, ':');
		if (number)
			buf_puts(b, val);
		else
			buf_json_str(b, val);
	} else {
		buf_putc(b, ' ');
		buf_puts(b, key);
		buf_putc(b, '=');
		put_logfmt_value(b, val);
	}
}

/* A text field: a JSON string, whatever it reads as (a file named 12345,
 * an external id). Only the typed fields are JSON numbers. */
static void put_field(buf *b, const char *key, const char *val)
{
	put_value(b, key, val, 0);
}

const char log_int_tag[] = "(int)";
const char log_unknown_tag[] = "(unknown)";
const char log_seconds_tag[] = "(seconds)";

/* The next field of ap, key first (NULL: the end), typed or text.
 * Returns NULL at the end. */
static const char *put_next(buf *b, va_list *ap)
{
	const char *key = va_arg(*ap, const char *);
	const char *tag = key;
	char num[32];

	if (tag != log_int_tag && tag != log_unknown_tag &&
	    tag != log_seconds_tag) {
		if (key) {
			const char *val = va_arg(*ap, const char *);

			put_field(b, key, val ? val : "");
		}
		return key;
	}
	key = va_arg(*ap, const char *);
	if (tag == log_seconds_tag) {
		snprintf(num, sizeof(num), "%.3f", va_arg(*ap, double));
	} else {
		long long n = va_arg(*ap, long long);

		if (tag == log_int_tag)
			snprintf(num, sizeof(num), "%lld", n);
		else /* not known yet */
			snprintf(num, sizeof(num), "%s",
				 log_fmt == LOG_FORMAT_JSON ? "null" : "-");
	}
	put_value(b, key, num, 1);
	return tag;
}

void log_new_run_id(void)
{
	struct timespec now;
	unsigned long long x;

	clock_gettime(CLOCK_REALTIME, &now);
	/* Unique enough to tell runs apart in a log: time, pid, a counter. */
	x = ((unsigned long long)now.tv_sec * 1000003u) ^
	    ((unsigned long long)now.tv_nsec << 20) ^
	    ((unsigned long long)getpid() << 40) ^ ++run_counter;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	snprintf(run_id, sizeof(run_id), "%012llx", x & 0xffffffffffffULL);
}

void log_status_line(const char *text)
{
	fputs("\r\033[K", stderr);
	if (text)
		fputs(text, stderr);
	fflush(stderr);
	status_shown = text != NULL;
}

/* RFC 3339 in UTC with milliseconds: 2026-12-01T01:02:03.456Z. */
static void format_ts(char *out, size_t len)
{
	struct timespec now;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03ldZ", sec, now.tv_nsec / 1000000);
}

void log_event(log_level level, const char *msg, ...)
{
	char ts[40];
	va_list ap;
	buf b;

	format_ts(ts, sizeof(ts));
	if (!run_id[0])
		log_new_run_id();
	buf_init(&b);
	if (log_prefix)
		buf_printf(&b, "<%d>", level_priorities[level]);
	if (log_fmt == LOG_FORMAT_JSON) {
		buf_puts(&b, "{\"ts\":");
		buf_json_str(&b, ts);
		put_field(&b, "level", level_names[level]);
		put_field(&b, "run_id", run_id);
		put_field(&b, "msg", msg);
	} else {
		buf_printf(&b, "ts=%s level=%s run_id=%s msg=", ts,
			   level_names[level], run_id);
		put_logfmt_value(&b, msg);
	}
	va_start(ap, msg);
	while (put_next(&b, &ap))
		;
	va_end(ap);
	buf_puts(&b, log_fmt == LOG_FORMAT_JSON ? "}\n" : "\n");
	if (status_shown)
		log_status_line(NULL);
	fwrite(b.data, 1, b.len, stderr);
	buf_free(&b);
}
