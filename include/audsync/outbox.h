/* outbox.h - calls decided but not yet accepted by Mixpanel */
#ifndef AUDSYNC_OUTBOX_H
#define AUDSYNC_OUTBOX_H

#include "audsync/mp_client.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>

/* Lanes per destination: a hash of the distinct_id picks one, and one
 * lane's calls go out in order. More lanes than connections lets several
 * processes share a destination. */
#define OUTBOX_LANES 64
/* Records per outbox row (a page), at most. */
#define OUTBOX_PAGE_RECORDS 500

/* The lane of a distinct_id: stable across processes and versions. */
uint32_t outbox_lane(const char *distinct_id);

typedef struct outbox_writer outbox_writer;

/*
 * Opens a writer of ep records for destination dest_id, inside the
 * caller's open transaction on conn: rows become visible when the caller
 * commits, together with whatever else it decided. sync_id 0: records of
 * no sync (forwarded messages), NULL in the outbox. With dry_run set,
 * records are printed there as JSON lines and nothing is written. The
 * caller closes it with outbox_writer_close().
 */
outbox_writer *outbox_writer_open(PGconn *conn, int dest_id,
				  const char *dest_name, int sync_id,
				  long long run_id, mp_endpoint ep,
				  FILE *dry_run);

/* Adds one record (a JSON object) for distinct_id. Returns 0, or -1 with
 * err set when a page could not be written. */
int outbox_writer_add(outbox_writer *w, const char *distinct_id,
		      const char *record, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Writes the partial pages. *out is the number of records added. Returns
 * 0, or -1 with err set. */
int outbox_writer_finish(outbox_writer *w, long long *out, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

void outbox_writer_close(outbox_writer *w); /* accepts NULL */

typedef struct outbox_stats {
	long long delivered;
	long long rejected;
	long long not_delivered; /* still queued when delivery ended */
} outbox_stats;

/*
 * Delivers the queued records of destination dest_id (registered in c as
 * mp_dest) in rounds: each round claims free lanes (a session advisory
 * lock per lane, so several processes share a destination and one lane's
 * records keep their order), reads a few pages of each, sends them with
 * no transaction open, then in one short transaction deletes what
 * Mixpanel accepted, moves what it rejected to dead letters with its
 * reason, and leaves the rest queued; then it lets the lanes go. A crash
 * re-sends at most one round. Stops when the queue is empty, when a round
 * delivers nothing, when Mixpanel stopped the destination (refused its
 * credentials: mp_client_stopped), or when *stop is set. Adds to *out.
 * Returns 0, or -1
 * with err set on a database or client error.
 */
int outbox_deliver(outbox_stats *out, PGconn *conn, mp_client *c, int mp_dest,
		   int dest_id, volatile int *stop, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
