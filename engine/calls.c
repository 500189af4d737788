/* calls.c - the calls and ledger rows of the changed profiles */
#include "audsync/calls.h"

#include "audsync/alloc.h"

#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/decide.h"
#include "audsync/did_set.h"
#include "audsync/mp_payload.h"
#include "audsync/outbox.h"
#include "audsync/stage.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_ROWS "20000"
/* Ledger rows are sent as soon as this many bytes wait: the server
 * writes them while the next profiles are decided. */
#define LEDGER_SEND (64 * 1024)
/* Stale exits held back at most (handover below) before they go. */
#define HELD_EXITS_MAX 100000

/*
 * Only the profiles that stay members have their identifiers looked up:
 * an exit is told to the distinct_ids its ledger row names (decide.c
 * reads no identifier of a profile that is not a member).
 *
 * Up to ID_LIST_MAX of them (a normal run's few) are looked up by a list,
 * from the identity index alone, which carries created_at
 * (sql/018_identity_created.sql) and gives them in the cursor's order.
 * More (a first sync, a resync) are joined with the whole table, where a
 * list would cost more than it saves.
 */
#define ID_LIST_MAX "50000"
#define STAYING                                                                \
	"SELECT profile_id FROM pg_temp.audsync_chg"                           \
	" WHERE kind NOT IN ('exit', 'former')"

static const char id_list_sql[] =
	"SELECT count(*), coalesce(array_agg(profile_id)::text, '{}') FROM (" STAYING
	" LIMIT " ID_LIST_MAX " + 1) c";

/*
 * The changed profiles, one row each, and their current identifiers (from
 * the table, or the few looked up by their list), through two cursors in
 * the same order, which the engine merges (fetch_loop()): the profiles'
 * wide columns are not copied and sorted once per identifier. decide.c
 * picks targets, distinct_ids and calls from them and the profile's
 * ledger row. The order is the database's own: the identity index has
 * it, so the identifiers stream from the index as the changes are merged
 * with them, where any other order sorts them all before the first (2 s
 * at a million members). The engine never compares two profile_ids but
 * for equality: the identifiers' profiles are among the changes'.
 */
static const char calls_sql[] =
	"DECLARE audsync_out NO SCROLL CURSOR FOR"
	" SELECT profile_id, kind, old::text, new::text,"
	"  (extract(epoch FROM since) * 1000)::bigint, old_targets,"
	"  old_member, (extract(epoch FROM $1::timestamptz) * 1000)::bigint"
	" FROM pg_temp.audsync_chg ORDER BY profile_id";

/* $1: the identifier types; the list's is $2. */
#define IDS_SQL(profiles)                                                      \
	"DECLARE audsync_ids_out NO SCROLL CURSOR FOR"                         \
	" SELECT e.profile_id, e.id_type, e.id_value,"                         \
	"  (extract(epoch FROM e.created_at) * 1000000)::bigint"               \
	" FROM audsync.external_ids e WHERE e.profile_id " profiles            \
	"  AND e.id_type = ANY ($1::text[])"                                   \
	" ORDER BY e.profile_id"

static const char ids_table_sql[] = IDS_SQL("IN (" STAYING ")");
static const char ids_list_sql[] = IDS_SQL("= ANY ($2::text[])");

/* The columns of calls_sql, then of IDS_SQL. */
enum {
	OUT_PROFILE,
	OUT_KIND,
	OUT_OLD_VALUE,
	OUT_NEW,
	OUT_SINCE,
	OUT_OLD,
	OUT_OLD_MEMBER,
	OUT_AS_OF,
	OUT_COLUMNS
};
enum { ID_PROFILE, ID_TYPE, ID_VALUE, ID_CREATED };

static const char copy_sql[] =
	"COPY audsync.snapshot_members"
	" (sync_id, profile_id, value, since, targets, member) FROM STDIN";
const char *calls_id_types(const sync_def *s)
{
	return s->include_anonymous ? "{user_id,email,anonymous_id}"
				    : "{user_id,email}";
}

