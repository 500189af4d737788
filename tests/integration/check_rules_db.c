/* check_rules_db.c - rule definitions against real PostgreSQL: each
 * construct equals hand-written SQL of the same meaning over random data
 * at many as-of times; wrong rules fail only their own sync; rule
 * audiences and traits reach the fake Mixpanel and leave it again.
 *
 * AUDSYNC_RULES_SEED fixes the random data (printed otherwise);
 * AUDSYNC_RULES_ROUNDS (default 2) sets how many data sets are drawn. */
#include "audsync/rules.h"
#include "mixpanel_ctl.h"
#include "rules_catalogue.h"
#include "testlib.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *db;

/* ---- helpers ------------------------------------------------------------ */

/* The SQL helpers of testlib, on this file's database. */
#define sqlf(...)     tl_sqlf(db, __VA_ARGS__)
#define sql_int(...)  tl_sql_intf(db, __VA_ARGS__)
#define sql_text(...) tl_sql_valuef(db, __VA_ARGS__)

/* ---- equivalence -------------------------------------------------------- */

#define BASE "'2026-06-01 00:00:00+00'::timestamptz"

/* Random profiles, identifiers (some profiles have none), events over
 * 100 days before BASE with numbers, numeric strings, nulls, missing
 * properties and ties in time, and traits. */
static void load_random(unsigned seed)
{
	sqlf("SELECT setseed(%f)", (double)(seed % 10000) / 10000.0);
	sqlf("INSERT INTO audsync.external_ids"
	     " SELECT 'p' || g, 'user_id', 'u' || g, " BASE
	     " FROM generate_series(1, 80) g WHERE random() < 0.9;"
	     "INSERT INTO audsync.events"
	     " SELECT 'p' || (1 + floor(random() * 90))::int,"
	     "  (ARRAY['A', 'B', 'C'])[1 + floor(random() * 3)::int],"
	     "  jsonb_build_object("
	     "   'total', (ARRAY['7', '42', '\"42\"', 'null', '7.5', '60',"
	     "    '99', '10', '50', '12.25'])[1 + floor(random() * 10)::int]"
	     "    ::jsonb,"
	     "   'category', (ARRAY['\"shoes\"', '\"hats\"', '\"Bags\"',"
	     "    '\"bags\"', '5', 'null', '\"shoe-laces\"', '\"hats\"'])"
	     "    [1 + floor(random() * 8)::int]::jsonb,"
	     "   'when', (ARRAY['\"2026-02-10\"', '\"2026-03-15T10:00:00Z\"',"
	     "    '\"2026-02-30\"', '\"soon\"', '3'])"
	     "    [1 + floor(random() * 5)::int]::jsonb)"
	     "  - (ARRAY['total', 'category', 'when', '', '', ''])"
	     "    [1 + floor(random() * 6)::int],"
	     "  " BASE " - random() * interval '100 days'"
	     " FROM generate_series(1, 1500) g;"
	     /* Profiles whose only events lie exactly on the edges of the
	      * cases' between windows: the start is in, the end is out. */
	     "INSERT INTO audsync.external_ids"
	     " SELECT 'edge' || e || t, 'user_id', 'u_edge' || e || t, " BASE
	     " FROM unnest(ARRAY['B', 'C']) e, generate_series(1, 4) t;"
	     "INSERT INTO audsync.events SELECT 'edge' || e || t, e,"
	     " '{\"category\": \"edge\"}',"
	     " (ARRAY[timestamptz '2026-04-01+00', '2026-05-01+00',"
	     "  '2026-03-01+00', '2026-05-15+00'])[t]"
	     " FROM unnest(ARRAY['B', 'C']) e, generate_series(1, 4) t;"
	     /* Ties in time, another value: first/last break them. */
	     "INSERT INTO audsync.events SELECT profile_id, event,"
	     " properties || '{\"category\": \"aaa\"}', ts"
	     " FROM audsync.events WHERE random() < 0.05;"
	     "INSERT INTO audsync.profile_traits"
	     " SELECT 'p' || g, jsonb_build_object("
	     "  'plan', (ARRAY['\"pro\"', '\"free\"', '\"Pro\"', 'null',"
	     "   '\"team\"'])[1 + floor(random() * 5)::int]::jsonb,"
	     "  'score', (ARRAY['3', '11', '\"12\"', '25.5', 'null'])"
	     "   [1 + floor(random() * 5)::int]::jsonb,"
	     "  'signed_up', (ARRAY['\"2026-02-10\"',"
	     "   '\"2026-03-15T10:00:00Z\"', '\"2026-02-30\"', '\"soon\"'])"
	     "   [1 + floor(random() * 4)::int]::jsonb)"
	     "  - (ARRAY['plan', 'score', 'signed_up', '', ''])"
	     "   [1 + floor(random() * 5)::int]"
	     " FROM generate_series(1, 90) g WHERE random() < 0.7;"
	     "ANALYZE");
}

typedef struct equiv_case {
	int is_trait;
	const char *lookback; /* SQL interval text or NULL */
	const char *rule;
	const char *hand; /* $1 as-of, $2 window start */
} equiv_case;

/* Hand-written pieces: every profile of the identity graph, the count of
 * its events, its traits. */
#define P                                                                      \
	"SELECT p.profile_id FROM (SELECT DISTINCT profile_id"                 \
	" FROM audsync.external_ids) p WHERE "
#define CNT(ev, cond)                                                          \
	"(SELECT count(*) FROM audsync.events e WHERE"                         \
	" e.profile_id = p.profile_id AND e.event = '" ev "' AND e.ts < $1"    \
	" AND " cond ")"
#define T                                                                      \
	"(SELECT t.traits FROM audsync.profile_traits t"                       \
	" WHERE t.profile_id = p.profile_id)"
#define NUM(path, test)                                                        \
	"jsonb_path_exists(e.properties, '$." path                             \
	" ? (@.type() == \"number\" && " test ")')"
#define VALID_DATE(x)                                                          \
	"(" x " ~ '^\\d{4}-\\d\\d-\\d\\d' AND " x " <> '2026-02-30')"
#define IN_GRAPH(col) col " IN (SELECT profile_id FROM audsync.external_ids)"
/* A property's values per profile, missing and JSON null left out. */
#define VALS(ev, prop, cond)                                                   \
	"SELECT e.profile_id, e.ts, e.properties -> '" prop "' AS v"           \
	" FROM audsync.events e WHERE e.event = '" ev "' AND e.ts < $1"        \
	" AND " cond " AND jsonb_typeof(e.properties -> '" prop "')"           \
	" <> 'null' AND " IN_GRAPH("e.profile_id")

