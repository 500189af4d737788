/* diff.c - what changed since Mixpanel was last told, and the calls */
#include "audsync/diff.h"

#include "audsync/alloc.h"

#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/mp_payload.h"
#include "audsync/outbox.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_ROWS "20000"

/*
 * Per profile first. kind is enter, exit, change, resend (a full
 * resync's unchanged member) or newid (an unchanged member that gained
 * identifiers). On a first sync or a resync every member is read: one
 * hash join of the distinct stage against the snapshot's narrow member
 * rows ($3: keep the unchanged too).
 */
#define CHG_TABLE "CREATE TEMP TABLE audsync_chg ON COMMIT DROP AS"
/* An audience's stage leaves every member's value, {key: true}, NULL
 * (evaluate.c); $2 is the key. */
#define AUDIENCE_VALUE "jsonb_build_object($2::text, true)"
/* The wide columns are read only for the rows that changed; old_t is the
 * snapshot row's address, for forgetting it. */
#define FULL_SQL(stage)                                                        \
	" SELECT d.profile_id, d.old, d.new, m.since,"                         \
	"  m.targets AS old_targets, d.kind, m.ctid AS old_t"                  \
	" FROM (SELECT coalesce(s.profile_id, m.profile_id) AS profile_id,"    \
	"  m.value AS old, s.value AS new,"                                    \
	"  CASE WHEN m.profile_id IS NULL THEN 'enter'"                        \
	"   WHEN s.profile_id IS NULL THEN 'exit'"                             \
	"   WHEN m.value <> s.value THEN 'change' ELSE 'resend' END AS kind"   \
	"  FROM (SELECT " stage " profile_id, coalesce(value,"                 \
	"   " AUDIENCE_VALUE ") AS value FROM pg_temp.audsync_stage) s"        \
	"  FULL JOIN (SELECT profile_id, value FROM audsync.snapshot_members"  \
	"   WHERE sync_id = $1) m ON m.profile_id = s.profile_id"              \
	"  WHERE $3::boolean OR m.value IS DISTINCT FROM s.value) d"           \
	" LEFT JOIN audsync.snapshot_members m ON d.old IS NOT NULL"           \
	"  AND m.sync_id = $1 AND m.profile_id = d.profile_id"

/* An audience's stage may name a profile twice; a trait's may not. */
static const char full_audience_sql[] = CHG_TABLE FULL_SQL("DISTINCT");
static const char full_trait_sql[] = CHG_TABLE FULL_SQL("");

/*
 * Otherwise only the rows that differ are looked at: the stage's rows the
 * snapshot does not hold and the snapshot's rows the stage does not, by
 * one hash join on the narrow checksum and profile_id (a trait's: an
 * audience's rows were joined so as they came, evaluate.c) ...
 */
static const char differ_sql[] =
	"INSERT INTO pg_temp.audsync_d (new_p, new, old_p, old_t)"
	" SELECT s.profile_id, s.value, m.profile_id, m.ctid"
	" FROM pg_temp.audsync_stage s FULL JOIN (SELECT ctid, profile_id, h"
	"  FROM audsync.snapshot_members WHERE sync_id = $1) m"
	"  ON m.h = s.h AND m.profile_id = s.profile_id"
	" WHERE s.h IS NULL OR m.h IS NULL";

/* ... then paired per profile, the snapshot's wide columns read for
 * those few by the row's address (nothing moves them in between; the
 * key is checked all the same). */
static const char chg_sql[] = CHG_TABLE
	" SELECT coalesce(n.profile_id, o.profile_id) AS profile_id,"
	"  o.value AS old, n.value AS new, o.since, o.targets AS old_targets,"
	"  CASE WHEN o.profile_id IS NULL THEN 'enter'"
	"   WHEN n.profile_id IS NULL THEN 'exit' ELSE 'change' END AS kind,"
	"  o.old_t"
	" FROM (SELECT DISTINCT new_p AS profile_id,"
	"  coalesce(new, " AUDIENCE_VALUE ") AS value"
	"  FROM pg_temp.audsync_d WHERE new_p IS NOT NULL) n"
	" FULL JOIN (SELECT m.*, d.old_t FROM pg_temp.audsync_d d"
	"  CROSS JOIN LATERAL (SELECT m.profile_id, m.value, m.since,"
	"   m.targets FROM audsync.snapshot_members m WHERE m.ctid = d.old_t"
	"   AND m.sync_id = $1 AND m.profile_id = d.old_p) m"
	"  WHERE d.old_p IS NOT NULL) o ON o.profile_id = n.profile_id"
	/* Equal values differ only if checksums were computed apart. */
	" WHERE n.value IS DISTINCT FROM o.value";