/* What turns rows into records: the sync, its writer, scratch space. */
typedef struct emitter {
	const sync_def *s;
	decide_sync ds;
	outbox_writer *w;
	PGconn *conn;
	char sync_id[16];
	buf rec, val, copy;
	long long skipped;
	const char *cur[OUT_COLUMNS]; /* the profile being read: its row
				       * of the calls cursor, as read */
	decide_id *ids;		      /* its identifiers, strings owned */
	int nids, capids;
	decision d;
	int full; /* a resync: every current target again */
	json_object *true_value;
	/* handover: with a ledger read, stale exits wait (did NUL record
	 * NUL, then each key of the record and its time, each NUL, then
	 * NUL; n of them) for the distinct_ids of the members decided,
	 * each with the keys its member has a value for: a bit per key
	 * name, the 64th and after sharing the last. latest: per
	 * distinct_id and key (did_key()), the time of the latest exit
	 * held. */
	int handover;
	buf held, name;
	int nheld;
	did_set members, latest;
	char *key_names[64];
	int nkey_names;
	/* graph (CALLS_GRAPH): the entering profiles without an identifier
	 * of the sync's types wait, each its row of the calls cursor (the
	 * columns NUL-terminated, one after another), for one look at the
	 * identity graph (settle_waiting()); outside: those not there. */
	int graph, nwaiting;
	buf waiting;
	long long outside;
} emitter;

/* Appends "name": value to an object being built: value is JSON text,
 * or with quote set a string to quote. */
static void put_field(buf *b, const char *name, const char *value, int quote)
{
	if (b->len > 1)
		buf_putc(b, ',');
	buf_json_str(b, name);
	buf_putc(b, ':');
	if (quote)
		buf_json_str(b, value);
	else
		buf_puts(b, value);
}

#define put_member(b, name, value)	  put_field(b, name, value, 0)
#define put_string_member(b, name, value) put_field(b, name, value, 1)

static const char *json_text(json_object *v)
{
	return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
		 : "null";
}

/* The /engage $set of the object in e->val to did, as e->rec. */
static void put_set(emitter *e, const char *did)
{
	buf_reset(&e->rec);
	mp_payload_engage(&e->rec, e->s->dest->project_token, did,
			  e->s->dest->ignore_time, "$set", e->val.data);
}

/* One /engage $set of the call's keys; with an email, $email too. */
static void emit_identify(emitter *e, const decide_call *c)
{
	int i;

	buf_reset(&e->val);
	if (c->raw) /* the whole value: its text without the closing } */
		buf_append(&e->val, c->raw,
			   (size_t)(strrchr(c->raw, '}') - c->raw));
	else
		buf_putc(&e->val, '{');
	for (i = 0; i < c->nkeys; i++) {
		const decide_key *k = &e->d.keys[c->first_key + i];

		put_member(&e->val, k->key, json_text(k->value));
	}
	if (c->email)
		put_string_member(&e->val, "$email", c->email);
	buf_putc(&e->val, '}');
	put_set(e, c->did);
}

/* The event record, with a $insert_id derived from what makes it this
 * transition: the same re-send is a duplicate Mixpanel drops. */
static void emit_event(emitter *e, const char *event, const char *transition,
		       const char *distinct_id, long long time_ms,
		       const char *key, const char *props)
{
	char ms[24];
	const char *parts[5] = { e->sync_id, distinct_id, transition, ms, key };
	char insert_id[MP_INSERT_ID_LEN + 1];

	snprintf(ms, sizeof(ms), "%lld", time_ms);
	mp_insert_id(insert_id, parts, 5);
	buf_reset(&e->rec);
	mp_payload_event(&e->rec, event, distinct_id, time_ms, insert_id,
			 props);
}

/* Audience Entered / Exited, or Trait Computed, for one key. */
static void emit_key_event(emitter *e, const char *did, const decide_key *k)
{
	const dest_def *d = e->s->dest;
	int exit = !e->s->is_trait && !json_object_get_boolean(k->value);

	buf_reset(&e->val);
	buf_putc(&e->val, '{');
	if (e->s->is_trait) {
		put_string_member(&e->val, "trait_key", k->key);
		put_member(&e->val, k->key, json_text(k->value));
	} else {
		put_string_member(&e->val, "audience_key", e->s->key);
		put_member(&e->val, e->s->key, exit ? "false" : "true");
		put_string_member(&e->val, "audience_name", e->s->name);
	}
	if (!d->geolocate)
		put_member(&e->val, "ip", "0");
	buf_putc(&e->val, '}');
	if (e->s->is_trait)
		emit_event(e, d->trait_event, "trait", did, k->time_ms, k->key,
			   e->val.data);
	else
		emit_event(e, exit ? d->exit_event : d->enter_event,
			   exit ? "exit" : "enter", did, k->time_ms, e->s->key,
			   e->val.data);
}

