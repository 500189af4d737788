/* mp_client.c - the one Mixpanel client every sync sends through */
#include "audsync/mp_client.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/log.h"
#include "audsync/mp_answer.h"
#include "audsync/mp_body.h"
#include "audsync/mp_policy.h"
#include "audsync/mp_redact.h"
#include "audsync/notify.h"
#include "audsync/progress.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifndef AUDSYNC_VERSION
#define AUDSYNC_VERSION "0.0.0"
#endif

/*
 * Layout. Each destination has, per endpoint, `concurrency` slots; a
 * record's lane picks its slot. A slot is a FIFO of records kept in one
 * buffer (the texts joined by ',', so that any run of consecutive records
 * is already the inside of a JSON array) and one array of offsets: no
 * allocation per record, and a batch body is one copy (or one deflate) of
 * a contiguous slice. A slot has at most one request in flight, so the
 * records of a lane leave in order; a batch waiting for its retry blocks
 * its slot and nothing else. All slots share one curl multi handle.
 */

#define SPLIT_DEPTH	32	      /* 413 halvings: log2(2000) < 12 */
#define STOP_GRACE_MS	1000	      /* in flight after a stop (exit in 2 s) */
#define POLL_MAX_MS	250	      /* how late a stop flag is noticed */
#define RESP_CAP	(1024 * 1024) /* answer bytes kept for parsing */
#define SHRINK_BYTES	(16u << 20)   /* slot buffers freed above this */
#define MAX_CONCURRENCY 64
#define MAX_BYTES_CAP	(1u << 30) /* zlib counts in 32 bits */
#define ERR_LEN		512
/* Records refused in a row, none accepted, that stop a destination: a
 * fault of the whole destination, as a wrong project token, which makes
 * /engage refuse every update as if each were bad. Halving every batch
 * down to single records would cost two requests and a dead letter per
 * record queued. */
#define REJECT_STREAK 64

typedef enum sink_kind { SINK_HTTP = 0, SINK_STDOUT, SINK_FILE } sink_kind;

typedef struct dest dest;

typedef struct slot {
	dest *d;
	mp_endpoint ep;
	buf data; /* records joined by ',' */
	mp_body_rec *recs;
	size_t nrecs;
	size_t caprecs;
	size_t head;		  /* first record without an outcome */
	size_t ends[SPLIT_DEPTH]; /* ends of pending halves, innermost last */
	int nends;
	size_t cur_end; /* the batch in flight is [head, cur_end) */
	int busy;
	int attempt; /* failed sends of the current batch */
	int64_t not_before;
	long retry_after_ms;
	CURL *easy;
	buf body;
	buf resp;
	char curl_err[CURL_ERROR_SIZE];
} slot;

struct dest {
	char *name;
	char *username; /* /import Basic auth */
	char *password;
	char *secret;		/* redacted everywhere, or NULL */
	char *basic_b64;	/* its Authorization form, redacted too */
	const char *secrets[3]; /* the two above, NULL-terminated */
	char *url[MP_EP_COUNT];
	const char *query[MP_EP_COUNT];
	char *query_import;
	char *path; /* file: sink */
	sink_kind sink;
	FILE *out;
	int conc;
	size_t batch;
	size_t max_bytes;
	mp_bucket bucket; /* max_rate, records per second */
	slot *slots[MP_EP_COUNT];
	int inflight;
	int stopped; /* refused credentials during this flush */
	char stop_msg[ERR_LEN];
	long rejected_streak; /* records refused since one was accepted */
	buf token;	      /* the project token as a JSON string */
	struct curl_slist *hdr_plain;
	struct curl_slist *hdr_gzip;
};

struct mp_client {
	mp_options opt;
	CURLM *multi;
	dest **dests;
	int ndests;
	z_stream z;
	int z_ready;
	volatile int *stop;
	int stopping;
	int64_t stop_at;
	int flushing;
	size_t flush_not_delivered;
	mp_result_fn fn;
	void *ud;
	mp_stats stats;
	size_t queued;
	uint64_t rng;
	char err[ERR_LEN];
};

#define EP_PATH(ep) mp_endpoint_path(ep)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *xstrdup(const char *s)
{
	return alloc_strdup(s ? s : "");
}

static void *xcalloc(size_t n, size_t size)
{
	return alloc_calloc(n, size);
}

/* ------------------------------------------------------------------ */
/* Errors and outcomes                                                */
/* ------------------------------------------------------------------ */

