/* mp_http.h - the HTTP transport: libcurl's easy and multi handles and
 * the poll loop */
#ifndef AUDSYNC_MP_HTTP_H
#define AUDSYNC_MP_HTTP_H

#include "audsync/mp_dest.h"
#include "audsync/mp_transport.h"

#include <stddef.h>
#include <stdint.h>

/* libcurl's multi handle, shared by every destination's requests, and
 * the gzip stream of /import bodies. Opaque. */
typedef struct mp_http mp_http;

/* Starts libcurl. opts (not NULL) gives the timeouts and verbose; it is
 * copied. Returns NULL with a one-line err on failure. The caller closes
 * it with mp_http_close(), after every transport made from it. */
mp_http *mp_http_open(const mp_options *opts, char *err, size_t errlen);
void mp_http_close(mp_http *h); /* accepts NULL */

/*
 * The HTTP transport of destination conf (its base an http:// or
 * https:// URL): POST to base + endpoint path + "?" + query; /import
 * gzip-compressed with HTTP Basic, /engage and /groups plain. Answers
 * reach done from mp_http_run(), classified and redacted. conf and h
 * must outlive it. Returns 0 with *out (closed with its ops->close), or
 * -1 with a one-line err.
 */
int mp_http_transport(mp_transport **out, mp_http *h, const mp_dest_conf *conf,
		      mp_transport_done_fn done, void *ud, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

/* One turn of the caller's work at time now (ms): it may send, and
 * lowers *wake to when it wants its next turn. Returns 1 while work is
 * left, 0 when done, -1 on an error of its own. */
typedef int (*mp_http_step_fn)(void *ud, int64_t now, int64_t *wake);

/*
 * The poll loop: calls step, lets libcurl move every request, hands each
 * finished one to its transport's done, and waits for the network until
 * step's wake (250 ms at most, so that a stop flag is seen soon). Returns
 * 0 when step says it is done, -1 when step fails or (with err) libcurl
 * does.
 */
int mp_http_run(mp_http *h, mp_http_step_fn step, void *ud, char *err,
		size_t errlen) __attribute__((warn_unused_result));

#endif
