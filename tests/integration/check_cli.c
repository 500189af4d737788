/* check_cli.c - the audsync command line (DESIGN.md section 9), run as the
 * real binary: usage, exit statuses, database selection, migrate, status,
 * validate, logs, metrics, dry runs */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <dirent.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* An unreachable database: no server has a socket there. */
#define NO_DB "host=/nonexistent dbname=x"

static const char *bin(void)
{
	const char *b = getenv("AUDSYNC_BIN");

	return b && *b ? b : "./audsync";
}

/* Reads a whole stream from its start into a new string. */
static char *slurp_file(FILE *f)
{
	size_t len = 0, cap = 4096, n;
	char *s = malloc(cap);

	rewind(f);
	while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 1024) {
			cap *= 2;
			s = realloc(s, cap);
		}
	}
	s[len] = '\0';
	return s;
}

/*
 * Runs the binary with exactly args (no --db added), with env changes:
 * "NAME=value" sets, a bare "NAME" unsets. Both NULL-terminated.
 */
static tl_result run_raw(const char *const *env, const char *const *args)
{
	tl_result r = { 0 };
	FILE *out = tmpfile(), *err = tmpfile();
	char *argv[32];
	int n, st;
	pid_t pid;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(err);
	argv[0] = (char *)bin();
	for (n = 0; args[n] && n < 30; n++)
		argv[n + 1] = (char *)args[n];
	argv[n + 1] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		size_t i;

		dup2(fileno(out), 1);
		dup2(fileno(err), 2);
		for (i = 0; env && env[i]; i++) {
			if (strchr(env[i], '='))
				putenv((char *)env[i]);
			else
				unsetenv(env[i]);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	r.out = slurp_file(out);
	r.err = slurp_file(err);
	fclose(out);
	fclose(err);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

#define RUN(env, ...) run_raw(env, (const char *const[]){ __VA_ARGS__, NULL })

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* Asserts an exit status, showing the output when it differs. */
#define ASSERT_EXIT(r, want)                                                   \
	ck_assert_msg((r).status == (want),                                    \
		      "exit %d, expected %d\nstdout: %s\nstderr: %s",          \
		      (r).status, (want), (r).out, (r).err)

/* Asserts that the run printed usage to stderr, nothing to stdout and
 * exited 2. */
static void assert_usage_error(const char *const *args)
{
	tl_result r = run_raw(NULL, args);

	ASSERT_EXIT(r, 2);
	ck_assert_msg(tl_contains(r.err, "usage: audsync"),
		      "no usage on stderr: %s", r.err);
	ck_assert_msg(r.out[0] == '\0', "stdout not empty: %s", r.out);
	tl_result_free(&r);
}

/* A new empty database that audsync has not migrated; its conninfo in
 * a static buffer. */
static const char *plain_db(void)
{
	static char conninfo[64];
	static int n;
	char sql[96];

	snprintf(sql, sizeof(sql), "CREATE DATABASE plain_%d_%d", (int)getpid(),
		 ++n);
	tl_sql("dbname=postgres", sql);
	snprintf(conninfo, sizeof(conninfo), "dbname=plain_%d_%d",
		 (int)getpid(), n);
	return conninfo;
}

/* ---- usage ----------------------------------------------------------- */

START_TEST(help_prints_usage_on_stdout_and_exits_0)
{
	tl_result r = RUN(NULL, "--help");

	ASSERT_EXIT(r, 0);
	ck_assert(tl_contains(r.out, "usage: audsync"));
	ck_assert(tl_contains(r.out, "audsync migrate"));
	ck_assert(tl_contains(r.out, "audsync retry-failed"));
	ck_assert_str_eq(r.err, "");
	tl_result_free(&r);

	r = RUN(NULL, "help", "run");
	ASSERT_EXIT(r, 0);
	ck_assert(tl_contains(r.out, "usage: audsync run"));
	ck_assert(tl_contains(r.out, "--dry-run"));
	ck_assert_str_eq(r.err, "");
	tl_result_free(&r);

	r = RUN(NULL, "help");
	ASSERT_EXIT(r, 0);
	ck_assert(tl_contains(r.out, "usage: audsync"));
	tl_result_free(&r);
}
END_TEST

START_TEST(version_prints_the_program_and_its_number)
{
	tl_result r = RUN(NULL, "--version");
	regex_t re;

	ASSERT_EXIT(r, 0);
	ck_assert_int_eq(regcomp(&re, "^audsync [0-9]+\\.[0-9]+\\.[0-9]+\n$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	ck_assert_msg(regexec(&re, r.out, 0, NULL, 0) == 0,
		      "--version printed '%s'", r.out);
	regfree(&re);
	tl_result_free(&r);
}
END_TEST

START_TEST(an_unknown_command_or_option_prints_usage_and_exits_2)
{
	assert_usage_error((const char *const[]){ "frobnicate", NULL });
	assert_usage_error(
		(const char *const[]){ "--frobnicate", "status", NULL });
	assert_usage_error(
		(const char *const[]){ "run", "--frobnicate", NULL });
	assert_usage_error((const char *const[]){ "help", "frobnicate", NULL });
	assert_usage_error((const char *const[]){ NULL });
}
END_TEST

/* Asserts that args exit 2 with stderr exactly want: the error in
 * audsync's own words (not getopt's, nor the binary's path), then the
 * usage of the command it was meant for. */
static void assert_option_error(const char *const *args, const char *want)
{
	tl_result r = run_raw(NULL, args);

	ASSERT_EXIT(r, 2);
	ck_assert_msg(strcmp(r.err, want) == 0, "stderr:\n%s\nexpected:\n%s",
		      r.err, want);
	ck_assert_msg(r.out[0] == '\0', "stdout not empty: %s", r.out);
	tl_result_free(&r);
}

START_TEST(a_bad_option_is_one_line_then_the_commands_usage)
{
	const char *run_usage = "usage: audsync run [--computation KEY] "
				"[--destination NAME] [--all] [--as-of TS] "
				"[--dry-run]\n";
	char want[256];

	snprintf(want, sizeof(want),
		 "audsync run: unknown option --frobnicate\n%s", run_usage);
	assert_option_error(
		(const char *const[]){ "run", "--frobnicate=1", NULL }, want);
	snprintf(want, sizeof(want),
		 "audsync run: --computation needs a value\n%s", run_usage);
	assert_option_error(
		(const char *const[]){ "run", "--computation", NULL }, want);
	snprintf(want, sizeof(want), "audsync run: --all takes no value\n%s",
		 run_usage);
	assert_option_error((const char *const[]){ "--all=yes", "run", NULL },
			    want);
	snprintf(want, sizeof(want), "audsync run: unknown option -z\n%s",
		 run_usage);
	assert_option_error((const char *const[]){ "run", "-hz", NULL }, want);
	/* a second --computation would silently win over the first */
	snprintf(want, sizeof(want),
		 "audsync run: --computation given twice\n%s", run_usage);
	assert_option_error((const char *const[]){ "run", "--computation", "a",
						   "--computation", "b", NULL },
			    want);
	snprintf(want, sizeof(want),
		 "audsync run: --destination given twice\n%s", run_usage);
	assert_option_error((const char *const[]){ "run", "--destination", "a",
						   "--destination=b", NULL },
			    want);
}
END_TEST

START_TEST(an_option_the_command_does_not_take_exits_2)
{
	assert_usage_error(
		(const char *const[]){ "--db", NO_DB, "run", "--json", NULL });
	assert_usage_error((const char *const[]){ "--db", NO_DB, "status",
						  "--all", NULL });
	assert_usage_error((const char *const[]){ "--db", NO_DB, "migrate",
						  "--dry-run", NULL });
}
END_TEST

START_TEST(a_missing_or_extra_argument_exits_2)
{
	assert_usage_error(
		(const char *const[]){ "--db", NO_DB, "retire", NULL });
	assert_usage_error((const char *const[]){ "--db", NO_DB, "retire", "a",
						  "b", NULL });
	assert_usage_error(
		(const char *const[]){ "--db", NO_DB, "resync", NULL });
	assert_usage_error((const char *const[]){ "--db", NO_DB, "--log-level",
						  "loud", "status", NULL });
}
END_TEST

START_TEST(a_bad_log_level_in_the_environment_exits_2)
{
	const char *const env[] = { "AUDSYNC_LOG_LEVEL=loud", NULL };
	tl_result r = RUN(env, "--db", NO_DB, "status");

	ASSERT_EXIT(r, 2);
	ck_assert(tl_contains(r.err, "AUDSYNC_LOG_LEVEL"));
	tl_result_free(&r);
}
END_TEST

/* Every AUDSYNC_* variable is parsed strictly: a bad one stops the
 * command before it does anything, exit 2, with one line naming it (and
 * no usage text: the command line was right). */
START_TEST(a_bad_variable_exits_2_with_one_line_naming_it)
{
	static const char *const bad[][2] = {
		{ "AUDSYNC_CHECK_WARN_AGE", "abc" },
		{ "AUDSYNC_CHECK_WARN_AGE", "-5" },
		{ "AUDSYNC_CHECK_WARN_AGE", "900s" },
		{ "AUDSYNC_CHECK_WARN_AGE", "1abc" },
		{ "AUDSYNC_CHECK_WARN_AGE", "0x10" },
		{ "AUDSYNC_CHECK_WARN_AGE", " 1" },
		{ "AUDSYNC_CHECK_CRIT_AGE", "abc" },
		{ "AUDSYNC_PROGRESS_INTERVAL_MS", "abc" },
		{ "AUDSYNC_PROGRESS_INTERVAL_MS", "0" },
		{ "AUDSYNC_LOG_PRIORITY_PREFIX", "yes" },
		{ "AUDSYNC_LOG_PRIORITY_PREFIX", "2" },
		{ "AUDSYNC_LOG_LEVEL", "loud" },
		{ "AUDSYNC_LOG_FORMAT", "xml" },
		{ "AUDSYNC_TIMEOUT_MS", "30s" },
	};
	char var[96];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const env[] = { var, NULL };
		tl_result r;

		snprintf(var, sizeof(var), "%s=%s", bad[i][0], bad[i][1]);
		r = RUN(env, "--db", NO_DB, "status");
		ck_assert_msg(r.status == 2,
			      "%s: exit %d\nstdout: %s\nstderr: %s", var,
			      r.status, r.out, r.err);
		ck_assert_msg(count_lines(r.err) == 1 &&
				      tl_contains(r.err, bad[i][0]),
			      "%s: not one line naming it: %s", var, r.err);
		ck_assert_msg(r.out[0] == '\0', "%s: printed %s", var, r.out);
		tl_result_free(&r);
	}
}
END_TEST

/* Options that contradict each other, or say nothing, are refused
 * rather than half obeyed; help takes one command, help itself too. */
START_TEST(conflicting_or_empty_options_exit_2)
{
	tl_result r;

	assert_usage_error((const char *const[]){
		"--db", NO_DB, "--metrics-file", "", "run", NULL });
	assert_usage_error(
		(const char *const[]){ "help", "run", "extra", NULL });
	r = RUN(NULL, "help", "help");
	ASSERT_EXIT(r, 0);
	ck_assert_msg(tl_contains(r.out, "usage: audsync help"), "%s", r.out);
	ck_assert_str_eq(r.err, "");
	tl_result_free(&r);
}
END_TEST

/* Asserts that a run of status --check that cannot look says so as a
 * plugin must: one "AUDSYNC UNKNOWN - " line on stdout holding want, exit
 * 3, nothing on stderr. Exit 2 would read as CRITICAL to the monitor. */
static void assert_check_unknown(const char *const *env,
				 const char *const *args, const char *want)
{
	tl_result r = run_raw(env, args);

	ASSERT_EXIT(r, 3);
	ck_assert_msg(count_lines(r.out) == 1 &&
			      strncmp(r.out, "AUDSYNC UNKNOWN - ", 18) == 0 &&
			      tl_contains(r.out, want),
		      "not one UNKNOWN line with %s: %s", want, r.out);
	ck_assert_msg(r.err[0] == '\0', "stderr: %s", r.err);
	tl_result_free(&r);
}

/* status --check's own failures (a bad variable, a bad or conflicting
 * option, wherever --check sits) are UNKNOWN, not CRITICAL. */
START_TEST(status_check_says_unknown_of_its_own_usage_errors)
{
	const char *const warn0[] = { "AUDSYNC_CHECK_WARN_AGE=0", NULL };
	const char *const fmt[] = { "AUDSYNC_LOG_FORMAT=xml", NULL };

	assert_check_unknown(warn0,
			     (const char *const[]){ "--db", NO_DB, "status",
						    "--check", NULL },
			     "AUDSYNC_CHECK_WARN_AGE");
	assert_check_unknown(fmt,
			     (const char *const[]){ "--check", "--db", NO_DB,
						    "status", NULL },
			     "AUDSYNC_LOG_FORMAT");
	assert_check_unknown(NULL,
			     (const char *const[]){ "--db", NO_DB, "status",
						    "--check", "--bogus",
						    NULL },
			     "--bogus");
	assert_check_unknown(NULL,
			     (const char *const[]){ "--db", NO_DB, "status",
						    "--json", "--check", NULL },
			     "--json");
	assert_check_unknown(NULL,
			     (const char *const[]){ "--db", NO_DB, "status",
						    "--check", "--destination",
						    "mp", NULL },
			     "--destination");
	assert_check_unknown(NULL,
			     (const char *const[]){ "--db", NO_DB,
						    "--log-level", "loud",
						    "status", "--check", NULL },
			     "loud");
	assert_check_unknown(NULL,
			     (const char *const[]){ "--db", NO_DB, "status",
						    "--check", "extra", NULL },
			     "unexpected argument");
}
END_TEST

/* An option given with an empty value is a usage error, as audsync(1)
 * says: --db "" must not fall back to libpq's defaults (it migrated the
 * database postgres), nor --log-format= or --log-level= to theirs. */
START_TEST(an_option_with_an_empty_value_exits_2)
{
	static const char *const cases[][4] = {
		{ "--db", "", "migrate",
		  "audsync migrate: --db needs a value" },
		{ "--db=", "migrate", NULL,
		  "audsync migrate: --db needs a value" },
		{ "--log-format=", "status", NULL,
		  "audsync status: --log-format needs a value" },
		{ "--log-level", "", "status",
		  "audsync status: --log-level needs a value" },
	};
	const char *const env[] = { "AUDSYNC_DB", NULL };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tl_result r = run_raw(
			env, (const char *const[]){ cases[i][0], cases[i][1],
						    cases[i][2], NULL });

		ck_assert_msg(r.status == 2 &&
				      strncmp(r.err, cases[i][3],
					      strlen(cases[i][3])) == 0 &&
				      r.err[strlen(cases[i][3])] == '\n',
			      "%s %s: exit %d, stderr: %s", cases[i][0],
			      cases[i][1], r.status, r.err);
		ck_assert_msg(r.out[0] == '\0', "stdout: %s", r.out);
		tl_result_free(&r);
	}
	ck_assert_int_eq(tl_sql_int("dbname=postgres",
				    "SELECT count(*) FROM pg_namespace"
				    " WHERE nspname = 'audsync'"),
			 0);
}
END_TEST

/* ---- choosing the database -------------------------------------------- */

START_TEST(an_unreachable_database_exits_3_with_one_line)
{
	static const char *const cmds[] = { "status", "migrate", "run",
					    "deliver" };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		tl_result r = RUN(NULL, "--db", NO_DB, cmds[i]);

		ASSERT_EXIT(r, 3);
		ck_assert_msg(count_lines(r.err) == 1, "%s: not one line: %s",
			      cmds[i], r.err);
		ck_assert_msg(tl_contains(r.err, "connect"),
			      "%s: no word of the connection: %s", cmds[i],
			      r.err);
		/* logfmt: a value with spaces is quoted, or a parser
		 * splits the message into fields */
		ck_assert_msg(tl_contains(r.err, " msg=\"cannot connect"),
			      "%s: the message is not one quoted value: %s",
			      cmds[i], r.err);
		tl_result_free(&r);
	}
}
END_TEST

