/* check_mp_payload.c - $insert_id, distinct_id checks, record shapes */
#include "audsync/mp_payload.h"

#include "unit.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Parses text as JSON (the test fails when it is not). */
static json_object *parse(const char *text)
{
	json_object *o = json_tokener_parse(text);

	ck_assert_msg(o != NULL, "not JSON: %s", text);
	return o;
}

/* The JSON text of key in o (o must hold it). */
static const char *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static void insert_id(char out[MP_INSERT_ID_LEN + 1], const char *a,
		      const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };

	mp_insert_id(out, parts, 3);
}

START_TEST(insert_id_form)
{
	char id[MP_INSERT_ID_LEN + 1];
	size_t i;

	insert_id(id, "sync-1", "user-42", "entered@1700000000000");
	ck_assert_uint_eq(strlen(id), 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_int_eq(id[i], '-');
		else
			ck_assert_msg(strchr("0123456789abcdef", id[i]) &&
					      id[i] != '\0',
				      "bad character in %s", id);
	}
	ck_assert_int_eq(mp_distinct_id_invalid(id), 0);
}
END_TEST

START_TEST(insert_id_deterministic)
{
	char a[MP_INSERT_ID_LEN + 1], b[MP_INSERT_ID_LEN + 1];
	char c[MP_INSERT_ID_LEN + 1];
	insert_id(a, "s", "u", "t");
	insert_id(b, "s", "u", "t");
	ck_assert_str_eq(a, b);
	insert_id(c, "s", "u", "t2");
	ck_assert_str_ne(a, c);
	/*
	 * Known values pin the hash across hosts and versions: a change
	 * here would make every re-sent event a new one in Mixpanel.
	 */
	insert_id(c, "sync-1", "user-42", "entered@1700000000000");
	ck_assert_str_eq(c, "cb98f1df-f296-916d-1145-b7db44c19dfa");
	mp_insert_id(c, NULL, 0);
	ck_assert_str_eq(c, "aafc5697-fdc9-f75a-82ed-a7ed9680b0dd");
}
END_TEST

START_TEST(insert_id_boundaries)
{
	char a[MP_INSERT_ID_LEN + 1], b[MP_INSERT_ID_LEN + 1];
	char c[MP_INSERT_ID_LEN + 1], d[MP_INSERT_ID_LEN + 1];
	const char *two_a[2] = { "ab", "c" }, *two_b[2] = { "a", "bc" };
	const char *with_null[2] = { "a", NULL }, *with_empty[2] = { "a", "" };

	mp_insert_id(a, two_a, 2);
	mp_insert_id(b, two_b, 2);
	ck_assert_str_ne(a, b);
	mp_insert_id(c, with_null, 2);
	mp_insert_id(d, with_empty, 2);
	ck_assert_str_ne(c, d);
	/* a long input crosses many hash blocks */
	{
		char big[1000];
		const char *p[1] = { big };

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		mp_insert_id(a, p, 1);
		big[500] = 'y';
		mp_insert_id(b, p, 1);
		ck_assert_str_ne(a, b);
	}
}
END_TEST

START_TEST(distinct_id_list)
{
	static const char *const bad[] = {
		"00000000-0000-0000-0000-000000000000",
		"anon",
		"Anonymous",
		"NIL",
		"none",
		"null",
		"N/A",
		"na",
		"undefined",
		"unknown",
		"<nil>",
		"0",
		"-1",
		"true",
		"FALSE",
		"[]",
		"{}",
		"",
		"   ",
		" null ",
		"\tanon\n"
	};
	static const char *const good[] = {
		"user-1",
		"1",
		"00",
		"anon1",
		"nulls",
		"alice@example.com",
		"00000000-0000-0000-0000-000000000001",
		"-2",
		"[1]"
	};
	size_t i;

	ck_assert_int_eq(mp_distinct_id_invalid(NULL), 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mp_distinct_id_invalid(bad[i]) == 1,
			      "\"%s\" should be invalid", bad[i]);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(mp_distinct_id_invalid(good[i]) == 0,
			      "\"%s\" should be valid", good[i]);
}
END_TEST

