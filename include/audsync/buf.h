/* buf.h - growable byte buffer and JSON text writers */
#ifndef AUDSYNC_BUF_H
#define AUDSYNC_BUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * A growable byte buffer. The memory belongs to the buffer: buf_free()
 * releases it, buf_reset() keeps it for reuse. On allocation failure the
 * process aborts: a sync that cannot allocate a few kilobytes cannot go on
 * safely, and every caller would otherwise need the same error path.
 * The data is always NUL-terminated (not counted in len).
 */
typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b);
/* Grows b to hold extra more bytes and the NUL (buf_reserve's slow
 * path). */
void buf_grow(buf *b, size_t extra);
void buf_append(buf *b, const char *s, size_t n);
void buf_puts(buf *b, const char *s);

/* Makes room for extra more bytes and the NUL. Inline: the writers call
 * it for every few bytes, and it almost never grows. */
static inline void buf_reserve(buf *b, size_t extra)
{
	if (b->len + extra + 1 > b->cap)
		buf_grow(b, extra);
}

static inline void buf_putc(buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

void buf_printf(buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string (escapes control chars, ", \). */
void buf_json_str(buf *b, const char *s);
void buf_json_strn(buf *b, const char *s, size_t n);
/* How many of the n bytes at s a JSON string holds as they are: none of
 * ", \ or a control character, nor (with ascii) a byte over 0x7f. Eight
 * bytes at a time: the parser and the writer spend their time here. */
size_t buf_json_plain(const char *s, size_t n, int ascii);
/* Appends s as a field of PostgreSQL's COPY text format: backslash, tab,
 * newline and carriage return escaped. */
void buf_copy_text(buf *b, const char *s);
/* Appends s to a PostgreSQL array literal being built in b (empty: the
 * opening brace comes first); buf_array_close() ends it ({} when
 * nothing was added). */
void buf_array_item(buf *b, const char *s);
void buf_array_close(buf *b);
/* Appends a signed decimal integer. */
void buf_int(buf *b, int64_t v);
/* Hands the data to the caller (who frees it) and empties the buffer. */
char *buf_steal(buf *b);

#endif
