/* mixpanel_ctl.c - start, drive and stop the fake Mixpanel in tests */
#include "mixpanel_ctl.h"

#include "audsync/buf.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_MS 10000
#define STOP_WAIT_MS  5000
#define MAX_ARGS      64

struct mpctl {
	pid_t pid;
	char dir[64];
	char port_file[96];
	char base[64];
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Splits a copy of extra on spaces into argv after the fixed ones. */
static int build_argv(char **argv, char *copy, const char *bin,
		      const char *port_file)
{
	int argc = 0;
	char *save = NULL, *tok;

	argv[argc++] = (char *)bin;
	argv[argc++] = "--port-file";
	argv[argc++] = (char *)port_file;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	for (tok = strtok_r(copy, " \t", &save); tok && argc < MAX_ARGS - 1;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	return argc;
}

static void child_exec(const char *bin, char **argv, pid_t parent)
{
	/* The fake dies with the test, even on a crash or a kill -9. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	execv(bin, argv);
	fprintf(stderr, "mixpanel_ctl: cannot run %s: %s\n", bin,
		strerror(errno));
	_exit(127);
}

/* Reads the port once the fake has written its file; 0 while not yet. */
static int read_port(const mpctl *m)
{
	FILE *f = fopen(m->port_file, "r");
	int port = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &port) != 1)
		port = 0;
	fclose(f);
	return port;
}

static int wait_listening(mpctl *m)
{
	int waited, port = 0, status;

	for (waited = 0; waited < START_WAIT_MS; waited += 10) {
		port = read_port(m);
		if (port > 0)
			break;
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			fprintf(stderr,
				"mixpanel_ctl: the fake exited "
				"before listening (status %d)\n",
				status);
			m->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	if (port <= 0) {
		fprintf(stderr, "mixpanel_ctl: no port file after %d ms\n",
			START_WAIT_MS);
		return -1;
	}
	snprintf(m->base, sizeof(m->base), "http://127.0.0.1:%d", port);
	return 0;
}

int mpctl_start(mpctl **out, const char *extra_args)
{
	const char *bin = getenv("FAKE_MIXPANEL");
	char *argv[MAX_ARGS], *copy = strdup(extra_args ? extra_args : "");
	mpctl *m = calloc(1, sizeof(*m));
	pid_t parent = getpid();
	int rc = -1;

	if (!bin || !*bin)
		bin = "build/tests/fake_mixpanel";
	if (!m || !copy)
		goto out;
	snprintf(m->dir, sizeof(m->dir), "/tmp/mpctl.XXXXXX");
	if (!mkdtemp(m->dir)) {
		perror("mixpanel_ctl: mkdtemp");
		goto out;
	}
	snprintf(m->port_file, sizeof(m->port_file), "%s/port", m->dir);
	build_argv(argv, copy, bin, m->port_file);
	fflush(NULL);
	m->pid = fork();
	if (m->pid < 0) {
		perror("mixpanel_ctl: fork");
		m->pid = 0;
		goto out;
	}
	if (m->pid == 0)
		child_exec(bin, argv, parent);
	if (wait_listening(m) < 0)
		goto out;
	*out = m;
	m = NULL;
	rc = 0;
out:
	mpctl_stop(m);
	free(copy);
	return rc;
}

const char *mpctl_base_url(const mpctl *m)
{
	return m->base;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	buf_append(ud, p, size * n);
	return size * n;
}

/* One control request; the answer's body goes to answer. */
static int request(mpctl *m, const char *method, const char *path,
		   const char *body, buf *answer)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[160];
	long status = 0;
	CURLcode cr;
	int rc = -1;

	if (!e)
		return -1;
	snprintf(url, sizeof(url), "%s%s", m->base, path);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)answer);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
	cr = curl_easy_perform(e);
	if (cr == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (cr != CURLE_OK || status != 200)
		fprintf(stderr, "mixpanel_ctl: %s %s: %s (HTTP %ld) %s\n",
			method, path, curl_easy_strerror(cr), status,
			answer->data ? answer->data : "");
	else
		rc = 0;
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return rc;
}

