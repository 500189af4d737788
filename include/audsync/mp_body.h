/* mp_body.h - request bodies of the Mixpanel client: batch plan, gzip,
 * the token splice */
#ifndef AUDSYNC_MP_BODY_H
#define AUDSYNC_MP_BODY_H

#include "audsync/buf.h"
#include "audsync/mp_client.h"

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/*
 * Pure: no network, no database. The client keeps a lane's records in one
 * buffer, their texts joined by ',', so that any run of consecutive
 * records is already the inside of a JSON array and a body is one copy
 * (or one deflate) of a contiguous slice.
 */

/* One queued record: its text is data[off, off + len) of its lane's
 * buffer; tag is the caller's. */
typedef struct mp_body_rec {
	size_t off;
	size_t len;
	uint64_t tag;
} mp_body_rec;

/* A lane's records in submission order: their texts joined by ',' in
 * one buffer, and their offsets. No allocation per record once warm. */
typedef struct mp_body_queue {
	buf data;
	mp_body_rec *recs;
	size_t n;
	size_t cap;
} mp_body_queue;

/* Appends a record of size bytes tagged tag and returns where its text
 * goes: the caller writes exactly size bytes there. */
char *mp_body_queue_add(mp_body_queue *q, size_t size, uint64_t tag);

/* The text of records [from, to) of q (from < to <= q->n), joined by
 * ',': *len bytes at the pointer returned, which q owns. */
const char *mp_body_queue_text(const mp_body_queue *q, size_t from, size_t to,
			       size_t *len);

/* Empties q, keeping its memory for the next records unless it grew
 * past keep bytes. */
void mp_body_queue_clear(mp_body_queue *q, size_t keep);
void mp_body_queue_free(mp_body_queue *q);

/* How many of the n records (n >= 1) go in the next request: at most
 * max_records, and "[" + records joined by "," + "]" within max_bytes.
 * Always at least 1 (the client refuses a record over the byte cap). */
size_t mp_body_plan(const mp_body_rec *recs, size_t n, size_t max_records,
		    size_t max_bytes);

/* Prepares z for mp_body_build(): gzip members at Z_BEST_SPEED. Returns
 * 0, or -1 when zlib fails. The caller ends it with deflateEnd(). */
int mp_body_gzip_init(z_stream *z) __attribute__((warn_unused_result));

/*
 * Appends "[" + text[0, len) + "]" to out, as one gzip member when z is
 * not NULL (a stream from mp_body_gzip_init(), reset here). Returns 0, or
 * -1 when zlib fails (out may then hold a partial body; the caller resets
 * it).
 */
int mp_body_build(buf *out, const char *text, size_t len, z_stream *z)
	__attribute__((warn_unused_result));

/* Appends the line a stdout: or file: sink writes for one request:
 * {"endpoint":path,"query":query,"body":[text]} and a newline. */
void mp_body_line(buf *out, const char *path, const char *query,
		  const char *text, size_t len);

/*
 * The token splice. An /engage or /groups update that starts with
 * {"$token":"..." goes with the destination's token as it is now,
 * whatever token it was queued with; an /import event goes as it is.
 * token_len is the length of the token as a JSON string (quotes and
 * escapes included). Returns the length of record[0, len) once spliced;
 * *old is the length of the JSON string it replaces, 0 when the record is
 * kept as it is.
 */
size_t mp_body_token_size(size_t *old, mp_endpoint ep, const char *record,
			  size_t len, size_t token_len);

/* Writes record[0, len) to out with token[0, token_len) in place of the
 * old JSON string of *old bytes that mp_body_token_size() found; out has
 * room for the size it returned. */
void mp_body_token_write(char *out, const char *record, size_t len, size_t old,
			 const char *token, size_t token_len);

#endif
