/* config.c - syncs, computations and destinations read from the database */
#include "audsync/config.h"

#include "audsync/alloc.h"
#include "audsync/db.h"
#include "audsync/dest_policy.h"
#include "audsync/errbuf.h"
#include "audsync/mp_dest.h"
#include "audsync/naming.h"
#include "audsync/segment_map.h"
#include "audsync/settings.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A destination's columns, in this order, from a base column on. */
#define DEST_COLUMNS                                                           \
	"d.id, d.name, d.region, d.api_base, d.project_token, d.secret_env,"   \
	" d.project_id, d.use_people, d.settings::text"
enum {
	DCOL_ID,
	DCOL_NAME,
	DCOL_REGION,
	DCOL_API_BASE,
	DCOL_TOKEN,
	DCOL_SECRET_ENV,
	DCOL_PROJECT_ID,
	DCOL_USE_PEOPLE,
	DCOL_SETTINGS
};

/* A lookback outside (0, LOOKBACK_MAX] fails its own sync, not this
 * shared query: as_of - '1000000 years' would be out of range. */
#define LOOKBACK_MAX "100 years"
#define LOOKBACK_BAD                                                           \
	"(c.lookback <= interval '0' OR c.lookback > interval '" LOOKBACK_MAX  \
	"')"

static const char load_sql[] =
	"WITH t AS (SELECT $3::timestamptz AS as_of)"
	" SELECT s.id, s.mode, s.id_sync, s.enabled AND c.enabled, c.id,"
	"  c.key, c.name, c.kind = 'trait', c.definition_sql,"
	"  c.definition IS NOT NULL, c.lookback IS NOT NULL,"
	"  c.include_anonymous, t.as_of::text,"
	"  CASE WHEN c.lookback IS NULL THEN '-infinity'"
	"   WHEN " LOOKBACK_BAD " THEN NULL"
	"   ELSE (t.as_of - c.lookback)::text END,"
	"  st.last_as_of IS NULL OR st.last_as_of < date_trunc("
	"   CASE WHEN c.lookback IS NULL THEN 'minute' ELSE 'hour' END,"
	"   t.as_of),"
	"  c.lookback::text, st.last_as_of::text, st.last_as_of > t.as_of,"
	"  st.targets_rule <> " SYNC_TARGETS_RULE ","
	"  " DEST_COLUMNS " FROM audsync.syncs s"
	" JOIN audsync.computations c ON c.id = s.computation_id"
	" JOIN audsync.destinations d ON d.id = s.destination_id"
	" LEFT JOIN audsync.sync_state st ON st.sync_id = s.id"
	" CROSS JOIN t"
	" WHERE ($1::text IS NULL OR c.key = $1)"
	"  AND ($2::text IS NULL OR d.name = $2)"
	" ORDER BY s.id";

/* The computations no sync uses, in load_sql's columns up to the
 * destination's (no sync, no destination, no state), evaluated now. */
static const char unsynced_sql[] =
	"SELECT NULL, NULL, NULL, c.enabled, c.id, c.key, c.name,"
	"  c.kind = 'trait', c.definition_sql, c.definition IS NOT NULL,"
	"  c.lookback IS NOT NULL, c.include_anonymous, now()::text,"
	"  CASE WHEN c.lookback IS NULL THEN '-infinity'"
	"  WHEN " LOOKBACK_BAD " THEN NULL"
	"  ELSE (now() - c.lookback)::text END,"
	"  false, c.lookback::text, NULL, false, false"
	" FROM audsync.computations c"
	" WHERE NOT EXISTS (SELECT 1 FROM audsync.syncs s"
	"  WHERE s.computation_id = c.id)"
	" ORDER BY c.id";

enum {
	COL_SYNC_ID,
	COL_MODE,
	COL_ID_SYNC,
	COL_ENABLED,
	COL_COMP_ID,
	COL_KEY,
	COL_NAME,
	COL_IS_TRAIT,
	COL_DEF_SQL,
	COL_HAS_RULE,
	COL_HAS_LOOKBACK,
	COL_INCL_ANON,
	COL_AS_OF,
	COL_WINDOW,
	COL_DUE,
	COL_LOOKBACK,
	COL_LAST_AS_OF,
	COL_AS_OF_BEFORE_LAST,
	COL_TARGETS_CHANGED,
	COL_DEST
};

