/* check_mp_delivery.c - the client against the fake Mixpanel, with faults */
#include "audsync/buf.h"
#include "audsync/log.h"
#include "audsync/mp_client.h"
#include "audsync/mp_payload.h"
#include "mixpanel_ctl.h"

#include <check.h>
#include <pthread.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN  "test-token"
#define SECRET "test-secret"

/* One record the test sends, and what became of it. */
typedef struct rec {
	mp_endpoint ep;
	uint32_t lane;
	char *text;
	size_t len;
	int outcome; /* -1 until final: DELIVERED or REJECTED */
	int last;    /* the last outcome reported */
	char message[160];
} rec;

typedef struct run {
	rec *recs;
	size_t n;
	size_t reported;
} run;

static uint32_t lane_of(const char *id)
{
	uint32_t h = 2166136261u;

	while (*id) {
		h ^= (unsigned char)*id++;
		h *= 16777619u;
	}
	return h;
}

static void on_result(void *ud, uint64_t tag, mp_outcome o, const char *msg)
{
	run *r = ud;
	rec *x = &r->recs[tag];

	ck_assert_uint_lt(tag, r->n);
	ck_assert_msg(x->outcome < 0, "record %llu reported after its end",
		      (unsigned long long)tag);
	x->last = (int)o;
	if (o != MP_OUT_NOT_DELIVERED)
		x->outcome = (int)o;
	snprintf(x->message, sizeof(x->message), "%s", msg ? msg : "");
	r->reported++;
}

static void add_rec(run *r, mp_endpoint ep, const char *lane_id,
		    const buf *text)
{
	rec *x = &r->recs[r->n++];

	x->ep = ep;
	x->lane = lane_of(lane_id);
	x->text = strdup(text->data);
	x->len = text->len;
	x->outcome = -1;
	x->last = -1;
}

static void run_free(run *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->recs[i].text);
	free(r->recs);
}

/* Submits every record without a final outcome, flushes; returns how
 * many were submitted. */
static size_t flush_round(mp_client *c, int dest, run *r)
{
	size_t i, sent = 0;

	for (i = 0; i < r->n; i++) {
		rec *x = &r->recs[i];

		if (x->outcome >= 0)
			continue;
		ck_assert_int_eq(mp_client_submit(c, dest, x->ep, x->lane,
						  x->text, x->len, i),
				 0);
		sent++;
	}
	r->reported = 0;
	ck_assert_int_ge(mp_client_flush(c, on_result, NULL, r), 0);
	ck_assert_uint_eq(r->reported, sent);
	ck_assert_uint_eq(mp_client_queued(c), 0);
	return sent;
}

