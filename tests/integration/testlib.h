/* testlib.h - integration test support: databases, the audsync binary */
#ifndef AUDSYNC_TESTS_TESTLIB_H
#define AUDSYNC_TESTS_TESTLIB_H

#include <check.h>
#include <libpq-fe.h>
#include <sys/types.h>

/*
 * Every function here fails the running Check test (ck_abort_msg) on an
 * unexpected error, so tests read as what they assert.
 */

/* A fresh database, migrated by the audsync binary; its conninfo
 * ("dbname=..."; host and port come from PG* of tests/run-tests.sh).
 * Returns a static buffer valid until the next call. */
const char *tl_new_db(void);
/* The same, created with options (CREATE DATABASE name options). */
const char *tl_new_db_with(const char *options);

/* Adds destination name sending to base_url (the fake Mixpanel), with
 * the fake's token and use_people on: the usual start of a sync test. */
void tl_add_destination(const char *conninfo, const char *name,
			const char *base_url);

/* Two people (p1/u1, p2/u2) and the audience "Everyone" of them, synced
 * by identify to every destination: the smallest sync there is. */
void tl_add_everyone_sync(const char *conninfo);

/* Runs SQL (several statements allowed) on conninfo. */
void tl_sql(const char *conninfo, const char *sql);

/* The first column of the first row of SQL as a new string (caller
 * frees), or NULL when there is no row or it is NULL. */
char *tl_sql_value(const char *conninfo, const char *sql);

/* Like tl_sql_value, as a number (-1 when NULL). */
long long tl_sql_int(const char *conninfo, const char *sql);

/* tl_sql, tl_sql_int and tl_sql_value with the SQL made by printf. */
void tl_sqlf(const char *conninfo, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
long long tl_sql_intf(const char *conninfo, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *tl_sql_valuef(const char *conninfo, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The output of one audsync invocation. */
typedef struct tl_result {
	int status; /* exit status, or 128 + signal */
	char *out;  /* stdout */
	char *err;  /* stderr */
} tl_result;

/*
 * Runs $AUDSYNC_BIN --db conninfo ARGS... (NULL-terminated), with the
 * environment plus env (NULL or "NAME=value" strings, NULL-terminated),
 * and waits. Free with tl_result_free().
 */
tl_result tl_audsync(const char *conninfo, const char *const *env, ...)
	__attribute__((sentinel));
tl_result tl_audsync_argv(const char *conninfo, const char *const *env,
			  const char *const *args);
void tl_result_free(tl_result *r);

/* Starts audsync without waiting; output goes to /dev/null. */
pid_t tl_audsync_spawn(const char *conninfo, const char *const *env,
		       const char *const *args);
/* The same, with stderr (the log) going to the file log_path. */
pid_t tl_audsync_spawn_log(const char *conninfo, const char *const *env,
			   const char *const *args, const char *log_path);

/* A randomized test's seeds, split into loop tests (tcase_add_loop_test):
 * Check times out a test as a whole and cannot report one that ran past
 * 2^31 microseconds (36 minutes); it fails it ("Early exit with return
 * value 2") after every seed passed. tl_seed_chunks: how many loop tests
 * for seeds seeds, about per each; tl_seed_chunk: the i-th one's seeds,
 * from the *from-th, *count of them. Their sizes differ by one at most:
 * one test has them all when seeds <= per, else each has per / 2 or more. */
int tl_seed_chunks(int seeds, int per);
void tl_seed_chunk(int seeds, int chunks, int i, int *from, int *count);

/* Runs the suite (and frees it) as every test binary's main does:
 * returns EXIT_SUCCESS when no test failed. */
int tl_run_suite(Suite *s);

/* The whole of a file as a new string (caller frees); aborts the test
 * when it cannot be read. */
char *tl_read_file(const char *path);

/* 1 when haystack contains needle (NULL haystack: 0). */
int tl_contains(const char *haystack, const char *needle);

/* Bench support. Monotonic seconds. */
double tl_now_s(void);

/* A bench setting: the environment variable name as a whole number from
 * min to max, or dflt when it is unset or empty; anything else ends the
 * bench with one line that says what is wrong. */
long tl_env_long(const char *name, long dflt, long min, long max);

/*
 * CPU seconds of the test server's exited processes (its backends,
 * parallel workers and autovacuum workers), from the postmaster's
 * children times, or -1 when they cannot be read. Unlike wall time, this
 * holds on a machine that others share.
 */
double tl_server_cpu_seconds(void);

/* CPU seconds of process pid (children: of its ended children), from
 * /proc, or -1 when they cannot be read. */
double tl_process_cpu_seconds(long pid, int children);

/* Minor page faults: of the server's exited processes, as
 * tl_server_cpu_seconds() counts their CPU; of process pid (children: of
 * its ended children). -1 when they cannot be read. */
long long tl_server_faults(void);
long long tl_process_faults(long pid, int children);

/* Waits (up to 15 s) until db's other backends have ended and the
 * postmaster has reaped them, so that their CPU is in its children's. */
void tl_server_settle(const char *db);

#endif
