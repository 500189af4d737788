/* did_set.h - a map from distinct_id to a number, by hash */
#ifndef AUDSYNC_DID_SET_H
#define AUDSYNC_DID_SET_H

#include <stddef.h>
#include <stdint.h>

/*
 * A map from distinct_id, by 64-bit hash (open addressing, 0 empty), to
 * a number (a set of keys as bits, a time): a million members' take
 * 32-64 MiB where their strings would take twice that. Two distinct_ids
 * of one hash (about 1 in 10^7 at a billion) share their number: the
 * calls (calls.c) then keep a stale exit back, and Mixpanel keeps the
 * member's value either way. Zeroed, it is empty.
 */
typedef struct did_set {
	uint64_t *slot, *val;
	size_t cap, n;
} did_set;

/* The number of did, added as 0 when it is not in the map. */
uint64_t *did_value(did_set *d, const char *did);

/* The number of did, 0 when it is not in the map. */
uint64_t did_get(const did_set *d, const char *did);

/* Frees the map and empties it. */
void did_free(did_set *d);

#endif
