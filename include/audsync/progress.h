/* progress.h - how far a long run, resync or delivery has come */
#ifndef AUDSYNC_PROGRESS_H
#define AUDSYNC_PROGRESS_H

/*
 * One operation at a time (a command, a pass of the daemon). Once it has
 * run 2 s, progress_tick() shows records decided and delivered, the
 * delivery rate and, when the queue's size is known, an ETA: on a
 * terminal as one line rewritten in place (at most every 0.25 s), off a
 * terminal as a log line every 10 s (AUDSYNC_PROGRESS_INTERVAL_MS).
 * Short operations show nothing. Each call costs a clock read at most.
 */
void progress_begin(const char *what);
void progress_decided(long long n);
void progress_delivered(long long n);
/* Records queued for delivery, when known: the ETA's total. */
void progress_queued(long long n);
void progress_tick(void);
/* Ends the operation; on a terminal, clears its line. */
void progress_end(void);

#endif
