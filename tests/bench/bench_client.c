/* bench_client.c - throughput and CPU of the Mixpanel client, to the fake */
#include "audsync/buf.h"
#include "audsync/log.h"
#include "audsync/mp_client.h"
#include "audsync/mp_payload.h"
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/*
 * Sends BENCH_RECORDS (default 1 000 000) audience events to /import and
 * as many profile updates to /engage, in submit/flush chunks as the sync
 * engine does, and prints one figure a line. The CPU is this process's
 * (the fake runs in its own), counted around submit + flush only: building
 * the record texts is the payload module's cost and printed apart.
 */

#define CHUNK 50000
#define KEY   "order_completed_last_30_days"

typedef struct totals {
	double wall;
	double cpu;	  /* submit + flush */
	double build_cpu; /* record texts */
	uint64_t delivered;
	uint64_t other;
} totals;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double peak_rss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

static uint32_t lane_of(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

static void on_result(void *ud, uint64_t tag, mp_outcome o, const char *msg)
{
	totals *t = ud;

	(void)tag;
	(void)msg;
	if (o == MP_OUT_DELIVERED)
		t->delivered++;
	else
		t->other++;
}

static const char entered[] =
	"{\"audience_key\":\"" KEY "\",\"" KEY "\":true,"
	"\"audience_name\":\"Order Completed - Last 30 Days\"}";
static const char exited[] =
	"{\"audience_key\":\"" KEY "\",\"" KEY "\":false,"
	"\"audience_name\":\"Order Completed - Last 30 Days\"}";

/* Record i of a kind, as the sync engine would build it. */
static void build(buf *out, int events, long i, int64_t t0)
{
	char did[32], n[24], id[MP_INSERT_ID_LEN + 1];
	const char *parts[3] = { "sync-7", did, n };

	snprintf(did, sizeof(did), "user-%ld", i % 400000);
	if (!events) {
		char set[160];

		snprintf(set, sizeof(set),
			 "{\"" KEY "\":%s,\"$email\":\"%s@example.com\"}",
			 i % 3 ? "true" : "false", did);
		mp_payload_engage(out, "test-token", did, 1, "$set", set);
		return;
	}
	snprintf(n, sizeof(n), "entered@%ld", i);
	mp_insert_id(id, parts, 3);
	mp_payload_event(out, i % 3 ? "Audience Entered" : "Audience Exited",
			 did, t0 + i, id, i % 3 ? entered : exited);
}

/* Builds one chunk into texts (records joined, offsets in ends). */
static void build_chunk(buf *texts, size_t *ends, int events, long first,
			long n, int64_t t0)
{
	long i;

	buf_reset(texts);
	for (i = 0; i < n; i++) {
		build(texts, events, first + i, t0);
		ends[i] = texts->len;
	}
}

static int send_chunk(mp_client *c, int dest, mp_endpoint ep, const buf *texts,
		      const size_t *ends, long n, totals *t)
{
	size_t start = 0;
	long i;

	for (i = 0; i < n; i++) {
		const char *rec = texts->data + start;
		char did[40];
		const char *p = strstr(rec, "distinct_id\":\"");
		size_t k = 0;

		/* the lane: a hash of the distinct_id, as the engine does */
		if (p) {
			p += 14;
			while (p[k] && p[k] != '"' && k < sizeof(did) - 1) {
				did[k] = p[k];
				k++;
			}
		}
		did[k] = '\0';
		if (mp_client_submit(c, dest, ep, lane_of(did), rec,
				     ends[i] - start, (uint64_t)i) != 0) {
			fprintf(stderr, "bench_client: submit: %s\n",
				mp_client_error(c));
			return -1;
		}
		start = ends[i];
	}
	if (mp_client_flush(c, on_result, NULL, t) < 0) {
		fprintf(stderr, "bench_client: flush: %s\n",
			mp_client_error(c));
		return -1;
	}
	return 0;
}

static int run_kind(mp_client *c, int dest, mpctl *fake, int events, long total,
		    totals *t)
{
	buf texts;
	size_t *ends = malloc(CHUNK * sizeof(*ends));
	int64_t t0 = ((int64_t)time(NULL) - 86400) * 1000;
	double w0 = now_s(), c0;
	long done;
	int rc = 0;

	buf_init(&texts);
	for (done = 0; done < total && rc == 0; done += CHUNK) {
		long n = total - done < CHUNK ? total - done : CHUNK;

		c0 = cpu_s();
		build_chunk(&texts, ends, events, done, n, t0);
		t->build_cpu += cpu_s() - c0;
		c0 = cpu_s();
		rc = send_chunk(c, dest, events ? MP_EP_IMPORT : MP_EP_ENGAGE,
				&texts, ends, n, t);
		t->cpu += cpu_s() - c0;
		/* the fake's memory, not ours, would grow with 1M events */
		if (rc == 0 && mpctl_reset(fake) != 0)
			rc = -1;
	}
	t->wall = now_s() - w0;
	buf_free(&texts);
	free(ends);
	return rc;
}

static void report(const char *kind, long total, const totals *t,
		   const mp_stats *st)
{
	printf("bench_client: %s %ld in %.2f s = %.0f/s, cpu %.2f us/record, "
	       "peak rss %.1f MiB\n",
	       kind, total, t->wall, (double)total / t->wall,
	       t->cpu * 1e6 / (double)total, peak_rss_mib());
	printf("bench_client: %s delivered %llu, not delivered or rejected "
	       "%llu, requests %llu, %.1f MiB on the wire, payload build cpu "
	       "%.2f us/record\n",
	       kind, (unsigned long long)t->delivered,
	       (unsigned long long)t->other, (unsigned long long)st->requests,
	       (double)st->bytes_sent / 1048576.0,
	       t->build_cpu * 1e6 / (double)total);
}

static mp_client *open_bench_client(mpctl *fake, int *dest)
{
	mp_destination d;
	char err[256];
	mp_client *c = mp_client_open(NULL, err, sizeof(err));

	if (!c) {
		fprintf(stderr, "bench_client: %s\n", err);
		return NULL;
	}
	memset(&d, 0, sizeof(d));
	d.name = "bench";
	d.api_base = mpctl_base_url(fake);
	d.project_token = "test-token";
	d.secret = "test-secret";
	if (mp_client_add_destination(c, dest, &d) != 0) {
		fprintf(stderr, "bench_client: %s\n", mp_client_error(c));
		mp_client_close(c);
		return NULL;
	}
	return c;
}

int main(void)
{
	long total = tl_env_long("BENCH_RECORDS", 1000000, 1, 1000000000);
	mpctl *fake = NULL;
	mp_client *c = NULL;
	totals ev, pr;
	mp_stats s0, s1;
	int dest, rc = 1;

	memset(&ev, 0, sizeof(ev));
	memset(&pr, 0, sizeof(pr));
	log_min_level = LOG_LEVEL_WARN;
	if (mpctl_start(&fake, "--threads 2") != 0)
		goto out;
	c = open_bench_client(fake, &dest);
	if (!c)
		goto out;
	if (run_kind(c, dest, fake, 1, total, &ev) != 0)
		goto out;
	mp_client_get_stats(c, &s0);
	report("events", total, &ev, &s0);
	if (run_kind(c, dest, fake, 0, total, &pr) != 0)
		goto out;
	mp_client_get_stats(c, &s1);
	s1.requests -= s0.requests;
	s1.bytes_sent -= s0.bytes_sent;
	report("profile updates", total, &pr, &s1);
	rc = ev.other || pr.other ? 1 : 0;
out:
	mp_client_close(c);
	mpctl_stop(fake);
	return rc;
}
