/* rule_catalog.c - a computation's rule compiled with the computations it
 * names, read from the database */
#include "audsync/rule_catalog.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/errbuf.h"
#include "audsync/incremental.h"

#include <stdlib.h>
#include <string.h>

static const char catalog_sql[] =
	"SELECT key, kind = 'trait', definition::text, definition_sql,"
	" lookback::text FROM audsync.computations ORDER BY key";

enum { CAT_KEY, CAT_IS_TRAIT, CAT_DEF, CAT_DEF_SQL, CAT_LOOKBACK };

static const char *col(const PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

/* Every computation as rules_target (strings borrowed from *res, which
 * the caller clears); *own is key's. Returns the targets (caller frees),
 * or NULL with err set. */
static rules_target *read_catalog(PGresult **res, int *n,
				  const rules_target **own, PGconn *conn,
				  const char *key, char *err, size_t errlen)
{
	rules_target *t;
	int i;

	*res = db_query(conn, "read computations", catalog_sql, 0, NULL, err,
			errlen);
	if (!*res)
		return NULL;
	*n = PQntuples(*res);
	t = alloc_calloc((size_t)*n + 1, sizeof(*t));
	*own = NULL;
	for (i = 0; i < *n; i++) {
		t[i].key = PQgetvalue(*res, i, CAT_KEY);
		t[i].is_trait = PQgetvalue(*res, i, CAT_IS_TRAIT)[0] == 't';
		t[i].definition = col(*res, i, CAT_DEF);
		t[i].definition_sql = col(*res, i, CAT_DEF_SQL);
		t[i].lookback = col(*res, i, CAT_LOOKBACK);
		if (strcmp(t[i].key, key) == 0)
			*own = &t[i];
	}
	if (!*own) {
		snprintf(err, errlen, "no computation has the key \"%s\"", key);
		free(t);
		PQclear(*res);
		*res = NULL;
		return NULL;
	}
	return t;
}

/* Compiles own's rule; err gets "computation KEY: " before the path. */
static int compile_own(rules_sql *out, const rules_target *own,
		       const rules_target *all, int n, int first, char *err,
		       size_t errlen)
{
	rules_catalog cat = { all, n };
	char why[AUDSYNC_ERR_LEN];

	if (rules_compile(out, own->key, own->is_trait, own->definition, &cat,
			  first, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "computation %s: %s", own->key, why);
		return -1;
	}
	return 0;
}

int rule_catalog_compile(rules_sql *out, PGconn *conn, const char *key,
			 int first, char *err, size_t errlen)
{
	const rules_target *own;
	PGresult *res;
	rules_target *all;
	int n, rc = -1;

	all = read_catalog(&res, &n, &own, conn, key, err, errlen);
	if (!all)
		return -1;
	if (!own->definition)
		snprintf(err, errlen,
			 "computation %s: has no rule definition "
			 "(it is defined by definition_sql)",
			 key);
	else
		rc = compile_own(out, own, all, n, first, err, errlen);
	free(all);
	PQclear(res);
	return rc;
}

/* What $3 and $4 hold, which a rule's statement never uses. */
static const char *const unused_params[] = {
	"the last run's as-of, for the incremental evaluation",
	"the last run's window start, for the incremental evaluation",
};

/* why_full: why it runs in full, or "" (incremental.h). */
static void print_rule(FILE *f, const rules_target *own, const rules_sql *r,
		       const char *why_full)
{
	int i;

	fprintf(f, "-- computation %s (%s), rule definition\n", own->key,
		own->is_trait ? "trait" : "audience");
	fprintf(f, "%s;\n", r->sql);
	fprintf(f, "-- parameters (bound, never part of the text):\n");
	fprintf(f, "--   $1 = the as-of time (timestamptz)\n");
	if (own->lookback)
		fprintf(f, "--   $2 = the window start: as-of - %s\n",
			own->lookback);
	else
		fprintf(f, "--   $2 = the window start: -infinity "
			   "(no lookback)\n");
	/* Bound on every evaluation but used by the incremental one's
	 * edges only (rules.h): listed so that the numbers match the SQL's.
	 */
	for (i = 3; i < r->first; i++)
		fprintf(f, "--   $%d = unused by this statement (%s)\n", i,
			i - 3 < 2 ? unused_params[i - 3] : "reserved");
	for (i = 0; i < r->nparams; i++) {
		buf b;

		buf_init(&b);
		buf_json_str(&b,
			     r->params[i]); /* one line, whatever it holds */
		fprintf(f, "--   $%d = %s\n", r->first + i, b.data);
		buf_free(&b);
	}
	if (why_full[0])
		fprintf(f,
			"-- evaluation: full evaluation because %s (every "
			"profile, every run)\n",
			why_full);
	else
		fprintf(f, "-- evaluation: incremental (a run re-evaluates "
			   "only the profiles whose events, traits or "
			   "identifiers changed since the last run, or whose "
			   "events crossed a window's edge; the first run and "
			   "a resync evaluate every profile)\n");
}

int rule_catalog_explain(FILE *f, PGconn *conn, const char *key, char *err,
			 size_t errlen)
{
	const rules_target *own;
	rules_sql r = { 0 };
	char why[AUDSYNC_ERR_LEN];
	PGresult *res;
	rules_target *all;
	int n, rc = 0;

	all = read_catalog(&res, &n, &own, conn, key, err, errlen);
	if (!all)
		return -1;
	if (!own->definition) {
		fprintf(f,
			"-- computation %s (%s), definition_sql: it runs as "
			"written ($1 as-of, $2 window start)\n%s\n",
			own->key, own->is_trait ? "trait" : "audience",
			own->definition_sql ? own->definition_sql : "");
	} else if (compile_own(&r, own, all, n, 5, err, errlen) == 0) {
		rc = incremental_why_full(why, sizeof(why), conn, &r, err,
					  errlen);
		if (rc == 0)
			print_rule(f, own, &r, why);
		rules_sql_free(&r);
	} else {
		rc = -1;
	}
	free(all);
	PQclear(res);
	return rc;
}
