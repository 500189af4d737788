/* mp_dest.h - a Mixpanel destination's setup: the one check of its
 * fields, and what the client derives from them */
#ifndef AUDSYNC_MP_DEST_H
#define AUDSYNC_MP_DEST_H

#include "audsync/buf.h"
#include "audsync/mp_client.h"

#include <stddef.h>

/*
 * The one check of a destination's fields, shared by the configuration
 * (config.c, before a sync starts) and the client (on
 * mp_client_add_destination): project_token set; region NULL (us), "us",
 * "eu" or "in"; a service account secret ("user:secret") only with
 * project_id; api_base NULL or starting with https://, http://, stdout:
 * or file:. Returns 0, or -1 with a one-line err that names the
 * destination and never holds the secret. What the operator allows
 * (which hosts, which directories) is dest_policy.h's business.
 */
int mp_dest_check(const mp_destination *in, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A destination as the client and its transports use it. Every string
 * is owned; mp_dest_conf_free() frees them. */
typedef struct mp_dest_conf {
	char *name;
	char *base;	/* api_base, or the region's https:// host */
	char *username; /* /import HTTP Basic */
	char *password;
	char *secret;		/* redacted everywhere, or NULL */
	char *basic_b64;	/* its Authorization form, redacted too */
	const char *secrets[3]; /* the two above, NULL-terminated */
	const char *query[MP_EP_COUNT]; /* each endpoint's query string */
	char *query_import;
	buf token;    /* the project token as a JSON string */
	int conc;     /* requests in flight at once, and lanes per endpoint */
	size_t batch; /* records per request, at most */
	size_t max_bytes; /* uncompressed bytes per request, at most */
	double max_rate;  /* records per second; <= 0: no limit */
} mp_dest_conf;

/* Checks in (mp_dest_check()) and fills out from it, with the defaults
 * and caps applied. Returns 0, or -1 with err; either way the caller
 * frees out with mp_dest_conf_free(). */
int mp_dest_conf_init(mp_dest_conf *out, const mp_destination *in, char *err,
		      size_t errlen) __attribute__((warn_unused_result));
void mp_dest_conf_free(mp_dest_conf *c); /* accepts NULL */

/* Whether a record of size bytes (its JSON as sent, the token in it)
 * fits one request of c: Mixpanel's 1 MiB per record and c's request
 * cap with the array's brackets. Returns 0, or -1 with a one-line err
 * that names the destination. */
int mp_dest_record_fits(const mp_dest_conf *c, size_t size, char *err,
			size_t errlen) __attribute__((warn_unused_result));

#endif
