/*
 * check_fake_mixpanel.c - Check tests of tests/fake_mixpanel.
 *
 * Each test starts the fake as a child process (found next to this binary,
 * or at $FAKE_MIXPANEL), talks to it with libcurl and stops it in the
 * fixture teardown.  The child gets PR_SET_PDEATHSIG, so a test that dies
 * cannot leave it running.  $FAKE_MIXPANEL_WRAPPER (e.g. "valgrind -q
 * --error-exitcode=99") runs the fake under a wrapper; the teardown then
 * also asserts that the fake exited with status 0.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <json-c/json_pointer.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_ARGS	 32
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS	 30000
#define SECRET_AUTH	 "test-secret:"
#define IMPORT		 "/import?strict=1"
#define JSON_CT		 "application/json"

struct resp {
	CURLcode cc;
	long status;
	char *body;
	size_t len;
	char retry_after[32];
	json_object *json;
};

static pid_t fake_pid = -1;
static int fake_port;
static char fake_dir[64];
static char fake_port_file[PATH_MAX];
static CURL *curl;

/* ---- process control -------------------------------------------------- */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fake_binary(char *out, size_t size)
{
	char self[PATH_MAX];
	const char *env = getenv("FAKE_MIXPANEL");
	ssize_t n;

	if (env != NULL) {
		snprintf(out, size, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	snprintf(out, size, "%s/fake_mixpanel", dirname(self));
}

/* argv: optional wrapper words, the binary, --port-file, extra args. */
static void build_argv(char **argv, char *words, char *bin,
		       const char *const *extra)
{
	const char *wrapper = getenv("FAKE_MIXPANEL_WRAPPER");
	char *save = NULL;
	char *w;
	int n = 0;

	snprintf(words, PATH_MAX, "%s", wrapper ? wrapper : "");
	for (w = strtok_r(words, " ", &save); w && n < MAX_ARGS / 2;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n++] = bin;
	argv[n++] = (char *)"--port-file";
	argv[n++] = fake_port_file;
	while (extra != NULL && *extra != NULL && n < MAX_ARGS - 1)
		argv[n++] = (char *)*extra++;
	argv[n] = NULL;
}

static void exec_child(char **argv, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(126);
	execvp(argv[0], argv);
	_exit(127);
}

static int read_port_file(void)
{
	FILE *f = fopen(fake_port_file, "r");
	int port = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &port) != 1)
		port = 0;
	fclose(f);
	return port;
}

static void wait_for_port(void)
{
	long deadline = now_ms() + START_TIMEOUT_MS;
	int status;

	while (now_ms() < deadline) {
		fake_port = read_port_file();
		if (fake_port > 0)
			return;
		ck_assert_msg(waitpid(fake_pid, &status, WNOHANG) == 0,
			      "fake_mixpanel exited during start-up");
		usleep(10000);
	}
	ck_abort_msg("fake_mixpanel did not write its port file");
}

static void fake_start(const char *const *extra)
{
	char *argv[MAX_ARGS];
	char words[PATH_MAX];
	char bin[PATH_MAX];
	pid_t parent = getpid();

	snprintf(fake_dir, sizeof(fake_dir), "/tmp/check_fake_mp.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake_dir));
	snprintf(fake_port_file, sizeof(fake_port_file), "%s/port", fake_dir);
	fake_binary(bin, sizeof(bin));
	build_argv(argv, words, bin, extra);
	fake_pid = fork();
	ck_assert_int_ge(fake_pid, 0);
	if (fake_pid == 0)
		exec_child(argv, parent);
	wait_for_port();
}

/* Stops the fake; returns its wait status (-1 if it had to be killed). */
static int fake_stop(void)
{
	long deadline = now_ms() + STOP_TIMEOUT_MS;
	int status = -1;
	pid_t pid = fake_pid;

	if (pid <= 0)
		return 0;
	fake_pid = -1;
	kill(pid, SIGTERM);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			status = -1;
			break;
		}
		usleep(10000);
	}
	unlink(fake_port_file);
	rmdir(fake_dir);
	return status;
}

static void setup(void)
{
	curl = curl_easy_init();
	ck_assert_ptr_nonnull(curl);
	fake_start(NULL);
}

static void teardown(void)
{
	int status = fake_stop();

	curl_easy_cleanup(curl);
	curl = NULL;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fake_mixpanel did not exit cleanly (status %d)", status);
}