static const equiv_case cases[] = {
	{ 0, "20 days", "{\"performed\": {\"event\": \"A\"}}",
	  P CNT("A", "e.ts >= $2") " >= 1" },
	{ 0, NULL,
	  "{\"performed\": {\"event\": \"A\", \"where\": [{\"property\":"
	  " \"total\", \"op\": \">=\", \"value\": 50}], \"count\": {\"op\":"
	  " \">=\", \"value\": 2}, \"within\": \"30 days\"}}",
	  P CNT("A", "e.ts >= $1 - interval '30 days' AND " NUM(
			     "total", "@ >= 50")) " >= 2" },
	{ 0, "20 days",
	  "{\"performed\": {\"event\": \"B\", \"between\": [\"2026-04-01\","
	  " \"2026-05-01T00:00:00Z\"]}}",
	  P CNT("B",
		"e.ts >= '2026-04-01+00' AND e.ts < '2026-05-01+00'") " >= 1" },
	{ 0, NULL,
	  "{\"performed\": {\"event\": \"C\", \"count\": {\"op\": \"=\","
	  " \"value\": 0}}}",
	  P CNT("C", "true") " = 0" },
	/* true without any event: every profile, those without events too */
	{ 0, NULL,
	  "{\"performed\": {\"event\": \"C\", \"count\": {\"op\": \">=\","
	  " \"value\": 0}}}",
	  P CNT("C", "true") " >= 0" },
	{ 0, "20 days",
	  "{\"not\": {\"performed\": {\"event\": \"C\", \"within\":"
	  " \"10 days\"}}}",
	  P "NOT " CNT("C", "e.ts >= $1 - interval '10 days'") " >= 1" },
	{ 0, "20 days",
	  "{\"performed\": {\"event\": \"A\", \"count\": {\"op\": \"<\","
	  " \"value\": 3}}}",
	  P CNT("A", "e.ts >= $2") " < 3" },
	{ 0, "20 days",
	  "{\"performed\": {\"event\": \"A\", \"count\": {\"op\": \"!=\","
	  " \"value\": 1}}}",
	  P CNT("A", "e.ts >= $2") " <> 1" },
	{ 0, "20 days",
	  "{\"and\": [{\"performed\": {\"event\": \"A\"}}, {\"or\":"
	  " [{\"trait\": {\"name\": \"plan\", \"op\": \"=\", \"value\":"
	  " \"pro\"}}, {\"not\": {\"performed\": {\"event\": \"B\"}}}]}]}",
	  P CNT("A", "e.ts >= $2") " >= 1 AND (coalesce(" T
				   " ->> 'plan' = 'pro', false) OR NOT " CNT(
					   "B", "e.ts >= $2") " >= 1)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"!=\", \"value\":"
	  " \"pro\"}}",
	  P "NOT coalesce(" T " ->> 'plan' = 'pro', false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"score\", \"op\": \">\", \"value\": 11}}",
	  P "coalesce(jsonb_path_exists(" T ", '$.score ? (@.type() =="
	    " \"number\" && @ > 11)'), false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"score\", \"op\": \"<=\", \"value\":"
	  " \"12\"}}",
	  P "coalesce((" T " ->> 'score') COLLATE \"C\" <= '12', false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"<\", \"value\":"
	  " \"p\"}}",
	  P "coalesce((" T " ->> 'plan') COLLATE \"C\" < 'p', false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"contains\", \"value\":"
	  " \"r\"}}",
	  P "coalesce(position('r' in " T " ->> 'plan') > 0, false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"not_contains\","
	  " \"value\": \"r\"}}",
	  P "coalesce(position('r' in " T " ->> 'plan') = 0, false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"starts_with\","
	  " \"value\": \"P\"}}",
	  P "coalesce(" T " ->> 'plan' LIKE 'P%', false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"ends_with\","
	  " \"value\": \"o\"}}",
	  P "coalesce(" T " ->> 'plan' LIKE '%o', false)" },
	{ 0, NULL, "{\"trait\": {\"name\": \"plan\", \"op\": \"exists\"}}",
	  P T " ->> 'plan' IS NOT NULL" },
	{ 0, NULL, "{\"trait\": {\"name\": \"plan\", \"op\": \"not_exists\"}}",
	  P T " ->> 'plan' IS NULL" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"one_of\", \"value\":"
	  " [\"pro\", \"free\"]}}",
	  P "coalesce(" T " ->> 'plan' IN ('pro', 'free'), false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"none_of\", \"value\":"
	  " [\"pro\"]}}",
	  P "coalesce(" T " ->> 'plan' NOT IN ('pro'), false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"signed_up\", \"op\": \"before_date\","
	  " \"value\": \"2026-03-01\"}}",
	  P "coalesce(CASE WHEN " VALID_DATE(
		  T
		  " ->> 'signed_up'") " THEN (" T
				      " ->> 'signed_up')::timestamptz < '2026-03-01+00' END, false)" },
	{ 0, NULL,
	  "{\"trait\": {\"name\": \"signed_up\", \"op\": \"after_date\","
	  " \"value\": \"2026-03-01T00:00:00Z\"}}",
	  P "coalesce(CASE WHEN " VALID_DATE(
		  T
		  " ->> 'signed_up'") " THEN (" T
				      " ->> 'signed_up')::timestamptz > '2026-03-01+00' END, false)" },
	{ 0, "20 days",
	  "{\"or\": [{\"member_of\": \"recent_a\"}, {\"and\": [{\"member_of\":"
	  " \"sql_b\"}, {\"not\": {\"performed\": {\"event\": \"C\"}}}]}]}",
	  P CNT("A", "e.ts >= $1 - interval '5 days'") " >= 1 OR (" CNT(
		  "B",
		  "e.ts >= $1 - interval '15 days'") " >= 1 AND " CNT("C",
								      "e.ts >= $2") " = 0)" },
	{ 0, NULL,
	  "{\"performed\": {\"event\": \"A\", \"where\": [{\"property\":"
	  " \"category\", \"op\": \"=\", \"value\": \"5\"}]}}",
	  P CNT("A", "e.properties ->> 'category' = '5'") " >= 1" },
	{ 0, NULL,
	  "{\"performed\": {\"event\": \"B\", \"where\": [{\"property\":"
	  " \"total\", \"op\": \"one_of\", \"value\": [42, 7.5, 10]}]}}",
	  P CNT("B",
		NUM("total", "(@ == 42 || @ == 7.5 || @ == 10)")) " >= 1" },
	{ 0, "20 days",
	  "{\"performed\": {\"event\": \"A\", \"where\": [{\"property\":"
	  " \"category\", \"op\": \"!=\", \"value\": \"shoes\"}], \"count\":"
	  " {\"op\": \">=\", \"value\": 2}}}",
	  P CNT("A", "e.ts >= $2 AND NOT coalesce(e.properties ->> 'category'"
		     " = 'shoes', false)") " >= 2" },
	{ 0, NULL,
	  "{\"performed\": {\"event\": \"C\", \"where\": [{\"property\":"
	  " \"when\", \"op\": \"after_date\", \"value\": \"2026-03-01\"},"
	  " {\"property\": \"category\", \"op\": \"exists\"}]}}",
	  P CNT("C",
		"coalesce(CASE WHEN " VALID_DATE(
			"e.properties ->> 'when'") " THEN (e.properties"
						   " ->> 'when')::timestamptz"
						   " > '2026-03-01+00' END,"
						   " false) AND e.properties"
						   " ->> 'category' IS NOT"
						   " NULL") " >= 1" },
	/* Computed traits. */
	{ 1, NULL,
	  "{\"event_counter\": {\"event\": \"A\", \"within\": \"15 days\"}}",
	  "SELECT e.profile_id, to_jsonb(count(*)) FROM audsync.events e"
	  " WHERE e.event = 'A' AND e.ts >= $1 - interval '15 days'"
	  " AND e.ts < $1 AND " IN_GRAPH("e.profile_id") " GROUP BY 1" },
	{ 1, "20 days",
	  "{\"aggregation\": {\"fn\": \"sum\", \"event\": \"B\", \"property\":"
	  " \"total\"}}",
	  "SELECT e.profile_id, to_jsonb(sum(v::text::numeric))"
	  " FROM audsync.events e, jsonb_path_query(e.properties,"
	  " '$.total ? (@.type() == \"number\")') v WHERE e.event = 'B'"
	  " AND e.ts >= $2 AND e.ts < $1 AND " IN_GRAPH(
		  "e.profile_id") " GROUP BY 1" },
	{ 1, NULL,
	  "{\"aggregation\": {\"fn\": \"avg\", \"event\": \"B\", \"property\":"
	  " \"total\"}}",
	  "SELECT e.profile_id, to_jsonb(avg(v::text::numeric))"
	  " FROM audsync.events e, jsonb_path_query(e.properties,"
	  " '$.total ? (@.type() == \"number\")') v WHERE e.event = 'B'"
	  " AND e.ts < $1 AND " IN_GRAPH("e.profile_id") " GROUP BY 1" },
	{ 1, NULL,
	  "{\"aggregation\": {\"fn\": \"min\", \"event\": \"A\", \"property\":"
	  " \"total\", \"within\": \"40 days\"}}",
	  "SELECT e.profile_id, to_jsonb(min(v::text::numeric))"
	  " FROM audsync.events e, jsonb_path_query(e.properties,"
	  " '$.total ? (@.type() == \"number\")') v WHERE e.event = 'A'"
	  " AND e.ts >= $1 - interval '40 days' AND e.ts < $1 AND " IN_GRAPH(
		  "e.profile_id") " GROUP BY 1" },
	{ 1, NULL,
	  "{\"aggregation\": {\"fn\": \"max\", \"event\": \"A\", \"property\":"
	  " \"total\"}}",
	  "SELECT e.profile_id, to_jsonb(max(v::text::numeric))"
	  " FROM audsync.events e, jsonb_path_query(e.properties,"
	  " '$.total ? (@.type() == \"number\")') v WHERE e.event = 'A'"
	  " AND e.ts < $1 AND " IN_GRAPH("e.profile_id") " GROUP BY 1" },
	{ 1, "20 days",
	  "{\"most_frequent\": {\"event\": \"A\", \"property\":"
	  " \"category\"}}",
	  "SELECT profile_id, v FROM (SELECT profile_id, v, row_number()"
	  " OVER (PARTITION BY profile_id ORDER BY n DESC, v #>> '{}'"
	  " COLLATE \"C\", v) AS rn FROM (SELECT profile_id, v, count(*) AS n"
	  " FROM (" VALS("A", "category",
			 "e.ts >= $2") ") x GROUP BY 1, 2) c"
				       " WHERE n >= 2) r WHERE rn = 1" },
	{ 1, NULL,
	  "{\"first\": {\"event\": \"B\", \"property\": \"category\"}}",
	  "SELECT profile_id, v FROM (SELECT profile_id, v, row_number()"
	  " OVER (PARTITION BY profile_id ORDER BY ts, v #>> '{}'"
	  " COLLATE \"C\", v) AS rn FROM (" VALS(
		  "B", "category", "true") ") x) r WHERE rn = 1" },
	{ 1, "20 days",
	  "{\"last\": {\"event\": \"B\", \"property\": \"category\"}}",
	  "SELECT profile_id, v FROM (SELECT profile_id, v, row_number()"
	  " OVER (PARTITION BY profile_id ORDER BY ts DESC, v #>> '{}'"
	  " COLLATE \"C\" DESC, v DESC) AS rn FROM (" VALS(
		  "B", "category", "e.ts >= $2") ") x) r WHERE rn = 1" },
	{ 1, NULL,
	  "{\"unique_list\": {\"event\": \"C\", \"property\": \"category\","
	  " \"between\": [\"2026-03-01\", \"2026-05-15\"]}}",
	  "SELECT profile_id, jsonb_agg(v ORDER BY v #>> '{}' COLLATE \"C\","
	  " v) FROM (SELECT DISTINCT profile_id, v FROM (" VALS(
		  "C", "category",
		  "e.ts >= '2026-03-01+00' AND e.ts < '2026-05-15+00'") ") x) d"
									" GROUP BY 1" },
	{ 1, NULL,
	  "{\"unique_list_count\": {\"event\": \"A\", \"property\":"
	  " \"category\", \"where\": [{\"property\": \"total\", \"op\": \"<\","
	  " \"value\": 50}]}}",
	  "SELECT profile_id, to_jsonb(count(DISTINCT v)) FROM (" VALS(
		  "A", "category", NUM("total", "@ < 50")) ") x GROUP BY 1" },
};
#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* The member_of targets the cases name. */
static const rules_target targets[] = {
	{ "recent_a", 0, "{\"performed\": {\"event\": \"A\"}}", NULL,
	  "5 days" },
	{ "sql_b", 0, NULL,
	  "SELECT profile_id FROM audsync.events WHERE event = 'B'"
	  " AND ts >= $2 AND ts < $1;",
	  "15 days" },
};

