/* check_promises.c - promises of DESIGN.md that a small bug would break
 * unnoticed elsewhere: UTC timestamps in a non-UTC zone, a definition that
 * cannot write, destination settings, Retry-After, $insert_id per trait
 * key, a lane's order, a 503 retried, at most 2000 records a request.
 * Real PostgreSQL, the audsync binary, the fake Mixpanel. */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mpctl *fake;
static const char *db;

/* Fast retries, so that fault tests take milliseconds, not minutes. */
static const char *const env_fast[] = { "MIXPANEL_MP_SECRET=test-secret",
					"AUDSYNC_RETRY_BASE_MS=20",
					"AUDSYNC_RETRY_JITTER_MS=5",
					"AUDSYNC_MAX_ATTEMPTS=3", NULL };

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

/* ---- the database ----------------------------------------------------- */

static void sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sqlf(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	ck_assert_msg(n > 0 && (size_t)n < sizeof(sql), "SQL too long");
	tl_sql(db, sql);
}

/* n people p1..pn with user_ids u1..un, known for 60 days. */
static void add_people(int n)
{
	sqlf("INSERT INTO audsync.external_ids SELECT 'p' || i, 'user_id',"
	     " 'u' || i, now() - interval '60 days'"
	     " FROM generate_series(1, %d) i",
	     n);
}

/* A computation (the definition is dollar-quoted) and its sync to 'mp'. */
static void add_synced(const char *name, const char *kind, const char *sql,
		       const char *mode)
{
	sqlf("INSERT INTO audsync.computations (name, kind, definition_sql)"
	     " VALUES ('%s', '%s', $def$%s$def$)",
	     name, kind, sql);
	sqlf("INSERT INTO audsync.syncs (computation_id, destination_id, mode)"
	     " SELECT c.id, d.id, '%s' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.name = '%s' AND d.name = 'mp'",
	     mode, name);
}

#define EVERYONE_SQL                                                           \
	"SELECT profile_id FROM audsync.external_ids WHERE id_type = 'user_id'"

/* The destination's settings, a JSON object. */
static void settings(const char *json)
{
	sqlf("UPDATE audsync.destinations SET settings = '%s'", json);
}

/* audsync run --all (plus extra, NULL-terminated) with env; returns the
 * result, which the caller frees. */
static tl_result run(const char *const *env, const char *as_of)
{
	return as_of ? tl_audsync(db, env, "run", "--all", "--as-of", as_of,
				  NULL)
		     : tl_audsync(db, env, "run", "--all", NULL);
}