static mp_client *open_client(long timeout_ms, mpctl *fake, const char *secret,
			      int *dest, int batch)
{
	mp_options o;
	mp_destination d;
	char err[256];
	mp_client *c;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = timeout_ms;
	o.connect_timeout_ms = 2000;
	o.backoff_base_ms = 20;
	o.backoff_cap_ms = 400;
	o.jitter_ms = 5;
	c = mp_client_open(&o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	memset(&d, 0, sizeof(d));
	d.name = "fake";
	d.api_base = mpctl_base_url(fake);
	d.project_token = TOKEN;
	d.secret = secret;
	d.project_id = secret && strchr(secret, ':') ? "4242" : NULL;
	d.batch_size = batch;
	d.concurrency = 8;
	ck_assert_msg(mp_client_add_destination(c, dest, &d) == 0, "%s",
		      mp_client_error(c));
	return c;
}

static json_object *fake_state(mpctl *fake)
{
	json_object *st = NULL;

	ck_assert_int_eq(mpctl_state(&st, fake), 0);
	return st;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

/* ---- 100 000 mixed records through 25 % failing requests ---------- */

#define N_EVENTS    70000
#define N_PROFILES  7000
#define N_UPDATES   28000
#define N_GROUPS    2000
#define BAD_EVERY   997 /* events with a refused distinct_id */
#define BAD_UPDATES 7	/* updates with a refused $distinct_id */

static int64_t base_ms(void)
{
	return ((int64_t)time(NULL) - 86400) * 1000;
}

static void make_events(run *r, int64_t t0)
{
	char id[MP_INSERT_ID_LEN + 1], n[24], did[32], name[16];
	const char *parts[2] = { "delivery", n };
	buf b;
	int i;

	buf_init(&b);
	for (i = 0; i < N_EVENTS; i++) {
		snprintf(n, sizeof(n), "%d", i);
		mp_insert_id(id, parts, 2);
		if (i % BAD_EVERY == 5)
			snprintf(did, sizeof(did), "null");
		else
			snprintf(did, sizeof(did), "u%d", i % 5000);
		snprintf(name, sizeof(name), "E%d", i % 7);
		buf_reset(&b);
		buf_printf(&b, "{\"n\":%d,\"audience_key\":\"k%d\"}", i, i % 3);
		{
			char *extra = strdup(b.data);

			buf_reset(&b);
			mp_payload_event(&b, name, did, t0 + i, id, extra);
			free(extra);
		}
		add_rec(r, MP_EP_IMPORT, did, &b);
	}
	buf_free(&b);
}

/* Update j of profile p: a $set, or every fourth an $unset of "flag". */
static void make_update(buf *b, int p, int j, json_object *expect)
{
	char did[32], val[160];
	json_object *props;

	snprintf(did, sizeof(did), "p%d", p);
	if (!json_object_object_get_ex(expect, did, &props)) {
		props = json_object_new_object();
		json_object_object_add(expect, did, props);
	}
	buf_reset(b);
	if (j % 4 == 3) {
		mp_payload_engage(b, TOKEN, did, 1, "$unset", "[\"flag\"]");
		json_object_object_del(props, "flag");
		return;
	}
	snprintf(val, sizeof(val),
		 "{\"score\":%d,\"flag\":true,\"n%d\":"
		 "\"v%d\",\"ratio\":%d.5}",
		 p * 10 + j, j % 3, j, j);
	mp_payload_engage(b, TOKEN, did, 1, "$set", val);
	json_object_object_add(props, "score", json_object_new_int(p * 10 + j));
	json_object_object_add(props, "flag", json_object_new_boolean(1));
	snprintf(val, sizeof(val), "n%d", j % 3);
	{
		char v[16];

		snprintf(v, sizeof(v), "v%d", j);
		json_object_object_add(props, val, json_object_new_string(v));
	}
	json_object_object_add(props, "ratio", json_object_new_double(j + 0.5));
}

static void make_updates(run *r, json_object *expect)
{
	char did[32];
	buf b;
	int i;

	buf_init(&b);
	for (i = 0; i < N_UPDATES; i++) {
		int p = i % N_PROFILES, j = i / N_PROFILES;

		if (i % (N_UPDATES / BAD_UPDATES) == 11) {
			buf_reset(&b);
			mp_payload_engage(&b, TOKEN, "anon", 1, "$set",
					  "{\"bad\":true}");
			add_rec(r, MP_EP_ENGAGE, "anon", &b);
		}
		make_update(&b, p, j, expect);
		snprintf(did, sizeof(did), "p%d", p);
		add_rec(r, MP_EP_ENGAGE, did, &b);
	}
	buf_free(&b);
}

static void make_groups(run *r)
{
	char gid[32];
	buf b;
	int i;

	buf_init(&b);
	for (i = 0; i < N_GROUPS; i++) {
		snprintf(gid, sizeof(gid), "c%d", i);
		buf_reset(&b);
		buf_printf(&b,
			   "{\"$token\":\"%s\",\"$group_key\":\"company\","
			   "\"$group_id\":\"%s\",\"$set\":{\"size\":%d}}",
			   TOKEN, gid, i);
		add_rec(r, MP_EP_GROUPS, gid, &b);
	}
	buf_free(&b);
}

static void inject_faults(mpctl *fake)
{
	static const char *const rules[] = {
		"{\"mode\":\"429\",\"rate\":0.04,\"retry_after\":1,\"seed\":1}",
		"{\"mode\":\"429\",\"rate\":0.03,\"seed\":2}",
		"{\"mode\":\"500\",\"rate\":0.03,\"seed\":3}",
		"{\"mode\":\"502\",\"rate\":0.03,\"seed\":4}",
		"{\"mode\":\"503\",\"rate\":0.03,\"seed\":5}",
		"{\"mode\":\"slow\",\"rate\":0.02,\"slow_ms\":1500,\"seed\":6}",
		"{\"mode\":\"drop\",\"rate\":0.03,\"seed\":7}",
		"{\"mode\":\"400-partial\",\"rate\":0.03,\"endpoint\":"
		"\"import\",\"seed\":8}",
		"{\"mode\":\"413\",\"rate\":0.03,\"endpoint\":\"import\","
		"\"seed\":9}",
	};
	size_t i;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		ck_assert_int_eq(mpctl_fault(fake, rules[i]), 0);
}

/* Every event the client called delivered is stored once; none that it
 * called rejected is. Returns how many events were stored. */
static size_t check_events(run *r, json_object *state)
{
	json_object *events = member(state, "events"), *seen;
	size_t i, n = json_object_array_length(events), delivered = 0;

	seen = json_object_new_object();
	for (i = 0; i < n; i++) {
		json_object *props = member(
			json_object_array_get_idx(events, i), "properties");
		const char *id =
			json_object_get_string(member(props, "$insert_id"));

		ck_assert_msg(!json_object_object_get_ex(seen, id, NULL),
			      "event %s stored twice", id);
		json_object_object_add(seen, id, NULL);
	}
	for (i = 0; i < r->n; i++) {
		rec *x = &r->recs[i];
		const char *p;
		char id[MP_INSERT_ID_LEN + 1];

		if (x->ep != MP_EP_IMPORT)
			continue;
		p = strstr(x->text, "\"$insert_id\":\"");
		ck_assert_ptr_nonnull(p);
		memcpy(id, p + 14, MP_INSERT_ID_LEN);
		id[MP_INSERT_ID_LEN] = '\0';
		if (x->outcome == MP_OUT_DELIVERED) {
			delivered++;
			ck_assert_msg(json_object_object_get_ex(seen, id, NULL),
				      "delivered event %s not stored", id);
		} else {
			ck_assert_msg(
				!json_object_object_get_ex(seen, id, NULL),
				"rejected event %s stored: %s", id, x->message);
		}
	}
	ck_assert_uint_eq(delivered, n);
	json_object_put(seen);
	return n;
}

static void check_profiles(json_object *state, json_object *expect)
{
	json_object *profiles = member(state, "profiles");

	ck_assert_ptr_null(member(profiles, "anon"));
	ck_assert_int_eq(json_object_object_length(profiles), N_PROFILES);
	json_object_object_foreach(expect, did, want)
	{
		json_object *got = member(profiles, did);

		ck_assert_msg(got != NULL, "profile %s missing", did);
		ck_assert_msg(member(got, "flag") == NULL ||
				      member(want, "flag") != NULL,
			      "profile %s: flag should be unset", did);
		json_object_object_foreach(want, k, v)
		{
			json_object *g = member(got, k);

			ck_assert_msg(g && json_object_equal(g, v),
				      "profile %s: %s is %s, want %s", did, k,
				      g ? json_object_to_json_string(g) : "-",
				      json_object_to_json_string(v));
		}
	}
}

static void check_groups(json_object *state)
{
	json_object *groups = member(state, "groups");
	char key[48];
	int i;

	ck_assert_int_eq(json_object_object_length(groups), N_GROUPS);
	for (i = 0; i < N_GROUPS; i++) {
		json_object *g;

		snprintf(key, sizeof(key), "company/c%d", i);
		g = member(groups, key);
		ck_assert_msg(g != NULL, "group %s missing", key);
		ck_assert_int_eq(json_object_get_int(member(g, "size")), i);
	}
}

/* The rejected ones: each refused record, and the 400-partial victims. */
static void check_outcomes(run *r, size_t *rejected_events)
{
	size_t i, bad_updates = 0;

	*rejected_events = 0;
	for (i = 0; i < r->n; i++) {
		rec *x = &r->recs[i];
		int refused = strstr(x->text, "\"null\"") != NULL ||
			      strstr(x->text, "\"anon\"") != NULL;

		ck_assert_int_ge(x->outcome, 0);
		if (refused)
			ck_assert_msg(x->outcome == MP_OUT_REJECTED,
				      "refused record %zu was delivered", i);
		if (x->outcome != MP_OUT_REJECTED)
			continue;
		ck_assert_msg(x->message[0] != '\0', "no reason for %zu", i);
		if (x->ep == MP_EP_IMPORT)
			(*rejected_events)++;
		else
			bad_updates++;
		if (!refused)
			ck_assert_msg(x->ep == MP_EP_IMPORT &&
					      strstr(x->message, "fault"),
				      "record %zu rejected: %s", i, x->message);
	}
	ck_assert_uint_eq(bad_updates, BAD_UPDATES);
}

START_TEST(mixed_with_faults)
{
	mpctl *fake = NULL;
	mp_client *c;
	mp_stats st;
	json_object *expect = json_object_new_object(), *state;
	size_t rounds = 0, left, stored, rejected_events, n_refused;
	int dest;
	run r;

	memset(&r, 0, sizeof(r));
	r.recs = calloc(N_EVENTS + N_UPDATES + BAD_UPDATES + N_GROUPS,
			sizeof(rec));
	make_events(&r, base_ms());
	make_updates(&r, expect);
	make_groups(&r);
	ck_assert_int_eq(mpctl_start(&fake, "--threads 4"), 0);
	inject_faults(fake);
	/*
	 * 1 s, well under the slow fault's 1.5 s and well over what a
	 * request takes: a batch the fake stored but answered too late
	 * could meet a 400-partial on its re-send, and the fake would hold
	 * events the client was told were rejected.
	 */
	c = open_client(1000, fake, SECRET, &dest, 500);
	do {
		left = flush_round(c, dest, &r);
		rounds++;
	} while (left > 0 && rounds < 40);
	ck_assert_uint_eq(left, 0);
	mp_client_get_stats(c, &st);
	ck_assert_uint_gt(st.retries, 0);
	ck_assert_int_gt(mpctl_counter(fake, "faults_injected"), 0);
	ck_assert_int_gt(mpctl_counter(fake, "gzip_requests"), 0);
	ck_assert_int_eq(mpctl_counter(fake, "bad_requests"), 0);

	state = fake_state(fake);
	check_outcomes(&r, &rejected_events);
	stored = check_events(&r, state);
	n_refused = (N_EVENTS - 5 + BAD_EVERY - 1) / BAD_EVERY;
	/* the 400-partial fault did reject some, on top of the refused */
	ck_assert_uint_gt(rejected_events, n_refused);
	ck_assert_uint_eq(stored, N_EVENTS - rejected_events);
	check_profiles(state, expect);
	check_groups(state);
	json_object_put(state);
	json_object_put(expect);
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}
END_TEST

/* ---- 401 stops the destination ------------------------------------ */

static void refused_credentials(const char *fake_args, const char *secret)
{
	mpctl *fake = NULL;
	mp_client *c;
	int dest, i;
	run r;
	buf b;

	memset(&r, 0, sizeof(r));
	r.recs = calloc(300, sizeof(rec));
	buf_init(&b);
	for (i = 0; i < 300; i++) {
		char id[MP_INSERT_ID_LEN + 1], n[16];
		const char *parts[1] = { n };

		snprintf(n, sizeof(n), "%d", i);
		mp_insert_id(id, parts, 1);
		buf_reset(&b);
		mp_payload_event(&b, "E", "u1", base_ms() + i, id, NULL);
		add_rec(&r, MP_EP_IMPORT, n, &b);
	}
	buf_free(&b);
	ck_assert_int_eq(mpctl_start(&fake, fake_args), 0);
	c = open_client(5000, fake, secret, &dest, 50);
	ck_assert_uint_eq(flush_round(c, dest, &r), 300);
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(r.recs[i].last, MP_OUT_NOT_DELIVERED);
		ck_assert_str_eq(r.recs[i].message,
				 "destination fake: Mixpanel refused the "
				 "credentials (HTTP 401): check the API "
				 "secret / service account");
	}
	ck_assert_ptr_null(strstr(mp_client_error(c), "wrong"));
	ck_assert_ptr_nonnull(strstr(mp_client_error(c), "HTTP 401"));
	/* stopped at once: no retries, nothing stored */
	ck_assert_int_le(mpctl_counter(fake, "requests_import"), 8);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 0);
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}

