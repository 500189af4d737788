/* commands.c - the subcommands: open what they need, call the engine */
#include "audsync/commands.h"

#include "audsync/alloc.h"
#include "audsync/db.h"
#include "audsync/deliver.h"
#include "audsync/errbuf.h"
#include "audsync/forward.h"
#include "audsync/log.h"
#include "audsync/metrics.h"
#include "audsync/migrate.h"
#include "audsync/notify.h"
#include "audsync/progress.h"
#include "audsync/retire.h"
#include "audsync/retry_failed.h"
#include "audsync/rule_catalog.h"
#include "audsync/settings.h"
#include "audsync/status.h"
#include "audsync/sync.h"
#include "audsync/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A byte is written here by every signal handled, so that the daemon's
 * wait wakes up without a race between its flag test and poll. */
static int wake_pipe[2] = { -1, -1 };
static volatile sig_atomic_t reload_requested;

static void wake_up(void)
{
	int saved = errno;

	if (wake_pipe[1] >= 0)
		(void)!write(wake_pipe[1], "", 1);
	errno = saved;
}

/* First SIGTERM/SIGINT: cancel the evaluation running, leave what is in
 * flight queued, and stop. Second: exit now. */
static void on_signal(int sig)
{
	(void)sig;
	if (sync_stop_requested)
		_exit(EXIT_FAILED);
	sync_stop_requested = 1;
	db_interrupt();
	wake_up();
}

