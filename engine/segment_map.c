/* segment_map.c - Segment-spec messages to Mixpanel calls, as the seed says
 *
 * The seed (seed/mixpanel-destination.md) describes Segment's Mixpanel
 * destination in cloud mode; this module is that mapping and nothing else:
 * no database, no network. Where the seed is silent the choice is written
 * down here and in README.md ("Forwarding Segment messages").
 */
#include "audsync/segment_map.h"

#include "audsync/alloc.h"
#include "audsync/json_doc.h"
#include "audsync/mp_payload.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- settings ---------------------------------------------------------- */

static const char *const bool_keys[] = {
	"consolidated_page_calls", "track_all_pages", "track_categorized_pages",
	"track_named_pages", "set_all_traits_by_default"
};
static const char *const list_keys[] = { "people_properties",
					 "super_properties", "event_increments",
					 "prop_increments",
					 "group_identifier_traits" };
#define N_BOOL (sizeof(bool_keys) / sizeof(bool_keys[0]))
#define N_LIST (sizeof(list_keys) / sizeof(list_keys[0]))

int segment_is_setting(const char *key)
{
	size_t i;

	for (i = 0; i < N_BOOL; i++)
		if (strcmp(key, bool_keys[i]) == 0)
			return 1;
	for (i = 0; i < N_LIST; i++)
		if (strcmp(key, list_keys[i]) == 0)
			return 1;
	return 0;
}

static int *bool_field(segment_settings *s, size_t i)
{
	int *f[N_BOOL] = { &s->consolidated_page_calls, &s->track_all_pages,
			   &s->track_categorized_pages, &s->track_named_pages,
			   &s->set_all_traits_by_default };

	return f[i];
}

static char ***list_field(segment_settings *s, size_t i)
{
	char ***f[N_LIST] = { &s->people_properties, &s->super_properties,
			      &s->event_increments, &s->prop_increments,
			      &s->group_identifier_traits };

	return f[i];
}

/* A list setting: an array of non-empty strings. NULL when it is not. */
static char **parse_list(json_object *v)
{
	size_t i, n;
	char **l;

	if (!json_object_is_type(v, json_type_array))
		return NULL;
	n = json_object_array_length(v);
	l = alloc_calloc(n + 1, sizeof(*l));
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);

		if (!json_object_is_type(e, json_type_string) ||
		    json_object_get_string_len(e) == 0) {
			while (i > 0)
				free(l[--i]);
			free(l);
			return NULL;
		}
		l[i] = alloc_strdup(json_object_get_string(e));
	}
	return l;
}

static void free_list(char **l)
{
	size_t i;

	for (i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

void segment_settings_free(segment_settings *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < N_LIST; i++)
		free_list(*list_field(s, i));
	free(s->token);
	memset(s, 0, sizeof(*s));
}

/* One forwarding setting; -1 with err set when its value is wrong. */
static int take_setting(segment_settings *s, const char *key, json_object *v,
			char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < N_BOOL; i++) {
		if (strcmp(key, bool_keys[i]) != 0)
			continue;
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(err, errlen,
				 "setting %s must be true or false", key);
			return -1;
		}
		*bool_field(s, i) = json_object_get_boolean(v);
		return 0;
	}
	for (i = 0; i < N_LIST; i++) {
		char ***f = list_field(s, i);

		if (strcmp(key, list_keys[i]) != 0)
			continue;
		free_list(*f);
		*f = parse_list(v);
		if (!*f) {
			snprintf(err, errlen,
				 "setting %s must be a list of non-empty "
				 "strings",
				 key);
			return -1;
		}
		return 0;
	}
	return 0;
}

int segment_settings_parse(segment_settings *out, json_object *settings,
			   const char *token, int use_people, char *err,
			   size_t errlen)
{
	segment_settings s;

	memset(&s, 0, sizeof(s));
	s.token = alloc_strdup(token ? token : "");
	s.use_people = use_people;
	s.consolidated_page_calls = 1;
	s.set_all_traits_by_default = 1;
	if (settings && !json_object_is_type(settings, json_type_object)) {
		snprintf(err, errlen, "settings must be a JSON object");
		segment_settings_free(&s);
		return -1;
	}
	if (settings) {
		json_object_object_foreach(settings, key, val)
		{
			if (take_setting(&s, key, val, err, errlen) != 0) {
				segment_settings_free(&s);
				return -1;
			}
		}
	}
	*out = s;
	return 0;
}