static void set_error(mp_client *c, const dest *d, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Every error passes here, so a secret that slipped into a libcurl or
 * Mixpanel text is removed before anyone can read it. */
static void set_error(mp_client *c, const dest *d, const char *fmt, ...)
{
	char raw[ERR_LEN];
	va_list ap;
	buf b;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	buf_init(&b);
	mp_redact(&b, raw, strlen(raw), d ? d->secrets : NULL);
	snprintf(c->err, sizeof(c->err), "%s", b.data ? b.data : "");
	buf_free(&b);
}

static void report(mp_client *c, uint64_t tag, mp_outcome o, const char *msg)
{
	if (o == MP_OUT_DELIVERED)
		c->stats.records_delivered++;
	else if (o == MP_OUT_REJECTED)
		c->stats.records_rejected++;
	else {
		c->stats.records_not_delivered++;
		c->flush_not_delivered++;
	}
	if (c->fn)
		c->fn(c->ud, tag, o, o == MP_OUT_DELIVERED ? NULL : msg);
}

/* Reports records [from, to) of s with one outcome; they leave the queue. */
static void report_range(mp_client *c, slot *s, size_t from, size_t to,
			 mp_outcome o, const char *msg)
{
	size_t i;

	for (i = from; i < to; i++)
		report(c, s->recs[i].tag, o, msg);
	c->queued -= to - from;
}

/* Forgets the records of an empty queue, keeping memory for the next
 * flush unless a burst left it large. */
static void slot_clear(slot *s)
{
	s->data.len = 0;
	s->nrecs = 0;
	s->head = 0;
	s->nends = 0;
	s->cur_end = 0;
	s->attempt = 0;
	if (s->data.cap > SHRINK_BYTES)
		buf_free(&s->data);
	if (s->caprecs * sizeof(mp_body_rec) > SHRINK_BYTES) {
		free(s->recs);
		s->recs = NULL;
		s->caprecs = 0;
	}
	if (s->body.cap > SHRINK_BYTES)
		buf_free(&s->body);
}

/* The batch [head, end) is done: move on to the next one. */
static void slot_advance(slot *s, size_t end)
{
	s->head = end;
	s->cur_end = 0;
	s->attempt = 0;
	while (s->nends > 0 && s->ends[s->nends - 1] <= s->head)
		s->nends--;
	if (s->head == s->nrecs)
		slot_clear(s);
}

/* Every record left in s (lane order must hold): NOT_DELIVERED. */
static void slot_fail_rest(mp_client *c, slot *s, const char *msg)
{
	report_range(c, s, s->head, s->nrecs, MP_OUT_NOT_DELIVERED, msg);
	slot_clear(s);
}

/* ------------------------------------------------------------------ */
/* Applying answers                                                   */
/* ------------------------------------------------------------------ */

static void apply_partial(mp_client *c, slot *s, const mp_answer *a)
{
	size_t end = s->cur_end, n = end - s->head, i;
	const char **why = xcalloc(n, sizeof(*why));

	/* mp_answer_classify() keeps only indexes of the batch */
	for (i = 0; i < a->nfailures; i++)
		why[a->failures[i].index] = a->failures[i].message;
	for (i = 0; i < n; i++)
		report(c, s->recs[s->head + i].tag,
		       why[i] ? MP_OUT_REJECTED : MP_OUT_DELIVERED, why[i]);
	c->queued -= n;
	free(why);
	slot_advance(s, end);
}

static void apply_split(mp_client *c, slot *s, const mp_answer *a)
{
	size_t end = s->cur_end, mid = s->head + (end - s->head) / 2;

	if (end - s->head < 2 || s->nends + 2 > SPLIT_DEPTH) {
		report_range(c, s, s->head, end, MP_OUT_REJECTED, a->error);
		slot_advance(s, end);
		return;
	}
	if (s->nends == 0 || s->ends[s->nends - 1] != end)
		s->ends[s->nends++] = end;
	s->ends[s->nends++] = mid;
	s->cur_end = 0;
	s->attempt = 0;
}

static void apply_retry(mp_client *c, slot *s, const mp_answer *a, int64_t now)
{
	dest *d = s->d;
	long wait;

	s->cur_end = 0;
	s->attempt++;
	if (s->attempt >= c->opt.max_attempts) {
		set_error(c, d, "destination %s: %s failed %d times, last: %s",
			  d->name, EP_PATH(s->ep), s->attempt, a->error);
		log_warn("mixpanel request given up", "destination", d->name,
			 "endpoint", EP_PATH(s->ep), "error", c->err);
		slot_fail_rest(c, s, c->err);
		return;
	}
	wait = mp_policy_backoff_ms(&c->opt, s->attempt, s->retry_after_ms,
				    &c->rng);
	s->not_before = now + wait;
	set_error(c, d, "destination %s: %s: %s", d->name, EP_PATH(s->ep),
		  a->error);
	if (log_min_level <= LOG_LEVEL_INFO) {
		char att[16], ms[24];

		snprintf(att, sizeof(att), "%d", s->attempt);
		snprintf(ms, sizeof(ms), "%ld", wait);
		log_info("mixpanel request will be retried", "destination",
			 d->name, "endpoint", EP_PATH(s->ep), "attempt", att,
			 "wait_ms", ms, "error", c->err);
	}
}

/* When another request of d stopped it first, what s holds goes as that
 * stop says: 1. */
static int already_stopped(mp_client *c, slot *s)
{
	if (!s->d->stopped)
		return 0;
	s->cur_end = 0;
	slot_fail_rest(c, s, s->d->stop_msg);
	return 1;
}

/* Stops d for the rest of the flush: what s and d's other slots hold
 * stays undelivered, queued for the next time. c->err says why. */
static void halt_destination(mp_client *c, slot *s)
{
	dest *d = s->d;

	s->cur_end = 0;
	snprintf(d->stop_msg, sizeof(d->stop_msg), "%s", c->err);
	d->stopped = 1;
	log_error("mixpanel destination stopped", "destination", d->name,
		  "error", c->err);
	slot_fail_rest(c, s, d->stop_msg);
}

static void stop_destination(mp_client *c, slot *s, const mp_answer *a)
{
	dest *d = s->d;

	if (already_stopped(c, s))
		return;
	if (a->status == 401 || a->status == 403)
		set_error(c, d,
			  "destination %s: Mixpanel refused the "
			  "credentials (HTTP %ld): check the API secret / "
			  "service account",
			  d->name, a->status);
	else
		set_error(c, d,
			  "destination %s: unexpected answer from %s "
			  "(%s): check api_base",
			  d->name, EP_PATH(s->ep), a->error);
	halt_destination(c, s);
}

/* After REJECT_STREAK refusals in a row, a refused batch stops d instead
 * of being halved or dead-lettered: 1 when it did. */
static int stop_on_streak(mp_client *c, slot *s, const mp_answer *a)
{
	dest *d = s->d;

	if (d->rejected_streak < REJECT_STREAK)
		return 0;
	if (already_stopped(c, s))
		return 1;
	set_error(c, d,
		  "destination %s: Mixpanel refused the last %ld records "
		  "sent to %s and accepted none (%s): check the project "
		  "token; the rest stays queued",
		  d->name, d->rejected_streak, EP_PATH(s->ep), a->error);
	halt_destination(c, s);
	return 1;
}

static void apply_answer(mp_client *c, slot *s, const mp_answer *a, int64_t now)
{
	dest *d = s->d;

	switch (a->action) {
	case MP_ACT_DELIVERED:
		d->rejected_streak = 0;
		report_range(c, s, s->head, s->cur_end, MP_OUT_DELIVERED, NULL);
		slot_advance(s, s->cur_end);
		break;
	case MP_ACT_PARTIAL:
		if (a->nfailures < s->cur_end - s->head)
			d->rejected_streak = 0;
		apply_partial(c, s, a);
		break;
	case MP_ACT_REJECTED:
		if (stop_on_streak(c, s, a))
			break;
		d->rejected_streak += (long)(s->cur_end - s->head);
		report_range(c, s, s->head, s->cur_end, MP_OUT_REJECTED,
			     a->error);
		slot_advance(s, s->cur_end);
		break;
	case MP_ACT_SPLIT:
		if (!stop_on_streak(c, s, a))
			apply_split(c, s, a);
		break;
	case MP_ACT_RETRY: apply_retry(c, s, a, now); break;
	case MP_ACT_STOP_DEST: stop_destination(c, s, a); break;
	}
}

/* ------------------------------------------------------------------ */
/* libcurl plumbing                                                   */
/* ------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	slot *s = ud;
	size_t n = size * nmemb, room = RESP_CAP - s->resp.len;

	/* past the cap the answer is read and dropped, not failed */
	if (room > 0)
		buf_append(&s->resp, ptr, n < room ? n : room);
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	slot *s = ud;
	size_t n = size * nmemb;

	if (n > 5 && strncmp(ptr, "HTTP/", 5) == 0)
		s->retry_after_ms = -1; /* a new answer (after a 100) */
	if (n > 12 && strncasecmp(ptr, "retry-after:", 12) == 0)
		s->retry_after_ms =
			mp_policy_retry_after(ptr + 12, n - 12, time(NULL));
	return n;
}

