/* bench_forward.c - audsync forward at scale: the mapping alone on one
 * core, then messages from stdin through the outbox to the fake Mixpanel,
 * with the process's peak RSS at two stream lengths (flat means it does
 * not grow with the stream). Prints figures; judges nothing.
 *
 * BENCH_FORWARD_MESSAGES scales the stream (default 50000, about a
 * minute: the stream goes through PostgreSQL and the fake; the goal's
 * 10000000 is a run of its own), which prints the process's resident and
 * peak memory at each tenth of it; the mapping loops map
 * BENCH_FORWARD_MAP messages (default 300000). BENCH_FORWARD_SINK=1
 * sends the stream to a stdout: sink (the process's standard output is
 * /dev/null) instead of the fake: the same client and outbox, without
 * the fake's pace, for the 10 M memory run. */
#include "audsync/mp_client.h"
#include "audsync/outbox.h"
#include "audsync/segment_map.h"

#include "mixpanel_ctl.h"
#include "testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The users the stream's track and identify calls name. Mixpanel
 * appends each charge to the profile's $transactions, and so does the
 * fake, which re-reads a profile's properties at each change: with a
 * million users a 10 M stream gives each about seven charges, where a
 * hundred thousand made their lists grow with the stream and the fake,
 * not audsync, the pace. */
#define USERS 1000000

/* Message i of a mix of 70 % track, 20 % page, 10 % identify, as a line
 * of about 400 bytes (a typical server-side call). */
static int message(char *out, size_t len, long i)
{
	static const char ctx[] =
		"\"context\":{\"ip\":\"203.0.113.7\",\"library\":{\"name\":"
		"\"analytics-node\",\"version\":\"6.0.0\"},\"campaign\":{"
		"\"source\":\"news\",\"medium\":\"email\",\"name\":\"Fall\"}}";

	if (i % 10 < 7)
		return snprintf(out, len,
				"{\"messageId\":\"m-%ld\",\"timestamp\":"
				"\"2026-01-15T10:00:00.%03ldZ\",\"type\":"
				"\"track\",\"userId\":\"u%ld\",\"event\":"
				"\"Order Completed\",\"properties\":{"
				"\"revenue\":%ld.5,\"sku\":\"SKU-%ld\","
				"\"items\":3,\"coupon\":null},%s}\n",
				i, i % 1000, i % USERS, i % 90, i % 977, ctx);
	if (i % 10 < 9)
		return snprintf(out, len,
				"{\"messageId\":\"m-%ld\",\"timestamp\":"
				"\"2026-01-15T10:00:00Z\",\"type\":\"page\","
				"\"anonymousId\":\"a-%ld\",\"name\":"
				"\"Pricing\",\"properties\":{\"url\":"
				"\"https://example.com/pricing\",\"path\":"
				"\"/pricing\"},%s}\n",
				i, i % 50000, ctx);
	return snprintf(out, len,
			"{\"messageId\":\"m-%ld\",\"timestamp\":"
			"\"2026-01-15T10:00:00Z\",\"type\":\"identify\","
			"\"userId\":\"u%ld\",\"traits\":{\"email\":"
			"\"u%ld@example.com\",\"firstName\":\"Ann\","
			"\"plan\":\"pro\",\"tags\":[\"a\",\"b\"]},%s}\n",
			i, i % USERS, i % USERS, ctx);
}

