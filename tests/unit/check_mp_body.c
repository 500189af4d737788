/* check_mp_body.c - what goes in one request: at most 2000 records and
 * 2 MiB, gzip for /import, the current token in every update */
#include "audsync/mp_body.h"

#include "unit.h"

#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- the batch plan ----------------------------------------------- */

/* n records of len bytes each, planned with these caps: how many go in
 * the first request. */
typedef struct plan_row {
	const char *what; /* what a user would notice if it broke */
	size_t n;
	size_t len;
	size_t max_records;
	size_t max_bytes;
	size_t want;
} plan_row;

static const plan_row plan_rows[] = {
	{ "5 000 small events leave 2 000 a request, Mixpanel's cap", 5000, 10,
	  MP_MAX_BATCH, MP_DEFAULT_MAX_BYTES, 2000 },
	{ "1 500 small events leave in one request", 1500, 10, MP_MAX_BATCH,
	  MP_DEFAULT_MAX_BYTES, 1500 },
	{ "batch_size 7 sends 7 a request", 5000, 10, 7, MP_DEFAULT_MAX_BYTES,
	  7 },
	{ "one record alone goes, whatever the byte cap", 1, 10, MP_MAX_BATCH,
	  5, 1 },
	{ "\"[\" + 9 records + 8 commas + \"]\" fill 910 bytes exactly", 100,
	  100, MP_MAX_BATCH, 910, 9 },
	{ "one byte less and the ninth record waits", 100, 100, MP_MAX_BATCH,
	  909, 8 },
	{ "a cap below two records sends them one by one", 100, 100,
	  MP_MAX_BATCH, 102, 1 },
	{ "1 100-byte events: 1 906 fit in 2 MiB, not 2 000", 3000, 1100,
	  MP_MAX_BATCH, MP_DEFAULT_MAX_BYTES,
	  (MP_DEFAULT_MAX_BYTES - 1) / 1101 },
	{ "two 1 MB updates share a 2 MiB request, a third waits", 5,
	  1000 * 1000 + 500, MP_MAX_BATCH, MP_DEFAULT_MAX_BYTES, 2 },
};

static mp_body_rec *recs_of(size_t n, size_t len)
{
	mp_body_rec *r = calloc(n, sizeof(*r));
	size_t i;

	ck_assert_ptr_nonnull(r);
	for (i = 0; i < n; i++) {
		r[i].off = i * (len + 1);
		r[i].len = len;
		r[i].tag = i;
	}
	return r;
}

/* The bytes of "[" + recs[0, k) joined by "," + "]". */
static size_t body_bytes(const mp_body_rec *r, size_t k)
{
	size_t i, bytes = 2 + r[0].len;

	for (i = 1; i < k; i++)
		bytes += 1 + r[i].len;
	return bytes;
}

START_TEST(plan_keeps_mixpanels_limits)
{
	const plan_row *row = &plan_rows[_i];
	mp_body_rec *r = recs_of(row->n, row->len);
	size_t got = mp_body_plan(r, row->n, row->max_records, row->max_bytes);

	ck_assert_msg(got == row->want, "%s: %zu records, want %zu", row->what,
		      got, row->want);
	/* never over either cap, unless one record alone is */
	ck_assert_uint_le(got, row->max_records);
	if (got > 1)
		ck_assert_uint_le(body_bytes(r, got), row->max_bytes);
	/* and never a request smaller than the caps allow */
	if (got < row->n && got < row->max_records)
		ck_assert_uint_gt(body_bytes(r, got + 1), row->max_bytes);
	free(r);
}
END_TEST

/* Mixed sizes: every request of a whole queue keeps both caps, and the
 * requests together carry every record once, in order. */
START_TEST(plan_cuts_a_queue_into_requests_within_the_caps)
{
	size_t n = 20000, i, at = 0, sent = 0, k;
	mp_body_rec *r = calloc(n, sizeof(*r));
	uint64_t x = 88172645463325252ULL;

	ck_assert_ptr_nonnull(r);
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r[i].len = 20 + (size_t)(x % 3000);
		r[i].tag = i;
	}
	while (at < n) {
		k = mp_body_plan(r + at, n - at, MP_MAX_BATCH,
				 MP_DEFAULT_MAX_BYTES);
		ck_assert_uint_ge(k, 1);
		ck_assert_uint_le(k, MP_MAX_BATCH);
		ck_assert_uint_le(body_bytes(r + at, k), MP_DEFAULT_MAX_BYTES);
		ck_assert_uint_eq(r[at].tag, sent);
		at += k;
		sent += k;
	}
	ck_assert_uint_eq(sent, n);
	free(r);
}
END_TEST

/* ---- the lane queue ----------------------------------------------- */

