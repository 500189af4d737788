/* settings.h - every operator setting, declared once: name, type, range */
#ifndef AUDSYNC_SETTINGS_H
#define AUDSYNC_SETTINGS_H

#include <stddef.h>

/* Where a setting is written. */
typedef enum settings_scope {
	SETTINGS_ENV = 0, /* an AUDSYNC_* environment variable */
	SETTINGS_DEST = 1 /* a key of audsync.destinations.settings */
} settings_scope;

typedef enum settings_type {
	SETTINGS_INT = 0,      /* a whole number in [min, max] */
	SETTINGS_NUMBER = 1,   /* a number in [min, max] */
	SETTINGS_BOOL = 2,     /* true or false */
	SETTINGS_STRING = 3,   /* non-empty text */
	SETTINGS_DURATION = 4, /* a whole number and a unit: ms, s, min, h */
	SETTINGS_LIST = 5      /* separated items; empty allows none */
} settings_type;

/* One setting. min and max bound numbers and durations (in ms). */
typedef struct settings_def {
	settings_scope scope;
	const char *name;
	settings_type type;
	const char *unit; /* of a number: "ms", "events/s", or NULL */
	double min;
	double max;
	const char *dflt; /* as the operator would write it; "" for none */
	const char *doc;  /* one line for the README */
} settings_def;

/* Every setting, ended by an entry whose name is NULL. */
extern const settings_def settings_table[];

/* The setting called name in scope, or NULL. */
const settings_def *settings_find(settings_scope scope, const char *name);

/*
 * Parses text as the whole number (SETTINGS_INT) or the duration in
 * milliseconds (SETTINGS_DURATION) of setting d, strictly: no sign games,
 * no trailing text, no unit but the documented ones, inside [min, max].
 * Returns 0 and sets *out, or -1 with a one-line err naming the setting.
 */
int settings_parse_long(long *out, const settings_def *d, const char *text,
			char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Same for a number (SETTINGS_NUMBER or SETTINGS_INT). */
int settings_parse_double(double *out, const settings_def *d, const char *text,
			  char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The environment variable's value, or its default when unset or empty.
 * Borrowed (from the environment or the table). name must be in the
 * table. */
const char *settings_env(const char *name);

/* Reads the environment variable name (in the table) as a long: its
 * default when unset. Returns 0, or -1 with err set. */
int settings_env_long(long *out, const char *name, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Checks every AUDSYNC_* variable of the table that is set. Returns 0, or
 * -1 with err naming the first bad one. */
int settings_check_env(char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
