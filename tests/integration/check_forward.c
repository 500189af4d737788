/* check_forward.c - audsync forward end to end: real PostgreSQL, the
 * audsync binary, the fake Mixpanel */
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
static char path[64];

static const char *const fast_env[] = { "AUDSYNC_RETRY_BASE_MS=20",
					"AUDSYNC_RETRY_JITTER_MS=5",
					"AUDSYNC_MAX_ATTEMPTS=3", NULL };

#define TS "'timestamp':'2026-01-15T10:00:00Z'"

/* The seed's calls, one a line ('' for "), with two lines that cannot be
 * mapped (5: not JSON, 6: an unknown type). */
static const char *const messages[] = {
	"{'messageId':'i1'," TS ",'type':'identify','userId':'u1','traits':{"
	"'firstName':'James','lastName':'Gibbon','tags':['a','b']},"
	"'context':{'device':{'token':'ff15bc0c'}}}",
	"{'messageId':'t1'," TS ",'type':'track','userId':'u1','event':"
	"'Purchased an Item','properties':{'revenue':39.95},'context':{"
	"'campaign':{'source':'Newsletter'}}}",
	"{'messageId':'t2'," TS ",'type':'track','userId':'u1','event':"
	"'Logged In','properties':{'items':2}}",
	"{'messageId':'p1'," TS ",'type':'page','userId':'u1','name':'Home'}",
	"{'messageId':'x1',",
	"{'messageId':'x2'," TS ",'type':'purchase','userId':'u1'}",
	"{'messageId':'g1'," TS ",'type':'group','userId':'u1','groupId':'c1',"
	"'traits':{'company_id':'c1','name':'Initech'}}",
	"{'messageId':'a1'," TS ",'type':'alias','previousId':'anon-1',"
	"'userId':'u1'}",
};
#define N_MESSAGES (sizeof(messages) / sizeof(messages[0]))

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_sql(db, "UPDATE audsync.destinations SET settings ="
		   " '{\"event_increments\":[\"Logged In\"],"
		   "\"prop_increments\":[\"items\"],"
		   "\"group_identifier_traits\":[\"company_id\"]}'");
	snprintf(path, sizeof(path), "/tmp/audsync-fw-%d.ndjson",
		 (int)getpid());
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
	unlink(path);
}

/* Writes lines (with ' for ") to the test's file. */
static void write_file(const char *const *lines, size_t n)
{
	FILE *f = fopen(path, "w");
	size_t i;
	const char *p;

	ck_assert_ptr_nonnull(f);
	for (i = 0; i < n; i++) {
		for (p = lines[i]; *p; p++)
			fputc(*p == '\'' ? '"' : *p, f);
		fputc('\n', f);
	}
	fclose(f);
}

static tl_result forward(const char *arg)
{
	return tl_audsync(db, fast_env, "forward", "--destination", "mp", arg,
			  NULL);
}

/* The fake's state without its counters, as JSON text (caller frees). */
static char *state_text(void)
{
	json_object *st = NULL;
	char *text;

	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	json_object_object_del(st, "counters");
	text = strdup(
		json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN));
	json_object_put(st);
	return text;
}

/* profiles[id][key] of the fake (a borrowed reference in *st). */
static json_object *profile_value(json_object *st, const char *id,
				  const char *key)
{
	json_object *profiles, *p, *v = NULL;

	ck_assert(json_object_object_get_ex(st, "profiles", &profiles));
	ck_assert_msg(json_object_object_get_ex(profiles, id, &p),
		      "no profile %s in %s", id,
		      json_object_to_json_string(profiles));
	if (json_object_object_get_ex(p, "properties", &v) && v)
		p = v;
	json_object_object_get_ex(p, key, &v);
	return v;
}

