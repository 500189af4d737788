/* mp_client_internal.h - mp_client's pure parts, shared with its tests */
#ifndef AUDSYNC_MP_CLIENT_INTERNAL_H
#define AUDSYNC_MP_CLIENT_INTERNAL_H

#include "audsync/buf.h"
#include "audsync/mp_client.h"

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

/* The wait before send number attempt + 1 (attempt >= 1 sends failed):
 * min(cap, base * 2^(attempt-1)) + jitter in [0, jitter_ms], or
 * retry_after_ms (when >= 0) capped at cap. *rng is xorshift state. */
long mp_backoff_ms(const mp_options *o, int attempt, long retry_after_ms,
		   uint64_t *rng);

/*
 * The per-destination rate limit: a token bucket of records per second
 * holding at most burst (at least one second's worth). A request may
 * overdraw it; the next waits until the debt is paid.
 */
typedef struct mp_bucket {
	double rate; /* <= 0: no limit */
	double burst;
	double tokens;
	int64_t at; /* ms of the last refill */
} mp_bucket;

void mp_bucket_init(mp_bucket *b, double rate, double burst, int64_t now);
/* Takes n records at time now (ms): 0 when they may go, else the time
 * (ms) to ask again; nothing is taken then. */
int64_t mp_bucket_take(mp_bucket *b, size_t n, int64_t now);

/* The wait a Retry-After value asks for in ms: delta-seconds, or an HTTP
 * date relative to now. -1 when the value is neither. */
long mp_parse_retry_after(const char *value, time_t now);

/* What to do with the records of one answered request. */
typedef enum mp_action {
	MP_ACT_DELIVERED = 0, /* all accepted */
	MP_ACT_PARTIAL = 1,   /* failures[] rejected, the rest accepted */
	MP_ACT_REJECTED = 2,  /* all rejected for good with error */
	MP_ACT_SPLIT = 3,     /* send the halves (413, engage status 0) */
	MP_ACT_RETRY = 4,     /* back off and send again */
	MP_ACT_STOP_DEST = 5  /* 401/403 and the like: stop the destination */
} mp_action;

typedef struct mp_failure {
	long index;	 /* -1 when Mixpanel gave none */
	char *insert_id; /* NULL when Mixpanel gave none */
	char *message;	 /* "field: message" */
} mp_failure;

typedef struct mp_answer {
	mp_action action;
	char error[256]; /* one line, for every action but DELIVERED */
	mp_failure *failures;
	size_t nfailures;
} mp_answer;

/*
 * Classifies an answer. transport is a libcurl error text (NULL when an
 * HTTP answer came); status the HTTP status; body the answer's body;
 * nrecords the batch size. Fills *out (free it with mp_answer_free()).
 */
void mp_answer_classify(mp_answer *out, mp_endpoint ep, const char *transport,
			long status, const char *body, size_t len,
			size_t nrecords);
void mp_answer_free(mp_answer *a); /* accepts NULL */

/* Appends text[0, len) to out with every occurrence of secret (when not
 * NULL or empty) and the value of an Authorization header replaced by
 * "[redacted]". */
void mp_redact(buf *out, const char *text, size_t len, const char *secret);

#endif