START_TEST(api_secret_refused)
{
	refused_credentials(NULL, "wrong-secret");
}
END_TEST

START_TEST(service_account_refused)
{
	refused_credentials("--service-account svc:sa-secret --project-id "
			    "4242",
			    "svc:wrong-sa-secret");
}
END_TEST

START_TEST(service_account_accepted)
{
	mpctl *fake = NULL;
	mp_client *c;
	int dest;
	run r;
	buf b;
	char id[MP_INSERT_ID_LEN + 1];
	const char *parts[1] = { "sa" };

	memset(&r, 0, sizeof(r));
	r.recs = calloc(1, sizeof(rec));
	buf_init(&b);
	mp_insert_id(id, parts, 1);
	mp_payload_event(&b, "E", "u1", base_ms(), id, NULL);
	add_rec(&r, MP_EP_IMPORT, "u1", &b);
	buf_free(&b);
	ck_assert_int_eq(mpctl_start(&fake, "--service-account svc:sa-secret "
					    "--project-id 4242"),
			 0);
	c = open_client(5000, fake, "svc:sa-secret", &dest, 50);
	flush_round(c, dest, &r);
	ck_assert_int_eq(r.recs[0].outcome, MP_OUT_DELIVERED);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 1);
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}
END_TEST

/* ---- /engage status 0: bisection isolates the bad update ---------- */

