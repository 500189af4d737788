/*
 * fake_store.h - in-memory state of the fake Mixpanel server.
 *
 * Holds the deduplicated events, the user and group profiles and the
 * counters.  Every function except fake_store_new() and fake_store_free()
 * must be called with the store locked (fake_store_lock()).
 */
#ifndef AUDSYNC_TESTS_FAKE_STORE_H
#define AUDSYNC_TESTS_FAKE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

/* Counters reported by GET /_fake/summary. */
struct fs_counters {
	uint64_t requests_import;
	uint64_t requests_engage;
	uint64_t requests_groups;
	uint64_t requests_track;
	uint64_t records_received;
	uint64_t duplicates;
	uint64_t updates_applied;
	uint64_t records_rejected;
	uint64_t faults_injected;
	uint64_t gzip_requests;
	uint64_t bad_requests;
};

/* Deduplication key of an event: (event, distinct_id, time, $insert_id). */
struct fs_event_key {
	const char *event;
	size_t event_len;
	const char *distinct_id;
	size_t distinct_id_len;
	const char *insert_id; /* NULL: never deduplicated (/track) */
	size_t insert_id_len;
	int64_t time_ms;
};

enum fs_kind {
	FS_PROFILE, /* /engage, keyed by $distinct_id */
	FS_GROUP    /* /groups, keyed by $group_key and $group_id */
};

/* One validated profile update, applied by fake_store_apply_update(). */
struct fs_update {
	enum fs_kind kind;
	const char *id; /* $distinct_id, or $group_key for groups */
	size_t id_len;
	const char *group_id; /* groups only */
	size_t group_id_len;
	const char *op;	    /* "$set", "$unset", ... */
	json_object *value; /* the operation's value (borrowed) */
	int set_last_seen;  /* 0 when $ignore_time is true */
	int geolocate;	    /* set $city as a request-IP lookup would */
	time_t now;
};

struct fake_store;

struct fake_store *fake_store_new(void);
void fake_store_free(struct fake_store *st);
void fake_store_lock(struct fake_store *st);
void fake_store_unlock(struct fake_store *st);

/* Drops all events, profiles and counters. */
void fake_store_reset(struct fake_store *st);

struct fs_counters *fake_store_counters(struct fake_store *st);

/*
 * Stores one event (json is its serialized form, copied).  Returns 0 when
 * new, 1 when it replaced a duplicate, -1 when out of memory.
 */
int fake_store_add_event(struct fake_store *st, const struct fs_event_key *k,
			 const char *json, size_t json_len);

/*
 * Applies one update.  Returns 0 when applied, 1 when refused (a message
 * is written to err), -1 when out of memory.
 */
int fake_store_apply_update(struct fake_store *st, const struct fs_update *u,
			    char *err, size_t err_size);

/* Malloc'd JSON texts for GET /_fake/state and GET /_fake/summary. */
char *fake_store_state_json(struct fake_store *st, size_t *len);
char *fake_store_summary_json(struct fake_store *st, size_t *len);

#endif /* AUDSYNC_TESTS_FAKE_STORE_H */
