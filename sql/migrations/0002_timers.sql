-- longrun migration 0002: durable timers (the scheduler table).
--
-- Purpose: timer steps, boundary timers on waiting steps and service-step timeouts. A row is
-- written in the transaction that starts the timer and deleted in the transaction that fires
-- or cancels it, so a timer fires at most once and never after its wait ended.
-- Locks: creates a new table only.

CREATE TABLE __schema__.timers (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    timer_id    uuid        NOT NULL,
    instance_id uuid        NOT NULL,
    step_id     text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('step', 'boundary', 'timeout')),
    due_at      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (bucket, timer_id)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.timers');
COMMENT ON TABLE __schema__.timers IS
    'Running timers, one row each, from the TimerScheduled event that started it until the transaction that fires or cancels it (which deletes the row). Engines fire due rows in batches, skipping instances another engine holds.';
COMMENT ON COLUMN __schema__.timers.bucket IS 'bucket_of(timer_id): its instance''s bucket, since longrun derives the id in it. Leads every key.';
COMMENT ON COLUMN __schema__.timers.timer_id IS 'The timer id (derived from the instance and the position of its TimerScheduled event).';
COMMENT ON COLUMN __schema__.timers.instance_id IS 'The instance it belongs to.';
COMMENT ON COLUMN __schema__.timers.step_id IS 'The step it belongs to.';
COMMENT ON COLUMN __schema__.timers.kind IS 'step (a timer step''s wait), boundary (a timer attached to a waiting step) or timeout (a service step''s time limit).';
COMMENT ON COLUMN __schema__.timers.due_at IS 'When it fires (engine clock): never before, and as soon after as an engine runs.';
COMMENT ON COLUMN __schema__.timers.created_at IS 'When it was started (engine clock).';

CREATE INDEX timers_due_idx ON __schema__.timers (due_at);
CREATE INDEX timers_instance_idx ON __schema__.timers (instance_id);
