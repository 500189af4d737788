/* segment_event.c - track, page and screen messages to Mixpanel events
 *
 * The event half of the mapping (segment_map.c reads the message and
 * dispatches): one /import event with its properties in the seed's order
 * of precedence, and with People on, the revenue charge and the
 * increments (a revenue that is no amount: the event without its charge,
 * and a warning). Pure, as segment_map.c.
 */
#include "audsync/segment_event.h"

#include "audsync/mp_payload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_number(const jdoc_val *v)
{
	return jdoc_is(v, JDOC_NUMBER);
}

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
	if ((strcmp(key, "segment_length") == 0 && jdoc_get(own, "length")) ||
	    (strcmp(key, "segment_bucket") == 0 && jdoc_get(own, "bucket")))
		return NULL;
	return key;
}

/* 1 when the message's own properties send name. */
static int own_sends(const jdoc_val *own, const char *name)
{
	if (jdoc_get(own, name) && own_name(own, name))
		return 1;
	if (strcmp(name, "segment_length") == 0)
		return jdoc_get(own, "length") != NULL;
	if (strcmp(name, "segment_bucket") == 0)
		return jdoc_get(own, "bucket") != NULL;
	return 0;
}

/* 1 when a tier above the context fields sends name. */
static int above_context(const props_writer *w, const char *name)
{
	return reserved_property(name) || jdoc_get(w->extra, name) ||
	       own_sends(w->own, name);
}

/* A context field or campaign value: present and not null. */
static const jdoc_val *context_value(const jdoc_val *msg, size_t i,
				     int campaign)
{
	const jdoc_val *ctx = jdoc_get(msg, "context"), *v;

	if (campaign)
		v = segment_path(ctx, "campaign", campaign_props[i][0]);
	else
		v = segment_path(ctx, context_props[i][0], context_props[i][1]);
	return v && !jdoc_is(v, JDOC_NULL) ? v : NULL;
}

/* The value of field i of section sec (looked up once per section). */
static const jdoc_val *section_value(const jdoc_val *sec, const char *field)
{
	const jdoc_val *v = jdoc_get(sec, field);

	return v && !jdoc_is(v, JDOC_NULL) ? v : NULL;
}

#define N_CONTEXT  (sizeof(context_props) / sizeof(context_props[0]))
#define N_CAMPAIGN (sizeof(campaign_props) / sizeof(campaign_props[0]))