static int in_list(char *const *l, const char *s, int nocase)
{
	for (; l && *l; l++)
		if (nocase ? strcasecmp(*l, s) == 0 : strcmp(*l, s) == 0)
			return 1;
	return 0;
}

/* ---- calls -------------------------------------------------------------- */

void segment_calls_init(segment_calls *c)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->data);
	buf_init(&c->keys);
	jdoc_init(&c->doc);
}

void segment_calls_free(segment_calls *c)
{
	int i;

	buf_free(&c->data);
	buf_free(&c->keys);
	for (i = 0; i < SEGMENT_SCRATCH; i++)
		buf_free(&c->scratch[i]);
	jdoc_free(&c->doc);
}

const char *segment_calls_message_id(const segment_calls *c)
{
	return c->keys.data + c->message_id;
}

const char *segment_call_record(const segment_calls *c, int i, size_t *len)
{
	*len = c->call[i].len;
	return c->data.data + c->call[i].off;
}

const char *segment_call_key(const segment_calls *c, int i)
{
	return c->keys.data + c->call[i].key;
}

/* Keeps a NUL-terminated copy of s in keys; returns its offset. */
static size_t keep_key(segment_calls *c, const char *s)
{
	size_t off = c->keys.len;

	buf_append(&c->keys, s, strlen(s) + 1);
	return off;
}

/* The record written to data since off becomes a call. */
static void add_call(segment_calls *c, mp_endpoint ep, size_t off,
		     const char *key, int repeatable)
{
	segment_call *k = &c->call[c->n++];

	k->ep = ep;
	k->off = off;
	k->len = c->data.len - off;
	k->key = keep_key(c, key);
	k->repeatable = repeatable;
}

/* ---- one message --------------------------------------------------------- */

/* What every call of one message shares. */
typedef struct msg_ctx {
	const jdoc_val *msg;
	const segment_settings *s;
	segment_calls *out;
	const char *type;
	const char *message_id;
	const char *user_id;	 /* a valid userId, or NULL */
	const char *anon_id;	 /* a valid anonymousId, or NULL */
	const char *distinct_id; /* user_id, else anon_id */
	const char *ip;		 /* context.ip to geolocate, or NULL */
	int ignore_time;	 /* context.active is false */
	int64_t time_ms;
	char date[32]; /* the time as Mixpanel's YYYY-MM-DDTHH:MM:SS */
} msg_ctx;

/* The reason is what, then arg quoted (at most 64 bytes of it). */
static segment_result invalid_arg(msg_ctx *m, const char *what, const char *arg)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s \"%.64s\"", what,
		 arg);
	return SEGMENT_INVALID;
}

static segment_result invalid(msg_ctx *m, const char *why)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s", why);
	return SEGMENT_INVALID;
}

static segment_result skipped(msg_ctx *m, const char *why)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s", why);
	return SEGMENT_SKIPPED;
}

static const jdoc_val *member(const jdoc_val *o, const char *key)
{
	return jdoc_get(o, key);
}

/* o.a.b, or NULL. */
static const jdoc_val *path(const jdoc_val *o, const char *a, const char *b)
{
	const jdoc_val *v = member(o, a);

	return b ? member(v, b) : v;
}

/* The string at key, or NULL when absent, null or not a string. */
static const char *str_member(const jdoc_val *o, const char *key)
{
	const jdoc_val *v = member(o, key);

	return jdoc_is(v, JDOC_STRING) ? v->s : NULL;
}

static int is_number(const jdoc_val *v)
{
	return jdoc_is(v, JDOC_NUMBER);
}

/* Present and neither an object nor null. */
static int not_object(const jdoc_val *v)
{
	return v && !jdoc_is(v, JDOC_OBJECT) && !jdoc_is(v, JDOC_NULL);
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n decimal digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* The UTC offset at p (Z, +HH:MM, +HHMM or nothing) in seconds; -1 when
 * p holds anything else. */
static int parse_offset(const char *p, int64_t *out)
{
	int sign, h, m;

	*out = 0;
	if (*p == 'Z' || *p == 'z')
		return p[1] ? -1 : 0;
	if (*p == '\0')
		return 0;
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p == '-' ? -1 : 1;
	h = digits(p + 1, 2);
	if (h < 0) /* not two digits: p + 3 may lie past the text */
		return -1;
	p += 3;
	if (*p == ':')
		p++;
	m = digits(p, 2);
	if (m < 0 || p[2])
		return -1;
	*out = sign * (h * 3600 + m * 60);
	return 0;
}

/* Parses an ISO-8601 time (Segment's timestamp): YYYY-MM-DDTHH:MM:SS,
 * optional fraction, then Z, +HH:MM, +HHMM or nothing (UTC). */
static int parse_time(int64_t *out, const char *s)
{
	int y, mo, d, h, mi, sec;
	int64_t ms = 0, scale = 100, off;
	const char *p;

	if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
		return -1;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	p = s + 19;
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	if (parse_offset(p, &off) != 0)
		return -1;
	*out = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
		off) * 1000 +
	       ms;
	return 0;
}