/* The bit of a key name (emitter.key_names). */
static uint64_t key_bit(emitter *e, const char *key)
{
	int i;

	for (i = 0; i < e->nkey_names; i++)
		if (strcmp(e->key_names[i], key) == 0)
			break;
	if (i == e->nkey_names && i < 64)
		e->key_names[e->nkey_names++] = alloc_strdup(key);
	return (uint64_t)1 << (i < 64 ? i : 63);
}

/* The keys a member's value v has, null ones aside. */
static uint64_t keys_of(emitter *e, json_object *v)
{
	uint64_t keys = 0;

	if (!e->s->is_trait)
		return key_bit(e, e->s->key);
	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, kv)
		{
			if (kv)
				keys |= key_bit(e, k);
		}
	}
	return keys;
}

/*
 * Queues the record just emitted for call c, telling keys [first, first
 * + n) of the decision. A stale exit waits while a ledger was read: the
 * distinct_id may have moved to another profile (identity resolution
 * merged two), whose decision tells it that profile's value, before or
 * after this one in the run's order. The exit would undo it, so it goes
 * only for the keys no member decided in this run that holds the
 * distinct_id as a target has a value for (send_held()).
 */
static int put_record(emitter *e, const decide_call *c, int first, int n,
		      char *err, size_t errlen)
{
	int i;

	if (!c->stale || !e->handover)
		return outbox_writer_add(e->w, c->did, e->rec.data, e->rec.len,
					 err, errlen);
	buf_append(&e->held, c->did, strlen(c->did) + 1);
	buf_append(&e->held, e->rec.data, e->rec.len + 1);
	for (i = 0; i < n; i++) {
		const decide_key *k = &e->d.keys[first + i];

		buf_append(&e->held, k->key, strlen(k->key) + 1);
		buf_printf(&e->held, "%lld", k->time_ms);
		buf_putc(&e->held, '\0');
	}
	buf_putc(&e->held, '\0');
	e->nheld++;
	return 0;
}

/* One held exit, read from emitter.held. */
typedef struct held_exit {
	const char *did, *rec, *keys; /* keys: key NUL time NUL ... NUL */
} held_exit;

/* Reads the held exit at p into h; returns what follows it. */
static const char *held_read(const char *p, held_exit *h)
{
	h->did = p;
	h->rec = p + strlen(p) + 1;
	h->keys = h->rec + strlen(h->rec) + 1;
	for (p = h->keys; *p; p += strlen(p) + 1)
		p += strlen(p) + 1;
	return p + 1;
}

/* The name of a distinct_id's key in emitter.latest. */
static const char *did_key(emitter *e, const char *did, const char *key)
{
	buf_reset(&e->name);
	buf_puts(&e->name, did);
	buf_putc(&e->name, '\x1f');
	buf_puts(&e->name, key);
	return e->name.data;
}

/*
 * Queues one held exit for the keys no member holding its distinct_id
 * has a value for: all of them as it was made, some of them in a $set
 * of their own. In track mode an exit older than another held for the
 * same distinct_id and key does not go either: a resync re-sends each
 * exit at the time its ledger says it was told, and the profile a member
 * took the distinct_id from records one that never went (its
 * distinct_id's later exit is what Mixpanel has).
 */
