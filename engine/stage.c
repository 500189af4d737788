/* stage.c - the temporary tables of a sync's run, and every write to them */
#include "audsync/stage.h"

#include "audsync/db.h"

/* The session's tables (stage.h), empty. */
static const char *const reset_sql[] = {
	"CREATE TEMP TABLE IF NOT EXISTS audsync_stage ("
	" profile_id text NOT NULL, value jsonb, h bigint)",
	"CREATE TEMP TABLE IF NOT EXISTS audsync_d ("
	" new_p text, new jsonb, old_p text, old_t tid)",
	"CREATE TEMP TABLE IF NOT EXISTS audsync_touched (profile_id text,"
	" identifiers boolean NOT NULL DEFAULT false,"
	" fresh bigint NOT NULL DEFAULT 0)",
	"CREATE TEMP TABLE IF NOT EXISTS audsync_mark ("
	" snap pg_snapshot, digest text)",
	"TRUNCATE pg_temp.audsync_stage, pg_temp.audsync_d,"
	" pg_temp.audsync_touched, pg_temp.audsync_mark"
};

/* The head of each write; the rows follow. The diff's tables are made
 * from its rows, and dropped with its transaction. */
static const char *const write_sql[] = {
	[STAGE_MEMBERS] = "INSERT INTO pg_temp.audsync_stage (profile_id) ",
	[STAGE_VALUES] = "INSERT INTO pg_temp.audsync_stage"
			 " (profile_id, value, h) ",
	[STAGE_MEMBERS_DIFF] = "INSERT INTO pg_temp.audsync_d (new_p, old_p) ",
	[STAGE_VALUES_DIFF] = "INSERT INTO pg_temp.audsync_d"
			      " (new_p, new, old_p, old_t) ",
	[STAGE_TOUCHED] = "INSERT INTO pg_temp.audsync_touched"
			  " (profile_id, identifiers, fresh) ",
	[STAGE_MARK] = "INSERT INTO pg_temp.audsync_mark (snap, digest) ",
	[STAGE_CHANGES] = "CREATE TEMP TABLE audsync_chg ON COMMIT DROP AS ",
	[STAGE_MORE_CHANGES] = "INSERT INTO pg_temp.audsync_chg "
};

/* Statistics of the columns the next statements join, filter or sort
 * on: those of the values (jsonb, compared by value while they are
 * gathered) took half of an ANALYZE of the changes and no plan reads
 * them (doc/figures-log.md). */
static const char *const analyze_sql[] = {
	[STAGE_TABLE_D] = "ANALYZE pg_temp.audsync_d (new_p, old_p, old_t)",
	[STAGE_TABLE_TOUCHED] = "ANALYZE pg_temp.audsync_touched",
	[STAGE_TABLE_CHG] =
		"ANALYZE pg_temp.audsync_chg (profile_id, kind, old_t)"
};

/* How many of the four tables the session has: a connection kept from
 * sync to sync (a run of several, the daemon) makes them once, and
 * PostgreSQL does not notice "already exists" to the debug log each time;
 * a new one makes them empty, with nothing to TRUNCATE. */
static const char have_sql[] =
	"SELECT count(*) FROM pg_catalog.pg_class"
	" WHERE relnamespace = pg_catalog.pg_my_temp_schema()"
	" AND relname IN ('audsync_stage', 'audsync_d', 'audsync_touched',"
	" 'audsync_mark')";

int stage_reset(PGconn *conn, char *err, size_t errlen)
{
	size_t n = sizeof(reset_sql) / sizeof(*reset_sql), i = 0;
	PGresult *have =
		db_query(conn, "stage", have_sql, 0, NULL, err, errlen);
	long long tables;

	if (!have)
		return -1;
	tables = db_int(PQgetvalue(have, 0, 0));
	PQclear(have);
	if (tables == 4)
		i = n - 1; /* only the TRUNCATE */
	else if (tables == 0)
		n--; /* only the CREATEs */
	for (; i < n; i++)
		if (db_exec(conn, "stage", reset_sql[i], 0, NULL, err,
			    errlen) != 0)
			return -1;
	return 0;
}

void stage_put(buf *b, stage_write w)
{
	buf_puts(b, write_sql[w]);
}

int stage_exec(PGconn *conn, const char *what, stage_write w, const char *rows,
	       int nparams, const char *const *params, char *err, size_t errlen)
{
	buf sql;
	int rc;

	buf_init(&sql);
	stage_put(&sql, w);
	buf_puts(&sql, rows);
	rc = db_exec(conn, what, sql.data, nparams, params, err, errlen);
	buf_free(&sql);
	return rc;
}

int stage_analyze(PGconn *conn, const char *what, stage_table t, char *err,
		  size_t errlen)
{
	return db_exec(conn, what, analyze_sql[t], 0, NULL, err, errlen);
}
