/* check_crash.c - crash safety and concurrency (DESIGN.md section 8):
 * kill -9, a PostgreSQL restart, and several audsync processes at once
 * leave Mixpanel with every call once and nothing lost */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Audience sizes: the crash test grows to CRASH_MEMBERS + 6 rounds of
 * CRASH_BATCH (22 000 members), so that every round has fresh work to be
 * killed in; the others stay small enough for the file's time budget.
 */
#define CRASH_MEMBERS	4000
#define CRASH_BATCH	3000
#define RESTART_MEMBERS 6000
#define RACE_MEMBERS	20000
#define QUEUE_MEMBERS	6000

/* A slow, flaky Mixpanel, and retries fast enough for a test. */
#define FLAKY "{\"mode\":\"503\",\"rate\":0.3}"
static const char *const fast_retries[] = { "AUDSYNC_RETRY_BASE_MS=20",
					    "AUDSYNC_RETRY_JITTER_MS=5",
					    "AUDSYNC_RETRY_MAX_MS=200", NULL };
/* The same, with attempts enough to get through a 30 % failure rate. */
static const char *const patient[] = { "AUDSYNC_RETRY_BASE_MS=20",
				       "AUDSYNC_RETRY_JITTER_MS=5",
				       "AUDSYNC_RETRY_MAX_MS=200",
				       "AUDSYNC_MAX_ATTEMPTS=12", NULL };

static const char *bin(void)
{
	const char *b = getenv("AUDSYNC_BIN");

	return b && *b ? b : "./audsync";
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A fixed-seed generator, so that a failure reproduces. */
static unsigned long rng = 20240611UL;

static long random_ms(long max)
{
	rng = rng * 6364136223846793005UL + 1442695040888963407UL;
	return (long)((rng >> 33) % (unsigned long)(max + 1));
}

/* A new migrated database; a copy of its conninfo the caller frees
 * (tl_new_db's buffer is reused by the next call). */
static char *new_db(void)
{
	return strdup(tl_new_db());
}

/*
 * The audience "Buyers" (every profile with an order), synced in identify
 * mode to the destination "mp" and, when track is set, in track mode to
 * "mp_track" (the same fake).
 */
static void define_syncs(const char *db, const mpctl *fake, int track)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, use_people) VALUES ('mp', '%s',"
		 " 'test-token', true), ('mp_track', '%s', 'test-token',"
		 " true);"
		 "INSERT INTO audsync.computations (name, kind,"
		 " definition_sql) VALUES ('Buyers', 'audience',"
		 " 'SELECT profile_id FROM audsync.events WHERE ts < $1');"
		 "INSERT INTO audsync.syncs (computation_id, destination_id,"
		 " mode) SELECT c.id, d.id, CASE d.name WHEN 'mp'"
		 " THEN 'identify' ELSE 'track' END"
		 " FROM audsync.computations c, audsync.destinations d"
		 " WHERE d.name = 'mp' OR %s",
		 mpctl_base_url(fake), mpctl_base_url(fake),
		 track ? "true" : "false");
	tl_sql(db, sql);
}

/* Profiles pFIRST..pLAST, each with a user_id, an email and an order,
 * all in the past. */
static void add_members(const char *db, int first, int last)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		 " 'user_id', 'u' || g, now() - interval '3 days'"
		 " FROM generate_series(%d, %d) g;"
		 "INSERT INTO audsync.external_ids SELECT 'p' || g,"
		 " 'email', 'e' || g || '@x.com', now() - interval '2 days'"
		 " FROM generate_series(%d, %d) g;"
		 "INSERT INTO audsync.events SELECT 'p' || g,"
		 " 'Order Completed', '{}', now() - interval '5 days'"
		 " FROM generate_series(%d, %d) g;"
		 "ANALYZE audsync.external_ids; ANALYZE audsync.events",
		 first, last, first, last, first, last);
	tl_sql(db, sql);
}

static void build_audience(const char *db, const mpctl *fake, int members,
			   int track)
{
	define_syncs(db, fake, track);
	add_members(db, 1, members);
}

/* Starts audsync --db db ARGS with env; its stderr goes to the file
 * errpath (NULL: /dev/null), its stdout to /dev/null. */
