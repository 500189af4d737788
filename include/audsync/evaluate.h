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
} stage_sums;

/*
 * Runs s's definition_sql with $1 = s->as_of and $2 = s->window_start in a
 * read-only transaction with a statement timeout, and loads its result
 * into the session's temporary table audsync_stage (profile_id text,
 * value jsonb, h bigint): {key: true} per row naming an audience member
 * (a member named twice stays twice: the diff makes them distinct),
 * {key: value, ...} per profile with a trait (null values left out), and
 * h the checksum of (profile_id, value) as in snapshot_members. It has no
 * index, since nothing looks rows up by key. The rows never leave
 * PostgreSQL. *out gets the stage's sums. Returns 0, or -1 with
 * one line in err naming the computation and the cause (syntax, wrong
 * columns, two rows for one profile in a trait, timeout, an attempt to
 * write); the stage is then empty.
 */
int evaluate_sync(stage_sums *out, PGconn *conn, const sync_def *s, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

/* Checks s's definition without running it: it parses, returns a
 * profile_id, and a trait's columns make keys. Returns 0, or -1 with the
 * same one-line errors as evaluate_sync(). */
int evaluate_check(PGconn *conn, const sync_def *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
