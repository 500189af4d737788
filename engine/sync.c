/* sync.c - runs: lock, evaluate, diff, enqueue, ledger (deliver.c sends) */
#include "audsync/sync.h"

#include "audsync/config.h"
#include "audsync/db.h"
#include "audsync/errbuf.h"
#include "audsync/evaluate.h"
#include "audsync/log.h"
#include "audsync/notify.h"
#include "audsync/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t sync_stop_requested = 0;

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Advisory lock class of "one evaluator per sync" ('AUDS'). */
#define SYNC_LOCK_CLASS "1096107091"

static const char *const run_kinds[] = { "scheduled", "manual", "full" };

int sync_mark_interrupted(PGconn *conn, char *err, size_t errlen)
{
	PGresult *r;
	int n;

	r = db_query(conn, "mark interrupted runs",
		     "UPDATE audsync.runs r SET status = 'failed',"
		     " finished_at = clock_timestamp(),"
		     " error = 'interrupted: the process running it stopped"
		     " before it finished (crash, kill or restart); nothing"
		     " of it was committed and the next run decides again'"
		     " WHERE status = 'running' AND NOT EXISTS (SELECT 1"
		     " FROM pg_locks l WHERE l.locktype = 'advisory'"
		     " AND l.classid = " SYNC_LOCK_CLASS "::oid"
		     " AND l.objid = r.sync_id::oid AND l.objsubid = 2"
		     " AND l.database = (SELECT oid FROM pg_database"
		     " WHERE datname = current_database())"
		     " AND l.granted)",
		     0, NULL, err, errlen);
	if (!r)
		return -1;
	n = (int)db_int(PQcmdTuples(r));
	PQclear(r);
	if (n > 0)
		log_warn("runs left running by a stopped process marked "
			 "failed",
			 LOG_INT("count", n));
	return n;
}

static const char *const lock_sql[] = {
	[SYNC_LOCK_TRY] =
		"SELECT pg_try_advisory_lock(" SYNC_LOCK_CLASS ", $1::int)",
	[SYNC_LOCK_WAIT] = "SELECT true FROM pg_advisory_lock(" SYNC_LOCK_CLASS
			   ", $1::int)",
	[SYNC_UNLOCK] =
		"SELECT pg_advisory_unlock(" SYNC_LOCK_CLASS ", $1::int)",
};

/* Waits for a sync's lock (p: its id) as long as the run that holds it
 * lasts, past the session's lock_timeout (db.c); a signal cancels the
 * wait. Returns the result (caller clears), or NULL with err set. */
static PGresult *wait_lock(PGconn *conn, const char **p, char *err,
			   size_t errlen)
{
	char reset_err[AUDSYNC_ERR_LEN];
	PGresult *r;

	if (db_exec(conn, "sync lock", "SET lock_timeout = 0", 0, NULL, err,
		    errlen) != 0)
		return NULL;
	db_interrupt_arm(conn);
	r = db_query(conn, "sync lock", lock_sql[SYNC_LOCK_WAIT], 1, p, err,
		     errlen);
	db_interrupt_disarm();
	if (db_exec(conn, "sync lock", "RESET lock_timeout", 0, NULL, reset_err,
		    sizeof(reset_err)) != 0)
		log_warn("sync lock: lock_timeout not reset", "error",
			 reset_err);
	return r;
}

int sync_lock(PGconn *conn, int sync_id, sync_lock_op op, char *err,
	      size_t errlen)
{
	char id[16];
	const char *p[1] = { id };
	PGresult *r;
	int got;

	/* On the lock connection: the definition runs on conn, and can
	 * neither free this lock nor take it for itself. */
	conn = db_lock_conn(conn, err, errlen);
	if (!conn)
		return -1;
	snprintf(id, sizeof(id), "%d", sync_id);
	r = op == SYNC_LOCK_WAIT ? wait_lock(conn, p, err, errlen)
				 : db_query(conn, "sync lock", lock_sql[op], 1,
					    p, err, errlen);
	if (!r)
		return -1;
	got = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return got;
}