static pid_t spawn(const char *db, const char *const *env,
		   const char *const *args, const char *errpath)
{
	pid_t pid;

	if (!errpath)
		return tl_audsync_spawn(db, env, args);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[16];
		int null = open("/dev/null", O_WRONLY);
		int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int n;
		size_t i;

		dup2(null, 1);
		dup2(err, 2);
		argv[0] = (char *)bin();
		argv[1] = (char *)"--db";
		argv[2] = (char *)db;
		for (n = 0; args[n] && n < 12; n++)
			argv[n + 3] = (char *)args[n];
		argv[n + 3] = NULL;
		for (i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Waits for pid up to timeout_s; its exit status, or 128 + signal. A
 * process still running then is killed and the test fails. */
static int wait_exit(pid_t pid, int timeout_s)
{
	long until = now_ms() + timeout_s * 1000L;
	int st = 0;
	pid_t r;

	while ((r = waitpid(pid, &st, WNOHANG)) != pid) {
		ck_assert_msg(r == 0 || errno == EINTR, "waitpid(%d): %s",
			      (int)pid, strerror(errno));
		if (now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			ck_abort_msg(
				"audsync (pid %d) still running after %d s",
				(int)pid, timeout_s);
		}
		sleep_ms(20);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Waits until no other session is connected to db. A killed audsync's
 * server process finishes the statement in hand (and keeps its locks)
 * before it notices the client is gone; the next cron tick would come
 * after that.
 */
static void wait_sessions_gone(const char *db)
{
	long until = now_ms() + 60000;

	while (tl_sql_int(db, "SELECT count(*) FROM pg_stat_activity WHERE"
			      " datname = current_database() AND"
			      " pid <> pg_backend_pid()") > 0) {
		ck_assert_msg(now_ms() < until, "sessions of a killed audsync "
						"still connected after 60 s");
		sleep_ms(50);
	}
}

/* Polls the SQL count (or the fake's counter, when sql is NULL) until
 * it exceeds min, or pid exits (left for the caller to reap), or
 * timeout_ms pass. 1 when it exceeded min, -1 when pid exited. */
static int wait_until_above(const char *db, const char *sql, mpctl *fake,
			    const char *counter, long long min, pid_t pid,
			    long timeout_ms)
{
	long until = now_ms() + timeout_ms;

	while (now_ms() < until) {
		long long v = sql ? tl_sql_int(db, sql)
				  : mpctl_counter(fake, counter);
		siginfo_t info = { 0 };

		if (v > min)
			return 1;
		/* WNOWAIT: the caller reaps it, and reads its exit status */
		if (waitid(P_PID, (id_t)pid, &info,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    info.si_pid == pid)
			return -1;
		sleep_ms(10);
	}
	return 0;
}

/* Runs audsync to completion; its result (the caller frees). */
static tl_result run(const char *db, const char *const *env, const char *cmd)
{
	return strcmp(cmd, "run") == 0
		       ? tl_audsync(db, env, "run", "--all", NULL)
		       : tl_audsync(db, env, cmd, NULL);
}

#define ASSERT_OK(r, what)                                                     \
	ck_assert_msg((r).status == 0, "%s exited %d: %s", (what), (r).status, \
		      (r).err)

/* A profile property of the fake's state as JSON text, or "(none)". */
static const char *prop(json_object *profiles, const char *did,
			const char *name)
{
	json_object *p, *v;

	if (!json_object_object_get_ex(profiles, did, &p) ||
	    !json_object_object_get_ex(p, name, &v))
		return "(none)";
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static json_object *profiles_of(json_object *state)
{
	json_object *p = NULL;

	ck_assert(json_object_object_get_ex(state, "profiles", &p));
	return p;
}

/* Asserts got's profiles are want's: same distinct_ids, same audience
 * property and $email on each. */
static void assert_same_profiles(mpctl *got_fake, mpctl *want_fake,
				 const char *key)
{
	json_object *got, *want, *gp, *wp;
	int bad = 0;

	ck_assert_int_eq(mpctl_state(&got, got_fake), 0);
	ck_assert_int_eq(mpctl_state(&want, want_fake), 0);
	gp = profiles_of(got);
	wp = profiles_of(want);
	ck_assert_int_eq(json_object_object_length(gp),
			 json_object_object_length(wp));
	json_object_object_foreach(wp, did, unused)
	{
		char g[256];

		(void)unused;
		snprintf(g, sizeof(g), "%s", prop(gp, did, key));
		if (strcmp(g, prop(wp, did, key)) != 0 ||
		    strcmp(prop(gp, did, "$email"), prop(wp, did, "$email")) !=
			    0) {
			if (bad++ < 5)
				fprintf(stderr,
					"profile %s: %s %s / $email "
					"%s, a clean run gives %s / %s\n",
					did, key, g, prop(gp, did, "$email"),
					prop(wp, did, key),
					prop(wp, did, "$email"));
		}
	}
	json_object_put(got);
	json_object_put(want);
	ck_assert_msg(bad == 0, "%d profiles differ from a clean run's", bad);
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Asserts the fake holds exactly one stored event per distinct_id, and
 * n events in all. */
static void assert_one_event_each(mpctl *fake, int n)
{
	json_object *state, *events, *e, *props, *did;
	const char **ids;
	size_t i, len;
	int twice = 0;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	ck_assert(json_object_object_get_ex(state, "events", &events));
	len = json_object_array_length(events);
	ids = calloc(len + 1, sizeof(*ids));
	for (i = 0; i < len; i++) {
		e = json_object_array_get_idx(events, i);
		ck_assert(json_object_object_get_ex(e, "properties", &props));
		ck_assert(
			json_object_object_get_ex(props, "distinct_id", &did));
		ids[i] = json_object_get_string(did);
	}
	qsort(ids, len, sizeof(*ids), by_string);
	for (i = 1; i < len; i++) {
		if (strcmp(ids[i], ids[i - 1]) == 0 && twice++ < 5)
			fprintf(stderr, "two events stored for %s\n", ids[i]);
	}
	free(ids);
	json_object_put(state);
	ck_assert_msg(twice == 0, "%d distinct_ids have more than one event",
		      twice);
	ck_assert_int_eq((int)len, n);
}

/* What a finished database must look like: no run left running, nothing
 * queued, nothing dead-lettered. */
static void assert_settled(const char *db)
{
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status = 'running'"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.outbox"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.dead_letters"),
			 0);
}

/* Runs audsync run --all until it exits 0 (a few tries), then deliver. */
static void run_until_clean(const char *db)
{
	tl_result r = { 0 };
	int i;

	for (i = 0; i < 4; i++) {
		wait_sessions_gone(db);
		r = run(db, patient, "run");
		if (r.status == 0)
			break;
		fprintf(stderr, "run after the crashes exited %d: %s\n",
			r.status, r.err);
		tl_result_free(&r);
	}
	ASSERT_OK(r, "the run after the crashes");
	tl_result_free(&r);
	r = run(db, patient, "deliver");
	ASSERT_OK(r, "deliver after the crashes");
	tl_result_free(&r);
}

/* A scratch file path for an audsync's stderr. */
static void log_path(char *out, size_t len, const char *name, int i)
{
	const char *dir = getenv("AUDSYNC_TEST_TMPDIR");

	snprintf(out, len, "%s/%s-%d-%d.log", dir ? dir : "/tmp", name,
		 (int)getpid(), i);
}

/* The whole of a log file as a new string ("" when missing). */
static char *read_log(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 4096, n;
	char *s = malloc(cap);

	while (f && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 1024) {
			cap *= 2;
			s = realloc(s, cap);
		}
	}
	s[len] = '\0';
	if (f)
		fclose(f);
	return s;
}

/*
 * Round i of the crash test brings new work: CRASH_BATCH new members, and
 * for every 50th of the first members a newer email (its address of
 * record from now on). Only additions, so that a single clean run over
 * the final data gives what Mixpanel must end up holding.
 */
static void grow_by(const char *db, int round, int members, int batch)
{
	char sql[512];
	int first = members + round * batch + 1;

	add_members(db, first, first + batch - 1);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.external_ids SELECT 'p' || g, 'email',"
		 " 'new%d_' || g || '@x.com', now() FROM generate_series(1,"
		 " %d) g WHERE g %% 50 = %d",
		 round, members, round % 50);
	tl_sql(db, sql);
}

static void grow(const char *db, int round)
{
	grow_by(db, round, CRASH_MEMBERS, CRASH_BATCH);
}

/* The reference: the final data of the crash test, one clean run into
 * a fake of its own. */
static mpctl *clean_reference(int rounds)
{
	mpctl *ref;
	char *db;
	tl_result r;
	int i;

	ck_assert_int_eq(mpctl_start(&ref, NULL), 0);
	db = new_db();
	build_audience(db, ref, CRASH_MEMBERS, 1);
	for (i = 0; i < rounds; i++)
		grow(db, i);
	r = run(db, NULL, "run");
	ASSERT_OK(r, "the clean run");
	tl_result_free(&r);
	assert_settled(db);
	free(db);
	return ref;
}

/* How one crash round picks its moment. */
enum kill_when { KILL_EVALUATING, KILL_DELIVERING, KILL_RANDOM };

static const char *const when_names[] = { "evaluating", "delivering", "start" };

/* Starts audsync run --all, kills it with SIGKILL at the moment when
 * picks (plus a random delay), and reaps it. */
static void crash_once(const char *db, mpctl *fake, enum kill_when when,
		       int round)
{
	static const char *const args[] = { "run", "--all", NULL };
	long long sent = mpctl_counter(fake, "records_received");
	long delay = random_ms(when == KILL_RANDOM ? 1500 : 150);
	char errpath[512], *log;
	pid_t pid;
	int hit = 1, st;

	log_path(errpath, sizeof(errpath), "crash", round);
	wait_sessions_gone(db);
	pid = spawn(db, fast_retries, args, errpath);
	if (when == KILL_EVALUATING)
		hit = wait_until_above(db,
				       "SELECT count(*) FROM audsync.runs"
				       " WHERE status = 'running'",
				       NULL, NULL, 0, pid, 30000);
	else if (when == KILL_DELIVERING)
		hit = wait_until_above(db, NULL, fake, "records_received", sent,
				       pid, 60000);
	sleep_ms(delay);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		fprintf(stderr, "crash %d: %s + %ld ms: killed\n", round,
			when_names[when], delay);
	else
		fprintf(stderr,
			"crash %d: %s + %ld ms: it had exited %d "
			"already\n",
			round, when_names[when], delay, WEXITSTATUS(st));
	log = read_log(errpath);
	unlink(errpath);
	ck_assert_msg(hit == 1, "crash %d: never saw the run %s: %s", round,
		      when_names[when], log);
	free(log);
}

START_TEST(kill_9_at_any_moment_loses_and_doubles_nothing)
{
	static const enum kill_when plan[] = {
		KILL_EVALUATING, KILL_DELIVERING, KILL_RANDOM,
		KILL_DELIVERING, KILL_RANDOM,	  KILL_EVALUATING
	};
	const int rounds = (int)(sizeof(plan) / sizeof(plan[0]));
	mpctl *fake, *ref = clean_reference(rounds);
	char *db = new_db();
	int i;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	build_audience(db, fake, CRASH_MEMBERS, 1);
	ck_assert_int_eq(mpctl_fault(fake, FLAKY), 0);
	for (i = 0; i < rounds; i++) {
		if (i > 0)
			grow(db, i - 1);
		crash_once(db, fake, plan[i], i);
	}
	grow(db, rounds - 1);
	/* The fake keeps its flaky rule (a reset would drop what the
	 * crashed runs delivered): the runs that follow retry more. */
	run_until_clean(db);

	assert_settled(db);
	ck_assert_int_gt(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status = 'failed'"),
			 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status = 'failed' AND error NOT"
					" LIKE '%interrupted%'"),
			 0);
	assert_same_profiles(fake, ref, "buyers");
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"),
			 mpctl_counter(ref, "events_stored"));
	assert_one_event_each(fake, CRASH_MEMBERS + rounds * CRASH_BATCH);
	fprintf(stderr, "crashes: the fake dropped %lld re-sent events\n",
		(long long)mpctl_counter(fake, "duplicates"));
	mpctl_stop(fake);
	mpctl_stop(ref);
	free(db);
}
END_TEST

/* Asserts the fake holds members profiles u1..uN, each in the audience
 * with its email of record. */
static void assert_members_set(mpctl *fake, int members)
{
	json_object *state, *profiles;
	char did[32], email[64];
	int g, bad = 0;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	profiles = profiles_of(state);
	ck_assert_int_eq(json_object_object_length(profiles), members);
	for (g = 1; g <= members; g++) {
		snprintf(did, sizeof(did), "u%d", g);
		snprintf(email, sizeof(email), "\"e%d@x.com\"", g);
		if (strcmp(prop(profiles, did, "buyers"), "true") != 0 ||
		    strcmp(prop(profiles, did, "$email"), email) != 0) {
			if (bad++ < 5)
				fprintf(stderr,
					"profile %s: buyers %s, $email"
					" %s\n",
					did, prop(profiles, did, "buyers"),
					prop(profiles, did, "$email"));
		}
	}
	json_object_put(state);
	ck_assert_msg(bad == 0, "%d profiles are wrong", bad);
}

START_TEST(a_postgresql_restart_mid_run_loses_nothing)
{
	static const char *const args[] = { "run", "--all", NULL };
	const char *pgsh = getenv("AUDSYNC_TEST_PGSH");
	const char *pgdir = getenv("AUDSYNC_TEST_PGDIR");
	char *db = new_db(), errpath[512], cmd[2048], *log;
	mpctl *fake;
	pid_t pid;
	int st;

	ck_assert_msg(pgsh && pgdir,
		      "AUDSYNC_TEST_PGSH and "
		      "AUDSYNC_TEST_PGDIR are not set: run tests/run-tests.sh");
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	build_audience(db, fake, RESTART_MEMBERS, 1);
	/* Slow answers keep the run delivering while the server restarts. */
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"slow\","
					   "\"rate\":0.3,\"slow_ms\":400}"),
			 0);
	log_path(errpath, sizeof(errpath), "restart", 0);
	pid = spawn(db, fast_retries, args, errpath);
	ck_assert_msg(wait_until_above(NULL, NULL, fake, "records_received", 0,
				       pid, 60000) == 1,
		      "the run never started delivering");
	snprintf(cmd, sizeof(cmd), "sh '%s' restart '%s' >/dev/null 2>&1", pgsh,
		 pgdir);
	ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0,
		      "the run ended before the restart: nothing was tested");
	ck_assert_int_eq(system(cmd), 0);
	st = wait_exit(pid, 120);
	log = read_log(errpath);
	fprintf(stderr, "the run cut off by the restart exited %d\n", st);
	ck_assert_msg(st == 0 || st == 1 || st == 3,
		      "the run cut off by the restart exited %d: %s", st, log);
	free(log);
	unlink(errpath);

	run_until_clean(db);
	assert_settled(db);
	assert_members_set(fake, RESTART_MEMBERS);
	assert_one_event_each(fake, RESTART_MEMBERS);
	mpctl_stop(fake);
	free(db);
}
END_TEST