/* ---- HTTP ------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	char *p = realloc(r->body, r->len + size * n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + r->len, data, size * n);
	r->body = p;
	r->len += size * n;
	r->body[r->len] = '\0';
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = size * n;
	const char *name = "Retry-After:";

	if (len > strlen(name) && strncasecmp(data, name, strlen(name)) == 0)
		sscanf(data + strlen(name), " %31[0-9]", r->retry_after);
	return len;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	json_object_put(r->json);
	memset(r, 0, sizeof(*r));
}

struct request {
	const char *method;
	const char *path;
	const char *userpwd;
	const char *ctype;
	const char *encoding;
	const void *body;
	size_t len;
};

static void http(const struct request *q, struct resp *r)
{
	struct curl_slist *hdrs = NULL;
	char buf[256];

	memset(r, 0, sizeof(*r));
	curl_easy_reset(curl);
	snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", fake_port, q->path);
	curl_easy_setopt(curl, CURLOPT_URL, buf);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	if (q->body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)q->len);
	}
	if (q->userpwd != NULL)
		curl_easy_setopt(curl, CURLOPT_USERPWD, q->userpwd);
	snprintf(buf, sizeof(buf), "Content-Type: %s",
		 q->ctype ? q->ctype : JSON_CT);
	hdrs = curl_slist_append(hdrs, buf);
	if (q->encoding != NULL) {
		snprintf(buf, sizeof(buf), "Content-Encoding: %s", q->encoding);
		hdrs = curl_slist_append(hdrs, buf);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	r->cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	if (r->body != NULL)
		r->json = json_tokener_parse(r->body);
}

static void post(const char *path, const char *userpwd, const char *body,
		 struct resp *r)
{
	struct request q = { "POST", path, userpwd,	NULL,
			     NULL,   body, strlen(body) };

	http(&q, r);
	ck_assert_int_eq(r->cc, CURLE_OK);
}

static void get(const char *path, struct resp *r)
{
	struct request q = { "GET", path, NULL, NULL, NULL, NULL, 0 };

	http(&q, r);
	ck_assert_int_eq(r->cc, CURLE_OK);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(r->json);
}

/* json pointer lookup that fails the test when the path is missing. */
static json_object *jp(json_object *o, const char *path)
{
	json_object *res = NULL;

	ck_assert_msg(json_pointer_get(o, path, &res) == 0, "missing %s in %s",
		      path, json_object_to_json_string(o));
	return res;
}

static int jp_exists(json_object *o, const char *path)
{
	json_object *res = NULL;

	return json_pointer_get(o, path, &res) == 0;
}

static int64_t jp_int(json_object *o, const char *path)
{
	return json_object_get_int64(jp(o, path));
}

static const char *jp_str(json_object *o, const char *path)
{
	return json_object_get_string(jp(o, path));
}

static int64_t counter(const char *name)
{
	struct resp r;
	char path[128];
	int64_t v;

	get("/_fake/summary", &r);
	snprintf(path, sizeof(path), "/%s", name);
	v = jp_int(r.json, path);
	resp_free(&r);
	return v;
}

/* Returns the state; the caller releases it with json_object_put(). */
static json_object *state(void)
{
	struct resp r;
	json_object *s;

	get("/_fake/state", &r);
	s = json_object_get(r.json);
	resp_free(&r);
	return s;
}

static size_t events_stored(void)
{
	json_object *s = state();
	size_t n = json_object_array_length(jp(s, "/events"));

	json_object_put(s);
	return n;
}

static void add_fault(const char *json)
{
	struct resp r;

	post("/_fake/fault", NULL, json, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}

/* ---- payload builders ------------------------------------------------- */

static char *event_json(const char *event, const char *did, double t,
			const char *iid)
{
	char *s = NULL;
	int n = asprintf(&s,
			 "{\"event\":\"%s\",\"properties\":{\"time\":%.0f,"
			 "\"distinct_id\":\"%s\",\"$insert_id\":\"%s\","
			 "\"n\":1}}",
			 event, t, did, iid);

	ck_assert_int_gt(n, 0);
	return s;
}

/* Builds "[e0,e1,...]" from n malloc'd items, freeing them. */
static char *array_of(char **items, size_t n)
{
	size_t len = 3;
	size_t i;
	char *s;

	for (i = 0; i < n; i++)
		len += strlen(items[i]) + 1;
	s = malloc(len);
	ck_assert_ptr_nonnull(s);
	strcpy(s, "[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, items[i]);
		free(items[i]);
	}
	strcat(s, "]");
	return s;
}

static char *events_batch(size_t n, const char *prefix)
{
	char **items = calloc(n, sizeof(*items));
	double now = (double)time(NULL);
	char iid[64];
	char *s;
	size_t i;

	ck_assert_ptr_nonnull(items);
	for (i = 0; i < n; i++) {
		snprintf(iid, sizeof(iid), "%s-%zu", prefix, i);
		items[i] = event_json("e", "user-1", now - (double)i, iid);
	}
	s = array_of(items, n);
	free(items);
	return s;
}

static void import_ok(const char *body, int64_t imported)
{
	struct resp r;

	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jp_int(r.json, "/code"), 200);
	ck_assert_int_eq(jp_int(r.json, "/num_records_imported"), imported);
	ck_assert_str_eq(jp_str(r.json, "/status"), "OK");
	resp_free(&r);
}

static char *gzip_text(const char *text, size_t *out_len)
{
	z_stream zs;
	size_t cap = strlen(text) + 1024;
	char *out = malloc(cap);

	ck_assert_ptr_nonnull(out);
	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
				      Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)text;
	zs.avail_in = (uInt)strlen(text);
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/* ---- /import ---------------------------------------------------------- */

