-- 001_schema.sql: the database contract of DESIGN.md section 3.
-- Applied by `audsync migrate` in one transaction, recorded in
-- audsync.schema_migrations.

CREATE SCHEMA IF NOT EXISTS audsync;

-- Source relations. A deployment may replace any of them with a view of the
-- same name and columns over its own tables.
CREATE TABLE audsync.external_ids (
    profile_id text NOT NULL,
    id_type    text NOT NULL,
    id_value   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX external_ids_identity
    ON audsync.external_ids (profile_id, id_type, id_value);
-- New identifiers are found by time, without scanning the graph.
CREATE INDEX external_ids_created ON audsync.external_ids (created_at);

CREATE TABLE audsync.events (
    profile_id text NOT NULL,
    event      text NOT NULL,
    properties jsonb NOT NULL DEFAULT '{}',
    ts         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_event_ts ON audsync.events (event, ts);
CREATE INDEX events_profile_ts ON audsync.events (profile_id, ts);

CREATE TABLE audsync.profile_traits (
    profile_id text PRIMARY KEY,
    traits     jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The key rule of DESIGN.md section 6, also in engine/naming.c. Non-ASCII
-- characters become '_' before lower-casing, so the database's locale
-- (which may lower-case some of them to ASCII) never changes a key.
CREATE FUNCTION audsync.snake_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT trim(both '_' from lower(
        regexp_replace(name, '[^A-Za-z0-9]+', '_', 'g')))
$$;

-- Definitions, written by users with plain SQL.
CREATE TABLE audsync.destinations (
    id            serial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    region        text NOT NULL DEFAULT 'us',
    api_base      text,
    project_token text,
    secret_env    text,
    project_id    text,
    use_people    boolean NOT NULL DEFAULT false,
    settings      jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE audsync.computations (
    id                serial PRIMARY KEY,
    key               text NOT NULL UNIQUE,
    name              text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('audience', 'trait')),
    definition_sql    text,
    definition        jsonb,
    lookback          interval,
    include_anonymous boolean NOT NULL DEFAULT false,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT computations_one_definition
        CHECK ((definition_sql IS NULL) <> (definition IS NULL)),
    CONSTRAINT computations_key_form
        CHECK (key ~ '^[a-z0-9]+(_[a-z0-9]+)*$')
);

-- The key is derived from the name when not given, and never changes:
-- Mixpanel profiles and reports are keyed by it.
CREATE FUNCTION audsync.computations_key() RETURNS trigger
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
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER computations_key BEFORE INSERT OR UPDATE ON audsync.computations
    FOR EACH ROW EXECUTE FUNCTION audsync.computations_key();

CREATE TABLE audsync.syncs (
    id             serial PRIMARY KEY,
    computation_id integer NOT NULL
        REFERENCES audsync.computations (id) ON DELETE CASCADE,
    destination_id integer NOT NULL
        REFERENCES audsync.destinations (id) ON DELETE CASCADE,
    mode           text NOT NULL CHECK (mode IN ('identify', 'track')),
    id_sync        text NOT NULL DEFAULT 'all'
        CHECK (id_sync IN ('all', 'first', 'last')),
    enabled        boolean NOT NULL DEFAULT true,
    UNIQUE (computation_id, destination_id)
);

CREATE TABLE audsync.runs (
    id          bigserial PRIMARY KEY,
    sync_id     integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('scheduled', 'manual', 'full')),
    as_of       timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'succeeded', 'failed')),
    members     bigint NOT NULL DEFAULT 0,
    entered     bigint NOT NULL DEFAULT 0,
    exited      bigint NOT NULL DEFAULT 0,
    changed     bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    calls       bigint NOT NULL DEFAULT 0,
    error       text
);
CREATE INDEX runs_sync ON audsync.runs (sync_id, id);