START_TEST(two_runs_at_once_send_each_record_once)
{
	static const char *const args[] = { "run", "--all", NULL };
	char *db = new_db(), errpath[2][512], *log[2];
	mpctl *fake;
	pid_t pid[2];
	int i, st[2], skipped = 0;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	build_audience(db, fake, RACE_MEMBERS, 0);
	for (i = 0; i < 2; i++) {
		log_path(errpath[i], sizeof(errpath[i]), "race", i);
		pid[i] = spawn(db, NULL, args, errpath[i]);
	}
	for (i = 0; i < 2; i++) {
		st[i] = wait_exit(pid[i], 180);
		log[i] = read_log(errpath[i]);
		unlink(errpath[i]);
		skipped += tl_contains(log[i], "another process is evaluating");
	}
	fprintf(stderr, "two runs: %d skipped the sync\n", skipped);
	/* One target per identifier: user_id and email. */
	ck_assert_int_eq(mpctl_counter(fake, "records_received"),
			 2 * RACE_MEMBERS);
	ck_assert_int_eq(mpctl_counter(fake, "updates_applied"),
			 2 * RACE_MEMBERS);
	ck_assert_int_eq(tl_sql_int(db, "SELECT coalesce(sum(calls), 0)"
					" FROM audsync.runs"),
			 2 * RACE_MEMBERS);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE entered > 0"),
			 1);
	assert_settled(db);
	assert_members_set(fake, RACE_MEMBERS);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(st[i] == 0,
			      "run %d exited %d although the two "
			      "sent everything once between them: %s",
			      i, st[i], log[i]);
		free(log[i]);
	}
	mpctl_stop(fake);
	free(db);
}
END_TEST