/* CPU seconds of this process: the machine may be shared. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Maps n messages (10 000 distinct ones, made beforehand, in turn). */
static void bench_mapping(long n)
{
	enum { DISTINCT = 10000 };
	segment_settings s;
	segment_calls c;
	json_object *set = json_tokener_parse(
		"{\"event_increments\":[\"Order Completed\"]}");
	static char lines[DISTINCT][1024];
	static int lens[DISTINCT];
	char err[256];
	long i, calls = 0;
	double t0, c0, wall, cpu;

	if (segment_settings_parse(&s, set, "test-token", 1, err,
				   sizeof(err)) != 0) {
		fprintf(stderr, "bench_forward: %s\n", err);
		exit(1);
	}
	for (i = 0; i < DISTINCT; i++)
		lens[i] = message(lines[i], sizeof(lines[i]), i) - 1;
	segment_calls_init(&c);
	t0 = now_s();
	c0 = cpu_s();
	for (i = 0; i < n; i++) {
		if (segment_map_text(&c, lines[i % DISTINCT],
				     (size_t)lens[i % DISTINCT],
				     &s) == SEGMENT_MAPPED)
			calls += c.n;
	}
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	printf("bench_forward: mapping alone, one core: %ld messages in "
	       "%.2f s wall, %.2f s CPU: %.0f messages per CPU second, %ld "
	       "calls\n",
	       n, wall, cpu, (double)n / cpu, calls);
	segment_calls_free(&c);
	segment_settings_free(&s);
	json_object_put(set);
}

/*
 * Mapping and client together, as the goal is stated: n messages mapped
 * and their calls submitted straight to the client (no outbox), flushed
 * every 50 000 records, to the fake. CPU is this process's: the fake
 * runs in its own.
 */
static void bench_map_client(mpctl *fake, long n)
{
	enum { DISTINCT = 10000, FLUSH_EVERY = 50000 };
	static char lines[DISTINCT][1024];
	static int lens[DISTINCT];
	json_object *set = json_tokener_parse(
		"{\"event_increments\":[\"Order Completed\"]}");
	mp_client *c;
	segment_settings s;
	segment_calls calls;
	mp_destination d;
	mp_stats st;
	char err[256];
	long i, queued = 0;
	double t0, c0, f0, wall, cpu, flush_cpu = 0;
	int dest, j, rc = 0;

	c = mp_client_open(NULL, err, sizeof(err));
	memset(&d, 0, sizeof(d));
	d.name = "bench";
	d.api_base = mpctl_base_url(fake);
	d.project_token = "test-token";
	if (!c || mp_client_add_destination(c, &dest, &d) != 0 ||
	    segment_settings_parse(&s, set, "test-token", 1, err,
				   sizeof(err)) != 0) {
		fprintf(stderr, "bench_forward: cannot open the client\n");
		exit(1);
	}
	for (i = 0; i < DISTINCT; i++)
		lens[i] = message(lines[i], sizeof(lines[i]), i) - 1;
	segment_calls_init(&calls);
	t0 = now_s();
	c0 = cpu_s();
	for (i = 0; i < n && rc >= 0; i++) {
		if (segment_map_text(&calls, lines[i % DISTINCT],
				     (size_t)lens[i % DISTINCT],
				     &s) != SEGMENT_MAPPED)
			continue;
		for (j = 0; j < calls.n; j++) {
			size_t len;
			const char *rec = segment_call_record(&calls, j, &len);

			if (mp_client_submit(
				    c, dest, calls.call[j].ep,
				    outbox_lane(segment_call_key(&calls, j)),
				    rec, len, 0) != 0)
				rc = -1;
			queued++;
		}
		if (queued >= FLUSH_EVERY) {
			f0 = cpu_s();
			rc = mp_client_flush(c, NULL, NULL, NULL);
			flush_cpu += cpu_s() - f0;
			queued = 0;
		}
	}
	f0 = cpu_s();
	if (rc >= 0)
		rc = mp_client_flush(c, NULL, NULL, NULL);
	flush_cpu += cpu_s() - f0;
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	mp_client_get_stats(c, &st);
	printf("bench_forward: mapping and client, one process: %ld messages "
	       "in %.2f s wall, %.2f s CPU: %.0f messages per CPU second "
	       "(mapping and submit %.2f us, flush: gzip, HTTP %.2f us CPU "
	       "per message); %llu records delivered in %llu requests%s\n",
	       n, wall, cpu, (double)n / cpu, (cpu - flush_cpu) / n * 1e6,
	       flush_cpu / n * 1e6, (unsigned long long)st.records_delivered,
	       (unsigned long long)st.requests,
	       rc < 0 ? " (client error)" : "");
	fflush(stdout);
	segment_calls_free(&calls);
	segment_settings_free(&s);
	json_object_put(set);
	mp_client_close(c);
}

