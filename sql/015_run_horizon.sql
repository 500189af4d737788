-- 015_run_horizon.sql: the change log is kept for the runs in flight
-- (README "Rules: hourly runs").
--
-- A run of a rule sync takes its snapshot before it evaluates and saves
-- it in sync_state when it commits; until then no other run's prune of
-- audsync.change_log could see it, and a change committed meanwhile by a
-- transaction the snapshot could not see was lost to the next run. Each
-- run now records, as its row is written (committed before the run takes
-- its snapshot), the oldest transaction then running; the prune keeps
-- everything from the oldest such mark of the runs still running. A prune
-- either sees a run's row as running (and keeps back to a mark no later
-- than the run's snapshot), or sees it finished (and its snapshot saved),
-- or took its own snapshot before the row was written, and so before the
-- run's snapshot (whose oldest transaction is then no older).
ALTER TABLE audsync.runs ADD COLUMN horizon xid8;
ALTER TABLE audsync.runs
    ALTER COLUMN horizon SET DEFAULT pg_snapshot_xmin(pg_current_snapshot());
CREATE INDEX runs_running_horizon ON audsync.runs (horizon)
    WHERE status = 'running';
