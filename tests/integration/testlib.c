/* testlib.c - integration test support: databases, the audsync binary */
#include "testlib.h"
#include "unit.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *audsync_bin(void)
{
	const char *b = getenv("AUDSYNC_BIN");

	return b && *b ? b : "./audsync";
}

static PGconn *connect_or_abort(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		ck_abort_msg("cannot connect to %s: %s", conninfo,
			     PQerrorMessage(c));
	return c;
}

void tl_add_everyone_sync(const char *conninfo)
{
	tl_sql(conninfo,
	       "INSERT INTO audsync.external_ids VALUES"
	       " ('p1', 'user_id', 'u1', now() - interval '3 days'),"
	       " ('p2', 'user_id', 'u2', now() - interval '3 days');"
	       "INSERT INTO audsync.computations (name, kind, definition_sql)"
	       " VALUES ('Everyone', 'audience',"
	       " 'SELECT profile_id FROM audsync.external_ids');"
	       "INSERT INTO audsync.syncs (computation_id, destination_id,"
	       " mode) SELECT c.id, d.id, 'identify'"
	       " FROM audsync.computations c, audsync.destinations d");
}

void tl_sql(const char *conninfo, const char *sql)
{
	PGconn *c = connect_or_abort(conninfo);
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		ck_abort_msg("SQL failed: %s\n%s", msg, sql);
	}
	PQclear(r);
	PQfinish(c);
}

void tl_add_destination(const char *conninfo, const char *name,
			const char *base_url)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, use_people) VALUES ('%s', '%s',"
		 " 'test-token', true)",
		 name, base_url);
	tl_sql(conninfo, sql);
}

char *tl_sql_value(const char *conninfo, const char *sql)
{
	PGconn *c = connect_or_abort(conninfo);
	PGresult *r = PQexec(c, sql);
	char *v = NULL;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		ck_abort_msg("SQL failed: %s\n%s", msg, sql);
	}
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

long long tl_sql_int(const char *conninfo, const char *sql)
{
	char *v = tl_sql_value(conninfo, sql);
	long long n = v ? atoll(v) : -1;

	free(v);
	return n;
}

const char *tl_new_db(void)
{
	return tl_new_db_with("");
}

const char *tl_new_db_with(const char *options)
{
	static char conninfo[128];
	static int counter;
	char name[64], sql[512];
	tl_result r;

	snprintf(name, sizeof(name), "t%d_%d", (int)getpid(), ++counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s %s", name, options);
	tl_sql("dbname=postgres", sql);
	snprintf(conninfo, sizeof(conninfo), "dbname=%s", name);
	r = tl_audsync(conninfo, NULL, "migrate", NULL);
	if (r.status != 0)
		ck_abort_msg("audsync migrate failed (%d): %s", r.status,
			     r.err);
	tl_result_free(&r);
	return conninfo;
}

/* Reads all of fd into a new string. */
static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *s = malloc(cap);
	ssize_t n;

	for (;;) {
		if (len + 1024 > cap) {
			cap *= 2;
			s = realloc(s, cap);
		}
		n = read(fd, s + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	s[len] = '\0';
	return s;
}

/* Builds argv: audsync --db conninfo args... */
static char **build_argv(const char *conninfo, const char *const *args)
{
	size_t n = 0, i;
	char **argv;

	while (args[n])
		n++;
	argv = calloc(n + 4, sizeof(char *));
	argv[0] = (char *)audsync_bin();
	argv[1] = (char *)"--db";
	argv[2] = (char *)conninfo;
	for (i = 0; i < n; i++)
		argv[i + 3] = (char *)args[i];
	return argv;
}

static void exec_child(const char *conninfo, const char *const *env,
		       const char *const *args)
{
	char **argv = build_argv(conninfo, args);
	size_t i;

	for (i = 0; env && env[i]; i++)
		putenv((char *)env[i]);
	execv(argv[0], argv);
	_exit(127);
}

tl_result tl_audsync_argv(const char *conninfo, const char *const *env,
			  const char *const *args)
{
	tl_result r = { 0 };
	FILE *ef = tmpfile(); /* stderr: a file, so no pipe can fill up */
	int out[2], st;
	pid_t pid;

	if (!ef || pipe(out) != 0)
		ck_abort_msg("pipe or tmpfile failed");
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(fileno(ef), 2);
		close(out[0]);
		exec_child(conninfo, env, args);
	}
	close(out[1]);
	r.out = slurp(out[0]);
	close(out[0]);
	waitpid(pid, &st, 0);
	lseek(fileno(ef), 0, SEEK_SET);
	r.err = slurp(fileno(ef));
	fclose(ef);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

tl_result tl_audsync(const char *conninfo, const char *const *env, ...)
{
	const char *args[64];
	tl_result r;
	va_list ap;
	int n = 0;

	va_start(ap, env);
	do
		args[n] = va_arg(ap, const char *);
	while (args[n++] && n < 63);
	va_end(ap);
	args[63] = NULL;
	r = tl_audsync_argv(conninfo, env, args);
	return r;
}

void tl_result_free(tl_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

pid_t tl_audsync_spawn(const char *conninfo, const char *const *env,
		       const char *const *args)
{
	return tl_audsync_spawn_log(conninfo, env, args, NULL);
}

pid_t tl_audsync_spawn_log(const char *conninfo, const char *const *env,
			   const char *const *args, const char *log_path)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		int log = log_path ? open(log_path,
					  O_WRONLY | O_CREAT | O_TRUNC, 0600)
				   : null;

		dup2(null, 1);
		dup2(log, 2);
		exec_child(conninfo, env, args);
	}
	return pid;
}

long tl_env_long(const char *name, long dflt, long min, long max)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return dflt;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || n < min || n > max) {
		fprintf(stderr,
			"%s must be a whole number from %ld to %ld, "
			"not '%s'\n",
			name, min, max, v);
		exit(2);
	}
	return n;
}

