/* check_model.c - random identity graphs against a model of DESIGN.md
 * section 6: after every run, resync and retire the fake Mixpanel holds
 * what the model says each distinct_id should hold */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The model is written from DESIGN.md section 6 alone. Per profile it
 * keeps the identifiers (type, value, created_at), the value history
 * (the definition reads the latest "Set" event), and what each
 * distinct_id was told (the ledger), apart from what Mixpanel holds
 * (mp_*), which a reset of the ledger does not change.
 */
#define NPROF	8
#define MAXIDS	24
#define MAXDID	24
#define MAXKEYS 2
#define MAXEV	64
#define MAXMPD	256
#define DAY	86400LL

static mpctl *fake;
static const char *const env[] = { "MIXPANEL_MP_SECRET=test-secret",
				   "AUDSYNC_RETRY_BASE_MS=20",
				   "AUDSYNC_RETRY_JITTER_MS=5", NULL };

typedef struct mid {
	char type; /* 'u' user_id, 'e' email, 'a' anonymous_id */
	char value[40];
	long long created; /* microseconds since the epoch */
	int alive;
} mid;

typedef struct mev {
	long long ts; /* seconds */
	int v;	      /* 0: not a member; else the value */
} mev;

/* What one distinct_id of a profile was told, per key ("" untold). */
typedef struct told {
	char did[40];
	char v[MAXKEYS][16];
	int resent[MAXKEYS];	 /* re-sent by the resync being modelled */
	long long at[MAXKEYS];	 /* when it was told it (a run's as-of) */
	long long email_created; /* newest email told as $email, 0 none */
} told;

typedef struct mprof {
	mid ids[MAXIDS];
	int nids;
	mev evs[MAXEV];
	int nevs;
	told led[MAXDID];
	int nled;
} mprof;

/* What Mixpanel holds per distinct_id. */
typedef struct mpdid {
	char did[40];
	char v[MAXKEYS][16]; /* "" absent */
	char email[40];	     /* "" absent */
} mpdid;

typedef struct model {
	unsigned long long rng;
	int seed;
	int kind;   /* 0 audience, 1 trait, 2 two-column trait */
	int track;  /* track mode */
	int idsync; /* 0 all, 1 first, 2 last */
	int anon;   /* include_anonymous */
	int nkeys;
	char key[MAXKEYS][40];
	char ckey[40]; /* the computation's key */
	mprof p[NPROF];
	mpdid mp[MAXMPD];
	int nmp;
	long long base; /* model time zero, seconds */
	long long idseq;
	/* expected events of the step: "did\tkey\tvalue" lines */
	char expected[16384];
	size_t nexp;
	int events_seen;
	int resync;	 /* modelling a resync */
	long long as_of; /* of the run being modelled */
	/* track mode: per distinct_id and key, the time of the latest
	 * exit the run tells (only that one goes) */
	struct {
		const char *did;
		int key;
		long long at;
	} latest[NPROF * MAXDID * MAXKEYS];
	int nlatest;
	/* the distinct_ids of the members' current targets, this run,
	 * and per one the keys its member has a value for (bit k) */
	const char *held[NPROF * (MAXIDS + MAXDID)];
	unsigned held_keys[NPROF * (MAXIDS + MAXDID)];
	int nheld;
	long long resends; /* what it told again unchanged: duplicates in
			    * track mode */
	const char *db;
	char step[128];
} model;

static unsigned rnd(model *m, unsigned n)
{
	m->rng = m->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((m->rng >> 33) % n);
}

