/* mp_policy.c - when the Mixpanel client may send: backoff, Retry-After,
 * the rate limit */
#include "audsync/mp_policy.h"

#include <ctype.h>
#include <curl/curl.h>
#include <string.h>
#include <unistd.h>

/* Longest wait a Retry-After may ask for, in seconds (the backoff cap
 * bounds it again). */
#define RETRY_AFTER_MAX_S 10000000L

void mp_policy_defaults(mp_options *o)
{
	if (o->connect_timeout_ms <= 0)
		o->connect_timeout_ms = 10000;
	if (o->timeout_ms <= 0)
		o->timeout_ms = 30000;
	if (o->max_attempts <= 0)
		o->max_attempts = 6;
	if (o->backoff_base_ms <= 0)
		o->backoff_base_ms = 2000;
	if (o->backoff_cap_ms <= 0)
		o->backoff_cap_ms = 60000;
	if (o->jitter_ms <= 0)
		o->jitter_ms = 5000;
}

int64_t mp_policy_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t mp_policy_rng_seed(void)
{
	uint64_t seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^
			(uint64_t)mp_policy_now_ms() ^ 0x9e3779b97f4a7c15ULL;

	return seed ? seed : 1; /* xorshift would stay at 0 */
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: jitter only needs to be spread, not secret. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

long mp_policy_backoff_ms(const mp_options *o, int attempt, long retry_after_ms,
			  uint64_t *rng)
{
	long wait = o->backoff_cap_ms;
	int shift = attempt > 1 ? attempt - 1 : 0;

	if (retry_after_ms >= 0)
		return retry_after_ms < o->backoff_cap_ms ? retry_after_ms
							  : o->backoff_cap_ms;
	if (shift < 30 && o->backoff_base_ms <= (o->backoff_cap_ms >> shift))
		wait = o->backoff_base_ms << shift;
	if (o->jitter_ms > 0)
		wait += (long)(rng_next(rng) % (uint64_t)(o->jitter_ms + 1));
	return wait;
}

/* delta-seconds: digits only. */
static long retry_after_seconds(const char *p)
{
	long secs = 0;

	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		if (secs < RETRY_AFTER_MAX_S)
			secs = secs * 10 + (*p - '0');
	}
	return (secs < RETRY_AFTER_MAX_S ? secs : RETRY_AFTER_MAX_S) * 1000;
}

long mp_policy_retry_after(const char *value, size_t len, time_t now)
{
	char text[128];
	time_t t;

	while (len > 0 && isspace((unsigned char)*value)) {
		value++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)value[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(text) || memchr(value, '\0', len))
		return -1;
	memcpy(text, value, len);
	text[len] = '\0';
	if (isdigit((unsigned char)text[0]))
		return retry_after_seconds(text);
	t = curl_getdate(text, NULL);
	if (t == -1)
		return -1;
	if (t <= now)
		return 0;
	if (t - now > RETRY_AFTER_MAX_S)
		return RETRY_AFTER_MAX_S * 1000;
	return (long)(t - now) * 1000;
}

void mp_policy_bucket_init(mp_bucket *b, double rate, double burst, int64_t now)
{
	b->rate = rate > 0 ? rate : 0;
	b->burst = burst > b->rate ? burst : b->rate;
	b->tokens = 0;
	b->at = now;
}

int64_t mp_policy_bucket_take(mp_bucket *b, size_t n, int64_t now)
{
	if (b->rate <= 0)
		return 0;
	if (now > b->at) {
		b->tokens += (double)(now - b->at) * b->rate / 1000.0;
		b->at = now;
	}
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	if (b->tokens < 0)
		return now + (int64_t)(-b->tokens * 1000.0 / b->rate) + 1;
	/* a batch may overdraw; the next one waits for the debt */
	b->tokens -= (double)n;
	return 0;
}
