/* check_badinput.c - the bad-input catalogue (DESIGN.md section 8): each
 * row is one bad input, the command that meets it, the exit status and
 * message a user sees; after every row a healthy canary sync must still
 * deliver, and what was queued before it must not be lost. */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static mpctl *fake;
static const char *db;

/* Fast retries; one attempt, so an outage leaves calls queued at once. */
#define RETRY_ENV                                                              \
	"AUDSYNC_RETRY_BASE_MS=10", "AUDSYNC_RETRY_JITTER_MS=5",               \
		"AUDSYNC_MAX_ATTEMPTS=1"

/* A legacy row: written before the database refused it (triggers off,
 * as a row from before migration 010). */
#define LEGACY "SET session_replication_role = replica; "

/* A trait computation with a track sync to the fake, its definition
 * SQL D (dollar-quoted). */
#define TRACK_TRAIT(KEY, D)                                                    \
	"INSERT INTO audsync.computations (key, name, kind, definition_sql)"   \
	" VALUES ('" KEY "', '" KEY "', 'trait', $d$" D "$d$);"                \
	" INSERT INTO audsync.syncs (computation_id, destination_id, mode)"    \
	" SELECT c.id, d.id, 'track' FROM audsync.computations c,"             \
	" audsync.destinations d WHERE c.key = '" KEY "' AND d.name = 'mp';"

/* An audience of everyone in the bad row's own profiles (b1), synced
 * to destination DEST (identify). */
#define BAD_AUDIENCE(KEY, DEST, EXTRA)                                            \
	"INSERT INTO audsync.computations (key, name, kind, definition_sql" EXTRA \
	") VALUES ('" KEY "', '" KEY "', 'audience', 'SELECT profile_id"          \
	" FROM audsync.external_ids WHERE profile_id = ''b1'''"
#define BAD_SYNC(KEY, DEST)                                                    \
	"INSERT INTO audsync.syncs (computation_id, destination_id, mode)"     \
	" SELECT c.id, d.id, 'identify' FROM audsync.computations c,"          \
	" audsync.destinations d WHERE c.key = '" KEY "' AND d.name = '" DEST  \
	"';"
/* Destination NAME like mp, with column = value. */
#define DEST(NAME, SET)                                                        \
	"INSERT INTO audsync.destinations (name, region, api_base,"            \
	" project_token, secret_env, project_id, use_people, settings)"        \
	" SELECT '" NAME "', region, api_base, project_token, secret_env,"     \
	" project_id, true, settings FROM audsync.destinations"                \
	" WHERE name = 'mp'; UPDATE audsync.destinations SET " SET             \
	" WHERE name = '" NAME "';"
#define BAD_PROFILE                                                            \
	"INSERT INTO audsync.external_ids VALUES ('b1', 'user_id', 'bu1');"

typedef struct bad_case {
	const char *what;
	const char *sql;     /* setup, must succeed (@TMP@: scratch dir) */
	const char *refused; /* SQL the database must refuse */
	const char *env[4];
	const char *args[7]; /* the command; none when refused is set */
	int exit;
	const char *fragment; /* '|' alternatives, in the error or output */
	void (*extra)(const char *out, const char *err);
} bad_case;

/* ---- helpers ------------------------------------------------------------ */

