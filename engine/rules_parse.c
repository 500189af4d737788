/* rules_parse.c - reading a rule's JSON: errors with their JSON path,
 * the shape of objects, times, intervals and the operators of filters */
#include "audsync/rules_int.h"

#include "audsync/civil.h"
#include "audsync/alloc.h"

#include <ctype.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_YEARS 1000.0
#define YEAR_S	  31557600.0

/* ---- errors and paths ------------------------------------------------ */

/* Keys and values a rule names may hold control characters: the error
 * stays one line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* Records the first error, prefixed by the current path; returns -1. */
int rules_fail(compiler *c, const char *fmt, ...)
{
	char msg[AUDSYNC_ERR_LEN];
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

/* Appends a segment to the path; returns the length to pop back to. */
size_t rules_push(compiler *c, const char *fmt, ...)
{
	size_t n = strlen(c->path);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->path + n, sizeof(c->path) - n, fmt, ap);
	va_end(ap);
	return n;
}

void rules_pop(compiler *c, size_t n)
{
	c->path[n] = '\0';
}

/* Binds text as the next parameter; returns its number, or -1. */
int rules_param(compiler *c, const char *text)
{
	if (c->nparams >= RULES_MAX_PARAMS)
		return rules_fail(c, "the rule binds more than %d values",
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

void rules_list_add(char ***list, int *n, char *item)
{
	*list = alloc_realloc(*list, (size_t)(*n + 1) * sizeof(char *));
	(*list)[(*n)++] = item;
}

void rules_compiler_free(compiler *c)
{
	alloc_free_strings(c->params, c->nparams);
	alloc_free_strings(c->edges, c->nedges);
	alloc_free_strings(c->events, c->nevents);
	free(c->fresh);
	memset(c, 0, sizeof(*c));
}

/* ---- JSON shape ------------------------------------------------------ */

const char *rules_type_name(json_object *v)
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

const char *rules_value_name(json_object *v, char *out, size_t outlen)
{
	const char *text;
	size_t n;

	/* json-c clamps an integer beyond 64 bits to the nearest end. */
	if (json_object_is_type(v, json_type_int) &&
	    (json_object_get_int64(v) == INT64_MAX ||
	     json_object_get_int64(v) == INT64_MIN))
		return "a number too large to read";
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double) &&
	    !json_object_is_type(v, json_type_string))
		return rules_type_name(v);
	/* JSON's own escapes keep the error on one line. */
	text = json_object_to_json_string_ext(
		v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = strlen(text);
	if (n < outlen)
		return text;
	/* cut before a character, not inside one (UTF-8) */
	for (n = outlen - 4; n > 0 && (text[n] & 0xC0) == 0x80; n--)
		;
	snprintf(out, outlen, "%.*s...", (int)n, text);
	return out;
}

int rules_in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Refuses a key of o outside allowed, naming it in the path. */
int rules_check_keys(compiler *c, json_object *o, const char *const *allowed,
		     const char *what)
{
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		if (!rules_in_list(key, allowed)) {
			size_t n = rules_push(c, ".%s", key);

			rules_fail(c, "unknown key (%s)", what);
			rules_pop(c, n);
			return -1;
		}
	}
	return 0;
}

/* The non-empty string at o.key into *out (borrowed); optional keys that
 * are absent leave *out NULL. */
int rules_get_string(compiler *c, const char **out, json_object *o,
		     const char *key, int required)
{
	json_object *v;
	size_t n;
	int rc = 0;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v)) {
		if (required)
			return rules_fail(c, "\"%s\" is missing", key);
		return 0;
	}
	n = rules_push(c, ".%s", key);
	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		rc = rules_fail(c, "must be a non-empty string, not %s",
				json_object_is_type(v, json_type_string)
					? "an empty one"
					: rules_type_name(v));
	else
		*out = json_object_get_string(v);
	rules_pop(c, n);
	return rc;
}

/* 1 when s is a number as JSON writes it: json-c also reads NaN and
 * Infinity, which PostgreSQL's numeric would take. */
