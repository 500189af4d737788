/* status.c - what audsync is doing: runs, queues, dead letters, --check */
#include "audsync/status.h"

#include "audsync/buf.h"
#include "audsync/config.h"
#include "audsync/db.h"

#include <stdlib.h>
#include <string.h>

/* Times in status: RFC 3339 in UTC (the session's time zone). */
#define TSF "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

/* A sync is due once a minute, or once an hour with a lookback, after
 * the as-of of its last run (config.c's rule): next_due is that boundary,
 * or now when it has passed. Forwarded messages (audsync forward) belong
 * to no sync: a destination with such records queued or dead has a row
 * '(forward)' of its own. */
static const char status_sql[] =
	"SELECT s.id, c.key, d.name, s.mode, s.enabled AND c.enabled,"
	" r.id, r.kind, r.status, to_char(r.as_of, " TSF "),"
	" to_char(r.finished_at, " TSF "), to_char(ok.finished_at, " TSF "),"
	" CASE WHEN s.enabled AND c.enabled THEN to_char(greatest(now(),"
	"  date_trunc(u.unit, st.last_as_of) + ('1 ' || u.unit)::interval),"
	"  " TSF ") END,"
	" round(extract(epoch FROM r.finished_at - r.started_at), 3),"
	" r.members, r.entered, r.exited, r.changed, r.skipped, r.calls,"
	" (SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
	"  WHERE o.sync_id = s.id),"
	" (SELECT count(*) FROM audsync.dead_letters dl"
	"  WHERE dl.sync_id = s.id),"
	" coalesce(r.error, (SELECT o.last_error FROM audsync.outbox o"
	"  WHERE o.sync_id = s.id AND o.last_error IS NOT NULL"
	"  ORDER BY o.id LIMIT 1)),"
	" floor(extract(epoch FROM coalesce(r.finished_at, r.started_at))),"
	" floor(extract(epoch FROM ok.finished_at)),"
	" NOT coalesce(ds.last_failure_at = ds.last_delivery_at, false)"
	" FROM audsync.syncs s"
	" JOIN audsync.computations c ON c.id = s.computation_id"
	" JOIN audsync.destinations d ON d.id = s.destination_id"
	" CROSS JOIN LATERAL (SELECT CASE WHEN c.lookback IS NULL"
	"  THEN 'minute' ELSE 'hour' END AS unit) u"
	" LEFT JOIN audsync.sync_state st ON st.sync_id = s.id"
	" LEFT JOIN audsync.delivery_state ds ON ds.destination_id = d.id"
	" LEFT JOIN LATERAL (SELECT * FROM audsync.runs r"
	"  WHERE r.sync_id = s.id ORDER BY r.id DESC LIMIT 1) r ON true"
	" LEFT JOIN LATERAL (SELECT r2.finished_at FROM audsync.runs r2"
	"  WHERE r2.sync_id = s.id AND r2.status = 'succeeded'"
	"  ORDER BY r2.id DESC LIMIT 1) ok ON true"
	" UNION ALL SELECT NULL, '(forward)', d.name, 'forward', true,"
	" NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
	" NULL, NULL, NULL, NULL, NULL, NULL, f.queued, f.dead, f.last_error,"
	" NULL, NULL, true FROM audsync.destinations d,"
	" LATERAL (SELECT"
	"  (SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
	"   WHERE o.destination_id = d.id AND o.sync_id IS NULL) AS queued,"
	"  (SELECT count(*) FROM audsync.dead_letters dl"
	"   WHERE dl.destination_id = d.id AND dl.sync_id IS NULL) AS dead,"
	"  (SELECT o.last_error FROM audsync.outbox o WHERE o.destination_id"
	"   = d.id AND o.sync_id IS NULL AND o.last_error IS NOT NULL"
	"   ORDER BY o.id LIMIT 1) AS last_error) f"
	" WHERE f.queued > 0 OR f.dead > 0"
	" ORDER BY 1";

static const char dest_sql[] =
	"SELECT d.name,"
	" (SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
	"  WHERE o.destination_id = d.id),"
	" (SELECT floor(extract(epoch FROM now() - min(o.created_at)))"
	"  FROM audsync.outbox o WHERE o.destination_id = d.id),"
	" (SELECT count(*) FROM audsync.dead_letters dl"
	"  WHERE dl.destination_id = d.id),"
	" coalesce(ds.failures, 0), coalesce(ds.stopped, false),"
	" to_char(ds.last_delivery_at, " TSF "), ds.last_error"
	" FROM audsync.destinations d"
	" LEFT JOIN audsync.delivery_state ds ON ds.destination_id = d.id"
	" ORDER BY d.id";

