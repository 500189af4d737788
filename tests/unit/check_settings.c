/* check_settings.c - the settings table (settings.c), the destination
 * policy (dest_policy.c), reserved keys (naming.c) and the object
 * stepper of track-mode values (mp_payload.c): pure rules, no database */
#include "audsync/dest_policy.h"
#include "audsync/mp_payload.h"
#include "audsync/naming.h"
#include "audsync/settings.h"
#include "unit.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- every setting: its default parses, its bounds hold ----------------- */

/* 1 when text parses as setting d. */
static int parses(const settings_def *d, const char *text)
{
	char err[300];
	double x;

	return settings_parse_double(&x, d, text, err, sizeof(err)) == 0;
}

START_TEST(every_setting_default_and_bounds)
{
	const settings_def *d;
	char text[64];
	int n = 0;

	for (d = settings_table; d->name; d++, n++) {
		ck_assert_ptr_nonnull(d->doc);
		ck_assert_msg(strlen(d->doc) > 10, "%s has no doc", d->name);
		ck_assert_ptr_eq(settings_find(d->scope, d->name), d);
		if (d->type != SETTINGS_INT && d->type != SETTINGS_NUMBER &&
		    d->type != SETTINGS_DURATION)
			continue;
		ck_assert_msg(!*d->dflt || parses(d, d->dflt),
			      "%s: default %s does not parse", d->name,
			      d->dflt);
		snprintf(text, sizeof(text), "%.15g", d->min);
		ck_assert_msg(parses(d, text), "%s: min %s", d->name, text);
		snprintf(text, sizeof(text), "%.15g", d->max);
		ck_assert_msg(parses(d, text), "%s: max %s", d->name, text);
		snprintf(text, sizeof(text), "%.15g", d->max * 2 + 1);
		ck_assert_msg(!parses(d, text), "%s: above max %s", d->name,
			      text);
		ck_assert_msg(!parses(d, "0") || d->min <= 0, "%s: 0", d->name);
		ck_assert_msg(!parses(d, "-1"), "%s: -1", d->name);
		ck_assert_msg(!parses(d, ""), "%s: empty", d->name);
		ck_assert_msg(!parses(d, " 5"), "%s: blank", d->name);
		ck_assert_msg(!parses(d, "5 "), "%s: trailing", d->name);
		ck_assert_msg(!parses(d, "0x10"), "%s: hex", d->name);
		ck_assert_msg(!parses(d, "nan"), "%s: nan", d->name);
		ck_assert_msg(!parses(d, "inf"), "%s: inf", d->name);
		ck_assert_msg(!parses(d, "+5"), "%s: sign", d->name);
	}
	ck_assert_int_ge(n, 20);
}
END_TEST

/* One text and what it parses to (-1: refused). */
typedef struct parse_row {
	const char *name;
	const char *text;
	double want;
} parse_row;

