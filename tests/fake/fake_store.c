/*
 * fake_store.c - in-memory state of the fake Mixpanel server.
 *
 * Events and profiles live in an insertion-ordered hash map: entries are
 * appended to an array (so iteration follows first-ingest order) and an
 * open-addressing slot table indexes them.  Each entry owns one block
 * holding its key bytes followed by its serialized JSON value, which keeps
 * millions of small events cheap in memory.
 */
#include "fake_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FS_DELETED	     UINT32_MAX
#define FS_MAX_PROFILE_PROPS 2000
#define FS_JSON_FLAGS	     (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct fs_entry {
	char *data; /* key bytes, then value bytes, then a NUL */
	uint32_t klen;
	uint32_t vlen; /* FS_DELETED when the profile was deleted */
	uint64_t hash;
};

struct fs_map {
	struct fs_entry *ents;
	size_t n;
	size_t cap;
	uint32_t *slots; /* entry index + 1; 0 means empty */
	size_t nslots;	 /* a power of two, or 0 */
	size_t live;	 /* entries not deleted */
};

struct fake_store {
	pthread_mutex_t lock;
	struct fs_map events;
	struct fs_map profiles;
	struct fs_map groups;
	struct fs_counters counters;
	uint64_t seq; /* makes events without $insert_id unique */
};

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int oom;
};

/* ---- hash map --------------------------------------------------------- */

static uint64_t map_hash(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static long map_find(const struct fs_map *m, const char *key, size_t klen,
		     uint64_t h)
{
	size_t mask = m->nslots - 1;
	size_t i;

	if (m->nslots == 0)
		return -1;
	for (i = h & mask; m->slots[i] != 0; i = (i + 1) & mask) {
		const struct fs_entry *e = &m->ents[m->slots[i] - 1];

		if (e->hash == h && e->klen == klen &&
		    memcmp(e->data, key, klen) == 0)
			return (long)(m->slots[i] - 1);
	}
	return -1;
}

static void map_slot_insert(struct fs_map *m, size_t idx)
{
	size_t mask = m->nslots - 1;
	size_t i = m->ents[idx].hash & mask;

	while (m->slots[i] != 0)
		i = (i + 1) & mask;
	m->slots[i] = (uint32_t)(idx + 1);
}

static int map_grow_slots(struct fs_map *m)
{
	size_t n = m->nslots ? m->nslots * 2 : 1024;
	uint32_t *slots = calloc(n, sizeof(*slots));
	size_t i;

	if (slots == NULL)
		return -1;
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	for (i = 0; i < m->n; i++)
		map_slot_insert(m, i);
	return 0;
}

static int map_reserve(struct fs_map *m)
{
	struct fs_entry *ents;
	size_t cap;

	if ((m->n + 1) * 2 > m->nslots && map_grow_slots(m) != 0)
		return -1;
	if (m->n < m->cap)
		return 0;
	cap = m->cap ? m->cap * 2 : 1024;
	ents = realloc(m->ents, cap * sizeof(*ents));
	if (ents == NULL)
		return -1;
	m->ents = ents;
	m->cap = cap;
	return 0;
}

/* Appends an entry owning block (klen key bytes + vlen value + NUL). */
static int map_append(struct fs_map *m, char *block, size_t klen, size_t vlen,
		      uint64_t h)
{
	struct fs_entry *e;

	if (map_reserve(m) != 0)
		return -1;
	e = &m->ents[m->n];
	e->data = block;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->hash = h;
	map_slot_insert(m, m->n);
	m->n++;
	m->live++;
	return 0;
}

/* Replaces the block of entry idx (same key). */
static void map_replace(struct fs_map *m, size_t idx, char *block, size_t vlen)
{
	struct fs_entry *e = &m->ents[idx];

	if (e->vlen == FS_DELETED)
		m->live++;
	free(e->data);
	e->data = block;
	e->vlen = (uint32_t)vlen;
}

static void map_delete_value(struct fs_map *m, size_t idx)
{
	struct fs_entry *e = &m->ents[idx];

	if (e->vlen == FS_DELETED)
		return;
	e->vlen = FS_DELETED;
	m->live--;
}

static void map_clear(struct fs_map *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->ents[i].data);
	free(m->ents);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Builds a block: key, then value, then NUL. */
static char *make_block(const char *key, size_t klen, const char *val,
			size_t vlen)
{
	char *b = malloc(klen + vlen + 1);

	if (b == NULL)
		return NULL;
	memcpy(b, key, klen);
	memcpy(b + klen, val, vlen);
	b[klen + vlen] = '\0';
	return b;
}

/* ---- store ------------------------------------------------------------ */

struct fake_store *fake_store_new(void)
{
	struct fake_store *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		free(st);
		return NULL;
	}
	return st;
}

