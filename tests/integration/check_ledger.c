/* check_ledger.c - the ledger of what each distinct_id was told, end to
 * end: one test per case of the identity edges it fixes */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static mpctl *fake;
static const char *db;
static const char *const env[] = { "MIXPANEL_MP_SECRET=test-secret",
				   "AUDSYNC_RETRY_BASE_MS=20",
				   "AUDSYNC_RETRY_JITTER_MS=5",
				   "AUDSYNC_MAX_ATTEMPTS=2", NULL };

/* Members: profiles whose latest "Set" event (at or before the as-of)
 * has a property v; a trait's value is v. */
#define LATEST                                                                 \
	" FROM (SELECT DISTINCT ON (profile_id) profile_id, properties"        \
	" FROM audsync.events WHERE event = 'Set' AND ts <= $1"                \
	" ORDER BY profile_id, ts DESC) x WHERE properties ? 'v'"
#define AUDIENCE_SQL "SELECT profile_id" LATEST
#define TRAIT_SQL    "SELECT profile_id, (properties->>'v')::int AS value" LATEST
#define TWO_SQL                                                                \
	"SELECT profile_id, (properties->>'v')::int AS score,"                 \
	" (properties->>'w')::int AS tier" LATEST

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_sql(db,
	       "UPDATE audsync.destinations SET secret_env = 'MIXPANEL_MP_SECRET'");
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

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	tl_sql(db, sql);
}

/* A computation "Model" (key model) and its sync to mp. */
static void add_sync(const char *kind, const char *sql, int anon,
		     const char *mode, const char *id_sync)
{
	sqlf("INSERT INTO audsync.computations (name, kind, definition_sql,"
	     " include_anonymous) VALUES ('Model', '%s', $d$%s$d$, %s)",
	     kind, sql, anon ? "true" : "false");
	sqlf("INSERT INTO audsync.syncs (computation_id, destination_id, mode,"
	     " id_sync) SELECT c.id, d.id, '%s', '%s'"
	     " FROM audsync.computations c, audsync.destinations d",
	     mode, id_sync);
}

/* An identifier created `ago` before now. */
static void add_id(const char *profile, const char *type, const char *value,
		   const char *ago)
{
	sqlf("INSERT INTO audsync.external_ids VALUES ('%s', '%s', '%s',"
	     " now() - interval '%s')",
	     profile, type, value, ago);
}

/* A "Set" event `ago` before now: props '{}' makes a non-member. */
static void set(const char *profile, const char *props, const char *ago)
{
	sqlf("INSERT INTO audsync.events VALUES ('%s', 'Set', '%s',"
	     " now() - interval '%s')",
	     profile, props, ago);
}

static void audsync_ok(const char *const *args)
{
	tl_result r = tl_audsync_argv(db, env, args);

	ck_assert_msg(r.status == 0, "audsync %s exited %d: %s", args[0],
		      r.status, r.err);
	tl_result_free(&r);
}

/* audsync run at now - ago. */
static void run_ago(const char *ago)
{
	char sql[200], *ts;
	const char *args[] = { "run", "--all", "--as-of", NULL, NULL };

	snprintf(sql, sizeof(sql),
		 "SELECT date_trunc('second', now() - interval '%s')::text",
		 ago);
	ts = tl_sql_value(db, sql);
	args[3] = ts;
	audsync_ok(args);
	free(ts);
}

#define assert_prop(did, name, want) check_prop(__LINE__, did, name, want)
static void check_prop(int line, const char *did, const char *name,
		       const char *want)
{
	char *v = mpctl_prop(fake, did, name);
	int ok = want ? v && strcmp(v, want) == 0 : v == NULL;

	ck_assert_msg(ok, "line %d: profile %s has %s = %s, expected %s", line,
		      did, name, v ? v : "(absent)", want ? want : "(absent)");
	free(v);
}

/* The events stored for did named event. */
static int events(const char *event, const char *did)
{
	int n = mpctl_events(fake, event, did, NULL, NULL);

	ck_assert_int_ge(n, 0);
	return n;
}

/* The events stored for did that told key the value (JSON text). */
static int trait_events(const char *did, const char *key, const char *value)
{
	int n = mpctl_events(fake, NULL, did, key, value);

	ck_assert_int_ge(n, 0);
	return n;
}