/* Writes the run row at start (committed at once), returning its id. */
static long long start_run(PGconn *conn, const sync_def *s, run_kind kind,
			   char *err, size_t errlen)
{
	char id[16];
	const char *p[3] = { id, run_kinds[kind], s->as_of };
	PGresult *r;
	long long run_id;

	snprintf(id, sizeof(id), "%d", s->id);
	r = db_query(conn, "start run",
		     "INSERT INTO audsync.runs (sync_id, kind, as_of)"
		     " VALUES ($1, $2, $3) RETURNING id",
		     3, p, err, errlen);
	if (!r)
		return -1;
	run_id = db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	return run_id;
}

static void fail_run(PGconn *conn, long long run_id, long long members,
		     const char *why)
{
	char id[24], m[24], err[AUDSYNC_ERR_LEN];
	const char *p[3] = { id, why, m };

	snprintf(id, sizeof(id), "%lld", run_id);
	snprintf(m, sizeof(m), "%lld", members);
	if (db_exec(conn, "fail run",
		    "UPDATE audsync.runs SET status = 'failed', error = $2,"
		    " members = $3, finished_at = clock_timestamp()"
		    " WHERE id = $1",
		    3, p, err, sizeof(err)) != 0)
		log_error(err);
}

static int finish_run(PGconn *conn, long long run_id, const diff_counts *c,
		      char *err, size_t errlen)
{
	char v[7][24];
	const char *p[7];
	int i;

	snprintf(v[0], sizeof(v[0]), "%lld", run_id);
	snprintf(v[1], sizeof(v[1]), "%lld", c->members);
	snprintf(v[2], sizeof(v[2]), "%lld", c->entered);
	snprintf(v[3], sizeof(v[3]), "%lld", c->exited);
	snprintf(v[4], sizeof(v[4]), "%lld", c->changed);
	snprintf(v[5], sizeof(v[5]), "%lld", c->skipped);
	snprintf(v[6], sizeof(v[6]), "%lld", c->calls);
	for (i = 0; i < 7; i++)
		p[i] = v[i];
	return db_exec(conn, "finish run",
		       "UPDATE audsync.runs SET status = 'succeeded',"
		       " members = $2, entered = $3, exited = $4,"
		       " changed = $5, skipped = $6, calls = $7,"
		       " finished_at = clock_timestamp() WHERE id = $1",
		       7, p, err, errlen);
}

/* The trait's columns are its properties in its destination from now on:
 * no other computation sends them there (sql/022_computation_keys.sql).
 * A run of another trait that claimed one first, even one still
 * committing, wins: this one fails, naming it. */
static int claim_columns(PGconn *conn, const sync_def *s, const char *columns,
			 char *err, size_t errlen)
{
	char comp_id[16], dest_id[16];
	const char *p[3] = { columns, comp_id, dest_id };
	PGresult *r;
	int rc = 0;

	snprintf(comp_id, sizeof(comp_id), "%d", s->computation_id);
	snprintf(dest_id, sizeof(dest_id), "%d", s->dest->id);
	/* Two statements: the second's snapshot sees a claim that
	 * committed while the first waited for it. */
	if (db_exec(conn, "claim trait columns",
		    "INSERT INTO audsync.computation_keys"
		    " (destination_id, key, computation_id)"
		    " SELECT $3::integer, k, $2::integer"
		    " FROM unnest(string_to_array($1, ',')) k"
		    " ON CONFLICT (destination_id, key) DO NOTHING",
		    3, p, err, errlen) != 0)
		return -1;
	r = db_query(conn, "claim trait columns",
		     "SELECT k.key, c.key FROM audsync.computation_keys k"
		     " JOIN audsync.computations c ON c.id = k.computation_id"
		     " WHERE k.destination_id = $3::integer"
		     " AND k.computation_id <> $2::integer"
		     " AND k.key = ANY (string_to_array($1, ',')) LIMIT 1",
		     3, p, err, errlen);
	if (!r)
		return -1;
	if (PQntuples(r) > 0)
		rc = evaluate_claimed(s, r, err, errlen);
	PQclear(r);
	return rc;
}

/* The sync and its computation, still enabled, kept so until the
 * decision commits: a plain UPDATE that disables either waits for it, or
 * the decision for the UPDATE ($1: the sync). */
static const char enabled_sql[] =
	"SELECT 1 FROM audsync.syncs y JOIN audsync.computations c"
	" ON c.id = y.computation_id"
	" WHERE y.id = $1 AND y.enabled AND c.enabled FOR SHARE OF y, c";

