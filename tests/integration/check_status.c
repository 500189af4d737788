/* check_status.c - audsync status (text, --json, --check, --dead-letters)
 * and the metrics file, as an operator and a monitoring system see them */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fast retries, so that a failing delivery takes milliseconds. */
static const char *const fast[] = { "AUDSYNC_MAX_ATTEMPTS=2",
				    "AUDSYNC_RETRY_BASE_MS=1",
				    "AUDSYNC_RETRY_MAX_MS=1",
				    "AUDSYNC_RETRY_JITTER_MS=1", NULL };

static mpctl *fake;
static const char *db;

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_add_everyone_sync(db);
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

static int run_all(const char *const *env)
{
	tl_result r = tl_audsync(db, env, "run", "--all", NULL);
	int st = r.status;

	tl_result_free(&r);
	return st;
}

static json_object *status_json(void)
{
	tl_result r = tl_audsync(db, NULL, "status", "--json", NULL);
	json_object *o;

	ck_assert_msg(r.status == 0, "status --json exited %d: %s", r.status,
		      r.err);
	o = json_tokener_parse(r.out);
	ck_assert_msg(o && json_object_is_type(o, json_type_object),
		      "not a JSON object: %s", r.out);
	tl_result_free(&r);
	return o;
}

/* The first element of array key of o (borrowed). */
static json_object *first_of(json_object *o, const char *key)
{
	json_object *a;

	ck_assert(json_object_object_get_ex(o, key, &a));
	ck_assert(json_object_is_type(a, json_type_array));
	ck_assert_int_ge(json_object_array_length(a), 1);
	return json_object_array_get_idx(a, 0);
}

static json_type type_of(json_object *o, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s in %s", key,
		      json_object_to_json_string(o));
	return json_object_get_type(v);
}

START_TEST(status_shows_the_last_success_its_duration_and_the_next_due)
{
	json_object *o, *s, *d, *v;
	tl_result r;

	ck_assert_int_eq(run_all(NULL), 0);
	o = status_json();
	ck_assert(json_object_object_get_ex(o, "schema_version", &v));
	ck_assert_int_eq(json_object_get_int(v), 1);
	s = first_of(o, "syncs");
	ck_assert_int_eq(type_of(s, "last_success"), json_type_string);
	ck_assert_int_eq(type_of(s, "next_due"), json_type_string);
	ck_assert(type_of(s, "duration_s") == json_type_double ||
		  type_of(s, "duration_s") == json_type_int);
	ck_assert_int_eq(type_of(s, "members"), json_type_int);
	/* Due again at the next minute after its as-of. */
	ck_assert_int_eq(
		tl_sql_int(db,
			   "SELECT count(*) FROM audsync.runs"
			   " WHERE date_trunc('minute', as_of)"
			   " + interval '1 minute' >= now() - interval '1s'"),
		1);
	d = first_of(o, "destinations");
	ck_assert_int_eq(type_of(d, "queued"), json_type_int);
	ck_assert_int_eq(type_of(d, "delivery_failures"), json_type_int);
	ck_assert_int_eq(type_of(d, "stopped"), json_type_boolean);
	json_object_put(o);

	r = tl_audsync(db, NULL, "status", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.out, "LAST SUCCESS") &&
			      tl_contains(r.out, "NEXT DUE") &&
			      tl_contains(r.out, "DURATION"),
		      "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* status --check's exit status, and that its line says level. */
static void assert_check(const char *const *env, int want, const char *level)
{
	tl_result r = tl_audsync(db, env, "status", "--check", NULL);

	ck_assert_msg(r.status == want, "status --check exited %d, not %d: %s",
		      r.status, want, r.out);
	ck_assert_msg(strncmp(r.out, "AUDSYNC ", 8) == 0 &&
			      tl_contains(r.out, level),
		      "%s", r.out);
	tl_result_free(&r);
}

START_TEST(status_check_exits_0_1_2_the_nagios_way)
{
	const char *const old[] = { "AUDSYNC_CHECK_WARN_AGE=60",
				    "AUDSYNC_CHECK_CRIT_AGE=7200", NULL };

	ck_assert_int_eq(run_all(NULL), 0);
	assert_check(NULL, 0, "OK");

	/* A record Mixpanel refused: a warning. */
	tl_sql(db, "INSERT INTO audsync.dead_letters (destination_id,"
		   " sync_id, lane, endpoint, record, reason)"
		   " SELECT destination_id, id, 0, 0, '{}', 'bad value'"
		   " FROM audsync.syncs");
	assert_check(NULL, 1, "WARNING");
	tl_sql(db, "DELETE FROM audsync.dead_letters");

	/* A queue older than the threshold: a warning, then critical. */
	tl_sql(db, "INSERT INTO audsync.outbox (destination_id, sync_id,"
		   " lane, endpoint, n, records, created_at)"
		   " SELECT destination_id, id, 0, 0, 1, '{}',"
		   " now() - interval '30 minutes' FROM audsync.syncs");
	assert_check(old, 1, "WARNING");
	assert_check(NULL, 1, "WARNING");
	tl_sql(db, "UPDATE audsync.outbox"
		   " SET created_at = now() - interval '2 hours'");
	assert_check(NULL, 2, "CRITICAL");
	tl_sql(db, "DELETE FROM audsync.outbox");

	/* A sync whose definition broke: critical. */
	tl_sql(db, "UPDATE audsync.computations"
		   " SET definition_sql = 'SELEC 1'");
	ck_assert_int_eq(run_all(NULL), 1);
	assert_check(NULL, 2, "CRITICAL");
}
END_TEST

START_TEST(status_check_is_critical_for_a_stopped_destination)
{
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"401\",\"count\":50}"),
			 0);
	ck_assert_int_eq(run_all(fast), 1);
	assert_check(NULL, 2, "destination mp stopped");
	/* Fixed: the next delivery goes through, and all is well. */
	ck_assert_int_eq(mpctl_reset(fake), 0);
	ck_assert_int_eq(run_all(fast), 0);
	assert_check(NULL, 0, "OK");
}
END_TEST

