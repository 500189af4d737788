/* bench_rules.c - a rule audience against the hand-written SQL of the same
 * meaning, on the data of bench_sync.c: the statements' own execution
 * time in the server (best of three), every row produced, none sent.
 * Prints figures; judges nothing.
 *
 * BENCH_PROFILES scales the data (default 1000000). */
#include "audsync/rules.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bench_sync.c's audience: a purchase in the last 30 days. */
static const char hand_sql[] =
	"SELECT profile_id FROM audsync.events"
	" WHERE event = 'Purchase' AND ts >= $2 AND ts < $1";
/* The same with the rule's meaning: only profiles of the identity graph,
 * each once. */
static const char same_meaning_sql[] =
	"SELECT DISTINCT e.profile_id FROM audsync.events e"
	" WHERE e.event = 'Purchase' AND e.ts >= $2 AND e.ts < $1"
	" AND EXISTS (SELECT 1 FROM audsync.external_ids x"
	" WHERE x.profile_id = e.profile_id)";
static const char rule[] = "{\"performed\": {\"event\": \"Purchase\"}}";

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
		 "INSERT INTO audsync.events"
		 " SELECT 'p' || g, 'Purchase', '{}', now() - make_interval("
		 "  days => g %% 60, hours => 1)"
		 " FROM generate_series(1, %ld) g;"
		 "INSERT INTO audsync.events"
		 " SELECT 'p' || (1 + g %% %ld), 'Product Viewed', '{}',"
		 "  now() - make_interval(days => g %% 90, hours => 2)"
		 " FROM generate_series(1, %ld) g",
		 n, n, n, n, 4 * n);
	tl_sql(db, sql);
	tl_sql(db, "VACUUM ANALYZE");
	tl_sql(db, "CHECKPOINT");
}

/* The best of three server-side executions of sql ($1 now, $2 thirty
 * days back, then params), in seconds. */
static double best_of_three(const char *db, const char *sql, const rules_sql *r)
{
	char *text, *plan, types[2048] = "timestamptz, timestamptz";
	char args[4096] = "now(), now() - interval '30 days'";
	double best = -1;
	int i;

	for (i = 0; r && i < r->nparams; i++) {
		strcat(types, ", text");
		strcat(args, ", '");
		strcat(args, r->params[i]); /* the bench's own values */
		strcat(args, "'");
	}
	for (i = 0; i < 3; i++) {
		const char *p;
		double s;

		if (asprintf(&text,
			     "SET work_mem = '256MB'; DEALLOCATE ALL;"
			     " PREPARE b (%s) AS %s;"
			     "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON)"
			     " EXECUTE b (%s)",
			     types, sql, args) < 0)
			abort();
		plan = tl_sql_value(db, text);
		p = strstr(plan, "\"Execution Time\":");
		s = p ? atof(p + strlen("\"Execution Time\":")) / 1000.0 : -1;
		if (best < 0 || s < best)
			best = s;
		free(plan);
		free(text);
	}
	return best;
}

int main(void)
{
	const char *env = getenv("BENCH_PROFILES");
	long n = env ? atol(env) : 1000000;
	const char *db = tl_new_db();
	char err[512];
	rules_sql r;
	double hand, same, compiled;

	if (rules_compile(&r, "bench", 0, rule, NULL, 3, err, sizeof(err))) {
		fprintf(stderr, "bench_rules: %s\n", err);
		return 1;
	}
	load(db, n);
	printf("bench_rules: %ld profiles, %lld events\n", n,
	       tl_sql_int(db, "SELECT count(*) FROM audsync.events"));
	hand = best_of_three(db, hand_sql, NULL);
	same = best_of_three(db, same_meaning_sql, NULL);
	compiled = best_of_three(db, r.sql, &r);
	printf("bench_rules: full evaluation: bench_sync's SQL %.3f s; the "
	       "same with the rule's meaning (identity graph, distinct) "
	       "%.3f s; rule %s %.3f s (%.2fx the first, %.2fx the "
	       "second)\n",
	       hand, same, rule, compiled, compiled / hand, compiled / same);
	rules_sql_free(&r);
	return 0;
}