/* 1 when s is still enabled (its rows locked until the transaction
 * ends), 0 when it was disabled while it was evaluated, -1 on error. */
static int still_enabled(PGconn *conn, const sync_def *s, char *err,
			 size_t errlen)
{
	char id[16];
	const char *p[1] = { id };
	PGresult *r;
	int n;

	snprintf(id, sizeof(id), "%d", s->id);
	r = db_query(conn, "run: enabled", enabled_sql, 1, p, err, errlen);
	if (!r)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	return n > 0;
}

/* The diff, the outbox rows, the snapshot and the run row: one
 * transaction, so nothing decided is lost and nothing is decided twice.
 * Returns 0, 1 when the sync was disabled meanwhile (nothing decided), or
 * -1 with err set. */
static int decide(diff_counts *c, PGconn *conn, const sync_def *s, int whole,
		  const char *columns, long long run_id, const run_request *rq,
		  char *err, size_t errlen)
{
	diff_mode mode = rq->kind == RUN_FULL ? DIFF_FULL : DIFF_CHANGES;
	int enabled;

	if (db_exec(conn, "run", "BEGIN", 0, NULL, err, errlen) != 0)
		return -1;
	enabled = still_enabled(conn, s, err, errlen);
	if (enabled <= 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return enabled < 0 ? -1 : 1;
	}
	if ((rq->reset && diff_reset_snapshot(conn, s->id, err, errlen) != 0) ||
	    (columns && claim_columns(conn, s, columns, err, errlen) != 0) ||
	    diff_apply(c, conn, s, whole, run_id, mode, rq->dry_run, err,
		       errlen) != 0 ||
	    (!rq->dry_run && finish_run(conn, run_id, c, err, errlen) != 0))
		goto fail;
	if (db_exec(conn, "run", rq->dry_run ? "ROLLBACK" : "COMMIT", 0, NULL,
		    err, errlen) != 0)
		goto fail;
	return 0;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

static void log_run(const sync_def *s, const diff_counts *c, int dry_run)
{
	/* A run that changed nothing is the common case, every minute:
	 * debug, not info. */
	log_level level =
		dry_run || c->entered || c->exited || c->changed || c->calls
			? LOG_LEVEL_INFO
			: LOG_LEVEL_DEBUG;

	if (log_min_level > level)
		return;
	log_event(level,
		  dry_run ? "sync evaluated (dry run: nothing changed)"
			  : "sync run succeeded",
		  "computation", s->key, "destination", s->dest->name, "mode",
		  s->mode == SYNC_MODE_TRACK ? "track" : "identify", "as_of",
		  s->as_of, LOG_INT("members", c->members),
		  LOG_INT("entered", c->entered), LOG_INT("exited", c->exited),
		  LOG_INT("changed", c->changed),
		  LOG_INT("skipped", c->skipped), LOG_INT("calls", c->calls),
		  LOG_SECONDS("evaluate_s", c->evaluated - c->started),
		  LOG_SECONDS("diff_s", now_seconds() - c->evaluated),
		  (const char *)NULL);
}

/* Whether a tenth of the snapshot, and at least 10 000 rows, changed
 * since its statistics were taken (autovacuum's own rule for analyzing):
 * a first sync or a resync just wrote them. By the rows changed, not by
 * the row count pg_class holds: autovacuum's VACUUM updates that, and
 * not the statistics the join's plan needs. Read by the functions behind
 * pg_stat_user_tables: planning the view cost a new session 2 ms. */
static const char stale_sql[] =
	"SELECT pg_stat_get_mod_since_analyze(t) >= 10000"
	" AND pg_stat_get_mod_since_analyze(t) * 10"
	" >= pg_stat_get_live_tuples(t)"
	" FROM CAST('audsync.snapshot_members'::regclass AS oid) t";

/*
 * Refreshes the snapshot's statistics when they are stale, before the
 * evaluation's join with it is planned: planned for the few rows stale
 * statistics show, a diff of half a million members reads them through
 * the index and hashes the wrong side. Autovacuum would analyze it too,
 * within a minute; this does not wait for it. A failure costs nothing
 * but the better plan.
 */
static void refresh_snapshot_stats(PGconn *conn, const char *sql)
{
	char err[AUDSYNC_ERR_LEN];
	PGresult *r = db_query(conn, "snapshot: statistics", stale_sql, 0, NULL,
			       err, sizeof(err));
	int stale;

	if (!r) {
		log_warn("snapshot statistics not refreshed", "error", err);
		return;
	}
	stale = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (stale && db_exec(conn, "snapshot: statistics", sql, 0, NULL, err,
			     sizeof(err)) != 0)
		log_warn("snapshot statistics not refreshed", "error", err);
}

/*
 * The same at the end of a run, by the run that wrote the rows: the next
 * run starts with them fresh, and the pages its sample reads were just
 * written. It vacuums them too, as autovacuum would within a minute: the
 * next run then reads the members from the key's index alone, where it
 * would otherwise visit every new row's page to learn that the row is
 * visible (a quarter of an unchanged run after a first sync of 500 000
 * members; the vacuum takes a tenth of that, reading the pages just
 * written). PostgreSQL counts a session's writes at most once a second;
 * from version 15 the count is asked for first, before that it is there
 * when the run's delivery took a second.
 */
void sync_refresh_statistics(PGconn *conn)
{
	char err[AUDSYNC_ERR_LEN];

	if (PQserverVersion(conn) >= 150000 &&
	    db_exec(conn, "snapshot: statistics",
		    "SELECT pg_stat_force_next_flush()", 0, NULL, err,
		    sizeof(err)) != 0)
		log_warn("snapshot statistics not refreshed", "error", err);
	refresh_snapshot_stats(conn,
			       "VACUUM (ANALYZE) audsync.snapshot_members");
}

/* What a sync is, read again once its lock is held: whatever committed
 * while this process read its configuration and waited is in (a retire,
 * another run). $2: this run's as-of. */
static const char recheck_sql[] =
	"SELECT y.enabled AND c.enabled, st.last_as_of::text,"
	" coalesce(st.last_as_of > $2::timestamptz, false)"
	" FROM audsync.syncs y JOIN audsync.computations c"
	" ON c.id = y.computation_id"
	" LEFT JOIN audsync.sync_state st ON st.sync_id = y.id"
	" WHERE y.id = $1";

/* Why a sync is not run after all. */
typedef enum claim_result {
	CLAIM_OK = 0,
	CLAIM_LOCKED,	/* another process evaluates it */
	CLAIM_DISABLED, /* disabled or retired since the configuration */
	CLAIM_STALE	/* a run at a later as-of committed since */
} claim_result;

/* Reads s again under its lock: sets *out, -1 with err set on error. A
 * run whose as-of lies before the last successful run's would tell
 * Mixpanel an older truth (DESIGN.md section 9); a reset forgets it. */
static int recheck(claim_result *out, PGconn *conn, const sync_def *s,
		   const run_request *rq, char *err, size_t errlen)
{
	char id[16];
	const char *p[2] = { id, s->as_of };
	PGresult *r;

	snprintf(id, sizeof(id), "%d", s->id);
	r = db_query(conn, "sync lock: recheck", recheck_sql, 2, p, err,
		     errlen);
	if (!r)
		return -1;
	*out = CLAIM_OK;
	if (PQntuples(r) == 0 || PQgetvalue(r, 0, 0)[0] != 't')
		*out = CLAIM_DISABLED;
	else if (!rq->reset && PQgetvalue(r, 0, 2)[0] == 't') {
		*out = CLAIM_STALE;
		log_warn("sync skipped: a run at a later as-of committed "
			 "while this one waited; it would tell Mixpanel an "
			 "older truth",
			 "computation", s->key, "destination", s->dest->name,
			 "as_of", s->as_of, "last_as_of", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return 0;
}

/* Takes s's lock and reads s again under it: CLAIM_OK with the lock
 * held, another claim_result without it, or -1 with err set. */
static int claim(claim_result *out, PGconn *conn, const sync_def *s,
		 const run_request *rq, char *err, size_t errlen)
{
	int locked = sync_lock(conn, s->id, SYNC_LOCK_TRY, err, errlen);

	if (locked <= 0) {
		*out = CLAIM_LOCKED;
		return locked;
	}
	if (recheck(out, conn, s, rq, err, errlen) != 0)
		*out = CLAIM_LOCKED; /* not run: only the lock to free */
	else if (*out == CLAIM_OK)
		return 0;
	locked = *out == CLAIM_LOCKED ? -1 : 0;
	if (sync_lock(conn, s->id, SYNC_UNLOCK, err, errlen) < 0)
		return -1;
	return locked;
}

/* Says why s was not run: 0 when that is as it should be (a timer's run
 * skips a sync another process evaluates), 1 when what was asked did not
 * happen (an operator's resync: run it again). */
static int not_run(const sync_def *s, claim_result why,
		   const run_request *asked)
{
	char line[AUDSYNC_ERR_LEN];

	if (why == CLAIM_DISABLED) {
		log_info("sync skipped: disabled or retired since this run "
			 "read its configuration",
			 "computation", s->key, "destination", s->dest->name);
		return 0;
	}
	if (asked->kind != RUN_FULL) {
		if (why == CLAIM_LOCKED)
			log_warn("sync skipped: another process is "
				 "evaluating it",
				 "computation", s->key, "destination",
				 s->dest->name);
		return 0;
	}
	snprintf(line, sizeof(line),
		 why == CLAIM_LOCKED
			 ? "resync: %s is being evaluated by another "
			   "process; run it again"
			 : "resync: %s was run at a later as-of while this "
			   "resync began; run it again",
		 s->key);
	log_error(line, "destination", s->dest->name);
	return 1;
}

/* A run whose sync was disabled while it was evaluated: its decision
 * was rolled back, and its run row says so. */
static void discard_run(PGconn *conn, const sync_def *s, long long run_id,
			const run_request *rq)
{
	static const char why[] =
		"discarded: the sync or its computation was disabled while "
		"it was evaluated; nothing was decided or sent";

	log_info("sync run discarded: disabled while it was evaluated",
		 "computation", s->key, "destination", s->dest->name);
	if (!rq->dry_run)
		fail_run(conn, run_id, 0, why);
}

/* Evaluates and decides one sync under its lock. Returns 0 when it ran
 * (counted in out->written when it rewrote ledger rows) or was rightly
 * skipped (locked, disabled meanwhile, a later run committed), 1 when it
 * failed (recorded) or a resync could not run, -1 when the database
 * failed. */
static int run_one(run_totals *out, PGconn *conn, const sync_def *s,
		   const run_request *asked, char *err, size_t errlen)
{
	char why[AUDSYNC_ERR_LEN];
	diff_counts c = { 0 };
	long long run_id = 0;
	claim_result why_not;
	int rc = 1, whole = 0, decided;
	char *columns = NULL;
	run_request full = *asked;
	const run_request *rq = asked;

	/* New settings choose other distinct_ids for profiles whose data did
	 * not change: every profile is looked at again, as a resync does. */
	if (s->targets_changed && asked->kind != RUN_FULL) {
		full.kind = RUN_FULL;
		rq = &full;
		log_info("sync settings changed: this run sends the full state",
			 "computation", s->key, "destination", s->dest->name,
			 "why", "mode, id_sync or include_anonymous changed");
	}

	if (claim(&why_not, conn, s, rq, err, errlen) != 0)
		return -1;
	if (why_not != CLAIM_OK)
		return not_run(s, why_not, asked);
	if (!rq->dry_run) {
		run_id = start_run(conn, s, rq->kind, err, errlen);
		if (run_id < 0) {
			rc = -1;
			goto out;
		}
	}
	c.started = now_seconds();
	/* Statistics first: the evaluation joins with the snapshot. */
	if (!rq->dry_run)
		refresh_snapshot_stats(conn,
				       "ANALYZE audsync.snapshot_members");
	/* A stop request cancels the evaluation and the decision: nothing
	 * of them commits, and the next run decides again. */
	db_interrupt_arm(conn);
	if (config_sync_problem(s, why, sizeof(why)) ||
	    evaluate_sync(&whole, &columns, conn, s,
			  rq->kind == RUN_FULL || rq->reset, why,
			  sizeof(why)) != 0)
		goto failed;
	c.evaluated = now_seconds();
	decided = decide(&c, conn, s, whole, columns, run_id, rq, why,
			 sizeof(why));
	if (decided < 0)
		goto failed;
	if (decided > 0) {
		db_interrupt_disarm();
		discard_run(conn, s, run_id, rq);
		rc = 0;
		goto out;
	}
	db_interrupt_disarm();
	/* Every change and every call rewrote its profile's ledger row. */
	out->written += c.calls + c.entered + c.exited + c.changed > 0;
	progress_decided(c.calls);
	log_run(s, &c, rq->dry_run != NULL);
	rc = 0;
	goto out;
failed:
	db_interrupt_disarm();
	if (sync_stop_requested)
		snprintf(why, sizeof(why),
			 "stopped by a signal before it finished: nothing of "
			 "it was committed and the next run decides again");
	log_error("sync run failed", "computation", s->key, "destination",
		  s->dest->name, "error", why);
	if (!rq->dry_run)
		fail_run(conn, run_id, c.members, why);
out:
	free(columns);
	if (sync_lock(conn, s->id, SYNC_UNLOCK, err, errlen) < 0)
		rc = -1;
	return rc;
}

static int selected(const sync_def *s, const run_request *rq)
{
	if (!s->enabled)
		return 0;
	if (rq->only_realtime && s->has_lookback)
		return 0;
	return !rq->only_due || s->due;
}

/* Why the command line asks for nothing that may run, or NULL: it names
 * no sync, only disabled ones, or an --as-of before a sync's last
 * successful run (replaying history would tell Mixpanel an older truth;
 * resync --reset forgets it first). */
static const char *refusal(char *err, size_t errlen, const sync_list *l,
			   const run_request *rq)
{
	int i, enabled = 0;

	for (i = 0; i < l->n; i++) {
		const sync_def *s = &l->items[i];

		enabled += s->enabled;
		if (rq->as_of && s->enabled && s->as_of_before_last) {
			snprintf(err, errlen,
				 "--as-of %.80s lies before the last "
				 "successful run of computation %s to "
				 "destination %s (as of %s): to replay "
				 "history, run 'audsync resync --computation "
				 "%s --reset' first",
				 rq->as_of, s->key, s->dest->name,
				 s->last_as_of, s->key);
			return err;
		}
	}
	if (!rq->computation && !rq->destination)
		return NULL;
	if (l->n > 0 && enabled == 0)
		snprintf(err, errlen,
			 "every sync that matches%s%s%s%s is disabled (the "
			 "sync or its computation has enabled = false, or "
			 "was retired): nothing to run",
			 rq->computation ? " computation " : "",
			 rq->computation ? rq->computation : "",
			 rq->destination ? " destination " : "",
			 rq->destination ? rq->destination : "");
	else if (l->n == 0)
		snprintf(err, errlen, "no sync matches%s%s%s%s",
			 rq->computation ? " computation " : "",
			 rq->computation ? rq->computation : "",
			 rq->destination ? " destination " : "",
			 rq->destination ? rq->destination : "");
	else
		return NULL;
	return err;
}

/* 1 when the clock stepped back below the last successful run's as-of:
 * a run at now would tell Mixpanel an older truth, with events dated
 * before those it sent. The sync waits for the clock (an --as-of that
 * early is refused; resync --reset forgets the last run). */
static int clock_behind(const sync_def *s, const run_request *rq)
{
	if (rq->as_of || rq->reset || !s->as_of_before_last)
		return 0;
	log_warn("sync held: the clock is before its last run's as-of",
		 "computation", s->key, "destination", s->dest->name, "as_of",
		 s->as_of, "last_as_of", s->last_as_of);
	return 1;
}

int sync_run(run_totals *out, PGconn *conn, const run_request *rq, char *err,
	     size_t errlen)
{
	sync_filter f = { rq->computation, rq->destination, rq->as_of };
	sync_list l;
	int i, rc;

	rc = config_load(&l, conn, &f, err, errlen);
	if (rc != 0)
		return rc == CONFIG_EUSAGE ? SYNC_EUSAGE : -1;
	if (refusal(err, errlen, &l, rq)) {
		config_one_line(err);
		config_free(&l);
		return SYNC_EUSAGE;
	}
	for (i = 0; i < l.n && rc == 0 && !sync_stop_requested; i++) {
		int r;

		if (!selected(&l.items[i], rq) || clock_behind(&l.items[i], rq))
			continue;
		notify_watchdog();
		progress_tick();
		r = run_one(out, conn, &l.items[i], rq, err, errlen);
		out->failed += r == 1;
		rc = r < 0 ? -1 : 0;
	}
	config_free(&l);
	return rc;
}
