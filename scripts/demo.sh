#!/bin/sh
# demo.sh - audsync end to end on sample data, with nothing to set up.
#
#   sh scripts/demo.sh         (make demo)  start a PostgreSQL in .demo/pg
#                              (or reuse it), load scripts/demo-data.sql,
#                              sync everything to a destination that prints
#                              the Mixpanel requests, add a few events and
#                              sync again: only the difference is sent
#   sh scripts/demo.sh clean   (make demo-clean)  stop it and remove .demo
#
# The cluster stays running between the two so that you can look at the
# database; `make demo-clean` removes it. AUDSYNC_BIN overrides ./audsync.
set -u

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
demo=$root/.demo
PG_SH_LIB=1 . "$root/tests/pg.sh"

die() {
	echo "demo: $*" >&2
	exit 1
}

if [ "${1:-}" = clean ]; then
	pg_stop "$demo/pg"
	rm -rf "$demo"
	echo "demo: stopped the demo PostgreSQL and removed .demo"
	exit 0
fi
if [ $# -ne 0 ]; then
	echo "usage: sh scripts/demo.sh [clean]" >&2
	exit 2
fi

bin=${AUDSYNC_BIN:-$root/audsync}
[ -x "$bin" ] || die "$bin is not built yet: run make"

mkdir -p "$demo" || exit 1
pgenv=$(pg_start "$demo/pg") || die "could not start PostgreSQL in .demo/pg"
eval "$pgenv"
unset AUDSYNC_DB PGHOSTADDR PGSERVICE PGSERVICEFILE
db="host='$PGHOST' port=$PGPORT user=postgres dbname=audsync_demo"

# psql on the demo database, stopping at the first error.
sql() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}

hint() {
	echo
	echo "Look around:  psql \"$db\""
	echo "              e.g. SELECT * FROM audsync.runs ORDER BY id;"
	echo "A rule's SQL:  $bin --db \"$db\" explain browsing_not_buying"
	echo "Clean up:     make demo-clean"
}

# One `audsync run --all`, the Nth: the requests (one JSON line each, from
# the 'stdout:' destination) go to .demo/requests-N.jsonl, the log to
# .demo/run-N.log; what is shown is a summary per computation and three
# sample requests.
sync_all() {
	n=$1
	out="$demo/requests-$n.jsonl"
	log="$demo/run-$n.log"
	first=$(sql -At -c "SELECT coalesce(max(id), 0) FROM audsync.runs") ||
		exit 1
	"$bin" --db "$db" run --all >"$out" 2>"$log"
	rc=$?
	if grep -q "not available yet" "$log"; then
		echo "demo: the sync engine is not built yet;" \
			"sample data is loaded in .demo"
		hint
		exit 0
	fi
	if [ "$rc" != 0 ]; then
		cat "$log" >&2
		die "audsync run failed (exit $rc); see above"
	fi
	sql -c "SELECT c.key AS computation, s.mode, r.members, r.entered,
			r.exited, r.changed, r.calls
		FROM audsync.runs r
		JOIN audsync.syncs s ON s.id = r.sync_id
		JOIN audsync.computations c ON c.id = s.computation_id
		WHERE r.id > $first ORDER BY r.id"
	requests=$(wc -l <"$out" | tr -d ' ')
	if [ "$requests" = 0 ]; then
		echo "No request: nothing changed."
	else
		echo "Three sample calls, of different computations (a request"
		echo "carries up to 2000 of them):"
		samples "$out"
	fi
	echo "All $requests requests, as Mixpanel would receive them:" \
		".demo/requests-$n.jsonl; the log: .demo/run-$n.log"
}

