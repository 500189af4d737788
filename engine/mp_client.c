/* mp_client.c - the one Mixpanel client every sync sends through */
#include "audsync/mp_client.h"

#include "audsync/alloc.h"
#include "audsync/buf.h"
#include "audsync/errbuf.h"
#include "audsync/log.h"
#include "audsync/mp_answer.h"
#include "audsync/mp_body.h"
#include "audsync/mp_dest.h"
#include "audsync/mp_http.h"
#include "audsync/mp_policy.h"
#include "audsync/mp_redact.h"
#include "audsync/mp_sink.h"
#include "audsync/mp_transport.h"
#include "audsync/notify.h"
#include "audsync/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout. Each destination has, per endpoint, `concurrency` slots; a
 * record's lane picks its slot. A slot is a FIFO of records kept in one
 * buffer (the texts joined by ',', so that any run of consecutive records
 * is already the inside of a JSON array: mp_body.h) and one array of
 * offsets: no allocation per record. A slot has at most one request in
 * flight, so the records of a lane leave in order; a batch waiting for
 * its retry blocks its slot and nothing else. Requests go through the
 * destination's transport (mp_transport.h): HTTP, or a stdout:/file:
 * sink; all HTTP requests share one libcurl multi handle (mp_http.h).
 */

#define SPLIT_DEPTH   32	  /* 413 halvings: log2(2000) < 12 */
#define STOP_GRACE_MS 1000	  /* in flight after a stop (exit in 2 s) */
#define SHRINK_BYTES  (16u << 20) /* slot buffers freed above this */

typedef struct dest dest;

typedef struct slot {
	dest *d;
	mp_endpoint ep;
	mp_body_queue q;
	size_t head;		  /* first record without an outcome */
	size_t ends[SPLIT_DEPTH]; /* ends of pending halves, innermost last */
	int nends;
	size_t cur_end; /* the batch in flight is [head, cur_end) */
	int busy;
	int attempt; /* failed sends of the current batch */
	int64_t not_before;
	long retry_after_ms;
	mp_transport_channel *ch; /* the transport's, for this slot */
	buf body;
} slot;

struct dest {
	mp_dest_conf conf;
	mp_transport *tr;
	mp_bucket bucket; /* max_rate, records per second */
	slot *slots[MP_EP_COUNT];
	int inflight;
	int stopped; /* refused credentials during this flush */
	char stop_msg[AUDSYNC_ERR_LEN];
	long rejected_streak; /* records refused since one was accepted */
};

struct mp_client {
	mp_options opt;
	mp_http *http;
	dest **dests;
	int ndests;
	volatile int *stop;
	int stopping;
	int64_t stop_at;
	int flushing;
	size_t flush_not_delivered;
	mp_result_fn fn;
	mp_answered_fn answered;
	void *ud;
	mp_stats stats;
	size_t queued;
	uint64_t rng;
	char err[AUDSYNC_ERR_LEN];
};

#define EP_PATH(ep) mp_endpoint_path(ep)

/* ------------------------------------------------------------------ */
/* Errors and outcomes                                                */
/* ------------------------------------------------------------------ */