static void on_hangup(int sig)
{
	(void)sig;
	reload_requested = 1;
	wake_up();
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

/* Connects to --db, else AUDSYNC_DB (read now: the daemon's
 * AUDSYNC_ENV_FILE may have set it; empty is unset, as for every
 * variable), else libpq's defaults. Unless migrating, checks the schema
 * is current. */
static PGconn *open_db(const cli_opts *o, int need_schema)
{
	char err[AUDSYNC_ERR_LEN];
	PGconn *conn = db_connect(o->db ? o->db : settings_env("AUDSYNC_DB"),
				  err, sizeof(err));
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
	db_close(conn);
	return NULL;
}

int cmd_migrate(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
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
	db_close(conn);
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
	char err[AUDSYNC_ERR_LEN];

	if (o->metrics_file &&
	    metrics_write(conn, o->metrics_file, err, sizeof(err)) != 0)
		log_warn("metrics not written", "error", err);
}

/* Delivers what is queued for o's destination and for the destinations
 * o's computation is synced to (all when neither is named: a run of one
 * computation or destination sends no other's queue), writes the
 * metrics, and returns the exit status of everything in t: the last step
 * of every command that sends. A database that fails delivery is
 * EXIT_CONFIG, as an unreachable one is. */
static int deliver_and_report(PGconn *conn, const cli_opts *o, run_totals *t)
{
	char err[AUDSYNC_ERR_LEN];

	if (deliver_outboxes(&t->delivery, conn, o->destination, o->computation,
			     err, sizeof(err)) != 0) {
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
	char err[AUDSYNC_ERR_LEN];
	run_totals t = { 0 };
	int rc;

	/* Every sync's run takes its lock on the lock connection: made
	 * while the first statements run. */
	db_lock_conn_start(conn);
	/* A dry run changes nothing, not even other runs' rows. */
	if (!rq->dry_run && sync_mark_interrupted(conn, err, sizeof(err)) < 0) {
		log_error(err);
		return EXIT_CONFIG;
	}
	progress_begin(rq->kind == RUN_FULL ? "resync" : "run");
	rc = sync_run(&t, conn, rq, err, sizeof(err));
	if (rc != 0) {
		progress_end();
		log_error(err);
		return rc == SYNC_EUSAGE ? EXIT_USAGE : EXIT_CONFIG;
	}
	rc = rq->dry_run ? totals_status(&t) : deliver_and_report(conn, o, &t);
	if (!rq->dry_run && t.written)
		sync_refresh_statistics(conn);
	progress_end();
	return rc;
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
	db_close(conn);
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
	db_close(conn);
	return rc;
}

/* Whether sql ($1 = name) counts a row: 0 when it does, else an exit
 * status after logging "MISSING NAME". */
static int check_exists(PGconn *conn, const char *sql, const char *name,
			const char *missing)
{
	char err[AUDSYNC_ERR_LEN];
	const char *p[1] = { name };
	PGresult *r;
	int n;

	r = db_query(conn, "lookup", sql, 1, p, err, sizeof(err));
	if (!r) {
		log_error(err);
		return EXIT_CONFIG;
	}
	n = (int)db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (n > 0)
		return 0;
	snprintf(err, sizeof(err), "%s %s", missing, name);
	log_error(err);
	return EXIT_USAGE;
}

/* A --destination that names no destination is a typo, not a filter
 * that happens to match nothing: the command would quietly do nothing.
 * Returns 0, or an exit status after logging. */
static int check_destination(PGconn *conn, const char *name)
{
	if (!name)
		return 0;
	return check_exists(conn,
			    "SELECT count(*) FROM audsync.destinations"
			    " WHERE name = $1",
			    name, "no destination is named");
}

/* The same for the KEY of explain and retire: a typo exits 2, as the
 * README promises, not 3 (explain) or 1 (retire). */
static int check_computation(PGconn *conn, const char *key)
{
	return check_exists(conn,
			    "SELECT count(*) FROM audsync.computations"
			    " WHERE key = $1",
			    key, "no computation has the key");
}

/* open_db() for a command that takes --destination, then
 * check_destination(): the connection, or NULL with *rc its exit status. */
static PGconn *open_db_dest(const cli_opts *o, int *rc)
{
	PGconn *conn = open_db(o, 1);

	*rc = conn ? check_destination(conn, o->destination) : EXIT_CONFIG;
	if (conn && *rc != 0) {
		db_close(conn);
		conn = NULL;
	}
	return conn;
}

int cmd_deliver(const cli_opts *o)
{
	run_totals t = { 0 };
	int rc;
	PGconn *conn = open_db_dest(o, &rc);

	if (!conn)
		return rc;
	install_signals();
	progress_begin("deliver");
	rc = deliver_and_report(conn, o, &t);
	progress_end();
	db_close(conn);
	return rc;
}

/* Drains the wake pipe and the notifications; returns 1 when a NOTIFY
 * came. */
static int take_events(PGconn *conn, const struct pollfd *pfd)
{
	char sink[64];
	PGnotify *n;
	int woke = 0;

	if (pfd[1].revents & POLLIN)
		while (read(wake_pipe[0], sink, sizeof(sink)) > 0)
			;
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
	if (f->messages == 0)
		return;
	log_info("messages forwarded", LOG_INT("messages", f->messages),
		 LOG_INT("queued", f->queued),
		 LOG_INT("already_forwarded", f->duplicates),
		 LOG_INT("skipped", f->skipped), LOG_INT("failed", f->failed),
		 LOG_INT("calls", f->calls), LOG_INT("in_part", f->in_part));
}

/* Drains audsync.inbound (of one destination when named). Returns 0, or
 * -1 after logging the error; rows that failed are logged as they go. */
static int forward_inbound(PGconn *conn, forward_totals *out,
			   const char *destination)
{
	char err[AUDSYNC_ERR_LEN];
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
 * 0, or -1 (FORWARD_EUSAGE: a usage error) after logging the error. */
static int forward_file(PGconn *conn, const cli_opts *o, forward_totals *f,
			run_totals *t)
{
	char err[AUDSYNC_ERR_LEN];
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
		if (rc != 0) {
			log_error(err, "file", path ? path : "-");
			break;
		}
		if (!eof)
			rc = deliver_outboxes(&t->delivery, conn,
					      o->destination, NULL, err,
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
	conn = open_db_dest(o, &rc);
	if (!conn)
		return rc;
	install_signals();
	rc = o->from_table ? forward_inbound(conn, &f, o->destination)
			   : forward_file(conn, o, &f, &t);
	if (rc != 0) {
		db_close(conn);
		return rc == FORWARD_EUSAGE ? EXIT_USAGE : EXIT_CONFIG;
	}
	rc = deliver_and_report(conn, o, &t);
	db_close(conn);
	return f.failed && rc == EXIT_OK ? EXIT_FAILED : rc;
}

/* Waits until timeout_ms pass, a NOTIFY arrives (returns 1) or a signal
 * asks to stop or reload; pings the watchdog meanwhile. conn may be NULL
 * (the database is unreachable: only time and signals wake it). */
static int wait_for_events(PGconn *conn, int timeout_ms)
{
	struct pollfd pfd[2];
	long dog = notify_watchdog_ms();
	int slice, woke;

	pfd[0].fd = conn ? PQsocket(conn) : -1;
	pfd[0].events = POLLIN;
	pfd[1].fd = wake_pipe[0];
	pfd[1].events = POLLIN;
	pfd[0].revents = pfd[1].revents = 0;
	/* A NOTIFY that came while the pass ran its statements is already
	 * in libpq's queue, not on the socket: poll would not see it. */
	woke = conn ? take_events(conn, pfd) : 0;
	while (timeout_ms > 0 && !woke && !sync_stop_requested &&
	       !reload_requested) {
		notify_watchdog();
		slice = dog > 0 && dog / 2 < timeout_ms ? (int)(dog / 2)
							: timeout_ms;
		timeout_ms -= slice;
		if (poll(pfd, 2, slice) < 0 && errno != EINTR)
			break;
		if (conn)
			woke = take_events(conn, pfd);
	}
	return woke;
}

/* One pass of the daemon: due syncs (or, woken by new events, the
 * real-time ones), then delivery. */
static void daemon_pass(PGconn *conn, const cli_opts *o, int woke)
{
	char err[AUDSYNC_ERR_LEN];
	run_request rq = { 0 };
	run_totals t = { 0 };

	log_new_run_id();
	progress_begin("pass");
	rq.only_due = !woke;
	rq.only_realtime = woke;
	rq.kind = RUN_SCHEDULED;
	if (sync_run(&t, conn, &rq, err, sizeof(err)) != 0)
		log_error(err);
	/* A definition's function may have run UNLISTEN: a rollback
	 * undoes that only when the definition failed. */
	if (db_exec(conn, "daemon", "LISTEN audsync_events", 0, NULL, err,
		    sizeof(err)) != 0)
		log_error(err);
	if (forward_inbound(conn, NULL, NULL) != 0)
		t.failed++;
	if (deliver_outboxes(&t.delivery, conn, NULL, NULL, err, sizeof(err)) !=
	    0)
		log_error(err);
	if (t.written)
		sync_refresh_statistics(conn);
	write_metrics(conn, o);
	progress_end();
}

/* Applies the KEY=value lines of path to the environment; blank lines
 * and '#' comments are skipped, one pair of quotes around a value goes. */
/* What load_env_file() replaced, to put back when a reload is refused. */
typedef struct env_undo {
	char **keys, **olds; /* olds[i] NULL: the variable was not set */
	int n;
} env_undo;

static void env_undo_add(env_undo *u, const char *key)
{
	const char *old = getenv(key);

	u->keys = alloc_realloc(u->keys, (size_t)(u->n + 1) * sizeof(char *));
	u->olds = alloc_realloc(u->olds, (size_t)(u->n + 1) * sizeof(char *));
	u->keys[u->n] = alloc_strdup(key);
	u->olds[u->n] = old ? alloc_strdup(old) : NULL;
	u->n++;
}

/* Puts the environment back as it was, last change first. */
static void env_undo_apply(env_undo *u)
{
	int i;

	for (i = u->n - 1; i >= 0; i--) {
		if (u->olds[i])
			setenv(u->keys[i], u->olds[i], 1);
		else
			unsetenv(u->keys[i]);
	}
}

static void env_undo_free(env_undo *u)
{
	int i;

	for (i = 0; i < u->n; i++) {
		free(u->keys[i]);
		free(u->olds[i]);
	}
	free(u->keys);
	free(u->olds);
	memset(u, 0, sizeof(*u));
}

/* Applies path's KEY=value lines (recording in undo what they replace),
 * then checks every setting as main() does at start. Returns 0, or -1
 * with err set; the caller puts undo back. */
static int load_env_file(const char *path, env_undo *undo, char *err,
			 size_t errlen)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k = line + strspn(line, " \t"), *eq = strchr(k, '='), *v;
		size_t len;

		n++;
		if (*k == '#' || *k == '\n' || *k == '\0')
			continue;
		if (!eq) {
			snprintf(err, errlen, "%s:%d: not KEY=value", path, n);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		v = eq + 1;
		len = strcspn(v, "\r\n");
		v[len] = '\0';
		if (len >= 2 && (v[0] == '"' || v[0] == '\'') &&
		    v[len - 1] == v[0]) {
			v[len - 1] = '\0';
			v++;
		}
		env_undo_add(undo, k);
		setenv(k, v, 1);
	}
	fclose(f);
	return settings_check_env(err, errlen);
}

/* After a reload, the database the daemon started with is kept: its
 * connection holds the LISTEN, the schema check and the reconciliation
 * of interrupted runs made at start, and a switch half done (a new
 * database unreachable or unmigrated) would be worse than none. A
 * changed AUDSYNC_DB (when --db did not win) is put back, so that each
 * reload compares with the database in use, and one line says to
 * restart. db is AUDSYNC_DB as it was before the reload. */
static void keep_database(const cli_opts *o, const char *db)
{
	if (o->db || strcmp(db, settings_env("AUDSYNC_DB")) == 0)
		return;
	setenv("AUDSYNC_DB", db, 1);
	log_warn("AUDSYNC_DB changed: restart the daemon to use it; it stays "
		 "on the database it started with");
}

/* The settings the daemon reads again on SIGHUP: AUDSYNC_ENV_FILE's
 * lines, then the log settings (the command line's still win). The
 * others are read afresh by every pass. A bad reload keeps the old;
 * a changed AUDSYNC_DB is not applied (keep_database). */
static void daemon_reload(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	const char *file = getenv("AUDSYNC_ENV_FILE");
	char *db = alloc_strdup(settings_env("AUDSYNC_DB"));

	env_undo undo = { 0 };

	reload_requested = 0;
	notify_send("RELOADING=1");
	if (file && *file &&
	    load_env_file(file, &undo, err, sizeof(err)) != 0) {
		env_undo_apply(&undo);
		log_error("reload failed: settings kept", "error", err);
	} else if (log_setup(o->log_level, o->log_format, err, sizeof(err)) !=
		   0) {
		log_error("reload failed: log settings kept", "error", err);
	} else {
		keep_database(o, db);
		log_info("reloaded: settings read again", "env_file",
			 file && *file ? file : "-");
	}
	env_undo_free(&undo);
	free(db);
	notify_send("READY=1");
}

/* Connects again after the connection broke. 0, or -1 after a wait. */
static int daemon_reconnect(PGconn *conn)
{
	char err[AUDSYNC_ERR_LEN];

	PQreset(conn);
	if (PQstatus(conn) == CONNECTION_OK &&
	    db_exec(conn, "daemon", "LISTEN audsync_events", 0, NULL, err,
		    sizeof(err)) == 0)
		return 0;
	log_error("database unreachable; retrying in 10 s");
	wait_for_events(NULL, 10000);
	return -1;
}

static void daemon_loop(PGconn *conn, const cli_opts *o)
{
	int woke = 0;

	while (!sync_stop_requested) {
		if (reload_requested)
			daemon_reload(o);
		if (PQstatus(conn) != CONNECTION_OK && daemon_reconnect(conn))
			continue;
		daemon_pass(conn, o, woke);
		/* A burst of events wakes once: wait a second, then drain. */
		woke = wait_for_events(conn, 60000);
		if (woke)
			wait_for_events(conn, 1000);
	}
}

int cmd_daemon(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	const char *file = getenv("AUDSYNC_ENV_FILE");
	PGconn *conn;
	struct sigaction sa;

	env_undo undo = { 0 };
	int bad =
		file && *file &&
		(load_env_file(file, &undo, err, sizeof(err)) != 0 ||
		 log_setup(o->log_level, o->log_format, err, sizeof(err)) != 0);

	env_undo_free(&undo);
	if (bad) {
		log_error(err);
		return EXIT_CONFIG;
	}
	conn = open_db(o, 1);
	if (!conn)
		return EXIT_CONFIG;
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		log_error("daemon: cannot create a pipe", "error",
			  strerror(errno));
		db_close(conn);
		return EXIT_CONFIG;
	}
	install_signals();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hangup;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	if (db_exec(conn, "daemon", "LISTEN audsync_events", 0, NULL, err,
		    sizeof(err)) != 0 ||
	    sync_mark_interrupted(conn, err, sizeof(err)) < 0) {
		log_error(err);
		db_close(conn);
		return EXIT_CONFIG;
	}
	log_info("daemon started");
	notify_send("READY=1");
	daemon_loop(conn, o);
	notify_send("STOPPING=1");
	log_info("daemon stopped");
	db_close(conn);
	return EXIT_OK;
}

/* A threshold of status --check, in seconds, from the environment:
 * main() has refused a bad one already. */
static long check_age(const char *name)
{
	char err[AUDSYNC_ERR_LEN];
	long n = 0;

	if (settings_env_long(&n, name, err, sizeof(err)) != 0)
		log_error(err);
	return n;
}

/* status --check: a Nagios plugin's line and exit status; 3 (UNKNOWN)
 * when the database cannot tell. */
static int status_nagios(PGconn *conn)
{
	char err[AUDSYNC_ERR_LEN];
	status_level lv;

	if (status_check(&lv, stdout, conn, check_age("AUDSYNC_CHECK_WARN_AGE"),
			 check_age("AUDSYNC_CHECK_CRIT_AGE"), err,
			 sizeof(err)) != 0) {
		printf("AUDSYNC UNKNOWN - %s\n", err);
		return STATUS_UNKNOWN;
	}
	return (int)lv;
}

int cmd_status(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	PGconn *conn;
	int rc = EXIT_OK;

	/* --check prints its one line about every destination: a --json
	 * or a filter it ignored would pass for one it obeyed. */
	if (o->check && (o->json || o->destination)) {
		/* a plugin's own mistake: UNKNOWN, as main() says */
		printf("AUDSYNC UNKNOWN - --check takes no %s\n",
		       o->json ? "--json" : "--destination");
		return STATUS_UNKNOWN;
	}
	conn = open_db(o, 1);

	if (!conn) {
		if (o->check)
			printf("AUDSYNC UNKNOWN - the database cannot be read\n");
		return o->check ? STATUS_UNKNOWN : EXIT_CONFIG;
	}
	if (o->check)
		rc = status_nagios(conn);
	else
		rc = check_destination(conn, o->destination);
	if (rc == EXIT_OK && !o->check &&
	    (o->dead_letters ? status_dead_letters(stdout, conn, o->destination,
						   o->json, err, sizeof(err))
			     : status_print(stdout, conn, o->destination,
					    o->json, err, sizeof(err))) != 0) {
		log_error(err);
		rc = EXIT_CONFIG;
	}
	db_close(conn);
	return rc;
}

int cmd_validate(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	PGconn *conn = open_db(o, 1);
	int problems = 0;

	if (!conn)
		return EXIT_CONFIG;
	if (validate_definitions(&problems, stdout, conn, err, sizeof(err)) !=
	    0) {
		log_error(err);
		problems = 1;
	}
	db_close(conn);
	return problems ? EXIT_CONFIG : EXIT_OK;
}

int cmd_explain(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	PGconn *conn = open_db(o, 1);
	int rc = EXIT_OK;

	if (!conn)
		return EXIT_CONFIG;
	rc = check_computation(conn, o->arg);
	if (rc == EXIT_OK &&
	    rule_catalog_explain(stdout, conn, o->arg, err, sizeof(err)) != 0) {
		log_error(err);
		rc = EXIT_CONFIG;
	}
	db_close(conn);
	return rc;
}

int cmd_retire(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	run_totals t = { 0 };
	PGconn *conn = open_db(o, 1);
	int rc;

	if (!conn)
		return EXIT_CONFIG;
	rc = check_computation(conn, o->arg);
	if (rc != EXIT_OK) {
		db_close(conn);
		return rc;
	}
	install_signals();
	if (retire_computation(conn, o->arg, o->unset, err, sizeof(err)) != 0) {
		log_error(err);
		db_close(conn);
		return EXIT_FAILED;
	}
	log_info("computation retired", "computation", o->arg, "unset",
		 o->unset ? "queued" : "no");
	rc = deliver_and_report(conn, o, &t);
	db_close(conn);
	return rc;
}

int cmd_retry_failed(const cli_opts *o)
{
	char err[AUDSYNC_ERR_LEN];
	run_totals t = { 0 };
	long long n = 0, left = 0;
	int rc;
	PGconn *conn = open_db_dest(o, &rc);

	if (!conn)
		return rc;
	install_signals();
	if (retry_failed_requeue(&n, &left, conn, o->destination, err,
				 sizeof(err)) != 0) {
		log_error(err);
		db_close(conn);
		return EXIT_FAILED;
	}
	log_info("dead letters requeued", LOG_INT("records", n));
	if (left > 0)
		log_warn("dead letters left", LOG_INT("records", left),
			 "reason",
			 "their computation is retired, or their sync"
			 " disabled or deleted");
	rc = deliver_and_report(conn, o, &t);
	db_close(conn);
	return rc;
}