START_TEST(test_import_valid_and_dedup)
{
	char *body = events_batch(3, "dedup");
	json_object *s;

	import_ok(body, 3);
	ck_assert_uint_eq(events_stored(), 3);
	import_ok(body, 3);
	ck_assert_uint_eq(events_stored(), 3);
	ck_assert_int_eq(counter("duplicates"), 3);
	ck_assert_int_eq(counter("events_stored"), 3);
	s = state();
	ck_assert_str_eq(jp_str(s, "/events/0/event"), "e");
	ck_assert_str_eq(jp_str(s, "/events/2/properties/$insert_id"),
			 "dedup-2");
	json_object_put(s);
	free(body);
}
END_TEST

START_TEST(test_import_dedup_ms_and_latest_wins)
{
	double now = (double)time(NULL);
	char buf[512];
	json_object *s;

	snprintf(buf, sizeof(buf),
		 "[{\"event\":\"a\",\"properties\":{\"time\":%.0f,"
		 "\"distinct_id\":\"u\",\"$insert_id\":\"x1\",\"v\":1}},"
		 "{\"event\":\"b\",\"properties\":{\"time\":%.0f,"
		 "\"distinct_id\":\"u\",\"$insert_id\":\"x2\",\"v\":1}}]",
		 now, now);
	import_ok(buf, 2);
	/* Same key, time in ms, new property value: replaces the copy. */
	snprintf(buf, sizeof(buf),
		 "[{\"event\":\"a\",\"properties\":{\"time\":%.0f,"
		 "\"distinct_id\":\"u\",\"$insert_id\":\"x1\",\"v\":2}}]",
		 now * 1000.0);
	import_ok(buf, 1);
	s = state();
	ck_assert_uint_eq(json_object_array_length(jp(s, "/events")), 2);
	ck_assert_str_eq(jp_str(s, "/events/0/event"), "a");
	ck_assert_int_eq(jp_int(s, "/events/0/properties/v"), 2);
	ck_assert_int_eq(jp_int(s, "/counters/duplicates"), 1);
	json_object_put(s);
}
END_TEST

static void check_failed(json_object *j, int i, int64_t index,
			 const char *field)
{
	char path[64];

	snprintf(path, sizeof(path), "/failed_records/%d/index", i);
	ck_assert_int_eq(jp_int(j, path), index);
	snprintf(path, sizeof(path), "/failed_records/%d/field", i);
	ck_assert_str_eq(jp_str(j, path), field);
	snprintf(path, sizeof(path), "/failed_records/%d/message", i);
	ck_assert(strlen(jp_str(j, path)) > 0);
}

START_TEST(test_import_partial_failure)
{
	double now = (double)time(NULL);
	char *items[5];
	char *body;
	struct resp r;

	items[0] = event_json("ok", "u1", now, "good-0");
	items[1] = event_json("ok", "u1", now, "bad insert id!");
	items[2] = event_json("ok", "null", now, "good-2");
	ck_assert_int_gt(asprintf(&items[3],
				  "{\"event\":\"ok\",\"properties"
				  "\":{\"distinct_id\":\"u1\",\"$insert_id\""
				  ":\"good-3\"}}"),
			 0);
	items[4] = event_json("ok", "", now, "good-4");
	body = array_of(items, 5);
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(jp_int(r.json, "/code"), 400);
	ck_assert_str_eq(jp_str(r.json, "/error"),
			 "some data points in the request failed validation");
	ck_assert_str_eq(jp_str(r.json, "/status"), "Bad Request");
	ck_assert_int_eq(jp_int(r.json, "/num_records_imported"), 2);
	ck_assert_uint_eq(
		json_object_array_length(jp(r.json, "/failed_records")), 3);
	check_failed(r.json, 0, 1, "properties.$insert_id");
	check_failed(r.json, 1, 2, "properties.distinct_id");
	check_failed(r.json, 2, 3, "properties.time");
	ck_assert_str_eq(jp_str(r.json, "/failed_records/1/$insert_id"),
			 "good-2");
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 2);
	ck_assert_int_eq(counter("records_rejected"), 3);
	free(body);
}
END_TEST

/* Posts one event (given as JSON) and expects it rejected on field. */
static void expect_rejected(const char *event, const char *field)
{
	char *body = NULL;
	struct resp r;

	ck_assert_int_gt(asprintf(&body, "[%s]", event), 0);
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_msg(r.status == 400, "accepted: %s", event);
	check_failed(r.json, 0, 0, field);
	ck_assert_int_eq(jp_int(r.json, "/num_records_imported"), 0);
	resp_free(&r);
	free(body);
}

static char *props_event(const char *props)
{
	char *s = NULL;

	ck_assert_int_gt(
		asprintf(&s, "{\"event\":\"e\",\"properties\":{%s}}", props),
		0);
	return s;
}

static void __attribute__((format(printf, 2, 3)))
reject_props(const char *field, const char *fmt, ...)
{
	char props[512];
	va_list ap;
	char *ev;

	va_start(ap, fmt);
	vsnprintf(props, sizeof(props), fmt, ap);
	va_end(ap);
	ev = props_event(props);
	expect_rejected(ev, field);
	free(ev);
}

