/* calls.h - the calls and ledger rows of the changed profiles */
#ifndef AUDSYNC_CALLS_H
#define AUDSYNC_CALLS_H

#include "audsync/config.h"
#include "audsync/diff.h"

#include <libpq-fe.h>
#include <stdio.h>

/* The identifier types a sync sends to, as a SQL array literal. */
const char *calls_id_types(const sync_def *s);

/*
 * Streams the calls and the new ledger rows of every profile diff.c left
 * in audsync_chg (their old rows forgotten): decide.c picks each one's
 * targets and calls, which go to the outbox (or to dry_run); sets
 * out->calls and out->skipped. full: a resync. ledger_read: a changed
 * profile had a ledger row, so an exit may find its distinct_id moved
 * to another profile (calls.c, put_record()).
 */
int calls_stream(diff_counts *out, PGconn *conn, const sync_def *s,
		 long long run_id, int full, int ledger_read, FILE *dry_run,
		 char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