static const char *const st_names[ST_PUBLIC] = {
	"sync",		"computation", "destination", "mode",	 "enabled",
	"run",		"run_kind",    "status",      "as_of",	 "finished_at",
	"last_success", "next_due",    "duration_s",  "members", "entered",
	"exited",	"changed",     "skipped",     "calls",	 "queued",
	"dead_letters", "error"
};

static const char *const sd_names[SD_COLUMNS] = {
	"destination",	     "queued",	"oldest_queued_s", "dead_letters",
	"delivery_failures", "stopped", "last_delivery",   "last_error"
};

PGresult *status_query(PGconn *conn, char *err, size_t errlen)
{
	return db_query(conn, "status", status_sql, 0, NULL, err, errlen);
}

PGresult *status_dest_query(PGconn *conn, char *err, size_t errlen)
{
	return db_query(conn, "status", dest_sql, 0, NULL, err, errlen);
}

/* The configuration problem of sync id, or NULL: of its rows only, since
 * status may run where the service's secret is not. */
static const char *problem_of(const sync_list *l, int id, char *buf, size_t len)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->items[i].id == id)
			return config_sync_row_problem(&l->items[i], buf, len);
	return NULL;
}

static int is_number_column(int c)
{
	return c == ST_SYNC_ID || c == ST_RUN_ID ||
	       (c >= ST_DURATION && c <= ST_DEAD);
}

/* One JSON value from column c of row: null, a boolean, a number (when
 * number says so) or a string. */
static void json_value(buf *b, const PGresult *r, int row, int c, int number)
{
	const char *v = PQgetvalue(r, row, c);

	if (PQgetisnull(r, row, c))
		buf_puts(b, "null");
	else if (PQftype(r, c) == 16 /* BOOLOID */)
		buf_puts(b, v[0] == 't' ? "true" : "false");
	else if (number)
		buf_puts(b, v);
	else
		buf_json_str(b, v);
}

static void json_row(buf *b, const PGresult *r, int row, const char *problem)
{
	int c;

	buf_putc(b, '{');
	for (c = 0; c < ST_PUBLIC; c++) {
		buf_printf(b, "%s\"%s\":", c ? "," : "", st_names[c]);
		json_value(b, r, row, c, is_number_column(c));
	}
	buf_puts(b, ",\"problem\":");
	if (problem)
		buf_json_str(b, problem);
	else
		buf_puts(b, "null");
	buf_putc(b, '}');
}

static void json_dest_row(buf *b, const PGresult *r, int row)
{
	int c;

	buf_putc(b, '{');
	for (c = 0; c < SD_COLUMNS; c++) {
		buf_printf(b, "%s\"%s\":", c ? "," : "", sd_names[c]);
		json_value(b, r, row, c,
			   c == SD_QUEUED || c == SD_OLDEST_S || c == SD_DEAD ||
				   c == SD_FAILURES);
	}
	buf_putc(b, '}');
}

/* The widths of the text table's two columns of names (computation key
 * and destination): their header's at least, the longest name's shown
 * when longer, so that no row pushes its columns out of line. */
typedef struct name_widths {
	int key, dest;
} name_widths;

static void text_row(buf *b, const PGresult *r, int row, const char *problem,
		     const name_widths *w)
{
	const char *v[ST_COLUMNS];
	int c;

	for (c = 0; c < ST_COLUMNS; c++)
		v[c] = PQgetisnull(r, row, c) ? "-" : PQgetvalue(r, row, c);
	buf_printf(b,
		   "%-*s %-*s %-8s %-7s %-9s %-20s %-20s %8s %-20s %8s %8s "
		   "%8s %8s %6s",
		   w->key, v[ST_KEY], w->dest, v[ST_DEST], v[ST_MODE],
		   v[ST_ENABLED][0] == 't' ? "yes" : "no", v[ST_RUN_STATUS],
		   v[ST_AS_OF], v[ST_LAST_SUCCESS], v[ST_DURATION],
		   v[ST_NEXT_DUE], v[ST_MEMBERS], v[ST_ENTERED], v[ST_EXITED],
		   v[ST_QUEUED], v[ST_DEAD]);
	if (problem || !PQgetisnull(r, row, ST_LAST_ERROR))
		buf_printf(b, " %s", problem ? problem : v[ST_LAST_ERROR]);
	buf_putc(b, '\n');
}

