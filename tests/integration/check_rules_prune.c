/* check_rules_prune.c - the change log's prune never takes a change a
 * rule sync's first run still needs (README "Rules: hourly runs").
 *
 * A rule sync's first run takes its snapshot before it evaluates and saves
 * it when it commits. Between the two, another sync's run prunes the
 * change log; a change committed in that window, by a transaction the
 * snapshot could not see and the evaluation did not see either, must
 * still reach the rule's next run. The interleaving is staged by hand:
 * a write held open across the first run's evaluation, and a row lock
 * that holds the first run just before it saves its state, while the
 * write commits and the other sync runs. Real PostgreSQL, the audsync
 * binary, the fake Mixpanel. */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 "2026-06-10 00:00:00+00"
#define T1 "2026-06-10 00:01:00+00"
#define T2 "2026-06-10 00:02:00+00"

static const char *const env_debug[] = { "AUDSYNC_LOG_LEVEL=debug", NULL };

/* A session of the test's own, for what it holds open. */
static PGconn *session(const char *db)
{
	PGconn *c = PQconnectdb(db);

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s",
		      PQerrorMessage(c));
	return c;
}

static void exec_on(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s",
		      sql, PQerrorMessage(c));
	PQclear(r);
}

static void run_ok(const char *db, const char *key, const char *as_of,
		   int want_incremental)
{
	tl_result r = tl_audsync(db, env_debug, "run", "--computation", key,
				 "--as-of", as_of, NULL);

	ck_assert_msg(r.status == 0, "run of %s at %s failed: %s", key, as_of,
		      r.err);
	if (want_incremental)
		ck_assert_msg(tl_contains(r.err, "incremental evaluation"),
			      "the run of %s at %s was not incremental: %s",
			      key, as_of, r.err);
	tl_result_free(&r);
}

/* Waits (up to 60 s) until a session waits for a lock on its way to
 * saving a sync's state, or pid exits (a failure). */
static void wait_blocked(const char *db, pid_t pid)
{
	int i, st;

	for (i = 0; i < 1200; i++) {
		if (tl_sql_int(db,
			       "SELECT count(*) FROM pg_stat_activity"
			       " WHERE wait_event_type = 'Lock' AND query"
			       " LIKE 'INSERT INTO audsync.sync_state%'") > 0)
			return;
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0,
			      "the first rule run ended before it saved its "
			      "state under the held lock");
		usleep(50 * 1000);
	}
	ck_abort_msg("the first rule run never reached its state after 60 s");
}

/*
 * p1 bought long ago, p2 never did. "buyers" ran once as SQL and becomes
 * a rule: its next run is the rule's first, in full. A write adding p2's
 * purchase (a late load, dated a day back) is open while that run takes
 * its snapshot and evaluates, and commits while the run waits to save
 * its state; "everyone", another sync, runs meanwhile and prunes the log.
 * The rule's next run is incremental and must let p2 in.
 */
START_TEST(a_prune_during_a_first_rule_run_loses_nothing)
{
	const char *db;
	PGconn *write, *hold;
	mpctl *fake;
	pid_t pid;
	char *v;
	int st;
	const char *const first[] = { "run",	"--computation",
				      "buyers", "--as-of",
				      T1,	NULL };

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_add_destination(db, "mp2", mpctl_base_url(fake));
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', '" T0 "'::timestamptz - interval"
		   " '60 days'), ('p2', 'user_id', 'u2', '" T0 "'::timestamptz"
		   " - interval '60 days');"
		   "INSERT INTO audsync.events VALUES ('p1', 'Purchase', '{}',"
		   " '" T0 "'::timestamptz - interval '3 days');"
		   "INSERT INTO audsync.computations (key, name, kind,"
		   " definition_sql, lookback) VALUES ('buyers', 'Buyers',"
		   " 'audience', 'SELECT profile_id FROM audsync.events"
		   " WHERE event = ''Purchase'' AND ts > $2', '30 days'),"
		   " ('everyone', 'Everyone', 'audience',"
		   " 'SELECT profile_id FROM audsync.external_ids', NULL);"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE (c.key, d.name) IN (('buyers', 'mp'),"
		   " ('everyone', 'mp2'))");
	run_ok(db, "buyers", T0, 0);
	tl_sql(db, "UPDATE audsync.computations SET definition_sql = NULL,"
		   " definition = '{\"performed\": {\"event\": \"Purchase\"}}'"
		   " WHERE key = 'buyers'");

	write = session(db);
	exec_on(write, "BEGIN");
	exec_on(write, "INSERT INTO audsync.events VALUES ('p2', 'Purchase',"
		       " '{}', '" T0 "'::timestamptz - interval '1 day')");
	hold = session(db);
	exec_on(hold, "BEGIN");
	exec_on(hold, "SELECT 1 FROM audsync.sync_state s JOIN audsync.syncs y"
		      " ON y.id = s.sync_id JOIN audsync.computations c"
		      " ON c.id = y.computation_id WHERE c.key = 'buyers'"
		      " FOR UPDATE OF s");
	pid = tl_audsync_spawn(db, env_debug, first);
	ck_assert_int_gt(pid, 0);
	wait_blocked(db, pid);
	exec_on(write, "COMMIT");
	run_ok(db, "everyone", T1, 0);
	exec_on(hold, "ROLLBACK");
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the first rule run failed (status %d)", st);
	PQfinish(write);
	PQfinish(hold);

	run_ok(db, "buyers", T2, 1);
	v = mpctl_prop(fake, "u2", "buyers");
	ck_assert_msg(v && strcmp(v, "true") == 0,
		      "p2 bought a day before, committed during the rule's "
		      "first run, yet after the next run Mixpanel has "
		      "buyers = %s for u2",
		      v ? v : "(absent)");
	free(v);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.snapshot_members m"
					" JOIN audsync.syncs y ON y.id ="
					" m.sync_id JOIN audsync.computations"
					" c ON c.id = y.computation_id WHERE"
					" c.key = 'buyers' AND m.member"),
			 2);
	mpctl_stop(fake);
}
END_TEST

