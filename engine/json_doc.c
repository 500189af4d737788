/* json_doc.c - one JSON text parsed strictly into memory kept for the next
 *
 * Values are parsed depth first onto a stack; when an array or object
 * closes, its items move from the stack to the node array in one block,
 * so the items of a container lie together and are reached by index until
 * the parse ends, by pointer after. Strings are decoded into one text
 * buffer sized before the parse (decoding never lengthens a string, and
 * each string or number gains at most its NUL), so pointers into it stay
 * put while parsing.
 */
#include "audsync/json_doc.h"

#include "audsync/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers larger than this are given back when a small text comes. */
#define KEEP_BYTES (4u << 20)
/* Objects with more members than this find repeated names by sorting. */
#define SMALL_OBJECT 16

typedef struct keyref {
	const char *key;
	size_t len, at;
} keyref;

void jdoc_init(jdoc *d)
{
	memset(d, 0, sizeof(*d));
}

void jdoc_free(jdoc *d)
{
	free(d->nodes);
	free(d->stack);
	free(d->text);
	free(d->order);
	jdoc_init(d);
}

static int fail(jdoc *d, const char *why)
{
	snprintf(d->err, sizeof(d->err), "at byte %zu: %s",
		 (size_t)(d->p - d->start), why);
	return -1;
}

static void grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;

	if (need <= *cap)
		return;
	while (c < need)
		c *= 2;
	*p = alloc_realloc(*p, c * size);
	*cap = c;
}

/* A new value on the stack, named key (or not); its index. */
static size_t push(jdoc *d, jdoc_type t, const char *key, uint32_t keylen)
{
	jdoc_val *v;

	grow((void **)&d->stack, &d->capstack, d->nstack + 1,
	     sizeof(*d->stack));
	v = &d->stack[d->nstack];
	memset(v, 0, sizeof(*v));
	v->type = (unsigned char)t;
	v->key = key;
	v->keylen = keylen;
	return d->nstack++;
}

static void skip_ws(jdoc *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' ||
				 *d->p == '\r' || *d->p == '\t'))
		d->p++;
}

/* The length of the valid UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing over U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* A \uXXXX escape at d->p (its backslash), a surrogate pair as one code
 * point, written at *o. */
static int unicode_escape(jdoc *d, char **o)
{
	unsigned cp, lo;

	if (hex4(d->p + 2, d->end, &cp) != 0)
		return fail(d, "\\u needs four hex digits");
	d->p += 6;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(d, "a lone UTF-16 surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (d->end - d->p < 6 || d->p[0] != '\\' || d->p[1] != 'u' ||
		    hex4(d->p + 2, d->end, &lo) != 0 || lo < 0xdc00 ||
		    lo > 0xdfff)
			return fail(d, "a lone UTF-16 surrogate");
		d->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	*o = put_utf8(*o, cp);
	return 0;
}

static int escape(jdoc *d, char **o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *at;

	if (d->p + 1 >= d->end)
		return fail(d, "a string is not closed");
	if (d->p[1] == 'u')
		return unicode_escape(d, o);
	at = memchr(from, d->p[1], sizeof(from) - 1);
	if (!at)
		return fail(d, "an unknown escape in a string");
	*(*o)++ = to[at - from];
	d->p += 2;
	return 0;
}

/* The string at d->p (its opening quote), decoded into d->text. */
static int string(jdoc *d, const char **s, size_t *len)
{
	char *o = d->text + d->used, *start = o;
	const unsigned char *end = (const unsigned char *)d->end;

	d->p++;
	for (;;) {
		size_t n = buf_json_plain(d->p, (size_t)(d->end - d->p), 1);
		const unsigned char *p;

		memcpy(o, d->p, n);
		o += n;
		d->p += n;
		p = (const unsigned char *)d->p;
		if (p == end)
			return fail(d, "a string is not closed");
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (escape(d, &o) != 0)
				return -1;
			continue;
		}
		if (*p < 0x20)
			return fail(d, "a control character in a string");
		n = utf8_len(p, end);
		if (n == 0)
			return fail(d, "a string is not valid UTF-8");
		memcpy(o, p, n);
		o += n;
		d->p += n;
	}
	d->p++;
	*o = '\0';
	*s = start;
	*len = (size_t)(o - start);
	d->used += *len + 1;
	return 0;
}

static int string_value(jdoc *d, jdoc_val *v)
{
	const char *s;
	size_t n;

	if (string(d, &s, &n) != 0)
		return -1;
	v->type = JDOC_STRING;
	v->s = s;
	v->len = (uint32_t)n;
	return 0;
}

