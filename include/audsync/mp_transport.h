/* mp_transport.h - how a request reaches Mixpanel: one interface, two
 * transports (HTTP, and the stdout: and file: sinks) */
#ifndef AUDSYNC_MP_TRANSPORT_H
#define AUDSYNC_MP_TRANSPORT_H

#include "audsync/buf.h"
#include "audsync/mp_answer.h"
#include "audsync/mp_client.h"

#include <stddef.h>

/*
 * A destination's transport is a small table of functions, as curl's
 * protocol handlers and libgit2's backends are: the client builds,
 * sends and applies answers without asking which kind it holds. The HTTP
 * transport (mp_http.h) answers later, from mp_http_run(); a sink
 * (mp_sink.h) answers during send.
 */
typedef struct mp_transport mp_transport;

/* What a lane keeps between its requests (libcurl's connection, the
 * answer buffer). Made by send, freed by close_channel. Opaque. */
typedef struct mp_transport_channel mp_transport_channel;

/* Hands the outcome of the request req to the client: a classified and
 * redacted answer, and the wait its Retry-After asked for (-1: none).
 * Both borrowed for the call. */
typedef void (*mp_transport_done_fn)(void *ud, void *req, const mp_answer *a,
				     long retry_after_ms);

typedef struct mp_transport_ops {
	/* Appends to out the body of a request to ep that carries text[0,
	 * len), records joined by ','. Returns 0, or -1 (zlib failed). */
	int (*build)(mp_transport *t, buf *out, mp_endpoint ep,
		     const char *text, size_t len);
	/* Sends body (nrecords records; the caller keeps it until the
	 * outcome) to ep on *ch, made here when NULL. The outcome reaches
	 * done with req, during this call or later. Returns 0, or -1 with a
	 * one-line err when the request could not start (no outcome then). */
	int (*send)(mp_transport *t, mp_transport_channel **ch, mp_endpoint ep,
		    const buf *body, size_t nrecords, void *req, char *err,
		    size_t errlen);
	/* Drops the request in flight on ch: its outcome never comes. */
	void (*abandon)(mp_transport *t, mp_transport_channel *ch);
	/* Frees ch (NULL accepted), dropping its request in flight. */
	void (*close_channel)(mp_transport *t, mp_transport_channel *ch);
	/* Frees the transport, after its channels (NULL accepted). */
	void (*close)(mp_transport *t);
} mp_transport_ops;

/* Each transport starts with this; its functions get it back. */
struct mp_transport {
	const mp_transport_ops *ops;
	mp_transport_done_fn done;
	void *ud;
};

#endif
