/* errbuf.h - the one size of an error text buffer */
#ifndef AUDSYNC_ERRBUF_H
#define AUDSYNC_ERRBUF_H

/*
 * Every buffer that holds an error text (err, why, msg, reason) is
 * char name[AUDSYNC_ERR_LEN], so a message handed from one module to
 * another is never cut shorter on the way than where it was written.
 * Large enough for PostgreSQL's primary message with its detail and
 * hint, and for a sync's name in front of any of them (db_error()).
 */
#define AUDSYNC_ERR_LEN 1024

#endif
