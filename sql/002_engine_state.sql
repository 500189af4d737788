-- 002_engine_state.sql: the engine's internal tables. Their shape is not
-- part of the contract; only audsync writes them.

-- What Mixpanel was last told, per sync and member profile: the value (an
-- object {key: value}; an audience is {key: true}), the as-of time of the
-- transition that set it (the time of its track events, so a re-send is a
-- duplicate Mixpanel drops), and the identifiers it was sent to, one per
-- line as "id_type<TAB>id_value<TAB>distinct_id". One narrow row per member
-- keeps the per-profile diff a single hash join. No foreign key: a million
-- rows are written per first sync, and per-row key checks would double
-- that; the syncs trigger below removes a deleted sync's rows instead.
CREATE TABLE audsync.snapshot_members (
    sync_id    integer NOT NULL,
    profile_id text NOT NULL,
    value      jsonb NOT NULL,
    since      timestamptz NOT NULL,
    targets    text NOT NULL DEFAULT '',
    -- A checksum of (profile_id, value): an unchanged run is recognised by
    -- the count and sum of these (sync_state) against the evaluation's.
    h          bigint GENERATED ALWAYS AS (hashtextextended(
                   profile_id || E'\x1f' || value::text, 7)) STORED,
    PRIMARY KEY (sync_id, profile_id)
);

CREATE FUNCTION audsync.forget_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM audsync.snapshot_members WHERE sync_id = OLD.id;
    RETURN OLD;
END
$$;
CREATE TRIGGER syncs_forget AFTER DELETE ON audsync.syncs
    FOR EACH ROW EXECUTE FUNCTION audsync.forget_sync();

-- The values Mixpanel refuses as a distinct_id (research/mixpanel-api.md
-- section 3), also in engine/mp_payload.c; a test keeps the two equal:
-- compared ASCII-case-insensitively after trimming ASCII white space,
-- whatever the database's locale.
CREATE FUNCTION audsync.invalid_distinct_id(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v IS NULL OR translate(btrim(v, E' \t\n\r\f' || chr(11)),
        'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = ANY (ARRAY[
        '', '00000000-0000-0000-0000-000000000000', 'anon', 'anonymous',
        'nil', 'none', 'null', 'n/a', 'na', 'undefined', 'unknown', '<nil>',
        '0', '-1', 'true', 'false', '[]', '{}'])
$$;

-- Schedule and diff bookkeeping per sync.
CREATE TABLE audsync.sync_state (
    sync_id       integer PRIMARY KEY
        REFERENCES audsync.syncs (id) ON DELETE CASCADE,
    last_as_of    timestamptz,
    ids_seen_upto timestamptz,
    last_run_id   bigint,
    -- The snapshot's row count and the sum of its checksums, kept up to
    -- date by each run, so an unchanged run reads only its own result.
    snap_count    bigint NOT NULL DEFAULT 0,
    snap_sum      numeric NOT NULL DEFAULT 0
);

-- Calls decided and not yet accepted by Mixpanel. One row holds up to a
-- page of records of one lane (newline-separated JSON objects), so a
-- million calls are a few thousand rows. A lane is a hash of the
-- distinct_id: rows of one lane go out in id order, so one person's
-- updates keep their order.
CREATE TABLE audsync.outbox (
    id             bigserial PRIMARY KEY,
    destination_id integer NOT NULL,
    sync_id        integer,
    run_id         bigint,
    lane           smallint NOT NULL,
    endpoint       smallint NOT NULL,
    n              integer NOT NULL,
    records        text NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_lane ON audsync.outbox (destination_id, lane, id);
-- Pages live for minutes: compressing them costs more than it saves.
ALTER TABLE audsync.outbox ALTER COLUMN records SET STORAGE EXTERNAL;

-- Delivery claims a lane by locking its row (FOR UPDATE SKIP LOCKED), so
-- several processes on several hosts share delivery without double sends.
CREATE TABLE audsync.outbox_lanes (
    destination_id integer NOT NULL,
    lane           smallint NOT NULL,
    PRIMARY KEY (destination_id, lane)
);

-- Records Mixpanel rejected for good, with its reason.
CREATE TABLE audsync.dead_letters (
    id             bigserial PRIMARY KEY,
    destination_id integer NOT NULL,
    sync_id        integer,
    run_id         bigint,
    lane           smallint NOT NULL,
    endpoint       smallint NOT NULL,
    record         text NOT NULL,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_dest ON audsync.dead_letters (destination_id);

-- New events wake the daemon (DESIGN.md section 9).
CREATE FUNCTION audsync.notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('audsync_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON audsync.events
    FOR EACH STATEMENT EXECUTE FUNCTION audsync.notify_events();
CREATE TRIGGER external_ids_notify AFTER INSERT ON audsync.external_ids
    FOR EACH STATEMENT EXECUTE FUNCTION audsync.notify_events();
