/*
 * fake_mixpanel.c - a strict fake of the Mixpanel ingestion API for tests.
 *
 * Serves /import, /engage, /groups and /track on 127.0.0.1 with
 * libmicrohttpd, validates requests the way the real API is documented to,
 * keeps the accepted data in memory (fake_store.c) and offers control
 * endpoints under /_fake/ to read the state and inject faults, and a log
 * of the Mixpanel requests (GET /_fake/requests: when each arrived, its
 * endpoint, records and answer; the most requests in progress at once).
 *
 * Usage: fake_mixpanel --port-file PATH [--port N] [--token TOK]
 *        [--secret SECRET] [--service-account USER:SECRET --project-id ID]
 *        [--threads N]
 */
#include "fake_store.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>
#include <zlib.h>

#define MAX_BATCH      2000
#define MAX_BODY       2097152
#define RAW_CAP	       (MAX_BODY + 65536)
#define MAX_EVENT_JSON 1048576
#define MAX_PROPS      255
#define MAX_LIST       255
#define MAX_OBJ_DEPTH  3
#define MAX_INSERT_ID  36
#define MIN_EVENT_TIME 31536000.0 /* 1971-01-01T00:00:00Z */
#define MAX_FUTURE_S   3600.0
#define TRACK_WINDOW_S (5.0 * 86400.0)
#define MAX_FAULTS     64
#define MSG_SIZE       256
#define JSON_FLAGS     (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- types ------------------------------------------------------------ */

enum endpoint {
	EP_IMPORT,
	EP_ENGAGE,
	EP_GROUPS,
	EP_TRACK,
	EP_STATE,
	EP_SUMMARY,
	EP_RESET,
	EP_FAULT,
	EP_REQUESTS,
	EP_UNKNOWN
};

enum action { ACT_REPLY, ACT_DROP, ACT_SUSPEND };

enum fault_mode {
	FM_429,
	FM_500,
	FM_502,
	FM_503,
	FM_SLOW,
	FM_DROP,
	FM_PARTIAL,
	FM_413,
	FM_401,
	/* answers that are not Mixpanel's, or that cannot be trusted */
	FM_HTML_200,  /* a proxy's page with status 200 */
	FM_EMPTY_200, /* 200 and no body */
	FM_COUNT_0,   /* /import: code 200 and num_records_imported 0 */
	FM_HTML_400,  /* a proxy's page with status 400 */
	FM_BAD_INDEX, /* /import: 400, failed_records index out of range */
	FM_ECHO	      /* /import: rejects record 0 echoing the credentials */
};

struct config {
	const char *port_file;
	unsigned int port;
	unsigned int threads;
	const char *token;
	const char *secret;
	char *sa_user; /* malloc'd, NULL without --service-account */
	const char *sa_secret;
	const char *project_id;
};

struct fault {
	enum fault_mode mode;
	int endpoint; /* an enum endpoint, or -1 for any */
	long count;   /* requests left; -1 for a rate rule */
	double rate;
	uint64_t rng;
	long retry_after; /* -1: no Retry-After header */
	long slow_ms;
	char index[32]; /* "bad-index": the index given, as JSON text */
};

struct sleeper {
	struct MHD_Connection *conn;
	struct timespec due; /* CLOCK_MONOTONIC */
	int ready;	     /* MHD_suspend_connection() has returned */
	struct sleeper *next;
};

struct server {
	struct config cfg;
	struct fake_store *store;
	struct MHD_Daemon *daemon;
	pthread_mutex_t fault_lock;
	struct fault faults[MAX_FAULTS];
	int nfaults;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
	struct sleeper *sleepers;
	int stopping;
	unsigned long parked;	  /* suspended connections not yet answered */
	pthread_mutex_t log_lock; /* the request log below */
	struct logged *log;
	size_t nlog, caplog;
	int in_flight, max_in_flight; /* Mixpanel requests, headers to end */
	pthread_t timer_thread;
	int timer_started;
};

/* One Mixpanel request in the log. */
struct logged {
	enum endpoint ep;
	int64_t t_ms;	 /* arrival, Unix time in milliseconds */
	long records;	 /* -1 until its body was read */
	unsigned status; /* 0 until answered */
};

/* Per-request state kept by libmicrohttpd between handler calls. */
struct req {
	enum endpoint ep;
	long log_idx; /* its entry in the request log, -1 for none */
	int method_ok;
	char *body;
	size_t len;
	size_t cap;
	size_t total;
	int oom;
	int parked;
};

struct reply {
	unsigned int status;
	char *body; /* malloc'd */
	size_t len;
	const char *ctype;
	long retry_after;
};

/* One Mixpanel request being processed. */
struct mp_req {
	struct server *srv;
	struct MHD_Connection *conn;
	struct req *rq;
	int verbose;
	int partial; /* "400-partial" fault */
	int echo;    /* "echo-secret" fault */
	json_object *batch;
	time_t now;
};

/* Validation result of one event. */
struct ev {
	int ok;
	char field[64];
	char msg[MSG_SIZE];
	const char *insert_id;
	struct fs_event_key key;
	char *json;
	size_t json_len;
};

/* Validation result of one profile update. */
struct upd {
	int ok;
	char msg[MSG_SIZE];
	struct fs_update fu;
};

static const char *const disallowed_ids[] = {
	"00000000-0000-0000-0000-000000000000",
	"anon",
	"anonymous",
	"nil",
	"none",
	"null",
	"n/a",
	"na",
	"undefined",
	"unknown",
	"<nil>",
	"0",
	"-1",
	"true",
	"false",
	"[]",
	"{}"
};

static const char *const profile_ops[] = { "$set",   "$set_once", "$add",
					   "$union", "$append",	  "$remove",
					   "$unset", "$delete" };

static const char *const profile_modifiers[] = {
	"$ip",	 "$ignore_time", "$ignore_alias",
	"$time", "$latitude",	 "$longitude"
};

static const struct {
	const char *path;
	const char *method;
	enum endpoint ep;
} routes[] = {
	{ "/import", "POST", EP_IMPORT },
	{ "/engage", "POST", EP_ENGAGE },
	{ "/groups", "POST", EP_GROUPS },
	{ "/track", "POST", EP_TRACK },
	{ "/_fake/state", "GET", EP_STATE },
	{ "/_fake/summary", "GET", EP_SUMMARY },
	{ "/_fake/reset", "POST", EP_RESET },
	{ "/_fake/fault", "POST", EP_FAULT },
	{ "/_fake/requests", "GET", EP_REQUESTS },
};

static const char *const endpoint_names[] = { "import", "engage", "groups",
					      "track" };

static const struct {
	const char *name;
	enum fault_mode mode;
} fault_modes[] = {
	{ "429", FM_429 },
	{ "500", FM_500 },
	{ "502", FM_502 },
	{ "503", FM_503 },
	{ "slow", FM_SLOW },
	{ "drop", FM_DROP },
	{ "413", FM_413 },
	{ "401", FM_401 },
	{ "400-partial", FM_PARTIAL },
	{ "html-200", FM_HTML_200 },
	{ "empty-200", FM_EMPTY_200 },
	{ "count-0", FM_COUNT_0 },
	{ "html-400", FM_HTML_400 },
	{ "bad-index", FM_BAD_INDEX },
	{ "echo-secret", FM_ECHO },
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small helpers ---------------------------------------------------- */

static int in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(s, list[i]) == 0)
			return 1;
	}
	return 0;
}

static int is_disallowed_id(const char *s)
{
	size_t i;

	for (i = 0; i < COUNT_OF(disallowed_ids); i++) {
		if (strcasecmp(s, disallowed_ids[i]) == 0)
			return 1;
	}
	return 0;
}

static int is_number(json_object *o)
{
	return json_object_is_type(o, json_type_int) ||
	       json_object_is_type(o, json_type_double);
}

static int is_true(json_object *o)
{
	return json_object_is_type(o, json_type_boolean) &&
	       json_object_get_boolean(o);
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	size_t i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

static int utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_seq_len(p + i, n - i);

		if (l == 0)
			return 0;
		i += l;
	}
	return 1;
}

static int utf8_deep_ok(json_object *v);

static int utf8_object_ok(json_object *o)
{
	json_object_object_foreach(o, k, sub)
	{
		if (!utf8_valid(k, strlen(k)) || !utf8_deep_ok(sub))
			return 0;
	}
	return 1;
}

/* Checks every string (and key) inside v. */
static int utf8_deep_ok(json_object *v)
{
	size_t i;

	switch (json_object_get_type(v)) {
	case json_type_string:
		return utf8_valid(json_object_get_string(v),
				  (size_t)json_object_get_string_len(v));
	case json_type_array:
		for (i = 0; i < json_object_array_length(v); i++) {
			if (!utf8_deep_ok(json_object_array_get_idx(v, i)))
				return 0;
		}
		return 1;
	case json_type_object: return utf8_object_ok(v);
	default: return 1;
	}
}