static int on_debug(CURL *e, curl_infotype type, char *data, size_t size,
		    void *ud)
{
	const dest *d = ud;
	const char *mark;
	buf b;

	(void)e;
	if (type == CURLINFO_TEXT)
		mark = "* ";
	else if (type == CURLINFO_HEADER_IN)
		mark = "< ";
	else if (type == CURLINFO_HEADER_OUT)
		mark = "> ";
	else
		return 0; /* bodies: records, never credentials; too long */
	buf_init(&b);
	buf_puts(&b, mark);
	mp_redact(&b, data, size, d->secrets);
	if (b.len > 0 && b.data[b.len - 1] != '\n')
		buf_putc(&b, '\n');
	fwrite(b.data, 1, b.len, stderr);
	buf_free(&b);
	return 0;
}

/* The options that never change for a slot's easy handle. */
static int easy_setup(mp_client *c, slot *s)
{
	const dest *d = s->d;
	CURL *e = curl_easy_init();
	int rc = 0;

	if (!e)
		return -1;
	rc |= curl_easy_setopt(e, CURLOPT_URL, d->url[s->ep]);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)s);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       c->opt.connect_timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opt.timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_USERAGENT,
			       "audsync/" AUDSYNC_VERSION);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER,
			       s->ep == MP_EP_IMPORT ? d->hdr_gzip
						     : d->hdr_plain);
	rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)s);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)s);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->curl_err);
	if (s->ep == MP_EP_IMPORT) {
		rc |= curl_easy_setopt(e, CURLOPT_HTTPAUTH,
				       (long)CURLAUTH_BASIC);
		rc |= curl_easy_setopt(e, CURLOPT_USERNAME, d->username);
		rc |= curl_easy_setopt(e, CURLOPT_PASSWORD, d->password);
	}
	if (c->opt.verbose) {
		rc |= curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
		rc |= curl_easy_setopt(e, CURLOPT_DEBUGDATA, (void *)d);
		rc |= curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	}
	if (rc != 0) {
		curl_easy_cleanup(e);
		return -1;
	}
	s->easy = e;
	return 0;
}

