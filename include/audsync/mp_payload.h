/* mp_payload.h - Mixpanel record shapes: identify mapping, $insert_id */
#ifndef AUDSYNC_MP_PAYLOAD_H
#define AUDSYNC_MP_PAYLOAD_H

#include "audsync/buf.h"

#include <json-c/json.h>
#include <stdint.h>

/* A $insert_id: at most 36 characters of [0-9a-f-], plus the NUL. */
#define MP_INSERT_ID_LEN 36

/*
 * Derives a deterministic $insert_id from n strings: the same parts always
 * give the same id, different parts (order matters, "ab","c" != "a","bc")
 * give different ids with 128-bit hash odds. Writes 36 characters in
 * UUID form (8-4-4-4-12 lowercase hex) and a NUL to out.
 */
void mp_insert_id(char out[MP_INSERT_ID_LEN + 1], const char *const *parts,
		  size_t n);

/* The longest distinct_id, in bytes: Mixpanel cuts strings beyond 255,
 * so two longer ids could become one profile. */
#define MP_DISTINCT_ID_MAX 255

/* 1 when Mixpanel refuses s as a distinct_id (NULL, "", "null", "0",
 * "anon", ... compared case-insensitively, after trimming spaces), or
 * would cut it (longer than MP_DISTINCT_ID_MAX bytes). */
int mp_distinct_id_invalid(const char *s);

/* The fields every /engage update opens with. ip: "$ip" (an address to
 * geolocate, or "0" for none); NULL leaves it to the request's ip=0. */
typedef struct mp_update_head {
	const char *token;
	const char *distinct_id;
	int ignore_time;
	const char *ip;
} mp_update_head;

/* Mixpanel's reserved name of a Segment special trait (created, email,
 * firstName, lastName, name, username, phone), or NULL for any other. */
const char *mp_payload_trait_name(const char *trait);

/*
 * Parses JSON text as PostgreSQL wrote it, keeping what json-c's own
 * parser would lose: nesting deeper than its default 32 levels (up to
 * MP_JSON_MAX_DEPTH), and integers past 64 bits, which json-c clamps to
 * 18446744073709551615: those become doubles that print their own digits
 * followed by ".0", the same number. Returns a new reference (the caller
 * puts it), or NULL when text is not JSON.
 */
#define MP_JSON_MAX_DEPTH 1024
json_object *mp_json_parse_exact(const char *text);

/* Appends one /engage update {head, op: value} where value is JSON text
 * (copied verbatim). */
void mp_payload_update(buf *out, const mp_update_head *h, const char *op,
		       const char *value);

/* Appends one /engage update with a single operation op ("$set",
 * "$unset", ...) whose value is the JSON text value (copied verbatim). */
void mp_payload_engage(buf *out, const char *token, const char *distinct_id,
		       int ignore_time, const char *op, const char *value);

/* Appends {"event":E,"properties":{"distinct_id":D,"time":MS,
 * "$insert_id":I, ...}} where extra_props is JSON object text whose members
 * are spliced in after $insert_id (NULL or "{}" for none). */
void mp_payload_event(buf *out, const char *event, const char *distinct_id,
		      int64_t time_ms, const char *insert_id,
		      const char *extra_props);

#endif