int tl_contains(const char *haystack, const char *needle)
{
	return haystack && strstr(haystack, needle) != NULL;
}

int tl_seed_chunks(int seeds, int per)
{
	return seeds <= per ? 1 : (seeds + per - 1) / per;
}

void tl_seed_chunk(int seeds, int chunks, int i, int *from, int *count)
{
	*from = (int)((long)seeds * i / chunks);
	*count = (int)((long)seeds * (i + 1) / chunks) - *from;
}

int tl_run_suite(Suite *s)
{
	return ut_run_suite(s);
}

char *tl_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long len;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	s = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(fread(s, 1, (size_t)len, f), (size_t)len);
	s[len] = '\0';
	fclose(f);
	return s;
}

/* fmt and ap as a new string. */
static char *vfmt(const char *fmt, va_list ap)
{
	va_list cp;
	char *s;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

void tl_sqlf(const char *conninfo, const char *fmt, ...)
{
	va_list ap;
	char *sql;

	va_start(ap, fmt);
	sql = vfmt(fmt, ap);
	va_end(ap);
	tl_sql(conninfo, sql);
	free(sql);
}

long long tl_sql_intf(const char *conninfo, const char *fmt, ...)
{
	va_list ap;
	char *sql;
	long long n;

	va_start(ap, fmt);
	sql = vfmt(fmt, ap);
	va_end(ap);
	n = tl_sql_int(conninfo, sql);
	free(sql);
	return n;
}

char *tl_sql_valuef(const char *conninfo, const char *fmt, ...)
{
	va_list ap;
	char *sql, *v;

	va_start(ap, fmt);
	sql = vfmt(fmt, ap);
	va_end(ap);
	v = tl_sql_value(conninfo, sql);
	free(sql);
	return v;
}

double tl_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* From /proc/pid/stat: minflt, cminflt, utime, stime, cutime and
 * cstime (fields 10, 11 and 14 to 17), or -1 when they cannot be read. */
static int proc_stat(long pid, unsigned long long v[6])
{
	char path[64], stat[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (pid <= 0 || !(f = fopen(path, "r")))
		return -1;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* after "(comm) ": fields 3.. */
	p = strrchr(stat, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %llu %llu %*u %*u "
			 "%llu %llu %llu %llu",
			 &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	return 0;
}

double tl_process_cpu_seconds(long pid, int children)
{
	unsigned long long v[6];

	if (proc_stat(pid, v) != 0)
		return -1.0;
	return (double)(children ? v[4] + v[5] : v[2] + v[3]) /
	       (double)sysconf(_SC_CLK_TCK);
}

long long tl_process_faults(long pid, int children)
{
	unsigned long long v[6];

	if (proc_stat(pid, v) != 0)
		return -1;
	return (long long)(children ? v[1] : v[0]);
}

/* The postmaster's pid, or 0. */
static long postmaster_pid(void)
{
	const char *dir = getenv("AUDSYNC_TEST_PGDIR");
	char path[512];
	long pm = 0;
	FILE *f;

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/data/postmaster.pid", dir);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fscanf(f, "%ld", &pm) != 1)
		pm = 0;
	fclose(f);
	return pm;
}

/*
 * CPU seconds of the server's exited processes (its backends, parallel
 * workers and autovacuum workers), from the postmaster's children times,
 * or -1 when they cannot be read. Unlike wall time, this holds on a
 * machine that others share.
 */
double tl_server_cpu_seconds(void)
{
	return tl_process_cpu_seconds(postmaster_pid(), 1);
}

long long tl_server_faults(void)
{
	return tl_process_faults(postmaster_pid(), 1);
}

/* Waits (up to 15 s) until audsync's backends have ended and the
 * postmaster has reaped them, so that their CPU is in its children's. */
void tl_server_settle(const char *db)
{
	double v, w;
	int i;

	for (i = 0; i < 100; i++) {
		if (tl_sql_int(db, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE datname = current_database()"
				   " AND pid <> pg_backend_pid()") == 0)
			break;
		usleep(100000);
	}
	v = tl_server_cpu_seconds();
	for (i = 0; i < 50; i++) {
		usleep(100000);
		w = tl_server_cpu_seconds();
		if (w == v)
			return;
		v = w;
	}
}
