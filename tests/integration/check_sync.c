/* check_sync.c - audience and trait syncs end to end: real PostgreSQL,
 * the audsync binary, the fake Mixpanel */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mpctl *fake;
static const char *db;

/* Fast retries, so that fault tests take milliseconds, not minutes. */
#define RETRY_ENV                                                              \
	"AUDSYNC_RETRY_BASE_MS=20", "AUDSYNC_RETRY_JITTER_MS=5",               \
		"AUDSYNC_MAX_ATTEMPTS=3"

static const char *const retry_env[] = { RETRY_ENV, NULL };
static const char *const secret_env[] = { "MIXPANEL_TEST_SECRET=test-secret",
					  RETRY_ENV, NULL };

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

/* ---- SQL helpers ------------------------------------------------------ */

/* A printf-formatted string (caller frees). */
/* The SQL helpers of testlib, on this file's database. */
#define sqlf(...)     tl_sqlf(db, __VA_ARGS__)
#define sql_int(...)  tl_sql_intf(db, __VA_ARGS__)
#define sql_text(...) tl_sql_valuef(db, __VA_ARGS__)

/* The time `interval` ago, whole seconds, as text for --as-of. */
static void ago(char *out, size_t len, const char *interval)
{
	char *v = sql_text("SELECT date_trunc('second', now() - interval"
			   " '%s')::text",
			   interval);

	ck_assert_ptr_nonnull(v);
	snprintf(out, len, "%s", v);
	free(v);
}

/* A timestamp's Unix time in milliseconds (Mixpanel's "time"). */
static long long epoch_ms(const char *ts)
{
	return sql_int("SELECT (extract(epoch FROM '%s'::timestamptz)"
		       " * 1000)::bigint",
		       ts);
}

/* A computation; lookback is SQL ("NULL" or "'7 days'"). The definition
 * is dollar-quoted, so it may hold quotes. */
static void add_computation(const char *name, const char *kind,
			    const char *definition, const char *lookback,
			    int include_anonymous)
{
	sqlf("INSERT INTO audsync.computations (name, kind, definition_sql,"
	     " lookback, include_anonymous) VALUES ('%s', '%s',"
	     " $def$%s$def$, %s, %s)",
	     name, kind, definition, lookback,
	     include_anonymous ? "true" : "false");
}

/* A sync of computation key to destination dest. */
static void add_sync(const char *key, const char *dest, const char *mode,
		     const char *id_sync)
{
	sqlf("INSERT INTO audsync.syncs (computation_id, destination_id,"
	     " mode, id_sync) SELECT c.id, d.id, '%s', '%s'"
	     " FROM audsync.computations c, audsync.destinations d"
	     " WHERE c.key = '%s' AND d.name = '%s'",
	     mode, id_sync, key, dest);
	ck_assert_msg(sql_int("SELECT count(*) FROM audsync.syncs s"
			      " JOIN audsync.computations c"
			      " ON c.id = s.computation_id"
			      " JOIN audsync.destinations d"
			      " ON d.id = s.destination_id WHERE c.key = '%s'"
			      " AND d.name = '%s'",
			      key, dest) == 1,
		      "no sync of %s to %s was created", key, dest);
}

/* Another destination on the fake; extra is "column = value" SQL for
 * the columns that differ from the 'mp' destination, or NULL. */
static void add_destination(const char *name, const char *extra)
{
	sqlf("INSERT INTO audsync.destinations (name, api_base,"
	     " project_token, use_people) VALUES ('%s', '%s',"
	     " 'test-token', true)",
	     name, mpctl_base_url(fake));
	if (extra)
		sqlf("UPDATE audsync.destinations SET %s WHERE name = '%s'",
		     extra, name);
}

/* A column of the latest run of computation key, as a number. */
static long long run_int(const char *key, const char *column)
{
	return sql_int("SELECT r.%s FROM audsync.runs r"
		       " JOIN audsync.syncs s ON s.id = r.sync_id"
		       " JOIN audsync.computations c"
		       " ON c.id = s.computation_id WHERE c.key = '%s'"
		       " ORDER BY r.id DESC LIMIT 1",
		       column, key);
}

/* Same, as text (caller frees; NULL when NULL or no run). */
static char *run_text(const char *key, const char *column)
{
	return sql_text("SELECT r.%s FROM audsync.runs r"
			" JOIN audsync.syncs s ON s.id = r.sync_id"
			" JOIN audsync.computations c"
			" ON c.id = s.computation_id WHERE c.key = '%s'"
			" ORDER BY r.id DESC LIMIT 1",
			column, key);
}

#define assert_run_text(key, column, want)                                     \
	check_run_text(__LINE__, key, column, want)
static void check_run_text(int line, const char *key, const char *column,
			   const char *want)
{
	char *v = run_text(key, column);

	ck_assert_msg(v && strcmp(v, want) == 0,
		      "line %d: latest run of %s has %s = %s, expected %s",
		      line, key, column, v ? v : "NULL", want);
	free(v);
}

/* ---- audsync ---------------------------------------------------------- */

/* audsync run --all [--as-of as_of] with env; exits 0. */
static void run_ok_env(const char *const *env, const char *as_of)
{
	tl_result r = as_of ? tl_audsync(db, env, "run", "--all", "--as-of",
					 as_of, NULL)
			    : tl_audsync(db, env, "run", "--all", NULL);

	ck_assert_msg(r.status == 0, "audsync run exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
}

static void run_ok(const char *as_of)
{
	run_ok_env(NULL, as_of);
}

/* 1 when hay contains one of the '|'-separated needles, ignoring case. */
static int has_any(const char *hay, const char *needles)
{
	char alt[256];
	const char *p = needles, *bar;
	size_t n;

	if (!hay)
		return 0;
	for (;;) {
		bar = strchr(p, '|');
		n = bar ? (size_t)(bar - p) : strlen(p);
		snprintf(alt, sizeof(alt), "%.*s", (int)n, p);
		if (strcasestr(hay, alt))
			return 1;
		if (!bar)
			return 0;
		p = bar + 1;
	}
}

/* 1 when one line of text has one of whos and one of causes. */
static int line_with(const char *text, const char *whos, const char *causes)
{
	const char *p = text, *nl;
	char *line;
	int found = 0;

	while (p && *p && !found) {
		nl = strchr(p, '\n');
		line = strndup(p, nl ? (size_t)(nl - p) : strlen(p));
		found = has_any(line, whos) && has_any(line, causes);
		free(line);
		p = nl ? nl + 1 : NULL;
	}
	return found;
}

/* ---- the fake Mixpanel ------------------------------------------------ */

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

/* Asserts a profile property's JSON text; want NULL: absent. */
#define assert_prop(did, prop, want) check_prop(__LINE__, did, prop, want)
static void check_prop(int line, const char *did, const char *prop,
		       const char *want)
{
	char *v = profile_prop(did, prop);
	int ok = want ? v && strcmp(v, want) == 0 : v == NULL;

	ck_assert_msg(ok,
		      "line %d: Mixpanel profile %s has %s = %s, "
		      "expected %s",
		      line, did, prop, v ? v : "(absent)",
		      want ? want : "(absent)");
	free(v);
}

/* 1 when the fake has a profile for distinct_id. */
static int has_profile(const char *distinct_id)
{
	json_object *state, *profiles, *p;
	int found;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	found = json_object_object_get_ex(state, "profiles", &profiles) &&
		json_object_object_get_ex(profiles, distinct_id, &p);
	json_object_put(state);
	return found;
}

#define COUNTER(name) ((long long)mpctl_counter(fake, name))

/* Events stored by the fake named event (NULL: any) for distinct_id
 * (NULL: any). When props is not NULL it receives a new reference to
 * the properties of the last one found (NULL when none). */
static int find_events(const char *event, const char *did, json_object **props)
{
	json_object *state, *events, *e, *name, *p, *d;
	size_t i;
	int n = 0;

	if (props)
		*props = NULL;
	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	ck_assert(json_object_object_get_ex(state, "events", &events));
	for (i = 0; i < json_object_array_length(events); i++) {
		e = json_object_array_get_idx(events, i);
		if (!json_object_object_get_ex(e, "event", &name) ||
		    !json_object_object_get_ex(e, "properties", &p) ||
		    !json_object_object_get_ex(p, "distinct_id", &d))
			continue;
		if (event && strcmp(json_object_get_string(name), event))
			continue;
		if (did && strcmp(json_object_get_string(d), did))
			continue;
		n++;
		if (props) {
			json_object_put(*props);
			*props = json_object_get(p);
		}
	}
	json_object_put(state);
	return n;
}

/* An event property as JSON text (caller frees), NULL when absent. */
static char *prop_text(json_object *props, const char *name)
{
	json_object *v;

	if (!props || !json_object_object_get_ex(props, name, &v))
		return NULL;
	return strdup(
		json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

#define assert_event_prop(props, name, want)                                   \
	check_event_prop(__LINE__, props, name, want)
static void check_event_prop(int line, json_object *props, const char *name,
			     const char *want)
{
	char *v = prop_text(props, name);

	ck_assert_msg(v && strcmp(v, want) == 0,
		      "line %d: event property %s = %s, expected %s", line,
		      name, v ? v : "(absent)", want);
	free(v);
}

/* 1 when s is a valid $insert_id: 1..36 characters of [0-9a-f-]. */
static int insert_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	if (n < 1 || n > 36)
		return 0;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) &&
		    !(s[i] >= 'a' && s[i] <= 'f') && s[i] != '-')
			return 0;
	return 1;
}

/* ---- audsync status --json -------------------------------------------- */

