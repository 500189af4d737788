/* settings.c - every operator setting, declared once: name, type, range */
#include "audsync/settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS 3600000.0

const settings_def settings_table[] = {
	{ SETTINGS_ENV, "AUDSYNC_DB", SETTINGS_STRING, NULL, 0, 0, "",
	  "the database (a conninfo or URI) when --db is not given" },
	{ SETTINGS_ENV, "AUDSYNC_LOG_LEVEL", SETTINGS_STRING, NULL, 0, 0,
	  "info", "debug, info, warn or error, when --log-level is not given" },
	{ SETTINGS_ENV, "AUDSYNC_STATEMENT_TIMEOUT", SETTINGS_DURATION, "ms", 1,
	  24 * HOUR_MS, "10min",
	  "statement timeout of one definition (and of an audience's join "
	  "with the snapshot): a whole number with ms, s, min or h" },
	{ SETTINGS_ENV, "AUDSYNC_INCREMENTAL", SETTINGS_BOOL, NULL, 0, 0,
	  "true",
	  "false evaluates every rule in full on every run (incremental "
	  "evaluation off)" },
	{ SETTINGS_ENV, "AUDSYNC_LOOKUP_PERCENT", SETTINGS_INT, "%", 0, 1000000,
	  "10",
	  "an incremental run looks its touched profiles up in the ledger "
	  "one by one when they are at most this percentage of the sync's "
	  "members, else joins them with every member's row (0 always "
	  "joins)" },
	{ SETTINGS_ENV, "AUDSYNC_TIMEOUT_MS", SETTINGS_INT, "ms", 1, HOUR_MS,
	  "30000", "total time of one Mixpanel request" },
	{ SETTINGS_ENV, "AUDSYNC_CONNECT_TIMEOUT_MS", SETTINGS_INT, "ms", 1,
	  600000, "10000", "connect timeout of one Mixpanel request" },
	{ SETTINGS_ENV, "AUDSYNC_MAX_ATTEMPTS", SETTINGS_INT, NULL, 1, 100, "6",
	  "sends of one batch per delivery before it stays queued for the "
	  "next run" },
	{ SETTINGS_ENV, "AUDSYNC_RETRY_BASE_MS", SETTINGS_INT, "ms", 1, HOUR_MS,
	  "2000", "first backoff, doubled each retry (Mixpanel's advice)" },
	{ SETTINGS_ENV, "AUDSYNC_RETRY_MAX_MS", SETTINGS_INT, "ms", 1, HOUR_MS,
	  "60000", "longest backoff, Retry-After included" },
	{ SETTINGS_ENV, "AUDSYNC_RETRY_JITTER_MS", SETTINGS_INT, "ms", 1,
	  600000, "5000", "random jitter added to each backoff" },
	{ SETTINGS_ENV, "AUDSYNC_ALLOW_FILE_SINKS", SETTINGS_LIST, NULL, 0, 0,
	  "",
	  "directories (absolute, ':'-separated) where a destination's "
	  "api_base 'file:PATH' may write; empty allows none" },
	{ SETTINGS_ENV, "AUDSYNC_ALLOW_HTTP_HOSTS", SETTINGS_LIST, NULL, 0, 0,
	  "",
	  "hosts (','-separated) a destination may reach over plain http:// "
	  "besides localhost, 127.0.0.1 and ::1" },
	{ SETTINGS_ENV, "AUDSYNC_SECRET_ENV_PREFIX", SETTINGS_STRING, NULL, 0,
	  0, "MIXPANEL_",
	  "the prefix every variable a destination's secret_env names must "
	  "have" },
	{ SETTINGS_ENV, "AUDSYNC_CHECK_WARN_AGE", SETTINGS_INT, "s", 1,
	  30 * 24 * 3600, "900",
	  "status --check: seconds the oldest queued record may wait before "
	  "a warning" },
	{ SETTINGS_ENV, "AUDSYNC_CHECK_CRIT_AGE", SETTINGS_INT, "s", 1,
	  30 * 24 * 3600, "3600",
	  "status --check: seconds the oldest queued record may wait before "
	  "critical" },
	{ SETTINGS_ENV, "AUDSYNC_PROGRESS_INTERVAL_MS", SETTINGS_INT, "ms", 1,
	  HOUR_MS, "10000",
	  "off a terminal, how often a long run logs its progress" },
	{ SETTINGS_ENV, "AUDSYNC_LOG_PRIORITY_PREFIX", SETTINGS_INT, NULL, 0, 1,
	  "",
	  "1: each log line starts with its syslog priority, for logger "
	  "--prio-prefix (0 or unset: only under systemd)" },
	{ SETTINGS_DEST, "enter_event", SETTINGS_STRING, NULL, 0, 0,
	  "Audience Entered", "track-mode event on entering" },
	{ SETTINGS_DEST, "exit_event", SETTINGS_STRING, NULL, 0, 0,
	  "Audience Exited", "track-mode event on exiting" },
	{ SETTINGS_DEST, "trait_event", SETTINGS_STRING, NULL, 0, 0,
	  "Trait Computed", "track-mode event of a trait change" },
	{ SETTINGS_DEST, "ignore_time", SETTINGS_BOOL, NULL, 0, 0, "true",
	  "send $ignore_time so updates do not move \"Last Seen\"" },
	{ SETTINGS_DEST, "geolocate", SETTINGS_BOOL, NULL, 0, 0, "false",
	  "false sends ip=0 on /engage and \"ip\": 0 on events" },
	{ SETTINGS_DEST, "max_rate", SETTINGS_NUMBER, "records/s", 0.001,
	  100000, "",
	  "records per second to this project, at most (none: no limit)" },
	{ SETTINGS_DEST, "concurrency", SETTINGS_INT, NULL, 1, 64, "8",
	  "connections at once" },
	{ SETTINGS_DEST, "batch_size", SETTINGS_INT, NULL, 1, 2000, "2000",
	  "records per request" },
	{ SETTINGS_ENV, NULL, SETTINGS_STRING, NULL, 0, 0, NULL, NULL }
};

