/* check_upgrade.c - a database synced before the ledger, upgraded by
 * today's `audsync migrate`: the next runs send nothing new, a change
 * sends exactly its calls, and `retire --unset` cleans what the old
 * audsync told. The database and Mixpanel's profiles come from
 * tests/upgrade/make-fixture.sh (README: "Upgrading"). */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE	 "tests/upgrade/pre-ledger.sql"
#define PROFILES "tests/upgrade/pre-ledger-profiles.json"

static mpctl *fake;
static char db[64];
static json_object *before; /* the profiles the old audsync left */
static const char *const env[] = { "MIXPANEL_API_SECRET=test-secret",
				   "AUDSYNC_RETRY_BASE_MS=20",
				   "AUDSYNC_RETRY_JITTER_MS=5",
				   "AUDSYNC_MAX_ATTEMPTS=2", NULL };

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* POSTs one /engage $set per profile of `before` to the fake: Mixpanel as
 * the old audsync left it. */
static void seed_mixpanel(void)
{
	json_object *batch = json_object_new_array();
	char url[200];
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	long status = 0;

	json_object_object_foreach(before, did, props)
	{
		json_object *u = json_object_new_object();

		json_object_object_add(u, "$token",
				       json_object_new_string("test-token"));
		json_object_object_add(u, "$distinct_id",
				       json_object_new_string(did));
		json_object_object_add(u, "$ignore_time",
				       json_object_new_boolean(1));
		json_object_object_add(u, "$set", json_object_get(props));
		json_object_array_add(batch, u);
	}
	snprintf(url, sizeof(url), "%s/engage?verbose=1&ip=0",
		 mpctl_base_url(fake));
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS,
			 json_object_to_json_string(batch));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	ck_assert_int_eq(status, 200);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	json_object_put(batch);
}

/* The fixture in a database of its own, today's migrations over it, and
 * its destination pointed at the fake. */
static void setup(void)
{
	static int counter;
	char sql[200], *dump;
	tl_result r;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	before = json_object_from_file(PROFILES);
	ck_assert_msg(before != NULL, "cannot read %s", PROFILES);
	seed_mixpanel();
	snprintf(db, sizeof(db), "dbname=up%d_%d", (int)getpid(), ++counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db + 7);
	tl_sql("dbname=postgres", sql);
	dump = tl_read_file(FIXTURE);
	tl_sql(db, dump);
	free(dump);
	snprintf(sql, sizeof(sql),
		 "UPDATE audsync.destinations SET api_base = '%s'",
		 mpctl_base_url(fake));
	tl_sql(db, sql);
	r = tl_audsync(db, NULL, "migrate", NULL);
	ck_assert_msg(r.status == 0, "migrate exited %d: %s", r.status, r.err);
	tl_result_free(&r);
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
	json_object_put(before);
	before = NULL;
}

static void audsync_ok(const char *const *args)
{
	tl_result r = tl_audsync_argv(db, env, args);

	ck_assert_msg(r.status == 0, "audsync %s exited %d: %s", args[0],
		      r.status, r.err);
	tl_result_free(&r);
}

#define COUNTER(name) ((long long)mpctl_counter(fake, name))

/* The fake's profiles (a new reference). */
static json_object *profiles(void)
{
	json_object *state, *p;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	ck_assert(json_object_object_get_ex(state, "profiles", &p));
	json_object_get(p);
	json_object_put(state);
	return p;
}

/* Every profile of the fake equals `want`'s, but the profile `except`
 * (may be NULL), whose property is compared apart. */
static void assert_profiles(json_object *want, const char *except)
{
	json_object *got = profiles();

	ck_assert_int_eq(json_object_object_length(got),
			 json_object_object_length(want));
	json_object_object_foreach(want, did, props)
	{
		json_object *g = NULL;

		ck_assert_msg(json_object_object_get_ex(got, did, &g),
			      "profile %s is gone", did);
		if (except && strcmp(did, except) == 0)
			continue;
		ck_assert_msg(json_object_equal(g, props),
			      "profile %s: %s, expected %s", did,
			      json_object_to_json_string(g),
			      json_object_to_json_string(props));
	}
	json_object_put(got);
}