START_TEST(test_import_validation_rules)
{
	double now = (double)time(NULL);
	const char *tf = "properties.time";
	const char *df = "properties.distinct_id";
	const char *inf = "properties.$insert_id";

	reject_props(inf, "\"time\":%.0f,\"distinct_id\":\"u\"", now);
	reject_props(inf,
		     "\"time\":%.0f,\"distinct_id\":\"u\",\"$insert_id\":"
		     "\"0123456789012345678901234567890123456\"",
		     now);
	reject_props(inf,
		     "\"time\":%.0f,\"distinct_id\":\"u\","
		     "\"$insert_id\":\"Undefined\"",
		     now);
	reject_props(inf,
		     "\"time\":%.0f,\"distinct_id\":\"u\","
		     "\"$insert_id\":1",
		     now);
	reject_props(df,
		     "\"time\":%.0f,\"distinct_id\":\"ANONYMOUS\","
		     "\"$insert_id\":\"a\"",
		     now);
	reject_props(df,
		     "\"time\":%.0f,\"distinct_id\":-1,"
		     "\"$insert_id\":\"a\"",
		     now);
	reject_props(df, "\"time\":%.0f,\"$insert_id\":\"a\"", now);
	reject_props(df,
		     "\"time\":%.0f,\"distinct_id\":\"00000000-0000-"
		     "0000-0000-000000000000\",\"$insert_id\":\"a\"",
		     now);
	reject_props(tf,
		     "\"time\":%.0f,\"distinct_id\":\"u\","
		     "\"$insert_id\":\"a\"",
		     31535999.0);
	reject_props(tf,
		     "\"time\":%.0f,\"distinct_id\":\"u\","
		     "\"$insert_id\":\"a\"",
		     now + 7200.0);
	reject_props(tf,
		     "\"time\":\"%.0f\",\"distinct_id\":\"u\","
		     "\"$insert_id\":\"a\"",
		     now);
	reject_props("properties.bad",
		     "\"time\":%.0f,\"distinct_id\":\"u\","
		     "\"$insert_id\":\"a\",\"bad\":\"\\u00e9\xff\"",
		     now);
	reject_props("properties.deep",
		     "\"time\":%.0f,\"distinct_id\":\"u\","
		     "\"$insert_id\":\"a\",\"deep\":{\"b\":{\"c\":{\"d\":{}}}}",
		     now);
	expect_rejected("{\"event\":\"\",\"properties\":{}}", "event");
	expect_rejected("{\"event\":\"e\",\"properties\":[]}", "properties");
	ck_assert_uint_eq(events_stored(), 0);
}
END_TEST

/* $create_alias needs an alias: a valid id other than distinct_id. */
START_TEST(test_import_create_alias)
{
	const char *bad[] = { "", ",\"alias\":\"\"", ",\"alias\":\"null\"",
			      ",\"alias\":\"anon-1\"", ",\"alias\":7" };
	char *ev = NULL, *body = NULL;
	size_t i;
	long now = (long)time(NULL);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_gt(
			asprintf(&ev,
				 "{\"event\":\"$create_alias\",\"properties\":{"
				 "\"distinct_id\":\"anon-1\",\"time\":%ld,"
				 "\"$insert_id\":\"a%zu\"%s}}",
				 now, i, bad[i]),
			0);
		expect_rejected(ev, "properties.alias");
		free(ev);
	}
	ck_assert_int_gt(
		asprintf(&body,
			 "[{\"event\":\"$create_alias\",\"properties\":{"
			 "\"distinct_id\":\"anon-1\",\"alias\":\"u1\","
			 "\"time\":%ld,\"$insert_id\":\"ok\"}}]",
			 now),
		0);
	import_ok(body, 1);
	free(body);
}
END_TEST

START_TEST(test_import_nesting_allowed)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "[{\"event\":\"e\",\"properties\":{"
		 "\"time\":%ld,\"distinct_id\":\"\",\"$insert_id\":\"n1\","
		 "\"deep\":{\"b\":{\"c\":{\"d\":[1,\"x\"]}}}}}]",
		 (long)time(NULL));
	import_ok(buf, 1);
}
END_TEST

START_TEST(test_import_too_many_properties)
{
	char *props = malloc(255 * 16 + 256);
	size_t len;
	char *ev;
	int i;

	ck_assert_ptr_nonnull(props);
	len = (size_t)sprintf(props,
			      "\"time\":%ld,\"distinct_id\":\"u\","
			      "\"$insert_id\":\"a\"",
			      (long)time(NULL));
	for (i = 0; i < 252; i++)
		len += (size_t)sprintf(props + len, ",\"p%d\":%d", i, i);
	ev = props_event(props);
	expect_rejected(ev, "properties");
	free(ev);
	free(props);
}
END_TEST

