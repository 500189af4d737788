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

/* Touched (audsync_touched, stage.h): the profiles whose events, traits
 * or identifiers were written by a transaction the last run's snapshot
 * ($1) could not see, and whether it was their identifiers
 * (sql/027_change_log_identifiers.sql). */
static const char logged_sql[] =
	"SELECT profile_id, identifiers FROM audsync.change_log"
	" WHERE xact >= pg_snapshot_xmin($1::pg_snapshot)"
	" AND NOT pg_visible_in_snapshot(xact, $1::pg_snapshot)";

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

/* The profiles with an event of the rule across a window's edge. */
static int add_edges(PGconn *conn, const rules_sql *rule, const char **p4,
		     char *err, size_t errlen)
{
	int n = FIRST_VALUE - 1 + rule->nparams, i;
	const char **params = alloc_calloc((size_t)n, sizeof(*params));
	unsigned int *types = alloc_calloc((size_t)n, sizeof(*types));
	PGresult *r;
	buf sql;
	int rc = 0;

	for (i = 0; i < n; i++) {
		types[i] = i < FIRST_VALUE - 1 ? TIMESTAMPTZOID : TEXTOID;
		params[i] = i < FIRST_VALUE - 1
				    ? p4[i]
				    : rule->params[i - (FIRST_VALUE - 1)];
	}
	buf_init(&sql);
	stage_put(&sql, STAGE_TOUCHED);
	buf_printf(&sql, "SELECT d.profile_id, false FROM (%s) d",
		   rule->edges_sql);
	r = PQexecParams(conn, sql.data, n, types, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		db_error(err, errlen, conn, r, "incremental: window edges");
		rc = -1;
	}
	PQclear(r);
	buf_free(&sql);
	free(types);
	free(params);
	return rc;
}

/* Whether the touched profiles (a profile may be there twice) are few
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

	if (add_edges(conn, rule, p4, err, errlen) != 0 ||
	    stage_exec(conn, "incremental: changes", STAGE_TOUCHED, logged_sql,
		       1, &snap, err, errlen) != 0)
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