void fake_store_free(struct fake_store *st)
{
	if (st == NULL)
		return;
	fake_store_reset(st);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

void fake_store_lock(struct fake_store *st)
{
	pthread_mutex_lock(&st->lock);
}

void fake_store_unlock(struct fake_store *st)
{
	pthread_mutex_unlock(&st->lock);
}

void fake_store_reset(struct fake_store *st)
{
	map_clear(&st->events);
	map_clear(&st->profiles);
	map_clear(&st->groups);
	memset(&st->counters, 0, sizeof(st->counters));
	st->seq = 0;
}

struct fs_counters *fake_store_counters(struct fake_store *st)
{
	return &st->counters;
}

/* ---- events ----------------------------------------------------------- */

static char *put_field(char *p, const void *src, size_t len)
{
	uint32_t l = (uint32_t)len;

	memcpy(p, &l, sizeof(l));
	memcpy(p + sizeof(l), src, len);
	return p + sizeof(l) + len;
}

static size_t event_key_len(const struct fs_event_key *k)
{
	return 3 * sizeof(uint32_t) + k->event_len + k->distinct_id_len +
	       k->insert_id_len + 2 * sizeof(uint64_t);
}

/* Writes the key of k into p; returns the key length. */
static size_t event_key_write(char *p, const struct fs_event_key *k,
			      uint64_t seq)
{
	char *q = p;

	q = put_field(q, k->event, k->event_len);
	q = put_field(q, k->distinct_id, k->distinct_id_len);
	q = put_field(q, k->insert_id ? k->insert_id : "", k->insert_id_len);
	memcpy(q, &k->time_ms, sizeof(k->time_ms));
	q += sizeof(k->time_ms);
	memcpy(q, &seq, sizeof(seq));
	q += sizeof(seq);
	return (size_t)(q - p);
}

int fake_store_add_event(struct fake_store *st, const struct fs_event_key *k,
			 const char *json, size_t json_len)
{
	size_t cap = event_key_len(k);
	uint64_t seq = k->insert_id ? 0 : ++st->seq;
	char *block = malloc(cap + json_len + 1);
	size_t klen;
	uint64_t h;
	long idx;

	if (block == NULL)
		return -1;
	klen = event_key_write(block, k, seq);
	memcpy(block + klen, json, json_len);
	block[klen + json_len] = '\0';
	h = map_hash(block, klen);
	idx = map_find(&st->events, block, klen, h);
	if (idx >= 0) {
		map_replace(&st->events, (size_t)idx, block, json_len);
		st->counters.duplicates++;
		return 1;
	}
	if (map_append(&st->events, block, klen, json_len, h) != 0) {
		free(block);
		return -1;
	}
	return 0;
}

/* ---- profile operations ----------------------------------------------- */

static json_object *number_sum(json_object *cur, json_object *add)
{
	int cur_num = json_object_is_type(cur, json_type_int) ||
		      json_object_is_type(cur, json_type_double);

	if (!cur_num)
		cur = NULL;
	if (json_object_is_type(add, json_type_int) &&
	    (cur == NULL || json_object_is_type(cur, json_type_int)))
		return json_object_new_int64(json_object_get_int64(add) +
					     json_object_get_int64(cur));
	return json_object_new_double(json_object_get_double(add) +
				      json_object_get_double(cur));
}

static int op_set(json_object *props, json_object *val)
{
	json_object_object_foreach(val, k, v)
		json_object_object_add(props, k, json_object_get(v));
	return 0;
}

static int op_set_once(json_object *props, json_object *val)
{
	json_object_object_foreach(val, k, v)
	{
		if (!json_object_object_get_ex(props, k, NULL))
			json_object_object_add(props, k, json_object_get(v));
	}
	return 0;
}

static int op_add(json_object *props, json_object *val)
{
	json_object_object_foreach(val, k, v)
	{
		json_object *cur = NULL;
		json_object *sum;

		json_object_object_get_ex(props, k, &cur);
		sum = number_sum(cur, v);
		if (sum == NULL)
			return -1;
		json_object_object_add(props, k, sum);
	}
	return 0;
}

/* Returns the list property k of props, creating an empty one. */
static json_object *list_prop(json_object *props, const char *k)
{
	json_object *cur = NULL;

	json_object_object_get_ex(props, k, &cur);
	if (json_object_is_type(cur, json_type_array))
		return cur;
	cur = json_object_new_array();
	if (cur != NULL)
		json_object_object_add(props, k, cur);
	return cur;
}

static int list_contains(json_object *list, json_object *item)
{
	size_t i;
	size_t n = json_object_array_length(list);

	for (i = 0; i < n; i++) {
		if (json_object_equal(json_object_array_get_idx(list, i), item))
			return 1;
	}
	return 0;
}

static int op_union(json_object *props, json_object *val)
{
	json_object_object_foreach(val, k, v)
	{
		json_object *list = list_prop(props, k);
		size_t i;

		if (list == NULL)
			return -1;
		for (i = 0; i < json_object_array_length(v); i++) {
			json_object *it = json_object_array_get_idx(v, i);

			if (!list_contains(list, it))
				json_object_array_add(list,
						      json_object_get(it));
		}
	}
	return 0;
}

static int op_append(json_object *props, json_object *val)
{
	json_object_object_foreach(val, k, v)
	{
		json_object *list = list_prop(props, k);

		if (list == NULL)
			return -1;
		json_object_array_add(list, json_object_get(v));
	}
	return 0;
}

static int op_remove(json_object *props, json_object *val)
{
	json_object_object_foreach(val, k, v)
	{
		json_object *list = NULL;
		size_t i;

		json_object_object_get_ex(props, k, &list);
		if (!json_object_is_type(list, json_type_array))
			continue;
		for (i = json_object_array_length(list); i > 0; i--) {
			if (json_object_equal(
				    json_object_array_get_idx(list, i - 1), v))
				json_object_array_del_idx(list, i - 1, 1);
		}
	}
	return 0;
}

static int op_unset(json_object *props, json_object *val)
{
	size_t i;

	for (i = 0; i < json_object_array_length(val); i++) {
		json_object *name = json_object_array_get_idx(val, i);

		json_object_object_del(props, json_object_get_string(name));
	}
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(json_object *props, json_object *val);
} profile_ops[] = {
	{ "$set", op_set },	  { "$set_once", op_set_once },
	{ "$add", op_add },	  { "$union", op_union },
	{ "$append", op_append }, { "$remove", op_remove },
	{ "$unset", op_unset },
};

static int apply_op(json_object *props, const struct fs_update *u, char *err,
		    size_t err_size)
{
	size_t i;

	for (i = 0; i < sizeof(profile_ops) / sizeof(profile_ops[0]); i++) {
		if (strcmp(profile_ops[i].name, u->op) == 0)
			return profile_ops[i].fn(props, u->value);
	}
	snprintf(err, err_size, "unsupported operation %s", u->op);
	return 1;
}

static int set_last_seen(json_object *props, time_t now)
{
	char buf[32];
	struct tm tm;
	json_object *s;

	if (gmtime_r(&now, &tm) == NULL)
		return -1;
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	s = json_object_new_string(buf);
	if (s == NULL)
		return -1;
	json_object_object_add(props, "$last_seen", s);
	return 0;
}

static int set_city(json_object *props)
{
	json_object *s = json_object_new_string("Boardman");

	if (s == NULL)
		return -1;
	json_object_object_add(props, "$city", s);
	return 0;
}

/* Builds the map key of an update; for groups [len][key][id]. */
static char *update_key(const struct fs_update *u, size_t *klen)
{
	size_t n = u->id_len;
	char *key;

	if (u->kind == FS_GROUP)
		n += sizeof(uint32_t) + u->group_id_len;
	key = malloc(n + 1);
	if (key == NULL)
		return NULL;
	if (u->kind == FS_GROUP) {
		char *q = put_field(key, u->id, u->id_len);

		memcpy(q, u->group_id, u->group_id_len);
	} else {
		memcpy(key, u->id, u->id_len);
	}
	*klen = n;
	return key;
}

static json_object *load_props(const struct fs_map *m, long idx)
{
	const struct fs_entry *e;

	if (idx < 0 || m->ents[idx].vlen == FS_DELETED)
		return json_object_new_object();
	e = &m->ents[idx];
	return json_tokener_parse(e->data + e->klen);
}

static int modify_props(json_object *props, const struct fs_update *u,
			char *err, size_t err_size)
{
	int rc = 0;

	if (u->geolocate)
		rc = set_city(props);
	if (rc == 0)
		rc = apply_op(props, u, err, err_size);
	if (rc == 0 && u->set_last_seen)
		rc = set_last_seen(props, u->now);
	if (rc == 0 &&
	    json_object_object_length(props) > FS_MAX_PROFILE_PROPS) {
		snprintf(err, err_size, "profile would exceed %d properties",
			 FS_MAX_PROFILE_PROPS);
		rc = 1;
	}
	return rc;
}

static int store_props(struct fs_map *m, long idx, const char *key, size_t klen,
		       uint64_t h, json_object *props)
{
	size_t vlen;
	const char *s =
		json_object_to_json_string_length(props, FS_JSON_FLAGS, &vlen);
	char *block;

	if (s == NULL)
		return -1;
	block = make_block(key, klen, s, vlen);
	if (block == NULL)
		return -1;
	if (idx >= 0) {
		map_replace(m, (size_t)idx, block, vlen);
		return 0;
	}
	if (map_append(m, block, klen, vlen, h) != 0) {
		free(block);
		return -1;
	}
	return 0;
}

static int is_op(const struct fs_update *u, const char *name)
{
	return strcmp(u->op, name) == 0;
}

int fake_store_apply_update(struct fake_store *st, const struct fs_update *u,
			    char *err, size_t err_size)
{
	struct fs_map *m = u->kind == FS_GROUP ? &st->groups : &st->profiles;
	json_object *props = NULL;
	size_t klen = 0;
	char *key = update_key(u, &klen);
	uint64_t h;
	long idx;
	int exists;
	int rc = -1;

	if (key == NULL)
		goto out;
	h = map_hash(key, klen);
	idx = map_find(m, key, klen, h);
	exists = idx >= 0 && m->ents[idx].vlen != FS_DELETED;
	rc = 0;
	if (is_op(u, "$delete")) {
		if (exists)
			map_delete_value(m, (size_t)idx);
		goto out;
	}
	if (!exists && (is_op(u, "$unset") || is_op(u, "$remove")))
		goto out;
	rc = -1;
	props = load_props(m, idx);
	if (props == NULL)
		goto out;
	rc = modify_props(props, u, err, err_size);
	if (rc == 0)
		rc = store_props(m, idx, key, klen, h, props);
out:
	json_object_put(props);
	free(key);
	return rc;
}

/* ---- JSON output ------------------------------------------------------ */

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_json_chars(struct sbuf *b, const char *s, size_t n)
{
	char esc[8];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			sb_put(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			sb_put(b, esc, 6);
		} else {
			sb_put(b, s + i, 1);
		}
	}
}