static void put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

/* YYYY-MM-DDTHH:MM:SS of ms (UTC): Mixpanel's date format. */
static void format_date(char out[32], int64_t ms)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	int y;

	gmtime_r(&t, &tm);
	y = (tm.tm_year + 1900) % 10000;
	put2(out, y / 100);
	put2(out + 2, y % 100);
	out[4] = '-';
	put2(out + 5, tm.tm_mon + 1);
	out[7] = '-';
	put2(out + 8, tm.tm_mday);
	out[10] = 'T';
	put2(out + 11, tm.tm_hour);
	out[13] = ':';
	put2(out + 14, tm.tm_min);
	out[16] = ':';
	put2(out + 17, tm.tm_sec);
	out[19] = '\0';
}

/* A Segment id usable as a distinct_id, or NULL. */
static const char *valid_id(const jdoc_val *msg, const char *key)
{
	const char *v = str_member(msg, key);

	return v && !mp_distinct_id_invalid(v) ? v : NULL;
}

/* context.ip when it names an address; 0, "0" or absent: none. */
static const char *context_ip(const jdoc_val *msg)
{
	const char *ip = str_member(member(msg, "context"), "ip");

	return ip && *ip && strcmp(ip, "0") != 0 ? ip : NULL;
}

static segment_result read_common(msg_ctx *m)
{
	const jdoc_val *active = path(m->msg, "context", "active");
	const char *ts = str_member(m->msg, "timestamp");

	m->type = str_member(m->msg, "type");
	if (!m->type)
		return invalid(m, "type is missing");
	m->message_id = str_member(m->msg, "messageId");
	if (!m->message_id || !*m->message_id)
		return invalid(m, "messageId is missing: it makes the "
				  "$insert_id and keeps a message sent once");
	if (!ts)
		ts = str_member(m->msg, "originalTimestamp");
	if (!ts || parse_time(&m->time_ms, ts) != 0)
		return invalid(m, "timestamp is missing or not an ISO-8601 "
				  "time");
	if (m->time_ms < 31536000000LL)
		return invalid_arg(m, "timestamp lies before 1971:", ts);
	format_date(m->date, m->time_ms);
	m->user_id = valid_id(m->msg, "userId");
	m->anon_id = valid_id(m->msg, "anonymousId");
	m->distinct_id = m->user_id ? m->user_id : m->anon_id;
	m->ip = context_ip(m->msg);
	m->ignore_time = jdoc_is(active, JDOC_FALSE);
	return SEGMENT_MAPPED;
}

static mp_update_head update_head(const msg_ctx *m, const char *distinct_id)
{
	mp_update_head h;

	h.token = m->s->token;
	h.distinct_id = distinct_id;
	h.ignore_time = m->ignore_time;
	h.ip = m->ip ? m->ip : "0";
	return h;
}

/* Appends one /engage update {head, op: value} as a call. */
static void add_update(msg_ctx *m, const char *op, const char *value,
		       int repeatable)
{
	mp_update_head h = update_head(m, m->distinct_id);
	size_t off = m->out->data.len;

	mp_payload_update(&m->out->data, &h, op, value);
	add_call(m->out, MP_EP_ENGAGE, off, m->distinct_id, repeatable);
}

/* ---- identify ------------------------------------------------------------ */

/* One trait into the members of $set or of $union (a non-empty list is
 * merged; an empty one clears the trait), under its Mixpanel name; with
 * token, the device token as a list of one. */
static void put_trait(buf *set, buf *uni, const char *key, const jdoc_val *v,
		      const char *token)
{
	buf *b = token || (v && jdoc_is(v, JDOC_ARRAY) && v->len) ? uni : set;
	const char *name = mp_payload_trait_name(key);

	buf_putc(b, b->len > 0 ? ',' : '{');
	buf_json_str(b, name ? name : key);
	buf_putc(b, ':');
	if (!token) {
		jdoc_write(b, v);
		return;
	}
	buf_putc(b, '[');
	buf_json_str(b, token);
	buf_putc(b, ']');
}

