/* rules.c - rule definitions (DESIGN.md section 5) compiled to one SQL
 * statement with every value bound as a parameter, and the window edges
 * an incremental run looks at (incremental.h) */
#include "audsync/rules_int.h"

#include "audsync/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_YEARS 1000.0

/* Records that the events between lo at the last run and hi now (SQL
 * times) entered or left a window: an incremental run looks at them. */
static void add_edge(compiler *c, const char *lo, const char *hi)
{
	buf b;
	int i;

	buf_init(&b);
	buf_printf(&b, "e.ts >= %s AND e.ts <= %s", lo, hi);
	for (i = 0; i < c->nedges; i++)
		if (strcmp(c->edges[i], b.data) == 0)
			break;
	if (i < c->nedges)
		buf_free(&b);
	else
		rules_list_add(&c->edges, &c->nedges, buf_steal(&b));
	buf_free(&b);
}

static void add_event(compiler *c, int n)
{
	char one[24];

	snprintf(one, sizeof(one), "$%d::text", n);
	rules_list_add(&c->events, &c->nevents, alloc_strdup(one));
}

static void scope_free(scope *s)
{
	alloc_free_strings(s->filters, s->nagg);
	alloc_free_strings(s->members, s->nmember);
	free(s->having);
}

/* ---- events: event name, where, window -------------------------------- */

static int put_where(compiler *c, buf *out, json_object *o)
{
	json_object *w;
	size_t i, at, at2;

	if (!json_object_object_get_ex(o, "where", &w))
		return 0;
	at = rules_push(c, ".where");
	if (!json_object_is_type(w, json_type_array)) {
		rules_fail(c, "must be a list of filters, not %s",
			   rules_type_name(w));
		return -1;
	}
	for (i = 0; i < json_object_array_length(w); i++) {
		if (++c->nodes > RULES_MAX_NODES)
			return rules_fail(c,
					  "more than %d conditions and filters",
					  RULES_MAX_NODES);
		at2 = rules_push(c, "[%zu]", i);
		buf_puts(out, " AND ");
		if (rules_put_filter(c, out, "e.properties",
				     json_object_array_get_idx(w, i),
				     "property"))
			return -1;
		rules_pop(c, at2);
	}
	rules_pop(c, at);
	return 0;
}

static int put_within(compiler *c, buf *out, json_object *v)
{
	char lo[48], hi[48], seen[VALUE_NAME_MAX];
	double sec;
	int n;

	if (!json_object_is_type(v, json_type_string) ||
	    rules_parse_interval(&sec, json_object_get_string(v)) != 0)
		return rules_fail(c,
				  "must be a positive interval of at most %g "
				  "years such as \"30 days\" or \"12 hours\", "
				  "not %s",
				  MAX_YEARS,
				  rules_value_name(v, seen, sizeof(seen)));
	n = rules_param(c, json_object_get_string(v));
	if (n < 0)
		return -1;
	buf_printf(out, " AND e.ts >= $1 - $%d::interval", n);
	snprintf(lo, sizeof(lo), "$3 - $%d::interval", n);
	snprintf(hi, sizeof(hi), "$1 - $%d::interval", n);
	add_edge(c, lo, hi);
	return 0;
}

static int put_between(compiler *c, buf *out, json_object *v)
{
	char seen[VALUE_NAME_MAX];
	double t[2];
	int i, n[2];
	size_t at;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return rules_fail(c,
				  "must be a list of two times [start, end]");
	for (i = 0; i < 2; i++) {
		json_object *e = json_object_array_get_idx(v, (size_t)i);

		at = rules_push(c, "[%d]", i);
		if (!json_object_is_type(e, json_type_string) ||
		    rules_parse_time(&t[i], json_object_get_string(e)) != 0)
			return rules_fail(
				c,
				"must be an ISO-8601 time "
				"(\"2026-01-31\" or "
				"\"2026-01-31T12:00:00Z\"), not %s",
				rules_value_name(e, seen, sizeof(seen)));
		rules_pop(c, at);
	}
	if (t[0] >= t[1])
		return rules_fail(c,
				  "the start must lie before the end (the end "
				  "is excluded)");
	n[0] = rules_param(
		c, json_object_get_string(json_object_array_get_idx(v, 0)));
	n[1] = rules_param(
		c, json_object_get_string(json_object_array_get_idx(v, 1)));
	if (n[0] < 0 || n[1] < 0)
		return -1;
	buf_printf(out,
		   " AND e.ts >= $%d::timestamptz AND e.ts < $%d::timestamptz",
		   n[0], n[1]);
	return 0;
}

