/* check_rules.c - the rule compiler alone, no database: what it binds,
 * what it refuses and with which JSON path */
#include "audsync/rules.h"
#include "rules_catalogue.h"
#include "unit.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The catalogue's helper computations, plus one row as itself. */
static rules_catalog catalog_with(rules_target *t, const bad_rule *row,
				  const char *definition)
{
	rules_catalog cat;
	int i;

	for (i = 0; i < N_HELPERS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].key = helper_computations[i].key;
		t[i].is_trait = helper_computations[i].is_trait;
		t[i].definition = helper_computations[i].definition;
		t[i].definition_sql = helper_computations[i].definition_sql;
	}
	memset(&t[i], 0, sizeof(t[i]));
	t[i].key = row ? row->key : "self";
	t[i].is_trait = row ? row->is_trait : 0;
	t[i].definition = definition;
	cat.items = t;
	cat.n = N_HELPERS + 1;
	return cat;
}

START_TEST(every_wrong_rule_is_refused_with_its_json_path)
{
	rules_target t[N_HELPERS + 1];
	char err[1024];
	rules_sql out;
	char *def = bad_rule_definition(_i);
	rules_catalog cat = catalog_with(t, &bad_rules[_i], def);
	int rc;

	memset(&out, 0, sizeof(out));
	err[0] = '\0';
	rc = rules_compile(&out, bad_rules[_i].key, bad_rules[_i].is_trait, def,
			   &cat, 3, err, sizeof(err));
	ck_assert_msg(rc == -1, "%s compiled", bad_rules[_i].key);
	ck_assert_msg(strstr(err, bad_rules[_i].error) != NULL,
		      "%s: got \"%s\", want \"%s\"", bad_rules[_i].key, err,
		      bad_rules[_i].error);
	ck_assert_msg(strchr(err, '\n') == NULL, "not one line: %s", err);
	ck_assert_ptr_null(out.sql);
	free(def);
}
END_TEST

/* Compiles def (an audience unless is_trait) or fails the test. */
static void compile_ok(rules_sql *out, int is_trait, const char *def)
{
	rules_target t[N_HELPERS + 1];
	rules_catalog cat = catalog_with(t, NULL, NULL);
	char err[1024] = "";

	ck_assert_msg(rules_compile(out, "self", is_trait, def, &cat, 3, err,
				    sizeof(err)) == 0,
		      "%s: %s", def, err);
}

static int has_param(const rules_sql *r, const char *text)
{
	int i;

	for (i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i], text) == 0)
			return 1;
	return 0;
}

START_TEST(values_are_bound_never_spliced)
{
	static const char def[] =
		"{\"and\": [{\"performed\": {\"event\": \"Ord'; DROP TABLE x;--\","
		" \"where\": [{\"property\": \"to\\\"tal\", \"op\": \">=\","
		" \"value\": 50.5}], \"count\": {\"op\": \">=\", \"value\": 2},"
		" \"within\": \"30 days\"}},"
		" {\"trait\": {\"name\": \"pl'an\", \"op\": \"one_of\","
		" \"value\": [\"pro\", \"te$1am\"]}},"
		" {\"not\": {\"performed\": {\"event\": \"Sign\\\\Up\","
		" \"between\": [\"2026-01-01\", \"2026-02-01T00:00:00Z\"]}}}]}";
	rules_sql r;

	compile_ok(&r, 0, def);
	ck_assert_int_eq(r.first, 3);
	ck_assert(has_param(&r, "Ord'; DROP TABLE x;--"));
	ck_assert(has_param(&r, "to\"tal"));
	ck_assert(has_param(&r, "50.5"));
	ck_assert(has_param(&r, "2"));
	ck_assert(has_param(&r, "30 days"));
	ck_assert(has_param(&r, "pl'an"));
	ck_assert(has_param(&r, "te$1am"));
	ck_assert(has_param(&r, "Sign\\Up"));
	ck_assert(has_param(&r, "2026-02-01T00:00:00Z"));
	ck_assert_ptr_null(strstr(r.sql, "DROP"));
	ck_assert_ptr_null(strstr(r.sql, "pl'an"));
	ck_assert_ptr_null(strstr(r.sql, "30 days"));
	ck_assert_ptr_null(strstr(r.sql, "50.5"));
	ck_assert_ptr_null(strstr(r.sql, "2026"));
	ck_assert_ptr_nonnull(strstr(r.sql, "$3::text"));
	rules_sql_free(&r);
}
END_TEST

