/* check_mp_client.c - backoff, redaction, sinks and the wire */
#include "audsync/mp_client.h"
#include "audsync/mp_policy.h"
#include "audsync/mp_redact.h"

#include <arpa/inet.h>
#include "unit.h"

#include <check.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static mp_options fast_opts(void)
{
	mp_options o;

	memset(&o, 0, sizeof(o));
	o.backoff_base_ms = 20;
	o.backoff_cap_ms = 200;
	o.jitter_ms = 5;
	o.max_attempts = 3;
	o.timeout_ms = 2000;
	return o;
}

/* ---- backoff ------------------------------------------------------ */

START_TEST(backoff_schedule)
{
	mp_options o;
	uint64_t rng = 42;
	long expect[] = { 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
	long w, lo = 1 << 30, hi = 0;
	int i;

	memset(&o, 0, sizeof(o));
	o.backoff_base_ms = 2000;
	o.backoff_cap_ms = 60000;
	o.jitter_ms = 0;
	for (i = 0; i < 7; i++)
		ck_assert_int_eq(mp_policy_backoff_ms(&o, i + 1, -1, &rng),
				 expect[i]);
	ck_assert_int_eq(mp_policy_backoff_ms(&o, 200, -1, &rng), 60000);
	/* Retry-After replaces the computed wait, capped */
	ck_assert_int_eq(mp_policy_backoff_ms(&o, 1, 5000, &rng), 5000);
	ck_assert_int_eq(mp_policy_backoff_ms(&o, 5, 0, &rng), 0);
	ck_assert_int_eq(mp_policy_backoff_ms(&o, 1, 120000, &rng), 60000);
	/* jitter stays in [0, jitter_ms] and varies */
	o.jitter_ms = 1000;
	for (i = 0; i < 2000; i++) {
		w = mp_policy_backoff_ms(&o, 2, -1, &rng);
		ck_assert_int_ge(w, 4000);
		ck_assert_int_le(w, 5000);
		lo = w < lo ? w : lo;
		hi = w > hi ? w : hi;
	}
	ck_assert_int_lt(lo, 4100);
	ck_assert_int_gt(hi, 4900);
}
END_TEST

static long retry_after(const char *value, time_t now)
{
	return mp_policy_retry_after(value, strlen(value), now);
}

START_TEST(retry_after_parse)
{
	time_t now = 1700000000;
	char date[64];
	struct tm tm;
	time_t later = now + 30;

	ck_assert_int_eq(retry_after("5", now), 5000);
	ck_assert_int_eq(retry_after(" 12 \r\n", now), 12000);
	ck_assert_int_eq(retry_after("0", now), 0);
	ck_assert_int_eq(retry_after("", now), -1);
	ck_assert_int_eq(retry_after("soon", now), -1);
	ck_assert_int_eq(retry_after("5s", now), -1);
	gmtime_r(&later, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	ck_assert_int_eq(retry_after(date, now), 30000);
	ck_assert_int_eq(retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), 0);
	/* a header value is bytes, not a C string: no NUL, a length */
	ck_assert_int_eq(mp_policy_retry_after("5\0"
					       "9",
					       3, now),
			 -1);
	ck_assert_int_eq(mp_policy_retry_after("59", 1, now), 5000);
	ck_assert_int_eq(retry_after("99999999999999999999", now),
			 10000000L * 1000);
}
END_TEST

/* ---- rate limit --------------------------------------------------- */

/* max_rate is records per second, at most: the first second too, where a
 * full bucket and one overdrawn batch sent two and a half times it. */
START_TEST(the_first_second_holds_the_rate)
{
	mp_bucket b;
	int64_t t = 5000, sent = 0, next;

	mp_policy_bucket_init(&b, 100, 50, t);
	while (t < 5000 + 1000) {
		next = mp_policy_bucket_take(&b, 50, t);
		if (next == 0) {
			sent += 50;
			continue;
		}
		t = next;
	}
	ck_assert_int_eq(sent, 100);
}
END_TEST

START_TEST(bucket_rate)
{
	mp_bucket b;
	int64_t t = 1000, sent = 0, next;

	mp_policy_bucket_init(&b, 0, 2000, t);
	ck_assert_int_eq(mp_policy_bucket_take(&b, 1000000, t), 0);
	/* 1000 records/s, batches of 100: 10 s of sending takes ~10 s */
	mp_policy_bucket_init(&b, 1000, 100, t);
	while (sent < 10000) {
		next = mp_policy_bucket_take(&b, 100, t);
		if (next == 0) {
			sent += 100;
			continue;
		}
		ck_assert_int_gt(next, t);
		t = next;
	}
	ck_assert_int_ge(t, 1000 + 9800);
	ck_assert_int_le(t, 1000 + 10000);
	/* a batch larger than a second's worth overdraws, then waits */
	mp_policy_bucket_init(&b, 10, 2000, 0);
	ck_assert_int_eq(mp_policy_bucket_take(&b, 2000, 0), 0);
	next = mp_policy_bucket_take(&b, 2000, 0);
	ck_assert_int_ge(next, 200000);
	ck_assert_int_le(next, 200002);
	ck_assert_int_eq(mp_policy_bucket_take(&b, 2000, next), 0);
	/* a long pause saves no more than the burst: after 100 s idle at
	 * 10/s (burst 10), 10 records go, 10 more overdraw, then a wait */
	mp_policy_bucket_init(&b, 10, 10, 0);
	ck_assert_int_eq(mp_policy_bucket_take(&b, 10, 0), 0);
	ck_assert_int_eq(mp_policy_bucket_take(&b, 10, 100000), 0);
	ck_assert_int_eq(mp_policy_bucket_take(&b, 10, 100000), 0);
	ck_assert_int_gt(mp_policy_bucket_take(&b, 10, 100000), 100000);
}
END_TEST

/* ---- redaction ---------------------------------------------------- */

START_TEST(redact_text)
{
	const char *hdr = "POST /import?strict=1 HTTP/1.1\r\n"
			  "Host: api.mixpanel.com\r\n"
			  "Authorization: Basic c2Vrcml0Og==\r\n"
			  "Content-Type: application/json\r\n";
	const char *text = "Server auth using Basic with user 'sekrit'\n";
	const char *const sekrit[] = { "sekrit", NULL };
	buf b;

	buf_init(&b);
	mp_redact(&b, hdr, strlen(hdr), sekrit);
	ck_assert_ptr_null(strstr(b.data, "c2Vrcml0Og=="));
	ck_assert_ptr_nonnull(strstr(b.data, "Authorization: [redacted]\r\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "Host: api.mixpanel.com\r\n"));
	ck_assert_ptr_nonnull(
		strstr(b.data, "\r\nContent-Type: application/json"));
	buf_reset(&b);
	mp_redact(&b, text, strlen(text), sekrit);
	ck_assert_str_eq(b.data, "Server auth using Basic with user "
				 "'[redacted]'\n");
	buf_reset(&b);
	mp_redact(&b, "abc", 3, NULL);
	ck_assert_str_eq(b.data, "abc");
	/* of two secrets where one starts the other, the longer is cut
	 * whole, though the shorter is listed after it */
	{
		const char *const nested[] = { "tok-secret", "tok", NULL };

		buf_reset(&b);
		mp_redact(&b, "a tok-secret b", 14, nested);
		ck_assert_str_eq(b.data, "a [redacted] b");
	}
	buf_free(&b);
}
END_TEST

/* ---- the client against a file: sink ------------------------------ */

typedef struct seen {
	uint64_t tags[64];
	mp_outcome outcomes[64];
	char message[256];
	size_t n;
} seen;

static void on_result(void *ud, uint64_t tag, mp_outcome o, const char *msg)
{
	seen *s = ud;

	if (s->n < 64) {
		s->tags[s->n] = tag;
		s->outcomes[s->n] = o;
	}
	s->n++;
	if (msg)
		snprintf(s->message, sizeof(s->message), "%s", msg);
}

static char *tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "/tmp/check_mp_client.%d.%s",
		 (int)getpid(), name);
	unlink(path);
	return path;
}

START_TEST(file_sink_batches)
{
	char err[256], base[300], line[4096];
	mp_destination d;
	mp_client *c = mp_client_open(NULL, err, sizeof(err));
	const char *path = tmp_path("sink");
	int dest, lines = 0, i;
	size_t records = 0;
	seen s;
	FILE *f;

	memset(&s, 0, sizeof(s));
	ck_assert_ptr_nonnull(c);
	snprintf(base, sizeof(base), "file:%s", path);
	memset(&d, 0, sizeof(d));
	d.name = "dest";
	d.api_base = base;
	d.project_token = "tok";
	d.batch_size = 3;
	d.concurrency = 2;
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), 0);
	for (i = 0; i < 10; i++) {
		char rec[64];
		int n = snprintf(rec, sizeof(rec), "{\"$distinct_id\":\"u%d\"}",
				 i);

		ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_ENGAGE, 0, rec,
						  (size_t)n, (uint64_t)i),
				 0);
	}
	ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_IMPORT, 1,
					  "{\"event\":\"e\"}", 13, 100),
			 0);
	ck_assert_uint_eq(mp_client_queued(c), 11);
	ck_assert_int_eq(mp_client_flush(c, on_result, NULL, &s), 0);
	ck_assert_uint_eq(mp_client_queued(c), 0);
	ck_assert_uint_eq(s.n, 11);
	for (i = 0, lines = 0; i < 11; i++) {
		ck_assert_int_eq(s.outcomes[i], MP_OUT_DELIVERED);
		/* one lane of /engage: submission order */
		if (s.tags[i] != 100)
			ck_assert_uint_eq(s.tags[i], (uint64_t)lines++);
	}
	ck_assert_int_eq(lines, 10);
	lines = 0;
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line), *body = NULL;
		json_object *ep = NULL, *q = NULL;

		ck_assert_ptr_nonnull(o);
		ck_assert(json_object_object_get_ex(o, "body", &body));
		ck_assert(json_object_object_get_ex(o, "endpoint", &ep));
		ck_assert(json_object_object_get_ex(o, "query", &q));
		ck_assert_uint_le(json_object_array_length(body), 3);
		records += json_object_array_length(body);
		if (strcmp(json_object_get_string(ep), "/engage") == 0)
			ck_assert_str_eq(json_object_get_string(q),
					 "verbose=1&ip=0");
		else
			ck_assert_str_eq(json_object_get_string(q), "strict=1");
		json_object_put(o);
		lines++;
	}
	fclose(f);
	ck_assert_int_eq(lines, 5);
	ck_assert_uint_eq(records, 11);
	unlink(path);
	mp_client_close(c);
}
END_TEST

