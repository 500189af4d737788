/* rule_catalog.h - a computation's rule compiled with the computations it
 * names, read from the database */
#ifndef AUDSYNC_RULE_CATALOG_H
#define AUDSYNC_RULE_CATALOG_H

#include "audsync/rules.h"

#include <libpq-fe.h>
#include <stdio.h>

/*
 * Compiles the rule definition of computation key (rules.h), its value
 * parameters numbered from first, reading every computation so that
 * member_of can name them. Returns 0 and fills *out (free with
 * rules_sql_free()), or -1 with one line in err naming the computation
 * and the JSON path of what is wrong (or the database error).
 */
int rule_catalog_compile(rules_sql *out, PGconn *conn, const char *key,
			 int first, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Prints to f what computation key evaluates: the statement a rule
 * compiles to with its parameters ($1 as-of, $2 window start, then the
 * values) and how it runs, or the definition_sql as it is. Returns 0, or
 * -1 with err set (unknown key, a wrong rule, database error).
 */
int rule_catalog_explain(FILE *f, PGconn *conn, const char *key, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

#endif