static char *dup_or_null(const char *s)
{
	return alloc_strdup(s);
}

/* The column's text, or NULL for SQL NULL. */
static const char *col(const PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static int col_bool(const PGresult *r, int row, int c)
{
	const char *v = col(r, row, c);

	return v && v[0] == 't';
}

static void set_problem(dest_def *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records why d cannot be used; fmt's first %s is the destination's name,
 * so the message always says which one. */
static void set_problem(dest_def *d, const char *fmt, ...)
{
	char msg[AUDSYNC_ERR_LEN];
	va_list ap;

	if (d->problem)
		return; /* the first problem is the one to fix first */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->problem = alloc_strdup(msg);
	config_one_line(d->problem);
}

/* Where a string setting of d is kept. */
static char **string_setting(dest_def *d, const char *key)
{
	if (strcmp(key, "enter_event") == 0)
		return &d->enter_event;
	if (strcmp(key, "exit_event") == 0)
		return &d->exit_event;
	return &d->trait_event;
}

/* A number setting, by settings.h's declaration; -1 with a problem. */
static int number_setting(double *out, dest_def *d, const settings_def *def,
			  json_object *v)
{
	char why[AUDSYNC_ERR_LEN];

	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double)) {
		set_problem(d, "destination %s: setting %s must be a number",
			    d->name, def->name);
		return -1;
	}
	if (settings_parse_double(out, def, json_object_get_string(v), why,
				  sizeof(why)) != 0) {
		set_problem(d, "destination %s: setting %s", d->name, why);
		return -1;
	}
	return 0;
}

/* One setting, parsed by its declaration in settings.c. */
static void take_setting(dest_def *d, const char *key, json_object *v)
{
	const settings_def *def = settings_find(SETTINGS_DEST, key);
	double x;

	if (!def) {
		/* The forwarding settings (section 7a) are segment_map.c's. */
		if (!segment_is_setting(key))
			set_problem(d, "destination %s: unknown setting '%s'",
				    d->name, key);
	} else if (def->type == SETTINGS_STRING) {
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) == 0) {
			set_problem(d,
				    "destination %s: setting %s must be a "
				    "non-empty string",
				    d->name, key);
			return;
		}
		free(*string_setting(d, key));
		*string_setting(d, key) =
			alloc_strdup(json_object_get_string(v));
	} else if (def->type == SETTINGS_BOOL) {
		if (!json_object_is_type(v, json_type_boolean))
			set_problem(d,
				    "destination %s: setting %s must be "
				    "true or false",
				    d->name, key);
		else if (strcmp(key, "ignore_time") == 0)
			d->ignore_time = json_object_get_boolean(v);
		else
			d->geolocate = json_object_get_boolean(v);
	} else if (number_setting(&x, d, def, v) == 0) {
		if (strcmp(key, "max_rate") == 0)
			d->max_rate = x;
		else if (strcmp(key, "concurrency") == 0)
			d->concurrency = (int)x;
		else
			d->batch_size = (int)x;
	}
}

/* The forwarding settings (DESIGN.md section 7a) are read by forward;
 * a wrong one is the destination's problem all the same. */
static void check_forward_settings(dest_def *d, json_object *o)
{
	segment_settings ss;
	char why[AUDSYNC_ERR_LEN];

	if (segment_settings_parse(&ss, o, d->project_token, d->use_people, why,
				   sizeof(why)) != 0)
		set_problem(d, "destination %s: %s", d->name, why);
	else
		segment_settings_free(&ss);
}

void config_parse_settings(dest_def *d, const char *text)
{
	json_object *o = json_tokener_parse(text ? text : "{}");

	if (!o || !json_object_is_type(o, json_type_object)) {
		set_problem(d,
			    "destination %s: settings must be a JSON "
			    "object",
			    d->name);
	} else {
		json_object_object_foreach(o, key, val)
			take_setting(d, key, val);
		check_forward_settings(d, o);
	}
	json_object_put(o);
}

/*
 * The credential name of systemd's LoadCredential= from
 * $CREDENTIALS_DIRECTORY, without its trailing newline, into out
 * (outlen > 1). Returns 0, or -1 when there is none.
 */