/* The events a performed or a trait kind reads: its event, window and
 * filters, as one boolean over events e (their ts < $1 is the caller's). */
static int put_events(compiler *c, buf *out, json_object *o, const scope *s)
{
	json_object *within = NULL, *between = NULL;
	const char *event;
	size_t at;
	int n, rc = 0;

	if (rules_get_string(c, &event, o, "event", 1))
		return -1;
	n = rules_param(c, event);
	if (n < 0)
		return -1;
	buf_printf(out, "e.event = $%d::text", n);
	add_event(c, n);
	json_object_object_get_ex(o, "within", &within);
	json_object_object_get_ex(o, "between", &between);
	if (within && between)
		return rules_fail(c,
				  "within and between exclude each other: give "
				  "one window");
	if (within) {
		at = rules_push(c, ".within");
		rc = put_within(c, out, within);
		rules_pop(c, at);
	} else if (between) {
		at = rules_push(c, ".between");
		rc = put_between(c, out, between);
		rules_pop(c, at);
	} else if (s->window) {
		buf_printf(out, " AND e.ts >= %s", s->window);
		add_edge(c, s->window_prev, s->window);
	}
	if (rc)
		return -1;
	return put_where(c, out, o);
}

/* ---- audience conditions ---------------------------------------------- */

static int put_condition(compiler *c, buf *out, tv *val, json_object *cond,
			 scope *s, int depth);

static int count_holds(const char *op, long long have, long long want)
{
	if (strcmp(op, "=") == 0)
		return have == want;
	if (strcmp(op, "!=") == 0)
		return have != want;
	if (strcmp(op, ">") == 0)
		return have > want;
	if (strcmp(op, ">=") == 0)
		return have >= want;
	if (strcmp(op, "<") == 0)
		return have < want;
	return have <= want;
}

static int put_performed(compiler *c, buf *out, tv *val, json_object *p,
			 scope *s)
{
	static const char *const keys[] = { "event",  "where",	 "count",
					    "within", "between", NULL };
	const char *op;
	long long want;
	char num[32];
	buf f;
	int n;

	if (!json_object_is_type(p, json_type_object))
		return rules_fail(c, "must be an object, not %s",
				  rules_type_name(p));
	if (rules_check_keys(c, p, keys,
			     "performed takes event, where, count, within, "
			     "between") ||
	    rules_get_count(c, &op, &want, p))
		return -1;
	buf_init(&f);
	if (put_events(c, &f, p, s)) {
		buf_free(&f);
		return -1;
	}
	rules_list_add(&s->filters, &s->nagg, buf_steal(&f));
	buf_free(&f);
	snprintf(num, sizeof(num), "%lld", want);
	n = rules_param(c, num);
	if (n < 0)
		return -1;
	buf_printf(out, "(coalesce(ev.c%d, 0) %s $%d::bigint)", s->nagg, op, n);
	*val = count_holds(op, 0, want) ? TV_TRUE : TV_FALSE;
	free(s->having);
	s->having = NULL;
	s->one = 0;
	if (*val == TV_FALSE &&
	    (strcmp(op, ">=") == 0 || strcmp(op, ">") == 0)) {
		buf_init(&f);
		buf_printf(&f, "tp.fresh %s $%d::bigint", op, n);
		s->having = buf_steal(&f);
		buf_free(&f);
		s->one = count_holds(op, 1, want);
	}
	return 0;
}

