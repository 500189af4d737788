/* check_daemon.c - audsync daemon: schedules, wakes on new events, stops
 * cleanly on SIGTERM */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	       " ('p2', 'user_id', 'u2', now() - interval '3 days');"
	       "INSERT INTO audsync.events VALUES"
	       " ('p1', 'Signed Up', '{}', now() - interval '2 days');"
	       "INSERT INTO audsync.computations (name, kind, definition_sql)"
	       " VALUES ('Signed Up', 'audience', 'SELECT profile_id FROM"
	       " audsync.events WHERE event = ''Signed Up'' AND ts < $1');"
	       "INSERT INTO audsync.syncs (computation_id, destination_id,"
	       " mode) SELECT c.id, d.id, 'identify'"
	       " FROM audsync.computations c, audsync.destinations d");
}

static void teardown(void)
{
	mpctl_stop(fake);
	fake = NULL;
}

/* 1 when the fake's profile distinct_id has the signed_up property
 * within seconds. */
static int wait_for_member(const char *distinct_id, int seconds)
{
	time_t end = time(NULL) + seconds;

	while (time(NULL) < end) {
		json_object *st, *profiles, *p, *v;
		int found = 0;

		ck_assert_int_eq(mpctl_state(&st, fake), 0);
		found = json_object_object_get_ex(st, "profiles", &profiles) &&
			json_object_object_get_ex(profiles, distinct_id, &p) &&
			json_object_object_get_ex(p, "signed_up", &v) &&
			json_object_get_boolean(v);
		json_object_put(st);
		if (found)
			return 1;
		usleep(100 * 1000);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for pid, which was sent SIGTERM at start: its wait status, and
 * in *secs the time it took to exit. A daemon that has not exited after
 * 10 s is killed and the test fails. */
static int wait_exit(double *secs, pid_t pid, double start)
{
	int st = 0;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_s() - start > 10) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			ck_abort_msg("the daemon did not exit 10 s after "
				     "SIGTERM");
		}
		usleep(10 * 1000);
	}
	*secs = now_s() - start;
	printf("daemon exited %.3f s after SIGTERM\n", *secs);
	return st;
}

/* Sends SIGTERM (twice when twice) and waits for pid (wait_exit). */
static int stop_daemon(double *secs, pid_t pid, int twice)
{
	double start = now_s();

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	if (twice) {
		usleep(100 * 1000); /* two pending SIGTERMs would be one */
		ck_assert_int_eq(kill(pid, SIGTERM), 0);
	}
	return wait_exit(secs, pid, start);
}

/* Waits (up to 20 s) until sql answers a count above 0. */
static void wait_for_sql(const char *sql, const char *what)
{
	time_t end = time(NULL) + 20;

	while (tl_sql_int(db, sql) <= 0) {
		ck_assert_msg(time(NULL) < end, "never reached: %s", what);
		usleep(50 * 1000);
	}
}

/* Waits (up to 20 s) until the fake has injected a fault. */
static void wait_for_fault(void)
{
	time_t end = time(NULL) + 20;

	while (mpctl_counter(fake, "faults_injected") < 1) {
		ck_assert_msg(time(NULL) < end, "no request met the fault");
		usleep(50 * 1000);
	}
}

static long long queued_records(void)
{
	return tl_sql_int(db, "SELECT coalesce(sum(n), 0)"
			      " FROM audsync.outbox");
}

/* The promise of a stop: out within 2 s, cleanly, the record of u1 still
 * queued for the next start and never told to the fake. */
static void assert_stopped_in_time(pid_t pid)
{
	double secs;
	int st = stop_daemon(&secs, pid, 0);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the daemon did not exit 0 on SIGTERM (status %d)", st);
	ck_assert_msg(secs < 2.0, "the daemon took %.3f s to exit", secs);
	ck_assert_int_eq(queued_records(), 1);
	ck_assert(!wait_for_member("u1", 0));
}

START_TEST(the_daemon_syncs_wakes_on_new_events_and_stops_on_sigterm)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid = tl_audsync_spawn(db, NULL, args);
	double secs;
	int st;

	ck_assert_msg(wait_for_member("u1", 20),
		      "the daemon's first pass did not set u1's audience");
	ck_assert(!wait_for_member("u2", 1));
	/* A new event NOTIFYs audsync_events: no minute-long wait. */
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Signed Up', '{}', now() - interval '1 second')");
	ck_assert_msg(wait_for_member("u2", 15),
		      "the daemon did not wake on the new event");
	/* Idle, waiting for events: out at once. */
	st = stop_daemon(&secs, pid, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the daemon did not exit 0 on SIGTERM (status %d)", st);
	ck_assert_msg(secs < 2.0, "the daemon took %.3f s to exit", secs);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status <> 'succeeded'"),
			 0);
}
END_TEST

