/* incremental.c - which profiles an hourly run of a rule must look at */
#include "audsync/incremental.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/log.h"
#include "audsync/settings.h"
#include "audsync/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMESTAMPTZOID 1184
#define TEXTOID	       25
/* Where evaluate.c binds a rule's values: after $1..$4. */
#define FIRST_VALUE 5

/* audsync_mark's row (stage.h): the snapshot before anything is looked
 * at, and the rule's digest. What a transaction it cannot see wrote is
 * looked at by the next run, however late it commits. */
static const char mark_sql[] = "SELECT pg_current_snapshot(), md5($1)";

/* The last run's as-of, window start and snapshot, when it evaluated the
 * same rule ($2: its digest's text) at or before this as-of ($3), and a
 * source table truncated since (sql/024_truncate_capture.sql): the log
 * names no profile of a TRUNCATE. */
static const char state_sql[] =
	"SELECT st.last_as_of::text,"
	" coalesce((st.last_as_of - c.lookback)::text, '-infinity'),"
	" st.rule_snapshot::text, audsync.rule_changes_unlogged(),"
	" st.snap_count, (SELECT min(t.relation)"
	"  FROM audsync.truncate_log t"
	"  WHERE t.xact >= pg_snapshot_xmin(st.rule_snapshot)"
	"  AND NOT pg_visible_in_snapshot(t.xact, st.rule_snapshot))"
	" FROM audsync.sync_state st"
	" JOIN audsync.syncs y ON y.id = st.sync_id"
	" JOIN audsync.computations c ON c.id = y.computation_id"
	" WHERE st.sync_id = $1 AND st.rule_digest = md5($2)"
	" AND st.rule_snapshot IS NOT NULL AND st.snap_count > 0"
	" AND st.last_as_of <= $3::timestamptz";

enum {
	ST_AS_OF,
	ST_WINDOW,
	ST_SNAPSHOT,
	ST_UNLOGGED,
	ST_MEMBERS,
	ST_TRUNCATED
};

/* Touched (audsync_touched, stage.h), each profile once: those with an
 * event of the rule across a window's edge (the rule's edges_sql, which
 * names them once an event), and those whose events, traits or
 * identifiers were written by a transaction the last run's snapshot ($N,
 * after the edges' values) could not see, and whether it was their
 * identifiers (sql/027_change_log_identifiers.sql). The two mostly name
 * the same profiles, the new events': every statement of the run that
 * reads them reads each once. fresh counts the profile's events that
 * decide its rule alone (rules.h, edges_sql). */
#define TOUCHED_SQL                                                            \
	"SELECT t.profile_id, bool_or(t.identifiers),"                         \
	" count(*) FILTER (WHERE t.fresh) FROM ("                              \
	"SELECT d.profile_id, false AS identifiers, d.fresh FROM (%s) d"       \
	" UNION ALL SELECT c.profile_id, c.identifiers, false"                 \
	" FROM audsync.change_log c"                                           \
	" WHERE c.xact >= pg_snapshot_xmin($%d::pg_snapshot)"                  \
	" AND NOT pg_visible_in_snapshot(c.xact, $%d::pg_snapshot)"            \
	") t GROUP BY t.profile_id"

/* What the last run's result depended on: the statement, its values and
 * the lookback behind $2. Caller frees. */
static char *digest_text(const rules_sql *rule, const sync_def *s)
{
	buf b;
	int i;

	buf_init(&b);
	buf_puts(&b, rule->sql);
	for (i = 0; i < rule->nparams; i++) {
		buf_putc(&b, '\x1f');
		buf_puts(&b, rule->params[i]);
	}
	buf_putc(&b, '\x1f');
	buf_puts(&b, s->lookback ? s->lookback : "");
	return buf_steal(&b);
}

/* Fills audsync_touched (TOUCHED_SQL) from the window's old and new
 * bounds (p4) and the last run's snapshot. */
static int add_touched(PGconn *conn, const rules_sql *rule, const char **p4,
		       const char *snap, char *err, size_t errlen)
{
	int n = FIRST_VALUE + rule->nparams, i;
	const char **params = alloc_calloc((size_t)n, sizeof(*params));
	unsigned int *types = alloc_calloc((size_t)n, sizeof(*types));
	PGresult *r;
	buf sql;
	int rc = 0;

	for (i = 0; i < n - 1; i++) {
		types[i] = i < FIRST_VALUE - 1 ? TIMESTAMPTZOID : TEXTOID;
		params[i] = i < FIRST_VALUE - 1
				    ? p4[i]
				    : rule->params[i - (FIRST_VALUE - 1)];
	}
	params[n - 1] = snap; /* its type is the statement's cast */
	buf_init(&sql);
	stage_put(&sql, STAGE_TOUCHED);
	buf_printf(&sql, TOUCHED_SQL, rule->edges_sql, n, n);
	r = PQexecParams(conn, sql.data, n, types, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		db_error(err, errlen, conn, r, "incremental: touched profiles");
		rc = -1;
	}
	PQclear(r);
	buf_free(&sql);
	free(types);
	free(params);
	return rc;
}

