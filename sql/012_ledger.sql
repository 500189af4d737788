-- 012_ledger.sql: the snapshot becomes the ledger of what each
-- distinct_id was told (DESIGN.md sections 1 and 6; engine/decide.c).
--
-- A profile that exits keeps its row, as a former member (member false,
-- value the exit value), so that a later exit, an entry and `retire
-- --unset` reach every distinct_id it was ever told through; the row goes
-- only with `retire` or `resync --reset`. The diff reads members only.
--
-- targets now holds one line per identifier and distinct_id:
--   type TAB value TAB distinct_id TAB created_us TAB flag TAB told
-- (decide.h). Lines of the three fields written before this migration
-- read as current targets told the row's value at its since, which is
-- what they were: the next run sends nothing new for them.
ALTER TABLE audsync.snapshot_members
    ADD COLUMN member boolean NOT NULL DEFAULT true;
ALTER TABLE audsync.snapshot_members ALTER COLUMN member SET STATISTICS 10;

-- An identifier removed or changed changes its profile's targets: the
-- load log records those profiles too, so the next run looks at them
-- (a distinct_id that stops being a target gets the exit value).
CREATE FUNCTION audsync.log_identifier_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audsync.identifier_log (profile_id)
        SELECT DISTINCT profile_id FROM old_ids;
    RETURN NULL;
END
$$;
CREATE TRIGGER external_ids_log_delete AFTER DELETE ON audsync.external_ids
    REFERENCING OLD TABLE AS old_ids
    FOR EACH STATEMENT EXECUTE FUNCTION audsync.log_identifier_changes();
CREATE FUNCTION audsync.log_identifier_updates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audsync.identifier_log (profile_id)
        SELECT profile_id FROM old_ids UNION SELECT profile_id FROM new_ids;
    RETURN NULL;
END
$$;
CREATE TRIGGER external_ids_log_update AFTER UPDATE ON audsync.external_ids
    REFERENCING OLD TABLE AS old_ids NEW TABLE AS new_ids
    FOR EACH STATEMENT EXECUTE FUNCTION audsync.log_identifier_updates();
