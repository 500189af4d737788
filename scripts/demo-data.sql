-- demo-data.sql: sample data for `make demo` (scripts/demo.sh).
--
-- 300 profiles p0001..p0300 with their identifiers, about 5 000 events over
-- the last 60 days, profile traits, one destination that prints Mixpanel
-- requests to stdout, and five computations synced to it.
--
-- Load into a migrated database (audsync migrate) with
--   psql -v ON_ERROR_STOP=1 -f scripts/demo-data.sql
-- Deterministic: every choice comes from md5 of a label, never random();
-- only the times move, relative to now(). A second load fails on the
-- unique identifiers and changes nothing (one transaction).

BEGIN;

-- A stable pseudo-random number >= 0 for a label.
CREATE FUNCTION pg_temp.h(label text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(label), 1, 12))::bit(48)::bigint
$$;

-- Profiles: when each appeared (1 to 60 days ago) and whether it is known
-- only by anonymous ids (40 of them: no user_id, no email).
CREATE TEMP TABLE demo_profiles ON COMMIT DROP AS
SELECT n,
       'p' || lpad(n::text, 4, '0') AS profile_id,
       n % 15 IN (4, 11) AS anonymous_only,
       date_trunc('second', now())
           - interval '1 day'
           - (pg_temp.h('born:' || n) % (59 * 24 * 60)) * interval '1 minute'
           AS born
FROM generate_series(1, 300) AS n;

-- Identifiers. Anonymous ids come first (a visitor before signing up),
-- then the user_id at sign-up, then 1 to 3 emails, each newer than the
-- last, so the newest email is the address of record.
INSERT INTO audsync.external_ids (profile_id, id_type, id_value, created_at)
SELECT p.profile_id, 'anonymous_id',
       regexp_replace(md5('anon:' || p.n || ':' || k),
                      '^(.{8})(.{4})(.{4})(.{4})(.{12})$',
                      '\1-\2-\3-\4-\5'),
       p.born - (3 - k) * interval '1 hour'
FROM demo_profiles p
CROSS JOIN LATERAL generate_series(1, 1 + pg_temp.h('anons:' || p.n) % 2) AS k;

INSERT INTO audsync.external_ids (profile_id, id_type, id_value, created_at)
SELECT profile_id, 'user_id', 'user-' || lpad(n::text, 4, '0'), born
FROM demo_profiles
WHERE NOT anonymous_only;

INSERT INTO audsync.external_ids (profile_id, id_type, id_value, created_at)
SELECT p.profile_id, 'email',
       (ARRAY['ada', 'alan', 'grace', 'edsger', 'barbara', 'donald',
              'margaret', 'ken', 'dennis', 'frances', 'john', 'radia'])
           [1 + (pg_temp.h('name:' || p.n) + k) % 12]
           || '.' || p.n || '@example.com',
       date_trunc('second', p.born + (now() - p.born) * (k - 1) / 3)
FROM demo_profiles p
CROSS JOIN LATERAL generate_series(1, 1 + pg_temp.h('emails:' || p.n) % 3) AS k
WHERE NOT p.anonymous_only;

-- Events between each profile's first appearance and now: a "Signed Up"
-- for every known user, then 6 to 27 views and orders (anonymous-only
-- profiles only browse).
INSERT INTO audsync.events (profile_id, event, properties, ts)
SELECT profile_id, 'Signed Up', '{}', born
FROM demo_profiles
WHERE NOT anonymous_only;

INSERT INTO audsync.events (profile_id, event, properties, ts)
SELECT e.profile_id,
       CASE WHEN e.is_order THEN 'Order Completed' ELSE 'Product Viewed' END,
       CASE WHEN e.is_order THEN
           jsonb_build_object(
               'total', round(10 + (pg_temp.h('total:' || e.label) % 24000)
                                   / 100.0, 2),
               'currency', 'USD')
       ELSE
           jsonb_build_object('category',
               (ARRAY['shoes', 'books', 'electronics', 'garden', 'toys'])
                   [1 + pg_temp.h('category:' || e.label) % 5])
       END,
       e.ts
