/* validate.c - whether every sync's definition and destination are sound
 *
 * `audsync validate`: each definition is parsed and described by
 * PostgreSQL (evaluate_check), never run, and each destination's
 * settings are checked (config.c), so a bad definition is found before a
 * run trips over it.
 */
#include "audsync/validate.h"

#include "audsync/config.h"
#include "audsync/errbuf.h"
#include "audsync/evaluate.h"

#include <string.h>

int validate_definitions(int *out, FILE *f, PGconn *conn, char *err,
			 size_t errlen)
{
	char why[AUDSYNC_ERR_LEN];
	sync_filter flt = { NULL, NULL, NULL };
	sync_list l, d;
	int i, problems = 0;

	if (config_load(&l, conn, &flt, err, errlen) != 0)
		return -1;
	if (config_load_destinations(&d, conn, NULL, err, errlen) != 0) {
		config_free(&l);
		return -1;
	}
	for (i = 0; i < d.ndests; i++) {
		if (!d.dests[i].problem)
			continue;
		fprintf(f, "problem: %s\n", d.dests[i].problem);
		problems++;
	}
	for (i = 0; i < l.n; i++) {
		const sync_def *s = &l.items[i];

		/* A destination's problem was printed once above. */
		if ((config_sync_problem(s, why, sizeof(why)) &&
		     (!s->dest->problem || strcmp(why, s->dest->problem))) ||
		    evaluate_check(conn, s, why, sizeof(why)) != 0) {
			fprintf(f, "problem: %s\n", why);
			problems++;
		}
	}
	fprintf(f, "%d sync%s and %d destination%s checked: %d problem%s\n",
		l.n, l.n == 1 ? "" : "s", d.ndests, d.ndests == 1 ? "" : "s",
		problems, problems == 1 ? "" : "s");
	config_free(&l);
	config_free(&d);
	*out = problems;
	return 0;
}