static const char *query(struct MHD_Connection *conn, const char *key)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *header(struct MHD_Connection *conn, const char *key)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, key);
}

static const char *status_text(unsigned int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Request Entity Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

/* Appends "sep + s" to the malloc'd string *buf (for error lists). */
static void str_append(char **buf, const char *sep, const char *s)
{
	size_t old = *buf ? strlen(*buf) : 0;
	size_t add = (old ? strlen(sep) : 0) + strlen(s);
	char *p = realloc(*buf, old + add + 1);

	if (p == NULL)
		return;
	if (old)
		strcpy(p + old, sep);
	else
		p[0] = '\0';
	strcat(p, s);
	*buf = p;
}

/* ---- replies ---------------------------------------------------------- */

static void reply_init(struct reply *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 500;
	r->ctype = "application/json";
	r->retry_after = -1;
}

static void reply_take(struct reply *r, unsigned int status, char *body,
		       const char *ctype)
{
	free(r->body);
	r->status = body ? status : 500;
	r->body = body;
	r->len = body ? strlen(body) : 0;
	r->ctype = ctype;
}

/* Replies with obj serialized, and drops the reference to obj. */
static void reply_json(struct reply *r, unsigned int status, json_object *obj)
{
	const char *s =
		obj ? json_object_to_json_string_ext(obj, JSON_FLAGS) : NULL;

	reply_take(r, status, s ? strdup(s) : NULL, "application/json");
	json_object_put(obj);
}

static void reply_text(struct reply *r, unsigned int status, const char *s)
{
	reply_take(r, status, strdup(s), "text/plain");
}

/* {"code":N,"error":msg,"status":"..."} as /import answers. */
static void reply_code(struct reply *r, unsigned int status, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "code", json_object_new_int((int)status));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "status",
			       json_object_new_string(status_text(status)));
	reply_json(r, status, o);
}