/* A password written wrongly into --db (a '%', '@' or '/' not encoded in a
 * URI, a space in key=value) makes libpq quote the text around it: the
 * error still says what is wrong, but never shows the password. */
START_TEST(a_malformed_connection_string_never_shows_its_password)
{
	static const char *const cases[][2] = {
		{ "postgresql://app:pa%ssw0rd@localhost/db", "ssw0rd" },
		{ "postgresql://app:p@ssW0rd@/nonexistent/db", "ssW0rd" },
		{ "postgresql://app:pa/ssw0rd@localhost/db", "pa" },
		{ "password=SUPER SECRET host=/nonexistent", "SECRET" },
		{ "postgresql://app:Hunter2@[::1/db", "Hunter2" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tl_result r = RUN(NULL, "--db", cases[i][0], "status");
		char quoted[64];

		ASSERT_EXIT(r, 3);
		ck_assert_msg(count_lines(r.err) == 1, "%s: not one line: %s",
			      cases[i][0], r.err);
		ck_assert_msg(tl_contains(r.err, "cannot connect"),
			      "%s: does not say what failed: %s", cases[i][0],
			      r.err);
		snprintf(quoted, sizeof(quoted), "\"%s", cases[i][1]);
		ck_assert_msg(!tl_contains(r.err, cases[i][1]) ||
				      (strcmp(cases[i][1], "pa") == 0 &&
				       !tl_contains(r.err, quoted)),
			      "%s: the error shows the password: %s",
			      cases[i][0], r.err);
		tl_result_free(&r);
	}
}
END_TEST

/* A migrated database whose status names a sync of computation key. */
static const char *db_with_sync(const char *key)
{
	const char *db = tl_new_db();
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, use_people) VALUES ('mp', 'stdout:',"
		 " 'test-token', true);"
		 "INSERT INTO audsync.computations (key, name, kind,"
		 " definition_sql) VALUES ('%s', 'x', 'audience',"
		 " 'SELECT profile_id FROM audsync.events WHERE ts < $1"
		 " AND ts >= $2');"
		 "INSERT INTO audsync.syncs (computation_id, destination_id,"
		 " mode) SELECT c.id, d.id, 'identify'"
		 " FROM audsync.computations c, audsync.destinations d",
		 key);
	tl_sql(db, sql);
	return db;
}

