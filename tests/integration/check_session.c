/* check_session.c - a definition has no power over the engine's session
 * (DESIGN.md section 8): the settings it changes, the advisory locks it
 * frees or takes, stay its own. A bad computation's sync comes first (the
 * lowest sync id, so it is evaluated first); the healthy syncs after it
 * in the same process must run and deliver exactly as without it, and
 * the bad one fails with one line that names it. Real PostgreSQL, the
 * audsync binary, the fake Mixpanel. */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mpctl *fake;
static const char *db;

static const char *const env_fast[] = { "AUDSYNC_RETRY_BASE_MS=10",
					"AUDSYNC_RETRY_JITTER_MS=5",
					"AUDSYNC_MAX_ATTEMPTS=2", NULL };

/* Advisory lock classes of the engine: one evaluator per sync, one
 * deliverer per lane (sync.c, outbox.c); lanes per destination. */
#define SYNC_LOCK_CLASS "1096107091"
#define LANE_LOCK_CLASS "1096107084"
#define LANES		"64"

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

static void sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sqlf(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	ck_assert_msg(n > 0 && (size_t)n < sizeof(sql), "SQL too long");
	tl_sql(db, sql);
}

/* A computation (definition dollar-quoted) and its identify sync. */
static void add_synced(const char *key, const char *kind, const char *sql)
{
	sqlf("INSERT INTO audsync.computations (key, name, kind,"
	     " definition_sql) VALUES ('%s', '%s', '%s', $def$%s$def$)",
	     key, key, kind, sql);
	sqlf("INSERT INTO audsync.syncs (computation_id, destination_id, mode)"
	     " SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.key = '%s' AND d.name = 'mp'",
	     key);
}

/* The bad computation first, then three healthy ones: an audience, a
 * date trait (the day of 02:00 UTC: another day in any zone west of
 * Greenwich) and a text trait outside ASCII. */
static void add_syncs(const char *bad_sql)
{
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', '2026-01-15 02:00:00+00'),"
		   " ('p2', 'user_id', 'u2', '2026-01-15 02:00:00+00')");
	add_synced("bad", "audience", bad_sql);
	add_synced("healthy", "audience",
		   "SELECT profile_id FROM audsync.external_ids");
	add_synced("signup_day", "trait",
		   "SELECT profile_id, created_at::date AS value"
		   " FROM audsync.external_ids");
	add_synced("word", "trait",
		   "SELECT profile_id, 'caf\xc3\xa9' AS value"
		   " FROM audsync.external_ids");
}

static void assert_prop(const char *did, const char *name, const char *want,
			const char *what)
{
	char *v = mpctl_prop(fake, did, name);

	ck_assert_msg(v && strcmp(v, want) == 0,
		      "%s: %s has %s = %s, expected %s", what, did, name,
		      v ? v : "(nothing)", want);
	free(v);
}

/* Every healthy sync ran, and Mixpanel holds what the database says. */
static void assert_healthy(const char *what, const tl_result *r)
{
	static const char *const dids[] = { "u1", "u2" };
	char *failed = tl_sql_value(
		db, "SELECT string_agg(c.key || ': ' || r.error, ' | ')"
		    " FROM audsync.runs r JOIN audsync.syncs s"
		    " ON s.id = r.sync_id JOIN audsync.computations c"
		    " ON c.id = s.computation_id"
		    " WHERE c.key <> 'bad' AND r.status <> 'succeeded'");
	size_t i;

	ck_assert_msg(failed == NULL,
		      "%s: a healthy sync failed: %s\nstderr: %s", what, failed,
		      r->err);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs r"
					" JOIN audsync.syncs s ON s.id ="
					" r.sync_id JOIN audsync.computations"
					" c ON c.id = s.computation_id WHERE"
					" c.key <> 'bad' AND r.status ="
					" 'succeeded'"),
			 3);
	for (i = 0; i < 2; i++) {
		assert_prop(dids[i], "healthy", "true", what);
		assert_prop(dids[i], "signup_day", "\"2026-01-15T00:00:00\"",
			    what);
		assert_prop(dids[i], "word", "\"caf\xc3\xa9\"", what);
	}
	ck_assert_msg(tl_sql_int(db, "SELECT coalesce(sum(n), 0) FROM"
				     " audsync.outbox") == 0,
		      "%s: calls stayed queued\nstderr: %s", what, r->err);
}

/* The bad computation's sync failed, saying so in one line naming it. */
static void assert_bad_failed(const char *what)
{
	char *err = tl_sql_value(
		db, "SELECT r.error FROM audsync.runs r JOIN audsync.syncs s"
		    " ON s.id = r.sync_id JOIN audsync.computations c"
		    " ON c.id = s.computation_id WHERE c.key = 'bad'"
		    " AND r.status = 'failed'");

	ck_assert_msg(err != NULL, "%s: the bad sync's run did not fail", what);
	ck_assert_msg(tl_contains(err, "computation bad") &&
			      tl_contains(err, "session") && !strchr(err, '\n'),
		      "%s: the error does not name the computation and its "
		      "session in one line: %s",
		      what, err);
	free(err);
}