/* The resident and peak resident memory of process pid, in MiB (-1 when
 * /proc does not say). */
static void rss_of(double *rss, double *peak, pid_t pid)
{
	char path[64], line[256];
	FILE *f;

	*rss = *peak = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			*rss = atof(line + 6) / 1024.0;
		else if (strncmp(line, "VmHWM:", 6) == 0)
			*peak = atof(line + 6) / 1024.0;
	}
	fclose(f);
}

/* Streams n messages (from first) into audsync forward's stdin; prints
 * its memory at each tenth of the stream, its wall time, the records the
 * fake received and its peak RSS. */
static void bench_stream(const char *db, mpctl *fake, int sink, long first,
			 long n)
{
	const char *bin =
		getenv("AUDSYNC_BIN") ? getenv("AUDSYNC_BIN") : "./audsync";
	const char *argv[] = { bin,    "--db",	  db,  "--log-level",
			       "warn", "forward", "-", NULL };
	long long before = mpctl_counter(fake, "records_received");
	struct rusage ru;
	char line[2048];
	double t0 = now_s(), wall;
	int fds[2], st;
	long i;
	pid_t pid;
	FILE *in;

	if (pipe(fds) != 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(fds[0], 0);
		if (sink && null >= 0)
			dup2(null, 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[0]);
	in = fdopen(fds[1], "w");
	for (i = first; i < first + n; i++) {
		int len = message(line, sizeof(line), i);

		fwrite(line, 1, (size_t)len, in);
		if (n >= 100000 && (i - first + 1) % (n / 10) == 0) {
			double rss, peak;

			fflush(in);
			rss_of(&rss, &peak, pid);
			printf("bench_forward: %ld of %ld messages written: rss "
			       "%.1f MiB, peak %.1f MiB, %.0f s\n",
			       i - first + 1, n, rss, peak, now_s() - t0);
			fflush(stdout);
		}
	}
	fclose(in);
	wait4(pid, &st, 0, &ru);
	wall = now_s() - t0;
	printf("bench_forward: %ld messages from stdin to the %s in %.2f s "
	       "(%.0f messages/s, outbox and delivery included), %lld "
	       "records received by the fake, peak rss %.1f MiB, exit %d\n",
	       n, sink ? "sink" : "fake", wall, (double)n / wall,
	       mpctl_counter(fake, "records_received") - before,
	       (double)ru.ru_maxrss / 1024.0,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	fflush(stdout);
}

int main(void)
{
	long n = tl_env_long("BENCH_FORWARD_MESSAGES", 50000, 1, 100000000);
	long m = tl_env_long("BENCH_FORWARD_MAP", 300000, 1, 100000000);
	char sql[512];
	const char *db;
	mpctl *fake;
	int sink = getenv("BENCH_FORWARD_SINK") &&
		   strcmp(getenv("BENCH_FORWARD_SINK"), "1") == 0;

	bench_mapping(m);
	if (mpctl_start(&fake, "--threads 2") != 0)
		return 1;
	bench_map_client(fake, m);
	db = tl_new_db();
	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, use_people, settings) VALUES ('bench', '%s',"
		 " 'test-token', true,"
		 " '{\"event_increments\":[\"Order Completed\"]}')",
		 sink ? "stdout:" : mpctl_base_url(fake));
	tl_sql(db, sql);
	if (sink)
		printf("bench_forward: the stream goes to a stdout: sink\n");
	bench_stream(db, fake, sink, 0, n / 10 > 0 ? n / 10 : 1);
	bench_stream(db, fake, sink, n, n);
	printf("bench_forward: fake Mixpanel holds %lld profiles\n",
	       (long long)mpctl_counter(fake, "profiles"));
	mpctl_stop(fake);
	return 0;
}