/* {"status":0|1,"error":...} as /engage, /groups and /track answer. */
static void reply_verbose(struct reply *r, unsigned int status, int verbose,
			  const char *err)
{
	json_object *o;

	if (!verbose) {
		reply_text(r, status, err ? "0" : "1");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_int(err ? 0 : 1));
	json_object_object_add(o, "error",
			       err ? json_object_new_string(err) : NULL);
	reply_json(r, status, o);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char num[32];

	resp = MHD_create_response_from_buffer(r->len, r->body,
					       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(r->body);
		return MHD_NO;
	}
	r->body = NULL;
	MHD_add_response_header(resp, "Content-Type", r->ctype);
	if (r->retry_after >= 0) {
		snprintf(num, sizeof(num), "%ld", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", num);
	}
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- request body ----------------------------------------------------- */

static void req_append(struct req *rq, const char *data, size_t size)
{
	size_t cap;
	char *p;

	rq->total += size;
	if (rq->oom || rq->len + size > RAW_CAP)
		return;
	if (rq->len + size > rq->cap) {
		cap = rq->cap ? rq->cap : 16384;
		while (cap < rq->len + size)
			cap *= 2;
		p = realloc(rq->body, cap);
		if (p == NULL) {
			rq->oom = 1;
			return;
		}
		rq->body = p;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, size);
	rq->len += size;
}

/* Returns 0 on success, 1 for an invalid stream, 2 when too large. */
static int gunzip_run(z_stream *zs)
{
	int ret;

	for (;;) {
		ret = inflate(zs, Z_FINISH);
		if (ret != Z_STREAM_END)
			break;
		if (zs->avail_in == 0)
			return zs->total_out > MAX_BODY ? 2 : 0;
		if (inflateReset(zs) != Z_OK)
			return 1;
	}
	return zs->avail_out == 0 ? 2 : 1;
}

/* Inflates a gzip body; same return values as gunzip_run, -1 for OOM. */
static int gunzip(const char *in, size_t inlen, char **out, size_t *outlen)
{
	z_stream zs;
	char *buf = malloc(MAX_BODY + 1);
	int rc = -1;

	*out = NULL;
	if (buf == NULL)
		return -1;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		goto out;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = MAX_BODY + 1;
	rc = gunzip_run(&zs);
	*outlen = MAX_BODY + 1 - zs.avail_out;
	inflateEnd(&zs);
	if (rc == 0) {
		*out = buf;
		buf = NULL;
	}
out:
	free(buf);
	return rc;
}

static json_object *parse_json(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o;

	if (tok == NULL || len == 0 || len > (size_t)INT32_MAX) {
		json_tokener_free(tok);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* ---- faults ----------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z;

	*state += 0x9e3779b97f4a7c15ULL;
	z = *state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int fault_fires(struct fault *f, enum endpoint ep)
{
	double x;

	if (f->endpoint >= 0 && f->endpoint != (int)ep)
		return 0;
	if (f->count >= 0) {
		if (f->count == 0)
			return 0;
		f->count--;
		return 1;
	}
	x = (double)(splitmix64(&f->rng) >> 11) * (1.0 / 9007199254740992.0);
	return x < f->rate;
}

/* Finds the first rule that fires for ep and copies it into out. */
static int fault_pick(struct server *srv, enum endpoint ep, struct fault *out)
{
	int found = 0;
	int i;

	pthread_mutex_lock(&srv->fault_lock);
	for (i = 0; i < srv->nfaults && !found; i++) {
		if (fault_fires(&srv->faults[i], ep)) {
			*out = srv->faults[i];
			found = 1;
		}
	}
	pthread_mutex_unlock(&srv->fault_lock);
	return found;
}

static int json_long(json_object *o, const char *key, long def, long min,
		     long *out)
{
	json_object *v = NULL;

	*out = def;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = (long)json_object_get_int64(v);
	return *out < min ? -1 : 0;
}

static int fault_mode_parse(json_object *o, struct fault *f)
{
	json_object *v = NULL;
	const char *s;
	size_t i;

	if (!json_object_object_get_ex(o, "mode", &v))
		return -1;
	s = json_object_get_string(v);
	for (i = 0; s && i < COUNT_OF(fault_modes); i++) {
		if (strcmp(s, fault_modes[i].name) == 0) {
			f->mode = fault_modes[i].mode;
			return 0;
		}
	}
	return -1;
}

static int fault_endpoint_parse(json_object *o, struct fault *f)
{
	json_object *v = NULL;
	const char *s;
	size_t i;

	f->endpoint = -1;
	if (!json_object_object_get_ex(o, "endpoint", &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	for (i = 0; i < COUNT_OF(endpoint_names); i++) {
		if (strcmp(s, endpoint_names[i]) == 0) {
			f->endpoint = (int)i;
			return 0;
		}
	}
	return -1;
}

static int fault_trigger_parse(json_object *o, struct fault *f)
{
	json_object *c = NULL;
	json_object *r = NULL;
	long seed;

	json_object_object_get_ex(o, "count", &c);
	json_object_object_get_ex(o, "rate", &r);
	if ((c == NULL) == (r == NULL))
		return -1;
	if (json_long(o, "seed", 1, LONG_MIN, &seed) != 0)
		return -1;
	f->rng = (uint64_t)seed;
	if (c != NULL)
		return json_long(o, "count", 0, 1, &f->count);
	f->count = -1;
	f->rate = json_object_get_double(r);
	if (!is_number(r) || !(f->rate >= 0.0 && f->rate <= 1.0))
		return -1;
	return 0;
}

static const char *const fault_keys[] = { "mode",     "count",	     "rate",
					  "endpoint", "retry_after", "slow_ms",
					  "seed",     "index" };

/* The index a "bad-index" answer gives: any JSON scalar, 5000 by default. */
static int fault_index_parse(json_object *o, struct fault *f)
{
	json_object *v = NULL;
	const char *s;

	snprintf(f->index, sizeof(f->index), "5000");
	if (!json_object_object_get_ex(o, "index", &v))
		return 0;
	if (json_object_is_type(v, json_type_object) ||
	    json_object_is_type(v, json_type_array))
		return -1;
	s = json_object_to_json_string_ext(v, JSON_FLAGS);
	if (strlen(s) >= sizeof(f->index))
		return -1;
	snprintf(f->index, sizeof(f->index), "%s", s);
	return 0;
}

/* Faults that only /import answers can carry. */
static int import_only(enum fault_mode m)
{
	return m == FM_PARTIAL || m == FM_COUNT_0 || m == FM_BAD_INDEX ||
	       m == FM_ECHO;
}

static const char *fault_parse(json_object *o, struct fault *f)
{
	memset(f, 0, sizeof(*f));
	if (!json_object_is_type(o, json_type_object))
		return "fault must be a JSON object";
	json_object_object_foreach(o, k, v)
	{
		(void)v;
		if (!in_list(k, fault_keys, COUNT_OF(fault_keys)))
			return "unknown key in fault";
	}
	if (fault_mode_parse(o, f) != 0)
		return "invalid mode";
	if (fault_endpoint_parse(o, f) != 0)
		return "invalid endpoint";
	if (fault_trigger_parse(o, f) != 0)
		return "exactly one of count (>= 1) or rate (0..1) required";
	if (json_long(o, "retry_after", -1, 0, &f->retry_after) != 0)
		return "invalid retry_after";
	if (json_long(o, "slow_ms", 1000, 0, &f->slow_ms) != 0)
		return "invalid slow_ms";
	if (fault_index_parse(o, f) != 0)
		return "invalid index";
	if (import_only(f->mode) && f->endpoint > EP_IMPORT)
		return "this mode applies to import only";
	if (import_only(f->mode))
		f->endpoint = EP_IMPORT;
	return NULL;
}

/* ---- slow fault: parked connections ----------------------------------- */

static void ts_add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

/* Unlinks a ready sleeper that is due (any when stopping); locked. */
static struct sleeper *sleeper_take_due(struct server *srv)
{
	struct sleeper **pp;
	struct sleeper *s;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (pp = &srv->sleepers; *pp != NULL; pp = &(*pp)->next) {
		s = *pp;
		if (s->ready && (srv->stopping || ts_before(&s->due, &now))) {
			*pp = s->next;
			return s;
		}
	}
	return NULL;
}

static void timer_wait(struct server *srv)
{
	const struct timespec *first = NULL;
	struct sleeper *s;

	for (s = srv->sleepers; s != NULL; s = s->next) {
		if (s->ready && (first == NULL || ts_before(&s->due, first)))
			first = &s->due;
	}
	if (first == NULL)
		pthread_cond_wait(&srv->timer_cond, &srv->timer_lock);
	else
		pthread_cond_timedwait(&srv->timer_cond, &srv->timer_lock,
				       first);
}

static void *timer_main(void *arg)
{
	struct server *srv = arg;
	struct sleeper *s;

	pthread_mutex_lock(&srv->timer_lock);
	for (;;) {
		s = sleeper_take_due(srv);
		if (s != NULL) {
			pthread_mutex_unlock(&srv->timer_lock);
			MHD_resume_connection(s->conn);
			free(s);
			pthread_mutex_lock(&srv->timer_lock);
			continue;
		}
		if (srv->stopping && srv->sleepers == NULL)
			break;
		timer_wait(srv);
	}
	pthread_mutex_unlock(&srv->timer_lock);
	return NULL;
}

/*
 * Suspends the connection for ms milliseconds; the handler is called again
 * afterwards and answers 503.  Returns -1 when the server is stopping.
 */
static int park(struct server *srv, struct MHD_Connection *conn, struct req *rq,
		long ms)
{
	struct sleeper *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	s->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &s->due);
	ts_add_ms(&s->due, ms);
	pthread_mutex_lock(&srv->timer_lock);
	if (srv->stopping) {
		pthread_mutex_unlock(&srv->timer_lock);
		free(s);
		return -1;
	}
	s->next = srv->sleepers;
	srv->sleepers = s;
	srv->parked++;
	rq->parked = 1;
	pthread_mutex_unlock(&srv->timer_lock);
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&srv->timer_lock);
	s->ready = 1;
	pthread_cond_signal(&srv->timer_cond);
	pthread_mutex_unlock(&srv->timer_lock);
	return 0;
}

static void unpark(struct server *srv, struct req *rq)
{
	pthread_mutex_lock(&srv->timer_lock);
	if (rq->parked) {
		rq->parked = 0;
		srv->parked--;
	}
	pthread_mutex_unlock(&srv->timer_lock);
}

/* ---- fault application ------------------------------------------------ */

/* What a proxy in front of Mixpanel may answer: its own page. */
static void reply_proxy(struct reply *r, enum fault_mode mode)
{
	if (mode == FM_EMPTY_200) {
		reply_take(r, 200, strdup(""), "text/plain");
		return;
	}
	reply_take(r, mode == FM_HTML_200 ? 200 : 400,
		   strdup(mode == FM_HTML_200
				  ? "<html><body>Welcome to the proxy"
				    "</body></html>"
				  : "<html><head><title>400 Bad Request"
				    "</title></head><body>nginx</body></html>"),
		   "text/html");
}

/* /import answers in Mixpanel's shape that account for nothing stored:
 * a count of 0, or a failed record whose index matches no record. */
static void reply_untrusted(struct reply *r, const struct fault *f)
{
	char body[512];

	if (f->mode == FM_COUNT_0)
		snprintf(body, sizeof(body),
			 "{\"code\":200,\"num_records_imported\":0,"
			 "\"status\":\"OK\"}");
	else
		snprintf(body, sizeof(body),
			 "{\"code\":400,\"error\":\"some data points in "
			 "the request failed validation\",\"failed_records\":"
			 "[{\"index\":%s,\"$insert_id\":\"x\",\"field\":"
			 "\"event\",\"message\":\"bad\"}],"
			 "\"num_records_imported\":0,\"status\":"
			 "\"Bad Request\"}",
			 f->index);
	reply_take(r, f->mode == FM_COUNT_0 ? 200 : 400, strdup(body),
		   "application/json");
}

static void reply_fault(struct reply *r, const struct fault *f)
{
	switch (f->mode) {
	case FM_429:
		reply_code(r, 429,
			   "Project exceeded rate limits. Please "
			   "retry the request with exponential "
			   "backoff.");
		r->retry_after = f->retry_after;
		break;
	case FM_500: reply_code(r, 500, "Internal Server Error"); break;
	case FM_502: reply_code(r, 502, "Bad Gateway"); break;
	case FM_413:
		reply_code(r, 413,
			   "request exceeds max limit of 2097152 "
			   "bytes");
		break;
	case FM_401: reply_code(r, 401, "Invalid credentials"); break;
	case FM_HTML_200:
	case FM_EMPTY_200:
	case FM_HTML_400: reply_proxy(r, f->mode); break;
	case FM_COUNT_0:
	case FM_BAD_INDEX: reply_untrusted(r, f); break;
	default: reply_code(r, 503, "Service Unavailable"); break;
	}
}

static enum action apply_fault(struct mp_req *m, const struct fault *f,
			       struct reply *r)
{
	if (f->mode == FM_DROP)
		return ACT_DROP;
	if (f->mode == FM_SLOW && park(m->srv, m->conn, m->rq, f->slow_ms) == 0)
		return ACT_SUSPEND;
	reply_fault(r, f);
	return ACT_REPLY;
}

/* ---- common body checks ----------------------------------------------- */

static void count_bad(struct server *srv)
{
	fake_store_lock(srv->store);
	fake_store_counters(srv->store)->bad_requests++;
	fake_store_unlock(srv->store);
}

/* Rejects the whole request in the endpoint's error format. */
static void mp_error(struct mp_req *m, struct reply *r, unsigned int status,
		     const char *msg)
{
	count_bad(m->srv);
	if (m->rq->ep == EP_IMPORT || status == 413 || status == 401)
		reply_code(r, status, msg);
	else
		reply_verbose(r, status, m->verbose, msg);
}

static int content_type_ok(struct MHD_Connection *conn)
{
	const char *ct = header(conn, "Content-Type");
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static void count_gzip(struct server *srv)
{
	fake_store_lock(srv->store);
	fake_store_counters(srv->store)->gzip_requests++;
	fake_store_unlock(srv->store);
}

/* Returns 0 for identity, 1 for gzip, -1 (replied) otherwise. */
static int body_encoding(struct mp_req *m, struct reply *r)
{
	const char *ce = header(m->conn, "Content-Encoding");

	if (ce == NULL || *ce == '\0' || strcasecmp(ce, "identity") == 0)
		return 0;
	if (strcasecmp(ce, "gzip") != 0) {
		mp_error(m, r, 400, "unsupported Content-Encoding");
		return -1;
	}
	count_gzip(m->srv);
	if (m->rq->ep == EP_ENGAGE || m->rq->ep == EP_GROUPS) {
		mp_error(m, r, 400, "gzip is not supported");
		return -1;
	}
	return 1;
}

static void error_too_large(struct mp_req *m, struct reply *r)
{
	mp_error(m, r, 413, "request exceeds max limit of 2097152 bytes");
}

/* Returns the uncompressed JSON text (maybe the raw body) or NULL. */
static const char *body_text(struct mp_req *m, struct reply *r, char **tmp,
			     size_t *len)
{
	int gz = body_encoding(m, r);
	int rc;

	*tmp = NULL;
	if (gz < 0)
		return NULL;
	if (m->rq->total > (gz ? RAW_CAP : MAX_BODY)) {
		error_too_large(m, r);
		return NULL;
	}
	*len = m->rq->len;
	if (!gz)
		return m->rq->body ? m->rq->body : "";
	rc = gunzip(m->rq->body, m->rq->len, tmp, len);
	if (rc == 2)
		error_too_large(m, r);
	else if (rc != 0)
		mp_error(m, r, rc < 0 ? 500 : 400, "invalid gzip body");
	return *tmp;
}

/* Parses and checks the JSON array; returns 0, or -1 when replied. */
static int load_batch(struct mp_req *m, struct reply *r)
{
	char *tmp = NULL;
	size_t len = 0;
	const char *text;
	size_t n;

	if (!content_type_ok(m->conn)) {
		mp_error(m, r, 400, "Content-Type must be application/json");
		return -1;
	}
	text = body_text(m, r, &tmp, &len);
	if (text == NULL)
		return -1;
	m->batch = parse_json(text, len);
	free(tmp);
	if (m->batch == NULL) {
		mp_error(m, r, 400, "malformed JSON body");
		return -1;
	}
	n = json_object_is_type(m->batch, json_type_array)
		    ? json_object_array_length(m->batch)
		    : 0;
	if (!json_object_is_type(m->batch, json_type_array))
		mp_error(m, r, 400, "body must be a JSON array");
	else if (n == 0)
		mp_error(m, r, 400, "body must contain at least 1 record");
	else if (n > MAX_BATCH)
		mp_error(m, r, 400, "body exceeds 2000 records");
	return (n >= 1 && n <= MAX_BATCH) ? 0 : -1;
}

/* ---- authentication --------------------------------------------------- */

static int b64_value(int c)
{
	const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789+/";
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(tab, c);
	return p ? (int)(p - tab) : -1;
}

/* Decodes padded base64; returns a malloc'd NUL-terminated string. */
static char *b64_decode(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n / 4 * 3 + 1);
	size_t i;
	size_t o = 0;

	if (out == NULL || n % 4 != 0)
		goto fail;
	for (i = 0; i < n; i += 4) {
		int a = b64_value(s[i]);
		int b = b64_value(s[i + 1]);
		int c = s[i + 2] == '=' ? 0 : b64_value(s[i + 2]);
		int d = s[i + 3] == '=' ? 0 : b64_value(s[i + 3]);
		int pad = (s[i + 2] == '=') + (s[i + 3] == '=');

		if ((a | b | c | d) < 0 || (pad && i + 4 != n) ||
		    (s[i + 2] == '=' && s[i + 3] != '='))
			goto fail;
		out[o++] = (char)(a << 2 | b >> 4);
		if (pad < 2)
			out[o++] = (char)((b & 15) << 4 | c >> 2);
		if (pad < 1)
			out[o++] = (char)((c & 3) << 6 | d);
	}
	out[o] = '\0';
	if (strlen(out) != o)
		goto fail;
	return out;
fail:
	free(out);
	return NULL;
}

static int credentials_ok(const struct config *cfg, const char *user,
			  const char *pass, const char *project)
{
	int project_ok = project == NULL || cfg->project_id == NULL ||
			 strcmp(project, cfg->project_id) == 0;

	if (*pass == '\0')
		return project_ok && (strcmp(user, cfg->secret) == 0 ||
				      strcmp(user, cfg->token) == 0);
	return cfg->sa_user != NULL && project != NULL && project_ok &&
	       strcmp(user, cfg->sa_user) == 0 &&
	       strcmp(pass, cfg->sa_secret) == 0;
}

static int import_auth_ok(struct mp_req *m)
{
	const char *h = header(m->conn, "Authorization");
	char *dec;
	char *colon;
	int ok = 0;

	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	h += 6;
	while (*h == ' ')
		h++;
	dec = b64_decode(h);
	if (dec == NULL)
		return 0;
	colon = strchr(dec, ':');
	if (colon != NULL) {
		*colon = '\0';
		ok = credentials_ok(&m->srv->cfg, dec, colon + 1,
				    query(m->conn, "project_id"));
	}
	free(dec);
	return ok;
}

/* ---- event validation ------------------------------------------------- */

static void __attribute__((format(printf, 3, 4)))
ev_fail(struct ev *e, const char *field, const char *fmt, ...)
{
	va_list ap;

	e->ok = 0;
	snprintf(e->field, sizeof(e->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* Gets a distinct id (string or number) as text; -1 if another type. */
static int id_text(json_object *v, const char **s, size_t *len)
{
	if (json_object_is_type(v, json_type_string)) {
		*s = json_object_get_string(v);
		*len = (size_t)json_object_get_string_len(v);
		return 0;
	}
	if (!is_number(v))
		return -1;
	*s = json_object_get_string(v);
	*len = strlen(*s);
	return 0;
}

static int id_disallowed(json_object *v, const char *s)
{
	double d;

	if (is_number(v)) {
		d = json_object_get_double(v);
		if (d == 0.0 || d == -1.0)
			return 1;
	}
	return is_disallowed_id(s);
}

static const char *check_value(json_object *v, int depth);

static const char *check_array(json_object *v, int depth)
{
	const char *why = NULL;
	size_t i;

	if (json_object_array_length(v) >= MAX_LIST)
		return "lists must have fewer than 255 elements";
	for (i = 0; i < json_object_array_length(v) && why == NULL; i++)
		why = check_value(json_object_array_get_idx(v, i), depth);
	return why;
}

static const char *check_object(json_object *v, int depth)
{
	const char *why = NULL;

	if (depth > MAX_OBJ_DEPTH)
		return "objects may be nested at most 3 levels deep";
	if (json_object_object_length(v) >= MAX_PROPS)
		return "objects must have fewer than 255 keys";
	json_object_object_foreach(v, k, sub)
	{
		if (why == NULL && !utf8_valid(k, strlen(k)))
			why = "string should be valid utf8";
		if (why == NULL)
			why = check_value(sub, depth);
	}
	return why;
}

/* Checks a property value nested depth objects deep; NULL when valid. */
static const char *check_value(json_object *v, int depth)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		if (!utf8_valid(json_object_get_string(v),
				(size_t)json_object_get_string_len(v)))
			return "string should be valid utf8";
		return NULL;
	case json_type_array: return check_array(v, depth);
	case json_type_object: return check_object(v, depth + 1);
	default: return NULL;
	}
}

static int check_shape(json_object *o, struct ev *e, json_object **props)
{
	json_object *name = NULL;

	if (!json_object_is_type(o, json_type_object)) {
		ev_fail(e, "", "event must be a JSON object");
		return -1;
	}
	json_object_object_get_ex(o, "event", &name);
	json_object_object_get_ex(o, "properties", props);
	if (!json_object_is_type(name, json_type_string) ||
	    json_object_get_string_len(name) == 0)
		ev_fail(e, "event", "'event' must be a non-empty string");
	else if (!utf8_valid(json_object_get_string(name),
			     (size_t)json_object_get_string_len(name)))
		ev_fail(e, "event", "string should be valid utf8");
	else if (!json_object_is_type(*props, json_type_object))
		ev_fail(e, "properties", "'properties' must be an object");
	else
		return 0;
	return -1;
}

static int check_time(struct mp_req *m, json_object *props, struct ev *e)
{
	const char *f = "properties.time";
	json_object *t = NULL;
	double v;
	double secs;

	if (!json_object_object_get_ex(props, "time", &t) || t == NULL) {
		ev_fail(e, f, "'properties.time' is required");
		return -1;
	}
	v = json_object_get_double(t);
	if (!is_number(t) || !isfinite(v)) {
		ev_fail(e, f,
			"'properties.time' is invalid: must be "
			"specified as seconds since epoch");
		return -1;
	}
	secs = v > 1e11 ? v / 1000.0 : v;
	e->key.time_ms = (int64_t)llround(v > 1e11 ? v : v * 1000.0);
	if (secs < MIN_EVENT_TIME)
		ev_fail(e, f,
			"'properties.time' is invalid: must be after "
			"1971-01-01");
	else if (secs > (double)m->now + MAX_FUTURE_S)
		ev_fail(e, f,
			"'properties.time' is invalid: must not be "
			"more than 1 hour in the future");
	else if (m->rq->ep == EP_TRACK &&
		 secs < (double)m->now - TRACK_WINDOW_S)
		ev_fail(e, f,
			"'properties.time' is invalid: /track accepts "
			"the last 5 days only");
	return e->msg[0] ? -1 : 0;
}

static int check_distinct_id(json_object *props, struct ev *e)
{
	const char *f = "properties.distinct_id";
	json_object *d = NULL;
	const char *s = "";
	size_t len = 0;

	if (!json_object_object_get_ex(props, "distinct_id", &d) || d == NULL) {
		ev_fail(e, f, "'properties.distinct_id' is required");
		return -1;
	}
	if (id_text(d, &s, &len) != 0)
		ev_fail(e, f, "'properties.distinct_id' must be a string");
	else if (!utf8_valid(s, len))
		ev_fail(e, f, "string should be valid utf8");
	else if (len > 0 && id_disallowed(d, s))
		ev_fail(e, f,
			"'properties.distinct_id' is invalid: "
			"disallowed value '%s'",
			s);
	e->key.distinct_id = s;
	e->key.distinct_id_len = len;
	return e->msg[0] ? -1 : 0;
}

static int insert_id_chars_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	}
	return 1;
}

static int check_insert_id(struct mp_req *m, json_object *props, struct ev *e)
{
	const char *f = "properties.$insert_id";
	json_object *v = NULL;
	const char *s = "";
	size_t len = 0;

	json_object_object_get_ex(props, "$insert_id", &v);
	if (v == NULL && m->rq->ep == EP_TRACK)
		return 0;
	if (v == NULL) {
		ev_fail(e, f, "'properties.$insert_id' is required");
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		ev_fail(e, f, "'properties.$insert_id' must be a string");
		return -1;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len < 1 || len > MAX_INSERT_ID || !insert_id_chars_ok(s, len))
		ev_fail(e, f,
			"'properties.$insert_id' is invalid: must be "
			"1-36 characters of [A-Za-z0-9-]");
	else if (is_disallowed_id(s))
		ev_fail(e, f,
			"'properties.$insert_id' is invalid: "
			"disallowed value '%s'",
			s);
	e->key.insert_id = s;
	e->key.insert_id_len = len;
	return e->msg[0] ? -1 : 0;
}

static int check_token(struct mp_req *m, json_object *props, struct ev *e)
{
	json_object *t = NULL;

	if (m->rq->ep != EP_TRACK)
		return 0;
	json_object_object_get_ex(props, "token", &t);
	if (json_object_is_type(t, json_type_string) &&
	    strcmp(json_object_get_string(t), m->srv->cfg.token) == 0)
		return 0;
	ev_fail(e, "properties.token",
		"'properties.token' is missing or "
		"invalid");
	return -1;
}

static int check_props(json_object *props, struct ev *e)
{
	char field[64];
	const char *why;

	if (json_object_object_length(props) >= MAX_PROPS) {
		ev_fail(e, "properties",
			"events must have fewer than 255 "
			"properties");
		return -1;
	}
	json_object_object_foreach(props, k, v)
	{
		why = utf8_valid(k, strlen(k)) ? check_value(v, 0)
					       : "string should be valid utf8";
		if (why != NULL) {
			snprintf(field, sizeof(field), "properties.%s", k);
			ev_fail(e, field, "%s", why);
			return -1;
		}
	}
	return 0;
}

/* Serializes {"event":..,"properties":..} into e->json. */
static int serialize_event(json_object *o, json_object *props, struct ev *e)
{
	json_object *name = json_object_object_get(o, "event");
	size_t nl;
	size_t pl;
	const char *ns =
		json_object_to_json_string_length(name, JSON_FLAGS, &nl);
	const char *ps =
		json_object_to_json_string_length(props, JSON_FLAGS, &pl);

	if (ns == NULL || ps == NULL)
		return -1;
	e->json_len = nl + pl + strlen("{\"event\":,\"properties\":}");
	if (e->json_len > MAX_EVENT_JSON) {
		ev_fail(e, "", "event exceeds 1MB of uncompressed JSON");
		return -1;
	}
	e->json = malloc(e->json_len + 1);
	if (e->json == NULL)
		return -1;
	snprintf(e->json, e->json_len + 1, "{\"event\":%s,\"properties\":%s}",
		 ns, ps);
	return 0;
}

/*
 * $create_alias (Mixpanel's "Create Alias" reference, also accepted by
 * /import): properties.alias is required, a new distinct_id "to be merged
 * with the original distinct_id", so a valid id other than distinct_id.
 */
static int check_alias(json_object *props, struct ev *e)
{
	const char *f = "properties.alias";
	json_object *a = NULL;
	const char *s = "";
	size_t len = 0;

	if (strcmp(e->key.event, "$create_alias") != 0)
		return 0;
	if (!json_object_object_get_ex(props, "alias", &a) || a == NULL)
		ev_fail(e, f, "'properties.alias' is required");
	else if (!json_object_is_type(a, json_type_string) ||
		 id_text(a, &s, &len) != 0 || len == 0)
		ev_fail(e, f, "'properties.alias' must be a non-empty string");
	else if (id_disallowed(a, s))
		ev_fail(e, f,
			"'properties.alias' is invalid: disallowed value '%s'",
			s);
	else if (len == e->key.distinct_id_len &&
		 memcmp(s, e->key.distinct_id, len) == 0)
		ev_fail(e, f, "'properties.alias' equals the distinct_id");
	return e->msg[0] ? -1 : 0;
}

static void check_event(struct mp_req *m, json_object *o, struct ev *e)
{
	json_object *props = NULL;
	json_object *iid = NULL;

	e->ok = 1;
	if (check_shape(o, e, &props) != 0)
		return;
	json_object_object_get_ex(props, "$insert_id", &iid);
	if (json_object_is_type(iid, json_type_string))
		e->insert_id = json_object_get_string(iid);
	e->key.event =
		json_object_get_string(json_object_object_get(o, "event"));
	e->key.event_len = strlen(e->key.event);
	if (check_token(m, props, e) || check_time(m, props, e) ||
	    check_distinct_id(props, e) || check_alias(props, e) ||
	    check_insert_id(m, props, e) || check_props(props, e))
		return;
	if (serialize_event(o, props, e) != 0 && e->ok)
		ev_fail(e, "", "out of memory");
}

/* ---- request log ------------------------------------------------------ */

/* Adds rq, a Mixpanel request that has just been read, to the log. */
static void log_arrival(struct server *srv, struct req *rq)
{
	struct timespec now;
	struct logged *l;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&srv->log_lock);
	if (srv->nlog == srv->caplog) {
		size_t cap = srv->caplog ? srv->caplog * 2 : 256;

		l = realloc(srv->log, cap * sizeof(*l));
		if (l == NULL) {
			pthread_mutex_unlock(&srv->log_lock);
			return;
		}
		srv->log = l;
		srv->caplog = cap;
	}
	l = &srv->log[srv->nlog];
	l->ep = rq->ep;
	l->t_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	l->records = -1;
	l->status = 0;
	rq->log_idx = (long)srv->nlog++;
	pthread_mutex_unlock(&srv->log_lock);
}

/* Sets the records or (records < 0) the answer of rq's log entry. */
static void log_outcome(struct server *srv, const struct req *rq, long records,
			unsigned status)
{
	pthread_mutex_lock(&srv->log_lock);
	if (rq->log_idx >= 0 && (size_t)rq->log_idx < srv->nlog) {
		if (records >= 0)
			srv->log[rq->log_idx].records = records;
		else
			srv->log[rq->log_idx].status = status;
	}
	pthread_mutex_unlock(&srv->log_lock);
}

/* Counts a Mixpanel request in progress (delta 1) or ended (-1). */
static void log_in_flight(struct server *srv, const struct req *rq, int delta)
{
	if (rq->ep >= EP_STATE)
		return;
	pthread_mutex_lock(&srv->log_lock);
	srv->in_flight += delta;
	if (srv->in_flight > srv->max_in_flight)
		srv->max_in_flight = srv->in_flight;
	pthread_mutex_unlock(&srv->log_lock);
}

/* Empties the log; the requests in progress stay counted. */
static void log_reset(struct server *srv)
{
	pthread_mutex_lock(&srv->log_lock);
	srv->nlog = 0;
	srv->max_in_flight = srv->in_flight;
	pthread_mutex_unlock(&srv->log_lock);
}

/* GET /_fake/requests: {"max_in_flight": N, "requests": [{"endpoint",
 * "t_ms", "records", "status"}, ...]} in order of arrival. */
static void control_requests(struct server *srv, struct reply *r)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();
	size_t i;

	pthread_mutex_lock(&srv->log_lock);
	json_object_object_add(o, "max_in_flight",
			       json_object_new_int(srv->max_in_flight));
	for (i = 0; i < srv->nlog; i++) {
		const struct logged *l = &srv->log[i];
		json_object *e = json_object_new_object();

		json_object_object_add(
			e, "endpoint",
			json_object_new_string(endpoint_names[l->ep]));
		json_object_object_add(e, "t_ms",
				       json_object_new_int64(l->t_ms));
		json_object_object_add(e, "records",
				       json_object_new_int64(l->records));
		json_object_object_add(e, "status",
				       json_object_new_int((int)l->status));
		json_object_array_add(a, e);
	}
	pthread_mutex_unlock(&srv->log_lock);
	json_object_object_add(o, "requests", a);
	reply_json(r, 200, o);
}

/* ---- /import and /track ----------------------------------------------- */

static void store_events(struct mp_req *m, struct ev *evs, size_t n)
{
	struct fs_counters *c;
	size_t i;

	fake_store_lock(m->srv->store);
	c = fake_store_counters(m->srv->store);
	c->records_received += n;
	log_outcome(m->srv, m->rq, (long)n, 0);
	for (i = 0; i < n; i++) {
		if (evs[i].ok &&
		    fake_store_add_event(m->srv->store, &evs[i].key,
					 evs[i].json, evs[i].json_len) < 0)
			ev_fail(&evs[i], "", "out of memory");
		if (!evs[i].ok)
			c->records_rejected++;
	}
	fake_store_unlock(m->srv->store);
}

static json_object *failed_record(const struct ev *e, size_t i)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "index", json_object_new_int64((int64_t)i));
	json_object_object_add(
		o, "$insert_id",
		json_object_new_string(e->insert_id ? e->insert_id : ""));
	json_object_object_add(o, "field", json_object_new_string(e->field));
	json_object_object_add(o, "message", json_object_new_string(e->msg));
	return o;
}

