/* commands.c - the subcommands: open what they need, call the engine */
#include "audsync/commands.h"

#include "audsync/db.h"
#include "audsync/forward.h"
#include "audsync/log.h"
#include "audsync/metrics.h"
#include "audsync/migrate.h"
#include "audsync/rule_catalog.h"
#include "audsync/status.h"
#include "audsync/sync.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* First SIGTERM/SIGINT: finish what is in hand and stop. Second: now. */
static void on_signal(int sig)
{
	(void)sig;
	if (sync_stop_requested)
		_exit(EXIT_FAILED);
	sync_stop_requested = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Connects, and unless migrating, checks the schema is current. */
static PGconn *open_db(const cli_opts *o, int need_schema)
{
	char err[600];
	PGconn *conn = db_connect(o->db, err, sizeof(err));
	int current = 0;

	if (!conn) {
		log_error(err);
		return NULL;
	}
	if (!need_schema)
		return conn;
	if (migrate_is_current(conn, &current, err, sizeof(err)) != 0) {
		log_error(err);
	} else if (!current) {
		log_error("the audsync schema is missing or old: run "
			  "'audsync migrate' first");
	} else {
		return conn;
	}
	PQfinish(conn);
	return NULL;
}

int cmd_migrate(const cli_opts *o)
{
	char err[1024];
	PGconn *conn = open_db(o, 0);
	int applied = 0, rc = EXIT_CONFIG;

	if (!conn)
		return EXIT_CONFIG;
	if (migrate_apply(conn, &applied, err, sizeof(err)) != 0) {
		log_error(err);
		goto out;
	}
	if (applied == 0)
		log_info("schema is up to date");
	rc = EXIT_OK;
out:
	PQfinish(conn);
	return rc;
}

/* The exit status a timer or cron sees for what happened. */
static int totals_status(const run_totals *t)
{
	if (t->failed || t->delivery.rejected || t->delivery.not_delivered)
		return EXIT_FAILED;
	return EXIT_OK;
}

static void write_metrics(PGconn *conn, const cli_opts *o)
{
	char err[600];

	if (o->metrics_file &&
	    metrics_write(conn, o->metrics_file, err, sizeof(err)) != 0)
		log_warn("metrics not written", "error", err);
}

/* Delivers what is queued for o's destination (all when unnamed), writes
 * the metrics, and returns the exit status of everything in t: the last
 * step of every command that sends. A database that fails delivery is
 * EXIT_CONFIG, as an unreachable one is. */
static int deliver_and_report(PGconn *conn, const cli_opts *o, run_totals *t)
{
	char err[1024];

	if (sync_deliver(t, conn, o->destination, err, sizeof(err)) != 0) {
		log_error(err);
		write_metrics(conn, o);
		return EXIT_CONFIG;
	}
	write_metrics(conn, o);
	return totals_status(t);
}

/* Evaluates what rq selects, then delivers: the body of run and resync. */
static int run_and_deliver(PGconn *conn, const cli_opts *o,
			   const run_request *rq)
{
	char err[1024];
	run_totals t = { 0 };
	int rc;

	/* A dry run changes nothing, not even other runs' rows. */
	if (!rq->dry_run && sync_mark_interrupted(conn, err, sizeof(err)) < 0) {
		log_error(err);
		return EXIT_CONFIG;
	}
	rc = sync_run(&t, conn, rq, err, sizeof(err));
	if (rc != 0) {
		log_error(err);
		return rc == SYNC_EUSAGE ? EXIT_USAGE : EXIT_CONFIG;
	}
	if (rq->dry_run)
		return totals_status(&t);
	return deliver_and_report(conn, o, &t);
}

int cmd_run(const cli_opts *o)
{
	run_request rq = { 0 };
	PGconn *conn = open_db(o, 1);
	int rc;

	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	rq.computation = o->computation;
	rq.destination = o->destination;
	rq.as_of = o->as_of;
	rq.only_due = !o->all && !o->computation && !o->destination;
	rq.kind = rq.only_due ? RUN_SCHEDULED : RUN_MANUAL;
	rq.dry_run = o->dry_run ? stdout : NULL;
	rc = run_and_deliver(conn, o, &rq);
	PQfinish(conn);
	return rc;
}

int cmd_resync(const cli_opts *o)
{
	run_request rq = { 0 };
	PGconn *conn;
	int rc;

	if (!o->computation) {
		fprintf(stderr, "audsync resync: --computation KEY is required"
				"\nusage: audsync resync --computation KEY "
				"[--destination NAME] [--reset]\n");
		return EXIT_USAGE;
	}
	conn = open_db(o, 1);
	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	rq.computation = o->computation;
	rq.destination = o->destination;
	rq.kind = RUN_FULL;
	rq.reset = o->reset;
	rc = run_and_deliver(conn, o, &rq);
	PQfinish(conn);
	return rc;
}

int cmd_deliver(const cli_opts *o)
{
	run_totals t = { 0 };
	PGconn *conn = open_db(o, 1);
	int rc;

	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	rc = deliver_and_report(conn, o, &t);
	PQfinish(conn);
	return rc;
}

/* Waits until timeout_ms pass, a NOTIFY arrives (returns 1) or a signal
 * asks to stop. */
static int wait_for_events(PGconn *conn, int timeout_ms)
{
	struct pollfd pfd;
	PGnotify *n;
	int woke = 0;

	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		return 0;
	PQconsumeInput(conn);
	for (n = PQnotifies(conn); n; n = PQnotifies(conn)) {
		woke = 1;
		PQfreemem(n);
	}
	return woke;
}

/* Messages forwarded per round of reading before delivery starts: the
 * outbox never holds a whole stream. */
#define FORWARD_ROUND 100000

static void log_forward(const forward_totals *f)
{
	char v[6][24];

	if (f->messages == 0)
		return;
	snprintf(v[0], sizeof(v[0]), "%lld", f->messages);
	snprintf(v[1], sizeof(v[1]), "%lld", f->queued);
	snprintf(v[2], sizeof(v[2]), "%lld", f->duplicates);
	snprintf(v[3], sizeof(v[3]), "%lld", f->skipped);
	snprintf(v[4], sizeof(v[4]), "%lld", f->failed);
	snprintf(v[5], sizeof(v[5]), "%lld", f->calls);
	log_info("messages forwarded", "messages", v[0], "queued", v[1],
		 "already_forwarded", v[2], "skipped", v[3], "failed", v[4],
		 "calls", v[5]);
}

/* Drains audsync.inbound (of one destination when named). Returns 0, or
 * -1 after logging the error; rows that failed are logged as they go. */
static int forward_inbound(PGconn *conn, forward_totals *out,
			   const char *destination)
{
	char err[1024];
	forward_totals f = { 0 };
	int rc = forward_drain_inbound(&f, conn, destination,
				       &sync_stop_requested, err, sizeof(err));

	if (rc != 0)
		log_error(err);
	log_forward(&f);
	if (out)
		*out = f;
	return rc;
}

/* Reads o's file (or stdin) in rounds, delivering after each. Returns
 * 0, or -1 after logging the error. */
static int forward_file(PGconn *conn, const cli_opts *o, forward_totals *f,
			run_totals *t)
{
	char err[1024];
	const char *path = o->arg && strcmp(o->arg, "-") != 0 ? o->arg : NULL;
	FILE *in = path ? fopen(path, "r") : stdin;
	long long line = 0;
	int eof = 0, rc = 0;

	if (!in) {
		log_error("cannot open the messages", "file", path, "error",
			  strerror(errno));
		return -1;
	}
	while (rc == 0 && !eof && !sync_stop_requested) {
		rc = forward_stream(f, &eof, &line, conn, in, o->destination,
				    FORWARD_ROUND, err, sizeof(err));
		if (rc == 0 && !eof)
			rc = sync_deliver(t, conn, o->destination, err,
					  sizeof(err));
		if (rc != 0)
			log_error(err);
	}
	if (path)
		fclose(in);
	log_forward(f);
	return rc;
}

int cmd_forward(const cli_opts *o)
{
	forward_totals f = { 0 };
	run_totals t = { 0 };
	PGconn *conn;
	int rc;

	if (o->from_table && o->arg) {
		fprintf(stderr, "audsync forward: --from-table reads no FILE\n"
				"usage: audsync forward [--destination NAME] "
				"[--from-table] [FILE|-]\n");
		return EXIT_USAGE;
	}
	conn = open_db(o, 1);
	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	rc = o->from_table ? forward_inbound(conn, &f, o->destination)
			   : forward_file(conn, o, &f, &t);
	if (rc != 0) {
		PQfinish(conn);
		return EXIT_CONFIG;
	}
	rc = deliver_and_report(conn, o, &t);
	PQfinish(conn);
	return f.failed && rc == EXIT_OK ? EXIT_FAILED : rc;
}

/* One pass of the daemon: due syncs (or, woken by new events, the
 * real-time ones), then delivery. */
static void daemon_pass(PGconn *conn, const cli_opts *o, int woke)
{
	char err[1024];
	run_request rq = { 0 };
	run_totals t = { 0 };

	rq.only_due = !woke;
	rq.only_realtime = woke;
	rq.kind = RUN_SCHEDULED;
	if (sync_run(&t, conn, &rq, err, sizeof(err)) != 0)
		log_error(err);
	if (forward_inbound(conn, NULL, NULL) != 0)
		t.failed++;
	if (sync_deliver(&t, conn, NULL, err, sizeof(err)) != 0)
		log_error(err);
	write_metrics(conn, o);
}

int cmd_daemon(const cli_opts *o)
{
	char err[1024];
	PGconn *conn = open_db(o, 1);
	int woke = 0;

	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	if (db_exec(conn, "daemon", "LISTEN audsync_events", 0, NULL, err,
		    sizeof(err)) != 0 ||
	    sync_mark_interrupted(conn, err, sizeof(err)) < 0) {
		log_error(err);
		PQfinish(conn);
		return EXIT_CONFIG;
	}
	log_info("daemon started");
	while (!sync_stop_requested) {
		if (PQstatus(conn) != CONNECTION_OK) {
			PQreset(conn);
			if (PQstatus(conn) != CONNECTION_OK ||
			    db_exec(conn, "daemon", "LISTEN audsync_events", 0,
				    NULL, err, sizeof(err)) != 0) {
				log_error("database unreachable; retrying in "
					  "10 s");
				sleep(10);
				continue;
			}
		}
		daemon_pass(conn, o, woke);
		/* A burst of events wakes once: wait a second, then drain. */
		woke = wait_for_events(conn, 60000);
		if (woke)
			wait_for_events(conn, 1000);
	}
	log_info("daemon stopped");
	PQfinish(conn);
	return EXIT_OK;
}

int cmd_status(const cli_opts *o)
{
	char err[1024];
	PGconn *conn = open_db(o, 1);
	int rc = EXIT_OK;

	if (!conn)
		return EXIT_CONFIG;
	if (status_print(stdout, conn, o->json, err, sizeof(err)) != 0) {
		log_error(err);
		rc = EXIT_CONFIG;
	}
	PQfinish(conn);
	return rc;
}

int cmd_validate(const cli_opts *o)
{
	char err[1024];
	PGconn *conn = open_db(o, 1);
	int problems = 0;

	if (!conn)
		return EXIT_CONFIG;
	if (status_validate(&problems, stdout, conn, err, sizeof(err)) != 0) {
		log_error(err);
		problems = 1;
	}
	PQfinish(conn);
	return problems ? EXIT_CONFIG : EXIT_OK;
}

int cmd_explain(const cli_opts *o)
{
	char err[1024];
	PGconn *conn = open_db(o, 1);
	int rc = EXIT_OK;

	if (!conn)
		return EXIT_CONFIG;
	if (rule_catalog_explain(stdout, conn, o->arg, err, sizeof(err)) != 0) {
		log_error(err);
		rc = EXIT_CONFIG;
	}
	PQfinish(conn);
	return rc;
}

int cmd_retire(const cli_opts *o)
{
	char err[1024];
	run_totals t = { 0 };
	PGconn *conn = open_db(o, 1);
	int rc;

	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	if (sync_retire(&t, conn, o->arg, o->unset, err, sizeof(err)) != 0) {
		log_error(err);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	log_info("computation retired", "computation", o->arg, "unset",
		 o->unset ? "queued" : "no");
	rc = deliver_and_report(conn, o, &t);
	PQfinish(conn);
	return rc;
}

int cmd_retry_failed(const cli_opts *o)
{
	char err[1024], n_s[24];
	run_totals t = { 0 };
	long long n = 0;
	PGconn *conn = open_db(o, 1);
	int rc;

	if (!conn)
		return EXIT_CONFIG;
	install_signals();
	if (sync_requeue_dead(&n, conn, o->destination, err, sizeof(err)) !=
	    0) {
		log_error(err);
		PQfinish(conn);
		return EXIT_FAILED;
	}
	snprintf(n_s, sizeof(n_s), "%lld", n);
	log_info("dead letters requeued", "records", n_s);
	rc = deliver_and_report(conn, o, &t);
	PQfinish(conn);
	return rc;
}
