/* bench_rules.c - a rule audience against the hand-written SQL of the same
 * meaning, on the data of bench_sync.c (1 000 000 profiles, 5 000 000
 * events): the statements' own execution time in the server (the best
 * of five rounds, the three statements in turn); then both synced to the
 * fake Mixpanel by audsync, end to end, in the hourly runs after the
 * first, hour after hour: each hour one
 * after 1 % of the profiles got new events, one where only time moved
 * (members ageing out and in), and their medians over the hours.
 * Then the same runs as the daemon makes them, on a copy of the data: in
 * one process that keeps its connection from pass to pass.
 * Prints figures with the CPU and the page faults they took (with what a
 * fault costs: on a virtual machine, enough to matter for a new process)
 * and the load average (the machine may be shared); judges nothing.
 *
 * BENCH_PROFILES scales the data (default 1000000); BENCH_HOURS (default
 * 5) says how many hours of hourly runs follow the first sync. */
#include "audsync/db.h"
#include "audsync/deliver.h"
#include "audsync/log.h"
#include "audsync/rules.h"
#include "audsync/sync.h"
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* bench_sync.c's audience: a purchase in the last 30 days. */
static const char hand_sql[] =
	"SELECT profile_id FROM audsync.events"
	" WHERE event = 'Purchase' AND ts >= $2 AND ts < $1";
/* The same with the rule's meaning: only profiles of the identity graph,
 * each once. */
static const char same_meaning_sql[] =
	"SELECT DISTINCT e.profile_id FROM audsync.events e"
	" WHERE e.event = 'Purchase' AND e.ts >= $2 AND e.ts < $1"
	" AND EXISTS (SELECT 1 FROM audsync.external_ids x"
	" WHERE x.profile_id = e.profile_id)";
static const char rule[] = "{\"performed\": {\"event\": \"Purchase\"}}";

/* Every time is relative to BASE: each profile bought once in the 60 days
 * before BASE - 1 hour, at any time of day, so that as an hour passes
 * 1/1440 of them cross each edge of a 30-day window. */
#define BASE "'2026-06-01 12:00:00+00'::timestamptz"

static void load(const char *db, long n)
{
	char sql[4096];

	snprintf(
		sql, sizeof(sql),
		"INSERT INTO audsync.external_ids"
		" SELECT 'p' || g, 'user_id', 'u' || g,"
		"  " BASE " - interval '100 days'"
		" FROM generate_series(1, %ld) g;"
		"INSERT INTO audsync.external_ids"
		" SELECT 'p' || g, 'email', 'e' || g || '@example.com',"
		"  " BASE " - interval '99 days'"
		" FROM generate_series(1, %ld) g;"
		"INSERT INTO audsync.events"
		" SELECT 'p' || g, 'Purchase', '{}', " BASE " - make_interval("
		"  days => g %% 60, hours => 1, secs => (g::bigint * 7919) %% 86400)"
		" FROM generate_series(1, %ld) g;"
		"INSERT INTO audsync.events"
		" SELECT 'p' || (1 + g %% %ld), 'Product Viewed', '{}',"
		"  " BASE " - make_interval(days => g %% 90, hours => 2)"
		" FROM generate_series(1, %ld) g",
		n, n, n, n, 4 * n);
	tl_sql(db, sql);
	tl_sql(db, "VACUUM ANALYZE");
	tl_sql(db, "CHECKPOINT");
}

/* The rounds of the full evaluation's timings. */
#define ROUNDS 5

/* One statement's best over the rounds: wall seconds and the least
 * server CPU (its session's, which a shared machine does not inflate as
 * it does wall time). */
typedef struct best {
	double wall, cpu;
} best;

/* One server-side execution of sql ($1 now, $2 thirty days back, then
 * params), kept in *b if it is the best yet. */
static void time_once(best *b, const char *db, const char *sql,
		      const rules_sql *r)
{
	char *text, *plan, types[2048] = "timestamptz, timestamptz";
	char args[4096] = BASE ", " BASE " - interval '30 days'";
	const char *p;
	double srv0, s;
	int i;

	for (i = 0; r && i < r->nparams; i++) {
		strcat(types, ", text");
		strcat(args, ", '");
		strcat(args, r->params[i]); /* the bench's own values */
		strcat(args, "'");
	}
	if (asprintf(&text,
		     "SET work_mem = '256MB'; DEALLOCATE ALL;"
		     " PREPARE b (%s) AS %s;"
		     "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON)"
		     " EXECUTE b (%s)",
		     types, sql, args) < 0)
		abort();
	tl_server_settle(db);
	srv0 = tl_server_cpu_seconds();
	plan = tl_sql_value(db, text);
	tl_server_settle(db);
	s = tl_server_cpu_seconds() - srv0;
	if (b->cpu < 0 || s < b->cpu)
		b->cpu = s;
	p = strstr(plan, "\"Execution Time\":");
	s = p ? atof(p + strlen("\"Execution Time\":")) / 1000.0 : -1;
	if (b->wall < 0 || s < b->wall)
		b->wall = s;
	free(plan);
	free(text);
}

