/* fuzz_segment_map.c - libFuzzer target: the Segment message mapper
 * (segment_map.h)
 *
 * Input: one byte of flags (bit 0: use_people), a destination's settings
 * as JSON up to the first newline, then one Segment-spec message. The
 * settings are refused with one line, or the message maps to 1 to
 * SEGMENT_MAX_CALLS records that are each one JSON object with a lane key,
 * or it is refused or skipped with a reason. Mapping the same text again
 * gives the same records ($insert_id derives from the message).
 */
#include "audsync/mp_payload.h"
#include "audsync/segment_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_tokener *tok;

/* The string member key of o, or NULL. */
static const char *str_member(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* 1 when an /import record carries what Mixpanel requires: an $insert_id
 * of 1 to 36 letters, digits and dashes, and a distinct_id it takes. */
static int event_ok(json_object *o)
{
	json_object *p;
	const char *iid, *did;
	size_t n;

	if (!json_object_object_get_ex(o, "properties", &p))
		return 0;
	iid = str_member(p, "$insert_id");
	did = str_member(p, "distinct_id");
	n = iid ? strlen(iid) : 0;
	return n >= 1 && n <= MP_INSERT_ID_LEN &&
	       strspn(iid, "abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n &&
	       (!did || !mp_distinct_id_invalid(did));
}

/* 1 when the len bytes at rec are exactly one JSON object in valid UTF-8,
 * read as strictly as JSON is defined, that Mixpanel would take at its
 * endpoint. */
static int one_object(const segment_call *call, const char *rec, size_t len)
{
	json_object *o;
	int ok;

	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, rec, (int)len);
	ok = o && json_object_is_type(o, json_type_object) &&
	     json_tokener_get_parse_end(tok) == len;
	if (ok && call->ep == MP_EP_IMPORT)
		ok = event_ok(o);
	else if (ok && call->ep == MP_EP_ENGAGE)
		ok = !mp_distinct_id_invalid(str_member(o, "$distinct_id"));
	json_object_put(o);
	return ok;
}

static void check_mapped(const segment_calls *c)
{
	int i;

	if (c->n < 1 || c->n > SEGMENT_MAX_CALLS ||
	    !segment_calls_message_id(c))
		abort();
	for (i = 0; i < c->n; i++) {
		size_t len;
		const char *rec = segment_call_record(c, i, &len);
		const char *key = segment_call_key(c, i);

		if (!rec || len == 0 || c->call[i].off + len > c->data.len ||
		    !key || !*key || c->call[i].key >= c->keys.len ||
		    !one_object(&c->call[i], rec, len))
			abort();
	}
}

/* The records of c, all in one string (caller frees). */
static char *records(const segment_calls *c)
{
	size_t total = 1, at = 0, len;
	char *all;
	int i;

	for (i = 0; i < c->n; i++) {
		segment_call_record(c, i, &len);
		total += len + 1;
	}
	all = malloc(total);
	if (!all)
		abort();
	for (i = 0; i < c->n; i++) {
		const char *rec = segment_call_record(c, i, &len);

		memcpy(all + at, rec, len);
		at += len;
		all[at++] = '\n';
	}
	all[at] = '\0';
	return all;
}

static void map_twice(const char *msg, size_t len, const segment_settings *s)
{
	segment_calls c;
	segment_result r;
	char *first;

	segment_calls_init(&c);
	r = segment_map_text(&c, msg, len, s);
	if (r == SEGMENT_MAPPED) {
		check_mapped(&c);
		first = records(&c);
		if (segment_map_text(&c, msg, len, s) != SEGMENT_MAPPED)
			abort();
		check_mapped(&c);
		{
			char *again = records(&c);

			if (strcmp(first, again) != 0)
				abort();
			free(again);
		}
		free(first);
	} else if ((r != SEGMENT_INVALID && r != SEGMENT_SKIPPED) ||
		   !c.reason[0] || c.n != 0) {
		abort();
	}
	segment_calls_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1, *nl;
	segment_settings s;
	json_object *settings;
	char err[512];
	size_t rest;

	if (size == 0)
		return 0;
	if (!tok) {
		tok = json_tokener_new();
		if (!tok)
			abort();
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
						    JSON_TOKENER_VALIDATE_UTF8);
	}
	rest = size - 1;
	nl = memchr(text, '\n', rest);
	if (!nl)
		return 0;
	json_tokener_reset(tok);
	settings = json_tokener_parse_ex(tok, text, (int)(nl - text));
	if (!json_object_is_type(settings, json_type_object)) {
		json_object_put(settings);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	err[0] = '\0';
	if (segment_settings_parse(&s, settings, "tok", data[0] & 1, err,
				   sizeof(err)) != 0) {
		if (!err[0] || strchr(err, '\n'))
			abort();
	} else {
		map_twice(nl + 1, rest - (size_t)(nl + 1 - text), &s);
		segment_settings_free(&s);
	}
	json_object_put(settings);
	return 0;
}
