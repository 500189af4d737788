/* bench_sync.c - the sync engine at scale: 1 000 000 profiles, about
 * 2.5 identifiers each, 5 000 000 events, an audience of 500 000 members
 * in identify mode to the fake Mixpanel. Prints figures; judges nothing.
 *
 * BENCH_PROFILES scales the data (default 1000000). */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The audience: a purchase in the last 30 days. */
static const char definition[] =
	"SELECT profile_id FROM audsync.events"
	" WHERE event = 'Purchase' AND ts >= $2 AND ts < $1";

static void load(const char *db, long n)
{
	char sql[4096];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.external_ids"
		 " SELECT 'p' || g, 'user_id', 'u' || g,"
		 "  now() - interval '100 days' FROM generate_series(1, %ld) g;"
		 "INSERT INTO audsync.external_ids"
		 " SELECT 'p' || g, 'email', 'e' || g || '@example.com',"
		 "  now() - interval '99 days' FROM generate_series(1, %ld) g;"
		 "INSERT INTO audsync.external_ids"
		 " SELECT 'p' || g, 'anonymous_id', 'a-' || md5(g::text),"
		 "  now() - interval '98 days'"
		 " FROM generate_series(2, %ld, 2) g;"
		 /* One purchase per profile, half of them in the window. */
		 "INSERT INTO audsync.events"
		 " SELECT 'p' || g, 'Purchase', '{}', now() - make_interval("
		 "  days => g %% 60, hours => 1)"
		 " FROM generate_series(1, %ld) g;"
		 "INSERT INTO audsync.events"
		 " SELECT 'p' || (1 + g %% %ld), 'Product Viewed', '{}',"
		 "  now() - make_interval(days => g %% 90, hours => 2)"
		 " FROM generate_series(1, %ld) g",
		 n, n, n, n, n, 4 * n);
	tl_sql(db, sql);
	/* As autovacuum and the checkpointer leave a database that was not
	 * just bulk-loaded: the runs are timed, not the server catching up
	 * with the load (its checkpoint would write for minutes, spread,
	 * while the first sync runs). */
	tl_sql(db, "VACUUM ANALYZE");
	tl_sql(db, "CHECKPOINT");
}

static void define(const char *db, const char *base_url)
{
	char sql[1024];

	snprintf(
		sql, sizeof(sql),
		"INSERT INTO audsync.destinations (name, api_base,"
		" project_token, use_people) VALUES ('bench', '%s',"
		" 'test-token', true);"
		"INSERT INTO audsync.computations (name, kind, definition_sql,"
		" lookback) VALUES ('Recent Purchasers', 'audience', $q$%s$q$,"
		" '30 days');"
		"INSERT INTO audsync.syncs (computation_id, destination_id, mode)"
		" SELECT c.id, d.id, 'identify' FROM audsync.computations c,"
		" audsync.destinations d",
		base_url, definition);
	tl_sql(db, sql);
}

/*
 * The definition's own query, run alone by the server (EXPLAIN ANALYZE:
 * every row produced, none sent), at the same as-of and window. Run
 * after audsync's, so its data is as warm as it was for audsync at best.
 */
static double definition_seconds(const char *db)
{
	char sql[1024], *plan;
	const char *p;
	double ms;

	snprintf(sql, sizeof(sql),
		 "PREPARE bench_definition (timestamptz, timestamptz) AS %s;"
		 "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE"
		 " bench_definition (now(), now() - interval '30 days')",
		 definition);
	plan = tl_sql_value(db, sql);
	p = strstr(plan, "\"Execution Time\":");
	ms = p ? atof(p + strlen("\"Execution Time\":")) : -1.0;
	free(plan);
	return ms / 1000.0;
}

/* Reads "name=value" from audsync's log line, or -1. */
static double log_seconds(const char *log, const char *name)
{
	const char *p = strstr(log, name);

	return p ? atof(p + strlen(name) + 1) : -1.0;
}

/*
 * Runs audsync run --all and prints its wall time, the definition's own
 * query's time and what is beyond it, the time audsync's log gives to its
 * evaluation (evaluate_s: the definition run into the stage), the calls
 * the fake received and the child's peak RSS.
 */
