-- pre-ledger.sql: a database synced by audsync at
-- 1009e1896ab60fe52be4c5a0a3e7044e49c592a8 (migrations 001-011),
-- written by tests/upgrade/make-fixture.sh; do not edit.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: audsync; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA audsync;


--
-- Name: computations_key(); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.computations_key() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: computations_refuse(); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.computations_refuse() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: forget_sync(); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.forget_sync() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM audsync.snapshot_members WHERE sync_id = OLD.id;
    RETURN OLD;
END
$$;


--
-- Name: invalid_distinct_id(text); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.invalid_distinct_id(v text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT v IS NULL OR octet_length(v) > 255
        OR translate(btrim(v, E' \t\n\r\f' || chr(11)),
        'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = ANY (ARRAY[
        '', '00000000-0000-0000-0000-000000000000', 'anon', 'anonymous',
        'nil', 'none', 'null', 'n/a', 'na', 'undefined', 'unknown', '<nil>',
        '0', '-1', 'true', 'false', '[]', '{}'])
$$;


--
-- Name: key_problem(text); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.key_problem(key text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
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
$_$;


--
-- Name: log_identifiers(); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.log_identifiers() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO audsync.identifier_log (profile_id)
        SELECT DISTINCT profile_id FROM new_ids;
    RETURN NULL;
END
$$;


--
-- Name: notify_events(); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.notify_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('audsync_events', '');
    RETURN NULL;
END
$$;


--
-- Name: rule_timestamptz(text); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.rule_timestamptz(t text) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $_$
BEGIN
    IF t IS NULL OR t !~ '^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|z|[+-]\d\d(:?\d\d)?)?$' THEN
        RETURN NULL;
    END IF;
    RETURN t::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$_$;


--
-- Name: snake_key(text); Type: FUNCTION; Schema: audsync; Owner: -
--

CREATE FUNCTION audsync.snake_key(name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    SELECT trim(both '_' from lower(
        regexp_replace(name, '[^A-Za-z0-9]+', '_', 'g')))
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: computations; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.computations (
    id integer NOT NULL,
    key text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    definition_sql text,
    definition jsonb,
    lookback interval,
    include_anonymous boolean DEFAULT false NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT computations_key_form CHECK ((key ~ '^[a-z0-9]+(_[a-z0-9]+)*$'::text)),
    CONSTRAINT computations_kind_check CHECK ((kind = ANY (ARRAY['audience'::text, 'trait'::text]))),
    CONSTRAINT computations_one_definition CHECK (((definition_sql IS NULL) <> (definition IS NULL)))
);


--
-- Name: computations_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.computations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: computations_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.computations_id_seq OWNED BY audsync.computations.id;


--
-- Name: dead_letters; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.dead_letters (
    id bigint NOT NULL,
    destination_id integer NOT NULL,
    sync_id integer,
    run_id bigint,
    lane smallint NOT NULL,
    endpoint smallint NOT NULL,
    record text NOT NULL,
    reason text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: dead_letters_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.dead_letters_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dead_letters_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.dead_letters_id_seq OWNED BY audsync.dead_letters.id;


--
-- Name: delivery_state; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.delivery_state (
    destination_id integer NOT NULL,
    failures bigint DEFAULT 0 NOT NULL,
    last_delivery_at timestamp with time zone,
    last_failure_at timestamp with time zone,
    stopped boolean DEFAULT false NOT NULL,
    last_error text
);


--
-- Name: destinations; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.destinations (
    id integer NOT NULL,
    name text NOT NULL,
    region text DEFAULT 'us'::text NOT NULL,
    api_base text,
    project_token text,
    secret_env text,
    project_id text,
    use_people boolean DEFAULT false NOT NULL,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL
);


--
-- Name: destinations_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.destinations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: destinations_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.destinations_id_seq OWNED BY audsync.destinations.id;


--
-- Name: events; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.events (
    profile_id text NOT NULL,
    event text NOT NULL,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    ts timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: external_ids; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.external_ids (
    profile_id text NOT NULL,
    id_type text NOT NULL,
    id_value text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: forwarded; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.forwarded (
    destination_id integer NOT NULL,
    message_id text NOT NULL,
    forwarded_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: identifier_log; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.identifier_log (
    profile_id text NOT NULL,
    xact xid8 DEFAULT pg_current_xact_id() NOT NULL
);


--
-- Name: inbound; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.inbound (
    id bigint NOT NULL,
    destination text NOT NULL,
    message jsonb NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: inbound_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.inbound_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: inbound_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.inbound_id_seq OWNED BY audsync.inbound.id;


--
-- Name: inbound_rejected; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.inbound_rejected (
    id bigint NOT NULL,
    destination text NOT NULL,
    message jsonb NOT NULL,
    received_at timestamp with time zone NOT NULL,
    reason text NOT NULL,
    rejected_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: outbox; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.outbox (
    id bigint NOT NULL,
    destination_id integer NOT NULL,
    sync_id integer,
    run_id bigint,
    lane smallint NOT NULL,
    endpoint smallint NOT NULL,
    n integer NOT NULL,
    records text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: outbox_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.outbox_id_seq OWNED BY audsync.outbox.id;


--
-- Name: outbox_lanes; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.outbox_lanes (
    destination_id integer NOT NULL,
    lane smallint NOT NULL
);


--
-- Name: profile_traits; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.profile_traits (
    profile_id text NOT NULL,
    traits jsonb DEFAULT '{}'::jsonb NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: runs; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.runs (
    id bigint NOT NULL,
    sync_id integer NOT NULL,
    kind text NOT NULL,
    as_of timestamp with time zone NOT NULL,
    started_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    finished_at timestamp with time zone,
    status text DEFAULT 'running'::text NOT NULL,
    members bigint DEFAULT 0 NOT NULL,
    entered bigint DEFAULT 0 NOT NULL,
    exited bigint DEFAULT 0 NOT NULL,
    changed bigint DEFAULT 0 NOT NULL,
    skipped bigint DEFAULT 0 NOT NULL,
    calls bigint DEFAULT 0 NOT NULL,
    error text,
    CONSTRAINT runs_kind_check CHECK ((kind = ANY (ARRAY['scheduled'::text, 'manual'::text, 'full'::text]))),
    CONSTRAINT runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'succeeded'::text, 'failed'::text])))
);


--
-- Name: runs_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: runs_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.runs_id_seq OWNED BY audsync.runs.id;


--
-- Name: schema_migrations; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: snapshot_members; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.snapshot_members (
    sync_id integer NOT NULL,
    profile_id text NOT NULL,
    value jsonb NOT NULL,
    since timestamp with time zone NOT NULL,
    targets text DEFAULT ''::text NOT NULL,
    h bigint GENERATED ALWAYS AS (hashtextextended(((profile_id || ''::text) || (value)::text), (7)::bigint)) STORED
);
ALTER TABLE ONLY audsync.snapshot_members ALTER COLUMN sync_id SET STATISTICS 10;
ALTER TABLE ONLY audsync.snapshot_members ALTER COLUMN profile_id SET STATISTICS 10;
ALTER TABLE ONLY audsync.snapshot_members ALTER COLUMN value SET STATISTICS 10;
ALTER TABLE ONLY audsync.snapshot_members ALTER COLUMN since SET STATISTICS 10;
ALTER TABLE ONLY audsync.snapshot_members ALTER COLUMN targets SET STATISTICS 10;
ALTER TABLE ONLY audsync.snapshot_members ALTER COLUMN h SET STATISTICS 10;


--
-- Name: sync_state; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.sync_state (
    sync_id integer NOT NULL,
    last_as_of timestamp with time zone,
    ids_seen_upto timestamp with time zone,
    last_run_id bigint,
    snap_count bigint DEFAULT 0 NOT NULL,
    ids_snapshot pg_snapshot
);


--
-- Name: syncs; Type: TABLE; Schema: audsync; Owner: -
--

CREATE TABLE audsync.syncs (
    id integer NOT NULL,
    computation_id integer NOT NULL,
    destination_id integer NOT NULL,
    mode text NOT NULL,
    id_sync text DEFAULT 'all'::text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    CONSTRAINT syncs_id_sync_check CHECK ((id_sync = ANY (ARRAY['all'::text, 'first'::text, 'last'::text]))),
    CONSTRAINT syncs_mode_check CHECK ((mode = ANY (ARRAY['identify'::text, 'track'::text])))
);


--
-- Name: syncs_id_seq; Type: SEQUENCE; Schema: audsync; Owner: -
--

CREATE SEQUENCE audsync.syncs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: syncs_id_seq; Type: SEQUENCE OWNED BY; Schema: audsync; Owner: -
--

ALTER SEQUENCE audsync.syncs_id_seq OWNED BY audsync.syncs.id;


--
-- Name: computations id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.computations ALTER COLUMN id SET DEFAULT nextval('audsync.computations_id_seq'::regclass);


--
-- Name: dead_letters id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.dead_letters ALTER COLUMN id SET DEFAULT nextval('audsync.dead_letters_id_seq'::regclass);


--
-- Name: destinations id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.destinations ALTER COLUMN id SET DEFAULT nextval('audsync.destinations_id_seq'::regclass);


--
-- Name: inbound id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.inbound ALTER COLUMN id SET DEFAULT nextval('audsync.inbound_id_seq'::regclass);


--
-- Name: outbox id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.outbox ALTER COLUMN id SET DEFAULT nextval('audsync.outbox_id_seq'::regclass);


--
-- Name: runs id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.runs ALTER COLUMN id SET DEFAULT nextval('audsync.runs_id_seq'::regclass);


--
-- Name: syncs id; Type: DEFAULT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.syncs ALTER COLUMN id SET DEFAULT nextval('audsync.syncs_id_seq'::regclass);


--
-- Data for Name: computations; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.computations VALUES (1, 'vip', 'VIP', 'audience', 'SELECT profile_id FROM (SELECT DISTINCT ON (profile_id) profile_id, properties FROM audsync.events WHERE event = ''Set'' AND ts <= $1 ORDER BY profile_id, ts DESC) x WHERE properties ? ''v''', NULL, NULL, false, true, '2026-12-01 05:06:53.886876+00', '2026-12-01 05:06:53.886876+00');
INSERT INTO audsync.computations VALUES (2, 'vip_track', 'VIP Track', 'audience', 'SELECT profile_id FROM (SELECT DISTINCT ON (profile_id) profile_id, properties FROM audsync.events WHERE event = ''Set'' AND ts <= $1 ORDER BY profile_id, ts DESC) x WHERE properties ? ''v''', NULL, NULL, true, true, '2026-12-01 05:06:53.886876+00', '2026-12-01 05:06:53.886876+00');
INSERT INTO audsync.computations VALUES (3, 'vip_first', 'VIP First', 'audience', 'SELECT profile_id FROM (SELECT DISTINCT ON (profile_id) profile_id, properties FROM audsync.events WHERE event = ''Set'' AND ts <= $1 ORDER BY profile_id, ts DESC) x WHERE properties ? ''v''', NULL, NULL, true, true, '2026-12-01 05:06:53.886876+00', '2026-12-01 05:06:53.886876+00');
INSERT INTO audsync.computations VALUES (4, 'scoring', 'Scoring', 'trait', 'SELECT profile_id, (properties->>''s'')::int AS score, (properties->>''t'')::text AS tier FROM (SELECT DISTINCT ON (profile_id) profile_id, properties FROM audsync.events WHERE event = ''Score'' AND ts <= $1 ORDER BY profile_id, ts DESC) x WHERE properties ? ''s''', NULL, NULL, true, true, '2026-12-01 05:06:53.886876+00', '2026-12-01 05:06:53.886876+00');
INSERT INTO audsync.computations VALUES (5, 'points', 'Points', 'trait', 'SELECT profile_id, (properties->>''s'')::int AS pts, (properties->>''t'')::text AS level FROM (SELECT DISTINCT ON (profile_id) profile_id, properties FROM audsync.events WHERE event = ''Score'' AND ts <= $1 ORDER BY profile_id, ts DESC) x WHERE properties ? ''s''', NULL, NULL, false, true, '2026-12-01 05:06:53.886876+00', '2026-12-01 05:06:53.886876+00');
INSERT INTO audsync.computations VALUES (6, 'ranking', 'Ranking', 'trait', 'SELECT profile_id, (properties->>''s'')::int AS rank, (properties->>''t'')::text AS grade FROM (SELECT DISTINCT ON (profile_id) profile_id, properties FROM audsync.events WHERE event = ''Score'' AND ts <= $1 ORDER BY profile_id, ts DESC) x WHERE properties ? ''s''', NULL, NULL, true, true, '2026-12-01 05:06:53.886876+00', '2026-12-01 05:06:53.886876+00');


--
-- Data for Name: dead_letters; Type: TABLE DATA; Schema: audsync; Owner: -
--



--
-- Data for Name: delivery_state; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.delivery_state VALUES (1, 0, '2026-12-01 05:08:05.227041+00', NULL, false, NULL);


--
-- Data for Name: destinations; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.destinations VALUES (1, 'mp', 'us', 'http://127.0.0.1:0', 'test-token', 'MIXPANEL_API_SECRET', NULL, true, '{}');


--
-- Data for Name: events; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.events VALUES ('p1', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p2', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p3', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p4', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p5', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p6', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p7', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p10', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p12', 'Set', '{"v": 1}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p1', 'Score', '{"s": 10, "t": "gold"}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p2', 'Score', '{"s": 20}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p3', 'Score', '{"s": 30, "t": "silver"}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p5', 'Score', '{"s": 50, "t": "gold"}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p6', 'Score', '{"s": 60, "t": "gold"}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p11', 'Score', '{"s": 11, "t": "bronze"}', '2026-05-31 00:00:00+00');
INSERT INTO audsync.events VALUES ('p8', 'Set', '{"v": 1}', '2026-06-01 13:00:00+00');
INSERT INTO audsync.events VALUES ('p8', 'Score', '{"s": 80, "t": "gold"}', '2026-06-01 13:00:00+00');
INSERT INTO audsync.events VALUES ('p12', 'Set', '{}', '2026-06-01 13:00:00+00');
INSERT INTO audsync.events VALUES ('p5', 'Score', '{"s": 51}', '2026-06-01 13:00:00+00');
INSERT INTO audsync.events VALUES ('p11', 'Score', '{"s": 12, "t": "bronze"}', '2026-06-01 13:00:00+00');
INSERT INTO audsync.events VALUES ('p2', 'Set', '{}', '2026-06-02 10:00:00+00');
INSERT INTO audsync.events VALUES ('p2', 'Score', '{}', '2026-06-02 10:00:00+00');
INSERT INTO audsync.events VALUES ('p3', 'Set', '{}', '2026-06-02 10:00:00+00');
INSERT INTO audsync.events VALUES ('p5', 'Score', '{}', '2026-06-02 10:00:00+00');
INSERT INTO audsync.events VALUES ('p9', 'Set', '{"v": 1}', '2026-06-02 10:00:00+00');
INSERT INTO audsync.events VALUES ('p9', 'Score', '{"s": 90, "t": "silver"}', '2026-06-02 10:00:00+00');
INSERT INTO audsync.events VALUES ('p12', 'Set', '{"v": 1}', '2026-06-02 10:00:00+00');


--
-- Data for Name: external_ids; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.external_ids VALUES ('p1', 'user_id', 'u1', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p1', 'email', 'p1@x.io', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p2', 'user_id', 'u2', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p2', 'email', 'p2a@x.io', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p2', 'email', 'p2b@x.io', '2026-05-03 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p2', 'anonymous_id', 'a2', '2026-04-30 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p3', 'anonymous_id', 'a3a', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p3', 'anonymous_id', 'a3b', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p3', 'email', 'p3@x.io', '2026-05-03 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p4', 'anonymous_id', 'a4', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p5', 'user_id', 'u5', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p5', 'user_id', 'null', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p5', 'email', 'p5@x.io', '2026-05-03 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p6', 'user_id', 'u6', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p6', 'anonymous_id', 'a6a', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p7', 'email', 'p7@x.io', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p10', 'user_id', 'u10', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p10', 'email', 'p10@x.io', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p11', 'user_id', 'u11', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p12', 'user_id', 'u12', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p12', 'email', 'p12@x.io', '2026-05-02 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p4', 'user_id', 'u4', '2026-06-01 10:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p6', 'anonymous_id', 'a6b', '2026-06-01 11:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p8', 'user_id', 'u8', '2026-06-01 12:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p8', 'email', 'p8@x.io', '2026-06-01 12:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p9', 'user_id', 'u9', '2026-06-02 08:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p9', 'email', 'p9new@x.io', '2026-06-02 09:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p9', 'email', 'p9old@x.io', '2026-05-01 00:00:00+00');
INSERT INTO audsync.external_ids VALUES ('p1', 'email', 'p1new@x.io', '2026-06-04 06:00:00+00');


--
-- Data for Name: forwarded; Type: TABLE DATA; Schema: audsync; Owner: -
--



--
-- Data for Name: identifier_log; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.identifier_log VALUES ('p8', '777');
INSERT INTO audsync.identifier_log VALUES ('p6', '777');
INSERT INTO audsync.identifier_log VALUES ('p4', '777');
INSERT INTO audsync.identifier_log VALUES ('p9', '810');
INSERT INTO audsync.identifier_log VALUES ('p1', '878');


--
-- Data for Name: inbound; Type: TABLE DATA; Schema: audsync; Owner: -
--



--
-- Data for Name: inbound_rejected; Type: TABLE DATA; Schema: audsync; Owner: -
--



--
-- Data for Name: outbox; Type: TABLE DATA; Schema: audsync; Owner: -
--



--
-- Data for Name: outbox_lanes; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.outbox_lanes VALUES (1, 0);
INSERT INTO audsync.outbox_lanes VALUES (1, 1);
INSERT INTO audsync.outbox_lanes VALUES (1, 2);
INSERT INTO audsync.outbox_lanes VALUES (1, 3);
INSERT INTO audsync.outbox_lanes VALUES (1, 4);
INSERT INTO audsync.outbox_lanes VALUES (1, 5);
INSERT INTO audsync.outbox_lanes VALUES (1, 6);
INSERT INTO audsync.outbox_lanes VALUES (1, 7);
INSERT INTO audsync.outbox_lanes VALUES (1, 8);
INSERT INTO audsync.outbox_lanes VALUES (1, 9);
INSERT INTO audsync.outbox_lanes VALUES (1, 10);
INSERT INTO audsync.outbox_lanes VALUES (1, 11);
INSERT INTO audsync.outbox_lanes VALUES (1, 12);
INSERT INTO audsync.outbox_lanes VALUES (1, 13);
INSERT INTO audsync.outbox_lanes VALUES (1, 14);
INSERT INTO audsync.outbox_lanes VALUES (1, 15);
INSERT INTO audsync.outbox_lanes VALUES (1, 16);
INSERT INTO audsync.outbox_lanes VALUES (1, 17);
INSERT INTO audsync.outbox_lanes VALUES (1, 18);
INSERT INTO audsync.outbox_lanes VALUES (1, 19);
INSERT INTO audsync.outbox_lanes VALUES (1, 20);
INSERT INTO audsync.outbox_lanes VALUES (1, 21);
INSERT INTO audsync.outbox_lanes VALUES (1, 22);
INSERT INTO audsync.outbox_lanes VALUES (1, 23);
INSERT INTO audsync.outbox_lanes VALUES (1, 24);
INSERT INTO audsync.outbox_lanes VALUES (1, 25);
INSERT INTO audsync.outbox_lanes VALUES (1, 26);
INSERT INTO audsync.outbox_lanes VALUES (1, 27);
INSERT INTO audsync.outbox_lanes VALUES (1, 28);
INSERT INTO audsync.outbox_lanes VALUES (1, 29);
INSERT INTO audsync.outbox_lanes VALUES (1, 30);
INSERT INTO audsync.outbox_lanes VALUES (1, 31);
INSERT INTO audsync.outbox_lanes VALUES (1, 32);
INSERT INTO audsync.outbox_lanes VALUES (1, 33);
INSERT INTO audsync.outbox_lanes VALUES (1, 34);
INSERT INTO audsync.outbox_lanes VALUES (1, 35);
INSERT INTO audsync.outbox_lanes VALUES (1, 36);
INSERT INTO audsync.outbox_lanes VALUES (1, 37);
INSERT INTO audsync.outbox_lanes VALUES (1, 38);
INSERT INTO audsync.outbox_lanes VALUES (1, 39);
INSERT INTO audsync.outbox_lanes VALUES (1, 40);
INSERT INTO audsync.outbox_lanes VALUES (1, 41);
INSERT INTO audsync.outbox_lanes VALUES (1, 42);
INSERT INTO audsync.outbox_lanes VALUES (1, 43);
INSERT INTO audsync.outbox_lanes VALUES (1, 44);
INSERT INTO audsync.outbox_lanes VALUES (1, 45);
INSERT INTO audsync.outbox_lanes VALUES (1, 46);
INSERT INTO audsync.outbox_lanes VALUES (1, 47);
INSERT INTO audsync.outbox_lanes VALUES (1, 48);
INSERT INTO audsync.outbox_lanes VALUES (1, 49);
INSERT INTO audsync.outbox_lanes VALUES (1, 50);
INSERT INTO audsync.outbox_lanes VALUES (1, 51);
INSERT INTO audsync.outbox_lanes VALUES (1, 52);
INSERT INTO audsync.outbox_lanes VALUES (1, 53);
INSERT INTO audsync.outbox_lanes VALUES (1, 54);
INSERT INTO audsync.outbox_lanes VALUES (1, 55);
INSERT INTO audsync.outbox_lanes VALUES (1, 56);
INSERT INTO audsync.outbox_lanes VALUES (1, 57);
INSERT INTO audsync.outbox_lanes VALUES (1, 58);
INSERT INTO audsync.outbox_lanes VALUES (1, 59);
INSERT INTO audsync.outbox_lanes VALUES (1, 60);
INSERT INTO audsync.outbox_lanes VALUES (1, 61);
INSERT INTO audsync.outbox_lanes VALUES (1, 62);
INSERT INTO audsync.outbox_lanes VALUES (1, 63);


--
-- Data for Name: profile_traits; Type: TABLE DATA; Schema: audsync; Owner: -
--



--
-- Data for Name: runs; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.runs VALUES (1, 1, 'manual', '2026-06-01 00:00:00+00', '2026-12-01 05:06:58.045307+00', '2026-12-01 05:06:58.953894+00', 'succeeded', 9, 9, 0, 0, 4, 12, NULL);
INSERT INTO audsync.runs VALUES (2, 2, 'manual', '2026-06-01 00:00:00+00', '2026-12-01 05:06:59.023413+00', '2026-12-01 05:06:59.727478+00', 'succeeded', 9, 9, 0, 0, 2, 8, NULL);
INSERT INTO audsync.runs VALUES (3, 3, 'manual', '2026-06-01 00:00:00+00', '2026-12-01 05:06:59.848266+00', '2026-12-01 05:07:00.737797+00', 'succeeded', 9, 9, 0, 0, 2, 16, NULL);
INSERT INTO audsync.runs VALUES (4, 4, 'manual', '2026-06-01 00:00:00+00', '2026-12-01 05:07:00.815765+00', '2026-12-01 05:07:02.272333+00', 'succeeded', 6, 6, 0, 0, 1, 12, NULL);
INSERT INTO audsync.runs VALUES (5, 5, 'manual', '2026-06-01 00:00:00+00', '2026-12-01 05:07:02.363405+00', '2026-12-01 05:07:03.079938+00', 'succeeded', 6, 6, 0, 0, 2, 9, NULL);
INSERT INTO audsync.runs VALUES (6, 6, 'manual', '2026-06-01 00:00:00+00', '2026-12-01 05:07:03.156286+00', '2026-12-01 05:07:03.759552+00', 'succeeded', 6, 6, 0, 0, 1, 12, NULL);
INSERT INTO audsync.runs VALUES (7, 1, 'manual', '2026-06-02 00:00:00+00', '2026-12-01 05:07:15.567581+00', '2026-12-01 05:07:16.49397+00', 'succeeded', 9, 1, 1, 0, 0, 5, NULL);
INSERT INTO audsync.runs VALUES (8, 2, 'manual', '2026-06-02 00:00:00+00', '2026-12-01 05:07:16.52321+00', '2026-12-01 05:07:16.79715+00', 'succeeded', 9, 1, 1, 0, 0, 4, NULL);
INSERT INTO audsync.runs VALUES (9, 3, 'manual', '2026-06-02 00:00:00+00', '2026-12-01 05:07:16.837762+00', '2026-12-01 05:07:17.555715+00', 'succeeded', 9, 1, 1, 0, 0, 6, NULL);
INSERT INTO audsync.runs VALUES (10, 4, 'manual', '2026-06-02 00:00:00+00', '2026-12-01 05:07:17.742868+00', '2026-12-01 05:07:18.750614+00', 'succeeded', 7, 1, 0, 2, 1, 5, NULL);
INSERT INTO audsync.runs VALUES (11, 5, 'manual', '2026-06-02 00:00:00+00', '2026-12-01 05:07:18.86324+00', '2026-12-01 05:07:19.27596+00', 'succeeded', 7, 1, 0, 2, 1, 5, NULL);
INSERT INTO audsync.runs VALUES (12, 6, 'manual', '2026-06-02 00:00:00+00', '2026-12-01 05:07:19.432692+00', '2026-12-01 05:07:20.596118+00', 'succeeded', 7, 1, 0, 2, 1, 6, NULL);
INSERT INTO audsync.runs VALUES (13, 1, 'manual', '2026-06-03 00:00:00+00', '2026-12-01 05:07:34.327936+00', '2026-12-01 05:07:35.191321+00', 'succeeded', 9, 2, 2, 0, 0, 8, NULL);
INSERT INTO audsync.runs VALUES (14, 2, 'manual', '2026-06-03 00:00:00+00', '2026-12-01 05:07:35.283308+00', '2026-12-01 05:07:35.987506+00', 'succeeded', 9, 2, 2, 0, 0, 4, NULL);
INSERT INTO audsync.runs VALUES (15, 3, 'manual', '2026-06-03 00:00:00+00', '2026-12-01 05:07:36.123513+00', '2026-12-01 05:07:37.10497+00', 'succeeded', 9, 2, 2, 0, 0, 9, NULL);
INSERT INTO audsync.runs VALUES (16, 4, 'manual', '2026-06-03 00:00:00+00', '2026-12-01 05:07:37.167408+00', '2026-12-01 05:07:37.631519+00', 'succeeded', 6, 1, 2, 0, 0, 7, NULL);
INSERT INTO audsync.runs VALUES (17, 5, 'manual', '2026-06-03 00:00:00+00', '2026-12-01 05:07:37.670614+00', '2026-12-01 05:07:38.373422+00', 'succeeded', 6, 1, 2, 0, 0, 4, NULL);
INSERT INTO audsync.runs VALUES (18, 6, 'manual', '2026-06-03 00:00:00+00', '2026-12-01 05:07:38.431296+00', '2026-12-01 05:07:39.307325+00', 'succeeded', 6, 1, 2, 0, 0, 7, NULL);
INSERT INTO audsync.runs VALUES (19, 1, 'manual', '2026-06-04 00:00:00+00', '2026-12-01 05:07:44.967502+00', '2026-12-01 05:07:46.071487+00', 'succeeded', 9, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (20, 2, 'manual', '2026-06-04 00:00:00+00', '2026-12-01 05:07:46.127355+00', '2026-12-01 05:07:46.626339+00', 'succeeded', 9, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (21, 3, 'manual', '2026-06-04 00:00:00+00', '2026-12-01 05:07:46.691639+00', '2026-12-01 05:07:47.563696+00', 'succeeded', 9, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (22, 4, 'manual', '2026-06-04 00:00:00+00', '2026-12-01 05:07:47.720916+00', '2026-12-01 05:07:49.334031+00', 'succeeded', 6, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (23, 5, 'manual', '2026-06-04 00:00:00+00', '2026-12-01 05:07:49.483461+00', '2026-12-01 05:07:50.771494+00', 'succeeded', 6, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (24, 6, 'manual', '2026-06-04 00:00:00+00', '2026-12-01 05:07:50.881401+00', '2026-12-01 05:07:52.088014+00', 'succeeded', 6, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (25, 1, 'manual', '2026-06-05 00:00:00+00', '2026-12-01 05:07:58.961784+00', '2026-12-01 05:07:59.885643+00', 'succeeded', 9, 0, 0, 0, 0, 1, NULL);
INSERT INTO audsync.runs VALUES (26, 2, 'manual', '2026-06-05 00:00:00+00', '2026-12-01 05:07:59.978448+00', '2026-12-01 05:08:00.646356+00', 'succeeded', 9, 0, 0, 0, 0, 1, NULL);
INSERT INTO audsync.runs VALUES (27, 3, 'manual', '2026-06-05 00:00:00+00', '2026-12-01 05:08:00.731134+00', '2026-12-01 05:08:01.567941+00', 'succeeded', 9, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (28, 4, 'manual', '2026-06-05 00:00:00+00', '2026-12-01 05:08:01.645681+00', '2026-12-01 05:08:02.263639+00', 'succeeded', 6, 0, 0, 0, 0, 0, NULL);
INSERT INTO audsync.runs VALUES (29, 5, 'manual', '2026-06-05 00:00:00+00', '2026-12-01 05:08:02.299659+00', '2026-12-01 05:08:03.35664+00', 'succeeded', 6, 0, 0, 0, 0, 2, NULL);
INSERT INTO audsync.runs VALUES (30, 6, 'manual', '2026-06-05 00:00:00+00', '2026-12-01 05:08:03.41938+00', '2026-12-01 05:08:04.427957+00', 'succeeded', 6, 0, 0, 0, 0, 1, NULL);


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.schema_migrations VALUES (1, '001_schema.sql', '2026-12-01 05:06:48.895187+00');
INSERT INTO audsync.schema_migrations VALUES (2, '002_engine_state.sql', '2026-12-01 05:06:49.419416+00');
INSERT INTO audsync.schema_migrations VALUES (3, '003_identifier_log.sql', '2026-12-01 05:06:49.668653+00');
INSERT INTO audsync.schema_migrations VALUES (4, '004_rows_checksum.sql', '2026-12-01 05:06:49.84488+00');
INSERT INTO audsync.schema_migrations VALUES (5, '005_audience_join.sql', '2026-12-01 05:06:49.958276+00');
INSERT INTO audsync.schema_migrations VALUES (6, '006_snapshot_statistics.sql', '2026-12-01 05:06:50.504639+00');
INSERT INTO audsync.schema_migrations VALUES (7, '007_outbox_lz4.sql', '2026-12-01 05:06:50.544229+00');
INSERT INTO audsync.schema_migrations VALUES (8, '008_rule_functions.sql', '2026-12-01 05:06:50.692858+00');
INSERT INTO audsync.schema_migrations VALUES (9, '009_forward.sql', '2026-12-01 05:06:50.791704+00');
INSERT INTO audsync.schema_migrations VALUES (10, '010_refuse_bad_rows.sql', '2026-12-01 05:06:50.899085+00');
INSERT INTO audsync.schema_migrations VALUES (11, '011_delivery_state.sql', '2026-12-01 05:06:51.019041+00');


--
-- Data for Name: snapshot_members; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.snapshot_members VALUES (1, 'p10', '{"vip": true}', '2026-06-01 00:00:00+00', 'user_id	u10	u10
email	p10@x.io	u10', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p5', '{"vip": true}', '2026-06-01 00:00:00+00', 'user_id	u5	u5
email	p5@x.io	u5', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p7', '{"vip": true}', '2026-06-01 00:00:00+00', '', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p10', '{"vip_track": true}', '2026-06-01 00:00:00+00', 'user_id	u10	u10
email	p10@x.io	u10', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p5', '{"vip_track": true}', '2026-06-01 00:00:00+00', 'user_id	u5	u5
email	p5@x.io	u5', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p7', '{"vip_track": true}', '2026-06-01 00:00:00+00', '', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p10', '{"vip_first": true}', '2026-06-01 00:00:00+00', 'user_id	u10	u10
email	p10@x.io	u10', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p5', '{"vip_first": true}', '2026-06-01 00:00:00+00', 'user_id	u5	u5
email	p5@x.io	u5', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p7', '{"vip_first": true}', '2026-06-01 00:00:00+00', '', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (4, 'p3', '{"tier": "silver", "score": 30}', '2026-06-01 00:00:00+00', 'anonymous_id	a3a	a3a
email	p3@x.io	a3b', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (5, 'p3', '{"pts": 30, "level": "silver"}', '2026-06-01 00:00:00+00', '', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (6, 'p3', '{"rank": 30, "grade": "silver"}', '2026-06-01 00:00:00+00', 'anonymous_id	a3b	a3b
email	p3@x.io	a3b', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p4', '{"vip": true}', '2026-06-01 00:00:00+00', 'user_id	u4	u4', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p6', '{"vip": true}', '2026-06-01 00:00:00+00', 'user_id	u6	u6', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p8', '{"vip": true}', '2026-06-02 00:00:00+00', 'email	p8@x.io	u8
user_id	u8	u8', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p4', '{"vip_track": true}', '2026-06-01 00:00:00+00', 'anonymous_id	a4	u4
user_id	u4	u4', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p6', '{"vip_track": true}', '2026-06-01 00:00:00+00', 'user_id	u6	u6
anonymous_id	a6b	u6', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p8', '{"vip_track": true}', '2026-06-02 00:00:00+00', 'email	p8@x.io	u8
user_id	u8	u8', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p4', '{"vip_first": true}', '2026-06-01 00:00:00+00', 'anonymous_id	a4	u4
user_id	u4	u4', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p6', '{"vip_first": true}', '2026-06-01 00:00:00+00', 'user_id	u6	u6
anonymous_id	a6a	u6', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p8', '{"vip_first": true}', '2026-06-02 00:00:00+00', 'email	p8@x.io	u8
user_id	u8	u8', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (4, 'p11', '{"tier": "bronze", "score": 12}', '2026-06-02 00:00:00+00', 'user_id	u11	u11', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (4, 'p6', '{"tier": "gold", "score": 60}', '2026-06-01 00:00:00+00', 'user_id	u6	u6
anonymous_id	a6a	u6', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (4, 'p8', '{"tier": "gold", "score": 80}', '2026-06-02 00:00:00+00', 'email	p8@x.io	u8
user_id	u8	u8', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (5, 'p11', '{"pts": 12, "level": "bronze"}', '2026-06-02 00:00:00+00', 'user_id	u11	u11', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (5, 'p6', '{"pts": 60, "level": "gold"}', '2026-06-01 00:00:00+00', 'user_id	u6	u6', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (5, 'p8', '{"pts": 80, "level": "gold"}', '2026-06-02 00:00:00+00', 'email	p8@x.io	u8
user_id	u8	u8', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (6, 'p11', '{"rank": 12, "grade": "bronze"}', '2026-06-02 00:00:00+00', 'user_id	u11	u11', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (6, 'p6', '{"rank": 60, "grade": "gold"}', '2026-06-01 00:00:00+00', 'user_id	u6	u6
anonymous_id	a6b	u6', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (6, 'p8', '{"rank": 80, "grade": "gold"}', '2026-06-02 00:00:00+00', 'email	p8@x.io	u8
user_id	u8	u8', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p12', '{"vip": true}', '2026-06-03 00:00:00+00', 'user_id	u12	u12
email	p12@x.io	u12', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p9', '{"vip": true}', '2026-06-03 00:00:00+00', 'email	p9old@x.io	u9
user_id	u9	u9
email	p9new@x.io	u9', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p12', '{"vip_track": true}', '2026-06-03 00:00:00+00', 'user_id	u12	u12
email	p12@x.io	u12', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p9', '{"vip_track": true}', '2026-06-03 00:00:00+00', 'user_id	u9	u9
email	p9new@x.io	u9', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p12', '{"vip_first": true}', '2026-06-03 00:00:00+00', 'user_id	u12	u12
email	p12@x.io	u12', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p9', '{"vip_first": true}', '2026-06-03 00:00:00+00', 'email	p9old@x.io	u9
user_id	u9	u9', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (4, 'p9', '{"tier": "silver", "score": 90}', '2026-06-03 00:00:00+00', 'email	p9old@x.io	u9
user_id	u9	u9', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (5, 'p9', '{"pts": 90, "level": "silver"}', '2026-06-03 00:00:00+00', 'email	p9old@x.io	u9
user_id	u9	u9
email	p9new@x.io	u9', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (6, 'p9', '{"rank": 90, "grade": "silver"}', '2026-06-03 00:00:00+00', 'user_id	u9	u9
email	p9new@x.io	u9', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (1, 'p1', '{"vip": true}', '2026-06-01 00:00:00+00', 'user_id	u1	u1
email	p1@x.io	u1
email	p1new@x.io	u1', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (2, 'p1', '{"vip_track": true}', '2026-06-01 00:00:00+00', 'user_id	u1	u1
email	p1new@x.io	u1', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (3, 'p1', '{"vip_first": true}', '2026-06-01 00:00:00+00', 'user_id	u1	u1
email	p1@x.io	u1', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (4, 'p1', '{"tier": "gold", "score": 10}', '2026-06-01 00:00:00+00', 'user_id	u1	u1
email	p1@x.io	u1', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (5, 'p1', '{"pts": 10, "level": "gold"}', '2026-06-01 00:00:00+00', 'user_id	u1	u1
email	p1@x.io	u1
email	p1new@x.io	u1', DEFAULT);
INSERT INTO audsync.snapshot_members VALUES (6, 'p1', '{"rank": 10, "grade": "gold"}', '2026-06-01 00:00:00+00', 'user_id	u1	u1
email	p1new@x.io	u1', DEFAULT);


--
-- Data for Name: sync_state; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.sync_state VALUES (1, '2026-06-05 00:00:00+00', '2026-12-01 05:07:59.443087+00', 25, 9, '883:883:');
INSERT INTO audsync.sync_state VALUES (2, '2026-06-05 00:00:00+00', '2026-12-01 05:08:00.264722+00', 26, 9, '886:886:');
INSERT INTO audsync.sync_state VALUES (3, '2026-06-05 00:00:00+00', '2026-12-01 05:08:01.087072+00', 27, 9, '889:889:');
INSERT INTO audsync.sync_state VALUES (4, '2026-06-05 00:00:00+00', '2026-12-01 05:08:01.847307+00', 28, 6, '893:893:');
INSERT INTO audsync.sync_state VALUES (5, '2026-06-05 00:00:00+00', '2026-12-01 05:08:02.630457+00', 29, 6, '897:897:');
INSERT INTO audsync.sync_state VALUES (6, '2026-06-05 00:00:00+00', '2026-12-01 05:08:03.967272+00', 30, 6, '901:901:');


--
-- Data for Name: syncs; Type: TABLE DATA; Schema: audsync; Owner: -
--

INSERT INTO audsync.syncs VALUES (1, 1, 1, 'identify', 'all', true);
INSERT INTO audsync.syncs VALUES (2, 2, 1, 'track', 'last', true);
INSERT INTO audsync.syncs VALUES (3, 3, 1, 'identify', 'first', true);
INSERT INTO audsync.syncs VALUES (4, 4, 1, 'identify', 'first', true);
INSERT INTO audsync.syncs VALUES (5, 5, 1, 'track', 'all', true);
INSERT INTO audsync.syncs VALUES (6, 6, 1, 'identify', 'last', true);


--
-- Name: computations_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.computations_id_seq', 6, true);


--
-- Name: dead_letters_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.dead_letters_id_seq', 1, false);


--
-- Name: destinations_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.destinations_id_seq', 1, true);


--
-- Name: inbound_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.inbound_id_seq', 1, false);


--
-- Name: outbox_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.outbox_id_seq', 86, true);


--
-- Name: runs_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.runs_id_seq', 30, true);


--
-- Name: syncs_id_seq; Type: SEQUENCE SET; Schema: audsync; Owner: -
--

SELECT pg_catalog.setval('audsync.syncs_id_seq', 6, true);


--
-- Name: computations computations_key_key; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.computations
    ADD CONSTRAINT computations_key_key UNIQUE (key);


--
-- Name: computations computations_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.computations
    ADD CONSTRAINT computations_pkey PRIMARY KEY (id);


--
-- Name: dead_letters dead_letters_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.dead_letters
    ADD CONSTRAINT dead_letters_pkey PRIMARY KEY (id);


--
-- Name: delivery_state delivery_state_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.delivery_state
    ADD CONSTRAINT delivery_state_pkey PRIMARY KEY (destination_id);


--
-- Name: destinations destinations_name_key; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.destinations
    ADD CONSTRAINT destinations_name_key UNIQUE (name);


--
-- Name: destinations destinations_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.destinations
    ADD CONSTRAINT destinations_pkey PRIMARY KEY (id);


--
-- Name: forwarded forwarded_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.forwarded
    ADD CONSTRAINT forwarded_pkey PRIMARY KEY (destination_id, message_id);


--
-- Name: inbound inbound_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.inbound
    ADD CONSTRAINT inbound_pkey PRIMARY KEY (id);


--
-- Name: inbound_rejected inbound_rejected_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.inbound_rejected
    ADD CONSTRAINT inbound_rejected_pkey PRIMARY KEY (id);


--
-- Name: outbox_lanes outbox_lanes_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.outbox_lanes
    ADD CONSTRAINT outbox_lanes_pkey PRIMARY KEY (destination_id, lane);


--
-- Name: outbox outbox_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);


--
-- Name: profile_traits profile_traits_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.profile_traits
    ADD CONSTRAINT profile_traits_pkey PRIMARY KEY (profile_id);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: snapshot_members snapshot_members_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.snapshot_members
    ADD CONSTRAINT snapshot_members_pkey PRIMARY KEY (sync_id, profile_id);


--
-- Name: sync_state sync_state_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.sync_state
    ADD CONSTRAINT sync_state_pkey PRIMARY KEY (sync_id);


--
-- Name: syncs syncs_computation_id_destination_id_key; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.syncs
    ADD CONSTRAINT syncs_computation_id_destination_id_key UNIQUE (computation_id, destination_id);


--
-- Name: syncs syncs_pkey; Type: CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.syncs
    ADD CONSTRAINT syncs_pkey PRIMARY KEY (id);


--
-- Name: dead_letters_dest; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX dead_letters_dest ON audsync.dead_letters USING btree (destination_id);


--
-- Name: events_event_ts; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX events_event_ts ON audsync.events USING btree (event, ts);


--
-- Name: events_profile_ts; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX events_profile_ts ON audsync.events USING btree (profile_id, ts);


--
-- Name: external_ids_created; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX external_ids_created ON audsync.external_ids USING btree (created_at);


--
-- Name: external_ids_identity; Type: INDEX; Schema: audsync; Owner: -
--

CREATE UNIQUE INDEX external_ids_identity ON audsync.external_ids USING btree (profile_id, id_type, id_value);


--
-- Name: identifier_log_xact; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX identifier_log_xact ON audsync.identifier_log USING btree (xact);


--
-- Name: outbox_lane; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX outbox_lane ON audsync.outbox USING btree (destination_id, lane, id);


--
-- Name: runs_sync; Type: INDEX; Schema: audsync; Owner: -
--

CREATE INDEX runs_sync ON audsync.runs USING btree (sync_id, id);


--
-- Name: computations computations_key; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER computations_key BEFORE INSERT OR UPDATE ON audsync.computations FOR EACH ROW EXECUTE FUNCTION audsync.computations_key();


--
-- Name: computations computations_refuse; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER computations_refuse BEFORE INSERT OR UPDATE OF lookback ON audsync.computations FOR EACH ROW EXECUTE FUNCTION audsync.computations_refuse();


--
-- Name: events events_notify; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER events_notify AFTER INSERT ON audsync.events FOR EACH STATEMENT EXECUTE FUNCTION audsync.notify_events();


--
-- Name: external_ids external_ids_log; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER external_ids_log AFTER INSERT ON audsync.external_ids REFERENCING NEW TABLE AS new_ids FOR EACH STATEMENT EXECUTE FUNCTION audsync.log_identifiers();


--
-- Name: external_ids external_ids_notify; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER external_ids_notify AFTER INSERT ON audsync.external_ids FOR EACH STATEMENT EXECUTE FUNCTION audsync.notify_events();


--
-- Name: inbound inbound_notify; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER inbound_notify AFTER INSERT ON audsync.inbound FOR EACH STATEMENT EXECUTE FUNCTION audsync.notify_events();


--
-- Name: syncs syncs_forget; Type: TRIGGER; Schema: audsync; Owner: -
--

CREATE TRIGGER syncs_forget AFTER DELETE ON audsync.syncs FOR EACH ROW EXECUTE FUNCTION audsync.forget_sync();


--
-- Name: delivery_state delivery_state_destination_id_fkey; Type: FK CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.delivery_state
    ADD CONSTRAINT delivery_state_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES audsync.destinations(id) ON DELETE CASCADE;


--
-- Name: sync_state sync_state_sync_id_fkey; Type: FK CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.sync_state
    ADD CONSTRAINT sync_state_sync_id_fkey FOREIGN KEY (sync_id) REFERENCES audsync.syncs(id) ON DELETE CASCADE;


--
-- Name: syncs syncs_computation_id_fkey; Type: FK CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.syncs
    ADD CONSTRAINT syncs_computation_id_fkey FOREIGN KEY (computation_id) REFERENCES audsync.computations(id) ON DELETE CASCADE;


--
-- Name: syncs syncs_destination_id_fkey; Type: FK CONSTRAINT; Schema: audsync; Owner: -
--

ALTER TABLE ONLY audsync.syncs
    ADD CONSTRAINT syncs_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES audsync.destinations(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