/* Compares case k's rule with its hand-written SQL at as_of: the rows
 * each has that the other lacks, and duplicates. Adds the hand-written
 * rows to *rows. */
static void compare_at(PGconn *conn, const equiv_case *c, const char *as_of,
		       long *rows)
{
	int k = c >= cases && c < cases + N_CASES ? (int)(c - cases) : -1;
	rules_catalog cat = { targets, 2 };
	const char **params;
	unsigned int *types;
	char err[1024], window[80];
	rules_sql r;
	PGresult *res;
	char *sql;
	int i, n;

	ck_assert_msg(rules_compile(&r, "equiv", c->is_trait, c->rule, &cat, 3,
				    err, sizeof(err)) == 0,
		      "case %d: %s", k, err);
	n = 2 + r.nparams;
	params = calloc((size_t)n, sizeof(*params));
	types = calloc((size_t)n, sizeof(*types));
	ck_assert(params && types);
	snprintf(window, sizeof(window), "%s", c->lookback ? "" : "-infinity");
	if (c->lookback) {
		char *w = sql_text("SELECT ('%s'::timestamptz - interval '%s')"
				   "::text",
				   as_of, c->lookback);

		snprintf(window, sizeof(window), "%s", w);
		free(w);
	}
	params[0] = as_of;
	params[1] = window;
	for (i = 0; i < n; i++)
		types[i] = i < 2 ? 1184 : 25;
	for (i = 0; i < r.nparams; i++)
		params[2 + i] = r.params[i];
	sql = NULL;
	ck_assert(asprintf(&sql,
			   "WITH r AS (%s), h AS (%s) SELECT"
			   " (SELECT count(*) FROM (SELECT * FROM r EXCEPT"
			   "  SELECT * FROM h) a),"
			   " (SELECT count(*) FROM (SELECT * FROM h EXCEPT"
			   "  SELECT * FROM r) b),"
			   " (SELECT count(*) FROM h),"
			   " (SELECT count(*) - count(DISTINCT profile_id)"
			   "  FROM r)",
			   r.sql, c->hand) > 0);
	res = PQexecParams(conn, sql, n, types, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK,
		      "case %d (%s): %s", k, c->rule,
		      PQresultErrorMessage(res));
	ck_assert_msg(atol(PQgetvalue(res, 0, 0)) == 0 &&
			      atol(PQgetvalue(res, 0, 1)) == 0 &&
			      atol(PQgetvalue(res, 0, 3)) == 0,
		      "case %d at %s: %s rows only the rule has, %s only the "
		      "hand-written SQL has, %s duplicates: %s",
		      k, as_of, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		      PQgetvalue(res, 0, 3), c->rule);
	*rows += atol(PQgetvalue(res, 0, 2));
	PQclear(res);
	free(sql);
	free(params);
	free(types);
	rules_sql_free(&r);
}

/* The condition of an audience case's hand-written SQL, without P. */
static const char *hand_condition(const equiv_case *c)
{
	return c->hand + strlen(P);
}

/* A random tree of audience cases that share a lookback, joined by and,
 * or and not, compared with the same tree of their hand-written
 * conditions. */
static void compare_random(PGconn *conn, const char *as_of)
{
	static const char *const lookbacks[] = { NULL, "20 days" };
	const char *lb = lookbacks[rand() % 2];
	int leaves = 2 + rand() % 3, picked = 0, guard = 0;
	char *rule = NULL, *hand = NULL, *r2, *h2;
	equiv_case c;
	long rows = 0;

	while (picked < leaves && guard++ < 1000) {
		const equiv_case *leaf = &cases[rand() % N_CASES];
		int neg = rand() % 3 == 0, is_and = rand() % 2;

		if (leaf->is_trait || (leaf->lookback == NULL) != (lb == NULL))
			continue;
		if (!rule) {
			ck_assert(asprintf(&r2, "%s%s%s",
					   neg ? "{\"not\": " : "", leaf->rule,
					   neg ? "}" : "") > 0);
			ck_assert(asprintf(&h2, "%s(%s)", neg ? "NOT " : "",
					   hand_condition(leaf)) > 0);
		} else {
			ck_assert(asprintf(&r2, "{\"%s\": [%s, %s%s%s]}",
					   is_and ? "and" : "or", rule,
					   neg ? "{\"not\": " : "", leaf->rule,
					   neg ? "}" : "") > 0);
			ck_assert(asprintf(&h2, "(%s %s %s(%s))", hand,
					   is_and ? "AND" : "OR",
					   neg ? "NOT " : "",
					   hand_condition(leaf)) > 0);
		}
		free(rule);
		free(hand);
		rule = r2;
		hand = h2;
		picked++;
	}
	ck_assert(asprintf(&h2, P "%s", hand) > 0);
	c.is_trait = 0;
	c.lookback = lb;
	c.rule = rule;
	c.hand = h2;
	compare_at(conn, &c, as_of, &rows);
	free(rule);
	free(hand);
	free(h2);
}