static int read_credential(char *out, size_t outlen, const char *name)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	size_t n;
	FILE *f;

	if (!dir || !*dir || strchr(name, '/') || name[0] == '.')
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(out, 1, outlen - 1, f);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* Secrets come from the environment variable the destination names, or
 * else from the systemd credential of that name. Returns 1 when the
 * variable is allowed but this process has neither. */
static int resolve_secret(dest_def *d)
{
	char why[AUDSYNC_ERR_LEN];
	char cred[4096];
	const char *v;

	if (!d->secret_env || !*d->secret_env)
		return 0;
	if (dest_policy_secret_env(d->secret_env, why, sizeof(why)) != 0) {
		set_problem(d, "destination %s: %s", d->name, why);
		return 0;
	}
	v = getenv(d->secret_env);
	if ((!v || !*v) &&
	    read_credential(cred, sizeof(cred), d->secret_env) == 0)
		v = cred;
	if (!v || !*v)
		return 1;
	d->secret = alloc_strdup(v);
	return 0;
}

/* The secret, then the client's own check of the fields (mp_dest.h,
 * the same the client applies), then what the operator allows
 * (dest_policy.h); a secret this process lacks comes last, so that a
 * problem of the row is the one reported (problem_in_env). */
static void check_dest(dest_def *d)
{
	char why[AUDSYNC_ERR_LEN];
	mp_destination m;
	int no_secret = resolve_secret(d);

	config_mp_destination(&m, d);
	if (mp_dest_check(&m, why, sizeof(why)) != 0)
		set_problem(d, "%s", why);
	if (dest_policy_api_base(d->api_base, why, sizeof(why)) != 0)
		set_problem(d, "destination %s: %s", d->name, why);
	if (no_secret && !d->problem) {
		set_problem(d,
			    "destination %s: environment variable %s "
			    "(its secret_env) is not set, nor a credential "
			    "of that name",
			    d->name, d->secret_env);
		d->problem_in_env = 1;
	}
}

static void load_dest(dest_def *d, const PGresult *r, int row, int base)
{
	memset(d, 0, sizeof(*d));
	d->id = (int)db_int(PQgetvalue(r, row, base + DCOL_ID));
	d->name = alloc_strdup(PQgetvalue(r, row, base + DCOL_NAME));
	d->region = dup_or_null(col(r, row, base + DCOL_REGION));
	d->api_base = dup_or_null(col(r, row, base + DCOL_API_BASE));
	d->project_token = dup_or_null(col(r, row, base + DCOL_TOKEN));
	d->secret_env = dup_or_null(col(r, row, base + DCOL_SECRET_ENV));
	d->project_id = dup_or_null(col(r, row, base + DCOL_PROJECT_ID));
	d->use_people = col_bool(r, row, base + DCOL_USE_PEOPLE);
	d->enter_event = alloc_strdup("Audience Entered");
	d->exit_event = alloc_strdup("Audience Exited");
	d->trait_event = alloc_strdup("Trait Computed");
	d->ignore_time = 1;
	d->settings = dup_or_null(col(r, row, base + DCOL_SETTINGS));
	config_parse_settings(d, d->settings);
	check_dest(d);
}

/* The destination of row, loaded once and shared by its syncs. */
static dest_def *find_dest(sync_list *l, const PGresult *r, int row)
{
	int id = (int)db_int(PQgetvalue(r, row, COL_DEST + DCOL_ID));
	int i;

	for (i = 0; i < l->ndests; i++)
		if (l->dests[i].id == id)
			return &l->dests[i];
	load_dest(&l->dests[l->ndests], r, row, COL_DEST);
	return &l->dests[l->ndests++];
}