START_TEST(engage_shape)
{
	json_object *o, *set;
	buf b;

	buf_init(&b);
	mp_payload_engage(&b, "tok", "u1", 1, "$set",
			  "{\"order_30d\":true,\"$email\":\"a@b.c\"}");
	o = parse(b.data);
	ck_assert_str_eq(member(o, "$token"), "\"tok\"");
	ck_assert_str_eq(member(o, "$distinct_id"), "\"u1\"");
	ck_assert_str_eq(member(o, "$ignore_time"), "true");
	ck_assert(json_object_object_get_ex(o, "$set", &set));
	ck_assert_str_eq(member(set, "order_30d"), "true");
	ck_assert_int_eq(json_object_object_length(o), 4);
	json_object_put(o);
	buf_reset(&b);
	mp_payload_engage(&b, "tok", "u1", 0, "$unset", "[\"order_30d\"]");
	o = parse(b.data);
	ck_assert_str_eq(member(o, "$unset"), "[\"order_30d\"]");
	ck_assert(!json_object_object_get_ex(o, "$ignore_time", NULL));
	json_object_put(o);
	buf_free(&b);
}
END_TEST

START_TEST(event_shape)
{
	json_object *o, *props;
	buf b;

	buf_init(&b);
	mp_payload_event(&b, "Audience Entered", "u1", 1700000000123LL,
			 "0f0e0d0c-0b0a-0908-0706-050403020100",
			 " { \"audience_key\":\"k\", \"k\":true } ");
	o = parse(b.data);
	ck_assert_str_eq(member(o, "event"), "\"Audience Entered\"");
	ck_assert(json_object_object_get_ex(o, "properties", &props));
	ck_assert_str_eq(member(props, "distinct_id"), "\"u1\"");
	ck_assert_str_eq(member(props, "time"), "1700000000123");
	ck_assert_str_eq(member(props, "$insert_id"),
			 "\"0f0e0d0c-0b0a-0908-0706-050403020100\"");
	ck_assert_str_eq(member(props, "audience_key"), "\"k\"");
	ck_assert_str_eq(member(props, "k"), "true");
	ck_assert_int_eq(json_object_object_length(props), 5);
	json_object_put(o);

	buf_reset(&b);
	mp_payload_event(&b, "E", "u", 5, "id", "{}");
	o = parse(b.data);
	ck_assert(json_object_object_get_ex(o, "properties", &props));
	ck_assert_int_eq(json_object_object_length(props), 3);
	json_object_put(o);

	buf_reset(&b);
	mp_payload_event(&b, "E", "u", 5, "id", NULL);
	o = parse(b.data);
	ck_assert(json_object_object_get_ex(o, "properties", &props));
	ck_assert_int_eq(json_object_object_length(props), 3);
	ck_assert_str_eq(member(props, "distinct_id"), "\"u\"");
	ck_assert_str_eq(member(props, "$insert_id"), "\"id\"");
	json_object_put(o);
	buf_free(&b);
}
END_TEST

/* What Mixpanel parses is the text audsync was given: quotes,
 * backslashes (a Windows path, a JSON escape written as text) and control
 * characters survive the trip. */
START_TEST(text_with_quotes_and_backslashes_arrives_intact)
{
	static const char *const texts[] = { "C:\\temp\\new", "say \"hi\"",
					     "a\\\"b",	      "\\u0041",
					     "tab\there",     "bell\x07" };
	json_object *o, *props, *v;
	size_t i;
	buf b;

	buf_init(&b);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		buf_reset(&b);
		mp_payload_event(&b, texts[i], texts[i], 5, "id", NULL);
		o = parse(b.data);
		ck_assert(json_object_object_get_ex(o, "event", &v));
		ck_assert_str_eq(json_object_get_string(v), texts[i]);
		ck_assert(json_object_object_get_ex(o, "properties", &props));
		ck_assert(json_object_object_get_ex(props, "distinct_id", &v));
		ck_assert_str_eq(json_object_get_string(v), texts[i]);
		json_object_put(o);
	}
	buf_free(&b);
}
END_TEST

static Suite *payload_suite(void)
{
	Suite *s = suite_create("mp_payload");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, insert_id_form);
	tcase_add_test(tc, insert_id_deterministic);
	tcase_add_test(tc, insert_id_boundaries);
	tcase_add_test(tc, distinct_id_list);
	tcase_add_test(tc, engage_shape);
	tcase_add_test(tc, event_shape);
	tcase_add_test(tc, text_with_quotes_and_backslashes_arrives_intact);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run_suite(payload_suite());
}