/* ---- settings -------------------------------------------------------- */

/* A role with no rights (roles belong to the cluster: once). */
#define WEAK_ROLE                                                              \
	"DO $$BEGIN CREATE ROLE audsync_weak NOLOGIN; EXCEPTION WHEN"          \
	" duplicate_object THEN NULL; END$$"

typedef struct setting_case {
	const char *what;
	const char *setup; /* SQL run first, or NULL */
	const char *call;  /* what the bad definition calls */
} setting_case;

static const setting_case settings[] = {
	{ "default_transaction_read_only", NULL,
	  "set_config('default_transaction_read_only', 'on', false)" },
	{ "role", WEAK_ROLE, "set_config('role', 'audsync_weak', false)" },
	{ "session_authorization", WEAK_ROLE,
	  "set_config('session_authorization', 'audsync_weak', false)" },
	{ "TimeZone", NULL,
	  "set_config('TimeZone', 'America/New_York', false)" },
	{ "client_encoding", NULL,
	  "set_config('client_encoding', 'LATIN1', false)" },
	{ "DateStyle", NULL, "set_config('DateStyle', 'SQL, DMY', false)" },
	/* pg_temp placed last: the engine's unqualified temporary table
	 * of changes would be a table the definition's author made. */
	{ "search_path",
	  "CREATE SCHEMA audsync_evil; CREATE TABLE audsync_evil.audsync_chg"
	  " (profile_id text, old jsonb, new jsonb, since timestamptz,"
	  " old_targets text, kind text, old_t tid, old_member boolean);"
	  " INSERT INTO audsync_evil.audsync_chg VALUES ('p1', NULL,"
	  " '{\"healthy\": \"injected\"}', NULL, '', 'enter', NULL, NULL)",
	  "set_config('search_path', 'audsync_evil, pg_catalog, pg_temp',"
	  " false)" },
	{ "session_replication_role", NULL,
	  "set_config('session_replication_role', 'replica', false)" },
	/* a setting of PL/pgSQL, which the definition loads: new to the
	 * session, and set by it */
	{ "plpgsql.extra_warnings", NULL,
	  "set_config('plpgsql.extra_warnings', 'all', false) ||"
	  " audsync.rule_timestamptz(profile_id)" },
};
#define N_SETTINGS ((int)(sizeof(settings) / sizeof(settings[0])))

START_TEST(a_definition_that_changes_a_setting_harms_no_other_sync)
{
	const setting_case *c = &settings[_i];
	static const char *const run[] = { "run", NULL };
	char bad[512];
	tl_result r;

	if (c->setup)
		tl_sql(db, c->setup);
	snprintf(bad, sizeof(bad),
		 "SELECT profile_id FROM audsync.external_ids"
		 " WHERE %s IS NOT NULL",
		 c->call);
	add_syncs(bad);
	r = tl_audsync_argv(db, env_fast, run);
	assert_healthy(c->what, &r);
	assert_bad_failed(c->what);
	ck_assert_msg(r.status == 1, "%s: exit %d, expected 1", c->what,
		      r.status);
	tl_result_free(&r);
}
END_TEST

/*
 * A definition that calls PL/pgSQL (a user's function, or a rule's
 * before_date) in a process that has not loaded it yet changes nothing of
 * the session: PL/pgSQL's settings that appear with it are not the
 * definition's doing. Each runs alone, in a fresh process.
 */
START_TEST(a_definition_that_loads_plpgsql_runs)
{
	static const char *const keys[] = { "user_fn", "rule_date" };
	char *v;
	tl_result r;
	size_t i;

	tl_sql(db, "CREATE FUNCTION public.joined_before(t timestamptz)"
		   " RETURNS boolean LANGUAGE plpgsql STABLE AS"
		   " $$BEGIN RETURN t < '2026-02-01'; END$$;"
		   "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', '2026-01-15 02:00:00+00'),"
		   " ('p2', 'user_id', 'u2', '2026-03-15 02:00:00+00');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'T', '{\"d\": \"2026-04-01T00:00:00Z\"}',"
		   "  '2026-04-02'),"
		   " ('p2', 'T', '{\"d\": \"2026-06-01T00:00:00Z\"}',"
		   "  '2026-04-02')");
	add_synced("user_fn", "audience",
		   "SELECT profile_id FROM audsync.external_ids"
		   " WHERE public.joined_before(created_at)");
	sqlf("INSERT INTO audsync.computations (key, name, kind, definition)"
	     " VALUES ('rule_date', 'rule_date', 'audience',"
	     " '{\"performed\": {\"event\": \"T\", \"where\":"
	     " [{\"property\": \"d\", \"op\": \"before_date\","
	     " \"value\": \"2026-05-01T00:00:00Z\"}]}}')");
	sqlf("INSERT INTO audsync.syncs (computation_id, destination_id, mode)"
	     " SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.key = 'rule_date'");
	for (i = 0; i < 2; i++) {
		const char *const run[] = { "run", "--computation", keys[i],
					    NULL };

		r = tl_audsync_argv(db, env_fast, run);
		ck_assert_msg(r.status == 0, "%s: exit %d: %s", keys[i],
			      r.status, r.err);
		tl_result_free(&r);
		assert_prop("u1", keys[i], "true", keys[i]);
		v = mpctl_prop(fake, "u2", keys[i]);
		ck_assert_msg(v == NULL, "%s: u2 has %s", keys[i], v);
	}
}
END_TEST