/* Whether the touched profiles are few
 * against the ledger's members ($1): at most AUDSYNC_LOOKUP_PERCENT ($2)
 * of them. By default a tenth: a lookup by the key costs about ten times
 * a member's entry read in one pass over the key's index. */
static const char few_sql[] =
	"SELECT $2::bigint > 0 AND count(*) * 100 <= $1::bigint * $2::bigint"
	" FROM pg_temp.audsync_touched";

/* Fills the touched profiles from the last run's state (row 0 of st) and
 * says in *on how many they are (incremental.h). */
static int fill_touched(int *on, PGconn *conn, const sync_def *s,
			const rules_sql *rule, const PGresult *st, char *err,
			size_t errlen)
{
	const char *p4[4] = { s->as_of, s->window_start,
			      PQgetvalue(st, 0, ST_AS_OF),
			      PQgetvalue(st, 0, ST_WINDOW) };
	const char *snap = PQgetvalue(st, 0, ST_SNAPSHOT);
	char percent[24];
	const char *few_p[2] = { PQgetvalue(st, 0, ST_MEMBERS), percent };
	PGresult *few;
	long pc;

	if (add_touched(conn, rule, p4, snap, err, errlen) != 0)
		return -1;
	if (settings_env_long(&pc, "AUDSYNC_LOOKUP_PERCENT", err, errlen) != 0)
		return -1;
	snprintf(percent, sizeof(percent), "%ld", pc);
	few = db_query(conn, "incremental: count", few_sql, 2, few_p, err,
		       errlen);
	if (!few)
		return -1;
	*on = strcmp(PQgetvalue(few, 0, 0), "t") == 0 ? INCREMENTAL_FEW
						      : INCREMENTAL_MANY;
	PQclear(few);
	if (*on == INCREMENTAL_MANY &&
	    stage_analyze(conn, "incremental: analyze", STAGE_TABLE_TOUCHED,
			  err, errlen) != 0)
		return -1;
	log_debug("incremental evaluation", "computation", s->key, "since",
		  PQgetvalue(st, 0, ST_AS_OF), "ledger",
		  *on == INCREMENTAL_FEW ? "looked up" : "joined");
	return 0;
}

static int setting_off(void)
{
	const char *v = settings_env("AUDSYNC_INCREMENTAL");

	return v && strcmp(v, "false") == 0;
}

int incremental_prepare(int *on, PGconn *conn, const sync_def *s,
			const rules_sql *rule, int whole, char *err,
			size_t errlen)
{
	char *digest = digest_text(rule, s), sync_id[16];
	const char *p[3] = { sync_id, digest, s->as_of };
	PGresult *st = NULL;
	int rc = -1;

	*on = INCREMENTAL_OFF;
	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	if (stage_exec(conn, "incremental: mark", STAGE_MARK, mark_sql, 1,
		       p + 1, err, errlen) != 0)
		goto out;
	rc = 0;
	if (whole || !rule->touched_sql || !s->window_start || setting_off())
		goto out;
	st = db_query(conn, "incremental: state", state_sql, 3, p, err, errlen);
	if (!st) {
		rc = -1;
		goto out;
	}
	if (PQntuples(st) == 0 || !PQgetisnull(st, 0, ST_UNLOGGED))
		goto out;
	if (!PQgetisnull(st, 0, ST_TRUNCATED)) {
		log_info("rule evaluated in full: a source table was "
			 "truncated since its last run",
			 "computation", s->key, "truncated",
			 PQgetvalue(st, 0, ST_TRUNCATED));
		goto out;
	}
	rc = fill_touched(on, conn, s, rule, st, err, errlen);
out:
	PQclear(st);
	free(digest);
	return rc;
}

int incremental_why_full(char *out, size_t outlen, PGconn *conn,
			 const rules_sql *rule, char *err, size_t errlen)
{
	PGresult *r;

	if (!rule->touched_sql) {
		snprintf(out, outlen, "%s", rule->why_full);
		return 0;
	}
	if (setting_off()) {
		snprintf(out, outlen, "AUDSYNC_INCREMENTAL is false");
		return 0;
	}
	r = db_query(conn, "incremental: change log",
		     "SELECT audsync.rule_changes_unlogged()", 0, NULL, err,
		     errlen);
	if (!r)
		return -1;
	snprintf(out, outlen, "%s",
		 PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}