/* The traits that go to People: all (set_all_traits_by_default), or the
 * special traits and those named in people_properties; plus the device
 * token as $ios_devices (in the place of a trait so named). Into the
 * members of $set and $union. */
static void people_traits(buf *set, buf *uni, const msg_ctx *m,
			  const jdoc_val *traits)
{
	const char *token =
		str_member(path(m->msg, "context", "device"), "token");
	size_t i;

	if (token && !*token)
		token = NULL;
	for (i = 0; traits && i < traits->len; i++) {
		const jdoc_val *v = &traits->kids[i];
		int device = token && strcmp(v->key, "$ios_devices") == 0;

		if (!m->s->set_all_traits_by_default &&
		    !mp_payload_trait_name(v->key) &&
		    !in_list(m->s->people_properties, v->key, 0))
			continue;
		put_trait(set, uni, v->key, v, device ? token : NULL);
		if (device)
			token = NULL;
	}
	if (token)
		put_trait(set, uni, "$ios_devices", NULL, token);
}

static segment_result map_identify(msg_ctx *m)
{
	const jdoc_val *traits = member(m->msg, "traits");
	buf *set = &m->out->scratch[0], *uni = &m->out->scratch[1];

	if (not_object(traits))
		return invalid(m, "traits is not an object");
	if (!m->distinct_id)
		return invalid(m,
			       "identify has no valid userId or anonymousId");
	if (!m->s->use_people)
		return skipped(m, "identify goes to Mixpanel People, and "
				  "use_people is off for this destination");
	buf_reset(set);
	buf_reset(uni);
	people_traits(set, uni, m,
		      jdoc_is(traits, JDOC_OBJECT) ? traits : NULL);
	if (set->len == 0 && uni->len == 0)
		return skipped(m, "identify has no traits to set");
	/* $set and $union: both safe to repeat. */
	if (set->len > 0) {
		buf_putc(set, '}');
		add_update(m, "$set", set->data, 1);
	}
	if (uni->len > 0) {
		buf_putc(uni, '}');
		add_update(m, "$union", uni->data, 1);
	}
	return SEGMENT_MAPPED;
}

/* ---- track, page, screen ------------------------------------------------ */

/* Context fields Mixpanel's own libraries send, by their Mixpanel name
 * (Segment's cloud-mode destination sends the same). */
static const char *const context_props[][3] = {
	{ "app", "build", "$app_release" },
	{ "app", "version", "$app_version" },
	{ "page", "url", "$current_url" },
	{ "page", "referrer", "$referrer" },
	{ "device", "name", "$device" },
	{ "device", "manufacturer", "$manufacturer" },
	{ "device", "model", "$model" },
	{ "os", "name", "$os" },
	{ "os", "version", "$os_version" },
	{ "screen", "height", "$screen_height" },
	{ "screen", "width", "$screen_width" },
	{ "network", "carrier", "$carrier" },
	{ "network", "wifi", "$wifi" },
	{ "network", "bluetooth", "$bluetooth_enabled" },
	{ "network", "cellular", "$has_telephone" },
};

static const char *const campaign_props[][2] = {
	{ "source", "utm_source" }, { "medium", "utm_medium" },
	{ "term", "utm_term" },	    { "content", "utm_content" },
	{ "name", "utm_campaign" },
};

/* Properties audsync sets itself, never taken from the message. */
static int reserved_property(const char *key)
{
	static const char *const r[] = { "distinct_id", "token",   "time",
					 "$insert_id",	"ip",	   "mp_lib",
					 "$device_id",	"$user_id" };
	size_t i;

	/* Most keys end here, at their first letter. */
	if (!key[0] || !strchr("dt$im", key[0]))
		return 0;
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (strcmp(r[i], key) == 0)
			return 1;
	return 0;
}

static void insert_id(char out[MP_INSERT_ID_LEN + 1], const msg_ctx *m)
{
	const char *parts[3] = { "segment", m->message_id, m->type };

	mp_insert_id(out, parts, 3);
}

/* Event properties written straight into the record: each key once, the
 * first tier that has it wins: audsync's own fields, then the page's name
 * and category, the message's properties, its context fields and
 * campaign, and last the super properties. */
typedef struct props_writer {
	buf *b;
	int n;
	const jdoc_val *own;   /* the message's properties, or NULL */
	const jdoc_val *extra; /* a page's name and category, or NULL */
	const jdoc_val *msg;
} props_writer;

static void put_key(props_writer *w, const char *key)
{
	if (w->n++ > 0)
		buf_putc(w->b, ',');
	buf_json_str(w->b, key);
	buf_putc(w->b, ':');
}

