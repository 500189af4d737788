/* commands.h - the subcommands of the audsync command line */
#ifndef AUDSYNC_COMMANDS_H
#define AUDSYNC_COMMANDS_H

/* Exit statuses seen by systemd timers and cron (DESIGN.md section 9). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* a run or a delivery failed */
	EXIT_USAGE = 2,
	EXIT_CONFIG = 3 /* configuration, or the database unreachable */
};

/* Everything the command line said; strings are borrowed from argv. */
typedef struct cli_opts {
	const char *db;
	const char *metrics_file;
	const char *log_level;	/* --log-level, NULL when not given */
	const char *log_format; /* --log-format, NULL when not given */
	const char *computation;
	const char *destination;
	const char *as_of;
	const char *arg; /* the positional argument (retire KEY) */
	int all;
	int dry_run;
	int reset;
	int json;
	int unset;
	int from_table;
	int check;	  /* status --check */
	int dead_letters; /* status --dead-letters */
} cli_opts;

/* Each returns an exit status. */
int cmd_migrate(const cli_opts *o);
int cmd_run(const cli_opts *o);
int cmd_deliver(const cli_opts *o);
int cmd_resync(const cli_opts *o);
int cmd_daemon(const cli_opts *o);
int cmd_status(const cli_opts *o);
int cmd_validate(const cli_opts *o);
/* explain KEY: the SQL a computation's definition evaluates. */
int cmd_explain(const cli_opts *o);
int cmd_retire(const cli_opts *o);
int cmd_retry_failed(const cli_opts *o);
int cmd_forward(const cli_opts *o);

#endif