START_TEST(every_construct_and_trait_kind_compiles)
{
	static const char *const audiences[] = {
		"{\"performed\": {\"event\": \"A\"}}",
		"{\"performed\": {\"event\": \"A\", \"count\": {\"op\": \"=\","
		" \"value\": 0}}}",
		"{\"not\": {\"performed\": {\"event\": \"A\"}}}",
		"{\"or\": [{\"trait\": {\"name\": \"p\", \"op\": \"exists\"}},"
		" {\"member_of\": \"rules_sql_target\"}]}",
		"{\"trait\": {\"name\": \"d\", \"op\": \"after_date\","
		" \"value\": \"2026-01-01T10:00\"}}",
	};
	static const char *const traits[] = {
		"{\"event_counter\": {\"event\": \"A\", \"within\": \"2 weeks\"}}",
		"{\"aggregation\": {\"fn\": \"avg\", \"event\": \"A\","
		" \"property\": \"x\"}}",
		"{\"most_frequent\": {\"event\": \"A\", \"property\": \"x\"}}",
		"{\"first\": {\"event\": \"A\", \"property\": \"x\"}}",
		"{\"last\": {\"event\": \"A\", \"property\": \"x\","
		" \"where\": [{\"property\": \"y\", \"op\": \"not_exists\"}]}}",
		"{\"unique_list\": {\"event\": \"A\", \"property\": \"x\"}}",
		"{\"unique_list_count\": {\"event\": \"A\", \"property\": \"x\","
		" \"between\": [\"2026-01-01\", \"2026-01-02\"]}}",
	};
	rules_sql r;
	size_t i;

	for (i = 0; i < sizeof(audiences) / sizeof(*audiences); i++) {
		/* rules_sql_target is unknown here: only the rest compile. */
		if (strstr(audiences[i], "member_of"))
			continue;
		compile_ok(&r, 0, audiences[i]);
		ck_assert_ptr_nonnull(strstr(r.sql, "profile_id"));
		rules_sql_free(&r);
	}
	for (i = 0; i < sizeof(traits) / sizeof(*traits); i++) {
		compile_ok(&r, 1, traits[i]);
		ck_assert_ptr_nonnull(strstr(r.sql, " AS value"));
		rules_sql_free(&r);
	}
}
END_TEST

/* A SQL-defined target is inlined with its $2 renamed to its own window
 * start; strings, quoted names, comments and dollar quotes keep theirs. */
START_TEST(a_sql_target_is_inlined_with_its_own_window)
{
	rules_target t[2] = {
		{ "self", 0, "{\"member_of\": \"s\"}", NULL, NULL },
		{ "s", 0, NULL,
		  "SELECT profile_id FROM audsync.events WHERE ts >= $2"
		  " AND ts < $1 AND event <> '$2' AND \"x$2\" IS NULL"
		  " AND event <> E'\\'$2' AND event <> $q$ $2 $q$ -- $2\n"
		  " /* $2 /* $2 */ */ AND a$2 IS NULL;  ",
		  "7 days" },
	};
	rules_catalog cat = { t, 2 };
	char err[512];
	rules_sql r;

	ck_assert_int_eq(rules_compile(&r, "self", 0, t[0].definition, &cat, 3,
				       err, sizeof(err)),
			 0);
	ck_assert_ptr_nonnull(strstr(r.sql, "ts >= ($1 - $3::interval)"));
	ck_assert_ptr_nonnull(strstr(r.sql, "event <> '$2'"));
	ck_assert_ptr_nonnull(strstr(r.sql, "\"x$2\" IS NULL"));
	ck_assert_ptr_nonnull(strstr(r.sql, "E'\\'$2'"));
	ck_assert_ptr_nonnull(strstr(r.sql, "$q$ $2 $q$ -- $2\n"));
	ck_assert_ptr_nonnull(strstr(r.sql, "/* $2 /* $2 */ */ AND a$2"));
	ck_assert_ptr_null(strstr(r.sql, ";"));
	ck_assert_int_eq(r.nparams, 1);
	ck_assert_str_eq(r.params[0], "7 days");
	rules_sql_free(&r);
}
END_TEST