static int json_number_text(const char *s)
{
	s += *s == '-';
	if (*s == '0')
		s++;
	else if (isdigit((unsigned char)*s))
		while (isdigit((unsigned char)*s))
			s++;
	else
		return 0;
	if (*s == '.') {
		if (!isdigit((unsigned char)*++s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s += s[1] == '+' || s[1] == '-';
		if (!isdigit((unsigned char)*++s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

/* The JSON number v as it was written, for PostgreSQL's numeric to read:
 * json-c keeps the text of a fraction and reads a whole number into 64
 * bits. NULL when that text is lost (a whole number beyond 64 bits,
 * clamped to an end) or v is not a JSON number. */
static const char *number_text(json_object *v)
{
	const char *text;

	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return NULL;
	if (json_object_is_type(v, json_type_int) &&
	    (json_object_get_int64(v) == INT64_MIN ||
	     json_object_get_uint64(v) == UINT64_MAX))
		return NULL;
	text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	return json_number_text(text) ? text : NULL;
}

/* 1 when v is a number whose text number_text() lost. */
static int number_lost(json_object *v)
{
	return (json_object_is_type(v, json_type_int) ||
		json_object_is_type(v, json_type_double)) &&
	       !number_text(v);
}

/* The power of ten of the digit at d in a number's text without its
 * exponent, point: its decimal point or NULL, end: where it ends. */
static long digit_place(const char *d, const char *point, const char *end)
{
	if (!point)
		return (long)(end - d) - 1;
	return point > d ? (long)(point - d) - 1 : -(long)(d - point);
}

int rules_whole_number(long long *out, json_object *v, long long max)
{
	const char *s = number_text(v), *p, *first = NULL, *last = NULL;
	const char *point = NULL;
	long long n = 0;
	long scale, exp = 0;

	if (!s || *s == '-')
		return -1;
	for (p = s; isdigit((unsigned char)*p) || *p == '.'; p++) {
		if (*p == '.')
			point = p;
		else if (*p != '0' && !first)
			first = last = p;
		else if (*p != '0')
			last = p;
	}
	if (*p) /* the exponent; beyond a million is beyond any max */
		exp = strtol(p + 1, NULL, 10);
	if (exp > 1000000 || exp < -1000000)
		return -1;
	/* the value: the digits first..last times 10^scale */
	scale = first ? digit_place(last, point, p) + exp : 0;
	if (scale < 0 || (first && digit_place(first, point, p) + exp > 17))
		return -1;
	for (p = first; p && p <= last; p++)
		if (*p != '.')
			n = n * 10 + (*p - '0');
	for (; scale > 0; scale--)
		n *= 10;
	if (n > max)
		return -1;
	*out = n;
	return 0;
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
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > civil_month_days(y, mo))
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
	*out = (double)civil_days(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 +
	       se + frac - off;
	return 0;
}

static double unit_seconds(const char *u, size_t n)
{
	static const struct {
		const char *name;
		double seconds;
	} units[] = { { "second", 1 },	      { "sec", 1 },
		      { "minute", 60 },	      { "min", 60 },
		      { "hour", 3600 },	      { "day", 86400 },
		      { "week", 604800 },     { "month", YEAR_S / 12 },
		      { "mon", YEAR_S / 12 }, { "year", YEAR_S } };
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
	double total = 0, seen[16]; /* the units so far, by their length */
	int terms = 0, i;

	for (;;) {
		double count = 0, unit;
		const char *u, *digits;
		int nd = 0;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		/* leading zeros aside, up to 15 digits (exact in a double):
		 * the limit below is what refuses a count too large */
		for (digits = p; isdigit((unsigned char)*p) && nd < 15; p++) {
			count = count * 10 + (*p - '0');
			nd += count > 0;
		}
		if (p == digits || isdigit((unsigned char)*p))
			return -1;
		while (*p == ' ')
			p++;
		for (u = p; isalpha((unsigned char)*p); p++)
			;
		unit = unit_seconds(u, (size_t)(p - u));
		if (unit < 0 || terms == 16)
			return -1;
		/* PostgreSQL refuses a unit given twice ("1 day 1 day") */
		for (i = 0; i < terms; i++)
			if (seen[i] == unit)
				return -1;
		seen[terms++] = unit;
		total += count * unit;
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

/* x op v for a number v (its text: number_text()), false when x is
 * missing or not a number. Returns v's parameter number, or -1. */
static int put_number(compiler *c, buf *out, const char *x, const char *op,
		      const char *num)
{
	int n = rules_param(c, num);

	buf_printf(out,
		   "coalesce(CASE WHEN jsonb_typeof(%s) = 'number'"
		   " THEN (%s)::numeric END %s $%d::numeric, false)",
		   x, x, op, n);
	return n;
}

/* Refuses a number whose text json-c lost; 0 for any other v. */
static int check_number(compiler *c, json_object *v)
{
	if (!number_lost(v))
		return 0;
	if (json_object_is_type(v, json_type_int))
		return rules_fail(c,
				  "a whole number beyond 64 bits is not read "
				  "exactly; write it with a decimal point, "
				  "such as 100000000000000000000.0");
	return rules_fail(c, "must be a number as JSON writes it, not %s",
			  json_object_to_json_string(v));
}

/* x = v, false for a missing x. x is the property's jsonb (SQL NULL when
 * missing or JSON null). */
static int put_equal(compiler *c, buf *out, const char *x, json_object *v)
{
	int n;

	if (check_number(c, v))
		return -1;
	if (number_text(v)) {
		n = put_number(c, out, x, "=", number_text(v));
	} else if (json_object_is_type(v, json_type_string)) {
		n = rules_param(c, json_object_get_string(v));
		buf_printf(out, "coalesce((%s #>> '{}') = $%d::text, false)", x,
			   n);
	} else if (json_object_is_type(v, json_type_boolean)) {
		n = rules_param(c,
				json_object_get_boolean(v) ? "true" : "false");
		buf_printf(out, "coalesce(%s = $%d::jsonb, false)", x, n);
	} else {
		return rules_fail(c,
				  "must be a string, a number or a boolean, "
				  "not %s",
				  rules_type_name(v));
	}
	return n < 0 ? -1 : 0;
}

static int put_order(compiler *c, buf *out, const char *x, const char *op,
		     json_object *v)
{
	int n;

	if (check_number(c, v))
		return -1;
	if (number_text(v)) {
		n = put_number(c, out, x, op, number_text(v));
	} else if (json_object_is_type(v, json_type_string)) {
		n = rules_param(c, json_object_get_string(v));
		buf_printf(out,
			   "coalesce((%s #>> '{}') COLLATE \"C\" %s"
			   " $%d::text, false)",
			   x, op, n);
	} else {
		return rules_fail(
			c, "operator %s needs a number or a string, not %s", op,
			rules_type_name(v));
	}
	return n < 0 ? -1 : 0;
}

static int put_text_op(compiler *c, buf *out, const char *x, const char *op,
		       json_object *v)
{
	int n;

	if (!json_object_is_type(v, json_type_string))
		return rules_fail(c, "operator %s needs a string, not %s", op,
				  rules_type_name(v));
	n = rules_param(c, json_object_get_string(v));
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
		return rules_fail(
			c, "operator %s needs a non-empty list, not %s", op,
			json_object_is_type(v, json_type_array)
				? "an empty one"
				: rules_type_name(v));
	len = json_object_array_length(v);
	buf_putc(out, '(');
	if (none)
		buf_printf(out, "%s IS NOT NULL AND NOT (", x);
	for (i = 0; i < len; i++) {
		if (i)
			buf_puts(out, " OR ");
		at = rules_push(c, "[%zu]", i);
		if (put_equal(c, out, x, json_object_array_get_idx(v, i)))
			return -1;
		rules_pop(c, at);
	}
	buf_puts(out, none ? "))" : ")");
	return 0;
}

static int put_date_op(compiler *c, buf *out, const char *x, const char *op,
		       json_object *v)
{
	double t;
	int n;

	char seen[VALUE_NAME_MAX];

	if (!json_object_is_type(v, json_type_string) ||
	    rules_parse_time(&t, json_object_get_string(v)) != 0)
		return rules_fail(
			c,
			"operator %s needs an ISO-8601 time "
			"(\"2026-01-31\" or \"2026-01-31T12:00:00Z\"), not %s",
			op, rules_value_name(v, seen, sizeof(seen)));
	n = rules_param(c, json_object_get_string(v));
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
int rules_put_filter(compiler *c, buf *out, const char *src, json_object *f,
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
		return rules_fail(c, "must be an object, not %s",
				  rules_type_name(f));
	if (rules_check_keys(c, f, name_key[0] == 'p' ? prop_keys : trait_keys,
			     name_key[0] == 'p'
				     ? "a filter takes property, op, value"
				     : "trait takes name, op, value") ||
	    rules_get_string(c, &name, f, name_key, 1) ||
	    rules_get_string(c, &op, f, "op", 1))
		return -1;
	at = rules_push(c, ".op");
	if (!rules_in_list(op, operators)) {
		char use[256] = "";
		const char *const *o;

		/* the list is the table's, so it cannot drift from it */
		for (o = operators; *o; o++)
			snprintf(use + strlen(use), sizeof(use) - strlen(use),
				 "%s%s", o == operators ? "" : " ", *o);
		rules_fail(c, "unknown operator \"%s\" (use %s)", op, use);
		return -1;
	}
	rules_pop(c, at);
	has_value = json_object_object_get_ex(f, "value", &v);
	n = rules_param(c, name);
	if (n < 0)
		return -1;
	snprintf(x, sizeof(x), "nullif(%s -> $%d::text, 'null'::jsonb)", src,
		 n);
	if (strcmp(op, "exists") == 0 || strcmp(op, "not_exists") == 0) {
		if (has_value) {
			at = rules_push(c, ".value");
			rules_fail(c, "operator %s takes no value", op);
			rules_pop(c, at);
			return -1;
		}
		buf_printf(out, "(%s IS %sNULL)", x,
			   op[0] == 'e' ? "NOT " : "");
		return 0;
	}
	if (!has_value)
		return rules_fail(
			c, "\"value\" is missing (operator %s needs one)", op);
	at = rules_push(c, ".value");
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
	rules_pop(c, at);
	return rc;
}

/* Strips trailing blanks and semicolons, then renames the parameters of
 * a definition_sql: $1 stays, $2 becomes window (its own window start),
 * any other is refused. Strings, quoted names, comments and
 * dollar-quoted text are copied as they are. */
int rules_rewrite_sql(compiler *c, buf *out, const char *sql,
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
					return rules_fail(
						c,
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

/* count {op, value}: *op and *want, ">= 1" when absent. */
int rules_get_count(compiler *c, const char **op, long long *want,
		    json_object *o)
{
	static const char *const keys[] = { "op", "value", NULL };
	static const char *const ops[] = {
		"=", "!=", ">", ">=", "<", "<=", NULL
	};
	char seen[VALUE_NAME_MAX];
	json_object *cnt, *v;
	size_t at;

	*op = ">=";
	*want = 1;
	if (!json_object_object_get_ex(o, "count", &cnt))
		return 0;
	at = rules_push(c, ".count");
	if (!json_object_is_type(cnt, json_type_object))
		return rules_fail(
			c, "must be an object {\"op\", \"value\"}, not %s",
			rules_type_name(cnt));
	if (rules_check_keys(c, cnt, keys, "count takes op, value") ||
	    rules_get_string(c, op, cnt, "op", 1))
		return -1;
	if (!rules_in_list(*op, ops)) {
		rules_push(c, ".op");
		return rules_fail(c,
				  "unknown operator \"%s\" (count takes = != > "
				  ">= < <=)",
				  *op);
	}
	if (!json_object_object_get_ex(cnt, "value", &v))
		return rules_fail(c, "\"value\" is missing");
	rules_push(c, ".value");
	if (rules_whole_number(want, v, 1000000000) != 0)
		return rules_fail(
			c,
			"must be a whole number from 0 to 1000000000, "
			"not %s",
			rules_value_name(v, seen, sizeof(seen)));
	rules_pop(c, at);
	return 0;
}

/* Parses text deeper than json-c's default of 32 levels, so that the
 * compiler, not the parser, names the path where a rule nests too deep.
 * Returns 0 with *out a new reference (NULL for JSON null), or -1 with
 * *out untouched. */
int rules_parse_json(json_object **out, const char *text)
{
	json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	json_object *o;
	int rc = 0;

	if (!tok)
		abort();
	/* With its NUL, so that a number or null at the end is complete;
	 * NULL is then JSON null when the parser took the whole text. */
	o = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != strlen(text)) {
		json_object_put(o);
		o = NULL;
		rc = -1;
	}
	json_tokener_free(tok);
	if (rc == 0)
		*out = o;
	return rc;
}