FROM (
    SELECT p.profile_id,
           p.n || ':' || i AS label,
           NOT p.anonymous_only
               AND pg_temp.h('kind:' || p.n || ':' || i) % 100 < 10 AS is_order,
           date_trunc('second',
               p.born + (now() - p.born)
                   * (1 + pg_temp.h('ts:' || p.n || ':' || i) % 999) / 1000.0)
               AS ts
    FROM demo_profiles p
    CROSS JOIN LATERAL generate_series(1, 6 + pg_temp.h('count:' || p.n) % 22) AS i
) AS e;

-- Traits of known users.
INSERT INTO audsync.profile_traits (profile_id, traits, updated_at)
SELECT profile_id,
       jsonb_build_object(
           'plan', CASE WHEN pg_temp.h('plan:' || n) % 4 = 0
                        THEN 'pro' ELSE 'free' END,
           'country', (ARRAY['US', 'GB', 'DE', 'FR', 'IN', 'BR', 'JP', 'CA'])
                          [1 + pg_temp.h('country:' || n) % 8]),
       born
FROM demo_profiles
WHERE NOT anonymous_only;

-- One Mixpanel project; api_base 'stdout:' prints the requests instead of
-- sending them, so the demo needs no account.
INSERT INTO audsync.destinations
    (name, region, api_base, project_token, use_people, settings)
VALUES ('demo', 'us', 'stdout:', 'demo-token', true, '{}');

-- Computations in SQL form: $1 is the as-of time, $2 the window start
-- ($1 - lookback). Keys are derived from the names by the trigger.
INSERT INTO audsync.computations (name, kind, lookback, definition_sql)
VALUES
('Recent Buyers', 'audience', interval '30 days', $sql$
SELECT DISTINCT profile_id
FROM audsync.events
WHERE event = 'Order Completed' AND ts >= $2 AND ts < $1
$sql$),
('Shoe Browsers', 'audience', NULL, $sql$
SELECT profile_id
FROM audsync.events
WHERE event = 'Product Viewed' AND properties->>'category' = 'shoes'
  AND ts < $1
GROUP BY profile_id
HAVING count(*) >= 3
$sql$),
('Pro Plan', 'audience', NULL, $sql$
SELECT profile_id
FROM audsync.profile_traits
WHERE traits->>'plan' = 'pro'
$sql$),
('Lifetime Orders', 'trait', NULL, $sql$
SELECT profile_id, count(*) AS value
FROM audsync.events
WHERE event = 'Order Completed' AND ts < $1
GROUP BY 1
$sql$),
('Spend Last 7 Days', 'trait', interval '7 days', $sql$
SELECT profile_id, sum((properties->>'total')::numeric) AS value
FROM audsync.events
WHERE event = 'Order Completed' AND ts >= $2 AND ts < $1
GROUP BY 1
$sql$);

-- The same kinds of computation as rules (README "Rules: the Personas
-- builder as JSON"): audsync compiles them to SQL (audsync explain KEY).
INSERT INTO audsync.computations (name, kind, lookback, definition)
VALUES
('Browsing Not Buying', 'audience', NULL, '{"and": [
    {"performed": {"event": "Product Viewed", "within": "30 days"}},
    {"not": {"performed": {"event": "Order Completed",
                           "within": "30 days"}}}]}'),
('Favourite Category', 'trait', NULL,
 '{"most_frequent": {"event": "Product Viewed", "property": "category"}}');

INSERT INTO audsync.syncs (computation_id, destination_id, mode)
SELECT c.id, d.id, m.mode
FROM (VALUES ('Recent Buyers', 'identify'),
             ('Shoe Browsers', 'track'),
             ('Pro Plan', 'identify'),
             ('Lifetime Orders', 'identify'),
             ('Spend Last 7 Days', 'identify'),
             ('Browsing Not Buying', 'identify'),
             ('Favourite Category', 'identify')) AS m (name, mode)
JOIN audsync.computations c ON c.name = m.name
JOIN audsync.destinations d ON d.name = 'demo';

COMMIT;
