/* check_log.c - the log lines as journald, syslog and a log shipper read
 * them: priorities, a run id, typed JSON, RFC 3339 times, quiet minutes */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NO_DB "host=/nonexistent dbname=x"

static mpctl *fake;
static const char *db;

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_add_everyone_sync(db);
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* The string field key of o, or "" (borrowed). */
static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v)
						     : "";
}

START_TEST(json_lines_carry_numbers_rfc3339_times_and_one_run_id)
{
	char run_id[64] = "";
	const char *line;
	int members_seen = 0, delivered_seen = 0;
	regex_t ts;
	tl_result r;

	ck_assert_int_eq(
		regcomp(&ts,
			"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
			"[0-9]{2}\\.[0-9]{3}Z$",
			REG_EXTENDED | REG_NOSUB),
		0);
	r = tl_audsync(db, NULL, "--log-format", "json", "--log-level", "debug",
		       "run", "--all", NULL);
	ck_assert_int_eq(r.status, 0);
	for (line = r.err; *line; line = strchr(line, '\n') + 1) {
		size_t len = strcspn(line, "\n");
		char *copy = strndup(line, len);
		json_object *o = json_tokener_parse(copy), *v;

		ck_assert_msg(o != NULL, "not JSON: %s", copy);
		ck_assert_msg(regexec(&ts, str_of(o, "ts"), 0, NULL, 0) == 0,
			      "ts not RFC 3339 with ms: %s", copy);
		ck_assert_msg(str_of(o, "run_id")[0], "no run_id: %s", copy);
		if (!run_id[0])
			snprintf(run_id, sizeof(run_id), "%s",
				 str_of(o, "run_id"));
		ck_assert_str_eq(str_of(o, "run_id"), run_id);
		if (json_object_object_get_ex(o, "members", &v)) {
			ck_assert_msg(json_object_is_type(v, json_type_int),
				      "members is not a number: %s", copy);
			ck_assert_int_eq(json_object_get_int(v), 2);
			members_seen = 1;
			/* A duration is a number with its milliseconds. */
			ck_assert_msg(json_object_object_get_ex(o, "evaluate_s",
								&v) &&
					      json_object_is_type(
						      v, json_type_double),
				      "evaluate_s is not a number: %s", copy);
			ck_assert_str_eq(str_of(o, "computation"), "everyone");
		}
		if (json_object_object_get_ex(o, "delivered", &v)) {
			ck_assert_msg(json_object_is_type(v, json_type_int),
				      "delivered is not a number: %s", copy);
			delivered_seen = 1;
		}
		json_object_put(o);
		free(copy);
		if (!line[len])
			break;
	}
	ck_assert_msg(members_seen, "no run line: %s", r.err);
	ck_assert_msg(delivered_seen, "no delivery line: %s", r.err);
	tl_result_free(&r);
	regfree(&ts);

	/* The next command is another run. */
	r = tl_audsync(db, NULL, "--log-format", "json", "--log-level", "debug",
		       "run", "--all", NULL);
	ck_assert_msg(!tl_contains(r.err, run_id), "%s", r.err);
	tl_result_free(&r);
}
END_TEST

/* The JSON line of r's stderr whose msg is msg, or NULL (caller puts). */
static json_object *json_line(const tl_result *r, const char *msg)
{
	const char *line;

	for (line = r->err; *line; line += strcspn(line, "\n") + 1) {
		char *copy = strndup(line, strcspn(line, "\n"));
		json_object *o = json_tokener_parse(copy);

		free(copy);
		if (o && strcmp(str_of(o, "msg"), msg) == 0)
			return o;
		json_object_put(o);
		if (!line[strcspn(line, "\n")])
			break;
	}
	return NULL;
}

/* A text field is a JSON string whatever it holds: a log shipper that
 * indexes the field as a string must not meet a number there. */
START_TEST(a_text_field_that_reads_as_a_number_stays_a_string)
{
	const char *const names[] = { "12345", "0.5", "1e5", "007" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++) {
		tl_result r =
			tl_audsync(db, NULL, "--log-format", "json", "forward",
				   "--destination", "mp", names[i], NULL);
		json_object *o = json_line(&r, "cannot open the messages"), *v;

		ck_assert_msg(r.status != 0, "%s", r.err);
		ck_assert_msg(o && json_object_object_get_ex(o, "file", &v),
			      "no line naming the file: %s", r.err);
		ck_assert_msg(json_object_is_type(v, json_type_string),
			      "file %s is not a string: %s", names[i], r.err);
		ck_assert_str_eq(json_object_get_string(v), names[i]);
		json_object_put(o);
		tl_result_free(&r);
	}
}
END_TEST

