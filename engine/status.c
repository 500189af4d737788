/* status.c - what audsync is doing, and whether its definitions are sound */
#include "audsync/status.h"

#include "audsync/buf.h"
#include "audsync/config.h"
#include "audsync/db.h"
#include "audsync/evaluate.h"

#include <stdlib.h>
#include <string.h>

static const char status_sql[] =
	"SELECT s.id, c.key, d.name, s.mode, s.enabled AND c.enabled,"
	" r.id, r.kind, r.status,"
	" to_char(r.as_of, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" to_char(r.finished_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" r.members, r.entered, r.exited, r.changed, r.skipped, r.calls,"
	" (SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
	"  WHERE o.sync_id = s.id),"
	" (SELECT count(*) FROM audsync.dead_letters dl"
	"  WHERE dl.sync_id = s.id),"
	" coalesce(r.error, (SELECT o.last_error FROM audsync.outbox o"
	"  WHERE o.sync_id = s.id AND o.last_error IS NOT NULL"
	"  ORDER BY o.id LIMIT 1))"
	" FROM audsync.syncs s"
	" JOIN audsync.computations c ON c.id = s.computation_id"
	" JOIN audsync.destinations d ON d.id = s.destination_id"
	" LEFT JOIN LATERAL (SELECT * FROM audsync.runs r"
	"  WHERE r.sync_id = s.id ORDER BY r.id DESC LIMIT 1) r ON true"
	/* Forwarded messages (audsync forward): one row per destination
	 * with records of no sync queued or dead. */
	" UNION ALL SELECT NULL, '(forward)', d.name, 'forward', true,"
	" NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
	" f.queued, f.dead, f.last_error FROM audsync.destinations d,"
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

static const char *const st_names[ST_COLUMNS] = {
	"sync",	   "computation", "destination",  "mode",    "enabled",
	"run",	   "run_kind",	  "status",	  "as_of",   "finished_at",
	"members", "entered",	  "exited",	  "changed", "skipped",
	"calls",   "queued",	  "dead_letters", "error"
};

PGresult *status_query(PGconn *conn, char *err, size_t errlen)
{
	return db_query(conn, "status", status_sql, 0, NULL, err, errlen);
}

/* The configuration problem of sync id, or NULL. */
static const char *problem_of(const sync_list *l, int id, char *buf, size_t len)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->items[i].id == id)
			return config_sync_problem(&l->items[i], buf, len);
	return NULL;
}

static int is_number_column(int c)
{
	return c == ST_SYNC_ID || c == ST_RUN_ID ||
	       (c >= ST_MEMBERS && c <= ST_DEAD);
}

static void json_row(buf *b, const PGresult *r, int row, const char *problem)
{
	int c;

	buf_putc(b, '{');
	for (c = 0; c < ST_COLUMNS; c++) {
		const char *v = PQgetvalue(r, row, c);

		buf_printf(b, "%s\"%s\":", c ? "," : "", st_names[c]);
		if (PQgetisnull(r, row, c))
			buf_puts(b, "null");
		else if (c == ST_ENABLED)
			buf_puts(b, v[0] == 't' ? "true" : "false");
		else if (is_number_column(c))
			buf_puts(b, v);
		else
			buf_json_str(b, v);
	}
	buf_puts(b, ",\"problem\":");
	if (problem)
		buf_json_str(b, problem);
	else
		buf_puts(b, "null");
	buf_putc(b, '}');
}

static void text_row(buf *b, const PGresult *r, int row, const char *problem)
{
	const char *v[ST_COLUMNS];
	int c;

	for (c = 0; c < ST_COLUMNS; c++)
		v[c] = PQgetisnull(r, row, c) ? "-" : PQgetvalue(r, row, c);
	buf_printf(b, "%-24s %-12s %-8s %-8s %-9s %-20s %8s %8s %8s %8s %6s",
		   v[ST_KEY], v[ST_DEST], v[ST_MODE],
		   v[ST_ENABLED][0] == 't' ? "yes" : "no", v[ST_RUN_STATUS],
		   v[ST_AS_OF], v[ST_MEMBERS], v[ST_ENTERED], v[ST_EXITED],
		   v[ST_QUEUED], v[ST_DEAD]);
	if (problem || !PQgetisnull(r, row, ST_LAST_ERROR))
		buf_printf(b, "  error: %s",
			   problem ? problem : v[ST_LAST_ERROR]);
	buf_putc(b, '\n');
}

int status_print(FILE *out, PGconn *conn, int json, char *err, size_t errlen)
{
	char problem[1024];
	sync_filter f = { NULL, NULL, NULL };
	sync_list l;
	PGresult *r;
	buf b;
	int i;

	if (config_load(&l, conn, &f, err, errlen) != 0)
		return -1;
	r = status_query(conn, err, errlen);
	if (!r) {
		config_free(&l);
		return -1;
	}
	buf_init(&b);
	if (json)
		buf_putc(&b, '[');
	else
		buf_printf(&b,
			   "%-24s %-12s %-8s %-8s %-9s %-20s %8s %8s %8s "
			   "%8s %6s\n",
			   "COMPUTATION", "DESTINATION", "MODE", "ENABLED",
			   "LAST RUN", "AS OF", "MEMBERS", "ENTERED", "EXITED",
			   "QUEUED", "DEAD");
	for (i = 0; i < PQntuples(r); i++) {
		const char *p = problem_of(&l, atoi(PQgetvalue(r, i, 0)),
					   problem, sizeof(problem));

		if (json && i)
			buf_putc(&b, ',');
		if (json)
			json_row(&b, r, i, p);
		else
			text_row(&b, r, i, p);
	}
	if (json)
		buf_puts(&b, "]\n");
	fwrite(b.data, 1, b.len, out);
	buf_free(&b);
	PQclear(r);
	config_free(&l);
	return 0;
}

int status_validate(int *out, FILE *f, PGconn *conn, char *err, size_t errlen)
{
	char why[1024];
	sync_filter flt = { NULL, NULL, NULL };
	sync_list l, d;
	int i, problems = 0;

	if (config_load(&l, conn, &flt, err, errlen) != 0)
		return -1;
	if (config_load_destinations(&d, conn, NULL, err, errlen) != 0) {
		config_free(&l);
		return -1;
	}
	for (i = 0; i < d.ndests; i++) {
		if (!d.dests[i].problem)
			continue;
		fprintf(f, "problem: %s\n", d.dests[i].problem);
		problems++;
	}
	for (i = 0; i < l.n; i++) {
		const sync_def *s = &l.items[i];

		/* A destination's problem was printed once above. */
		if ((config_sync_problem(s, why, sizeof(why)) &&
		     (!s->dest->problem || strcmp(why, s->dest->problem))) ||
		    evaluate_check(conn, s, why, sizeof(why)) != 0) {
			fprintf(f, "problem: %s\n", why);
			problems++;
		}
	}
	fprintf(f, "%d sync%s and %d destination%s checked: %d problem%s\n",
		l.n, l.n == 1 ? "" : "s", d.ndests, d.ndests == 1 ? "" : "s",
		problems, problems == 1 ? "" : "s");
	config_free(&l);
	config_free(&d);
	*out = problems;
	return 0;
}
