/* calls.h - the calls and ledger rows of the changed profiles */
#ifndef AUDSYNC_CALLS_H
#define AUDSYNC_CALLS_H

#include "audsync/config.h"
#include "audsync/diff.h"

#include <libpq-fe.h>
#include <stdio.h>

/* The identifier types a sync sends to, as a SQL array literal. */
const char *calls_id_types(const sync_def *s);

/* How calls_stream() reads the changes (bits). */
enum {
	CALLS_FULL = 1,	       /* a resync: every current target again */
	CALLS_LEDGER_READ = 2, /* a changed profile had a ledger row, so an
				* exit may find its distinct_id moved to
				* another profile (calls.c, put_record()) */
	CALLS_GRAPH = 4	       /* an entering profile may be outside the
				* identity graph (evaluate.h,
				* EVALUATE_UNGRAPHED): one without an
				* identifier of the sync's types is looked for
				* there, and is no member when it is not */
};

/*
 * Streams the calls and the new ledger rows of every profile diff.c left
 * in audsync_chg (their old rows forgotten): decide.c picks each one's
 * targets and calls, which go to the outbox (or to dry_run); sets
 * out->calls and out->skipped, and with CALLS_GRAPH out->outside (taken
 * from out->entered). how: CALLS_* bits.
 */
int calls_stream(diff_counts *out, PGconn *conn, const sync_def *s,
		 long long run_id, int how, FILE *dry_run, char *err,
		 size_t errlen) __attribute__((warn_unused_result));

#endif
