-- 005_audience_join.sql: every run joins an audience's rows with its
-- snapshot on profile_id as the definition returns them (engine/
-- evaluate.c).
--
-- A run no longer compares the count and checksum sum of the
-- definition's rows with the last run's first: counting them meant
-- holding every row once more, which cost a run that changed little more
-- than the join it could skip.
ALTER TABLE audsync.sync_state
    DROP COLUMN rows_count,
    DROP COLUMN rows_sum;

-- The join takes a snapshot row of an audience for {key: true}, so a
-- computation keeps its kind as it keeps its key: an audience turned
-- trait would also change what its Mixpanel property means.
CREATE OR REPLACE FUNCTION audsync.computations_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.key IS NULL THEN
            NEW.key := audsync.snake_key(NEW.name);
        END IF;
    ELSIF NEW.key IS DISTINCT FROM OLD.key THEN
        RAISE EXCEPTION 'computation % keeps its key "%": a key never changes once created', OLD.id, OLD.key
            USING ERRCODE = 'check_violation',
                  HINT = 'create a new computation and retire the old one';
    ELSIF NEW.kind IS DISTINCT FROM OLD.kind THEN
        RAISE EXCEPTION 'computation % keeps its kind "%": an audience stays an audience and a trait a trait', OLD.key, OLD.kind
            USING ERRCODE = 'check_violation',
                  HINT = 'create a new computation and retire the old one';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