/* Hands the body of s to libcurl. */
static int http_start(mp_client *c, slot *s)
{
	int rc = 0;

	if (!s->easy && easy_setup(c, s) < 0) {
		set_error(c, s->d, "destination %s: cannot set up libcurl",
			  s->d->name);
		return -1;
	}
	s->resp.len = 0;
	s->curl_err[0] = '\0';
	s->retry_after_ms = -1;
	rc |= curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			       (curl_off_t)s->body.len);
	rc |= curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body.data);
	if (rc != 0 || curl_multi_add_handle(c->multi, s->easy) != CURLM_OK) {
		set_error(c, s->d, "destination %s: cannot start a request",
			  s->d->name);
		return -1;
	}
	s->busy = 1;
	s->d->inflight++;
	return 0;
}

/* The stdout: and file: sinks: one JSON line per request. */
static void sink_write(mp_client *c, slot *s)
{
	dest *d = s->d;

	if (fwrite(s->body.data, 1, s->body.len, d->out) != s->body.len ||
	    fflush(d->out) != 0) {
		set_error(c, d, "destination %s: cannot write %s: %s", d->name,
			  d->sink == SINK_FILE ? d->path : "stdout",
			  strerror(errno));
		s->cur_end = 0;
		slot_fail_rest(c, s, c->err);
		return;
	}
	c->stats.bytes_sent += s->body.len;
	report_range(c, s, s->head, s->cur_end, MP_OUT_DELIVERED, NULL);
	slot_advance(s, s->cur_end);
}

static int build_body(mp_client *c, slot *s, size_t end)
{
	const mp_body_rec *first = &s->recs[s->head], *last = &s->recs[end - 1];
	const char *text = s->data.data + first->off;
	size_t len = last->off + last->len - first->off;
	dest *d = s->d;

	s->body.len = 0;
	if (d->sink != SINK_HTTP) {
		mp_body_line(&s->body, EP_PATH(s->ep), d->query[s->ep], text,
			     len);
		return 0;
	}
	if (s->ep == MP_EP_IMPORT && !c->z_ready) {
		if (mp_body_gzip_init(&c->z) < 0)
			return -1;
		c->z_ready = 1;
	}
	return mp_body_build(&s->body, text, len,
			     s->ep == MP_EP_IMPORT ? &c->z : NULL);
}

/* Where the next batch of s ends: a pending half, or a fresh plan. */
static size_t slot_next_end(const slot *s)
{
	if (s->nends > 0)
		return s->ends[s->nends - 1];
	return s->head + mp_body_plan(s->recs + s->head, s->nrecs - s->head,
				      s->d->batch, s->d->max_bytes);
}

/* Sends [head, end) of s. Returns 0, or -1 on an internal error. */
static int slot_send(mp_client *c, slot *s, size_t end)
{
	s->cur_end = end;
	if (build_body(c, s, end) < 0) {
		set_error(c, s->d, "destination %s: cannot compress a request",
			  s->d->name);
		return -1;
	}
	c->stats.requests++;
	if (s->attempt > 0)
		c->stats.retries++;
	if (s->d->sink != SINK_HTTP) {
		sink_write(c, s);
		return 0;
	}
	c->stats.bytes_sent += s->body.len;
	return http_start(c, s);
}