/* A sink that cannot write keeps what its lane holds (not delivered, the
 * reason named) and the flush says so; nothing stops the process. */
START_TEST(file_sink_write_failure)
{
	char err[256];
	mp_destination d;
	mp_client *c = mp_client_open(NULL, err, sizeof(err));
	int dest, i;
	seen s;

	if (access("/dev/full", W_OK) != 0)
		return; /* no /dev/full here: nothing to learn */
	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	d.name = "full";
	d.api_base = "file:/dev/full";
	d.project_token = "tok";
	d.batch_size = 2;
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_ENGAGE, 0,
						  "{\"$set\":{}}", 11,
						  (uint64_t)i),
				 0);
	ck_assert_int_eq(mp_client_flush(c, on_result, NULL, &s), 1);
	ck_assert_uint_eq(s.n, 5);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(s.outcomes[i], MP_OUT_NOT_DELIVERED);
	ck_assert_ptr_nonnull(strstr(s.message, "destination full: cannot "
						"write /dev/full"));
	ck_assert_uint_eq(mp_client_queued(c), 0);
	mp_client_close(c);
}
END_TEST

START_TEST(destination_errors)
{
	char err[256];
	mp_client *c = mp_client_open(NULL, err, sizeof(err));
	mp_destination d;
	int dest;

	memset(&d, 0, sizeof(d));
	d.name = "bad";
	d.project_token = "tok";
	d.region = "mars";
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), -1);
	ck_assert_ptr_nonnull(strstr(mp_client_error(c), "region"));
	d.region = "eu";
	d.project_token = NULL;
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), -1);
	ck_assert_ptr_nonnull(strstr(mp_client_error(c), "project_token"));
	d.project_token = "tok";
	d.secret = "svc-user:sekrit-value";
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), -1);
	ck_assert_ptr_nonnull(strstr(mp_client_error(c), "project_id"));
	ck_assert_ptr_null(strstr(mp_client_error(c), "sekrit"));
	d.secret = NULL;
	d.api_base = "file:/nonexistent-dir/x/y";
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), -1);
	d.api_base = "ftp://example.com";
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), -1);
	d.api_base = NULL;
	d.max_bytes = 100;
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), 0);
	{
		char big[200];

		memset(big, 'x', sizeof(big));
		ck_assert_int_eq(
			mp_client_submit(c, dest, MP_EP_IMPORT, 0, big, 99, 1),
			-1);
		ck_assert_int_eq(
			mp_client_submit(c, dest, MP_EP_IMPORT, 0, big, 98, 1),
			0);
		ck_assert_int_eq(mp_client_submit(c, dest + 1, MP_EP_IMPORT, 0,
						  big, 10, 1),
				 -1);
	}
	ck_assert_uint_eq(mp_client_queued(c), 1);
	mp_client_close(c);
}
END_TEST

