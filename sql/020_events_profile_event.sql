-- 020_events_profile_event.sql: an hourly run of a rule reads each
-- touched profile's events from the per-profile index alone
-- (engine/rules.c, the touched evaluation).
--
-- An incremental run re-evaluates only the touched profiles: each one's
-- events of its window, found by (profile_id, ts). The rule names the
-- event, which only the table held, so every event found cost a table
-- page too, rarely a cached one. With the event carried in the index
-- (outside its key: the key and its order are as before) a rule without
-- property filters reads the index alone. On the bench's million
-- profiles, an hourly run where only time moved evaluates in 0.16 s
-- instead of 0.19-0.20 s, one after 1 % of the profiles bought again in
-- 0.86-0.88 s instead of 1.07-1.13 s. The index grows by a tenth.
--
-- (The (event, ts) index was left as it is: carrying profile_id there
-- would save an hourly rule run another 0.03 s but cost a hand-written
-- definition's run after a churn 0.1 s, and the index five times its
-- size where many events share a time.)
--
-- The index is built again: about 0.6 s per million events, during
-- which writes to events wait (reads go on).
CREATE INDEX events_profile_ts_event
    ON audsync.events (profile_id, ts) INCLUDE (event);
DROP INDEX audsync.events_profile_ts;
ALTER INDEX audsync.events_profile_ts_event RENAME TO events_profile_ts;