static unsigned seed_of(void)
{
	const char *s = getenv("AUDSYNC_RULES_SEED");
	unsigned seed =
		s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);

	printf("check_rules_db: AUDSYNC_RULES_SEED=%u\n", seed);
	fflush(stdout);
	return seed;
}

START_TEST(every_construct_equals_its_hand_written_sql)
{
	const char *r = getenv("AUDSYNC_RULES_ROUNDS");
	int rounds = r && *r ? atoi(r) : 2, round, k, a;
	unsigned seed = seed_of();
	long rows[N_CASES] = { 0 };
	PGconn *conn;

	srand(seed);
	for (round = 0; round < rounds; round++) {
		db = tl_new_db();
		load_random(seed + (unsigned)round);
		conn = PQconnectdb(db);
		ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
		PQclear(PQexec(conn, "SET TimeZone = 'UTC'"));
		for (a = 0; a < 8; a++) {
			char *as_of =
				sql_text("SELECT (" BASE " - interval '70 days'"
					 " + interval '%d hours')::text",
					 rand() % (72 * 24));

			for (k = 0; k < N_CASES; k++)
				compare_at(conn, &cases[k], as_of, &rows[k]);
			for (k = 0; k < 6; k++)
				compare_random(conn, as_of);
			free(as_of);
		}
		PQfinish(conn);
	}
	/* A case whose result is always empty proves nothing. */
	for (k = 0; k < N_CASES; k++)
		ck_assert_msg(rows[k] > 0, "case %d never had a row: %s", k,
			      cases[k].rule);
}
END_TEST

/* ---- the bad-rule catalogue, through validate and run ------------------- */

static mpctl *fake;

static void start_fake(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
}

static void stop_fake(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* A computation with a rule (or SQL when sql is set) and, unless
 * sync_mode is NULL, its sync to "mp". */
static void add_rule(const char *key, int is_trait, const char *rule,
		     const char *sql, const char *lookback,
		     const char *sync_mode)
{
	sqlf("INSERT INTO audsync.computations (key, name, kind, definition,"
	     " definition_sql, lookback) VALUES ('%s', '%s', '%s',"
	     " %s$r$%s$r$%s, %s$s$%s$s$%s, %s)",
	     key, key, is_trait ? "trait" : "audience", rule ? "" : "NULL --",
	     rule ? rule : "", rule ? "" : "\n", sql ? "" : "NULL --",
	     sql ? sql : "", sql ? "" : "\n", lookback ? lookback : "NULL");
	if (sync_mode)
		sqlf("INSERT INTO audsync.syncs (computation_id,"
		     " destination_id, mode) SELECT c.id, d.id, '%s'"
		     " FROM audsync.computations c, audsync.destinations d"
		     " WHERE c.key = '%s' AND d.name = 'mp'",
		     sync_mode, key);
}

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

#define assert_prop(did, prop, want) check_prop(__LINE__, did, prop, want)
static void check_prop(int line, const char *did, const char *prop,
		       const char *want)
{
	char *v = profile_prop(did, prop);
	int ok = want ? v && strcmp(v, want) == 0 : v == NULL;

	ck_assert_msg(
		ok, "line %d: Mixpanel profile %s has %s = %s, expected %s",
		line, did, prop, v ? v : "(absent)", want ? want : "(absent)");
	free(v);
}

/* EXPLAIN of sql with its parameters, one text. Caller frees. */
static char *plan_of(PGconn *conn, const char *sql, int n,
		     const unsigned int *types, const char *const *params)
{
	char *text = NULL, *plan = NULL;
	PGresult *res;
	int i;

	ck_assert(asprintf(&text, "EXPLAIN %s", sql) > 0);
	res = PQexecParams(conn, text, n, types, params, NULL, NULL, 0);
	free(text);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s",
		      PQresultErrorMessage(res));
	for (i = 0; i < PQntuples(res); i++) {
		char *line = NULL;

		ck_assert(asprintf(&line, "%s%s\n", plan ? plan : "",
				   PQgetvalue(res, i, 0)) > 0);
		free(plan);
		plan = line;
	}
	PQclear(res);
	return plan;
}

/* An hourly run evaluates a rule over its touched profiles only: each
 * one's events of the window, found by the per-profile events index.
 * For a rule that names events but no property the index holds all it
 * needs (sql/020_events_profile_event.sql), so the lookup reads no table
 * page: on a million profiles, a quarter of the evaluation in an hourly
 * run where only time moved. (A bitmap scan, which always reads the table, is what the
 * planner picks on these few rows, and not on a million: it is off.) */
START_TEST(an_hourly_run_reads_touched_events_from_the_index_alone)
{
	static const char *const kinds[] = {
		"{\"performed\": {\"event\": \"Purchase\"}}",
		"{\"performed\": {\"event\": \"Purchase\", \"count\":"
		" {\"op\": \">=\", \"value\": 2}, \"within\": \"7 days\"}}",
		/* exactly once: new events do not decide it alone */
		"{\"performed\": {\"event\": \"Purchase\", \"count\":"
		" {\"op\": \"=\", \"value\": 1}}}",
	};
	unsigned int types[16];
	const char *params[16];
	rules_sql r;
	char err[1024];
	PGconn *conn;
	int k, i;

	db = tl_new_db();
	sqlf("INSERT INTO audsync.external_ids SELECT 'p' || g, 'user_id',"
	     " 'u' || g, '2026-01-01' FROM generate_series(1, 2000) g;"
	     "INSERT INTO audsync.events SELECT 'p' || (g %% 2000 + 1),"
	     " CASE WHEN g %% 3 = 0 THEN 'Purchase' ELSE 'Viewed' END, '{}',"
	     " timestamptz '2026-06-01' - g * interval '1 minute'"
	     " FROM generate_series(1, 20000) g");
	sqlf("VACUUM ANALYZE audsync.events");
	conn = PQconnectdb(db);
	ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
	PQclear(PQexec(conn,
		       "SET enable_bitmapscan = off;"
		       " CREATE TEMP TABLE audsync_touched (profile_id"
		       " text, identifiers boolean NOT NULL DEFAULT false,"
		       " fresh bigint NOT NULL DEFAULT 0);"
		       " INSERT INTO audsync_touched"
		       " VALUES ('p1'), ('p2'); ANALYZE audsync_touched"));
	for (k = 0; k < 3; k++) {
		/* As an evaluation binds them: this run's as-of and window
		 * start, the sync, no trait key. */
		static const char *const engine[] = { "2026-06-01 00:00",
						      "2026-05-02 00:00", "1",
						      NULL };
		char *plan;

		ck_assert_msg(rules_compile(&r, "plan", 0, kinds[k], NULL, 5,
					    err, sizeof(err)) == 0,
			      "%s", err);
		ck_assert_ptr_nonnull(r.touched_sql);
		ck_assert_int_le(4 + r.nparams, 16);
		for (i = 0; i < 4; i++) {
			types[i] = i < 2 ? 1184 : 25;
			params[i] = engine[i];
		}
		for (i = 0; i < r.nparams; i++) {
			types[4 + i] = 25;
			params[4 + i] = r.params[i];
		}
		plan = plan_of(conn, r.touched_sql, 4 + r.nparams, types,
			       params);
		ck_assert_msg(tl_contains(plan, "Index Only Scan using "
						"events_profile_ts"),
			      "rule %d reads the events table:\n%s", k, plan);
		/* A count that only grows: the profiles whose events since
		 * the last run meet it are found from those events alone
		 * (counted as they were collected), and their older events
		 * are not read (rules.c, put_sure_named()). */
		ck_assert_msg(k == 2 ||
				      (tl_contains(plan, "Filter: (fresh <") &&
				       tl_contains(plan, "Filter: ((fresh >")),
			      "rule %d reads every touched profile's events in "
			      "full:\n%s",
			      k, plan);
		free(plan);
		/* Few touched profiles: one scan of the index takes them
		 * all, rather than a scan per profile of a join. */
		plan = plan_of(conn, r.few_sql, 4 + r.nparams, types, params);
		ck_assert_msg(tl_contains(plan, "Index Only Scan using "
						"events_profile_ts") &&
				      tl_contains(plan, "(profile_id = ANY ("),
			      "rule %d, few touched profiles, joins them:\n%s",
			      k, plan);
		free(plan);
		rules_sql_free(&r);
	}
	PQfinish(conn);
}
END_TEST

