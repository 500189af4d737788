/* check_rules_incr.c - incremental rule evaluation equals full evaluation.
 *
 * Two databases get the same random data, the same random rules (every
 * construct that runs incrementally, and one that falls back to full
 * evaluation) and the same random writes between runs at random as-of
 * times: events (late, future, deleted), traits (inserted, updated,
 * deleted) and identifiers (added, removed). One syncs as a user would,
 * incrementally; the other with AUDSYNC_INCREMENTAL=false, every run a
 * full evaluation. After every run the two snapshots (each member and
 * former member: its value, since and targets) and the two fake
 * Mixpanels (profiles and events) must be equal.
 *
 * AUDSYNC_INCR_SEED fixes the first seed (printed otherwise);
 * AUDSYNC_INCR_SEEDS (default 2) sets how many seeds run, and
 * AUDSYNC_INCR_STEPS (default 6) the runs per seed. */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NPROF	  40
#define NAUD	  4
#define NTRAIT	  3
#define BASE_TS	  "2026-06-01 00:00:00+00"
#define MAX_RULE  4096
#define EVENTS	  "ABC"
#define SIDE_INC  0
#define SIDE_FULL 1

/* ---- a seeded generator, the same on every platform -------------------- */

static unsigned long long rng;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* ---- the two sides ------------------------------------------------------- */

static const char *dbs[2];
static char dbbuf[2][256];
static mpctl *fakes[2];

