-- 025_kept_anonymous_ids.sql: which members keep an anonymous id, by the
-- id (engine/calls.c, kept_sql).
--
-- A member that has become known keeps the anonymous ids it was told
-- through before (Mixpanel may have merged them into its profile): its
-- ledger row lists each as a line flagged "ha" (engine/decide.h), beside
-- a current user_id line. When such an id has moved to another profile
-- and moves on, that profile's exit to it must not go for the keys the
-- keeper has a value for, even in a run where the keeper did not
-- change. The run looks the held exits' distinct_ids up here: an index
-- of the kept ids of the few ledger rows that have one.
CREATE FUNCTION audsync.kept_dids(targets text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(DISTINCT split_part(l, E'\t', 3))
    FROM unnest(string_to_array(targets, E'\n')) l
    WHERE split_part(l, E'\t', 5) = 'ha'
      AND targets ~ E'(^|\n)user_id\t[^\t\n]*\t[^\t\n]*\t[^\t\n]*\tc'
$$;

CREATE INDEX snapshot_members_kept ON audsync.snapshot_members
    USING gin (audsync.kept_dids(targets))
    WHERE member AND strpos(targets, E'\tha\t') > 0;