/* n profiles with a user_id and a purchase three days before T0. */
static void bulk_load(const char *db, int n)
{
	tl_sqlf(db,
		"INSERT INTO audsync.external_ids SELECT 'p' || g, 'user_id',"
		" 'u' || g, '" T0 "'::timestamptz - interval '60 days'"
		" FROM generate_series(1, %d) g;"
		"INSERT INTO audsync.events SELECT 'p' || g, 'Purchase', '{}',"
		" '" T0 "'::timestamptz - interval '3 days'"
		" FROM generate_series(1, %d) g",
		n, n);
}

/* A purchase a day before T0 by p200, whom bulk_load did not load. */
#define P200_BUYS                                                              \
	"INSERT INTO audsync.events VALUES ('p200', 'Purchase', '{}',"         \
	" '" T0 "'::timestamptz - interval '1 day')"

/* A started fake and a database of n loaded profiles: a computation of
 * everyone and its sync, plus a rule "buyers" with a 30-day lookback,
 * each to its own destination of the fake. */
static const char *prune_db(mpctl **fakep, int n)
{
	const char *db;
	mpctl *fake;

	ck_assert_int_eq(mpctl_start(fakep, NULL), 0);
	fake = *fakep;
	db = tl_new_db();

	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_add_destination(db, "mp2", mpctl_base_url(fake));
	tl_sql(db, "INSERT INTO audsync.computations (key, name, kind,"
		   " definition, definition_sql, lookback) VALUES ('buyers',"
		   " 'Buyers', 'audience', '{\"performed\": {\"event\":"
		   " \"Purchase\"}}', NULL, '30 days'), ('everyone',"
		   " 'Everyone', 'audience', NULL,"
		   " 'SELECT profile_id FROM audsync.external_ids', NULL);"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE (c.key, d.name) IN (('buyers', 'mp'),"
		   " ('everyone', 'mp2'))");
	bulk_load(db, n);
	return db;
}

/*
 * After a bulk load no sync needs the change log: the first run's prune
 * empties it and gives its space back at once, instead of leaving
 * megabytes of dead rows for autovacuum (and, at a million profiles,
 * seconds of deleting inside the run).
 */
START_TEST(a_prune_nobody_waits_on_gives_the_space_back)
{
	const char *db;
	mpctl *fake;

	db = prune_db(&fake, 20000);
	ck_assert_int_gt(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.change_log"),
			 0);
	run_ok(db, "everyone", T1, 0);
	ck_assert_int_eq(
		tl_sql_int(db, "SELECT count(*) FROM audsync.change_log"), 0);
	ck_assert_msg(tl_sql_int(db, "SELECT pg_relation_size("
				     "'audsync.change_log')") == 0,
		      "the prune left %lld bytes of dead rows in the change "
		      "log",
		      tl_sql_int(db, "SELECT pg_relation_size("
				     "'audsync.change_log')"));
	mpctl_stop(fake);
}
END_TEST

/*
 * A load still open while another sync prunes: the run neither waits for
 * it nor takes its changes; what committed before goes.
 */
START_TEST(a_prune_keeps_an_open_write_and_does_not_wait_for_it)
{
	const char *db;
	PGconn *write;
	mpctl *fake;

	db = prune_db(&fake, 100);
	write = session(db);
	exec_on(write, "BEGIN");
	exec_on(write, P200_BUYS);
	run_ok(db, "everyone", T1, 0);
	exec_on(write, "COMMIT");
	PQfinish(write);
	ck_assert_int_eq(tl_sql_int(db,
				    "SELECT count(*) FROM audsync.change_log"
				    " WHERE profile_id = 'p200'"),
			 1);
	ck_assert_int_eq(tl_sql_int(db,
				    "SELECT count(*) FROM audsync.change_log"
				    " WHERE profile_id <> 'p200'"),
			 0);
	mpctl_stop(fake);
}
END_TEST

/*
 * Changes a rule sync has not evaluated yet outlive another sync's prune,
 * and reach the rule's next, incremental, run.
 */
START_TEST(a_prune_keeps_what_a_rule_sync_has_not_seen)
{
	const char *db;
	mpctl *fake;
	char *v;

	db = prune_db(&fake, 100);
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES ('p200', 'user_id',"
		   " 'u200', '" T0 "'::timestamptz - interval '60 days')");
	run_ok(db, "buyers", T0, 0);
	tl_sql(db, P200_BUYS);
	run_ok(db, "everyone", T1, 0);
	run_ok(db, "buyers", T2, 1);
	v = mpctl_prop(fake, "u200", "buyers");
	ck_assert_msg(v && strcmp(v, "true") == 0,
		      "p200 bought after the rule's first run, yet after "
		      "another sync's prune and the rule's next run Mixpanel "
		      "has buyers = %s for u200",
		      v ? v : "(absent)");
	free(v);
	mpctl_stop(fake);
}
END_TEST

static Suite *prune_suite(void)
{
	Suite *s = suite_create("rules_prune");
	TCase *tc = tcase_create("change log prune");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_prune_during_a_first_rule_run_loses_nothing);
	tcase_add_test(tc, a_prune_nobody_waits_on_gives_the_space_back);
	tcase_add_test(tc,
		       a_prune_keeps_an_open_write_and_does_not_wait_for_it);
	tcase_add_test(tc, a_prune_keeps_what_a_rule_sync_has_not_seen);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(prune_suite());
}
