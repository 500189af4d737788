/* check_sync.c - audience and trait syncs end to end: real PostgreSQL,
 * the audsync binary, the fake Mixpanel */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mpctl *fake;
static const char *db;

static void setup(void)
{
	char sql[512];

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, use_people) VALUES ('mp', '%s',"
		 " 'test-token', true)", mpctl_base_url(fake));
	tl_sql(db, sql);
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* A profile's property in the fake, as JSON text (caller frees), or
 * NULL when the profile or property is missing. */
static char *profile_prop(const char *distinct_id, const char *prop)
{
	json_object *state, *profiles, *p, *v;
	char *out = NULL;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	if (json_object_object_get_ex(state, "profiles", &profiles) &&
	    json_object_object_get_ex(profiles, distinct_id, &p) &&
	    json_object_object_get_ex(p, prop, &v))
		out = strdup(json_object_to_json_string_ext(
			v, JSON_C_TO_STRING_PLAIN));
	json_object_put(state);
	return out;
}

static void run_ok(const char *as_of)
{
	tl_result r = as_of ? tl_audsync(db, NULL, "run", "--all", "--as-of",
					 as_of, NULL)
			    : tl_audsync(db, NULL, "run", "--all", NULL);

	ck_assert_msg(r.status == 0, "audsync run exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
}

START_TEST(first_sync_sets_the_audience_on_every_member)
{
	char *v;

	tl_sql(db,
	       "INSERT INTO audsync.external_ids VALUES"
	       " ('p1', 'user_id', 'u1', now() - interval '3 days'),"
	       " ('p1', 'email', 'old@x.com', now() - interval '2 days'),"
	       " ('p1', 'email', 'new@x.com', now() - interval '1 day'),"
	       " ('p2', 'user_id', 'u2', now() - interval '3 days');"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Order Completed', '{}', now() - interval '5 days'),"
	       " ('p2', 'Order Completed', '{}', now() - interval '50 days');"
	       "INSERT INTO audsync.computations (name, kind, definition_sql,"
	       " lookback) VALUES ('Recent Buyers', 'audience',"
	       " 'SELECT profile_id FROM audsync.events WHERE ts >= $2"
	       " AND ts < $1', '30 days');"
	       "INSERT INTO audsync.syncs (computation_id, destination_id,"
	       " mode) SELECT c.id, d.id, 'identify'"
	       " FROM audsync.computations c, audsync.destinations d");
	run_ok(NULL);
	v = profile_prop("u1", "recent_buyers");
	ck_assert_str_eq(v, "true");
	free(v);
	v = profile_prop("u1", "$email");
	ck_assert_str_eq(v, "\"new@x.com\"");
	free(v);
	ck_assert_ptr_null(profile_prop("u2", "recent_buyers"));
	ck_assert_int_eq(mpctl_counter(fake, "updates_applied"), 3);
	ck_assert_int_eq(tl_sql_int(db, "SELECT entered FROM audsync.runs"),
			 1);
}
END_TEST

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("end to end");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, first_sync_sets_the_audience_on_every_member);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sync_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
