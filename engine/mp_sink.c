/* mp_sink.c - the stdout: and file: transports: each request one JSON
 * line, every record delivered */
#include "audsync/mp_sink.h"

#include "audsync/alloc.h"
#include "audsync/mp_body.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sink {
	mp_transport base; /* first: the client holds &base */
	const mp_dest_conf *conf;
	const char *label; /* "stdout" or the file's path */
	FILE *out;
	int owned; /* out is ours to close */
} sink;

static int sink_build(mp_transport *t, buf *out, mp_endpoint ep,
		      const char *text, size_t len)
{
	const sink *k = (const sink *)t;

	mp_body_line(out, mp_endpoint_path(ep), k->conf->query[ep], text, len);
	return 0;
}

/* Written at once: the outcome goes to done before this returns. */
static int sink_send(mp_transport *t, mp_transport_channel **ch, mp_endpoint ep,
		     const buf *body, size_t nrecords, void *req, char *err,
		     size_t errlen)
{
	sink *k = (sink *)t;
	mp_answer a;

	(void)ch;
	(void)ep;
	(void)nrecords;
	(void)err;
	(void)errlen;
	memset(&a, 0, sizeof(a));
	a.action = MP_ACT_DELIVERED;
	if (fwrite(body->data, 1, body->len, k->out) != body->len ||
	    fflush(k->out) != 0) {
		a.action = MP_ACT_UNSENT;
		snprintf(a.error, sizeof(a.error), "cannot write %s: %s",
			 k->label, strerror(errno));
	}
	t->done(t->ud, req, &a, -1);
	return 0;
}

static void sink_abandon(mp_transport *t, mp_transport_channel *ch)
{
	(void)t;
	(void)ch;
}

static void sink_close(mp_transport *t)
{
	sink *k = (sink *)t;

	if (!k)
		return;
	if (k->owned && k->out)
		fclose(k->out);
	free(k);
}

static const mp_transport_ops sink_ops = {
	.build = sink_build,
	.send = sink_send,
	.abandon = sink_abandon,
	.close_channel = sink_abandon,
	.close = sink_close,
};

/* Never through a symbolic link planted at the path: it would send the
 * records into whatever file it points at. */
static FILE *open_file(const char *path, const char *name, char *err,
		       size_t errlen)
{
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		      0600);
	FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
	int e = errno;

	if (f)
		return f;
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "destination %s: cannot open %s: %s", name, path,
		 e == ELOOP ? "it is a symbolic link, which a file: sink "
			      "never follows"
			    : strerror(e));
	return NULL;
}

int mp_sink_open(mp_transport **out, const mp_dest_conf *conf,
		 mp_transport_done_fn done, void *ud, char *err, size_t errlen)
{
	const char *base = conf->base;
	FILE *f = stdout;
	sink *k;

	if (strncmp(base, "file:", 5) == 0) {
		f = open_file(base + 5, conf->name, err, errlen);
		if (!f)
			return -1;
	} else if (strcmp(base, "stdout:") != 0) {
		return 0;
	}
	k = alloc_calloc(1, sizeof(*k));
	k->base.ops = &sink_ops;
	k->base.done = done;
	k->base.ud = ud;
	k->conf = conf;
	k->out = f;
	k->owned = f != stdout;
	k->label = k->owned ? base + 5 : "stdout";
	*out = &k->base;
	return 1;
}