/* CPU seconds and minor page faults of a process, or of processes. */
typedef struct usage {
	double cpu;
	long long faults;
} usage;

/* This process's (RUSAGE_SELF: the daemon's passes) or its ended
 * children's (RUSAGE_CHILDREN: audsync processes). */
static usage usage_of(int who)
{
	struct rusage ru;
	usage u;

	getrusage(who, &ru);
	u.cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	u.faults = ru.ru_minflt;
	return u;
}

/* The server's ended processes' (pid 0), or backend pid's. */
static usage server_usage(long pid)
{
	usage u;

	u.cpu = pid ? tl_process_cpu_seconds(pid, 0) : tl_server_cpu_seconds();
	u.faults = pid ? tl_process_faults(pid, 0) : tl_server_faults();
	return u;
}

static usage since(usage now, usage then)
{
	now.cpu -= then.cpu;
	now.faults -= then.faults;
	return now;
}

/* What one page fault costs this machine, in microseconds: a first
 * touch of each of 20 000 fresh pages. Every audsync run from a timer is
 * a new process with new backends, whose memory is all first touches. */
static double fault_us(void)
{
	const size_t n = 20000, page = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0;
	size_t i;

	if (p == MAP_FAILED)
		return -1.0;
	t0 = tl_now_s();
	for (i = 0; i < n; i++)
		p[i * page] = 1;
	t0 = (tl_now_s() - t0) * 1e6 / (double)n;
	munmap(p, n * page);
	return t0;
}

static void load_average(char *out, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");

	snprintf(out, len, "?");
	if (f) {
		if (fgets(out, (int)len, f))
			out[strcspn(out, " ")] = '\0';
		fclose(f);
	}
}

/* The as-of BASE + at (an interval), as text. Caller frees. */
static char *as_of_at(const char *db, const char *at)
{
	char sql[512];

	/* Outside a Check test: testlib's printf forms would report. */
	snprintf(sql, sizeof(sql), "SELECT (" BASE " + interval '%s')::text",
		 at);
	return tl_sql_value(db, sql);
}

/* Prints one run's figures: wall seconds, then CPU and page faults
 * (audsync's, and PostgreSQL's: srv, or when NULL since srv0 its ended
 * backends'), the members and the load. */
static void report(const char *db, const char *label, const char *key,
		   double wall, usage mine, usage srv0, const usage *srv)
{
	char sql[512], load[32];
	long long members;
	usage pg;

	if (!srv) {
		tl_server_settle(db);
		pg = since(server_usage(0), srv0);
	} else {
		pg = *srv;
	}
	load_average(load, sizeof(load));
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM audsync.snapshot_members m"
		 " JOIN audsync.syncs s ON s.id = m.sync_id"
		 " JOIN audsync.computations c ON c.id = s.computation_id"
		 " WHERE c.key = '%s' AND m.member",
		 key);
	members = tl_sql_int(db, sql);
	printf("bench_rules: %-32s %-5s %7.3f s end to end; CPU audsync "
	       "%.2f s, PostgreSQL %.2f s; page faults audsync %lld, "
	       "PostgreSQL %lld; %lld members; load %s\n",
	       label, key, wall, mine.cpu, pg.cpu, mine.faults, pg.faults,
	       members, load);
	fflush(stdout);
}

/* One audsync run of computation key at BASE + at, end to end, as a
 * timer starts it: a new process. */
static double timed_run(const char *db, const char *label, const char *key,
			const char *at)
{
	char *as_of = as_of_at(db, at);
	usage mine0 = usage_of(RUSAGE_CHILDREN), srv0 = server_usage(0);
	double t0, wall;
	tl_result r;

	t0 = tl_now_s();
	r = tl_audsync(db, NULL, "run", "--computation", key, "--as-of", as_of,
		       NULL);
	wall = tl_now_s() - t0;
	if (r.status != 0) {
		fprintf(stderr, "bench_rules: %s failed: %s\n", label, r.err);
		exit(1);
	}
	report(db, label, key, wall, since(usage_of(RUSAGE_CHILDREN), mine0),
	       srv0, NULL);
	tl_result_free(&r);
	free(as_of);
	return wall;
}

/* The same run as one pass of the daemon makes it, on conn (kept from
 * pass to pass): the run, its delivery and the statistics' refresh, as
 * daemon_pass() in engine/commands.c does them. */
