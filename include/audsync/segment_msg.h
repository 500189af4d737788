/* segment_msg.h - one Segment message being mapped (segment_map.c) */
#ifndef AUDSYNC_SEGMENT_MSG_H
#define AUDSYNC_SEGMENT_MSG_H

/*
 * What segment_map.c reads once from a message and the writers every
 * message type shares; segment_event.c uses them for track, page and
 * screen. Not for other modules: segment_map.h is the interface.
 */
#include "audsync/json_doc.h"
#include "audsync/mp_payload.h"
#include "audsync/segment_map.h"

#include <stdint.h>

/* What every call of one message shares. Its strings are borrowed from
 * the parsed message (segment_calls.doc) and live as long as it. */
typedef struct segment_msg {
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
} segment_msg;

/* o.a.b (o.a when b is NULL), or NULL. */
static inline const jdoc_val *segment_path(const jdoc_val *o, const char *a,
					   const char *b)
{
	const jdoc_val *v = jdoc_get(o, a);

	return b ? jdoc_get(v, b) : v;
}

/*
 * The text at o.key in *out (NULL when absent or null). -1 with the
 * reason in m->out->reason, naming field, when it is there and not a
 * string, or holds U+0000: a C string, a distinct_id or a PostgreSQL text
 * would end there ("k\u0000a" and "k\u0000b" one messageId). The text
 * is borrowed from the message.
 */
int segment_msg_text(const char **out, segment_msg *m, const jdoc_val *o,
		     const char *key, const char *field)
	__attribute__((warn_unused_result));

/* As segment_msg_text() for a value that may be of any type, and is used
 * as text only when it is a string (else *out is NULL). */
int segment_msg_text_if(const char **out, segment_msg *m, const jdoc_val *o,
			const char *key, const char *field)
	__attribute__((warn_unused_result));

/* Present and neither an object nor null. */
static inline int segment_not_object(const jdoc_val *v)
{
	return v && !jdoc_is(v, JDOC_OBJECT) && !jdoc_is(v, JDOC_NULL);
}

/* The result for a message that cannot be mapped or has nothing to send:
 * m->out->reason becomes why (segment_msg_invalid_arg: what, then arg
 * quoted, at most 64 bytes of it). */
segment_result segment_msg_invalid(segment_msg *m, const char *why);
segment_result segment_msg_invalid_arg(segment_msg *m, const char *what,
				       const char *arg);
segment_result segment_msg_skipped(segment_msg *m, const char *why);

/* The message is mapped, but not whole: m->out->reason becomes why (the
 * caller logs it as a warning). */
void segment_msg_warn(segment_msg *m, const char *why);

/* The record written to c->data since off becomes a call on ep, in the
 * lane of key (copied). */
void segment_calls_add(segment_calls *c, mp_endpoint ep, size_t off,
		       const char *key);

/* Appends one /engage update {head, op: value} for the message's
 * distinct_id as a call. */
void segment_msg_add_update(segment_msg *m, const char *op, const char *value);

/* The $insert_id of the message's event: from its messageId and type, so
 * the same message always makes the same one. */
void segment_msg_insert_id(char out[MP_INSERT_ID_LEN + 1],
			   const segment_msg *m);

#endif