static void run_ok(const char *const *env, const char *as_of)
{
	tl_result r = run(env, as_of);

	ck_assert_msg(r.status == 0, "audsync run exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
}

/* "STATUS ERROR" of the latest run of computation key (caller frees). */
static char *run_of(const char *key)
{
	char sql[512], *v;

	snprintf(sql, sizeof(sql),
		 "SELECT r.status || ' ' || coalesce(r.error, '')"
		 " FROM audsync.runs r JOIN audsync.syncs s ON s.id = r.sync_id"
		 " JOIN audsync.computations c ON c.id = s.computation_id"
		 " WHERE c.key = '%s' ORDER BY r.id DESC LIMIT 1",
		 key);
	v = tl_sql_value(db, sql);
	ck_assert_msg(v != NULL, "no run of %s", key);
	return v;
}

static long long queued(void)
{
	return tl_sql_int(db, "SELECT coalesce(sum(n), 0) FROM audsync.outbox");
}

/* ---- the fake Mixpanel ------------------------------------------------ */

static int has_prop(const char *did, const char *name)
{
	char *v = mpctl_prop(fake, did, name);

	free(v);
	return v != NULL;
}

#define assert_prop(did, name, want) check_prop(__LINE__, did, name, want)
static void check_prop(int line, const char *did, const char *name,
		       const char *want)
{
	char *v = mpctl_prop(fake, did, name);

	ck_assert_msg(
		want ? v && strcmp(v, want) == 0 : !v,
		"line %d: profile %s has %s = %s in Mixpanel, expected %s",
		line, did, name, v ? v : "(absent)", want ? want : "(absent)");
	free(v);
}

/* The stored events (a new reference to the state; *events borrowed). */
static json_object *events_of(json_object **events)
{
	json_object *st;

	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	ck_assert(json_object_object_get_ex(st, "events", events));
	return st;
}

/* A property of an event as JSON text (caller frees), NULL when absent. */
static char *event_prop(json_object *e, const char *name)
{
	json_object *p, *v;

	if (!json_object_object_get_ex(e, "properties", &p) ||
	    !json_object_object_get_ex(p, name, &v))
		return NULL;
	return strdup(
		json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

/* 1 when event e is named name and its property key is want (JSON). */
static int event_is(json_object *e, const char *name, const char *key,
		    const char *want)
{
	json_object *n;
	char *v;
	int yes;

	if (!json_object_object_get_ex(e, "event", &n) ||
	    strcmp(json_object_get_string(n), name) != 0)
		return 0;
	v = event_prop(e, key);
	yes = v && strcmp(v, want) == 0;
	free(v);
	return yes;
}

/* The stored events named name whose property key is want. */
static int count_events(const char *name, const char *key, const char *want)
{
	json_object *events, *st = events_of(&events);
	size_t i;
	int n = 0;

	for (i = 0; i < json_object_array_length(events); i++)
		n += event_is(json_object_array_get_idx(events, i), name, key,
			      want);
	json_object_put(st);
	return n;
}

/* The fake's request log: what GET /_fake/requests says of endpoint. */
typedef struct reqlog {
	int n;		    /* requests */
	long long first_ms; /* arrival of the first and the last */
	long long last_ms;
	long long max_records;
	long long records; /* all of them */
	int max_in_flight; /* over every endpoint */
	int status[8];	   /* of the first 8 */
	long long t_ms[8];
} reqlog;

static reqlog requests(const char *endpoint)
{
	json_object *o, *a, *e, *v;
	reqlog l = { 0 };
	size_t i;

	ck_assert_int_eq(mpctl_requests(&o, fake), 0);
	ck_assert(json_object_object_get_ex(o, "max_in_flight", &v));
	l.max_in_flight = json_object_get_int(v);
	ck_assert(json_object_object_get_ex(o, "requests", &a));
	for (i = 0; i < json_object_array_length(a); i++) {
		long long t, recs;

		e = json_object_array_get_idx(a, i);
		json_object_object_get_ex(e, "endpoint", &v);
		if (strcmp(json_object_get_string(v), endpoint) != 0)
			continue;
		json_object_object_get_ex(e, "t_ms", &v);
		t = json_object_get_int64(v);
		json_object_object_get_ex(e, "records", &v);
		recs = json_object_get_int64(v);
		if (l.n == 0)
			l.first_ms = t;
		l.last_ms = t;
		if (recs > l.max_records)
			l.max_records = recs;
		if (recs > 0)
			l.records += recs;
		if (l.n < 8) {
			json_object_object_get_ex(e, "status", &v);
			l.status[l.n] = json_object_get_int(v);
			l.t_ms[l.n] = t;
		}
		l.n++;
	}
	json_object_put(o);
	return l;
}

static void fault(const char *json)
{
	ck_assert_int_eq(mpctl_fault(fake, json), 0);
}

/* ---- 1. timestamps in UTC, whatever the zones ------------------------- */

/* The server's default zone for this database and the session's zone
 * that libpq asks for (PGTZ) are both Europe/Berlin, an hour or two off
 * UTC: a timestamp formatted in either would show it. */
static const char *const env_berlin[] = { "MIXPANEL_MP_SECRET=test-secret",
					  "PGTZ=Europe/Berlin", NULL };

static void berlin_server(void)
{
	char *name = tl_sql_value(db, "SELECT current_database()");

	sqlf("ALTER DATABASE \"%s\" SET timezone = 'Europe/Berlin'", name);
	free(name);
	ck_assert_int_eq(tl_sql_int(db, "SELECT extract(timezone FROM"
					" timestamptz '2026-07-01 12:00+00')"),
			 7200);
}

#define STAMPS_SQL                                                             \
	"SELECT profile_id, timestamptz '2026-01-15 12:34:56+00' AS winter,"   \
	" timestamptz '2026-07-01 23:30:00+00' AS summer"                      \
	" FROM audsync.external_ids WHERE id_type = 'user_id'"

START_TEST(timestamps_go_out_in_utc_from_a_berlin_server_and_session)
{
	json_object *events, *st, *v, *e, *syncs;
	tl_result r;
	size_t i;
	int seen = 0;

	berlin_server();
	add_people(1);
	add_synced("Stamps", "trait", STAMPS_SQL, "identify");
	add_synced("Stamps Tracked", "trait", STAMPS_SQL, "track");
	run_ok(env_berlin, "2025-06-01 10:00:00+00");

	assert_prop("u1", "winter", "\"2026-01-15T12:34:56\"");
	assert_prop("u1", "summer", "\"2026-07-01T23:30:00\"");
	st = events_of(&events);
	for (i = 0; i < json_object_array_length(events); i++) {
		e = json_object_array_get_idx(events, i);
		seen += event_is(e, "Trait Computed", "winter",
				 "\"2026-01-15T12:34:56\"");
		seen += event_is(e, "Trait Computed", "summer",
				 "\"2026-07-01T23:30:00\"");
		/* 2025-06-01T10:00:00Z in milliseconds */
		seen += event_is(e, "Trait Computed", "time", "1748772000000");
	}
	json_object_put(st);
	ck_assert_msg(seen == 4,
		      "the track events' values and times are not"
		      " UTC (%d of 4 right)",
		      seen);

	/* what audsync status prints as UTC is UTC */
	r = tl_audsync(db, env_berlin, "status", "--json", NULL);
	ck_assert_msg(r.status == 0, "status exited %d: %s", r.status, r.err);
	st = json_tokener_parse(r.out);
	ck_assert_msg(st && json_object_object_get_ex(st, "syncs", &syncs) &&
			      json_object_array_length(syncs) == 2,
		      "status --json: %s", r.out);
	ck_assert(json_object_object_get_ex(json_object_array_get_idx(syncs, 0),
					    "as_of", &v));
	ck_assert_msg(
		strcmp(json_object_get_string(v), "2025-06-01T10:00:00Z") == 0,
		"status says as_of %s for 2025-06-01T10:00:00Z",
		json_object_get_string(v));
	json_object_put(st);
	tl_result_free(&r);
}
END_TEST

/* ---- 2. a definition cannot write ------------------------------------- */

/* Each route a definition could write by; every one must fail its own
 * sync and leave the data as it was. */
static const struct {
	const char *name, *setup, *definition;
} writers[] = {
	{ "Writes Volatile",
	  "CREATE FUNCTION public.bump() RETURNS int VOLATILE"
	  " LANGUAGE plpgsql AS $f$ BEGIN UPDATE public.victim SET x = x + 1;"
	  " RETURN 1; END $f$",
	  "SELECT profile_id FROM audsync.external_ids WHERE public.bump() = 1" },
	{ "Writes Definer",
	  "CREATE FUNCTION public.plant() RETURNS int SECURITY DEFINER"
	  " LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO public.victim"
	  " VALUES (99); RETURN 1; END $f$",
	  "SELECT profile_id FROM audsync.external_ids"
	  " WHERE public.plant() = 1" },
	{ "Writes Sequence", "CREATE SEQUENCE public.seq",
	  "SELECT profile_id FROM audsync.external_ids"
	  " WHERE nextval('public.seq') > 0" },
	{ "Writes Copy",
	  "CREATE FUNCTION public.load() RETURNS int LANGUAGE plpgsql AS"
	  " $f$ BEGIN COPY public.victim FROM PROGRAM 'echo 7'; RETURN 1;"
	  " END $f$",
	  "SELECT profile_id FROM audsync.external_ids WHERE public.load() = 1" },
	{ "Writes Large Object", NULL,
	  "SELECT profile_id FROM audsync.external_ids"
	  " WHERE lo_from_bytea(0, 'x') > 0" },
	{ "Writes Table",
	  "CREATE FUNCTION public.make() RETURNS int LANGUAGE plpgsql AS"
	  " $f$ BEGIN CREATE TABLE public.made (x int); RETURN 1; END $f$",
	  "SELECT profile_id FROM audsync.external_ids WHERE public.make() = 1" },
};
#define N_WRITERS (sizeof(writers) / sizeof(writers[0]))

START_TEST(a_definition_cannot_write_by_any_route)
{
	char key[64], *v, *run_outcome = NULL;
	tl_result r;
	size_t i;

	tl_sql(db, "CREATE TABLE public.victim (x int);"
		   " INSERT INTO public.victim VALUES (1)");
	add_people(2);
	for (i = 0; i < N_WRITERS; i++) {
		if (writers[i].setup)
			tl_sql(db, writers[i].setup);
		add_synced(writers[i].name, "audience", writers[i].definition,
			   "identify");
	}
	add_synced("Harmless", "audience", EVERYONE_SQL, "identify");
	r = run(env_fast, NULL);
	ck_assert_msg(r.status != 0, "a run whose definitions write exited 0");

	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM public.victim"),
			 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT x FROM public.victim"), 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT last_value + is_called::int"
					" FROM public.seq"),
			 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*)"
					" FROM pg_largeobject_metadata"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM pg_class"
					" WHERE relname = 'made'"),
			 0);
	for (i = 0; i < N_WRITERS; i++) {
		snprintf(key, sizeof(key), "%s", writers[i].name);
		for (v = key; *v; v++)
			*v = *v == ' ' ? '_' : (char)(*v | 0x20);
		ck_assert_msg(tl_contains(r.err, key), "no error names %s: %s",
			      key, r.err);
		free(run_outcome);
		run_outcome = run_of(key);
		ck_assert_msg(strncmp(run_outcome, "failed ", 7) == 0 &&
				      tl_contains(run_outcome, key),
			      "the run of %s: %s", key, run_outcome);
	}
	free(run_outcome);
	/* the other sync went on */
	assert_prop("u1", "harmless", "true");
	assert_prop("u1", "writes_volatile", NULL);
	tl_result_free(&r);
}
END_TEST