START_TEST(engage_bisection)
{
	mpctl *fake = NULL;
	mp_client *c;
	json_object *state, *profiles;
	mp_stats st;
	int dest, i;
	run r;
	buf b;

	memset(&r, 0, sizeof(r));
	r.recs = calloc(64, sizeof(rec));
	buf_init(&b);
	for (i = 0; i < 64; i++) {
		char did[16];

		snprintf(did, sizeof(did), i == 37 ? "undefined" : "p%d", i);
		buf_reset(&b);
		mp_payload_engage(&b, TOKEN, did, 1, "$set", "{\"a\":1}");
		add_rec(&r, MP_EP_ENGAGE, "one lane", &b);
	}
	buf_free(&b);
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	c = open_client(5000, fake, NULL, &dest, 64);
	ck_assert_uint_eq(flush_round(c, dest, &r), 64);
	for (i = 0; i < 64; i++) {
		ck_assert_int_eq(r.recs[i].outcome,
				 i == 37 ? MP_OUT_REJECTED : MP_OUT_DELIVERED);
	}
	ck_assert_ptr_nonnull(strstr(r.recs[37].message, "$distinct_id"));
	mp_client_get_stats(c, &st);
	/* 1 + 2 per halving (6 halvings of 64) */
	ck_assert_uint_eq(st.requests, 13);
	state = fake_state(fake);
	profiles = member(state, "profiles");
	ck_assert_int_eq(json_object_object_length(profiles), 63);
	json_object_put(state);
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}
END_TEST

