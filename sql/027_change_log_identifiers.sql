-- 027_change_log_identifiers.sql: the change log says which changes were
-- to identifiers (README "Rules: hourly runs").
--
-- A rule whose new events alone decide a profile (one performed whose
-- count only grows; engine/rules.c, put_sure()) must still find the
-- profile in the identity graph: a profile without identifiers is a
-- member of nothing. For the profiles the ledger already holds as
-- members, that probe decides nothing unless their identifiers changed
-- since the last run: they had identifiers then. An hourly run therefore
-- probes only the profiles whose membership would be new, and those whose
-- identifiers a change touched, which this column marks. Rows logged
-- before this migration count as changes to identifiers.
ALTER TABLE audsync.change_log
    ADD COLUMN identifiers boolean NOT NULL DEFAULT true;

CREATE OR REPLACE FUNCTION audsync.log_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids boolean := TG_TABLE_NAME = 'external_ids';
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audsync.change_log (profile_id, identifiers)
            SELECT DISTINCT profile_id, ids FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audsync.change_log (profile_id, identifiers)
            SELECT DISTINCT profile_id, ids FROM old_rows;
    ELSE
        INSERT INTO audsync.change_log (profile_id, identifiers)
            SELECT u.profile_id, ids FROM (SELECT profile_id FROM old_rows
                UNION SELECT profile_id FROM new_rows) u;
    END IF;
    RETURN NULL;
END
$$;