/* ---- 3. destination settings reach the requests ----------------------- */

START_TEST(batch_size_caps_the_records_of_a_request)
{
	reqlog l;

	settings("{\"batch_size\": 10, \"concurrency\": 1}");
	add_people(45);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	run_ok(env_fast, NULL);
	l = requests("engage");
	ck_assert_int_eq(l.records, 45);
	ck_assert_msg(l.max_records == 10 && l.n == 5,
		      "batch_size 10: %d requests, the largest %lld records",
		      l.n, l.max_records);
	assert_prop("u45", "everyone", "true");
}
END_TEST

START_TEST(max_rate_spreads_the_requests_over_time)
{
	reqlog l;

	/* 20 records a second, 60 records: the bucket holds 20 at most, so
	 * the last batch of 10 waits until 50 were paid for, 1.5 s after
	 * the first request */
	settings("{\"max_rate\": 20, \"batch_size\": 10}");
	add_people(60);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	run_ok(env_fast, NULL);
	l = requests("engage");
	ck_assert_int_eq(l.records, 60);
	ck_assert_msg(l.last_ms - l.first_ms >= 1500,
		      "max_rate 20/s sent 60 records in %lld ms",
		      l.last_ms - l.first_ms);
}
END_TEST

/* Slow answers hold the first requests open, so that every connection
 * audsync may open at once is open at once. */
