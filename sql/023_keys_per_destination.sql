-- 023_keys_per_destination.sql: a trait column's claim is the
-- destination's, and syncs that ran before 021 and 022 get what those
-- migrations could not know.
--
-- A claim (sql/022_computation_keys.sql) keeps two computations from
-- setting one profile property. Profiles live in one Mixpanel project, a
-- destination, so two traits may send a column of one name to two
-- projects: the claim names its destination.
ALTER TABLE audsync.computation_keys
    ADD COLUMN destination_id integer
        REFERENCES audsync.destinations (id) ON DELETE CASCADE;
INSERT INTO audsync.computation_keys (key, computation_id, destination_id)
SELECT k.key, k.computation_id, s.destination_id
  FROM audsync.computation_keys k
  JOIN audsync.syncs s ON s.computation_id = k.computation_id
 WHERE s.mode = 'identify';
DELETE FROM audsync.computation_keys WHERE destination_id IS NULL;
ALTER TABLE audsync.computation_keys ALTER COLUMN destination_id SET NOT NULL;
ALTER TABLE audsync.computation_keys DROP CONSTRAINT computation_keys_pkey;
ALTER TABLE audsync.computation_keys ADD PRIMARY KEY (destination_id, key);

-- Identify traits that ran before 022 set their columns without a
-- claim; two of them with a column of one name overwrote each other, and
-- after 022 whichever claimed first kept it, by the order of the next
-- runs. The ledgers say which properties each has set: each goes to the
-- computation created first, and the other fails alone until its column
-- is renamed (`audsync validate` names both).
INSERT INTO audsync.computation_keys (destination_id, key, computation_id)
SELECT DISTINCT ON (s.destination_id, k.key)
       s.destination_id, k.key, c.id
  FROM audsync.syncs s
  JOIN audsync.computations c ON c.id = s.computation_id
 CROSS JOIN LATERAL (
       SELECT DISTINCT jsonb_object_keys(m.value::jsonb) AS key
         FROM audsync.snapshot_members m
        WHERE m.sync_id = s.id) k
 WHERE s.mode = 'identify' AND c.kind = 'trait'
 ORDER BY s.destination_id, k.key, c.id
ON CONFLICT (destination_id, key) DO NOTHING;

-- A sync that last ran before 021 has no targets_rule, which reads as
-- unchanged: a setting changed since would never take effect. The
-- settings now are the best guess of those of its last run (the
-- expression is SYNC_TARGETS_RULE, include/audsync/config.h).
UPDATE audsync.sync_state st
   SET targets_rule = s.mode || '/' || s.id_sync || '/'
                      || c.include_anonymous::text
  FROM audsync.syncs s
  JOIN audsync.computations c ON c.id = s.computation_id
 WHERE st.sync_id = s.id AND st.targets_rule IS NULL;
