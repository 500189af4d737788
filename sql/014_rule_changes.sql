-- 014_rule_changes.sql: what incremental rule evaluation reads (DESIGN.md
-- section 5, README "Rules: hourly runs").
--
-- A rule's membership depends on a profile's events, traits and
-- identifiers and on time. Every write to those three relations logs the
-- profiles it touched here with its transaction id; a run of a rule sync
-- remembers the snapshot it took before looking (sync_state.rule_snapshot)
-- and the next run re-evaluates the profiles logged by transactions that
-- snapshot could not see, however late they committed and whatever
-- timestamps they wrote (profile_traits.updated_at is not trusted: a
-- loader may leave it alone). A deployment that replaces one of the three
-- with a view has no log: its rules run in full (audsync explain says so).
CREATE TABLE audsync.change_log (
    profile_id text NOT NULL,
    xact       xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX change_log_xact ON audsync.change_log (xact);

-- The rule the last run evaluated (a digest of its compiled statement,
-- values and lookback) and the snapshot taken before it: another rule, a
-- new lookback or no snapshot means a full evaluation.
ALTER TABLE audsync.sync_state
    ADD COLUMN rule_snapshot pg_snapshot,
    ADD COLUMN rule_digest text;

CREATE FUNCTION audsync.log_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audsync.change_log (profile_id)
            SELECT DISTINCT profile_id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audsync.change_log (profile_id)
            SELECT DISTINCT profile_id FROM old_rows;
    ELSE
        INSERT INTO audsync.change_log (profile_id)
            SELECT profile_id FROM old_rows
            UNION SELECT profile_id FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

-- Why a rule cannot be evaluated incrementally in this database, or NULL:
-- a source relation is not a table carrying the change log's triggers.
CREATE FUNCTION audsync.rule_changes_unlogged() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT min(r || ' is not a table whose changes are logged'
               || ' (a view, or its triggers are gone)')
    FROM unnest(ARRAY['audsync.events', 'audsync.profile_traits',
                      'audsync.external_ids']) r
    WHERE (SELECT count(*) FROM pg_trigger t
           WHERE t.tgrelid = to_regclass(r)
           AND t.tgname LIKE '%\_rule\_changes\_%') < 3
$$;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['events', 'profile_traits', 'external_ids'] LOOP
        IF (SELECT relkind FROM pg_class
            WHERE oid = to_regclass('audsync.' || r)) = 'r' THEN
            EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON audsync.%I'
                ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT'
                ' EXECUTE FUNCTION audsync.log_changes()',
                r || '_rule_changes_ins', r);
            EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON audsync.%I'
                ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT'
                ' EXECUTE FUNCTION audsync.log_changes()',
                r || '_rule_changes_del', r);
            EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON audsync.%I'
                ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                ' FOR EACH STATEMENT EXECUTE FUNCTION audsync.log_changes()',
                r || '_rule_changes_upd', r);
        END IF;
    END LOOP;
END
$$;