/* The status entry of computation key (a new reference). */
static json_object *status_of(const char *key)
{
	tl_result r = tl_audsync(db, NULL, "status", "--json", NULL);
	json_object *doc, *all, *e, *c, *found = NULL;
	size_t i;

	ck_assert_msg(r.status == 0, "audsync status exited %d: %s", r.status,
		      r.err);
	doc = json_tokener_parse(r.out);
	ck_assert_msg(doc && json_object_object_get_ex(doc, "syncs", &all) &&
			      json_object_is_type(all, json_type_array),
		      "audsync status --json has no syncs array: %s", r.out);
	for (i = 0; i < json_object_array_length(all); i++) {
		e = json_object_array_get_idx(all, i);
		if (json_object_object_get_ex(e, "computation", &c) &&
		    strcmp(json_object_get_string(c), key) == 0)
			found = json_object_get(e);
	}
	json_object_put(doc);
	tl_result_free(&r);
	ck_assert_msg(found, "audsync status --json has no entry for %s", key);
	return found;
}

static long long status_int(json_object *st, const char *field)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(st, field, &v),
		      "status has no field %s", field);
	return json_object_get_int64(v);
}

/* A status text field, or NULL when null or absent. Borrowed. */
static const char *status_str(json_object *st, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(st, field, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

/* ---- people ----------------------------------------------------------- */

/* p1 (u1) and p2 (u2), with identifiers created long ago. */
static void add_two_people(void)
{
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', now() - interval '60 days'),"
		   " ('p2', 'user_id', 'u2', now() - interval '60 days')");
}

/* Everyone with a user_id, as an audience synced by identify. */
static void add_everyone_audience(const char *name, const char *key)
{
	add_computation(name, "audience",
			"SELECT profile_id FROM audsync.external_ids"
			" WHERE id_type = 'user_id'",
			"NULL", 0);
	add_sync(key, "mp", "identify", "all");
}

/* ---- first sync, enter and exit --------------------------------------- */

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
	ck_assert_int_eq(tl_sql_int(db, "SELECT entered FROM audsync.runs"), 1);
}
END_TEST

/* Subscribed minus Cancelled before the as-of time. */
#define SUBSCRIBERS_SQL                                                        \
	"SELECT profile_id FROM audsync.events WHERE ts < $1"                  \
	" GROUP BY profile_id HAVING"                                          \
	" count(*) FILTER (WHERE event = 'Subscribed') >"                      \
	" count(*) FILTER (WHERE event = 'Cancelled')"

START_TEST(members_who_leave_get_false_and_newcomers_get_true)
{
	char t1[64];

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'one@x.com', now() - interval '50 days');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Subscribed', '{}', now() - interval '10 days'),"
		   " ('p1', 'Cancelled', '{}', now() - interval '5 days'),"
		   " ('p2', 'Subscribed', '{}', now() - interval '5 days')");
	add_computation("Pro Subscribers", "audience", SUBSCRIBERS_SQL, "NULL",
			0);
	add_sync("pro_subscribers", "mp", "identify", "all");
	ago(t1, sizeof(t1), "9 days");

	run_ok(t1);
	assert_prop("u1", "pro_subscribers", "true");
	assert_prop("u1", "$email", "\"one@x.com\"");
	ck_assert(!has_profile("u2"));
	ck_assert_int_eq(run_int("pro_subscribers", "entered"), 1);

	run_ok(NULL);
	assert_prop("u1", "pro_subscribers", "false");
	assert_prop("u2", "pro_subscribers", "true");
	/* the exit went once to u1, the distinct_id both of p1's
	 * identifiers were told through */
	ck_assert_int_eq(COUNTER("updates_applied"), 2 + 1 + 1);
	ck_assert_int_eq(run_int("pro_subscribers", "members"), 1);
	ck_assert_int_eq(run_int("pro_subscribers", "entered"), 1);
	ck_assert_int_eq(run_int("pro_subscribers", "exited"), 1);
	assert_run_text("pro_subscribers", "status", "succeeded");
	assert_run_text("pro_subscribers", "kind", "manual");
}
END_TEST

/* The exit goes where the entry went, even when the profile has since
 * been given a newer user_id. */
START_TEST(an_exit_reaches_the_distinct_id_the_member_was_given)
{
	add_two_people();
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Subscribed', '{}', now() - interval '10 days')");
	add_computation("Pro Subscribers", "audience", SUBSCRIBERS_SQL, "NULL",
			0);
	add_sync("pro_subscribers", "mp", "identify", "all");
	run_ok(NULL);
	assert_prop("u1", "pro_subscribers", "true");

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1-new', now() - interval '1 hour');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Cancelled', '{}', now() - interval '1 hour')");
	run_ok(NULL);
	assert_prop("u1", "pro_subscribers", "false");
	ck_assert(!has_profile("u1-new"));
	ck_assert_int_eq(run_int("pro_subscribers", "exited"), 1);
}
END_TEST

START_TEST(a_run_without_changes_sends_nothing)
{
	long long received, applied;

	add_two_people();
	add_everyone_audience("Everyone", "everyone");
	run_ok(NULL);
	received = COUNTER("records_received");
	applied = COUNTER("updates_applied");
	ck_assert_int_eq(applied, 2);

	run_ok(NULL);
	ck_assert_int_eq(COUNTER("records_received"), received);
	ck_assert_int_eq(COUNTER("updates_applied"), applied);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.runs"), 2);
	ck_assert_int_eq(run_int("everyone", "members"), 2);
	ck_assert_int_eq(run_int("everyone", "entered"), 0);
	ck_assert_int_eq(run_int("everyone", "exited"), 0);
	ck_assert_int_eq(run_int("everyone", "changed"), 0);
	ck_assert_int_eq(run_int("everyone", "calls"), 0);
}
END_TEST

/* An audience's definition may name a member once per event: each member
 * is one member, entered once, and more rows for a member are no change. */
START_TEST(a_member_named_by_many_rows_is_one_member_entered_once)
{
	long long received;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '60 days');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Visit', '{}', now() - interval '3 days'),"
		   " ('p1', 'Visit', '{}', now() - interval '2 days'),"
		   " ('p1', 'Visit', '{}', now() - interval '1 day'),"
		   " ('p2', 'Visit', '{}', now() - interval '1 day')");
	add_computation("Visitors", "audience",
			"SELECT profile_id FROM audsync.events"
			" WHERE event = 'Visit'",
			"NULL", 0);
	add_sync("visitors", "mp", "identify", "all");
	run_ok(NULL);
	assert_prop("u1", "visitors", "true");
	assert_prop("u2", "visitors", "true");
	ck_assert_int_eq(COUNTER("updates_applied"), 2);
	ck_assert_int_eq(run_int("visitors", "members"), 2);
	ck_assert_int_eq(run_int("visitors", "entered"), 2);

	/* One more visit by a member: more rows, the same members. */
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Visit', '{}', now() - interval '1 hour')");
	received = COUNTER("records_received");
	run_ok(NULL);
	ck_assert_int_eq(COUNTER("records_received"), received);
	ck_assert_int_eq(run_int("visitors", "members"), 2);
	ck_assert_int_eq(run_int("visitors", "entered"), 0);
	ck_assert_int_eq(run_int("visitors", "changed"), 0);

	/* A newcomer named twice enters once; a leaver exits. */
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p3', 'Visit', '{}', now() - interval '2 hours'),"
		   " ('p3', 'Visit', '{}', now() - interval '1 hour');"
		   "DELETE FROM audsync.events WHERE profile_id = 'p2'");
	run_ok(NULL);
	assert_prop("u3", "visitors", "true");
	assert_prop("u2", "visitors", "false");
	assert_prop("u1", "visitors", "true");
	ck_assert_int_eq(COUNTER("records_received"), received + 2);
	ck_assert_int_eq(run_int("visitors", "members"), 2);
	ck_assert_int_eq(run_int("visitors", "entered"), 1);
	ck_assert_int_eq(run_int("visitors", "exited"), 1);
}
END_TEST

START_TEST(a_lookback_audience_lets_members_go_as_time_passes)
{
	char t1[64], before[64], *same_hour, *last;
	tl_result r;
	int tries, done;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Order Completed', '{}',"
		   "  now() - interval '10 days')");
	add_computation("Order Completed - Last 7 Days", "audience",
			"SELECT profile_id FROM audsync.events"
			" WHERE event = 'Order Completed'"
			" AND ts >= $2 AND ts < $1",
			"'7 days'", 0);
	add_sync("order_completed_last_7_days", "mp", "identify", "all");
	ago(t1, sizeof(t1), "9 days");

	run_ok(t1);
	assert_prop("u1", "order_completed_last_7_days", "true");

	/* The scheduled run (no --all): the sync is due, its last run
	 * being days ago; seven days on, the order is out of the window. */
	ago(before, sizeof(before), "0 seconds");
	r = tl_audsync(db, NULL, "run", NULL);
	ck_assert_msg(r.status == 0, "audsync run exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	assert_prop("u1", "order_completed_last_7_days", "false");
	ck_assert_int_eq(run_int("order_completed_last_7_days", "exited"), 1);
	ck_assert_int_eq(run_int("order_completed_last_7_days", "members"), 0);
	assert_run_text("order_completed_last_7_days", "kind", "scheduled");

	/* Run again at once: a lookback sync is due once per clock hour,
	 * so this run adds none. Should the hour turn after the last run,
	 * the next one is due after all: then try again in the new hour. */
	for (tries = 0; tries < 3; tries++) {
		long long runs = sql_int("SELECT count(*) FROM audsync.runs");

		last = sql_text("SELECT max(as_of) FROM audsync.runs");
		ago(before, sizeof(before), "0 seconds");
		r = tl_audsync(db, NULL, "run", NULL);
		ck_assert_msg(r.status == 0, "audsync run exited %d: %s",
			      r.status, r.err);
		tl_result_free(&r);
		same_hour = sql_text("SELECT date_trunc('hour', now()) ="
				     " date_trunc('hour', '%s'::timestamptz)"
				     " AND date_trunc('hour', now()) ="
				     " date_trunc('hour', '%s'::timestamptz)",
				     before, last);
		done = strcmp(same_hour, "t") == 0;
		free(same_hour);
		free(last);
		if (done) {
			ck_assert_int_eq(
				sql_int("SELECT count(*) FROM audsync.runs"),
				runs);
			break;
		}
	}
	ck_assert_int_lt(tries, 3);
}
END_TEST