START_TEST(an_unchanged_run_logs_at_debug_not_info)
{
	tl_result r = tl_audsync(db, NULL, "run", "--all", NULL);

	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.err, "level=info") &&
			      tl_contains(r.err, "sync run succeeded"),
		      "%s", r.err);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(!tl_contains(r.err, "sync run succeeded"), "%s", r.err);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "--log-level", "debug", "run", "--all", NULL);
	ck_assert_msg(tl_contains(r.err, "level=debug") &&
			      tl_contains(r.err, "sync run succeeded"),
		      "%s", r.err);
	tl_result_free(&r);
}
END_TEST

/* A run of two syncs on one connection reuses the engine's temporary
 * tables; PostgreSQL's notices about that are no news to an operator. */
START_TEST(the_debug_log_has_no_notices_about_the_engines_own_tables)
{
	tl_result r;

	tl_sql(db, "INSERT INTO audsync.computations (key, name, kind,"
		   " definition_sql) VALUES ('second', 'Second', 'audience',"
		   " 'SELECT DISTINCT profile_id FROM audsync.external_ids');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.key = 'second' AND d.name = 'mp'");
	r = tl_audsync(db, NULL, "--log-level", "debug", "run", "--all", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.err, "computation=second"), "%s", r.err);
	ck_assert_msg(!tl_contains(r.err, "postgresql notice"), "%s", r.err);
	tl_result_free(&r);
}
END_TEST

START_TEST(audsync_log_format_chooses_json)
{
	const char *const env[] = { "AUDSYNC_LOG_FORMAT=json", NULL };
	const char *const bad[] = { "AUDSYNC_LOG_FORMAT=xml", NULL };
	tl_result r = tl_audsync(NO_DB, env, "status", NULL);

	ck_assert_int_eq(r.status, 3);
	ck_assert_msg(r.err[0] == '{' && tl_contains(r.err, "\"level\""), "%s",
		      r.err);
	tl_result_free(&r);
	r = tl_audsync(NO_DB, bad, "status", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(tl_contains(r.err, "AUDSYNC_LOG_FORMAT"), "%s", r.err);
	tl_result_free(&r);
}
END_TEST

/* The log of one `status` on an unreachable database, with env, where
 * stderr is a file; journal set: JOURNAL_STREAM names that very file. */
static char *log_to_file(const char *extra_env, int journal)
{
	const char *dir = getenv("AUDSYNC_TEST_TMPDIR");
	const char *args[] = { "status", NULL };
	char path[512], js[96];
	const char *env[] = { js, extra_env, NULL };
	char *text = calloc(1, 1 << 16);
	struct stat st;
	size_t n;
	FILE *f;
	pid_t pid;
	int ws;

	snprintf(path, sizeof(path), "%s/log-%d", dir ? dir : "/tmp",
		 (int)getpid());
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(stat(path, &st), 0);
	snprintf(js, sizeof(js), "JOURNAL_STREAM=%llu:%llu",
		 (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (journal ? 0 : 1));
	pid = tl_audsync_spawn_log(NO_DB, env, args, path);
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 3);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, (1 << 16) - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(path);
	return text;
}

START_TEST(lines_carry_their_priority_for_journald_and_syslog)
{
	char *t = log_to_file(NULL, 1);

	ck_assert_msg(strncmp(t, "<3>ts=", 6) == 0, "%s", t);
	free(t);
	/* Another stream inherited the variable: no prefix. */
	t = log_to_file(NULL, 0);
	ck_assert_msg(strncmp(t, "ts=", 3) == 0, "%s", t);
	free(t);
	/* For logger --prio-prefix (the cron line). */
	t = log_to_file("AUDSYNC_LOG_PRIORITY_PREFIX=1", 0);
	ck_assert_msg(strncmp(t, "<3>ts=", 6) == 0, "%s", t);
	free(t);
}
END_TEST

/* Three records that take about 4.5 s to deliver, one at a time. */
static void make_delivery_slow(void)
{
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '3 days');"
		   "UPDATE audsync.destinations SET settings ="
		   " '{\"batch_size\": 1, \"concurrency\": 1}'");
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"slow\",\"count\":3,"
					   "\"slow_ms\":1500}"),
			 0);
}

