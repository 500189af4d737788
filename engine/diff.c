/* diff.c - what changed since Mixpanel was last told (calls.c: the calls) */
#include "audsync/diff.h"

#include "audsync/alloc.h"

#include "audsync/calls.h"
#include "audsync/db.h"
#include "audsync/log.h"
#include "audsync/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Per profile first, the rows of audsync_chg (stage.h, which writes
 * them). kind is enter, exit, change, resend (a full resync's unchanged
 * member), former (a full resync's former member: its exit value again)
 * or newid (an unchanged member that gained identifiers). On a
 * first sync or a resync every member is read: one
 * hash join of the distinct stage against the snapshot's narrow member
 * rows ($3, a resync: keep the unchanged and the former members too).
 */
/* An audience's stage leaves every member's value, {key: true}, NULL
 * (evaluate.c); $2 is the key. Built once per statement, not per
 * member. */
#define AUDIENCE_VALUE "(SELECT jsonb_build_object($2::text, true))"
/* The wide columns are read only for the rows that changed; old_t is the
 * snapshot row's address, for forgetting it. */
#define FULL_SQL(stage)                                                        \
	"SELECT d.profile_id, d.old, d.new, m.since,"                          \
	"  m.targets AS old_targets, d.kind, m.ctid AS old_t, d.old_member"    \
	" FROM (SELECT coalesce(s.profile_id, m.profile_id) AS profile_id,"    \
	"  m.value AS old, s.value AS new, m.member AS old_member,"            \
	"  CASE WHEN s.profile_id IS NULL AND NOT m.member THEN 'former'"      \
	"   WHEN s.profile_id IS NULL THEN 'exit'"                             \
	"   WHEN m.profile_id IS NULL OR NOT m.member THEN 'enter'"            \
	"   WHEN m.value <> s.value THEN 'change' ELSE 'resend' END AS kind"   \
	"  FROM (SELECT profile_id, coalesce(value, " AUDIENCE_VALUE ")"       \
	"   AS value FROM (SELECT " stage " profile_id, value"                 \
	"   FROM pg_temp.audsync_stage) s0) s"                                 \
	"  FULL JOIN (SELECT profile_id, value, member"                        \
	"   FROM audsync.snapshot_members"                                     \
	"   WHERE sync_id = $1) m ON m.profile_id = s.profile_id"              \
	"  WHERE (s.profile_id IS NOT NULL OR m.member OR $3::boolean)"        \
	"   AND ($3::boolean OR NOT coalesce(m.member, false)"                 \
	"   OR m.value IS DISTINCT FROM s.value)) d"                           \
	" LEFT JOIN audsync.snapshot_members m ON d.old IS NOT NULL"           \
	"  AND m.sync_id = $1 AND m.profile_id = d.profile_id"

/* An audience's stage may name a profile twice; a trait's may not. */
static const char full_audience_sql[] = FULL_SQL("DISTINCT");
static const char full_trait_sql[] = FULL_SQL("");

/*
 * Otherwise only the rows that differ are looked at: the stage's rows the
 * snapshot does not hold and the snapshot's rows the stage does not, by
 * one hash join on the narrow checksum and profile_id (a trait's: an
 * audience's rows were joined so as they came, evaluate.c) ...
 */
#define LEDGER_ROWS                                                            \
	"SELECT ctid, profile_id, h FROM audsync.snapshot_members"             \
	" WHERE sync_id = $1 AND member"
#define DIFFER_SQL(members)                                                    \
	"SELECT s.profile_id, s.value, m.profile_id, m.ctid"                   \
	" FROM pg_temp.audsync_stage s FULL JOIN (" members ") m"              \
	"  ON m.h = s.h AND m.profile_id = s.profile_id"                       \
	" WHERE s.h IS NULL OR m.h IS NULL"
static const char differ_sql[] = DIFFER_SQL(LEDGER_ROWS);
/* An incremental run staged only the touched profiles: many are joined
 * with the members, a few looked up by the key one by one (evaluate.h). */
static const char differ_touched_sql[] =
	DIFFER_SQL(LEDGER_OF_TOUCHED(LEDGER_ROWS));
static const char differ_few_sql[] = DIFFER_SQL(LEDGER_OF_FEW(LEDGER_ROWS));

/* ... then paired per profile, the snapshot's wide columns read for
 * those few by the row's address (nothing moves them in between; the
 * key is checked all the same), or by the key where the diff read the
 * members from the key's index and has no address (an audience's,
 * evaluate.c). A profile has one ledger row per sync:
 * a new row's former-member row (an entering profile's ledger of its last
 * exit) is looked up by its own index, for the new rows only. */
static const char chg_sql[] =
	"SELECT coalesce(n.profile_id, o.profile_id) AS profile_id,"
	"  coalesce(o.value, n.x_value) AS old, n.value AS new,"
	"  coalesce(o.since, n.x_since) AS since,"
	"  coalesce(o.targets, n.x_targets) AS old_targets,"
	"  CASE WHEN o.profile_id IS NULL THEN 'enter'"
	"   WHEN n.profile_id IS NULL THEN 'exit' ELSE 'change' END AS kind,"
	"  coalesce(o.old_t, n.x_t) AS old_t,"
	"  CASE WHEN o.profile_id IS NOT NULL THEN true"
	"   WHEN n.x_p IS NOT NULL THEN false END AS old_member"
	" FROM (SELECT n0.profile_id, n0.value, x.profile_id AS x_p,"
	"  x.value AS x_value, x.since AS x_since, x.targets AS x_targets,"
	"  x.ctid AS x_t"
	"  FROM (SELECT DISTINCT new_p AS profile_id,"
	"   coalesce(new, " AUDIENCE_VALUE ") AS value"
	"   FROM pg_temp.audsync_d WHERE new_p IS NOT NULL) n0"
	"  LEFT JOIN audsync.snapshot_members x ON x.sync_id = $1"
	"   AND x.profile_id = n0.profile_id AND NOT x.member) n"
	" FULL JOIN (SELECT m.* FROM pg_temp.audsync_d d"
	"  CROSS JOIN LATERAL (SELECT m.profile_id, m.value, m.since,"
	"   m.targets, m.ctid AS old_t FROM audsync.snapshot_members m"
	"   WHERE m.ctid = d.old_t AND m.sync_id = $1"
	"   AND m.profile_id = d.old_p"
	"   UNION ALL SELECT m.profile_id, m.value, m.since, m.targets,"
	"   m.ctid FROM audsync.snapshot_members m WHERE d.old_t IS NULL"
	"   AND m.sync_id = $1 AND m.profile_id = d.old_p AND m.member) m"
	"  WHERE d.old_p IS NOT NULL) o ON o.profile_id = n.profile_id"
	/* Equal values differ only if checksums were computed apart. */
	" WHERE n.value IS DISTINCT FROM o.value";

/* Unchanged members with identifiers added since the last run: by
 * created_at, or by load time for rows backfilled with older dates; all
 * of them after a TRUNCATE of external_ids, which names no profile ($5). */
static const char newid_sql[] =
	"SELECT m.profile_id, m.value, m.value, m.since, m.targets, 'newid',"
	"  m.ctid, true"
	" FROM (SELECT profile_id FROM audsync.external_ids"
	"  WHERE id_type = ANY ($2::text[]) AND created_at > $3::timestamptz"
	"  UNION SELECT profile_id FROM audsync.identifier_log"
	"  WHERE xact >= pg_snapshot_xmin($4::pg_snapshot)"
	"  AND NOT pg_visible_in_snapshot(xact, $4::pg_snapshot)"
	"  UNION SELECT profile_id FROM audsync.snapshot_members"
	"  WHERE $5::boolean AND sync_id = $1 AND member) e"
	" JOIN audsync.snapshot_members m ON m.sync_id = $1"
	"  AND m.profile_id = e.profile_id AND m.member"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_temp.audsync_chg c"
	"  WHERE c.profile_id = e.profile_id)";

/* Since when to look for new identifiers (created_at, less a margin for
 * late commits; and the last run's snapshot for the load log), this
 * run's snapshot, taken before the look: a row it cannot see is looked
 * at again next time; and whether external_ids was truncated since the
 * last run's snapshot (sql/024_truncate_capture.sql). No row on a first
 * sync. */
static const char mark_sql[] =
	"SELECT ids_seen_upto - interval '" DIFF_IDS_MARGIN "',"
	" coalesce(ids_snapshot, pg_current_snapshot()),"
	" pg_current_snapshot(),"
	" EXISTS (SELECT 1 FROM audsync.truncate_log t"
	"  WHERE t.relation = 'external_ids'"
	"  AND t.xact >= pg_snapshot_xmin(ids_snapshot)"
	"  AND NOT pg_visible_in_snapshot(t.xact, ids_snapshot))"
	" FROM audsync.sync_state WHERE sync_id = $1";

/* The load log is pruned once per clock hour of each sync, not on every
 * run: right after a bulk load, the index of a just-pruned log is full of
 * dead entries that every further prune would walk again. */
static const char prune_sql[] =
	"DELETE FROM audsync.identifier_log WHERE xact <"
	" (SELECT min(pg_snapshot_xmin(ids_snapshot)) FROM audsync.sync_state)"
	" AND NOT EXISTS (SELECT 1 FROM audsync.sync_state WHERE sync_id = $1"
	" AND date_trunc('hour', ids_seen_upto) = date_trunc('hour', now()))";

/* The change log of incremental rules (sql/014_rule_changes.sql) is
 * needed back to the oldest snapshot a rule sync remembers, this run's
 * (not saved yet) included, the oldest transaction running when a run
 * still running began (its snapshot, not saved yet, is no older:
 * sql/015_run_horizon.sql), and the oldest running transaction. Once per
 * clock hour, as above; by TRUNCATE when nothing is still needed and no
 * load is writing (sql/016_change_log_truncate.sql). */
static const char prune_changes_sql[] =
	"SELECT audsync.prune_change_log(min(x)) FROM ("
	"  SELECT pg_snapshot_xmin(rule_snapshot) FROM audsync.sync_state"
	"  UNION ALL SELECT pg_snapshot_xmin(snap) FROM pg_temp.audsync_mark"
	"  UNION ALL SELECT min(horizon) FROM audsync.runs"
	"  WHERE status = 'running'"
	"  UNION ALL SELECT pg_snapshot_xmin(pg_current_snapshot())) m (x)"
	" HAVING NOT EXISTS (SELECT 1 FROM audsync.sync_state"
	"  WHERE sync_id = $1"
	"  AND date_trunc('hour', ids_seen_upto) = date_trunc('hour', now()))";

/* The truncate log (sql/024_truncate_capture.sql) is kept as the change
 * log is, and back to every identifier snapshot: a row a TRUNCATE. */
static const char prune_truncates_sql[] =
	"DELETE FROM audsync.truncate_log WHERE xact < (SELECT min(x) FROM ("
	"  SELECT pg_snapshot_xmin(rule_snapshot) FROM audsync.sync_state"
	"  UNION ALL SELECT pg_snapshot_xmin(ids_snapshot)"
	"  FROM audsync.sync_state"
	"  UNION ALL SELECT pg_snapshot_xmin(snap) FROM pg_temp.audsync_mark"
	"  UNION ALL SELECT min(r.horizon) FROM audsync.runs r"
	"  WHERE r.status = 'running'"
	"  UNION ALL SELECT pg_snapshot_xmin(pg_current_snapshot())) m (x))";

/* What the next run of a rule needs to run incrementally (incremental.h):
 * NULL for a definition_sql. */
static const char rule_mark_sql[] =
	"UPDATE audsync.sync_state SET (rule_snapshot, rule_digest) ="
	" (SELECT snap, digest FROM pg_temp.audsync_mark)"
	" WHERE sync_id = $1";

static const char counts_sql[] =
	"SELECT count(*) FILTER (WHERE kind = 'enter'),"
	" count(*) FILTER (WHERE kind = 'exit'),"
	" count(*) FILTER (WHERE kind = 'change')"
	" FROM pg_temp.audsync_chg";

/* Everyone whose snapshot row this run rewrites or removes, by the rows'
 * addresses (a TID scan, whatever the statistics say): the diff read
 * them in this transaction, under the sync's lock, so each address still
 * names the row it named. */
static const char forget_sql[] =
	"WITH gone AS (DELETE FROM audsync.snapshot_members m"
	" WHERE m.ctid = ANY (ARRAY(SELECT old_t FROM pg_temp.audsync_chg"
	"  WHERE old_t IS NOT NULL)) AND m.sync_id = $1 RETURNING m.member)"
	" SELECT count(*) FILTER (WHERE member), count(*) FROM gone";

/* The state: the snapshot's members moved by the members this run
 * removed ($5) and wrote back (every profile of the changes but the
 * exits, which stay as former members). Returns the members. */
static const char state_sql[] =
	"INSERT INTO audsync.sync_state (sync_id, last_as_of, ids_seen_upto,"
	"  last_run_id, ids_snapshot, snap_count, targets_rule)"
	" SELECT $1, $2, now(), $3,"
	"  coalesce($4::pg_snapshot, pg_current_snapshot()),"
	"  count(*) FILTER (WHERE kind NOT IN ('exit', 'former'))"
	"  - $5::bigint,"
	"  (SELECT " SYNC_TARGETS_RULE " FROM audsync.syncs s"
	"   JOIN audsync.computations c ON c.id = s.computation_id"
	"   WHERE s.id = $1)"
	" FROM pg_temp.audsync_chg"
	" ON CONFLICT (sync_id) DO UPDATE SET"
	"  targets_rule = EXCLUDED.targets_rule,"
	"  last_as_of = EXCLUDED.last_as_of,"
	"  ids_seen_upto = EXCLUDED.ids_seen_upto,"
	"  last_run_id = EXCLUDED.last_run_id,"
	"  ids_snapshot = EXCLUDED.ids_snapshot,"
	"  snap_count = sync_state.snap_count + EXCLUDED.snap_count"
	" RETURNING snap_count";

/* What a run carries from finding changes to saving its state. */
typedef struct diff_marks {
	char *snapshot;	    /* taken before new identifiers were looked
			      * for (owned; a busy server's is long), or
			      * NULL on a first sync or a resync */
	char removed_n[24]; /* snapshot members removed */
	int ledger_read;    /* a changed profile had a ledger row */
	int whole;	    /* what the stage holds (evaluate.h) */
} diff_marks;

/* Adds unchanged members that gained identifiers since the last run. The
 * mark is a parameter, not a subquery: with its value the planner sees
 * how few rows are new and looks them up by index. */
static int find_new_identifiers(PGconn *conn, const sync_def *s,
				const char *sync_id, char **snapshot, char *err,
				size_t errlen)
{
	const char *p[5] = { sync_id, calls_id_types(s), NULL, NULL, NULL };
	PGresult *r = db_query(conn, "diff: new identifiers", mark_sql, 1, p,
			       err, errlen);
	int rc = 0;

	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
		p[2] = PQgetvalue(r, 0, 0);
		p[3] = PQgetvalue(r, 0, 1);
		*snapshot = alloc_strdup(PQgetvalue(r, 0, 2));
		p[4] = PQgetvalue(r, 0, 3);
		if (p[4][0] == 't')
			log_info("identifiers compared in full: "
				 "audsync.external_ids was truncated since "
				 "the last run",
				 "computation", s->key, "destination",
				 s->dest->name);
		rc = stage_exec(conn, "diff: new identifiers",
				STAGE_MORE_CHANGES, newid_sql, 5, p, err,
				errlen);
	}
	PQclear(r);
	return rc;
}

