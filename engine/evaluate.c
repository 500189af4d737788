/* evaluate.c - running a computation's definition into the engine's stage */
#include "audsync/evaluate.h"

#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/diff.h"
#include "audsync/naming.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMESTAMPTZOID	  1184
#define TIMESTAMPOID	  1114
#define DATEOID		  1082
#define TEXTOID		  25
#define MAX_TRAIT_COLUMNS 64

/* h: the checksum of (profile_id, value), as snapshot_members.h; v is the
 * value's SQL expression. */
#define CHECKSUM(v)                                                            \
	" hashtextextended(d.profile_id::text || E'\\x1f' || (" v ")::text, 7)"

/* The stage, and the rows of the diff (diff.c), empty. */
static const char *const stage_sql[] = {
	"CREATE TEMP TABLE IF NOT EXISTS audsync_stage ("
	" profile_id text NOT NULL, value jsonb, h bigint NOT NULL)",
	"CREATE TEMP TABLE IF NOT EXISTS audsync_d ("
	" new_p text, new jsonb, old_p text, old_t tid)",
	"TRUNCATE pg_temp.audsync_stage, pg_temp.audsync_d"
};

/*
 * What every evaluation returns beside its rows: their count (n.n) and
 * checksum sum (n.s); whether every member is read again (k.whole: $4, a
 * resync, or an empty snapshot, a first sync); and whether count and sum
 * are the last run's (k.same: nothing changed, sql/004_rows_checksum.sql).
 * $3 is the sync. diff.c goes by these.
 */
static const char state_sql[] =
	" k AS (SELECT $4::boolean OR coalesce(st.snap_count, 0) = 0 AS whole,"
	"  coalesce(st.rows_count = n.n AND st.rows_sum = n.s, false) AS same"
	"  FROM n LEFT JOIN audsync.sync_state st"
	"  ON st.sync_id = $3::integer)";
static const char result_sql[] = " SELECT n.n, n.s, k.whole, k.same FROM n, k";

/*
 * An audience's rows (r) are held once, in memory, and diffed as they
 * come: unless nothing changed, one hash join on (checksum, profile_id)
 * keeps, in audsync_d, the rows the snapshot lacks and the snapshot rows
 * the definition no longer names, with their addresses (diff.c). Only
 * when every member is read are they staged, for diff.c's full diff;
 * the stage leaves their value, {key: true} ($5), NULL.
 */
static const char audience_diff_sql[] =
	", staged AS (INSERT INTO pg_temp.audsync_stage (profile_id, h)"
	"  SELECT profile_id, h FROM r WHERE (SELECT whole FROM k)),"
	" differed AS (INSERT INTO pg_temp.audsync_d (new_p, old_p, old_t)"
	"  SELECT s.profile_id, m.profile_id, m.ctid FROM r s"
	"  FULL JOIN (SELECT ctid, profile_id, h"
	"   FROM audsync.snapshot_members WHERE sync_id = $3::integer) m"
	"  ON m.h = s.h AND m.profile_id = s.profile_id"
	"  WHERE (s.h IS NULL OR m.h IS NULL)"
	"  AND (SELECT NOT whole AND NOT same FROM k))";

/* Appends the count and sum of rows (a WITH query of h) and the state
 * compared with them. */
static void put_state(buf *b, const char *rows)
{
	buf_printf(b,
		   ", n AS (SELECT count(*) AS n, coalesce(sum(h), 0) AS s"
		   " FROM %s),%s",
		   rows, state_sql);
}

/* A trait has one row per profile; an index would cost more than this
 * one pass over the stage. */
static const char duplicate_sql[] =
	"SELECT profile_id FROM pg_temp.audsync_stage"
	" GROUP BY profile_id HAVING count(*) > 1 LIMIT 1";

/* The value columns of a trait definition and their keys. */
typedef struct trait_cols {
	int n;
	int field[MAX_TRAIT_COLUMNS];
	char key[MAX_TRAIT_COLUMNS][128];
} trait_cols;

