/* segment_settings.c - the forwarding settings of a destination
 *
 * DESIGN.md section 7a: the seed's settings, snake_cased keys of a
 * destination's settings object. Parsed once per forward; the mapping
 * (segment_map.c, segment_event.c) only reads them.
 */
#include "audsync/segment_settings.h"

#include "audsync/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int segment_settings_listed(char *const *list, const char *s, int nocase)
{
	for (; list && *list; list++)
		if (nocase ? strcasecmp(*list, s) == 0 : strcmp(*list, s) == 0)
			return 1;
	return 0;
}
