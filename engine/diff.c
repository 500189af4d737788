/* diff.c - what changed since Mixpanel was last told, and the calls */
#include "audsync/diff.h"

#include "audsync/alloc.h"

#include "audsync/buf.h"
#include "audsync/db.h"
#include "audsync/decide.h"
#include "audsync/log.h"
#include "audsync/mp_payload.h"
#include "audsync/outbox.h"
#include "audsync/stage.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_ROWS "20000"

/*
 * Per profile first, the rows of audsync_chg (stage.h, which writes
 * them). kind is enter, exit, change, resend (a full resync's unchanged
 * member), former (a full resync's former member: its exit value again)
 * or newid (an unchanged member that gained identifiers). On a
 * first sync or a resync every member is read: one
 * hash join of the distinct stage against the snapshot's narrow member
 * rows ($3, a resync: keep the unchanged and the former members too).
 */
/* An audience's stage leaves every member's value, {key: true}, NULL
 * (evaluate.c); $2 is the key. Built once per statement, not per
 * member. */
#define AUDIENCE_VALUE "(SELECT jsonb_build_object($2::text, true))"
/* The wide columns are read only for the rows that changed; old_t is the
 * snapshot row's address, for forgetting it. */
#define FULL_SQL(stage)                                                        \
	"SELECT d.profile_id, d.old, d.new, m.since,"                          \
	"  m.targets AS old_targets, d.kind, m.ctid AS old_t, d.old_member"    \
	" FROM (SELECT coalesce(s.profile_id, m.profile_id) AS profile_id,"    \
	"  m.value AS old, s.value AS new, m.member AS old_member,"            \
	"  CASE WHEN s.profile_id IS NULL AND NOT m.member THEN 'former'"      \
	"   WHEN s.profile_id IS NULL THEN 'exit'"                             \
	"   WHEN m.profile_id IS NULL OR NOT m.member THEN 'enter'"            \
	"   WHEN m.value <> s.value THEN 'change' ELSE 'resend' END AS kind"   \
	"  FROM (SELECT profile_id, coalesce(value, " AUDIENCE_VALUE ")"       \
	"   AS value FROM (SELECT " stage " profile_id, value"                 \
	"   FROM pg_temp.audsync_stage) s0) s"                                 \
	"  FULL JOIN (SELECT profile_id, value, member"                        \
	"   FROM audsync.snapshot_members"                                     \
	"   WHERE sync_id = $1) m ON m.profile_id = s.profile_id"              \
	"  WHERE (s.profile_id IS NOT NULL OR m.member OR $3::boolean)"        \
	"   AND ($3::boolean OR NOT coalesce(m.member, false)"                 \
	"   OR m.value IS DISTINCT FROM s.value)) d"                           \
	" LEFT JOIN audsync.snapshot_members m ON d.old IS NOT NULL"           \
	"  AND m.sync_id = $1 AND m.profile_id = d.profile_id"

/* An audience's stage may name a profile twice; a trait's may not. */
static const char full_audience_sql[] = FULL_SQL("DISTINCT");
static const char full_trait_sql[] = FULL_SQL("");

/*
 * Otherwise only the rows that differ are looked at: the stage's rows the
 * snapshot does not hold and the snapshot's rows the stage does not, by
 * one hash join on the narrow checksum and profile_id (a trait's: an
 * audience's rows were joined so as they came, evaluate.c) ...
 */
#define LEDGER_ROWS                                                            \
	"SELECT ctid, profile_id, h FROM audsync.snapshot_members"             \
	" WHERE sync_id = $1 AND member"
#define DIFFER_SQL(members)                                                    \
	"SELECT s.profile_id, s.value, m.profile_id, m.ctid"                   \
	" FROM pg_temp.audsync_stage s FULL JOIN (" members ") m"              \
	"  ON m.h = s.h AND m.profile_id = s.profile_id"                       \
	" WHERE s.h IS NULL OR m.h IS NULL"
static const char differ_sql[] = DIFFER_SQL(LEDGER_ROWS);
/* An incremental run staged only the touched profiles: many are joined
 * with the members, a few looked up by the key one by one (evaluate.h). */