/* s with every @TMP@ replaced by the scratch directory (caller frees). */
static char *with_tmp(const char *s)
{
	const char *tmp = getenv("AUDSYNC_TEST_TMPDIR");
	size_t n = 0, tl;
	const char *p;
	char *out;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	tl = strlen(tmp);
	out = malloc(strlen(s) * (tl + 1) + 1);
	ck_assert_ptr_nonnull(out);
	for (p = s; *p;) {
		if (strncmp(p, "@TMP@", 5) == 0) {
			memcpy(out + n, tmp, tl);
			n += tl;
			p += 5;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return out;
}

/* 1 when hay has one of the '|'-separated alternatives (any case). */
static int has_any(const char *hay, const char *alts)
{
	char alt[256];
	const char *p = alts, *bar;

	if (!hay)
		return 0;
	for (;;) {
		size_t n;

		bar = strchr(p, '|');
		n = bar ? (size_t)(bar - p) : strlen(p);
		snprintf(alt, sizeof(alt), "%.*s", (int)n, p);
		if (strcasestr(hay, alt))
			return 1;
		if (!bar)
			return 0;
		p = bar + 1;
	}
}

/* Runs sql, which must fail; returns the error text (caller frees). */
static char *sql_error(const char *sql)
{
	PGconn *c = PQconnectdb(db);
	PGresult *r;
	char *e;

	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR,
		      "the database took: %s", sql);
	e = strdup(PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return e;
}

static tl_result run_env(const char *const *extra, const char *const *args)
{
	const char *env[12];
	size_t n = 0, i;
	static const char *const retry[] = { RETRY_ENV };

	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		env[n++] = retry[i];
	for (i = 0; extra && extra[i] && n < 11; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	return tl_audsync_argv(db, env, args);
}

static void assert_canary(const char *did)
{
	char *v = mpctl_prop(fake, did, "canary");

	ck_assert_msg(v && strcmp(v, "true") == 0,
		      "canary profile %s has canary = %s", did, v ? v : "-");
	free(v);
}

/* ---- the canary ---------------------------------------------------------- */

/* Once for the catalogue: the fake Mixpanel and a migrated template
 * database; each row gets a fresh copy of it and an emptied fake. */
static char template_db[64];

static void setup_once(void)
{
	const char *t;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	t = tl_new_db();
	ck_assert(strncmp(t, "dbname=", 7) == 0);
	snprintf(template_db, sizeof(template_db), "%s", t + 7);
}

static void teardown_once(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* A fresh database copied from the template. */
static const char *copy_db(void)
{
	static char conninfo[96];
	char sql[200];
	int n = (int)getpid(); /* each row runs in a process of its own */

	snprintf(sql, sizeof(sql), "CREATE DATABASE %s_%d TEMPLATE %s",
		 template_db, n, template_db);
	tl_sql("dbname=postgres", sql);
	snprintf(conninfo, sizeof(conninfo), "dbname=%s_%d", template_db, n);
	return conninfo;
}

static void setup(void)
{
	static const char *const run[] = { "run", "--computation", "canary",
					   NULL };
	tl_result r;

	ck_assert_int_eq(mpctl_reset(fake), 0);
	db = copy_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('c1', 'user_id', 'cu1', now() - interval '1 day'),"
		   " ('c2', 'user_id', 'cu2', now() - interval '1 day');"
		   "INSERT INTO audsync.computations (key, name, kind,"
		   " definition_sql) VALUES ('canary', 'Canary', 'audience',"
		   " 'SELECT profile_id FROM audsync.external_ids"
		   " WHERE profile_id LIKE ''c%''');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify' FROM"
		   " audsync.computations c, audsync.destinations d");
	/* Mixpanel is down: the canary's calls stay queued. */
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"rate\":1.0}"),
			 0);
	r = run_env(NULL, run);
	ck_assert_msg(r.status == 1, "canary run: exit %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(tl_sql_int(db, "SELECT coalesce(sum(n), 0)"
					" FROM audsync.outbox"),
			 2);
	ck_assert_int_eq(mpctl_reset(fake), 0);
}

/* After the bad row: a new canary member, a run of the canary alone;
 * the queued calls and the new one all reach Mixpanel. */
static void check_canary(void)
{
	static const char *const run[] = { "run", "--computation", "canary",
					   NULL };
	tl_result r;

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('c3', 'user_id', 'cu3', now() - interval '1 hour')");
	r = run_env(NULL, run);
	ck_assert_msg(r.status == 0,
		      "canary run after the bad row: exit %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	assert_canary("cu1");
	assert_canary("cu2");
	assert_canary("cu3");
	ck_assert_int_eq(tl_sql_int(db, "SELECT coalesce(sum(n), 0)"
					" FROM audsync.outbox o JOIN"
					" audsync.syncs s ON s.id = o.sync_id"
					" JOIN audsync.computations c"
					" ON c.id = s.computation_id"
					" WHERE c.key = 'canary'"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*)"
					" FROM audsync.dead_letters l JOIN"
					" audsync.syncs s ON s.id = l.sync_id"
					" JOIN audsync.computations c"
					" ON c.id = s.computation_id"
					" WHERE c.key = 'canary'"),
			 0);
}

/* ---- extra checks of some rows ------------------------------------------ */

static void no_sink_file(const char *out, const char *err)
{
	char *path = with_tmp("@TMP@/never.txt");
	struct stat st;

	(void)out;
	(void)err;
	ck_assert_msg(stat(path, &st) != 0,
		      "a file: sink the operator did not allow was written");
	free(path);
}

static void sink_file_written(const char *out, const char *err)
{
	char *path = with_tmp("@TMP@/sink/ok.jsonl");
	struct stat st;

	(void)out;
	(void)err;
	ck_assert_msg(stat(path, &st) == 0 && st.st_size > 0,
		      "the allowed file: sink %s was not written", path);
	free(path);
}

