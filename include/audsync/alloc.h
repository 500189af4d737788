/* alloc.h - the one allocator policy: out of memory aborts */
#ifndef AUDSYNC_ALLOC_H
#define AUDSYNC_ALLOC_H

#include <stddef.h>

/*
 * Every allocation of the engine goes through these. On failure they print
 * one line to stderr and abort: a sync that cannot allocate a few kilobytes
 * cannot go on safely, and a missed NULL check would crash later, somewhere
 * less clear. What they return belongs to the caller (free()).
 */
void *alloc_calloc(size_t n, size_t size);
void *alloc_realloc(void *p, size_t size);
/* A copy of s; NULL stays NULL. */
char *alloc_strdup(const char *s);
/* A copy of at most the first n bytes of s, terminated. */
char *alloc_strndup(const char *s, size_t n);
/* Frees the n strings of v, then v (NULL with n 0 is fine). */
void alloc_free_strings(char **v, int n);

#endif