/* Fills audsync_chg with the members that entered, exited or changed
 * (with mode DIFF_FULL, every member). */
static int member_changes(PGconn *conn, const sync_def *s, diff_mode mode,
			  const char *sync_id, diff_marks *mk, char *err,
			  size_t errlen)
{
	const char *full = s->is_trait ? full_trait_sql : full_audience_sql;
	const char *p[3] = { sync_id, s->key, mode == DIFF_FULL ? "t" : "f" };

	const char *differ = mk->whole == EVALUATE_FEW ? differ_few_sql
			     : mk->whole == EVALUATE_TOUCHED
				     ? differ_touched_sql
				     : differ_sql;

	if (mk->whole == EVALUATE_WHOLE)
		return stage_exec(conn, "diff: members", STAGE_CHANGES, full, 3,
				  p, err, errlen);
	/* An audience's rows were diffed as they came. */
	if ((s->is_trait && stage_exec(conn, "diff: members", STAGE_VALUES_DIFF,
				       differ, 1, p, err, errlen) != 0) ||
	    stage_analyze(conn, "diff: analyze", STAGE_TABLE_D, err, errlen) !=
		    0)
		return -1;
	return stage_exec(conn, "diff: members", STAGE_CHANGES, chg_sql, 2, p,
			  err, errlen);
}