static const char differ_touched_sql[] =
	DIFFER_SQL(LEDGER_OF_TOUCHED(LEDGER_ROWS));
static const char differ_few_sql[] = DIFFER_SQL(LEDGER_OF_FEW(LEDGER_ROWS));

/* ... then paired per profile, the snapshot's wide columns read for
 * those few by the row's address (nothing moves them in between; the
 * key is checked all the same), or by the key where the diff read the
 * members from the key's index and has no address (an audience's,
 * evaluate.c). A profile has one ledger row per sync:
 * a new row's former-member row (an entering profile's ledger of its last
 * exit) is looked up by its own index, for the new rows only. */
static const char chg_sql[] =
	"SELECT coalesce(n.profile_id, o.profile_id) AS profile_id,"
	"  coalesce(o.value, n.x_value) AS old, n.value AS new,"
	"  coalesce(o.since, n.x_since) AS since,"
	"  coalesce(o.targets, n.x_targets) AS old_targets,"
	"  CASE WHEN o.profile_id IS NULL THEN 'enter'"
	"   WHEN n.profile_id IS NULL THEN 'exit' ELSE 'change' END AS kind,"
	"  coalesce(o.old_t, n.x_t) AS old_t,"
	"  CASE WHEN o.profile_id IS NOT NULL THEN true"
	"   WHEN n.x_p IS NOT NULL THEN false END AS old_member"
	" FROM (SELECT n0.profile_id, n0.value, x.profile_id AS x_p,"
	"  x.value AS x_value, x.since AS x_since, x.targets AS x_targets,"
	"  x.ctid AS x_t"
	"  FROM (SELECT DISTINCT new_p AS profile_id,"
	"   coalesce(new, " AUDIENCE_VALUE ") AS value"
	"   FROM pg_temp.audsync_d WHERE new_p IS NOT NULL) n0"
	"  LEFT JOIN audsync.snapshot_members x ON x.sync_id = $1"
	"   AND x.profile_id = n0.profile_id AND NOT x.member) n"
	" FULL JOIN (SELECT m.* FROM pg_temp.audsync_d d"
	"  CROSS JOIN LATERAL (SELECT m.profile_id, m.value, m.since,"
	"   m.targets, m.ctid AS old_t FROM audsync.snapshot_members m"
	"   WHERE m.ctid = d.old_t AND m.sync_id = $1"
	"   AND m.profile_id = d.old_p"
	"   UNION ALL SELECT m.profile_id, m.value, m.since, m.targets,"
	"   m.ctid FROM audsync.snapshot_members m WHERE d.old_t IS NULL"
	"   AND m.sync_id = $1 AND m.profile_id = d.old_p AND m.member) m"
	"  WHERE d.old_p IS NOT NULL) o ON o.profile_id = n.profile_id"
	/* Equal values differ only if checksums were computed apart. */
	" WHERE n.value IS DISTINCT FROM o.value";

/* Unchanged members with identifiers added since the last run: by
 * created_at, or by load time for rows backfilled with older dates; all
 * of them after a TRUNCATE of external_ids, which names no profile ($5). */
static const char newid_sql[] =
	"SELECT m.profile_id, m.value, m.value, m.since, m.targets, 'newid',"
	"  m.ctid, true"
	" FROM (SELECT profile_id FROM audsync.external_ids"
	"  WHERE id_type = ANY ($2::text[]) AND created_at > $3::timestamptz"
	"  UNION SELECT profile_id FROM audsync.identifier_log"
	"  WHERE xact >= pg_snapshot_xmin($4::pg_snapshot)"
	"  AND NOT pg_visible_in_snapshot(xact, $4::pg_snapshot)"
	"  UNION SELECT profile_id FROM audsync.snapshot_members"
	"  WHERE $5::boolean AND sync_id = $1 AND member) e"
	" JOIN audsync.snapshot_members m ON m.sync_id = $1"
	"  AND m.profile_id = e.profile_id AND m.member"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_temp.audsync_chg c"
	"  WHERE c.profile_id = e.profile_id)";