START_TEST(times_parse_as_iso_8601_only)
{
	static const struct {
		const char *text;
		double want; /* -1: refused */
	} cases[] = {
		{ "1970-01-01", 0 },
		{ "1970-01-02T00:00:01Z", 86401 },
		{ "1970-01-01 01:00", 3600 },
		{ "1970-01-01T01:00:00+01:00", 0 },
		{ "1970-01-01T00:00:00.5-0100", 3600.5 },
		/* PostgreSQL's offsets end at 15:59 */
		{ "1970-01-01T15:00:00+15:00", 0 },
		{ "1970-01-01T16:00:00+16:00", -1 },
		{ "2024-02-29", 1709164800 },
		{ "2023-02-29", -1 },
		{ "2026-13-01", -1 },
		{ "2026-01-01T24:00", -1 },
		{ "2026-1-01", -1 },
		{ "yesterday", -1 },
		{ "2026-01-01T10", -1 },
		{ "2026-01-01Zoo", -1 },
		{ "", -1 },
	};
	size_t i;
	double t;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int rc = rules_parse_time(&t, cases[i].text);

		if (cases[i].want < 0) {
			ck_assert_msg(rc == -1, "%s accepted", cases[i].text);
			continue;
		}
		ck_assert_msg(rc == 0, "%s refused", cases[i].text);
		ck_assert_msg(t == cases[i].want, "%s: %f", cases[i].text, t);
	}
}
END_TEST

START_TEST(intervals_are_positive_and_bounded)
{
	static const struct {
		const char *text;
		double want;
	} cases[] = {
		{ "30 days", 30 * 86400.0 },
		{ "1 day", 86400 },
		{ "12 hours", 43200 },
		{ "1 hour 30 minutes", 5400 },
		{ "2 weeks", 1209600 },
		{ "1 mon", 2629800 },
		{ "1000 years", 1000 * 31557600.0 },
		{ "1001 years", -1 },
		/* a month is a twelfth of a year, as for PostgreSQL */
		{ "12000 months", 1000 * 31557600.0 },
		{ "12001 months", -1 },
		{ "999 years 13 months", -1 },
		{ "365250 days", 1000 * 31557600.0 },
		/* counts of any length within the limit, leading zeros too */
		{ "1000000000 seconds", 1e9 },
		{ "31557600000 seconds", 1000 * 31557600.0 },
		{ "31557600001 seconds", -1 },
		{ "0000000001 day", 86400 },
		{ "99999999999999999999 seconds", -1 },
		/* PostgreSQL reads each unit once */
		{ "1 hour 1 hour", -1 },
		{ "1 min 1 minute", -1 },
		{ "1 mon 2 months", -1 },
		{ "1 week 1 day", 8 * 86400.0 },
		{ "0 days", -1 },
		{ "-5 days", -1 },
		{ "5", -1 },
		{ "days", -1 },
		{ "3 fortnights", -1 },
		{ "1 day; DROP", -1 },
		{ "", -1 },
	};
	size_t i;
	double s;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int rc = rules_parse_interval(&s, cases[i].text);

		if (cases[i].want < 0) {
			ck_assert_msg(rc == -1, "%s accepted", cases[i].text);
			continue;
		}
		ck_assert_msg(rc == 0, "%s refused", cases[i].text);
		ck_assert_msg(s == cases[i].want, "%s: %f", cases[i].text, s);
	}
}
END_TEST

/* A condition that cannot hold without an event is driven by the events;
 * one that can ("did not") tries every profile of the identity graph. */
