/* rules.h - rule definitions (DESIGN.md section 5) compiled to one SQL
 * statement with every value bound as a parameter */
#ifndef AUDSYNC_RULES_H
#define AUDSYNC_RULES_H

#include "audsync/errbuf.h"

#include <stddef.h>

/* Nesting and size limits of a rule; deeper or larger rules are refused
 * with the JSON path where the limit was crossed. */
#define RULES_MAX_DEPTH	 32
#define RULES_MAX_NODES	 1000
#define RULES_MAX_PARAMS 10000

/* A computation a rule may name with member_of. Strings are borrowed. */
typedef struct rules_target {
	const char *key;
	int is_trait;
	const char *definition;	    /* rule JSON text, or NULL */
	const char *definition_sql; /* or NULL */
	const char *lookback;	    /* PostgreSQL interval text, or NULL */
} rules_target;

/* Every computation, for member_of. */
typedef struct rules_catalog {
	const rules_target *items;
	int n;
} rules_catalog;

/*
 * The compiled statement. $1 is the as-of time and $2 the window start
 * (as-of minus the computation's lookback, or -infinity), as for a
 * definition_sql; params[i] is the text of $(first + i), each cast in
 * the SQL to its type. An audience returns profile_id (each once); a
 * trait returns profile_id and value (jsonb, one row per profile).
 */
typedef struct rules_sql {
	char *sql;
	char **params;
	int nparams;
	int first;
	/*
	 * Incremental evaluation (README, "Rules: hourly runs"), with the
	 * same parameters: touched_sql is sql over only the profiles of
	 * pg_temp.audsync_touched (profile_id text, identifiers boolean,
	 * fresh bigint). With touched_ungraphed set (a rule whose new
	 * events decide it, put_sure_named()) it may name a touched
	 * profile it has not found in the identity graph when no change
	 * touched that profile's identifiers: of the profiles that enter,
	 * the calls keep those of the graph (evaluate.h,
	 * EVALUATE_UNGRAPHED), and a ledger member whose identifiers did
	 * not change still has some. Otherwise it names profiles of the graph
	 * only, and the diff does not look again. edges_sql returns the
	 * profile_id of every event of the rule whose place in a window
	 * changed between the last run, as-of $3 and window start $4, and
	 * this one ($1, $2), and fresh: whether the event is one of those
	 * that decide such a rule alone (always false for other rules),
	 * which touched_sql counts in the touched profile's fresh.
	 * few_sql is touched_sql for touched profiles few against the
	 * ledger's members (incremental.h): it looks them up by the index,
	 * one descent each, instead of joining them. All three NULL when
	 * the rule must run in full; why_full then says why in a few words.
	 */
	char *touched_sql;
	char *few_sql;
	char *edges_sql;
	int touched_ungraphed;
	char why_full[AUDSYNC_ERR_LEN];
} rules_sql;

/*
 * Compiles the rule of computation key (definition: its JSON text) with
 * its value parameters numbered from first (>= 3). cat resolves
 * member_of (NULL: none may be named). Returns 0 and fills *out (free
 * with rules_sql_free()), or -1 with err set to one line that starts
 * with the JSON path of what is wrong, e.g.
 * 'definition.and[1].performed.count.op: unknown operator "=>"'.
 */
int rules_compile(rules_sql *out, const char *key, int is_trait,
		  const char *definition, const rules_catalog *cat, int first,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

/* Frees what rules_compile() filled; accepts NULL and an empty one. */
void rules_sql_free(rules_sql *r);

/* Parses an ISO-8601 time (YYYY-MM-DD, then optionally [T ]HH:MM[:SS
 * [.frac]], then optionally Z or +HH[:MM]) into seconds since the epoch
 * (a time without a zone is UTC). Returns 0, or -1 when s is not one. */
int rules_parse_time(double *out, const char *s)
	__attribute__((warn_unused_result));

/* Checks an interval of the form rules accept ("30 days", "1 hour 30
 * minutes": counts and units second, minute, hour, day, week, month,
 * year, singular or plural, each once), positive and at most 1000
 * years. Sets *seconds (years as 365.25 days, months as a twelfth of
 * one). Returns 0 or -1. */
int rules_parse_interval(double *seconds, const char *s)
	__attribute__((warn_unused_result));

#endif
