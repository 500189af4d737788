/* buf.c - growable byte buffer and JSON text writers */
#include "audsync/buf.h"

#include <stdarg.h>
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

void buf_reserve(buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		fputs("audsync: out of memory\n", stderr);
		abort();
	}
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

void buf_putc(buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
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

void buf_json_strn(buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, start = 0;

	/* Worst case every byte becomes \u00XX: reserve once, copy runs. */
	buf_reserve(b, n * 6 + 2);
	b->data[b->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char *o;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		memcpy(b->data + b->len, s + start, i - start);
		b->len += i - start;
		start = i + 1;
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
	memcpy(b->data + b->len, s + start, n - start);
	b->len += n - start;
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

void buf_int(buf *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

	buf_append(b, tmp, (size_t)n);
}

char *buf_steal(buf *b)
{
	char *p = b->data;

	if (!p) {
		p = calloc(1, 1);
		if (!p)
			abort();
	}
	buf_init(b);
	return p;
}
