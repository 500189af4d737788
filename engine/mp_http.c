/* mp_http.c - the HTTP transport: libcurl's easy and multi handles and
 * the poll loop */
#include "audsync/mp_http.h"

#include "audsync/alloc.h"
#include "audsync/log.h"
#include "audsync/mp_body.h"
#include "audsync/mp_policy.h"
#include "audsync/mp_redact.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#ifndef AUDSYNC_VERSION
#define AUDSYNC_VERSION "0.0.0"
#endif

#define POLL_MAX_MS 250		  /* how late a stop flag is noticed */
#define RESP_CAP    (1024 * 1024) /* answer bytes kept for parsing */

/* The User-Agent of every request. */
static const char user_agent[] = "audsync/" AUDSYNC_VERSION;

struct mp_http {
	mp_options opt;
	CURLM *multi;
	z_stream z; /* /import bodies, one at a time */
	int z_ready;
};

typedef struct http_dest {
	mp_transport base; /* first: the client holds &base */
	mp_http *h;
	const mp_dest_conf *conf;
	char *url[MP_EP_COUNT];
	struct curl_slist *hdr_plain;
	struct curl_slist *hdr_gzip;
} http_dest;

/* A lane's connection: one easy handle, reused request after request. */
struct mp_transport_channel {
	http_dest *t;
	CURL *easy;
	mp_endpoint ep;
	void *req; /* the client's, for done */
	size_t nrecords;
	int busy;
	long retry_after_ms;
	buf resp;
	char curl_err[CURL_ERROR_SIZE];
};

mp_http *mp_http_open(const mp_options *opts, char *err, size_t errlen)
{
	mp_http *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl cannot be initialised");
		return NULL;
	}
	h = alloc_calloc(1, sizeof(*h));
	h->opt = *opts;
	h->multi = curl_multi_init();
	if (!h->multi) {
		snprintf(err, errlen, "libcurl multi handle cannot be created");
		free(h);
		curl_global_cleanup();
		return NULL;
	}
	return h;
}

void mp_http_close(mp_http *h)
{
	if (!h)
		return;
	curl_multi_cleanup(h->multi);
	if (h->z_ready)
		deflateEnd(&h->z);
	free(h);
	curl_global_cleanup();
}

/* ------------------------------------------------------------------ */
/* libcurl's callbacks                                                */
/* ------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	mp_transport_channel *ch = ud;
	size_t n = size * nmemb, room = RESP_CAP - ch->resp.len;

	/* past the cap the answer is read and dropped, not failed */
	if (room > 0)
		buf_append(&ch->resp, ptr, n < room ? n : room);
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	mp_transport_channel *ch = ud;
	size_t n = size * nmemb;

	if (n > 5 && strncmp(ptr, "HTTP/", 5) == 0)
		ch->retry_after_ms = -1; /* a new answer (after a 100) */
	if (n > 12 && strncasecmp(ptr, "retry-after:", 12) == 0)
		ch->retry_after_ms =
			mp_policy_retry_after(ptr + 12, n - 12, time(NULL));
	return n;
}

static int on_debug(CURL *e, curl_infotype type, char *data, size_t size,
		    void *ud)
{
	const http_dest *t = ud;
	const char *mark;
	buf b;

	(void)e;
	if (type == CURLINFO_TEXT)
		mark = "* ";
	else if (type == CURLINFO_HEADER_IN)
		mark = "< ";
	else if (type == CURLINFO_HEADER_OUT)
		mark = "> ";
	else
		return 0; /* bodies: records, never credentials; too long */
	buf_init(&b);
	buf_puts(&b, mark);
	mp_redact(&b, data, size, t->conf->secrets);
	if (b.len > 0 && b.data[b.len - 1] != '\n')
		buf_putc(&b, '\n');
	fwrite(b.data, 1, b.len, stderr);
	buf_free(&b);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The transport's functions                                          */
/* ------------------------------------------------------------------ */

/* The options that never change for a channel's easy handle. */
static int easy_setup(mp_transport_channel *ch)
{
	const http_dest *t = ch->t;
	const mp_options *o = &t->h->opt;
	CURL *e = curl_easy_init();
	int import = ch->ep == MP_EP_IMPORT, rc = 0;

	if (!e)
		return -1;
	rc |= curl_easy_setopt(e, CURLOPT_URL, t->url[ch->ep]);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)ch);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       o->connect_timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER,
			       import ? t->hdr_gzip : t->hdr_plain);
	rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)ch);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)ch);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ch->curl_err);
	if (import) {
		rc |= curl_easy_setopt(e, CURLOPT_HTTPAUTH,
				       (long)CURLAUTH_BASIC);
		rc |= curl_easy_setopt(e, CURLOPT_USERNAME, t->conf->username);
		rc |= curl_easy_setopt(e, CURLOPT_PASSWORD, t->conf->password);
	}
	if (o->verbose) {
		rc |= curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
		rc |= curl_easy_setopt(e, CURLOPT_DEBUGDATA, (void *)t);
		rc |= curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	}
	if (rc != 0) {
		curl_easy_cleanup(e);
		return -1;
	}
	ch->easy = e;
	return 0;
}

