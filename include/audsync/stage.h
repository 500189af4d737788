/* stage.h - the temporary tables of a sync's run, and every write to them */
#ifndef AUDSYNC_STAGE_H
#define AUDSYNC_STAGE_H

#include "audsync/buf.h"

#include <libpq-fe.h>
#include <stddef.h>

/* audsync_touched's profiles as an array: `profile_id = ANY (...)` takes
 * them in one index scan, a descent each, where a join rescans the index
 * once a profile (a rule's few_sql, evaluate.h's LEDGER_OF_FEW). */
#define TOUCHED_ARRAY "ARRAY(SELECT profile_id FROM pg_temp.audsync_touched)"

/*
 * A sync's run passes its rows from one statement to the next through
 * temporary tables of the engine's session (pg_temp): the rows never
 * leave PostgreSQL. This module owns them. It creates them, empties them,
 * writes them and ANALYZEs them; the other modules read them, and hand it
 * the rows to write (a SELECT) with the name of a write below, never the
 * name of a table (`make lint` refuses a write to a pg_temp table
 * anywhere else).
 *
 * For the session: created at its first sync, emptied by stage_reset()
 * before each sync's evaluation.
 *   audsync_stage (profile_id text NOT NULL, value jsonb, h bigint)
 *     The definition's rows (evaluate.h), one per row of it: an
 *     audience's members when every member is read (value and h NULL:
 *     {key: true}, no checksum), or a trait's {key: value, ...} per
 *     profile with h the checksum of (profile_id, value) as in
 *     snapshot_members. Read by the diff.
 *   audsync_d (new_p text, new jsonb, old_p text, old_t tid)
 *     The rows that differ from the snapshot: a row the snapshot lacks
 *     (new_p, new; new NULL for an audience) or a snapshot row the
 *     definition no longer gives (old_p, and old_t its address). From an
 *     audience's definition as its rows come (evaluate.c), or from a
 *     trait's stage (diff.c). Read by the diff.
 *   audsync_touched (profile_id text, identifiers boolean, fresh bigint)
 *     The profiles an incremental run looks at (incremental.h), each
 *     once; identifiers when a change to the profile's identifiers
 *     touched it; fresh, how many of its events since the last run
 *     decide its rule alone (rules.h, edges_sql). Read by a rule's
 *     touched_sql and the diff.
 *   audsync_mark (snap pg_snapshot, digest text)
 *     A rule's run: the snapshot taken before anything was looked at and
 *     the rule's digest (incremental.h). The diff saves them with the
 *     sync's state and keeps the change log back to snap.
 *
 * For the diff's transaction (ON COMMIT DROP), made from the diff's rows
 * (diff.c), which name their columns:
 *   audsync_chg (profile_id text, old jsonb, new jsonb,
 *                since timestamptz, old_targets text, kind text,
 *                old_t tid, old_member boolean)
 *     One row per profile the run tells Mixpanel about: kind enter, exit,
 *     change, resend, former or newid; old_t the address of its snapshot
 *     row.
 *     Read by the counts, the forgetting, the state and the calls cursor.
 */

/* The writes, each into one table with its columns. */
typedef enum stage_write {
	STAGE_MEMBERS,	    /* audsync_stage (profile_id) */
	STAGE_VALUES,	    /* audsync_stage (profile_id, value, h) */
	STAGE_MEMBERS_DIFF, /* audsync_d (new_p, old_p): no address */
	STAGE_VALUES_DIFF,  /* audsync_d (new_p, new, old_p, old_t) */
	STAGE_TOUCHED, /* audsync_touched (profile_id, identifiers, fresh) */
	STAGE_MARK,    /* audsync_mark (snap, digest) */
	STAGE_CHANGES, /* creates audsync_chg */
	STAGE_MORE_CHANGES /* audsync_chg, every column */
} stage_write;

/* The tables whose statistics the planner needs before they are read. */
typedef enum stage_table {
	STAGE_TABLE_D,
	STAGE_TABLE_TOUCHED,
	STAGE_TABLE_CHG
} stage_table;

/* Creates the session's tables where they are missing and empties them.
 * Returns 0, or -1 with err set. */
int stage_reset(PGconn *conn, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Appends to b the head of the statement of write w; the caller appends
 * the rows (a SELECT of the write's columns, in order) and runs it. For a
 * statement run in the caller's own way (evaluate.c's read-only
 * transaction, typed parameters). */
void stage_put(buf *b, stage_write w);

/* Runs write w of rows (a SELECT of its columns, in order) with params,
 * as db_exec() does; what names it in an error. Returns 0, or -1 with
 * err set. */
int stage_exec(PGconn *conn, const char *what, stage_write w, const char *rows,
	       int nparams, const char *const *params, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* ANALYZEs table t; what names it in an error. Returns 0, or -1 with err
 * set. */
int stage_analyze(PGconn *conn, const char *what, stage_table t, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

#endif