static int put_list(compiler *c, buf *out, tv *val, json_object *l,
		    const char *junction, scope *s, int depth)
{
	int is_and = strcmp(junction, "and") == 0;
	size_t i, at;
	tv one;

	if (!json_object_is_type(l, json_type_array) ||
	    json_object_array_length(l) == 0)
		return rules_fail(
			c, "must be a non-empty list of conditions, not %s",
			json_object_is_type(l, json_type_array)
				? "an empty one"
				: rules_type_name(l));
	*val = is_and ? TV_TRUE : TV_FALSE;
	buf_putc(out, '(');
	for (i = 0; i < json_object_array_length(l); i++) {
		if (i)
			buf_puts(out, is_and ? " AND " : " OR ");
		at = rules_push(c, "[%zu]", i);
		if (put_condition(c, out, &one, json_object_array_get_idx(l, i),
				  s, depth + 1))
			return -1;
		rules_pop(c, at);
		if (is_and && one == TV_FALSE)
			*val = TV_FALSE;
		else if (is_and && one == TV_UNKNOWN && *val == TV_TRUE)
			*val = TV_UNKNOWN;
		else if (!is_and && one == TV_TRUE)
			*val = TV_TRUE;
		else if (!is_and && one == TV_UNKNOWN && *val == TV_FALSE)
			*val = TV_UNKNOWN;
	}
	buf_putc(out, ')');
	return 0;
}

static int compile_audience(compiler *c, buf *out, json_object *def,
			    const char *window, const char *window_prev);

/* The current members of audience key, compiled into out. */
static int put_target_sql(compiler *c, buf *out, const rules_target *t)
{
	char window[64] = "'-infinity'::timestamptz", prev[64];
	json_object *def;
	size_t at;
	int n, rc;

	if (t->lookback) {
		n = rules_param(c, t->lookback);
		if (n < 0)
			return -1;
		snprintf(window, sizeof(window), "$1 - $%d::interval", n);
		snprintf(prev, sizeof(prev), "$3 - $%d::interval", n);
	}
	if (!t->definition && !c->why_full[0])
		snprintf(c->why_full, sizeof(c->why_full),
			 "member_of %.200s, which is defined by definition_sql",
			 t->key);
	if (!t->definition) {
		at = rules_push(c, ": computation %s", t->key);
		buf_puts(out, "SELECT DISTINCT d.profile_id::text AS profile_id"
			      " FROM (\n");
		rc = rules_rewrite_sql(
			c, out, t->definition_sql ? t->definition_sql : "",
			window);
		buf_puts(out, "\n) AS d WHERE d.profile_id IS NOT NULL");
		rules_pop(c, at);
		return rc;
	}
	/* def stays NULL (JSON null) for text that is not JSON: a jsonb
	 * column's text always is */
	if (rules_parse_json(&def, t->definition) != 0)
		def = NULL;
	at = rules_push(c, ": computation %s: definition", t->key);
	rc = compile_audience(c, out, def, t->lookback ? window : NULL, prev);
	rules_pop(c, at);
	json_object_put(def);
	return rc;
}

static const rules_target *find_target(const rules_catalog *cat,
				       const char *key)
{
	int i;

	for (i = 0; cat && i < cat->n; i++)
		if (strcmp(cat->items[i].key, key) == 0)
			return &cat->items[i];
	return NULL;
}

static int put_member_of(compiler *c, buf *out, json_object *v, scope *s)
{
	const rules_target *t;
	const char *key;
	char cycle[600] = "";
	buf sub;
	int i, rc;

	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return rules_fail(
			c, "must be an audience's key (a string), not %s",
			json_object_is_type(v, json_type_string)
				? "an empty one"
				: rules_type_name(v));
	key = json_object_get_string(v);
	for (i = 0; i < c->nchain; i++) {
		if (strcmp(c->chain[i], key) != 0)
			continue;
		for (; i < c->nchain; i++) {
			strncat(cycle, c->chain[i],
				sizeof(cycle) - strlen(cycle) - 1);
			strncat(cycle, " -> ",
				sizeof(cycle) - strlen(cycle) - 1);
		}
		strncat(cycle, key, sizeof(cycle) - strlen(cycle) - 1);
		return rules_fail(c, "member_of makes a cycle: %s", cycle);
	}
	t = find_target(c->cat, key);
	if (!t)
		return rules_fail(c, "no computation has the key \"%s\"", key);
	if (t->is_trait)
		return rules_fail(
			c, "computation %s is a trait, not an audience", key);
	if (c->nchain > RULES_MAX_DEPTH)
		return rules_fail(c, "member_of nests deeper than %d audiences",
				  RULES_MAX_DEPTH);
	c->chain[c->nchain++] = key;
	buf_init(&sub);
	rc = put_target_sql(c, &sub, t);
	c->nchain--;
	if (rc) {
		buf_free(&sub);
		return -1;
	}
	rules_list_add(&s->members, &s->nmember, buf_steal(&sub));
	buf_free(&sub);
	buf_printf(out, "(m%d.profile_id IS NOT NULL)", s->nmember);
	return 0;
}

