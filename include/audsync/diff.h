/* diff.h - what changed since Mixpanel was last told, and the calls */
#ifndef AUDSYNC_DIFF_H
#define AUDSYNC_DIFF_H

#include "audsync/config.h"
#include "audsync/evaluate.h"

#include <libpq-fe.h>
#include <stdio.h>

/* How far back new identifiers are looked for, before the last run's
 * start: covers transactions that committed identifiers late. */
#define DIFF_IDS_MARGIN "1 hour"

/* PostgreSQL's work_mem for a run's statements (set for the run's
 * transactions only): a 500 000-member diff hashes in one batch. */
#define DIFF_WORK_MEM "256MB"

typedef struct diff_counts {
	long long members;
	long long entered;
	long long exited;
	long long changed;
	long long skipped;
	long long calls;
	long long outside; /* entering profiles the calls found outside the
			    * identity graph (calls.h): no members, and not
			    * in entered */
	double started;	   /* monotonic seconds, for the run's log line */
	double evaluated;
} diff_counts;

typedef enum diff_mode {
	DIFF_CHANGES = 0, /* a normal run: only what changed */
	DIFF_FULL = 1	  /* resync: every member's current state again,
			   * and every former member's exit value */
} diff_mode;

/*
 * Diffs what evaluate_sync() left (whole: its stage of every member)
 * against s's snapshot inside
 * PostgreSQL, per profile first and per identifier only for the profiles
 * that changed or gained identifiers; streams the resulting targets
 * through a cursor, turns them into Mixpanel records (DESIGN.md section 6)
 * and writes them to the outbox; advances the snapshot and the sync's
 * state. Runs inside the caller's open transaction, so that all of it
 * commits with the run row or not at all. With dry_run set, records are
 * printed there and the caller rolls back. Fills *out, members being the
 * distinct members after the run. Returns 0, or -1 with err set.
 */
int diff_apply(diff_counts *out, PGconn *conn, const sync_def *s, int whole,
	       long long run_id, diff_mode mode, FILE *dry_run, char *err,
	       size_t errlen) __attribute__((warn_unused_result));

/*
 * Forgets sync_id's snapshot and state (its members, what each
 * distinct_id was told, its last as-of), so that its next run tells
 * Mixpanel everything again. Inside the caller's transaction. Returns 0,
 * or -1 with err set.
 */
int diff_reset_snapshot(PGconn *conn, int sync_id, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