/* PostgreSQL values as Mixpanel wants them: timestamps as ISO-8601 text
 * in UTC without a zone (Mixpanel's date format), the rest by to_jsonb,
 * which keeps numbers numbers, booleans booleans, arrays lists. */
static void put_value_expr(buf *b, PGconn *conn, const char *column,
			   unsigned int type)
{
	char *id = PQescapeIdentifier(conn, column, strlen(column));

	if (!id)
		abort();
	if (type == TIMESTAMPTZOID)
		buf_printf(b,
			   "to_jsonb(to_char(d.%s AT TIME ZONE 'UTC', "
			   "'YYYY-MM-DD\"T\"HH24:MI:SS'))",
			   id);
	else if (type == TIMESTAMPOID || type == DATEOID)
		buf_printf(b,
			   "to_jsonb(to_char(d.%s, "
			   "'YYYY-MM-DD\"T\"HH24:MI:SS'))",
			   id);
	else
		buf_printf(b, "to_jsonb(d.%s)", id);
	PQfreemem(id);
}

/* The definition without trailing blanks and semicolons, so that it can
 * stand inside parentheses. */
static void put_definition(buf *b, const char *sql)
{
	size_t n = strlen(sql);

	while (n > 0 && strchr(" \t\r\n;", sql[n - 1]))
		n--;
	buf_puts(b, "(\n");
	buf_append(b, sql, n);
	buf_puts(b, "\n) AS d"); /* the newline ends a trailing -- comment */
}

static int find_field(const PGresult *desc, const char *name)
{
	int i;

	for (i = 0; i < PQnfields(desc); i++)
		if (strcmp(PQfname(desc, i), name) == 0)
			return i;
	return -1;
}

/* Decides the trait's keys from the definition's columns. */
static int trait_columns(trait_cols *tc, const PGresult *desc,
			 const sync_def *s, char *err, size_t errlen)
{
	int i, j, value = find_field(desc, "value");

	tc->n = 0;
	if (value >= 0 && PQnfields(desc) == 2) {
		tc->field[0] = value;
		snprintf(tc->key[0], sizeof(tc->key[0]), "%s", s->key);
		tc->n = 1;
		return 0;
	}
	for (i = 0; i < PQnfields(desc); i++) {
		if (strcmp(PQfname(desc, i), "profile_id") == 0)
			continue;
		if (tc->n == MAX_TRAIT_COLUMNS ||
		    naming_key(tc->key[tc->n], sizeof(tc->key[0]),
			       PQfname(desc, i)) <= 0) {
			snprintf(err, errlen,
				 "computation %s: column \"%s\" "
				 "cannot be a trait key (too many columns, or "
				 "no letter or digit)",
				 s->key, PQfname(desc, i));
			return -1;
		}
		for (j = 0; j < tc->n; j++) {
			if (strcmp(tc->key[j], tc->key[tc->n]) == 0) {
				snprintf(err, errlen,
					 "computation %s: columns "
					 "give the same trait key %s twice",
					 s->key, tc->key[j]);
				return -1;
			}
		}
		tc->field[tc->n++] = i;
	}
	if (tc->n == 0) {
		snprintf(err, errlen,
			 "computation %s: a trait definition "
			 "returns profile_id and value, or profile_id and "
			 "named columns",
			 s->key);
		return -1;
	}
	return 0;
}

/* Builds the statement that runs the definition; params[4..] are an
 * audience's value or a trait's keys. A profile named by several rows
 * stays several rows: the diff makes members distinct where it must,
 * which is far cheaper than here for them all. */