/* Unchanged members with identifiers added since the last run: by
 * created_at, or by load time for rows backfilled with older dates. */
static const char newid_sql[] =
	"INSERT INTO audsync_chg"
	" SELECT m.profile_id, m.value, m.value, m.since, m.targets, 'newid',"
	"  m.ctid"
	" FROM (SELECT profile_id FROM audsync.external_ids"
	"  WHERE id_type = ANY ($2::text[]) AND created_at > $3::timestamptz"
	"  UNION SELECT profile_id FROM audsync.identifier_log"
	"  WHERE xact >= pg_snapshot_xmin($4::pg_snapshot)"
	"  AND NOT pg_visible_in_snapshot(xact, $4::pg_snapshot)) e"
	" JOIN audsync.snapshot_members m ON m.sync_id = $1"
	"  AND m.profile_id = e.profile_id"
	" WHERE NOT EXISTS (SELECT 1 FROM audsync_chg c"
	"  WHERE c.profile_id = e.profile_id)";

/* Since when to look for new identifiers (created_at, less a margin for
 * late commits; and the last run's snapshot for the load log), and this
 * run's snapshot, taken before the look: a row it cannot see is looked
 * at again next time. No row on a first sync. */
static const char mark_sql[] =
	"SELECT ids_seen_upto - interval '" DIFF_IDS_MARGIN "',"
	" coalesce(ids_snapshot, pg_current_snapshot()),"
	" pg_current_snapshot()"
	" FROM audsync.sync_state WHERE sync_id = $1";

/* The load log is pruned once per clock hour of each sync, not on every
 * run: right after a bulk load, the index of a just-pruned log is full of
 * dead entries that every further prune would walk again. */
static const char prune_sql[] =
	"DELETE FROM audsync.identifier_log WHERE xact <"
	" (SELECT min(pg_snapshot_xmin(ids_snapshot)) FROM audsync.sync_state)"
	" AND NOT EXISTS (SELECT 1 FROM audsync.sync_state WHERE sync_id = $1"
	" AND date_trunc('hour', ids_seen_upto) = date_trunc('hour', now()))";

static const char counts_sql[] =
	"SELECT count(*) FILTER (WHERE kind = 'enter'),"
	" count(*) FILTER (WHERE kind = 'exit'),"
	" count(*) FILTER (WHERE kind = 'change')"
	" FROM audsync_chg";

/*
 * Up to ID_LIST_MAX changed profiles (a normal run's few) have their
 * identifiers looked up by a list of them: a scan of external_ids with a
 * hashed list, which PostgreSQL may spread over several cores (a cursor
 * cannot be, and helpers cannot read a temporary table). More (a first
 * sync, a resync) are joined with the whole table, where a list would
 * cost more than it saves.
 */
#define ID_LIST_MAX "50000"

static const char id_list_sql[] =
	"SELECT count(*), array_agg(profile_id)::text FROM (SELECT profile_id"
	" FROM audsync_chg LIMIT " ID_LIST_MAX " + 1) c";

static const char ids_sql[] =
	"CREATE TEMP TABLE audsync_ids ON COMMIT DROP AS"
	" SELECT profile_id, id_type, id_value, created_at"
	" FROM audsync.external_ids"
	" WHERE profile_id = ANY ($1::text[]) AND id_type = ANY ($2::text[])";

/*
 * The changed profiles, one row each, and their current identifiers (from
 * ids: the table, or the few looked up above), through two cursors in the
 * same order, which the engine merges (fetch_loop()): the profiles' wide
 * columns are not copied and sorted once per identifier. The engine puts
 * a profile's identifiers in created_at order itself and picks targets
 * and distinct_ids from them (emit_profile()). The value column is {key:
 * bool} for an audience; for a trait the whole value, or on a change or
 * exit only the keys that changed (null when gone). time: the
 * transition's as-of time, or for a re-send the original one.
 */
