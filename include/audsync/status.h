/* status.h - what audsync is doing, and whether its definitions are sound */
#ifndef AUDSYNC_STATUS_H
#define AUDSYNC_STATUS_H

#include <libpq-fe.h>
#include <stdio.h>

/*
 * Prints one line per sync (or a JSON array with json set): computation,
 * destination, mode, enabled, last run (id, kind, status, as-of, finish),
 * its counts, records queued, dead letters, the last error, and a
 * configuration problem if any. Returns 0, or -1 with err set.
 */
int status_print(FILE *out, PGconn *conn, int json, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Checks every sync's definition (parsed and described, not run) and
 * every destination; prints one line per problem and a summary. *out is
 * the number of problems. Returns 0, or -1 with err set.
 */
int status_validate(int *out, FILE *f, PGconn *conn, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Columns of status_query(), in order. */
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
	ST_MEMBERS,
	ST_ENTERED,
	ST_EXITED,
	ST_CHANGED,
	ST_SKIPPED,
	ST_CALLS,
	ST_QUEUED,
	ST_DEAD,
	ST_LAST_ERROR,
	ST_COLUMNS
};

/* One row per sync with the columns above (text; NULL when no run yet).
 * The caller PQclear()s it. NULL with err set on failure. */
PGresult *status_query(PGconn *conn, char *err, size_t errlen);

#endif