static int build_insert(buf *b, const char **params, int *nparams, PGconn *conn,
			const PGresult *desc, const sync_def *s, trait_cols *tc,
			char *err, size_t errlen)
{
	int i;

	if (!s->is_trait) {
		buf_puts(b, "WITH r AS MATERIALIZED (SELECT"
			    " d.profile_id::text AS profile_id,");
		buf_puts(b, CHECKSUM("$5::jsonb") " AS h FROM ");
		put_definition(b, s->definition_sql);
		buf_puts(b, " WHERE d.profile_id IS NOT NULL)");
		put_state(b, "r");
		buf_puts(b, audience_diff_sql);
		buf_puts(b, result_sql);
		*nparams = 5;
		return 0;
	}
	if (trait_columns(tc, desc, s, err, errlen) != 0)
		return -1;
	buf_puts(b, "WITH ins AS (INSERT INTO pg_temp.audsync_stage"
		    " (profile_id, value, h) SELECT d.profile_id::text, x.v,");
	buf_puts(b, CHECKSUM("x.v") " FROM ");
	put_definition(b, s->definition_sql);
	buf_puts(b, " CROSS JOIN LATERAL (SELECT jsonb_strip_nulls("
		    "jsonb_build_object(");
	for (i = 0; i < tc->n; i++) {
		buf_printf(b, "%s$%d::text, ", i ? ", " : "", i + 5);
		put_value_expr(b, conn, PQfname(desc, tc->field[i]),
			       PQftype(desc, tc->field[i]));
		params[i + 4] = tc->key[i];
	}
	buf_puts(b, ")) AS v) AS x WHERE d.profile_id IS NOT NULL"
		    " AND x.v <> '{}'::jsonb");
	/* Staged (the duplicate check below reads them), counted and
	 * summed as they pass. */
	buf_puts(b, " RETURNING h)");
	put_state(b, "ins");
	buf_puts(b, result_sql);
	*nparams = tc->n + 4;
	return 0;
}

/* One line for a failed definition, naming the computation. */
static void definition_error(char *err, size_t errlen, PGconn *conn,
			     const PGresult *res, const sync_def *s,
			     const char *timeout)
{
	const char *state = db_sqlstate(res);
	char what[200];

	if (strcmp(state, "57014") == 0) {
		snprintf(err, errlen,
			 "computation %s: the definition ran past "
			 "its statement timeout (%s) and was cancelled",
			 s->key, timeout);
	} else if (strcmp(state, "25006") == 0 ||
		   (strcmp(state, "0A000") == 0 && res &&
		    strstr(PQresultErrorMessage(res), "data-modifying"))) {
		db_error(what, sizeof(what), conn, res, "write refused");
		snprintf(err, errlen,
			 "computation %s: the definition tried to "
			 "write (%s): definitions may only read",
			 s->key, what);
	} else {
		snprintf(what, sizeof(what), "computation %s: definition_sql",
			 s->key);
		db_error(err, errlen, conn, res, what);
	}
}