static const parse_row parse_rows[] = {
	{ "AUDSYNC_TIMEOUT_MS", "30000", 30000 },
	{ "AUDSYNC_TIMEOUT_MS", "30s", -1 },
	{ "AUDSYNC_TIMEOUT_MS", "0", -1 },
	{ "AUDSYNC_TIMEOUT_MS", "1.5", -1 },
	{ "AUDSYNC_TIMEOUT_MS", "1e3", -1 },
	{ "AUDSYNC_TIMEOUT_MS", "99999999999999999999", -1 },
	{ "AUDSYNC_MAX_ATTEMPTS", "6", 6 },
	{ "AUDSYNC_MAX_ATTEMPTS", "101", -1 },
	{ "AUDSYNC_RETRY_JITTER_MS", "5", 5 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "10min", 600000 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "90s", 90000 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "250ms", 250 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "2h", 7200000 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "1500", 1500 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "10 min", -1 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "10parsecs", -1 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "1.5min", -1 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "1e3ms", -1 },
	{ "AUDSYNC_STATEMENT_TIMEOUT", "25h", -1 },
	{ "AUDSYNC_CHECK_WARN_AGE", "900", 900 },
	{ "AUDSYNC_CHECK_WARN_AGE", "900s", -1 },
	{ "AUDSYNC_CHECK_WARN_AGE", "1abc", -1 },
	{ "AUDSYNC_CHECK_CRIT_AGE", "3600", 3600 },
	{ "AUDSYNC_CHECK_CRIT_AGE", "-5", -1 },
	{ "AUDSYNC_PROGRESS_INTERVAL_MS", "300", 300 },
	{ "AUDSYNC_PROGRESS_INTERVAL_MS", "0", -1 },
	{ "AUDSYNC_LOG_PRIORITY_PREFIX", "1", 1 },
	{ "AUDSYNC_LOG_PRIORITY_PREFIX", "0", 0 },
	{ "AUDSYNC_LOG_PRIORITY_PREFIX", "2", -1 },
	{ "AUDSYNC_LOG_PRIORITY_PREFIX", "yes", -1 },
	{ "batch_size", "2000", 2000 },
	{ "batch_size", "2001", -1 },
	{ "batch_size", "1.5", -1 },
	{ "concurrency", "64", 64 },
	{ "concurrency", "65", -1 },
	{ "max_rate", "0.5", 0.5 },
	{ "max_rate", "-1", -1 },
	{ "max_rate", "0", -1 },
};

START_TEST(settings_parse_strictly)
{
	const parse_row *row = &parse_rows[_i];
	const settings_def *d = settings_find(SETTINGS_ENV, row->name);
	char err[300] = "";
	double x = -7;
	int rc;

	if (!d)
		d = settings_find(SETTINGS_DEST, row->name);
	ck_assert_ptr_nonnull(d);
	rc = settings_parse_double(&x, d, row->text, err, sizeof(err));
	if (row->want < 0) {
		ck_assert_msg(rc == -1, "%s=%s was taken as %g", row->name,
			      row->text, x);
		ck_assert_msg(strstr(err, row->name) != NULL,
			      "the error does not name %s: %s", row->name, err);
	} else {
		ck_assert_msg(rc == 0 && x == row->want, "%s=%s: %g (%s)",
			      row->name, row->text, x, err);
	}
}
END_TEST

START_TEST(an_unset_variable_takes_its_default)
{
	char err[300];
	long v = 0;

	unsetenv("AUDSYNC_TIMEOUT_MS");
	ck_assert_int_eq(
		settings_env_long(&v, "AUDSYNC_TIMEOUT_MS", err, sizeof(err)),
		0);
	ck_assert_int_eq(v, 30000);
	setenv("AUDSYNC_TIMEOUT_MS", "30s", 1);
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), -1);
	ck_assert(strstr(err, "AUDSYNC_TIMEOUT_MS") != NULL);
	unsetenv("AUDSYNC_TIMEOUT_MS");
	/* a duration is checked at start too, not when first used */
	setenv("AUDSYNC_STATEMENT_TIMEOUT", "10parsecs", 1);
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), -1);
	ck_assert(strstr(err, "AUDSYNC_STATEMENT_TIMEOUT") != NULL);
	unsetenv("AUDSYNC_STATEMENT_TIMEOUT");
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), 0);
}
END_TEST

/* A switch is true or false: "off" or "0" must not leave it on quietly. */
START_TEST(a_switch_is_true_or_false)
{
	static const char *const bad[] = { "off", "0", "no", "FALSE", "maybe" };
	char err[300], want[100];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("AUDSYNC_INCREMENTAL", bad[i], 1);
		ck_assert_int_eq(settings_check_env(err, sizeof(err)), -1);
		snprintf(want, sizeof(want),
			 "AUDSYNC_INCREMENTAL must be true or false, not '%s'",
			 bad[i]);
		ck_assert_str_eq(err, want);
	}
	setenv("AUDSYNC_INCREMENTAL", "false", 1);
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), 0);
	setenv("AUDSYNC_INCREMENTAL", "true", 1);
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), 0);
	unsetenv("AUDSYNC_INCREMENTAL");
}
END_TEST

