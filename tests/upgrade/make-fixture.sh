#!/bin/sh
# make-fixture.sh - writes tests/upgrade/pre-ledger.sql, a database synced
# by audsync as it was before the ledger (migrations 001-011), and
# tests/upgrade/pre-ledger-profiles.json, the profiles that audsync left in
# Mixpanel, for the upgrade test (tests/check_upgrade.c).
#
#   sh tests/upgrade/make-fixture.sh [COMMIT]
#
# Builds audsync at COMMIT (default below: the last commit before the
# ledger's migration) from `git archive` in a temporary directory, starts a
# throwaway PostgreSQL (tests/pg.sh) and the fake Mixpanel
# (tests/fake_mixpanel, built from the working tree), loads the sample
# data of this file in four steps, each followed by the old `audsync run
# --all --as-of T` and `audsync deliver` until nothing is queued, then
# dumps the schema audsync (definitions and data) with pg_dump and the
# fake's profiles (curl, jq). The dump leaves out pg_dump's \restrict
# lines (a random key) and the outbox's lz4 setting (the test's server may
# lack lz4; the outbox is empty). Run it
# from the repository root; everything it starts goes when it ends.
set -eu

commit=${1:-1009e18}
out=tests/upgrade/pre-ledger.sql
here=$(cd "$(dirname "$0")/.." && pwd)