static const char calls_sql[] =
	"DECLARE audsync_out NO SCROLL CURSOR FOR"
	" SELECT profile_id, kind,"
	"  (CASE WHEN NOT $3::boolean"
	"    THEN jsonb_build_object($2::text, kind <> 'exit')"
	"   WHEN kind IN ('change', 'exit') THEN (SELECT"
	"    jsonb_object_agg(k, new -> k) FROM (SELECT jsonb_object_keys("
	"    new) UNION SELECT jsonb_object_keys(old)) AS ks (k)"
	"    WHERE new -> k IS DISTINCT FROM old -> k)"
	"   ELSE new END)::text AS delta,"
	"  (extract(epoch FROM CASE WHEN kind IN ('resend', 'newid')"
	"   THEN since ELSE $1::timestamptz END) * 1000)::bigint AS time_ms,"
	"  CASE WHEN kind IN ('resend', 'newid') THEN since"
	"   ELSE $1::timestamptz END AS snap_since,"
	"  old_targets, new::text AS new_text"
	" FROM audsync_chg ORDER BY profile_id COLLATE \"C\"";

#define IDS_SQL(ids)                                                           \
	"DECLARE audsync_ids_out NO SCROLL CURSOR FOR"                         \
	" SELECT e.profile_id, e.id_type, e.id_value,"                         \
	"  (extract(epoch FROM e.created_at) * 1000000)::bigint FROM " ids     \
	" e"                                                                   \
	" WHERE e.profile_id IN (SELECT profile_id FROM audsync_chg)"          \
	"  AND e.id_type = ANY ($1::text[])"                                   \
	" ORDER BY e.profile_id COLLATE \"C\""

static const char ids_table_sql[] = IDS_SQL("audsync.external_ids");
static const char ids_list_sql[] = IDS_SQL("pg_temp.audsync_ids");

/* The columns of calls_sql, then of IDS_SQL. */
enum {
	OUT_PROFILE,
	OUT_KIND,
	OUT_VALUE,
	OUT_TIME,
	OUT_SINCE,
	OUT_OLD,
	OUT_NEW,
	OUT_COLUMNS
};
enum { ID_PROFILE, ID_TYPE, ID_VALUE, ID_CREATED };

/* Everyone whose snapshot row this run rewrites or removes, by the rows'
 * addresses (a TID scan, whatever the statistics say): the diff read
 * them in this transaction, under the sync's lock, so each address still
 * names the row it named. */
static const char forget_sql[] =
	"WITH gone AS (DELETE FROM audsync.snapshot_members m"
	" WHERE m.ctid = ANY (ARRAY(SELECT old_t FROM audsync_chg"
	"  WHERE old_t IS NOT NULL)) AND m.sync_id = $1 RETURNING 1)"
	" SELECT count(*) FROM gone";

static const char copy_sql[] =
	"COPY audsync.snapshot_members"
	" (sync_id, profile_id, value, since, targets) FROM STDIN";

/* The state: the snapshot's size moved by what this run removed ($5) and
 * wrote back (every profile of the changes but the exits). Returns the
 * members. */
static const char state_sql[] =
	"INSERT INTO audsync.sync_state (sync_id, last_as_of, ids_seen_upto,"
	"  last_run_id, ids_snapshot, snap_count)"
	" SELECT $1, $2, now(), $3,"
	"  coalesce($4::pg_snapshot, pg_current_snapshot()),"
	"  count(*) FILTER (WHERE kind <> 'exit') - $5::bigint"
	" FROM audsync_chg"
	" ON CONFLICT (sync_id) DO UPDATE SET"
	"  last_as_of = EXCLUDED.last_as_of,"
	"  ids_seen_upto = EXCLUDED.ids_seen_upto,"
	"  last_run_id = EXCLUDED.last_run_id,"
	"  ids_snapshot = EXCLUDED.ids_snapshot,"
	"  snap_count = sync_state.snap_count + EXCLUDED.snap_count"
	" RETURNING snap_count";

/* What a run carries from finding changes to saving its state. */
typedef struct diff_marks {
	char *snapshot;	    /* taken before new identifiers were looked
			      * for (owned; a busy server's is long), or
			      * NULL on a first sync or a resync */
	char removed_n[24]; /* snapshot rows removed */
	int whole;	    /* the stage holds every member */
} diff_marks;