/* Since when to look for new identifiers (created_at, less a margin for
 * late commits; and the last run's snapshot for the load log), this
 * run's snapshot, taken before the look: a row it cannot see is looked
 * at again next time; and whether external_ids was truncated since the
 * last run's snapshot (sql/023_truncate_capture.sql). No row on a first
 * sync. */
static const char mark_sql[] =
	"SELECT ids_seen_upto - interval '" DIFF_IDS_MARGIN "',"
	" coalesce(ids_snapshot, pg_current_snapshot()),"
	" pg_current_snapshot(),"
	" EXISTS (SELECT 1 FROM audsync.truncate_log t"
	"  WHERE t.relation = 'external_ids'"
	"  AND t.xact >= pg_snapshot_xmin(ids_snapshot)"
	"  AND NOT pg_visible_in_snapshot(t.xact, ids_snapshot))"
	" FROM audsync.sync_state WHERE sync_id = $1";

/* The load log is pruned once per clock hour of each sync, not on every
 * run: right after a bulk load, the index of a just-pruned log is full of
 * dead entries that every further prune would walk again. */
static const char prune_sql[] =
	"DELETE FROM audsync.identifier_log WHERE xact <"
	" (SELECT min(pg_snapshot_xmin(ids_snapshot)) FROM audsync.sync_state)"
	" AND NOT EXISTS (SELECT 1 FROM audsync.sync_state WHERE sync_id = $1"
	" AND date_trunc('hour', ids_seen_upto) = date_trunc('hour', now()))";

/* The change log of incremental rules (sql/014_rule_changes.sql) is
 * needed back to the oldest snapshot a rule sync remembers, this run's
 * (not saved yet) included, the oldest transaction running when a run
 * still running began (its snapshot, not saved yet, is no older:
 * sql/015_run_horizon.sql), and the oldest running transaction. Once per
 * clock hour, as above; by TRUNCATE when nothing is still needed and no
 * load is writing (sql/016_change_log_truncate.sql). */
static const char prune_changes_sql[] =
	"SELECT audsync.prune_change_log(min(x)) FROM ("
	"  SELECT pg_snapshot_xmin(rule_snapshot) FROM audsync.sync_state"
	"  UNION ALL SELECT pg_snapshot_xmin(snap) FROM pg_temp.audsync_mark"
	"  UNION ALL SELECT min(horizon) FROM audsync.runs"
	"  WHERE status = 'running'"
	"  UNION ALL SELECT pg_snapshot_xmin(pg_current_snapshot())) m (x)"
	" HAVING NOT EXISTS (SELECT 1 FROM audsync.sync_state"
	"  WHERE sync_id = $1"
	"  AND date_trunc('hour', ids_seen_upto) = date_trunc('hour', now()))";

/* The truncate log (sql/023_truncate_capture.sql) is kept as the change
 * log is, and back to every identifier snapshot: a row a TRUNCATE. */
static const char prune_truncates_sql[] =
	"DELETE FROM audsync.truncate_log WHERE xact < (SELECT min(x) FROM ("
	"  SELECT pg_snapshot_xmin(rule_snapshot) FROM audsync.sync_state"
	"  UNION ALL SELECT pg_snapshot_xmin(ids_snapshot)"
	"  FROM audsync.sync_state"
	"  UNION ALL SELECT pg_snapshot_xmin(snap) FROM pg_temp.audsync_mark"
	"  UNION ALL SELECT min(r.horizon) FROM audsync.runs r"
	"  WHERE r.status = 'running'"
	"  UNION ALL SELECT pg_snapshot_xmin(pg_current_snapshot())) m (x))";

/* What the next run of a rule needs to run incrementally (incremental.h):
 * NULL for a definition_sql. */
static const char rule_mark_sql[] =
	"UPDATE audsync.sync_state SET (rule_snapshot, rule_digest) ="
	" (SELECT snap, digest FROM pg_temp.audsync_mark)"
	" WHERE sync_id = $1";

static const char counts_sql[] =
	"SELECT count(*) FILTER (WHERE kind = 'enter'),"
	" count(*) FILTER (WHERE kind = 'exit'),"
	" count(*) FILTER (WHERE kind = 'change')"
	" FROM pg_temp.audsync_chg";