START_TEST(the_events_drive_only_conditions_that_need_one)
{
	rules_sql r;

	compile_ok(&r, 0, "{\"performed\": {\"event\": \"A\"}}");
	ck_assert_ptr_null(strstr(r.sql, "SELECT DISTINCT x.profile_id"));
	rules_sql_free(&r);
	compile_ok(&r, 0,
		   "{\"performed\": {\"event\": \"A\", \"count\": {\"op\":"
		   " \"<\", \"value\": 2}}}");
	ck_assert_ptr_nonnull(strstr(r.sql, "SELECT DISTINCT x.profile_id"));
	rules_sql_free(&r);
	compile_ok(&r, 0,
		   "{\"and\": [{\"performed\": {\"event\": \"A\"}},"
		   " {\"not\": {\"performed\": {\"event\": \"B\"}}}]}");
	ck_assert_ptr_null(strstr(r.sql, "SELECT DISTINCT x.profile_id"));
	rules_sql_free(&r);
	compile_ok(&r, 0,
		   "{\"or\": [{\"performed\": {\"event\": \"A\"}},"
		   " {\"trait\": {\"name\": \"p\", \"op\": \"exists\"}}]}");
	ck_assert_ptr_nonnull(strstr(r.sql, "SELECT DISTINCT x.profile_id"));
	rules_sql_free(&r);
}
END_TEST

/* Only a rule whose new events decide it names, in an hourly run, a
 * profile it has not found in the identity graph; the diff probes the
 * graph for those that enter of that rule alone (evaluate.c). */
START_TEST(only_a_rule_decided_by_new_events_leaves_the_graph_to_the_diff)
{
	static const char *const graphed[] = {
		"{\"performed\": {\"event\": \"A\", \"count\": {\"op\":"
		" \"<\", \"value\": 2}}}",
		"{\"and\": [{\"performed\": {\"event\": \"A\"}},"
		" {\"not\": {\"performed\": {\"event\": \"B\"}}}]}",
		"{\"or\": [{\"performed\": {\"event\": \"A\"}},"
		" {\"performed\": {\"event\": \"B\"}}]}",
	};
	rules_sql r;
	size_t i;

	compile_ok(&r, 0, "{\"performed\": {\"event\": \"A\"}}");
	ck_assert_ptr_nonnull(r.touched_sql);
	ck_assert_int_eq(r.touched_ungraphed, 1);
	rules_sql_free(&r);
	for (i = 0; i < sizeof(graphed) / sizeof(*graphed); i++) {
		compile_ok(&r, 0, graphed[i]);
		ck_assert_msg(r.touched_sql != NULL, "%s: not incremental",
			      graphed[i]);
		ck_assert_msg(!r.touched_ungraphed, "%s", graphed[i]);
		rules_sql_free(&r);
	}
}
END_TEST

/* The commonest rule, "did X in the lookback", compiles to the plain
 * statement of its meaning, with no count to keep per profile: the
 * planner then chooses for it as it would for the same SQL written by
 * hand (bench_rules compares the two). A count that one event does not
 * meet, or any other condition, keeps its count. */
START_TEST(a_rule_met_by_one_event_keeps_no_count)
{
	static const char *const counted[] = {
		"{\"performed\": {\"event\": \"A\", \"count\": {\"op\":"
		" \">=\", \"value\": 2}}}",
		"{\"performed\": {\"event\": \"A\", \"count\": {\"op\":"
		" \"=\", \"value\": 1}}}",
		"{\"and\": [{\"performed\": {\"event\": \"A\"}},"
		" {\"performed\": {\"event\": \"B\"}}]}",
	};
	static const char *const plain[] = {
		"{\"performed\": {\"event\": \"A\"}}",
		"{\"performed\": {\"event\": \"A\", \"count\": {\"op\":"
		" \">\", \"value\": 0}}}",
		"{\"performed\": {\"event\": \"A\", \"within\": \"7 days\","
		" \"where\": [{\"property\": \"p\", \"op\": \"=\","
		" \"value\": 1}]}}",
	};
	rules_sql r;
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
		compile_ok(&r, 0, plain[i]);
		ck_assert_msg(!strstr(r.sql, "count("), "%s: %s", plain[i],
			      r.sql);
		ck_assert_msg(r.touched_sql && !strstr(r.touched_sql, "c1"),
			      "%s: %s", plain[i], r.touched_sql);
		rules_sql_free(&r);
	}
	for (i = 0; i < sizeof(counted) / sizeof(*counted); i++) {
		compile_ok(&r, 0, counted[i]);
		ck_assert_msg(strstr(r.sql, "count(") != NULL, "%s: %s",
			      counted[i], r.sql);
		rules_sql_free(&r);
	}
}
END_TEST