START_TEST(test_import_batch_limits)
{
	char *body = events_batch(2001, "lim");
	struct resp r;

	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(jp_int(r.json, "/code"), 400);
	ck_assert_str_eq(jp_str(r.json, "/status"), "Bad Request");
	resp_free(&r);
	free(body);
	post(IMPORT, SECRET_AUTH, "[]", &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	post(IMPORT, SECRET_AUTH, "[{\"event\":", &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	post(IMPORT, SECRET_AUTH, "{\"event\":\"e\"}", &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 0);
	ck_assert_int_eq(counter("bad_requests"), 4);
	body = events_batch(2000, "max");
	import_ok(body, 2000);
	free(body);
}
END_TEST

START_TEST(test_import_too_large)
{
	size_t n = 2097152 + 1;
	char *body = malloc(n + 1);
	struct resp r;

	ck_assert_ptr_nonnull(body);
	memset(body, ' ', n);
	body[0] = '[';
	body[n - 1] = ']';
	body[n] = '\0';
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 413);
	ck_assert_str_eq(r.body,
			 "{\"code\":413,\"error\":\"request exceeds "
			 "max limit of 2097152 bytes\",\"status\":\"Request "
			 "Entity Too Large\"}");
	resp_free(&r);
	free(body);
}
END_TEST

START_TEST(test_import_auth)
{
	char *body = events_batch(1, "auth");
	struct resp r;

	post(IMPORT, "wrong:", body, &r);
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(r.body, "{\"code\":401,\"error\":\"Invalid "
				 "credentials\",\"status\":\"Unauthorized\"}");
	resp_free(&r);
	post(IMPORT, "test-secret:x", body, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	post(IMPORT, NULL, body, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	post("/import", SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(jp_str(r.json, "/error"),
			 "strict=1 required by this fake");
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 0);
	post(IMPORT, "test-token:", body, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	free(body);
}
END_TEST

START_TEST(test_import_service_account)
{
	static const char *const args[] = { "--service-account",
					    "sa.user:sa-secret",
					    "--project-id",
					    "42",
					    "--token",
					    "tok2",
					    NULL };
	char *body = events_batch(1, "sa");
	struct resp r;

	ck_assert_int_eq(WEXITSTATUS(fake_stop()), 0);
	fake_start(args);
	post(IMPORT, "sa.user:sa-secret", body, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	post(IMPORT "&project_id=41", "sa.user:sa-secret", body, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	post(IMPORT "&project_id=42", "sa.user:other", body, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	post(IMPORT "&project_id=42", "test-token:", body, &r);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	post(IMPORT "&project_id=42", "sa.user:sa-secret", body, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	post(IMPORT, "tok2:", body, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	free(body);
}
END_TEST

START_TEST(test_gzip)
{
	char *body = events_batch(5, "gz");
	size_t len;
	char *gz = gzip_text(body, &len);
	struct request q = {
		"POST", IMPORT, SECRET_AUTH, NULL, "gzip", gz, len
	};
	const char *upd = "[{\"$token\":\"test-token\",\"$distinct_id\":"
			  "\"u\",\"$set\":{\"a\":1}}]";
	struct resp r;

	http(&q, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jp_int(r.json, "/num_records_imported"), 5);
	resp_free(&r);
	free(gz);
	gz = gzip_text(upd, &len);
	q.path = "/engage?verbose=1&ip=0";
	q.userpwd = NULL;
	q.body = gz;
	q.len = len;
	http(&q, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(jp_int(r.json, "/status"), 0);
	ck_assert_str_eq(jp_str(r.json, "/error"), "gzip is not supported");
	resp_free(&r);
	ck_assert_int_eq(counter("gzip_requests"), 2);
	ck_assert_int_eq(counter("profiles"), 0);
	free(gz);
	free(body);
}
END_TEST

/* A batch that would be imported as JSON is refused as text/plain. */
START_TEST(test_content_type)
{
	char *body = events_batch(1, "ct");
	struct request q = { "POST", IMPORT, SECRET_AUTH, "text/plain",
			     NULL,   body,   strlen(body) };
	struct resp r;

	http(&q, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_nonnull(strstr(jp_str(r.json, "/error"), "Content-Type"));
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 0);
	q.ctype = "application/json";
	http(&q, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 1);
	free(body);
}
END_TEST

/* ---- /engage and /groups ---------------------------------------------- */

static void engage(const char *path, const char *body, int status,
		   const char *error_part)
{
	struct resp r;

	post(path, NULL, body, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jp_int(r.json, "/status"), status);
	if (error_part == NULL)
		ck_assert(json_object_is_type(jp(r.json, "/error"),
					      json_type_null));
	else
		ck_assert_msg(strstr(jp_str(r.json, "/error"), error_part),
			      "error '%s' lacks '%s'", jp_str(r.json, "/error"),
			      error_part);
	resp_free(&r);
}

#define ENGAGE "/engage?verbose=1&ip=0"
#define TOK    "\"$token\":\"test-token\""

START_TEST(test_engage_operations)
{
	json_object *s;

	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u1\",\"$set\":{\"a\":1,"
	       "\"b\":\"x\",\"l\":[\"p\"],\"c\":0}},{" TOK ",\"$distinct_id\":"
	       "\"u1\",\"$union\":{\"l\":[\"p\",\"q\"]},\"$ignore_time\":true}"
	       ",{" TOK ",\"$distinct_id\":\"u1\",\"$unset\":[\"b\"]}]",
	       1, NULL);
	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u1\",\"$add\":{\"c\":2,"
	       "\"d\":1.5}},{" TOK ",\"$distinct_id\":\"u1\",\"$set_once\":"
	       "{\"a\":9,\"e\":\"once\"}},{" TOK ",\"$distinct_id\":\"u1\","
	       "\"$append\":{\"l\":\"p\"}},{" TOK ",\"$distinct_id\":\"u1\","
	       "\"$remove\":{\"l\":\"q\"}}]",
	       1, NULL);
	s = state();
	ck_assert_int_eq(jp_int(s, "/profiles/u1/a"), 1);
	ck_assert(!jp_exists(s, "/profiles/u1/b"));
	ck_assert_int_eq(jp_int(s, "/profiles/u1/c"), 2);
	ck_assert_double_eq(json_object_get_double(jp(s, "/profiles/u1/d")),
			    1.5);
	ck_assert_str_eq(jp_str(s, "/profiles/u1/e"), "once");
	ck_assert_str_eq(json_object_to_json_string(jp(s, "/profiles/u1/l")),
			 "[ \"p\", \"p\" ]");
	ck_assert(!jp_exists(s, "/profiles/u1/$city"));
	ck_assert(jp_exists(s, "/profiles/u1/$last_seen"));
	json_object_put(s);
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"u1\",\"$delete\":\"\"}]",
	       1, NULL);
	ck_assert_int_eq(counter("profiles"), 0);
	ck_assert_int_eq(counter("updates_applied"), 8);
}
END_TEST

/* Mixpanel takes no update over 1 MB; the one beside it is applied. */
START_TEST(test_engage_update_over_1_mb)
{
	size_t n = 1100 * 1000, head;
	char *body = malloc(n + 256);
	json_object *s;

	head = (size_t)sprintf(body, "[{" TOK ",\"$distinct_id\":\"big\","
				     "\"$set\":{\"blob\":\"");
	memset(body + head, 'x', n);
	strcpy(body + head + n, "\"}},{" TOK ",\"$distinct_id\":\"small\","
				"\"$set\":{\"a\":1}}]");
	engage(ENGAGE, body, 0, "at most 1 MB");
	s = state();
	ck_assert(!jp_exists(s, "/profiles/big"));
	ck_assert_int_eq(jp_int(s, "/profiles/small/a"), 1);
	json_object_put(s);
	free(body);
}
END_TEST

START_TEST(test_engage_invalid_update)
{
	json_object *s;

	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u1\",\"$set\":{\"a\":1},"
	       "\"$ignore_time\":true},{\"$token\":\"nope\",\"$distinct_id\":"
	       "\"u2\",\"$set\":{\"a\":1}}]",
	       0, "update 1");
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"null\",\"$set\":{}}]", 0,
	       "update 0");
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"\",\"$set\":{}}]", 0,
	       "update 0");
	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u3\",\"$set\":{},"
	       "\"$unset\":[\"a\"]}]",
	       0, "update 0");
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"u3\"}]", 0, "update 0");
	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u3\",\"$add\":{\"a\":"
	       "\"1\"}}]",
	       0, "$add");
	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u3\",\"$union\":{\"a\":"
	       "1}}]",
	       0, "$union");
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"u3\",\"$unset\":\"a\"}]",
	       0, "$unset");
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"u3\",\"$set\":[]}]", 0,
	       "$set");
	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"u3\",\"$set\":{},"
	       "\"$bogus\":1}]",
	       0, "$bogus");
	s = state();
	ck_assert_int_eq(jp_int(s, "/profiles/u1/a"), 1);
	ck_assert(!jp_exists(s, "/profiles/u1/$last_seen"));
	ck_assert(!jp_exists(s, "/profiles/u2"));
	ck_assert(!jp_exists(s, "/profiles/u3"));
	ck_assert_int_eq(jp_int(s, "/counters/records_rejected"), 10);
	json_object_put(s);
}
END_TEST

