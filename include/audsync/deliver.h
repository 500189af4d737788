/* deliver.h - delivery rounds: every destination's outbox to Mixpanel */
#ifndef AUDSYNC_DELIVER_H
#define AUDSYNC_DELIVER_H

#include "audsync/outbox.h"

#include <libpq-fe.h>

/*
 * Delivers the outbox of every destination (or the one named, and/or
 * only those a sync of computation targets: what a run restricted so
 * may send) through one shared Mixpanel client, until it is empty,
 * stuck, or a stop is asked (sync_stop_requested). Destinations with a
 * configuration problem keep their calls queued, say why, and count them
 * as not delivered. Adds to *out. Returns 0, or -1 with err set (the
 * database failed).
 */
int deliver_outboxes(outbox_stats *out, PGconn *conn, const char *destination,
		     const char *computation, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
