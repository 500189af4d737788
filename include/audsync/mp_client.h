/* mp_client.h - the one Mixpanel client every sync sends through */
#ifndef AUDSYNC_MP_CLIENT_H
#define AUDSYNC_MP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_client mp_client;

typedef enum mp_endpoint {
	MP_EP_ENGAGE = 0, /* /engage?verbose=1&ip=0, no gzip */
	MP_EP_GROUPS = 1, /* /groups?verbose=1&ip=0, no gzip */
	MP_EP_IMPORT = 2  /* /import?strict=1, gzip, HTTP Basic */
} mp_endpoint;
#define MP_EP_COUNT 3

/* The path of ep ("/engage", "/groups", "/import"), the one table of
 * them. Static storage. */
const char *mp_endpoint_path(mp_endpoint ep);

typedef enum mp_outcome {
	MP_OUT_DELIVERED = 0,	 /* Mixpanel accepted the record */
	MP_OUT_REJECTED = 1,	 /* rejected for good; message says why */
	MP_OUT_NOT_DELIVERED = 2 /* not sent or not accepted yet; keep it */
} mp_outcome;

/* Records per request and uncompressed bytes per request, at most; and
 * bytes per record, at most (Mixpanel's "1 MB" per event or update,
 * read as 1 MiB). */
#define MP_MAX_BATCH	     2000
#define MP_DEFAULT_MAX_BYTES (2u * 1024u * 1024u)
#define MP_MAX_RECORD_BYTES  (1024u * 1024u)

/*
 * One Mixpanel project. Strings are copied by mp_client_add_destination().
 * api_base: NULL for the region's host; "https://host[:port]" or
 * "http://127.0.0.1:port" (a proxy, or the tests' fake); "stdout:" or
 * "file:PATH" to write each request as one JSON line
 * {"endpoint":"/engage","query":"verbose=1&ip=0","body":[...]} instead of
 * sending it (every record then counts as delivered).
 * secret: the API secret, or "user:secret" of a service account (then
 * project_id is required); NULL lets /import authenticate with the token.
 */
typedef struct mp_destination {
	const char *name;
	const char *region; /* "us" (default), "eu", "in" */
	const char *api_base;
	const char *project_token;
	const char *secret;
	const char *project_id;
	int geolocate;	  /* 0: ip=0 on /engage and /groups */
	double max_rate;  /* records per second; 0: no limit */
	int concurrency;  /* connections at once; 0: 8 */
	int batch_size;	  /* records per request; 0: 2000 */
	size_t max_bytes; /* 0: MP_DEFAULT_MAX_BYTES */
} mp_destination;

/* Client-wide options; a zero field takes the default in brackets. */
typedef struct mp_options {
	long connect_timeout_ms; /* [10000] */
	long timeout_ms;	 /* [30000] total per request */
	int max_attempts;	 /* [6] sends of one batch per flush */
	long backoff_base_ms;	 /* [2000] first wait, doubled each retry */
	long backoff_cap_ms;	 /* [60000] longest wait, Retry-After too */
	long jitter_ms;		 /* [1000..5000 as Mixpanel advises]: max */
	int verbose;		 /* libcurl verbose, Authorization redacted */
} mp_options;

/* Called once per submitted record when its outcome is known. message is
 * Mixpanel's reason for MP_OUT_REJECTED or the last error for
 * MP_OUT_NOT_DELIVERED (borrowed, valid during the call), else NULL. */
typedef void (*mp_result_fn)(void *ud, uint64_t tag, mp_outcome outcome,
			     const char *message);

/* Counters since open, for logs and metrics. */
typedef struct mp_stats {
	uint64_t requests;
	uint64_t retries;
	uint64_t records_delivered;
	uint64_t records_rejected;
	uint64_t records_not_delivered;
	uint64_t bytes_sent; /* on the wire (after gzip) */
} mp_stats;

/* Returns a client, or NULL (with a one-line reason in err) on failure.
 * opts may be NULL. The caller closes it with mp_client_close(). */
mp_client *mp_client_open(const mp_options *opts, char *err, size_t errlen);
void mp_client_close(mp_client *c); /* accepts NULL */

/* Registers a destination; *out is its handle for submit. Returns 0, or
 * -1 with mp_client_error() set (unknown region, missing token,
 * service account without project_id, unwritable file:). */
int mp_client_add_destination(mp_client *c, int *out, const mp_destination *d)
	__attribute__((warn_unused_result));

/*
 * Queues one record (a complete JSON object: an /engage or /groups update,
 * or an /import event) for destination dest. The client copies it. Records
 * with the same lane go out in submission order, one request at a time;
 * different lanes go in parallel. tag is handed back to the result
 * callback. Returns 0, or -1 if the record alone is larger than the
 * request byte cap (nothing queued; the caller rejects it).
 */
int mp_client_submit(mp_client *c, int dest, mp_endpoint ep, uint32_t lane,
		     const char *record, size_t len, uint64_t tag)
	__attribute__((warn_unused_result));

/* Called after each answer (of Mixpanel, or a sink) once the outcomes it
 * decided were reported through the result callback: those outcomes are
 * final, and the caller may make them durable before the next request
 * goes out, so that a crash re-sends no more than was in flight. */
typedef void (*mp_answered_fn)(void *ud);

/*
 * Sends everything queued and waits until every queued record has an
 * outcome, reported through fn (which may be NULL); answered (which may
 * be NULL) is called after each answer. Retries 429, 5xx,
 * timeouts and broken connections with backoff; splits on 413; stops a
 * destination on 401/403 (its records: MP_OUT_NOT_DELIVERED). Returns 0
 * when every record was delivered or rejected, 1 when some were not
 * delivered, -1 on an internal error (mp_client_error()). The queue is
 * empty afterwards either way.
 */
int mp_client_flush(mp_client *c, mp_result_fn fn, mp_answered_fn answered,
		    void *ud) __attribute__((warn_unused_result));

/* Records queued and not yet flushed. */
size_t mp_client_queued(const mp_client *c);

/* The last error, one line, never holding a secret. Borrowed. */
const char *mp_client_error(const mp_client *c);

void mp_client_get_stats(const mp_client *c, mp_stats *out);

/* 1 when destination dest refused its credentials (401/403) during the
 * last flush, so that its records stayed queued; else 0. */
int mp_client_stopped(const mp_client *c, int dest);

/* Sets a request flag when the process should stop: flush stops waiting
 * for backoff and reports what is left as MP_OUT_NOT_DELIVERED. */
void mp_client_set_stop_flag(mp_client *c, volatile int *flag);

#endif
