/* check_races.c - what a marketer sees in Mixpanel when two commands meet
 * (DESIGN.md sections 6, 8 and 9): a retire during a run, two runs whose
 * as-of times cross, a resync of a sync another process evaluates, and a
 * TRUNCATE of the source tables between two runs. A slow definition
 * (pg_sleep) holds the first process inside its evaluation while the
 * test does the rest. Real PostgreSQL, the audsync binary, the fake
 * Mixpanel. */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 "2026-06-10 00:00:00+00"
#define T1 "2026-06-10 00:01:00+00"

/* The evaluation that holds a process (4 s). */
#define SLOW_SQL                                                               \
	"SELECT profile_id FROM audsync.external_ids,"                         \
	" (SELECT pg_sleep(4)) x"

static mpctl *fake;
static const char *db;

static const char *const env_fast[] = { "AUDSYNC_RETRY_BASE_MS=10",
					"AUDSYNC_RETRY_JITTER_MS=5",
					"AUDSYNC_MAX_ATTEMPTS=2", NULL };

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* A computation (definition dollar-quoted) and its identify sync. */
static void add_synced(const char *key, const char *sql)
{
	tl_sqlf(db,
		"INSERT INTO audsync.computations (key, name, kind,"
		" definition_sql) VALUES ('%s', '%s', 'audience',"
		" $def$%s$def$);"
		"INSERT INTO audsync.syncs (computation_id, destination_id,"
		" mode) SELECT c.id, d.id, 'identify' FROM"
		" audsync.computations c, audsync.destinations d"
		" WHERE c.key = '%s' AND d.name = 'mp'",
		key, key, sql, key);
}

/* p1..pn with user_ids u1..un, created an hour ago. */
static void add_people(int n)
{
	tl_sqlf(db,
		"INSERT INTO audsync.external_ids SELECT 'p' || g, 'user_id',"
		" 'u' || g, now() - interval '1 hour'"
		" FROM generate_series(1, %d) g",
		n);
}

/* Waits (up to 120 s) until a statement with text is running in another
 * session: the spawned process is inside its evaluation. */
static void wait_for_statement(const char *text)
{
	int i;

	for (i = 0; i < 1200; i++) {
		if (tl_sql_intf(db,
				"SELECT count(*) FROM pg_stat_activity"
				" WHERE state = 'active'"
				" AND pid <> pg_backend_pid()"
				" AND query LIKE '%%%s%%'",
				text) > 0)
			return;
		usleep(100 * 1000);
	}
	ck_abort_msg("no session ever ran %s", text);
}

static void run_ok(const char *const *args)
{
	tl_result r = tl_audsync_argv(db, env_fast, args);

	ck_assert_msg(r.status == 0, "%s %s: exit %d: %s", args[0],
		      args[1] ? args[1] : "", r.status, r.err);
	tl_result_free(&r);
}

static void wait_ok(pid_t pid, const char *what)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d",
		      what, st);
}

static void assert_prop(const char *did, const char *name, const char *want,
			const char *what)
{
	char *v = mpctl_prop(fake, did, name);

	if (!want)
		ck_assert_msg(v == NULL, "%s: %s has %s = %s, expected none",
			      what, did, name, v);
	else
		ck_assert_msg(v && strcmp(v, want) == 0,
			      "%s: %s has %s = %s, expected %s", what, did,
			      name, v ? v : "(nothing)", want);
	free(v);
}

/* What a failure of the retire race needs to be told apart: what is
 * still queued (a call no process delivered) and what each run and the
 * retire recorded. Caller frees. */
static char *queue_and_runs(void)
{
	return tl_sql_value(
		db,
		"SELECT 'after retire --unset (queued: ' || coalesce(("
		"SELECT string_agg(o.lane || ':' || left(o.records, 160),"
		" ' / ' ORDER BY o.id)"
		" FROM audsync.outbox o), 'nothing')"
		" || '; runs: ' || coalesce((SELECT string_agg(r.kind || ' '"
		" || r.status || ' entered ' || coalesce(r.entered, 0)"
		" || ' calls ' || coalesce(r.calls, 0) || coalesce(' ('"
		" || r.error || ')', ''), ', ' ORDER BY r.id)"
		" FROM audsync.runs r), 'none') || ')'");
}

/* The ledger rows of computation key's syncs. */
static long long ledger_rows(const char *key)
{
	return tl_sql_intf(db,
			   "SELECT count(*) FROM audsync.snapshot_members m"
			   " JOIN audsync.syncs y ON y.id = m.sync_id"
			   " JOIN audsync.computations c"
			   " ON c.id = y.computation_id WHERE c.key = '%s'",
			   key);
}

/* ---- retire during a run ---------------------------------------------- */

/*
 * u3 joins "slow" while a run of it evaluates, and `retire slow --unset`
 * comes before the run commits. Retiring means the key leaves Mixpanel:
 * the retire waits for the run in progress and unsets what it told too,
 * so no profile keeps slow and the retired sync keeps no ledger.
 */