START_TEST(an_as_of_in_the_future_is_refused)
{
	char *future;
	tl_result r;

	add_two_people();
	add_everyone_audience("Everyone", "everyone");
	future = sql_text("SELECT (now() + interval '1 day')::text");
	r = tl_audsync(db, NULL, "run", "--all", "--as-of", future, NULL);
	ck_assert_msg(r.status == 2, "exit %d, expected 2: %s", r.status,
		      r.err);
	ck_assert_msg(has_any(r.err, "future"), "no reason given: %s", r.err);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.runs"), 0);
	ck_assert_int_eq(COUNTER("records_received"), 0);
	tl_result_free(&r);
	free(future);
}
END_TEST

/* The server's clock stepped back below the last run's as-of: a run
 * without --as-of would tell Mixpanel an older truth, with events dated
 * before the ones it sent. The sync waits for the clock, and says so. */
START_TEST(a_clock_that_stepped_back_holds_the_sync)
{
	tl_result r;

	add_two_people();
	add_everyone_audience("Everyone", "everyone");
	run_ok(NULL);
	tl_sql(db, "UPDATE audsync.sync_state"
		   " SET last_as_of = now() + interval '20 minutes'");
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '1 hour')");
	r = tl_audsync(db, NULL, "run", "--computation", "everyone", NULL);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_msg(has_any(r.err, "clock"), "no word of the clock: %s",
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.runs"), 1);
	assert_prop("u3", "everyone", NULL);
}
END_TEST

START_TEST(a_computation_keeps_its_key_and_kind_when_renamed)
{
	PGconn *c;
	PGresult *res;

	add_two_people();
	add_everyone_audience("Order Completed - Last 30 Days",
			      "order_completed_last_30_days");
	tl_sql(db, "UPDATE audsync.computations SET name = 'Buyers'");
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.computations"
				 " WHERE key = 'order_completed_last_30_days'"
				 " AND name = 'Buyers'"),
			 1);
	c = PQconnectdb(db);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, "UPDATE audsync.computations SET key = 'buyers'");
	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR,
		      "changing a key was accepted");
	PQclear(res);
	/* An audience turned trait would change what its property means. */
	res = PQexec(c, "UPDATE audsync.computations SET kind = 'trait'");
	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR,
		      "changing a kind was accepted");
	ck_assert_ptr_nonnull(strstr(PQresultErrorMessage(res),
				     "keeps its kind \"audience\""));
	PQclear(res);
	PQfinish(c);
	run_ok(NULL);
	assert_prop("u1", "order_completed_last_30_days", "true");
	assert_prop("u1", "buyers", NULL);
}
END_TEST

/* ---- identifiers ------------------------------------------------------ */

START_TEST(a_member_with_three_emails_ends_with_the_newest_as_email)
{
	add_two_people();
	/* inserted neither in created_at nor in alphabetical order */
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'mid@x.com', now() - interval '2 days'),"
		   " ('p1', 'email', 'amy@x.com', now() - interval '1 day'),"
		   " ('p1', 'email', 'zed@x.com', now() - interval '3 days')");
	add_computation("VIP", "audience", "SELECT 'p1' AS profile_id", "NULL",
			0);
	add_sync("vip", "mp", "identify", "all");
	run_ok(NULL);
	ck_assert_int_eq(COUNTER("updates_applied"), 4);
	assert_prop("u1", "vip", "true");
	assert_prop("u1", "$email", "\"amy@x.com\"");
	/* $ignore_time and ip=0: no activity date, no geolocation */
	assert_prop("u1", "$last_seen", NULL);
	assert_prop("u1", "$city", NULL);
	ck_assert(!has_profile("u2"));
	ck_assert_int_eq(run_int("vip", "calls"), 4);
}
END_TEST

START_TEST(a_new_email_on_a_member_gets_the_audience_and_nothing_else)
{
	long long applied;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'old@x.com', now() - interval '50 days')");
	add_everyone_audience("Everyone", "everyone");
	run_ok(NULL);
	assert_prop("u1", "$email", "\"old@x.com\"");
	applied = COUNTER("updates_applied");
	ck_assert_int_eq(applied, 3);

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'new@x.com', now())");
	run_ok(NULL);
	assert_prop("u1", "$email", "\"new@x.com\"");
	assert_prop("u1", "everyone", "true");
	ck_assert_int_eq(COUNTER("updates_applied"), applied + 1);
	ck_assert_int_eq(run_int("everyone", "entered"), 0);
	ck_assert_int_eq(run_int("everyone", "calls"), 1);
}
END_TEST

/* Identity graphs are often loaded late: an email known since five days
 * ago lands in external_ids after the last run. It is still new to
 * Mixpanel. */
START_TEST(an_email_loaded_with_an_older_date_still_gets_the_audience)
{
	char t1[64];
	long long applied;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'old@x.com', now() - interval '50 days')");
	add_everyone_audience("Everyone", "everyone");
	ago(t1, sizeof(t1), "9 days");
	run_ok(t1);
	applied = COUNTER("updates_applied");
	ck_assert_int_eq(applied, 3);

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'late@x.com', now() - interval '5 days')");
	run_ok(NULL);
	assert_prop("u1", "$email", "\"late@x.com\"");
	ck_assert_int_eq(COUNTER("updates_applied"), applied + 1);
}
END_TEST

START_TEST(anonymous_only_profiles_are_skipped_without_include_anonymous)
{
	json_object *st;
	char *v;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'anonymous_id', 'anon-7f3a',"
		   "  now() - interval '3 days'),"
		   " ('p3', 'email', 'p3@x.com', now() - interval '2 days')");
	add_computation("Visitors", "audience",
			"SELECT DISTINCT profile_id FROM audsync.external_ids",
			"NULL", 0);
	add_sync("visitors", "mp", "identify", "all");
	run_ok(NULL);
	assert_prop("u1", "visitors", "true");
	assert_prop("u2", "visitors", "true");
	ck_assert(!has_profile("anon-7f3a"));
	ck_assert(!has_profile("p3@x.com"));
	ck_assert_int_eq(COUNTER("profiles"), 2);
	ck_assert_int_eq(COUNTER("updates_applied"), 2);
	ck_assert_int_eq(run_int("visitors", "members"), 3);
	ck_assert_int_eq(run_int("visitors", "skipped"), 1);
	st = status_of("visitors");
	ck_assert_int_eq(status_int(st, "members"), 3);
	json_object_put(st);
	v = run_text("visitors", "status");
	ck_assert_str_eq(v, "succeeded");
	free(v);
}
END_TEST

START_TEST(anonymous_only_profiles_get_the_audience_when_included)
{
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', now() - interval '9 days'),"
		   " ('p1', 'anonymous_id', 'anon-p1',"
		   "  now() - interval '10 days'),"
		   " ('p3', 'anonymous_id', 'anon-old',"
		   "  now() - interval '3 days'),"
		   " ('p3', 'anonymous_id', 'anon-new',"
		   "  now() - interval '2 days'),"
		   " ('p3', 'email', 'p3@x.com', now() - interval '1 day')");
	add_computation("Visitors", "audience",
			"SELECT DISTINCT profile_id FROM audsync.external_ids",
			"NULL", 1);
	add_sync("visitors", "mp", "identify", "all");
	run_ok(NULL);
	/* p1 has a user_id: its anonymous id is sent at u1 */
	assert_prop("u1", "visitors", "true");
	ck_assert(!has_profile("anon-p1"));
	/* p3 has none: each anonymous id stands for itself, the email
	 * goes to the newest one */
	assert_prop("anon-old", "visitors", "true");
	assert_prop("anon-old", "$email", NULL);
	assert_prop("anon-new", "visitors", "true");
	assert_prop("anon-new", "$email", "\"p3@x.com\"");
	ck_assert_int_eq(COUNTER("profiles"), 3);
	ck_assert_int_eq(COUNTER("updates_applied"), 5);
	ck_assert_int_eq(run_int("visitors", "skipped"), 0);
}
END_TEST

/* p1: u1 and three emails, oldest first. */
static void add_three_emails(void)
{
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', now() - interval '9 days'),"
		   " ('p1', 'email', 'b-second@x.com',"
		   "  now() - interval '2 days'),"
		   " ('p1', 'email', 'c-first@x.com',"
		   "  now() - interval '3 days'),"
		   " ('p1', 'email', 'a-third@x.com',"
		   "  now() - interval '1 day')");
	add_computation("VIP", "audience", "SELECT 'p1' AS profile_id", "NULL",
			0);
}

