/* buf.c - growable byte buffer and JSON text writers */
#include "audsync/buf.h"

#include "audsync/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_free(buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_grow(buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	p = alloc_realloc(b->data, cap);
	p[b->len] = '\0'; /* as buf.h promises, even before a first write */
	b->data = p;
	b->cap = cap;
}

void buf_append(buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_puts(buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_printf(buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The bytes of x equal to zero, as their high bits (exact for the lowest
 * one, which is all that is read). */
static uint64_t zero_bytes(uint64_t x)
{
	return (x - ONES) & ~x & HIGHS;
}

/* The first byte of the 8 in x that a JSON string cannot hold as it is,
 * or 8. */
static size_t first_special(uint64_t x, int ascii)
{
	uint64_t hit = ((x - 0x20 * ONES) & ~x & HIGHS) |
		       zero_bytes(x ^ ('"' * ONES)) |
		       zero_bytes(x ^ ('\\' * ONES)) | (ascii ? x & HIGHS : 0);

	/* the lowest hit is the first byte (little-endian) */
	return hit ? (size_t)__builtin_ctzll(hit) / 8 : 8;
}

/* What a JSON string makes of a byte: SPECIAL must be escaped, HIGH is
 * over 0x7f. */
enum { SPECIAL = 1, HIGH = 2 };
static const unsigned char byte_class[256] = { [0x00 ... 0x1f] = SPECIAL,
					       ['"'] = SPECIAL,
					       ['\\'] = SPECIAL,
					       [0x80 ... 0xff] = HIGH };

size_t buf_json_plain(const char *s, size_t n, int ascii)
{
	size_t i = 0, at;
	uint64_t x;
	unsigned char mask;

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == '"' || c == '\\' || (ascii && c > 0x7f))
			return i;
	}
	return n;
#endif
	for (; i + 8 <= n; i += 8) {
		memcpy(&x, s + i, 8);
		at = first_special(x, ascii);
		if (at < 8)
			return i + at;
	}
	if (i == n)
		return n;
	if (n >= 8) {
		/* The last eight bytes again: those before i are plain, so
		 * the first hit among them is at i or after. */
		memcpy(&x, s + n - 8, 8);
		at = first_special(x, ascii);
		return at < 8 ? n - 8 + at : n;
	}
	/* A short string (most keys): byte by byte, by a table. */
	mask = ascii ? SPECIAL | HIGH : SPECIAL;
	for (; i < n; i++)
		if (byte_class[(unsigned char)s[i]] & mask)
			return i;
	return n;
}

void buf_json_strn(buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;

	/* Worst case every byte becomes \u00XX: reserve once, copy runs. */
	buf_reserve(b, n * 6 + 2);
	b->data[b->len++] = '"';
	for (;;) {
		size_t run = buf_json_plain(s + i, n - i, 0);
		unsigned char c;
		char *o;

		memcpy(b->data + b->len, s + i, run);
		b->len += run;
		i += run;
		if (i == n)
			break;
		c = (unsigned char)s[i++];
		o = b->data + b->len;
		o[0] = '\\';
		if (c == '"' || c == '\\') {
			o[1] = (char)c;
			b->len += 2;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			o[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			b->len += 2;
		} else {
			memcpy(o + 1, "u00", 3);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			b->len += 6;
		}
	}
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
}

void buf_json_str(buf *b, const char *s)
{
	buf_json_strn(b, s, strlen(s));
}

void buf_copy_text(buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		char esc;

		if (*s == '\\')
			esc = '\\';
		else if (*s == '\t')
			esc = 't';
		else if (*s == '\n')
			esc = 'n';
		else if (*s == '\r')
			esc = 'r';
		else
			continue;
		buf_append(b, run, (size_t)(s - run));
		buf_putc(b, '\\');
		buf_putc(b, esc);
		run = s + 1;
	}
	buf_append(b, run, (size_t)(s - run));
}

void buf_array_item(buf *b, const char *s)
{
	buf_putc(b, b->len == 0 ? '{' : ',');
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

void buf_array_close(buf *b)
{
	if (b->len == 0)
		buf_putc(b, '{');
	buf_putc(b, '}');
}

void buf_int(buf *b, int64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		*--p = '-';
	buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

char *buf_steal(buf *b)
{
	char *p = b->data;

	if (!p)
		p = alloc_calloc(1, 1);
	buf_init(b);
	return p;
}
