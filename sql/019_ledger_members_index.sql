-- 019_ledger_members_index.sql: a run's diff reads the sync's members
-- from the ledger's primary key alone (engine/evaluate.c,
-- audience_diff_sql).
--
-- Every run of an audience joins its definition's rows with the profiles
-- the ledger holds as members. It read them from the table: every row,
-- with its value and its distinct_ids (about 110 MB per million targets),
-- to keep a profile_id and a flag. With the flag carried in the primary
-- key (outside its key) the join reads the index, a tenth of that, once
-- the pages are marked all-visible (by autovacuum, between hourly runs).
--
-- The key is built again: about a second per million ledger rows.
ALTER TABLE audsync.snapshot_members
    DROP CONSTRAINT snapshot_members_pkey,
    ADD PRIMARY KEY (sync_id, profile_id) INCLUDE (member);
