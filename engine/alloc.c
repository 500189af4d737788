/* alloc.c - the one allocator policy: out of memory aborts */
#include "audsync/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *must(void *p)
{
	if (!p) {
		fputs("audsync: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *alloc_calloc(size_t n, size_t size)
{
	return must(calloc(n ? n : 1, size ? size : 1));
}

void *alloc_realloc(void *p, size_t size)
{
	return must(realloc(p, size ? size : 1));
}

char *alloc_strdup(const char *s)
{
	return s ? must(strdup(s)) : NULL;
}

char *alloc_strndup(const char *s, size_t n)
{
	return must(strndup(s, n));
}

void alloc_free_strings(char **v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