START_TEST(test_engage_ip_geolocation)
{
	json_object *s;

	engage("/engage?verbose=1",
	       "[{" TOK ",\"$distinct_id\":\"geo\","
	       "\"$set\":{\"a\":1}}]",
	       1, NULL);
	engage("/engage?verbose=1",
	       "[{" TOK ",\"$distinct_id\":\"ip0\","
	       "\"$ip\":\"0\",\"$set\":{\"a\":1}}]",
	       1, NULL);
	engage(ENGAGE,
	       "[{" TOK ",\"$distinct_id\":\"q0\",\"$set\":{\"a\":1}}"
	       "]",
	       1, NULL);
	s = state();
	ck_assert_str_eq(jp_str(s, "/profiles/geo/$city"), "Boardman");
	ck_assert(!jp_exists(s, "/profiles/ip0/$city"));
	ck_assert(!jp_exists(s, "/profiles/q0/$city"));
	json_object_put(s);
}
END_TEST

START_TEST(test_engage_not_verbose_and_limits)
{
	char *items[2001];
	char *body;
	struct resp r;
	size_t i;

	post("/engage?ip=0", NULL,
	     "[{" TOK ",\"$distinct_id\":\"u\","
	     "\"$set\":{\"a\":1}}]",
	     &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "1");
	resp_free(&r);
	post("/engage?ip=0", NULL, "[{\"$distinct_id\":\"u\",\"$set\":{}}]",
	     &r);
	ck_assert_str_eq(r.body, "0");
	resp_free(&r);
	for (i = 0; i < 2001; i++)
		items[i] = strdup("{" TOK ",\"$distinct_id\":\"u\",\"$set\":"
				  "{\"a\":1}}");
	body = array_of(items, 2001);
	post(ENGAGE, NULL, body, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(jp_int(r.json, "/status"), 0);
	resp_free(&r);
	free(body);
}
END_TEST

START_TEST(test_groups)
{
	json_object *s;

	engage("/groups?verbose=1",
	       "[{" TOK ",\"$group_key\":\"company\","
	       "\"$group_id\":\"acme\",\"$set\":{\"plan\":\"pro\"}},{" TOK
	       ",\"$group_key\":\"company\",\"$group_id\":\"acme\",\"$add\":"
	       "{\"n\":1}},{" TOK ",\"$group_key\":\"company\",\"$set\":{}}]",
	       0, "update 1");
	s = state();
	ck_assert_str_eq(jp_str(s, "/groups/company~1acme/plan"), "pro");
	ck_assert(!jp_exists(s, "/groups/company~1acme/$city"));
	ck_assert_int_eq(jp_int(s, "/counters/requests_groups"), 1);
	json_object_put(s);
}
END_TEST

START_TEST(test_track)
{
	char buf[512];
	long now = (long)time(NULL);
	struct resp r;

	snprintf(buf, sizeof(buf),
		 "[{\"event\":\"t\",\"properties\":{"
		 "\"token\":\"test-token\",\"time\":%ld,"
		 "\"distinct_id\":\"u\"}},"
		 "{\"event\":\"t\",\"properties\":{\"token\":\"bad\","
		 "\"time\":%ld,\"distinct_id\":\"u\"}}]",
		 now, now);
	post("/track?verbose=1", NULL, buf, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jp_int(r.json, "/status"), 0);
	ck_assert(strstr(jp_str(r.json, "/error"), "event 1") != NULL);
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 1);
	ck_assert_int_eq(counter("requests_track"), 1);
}
END_TEST