static int put_condition(compiler *c, buf *out, tv *val, json_object *cond,
			 scope *s, int depth)
{
	static const char *const kinds[] = { "performed", "not",   "and",
					     "or",	  "trait", "member_of",
					     NULL };
	const char *kind = ""; /* set by the one key below */
	json_object *arg = NULL;
	size_t at;
	int rc;

	if (depth > RULES_MAX_DEPTH)
		return rules_fail(c, "conditions nest deeper than %d levels",
				  RULES_MAX_DEPTH);
	if (++c->nodes > RULES_MAX_NODES)
		return rules_fail(c, "more than %d conditions and filters",
				  RULES_MAX_NODES);
	if (!json_object_is_type(cond, json_type_object) ||
	    json_object_object_length(cond) != 1)
		return rules_fail(
			c,
			"a condition is an object with one key (performed, "
			"not, and, or, trait or member_of), not %s",
			json_object_is_type(cond, json_type_object)
				? "one with several or none"
				: rules_type_name(cond));
	json_object_object_foreach(cond, k, v)
	{
		kind = k;
		arg = v;
	}
	at = rules_push(c, ".%s", kind);
	if (!rules_in_list(kind, kinds)) {
		rc = rules_fail(
			c, "unknown condition (use performed, not, and, or, "
			   "trait or member_of)");
	} else if (strcmp(kind, "performed") == 0) {
		rc = put_performed(c, out, val, arg, s);
	} else if (strcmp(kind, "not") == 0) {
		buf_puts(out, "NOT ");
		rc = put_condition(c, out, val, arg, s, depth + 1);
		if (*val != TV_UNKNOWN)
			*val = *val == TV_TRUE ? TV_FALSE : TV_TRUE;
	} else if (strcmp(kind, "and") == 0 || strcmp(kind, "or") == 0) {
		rc = put_list(c, out, val, arg, kind, s, depth);
	} else if (strcmp(kind, "trait") == 0) {
		s->traits = 1;
		*val = TV_UNKNOWN;
		rc = rules_put_filter(c, out, "t.traits", arg, "name");
	} else {
		*val = TV_UNKNOWN;
		rc = put_member_of(c, out, arg, s);
	}
	if (rc == 0)
		rules_pop(c, at);
	return rc;
}

/* The profiles of table alias a that are read: the touched ones of an
 * incremental evaluation (joined, or few), those of the identity graph
 * (in_graph), or both. */
static void put_restriction(buf *out, const char *a, int touched, int in_graph)
{
	if (touched == RULES_FEW)
		buf_printf(out,
			   in_graph ? TOUCHED_FEW_IN_GRAPH("%s")
				    : TOUCHED_FEW("%s"),
			   a);
	else if (touched)
		buf_printf(out,
			   in_graph ? TOUCHED_IN_GRAPH("%s") : TOUCHED("%s"),
			   a);
	else if (in_graph)
		buf_printf(out, IN_GRAPH("%s"), a);
}

/* The aggregate of scope s over the events: one pass, one column cN per
 * performed; with in_graph, of the identity graph's profiles only. */
