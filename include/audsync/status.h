/* status.h - what audsync is doing: runs, queues, dead letters, --check */
#ifndef AUDSYNC_STATUS_H
#define AUDSYNC_STATUS_H

#include <libpq-fe.h>
#include <stdio.h>

/* The version of `status --json`'s document: raised when a key is
 * removed or changes meaning (README, audsync(1)). */
#define STATUS_JSON_VERSION 1

/*
 * Prints one line per sync (or, with json set, one JSON document
 * {"schema_version", "syncs": [...], "destinations": [...]}): computation,
 * destination, mode, enabled, the last run (id, kind, status, as-of,
 * finish, duration) and its counts, the last success, when it is next
 * due, records queued, dead letters, the last error, and a configuration
 * problem if any; then per destination its queue, dead letters and
 * delivery failures. With destination not NULL, only the syncs and the
 * row of that destination. Returns 0, or -1 with err set.
 */
int status_print(FILE *out, PGconn *conn, const char *destination, int json,
		 char *err, size_t errlen) __attribute__((warn_unused_result));

/* What `status --check` found; its exit status the Nagios way. */
typedef enum status_level {
	STATUS_OK = 0,
	STATUS_WARNING = 1,
	STATUS_CRITICAL = 2,
	STATUS_UNKNOWN = 3
} status_level;

/*
 * Prints one line, Nagios plugin style, and sets *out: CRITICAL when an
 * enabled sync's last run failed or has a configuration problem, a
 * destination is stopped, or the oldest queued record is older than
 * crit_age_s; WARNING for dead letters or a queue older than warn_age_s;
 * else OK. Returns 0, or -1 with err set (then nothing is printed).
 */
int status_check(status_level *out, FILE *f, PGconn *conn, long warn_age_s,
		 long crit_age_s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Prints the dead letters (of destination when not NULL), oldest first:
 * one line each with id, time, destination, computation, Mixpanel's
 * reason and the record; with json, one JSON object a line. Returns 0,
 * or -1 with err set.
 */
int status_dead_letters(FILE *f, PGconn *conn, const char *destination,
			int json, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Columns of status_query(), in order; those before ST_PUBLIC are the
 * keys of a sync in `status --json`. */
enum {
	ST_SYNC_ID,
	ST_KEY,
	ST_DEST,
	ST_MODE,
	ST_ENABLED,
	ST_RUN_ID,
	ST_RUN_KIND,
	ST_RUN_STATUS,
	ST_AS_OF,
	ST_FINISHED,
	ST_LAST_SUCCESS,
	ST_NEXT_DUE,
	ST_DURATION, /* seconds of the last run */
	ST_MEMBERS,
	ST_ENTERED,
	ST_EXITED,
	ST_CHANGED,
	ST_SKIPPED,
	ST_CALLS,
	ST_QUEUED,
	ST_DEAD,
	ST_LAST_ERROR,
	ST_PUBLIC,
	ST_RUN_EPOCH = ST_PUBLIC, /* when the last run finished (or began) */
	ST_SUCCESS_EPOCH,	  /* when the last successful run finished */
	ST_DELIVERED,		  /* 't' unless the last delivery failed */
	ST_COLUMNS
};

/* One row per sync with the columns above (text; NULL when no run yet).
 * The caller PQclear()s it. NULL with err set on failure. */
PGresult *status_query(PGconn *conn, char *err, size_t errlen);

/* Columns of status_dest_query(), in order. */
enum {
	SD_NAME,
	SD_QUEUED,
	SD_OLDEST_S, /* age of the oldest queued record, seconds; NULL: none */
	SD_DEAD,
	SD_FAILURES,
	SD_STOPPED,
	SD_LAST_DELIVERY,
	SD_LAST_ERROR,
	SD_COLUMNS
};

/* One row per destination with the columns above. The caller PQclear()s
 * it. NULL with err set on failure. */
PGresult *status_dest_query(PGconn *conn, char *err, size_t errlen);

#endif