static const char *const env_patient[] = { "MIXPANEL_MP_SECRET=test-secret",
					   "AUDSYNC_RETRY_BASE_MS=20",
					   "AUDSYNC_RETRY_JITTER_MS=5",
					   "AUDSYNC_MAX_ATTEMPTS=5", NULL };

START_TEST(concurrency_one_keeps_one_request_in_flight)
{
	reqlog l;

	settings("{\"concurrency\": 1, \"batch_size\": 5}");
	add_people(64);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	fault("{\"mode\":\"slow\",\"count\":2,\"endpoint\":\"engage\","
	      "\"slow_ms\":400}");
	run_ok(env_patient, NULL);
	l = requests("engage");
	ck_assert_int_eq(l.records, 64);
	ck_assert_msg(l.max_in_flight == 1,
		      "concurrency 1: %d requests at once", l.max_in_flight);
}
END_TEST

/* concurrency counts the destination's connections, whatever endpoint
 * they go to: profile updates and events of one delivery share them. */
START_TEST(concurrency_one_holds_across_endpoints)
{
	reqlog engage, import;

	settings("{\"concurrency\": 1, \"batch_size\": 5}");
	add_people(20);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	add_synced("Everyone Tracked", "audience", EVERYONE_SQL, "track");
	fault("{\"mode\":\"slow\",\"count\":6,\"slow_ms\":400}");
	run_ok(env_patient, NULL);
	engage = requests("engage");
	import = requests("import");
	ck_assert_int_eq(engage.records, 20);
	ck_assert_int_eq(import.records, 20);
	ck_assert_msg(engage.max_in_flight == 1,
		      "concurrency 1: %d requests at once over /engage and "
		      "/import",
		      engage.max_in_flight);
}
END_TEST

