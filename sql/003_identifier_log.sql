-- 003_identifier_log.sql: which profiles gained identifiers, and when they
-- were loaded. A run finds new identifiers by created_at; a loader that
-- backfills rows with old created_at values would hide them, so inserts
-- into audsync.external_ids are also logged here by load time. (A
-- deployment that replaces external_ids with a view keeps the created_at
-- rule alone.)
CREATE TABLE audsync.identifier_log (
    profile_id text NOT NULL,
    logged_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identifier_log_at ON audsync.identifier_log (logged_at);

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