START_TEST(two_delivers_at_once_send_each_queued_record_once)
{
	static const char *const args[] = { "deliver", NULL };
	static const char *const one_try[] = { "AUDSYNC_MAX_ATTEMPTS=1", NULL };
	char *db = new_db(), errpath[2][512], *log[2];
	long long queued;
	mpctl *fake;
	tl_result r;
	pid_t pid[2];
	int i, st[2];

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	define_syncs(db, fake, 1);
	/* Mixpanel down: each run queues its calls and gives up. Three
	 * runs make three pages a lane, more than one delivery round. */
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\","
					   "\"rate\":1.0}"),
			 0);
	for (i = 0; i < 3; i++) {
		add_members(db, i * QUEUE_MEMBERS / 3 + 1,
			    (i + 1) * QUEUE_MEMBERS / 3);
		r = tl_audsync(db, one_try, "run", "--all", NULL);
		ck_assert_msg(r.status == 1,
			      "run against a Mixpanel that is "
			      "down exited %d: %s",
			      r.status, r.err);
		tl_result_free(&r);
	}
	queued = tl_sql_int(db, "SELECT sum(n) FROM audsync.outbox");
	/* identify: user_id and email targets; track: one event each. */
	ck_assert_int_eq(queued, 3 * QUEUE_MEMBERS);
	ck_assert_int_eq(mpctl_reset(fake), 0);

	for (i = 0; i < 2; i++) {
		log_path(errpath[i], sizeof(errpath[i]), "deliver", i);
		pid[i] = spawn(db, NULL, args, errpath[i]);
	}
	for (i = 0; i < 2; i++) {
		st[i] = wait_exit(pid[i], 120);
		log[i] = read_log(errpath[i]);
		unlink(errpath[i]);
	}
	ck_assert_int_eq(mpctl_counter(fake, "records_received"), queued);
	ck_assert_int_eq(mpctl_counter(fake, "duplicates"), 0);
	ck_assert_int_eq(mpctl_counter(fake, "updates_applied"),
			 2 * QUEUE_MEMBERS);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), QUEUE_MEMBERS);
	assert_settled(db);
	assert_members_set(fake, QUEUE_MEMBERS);
	/* Sharing the work is no failure: a timer must not see one. */
	for (i = 0; i < 2; i++) {
		ck_assert_msg(st[i] == 0,
			      "deliver %d exited %d although the "
			      "two delivered everything once between them: %s",
			      i, st[i], log[i]);
		free(log[i]);
	}
	mpctl_stop(fake);
	free(db);
}
END_TEST