static int count_events(json_object *st, const char *name)
{
	json_object *events, *e, *ev;
	size_t i;
	int n = 0;

	ck_assert(json_object_object_get_ex(st, "events", &events));
	for (i = 0; i < json_object_array_length(events); i++) {
		e = json_object_array_get_idx(events, i);
		if (json_object_object_get_ex(e, "event", &ev) &&
		    strcmp(json_object_get_string(ev), name) == 0)
			n++;
	}
	return n;
}

START_TEST(a_file_reaches_mixpanel_as_the_seed_maps_it)
{
	tl_result r;
	json_object *st = NULL, *v, *groups;

	write_file(messages, N_MESSAGES);
	r = forward(path);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "line=5"), "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "not valid JSON"), "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "line=6"), "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "unknown type"), "%s", r.err);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	v = profile_value(st, "u1", "$first_name");
	ck_assert_str_eq(json_object_get_string(v), "James");
	v = profile_value(st, "u1", "tags");
	ck_assert_int_eq(json_object_array_length(v), 2);
	v = profile_value(st, "u1", "$ios_devices");
	ck_assert_str_eq(
		json_object_get_string(json_object_array_get_idx(v, 0)),
		"ff15bc0c");
	v = profile_value(st, "u1", "$transactions");
	ck_assert_int_eq(json_object_array_length(v), 1);
	v = profile_value(st, "u1", "Logged In");
	ck_assert_int_eq(json_object_get_int(v), 1);
	v = profile_value(st, "u1", "items");
	ck_assert_int_eq(json_object_get_int(v), 2);
	v = profile_value(st, "u1", "Last Logged In");
	ck_assert_str_eq(json_object_get_string(v), "2026-01-15T10:00:00");
	ck_assert_int_eq(count_events(st, "Purchased an Item"), 1);
	ck_assert_int_eq(count_events(st, "Logged In"), 1);
	ck_assert_int_eq(count_events(st, "Loaded a Page"), 1);
	ck_assert_int_eq(count_events(st, "$create_alias"), 1);
	ck_assert(json_object_object_get_ex(st, "groups", &groups));
	ck_assert_msg(
		tl_contains(json_object_to_json_string(groups), "Initech"),
		"%s", json_object_to_json_string(groups));
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

START_TEST(forwarding_the_same_file_again_changes_nothing)
{
	tl_result r;
	char *before, *after;
	int64_t received;

	write_file(messages, N_MESSAGES);
	r = forward(path);
	ck_assert_int_eq(r.status, 1);
	tl_result_free(&r);
	before = state_text();
	received = mpctl_counter(fake, "records_received");
	r = forward(path);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "already_forwarded=6"), "%s", r.err);
	after = state_text();
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), received);
	free(before);
	free(after);
	tl_result_free(&r);
}
END_TEST