static void put_member(props_writer *w, const char *key, const jdoc_val *v)
{
	put_key(w, key);
	jdoc_write(w->b, v);
}

/* The name the message's own property key is sent as, or NULL when it
 * is not sent (seed: "Reserved Properties"; audsync's own fields). */
static const char *own_name(const jdoc_val *own, const char *key)
{
	if (reserved_property(key))
		return NULL;
	if (key[0] != 'l' && key[0] != 'b' && key[0] != 's')
		return key;
	if (strcmp(key, "length") == 0)
		return "segment_length";
	if (strcmp(key, "bucket") == 0)
		return "segment_bucket";
	/* A renamed property wins over one already so named. */
	if ((strcmp(key, "segment_length") == 0 && member(own, "length")) ||
	    (strcmp(key, "segment_bucket") == 0 && member(own, "bucket")))
		return NULL;
	return key;
}

/* 1 when the message's own properties send name. */
static int own_sends(const jdoc_val *own, const char *name)
{
	if (member(own, name) && own_name(own, name))
		return 1;
	if (strcmp(name, "segment_length") == 0)
		return member(own, "length") != NULL;
	if (strcmp(name, "segment_bucket") == 0)
		return member(own, "bucket") != NULL;
	return 0;
}

/* 1 when a tier above the context fields sends name. */
static int above_context(const props_writer *w, const char *name)
{
	return reserved_property(name) || member(w->extra, name) ||
	       own_sends(w->own, name);
}

/* A context field or campaign value: present and not null. */
static const jdoc_val *context_value(const jdoc_val *msg, size_t i,
				     int campaign)
{
	const jdoc_val *ctx = member(msg, "context"), *v;

	if (campaign)
		v = path(ctx, "campaign", campaign_props[i][0]);
	else
		v = path(ctx, context_props[i][0], context_props[i][1]);
	return v && !jdoc_is(v, JDOC_NULL) ? v : NULL;
}

/* The value of field i of section sec (looked up once per section). */
static const jdoc_val *section_value(const jdoc_val *sec, const char *field)
{
	const jdoc_val *v = member(sec, field);

	return v && !jdoc_is(v, JDOC_NULL) ? v : NULL;
}

#define N_CONTEXT  (sizeof(context_props) / sizeof(context_props[0]))
#define N_CAMPAIGN (sizeof(campaign_props) / sizeof(campaign_props[0]))

static void put_context(props_writer *w)
{
	const jdoc_val *ctx = member(w->msg, "context"), *sec = NULL, *v;
	const char *last = NULL;
	size_t i;

	if (!ctx)
		return;
	for (i = 0; i < N_CONTEXT; i++) {
		/* The table lists each section's fields together. */
		if (!last || strcmp(last, context_props[i][0]) != 0) {
			last = context_props[i][0];
			sec = member(ctx, last);
		}
		v = sec ? section_value(sec, context_props[i][1]) : NULL;
		if (v && !above_context(w, context_props[i][2]))
			put_member(w, context_props[i][2], v);
	}
	sec = member(ctx, "campaign");
	for (i = 0; sec && i < N_CAMPAIGN; i++) {
		v = section_value(sec, campaign_props[i][0]);
		if (v && !above_context(w, campaign_props[i][1]))
			put_member(w, campaign_props[i][1], v);
	}
}

/* 1 when the context fields send name. */
static int context_sends(const props_writer *w, const char *name)
{
	size_t i;

	for (i = 0; i < N_CONTEXT; i++)
		if (strcmp(context_props[i][2], name) == 0)
			return context_value(w->msg, i, 0) != NULL;
	for (i = 0; i < N_CAMPAIGN; i++)
		if (strcmp(campaign_props[i][1], name) == 0)
			return context_value(w->msg, i, 1) != NULL;
	return 0;
}

/* The user's traits the message carries (context.traits) that
 * super_properties names, under their Mixpanel names. */
static void put_super(props_writer *w, const segment_settings *s)
{
	const jdoc_val *traits = path(w->msg, "context", "traits");
	char *const *l, *const *k;

	for (l = s->super_properties; l && *l; l++) {
		const jdoc_val *v = member(traits, *l);
		const char *name = mp_payload_trait_name(*l);
		int repeated = 0;

		name = name ? name : *l;
		/* A name listed twice (email and $email) goes once. */
		for (k = s->super_properties; k < l; k++) {
			const char *kn = mp_payload_trait_name(*k);

			repeated |= member(traits, *k) &&
				    strcmp(kn ? kn : *k, name) == 0;
		}
		if (v && !repeated && !above_context(w, name) &&
		    !context_sends(w, name))
			put_member(w, name, v);
	}
}

