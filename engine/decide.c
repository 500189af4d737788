/* decide.c - what one changed profile's distinct_ids are told (pure) */
#include "audsync/decide.h"

#include "audsync/alloc.h"

#include "audsync/mp_payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One ledger line, old or new. */
typedef struct line {
	char *type, *value, *did;
	long long created;
	int current;
} line;

/* What one distinct_id of the profile was told. */
typedef struct dstate {
	char *did;
	int anon;	     /* an anonymous id of the profile */
	int current;	     /* a distinct_id of a current target */
	int handled;	     /* track mode: its events are decided */
	int change_call;     /* identify mode: the call that told it this
			    * profile's change, -1 none */
	long long email_max; /* newest email told to it, 0 none */
	json_object *told;   /* {key: [value, time_ms]}, owned */
} dstate;

/* A current target. */
typedef struct target {
	const decide_id *id;
	const char *did;
} target;

typedef struct priv {
	line *old;
	int nold;
	dstate *ds;
	int nds;
	target *tg;
	int ntg;
	json_object *value, *old_value;
	char *text;   /* the old lines, split in place */
	char **names; /* keys of the calls, owned */
	int nnames, capnames;
	int known; /* a valid user_id */
} priv;

void decision_init(decision *d)
{
	memset(d, 0, sizeof(*d));
	buf_init(&d->value);
	buf_init(&d->lines);
}

/* An anonymous distinct_id told before that a member now known keeps
 * (tell_stale()). */
static int kept(const decision *d, const priv *p, const dstate *st)
{
	return d->member && p->known && st->anon && !st->current;
}

int decision_nholds(const decision *d)
{
	const priv *p = d->priv;
	int i, n;

	if (!p || !d->member)
		return 0;
	for (n = p->ntg, i = 0; i < p->nds; i++)
		n += kept(d, p, &p->ds[i]);
	return n;
}

const char *decision_holds(const decision *d, int i)
{
	const priv *p = d->priv;
	int k;

	if (i < p->ntg)
		return p->tg[i].did;
	for (i -= p->ntg, k = 0; k < p->nds; k++)
		if (kept(d, p, &p->ds[k]) && i-- == 0)
			return p->ds[k].did;
	return NULL;
}

json_object *decision_value(decision *d)
{
	priv *p = d->priv;

	if (!p || !d->member)
		return NULL;
	if (!p->value)
		p->value = mp_json_parse_exact(d->value.data);
	return p->value;
}

void decision_reset(decision *d)
{
	priv *p = d->priv;
	int i;

	if (p) {
		for (i = 0; i < p->nds; i++) {
			free(p->ds[i].did);
			json_object_put(p->ds[i].told);
		}
		free(p->ds);
		free(p->old);
		free(p->tg);
		free(p->text);
		alloc_free_strings(p->names, p->nnames);
		json_object_put(p->value);
		json_object_put(p->old_value);
		free(p);
	}
	d->priv = NULL;
	d->ncalls = 0;
	d->nkeys = 0;
	d->skipped = 0;
	d->keep = 0;
	d->member = 0;
	d->since_ms = 0;
	buf_reset(&d->value);
	buf_reset(&d->lines);
}

void decision_free(decision *d)
{
	decision_reset(d);
	free(d->calls);
	free(d->keys);
	buf_free(&d->value);
	buf_free(&d->lines);
}

/* ---- reading the ledger row -------------------------------------------- */

static dstate *find_did(priv *p, const char *did)
{
	int i;

	for (i = 0; i < p->nds; i++)
		if (strcmp(p->ds[i].did, did) == 0)
			return &p->ds[i];
	return NULL;
}

/* The state of did, added empty when new (room: see decide_profile). */
static dstate *did_state(priv *p, const char *did)
{
	dstate *s = find_did(p, did);

	if (s)
		return s;
	s = &p->ds[p->nds++];
	memset(s, 0, sizeof(*s));
	s->did = alloc_strdup(did);
	s->change_call = -1;
	s->told = json_object_new_object();
	return s;
}

