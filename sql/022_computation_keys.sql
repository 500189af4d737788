-- 022_computation_keys.sql: the Mixpanel properties a trait's columns
-- send belong to that trait, so no other computation writes them.
--
-- A computation's key is unique, but a trait with named columns synced in
-- identify mode sets one profile property per column, named after the
-- column. Two such traits with a column of the same name, or a new
-- computation named after a column another trait already sets, would
-- overwrite each other's property in Mixpanel, and neither ledger would
-- notice. An identify sync of a trait claims its columns' keys when its
-- run commits (engine/sync.c); an identify trait whose column another
-- computation has claimed fails alone, naming it (engine/evaluate.c), and
-- a new computation named after a claimed key is refused here. (In track
-- mode a column is a property of the trait's own events.)
CREATE TABLE audsync.computation_keys (
    key            text PRIMARY KEY,
    computation_id integer NOT NULL
        REFERENCES audsync.computations (id) ON DELETE CASCADE
);
CREATE INDEX computation_keys_computation
    ON audsync.computation_keys (computation_id);

CREATE FUNCTION audsync.computations_refuse_claimed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner text;
BEGIN
    SELECT c.key INTO owner
      FROM audsync.computation_keys k
      JOIN audsync.computations c ON c.id = k.computation_id
     WHERE k.key = NEW.key;
    IF owner IS NOT NULL THEN
        RAISE EXCEPTION 'computation key "%" refused: computation % already sends a property of that name (a trait column)',
            NEW.key, owner
            USING ERRCODE = 'unique_violation',
                  HINT = 'give the computation another name or key';
    END IF;
    RETURN NEW;
END
$$;
-- After computations_key (triggers fire in name order), which derives
-- the key from the name.
CREATE TRIGGER computations_refuse_claimed
    BEFORE INSERT ON audsync.computations
    FOR EACH ROW EXECUTE FUNCTION audsync.computations_refuse_claimed();
