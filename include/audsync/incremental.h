/* incremental.h - which profiles an hourly run of a rule must look at */
#ifndef AUDSYNC_INCREMENTAL_H
#define AUDSYNC_INCREMENTAL_H

#include "audsync/config.h"
#include "audsync/rules.h"

#include <libpq-fe.h>
#include <stddef.h>

/* What incremental_prepare() sets *on to. */
enum {
	INCREMENTAL_OFF = 0,  /* every profile is evaluated */
	INCREMENTAL_MANY = 1, /* the touched profiles are, and they are many
			       * against the ledger's members */
	INCREMENTAL_FEW = 2   /* they are, and few: worth looking up in the
			       * ledger one by one */
};

/*
 * Prepares the evaluation of s's compiled rule (values numbered from 5,
 * as evaluate.c binds them). Always records in pg_temp.audsync_mark the
 * snapshot taken now and the rule's digest, which the diff saves with
 * the sync's state (diff.c) for the next run. Then, unless whole (a
 * first sync or a resync) or the rule or database forbids it, fills
 * pg_temp.audsync_touched with every profile whose membership may have
 * changed since the last successful run and sets *on to INCREMENTAL_FEW
 * or _MANY: the run evaluates rule->touched_sql, and every other profile
 * keeps its snapshot row. Returns 0, or -1 with err set.
 */
int incremental_prepare(int *on, PGconn *conn, const sync_def *s,
			const rules_sql *rule, int whole, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/*
 * Why rule (compiled for computation lookback) cannot run incrementally
 * in conn's database: out gets a few words, or "" when it can. Returns 0,
 * or -1 with err set.
 */
int incremental_why_full(char *out, size_t outlen, PGconn *conn,
			 const rules_sql *rule, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