/* /import goes gzip-compressed (Content-Encoding: gzip), the others
 * plain: /engage does not take gzip. */
static int http_build(mp_transport *tr, buf *out, mp_endpoint ep,
		      const char *text, size_t len)
{
	mp_http *h = ((http_dest *)tr)->h;

	if (ep != MP_EP_IMPORT)
		return mp_body_build(out, text, len, NULL);
	if (!h->z_ready) {
		if (mp_body_gzip_init(&h->z) < 0)
			return -1;
		h->z_ready = 1;
	}
	return mp_body_build(out, text, len, &h->z);
}

static int http_send(mp_transport *tr, mp_transport_channel **chp,
		     mp_endpoint ep, const buf *body, size_t nrecords,
		     void *req, char *err, size_t errlen)
{
	http_dest *t = (http_dest *)tr;
	mp_transport_channel *ch = *chp;
	int rc = 0;

	if (!ch) {
		ch = alloc_calloc(1, sizeof(*ch));
		ch->t = t;
		ch->ep = ep;
		*chp = ch;
	}
	if (!ch->easy && easy_setup(ch) < 0) {
		snprintf(err, errlen, "destination %s: cannot set up libcurl",
			 t->conf->name);
		return -1;
	}
	ch->resp.len = 0;
	ch->curl_err[0] = '\0';
	ch->retry_after_ms = -1;
	ch->req = req;
	ch->nrecords = nrecords;
	rc |= curl_easy_setopt(ch->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			       (curl_off_t)body->len);
	rc |= curl_easy_setopt(ch->easy, CURLOPT_POSTFIELDS, body->data);
	if (rc != 0 ||
	    curl_multi_add_handle(t->h->multi, ch->easy) != CURLM_OK) {
		snprintf(err, errlen, "destination %s: cannot start a request",
			 t->conf->name);
		return -1;
	}
	ch->busy = 1;
	return 0;
}

static void http_abandon(mp_transport *tr, mp_transport_channel *ch)
{
	if (!ch || !ch->busy)
		return;
	curl_multi_remove_handle(((http_dest *)tr)->h->multi, ch->easy);
	ch->busy = 0;
}

static void http_close_channel(mp_transport *tr, mp_transport_channel *ch)
{
	if (!ch)
		return;
	http_abandon(tr, ch);
	if (ch->easy)
		curl_easy_cleanup(ch->easy);
	buf_free(&ch->resp);
	free(ch);
}

static void http_close(mp_transport *tr)
{
	http_dest *t = (http_dest *)tr;
	int ep;

	if (!t)
		return;
	for (ep = 0; ep < MP_EP_COUNT; ep++)
		free(t->url[ep]);
	curl_slist_free_all(t->hdr_plain);
	curl_slist_free_all(t->hdr_gzip);
	free(t);
}

static const mp_transport_ops http_ops = {
	.build = http_build,
	.send = http_send,
	.abandon = http_abandon,
	.close_channel = http_close_channel,
	.close = http_close,
};

/* The URL of each endpoint under the destination's base. */
static void dest_urls(http_dest *t)
{
	const char *base = t->conf->base;
	size_t blen = strlen(base);
	buf u;
	int ep;

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	for (ep = 0; ep < MP_EP_COUNT; ep++) {
		buf_init(&u);
		buf_append(&u, base, blen);
		buf_puts(&u, mp_endpoint_path((mp_endpoint)ep));
		buf_putc(&u, '?');
		buf_puts(&u, t->conf->query[ep]);
		t->url[ep] = buf_steal(&u);
	}
}