START_TEST(id_sync_first_sends_only_the_oldest_email)
{
	add_three_emails();
	add_sync("vip", "mp", "identify", "first");
	run_ok(NULL);
	assert_prop("u1", "vip", "true");
	assert_prop("u1", "$email", "\"c-first@x.com\"");
	ck_assert_int_eq(COUNTER("updates_applied"), 2);
}
END_TEST

START_TEST(id_sync_last_sends_only_the_newest_email)
{
	add_three_emails();
	add_sync("vip", "mp", "identify", "last");
	run_ok(NULL);
	assert_prop("u1", "vip", "true");
	assert_prop("u1", "$email", "\"a-third@x.com\"");
	ck_assert_int_eq(COUNTER("updates_applied"), 2);
}
END_TEST

START_TEST(rejected_identifiers_are_skipped_and_counted)
{
	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'undefined', now() - interval '9 days'),"
		   " ('p3', 'user_id', 'null', now() - interval '9 days'),"
		   " ('p4', 'user_id', '', now() - interval '9 days')");
	add_computation("Everyone", "audience",
			"SELECT DISTINCT profile_id FROM audsync.external_ids",
			"NULL", 0);
	add_sync("everyone", "mp", "identify", "all");
	run_ok(NULL);
	assert_prop("u1", "everyone", "true");
	assert_prop("u2", "everyone", "true");
	ck_assert(!has_profile("null"));
	ck_assert(!has_profile(""));
	assert_prop("u1", "$email", NULL);
	ck_assert_int_eq(COUNTER("profiles"), 2);
	ck_assert_int_eq(COUNTER("updates_applied"), 2);
	ck_assert_int_eq(COUNTER("records_rejected"), 0);
	ck_assert_int_eq(run_int("everyone", "members"), 4);
	/* one per identifier: 'undefined', 'null' and '' */
	ck_assert_int_eq(run_int("everyone", "skipped"), 3);
}
END_TEST

/* ---- track mode ------------------------------------------------------- */

/* 'mp' authenticates /import with the API secret in $MIXPANEL_TEST_SECRET. */
static void use_secret(void)
{
	tl_sql(db,
	       "UPDATE audsync.destinations SET secret_env = 'MIXPANEL_TEST_SECRET'"
	       " WHERE name = 'mp'");
}

/* Under systemd the secret comes through LoadCredential=: a file named as
 * secret_env in $CREDENTIALS_DIRECTORY. */
START_TEST(a_secret_comes_from_a_systemd_credential)
{
	char dir[] = "/tmp/audsync-cred-XXXXXX", path[64], envv[64];
	const char *const env[] = { envv, RETRY_ENV, NULL };
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/MIXPANEL_TEST_SECRET", dir);
	snprintf(envv, sizeof(envv), "CREDENTIALS_DIRECTORY=%s", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("test-secret\n", f);
	ck_assert_int_eq(fclose(f), 0);
	use_secret();
	unsetenv("MIXPANEL_TEST_SECRET");
	add_two_people();
	add_computation("Everyone", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("everyone", "mp", "track", "all");
	run_ok_env(env, NULL);
	ck_assert_int_eq(COUNTER("events_stored"), 2);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(track_mode_sends_one_event_per_person_and_resync_no_duplicates)
{
	char t1[64], ms[32], *iid, *t2;
	json_object *p;
	tl_result r;

	use_secret();
	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'a@x.com', now() - interval '30 days'),"
		   " ('p1', 'email', 'b@x.com', now() - interval '20 days'),"
		   " ('p1', 'email', 'c@x.com', now() - interval '10 days');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Subscribed', '{}', now() - interval '5 days'),"
		   " ('p2', 'Subscribed', '{}', now() - interval '5 days')");
	add_computation("Big Spenders", "audience", SUBSCRIBERS_SQL, "NULL", 0);
	add_sync("big_spenders", "mp", "track", "all");
	ago(t1, sizeof(t1), "4 days");

	run_ok_env(secret_env, t1);
	ck_assert_int_eq(COUNTER("events_stored"), 2);
	ck_assert_int_eq(find_events("Audience Entered", "u1", &p), 1);
	snprintf(ms, sizeof(ms), "%lld", epoch_ms(t1));
	assert_event_prop(p, "time", ms);
	assert_event_prop(p, "audience_key", "\"big_spenders\"");
	assert_event_prop(p, "big_spenders", "true");
	assert_event_prop(p, "audience_name", "\"Big Spenders\"");
	assert_event_prop(p, "ip", "0");
	iid = prop_text(p, "$insert_id");
	ck_assert_msg(iid && strlen(iid) > 2, "no $insert_id");
	iid[strlen(iid) - 1] = '\0';
	ck_assert_msg(insert_id_ok(iid + 1), "bad $insert_id %s", iid);
	free(iid);
	json_object_put(p);
	ck_assert_int_eq(find_events("Audience Entered", "u2", NULL), 1);
	ck_assert_int_eq(COUNTER("profiles"), 0);

	/* the same events again, with their first time: Mixpanel drops
	 * them as duplicates */
	r = tl_audsync(db, secret_env, "resync", "--computation",
		       "big_spenders", NULL);
	ck_assert_msg(r.status == 0, "resync exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	assert_run_text("big_spenders", "kind", "full");
	ck_assert_int_eq(COUNTER("records_received"), 4);
	ck_assert_int_eq(COUNTER("duplicates"), 2);
	ck_assert_int_eq(COUNTER("events_stored"), 2);

	/* p2 cancels: one exit event, at the run's as-of time */
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Cancelled', '{}', now() - interval '1 day')");
	run_ok_env(secret_env, NULL);
	ck_assert_int_eq(COUNTER("events_stored"), 3);
	ck_assert_int_eq(find_events("Audience Exited", "u2", &p), 1);
	t2 = run_text("big_spenders", "as_of");
	snprintf(ms, sizeof(ms), "%lld", epoch_ms(t2));
	free(t2);
	assert_event_prop(p, "time", ms);
	assert_event_prop(p, "big_spenders", "false");
	assert_event_prop(p, "audience_key", "\"big_spenders\"");
	json_object_put(p);
	ck_assert_int_eq(find_events("Audience Exited", "u1", NULL), 0);
	ck_assert_int_eq(run_int("big_spenders", "exited"), 1);
}
END_TEST

START_TEST(track_mode_uses_the_destinations_event_names)
{
	char t1[64];

	tl_sql(db, "UPDATE audsync.destinations SET settings ="
		   " '{\"enter_event\": \"Joined VIP\","
		   "   \"exit_event\": \"Left VIP\"}'");
	add_two_people();
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Subscribed', '{}', now() - interval '5 days'),"
		   " ('p1', 'Cancelled', '{}', now() - interval '3 days')");
	add_computation("VIP", "audience", SUBSCRIBERS_SQL, "NULL", 0);
	add_sync("vip", "mp", "track", "all");
	ago(t1, sizeof(t1), "4 days");
	run_ok(t1);
	run_ok(NULL);
	ck_assert_int_eq(find_events("Joined VIP", "u1", NULL), 1);
	ck_assert_int_eq(find_events("Left VIP", "u1", NULL), 1);
	ck_assert_int_eq(find_events("Audience Entered", NULL, NULL), 0);
	ck_assert_int_eq(find_events("Audience Exited", NULL, NULL), 0);
}
END_TEST

START_TEST(trait_changes_in_track_mode_arrive_as_trait_computed_events)
{
	char t1[64], ms[32];
	json_object *p;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Order Completed', '{\"amount\": 10.5}',"
		   "  now() - interval '6 days'),"
		   " ('p1', 'Order Completed', '{\"amount\": 20}',"
		   "  now() - interval '5 days'),"
		   " ('p1', 'Order Completed', '{\"amount\": 4}',"
		   "  now() - interval '1 day')");
	add_computation("Lifetime Value", "trait",
			"SELECT profile_id,"
			" sum((properties->>'amount')::numeric) AS value"
			" FROM audsync.events WHERE ts < $1"
			" GROUP BY profile_id",
			"NULL", 0);
	add_sync("lifetime_value", "mp", "track", "all");
	ago(t1, sizeof(t1), "4 days");
	run_ok(t1);
	ck_assert_int_eq(find_events("Trait Computed", "u1", &p), 1);
	assert_event_prop(p, "trait_key", "\"lifetime_value\"");
	assert_event_prop(p, "lifetime_value", "30.5");
	snprintf(ms, sizeof(ms), "%lld", epoch_ms(t1));
	assert_event_prop(p, "time", ms);
	json_object_put(p);
	ck_assert_int_eq(find_events(NULL, "u2", NULL), 0);

	run_ok(NULL);
	ck_assert_int_eq(find_events("Trait Computed", "u1", NULL), 2);
	ck_assert_int_eq(COUNTER("events_stored"), 2);
	ck_assert_int_eq(run_int("lifetime_value", "changed"), 1);
}
END_TEST

/* ---- SQL traits ------------------------------------------------------- */

START_TEST(sql_trait_columns_become_traits_and_a_leaver_gets_nulls)
{
	long long received;
	tl_result r;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.profile_traits VALUES"
		   " ('p1', '{\"plan\": \"pro\", \"seats\": 5,"
		   "  \"renewed\": \"2024-03-05 10:20:30+02\"}', now()),"
		   " ('p2', '{\"plan\": \"free\", \"seats\": 1}', now())");
	add_computation("Account", "trait",
			"SELECT profile_id, traits->>'plan' AS \"Plan Name\","
			" (traits->>'seats')::int AS seats,"
			" (traits->>'renewed')::timestamptz AS \"Renewed At\""
			" FROM audsync.profile_traits",
			"NULL", 0);
	add_sync("account", "mp", "identify", "all");
	run_ok(NULL);
	assert_prop("u1", "plan_name", "\"pro\"");
	assert_prop("u1", "seats", "5");
	assert_prop("u1", "renewed_at", "\"2024-03-05T08:20:30\"");
	assert_prop("u2", "plan_name", "\"free\"");
	assert_prop("u2", "seats", "1");
	assert_prop("u2", "renewed_at", NULL); /* NULL: no trait */
	assert_prop("u1", "account", NULL);
	/* The same traits again: nothing to send. */
	received = COUNTER("records_received");
	run_ok(NULL);
	ck_assert_int_eq(COUNTER("records_received"), received);
	ck_assert_int_eq(run_int("account", "members"), 2);

	tl_sql(db, "UPDATE audsync.profile_traits SET traits ="
		   " jsonb_set(traits, '{seats}', '7') WHERE profile_id = 'p1';"
		   "DELETE FROM audsync.profile_traits"
		   " WHERE profile_id = 'p2'");
	/* What would go: for u1 only the seats; for u2 every trait. */
	r = tl_audsync(db, NULL, "run", "--all", "--dry-run", NULL);
	ck_assert_msg(r.status == 0, "dry run exited %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "\"u1\""),
		      "the dry run shows no call for u1: %s", r.out);
	ck_assert_msg(
		line_with(r.out, "\"u1\"", "\"seats\":7|\"seats\": 7") &&
			!line_with(r.out, "\"u1\"", "plan_name|renewed_at"),
		"u1 should get only seats: %s", r.out);
	ck_assert_msg(line_with(r.out, "\"u2\"",
				"\"seats\":null|"
				"\"seats\": null") &&
			      line_with(r.out, "\"u2\"",
					"\"plan_name\":null|"
					"\"plan_name\": null"),
		      "u2 should get nulls: %s", r.out);
	tl_result_free(&r);
	assert_prop("u1", "seats", "5"); /* the dry run sent nothing */

	run_ok(NULL);
	assert_prop("u1", "seats", "7");
	assert_prop("u1", "plan_name", "\"pro\"");
	assert_prop("u2", "plan_name", "null");
	assert_prop("u2", "seats", "null");
	ck_assert_int_eq(COUNTER("updates_applied"), 4);
	ck_assert_int_eq(run_int("account", "changed"), 1);
	ck_assert_int_eq(run_int("account", "exited"), 1);
}
END_TEST