/* ---- faults and control ----------------------------------------------- */

START_TEST(test_fault_429_retry_after)
{
	char *body = events_batch(2, "f429");
	struct resp r;

	add_fault("{\"mode\":\"429\",\"count\":1,\"retry_after\":7}");
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 429);
	ck_assert_str_eq(r.retry_after, "7");
	ck_assert_str_eq(r.body, "{\"code\":429,\"error\":\"Project exceeded "
				 "rate limits. Please retry the request with "
				 "exponential backoff.\",\"status\":\"Too Many "
				 "Requests\"}");
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 0);
	import_ok(body, 2);
	ck_assert_int_eq(counter("faults_injected"), 1);
	free(body);
}
END_TEST

START_TEST(test_fault_drop)
{
	char *body = events_batch(2, "drop");
	struct request q = { "POST", IMPORT, SECRET_AUTH, NULL,
			     NULL,   body,   strlen(body) };
	struct resp r;

	add_fault("{\"mode\":\"drop\",\"count\":1,\"endpoint\":\"import\"}");
	/* Fresh connection: libcurl retries requests lost on reused ones. */
	curl_easy_cleanup(curl);
	curl = curl_easy_init();
	http(&q, &r);
	ck_assert_int_ne(r.cc, CURLE_OK);
	ck_assert_int_eq(r.status, 0);
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 0);
	import_ok(body, 2);
	free(body);
}
END_TEST

START_TEST(test_fault_slow_and_5xx)
{
	char *body = events_batch(1, "slow");
	long t0;
	struct resp r;

	add_fault("{\"mode\":\"slow\",\"count\":1,\"slow_ms\":300}");
	add_fault("{\"mode\":\"502\",\"count\":1,\"endpoint\":\"engage\"}");
	t0 = now_ms();
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_int_ge(now_ms() - t0, 250);
	resp_free(&r);
	import_ok(body, 1);
	post(ENGAGE, NULL, "[{" TOK ",\"$distinct_id\":\"u\",\"$set\":{}}]",
	     &r);
	ck_assert_int_eq(r.status, 502);
	resp_free(&r);
	ck_assert_int_eq(counter("profiles"), 0);
	add_fault("{\"mode\":\"500\",\"rate\":1.0,\"seed\":3}");
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 500);
	resp_free(&r);
	ck_assert_int_eq(counter("faults_injected"), 3);
	free(body);
}
END_TEST

START_TEST(test_fault_400_partial)
{
	char *body = events_batch(6, "part");
	struct resp r;

	add_fault("{\"mode\":\"400-partial\",\"count\":1}");
	post(IMPORT, SECRET_AUTH, body, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(jp_int(r.json, "/num_records_imported"), 4);
	check_failed(r.json, 0, 0, "properties.fake");
	check_failed(r.json, 1, 3, "properties.fake");
	ck_assert_str_eq(jp_str(r.json, "/failed_records/1/message"),
			 "rejected by fault injection");
	resp_free(&r);
	ck_assert_uint_eq(events_stored(), 4);
	free(body);
}
END_TEST

START_TEST(test_fault_rules_validated)
{
	static const char *const bad[] = {
		"{\"mode\":\"429\"}",
		"{\"mode\":\"429\",\"count\":1,\"rate\":0.5}",
		"{\"mode\":\"nope\",\"count\":1}",
		"{\"mode\":\"429\",\"count\":0}",
		"{\"mode\":\"429\",\"rate\":2}",
		"{\"mode\":\"429\",\"count\":1,\"endpoint\":\"x\"}",
		"{\"mode\":\"400-partial\",\"rate\":1,\"endpoint\":\"track\"}",
		"not json",
	};
	struct resp r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		post("/_fake/fault", NULL, bad[i], &r);
		ck_assert_msg(r.status == 400, "accepted %s", bad[i]);
		resp_free(&r);
	}
}
END_TEST

