/* evaluate.h - running a computation's definition into the engine's stage */
#ifndef AUDSYNC_EVALUATE_H
#define AUDSYNC_EVALUATE_H

#include "audsync/config.h"
#include "audsync/stage.h"

#include <libpq-fe.h>

/*
 * Runs s's definition_sql with $1 = s->as_of and $2 = s->window_start in a
 * read-only transaction with a statement timeout. A rule runs
 * incrementally when it can (README, "Rules: hourly runs"): *whole is
 * then EVALUATE_TOUCHED or EVALUATE_FEW. *whole is set when every member
 * is read again (every: a resync; or a first sync): the rows then land in
 * the temporary table audsync_stage (stage.h, which says what each of the
 * run's tables holds), NULL for an audience's value {key: true} and
 * checksum, one row per row of the definition (a member named twice stays
 * twice: the diff makes them distinct). A trait is always staged,
 * {key: value, ...} per profile (null values left out), with h the
 * checksum of (profile_id, value) as in snapshot_members. Otherwise an audience's rows are diffed
 * against the snapshot as they come, and only the rows that differ land,
 * in audsync_d. The rows never leave PostgreSQL. *columns: the keys of a
 * trait's columns but its own, comma-separated, for the run to claim
 * (audsync.computation_keys), or NULL; the caller frees it.
 * Returns 0, or -1 with one line in err naming the computation and the
 * cause (syntax, wrong columns, two rows for one profile in a trait,
 * timeout, an attempt to write); the stage is then empty.
 */
/* What evaluate_sync() left for the diff (its *whole). */
enum {
	EVALUATE_CHANGES = 0, /* an audience's rows that differ, a trait's
			       * every row */
	EVALUATE_WHOLE = 1,   /* every member's row */
	EVALUATE_TOUCHED = 2, /* incremental: as EVALUATE_CHANGES, but only
			       * for the profiles of pg_temp.audsync_touched;
			       * every other keeps its snapshot row */
	EVALUATE_FEW = 3,     /* as EVALUATE_TOUCHED, for touched profiles few
			       * against the ledger's members: their ledger
			       * rows are looked up by the key one by one */
	/* With EVALUATE_TOUCHED or EVALUATE_FEW: the rows may name entering
	 * profiles outside the identity graph (rules.h, touched_ungraphed),
	 * which are no members (calls.h). */
	EVALUATE_UNGRAPHED = 4
};
/* What is staged, without EVALUATE_UNGRAPHED. */
#define EVALUATE_STAGED(whole) ((whole) & ~EVALUATE_UNGRAPHED)

/* The ledger rows of the touched profiles, rows being a SELECT from
 * audsync.snapshot_members that ends in its WHERE clause: joined with the
 * touched profiles (EVALUATE_TOUCHED), or looked up by the key
 * (EVALUATE_FEW: the key is (sync_id, profile_id), and one index scan
 * takes the profiles as an array, a descent each; the planner would
 * otherwise read every member's entry for a join). */
#define LEDGER_OF_TOUCHED(rows)                                                \
	rows " AND profile_id IN (SELECT profile_id FROM pg_temp.audsync_touched)"
#define LEDGER_OF_FEW(rows) rows " AND profile_id = ANY (" TOUCHED_ARRAY ")"

int evaluate_sync(int *whole, char **columns, PGconn *conn, const sync_def *s,
		  int every, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The error of a trait column another computation has claimed: r's first
 * row holds the key and the owner's computation key. Returns -1. */
int evaluate_claimed(const sync_def *s, const PGresult *r, char *err,
		     size_t errlen);

/* Checks s's definition without running it: it parses, returns a
 * profile_id, and a trait's columns make keys. Returns 0, or -1 with the
 * same one-line errors as evaluate_sync(). */
int evaluate_check(PGconn *conn, const sync_def *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
