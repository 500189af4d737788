/* check_naming.c - Mixpanel property keys and refused distinct_ids: the C
 * rules and their SQL twins in a migrated database agree */
#include "audsync/mp_payload.h"
#include "audsync/naming.h"
#include "testlib.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* naming_key() into a buffer of outlen bytes; the key (or "" when it
 * did not fit) goes to out. Returns what naming_key returned. */
static int key_of(char *out, size_t outlen, const char *name)
{
	memset(out, 'X', outlen);
	return naming_key(out, outlen, name);
}

static void assert_key(const char *name, const char *want)
{
	char out[128];
	int n = key_of(out, sizeof(out), name);

	ck_assert_msg(n == (int)strlen(want) && strcmp(out, want) == 0,
		      "naming_key(\"%s\") gave \"%s\" (%d), not \"%s\"", name,
		      out, n, want);
}

START_TEST(a_computation_name_becomes_its_documented_key)
{
	assert_key("Order Completed - Last 30 Days",
		   "order_completed_last_30_days");
	assert_key("Recent Buyers", "recent_buyers");
}
END_TEST

START_TEST(separators_fold_and_vanish_at_the_ends)
{
	assert_key("  --Hello__World--  ", "hello_world");
	assert_key("_leading", "leading");
	assert_key("trailing___", "trailing");
	assert_key("a  -  b", "a_b");
	assert_key("a.b/c:d", "a_b_c_d");
	assert_key("already_snake_case", "already_snake_case");
	assert_key("tab\tand\nnewline", "tab_and_newline");
}
END_TEST

START_TEST(upper_case_letters_become_lower_case)
{
	assert_key("ABC Def", "abc_def");
	assert_key("LTV", "ltv");
	assert_key("camelCaseName", "camelcasename");
}
END_TEST

START_TEST(digits_are_kept_where_they_stand)
{
	assert_key("30 Day Buyers 2024", "30_day_buyers_2024");
	assert_key("123", "123");
	assert_key("v2.0", "v2_0");
}
END_TEST

START_TEST(non_ascii_bytes_count_as_separators)
{
	assert_key("Café Visitors", "caf_visitors");
	assert_key("Über Fans", "ber_fans");
	assert_key("日本 Users", "users");
	assert_key("naïve-bayes", "na_ve_bayes");
	/* Not even UTF-8: bytes are bytes. */
	assert_key("\xff\xfe"
		   "AB\x80"
		   "cd",
		   "ab_cd");
}
END_TEST

START_TEST(a_name_without_letters_or_digits_has_an_empty_key)
{
	assert_key("", "");
	assert_key("---", "");
	assert_key("   ", "");
	assert_key("é", "");
}
END_TEST