START_TEST(test_reset)
{
	char *body = events_batch(3, "reset");
	json_object *s;
	struct resp r;

	import_ok(body, 3);
	engage(ENGAGE, "[{" TOK ",\"$distinct_id\":\"u\",\"$set\":{}}]", 1,
	       NULL);
	add_fault("{\"mode\":\"503\",\"rate\":1}");
	post("/_fake/reset", NULL, "", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	s = state();
	ck_assert_uint_eq(json_object_array_length(jp(s, "/events")), 0);
	ck_assert_int_eq(json_object_object_length(jp(s, "/profiles")), 0);
	ck_assert_int_eq(jp_int(s, "/counters/requests_import"), 0);
	ck_assert_int_eq(jp_int(s, "/counters/faults_injected"), 0);
	json_object_put(s);
	import_ok(body, 3);
	free(body);
}
END_TEST

enum { NCONN = 64, ROUNDS = 4 };

static CURL *keepalive_handle(const char *url, struct curl_slist *hdrs,
			      const char *body)
{
	CURL *h = curl_easy_init();

	ck_assert_ptr_nonnull(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_USERPWD, SECRET_AUTH);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	return h;
}

/* Runs every handle once, all at the same time; expects 200s. */
static void multi_round(CURLM *multi, CURL **h)
{
	struct resp rs[NCONN];
	int running;
	long code;
	int i;

	memset(rs, 0, sizeof(rs));
	for (i = 0; i < NCONN; i++) {
		curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &rs[i]);
		curl_multi_add_handle(multi, h[i]);
	}
	do {
		curl_multi_perform(multi, &running);
		curl_multi_poll(multi, NULL, 0, 1000, NULL);
	} while (running > 0);
	for (i = 0; i < NCONN; i++) {
		code = 0;
		curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &code);
		curl_multi_remove_handle(multi, h[i]);
		free(rs[i].body);
		ck_assert_int_eq(code, 200);
	}
}

/* Many concurrent keep-alive connections through one curl multi. */
START_TEST(test_concurrent_keepalive)
{
	CURL *h[NCONN];
	char *bodies[NCONN];
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: "
							  "application/json");
	CURLM *multi = curl_multi_init();
	char url[128];
	char prefix[32];
	int i;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d" IMPORT, fake_port);
	for (i = 0; i < NCONN; i++) {
		snprintf(prefix, sizeof(prefix), "c%d", i);
		bodies[i] = events_batch(10, prefix);
		h[i] = keepalive_handle(url, hdrs, bodies[i]);
	}
	for (i = 0; i < ROUNDS; i++)
		multi_round(multi, h);
	for (i = 0; i < NCONN; i++) {
		curl_easy_cleanup(h[i]);
		free(bodies[i]);
	}
	curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	ck_assert_int_eq(counter("events_stored"), NCONN * 10);
	ck_assert_int_eq(counter("duplicates"), NCONN * 10 * (ROUNDS - 1));
}
END_TEST

/* ---- runner ----------------------------------------------------------- */

static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

static Suite *fake_suite(void)
{
	Suite *s = suite_create("fake_mixpanel");

	add(s, "import_valid_and_dedup", test_import_valid_and_dedup);
	add(s, "import_dedup_ms", test_import_dedup_ms_and_latest_wins);
	add(s, "import_partial_failure", test_import_partial_failure);
	add(s, "import_validation_rules", test_import_validation_rules);
	add(s, "import_create_alias", test_import_create_alias);
	add(s, "import_nesting_allowed", test_import_nesting_allowed);
	add(s, "import_too_many_properties", test_import_too_many_properties);
	add(s, "import_batch_limits", test_import_batch_limits);
	add(s, "import_too_large", test_import_too_large);
	add(s, "import_auth", test_import_auth);
	add(s, "import_service_account", test_import_service_account);
	add(s, "gzip", test_gzip);
	add(s, "content_type", test_content_type);
	add(s, "engage_operations", test_engage_operations);
	add(s, "engage_invalid_update", test_engage_invalid_update);
	add(s, "engage_update_over_1_mb", test_engage_update_over_1_mb);
	add(s, "engage_ip_geolocation", test_engage_ip_geolocation);
	add(s, "engage_not_verbose", test_engage_not_verbose_and_limits);
	add(s, "groups", test_groups);
	add(s, "track", test_track);
	add(s, "fault_429_retry_after", test_fault_429_retry_after);
	add(s, "fault_drop", test_fault_drop);
	add(s, "fault_slow_and_5xx", test_fault_slow_and_5xx);
	add(s, "fault_400_partial", test_fault_400_partial);
	add(s, "fault_rules_validated", test_fault_rules_validated);
	add(s, "reset", test_reset);
	add(s, "concurrent_keepalive", test_concurrent_keepalive);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fake_suite());
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
