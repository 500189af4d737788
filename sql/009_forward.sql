-- 009_forward.sql: audsync forward (DESIGN.md section 7a).

-- Segment-spec messages waiting to be forwarded (forward --from-table, and
-- the daemon): one row a message, for the destination it names. A row is
-- deleted in the transaction that puts its calls in the outbox.
CREATE TABLE audsync.inbound (
    id          bigserial PRIMARY KEY,
    destination text NOT NULL,
    message     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER inbound_notify AFTER INSERT ON audsync.inbound
    FOR EACH STATEMENT EXECUTE FUNCTION audsync.notify_events();

-- Inbound rows that cannot be mapped, kept with the reason instead of
-- being retried for ever.
CREATE TABLE audsync.inbound_rejected (
    id          bigint PRIMARY KEY,
    destination text NOT NULL,
    message     jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    reason      text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);

-- The messageIds each destination was already sent, written in the
-- transaction that queues their calls: a message is forwarded once, so
-- the calls that are not safe to repeat ($add, $append of a charge) reach
-- Mixpanel once, and re-forwarding an old file never sets old traits
-- again. Rows may be pruned by forwarded_at; a message older than the
-- pruning is then forwarded again if it comes again.
CREATE TABLE audsync.forwarded (
    destination_id integer NOT NULL,
    message_id     text NOT NULL,
    forwarded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination_id, message_id)
);
