/* sync.h - runs: lock, evaluate, diff, enqueue, ledger */
#ifndef AUDSYNC_SYNC_H
#define AUDSYNC_SYNC_H

#include "audsync/diff.h"
#include "audsync/outbox.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>

/* Set by signal handlers: 1 drain and stop, 2 or more stop now. */
extern volatile sig_atomic_t sync_stop_requested;

typedef enum run_kind {
	RUN_SCHEDULED = 0,
	RUN_MANUAL = 1,
	RUN_FULL = 2
} run_kind;

typedef struct run_request {
	const char *computation; /* NULL: every computation */
	const char *destination; /* NULL: every destination */
	const char *as_of;	 /* NULL: now */
	int only_due;		 /* skip syncs the schedule says are not due */
	int only_realtime;	 /* only syncs without a lookback */
	run_kind kind;
	int reset;     /* forget the snapshot first (resync) */
	FILE *dry_run; /* print the calls; change nothing */
} run_request;

/* What a command's runs and deliveries came to: its exit status. */
typedef struct run_totals {
	int failed;  /* syncs whose run failed */
	int written; /* syncs whose run rewrote ledger rows */
	outbox_stats delivery;
} run_totals;

/*
 * Marks runs left 'running' by a process that is gone (no advisory lock
 * held for their sync) as failed, so a crash never leaves a run running.
 * Returns the number marked, or -1 with err set.
 */
int sync_mark_interrupted(PGconn *conn, char *err, size_t errlen);

/* What sync_lock() does with a sync's advisory lock ("one evaluator per
 * sync", DESIGN.md section 8). */
typedef enum sync_lock_op {
	SYNC_LOCK_TRY = 0,  /* take it if free */
	SYNC_LOCK_WAIT = 1, /* wait until it is free, past lock_timeout
			     * (a signal cancels) */
	SYNC_UNLOCK = 2
} sync_lock_op;

/*
 * Takes, waits for or frees the lock of sync sync_id, held by conn's lock
 * connection (db_lock_conn()), out of reach of definitions. Whoever
 * writes a sync's ledger or state holds it: runs, and retire. Returns 1
 * when done, 0 when SYNC_LOCK_TRY found it held by another process (or
 * SYNC_UNLOCK found it not held), -1 with err set.
 */
int sync_lock(PGconn *conn, int sync_id, sync_lock_op op, char *err,
	      size_t errlen) __attribute__((warn_unused_result));

/* Refreshes the snapshot's statistics when this run's writes left them
 * stale, so that the next run does not (at the end of a run that wrote
 * ledger rows, after its delivery). */
void sync_refresh_statistics(PGconn *conn);

/*
 * Runs the syncs rq selects, each under its advisory lock (a sync locked
 * by another process is skipped, and said so), each with its run row.
 * A failing sync is recorded in its run row and the log; the others go
 * on. Adds to *out. Returns 0, -1 with err set when the database
 * failed, or SYNC_EUSAGE with err set when rq is wrong: an --as-of that
 * is no time, before 1971, in the future or before a sync's last
 * successful run; nothing or only disabled syncs match what it names.
 */
#define SYNC_EUSAGE (-2)
int sync_run(run_totals *out, PGconn *conn, const run_request *rq, char *err,
	     size_t errlen) __attribute__((warn_unused_result));

#endif