/* Whether row of r (column c the destination's name) is shown: every
 * row, or those of destination. */
static int shown(const PGresult *r, int row, int c, const char *destination)
{
	return !destination || strcmp(PQgetvalue(r, row, c), destination) == 0;
}

/* name_widths of the rows of r shown (with destination as shown()). */
static name_widths text_widths(const PGresult *r, const char *destination)
{
	name_widths w = { 24, 12 };
	int i, len;

	for (i = 0; i < PQntuples(r); i++) {
		if (!shown(r, i, ST_DEST, destination))
			continue;
		len = PQgetlength(r, i, ST_KEY);
		w.key = len > w.key ? len : w.key;
		len = PQgetlength(r, i, ST_DEST);
		w.dest = len > w.dest ? len : w.dest;
	}
	return w;
}

static void put_syncs(buf *b, const PGresult *r, const sync_list *l, int json,
		      const char *destination)
{
	name_widths w = text_widths(r, destination);
	char problem[1024];
	int i, n = 0;

	if (!json)
		buf_printf(b,
			   "%-*s %-*s %-8s %-7s %-9s %-20s %-20s %8s %-20s "
			   "%8s %8s %8s %8s %6s %s\n",
			   w.key, "COMPUTATION", w.dest, "DESTINATION", "MODE",
			   "ENABLED", "LAST RUN", "AS OF", "LAST SUCCESS",
			   "DURATION", "NEXT DUE", "MEMBERS", "ENTERED",
			   "EXITED", "QUEUED", "DEAD", "ERROR");
	for (i = 0; i < PQntuples(r); i++) {
		const char *p;

		if (!shown(r, i, ST_DEST, destination))
			continue;
		p = problem_of(l, (int)db_int(PQgetvalue(r, i, 0)), problem,
			       sizeof(problem));
		if (json && n++)
			buf_putc(b, ',');
		if (json)
			json_row(b, r, i, p);
		else
			text_row(b, r, i, p, &w);
	}
}

int status_print(FILE *out, PGconn *conn, const char *destination, int json,
		 char *err, size_t errlen)
{
	sync_filter f = { NULL, NULL, NULL };
	sync_list l;
	PGresult *r = NULL, *d = NULL;
	buf b;
	int i, n = 0, rc = -1;

	if (config_load(&l, conn, &f, err, errlen) != 0)
		return -1;
	buf_init(&b);
	r = status_query(conn, err, errlen);
	d = r ? status_dest_query(conn, err, errlen) : NULL;
	if (!d)
		goto out;
	if (json)
		buf_printf(&b, "{\"schema_version\":%d,\"syncs\":[",
			   STATUS_JSON_VERSION);
	put_syncs(&b, r, &l, json, destination);
	if (json) {
		buf_puts(&b, "],\"destinations\":[");
		for (i = 0; i < PQntuples(d); i++) {
			if (!shown(d, i, SD_NAME, destination))
				continue;
			if (n++)
				buf_putc(&b, ',');
			json_dest_row(&b, d, i);
		}
		buf_puts(&b, "]}\n");
	}
	fwrite(b.data, 1, b.len, out);
	rc = 0;
out:
	buf_free(&b);
	PQclear(r);
	PQclear(d);
	config_free(&l);
	return rc;
}

/* What status --check counts. */
typedef struct check_counts {
	int failed, stopped, dead;
	long long oldest_s;
	char first[512]; /* the first critical finding, for the line */
} check_counts;

/* Keeps the first finding: "WHAT NAME HOW: WHY". */
static void note(check_counts *k, const char *what, const char *name,
		 const char *how, const char *why)
{
	if (!k->first[0])
		snprintf(k->first, sizeof(k->first), "%s %s %s: %s", what, name,
			 how, why);
}

static void count_syncs(check_counts *k, const PGresult *r, const sync_list *l)
{
	char problem[1024];
	int i;

	for (i = 0; i < PQntuples(r); i++) {
		const char *p = problem_of(l, (int)db_int(PQgetvalue(r, i, 0)),
					   problem, sizeof(problem));

		if (PQgetvalue(r, i, ST_ENABLED)[0] != 't')
			continue;
		if (p ||
		    strcmp(PQgetvalue(r, i, ST_RUN_STATUS), "failed") == 0) {
			k->failed++;
			note(k, "sync", PQgetvalue(r, i, ST_KEY), "failed",
			     p ? p : PQgetvalue(r, i, ST_LAST_ERROR));
		}
	}
}

