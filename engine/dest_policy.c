/* dest_policy.c - what a destination row may make the process touch */
#include "audsync/dest_policy.h"

#include "audsync/alloc.h"
#include "audsync/mp_redact.h"
#include "audsync/settings.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 1 when the n bytes of item equal one of list's items (split on sep). */
static int in_list(const char *list, char sep, const char *item, size_t n,
		   int nocase)
{
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && (nocase ? strncasecmp(p, item, n) == 0
					: strncmp(p, item, n) == 0))
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* The host of an http:// URL (after the scheme), its length in *n. */
static const char *url_host(const char *rest, size_t *n)
{
	size_t end;

	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');

		*n = close ? (size_t)(close - rest) + 1 : strlen(rest);
		return rest;
	}
	end = strcspn(rest, ":/?#@");
	*n = end;
	return rest;
}

/* A URL (after its scheme) with user:password@ or token@ before its
 * path: refused, for http:// and https:// alike, since the password
 * would be sent, logged by proxies, and shown by anything that prints
 * the row. The message never quotes the URL. */
static int check_userinfo(const char *rest, char *err, size_t errlen)
{
	if (!memchr(rest, '@', strcspn(rest, "/?#")))
		return 0;
	snprintf(err, errlen,
		 "api_base may not carry user:password@ in its URL");
	return -1;
}

static int check_http(const char *rest, char *err, size_t errlen)
{
	size_t n;
	const char *host = url_host(rest, &n);

	if (check_userinfo(rest, err, errlen) != 0)
		return -1;
	if (in_list("localhost,127.0.0.1,[::1]", ',', host, n, 1) ||
	    in_list(settings_env("AUDSYNC_ALLOW_HTTP_HOSTS"), ',', host, n, 1))
		return 0;
	snprintf(err, errlen,
		 "api_base http://%.*s sends in clear text to a host the "
		 "operator has not allowed (use https://, or add the host to "
		 "AUDSYNC_ALLOW_HTTP_HOSTS)",
		 (int)(n < 100 ? n : 100), host);
	return -1;
}

/* 1 when the resolved dir lies in one of the allowed directories. */
static int dir_allowed(const char *dir)
{
	const char *p = settings_env("AUDSYNC_ALLOW_FILE_SINKS");
	char allowed[PATH_MAX], one[PATH_MAX];

	while (p && *p) {
		size_t len = strcspn(p, ":");

		if (len > 0 && len < sizeof(one)) {
			memcpy(one, p, len);
			one[len] = '\0';
			if (one[0] == '/' && realpath(one, allowed)) {
				size_t al = strlen(allowed);

				if (strncmp(dir, allowed, al) == 0 &&
				    (dir[al] == '\0' || dir[al] == '/' ||
				     strcmp(allowed, "/") == 0))
					return 1;
			}
		}
		p += len + (p[len] == ':');
	}
	return 0;
}

static int check_file(const char *path, char *err, size_t errlen)
{
	char *dir = alloc_strdup(path), resolved[PATH_MAX];
	char *slash = strrchr(dir, '/');
	int ok = 0;

	if (path[0] == '/' && slash && slash[1] != '\0') {
		*slash = '\0';
		/* The directory as the kernel sees it: no "..", no link out
		 * of the allowed directory. */
		ok = realpath(dir[0] ? dir : "/", resolved) &&
		     dir_allowed(resolved);
	}
	free(dir);
	if (ok)
		return 0;
	snprintf(err, errlen,
		 "api_base file:%.200s is not inside a directory the "
		 "operator allows (an absolute path under "
		 "AUDSYNC_ALLOW_FILE_SINKS)",
		 path);
	return -1;
}

int dest_policy_api_base(const char *api_base, char *err, size_t errlen)
{
	if (!api_base)
		return 0;
	if (strncmp(api_base, "https://", 8) == 0 && api_base[8] != '\0')
		return check_userinfo(api_base + 8, err, errlen);
	if (strcmp(api_base, "stdout:") == 0)
		return 0;
	if (strncmp(api_base, "http://", 7) == 0 && api_base[7] != '\0')
		return check_http(api_base + 7, err, errlen);
	if (strncmp(api_base, "file:", 5) == 0)
		return check_file(api_base + 5, err, errlen);
	snprintf(err, errlen,
		 "api_base must start with https://, http://, stdout: or "
		 "file:, not '%.*s'",
		 mp_redact_url_len(api_base, 100), api_base);
	return -1;
}

int dest_policy_secret_env(const char *secret_env, char *err, size_t errlen)
{
	const char *prefix = settings_env("AUDSYNC_SECRET_ENV_PREFIX");
	const char *c;

	if (!secret_env || !*secret_env)
		return 0;
	for (c = secret_env; *c; c++) {
		if (!(isalnum((unsigned char)*c) || *c == '_'))
			break;
	}
	if (*c == '\0' && !isdigit((unsigned char)secret_env[0]) &&
	    strncmp(secret_env, prefix, strlen(prefix)) == 0)
		return 0;
	snprintf(err, errlen,
		 "secret_env '%.100s' is not a variable the operator allows: "
		 "its name must start with %s (AUDSYNC_SECRET_ENV_PREFIX)",
		 secret_env, prefix);
	return -1;
}