START_TEST(retire_during_a_run_leaves_nothing_behind)
{
	static const char *const run[] = { "run", "--computation", "slow",
					   NULL };
	static const char *const retire[] = { "retire", "slow", "--unset",
					      NULL };
	tl_result r;
	char *state;
	pid_t pid;

	add_people(2);
	add_synced("slow", SLOW_SQL);
	run_ok(run);
	assert_prop("u1", "slow", "true", "first run");
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '1 hour')");
	pid = tl_audsync_spawn(db, env_fast, run);
	ck_assert_int_gt(pid, 0);
	wait_for_statement("pg_sleep(4)");
	usleep(500 * 1000);
	r = tl_audsync_argv(db, env_fast, retire);
	ck_assert_msg(r.status == 0, "retire: exit %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "waiting for the run in progress"),
		      "retire did not wait for the run: %s", r.err);
	tl_result_free(&r);
	wait_ok(pid, "the run retire met");
	state = queue_and_runs();
	assert_prop("u1", "slow", NULL, state);
	assert_prop("u2", "slow", NULL, state);
	assert_prop("u3", "slow", NULL, state);
	free(state);
	ck_assert_msg(ledger_rows("slow") == 0,
		      "the retired computation has %lld ledger rows",
		      ledger_rows("slow"));
}
END_TEST

/*
 * The computation is disabled by hand (no retire) while a run that lets
 * u3 in evaluates: the run sends nothing of it, as a disabled sync sends
 * nothing, and its run row says why.
 */
START_TEST(a_sync_disabled_during_its_run_sends_nothing)
{
	static const char *const run[] = { "run", "--computation", "slow",
					   NULL };
	char *why;
	pid_t pid;

	add_people(2);
	add_synced("slow", SLOW_SQL);
	run_ok(run);
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '1 hour')");
	pid = tl_audsync_spawn(db, env_fast, run);
	ck_assert_int_gt(pid, 0);
	wait_for_statement("pg_sleep(4)");
	tl_sql(db, "UPDATE audsync.computations SET enabled = false");
	wait_ok(pid, "the run of the sync disabled meanwhile");
	assert_prop("u1", "slow", "true", "a disabled sync keeps its ledger");
	assert_prop("u3", "slow", NULL,
		    "the computation was disabled before the run decided");
	why = tl_sql_value(db, "SELECT error FROM audsync.runs"
			       " ORDER BY id DESC LIMIT 1");
	ck_assert_msg(tl_contains(why, "disabled while it was evaluated"),
		      "the discarded run's row says %s", why);
	free(why);
}
END_TEST

/* ---- as-of times that cross ------------------------------------------- */

/*
 * Run A reads its as-of, then spends 4 s on "slow". Meanwhile p1 visits
 * and run B evaluates "recent" at a later as-of and tells u1 true. When
 * A reaches "recent", its as-of lies before B's: it skips the sync and
 * says why, rather than telling Mixpanel the older truth (u1 false).
 */
START_TEST(a_run_never_tells_an_older_truth_than_one_committed)
{
	static const char *const all[] = { "run", "--all", NULL };
	static const char *const recent[] = { "run", "--computation", "recent",
					      NULL };
	char log[] = "/tmp/check_races_XXXXXX";
	char *text;
	pid_t pid;
	int fd;

	add_people(1);
	add_synced("slow", SLOW_SQL);
	add_synced("recent", "SELECT DISTINCT profile_id FROM audsync.events"
			     " WHERE ts <= $1");
	fd = mkstemp(log);
	ck_assert_int_ge(fd, 0);
	close(fd);
	pid = tl_audsync_spawn_log(db, env_fast, all, log);
	ck_assert_int_gt(pid, 0);
	wait_for_statement("pg_sleep(4)");
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Visit', '{}', now())");
	run_ok(recent);
	assert_prop("u1", "recent", "true", "run B");
	wait_ok(pid, "run A");
	assert_prop("u1", "recent", "true",
		    "after run A, whose as-of lies before run B's");
	text = tl_read_file(log);
	unlink(log);
	ck_assert_msg(tl_contains(text, "sync skipped") &&
			      tl_contains(text, "later as-of"),
		      "run A did not say why it skipped recent: %s", text);
	free(text);
}
END_TEST

/* ---- resync of a locked sync ------------------------------------------ */

/* An operator's resync that finds the sync evaluated by another process
 * does not pretend it happened: exit 1, and one line saying what to do. */