[ -f tests/upgrade/make-fixture.sh ] ||
	{ echo "make-fixture.sh: run it from the repository root" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/audsync-fixture.XXXXXX")
chmod 755 "$work"
fake_pid=
cleanup() {
	[ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
	sh "$here/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

full=$(git rev-parse --verify "$commit^{commit}")
echo "make-fixture: audsync at $full"
mkdir "$work/old"
git archive "$full" | tar -x -C "$work/old"
make -s -C "$work/old" audsync >"$work/build.log" 2>&1 ||
	{ tail -n 20 "$work/build.log" >&2; exit 1; }
make -s tests/fake_mixpanel >/dev/null
old=$work/old/audsync

eval "$(sh "$here/pg.sh" start "$work/pg")"
unset AUDSYNC_DB PGSERVICE PGOPTIONS
tests/fake_mixpanel --port-file "$work/port" &
fake_pid=$!
i=0
while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
port=$(cat "$work/port")

MIXPANEL_API_SECRET=test-secret
export MIXPANEL_API_SECRET
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# The old audsync runs every sync at as-of $1, then delivers until the
# outbox and the dead letters are empty.
run_at() {
	"$old" --log-level warn run --all --as-of "$1"
	n=0
	until [ "$(psql_q -At -c "SELECT (SELECT count(*) FROM
	    audsync.outbox) + (SELECT count(*) FROM audsync.dead_letters)")" \
	    = 0 ]; do
		n=$((n + 1))
		[ $n -le 5 ] || { echo "make-fixture: calls stay queued" >&2;
			exit 1; }
		"$old" --log-level warn deliver || true
	done
}

"$old" --log-level warn migrate

# Definitions. Audiences: profiles whose latest "Set" event (at or
# before the as-of) has a property v. Traits: from the latest "Score"
# event with a property s, two columns (score, tier; pts, level; rank,
# grade); the second may be null.
psql_q -v port="$port" <<'SQL'
INSERT INTO audsync.destinations (name, api_base, project_token,
    secret_env, use_people)
VALUES ('mp', 'http://127.0.0.1:' || :'port', 'test-token',
    'MIXPANEL_API_SECRET', true);
CREATE FUNCTION public.fixture_sql(ev text, cols text) RETURNS text
LANGUAGE sql AS $f$
    SELECT 'SELECT profile_id' || cols || ' FROM (SELECT DISTINCT ON'
        || ' (profile_id) profile_id, properties FROM audsync.events'
        || ' WHERE event = ''' || ev || ''' AND ts <= $1'
        || ' ORDER BY profile_id, ts DESC) x WHERE properties ? '
        || CASE ev WHEN 'Set' THEN '''v''' ELSE '''s''' END
$f$;
INSERT INTO audsync.computations (key, name, kind, definition_sql,
    include_anonymous) VALUES
 ('vip', 'VIP', 'audience', fixture_sql('Set', ''), false),
 ('vip_track', 'VIP Track', 'audience', fixture_sql('Set', ''), true),
 ('vip_first', 'VIP First', 'audience', fixture_sql('Set', ''), true),
 ('scoring', 'Scoring', 'trait', fixture_sql('Score',
    ', (properties->>''s'')::int AS score,'
    || ' (properties->>''t'')::text AS tier'), true),
 ('points', 'Points', 'trait', fixture_sql('Score',
    ', (properties->>''s'')::int AS pts,'
    || ' (properties->>''t'')::text AS level'), false),
 ('ranking', 'Ranking', 'trait', fixture_sql('Score',
    ', (properties->>''s'')::int AS rank,'
    || ' (properties->>''t'')::text AS grade'), true);
DROP FUNCTION public.fixture_sql(text, text);
INSERT INTO audsync.syncs (computation_id, destination_id, mode, id_sync)
SELECT c.id, d.id, m.mode, m.id_sync
FROM (VALUES ('vip', 'identify', 'all'), ('vip_track', 'track', 'last'),
    ('vip_first', 'identify', 'first'), ('scoring', 'identify', 'first'),
    ('points', 'track', 'all'), ('ranking', 'identify', 'last'))
    m (key, mode, id_sync)
JOIN audsync.computations c ON c.key = m.key, audsync.destinations d;
SQL

# Step 1 (as-of 2026-06-01): the first sync.
#   p1  user_id, email                      member, score 10/gold
#   p2  user_id, two emails, anonymous id   member, score 20 (tier null)
#   p3  anonymous only (two) and an email   member, score 30/silver
#   p4  anonymous only                      member
#   p5  user_id, an invalid user_id, email  member, score 50/gold
#   p6  user_id, anonymous id               member, score 60/gold
#   p7  email only                          member (skipped everywhere)
#   p10 user_id, email                      member
#   p11 user_id                             score 11/bronze
#   p12 user_id, email                      member
psql_q <<'SQL'
INSERT INTO audsync.external_ids VALUES
 ('p1', 'user_id', 'u1', '2026-05-01'), ('p1', 'email', 'p1@x.io', '2026-05-02'),
 ('p2', 'user_id', 'u2', '2026-05-01'), ('p2', 'email', 'p2a@x.io', '2026-05-02'),
 ('p2', 'email', 'p2b@x.io', '2026-05-03'),
 ('p2', 'anonymous_id', 'a2', '2026-04-30'),
 ('p3', 'anonymous_id', 'a3a', '2026-05-01'),
 ('p3', 'anonymous_id', 'a3b', '2026-05-02'),
 ('p3', 'email', 'p3@x.io', '2026-05-03'),
 ('p4', 'anonymous_id', 'a4', '2026-05-01'),
 ('p5', 'user_id', 'u5', '2026-05-01'), ('p5', 'user_id', 'null', '2026-05-02'),
 ('p5', 'email', 'p5@x.io', '2026-05-03'),
 ('p6', 'user_id', 'u6', '2026-05-01'),
 ('p6', 'anonymous_id', 'a6a', '2026-05-02'),
 ('p7', 'email', 'p7@x.io', '2026-05-01'),
 ('p10', 'user_id', 'u10', '2026-05-01'), ('p10', 'email', 'p10@x.io', '2026-05-02'),
 ('p11', 'user_id', 'u11', '2026-05-01'),
 ('p12', 'user_id', 'u12', '2026-05-01'), ('p12', 'email', 'p12@x.io', '2026-05-02');
INSERT INTO audsync.events (profile_id, event, properties, ts)
SELECT p, 'Set', '{"v": 1}', '2026-05-31' FROM unnest(ARRAY['p1', 'p2',
    'p3', 'p4', 'p5', 'p6', 'p7', 'p10', 'p12']) p;
INSERT INTO audsync.events (profile_id, event, properties, ts) VALUES
 ('p1', 'Score', '{"s": 10, "t": "gold"}', '2026-05-31'),
 ('p2', 'Score', '{"s": 20}', '2026-05-31'),
 ('p3', 'Score', '{"s": 30, "t": "silver"}', '2026-05-31'),
 ('p5', 'Score', '{"s": 50, "t": "gold"}', '2026-05-31'),
 ('p6', 'Score', '{"s": 60, "t": "gold"}', '2026-05-31'),
 ('p11', 'Score', '{"s": 11, "t": "bronze"}', '2026-05-31');
SQL
run_at '2026-06-01 00:00:00+00'

# Step 2 (as-of 2026-06-02): identities move, values change.
#   p4  gains a user_id (anonymous -> known)
#   p6  gains a newer anonymous id (id_sync last/first choose apart)
#   p8  new, enters
#   p5  tier goes null; p11 score changes; p12 exits
psql_q <<'SQL'
INSERT INTO audsync.external_ids VALUES
 ('p4', 'user_id', 'u4', '2026-06-01 10:00'),
 ('p6', 'anonymous_id', 'a6b', '2026-06-01 11:00'),
 ('p8', 'user_id', 'u8', '2026-06-01 12:00'),
 ('p8', 'email', 'p8@x.io', '2026-06-01 12:00');
INSERT INTO audsync.events (profile_id, event, properties, ts) VALUES
 ('p8', 'Set', '{"v": 1}', '2026-06-01 13:00'),
 ('p8', 'Score', '{"s": 80, "t": "gold"}', '2026-06-01 13:00'),
 ('p12', 'Set', '{}', '2026-06-01 13:00'),
 ('p5', 'Score', '{"s": 51}', '2026-06-01 13:00'),
 ('p11', 'Score', '{"s": 12, "t": "bronze"}', '2026-06-01 13:00');
SQL
run_at '2026-06-02 00:00:00+00'

# Step 3 (as-of 2026-06-03): exits and a backfill.
#   p2  exits and its trait goes (told false / nulls)
#   p3  (anonymous only) exits
#   p5  trait gone entirely
#   p9  new member, its email backfilled with an older date after a
#       newer one
#   p12 enters again
psql_q <<'SQL'
INSERT INTO audsync.external_ids VALUES
 ('p9', 'user_id', 'u9', '2026-06-02 08:00'),
 ('p9', 'email', 'p9new@x.io', '2026-06-02 09:00'),
 ('p9', 'email', 'p9old@x.io', '2026-05-01');
INSERT INTO audsync.events (profile_id, event, properties, ts) VALUES
 ('p2', 'Set', '{}', '2026-06-02 10:00'),
 ('p2', 'Score', '{}', '2026-06-02 10:00'),
 ('p3', 'Set', '{}', '2026-06-02 10:00'),
 ('p5', 'Score', '{}', '2026-06-02 10:00'),
 ('p9', 'Set', '{"v": 1}', '2026-06-02 10:00'),
 ('p9', 'Score', '{"s": 90, "t": "silver"}', '2026-06-02 10:00'),
 ('p12', 'Set', '{"v": 1}', '2026-06-02 10:00');
SQL
run_at '2026-06-03 00:00:00+00'

# Step 4 (as-of 2026-06-04): an unchanged run, then a newer email for p1.
run_at '2026-06-04 00:00:00+00'
psql_q <<'SQL'
INSERT INTO audsync.external_ids VALUES
 ('p1', 'email', 'p1new@x.io', '2026-06-04 06:00');
SQL
run_at '2026-06-05 00:00:00+00'

{
	echo "-- pre-ledger.sql: a database synced by audsync at"
	echo "-- $full (migrations 001-011),"
	echo "-- written by tests/upgrade/make-fixture.sh; do not edit."
	pg_dump -n audsync --no-owner --no-privileges --inserts |
		sed -e '/^\\restrict /d' -e '/^\\unrestrict /d' \
			-e '/SET COMPRESSION lz4;$/d' \
			-e "s|http://127.0.0.1:$port|http://127.0.0.1:0|g"
} >"$out"
# Mixpanel's profiles as the old audsync left them.
curl -sf "http://127.0.0.1:$port/_fake/state" | jq -S .profiles \
	>tests/upgrade/pre-ledger-profiles.json
echo "make-fixture: wrote $out ($(wc -l <"$out") lines; calls:" \
	"$(curl -s "http://127.0.0.1:$port/_fake/summary")"")"