/* error: the answer's reason when some failed (NULL: Mixpanel's usual) */
static void reply_import(struct reply *r, const struct ev *evs, size_t n,
			 const char *error)
{
	json_object *o = json_object_new_object();
	json_object *failed = json_object_new_array();
	size_t ok = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (evs[i].ok)
			ok++;
		else
			json_object_array_add(failed,
					      failed_record(&evs[i], i));
	}
	json_object_object_add(o, "code",
			       json_object_new_int(ok == n ? 200 : 400));
	if (ok != n)
		json_object_object_add(
			o, "error",
			json_object_new_string(
				error ? error
				      : "some data points in the request "
					"failed validation"));
	if (ok != n)
		json_object_object_add(o, "failed_records", failed);
	else
		json_object_put(failed);
	json_object_object_add(o, "num_records_imported",
			       json_object_new_int64((int64_t)ok));
	json_object_object_add(
		o, "status",
		json_object_new_string(ok == n ? "OK" : "Bad Request"));
	reply_json(r, ok == n ? 200 : 400, o);
}

static void reply_track(struct mp_req *m, struct reply *r, const struct ev *evs,
			size_t n)
{
	char line[MSG_SIZE + 128];
	char *err = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (evs[i].ok)
			continue;
		snprintf(line, sizeof(line), "event %zu: %s", i, evs[i].msg);
		str_append(&err, "; ", line);
	}
	reply_verbose(r, 200, m->verbose, err);
	free(err);
}