/* ---- the real 413: a request over the fake's 2 MiB cap ------------ */

START_TEST(too_large_splits)
{
	mpctl *fake = NULL;
	mp_client *c;
	mp_stats st;
	mp_options o;
	mp_destination d;
	char err[256], pad[1201];
	int dest, i;
	run r;
	buf b;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	memset(&r, 0, sizeof(r));
	r.recs = calloc(2000, sizeof(rec));
	buf_init(&b);
	for (i = 0; i < 2000; i++) {
		char id[MP_INSERT_ID_LEN + 1], n[16], extra[1300];
		const char *parts[2] = { "big", n };

		snprintf(n, sizeof(n), "%d", i);
		mp_insert_id(id, parts, 2);
		snprintf(extra, sizeof(extra), "{\"pad\":\"%s\"}", pad);
		buf_reset(&b);
		mp_payload_event(&b, "Big", "u1", base_ms() + i, id, extra);
		add_rec(&r, MP_EP_IMPORT, "u1", &b);
	}
	buf_free(&b);
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	memset(&o, 0, sizeof(o));
	o.backoff_base_ms = 20;
	o.jitter_ms = 5;
	c = mp_client_open(&o, err, sizeof(err));
	memset(&d, 0, sizeof(d));
	d.name = "fake";
	d.api_base = mpctl_base_url(fake);
	d.project_token = TOKEN;
	d.max_bytes = 8u << 20; /* above what the fake takes */
	ck_assert_int_eq(mp_client_add_destination(c, &dest, &d), 0);
	flush_round(c, dest, &r);
	for (i = 0; i < 2000; i++)
		ck_assert_int_eq(r.recs[i].outcome, MP_OUT_DELIVERED);
	ck_assert_int_eq(mpctl_counter(fake, "events_stored"), 2000);
	/* The first request was refused as too large, then its halves
	 * went. */
	ck_assert_int_eq(mpctl_counter(fake, "bad_requests"), 1);
	mp_client_get_stats(c, &st);
	ck_assert_uint_eq(st.requests, 3);
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}
END_TEST

