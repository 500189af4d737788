-- 003_identifier_log.sql: which profiles gained identifiers, by the
-- transaction that loaded them. A run finds new identifiers by created_at;
-- a loader that backfills rows with old created_at values would hide them,
-- so inserts into audsync.external_ids are also logged here with their
-- transaction id. A run remembers its snapshot (sync_state.ids_snapshot):
-- the rows it could not see are exactly the new ones, however late their
-- transaction committed. (A deployment that replaces external_ids with a
-- view keeps the created_at rule alone.)
CREATE TABLE audsync.identifier_log (
    profile_id text NOT NULL,
    xact       xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX identifier_log_xact ON audsync.identifier_log (xact);

ALTER TABLE audsync.sync_state ADD COLUMN ids_snapshot pg_snapshot;

CREATE FUNCTION audsync.log_identifiers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audsync.identifier_log (profile_id)
        SELECT DISTINCT profile_id FROM new_ids;
    RETURN NULL;
END
$$;
CREATE TRIGGER external_ids_log AFTER INSERT ON audsync.external_ids
    REFERENCING NEW TABLE AS new_ids
    FOR EACH STATEMENT EXECUTE FUNCTION audsync.log_identifiers();