START_TEST(concurrency_four_keeps_four_requests_in_flight)
{
	reqlog l;

	settings("{\"concurrency\": 4, \"batch_size\": 5}");
	add_people(64);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	fault("{\"mode\":\"slow\",\"count\":8,\"endpoint\":\"engage\","
	      "\"slow_ms\":400}");
	run_ok(env_patient, NULL);
	l = requests("engage");
	ck_assert_int_eq(l.records, 64);
	ck_assert_msg(l.max_in_flight == 4,
		      "concurrency 4: %d requests at once", l.max_in_flight);
}
END_TEST

START_TEST(geolocate_and_ignore_time_reach_mixpanel)
{
	json_object *events, *st;
	char *ip;

	add_people(1);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	add_synced("Everyone Tracked", "audience", EVERYONE_SQL, "track");
	/* the defaults: no geolocation, no $last_seen */
	run_ok(env_fast, "2025-06-01 10:00:00+00");
	assert_prop("u1", "everyone", "true");
	assert_prop("u1", "$city", NULL);
	assert_prop("u1", "$last_seen", NULL);
	st = events_of(&events);
	ck_assert_int_eq(json_object_array_length(events), 1);
	ip = event_prop(json_object_array_get_idx(events, 0), "ip");
	ck_assert_msg(ip && strcmp(ip, "0") == 0, "event ip %s, not 0",
		      ip ? ip : "(absent)");
	free(ip);
	json_object_put(st);

	ck_assert_int_eq(mpctl_reset(fake), 0);
	settings("{\"geolocate\": true, \"ignore_time\": false}");
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p2', 'user_id', 'u2', now() - interval '60 days')");
	run_ok(env_fast, NULL);
	assert_prop("u2", "everyone", "true");
	ck_assert_msg(has_prop("u2", "$city"),
		      "geolocate: Mixpanel was told not to locate");
	ck_assert_msg(has_prop("u2", "$last_seen"),
		      "ignore_time false: $last_seen was not updated");
	st = events_of(&events);
	ck_assert_int_eq(json_object_array_length(events), 1);
	ip = event_prop(json_object_array_get_idx(events, 0), "ip");
	ck_assert_msg(!ip, "geolocate: the event says ip %s", ip);
	json_object_put(st);
}
END_TEST

