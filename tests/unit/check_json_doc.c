/* check_json_doc.c - the strict JSON parser of the forwarding hot path, and
 * the JSON string writer it shares with every record */
#include "audsync/buf.h"
#include "audsync/json_doc.h"

#include "unit.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* text parsed and written back must read want. */
static void round_trip(jdoc *d, const char *text, const char *want)
{
	const jdoc_val *v;
	buf b;

	ck_assert_msg(jdoc_parse(&v, d, text, strlen(text)) == 0,
		      "refused %s: %s", text, d->err);
	buf_init(&b);
	jdoc_write(&b, v);
	ck_assert_msg(strcmp(b.data, want) == 0, "%s\n got  %s\n want %s", text,
		      b.data, want);
	buf_free(&b);
}

START_TEST(valid_json_is_read_and_written_back)
{
	jdoc d;

	jdoc_init(&d);
	round_trip(&d, " {\"a\" : [1, -0.5e+3, true,false, null, \"x\"]} ",
		   "{\"a\":[1,-0.5e+3,true,false,null,\"x\"]}");
	round_trip(&d, "\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\t\\\"\"",
		   "\"\xc3\xa9\xf0\x9f\x98\x80/\\u0008\\u000c\\n\\t\\\"\"");
	round_trip(&d, "\"caf\xc3\xa9 \xe2\x82\xac \xf4\x8f\xbf\xbf\"",
		   "\"caf\xc3\xa9 \xe2\x82\xac \xf4\x8f\xbf\xbf\"");
	round_trip(&d, "[[],{},\"\",0]", "[[],{},\"\",0]");
	round_trip(&d, "12345678901234567890123", "12345678901234567890123");
	round_trip(&d, "\"a\\u0000b\"", "\"a\\u0000b\"");
	jdoc_free(&d);
}
END_TEST

/* Everything json-c's lenient mode lets through that RFC 8259 does not,
 * and broken text: each refused, saying where. */
START_TEST(anything_but_rfc_8259_json_is_refused)
{
	static const char *const bad[] = {
		"{\"a\":1,}",		  /* trailing comma */
		"{'a':1}",		  /* single quotes */
		"{\"a\":1 /* c */}",	  /* comment */
		"[NaN]",		  /* not a number */
		"[Infinity]",		  /* nor this */
		"[True]",		  /* literals are lower case */
		"[01]",			  /* leading zero */
		"[1.]",			  /* fraction without digits */
		"[.5]",			  /* nor integer digits */
		"[1e]",			  /* exponent without digits */
		"[-]",			  /* sign alone */
		"[\"\x01\"]",		  /* raw control character */
		"[\"\xc3\"]",		  /* cut UTF-8 sequence */
		"[\"\xc0\xaf\"]",	  /* overlong form */
		"[\"\xed\xa0\x80\"]",	  /* surrogate in UTF-8 */
		"[\"\xf4\x90\x80\x80\"]", /* over U+10FFFF */
		"[\"\xff\"]",		  /* never in UTF-8 */
		"[\"\\ud800\"]",	  /* lone high surrogate */
		"[\"\\udc00\"]",	  /* lone low surrogate */
		"[\"\\ud800\\u0041\"]",	  /* high then not low */
		"[\"\\x41\"]",		  /* unknown escape */
		"[\"\\u12\"]",		  /* short \u */
		"[\"abc",		  /* not closed */
		"{\"a\\u0000b\":1}",	  /* a name holding NUL */
		"{\"a\" 1}",		  /* no colon */
		"{1:1}",		  /* unquoted name */
		"[1 2]",		  /* no comma */
		"{} {}",		  /* two values */
		"",			  /* nothing */
		"   ",			  /* white space only */
		"[1]\v",		  /* \v is not JSON white space */
	};
	const jdoc_val *v;
	size_t i;
	jdoc d;

	jdoc_init(&d);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(jdoc_parse(&v, &d, bad[i], strlen(bad[i])) == -1,
			      "accepted bad text %zu: %s", i, bad[i]);
		ck_assert_msg(strncmp(d.err, "at byte ", 8) == 0, "%zu: %s", i,
			      d.err);
	}
	jdoc_free(&d);
}
END_TEST

START_TEST(nesting_deeper_than_json_c_allows_is_refused)
{
	char text[2 * (JDOC_MAX_DEPTH + 1) + 1];
	const jdoc_val *v;
	jdoc d;
	int n;

	jdoc_init(&d);
	for (n = JDOC_MAX_DEPTH; n <= JDOC_MAX_DEPTH + 1; n++) {
		memset(text, '[', (size_t)n);
		memset(text + n, ']', (size_t)n);
		text[2 * n] = '\0';
		ck_assert_int_eq(jdoc_parse(&v, &d, text, (size_t)(2 * n)),
				 n <= JDOC_MAX_DEPTH ? 0 : -1);
	}
	ck_assert_msg(strstr(d.err, "nested deeper"), "%s", d.err);
	jdoc_free(&d);
}
END_TEST

/* json-c keeps a repeated name at its first place with its last value;
 * so does the parser, in small objects and in large ones (sorted). */
START_TEST(a_repeated_name_keeps_its_first_place_and_last_value)
{
	jdoc d;
	buf big, want;
	int i;

	jdoc_init(&d);
	round_trip(&d, "{\"a\":1,\"b\":2,\"a\":3,\"a\":{\"x\":4}}",
		   "{\"a\":{\"x\":4},\"b\":2}");
	buf_init(&big);
	buf_init(&want);
	buf_putc(&big, '{');
	buf_putc(&want, '{');
	for (i = 0; i < 40; i++) {
		buf_printf(&big, "%s\"k%d\":%d", i ? "," : "", i % 25, i);
		if (i < 25)
			buf_printf(&want, "%s\"k%d\":%d", i ? "," : "", i,
				   i + 25 < 40 ? i + 25 : i);
	}
	buf_putc(&big, '}');
	buf_putc(&want, '}');
	round_trip(&d, big.data, want.data);
	buf_free(&big);
	buf_free(&want);
	jdoc_free(&d);
}
END_TEST