/* A property of one profile of the fake, as JSON text (caller frees). */
static char *prop(const char *did, const char *name)
{
	json_object *all = profiles(), *p, *v;
	char *out = NULL;

	if (json_object_object_get_ex(all, did, &p) &&
	    json_object_object_get_ex(p, name, &v))
		out = strdup(json_object_to_json_string_ext(
			v, JSON_C_TO_STRING_PLAIN));
	json_object_put(all);
	return out;
}

/* The first run after the upgrade, every sync at once. */
static void run_all_after_upgrade(void)
{
	const char *run[] = { "run", "--all", "--as-of",
			      "2026-06-06 00:00:00+00", NULL };
	const char *deliver[] = { "deliver", NULL };

	audsync_ok(run);
	audsync_ok(deliver);
}

/* p10 (user_id u10, email p10@x.io) leaves the audiences. */
static void p10_exits(void)
{
	tl_sql(db, "INSERT INTO audsync.events VALUES ('p10', 'Set', '{}',"
		   " '2026-06-06 12:00:00+00')");
}

START_TEST(an_upgraded_database_sends_nothing_until_something_changes)
{
	const char *run_vip[] = { "run",     "--computation",	       "vip",
				  "--as-of", "2026-06-07 00:00:00+00", NULL };
	long long seeded = COUNTER("records_received");
	char *v;

	ck_assert_int_gt(seeded, 0);
	run_all_after_upgrade();
	ck_assert_int_eq(COUNTER("records_received"), seeded);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE as_of = '2026-06-06'"
					" AND status = 'succeeded'"),
			 6);
	assert_profiles(before, NULL);

	/* one member leaves vip (identify, all targets): its distinct_id,
	 * and nothing else, is told false */
	p10_exits();
	audsync_ok(run_vip);
	ck_assert_int_eq(COUNTER("records_received"), seeded + 1);
	v = prop("u10", "vip");
	ck_assert_str_eq(v ? v : "(absent)", "false");
	free(v);
	assert_profiles(before, "u10");
}
END_TEST

/* Former members told false (or nulls) before the upgrade lose the
 * property too. */
START_TEST(retire_unset_after_the_upgrade_reaches_former_members)
{
	const char *run_vip[] = { "run",     "--computation",	       "vip",
				  "--as-of", "2026-06-07 00:00:00+00", NULL };
	const char *retire_vip[] = { "retire", "vip", "--unset", NULL };
	const char *retire_scoring[] = { "retire", "scoring", "--unset", NULL };
	json_object *after;
	char *v;

	v = prop("u2", "vip");
	ck_assert_str_eq(v ? v : "(absent)", "false"); /* before the upgrade */
	free(v);
	run_all_after_upgrade();
	p10_exits();
	audsync_ok(run_vip);
	audsync_ok(retire_vip);
	audsync_ok(retire_scoring);
	after = profiles();
	json_object_object_foreach(after, did, props)
	{
		ck_assert_msg(!json_object_object_get_ex(props, "vip", NULL),
			      "profile %s keeps vip: %s", did,
			      json_object_to_json_string(props));
		ck_assert_msg(
			!json_object_object_get_ex(props, "score", NULL) &&
				!json_object_object_get_ex(props, "tier", NULL),
			"profile %s keeps scoring's keys: %s", did,
			json_object_to_json_string(props));
	}
	json_object_put(after);
}
END_TEST

static Suite *upgrade_suite(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = tcase_create("upgrade");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
		tc, an_upgraded_database_sends_nothing_until_something_changes);
	tcase_add_test(tc,
		       retire_unset_after_the_upgrade_reaches_former_members);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(upgrade_suite());
}