/* A server that quotes the request's credentials back in its reason: the
 * Authorization header as sent and the secret it holds. */
static void echo_credentials(struct mp_req *m, struct ev *e)
{
	const char *h = header(m->conn, "Authorization");
	const char *b64 = h && strncasecmp(h, "Basic ", 6) == 0 ? h + 6 : "";
	char *dec = b64_decode(b64);
	char *colon = dec ? strchr(dec, ':') : NULL;
	const char *secret = "";

	if (colon != NULL)
		secret = colon[1] ? colon + 1 : dec;
	if (colon != NULL && !colon[1])
		*colon = '\0';
	ev_fail(e, "properties", "header %s, secret %s", h ? h : "", secret);
	free(dec);
}

static void process_events(struct mp_req *m, struct reply *r)
{
	size_t n = json_object_array_length(m->batch);
	struct ev *evs = calloc(n, sizeof(*evs));
	size_t i;

	if (evs == NULL) {
		reply_code(r, 500, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		check_event(m, json_object_array_get_idx(m->batch, i), &evs[i]);
		if (m->partial && i % 3 == 0 && evs[i].ok)
			ev_fail(&evs[i], "properties.fake",
				"rejected by fault injection");
		if (m->echo && i == 0 && evs[i].ok)
			echo_credentials(m, &evs[i]);
	}
	store_events(m, evs, n);
	if (m->rq->ep == EP_IMPORT)
		reply_import(r, evs, n, m->echo && n > 0 ? evs[0].msg : NULL);
	else
		reply_track(m, r, evs, n);
	for (i = 0; i < n; i++)
		free(evs[i].json);
	free(evs);
}

static void handle_import(struct mp_req *m, struct reply *r)
{
	const char *strict = query(m->conn, "strict");

	if (!import_auth_ok(m)) {
		mp_error(m, r, 401, "Invalid credentials");
		return;
	}
	if (strict == NULL || strcmp(strict, "1") != 0) {
		mp_error(m, r, 400, "strict=1 required by this fake");
		return;
	}
	if (load_batch(m, r) == 0)
		process_events(m, r);
}

static void handle_track(struct mp_req *m, struct reply *r)
{
	if (load_batch(m, r) == 0)
		process_events(m, r);
}

/* ---- /engage and /groups ---------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
upd_fail(struct upd *u, const char *fmt, ...)
{
	va_list ap;

	if (!u->ok)
		return;
	u->ok = 0;
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof(u->msg), fmt, ap);
	va_end(ap);
}

/* Reads a required id field (string or number) of an update. */
static int upd_id(json_object *o, const char *key, struct upd *u,
		  const char **s, size_t *len)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	if (v == NULL || id_text(v, s, len) != 0)
		upd_fail(u, "%s is missing or not a string", key);
	else if (*len == 0 || id_disallowed(v, *s))
		upd_fail(u, "%s is invalid: disallowed value '%s'", key, *s);
	else if (!utf8_valid(*s, *len))
		upd_fail(u, "%s: string should be valid utf8", key);
	return u->ok ? 0 : -1;
}