START_TEST(audsync_db_names_the_database_when_db_is_not_given)
{
	char env_db[128];
	const char *env[3] = { env_db, NULL, NULL };
	tl_result r;

	snprintf(env_db, sizeof(env_db), "AUDSYNC_DB=%s",
		 db_with_sync("from_audsync_db"));
	/* PGDATABASE (postgres, unmigrated) must lose against it. */
	r = RUN(env, "status");
	ASSERT_EXIT(r, 0);
	ck_assert_msg(tl_contains(r.out, "from_audsync_db"), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

START_TEST(db_overrides_audsync_db)
{
	const char *db = db_with_sync("from_db_option");
	const char *const env[] = { "AUDSYNC_DB=" NO_DB, NULL };
	tl_result r = RUN(env, "--db", db, "status");

	ASSERT_EXIT(r, 0);
	ck_assert_msg(tl_contains(r.out, "from_db_option"), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* AUDSYNC_DB="" is unset, as any empty AUDSYNC_* variable (settings.c):
 * libpq's environment names the database, and no usage error. */
START_TEST(libpq_environment_names_the_database_last)
{
	char pgdatabase[128];
	const char *env[] = { "AUDSYNC_DB=", pgdatabase, NULL };
	const char *db = db_with_sync("from_pgdatabase");
	tl_result r;

	/* db is "dbname=NAME" */
	snprintf(pgdatabase, sizeof(pgdatabase), "PGDATABASE=%s",
		 strchr(db, '=') + 1);
	r = RUN(env, "status");
	ASSERT_EXIT(r, 0);
	ck_assert_msg(tl_contains(r.out, "from_pgdatabase"), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* ---- migrate ---------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens the repository's sql/: under the working directory (make test
 * runs from the top), else next to the binary or one level up (the
 * sanitized build's build-san/audsync). */
static DIR *open_sql_dir(char *dir, size_t len)
{
	const char *slash = strrchr(bin(), '/');
	int blen = slash ? (int)(slash - bin()) : 1;
	const char *base = slash ? bin() : ".";
	DIR *d;

	snprintf(dir, len, "sql");
	d = opendir(dir);
	if (!d) {
		snprintf(dir, len, "%.*s/sql", blen, base);
		d = opendir(dir);
	}
	if (!d) {
		snprintf(dir, len, "%.*s/../sql", blen, base);
		d = opendir(dir);
	}
	return d;
}

/* "1:001_schema.sql,2:..." for the numbered files of sql/, in order;
 * caller frees. */
static char *expected_migrations(void)
{
	char dir[1024], *names[256], *out;
	struct dirent *e;
	size_t n = 0, i, len = 1;
	DIR *d = open_sql_dir(dir, sizeof(dir));

	ck_assert_msg(d != NULL, "cannot find the sql/ directory");
	while ((e = readdir(d)) != NULL && n < 256) {
		size_t l = strlen(e->d_name);

		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && l > 4 &&
		    strcmp(e->d_name + l - 4, ".sql") == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	ck_assert_msg(n > 0, "no migrations in %s", dir);
	qsort(names, n, sizeof(names[0]), by_name);
	for (i = 0; i < n; i++)
		len += strlen(names[i]) + 16;
	out = calloc(1, len);
	for (i = 0; i < n; i++) {
		sprintf(out + strlen(out), "%s%d:%s", i ? "," : "",
			atoi(names[i]), names[i]);
		free(names[i]);
	}
	return out;
}

static const char ledger_sql[] =
	"SELECT string_agg(version || ':' || name, ',' ORDER BY version)"
	" FROM audsync.schema_migrations";

START_TEST(migrate_applies_every_file_of_sql_in_order)
{
	const char *db = plain_db();
	char *want = expected_migrations(), *got;
	tl_result r = tl_audsync(db, NULL, "migrate", NULL);

	ASSERT_EXIT(r, 0);
	got = tl_sql_value(db, ledger_sql);
	ck_assert_str_eq(got, want);
	/* Applied one after the other, in version order. */
	ck_assert_int_eq(tl_sql_int(db,
				    "SELECT count(*) FROM (SELECT"
				    " applied_at < lag(applied_at) OVER"
				    " (ORDER BY version) AS back FROM"
				    " audsync.schema_migrations) x WHERE back"),
			 0);
	free(want);
	free(got);
	tl_result_free(&r);
}
END_TEST

/* The relations of DESIGN.md section 3 and their columns. */
static const char *const contract[][2] = {
	{ "external_ids", "created_at,id_type,id_value,profile_id" },
	{ "events", "event,profile_id,properties,ts" },
	{ "profile_traits", "profile_id,traits,updated_at" },
	{ "destinations", "api_base,id,name,project_id,project_token,region,"
			  "secret_env,settings,use_people" },
	{ "computations", "created_at,definition,definition_sql,enabled,id,"
			  "include_anonymous,key,kind,lookback,name,"
			  "updated_at" },
	{ "syncs", "computation_id,destination_id,enabled,id,id_sync,mode" },
	{ "runs", "as_of,calls,changed,entered,error,exited,finished_at,id,"
		  "kind,members,skipped,started_at,status,sync_id" },
};

START_TEST(migrate_creates_the_tables_of_the_contract)
{
	const char *db = tl_new_db();
	char sql[512], *got;
	size_t i;

	for (i = 0; i < sizeof(contract) / sizeof(contract[0]); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT string_agg(column_name::text, ','"
			 " ORDER BY column_name::text COLLATE \"C\")"
			 " FROM information_schema.columns WHERE"
			 " table_schema = 'audsync' AND table_name = '%s'"
			 " AND column_name::text = ANY (string_to_array('%s',"
			 " ','))",
			 contract[i][0], contract[i][1]);
		got = tl_sql_value(db, sql);
		ck_assert_msg(got && strcmp(got, contract[i][1]) == 0,
			      "audsync.%s has columns %s of %s", contract[i][0],
			      got ? got : "none", contract[i][1]);
		free(got);
	}
	/* The documented defaults. */
	tl_sql(db, "INSERT INTO audsync.destinations (name, project_token)"
		   " VALUES ('d', 't');"
		   "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Order Completed - Last 30 Days',"
		   " 'audience', 'SELECT 1');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d");
	got = tl_sql_value(db, "SELECT region || use_people::text ||"
			       " settings::text || (api_base IS NULL)::text"
			       " FROM audsync.destinations");
	ck_assert_str_eq(got, "usfalse{}true");
	free(got);
	got = tl_sql_value(db, "SELECT key || include_anonymous::text ||"
			       " enabled::text FROM audsync.computations");
	ck_assert_str_eq(got, "order_completed_last_30_daysfalsetrue");
	free(got);
	got = tl_sql_value(db, "SELECT id_sync || enabled::text"
			       " FROM audsync.syncs");
	ck_assert_str_eq(got, "alltrue");
	free(got);
}
END_TEST

START_TEST(a_second_migrate_changes_nothing)
{
	const char *db = tl_new_db();
	const char *q = "SELECT string_agg(version || name || applied_at,"
			" ',' ORDER BY version) FROM audsync.schema_migrations";
	const char *tables = "SELECT count(*) FROM pg_class c JOIN"
			     " pg_namespace n ON n.oid = c.relnamespace"
			     " WHERE n.nspname = 'audsync'";
	char *before = tl_sql_value(db, q), *after;
	long long nrel = tl_sql_int(db, tables);
	tl_result r = tl_audsync(db, NULL, "migrate", NULL);

	ASSERT_EXIT(r, 0);
	after = tl_sql_value(db, q);
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(tl_sql_int(db, tables), nrel);
	free(before);
	free(after);
	tl_result_free(&r);
}
END_TEST

/* Two hosts' timers may both migrate after an upgrade. */
START_TEST(two_migrates_at_once_apply_each_file_once)
{
	const char *db = plain_db();
	char *want = expected_migrations(), *got;
	const char *const args[] = { "migrate", NULL };
	pid_t pid[2];
	int i, st;

	for (i = 0; i < 2; i++) {
		pid[i] = tl_audsync_spawn(db, NULL, args);
		ck_assert_int_gt(pid[i], 0);
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(waitpid(pid[i], &st, 0), pid[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "migrate %d ended with status 0x%x", i, st);
	}
	got = tl_sql_value(db, ledger_sql);
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
}
END_TEST

START_TEST(migrate_leaves_a_foreign_events_table_alone)
{
	const char *db = plain_db();
	tl_result r;

	tl_sql(db, "CREATE SCHEMA audsync;"
		   " CREATE TABLE audsync.events (x int);"
		   " INSERT INTO audsync.events VALUES (42)");
	r = tl_audsync(db, NULL, "migrate", NULL);
	ASSERT_EXIT(r, 3);
	ck_assert_msg(count_lines(r.err) == 1, "not one line: %s", r.err);
	ck_assert_msg(tl_contains(r.err, "events"), "%s", r.err);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" information_schema.tables WHERE"
					" table_schema = 'audsync' AND"
					" table_name = 'external_ids'"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT CASE WHEN to_regclass("
					"'audsync.schema_migrations') IS NULL"
					" THEN 0 ELSE (SELECT count(*) FROM"
					" audsync.schema_migrations) END"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT x FROM audsync.events"), 42);
	tl_result_free(&r);
}
END_TEST

START_TEST(migrate_without_the_right_to_create_says_permission_denied)
{
	const char *db = plain_db();
	char conninfo[128];
	tl_result r;

	tl_sql("dbname=postgres",
	       "DO $$ BEGIN CREATE ROLE weak LOGIN;"
	       " EXCEPTION WHEN duplicate_object THEN NULL; END $$");
	snprintf(conninfo, sizeof(conninfo), "%s user=weak", db);
	r = tl_audsync(conninfo, NULL, "migrate", NULL);
	ASSERT_EXIT(r, 3);
	ck_assert_msg(count_lines(r.err) == 1, "not one line: %s", r.err);
	ck_assert_msg(tl_contains(r.err, "permission denied"), "%s", r.err);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" pg_namespace WHERE nspname ="
					" 'audsync'"),
			 0);
	tl_result_free(&r);
}
END_TEST

/* run, status, deliver and validate on db exit 3 and say to migrate. */
static void assert_commands_say_to_migrate(const char *db)
{
	static const char *const cmds[] = { "run", "status", "deliver",
					    "validate" };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		tl_result r = tl_audsync(db, NULL, cmds[i], NULL);

		ASSERT_EXIT(r, 3);
		ck_assert_msg(tl_contains(r.err, "audsync migrate"), "%s: %s",
			      cmds[i], r.err);
		tl_result_free(&r);
	}
}

START_TEST(commands_on_an_unmigrated_database_say_to_run_migrate)
{
	const char *db = plain_db();

	assert_commands_say_to_migrate(db);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" pg_namespace WHERE nspname ="
					" 'audsync'"),
			 0);
}
END_TEST

/* A schema one migration behind the binary (an upgrade installed, not
 * yet migrated): the commands say to migrate instead of meeting old
 * tables. */
START_TEST(commands_on_a_schema_behind_say_to_run_migrate)
{
	const char *db = tl_new_db();

	tl_sql(db, "DELETE FROM audsync.schema_migrations WHERE version ="
		   " (SELECT max(version) FROM audsync.schema_migrations)");
	assert_commands_say_to_migrate(db);
}
END_TEST

START_TEST(every_command_refuses_a_schema_newer_than_the_binary)
{
	static const char *const cmds[] = { "migrate", "run",	   "status",
					    "deliver", "validate", "daemon" };
	const char *db = tl_new_db();
	char want[96];
	size_t i;
	int next;

	/* one version past the newest this binary knows: the nearest future
	 * a newer audsync leaves behind */
	next = tl_sql_int(db, "SELECT max(version) + 1"
			      " FROM audsync.schema_migrations");
	tl_sql(db, "INSERT INTO audsync.schema_migrations (version, name)"
		   " SELECT max(version) + 1, 'from_the_future.sql'"
		   " FROM audsync.schema_migrations");
	snprintf(want, sizeof(want),
		 "is at version %d, newer than this audsync", next);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		tl_result r = tl_audsync(db, NULL, cmds[i], NULL);

		ASSERT_EXIT(r, 3);
		ck_assert_msg(tl_contains(r.err, want), "%s: %s", cmds[i],
			      r.err);
		tl_result_free(&r);
	}
}
END_TEST

/* ---- with a sync to the fake Mixpanel ---------------------------------- */

static mpctl *fake;
static const char *db;

static void setup(void)
{
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_sql(db,
	       "INSERT INTO audsync.external_ids VALUES"
	       " ('p1', 'user_id', 'u1', now() - interval '3 days'),"
	       " ('p1', 'email', 'a@x.com', now() - interval '2 days'),"
	       " ('p2', 'user_id', 'u2', now() - interval '3 days');"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Order Completed', '{}', now() - interval '5 days'),"
	       " ('p2', 'Order Completed', '{}', now() - interval '6 days');"
	       "INSERT INTO audsync.computations (name, kind, definition_sql,"
	       " lookback) VALUES ('Recent Buyers', 'audience',"
	       " 'SELECT profile_id FROM audsync.events WHERE ts >= $2"
	       " AND ts < $1', '30 days');"
	       "INSERT INTO audsync.syncs (computation_id, destination_id,"
	       " mode) SELECT c.id, d.id, 'identify'"
	       " FROM audsync.computations c, audsync.destinations d");
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* A second computation whose definition does not parse, synced too. */
static void add_broken_sync(void)
{
	tl_sql(db, "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Broken Thing', 'audience',"
		   " 'SELEC profile_id FROM audsync.events');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.key = 'broken_thing'");
}

/* The calls queued for destination name (records), from the outbox. */
static long long queued_for(const char *name)
{
	return tl_sql_intf(db,
			   "SELECT coalesce(sum(o.n), 0) FROM audsync.outbox o"
			   " JOIN audsync.destinations d"
			   " ON d.id = o.destination_id WHERE d.name = '%s'",
			   name);
}

/* A run restricted by --destination or --computation delivers only the
 * queues of the destinations it evaluated for: an operator's run for
 * 'mp' sends none of the calls queued for 'prod'. An unrestricted
 * deliver sends them. */
START_TEST(a_restricted_run_delivers_only_its_destinations_queue)
{
	mpctl *prod;
	tl_result r;
	long long held;

	ck_assert_int_eq(mpctl_start(&prod, NULL), 0);
	tl_add_destination(db, "prod", mpctl_base_url(prod));
	tl_sql(db, "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE d.name = 'prod';"
		   "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Staff', 'audience',"
		   " 'SELECT profile_id FROM audsync.external_ids');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.key = 'staff' AND d.name = 'mp'");
	/* prod refuses the credentials once: its calls stay queued */
	ck_assert_int_eq(mpctl_fault(prod, "{\"mode\":\"401\",\"count\":1}"),
			 0);
	r = tl_audsync(db, NULL, "run", "--computation", "recent_buyers",
		       "--destination", "prod", NULL);
	tl_result_free(&r);
	held = queued_for("prod");
	ck_assert_msg(held > 0, "nothing queued for prod");
	ck_assert_int_eq(mpctl_reset(prod), 0);

	r = tl_audsync(db, NULL, "run", "--destination", "mp", NULL);
	ASSERT_EXIT(r, 0);
	tl_result_free(&r);
	ck_assert_int_eq(queued_for("mp"), 0);
	ck_assert_int_eq(mpctl_counter(prod, "records_received"), 0);
	ck_assert_int_eq(queued_for("prod"), held);

	/* staff is synced to mp only: prod's queue is not its business */
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '3 days')");
	r = tl_audsync(db, NULL, "run", "--computation", "staff", NULL);
	ASSERT_EXIT(r, 0);
	tl_result_free(&r);
	ck_assert_int_eq(queued_for("mp"), 0);
	ck_assert_int_eq(mpctl_counter(prod, "records_received"), 0);
	ck_assert_int_eq(queued_for("prod"), held);

	r = tl_audsync(db, NULL, "deliver", NULL);
	ASSERT_EXIT(r, 0);
	tl_result_free(&r);
	ck_assert_int_eq(queued_for("prod"), 0);
	ck_assert_int_eq(mpctl_counter(prod, "records_received"), held);
	mpctl_stop(prod);
}
END_TEST

START_TEST(as_of_in_the_future_exits_2_and_sends_nothing)
{
	tl_result r = tl_audsync(db, NULL, "run", "--all", "--as-of",
				 "2999-01-01T00:00:00Z", NULL);

	ASSERT_EXIT(r, 2);
	ck_assert(tl_contains(r.err, "future"));
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"),
			 0);
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), 0);
	tl_result_free(&r);
}
END_TEST