static void put_object(props_writer *w, const jdoc_val *o,
		       const jdoc_val *above)
{
	size_t i;

	for (i = 0; jdoc_is(o, JDOC_OBJECT) && i < o->len; i++) {
		const char *name = own_name(o, o->kids[i].key);

		if (name && !member(above, name))
			put_member(w, name, &o->kids[i]);
	}
}

static void put_fixed(props_writer *w, const msg_ctx *m, const char *iid)
{
	put_key(w, "distinct_id");
	buf_json_str(w->b, m->distinct_id);
	put_key(w, "time");
	buf_int(w->b, m->time_ms);
	put_key(w, "$insert_id");
	buf_json_str(w->b, iid);
	/* No ip: Mixpanel would geolocate the sender, audsync. */
	put_key(w, "ip");
	if (m->ip)
		buf_json_str(w->b, m->ip);
	else
		buf_putc(w->b, '0');
	if (m->anon_id) {
		put_key(w, "$device_id");
		buf_json_str(w->b, m->anon_id);
	}
	if (m->user_id) {
		put_key(w, "$user_id");
		buf_json_str(w->b, m->user_id);
	}
	put_key(w, "mp_lib");
	buf_puts(w->b, "\"audsync\"");
}

/* Appends the event of a track, page or screen call as a call. */
static void put_event(msg_ctx *m, const char *event, const jdoc_val *own,
		      const jdoc_val *extra)
{
	props_writer w = { &m->out->data, 0, own, extra, m->msg };
	char iid[MP_INSERT_ID_LEN + 1];
	size_t off = m->out->data.len;

	insert_id(iid, m);
	buf_puts(w.b, "{\"event\":");
	buf_json_str(w.b, event);
	buf_puts(w.b, ",\"properties\":{");
	put_fixed(&w, m, iid);
	put_object(&w, extra, NULL);
	put_object(&w, own, extra);
	put_context(&w);
	put_super(&w, m->s);
	buf_puts(w.b, "}}");
	add_call(m->out, MP_EP_IMPORT, off, m->distinct_id, 1);
}

/* properties.revenue as a number: *has is 0 without one. -1 when it is
 * there and not a number (a numeric string counts, as Segment's does). */
static int read_revenue(double *out, int *has, const jdoc_val *props)
{
	const jdoc_val *v = member(props, "revenue");
	char *end;

	*has = 0;
	if (!v || jdoc_is(v, JDOC_NULL))
		return 0;
	if (is_number(v)) {
		*out = jdoc_double(v);
		*has = 1;
		return isfinite(*out) ? 0 : -1; /* 1e400 is valid JSON */
	}
	if (!jdoc_is(v, JDOC_STRING))
		return -1;
	*out = strtod(v->s, &end);
	if (end == v->s || end != v->s + v->len || !isfinite(*out))
		return -1;
	*has = 1;
	return 0;
}

/* A charge appended to $transactions (Mixpanel's track_charge). */
static void add_charge(msg_ctx *m, const jdoc_val *props, double amount)
{
	const jdoc_val *v = member(props, "revenue");
	buf *value = &m->out->scratch[1];

	buf_reset(value);
	buf_puts(value, "{\"$transactions\":{\"$time\":");
	buf_json_str(value, m->date);
	buf_puts(value, ",\"$amount\":");
	if (is_number(v))
		jdoc_write(value, v);
	else
		buf_printf(value, "%.17g", amount);
	buf_puts(value, "}}");
	add_update(m, "$append", value->data, 0);
}

/* event_increments and prop_increments: $add, and "Last <event>". */
static void add_increments(msg_ctx *m, const char *event, const jdoc_val *props)
{
	int counted = in_list(m->s->event_increments, event, 1);
	buf *value = &m->out->scratch[1], *last = &m->out->scratch[2];
	char *const *l;

	buf_reset(value);
	if (counted) {
		buf_putc(value, '{');
		buf_json_str(value, event);
		buf_puts(value, ":1");
	}
	for (l = m->s->prop_increments; l && *l; l++) {
		const jdoc_val *v = member(props, *l);

		if (!is_number(v) || (counted && strcmp(*l, event) == 0))
			continue;
		buf_putc(value, value->len ? ',' : '{');
		buf_json_str(value, *l);
		buf_putc(value, ':');
		jdoc_write(value, v);
	}
	if (value->len > 0) {
		buf_putc(value, '}');
		add_update(m, "$add", value->data, 0);
	}
	if (counted) {
		buf_reset(last);
		buf_puts(last, "Last ");
		buf_puts(last, event);
		buf_reset(value);
		buf_putc(value, '{');
		buf_json_str(value, last->data);
		buf_putc(value, ':');
		buf_json_str(value, m->date);
		buf_putc(value, '}');
		add_update(m, "$set", value->data, 1);
	}
}