/* The same SQL on both sides. */
static void both(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void both(const char *fmt, ...)
{
	char *sql;
	va_list ap;
	int i;

	va_start(ap, fmt);
	ck_assert(vasprintf(&sql, fmt, ap) > 0);
	va_end(ap);
	for (i = 0; i < 2; i++)
		tl_sql(dbs[i], sql);
	free(sql);
}

/* ---- random rules -------------------------------------------------------- */

static void cat(char *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cat(char *out, const char *fmt, ...)
{
	size_t n = strlen(out);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out + n, MAX_RULE - n, fmt, ap);
	va_end(ap);
}

/* An event, where, and a window (within, between, or the lookback). */
static void gen_events(char *out, int with_where)
{
	static const char *const within[] = { "3 days", "36 hours", "10 days",
					      "2 hours" };
	static const char *const between[] = {
		"[\"2026-06-02\", \"2026-06-05T12:00:00Z\"]",
		"[\"2026-05-20\", \"2026-06-03\"]"
	};

	cat(out, "\"event\": \"%c\"", EVENTS[rnd(3)]);
	if (with_where && rnd(3) == 0)
		cat(out,
		    ", \"where\": [{\"property\": \"total\", \"op\": \"%s\","
		    " \"value\": %u}]",
		    rnd(2) ? ">=" : "<", 10 * (1 + rnd(9)));
	else if (with_where && rnd(4) == 0)
		cat(out, ", \"where\": [{\"property\": \"category\", \"op\":"
			 " \"not_exists\"}]");
	switch (rnd(4)) {
	case 0: cat(out, ", \"within\": \"%s\"", within[rnd(4)]); break;
	case 1: cat(out, ", \"between\": %s", between[rnd(2)]); break;
	default: break; /* the lookback */
	}
}

/* A condition; audience k may name the audiences before it. */
static void gen_cond(char *out, int depth, int k)
{
	static const char *const counts[] = { ">=", "=", "<", "!=", ">" };
	unsigned pick = rnd(depth > 2 ? 3 : 8);

	if (pick == 0 || pick >= 6) {
		cat(out, "{\"performed\": {");
		gen_events(out, 1);
		if (rnd(3) == 0)
			cat(out, ", \"count\": {\"op\": \"%s\", \"value\": %u}",
			    counts[rnd(5)], rnd(3));
		cat(out, "}}");
	} else if (pick == 1) {
		cat(out,
		    "{\"trait\": {\"name\": \"plan\", \"op\": \"%s\","
		    " \"value\": \"pro\"}}",
		    rnd(2) ? "=" : "!=");
	} else if (pick == 2) {
		if (k > 0)
			cat(out, "{\"member_of\": \"aud%u\"}",
			    rnd((unsigned)k));
		else
			cat(out, "{\"trait\": {\"name\": \"score\", \"op\":"
				 " \">\", \"value\": 10}}");
	} else if (pick == 3) {
		cat(out, "{\"not\": ");
		gen_cond(out, depth + 1, k);
		cat(out, "}");
	} else {
		cat(out, "{\"%s\": [", pick == 4 ? "and" : "or");
		gen_cond(out, depth + 1, k);
		cat(out, ", ");
		gen_cond(out, depth + 1, k);
		cat(out, "]}");
	}
}

static void gen_trait(char *out)
{
	static const char *const kinds[] = {
		"event_counter", "aggregation", "most_frequent",    "first",
		"last",		 "unique_list", "unique_list_count"
	};
	static const char *const fns[] = { "sum", "avg", "min", "max" };
	unsigned k = rnd(7);

	cat(out, "{\"%s\": {", kinds[k]);
	if (k == 1)
		cat(out, "\"fn\": \"%s\", \"property\": \"total\", ",
		    fns[rnd(4)]);
	else if (k > 1)
		cat(out, "\"property\": \"%s\", ",
		    rnd(2) ? "category" : "total");
	gen_events(out, 1);
	cat(out, "}}");
}

static const char *lookback(void)
{
	static const char *const lb[] = { "NULL", "'5 days'", "'1 day'",
					  "'30 days'" };

	return lb[rnd(4)];
}

static void add_computation(const char *key, const char *kind, const char *rule,
			    const char *sql, const char *lb, const char *mode)
{
	both("INSERT INTO audsync.computations (key, name, kind, definition,"
	     " definition_sql, lookback) VALUES ('%s', '%s', '%s',"
	     " %s%s%s, %s%s%s, %s);"
	     "INSERT INTO audsync.syncs (computation_id, destination_id, mode)"
	     " SELECT c.id, d.id, '%s' FROM audsync.computations c,"
	     " audsync.destinations d WHERE c.key = '%s'",
	     key, key, kind, rule ? "$r$" : "NULL", rule ? rule : "",
	     rule ? "$r$" : "", sql ? "$s$" : "NULL", sql ? sql : "",
	     sql ? "$s$" : "", lb, mode, key);
}

static void add_rules(void)
{
	char rule[MAX_RULE], key[16];
	int k;

	for (k = 0; k < NAUD; k++) {
		rule[0] = '\0';
		gen_cond(rule, 1, k);
		snprintf(key, sizeof(key), "aud%d", k);
		add_computation(key, "audience", rule, NULL, lookback(),
				rnd(2) ? "identify" : "track");
	}
	for (k = 0; k < NTRAIT; k++) {
		rule[0] = '\0';
		gen_trait(rule);
		snprintf(key, sizeof(key), "tr%d", k);
		add_computation(key, "trait", rule, NULL, lookback(),
				rnd(2) ? "identify" : "track");
	}
	/* One that falls back to full evaluation: its target is SQL. */
	add_computation("sql_pro", "audience", NULL,
			"SELECT profile_id FROM audsync.profile_traits"
			" WHERE traits ->> 'plan' = 'pro'",
			"NULL", "identify");
	add_computation("pro_buyers", "audience",
			"{\"and\": [{\"member_of\": \"sql_pro\"},"
			" {\"performed\": {\"event\": \"A\"}}]}",
			NULL, "'3 days'", "identify");
}

/* ---- random data and writes ---------------------------------------------- */

/* n events at random profiles, at times around as-of (some in the
 * future, to age in later; some long ago: a late load). */
static void add_events(int n, const char *as_of)
{
	char *sql = NULL;
	size_t len = 0;
	FILE *f;
	int i;

	if (n == 0)
		return;
	f = open_memstream(&sql, &len);
	fprintf(f, "INSERT INTO audsync.events VALUES ");
	for (i = 0; i < n; i++) {
		unsigned total = 5 * rnd(25);
		int minutes = (int)rnd(60 * 24 * 12) - 60 * 24 * 10;

		fprintf(f,
			"%s('p%u', '%c', '{\"total\": %u%s}',"
			" '%s'::timestamptz + interval '%d minutes')",
			i ? ", " : "", 1 + rnd(NPROF), EVENTS[rnd(3)], total,
			rnd(3) == 0   ? ""
			: rnd(2) == 0 ? ", \"category\": \"hats\""
				      : ", \"category\": \"shoes\"",
			as_of, minutes);
	}
	fclose(f);
	both("%s", sql);
	free(sql);
}

static void random_writes(const char *as_of)
{
	static const char *const plans[] = { "pro", "free", "team" };
	unsigned p = 1 + rnd(NPROF), i;

	add_events((int)rnd(25), as_of);
	for (i = rnd(4); i > 0; i--) {
		p = 1 + rnd(NPROF);
		both("INSERT INTO audsync.profile_traits VALUES ('p%u',"
		     " '{\"plan\": \"%s\", \"score\": %u}')"
		     " ON CONFLICT (profile_id) DO UPDATE SET traits ="
		     " EXCLUDED.traits",
		     p, plans[rnd(3)], rnd(20));
	}
	if (rnd(3) == 0)
		both("DELETE FROM audsync.profile_traits"
		     " WHERE profile_id = 'p%u'",
		     1 + rnd(NPROF));
	if (rnd(3) == 0)
		both("INSERT INTO audsync.external_ids VALUES ('p%u',"
		     " 'user_id', 'u%u', '%s') ON CONFLICT DO NOTHING",
		     p, p, as_of);
	if (rnd(4) == 0) {
		/* Sometimes the profile also buys, just before as-of: its
		 * new events alone would make it a member (rules.c,
		 * put_sure_named()), but without an identifier it is no one. The
		 * purchase in its own transaction (1) or the deletion's (2). */
		unsigned buys = rnd(3);
		char ins[256] = "";

		p = 1 + rnd(NPROF);
		if (buys)
			snprintf(ins, sizeof(ins),
				 "INSERT INTO audsync.events SELECT 'p%u', e,"
				 " '{\"total\": 50}', '%s'::timestamptz"
				 " - interval '%u minutes'"
				 " FROM unnest(ARRAY['A', 'B', 'C']) e;",
				 p, as_of, 1 + rnd(20));
		if (buys == 1)
			both("%s", ins);
		both("%sDELETE FROM audsync.external_ids"
		     " WHERE profile_id = 'p%u'",
		     buys == 2 ? ins : "", p);
	}
	if (rnd(5) == 0) {
		/* Two profiles found to be one person: the first's
		 * identifiers move to the second (the change log names
		 * both). */
		unsigned from = 1 + rnd(NPROF), to = 1 + rnd(NPROF);

		both("UPDATE audsync.external_ids x SET profile_id = 'p%u'"
		     " WHERE x.profile_id = 'p%u' AND NOT EXISTS (SELECT 1"
		     " FROM audsync.external_ids y WHERE y.profile_id = 'p%u'"
		     " AND y.id_type = x.id_type AND y.id_value = x.id_value)",
		     to, from, to);
	}
	if (rnd(4) == 0)
		both("DELETE FROM audsync.events WHERE profile_id = 'p%u'"
		     " AND event = '%c'",
		     1 + rnd(NPROF), EVENTS[rnd(3)]);
}

static void load_start(void)
{
	unsigned p, t;

	for (p = 1; p <= NPROF; p++)
		if (rnd(10) < 8)
			both("INSERT INTO audsync.external_ids VALUES ('p%u',"
			     " 'user_id', 'u%u', '" BASE_TS "')",
			     p, p);
	for (t = 0; t < 8; t++)
		add_events(40, BASE_TS);
	for (p = 1; p <= NPROF; p += 1 + rnd(3))
		both("INSERT INTO audsync.profile_traits VALUES ('p%u',"
		     " '{\"plan\": \"%s\", \"score\": %u}')",
		     p, rnd(2) ? "pro" : "free", rnd(20));
}

/* ---- the comparison ------------------------------------------------------ */

/* Every snapshot row of a side, one line each, in a stable order. */
static char *snapshot_of(int side)
{
	return tl_sql_value(
		dbs[side], "SELECT coalesce(string_agg(c.key || ' '"
			   " || m.profile_id || ' ' || m.member || ' '"
			   " || m.value::text || ' ' || m.since || ' '"
			   " || m.targets, E'\\n' ORDER BY c.key,"
			   " m.profile_id), '') FROM audsync.snapshot_members m"
			   " JOIN audsync.syncs s ON s.id = m.sync_id"
			   " JOIN audsync.computations c"
			   " ON c.id = s.computation_id");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What a fake holds: its profiles and events, one line each, sorted. */
static char *mixpanel_of(int side)
{
	json_object *state, *profiles, *events;
	char **lines, *out = NULL;
	size_t n, i, len = 0, k = 0;
	FILE *f = open_memstream(&out, &len);

	ck_assert_int_eq(mpctl_state(&state, fakes[side]), 0);
	ck_assert(json_object_object_get_ex(state, "profiles", &profiles));
	ck_assert(json_object_object_get_ex(state, "events", &events));
	n = json_object_array_length(events) +
	    (size_t)json_object_object_length(profiles);
	lines = calloc(n + 1, sizeof(*lines));
	for (i = 0; i < json_object_array_length(events); i++)
		ck_assert(asprintf(&lines[k++], "event %s",
				   json_object_to_json_string_ext(
					   json_object_array_get_idx(events, i),
					   JSON_C_TO_STRING_PLAIN)) > 0);
	json_object_object_foreach(profiles, did, prof)
	{
		ck_assert(asprintf(&lines[k++], "profile %s %s", did,
				   json_object_to_json_string_ext(
					   prof, JSON_C_TO_STRING_PLAIN)) > 0);
	}
	qsort(lines, k, sizeof(*lines), cmp_str);
	for (i = 0; i < k; i++) {
		fprintf(f, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	fclose(f);
	json_object_put(state);
	return out;
}

/* The first line where a and b differ, for the failure message. */
static const char *first_difference(const char *a, const char *b)
{
	const char *line = a;

	while (*a && *a == *b) {
		if (*a == '\n')
			line = a + 1;
		a++;
		b++;
	}
	return line;
}

static void assert_same(const char *what, unsigned seed, int step, char *inc,
			char *full)
{
	ck_assert_msg(strcmp(inc, full) == 0,
		      "seed %u, step %d: the incremental %s differs from "
		      "full evaluation's at: %.300s\n(full evaluation has: "
		      "%.300s)",
		      seed, step, what, first_difference(inc, full),
		      first_difference(full, inc));
	free(inc);
	free(full);
}

/* How many incremental evaluations looked their touched profiles up in
 * the ledger one by one (few against the members) rather than joined. */
static int looked_up, runs;

/* Runs every sync at as_of on both sides; returns how many rules the
 * incremental side evaluated incrementally. */
static int run_both(const char *as_of)
{
	/* The incremental side reads the touched profiles' ledger rows
	 * each way in turn: joined with every member's (0), by its own
	 * choice (10, the default: few of these small runs qualify), or
	 * looked up one by one. */
	static const char *const lookup[] = {
		"AUDSYNC_LOOKUP_PERCENT=0", "AUDSYNC_LOOKUP_PERCENT=10",
		"AUDSYNC_LOOKUP_PERCENT=1000000"
	};
	const char *env[2][3] = {
		{ "AUDSYNC_LOG_LEVEL=debug", lookup[runs++ % 3], NULL },
		{ "AUDSYNC_LOG_LEVEL=debug", "AUDSYNC_INCREMENTAL=false", NULL }
	};
	const char *p;
	int side, n = 0;

	for (side = 0; side < 2; side++) {
		tl_result r = tl_audsync(dbs[side], env[side], "run", "--all",
					 "--as-of", as_of, NULL);

		ck_assert_msg(r.status == 0, "run at %s failed: %s", as_of,
			      r.err);
		for (p = r.err; (p = strstr(p, "incremental evaluation")); p++)
			n += side == SIDE_INC ? 1 : 1000;
		for (p = r.err; (p = strstr(p, "ledger=\"looked up\"")); p++)
			looked_up++;
		tl_result_free(&r);
	}
	ck_assert_msg(n < 1000, "AUDSYNC_INCREMENTAL=false ran incrementally");
	return n;
}

static int one_seed(unsigned seed, int steps)
{
	char as_of[64];
	long minutes = 0;
	int side, step, incremental = 0;

	rng = 0x9E3779B97F4A7C15ULL ^ seed;
	rnd(2);
	for (side = 0; side < 2; side++) {
		ck_assert_int_eq(mpctl_start(&fakes[side], NULL), 0);
		snprintf(dbbuf[side], sizeof(dbbuf[side]), "%s", tl_new_db());
		dbs[side] = dbbuf[side];
		tl_add_destination(dbs[side], "mp",
				   mpctl_base_url(fakes[side]));
	}
	load_start();
	add_rules();
	for (step = 0; step < steps; step++) {
		/* Minutes to days; sometimes not at all. */
		static const long moves[] = { 0, 7, 60, 180, 1440, 4000 };

		char *t;

		minutes += moves[rnd(6)] + rnd(30);
		t = tl_sql_valuef(dbs[0],
				  "SELECT ('" BASE_TS "'::timestamptz"
				  " + interval '%ld minutes')::text",
				  minutes);
		snprintf(as_of, sizeof(as_of), "%s", t);
		free(t);
		if (step > 0)
			random_writes(as_of);
		incremental += run_both(as_of);
		assert_same("snapshot", seed, step, snapshot_of(SIDE_INC),
			    snapshot_of(SIDE_FULL));
		assert_same("Mixpanel", seed, step, mixpanel_of(SIDE_INC),
			    mixpanel_of(SIDE_FULL));
	}
	for (side = 0; side < 2; side++) {
		mpctl_stop(fakes[side]);
		fakes[side] = NULL;
	}
	return incremental;
}

/* The run's seeds (AUDSYNC_INCR_SEED, else the clock's; AUDSYNC_INCR_SEEDS)
 * and how many loop tests share them, set before the first one forks. */
static unsigned first_seed;
static int seeds, steps, chunks;

START_TEST(incremental_runs_equal_full_evaluation)
{
	int from, count, i, incremental = 0;

	tl_seed_chunk(seeds, chunks, _i, &from, &count);
	looked_up = runs = 0;
	printf("check_rules_incr: AUDSYNC_INCR_SEED=%u AUDSYNC_INCR_SEEDS=%d:"
	       " seeds %u..%u\n",
	       first_seed, seeds, first_seed + (unsigned)from,
	       first_seed + (unsigned)(from + count - 1));
	fflush(stdout);
	for (i = 0; i < count; i++)
		incremental +=
			one_seed(first_seed + (unsigned)(from + i), steps);
	printf("check_rules_incr: %d incremental evaluations, %d of them "
	       "looking the touched profiles up in the ledger\n",
	       incremental, looked_up);
	/* Equal because nothing ran incrementally would prove nothing. */
	ck_assert_msg(incremental >= count * (steps - 1),
		      "only %d incremental evaluations", incremental);
	ck_assert_msg(looked_up > 0 && looked_up < incremental,
		      "%d of %d incremental evaluations looked up the "
		      "ledger: both ways must be tried",
		      looked_up, incremental);
}
END_TEST

static Suite *incr_suite(void)
{
	const char *s = getenv("AUDSYNC_INCR_SEED");
	const char *n = getenv("AUDSYNC_INCR_SEEDS");
	const char *st = getenv("AUDSYNC_INCR_STEPS");
	Suite *suite = suite_create("rules_incr");
	TCase *tc = tcase_create("incremental equals full");

	first_seed =
		s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
	seeds = n && *n ? atoi(n) : 2;
	steps = st && *st ? atoi(st) : 6;
	/* A seed of 10 steps takes up to 20 s on the bench machine: 20
	 * seeds a test stay far within its timeout and Check's limit. */
	chunks = tl_seed_chunks(seeds, 20);
	tcase_set_timeout(tc, 3600);
	tcase_add_loop_test(tc, incremental_runs_equal_full_evaluation, 0,
			    chunks);
	suite_add_tcase(suite, tc);
	return suite;
}

int main(void)
{
	return tl_run_suite(incr_suite());
}
