/* retry_failed.c - `audsync retry-failed`: dead letters back to the outbox
 *
 * Records Mixpanel refused for good wait in audsync.dead_letters until an
 * operator has fixed the cause; this puts them back in the outbox, as the
 * ledger says they should read today, and the caller delivers them.
 */
#include "audsync/retry_failed.h"

#include "audsync/db.h"

/*
 * A letter goes back only while its sync still syncs: a letter of a sync
 * deleted or disabled, or of a retired computation, would set again what
 * retire --unset took off, where no ledger can reach it any more. Its
 * $unset letters (only retire writes $unset) go: they finish the
 * retirement. Forwarded messages belong to no sync and go.
 */
#define LETTER_OF_DEST                                                         \
	" ($1::text IS NULL OR dl.destination_id = (SELECT"                    \
	" id FROM audsync.destinations WHERE name = $1))"
#define LETTER_LIVE                                                            \
	" (dl.sync_id IS NULL OR dl.record::jsonb ? '$unset'"                  \
	" OR EXISTS (SELECT 1 FROM audsync.syncs s"                            \
	"  JOIN audsync.computations c ON c.id = s.computation_id"             \
	"  WHERE s.id = dl.sync_id AND s.enabled AND c.enabled))"

/*
 * Dead letters go back to the outbox re-derived from the ledger: an
 * update's $set takes what the ledger says its distinct_id was told
 * since (a newer false over a stale true), and an event whose value the
 * ledger has since superseded is dropped (a newer event told the newer
 * value). A letter whose distinct_id the ledger does not know goes as it
 * was. The ledger's told value of a line: its sixth field's values, else
 * the row's value (decide.h).
 */
static const char requeue_sql[] =
	"WITH moved AS (DELETE FROM audsync.dead_letters dl"
	" WHERE" LETTER_OF_DEST " AND" LETTER_LIVE
	" RETURNING *, record::jsonb AS rec),"
	" told AS (SELECT DISTINCT ON (m.sync_id, split_part(t, E'\\t', 3))"
	"  m.sync_id, split_part(t, E'\\t', 3) AS did,"
	"  CASE WHEN split_part(t, E'\\t', 6) <> '' THEN (SELECT"
	"   jsonb_object_agg(k, v -> 0) FROM jsonb_each("
	"   split_part(t, E'\\t', 6)::jsonb) e (k, v)) ELSE m.value END AS v"
	"  FROM audsync.snapshot_members m,"
	"   unnest(string_to_array(m.targets, E'\\n')) t"
	"  WHERE m.sync_id IN (SELECT sync_id FROM moved)),"
	" letters AS (SELECT mv.*, t.v AS told,"
	"  coalesce(mv.rec -> 'properties', '{}') AS props"
	"  FROM moved mv LEFT JOIN told t ON t.sync_id = mv.sync_id"
	"  AND t.did = coalesce(mv.rec ->> '$distinct_id',"
	"   mv.rec -> 'properties' ->> 'distinct_id')),"
	" redone AS (SELECT id, destination_id, sync_id, run_id, lane,"
	"  endpoint, CASE WHEN told IS NULL OR NOT rec ? '$set'"
	"   OR newset = rec -> '$set' THEN record"
	/* the record's own text up to its $set, as the client reads it */
	"   ELSE left(record, strpos(record, '\"$set\":') + 6)"
	"    || newset::text || '}' END AS record"
	"  FROM (SELECT *, (SELECT jsonb_object_agg(k,"
	"    CASE WHEN told ? k THEN told -> k ELSE v END)"
	"    FROM jsonb_each(rec -> '$set') e (k, v)) AS newset"
	"   FROM letters) l"
	"  WHERE told IS NULL OR NOT (told ? coalesce("
	"   props ->> 'trait_key', props ->> 'audience_key', ''))"
	"  OR told -> coalesce(props ->> 'trait_key', props ->> 'audience_key')"
	"   = props -> coalesce(props ->> 'trait_key',"
	"   props ->> 'audience_key')),"
	" pages AS ("
	" INSERT INTO audsync.outbox (destination_id, sync_id,"
	" run_id, lane, endpoint, n, records)"
	" SELECT destination_id, sync_id, max(run_id), lane,"
	" endpoint, count(*), string_agg(record, E'\\n'"
	" ORDER BY id) FROM redone"
	" GROUP BY destination_id, sync_id, lane, endpoint"
	" RETURNING n) SELECT coalesce(sum(n), 0) FROM pages";

static const char left_sql[] = "SELECT count(*) FROM audsync.dead_letters dl"
			       " WHERE" LETTER_OF_DEST " AND NOT" LETTER_LIVE;

int retry_failed_requeue(long long *out, long long *left, PGconn *conn,
			 const char *destination, char *err, size_t errlen)
{
	const char *p[1] = { destination };
	PGresult *r;
	long long n;

	r = db_query(conn, "retry failed", requeue_sql, 1, p, err, errlen);
	if (!r)
		return -1;
	n = db_int(PQgetvalue(r, 0, 0));
	PQclear(r);
	r = db_query(conn, "retry failed", left_sql, 1, p, err, errlen);
	if (!r)
		return -1;
	*left = db_int(PQgetvalue(r, 0, 0));
	*out = n;
	PQclear(r);
	return 0;
}