START_TEST(the_destinations_event_names_reach_mixpanel)
{
	settings("{\"enter_event\": \"Joined\", \"exit_event\": \"Left\","
		 " \"trait_event\": \"Score Set\"}");
	add_people(1);
	add_synced("Everyone", "audience", EVERYONE_SQL, "track");
	add_synced("Score", "trait",
		   "SELECT profile_id, 5 AS value FROM audsync.external_ids",
		   "track");
	run_ok(env_fast, "2025-06-01 10:00:00+00");
	tl_sql(db, "DELETE FROM audsync.external_ids WHERE profile_id <> 'p1'");
	tl_sql(db, "UPDATE audsync.computations SET definition_sql ="
		   " 'SELECT profile_id FROM audsync.external_ids WHERE false'"
		   " WHERE key = 'everyone'");
	run_ok(env_fast, NULL);
	ck_assert_int_eq(count_events("Joined", "everyone", "true"), 1);
	ck_assert_int_eq(count_events("Left", "everyone", "false"), 1);
	ck_assert_int_eq(count_events("Score Set", "score", "5"), 1);
	ck_assert_int_eq(count_events("Audience Entered", "everyone", "true"),
			 0);
	ck_assert_int_eq(count_events("Trait Computed", "score", "5"), 0);
}
END_TEST

/* ---- 4. Retry-After --------------------------------------------------- */

START_TEST(retry_after_is_waited_for)
{
	reqlog l;

	add_people(1);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	fault("{\"mode\":\"429\",\"count\":1,\"endpoint\":\"engage\","
	      "\"retry_after\":2}");
	run_ok(env_fast, NULL);
	assert_prop("u1", "everyone", "true");
	l = requests("engage");
	ck_assert_msg(l.n == 2 && l.status[0] == 429 && l.status[1] == 200,
		      "expected a 429 then a 200, got %d requests", l.n);
	/* the retry waits the 2 s the header asks, not the 20 ms backoff */
	ck_assert_msg(l.t_ms[1] - l.t_ms[0] >= 1990,
		      "retried %lld ms after Retry-After: 2",
		      l.t_ms[1] - l.t_ms[0]);
}
END_TEST

/* ---- 5. one $insert_id per key of a multi-column trait ---------------- */

START_TEST(a_multi_column_track_trait_sends_one_event_per_key)
{
	json_object *events, *st;
	char *id[2];
	size_t i;

	add_people(3);
	add_synced("Profile Facts", "trait",
		   "SELECT profile_id, 1 AS orders, 'gold' AS tier"
		   " FROM audsync.external_ids",
		   "track");
	run_ok(env_fast, "2025-06-01 10:00:00+00");
	ck_assert_int_eq(mpctl_counter(fake, "duplicates"), 0);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 6);
	ck_assert_int_eq(count_events("Trait Computed", "orders", "1"), 3);
	ck_assert_int_eq(count_events("Trait Computed", "tier", "\"gold\""), 3);
	st = events_of(&events);
	for (i = 0; i < 2; i++)
		id[i] = event_prop(json_object_array_get_idx(events, i),
				   "$insert_id");
	ck_assert_msg(id[0] && id[1] && strcmp(id[0], id[1]) != 0,
		      "two events share $insert_id %s", id[0]);
	free(id[0]);
	free(id[1]);
	json_object_put(st);
}
END_TEST

/* ---- 6. a lane's records keep their order ----------------------------- */

/* Four runs, not three: a delivery round takes a lane's oldest pages two
 * at a time, and with an odd count the last round holds one page, so a
 * round that sent its pages newest first still ended on the last value. */