/* The file a planted symbolic link points at: a shell start-up file
 * stands for any file the service user may write. */
#define LINK_TARGET_TEXT "# a shell start-up file\n"

static void plant_sink_link(void)
{
	char *link = with_tmp("@TMP@/sink/link.jsonl");
	char *target = with_tmp("@TMP@/sink/profile.sh");
	FILE *f;

	unlink(link);
	f = fopen(target, "w");
	ck_assert_ptr_nonnull(f);
	fputs(LINK_TARGET_TEXT, f);
	fclose(f);
	ck_assert_int_eq(symlink(target, link), 0);
	free(link);
	free(target);
}

static void nothing_written_through_link(const char *out, const char *err)
{
	char *target = with_tmp("@TMP@/sink/profile.sh");
	char *link = with_tmp("@TMP@/sink/link.jsonl");
	char *env[2] = { with_tmp("AUDSYNC_ALLOW_FILE_SINKS=@TMP@/sink"),
			 NULL };
	static const char *const deliver[] = { "deliver", NULL };
	char text[256] = "";
	struct stat st;
	tl_result r;
	FILE *f = fopen(target, "r");
	size_t n;

	(void)out;
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	ck_assert_msg(strcmp(text, LINK_TARGET_TEXT) == 0,
		      "the file: sink wrote through a symbolic link into %s: "
		      "%s",
		      target, text);
	ck_assert_msg(tl_contains(err, "sinkdest"),
		      "the error does not name the destination: %s", err);
	/* The operator removes the link: the calls kept queued go out. */
	ck_assert_int_eq(unlink(link), 0);
	r = run_env((const char *const *)env, deliver);
	ck_assert_msg(r.status == 0, "deliver after the link went: exit %d: %s",
		      r.status, r.err);
	tl_result_free(&r);
	ck_assert_msg(lstat(link, &st) == 0 && S_ISREG(st.st_mode) &&
			      st.st_size > 0,
		      "the kept calls did not reach the file: sink");
	free(target);
	free(link);
	free(env[0]);
}

static void nothing_sent_to_bad(const char *out, const char *err)
{
	char *v = mpctl_prop(fake, "bu1", "bad");

	(void)out;
	(void)err;
	ck_assert_msg(v == NULL, "the bad row's sync reached Mixpanel");
	free(v);
}

static void big_number_kept(const char *out, const char *err)
{
	(void)err;
	ck_assert_msg(
		tl_contains(out, "\"big\": 1208925819614629174706176") ||
			tl_contains(out, "\"big\":1208925819614629174706176"),
		"the 81-bit number lost digits: %s", out);
}

static void deep_value_sent(const char *out, const char *err)
{
	(void)err;
	ck_assert_msg(
		tl_contains(out, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
		"the deep value was not sent: %s", out);
}

static void huge_record_kept_back(const char *out, const char *err)
{
	char *reason = tl_sql_value(db, "SELECT string_agg(reason, ' ')"
					" FROM audsync.dead_letters");

	(void)out;
	(void)err;
	ck_assert_msg(reason && tl_contains(reason, "1 MiB"),
		      "no dead letter says why: %s", reason ? reason : "none");
	free(reason);
	ck_assert_int_eq(mpctl_counter(fake, "records_rejected"), 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.outbox"),
			 0);
}

static void long_id_skipped(const char *out, const char *err)
{
	(void)out;
	(void)err;
	ck_assert_int_eq(tl_sql_int(db, "SELECT r.skipped FROM audsync.runs r"
					" JOIN audsync.syncs s ON s.id ="
					" r.sync_id JOIN audsync.computations"
					" c ON c.id = s.computation_id WHERE"
					" c.key = 'longid'"),
			 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT coalesce(sum(n), 0) FROM"
					" audsync.outbox WHERE sync_id <> 1"),
			 0);
}

static void runs_untouched(const char *out, const char *err)
{
	(void)out;
	(void)err;
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status = 'running'"),
			 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"),
			 2);
}

static void no_raw_escape(const char *out, const char *err)
{
	(void)out;
	ck_assert_msg(!strchr(err, '\x1b') && !strchr(err, '\r'),
		      "a control character reached the log raw");
}