#define COUNTER(name) ((long long)mpctl_counter(fake, name))

/* A resync of "model" re-sends what Mixpanel holds: duplicates only, so
 * the fake stores no new event. */
static void assert_resync_stores_nothing(void)
{
	const char *resync[] = { "resync", "--computation", "model", NULL };
	long long stored = COUNTER("events_stored");

	audsync_ok(resync);
	ck_assert_int_eq(COUNTER("events_stored"), stored);
}

/* Issue case 1: an anonymous-only member with two anonymous ids and an
 * email gets its exit on every distinct_id it entered on. */
START_TEST(an_exit_reaches_every_anonymous_distinct_id)
{
	add_sync("audience", AUDIENCE_SQL, 1, "track", "all");
	add_id("p1", "anonymous_id", "anon-1", "30 days");
	add_id("p1", "anonymous_id", "anon-2", "20 days");
	add_id("p1", "email", "p1@x.io", "10 days");
	set("p1", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	ck_assert_int_eq(events("Audience Entered", "anon-1"), 1);
	ck_assert_int_eq(events("Audience Entered", "anon-2"), 1);
	set("p1", "{}", "3 days");
	run_ago("2 days");
	ck_assert_int_eq(events("Audience Exited", "anon-1"), 1);
	ck_assert_int_eq(events("Audience Exited", "anon-2"), 1);
}
END_TEST

/* Issue case 2: id_sync last; the anonymous id no longer chosen gets the
 * exit value. */
START_TEST(the_distinct_id_id_sync_stops_choosing_gets_the_exit)
{
	add_sync("audience", AUDIENCE_SQL, 1, "identify", "last");
	add_id("p1", "anonymous_id", "anon-1", "30 days");
	set("p1", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	assert_prop("anon-1", "model", "true");
	add_id("p1", "anonymous_id", "anon-2", "3 days");
	run_ago("2 days");
	assert_prop("anon-2", "model", "true");
	assert_prop("anon-1", "model", "false");
}
END_TEST

/* The operator changes which identifiers a sync sends to (id_sync, then
 * include_anonymous): the next run sends the exit value to the
 * distinct_ids no longer chosen, as if each profile's identity had
 * changed, with no resync asked for. */
START_TEST(a_changed_id_sync_or_include_anonymous_takes_effect_at_the_next_run)
{
	add_sync("audience", AUDIENCE_SQL, 1, "identify", "all");
	add_id("p1", "anonymous_id", "anon-1", "30 days");
	add_id("p1", "anonymous_id", "anon-2", "20 days");
	set("p1", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	assert_prop("anon-1", "model", "true");
	assert_prop("anon-2", "model", "true");
	tl_sql(db, "UPDATE audsync.syncs SET id_sync = 'last'");
	run_ago("3 days");
	assert_prop("anon-1", "model", "false");
	assert_prop("anon-2", "model", "true");
	tl_sql(db, "UPDATE audsync.computations SET include_anonymous = false");
	run_ago("2 days");
	assert_prop("anon-2", "model", "false");
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE kind = 'full'"),
			 2);
}
END_TEST

/* Two computations may not share a key, nor write one Mixpanel property
 * through their columns: the trait whose column another one already
 * sends fails alone, naming it, and the property keeps the first one's
 * value; a new computation named after such a column is refused. */
START_TEST(two_computations_never_write_one_property)
{
	tl_result r;
	char *why;

	add_id("p1", "user_id", "u1", "30 days");
	sqlf("INSERT INTO audsync.computations (name, kind, definition_sql)"
	     " VALUES ('First', 'trait', 'SELECT profile_id, 1 AS shared,"
	     " 2 AS own_a FROM audsync.external_ids');"
	     " INSERT INTO audsync.syncs (computation_id, destination_id,"
	     " mode) SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.key = 'first'");
	run_ago("3 days");
	assert_prop("u1", "shared", "1");
	sqlf("INSERT INTO audsync.computations (name, kind, definition_sql)"
	     " VALUES ('Second', 'trait', 'SELECT profile_id, 9 AS shared,"
	     " 3 AS own_b FROM audsync.external_ids');"
	     " INSERT INTO audsync.syncs (computation_id, destination_id,"
	     " mode) SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.key = 'second'");
	r = tl_audsync(db, env, "run", "--all", NULL);
	ck_assert_msg(r.status == 1, "run exited %d: %s", r.status, r.err);
	ck_assert_msg(
		tl_contains(r.err, "shared") && tl_contains(r.err, "first"),
		"the error does not name the key and its owner: %s", r.err);
	tl_result_free(&r);
	assert_prop("u1", "shared", "1");
	assert_prop("u1", "own_a", "2");
	assert_prop("u1", "own_b", NULL);
	why = tl_sql_value(
		db,
		"CREATE FUNCTION pg_temp.try() RETURNS text LANGUAGE plpgsql"
		" AS $f$ BEGIN INSERT INTO audsync.computations (name, kind,"
		" definition_sql) VALUES ('Own A', 'audience', 'SELECT"
		" profile_id FROM audsync.external_ids'); RETURN 'taken';"
		" EXCEPTION WHEN others THEN RETURN SQLERRM; END $f$;"
		" SELECT pg_temp.try()");
	ck_assert_msg(why && tl_contains(why, "own_a") &&
			      tl_contains(why, "first"),
		      "a computation named after a column another one sends: "
		      "%s",
		      why ? why : "(null)");
	free(why);
	/* Retired, the first trait leaves its columns to the second. */
	r = tl_audsync(db, env, "retire", "first", NULL);
	ck_assert_msg(r.status == 0, "retire exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	run_ago("1 day");
	assert_prop("u1", "shared", "9");
	assert_prop("u1", "own_b", "3");
}
END_TEST

/* A trait with a column a second trait also has, "shared", to mp. */
static void add_trait(const char *name, const char *cols, const char *dest)
{
	sqlf("INSERT INTO audsync.computations (name, kind, definition_sql)"
	     " VALUES ('%s', 'trait', 'SELECT profile_id, %s"
	     " FROM audsync.external_ids');"
	     " INSERT INTO audsync.syncs (computation_id, destination_id,"
	     " mode) SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.name = '%s' AND d.name = '%s'",
	     name, cols, name, dest);
}

/* Profiles live in one project: two traits may send a column of one
 * name to two destinations. */
START_TEST(two_destinations_may_each_take_a_column_of_one_name)
{
	tl_result r;

	add_id("p1", "user_id", "u1", "30 days");
	sqlf("INSERT INTO audsync.destinations (name, api_base, project_token,"
	     " use_people) SELECT 'other', api_base, project_token, true"
	     " FROM audsync.destinations WHERE name = 'mp'");
	add_trait("First", "1 AS shared, 2 AS own_a", "mp");
	add_trait("Second", "9 AS shared, 3 AS own_b", "other");
	r = tl_audsync(db, env, "run", "--all", NULL);
	ck_assert_msg(r.status == 0, "run exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	assert_prop("u1", "own_a", "2");
	assert_prop("u1", "own_b", "3");
}
END_TEST

/* Two runs at once of two traits with one column: one claims it, the
 * other fails, and Mixpanel holds the owner's value. */
START_TEST(two_traits_racing_for_a_column_leave_it_to_one)
{
	const char *const a[] = { "run", "--computation", "race_a", NULL };
	const char *const b[] = { "run", "--computation", "race_b", NULL };
	char *owner, want[8];
	pid_t pa, pb;
	int sa, sb;

	add_id("p1", "user_id", "u1", "30 days");
	add_trait("Race A", "1 AS shared, pg_sleep(1)::text AS a_wait", "mp");
	add_trait("Race B", "2 AS shared, pg_sleep(1)::text AS b_wait", "mp");
	pa = tl_audsync_spawn(db, env, a);
	pb = tl_audsync_spawn(db, env, b);
	ck_assert(waitpid(pa, &sa, 0) == pa && waitpid(pb, &sb, 0) == pb);
	ck_assert_msg(WIFEXITED(sa) && WIFEXITED(sb) &&
			      WEXITSTATUS(sa) + WEXITSTATUS(sb) == 1,
		      "exits %d and %d: exactly one run should fail",
		      WEXITSTATUS(sa), WEXITSTATUS(sb));
	owner = tl_sql_value(db, "SELECT c.key FROM audsync.computation_keys k"
				 " JOIN audsync.computations c"
				 " ON c.id = k.computation_id"
				 " WHERE k.key = 'shared'");
	ck_assert_msg(owner && strcmp(owner, WEXITSTATUS(sa) ? "race_b"
							     : "race_a") == 0,
		      "shared is claimed by %s", owner ? owner : "nobody");
	snprintf(want, sizeof(want), "%d", WEXITSTATUS(sa) ? 2 : 1);
	assert_prop("u1", "shared", want);
	free(owner);
}
END_TEST

/* Issue case 3: retire --unset reaches former members and profiles whose
 * trait went null, not only current members. */
START_TEST(retire_unset_reaches_former_members_and_null_traits)
{
	const char *retire[] = { "retire", "model", "--unset", NULL };

	add_sync("trait", TRAIT_SQL, 0, "identify", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p2", "user_id", "u2", "30 days");
	set("p1", "{\"v\": 1}", "5 days");
	set("p2", "{\"v\": 2}", "5 days");
	run_ago("4 days");
	set("p2", "{}", "3 days");
	run_ago("2 days");
	assert_prop("u2", "model", "null");
	audsync_ok(retire);
	assert_prop("u1", "model", NULL);
	assert_prop("u2", "model", NULL);
}
END_TEST

/* Issue case 4: an email backfilled with an old created_at does not
 * become the address of record over the newer one. */
START_TEST(a_backfilled_email_does_not_become_the_address)
{
	add_sync("audience", AUDIENCE_SQL, 0, "identify", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p1", "email", "new@x.io", "10 days");
	set("p1", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	assert_prop("u1", "$email", "\"new@x.io\"");
	add_id("p1", "email", "old@x.io", "100 days");
	run_ago("2 days");
	assert_prop("u1", "$email", "\"new@x.io\"");
	assert_prop("u1", "model", "true");
}
END_TEST

/* Issue case 6: a dead-lettered true does not land after the newer
 * false when the dead letters are retried. The dead letter is the
 * first run's update, as a rejection would have left it. */
START_TEST(retry_failed_does_not_resend_a_superseded_update)
{
	const char *retry[] = { "retry-failed", NULL };

	add_sync("audience", AUDIENCE_SQL, 0, "identify", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p2", "user_id", "u2", "30 days");
	set("p1", "{\"v\": 1}", "5 days");
	set("p2", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	set("p1", "{}", "3 days");
	run_ago("2 days");
	assert_prop("u1", "model", "false");
	tl_sql(db, "INSERT INTO audsync.dead_letters (destination_id,"
		   " sync_id, run_id, lane, endpoint, record, reason)"
		   " SELECT s.destination_id, s.id, 1, 0, 0, r, 'rejected'"
		   " FROM audsync.syncs s, unnest(ARRAY["
		   " '{\"$token\":\"test-token\",\"$distinct_id\":\"u1\","
		   "\"$ignore_time\":true,\"$set\":{\"model\":true}}',"
		   " '{\"$token\":\"test-token\",\"$distinct_id\":\"u9\","
		   "\"$ignore_time\":true,\"$set\":{\"model\":true}}']) r");
	audsync_ok(retry);
	{
		const char *deliver[] = { "deliver", NULL };

		audsync_ok(deliver);
	}
	assert_prop("u1", "model", "false");
	/* a letter the ledger knows nothing of goes as it was */
	assert_prop("u9", "model", "true");
}
END_TEST

/* Issue case 7: a resync of a two-column trait in track mode re-sends
 * each key with the time it was told at: only duplicates. */
START_TEST(resync_of_a_two_column_trait_in_track_mode_sends_duplicates)
{
	add_sync("trait", TWO_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "30 days");
	set("p1", "{\"v\": 1, \"w\": 1}", "5 days");
	run_ago("4 days");
	set("p1", "{\"v\": 2, \"w\": 1}", "3 days");
	run_ago("2 days");
	ck_assert_int_eq(COUNTER("events_stored"), 3);
	assert_resync_stores_nothing();
}
END_TEST

/* Sets name = value (JSON text) on did in the fake, as someone other
 * than audsync would. */
static void drift(const char *did, const char *name, const char *value)
{
	char json[300];

	snprintf(json, sizeof(json),
		 "[{\"$token\":\"test-token\",\"$distinct_id\":\"%s\","
		 "\"$set\":{\"%s\":%s}}]",
		 did, name, value);
	ck_assert_int_eq(mpctl_engage(fake, json), 0);
	assert_prop(did, name, value);
}

/* A resync repairs what Mixpanel lost of an exit too: a former
 * member's distinct_id, changed behind audsync's back, is told false
 * again; the members are told true. */
START_TEST(resync_re_sends_a_former_members_exit_value)
{
	const char *resync[] = { "resync", "--computation", "model", NULL };

	add_sync("audience", AUDIENCE_SQL, 0, "identify", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p3", "user_id", "u3", "30 days");
	set("p1", "{\"v\": 1}", "5 days");
	set("p3", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	set("p3", "{}", "3 days");
	run_ago("2 days");
	assert_prop("u3", "model", "false");
	drift("u3", "model", "true");
	drift("u1", "model", "false");
	audsync_ok(resync);
	assert_prop("u3", "model", "false");
	assert_prop("u1", "model", "true");
}
END_TEST

/* Likewise a trait's null: a former member's, and a member's key that
 * went null. */
START_TEST(resync_re_sends_a_traits_null)
{
	const char *resync[] = { "resync", "--computation", "model", NULL };

	add_sync("trait", TWO_SQL, 0, "identify", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p2", "user_id", "u2", "30 days");
	set("p1", "{\"v\": 1, \"w\": 1}", "5 days");
	set("p2", "{\"v\": 2, \"w\": 2}", "5 days");
	run_ago("4 days");
	set("p1", "{\"v\": 3}", "3 days");
	set("p2", "{}", "3 days");
	run_ago("2 days");
	assert_prop("u1", "tier", "null");
	assert_prop("u2", "score", "null");
	drift("u1", "tier", "7");
	drift("u2", "score", "7");
	audsync_ok(resync);
	assert_prop("u1", "score", "3");
	assert_prop("u1", "tier", "null");
	assert_prop("u2", "score", "null");
	assert_prop("u2", "tier", "null");
}
END_TEST

/* In track mode a resync re-sends the former member's Audience Exited
 * with the time it was told at: a duplicate, as the member's Audience
 * Entered is. */
START_TEST(resync_in_track_mode_re_sends_the_exit_as_a_duplicate)
{
	long long dups;

	add_sync("audience", AUDIENCE_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p3", "user_id", "u3", "30 days");
	set("p1", "{\"v\": 1}", "5 days");
	set("p3", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	set("p3", "{}", "3 days");
	run_ago("2 days");
	ck_assert_int_eq(events("Audience Exited", "u3"), 1);
	dups = COUNTER("duplicates");
	assert_resync_stores_nothing();
	/* u1's entry and u3's exit */
	ck_assert_int_eq(COUNTER("duplicates"), dups + 2);
	ck_assert_int_eq(events("Audience Exited", "u3"), 1);
}
END_TEST

/* And a trait's null: the former member's and the member's key. */
START_TEST(resync_in_track_mode_re_sends_a_traits_null_as_a_duplicate)
{
	long long dups;

	add_sync("trait", TWO_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p2", "user_id", "u2", "30 days");
	set("p1", "{\"v\": 1, \"w\": 1}", "5 days");
	set("p2", "{\"v\": 2, \"w\": 2}", "5 days");
	run_ago("4 days");
	set("p1", "{\"v\": 3}", "3 days");
	set("p2", "{}", "3 days");
	run_ago("2 days");
	/* 4 values, then u1's score and tier, u2's two nulls */
	ck_assert_int_eq(COUNTER("events_stored"), 8);
	dups = COUNTER("duplicates");
	assert_resync_stores_nothing();
	ck_assert_int_eq(COUNTER("duplicates"), dups + 4);
}
END_TEST

/* A member re-decided without a change of value (it gained an
 * identifier) keeps the time it was told at, so a resync re-sends its
 * Audience Entered as a duplicate rather than as a second event. */
START_TEST(a_member_that_gains_an_identifier_keeps_its_time)
{
	add_sync("audience", AUDIENCE_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "30 days");
	set("p1", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	add_id("p1", "email", "u1@example.com", "3 days");
	run_ago("2 days");
	ck_assert_int_eq(events("Audience Entered", "u1"), 1);
	assert_resync_stores_nothing();
	ck_assert_int_eq(events("Audience Entered", "u1"), 1);
}
END_TEST

/* An upgrade sends nothing: a ledger written before 010 (three-field
 * lines) reads as what it told. */
START_TEST(a_ledger_of_the_old_format_sends_nothing_new)
{
	long long received;

	add_sync("audience", AUDIENCE_SQL, 0, "identify", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p1", "email", "p1@x.io", "20 days");
	set("p1", "{\"v\": 1}", "5 days");
	run_ago("4 days");
	/* what a run before 010 wrote */
	tl_sql(db, "UPDATE audsync.snapshot_members SET targets ="
		   " E'user_id\\tu1\\tu1\\nemail\\tp1@x.io\\tu1'");
	received = COUNTER("records_received");
	add_id("p1", "anonymous_id", "anon-1", "1 day");
	run_ago("2 days");
	ck_assert_int_eq(COUNTER("records_received"), received);
	set("p1", "{}", "1 day");
	run_ago("1 hour");
	assert_prop("u1", "model", "false");
}
END_TEST

/* A user_id moves from one member's profile to another's (identity
 * resolution merged them): it is the newer profile's distinct_id now, a
 * member's, so it stays true. The profile it left must not tell it the
 * exit value, whichever of the two the run decides first; a resync
 * keeps it so. */
START_TEST(a_user_id_merged_into_another_member_keeps_its_value)
{
	const char *resync[] = { "resync", "--computation", "model", NULL };

	add_sync("audience", AUDIENCE_SQL, 0, "identify", "all");
	add_id("pA", "user_id", "uA", "30 days");
	add_id("pB", "user_id", "uB", "20 days");
	set("pA", "{\"v\": 1}", "10 days");
	set("pB", "{\"v\": 1}", "10 days");
	run_ago("9 days");
	assert_prop("uB", "model", "true");
	/* pB merged into pA, which comes first in the run's order */
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'pA'"
		   " WHERE profile_id = 'pB'");
	tl_sql(db, "UPDATE audsync.events SET profile_id = 'pA'"
		   " WHERE profile_id = 'pB'");
	run_ago("8 days");
	assert_prop("uB", "model", "true");
	audsync_ok(resync);
	assert_prop("uB", "model", "true");
}
END_TEST

/* The same in track mode, the user_id moving to a profile that comes
 * later in the run's order: its distinct_id is not told it exited. */
START_TEST(a_user_id_merged_into_a_later_member_gets_no_exit_event)
{
	add_sync("audience", AUDIENCE_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "20 days");
	add_id("p2", "user_id", "u2", "30 days");
	set("p1", "{\"v\": 1}", "10 days");
	set("p2", "{\"v\": 1}", "10 days");
	run_ago("9 days");
	ck_assert_int_eq(events("Audience Entered", "u1"), 1);
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p2'"
		   " WHERE id_value = 'u1'");
	tl_sql(db, "UPDATE audsync.events SET profile_id = 'p2'"
		   " WHERE profile_id = 'p1'");
	run_ago("8 days");
	ck_assert_int_eq(events("Audience Exited", "u1"), 0);
	/* u2 is no longer p2's distinct_id (u1 is its newest user_id) */
	ck_assert_int_eq(events("Audience Exited", "u2"), 1);
}
END_TEST

/* A user_id moves from a member with both columns of a trait to a
 * member with one (identity resolution merged them): it holds what the
 * database says now, its new profile's score and no tier. The profile it
 * left tells it the tier's null, and only that: the score is the new
 * profile's. Here the new profile comes first in the run's order. */
START_TEST(a_user_id_merged_into_a_member_without_a_column_loses_it)
{
	const char *resync[] = { "resync", "--computation", "model", NULL };

	add_sync("trait", TWO_SQL, 0, "identify", "all");
	add_id("pA", "user_id", "uA", "30 days");
	add_id("pB", "user_id", "uB", "20 days");
	set("pA", "{\"v\": 1}", "10 days");
	set("pB", "{\"v\": 2, \"w\": 3}", "10 days");
	run_ago("9 days");
	assert_prop("uB", "tier", "3");
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'pA'"
		   " WHERE profile_id = 'pB'");
	run_ago("8 days");
	assert_prop("uB", "score", "1");
	assert_prop("uB", "tier", "null");
	audsync_ok(resync);
	assert_prop("uB", "score", "1");
	assert_prop("uB", "tier", "null");
}
END_TEST

/* The same in track mode, the new profile coming later in the run's
 * order: the user_id gets its new profile's score and the tier's null,
 * one event each, and a resync adds nothing. */
START_TEST(a_user_id_merged_into_a_later_member_without_a_column_gets_its_null)
{
	add_sync("trait", TWO_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "20 days");
	add_id("p2", "user_id", "u2", "30 days");
	set("p1", "{\"v\": 1, \"w\": 3}", "10 days");
	set("p2", "{\"v\": 2}", "10 days");
	run_ago("9 days");
	ck_assert_int_eq(events("Trait Computed", "u1"), 2);
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p2'"
		   " WHERE id_value = 'u1'");
	run_ago("8 days");
	ck_assert_int_eq(trait_events("u1", "score", "2"), 1);
	ck_assert_int_eq(trait_events("u1", "tier", "null"), 1);
	ck_assert_int_eq(events("Trait Computed", "u1"), 4);
	assert_resync_stores_nothing();
}
END_TEST

/* A user_id moved to another member, which later takes a newer user_id.
 * In track mode the profile it left never told it the exit (the member
 * held it), so a resync sends that exit neither: it would be a new
 * event, in the past. Only the exit the user_id was last told goes
 * again, a duplicate. */
START_TEST(resync_in_track_mode_sends_no_exit_a_handed_over_user_id_missed)
{
	add_sync("audience", AUDIENCE_SQL, 0, "track", "all");
	add_id("p1", "user_id", "u1", "30 days");
	add_id("p2", "user_id", "u2", "40 days");
	set("p1", "{\"v\": 1}", "10 days");
	set("p2", "{\"v\": 1}", "10 days");
	run_ago("9 days");
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p2'"
		   " WHERE id_value = 'u1'");
	run_ago("8 days");
	ck_assert_int_eq(events("Audience Exited", "u1"), 0);
	add_id("p2", "user_id", "u9", "7 days 12 hours");
	run_ago("7 days");
	ck_assert_int_eq(events("Audience Exited", "u1"), 1);
	assert_resync_stores_nothing();
}
END_TEST

/* An anonymous id moves to another anonymous member, which it enters,
 * and that member then gains a user_id: it keeps the anonymous id's true
 * (Mixpanel may have merged the two). A resync must not send the exit
 * the profile it left held back when it moved (a new event, at the time
 * of the member's entry). */
START_TEST(resync_in_track_mode_sends_no_exit_to_an_anonymous_id_a_member_keeps)
{
	add_sync("audience", AUDIENCE_SQL, 1, "track", "all");
	add_id("p1", "anonymous_id", "a1", "30 days");
	add_id("p2", "anonymous_id", "a2", "40 days");
	set("p1", "{\"v\": 1}", "10 days");
	set("p2", "{\"v\": 1}", "10 days");
	run_ago("9 days");
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p2'"
		   " WHERE id_value = 'a1'");
	run_ago("8 days");
	add_id("p2", "user_id", "u2", "7 days 12 hours");
	run_ago("7 days");
	ck_assert_int_eq(events("Audience Exited", "a1"), 0);
	assert_resync_stores_nothing();
	ck_assert_int_eq(events("Audience Exited", "a1"), 0);
}
END_TEST

/* p1 (value 1) becomes known as u1 and keeps its anonymous id a1
 * (Mixpanel may have merged the two); a1 then moves to p7 (value 7), an
 * anonymous member, which tells it its value. */
static void a1_kept_by_p1_moves_to_p7(void)
{
	add_sync("trait", TRAIT_SQL, 1, "identify", "all");
	add_id("p1", "anonymous_id", "a1", "30 days");
	add_id("p7", "anonymous_id", "a7", "40 days");
	set("p1", "{\"v\": 1}", "10 days");
	set("p7", "{\"v\": 7}", "10 days");
	run_ago("9 days");
	add_id("p1", "user_id", "u1", "8 days 12 hours");
	run_ago("8 days");
	assert_prop("u1", "model", "1");
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p7'"
		   " WHERE id_value = 'a1'");
	run_ago("7 days");
	assert_prop("a1", "model", "7");
}

/* The id moves on from p7 to a profile that is no member: the exit p7
 * holds back for it must not go while p1, unchanged in that run, still
 * keeps it. */
START_TEST(an_anonymous_id_a_member_keeps_gets_no_exit_from_a_later_owner)
{
	a1_kept_by_p1_moves_to_p7();
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p2'"
		   " WHERE id_value = 'a1'");
	run_ago("6 days");
	assert_prop("a1", "model", "7");
	assert_prop("u1", "model", "1");
}
END_TEST

/* The other way round (model seed 9542): p1's exit to the id it kept,
 * when p1 stops being known, does not reach the id's new owner p7, a
 * member that did not change in the run. */
START_TEST(an_anonymous_id_a_member_took_gets_no_exit_from_its_former_keeper)
{
	a1_kept_by_p1_moves_to_p7();
	tl_sql(db, "DELETE FROM audsync.external_ids WHERE id_value = 'u1'");
	run_ago("6 days");
	assert_prop("a1", "model", "7");
	assert_prop("u1", "model", "null");
}
END_TEST

/* The same with a member that is still anonymous: it keeps nothing of an
 * anonymous id it lost, so when the id moves on from its next owner that
 * owner's exit reaches it. */
START_TEST(an_anonymous_id_an_anonymous_member_lost_gets_the_exit)
{
	add_sync("trait", TRAIT_SQL, 1, "identify", "all");
	add_id("p1", "anonymous_id", "a1", "30 days");
	add_id("p1", "anonymous_id", "a2", "35 days");
	add_id("p7", "anonymous_id", "a7", "40 days");
	set("p1", "{\"v\": 1}", "10 days");
	set("p7", "{\"v\": 7}", "10 days");
	run_ago("9 days");
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p7'"
		   " WHERE id_value = 'a1'");
	run_ago("8 days");
	assert_prop("a1", "model", "7");
	tl_sql(db, "UPDATE audsync.external_ids SET profile_id = 'p2'"
		   " WHERE id_value = 'a1'");
	run_ago("7 days");
	assert_prop("a1", "model", "null");
	assert_prop("a2", "model", "1");
}
END_TEST

static Suite *ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("ledger");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, an_exit_reaches_every_anonymous_distinct_id);
	tcase_add_test(tc,
		       the_distinct_id_id_sync_stops_choosing_gets_the_exit);
	tcase_add_test(
		tc,
		a_changed_id_sync_or_include_anonymous_takes_effect_at_the_next_run);
	tcase_add_test(tc, retire_unset_reaches_former_members_and_null_traits);
	tcase_add_test(tc, two_computations_never_write_one_property);
	tcase_add_test(tc, two_destinations_may_each_take_a_column_of_one_name);
	tcase_add_test(tc, two_traits_racing_for_a_column_leave_it_to_one);
	tcase_add_test(tc, a_backfilled_email_does_not_become_the_address);
	tcase_add_test(tc, retry_failed_does_not_resend_a_superseded_update);
	tcase_add_test(
		tc,
		resync_of_a_two_column_trait_in_track_mode_sends_duplicates);
	tcase_add_test(tc, resync_re_sends_a_former_members_exit_value);
	tcase_add_test(tc, resync_re_sends_a_traits_null);
	tcase_add_test(tc,
		       resync_in_track_mode_re_sends_the_exit_as_a_duplicate);
	tcase_add_test(
		tc, resync_in_track_mode_re_sends_a_traits_null_as_a_duplicate);
	tcase_add_test(tc, a_member_that_gains_an_identifier_keeps_its_time);
	tcase_add_test(tc, a_ledger_of_the_old_format_sends_nothing_new);
	tcase_add_test(tc,
		       a_user_id_merged_into_another_member_keeps_its_value);
	tcase_add_test(tc,
		       a_user_id_merged_into_a_later_member_gets_no_exit_event);
	tcase_add_test(
		tc, a_user_id_merged_into_a_member_without_a_column_loses_it);
	tcase_add_test(
		tc,
		a_user_id_merged_into_a_later_member_without_a_column_gets_its_null);
	tcase_add_test(
		tc,
		resync_in_track_mode_sends_no_exit_a_handed_over_user_id_missed);
	tcase_add_test(
		tc,
		resync_in_track_mode_sends_no_exit_to_an_anonymous_id_a_member_keeps);
	tcase_add_test(
		tc,
		an_anonymous_id_a_member_keeps_gets_no_exit_from_a_later_owner);
	tcase_add_test(
		tc,
		an_anonymous_id_a_member_took_gets_no_exit_from_its_former_keeper);
	tcase_add_test(tc,
		       an_anonymous_id_an_anonymous_member_lost_gets_the_exit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(ledger_suite());
}
