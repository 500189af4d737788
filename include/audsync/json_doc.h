/* json_doc.h - one JSON text parsed strictly into memory kept for the next */
#ifndef AUDSYNC_JSON_DOC_H
#define AUDSYNC_JSON_DOC_H

#include "audsync/buf.h"
#include "audsync/errbuf.h"

#include <stddef.h>
#include <stdint.h>

/*
 * A parser for the hot path of `audsync forward`: a message is parsed into
 * arrays the document keeps, so that parsing the next message allocates
 * nothing (json-c allocates every value and every object's hash table, and
 * frees them again: more than half of the mapping's time). What it accepts
 * is RFC 8259 JSON and nothing more: no comments, no single quotes, no NaN,
 * strings of valid UTF-8 (no overlong forms, no surrogates, escapes
 * included), names without U+0000, at most JDOC_MAX_DEPTH levels of
 * arrays and objects (json-c's default). A name repeated in one object keeps its first place and its
 * last value, as json-c does.
 */

#define JDOC_MAX_DEPTH 32

typedef enum jdoc_type {
	JDOC_NULL = 0,
	JDOC_FALSE,
	JDOC_TRUE,
	JDOC_NUMBER,
	JDOC_STRING,
	JDOC_ARRAY,
	JDOC_OBJECT
} jdoc_type;

typedef struct jdoc_val jdoc_val;

/* A value (32 bytes: a message of 1 MiB may hold half a million). Members
 * of an object carry their name in key. */
struct jdoc_val {
	unsigned char type;   /* jdoc_type */
	unsigned char is_int; /* NUMBER: an integer that fits int64 */
	uint32_t keylen;
	uint32_t len;	 /* STRING, NUMBER: bytes of s; ARRAY, OBJECT: items */
	const char *key; /* as an object's member: its name, NUL-terminated */
	union {
		const char *s; /* STRING: decoded, NUL-terminated (may hold
				  NULs); NUMBER: its text as written */
		const jdoc_val *kids; /* ARRAY, OBJECT: its len items */
		size_t first;	      /* (where kids lie while parsing) */
	};
};

/* A parsed document and the memory it keeps. Zero it, or jdoc_init(). */
typedef struct jdoc {
	jdoc_val *nodes, *stack;
	size_t nnodes, capnodes, nstack, capstack;
	char *text; /* decoded strings and numbers */
	size_t captext, used;
	void *order; /* scratch for repeated names */
	size_t caporder;
	int depth;
	const char *start, *p, *end;
	const jdoc_val *root;
	char err[AUDSYNC_ERR_LEN];
} jdoc;

void jdoc_init(jdoc *d);
void jdoc_free(jdoc *d); /* accepts a zeroed or freed one */

/*
 * Parses len bytes of text (need not be NUL-terminated; under 2 GiB) as
 * one JSON value,
 * white space around it allowed. Returns 0 and sets *out to the root,
 * valid until the next jdoc_parse() or jdoc_free() of d; or -1 with a
 * one-line reason in d->err ("at byte N: ..."). Memory of a large text is
 * given back by the next parse of a small one.
 */
int jdoc_parse(const jdoc_val **out, jdoc *d, const char *text, size_t len)
	__attribute__((warn_unused_result));

/* The member of object o named key, or NULL (also when o is NULL or not
 * an object). */
const jdoc_val *jdoc_get(const jdoc_val *o, const char *key);

/* 1 when v is there and of type t. */
static inline int jdoc_is(const jdoc_val *v, jdoc_type t)
{
	return v && v->type == t;
}

/* The number v as a double (0 when v is not a number). */
double jdoc_double(const jdoc_val *v);

/* Appends v as compact JSON text (numbers as written). */
void jdoc_write(buf *out, const jdoc_val *v);

#endif
