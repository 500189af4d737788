/* retire.c - `audsync retire`: a computation stops, its keys unset
 *
 * Retiring is not a run: no definition is evaluated. The computation is
 * disabled, and with --unset its identify syncs queue an $unset of their
 * keys for every distinct_id the ledger says was told them, in the same
 * transaction; the caller then delivers as after a run. It holds the
 * lock of every sync of the computation meanwhile, as a run does, so no
 * run in progress commits after it.
 */
#include "audsync/retire.h"

#include "audsync/buf.h"
#include "audsync/config.h"
#include "audsync/db.h"
#include "audsync/diff.h"
#include "audsync/errbuf.h"
#include "audsync/mp_payload.h"
#include "audsync/log.h"
#include "audsync/outbox.h"
#include "audsync/sync.h"

#include <stdio.h>

/*
 * $unset of the keys a sync set, to every distinct_id of its ledger:
 * members, former members, and distinct_ids no longer targets (a line's
 * sixth field holds what such a one was told, decide.h). A sync that ran
 * before the ledger (013_told_before_ledger.sql) may have told others,
 * whose rows went when they exited: every valid user_id, and anonymous id
 * when the computation includes them, gets the sync's keys ($2 for an
 * audience, else every key of its ledger) too.
 */
static const char unset_sql[] =
	"DECLARE audsync_unset NO SCROLL CURSOR FOR"
	" WITH told AS (SELECT DISTINCT split_part(t, E'\\t', 3) AS did,"
	"  (SELECT jsonb_agg(k ORDER BY k) FROM (SELECT"
	"  jsonb_object_keys(m.value) UNION SELECT jsonb_object_keys("
	"  nullif(split_part(t, E'\\t', 6), '')::jsonb)) ks (k))::text AS keys"
	" FROM audsync.snapshot_members m,"
	"  unnest(string_to_array(m.targets, E'\\n')) t"
	" WHERE m.sync_id = $1 AND m.targets <> ''),"
	" sync_keys AS (SELECT coalesce($2::jsonb, (SELECT"
	"  jsonb_agg(DISTINCT k ORDER BY k) FROM told,"
	"  jsonb_array_elements_text(told.keys::jsonb) k))::text AS keys)"
	" SELECT did, keys FROM told"
	" UNION ALL SELECT DISTINCT e.id_value, sk.keys"
	" FROM audsync.external_ids e, sync_keys sk"
	" WHERE sk.keys IS NOT NULL AND (SELECT told_before_ledger"
	"  FROM audsync.sync_state WHERE sync_id = $1)"
	"  AND (e.id_type = 'user_id' OR ($3::boolean"
	"  AND e.id_type = 'anonymous_id'))"
	"  AND NOT audsync.invalid_distinct_id(e.id_value)"
	"  AND e.id_value !~ E'[\\t\\n\\r]'"
	"  AND NOT EXISTS (SELECT 1 FROM told t WHERE t.did = e.id_value)";