# Three calls of requests file $1, one per computation, read with
# PostgreSQL's JSON functions (the demo needs no jq): the endpoint and the
# first call of a request.
samples() {
	sql -At -F ' ' -c "CREATE TEMP TABLE demo_req (line text);" \
		-c "\\copy demo_req FROM '$1' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')" \
		-c "SELECT '  POST ' || r.endpoint || '  ' || r.call FROM (
			SELECT DISTINCT ON (coalesce(c->>'event',
				(SELECT min(k) FROM jsonb_object_keys(c->'\$set') k
				 WHERE k NOT LIKE '\$%')))
				j->>'endpoint' AS endpoint, c::text AS call,
				row_number() OVER () AS n
			FROM demo_req, LATERAL (SELECT line::jsonb AS j) x,
				LATERAL (SELECT j->'body'->0 AS c) y
			ORDER BY coalesce(c->>'event',
				(SELECT min(k) FROM jsonb_object_keys(c->'\$set') k
				 WHERE k NOT LIKE '\$%')), n) r
		ORDER BY r.n LIMIT 3"
}

have=$(psql -X -At -d "host='$PGHOST' port=$PGPORT user=postgres dbname=postgres" \
	-c "SELECT 1 FROM pg_database WHERE datname = 'audsync_demo'") ||
	die "cannot reach the demo PostgreSQL"
if [ -z "$have" ]; then
	psql -X -q -d "host='$PGHOST' port=$PGPORT user=postgres dbname=postgres" \
		-c "CREATE DATABASE audsync_demo" || die "cannot create the database"
fi

echo "== migrate: create the audsync schema"
"$bin" --db "$db" --log-level warn migrate || die "audsync migrate failed"

loaded=$(sql -At -c "SELECT count(*) FROM audsync.destinations
	WHERE name = 'demo'") || exit 1
if [ "$loaded" = 0 ]; then
	echo "== sample data: scripts/demo-data.sql"
	sql -f "$root/scripts/demo-data.sql" || die "loading the sample failed"
	sql -c "SELECT (SELECT count(DISTINCT profile_id)
			FROM audsync.external_ids) AS profiles,
		(SELECT count(*) FROM audsync.external_ids) AS identifiers,
		(SELECT count(*) FROM audsync.events) AS events,
		(SELECT count(*) FROM audsync.computations) AS computations"
fi
sql -c "SELECT c.key, c.kind, CASE WHEN c.definition IS NULL THEN 'SQL'
		ELSE 'rule' END AS defined_by, s.mode, c.lookback
	FROM audsync.syncs s JOIN audsync.computations c
		ON c.id = s.computation_id
	ORDER BY s.id"

runs=$(sql -At -c "SELECT count(*) FROM audsync.runs") || exit 1
if [ "$runs" = 0 ]; then
	echo "== first sync: every member is sent"
else
	echo "== sync again: the demo ran before, so only what changed since" \
		"then is sent (make demo-clean starts over)"
fi
sync_all 1

echo
echo "== new events: two profiles place an order, one views shoes again"
sql -c "
WITH known AS (
	SELECT profile_id FROM audsync.external_ids WHERE id_type = 'user_id'
), buyers AS (
	SELECT k.profile_id FROM known k
	WHERE NOT EXISTS (
		SELECT 1 FROM audsync.events e
		WHERE e.profile_id = k.profile_id
		  AND e.event = 'Order Completed'
		  AND e.ts >= now() - interval '30 days')
	ORDER BY k.profile_id LIMIT 2
), browsers AS (
	SELECT e.profile_id FROM audsync.events e JOIN known USING (profile_id)
	WHERE e.event = 'Product Viewed' AND e.properties->>'category' = 'shoes'
	  AND e.profile_id NOT IN (SELECT profile_id FROM buyers)
	GROUP BY e.profile_id HAVING count(*) = 2
	ORDER BY e.profile_id LIMIT 1
)
INSERT INTO audsync.events (profile_id, event, properties, ts)
SELECT profile_id, 'Order Completed',
	'{\"total\": 49.90, \"currency\": \"USD\"}'::jsonb,
	clock_timestamp() - interval '1 second'
FROM buyers
UNION ALL
SELECT profile_id, 'Product Viewed', '{\"category\": \"shoes\"}'::jsonb,
	clock_timestamp() - interval '1 second'
FROM browsers
RETURNING profile_id, event, properties" || die "inserting events failed"

echo "== second run: only the change"
sync_all 2
hint