/* ---- locks ------------------------------------------------------------- */

/* Waits (up to 120 s: the sanitized build on a busy machine is slow to
 * get there) until a statement with text is running in another session. */
static void wait_for_statement(const char *text)
{
	char sql[512];
	int i;

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
		 " AND pid <> pg_backend_pid() AND query LIKE '%%%s%%'",
		 text);
	for (i = 0; i < 1200; i++) {
		if (tl_sql_int(db, sql) > 0)
			return;
		usleep(100 * 1000);
	}
	ck_abort_msg("no session ever ran %s", text);
}

/*
 * pg_advisory_unlock_all() in a definition frees nothing of the engine:
 * while the first process still evaluates the sync, a second one skips
 * it instead of evaluating it at the same time.
 */
START_TEST(a_definition_cannot_free_the_evaluator_lock)
{
	static const char *const run[] = { "run", "--computation", "bad",
					   NULL };
	tl_result r;
	pid_t pid;
	int st;

	add_syncs("SELECT profile_id FROM audsync.external_ids,"
		  " (SELECT pg_advisory_unlock_all(), pg_sleep(4)) x");
	pid = tl_audsync_spawn(db, env_fast, run);
	ck_assert_int_gt(pid, 0);
	wait_for_statement("pg_sleep(4)");
	usleep(300 * 1000); /* past pg_advisory_unlock_all() */
	r = tl_audsync_argv(db, env_fast, run);
	ck_assert_msg(tl_contains(r.err, "another process is evaluating it"),
		      "a second process evaluated the sync while the first "
		      "still did (exit %d): %s",
		      r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
}
END_TEST

/*
 * A definition that takes the engine's advisory locks (every sync's
 * evaluator lock, every lane of the destination) does not keep them:
 * while the process that ran it evaluates a slow sync, another process
 * evaluates the healthy sync and delivers its calls.
 */
START_TEST(a_definition_cannot_keep_engine_locks)
{
	static const char *const all[] = { "run", NULL };
	static const char *const run[] = { "run", "--computation", "healthy",
					   NULL };
	tl_result r;
	char *v;
	pid_t pid;
	int st;

	add_syncs("SELECT profile_id FROM audsync.external_ids,"
		  " (SELECT count(pg_advisory_lock(" SYNC_LOCK_CLASS
		  ", s.id)) FROM audsync.syncs s) a,"
		  " (SELECT count(pg_advisory_lock(" LANE_LOCK_CLASS
		  ", d.id * " LANES " + l)) FROM audsync.destinations d,"
		  " generate_series(0, " LANES " - 1) l) b");
	add_synced("slow", "audience",
		   "SELECT profile_id FROM audsync.external_ids,"
		   " (SELECT pg_sleep(6)) x");
	pid = tl_audsync_spawn(db, env_fast, all);
	ck_assert_int_gt(pid, 0);
	wait_for_statement("pg_sleep(6)");
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '1 hour')");
	r = tl_audsync_argv(db, env_fast, run);
	ck_assert_msg(!tl_contains(r.err, "another process is evaluating it"),
		      "the definition's lock outlived it: %s", r.err);
	v = mpctl_prop(fake, "u3", "healthy");
	ck_assert_msg(v && strcmp(v, "true") == 0,
		      "u3 did not get healthy = true through a lane the "
		      "definition locked (%s): %s",
		      v ? v : "nothing", r.err);
	free(v);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("definitions");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(
		tc, a_definition_that_changes_a_setting_harms_no_other_sync, 0,
		N_SETTINGS);
	tcase_add_test(tc, a_definition_that_loads_plpgsql_runs);
	tcase_add_test(tc, a_definition_cannot_free_the_evaluator_lock);
	tcase_add_test(tc, a_definition_cannot_keep_engine_locks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(session_suite());
}
