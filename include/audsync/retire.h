/* retire.h - `audsync retire`: a computation stops, its keys unset */
#ifndef AUDSYNC_RETIRE_H
#define AUDSYNC_RETIRE_H

#include <libpq-fe.h>

/*
 * Stops syncing computation key (sets enabled = false). With unset, first
 * queues an /engage $unset of its keys for every distinct_id its identify
 * syncs set them on, and forgets their snapshots; all of it in one
 * transaction; the caller delivers the calls queued (deliver_outboxes).
 * Returns 0, or -1 with err set (no such computation, a sync with a
 * configuration problem, database error).
 */
int retire_computation(PGconn *conn, const char *key, int unset, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

#endif
