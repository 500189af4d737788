/* mp_dest.c - a Mixpanel destination's setup: the one check of its
 * fields, and what the client derives from them */
#include "audsync/mp_dest.h"

#include "audsync/alloc.h"
#include "audsync/mp_redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONCURRENCY 64
#define MAX_BYTES_CAP	(1u << 30) /* zlib counts in 32 bits */

static const char *name_of(const mp_destination *in)
{
	return in->name && *in->name ? in->name : "mixpanel";
}

/* The https:// host of region (NULL: us), or NULL when it is none. */
static const char *region_host(const char *region)
{
	if (!region || strcmp(region, "us") == 0)
		return "https://api.mixpanel.com";
	if (strcmp(region, "eu") == 0)
		return "https://api-eu.mixpanel.com";
	if (strcmp(region, "in") == 0)
		return "https://api-in.mixpanel.com";
	return NULL;
}

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int mp_dest_check(const mp_destination *in, char *err, size_t errlen)
{
	const char *name = name_of(in), *base = in->api_base;

	if (!in->project_token || !*in->project_token)
		snprintf(err, errlen,
			 "destination %s: project_token is not set", name);
	else if (!region_host(in->region))
		snprintf(err, errlen,
			 "destination %s: unknown region '%.100s' (use us, eu "
			 "or in)",
			 name, in->region);
	else if (in->secret && strchr(in->secret, ':') &&
		 (!in->project_id || !*in->project_id))
		snprintf(err, errlen,
			 "destination %s: a service account secret "
			 "(user:secret) needs project_id",
			 name);
	else if (base && *base && !has_prefix(base, "https://") &&
		 !has_prefix(base, "http://") && strcmp(base, "stdout:") != 0 &&
		 !has_prefix(base, "file:"))
		snprintf(err, errlen,
			 "destination %s: api_base must start with https://, "
			 "http://, stdout: or file:, not '%.*s'",
			 name, mp_redact_url_len(base, 100), base);
	else
		return 0;
	return -1;
}

/* Appends s percent-encoded as a query value (RFC 3986 unreserved
 * characters stay). */
static void put_query_value(buf *q, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char ch;

	for (; *s; s++) {
		ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
			buf_putc(q, (char)ch);
			continue;
		}
		buf_putc(q, '%');
		buf_putc(q, hex[ch >> 4]);
		buf_putc(q, hex[ch & 15]);
	}
}

/* The credentials of /import and its query: a service account
 * ("user:secret" with project_id), an API secret, or else the token. */
static void conf_auth(mp_dest_conf *c, const mp_destination *in)
{
	const char *colon = in->secret ? strchr(in->secret, ':') : NULL;
	buf q;

	buf_init(&q);
	buf_puts(&q, "strict=1");
	if (colon) {
		c->username =
			alloc_strndup(in->secret, (size_t)(colon - in->secret));
		c->password = alloc_strdup(colon + 1);
		c->secret = alloc_strdup(colon + 1);
		buf_puts(&q, "&project_id=");
		put_query_value(&q, in->project_id);
	} else if (in->secret && *in->secret) {
		c->username = alloc_strdup(in->secret);
		c->password = alloc_strdup("");
		c->secret = alloc_strdup(in->secret);
	} else {
		c->username = alloc_strdup(in->project_token);
		c->password = alloc_strdup("");
	}
	c->query_import = buf_steal(&q);
	if (c->secret) {
		c->basic_b64 = mp_redact_basic_form(c->username, c->password);
		c->secrets[0] = c->secret;
		c->secrets[1] = c->basic_b64;
	}
}

static void conf_limits(mp_dest_conf *c, const mp_destination *in)
{
	c->conc = in->concurrency > 0 ? in->concurrency : 8;
	if (c->conc > MAX_CONCURRENCY)
		c->conc = MAX_CONCURRENCY;
	c->batch = in->batch_size > 0 && in->batch_size < MP_MAX_BATCH
			   ? (size_t)in->batch_size
			   : MP_MAX_BATCH;
	c->max_bytes = in->max_bytes > 0 ? in->max_bytes : MP_DEFAULT_MAX_BYTES;
	if (c->max_bytes < 16)
		c->max_bytes = 16;
	if (c->max_bytes > MAX_BYTES_CAP)
		c->max_bytes = MAX_BYTES_CAP;
	c->max_rate = in->max_rate;
}

int mp_dest_conf_init(mp_dest_conf *out, const mp_destination *in, char *err,
		      size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->name = alloc_strdup(name_of(in));
	if (mp_dest_check(in, err, errlen) != 0)
		return -1;
	out->base = alloc_strdup(in->api_base && *in->api_base
					 ? in->api_base
					 : region_host(in->region));
	conf_auth(out, in);
	out->query[MP_EP_ENGAGE] =
		in->geolocate ? "verbose=1&ip=1" : "verbose=1&ip=0";
	out->query[MP_EP_GROUPS] = out->query[MP_EP_ENGAGE];
	out->query[MP_EP_IMPORT] = out->query_import;
	buf_json_str(&out->token, in->project_token);
	conf_limits(out, in);
	return 0;
}

void mp_dest_conf_free(mp_dest_conf *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->base);
	free(c->username);
	free(c->password);
	free(c->secret);
	free(c->basic_b64);
	free(c->query_import);
	buf_free(&c->token);
	memset(c, 0, sizeof(*c));
}

int mp_dest_record_fits(const mp_dest_conf *c, size_t size, char *err,
			size_t errlen)
{
	if (size > MP_MAX_RECORD_BYTES)
		snprintf(err, errlen,
			 "destination %s: a record of %zu bytes is over "
			 "Mixpanel's 1 MiB per record",
			 c->name, size);
	else if (size + 2 > c->max_bytes)
		snprintf(err, errlen,
			 "destination %s: a record of %zu bytes is over "
			 "the request cap of %zu",
			 c->name, size, c->max_bytes);
	else
		return 0;
	return -1;
}
