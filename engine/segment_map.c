/* segment_map.c - Segment-spec messages to Mixpanel calls, as the seed says
 *
 * The seed (seed/mixpanel-destination.md) describes Segment's Mixpanel
 * destination in cloud mode; this module is that mapping and nothing else:
 * no database, no network. Where the seed is silent the choice is written
 * down here and in README.md ("Forwarding Segment messages"). This file
 * reads the message (segment_msg.h), maps identify, group and alias, and
 * dispatches track, page and screen to segment_event.c; the settings are
 * segment_settings.c's.
 */
#include "audsync/segment_map.h"

#include "audsync/civil.h"
#include "audsync/json_doc.h"
#include "audsync/mp_payload.h"
#include "audsync/segment_event.h"
#include "audsync/segment_msg.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
void segment_calls_add(segment_calls *c, mp_endpoint ep, size_t off,
		       const char *key)
{
	segment_call *k = &c->call[c->n++];

	k->ep = ep;
	k->off = off;
	k->len = c->data.len - off;
	k->key = keep_key(c, key);
}

/* ---- one message --------------------------------------------------------- */

/* ---- one message --------------------------------------------------------- */

/* The reason is what, then arg quoted (at most 64 bytes of it). */
segment_result segment_msg_invalid_arg(segment_msg *m, const char *what,
				       const char *arg)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s \"%.64s\"", what,
		 arg);
	return SEGMENT_INVALID;
}

segment_result segment_msg_invalid(segment_msg *m, const char *why)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s", why);
	return SEGMENT_INVALID;
}

segment_result segment_msg_skipped(segment_msg *m, const char *why)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s", why);
	return SEGMENT_SKIPPED;
}

void segment_msg_warn(segment_msg *m, const char *why)
{
	snprintf(m->out->reason, sizeof(m->out->reason), "%s", why);
}
int segment_msg_text(const char **out, segment_msg *m, const jdoc_val *o,
		     const char *key, const char *field)
{
	const jdoc_val *v = jdoc_get(o, key);

	if (!v || jdoc_is(v, JDOC_NULL)) {
		*out = NULL;
		return 0;
	}
	if (!jdoc_is(v, JDOC_STRING)) {
		snprintf(m->out->reason, sizeof(m->out->reason),
			 "%s is not a string", field);
		return -1;
	}
	if (memchr(v->s, '\0', v->len)) {
		snprintf(m->out->reason, sizeof(m->out->reason),
			 "%s holds U+0000 (\\u0000), which no id, name or "
			 "time may hold",
			 field);
		return -1;
	}
	*out = v->s;
	return 0;
}

int segment_msg_text_if(const char **out, segment_msg *m, const jdoc_val *o,
			const char *key, const char *field)
{
	if (!jdoc_is(jdoc_get(o, key), JDOC_STRING)) {
		*out = NULL;
		return 0;
	}
	return segment_msg_text(out, m, o, key, field);
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
	if (h < 0 || h > 23) /* not two digits: p + 3 may lie past the text */
		return -1;
	p += 3;
	if (*p == ':')
		p++;
	m = digits(p, 2);
	if (m < 0 || m > 59 || p[2])
		return -1;
	*out = sign * (h * 3600 + m * 60);
	return 0;
}

/* Parses an ISO-8601 time (Segment's timestamp): YYYY-MM-DDTHH:MM:SS,
 * optional fraction, then Z, +HH:MM, +HHMM or nothing (UTC). A date or
 * time that does not exist (February 30th, 10:00:60, +24:00) is refused,
 * not carried into the next day or month. */
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
	/* No leap second: Mixpanel's time is Unix time, which has none. */
	if (y < 0 || mo < 1 || mo > 12 || d < 1 ||
	    d > civil_month_days(y, mo) || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || sec < 0 || sec > 59)
		return -1;
	p = s + 19;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1])) /* RFC 3339: "." 1*DIGIT */
			return -1;
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	if (parse_offset(p, &off) != 0)
		return -1;
	*out = (civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off) *
		       1000 +
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