static void send_exit(emitter *e, const held_exit *h, int *rc, char *err,
		      size_t errlen)
{
	uint64_t held = did_get(&e->members, h->did);
	const char *k, *t;
	int all = 1, none = 1;

	buf_reset(&e->val);
	buf_putc(&e->val, '{');
	for (k = h->keys; *k; k = t + strlen(t) + 1) {
		t = k + strlen(k) + 1;
		if ((held & key_bit(e, k)) ||
		    (e->ds.track &&
		     (uint64_t)db_int(t) <
			     did_get(&e->latest, did_key(e, h->did, k)))) {
			all = 0;
			continue;
		}
		none = 0;
		put_member(&e->val, k, e->s->is_trait ? "null" : "false");
	}
	buf_putc(&e->val, '}');
	if (all)
		*rc = outbox_writer_add(e->w, h->did, h->rec, strlen(h->rec),
					err, errlen);
	else if (!none) { /* identify mode: track's records have one key */
		put_set(e, h->did);
		*rc = outbox_writer_add(e->w, h->did, e->rec.data, e->rec.len,
					err, errlen);
	}
}

/*
 * Adds to emitter.members the members outside this run's changes that
 * hold a held exit's distinct_id: that keep it, an anonymous id they were
 * told through before they became known (sql/025_kept_anonymous_ids.sql),
 * or that have it, an anonymous id that moved to them from its keeper,
 * as a current target (sql/026_anonymous_id_owners.sql). The changed
 * profiles are decided in this run (their ledger rows are rewritten as
 * the calls stream); the others' rows are as the last run left them, and
 * so are their identifiers.
 */
static int add_keepers(emitter *e, char *err, size_t errlen)
{
	static const char holders_sql[] =
		"SELECT k.did, m.value::text FROM audsync.snapshot_members m,"
		"  unnest(audsync.kept_dids(m.targets)) k (did)"
		" WHERE m.sync_id = $1 AND m.member"
		"  AND strpos(m.targets, E'\\tha\\t') > 0"
		"  AND audsync.kept_dids(m.targets) && $2::text[]"
		"  AND k.did = ANY ($2::text[])"
		"  AND NOT EXISTS (SELECT 1 FROM pg_temp.audsync_chg c"
		"   WHERE c.profile_id = m.profile_id)"
		" UNION ALL"
		" SELECT x.id_value, m.value::text FROM audsync.external_ids x"
		" JOIN audsync.snapshot_members m ON m.sync_id = $1"
		"  AND m.profile_id = x.profile_id AND m.member"
		" WHERE x.id_type = 'anonymous_id' AND x.id_value = ANY ($2::text[])"
		"  AND NOT EXISTS (SELECT 1 FROM pg_temp.audsync_chg c"
		"   WHERE c.profile_id = m.profile_id)"
		/* a current line (decide.h) whose distinct_id is the id */
		"  AND EXISTS (SELECT 1"
		"   FROM unnest(string_to_array(m.targets, E'\\n')) l"
		"   WHERE split_part(l, E'\\t', 3) = x.id_value"
		"   AND (split_part(l, E'\\t', 5) LIKE 'c%'"
		"    OR array_length(string_to_array(l, E'\\t'), 1) = 3))";
	const char *p[2] = { e->sync_id, NULL }, *d = e->held.data;
	held_exit h;
	PGresult *r;
	int i;

	if (e->full) /* a resync decides every member: there are no others */
		return 0;
	buf_reset(&e->name);
	for (i = 0; i < e->nheld; i++) {
		d = held_read(d, &h);
		buf_array_item(&e->name, h.did);
	}
	buf_array_close(&e->name);
	p[1] = e->name.data;
	/* The kept ids' index holds a few rows, or none, and has no
	 * statistics: the planner guesses a large share of the ledger and
	 * plans parallel workers and JIT, whose start costs ~0.1 s against
	 * the 2 ms of the lookup. Off for what is left of this transaction (statements
	 * already planned, COPY, and small writes of the run's state). */
	if (db_exec(e->conn, "diff: held exits' holders",
		    "SELECT set_config('jit', 'off', true),"
		    " set_config('max_parallel_workers_per_gather', '0', true)",
		    0, NULL, err, errlen) != 0)
		return -1;
	r = db_query(e->conn, "diff: held exits' holders", holders_sql, 2, p,
		     err, errlen);
	if (!r)
		return -1;
	for (i = 0; i < PQntuples(r); i++) {
		json_object *v = mp_json_parse_exact(PQgetvalue(r, i, 1));

		*did_value(&e->members, PQgetvalue(r, i, 0)) |= keys_of(e, v);
		json_object_put(v);
	}
	PQclear(r);
	return 0;
}