static void put_aggregate(buf *out, const scope *s, int touched, int in_graph)
{
	int i;

	buf_puts(out, "SELECT e.profile_id");
	for (i = 0; i < s->nagg && !s->lone; i++) {
		if (s->nagg == 1)
			buf_printf(out, ", count(*) AS c%d", i + 1);
		else
			buf_printf(out, ", count(*) FILTER (WHERE %s) AS c%d",
				   s->filters[i], i + 1);
	}
	buf_puts(out, " FROM audsync.events e WHERE e.ts < $1");
	if (s->sure && touched == RULES_FEW)
		buf_printf(out, TOUCHED_FEW_UNSURE("e"), s->having);
	else if (s->sure)
		buf_printf(out, TOUCHED_UNSURE("e"), s->having);
	else
		put_restriction(out, "e", touched, in_graph);
	buf_puts(out, " AND (");
	for (i = 0; i < s->nagg; i++)
		buf_printf(out, "%s(%s)", i ? " OR " : "", s->filters[i]);
	buf_puts(out, ") GROUP BY e.profile_id");
}

/*
 * The touched profiles that are sure members but for the identity graph:
 * a lone performed whose count only grows (s->having) holds for every
 * profile whose events since the last run's as-of meet it, whatever its
 * older events (any subset of a profile's events that meets such a count
 * proves it; the last as-of makes it few). The statement that collects
 * the touched profiles counts those events (fresh, edges_sql()), and
 * only the others' events are read in full. Events written after it wait
 * for the next run, whose touched profiles they are.
 */
static void put_sure_named(buf *out, const scope *s)
{
	buf_printf(out, " UNION ALL " SURE_NAMED, s->having);
}

/*
 * Assembles an audience: when the condition cannot hold without a
 * qualifying event (by_events), the events' aggregate drives the query
 * and the identity graph is only probed; else every profile of the
 * identity graph is tried.
 */
static void put_audience(buf *out, const scope *s, const char *cond,
			 int by_events, int touched)
{
	const char *pid = by_events ? "ev.profile_id" : "u.profile_id";
	int i;

	if (by_events) {
		/* Over touched profiles, the graph is probed for those whose
		 * events qualify, after the aggregate: an hourly run where
		 * only time moved touches three for every one that still
		 * qualifies. */
		buf_puts(out, "SELECT ev.profile_id FROM (");
		put_aggregate(out, s, touched, !touched);
		buf_puts(out, ") ev");
	} else {
		buf_puts(out, "SELECT u.profile_id FROM (SELECT DISTINCT"
			      " x.profile_id FROM audsync.external_ids x");
		if (touched) {
			buf_puts(out, " WHERE true");
			put_restriction(out, "x", touched, 0);
		}
		buf_puts(out, ") u");
		if (s->nagg) {
			buf_puts(out, " LEFT JOIN (");
			put_aggregate(out, s, touched, 0);
			buf_puts(out, ") ev ON ev.profile_id = u.profile_id");
		}
	}
	if (s->traits)
		buf_printf(out,
			   " LEFT JOIN audsync.profile_traits t"
			   " ON t.profile_id = %s",
			   pid);
	for (i = 0; i < s->nmember; i++)
		buf_printf(out, " LEFT JOIN (%s) m%d ON m%d.profile_id = %s",
			   s->members[i], i + 1, i + 1, pid);
	if (by_events && touched)
		buf_printf(out, " WHERE (%s)" IN_GRAPH("ev"), cond);
	else
		buf_printf(out, " WHERE %s", cond);
	if (s->sure)
		put_sure_named(out, s);
}

/* An audience definition into out; window: the SQL of its default
 * window's start, or NULL for none. */