/* One event, and with People on its charge and increments. extra: the
 * page's name and category (or NULL). */
static segment_result map_event(msg_ctx *m, const char *event,
				const jdoc_val *extra)
{
	const jdoc_val *own = member(m->msg, "properties");
	double revenue = 0;
	int has_revenue;

	if (not_object(own))
		return invalid(m, "properties is not an object");
	if (!m->distinct_id)
		return invalid_arg(m, "no valid userId or anonymousId in",
				   m->type);
	if (read_revenue(&revenue, &has_revenue, own) != 0)
		return invalid(m, "properties.revenue is not a number");
	put_event(m, event, own, extra);
	if (!m->s->use_people)
		return SEGMENT_MAPPED;
	if (has_revenue && revenue != 0)
		add_charge(m, own, revenue);
	/* Increments need a known user (seed: "Incrementing events"). */
	if (m->user_id)
		add_increments(m, event, own);
	return SEGMENT_MAPPED;
}

static segment_result map_track(msg_ctx *m)
{
	const char *event = str_member(m->msg, "event");

	if (!event || !*event)
		return invalid(m, "track has no event name");
	return map_event(m, event, NULL);
}

/* The event name of a page or screen call under the four modes, first
 * that applies wins (seed: "Page"); NULL when none does. */
static int page_event(buf *out, const segment_settings *s, const char *noun,
		      const char *name, const char *category)
{
	if (s->consolidated_page_calls || s->track_all_pages) {
		buf_printf(out, "Loaded a %s", noun);
		return 0;
	}
	if (s->track_categorized_pages && category) {
		if (name)
			buf_printf(out, "Viewed %s %s %s", category, name,
				   noun);
		else
			buf_printf(out, "Viewed %s %s", category, noun);
		return 0;
	}
	if (s->track_named_pages && name) {
		buf_printf(out, "Viewed %s %s", name, noun);
		return 0;
	}
	return -1;
}

/* A string member of an object made here. */
static void string_member(jdoc_val *v, const char *key, const char *s)
{
	memset(v, 0, sizeof(*v));
	v->type = JDOC_STRING;
	v->key = key;
	v->keylen = strlen(key);
	v->s = s;
	v->len = strlen(s);
}

static segment_result map_page(msg_ctx *m, const char *noun)
{
	const jdoc_val *props = member(m->msg, "properties");
	const char *name = str_member(m->msg, "name");
	const char *category = str_member(m->msg, "category");
	buf *event = &m->out->scratch[0];
	jdoc_val extra, kids[2];

	if (!name)
		name = str_member(props, "name");
	if (!category)
		category = str_member(props, "category");
	name = name && *name ? name : NULL;
	category = category && *category ? category : NULL;
	buf_reset(event);
	if (page_event(event, m->s, noun, name, category) != 0)
		return skipped(m, "no page setting sends this call "
				  "(consolidated_page_calls is off and "
				  "no other applies)");
	/* Segment's page properties carry the call's name and category. */
	memset(&extra, 0, sizeof(extra));
	extra.type = JDOC_OBJECT;
	extra.kids = kids;
	if (name)
		string_member(&kids[extra.len++], "name", name);
	if (category)
		string_member(&kids[extra.len++], "category", category);
	return map_event(m, event->data, &extra);
}

/* ---- group, alias --------------------------------------------------------- */

/* The first trait named in group_identifier_traits that holds an id (a
 * non-empty string or an integer), or NULL; its name in *key. */
static const jdoc_val *group_id(const char **key, const msg_ctx *m,
				const jdoc_val *traits)
{
	char *const *l;

	for (l = m->s->group_identifier_traits; l && *l; l++) {
		const jdoc_val *v = member(traits, *l);

		if ((jdoc_is(v, JDOC_STRING) && v->len > 0) ||
		    (jdoc_is(v, JDOC_NUMBER) && v->is_int)) {
			*key = *l;
			return v;
		}
	}
	return NULL;
}