START_TEST(a_message_repeated_in_one_file_is_sent_once)
{
	const char *lines[] = { messages[2], messages[2], messages[1] };
	tl_result r;
	json_object *st = NULL;

	write_file(lines, 3);
	r = forward(path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(
		json_object_get_int(profile_value(st, "u1", "Logged In")), 1);
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

START_TEST(a_clean_stream_from_stdin_exits_zero)
{
	const char *lines[] = { messages[0], "", messages[3] };
	tl_result r;
	json_object *st = NULL;
	char cmd[512];
	int rc;

	write_file(lines, 3);
	snprintf(cmd, sizeof(cmd), "%s --db '%s' forward - < %s 2>/dev/null",
		 getenv("AUDSYNC_BIN"), db, path);
	rc = system(cmd);
	ck_assert_int_eq(WEXITSTATUS(rc), 0);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(count_events(st, "Loaded a Page"), 1);
	json_object_put(st);
	(void)r;
}
END_TEST

START_TEST(a_2mb_line_is_reported_and_the_rest_go_on)
{
	size_t n = 2 * 1024 * 1024;
	char *big = malloc(n + 1);
	const char *lines[3];
	tl_result r;
	json_object *st = NULL;

	memset(big, 'x', n);
	memcpy(big, "{'messageId':'big','blob':'", 27);
	strcpy(big + n - 2, "'}");
	lines[0] = messages[3];
	lines[1] = big;
	lines[2] = messages[7];
	write_file(lines, 3);
	r = forward(path);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "line=2"), "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "2097152 bytes"), "%s", r.err);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(count_events(st, "Loaded a Page"), 1);
	ck_assert_int_eq(count_events(st, "$create_alias"), 1);
	json_object_put(st);
	tl_result_free(&r);
	free(big);
}
END_TEST

/* Lines of a raw file: a track of user u1 for event name, with messageId
 * id; one whose event name holds a raw NUL; one of an unknown type. */
#define TS_DQ "\"timestamp\":\"2026-01-15T10:00:00Z\""
#define TRACK(id, name)                                                        \
	"{\"messageId\":\"" id "\"," TS_DQ ",\"type\":\"track\","              \
	"\"userId\":\"u1\",\"event\":\"" name "\"}\n"
#define TRACK_NUL                                                              \
	"{\"messageId\":\"n2\"," TS_DQ ",\"type\":\"track\","                  \
	"\"userId\":\"u1\",\"event\":\"Tw\0o\"}\n"
#define UNKNOWN_TYPE "{\"messageId\":\"n5\"," TS_DQ ",\"type\":\"buy\"}\n"

START_TEST(a_nul_byte_fails_its_line_and_only_it)
{
	/* Line 5 is refused for its own reason: reported as line 5. */
	static const char text[] = TRACK("n1", "One")
		TRACK_NUL TRACK("n3", "Three") TRACK("n4", "Four") UNKNOWN_TYPE;
	json_object *st = NULL;
	tl_result r;
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, sizeof(text) - 1, f),
			  sizeof(text) - 1);
	fclose(f);
	r = forward(path);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "line=2 reason=\"the line holds a "
					 "NUL byte"),
		      "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "line=5 reason=\"unknown type"), "%s",
		      r.err);
	ck_assert_msg(tl_contains(r.err, "messages=5 queued=3"), "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "failed=2"), "%s", r.err);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(count_events(st, "One"), 1);
	ck_assert_int_eq(count_events(st, "Three"), 1);
	ck_assert_int_eq(count_events(st, "Four"), 1);
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

START_TEST(message_ids_holding_u0000_are_refused_not_merged)
{
	/* Cut at U+0000 both were "k": the second was dropped as sent. */
	const char *lines[] = {
		"{'messageId':'k\\u0000a'," TS ",'type':'track','userId':'u1',"
		"'event':'First'}",
		"{'messageId':'k\\u0000b'," TS ",'type':'track','userId':'u1',"
		"'event':'Second'}",
		"{'messageId':'k'," TS ",'type':'track','userId':'u1',"
		"'event':'Third'}",
	};
	json_object *st = NULL;
	tl_result r;

	write_file(lines, 3);
	r = forward(path);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "line=1 reason=\"messageId holds "
					 "U+0000") &&
			      tl_contains(r.err, "line=2 reason=\"messageId "
						 "holds U+0000"),
		      "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "queued=1 already_forwarded=0"), "%s",
		      r.err);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(count_events(st, "Third"), 1);
	ck_assert_int_eq(count_events(st, "First") + count_events(st, "Second"),
			 0);
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

