/* check_mp_dest.c - which destinations the one check accepts, and what
 * the client makes of their fields */
#include "audsync/mp_dest.h"

#include "unit.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A destination's fields and what the check must say: NULL when it
 * accepts them, else a piece of the one-line error. */
typedef struct check_row {
	const char *what;
	const char *region;
	const char *api_base;
	const char *token;
	const char *secret;
	const char *project_id;
	const char *want;
} check_row;

static const check_row check_rows[] = {
	{ "the defaults: us, the token alone", NULL, NULL, "tok", NULL, NULL,
	  NULL },
	{ "eu with an API secret", "eu", NULL, "tok", "s3cret", NULL, NULL },
	{ "in with a service account and its project", "in", NULL, "tok",
	  "svc:s3cret", "123", NULL },
	{ "the tests' fake over http", "us", "http://127.0.0.1:9/", "tok", NULL,
	  NULL, NULL },
	{ "stdout:", "us", "stdout:", "tok", NULL, NULL, NULL },
	{ "file:", "us", "file:/tmp/x.jsonl", "tok", NULL, NULL, NULL },
	{ "no token", "us", NULL, NULL, NULL, NULL,
	  "destination d: project_token is not set" },
	{ "an empty token", "us", NULL, "", NULL, NULL,
	  "project_token is not set" },
	{ "a region Mixpanel does not have", "mars", NULL, "tok", NULL, NULL,
	  "unknown region 'mars' (use us, eu or in)" },
	{ "an empty region", "", NULL, "tok", NULL, NULL, "unknown region" },
	{ "a service account without its project", "us", NULL, "tok",
	  "svc:s3cret", NULL,
	  "service account secret (user:secret) needs "
	  "project_id" },
	{ "a service account with an empty project", "us", NULL, "tok",
	  "svc:s3cret", "", "needs project_id" },
	{ "an api_base of another scheme", "us", "ftp://example.com", "tok",
	  NULL, NULL,
	  "api_base must start with https://, http://, stdout: or file:, not "
	  "'ftp://example.com'" },
	{ "an api_base of another scheme with a password", "us",
	  "ftp://u:s3cret@example.com", "tok", NULL, NULL,
	  "or file:, not 'ftp://'" },
};

START_TEST(one_check_for_every_destination)
{
	const check_row *row = &check_rows[_i];
	mp_destination in;
	char err[512] = "";
	int rc;

	memset(&in, 0, sizeof(in));
	in.name = "d";
	in.region = row->region;
	in.api_base = row->api_base;
	in.project_token = row->token;
	in.secret = row->secret;
	in.project_id = row->project_id;
	rc = mp_dest_check(&in, err, sizeof(err));
	if (!row->want) {
		ck_assert_msg(rc == 0, "%s: refused: %s", row->what, err);
		return;
	}
	ck_assert_msg(rc == -1, "%s: accepted", row->what);
	ck_assert_msg(strstr(err, row->want) != NULL, "%s: %s", row->what, err);
	ck_assert_msg(strncmp(err, "destination d: ", 15) == 0, "%s", err);
	ck_assert_ptr_null(strstr(err, "s3cret"));
}
END_TEST

