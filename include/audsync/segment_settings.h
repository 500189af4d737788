/* segment_settings.h - the forwarding settings of a destination */
#ifndef AUDSYNC_SEGMENT_SETTINGS_H
#define AUDSYNC_SEGMENT_SETTINGS_H

#include <json-c/json.h>
#include <stddef.h>

/* The forwarding settings of a destination (DESIGN.md section 7a): the
 * seed's settings, snake_cased keys of the destination's settings. */
typedef struct segment_settings {
	char *token;
	int use_people;
	int consolidated_page_calls; /* default true, as the seed says */
	int track_all_pages;
	int track_categorized_pages;
	int track_named_pages;
	int set_all_traits_by_default; /* default true */
	char **people_properties;      /* NULL-terminated lists */
	char **super_properties;
	char **event_increments; /* compared case-insensitively */
	char **prop_increments;
	char **group_identifier_traits;
} segment_settings;

/* 1 when key is one of the forwarding settings above. */
int segment_is_setting(const char *key);

/*
 * Reads the forwarding settings from settings (a destination's settings
 * object, borrowed; other keys are ignored) with token and use_people.
 * Returns 0 and fills *out (free with segment_settings_free()), or -1
 * with a one-line reason in err naming the bad key (nothing to free).
 */
int segment_settings_parse(segment_settings *out, json_object *settings,
			   const char *token, int use_people, char *err,
			   size_t errlen) __attribute__((warn_unused_result));

void segment_settings_free(segment_settings *s); /* accepts zeroed */

/* 1 when s is in list (NULL-terminated, may be NULL), compared
 * case-insensitively when nocase. */
int segment_settings_listed(char *const *list, const char *s, int nocase);

#endif