static void set_error(mp_client *c, const dest *d, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Every error passes here, so a secret that slipped into a libcurl or
 * Mixpanel text is removed before anyone can read it. */
static void set_error(mp_client *c, const dest *d, const char *fmt, ...)
{
	char raw[AUDSYNC_ERR_LEN];
	va_list ap;
	buf b;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	buf_init(&b);
	mp_redact(&b, raw, strlen(raw), d ? d->conf.secrets : NULL);
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
		report(c, s->q.recs[i].tag, o, msg);
	c->queued -= to - from;
}

/* Forgets the records of an empty queue, keeping memory for the next
 * flush unless a burst left it large. */
static void slot_clear(slot *s)
{
	mp_body_queue_clear(&s->q, SHRINK_BYTES);
	s->head = 0;
	s->nends = 0;
	s->cur_end = 0;
	s->attempt = 0;
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
	if (s->head == s->q.n)
		slot_clear(s);
}

/* Every record left in s (lane order must hold): NOT_DELIVERED. */
static void slot_fail_rest(mp_client *c, slot *s, const char *msg)
{
	report_range(c, s, s->head, s->q.n, MP_OUT_NOT_DELIVERED, msg);
	slot_clear(s);
}

/* ------------------------------------------------------------------ */
/* Applying answers                                                   */
/* ------------------------------------------------------------------ */

static void apply_partial(mp_client *c, slot *s, const mp_answer *a)
{
	size_t end = s->cur_end, n = end - s->head, i;
	const char **why = alloc_calloc(n, sizeof(*why));

	/* mp_answer_classify() keeps only indexes of the batch */
	for (i = 0; i < a->nfailures; i++)
		why[a->failures[i].index] = a->failures[i].message;
	for (i = 0; i < n; i++)
		report(c, s->q.recs[s->head + i].tag,
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
			  d->conf.name, EP_PATH(s->ep), s->attempt, a->error);
		log_warn("mixpanel request given up", "destination",
			 d->conf.name, "endpoint", EP_PATH(s->ep), "error",
			 c->err);
		slot_fail_rest(c, s, c->err);
		return;
	}
	wait = mp_policy_backoff_ms(&c->opt, s->attempt, s->retry_after_ms,
				    &c->rng);
	s->not_before = now + wait;
	set_error(c, d, "destination %s: %s: %s", d->conf.name, EP_PATH(s->ep),
		  a->error);
	log_info("mixpanel request will be retried", "destination",
		 d->conf.name, "endpoint", EP_PATH(s->ep),
		 LOG_INT("attempt", s->attempt), LOG_INT("wait_ms", wait),
		 "error", c->err);
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
	log_error("mixpanel destination stopped", "destination", d->conf.name,
		  "error", c->err);
	slot_fail_rest(c, s, d->stop_msg);
}

static void stop_destination(mp_client *c, slot *s, const mp_answer *a)
{
	char why[AUDSYNC_ERR_LEN];

	if (already_stopped(c, s))
		return;
	mp_answer_stop_reason(why, sizeof(why), a, s->d->conf.name, s->ep);
	set_error(c, s->d, "%s", why);
	halt_destination(c, s);
}

/* After MP_POLICY_REJECT_STREAK refusals in a row, a refused batch stops d instead
 * of being halved or dead-lettered: 1 when it did. */
static int stop_on_streak(mp_client *c, slot *s, const mp_answer *a)
{
	dest *d = s->d;

	if (d->rejected_streak < MP_POLICY_REJECT_STREAK)
		return 0;
	if (already_stopped(c, s))
		return 1;
	set_error(c, d,
		  "destination %s: Mixpanel refused the last %ld records "
		  "sent to %s and accepted none (%s): check the project "
		  "token; the rest stays queued",
		  d->conf.name, d->rejected_streak, EP_PATH(s->ep), a->error);
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
	case MP_ACT_UNSENT:
		set_error(c, d, "destination %s: %s", d->conf.name, a->error);
		s->cur_end = 0;
		slot_fail_rest(c, s, c->err);
		break;
	}
}

/* The transport's outcome of the request of slot req. */
static void on_done(void *ud, void *req, const mp_answer *a,
		    long retry_after_ms)
{
	mp_client *c = ud;
	slot *s = req;

	s->busy = 0;
	s->d->inflight--;
	s->retry_after_ms = retry_after_ms;
	apply_answer(c, s, a, mp_policy_now_ms());
	if (c->answered)
		c->answered(c->ud);
}

/* Where the next batch of s ends: a pending half, or a fresh plan. */
static size_t slot_next_end(const slot *s)
{
	if (s->nends > 0)
		return s->ends[s->nends - 1];
	return s->head + mp_body_plan(s->q.recs + s->head, s->q.n - s->head,
				      s->d->conf.batch, s->d->conf.max_bytes);
}