/* A --destination that names no destination is a typo: the commands
 * that take one say so and exit 2 (as run does), not do nothing. */
START_TEST(a_destination_that_does_not_exist_exits_2)
{
	static const char *const cmds[][3] = {
		{ "deliver", NULL, NULL },
		{ "retry-failed", NULL, NULL },
		{ "status", "--dead-letters", NULL },
		{ "forward", "--from-table", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		tl_result r =
			cmds[i][1]
				? tl_audsync(db, NULL, cmds[i][0], cmds[i][1],
					     "--destination", "mpx", NULL)
				: tl_audsync(db, NULL, cmds[i][0],
					     "--destination", "mpx", NULL);

		ck_assert_msg(r.status == 2, "%s exited %d: %s", cmds[i][0],
			      r.status, r.err);
		ck_assert_msg(tl_contains(r.err, "no destination is named mpx"),
			      "%s: %s", cmds[i][0], r.err);
		tl_result_free(&r);
	}
}
END_TEST

/* A key or a name that matches nothing is a typo too: explain, retire,
 * status --destination and a forward that cannot tell which destination
 * say so in one line and exit 2, and change nothing. */
START_TEST(a_name_that_matches_nothing_exits_2)
{
	static const char *const cmds[][4] = {
		{ "explain", "nope", NULL, "no computation has the key" },
		{ "retire", "nope", NULL, "no computation has the key" },
		{ "status", "--destination", "nope",
		  "no destination is named" },
		{ "forward", "-", NULL, "say which one with --destination" },
	};
	size_t i;

	tl_add_destination(db, "edge", mpctl_base_url(fake));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		tl_result r = tl_audsync(db, NULL, cmds[i][0], cmds[i][1],
					 cmds[i][2], NULL);

		ck_assert_msg(r.status == 2, "%s %s exited %d: %s", cmds[i][0],
			      cmds[i][1], r.status, r.err);
		ck_assert_msg(tl_contains(r.err, cmds[i][3]), "%s: %s",
			      cmds[i][0], r.err);
		ck_assert_msg(count_lines(r.err) == 1, "%s: not one line: %s",
			      cmds[i][0], r.err);
		ck_assert_msg(r.out[0] == '\0', "%s printed: %s", cmds[i][0],
			      r.out);
		tl_result_free(&r);
	}
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.outbox"),
			 0);
}
END_TEST