/* One computation whose definition takes a while, synced to "mp". */
static void define_slow_sync(const char *db, const mpctl *fake, double seconds)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, use_people) VALUES ('mp', '%s',"
		 " 'test-token', true);"
		 "INSERT INTO audsync.computations (name, kind,"
		 " definition_sql) VALUES ('Slow', 'audience',"
		 " 'SELECT profile_id FROM audsync.events, pg_sleep(%g)"
		 " WHERE ts < $1');"
		 "INSERT INTO audsync.syncs (computation_id, destination_id,"
		 " mode) SELECT c.id, d.id, 'identify'"
		 " FROM audsync.computations c, audsync.destinations d",
		 mpctl_base_url(fake), seconds);
	tl_sql(db, sql);
	add_members(db, 1, 10);
}

/*
 * Two databases on one server (production and staging, say) each have a
 * sync with id 1. A run crashed in one of them must be marked failed at
 * the next start there, whatever the other database's audsync is doing.
 */
START_TEST(a_crashed_run_is_failed_while_another_db_syncs)
{
	static const char *const args[] = { "run", "--all", NULL };
	static const char *running = "SELECT count(*) FROM audsync.runs"
				     " WHERE status = 'running'";
	char *mine = new_db(), *other = new_db();
	mpctl *fake;
	tl_result r;
	pid_t pid, busy;
	int st;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	define_slow_sync(mine, fake, 1);
	define_slow_sync(other, fake, 6);
	ck_assert_int_eq(tl_sql_int(mine, "SELECT id FROM audsync.syncs"),
			 tl_sql_int(other, "SELECT id FROM audsync.syncs"));

	/* A run in mine dies while evaluating. */
	pid = spawn(mine, NULL, args, NULL);
	ck_assert_int_eq(
		wait_until_above(mine, running, NULL, NULL, 0, pid, 30000), 1);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	wait_sessions_gone(mine);
	tl_sql(mine, "UPDATE audsync.computations SET definition_sql ="
		     " 'SELECT profile_id FROM audsync.events WHERE ts < $1'");

	/* The other database's audsync is evaluating its sync 1... */
	busy = spawn(other, NULL, args, NULL);
	ck_assert_int_eq(
		wait_until_above(other, running, NULL, NULL, 0, busy, 30000),
		1);
	/* ...when mine runs again. */
	r = tl_audsync(mine, NULL, "run", "--all", NULL);
	ASSERT_OK(r, "the run after the crash");
	tl_result_free(&r);
	ck_assert_int_eq(tl_sql_int(other, running), 1);
	ck_assert_msg(tl_sql_int(mine, running) == 0,
		      "the crashed run is still 'running' after the next "
		      "run");
	ck_assert_int_eq(tl_sql_int(mine,
				    "SELECT count(*) FROM audsync.runs"
				    " WHERE status = 'failed' AND error LIKE"
				    " '%interrupted%'"),
			 1);
	ck_assert_int_eq(wait_exit(busy, 60), 0);
	mpctl_stop(fake);
	free(mine);
	free(other);
}
END_TEST

/* ---- chaos --------------------------------------------------------- */