/* ---- a one-request-per-connection HTTP responder ------------------ */

typedef struct responder {
	int fd;
	int port;
	int count;	    /* requests to serve */
	const char *answer; /* full HTTP answer */
	buf requests;	    /* every request, headers + body */
} responder;

static void read_request(int fd, buf *into)
{
	char chunk[8192];
	size_t start = into->len, body = 0, want = 0;
	ssize_t n;
	char *hdr_end, *cl;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			return;
		buf_append(into, chunk, (size_t)n);
		hdr_end = strstr(into->data + start, "\r\n\r\n");
		if (!hdr_end)
			continue;
		if (!want) {
			cl = strcasestr(into->data + start, "Content-Length:");
			want = cl ? strtoul(cl + 15, NULL, 10) : 0;
			body = (size_t)(hdr_end + 4 - into->data);
		}
		if (into->len - body >= want)
			return;
	}
}

/* Where needle starts in the requests seen (bodies may hold NULs). */
static const char *seen_at(const responder *r, const char *from,
			   const char *needle)
{
	const char *end = r->requests.data + r->requests.len;

	if (!from)
		from = r->requests.data;
	return memmem(from, (size_t)(end - from), needle, strlen(needle));
}

static void *serve(void *ud)
{
	responder *r = ud;
	int i;

	for (i = 0; i < r->count; i++) {
		int cfd = accept(r->fd, NULL, NULL);

		if (cfd < 0)
			break;
		read_request(cfd, &r->requests);
		buf_puts(&r->requests, "\n--end--\n");
		if (write(cfd, r->answer, strlen(r->answer)) < 0)
			perror("write");
		close(cfd);
	}
	return NULL;
}

