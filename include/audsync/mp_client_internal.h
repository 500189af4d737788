/* mp_client_internal.h - mp_client's pure parts, shared with its tests */
#ifndef AUDSYNC_MP_CLIENT_INTERNAL_H
#define AUDSYNC_MP_CLIENT_INTERNAL_H

#include "audsync/buf.h"
#include "audsync/mp_answer.h"
#include "audsync/mp_client.h"
#include "audsync/mp_policy.h"
#include "audsync/mp_redact.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zlib.h>

/*
 * Nothing here is part of the engine's contract: these functions are
 * exported only so that tests/check_mp_client.c can reach them.
 */

/* One queued record: its text is data[off, off + len) of its slot's
 * buffer, where records are stored joined by ','. */
typedef struct mp_rec {
	size_t off;
	size_t len;
	uint64_t tag;
} mp_rec;

/* How many of the n records (n >= 1) go in the next request: at most
 * max_records, and "[" + records joined by "," + "]" within max_bytes.
 * Always at least 1 (submit refuses a record over the byte cap). */
size_t mp_batch_plan(const mp_rec *recs, size_t n, size_t max_records,
		     size_t max_bytes);

/*
 * Appends "[" + text[0, len) + "]" to out, gzip-compressed (a gzip member,
 * Z_BEST_SPEED) when z is not NULL. z is a stream made by
 * mp_gzip_init() and is reset here. Returns 0, or -1 when zlib fails
 * (out may then hold a partial body; the caller resets it).
 */
int mp_body_build(buf *out, const char *text, size_t len, z_stream *z)
	__attribute__((warn_unused_result));
int mp_gzip_init(z_stream *z) __attribute__((warn_unused_result));

#endif
