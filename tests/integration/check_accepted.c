/* check_accepted.c - delivery end to end: only Mixpanel's own answer
 * accepts or rejects a record; exit statuses; secrets a server echoes */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mpctl *fake;
static const char *db;

#define RETRY_ENV                                                              \
	"AUDSYNC_RETRY_BASE_MS=20", "AUDSYNC_RETRY_JITTER_MS=5",               \
		"AUDSYNC_MAX_ATTEMPTS=3"
#define SECRET "hunter2-Sekr1t"
/* base64("hunter2-Sekr1t:"), the Authorization header's form of it */
#define SECRET_B64 "aHVudGVyMi1TZWtyMXQ6"

static const char *const retry_env[] = { RETRY_ENV, NULL };
static const char *const secret_env[] = { "MIXPANEL_TEST_SECRET=" SECRET,
					  "AUDSYNC_LOG_LEVEL=debug", RETRY_ENV,
					  NULL };

/*
 * Six people u1..u6 in "Everyone" twice: synced by identify to 'mp'
 * (/engage) and by track to 'mp-events' (/import), both on the fake.
 */
static void setup(void)
{
	char sql[512];

	ck_assert_int_eq(mpctl_start(&fake, "--secret " SECRET), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_add_destination(db, "mp-events", mpctl_base_url(fake));
	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || i,"
		   " 'user_id', 'u' || i, now() - interval '60 days'"
		   " FROM generate_series(1, 6) i;"
		   "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Everyone', 'audience',"
		   " 'SELECT profile_id FROM audsync.external_ids');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, CASE d.name WHEN 'mp'"
		   " THEN 'identify' ELSE 'track' END"
		   " FROM audsync.computations c, audsync.destinations d");
	snprintf(sql, sizeof(sql),
		 "UPDATE audsync.destinations SET secret_env ="
		 " 'MIXPANEL_TEST_SECRET' WHERE name = 'mp-events'");
	tl_sql(db, sql);
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

static long long queued(const char *dest)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
		 " JOIN audsync.destinations d ON d.id = o.destination_id"
		 " WHERE d.name = '%s'",
		 dest);
	return tl_sql_int(db, sql);
}

static long long dead_letters(void)
{
	return tl_sql_int(db, "SELECT count(*) FROM audsync.dead_letters");
}

/* Runs audsync CMD (run: run --all) with env and checks its exit status. */
static tl_result expect_exit(int want, const char *const *env, const char *cmd)
{
	tl_result r = strcmp(cmd, "run") == 0
			      ? tl_audsync(db, env, cmd, "--all", NULL)
			      : tl_audsync(db, env, cmd, NULL);

	ck_assert_msg(r.status == want, "audsync %s exited %d, expected %d: %s",
		      cmd, r.status, want, r.err);
	return r;
}

/* ---- answers that are not Mixpanel accepting ---------------------- */

static const struct hostile {
	const char *fault;
	int engage; /* the fault reaches /engage too */
} hostile[] = {
	{ "{\"mode\":\"html-200\",\"rate\":1.0}", 1 },
	{ "{\"mode\":\"empty-200\",\"rate\":1.0}", 1 },
	{ "{\"mode\":\"html-400\",\"rate\":1.0}", 1 },
	{ "{\"mode\":\"count-0\",\"rate\":1.0}", 0 },
	{ "{\"mode\":\"bad-index\",\"rate\":1.0,\"index\":5000}", 0 },
	{ "{\"mode\":\"bad-index\",\"rate\":1.0,\"index\":-1}", 0 },
	{ "{\"mode\":\"bad-index\",\"rate\":1.0,\"index\":\"0\"}", 0 },
	{ "{\"mode\":\"bad-index\",\"rate\":1.0,\"index\":6}", 0 },
};

/*
 * A proxy's page, an empty body, a count of 0 or a failed record that
 * names no record of the batch: nothing is accepted and nothing is
 * rejected. The calls stay queued (none is deleted, none dead-lettered),
 * the run exits 1; when Mixpanel answers again, everything arrives.
 */
START_TEST(an_answer_that_is_not_mixpanels_keeps_the_calls_queued)
{
	const struct hostile *h = &hostile[_i];
	tl_result r;

	ck_assert_int_eq(mpctl_fault(fake, h->fault), 0);
	r = expect_exit(1, secret_env, "run");
	tl_result_free(&r);
	ck_assert_msg(queued("mp-events") == 6,
		      "%s: %lld events queued, 6 expected", h->fault,
		      queued("mp-events"));
	ck_assert_int_eq(queued("mp"), h->engage ? 6 : 0);
	ck_assert_msg(dead_letters() == 0, "%s: %lld dead letters", h->fault,
		      dead_letters());
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 0);

	ck_assert_int_eq(mpctl_reset(fake), 0);
	r = expect_exit(0, secret_env, "deliver");
	tl_result_free(&r);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 6);
	ck_assert_int_eq(queued("mp-events") + queued("mp"), 0);
	ck_assert_int_eq(dead_letters(), 0);
}
END_TEST

/* ---- secrets a server echoes back --------------------------------- */

/*
 * A server that quotes the Authorization header and the secret in its
 * reason: neither the secret nor its base64 form reaches the debug log
 * of answers or dead_letters.reason.
 */
