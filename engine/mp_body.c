/* mp_body.c - request bodies of the Mixpanel client: batch plan, gzip,
 * the token splice */
#include "audsync/mp_body.h"

#include "audsync/alloc.h"

#include <stdlib.h>
#include <string.h>

/* What an update starts with when it carries its project token. */
static const char token_head[] = "{\"$token\":";
#define TOKEN_HEAD_LEN (sizeof(token_head) - 1)

char *mp_body_queue_add(mp_body_queue *q, size_t size, uint64_t tag)
{
	mp_body_rec *r;
	char *at;

	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->recs = alloc_realloc(q->recs, q->cap * sizeof(*q->recs));
	}
	buf_reserve(&q->data, size + 1);
	if (q->n > 0)
		q->data.data[q->data.len++] = ',';
	r = &q->recs[q->n++];
	r->off = q->data.len;
	r->len = size;
	r->tag = tag;
	at = q->data.data + q->data.len;
	q->data.len += size;
	q->data.data[q->data.len] = '\0';
	return at;
}

const char *mp_body_queue_text(const mp_body_queue *q, size_t from, size_t to,
			       size_t *len)
{
	const mp_body_rec *first = &q->recs[from], *last = &q->recs[to - 1];

	*len = last->off + last->len - first->off;
	return q->data.data + first->off;
}

void mp_body_queue_clear(mp_body_queue *q, size_t keep)
{
	q->data.len = 0;
	q->n = 0;
	if (q->data.cap > keep)
		buf_free(&q->data);
	if (q->cap * sizeof(mp_body_rec) > keep) {
		free(q->recs);
		q->recs = NULL;
		q->cap = 0;
	}
}

void mp_body_queue_free(mp_body_queue *q)
{
	buf_free(&q->data);
	free(q->recs);
	q->recs = NULL;
	q->n = 0;
	q->cap = 0;
}

size_t mp_body_plan(const mp_body_rec *recs, size_t n, size_t max_records,
		    size_t max_bytes)
{
	size_t i, bytes = 2 + recs[0].len;

	if (max_records > n)
		max_records = n;
	for (i = 1; i < max_records; i++) {
		bytes += 1 + recs[i].len;
		if (bytes > max_bytes)
			break;
	}
	return i;
}

int mp_body_gzip_init(z_stream *z)
{
	memset(z, 0, sizeof(*z));
	/* windowBits 15 + 16: a gzip header and trailer, as HTTP wants. */
	if (deflateInit2(z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	return 0;
}

/* Deflates len bytes of in into out, growing out as needed. */
static int deflate_part(z_stream *z, buf *out, const char *in, size_t len,
			int flush)
{
	int zr;

	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)len;
	for (;;) {
		if (out->cap - out->len < 64)
			buf_reserve(out, out->cap);
		z->next_out = (Bytef *)out->data + out->len;
		z->avail_out = (uInt)(out->cap - out->len - 1);
		zr = deflate(z, flush);
		out->len = (size_t)((char *)z->next_out - out->data);
		if (zr == Z_STREAM_END)
			return 0;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return -1;
		if (z->avail_in == 0 && flush == Z_NO_FLUSH)
			return 0;
	}
}

/* "[" + text + "]" as it is. */
static void build_plain(buf *out, const char *text, size_t len)
{
	buf_reserve(out, len + 2);
	out->data[out->len++] = '[';
	memcpy(out->data + out->len, text, len);
	out->len += len;
	out->data[out->len++] = ']';
	out->data[out->len] = '\0';
}

int mp_body_build(buf *out, const char *text, size_t len, z_stream *z)
{
	int rc = -1;

	if (!z) {
		build_plain(out, text, len);
		return 0;
	}
	buf_reserve(out, deflateBound(z, (uLong)len + 2));
	if (deflateReset(z) != Z_OK)
		goto out;
	if (deflate_part(z, out, "[", 1, Z_NO_FLUSH) < 0 ||
	    deflate_part(z, out, text, len, Z_NO_FLUSH) < 0 ||
	    deflate_part(z, out, "]", 1, Z_FINISH) < 0)
		goto out;
	rc = 0;
out:
	out->data[out->len] = '\0';
	return rc;
}

void mp_body_line(buf *out, const char *path, const char *query,
		  const char *text, size_t len)
{
	buf_puts(out, "{\"endpoint\":");
	buf_json_str(out, path);
	buf_puts(out, ",\"query\":");
	buf_json_str(out, query);
	buf_puts(out, ",\"body\":");
	build_plain(out, text, len);
	buf_puts(out, "}\n");
}

/* The length of the JSON string that starts record at offset at, up to
 * and with its closing quote; 0 when there is none. */
static size_t json_string_len(const char *record, size_t len, size_t at)
{
	size_t i;

	if (at >= len || record[at] != '"')
		return 0;
	for (i = at + 1; i < len; i++) {
		if (record[i] == '\\')
			i++;
		else if (record[i] == '"')
			return i + 1 - at;
	}
	return 0;
}

size_t mp_body_token_size(size_t *old, mp_endpoint ep, const char *record,
			  size_t len, size_t token_len)
{
	*old = 0;
	if (ep != MP_EP_IMPORT && len > TOKEN_HEAD_LEN &&
	    memcmp(record, token_head, TOKEN_HEAD_LEN) == 0)
		*old = json_string_len(record, len, TOKEN_HEAD_LEN);
	return *old > 0 ? len - *old + token_len : len;
}

void mp_body_token_write(char *out, const char *record, size_t len, size_t old,
			 const char *token, size_t token_len)
{
	size_t hl = TOKEN_HEAD_LEN;

	if (old == 0) {
		memcpy(out, record, len);
		return;
	}
	memcpy(out, token_head, hl);
	memcpy(out + hl, token, token_len);
	memcpy(out + hl + token_len, record + hl + old, len - hl - old);
}