START_TEST(resync_of_a_locked_sync_fails_and_says_so)
{
	static const char *const run[] = { "run", "--computation", "slow",
					   NULL };
	static const char *const resync[] = { "resync", "--computation", "slow",
					      NULL };
	tl_result r;
	pid_t pid;

	add_people(2);
	add_synced("slow", SLOW_SQL);
	pid = tl_audsync_spawn(db, env_fast, run);
	ck_assert_int_gt(pid, 0);
	wait_for_statement("pg_sleep(4)");
	r = tl_audsync_argv(db, env_fast, resync);
	ck_assert_msg(
		r.status == 1 &&
			tl_contains(r.err, "resync: slow is being evaluated by "
					   "another process; run it again"),
		"a resync that did not happen: exit %d: %s", r.status, r.err);
	tl_result_free(&r);
	wait_ok(pid, "the run the resync met");
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE kind = 'full'"),
			 0);
}
END_TEST

/* ---- TRUNCATE of the source tables ------------------------------------ */

/*
 * A rule over events: p1..p3 ordered and ran in. A reload truncates the
 * events and puts back p1's and p3's orders only; the next run, which
 * would otherwise look only at the profiles the log names, evaluates in
 * full and says so: u2 leaves.
 */
START_TEST(a_truncate_of_events_is_seen_by_a_rule)
{
	static const char *const first[] = { "run",    "--computation",
					     "buyers", "--as-of",
					     T0,       NULL };
	static const char *const next[] = { "run",    "--computation",
					    "buyers", "--as-of",
					    T1,	      NULL };
	tl_result r;

	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, '" T0 "'::timestamptz"
		   " - interval '60 days' FROM generate_series(1, 3) g;"
		   "INSERT INTO audsync.events SELECT 'p' || g, 'Order', '{}',"
		   " '" T0 "'::timestamptz - interval '3 days'"
		   " FROM generate_series(1, 3) g;"
		   "INSERT INTO audsync.computations (key, name, kind,"
		   " definition) VALUES ('buyers', 'Buyers', 'audience',"
		   " '{\"performed\": {\"event\": \"Order\"}}');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d");
	run_ok(first);
	assert_prop("u2", "buyers", "true", "first run");
	tl_sql(db, "BEGIN; TRUNCATE audsync.events;"
		   "INSERT INTO audsync.events SELECT 'p' || g, 'Order', '{}',"
		   " '" T0 "'::timestamptz - interval '3 days'"
		   " FROM unnest(ARRAY[1, 3]) g; COMMIT");
	r = tl_audsync_argv(db, env_fast, next);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	assert_prop("u1", "buyers", "true", "after the reload");
	assert_prop("u2", "buyers", "false", "p2's order went with a TRUNCATE");
	assert_prop("u3", "buyers", "true", "after the reload");
	ck_assert_msg(tl_contains(r.err, "truncated"),
		      "the run did not say it evaluated in full after a "
		      "TRUNCATE: %s",
		      r.err);
	tl_result_free(&r);
}
END_TEST

/*
 * An SQL audience of p1..p3 whatever their identifiers. A reload
 * truncates external_ids and puts back p1's and p3's user_ids only: u2
 * is no target of p2 any more and is told the exit value, as after a
 * DELETE of it.
 */
START_TEST(a_truncate_of_identifiers_is_seen)
{
	static const char *const run[] = { "run", "--computation", "listed",
					   NULL };
	tl_result r;

	add_people(3);
	add_synced("listed", "SELECT p AS profile_id"
			     " FROM unnest(ARRAY['p1', 'p2', 'p3']) p");
	run_ok(run);
	assert_prop("u2", "listed", "true", "first run");
	tl_sql(db, "BEGIN; TRUNCATE audsync.external_ids;"
		   "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, now() - interval '1 hour'"
		   " FROM unnest(ARRAY[1, 3]) g; COMMIT");
	r = tl_audsync_argv(db, env_fast, run);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	assert_prop("u1", "listed", "true", "after the reload");
	assert_prop("u2", "listed", "false",
		    "p2's user_id went with a TRUNCATE");
	assert_prop("u3", "listed", "true", "after the reload");
	ck_assert_msg(tl_contains(r.err, "truncated"),
		      "the run did not say it compared identifiers in full "
		      "after a TRUNCATE: %s",
		      r.err);
	tl_result_free(&r);
}
END_TEST

static Suite *races_suite(void)
{
	Suite *s = suite_create("races");
	TCase *lock = tcase_create("locks");
	TCase *trunc = tcase_create("truncate");

	tcase_add_checked_fixture(lock, setup, teardown);
	tcase_add_test(lock, retire_during_a_run_leaves_nothing_behind);
	tcase_add_test(lock, a_sync_disabled_during_its_run_sends_nothing);
	tcase_add_test(lock,
		       a_run_never_tells_an_older_truth_than_one_committed);
	tcase_add_test(lock, resync_of_a_locked_sync_fails_and_says_so);
	suite_add_tcase(s, lock);
	tcase_add_checked_fixture(trunc, setup, teardown);
	tcase_add_test(trunc, a_truncate_of_events_is_seen_by_a_rule);
	tcase_add_test(trunc, a_truncate_of_identifiers_is_seen);
	suite_add_tcase(s, trunc);
	return s;
}

int main(void)
{
	return tl_run_suite(races_suite());
}
