/* metrics.c - Prometheus text for node_exporter's textfile collector */
#include "audsync/metrics.h"

#include "audsync/buf.h"
#include "audsync/status.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Prometheus label values escape backslash, quote and newline. */
static void put_label(buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(b, '\\');
		if (*v == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *v);
	}
}

#ifndef AUDSYNC_VERSION
#define AUDSYNC_VERSION "0.0.0"
#endif

typedef struct metric {
	const char *name;
	const char *type; /* gauge or counter */
	int column;
	const char *help;
} metric;

/* Per sync, labelled by computation and destination. */
static const metric sync_metrics[] = {
	{ "last_run_timestamp_seconds", "gauge", ST_RUN_EPOCH,
	  "When the last run of the sync finished (began, while it runs)." },
	{ "last_success_timestamp_seconds", "gauge", ST_SUCCESS_EPOCH,
	  "When the last successful run of the sync finished." },
	{ "last_run_duration_seconds", "gauge", ST_DURATION,
	  "How long the last run took, evaluation and decision." },
	{ "last_run_members", "gauge", ST_MEMBERS,
	  "Members (or profiles with a value) at the last run." },
	{ "last_run_entered", "gauge", ST_ENTERED,
	  "Profiles that entered (or got a new value) at the last run." },
	{ "last_run_exited", "gauge", ST_EXITED,
	  "Profiles that exited (or lost their value) at the last run." },
	{ "last_run_changed", "gauge", ST_CHANGED,
	  "Profiles whose value changed at the last run." },
	{ "last_run_skipped", "gauge", ST_SKIPPED,
	  "Targets skipped at the last run (no valid distinct_id)." },
	{ "last_run_calls", "gauge", ST_CALLS,
	  "Calls to Mixpanel the last run enqueued." },
};

/* Per destination, labelled by destination. */
static const metric dest_metrics[] = {
	{ "queued_records", "gauge", SD_QUEUED,
	  "Records waiting in the outbox for delivery." },
	{ "oldest_queued_age_seconds", "gauge", SD_OLDEST_S,
	  "Age of the oldest record in the outbox." },
	{ "dead_letters", "gauge", SD_DEAD,
	  "Records Mixpanel refused for good (audsync retry-failed)." },
	{ "delivery_failures_total", "counter", SD_FAILURES,
	  "Deliveries that left records queued or rejected." },
};

static void put_header(buf *b, const char *name, const char *type,
		       const char *help)
{
	buf_printf(b, "# HELP audsync_%s %s\n# TYPE audsync_%s %s\n", name,
		   help, name, type);
}

/* One sample, labelled by the text columns labels (-1 ends them) of row;
 * a NULL value (no run yet) writes nothing. */
static void put_sample(buf *b, const char *name, const PGresult *r, int row,
		       const int *label_cols, const char *const *label_names,
		       const char *value)
{
	int i;

	if (!value)
		return;
	buf_printf(b, "audsync_%s{", name);
	for (i = 0; label_cols[i] >= 0; i++) {
		buf_printf(b, "%s%s=\"", i ? "," : "", label_names[i]);
		put_label(b, PQgetvalue(r, row, label_cols[i]));
		buf_putc(b, '"');
	}
	buf_printf(b, "} %s\n", value);
}

static const char *value_of(const PGresult *r, int row, int column)
{
	return PQgetisnull(r, row, column) ? NULL : PQgetvalue(r, row, column);
}

/* The series of n metrics, one sample per row of r each; with skip_col
 * not -1, none for a row whose skip_col reads false. */
static void put_series(buf *b, const metric *ms, size_t n, const PGresult *r,
		       int skip_col, const int *labels,
		       const char *const *names)
{
	size_t m;
	int i;

	for (m = 0; m < n; m++) {
		put_header(b, ms[m].name, ms[m].type, ms[m].help);
		for (i = 0; i < PQntuples(r); i++)
			if (skip_col < 0 ||
			    PQgetvalue(r, i, skip_col)[0] != 'f')
				put_sample(b, ms[m].name, r, i, labels, names,
					   value_of(r, i, ms[m].column));
	}
}

/* A sync disabled, or of a retired computation, runs no more: its series
 * go, or an alert on its age (README's AudsyncNoSuccess) or on its last
 * run would fire for good. */
static void put_sync_metrics(buf *b, const PGresult *r)
{
	static const int labels[] = { ST_KEY, ST_DEST, -1 };
	static const char *const names[] = { "computation", "destination" };
	int i;

	put_series(b, sync_metrics, sizeof(sync_metrics) / sizeof(metric), r,
		   ST_ENABLED, labels, names);
	put_header(b, "last_run_success", "gauge",
		   "1 when the last run succeeded and the delivery after it "
		   "left nothing behind, else 0.");
	for (i = 0; i < PQntuples(r); i++) {
		int ok = strcmp(PQgetvalue(r, i, ST_RUN_STATUS), "succeeded") ==
				 0 &&
			 PQgetvalue(r, i, ST_DELIVERED)[0] == 't';

		if (!PQgetisnull(r, i, ST_RUN_ID) &&
		    PQgetvalue(r, i, ST_ENABLED)[0] != 'f')
			put_sample(b, "last_run_success", r, i, labels, names,
				   ok ? "1" : "0");
	}
}

static void put_dest_metrics(buf *b, const PGresult *d)
{
	static const int labels[] = { SD_NAME, -1 };
	static const char *const names[] = { "destination" };
	int i;

	put_series(b, dest_metrics, sizeof(dest_metrics) / sizeof(metric), d,
		   -1, labels, names);
	put_header(b, "destination_stopped", "gauge",
		   "1 when Mixpanel refused the destination's credentials or "
		   "it is misconfigured: its records wait.");
	for (i = 0; i < PQntuples(d); i++)
		put_sample(b, "destination_stopped", d, i, labels, names,
			   PQgetvalue(d, i, SD_STOPPED)[0] == 't' ? "1" : "0");
}

static void put_metrics(buf *b, const PGresult *r, const PGresult *d)
{
	put_header(b, "build_info", "gauge",
		   "The version of audsync that wrote this file; always 1.");
	buf_puts(b, "audsync_build_info{version=\"");
	put_label(b, AUDSYNC_VERSION);
	buf_puts(b, "\"} 1\n");
	put_sync_metrics(b, r);
	put_dest_metrics(b, d);
}

int metrics_write(PGconn *conn, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	PGresult *r = status_query(conn, err, errlen);
	PGresult *d = r ? status_dest_query(conn, err, errlen) : NULL;
	FILE *f;
	buf b;
	int rc = -1;

	buf_init(&b);
	if (!d)
		goto out;
	put_metrics(&b, r, d);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fwrite(b.data, 1, b.len, f) != b.len) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
			 strerror(errno));
		if (f) {
			fclose(f);
			unlink(tmp);
		}
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot replace %s: %s", path,
			 strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	PQclear(r);
	PQclear(d);
	return rc;
}