/*
 * Moves s forward at time now: sends its next batch when it may, or
 * reports what it holds when its destination or the flush stopped.
 * Lowers *wake to when it wants to run again. Returns 1 while s has work,
 * 0 when it is done, -1 on an internal error.
 */
static int slot_step(mp_client *c, slot *s, int64_t now, int64_t *wake)
{
	dest *d = s->d;
	size_t end;
	int64_t t;
	int more;

	if (s->busy)
		return 1;
	if (s->head == s->nrecs)
		return 0;
	if (d->stopped || c->stopping) {
		slot_fail_rest(c, s,
			       d->stopped ? d->stop_msg
					  : "stopped before delivery");
		return 0;
	}
	if (s->not_before > now) {
		if (s->not_before < *wake)
			*wake = s->not_before;
		return 1;
	}
	if (d->inflight >= d->conc)
		return 1;
	end = slot_next_end(s);
	t = mp_policy_bucket_take(&d->bucket, end - s->head, now);
	if (t > now) {
		if (t < *wake)
			*wake = t;
		return 1;
	}
	if (slot_send(c, s, end) < 0)
		return -1;
	/* A stdout:/file: request completes at once: go on without the
	 * poll's wait when more is queued. */
	more = s->head < s->nrecs;
	if (!s->busy && more && *wake > now)
		*wake = now;
	return s->busy || more;
}

/* ------------------------------------------------------------------ */
/* The flush loop                                                     */
/* ------------------------------------------------------------------ */

static void log_answer(const slot *s, long status, const mp_answer *a)
{
	static const char *const names[] = { "delivered", "partial", "rejected",
					     "split",	  "retry",   "stop" };
	char st[24], n[24];

	snprintf(st, sizeof(st), "%ld", status);
	snprintf(n, sizeof(n), "%zu", s->cur_end - s->head);
	log_debug("mixpanel answer", "destination", s->d->name, "endpoint",
		  EP_PATH(s->ep), "status", st, "records", n, "action",
		  names[a->action], "error", a->error);
}

/* A server may quote the request's credentials back: they go before
 * anything reads the answer (the debug log, dead letters, errors). */
static void redact_answer(mp_answer *a, const dest *d)
{
	size_t i;
	buf b;

	mp_redact_in_place(a->error, sizeof(a->error), d->secrets);
	for (i = 0; i < a->nfailures; i++) {
		buf_init(&b);
		mp_redact(&b, a->failures[i].message,
			  strlen(a->failures[i].message), d->secrets);
		free(a->failures[i].message);
		a->failures[i].message = buf_steal(&b);
	}
}

static void finish_transfer(mp_client *c, CURLMsg *m, int64_t now)
{
	slot *s = NULL;
	long status = 0;
	const char *transport = NULL;
	char *priv = NULL;
	mp_answer a;

	curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
	s = (slot *)priv;
	curl_multi_remove_handle(c->multi, m->easy_handle);
	s->busy = 0;
	s->d->inflight--;
	if (m->data.result != CURLE_OK)
		transport = s->curl_err[0] ? s->curl_err
					   : curl_easy_strerror(m->data.result);
	else
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	mp_answer_classify(&a, s->ep, transport, status, s->resp.data,
			   s->resp.len, s->cur_end - s->head);
	redact_answer(&a, s->d);
	if (log_min_level <= LOG_LEVEL_DEBUG)
		log_answer(s, status, &a);
	apply_answer(c, s, &a, now);
	mp_answer_free(&a);
}

/* Reads finished transfers; returns how many. */
static int drain_done(mp_client *c)
{
	CURLMsg *m;
	int left = 0, n = 0;
	int64_t now = now_ms();

	for (;;) {
		m = curl_multi_info_read(c->multi, &left);
		if (!m)
			break;
		if (m->msg != CURLMSG_DONE)
			continue;
		finish_transfer(c, m, now);
		n++;
	}
	return n;
}

/* Reports every record of every slot as NOT_DELIVERED with msg; with
 * busy_only, only those of requests in flight, which are abandoned. */
static void fail_all(mp_client *c, int busy_only, const char *msg)
{
	int i, ep, k;

	for (i = 0; i < c->ndests; i++) {
		dest *d = c->dests[i];

		for (ep = 0; ep < MP_EP_COUNT; ep++) {
			for (k = 0; k < d->conc; k++) {
				slot *s = &d->slots[ep][k];

				if (busy_only && !s->busy)
					continue;
				if (s->busy) {
					curl_multi_remove_handle(c->multi,
								 s->easy);
					s->busy = 0;
					d->inflight--;
				}
				slot_fail_rest(c, s, msg);
			}
		}
	}
}