/* An event written while a pass runs wakes the next pass at once, not
 * a minute later: its NOTIFY reaches the daemon's connection during the
 * pass and waits in libpq's queue, not on the socket that the wait
 * watches. Here the pass is long: after the real-time sync, a sync with
 * a lookback (run when due, never on a wake) evaluates for two
 * seconds, and the event comes then. */
START_TEST(an_event_during_a_pass_wakes_the_next_one)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid;
	double secs;
	int st;

	tl_sql(db, "INSERT INTO audsync.computations (name, kind,"
		   " definition_sql, lookback) VALUES ('Slow', 'audience',"
		   " 'SELECT e.profile_id FROM audsync.events e, pg_sleep(2)"
		   " WHERE e.event = ''Signed Up'' AND e.ts < $1', '1 day');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify'"
		   " FROM audsync.computations c, audsync.destinations d"
		   " WHERE c.name = 'Slow'");
	pid = tl_audsync_spawn(db, NULL, args);
	wait_for_sql("SELECT count(*) FROM pg_stat_activity"
		     " WHERE query LIKE '%pg_sleep(2)%' AND state = 'active'"
		     " AND pid <> pg_backend_pid() AND EXISTS (SELECT"
		     " FROM audsync.runs r JOIN audsync.syncs y"
		     " ON y.id = r.sync_id JOIN audsync.computations c"
		     " ON c.id = y.computation_id WHERE c.name = 'Signed Up'"
		     " AND r.status = 'succeeded')",
		     "the slow sync evaluating after the real-time one");
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Signed Up', '{}', now() - interval '1 second')");
	ck_assert_msg(wait_for_member("u1", 10), "the first pass delivered");
	ck_assert_msg(wait_for_member("u2", 10),
		      "the event written during a pass waited for the next "
		      "minute");
	st = stop_daemon(&secs, pid, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}
END_TEST

START_TEST(sigterm_during_an_evaluation_cancels_it_at_once)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid;
	double secs;
	int st;

	tl_sql(db, "UPDATE audsync.computations SET definition_sql ="
		   " 'SELECT e.profile_id FROM audsync.events e, pg_sleep(60)"
		   " WHERE e.event = ''Signed Up'' AND e.ts < $1'");
	pid = tl_audsync_spawn(db, NULL, args);
	wait_for_sql("SELECT count(*) FROM pg_stat_activity"
		     " WHERE query LIKE '%pg_sleep(60)%' AND state = 'active'"
		     " AND pid <> pg_backend_pid()",
		     "the evaluation running");
	st = stop_daemon(&secs, pid, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the daemon did not exit 0 on SIGTERM (status %d)", st);
	ck_assert_msg(secs < 2.0, "the daemon took %.3f s to exit", secs);
	/* Nothing of the run committed; its row says why. */
	ck_assert_int_eq(queued_records(), 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"
					" WHERE status = 'failed' AND error"
					" LIKE 'stopped by a signal%'"),
			 1);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*)"
					" FROM audsync.snapshot_members"),
			 0);
}
END_TEST

START_TEST(sigterm_during_a_slow_delivery_leaves_it_queued)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"slow\",\"count\":50,"
					   "\"slow_ms\":60000}"),
			 0);
	pid = tl_audsync_spawn(db, NULL, args);
	wait_for_fault();
	assert_stopped_in_time(pid);
}
END_TEST

START_TEST(sigterm_during_a_retry_backoff_leaves_it_queued)
{
	const char *const env[] = { "AUDSYNC_RETRY_BASE_MS=60000",
				    "AUDSYNC_RETRY_MAX_MS=60000",
				    "AUDSYNC_RETRY_JITTER_MS=1", NULL };
	const char *args[] = { "daemon", NULL };
	pid_t pid;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"503\",\"count\":50}"),
			 0);
	pid = tl_audsync_spawn(db, env, args);
	wait_for_fault();
	usleep(300 * 1000); /* into the backoff's wait */
	assert_stopped_in_time(pid);
}
END_TEST

START_TEST(sigterm_while_rate_limited_leaves_it_queued)
{
	const char *args[] = { "daemon", NULL };
	pid_t pid;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"429\",\"count\":50,"
					   "\"retry_after\":60}"),
			 0);
	pid = tl_audsync_spawn(db, NULL, args);
	wait_for_fault();
	usleep(300 * 1000); /* into Retry-After's wait */
	assert_stopped_in_time(pid);
}
END_TEST

