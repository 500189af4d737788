/* rules.c - rule definitions (DESIGN.md section 5) compiled to one SQL
 * statement with every value bound as a parameter */
#include "audsync/rules.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_YEARS      1000.0
#define YEAR_S	       31557600.0
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
} compiler;

/* One audience query being built: its aggregates over the events, its
 * joins, and the lower bound of its default window. */
typedef struct scope {
	char **filters; /* one per performed: its events */
	int nagg;
	int traits;	/* profile_traits joined */
	char **members; /* member_of subqueries */
	int nmember;
	const char *window; /* SQL of the default window's start, or NULL */
} scope;

/* ---- errors and paths ------------------------------------------------ */

/* Keys and values a rule names may hold control characters: the error
 * stays one line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static int fail(compiler *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records the first error, prefixed by the current path; returns -1. */
static int fail(compiler *c, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	if (c->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	one_line(c->err);
	c->failed = 1;
	return -1;
}

static size_t push(compiler *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends a segment to the path; returns the length to pop back to. */
static size_t push(compiler *c, const char *fmt, ...)
{
	size_t n = strlen(c->path);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->path + n, sizeof(c->path) - n, fmt, ap);
	va_end(ap);
	return n;
}

static void pop(compiler *c, size_t n)
{
	c->path[n] = '\0';
}

/* Binds text as the next parameter; returns its number, or -1. */
static int param(compiler *c, const char *text)
{
	if (c->nparams >= RULES_MAX_PARAMS)
		return fail(c, "the rule binds more than %d values",
			    RULES_MAX_PARAMS);
	if (c->nparams == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->params = alloc_realloc(c->params,
					  (size_t)c->cap * sizeof(char *));
	}
	c->params[c->nparams] = alloc_strdup(text);
	if (!c->params[c->nparams])
		abort();
	return c->first + c->nparams++;
}

static void list_add(char ***list, int *n, char *item)
{
	*list = alloc_realloc(*list, (size_t)(*n + 1) * sizeof(char *));
	(*list)[(*n)++] = item;
}

static void scope_free(scope *s)
{
	int i;

	for (i = 0; i < s->nagg; i++)
		free(s->filters[i]);
	for (i = 0; i < s->nmember; i++)
		free(s->members[i]);
	free(s->filters);
	free(s->members);
}

/* ---- JSON shape ------------------------------------------------------ */

static const char *type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_int:
	case json_type_double: return "a number";
	case json_type_string: return "a string";
	case json_type_array: return "a list";
	default: return "an object";
	}
}

static int in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Refuses a key of o outside allowed, naming it in the path. */
static int check_keys(compiler *c, json_object *o, const char *const *allowed,
		      const char *what)
{
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		if (!in_list(key, allowed)) {
			size_t n = push(c, ".%s", key);

			fail(c, "unknown key (%s)", what);
			pop(c, n);
			return -1;
		}
	}
	return 0;
}

/* The non-empty string at o.key into *out (borrowed); optional keys that
 * are absent leave *out NULL. */
static int get_string(compiler *c, const char **out, json_object *o,
		      const char *key, int required)
{
	json_object *v;
	size_t n;
	int rc = 0;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v)) {
		if (required)
			return fail(c, "\"%s\" is missing", key);
		return 0;
	}
	n = push(c, ".%s", key);
	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		rc = fail(c, "must be a non-empty string, not %s",
			  json_object_is_type(v, json_type_string)
				  ? "an empty one"
				  : type_name(v));
	else
		*out = json_object_get_string(v);
	pop(c, n);
	return rc;
}

/* A JSON number PostgreSQL can compare: json-c also reads NaN and
 * Infinity, which are not JSON and are refused as values. */
static int is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) ||
	       (json_object_is_type(v, json_type_double) &&
		isfinite(json_object_get_double(v)));
}

/* A JSON number as text PostgreSQL's numeric reads. */
static void number_text(char *out, size_t len, json_object *v)
{
	if (json_object_is_type(v, json_type_int))
		snprintf(out, len, "%" PRId64, json_object_get_int64(v));
	else
		snprintf(out, len, "%.17g", json_object_get_double(v));
}