static void check_stop(mp_client *c, int64_t now, int64_t *wake)
{
	if (!c->stopping && c->stop && *c->stop) {
		c->stopping = 1;
		c->stop_at = now;
	}
	if (!c->stopping)
		return;
	if (now - c->stop_at >= STOP_GRACE_MS)
		fail_all(c, 1, "stopped before Mixpanel answered");
	else if (c->stop_at + STOP_GRACE_MS < *wake)
		*wake = c->stop_at + STOP_GRACE_MS;
}

/* One pass over every slot; returns 1 while work is left, -1 on error. */
static int step_all(mp_client *c, int64_t now, int64_t *wake)
{
	int i, ep, k, r, pending = 0;

	for (i = 0; i < c->ndests; i++) {
		dest *d = c->dests[i];

		for (ep = 0; ep < MP_EP_COUNT; ep++) {
			for (k = 0; k < d->conc; k++) {
				r = slot_step(c, &d->slots[ep][k], now, wake);
				if (r < 0)
					return -1;
				pending |= r;
			}
		}
	}
	return pending;
}

static int run_loop(mp_client *c)
{
	int running = 0, pending;
	int64_t now, wake;

	for (;;) {
		notify_watchdog(); /* a long flush is progress too */
		progress_tick();
		now = now_ms();
		wake = now + POLL_MAX_MS;
		check_stop(c, now, &wake);
		pending = step_all(c, now, &wake);
		if (pending <= 0)
			return pending;
		if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
			set_error(c, NULL, "libcurl multi interface failed");
			return -1;
		}
		if (drain_done(c) > 0)
			continue;
		now = now_ms();
		if (curl_multi_poll(c->multi, NULL, 0,
				    wake > now ? (int)(wake - now) : 0,
				    NULL) != CURLM_OK) {
			set_error(c, NULL, "libcurl poll failed");
			return -1;
		}
	}
}

int mp_client_flush(mp_client *c, mp_result_fn fn, void *ud)
{
	int i, rc;

	if (c->flushing) {
		set_error(c, NULL,
			  "mp_client_flush: called from its own "
			  "result callback");
		return -1;
	}
	c->fn = fn;
	c->ud = ud;
	c->flushing = 1;
	c->stopping = 0;
	c->flush_not_delivered = 0;
	for (i = 0; i < c->ndests; i++) {
		c->dests[i]->stopped = 0;
		c->dests[i]->inflight = 0;
	}
	rc = run_loop(c);
	if (rc < 0) /* nothing may stay without an outcome */
		fail_all(c, 0, c->err);
	c->flushing = 0;
	c->fn = NULL;
	c->ud = NULL;
	if (rc < 0)
		return -1;
	return c->flush_not_delivered > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Open, destinations, submit                                         */
/* ------------------------------------------------------------------ */

static void fill_defaults(mp_options *o)
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

mp_client *mp_client_open(const mp_options *opts, char *err, size_t errlen)
{
	mp_client *c = NULL;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl cannot be initialised");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	if (opts)
		c->opt = *opts;
	fill_defaults(&c->opt);
	c->multi = curl_multi_init();
	if (!c->multi) {
		snprintf(err, errlen, "libcurl multi handle cannot be created");
		free(c);
		curl_global_cleanup();
		return NULL;
	}
	c->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^
		 (uint64_t)now_ms() ^ 0x9e3779b97f4a7c15ULL;
	if (c->rng == 0) /* xorshift would stay at 0 */
		c->rng = 1;
	return c;
}

static void slot_free(mp_client *c, slot *s)
{
	if (s->easy) {
		if (s->busy)
			curl_multi_remove_handle(c->multi, s->easy);
		curl_easy_cleanup(s->easy);
	}
	buf_free(&s->data);
	buf_free(&s->body);
	buf_free(&s->resp);
	free(s->recs);
}

static void dest_free(mp_client *c, dest *d)
{
	int ep, k;

	if (!d)
		return;
	for (ep = 0; ep < MP_EP_COUNT; ep++) {
		for (k = 0; d->slots[ep] && k < d->conc; k++)
			slot_free(c, &d->slots[ep][k]);
		free(d->slots[ep]);
		free(d->url[ep]);
	}
	if (d->out && d->sink == SINK_FILE)
		fclose(d->out);
	curl_slist_free_all(d->hdr_plain);
	curl_slist_free_all(d->hdr_gzip);
	free(d->name);
	free(d->username);
	free(d->password);
	free(d->secret);
	free(d->basic_b64);
	free(d->query_import);
	free(d->path);
	buf_free(&d->token);
	free(d);
}

void mp_client_close(mp_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->ndests; i++)
		dest_free(c, c->dests[i]);
	free(c->dests);
	curl_multi_cleanup(c->multi);
	if (c->z_ready)
		deflateEnd(&c->z);
	free(c);
	curl_global_cleanup();
}