/* ---- disabled, retired, resynced -------------------------------------- */

/* p1 in "Everyone", synced; then p2 gets an identifier too. */
static void everyone_then_newcomer(void)
{
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', now() - interval '60 days')");
	add_everyone_audience("Everyone", "everyone");
	run_ok(NULL);
	assert_prop("u1", "everyone", "true");
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p2', 'user_id', 'u2', now() - interval '60 days')");
}

static void check_resumes(const char *disable, const char *enable)
{
	long long received;

	everyone_then_newcomer();
	tl_sql(db, disable);
	received = COUNTER("records_received");
	run_ok(NULL);
	ck_assert_int_eq(COUNTER("records_received"), received);
	ck_assert(!has_profile("u2"));

	tl_sql(db, enable);
	run_ok(NULL);
	assert_prop("u2", "everyone", "true");
	/* only the change since: u1 is not sent again */
	ck_assert_int_eq(COUNTER("records_received"), received + 1);
	ck_assert_int_eq(run_int("everyone", "entered"), 1);
}

START_TEST(a_disabled_sync_sends_nothing_and_resumes_where_it_stopped)
{
	check_resumes("UPDATE audsync.syncs SET enabled = false",
		      "UPDATE audsync.syncs SET enabled = true");
}
END_TEST

START_TEST(a_disabled_computation_sends_nothing_and_resumes_later)
{
	check_resumes("UPDATE audsync.computations SET enabled = false",
		      "UPDATE audsync.computations SET enabled = true");
}
END_TEST

START_TEST(retire_unset_removes_the_property_from_every_profile)
{
	tl_result r;
	long long received;

	add_two_people();
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'email', 'one@x.com', now() - interval '50 days')");
	add_everyone_audience("Everyone", "everyone");
	add_computation("Kept", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("kept", "mp", "identify", "all");
	run_ok(NULL);
	assert_prop("u1", "everyone", "true");

	r = tl_audsync(db, NULL, "retire", "everyone", "--unset", NULL);
	ck_assert_msg(r.status == 0, "retire exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	assert_prop("u1", "everyone", NULL);
	assert_prop("u2", "everyone", NULL);
	assert_prop("u1", "kept", "true");
	assert_prop("u1", "$email", "\"one@x.com\"");
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.computations"
				 " WHERE key = 'everyone' AND NOT enabled"),
			 1);
	received = COUNTER("records_received");
	run_ok(NULL);
	ck_assert_int_eq(COUNTER("records_received"), received);
	assert_prop("u1", "everyone", NULL);
}
END_TEST

START_TEST(retire_without_unset_only_stops_the_sync)
{
	tl_result r;
	long long received;

	add_two_people();
	add_everyone_audience("Everyone", "everyone");
	run_ok(NULL);
	received = COUNTER("records_received");
	r = tl_audsync(db, NULL, "retire", "everyone", NULL);
	ck_assert_msg(r.status == 0, "retire exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	assert_prop("u1", "everyone", "true");
	ck_assert_int_eq(COUNTER("records_received"), received);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.computations"
				 " WHERE key = 'everyone' AND NOT enabled"),
			 1);
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now())");
	run_ok(NULL);
	ck_assert(!has_profile("u3"));
}
END_TEST