START_TEST(a_second_sigterm_exits_at_once)
{
	const char *args[] = { "daemon", NULL };
	double secs;
	pid_t pid;
	int st;

	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"slow\",\"count\":50,"
					   "\"slow_ms\":60000}"),
			 0);
	pid = tl_audsync_spawn(db, NULL, args);
	wait_for_fault();
	st = stop_daemon(&secs, pid, 1);
	/* Status 1: it did not wait for the grace the first one gives. */
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1,
		      "status %d after two SIGTERMs", st);
	ck_assert_int_eq(queued_records(), 1);
}
END_TEST

/* The text of file path (caller frees), "" when it cannot be read. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 1 << 20);
	size_t n;

	ck_assert_ptr_nonnull(s);
	if (!f)
		return s;
	n = fread(s, 1, (1 << 20) - 1, f);
	s[n] = '\0';
	fclose(f);
	return s;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Waits (up to 20 s) until the file path holds needle. */
static void wait_for_text(const char *path, const char *needle)
{
	time_t end = time(NULL) + 20;

	for (;;) {
		char *s = read_text(path);
		int found = tl_contains(s, needle);

		if (!found && time(NULL) >= end)
			ck_abort_msg("%s never held %s; it holds: %s", path,
				     needle, s);
		free(s);
		if (found)
			return;
		usleep(50 * 1000);
	}
}

/* After a reload, the daemon (pid) is alive and its next pass delivers a
 * new event; then it stops cleanly and the test's files go. */
static void delivers_after_reload_then_stops(pid_t pid, const char *dir,
					     const char *envf, const char *logf)
{
	double secs;
	int st;

	ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
	tl_sql(db, "INSERT INTO audsync.events VALUES"
		   " ('p2', 'Signed Up', '{}', now() - interval '1 second')");
	ck_assert_msg(wait_for_member("u2", 15),
		      "the pass after the reload did not deliver");
	st = stop_daemon(&secs, pid, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	unlink(envf);
	unlink(logf);
	rmdir(dir);
}

START_TEST(sighup_reads_the_settings_again)
{
	char dir[] = "/tmp/audsync-hup-XXXXXX", envf[64], envv[96], logf[64];
	const char *args[] = { "daemon", NULL };
	const char *env[] = { envv, NULL };
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(envf, sizeof(envf), "%s/audsync.env", dir);
	snprintf(envv, sizeof(envv), "AUDSYNC_ENV_FILE=%s", envf);
	snprintf(logf, sizeof(logf), "%s/log", dir);
	write_text(envf, "# settings\nAUDSYNC_LOG_FORMAT=logfmt\n");
	pid = tl_audsync_spawn_log(db, env, args, logf);
	ck_assert_msg(wait_for_member("u1", 20), "no first pass");
	write_text(envf, "AUDSYNC_LOG_FORMAT=\"json\"\n");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	/* Alive, and logging in the format the file now says. */
	wait_for_text(logf, "\"msg\":\"reloaded: settings read again\"");
	ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
	/* A file with a wrong value is refused whole: the log stays JSON
	 * although the file says logfmt, and the daemon goes on. */
	write_text(envf, "AUDSYNC_LOG_FORMAT=logfmt\nAUDSYNC_TIMEOUT_MS=30s\n");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	wait_for_text(logf, "\"msg\":\"reload failed: settings kept\","
			    "\"error\":\"AUDSYNC_TIMEOUT_MS must be");
	/* Kept: the next pass delivers, with no trace of the wrong value. */
	delivers_after_reload_then_stops(pid, dir, envf, logf);
}
END_TEST

/* A wrong value in the environment file stops the daemon at start, as
 * the same value in its environment would: not each pass later. */
START_TEST(a_wrong_environment_file_stops_the_daemon_at_start)
{
	char dir[] = "/tmp/audsync-env-XXXXXX", envf[64], envv[96];
	const char *env[] = { envv, NULL };
	tl_result r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(envf, sizeof(envf), "%s/audsync.env", dir);
	snprintf(envv, sizeof(envv), "AUDSYNC_ENV_FILE=%s", envf);
	write_text(envf, "AUDSYNC_INCREMENTAL=off\n");
	r = tl_audsync(db, env, "daemon", NULL);
	ck_assert_msg(r.status == 3, "exited %d: %s", r.status, r.err);
	ck_assert_msg(tl_contains(r.err, "AUDSYNC_INCREMENTAL must be true or "
					 "false, not 'off'"),
		      "%s", r.err);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM audsync.runs"),
			 0);
	tl_result_free(&r);
	unlink(envf);
	rmdir(dir);
}
END_TEST

