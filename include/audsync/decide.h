/* decide.h - what one changed profile's distinct_ids are told (pure) */
#ifndef AUDSYNC_DECIDE_H
#define AUDSYNC_DECIDE_H

#include "audsync/buf.h"

#include <json-c/json.h>

/*
 * The rules of DESIGN.md section 6 that turn one profile's change into
 * targets, distinct_ids and calls, and into its new ledger entry. No
 * database, no network: diff.c reads the rows and writes the calls.
 *
 * The ledger entry of a profile (snapshot_members: value, since, targets)
 * holds one line per identifier a distinct_id was told through:
 *   type TAB value TAB distinct_id TAB created_us TAB flag TAB told
 * flag "c": a current target, "h": no longer one (kept for its
 * distinct_id and its email date), followed by "a" when the
 * distinct_id is an anonymous id (told while the profile had no
 * user_id). told is empty when the distinct_id
 * holds the row's value, every key at the row's since; else a JSON
 * object {key: [value, time_ms]}. Lines of three fields (before
 * sql/012_ledger.sql) read as current targets told the row's value.
 */

typedef enum decide_id_sync {
	DECIDE_ID_ALL = 0,
	DECIDE_ID_FIRST = 1,
	DECIDE_ID_LAST = 2
} decide_id_sync;

typedef struct decide_sync {
	int track;    /* track mode: one event per distinct_id and key */
	int is_trait; /* exit value null, not false */
	decide_id_sync id_sync;
} decide_sync;

/* A current identifier of the profile (types already filtered). */
typedef struct decide_id {
	const char *type;
	const char *value;
	long long created; /* created_at, microseconds */
} decide_id;

typedef struct decide_in {
	int member;	       /* the profile is a member now */
	int full;	       /* resync: every distinct_id told, again */
	const char *value;     /* a member's value, JSON object text */
	long long as_of_ms;    /* this run's as-of */
	const char *old_value; /* the ledger row's value; NULL: no row */
	long long old_since_ms;
	int old_member;
	const char *old_lines; /* the ledger row's targets */
	const decide_id *ids;
	int nids;
} decide_in;

/* One key of a call: its value and the time of its transition. */
typedef struct decide_key {
	const char *key;    /* borrowed from the decision */
	json_object *value; /* borrowed; NULL is JSON null */
	long long time_ms;  /* the event's time */
} decide_key;

/* One call: identify mode one $set (email: add $email), track mode one
 * event per key. */
typedef struct decide_call {
	const char *did; /* borrowed from the decision */
	const char *email;
	int first_key, nkeys; /* into decision.keys */
	const char *raw;      /* or the whole value, JSON object text (borrowed
			  * from decide_in), at decide_in.as_of_ms: an
			  * audience's {key: true} in track mode */
	int stale; /* the exit value to a distinct_id that is no longer
		    * one of the profile's targets: another profile may
		    * hold it now (diff.c sends it only if none does) */
} decide_call;

typedef struct decision {
	decide_call *calls;
	int ncalls, capcalls;
	decide_key *keys;
	int nkeys, capkeys;
	long long skipped;
	int keep;	    /* write the ledger row back */
	int member;	    /* the row's member flag */
	buf value;	    /* the row's value (JSON object text) */
	long long since_ms; /* the row's since */
	buf lines;	    /* the row's targets */
	void *priv;	    /* parsed state, freed by decision_reset */
} decision;

void decision_init(decision *d);
/* The distinct_ids whose value a member decides (none for a profile
 * that is not one): the current targets decide_profile() chose, then the
 * anonymous ones told before that it keeps as it has become known. */
int decision_nholds(const decision *d);
const char *decision_holds(const decision *d, int i);
/* A member's value as an object (parsed on first use; borrowed until the
 * next decide_profile()), or NULL for a profile that is not one. */
json_object *decision_value(decision *d);
/* Frees what the last decide_profile() allocated; d stays usable. */
void decision_reset(decision *d);
void decision_free(decision *d);

/*
 * Decides the calls of one profile and its new ledger row into *d
 * (reset first). Returns 0, or -1 when a value or ledger line is not
 * readable (err set, naming what).
 */
int decide_profile(decision *d, const decide_sync *s, const decide_in *in,
		   char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