/* A relative directory in the file-sink list could never match: the
 * operator hears so at start, not when a destination is refused. */
START_TEST(file_sinks_are_absolute_directories)
{
	char err[300];

	setenv("AUDSYNC_ALLOW_FILE_SINKS", "/var/lib/audsync:exports", 1);
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), -1);
	ck_assert_str_eq(err, "AUDSYNC_ALLOW_FILE_SINKS must list absolute "
			      "directories separated by ':', not 'exports'");
	setenv("AUDSYNC_ALLOW_FILE_SINKS", "/var/lib/audsync:/srv/out", 1);
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), 0);
	unsetenv("AUDSYNC_ALLOW_FILE_SINKS");
	ck_assert_int_eq(settings_check_env(err, sizeof(err)), 0);
}
END_TEST

/* A value out of range is refused with its bounds as an operator writes
 * them, not in a printf exponent. */
START_TEST(a_range_error_writes_its_bounds_in_full)
{
	static const struct {
		settings_scope scope;
		const char *name, *text, *want;
	} rows[] = {
		{ SETTINGS_ENV, "AUDSYNC_TIMEOUT_MS", "0",
		  "AUDSYNC_TIMEOUT_MS must be a whole number from 1 to 3600000 "
		  "ms, not '0'" },
		{ SETTINGS_ENV, "AUDSYNC_LOOKUP_PERCENT", "abc",
		  "AUDSYNC_LOOKUP_PERCENT must be a whole number from 0 to "
		  "1000000 %, not 'abc'" },
		{ SETTINGS_DEST, "max_rate", "0",
		  "max_rate must be a number from 0.001 to 100000 records/s, "
		  "not '0'" },
	};
	char err[300];
	double x;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const settings_def *d =
			settings_find(rows[i].scope, rows[i].name);

		ck_assert_ptr_nonnull(d);
		ck_assert_int_eq(settings_parse_double(&x, d, rows[i].text, err,
						       sizeof(err)),
				 -1);
		ck_assert_str_eq(err, rows[i].want);
	}
}
END_TEST

/* Every setting of the table has a row of the README's tables with its
 * name and default. */
/* The whole of a file of the tree (caller frees). */
static char *read_tree_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	char *text = NULL;
	size_t len = 0;

	ck_assert_msg(f != NULL, "%s not found from the current directory",
		      path);
	while (fgets(line, sizeof(line), f)) {
		text = realloc(text, len + strlen(line) + 1);
		memcpy(text + len, line, strlen(line) + 1);
		len += strlen(line);
	}
	fclose(f);
	return text;
}

/* Whether text has a table row whose name cell holds `name` (alone, or
 * first or last of a list: "| `A`, `B` |") with `dflt` later on the
 * line (any row when dflt is empty). */
static int has_row(const char *text, const char *name, const char *dflt)
{
	static const char *const forms[][2] = { { "| ", " |" },
						{ "| ", ", " },
						{ ", ", " |" } };
	char want[160], code[128];
	size_t i;

	snprintf(code, sizeof(code), "`%s`", dflt);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const char *p;

		snprintf(want, sizeof(want), "%s`%s`%s", forms[i][0], name,
			 forms[i][1]);
		for (p = strstr(text, want); p; p = strstr(p + 1, want)) {
			const char *eol = strchr(p, '\n');
			const char *d = strstr(p, code);

			if (!*dflt || (d && (!eol || d < eol)))
				return 1;
		}
	}
	return 0;
}

START_TEST(the_readme_lists_every_setting)
{
	const settings_def *d;
	char *text = read_tree_file("README.md");

	for (d = settings_table; d->name; d++)
		ck_assert_msg(has_row(text, d->name, d->dflt),
			      "README.md has no table row '| `%s` | ... `%s`'",
			      d->name, d->dflt);
	free(text);
}
END_TEST