/*
 * The chaos test: audsync killed (kill -9) at random moments of run,
 * deliver, resync, retire and retry-failed, with about a quarter of
 * Mixpanel's answers failing (503, dropped connections, and /import
 * records refused, which retry-failed sends again) and one PostgreSQL
 * restart. AUDSYNC_CHAOS_POINTS (20; `make chaos`: 200) and
 * AUDSYNC_CHAOS_SEED (default: the time; printed) choose the points.
 * Mixpanel must end up holding what a clean run over the final data
 * gives: nothing lost, nothing doubled.
 */
#define CHAOS_MEMBERS	 600
#define CHAOS_BATCH	 100
#define CHAOS_GROW_EVERY 5

/* About a quarter of the requests fail, each rule on what the ones
 * before it let through. */
static const struct chaos_fault {
	const char *mode;
	const char *rate;
} chaos_faults[] = {
	{ "503", "0.15" },
	{ "drop", "0.05" },
	{ "400-partial", "0.07" },
};

/* What a chaos point runs, and how often: the weights add up to 20. */
static const struct chaos_cmd {
	const char *args[4];
	int weight;
} chaos_cmds[] = {
	{ { "run", "--all", NULL }, 7 },
	{ { "deliver", NULL }, 4 },
	{ { "resync", "--computation", "buyers", NULL }, 3 },
	{ { "retire", "even_buyers", "--unset", NULL }, 2 },
	{ { "retry-failed", NULL }, 4 },
};

/* "Buyers" to mp (identify) and mp_track (track), and "Even Buyers" (a
 * subset) to mp, which the test retires with --unset. */
static void chaos_data(const char *db, const mpctl *fake, int rounds)
{
	int i;

	build_audience(db, fake, CHAOS_MEMBERS, 1);
	tl_sql(db, "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql) VALUES ('Even Buyers', 'audience',"
		   " 'SELECT profile_id FROM audsync.events WHERE ts < $1"
		   " AND substr(profile_id, 2)::int % 2 = 0');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.key = 'even_buyers' AND d.name = 'mp'");
	for (i = 0; i < rounds; i++)
		grow_by(db, i, CHAOS_MEMBERS, CHAOS_BATCH);
}

static const struct chaos_cmd *chaos_pick(void)
{
	long r = random_ms(19);
	size_t i;

	for (i = 0; r >= chaos_cmds[i].weight; i++)
		r -= chaos_cmds[i].weight;
	return &chaos_cmds[i];
}

/* Restarts the tests' PostgreSQL while pid works, then reaps pid. */
static int restart_under(pid_t pid)
{
	const char *pgsh = getenv("AUDSYNC_TEST_PGSH");
	const char *pgdir = getenv("AUDSYNC_TEST_PGDIR");
	char cmd[2048];

	ck_assert_msg(pgsh && pgdir, "AUDSYNC_TEST_PGSH and AUDSYNC_TEST_PGDIR"
				     " are not set: run tests/run-tests.sh");
	snprintf(cmd, sizeof(cmd), "sh '%s' restart '%s' >/dev/null 2>&1", pgsh,
		 pgdir);
	ck_assert_int_eq(system(cmd), 0);
	return wait_exit(pid, 120);
}

/* Point i: one command, killed at a random moment: soon after its start,
 * or once Mixpanel is receiving what it sends (or cut off by the
 * PostgreSQL restart when restart is set). */
static void chaos_point(const char *db, mpctl *fake, int i, int restart)
{
	const struct chaos_cmd *c = chaos_pick();
	long long sent = mpctl_counter(fake, "records_received");
	int sending = random_ms(2) > 0;
	long delay = random_ms(sending ? 200 : 700);
	char errpath[512];
	pid_t pid;
	int st, hit = 0;

	log_path(errpath, sizeof(errpath), "chaos", i);
	wait_sessions_gone(db);
	pid = spawn(db, fast_retries, c->args, errpath);
	if (sending)
		hit = wait_until_above(NULL, NULL, fake, "records_received",
				       sent, pid, 30000) == 1;
	sleep_ms(delay);
	if (restart) {
		st = restart_under(pid);
		fprintf(stderr,
			"chaos %d: %s, PostgreSQL restarted %s+ %ld ms:"
			" exited %d\n",
			i, c->args[0], hit ? "once sending " : "", delay, st);
		ck_assert_msg(st == 0 || st == 1 || st == 3,
			      "%s cut off by the restart exited %d", c->args[0],
			      st);
	} else {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fprintf(stderr, "chaos %d: %s %s+ %ld ms: %s\n", i, c->args[0],
			hit ? "once sending " : "", delay,
			WIFSIGNALED(st) ? "killed" : "had exited");
	}
	unlink(errpath);
}

/* After the chaos, what an operator does: run, retire, retry what was
 * refused, deliver, until nothing is left (the faults stay). */
static void chaos_settle(const char *db)
{
	static const char *const steps[][4] = {
		{ "run", "--all", NULL },
		{ "retire", "even_buyers", "--unset", NULL },
		{ "retry-failed", NULL },
		{ "deliver", NULL },
	};
	tl_result r;
	size_t k;
	int i;

	for (i = 0; i < 10; i++) {
		for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			wait_sessions_gone(db);
			r = tl_audsync_argv(db, patient, steps[k]);
			ck_assert_msg(r.status == 0 || r.status == 1,
				      "%s after the chaos exited %d: %s",
				      steps[k][0], r.status, r.err);
			tl_result_free(&r);
		}
		if (tl_sql_int(db, "SELECT (SELECT count(*) FROM"
				   " audsync.outbox) + (SELECT count(*) FROM"
				   " audsync.dead_letters)") == 0)
			return;
	}
}