/* {key: [value, ms]} for every key of value at ms. */
static json_object *told_all(json_object *value, long long ms)
{
	json_object *t = json_object_new_object();

	json_object_object_foreach(value, k, v)
	{
		json_object *a = json_object_new_array();

		json_object_array_add(a, json_object_get(v));
		json_object_array_add(a, json_object_new_int64(ms));
		json_object_object_add(t, k, a);
	}
	return t;
}

/* Splits s at sep into at most max fields; returns how many. */
static int split(char *s, char sep, char **f, int max)
{
	int n = 0;

	f[n++] = s;
	while (n < max && (s = strchr(s, sep)) != NULL) {
		*s++ = '\0';
		f[n++] = s;
	}
	return n;
}

/* Reads one old line into p->old and its distinct_id's state. */
static int read_line(priv *p, char *text, long long since, char *err,
		     size_t errlen)
{
	char *f[6];
	int n = split(text, '\t', f, 6);
	line *l = &p->old[p->nold];
	dstate *s;

	if (n != 3 && n != 6) {
		snprintf(err, errlen, "ledger: a line has %d fields", n);
		return -1;
	}
	l->type = f[0];
	l->value = f[1];
	l->did = f[2];
	l->created = n == 6 ? strtoll(f[3], NULL, 10) : 0;
	l->current = n == 3 || f[4][0] == 'c';
	p->nold++;
	s = find_did(p, l->did);
	if (!s) {
		s = did_state(p, l->did);
		json_object_put(s->told);
		s->told = n == 6 && f[5][0] ? mp_json_parse_exact(f[5])
			  : p->old_value    ? told_all(p->old_value, since)
					    : json_object_new_object();
		if (!s->told) {
			snprintf(err, errlen, "ledger: unreadable told value");
			return -1;
		}
	}
	if (n == 6 ? f[4][1] == 'a'
		   : strcmp(l->type, "anonymous_id") == 0 &&
			     strcmp(l->value, l->did) == 0)
		s->anon = 1;
	if (strcmp(l->type, "email") == 0 && l->created > s->email_max)
		s->email_max = l->created;
	return 0;
}