/* The credentials /import sends and the queries of each endpoint. */
START_TEST(conf_auth_and_queries)
{
	mp_destination in;
	mp_dest_conf c;
	char err[512];

	memset(&in, 0, sizeof(in));
	in.project_token = "tok\"en";
	in.secret = "svc.user:s3cret";
	in.project_id = "12 3&x";
	in.geolocate = 1;
	ck_assert_int_eq(mp_dest_conf_init(&c, &in, err, sizeof(err)), 0);
	ck_assert_str_eq(c.name, "mixpanel");
	ck_assert_str_eq(c.base, "https://api.mixpanel.com");
	ck_assert_str_eq(c.username, "svc.user");
	ck_assert_str_eq(c.password, "s3cret");
	ck_assert_str_eq(c.secrets[0], "s3cret");
	ck_assert_ptr_nonnull(c.secrets[1]);
	ck_assert_ptr_null(c.secrets[2]);
	ck_assert_str_eq(c.query[MP_EP_IMPORT],
			 "strict=1&project_id=12%203%26x");
	ck_assert_str_eq(c.query[MP_EP_ENGAGE], "verbose=1&ip=1");
	ck_assert_str_eq(c.query[MP_EP_GROUPS], "verbose=1&ip=1");
	ck_assert_str_eq(c.token.data, "\"tok\\\"en\"");
	mp_dest_conf_free(&c);

	/* no secret: /import authenticates with the token, nothing to
	 * redact */
	memset(&in, 0, sizeof(in));
	in.project_token = "tok";
	in.region = "eu";
	ck_assert_int_eq(mp_dest_conf_init(&c, &in, err, sizeof(err)), 0);
	ck_assert_str_eq(c.base, "https://api-eu.mixpanel.com");
	ck_assert_str_eq(c.username, "tok");
	ck_assert_str_eq(c.password, "");
	ck_assert_ptr_null(c.secrets[0]);
	ck_assert_str_eq(c.query[MP_EP_IMPORT], "strict=1");
	ck_assert_str_eq(c.query[MP_EP_ENGAGE], "verbose=1&ip=0");
	mp_dest_conf_free(&c);
}
END_TEST

/* Settings and what the client uses: its defaults and Mixpanel's caps. */
typedef struct limit_row {
	const char *what;
	int concurrency;
	int batch_size;
	size_t max_bytes;
	int want_conc;
	size_t want_batch;
	size_t want_bytes;
} limit_row;

static const limit_row limit_rows[] = {
	{ "the defaults: 8 at once, 2 000 records and 2 MiB a request", 0, 0, 0,
	  8, MP_MAX_BATCH, MP_DEFAULT_MAX_BYTES },
	{ "concurrency and batch_size as set", 3, 500, 1000, 3, 500, 1000 },
	{ "batch_size over Mixpanel's 2 000 is capped", 1, 5000, 0, 1,
	  MP_MAX_BATCH, MP_DEFAULT_MAX_BYTES },
	{ "concurrency over 64 is capped", 1000, 0, 0, 64, MP_MAX_BATCH,
	  MP_DEFAULT_MAX_BYTES },
	{ "a byte cap too small for any record is raised to 16", 0, 0, 3, 8,
	  MP_MAX_BATCH, 16 },
};

START_TEST(conf_limits)
{
	const limit_row *row = &limit_rows[_i];
	mp_destination in;
	mp_dest_conf c;
	char err[512];

	memset(&in, 0, sizeof(in));
	in.project_token = "tok";
	in.concurrency = row->concurrency;
	in.batch_size = row->batch_size;
	in.max_bytes = row->max_bytes;
	ck_assert_int_eq(mp_dest_conf_init(&c, &in, err, sizeof(err)), 0);
	ck_assert_msg(c.conc == row->want_conc, "%s: conc %d", row->what,
		      c.conc);
	ck_assert_msg(c.batch == row->want_batch, "%s: batch %zu", row->what,
		      c.batch);
	ck_assert_msg(c.max_bytes == row->want_bytes, "%s: bytes %zu",
		      row->what, c.max_bytes);
	mp_dest_conf_free(&c);
}
END_TEST

static Suite *dest_suite(void)
{
	Suite *s = suite_create("mp_dest");
	TCase *tc = tcase_create("pure");

	tcase_add_loop_test(tc, one_check_for_every_destination, 0,
			    (int)(sizeof(check_rows) / sizeof(check_rows[0])));
	tcase_add_test(tc, conf_auth_and_queries);
	tcase_add_loop_test(tc, conf_limits, 0,
			    (int)(sizeof(limit_rows) / sizeof(limit_rows[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ut_run_suite(dest_suite());
}