static const char *digits(const char *p, const char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* The number at d->p into v, as RFC 8259 writes numbers. */
static int number(jdoc *d, jdoc_val *v)
{
	const char *p = d->p, *end = d->end, *int_end;
	int neg = *p == '-';
	uint64_t mag = 0;
	char *o;

	p += neg;
	if (p < end && *p == '0')
		int_end = p + 1;
	else if (p < end && *p >= '1' && *p <= '9')
		int_end = digits(p, end);
	else
		return fail(d, "a number needs digits");
	v->is_int = int_end - p <= 19;
	for (; v->is_int && p < int_end; p++)
		mag = mag * 10 + (uint64_t)(*p - '0');
	p = int_end;
	if (p < end && *p == '.') {
		if (p + 1 >= end || p[1] < '0' || p[1] > '9')
			return fail(d, "a number needs digits after '.'");
		p = digits(p + 1, end);
		v->is_int = 0;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p += p + 1 < end && (p[1] == '+' || p[1] == '-') ? 2 : 1;
		if (p >= end || *p < '0' || *p > '9')
			return fail(d, "a number needs digits in its exponent");
		p = digits(p, end);
		v->is_int = 0;
	}
	if (v->is_int && mag > (uint64_t)INT64_MAX + (uint64_t)neg)
		v->is_int = 0;
	o = d->text + d->used;
	v->len = (uint32_t)(p - d->p);
	memcpy(o, d->p, v->len);
	o[v->len] = '\0';
	v->s = o;
	d->used += v->len + 1;
	d->p = p;
	return 0;
}

static int literal(jdoc *d, jdoc_val *v)
{
	static const struct {
		const char *word;
		size_t len;
		jdoc_type t;
	} w[] = { { "true", 4, JDOC_TRUE },
		  { "false", 5, JDOC_FALSE },
		  { "null", 4, JDOC_NULL } };
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		if ((size_t)(d->end - d->p) >= w[i].len &&
		    memcmp(d->p, w[i].word, w[i].len) == 0) {
			v->type = w[i].t;
			d->p += w[i].len;
			return 0;
		}
	}
	return fail(d, "an unexpected character");
}

static int same_key(const jdoc_val *a, const jdoc_val *b)
{
	return a->keylen == b->keylen && memcmp(a->key, b->key, a->keylen) == 0;
}

static int keyref_cmp(const void *pa, const void *pb)
{
	const keyref *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->key, b->key, n);

	if (c != 0)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->at < b->at ? -1 : a->at > b->at;
}

/* kids[later]'s value goes to kids[first]'s place; later is dropped. */
static void keep_last(jdoc_val *kids, size_t first, size_t later)
{
	jdoc_val v = kids[later];

	v.key = kids[first].key;
	v.keylen = kids[first].keylen;
	kids[first] = v;
	kids[later].key = NULL;
}

/* Marks the repeated names of n members, sorting them by name. */
static void mark_repeated_sorted(jdoc *d, jdoc_val *kids, size_t n)
{
	keyref *r;
	size_t i, run = 0;

	grow(&d->order, &d->caporder, n, sizeof(keyref));
	r = d->order;
	for (i = 0; i < n; i++) {
		r[i].key = kids[i].key;
		r[i].len = kids[i].keylen;
		r[i].at = i;
	}
	qsort(r, n, sizeof(*r), keyref_cmp);
	for (i = 1; i < n; i++) {
		if (r[i].len == r[run].len &&
		    memcmp(r[i].key, r[run].key, r[i].len) == 0)
			keep_last(kids, r[run].at, r[i].at);
		else
			run = i;
	}
}

/* Folds repeated names of an object's n members: the first place, the
 * last value. Returns how many members remain. */
static size_t fold_repeated(jdoc *d, jdoc_val *kids, size_t n)
{
	size_t i, j, w = 0;

	if (n > SMALL_OBJECT) {
		mark_repeated_sorted(d, kids, n);
	} else {
		for (i = 1; i < n; i++)
			for (j = 0; j < i; j++)
				if (kids[j].key &&
				    same_key(&kids[i], &kids[j])) {
					keep_last(kids, j, i);
					break;
				}
	}
	for (i = 0; i < n; i++)
		if (kids[i].key)
			kids[w++] = kids[i];
	return w;
}

/* The items of the container at stack index at, which lie on the stack
 * above it, move to the node array. */
static void close_container(jdoc *d, size_t at)
{
	size_t base = at + 1, n = d->nstack - base;

	if (d->stack[at].type == JDOC_OBJECT && n > 1)
		n = fold_repeated(d, d->stack + base, n);
	grow((void **)&d->nodes, &d->capnodes, d->nnodes + n,
	     sizeof(*d->nodes));
	if (n > 0) /* (nodes may be NULL yet) */
		memcpy(d->nodes + d->nnodes, d->stack + base,
		       n * sizeof(*d->nodes));
	d->stack[at].first = d->nnodes;
	d->stack[at].len = (uint32_t)n;
	d->nnodes += n;
	d->nstack = base;
	d->depth--;
}

static int value(jdoc *d, const char *key, size_t keylen);

/* The items of the array or object at stack index at; d->p is past its
 * opening bracket. */