/* A count is a whole number however it is written: jsonb keeps 2.0 as
 * written and turns 1e0 into 1, and both mean what 2 and 1 mean. */
START_TEST(a_count_is_a_whole_number_however_written)
{
	static const struct {
		const char *value, *bound;
	} ok[] = { { "2.0", "2" },   { "1e0", "1" },
		   { "0.3e1", "3" }, { "1000000000.000", "1000000000" },
		   { "0.0", "0" },   { "2500e-2", "25" } };
	char def[256];
	rules_sql r;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(def, sizeof(def),
			 "{\"performed\": {\"event\": \"E\", \"count\":"
			 " {\"op\": \"=\", \"value\": %s}}}",
			 ok[i].value);
		compile_ok(&r, 0, def);
		ck_assert_msg(has_param(&r, ok[i].bound), "%s not bound as %s",
			      ok[i].value, ok[i].bound);
		rules_sql_free(&r);
	}
}
END_TEST

/* json-c reads NaN and Infinity, which no jsonb holds but a caller may
 * pass: they are refused, never bound as numeric 'NaN'. */
START_TEST(a_number_that_is_not_finite_is_refused)
{
	static const char *const defs[] = {
		"{\"trait\": {\"name\": \"x\", \"op\": \"=\", \"value\": NaN}}",
		"{\"trait\": {\"name\": \"x\", \"op\": \">\", \"value\":"
		" Infinity}}",
	};
	char err[512];
	rules_sql r;
	size_t i;

	for (i = 0; i < sizeof(defs) / sizeof(*defs); i++) {
		ck_assert_int_eq(rules_compile(&r, "k", 0, defs[i], NULL, 3,
					       err, sizeof(err)),
				 -1);
		ck_assert_msg(strstr(err, "definition.trait.value: ") == err,
			      "%s", err);
	}
}
END_TEST

/* A key with a newline (found by fuzzing) still gives a one-line
 * error. */
START_TEST(an_error_naming_a_key_with_a_newline_stays_one_line)
{
	char err[512];
	rules_sql r;

	ck_assert_int_eq(
		rules_compile(&r, "k", 1,
			      "{\"aggregat\\nion\": {\"fn\": \"avg\"}}", NULL,
			      3, err, sizeof(err)),
		-1);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s", err);
	ck_assert_str_eq(err, "definition.aggregat ion: unknown computed "
			      "trait (use event_counter, aggregation, "
			      "most_frequent, first, last, unique_list or "
			      "unique_list_count)");
}
END_TEST

static Suite *rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("compile");

	tcase_add_loop_test(tc, every_wrong_rule_is_refused_with_its_json_path,
			    0, N_BAD_RULES);
	tcase_add_test(tc, values_are_bound_never_spliced);
	tcase_add_test(tc, every_construct_and_trait_kind_compiles);
	tcase_add_test(tc, a_sql_target_is_inlined_with_its_own_window);
	tcase_add_test(tc, times_parse_as_iso_8601_only);
	tcase_add_test(tc, intervals_are_positive_and_bounded);
	tcase_add_test(tc, the_events_drive_only_conditions_that_need_one);
	tcase_add_test(
		tc,
		only_a_rule_decided_by_new_events_leaves_the_graph_to_the_diff);
	tcase_add_test(tc, a_rule_met_by_one_event_keeps_no_count);
	tcase_add_test(tc, a_count_is_a_whole_number_however_written);
	tcase_add_test(tc, a_number_that_is_not_finite_is_refused);
	tcase_add_test(tc, an_error_naming_a_key_with_a_newline_stays_one_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run_suite(rules_suite());
}
