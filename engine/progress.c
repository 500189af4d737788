/* progress.c - how far a long run, resync or delivery has come */
#include "audsync/progress.h"

#include "audsync/errbuf.h"
#include "audsync/log.h"
#include "audsync/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SHOW_AFTER_S	  2.0  /* an operation shorter than this is silent */
#define TTY_INTERVAL_S	  0.25 /* how often the terminal line is redrawn */
#define LOG_INTERVAL_MS_D 10000

static struct {
	const char *what; /* NULL: no operation */
	double start, last;
	long long decided, delivered, queued;
	int tty;
	double log_interval;
} pg;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_begin(const char *what)
{
	char err[AUDSYNC_ERR_LEN];
	long ms = LOG_INTERVAL_MS_D;

	/* main() has refused a bad value: the default stands in for one
	 * that could not be read */
	if (settings_env_long(&ms, "AUDSYNC_PROGRESS_INTERVAL_MS", err,
			      sizeof(err)) != 0)
		ms = LOG_INTERVAL_MS_D;

	pg.what = what;
	pg.start = pg.last = now_s();
	pg.decided = pg.delivered = pg.queued = 0;
	pg.tty = isatty(STDERR_FILENO);
	pg.log_interval = ms / 1000.0;
}

void progress_decided(long long n)
{
	pg.decided += n;
}

void progress_delivered(long long n)
{
	pg.delivered += n;
}

void progress_queued(long long n)
{
	pg.queued = n;
}

/* The delivery rate per second, and the seconds left (-1: not known). */
static void rate_eta(long long *rate, long long *eta, double elapsed)
{
	double r = elapsed > 0 ? (double)pg.delivered / elapsed : 0;
	long long left = pg.queued - pg.delivered;

	*rate = (long long)(r + 0.5);
	*eta = pg.queued > 0 && left > 0 && r > 0
		       ? (long long)((double)left / r + 0.5)
		       : -1;
}

void progress_tick(void)
{
	char line[200], eta_text[32] = "-";
	long long rate, eta;
	double now, elapsed;

	if (!pg.what)
		return;
	now = now_s();
	elapsed = now - pg.start;
	if (elapsed < SHOW_AFTER_S ||
	    now - pg.last < (pg.tty ? TTY_INTERVAL_S : pg.log_interval))
		return;
	pg.last = now;
	rate_eta(&rate, &eta, elapsed);
	if (!pg.tty) {
		log_info("progress", "operation", pg.what,
			 LOG_INT("decided", pg.decided),
			 LOG_INT("delivered", pg.delivered),
			 LOG_INT("rate_per_s", rate),
			 LOG_INT_KNOWN("eta_s", eta, eta >= 0));
		return;
	}
	if (eta >= 0)
		snprintf(eta_text, sizeof(eta_text), "%lld s", eta);
	snprintf(line, sizeof(line),
		 "%s: %lld decided, %lld delivered, %lld/s, ETA %s", pg.what,
		 pg.decided, pg.delivered, rate, eta_text);
	log_status_line(line);
}

void progress_end(void)
{
	if (pg.what && pg.tty)
		log_status_line(NULL);
	pg.what = NULL;
}