START_TEST(a_wrong_rule_fails_only_its_own_sync_naming_the_json_path)
{
	tl_result res;
	int i;

	tl_sql(db,
	       "INSERT INTO audsync.external_ids VALUES"
	       " ('p1', 'user_id', 'u1', now() - interval '2 days');"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Order Completed', '{}', now() - interval '1 day')");
	for (i = 0; i < N_HELPERS; i++)
		add_rule(helper_computations[i].key,
			 helper_computations[i].is_trait,
			 helper_computations[i].definition,
			 helper_computations[i].definition_sql, NULL, NULL);
	for (i = 0; i < N_BAD_RULES; i++) {
		char *def = bad_rule_definition(i);

		add_rule(bad_rules[i].key, bad_rules[i].is_trait, def, NULL,
			 NULL, "identify");
		free(def);
	}
	add_rule("canary", 0, NULL,
		 "SELECT profile_id FROM audsync.events WHERE ts < $1", NULL,
		 "identify");

	res = tl_audsync(db, NULL, "validate", NULL);
	ck_assert_int_eq(res.status, 3);
	for (i = 0; i < N_BAD_RULES; i++) {
		char want[200], *line, *end;

		snprintf(want, sizeof(want),
			 "problem: computation %s: ", bad_rules[i].key);
		line = strstr(res.out, want);
		ck_assert_msg(line != NULL, "validate lacks %s", want);
		end = strchr(line, '\n');
		ck_assert_ptr_nonnull(end);
		*end = '\0';
		ck_assert_msg(strstr(line, bad_rules[i].error), "%s lacks %s",
			      line, bad_rules[i].error);
		*end = '\n';
	}
	ck_assert(!tl_contains(res.out, "computation canary"));
	tl_result_free(&res);

	res = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_int_eq(res.status, 1);
	tl_result_free(&res);
	for (i = 0; i < N_BAD_RULES; i++) {
		char *err = sql_text(
			"SELECT r.error FROM audsync.runs r"
			" JOIN audsync.syncs s ON s.id = r.sync_id"
			" JOIN audsync.computations c ON c.id = s.computation_id"
			" WHERE c.key = '%s' AND r.status = 'failed'",
			bad_rules[i].key);

		ck_assert_msg(err && strstr(err, bad_rules[i].error),
			      "%s: run error %s", bad_rules[i].key,
			      err ? err : "(none)");
		free(err);
	}
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.runs r"
				 " JOIN audsync.syncs s ON s.id = r.sync_id"
				 " JOIN audsync.computations c"
				 "  ON c.id = s.computation_id"
				 " WHERE c.key = 'canary'"
				 " AND r.status = 'succeeded'"),
			 1);
	assert_prop("u1", "canary", "true");
}
END_TEST

/* ---- end to end ---------------------------------------------------------- */

/* Events in the fake named event for distinct_id whose property key has
 * the JSON text value; event NULL: every event. */
static int count_events(const char *event, const char *did, const char *key,
			const char *value)
{
	int n = event ? mpctl_events(fake, event, did, key, value)
		      : mpctl_events(fake, NULL, NULL, NULL, NULL);

	ck_assert_int_ge(n, 0);
	return n;
}

/* Runs every sync at as_of; its n rules must run incrementally (only
 * the profiles whose events crossed the window's edge are evaluated). */
static void run_incrementally_n(const char *as_of, int rules)
{
	static const char *const env[] = { "AUDSYNC_LOG_LEVEL=debug", NULL };
	tl_result res =
		tl_audsync(db, env, "run", "--all", "--as-of", as_of, NULL);
	const char *p = res.err;
	int n = 0;

	ck_assert_msg(res.status == 0, "%s", res.err);
	while ((p = strstr(p, "incremental evaluation")) != NULL) {
		n++;
		p++;
	}
	ck_assert_msg(n == rules, "%d incremental evaluations: %s", n, res.err);
	tl_result_free(&res);
}

static void run_incrementally(const char *as_of)
{
	run_incrementally_n(as_of, 2);
}

/* A rule audience with a lookback and a rule trait, in mode: the members
 * enter, then leave as their events age out of the window. */
static void rule_audience_and_trait_enter_and_age_out(const char *mode)
{
	tl_result res;
	char *t1, *t2;

	tl_sql(db,
	       "INSERT INTO audsync.external_ids VALUES"
	       " ('p1', 'user_id', 'u1', now() - interval '30 days'),"
	       " ('p2', 'user_id', 'u2', now() - interval '30 days'),"
	       " ('p3', 'user_id', 'u3', now() - interval '30 days');"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Order Completed', '{\"total\": 60, \"sku\": \"b\"}',"
	       "  now() - interval '9 days'),"
	       " ('p1', 'Order Completed', '{\"total\": 70, \"sku\": \"a\"}',"
	       "  now() - interval '8 days'),"
	       " ('p2', 'Order Completed', '{\"total\": 10, \"sku\": \"c\"}',"
	       "  now() - interval '8 days 19 hours'),"
	       " ('p3', 'Order Completed', '{\"total\": 90, \"sku\": \"d\"}',"
	       "  now() - interval '2 days')");
	add_rule(
		"big_spender", 0,
		"{\"performed\": {\"event\": \"Order Completed\", \"where\":"
		" [{\"property\": \"total\", \"op\": \">=\", \"value\": 50}]}}",
		NULL, "'3 days'", mode);
	add_rule("order_total", 1,
		 "{\"aggregation\": {\"fn\": \"sum\", \"event\":"
		 " \"Order Completed\", \"property\": \"total\"}}",
		 NULL, "'3 days'", mode);
	/* T1: p1's orders lie 1 and 2 days back, p2's 2 days: all in the
	 * window; p3's order lies in the future and does not count. */
	t1 = sql_text("SELECT date_trunc('second', now() - interval '7 days'"
		      ")::text");
	t2 = sql_text("SELECT date_trunc('second', now() - interval '5 days'"
		      " - interval '12 hours')::text");
	res = tl_audsync(db, NULL, "run", "--all", "--as-of", t1, NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	tl_result_free(&res);
	if (strcmp(mode, "identify") == 0) {
		assert_prop("u1", "big_spender", "true");
		assert_prop("u2", "big_spender", NULL);
		assert_prop("u3", "big_spender", NULL);
		assert_prop("u1", "order_total", "130");
		assert_prop("u2", "order_total", "10");
		assert_prop("u3", "order_total", NULL);
	} else {
		ck_assert_int_eq(count_events("Audience Entered", "u1",
					      "big_spender", "true"),
				 1);
		ck_assert_int_eq(count_events("Trait Computed", "u1",
					      "order_total", "130"),
				 1);
		ck_assert_int_eq(count_events("Trait Computed", "u2",
					      "order_total", "10"),
				 1);
		ck_assert_int_eq(count_events(NULL, NULL, NULL, NULL), 3);
	}
	/* T2: p1's first order left the 3-day window, p2's too: p1 stays
	 * with 70, p2's trait goes null. */
	run_incrementally(t2);
	if (strcmp(mode, "identify") == 0) {
		assert_prop("u1", "big_spender", "true");
		assert_prop("u1", "order_total", "70");
		assert_prop("u2", "order_total", "null");
	} else {
		ck_assert_int_eq(count_events("Trait Computed", "u1",
					      "order_total", "70"),
				 1);
		ck_assert_int_eq(count_events("Trait Computed", "u2",
					      "order_total", "null"),
				 1);
		ck_assert_int_eq(count_events(NULL, NULL, NULL, NULL), 5);
	}
	/* Later still, p1 ages out of the audience: an exit. */
	free(t2);
	t2 = sql_text("SELECT date_trunc('second', now() - interval '4 days'"
		      ")::text");
	run_incrementally(t2);
	if (strcmp(mode, "identify") == 0) {
		assert_prop("u1", "big_spender", "false");
		assert_prop("u1", "order_total", "null");
	} else {
		ck_assert_int_eq(count_events("Audience Exited", "u1",
					      "big_spender", "false"),
				 1);
		ck_assert_int_eq(count_events("Trait Computed", "u1",
					      "order_total", "null"),
				 1);
		ck_assert_int_eq(count_events(NULL, NULL, NULL, NULL), 7);
	}
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audsync.runs"
				 " WHERE status <> 'succeeded'"),
			 0);
	free(t1);
	free(t2);
}

