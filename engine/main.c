/* main.c - the audsync command line: options, help, dispatch */
#include "audsync/commands.h"
#include "audsync/errbuf.h"
#include "audsync/log.h"
#include "audsync/settings.h"
#include "audsync/status.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which options a command takes (global ones are always allowed). */
enum {
	OPT_COMPUTATION = 1 << 0,
	OPT_DESTINATION = 1 << 1,
	OPT_ALL = 1 << 2,
	OPT_AS_OF = 1 << 3,
	OPT_DRY_RUN = 1 << 4,
	OPT_RESET = 1 << 5,
	OPT_JSON = 1 << 6,
	OPT_UNSET = 1 << 7,
	OPT_FROM_TABLE = 1 << 8,
	OPT_CHECK = 1 << 9,
	OPT_DEAD = 1 << 10
};

typedef struct command {
	const char *name;
	int (*fn)(const cli_opts *o);
	unsigned opts;
	int positional; /* required positional arguments; -1: 0 or 1 */
	const char *synopsis;
	const char *help;
} command;

static const command commands[] = {
	{ "migrate", cmd_migrate, 0, 0, "migrate",
	  "Create or upgrade the audsync schema. Idempotent: a second run\n"
	  "changes nothing." },
	{ "run", cmd_run,
	  OPT_COMPUTATION | OPT_DESTINATION | OPT_ALL | OPT_AS_OF | OPT_DRY_RUN,
	  0,
	  "run [--computation KEY] [--destination NAME] [--all] [--as-of TS]"
	  " [--dry-run]",
	  "Evaluate the syncs that are due (or the named ones, or --all),\n"
	  "enqueue their changes and deliver them (named ones: only the\n"
	  "queues of their destinations). --as-of evaluates at a\n"
	  "past time (default now). --dry-run prints the calls a run would\n"
	  "make and changes nothing." },
	{ "deliver", cmd_deliver, OPT_DESTINATION, 0,
	  "deliver [--destination NAME]", "Deliver queued calls only." },
	{ "resync", cmd_resync, OPT_COMPUTATION | OPT_DESTINATION | OPT_RESET,
	  0, "resync --computation KEY [--destination NAME] [--reset]",
	  "Send the full current state again: each member's value, and\n"
	  "each former member's exit value (false, or a trait's null) to\n"
	  "every distinct_id it was told. Identify re-sends are\n"
	  "idempotent; track re-sends keep their time and $insert_id, so\n"
	  "Mixpanel drops them as duplicates. --reset forgets the snapshot:\n"
	  "the next run is a first sync. A sync another process is\n"
	  "evaluating is not resynced: exit 1, run it again." },
	{ "daemon", cmd_daemon, 0, 0, "daemon",
	  "Schedule and deliver until SIGTERM (a second SIGTERM exits at\n"
	  "once). Wakes on NOTIFY audsync_events." },
	{ "status", cmd_status,
	  OPT_JSON | OPT_CHECK | OPT_DEAD | OPT_DESTINATION, 0,
	  "status [--json | --check] [--destination NAME] [--dead-letters]",
	  "Syncs: last run, last success, duration, next due, counts,\n"
	  "queue, dead letters, errors. --json prints one JSON document\n"
	  "(schema_version 1, see audsync(1)). --check prints one line and\n"
	  "exits 0 OK, 1 WARNING (dead letters, a queue older than\n"
	  "AUDSYNC_CHECK_WARN_AGE seconds, 900), 2 CRITICAL (a failed sync,\n"
	  "a stopped destination, a queue older than AUDSYNC_CHECK_CRIT_AGE,\n"
	  "3600), 3 UNKNOWN, for Nagios and the like. --dead-letters lists\n"
	  "the dead letters with Mixpanel's reason. --destination shows\n"
	  "one destination's syncs (or dead letters) only." },
	{ "validate", cmd_validate, 0, 0, "validate",
	  "Check every definition and destination." },
	{ "explain", cmd_explain, 0, 1, "explain KEY",
	  "Print the SQL statement a rule definition compiles to, the values\n"
	  "bound to its parameters and how it is evaluated (a definition_sql\n"
	  "is printed as it is). A wrong rule is reported with its JSON path." },
	{ "retire", cmd_retire, OPT_UNSET, 1, "retire KEY [--unset]",
	  "Stop syncing a computation, after the run of it in progress,\n"
	  "if any. --unset first sends $unset of the key to every profile\n"
	  "it was set on." },
	{ "retry-failed", cmd_retry_failed, OPT_DESTINATION, 0,
	  "retry-failed [--destination NAME]",
	  "Requeue dead letters for delivery." },
	{ "forward", cmd_forward, OPT_DESTINATION | OPT_FROM_TABLE, -1,
	  "forward [--destination NAME] [--from-table] [FILE|-]",
	  "Send Segment-spec messages (one JSON object a line, from FILE or\n"
	  "stdin) to Mixpanel as Segment's Mixpanel destination maps them.\n"
	  "--from-table drains audsync.inbound instead. A message is sent\n"
	  "once per destination; a line that cannot be mapped is reported\n"
	  "with its number and the exit status is 1." },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_help[] =
	"Global options:\n"
	"  --db CONNINFO         database (else AUDSYNC_DB, else libpq's\n"
	"                        PGHOST, PGDATABASE, service files)\n"
	"  --log-format FORMAT   logfmt (default) or json\n"
	"                        (also AUDSYNC_LOG_FORMAT)\n"
	"  --log-level LEVEL     debug, info (default), warn, error\n"
	"                        (also AUDSYNC_LOG_LEVEL)\n"
	"  --metrics-file PATH   write Prometheus text after each run\n"
	"  -h, --help            this help; --version the version\n";

static void usage(FILE *f)
{
	size_t i;

	fputs("usage: audsync [OPTIONS] COMMAND [ARGS]\n\nCommands:\n", f);
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  audsync %s\n", commands[i].synopsis);
	fprintf(f, "\n%s\n'audsync help COMMAND' describes one command.\n",
		global_help);
}

static const command *find_command(const char *name)
{
	size_t i;

	for (i = 0; name && i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void command_help(const command *c)
{
	printf("usage: audsync %s\n\n%s\n\n%s", c->synopsis, c->help,
	       global_help);
}

static const char help_synopsis[] = "help [COMMAND]";

/* `audsync help [COMMAND]`: the usage, or one command's help (help's
 * own too, as the man page lists it). */
static int help_command(int nargs, char **args)
{
	const command *c = nargs == 1 ? find_command(args[0]) : NULL;

	if (nargs == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (nargs == 1 && strcmp(args[0], "help") == 0) {
		printf("usage: audsync %s\n\nDescribe COMMAND, or list every "
		       "command.\n\n%s",
		       help_synopsis, global_help);
		return EXIT_OK;
	}
	if (nargs > 1) {
		fprintf(stderr,
			"audsync help: unexpected argument\nusage: audsync "
			"%s\n",
			help_synopsis);
		return EXIT_USAGE;
	}
	if (!c) {
		fprintf(stderr, "audsync: unknown command '%s'\n", args[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	command_help(c);
	return EXIT_OK;
}

static const struct option long_opts[] = {
	{ "db", required_argument, NULL, 'd' },
	{ "log-format", required_argument, NULL, 'F' },
	{ "log-level", required_argument, NULL, 'L' },
	{ "metrics-file", required_argument, NULL, 'M' },
	{ "computation", required_argument, NULL, 'c' },
	{ "destination", required_argument, NULL, 'D' },
	{ "all", no_argument, NULL, 'a' },
	{ "as-of", required_argument, NULL, 't' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "reset", no_argument, NULL, 'r' },
	{ "json", no_argument, NULL, 'j' },
	{ "unset", no_argument, NULL, 'u' },
	{ "from-table", no_argument, NULL, 'T' },
	{ "check", no_argument, NULL, 'k' },
	{ "dead-letters", no_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* Applies one parsed option. Returns NULL, or what is wrong with it: an
 * empty value never means "the default" (--db "" would be libpq's
 * defaults, a database nobody named). */
static const char *take_option(int ch, cli_opts *o, unsigned *used, int *help)
{
	switch (ch) {
	case 'd':
		if (!*optarg)
			return "--db needs a value";
		o->db = optarg;
		return NULL;
	case 'M':
		/* an empty path would fail after the run, not before */
		if (!*optarg)
			return "--metrics-file needs a path";
		o->metrics_file = optarg;
		return NULL;
	case 'c':
		/* a second would silently replace the first */
		if (*used & OPT_COMPUTATION)
			return "--computation given twice";
		o->computation = optarg;
		*used |= OPT_COMPUTATION;
		return NULL;
	case 'D':
		if (*used & OPT_DESTINATION)
			return "--destination given twice";
		o->destination = optarg;
		*used |= OPT_DESTINATION;
		return NULL;
	case 'a':
		o->all = 1;
		*used |= OPT_ALL;
		return NULL;
	case 't':
		o->as_of = optarg;
		*used |= OPT_AS_OF;
		return NULL;
	case 'n':
		o->dry_run = 1;
		*used |= OPT_DRY_RUN;
		return NULL;
	case 'r':
		o->reset = 1;
		*used |= OPT_RESET;
		return NULL;
	case 'j':
		o->json = 1;
		*used |= OPT_JSON;
		return NULL;
	case 'u':
		o->unset = 1;
		*used |= OPT_UNSET;
		return NULL;
	case 'T':
		o->from_table = 1;
		*used |= OPT_FROM_TABLE;
		return NULL;
	case 'k':
		o->check = 1;
		*used |= OPT_CHECK;
		return NULL;
	case 'l':
		o->dead_letters = 1;
		*used |= OPT_DEAD;
		return NULL;
	case 'h': *help = 1; return NULL;
	case 'F':
		if (!*optarg)
			return "--log-format needs a value";
		o->log_format = optarg;
		return NULL;
	case 'L':
		if (!*optarg)
			return "--log-level needs a value";
		o->log_level = optarg;
		return NULL;
	default: return "unknown option";
	}
}

/* Words getopt's complaint ch ('?' or ':') about the command-line word
 * arg as audsync does, into out. Returns the length written (> 0). */
static int bad_option(int ch, const char *arg, char *out, size_t n)
{
	int len;

	/* a short option's letter, wherever it sat in its group */
	if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < 128) {
		len = snprintf(out, n, "unknown option -%c", optopt);
		return len > 0 ? len : 1;
	}
	len = (int)strcspn(arg, "=");
	if (ch == ':')
		len = snprintf(out, n, "%.*s needs a value", len, arg);
	else if (optopt)
		len = snprintf(out, n, "%.*s takes no value", len, arg);
	else
		len = snprintf(out, n, "unknown option %.*s", len, arg);
	return len > 0 ? len : 1;
}

/* Names the first option in used that c does not take, or NULL. */
static const char *misplaced_option(const command *c, unsigned used)
{
	static const char *const names[] = {
		"--computation", "--destination", "--all",	   "--as-of",
		"--dry-run",	 "--reset",	  "--json",	   "--unset",
		"--from-table",	 "--check",	  "--dead-letters"
	};
	unsigned bad = used & ~c->opts;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bad & (1u << i))
			return names[i];
	return NULL;
}

/*
 * Reports a usage error msg on stderr as "audsync[ COMMAND]: msg", then
 * c's usage line (with no c, the whole usage when full), and returns 2.
 * Under status --check, a monitoring plugin, the same mistake is one
 * "AUDSYNC UNKNOWN - msg" line on stdout and 3: the monitor would read
 * 2 as CRITICAL, and never shows stderr.
 */
static int usage_error(const cli_opts *o, const command *c, int full,
		       const char *msg)
{
	if (o->check) {
		printf("AUDSYNC UNKNOWN - %s\n", msg);
		return STATUS_UNKNOWN;
	}
	if (c) {
		fprintf(stderr, "audsync %s: %s\nusage: audsync %s\n", c->name,
			msg, c->synopsis);
		return EXIT_USAGE;
	}
	fprintf(stderr, "audsync: %s\n", msg);
	if (full)
		usage(stderr);
	return EXIT_USAGE;
}

static int dispatch(const command *c, int nargs, char **args, cli_opts *o,
		    unsigned used)
{
	const char *bad = misplaced_option(c, used);
	char err[AUDSYNC_ERR_LEN];

	if (bad) {
		snprintf(err, sizeof(err), "unknown option %s", bad);
		return usage_error(o, c, 0, err);
	}
	if (c->positional >= 0 ? nargs != c->positional : nargs > 1)
		return usage_error(o, c, 0,
				   nargs < c->positional
					   ? "missing argument"
					   : "unexpected argument");
	o->arg = nargs ? args[0] : NULL;
	return c->fn(o);
}

int main(int argc, char **argv)
{
	char err[AUDSYNC_ERR_LEN];
	cli_opts o = { 0 };
	const command *c;
	unsigned used = 0;
	int ch, help = 0;
	const char *name, *why;
	char bad[128];
	int bad_len = 0;

	signal(SIGPIPE, SIG_IGN);
	/* '+' would stop at the command; options may follow it too. getopt
	 * stays quiet: a bad option is reported once the command is known,
	 * and whether --check asks for a plugin's answer. o.db is --db only:
	 * AUDSYNC_DB is read when connecting, after the daemon's
	 * AUDSYNC_ENV_FILE may have set it. */
	opterr = 0;
	for (;;) {
		ch = getopt_long(argc, argv, ":h", long_opts, NULL);
		if (ch == -1)
			break;
		if (ch == 'V') {
			printf("audsync %s\n", AUDSYNC_VERSION);
			return EXIT_OK;
		}
		if (ch == '?' || ch == ':') {
			if (!bad_len)
				bad_len = bad_option(ch, argv[optind - 1], bad,
						     sizeof(bad));
			continue;
		}
		why = take_option(ch, &o, &used, &help);
		if (why && !bad_len)
			bad_len = snprintf(bad, sizeof(bad), "%s", why);
	}
	/* A bad variable is one line: the command line was right, so no
	 * usage text (the log variables too, whatever the options say). */
	if (settings_check_env(err, sizeof(err)) != 0 ||
	    log_setup(NULL, NULL, err, sizeof(err)) != 0)
		return usage_error(&o, NULL, 0, err);
	if (bad_len) {
		c = optind < argc ? find_command(argv[optind]) : NULL;
		return usage_error(&o, c, 1, bad);
	}
	if (log_setup(o.log_level, o.log_format, err, sizeof(err)) != 0)
		return usage_error(&o, NULL, 1, err);
	if (optind >= argc) {
		if (o.check && !help)
			return usage_error(&o, NULL, 1, "no command");
		usage(help ? stdout : stderr);
		return help ? EXIT_OK : EXIT_USAGE;
	}
	name = argv[optind];
	if (strcmp(name, "help") == 0)
		return help_command(argc - optind - 1, argv + optind + 1);
	c = find_command(name);
	if (!c) {
		snprintf(bad, sizeof(bad), "unknown command '%.80s'", name);
		return usage_error(&o, NULL, 1, bad);
	}
	if (help) {
		command_help(c);
		return EXIT_OK;
	}
	return dispatch(c, argc - optind - 1, argv + optind + 1, &o, used);
}