static void load_sync(sync_def *s, const PGresult *r, int row)
{
	const char *idsync = PQgetvalue(r, row, COL_ID_SYNC);

	s->id = (int)db_int(PQgetvalue(r, row, COL_SYNC_ID));
	s->mode = strcmp(PQgetvalue(r, row, COL_MODE), "track") == 0
			  ? SYNC_MODE_TRACK
			  : SYNC_MODE_IDENTIFY;
	s->id_sync = strcmp(idsync, "first") == 0  ? ID_SYNC_FIRST
		     : strcmp(idsync, "last") == 0 ? ID_SYNC_LAST
						   : ID_SYNC_ALL;
	s->enabled = col_bool(r, row, COL_ENABLED);
	s->computation_id = (int)db_int(PQgetvalue(r, row, COL_COMP_ID));
	s->key = alloc_strdup(PQgetvalue(r, row, COL_KEY));
	s->name = alloc_strdup(PQgetvalue(r, row, COL_NAME));
	s->is_trait = col_bool(r, row, COL_IS_TRAIT);
	s->definition_sql = dup_or_null(col(r, row, COL_DEF_SQL));
	s->has_rule = col_bool(r, row, COL_HAS_RULE);
	s->has_lookback = col_bool(r, row, COL_HAS_LOOKBACK);
	s->include_anonymous = col_bool(r, row, COL_INCL_ANON);
	s->as_of = alloc_strdup(PQgetvalue(r, row, COL_AS_OF));
	s->window_start = dup_or_null(col(r, row, COL_WINDOW));
	s->due = col_bool(r, row, COL_DUE);
	s->lookback = dup_or_null(col(r, row, COL_LOOKBACK));
	s->last_as_of = dup_or_null(col(r, row, COL_LAST_AS_OF));
	s->as_of_before_last = col_bool(r, row, COL_AS_OF_BEFORE_LAST);
	s->targets_changed = col_bool(r, row, COL_TARGETS_CHANGED);
}

/* Resolves --as-of (NULL: now) to a time in PostgreSQL. Mixpanel's
 * /import refuses event times before 1971 and over an hour ahead, and a
 * run "from the future" would exit members too early: all are usage
 * errors (CONFIG_EUSAGE), as is text that is no time. */
static int resolve_as_of(PGconn *conn, const char *as_of, char *out,
			 size_t outlen, char *err, size_t errlen)
{
	const char *params[1] = { as_of };
	const char *why = NULL;
	PGresult *r;
	int rc = CONFIG_EUSAGE;

	r = db_query(conn, "--as-of",
		     "SELECT t::text, NOT isfinite(t),"
		     " t < timestamptz '1971-01-01 00:00:00+00', t > now()"
		     " FROM (SELECT coalesce($1::timestamptz, now()) AS t) x",
		     1, params, err, errlen);
	if (!r)
		return PQstatus(conn) == CONNECTION_OK ? CONFIG_EUSAGE : -1;
	if (PQgetvalue(r, 0, 1)[0] == 't')
		why = "is not a finite time";
	else if (PQgetvalue(r, 0, 2)[0] == 't')
		why = "lies before 1971 (Mixpanel refuses older event times)";
	else if (PQgetvalue(r, 0, 3)[0] == 't')
		why = "lies in the future: move test data into the past "
		      "instead";
	if (why) {
		snprintf(err, errlen, "--as-of %.80s %s", as_of, why);
		config_one_line(err);
		goto out;
	}
	snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
	rc = 0;
out:
	PQclear(r);
	return rc;
}

int config_load(sync_list *out, PGconn *conn, const sync_filter *f, char *err,
		size_t errlen)
{
	char as_of[64];
	const char *params[3];
	PGresult *r;
	sync_list l = { 0 };
	int i, n, rc;

	rc = resolve_as_of(conn, f->as_of, as_of, sizeof(as_of), err, errlen);
	if (rc != 0)
		return rc;
	params[0] = f->computation;
	params[1] = f->destination;
	params[2] = as_of;
	r = db_query(conn, "read syncs", load_sql, 3, params, err, errlen);
	if (!r)
		return -1;
	n = PQntuples(r);
	l.items = alloc_calloc((size_t)n + 1, sizeof(*l.items));
	l.dests = alloc_calloc((size_t)n + 1, sizeof(*l.dests));
	for (i = 0; i < n; i++) {
		load_sync(&l.items[i], r, i);
		l.items[i].dest = find_dest(&l, r, i);
	}
	l.n = n;
	PQclear(r);
	*out = l;
	return 0;
}

int config_load_unsynced(sync_list *out, PGconn *conn, char *err, size_t errlen)
{
	sync_list l = { 0 };
	PGresult *r;
	int i;

	r = db_query(conn, "read computations", unsynced_sql, 0, NULL, err,
		     errlen);
	if (!r)
		return -1;
	l.n = PQntuples(r);
	l.items = alloc_calloc((size_t)l.n + 1, sizeof(*l.items));
	for (i = 0; i < l.n; i++)
		load_sync(&l.items[i], r, i);
	PQclear(r);
	*out = l;
	return 0;
}