/* Finds the profiles that changed or gained identifiers, and removes
 * their snapshot rows (rewritten as the calls stream). */
static int find_changes(PGconn *conn, const sync_def *s, diff_mode mode,
			diff_marks *mk, char *err, size_t errlen)
{
	char sync_id[16];
	const char *p[1] = { sync_id };
	PGresult *r;

	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	if (db_exec(conn, "diff: settings",
		    "SET LOCAL work_mem = '" DIFF_WORK_MEM "'", 0, NULL, err,
		    errlen) != 0 ||
	    member_changes(conn, s, mode, sync_id, mk, err, errlen) != 0)
		return -1;
	if (mode == DIFF_CHANGES &&
	    find_new_identifiers(conn, s, sync_id, &mk->snapshot, err,
				 errlen) != 0)
		return -1;
	if (stage_analyze(conn, "diff: analyze", STAGE_TABLE_CHG, err,
			  errlen) != 0)
		return -1;
	r = db_query(conn, "snapshot: forget", forget_sql, 1, p, err, errlen);
	if (!r)
		return -1;
	snprintf(mk->removed_n, sizeof(mk->removed_n), "%s",
		 PQgetvalue(r, 0, 0));
	mk->ledger_read = db_int(PQgetvalue(r, 0, 1)) > 0;
	PQclear(r);
	return 0;
}