START_TEST(a_revenue_that_is_no_amount_costs_the_charge_only)
{
	const char *lines[] = {
		"{'messageId':'r1'," TS ",'type':'track','userId':'u1',"
		"'event':'Paid','properties':{'revenue':'lots'}}",
		"{'messageId':'r2'," TS ",'type':'identify','userId':'u1',"
		"'traits':{'plan':'pro'}}",
	};
	json_object *st = NULL, *profiles, *p;
	tl_result r;

	write_file(lines, 2);
	r = forward(path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "level=warn") &&
			      tl_contains(r.err, "msg=\"message forwarded in "
						 "part\" line=1 reason="
						 "\"properties.revenue is not "
						 "a number"),
		      "%s", r.err);
	/* The run's summary counts it, beside the one sent whole. */
	ck_assert_msg(tl_contains(r.err, "msg=\"messages forwarded\" "
					 "messages=2 queued=2 ") &&
			      tl_contains(r.err, " calls=2 in_part=1\n"),
		      "%s", r.err);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(count_events(st, "Paid"), 1);
	ck_assert_str_eq(
		json_object_get_string(profile_value(st, "u1", "plan")), "pro");
	ck_assert(json_object_object_get_ex(st, "profiles", &profiles));
	ck_assert(json_object_object_get_ex(profiles, "u1", &p));
	ck_assert_msg(
		!tl_contains(json_object_to_json_string(p), "$transactions"),
		"%s", json_object_to_json_string(p));
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

START_TEST(a_file_that_cannot_be_read_is_named_with_the_cause)
{
	tl_result r = forward("/tmp");

	ck_assert_msg(r.status == 3, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "file=/tmp") &&
			      tl_contains(r.err, "Is a directory"),
		      "%s", r.err);
	tl_result_free(&r);
}
END_TEST

START_TEST(an_event_mixpanel_refuses_is_a_dead_letter)
{
	const char *lines[] = {
		"{'messageId':'f1','timestamp':'2099-01-01T00:00:00Z',"
		"'type':'track','userId':'u1','event':'From the future'}",
		messages[3]
	};
	char metrics[80], buf[8192];
	tl_result r;
	size_t n;
	FILE *f;

	snprintf(metrics, sizeof(metrics), "%s.prom", path);
	write_file(lines, 2);
	r = forward(path);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.dead_letters"),
			 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.outbox"),
			 0);
	tl_result_free(&r);
	/* status and the metrics show it, as for a sync. */
	r = tl_audsync(db, NULL, "status", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.out, "(forward)"), "%s", r.out);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "--metrics-file", metrics, "deliver", NULL);
	ck_assert_int_eq(r.status, 0);
	tl_result_free(&r);
	f = fopen(metrics, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(metrics);
	/* Dead letters are counted per destination, forwarded or not. */
	ck_assert_msg(tl_contains(buf, "audsync_dead_letters{"
				       "destination=\"mp\"} 1\n"),
		      "%s", buf);
}
END_TEST

START_TEST(inbound_rows_are_drained_and_bad_ones_kept_with_the_reason)
{
	tl_result r;
	json_object *st = NULL;
	char *reason;

	tl_sql(db,
	       "INSERT INTO audsync.inbound (destination, message) VALUES"
	       " ('mp', '{\"messageId\":\"t1\",\"timestamp\":"
	       "\"2026-01-15T10:00:00Z\",\"type\":\"track\",\"userId\":\"u1\","
	       "\"event\":\"Logged In\"}'),"
	       " ('mp', '{\"messageId\":\"t2\",\"type\":\"track\"}'),"
	       " ('elsewhere', '{\"messageId\":\"t3\"}')");
	r = tl_audsync(db, fast_env, "forward", "--from-table", NULL);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "inbound_id=2"), "%s", r.err);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.inbound"
					" WHERE destination = 'mp'"),
			 0);
	/* A row for a destination that does not exist waits for it, and the
	 * operator hears so (a typo in the loader would wait forever). */
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.inbound"
					" WHERE destination = 'elsewhere'"),
			 1);
	ck_assert_msg(tl_contains(r.err, "level=warn") &&
			      tl_contains(r.err,
					  "msg=\"inbound rows held: no "
					  "such destination\" "
					  "destination=elsewhere rows=1"),
		      "%s", r.err);
	reason = tl_sql_value(db, "SELECT reason FROM audsync.inbound_rejected"
				  " WHERE id = 2");
	ck_assert_msg(reason && tl_contains(reason, "timestamp"), "%s",
		      reason ? reason : "(none)");
	free(reason);
	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert_int_eq(count_events(st, "Logged In"), 1);
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

