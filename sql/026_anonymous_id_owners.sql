-- 026_anonymous_id_owners.sql: which profiles hold an anonymous id, by
-- the id (engine/calls.c, holders_sql).
--
-- A member that has become known keeps the anonymous ids it was told
-- through before (025). When one of them has moved to another profile,
-- a member that is still anonymous and holds it as a target, the keeper's
-- exit to it, when the keeper stops being known or exits, must not go
-- for the keys the owner has a value for, even in a run where the owner
-- did not change. The run finds the owners of the held exits' ids here:
-- only anonymous ids are indexed, as only they are kept.
CREATE INDEX external_ids_anonymous ON audsync.external_ids (id_value)
    WHERE id_type = 'anonymous_id';