START_TEST(a_long_run_logs_its_progress_off_a_terminal)
{
	const char *const env[] = { "AUDSYNC_PROGRESS_INTERVAL_MS=300", NULL };
	tl_result r;

	make_delivery_slow();
	r = tl_audsync(db, env, "run", "--all", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(tl_contains(r.err, "msg=progress operation=run "
					 "decided=3 delivered="),
		      "%s", r.err);
	ck_assert_msg(tl_contains(r.err, " rate_per_s=") &&
			      tl_contains(r.err, " eta_s="),
		      "%s", r.err);
	tl_result_free(&r);
	/* A short one says nothing of its progress. */
	r = tl_audsync(db, env, "run", "--all", NULL);
	ck_assert_msg(!tl_contains(r.err, "progress"), "%s", r.err);
	tl_result_free(&r);
}
END_TEST

/* In JSON a progress line's figures are numbers, and one not known yet
 * (no record delivered: no ETA) is null, never the text "-". */
START_TEST(progress_figures_are_json_numbers_or_null)
{
	const char *const env[] = { "AUDSYNC_PROGRESS_INTERVAL_MS=300",
				    "AUDSYNC_LOG_FORMAT=json", NULL };
	json_object *o, *v;
	tl_result r;

	make_delivery_slow();
	r = tl_audsync(db, env, "run", "--all", NULL);
	ck_assert_int_eq(r.status, 0);
	o = json_line(&r, "progress");
	ck_assert_msg(o != NULL, "no progress line: %.2000s", r.err);
	ck_assert_msg(json_object_object_get_ex(o, "rate_per_s", &v) &&
			      json_object_is_type(v, json_type_int),
		      "rate_per_s is not a number: %s",
		      json_object_to_json_string(o));
	ck_assert_msg(
		json_object_object_get_ex(o, "eta_s", &v) &&
			(v == NULL || json_object_is_type(v, json_type_int)),
		"eta_s is neither a number nor null: %s",
		json_object_to_json_string(o));
	json_object_put(o);
	tl_result_free(&r);
}
END_TEST

START_TEST(a_long_run_on_a_terminal_shows_one_updating_line)
{
	const char *args[] = { "run", "--all", NULL };
	char out[1 << 16];
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int master, slave, st;

	make_delivery_slow();
	master = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	/* Held open here, so the terminal outlives the child. */
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(slave, 0);
	pid = tl_audsync_spawn_log(db, NULL, args, ptsname(master));
	fcntl(master, F_SETFL, O_NONBLOCK);
	for (;;) {
		int done = waitpid(pid, &st, WNOHANG) == pid;

		while (len < sizeof(out) - 1 &&
		       (n = read(master, out + len, sizeof(out) - 1 - len)) > 0)
			len += (size_t)n;
		if (done)
			break;
		usleep(50 * 1000);
	}
	out[len] = '\0';
	close(slave);
	close(master);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	ck_assert_msg(tl_contains(out, "\r\033[Krun: 3 decided, "), "%s", out);
	ck_assert_msg(tl_contains(out, " delivered, ") &&
			      tl_contains(out, "/s, ETA "),
		      "%s", out);
	/* One line, redrawn: no progress log lines on a terminal. */
	ck_assert_msg(!tl_contains(out, "msg=progress"), "%s", out);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
		       json_lines_carry_numbers_rfc3339_times_and_one_run_id);
	tcase_add_test(tc, a_text_field_that_reads_as_a_number_stays_a_string);
	tcase_add_test(tc, an_unchanged_run_logs_at_debug_not_info);
	tcase_add_test(
		tc, the_debug_log_has_no_notices_about_the_engines_own_tables);
	tcase_add_test(tc, audsync_log_format_chooses_json);
	tcase_add_test(tc, lines_carry_their_priority_for_journald_and_syslog);
	tcase_add_test(tc, a_long_run_logs_its_progress_off_a_terminal);
	tcase_add_test(tc, progress_figures_are_json_numbers_or_null);
	tcase_add_test(tc, a_long_run_on_a_terminal_shows_one_updating_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(log_suite());
}