static void pgoptions_kept(const char *out, const char *err)
{
	(void)out;
	(void)err;
	ck_assert_int_eq(tl_sql_int(db, "SELECT r.members FROM audsync.runs r"
					" JOIN audsync.syncs s ON s.id ="
					" r.sync_id JOIN audsync.computations"
					" c ON c.id = s.computation_id WHERE"
					" c.key = 'probe'"),
			 1);
}

static void utf8_sent(const char *out, const char *err)
{
	(void)err;
	ck_assert_msg(tl_contains(out, "caf\xc3\xa9"),
		      "the value is not UTF-8: %s", out);
}

/* A key of 200 bytes: longer than 127, within Mixpanel's 255. */
#define K10  "kkkkkkkkkk"
#define K50  K10 K10 K10 K10 K10
#define K200 K50 K50 K50 K50

static void long_key_whole(const char *out, const char *err)
{
	(void)err;
	ck_assert_msg(tl_contains(out, "\"trait_key\":\"" K200 "\""),
		      "the 200-byte trait key was cut: %s", out);
}

/* ---- the catalogue ------------------------------------------------------- */

#define RUN_ALL                                                                \
	{                                                                      \
		"run", "--all"                                                 \
	}
#define VALIDATE                                                               \
	{                                                                      \
		"validate"                                                     \
	}
#define DRY_TRAIT(KEY)                                                         \
	{                                                                      \
		"run", "--computation", KEY, "--dry-run"                       \
	}