static void responder_start(responder *r, pthread_t *th, const char *answer,
			    int count)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	memset(r, 0, sizeof(*r));
	buf_init(&r->requests);
	r->answer = answer;
	r->count = count;
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(r->fd, 8), 0);
	getsockname(r->fd, (struct sockaddr *)&a, &len);
	r->port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(th, NULL, serve, r), 0);
}

static mp_client *client_to(int port, const char *secret, int verbose,
			    int *dest)
{
	mp_options o = fast_opts();
	mp_destination d;
	char err[256], base[64];
	mp_client *c;

	o.verbose = verbose;
	c = mp_client_open(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/", port);
	memset(&d, 0, sizeof(d));
	d.name = "local";
	d.api_base = base;
	d.project_token = "tok";
	d.secret = secret;
	d.project_id = secret && strchr(secret, ':') ? "77" : NULL;
	ck_assert_int_eq(mp_client_add_destination(c, dest, &d), 0);
	return c;
}

START_TEST(wire_import_and_engage)
{
	/* what both endpoints take as Mixpanel accepting one record */
	static const char ok[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 48\r\n"
		"Connection: close\r\n\r\n"
		"{\"code\":200,\"num_records_imported\":1,\"status\":1}";
	responder r;
	pthread_t th;
	mp_client *c;
	int dest;
	seen s;
	char *engage;

	memset(&s, 0, sizeof(s));
	responder_start(&r, &th, ok, 2);
	c = client_to(r.port, "svc:pass-word", 0, &dest);
	ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_IMPORT, 0,
					  "{\"event\":\"e\"}", 13, 1),
			 0);
	ck_assert_int_eq(mp_client_flush(c, on_result, NULL, &s), 0);
	ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_ENGAGE, 0,
					  "{\"$set\":{}}", 11, 2),
			 0);
	ck_assert_int_eq(mp_client_flush(c, on_result, NULL, &s), 0);
	pthread_join(th, NULL);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_int_eq(s.outcomes[0], MP_OUT_DELIVERED);
	ck_assert_int_eq(s.outcomes[1], MP_OUT_DELIVERED);
	/* the first request: /import, gzip, Basic svc:pass-word */
	ck_assert_ptr_nonnull(
		seen_at(&r, NULL, "POST /import?strict=1&project_id=77 "));
	ck_assert_ptr_nonnull(seen_at(&r, NULL, "Content-Encoding: gzip"));
	ck_assert_ptr_nonnull(seen_at(&r, NULL,
				      "Authorization: Basic "
				      "c3ZjOnBhc3Mtd29yZA=="));
	engage = (char *)seen_at(&r, NULL, "POST /engage?verbose=1&ip=0 ");
	ck_assert_ptr_nonnull(engage);
	ck_assert_ptr_null(seen_at(&r, engage, "Content-Encoding"));
	ck_assert_ptr_null(seen_at(&r, engage, "Authorization"));
	ck_assert_ptr_nonnull(seen_at(&r, engage, "[{\"$set\":{}}]"));
	close(r.fd);
	buf_free(&r.requests);
	mp_client_close(c);
}
END_TEST

