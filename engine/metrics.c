/* metrics.c - Prometheus text for node_exporter's textfile collector */
#include "audsync/metrics.h"

#include "audsync/buf.h"
#include "audsync/status.h"

#include <stdio.h>
#include <string.h>

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

static void put_gauge(buf *b, const char *name, const PGresult *r, int row,
		      int column)
{
	buf_printf(b, "audsync_%s{computation=\"", name);
	put_label(b, PQgetvalue(r, row, ST_KEY));
	buf_puts(b, "\",destination=\"");
	put_label(b, PQgetvalue(r, row, ST_DEST));
	buf_printf(b, "\"} %s\n",
		   PQgetisnull(r, row, column) ? "0"
					       : PQgetvalue(r, row, column));
}

static void put_metrics(buf *b, const PGresult *r)
{
	static const struct {
		const char *name;
		int column;
	} gauges[] = {
		{ "last_run_members", ST_MEMBERS },
		{ "last_run_entered", ST_ENTERED },
		{ "last_run_exited", ST_EXITED },
		{ "last_run_changed", ST_CHANGED },
		{ "last_run_skipped", ST_SKIPPED },
		{ "last_run_calls", ST_CALLS },
		{ "queued_records", ST_QUEUED },
		{ "dead_letters", ST_DEAD },
	};
	size_t g;
	int i;

	for (g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		buf_printf(b, "# TYPE audsync_%s gauge\n", gauges[g].name);
		for (i = 0; i < PQntuples(r); i++)
			put_gauge(b, gauges[g].name, r, i, gauges[g].column);
	}
	buf_puts(b, "# TYPE audsync_last_run_success gauge\n");
	for (i = 0; i < PQntuples(r); i++) {
		if (PQgetisnull(r, i, ST_SYNC_ID))
			continue; /* forwarded messages have no runs */
		buf_puts(b, "audsync_last_run_success{computation=\"");
		put_label(b, PQgetvalue(r, i, ST_KEY));
		buf_puts(b, "\",destination=\"");
		put_label(b, PQgetvalue(r, i, ST_DEST));
		buf_printf(b, "\"} %d\n",
			   strcmp(PQgetvalue(r, i, ST_RUN_STATUS),
				  "succeeded") == 0);
	}
}

int metrics_write(PGconn *conn, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	PGresult *r = status_query(conn, err, errlen);
	FILE *f;
	buf b;
	int rc = -1;

	if (!r)
		return -1;
	buf_init(&b);
	put_metrics(&b, r);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fwrite(b.data, 1, b.len, f) != b.len) {
		snprintf(err, errlen, "cannot write %s", tmp);
		if (f)
			fclose(f);
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot replace %s", path);
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	PQclear(r);
	return rc;
}
