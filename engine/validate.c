/* validate.c - whether every sync's definition and destination are sound
 *
 * `audsync validate`: each definition (of a sync, or of a computation no
 * sync uses yet) is parsed and described by
 * PostgreSQL (evaluate_check), never run, and each destination's
 * settings are checked (config.c), so a bad definition is found before a
 * run trips over it.
 */
#include "audsync/validate.h"

#include "audsync/config.h"
#include "audsync/errbuf.h"
#include "audsync/evaluate.h"

#include <string.h>

/* Prints the problem of each sync of l (of its computation alone when
 * it has no destination); returns how many. */
static int check_syncs(FILE *f, PGconn *conn, const sync_list *l)
{
	char why[AUDSYNC_ERR_LEN];
	int i, problems = 0;

	for (i = 0; i < l->n; i++) {
		const sync_def *s = &l->items[i];

		/* A destination's problem was printed once already. */
		if ((config_sync_problem(s, why, sizeof(why)) &&
		     (!s->dest || !s->dest->problem ||
		      strcmp(why, s->dest->problem))) ||
		    evaluate_check(conn, s, why, sizeof(why)) != 0) {
			fprintf(f, "problem: %s\n", why);
			problems++;
		}
	}
	return problems;
}

int validate_definitions(int *out, FILE *f, PGconn *conn, char *err,
			 size_t errlen)
{
	sync_filter flt = { NULL, NULL, NULL };
	sync_list l, d, u;
	int i, problems = 0;

	if (config_load(&l, conn, &flt, err, errlen) != 0)
		return -1;
	if (config_load_destinations(&d, conn, NULL, err, errlen) != 0) {
		config_free(&l);
		return -1;
	}
	/* DESIGN section 9: every definition, a sync or not yet */
	if (config_load_unsynced(&u, conn, err, errlen) != 0) {
		config_free(&l);
		config_free(&d);
		return -1;
	}
	for (i = 0; i < d.ndests; i++) {
		if (!d.dests[i].problem)
			continue;
		fprintf(f, "problem: %s\n", d.dests[i].problem);
		problems++;
	}
	problems += check_syncs(f, conn, &l);
	problems += check_syncs(f, conn, &u);
	fprintf(f,
		"%d sync%s, %d computation%s without a sync and %d "
		"destination%s checked: %d problem%s\n",
		l.n, l.n == 1 ? "" : "s", u.n, u.n == 1 ? "" : "s", d.ndests,
		d.ndests == 1 ? "" : "s", problems, problems == 1 ? "" : "s");
	config_free(&l);
	config_free(&d);
	config_free(&u);
	*out = problems;
	return 0;
}