/* status --destination NAME shows that destination's syncs only. */
START_TEST(status_destination_shows_that_destination_only)
{
	tl_result r;

	tl_add_destination(db, "edge", mpctl_base_url(fake));
	tl_sql(db, "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'track'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE d.name = 'edge'");
	r = tl_audsync(db, NULL, "status", "--destination", "edge", NULL);
	ASSERT_EXIT(r, 0);
	ck_assert_msg(count_lines(r.out) == 2, "%s", r.out);
	ck_assert_msg(tl_contains(r.out, " edge "), "%s", r.out);
	ck_assert_msg(!tl_contains(r.out, " mp "), "%s", r.out);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "status", "--json", "--destination", "edge",
		       NULL);
	ASSERT_EXIT(r, 0);
	ck_assert_msg(!tl_contains(r.out, "\"mp\""), "%s", r.out);
	ck_assert_msg(tl_contains(r.out, "\"edge\""), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* Asserts every line of text is a JSON object with level and msg. */
static void assert_json_lines(const char *text)
{
	char *copy = strdup(text), *line, *save = NULL;
	int n = 0;

	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line), *v;

		ck_assert_msg(o && json_object_is_type(o, json_type_object),
			      "not a JSON object: %s", line);
		ck_assert_msg(json_object_object_get_ex(o, "level", &v) &&
				      json_object_object_get_ex(o, "msg", &v),
			      "no level or msg: %s", line);
		json_object_put(o);
		n++;
	}
	ck_assert_msg(n > 0, "nothing was logged");
	ck_assert_msg(text[strlen(text) - 1] == '\n', "last line unended");
	free(copy);
}