START_TEST(resync_sends_everything_again_and_reset_starts_over)
{
	tl_result r;
	long long applied;

	add_two_people();
	add_everyone_audience("Everyone", "everyone");
	run_ok(NULL);
	applied = COUNTER("updates_applied");
	ck_assert_int_eq(applied, 2);

	r = tl_audsync(db, NULL, "resync", "--computation", "everyone", NULL);
	ck_assert_msg(r.status == 0, "resync exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("updates_applied"), 2 * applied);
	assert_prop("u1", "everyone", "true");
	assert_prop("u2", "everyone", "true");
	assert_run_text("everyone", "kind", "full");

	r = tl_audsync(db, NULL, "resync", "--computation", "everyone",
		       "--reset", NULL);
	ck_assert_msg(r.status == 0, "resync --reset exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("updates_applied"), 3 * applied);
	ck_assert_int_eq(run_int("everyone", "entered"), 2);

	/* and the snapshot is whole again: the next run sends nothing */
	run_ok(NULL);
	ck_assert_int_eq(COUNTER("updates_applied"), 3 * applied);
}
END_TEST

/* ---- bad input -------------------------------------------------------- */

/*
 * The bad sync is created first, then "Good Audience" (identify, u1 and
 * u2): a broken definition or destination must fail only its own sync.
 */
static void add_good_audience(void)
{
	add_two_people();
	add_everyone_audience("Good Audience", "good_audience");
}

/*
 * Runs everything and checks the failure is reported as one line naming
 * whos (the computation or destination, '|' alternatives) and one of
 * causes: in the log, in audsync.runs.error of computation key's sync,
 * in audsync status; and that the good audience arrived regardless.
 */
#define assert_bad_input(env, key, whos, causes)                               \
	check_bad_input(__LINE__, env, key, whos, causes)
static void check_bad_input(int line, const char *const *env, const char *key,
			    const char *whos, const char *causes)
{
	tl_result r = tl_audsync(db, env, "run", "--all", NULL);
	json_object *st;
	char *err;

	ck_assert_msg(r.status == 1, "line %d: exit %d, expected 1: %s", line,
		      r.status, r.err);
	ck_assert_msg(line_with(r.err, whos, causes),
		      "line %d: no log line names %s and %s: %s", line, whos,
		      causes, r.err);
	tl_result_free(&r);

	err = run_text(key, "error");
	ck_assert_msg(line_with(err, whos, causes),
		      "line %d: runs.error of %s is %s", line, key,
		      err ? err : "NULL");
	free(err);
	assert_run_text(key, "status", "failed");

	st = status_of(key);
	ck_assert_msg(
		line_with(status_str(st, "error"), whos, causes) ||
			line_with(status_str(st, "problem"), whos, causes),
		"line %d: status of %s: %s", line, key,
		json_object_to_json_string(st));
	json_object_put(st);

	assert_prop("u1", "good_audience", "true");
	assert_prop("u2", "good_audience", "true");
	assert_run_text("good_audience", "status", "succeeded");
}

START_TEST(a_definition_with_a_syntax_error_fails_only_its_sync)
{
	add_computation("Broken Syntax", "audience",
			"SELEKT profile_id FROM audsync.events", "NULL", 0);
	add_sync("broken_syntax", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "broken_syntax", "broken_syntax|Broken Syntax",
			 "syntax");
}
END_TEST

START_TEST(an_audience_without_profile_id_is_reported)
{
	add_computation("No Profile", "audience",
			"SELECT id_value FROM audsync.external_ids", "NULL", 0);
	add_sync("no_profile", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "no_profile", "no_profile|No Profile",
			 "profile_id");
}
END_TEST

START_TEST(a_trait_without_a_value_column_is_reported)
{
	add_computation("No Value", "trait",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("no_value", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "no_value", "no_value|No Value", "value|column");
	ck_assert_int_eq(COUNTER("profiles"), 2);
}
END_TEST

START_TEST(a_trait_with_two_rows_for_one_profile_is_reported)
{
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Viewed', '{}', now() - interval '2 days'),"
		   " ('p1', 'Clicked', '{}', now() - interval '1 day')");
	add_computation("Last Event", "trait",
			"SELECT profile_id, event AS value FROM audsync.events",
			"NULL", 0);
	add_sync("last_event", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "last_event", "last_event|Last Event",
			 "two rows|more than one|duplicate|twice");
	assert_prop("u1", "last_event", NULL);
}
END_TEST

START_TEST(a_definition_past_the_statement_timeout_is_cancelled)
{
	static const char *const env[] = { "AUDSYNC_STATEMENT_TIMEOUT=200ms",
					   NULL };

	add_computation("Slow Query", "audience",
			"SELECT e.profile_id FROM audsync.external_ids e,"
			" pg_sleep(2)",
			"NULL", 0);
	add_sync("slow_query", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(env, "slow_query", "slow_query|Slow Query",
			 "timeout|timed out|cancel");
	assert_prop("u1", "slow_query", NULL);
}
END_TEST

START_TEST(a_definition_that_tries_to_write_is_refused)
{
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Viewed', '{}', now() - interval '2 days'),"
		   " ('p2', 'Viewed', '{}', now() - interval '1 day')");
	add_computation("Deleter", "audience",
			"WITH d AS (DELETE FROM audsync.events"
			" RETURNING profile_id) SELECT profile_id FROM d",
			"NULL", 0);
	add_sync("deleter", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "deleter", "deleter|Deleter",
			 "read-only|read only|write");
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.events"), 2);
	assert_prop("u1", "deleter", NULL);
}
END_TEST

START_TEST(a_destination_without_a_token_is_reported)
{
	add_destination("tokenless", "project_token = NULL");
	add_computation("Lost", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("lost", "tokenless", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "lost", "tokenless", "token");
	assert_prop("u1", "lost", NULL);
}
END_TEST

START_TEST(a_destination_in_an_unknown_region_is_reported)
{
	add_destination("red-planet", "region = 'mars'");
	add_computation("Lost", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("lost", "red-planet", "track", "all");
	add_good_audience();
	assert_bad_input(NULL, "lost", "red-planet", "mars");
	ck_assert_int_eq(COUNTER("events_stored"), 0);
}
END_TEST

START_TEST(a_secret_env_naming_an_unset_variable_is_reported)
{
	add_destination("vault", "secret_env = 'MIXPANEL_TEST_NO_SUCH_SECRET'");
	add_computation("Lost", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("lost", "vault", "track", "all");
	add_good_audience();
	unsetenv("MIXPANEL_TEST_NO_SUCH_SECRET");
	assert_bad_input(NULL, "lost", "vault", "MIXPANEL_TEST_NO_SUCH_SECRET");
	ck_assert_int_eq(COUNTER("events_stored"), 0);
}
END_TEST

START_TEST(an_identify_sync_without_people_asks_to_turn_it_on)
{
	char *err;

	add_destination("events-only", "use_people = false");
	add_computation("Lost", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("lost", "events-only", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "lost", "events-only", "use_people");
	err = run_text("lost", "error");
	ck_assert_msg(has_any(err, "turn it on|turn on|enable|= true"),
		      "the error does not say to turn People on: %s", err);
	free(err);
	assert_prop("u1", "lost", NULL);
}
END_TEST

START_TEST(a_wrong_rule_definition_fails_only_its_sync_naming_its_path)
{
	tl_sql(db, "INSERT INTO audsync.computations (name, kind, definition)"
		   " VALUES ('Rule Based', 'audience',"
		   " '{\"performed\": {\"event\": \"Order Completed\","
		   " \"count\": {\"op\": \"=>\", \"value\": 1}}}')");
	add_sync("rule_based", "mp", "identify", "all");
	add_good_audience();
	assert_bad_input(NULL, "rule_based", "rule_based",
			 "definition.performed.count.op: unknown operator");
}
END_TEST

START_TEST(status_json_shows_each_sync_its_last_run_and_its_problem)
{
	static const char *const fields[] = {
		"sync",	  "computation",  "destination", "mode",    "enabled",
		"run",	  "status",	  "members",	 "entered", "exited",
		"queued", "dead_letters", "error",	 "problem"
	};
	json_object *st, *v;
	size_t i;
	tl_result r;

	add_destination("events-only", "use_people = false");
	add_computation("Lost", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("lost", "events-only", "identify", "all");
	add_good_audience();
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_int_eq(r.status, 1);
	tl_result_free(&r);

	st = status_of("good_audience");
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		ck_assert_msg(json_object_object_get_ex(st, fields[i], &v),
			      "status has no %s: %s", fields[i],
			      json_object_to_json_string(st));
	ck_assert_str_eq(status_str(st, "destination"), "mp");
	ck_assert_str_eq(status_str(st, "mode"), "identify");
	ck_assert_str_eq(status_str(st, "status"), "succeeded");
	ck_assert(
		json_object_get_boolean(json_object_object_get(st, "enabled")));
	ck_assert_int_eq(status_int(st, "members"), 2);
	ck_assert_int_eq(status_int(st, "entered"), 2);
	ck_assert_int_eq(status_int(st, "exited"), 0);
	ck_assert_int_eq(status_int(st, "queued"), 0);
	ck_assert_int_eq(status_int(st, "dead_letters"), 0);
	ck_assert_ptr_null(status_str(st, "error"));
	ck_assert_ptr_null(status_str(st, "problem"));
	json_object_put(st);

	st = status_of("lost");
	ck_assert_str_eq(status_str(st, "destination"), "events-only");
	ck_assert_str_eq(status_str(st, "status"), "failed");
	ck_assert_msg(has_any(status_str(st, "problem"), "use_people"),
		      "problem: %s", json_object_to_json_string(st));
	json_object_put(st);
}
END_TEST

/* ---- delivery faults -------------------------------------------------- */

/* Six people u1..u6, all in "Everyone" (identify) and in "Everyone
 * Events" (track, on a second destination of the same project). */
static void six_people_two_syncs(void)
{
	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || i,"
		   " 'user_id', 'u' || i, now() - interval '60 days'"
		   " FROM generate_series(1, 6) i");
	add_destination("mp-events", NULL);
	add_everyone_audience("Everyone", "everyone");
	add_computation("Everyone Events", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("everyone_events", "mp-events", "track", "all");
}

START_TEST(throttling_and_outages_are_retried_and_all_arrives_once)
{
	json_object *st;

	six_people_two_syncs();
	/* two faults an endpoint: no request can fail all three attempts */
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"429\",\"count\":1,"
					   "\"endpoint\":\"engage\"}"),
			 0);
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"count\":1,"
					   "\"endpoint\":\"engage\"}"),
			 0);
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"429\",\"count\":1,"
					   "\"endpoint\":\"import\"}"),
			 0);
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"502\",\"count\":1,"
					   "\"endpoint\":\"import\"}"),
			 0);
	run_ok_env(retry_env, NULL);
	ck_assert_int_eq(COUNTER("faults_injected"), 4);
	ck_assert_int_eq(COUNTER("updates_applied"), 6);
	ck_assert_int_eq(COUNTER("profiles"), 6);
	ck_assert_int_eq(COUNTER("events_stored"), 6);
	ck_assert_int_eq(COUNTER("duplicates"), 0);
	ck_assert_int_eq(find_events("Audience Entered", "u6", NULL), 1);
	assert_prop("u6", "everyone", "true");
	st = status_of("everyone_events");
	ck_assert_int_eq(status_int(st, "queued"), 0);
	json_object_put(st);
}
END_TEST

START_TEST(an_outage_longer_than_the_retries_keeps_calls_queued)
{
	json_object *st;
	tl_result r;

	six_people_two_syncs();
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"rate\":1.0}"),
			 0);
	r = tl_audsync(db, retry_env, "run", "--all", NULL);
	ck_assert_msg(r.status == 1, "exit %d, expected 1: %s", r.status,
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("profiles"), 0);
	ck_assert_int_eq(COUNTER("events_stored"), 0);
	st = status_of("everyone");
	ck_assert_int_eq(status_int(st, "queued"), 6);
	json_object_put(st);
	st = status_of("everyone_events");
	ck_assert_int_eq(status_int(st, "queued"), 6);
	json_object_put(st);

	ck_assert_int_eq(mpctl_reset(fake), 0); /* Mixpanel is back */
	r = tl_audsync(db, retry_env, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("updates_applied"), 6);
	ck_assert_int_eq(COUNTER("events_stored"), 6);
	assert_prop("u3", "everyone", "true");
	st = status_of("everyone");
	ck_assert_int_eq(status_int(st, "queued"), 0);
	json_object_put(st);
}
END_TEST

START_TEST(wrong_credentials_stop_delivery_without_showing_the_secret)
{
	static const char *const wrong[] = {
		"MIXPANEL_TEST_SECRET=hunter2-wrong-s3cret", RETRY_ENV, NULL
	};
	json_object *st;
	tl_result r;

	use_secret();
	add_two_people();
	add_computation("Everyone", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("everyone", "mp", "track", "all");
	r = tl_audsync(db, wrong, "run", "--all", NULL);
	ck_assert_msg(r.status == 1, "exit %d, expected 1: %s", r.status,
		      r.err);
	ck_assert_msg(has_any(r.err, "credential"),
		      "the log does not mention credentials: %s", r.err);
	ck_assert_msg(!strstr(r.err, "hunter2") && !strstr(r.out, "hunter2"),
		      "the secret was printed: %s", r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("events_stored"), 0);

	r = tl_audsync(db, wrong, "status", "--json", NULL);
	ck_assert_msg(!strstr(r.out, "hunter2") && !strstr(r.err, "hunter2"),
		      "status shows the secret: %s", r.out);
	tl_result_free(&r);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.runs"
				 " WHERE error LIKE '%%hunter2%%'"),
			 0);
	st = status_of("everyone");
	ck_assert_int_eq(status_int(st, "queued"), 2);
	json_object_put(st);

	/* the operator fixes the secret: the queued events go */
	r = tl_audsync(db, secret_env, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("events_stored"), 2);
}
END_TEST