static void sb_counter(struct sbuf *b, const char *name, uint64_t v, int first)
{
	char num[32];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	if (!first)
		sb_str(b, ",");
	sb_str(b, "\"");
	sb_str(b, name);
	sb_str(b, "\":");
	sb_str(b, num);
}

static void sb_counters(struct sbuf *b, const struct fake_store *st)
{
	const struct fs_counters *c = &st->counters;

	sb_str(b, "{");
	sb_counter(b, "requests_import", c->requests_import, 1);
	sb_counter(b, "requests_engage", c->requests_engage, 0);
	sb_counter(b, "requests_groups", c->requests_groups, 0);
	sb_counter(b, "requests_track", c->requests_track, 0);
	sb_counter(b, "records_received", c->records_received, 0);
	sb_counter(b, "events_stored", st->events.live, 0);
	sb_counter(b, "duplicates", c->duplicates, 0);
	sb_counter(b, "profiles", st->profiles.live, 0);
	sb_counter(b, "groups", st->groups.live, 0);
	sb_counter(b, "updates_applied", c->updates_applied, 0);
	sb_counter(b, "records_rejected", c->records_rejected, 0);
	sb_counter(b, "faults_injected", c->faults_injected, 0);
	sb_counter(b, "gzip_requests", c->gzip_requests, 0);
	sb_counter(b, "bad_requests", c->bad_requests, 0);
	sb_str(b, "}");
}

