/* commands.c - the subcommands: open what they need, call the engine */
#include "audsync/commands.h"

#include "audsync/db.h"
#include "audsync/log.h"
#include "audsync/migrate.h"

#include <stdio.h>

/* Connects or says why not: every command's first step. */
static PGconn *open_db(const cli_opts *o)
{
	char err[600];
	PGconn *conn = db_connect(o->db, err, sizeof(err));

	if (!conn)
		log_error(err);
	return conn;
}

int cmd_migrate(const cli_opts *o)
{
	char err[1024];
	PGconn *conn = open_db(o);
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

static int not_yet(const char *name)
{
	log_error("command not available yet in this build", "command",
		  name);
	return EXIT_FAILED;
}

int cmd_run(const cli_opts *o) { (void)o; return not_yet("run"); }
int cmd_deliver(const cli_opts *o) { (void)o; return not_yet("deliver"); }
int cmd_resync(const cli_opts *o) { (void)o; return not_yet("resync"); }
int cmd_daemon(const cli_opts *o) { (void)o; return not_yet("daemon"); }
int cmd_status(const cli_opts *o) { (void)o; return not_yet("status"); }
int cmd_validate(const cli_opts *o) { (void)o; return not_yet("validate"); }
int cmd_retire(const cli_opts *o) { (void)o; return not_yet("retire"); }
int cmd_retry_failed(const cli_opts *o)
{
	(void)o;
	return not_yet("retry-failed");
}
