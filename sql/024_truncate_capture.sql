-- 024_truncate_capture.sql: a TRUNCATE of a source table is seen (README
-- "Rules: hourly runs").
--
-- The change log (014) and the identifier log (003, 012) name the profiles
-- each INSERT, UPDATE and DELETE touched. A TRUNCATE fires none of those
-- triggers: it touched every profile and names none, and an incremental
-- rule kept members whose events were gone, a profile kept a distinct_id
-- whose identifier was gone. A statement trigger AFTER TRUNCATE now
-- records the table here with its transaction id. A run whose last
-- snapshot could not see such a row takes everything as changed: a rule
-- is evaluated in full (engine/incremental.c), and after a TRUNCATE of
-- external_ids every member's identifiers are compared again
-- (engine/diff.c). A row a TRUNCATE, kept back to the oldest snapshot a
-- sync or a run in flight still holds, as the change log is (015).
CREATE TABLE audsync.truncate_log (
    relation text NOT NULL,
    xact     xid8 NOT NULL DEFAULT pg_current_xact_id()
);

CREATE FUNCTION audsync.log_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audsync.truncate_log (relation) VALUES (TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['events', 'profile_traits', 'external_ids'] LOOP
        IF (SELECT relkind FROM pg_class
            WHERE oid = to_regclass('audsync.' || r)) = 'r' THEN
            EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON audsync.%I'
                ' FOR EACH STATEMENT EXECUTE FUNCTION audsync.log_truncate()',
                r || '_rule_changes_trunc', r);
        END IF;
    END LOOP;
END
$$;

-- A table whose TRUNCATE goes unrecorded is as unlogged as one without
-- the other three triggers: its rules run in full.
CREATE OR REPLACE FUNCTION audsync.rule_changes_unlogged() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT min(r || ' is not a table whose changes are logged'
               || ' (a view, or its triggers are gone)')
    FROM unnest(ARRAY['audsync.events', 'audsync.profile_traits',
                      'audsync.external_ids']) r
    WHERE (SELECT count(*) FROM pg_trigger t
           WHERE t.tgrelid = to_regclass(r)
           AND t.tgname LIKE '%\_rule\_changes\_%') < 4
$$;