static int compile_audience(compiler *c, buf *out, json_object *def,
			    const char *window, const char *window_prev)
{
	scope s;
	buf cond;
	tv val = TV_UNKNOWN;
	size_t at = strlen(c->path);
	int rc;

	memset(&s, 0, sizeof(s));
	s.window = window;
	s.window_prev = window_prev;
	buf_init(&cond);
	rc = put_condition(c, &cond, &val, def, &s, 1);
	if (rc == 0) {
		/* One performed alone: the scope has its one aggregate and
		 * nothing else. */
		int alone = json_object_object_get_ex(def, "performed", NULL);

		rules_pop(c, at);
		/* A rule's own condition, not a member_of target's: the
		 * touched profiles' fresh counts its events
		 * (put_sure_named()). */
		s.sure = c->touched && c->nchain == 1 && s.having && alone;
		if (c->nchain == 1)
			c->sure = s.sure;
		if (s.sure) {
			buf f;

			buf_init(&f);
			buf_printf(&f, "e.ts < $1 AND (%s)", s.filters[0]);
			free(c->fresh);
			c->fresh = buf_steal(&f);
			buf_free(&f);
		}
		/* One performed alone that its first qualifying event meets:
		 * every profile of the aggregate is a member, and the
		 * statement is the plain one of its meaning (events of the
		 * graph's profiles, each profile once), which the planner
		 * treats as it would the same SQL written by hand. */
		s.lone = s.one && alone;
		put_audience(out, &s, s.lone ? "true" : cond.data,
			     val == TV_FALSE, c->touched);
	}
	buf_free(&cond);
	scope_free(&s);
	return rc;
}

/* ---- computed traits -------------------------------------------------- */

static const char *const trait_kinds[] = {
	"event_counter", "aggregation", "most_frequent",     "first",
	"last",		 "unique_list", "unique_list_count", NULL
};

/* The events of a property-based kind, with the property as v:
 * "SELECT e.profile_id, e.ts, v FROM ...". */
static int put_property_events(compiler *c, buf *out, json_object *o,
			       const char *events)
{
	const char *prop;
	int n;

	if (rules_get_string(c, &prop, o, "property", 1))
		return -1;
	n = rules_param(c, prop);
	if (n < 0)
		return -1;
	buf_printf(out,
		   "SELECT e.profile_id, e.ts, nullif(e.properties ->"
		   " $%d::text, 'null'::jsonb) AS v FROM audsync.events e"
		   " WHERE e.ts < $1 AND %s",
		   n, events);
	return 0;
}

static int put_fn(compiler *c, const char **fn, json_object *o)
{
	static const char *const fns[] = { "sum", "avg", "min", "max", NULL };
	size_t at;

	if (rules_get_string(c, fn, o, "fn", 1))
		return -1;
	if (!rules_in_list(*fn, fns)) {
		at = rules_push(c, ".fn");
		rules_fail(c,
			   "unknown function \"%s\" (use sum, avg, min or max)",
			   *fn);
		rules_pop(c, at);
		return -1;
	}
	return 0;
}

/* The trait's per-profile values (profile_id, value) from the events P
 * (profile_id, ts, v) or, for event_counter, the filter F. */
static void put_trait_kind(buf *out, const char *kind, const char *fn,
			   const char *p)
{
	if (strcmp(kind, "event_counter") == 0)
		buf_printf(out,
			   "SELECT e.profile_id, to_jsonb(count(*)) AS value"
			   " FROM audsync.events e WHERE e.ts < $1 AND %s"
			   " GROUP BY e.profile_id",
			   p);
	else if (strcmp(kind, "aggregation") == 0)
		buf_printf(out,
			   "SELECT a.profile_id, to_jsonb(trim_scale(%s(a.n)))"
			   " AS value FROM (SELECT p.profile_id, CASE WHEN"
			   " jsonb_typeof(p.v) = 'number' THEN (p.v)::numeric"
			   " END AS n FROM (%s) p) a WHERE a.n IS NOT NULL"
			   " GROUP BY a.profile_id",
			   fn, p);
	else if (strcmp(kind, "most_frequent") == 0)
		buf_printf(out,
			   "SELECT DISTINCT ON (f.profile_id) f.profile_id,"
			   " f.v AS value FROM (SELECT p.profile_id, p.v,"
			   " count(*) AS n FROM (%s) p WHERE p.v IS NOT NULL"
			   " GROUP BY p.profile_id, p.v) f WHERE f.n >= 2"
			   " ORDER BY f.profile_id, f.n DESC,"
			   " f.v #>> '{}' COLLATE \"C\", f.v",
			   p);
	else if (strcmp(kind, "first") == 0 || strcmp(kind, "last") == 0)
		buf_printf(out,
			   "SELECT DISTINCT ON (p.profile_id) p.profile_id,"
			   " p.v AS value FROM (%s) p WHERE p.v IS NOT NULL"
			   " ORDER BY p.profile_id, p.ts%s,"
			   " p.v #>> '{}' COLLATE \"C\"%s, p.v%s",
			   p, kind[0] == 'l' ? " DESC" : "",
			   kind[0] == 'l' ? " DESC" : "",
			   kind[0] == 'l' ? " DESC" : "");
	else
		buf_printf(out,
			   "SELECT q.profile_id, %s AS value FROM (SELECT"
			   " DISTINCT p.profile_id, p.v FROM (%s) p WHERE"
			   " p.v IS NOT NULL) q GROUP BY q.profile_id",
			   strcmp(kind, "unique_list") == 0
				   ? "jsonb_agg(q.v ORDER BY q.v #>> '{}'"
				     " COLLATE \"C\", q.v)"
				   : "to_jsonb(count(*))",
			   p);
}

