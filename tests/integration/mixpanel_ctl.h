/* mixpanel_ctl.h - start, drive and stop the fake Mixpanel in tests */
#ifndef AUDSYNC_TESTS_MIXPANEL_CTL_H
#define AUDSYNC_TESTS_MIXPANEL_CTL_H

#include <json-c/json.h>
#include <stdint.h>

/*
 * The fake Mixpanel (tests/fake_mixpanel) runs as a child process on
 * 127.0.0.1 and a port of its own choosing. Its binary is $FAKE_MIXPANEL,
 * else "build/tests/fake_mixpanel". Every function returns 0 or -1 with a
 * one-line reason on stderr.
 */
typedef struct mpctl mpctl;

/* Starts the fake with extra_args (split on spaces, may be NULL), e.g.
 * "--secret s3 --threads 4", and waits until it listens. *out is set on
 * success; the caller stops it with mpctl_stop(). The child is killed if
 * the test process dies. */
int mpctl_start(mpctl **out, const char *extra_args)
	__attribute__((warn_unused_result));

/* "http://127.0.0.1:PORT": the api_base of a destination. Borrowed. */
const char *mpctl_base_url(const mpctl *m);

/* GET /_fake/state and GET /_fake/summary: *out is a new reference the
 * caller puts. */
int mpctl_state(json_object **out, mpctl *m)
	__attribute__((warn_unused_result));
int mpctl_summary(json_object **out, mpctl *m)
	__attribute__((warn_unused_result));

/* A profile's property in the fake as plain JSON text ("true",
 * "\"x\""; the caller frees it), or NULL when the profile or property
 * is absent or the state cannot be read. */
char *mpctl_prop(mpctl *m, const char *distinct_id, const char *name);

/* The events the fake stored named event, for distinct_id did, whose
 * property key has the JSON text value ("true", "\"x\"", "null"); a
 * NULL filter takes any (key and value go together). -1 when the state
 * cannot be read. */
int mpctl_events(mpctl *m, const char *event, const char *did, const char *key,
		 const char *value);

/* GET /_fake/requests: {"max_in_flight": N, "requests": [{"endpoint":
 * "engage", "t_ms": arrival in Unix milliseconds, "records": N or -1,
 * "status": the answer's or 0}, ...]} in order of arrival, since the
 * start or the last reset. *out is a new reference the caller puts. */
int mpctl_requests(json_object **out, mpctl *m)
	__attribute__((warn_unused_result));

/* One counter of the summary, or -1 when it cannot be read. */
int64_t mpctl_counter(mpctl *m, const char *name);

/* POST /_fake/fault with a JSON text such as
 * {"mode":"429","count":3,"endpoint":"import","retry_after":1}. */
int mpctl_fault(mpctl *m, const char *json) __attribute__((warn_unused_result));

/* POST /engage with a JSON array of updates (each with "$token":
 * "test-token"): what someone else tells Mixpanel behind audsync's
 * back. */
int mpctl_engage(mpctl *m, const char *json)
	__attribute__((warn_unused_result));

/* POST /_fake/reset: drops events, profiles, counters and faults. */
int mpctl_reset(mpctl *m) __attribute__((warn_unused_result));

/* SIGTERM, then waits for the child (SIGKILL after 5 s). Accepts NULL. */
void mpctl_stop(mpctl *m);

#endif
