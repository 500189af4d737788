/* evaluate.h - running a computation's definition into the engine's stage */
#ifndef AUDSYNC_EVALUATE_H
#define AUDSYNC_EVALUATE_H

#include "audsync/config.h"

#include <libpq-fe.h>

/* Default statement timeout of a definition; AUDSYNC_STATEMENT_TIMEOUT
 * (any PostgreSQL duration, e.g. "30s") overrides it. */
#define EVALUATE_DEFAULT_TIMEOUT "10min"

/* What an evaluation leaves beside its stage: the count of its rows and
 * the sum of their checksums h, as decimal text (sql/004_rows_checksum.sql:
 * equal to the last run's, nothing changed). */
typedef struct stage_sums {
	char rows[24];
	char sum[64];
	int full; /* every member is read again: a first sync, a resync */
	int same; /* count and sum are the last run's: nothing changed */
} stage_sums;

/*
 * Runs s's definition_sql with $1 = s->as_of and $2 = s->window_start in a
 * read-only transaction with a statement timeout. Its rows land in the
 * session's temporary table audsync_stage (profile_id text, value jsonb,
 * h bigint): {key: value, ...} per profile with a trait (null values left
 * out), and for an audience a NULL value, {key: true}, per row naming a
 * member (a member named twice stays twice: the diff makes them
 * distinct); h is the checksum of (profile_id, value) as in
 * snapshot_members. An audience's rows are staged only when every member
 * is read again (every: a resync, or a first sync); otherwise they are
 * diffed against the snapshot as they come, and only the rows that differ
 * land, in audsync_d (diff.c). The rows never leave PostgreSQL. *out gets
 * their count and checksum sum, and whether the diff is a full one or
 * has nothing to do, decided here against the sync's state. Returns 0, or
 * -1 with one line in err naming the computation and the cause (syntax,
 * wrong columns, two rows for one profile in a trait, timeout, an attempt
 * to write); the stage is then empty.
 */
int evaluate_sync(stage_sums *out, PGconn *conn, const sync_def *s, int every,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

/* Checks s's definition without running it: it parses, returns a
 * profile_id, and a trait's columns make keys. Returns 0, or -1 with the
 * same one-line errors as evaluate_sync(). */
int evaluate_check(PGconn *conn, const sync_def *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