/* The ledger's rows and index entries read so far, once the server has
 * them all: a backend reports its reads when it goes idle or at the
 * latest when it exits, just after the run's process. */
static long long settled(const char *q)
{
	long long last = -1, now = sql_int("%s", q);
	int i;

	for (i = 0; i < 50 && now != last; i++) {
		usleep(300 * 1000);
		last = now;
		now = sql_int("%s", q);
	}
	return now;
}

static long long ledger_reads(void)
{
	return settled("SELECT (SELECT seq_tup_read FROM pg_stat_user_tables"
		       "  WHERE relid = 'audsync.snapshot_members'::regclass)"
		       " + (SELECT coalesce(sum(idx_tup_read), 0)"
		       "  FROM pg_stat_user_indexes"
		       "  WHERE relid = 'audsync.snapshot_members'::regclass)");
}

/* The events read so far by profile, from the (profile_id, ts) indexes. */
static long long events_read_by_profile(void)
{
	return settled("SELECT coalesce(sum(idx_tup_read), 0)"
		       " FROM pg_stat_user_indexes"
		       " WHERE relid = 'audsync.events'::regclass"
		       " AND indexrelname LIKE 'events\\_profile\\_ts%%'");
}

/* 20 000 buyers among 30 000 profiles, rule (a trait when is_trait)
 * synced, then profiles first..first+499 buy again: the ledger rows the
 * hourly run after that read (*events: the events it read by profile,
 * or NULL). */
static long long ledger_reads_of_500_buyers(const char *key, int is_trait,
					    const char *rule, int first,
					    long long *events)
{
	tl_result res;
	long long before, events_before;

	tl_sql(db,
	       "INSERT INTO audsync.external_ids SELECT 'p' || g, 'user_id',"
	       " 'u' || g, '2026-01-01' FROM generate_series(1, 30000) g;"
	       "INSERT INTO audsync.events SELECT 'p' || g, 'Purchase', '{}',"
	       " timestamptz '2026-06-01' - g * interval '1 second'"
	       " FROM generate_series(1, 20000) g;"
	       "ANALYZE audsync.events");
	add_rule(key, is_trait, rule, NULL, "'30 days'", "identify");
	res = tl_audsync(db, NULL, "run", "--all", "--as-of",
			 "2026-06-01 01:00", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	tl_result_free(&res);
	/* The first run refreshed the ledger's statistics as it ended
	 * (20 000 rows written): the next one plans with them. */
	sqlf("INSERT INTO audsync.events SELECT 'p' || g, 'Purchase', '{}',"
	     " '2026-06-01 01:30' FROM generate_series(%d, %d) g",
	     first, first + 499);
	before = ledger_reads();
	events_before = events_read_by_profile();
	run_incrementally_n("2026-06-01 02:00", 1);
	if (events)
		*events = events_read_by_profile() - events_before;
	return ledger_reads() - before;
}

/* An hourly run where a few of many members got new events reads the
 * ledger of those few, not of every member: the run costs what changed. */
START_TEST(an_hourly_run_reads_the_ledger_of_the_touched_profiles_only)
{
	long long read = ledger_reads_of_500_buyers(
		"buyers", 0, "{\"performed\": {\"event\": \"Purchase\"}}",
		29501, NULL);

	assert_prop("u30000", "buyers", "true");
	assert_prop("u29501", "buyers", "true");
	ck_assert_msg(read < 10000,
		      "the run read %lld ledger entries for 500 new buyers"
		      " among 20000 members",
		      read);
}
END_TEST

/* The same for a rule trait: 500 of the 20 000 buy again. */
START_TEST(an_hourly_trait_run_reads_the_ledger_of_the_touched_profiles_only)
{
	long long read = ledger_reads_of_500_buyers(
		"purchases", 1,
		"{\"event_counter\": {\"event\": \"Purchase\"}}", 19501, NULL);

	assert_prop("u20000", "purchases", "2");
	assert_prop("u19500", "purchases", "1");
	ck_assert_msg(read < 10000,
		      "the run read %lld ledger entries for 500 buyers"
		      " among 20000 members",
		      read);
}
END_TEST

/* An hourly run where 500 of 20 000 buyers buy again: for a count that
 * only grows, their new purchases decide them, and none of their older
 * events is read (rules.c, put_sure_named()). */
START_TEST(an_hourly_run_reads_no_older_events_of_profiles_new_ones_decide)
{
	long long events;

	ledger_reads_of_500_buyers("buyers", 0,
				   "{\"performed\": {\"event\": \"Purchase\"}}",
				   19501, &events);
	assert_prop("u20000", "buyers", "true");
	assert_prop("u19501", "buyers", "true");
	ck_assert_msg(events == 0,
		      "the run read %lld older events of 500 buyers whose new"
		      " purchases decide them",
		      events);
}
END_TEST

/* New events decide a member alone only for a count that only grows,
 * and only those of its window; the others' older events are read. The
 * last run was at 01:00, this one at 02:00. */
START_TEST(new_events_decide_alone_only_a_count_that_grows)
{
	static const char *const rules[][2] = {
		{ "twice", "{\"performed\": {\"event\": \"Purchase\","
			   " \"count\": {\"op\": \">=\", \"value\": 2}}}" },
		{ "more_than_once",
		  "{\"performed\": {\"event\": \"Purchase\", \"count\":"
		  " {\"op\": \">\", \"value\": 1}}}" },
		{ "once", "{\"performed\": {\"event\": \"Purchase\","
			  " \"count\": {\"op\": \"=\", \"value\": 1}}}" },
		{ "last_half_hour",
		  "{\"performed\": {\"event\": \"Purchase\", \"within\":"
		  " \"30 minutes\"}}" },
		{ "big",
		  "{\"performed\": {\"event\": \"Purchase\","
		  " \"where\": [{\"property\": \"total\", \"op\": \">=\","
		  " \"value\": 50}]}}" },
	};
	/* Each profile's memberships after the second run, in the order
	 * of rules ('1' member, '0' not, '-' never told). */
	static const char *const want[][2] = {
		{ "u1", "110--" }, /* one old purchase, one new: exits once */
		{ "u2", "11-1-" }, /* two new, the last at 01:35 */
		{ "u3", "--1--" }, /* one old */
		{ "u4", "--1--" }, /* one new, at 01:10 */
		{ "u5", "--111" }, /* one new, at 01:40, of 60 */
		{ "u7", "11-01" }, /* three old, of 60 at 00:45 */
	};
	char *got;
	size_t i, k;

	tl_sql(db,
	       "INSERT INTO audsync.external_ids SELECT 'p' || g, 'user_id',"
	       " 'u' || g, '2026-01-01' FROM generate_series(1, 7) g"
	       " WHERE g <> 6;"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Purchase', '{}', '2026-05-30 12:00'),"
	       " ('p3', 'Purchase', '{}', '2026-05-30 12:00');"
	       /* a member of each but once at the first run, so that each
		* runs incrementally at the second */
	       "INSERT INTO audsync.events SELECT 'p7', 'Purchase',"
	       " '{\"total\": 60}', '2026-06-01 00:45'"
	       " FROM generate_series(1, 3)");
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		add_rule(rules[i][0], 0, rules[i][1], NULL, "'30 days'",
			 "identify");
	run_incrementally_n("2026-06-01 01:00", 0);
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Purchase', '{}', '2026-06-01 01:10'),"
		   " ('p2', 'Purchase', '{}', '2026-06-01 01:20'),"
		   " ('p2', 'Purchase', '{}', '2026-06-01 01:35'),"
		   " ('p4', 'Purchase', '{}', '2026-06-01 01:10'),"
		   " ('p5', 'Purchase', '{\"total\": 60}', '2026-06-01 01:40'),"
		   /* no identifier: a member of nothing */
		   " ('p6', 'Purchase', '{}', '2026-06-01 01:40'),"
		   " ('p6', 'Purchase', '{}', '2026-06-01 01:45')");
	run_incrementally_n("2026-06-01 02:00", 5);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		for (k = 0; k < sizeof(rules) / sizeof(rules[0]); k++) {
			char c = want[i][1][k];

			got = profile_prop(want[i][0], rules[k][0]);
			ck_assert_msg(
				c == '-' ? got == NULL
					 : got && strcmp(got,
							 c == '1' ? "true"
								  : "false") ==
							   0,
				"%s, %s: %s, not %c", want[i][0], rules[k][0],
				got ? got : "never told", c);
			free(got);
		}
	ck_assert_int_eq(sql_int("SELECT count(*)"
				 " FROM audsync.snapshot_members"
				 " WHERE profile_id = 'p6' AND member"),
			 0);
}
END_TEST

