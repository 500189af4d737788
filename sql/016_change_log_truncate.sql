-- 016_change_log_truncate.sql: the change log's prune gives a bulk load's
-- rows back at once (README "Rules: hourly runs").
--
-- Every write to events, profile_traits and external_ids logs the
-- profiles it touched (014). After a bulk load that is millions of rows,
-- and the first run's prune deleted them one by one: seconds inside the
-- run, then as many dead rows for autovacuum. When no row is still needed
-- (none at or after the horizon the caller computed, which is what the
-- DELETE would keep) and nobody is writing to the log, TRUNCATE removes
-- the same rows and returns the space. The lock is only tried (NOWAIT),
-- so a load in progress is never waited for: then, as when rows are
-- still needed or the role may not truncate, the rows go by DELETE. A
-- TRUNCATE the caller then commits holds the log's lock until then, a
-- few statements; one that does not happen leaves no lock behind (its
-- subtransaction is rolled back).
CREATE FUNCTION audsync.prune_change_log(horizon xid8) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        LOCK TABLE audsync.change_log IN ACCESS EXCLUSIVE MODE NOWAIT;
        IF EXISTS (SELECT 1 FROM audsync.change_log
                   WHERE xact >= horizon) THEN
            RAISE SQLSTATE 'AS016';
        END IF;
        TRUNCATE audsync.change_log;
        RETURN;
    EXCEPTION
        WHEN lock_not_available OR insufficient_privilege
             OR SQLSTATE 'AS016' THEN
            NULL;
    END;
    DELETE FROM audsync.change_log WHERE xact < horizon;
END
$$;
