-- 008_rule_functions.sql: what compiled rule definitions (DESIGN.md
-- section 5) call besides PostgreSQL's own functions.

-- A property's text as a time for before_date and after_date, or NULL
-- when it is not one: a malformed date in one event must not fail the
-- whole evaluation. Only ISO-8601 shapes are read; a time without a zone
-- is in the session's zone (UTC in audsync's sessions).
CREATE FUNCTION audsync.rule_timestamptz(t text) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF t IS NULL OR t !~ '^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|z|[+-]\d\d(:?\d\d)?)?$' THEN
        RETURN NULL;
    END IF;
    RETURN t::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