static int compile_trait(compiler *c, buf *out, json_object *def)
{
	static const char *const counter_keys[] = { "event", "where", "within",
						    "between", NULL };
	static const char *const agg_keys[] = { "fn",	 "event",  "property",
						"where", "within", "between",
						NULL };
	static const char *const prop_keys[] = { "event",  "property", "where",
						 "within", "between",  NULL };
	const char *kind = "", *fn = NULL; /* kind: the one key below */
	json_object *o = NULL;
	scope s;
	buf events, p;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	s.window = "$2";
	s.window_prev = "$4";
	if (!json_object_is_type(def, json_type_object) ||
	    json_object_object_length(def) != 1)
		return rules_fail(c,
				  "a computed trait is an object with one key "
				  "(event_counter, aggregation, most_frequent, "
				  "first, last, unique_list or "
				  "unique_list_count)");
	json_object_object_foreach(def, k, v)
	{
		kind = k;
		o = v;
	}
	rules_push(c, ".%s", kind);
	if (!rules_in_list(kind, trait_kinds))
		return rules_fail(c,
				  "unknown computed trait (use event_counter, "
				  "aggregation, most_frequent, first, last, "
				  "unique_list or unique_list_count)");
	if (!json_object_is_type(o, json_type_object))
		return rules_fail(c, "must be an object, not %s",
				  rules_type_name(o));
	if (rules_check_keys(
		    c, o,
		    kind[0] == 'e'   ? counter_keys
		    : kind[0] == 'a' ? agg_keys
				     : prop_keys,
		    kind[0] == 'e' ? "event_counter takes event, where, "
				     "within, between"
		    : kind[0] == 'a'
			    ? "aggregation takes fn, event, property, "
			      "where, within, between"
			    : "it takes event, property, where, within, "
			      "between") ||
	    (kind[0] == 'a' && put_fn(c, &fn, o)))
		return -1;
	buf_init(&events);
	buf_init(&p);
	if (put_events(c, &events, o, &s) == 0)
		put_restriction(&events, "e", c->touched, 1);
	if (!c->failed && (kind[0] == 'e' ||
			   put_property_events(c, &p, o, events.data) == 0)) {
		put_trait_kind(out, kind, fn,
			       kind[0] == 'e' ? events.data : p.data);
		rc = 0;
	}
	buf_free(&events);
	buf_free(&p);
	return rc;
}

/* ---- entry points ----------------------------------------------------- */

/* One pass of the compiler over the rule (touched: which profiles it
 * reads, RULES_ALL or an incremental form); out gets the statement.
 * Returns 0, or -1 with err set. */