/* New purchases decide a buyer's count alone, not whether it is still
 * someone: a member that bought again in the hour it lost every
 * identifier exits, in the purchase's transaction or another one. */
START_TEST(a_buyer_without_identifiers_exits_whatever_it_bought)
{
	char *got;

	tl_sql(db, "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		   " 'user_id', 'u' || g, '2026-01-01'"
		   " FROM generate_series(1, 3) g;"
		   "INSERT INTO audsync.events SELECT 'p' || g, 'Purchase',"
		   " '{}', '2026-05-30 12:00' FROM generate_series(1, 3) g");
	add_rule("buyers", 0, "{\"performed\": {\"event\": \"Purchase\"}}",
		 NULL, "'30 days'", "identify");
	run_incrementally_n("2026-06-01 01:00", 0);
	tl_sql(db, "INSERT INTO audsync.events SELECT 'p' || g, 'Purchase',"
		   " '{}', '2026-06-01 01:30' FROM generate_series(1, 3) g");
	tl_sql(db, "DELETE FROM audsync.external_ids WHERE profile_id = 'p1'");
	tl_sql(db, "BEGIN;"
		   "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Purchase', '{}', '2026-06-01 01:40');"
		   "DELETE FROM audsync.external_ids WHERE profile_id = 'p2';"
		   "COMMIT");
	run_incrementally_n("2026-06-01 02:00", 1);
	assert_prop("u1", "buyers", "false");
	assert_prop("u2", "buyers", "false");
	assert_prop("u3", "buyers", "true");
	/* what audsync status says of the run */
	got = tl_sql_value(db, "SELECT members || ' members, ' || exited"
			       " || ' exited' FROM audsync.runs"
			       " ORDER BY id DESC LIMIT 1");
	ck_assert_str_eq(got, "1 members, 2 exited");
	free(got);
}
END_TEST

/* A former member outside the identity graph that buys again is no
 * member: its new purchases would decide it alone (rules.c, put_sure_named()),
 * but the run finds it has no identifier anywhere. Its ledger row, the
 * exit Mixpanel was told, stays as it was, the run counts no one
 * entering, and Mixpanel hears nothing. Buyers without an identifier of
 * the sync's types, but with an anonymous_id, are members all the same
 * (the identity graph has them), with no one to tell. */
START_TEST(a_former_member_outside_the_graph_stays_former)
{
	json_object *requests, *list;
	char *before, *after, *got;

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', '2026-01-01'),"
		   " ('p2', 'user_id', 'u2', '2026-01-01'),"
		   " ('p3', 'anonymous_id', 'a3', '2026-01-01'),"
		   " ('p4', 'anonymous_id', 'a4', '2026-01-01');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Purchase', '{}', '2026-05-02 12:00'),"
		   " ('p2', 'Purchase', '{}', '2026-05-30 12:00')");
	add_rule("buyers", 0, "{\"performed\": {\"event\": \"Purchase\"}}",
		 NULL, "'30 days'", "identify");
	run_incrementally_n("2026-05-31 12:00", 0);
	assert_prop("u1", "buyers", "true");
	/* p1's purchase ages out: it exits, and its row stays as a former
	 * member's */
	run_incrementally_n("2026-06-01 13:00", 1);
	assert_prop("u1", "buyers", "false");
	tl_sql(db, "DELETE FROM audsync.external_ids WHERE profile_id = 'p1'");
	run_incrementally_n("2026-06-01 14:00", 1);
	before = tl_sql_value(db, "SELECT value::text || since || targets"
				  " || member FROM audsync.snapshot_members"
				  " WHERE profile_id = 'p1'");
	ck_assert_msg(before != NULL, "p1's former member row is gone");
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Purchase', '{}', '2026-06-01 14:30'),"
		   " ('p3', 'Purchase', '{}', '2026-06-01 14:40'),"
		   " ('p4', 'Purchase', '{}', '2026-06-01 14:50')");
	ck_assert_int_eq(mpctl_reset(fake), 0);
	run_incrementally_n("2026-06-01 15:00", 1);
	after = tl_sql_value(db, "SELECT value::text || since || targets"
				 " || member FROM audsync.snapshot_members"
				 " WHERE profile_id = 'p1'");
	ck_assert_msg(after && strcmp(before, after) == 0,
		      "p1's ledger row was %s, is %s", before,
		      after ? after : "gone");
	ck_assert_int_eq(
		sql_int("SELECT count(*)"
			" FROM audsync.snapshot_members"
			" WHERE profile_id IN ('p3', 'p4') AND member"),
		2);
	got = tl_sql_value(db, "SELECT members || ' members, ' || entered"
			       " || ' entered, ' || skipped || ' skipped'"
			       " FROM audsync.runs ORDER BY id DESC LIMIT 1");
	ck_assert_str_eq(got, "3 members, 2 entered, 2 skipped");
	ck_assert_int_eq(mpctl_requests(&requests, fake), 0);
	ck_assert(json_object_object_get_ex(requests, "requests", &list));
	ck_assert_int_eq((int)json_object_array_length(list), 0);
	json_object_put(requests);
	free(got);
	free(before);
	free(after);
}
END_TEST

START_TEST(rule_audience_and_trait_in_identify_mode)
{
	rule_audience_and_trait_enter_and_age_out("identify");
}
END_TEST

START_TEST(rule_audience_and_trait_in_track_mode)
{
	rule_audience_and_trait_enter_and_age_out("track");
}
END_TEST