static double daemon_run(PGconn *conn, const char *db, const char *label,
			 const char *key, const char *at)
{
	char *as_of = as_of_at(db, at), err[1024];
	usage mine0 = usage_of(RUSAGE_SELF),
	      srv0 = server_usage(PQbackendPID(conn)), srv;
	double t0, t1, wall;
	run_request rq = { 0 };
	run_totals t = { 0 };

	rq.computation = key;
	rq.as_of = as_of;
	rq.kind = RUN_MANUAL;
	t0 = tl_now_s();
	if (sync_run(&t, conn, &rq, err, sizeof(err)) == 0)
		t1 = tl_now_s();
	else
		t1 = -1;
	if (t1 < 0 || deliver_outboxes(&t.delivery, conn, NULL, NULL, err,
				       sizeof(err)) != 0) {
		fprintf(stderr, "bench_rules: daemon, %s failed: %s\n", label,
			err);
		exit(1);
	}
	if (t.written)
		sync_refresh_statistics(conn);
	wall = tl_now_s() - t0;
	if (t.failed || t.delivery.rejected || t.delivery.not_delivered) {
		fprintf(stderr,
			"bench_rules: daemon, %s: a run or a delivery "
			"failed\n",
			label);
		exit(1);
	}
	srv = since(server_usage(PQbackendPID(conn)), srv0);
	report(db, label, key, wall, since(usage_of(RUSAGE_SELF), mine0), srv0,
	       &srv);
	/* Where the pass went: evaluating, deciding and queueing (the run),
	 * then delivering to the fake and the statistics' refresh. */
	printf("bench_rules: %-32s %-5s   of which the run %.3f s, delivery "
	       "%.3f s\n",
	       label, key, t1 - t0, t0 + wall - t1);
	fflush(stdout);
	free(as_of);
	return wall;
}

/* One run, as a timer makes it (conn NULL) or as the daemon does, at
 * BASE + at_min minutes; returns its wall time. */