/*
 * Only the profiles that stay members have their identifiers looked up:
 * an exit is told to the distinct_ids its ledger row names (decide.c
 * reads no identifier of a profile that is not a member).
 *
 * Up to ID_LIST_MAX of them (a normal run's few) are looked up by a list:
 * from the identity index alone, which carries created_at
 * (sql/018_identity_created.sql), or by a scan of external_ids with a
 * hashed list, which PostgreSQL may spread over several cores (a cursor
 * cannot be, and helpers cannot read a temporary table). More (a first
 * sync, a resync) are joined with the whole table, where a list would
 * cost more than it saves.
 */
#define ID_LIST_MAX "50000"
#define STAYING                                                                \
	"SELECT profile_id FROM pg_temp.audsync_chg"                           \
	" WHERE kind NOT IN ('exit', 'former')"

static const char id_list_sql[] =
	"SELECT count(*), coalesce(array_agg(profile_id)::text, '{}') FROM (" STAYING
	" LIMIT " ID_LIST_MAX " + 1) c";

static const char ids_sql[] =
	"SELECT profile_id, id_type, id_value, created_at"
	" FROM audsync.external_ids"
	" WHERE profile_id = ANY ($1::text[]) AND id_type = ANY ($2::text[])";

/*
 * The changed profiles, one row each, and their current identifiers (from
 * ids: the table, or the few looked up above), through two cursors in the
 * same order, which the engine merges (fetch_loop()): the profiles' wide
 * columns are not copied and sorted once per identifier. decide.c picks
 * targets, distinct_ids and calls from them and the profile's ledger row.
 * The order is the database's own: the identity index has it, so a first
 * sync's identifiers stream from the index as the changes are merged into
 * it, where any other order sorts them all before the first (2 s at a
 * million members). The engine never compares two profile_ids but for
 * equality: the identifiers' profiles are among the changes'.
 */
static const char calls_sql[] =
	"DECLARE audsync_out NO SCROLL CURSOR FOR"
	" SELECT profile_id, kind, old::text, new::text,"
	"  (extract(epoch FROM since) * 1000)::bigint, old_targets,"
	"  old_member, (extract(epoch FROM $1::timestamptz) * 1000)::bigint"
	" FROM pg_temp.audsync_chg ORDER BY profile_id";

#define IDS_SQL(ids)                                                           \
	"DECLARE audsync_ids_out NO SCROLL CURSOR FOR"                         \
	" SELECT e.profile_id, e.id_type, e.id_value,"                         \
	"  (extract(epoch FROM e.created_at) * 1000000)::bigint FROM " ids     \
	" e"                                                                   \
	" WHERE e.profile_id IN (" STAYING ")"                                 \
	"  AND e.id_type = ANY ($1::text[])"                                   \
	" ORDER BY e.profile_id"

static const char ids_table_sql[] = IDS_SQL("audsync.external_ids");
static const char ids_list_sql[] = IDS_SQL("pg_temp.audsync_ids");

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

/* Everyone whose snapshot row this run rewrites or removes, by the rows'
 * addresses (a TID scan, whatever the statistics say): the diff read
 * them in this transaction, under the sync's lock, so each address still
 * names the row it named. */
static const char forget_sql[] =
	"WITH gone AS (DELETE FROM audsync.snapshot_members m"
	" WHERE m.ctid = ANY (ARRAY(SELECT old_t FROM pg_temp.audsync_chg"
	"  WHERE old_t IS NOT NULL)) AND m.sync_id = $1 RETURNING m.member)"
	" SELECT count(*) FILTER (WHERE member) FROM gone";

static const char copy_sql[] =
	"COPY audsync.snapshot_members"
	" (sync_id, profile_id, value, since, targets, member) FROM STDIN";

/* The state: the snapshot's members moved by the members this run
 * removed ($5) and wrote back (every profile of the changes but the
 * exits, which stay as former members). Returns the members. */