/* The identifier types a sync sends to, as a SQL array literal. */
static const char *id_types(const sync_def *s)
{
	return s->include_anonymous ? "{user_id,email,anonymous_id}"
				    : "{user_id,email}";
}

/* One identifier of the profile being read. */
typedef struct ident {
	char *type; /* owned, as value */
	char *value;
	long long created; /* created_at, microseconds */
	int valid;
	int chosen;	 /* a target under the id_sync rule */
	const char *did; /* its distinct_id when chosen */
} ident;

/* What turns rows into records: the sync, its writer, scratch space. */
typedef struct emitter {
	const sync_def *s;
	outbox_writer *w;
	PGconn *conn;
	char sync_id[16];
	buf rec, val, targets, copy;
	long long skipped;
	const char *cur[OUT_COLUMNS]; /* the profile being read: its row
				       * of the calls cursor, as read */
	ident *ids;
	int nids, capids;
	const char **sent; /* track mode: distinct_ids with an event */
	int nsent;
} emitter;

/* One /engage $set per target; an email target sets $email too, and
 * since a profile's targets come in created_at order, its newest email
 * is the address of record. */
static void emit_identify(emitter *e, const char *id_type, const char *id_value,
			  const char *distinct_id, const char *value)
{
	const char *set = value;

	if (strcmp(id_type, "email") == 0) {
		const char *end = strrchr(value, '}');

		buf_reset(&e->val);
		buf_append(&e->val, value, (size_t)(end - value));
		buf_puts(&e->val,
			 end - value > 1 ? ", \"$email\": " : "\"$email\": ");
		buf_json_str(&e->val, id_value);
		buf_putc(&e->val, '}');
		set = e->val.data;
	}
	buf_reset(&e->rec);
	mp_payload_engage(&e->rec, e->s->dest->project_token, distinct_id,
			  e->s->dest->ignore_time, "$set", set);
}

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

/* The event record, with a $insert_id derived from what makes it this
 * transition: the same re-send is a duplicate Mixpanel drops. */
static void emit_event(emitter *e, const char *event, const char *transition,
		       const char *distinct_id, const char *time_ms,
		       const char *key, const char *props)
{
	const char *parts[5] = { e->sync_id, distinct_id, transition, time_ms,
				 key };
	char insert_id[MP_INSERT_ID_LEN + 1];

	mp_insert_id(insert_id, parts, 5);
	buf_reset(&e->rec);
	mp_payload_event(&e->rec, event, distinct_id, atoll(time_ms), insert_id,
			 props);
}

/* Audience Entered / Exited, with the audience's key and name. */
static void emit_audience_event(emitter *e, int exit, const char *distinct_id,
				const char *time_ms)
{
	const dest_def *d = e->s->dest;

	buf_reset(&e->val);
	buf_putc(&e->val, '{');
	put_string_member(&e->val, "audience_key", e->s->key);
	put_member(&e->val, e->s->key, exit ? "false" : "true");
	put_string_member(&e->val, "audience_name", e->s->name);
	if (!d->geolocate)
		put_member(&e->val, "ip", "0");
	buf_putc(&e->val, '}');
	emit_event(e, exit ? d->exit_event : d->enter_event,
		   exit ? "exit" : "enter", distinct_id, time_ms, e->s->key,
		   e->val.data);
}

/* The name of a member's quoted key token (caller frees), or NULL. */
static char *member_key(const mp_json_member *m)
{
	json_object *o;
	char *tok = alloc_calloc(1, m->keylen + 1), *k = NULL;

	memcpy(tok, m->key, m->keylen);
	o = json_tokener_parse(tok);
	if (o && json_object_is_type(o, json_type_string))
		k = alloc_strdup(json_object_get_string(o));
	json_object_put(o);
	free(tok);
	return k;
}

/* One trait event per key in value (a JSON object), each queued. The
 * values go as PostgreSQL wrote them: a number past 64 bits keeps its
 * digits, and nesting has no depth limit here (Mixpanel's own limits
 * apply when it answers). */