static const bad_case cases[] = {
	/* 2: file: sinks only where the operator allows */
	{ "file: sink outside any allowed directory",
	  DEST("sinkdest", "api_base = 'file:@TMP@/never.txt'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "sinkdest", ) ");" BAD_SYNC(
			  "bad", "sinkdest"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "AUDSYNC_ALLOW_FILE_SINKS",
	  no_sink_file },
	{ "file: sink with a relative path",
	  DEST("sinkdest", "api_base = 'file:sink.txt'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "sinkdest", ) ");" BAD_SYNC(
			  "bad", "sinkdest"),
	  NULL,
	  { "AUDSYNC_ALLOW_FILE_SINKS=/tmp" },
	  RUN_ALL,
	  1,
	  "AUDSYNC_ALLOW_FILE_SINKS",
	  NULL },
	{ "file: sink escaping the allowed directory with ..",
	  DEST("sinkdest", "api_base = 'file:@TMP@/../escaped.txt'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "sinkdest", ) ");" BAD_SYNC(
			  "bad", "sinkdest"),
	  NULL,
	  { "AUDSYNC_ALLOW_FILE_SINKS=@TMP@" },
	  RUN_ALL,
	  1,
	  "AUDSYNC_ALLOW_FILE_SINKS",
	  NULL },
	{ "validate names a file: sink the operator did not allow",
	  DEST("sinkdest", "api_base = 'file:/home/x/.bashrc'"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "sinkdest",
	  NULL },
	{ "file: sink in an allowed directory writes there",
	  "SELECT 1;" DEST("sinkdest", "api_base = 'file:@TMP@/sink/ok.jsonl'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "sinkdest", ) ");" BAD_SYNC(
			  "bad", "sinkdest"),
	  NULL,
	  { "AUDSYNC_ALLOW_FILE_SINKS=/nonexistent:@TMP@/sink" },
	  { "run", "--computation", "bad" },
	  0,
	  "succeeded",
	  sink_file_written },
	{ "file: sink path that is a symbolic link",
	  "SELECT 1;" DEST("sinkdest",
			   "api_base = 'file:@TMP@/sink/link.jsonl'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "sinkdest", ) ");" BAD_SYNC(
			  "bad", "sinkdest"),
	  NULL,
	  { "AUDSYNC_ALLOW_FILE_SINKS=@TMP@/sink" },
	  { "run", "--computation", "bad" },
	  1,
	  "symbolic link",
	  nothing_written_through_link },
	/* 3: secret_env prefix, plain http only to localhost */
	{ "secret_env naming PGPASSWORD",
	  DEST("leaky", "secret_env = 'PGPASSWORD'") BAD_PROFILE BAD_AUDIENCE(
		  "bad", "leaky", ) ");" BAD_SYNC("bad", "leaky"),
	  NULL,
	  { "PGPASSWORD=hunter2" },
	  RUN_ALL,
	  1,
	  "AUDSYNC_SECRET_ENV_PREFIX",
	  nothing_sent_to_bad },
	{ "validate names a secret_env without the prefix",
	  DEST("leaky", "secret_env = 'HOME'"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "HOME",
	  NULL },
	{ "an operator-set prefix allows its variables",
	  DEST("vault", "secret_env = 'MP_S'") BAD_PROFILE BAD_AUDIENCE(
		  "fine", "vault", ) ");" BAD_SYNC("fine", "vault"),
	  NULL,
	  { "AUDSYNC_SECRET_ENV_PREFIX=MP_", "MP_S=s3" },
	  { "run", "--computation", "fine" },
	  0,
	  "succeeded",
	  NULL },
	{ "plain http to a remote host",
	  DEST("clear", "api_base = 'http://example.com'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "clear", ) ");" BAD_SYNC(
			  "bad", "clear"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "AUDSYNC_ALLOW_HTTP_HOSTS",
	  NULL },
	{ "plain http to a host that starts like localhost's address",
	  DEST("clear", "api_base = 'http://127.0.0.1.example.com/'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "clear", ) ");" BAD_SYNC(
			  "bad", "clear"),
	  NULL,
	  { "AUDSYNC_ALLOW_HTTP_HOSTS=example.com" },
	  RUN_ALL,
	  1,
	  "AUDSYNC_ALLOW_HTTP_HOSTS",
	  NULL },
	{ "credentials in an http URL",
	  DEST("clear", "api_base = 'http://u:p@127.0.0.1:9/'"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "user:password",
	  NULL },
	{ "an api_base of an unknown scheme",
	  DEST("odd", "api_base = 'gopher://x'"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "must start with https://",
	  NULL },
	/* 4: one bad row harms only its own sync */
	{ "a lookback of a million years fails only its sync",
	  LEGACY BAD_PROFILE BAD_AUDIENCE(
		  "eon", "mp",
		  ", lookback") ", '1000000 years');" BAD_SYNC("eon", "mp"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "computation eon: lookback",
	  NULL },
	{ "status keeps working beside a million-year lookback",
	  LEGACY BAD_AUDIENCE(
		  "eon", "mp",
		  ", lookback") ", '1000000 years');" BAD_SYNC("eon", "mp"),
	  NULL,
	  { NULL },
	  { "status" },
	  0,
	  "lookback",
	  NULL },
	{ "validate names a million-year lookback",
	  LEGACY BAD_AUDIENCE(
		  "eon", "mp",
		  ", lookback") ", '1000000 years');" BAD_SYNC("eon", "mp"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "computation eon: lookback",
	  NULL },
	{ "a negative lookback fails only its sync",
	  LEGACY BAD_PROFILE BAD_AUDIENCE(
		  "neg", "mp", ", lookback") ", '-7 days');" BAD_SYNC("neg",
								      "mp"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "computation neg: lookback",
	  NULL },
	{ "validate names a negative lookback",
	  LEGACY BAD_AUDIENCE("neg", "mp",
			      ", lookback") ", '-7 days');" BAD_SYNC("neg",
								     "mp"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "computation neg: lookback",
	  NULL },
	{ "a million-year lookback is refused at creation",
	  NULL,
	  BAD_AUDIENCE("eon", "mp", ", lookback") ", '1000000 years')",
	  { NULL },
	  { NULL },
	  0,
	  "lookback",
	  NULL },
	{ "a negative lookback is refused at creation",
	  NULL,
	  BAD_AUDIENCE("neg", "mp", ", lookback") ", '-1 day')",
	  { NULL },
	  { NULL },
	  0,
	  "lookback",
	  NULL },
	{ "a zero lookback is refused on update",
	  NULL,
	  "UPDATE audsync.computations SET lookback = '0'",
	  { NULL },
	  { NULL },
	  0,
	  "lookback",
	  NULL },
	/* 7: reserved and colliding keys */
	{ "the key time is refused at creation",
	  NULL,
	  BAD_AUDIENCE("time", "mp", ) ")",
	  { NULL },
	  { NULL },
	  0,
	  "reserved",
	  NULL },
	{ "the key distinct_id is refused at creation",
	  NULL,
	  BAD_AUDIENCE("distinct_id", "mp", ) ")",
	  { NULL },
	  { NULL },
	  0,
	  "reserved",
	  NULL },
	{ "the key ip is refused at creation",
	  NULL,
	  BAD_AUDIENCE("ip", "mp", ) ")",
	  { NULL },
	  { NULL },
	  0,
	  "reserved",
	  NULL },
	{ "the key token is refused at creation",
	  NULL,
	  BAD_AUDIENCE("token", "mp", ) ")",
	  { NULL },
	  { NULL },
	  0,
	  "reserved",
	  NULL },
	{ "a name giving the key insert_id is refused",
	  NULL,
	  "INSERT INTO audsync.computations (name, kind, definition_sql)"
	  " VALUES ('$insert_id', 'audience', 'SELECT 1')",
	  { NULL },
	  { NULL },
	  0,
	  "reserved",
	  NULL },
	{ "a key starting with mp_ is refused at creation",
	  NULL,
	  BAD_AUDIENCE("mp_lib", "mp", ) ")",
	  { NULL },
	  { NULL },
	  0,
	  "mp_",
	  NULL },
	{ "a key longer than 255 bytes is refused at creation",
	  NULL,
	  "INSERT INTO audsync.computations (name, kind, definition_sql)"
	  " VALUES (repeat('k', 300), 'audience', 'SELECT 1')",
	  { NULL },
	  { NULL },
	  0,
	  "255",
	  NULL },
	{ "a key equal to another computation's is refused",
	  NULL,
	  BAD_AUDIENCE("canary", "mp", ) ")",
	  { NULL },
	  { NULL },
	  0,
	  "duplicate|already exists",
	  NULL },
	{ "a reserved key written before the check fails only its sync",
	  LEGACY BAD_PROFILE BAD_AUDIENCE("distinct_id", "mp", ) ");" BAD_SYNC(
		  "distinct_id", "mp"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "computation distinct_id: the key is "
	  "reserved",
	  NULL },
	{ "validate names a reserved key",
	  LEGACY BAD_AUDIENCE("time", "mp", ) ");" BAD_SYNC("time", "mp"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "computation time: the key is reserved",
	  NULL },
	{ "a trait column named distinct_id fails its sync",
	  BAD_PROFILE TRACK_TRAIT("evil", "SELECT profile_id, 'x' AS"
					  " distinct_id, 1 AS n FROM"
					  " audsync.external_ids"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "distinct_id\\\" cannot be|distinct_id\" cannot be",
	  NULL },
	{ "validate names a trait column named time",
	  TRACK_TRAIT("evil", "SELECT profile_id, now() AS time, 1 AS n FROM"
			      " audsync.external_ids"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "time\\\" cannot be|time\" cannot be",
	  NULL },
	{ "a trait column named $insert_id fails its sync",
	  BAD_PROFILE TRACK_TRAIT("evil", "SELECT profile_id, 'x' AS"
					  " \"$insert_id\", 1 AS n FROM"
					  " audsync.external_ids"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "$insert_id\\\" cannot be|$insert_id\" cannot be",
	  NULL },
	{ "a trait column starting with mp_ fails its sync",
	  BAD_PROFILE TRACK_TRAIT("evil", "SELECT profile_id, 'x' AS mp_lib,"
					  " 1 AS n FROM audsync.external_ids"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "mp_lib\\\" cannot be|mp_lib\" cannot be",
	  NULL },
	{ "a trait column equal to another computation's key",
	  BAD_PROFILE TRACK_TRAIT("evil", "SELECT profile_id, false AS canary,"
					  " 1 AS n FROM audsync.external_ids"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "another computation's key",
	  NULL },
	/* 8: time */
	{ "--as-of 1900",
	  NULL,
	  NULL,
	  { NULL },
	  { "run", "--all", "--as-of", "1900-01-01" },
	  2,
	  "1971",
	  NULL },
	{ "--as-of epoch",
	  NULL,
	  NULL,
	  { NULL },
	  { "run", "--all", "--as-of", "epoch" },
	  2,
	  "1971",
	  NULL },
	{ "--as-of -infinity",
	  NULL,
	  NULL,
	  { NULL },
	  { "run", "--all", "--as-of", "-infinity" },
	  2,
	  "finite",
	  NULL },
	{ "--as-of infinity",
	  NULL,
	  NULL,
	  { NULL },
	  { "run", "--all", "--as-of", "infinity" },
	  2,
	  "finite",
	  NULL },
	{ "--as-of in the future",
	  NULL,
	  NULL,
	  { NULL },
	  { "run", "--all", "--as-of", "2999-01-01" },
	  2,
	  "future",
	  NULL },
	{ "--as-of that is no time",
	  NULL,
	  NULL,
	  { NULL },
	  { "run", "--all", "--as-of", "last tuesday" },
	  2,
	  "--as-of",
	  NULL },
	{ "--as-of before the sync's last successful run",
	  "UPDATE audsync.sync_state SET last_as_of = now() - interval '1 hour'",
	  NULL,
	  { NULL },
	  { "run", "--computation", "canary", "--as-of", "2020-01-01" },
	  2,
	  "resync --computation canary --reset",
	  NULL },
	/* 10: values */
	{ "a track-mode number beyond 64 bits keeps its digits",
	  BAD_PROFILE TRACK_TRAIT("wide", "SELECT profile_id,"
					  " 1208925819614629174706176::numeric"
					  " AS big FROM audsync.external_ids"
					  " WHERE profile_id = 'b1'"),
	  NULL,
	  { NULL },
	  DRY_TRAIT("wide"),
	  0,
	  "dry run",
	  big_number_kept },
	{ "JSON nested 40 deep does not fail the sync",
	  BAD_PROFILE TRACK_TRAIT("deep", "SELECT profile_id, (repeat('[', 40)"
					  " || repeat(']', 40))::jsonb AS d"
					  " FROM audsync.external_ids"
					  " WHERE profile_id = 'b1'"),
	  NULL,
	  { NULL },
	  DRY_TRAIT("deep"),
	  0,
	  "dry run",
	  deep_value_sent },
	/* Mixpanel takes no update over 1 MB, and its /engage may say 1
	 * for a batch with one bad update in it: audsync keeps it back. */
	{ "a trait value over 1 MiB is a dead letter, not sent",
	  BAD_PROFILE
	  "INSERT INTO audsync.computations (key, name, kind, definition_sql)"
	  " VALUES ('huge', 'huge', 'trait', 'SELECT profile_id,"
	  " repeat(''x'', 1100000) AS blob FROM audsync.external_ids"
	  " WHERE profile_id = ''b1''');" BAD_SYNC("huge", "mp"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "rejected",
	  huge_record_kept_back },
	/* 13: smaller ones */
	{ "a 200-byte trait key is not cut at 127",
	  BAD_PROFILE TRACK_TRAIT(K200, "SELECT profile_id, 1 AS value FROM"
					" audsync.external_ids WHERE"
					" profile_id = 'b1'"),
	  NULL,
	  { NULL },
	  DRY_TRAIT(K200),
	  0,
	  "dry run",
	  long_key_whole },
	{ "a 512-byte distinct_id is skipped and counted",
	  "INSERT INTO audsync.external_ids VALUES ('long', 'user_id',"
	  " repeat('x', 512));" BAD_AUDIENCE(
		  "longid",
		  "mp", ) ");"
			  "UPDATE audsync.computations SET definition_sql = 'SELECT ''long''"
			  " AS profile_id' WHERE key = 'longid';" BAD_SYNC(
				  "longid", "mp"),
	  NULL,
	  { NULL },
	  { "run", "--computation", "longid" },
	  0,
	  "skipped",
	  long_id_skipped },
	{ "--computation naming a disabled computation",
	  BAD_AUDIENCE("off", "mp", ", enabled") ", false);" BAD_SYNC("off",
								      "mp"),
	  NULL,
	  { NULL },
	  { "run", "--computation", "off" },
	  2,
	  "disabled",
	  NULL },
	{ "--dry-run writes nothing to runs",
	  "INSERT INTO audsync.runs (sync_id, kind, as_of) VALUES (1,"
	  " 'manual', now() - interval '1 hour')",
	  NULL,
	  { NULL },
	  { "run", "--all", "--dry-run" },
	  0,
	  "dry run",
	  runs_untouched },
	{ "AUDSYNC_TIMEOUT_MS=30s",
	  NULL,
	  NULL,
	  { "AUDSYNC_TIMEOUT_MS=30s" },
	  { "deliver" },
	  2,
	  "AUDSYNC_TIMEOUT_MS",
	  NULL },
	{ "AUDSYNC_TIMEOUT_MS=0",
	  NULL,
	  NULL,
	  { "AUDSYNC_TIMEOUT_MS=0" },
	  { "deliver" },
	  2,
	  "AUDSYNC_TIMEOUT_MS",
	  NULL },
	{ "AUDSYNC_MAX_ATTEMPTS=-1",
	  NULL,
	  NULL,
	  { "AUDSYNC_MAX_ATTEMPTS=-1" },
	  { "status" },
	  2,
	  "AUDSYNC_MAX_ATTEMPTS",
	  NULL },
	{ "AUDSYNC_STATEMENT_TIMEOUT=10 parsecs",
	  NULL,
	  NULL,
	  { "AUDSYNC_STATEMENT_TIMEOUT=10parsecs" },
	  { "run", "--all" },
	  2,
	  "AUDSYNC_STATEMENT_TIMEOUT",
	  NULL },
	{ "a batch_size of 1.5",
	  DEST("frac", "settings = '{\"batch_size\": 1.5}'")
		  BAD_PROFILE BAD_AUDIENCE("bad", "frac", ) ");" BAD_SYNC(
			  "bad", "frac"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "batch_size",
	  nothing_sent_to_bad },
	{ "a concurrency given as text",
	  DEST("frac", "settings = '{\"concurrency\": \"8\"}'"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "concurrency must be a number",
	  NULL },
	{ "a negative max_rate",
	  DEST("frac", "settings = '{\"max_rate\": -1}'"),
	  NULL,
	  { NULL },
	  VALIDATE,
	  3,
	  "max_rate",
	  NULL },
	{ "control characters in a destination name stay out of the log raw",
	  DEST("evil\x1b[2J\r", "secret_env = 'HOME'") BAD_PROFILE BAD_AUDIENCE(
		  "bad", "evil\x1b[2J\r", ) ");" BAD_SYNC("bad",
							  "evil\x1b[2J\r"),
	  NULL,
	  { NULL },
	  RUN_ALL,
	  1,
	  "AUDSYNC_SECRET_ENV_PREFIX",
	  no_raw_escape },
	{ "PGOPTIONS is appended to, not replaced",
	  BAD_PROFILE BAD_AUDIENCE(
		  "probe",
		  "mp", ) ");"
			  "UPDATE audsync.computations SET definition_sql = 'SELECT"
			  " profile_id FROM audsync.external_ids WHERE profile_id = ''b1''"
			  " AND current_setting(''audsync.probe'', true) = ''kept''' WHERE"
			  " key = 'probe';" BAD_SYNC("probe", "mp"),
	  NULL,
	  { "PGOPTIONS=-c audsync.probe=kept" },
	  { "run", "--computation", "probe" },
	  0,
	  "succeeded",
	  pgoptions_kept },
	{ "a LATIN1 client encoding still sends UTF-8",
	  BAD_PROFILE TRACK_TRAIT("word", "SELECT profile_id, 'caf\xc3\xa9'"
					  " AS w FROM audsync.external_ids"
					  " WHERE profile_id = 'b1'"),
	  NULL,
	  { "PGCLIENTENCODING=LATIN1" },
	  DRY_TRAIT("word"),
	  0,
	  "dry run",
	  utf8_sent },
};
#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

START_TEST(a_bad_input_harms_nothing_else)
{
	const bad_case *c = &cases[_i];
	char *env[4] = { NULL }, *sql;
	tl_result r;
	int i;

	if (c->sql) {
		sql = with_tmp(c->sql);
		if (strstr(c->sql, "@TMP@/sink")) {
			char *dir = with_tmp("@TMP@/sink");

			mkdir(dir, 0700);
			free(dir);
		}
		if (strstr(c->sql, "@TMP@/sink/link.jsonl"))
			plant_sink_link();
		tl_sql(db, sql);
		free(sql);
	}
	if (c->refused) {
		char *e = sql_error(c->refused);

		ck_assert_msg(has_any(e, c->fragment),
			      "%s: the refusal does not say %s: %s", c->what,
			      c->fragment, e);
		free(e);
	} else {
		for (i = 0; i < 3 && c->env[i]; i++)
			env[i] = with_tmp(c->env[i]);
		r = run_env((const char *const *)env, c->args);
		ck_assert_msg(r.status == c->exit,
			      "%s: exit %d, expected %d\nstdout: %s\nstderr: "
			      "%s",
			      c->what, r.status, c->exit, r.out, r.err);
		ck_assert_msg(has_any(r.err, c->fragment) ||
				      has_any(r.out, c->fragment),
			      "%s: no message says %s\nstdout: %s\nstderr: %s",
			      c->what, c->fragment, r.out, r.err);
		if (c->extra)
			c->extra(r.out, r.err);
		tl_result_free(&r);
		for (i = 0; i < 3; i++)
			free(env[i]);
	}
	check_canary();
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("catalogue");
	const char *only = getenv("AUDSYNC_BADINPUT_ONLY");
	int i;

	tcase_add_unchecked_fixture(tc, setup_once, teardown_once);
	tcase_add_checked_fixture(tc, setup, NULL);
	/* AUDSYNC_BADINPUT_ONLY=TEXT runs the rows whose name has TEXT. */
	for (i = 0; i < N_CASES; i++)
		if (!only || !*only || strstr(cases[i].what, only))
			tcase_add_loop_test(tc, a_bad_input_harms_nothing_else,
					    i, i + 1);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(badinput_suite());
}