/* Any run of queued records is the inside of a JSON array, in the order
 * they were queued, and a cleared queue starts afresh. */
START_TEST(queue_runs_are_json_array_insides)
{
	const char *recs[] = { "{\"a\":1}", "{\"b\":[2]}", "{\"c\":\"3\"}" };
	mp_body_queue q;
	const char *text;
	size_t i, len;

	memset(&q, 0, sizeof(q));
	for (i = 0; i < 3; i++)
		memcpy(mp_body_queue_add(&q, strlen(recs[i]), 10 + i), recs[i],
		       strlen(recs[i]));
	ck_assert_uint_eq(q.n, 3);
	text = mp_body_queue_text(&q, 0, 3, &len);
	ck_assert_int_eq(len, strlen("{\"a\":1},{\"b\":[2]},{\"c\":\"3\"}"));
	ck_assert_int_eq(
		memcmp(text, "{\"a\":1},{\"b\":[2]},{\"c\":\"3\"}", len), 0);
	text = mp_body_queue_text(&q, 1, 2, &len);
	ck_assert_int_eq(len, strlen(recs[1]));
	ck_assert_int_eq(memcmp(text, recs[1], len), 0);
	ck_assert_uint_eq(q.recs[2].tag, 12);
	/* kept memory, then given back when over the limit */
	mp_body_queue_clear(&q, 1u << 20);
	ck_assert_uint_eq(q.n, 0);
	ck_assert_ptr_nonnull(q.recs);
	memcpy(mp_body_queue_add(&q, 7, 1), "{\"d\":4}", 7);
	text = mp_body_queue_text(&q, 0, 1, &len);
	ck_assert_int_eq(memcmp(text, "{\"d\":4}", len), 0);
	mp_body_queue_clear(&q, 0);
	ck_assert_ptr_null(q.recs);
	ck_assert_ptr_null(q.data.data);
	mp_body_queue_free(&q);
}
END_TEST

/* ---- bodies ------------------------------------------------------- */

static char *gunzip(const buf *in, size_t *outlen)
{
	z_stream z;
	buf out;
	int zr;

	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
	buf_init(&out);
	buf_reserve(&out, in->len * 4 + 64);
	z.next_in = (Bytef *)in->data;
	z.avail_in = (uInt)in->len;
	do {
		buf_reserve(&out, 4096);
		z.next_out = (Bytef *)out.data + out.len;
		z.avail_out = (uInt)(out.cap - out.len - 1);
		zr = inflate(&z, Z_NO_FLUSH);
		out.len = (size_t)((char *)z.next_out - out.data);
		ck_assert_msg(zr == Z_OK || zr == Z_STREAM_END, "inflate %d",
			      zr);
	} while (zr != Z_STREAM_END);
	ck_assert_uint_eq(z.avail_in, 0);
	inflateEnd(&z);
	out.data[out.len] = '\0';
	*outlen = out.len;
	return buf_steal(&out);
}

START_TEST(body_plain_and_gzip)
{
	const char *recs = "{\"a\":1},{\"b\":\"x\"},{\"c\":[1,2]}";
	buf plain, gz, big;
	z_stream z;
	char *round;
	size_t n, i;

	buf_init(&plain);
	buf_init(&gz);
	buf_init(&big);
	ck_assert_int_eq(mp_body_build(&plain, recs, strlen(recs), NULL), 0);
	ck_assert_str_eq(plain.data, "[{\"a\":1},{\"b\":\"x\"},{\"c\":[1,2]}]");
	ck_assert_int_eq(mp_body_gzip_init(&z), 0);
	ck_assert_int_eq(mp_body_build(&gz, recs, strlen(recs), &z), 0);
	/* a gzip member, as Content-Encoding: gzip says */
	ck_assert_int_eq((unsigned char)gz.data[0], 0x1f);
	ck_assert_int_eq((unsigned char)gz.data[1], 0x8b);
	round = gunzip(&gz, &n);
	ck_assert_str_eq(round, plain.data);
	free(round);
	/* a large body, and the stream reused after deflateReset */
	for (i = 0; i < 20000; i++)
		buf_printf(&big,
			   "%s{\"event\":\"e\",\"properties\":{\"n\":%zu}}",
			   i ? "," : "", i);
	buf_reset(&gz);
	ck_assert_int_eq(mp_body_build(&gz, big.data, big.len, &z), 0);
	ck_assert_uint_lt(gz.len, big.len / 4);
	round = gunzip(&gz, &n);
	ck_assert_uint_eq(n, big.len + 2);
	ck_assert_int_eq(round[0], '[');
	ck_assert_int_eq(memcmp(round + 1, big.data, big.len), 0);
	ck_assert_int_eq(round[n - 1], ']');
	free(round);
	deflateEnd(&z);
	buf_free(&plain);
	buf_free(&gz);
	buf_free(&big);
}
END_TEST