START_TEST(four_runs_queued_while_mixpanel_is_down_deliver_the_last_value)
{
	tl_result r;
	int v;

	add_people(1);
	tl_sql(db, "CREATE TABLE public.score (profile_id text, v int);"
		   " INSERT INTO public.score VALUES ('p1', 1)");
	add_synced("Score", "trait",
		   "SELECT profile_id, v AS value FROM public.score",
		   "identify");
	fault("{\"mode\":\"503\",\"count\":1000,\"endpoint\":\"engage\"}");
	for (v = 1; v <= 4; v++) {
		sqlf("UPDATE public.score SET v = %d", v);
		r = run(env_fast, NULL);
		tl_result_free(&r);
		ck_assert_int_eq(queued(), v);
	}
	assert_prop("u1", "score", NULL);
	ck_assert_int_eq(mpctl_reset(fake), 0);
	r = tl_audsync(db, env_fast, "deliver", NULL);
	ck_assert_msg(r.status == 0, "deliver exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	ck_assert_int_eq(queued(), 0);
	assert_prop("u1", "score", "4");
}
END_TEST

/* ---- 7. end to end: a 503 retried, 2000 records at most --------------- */

START_TEST(a_503_is_retried_within_the_run)
{
	reqlog l;

	add_people(1);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	fault("{\"mode\":\"503\",\"count\":1,\"endpoint\":\"engage\"}");
	run_ok(env_fast, NULL);
	assert_prop("u1", "everyone", "true");
	ck_assert_int_eq(queued(), 0);
	l = requests("engage");
	ck_assert_msg(l.n == 2 && l.status[0] == 503 && l.status[1] == 200,
		      "expected a 503 then a 200, got %d requests", l.n);
}
END_TEST

START_TEST(no_request_carries_more_than_2000_records)
{
	reqlog l;

	/* one connection, so that every record queues behind one; one
	 * endpoint a run, so that one delivery round holds them all */
	settings("{\"concurrency\": 1}");
	add_people(2001);
	add_synced("Everyone", "audience", EVERYONE_SQL, "identify");
	run_ok(env_fast, "2025-06-01 10:00:00+00");
	add_synced("Everyone Tracked", "audience", EVERYONE_SQL, "track");
	run_ok(env_fast, "2025-06-01 10:00:00+00");
	ck_assert_int_eq(queued(), 0);
	l = requests("engage");
	ck_assert_int_eq(l.records, 2001);
	ck_assert_msg(l.max_records == 2000, "/engage: %lld records at once",
		      l.max_records);
	l = requests("import");
	ck_assert_int_eq(l.records, 2001);
	ck_assert_msg(l.max_records == 2000, "/import: %lld records at once",
		      l.max_records);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 2001);
	assert_prop("u2001", "everyone", "true");
}
END_TEST

/* A test case of its own per promise, so that one can run alone
 * (CK_RUN_CASE, as tests/mutations.txt does). */
static TCase *promise(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *promises_suite(void)
{
	Suite *s = suite_create("promises");
	TCase *tc;

	tc = promise(s, "utc");
	tcase_add_test(
		tc, timestamps_go_out_in_utc_from_a_berlin_server_and_session);
	tc = promise(s, "read only");
	tcase_add_test(tc, a_definition_cannot_write_by_any_route);
	tc = promise(s, "settings");
	tcase_add_test(tc, batch_size_caps_the_records_of_a_request);
	tcase_add_test(tc, max_rate_spreads_the_requests_over_time);
	tcase_add_test(tc, geolocate_and_ignore_time_reach_mixpanel);
	tcase_add_test(tc, the_destinations_event_names_reach_mixpanel);
	tc = promise(s, "concurrency");
	tcase_add_test(tc, concurrency_one_keeps_one_request_in_flight);
	tcase_add_test(tc, concurrency_one_holds_across_endpoints);
	tcase_add_test(tc, concurrency_four_keeps_four_requests_in_flight);
	tc = promise(s, "retry");
	tcase_add_test(tc, retry_after_is_waited_for);
	tcase_add_test(tc, a_503_is_retried_within_the_run);
	tc = promise(s, "insert id");
	tcase_add_test(tc, a_multi_column_track_trait_sends_one_event_per_key);
	tc = promise(s, "order");
	tcase_add_test(
		tc,
		four_runs_queued_while_mixpanel_is_down_deliver_the_last_value);
	tc = promise(s, "batch");
	tcase_add_test(tc, no_request_carries_more_than_2000_records);
	return s;
}

int main(void)
{
	return tl_run_suite(promises_suite());
}