static int upd_ids(struct mp_req *m, json_object *o, struct upd *u)
{
	json_object *k = NULL;

	u->fu.kind = m->rq->ep == EP_GROUPS ? FS_GROUP : FS_PROFILE;
	if (u->fu.kind == FS_PROFILE)
		return upd_id(o, "$distinct_id", u, &u->fu.id, &u->fu.id_len);
	json_object_object_get_ex(o, "$group_key", &k);
	if (!json_object_is_type(k, json_type_string) ||
	    json_object_get_string_len(k) == 0) {
		upd_fail(u, "$group_key is missing or not a string");
		return -1;
	}
	u->fu.id = json_object_get_string(k);
	u->fu.id_len = (size_t)json_object_get_string_len(k);
	return upd_id(o, "$group_id", u, &u->fu.group_id, &u->fu.group_id_len);
}

static int object_values_ok(json_object *v, json_type want)
{
	json_object_object_foreach(v, k, sub)
	{
		(void)k;
		if (want == json_type_double && !is_number(sub))
			return 0;
		if (want == json_type_array &&
		    !json_object_is_type(sub, json_type_array))
			return 0;
	}
	return 1;
}

static int union_items_ok(json_object *v)
{
	size_t i;

	json_object_object_foreach(v, k, list)
	{
		(void)k;
		for (i = 0; i < json_object_array_length(list); i++) {
			json_object *it = json_object_array_get_idx(list, i);

			if (!json_object_is_type(it, json_type_string) &&
			    !is_number(it))
				return 0;
		}
	}
	return 1;
}

static int unset_ok(json_object *v)
{
	size_t i;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return 0;
	for (i = 0; i < json_object_array_length(v); i++) {
		if (!json_object_is_type(json_object_array_get_idx(v, i),
					 json_type_string))
			return 0;
	}
	return 1;
}

static void upd_check_value(struct upd *u)
{
	const char *op = u->fu.op;
	json_object *v = u->fu.value;

	if (strcmp(op, "$delete") == 0)
		return;
	if (strcmp(op, "$unset") == 0) {
		if (!unset_ok(v))
			upd_fail(u, "$unset must be a non-empty array of "
				    "property names");
		return;
	}
	if (!json_object_is_type(v, json_type_object))
		upd_fail(u, "%s must be an object", op);
	else if (strcmp(op, "$add") == 0 &&
		 !object_values_ok(v, json_type_double))
		upd_fail(u, "$add values must be numbers");
	else if (strcmp(op, "$union") == 0 &&
		 (!object_values_ok(v, json_type_array) || !union_items_ok(v)))
		upd_fail(u, "$union values must be lists of strings or "
			    "numbers");
	if (u->ok && !utf8_deep_ok(v))
		upd_fail(u, "%s: string should be valid utf8", op);
}

static void upd_check_modifier(struct upd *u, const char *k, json_object *v)
{
	int boolean = json_object_is_type(v, json_type_boolean);

	if ((strcmp(k, "$ignore_time") == 0 ||
	     strcmp(k, "$ignore_alias") == 0) &&
	    !boolean)
		upd_fail(u, "%s must be a boolean", k);
	else if (strcmp(k, "$ip") == 0 &&
		 !json_object_is_type(v, json_type_string) && !is_number(v))
		upd_fail(u, "$ip must be a string");
	else if ((strcmp(k, "$time") == 0 || strcmp(k, "$latitude") == 0 ||
		  strcmp(k, "$longitude") == 0) &&
		 !is_number(v))
		upd_fail(u, "%s must be a number", k);
}