START_TEST(members_numbers_and_lookups)
{
	static const char text[] =
		"{\"i\":-9223372036854775808,\"big\":9223372036854775808,"
		"\"d\":2.5,\"s\":\"t\",\"o\":{\"n\":null},\"\":1}";
	const jdoc_val *v, *m;
	jdoc d;

	jdoc_init(&d);
	ck_assert_int_eq(jdoc_parse(&v, &d, text, strlen(text)), 0);
	ck_assert(jdoc_is(v, JDOC_OBJECT));
	ck_assert_uint_eq(v->len, 6);
	m = jdoc_get(v, "i");
	ck_assert(m->is_int && jdoc_double(m) == (double)INT64_MIN);
	ck_assert_uint_eq(sizeof(jdoc_val), 32);
	m = jdoc_get(v, "big");
	ck_assert(jdoc_is(m, JDOC_NUMBER) && !m->is_int);
	ck_assert_str_eq(m->s, "9223372036854775808");
	ck_assert(jdoc_double(jdoc_get(v, "d")) == 2.5);
	ck_assert_str_eq(jdoc_get(v, "s")->s, "t");
	ck_assert(jdoc_is(jdoc_get(jdoc_get(v, "o"), "n"), JDOC_NULL));
	ck_assert(jdoc_get(v, "") != NULL);
	ck_assert(jdoc_get(v, "missing") == NULL);
	ck_assert(jdoc_get(jdoc_get(v, "s"), "x") == NULL);
	ck_assert(jdoc_get(NULL, "x") == NULL);
	jdoc_free(&d);
}
END_TEST

/* A large text's memory goes back at the next small one; values of the
 * earlier parse are not read after it. */
START_TEST(memory_of_a_large_text_is_given_back)
{
	size_t n = 3 * 1024 * 1024;
	char *text = malloc(n);
	const jdoc_val *v;
	jdoc d;

	memset(text, 'x', n);
	memcpy(text, "[\"", 2);
	memcpy(text + n - 2, "\"]", 2);
	jdoc_init(&d);
	ck_assert_int_eq(jdoc_parse(&v, &d, text, n), 0);
	ck_assert_uint_eq(v->kids[0].len, n - 4);
	ck_assert(d.captext >= 2 * n);
	ck_assert_int_eq(jdoc_parse(&v, &d, "[1]", 3), 0);
	ck_assert_uint_lt(d.captext, 4096);
	ck_assert_uint_lt(d.capnodes, 4096);
	ck_assert_uint_eq(v->len, 1);
	jdoc_free(&d);
	free(text);
}
END_TEST

/* The writer's escaping, eight bytes at a time, against a byte-by-byte
 * reading of the same rule: every special byte at every place of strings
 * of every length around the word size. */
static void escape_slowly(buf *out, const char *s, size_t n)
{
	size_t i;

	buf_putc(out, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c == '\n')
			buf_puts(out, "\\n");
		else if (c == '\t')
			buf_puts(out, "\\t");
		else if (c == '\r')
			buf_puts(out, "\\r");
		else if (c < 0x20)
			buf_printf(out, "\\u%04x", c);
		else
			buf_putc(out, (char)c);
	}
	buf_putc(out, '"');
}

/* 1 when a JSON string holds byte c as it is (ASCII only). */
static int plain_ascii(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
}

START_TEST(json_strings_are_escaped_at_every_place)
{
	static const char special[] = { '"',	'\\',	'\n',	    '\x01',
					'\x1f', '\x7f', (char)0x80, (char)0xe9,
					' ',	'\0' };
	char s[40];
	size_t n, at, k;
	buf fast, slow;

	buf_init(&fast);
	buf_init(&slow);
	for (n = 0; n < sizeof(s); n++) {
		for (at = 0; at < n; at++) {
			for (k = 0; k < sizeof(special); k++) {
				memset(s, 'a', n);
				s[at] = special[k];
				buf_reset(&fast);
				buf_reset(&slow);
				buf_json_strn(&fast, s, n);
				escape_slowly(&slow, s, n);
				ck_assert_str_eq(fast.data, slow.data);
				ck_assert_uint_eq(buf_json_plain(s, n, 1),
						  plain_ascii(s[at]) ? n : at);
				/* Without ascii, bytes over 0x7f are plain. */
				ck_assert_uint_eq(
					buf_json_plain(s, n, 0),
					plain_ascii(s[at]) ||
							(unsigned char)s[at] >=
								0x80
						? n
						: at);
			}
		}
	}
	buf_free(&fast);
	buf_free(&slow);
}
END_TEST

static Suite *json_doc_suite(void)
{
	Suite *s = suite_create("json_doc");
	TCase *t = tcase_create("parse");

	tcase_add_test(t, valid_json_is_read_and_written_back);
	tcase_add_test(t, anything_but_rfc_8259_json_is_refused);
	tcase_add_test(t, nesting_deeper_than_json_c_allows_is_refused);
	tcase_add_test(t, a_repeated_name_keeps_its_first_place_and_last_value);
	tcase_add_test(t, members_numbers_and_lookups);
	tcase_add_test(t, memory_of_a_large_text_is_given_back);
	tcase_add_test(t, json_strings_are_escaped_at_every_place);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return ut_run_suite(json_doc_suite());
}