static void sqlf(model *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* SQL is gathered and sent in one go before each audsync command:
 * a connection per statement would cost more than the runs. */
static char pending[1 << 17];
static size_t npending;

static void flush_sql(model *m)
{
	if (npending)
		tl_sql(m->db, pending);
	npending = 0;
	pending[0] = '\0';
}

static void sqlf(model *m, const char *fmt, ...)
{
	char sql[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (npending + strlen(sql) + 2 >= sizeof(pending))
		flush_sql(m);
	npending += (size_t)snprintf(pending + npending,
				     sizeof(pending) - npending, "%s;\n", sql);
}

/* ---- the identity graph ------------------------------------------------ */

static const char *const invalid_ids[] = { "null", "0", "anon", "undefined",
					   "-1" };

static const char *type_name(char t)
{
	return t == 'u' ? "user_id" : t == 'e' ? "email" : "anonymous_id";
}

/* Adds an identifier to profile i, created at created (seconds). */
static void add_id(model *m, int i, long long created)
{
	mprof *p = &m->p[i];
	mid *d;
	char t = "uea"[rnd(m, 3)];
	int k;

	if (p->nids == MAXIDS)
		return;
	d = &p->ids[p->nids++];
	d->type = t;
	if (t != 'e' && rnd(m, 6) == 0)
		snprintf(d->value, sizeof(d->value), "%s",
			 invalid_ids[rnd(m, 5)]);
	else if (t == 'e')
		snprintf(d->value, sizeof(d->value), "e%d-%lld@x.io", i,
			 ++m->idseq);
	else
		snprintf(d->value, sizeof(d->value), "%c%d-%lld", t, i,
			 ++m->idseq);
	for (k = 0; k < p->nids - 1; k++)
		if (p->ids[k].alive && p->ids[k].type == t &&
		    strcmp(p->ids[k].value, d->value) == 0) {
			p->nids--; /* one row per (profile, type, value) */
			return;
		}
	/* unique times: ties would leave the order to the type and value */
	d->created = created * 1000000LL + (++m->idseq);
	d->alive = 1;
	sqlf(m,
	     "INSERT INTO audsync.external_ids VALUES ('m%d-%d', '%s', '%s',"
	     " to_timestamp(%lld / 1000000.0))",
	     m->seed, i, type_name(t), d->value, d->created);
}

static void remove_id(model *m, int i)
{
	mprof *p = &m->p[i];
	int j, k = p->nids ? (int)rnd(m, (unsigned)p->nids) : -1;

	if (k < 0 || !p->ids[k].alive)
		return;
	p->ids[k].alive = 0;
	sqlf(m,
	     "DELETE FROM audsync.external_ids WHERE profile_id = 'm%d-%d'"
	     " AND id_type = '%s' AND id_value = '%s'",
	     m->seed, i, type_name(p->ids[k].type), p->ids[k].value);
	/* an invalid value may be shared by several rows: all go */
	for (j = 0; j < p->nids; j++)
		if (p->ids[j].type == p->ids[k].type &&
		    strcmp(p->ids[j].value, p->ids[k].value) == 0)
			p->ids[j].alive = 0;
}

static void add_event(model *m, int i, long long ts)
{
	mprof *p = &m->p[i];
	int v = rnd(m, 3) == 0 ? 0 : 1 + (int)rnd(m, 4);

	if (p->nevs == MAXEV)
		return;
	p->evs[p->nevs].ts = ts;
	p->evs[p->nevs++].v = v;
	if (v)
		sqlf(m,
		     "INSERT INTO audsync.events VALUES ('m%d-%d', 'Set',"
		     " '{\"v\": %d}', to_timestamp(%lld))",
		     m->seed, i, v, ts);
	else
		sqlf(m,
		     "INSERT INTO audsync.events VALUES ('m%d-%d', 'Set',"
		     " '{}', to_timestamp(%lld))",
		     m->seed, i, ts);
}

static int valid_value(const char *v);

/* Moves one of profile i's identifiers to another profile, as identity
 * resolution does when it merges two: the row keeps its created_at. */
static void move_id(model *m, int i)
{
	mprof *p = &m->p[i], *q;
	int j = (i + 1 + (int)rnd(m, NPROF - 1)) % NPROF;
	int k = p->nids ? (int)rnd(m, (unsigned)p->nids) : -1;

	q = &m->p[j];
	if (k < 0 || !p->ids[k].alive || !valid_value(p->ids[k].value) ||
	    q->nids == MAXIDS)
		return;
	q->ids[q->nids++] = p->ids[k];
	p->ids[k].alive = 0;
	sqlf(m,
	     "UPDATE audsync.external_ids SET profile_id = 'm%d-%d'"
	     " WHERE profile_id = 'm%d-%d' AND id_type = '%s'"
	     " AND id_value = '%s'",
	     m->seed, j, m->seed, i, type_name(p->ids[k].type),
	     p->ids[k].value);
}

/* Identifiers added (some backfilled with old dates), removed and moved
 * to another profile, and events, in (from, to]. */
static void mutate(model *m, long long from, long long to, int events)
{
	int i, n;

	for (i = 0; i < NPROF; i++) {
		n = (int)rnd(m, 3);
		while (n-- > 0) {
			int what = (int)rnd(m, 6);

			if (what == 5)
				move_id(m, i);
			else if (what < 3)
				add_id(m, i,
				       from + 1 +
					       rnd(m,
						   (unsigned)(to - from - 1)));
			else if (what == 3)
				add_id(m, i,
				       m->base - 200 * DAY + rnd(m, 100 * DAY));
			else
				remove_id(m, i);
		}
		if (events && rnd(m, 5) < 2)
			add_event(m, i,
				  from + 1 + rnd(m, (unsigned)(to - from - 1)));
	}
}

/* ---- the model of section 6 ------------------------------------------- */

/* The value at as_of: per key JSON text, "" for none; 0 when not a
 * member. */
static int value_at(model *m, int i, long long as_of, char out[MAXKEYS][16])
{
	const mprof *p = &m->p[i];
	long long best = -1;
	int v = 0, k;

	for (k = 0; k < p->nevs; k++)
		if (p->evs[k].ts <= as_of && p->evs[k].ts > best) {
			best = p->evs[k].ts;
			v = p->evs[k].v;
		}
	for (k = 0; k < MAXKEYS; k++)
		out[k][0] = '\0';
	if (!v)
		return 0;
	if (m->kind == 0) {
		snprintf(out[0], 16, "true");
	} else {
		snprintf(out[0], 16, "%d", v);
		if (m->kind == 2 && v % 2 == 1)
			snprintf(out[1], 16, "\"c%d\"", v % 3);
	}
	return 1;
}

static int valid_value(const char *v)
{
	size_t k;

	for (k = 0; k < sizeof(invalid_ids) / sizeof(*invalid_ids); k++)
		if (strcmp(v, invalid_ids[k]) == 0)
			return 0;
	return 1;
}

/* A profile's current targets: indexes into ids, in created_at order,
 * and their distinct_ids. Returns how many; *known: a valid user_id. */
typedef struct target {
	int id;
	const char *did;
} target;

static int id_order(const mprof *p, int *order)
{
	int n = 0, a, b;

	for (a = 0; a < p->nids; a++)
		if (p->ids[a].alive)
			order[n++] = a;
	for (a = 1; a < n; a++)
		for (b = a; b > 0 && p->ids[order[b - 1]].created >
					     p->ids[order[b]].created;
		     b--) {
			int t = order[b];

			order[b] = order[b - 1];
			order[b - 1] = t;
		}
	return n;
}

static int targets_of(model *m, int i, target *out, int *known)
{
	const mprof *p = &m->p[i];
	int order[MAXIDS], n = id_order(p, order), k, j, nt = 0;
	const char *user = NULL, *anon = NULL;

	for (k = 0; k < n; k++) {
		const mid *d = &p->ids[order[k]];

		if (!valid_value(d->value))
			continue;
		if (d->type == 'u')
			user = d->value;
		if (d->type == 'a' && m->anon)
			anon = d->value;
	}
	*known = user != NULL;
	for (k = 0; k < n; k++) {
		const mid *d = &p->ids[order[k]];
		int keep = valid_value(d->value) && (d->type != 'a' || m->anon);

		for (j = 0; keep && m->idsync && j < n; j++) {
			const mid *o = &p->ids[order[j]];

			if (o->type == d->type && valid_value(o->value) &&
			    (m->idsync == 1 ? j < k : j > k))
				keep = 0;
		}
		if (!keep)
			continue;
		out[nt].id = order[k];
		out[nt].did = user ? user : d->type == 'a' ? d->value : anon;
		if (out[nt].did)
			nt++;
	}
	return nt;
}

static told *ledger(mprof *p, const char *did, int create)
{
	int k;

	for (k = 0; k < p->nled; k++)
		if (strcmp(p->led[k].did, did) == 0)
			return &p->led[k];
	if (!create || p->nled == MAXDID)
		return NULL;
	memset(&p->led[p->nled], 0, sizeof(told));
	snprintf(p->led[p->nled].did, sizeof(p->led[0].did), "%s", did);
	return &p->led[p->nled++];
}

static mpdid *mp_of(model *m, const char *did)
{
	int k;

	for (k = 0; k < m->nmp; k++)
		if (strcmp(m->mp[k].did, did) == 0)
			return &m->mp[k];
	ck_assert_int_lt(m->nmp, MAXMPD);
	memset(&m->mp[m->nmp], 0, sizeof(mpdid));
	snprintf(m->mp[m->nmp].did, sizeof(m->mp[0].did), "%s", did);
	return &m->mp[m->nmp++];
}

/* Tells did key k the value v (JSON text): the ledger, Mixpanel, and in
 * track mode one expected event when the told value changes. A resync
 * tells each distinct_id each key once, however many of its targets. */
static void tell(model *m, told *t, int k, const char *v)
{
	mpdid *d = mp_of(m, t->did);

	if (m->resync && !t->resent[k] && strcmp(t->v[k], v) == 0)
		m->resends++;
	if (m->resync)
		t->resent[k] = 1;
	if (strcmp(t->v[k], v) != 0)
		t->at[k] = m->as_of;
	if (strcmp(t->v[k], v) != 0 && m->track) {
		int n = snprintf(m->expected + m->nexp,
				 sizeof(m->expected) - m->nexp, "%s\t%s\t%s\n",
				 t->did, m->key[k], v);

		m->nexp += (size_t)n;
	}
	snprintf(t->v[k], sizeof(t->v[k]), "%s", v);
	if (!m->track)
		snprintf(d->v[k], sizeof(d->v[k]), "%s", v);
}

static const char *exit_value(const model *m)
{
	return m->kind == 0 ? "false" : "null";
}

/* A member's current value to one of its distinct_ids: every key, and
 * null for a key it was told that the value no longer has. */
static void tell_value(model *m, told *t, char v[MAXKEYS][16])
{
	int k;

	for (k = 0; k < m->nkeys; k++) {
		if (v[k][0])
			tell(m, t, k, v[k]);
		else if (t->v[k][0])
			tell(m, t, k, "null");
	}
}

/* A distinct_id that another profile now holds as a member's target
 * holds that member's value (DESIGN.md section 6: what the database says
 * now), not the exit value of the profile it left: for each key the
 * member has a value for, the ledger takes the exit value and Mixpanel
 * keeps the member's; a key the member lacks is told the exit value
 * when it was told something else, and by a resync again (section 9:
 * the full current state, former members included). */
static unsigned held_keys(const model *m, const char *did)
{
	unsigned keys = 0;
	int k;

	for (k = 0; k < m->nheld; k++)
		if (strcmp(m->held[k], did) == 0)
			keys |= m->held_keys[k];
	return keys;
}

/* When the run would tell t's key k the exit value: now when it was
 * told something else, by a resync at the time it was told it, else -1
 * (not at all). */
static long long exit_at(const model *m, const told *t, int k)
{
	if (!t->v[k][0])
		return -1;
	if (strcmp(t->v[k], exit_value(m)) != 0)
		return m->as_of;
	return m->resync ? t->at[k] : -1;
}

/* The latest exit time of did's key k in the run (track mode): an
 * older exit does not go (a resync would re-send the one the profile a
 * member took the distinct_id from records, which never went). */
static long long *latest_of(model *m, const char *did, int k)
{
	int i;

	for (i = 0; i < m->nlatest; i++)
		if (m->latest[i].key == k && strcmp(m->latest[i].did, did) == 0)
			return &m->latest[i].at;
	m->latest[m->nlatest].did = did;
	m->latest[m->nlatest].key = k;
	m->latest[m->nlatest].at = -1;
	return &m->latest[m->nlatest++].at;
}

static void hand_over(model *m, told *t, int only_note)
{
	unsigned keys = held_keys(m, t->did);
	long long at;
	int k;

	for (k = 0; k < m->nkeys; k++) {
		if (!t->v[k][0] || (keys & (1u << k) && only_note))
			continue;
		at = exit_at(m, t, k);
		if (only_note) {
			if (at > *latest_of(m, t->did, k))
				*latest_of(m, t->did, k) = at;
		} else if (keys & (1u << k)) {
			if (strcmp(t->v[k], exit_value(m)) != 0)
				t->at[k] = m->as_of;
			snprintf(t->v[k], sizeof(t->v[k]), "%s", exit_value(m));
		} else if (at >= 0 &&
			   (!m->track || at >= *latest_of(m, t->did, k))) {
			tell(m, t, k, exit_value(m));
		}
	}
}

/* Profile i's run: its member's value to its targets, the exit value
 * to the distinct_ids it told that are not (with only_note, only the
 * times of those exits, latest_of()). */
static void model_profile(model *m, int i, long long as_of, int only_note)
{
	mprof *p = &m->p[i];
	char v[MAXKEYS][16];
	target tg[MAXIDS];
	int nt, known, k, j, member = value_at(m, i, as_of, v);

	nt = targets_of(m, i, tg, &known);
	if (member && !only_note) {
		for (k = 0; k < nt; k++) {
			const mid *d = &p->ids[tg[k].id];
			told *t = ledger(p, tg[k].did, 1);

			tell_value(m, t, v);
			/* the newest email told is the address of record */
			if (!m->track && d->type == 'e' &&
			    d->created >= t->email_created) {
				t->email_created = d->created;
				snprintf(mp_of(m, t->did)->email,
					 sizeof(m->mp[0].email), "%s",
					 d->value);
			}
		}
	}
	for (k = 0; k < p->nled; k++) {
		int current = 0;

		for (j = 0; member && j < nt; j++)
			current |= strcmp(tg[j].did, p->led[k].did) == 0;
		if (current)
			continue;
		/* an anonymous distinct_id of a profile now known keeps
		 * what it was told (identity merge) */
		if (member && known && p->led[k].did[0] == 'a')
			continue;
		hand_over(m, &p->led[k], only_note);
	}
}

static void model_run(model *m, long long as_of)
{
	char v[MAXKEYS][16];
	target tg[MAXIDS];
	unsigned keys;
	int i, j, k, nt, known;

	m->nheld = 0;
	m->nlatest = 0;
	m->as_of = as_of;
	for (i = 0; i < NPROF; i++) {
		if (!value_at(m, i, as_of, v))
			continue;
		nt = targets_of(m, i, tg, &known);
		for (j = 0, keys = 0; j < m->nkeys; j++)
			keys |= v[j][0] ? 1u << j : 0;
		for (k = 0; k < nt; k++) {
			m->held_keys[m->nheld] = keys;
			m->held[m->nheld++] = tg[k].did;
		}
		/* and the anonymous distinct_ids it keeps, now known */
		for (k = 0; known && k < m->p[i].nled; k++) {
			const char *did = m->p[i].led[k].did;
			int current = 0;

			for (j = 0; j < nt; j++)
				current |= strcmp(tg[j].did, did) == 0;
			if (!current && did[0] == 'a') {
				m->held_keys[m->nheld] = keys;
				m->held[m->nheld++] = did;
			}
		}
	}
	for (i = 0; m->track && i < NPROF; i++)
		model_profile(m, i, as_of, 1);
	for (i = 0; i < NPROF; i++)
		model_profile(m, i, as_of, 0);
}

/* resync: a run that tells every distinct_id of the ledger its whole
 * state again, counting what it tells unchanged. */
static void model_resync(model *m, long long as_of)
{
	int i, k, j;

	for (i = 0; i < NPROF; i++)
		for (k = 0; k < m->p[i].nled; k++)
			for (j = 0; j < m->nkeys; j++)
				m->p[i].led[k].resent[j] = 0;
	m->resync = 1;
	m->resends = 0;
	model_run(m, as_of);
	m->resync = 0;
}

/* retire --unset: every distinct_id of the ledger loses the keys (in
 * identify mode; events are history); the ledger is forgotten. */
static void model_retire(model *m)
{
	int i, k, j;

	for (i = 0; i < NPROF; i++) {
		for (k = 0; !m->track && k < m->p[i].nled; k++)
			for (j = 0; j < m->nkeys; j++)
				mp_of(m, m->p[i].led[k].did)->v[j][0] = '\0';
		m->p[i].nled = 0;
	}
}

/* ---- comparing with the fake ------------------------------------------- */

static void fail_at(model *m, const char *what)
{
	ck_abort_msg("seed %d (%s, %s, id_sync %s, include_anonymous %d), "
		     "after %s: %s",
		     m->seed,
		     m->kind == 0   ? "audience"
		     : m->kind == 1 ? "trait"
				    : "two-column trait",
		     m->track ? "track" : "identify",
		     m->idsync == 0   ? "all"
		     : m->idsync == 1 ? "first"
				      : "last",
		     m->anon, m->step, what);
}

static const char *prop_text(json_object *props, const char *name)
{
	json_object *v;

	if (!props || !json_object_object_get_ex(props, name, &v))
		return "";
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static void compare_profiles(model *m, json_object *state)
{
	json_object *profiles, *pr;
	char msg[512];
	int k, j;

	ck_assert(json_object_object_get_ex(state, "profiles", &profiles));
	for (k = 0; k < m->nmp; k++) {
		mpdid *d = &m->mp[k];
		char email[64] = "";

		if (!json_object_object_get_ex(profiles, d->did, &pr))
			pr = NULL;
		for (j = 0; j < m->nkeys; j++) {
			const char *got = prop_text(pr, m->key[j]);

			if (strcmp(got, d->v[j]) != 0) {
				snprintf(msg, sizeof(msg),
					 "distinct_id %s has %s = %s, the "
					 "model says %s",
					 d->did, m->key[j],
					 *got ? got : "(absent)",
					 d->v[j][0] ? d->v[j] : "(absent)");
				fail_at(m, msg);
			}
		}
		if (d->email[0])
			snprintf(email, sizeof(email), "\"%s\"", d->email);
		if (strcmp(prop_text(pr, "$email"), email) != 0) {
			snprintf(msg, sizeof(msg),
				 "distinct_id %s has $email %s, the model "
				 "says %s",
				 d->did, prop_text(pr, "$email"),
				 email[0] ? email : "(absent)");
			fail_at(m, msg);
		}
	}
	json_object_object_foreach(profiles, did, props)
	{
		int known = 0;

		for (k = 0; k < m->nmp; k++)
			known |= strcmp(m->mp[k].did, did) == 0;
		for (j = 0; !known && j < m->nkeys; j++) {
			if (!*prop_text(props, m->key[j]))
				continue;
			snprintf(msg, sizeof(msg),
				 "distinct_id %s was told %s = %s, the model "
				 "never told it",
				 did, m->key[j], prop_text(props, m->key[j]));
			fail_at(m, msg);
		}
	}
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines of text in place (at most 512). */
static void sort_lines(char *text)
{
	char *lines[512], *copy = strdup(text), *s, *save = NULL;
	int n = 0, k;
	size_t len = 0;

	for (s = strtok_r(copy, "\n", &save); s && n < 512;
	     s = strtok_r(NULL, "\n", &save))
		lines[n++] = s;
	qsort(lines, (size_t)n, sizeof(char *), line_cmp);
	text[0] = '\0';
	for (k = 0; k < n; k++)
		len += (size_t)sprintf(text + len, "%s\n", lines[k]);
	free(copy);
}

/* The events stored since the last step, as "did\tkey\tvalue" lines,
 * must be the model's transitions, and each must be the right kind. */
static void compare_events(model *m, json_object *state)
{
	json_object *events, *e, *name, *props;
	static char got[16384];
	char msg[600];
	size_t len = 0, k;

	ck_assert(json_object_object_get_ex(state, "events", &events));
	got[0] = '\0';
	for (k = (size_t)m->events_seen; k < json_object_array_length(events);
	     k++) {
		const char *did, *key, *v, *ev;

		e = json_object_array_get_idx(events, k);
		ck_assert(json_object_object_get_ex(e, "event", &name));
		ck_assert(json_object_object_get_ex(e, "properties", &props));
		ev = json_object_get_string(name);
		did = json_object_get_string(
			json_object_object_get(props, "distinct_id"));
		if (m->kind == 0) {
			key = m->key[0];
			v = prop_text(props, key);
			if (strcmp(ev, strcmp(v, "true") == 0
					       ? "Audience Entered"
					       : "Audience Exited") != 0)
				fail_at(m, "an audience event of the wrong "
					   "name");
		} else {
			key = json_object_get_string(
				json_object_object_get(props, "trait_key"));
			v = prop_text(props, key ? key : "");
		}
		if (len + 200 < sizeof(got))
			len += (size_t)snprintf(got + len, sizeof(got) - len,
						"%s\t%s\t%s\n", did, key, v);
	}
	m->events_seen = (int)json_object_array_length(events);
	sort_lines(got);
	sort_lines(m->expected);
	if (strcmp(got, m->expected) != 0) {
		snprintf(msg, sizeof(msg),
			 "events received:\n%.250s\nthe model's:\n%.250s", got,
			 m->expected);
		fail_at(m, msg);
	}
	m->expected[0] = '\0';
	m->nexp = 0;
}

static void compare(model *m)
{
	json_object *state;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	if (m->track)
		compare_events(m, state);
	else
		compare_profiles(m, state);
	json_object_put(state);
}

/* ---- the scenario ------------------------------------------------------ */

static void audsync_ok(model *m, const char *const *args)
{
	tl_result r;

	flush_sql(m);
	r = tl_audsync_argv(m->db, env, args);

	if (r.status != 0) {
		char msg[600];

		snprintf(msg, sizeof(msg), "audsync %s exited %d: %.400s",
			 args[0], r.status, r.err);
		tl_result_free(&r);
		fail_at(m, msg);
	}
	tl_result_free(&r);
}

static void run_at(model *m, long long as_of)
{
	char ts[64];
	const char *args[] = { "run", "--computation", m->ckey, "--as-of", ts,
			       NULL };

	char sql[128], *t;

	snprintf(sql, sizeof(sql), "SELECT to_timestamp(%lld)::text", as_of);
	t = tl_sql_value(m->db, sql);
	snprintf(ts, sizeof(ts), "%s", t);
	free(t);
	snprintf(m->step, sizeof(m->step), "run at %s", ts);
	audsync_ok(m, args);
	model_run(m, as_of);
	compare(m);
}

static void setup_sync(model *m)
{
	static const char *const defs[] = {
		"SELECT profile_id FROM (SELECT DISTINCT ON (profile_id)"
		" profile_id, properties FROM audsync.events WHERE event = 'Set'"
		" AND ts <= $1 ORDER BY profile_id, ts DESC) x"
		" WHERE properties ? 'v' AND profile_id LIKE ",
		"SELECT profile_id, (properties->>'v')::int AS value FROM"
		" (SELECT DISTINCT ON (profile_id) profile_id, properties FROM"
		" audsync.events WHERE event = 'Set' AND ts <= $1"
		" ORDER BY profile_id, ts DESC) x"
		" WHERE properties ? 'v' AND profile_id LIKE ",
		"SELECT profile_id, (properties->>'v')::int AS score,"
		" CASE WHEN (properties->>'v')::int % 2 = 1 THEN 'c' ||"
		" (properties->>'v')::int % 3 END AS tier FROM"
		" (SELECT DISTINCT ON (profile_id) profile_id, properties FROM"
		" audsync.events WHERE event = 'Set' AND ts <= $1"
		" ORDER BY profile_id, ts DESC) x"
		" WHERE properties ? 'v' AND profile_id LIKE ",
	};
	char base[1024], def[1200], pfx[16];

	snprintf(pfx, sizeof(pfx), "m%d", m->seed);
	snprintf(base, sizeof(base), "%s'%s-%%'", defs[m->kind], pfx);
	/* two computations may not write one property: each seed's columns
	 * are its own */
	if (m->kind == 2)
		snprintf(def, sizeof(def),
			 "SELECT profile_id, score AS score_%d, tier AS tier_%d"
			 " FROM (%s) q",
			 m->seed, m->seed, base);
	else
		snprintf(def, sizeof(def), "%s", base);
	snprintf(m->ckey, sizeof(m->ckey), "model_%d", m->seed);
	sqlf(m,
	     "INSERT INTO audsync.computations (key, name, kind,"
	     " definition_sql, include_anonymous) VALUES ('%s', 'Model %d',"
	     " '%s', $def$%s$def$, %s)",
	     m->ckey, m->seed, m->kind == 0 ? "audience" : "trait", def,
	     m->anon ? "true" : "false");
	sqlf(m,
	     "INSERT INTO audsync.syncs (computation_id, destination_id, mode,"
	     " id_sync) SELECT c.id, d.id, '%s', '%s' FROM"
	     " audsync.computations c, audsync.destinations d"
	     " WHERE c.key = '%s' AND d.name = 'mp'",
	     m->track ? "track" : "identify",
	     m->idsync == 0   ? "all"
	     : m->idsync == 1 ? "first"
			      : "last",
	     m->ckey);
	if (m->kind == 2) {
		m->nkeys = 2;
		snprintf(m->key[0], sizeof(m->key[0]), "score_%d", m->seed);
		snprintf(m->key[1], sizeof(m->key[1]), "tier_%d", m->seed);
	} else {
		m->nkeys = 1;
		snprintf(m->key[0], sizeof(m->key[0]), "%s", m->ckey);
	}
}

/* Identify mode: every property audsync set is changed behind its back,
 * in the fake and in the model's Mixpanel, for a resync to repair. */
static void drift(model *m)
{
	static char json[MAXMPD * MAXKEYS * 160];
	size_t n = 0;
	int k, j;

	for (k = 0; k < m->nmp; k++) {
		for (j = 0; j < m->nkeys; j++) {
			if (!m->mp[k].v[j][0])
				continue;
			n += (size_t)snprintf(
				json + n, sizeof(json) - n,
				"%s{\"$token\":\"test-token\","
				"\"$distinct_id\":\"%s\",\"$set\":{\"%s\":"
				"\"drift\"}}",
				n ? "," : "[", m->mp[k].did, m->key[j]);
			snprintf(m->mp[k].v[j], sizeof(m->mp[k].v[j]),
				 "\"drift\"");
		}
	}
	if (n == 0)
		return;
	snprintf(json + n, sizeof(json) - n, "]");
	ck_assert_int_eq(mpctl_engage(fake, json), 0);
}

static long long db_now(model *m)
{
	return tl_sql_int(m->db, "SELECT extract(epoch FROM now())::bigint");
}

static void one_seed(const char *db, int seed)
{
	static model m;
	const char *resync[] = { "resync", "--computation", m.ckey, NULL };
	const char *retire[] = { "retire", m.ckey, "--unset", NULL };
	long long t, now, dups;
	int i, r;

	memset(&m, 0, sizeof(m));
	m.db = db;
	m.seed = seed;
	m.rng = 0x9e3779b97f4a7c15ULL * (unsigned long long)(seed + 1);
	m.kind = (int)rnd(&m, 3);
	m.track = (int)rnd(&m, 2);
	m.idsync = (int)rnd(&m, 3);
	m.anon = (int)rnd(&m, 2);
	ck_assert_int_eq(mpctl_reset(fake), 0);
	setup_sync(&m);
	flush_sql(&m);
	now = db_now(&m);
	m.base = now - 40 * DAY;
	for (i = 0; i < NPROF; i++) {
		int n = 1 + (int)rnd(&m, 4);

		while (n-- > 0)
			add_id(&m, i, m.base - 30 * DAY + rnd(&m, 29 * DAY));
		add_event(&m, i, m.base - rnd(&m, 10 * DAY));
	}
	t = m.base;
	for (r = 0; r < 4; r++) {
		run_at(&m, t);
		mutate(&m, t, t + 2 * DAY, 1);
		t += 2 * DAY;
	}
	run_at(&m, t);
	/* a resync after identifiers changed, at now */
	mutate(&m, t, t + DAY, 0);
	snprintf(m.step, sizeof(m.step), "resync");
	if (!m.track)
		drift(&m);
	dups = mpctl_counter(fake, "duplicates");
	audsync_ok(&m, resync);
	model_resync(&m, db_now(&m));
	compare(&m);
	if (m.track && mpctl_counter(fake, "duplicates") - dups != m.resends) {
		char msg[160];

		snprintf(msg, sizeof(msg),
			 "%lld events re-sent as duplicates, the model "
			 "re-sent %lld",
			 (long long)mpctl_counter(fake, "duplicates") - dups,
			 m.resends);
		fail_at(&m, msg);
	}
	snprintf(m.step, sizeof(m.step), "retire --unset");
	audsync_ok(&m, retire);
	model_retire(&m);
	compare(&m);
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

/* AUDSYNC_MODEL_SEEDS, and how many loop tests share them. */
static int seeds, chunks;

START_TEST(mixpanel_holds_what_the_model_says_after_every_step)
{
	static const int found[] = { 102, 104,	109,  118, 130,
				     349, 1098, 9108, 9542 };
	int first = env_int("AUDSYNC_MODEL_SEED", 1), from, count, s;
	const char *db;

	tl_seed_chunk(seeds, chunks, _i, &from, &count);
	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	db = tl_new_db();
	tl_add_destination(db, "mp", mpctl_base_url(fake));
	tl_sql(db,
	       "UPDATE audsync.destinations SET secret_env = 'MIXPANEL_MP_SECRET'");
	fprintf(stderr,
		"check_model: seeds %d..%d (AUDSYNC_MODEL_SEED,"
		" AUDSYNC_MODEL_SEEDS)\n",
		first + from, first + from + count - 1);
	for (s = first + from; s < first + from + count; s++)
		one_seed(db, s);
	/* the seeds that found a bug beyond the default range, after the
	 * last of the others */
	for (s = 0; _i == chunks - 1 && !getenv("AUDSYNC_MODEL_SEED") &&
		    s < (int)(sizeof(found) / sizeof(*found));
	     s++)
		one_seed(db, found[s]);
	mpctl_stop(fake);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("model");

	seeds = env_int("AUDSYNC_MODEL_SEEDS", 50);
	/* A seed takes about 1.2 s on the bench machine. */
	chunks = tl_seed_chunks(seeds, 200);
	tcase_set_timeout(tc, 3600);
	tcase_add_loop_test(tc,
			    mixpanel_holds_what_the_model_says_after_every_step,
			    0, chunks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(model_suite());
}