START_TEST(a_secret_the_server_echoes_is_never_kept_or_logged)
{
	tl_result r;
	char *reasons;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"echo-secret\","
					   "\"count\":1}"),
			 0);
	r = expect_exit(1, secret_env, "run");
	ck_assert_msg(tl_contains(r.err, "mixpanel answer"),
		      "no debug answer log: %s", r.err);
	ck_assert_msg(!tl_contains(r.err, SECRET) &&
			      !tl_contains(r.err, SECRET_B64),
		      "the log shows the secret: %s", r.err);
	tl_result_free(&r);
	ck_assert_int_eq(dead_letters(), 1);
	reasons = tl_sql_value(db, "SELECT string_agg(reason, ' ')"
				   " FROM audsync.dead_letters");
	ck_assert_ptr_nonnull(reasons);
	ck_assert_msg(tl_contains(reasons, "secret"), "reason: %s", reasons);
	ck_assert_msg(!strstr(reasons, SECRET) && !strstr(reasons, SECRET_B64),
		      "dead_letters.reason keeps the secret: %s", reasons);
	free(reasons);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 5);
}
END_TEST

/* ---- exit statuses ------------------------------------------------ */

/* A run while Mixpanel is down: all twelve calls stay queued; then
 * Mixpanel is back. */
static void queue_everything(void)
{
	tl_result r;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"rate\":1.0}"),
			 0);
	r = expect_exit(1, secret_env, "run");
	tl_result_free(&r);
	ck_assert_int_eq(queued("mp-events") + queued("mp"), 12);
	ck_assert_int_eq(mpctl_reset(fake), 0);
}

/* Calls queued for a destination whose secret is gone (cron without the
 * environment file): deliver says so and exits 1, and delivers once the
 * secret is back. */
START_TEST(deliver_exits_1_while_a_misconfigured_destination_holds_calls)
{
	tl_result r;

	queue_everything();
	r = expect_exit(1, retry_env, "deliver");
	ck_assert_msg(tl_contains(r.err, "MIXPANEL_TEST_SECRET"),
		      "deliver does not name the variable: %s", r.err);
	ck_assert_msg(tl_contains(r.err, "queued=6"),
		      "deliver does not say how many calls it holds: %s",
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(queued("mp-events"), 6);
	ck_assert_int_eq(queued("mp"), 0);
	r = expect_exit(0, secret_env, "deliver");
	tl_result_free(&r);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 6);
}
END_TEST

/* A database error during delivery is exit 3, as DESIGN §9 says. */
START_TEST(deliver_exits_3_on_a_database_error)
{
	tl_result r;

	queue_everything();
	tl_sql(db, "SET client_min_messages = warning;"
		   "DROP ROLE IF EXISTS accepted_reader;"
		   "CREATE ROLE accepted_reader LOGIN;"
		   "GRANT USAGE ON SCHEMA audsync TO accepted_reader;"
		   "GRANT SELECT ON ALL TABLES IN SCHEMA audsync"
		   " TO accepted_reader");
	{
		char conninfo[512];

		snprintf(conninfo, sizeof(conninfo), "%s user=accepted_reader",
			 db);
		r = tl_audsync(conninfo, secret_env, "deliver", NULL);
	}
	ck_assert_msg(r.status == 3, "deliver exited %d, expected 3: %s",
		      r.status, r.err);
	tl_result_free(&r);
	tl_sql(db, "DROP OWNED BY accepted_reader; DROP ROLE accepted_reader");
	ck_assert_int_eq(queued("mp-events") + queued("mp"), 12);
}
END_TEST

/* ---- no transaction across network waits ------------------------- */

/* Transactions open on the test database in other client sessions. */
static long long open_transactions(void)
{
	return tl_sql_int(db, "SELECT count(*) FROM pg_stat_activity"
			      " WHERE datname = current_database()"
			      " AND backend_type = 'client backend'"
			      " AND pid <> pg_backend_pid()"
			      " AND xact_start IS NOT NULL");
}

/*
 * While Mixpanel takes its time to answer, delivery holds no transaction
 * open: claim, commit, send, then settle. (A transaction held through
 * HTTP, retries and rate-limit sleeps keeps locks and blocks vacuum.)
 */
static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000L +
	       (now.tv_nsec - since->tv_nsec) / 1000000L;
}

START_TEST(no_transaction_is_open_while_mixpanel_answers)
{
	const char *const args[] = { "deliver", NULL };
	long long open_tx = 0;
	struct timespec parked;
	pid_t pid;
	int i, st, samples = 0;

	queue_everything();
	/* The first request waits 8 s for its answer: so does its round. */
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"slow\",\"count\":1,"
					   "\"slow_ms\":8000}"),
			 0);
	pid = tl_audsync_spawn(db, secret_env, args);
	for (i = 0; i < 400 && mpctl_counter(fake, "faults_injected") < 1; i++)
		usleep(50 * 1000);
	ck_assert_int_ge(mpctl_counter(fake, "faults_injected"), 1);
	clock_gettime(CLOCK_MONOTONIC, &parked);
	/* sampled well within the wait, however slow the machine */
	while (samples < 10 && elapsed_ms(&parked) < 5000) {
		open_tx += open_transactions();
		samples++;
		usleep(100 * 1000);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_ge(samples, 1);
	ck_assert_msg(open_tx == 0,
		      "a transaction stayed open while Mixpanel answered"
		      " (%lld of %d samples)",
		      open_tx, samples);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "deliver ended with status %d", st);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 6);
	ck_assert_int_eq(queued("mp-events") + queued("mp"), 0);
}
END_TEST

static Suite *accepted_suite(void)
{
	Suite *s = suite_create("accepted");
	TCase *tc = tcase_create("end to end");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(
		tc, an_answer_that_is_not_mixpanels_keeps_the_calls_queued, 0,
		(int)(sizeof(hostile) / sizeof(hostile[0])));
	tcase_add_test(tc, a_secret_the_server_echoes_is_never_kept_or_logged);
	tcase_add_test(
		tc,
		deliver_exits_1_while_a_misconfigured_destination_holds_calls);
	tcase_add_test(tc, deliver_exits_3_on_a_database_error);
	tcase_add_test(tc, no_transaction_is_open_while_mixpanel_answers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(accepted_suite());
}
