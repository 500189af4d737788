/* forward.h - Segment-spec messages into the outbox (audsync forward) */
#ifndef AUDSYNC_FORWARD_H
#define AUDSYNC_FORWARD_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>

typedef struct forward_totals {
	long long messages;   /* lines or inbound rows read (blank lines not) */
	long long queued;     /* messages whose calls went to the outbox */
	long long in_part;    /* of those, sent without a part (logged) */
	long long skipped;    /* nothing to send, as the seed says */
	long long failed;     /* could not be mapped: reported, not sent */
	long long duplicates; /* already forwarded to this destination */
	long long calls;      /* records put in the outbox */
} forward_totals;

/*
 * Reads newline-delimited Segment-spec messages from in and queues their
 * Mixpanel calls in the outbox of the named destination (NULL: the only
 * one there is), up to max_messages lines (0: no limit) or the end of in
 * (*eof is then set). Batches of messages are queued each in one
 * transaction with their messageIds in audsync.forwarded: a message
 * already forwarded to the destination is counted as a duplicate and
 * sends nothing. A line that cannot be mapped is logged with its number
 * (counting from *line, which is advanced) and the reason; the rest go on.
 * Adds to *out. Returns 0, -1 with err set (unknown or misconfigured
 * destination, database error, read error), or FORWARD_EUSAGE with err
 * set when destination is NULL and more than one destination exists.
 */
#define FORWARD_EUSAGE (-2)
int forward_stream(forward_totals *out, int *eof, long long *line, PGconn *conn,
		   FILE *in, const char *destination, long long max_messages,
		   char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Drains audsync.inbound (rows of the named destination, or all) in
 * batches claimed with FOR UPDATE SKIP LOCKED, so several processes share
 * it: a row is deleted in the transaction that queues its calls, or moved
 * to audsync.inbound_rejected with the reason when it cannot be mapped
 * (logged with its id). Rows for a destination that does not exist or is
 * misconfigured stay. Stops when nothing is left or *stop is set. Adds to
 * *out. Returns 0, or -1 with err set on a database error.
 */
int forward_drain_inbound(forward_totals *out, PGconn *conn,
			  const char *destination, volatile sig_atomic_t *stop,
			  char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
