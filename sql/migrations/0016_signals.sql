-- longrun migration 0016: signals.
--
-- Purpose: a signal is broadcast to every instance waiting for it (a wait_signal step, or a
-- boundary signal on a waiting step: a subscription named `signal:<name>` without a key), and
-- starts one instance of each process whose latest version starts on it. A throw (a signal
-- step, or Engine::signal) writes a row here in its own transaction; engines then deliver it
-- in chunks, each chunk one transaction that applies the signal to the next waiting instances
-- (in instance id order, those that waited when it was thrown) and moves `after_instance`
-- with them, so a broadcast to any number of instances never needs one large transaction,
-- and an engine that dies mid-broadcast leaves the rest to another, which goes on from the
-- cursor: each instance receives each signal once. Chunks are taken FOR UPDATE SKIP LOCKED.
-- Locks: creates a new table and its index; SHARE on subscriptions while its partial index is
-- built (transitions wait; the table holds only open waits, so this is short); ACCESS
-- EXCLUSIVE on definitions for a moment (a nullable column rewrites nothing).

CREATE TABLE __schema__.signals (
    signal_id      uuid        PRIMARY KEY,
    name           text        NOT NULL,
    payload        jsonb       NOT NULL DEFAULT '{}',
    thrown_at      timestamptz NOT NULL,
    thrown_by      uuid,
    started        boolean     NOT NULL DEFAULT false,
    after_instance uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    delivered      bigint      NOT NULL DEFAULT 0,
    finished_at    timestamptz
);
COMMENT ON TABLE __schema__.signals IS
    'Signals thrown and their delivery: each is broadcast in chunks to the instances that waited for it when it was thrown.';
COMMENT ON COLUMN __schema__.signals.signal_id IS 'The broadcast''s id (what each receiving instance records as the message id).';
COMMENT ON COLUMN __schema__.signals.name IS 'The signal''s name.';
COMMENT ON COLUMN __schema__.signals.payload IS 'What receivers get (their wait step''s output takes it).';
COMMENT ON COLUMN __schema__.signals.thrown_at IS 'When it was thrown (engine clock); instances that start waiting later do not receive it.';
COMMENT ON COLUMN __schema__.signals.thrown_by IS 'The instance whose signal step threw it; NULL for Engine::signal.';
COMMENT ON COLUMN __schema__.signals.started IS 'Whether the processes that start on it were started (in the first chunk).';
COMMENT ON COLUMN __schema__.signals.after_instance IS 'Cursor: every waiting instance with a lower or equal id has received it.';
COMMENT ON COLUMN __schema__.signals.delivered IS 'Instances that received it so far.';
COMMENT ON COLUMN __schema__.signals.finished_at IS 'When the last chunk was delivered; NULL while the broadcast goes on.';
CREATE INDEX signals_open_idx ON __schema__.signals (thrown_at) WHERE finished_at IS NULL;

-- The receivers of a broadcast, read in instance id order from the cursor (a signal wait is a
-- subscription without a key): each chunk is an index range, not a sort of every waiting
-- instance.
CREATE INDEX subscriptions_keyless_idx ON __schema__.subscriptions (message_name, instance_id)
    WHERE correlation_key = '';

ALTER TABLE __schema__.definitions ADD COLUMN start_signal text;
COMMENT ON COLUMN __schema__.definitions.start_signal IS 'A signal that starts an instance of this version each time it is broadcast.';

GRANT SELECT, INSERT, UPDATE, DELETE ON __schema__.signals TO __runtime_role__;