/* The deployment's environment file names every variable an operator
 * may set, with its default where it has one (commented out). */
START_TEST(the_environment_example_lists_every_variable)
{
	char want[160];
	const settings_def *d;
	char *text = read_tree_file("deploy/audsync.env.example");

	for (d = settings_table; d->name; d++) {
		if (d->scope != SETTINGS_ENV || !strcmp(d->name, "AUDSYNC_DB"))
			continue;
		snprintf(want, sizeof(want), "%s=%s", d->name, d->dflt);
		ck_assert_msg(strstr(text, want) != NULL,
			      "deploy/audsync.env.example lacks '%s'", want);
	}
	free(text);
}
END_TEST

/* ---- what a destination row may make the process touch ----------------- */

typedef struct policy_row {
	const char *api_base;
	const char *allow_files;
	const char *allow_hosts;
	int ok;
} policy_row;

static const policy_row policy_rows[] = {
	{ NULL, NULL, NULL, 1 },
	{ "https://api.mixpanel.com", NULL, NULL, 1 },
	{ "https://proxy.example.com/mp/", NULL, NULL, 1 },
	{ "stdout:", NULL, NULL, 1 },
	{ "http://127.0.0.1:8080", NULL, NULL, 1 },
	{ "http://localhost/x", NULL, NULL, 1 },
	{ "http://LOCALHOST:1", NULL, NULL, 1 },
	{ "http://[::1]:9/", NULL, NULL, 1 },
	{ "http://example.com", NULL, NULL, 0 },
	{ "http://example.com", NULL, "other.org,example.com", 1 },
	{ "http://example.com.evil.org", NULL, "example.com", 0 },
	{ "http://127.0.0.1.evil.org", NULL, NULL, 0 },
	{ "http://localhost@evil.org/", NULL, NULL, 0 },
	{ "http://u:p@127.0.0.1/", NULL, NULL, 0 },
	{ "https://user:PASSW0RD@api.mixpanel.com", NULL, NULL, 0 },
	{ "https://PASSW0RD@proxy.example.com/mp/", NULL, NULL, 0 },
	{ "HTTPS://user:PASSW0RD@api.mixpanel.com", NULL, NULL, 0 },
	{ "https://proxy.example.com/mp/@PASSW0RD", NULL, NULL, 1 },
	{ "http://", NULL, NULL, 0 },
	{ "https://", NULL, NULL, 0 },
	{ "ftp://x", NULL, NULL, 0 },
	{ "file:/tmp/x.jsonl", NULL, NULL, 0 },
	{ "file:/tmp/x.jsonl", "/tmp", NULL, 1 },
	{ "file:/tmp/x.jsonl", "/var:/tmp", NULL, 1 },
	{ "file:/tmpx/x.jsonl", "/tmp", NULL, 0 },
	{ "file:/tmp/../etc/x", "/tmp", NULL, 0 },
	{ "file:x.jsonl", "/tmp", NULL, 0 },
	{ "file:/tmp/", "/tmp", NULL, 0 },
	{ "file:/nonexistent-dir/x", "/nonexistent-dir", NULL, 0 },
	{ "file:", "/tmp", NULL, 0 },
};

static void set_or_unset(const char *name, const char *v)
{
	if (v)
		setenv(name, v, 1);
	else
		unsetenv(name);
}

START_TEST(a_row_reaches_only_what_the_operator_allows)
{
	const policy_row *row = &policy_rows[_i];
	char err[400] = "";
	int rc;

	set_or_unset("AUDSYNC_ALLOW_FILE_SINKS", row->allow_files);
	set_or_unset("AUDSYNC_ALLOW_HTTP_HOSTS", row->allow_hosts);
	rc = dest_policy_api_base(row->api_base, err, sizeof(err));
	ck_assert_msg((rc == 0) == row->ok,
		      "api_base %s (files %s, hosts %s): %s",
		      row->api_base ? row->api_base : "NULL",
		      row->allow_files ? row->allow_files : "-",
		      row->allow_hosts ? row->allow_hosts : "-",
		      rc == 0 ? "allowed" : err);
	ck_assert(rc == 0 || (strlen(err) > 20 && !strchr(err, '\n')));
	/* the one line never echoes a password of the URL */
	ck_assert_msg(rc == 0 || !strstr(err, "PASSW0RD"), "%s", err);
}
END_TEST

