/* segment_map.h - Segment-spec messages to Mixpanel calls, as the seed says */
#ifndef AUDSYNC_SEGMENT_MAP_H
#define AUDSYNC_SEGMENT_MAP_H

#include "audsync/buf.h"
#include "audsync/errbuf.h"
#include "audsync/json_doc.h"
#include "audsync/mp_client.h"
#include "audsync/segment_settings.h"

/* A message larger than this is refused: Mixpanel takes no record over
 * 1 MB, and a record carries the message's properties or traits. */
#define SEGMENT_MAX_MESSAGE (1024 * 1024)
/* Calls one message makes, at most (a track with revenue, an event
 * increment and a property increment makes four). */
#define SEGMENT_MAX_CALLS 6
#define SEGMENT_SCRATCH	  3

typedef struct segment_call {
	mp_endpoint ep;
	size_t off, len; /* the record: data.data + off, len bytes */
	size_t key;	 /* its lane key (distinct_id): keys.data + key */
} segment_call;

/* The calls of one message. Reuse one across messages:
 * segment_map_text() resets it. Free with segment_calls_free(). */
typedef struct segment_calls {
	buf data;
	buf keys;
	segment_call call[SEGMENT_MAX_CALLS];
	int n;
	size_t message_id; /* keys.data + message_id */
	/* why not mapped or skipped; after SEGMENT_MAPPED, empty, or what
	 * of the message was not sent (a warning) */
	char reason[AUDSYNC_ERR_LEN];
	jdoc doc;		      /* the message, parsed */
	buf scratch[SEGMENT_SCRATCH]; /* kept across messages */
} segment_calls;

void segment_calls_init(segment_calls *c);
void segment_calls_free(segment_calls *c);

typedef enum segment_result {
	SEGMENT_INVALID = -1, /* cannot be mapped: reason says why */
	SEGMENT_MAPPED = 0,   /* n >= 1 calls; reason: a warning, or "" */
	SEGMENT_SKIPPED = 1   /* nothing to send, as the seed says: reason */
} segment_result;

/*
 * Maps one Segment-spec message, len bytes of JSON text, to the Mixpanel
 * calls the seed describes, with settings s. Every event's $insert_id
 * derives from the message's messageId, so the same message maps to the
 * same records. Refuses text that is not one JSON object, and a len over
 * SEGMENT_MAX_MESSAGE without reading the text (a reader that kept only
 * its start may say how long the message was).
 */
segment_result segment_map_text(segment_calls *out, const char *text,
				size_t len, const segment_settings *s);

/* The message's messageId after a SEGMENT_MAPPED result. Borrowed. */
const char *segment_calls_message_id(const segment_calls *c);

/* Call i's record (NUL-terminated copy not made: len bytes) and lane key
 * after a SEGMENT_MAPPED result. Borrowed. */
const char *segment_call_record(const segment_calls *c, int i, size_t *len);
const char *segment_call_key(const segment_calls *c, int i);

#endif