static int emit_trait_events(emitter *e, const char *distinct_id,
			     const char *time_ms, const char *value, char *err,
			     size_t errlen)
{
	const char *pos = value;
	mp_json_member m;
	buf v;
	int more, rc = 0;

	buf_init(&v);
	while (rc == 0 && (more = mp_json_next_member(&m, &pos)) > 0) {
		char *k = member_key(&m);

		if (!k) {
			more = -1;
			break;
		}
		buf_reset(&v);
		buf_append(&v, m.value, m.valuelen);
		buf_reset(&e->val);
		buf_putc(&e->val, '{');
		put_string_member(&e->val, "trait_key", k);
		put_member(&e->val, k, v.data);
		if (!e->s->dest->geolocate)
			put_member(&e->val, "ip", "0");
		buf_putc(&e->val, '}');
		emit_event(e, e->s->dest->trait_event, "trait", distinct_id,
			   time_ms, k, e->val.data);
		free(k);
		rc = outbox_writer_add(e->w, distinct_id, e->rec.data,
				       e->rec.len, err, errlen);
	}
	buf_free(&v);
	if (rc == 0 && more < 0) {
		snprintf(err, errlen, "computation %s: unreadable value %.200s",
			 e->s->key, value);
		return -1;
	}
	return rc;
}

/* Track mode sends one event per distinct_id of a profile: 1 if this
 * distinct_id already had one. */
static int already_sent(emitter *e, const char *distinct_id)
{
	int i;

	for (i = 0; i < e->nsent; i++)
		if (strcmp(e->sent[i], distinct_id) == 0)
			return 1;
	e->sent[e->nsent++] = distinct_id;
	return 0;
}

/* Queues the call(s) of one target. */
static int send_target(emitter *e, const char *type, const char *value,
		       const char *did, char *err, size_t errlen)
{
	const char *kind = e->cur[OUT_KIND];
	const char *delta = e->cur[OUT_VALUE];
	const char *time_ms = e->cur[OUT_TIME];

	if (e->s->mode == SYNC_MODE_IDENTIFY) {
		emit_identify(e, type, value, did, delta);
	} else if (already_sent(e, did)) {
		return 0;
	} else if (e->s->is_trait) {
		return emit_trait_events(e, did, time_ms, delta, err, errlen);
	} else {
		emit_audience_event(e, strcmp(kind, "exit") == 0, did, time_ms);
	}
	return outbox_writer_add(e->w, did, e->rec.data, e->rec.len, err,
				 errlen);
}

/* Identifier values with a tab or newline cannot be kept in the snapshot's
 * line format; Mixpanel would not take them as ids either. */
static int id_valid(const char *v)
{
	return !mp_distinct_id_invalid(v) && !strpbrk(v, "\t\n\r");
}

/* Identifier order: created_at, then type and value for equal times. */
static int ident_cmp(const void *a, const void *b)
{
	const ident *x = a, *y = b;
	int c;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	c = strcmp(x->type, y->type);
	return c ? c : strcmp(x->value, y->value);
}

/*
 * Picks the targets: one per identifier (anonymous ids only when the
 * computation includes them: the query selected the types), id_sync
 * first/last keeping the oldest/newest of each type. The distinct_id is
 * the newest valid user_id; without one, an anonymous id stands for
 * itself and the newest one for the rest; else the target is skipped.
 */
static void choose_targets(emitter *e)
{
	const char *user = NULL, *anon = NULL;
	int i, j;

	for (i = 0; i < e->nids; i++) {
		ident *id = &e->ids[i];

		id->valid = id_valid(id->value);
		id->chosen = id->valid;
		e->skipped += !id->valid;
		if (id->valid && strcmp(id->type, "user_id") == 0)
			user = id->value;
		if (id->valid && strcmp(id->type, "anonymous_id") == 0)
			anon = id->value;
	}
	for (i = 0; i < e->nids && e->s->id_sync != ID_SYNC_ALL; i++) {
		for (j = 0; j < e->nids && e->ids[i].chosen; j++) {
			int later =
				e->s->id_sync == ID_SYNC_FIRST ? j < i : j > i;

			if (later && e->ids[j].valid &&
			    strcmp(e->ids[j].type, e->ids[i].type) == 0)
				e->ids[i].chosen = 0;
		}
	}
	for (i = 0; i < e->nids; i++) {
		ident *id = &e->ids[i];

		if (!id->chosen)
			continue;
		id->did = user					  ? user
			  : strcmp(id->type, "anonymous_id") == 0 ? id->value
								  : anon;
		if (!id->did) {
			id->chosen = 0;
			e->skipped++;
		}
	}
}

