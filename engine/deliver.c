/* deliver.c - delivery rounds: every destination's outbox to Mixpanel
 *
 * The second of the two pipelines: runs (sync.c) and forwarding
 * (forward.c) only queue calls in the outbox; this sends them, one
 * destination after another through one shared Mixpanel client, in the
 * rounds outbox_deliver() makes, and records how each delivery went.
 */
#include "audsync/deliver.h"

#include "audsync/config.h"
#include "audsync/db.h"
#include "audsync/errbuf.h"
#include "audsync/log.h"
#include "audsync/progress.h"
#include "audsync/settings.h"
#include "audsync/sync.h"

#include <stdio.h>

/* Client options: Mixpanel's advice by default, tunable for operators
 * (and for tests, which cannot wait minutes for a backoff), parsed by
 * their declarations in settings.c. */
static mp_client *open_client(char *err, size_t errlen)
{
	mp_options o = { 0 };
	long attempts;

	if (settings_env_long(&o.connect_timeout_ms,
			      "AUDSYNC_CONNECT_TIMEOUT_MS", err, errlen) != 0 ||
	    settings_env_long(&o.timeout_ms, "AUDSYNC_TIMEOUT_MS", err,
			      errlen) != 0 ||
	    settings_env_long(&attempts, "AUDSYNC_MAX_ATTEMPTS", err, errlen) !=
		    0 ||
	    settings_env_long(&o.backoff_base_ms, "AUDSYNC_RETRY_BASE_MS", err,
			      errlen) != 0 ||
	    settings_env_long(&o.backoff_cap_ms, "AUDSYNC_RETRY_MAX_MS", err,
			      errlen) != 0 ||
	    settings_env_long(&o.jitter_ms, "AUDSYNC_RETRY_JITTER_MS", err,
			      errlen) != 0)
		return NULL;
	o.max_attempts = (int)attempts;
	return mp_client_open(&o, err, errlen);
}

static void log_delivery(const dest_def *d, const outbox_stats *st)
{
	if (st->delivered + st->rejected + st->not_delivered == 0)
		return;
	if (st->rejected || st->not_delivered)
		log_warn("delivery incomplete", "destination", d->name,
			 LOG_INT("delivered", st->delivered),
			 LOG_INT("rejected", st->rejected),
			 LOG_INT("queued", st->not_delivered));
	else
		log_info("delivered", "destination", d->name,
			 LOG_INT("delivered", st->delivered));
}

/* Records queued for destination dest_id, or -1 with err set. */
static long long queued_for(PGconn *conn, int dest_id, char *err, size_t errlen)
{
	char id[16];
	const char *p[1] = { id };
	PGresult *r;
	long long n;

	snprintf(id, sizeof(id), "%d", dest_id);
	r = db_query(conn, "outbox size",
		     "SELECT coalesce(sum(n), 0) FROM audsync.outbox"
		     " WHERE destination_id = $1",
		     1, p, err, errlen);
	if (!r)
		return -1;
	n = db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* Records how a delivery of d went in audsync.delivery_state: failed
 * (records left queued or rejected), stopped (held: misconfigured or its
 * credentials refused), and why. A failure to record it is only logged:
 * the delivery itself went as it went. */
static void record_delivery(PGconn *conn, const dest_def *d, int failed,
			    int stopped, const char *why)
{
	char id[16], err[AUDSYNC_ERR_LEN];
	const char *p[4] = { id, failed ? "t" : "f", stopped ? "t" : "f",
			     failed || stopped ? why : NULL };

	snprintf(id, sizeof(id), "%d", d->id);
	if (db_exec(conn, "delivery state",
		    "INSERT INTO audsync.delivery_state AS s (destination_id,"
		    " failures, last_delivery_at, last_failure_at, stopped,"
		    " last_error) VALUES ($1, $2::boolean::int, now(),"
		    " CASE WHEN $2 THEN now() END, $3, $4)"
		    " ON CONFLICT (destination_id) DO UPDATE SET"
		    " failures = s.failures + $2::boolean::int,"
		    " last_delivery_at = now(), last_failure_at ="
		    " CASE WHEN $2 THEN now() ELSE s.last_failure_at END,"
		    " stopped = $3, last_error = coalesce($4, s.last_error)",
		    4, p, err, sizeof(err)) != 0)
		log_warn("delivery state not recorded", "error", err);
}

/* A destination that cannot send keeps its calls queued; they count as
 * not delivered, so that the exit status says something is wrong, and
 * the destination is recorded stopped (failed too when failed is set).
 * With nothing queued nothing is held: a deliver from a shell that lacks
 * the secret, or a destination another command's run did not use, is
 * not stopped by it. */
static int hold_dest(outbox_stats *t, PGconn *conn, const dest_def *d,
		     int failed, const char *why, char *err, size_t errlen)
{
	long long n = queued_for(conn, d->id, err, errlen);

	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	record_delivery(conn, d, failed, 1, why);
	log_error("delivery held: destination misconfigured", "destination",
		  d->name, LOG_INT("queued", n), "error", why);
	t->not_delivered += n;
	return 0;
}

static int deliver_dest(outbox_stats *t, PGconn *conn, mp_client *c,
			const dest_def *d, char *err, size_t errlen)
{
	mp_destination md;
	outbox_stats st = { 0 };
	int h;

	if (d->problem)
		return hold_dest(t, conn, d, 0, d->problem, err, errlen);
	config_mp_destination(&md, d);
	if (mp_client_add_destination(c, &h, &md) != 0)
		return hold_dest(t, conn, d, 1, mp_client_error(c), err,
				 errlen);
	if (outbox_deliver(&st, conn, c, h, d->id,
			   (volatile int *)&sync_stop_requested, err,
			   errlen) != 0)
		return -1;
	log_delivery(d, &st);
	/* Records left by a stop request are no failure of the delivery. */
	record_delivery(conn, d,
			st.rejected > 0 ||
				(st.not_delivered > 0 && !sync_stop_requested),
			mp_client_stopped(c, h), mp_client_error(c));
	t->delivered += st.delivered;
	t->rejected += st.rejected;
	t->not_delivered += st.not_delivered;
	return 0;
}

/* Tells the progress display how much is queued in l's destinations
 * (for its ETA). */
static void count_queued(PGconn *conn, const sync_list *l)
{
	char err[AUDSYNC_ERR_LEN];
	long long n, total = 0;
	int i;

	for (i = 0; i < l->ndests; i++) {
		n = queued_for(conn, l->dests[i].id, err, sizeof(err));
		if (n < 0)
			return;
		total += n;
	}
	progress_queued(total);
}

int deliver_outboxes(outbox_stats *out, PGconn *conn, const char *destination,
		     const char *computation, char *err, size_t errlen)
{
	sync_list l;
	mp_client *c;
	int i, rc = 0;

	if (config_load_destinations_for(&l, conn, destination, computation,
					 err, errlen) != 0)
		return -1;
	count_queued(conn, &l);
	c = open_client(err, errlen);
	if (!c) {
		config_free(&l);
		return -1;
	}
	mp_client_set_stop_flag(c, (volatile int *)&sync_stop_requested);
	for (i = 0; i < l.ndests && rc == 0; i++)
		rc = deliver_dest(out, conn, c, &l.dests[i], err, errlen);
	mp_client_close(c);
	config_free(&l);
	return rc;
}
