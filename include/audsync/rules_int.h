/* rules_int.h - what the rule compiler's files share (rules.c compiles,
 * rules_parse.c reads and checks the JSON and its values); not an
 * interface for the rest of the engine */
#ifndef AUDSYNC_RULES_INT_H
#define AUDSYNC_RULES_INT_H

#include "audsync/buf.h"
#include "audsync/rules.h"
#include "audsync/stage.h"

#include <json-c/json.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 256

/* Tri-state value of a condition for a profile without qualifying
 * events: decides whether the events may drive the query. */
typedef enum tv { TV_FALSE, TV_TRUE, TV_UNKNOWN } tv;

typedef struct compiler {
	char **params;
	int nparams, cap, first;
	char path[1024];
	char *err;
	size_t errlen;
	int failed;
	const rules_catalog *cat;
	const char *chain[RULES_MAX_DEPTH +
			  2]; /* member_of keys, outermost first */
	int nchain;
	int nodes;
	int touched;  /* RULES_ALL, RULES_TOUCHED or RULES_FEW (below) */
	int sure;     /* the rule's own scope is split (put_sure_named()) */
	char *fresh;  /* then its events that decide alone, over events e */
	char **edges; /* each window's edge, a condition on e.ts */
	int nedges;
	char **events; /* the event names' parameters, "$n::text" */
	int nevents;
	char why_full
		[AUDSYNC_ERR_LEN]; /* why the rule cannot run incrementally */
} compiler;

/* Which profiles a compiler pass reads (rules.h): every one, or only
 * pg_temp.audsync_touched's, many (joined) or few (looked up). */
enum { RULES_ALL = 0, RULES_TOUCHED = 1, RULES_FEW = 2 };

/* The restriction of an incremental evaluation (rules.h). */
#define TOUCHED(alias)                                                         \
	" AND " alias ".profile_id IN (SELECT tp.profile_id"                   \
	" FROM pg_temp.audsync_touched tp)"
/* The same for few touched profiles, as an array (stage.h; a quarter
 * faster than the join on the bench's 11 000). */
#define TOUCHED_FEW(alias) " AND " alias ".profile_id = ANY (" TOUCHED_ARRAY ")"

/* Events of the profiles a rule ranges over (those of the identity graph),
 * filtered before they are grouped: a third cheaper than probing the
 * groups, as the hash of external_ids is built before the groups' and
 * probed as the events stream. */
#define IN_GRAPH(alias)                                                        \
	" AND " alias ".profile_id IN (SELECT x.profile_id"                    \
	" FROM audsync.external_ids x)"

/* Both: the identity graph probed once per touched profile (the table
 * names each once), not once per event of it. */
#define IN_GRAPH_OF_TOUCHED                                                    \
	"(SELECT tp.profile_id FROM pg_temp.audsync_touched tp WHERE EXISTS"   \
	" (SELECT FROM audsync.external_ids x"                                 \
	" WHERE x.profile_id = tp.profile_id))"
#define TOUCHED_IN_GRAPH(alias)                                                \
	" AND " alias ".profile_id IN " IN_GRAPH_OF_TOUCHED
#define TOUCHED_FEW_IN_GRAPH(alias)                                            \
	" AND " alias ".profile_id = ANY (ARRAY" IN_GRAPH_OF_TOUCHED ")"

/* A lone performed whose count only grows with more events decides some
 * touched profiles by their events since the last run's as-of alone:
 * those are sure, and only the others' events are read in full (rules.c,
 * put_sure_named()). The statement that collects the touched profiles
 * counts those events (their column fresh, from the window's newest
 * events that it reads anyway); %s is the count's condition over it,
 * scope's having. */
#define UNSURE_OF_TOUCHED                                                      \
	"(SELECT tp.profile_id FROM pg_temp.audsync_touched tp"                \
	" WHERE NOT (%s))"
#define TOUCHED_UNSURE(alias) " AND " alias ".profile_id IN " UNSURE_OF_TOUCHED
#define TOUCHED_FEW_UNSURE(alias)                                              \
	" AND " alias ".profile_id = ANY (ARRAY" UNSURE_OF_TOUCHED ")"