START_TEST(explain_prints_the_statement_and_its_bound_values)
{
	tl_result res;

	add_rule(
		"recent_buyers", 0,
		"{\"performed\": {\"event\": \"Order Completed\", \"where\":"
		" [{\"property\": \"total\", \"op\": \">=\", \"value\": 50}]}}",
		NULL, "'30 days'", NULL);
	res = tl_audsync(db, NULL, "explain", "recent_buyers", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	ck_assert(tl_contains(res.out, "SELECT ev.profile_id FROM"));
	ck_assert(
		tl_contains(res.out, "$2 = the window start: as-of - 30 days"));
	ck_assert(tl_contains(res.out, "$5 = \"Order Completed\""));
	ck_assert(tl_contains(res.out, "$7 = \"50\""));
	/* every parameter, in order, the unused ones said to be so */
	{
		const char *at = res.out;
		char line[32];
		int i;

		for (i = 1; i <= 7; i++) {
			snprintf(line, sizeof(line), "\n--   $%d = ", i);
			at = strstr(at, line);
			ck_assert_msg(at != NULL, "no $%d, or out of order: %s",
				      i, res.out);
			if (i == 3 || i == 4)
				ck_assert_msg(strncmp(at + strlen(line),
						      "unused", 6) == 0,
					      "$%d is not said unused: %s", i,
					      res.out);
		}
	}
	ck_assert(tl_contains(res.out, "-- evaluation: incremental"));
	ck_assert(!tl_contains(res.out, "'Order Completed'"));
	tl_result_free(&res);
	/* A target of hand-written SQL: nothing says what it depends on. */
	add_rule("sql_pro", 0, NULL,
		 "SELECT profile_id FROM audsync.profile_traits", NULL, NULL);
	add_rule("pro_buyers", 0,
		 "{\"and\": [{\"member_of\": \"recent_buyers\"},"
		 " {\"member_of\": \"sql_pro\"}]}",
		 NULL, NULL, NULL);
	res = tl_audsync(db, NULL, "explain", "pro_buyers", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	ck_assert_msg(tl_contains(res.out,
				  "-- evaluation: full evaluation because "
				  "member_of sql_pro, which is defined by "
				  "definition_sql"),
		      "%s", res.out);
	tl_result_free(&res);
	/* A source replaced by a view has no change log. */
	tl_sql(db, "ALTER TABLE audsync.events RENAME TO events_t;"
		   "CREATE VIEW audsync.events AS SELECT * FROM"
		   " audsync.events_t");
	res = tl_audsync(db, NULL, "explain", "recent_buyers", NULL);
	ck_assert_msg(tl_contains(res.out,
				  "full evaluation because audsync.events is "
				  "not a table whose changes are logged"),
		      "%s", res.out);
	tl_result_free(&res);
	/* a key that names nothing is a typo: usage, exit 2 */
	res = tl_audsync(db, NULL, "explain", "nobody", NULL);
	ck_assert_int_eq(res.status, 2);
	ck_assert(tl_contains(res.err, "no computation has the key"));
	tl_result_free(&res);
}
END_TEST

/* A number in a rule is compared as written: 19.99 and 0.1 are not
 * rounded through a double, 2^63 is not clamped to 64 bits. */
START_TEST(a_number_in_a_rule_compares_as_written)
{
	static const struct {
		const char *key, *rule, *members;
	} cases[] = {
		{ "eq",
		  "{\"property\": \"total\", \"op\": \"=\","
		  " \"value\": 19.99}",
		  "u1" },
		{ "gt",
		  "{\"property\": \"total\", \"op\": \">\","
		  " \"value\": 19.99}",
		  "u2" },
		{ "ge",
		  "{\"property\": \"total\", \"op\": \">=\","
		  " \"value\": 19.99}",
		  "u1 u2" },
		{ "ne",
		  "{\"property\": \"total\", \"op\": \"!=\","
		  " \"value\": 19.99}",
		  "u2" },
		{ "in",
		  "{\"property\": \"total\", \"op\": \"one_of\","
		  " \"value\": [5, 19.99]}",
		  "u1" },
		{ "big",
		  "{\"property\": \"big\", \"op\": \"=\","
		  " \"value\": 9223372036854775808}",
		  "u1" },
		{ "big_lt",
		  "{\"property\": \"big\", \"op\": \"<\","
		  " \"value\": 9223372036854775808}",
		  "u2" },
		{ "huge",
		  "{\"property\": \"huge\", \"op\": \"=\","
		  " \"value\": 100000000000000000000.0}",
		  "u1" },
	};
	static const char *const dids[] = { "u1", "u2" };
	tl_result res;
	size_t i, k;
	char rule[512];

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', now() - interval '30 days'),"
		   " ('p2', 'user_id', 'u2', now() - interval '30 days');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Pay', '{\"total\": 19.99,"
		   "  \"big\": 9223372036854775808,"
		   "  \"huge\": 100000000000000000000}',"
		   "  now() - interval '1 day'),"
		   " ('p2', 'Pay', '{\"total\": 19.990001,"
		   "  \"big\": 9223372036854775807,"
		   "  \"huge\": 100000000000000000001}',"
		   "  now() - interval '1 day');"
		   "INSERT INTO audsync.profile_traits VALUES"
		   " ('p1', '{\"score\": 0.1}'), ('p2', '{\"score\": 0.2}')");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(rule, sizeof(rule),
			 "{\"performed\": {\"event\": \"Pay\","
			 " \"where\": [%s]}}",
			 cases[i].rule);
		add_rule(cases[i].key, 0, rule, NULL, NULL, "identify");
	}
	add_rule("score", 0,
		 "{\"trait\": {\"name\": \"score\", \"op\": \"=\","
		 " \"value\": 0.1}}",
		 NULL, NULL, "identify");
	res = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	tl_result_free(&res);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (k = 0; k < 2; k++)
			check_prop(__LINE__, dids[k], cases[i].key,
				   strstr(cases[i].members, dids[k]) ? "true"
								     : NULL);
	assert_prop("u1", "score", "true");
	assert_prop("u2", "score", NULL);
	res = tl_audsync(db, NULL, "explain", "score", NULL);
	ck_assert_msg(tl_contains(res.out, "= \"0.1\""), "%s", res.out);
	tl_result_free(&res);
}
END_TEST

/* Retiring an audience stops its own sync, not the audiences built on
 * it: they still read who is in it. Deleting its row fails them. */
START_TEST(a_retired_audience_still_defines_the_audiences_built_on_it)
{
	tl_result res;

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', now() - interval '30 days'),"
		   " ('p2', 'user_id', 'u2', now() - interval '30 days');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Order Completed', '{}',"
		   "  now() - interval '2 days')");
	add_rule("buyers", 0,
		 "{\"performed\": {\"event\": \"Order Completed\"}}", NULL,
		 NULL, "identify");
	add_rule("of_buyers", 0, "{\"member_of\": \"buyers\"}", NULL, NULL,
		 "identify");
	res = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	tl_result_free(&res);
	assert_prop("u1", "of_buyers", "true");
	res = tl_audsync(db, NULL, "retire", "buyers", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	tl_result_free(&res);
	tl_sql(db,
	       "INSERT INTO audsync.events VALUES"
	       " ('p2', 'Order Completed', '{}', now() - interval '1 hour')");
	res = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_msg(res.status == 0, "%s", res.err);
	tl_result_free(&res);
	assert_prop("u2", "of_buyers", "true");
	assert_prop("u2", "buyers", NULL);
	tl_sql(db,
	       "DELETE FROM audsync.syncs WHERE computation_id ="
	       " (SELECT id FROM audsync.computations WHERE key = 'buyers');"
	       "DELETE FROM audsync.computations WHERE key = 'buyers'");
	res = tl_audsync(db, NULL, "run", "--computation", "of_buyers", NULL);
	ck_assert_int_eq(res.status, 1);
	/* logfmt escapes the quotes around the key */
	ck_assert_msg(tl_contains(res.err,
				  "computation of_buyers: "
				  "definition.member_of: no computation "
				  "has the key \\\"buyers\\\""),
		      "%s", res.err);
	tl_result_free(&res);
	assert_prop("u1", "of_buyers", "true");
}
END_TEST

static Suite *rules_db_suite(void)
{
	Suite *s = suite_create("rules_db");
	TCase *eq = tcase_create("equivalence");
	TCase *e2e = tcase_create("end to end");

	tcase_set_timeout(eq, 600);
	tcase_add_test(eq, every_construct_equals_its_hand_written_sql);
	tcase_add_test(eq,
		       an_hourly_run_reads_touched_events_from_the_index_alone);
	suite_add_tcase(s, eq);
	tcase_set_timeout(e2e, 120);
	tcase_add_checked_fixture(e2e, start_fake, stop_fake);
	tcase_add_test(
		e2e, a_wrong_rule_fails_only_its_own_sync_naming_the_json_path);
	tcase_add_test(e2e, rule_audience_and_trait_in_identify_mode);
	tcase_add_test(e2e, rule_audience_and_trait_in_track_mode);
	tcase_add_test(e2e, explain_prints_the_statement_and_its_bound_values);
	tcase_add_test(e2e, a_number_in_a_rule_compares_as_written);
	tcase_add_test(
		e2e,
		a_retired_audience_still_defines_the_audiences_built_on_it);
	tcase_add_test(
		e2e,
		an_hourly_run_reads_the_ledger_of_the_touched_profiles_only);
	tcase_add_test(
		e2e,
		an_hourly_trait_run_reads_the_ledger_of_the_touched_profiles_only);
	tcase_add_test(
		e2e,
		an_hourly_run_reads_no_older_events_of_profiles_new_ones_decide);
	tcase_add_test(e2e, new_events_decide_alone_only_a_count_that_grows);
	tcase_add_test(e2e,
		       a_buyer_without_identifiers_exits_whatever_it_bought);
	tcase_add_test(e2e, a_former_member_outside_the_graph_stays_former);
	suite_add_tcase(s, e2e);
	return s;
}

int main(void)
{
	return tl_run_suite(rules_db_suite());
}