static int read_ledger(priv *p, const decide_in *in, char *err, size_t errlen)
{
	char *s, *next;
	int n = 1;

	if (!in->old_lines || !in->old_lines[0])
		return 0;
	p->text = alloc_strdup(in->old_lines);
	for (s = p->text; *s; s++)
		n += *s == '\n';
	p->old = alloc_calloc((size_t)n, sizeof(line));
	for (s = p->text; s; s = next) {
		next = strchr(s, '\n');
		if (next)
			*next++ = '\0';
		if (*s && read_line(p, s, in->old_since_ms, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* ---- targets ------------------------------------------------------------ */

/* Values that cannot be a distinct_id, nor kept in the line format. */
static int id_valid(const char *v)
{
	return !mp_distinct_id_invalid(v) && !strpbrk(v, "\t\n\r");
}

static int id_cmp(const void *a, const void *b)
{
	const decide_id *x = *(const decide_id *const *)a;
	const decide_id *y = *(const decide_id *const *)b;
	int c;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	c = strcmp(x->type, y->type);
	return c ? c : strcmp(x->value, y->value);
}

/* 1 when another valid identifier of the same type is preferred to ids[i]
 * by id_sync first/last. */
static int outranked(const decide_sync *s, const decide_id **ids, int n, int i)
{
	int j;

	for (j = 0; s->id_sync != DECIDE_ID_ALL && j < n; j++) {
		int better = s->id_sync == DECIDE_ID_FIRST ? j < i : j > i;

		if (better && strcmp(ids[j]->type, ids[i]->type) == 0 &&
		    id_valid(ids[j]->value))
			return 1;
	}
	return 0;
}

/*
 * One target per valid identifier (id_sync first/last: the oldest/newest
 * of each type), in created_at order. The distinct_id is the newest valid
 * user_id; without one an anonymous id stands for itself and the newest
 * one for the rest; else the target is skipped.
 */
static void choose_targets(decision *d, priv *p, const decide_sync *s,
			   const decide_in *in)
{
	const decide_id **ids = alloc_calloc((size_t)in->nids, sizeof(*ids));
	const char *user = NULL, *anon = NULL;
	int i;

	for (i = 0; i < in->nids; i++)
		ids[i] = &in->ids[i];
	qsort(ids, (size_t)in->nids, sizeof(*ids), id_cmp);
	for (i = 0; i < in->nids; i++) {
		if (!id_valid(ids[i]->value)) {
			d->skipped++;
			continue;
		}
		if (strcmp(ids[i]->type, "user_id") == 0)
			user = ids[i]->value;
		if (strcmp(ids[i]->type, "anonymous_id") == 0)
			anon = ids[i]->value;
	}
	p->known = user != NULL;
	p->tg = alloc_calloc((size_t)in->nids, sizeof(target));
	for (i = 0; i < in->nids; i++) {
		const char *did;

		if (!id_valid(ids[i]->value) || outranked(s, ids, in->nids, i))
			continue;
		did = user ? user
		      : strcmp(ids[i]->type, "anonymous_id") == 0
			      ? ids[i]->value
			      : anon;
		if (!did) {
			d->skipped++;
			continue;
		}
		p->tg[p->ntg].id = ids[i];
		p->tg[p->ntg++].did = did;
	}
	free(ids);
}

/* ---- calls -------------------------------------------------------------- */

/* Room for one more of n items in *p (capacity *cap): the array, moved
 * when it grew. */
static void *grow(void *p, int n, int *cap, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 16;
	return alloc_realloc(p, (size_t)*cap * size);
}

static decide_call *new_call(decision *d, const char *did, const char *email)
{
	decide_call *c;

	d->calls = grow(d->calls, d->ncalls, &d->capcalls, sizeof(*d->calls));
	c = &d->calls[d->ncalls++];
	c->did = did;
	c->email = email;
	c->first_key = d->nkeys;
	c->nkeys = 0;
	c->raw = NULL;
	c->stale = 0;
	return c;
}

/* A copy of key that lives until decision_reset(). */
static const char *intern(priv *p, const char *key)
{
	int i;

	for (i = 0; i < p->nnames; i++)
		if (strcmp(p->names[i], key) == 0)
			return p->names[i];
	p->names = grow(p->names, p->nnames, &p->capnames, sizeof(char *));
	p->names[p->nnames] = alloc_strdup(key);
	return p->names[p->nnames++];
}

/* Adds key = value at ms to call c and to what its distinct_id was told. */
static void add_key(decision *d, decide_call *c, dstate *s, const char *key,
		    json_object *value, long long ms)
{
	json_object *a = json_object_new_array();
	decide_key *k;

	json_object_array_add(a, json_object_get(value));
	json_object_array_add(a, json_object_new_int64(ms));
	json_object_object_add(s->told, key, a);
	d->keys = grow(d->keys, d->nkeys, &d->capkeys, sizeof(*d->keys));
	/* borrowed from s->told, which lives until decision_reset() */
	json_object_object_get_ex(s->told, key, &a);
	k = &d->keys[d->nkeys++];
	k->key = intern(d->priv, key);
	k->value = json_object_array_get_idx(a, 0);
	k->time_ms = ms;
	c->nkeys++;
}

/* What s was told of key: 1 and *v, *ms when told. */
static int told_of(const dstate *s, const char *key, json_object **v,
		   long long *ms)
{
	json_object *a;

	if (!json_object_object_get_ex(s->told, key, &a) ||
	    json_object_array_length(a) != 2)
		return 0;
	*v = json_object_array_get_idx(a, 0);
	*ms = json_object_get_int64(json_object_array_get_idx(a, 1));
	return 1;
}

static int same(json_object *a, json_object *b)
{
	return json_object_equal(a, b);
}

/* null for each key s was told that value no longer has; in full (a
 * resync) again to a key told null, at the time it was told. Returns
 * how many keys changed. */
static int tell_gone(decision *d, decide_call *c, dstate *s,
		     const decide_in *in, json_object *value, int full)
{
	json_object *v;
	long long ms;
	int nchanged = 0;

	json_object_object_foreach(s->told, k, a)
	{
		(void)a;
		if (json_object_object_get_ex(value, k, NULL) ||
		    !told_of(s, k, &v, &ms))
			continue;
		if (v != NULL) {
			add_key(d, c, s, k, NULL, in->as_of_ms);
			nchanged++;
		} else if (full) {
			add_key(d, c, s, k, NULL, ms);
		}
	}
	return nchanged;
}

/*
 * Tells s the value of a member: every key in full (a new target, a
 * resync), else the keys whose told value differs; and null for a key
 * it was told that the value no longer has. A re-sent key keeps the
 * time it was told at, so a re-sent event is a duplicate. Returns the
 * call, or NULL when there is nothing to tell.
 */
static decide_call *tell_value(decision *d, dstate *s, const decide_in *in,
			       json_object *value, int full, int *changed)
{
	decide_call *c = new_call(d, s->did, NULL);
	json_object *v;
	long long ms;
	int nchanged = 0;

	json_object_object_foreach(value, k, nv)
	{
		int told = told_of(s, k, &v, &ms);

		if (told && same(v, nv)) {
			if (full)
				add_key(d, c, s, k, nv, ms);
		} else {
			add_key(d, c, s, k, nv, in->as_of_ms);
			nchanged++;
		}
	}
	nchanged += tell_gone(d, c, s, in, value, full);
	*changed = nchanged > 0;
	if (c->nkeys > 0 || full)
		return c;
	d->ncalls--;
	return NULL;
}

/* The exit value (false for an audience, null for a trait) to every key
 * s was told something else; on a resync again to every key told it, at
 * the time it was told (a re-sent event is a duplicate). */
static void tell_exit(decision *d, const decide_sync *s, dstate *st,
		      const decide_in *in)
{
	json_object *exitv = s->is_trait ? NULL : json_object_new_boolean(0);
	decide_call *c = new_call(d, st->did, NULL);
	json_object *v;
	long long ms;
	json_object *keys = json_object_new_array();
	size_t i;

	json_object_object_foreach(st->told, k, a)
	{
		(void)a;
		json_object_array_add(keys, json_object_new_string(k));
	}
	for (i = 0; i < json_object_array_length(keys); i++) {
		const char *k = json_object_get_string(
			json_object_array_get_idx(keys, i));

		if (!told_of(st, k, &v, &ms))
			continue;
		if (!same(v, exitv))
			add_key(d, c, st, k, exitv, in->as_of_ms);
		else if (in->full)
			add_key(d, c, st, k, exitv, ms);
	}
	json_object_put(keys);
	json_object_put(exitv);
	c->stale = 1;
	if (c->nkeys == 0)
		d->ncalls--;
}

/* A new call with the keys of call i (to another target of its
 * distinct_id). */
static decide_call *copy_call(decision *d, int i)
{
	decide_call *c = new_call(d, d->calls[i].did, NULL);
	int j, first = d->calls[i].first_key, n = d->calls[i].nkeys;

	for (j = 0; j < n; j++) {
		d->keys =
			grow(d->keys, d->nkeys, &d->capkeys, sizeof(*d->keys));
		d->keys[d->nkeys++] = d->keys[first + j];
	}
	c->nkeys = n;
	return c;
}

static int line_current(const priv *p, const target *t)
{
	int i;

	for (i = 0; i < p->nold; i++)
		if (p->old[i].current &&
		    strcmp(p->old[i].type, t->id->type) == 0 &&
		    strcmp(p->old[i].value, t->id->value) == 0 &&
		    strcmp(p->old[i].did, t->did) == 0)
			return 1;
	return 0;
}

/* A member's current targets: in identify mode one update per target, a
 * new target or a resync with the whole value; in track mode one event
 * per distinct_id and key that was not told the value. */
static void tell_targets(decision *d, priv *p, const decide_sync *s,
			 const decide_in *in)
{
	int i;

	for (i = 0; i < p->ntg; i++) {
		const target *t = &p->tg[i];
		dstate *st = did_state(p, t->did);
		int fresh = !line_current(p, t), changed;
		decide_call *c;

		st->current = 1;
		if (!p->known)
			st->anon = 1;
		if (s->track) {
			if (!st->handled)
				tell_value(d, st, in, p->value, in->full,
					   &changed);
			st->handled = 1;
			continue;
		}
		c = tell_value(d, st, in, p->value, in->full || fresh,
			       &changed);
		/* a change goes to every current target, each one update */
		if (c && changed && st->change_call < 0)
			st->change_call = (int)(c - d->calls);
		else if (!c && st->change_call >= 0)
			c = copy_call(d, st->change_call);
		/* No update makes an older email the address of record
		 * over a newer one this distinct_id was told. */
		if (c && strcmp(t->id->type, "email") == 0 &&
		    t->id->created >= st->email_max) {
			c->email = t->id->value;
			st->email_max = t->id->created;
		}
	}
}

/* Distinct_ids told before that are not current targets: the exit value,
 * except an anonymous one of a member that has become known (Mixpanel
 * may have merged it into the known profile). */
static void tell_stale(decision *d, priv *p, const decide_sync *s,
		       const decide_in *in)
{
	int i;

	for (i = 0; i < p->nds; i++) {
		dstate *st = &p->ds[i];

		if (st->current)
			continue;
		if (in->member && p->known && st->anon)
			continue;
		tell_exit(d, s, st, in);
	}
}

/* ---- the new ledger row ------------------------------------------------- */

/* 1 when st holds exactly value at since (its line needs no told). */
static int implicit(const dstate *st, json_object *value, long long since)
{
	json_object *v;
	long long ms;
	int n = 0;

	json_object_object_foreach(value, k, nv)
	{
		if (!told_of(st, k, &v, &ms) || !same(v, nv) || ms != since)
			return 0;
		n++;
	}
	return json_object_object_length(st->told) == n;
}

/* A line's first five fields and its tab; the told field follows. */
static void put_head(buf *b, const char *type, const char *value,
		     const char *did, long long created, int current, int anon)
{
	if (b->len)
		buf_putc(b, '\n');
	buf_puts(b, type);
	buf_putc(b, '\t');
	buf_puts(b, value);
	buf_putc(b, '\t');
	buf_puts(b, did);
	buf_putc(b, '\t');
	buf_int(b, created);
	buf_putc(b, '\t');
	buf_putc(b, current ? 'c' : 'h');
	if (anon)
		buf_putc(b, 'a');
	buf_putc(b, '\t');
}

static void put_line(decision *d, const char *type, const char *value,
		     const dstate *st, long long created, int current,
		     json_object *rowv)
{
	put_head(&d->lines, type, value, st->did, created, current, st->anon);
	if (!implicit(st, rowv, d->since_ms))
		buf_puts(&d->lines, json_object_to_json_string_ext(
					    st->told, JSON_C_TO_STRING_PLAIN));
}

static int listed(const priv *p, int upto, const line *l)
{
	int i;

	for (i = 0; i < upto; i++)
		if (strcmp(p->old[i].type, l->type) == 0 &&
		    strcmp(p->old[i].value, l->value) == 0 &&
		    strcmp(p->old[i].did, l->did) == 0)
			return 1;
	return 0;
}

static int is_target(const priv *p, const line *l)
{
	int i;

	for (i = 0; i < p->ntg; i++)
		if (strcmp(p->tg[i].id->type, l->type) == 0 &&
		    strcmp(p->tg[i].id->value, l->value) == 0 &&
		    strcmp(p->tg[i].did, l->did) == 0)
			return 1;
	return 0;
}

/* The row: a member's value and since (kept when unchanged), or the
 * exit value of every key told; current targets, then the old lines. */
static void write_row(decision *d, priv *p, const decide_sync *s,
		      const decide_in *in)
{
	json_object *rowv;
	int i;

	d->member = in->member;
	if (in->member) {
		rowv = json_object_get(p->value);
		d->since_ms = in->old_member && p->old_value &&
					      same(p->old_value, p->value)
				      ? in->old_since_ms
				      : in->as_of_ms;
	} else {
		rowv = json_object_new_object();
		for (i = 0; i < p->nds; i++) {
			json_object_object_foreach(p->ds[i].told, k, a)
			{
				(void)a;
				json_object_object_add(
					rowv, k,
					s->is_trait
						? NULL
						: json_object_new_boolean(0));
			}
		}
		/* a former member re-sent by a resync stays as it was */
		d->since_ms = in->old_value && !in->old_member
				      ? in->old_since_ms
				      : in->as_of_ms;
	}
	/* a member's value as the definition gave it: its checksum must
	 * match the next run's */
	buf_puts(&d->value, in->member ? in->value
				       : json_object_to_json_string_ext(
						 rowv, JSON_C_TO_STRING_PLAIN));
	for (i = 0; i < p->ntg; i++)
		put_line(d, p->tg[i].id->type, p->tg[i].id->value,
			 find_did(p, p->tg[i].did), p->tg[i].id->created, 1,
			 rowv);
	for (i = 0; i < p->nold; i++) {
		const line *l = &p->old[i];

		if (is_target(p, l) || listed(p, i, l))
			continue;
		put_line(d, l->type, l->value, find_did(p, l->did), l->created,
			 0, rowv);
	}
	d->keep = in->member || d->lines.len > 0;
	json_object_put(rowv);
}

/*
 * A member the ledger has never seen (a first sync, a newcomer) in
 * identify mode, or in track mode of an audience: every target is new and
 * every distinct_id untold, so each target gets the whole value (an email
 * target in created_at order, so each may set $email), each distinct_id
 * holds the value at the as-of, and no line needs a told field. This is
 * most of a first sync, and needs no JSON.
 */
static int decide_new_member(decision *d, priv *p, const decide_sync *s,
			     const decide_in *in)
{
	int i;

	if (in->nids == 0)
		d->skipped++;
	choose_targets(d, p, s, in);
	for (i = 0; i < p->ntg; i++) {
		const target *t = &p->tg[i];

		put_head(&d->lines, t->id->type, t->id->value, t->did,
			 t->id->created, 1, !p->known);
		/* track mode: one event per distinct_id */
		if (!s->track || !find_did(p, t->did)) {
			decide_call *c = new_call(d, t->did, NULL);

			c->raw = in->value;
			if (!s->track && strcmp(t->id->type, "email") == 0)
				c->email = t->id->value;
			if (s->track)
				did_state(p, t->did);
		}
	}
	buf_puts(&d->value, in->value);
	d->since_ms = in->as_of_ms;
	d->member = 1;
	d->keep = 1;
	return 0;
}

int decide_profile(decision *d, const decide_sync *s, const decide_in *in,
		   char *err, size_t errlen)
{
	priv *p;

	decision_reset(d);
	p = alloc_calloc(1, sizeof(priv));
	d->priv = p;
	if (in->member && !in->old_value &&
	    (!in->old_lines || !*in->old_lines) &&
	    (!s->track || !s->is_trait)) {
		p->ds = alloc_calloc((size_t)in->nids + 1, sizeof(dstate));
		return decide_new_member(d, p, s, in);
	}
	if (in->old_value) {
		p->old_value = mp_json_parse_exact(in->old_value);
		if (!p->old_value) {
			snprintf(err, errlen, "ledger: unreadable value %s",
				 in->old_value);
			return -1;
		}
	}
	if (in->member) {
		p->value = mp_json_parse_exact(in->value);
		if (!p->value) {
			snprintf(err, errlen, "unreadable value %s", in->value);
			return -1;
		}
	}
	/* every distinct_id is a line's or a current target's */
	{
		int n = 2 + in->nids;
		const char *t;

		for (t = in->old_lines; t && *t; t++)
			n += *t == '\n';
		p->ds = alloc_calloc((size_t)n, sizeof(dstate));
	}
	if (read_ledger(p, in, err, errlen) != 0)
		return -1;
	if (in->member) {
		if (in->nids == 0)
			d->skipped++; /* a member with no identifier */
		choose_targets(d, p, s, in);
		tell_targets(d, p, s, in);
	}
	tell_stale(d, p, s, in);
	write_row(d, p, s, in);
	return 0;
}