static int get_json(json_object **out, mpctl *m, const char *path)
{
	json_object *o = NULL;
	buf b;
	int rc = -1;

	buf_init(&b);
	if (request(m, "GET", path, NULL, &b) < 0)
		goto out;
	o = json_tokener_parse(b.data ? b.data : "");
	if (!o) {
		fprintf(stderr, "mixpanel_ctl: GET %s: not JSON\n", path);
		goto out;
	}
	*out = o;
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

int mpctl_state(json_object **out, mpctl *m)
{
	return get_json(out, m, "/_fake/state");
}

char *mpctl_prop(mpctl *m, const char *distinct_id, const char *name)
{
	json_object *st, *all, *p, *v;
	char *out = NULL;

	if (mpctl_state(&st, m) != 0)
		return NULL;
	if (json_object_object_get_ex(st, "profiles", &all) &&
	    json_object_object_get_ex(all, distinct_id, &p) &&
	    json_object_object_get_ex(p, name, &v))
		out = strdup(json_object_to_json_string_ext(
			v, JSON_C_TO_STRING_PLAIN));
	json_object_put(st);
	return out;
}

/* 1 when field name of o is the string want (NULL: any). */
static int field_is(json_object *o, const char *name, const char *want)
{
	json_object *v;

	return !want || (json_object_object_get_ex(o, name, &v) &&
			 strcmp(json_object_get_string(v), want) == 0);
}

int mpctl_events(mpctl *m, const char *event, const char *did, const char *key,
		 const char *value)
{
	json_object *st, *evs, *e, *p, *v;
	size_t i;
	int n = 0;

	if (mpctl_state(&st, m) != 0)
		return -1;
	if (!json_object_object_get_ex(st, "events", &evs)) {
		json_object_put(st);
		return -1;
	}
	for (i = 0; i < json_object_array_length(evs); i++) {
		e = json_object_array_get_idx(evs, i);
		if (!json_object_object_get_ex(e, "properties", &p) ||
		    !field_is(e, "event", event) ||
		    !field_is(p, "distinct_id", did))
			continue;
		if (key && (!json_object_object_get_ex(p, key, &v) ||
			    strcmp(json_object_to_json_string_ext(
					   v, JSON_C_TO_STRING_PLAIN),
				   value) != 0))
			continue;
		n++;
	}
	json_object_put(st);
	return n;
}

int mpctl_summary(json_object **out, mpctl *m)
{
	return get_json(out, m, "/_fake/summary");
}

int mpctl_requests(json_object **out, mpctl *m)
{
	return get_json(out, m, "/_fake/requests");
}

int64_t mpctl_counter(mpctl *m, const char *name)
{
	json_object *s = NULL, *v = NULL, *inner = NULL;
	int64_t n = -1;

	if (mpctl_summary(&s, m) < 0)
		return -1;
	/* the counters may sit at the top or under "counters" */
	if (json_object_object_get_ex(s, "counters", &inner))
		json_object_object_get_ex(inner, name, &v);
	else
		json_object_object_get_ex(s, name, &v);
	if (v)
		n = json_object_get_int64(v);
	json_object_put(s);
	return n;
}

/* POSTs body to path; the answer is dropped. */
static int post(mpctl *m, const char *path, const char *body)
{
	buf b;
	int rc;

	buf_init(&b);
	rc = request(m, "POST", path, body, &b);
	buf_free(&b);
	return rc;
}

int mpctl_fault(mpctl *m, const char *json)
{
	return post(m, "/_fake/fault", json);
}

int mpctl_engage(mpctl *m, const char *json)
{
	return post(m, "/engage", json);
}

int mpctl_reset(mpctl *m)
{
	return post(m, "/_fake/reset", "");
}

void mpctl_stop(mpctl *m)
{
	int status, waited;

	if (!m)
		return;
	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		for (waited = 0; waited < STOP_WAIT_MS; waited += 10) {
			if (waitpid(m->pid, &status, WNOHANG) == m->pid)
				break;
			sleep_ms(10);
		}
		if (waited >= STOP_WAIT_MS) {
			kill(m->pid, SIGKILL);
			waitpid(m->pid, &status, 0);
		}
	}
	if (m->port_file[0])
		unlink(m->port_file);
	if (m->dir[0])
		rmdir(m->dir);
	free(m);
}