/* A sink's line is one JSON object a reader can parse back. */
START_TEST(sink_line_is_one_json_object)
{
	const char *recs = "{\"$token\":\"t\",\"$set\":{\"a\":1}}";
	json_object *o, *v;
	buf line;

	buf_init(&line);
	mp_body_line(&line, "/engage", "verbose=1&ip=0", recs, strlen(recs));
	ck_assert_str_eq(line.data + line.len - 2, "}\n");
	ck_assert_ptr_null(memchr(line.data, '\n', line.len - 1));
	o = json_tokener_parse(line.data);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "endpoint", &v));
	ck_assert_str_eq(json_object_get_string(v), "/engage");
	ck_assert(json_object_object_get_ex(o, "query", &v));
	ck_assert_str_eq(json_object_get_string(v), "verbose=1&ip=0");
	ck_assert(json_object_object_get_ex(o, "body", &v));
	ck_assert_int_eq(json_object_array_length(v), 1);
	json_object_put(o);
	buf_free(&line);
}
END_TEST

/* ---- the token splice --------------------------------------------- */

/* A record queued with one token, sent with the destination's token
 * (as JSON string text): what goes out. */
typedef struct token_row {
	const char *what;
	mp_endpoint ep;
	const char *record;
	const char *token;
	const char *want;
} token_row;

static const token_row token_rows[] = {
	{ "an update queued with an old token goes with the current one",
	  MP_EP_ENGAGE, "{\"$token\":\"old\",\"$distinct_id\":\"u1\"}",
	  "\"new-token\"",
	  "{\"$token\":\"new-token\",\"$distinct_id\":\"u1\"}" },
	{ "a group update too", MP_EP_GROUPS,
	  "{\"$token\":\"old\",\"$group_key\":\"k\",\"$group_id\":\"g\"}",
	  "\"t2\"",
	  "{\"$token\":\"t2\",\"$group_key\":\"k\",\"$group_id\":\"g\"}" },
	{ "an old token holding an escaped quote is replaced whole",
	  MP_EP_ENGAGE, "{\"$token\":\"o\\\"ld\",\"$set\":{}}", "\"t\"",
	  "{\"$token\":\"t\",\"$set\":{}}" },
	{ "a token that needs escaping stays valid JSON", MP_EP_ENGAGE,
	  "{\"$token\":\"\",\"$set\":{}}", "\"a\\\\b\"",
	  "{\"$token\":\"a\\\\b\",\"$set\":{}}" },
	{ "an /import event keeps its properties as they are", MP_EP_IMPORT,
	  "{\"$token\":\"old\",\"event\":\"e\"}", "\"new\"",
	  "{\"$token\":\"old\",\"event\":\"e\"}" },
	{ "an update without a leading $token goes as it is", MP_EP_ENGAGE,
	  "{\"$distinct_id\":\"u\",\"$token\":\"old\"}", "\"new\"",
	  "{\"$distinct_id\":\"u\",\"$token\":\"old\"}" },
	{ "a cut record goes as it is (Mixpanel says why)", MP_EP_ENGAGE,
	  "{\"$token\":\"old", "\"new\"", "{\"$token\":\"old" },
};

START_TEST(token_lands_where_mixpanel_expects_it)
{
	const token_row *row = &token_rows[_i];
	size_t len = strlen(row->record), tl = strlen(row->token), old;
	size_t size = mp_body_token_size(&old, row->ep, row->record, len, tl);
	char *out = malloc(size + 1);

	ck_assert_ptr_nonnull(out);
	mp_body_token_write(out, row->record, len, old, row->token, tl);
	out[size] = '\0';
	ck_assert_msg(strcmp(out, row->want) == 0, "%s: %s", row->what, out);
	free(out);
}
END_TEST

static Suite *body_suite(void)
{
	Suite *s = suite_create("mp_body");
	TCase *tc = tcase_create("pure");

	tcase_add_loop_test(tc, plan_keeps_mixpanels_limits, 0,
			    (int)(sizeof(plan_rows) / sizeof(plan_rows[0])));
	tcase_add_test(tc, plan_cuts_a_queue_into_requests_within_the_caps);
	tcase_add_test(tc, queue_runs_are_json_array_insides);
	tcase_add_test(tc, body_plain_and_gzip);
	tcase_add_test(tc, sink_line_is_one_json_object);
	tcase_add_loop_test(tc, token_lands_where_mixpanel_expects_it, 0,
			    (int)(sizeof(token_rows) / sizeof(token_rows[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run_suite(body_suite());
}