const settings_def *settings_find(settings_scope scope, const char *name)
{
	const settings_def *d;

	for (d = settings_table; d->name; d++)
		if (d->scope == scope && strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* "must be ..." for d, with its range and unit. */
static void range_error(char *err, size_t errlen, const settings_def *d,
			const char *text)
{
	const char *what = d->type == SETTINGS_INT	  ? "a whole number"
			   : d->type == SETTINGS_DURATION ? "a duration"
							  : "a number";

	snprintf(err, errlen,
		 "%s must be %s from %.15g to %.15g%s%s, not '%.60s'", d->name,
		 what, d->min, d->max,
		 d->unit && d->type != SETTINGS_DURATION ? " " : "",
		 d->type == SETTINGS_DURATION ? " ms (units ms, s, min, h)"
		 : d->unit		      ? d->unit
					      : "",
		 text);
}

/* The factor of a duration's unit to milliseconds, or 0. */
static double unit_ms(const char *u)
{
	static const struct {
		const char *name;
		double ms;
	} units[] = { { "", 1 },
		      { "ms", 1 },
		      { "s", 1000 },
		      { "min", 60000 },
		      { "h", HOUR_MS } };
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(u, units[i].name) == 0)
			return units[i].ms;
	return 0;
}

int settings_parse_double(double *out, const settings_def *d, const char *text,
			  char *err, size_t errlen)
{
	char *end = NULL;
	double x, factor = 1;

	/* strtod would take blanks, a sign, hex, "inf" and "nan": only plain
	 * decimal text is a setting. */
	if (!text || !(isdigit((unsigned char)text[0]) ||
		       (text[0] == '-' && d->min < 0)))
		goto bad;
	if (strpbrk(text, "xXpP"))
		goto bad;
	errno = 0;
	x = strtod(text, &end);
	if (errno != 0 || end == text)
		goto bad;
	if (d->type == SETTINGS_DURATION) {
		if (strchr(text, '.') || strpbrk(text, "eE"))
			goto bad;
		factor = unit_ms(end);
		if (factor == 0)
			goto bad;
		x *= factor;
	} else if (*end != '\0') {
		goto bad;
	}
	if (d->type == SETTINGS_INT && (x != floor(x) || strpbrk(text, ".eE")))
		goto bad;
	if (!isfinite(x) || x < d->min || x > d->max)
		goto bad;
	*out = x;
	return 0;
bad:
	range_error(err, errlen, d, text ? text : "");
	return -1;
}

int settings_parse_long(long *out, const settings_def *d, const char *text,
			char *err, size_t errlen)
{
	double x;

	if (settings_parse_double(&x, d, text, err, errlen) != 0)
		return -1;
	*out = (long)x;
	return 0;
}

const char *settings_env(const char *name)
{
	const settings_def *d = settings_find(SETTINGS_ENV, name);
	const char *v = getenv(name);

	if (v && *v)
		return v;
	return d ? d->dflt : "";
}

int settings_env_long(long *out, const char *name, char *err, size_t errlen)
{
	const settings_def *d = settings_find(SETTINGS_ENV, name);

	if (!d) {
		snprintf(err, errlen, "%s is not a setting", name);
		return -1;
	}
	return settings_parse_long(out, d, settings_env(name), err, errlen);
}

/* Each ':'-separated entry of the file-sink list is absolute: a relative
 * one would never match (dest_policy.c), and say nothing. */
static int check_sink_dirs(char *err, size_t errlen)
{
	const char *p = settings_env("AUDSYNC_ALLOW_FILE_SINKS");

	while (*p) {
		size_t len = strcspn(p, ":");

		if (len > 0 && p[0] != '/') {
			snprintf(err, errlen,
				 "AUDSYNC_ALLOW_FILE_SINKS must list absolute "
				 "directories separated by ':', not '%.*s'",
				 (int)(len < 60 ? len : 60), p);
			return -1;
		}
		p += len + (p[len] == ':');
	}
	return 0;
}

int settings_check_env(char *err, size_t errlen)
{
	const settings_def *d;
	long v;

	for (d = settings_table; d->name; d++) {
		if (d->scope != SETTINGS_ENV)
			continue;
		/* a number with no default may be left unset */
		if ((d->type == SETTINGS_INT || d->type == SETTINGS_DURATION) &&
		    *settings_env(d->name) &&
		    settings_env_long(&v, d->name, err, errlen) != 0)
			return -1;
		/* "off" or "0" must not leave a switch on quietly */
		if (d->type == SETTINGS_BOOL &&
		    strcmp(settings_env(d->name), "true") != 0 &&
		    strcmp(settings_env(d->name), "false") != 0) {
			snprintf(err, errlen,
				 "%s must be true or false, not '%.60s'",
				 d->name, settings_env(d->name));
			return -1;
		}
	}
	return check_sink_dirs(err, errlen);
}
