/* evaluate.c - running a computation's definition into the engine's stage */
#include "audsync/evaluate.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/diff.h"
#include "audsync/errbuf.h"
#include "audsync/incremental.h"
#include "audsync/naming.h"
#include "audsync/rule_catalog.h"
#include "audsync/settings.h"
#include "audsync/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMESTAMPTZOID	  1184
#define TIMESTAMPOID	  1114
#define DATEOID		  1082
#define TEXTOID		  25
#define MAX_TRAIT_COLUMNS 64
/* A rule's values follow $3 (the sync) and $4 (its one trait key). */
#define RULE_FIRST_PARAM 5

/* h: the checksum of (profile_id, value), as snapshot_members.h; v is the
 * value's SQL expression. */
#define CHECKSUM(v)                                                            \
	" hashtextextended(d.profile_id::text || E'\\x1f' || (" v ")::text, 7)"

/* Whether every member is read again: a resync ($2), or an empty
 * snapshot, a first sync. */
static const char whole_sql[] =
	"SELECT $2::boolean OR coalesce((SELECT snap_count"
	" FROM audsync.sync_state WHERE sync_id = $1::integer), 0) = 0";

/*
 * Otherwise an audience's rows are diffed as they come, by one hash join
 * with the snapshot on profile_id: audsync_d gets the rows the snapshot
 * lacks and the snapshot rows the definition no longer names (diff.c
 * reads those few rows by their key). Nothing else holds the rows, so a
 * run that changes little costs the definition and one pass of the join,
 * whose members come from the primary key's index alone, a tenth of the
 * table (sql/019_ledger_members_index.sql). Every snapshot row of an
 * audience holds {key: true}: a computation keeps its kind
 * (sql/005_audience_join.sql). $3 is the sync.
 */
static const char audience_diff_sql[] =
	"SELECT s.profile_id, m.profile_id"
	" FROM (SELECT d.profile_id::text AS profile_id FROM ";
/* ... the definition (AS d), then: */
#define AUDIENCE_JOIN_SQL(members)                                             \
	" WHERE d.profile_id IS NOT NULL) s"                                   \
	" FULL JOIN (" members ") m ON m.profile_id = s.profile_id"
#define AUDIENCE_SNAPSHOT_SQL(members)                                         \
	AUDIENCE_JOIN_SQL(members)                                             \
	" WHERE s.profile_id IS NULL OR m.profile_id IS NULL"
#define LEDGER_MEMBERS                                                         \
	"SELECT profile_id FROM audsync.snapshot_members"                      \
	" WHERE sync_id = $3::integer AND member"
static const char audience_snapshot_sql[] =
	AUDIENCE_SNAPSHOT_SQL(LEDGER_MEMBERS);
/* An incremental run's definition names only touched profiles: the
 * snapshot's others keep their rows. Many touched profiles are joined
 * with the members as those come from the key's index; a few are looked
 * up there one by one (evaluate.h). Indexed by many or few. A rule's may
 * name profiles it has not found in the identity graph (rules.h,
 * touched_ungraphed): of those that enter, the calls keep the graph's
 * (EVALUATE_UNGRAPHED, calls.c), which read every entering profile's
 * identifiers from the identity index anyway. */
static const char *const audience_touched_sql[2] = {
	AUDIENCE_SNAPSHOT_SQL(LEDGER_OF_TOUCHED(LEDGER_MEMBERS)),
	AUDIENCE_SNAPSHOT_SQL(LEDGER_OF_FEW(LEDGER_MEMBERS))
};

/* A trait has one row per profile; an index would cost more than this
 * one pass over the stage. */
static const char duplicate_sql[] =
	"SELECT profile_id FROM pg_temp.audsync_stage"
	" GROUP BY profile_id HAVING count(*) > 1 LIMIT 1";

