/* diff.c - what changed since Mixpanel was last told, and the calls */
#include "audsync/diff.h"

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
 * Per profile first: one hash join of the stage against the snapshot's
 * narrow member rows finds who entered, exited or changed. kind is
 * enter, exit, change, resend (a full resync's unchanged member) or
 * newid (an unchanged member that gained identifiers).
 */
static const char chg_sql[] =
	"CREATE TEMP TABLE audsync_chg ON COMMIT DROP AS"
	" SELECT coalesce(s.profile_id, m.profile_id) AS profile_id,"
	"  m.value AS old, s.value AS new, m.since, m.targets AS old_targets,"
	"  CASE WHEN m.profile_id IS NULL THEN 'enter'"
	"   WHEN s.profile_id IS NULL THEN 'exit'"
	"   WHEN m.value <> s.value THEN 'change' ELSE 'resend' END AS kind"
	" FROM pg_temp.audsync_stage s FULL JOIN (SELECT profile_id, value,"
	"  since, targets FROM audsync.snapshot_members WHERE sync_id = $1) m"
	"  ON m.profile_id = s.profile_id"
	" WHERE $2::boolean OR m.value IS DISTINCT FROM s.value";

/* Unchanged members with identifiers added since the last run. */
static const char newid_sql[] =
	"INSERT INTO audsync_chg"
	" SELECT m.profile_id, m.value, m.value, m.since, m.targets, 'newid'"
	" FROM (SELECT DISTINCT profile_id FROM audsync.external_ids"
	"  WHERE id_type = ANY ($2::text[]) AND created_at > (SELECT"
	"  ids_seen_upto - interval '" DIFF_IDS_MARGIN "'"
	"  FROM audsync.sync_state WHERE sync_id = $1)) e"
	" JOIN audsync.snapshot_members m ON m.sync_id = $1"
	"  AND m.profile_id = e.profile_id"
	" WHERE NOT EXISTS (SELECT 1 FROM audsync_chg c"
	"  WHERE c.profile_id = e.profile_id)";

/*
 * Per identifier, only for those profiles: their current targets. The
 * distinct_id is the newest valid user_id; without one, anonymous ids
 * (when the computation includes anonymous users) stand for themselves
 * and the newest stands for the rest. distinct_id NULL: skipped. The
 * %s is the id_sync rank: 1 for all, else first/last per type.
 */
static const char tgt_sql[] =
	"CREATE TEMP TABLE audsync_tgt ON COMMIT DROP AS"
	" WITH ids AS ("
	"  SELECT e.profile_id, e.id_type, e.id_value, e.created_at,"
	"   NOT audsync.invalid_distinct_id(e.id_value) AS valid"
	"  FROM audsync_chg c JOIN audsync.external_ids e"
	"   ON e.profile_id = c.profile_id"
	"  WHERE c.kind <> 'exit' AND e.id_type = ANY ($1::text[])),"
	" did AS (SELECT DISTINCT ON (profile_id) profile_id, id_type,"
	"   id_value AS did FROM ids WHERE valid"
	"   AND id_type IN ('user_id', 'anonymous_id')"
	"  ORDER BY profile_id, id_type = 'user_id' DESC, created_at DESC,"
	"   id_value DESC),"
	" ranked AS (SELECT i.*, %s AS rn FROM ids i)"
	" SELECT r.profile_id, r.id_type, r.id_value, r.created_at,"
	"  CASE WHEN NOT r.valid THEN NULL"
	"   WHEN d.id_type = 'user_id' THEN d.did"
	"   WHEN r.id_type = 'anonymous_id' THEN r.id_value"
	"   ELSE d.did END AS distinct_id"
	" FROM ranked r LEFT JOIN did d USING (profile_id)"
	" WHERE r.rn = 1 OR NOT r.valid";

static const char rank_first[] =
	"row_number() OVER (PARTITION BY i.profile_id, i.id_type, i.valid"
	" ORDER BY i.created_at, i.id_value)";
static const char rank_last[] =
	"row_number() OVER (PARTITION BY i.profile_id, i.id_type, i.valid"
	" ORDER BY i.created_at DESC, i.id_value DESC)";

static const char counts_sql[] =
	"SELECT count(*) FILTER (WHERE kind = 'enter'),"
	" count(*) FILTER (WHERE kind = 'exit'),"
	" count(*) FILTER (WHERE kind = 'change'),"
	" (SELECT count(*) FROM audsync_tgt WHERE distinct_id IS NULL)"
	" + count(*) FILTER (WHERE kind <> 'exit' AND NOT EXISTS (SELECT 1"
	"  FROM audsync_tgt t WHERE t.profile_id = c.profile_id))"
	" FROM audsync_chg c";

/*
 * The calls, one row per target, a profile's targets in identifier
 * created_at order. Exits go to the identifiers synced before that still
 * belong to the profile, at the distinct_id they were sent to. The value
 * is {key: bool} for an audience; for a trait the whole value, or on a
 * change or exit only the keys that changed (null when gone). time: the
 * transition's as-of time, or for a re-send the original one.
 */
static const char out_sql[] =
	"DECLARE audsync_out NO SCROLL CURSOR FOR"
	" SELECT x.profile_id, x.kind, x.id_type, x.id_value, x.distinct_id,"
	"  (CASE WHEN NOT $3::boolean"
	"    THEN jsonb_build_object($2::text, x.kind <> 'exit')"
	"   WHEN x.kind IN ('change', 'exit') THEN (SELECT"
	"    jsonb_object_agg(k, x.new -> k) FROM (SELECT jsonb_object_keys("
	"    x.new) UNION SELECT jsonb_object_keys(x.old)) AS ks (k)"
	"    WHERE x.new -> k IS DISTINCT FROM x.old -> k)"
	"   ELSE x.new END)::text,"
	"  (extract(epoch FROM CASE WHEN x.kind IN ('resend', 'newid')"
	"   THEN x.since ELSE $1::timestamptz END) * 1000)::bigint"
	" FROM ("
	"  SELECT c.profile_id, c.kind, c.old, c.new, c.since, t.id_type,"
	"   t.id_value, t.distinct_id, t.created_at"
	"  FROM audsync_chg c JOIN audsync_tgt t"
	"   ON t.profile_id = c.profile_id"
	"  WHERE t.distinct_id IS NOT NULL AND (c.kind <> 'newid'"
	"   OR NOT c.old_targets @> jsonb_build_array(jsonb_build_object("
	"   't', t.id_type, 'v', t.id_value, 'd', t.distinct_id)))"
	"  UNION ALL"
	"  SELECT c.profile_id, c.kind, c.old, c.new, c.since, o.t, o.v, o.d,"
	"   e.created_at"
	"  FROM audsync_chg c CROSS JOIN LATERAL jsonb_to_recordset("
	"   c.old_targets) AS o (t text, v text, d text)"
	"  JOIN audsync.external_ids e ON e.profile_id = c.profile_id"
	"   AND e.id_type = o.t AND e.id_value = o.v"
	"  WHERE c.kind = 'exit') x"
	" ORDER BY x.profile_id, x.created_at, x.id_type, x.id_value";

static const char forget_sql[] =
	"DELETE FROM audsync.snapshot_members m USING audsync_chg c"
	" WHERE m.sync_id = $1 AND m.profile_id = c.profile_id"
	" AND c.kind = 'exit'";

static const char remember_sql[] =
	"INSERT INTO audsync.snapshot_members"
	" (sync_id, profile_id, value, since, targets)"
	" SELECT $1, c.profile_id, c.new,"
	"  CASE WHEN c.kind IN ('enter', 'change') THEN $2::timestamptz"
	"   ELSE c.since END, coalesce(g.targets, '[]')"
	" FROM audsync_chg c LEFT JOIN (SELECT profile_id,"
	"  jsonb_agg(jsonb_build_object('t', id_type, 'v', id_value,"
	"  'd', distinct_id) ORDER BY created_at, id_type, id_value)"
	"  AS targets FROM audsync_tgt WHERE distinct_id IS NOT NULL"
	"  GROUP BY profile_id) g USING (profile_id)"
	" WHERE c.kind <> 'exit'"
	" ON CONFLICT (sync_id, profile_id) DO UPDATE SET"
	"  value = EXCLUDED.value, since = EXCLUDED.since,"
	"  targets = EXCLUDED.targets";

static const char state_sql[] =
	"INSERT INTO audsync.sync_state"
	" (sync_id, last_as_of, ids_seen_upto, last_run_id)"
	" VALUES ($1, $2, now(), $3)"
	" ON CONFLICT (sync_id) DO UPDATE SET"
	"  last_as_of = EXCLUDED.last_as_of,"
	"  ids_seen_upto = EXCLUDED.ids_seen_upto,"
	"  last_run_id = EXCLUDED.last_run_id";

/* What turns rows into records: the sync, its writer, scratch space. */
typedef struct emitter {
	const sync_def *s;
	outbox_writer *w;
	char sync_id[16];
	buf rec, val;
	char *profile;        /* the profile of the rows being read */
	char **sent;          /* track mode: distinct_ids it had an event */
	int nsent, capsent;
} emitter;

/* One /engage $set per target; an email target sets $email too, and
 * since a profile's targets come in created_at order, its newest email
 * is the address of record. */
static void emit_identify(emitter *e, const char *id_type,
			  const char *id_value, const char *distinct_id,
			  const char *value)
{
	const char *set = value;

	if (strcmp(id_type, "email") == 0) {
		const char *end = strrchr(value, '}');

		buf_reset(&e->val);
		buf_append(&e->val, value, (size_t)(end - value));
		buf_puts(&e->val, end - value > 1 ? ", \"$email\": "
						  : "\"$email\": ");
		buf_json_str(&e->val, id_value);
		buf_putc(&e->val, '}');
		set = e->val.data;
	}
	buf_reset(&e->rec);
	mp_payload_engage(&e->rec, e->s->dest->project_token, distinct_id,
			  e->s->dest->ignore_time, "$set", set);
}

/* Appends "name": value (value is JSON text) to an object being built. */
static void put_member(buf *b, const char *name, const char *value)
{
	if (b->len > 1)
		buf_putc(b, ',');
	buf_json_str(b, name);
	buf_putc(b, ':');
	buf_puts(b, value);
}

static void emit_event(emitter *e, const char *event, const char *transition,
		       const char *distinct_id, const char *time_ms,
		       const char *key, const char *props)
{
	const char *parts[5] = { e->sync_id, distinct_id, transition, time_ms,
				 key };
	char insert_id[MP_INSERT_ID_LEN + 1];

	mp_insert_id(insert_id, parts, 5);
	mp_payload_event(&e->rec, event, distinct_id, atoll(time_ms),
			 insert_id, props);
}

/* Audience Entered / Exited, with the audience's key and name. */
static void emit_audience_event(emitter *e, int exit, const char *distinct_id,
				const char *time_ms)
{
	const dest_def *d = e->s->dest;

	buf_reset(&e->val);
	buf_putc(&e->val, '{');
	buf_reset(&e->rec);
	buf_json_str(&e->rec, e->s->key);
	put_member(&e->val, "audience_key", e->rec.data);
	put_member(&e->val, e->s->key, exit ? "false" : "true");
	buf_reset(&e->rec);
	buf_json_str(&e->rec, e->s->name);
	put_member(&e->val, "audience_name", e->rec.data);
	if (!d->geolocate)
		put_member(&e->val, "ip", "0");
	buf_putc(&e->val, '}');
	buf_reset(&e->rec);
	emit_event(e, exit ? d->exit_event : d->enter_event,
		   exit ? "exit" : "enter", distinct_id, time_ms, e->s->key,
		   e->val.data);
}

/* One trait event per key in value (a JSON object). */
static int emit_trait_events(emitter *e, const char *distinct_id,
			     const char *time_ms, const char *value,
			     buf *out_records)
{
	json_object *o = json_tokener_parse(value);
	buf key;

	if (!o)
		return -1;
	buf_init(&key);
	json_object_object_foreach(o, k, v) {
		buf_reset(&key);
		buf_json_str(&key, k);
		buf_reset(&e->val);
		buf_putc(&e->val, '{');
		put_member(&e->val, "trait_key", key.data);
		put_member(&e->val, k, v ? json_object_to_json_string_ext(
						   v, JSON_C_TO_STRING_PLAIN)
					 : "null");
		if (!e->s->dest->geolocate)
			put_member(&e->val, "ip", "0");
		buf_putc(&e->val, '}');
		buf_reset(&e->rec);
		emit_event(e, e->s->dest->trait_event, "trait", distinct_id,
			   time_ms, k, e->val.data);
		if (out_records->len)
			buf_putc(out_records, '\n');
		buf_append(out_records, e->rec.data, e->rec.len);
	}
	buf_free(&key);
	json_object_put(o);
	return 0;
}

/* Track mode sends one event per distinct_id of a profile: 1 if this
 * row's distinct_id already had one. */
static int already_sent(emitter *e, const char *profile,
			const char *distinct_id)
{
	int i;

	if (!e->profile || strcmp(e->profile, profile) != 0) {
		for (i = 0; i < e->nsent; i++)
			free(e->sent[i]);
		e->nsent = 0;
		free(e->profile);
		e->profile = strdup(profile);
	}
	for (i = 0; i < e->nsent; i++)
		if (strcmp(e->sent[i], distinct_id) == 0)
			return 1;
	if (e->nsent == e->capsent) {
		e->capsent = e->capsent ? e->capsent * 2 : 8;
		e->sent = realloc(e->sent, (size_t)e->capsent * sizeof(char *));
		if (!e->sent)
			abort();
	}
	e->sent[e->nsent++] = strdup(distinct_id);
	return 0;
}

/* Turns one cursor row into its records and queues them. */
static int emit_row(emitter *e, const PGresult *r, int row, char *err,
		    size_t errlen)
{
	const char *profile = PQgetvalue(r, row, 0);
	const char *kind = PQgetvalue(r, row, 1);
	const char *id_type = PQgetvalue(r, row, 2);
	const char *id_value = PQgetvalue(r, row, 3);
	const char *did = PQgetvalue(r, row, 4);
	const char *value = PQgetvalue(r, row, 5);
	const char *time_ms = PQgetvalue(r, row, 6);
	buf many;
	int rc;

	if (e->s->mode == SYNC_MODE_IDENTIFY) {
		emit_identify(e, id_type, id_value, did, value);
		return outbox_writer_add(e->w, did, e->rec.data, e->rec.len,
					 err, errlen);
	}
	if (already_sent(e, profile, did))
		return 0;
	if (!e->s->is_trait) {
		emit_audience_event(e, strcmp(kind, "exit") == 0, did, time_ms);
		return outbox_writer_add(e->w, did, e->rec.data, e->rec.len,
					 err, errlen);
	}
	buf_init(&many);
	rc = emit_trait_events(e, did, time_ms, value, &many);
	if (rc == 0 && many.len) {
		char *line, *save = NULL;

		for (line = strtok_r(many.data, "\n", &save); line && rc == 0;
		     line = strtok_r(NULL, "\n", &save))
			rc = outbox_writer_add(e->w, did, line, strlen(line),
					       err, errlen);
	} else if (rc != 0) {
		snprintf(err, errlen, "computation %s: unreadable value %s",
			 e->s->key, value);
	}
	buf_free(&many);
	return rc;
}

static void emitter_free(emitter *e)
{
	int i;

	for (i = 0; i < e->nsent; i++)
		free(e->sent[i]);
	free(e->sent);
	free(e->profile);
	buf_free(&e->rec);
	buf_free(&e->val);
	outbox_writer_close(e->w);
}

/* Reads the calls through the cursor and queues them. */
static int stream_calls(diff_counts *out, PGconn *conn, const sync_def *s,
			long long run_id, FILE *dry_run, char *err,
			size_t errlen)
{
	const char *p[3] = { s->as_of, s->key, s->is_trait ? "t" : "f" };
	emitter e;
	PGresult *r = NULL;
	int i, n, rc = -1;

	memset(&e, 0, sizeof(e));
	e.s = s;
	snprintf(e.sync_id, sizeof(e.sync_id), "%d", s->id);
	e.w = outbox_writer_open(conn, s->dest->id, s->dest->name, s->id,
				 run_id,
				 s->mode == SYNC_MODE_TRACK ? MP_EP_IMPORT
							    : MP_EP_ENGAGE,
				 dry_run);
	if (db_exec(conn, "diff: calls", out_sql, 3, p, err, errlen) != 0)
		goto out;
	do {
		PQclear(r);
		r = db_query(conn, "diff: read calls",
			     "FETCH " FETCH_ROWS " FROM audsync_out", 0, NULL,
			     err, errlen);
		if (!r)
			goto out;
		n = PQntuples(r);
		for (i = 0; i < n; i++)
			if (emit_row(&e, r, i, err, errlen) != 0)
				goto out;
	} while (n > 0);
	if (db_exec(conn, "diff: calls", "CLOSE audsync_out", 0, NULL, err,
		    errlen) != 0 ||
	    outbox_writer_finish(e.w, &out->calls, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	PQclear(r);
	emitter_free(&e);
	return rc;
}

/* Finds changed profiles and their targets into temporary tables. */
static int find_changes(PGconn *conn, const sync_def *s, diff_mode mode,
			char *err, size_t errlen)
{
	const char *types = s->include_anonymous
				    ? "{user_id,email,anonymous_id}"
				    : "{user_id,email}";
	char sync_id[16];
	const char *p[2] = { sync_id, mode == DIFF_FULL ? "t" : "f" };
	char sql[sizeof(tgt_sql) + sizeof(rank_last)];
	const char *pt[1] = { types };

	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	snprintf(sql, sizeof(sql), tgt_sql,
		 s->id_sync == ID_SYNC_FIRST  ? rank_first
		 : s->id_sync == ID_SYNC_LAST ? rank_last
					      : "1");
	if (db_exec(conn, "diff: settings", "SET LOCAL work_mem = '256MB'", 0,
		    NULL, err, errlen) != 0 ||
	    db_exec(conn, "diff: members", chg_sql, 2, p, err, errlen) != 0)
		return -1;
	p[1] = types;
	if (mode == DIFF_CHANGES &&
	    db_exec(conn, "diff: new identifiers", newid_sql, 2, p, err,
		    errlen) != 0)
		return -1;
	if (db_exec(conn, "diff: analyze", "ANALYZE pg_temp.audsync_chg", 0,
		    NULL, err, errlen) != 0 ||
	    db_exec(conn, "diff: targets", sql, 1, pt, err, errlen) != 0 ||
	    db_exec(conn, "diff: analyze", "ANALYZE pg_temp.audsync_tgt", 0,
		    NULL, err, errlen) != 0)
		return -1;
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
	out->skipped = atoll(PQgetvalue(r, 0, 3));
	PQclear(r);
	return 0;
}

/* The snapshot becomes what this run told Mixpanel. */
static int advance_snapshot(PGconn *conn, const sync_def *s,
			    long long run_id, char *err, size_t errlen)
{
	char sync_id[16], run[24];
	const char *p[3] = { sync_id, s->as_of, run };

	snprintf(sync_id, sizeof(sync_id), "%d", s->id);
	snprintf(run, sizeof(run), "%lld", run_id);
	if (db_exec(conn, "snapshot: exits", forget_sql, 1, p, err,
		    errlen) != 0 ||
	    db_exec(conn, "snapshot: members", remember_sql, 2, p, err,
		    errlen) != 0 ||
	    db_exec(conn, "sync state", state_sql, 3, p, err, errlen) != 0)
		return -1;
	return 0;
}

int diff_apply(diff_counts *out, PGconn *conn, const sync_def *s,
	       long long run_id, diff_mode mode, FILE *dry_run, char *err,
	       size_t errlen)
{
	if (find_changes(conn, s, mode, err, errlen) != 0 ||
	    count_changes(out, conn, err, errlen) != 0 ||
	    stream_calls(out, conn, s, run_id, dry_run, err, errlen) != 0 ||
	    advance_snapshot(conn, s, run_id, err, errlen) != 0)
		return -1;
	return 0;
}