static double one_run(PGconn *conn, const char *db, const char *label,
		      const char *key, long at_min)
{
	char daemon[64], at[64];

	snprintf(daemon, sizeof(daemon), "daemon: %s", label);
	snprintf(at, sizeof(at), "%ld minutes", at_min);
	if (conn)
		return daemon_run(conn, db, daemon, key, at);
	return timed_run(db, label, key, at);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median, least and most of a kind of hourly run over the hours. */
static void summarize(const char *label, const char *key, double *wall, int n,
		      int daemon)
{
	char name[64];

	snprintf(name, sizeof(name), "%s%s", daemon ? "daemon: " : "", label);
	qsort(wall, (size_t)n, sizeof(*wall), by_value);
	printf("bench_rules: %-32s %-5s over %d hours: median %.3f s "
	       "(%.3f-%.3f s)\n",
	       name, key, n,
	       n % 2 ? wall[n / 2] : (wall[n / 2 - 1] + wall[n / 2]) / 2,
	       wall[0], wall[n - 1]);
	fflush(stdout);
}

/* The rule and the hand-written SQL as computations with a 30-day
 * lookback, synced to the fake by identify; after the first sync, hours
 * hours pass, each with two hourly runs of both: one after 1 % of the
 * profiles bought (and an hour moved), one where only time moved. Runs
 * by new processes or (conn) on one kept connection. One hour's figures
 * swing by a third on a shared machine; the median over the hours is
 * what to compare. The last hour is at the times a single hour had. */
static void hourly(const char *db, long n, int hours, mpctl *fake, PGconn *conn)
{
	static const char *const keys[] = { "rule", "hand" };
	static const char *const labels[] = { "hourly, 1% new events",
					      "hourly, only time moved" };
	double *wall = calloc((size_t)(4 * hours), sizeof(*wall));
	char sql[1024];
	long first = -150 - 120L * (hours - 1);
	int h, k, l;

	if (!wall)
		abort();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	snprintf(
		sql, sizeof(sql),
		"INSERT INTO audsync.computations (key, name, kind,"
		" definition, lookback) VALUES ('rule', 'rule', 'audience',"
		" '%s', '30 days');"
		"INSERT INTO audsync.computations (key, name, kind,"
		" definition_sql, lookback) VALUES ('hand', 'hand', 'audience',"
		" $h$%s$h$, '30 days');"
		"INSERT INTO audsync.syncs (computation_id, destination_id, mode)"
		" SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
		" audsync.destinations d",
		rule, hand_sql);
	tl_sql(db, sql);
	/* The first sync: every member. */
	for (k = 0; k < 2; k++)
		one_run(conn, db, "first sync (full)", keys[k], first);
	/* An hour passes: autovacuum has long cleaned up after the first
	 * syncs' million ledger rows, as it would not have within the
	 * seconds the bench leaves it (its workers took a core during the
	 * hourly runs timed next). */
	tl_sql(db, "VACUUM ANALYZE");
	tl_sql(db, "CHECKPOINT");
	for (h = 0; h < hours; h++) {
		long at = first + 60 + 120L * h;

		/* 1 % of the profiles buy again, within the hour: other
		 * profiles each hour. */
		snprintf(sql, sizeof(sql),
			 "INSERT INTO audsync.events SELECT 'p' || (1 +"
			 " (g::bigint * 7919 + %ld) %% %ld), 'Purchase', '{}',"
			 " " BASE " + interval '%ld minutes'"
			 " FROM generate_series(1, %ld) g",
			 104729L * (hours - 1 - h), n, at - 30, n / 100);
		tl_sql(db, sql);
		/* Within that hour the server checkpointed (every 5
		 * minutes by default): the new events' pages are on disk,
		 * not dirty buffers the run would have to write out to make
		 * room. */
		tl_sql(db, "CHECKPOINT");
		for (k = 0; k < 2; k++)
			wall[(0 * 2 + k) * hours + h] =
				one_run(conn, db, labels[0], keys[k], at);
		/* No new data: the buyers of that hour 30 days ago age
		 * out, the last hour's come in. */
		for (k = 0; k < 2; k++)
			wall[(1 * 2 + k) * hours + h] =
				one_run(conn, db, labels[1], keys[k], at + 60);
	}
	for (l = 0; l < 2; l++)
		for (k = 0; k < 2; k++)
			summarize(labels[l], keys[k],
				  wall + (l * 2 + k) * hours, hours,
				  conn != NULL);
	free(wall);
}

/* The hourly runs on copy (the data, before any sync) as the daemon makes
 * them: one process, one connection for every pass. The first syncs are
 * its first passes. */
static void hourly_daemon(const char *copy, long n, int hours, mpctl *fake)
{
	char err[1024];
	PGconn *conn;

	if (log_setup("warn", NULL, err, sizeof(err)) != 0 ||
	    !(conn = db_connect(copy, err, sizeof(err)))) {
		fprintf(stderr, "bench_rules: %s\n", err);
		exit(1);
	}
	db_lock_conn_start(conn);
	hourly(copy, n, hours, fake, conn);
	db_close(conn);
}

int main(void)
{
	long n = tl_env_long("BENCH_PROFILES", 1000000, 1, 100000000);
	int hours = (int)tl_env_long("BENCH_HOURS", 5, 1, 24);
	char *db = strdup(tl_new_db()), err[512], *copy, sql[256];
	rules_sql r;
	mpctl *fake;
	best hand = { -1, -1 }, same = { -1, -1 }, compiled = { -1, -1 };
	int i;

	if (rules_compile(&r, "bench", 0, rule, NULL, 3, err, sizeof(err))) {
		fprintf(stderr, "bench_rules: %s\n", err);
		return 1;
	}
	load(db, n);
	/* The daemon's runs start from the same data. */
	snprintf(sql, sizeof(sql), "TEMPLATE %s STRATEGY FILE_COPY",
		 db + strlen("dbname="));
	copy = strdup(tl_new_db_with(sql));
	printf("bench_rules: %ld profiles, %lld events; a page fault costs "
	       "this machine %.2f us\n",
	       n, tl_sql_int(db, "SELECT count(*) FROM audsync.events"),
	       fault_us());
	/* The three statements in turn, round after round: a slower
	 * phase of a shared machine costs each of them alike. */
	for (i = 0; i < ROUNDS; i++) {
		time_once(&hand, db, hand_sql, NULL);
		time_once(&same, db, same_meaning_sql, NULL);
		time_once(&compiled, db, r.sql, &r);
	}
	printf("bench_rules: full evaluation, best of %d rounds: bench_sync's "
	       "SQL %.3f s (CPU %.3f s); the same with the rule's meaning "
	       "(identity graph, distinct) %.3f s (CPU %.3f s); rule %s %.3f s "
	       "(CPU %.3f s; %.2fx the first, %.2fx the second; in CPU "
	       "%.2fx, %.2fx)\n",
	       ROUNDS, hand.wall, hand.cpu, same.wall, same.cpu, rule,
	       compiled.wall, compiled.cpu, compiled.wall / hand.wall,
	       compiled.wall / same.wall, compiled.cpu / hand.cpu,
	       compiled.cpu / same.cpu);
	fflush(stdout);
	rules_sql_free(&r);
	if (mpctl_start(&fake, "--threads 2") != 0)
		exit(1);
	hourly(db, n, hours, fake, NULL);
	hourly_daemon(copy, n, hours, fake);
	mpctl_stop(fake);
	free(copy);
	free(db);
	return 0;
}