static const char *const id_keys[] = { "$token", "$distinct_id", "$group_key",
				       "$group_id" };

/* Classifies the top-level keys; sets the operation. */
static void upd_scan_keys(struct mp_req *m, json_object *o, struct upd *u)
{
	int groups = m->rq->ep == EP_GROUPS;
	int nops = 0;

	json_object_object_foreach(o, k, v)
	{
		if (in_list(k, profile_ops, COUNT_OF(profile_ops))) {
			nops++;
			u->fu.op = k;
			u->fu.value = v;
		} else if (in_list(k, profile_modifiers,
				   COUNT_OF(profile_modifiers))) {
			upd_check_modifier(u, k, v);
		} else if (!in_list(k, id_keys, groups ? 4 : 2) ||
			   (groups && strcmp(k, "$distinct_id") == 0)) {
			upd_fail(u, "unknown top-level key '%s'", k);
		}
	}
	if (nops != 1)
		upd_fail(u, "exactly one operation required, found %d", nops);
	else if (groups && (strcmp(u->fu.op, "$add") == 0 ||
			    strcmp(u->fu.op, "$append") == 0))
		upd_fail(u, "%s is not supported for group profiles", u->fu.op);
}

static int ip_disabled(json_object *ip)
{
	if (is_number(ip))
		return json_object_get_double(ip) == 0.0;
	return json_object_is_type(ip, json_type_string) &&
	       strcmp(json_object_get_string(ip), "0") == 0;
}

static void upd_flags(struct mp_req *m, json_object *o, struct upd *u)
{
	const char *qip = query(m->conn, "ip");
	json_object *ip = NULL;
	int query_geo = qip == NULL || strcmp(qip, "0") != 0;

	json_object_object_get_ex(o, "$ip", &ip);
	u->fu.set_last_seen =
		!is_true(json_object_object_get(o, "$ignore_time"));
	u->fu.now = m->now;
	if (m->rq->ep != EP_ENGAGE)
		return;
	u->fu.geolocate = ip != NULL ? !ip_disabled(ip) : query_geo;
}

static void check_update(struct mp_req *m, json_object *o, struct upd *u)
{
	json_object *tok = NULL;
	size_t len;

	u->ok = 1;
	if (!json_object_is_type(o, json_type_object)) {
		upd_fail(u, "update must be a JSON object");
		return;
	}
	json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	if (len > MAX_EVENT_JSON) {
		upd_fail(u, "an update is at most 1 MB, this one is %zu bytes",
			 len);
		return;
	}
	json_object_object_get_ex(o, "$token", &tok);
	if (!json_object_is_type(tok, json_type_string) ||
	    strcmp(json_object_get_string(tok), m->srv->cfg.token) != 0) {
		upd_fail(u, "$token is missing or invalid");
		return;
	}
	if (upd_ids(m, o, u) != 0)
		return;
	upd_scan_keys(m, o, u);
	if (u->ok)
		upd_check_value(u);
	upd_flags(m, o, u);
}

static void apply_updates(struct mp_req *m, struct upd *us, size_t n)
{
	struct fs_counters *c;
	size_t i;
	int rc;

	fake_store_lock(m->srv->store);
	c = fake_store_counters(m->srv->store);
	c->records_received += n;
	log_outcome(m->srv, m->rq, (long)n, 0);
	for (i = 0; i < n; i++) {
		rc = us[i].ok ? fake_store_apply_update(m->srv->store,
							&us[i].fu, us[i].msg,
							sizeof(us[i].msg))
			      : 1;
		if (rc < 0)
			snprintf(us[i].msg, sizeof(us[i].msg), "out of memory");
		us[i].ok = rc == 0;
		if (rc == 0)
			c->updates_applied++;
		else
			c->records_rejected++;
	}
	fake_store_unlock(m->srv->store);
}

static void handle_profiles(struct mp_req *m, struct reply *r)
{
	char line[MSG_SIZE + 128];
	struct upd *us;
	char *err = NULL;
	size_t n;
	size_t i;

	if (load_batch(m, r) != 0)
		return;
	n = json_object_array_length(m->batch);
	us = calloc(n, sizeof(*us));
	if (us == NULL) {
		reply_verbose(r, 500, m->verbose, "out of memory");
		return;
	}
	for (i = 0; i < n; i++)
		check_update(m, json_object_array_get_idx(m->batch, i), &us[i]);
	apply_updates(m, us, n);
	for (i = 0; i < n; i++) {
		if (us[i].ok)
			continue;
		snprintf(line, sizeof(line), "update %zu: %s", i, us[i].msg);
		str_append(&err, "; ", line);
	}
	reply_verbose(r, 200, m->verbose, err);
	free(err);
	free(us);
}

/* ---- dispatch --------------------------------------------------------- */

static void count_request(struct server *srv, enum endpoint ep)
{
	struct fs_counters *c;

	fake_store_lock(srv->store);
	c = fake_store_counters(srv->store);
	if (ep == EP_IMPORT)
		c->requests_import++;
	else if (ep == EP_ENGAGE)
		c->requests_engage++;
	else if (ep == EP_GROUPS)
		c->requests_groups++;
	else
		c->requests_track++;
	fake_store_unlock(srv->store);
}

static int take_fault(struct mp_req *m, struct fault *f)
{
	if (!fault_pick(m->srv, m->rq->ep, f))
		return 0;
	fake_store_lock(m->srv->store);
	fake_store_counters(m->srv->store)->faults_injected++;
	fake_store_unlock(m->srv->store);
	return 1;
}

static enum action mixpanel(struct server *srv, struct MHD_Connection *conn,
			    struct req *rq, struct reply *r)
{
	struct mp_req m = { srv, conn, rq, 0, 0, 0, NULL, 0 };
	const char *verbose = query(conn, "verbose");
	struct fault f;

	memset(&f, 0, sizeof(f));
	m.verbose = verbose != NULL && strcmp(verbose, "1") == 0;
	m.now = time(NULL);
	count_request(srv, rq->ep);
	log_arrival(srv, rq);
	if (!rq->method_ok) {
		mp_error(&m, r, 405, "method must be POST");
		return ACT_REPLY;
	}
	if (take_fault(&m, &f)) {
		if (f.mode != FM_PARTIAL && f.mode != FM_ECHO)
			return apply_fault(&m, &f, r);
		m.partial = f.mode == FM_PARTIAL;
		m.echo = f.mode == FM_ECHO;
	}
	if (rq->oom)
		reply_code(r, 500, "out of memory");
	else if (rq->ep == EP_IMPORT)
		handle_import(&m, r);
	else if (rq->ep == EP_TRACK)
		handle_track(&m, r);
	else
		handle_profiles(&m, r);
	json_object_put(m.batch);
	return ACT_REPLY;
}

/* ---- control endpoints ------------------------------------------------ */

static void control_dump(struct server *srv, int state, struct reply *r)
{
	size_t len = 0;
	char *s;

	fake_store_lock(srv->store);
	s = state ? fake_store_state_json(srv->store, &len)
		  : fake_store_summary_json(srv->store, &len);
	fake_store_unlock(srv->store);
	reply_take(r, 200, s, "application/json");
	r->len = len;
}

static void control_reset(struct server *srv, struct reply *r)
{
	pthread_mutex_lock(&srv->fault_lock);
	srv->nfaults = 0;
	pthread_mutex_unlock(&srv->fault_lock);
	fake_store_lock(srv->store);
	fake_store_reset(srv->store);
	fake_store_unlock(srv->store);
	log_reset(srv);
	reply_json(r, 200, json_tokener_parse("{\"status\":\"ok\"}"));
}

static void control_error(struct reply *r, unsigned int status, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	reply_json(r, status, o);
}

static void control_fault(struct server *srv, struct req *rq, struct reply *r)
{
	json_object *o = parse_json(rq->body, rq->len);
	const char *err;
	struct fault f;
	int n = -1;

	err = o ? fault_parse(o, &f) : "malformed JSON body";
	json_object_put(o);
	pthread_mutex_lock(&srv->fault_lock);
	if (err == NULL && srv->nfaults < MAX_FAULTS) {
		srv->faults[srv->nfaults++] = f;
		n = srv->nfaults;
	}
	pthread_mutex_unlock(&srv->fault_lock);
	if (err != NULL || n < 0) {
		control_error(r, 400, err ? err : "too many fault rules");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "rules", json_object_new_int(n));
	reply_json(r, 200, o);
}

