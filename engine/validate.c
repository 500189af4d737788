/* validate.c - whether every sync's definition and destination are sound
 *
 * `audsync validate`: each definition (of a sync, or of a computation no
 * sync uses yet) is parsed and described by
 * PostgreSQL (evaluate_check), never run, and each destination's
 * settings are checked (config.c), so a bad definition is found before a
 * run trips over it.
 */
#include "audsync/validate.h"

#include "audsync/alloc.h"
#include "audsync/config.h"
#include "audsync/errbuf.h"
#include "audsync/evaluate.h"

#include <stdlib.h>
#include <string.h>

/* The problems printed so far, each once. */
typedef struct seen {
	char **items;
	int n;
} seen;

/* 1 when why was printed already; else remembers it and returns 0. */
static int seen_before(seen *p, const char *why)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->items[i], why) == 0)
			return 1;
	p->items =
		alloc_realloc(p->items, ((size_t)p->n + 1) * sizeof(*p->items));
	p->items[p->n++] = alloc_strdup(why);
	return 0;
}

static void seen_free(seen *p)
{
	alloc_free_strings(p->items, p->n);
}

/* Prints the problem of each sync of l (of its computation alone when
 * it has no destination) that p has not seen: a definition synced to
 * two destinations has one problem, not two. Returns how many. */
static int check_syncs(FILE *f, PGconn *conn, const sync_list *l, seen *p)
{
	char why[AUDSYNC_ERR_LEN];
	int i, problems = 0;

	for (i = 0; i < l->n; i++) {
		const sync_def *s = &l->items[i];

		/* A destination's problem was printed once already. */
		if (((config_sync_problem(s, why, sizeof(why)) &&
		      (!s->dest || !s->dest->problem ||
		       strcmp(why, s->dest->problem))) ||
		     evaluate_check(conn, s, why, sizeof(why)) != 0) &&
		    !seen_before(p, why)) {
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
	seen p = { NULL, 0 };
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
	problems += check_syncs(f, conn, &l, &p);
	problems += check_syncs(f, conn, &u, &p);
	seen_free(&p);
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