/* Members u1..un the fake does not hold with "everyone": true, or, with
 * emails_every set, without $email e<i>@x.com on every emails_every-th
 * one from u1. */
static int everyone_missing(int n, int emails_every)
{
	json_object *st, *profiles;
	int i, missing = 0;

	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert(json_object_object_get_ex(st, "profiles", &profiles));
	for (i = 1; i <= n; i++) {
		char did[32], want[64];
		json_object *p = NULL, *v = NULL;

		snprintf(did, sizeof(did), "u%d", i);
		snprintf(want, sizeof(want), "e%d@x.com", i);
		if (!json_object_object_get_ex(profiles, did, &p) ||
		    !json_object_object_get_ex(p, "everyone", &v) ||
		    !json_object_get_boolean(v))
			missing++;
		else if (emails_every > 0 && i % emails_every == 1 &&
			 (!json_object_object_get_ex(p, "$email", &v) ||
			  strcmp(json_object_get_string(v), want) != 0))
			missing++;
	}
	json_object_put(st);
	return missing;
}

/* 300 people in audience "everyone", run with a wrong project token:
 * the run exits 1 (the caller frees the result). */
static tl_result run_with_a_wrong_token(void)
{
	tl_result r;

	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, now() - interval '1 day'"
		   " FROM generate_series(1, 300) g");
	add_everyone_audience("Everyone", "everyone");
	tl_sql(db, "UPDATE audsync.destinations"
		   " SET project_token = 'not-the-token'");
	r = tl_audsync(db, retry_env, "run", "--all", NULL);
	ck_assert_msg(r.status == 1, "exit %d, expected 1: %s", r.status,
		      r.err);
	return r;
}

/* A wrong project token makes /engage refuse every update as if each
 * were bad. The client stops halving batches after a streak of refusals
 * (mp_client.c, REJECT_STREAK): a few records become dead letters, the
 * rest stay queued, and the error names the token. Fixed, all arrive. */
START_TEST(a_wrong_project_token_stops_delivery_and_keeps_the_rest_queued)
{
	const int n = 300;
	json_object *st;
	long long dead, queued;
	tl_result r;

	r = run_with_a_wrong_token();
	ck_assert_msg(has_any(r.err, "check the project token"),
		      "the log does not point at the token: %s", r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("updates_applied"), 0);
	dead = sql_int("SELECT count(*) FROM audsync.dead_letters");
	queued = sql_int("SELECT coalesce(sum(n), 0) FROM audsync.outbox");
	ck_assert_int_eq(dead + queued, n);
	ck_assert_msg(dead >= 1 && dead < n / 2,
		      "%lld of %d updates became dead letters", dead, n);
	/* two requests a record is what halving to the end would cost */
	ck_assert_int_lt(COUNTER("requests_engage"), n);
	st = status_of("everyone");
	ck_assert_int_eq(status_int(st, "queued"), queued);
	ck_assert_int_eq(status_int(st, "dead_letters"), dead);
	json_object_put(st);

	tl_sql(db,
	       "UPDATE audsync.destinations SET project_token = 'test-token'");
	r = tl_audsync(db, retry_env, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	r = tl_audsync(db, retry_env, "retry-failed", NULL);
	ck_assert_msg(r.status == 0, "retry-failed exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("updates_applied"), n);
	ck_assert_int_eq(everyone_missing(n, 0), 0);
}
END_TEST

/* Dead letters of a computation retired since stay dead letters:
 * retry-failed sending them would set again, for good, the property
 * retire --unset took off (the ledger that could unset it is gone). */
START_TEST(retry_failed_leaves_the_dead_letters_of_a_retired_computation)
{
	const int n = 300;
	long long dead;
	tl_result r;

	r = run_with_a_wrong_token();
	tl_result_free(&r);
	dead = sql_int("SELECT count(*) FROM audsync.dead_letters");
	ck_assert_int_ge(dead, 1);
	tl_sql(db,
	       "UPDATE audsync.destinations SET project_token = 'test-token'");
	r = tl_audsync(db, retry_env, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	r = tl_audsync(db, retry_env, "retire", "everyone", "--unset", NULL);
	ck_assert_msg(r.status == 0, "retire exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(everyone_missing(n, 0), n);

	r = tl_audsync(db, retry_env, "retry-failed", NULL);
	ck_assert_msg(r.status == 0, "retry-failed exited %d: %s", r.status,
		      r.err);
	ck_assert_int_eq(everyone_missing(n, 0), n);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.dead_letters"),
			 dead);
	ck_assert_msg(line_with(r.err, "dead letters", "retired"),
		      "the log does not say why letters were left: %s", r.err);
	tl_result_free(&r);
}
END_TEST

/* A 401 stops the destination for the rest of that delivery, as the
 * log line says: what was not sent stays queued, the exit status and
 * status --check say so, and the next deliver sends it. */
START_TEST(a_refused_credential_stops_the_rest_of_the_delivery)
{
	const int n = 300;
	long long stored;
	tl_result r;

	use_secret();
	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, now() - interval '1 day'"
		   " FROM generate_series(1, 300) g");
	add_computation("Everyone", "audience",
			"SELECT profile_id FROM audsync.external_ids", "NULL",
			0);
	add_sync("everyone", "mp", "track", "all");
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"401\","
					   "\"count\":1}"),
			 0);
	r = tl_audsync(db, secret_env, "run", "--all", NULL);
	ck_assert_msg(line_with(r.err, "stopped", "credential"),
		      "no stop was logged: %s", r.err);
	ck_assert_msg(r.status == 1, "exit %d after a stop, expected 1: %s",
		      r.status, r.err);
	tl_result_free(&r);
	stored = COUNTER("events_stored");
	ck_assert_int_lt(stored, n);
	ck_assert_int_eq(sql_int("SELECT coalesce(sum(n), 0)"
				 " FROM audsync.outbox"),
			 n - stored);
	r = tl_audsync(db, NULL, "status", "--check", NULL);
	ck_assert_msg(r.status == 2 && has_any(r.out, "stopped"),
		      "status --check exited %d: %s", r.status, r.out);
	tl_result_free(&r);

	r = tl_audsync(db, secret_env, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("events_stored"), n);
}
END_TEST

START_TEST(records_mixpanel_rejects_become_dead_letters_and_can_be_retried)
{
	json_object *st;
	tl_result r;
	long long rejected;
	char *reason;

	six_people_two_syncs();
	tl_sql(db, "DELETE FROM audsync.syncs s USING audsync.computations c"
		   " WHERE c.id = s.computation_id AND c.key = 'everyone'");
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"400-partial\","
					   "\"count\":1}"),
			 0);
	r = tl_audsync(db, retry_env, "run", "--all", NULL);
	ck_assert_msg(r.status == 1, "exit %d, expected 1: %s", r.status,
		      r.err);
	tl_result_free(&r);
	rejected = COUNTER("records_rejected");
	ck_assert_int_ge(rejected, 1);
	ck_assert_int_eq(COUNTER("events_stored"), 6 - rejected);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.dead_letters"),
			 rejected);
	reason = sql_text("SELECT reason FROM audsync.dead_letters LIMIT 1");
	ck_assert_msg(has_any(reason, "rejected by fault injection"),
		      "dead letter reason: %s", reason ? reason : "NULL");
	free(reason);
	st = status_of("everyone_events");
	ck_assert_int_eq(status_int(st, "dead_letters"), rejected);
	ck_assert_int_eq(status_int(st, "queued"), 0);
	json_object_put(st);

	r = tl_audsync(db, retry_env, "retry-failed", NULL);
	ck_assert_msg(r.status == 0, "retry-failed exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(COUNTER("events_stored"), 6);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.dead_letters"),
			 0);
	st = status_of("everyone_events");
	ck_assert_int_eq(status_int(st, "dead_letters"), 0);
	json_object_put(st);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

/* Every profile's value in the fake equals the trait table's, for n
 * profiles; a missing profile or property counts as null. The table is
 * read in one query: one connection per profile made this test slow
 * enough to time out on a loaded machine. */
static int mismatched_scores(int n)
{
	json_object *st, *profiles, *table;
	char *scores = tl_sql_value(db, "SELECT json_object_agg(profile_id,"
					" score)::text FROM scores");
	int i, bad = 0;

	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert(json_object_object_get_ex(st, "profiles", &profiles));
	table = json_tokener_parse(scores);
	ck_assert_msg(table, "scores are not JSON: %s", scores);
	for (i = 1; i <= n; i++) {
		char did[32], pid[32];
		json_object *p = NULL, *v = NULL, *w = NULL;
		const char *got = "null", *want = "null";

		snprintf(did, sizeof(did), "u%d", i);
		snprintf(pid, sizeof(pid), "p%d", i);
		if (json_object_object_get_ex(profiles, did, &p) &&
		    json_object_object_get_ex(p, "score", &v) && v)
			got = json_object_to_json_string(v);
		if (json_object_object_get_ex(table, pid, &w) && w)
			want = json_object_to_json_string(w);
		bad += strcmp(got, want) != 0;
	}
	json_object_put(table);
	json_object_put(st);
	free(scores);
	return bad;
}