START_TEST(a_key_too_long_for_the_buffer_is_refused)
{
	char out[16];

	ck_assert_int_eq(key_of(out, 5, "abcde"), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(key_of(out, 6, "abcde"), 5);
	ck_assert_str_eq(out, "abcde");
	/* The folded separator needs room too... */
	ck_assert_int_eq(key_of(out, 5, "ab cd"), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(key_of(out, 6, "ab cd"), 5);
	ck_assert_str_eq(out, "ab_cd");
	/* ...but trailing separators, which vanish, do not. */
	ck_assert_int_eq(key_of(out, 4, "abc   "), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(key_of(out, 1, ""), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(key_of(out, 1, "a"), -1);
	ck_assert_int_eq(naming_key(out, 0, "a"), -1);
}
END_TEST

/* Names a user might give computations, and trait columns. */
static const char *const names[] = {
	"Order Completed - Last 30 Days",
	"Café Visitors",
	"Über Fans",
	"日本 Users",
	"naïve-bayes",
	"İstanbul Shoppers",
	"\xe2\x84\xaa"
	"elvin Readers", /* U+212A KELVIN SIGN */
	"ÀÉÎÕÜ Accented Caps",
	"Straße Buyers",
	"Emoji 🎉 Fans",
	"  --Hello__World--  ",
	"ABC Def",
	"camelCaseName",
	"30 Day Buyers 2024",
	"v2.0",
	"123",
	"a  -  b",
	"already_snake_case",
	"Won't Buy",
	"50% Off Lovers",
	"Price > $100",
	"tab\tand\nnewline",
	"(Churned) Users [Q3]",
	"email@domain.com users",
	"LTV",
	"___",
	"",
	"   ",
	"é",
	"x",
	"Trait: Lifetime Value (USD)",
	"multi   space\t\ttab",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

/* name as a SQL string literal (caller frees). */
static char *sql_literal(const char *s)
{
	char *out = malloc(2 * strlen(s) + 3), *p = out;

	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'')
			*p++ = '\'';
		*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

/* Checks audsync.snake_key() against naming_key() for every name in
 * the database conninfo. */
static void assert_snake_key_agrees(const char *conninfo)
{
	char sql[512], key[128];
	size_t i;
	int bad = 0;

	for (i = 0; i < N_NAMES; i++) {
		char *lit = sql_literal(names[i]), *got;

		snprintf(sql, sizeof(sql), "SELECT audsync.snake_key(%s)", lit);
		got = tl_sql_value(conninfo, sql);
		ck_assert_int_ge(naming_key(key, sizeof(key), names[i]), 0);
		if (!got || strcmp(got, key) != 0) {
			fprintf(stderr,
				"snake_key(%s) = '%s', naming_key "
				"gives '%s'\n",
				lit, got ? got : "(null)", key);
			bad++;
		}
		free(lit);
		free(got);
	}
	ck_assert_msg(bad == 0,
		      "%d of %d names get another key in SQL than "
		      "in C (listed above)",
		      bad, (int)N_NAMES);
}

START_TEST(sql_and_c_derive_the_same_key_from_every_name)
{
	assert_snake_key_agrees(tl_new_db());
}
END_TEST

/*
 * Deployments keep their data in databases with a UTF-8 locale, not the
 * test cluster's C locale: the key of a name must not depend on it.
 */
START_TEST(the_key_does_not_depend_on_the_database_locale)
{
	char sql[256], conninfo[128];
	tl_result r;

	snprintf(conninfo, sizeof(conninfo), "dbname=utf8_%d", (int)getpid());
	snprintf(sql, sizeof(sql),
		 "CREATE DATABASE utf8_%d TEMPLATE template0 ENCODING 'UTF8'"
		 " LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'",
		 (int)getpid());
	tl_sql("dbname=postgres", sql);
	r = tl_audsync(conninfo, NULL, "migrate", NULL);
	ck_assert_msg(r.status == 0, "migrate: %s", r.err);
	tl_result_free(&r);
	assert_snake_key_agrees(conninfo);
}
END_TEST

/* Mixpanel's disallowed distinct_id values (research/mixpanel-api.md). */
static const char *const disallowed[] = {
	"00000000-0000-0000-0000-000000000000",
	"anon",
	"anonymous",
	"nil",
	"none",
	"null",
	"n/a",
	"na",
	"undefined",
	"unknown",
	"<nil>",
	"0",
	"-1",
	"true",
	"false",
	"[]",
	"{}"
};
#define N_DISALLOWED (sizeof(disallowed) / sizeof(disallowed[0]))

static const char *const valid_ids[] = {
	"u1",
	"user-42",
	"alice@example.com",
	"3f2504e0-4f89-11d3-9a0c-0305e82c3301",
	"1",
	"00",
	"-2",
	"anon1",
	"nullable",
	"none of them",
	"Ünïcödé",
	"$device:abc",
	"[1]",
	"{a}",
	"truth",
	"NaN",
};
#define N_VALID (sizeof(valid_ids) / sizeof(valid_ids[0]))

/* audsync.invalid_distinct_id(id) in conninfo: 1, 0 (or -1: NULL). */
static int sql_invalid(const char *conninfo, const char *id)
{
	char sql[1024], *lit = sql_literal(id), *v;
	int out;

	snprintf(sql, sizeof(sql), "SELECT audsync.invalid_distinct_id(%s)",
		 lit);
	v = tl_sql_value(conninfo, sql);
	out = !v ? -1 : v[0] == 't';
	free(v);
	free(lit);
	return out;
}

/* Asserts C and SQL both say want (1: refused) for id. */
static void assert_judged(const char *conninfo, const char *id, int want)
{
	int c = mp_distinct_id_invalid(id), s = sql_invalid(conninfo, id);

	ck_assert_msg(c == want && s == want,
		      "distinct_id '%s': mp_distinct_id_invalid %d, "
		      "audsync.invalid_distinct_id %d, expected %d",
		      id, c, s, want);
}

START_TEST(c_and_sql_refuse_every_disallowed_distinct_id)
{
	const char *db = tl_new_db();
	char upper[64];
	size_t i, j;

	for (i = 0; i < N_DISALLOWED; i++) {
		assert_judged(db, disallowed[i], 1);
		for (j = 0; disallowed[i][j] && j + 1 < sizeof(upper); j++)
			upper[j] =
				(char)toupper((unsigned char)disallowed[i][j]);
		upper[j] = '\0';
		assert_judged(db, upper, 1);
	}
	assert_judged(db, "", 1);
	assert_judged(db, "  null  ", 1);
	assert_judged(db, "Null", 1);
	ck_assert_int_eq(mp_distinct_id_invalid(NULL), 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT audsync.invalid_distinct_id"
					"(NULL)::int"),
			 1);
}
END_TEST

/* Mixpanel cuts strings at 255 bytes, so two longer ids would be one
 * person there: 255 bytes is an id, 256 is not, counted in bytes (a
 * two-byte letter at the end makes 256). */
START_TEST(c_and_sql_draw_the_line_at_255_bytes)
{
	const char *db = tl_new_db();
	char id[300];

	memset(id, 'a', sizeof(id));
	id[255] = '\0';
	assert_judged(db, id, 0);
	id[255] = 'a';
	id[256] = '\0';
	assert_judged(db, id, 1);
	memcpy(id + 254, "\xc3\xa9", 3); /* 254 + "é": 256 bytes */
	assert_judged(db, id, 1);
	memcpy(id + 253, "\xc3\xa9", 3); /* 253 + "é": 255 bytes */
	assert_judged(db, id, 0);
}
END_TEST

START_TEST(c_and_sql_accept_ordinary_distinct_ids)
{
	const char *db = tl_new_db();
	size_t i;

	for (i = 0; i < N_VALID; i++)
		assert_judged(db, valid_ids[i], 0);
}
END_TEST

/* An id read from a CSV import often ends in "\r" or "\t": whatever the
 * verdict, the engine's SQL and the C library must give the same one. */
START_TEST(c_and_sql_agree_on_ids_padded_with_other_whitespace)
{
	static const char *const padded[][2] = {
		{ "null\t", "null\\t" },
		{ "\tnone", "\\tnone" },
		{ "anon\r\n", "anon\\r\\n" },
		{ "\n", "\\n" },
		{ "\t", "\\t" },
		{ " 0\t", " 0\\t" },
		{ "u1\t", "u1\\t" },
	};
	const char *db = tl_new_db();
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof(padded) / sizeof(padded[0]); i++) {
		int c = mp_distinct_id_invalid(padded[i][0]);
		int s = sql_invalid(db, padded[i][0]);

		if (c != s) {
			fprintf(stderr,
				"distinct_id \"%s\": "
				"mp_distinct_id_invalid %d, "
				"audsync.invalid_distinct_id %d\n",
				padded[i][1], c, s);
			bad++;
		}
	}
	ck_assert_msg(bad == 0,
		      "C and SQL disagree on %d padded ids (listed "
		      "above)",
		      bad);
}
END_TEST

static Suite *naming_suite(void)
{
	Suite *s = suite_create("naming");
	TCase *unit = tcase_create("naming_key");
	TCase *sql = tcase_create("sql twins");

	tcase_add_test(unit, a_computation_name_becomes_its_documented_key);
	tcase_add_test(unit, separators_fold_and_vanish_at_the_ends);
	tcase_add_test(unit, upper_case_letters_become_lower_case);
	tcase_add_test(unit, digits_are_kept_where_they_stand);
	tcase_add_test(unit, non_ascii_bytes_count_as_separators);
	tcase_add_test(unit, a_name_without_letters_or_digits_has_an_empty_key);
	tcase_add_test(unit, a_key_too_long_for_the_buffer_is_refused);
	suite_add_tcase(s, unit);

	tcase_set_timeout(sql, 60);
	tcase_add_test(sql, sql_and_c_derive_the_same_key_from_every_name);
	tcase_add_test(sql, the_key_does_not_depend_on_the_database_locale);
	tcase_add_test(sql, c_and_sql_refuse_every_disallowed_distinct_id);
	tcase_add_test(sql, c_and_sql_accept_ordinary_distinct_ids);
	tcase_add_test(sql, c_and_sql_draw_the_line_at_255_bytes);
	tcase_add_test(sql,
		       c_and_sql_agree_on_ids_padded_with_other_whitespace);
	suite_add_tcase(s, sql);
	return s;
}

int main(void)
{
	return tl_run_suite(naming_suite());
}