START_TEST(log_format_json_makes_every_stderr_line_a_json_object)
{
	tl_result r;

	add_broken_sync();
	r = tl_audsync(db, NULL, "--log-format", "json", "--log-level", "debug",
		       "run", "--all", NULL);
	ASSERT_EXIT(r, 1);
	assert_json_lines(r.err);
	ck_assert(tl_contains(r.err, "\"level\":\"error\""));
	ck_assert(tl_contains(r.err, "\"level\":\"info\""));
	tl_result_free(&r);

	r = RUN(NULL, "--log-format", "json", "--db", NO_DB, "status");
	ASSERT_EXIT(r, 3);
	assert_json_lines(r.err);
	tl_result_free(&r);
}
END_TEST

START_TEST(log_level_error_silences_info_lines)
{
	const char *const env[] = { "AUDSYNC_LOG_LEVEL=error", NULL };
	tl_result r;

	r = tl_audsync(db, NULL, "--log-level", "error", "run", "--all", NULL);
	ASSERT_EXIT(r, 0);
	ck_assert_msg(r.err[0] == '\0', "logged: %s", r.err);
	tl_result_free(&r);
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), 3);

	/* The same through the environment, with an error to show. */
	add_broken_sync();
	r = tl_audsync(db, env, "run", "--all", NULL);
	ASSERT_EXIT(r, 1);
	ck_assert_msg(!tl_contains(r.err, "level=info"), "%s", r.err);
	ck_assert_msg(tl_contains(r.err, "level=error"), "%s", r.err);
	tl_result_free(&r);

	/* And the default does log info, so the above means something (a
	 * run that changes something: an unchanged one logs at debug). */
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p3', 'user_id', 'u3', now() - interval '3 days');"
		   "INSERT INTO audsync.events VALUES ('p3', 'Order Completed',"
		   " '{}', now() - interval '1 day')");
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	ck_assert_msg(tl_contains(r.err, "level=info"), "%s", r.err);
	tl_result_free(&r);
}
END_TEST

START_TEST(status_prints_a_header_and_one_line_per_sync)
{
	tl_result r;

	add_broken_sync();
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "status", NULL);
	ASSERT_EXIT(r, 0);
	ck_assert_msg(count_lines(r.out) == 3, "%s", r.out);
	ck_assert_msg(strncmp(r.out, "COMPUTATION", 11) == 0, "%s", r.out);
	ck_assert(tl_contains(r.out, "recent_buyers"));
	ck_assert(tl_contains(r.out, "succeeded"));
	ck_assert(tl_contains(r.out, "broken_thing"));
	ck_assert(tl_contains(r.out, "failed"));
	tl_result_free(&r);
}
END_TEST

/* The error column has a header like every other column, and a failed
 * sync's error starts under it. */
START_TEST(status_heads_the_error_column)
{
	const char *row, *head_end, *col;
	tl_result r;
	size_t at;

	add_broken_sync();
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "status", NULL);
	ASSERT_EXIT(r, 0);
	head_end = strchr(r.out, '\n');
	ck_assert_ptr_nonnull(head_end);
	col = strstr(r.out, "ERROR");
	ck_assert_msg(col && col < head_end && col + 5 == head_end,
		      "no ERROR header last on the first line: %s", r.out);
	at = (size_t)(col - r.out);
	row = strstr(r.out, "\nbroken_thing");
	ck_assert_msg(row != NULL, "%s", r.out);
	row++;
	ck_assert_msg(
		strlen(row) > at && row[at - 1] == ' ' &&
			strncmp(row + at, "computation broken_thing", 24) == 0,
		"the error does not start under ERROR: %s", r.out);
	tl_result_free(&r);
}
END_TEST

/* The offset in line of the first word at or after from that starts with
 * word, or -1: line's columns, found by their text. */
static int column_at(const char *line, const char *word)
{
	const char *p = strstr(line, word);

	return p ? (int)(p - line) : -1;
}

/* A key longer than the column's old 24 characters (the README's own
 * example) and a long destination name keep the table aligned: every
 * column starts, and the last ends, where the header's does. */
START_TEST(status_columns_stay_aligned_with_long_names)
{
	static const char *const cols[][2] = {
		{ "DESTINATION", "mixpanel_eu_production" },
		{ "MODE", "identify" },
		{ "ENABLED", "yes" },
	};
	const char *db = db_with_sync("order_completed_last_30_days");
	char *line[3];
	tl_result r;
	size_t i, k;

	tl_sql(db, "UPDATE audsync.destinations"
		   " SET name = 'mixpanel_eu_production';"
		   "INSERT INTO audsync.computations (key, name, kind,"
		   " definition_sql) VALUES ('vip', 'y', 'audience',"
		   " 'SELECT profile_id FROM audsync.events WHERE ts < $1"
		   " AND ts >= $2');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.key = 'vip'");
	r = tl_audsync(db, NULL, "status", NULL);
	ASSERT_EXIT(r, 0);
	ck_assert_msg(count_lines(r.out) == 3, "%s", r.out);
	line[0] = strtok(r.out, "\n");
	line[1] = strtok(NULL, "\n");
	line[2] = strtok(NULL, "\n");
	for (k = 1; k < 3; k++) {
		/* no error: the row ends where the header's DEAD does */
		ck_assert_msg(strlen(line[k]) ==
				      strlen(line[0]) - strlen(" ERROR"),
			      "the last column ends elsewhere:\n%s\n%s",
			      line[0], line[k]);
		for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
			ck_assert_msg(column_at(line[k], cols[i][1]) ==
					      column_at(line[0], cols[i][0]),
				      "%s not under its header:\n%s\n%s",
				      cols[i][1], line[0], line[k]);
	}
	tl_result_free(&r);
}
END_TEST