static int compile_pass(compiler *c, buf *out, const char *key, int is_trait,
			const char *definition, const rules_catalog *cat,
			int first, int touched, char *err, size_t errlen)
{
	json_object *def;
	int rc;

	memset(c, 0, sizeof(*c));
	c->first = first;
	c->err = err;
	c->errlen = errlen;
	c->cat = cat;
	c->touched = touched;
	c->chain[c->nchain++] = key;
	snprintf(c->path, sizeof(c->path), "definition");
	if (rules_parse_json(&def, definition ? definition : "") != 0) {
		snprintf(err, errlen,
			 "definition: not JSON, or nested deeper than %d "
			 "levels",
			 JSON_MAX_DEPTH);
		return -1;
	}
	rc = is_trait ? compile_trait(c, out, def)
		      : compile_audience(c, out, def, "$2", "$4");
	json_object_put(def);
	if (rc != 0 || c->failed) {
		if (!c->failed)
			rules_fail(c, "cannot be compiled");
		return -1;
	}
	return 0;
}

/* The profiles an incremental run must look at besides the logged ones:
 * those with an event of the rule between the last as-of and this one
 * (it may count now), or across any window's start (it entered or left
 * the window). Both ends are included: a few more profiles cost little,
 * one too few is a wrong result. Each event's fresh: whether it is one
 * of those since the last as-of that decide the rule alone (fresh, the
 * touched pass's, or NULL: none do; put_sure_named()). */
static char *edges_sql(const compiler *c, const char *fresh)
{
	buf b, names;
	int i;

	buf_init(&b);
	buf_init(&names);
	for (i = 0; i < c->nevents; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", c->events[i]);
	buf_printf(&b,
		   "SELECT e.profile_id, %s AS fresh FROM audsync.events e"
		   " WHERE e.event = ANY (ARRAY[%s]::text[])"
		   " AND e.ts >= $3 AND e.ts <= $1",
		   fresh ? fresh : "false", names.data ? names.data : "");
	for (i = 0; i < c->nedges; i++)
		buf_printf(&b,
			   " UNION ALL SELECT e.profile_id, false"
			   " FROM audsync.events e"
			   " WHERE e.event = ANY (ARRAY[%s]::text[]) AND %s",
			   names.data ? names.data : "", c->edges[i]);
	buf_free(&names);
	return buf_steal(&b);
}

int rules_compile(rules_sql *out, const char *key, int is_trait,
		  const char *definition, const rules_catalog *cat, int first,
		  char *err, size_t errlen)
{
	/* One pass per form, indexed by RULES_ALL, _TOUCHED and _FEW; the
	 * incremental ones only for a rule that can run so. */
	compiler c[3];
	buf sql[3];
	int i, n = 1, rc = 0;

	memset(out, 0, sizeof(*out));
	memset(c, 0, sizeof(c));
	for (i = 0; i < 3; i++)
		buf_init(&sql[i]);
	for (i = 0; rc == 0 && i < n; i++) {
		rc = compile_pass(&c[i], &sql[i], key, is_trait, definition,
				  cat, first, i, err, errlen);
		if (rc == 0 && i == RULES_ALL && !c[i].why_full[0])
			n = 3;
	}
	if (rc == 0) {
		if (n == 3) {
			out->touched_sql = buf_steal(&sql[RULES_TOUCHED]);
			out->few_sql = buf_steal(&sql[RULES_FEW]);
			out->edges_sql = edges_sql(&c[RULES_ALL],
						   c[RULES_TOUCHED].fresh);
			out->touched_ungraphed = c[RULES_TOUCHED].sure;
		}
		snprintf(out->why_full, sizeof(out->why_full), "%s",
			 c[RULES_ALL].why_full);
		out->sql = buf_steal(&sql[RULES_ALL]);
		out->params = c[RULES_ALL].params;
		out->nparams = c[RULES_ALL].nparams;
		out->first = first;
		c[RULES_ALL].params = NULL;
		c[RULES_ALL].nparams = 0;
	}
	for (i = 0; i < 3; i++) {
		rules_compiler_free(&c[i]);
		buf_free(&sql[i]);
	}
	return rc == 0 ? 0 : -1;
}

void rules_sql_free(rules_sql *r)
{
	if (!r)
		return;
	alloc_free_strings(r->params, r->nparams);
	free(r->sql);
	free(r->touched_sql);
	free(r->few_sql);
	free(r->edges_sql);
	memset(r, 0, sizeof(*r));
}
