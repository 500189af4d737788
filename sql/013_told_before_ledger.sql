-- 013_told_before_ledger.sql: what a sync told before the ledger.
--
-- Before 012 a profile's row went when it exited, so nothing here
-- remembers who was told false (or nulls) before the upgrade. A sync that
-- ran before 012 was applied is marked, and `retire KEY --unset` of such a
-- sync also sends $unset to every distinct_id it could have told: every
-- valid user_id and, when the computation includes anonymous users, every
-- valid anonymous id (engine/sync.c). The mark goes with the sync's state,
-- at `retire` or `resync --reset`, like the ledger's former members.
ALTER TABLE audsync.sync_state
    ADD COLUMN told_before_ledger boolean NOT NULL DEFAULT false;
UPDATE audsync.sync_state s SET told_before_ledger = true
WHERE EXISTS (SELECT 1 FROM audsync.runs r, audsync.schema_migrations v
    WHERE r.sync_id = s.sync_id AND v.version = 12
    AND r.started_at < v.applied_at);