static int items(jdoc *d, size_t at, char close)
{
	int object = close == '}';

	if (++d->depth > JDOC_MAX_DEPTH)
		return fail(d, "nested deeper than 32 levels");
	skip_ws(d);
	if (d->p < d->end && *d->p == close) {
		d->p++;
		close_container(d, at);
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		size_t keylen = 0;

		skip_ws(d);
		if (object) {
			if (d->p >= d->end || *d->p != '"')
				return fail(d, "a member needs a quoted name");
			if (string(d, &key, &keylen) != 0)
				return -1;
			/* Names are C strings to every reader. */
			if (memchr(key, '\0', keylen))
				return fail(d, "a name holds U+0000");
			skip_ws(d);
			if (d->p >= d->end || *d->p != ':')
				return fail(d, "a name needs ':' after it");
			d->p++;
		}
		if (value(d, key, keylen) != 0)
			return -1;
		skip_ws(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			continue;
		}
		if (d->p < d->end && *d->p == close) {
			d->p++;
			close_container(d, at);
			return 0;
		}
		return fail(d, object ? "expected ',' or '}'"
				      : "expected ',' or ']'");
	}
}

static int value(jdoc *d, const char *key, size_t keylen)
{
	size_t at;

	skip_ws(d);
	if (d->p >= d->end)
		return fail(d, "the text ends where a value should be");
	at = push(d, JDOC_NULL, key, (uint32_t)keylen);
	switch (*d->p) {
	case '{':
		d->stack[at].type = JDOC_OBJECT;
		d->p++;
		return items(d, at, '}');
	case '[':
		d->stack[at].type = JDOC_ARRAY;
		d->p++;
		return items(d, at, ']');
	case '"': return string_value(d, &d->stack[at]);
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		d->stack[at].type = JDOC_NUMBER;
		return number(d, &d->stack[at]);
	default: return literal(d, &d->stack[at]);
	}
}

/* Memory for a text of len bytes; what a large one left is given back. */
static void prepare(jdoc *d, size_t len)
{
	size_t need = 2 * len + 16;

	if (d->captext > KEEP_BYTES && need < d->captext / 4) {
		jdoc_free(d);
	} else if (d->capnodes * sizeof(jdoc_val) > KEEP_BYTES &&
		   len < KEEP_BYTES / 16) {
		free(d->nodes);
		free(d->stack);
		free(d->order);
		d->nodes = d->stack = NULL;
		d->order = NULL;
		d->capnodes = d->capstack = d->caporder = 0;
	}
	if (need > d->captext) {
		free(d->text);
		d->text = alloc_calloc(need, 1);
		d->captext = need;
	}
	d->used = 0;
	d->nnodes = 0;
	d->nstack = 0;
	d->depth = 0;
	d->err[0] = '\0';
}

int jdoc_parse(const jdoc_val **out, jdoc *d, const char *text, size_t len)
{
	size_t i;

	prepare(d, len);
	d->start = d->p = text;
	if (len > INT32_MAX)
		return fail(d, "a text of 2 GiB or more");
	d->end = text + len;
	if (value(d, NULL, 0) != 0)
		return -1;
	skip_ws(d);
	if (d->p != d->end)
		return fail(d, "text after the value");
	/* The root joins the nodes, last. */
	grow((void **)&d->nodes, &d->capnodes, d->nnodes + 1,
	     sizeof(*d->nodes));
	d->nodes[d->nnodes++] = d->stack[0];
	d->nstack = 0;
	for (i = 0; i < d->nnodes; i++) {
		jdoc_val *v = &d->nodes[i];

		if (v->type == JDOC_ARRAY || v->type == JDOC_OBJECT)
			v->kids = d->nodes + v->first;
	}
	d->root = &d->nodes[d->nnodes - 1];
	*out = d->root;
	return 0;
}

const jdoc_val *jdoc_get(const jdoc_val *o, const char *key)
{
	size_t i, n;

	if (!o || o->type != JDOC_OBJECT)
		return NULL;
	n = strlen(key);
	for (i = 0; i < o->len; i++) {
		const jdoc_val *m = &o->kids[i];

		if (m->keylen == n && m->key[0] == key[0] &&
		    memcmp(m->key, key, n) == 0)
			return m;
	}
	return NULL;
}

double jdoc_double(const jdoc_val *v)
{
	if (!v || v->type != JDOC_NUMBER)
		return 0;
	return strtod(v->s, NULL);
}

void jdoc_write(buf *out, const jdoc_val *v)
{
	size_t i;

	if (!v) {
		buf_append(out, "null", 4);
		return;
	}
	switch (v->type) {
	case JDOC_NULL: buf_append(out, "null", 4); return;
	case JDOC_FALSE: buf_append(out, "false", 5); return;
	case JDOC_TRUE: buf_append(out, "true", 4); return;
	case JDOC_NUMBER: buf_append(out, v->s, v->len); return;
	case JDOC_STRING: buf_json_strn(out, v->s, v->len); return;
	case JDOC_ARRAY:
	case JDOC_OBJECT: break;
	}
	buf_putc(out, v->type == JDOC_ARRAY ? '[' : '{');
	for (i = 0; i < v->len; i++) {
		if (i > 0)
			buf_putc(out, ',');
		if (v->type == JDOC_OBJECT) {
			buf_json_strn(out, v->kids[i].key, v->kids[i].keylen);
			buf_putc(out, ':');
		}
		jdoc_write(out, &v->kids[i]);
	}
	buf_putc(out, v->type == JDOC_ARRAY ? ']' : '}');
}
