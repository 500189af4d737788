/* dest_policy.h - what a destination row may make the process touch */
#ifndef AUDSYNC_DEST_POLICY_H
#define AUDSYNC_DEST_POLICY_H

#include <stddef.h>

/*
 * Whoever writes a destination row may not act on the host (DESIGN.md
 * section 8): the operator's environment decides which file: sinks,
 * plain-http hosts and secret variables a row may name. These read the
 * AUDSYNC_ALLOW_FILE_SINKS, AUDSYNC_ALLOW_HTTP_HOSTS and
 * AUDSYNC_SECRET_ENV_PREFIX variables (settings.h) at each call.
 */

/*
 * Checks api_base (NULL: the region's host): https:// anywhere; http://
 * only to localhost, 127.0.0.1, ::1 or a host the operator allows;
 * stdout:; file:PATH only for an absolute PATH inside a directory the
 * operator allows. Returns 0, or -1 with a one-line err (without the
 * destination's name: the caller adds it).
 */
int dest_policy_api_base(const char *api_base, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Checks that secret_env names a variable with the operator's prefix.
 * Returns 0, or -1 with a one-line err. */
int dest_policy_secret_env(const char *secret_env, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
