/* retry_failed.h - `audsync retry-failed`: dead letters back to the outbox */
#ifndef AUDSYNC_RETRY_FAILED_H
#define AUDSYNC_RETRY_FAILED_H

#include <libpq-fe.h>

/*
 * Moves the dead letters (of destination when not NULL) back to the
 * outbox, re-derived from the ledger: an update's $set says what its
 * distinct_id was told since, and an event the ledger has superseded is
 * dropped. Letters of a sync deleted or disabled, or of a retired
 * computation, stay dead letters (but for retire's $unset). *out is the
 * number of records requeued, *left the letters left so; the caller
 * delivers them (deliver_outboxes). Returns 0, or -1 with err set.
 */
int retry_failed_requeue(long long *out, long long *left, PGconn *conn,
			 const char *destination, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