/* Sends [head, end) of s. Returns 0, or -1 on an internal error. */
static int slot_send(mp_client *c, slot *s, size_t end)
{
	mp_transport *tr = s->d->tr;
	char why[AUDSYNC_ERR_LEN];
	size_t len;
	const char *text = mp_body_queue_text(&s->q, s->head, end, &len);

	s->cur_end = end;
	s->body.len = 0;
	if (tr->ops->build(tr, &s->body, s->ep, text, len) < 0) {
		set_error(c, s->d, "destination %s: cannot compress a request",
			  s->d->conf.name);
		return -1;
	}
	c->stats.requests++;
	if (s->attempt > 0)
		c->stats.retries++;
	c->stats.bytes_sent += s->body.len;
	s->busy = 1;
	s->d->inflight++;
	/* a sink's outcome comes before send returns */
	if (tr->ops->send(tr, &s->ch, s->ep, &s->body, end - s->head, s, why,
			  sizeof(why)) < 0) {
		s->busy = 0;
		s->d->inflight--;
		set_error(c, s->d, "%s", why);
		return -1;
	}
	return 0;
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
	if (s->head == s->q.n)
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
	if (d->inflight >= d->conf.conc)
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
	/* A request answered at once (a sink): go on without the poll's
	 * wait when more is queued. */
	more = s->head < s->q.n;
	if (!s->busy && more && *wake > now)
		*wake = now;
	return s->busy || more;
}

/* ------------------------------------------------------------------ */
/* The flush loop                                                     */
/* ------------------------------------------------------------------ */

/* Reports every record of every slot as NOT_DELIVERED with msg; with
 * busy_only, only those of requests in flight, which are abandoned. */
