-- 004_rows_checksum.sql: an unchanged run is recognised by the definition's
-- own rows. The stage keeps every row the definition returned, duplicates
-- included (an audience's members are made distinct only for the few rows
-- that differ from the snapshot), with a checksum h of (profile_id, value)
-- equal to snapshot_members.h. A run stores the count and the sum of h of
-- its stage; the next run whose stage has the same count and sum has the
-- same rows, so the same members and values, and skips the diff. A false
-- match needs a 64-bit collision that also cancels in the sum; any
-- mismatch takes the exact path. The snapshot's own checksum sum is no
-- longer needed.
ALTER TABLE audsync.sync_state
    DROP COLUMN snap_sum,
    ADD COLUMN rows_count bigint,
    ADD COLUMN rows_sum numeric;