static segment_result map_group(msg_ctx *m)
{
	const jdoc_val *traits = member(m->msg, "traits"), *id;
	buf *data = &m->out->data, *lane = &m->out->scratch[2];
	const char *key = NULL;
	size_t off;

	if (not_object(traits))
		return invalid(m, "traits is not an object");
	id = group_id(&key, m, traits);
	if (!id)
		return skipped(m, "group has no trait named in "
				  "group_identifier_traits");
	off = data->len;
	buf_puts(data, "{\"$token\":");
	buf_json_str(data, m->s->token);
	buf_puts(data, ",\"$group_key\":");
	buf_json_str(data, key);
	buf_puts(data, ",\"$group_id\":");
	buf_json_str(data, id->s);
	buf_puts(data, ",\"$set\":");
	jdoc_write(data, traits);
	buf_putc(data, '}');
	buf_reset(lane);
	buf_puts(lane, key);
	buf_putc(lane, '/');
	buf_puts(lane, id->s);
	add_call(m->out, MP_EP_GROUPS, off, lane->data, 1);
	return SEGMENT_MAPPED;
}

static segment_result map_alias(msg_ctx *m)
{
	const char *previous = valid_id(m->msg, "previousId");
	char iid[MP_INSERT_ID_LEN + 1];
	buf *data = &m->out->data;
	size_t off = data->len;

	if (!previous || !m->user_id)
		return invalid(m, "alias needs a valid previousId and userId");
	insert_id(iid, m);
	buf_puts(data, "{\"event\":\"$create_alias\",\"properties\":{"
		       "\"distinct_id\":");
	buf_json_str(data, previous);
	buf_puts(data, ",\"alias\":");
	buf_json_str(data, m->user_id);
	buf_puts(data, ",\"time\":");
	buf_int(data, m->time_ms);
	buf_puts(data, ",\"$insert_id\":");
	buf_json_str(data, iid);
	buf_puts(data, ",\"ip\":");
	if (m->ip)
		buf_json_str(data, m->ip);
	else
		buf_putc(data, '0');
	buf_puts(data, "}}");
	add_call(m->out, MP_EP_IMPORT, off, previous, 1);
	return SEGMENT_MAPPED;
}

/* ---- entry points --------------------------------------------------------- */

static segment_result map_doc(segment_calls *out, const jdoc_val *msg,
			      const segment_settings *s)
{
	msg_ctx m;
	segment_result r;

	buf_reset(&out->data);
	buf_reset(&out->keys);
	out->n = 0;
	out->message_id = 0;
	out->reason[0] = '\0';
	memset(&m, 0, sizeof(m));
	m.msg = msg;
	m.s = s;
	m.out = out;
	if (!jdoc_is(msg, JDOC_OBJECT))
		return invalid(&m, "not a JSON object");
	r = read_common(&m);
	if (r != SEGMENT_MAPPED)
		return r;
	out->message_id = keep_key(out, m.message_id);
	if (strcmp(m.type, "identify") == 0)
		r = map_identify(&m);
	else if (strcmp(m.type, "track") == 0)
		r = map_track(&m);
	else if (strcmp(m.type, "page") == 0)
		r = map_page(&m, "Page");
	else if (strcmp(m.type, "screen") == 0)
		r = map_page(&m, "Screen");
	else if (strcmp(m.type, "group") == 0)
		r = map_group(&m);
	else if (strcmp(m.type, "alias") == 0)
		r = map_alias(&m);
	else
		r = invalid_arg(&m, "unknown type", m.type);
	if (r != SEGMENT_MAPPED)
		out->n = 0;
	return r;
}

segment_result segment_map(segment_calls *out, json_object *msg,
			   const segment_settings *s)
{
	size_t len;
	const char *text =
		json_object_to_json_string_length(msg, JSON_FLAGS, &len);

	return segment_map_text(out, text, len, s);
}

segment_result segment_map_text(segment_calls *out, const char *text,
				size_t len, const segment_settings *s)
{
	const jdoc_val *msg;

	out->n = 0;
	if (len > SEGMENT_MAX_MESSAGE) {
		snprintf(out->reason, sizeof(out->reason),
			 "message of %zu bytes is over the %d bytes Mixpanel "
			 "takes in one record",
			 len, SEGMENT_MAX_MESSAGE);
		return SEGMENT_INVALID;
	}
	if (jdoc_parse(&msg, &out->doc, text, len) != 0) {
		snprintf(out->reason, sizeof(out->reason), "not valid JSON: %s",
			 out->doc.err);
		return SEGMENT_INVALID;
	}
	return map_doc(out, msg, s);
}