static const char *region_host(const char *region)
{
	if (!region || !*region || strcmp(region, "us") == 0)
		return "https://api.mixpanel.com";
	if (strcmp(region, "eu") == 0)
		return "https://api-eu.mixpanel.com";
	if (strcmp(region, "in") == 0)
		return "https://api-in.mixpanel.com";
	return NULL;
}

/* Picks the credentials of /import; -1 with c->err set when unusable. */
static int dest_auth(mp_client *c, dest *d, const mp_destination *in)
{
	const char *colon = in->secret ? strchr(in->secret, ':') : NULL;
	char *esc;
	buf q;

	buf_init(&q);
	buf_puts(&q, "strict=1");
	if (colon) {
		if (!in->project_id || !*in->project_id) {
			set_error(c, d,
				  "destination %s: a service account "
				  "needs project_id",
				  d->name);
			buf_free(&q);
			return -1;
		}
		d->username =
			alloc_strndup(in->secret, (size_t)(colon - in->secret));
		d->password = xstrdup(colon + 1);
		d->secret = xstrdup(colon + 1);
		esc = curl_easy_escape(NULL, in->project_id, 0);
		buf_puts(&q, "&project_id=");
		buf_puts(&q, esc ? esc : "");
		curl_free(esc);
	} else if (in->secret && *in->secret) {
		d->username = xstrdup(in->secret);
		d->password = xstrdup("");
		d->secret = xstrdup(in->secret);
	} else {
		d->username = xstrdup(in->project_token);
		d->password = xstrdup("");
	}
	d->query_import = buf_steal(&q);
	if (d->secret) {
		d->basic_b64 = mp_redact_basic_form(d->username, d->password);
		d->secrets[0] = d->secret;
		d->secrets[1] = d->basic_b64;
	}
	return 0;
}

/* Opens the stdout: or file:PATH sink named by base: 1 when it does, 0
 * when base names none, -1 with c->err set. */
static int dest_sink(mp_client *c, dest *d, const char *base)
{
	int fd;

	if (!base)
		return 0;
	if (strcmp(base, "stdout:") == 0) {
		d->sink = SINK_STDOUT;
		d->out = stdout;
		return 1;
	}
	if (strncmp(base, "file:", 5) != 0)
		return 0;
	d->sink = SINK_FILE;
	d->path = xstrdup(base + 5);
	/* Never through a symbolic link planted at the path: it would send
	 * the records into whatever file it points at. */
	fd = open(d->path,
		  O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	d->out = fd >= 0 ? fdopen(fd, "a") : NULL;
	if (!d->out) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		set_error(c, d, "destination %s: cannot open %s: %s", d->name,
			  d->path,
			  e == ELOOP ? "it is a symbolic link, which a file: "
				       "sink never follows"
				     : strerror(e));
		return -1;
	}
	return 1;
}

/* The URL of each endpoint under base. */
static void dest_urls(dest *d, const char *base)
{
	size_t blen = strlen(base);
	buf u;
	int ep;

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	for (ep = 0; ep < MP_EP_COUNT; ep++) {
		buf_init(&u);
		buf_append(&u, base, blen);
		buf_puts(&u, EP_PATH(ep));
		buf_putc(&u, '?');
		buf_puts(&u, d->query[ep]);
		d->url[ep] = buf_steal(&u);
	}
}

/* Sets the queries, then the sink or the URLs; -1 with c->err set. */
static int dest_target(mp_client *c, dest *d, const mp_destination *in)
{
	const char *base = region_host(in->region);
	int sink;

	d->query[MP_EP_ENGAGE] =
		in->geolocate ? "verbose=1&ip=1" : "verbose=1&ip=0";
	d->query[MP_EP_GROUPS] = d->query[MP_EP_ENGAGE];
	d->query[MP_EP_IMPORT] = d->query_import;
	if (!base) {
		set_error(c, d,
			  "destination %s: unknown region \"%s\" (use "
			  "us, eu or in)",
			  d->name, in->region);
		return -1;
	}
	sink = dest_sink(c, d, in->api_base);
	if (sink != 0)
		return sink < 0 ? -1 : 0;
	if (in->api_base && *in->api_base) {
		base = in->api_base;
		if (strncmp(base, "https://", 8) != 0 &&
		    strncmp(base, "http://", 7) != 0) {
			set_error(c, d,
				  "destination %s: api_base must start "
				  "with https://, http://, stdout: or file:",
				  d->name);
			return -1;
		}
	}
	dest_urls(d, base);
	return 0;
}