static void run_once(const char *db, const char *label, mpctl *fake)
{
	const char *argv[] = { getenv("AUDSYNC_BIN") ? getenv("AUDSYNC_BIN")
						     : "./audsync",
			       "--db",
			       db,
			       "run",
			       "--all",
			       NULL };
	long long before = mpctl_counter(fake, "records_received"), calls;
	FILE *log = tmpfile();
	char text[65536];
	struct rusage ru;
	double t0 = tl_now_s(), wall, eval, def, cpu0 = tl_server_cpu_seconds(),
	       cpu;
	size_t n;
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		/* An unchanged run logs its timings at debug. */
		setenv("AUDSYNC_LOG_LEVEL", "debug", 1);
		dup2(fileno(log), 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	wait4(pid, &st, 0, &ru);
	wall = tl_now_s() - t0;
	tl_server_settle(db);
	cpu = tl_server_cpu_seconds() - cpu0;
	rewind(log);
	n = fread(text, 1, sizeof(text) - 1, log);
	text[n] = '\0';
	fclose(log);
	if (getenv("BENCH_LOG"))
		fputs(text, stdout);
	eval = log_seconds(text, "evaluate_s");
	calls = mpctl_counter(fake, "records_received") - before;
	def = definition_seconds(db);
	printf("bench_sync: %-19s %6.2f s (definition's query %.2f s, beyond "
	       "it %.2f s; audsync's evaluation %.2f s), %lld calls "
	       "delivered, peak rss %.1f MiB, exit %d\n",
	       label, wall, def, wall - def, eval, calls,
	       (double)ru.ru_maxrss / 1024.0,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	printf("bench_sync: %-19s cpu: audsync %.2f s, PostgreSQL %.2f s\n",
	       label,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		       (double)ru.ru_stime.tv_sec +
		       (double)ru.ru_stime.tv_usec / 1e6,
	       cpu0 < 0 ? -1.0 : cpu);
	fflush(stdout);
}

/* The ledger's size on disk (table, TOAST and indexes) per million
 * targets (its lines: one per identifier and distinct_id). */
static void ledger_size(const char *db)
{
	long long bytes = tl_sql_int(
		db,
		"SELECT pg_total_relation_size('audsync.snapshot_members')");
	long long targets = tl_sql_int(
		db, "SELECT coalesce(sum(cardinality(string_to_array(targets,"
		    " E'\\n'))), 0) FROM audsync.snapshot_members"
		    " WHERE targets <> ''");

	printf("bench_sync: ledger %.1f MiB on disk for %lld targets, %.1f "
	       "MiB per million targets\n",
	       (double)bytes / 1048576.0, targets,
	       targets ? (double)bytes / 1048576.0 * 1e6 / (double)targets
		       : 0.0);
	fflush(stdout);
}

/* 1 % of members change: half of them leave, as many others enter. */
static void churn(const char *db, long n)
{
	char sql[1024];
	long k = n / 200;

	snprintf(sql, sizeof(sql),
		 "UPDATE audsync.events SET ts = now() - interval '45 days'"
		 " WHERE event = 'Purchase' AND profile_id IN (SELECT 'p' || g"
		 " FROM generate_series(60, %ld, 60) g);"
		 "UPDATE audsync.events SET ts = now() - interval '1 day'"
		 " WHERE event = 'Purchase' AND profile_id IN (SELECT 'p' || g"
		 " FROM generate_series(30, %ld, 60) g)",
		 k * 60, k * 60);
	tl_sql(db, sql);
}

int main(void)
{
	long n = tl_env_long("BENCH_PROFILES", 1000000, 1, 100000000);
	const char *db;
	mpctl *fake;
	double t0;

	if (mpctl_start(&fake, "--threads 2") != 0)
		return 1;
	db = tl_new_db();
	t0 = tl_now_s();
	load(db, n);
	printf("bench_sync: loaded %ld profiles, %lld identifiers, %lld "
	       "events in %.1f s\n",
	       n, tl_sql_int(db, "SELECT count(*) FROM audsync.external_ids"),
	       tl_sql_int(db, "SELECT count(*) FROM audsync.events"),
	       tl_now_s() - t0);
	define(db, mpctl_base_url(fake));
	printf("bench_sync: an audience of %lld members, identify mode\n",
	       tl_sql_int(db, "SELECT count(DISTINCT profile_id) FROM "
			      "audsync.events WHERE event = 'Purchase' AND "
			      "ts >= now() - interval '30 days'"));
	run_once(db, "first sync", fake);
	ledger_size(db);
	run_once(db, "unchanged run", fake);
	/* What autovacuum does within a minute of the first sync (its
	 * inserts pass autovacuum_vacuum_insert_threshold), long before an
	 * hourly run: the ledger's pages become all-visible, and the diff
	 * reads its members from the primary key's index alone
	 * (sql/019_ledger_members_index.sql). */
	t0 = tl_now_s();
	tl_sql(db, "VACUUM audsync.snapshot_members");
	printf("bench_sync: the ledger's vacuum %.2f s\n", tl_now_s() - t0);
	run_once(db, "unchanged, vacuumed", fake);
	churn(db, n);
	run_once(db, "1% churn run", fake);
	printf("bench_sync: fake Mixpanel holds %lld profiles\n",
	       (long long)mpctl_counter(fake, "profiles"));
	mpctl_stop(fake);
	return 0;
}
