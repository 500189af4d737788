/* check_db.c - a COPY fed while its rows are still being made (db.h):
 * the rows sent are written once the next statement on the connection
 * runs, a COPY that failed fails that statement with its own error, and a
 * ROLLBACK leaves nothing of it behind. Real PostgreSQL, the engine's own
 * calls. */
#include "audsync/db.h"
#include "audsync/errbuf.h"
#include "testlib.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char copy_t[] = "COPY t (k, v) FROM STDIN";
static const char copy_u[] = "COPY u (k) FROM STDIN";

static const char *db;
static PGconn *conn;
static char err[AUDSYNC_ERR_LEN];

static void setup(void)
{
	db = tl_new_db();
	tl_sql(db, "CREATE TABLE t (k int PRIMARY KEY, v text);"
		   "CREATE TABLE u (k int)");
	conn = db_connect(db, err, sizeof(err));
	ck_assert_msg(conn != NULL, "%s", err);
}

static void teardown(void)
{
	db_close(conn);
	conn = NULL;
}

static void send_rows(const char *sql, const char *rows)
{
	ck_assert_msg(db_copy_send(conn, "feed", sql, rows, strlen(rows), err,
				   sizeof(err)) == 0,
		      "%s", err);
}

/* The first column of the first row of sql, on the engine's connection. */
static long long count_on_conn(const char *sql)
{
	PGresult *r = db_query(conn, "count", sql, 0, NULL, err, sizeof(err));
	long long n;

	ck_assert_msg(r != NULL, "%s", err);
	n = db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

START_TEST(fed_rows_are_written_before_the_next_statement)
{
	char rows[64];
	int i;

	ck_assert_int_eq(
		db_exec(conn, "begin", "BEGIN", 0, NULL, err, sizeof(err)), 0);
	for (i = 1; i <= 3000; i++) {
		snprintf(rows, sizeof(rows), "%d\tv%d\n", i, i);
		send_rows(copy_t, rows);
	}
	/* another COPY first ends this one, and the feeding goes on in a
	 * new one */
	ck_assert_int_eq(
		db_copy_in(conn, "other", copy_u, "7\n", 2, err, sizeof(err)),
		0);
	send_rows(copy_t, "3001\tlast\n");
	ck_assert_int_eq(count_on_conn("SELECT count(*) FROM t"), 3001);
	ck_assert_int_eq(count_on_conn("SELECT count(*) FROM u"), 1);
	ck_assert_int_eq(
		db_exec(conn, "commit", "COMMIT", 0, NULL, err, sizeof(err)),
		0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT sum(k) FROM t"),
			 3001LL * 3002 / 2);
}
END_TEST

START_TEST(a_failed_feed_fails_the_next_statement)
{
	PGresult *r;

	send_rows(copy_t, "1\ta\n");
	send_rows(copy_t, "1\tb\n"); /* the same key twice */
	r = db_query(conn, "count", "SELECT count(*) FROM t", 0, NULL, err,
		     sizeof(err));
	ck_assert_ptr_null(r);
	ck_assert_msg(tl_contains(err, "feed: ") &&
			      tl_contains(err, "duplicate key"),
		      "the error does not name the COPY: %s", err);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s", err);
	/* the connection is usable again, and nothing was written */
	ck_assert_int_eq(count_on_conn("SELECT count(*) FROM t"), 0);
}
END_TEST

START_TEST(a_rollback_while_feeding_leaves_nothing)
{
	ck_assert_int_eq(
		db_exec(conn, "begin", "BEGIN", 0, NULL, err, sizeof(err)), 0);
	send_rows(copy_t, "1\ta\n2\tb\n");
	/* as a failed run ends (sync.c) */
	PQclear(PQexec(conn, "ROLLBACK"));
	ck_assert_int_eq(count_on_conn("SELECT count(*) FROM t"), 0);
	ck_assert_int_eq(db_copy_end(conn, err, sizeof(err)), 0);
	send_rows(copy_t, "3\tc\n");
	ck_assert_int_eq(db_copy_end(conn, err, sizeof(err)), 0);
	ck_assert_int_eq(tl_sql_int(db, "SELECT sum(k) FROM t"), 3);
}
END_TEST

static Suite *db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("copy");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, fed_rows_are_written_before_the_next_statement);
	tcase_add_test(tc, a_failed_feed_fails_the_next_statement);
	tcase_add_test(tc, a_rollback_while_feeding_leaves_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(db_suite());
}