/* A monitoring agent runs status without the secret the service's
 * runs use: the syncs' state is in the database, and status does not
 * call Mixpanel. A run without it does fail, and then status says so. */
START_TEST(status_does_not_need_the_secret_of_the_runs)
{
	const char *const with[] = { "MIXPANEL_STATUS_SECRET=s3cret", NULL };
	tl_result r;

	tl_sql(db, "UPDATE audsync.destinations"
		   " SET secret_env = 'MIXPANEL_STATUS_SECRET'");
	ck_assert_int_eq(run_all(with), 0);
	assert_check(NULL, 0, "OK");
	r = tl_audsync(db, NULL, "status", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(!tl_contains(r.out, "error:"), "%s", r.out);
	tl_result_free(&r);
	ck_assert_int_eq(run_all(NULL), 1);
	assert_check(NULL, 2, "MIXPANEL_STATUS_SECRET");
}
END_TEST

/* A deliver from a shell without the secret, with nothing queued, held
 * nothing: no destination is stopped by it. One with calls queued is. */
START_TEST(a_deliver_without_the_secret_stops_only_what_holds_calls)
{
	const char *const with[] = { "MIXPANEL_STATUS_SECRET=s3cret", NULL };
	tl_result r;

	tl_sql(db, "UPDATE audsync.destinations"
		   " SET secret_env = 'MIXPANEL_STATUS_SECRET'");
	ck_assert_int_eq(run_all(with), 0);
	r = tl_audsync(db, NULL, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	assert_check(NULL, 0, "OK");

	tl_sql(db, "INSERT INTO audsync.outbox (destination_id, sync_id,"
		   " lane, endpoint, n, records)"
		   " SELECT destination_id, id, 0, 0, 1, '{}'"
		   " FROM audsync.syncs");
	r = tl_audsync(db, NULL, "deliver", NULL);
	ck_assert_msg(r.status == 1, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	assert_check(NULL, 2, "destination mp stopped");
}
END_TEST

START_TEST(status_check_on_an_unreachable_database_is_unknown)
{
	tl_result r = tl_audsync("host=/nonexistent dbname=x", NULL, "status",
				 "--check", NULL);

	ck_assert_int_eq(r.status, 3);
	ck_assert_msg(tl_contains(r.out, "AUDSYNC UNKNOWN"), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

START_TEST(dead_letters_are_listed_per_destination)
{
	tl_result r;

	tl_sql(db, "INSERT INTO audsync.destinations (name, project_token)"
		   " VALUES ('other', 'tok');"
		   "INSERT INTO audsync.dead_letters (destination_id, sync_id,"
		   " lane, endpoint, record, reason) SELECT d.id, NULL, 0, 0,"
		   " '{\"n\":' || d.id || '}', 'refused by ' || d.name"
		   " FROM audsync.destinations d");
	r = tl_audsync(db, NULL, "status", "--dead-letters", "--destination",
		       "mp", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.out, "refused by mp") &&
			      !tl_contains(r.out, "refused by other"),
		      "%s", r.out);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "status", "--dead-letters", "--json", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.out, "\"reason\":\"refused by other\"") &&
			      tl_contains(r.out, "\"record\":{\"n\":"),
		      "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* A metrics file that cannot be written costs the run nothing, and the
 * warning says why, as the operator must fix it. */
START_TEST(a_metrics_file_that_cannot_be_written_says_why)
{
	tl_result r =
		tl_audsync(db, NULL, "--metrics-file",
			   "/nonexistent/audsync/m.prom", "run", "--all", NULL);

	ck_assert_msg(r.status == 0, "run exited %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "metrics not written") &&
			      tl_contains(r.err, "/nonexistent/audsync/m.prom"
						 ".tmp: No such file or "
						 "directory"),
		      "%s", r.err);
	tl_result_free(&r);
}
END_TEST

/* The metrics file that command cmd arg (run --all, retire KEY) with env
 * wrote, as text (caller frees). */
static char *metrics_of(const char *const *env, int want, const char *cmd,
			const char *arg)
{
	const char *dir = getenv("AUDSYNC_TEST_TMPDIR");
	const char *sample = getenv("AUDSYNC_METRICS_SAMPLE");
	char path[512], *text = calloc(1, 1 << 16);
	tl_result r;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/metrics-%d.prom", dir ? dir : "/tmp",
		 (int)getpid());
	r = tl_audsync(db, env, "--metrics-file", path, cmd, arg, NULL);
	ck_assert_msg(r.status == want, "%s exited %d: %s", cmd, r.status,
		      r.err);
	tl_result_free(&r);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s not written", path);
	n = fread(text, 1, (1 << 16) - 1, f);
	text[n] = '\0';
	fclose(f);
	/* CI parses a real file with a Prometheus parser. */
	if (sample && *sample && rename(path, sample) == 0)
		return text;
	unlink(path);
	return text;
}

static char *metrics_of_run(const char *const *env, int want)
{
	return metrics_of(env, want, "run", "--all");
}

/* Every sample's metric has one HELP and one TYPE line before it. */
static void assert_described(const char *text)
{
	const char *line;

	for (line = text; *line; line = strchr(line, '\n') + 1) {
		char name[128], help[160], type[160];

		if (*line != '#') {
			ck_assert(sscanf(line, "%127[a-z_]", name) == 1);
			snprintf(help, sizeof(help), "# HELP %s ", name);
			snprintf(type, sizeof(type), "# TYPE %s ", name);
			ck_assert_msg(tl_contains(text, help) &&
					      tl_contains(text, type),
				      "%s has no HELP or TYPE:\n%s", name,
				      text);
		}
		if (!strchr(line, '\n'))
			break;
	}
}

START_TEST(metrics_describe_each_sync_and_destination)
{
	char *t = metrics_of_run(NULL, 0);

	assert_described(t);
	ck_assert_msg(tl_contains(t, "audsync_build_info{version=\"") &&
			      tl_contains(t, "# TYPE audsync_delivery_failures"
					     "_total counter\n") &&
			      tl_contains(t, "audsync_last_run_success{"
					     "computation=\"everyone\","
					     "destination=\"mp\"} 1\n") &&
			      tl_contains(t, "audsync_last_run_members{"
					     "computation=\"everyone\","
					     "destination=\"mp\"} 2\n") &&
			      tl_contains(t,
					  "audsync_last_success_timestamp_"
					  "seconds{computation=\"everyone\"") &&
			      tl_contains(t, "audsync_last_run_duration_"
					     "seconds{") &&
			      tl_contains(t, "audsync_queued_records{"
					     "destination=\"mp\"} 0\n") &&
			      tl_contains(t, "audsync_dead_letters{"
					     "destination=\"mp\"} 0\n"),
		      "%s", t);
	free(t);
}
END_TEST

/* A retired computation is never synced again: the documented alert
 * on time() - audsync_last_success_timestamp_seconds must not fire for
 * it forever, so its syncs have no per-sync series. */
START_TEST(a_retired_computation_leaves_the_per_sync_metrics)
{
	char *t = metrics_of_run(NULL, 0);

	ck_assert_msg(tl_contains(t, "computation=\"everyone\""), "%s", t);
	free(t);
	t = metrics_of(NULL, 0, "retire", "everyone");
	assert_described(t);
	ck_assert_msg(!tl_contains(t, "computation=\"everyone\"") &&
			      tl_contains(t, "audsync_queued_records{"
					     "destination=\"mp\"} 0\n"),
		      "%s", t);
	free(t);
}
END_TEST

START_TEST(a_failed_delivery_makes_success_0_and_counts_a_failure)
{
	char *t;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"count\":50}"),
			 0);
	t = metrics_of_run(fast, 1);
	ck_assert_msg(tl_contains(t, "audsync_last_run_success{"
				     "computation=\"everyone\","
				     "destination=\"mp\"} 0\n") &&
			      tl_contains(t, "audsync_delivery_failures_total{"
					     "destination=\"mp\"} 1\n") &&
			      tl_contains(t, "audsync_queued_records{"
					     "destination=\"mp\"} 2\n"),
		      "%s", t);
	free(t);
}
END_TEST

static Suite *status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("status");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(
		tc,
		status_shows_the_last_success_its_duration_and_the_next_due);
	tcase_add_test(tc, status_check_exits_0_1_2_the_nagios_way);
	tcase_add_test(tc, status_check_is_critical_for_a_stopped_destination);
	tcase_add_test(tc, status_does_not_need_the_secret_of_the_runs);
	tcase_add_test(
		tc, a_deliver_without_the_secret_stops_only_what_holds_calls);
	tcase_add_test(tc, a_metrics_file_that_cannot_be_written_says_why);
	tcase_add_test(tc, status_check_on_an_unreachable_database_is_unknown);
	tcase_add_test(tc, dead_letters_are_listed_per_destination);
	tcase_add_test(tc, metrics_describe_each_sync_and_destination);
	tcase_add_test(tc, a_retired_computation_leaves_the_per_sync_metrics);
	tcase_add_test(tc,
		       a_failed_delivery_makes_success_0_and_counts_a_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(status_suite());
}