/* Queues the stale exits held back, for the keys no member holding their
 * distinct_id has a value for (a member decided so far, or one this run
 * leaves as it was: add_keepers()): at the end of the stream, or early
 * when too many wait (a later member then tells its value after the
 * exit, in the same lane: Mixpanel still ends with the member's). */
static int send_held(emitter *e, char *err, size_t errlen)
{
	const char *p = e->held.data, *k, *t;
	held_exit h;
	int i, rc = 0;

	if (e->nheld > 0 && add_keepers(e, err, errlen) != 0)
		return -1;
	for (i = 0; e->ds.track && i < e->nheld; i++) {
		p = held_read(p, &h);
		for (k = h.keys; *k; k = t + strlen(t) + 1) {
			uint64_t *latest =
				did_value(&e->latest, did_key(e, h.did, k));

			uint64_t at;

			t = k + strlen(k) + 1;
			at = (uint64_t)db_int(t);
			if (at > *latest)
				*latest = at;
		}
	}
	for (p = e->held.data, i = 0; i < e->nheld && rc == 0; i++) {
		p = held_read(p, &h);
		send_exit(e, &h, &rc, err, errlen);
	}
	buf_reset(&e->held);
	did_free(&e->latest);
	e->nheld = 0;
	return rc;
}

/* Queues the record(s) of one decided call. */
static int send_call(emitter *e, const decide_call *c, char *err, size_t errlen)
{
	int i;

	if (e->s->mode == SYNC_MODE_IDENTIFY) {
		emit_identify(e, c);
		return put_record(e, c, c->first_key, c->nkeys, err, errlen);
	}
	if (c->raw) { /* an audience's entry (decide.h): never stale */
		decide_key k = { e->s->key, e->true_value,
				 db_int(e->cur[OUT_AS_OF]) };

		emit_key_event(e, c->did, &k);
		return put_record(e, c, 0, 0, err, errlen);
	}
	for (i = 0; i < c->nkeys; i++) {
		emit_key_event(e, c->did, &e->d.keys[c->first_key + i]);
		if (put_record(e, c, c->first_key + i, 1, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* A timestamp in milliseconds as COPY text (UTC). */
static void put_ms(buf *b, long long ms)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	buf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d.%03lld+00",
		   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		   tm.tm_min, tm.tm_sec, ms - (long long)t * 1000);
}

/* A ledger row of the profile read. */
static int put_row(emitter *e, const char *value, long long since_ms,
		   const char *lines, int member, char *err, size_t errlen)
{
	buf *b = &e->copy;
	int rc;

	buf_printf(b, "%s\t", e->sync_id);
	buf_copy_text(b, e->cur[OUT_PROFILE]);
	buf_putc(b, '\t');
	buf_copy_text(b, value);
	buf_putc(b, '\t');
	put_ms(b, since_ms);
	buf_putc(b, '\t');
	buf_copy_text(b, lines);
	buf_puts(b, member ? "\tt\n" : "\tf\n");
	if (b->len < LEDGER_SEND)
		return 0;
	rc = db_copy_send(e->conn, "snapshot: copy", copy_sql, b->data, b->len,
			  err, errlen);
	buf_reset(b);
	return rc;
}

/* The ledger row of the profile: what this run leaves Mixpanel knowing. */
static int remember(emitter *e, char *err, size_t errlen)
{
	return put_row(e, e->d.value.data ? e->d.value.data : "{}",
		       e->d.since_ms, e->d.lines.data ? e->d.lines.data : "",
		       e->d.member, err, errlen);
}

static const char *col(emitter *e, int c)
{
	return e->cur[c][0] ? e->cur[c] : NULL;
}

/* All rows of one profile are read: decide its calls and ledger row. */
static int decide_calls(emitter *e, char *err, size_t errlen)
{
	const char *kind = e->cur[OUT_KIND];
	decide_in in;
	int i, n;

	memset(&in, 0, sizeof(in));
	in.member = strcmp(kind, "exit") != 0 && strcmp(kind, "former") != 0;
	in.full = e->full;
	in.value = col(e, OUT_NEW);
	in.as_of_ms = db_int(e->cur[OUT_AS_OF]);
	in.old_value = col(e, OUT_OLD_VALUE);
	in.old_since_ms = db_int(e->cur[OUT_SINCE]);
	in.old_member = e->cur[OUT_OLD_MEMBER][0] == 't';
	in.old_lines = e->cur[OUT_OLD];
	in.ids = e->ids;
	in.nids = e->nids;
	if (decide_profile(&e->d, &e->ds, &in, err, errlen) != 0)
		return -1;
	e->skipped += e->d.skipped;
	for (i = 0; i < e->d.ncalls; i++)
		if (send_call(e, &e->d.calls[i], err, errlen) != 0)
			return -1;
	n = e->handover ? decision_nholds(&e->d) : 0;
	if (n > 0) {
		uint64_t keys = keys_of(e, decision_value(&e->d));

		for (i = 0; i < n; i++)
			*did_value(&e->members, decision_holds(&e->d, i)) |=
				keys;
	}
	if (e->d.keep && remember(e, err, errlen) != 0)
		return -1;
	if (e->nheld >= HELD_EXITS_MAX)
		return send_held(e, err, errlen);
	return 0;
}

/* Decides the profile read, or keeps it waiting (emitter.waiting). */
static int emit_profile(emitter *e, char *err, size_t errlen)
{
	int i;

	if (!e->graph || e->nids > 0 || strcmp(e->cur[OUT_KIND], "enter") != 0)
		return decide_calls(e, err, errlen);
	for (i = 0; i < OUT_COLUMNS; i++)
		buf_append(&e->waiting, e->cur[i], strlen(e->cur[i]) + 1);
	e->nwaiting++;
	return 0;
}

/* Sends the ledger rows not sent yet, and ends their COPY (between two
 * FETCHes). */
static int flush_copy(emitter *e, char *err, size_t errlen)
{
	int rc = 0;

	if (e->copy.len > 0)
		rc = db_copy_send(e->conn, "snapshot: copy", copy_sql,
				  e->copy.data, e->copy.len, err, errlen);
	buf_reset(&e->copy);
	return rc == 0 ? db_copy_end(e->conn, err, errlen) : -1;
}

/* Those of the waiting profiles (emitter.waiting: $1, an array of their
 * profile_ids) the identity graph has, by any identifier type, in the
 * calls cursor's order. */
static const char graph_sql[] =
	"SELECT DISTINCT profile_id FROM audsync.external_ids"
	" WHERE profile_id = ANY ($1::text[]) ORDER BY profile_id";

/* Points e->cur at the waiting profile at p; returns the next one. */
static const char *waiting_row(emitter *e, const char *p)
{
	int i;

	for (i = 0; i < OUT_COLUMNS; i++) {
		e->cur[i] = p;
		p += strlen(p) + 1;
	}
	return p;
}

/*
 * Decides the waiting profiles once the changes are read: those of the
 * identity graph as any member without an identifier to send to (a
 * ledger row, counted as skipped); the others are no members, as a
 * rule's full evaluation has them. Their ledger stays as it was: the
 * former member's row the diff forgot is written back unchanged, and
 * they are taken from the members entered. The few such profiles cost
 * one statement; every other entering profile's identifiers were read
 * anyway.
 */
static int settle_waiting(emitter *e, char *err, size_t errlen)
{
	const char *p, *end = e->waiting.data + e->waiting.len;
	PGresult *r;
	buf ids;
	int i = 0, rc = 0;

	if (e->nwaiting == 0)
		return 0;
	buf_init(&ids);
	for (p = e->waiting.data; p < end;) {
		p = waiting_row(e, p);
		buf_array_item(&ids, e->cur[OUT_PROFILE]);
	}
	buf_array_close(&ids);
	r = db_query(e->conn, "diff: identity graph", graph_sql, 1,
		     (const char **)&ids.data, err, errlen);
	buf_free(&ids);
	if (!r)
		return -1;
	/* Both in the same order: the graph's next is the waiting one's, or
	 * that is outside. */
	for (p = e->waiting.data; rc == 0 && p < end;) {
		p = waiting_row(e, p);
		if (i < PQntuples(r) &&
		    strcmp(PQgetvalue(r, i, 0), e->cur[OUT_PROFILE]) == 0) {
			i++;
			rc = decide_calls(e, err, errlen);
			continue;
		}
		e->outside++;
		if (col(e, OUT_OLD_VALUE))
			rc = put_row(e, e->cur[OUT_OLD_VALUE],
				     db_int(e->cur[OUT_SINCE]), e->cur[OUT_OLD],
				     0, err, errlen);
	}
	if (rc == 0 && i < PQntuples(r)) {
		snprintf(err, errlen,
			 "diff: the identity graph's profile %s came out of "
			 "the changes' order",
			 PQgetvalue(r, i, 0));
		rc = -1;
	}
	PQclear(r);
	return rc == 0 ? flush_copy(e, err, errlen) : -1;
}

/* Forgets the profile just emitted. */
static void clear_profile(emitter *e)
{
	int i;

	for (i = 0; i < e->nids; i++) {
		free((char *)e->ids[i].type);
		free((char *)e->ids[i].value);
	}
	e->nids = 0;
}

static char *dup_col(const PGresult *r, int row, int col)
{
	return alloc_strdup(PQgetisnull(r, row, col) ? ""
						     : PQgetvalue(r, row, col));
}

/* Adds the identifier in row of the ids cursor to the profile read. */
static void add_ident(emitter *e, const PGresult *r, int row)
{
	if (e->nids == e->capids) {
		e->capids = e->capids ? e->capids * 2 : 16;
		e->ids = alloc_realloc(e->ids,
				       (size_t)e->capids * sizeof(decide_id));
	}
	e->ids[e->nids].type = dup_col(r, row, ID_TYPE);
	e->ids[e->nids].value = dup_col(r, row, ID_VALUE);
	e->ids[e->nids].created = db_int(PQgetvalue(r, row, ID_CREATED));
	e->nids++;
}

static void emitter_free(emitter *e)
{
	clear_profile(e);
	free(e->ids);
	decision_free(&e->d);
	json_object_put(e->true_value);
	did_free(&e->members);
	did_free(&e->latest);
	buf_free(&e->name);
	while (e->nkey_names > 0)
		free(e->key_names[--e->nkey_names]);
	buf_free(&e->held);
	buf_free(&e->rec);
	buf_free(&e->val);
	buf_free(&e->copy);
	buf_free(&e->waiting);
	outbox_writer_close(e->w);
}

/* A cursor read a batch at a time. */
typedef struct batch {
	const char *fetch; /* the FETCH statement */
	PGresult *r;
	int row, n;
} batch;

/* Moves to the next row of b, fetching a batch when needed: 1, 0 at its
 * end, -1 on error. */
static int next_row(batch *b, PGconn *conn, char *err, size_t errlen)
{
	if (b->r && ++b->row < b->n)
		return 1;
	if (b->r && b->n == 0)
		return 0;
	PQclear(b->r);
	b->r = db_query(conn, "diff: read calls", b->fetch, 0, NULL, err,
			errlen);
	if (!b->r)
		return -1;
	b->row = 0;
	b->n = PQntuples(b->r);
	return b->n > 0;
}

/*
 * Reads both cursors to their ends, queueing calls and snapshot rows:
 * each profile takes the identifiers that follow in the same order (a
 * profile may have none). Identifiers are copied, so a profile's may
 * span FETCH batches. An identifier left over names a profile the changes
 * did not: the cursors disagreed on their order, and the run fails before
 * anything of it commits.
 */
static int fetch_loop(emitter *e, char *err, size_t errlen)
{
	batch calls = { "FETCH " FETCH_ROWS " FROM audsync_out", NULL, 0, 0 };
	batch ids = { "FETCH " FETCH_ROWS " FROM audsync_ids_out", NULL, 0, 0 };
	int more = 0, more_ids, i, rc = -1;

	more_ids = next_row(&ids, e->conn, err, errlen);
	while (more_ids >= 0 &&
	       (more = next_row(&calls, e->conn, err, errlen)) > 0) {
		/* calls.r stays until the next batch of calls */
		for (i = 0; i < OUT_COLUMNS; i++)
			e->cur[i] = PQgetvalue(calls.r, calls.row, i);
		while (more_ids > 0 &&
		       strcmp(PQgetvalue(ids.r, ids.row, ID_PROFILE),
			      e->cur[OUT_PROFILE]) == 0) {
			add_ident(e, ids.r, ids.row);
			more_ids = next_row(&ids, e->conn, err, errlen);
		}
		if (more_ids < 0 || emit_profile(e, err, errlen) != 0)
			goto out;
		clear_profile(e);
		/* Between FETCHes, the snapshot rows of a batch. */
		if (calls.row == calls.n - 1 && flush_copy(e, err, errlen) != 0)
			goto out;
	}
	if (more_ids > 0 && more == 0)
		snprintf(err, errlen,
			 "diff: the identifiers of profile %s came out of the "
			 "changes' order",
			 PQgetvalue(ids.r, ids.row, ID_PROFILE));
	else if (more_ids == 0 && more == 0 &&
		 settle_waiting(e, err, errlen) == 0)
		rc = send_held(e, err, errlen);
out:
	PQclear(calls.r);
	PQclear(ids.r);
	return rc;
}

/* Opens the cursors of the calls, of the identifiers of a few changed
 * profiles by their list (ID_LIST_MAX). */
static int open_calls(PGconn *conn, const sync_def *s, const char **p,
		      char *err, size_t errlen)
{
	PGresult *r = db_query(conn, "diff: identifiers", id_list_sql, 0, NULL,
			       err, errlen);
	const char *ids[2] = { calls_id_types(s), NULL };
	int rc;

	if (!r)
		return -1;
	if (db_int(PQgetvalue(r, 0, 0)) <= db_int(ID_LIST_MAX)) {
		ids[1] = PQgetvalue(r, 0, 1);
		rc = db_exec(conn, "diff: identifiers", ids_list_sql, 2, ids,
			     err, errlen);
	} else {
		rc = db_exec(conn, "diff: identifiers", ids_table_sql, 1, ids,
			     err, errlen);
	}
	PQclear(r);
	if (rc != 0)
		return -1;
	return db_exec(conn, "diff: calls", calls_sql, 1, p, err, errlen);
}

int calls_stream(diff_counts *out, PGconn *conn, const sync_def *s,
		 long long run_id, int how, FILE *dry_run, char *err,
		 size_t errlen)
{
	const char *p[1] = { s->as_of };
	emitter e;
	int rc = -1;

	memset(&e, 0, sizeof(e));
	decision_init(&e.d);
	e.true_value = json_object_new_boolean(1);
	e.s = s;
	e.full = (how & CALLS_FULL) != 0;
	/* else no exit can be stale */
	e.handover = (how & CALLS_LEDGER_READ) != 0;
	e.graph = (how & CALLS_GRAPH) != 0;
	e.ds.track = s->mode == SYNC_MODE_TRACK;
	e.ds.is_trait = s->is_trait;
	e.ds.id_sync = s->id_sync == ID_SYNC_FIRST  ? DECIDE_ID_FIRST
		       : s->id_sync == ID_SYNC_LAST ? DECIDE_ID_LAST
						    : DECIDE_ID_ALL;
	e.conn = conn;
	snprintf(e.sync_id, sizeof(e.sync_id), "%d", s->id);
	e.w = outbox_writer_open(
		conn, s->dest->id, s->dest->name, s->id, run_id,
		s->mode == SYNC_MODE_TRACK ? MP_EP_IMPORT : MP_EP_ENGAGE,
		dry_run);
	if (open_calls(conn, s, p, err, errlen) != 0 ||
	    fetch_loop(&e, err, errlen) != 0 ||
	    db_exec(conn, "diff: calls", "CLOSE audsync_out", 0, NULL, err,
		    errlen) != 0 ||
	    db_exec(conn, "diff: calls", "CLOSE audsync_ids_out", 0, NULL, err,
		    errlen) != 0 ||
	    outbox_writer_finish(e.w, &out->calls, err, errlen) != 0)
		goto out;
	out->skipped = e.skipped;
	out->outside = e.outside;
	out->entered -= e.outside;
	rc = 0;
out:
	emitter_free(&e);
	return rc;
}