static void count_dests(check_counts *k, const PGresult *d)
{
	int i;

	for (i = 0; i < PQntuples(d); i++) {
		long long age = PQgetisnull(d, i, SD_OLDEST_S)
					? 0
					: db_int(PQgetvalue(d, i, SD_OLDEST_S));

		if (PQgetvalue(d, i, SD_STOPPED)[0] == 't') {
			k->stopped++;
			note(k, "destination", PQgetvalue(d, i, SD_NAME),
			     "stopped", PQgetvalue(d, i, SD_LAST_ERROR));
		}
		k->dead += (int)db_int(PQgetvalue(d, i, SD_DEAD));
		if (age > k->oldest_s)
			k->oldest_s = age;
	}
}

int status_check(status_level *out, FILE *f, PGconn *conn, long warn_age_s,
		 long crit_age_s, char *err, size_t errlen)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL" };
	sync_filter flt = { NULL, NULL, NULL };
	check_counts k = { 0 };
	status_level lv = STATUS_OK;
	sync_list l;
	PGresult *r = NULL, *d = NULL;

	if (config_load(&l, conn, &flt, err, errlen) != 0)
		return -1;
	r = status_query(conn, err, errlen);
	d = r ? status_dest_query(conn, err, errlen) : NULL;
	if (d) {
		count_syncs(&k, r, &l);
		count_dests(&k, d);
	}
	PQclear(r);
	PQclear(d);
	config_free(&l);
	if (!d)
		return -1;
	if (k.dead > 0 || k.oldest_s > warn_age_s)
		lv = STATUS_WARNING;
	if (k.failed > 0 || k.stopped > 0 || k.oldest_s > crit_age_s)
		lv = STATUS_CRITICAL;
	fprintf(f,
		"AUDSYNC %s - %d failed sync%s, %d stopped destination%s, %d "
		"dead letter%s, oldest queued record %llds%s%s | failed=%d "
		"stopped=%d dead_letters=%d queue_age_s=%lld\n",
		names[lv], k.failed, k.failed == 1 ? "" : "s", k.stopped,
		k.stopped == 1 ? "" : "s", k.dead, k.dead == 1 ? "" : "s",
		k.oldest_s, k.first[0] ? "; " : "", k.first, k.failed,
		k.stopped, k.dead, k.oldest_s);
	*out = lv;
	return 0;
}

static const char dead_sql[] =
	"SELECT dl.id, to_char(dl.created_at, " TSF "), d.name, c.key,"
	" dl.reason, dl.record FROM audsync.dead_letters dl"
	" JOIN audsync.destinations d ON d.id = dl.destination_id"
	" LEFT JOIN audsync.syncs s ON s.id = dl.sync_id"
	" LEFT JOIN audsync.computations c ON c.id = s.computation_id"
	" WHERE $1::text IS NULL OR d.name = $1 ORDER BY dl.id";

int status_dead_letters(FILE *f, PGconn *conn, const char *destination,
			int json, char *err, size_t errlen)
{
	static const char *const keys[] = { "id",	   "created_at",
					    "destination", "computation",
					    "reason",	   "record" };
	const char *p[1] = { destination };
	PGresult *r =
		db_query(conn, "dead letters", dead_sql, 1, p, err, errlen);
	buf b;
	int i, c;

	if (!r)
		return -1;
	buf_init(&b);
	for (i = 0; i < PQntuples(r); i++) {
		buf_puts(&b, json ? "{" : "");
		for (c = 0; c < 6; c++) {
			const char *v = PQgetisnull(r, i, c)
						? (json ? NULL : "-")
						: PQgetvalue(r, i, c);

			if (json) {
				buf_printf(&b, "%s\"%s\":", c ? "," : "",
					   keys[c]);
				if (c == 0 || c == 5)
					buf_puts(&b, v ? v : "null");
				else if (v)
					buf_json_str(&b, v);
				else
					buf_puts(&b, "null");
			} else {
				buf_printf(&b, "%s%s", c ? "\t" : "", v);
			}
		}
		buf_puts(&b, json ? "}\n" : "\n");
	}
	fwrite(b.data, 1, b.len, f);
	buf_free(&b);
	PQclear(r);
	return 0;
}