START_TEST(status_json_is_one_json_object_per_sync)
{
	json_object *doc, *a, *o, *v;
	tl_result r;

	add_broken_sync();
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	tl_result_free(&r);
	r = tl_audsync(db, NULL, "status", "--json", NULL);
	ASSERT_EXIT(r, 0);
	doc = json_tokener_parse(r.out);
	ck_assert_msg(doc && json_object_object_get_ex(doc, "syncs", &a) &&
			      json_object_is_type(a, json_type_array),
		      "%s", r.out);
	ck_assert_int_eq(json_object_array_length(a), 2);
	o = json_object_array_get_idx(a, 0);
	ck_assert(json_object_object_get_ex(o, "computation", &v));
	ck_assert_str_eq(json_object_get_string(v), "recent_buyers");
	ck_assert(json_object_object_get_ex(o, "status", &v));
	ck_assert_str_eq(json_object_get_string(v), "succeeded");
	ck_assert(json_object_object_get_ex(o, "members", &v));
	ck_assert(json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int(v), 2);
	o = json_object_array_get_idx(a, 1);
	ck_assert(json_object_object_get_ex(o, "error", &v));
	ck_assert(tl_contains(json_object_get_string(v), "SELEC"));
	json_object_put(doc);
	tl_result_free(&r);
}
END_TEST

START_TEST(validate_passes_sound_definitions)
{
	tl_result r = tl_audsync(db, NULL, "validate", NULL);

	ASSERT_EXIT(r, 0);
	ck_assert_msg(!tl_contains(r.out, "problem:"), "%s", r.out);
	tl_result_free(&r);
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), 0);
}
END_TEST

START_TEST(validate_names_the_computation_of_a_broken_definition)
{
	tl_result r;
	const char *p;

	add_broken_sync();
	r = tl_audsync(db, NULL, "validate", NULL);
	ASSERT_EXIT(r, 3);
	p = strstr(r.out, "problem:");
	ck_assert_msg(p != NULL, "no problem line: %s", r.out);
	ck_assert_msg(tl_contains(p, "broken_thing") ||
			      tl_contains(p, "Broken Thing"),
		      "the problem does not name the computation: %s", r.out);
	ck_assert_msg(!tl_contains(r.out, "recent_buyers"),
		      "a sound definition reported: %s", r.out);
	tl_result_free(&r);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"),
			 0);
}
END_TEST

/* A definition's problem is one problem however many destinations its
 * computation is synced to: validate prints it once, and counts it once.
 */
START_TEST(validate_prints_a_trait_column_problem_once)
{
	tl_result r;
	const char *p;

	tl_add_destination(db, "mp2", mpctl_base_url(fake));
	tl_sql(db, "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Clock', 'trait',"
		   " 'SELECT profile_id, 1 AS \"time\", 2 AS tz"
		   " FROM audsync.external_ids');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.key = 'clock'");
	r = tl_audsync(db, NULL, "validate", NULL);
	ASSERT_EXIT(r, 3);
	p = strstr(r.out, "problem: computation clock: column \"time\"");
	ck_assert_msg(p != NULL, "%s", r.out);
	ck_assert_msg(strstr(p + 1, "problem:") == NULL,
		      "the problem is printed twice: %s", r.out);
	ck_assert_msg(tl_contains(r.out, ": 1 problem\n"), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* validate checks every definition, synced or not yet: a computation
 * written before its sync is found before the sync trips over it. */
START_TEST(validate_checks_a_computation_without_a_sync)
{
	tl_result r;

	tl_sql(db, "INSERT INTO audsync.computations (name, kind, definition)"
		   " VALUES ('Typo Rule', 'audience', '{\"performd\": {}}');"
		   "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Typo Sql', 'audience',"
		   " 'SELEC 1')");
	r = tl_audsync(db, NULL, "validate", NULL);
	ASSERT_EXIT(r, 3);
	ck_assert_msg(tl_contains(r.out, "typo_rule"), "%s", r.out);
	ck_assert_msg(tl_contains(r.out, "typo_sql"), "%s", r.out);
	ck_assert_msg(tl_contains(r.out, ": 2 problems"), "%s", r.out);
	ck_assert_msg(!tl_contains(r.out, "recent_buyers"), "%s", r.out);
	tl_result_free(&r);
}
END_TEST

/* An https:// api_base with user:password@ (or a bare token@) is
 * refused as plain http:// is: validate names the destination in one
 * line without the password, its sync fails, the other one runs. */
START_TEST(an_api_base_with_a_password_fails_only_its_destination)
{
	static const char *const bases[] = {
		"https://user:PASSW0RD@api.mixpanel.com",
		"https://PASSW0RD@api.mixpanel.com/",
	};
	size_t i;

	tl_add_destination(db, "leaky", bases[0]);
	tl_sql(db, "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE d.name = 'leaky'");
	for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		tl_result r;
		const char *line;

		tl_sqlf(db,
			"UPDATE audsync.destinations SET api_base = '%s'"
			" WHERE name = 'leaky'",
			bases[i]);
		r = tl_audsync(db, NULL, "validate", NULL);
		ASSERT_EXIT(r, 3);
		line = strstr(r.out, "problem:");
		ck_assert_msg(line && tl_contains(line, "leaky") &&
				      tl_contains(line, "user:password@"),
			      "%s", r.out);
		ck_assert_msg(!tl_contains(r.out, "PASSW0RD") &&
				      !tl_contains(r.err, "PASSW0RD"),
			      "the password shown: %s%s", r.out, r.err);
		tl_result_free(&r);
	}
	{
		tl_result r = tl_audsync(db, NULL, "run", "--all", NULL);

		ASSERT_EXIT(r, 1);
		ck_assert_msg(!tl_contains(r.err, "PASSW0RD"), "%s", r.err);
		tl_result_free(&r);
	}
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), 3);
	ck_assert_int_eq(tl_sql_int(db,
				    "SELECT count(*) FROM audsync.runs r"
				    " JOIN audsync.syncs s ON s.id = r.sync_id"
				    " JOIN audsync.destinations d"
				    " ON d.id = s.destination_id"
				    " WHERE d.name = 'leaky'"
				    " AND r.status = 'failed'"
				    " AND r.error NOT LIKE '%PASSW0RD%'"),
			 1);
}
END_TEST

