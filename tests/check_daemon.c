/* check_daemon.c - audsync daemon: schedules, wakes on new events, stops
 * cleanly on SIGTERM */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mpctl *fake;
static const char *db;

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_sql(db,
	       "INSERT INTO audsync.external_ids VALUES"
	       " ('p1', 'user_id', 'u1', now() - interval '3 days'),"
	       " ('p2', 'user_id', 'u2', now() - interval '3 days');"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Signed Up', '{}', now() - interval '2 days');"
	       "INSERT INTO audsync.computations (name, kind, definition_sql)"
	       " VALUES ('Signed Up', 'audience', 'SELECT profile_id FROM"
	       " audsync.events WHERE event = ''Signed Up'' AND ts < $1');"
	       "INSERT INTO audsync.syncs (computation_id, destination_id,"
	       " mode) SELECT c.id, d.id, 'identify'"
	       " FROM audsync.computations c, audsync.destinations d");
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* 1 when the fake's profile distinct_id has the signed_up property
 * within seconds. */
static int wait_for_member(const char *distinct_id, int seconds)
{
	time_t end = time(NULL) + seconds;

	while (time(NULL) < end) {
		json_object *st, *profiles, *p, *v;
		int found = 0;

		ck_assert_int_eq(mpctl_state(&st, fake), 0);
		found = json_object_object_get_ex(st, "profiles", &profiles) &&
			json_object_object_get_ex(profiles, distinct_id, &p) &&
			json_object_object_get_ex(p, "signed_up", &v) &&
			json_object_get_boolean(v);
		json_object_put(st);
		if (found)
			return 1;
		usleep(100 * 1000);
	}
	return 0;
}

START_TEST(the_daemon_syncs_wakes_on_new_events_and_stops_on_sigterm)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid = tl_audsync_spawn(db, NULL, args);
	int st;

	ck_assert_msg(wait_for_member("u1", 20),
		      "the daemon's first pass did not set u1's audience");
	ck_assert(!wait_for_member("u2", 1));
	/* A new event NOTIFYs audsync_events: no minute-long wait. */
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Signed Up', '{}', now() - interval '1 second')");
	ck_assert_msg(wait_for_member("u2", 15),
		      "the daemon did not wake on the new event");
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the daemon did not exit 0 on SIGTERM (status %d)", st);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status <> 'succeeded'"),
			 0);
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(
		tc, the_daemon_syncs_wakes_on_new_events_and_stops_on_sigterm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(daemon_suite());
}
