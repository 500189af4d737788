-- 011_delivery_state.sql: how each destination's deliveries went, for the
-- metrics file and `audsync status --check`: deliveries that ended with
-- records left queued or rejected (a counter that only grows), when the
-- last one ended and the last that failed, and whether Mixpanel refused
-- the destination's credentials the last time. Internal: only audsync
-- writes it.
CREATE TABLE audsync.delivery_state (
    destination_id   integer PRIMARY KEY
        REFERENCES audsync.destinations (id) ON DELETE CASCADE,
    failures         bigint NOT NULL DEFAULT 0,
    last_delivery_at timestamptz,
    last_failure_at  timestamptz,
    stopped          boolean NOT NULL DEFAULT false,
    last_error       text
);