/* Prepares the definition alone to learn its columns. */
static PGresult *describe(PGconn *conn, const sync_def *s, char *err,
			  size_t errlen)
{
	const unsigned int types[2] = { TIMESTAMPTZOID, TIMESTAMPTZOID };
	PGresult *res = PQprepare(conn, "", s->definition_sql, 2, types);

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		definition_error(err, errlen, conn, res, s, "");
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	res = PQdescribePrepared(conn, "");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		definition_error(err, errlen, conn, res, s, "");
		PQclear(res);
		return NULL;
	}
	if (find_field(res, "profile_id") < 0) {
		snprintf(err, errlen,
			 "computation %s: the definition returns "
			 "no profile_id column",
			 s->key);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Fails when the trait has two rows for one profile: which value would
 * Mixpanel get? */
static int check_duplicates(PGconn *conn, const sync_def *s, char *err,
			    size_t errlen)
{
	PGresult *r = db_query(conn, "trait rows", duplicate_sql, 0, NULL, err,
			       errlen);
	int rc = 0;

	if (!r)
		return -1;
	if (PQntuples(r) > 0) {
		snprintf(err, errlen,
			 "computation %s: the definition returned "
			 "two rows for profile_id %s: a trait needs one row "
			 "per profile",
			 s->key, PQgetvalue(r, 0, 0));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static const char *statement_timeout(void)
{
	const char *t = getenv("AUDSYNC_STATEMENT_TIMEOUT");

	return t && *t ? t : EVALUATE_DEFAULT_TIMEOUT;
}

/* Runs the load in its own read-only transaction. */
static int run_insert(stage_sums *out, PGconn *conn, const sync_def *s,
		      const char *sql, int nparams, const char **params,
		      char *err, size_t errlen)
{
	unsigned int types[MAX_TRAIT_COLUMNS + 4] = { TIMESTAMPTZOID,
						      TIMESTAMPTZOID };
	const char *timeout = statement_timeout();
	PGresult *res = NULL;
	int i, rc = -1;

	for (i = 2; i < nparams; i++)
		types[i] = TEXTOID;
	if (db_exec(conn, "evaluate", "BEGIN READ ONLY", 0, NULL, err,
		    errlen) != 0)
		return -1;
	/* The hash join of an audience's rows with the snapshot, and the
	 * rows held for it, in memory (diff.h). */
	if (db_exec(conn, "statement timeout",
		    "SELECT set_config('statement_timeout', $1, true),"
		    " set_config('work_mem', '" DIFF_WORK_MEM "', true)",
		    1, &timeout, err, errlen) != 0)
		goto out;
	res = PQexecParams(conn, sql, nparams, types, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		definition_error(err, errlen, conn, res, s, timeout);
		goto out;
	}
	snprintf(out->rows, sizeof(out->rows), "%s", PQgetvalue(res, 0, 0));
	snprintf(out->sum, sizeof(out->sum), "%s", PQgetvalue(res, 0, 1));
	out->full = PQgetvalue(res, 0, 2)[0] == 't';
	out->same = PQgetvalue(res, 0, 3)[0] == 't';
	if (s->is_trait && check_duplicates(conn, s, err, errlen) != 0)
		goto out;
	rc = db_exec(conn, "evaluate", "COMMIT", 0, NULL, err, errlen);
out:
	PQclear(res);
	if (rc != 0)
		PQclear(PQexec(conn, "ROLLBACK"));
	return rc;
}

int evaluate_sync(stage_sums *out, PGconn *conn, const sync_def *s, int every,
		  char *err, size_t errlen)
{
	const char *params[MAX_TRAIT_COLUMNS + 4];
	char sync_id[16];
	trait_cols tc;
	PGresult *desc = NULL;
	buf sql, member;
	int nparams = 0, rc = -1, i;

	buf_init(&sql);
	buf_init(&member);
	for (i = 0; i < (int)(sizeof(stage_sql) / sizeof(*stage_sql)); i++)
		if (db_exec(conn, "stage", stage_sql[i], 0, NULL, err,
			    errlen) != 0)
			goto out;
	if (!s->definition_sql) {
		snprintf(err, errlen, "computation %s: no definition_sql",
			 s->key);
		goto out;
	}
	desc = describe(conn, s, err, errlen);
	if (!desc)
		goto out;
	if (build_insert(&sql, params, &nparams, conn, desc, s, &tc, err,
			 errlen) != 0)
		goto out;
	params[0] = s->as_of;
	params[1] = s->window_start;
	buf_puts(&member, "{");
	buf_json_str(&member, s->key);
	buf_puts(&member, ":true}");
	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	params[2] = sync_id;
	params[3] = every ? "t" : "f";
	if (!s->is_trait)
		params[4] = member.data;
	rc = run_insert(out, conn, s, sql.data, nparams, params, err, errlen);
out:
	PQclear(desc);
	buf_free(&sql);
	buf_free(&member);
	return rc;
}

int evaluate_check(PGconn *conn, const sync_def *s, char *err, size_t errlen)
{
	const char *params[MAX_TRAIT_COLUMNS + 4];
	trait_cols tc;
	PGresult *desc;
	buf sql;
	int nparams = 0, rc;

	if (!s->definition_sql) {
		snprintf(err, errlen, "computation %s: no definition_sql",
			 s->key);
		return -1;
	}
	desc = describe(conn, s, err, errlen);
	if (!desc)
		return -1;
	buf_init(&sql);
	rc = build_insert(&sql, params, &nparams, conn, desc, s, &tc, err,
			  errlen);
	buf_free(&sql);
	PQclear(desc);
	return rc;
}
