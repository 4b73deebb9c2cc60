-- longrun migration 0005: catch-up projections and the activity history.
--
-- Purpose: projections are tables derived from the events, kept up to date by the engines
-- after the fact (not in the transition's transaction) and rebuildable from scratch. Each has a
-- checkpoint per bucket in `projection_checkpoints`: the (xid, instance_id, seq) of the last
-- event of the bucket whose instance it has looked at. Events are only read below the read
-- horizon (sql/queries/read_horizon.sql), so an event committed late is read late, never
-- skipped; and a projection reads
-- each instance's stream by sequence number from its own watermark (`projection_progress`), so
-- it sees every stream in order even when transactions commit in another order than their xids.
-- `activity` is the first projection: one row per step execution.
-- Locks: creates tables only.

CREATE TABLE __schema__.projections (
    name          text        PRIMARY KEY,
    events        bigint      NOT NULL DEFAULT 0,
    rebuilt_at    timestamptz,
    updated_at    timestamptz NOT NULL
);
COMMENT ON TABLE __schema__.projections IS
    'One row per catch-up projection (its checkpoints are in projection_checkpoints). Batches lock the row (FOR UPDATE SKIP LOCKED), so one engine at a time moves a projection.';
COMMENT ON COLUMN __schema__.projections.name IS 'The projection, e.g. activity.';
COMMENT ON COLUMN __schema__.projections.events IS 'Events applied since the last rebuild.';
COMMENT ON COLUMN __schema__.projections.rebuilt_at IS 'When it was last reset to be rebuilt from the first event.';
COMMENT ON COLUMN __schema__.projections.updated_at IS 'When it last applied a batch (engine clock).';

CREATE TABLE __schema__.projection_checkpoints (
    bucket        smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    name          text        NOT NULL,
    last_xid      xid8        NOT NULL DEFAULT '0',
    last_instance uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    last_seq      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, name, last_xid, last_instance, last_seq)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.projection_checkpoints');
-- Each move replaces a bucket's row, so the primary key holds an entry per move of which one is
-- live until vacuum removes the rest (and none is removed while another transaction stays
-- open). Readers take the greatest entry (ORDER BY the key DESC LIMIT 1); with one row per
-- bucket in its statistics the planner would rather fetch every entry of the bucket and sort
-- them (88,000 buffers for one read of 256 buckets after a minute of the messages workload
-- under a held transaction, against 1,000). Declaring `bucket` a single value (on the table
-- and each partition; the first ANALYZE of its rows applies it) makes the backward index scan
-- the cheaper.
DO $$
DECLARE r regclass;
BEGIN
    FOR r IN SELECT '__schema__.projection_checkpoints'::regclass
             UNION SELECT relid FROM pg_partition_tree('__schema__.projection_checkpoints') LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN bucket SET (n_distinct = 1)', r);
    END LOOP;
END $$;
COMMENT ON TABLE __schema__.projection_checkpoints IS
    'Where each projection stands in each bucket of the events: it has looked at every event of the bucket at or before (last_xid, last_instance, last_seq). One live row per projection and bucket, made with the projection; a move deletes it and inserts the next (the position is in the key, never updated in place), and readers take the greatest of a bucket (ORDER BY the key DESC LIMIT 1), so the versions a long-running transaction keeps from being pruned are never walked; no order across buckets is assumed.';
COMMENT ON COLUMN __schema__.projection_checkpoints.bucket IS 'The events'' bucket.';
COMMENT ON COLUMN __schema__.projection_checkpoints.name IS 'The projection (projections.name).';
COMMENT ON COLUMN __schema__.projection_checkpoints.last_xid IS 'Checkpoint: xid of the last event of the bucket read (0: none yet).';
COMMENT ON COLUMN __schema__.projection_checkpoints.last_instance IS 'Checkpoint: its instance.';
COMMENT ON COLUMN __schema__.projection_checkpoints.last_seq IS 'Checkpoint: its seq.';

CREATE TABLE __schema__.projection_progress (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    name        text   NOT NULL,
    instance_id uuid   NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (bucket, name, instance_id)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.projection_progress');
COMMENT ON TABLE __schema__.projection_progress IS
    'Per projection and instance, the sequence number of the last event applied: streams are applied in order, each event once.';
COMMENT ON COLUMN __schema__.projection_progress.bucket IS 'The instance''s bucket (bucket_of(instance_id)): leads every key.';
COMMENT ON COLUMN __schema__.projection_progress.name IS 'The projection.';
COMMENT ON COLUMN __schema__.projection_progress.instance_id IS 'The instance.';
COMMENT ON COLUMN __schema__.projection_progress.seq IS 'The last event of its stream the projection has applied.';

CREATE TABLE __schema__.activity (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    instance_id uuid        NOT NULL,
    seq         bigint      NOT NULL,
    process_id  text        NOT NULL,
    version     integer     NOT NULL,
    step_id     text        NOT NULL,
    kind        text        NOT NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    duration_ms double precision GENERATED ALWAYS AS
                (extract(epoch FROM ended_at - started_at) * 1000) STORED,
    outcome     text,
    attempts    integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (bucket, instance_id, seq)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.activity');
COMMENT ON TABLE __schema__.activity IS
    'Activity history (a projection of the events): one row per step execution, from the event that began it to the one that ended it.';
COMMENT ON COLUMN __schema__.activity.bucket IS 'The instance''s bucket (bucket_of(instance_id)): leads every key.';
COMMENT ON COLUMN __schema__.activity.instance_id IS 'The instance.';
COMMENT ON COLUMN __schema__.activity.seq IS 'Sequence number of the event that began the execution.';
COMMENT ON COLUMN __schema__.activity.process_id IS 'The process.';
COMMENT ON COLUMN __schema__.activity.version IS 'The definition version.';
COMMENT ON COLUMN __schema__.activity.step_id IS 'The step.';
COMMENT ON COLUMN __schema__.activity.kind IS 'job, receive, timer, event_gateway, call (executions that wait) or send, exclusive, parallel, join, end (instant ones).';
COMMENT ON COLUMN __schema__.activity.started_at IS 'When the step was entered (engine clock).';
COMMENT ON COLUMN __schema__.activity.ended_at IS 'When it ended; NULL while it still runs or waits.';
COMMENT ON COLUMN __schema__.activity.duration_ms IS 'ended_at - started_at in milliseconds.';
COMMENT ON COLUMN __schema__.activity.outcome IS 'How it ended: completed, message <name>, fired, error <code>, interrupted: <why>, cancelled, failed, sent <name>, took <step>, ...';
COMMENT ON COLUMN __schema__.activity.attempts IS 'Handler runs (1 + retries), for job executions.';

CREATE INDEX activity_open_idx ON __schema__.activity (instance_id) WHERE ended_at IS NULL;
CREATE INDEX activity_step_idx ON __schema__.activity (process_id, version, step_id);

CREATE VIEW __schema__.report_activity AS
SELECT process_id, version, step_id, kind, count(*) AS executions,
       count(*) FILTER (WHERE ended_at IS NULL) AS open,
       avg(duration_ms)::numeric(14, 2) AS mean_ms,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms))::numeric(14, 2) AS p50_ms,
       (percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms))::numeric(14, 2) AS p95_ms,
       max(duration_ms)::numeric(14, 2) AS max_ms,
       sum(attempts - 1) AS retries
FROM __schema__.activity
GROUP BY process_id, version, step_id, kind;
COMMENT ON VIEW __schema__.report_activity IS
    'Every step of every process version, from the activity history: executions, still open, duration (mean, p50, p95, max) and retries.';

CREATE VIEW __schema__.report_old_instances AS
SELECT started_at, date_trunc('second', now() - started_at) AS age, instance_id, process_id,
       version, business_key, current_step, waiting_for
FROM __schema__.instances
WHERE status = 'running';
COMMENT ON VIEW __schema__.report_old_instances IS
    'Running instances, oldest first, with their age (database clock): filter on age for those older than a threshold.';
