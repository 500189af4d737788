/* did_set.c - a map from distinct_id to a number, by hash */
#include "audsync/did_set.h"

#include "audsync/alloc.h"

#include <stdlib.h>
#include <string.h>

void did_free(did_set *d)
{
	free(d->slot);
	free(d->val);
	memset(d, 0, sizeof(*d));
}

static uint64_t did_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a, then a mix */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h ? h : 1;
}

static size_t did_slot(const did_set *d, uint64_t h)
{
	size_t i = (size_t)h & (d->cap - 1);

	while (d->slot[i] && d->slot[i] != h)
		i = (i + 1) & (d->cap - 1);
	return i;
}

uint64_t *did_value(did_set *d, const char *did)
{
	uint64_t h = did_hash(did);
	size_t i, j;

	if ((d->n + 1) * 2 > d->cap) {
		did_set g = { NULL, NULL, d->cap ? d->cap * 2 : 1024, d->n };

		g.slot = alloc_calloc(g.cap, sizeof(uint64_t));
		g.val = alloc_calloc(g.cap, sizeof(uint64_t));
		for (i = 0; i < d->cap; i++)
			if (d->slot[i]) {
				j = did_slot(&g, d->slot[i]);
				g.slot[j] = d->slot[i];
				g.val[j] = d->val[i];
			}
		did_free(d);
		*d = g;
	}
	i = did_slot(d, h);
	if (!d->slot[i]) {
		d->slot[i] = h;
		d->n++;
	}
	return &d->val[i];
}

uint64_t did_get(const did_set *d, const char *did)
{
	return d->cap ? d->val[did_slot(d, did_hash(did))] : 0;
}