/* Writes the JSON name of a profile or group key. */
static void sb_map_key(struct sbuf *b, const struct fs_entry *e, int group)
{
	uint32_t l;

	sb_str(b, "\"");
	if (group) {
		memcpy(&l, e->data, sizeof(l));
		sb_json_chars(b, e->data + sizeof(l), l);
		sb_str(b, "/");
		sb_json_chars(b, e->data + sizeof(l) + l,
			      e->klen - sizeof(l) - l);
	} else {
		sb_json_chars(b, e->data, e->klen);
	}
	sb_str(b, "\":");
}

static void sb_profiles(struct sbuf *b, const struct fs_map *m, int group)
{
	int first = 1;
	size_t i;

	sb_str(b, "{");
	for (i = 0; i < m->n; i++) {
		const struct fs_entry *e = &m->ents[i];

		if (e->vlen == FS_DELETED)
			continue;
		if (!first)
			sb_str(b, ",");
		first = 0;
		sb_map_key(b, e, group);
		sb_put(b, e->data + e->klen, e->vlen);
	}
	sb_str(b, "}");
}

static void sb_events(struct sbuf *b, const struct fs_map *m)
{
	size_t i;

	sb_str(b, "[");
	for (i = 0; i < m->n; i++) {
		const struct fs_entry *e = &m->ents[i];

		if (i > 0)
			sb_str(b, ",");
		sb_put(b, e->data + e->klen, e->vlen);
	}
	sb_str(b, "]");
}

static char *sb_finish(struct sbuf *b, size_t *len)
{
	if (b->oom) {
		free(b->p);
		return NULL;
	}
	*len = b->len;
	return b->p;
}

char *fake_store_state_json(struct fake_store *st, size_t *len)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	sb_str(&b, "{\"profiles\":");
	sb_profiles(&b, &st->profiles, 0);
	sb_str(&b, ",\"groups\":");
	sb_profiles(&b, &st->groups, 1);
	sb_str(&b, ",\"events\":");
	sb_events(&b, &st->events);
	sb_str(&b, ",\"counters\":");
	sb_counters(&b, st);
	sb_str(&b, "}");
	return sb_finish(&b, len);
}

char *fake_store_summary_json(struct fake_store *st, size_t *len)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	sb_counters(&b, st);
	return sb_finish(&b, len);
}
