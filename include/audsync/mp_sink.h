/* mp_sink.h - the stdout: and file: transports: each request one JSON
 * line, every record delivered */
#ifndef AUDSYNC_MP_SINK_H
#define AUDSYNC_MP_SINK_H

#include "audsync/mp_dest.h"
#include "audsync/mp_transport.h"

#include <stddef.h>

/*
 * Opens the sink conf->base names: "stdout:", or "file:PATH" (opened for
 * appending, created 0600, never through a symbolic link). Returns 1 with
 * *out (closed with its ops->close), 0 when base names no sink, or -1
 * with a one-line err. conf must outlive the transport. A request's
 * outcome reaches done during send: delivered, or MP_ACT_UNSENT when the
 * write failed.
 */
int mp_sink_open(mp_transport **out, const mp_dest_conf *conf,
		 mp_transport_done_fn done, void *ud, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