static int queue_unsets(long long *calls, PGconn *conn, const sync_def *s,
			char *err, size_t errlen)
{
	char id[16];
	buf rec, keys;
	const char *p[3];
	outbox_writer *w;
	PGresult *r = NULL;
	int i, n, rc = -1;

	snprintf(id, sizeof(id), "%d", s->id);
	buf_init(&rec);
	buf_init(&keys);
	buf_putc(&keys, '[');
	buf_json_str(&keys, s->key);
	buf_putc(&keys, ']');
	p[0] = id;
	p[1] = s->is_trait ? NULL : keys.data;
	p[2] = s->include_anonymous ? "t" : "f";
	w = outbox_writer_open(conn, s->dest->id, s->dest->name, s->id, 0,
			       MP_EP_ENGAGE, NULL);
	if (db_exec(conn, "retire", unset_sql, 3, p, err, errlen) != 0)
		goto out;
	do {
		PQclear(r);
		r = db_query(conn, "retire", "FETCH 20000 FROM audsync_unset",
			     0, NULL, err, errlen);
		if (!r)
			goto out;
		n = PQntuples(r);
		for (i = 0; i < n; i++) {
			buf_reset(&rec);
			mp_payload_engage(&rec, s->dest->project_token,
					  PQgetvalue(r, i, 0),
					  s->dest->ignore_time, "$unset",
					  PQgetvalue(r, i, 1));
			if (outbox_writer_add(w, PQgetvalue(r, i, 0), rec.data,
					      rec.len, err, errlen) != 0)
				goto out;
		}
	} while (n > 0);
	if (db_exec(conn, "retire", "CLOSE audsync_unset", 0, NULL, err,
		    errlen) != 0 ||
	    outbox_writer_finish(w, calls, err, errlen) != 0 ||
	    diff_reset_snapshot(conn, s->id, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	PQclear(r);
	buf_free(&rec);
	buf_free(&keys);
	outbox_writer_close(w);
	return rc;
}

static int retire_tx(PGconn *conn, const sync_list *l, const char *key,
		     int unset, char *err, size_t errlen)
{
	const char *p[1] = { key };
	int i;

	for (i = 0; unset && i < l->n; i++) {
		const sync_def *s = &l->items[i];
		long long calls = 0;
		char why[AUDSYNC_ERR_LEN];

		if (s->mode != SYNC_MODE_IDENTIFY)
			continue; /* events stay: they are history */
		if (config_sync_problem(s, why, sizeof(why))) {
			snprintf(err, errlen, "%s", why);
			return -1;
		}
		if (queue_unsets(&calls, conn, s, err, errlen) != 0)
			return -1;
	}
	/* Retired, its columns are free for another trait to set
	 * (sql/022_computation_keys.sql). */
	if (db_exec(conn, "retire",
		    "DELETE FROM audsync.computation_keys WHERE computation_id"
		    " = (SELECT id FROM audsync.computations WHERE key = $1)",
		    1, p, err, errlen) != 0)
		return -1;
	return db_exec(conn, "retire",
		       "UPDATE audsync.computations SET enabled = false"
		       " WHERE key = $1",
		       1, p, err, errlen);
}

/* Frees the locks of the first n syncs of l (n < 0: none). */
static void unlock_syncs(PGconn *conn, const sync_list *l, int n)
{
	char err[AUDSYNC_ERR_LEN];
	int i;

	for (i = 0; i < n; i++)
		if (sync_lock(conn, l->items[i].id, SYNC_UNLOCK, err,
			      sizeof(err)) < 0)
			log_warn("retire: a sync's lock not freed", "error",
				 err);
}

/*
 * Takes the lock of every sync of l, waiting for a run in progress: a
 * run that commits after the retire would tell Mixpanel the key again
 * (and write ledger rows, and claim trait columns) for a computation
 * that is gone. Once a run holds its lock it sees the computation
 * disabled (sync.c). Returns how many it took (the first n of l, to
 * free with unlock_syncs()), or -1 with err set and none held.
 */
static int lock_syncs(PGconn *conn, const sync_list *l, char *err,
		      size_t errlen)
{
	int i, got = 1;

	for (i = 0; i < l->n && got > 0; i++) {
		got = sync_lock(conn, l->items[i].id, SYNC_LOCK_TRY, err,
				errlen);
		if (got != 0)
			continue;
		log_info("retire: waiting for the run in progress",
			 "computation", l->items[i].key, "destination",
			 l->items[i].dest->name);
		got = sync_lock(conn, l->items[i].id, SYNC_LOCK_WAIT, err,
				errlen);
	}
	if (got > 0)
		return i;
	unlock_syncs(conn, l, i - 1);
	return -1;
}

int retire_computation(PGconn *conn, const char *key, int unset, char *err,
		       size_t errlen)
{
	sync_filter f = { key, NULL, NULL };
	const char *p[1] = { key };
	sync_list l;
	PGresult *r;
	int found, locked, rc = -1;

	r = db_query(conn, "retire",
		     "SELECT 1 FROM audsync.computations"
		     " WHERE key = $1",
		     1, p, err, errlen);
	if (!r)
		return -1;
	found = PQntuples(r);
	PQclear(r);
	if (!found) {
		snprintf(err, errlen, "no computation has the key %s", key);
		return -1;
	}
	if (config_load(&l, conn, &f, err, errlen) != 0)
		return -1;
	locked = lock_syncs(conn, &l, err, errlen);
	if (locked >= 0 &&
	    db_exec(conn, "retire", "BEGIN", 0, NULL, err, errlen) == 0 &&
	    retire_tx(conn, &l, key, unset, err, errlen) == 0 &&
	    db_exec(conn, "retire", "COMMIT", 0, NULL, err, errlen) == 0)
		rc = 0;
	else if (locked >= 0)
		PQclear(PQexec(conn, "ROLLBACK"));
	unlock_syncs(conn, &l, locked);
	config_free(&l);
	return rc;
}
