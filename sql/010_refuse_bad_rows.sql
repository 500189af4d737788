-- 010_refuse_bad_rows.sql: a computation row that would harm Mixpanel's
-- data or other syncs is refused when it is written (DESIGN.md section 8).
-- The engine checks the same rules at run time, for rows written before
-- this migration: such a row fails only its own sync.

-- Why key cannot be a Mixpanel property of audsync's, or NULL. The same
-- rule is naming_key_problem() in engine/naming.c.
CREATE FUNCTION audsync.key_problem(key text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN key IS NULL OR key = '' THEN 'a key may not be empty'
        WHEN octet_length(key) > 255 THEN
            'a key is at most 255 bytes (Mixpanel cuts longer property names)'
        WHEN left(key, 1) = '$' OR left(key, 3) = 'mp_' THEN
            'keys starting with $ or mp_ are Mixpanel''s own'
        WHEN key IN ('time', 'distinct_id', 'ip', 'token', 'insert_id',
                     'audience_key', 'audience_name', 'trait_key') THEN
            'the key is reserved: Mixpanel or audsync''s own records already carry a property of that name'
    END
$$;

CREATE FUNCTION audsync.computations_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    why text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        why := audsync.key_problem(NEW.key);
        IF why IS NOT NULL THEN
            RAISE EXCEPTION 'computation key "%" refused: %', NEW.key, why
                USING ERRCODE = 'check_violation',
                      HINT = 'give the computation another name or key';
        END IF;
    END IF;
    IF NEW.lookback IS NOT NULL
       AND (NEW.lookback <= interval '0'
            OR NEW.lookback > interval '100 years') THEN
        RAISE EXCEPTION 'computation "%": lookback % must be positive and at most 100 years',
            NEW.key, NEW.lookback
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- After computations_key (triggers fire in name order), which derives
-- the key from the name.
CREATE TRIGGER computations_refuse
    BEFORE INSERT OR UPDATE OF lookback ON audsync.computations
    FOR EACH ROW EXECUTE FUNCTION audsync.computations_refuse();

-- distinct_ids longer than 255 bytes: Mixpanel cuts strings beyond that,
-- so two of them could become one profile. Also in engine/mp_payload.c.
CREATE OR REPLACE FUNCTION audsync.invalid_distinct_id(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v IS NULL OR octet_length(v) > 255
        OR translate(btrim(v, E' \t\n\r\f' || chr(11)),
        'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = ANY (ARRAY[
        '', '00000000-0000-0000-0000-000000000000', 'anon', 'anonymous',
        'nil', 'none', 'null', 'n/a', 'na', 'undefined', 'unknown', '<nil>',
        '0', '-1', 'true', 'false', '[]', '{}'])
$$;