/* 1 when the fake's profile id holds key within seconds. */
static int wait_for_profile(const char *id, const char *key, int seconds)
{
	time_t end = time(NULL) + seconds;

	while (time(NULL) < end) {
		json_object *st = NULL, *profiles, *p, *v;
		int found;

		ck_assert_int_eq(mpctl_state(&st, fake), 0);
		found = json_object_object_get_ex(st, "profiles", &profiles) &&
			json_object_object_get_ex(profiles, id, &p) &&
			json_object_object_get_ex(p, key, &v);
		json_object_put(st);
		if (found)
			return 1;
		usleep(100 * 1000);
	}
	return 0;
}

START_TEST(the_daemon_drains_inbound_when_notified)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid = tl_audsync_spawn(db, fast_env, args);
	int st;

	/* Let its first pass go by: the row must arrive through NOTIFY. */
	sleep(2);
	tl_sql(db, "INSERT INTO audsync.inbound (destination, message) VALUES"
		   " ('mp', '{\"messageId\":\"d1\",\"timestamp\":"
		   "\"2026-01-15T10:00:00Z\",\"type\":\"identify\","
		   "\"userId\":\"u9\",\"traits\":{\"plan\":\"pro\"}}')");
	ck_assert_msg(wait_for_profile("u9", "plan", 15),
		      "the daemon did not forward the inbound row");
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.inbound"),
			 0);
}
END_TEST

START_TEST(usage_and_configuration_errors)
{
	tl_result r;

	r = tl_audsync(db, NULL, "forward", "--from-table", "x.ndjson", NULL);
	ck_assert_int_eq(r.status, 2);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "forward", "a", "b", NULL);
	ck_assert_int_eq(r.status, 2);
	tl_result_free(&r);
	write_file(messages, 1);
	/* a destination that does not exist is a usage error, as for run */
	r = tl_audsync(db, NULL, "forward", "--destination", "nope", path,
		       NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(tl_contains(r.err, "no destination is named nope"), "%s",
		      r.err);
	tl_result_free(&r);
	tl_sql(db, "UPDATE audsync.destinations SET settings ="
		   " '{\"track_named_pages\":\"yes\"}'");
	r = forward(path);
	ck_assert_int_eq(r.status, 3);
	ck_assert_msg(tl_contains(r.err, "track_named_pages"), "%s", r.err);
	tl_result_free(&r);
}
END_TEST

static Suite *forward_suite(void)
{
	Suite *s = suite_create("forward");
	TCase *t = tcase_create("forward");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, a_file_reaches_mixpanel_as_the_seed_maps_it);
	tcase_add_test(t, forwarding_the_same_file_again_changes_nothing);
	tcase_add_test(t, a_message_repeated_in_one_file_is_sent_once);
	tcase_add_test(t, a_clean_stream_from_stdin_exits_zero);
	tcase_add_test(t, a_2mb_line_is_reported_and_the_rest_go_on);
	tcase_add_test(t, a_nul_byte_fails_its_line_and_only_it);
	tcase_add_test(t, a_file_that_cannot_be_read_is_named_with_the_cause);
	tcase_add_test(t, a_revenue_that_is_no_amount_costs_the_charge_only);
	tcase_add_test(t, message_ids_holding_u0000_are_refused_not_merged);
	tcase_add_test(t, an_event_mixpanel_refuses_is_a_dead_letter);
	tcase_add_test(
		t, inbound_rows_are_drained_and_bad_ones_kept_with_the_reason);
	tcase_add_test(t, the_daemon_drains_inbound_when_notified);
	tcase_add_test(t, usage_and_configuration_errors);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tl_run_suite(forward_suite());
}