static void control(struct server *srv, struct req *rq, struct reply *r)
{
	if (!rq->method_ok)
		control_error(r, 405, "method not allowed");
	else if (rq->total > RAW_CAP || rq->oom)
		control_error(r, 413, "body too large");
	else if (rq->ep == EP_STATE || rq->ep == EP_SUMMARY)
		control_dump(srv, rq->ep == EP_STATE, r);
	else if (rq->ep == EP_RESET)
		control_reset(srv, r);
	else if (rq->ep == EP_REQUESTS)
		control_requests(srv, r);
	else
		control_fault(srv, rq, r);
}

static enum action dispatch(struct server *srv, struct MHD_Connection *conn,
			    struct req *rq, struct reply *r)
{
	if (rq->ep == EP_UNKNOWN) {
		control_error(r, 404, "not found");
		return ACT_REPLY;
	}
	if (rq->ep >= EP_STATE) {
		control(srv, rq, r);
		return ACT_REPLY;
	}
	return mixpanel(srv, conn, rq, r);
}

/* ---- libmicrohttpd callbacks ------------------------------------------ */

static enum MHD_Result req_start(struct server *srv, const char *url,
				 const char *method, void **con_cls)
{
	struct req *rq = calloc(1, sizeof(*rq));
	size_t i;

	if (rq == NULL)
		return MHD_NO;
	rq->ep = EP_UNKNOWN;
	rq->log_idx = -1;
	for (i = 0; i < COUNT_OF(routes); i++) {
		if (strcmp(url, routes[i].path) == 0) {
			rq->ep = routes[i].ep;
			rq->method_ok = strcmp(method, routes[i].method) == 0;
		}
	}
	log_in_flight(srv, rq, 1);
	*con_cls = rq;
	return MHD_YES;
}

static enum MHD_Result req_finish(struct server *srv,
				  struct MHD_Connection *conn, struct req *rq)
{
	struct reply r;
	enum action act = ACT_REPLY;

	reply_init(&r);
	if (rq->parked) {
		unpark(srv, rq);
		reply_code(&r, 503, "Service Unavailable (slow fault)");
	} else {
		act = dispatch(srv, conn, rq, &r);
	}
	if (act != ACT_REPLY) {
		free(r.body);
		return act == ACT_DROP ? MHD_NO : MHD_YES;
	}
	log_outcome(srv, rq, -1, r.status);
	return send_reply(conn, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;

	(void)version;
	if (rq == NULL)
		return req_start(cls, url, method, con_cls);
	if (*upload_size != 0) {
		req_append(rq, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	return req_finish(cls, conn, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)conn;
	(void)toe;
	if (rq == NULL)
		return;
	unpark(cls, rq);
	log_in_flight(cls, rq, -1);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

/* ---- command line ----------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: fake_mixpanel --port-file PATH [--port N] "
		"[--token TOK] [--secret SECRET]\n"
		"       [--service-account USER:SECRET --project-id ID] "
		"[--threads N]\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
		return -1;
	*out = (unsigned int)v;
	return 0;
}

static int parse_service_account(const char *s, struct config *cfg)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL || colon == s || colon[1] == '\0')
		return -1;
	free(cfg->sa_user);
	cfg->sa_user = strndup(s, (size_t)(colon - s));
	cfg->sa_secret = colon + 1;
	return cfg->sa_user ? 0 : -1;
}

static int parse_option(int c, const char *arg, struct config *cfg)
{
	switch (c) {
	case 'f': cfg->port_file = arg; return 0;
	case 'p': return parse_uint(arg, 65535, &cfg->port);
	case 't': cfg->token = arg; return *arg ? 0 : -1;
	case 's': cfg->secret = arg; return *arg ? 0 : -1;
	case 'a': return parse_service_account(arg, cfg);
	case 'i': cfg->project_id = arg; return *arg ? 0 : -1;
	case 'n':
		return parse_uint(arg, 256, &cfg->threads) == 0 &&
				       cfg->threads > 0
			       ? 0
			       : -1;
	default: return -1;
	}
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "port-file", required_argument, NULL, 'f' },
		{ "port", required_argument, NULL, 'p' },
		{ "token", required_argument, NULL, 't' },
		{ "secret", required_argument, NULL, 's' },
		{ "service-account", required_argument, NULL, 'a' },
		{ "project-id", required_argument, NULL, 'i' },
		{ "threads", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	cfg->threads = 2;
	cfg->token = "test-token";
	cfg->secret = "test-secret";
	for (;;) {
		c = getopt_long(argc, argv, "", opts, NULL);
		if (c == -1)
			break;
		if (parse_option(c, optarg, cfg) != 0)
			return -1;
	}
	if (optind != argc || cfg->port_file == NULL ||
	    (cfg->sa_user == NULL) != (cfg->project_id == NULL))
		return -1;
	return 0;
}

/* ---- server lifecycle ------------------------------------------------- */

static int write_port_file(const char *path, unsigned int port)
{
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	FILE *f = NULL;
	int rc = -1;

	if (tmp == NULL)
		goto out;
	snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (f == NULL)
		goto out;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		goto out;
	rc = rename(tmp, path);
out:
	if (rc != 0 && tmp != NULL)
		unlink(tmp);
	free(tmp);
	return rc;
}

static unsigned int raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1000;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur > 65536)
		return 65000;
	return rl.rlim_cur > 200 ? (unsigned int)rl.rlim_cur - 100 : 100;
}

static int server_init(struct server *srv)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&srv->fault_lock, NULL);
	pthread_mutex_init(&srv->log_lock, NULL);
	pthread_mutex_init(&srv->timer_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	srv->store = fake_store_new();
	if (srv->store == NULL)
		return -1;
	if (pthread_create(&srv->timer_thread, NULL, timer_main, srv) != 0)
		return -1;
	srv->timer_started = 1;
	return 0;
}

/* libmicrohttpd's error log, minus the line every "drop" fault causes. */
static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	const char *drop = "Application reported internal error";
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (strncmp(buf, drop, strlen(drop)) != 0)
		fprintf(stderr, "fake_mixpanel: %s", buf);
}

static int server_start(struct server *srv)
{
	struct sockaddr_in addr;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	/* One thread means no pool; MHD warns about a pool size of 0 or 1. */
	enum MHD_OPTION pool_opt = srv->cfg.threads > 1
					   ? MHD_OPTION_THREAD_POOL_SIZE
					   : MHD_OPTION_CONNECTION_TIMEOUT;

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)srv->cfg.port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->daemon = MHD_start_daemon(
		flags, (uint16_t)srv->cfg.port, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&addr, pool_opt,
		srv->cfg.threads > 1 ? srv->cfg.threads : 0U,
		MHD_OPTION_CONNECTION_LIMIT, raise_fd_limit(),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
		MHD_OPTION_CONNECTION_TIMEOUT, 0U, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, srv, MHD_OPTION_END);
	if (srv->daemon == NULL) {
		fprintf(stderr, "fake_mixpanel: cannot listen on port %u\n",
			srv->cfg.port);
		return -1;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0)
		return -1;
	srv->cfg.port = info->port;
	return 0;
}

/* Wakes every parked connection and waits for them to be answered. */
static void server_unpark_all(struct server *srv)
{
	unsigned long left = 1;
	int i;

	pthread_mutex_lock(&srv->timer_lock);
	srv->stopping = 1;
	pthread_cond_signal(&srv->timer_cond);
	pthread_mutex_unlock(&srv->timer_lock);
	if (srv->timer_started)
		pthread_join(srv->timer_thread, NULL);
	srv->timer_started = 0;
	for (i = 0; i < 500 && left != 0; i++) {
		pthread_mutex_lock(&srv->timer_lock);
		left = srv->parked;
		pthread_mutex_unlock(&srv->timer_lock);
		if (left != 0)
			usleep(10000);
	}
}

static void server_stop(struct server *srv)
{
	server_unpark_all(srv);
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	srv->daemon = NULL;
	fake_store_free(srv->store);
	pthread_cond_destroy(&srv->timer_cond);
	pthread_mutex_destroy(&srv->timer_lock);
	pthread_mutex_destroy(&srv->fault_lock);
	pthread_mutex_destroy(&srv->log_lock);
	free(srv->log);
	free(srv->cfg.sa_user);
}

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	static struct server srv;
	sigset_t set;
	int sig = 0;
	int rc = 1;

	if (parse_args(argc, argv, &srv.cfg) != 0) {
		usage();
		free(srv.cfg.sa_user);
		return 2;
	}
	block_signals(&set);
	if (server_init(&srv) != 0 || server_start(&srv) != 0)
		goto out;
	if (write_port_file(srv.cfg.port_file, srv.cfg.port) != 0) {
		perror("fake_mixpanel: port file");
		goto out;
	}
	sigwait(&set, &sig);
	rc = 0;
out:
	server_stop(&srv);
	return rc;
}