START_TEST(wire_verbose_redacted)
{
	static const char ok[] = "HTTP/1.1 401 Unauthorized\r\n"
				 "Content-Length: 31\r\nConnection: close\r\n"
				 "\r\n{\"error\":\"Invalid credentials\"}";
	const char *path = tmp_path("stderr");
	responder r;
	pthread_t th;
	mp_client *c;
	int dest, saved, fd;
	seen s;
	char log[65536];
	ssize_t n;

	memset(&s, 0, sizeof(s));
	responder_start(&r, &th, ok, 1);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	c = client_to(r.port, "sekrit-api-secret", 1, &dest);
	ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_IMPORT, 0,
					  "{\"event\":\"e\"}", 13, 1),
			 0);
	ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_IMPORT, 0,
					  "{\"event\":\"f\"}", 13, 2),
			 0);
	ck_assert_int_eq(mp_client_flush(c, on_result, NULL, &s), 1);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	pthread_join(th, NULL);
	n = pread(fd, log, sizeof(log) - 1, 0);
	ck_assert_int_gt(n, 0);
	log[n] = '\0';
	close(fd);
	unlink(path);
	/* the verbose trace went out, without the secret */
	ck_assert_ptr_nonnull(strstr(log, "Authorization: [redacted]"));
	ck_assert_ptr_null(strstr(log, "sekrit"));
	ck_assert_ptr_null(strstr(log, "c2Vrcml0"));
	ck_assert_ptr_null(seen_at(&r, NULL, "sekrit"));
	/* 401: both records kept, a clear message without the secret */
	ck_assert_uint_eq(s.n, 2);
	ck_assert_int_eq(s.outcomes[0], MP_OUT_NOT_DELIVERED);
	ck_assert_int_eq(s.outcomes[1], MP_OUT_NOT_DELIVERED);
	ck_assert_str_eq(s.message,
			 "destination local: Mixpanel refused the "
			 "credentials (HTTP 401): check the API secret / "
			 "service account");
	ck_assert_str_eq(mp_client_error(c), s.message);
	close(r.fd);
	buf_free(&r.requests);
	mp_client_close(c);
}
END_TEST

START_TEST(wire_retry_then_give_up)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				   "Retry-After: 0\r\nContent-Length: 4\r\n"
				   "Connection: close\r\n\r\nbusy";
	responder r;
	pthread_t th;
	mp_client *c;
	mp_stats st;
	int dest;
	seen s;

	memset(&s, 0, sizeof(s));
	responder_start(&r, &th, busy, 3);
	c = client_to(r.port, NULL, 0, &dest);
	ck_assert_int_eq(mp_client_submit(c, dest, MP_EP_GROUPS, 5,
					  "{\"$group_key\":\"k\"}", 18, 9),
			 0);
	ck_assert_int_eq(mp_client_flush(c, on_result, NULL, &s), 1);
	pthread_join(th, NULL);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_int_eq(s.outcomes[0], MP_OUT_NOT_DELIVERED);
	ck_assert_ptr_nonnull(strstr(s.message, "HTTP 503: busy"));
	mp_client_get_stats(c, &st);
	ck_assert_uint_eq(st.requests, 3);
	ck_assert_uint_eq(st.retries, 2);
	ck_assert_uint_eq(st.records_not_delivered, 1);
	close(r.fd);
	buf_free(&r.requests);
	mp_client_close(c);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("mp_client");
	TCase *pure = tcase_create("pure");
	TCase *wire = tcase_create("wire");

	tcase_add_test(pure, backoff_schedule);
	tcase_add_test(pure, retry_after_parse);
	tcase_add_test(pure, bucket_rate);
	tcase_add_test(pure, the_first_second_holds_the_rate);
	tcase_add_test(pure, redact_text);
	tcase_add_test(wire, file_sink_batches);
	tcase_add_test(wire, file_sink_write_failure);
	tcase_add_test(wire, destination_errors);
	tcase_add_test(wire, wire_import_and_engage);
	tcase_add_test(wire, wire_verbose_redacted);
	tcase_add_test(wire, wire_retry_then_give_up);
	tcase_set_timeout(wire, 30);
	suite_add_tcase(s, pure);
	suite_add_tcase(s, wire);
	return s;
}

int main(void)
{
	return ut_run_suite(client_suite());
}