int config_load_destinations(sync_list *out, PGconn *conn, const char *name,
			     char *err, size_t errlen)
{
	return config_load_destinations_for(out, conn, name, NULL, err, errlen);
}

int config_load_destinations_for(sync_list *out, PGconn *conn, const char *name,
				 const char *computation, char *err,
				 size_t errlen)
{
	const char *params[2] = { name, computation };
	sync_list l = { 0 };
	PGresult *r;
	int i;

	r = db_query(conn, "read destinations",
		     "SELECT " DEST_COLUMNS " FROM audsync.destinations d"
		     " WHERE ($1::text IS NULL OR d.name = $1)"
		     " AND ($2::text IS NULL OR EXISTS (SELECT 1"
		     "  FROM audsync.syncs s JOIN audsync.computations c"
		     "  ON c.id = s.computation_id"
		     "  WHERE s.destination_id = d.id AND c.key = $2))"
		     " ORDER BY d.id",
		     2, params, err, errlen);
	if (!r)
		return -1;
	l.ndests = PQntuples(r);
	l.dests = alloc_calloc((size_t)l.ndests + 1, sizeof(*l.dests));
	for (i = 0; i < l.ndests; i++)
		load_dest(&l.dests[i], r, i, 0);
	PQclear(r);
	*out = l;
	return 0;
}

static void free_dest(dest_def *d)
{
	free(d->name);
	free(d->region);
	free(d->api_base);
	free(d->project_token);
	free(d->secret_env);
	free(d->secret);
	free(d->project_id);
	free(d->enter_event);
	free(d->exit_event);
	free(d->trait_event);
	free(d->settings);
	free(d->problem);
}

void config_free(sync_list *l)
{
	int i;

	for (i = 0; l && i < l->n; i++) {
		sync_def *s = &l->items[i];

		free(s->key);
		free(s->name);
		free(s->definition_sql);
		free(s->as_of);
		free(s->window_start);
		free(s->lookback);
		free(s->last_as_of);
	}
	for (i = 0; l && i < l->ndests; i++)
		free_dest(&l->dests[i]);
	if (l) {
		free(l->items);
		free(l->dests);
		memset(l, 0, sizeof(*l));
	}
}

void config_mp_destination(mp_destination *out, const dest_def *d)
{
	memset(out, 0, sizeof(*out));
	out->name = d->name;
	out->region = d->region;
	out->api_base = d->api_base;
	out->project_token = d->project_token;
	out->secret = d->secret;
	out->project_id = d->project_id;
	out->geolocate = d->geolocate;
	out->max_rate = d->max_rate;
	out->concurrency = d->concurrency;
	out->batch_size = d->batch_size;
}

static const char *sync_problem(const sync_def *s, int with_env, char *buf,
				size_t len)
{
	const char *key_why = naming_key_problem(s->key);

	if (key_why)
		snprintf(buf, len, "computation %s: %s", s->key, key_why);
	else if (s->has_lookback && !s->window_start)
		snprintf(buf, len,
			 "computation %s: lookback %s must be positive and "
			 "at most " LOOKBACK_MAX,
			 s->key, s->lookback ? s->lookback : "");
	else if (!s->dest)
		return NULL;
	else if (s->dest->problem && (with_env || !s->dest->problem_in_env))
		snprintf(buf, len, "%s", s->dest->problem);
	else if (s->mode == SYNC_MODE_IDENTIFY && !s->dest->use_people)
		snprintf(buf, len,
			 "destination %s: identify syncs need "
			 "use_people = true (Mixpanel People); turn it on: "
			 "UPDATE audsync.destinations SET use_people = true "
			 "WHERE name = '%s'",
			 s->dest->name, s->dest->name);
	else
		return NULL;
	config_one_line(buf);
	return buf;
}

const char *config_sync_problem(const sync_def *s, char *buf, size_t len)
{
	return sync_problem(s, 1, buf, len);
}

const char *config_sync_row_problem(const sync_def *s, char *buf, size_t len)
{
	return sync_problem(s, 0, buf, len);
}

void config_one_line(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}