/* ---- the stop flag ------------------------------------------------- */

START_TEST(stop_flag_keeps_records)
{
	mpctl *fake = NULL;
	volatile int stop = 1;
	mp_client *c;
	mp_stats st;
	int dest, i;
	run r;
	buf b;

	memset(&r, 0, sizeof(r));
	r.recs = calloc(10, sizeof(rec));
	buf_init(&b);
	for (i = 0; i < 10; i++) {
		buf_reset(&b);
		mp_payload_engage(&b, TOKEN, "p1", 1, "$set", "{\"a\":1}");
		add_rec(&r, MP_EP_ENGAGE, "p1", &b);
	}
	buf_free(&b);
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	c = open_client(5000, fake, NULL, &dest, 50);
	mp_client_set_stop_flag(c, &stop);
	flush_round(c, dest, &r);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(r.recs[i].last, MP_OUT_NOT_DELIVERED);
	mp_client_get_stats(c, &st);
	ck_assert_uint_eq(st.requests, 0);
	stop = 0;
	flush_round(c, dest, &r);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(r.recs[i].outcome, MP_OUT_DELIVERED);
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}
END_TEST

static void *raise_stop(void *flag)
{
	usleep(300 * 1000);
	*(volatile int *)flag = 1;
	return NULL;
}

/* A stop while requests hang: flush gives up on them after a short
 * grace and keeps every record. */
START_TEST(stop_flag_mid_flight)
{
	mpctl *fake = NULL;
	volatile int stop = 0;
	pthread_t th;
	mp_client *c;
	int dest, i;
	run r;
	buf b;

	memset(&r, 0, sizeof(r));
	r.recs = calloc(40, sizeof(rec));
	buf_init(&b);
	for (i = 0; i < 40; i++) {
		char did[16];

		snprintf(did, sizeof(did), "p%d", i);
		buf_reset(&b);
		mp_payload_engage(&b, TOKEN, did, 1, "$set", "{\"a\":1}");
		add_rec(&r, MP_EP_ENGAGE, did, &b);
	}
	buf_free(&b);
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	ck_assert_int_eq(mpctl_fault(fake, "{\"mode\":\"slow\",\"count\":"
					   "100,\"slow_ms\":6000}"),
			 0);
	c = open_client(20000, fake, NULL, &dest, 5);
	mp_client_set_stop_flag(c, &stop);
	ck_assert_int_eq(pthread_create(&th, NULL, raise_stop, (void *)&stop),
			 0);
	flush_round(c, dest, &r);
	pthread_join(th, NULL);
	for (i = 0; i < 40; i++) {
		ck_assert_int_eq(r.recs[i].last, MP_OUT_NOT_DELIVERED);
		ck_assert_ptr_nonnull(strstr(r.recs[i].message, "stopped"));
	}
	mp_client_close(c);
	mpctl_stop(fake);
	run_free(&r);
}
END_TEST

static Suite *delivery_suite(void)
{
	Suite *s = suite_create("mp_delivery");
	TCase *tc = tcase_create("fake");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, mixed_with_faults);
	tcase_add_test(tc, api_secret_refused);
	tcase_add_test(tc, service_account_refused);
	tcase_add_test(tc, service_account_accepted);
	tcase_add_test(tc, engage_bisection);
	tcase_add_test(tc, too_large_splits);
	tcase_add_test(tc, stop_flag_keeps_records);
	tcase_add_test(tc, stop_flag_mid_flight);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(delivery_suite());
	int failed;

	/* Retries are expected here by the thousand: keep the output short.
	 * MPD_DEBUG=1 logs every answer the client reads instead. */
	log_min_level = getenv("MPD_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