/* The id at key (userId, anonymousId, previousId) in *out when it is
 * usable as a distinct_id, else NULL (ids Mixpanel refuses count as
 * none); -1 when it is not a string or holds U+0000. */
static int read_id(const char **out, segment_msg *m, const char *key)
{
	const char *v;

	if (segment_msg_text(&v, m, m->msg, key, key) != 0)
		return -1;
	*out = v && !mp_distinct_id_invalid(v) ? v : NULL;
	return 0;
}

/* context.ip when it names an address; 0, "0" or absent: none. */
static const char *context_ip(const char *ip)
{
	return ip && *ip && strcmp(ip, "0") != 0 ? ip : NULL;
}

/* The message's timestamp (else originalTimestamp) into m. */
static segment_result read_time(segment_msg *m)
{
	const char *field = "timestamp", *ts;
	char what[64];

	if (segment_msg_text(&ts, m, m->msg, field, field) != 0)
		return SEGMENT_INVALID;
	if (!ts) {
		field = "originalTimestamp";
		if (segment_msg_text(&ts, m, m->msg, field, field) != 0)
			return SEGMENT_INVALID;
	}
	if (!ts)
		return segment_msg_invalid(m, "timestamp is missing");
	if (parse_time(&m->time_ms, ts) != 0) {
		snprintf(what, sizeof(what),
			 "%s is not an ISO-8601 time that exists:", field);
		return segment_msg_invalid_arg(m, what, ts);
	}
	if (m->time_ms < 31536000000LL)
		return segment_msg_invalid_arg(
			m, "timestamp lies before 1971:", ts);
	format_date(m->date, m->time_ms);
	return SEGMENT_MAPPED;
}

static segment_result read_common(segment_msg *m)
{
	const jdoc_val *active = segment_path(m->msg, "context", "active");
	const char *ip;

	if (segment_msg_text(&m->type, m, m->msg, "type", "type") != 0)
		return SEGMENT_INVALID;
	if (!m->type)
		return segment_msg_invalid(m, "type is missing");
	if (segment_msg_text(&m->message_id, m, m->msg, "messageId",
			     "messageId") != 0)
		return SEGMENT_INVALID;
	if (!m->message_id || !*m->message_id)
		return segment_msg_invalid(
			m, "messageId is missing: it makes the "
			   "$insert_id and keeps a message sent once");
	if (read_time(m) != SEGMENT_MAPPED)
		return SEGMENT_INVALID;
	if (read_id(&m->user_id, m, "userId") != 0 ||
	    read_id(&m->anon_id, m, "anonymousId") != 0)
		return SEGMENT_INVALID;
	m->distinct_id = m->user_id ? m->user_id : m->anon_id;
	if (segment_msg_text_if(&ip, m, jdoc_get(m->msg, "context"), "ip",
				"context.ip") != 0)
		return SEGMENT_INVALID;
	m->ip = context_ip(ip);
	m->ignore_time = jdoc_is(active, JDOC_FALSE);
	return SEGMENT_MAPPED;
}

static mp_update_head update_head(const segment_msg *m, const char *distinct_id)
{
	mp_update_head h;

	h.token = m->s->token;
	h.distinct_id = distinct_id;
	h.ignore_time = m->ignore_time;
	h.ip = m->ip ? m->ip : "0";
	return h;
}