static const char state_sql[] =
	"INSERT INTO audsync.sync_state (sync_id, last_as_of, ids_seen_upto,"
	"  last_run_id, ids_snapshot, snap_count, targets_rule)"
	" SELECT $1, $2, now(), $3,"
	"  coalesce($4::pg_snapshot, pg_current_snapshot()),"
	"  count(*) FILTER (WHERE kind NOT IN ('exit', 'former'))"
	"  - $5::bigint,"
	"  (SELECT " SYNC_TARGETS_RULE " FROM audsync.syncs s"
	"   JOIN audsync.computations c ON c.id = s.computation_id"
	"   WHERE s.id = $1)"
	" FROM pg_temp.audsync_chg"
	" ON CONFLICT (sync_id) DO UPDATE SET"
	"  targets_rule = EXCLUDED.targets_rule,"
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
	int whole;	    /* what the stage holds (evaluate.h) */
} diff_marks;

/* The identifier types a sync sends to, as a SQL array literal. */
static const char *id_types(const sync_def *s)
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
	buf_reset(&e->rec);
	mp_payload_engage(&e->rec, e->s->dest->project_token, c->did,
			  e->s->dest->ignore_time, "$set", e->val.data);
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

/* Queues the record(s) of one decided call. */
static int send_call(emitter *e, const decide_call *c, char *err, size_t errlen)
{
	int i;

	if (e->s->mode == SYNC_MODE_IDENTIFY) {
		emit_identify(e, c);
		return outbox_writer_add(e->w, c->did, e->rec.data, e->rec.len,
					 err, errlen);
	}
	if (c->raw) { /* an audience's entry (decide.h) */
		decide_key k = { e->s->key, e->true_value,
				 db_int(e->cur[OUT_AS_OF]) };

		emit_key_event(e, c->did, &k);
		return outbox_writer_add(e->w, c->did, e->rec.data, e->rec.len,
					 err, errlen);
	}
	for (i = 0; i < c->nkeys; i++) {
		emit_key_event(e, c->did, &e->d.keys[c->first_key + i]);
		if (outbox_writer_add(e->w, c->did, e->rec.data, e->rec.len,
				      err, errlen) != 0)
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

/* The ledger row of the profile: what this run leaves Mixpanel knowing. */
static void remember(emitter *e)
{
	buf *b = &e->copy;

	buf_printf(b, "%s\t", e->sync_id);
	buf_copy_text(b, e->cur[OUT_PROFILE]);
	buf_putc(b, '\t');
	buf_copy_text(b, e->d.value.data ? e->d.value.data : "{}");
	buf_putc(b, '\t');
	put_ms(b, e->d.since_ms);
	buf_putc(b, '\t');
	buf_copy_text(b, e->d.lines.data ? e->d.lines.data : "");
	buf_puts(b, e->d.member ? "\tt\n" : "\tf\n");
}

static const char *col(emitter *e, int c)
{
	return e->cur[c][0] ? e->cur[c] : NULL;
}

/* All rows of one profile are read: decide its calls and ledger row. */
static int emit_profile(emitter *e, char *err, size_t errlen)
{
	const char *kind = e->cur[OUT_KIND];
	decide_in in;
	int i;

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
	if (e->d.keep)
		remember(e);
	return 0;
}

/* Sends the ledger rows gathered so far (between two FETCHes). */
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
	buf_free(&e->rec);
	buf_free(&e->val);
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
	else if (more_ids == 0 && more == 0)
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
	if (db_int(PQgetvalue(r, 0, 0)) <= db_int(ID_LIST_MAX)) {
		ids[0] = PQgetvalue(r, 0, 1);
		rc = stage_exec(conn, "diff: identifiers", STAGE_IDS, ids_sql,
				2, ids, err, errlen);
		ids_out = ids_list_sql;
	}
	PQclear(r);
	if (rc != 0 || db_exec(conn, "diff: identifiers", ids_out, 1, ids + 1,
			       err, errlen) != 0)
		return -1;
	return db_exec(conn, "diff: calls", calls_sql, 1, p, err, errlen);
}

/* Streams the calls and the new snapshot rows of every changed profile. */
static int stream_calls(diff_counts *out, PGconn *conn, const sync_def *s,
			long long run_id, diff_mode mode, FILE *dry_run,
			char *err, size_t errlen)
{
	const char *p[1] = { s->as_of };
	emitter e;
	int rc = -1;

	memset(&e, 0, sizeof(e));
	decision_init(&e.d);
	e.true_value = json_object_new_boolean(1);
	e.s = s;
	e.full = mode == DIFF_FULL;
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
	const char *p[5] = { sync_id, id_types(s), NULL, NULL, NULL };
	PGresult *r = db_query(conn, "diff: new identifiers", mark_sql, 1, p,
			       err, errlen);
	int rc = 0;

	if (!r)
		return -1;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
		p[2] = PQgetvalue(r, 0, 0);
		p[3] = PQgetvalue(r, 0, 1);
		*snapshot = alloc_strdup(PQgetvalue(r, 0, 2));
		p[4] = PQgetvalue(r, 0, 3);
		if (p[4][0] == 't')
			log_info("identifiers compared in full: "
				 "audsync.external_ids was truncated since "
				 "the last run",
				 "computation", s->key, "destination",
				 s->dest->name);
		rc = stage_exec(conn, "diff: new identifiers",
				STAGE_MORE_CHANGES, newid_sql, 5, p, err,
				errlen);
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

	const char *differ = mk->whole == EVALUATE_FEW ? differ_few_sql
			     : mk->whole == EVALUATE_TOUCHED
				     ? differ_touched_sql
				     : differ_sql;

	if (mk->whole == EVALUATE_WHOLE)
		return stage_exec(conn, "diff: members", STAGE_CHANGES, full, 3,
				  p, err, errlen);
	/* An audience's rows were diffed as they came. */
	if ((s->is_trait && stage_exec(conn, "diff: members", STAGE_VALUES_DIFF,
				       differ, 1, p, err, errlen) != 0) ||
	    stage_analyze(conn, "diff: analyze", STAGE_TABLE_D, err, errlen) !=
		    0)
		return -1;
	return stage_exec(conn, "diff: members", STAGE_CHANGES, chg_sql, 2, p,
			  err, errlen);
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
	if (stage_analyze(conn, "diff: analyze", STAGE_TABLE_CHG, err,
			  errlen) != 0)
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
	out->entered = db_int(PQgetvalue(r, 0, 0));
	out->exited = db_int(PQgetvalue(r, 0, 1));
	out->changed = db_int(PQgetvalue(r, 0, 2));
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
	if (db_exec(conn, "identifier log", prune_sql, 1, p, err, errlen) !=
		    0 ||
	    db_exec(conn, "change log", prune_changes_sql, 1, p, err, errlen) !=
		    0 ||
	    db_exec(conn, "truncate log", prune_truncates_sql, 0, NULL, err,
		    errlen) != 0)
		return -1;
	r = db_query(conn, "sync state", state_sql, 5, p, err, errlen);
	if (!r)
		return -1;
	if (db_exec(conn, "sync state: rule", rule_mark_sql, 1, p, err,
		    errlen) != 0) {
		PQclear(r);
		return -1;
	}
	out->members = db_int(PQgetvalue(r, 0, 0));
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
	if (find_changes(conn, s, mode, &mk, err, errlen) != 0 ||
	    count_changes(out, conn, err, errlen) != 0 ||
	    stream_calls(out, conn, s, run_id, mode, dry_run, err, errlen) !=
		    0 ||
	    save_state(out, conn, s, run_id, &mk, err, errlen) != 0)
		rc = -1;
	else
		rc = 0;
	free(mk.snapshot);
	return rc;
}

int diff_reset_snapshot(PGconn *conn, int sync_id, char *err, size_t errlen)
{
	char id[16];
	const char *p[1] = { id };

	snprintf(id, sizeof(id), "%d", sync_id);
	if (db_exec(conn, "reset snapshot",
		    "DELETE FROM audsync.snapshot_members WHERE sync_id = $1",
		    1, p, err, errlen) != 0)
		return -1;
	return db_exec(conn, "reset snapshot",
		       "DELETE FROM audsync.sync_state WHERE sync_id = $1", 1,
		       p, err, errlen);
}