/* Starts `audsync daemon` with no --db (env as tl_audsync_spawn's),
 * stderr to log_path, AUDSYNC_DB and PGDATABASE unset: only the
 * environment file can name the database. */
static pid_t spawn_daemon_without_db(const char *const *env,
				     const char *log_path)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		const char *bin = getenv("AUDSYNC_BIN");
		int null = open("/dev/null", O_WRONLY);
		int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		size_t i;

		dup2(null, 1);
		dup2(log, 2);
		unsetenv("AUDSYNC_DB");
		unsetenv("PGDATABASE");
		for (i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execl(bin && *bin ? bin : "./audsync", "audsync", "daemon",
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* AUDSYNC_ENV_FILE's AUDSYNC_DB names the database when --db does not,
 * as the README says of the file; a SIGHUP that changes it keeps the
 * database the daemon started with and says a restart is needed once:
 * its connection, LISTEN and start-up checks belong to that database. */
START_TEST(the_environment_file_names_the_database)
{
	char dir[] = "/tmp/audsync-envdb-XXXXXX", envf[64], envv[96], logf[64];
	char line[160];
	const char *env[] = { envv, NULL };
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(envf, sizeof(envf), "%s/audsync.env", dir);
	snprintf(envv, sizeof(envv), "AUDSYNC_ENV_FILE=%s", envf);
	snprintf(logf, sizeof(logf), "%s/log", dir);
	snprintf(line, sizeof(line), "AUDSYNC_DB=\"%s\"\n", db);
	write_text(envf, line);
	pid = spawn_daemon_without_db(env, logf);
	ck_assert_msg(wait_for_member("u1", 20),
		      "no first pass from the file's database: %s",
		      read_text(logf));
	write_text(envf, "AUDSYNC_DB=\"host=/nonexistent dbname=x\"\n");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	wait_for_text(logf, "AUDSYNC_DB changed");
	wait_for_text(logf, "restart");
	/* Still on the first database: a new event is delivered. */
	delivers_after_reload_then_stops(pid, dir, envf, logf);
}
END_TEST

/* Receives one datagram (up to 20 s) into buf. */
static void recv_notify(int fd, char *buf, size_t len)
{
	struct timeval tv = { 20, 0 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, len - 1, 0);
	ck_assert_msg(n > 0, "no notification within 20 s");
	buf[n] = '\0';
}

/* Receives datagrams until one holds want (up to 40 of them). */
static void expect_notify(int fd, const char *want)
{
	char msg[256];
	int i;

	for (i = 0; i < 40; i++) {
		recv_notify(fd, msg, sizeof(msg));
		if (tl_contains(msg, want))
			return;
	}
	ck_abort_msg("never notified %s", want);
}

START_TEST(the_daemon_speaks_the_systemd_notify_protocol)
{
	char dir[] = "/tmp/audsync-notify-XXXXXX", envv[160];
	const char *args[] = { "daemon", NULL };
	const char *env[] = { envv, "WATCHDOG_USEC=200000", NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double secs, start;
	pid_t pid;
	int fd, st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	snprintf(envv, sizeof(envv), "NOTIFY_SOCKET=%s", sa.sun_path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	pid = tl_audsync_spawn(db, env, args);
	expect_notify(fd, "READY=1");
	/* Idle, it keeps the watchdog fed (every 100 ms here). */
	expect_notify(fd, "WATCHDOG=1");
	expect_notify(fd, "WATCHDOG=1");
	start = now_s();
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	expect_notify(fd, "STOPPING=1");
	st = wait_exit(&secs, pid, start);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	close(fd);
	unlink(sa.sun_path);
	rmdir(dir);
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(
		tc, the_daemon_syncs_wakes_on_new_events_and_stops_on_sigterm);
	tcase_add_test(tc, an_event_during_a_pass_wakes_the_next_one);
	tcase_add_test(tc, sigterm_during_an_evaluation_cancels_it_at_once);
	tcase_add_test(tc, sigterm_during_a_slow_delivery_leaves_it_queued);
	tcase_add_test(tc, sigterm_during_a_retry_backoff_leaves_it_queued);
	tcase_add_test(tc, sigterm_while_rate_limited_leaves_it_queued);
	tcase_add_test(tc, a_second_sigterm_exits_at_once);
	tcase_add_test(tc, sighup_reads_the_settings_again);
	tcase_add_test(tc, a_wrong_environment_file_stops_the_daemon_at_start);
	tcase_add_test(tc, the_environment_file_names_the_database);
	tcase_add_test(tc, the_daemon_speaks_the_systemd_notify_protocol);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(daemon_suite());
}