/* Writes target lines "type\tvalue\tdistinct_id" to b. */
static void put_target(buf *b, const char *type, const char *value,
		       const char *did)
{
	if (b->len)
		buf_putc(b, '\n');
	buf_printf(b, "%s\t%s\t%s", type, value, did);
}

/* 1 when old (target lines) holds the line for type/value[/did]. */
static int old_has(const char *old, const char *type, const char *value,
		   const char *did, const char **out_did)
{
	size_t tl = strlen(type), vl = strlen(value);
	const char *p = old;

	while (p && *p) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > tl + vl + 1 && strncmp(p, type, tl) == 0 &&
		    p[tl] == '\t' && strncmp(p + tl + 1, value, vl) == 0 &&
		    p[tl + 1 + vl] == '\t') {
			const char *d = p + tl + vl + 2;
			size_t dl = len - tl - vl - 2;

			if (out_did)
				*out_did = d;
			if (!did ||
			    (strlen(did) == dl && strncmp(did, d, dl) == 0))
				return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* An exit goes to the identifiers synced before that the profile still
 * has, at the distinct_id they were sent to (id_sync does not apply). */
static int send_exit(emitter *e, char *err, size_t errlen)
{
	const char *old = e->cur[OUT_OLD];
	char did[512];
	int i;

	for (i = 0; i < e->nids; i++) {
		const char *d = NULL;
		size_t n;

		if (!old_has(old, e->ids[i].type, e->ids[i].value, NULL, &d))
			continue;
		n = strcspn(d, "\n");
		if (n >= sizeof(did)) {
			e->skipped++; /* no Mixpanel id is this long */
			continue;
		}
		memcpy(did, d, n);
		did[n] = '\0';
		if (send_target(e, e->ids[i].type, e->ids[i].value, did, err,
				errlen) != 0)
			return -1;
	}
	return 0;
}

/* The snapshot row of a member: what this run leaves Mixpanel knowing. */
static void remember(emitter *e)
{
	buf *b = &e->copy;

	buf_printf(b, "%s\t", e->sync_id);
	buf_copy_text(b, e->cur[OUT_PROFILE]);
	buf_putc(b, '\t');
	buf_copy_text(b, e->cur[OUT_NEW]);
	buf_putc(b, '\t');
	buf_copy_text(b, e->cur[OUT_SINCE]);
	buf_putc(b, '\t');
	buf_copy_text(b, e->targets.data ? e->targets.data : "");
	buf_putc(b, '\n');
}

/* All rows of one profile are read: decide its calls and snapshot row. */
static int emit_profile(emitter *e, char *err, size_t errlen)
{
	const char *kind = e->cur[OUT_KIND];
	const char *old = e->cur[OUT_OLD];
	int i, newid = strcmp(kind, "newid") == 0;

	e->nsent = 0;
	qsort(e->ids, (size_t)e->nids, sizeof(ident), ident_cmp);
	if (strcmp(kind, "exit") == 0)
		return send_exit(e, err, errlen);
	if (e->nids == 0)
		e->skipped++; /* a member with no identifier at all */
	choose_targets(e);
	buf_reset(&e->targets);
	for (i = 0; i < e->nids; i++) {
		ident *id = &e->ids[i];

		if (!id->chosen)
			continue;
		put_target(&e->targets, id->type, id->value, id->did);
		if (newid && old_has(old, id->type, id->value, id->did, NULL))
			continue;
		if (send_target(e, id->type, id->value, id->did, err, errlen) !=
		    0)
			return -1;
	}
	remember(e);
	return 0;
}

/* Sends the snapshot rows gathered so far (between two FETCHes). */
static int flush_copy(emitter *e, char *err, size_t errlen)
{
	int rc;

	if (e->copy.len == 0)
		return 0;
	rc = db_copy_in(e->conn, "snapshot: copy", copy_sql, e->copy.data,
			e->copy.len, err, errlen);
	buf_reset(&e->copy);
	return rc;
}

/* Forgets the profile just emitted. */
static void clear_profile(emitter *e)
{
	int i;

	for (i = 0; i < e->nids; i++) {
		free(e->ids[i].type);
		free(e->ids[i].value);
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
				       (size_t)e->capids * sizeof(ident));
		e->sent = alloc_realloc(e->sent,
					(size_t)e->capids * sizeof(char *));
	}
	e->ids[e->nids].type = dup_col(r, row, ID_TYPE);
	e->ids[e->nids].value = dup_col(r, row, ID_VALUE);
	e->ids[e->nids].created = atoll(PQgetvalue(r, row, ID_CREATED));
	e->nids++;
}