static void put_context(props_writer *w)
{
	const jdoc_val *ctx = jdoc_get(w->msg, "context"), *sec = NULL, *v;
	const char *last = NULL;
	size_t i;

	if (!ctx)
		return;
	for (i = 0; i < N_CONTEXT; i++) {
		/* The table lists each section's fields together. */
		if (!last || strcmp(last, context_props[i][0]) != 0) {
			last = context_props[i][0];
			sec = jdoc_get(ctx, last);
		}
		v = sec ? section_value(sec, context_props[i][1]) : NULL;
		if (v && !above_context(w, context_props[i][2]))
			put_member(w, context_props[i][2], v);
	}
	sec = jdoc_get(ctx, "campaign");
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
	const jdoc_val *traits = segment_path(w->msg, "context", "traits");
	char *const *l, *const *k;

	for (l = s->super_properties; l && *l; l++) {
		const jdoc_val *v = jdoc_get(traits, *l);
		const char *name = mp_payload_trait_name(*l);
		int repeated = 0;

		name = name ? name : *l;
		/* A name listed twice (email and $email) goes once. */
		for (k = s->super_properties; k < l; k++) {
			const char *kn = mp_payload_trait_name(*k);

			repeated |= jdoc_get(traits, *k) &&
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

		if (name && !jdoc_get(above, name))
			put_member(w, name, &o->kids[i]);
	}
}

static void put_fixed(props_writer *w, const segment_msg *m, const char *iid)
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
static void put_event(segment_msg *m, const char *event, const jdoc_val *own,
		      const jdoc_val *extra)
{
	props_writer w = { &m->out->data, 0, own, extra, m->msg };
	char iid[MP_INSERT_ID_LEN + 1];
	size_t off = m->out->data.len;

	segment_msg_insert_id(iid, m);
	buf_puts(w.b, "{\"event\":");
	buf_json_str(w.b, event);
	buf_puts(w.b, ",\"properties\":{");
	put_fixed(&w, m, iid);
	put_object(&w, extra, NULL);
	put_object(&w, own, extra);
	put_context(&w);
	put_super(&w, m->s);
	buf_puts(w.b, "}}");
	segment_calls_add(m->out, MP_EP_IMPORT, off, m->distinct_id);
}

/* properties.revenue as a number: *has is 0 without one. -1 when it is
 * there and not a number (a numeric string counts, as Segment's does). */
static int read_revenue(double *out, int *has, const jdoc_val *props)
{
	const jdoc_val *v = jdoc_get(props, "revenue");
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
static void add_charge(segment_msg *m, const jdoc_val *props, double amount)
{
	const jdoc_val *v = jdoc_get(props, "revenue");
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
	segment_msg_add_update(m, "$append", value->data);
}

/* event_increments and prop_increments: $add, and "Last <event>". */
static void add_increments(segment_msg *m, const char *event,
			   const jdoc_val *props)
{
	int counted = segment_settings_listed(m->s->event_increments, event, 1);
	buf *value = &m->out->scratch[1], *last = &m->out->scratch[2];
	char *const *l;

	buf_reset(value);
	if (counted) {
		buf_putc(value, '{');
		buf_json_str(value, event);
		buf_puts(value, ":1");
	}
	for (l = m->s->prop_increments; l && *l; l++) {
		const jdoc_val *v = jdoc_get(props, *l);

		if (!is_number(v) || (counted && strcmp(*l, event) == 0))
			continue;
		buf_putc(value, value->len ? ',' : '{');
		buf_json_str(value, *l);
		buf_putc(value, ':');
		jdoc_write(value, v);
	}
	if (value->len > 0) {
		buf_putc(value, '}');
		segment_msg_add_update(m, "$add", value->data);
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
		segment_msg_add_update(m, "$set", value->data);
	}
}

/* One event, and with People on its charge and increments. extra: the
 * page's name and category (or NULL). */
static segment_result map_event(segment_msg *m, const char *event,
				const jdoc_val *extra)
{
	const jdoc_val *own = jdoc_get(m->msg, "properties");
	double revenue = 0;
	int has_revenue;

	if (segment_not_object(own))
		return segment_msg_invalid(m, "properties is not an object");
	if (!m->distinct_id)
		return segment_msg_invalid_arg(
			m, "no valid userId or anonymousId in", m->type);
	put_event(m, event, own, extra);
	if (!m->s->use_people)
		return SEGMENT_MAPPED;
	/* Seed: properties go "directly"; revenue matters for the charge
	 * only, so a revenue that is no amount costs the charge alone. */
	if (read_revenue(&revenue, &has_revenue, own) != 0)
		segment_msg_warn(m, "properties.revenue is not a number: the "
				    "event was sent, with no charge to "
				    "$transactions");
	else if (has_revenue && revenue != 0)
		add_charge(m, own, revenue);
	/* Increments need a known user (seed: "Incrementing events"). */
	if (m->user_id)
		add_increments(m, event, own);
	return SEGMENT_MAPPED;
}

segment_result segment_event_track(segment_msg *m)
{
	const char *event;

	if (segment_msg_text(&event, m, m->msg, "event", "event") != 0)
		return SEGMENT_INVALID;
	if (!event || !*event)
		return segment_msg_invalid(m, "track has no event name");
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

segment_result segment_event_page(segment_msg *m, const char *noun)
{
	const jdoc_val *props = jdoc_get(m->msg, "properties");
	const char *name, *category;
	buf *event = &m->out->scratch[0];
	jdoc_val extra, kids[2];

	/* The call's name and category, else its properties' (of any type
	 * there: only a string names the page). */
	if (segment_msg_text(&name, m, m->msg, "name", "name") != 0 ||
	    segment_msg_text(&category, m, m->msg, "category", "category") !=
		    0 ||
	    (!name && segment_msg_text_if(&name, m, props, "name",
					  "properties.name") != 0) ||
	    (!category && segment_msg_text_if(&category, m, props, "category",
					      "properties.category") != 0))
		return SEGMENT_INVALID;
	name = name && *name ? name : NULL;
	category = category && *category ? category : NULL;
	buf_reset(event);
	if (page_event(event, m->s, noun, name, category) != 0)
		return segment_msg_skipped(
			m, "no page setting sends this call "
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