static void fail_all(mp_client *c, int busy_only, const char *msg)
{
	int i, ep, k;

	for (i = 0; i < c->ndests; i++) {
		dest *d = c->dests[i];

		for (ep = 0; ep < MP_EP_COUNT; ep++) {
			for (k = 0; k < d->conf.conc; k++) {
				slot *s = &d->slots[ep][k];

				if (busy_only && !s->busy)
					continue;
				if (s->busy) {
					d->tr->ops->abandon(d->tr, s->ch);
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
			for (k = 0; k < d->conf.conc; k++) {
				r = slot_step(c, &d->slots[ep][k], now, wake);
				if (r < 0)
					return -1;
				pending |= r;
			}
		}
	}
	return pending;
}

/* A turn of the poll loop (mp_http_run()). */
static int flush_step(void *ud, int64_t now, int64_t *wake)
{
	mp_client *c = ud;

	notify_watchdog(); /* a long flush is progress too */
	progress_tick();
	check_stop(c, now, wake);
	return step_all(c, now, wake);
}

int mp_client_flush(mp_client *c, mp_result_fn fn, mp_answered_fn answered,
		    void *ud)
{
	int i, rc;

	if (c->flushing) {
		set_error(c, NULL,
			  "mp_client_flush: called from its own "
			  "result callback");
		return -1;
	}
	c->fn = fn;
	c->answered = answered;
	c->ud = ud;
	c->flushing = 1;
	c->stopping = 0;
	c->flush_not_delivered = 0;
	for (i = 0; i < c->ndests; i++) {
		c->dests[i]->stopped = 0;
		c->dests[i]->inflight = 0;
	}
	rc = mp_http_run(c->http, flush_step, c, c->err, sizeof(c->err));
	if (rc < 0) /* nothing may stay without an outcome */
		fail_all(c, 0, c->err);
	c->flushing = 0;
	c->fn = NULL;
	c->answered = NULL;
	c->ud = NULL;
	if (rc < 0)
		return -1;
	return c->flush_not_delivered > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Open, destinations, submit                                         */
/* ------------------------------------------------------------------ */

mp_client *mp_client_open(const mp_options *opts, char *err, size_t errlen)
{
	mp_client *c = alloc_calloc(1, sizeof(*c));

	if (opts)
		c->opt = *opts;
	mp_policy_defaults(&c->opt);
	c->http = mp_http_open(&c->opt, err, errlen);
	if (!c->http) {
		free(c);
		return NULL;
	}
	c->rng = mp_policy_rng_seed();
	return c;
}

static void dest_free(dest *d)
{
	int ep, k;

	if (!d)
		return;
	for (ep = 0; ep < MP_EP_COUNT; ep++) {
		for (k = 0; d->slots[ep] && k < d->conf.conc; k++) {
			slot *s = &d->slots[ep][k];

			d->tr->ops->close_channel(d->tr, s->ch);
			mp_body_queue_free(&s->q);
			buf_free(&s->body);
		}
		free(d->slots[ep]);
	}
	if (d->tr)
		d->tr->ops->close(d->tr);
	mp_dest_conf_free(&d->conf);
	free(d);
}

void mp_client_close(mp_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->ndests; i++)
		dest_free(c->dests[i]);
	free(c->dests);
	mp_http_close(c->http);
	free(c);
}

/* The slots of d, each bound to its endpoint. */
static void dest_slots(dest *d)
{
	int ep, k;

	mp_policy_bucket_init(&d->bucket, d->conf.max_rate,
			      (double)d->conf.batch, mp_policy_now_ms());
	for (ep = 0; ep < MP_EP_COUNT; ep++) {
		d->slots[ep] = alloc_calloc((size_t)d->conf.conc, sizeof(slot));
		for (k = 0; k < d->conf.conc; k++) {
			d->slots[ep][k].d = d;
			d->slots[ep][k].ep = (mp_endpoint)ep;
		}
	}
}

/* The transport d->conf.base names: a sink, else HTTP. */
static int dest_transport(mp_client *c, dest *d, char *why, size_t len)
{
	int rc = mp_sink_open(&d->tr, &d->conf, on_done, c, why, len);

	if (rc == 0)
		rc = mp_http_transport(&d->tr, c->http, &d->conf, on_done, c,
				       why, len);
	return rc < 0 ? -1 : 0;
}

int mp_client_add_destination(mp_client *c, int *out, const mp_destination *in)
{
	char why[AUDSYNC_ERR_LEN];
	dest *d;
	dest **grown;

	if (c->flushing) {
		set_error(c, NULL,
			  "mp_client_add_destination: called during "
			  "a flush");
		return -1;
	}
	d = alloc_calloc(1, sizeof(*d));
	if (mp_dest_conf_init(&d->conf, in, why, sizeof(why)) < 0 ||
	    dest_transport(c, d, why, sizeof(why)) < 0) {
		set_error(c, d, "%s", why);
		dest_free(d);
		return -1;
	}
	dest_slots(d);
	grown = alloc_realloc(c->dests,
			      (size_t)(c->ndests + 1) * sizeof(*grown));
	c->dests = grown;
	c->dests[c->ndests] = d;
	*out = c->ndests++;
	return 0;
}

int mp_client_submit(mp_client *c, int dest_id, mp_endpoint ep, uint32_t lane,
		     const char *record, size_t len, uint64_t tag)
{
	char why[AUDSYNC_ERR_LEN];
	size_t old, size;
	dest *d;
	slot *s;

	if (dest_id < 0 || dest_id >= c->ndests ||
	    (unsigned)ep >= MP_EP_COUNT || c->flushing || len == 0) {
		set_error(c, NULL,
			  "mp_client_submit: bad destination, "
			  "endpoint or record, or called during a flush");
		return -1;
	}
	d = c->dests[dest_id];
	size = mp_body_token_size(&old, ep, record, len, d->conf.token.len);
	if (mp_dest_record_fits(&d->conf, size, why, sizeof(why)) != 0) {
		set_error(c, d, "%s", why);
		return -1;
	}
	s = &d->slots[ep][lane % (uint32_t)d->conf.conc];
	mp_body_token_write(mp_body_queue_add(&s->q, size, tag), record, len,
			    old, d->conf.token.data, d->conf.token.len);
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
