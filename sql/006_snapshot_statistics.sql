-- 006_snapshot_statistics.sql: a run refreshes the snapshot's statistics
-- when a big write left them stale (engine/sync.c), and the diff's plans
-- need from them little more than the row count and that profile_id is
-- unique. A sample of 3 000 rows gives both: the refresh takes a tenth
-- of the default 30 000 rows' time.
ALTER TABLE audsync.snapshot_members
    ALTER COLUMN sync_id SET STATISTICS 10,
    ALTER COLUMN profile_id SET STATISTICS 10,
    ALTER COLUMN value SET STATISTICS 10,
    ALTER COLUMN since SET STATISTICS 10,
    ALTER COLUMN targets SET STATISTICS 10,
    ALTER COLUMN h SET STATISTICS 10;