static unsigned long chaos_seed(void)
{
	const char *s = getenv("AUDSYNC_CHAOS_SEED");

	return s && *s ? strtoul(s, NULL, 10) : (unsigned long)time(NULL);
}

START_TEST(chaos_kill_9_restart_and_faults_lose_and_double_nothing)
{
	const char *pts = getenv("AUDSYNC_CHAOS_POINTS");
	int points = pts && atoi(pts) > 0 ? atoi(pts) : 20;
	int rounds = points / CHAOS_GROW_EVERY, restart_at, i;
	unsigned long seed = chaos_seed();
	char *db = new_db(), rule[128];
	mpctl *fake, *ref;
	tl_result r;
	size_t k;

	rng = seed;
	restart_at = (int)random_ms(points - 1);
	fprintf(stderr,
		"chaos: seed %lu, %d points, PostgreSQL restart at point %d"
		" (AUDSYNC_CHAOS_SEED=%lu reproduces the choices)\n",
		seed, points, restart_at, seed);
	/* the reference: the final data, one clean run, then the retire */
	ck_assert_int_eq(mpctl_start(&ref, NULL), 0);
	{
		char *rdb = new_db();

		chaos_data(rdb, ref, rounds);
		r = run(rdb, NULL, "run");
		ASSERT_OK(r, "the clean run");
		tl_result_free(&r);
		r = tl_audsync(rdb, NULL, "retire", "even_buyers", "--unset",
			       NULL);
		ASSERT_OK(r, "the clean retire");
		tl_result_free(&r);
		assert_settled(rdb);
		free(rdb);
	}

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	chaos_data(db, fake, 0);
	for (k = 0; k < sizeof(chaos_faults) / sizeof(chaos_faults[0]); k++) {
		snprintf(rule, sizeof(rule),
			 "{\"mode\":\"%s\",\"rate\":%s,\"seed\":%lu}",
			 chaos_faults[k].mode, chaos_faults[k].rate, seed + k);
		ck_assert_int_eq(mpctl_fault(fake, rule), 0);
	}
	for (i = 0; i < points; i++) {
		if ((i + 1) % CHAOS_GROW_EVERY == 0) /* rounds in all */
			grow_by(db, (i + 1) / CHAOS_GROW_EVERY - 1,
				CHAOS_MEMBERS, CHAOS_BATCH);
		chaos_point(db, fake, i, i == restart_at);
	}
	chaos_settle(db);

	assert_settled(db);
	assert_same_profiles(fake, ref, "buyers");
	assert_same_profiles(fake, ref, "even_buyers");
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"),
			 mpctl_counter(ref, "events_stored"));
	assert_one_event_each(fake, CHAOS_MEMBERS + rounds * CHAOS_BATCH);
	fprintf(stderr,
		"chaos: seed %lu passed; %lld requests, %lld faults, %lld"
		" re-sent events dropped as duplicates\n",
		seed,
		(long long)(mpctl_counter(fake, "requests_import") +
			    mpctl_counter(fake, "requests_engage")),
		(long long)mpctl_counter(fake, "faults_injected"),
		(long long)mpctl_counter(fake, "duplicates"));
	mpctl_stop(fake);
	mpctl_stop(ref);
	free(db);
}
END_TEST

/* ---- a crash between Mixpanel's answer and the outbox's delete ------- */

#define BOUND_MEMBERS 50
#define BOUND_BATCH   10
#define HOLD_KEY      "4242"

/*
 * Every change of an outbox row waits for the advisory lock HOLD_KEY:
 * while the test holds it, a delivery stops right after Mixpanel
 * accepted a batch, before the rows that batch came from are deleted.
 */
static void hold_outbox_changes(const char *db)
{
	tl_sql(db, "CREATE FUNCTION public.hold_settle() RETURNS trigger"
		   " LANGUAGE plpgsql AS $$ BEGIN"
		   " PERFORM pg_advisory_xact_lock(" HOLD_KEY ");"
		   " RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;"
		   " END $$;"
		   "CREATE TRIGGER hold_settle BEFORE DELETE OR UPDATE"
		   " ON audsync.outbox FOR EACH ROW"
		   " EXECUTE FUNCTION public.hold_settle()");
}

/* Waits until a session waits for HOLD_KEY (a delivery holds accepted
 * records it cannot settle), or pid exits; 1 when one waits. */
static int wait_for_a_held_settle(const char *db, pid_t pid)
{
	return wait_until_above(db,
				"SELECT count(*) FROM pg_locks WHERE"
				" locktype = 'advisory' AND objid = " HOLD_KEY
				" AND NOT granted",
				NULL, NULL, 0, pid, 60000) == 1;
}

/* Ends every session of db but the test's own and keep's: what a crash
 * of the host leaves of a killed audsync's backends. */
static void end_other_sessions(const char *db, int keep)
{
	long until = now_ms() + 30000;

	tl_sqlf(db,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		" WHERE datname = current_database() AND pid NOT IN"
		" (pg_backend_pid(), %d)",
		keep);
	while (tl_sql_intf(db,
			   "SELECT count(*) FROM pg_stat_activity WHERE"
			   " datname = current_database() AND pid NOT IN"
			   " (pg_backend_pid(), %d)",
			   keep) > 0) {
		ck_assert_msg(now_ms() < until, "sessions still connected");
		sleep_ms(20);
	}
}