static void dest_limits(dest *d, const mp_destination *in)
{
	int ep, k;

	d->conc = in->concurrency > 0 ? in->concurrency : 8;
	if (d->conc > MAX_CONCURRENCY)
		d->conc = MAX_CONCURRENCY;
	d->batch = in->batch_size > 0 && in->batch_size < MP_MAX_BATCH
			   ? (size_t)in->batch_size
			   : MP_MAX_BATCH;
	d->max_bytes = in->max_bytes > 0 ? in->max_bytes : MP_DEFAULT_MAX_BYTES;
	if (d->max_bytes < 16)
		d->max_bytes = 16;
	if (d->max_bytes > MAX_BYTES_CAP)
		d->max_bytes = MAX_BYTES_CAP;
	mp_policy_bucket_init(&d->bucket, in->max_rate, (double)d->batch,
			      now_ms());
	for (ep = 0; ep < MP_EP_COUNT; ep++) {
		d->slots[ep] = xcalloc((size_t)d->conc, sizeof(slot));
		for (k = 0; k < d->conc; k++) {
			d->slots[ep][k].d = d;
			d->slots[ep][k].ep = (mp_endpoint)ep;
		}
	}
	d->hdr_plain =
		curl_slist_append(NULL, "Content-Type: application/json");
	d->hdr_plain = curl_slist_append(d->hdr_plain, "Expect:");
	d->hdr_gzip = curl_slist_append(NULL, "Content-Type: application/json");
	d->hdr_gzip = curl_slist_append(d->hdr_gzip, "Content-Encoding: gzip");
	d->hdr_gzip = curl_slist_append(d->hdr_gzip, "Expect:");
}

int mp_client_add_destination(mp_client *c, int *out, const mp_destination *in)
{
	dest *d;
	dest **grown;

	if (c->flushing) {
		set_error(c, NULL,
			  "mp_client_add_destination: called during "
			  "a flush");
		return -1;
	}
	d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(in->name && *in->name ? in->name : "mixpanel");
	if (!in->project_token || !*in->project_token) {
		set_error(c, d, "destination %s: project_token is missing",
			  d->name);
		goto fail;
	}
	buf_json_str(&d->token, in->project_token);
	if (dest_auth(c, d, in) < 0 || dest_target(c, d, in) < 0)
		goto fail;
	dest_limits(d, in);
	if (!d->hdr_plain || !d->hdr_gzip) {
		set_error(c, d, "destination %s: out of memory", d->name);
		goto fail;
	}
	grown = alloc_realloc(c->dests,
			      (size_t)(c->ndests + 1) * sizeof(*grown));
	c->dests = grown;
	c->dests[c->ndests] = d;
	*out = c->ndests++;
	return 0;
fail:
	dest_free(c, d);
	return -1;
}

/* Room for one more record in s (the buffer grows by doubling). */
static void slot_reserve(slot *s, size_t len)
{
	mp_body_rec *grown;
	size_t cap;

	if (s->nrecs == s->caprecs) {
		cap = s->caprecs ? s->caprecs * 2 : 256;
		grown = alloc_realloc(s->recs, cap * sizeof(*grown));
		s->recs = grown;
		s->caprecs = cap;
	}
	buf_reserve(&s->data, len + 1);
}

int mp_client_submit(mp_client *c, int dest_id, mp_endpoint ep, uint32_t lane,
		     const char *record, size_t len, uint64_t tag)
{
	size_t old, size;
	dest *d;
	slot *s;
	mp_body_rec *r;

	if (dest_id < 0 || dest_id >= c->ndests ||
	    (unsigned)ep >= MP_EP_COUNT || c->flushing || len == 0) {
		set_error(c, NULL,
			  "mp_client_submit: bad destination, "
			  "endpoint or record, or called during a flush");
		return -1;
	}
	d = c->dests[dest_id];
	size = mp_body_token_size(&old, ep, record, len, d->token.len);
	if (size + 2 > d->max_bytes) {
		set_error(c, d,
			  "destination %s: a record of %zu bytes is over "
			  "the request cap of %zu",
			  d->name, size, d->max_bytes);
		return -1;
	}
	s = &d->slots[ep][lane % (uint32_t)d->conc];
	slot_reserve(s, size);
	if (s->nrecs > 0)
		s->data.data[s->data.len++] = ',';
	r = &s->recs[s->nrecs++];
	r->off = s->data.len;
	r->len = size;
	r->tag = tag;
	mp_body_token_write(s->data.data + s->data.len, record, len, old,
			    d->token.data, d->token.len);
	s->data.len += size;
	s->data.data[s->data.len] = '\0';
	c->queued++;
	return 0;
}

size_t mp_client_queued(const mp_client *c)
{
	return c->queued;
}

const char *mp_client_error(const mp_client *c)
{
	return c->err;
}

void mp_client_get_stats(const mp_client *c, mp_stats *out)
{
	*out = c->stats;
}

void mp_client_set_stop_flag(mp_client *c, volatile int *flag)
{
	c->stop = flag;
}

int mp_client_stopped(const mp_client *c, int dest)
{
	return dest >= 0 && dest < c->ndests && c->dests[dest]->stopped;
}