/* The value columns of a trait definition and their keys. */
typedef struct trait_cols {
	int n;
	int field[MAX_TRAIT_COLUMNS];
	char key[MAX_TRAIT_COLUMNS][NAMING_KEY_MAX + 1];
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
		const char *why = NULL;

		if (strcmp(PQfname(desc, i), "profile_id") == 0)
			continue;
		if (tc->n == MAX_TRAIT_COLUMNS)
			why = "more than 64 trait columns";
		else if (naming_key(tc->key[tc->n], sizeof(tc->key[0]),
				    PQfname(desc, i)) < 0)
			why = "its key would be longer than 255 bytes";
		else
			why = naming_key_problem(tc->key[tc->n]);
		if (why) {
			snprintf(err, errlen,
				 "computation %s: column \"%.300s\" "
				 "cannot be a trait key: %s",
				 s->key, PQfname(desc, i), why);
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

int evaluate_claimed(const sync_def *s, const PGresult *r, char *err,
		     size_t errlen)
{
	snprintf(err, errlen,
		 "computation %s: a trait column gives the key %s, which "
		 "computation %s already sends: rename the column",
		 s->key, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	return -1;
}

/* Fails when a trait column's key is another computation's key, or, in
 * identify mode, a profile property another trait's column sets in the
 * same destination (audsync.computation_keys): two computations would
 * write one Mixpanel property. In track mode a column is a property of
 * the trait's own events. */
static int check_other_keys(PGconn *conn, const trait_cols *tc,
			    const sync_def *s, char *err, size_t errlen)
{
	char id[16], dest[16];
	const char *p[4] = { id, NULL,
			     s->mode == SYNC_MODE_IDENTIFY ? "t" : "f", dest };
	PGresult *r;
	buf keys;
	int i, rc = 0;

	if (tc->n == 1 && strcmp(tc->key[0], s->key) == 0)
		return 0;
	snprintf(id, sizeof(id), "%d", s->computation_id);
	snprintf(dest, sizeof(dest), "%d", s->dest->id);
	buf_init(&keys);
	for (i = 0; i < tc->n; i++)
		buf_printf(&keys, "%s%s", i ? "," : "", tc->key[i]);
	p[1] = keys.data;
	r = db_query(conn, "trait keys",
		     "SELECT key, NULL FROM audsync.computations WHERE id <> $1"
		     " AND key = ANY (string_to_array($2, ','))"
		     " UNION ALL SELECT k.key, c.key"
		     " FROM audsync.computation_keys k"
		     " JOIN audsync.computations c ON c.id = k.computation_id"
		     " WHERE $3 AND k.computation_id <> $1"
		     " AND k.destination_id = $4"
		     " AND k.key = ANY (string_to_array($2, ',')) LIMIT 1",
		     4, p, err, errlen);
	if (!r) {
		rc = -1;
	} else if (PQntuples(r) > 0 && PQgetisnull(r, 0, 1)) {
		snprintf(err, errlen,
			 "computation %s: a trait column gives the key %s, "
			 "which is another computation's key: rename the "
			 "column",
			 s->key, PQgetvalue(r, 0, 0));
		rc = -1;
	} else if (PQntuples(r) > 0) {
		rc = evaluate_claimed(s, r, err, errlen);
	}
	PQclear(r);
	buf_free(&keys);
	return rc;
}

/* Builds the statement that runs the definition; params[3..] are a
 * trait's keys. whole: what is staged (evaluate.h). A profile named by
 * several rows stays several rows: the diff
 * makes members distinct where it must, which is far cheaper than here
 * for them all. */
static int build_insert(buf *b, const char **params, int *nparams, PGconn *conn,
			const PGresult *desc, const sync_def *s, int whole,
			trait_cols *tc, char *err, size_t errlen)
{
	int i;

	if (!s->is_trait) {
		/* The stage leaves the value, {key: true}, NULL, and an
		 * audience needs no checksum. */
		stage_put(b, whole == EVALUATE_WHOLE ? STAGE_MEMBERS
						     : STAGE_MEMBERS_DIFF);
		buf_puts(b, whole == EVALUATE_WHOLE
				    ? "SELECT d.profile_id::text FROM "
				    : audience_diff_sql);
		put_definition(b, s->definition_sql);
		buf_puts(b,
			 whole == EVALUATE_WHOLE
				 ? " WHERE d.profile_id IS NOT NULL"
			 : whole == EVALUATE_CHANGES
				 ? audience_snapshot_sql
				 : audience_touched_sql[whole == EVALUATE_FEW]);
		*nparams = 3;
		return 0;
	}
	if (trait_columns(tc, desc, s, err, errlen) != 0 ||
	    check_other_keys(conn, tc, s, err, errlen) != 0)
		return -1;
	stage_put(b, STAGE_VALUES);
	buf_puts(b, "SELECT d.profile_id::text, x.v,");
	buf_puts(b, CHECKSUM("x.v") " FROM ");
	put_definition(b, s->definition_sql);
	buf_puts(b, " CROSS JOIN LATERAL (SELECT jsonb_strip_nulls("
		    "jsonb_build_object(");
	for (i = 0; i < tc->n; i++) {
		buf_printf(b, "%s$%d::text, ", i ? ", " : "", i + 4);
		put_value_expr(b, conn, PQfname(desc, tc->field[i]),
			       PQftype(desc, tc->field[i]));
		params[i + 3] = tc->key[i];
	}
	buf_puts(b, ")) AS v) AS x WHERE d.profile_id IS NOT NULL"
		    " AND x.v <> '{}'::jsonb");
	*nparams = tc->n + 3;
	return 0;
}

/* One line for a failed definition, naming the computation. */
/* A data-modifying WITH nested in the definition: PostgreSQL refuses it
 * while parsing (feature_not_supported, raised by its CTE parser) before
 * the read-only transaction would. Told apart by SQLSTATE and source file,
 * never by the message, which lc_messages may translate. */
static int cte_write(const char *state, const PGresult *res)
{
	const char *file =
		res ? PQresultErrorField(res, PG_DIAG_SOURCE_FILE) : NULL;

	return strcmp(state, "0A000") == 0 && file &&
	       strcmp(file, "parse_cte.c") == 0;
}

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
	} else if (strcmp(state, "25006") == 0 || cte_write(state, res)) {
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

/* The types of n parameters: two times, then text. Caller frees. */
static unsigned int *param_types(int n)
{
	unsigned int *types = alloc_calloc((size_t)n + 2, sizeof(*types));
	int i;

	for (i = 0; i < n; i++)
		types[i] = i < 2 ? TIMESTAMPTZOID : TEXTOID;
	return types;
}

/* Prepares the definition alone to learn its columns; a compiled rule
 * (rule: NULL for none) binds its values after the engine's own. */
static PGresult *describe(PGconn *conn, const sync_def *s,
			  const rules_sql *rule, char *err, size_t errlen)
{
	int n = rule ? rule->first - 1 + rule->nparams : 2;
	unsigned int *types = param_types(n);
	PGresult *res = PQprepare(conn, "", s->definition_sql, n, types);

	free(types);

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

/* AUDSYNC_STATEMENT_TIMEOUT in milliseconds, as PostgreSQL reads it;
 * main() refused a bad value before any run. */
static int statement_timeout(char *out, size_t outlen, char *err, size_t errlen)
{
	long ms;

	if (settings_env_long(&ms, "AUDSYNC_STATEMENT_TIMEOUT", err, errlen) !=
	    0)
		return -1;
	snprintf(out, outlen, "%ld", ms);
	return 0;
}

/* Large objects are data a read-only transaction may still create
 * (lo_from_bytea): their count and oids before and after the definition
 * tell whether it did. */
static int lo_state(char *out, size_t len, PGconn *conn, char *err,
		    size_t errlen)
{
	PGresult *r =
		db_query(conn, "evaluate",
			 "SELECT count(*) || '/' || coalesce(sum(oid::int8),"
			 " 0) FROM pg_largeobject_metadata",
			 0, NULL, err, errlen);

	if (!r)
		return -1;
	snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* Fails when the definition changed its session (before: the state
 * read before its transaction, compared after it): a setting, the role,
 * an advisory lock... The reset that follows every definition puts them
 * back. */
static int check_session(PGconn *conn, const PGresult *before,
			 const sync_def *s, char *err, size_t errlen)
{
	PGresult *after = db_session_state(conn, err, errlen);
	const char *what;

	if (!after)
		return -1;
	what = db_session_change(before, after);
	if (what)
		snprintf(err, errlen,
			 "computation %s: the definition changed the engine's "
			 "session (%.64s): definitions may only read, and "
			 "the session is not theirs to change",
			 s->key, what);
	PQclear(after);
	return what ? -1 : 0;
}

/* Runs the load in its own read-only transaction, then puts the session
 * back as it was, whatever the definition did to it. An incremental run
 * (touched) is small by construction: compiling it (JIT) would cost more
 * than it saves, loading the compiler first. */
static int run_insert(PGconn *conn, const sync_def *s, const char *sql,
		      int nparams, const char **params, int touched, char *err,
		      size_t errlen)
{
	const char *timeout = settings_env("AUDSYNC_STATEMENT_TIMEOUT");
	char ms[24], lo_before[64], lo_after[64], why[AUDSYNC_ERR_LEN];
	const char *set[2] = { ms, touched ? "t" : "f" };
	unsigned int *types;
	PGresult *res = NULL, *state = NULL;
	int rc = -1;

	if (statement_timeout(ms, sizeof(ms), err, errlen) != 0)
		return -1;
	/* Outside the transaction: a definition may change a setting for
	 * its own transaction (set_config(..., true)), not for the
	 * session. */
	state = db_session_state(conn, err, errlen);
	if (!state)
		return -1;
	types = param_types(nparams);
	if (db_exec(conn, "evaluate", "BEGIN READ ONLY", 0, NULL, err,
		    errlen) != 0) {
		free(types);
		PQclear(state);
		return -1;
	}
	/* The hash join of an audience's rows with the snapshot, in memory
	 * (diff.h). */
	if (db_exec(conn, "statement timeout",
		    "SELECT set_config('statement_timeout', $1, true),"
		    " set_config('work_mem', '" DIFF_WORK_MEM "', true),"
		    " set_config('jit', CASE WHEN $2::boolean THEN 'off'"
		    "  ELSE current_setting('jit') END, true)",
		    2, set, err, errlen) != 0 ||
	    lo_state(lo_before, sizeof(lo_before), conn, err, errlen) != 0)
		goto out;
	res = PQexecParams(conn, sql, nparams, types, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		definition_error(err, errlen, conn, res, s, timeout);
		goto out;
	}
	if (lo_state(lo_after, sizeof(lo_after), conn, err, errlen) != 0)
		goto out;
	if (strcmp(lo_before, lo_after) != 0) {
		snprintf(err, errlen,
			 "computation %s: the definition tried to write (large "
			 "objects): definitions may only read",
			 s->key);
		goto out;
	}
	if (s->is_trait && check_duplicates(conn, s, err, errlen) != 0)
		goto out;
	rc = db_exec(conn, "evaluate", "COMMIT", 0, NULL, err, errlen);
	/* After the commit: what the definition changed for its session
	 * outlives its transaction. */
	if (rc == 0)
		rc = check_session(conn, state, s, err, errlen);
out:
	PQclear(res);
	PQclear(state);
	free(types);
	if (rc != 0)
		PQclear(PQexec(conn, "ROLLBACK"));
	if (db_session_reset(conn, why, sizeof(why)) != 0) {
		if (rc == 0) /* else the definition's error says more */
			snprintf(err, errlen, "%s", why);
		rc = -1;
	}
	return rc;
}

/* Sets *whole: every member is read again (a resync asks it, or nothing
 * was synced yet). */
static int read_whole(int *whole, PGconn *conn, const char *sync_id, int every,
		      char *err, size_t errlen)
{
	const char *p[2] = { sync_id, every ? "t" : "f" };
	PGresult *r =
		db_query(conn, "sync state", whole_sql, 2, p, err, errlen);

	if (!r)
		return -1;
	*whole = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return 0;
}

/* d: s with its definition; a rule (rules.h) is compiled into *rule, which
 * owns the text, and its values go after the engine's parameters. */
static int definition_of(sync_def *d, rules_sql *rule, PGconn *conn,
			 const sync_def *s, char *err, size_t errlen)
{
	*d = *s;
	memset(rule, 0, sizeof(*rule));
	if (s->has_rule) {
		if (rule_catalog_compile(rule, conn, s->key, RULE_FIRST_PARAM,
					 err, errlen) != 0)
			return -1;
		d->definition_sql = rule->sql;
	} else if (!s->definition_sql) {
		snprintf(err, errlen, "computation %s: no definition_sql",
			 s->key);
		return -1;
	}
	return 0;
}

/* The parameters: the engine's, then a rule's values. Caller frees. */
static const char **all_params(int *n, const rules_sql *rule)
{
	int total = rule->sql ? RULE_FIRST_PARAM - 1 + rule->nparams
			      : MAX_TRAIT_COLUMNS + 3;
	const char **p = alloc_calloc((size_t)total + 1, sizeof(*p));
	int i;

	for (i = 0; rule->sql && i < rule->nparams; i++)
		p[RULE_FIRST_PARAM - 1 + i] = rule->params[i];
	if (rule->sql)
		*n = total;
	return p;
}

/* The keys of an identify trait's columns but its own key, joined by
 * commas, or NULL. */
static char *column_keys(const trait_cols *tc, const sync_def *s)
{
	buf b;
	int i;

	buf_init(&b);
	for (i = 0; s->is_trait && s->mode == SYNC_MODE_IDENTIFY && i < tc->n;
	     i++)
		if (strcmp(tc->key[i], s->key) != 0)
			buf_printf(&b, "%s%s", b.len ? "," : "", tc->key[i]);
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

int evaluate_sync(int *whole, char **columns, PGconn *conn, const sync_def *s,
		  int every, char *err, size_t errlen)
{
	const char **params = NULL;
	char sync_id[16];
	trait_cols tc;
	PGresult *desc = NULL;
	rules_sql rule;
	sync_def d;
	buf sql;
	int nparams = 0, rule_n = 0, rc = -1, touched = 0;

	buf_init(&sql);
	memset(&rule, 0, sizeof(rule));
	*columns = NULL;
	if (stage_reset(conn, err, errlen) != 0 ||
	    definition_of(&d, &rule, conn, s, err, errlen) != 0)
		goto out;
	params = all_params(&rule_n, &rule);
	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	desc = describe(conn, &d, rule.sql ? &rule : NULL, err, errlen);
	if (!desc ||
	    read_whole(whole, conn, sync_id, every, err, errlen) != 0 ||
	    (rule.sql && incremental_prepare(&touched, conn, s, &rule, *whole,
					     err, errlen) != 0))
		goto out;
	if (touched) {
		d.definition_sql = touched == INCREMENTAL_FEW
					   ? rule.few_sql
					   : rule.touched_sql;
		*whole = touched == INCREMENTAL_FEW ? EVALUATE_FEW
						    : EVALUATE_TOUCHED;
	}
	if (build_insert(&sql, params, &nparams, conn, desc, &d, *whole, &tc,
			 err, errlen) != 0)
		goto out;
	params[0] = s->as_of;
	params[1] = s->window_start;
	params[2] = sync_id;
	rc = run_insert(conn, &d, sql.data, rule.sql ? rule_n : nparams, params,
			touched, err, errlen);
	if (rc == 0)
		*columns = column_keys(&tc, s);
	if (rc == 0 && touched && rule.touched_ungraphed)
		*whole |= EVALUATE_UNGRAPHED;
out:
	PQclear(desc);
	free(params);
	rules_sql_free(&rule);
	buf_free(&sql);
	return rc;
}

int evaluate_check(PGconn *conn, const sync_def *s, char *err, size_t errlen)
{
	const char **params;
	trait_cols tc;
	PGresult *desc;
	rules_sql rule;
	sync_def d;
	buf sql;
	int nparams = 0, rule_n = 0, rc;

	if (definition_of(&d, &rule, conn, s, err, errlen) != 0)
		return -1;
	params = all_params(&rule_n, &rule);
	desc = describe(conn, &d, rule.sql ? &rule : NULL, err, errlen);
	rc = desc ? 0 : -1;
	buf_init(&sql);
	if (desc)
		rc = build_insert(&sql, params, &nparams, conn, desc, &d, 0,
				  &tc, err, errlen);
	buf_free(&sql);
	PQclear(desc);
	free(params);
	rules_sql_free(&rule);
	return rc;
}