START_TEST(many_small_changes_over_many_runs_all_reach_mixpanel)
{
	int round;

	tl_sql(db, "CREATE TABLE scores (profile_id text, score int);"
		   "INSERT INTO scores SELECT 'p' || g, g % 7"
		   " FROM generate_series(1, 600) g;"
		   "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, now() - interval '9 days'"
		   " FROM generate_series(1, 600) g");
	add_computation("Score", "trait",
			"SELECT profile_id, score AS value FROM scores", "NULL",
			0);
	add_sync("score", "mp", "identify", "all");
	run_ok(NULL);
	ck_assert_int_eq(mismatched_scores(600), 0);
	/* Changes of every kind, a few at a time, as in an hourly churn:
	 * new values, profiles leaving (NULL), profiles coming back. */
	for (round = 1; round <= 4; round++) {
		char sql[256];

		snprintf(
			sql, sizeof(sql),
			"SELECT setseed(0.%d);"
			"UPDATE scores SET score = CASE"
			" WHEN random() < 0.3 THEN NULL"
			" ELSE (random() * 5)::int END"
			" WHERE random() < 0.03 OR score IS NULL AND %d %% 2 = 0",
			round, round);
		tl_sql(db, sql);
		run_ok(NULL);
		ck_assert_msg(mismatched_scores(600) == 0,
			      "round %d: profiles differ from the trait",
			      round);
	}
}
END_TEST

/* More changed profiles than the engine looks identifiers up for by a
 * list (calls.c, ID_LIST_MAX) take the join with the whole table: every
 * one of them arrives all the same, each with its email. A snapshot that
 * size is analyzed by the run that wrote it, before the next run diffs
 * it (sync.c). */
START_TEST(a_first_sync_of_fifty_thousand_members_reaches_every_one)
{
	/* PostgreSQL's default, which the tests' server turns off: a row is
	 * known visible to all (and its page can be marked so) once the
	 * commit that wrote it is on disk. */
	static const char *const durable[] = {
		"PGOPTIONS=-c synchronous_commit=on", NULL
	};
	long long applied, analyzed;
	int n = 50100;

	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, now() - interval '9 days'"
		   " FROM generate_series(1, 50100) g;"
		   "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'email', 'e' || g || '@x.com', now() - interval '8 days'"
		   " FROM generate_series(1, 50100, 50) g;"
		   /* as before autovacuum comes, whenever it would */
		   "ALTER TABLE audsync.snapshot_members"
		   " SET (autovacuum_enabled = false)");
	add_everyone_audience("Everyone", "everyone");
	run_ok_env(durable, NULL);
	ck_assert_int_eq(run_int("everyone", "entered"), n);
	ck_assert_int_eq(mpctl_counter(fake, "updates_applied"), n + n / 50);
	ck_assert_int_eq(everyone_missing(n, 50), 0);
	/* The run that wrote the snapshot refreshed its statistics before it
	 * ended: the next run plans its join with them and does not pay for
	 * them (it diffs the fifty thousand; the three newcomers enter,
	 * nothing else is sent). */
	analyzed = tl_sql_int(db, "SELECT analyze_count FROM"
				  " pg_stat_user_tables WHERE relname ="
				  " 'snapshot_members'");
	ck_assert_msg(analyzed == 1,
		      "after a first sync of %d members the snapshot's "
		      "statistics were taken %lld times",
		      n, analyzed);
	/* ... and vacuumed it: the next run reads its members from the key's
	 * index alone, not every row's page to learn it is visible. */
	ck_assert_int_eq(tl_sql_int(db,
				    "SELECT (relallvisible * 10 >="
				    " relpages * 9)::int FROM pg_class"
				    " WHERE oid ="
				    " 'audsync.snapshot_members'::regclass"),
			 1);
	applied = mpctl_counter(fake, "updates_applied");
	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, now() - interval '1 day'"
		   " FROM generate_series(60001, 60003) g");
	run_ok(NULL);
	ck_assert_int_eq(mpctl_counter(fake, "updates_applied") - applied, 3);
	ck_assert_int_eq(run_int("everyone", "entered"), 3);
	ck_assert_int_eq(run_int("everyone", "members"), n + 3);
	ck_assert_int_eq(tl_sql_int(db, "SELECT analyze_count FROM"
					" pg_stat_user_tables WHERE relname ="
					" 'snapshot_members'"),
			 analyzed);
	/* From a sample of 3 000 rows, a tenth of the default: every column
	 * asks for no more (sql/006_snapshot_statistics.sql), or the one
	 * that does sets the sample for all. */
	ck_assert_int_eq(tl_sql_int(db,
				    "SELECT count(*) FROM pg_attribute"
				    " WHERE attrelid ="
				    " 'audsync.snapshot_members'::regclass"
				    " AND attnum > 0 AND NOT attisdropped"
				    " AND attstattarget IS DISTINCT FROM 10"),
			 0);
}
END_TEST

/* A database whose own order of text is not the bytes' (ICU's English):
 * each profile still gets its own identifiers, however the server sorts
 * them ('B' after 'a' there, before it byte by byte). */
START_TEST(a_database_with_its_own_text_order_gets_every_id_right)
{
	static const char *const ids[] = { "a", "B", "_c", "ä", "Z", "b", "A" };
	char did[16], email[32];
	size_t i;

	db = tl_new_db_with("TEMPLATE template0 LOCALE_PROVIDER icu"
			    " ICU_LOCALE 'en-US' LOCALE 'C'");
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		sqlf("INSERT INTO audsync.external_ids VALUES"
		     " ('%s', 'user_id', 'u-%s', now() - interval '60 days'),"
		     " ('%s', 'email', '%zu@x.com', now() - interval '9 days')",
		     ids[i], ids[i], ids[i], i);
	add_computation("Everyone", "audience",
			"SELECT DISTINCT profile_id FROM audsync.external_ids",
			"NULL", 0);
	add_sync("everyone", "mp", "identify", "all");
	run_ok(NULL);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		snprintf(did, sizeof(did), "u-%s", ids[i]);
		snprintf(email, sizeof(email), "\"%zu@x.com\"", i);
		assert_prop(did, "everyone", "true");
		assert_prop(did, "$email", email);
	}
	ck_assert_int_eq(run_int("everyone", "entered"), 7);
}
END_TEST

static Suite *sync_suite(void)
{
	const TTest *tests[] = {
		first_sync_sets_the_audience_on_every_member,
		many_small_changes_over_many_runs_all_reach_mixpanel,
		a_first_sync_of_fifty_thousand_members_reaches_every_one,
		a_database_with_its_own_text_order_gets_every_id_right,
		members_who_leave_get_false_and_newcomers_get_true,
		an_exit_reaches_the_distinct_id_the_member_was_given,
		a_run_without_changes_sends_nothing,
		a_member_named_by_many_rows_is_one_member_entered_once,
		a_lookback_audience_lets_members_go_as_time_passes,
		an_as_of_in_the_future_is_refused,
		a_clock_that_stepped_back_holds_the_sync,
		a_computation_keeps_its_key_and_kind_when_renamed,
		a_member_with_three_emails_ends_with_the_newest_as_email,
		a_new_email_on_a_member_gets_the_audience_and_nothing_else,
		an_email_loaded_with_an_older_date_still_gets_the_audience,
		anonymous_only_profiles_are_skipped_without_include_anonymous,
		anonymous_only_profiles_get_the_audience_when_included,
		id_sync_first_sends_only_the_oldest_email,
		id_sync_last_sends_only_the_newest_email,
		rejected_identifiers_are_skipped_and_counted,
		track_mode_sends_one_event_per_person_and_resync_no_duplicates,
		track_mode_uses_the_destinations_event_names,
		trait_changes_in_track_mode_arrive_as_trait_computed_events,
		sql_trait_columns_become_traits_and_a_leaver_gets_nulls,
		a_disabled_sync_sends_nothing_and_resumes_where_it_stopped,
		a_disabled_computation_sends_nothing_and_resumes_later,
		retire_unset_removes_the_property_from_every_profile,
		retire_without_unset_only_stops_the_sync,
		resync_sends_everything_again_and_reset_starts_over,
		a_definition_with_a_syntax_error_fails_only_its_sync,
		an_audience_without_profile_id_is_reported,
		a_trait_without_a_value_column_is_reported,
		a_trait_with_two_rows_for_one_profile_is_reported,
		a_definition_past_the_statement_timeout_is_cancelled,
		a_definition_that_tries_to_write_is_refused,
		a_destination_without_a_token_is_reported,
		a_destination_in_an_unknown_region_is_reported,
		a_secret_env_naming_an_unset_variable_is_reported,
		a_secret_comes_from_a_systemd_credential,
		an_identify_sync_without_people_asks_to_turn_it_on,
		status_json_shows_each_sync_its_last_run_and_its_problem,
		a_wrong_rule_definition_fails_only_its_sync_naming_its_path,
		throttling_and_outages_are_retried_and_all_arrives_once,
		an_outage_longer_than_the_retries_keeps_calls_queued,
		wrong_credentials_stop_delivery_without_showing_the_secret,
		records_mixpanel_rejects_become_dead_letters_and_can_be_retried,
		a_wrong_project_token_stops_delivery_and_keeps_the_rest_queued,
		retry_failed_leaves_the_dead_letters_of_a_retired_computation,
		a_refused_credential_stops_the_rest_of_the_delivery,
	};
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("end to end");
	size_t i;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(sync_suite());
}