static int count_changes(diff_counts *out, PGconn *conn, char *err,
			 size_t errlen)
{
	PGresult *r = db_query(conn, "diff: counts", counts_sql, 0, NULL, err,
			       errlen);

	if (!r)
		return -1;
	out->entered = db_int(PQgetvalue(r, 0, 0));
	out->exited = db_int(PQgetvalue(r, 0, 1));
	out->changed = db_int(PQgetvalue(r, 0, 2));
	PQclear(r);
	return 0;
}

/* Saves the sync's state; out->members is the snapshot's new size. */
static int save_state(diff_counts *out, PGconn *conn, const sync_def *s,
		      long long run_id, const diff_marks *mk, char *err,
		      size_t errlen)
{
	char sync_id[16], run[24], removed[24];
	const char *p[5] = { sync_id, s->as_of, run, mk->snapshot, removed };
	PGresult *r;

	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	snprintf(run, sizeof(run), "%lld", run_id);
	/* The changes' entering profiles outside the graph are no members. */
	snprintf(removed, sizeof(removed), "%lld",
		 db_int(mk->removed_n) + out->outside);
	/* The log is needed back to the sync that looked longest ago; the
	 * prune reads this sync's previous state, so it goes first. */
	if (db_exec(conn, "identifier log", prune_sql, 1, p, err, errlen) !=
		    0 ||
	    db_exec(conn, "change log", prune_changes_sql, 1, p, err, errlen) !=
		    0 ||
	    db_exec(conn, "truncate log", prune_truncates_sql, 0, NULL, err,
		    errlen) != 0)
		return -1;
	r = db_query(conn, "sync state", state_sql, 5, p, err, errlen);
	if (!r)
		return -1;
	if (db_exec(conn, "sync state: rule", rule_mark_sql, 1, p, err,
		    errlen) != 0) {
		PQclear(r);
		return -1;
	}
	out->members = db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int diff_apply(diff_counts *out, PGconn *conn, const sync_def *s, int whole,
	       long long run_id, diff_mode mode, FILE *dry_run, char *err,
	       size_t errlen)
{
	diff_marks mk;
	int rc = -1;

	memset(&mk, 0, sizeof(mk));
	mk.whole = EVALUATE_STAGED(whole);
	if (find_changes(conn, s, mode, &mk, err, errlen) != 0 ||
	    count_changes(out, conn, err, errlen) != 0 ||
	    calls_stream(out, conn, s, run_id,
			 (mode == DIFF_FULL ? CALLS_FULL : 0) |
				 (mk.ledger_read ? CALLS_LEDGER_READ : 0) |
				 (whole & EVALUATE_UNGRAPHED ? CALLS_GRAPH : 0),
			 dry_run, err, errlen) != 0 ||
	    save_state(out, conn, s, run_id, &mk, err, errlen) != 0)
		rc = -1;
	else
		rc = 0;
	free(mk.snapshot);
	return rc;
}

int diff_reset_snapshot(PGconn *conn, int sync_id, char *err, size_t errlen)
{
	char id[16];
	const char *p[1] = { id };

	snprintf(id, sizeof(id), "%d", sync_id);
	if (db_exec(conn, "reset snapshot",
		    "DELETE FROM audsync.snapshot_members WHERE sync_id = $1",
		    1, p, err, errlen) != 0)
		return -1;
	return db_exec(conn, "reset snapshot",
		       "DELETE FROM audsync.sync_state WHERE sync_id = $1", 1,
		       p, err, errlen);
}