int mp_http_transport(mp_transport **out, mp_http *h, const mp_dest_conf *conf,
		      mp_transport_done_fn done, void *ud, char *err,
		      size_t errlen)
{
	http_dest *t = alloc_calloc(1, sizeof(*t));
	struct curl_slist *p, *g;

	t->base.ops = &http_ops;
	t->base.done = done;
	t->base.ud = ud;
	t->h = h;
	t->conf = conf;
	dest_urls(t);
	p = curl_slist_append(NULL, "Content-Type: application/json");
	t->hdr_plain = p ? curl_slist_append(p, "Expect:") : NULL;
	g = curl_slist_append(NULL, "Content-Type: application/json");
	g = g ? curl_slist_append(g, "Content-Encoding: gzip") : NULL;
	t->hdr_gzip = g ? curl_slist_append(g, "Expect:") : NULL;
	if (!t->hdr_plain || !t->hdr_gzip) {
		snprintf(err, errlen, "destination %s: out of memory",
			 conf->name);
		http_close(&t->base);
		return -1;
	}
	*out = &t->base;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The poll loop                                                      */
/* ------------------------------------------------------------------ */

static void log_answer(const mp_transport_channel *ch, long status,
		       const mp_answer *a)
{
	log_debug("mixpanel answer", "destination", ch->t->conf->name,
		  "endpoint", mp_endpoint_path(ch->ep),
		  LOG_INT("status", status), LOG_INT("records", ch->nrecords),
		  "action", mp_answer_action_name(a->action), "error",
		  a->error);
}

static void finish_transfer(mp_http *h, CURLMsg *m)
{
	mp_transport_channel *ch = NULL;
	long status = 0;
	const char *transport = NULL;
	char *priv = NULL;
	mp_answer a;

	curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
	ch = (mp_transport_channel *)priv;
	curl_multi_remove_handle(h->multi, m->easy_handle);
	ch->busy = 0;
	if (m->data.result != CURLE_OK)
		transport = ch->curl_err[0]
				    ? ch->curl_err
				    : curl_easy_strerror(m->data.result);
	else
		curl_easy_getinfo(ch->easy, CURLINFO_RESPONSE_CODE, &status);
	mp_answer_classify(&a, ch->ep, transport, status, ch->resp.data,
			   ch->resp.len, ch->nrecords);
	/* A server may quote the request's credentials back: they go
	 * before anything reads the answer (the debug log, dead letters,
	 * errors). */
	mp_answer_redact(&a, ch->t->conf->secrets);
	if (log_min_level <= LOG_LEVEL_DEBUG)
		log_answer(ch, status, &a);
	ch->t->base.done(ch->t->base.ud, ch->req, &a, ch->retry_after_ms);
	mp_answer_free(&a);
}

/* Hands finished transfers to their done functions; returns how many. */
static int drain_done(mp_http *h)
{
	CURLMsg *m;
	int left = 0, n = 0;

	for (;;) {
		m = curl_multi_info_read(h->multi, &left);
		if (!m)
			break;
		if (m->msg != CURLMSG_DONE)
			continue;
		finish_transfer(h, m);
		n++;
	}
	return n;
}

int mp_http_run(mp_http *h, mp_http_step_fn step, void *ud, char *err,
		size_t errlen)
{
	int running = 0, pending;
	int64_t now, wake;

	for (;;) {
		now = mp_policy_now_ms();
		wake = now + POLL_MAX_MS;
		pending = step(ud, now, &wake);
		if (pending <= 0)
			return pending;
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			snprintf(err, errlen, "libcurl multi interface failed");
			return -1;
		}
		if (drain_done(h) > 0)
			continue;
		now = mp_policy_now_ms();
		if (curl_multi_poll(h->multi, NULL, 0,
				    wake > now ? (int)(wake - now) : 0,
				    NULL) != CURLM_OK) {
			snprintf(err, errlen, "libcurl poll failed");
			return -1;
		}
	}
}