/* The sure profiles the rule names: without a probe of the identity graph
 * those whose identifiers no change touched, the others only when they
 * are in it. Of those that enter, the diff keeps the graph's
 * (evaluate.c); a ledger member whose identifiers did not change since
 * the last run still has the ones it had (rules.h, touched_sql). Most
 * sure profiles of an hourly run are members already. */
#define SURE_NAMED                                                             \
	"SELECT tp.profile_id FROM pg_temp.audsync_touched tp WHERE (%s)"      \
	" AND (NOT tp.identifiers OR EXISTS (SELECT FROM audsync.external_ids" \
	" x WHERE x.profile_id = tp.profile_id))"

/* One audience query being built: its aggregates over the events, its
 * joins, and the lower bound of its default window. */
typedef struct scope {
	char **filters; /* one per performed: its events */
	int nagg;
	/* the last performed's count when it only grows with more events,
	 * as a condition over the count of a touched profile's events since
	 * the last run (tp.fresh), else NULL */
	char *having;
	int one;	/* ... and one qualifying event meets it */
	int lone;	/* the scope is that performed alone: no count kept */
	int sure;	/* the touched profiles are split (put_sure_named()) */
	int traits;	/* profile_traits joined */
	char **members; /* member_of subqueries */
	int nmember;
	const char *window; /* SQL of the default window's start, or NULL */
	const char *window_prev; /* the same at the last run's as-of */
} scope;

/* ---- rules_parse.c: errors, paths, JSON shape, operators ------------- */

/* Records the first error, prefixed by the current path; returns -1. */
int rules_fail(compiler *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends a segment to the path; returns the length to pop back to. */
size_t rules_push(compiler *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rules_pop(compiler *c, size_t n);

/* Binds text (copied) as the next parameter; returns its number, or -1
 * with the error recorded. */
int rules_param(compiler *c, const char *text);

/* Appends item (owned by the list from now) to *list of *n. */
void rules_list_add(char ***list, int *n, char *item);

/* Frees what a compiler pass allocated and zeroes c. */
void rules_compiler_free(compiler *c);

/* "a number", "a list", ... for errors; 1 when s is one of list. */
const char *rules_type_name(json_object *v);
int rules_in_list(const char *s, const char *const *list);

/* What a value is, for "..., not %s": a number or a string as JSON writes
 * it ("-1", "1.5", "\"30 parsecs\""; one longer than out is cut there), a
 * number beyond 64 bits as such, anything else rules_type_name(v). The
 * text lives as long as v and out. */
#define VALUE_NAME_MAX 64
const char *rules_value_name(json_object *v, char *out, size_t outlen);

/* *out: the JSON number v when it is a whole number from 0 to max,
 * however written (2, 2.0, 1e0: jsonb keeps 2.0 and makes 1e0 1).
 * Returns 0, or -1 (*out unset). */
int rules_whole_number(long long *out, json_object *v, long long max);

/* Fails naming the first key of o not in allowed (what: the keys it
 * takes, for the message). Returns 0 or -1. */
int rules_check_keys(compiler *c, json_object *o, const char *const *allowed,
		     const char *what);

/* *out: o's string key (borrowed), NULL when absent and not required.
 * Returns 0 or -1. */
int rules_get_string(compiler *c, const char **out, json_object *o,
		     const char *key, int required);

/* A performed's count {op, value}: *op (borrowed) and *want, ">= 1" when
 * absent. Returns 0 or -1. */
int rules_get_count(compiler *c, const char **op, long long *want,
		    json_object *o);

/* One filter {name_key, op, value} over the jsonb src as SQL into out.
 * Returns 0 or -1. */
int rules_put_filter(compiler *c, buf *out, const char *src, json_object *f,
		     const char *name_key);

/* A member_of target's definition_sql into out, $2 renamed to window.
 * Returns 0 or -1. */
int rules_rewrite_sql(compiler *c, buf *out, const char *sql,
		      const char *window);

/* Parses text deeper than json-c's default: 0 with *out a new reference
 * (NULL for JSON null), or -1 when text is not JSON. */
int rules_parse_json(json_object **out, const char *text)
	__attribute__((warn_unused_result));

#endif