/* ---- times and intervals --------------------------------------------- */

static int digits(const char **p, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days[m - 1] + (m == 2 && leap);
}

/* The optional zone: Z, +HH, +HHMM, +HH:MM; sets *off in seconds. */
static int parse_zone(const char *p, double *off)
{
	int h, m = 0, sign;

	*off = 0;
	if (*p == '\0')
		return 0;
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0' ? 0 : -1;
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	if (digits(&p, 2, &h) != 0 || h > 15)
		return -1;
	if (*p == ':')
		p++;
	if (*p && (digits(&p, 2, &m) != 0 || m > 59))
		return -1;
	if (*p)
		return -1;
	*off = sign * (h * 3600.0 + m * 60.0);
	return 0;
}

int rules_parse_time(double *out, const char *s)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, se = 0;
	double frac = 0, off;

	if (digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d) != 0)
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo))
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) != 0 || *p++ != ':' ||
		    digits(&p, 2, &mi) != 0 || h > 23 || mi > 59)
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &se) != 0 || se > 59)
				return -1;
			if (*p == '.') {
				double scale = 0.1;

				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				while (isdigit((unsigned char)*p)) {
					frac += (*p++ - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (parse_zone(p, &off) != 0)
		return -1;
	*out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 +
	       mi * 60.0 + se + frac - off;
	return 0;
}

static double unit_seconds(const char *u, size_t n)
{
	static const struct {
		const char *name;
		double seconds;
	} units[] = { { "second", 1 },	  { "sec", 1 },
		      { "minute", 60 },	  { "min", 60 },
		      { "hour", 3600 },	  { "day", 86400 },
		      { "week", 604800 }, { "month", 2592000 },
		      { "mon", 2592000 }, { "year", YEAR_S } };
	size_t i;

	if (n > 1 && u[n - 1] == 's')
		n--; /* plural */
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n &&
		    strncmp(units[i].name, u, n) == 0)
			return units[i].seconds;
	return -1;
}

int rules_parse_interval(double *seconds, const char *s)
{
	const char *p = s;
	double total = 0;
	int terms = 0;

	for (;;) {
		double count = 0, unit;
		const char *u;
		int nd = 0;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		while (isdigit((unsigned char)*p) && nd < 9) {
			count = count * 10 + (*p++ - '0');
			nd++;
		}
		if (nd == 0 || isdigit((unsigned char)*p))
			return -1;
		while (*p == ' ')
			p++;
		for (u = p; isalpha((unsigned char)*p); p++)
			;
		unit = unit_seconds(u, (size_t)(p - u));
		if (unit < 0)
			return -1;
		total += count * unit;
		terms++;
	}
	if (terms == 0 || total <= 0 || total > MAX_YEARS * YEAR_S)
		return -1;
	*seconds = total;
	return 0;
}

/* ---- operators -------------------------------------------------------- */

static const char *const operators[] = {
	"=",	       "!=",	    ">",	   ">=",
	"<",	       "<=",	    "contains",	   "not_contains",
	"starts_with", "ends_with", "exists",	   "not_exists",
	"one_of",      "none_of",   "before_date", "after_date",
	NULL
};

/* x = v, false for a missing x. x is the property's jsonb (SQL NULL when
 * missing or JSON null). */
static int put_equal(compiler *c, buf *out, const char *x, json_object *v)
{
	char num[64];
	int n;

	if (is_number(v)) {
		number_text(num, sizeof(num), v);
		n = param(c, num);
		buf_printf(out,
			   "coalesce(CASE WHEN jsonb_typeof(%s) = 'number'"
			   " THEN (%s)::numeric END = $%d::numeric, false)",
			   x, x, n);
	} else if (json_object_is_type(v, json_type_string)) {
		n = param(c, json_object_get_string(v));
		buf_printf(out, "coalesce((%s #>> '{}') = $%d::text, false)", x,
			   n);
	} else if (json_object_is_type(v, json_type_boolean)) {
		n = param(c, json_object_get_boolean(v) ? "true" : "false");
		buf_printf(out, "coalesce(%s = $%d::jsonb, false)", x, n);
	} else {
		return fail(c,
			    "must be a string, a number or a boolean, "
			    "not %s",
			    type_name(v));
	}
	return n < 0 ? -1 : 0;
}

static int put_order(compiler *c, buf *out, const char *x, const char *op,
		     json_object *v)
{
	char num[64];
	int n;

	if (is_number(v)) {
		number_text(num, sizeof(num), v);
		n = param(c, num);
		buf_printf(out,
			   "coalesce(CASE WHEN jsonb_typeof(%s) = 'number'"
			   " THEN (%s)::numeric END %s $%d::numeric, false)",
			   x, x, op, n);
	} else if (json_object_is_type(v, json_type_string)) {
		n = param(c, json_object_get_string(v));
		buf_printf(out,
			   "coalesce((%s #>> '{}') COLLATE \"C\" %s"
			   " $%d::text, false)",
			   x, op, n);
	} else {
		return fail(c, "operator %s needs a number or a string, not %s",
			    op, type_name(v));
	}
	return n < 0 ? -1 : 0;
}

static int put_text_op(compiler *c, buf *out, const char *x, const char *op,
		       json_object *v)
{
	int n;

	if (!json_object_is_type(v, json_type_string))
		return fail(c, "operator %s needs a string, not %s", op,
			    type_name(v));
	n = param(c, json_object_get_string(v));
	if (n < 0)
		return -1;
	if (strcmp(op, "contains") == 0)
		buf_printf(out,
			   "coalesce(strpos(%s #>> '{}', $%d::text) > 0,"
			   " false)",
			   x, n);
	else if (strcmp(op, "not_contains") == 0)
		buf_printf(out,
			   "coalesce(strpos(%s #>> '{}', $%d::text) = 0,"
			   " false)",
			   x, n);
	else if (strcmp(op, "starts_with") == 0)
		buf_printf(out,
			   "coalesce(starts_with(%s #>> '{}', $%d::text),"
			   " false)",
			   x, n);
	else
		buf_printf(out,
			   "coalesce(right(%s #>> '{}', length($%d::text))"
			   " = $%d::text, false)",
			   x, n, n);
	return 0;
}

static int put_one_of(compiler *c, buf *out, const char *x, const char *op,
		      json_object *v)
{
	size_t i, len, at;
	int none = strcmp(op, "none_of") == 0;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return fail(c, "operator %s needs a non-empty list, not %s", op,
			    json_object_is_type(v, json_type_array)
				    ? "an empty one"
				    : type_name(v));
	len = json_object_array_length(v);
	buf_putc(out, '(');
	if (none)
		buf_printf(out, "%s IS NOT NULL AND NOT (", x);
	for (i = 0; i < len; i++) {
		if (i)
			buf_puts(out, " OR ");
		at = push(c, "[%zu]", i);
		if (put_equal(c, out, x, json_object_array_get_idx(v, i)))
			return -1;
		pop(c, at);
	}
	buf_puts(out, none ? "))" : ")");
	return 0;
}

static int put_date_op(compiler *c, buf *out, const char *x, const char *op,
		       json_object *v)
{
	double t;
	int n;

	if (!json_object_is_type(v, json_type_string) ||
	    rules_parse_time(&t, json_object_get_string(v)) != 0)
		return fail(c,
			    "operator %s needs an ISO-8601 time "
			    "(\"2026-01-31\" or \"2026-01-31T12:00:00Z\")",
			    op);
	n = param(c, json_object_get_string(v));
	if (n < 0)
		return -1;
	buf_printf(out,
		   "coalesce(audsync.rule_timestamptz(%s #>> '{}') %s"
		   " $%d::timestamptz, false)",
		   x, strcmp(op, "before_date") == 0 ? "<" : ">", n);
	return 0;
}

/*
 * A filter {property|name, op, value} on the jsonb object src (events'
 * properties, or traits) into out: a boolean that is never NULL. A
 * missing property satisfies only not_exists and !=.
 */
static int put_filter(compiler *c, buf *out, const char *src, json_object *f,
		      const char *name_key)
{
	static const char *const prop_keys[] = { "property", "op", "value",
						 NULL };
	static const char *const trait_keys[] = { "name", "op", "value", NULL };
	const char *name, *op;
	char x[160];
	json_object *v = NULL;
	int has_value, n, rc = -1;
	size_t at;

	if (!json_object_is_type(f, json_type_object))
		return fail(c, "must be an object, not %s", type_name(f));
	if (check_keys(c, f, name_key[0] == 'p' ? prop_keys : trait_keys,
		       name_key[0] == 'p' ? "a filter takes property, op, value"
					  : "trait takes name, op, value") ||
	    get_string(c, &name, f, name_key, 1) ||
	    get_string(c, &op, f, "op", 1))
		return -1;
	at = push(c, ".op");
	if (!in_list(op, operators)) {
		fail(c, "unknown operator \"%s\"", op);
		return -1;
	}
	pop(c, at);
	has_value = json_object_object_get_ex(f, "value", &v);
	n = param(c, name);
	if (n < 0)
		return -1;
	snprintf(x, sizeof(x), "nullif(%s -> $%d::text, 'null'::jsonb)", src,
		 n);
	if (strcmp(op, "exists") == 0 || strcmp(op, "not_exists") == 0) {
		if (has_value) {
			at = push(c, ".value");
			fail(c, "operator %s takes no value", op);
			pop(c, at);
			return -1;
		}
		buf_printf(out, "(%s IS %sNULL)", x,
			   op[0] == 'e' ? "NOT " : "");
		return 0;
	}
	if (!has_value)
		return fail(c, "\"value\" is missing (operator %s needs one)",
			    op);
	at = push(c, ".value");
	if (strcmp(op, "=") == 0) {
		rc = put_equal(c, out, x, v);
	} else if (strcmp(op, "!=") == 0) {
		buf_puts(out, "NOT ");
		rc = put_equal(c, out, x, v);
	} else if (op[0] == '<' || op[0] == '>') {
		rc = put_order(c, out, x, op, v);
	} else if (strstr(op, "_of")) {
		rc = put_one_of(c, out, x, op, v);
	} else if (strstr(op, "_date")) {
		rc = put_date_op(c, out, x, op, v);
	} else {
		rc = put_text_op(c, out, x, op, v);
	}
	pop(c, at);
	return rc;
}

/* ---- events: event name, where, window -------------------------------- */

static int put_where(compiler *c, buf *out, json_object *o)
{
	json_object *w;
	size_t i, at, at2;

	if (!json_object_object_get_ex(o, "where", &w))
		return 0;
	at = push(c, ".where");
	if (!json_object_is_type(w, json_type_array)) {
		fail(c, "must be a list of filters, not %s", type_name(w));
		return -1;
	}
	for (i = 0; i < json_object_array_length(w); i++) {
		if (++c->nodes > RULES_MAX_NODES)
			return fail(c, "more than %d conditions and filters",
				    RULES_MAX_NODES);
		at2 = push(c, "[%zu]", i);
		buf_puts(out, " AND ");
		if (put_filter(c, out, "e.properties",
			       json_object_array_get_idx(w, i), "property"))
			return -1;
		pop(c, at2);
	}
	pop(c, at);
	return 0;
}

static int put_within(compiler *c, buf *out, json_object *v)
{
	double sec;
	int n;

	if (!json_object_is_type(v, json_type_string) ||
	    rules_parse_interval(&sec, json_object_get_string(v)) != 0)
		return fail(c,
			    "must be a positive interval of at most %g "
			    "years such as \"30 days\" or \"12 hours\"",
			    MAX_YEARS);
	n = param(c, json_object_get_string(v));
	if (n < 0)
		return -1;
	buf_printf(out, " AND e.ts >= $1 - $%d::interval", n);
	return 0;
}

static int put_between(compiler *c, buf *out, json_object *v)
{
	double t[2];
	int i, n[2];
	size_t at;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return fail(c, "must be a list of two times [start, end]");
	for (i = 0; i < 2; i++) {
		json_object *e = json_object_array_get_idx(v, (size_t)i);

		at = push(c, "[%d]", i);
		if (!json_object_is_type(e, json_type_string) ||
		    rules_parse_time(&t[i], json_object_get_string(e)) != 0)
			return fail(c, "must be an ISO-8601 time "
				       "(\"2026-01-31\" or "
				       "\"2026-01-31T12:00:00Z\")");
		pop(c, at);
	}
	if (t[0] >= t[1])
		return fail(c, "the start must lie before the end (the end "
			       "is excluded)");
	n[0] = param(c,
		     json_object_get_string(json_object_array_get_idx(v, 0)));
	n[1] = param(c,
		     json_object_get_string(json_object_array_get_idx(v, 1)));
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

	if (get_string(c, &event, o, "event", 1))
		return -1;
	n = param(c, event);
	if (n < 0)
		return -1;
	buf_printf(out, "e.event = $%d::text", n);
	json_object_object_get_ex(o, "within", &within);
	json_object_object_get_ex(o, "between", &between);
	if (within && between)
		return fail(c, "within and between exclude each other: give "
			       "one window");
	if (within) {
		at = push(c, ".within");
		rc = put_within(c, out, within);
		pop(c, at);
	} else if (between) {
		at = push(c, ".between");
		rc = put_between(c, out, between);
		pop(c, at);
	} else if (s->window) {
		buf_printf(out, " AND e.ts >= %s", s->window);
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

/* count {op, value}: *op and *want, ">= 1" when absent. */
static int get_count(compiler *c, const char **op, long long *want,
		     json_object *o)
{
	static const char *const keys[] = { "op", "value", NULL };
	static const char *const ops[] = {
		"=", "!=", ">", ">=", "<", "<=", NULL
	};
	json_object *cnt, *v;
	size_t at;

	*op = ">=";
	*want = 1;
	if (!json_object_object_get_ex(o, "count", &cnt))
		return 0;
	at = push(c, ".count");
	if (!json_object_is_type(cnt, json_type_object))
		return fail(c, "must be an object {\"op\", \"value\"}, not %s",
			    type_name(cnt));
	if (check_keys(c, cnt, keys, "count takes op, value") ||
	    get_string(c, op, cnt, "op", 1))
		return -1;
	if (!in_list(*op, ops)) {
		push(c, ".op");
		return fail(c,
			    "unknown operator \"%s\" (count takes = != > "
			    ">= < <=)",
			    *op);
	}
	if (!json_object_object_get_ex(cnt, "value", &v))
		return fail(c, "\"value\" is missing");
	push(c, ".value");
	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0 ||
	    json_object_get_int64(v) > 1000000000)
		return fail(c,
			    "must be a whole number from 0 to 1000000000, "
			    "not %s",
			    type_name(v));
	*want = json_object_get_int64(v);
	pop(c, at);
	return 0;
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
		return fail(c, "must be an object, not %s", type_name(p));
	if (check_keys(c, p, keys,
		       "performed takes event, where, count, within, "
		       "between") ||
	    get_count(c, &op, &want, p))
		return -1;
	buf_init(&f);
	if (put_events(c, &f, p, s)) {
		buf_free(&f);
		return -1;
	}
	list_add(&s->filters, &s->nagg, buf_steal(&f));
	buf_free(&f);
	snprintf(num, sizeof(num), "%lld", want);
	n = param(c, num);
	if (n < 0)
		return -1;
	buf_printf(out, "(coalesce(ev.c%d, 0) %s $%d::bigint)", s->nagg, op, n);
	*val = count_holds(op, 0, want) ? TV_TRUE : TV_FALSE;
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
		return fail(c, "must be a non-empty list of conditions, not %s",
			    json_object_is_type(l, json_type_array)
				    ? "an empty one"
				    : type_name(l));
	*val = is_and ? TV_TRUE : TV_FALSE;
	buf_putc(out, '(');
	for (i = 0; i < json_object_array_length(l); i++) {
		if (i)
			buf_puts(out, is_and ? " AND " : " OR ");
		at = push(c, "[%zu]", i);
		if (put_condition(c, out, &one, json_object_array_get_idx(l, i),
				  s, depth + 1))
			return -1;
		pop(c, at);
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
			    const char *window);
static json_object *parse_json(const char *text);

/* Strips trailing blanks and semicolons, then renames the parameters of
 * a definition_sql: $1 stays, $2 becomes window (its own window start),
 * any other is refused. Strings, quoted names, comments and
 * dollar-quoted text are copied as they are. */
static int rewrite_sql(compiler *c, buf *out, const char *sql,
		       const char *window)
{
	size_t n = strlen(sql), i = 0, j;
	char prev = ' ';

	while (n > 0 && strchr(" \t\r\n;", sql[n - 1]))
		n--;
	while (i < n) {
		char ch = sql[i];
		size_t start = i;

		if (ch == '\'' || ch == '"') {
			int esc = ch == '\'' && (prev == 'E' || prev == 'e');

			for (i++; i < n; i++) {
				if (esc && sql[i] == '\\' && i + 1 < n) {
					i++;
					continue;
				}
				if (sql[i] != ch)
					continue;
				if (i + 1 < n && sql[i + 1] == ch) {
					i++;
					continue;
				}
				break;
			}
			i = i < n ? i + 1 : n;
		} else if (ch == '-' && i + 1 < n && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				i++;
		} else if (ch == '/' && i + 1 < n && sql[i + 1] == '*') {
			int level = 1;

			for (i += 2; i < n && level > 0; i++) {
				if (sql[i] == '/' && i + 1 < n &&
				    sql[i + 1] == '*') {
					level++;
					i++;
				} else if (sql[i] == '*' && i + 1 < n &&
					   sql[i + 1] == '/') {
					level--;
					i++;
				}
			}
		} else if (ch == '$' && !(isalnum((unsigned char)prev) ||
					  prev == '_' || prev == '$')) {
			if (i + 1 < n && isdigit((unsigned char)sql[i + 1])) {
				long num = 0;

				for (i++;
				     i < n && isdigit((unsigned char)sql[i]);
				     i++)
					num = num < 100000
						      ? num * 10 +
								(sql[i] - '0')
						      : num;
				if (num == 2) {
					buf_printf(out, "(%s)", window);
				} else if (num == 1) {
					buf_puts(out, "$1");
				} else {
					return fail(c,
						    "its definition_sql uses "
						    "$%ld: a definition has "
						    "only $1 and $2",
						    num);
				}
				prev = '1';
				continue;
			}
			/* A dollar quote $tag$...$tag$, or a lone $. */
			for (j = i + 1;
			     j < n &&
			     (isalnum((unsigned char)sql[j]) || sql[j] == '_');
			     j++)
				;
			if (j < n && sql[j] == '$') {
				size_t tag = j + 1 - i;
				const char *end = NULL;

				for (j++; j + tag <= n; j++)
					if (memcmp(sql + j, sql + i, tag) ==
					    0) {
						end = sql + j;
						break;
					}
				i = end ? (size_t)(end - sql) + tag : n;
			} else {
				i++;
			}
		} else {
			i++;
		}
		buf_append(out, sql + start, i - start);
		prev = sql[i - 1];
	}
	return 0;
}

/* The current members of audience key, compiled into out. */
static int put_target_sql(compiler *c, buf *out, const rules_target *t)
{
	char window[64] = "'-infinity'::timestamptz";
	json_object *def;
	size_t at;
	int n, rc;

	if (t->lookback) {
		n = param(c, t->lookback);
		if (n < 0)
			return -1;
		snprintf(window, sizeof(window), "$1 - $%d::interval", n);
	}
	if (!t->definition) {
		at = push(c, ": computation %s", t->key);
		buf_puts(out, "SELECT DISTINCT d.profile_id::text AS profile_id"
			      " FROM (\n");
		rc = rewrite_sql(c, out,
				 t->definition_sql ? t->definition_sql : "",
				 window);
		buf_puts(out, "\n) AS d WHERE d.profile_id IS NOT NULL");
		pop(c, at);
		return rc;
	}
	def = parse_json(t->definition);
	at = push(c, ": computation %s: definition", t->key);
	rc = compile_audience(c, out, def, t->lookback ? window : NULL);
	pop(c, at);
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
		return fail(c, "must be an audience's key (a string), not %s",
			    type_name(v));
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
		return fail(c, "member_of makes a cycle: %s", cycle);
	}
	t = find_target(c->cat, key);
	if (!t)
		return fail(c, "no computation has the key \"%s\"", key);
	if (t->is_trait)
		return fail(c, "computation %s is a trait, not an audience",
			    key);
	if (c->nchain > RULES_MAX_DEPTH)
		return fail(c, "member_of nests deeper than %d audiences",
			    RULES_MAX_DEPTH);
	c->chain[c->nchain++] = key;
	buf_init(&sub);
	rc = put_target_sql(c, &sub, t);
	c->nchain--;
	if (rc) {
		buf_free(&sub);
		return -1;
	}
	list_add(&s->members, &s->nmember, buf_steal(&sub));
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
		return fail(c, "conditions nest deeper than %d levels",
			    RULES_MAX_DEPTH);
	if (++c->nodes > RULES_MAX_NODES)
		return fail(c, "more than %d conditions and filters",
			    RULES_MAX_NODES);
	if (!json_object_is_type(cond, json_type_object) ||
	    json_object_object_length(cond) != 1)
		return fail(c,
			    "a condition is an object with one key (performed, "
			    "not, and, or, trait or member_of), not %s",
			    json_object_is_type(cond, json_type_object)
				    ? "one with several or none"
				    : type_name(cond));
	json_object_object_foreach(cond, k, v)
	{
		kind = k;
		arg = v;
	}
	at = push(c, ".%s", kind);
	if (!in_list(kind, kinds)) {
		rc = fail(c, "unknown condition (use performed, not, and, or, "
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
		rc = put_filter(c, out, "t.traits", arg, "name");
	} else {
		*val = TV_UNKNOWN;
		rc = put_member_of(c, out, arg, s);
	}
	if (rc == 0)
		pop(c, at);
	return rc;
}

/* The aggregate of scope s over the events: one pass, one column cN per
 * performed. */
static void put_aggregate(buf *out, const scope *s)
{
	int i;

	buf_puts(out, "SELECT e.profile_id");
	for (i = 0; i < s->nagg; i++) {
		if (s->nagg == 1)
			buf_printf(out, ", count(*) AS c%d", i + 1);
		else
			buf_printf(out, ", count(*) FILTER (WHERE %s) AS c%d",
				   s->filters[i], i + 1);
	}
	buf_puts(out, " FROM audsync.events e WHERE e.ts < $1 AND (");
	for (i = 0; i < s->nagg; i++)
		buf_printf(out, "%s(%s)", i ? " OR " : "", s->filters[i]);
	buf_puts(out, ") GROUP BY e.profile_id");
}

/*
 * Assembles an audience: when the condition cannot hold without a
 * qualifying event (by_events), the events' aggregate drives the query
 * and the identity graph is only probed; else every profile of the
 * identity graph is tried.
 */
static void put_audience(buf *out, const scope *s, const char *cond,
			 int by_events)
{
	const char *pid = by_events ? "ev.profile_id" : "u.profile_id";
	int i;

	if (by_events) {
		buf_puts(out, "SELECT ev.profile_id FROM (");
		put_aggregate(out, s);
		buf_puts(out, ") ev");
	} else {
		buf_puts(out, "SELECT u.profile_id FROM (SELECT DISTINCT"
			      " x.profile_id FROM audsync.external_ids x) u");
		if (s->nagg) {
			buf_puts(out, " LEFT JOIN (");
			put_aggregate(out, s);
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
	buf_printf(out, " WHERE %s", cond);
	if (by_events)
		buf_puts(out, " AND EXISTS (SELECT 1 FROM audsync.external_ids"
			      " x WHERE x.profile_id = ev.profile_id)");
}

/* An audience definition into out; window: the SQL of its default
 * window's start, or NULL for none. */
static int compile_audience(compiler *c, buf *out, json_object *def,
			    const char *window)
{
	scope s;
	buf cond;
	tv val = TV_UNKNOWN;
	size_t at = strlen(c->path);
	int rc;

	memset(&s, 0, sizeof(s));
	s.window = window;
	buf_init(&cond);
	rc = put_condition(c, &cond, &val, def, &s, 1);
	if (rc == 0) {
		pop(c, at);
		put_audience(out, &s, cond.data, val == TV_FALSE);
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

	if (get_string(c, &prop, o, "property", 1))
		return -1;
	n = param(c, prop);
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

	if (get_string(c, fn, o, "fn", 1))
		return -1;
	if (!in_list(*fn, fns)) {
		at = push(c, ".fn");
		fail(c, "unknown function \"%s\" (use sum, avg, min or max)",
		     *fn);
		pop(c, at);
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
	if (!json_object_is_type(def, json_type_object) ||
	    json_object_object_length(def) != 1)
		return fail(c, "a computed trait is an object with one key "
			       "(event_counter, aggregation, most_frequent, "
			       "first, last, unique_list or "
			       "unique_list_count)");
	json_object_object_foreach(def, k, v)
	{
		kind = k;
		o = v;
	}
	push(c, ".%s", kind);
	if (!in_list(kind, trait_kinds))
		return fail(c, "unknown computed trait (use event_counter, "
			       "aggregation, most_frequent, first, last, "
			       "unique_list or unique_list_count)");
	if (!json_object_is_type(o, json_type_object))
		return fail(c, "must be an object, not %s", type_name(o));
	if (check_keys(c, o,
		       kind[0] == 'e'	? counter_keys
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
	if (put_events(c, &events, o, &s) == 0 &&
	    (kind[0] == 'e' ||
	     put_property_events(c, &p, o, events.data) == 0)) {
		buf_puts(out, "SELECT g.profile_id, g.value FROM (");
		put_trait_kind(out, kind, fn,
			       kind[0] == 'e' ? events.data : p.data);
		buf_puts(out, ") g WHERE EXISTS (SELECT 1 FROM"
			      " audsync.external_ids x"
			      " WHERE x.profile_id = g.profile_id)");
		rc = 0;
	}
	buf_free(&events);
	buf_free(&p);
	return rc;
}

/* ---- entry points ----------------------------------------------------- */

/* Parses text deeper than json-c's default of 32 levels, so that the
 * compiler, not the parser, names the path where a rule nests too deep.
 * Returns a new reference, or NULL. */
static json_object *parse_json(const char *text)
{
	json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	json_object *o;

	if (!tok)
		abort();
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (o && json_tokener_get_parse_end(tok) != strlen(text)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int rules_compile(rules_sql *out, const char *key, int is_trait,
		  const char *definition, const rules_catalog *cat, int first,
		  char *err, size_t errlen)
{
	compiler c;
	json_object *def;
	buf sql;
	int rc, i;

	memset(&c, 0, sizeof(c));
	c.first = first;
	c.err = err;
	c.errlen = errlen;
	c.cat = cat;
	c.chain[c.nchain++] = key;
	snprintf(c.path, sizeof(c.path), "definition");
	def = parse_json(definition ? definition : "");
	if (!def) {
		snprintf(err, errlen,
			 "definition: not JSON, or nested deeper than %d "
			 "levels",
			 JSON_MAX_DEPTH);
		return -1;
	}
	buf_init(&sql);
	rc = is_trait ? compile_trait(&c, &sql, def)
		      : compile_audience(&c, &sql, def, "$2");
	json_object_put(def);
	if (rc != 0 || c.failed) {
		if (!c.failed)
			fail(&c, "cannot be compiled");
		for (i = 0; i < c.nparams; i++)
			free(c.params[i]);
		free(c.params);
		buf_free(&sql);
		return -1;
	}
	out->sql = buf_steal(&sql);
	buf_free(&sql);
	out->params = c.params;
	out->nparams = c.nparams;
	out->first = first;
	return 0;
}

void rules_sql_free(rules_sql *r)
{
	int i;

	if (!r)
		return;
	for (i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r->params);
	free(r->sql);
	memset(r, 0, sizeof(*r));
}