/* Appends one /engage update {head, op: value} as a call. */
void segment_msg_add_update(segment_msg *m, const char *op, const char *value)
{
	mp_update_head h = update_head(m, m->distinct_id);
	size_t off = m->out->data.len;

	mp_payload_update(&m->out->data, &h, op, value);
	segment_calls_add(m->out, MP_EP_ENGAGE, off, m->distinct_id);
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
 * token (NULL: none) as $ios_devices (in the place of a trait so named). Into the
 * members of $set and $union. */
static void people_traits(buf *set, buf *uni, const segment_msg *m,
			  const jdoc_val *traits, const char *token)
{
	size_t i;

	for (i = 0; traits && i < traits->len; i++) {
		const jdoc_val *v = &traits->kids[i];
		int device = token && strcmp(v->key, "$ios_devices") == 0;

		if (!m->s->set_all_traits_by_default &&
		    !mp_payload_trait_name(v->key) &&
		    !segment_settings_listed(m->s->people_properties, v->key,
					     0))
			continue;
		put_trait(set, uni, v->key, v, device ? token : NULL);
		if (device)
			token = NULL;
	}
	if (token)
		put_trait(set, uni, "$ios_devices", NULL, token);
}

/* 1 when v is a string equal to name, in any case. */
static int text_is(const jdoc_val *v, const char *name)
{
	return jdoc_is(v, JDOC_STRING) && v->len == strlen(name) &&
	       strncasecmp(v->s, name, v->len) == 0;
}

/* 1 when the message says its device is not an iOS one: a device.type
 * other than ios, else an os.name other than iOS (or iPadOS, or iPhone OS
 * as older iOS said). Saying nothing is no such claim. */
static int not_ios(const jdoc_val *msg)
{
	const jdoc_val *ctx = jdoc_get(msg, "context");
	const jdoc_val *type = segment_path(ctx, "device", "type");
	const jdoc_val *os = segment_path(ctx, "os", "name");

	if (jdoc_is(type, JDOC_STRING))
		return !text_is(type, "ios");
	if (jdoc_is(os, JDOC_STRING))
		return !text_is(os, "iOS") && !text_is(os, "iPadOS") &&
		       !text_is(os, "iPhone OS");
	return 0;
}

/* The device token to send as $ios_devices in *out, or NULL (none, or a
 * device that is not iOS: seed, "This only works on iOS", said in a
 * warning). -1 when the token is not a string or holds U+0000. */
static int device_token(const char **out, segment_msg *m)
{
	const char *token;

	if (segment_msg_text(&token, m,
			     segment_path(m->msg, "context", "device"), "token",
			     "context.device.token") != 0)
		return -1;
	if (token && !*token)
		token = NULL;
	if (token && not_ios(m->msg)) {
		segment_msg_warn(m, "context.device.token not sent: "
				    "$ios_devices is for iOS devices only, "
				    "and this one is not");
		token = NULL;
	}
	*out = token;
	return 0;
}

static segment_result map_identify(segment_msg *m)
{
	const jdoc_val *traits = jdoc_get(m->msg, "traits");
	buf *set = &m->out->scratch[0], *uni = &m->out->scratch[1];
	const char *token;

	if (segment_not_object(traits))
		return segment_msg_invalid(m, "traits is not an object");
	if (!m->distinct_id)
		return segment_msg_invalid(
			m, "identify has no valid userId or anonymousId");
	if (!m->s->use_people)
		return segment_msg_skipped(
			m, "identify goes to Mixpanel People, and "
			   "use_people is off for this destination");
	if (device_token(&token, m) != 0)
		return SEGMENT_INVALID;
	buf_reset(set);
	buf_reset(uni);
	people_traits(set, uni, m, jdoc_is(traits, JDOC_OBJECT) ? traits : NULL,
		      token);
	if (set->len == 0 && uni->len == 0)
		return segment_msg_skipped(m, "identify has no traits to set");
	if (set->len > 0) {
		buf_putc(set, '}');
		segment_msg_add_update(m, "$set", set->data);
	}
	if (uni->len > 0) {
		buf_putc(uni, '}');
		segment_msg_add_update(m, "$union", uni->data);
	}
	return SEGMENT_MAPPED;
}

void segment_msg_insert_id(char out[MP_INSERT_ID_LEN + 1], const segment_msg *m)
{
	const char *parts[3] = { "segment", m->message_id, m->type };

	mp_insert_id(out, parts, 3);
}

/* ---- group, alias --------------------------------------------------------- */

/* The first trait named in group_identifier_traits that holds an id (a
 * non-empty string or an integer), or NULL; its name in *key. */
static const jdoc_val *group_id(const char **key, const segment_msg *m,
				const jdoc_val *traits)
{
	char *const *l;

	for (l = m->s->group_identifier_traits; l && *l; l++) {
		const jdoc_val *v = jdoc_get(traits, *l);

		if ((jdoc_is(v, JDOC_STRING) && v->len > 0) ||
		    (jdoc_is(v, JDOC_NUMBER) && v->is_int)) {
			*key = *l;
			return v;
		}
	}
	return NULL;
}

static segment_result map_group(segment_msg *m)
{
	const jdoc_val *traits = jdoc_get(m->msg, "traits"), *id;
	buf *data = &m->out->data, *lane = &m->out->scratch[2];
	const char *key = NULL;
	size_t off;

	if (segment_not_object(traits))
		return segment_msg_invalid(m, "traits is not an object");
	id = group_id(&key, m, traits);
	if (!id)
		return segment_msg_skipped(m, "group has no trait named in "
					      "group_identifier_traits");
	/* The id is the group's key and its lane: it may not be cut. */
	if (jdoc_is(id, JDOC_STRING) && memchr(id->s, '\0', id->len)) {
		snprintf(m->out->reason, sizeof(m->out->reason),
			 "traits.%.64s holds U+0000 (\\u0000), which no id may "
			 "hold",
			 key);
		return SEGMENT_INVALID;
	}
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
	segment_calls_add(m->out, MP_EP_GROUPS, off, lane->data);
	return SEGMENT_MAPPED;
}

static segment_result map_alias(segment_msg *m)
{
	char iid[MP_INSERT_ID_LEN + 1];
	buf *data = &m->out->data;
	size_t off = data->len;
	const char *previous;

	if (read_id(&previous, m, "previousId") != 0)
		return SEGMENT_INVALID;
	if (!previous || !m->user_id)
		return segment_msg_invalid(
			m, "alias needs a valid previousId and userId");
	segment_msg_insert_id(iid, m);
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
	segment_calls_add(m->out, MP_EP_IMPORT, off, previous);
	return SEGMENT_MAPPED;
}

/* ---- entry points --------------------------------------------------------- */

static segment_result map_doc(segment_calls *out, const jdoc_val *msg,
			      const segment_settings *s)
{
	segment_msg m;
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
		return segment_msg_invalid(&m, "not a JSON object");
	r = read_common(&m);
	if (r != SEGMENT_MAPPED)
		return r;
	out->message_id = keep_key(out, m.message_id);
	if (strcmp(m.type, "identify") == 0)
		r = map_identify(&m);
	else if (strcmp(m.type, "track") == 0)
		r = segment_event_track(&m);
	else if (strcmp(m.type, "page") == 0)
		r = segment_event_page(&m, "Page");
	else if (strcmp(m.type, "screen") == 0)
		r = segment_event_page(&m, "Screen");
	else if (strcmp(m.type, "group") == 0)
		r = map_group(&m);
	else if (strcmp(m.type, "alias") == 0)
		r = map_alias(&m);
	else
		r = segment_msg_invalid_arg(&m, "unknown type", m.type);
	if (r != SEGMENT_MAPPED)
		out->n = 0;
	return r;
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
		/* Both are AUDSYNC_ERR_LEN long; the parser's text is one
		 * short line, so its first 900 bytes are all of it. */
		snprintf(out->reason, sizeof(out->reason),
			 "not valid JSON: %.900s", out->doc.err);
		return SEGMENT_INVALID;
	}
	return map_doc(out, msg, s);
}