START_TEST(secret_env_needs_the_operator_prefix)
{
	char err[300];

	unsetenv("AUDSYNC_SECRET_ENV_PREFIX");
	ck_assert_int_eq(dest_policy_secret_env(NULL, err, sizeof(err)), 0);
	/* set but empty is unset: the default prefix holds */
	setenv("AUDSYNC_SECRET_ENV_PREFIX", "", 1);
	ck_assert_int_eq(dest_policy_secret_env("PGPASSWORD", err, sizeof(err)),
			 -1);
	unsetenv("AUDSYNC_SECRET_ENV_PREFIX");
	ck_assert_int_eq(
		dest_policy_secret_env("MIXPANEL_API_SECRET", err, sizeof(err)),
		0);
	ck_assert_int_eq(dest_policy_secret_env("PGPASSWORD", err, sizeof(err)),
			 -1);
	ck_assert(strstr(err, "MIXPANEL_") != NULL);
	ck_assert_int_eq(
		dest_policy_secret_env("MIXPANEL_X=1", err, sizeof(err)), -1);
	setenv("AUDSYNC_SECRET_ENV_PREFIX", "MP_", 1);
	ck_assert_int_eq(dest_policy_secret_env("MP_S", err, sizeof(err)), 0);
	ck_assert_int_eq(
		dest_policy_secret_env("MIXPANEL_API_SECRET", err, sizeof(err)),
		-1);
	unsetenv("AUDSYNC_SECRET_ENV_PREFIX");
}
END_TEST

/* ---- reserved keys ------------------------------------------------------- */

START_TEST(reserved_keys_are_named)
{
	static const char *const bad[] = {
		"time",		 "distinct_id", "ip",	  "token",
		"insert_id",	 "$insert_id",	"mp_lib", "audience_key",
		"audience_name", "trait_key",	""
	};
	static const char *const good[] = { "recent_buyers", "timestamp", "mpx",
					    "ltv", "tokens" };
	char long_key[300];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(naming_key_problem(bad[i]) != NULL, "%s taken",
			      bad[i]);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(naming_key_problem(good[i]) == NULL, "%s refused",
			      good[i]);
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	ck_assert_ptr_nonnull(naming_key_problem(long_key));
	long_key[NAMING_KEY_MAX] = '\0';
	ck_assert_ptr_null(naming_key_problem(long_key));
}
END_TEST

static Suite *settings_suite(void)
{
	Suite *s = suite_create("settings");
	TCase *tc = tcase_create("settings");
	TCase *tp = tcase_create("policy");

	tcase_add_test(tc, every_setting_default_and_bounds);
	tcase_add_test(tc, a_range_error_writes_its_bounds_in_full);
	tcase_add_test(tc, a_switch_is_true_or_false);
	tcase_add_test(tc, the_environment_example_lists_every_variable);
	tcase_add_test(tc, file_sinks_are_absolute_directories);
	tcase_add_loop_test(tc, settings_parse_strictly, 0,
			    (int)(sizeof(parse_rows) / sizeof(parse_rows[0])));
	tcase_add_test(tc, an_unset_variable_takes_its_default);
	tcase_add_test(tc, the_readme_lists_every_setting);
	tcase_add_loop_test(
		tp, a_row_reaches_only_what_the_operator_allows, 0,
		(int)(sizeof(policy_rows) / sizeof(policy_rows[0])));
	tcase_add_test(tp, secret_env_needs_the_operator_prefix);
	tcase_add_test(tp, reserved_keys_are_named);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tp);
	return s;
}

int main(void)
{
	return ut_run_suite(settings_suite());
}
