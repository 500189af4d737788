/* metrics.h - Prometheus text for node_exporter's textfile collector */
#ifndef AUDSYNC_METRICS_H
#define AUDSYNC_METRICS_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Writes Prometheus text to path: per sync its last run (when, how long,
 * its counts, success, the last success), per destination its queue,
 * dead letters and delivery failures, and audsync_build_info; every
 * metric with its HELP and TYPE. Written atomically (a temporary file renamed over it), so the
 * collector never reads half a file. Returns 0, or -1 with err set.
 */
int metrics_write(PGconn *conn, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