/*
 * audsync run killed (kill -9) once Mixpanel accepted a batch and before
 * the outbox rows were deleted; a deliver then sends what is queued. What
 * a marketer sees: at most that one batch sent twice, events with the
 * same $insert_id (the fake keeps one of each), every profile right.
 */
static void crash_between_accept_and_delete(const char *mode)
{
	static const char *const args[] = { "run", "--all", NULL };
	mpctl *fake;
	PGconn *hold;
	PGresult *res;
	char *db;
	pid_t pid;
	tl_result r;
	long long received, resent, n;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = new_db();
	tl_sqlf(db,
		"INSERT INTO audsync.destinations (name, api_base,"
		" project_token, use_people, settings) VALUES ('mp', '%s',"
		" 'test-token', true, '{\"batch_size\": %d,"
		" \"concurrency\": 1}');"
		"INSERT INTO audsync.computations (name, kind,"
		" definition_sql) VALUES ('Buyers', 'audience',"
		" 'SELECT profile_id FROM audsync.events WHERE ts < $1');"
		"INSERT INTO audsync.syncs (computation_id, destination_id,"
		" mode) SELECT c.id, d.id, '%s' FROM audsync.computations c,"
		" audsync.destinations d",
		mpctl_base_url(fake), BOUND_BATCH, mode);
	add_members(db, 1, BOUND_MEMBERS);
	hold_outbox_changes(db);
	hold = PQconnectdb(db);
	ck_assert_int_eq(PQstatus(hold), CONNECTION_OK);
	res = PQexec(hold, "SELECT pg_advisory_lock(" HOLD_KEY ")");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);

	pid = tl_audsync_spawn(db, fast_retries, args);
	ck_assert_msg(wait_for_a_held_settle(db, pid),
		      "%s: the delivery never came to delete a row", mode);
	kill(pid, SIGKILL);
	ck_assert_int_eq(wait_exit(pid, 30), 128 + SIGKILL);
	received = mpctl_counter(fake, "records_received");
	ck_assert_msg(received > 0, "%s: Mixpanel accepted nothing", mode);
	end_other_sessions(db, PQbackendPID(hold));
	PQfinish(hold);
	tl_sql(db, "DROP TRIGGER hold_settle ON audsync.outbox");
	/* No row could change: every record the run decided is queued. */
	n = tl_sql_int(db, "SELECT coalesce(sum(n), 0) FROM audsync.outbox");
	ck_assert_msg(n >= BOUND_MEMBERS, "%s: %lld records queued", mode, n);

	r = tl_audsync(db, fast_retries, "deliver", NULL);
	ASSERT_OK(r, "the deliver after the crash");
	tl_result_free(&r);
	assert_settled(db);
	resent = mpctl_counter(fake, "records_received") - n;
	fprintf(stderr,
		"%s: %lld records accepted before the crash, %lld sent"
		" twice\n",
		mode, received, resent);
	ck_assert_msg(resent <= BOUND_BATCH,
		      "%s: a crash re-sent %lld records, more than the one"
		      " batch of %d in flight",
		      mode, resent, BOUND_BATCH);
	if (strcmp(mode, "track") == 0) {
		ck_assert_int_eq(mpctl_counter(fake, "duplicates"), resent);
		assert_one_event_each(fake, BOUND_MEMBERS);
	} else {
		int i;

		for (i = 1; i <= BOUND_MEMBERS; i++) {
			char did[16], *v;

			snprintf(did, sizeof(did), "u%d", i);
			v = mpctl_prop(fake, did, "buyers");
			ck_assert_msg(v && strcmp(v, "true") == 0,
				      "profile %s: buyers is %s", did,
				      v ? v : "(none)");
			free(v);
		}
	}
	mpctl_stop(fake);
	free(db);
}

START_TEST(a_crash_after_an_accepted_batch_resends_that_batch_at_most)
{
	crash_between_accept_and_delete("track");
	crash_between_accept_and_delete("identify");
}
END_TEST

static Suite *crash_suite(void)
{
	const char *pts = getenv("AUDSYNC_CHAOS_POINTS");
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash safety");
	TCase *chaos = tcase_create("chaos");
	TCase *bound = tcase_create("resend bound");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, kill_9_at_any_moment_loses_and_doubles_nothing);
	tcase_add_test(tc, a_postgresql_restart_mid_run_loses_nothing);
	tcase_add_test(tc, two_runs_at_once_send_each_record_once);
	tcase_add_test(tc, two_delivers_at_once_send_each_queued_record_once);
	tcase_add_test(tc, a_crashed_run_is_failed_while_another_db_syncs);
	suite_add_tcase(s, tc);
	/* its own case, so that make chaos runs it alone (CK_RUN_CASE) */
	tcase_set_timeout(chaos,
			  240 + 10 * (pts && atoi(pts) > 0 ? atoi(pts) : 20));
	tcase_add_test(chaos,
		       chaos_kill_9_restart_and_faults_lose_and_double_nothing);
	suite_add_tcase(s, chaos);
	tcase_set_timeout(bound, 120);
	tcase_add_test(
		bound,
		a_crash_after_an_accepted_batch_resends_that_batch_at_most);
	suite_add_tcase(s, bound);
	return s;
}

int main(void)
{
	return tl_run_suite(crash_suite());
}