START_TEST(metrics_file_holds_prometheus_gauges_after_a_run)
{
	const char *dir = getenv("AUDSYNC_TEST_TMPDIR");
	char path[512], *text;
	tl_result r;
	FILE *f;

	snprintf(path, sizeof(path), "%s/metrics-%d.prom", dir ? dir : "/tmp",
		 (int)getpid());
	r = tl_audsync(db, NULL, "--metrics-file", path, "run", "--all", NULL);
	ASSERT_EXIT(r, 0);
	tl_result_free(&r);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s not written", path);
	text = slurp_file(f);
	fclose(f);
	unlink(path);
	ck_assert_msg(tl_contains(text,
				  "audsync_last_run_members{computation="
				  "\"recent_buyers\",destination=\"mp\"} 2\n"),
		      "%s", text);
	ck_assert_msg(tl_contains(text, "# TYPE audsync_last_run_members "
					"gauge\n"),
		      "%s", text);
	free(text);
}
END_TEST

START_TEST(dry_run_prints_the_calls_and_changes_nothing)
{
	char *copy, *line, *save = NULL;
	tl_result r;
	int n = 0;

	r = tl_audsync(db, NULL, "run", "--all", "--dry-run", NULL);
	ASSERT_EXIT(r, 0);
	copy = strdup(r.out);
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line), *v, *rec;

		ck_assert_msg(o != NULL, "not JSON: %s", line);
		ck_assert_msg(json_object_object_get_ex(o, "endpoint", &v),
			      "%s", line);
		ck_assert_str_eq(json_object_get_string(v), "/engage");
		ck_assert_msg(json_object_object_get_ex(o, "record", &rec) &&
				      json_object_object_get_ex(
					      rec, "$distinct_id", &v),
			      "%s", line);
		json_object_put(o);
		n++;
	}
	free(copy);
	tl_result_free(&r);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.snapshot_members"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.outbox"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.sync_state"),
			 0);
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), 0);

	/* The real run that follows is still a first sync, sending what
	 * the dry run showed. */
	r = tl_audsync(db, NULL, "run", "--all", NULL);
	ASSERT_EXIT(r, 0);
	tl_result_free(&r);
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), n);
	ck_assert_int_eq(tl_sql_int(db, "SELECT entered FROM audsync.runs"), 2);
}
END_TEST

/* The sum of the queued=N fields a run logged (0 when none). */
static long long logged_queued(const char *err)
{
	const char *p = err;
	long long n = 0;

	while ((p = strstr(p, "queued=")) != NULL) {
		p += strlen("queued=");
		n += atoll(p);
	}
	return n;
}

/*
 * A request given up after its attempts (here one 503 with one attempt
 * allowed) while other requests succeed: whatever the engine then does
 * with those records, what it reports as queued and its exit status must
 * match what the outbox holds, since operators and timers act on them.
 */
START_TEST(the_queued_count_and_exit_status_match_the_outbox)
{
	const char *const env[] = { "AUDSYNC_MAX_ATTEMPTS=1", NULL };
	long long left;
	tl_result r;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"count\":1}"),
			 0);
	r = tl_audsync(db, env, "run", "--all", NULL);
	left = tl_sql_int(db, "SELECT coalesce(sum(n), 0) FROM audsync.outbox");
	ck_assert_msg(logged_queued(r.err) == left,
		      "the run reports %lld records queued, the outbox holds "
		      "%lld (%lld received by Mixpanel of 3): %s",
		      logged_queued(r.err), left,
		      (long long)mpctl_counter(fake, "updates_applied"), r.err);
	ck_assert_msg((r.status == 0) == (left == 0),
		      "exit %d with %lld records left in the outbox: %s",
		      r.status, left, r.err);
	tl_result_free(&r);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *usage = tcase_create("usage");
	TCase *dbs = tcase_create("database");
	TCase *sync = tcase_create("with a sync");

	tcase_add_test(usage, help_prints_usage_on_stdout_and_exits_0);
	tcase_add_test(usage, version_prints_the_program_and_its_number);
	tcase_add_test(usage,
		       an_unknown_command_or_option_prints_usage_and_exits_2);
	tcase_add_test(usage, a_bad_option_is_one_line_then_the_commands_usage);
	tcase_add_test(usage, an_option_the_command_does_not_take_exits_2);
	tcase_add_test(usage, a_missing_or_extra_argument_exits_2);
	tcase_add_test(usage, a_bad_log_level_in_the_environment_exits_2);
	tcase_add_test(usage, a_bad_variable_exits_2_with_one_line_naming_it);
	tcase_add_test(usage, conflicting_or_empty_options_exit_2);
	tcase_add_test(usage,
		       status_check_says_unknown_of_its_own_usage_errors);
	tcase_add_test(dbs, an_option_with_an_empty_value_exits_2);
	suite_add_tcase(s, usage);

	tcase_set_timeout(dbs, 60);
	tcase_add_test(dbs, an_unreachable_database_exits_3_with_one_line);
	tcase_add_test(dbs,
		       a_malformed_connection_string_never_shows_its_password);
	tcase_add_test(dbs, audsync_db_names_the_database_when_db_is_not_given);
	tcase_add_test(dbs, db_overrides_audsync_db);
	tcase_add_test(dbs, libpq_environment_names_the_database_last);
	tcase_add_test(dbs, migrate_applies_every_file_of_sql_in_order);
	tcase_add_test(dbs, migrate_creates_the_tables_of_the_contract);
	tcase_add_test(dbs, a_second_migrate_changes_nothing);
	tcase_add_test(dbs, two_migrates_at_once_apply_each_file_once);
	tcase_add_test(dbs, migrate_leaves_a_foreign_events_table_alone);
	tcase_add_test(
		dbs,
		migrate_without_the_right_to_create_says_permission_denied);
	tcase_add_test(dbs,
		       commands_on_an_unmigrated_database_say_to_run_migrate);
	tcase_add_test(dbs, commands_on_a_schema_behind_say_to_run_migrate);
	tcase_add_test(dbs,
		       every_command_refuses_a_schema_newer_than_the_binary);
	suite_add_tcase(s, dbs);

	tcase_add_checked_fixture(sync, setup, teardown);
	tcase_set_timeout(sync, 60);
	tcase_add_test(sync, as_of_in_the_future_exits_2_and_sends_nothing);
	tcase_add_test(sync, a_destination_that_does_not_exist_exits_2);
	tcase_add_test(sync, a_name_that_matches_nothing_exits_2);
	tcase_add_test(sync, status_destination_shows_that_destination_only);
	tcase_add_test(sync,
		       log_format_json_makes_every_stderr_line_a_json_object);
	tcase_add_test(sync, log_level_error_silences_info_lines);
	tcase_add_test(sync, status_prints_a_header_and_one_line_per_sync);
	tcase_add_test(dbs, status_columns_stay_aligned_with_long_names);
	tcase_add_test(sync, status_json_is_one_json_object_per_sync);
	tcase_add_test(sync, validate_passes_sound_definitions);
	tcase_add_test(sync,
		       validate_names_the_computation_of_a_broken_definition);
	tcase_add_test(sync, validate_checks_a_computation_without_a_sync);
	tcase_add_test(sync, validate_prints_a_trait_column_problem_once);
	tcase_add_test(sync, status_heads_the_error_column);
	tcase_add_test(sync,
		       an_api_base_with_a_password_fails_only_its_destination);
	tcase_add_test(sync, metrics_file_holds_prometheus_gauges_after_a_run);
	tcase_add_test(sync, dry_run_prints_the_calls_and_changes_nothing);
	tcase_add_test(sync, the_queued_count_and_exit_status_match_the_outbox);
	tcase_add_test(sync,
		       a_restricted_run_delivers_only_its_destinations_queue);
	suite_add_tcase(s, sync);
	return s;
}

int main(void)
{
	return tl_run_suite(cli_suite());
}
