/* config.h - syncs, computations and destinations read from the database */
#ifndef AUDSYNC_CONFIG_H
#define AUDSYNC_CONFIG_H

#include "audsync/mp_client.h"

#include <libpq-fe.h>

typedef enum sync_mode {
	SYNC_MODE_IDENTIFY = 0,
	SYNC_MODE_TRACK = 1
} sync_mode;

typedef enum id_sync_rule {
	ID_SYNC_ALL = 0,
	ID_SYNC_FIRST = 1,
	ID_SYNC_LAST = 2
} id_sync_rule;

/* A destination row with its settings resolved (defaults applied). */
typedef struct dest_def {
	int id;
	char *name;
	char *region;
	char *api_base;
	char *project_token;
	char *secret_env;
	char *secret; /* from the environment; never logged */
	char *project_id;
	int use_people;
	char *enter_event;
	char *exit_event;
	char *trait_event;
	int ignore_time;
	int geolocate;
	double max_rate;
	int concurrency;
	int batch_size;
	char *settings; /* the settings object's text, as stored */
	char *problem;	/* why it cannot be used, or NULL */
	/* problem is only that this process has no secret: its environment,
	 * not the row (status reads state and needs none) */
	int problem_in_env;
} dest_def;

/* The settings that choose a sync's targets, as SQL over its row s and
 * its computation's row c (kept in audsync.sync_state.targets_rule). */
#define SYNC_TARGETS_RULE                                                      \
	"(s.mode || '/' || s.id_sync || '/' || c.include_anonymous::text)"

/* One sync with its computation and destination. */
typedef struct sync_def {
	int id;
	sync_mode mode;
	id_sync_rule id_sync;
	int enabled; /* the sync and its computation both enabled */
	int computation_id;
	char *key;
	char *name;
	int is_trait;
	char *definition_sql;
	int has_rule; /* definition jsonb (rule form) */
	int has_lookback;
	int include_anonymous;
	char *as_of;	    /* the as-of time of this evaluation (UTC text) */
	char *window_start; /* as_of - lookback, "-infinity", or NULL when
			     * the lookback is out of range */
	int due;	    /* by the schedule at as_of */
	char *lookback;	    /* the interval as text, or NULL */
	char *last_as_of;   /* of the last successful run, or NULL */
	int as_of_before_last; /* as_of lies before last_as_of */
	/* mode, id_sync or include_anonymous changed since the last
	 * successful run: its targets must all be looked at again */
	int targets_changed;
	dest_def *dest; /* shared by the syncs of one destination */
} sync_def;

typedef struct sync_list {
	sync_def *items;
	int n;
	dest_def *dests;
	int ndests;
} sync_list;

/* Which syncs config_load() reads; NULL fields select all. */
typedef struct sync_filter {
	const char *computation;
	const char *destination;
	const char *as_of; /* NULL: now */
} sync_filter;

/* config_load()'s return for an --as-of the user must change. */
#define CONFIG_EUSAGE (-2)

/*
 * Reads every sync matching f, in id order, with their computations and
 * destinations, evaluates the as-of time and window start in PostgreSQL
 * and decides which syncs are due. Problems with a destination (no token,
 * unknown region, unset secret variable, bad settings) are recorded in its
 * problem field, not returned: they fail only that destination's syncs.
 * Returns 0 and fills *out (free with config_free()), -1 with err set on
 * a database error, or CONFIG_EUSAGE with err set for an --as-of that is
 * not a time, lies before 1971 or in the future.
 */
int config_load(sync_list *out, PGconn *conn, const sync_filter *f, char *err,
		size_t errlen) __attribute__((warn_unused_result));

/* Reads the computations that no sync uses into out->items, as syncs
 * with no destination (dest NULL, id 0) evaluated now: what validate
 * checks besides the syncs. Returns 0 (free with config_free()), or -1
 * with err set. */
int config_load_unsynced(sync_list *out, PGconn *conn, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Reads the destinations (only the one named, when name is set) into
 * out->dests, with no syncs. Returns 0, or -1 with err set. */
int config_load_destinations(sync_list *out, PGconn *conn, const char *name,
			     char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The same, also only the destinations that a sync of computation (a
 * key; NULL: any) targets, enabled or not: the queues a run of that
 * computation may deliver. */
int config_load_destinations_for(sync_list *out, PGconn *conn, const char *name,
				 const char *computation, char *err,
				 size_t errlen)
	__attribute__((warn_unused_result));

void config_free(sync_list *l);

/* Fills an mp_destination whose strings are borrowed from d. */
void config_mp_destination(mp_destination *out, const dest_def *d);

/* Applies a destination's settings jsonb text (NULL: none) to d, whose
 * name and defaults are set: the values it holds replace the defaults,
 * and the first wrong key or value becomes d->problem (a new string).
 * Pure: reads nothing but text. */
void config_parse_settings(dest_def *d, const char *text);

/* The problem that stops sync s from running, or NULL: a reserved key, a
 * lookback out of range, its destination's, an identify sync on a
 * destination without use_people. The text is one
 * line naming the destination or computation. Writes into buf and returns
 * it, or NULL. */
const char *config_sync_problem(const sync_def *s, char *buf, size_t len);

/* The same, but for what lies in the rows only: a destination whose only
 * problem is a secret this process cannot see is not one (status runs
 * where the service's secret may not be, and reads the runs' state). */
const char *config_sync_row_problem(const sync_def *s, char *buf, size_t len);

/* Replaces control characters of s in place by '?': a row's text goes
 * into one-line messages. */
void config_one_line(char *s);

#endif
