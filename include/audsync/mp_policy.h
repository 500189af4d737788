/* mp_policy.h - when the Mixpanel client may send: backoff, Retry-After,
 * the rate limit */
#ifndef AUDSYNC_MP_POLICY_H
#define AUDSYNC_MP_POLICY_H

#include "audsync/mp_client.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Records refused in a row, none accepted, that stop a destination: a
 * fault of the whole destination, as a wrong project token, which makes
 * /engage refuse every update as if each were bad. Halving every batch
 * down to single records would cost two requests and a dead letter per
 * record queued. */
#define MP_POLICY_REJECT_STREAK 64

/* Fills every zero field of o with its default (mp_client.h says
 * which). */
void mp_policy_defaults(mp_options *o);

/* Milliseconds of the monotonic clock: the time every wait counts in. */
int64_t mp_policy_now_ms(void);

/* A seed for mp_policy_backoff_ms()'s *rng: never 0, different from
 * one process to the next so that clients do not retry in step. */
uint64_t mp_policy_rng_seed(void);

/* The wait before send number attempt + 1 (attempt >= 1 sends failed):
 * min(cap, base * 2^(attempt-1)) + jitter in [0, jitter_ms], or
 * retry_after_ms (when >= 0) capped at cap. *rng is xorshift state. */
long mp_policy_backoff_ms(const mp_options *o, int attempt, long retry_after_ms,
			  uint64_t *rng);

/* The wait a Retry-After header value value[0, len) asks for, in ms:
 * delta-seconds, or an HTTP date relative to now; surrounding blanks and
 * the line end are ignored. -1 when it is neither. Pure. */
long mp_policy_retry_after(const char *value, size_t len, time_t now);

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

void mp_policy_bucket_init(mp_bucket *b, double rate, double burst,
			   int64_t now);
/* Takes n records at time now (ms): 0 when they may go, else the time
 * (ms) to ask again; nothing is taken then. */
int64_t mp_policy_bucket_take(mp_bucket *b, size_t n, int64_t now);

#endif