static void emitter_free(emitter *e)
{
	clear_profile(e);
	free(e->ids);
	free(e->sent);
	buf_free(&e->rec);
	buf_free(&e->val);
	buf_free(&e->targets);
	buf_free(&e->copy);
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
 * span FETCH batches.
 */
static int fetch_loop(emitter *e, char *err, size_t errlen)
{
	batch calls = { "FETCH " FETCH_ROWS " FROM audsync_out", NULL, 0, 0 };
	batch ids = { "FETCH " FETCH_ROWS " FROM audsync_ids_out", NULL, 0, 0 };
	int more = 0, more_ids, c, i, rc = -1;

	more_ids = next_row(&ids, e->conn, err, errlen);
	while (more_ids >= 0 &&
	       (more = next_row(&calls, e->conn, err, errlen)) > 0) {
		/* calls.r stays until the next batch of calls */
		for (i = 0; i < OUT_COLUMNS; i++)
			e->cur[i] = PQgetvalue(calls.r, calls.row, i);
		while (more_ids > 0 &&
		       (c = strcmp(PQgetvalue(ids.r, ids.row, ID_PROFILE),
				   e->cur[OUT_PROFILE])) <= 0) {
			if (c == 0)
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
	if (more_ids >= 0 && more == 0)
		rc = 0;
out:
	PQclear(calls.r);
	PQclear(ids.r);
	return rc;
}

/* Opens the cursors of the calls, looking the identifiers of a few
 * changed profiles up first (ID_LIST_MAX). */
static int open_calls(PGconn *conn, const sync_def *s, const char **p,
		      char *err, size_t errlen)
{
	PGresult *r = db_query(conn, "diff: identifiers", id_list_sql, 0, NULL,
			       err, errlen);
	const char *ids[2] = { NULL, id_types(s) };
	const char *ids_out = ids_table_sql;
	int rc = 0;

	if (!r)
		return -1;
	if (atoll(PQgetvalue(r, 0, 0)) <= atoll(ID_LIST_MAX) &&
	    !PQgetisnull(r, 0, 1)) {
		ids[0] = PQgetvalue(r, 0, 1);
		rc = db_exec(conn, "diff: identifiers", ids_sql, 2, ids, err,
			     errlen);
		ids_out = ids_list_sql;
	}
	PQclear(r);
	if (rc != 0 || db_exec(conn, "diff: identifiers", ids_out, 1, ids + 1,
			       err, errlen) != 0)
		return -1;
	return db_exec(conn, "diff: calls", calls_sql, 3, p, err, errlen);
}

/* Streams the calls and the new snapshot rows of every changed profile. */
static int stream_calls(diff_counts *out, PGconn *conn, const sync_def *s,
			long long run_id, FILE *dry_run, char *err,
			size_t errlen)
{
	const char *p[3] = { s->as_of, s->key, s->is_trait ? "t" : "f" };
	emitter e;
	int rc = -1;

	memset(&e, 0, sizeof(e));
	e.s = s;
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
	rc = 0;
out:
	emitter_free(&e);
	return rc;
}

/* Adds unchanged members that gained identifiers since the last run. The
 * mark is a parameter, not a subquery: with its value the planner sees
 * how few rows are new and looks them up by index. */
static int find_new_identifiers(PGconn *conn, const sync_def *s,
				const char *sync_id, char **snapshot, char *err,
				size_t errlen)
{
	const char *p[4] = { sync_id, id_types(s), NULL, NULL };
	PGresult *r = db_query(conn, "diff: new identifiers", mark_sql, 1, p,
			       err, errlen);
	int rc = 0;

	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
		p[2] = PQgetvalue(r, 0, 0);
		p[3] = PQgetvalue(r, 0, 1);
		*snapshot = alloc_strdup(PQgetvalue(r, 0, 2));
		rc = db_exec(conn, "diff: new identifiers", newid_sql, 4, p,
			     err, errlen);
	}
	PQclear(r);
	return rc;
}

/* Fills audsync_chg with the members that entered, exited or changed
 * (with mode DIFF_FULL, every member). */
static int member_changes(PGconn *conn, const sync_def *s, diff_mode mode,
			  const char *sync_id, diff_marks *mk, char *err,
			  size_t errlen)
{
	const char *full = s->is_trait ? full_trait_sql : full_audience_sql;
	const char *p[3] = { sync_id, s->key, mode == DIFF_FULL ? "t" : "f" };

	if (mk->whole)
		return db_exec(conn, "diff: members", full, 3, p, err, errlen);
	/* An audience's rows were diffed as they came. */
	if ((s->is_trait && db_exec(conn, "diff: members", differ_sql, 1, p,
				    err, errlen) != 0) ||
	    db_exec(conn, "diff: analyze", "ANALYZE pg_temp.audsync_d", 0, NULL,
		    err, errlen) != 0)
		return -1;
	return db_exec(conn, "diff: members", chg_sql, 2, p, err, errlen);
}

/* Finds the profiles that changed or gained identifiers, and removes
 * their snapshot rows (rewritten as the calls stream). */
static int find_changes(PGconn *conn, const sync_def *s, diff_mode mode,
			diff_marks *mk, char *err, size_t errlen)
{
	char sync_id[16];
	const char *p[1] = { sync_id };
	PGresult *r;

	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	if (db_exec(conn, "diff: settings",
		    "SET LOCAL work_mem = '" DIFF_WORK_MEM "'", 0, NULL, err,
		    errlen) != 0 ||
	    member_changes(conn, s, mode, sync_id, mk, err, errlen) != 0)
		return -1;
	if (mode == DIFF_CHANGES &&
	    find_new_identifiers(conn, s, sync_id, &mk->snapshot, err,
				 errlen) != 0)
		return -1;
	if (db_exec(conn, "diff: analyze", "ANALYZE pg_temp.audsync_chg", 0,
		    NULL, err, errlen) != 0)
		return -1;
	r = db_query(conn, "snapshot: forget", forget_sql, 1, p, err, errlen);
	if (!r)
		return -1;
	snprintf(mk->removed_n, sizeof(mk->removed_n), "%s",
		 PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int count_changes(diff_counts *out, PGconn *conn, char *err,
			 size_t errlen)
{
	PGresult *r = db_query(conn, "diff: counts", counts_sql, 0, NULL, err,
			       errlen);

	if (!r)
		return -1;
	out->entered = atoll(PQgetvalue(r, 0, 0));
	out->exited = atoll(PQgetvalue(r, 0, 1));
	out->changed = atoll(PQgetvalue(r, 0, 2));
	PQclear(r);
	return 0;
}

/* Saves the sync's state; out->members is the snapshot's new size. */
static int save_state(diff_counts *out, PGconn *conn, const sync_def *s,
		      long long run_id, const diff_marks *mk, char *err,
		      size_t errlen)
{
	char sync_id[16], run[24];
	const char *p[5] = { sync_id, s->as_of, run, mk->snapshot,
			     mk->removed_n };
	PGresult *r;

	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	snprintf(run, sizeof(run), "%lld", run_id);
	/* The log is needed back to the sync that looked longest ago; the
	 * prune reads this sync's previous state, so it goes first. */
	if (db_exec(conn, "identifier log", prune_sql, 1, p, err, errlen) != 0)
		return -1;
	r = db_query(conn, "sync state", state_sql, 5, p, err, errlen);
	if (!r)
		return -1;
	out->members = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int diff_apply(diff_counts *out, PGconn *conn, const sync_def *s, int whole,
	       long long run_id, diff_mode mode, FILE *dry_run, char *err,
	       size_t errlen)
{
	diff_marks mk;
	int rc = -1;

	memset(&mk, 0, sizeof(mk));
	mk.whole = whole;
	if (find_changes(conn, s, mode, &mk, err, errlen) == 0 &&
	    count_changes(out, conn, err, errlen) == 0 &&
	    stream_calls(out, conn, s, run_id, dry_run, err, errlen) == 0 &&
	    save_state(out, conn, s, run_id, &mk, err, errlen) == 0)
		rc = 0;
	free(mk.snapshot);
	return rc;
}
